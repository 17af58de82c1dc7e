/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.c - load and check the JSON configuration file (pkio-agent.conf(5)).
 *
 * The file is an object of sections ("api", "token", "poll", "trust", "renew", "ui") and top-level
 * keys
 * ("order_defaults", "state_dir"). A key may also be written in its dotted form at the top level
 * ("api.url": ...). Every key is checked once against one table; anything else is an error.
 */
#include "config.h"
#include "i18n.h"

#include "log.h"
#include "pa_err.h"
#include "request.h"
#include "secret.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#ifndef PKIO_DEFAULT_MODULE
#define PKIO_DEFAULT_MODULE "/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so"
#endif
#ifndef PKIO_DEFAULT_STATE_DIR
#define PKIO_DEFAULT_STATE_DIR "/var/lib/pkio-agent"
#endif

#define CFG_DEFAULT_URL                "https://certcentral.digicert.eu/services/v2"
#define CFG_DEFAULT_PRODUCT            "pkio_organisation_person_prof"
#define CFG_DEFAULT_CSR_FIELD          "certificate.csr"
#define CFG_DEFAULT_PROVISIONING_FIELD "cs_provisioning_method"

#define CFG_MAX_FILE     (1024 * 1024)
#define CFG_MAX_DEPTH    16
#define CFG_MAX_SECONDS  31536000.0 /* one year */
#define CFG_MAX_FIELD    100        /* longest api.*_field path */
#define CFG_MAX_SEGMENTS 4          /* deepest api.*_field path */

enum cfg_kind {
    CK_URL,     /* https:// URL */
    CK_PROXY,   /* http:// or https:// proxy URL */
    CK_PATH,    /* non-empty file or directory name */
    CK_PRODUCT, /* a product id request.c knows */
    CK_FIELD,   /* dotted JSON path */
    CK_SECONDS, /* number > 0 */
    CK_URI,     /* pkcs11: URI */
    CK_OBJECT,  /* JSON object, kept as text */
    CK_BOOL,    /* true or false, into a bool */
    CK_TOKENS,  /* token.allowed: array of {manufacturer, model, module}, parsed */
    CK_DAYS,    /* whole number of days, 1..CFG_MAX_DAYS, into an int */
    CK_SHARE,   /* number in (0,1], into a double */
    CK_LANG,    /* "nl" or "en" */
};

struct cfg_key {
    const char *name;
    enum cfg_kind kind;
    size_t off; /* offset of the char * or double in struct cfg */
};

static const struct cfg_key cfg_keys[] = {
    {"api.url", CK_URL, offsetof(struct cfg, api_url)},
    {"api.key_file", CK_PATH, offsetof(struct cfg, api_key_file)},
    {"api.ca_bundle", CK_PATH, offsetof(struct cfg, api_ca_bundle)},
    {"api.proxy", CK_PROXY, offsetof(struct cfg, api_proxy)},
    {"api.product", CK_PRODUCT, offsetof(struct cfg, api_product)},
    {"api.csr_field", CK_FIELD, offsetof(struct cfg, api_csr_field)},
    {"api.provisioning_field", CK_FIELD, offsetof(struct cfg, api_provisioning_field)},
    {"api.timeout_s", CK_SECONDS, offsetof(struct cfg, api_timeout_s)},
    {"api.connect_timeout_s", CK_SECONDS, offsetof(struct cfg, api_connect_timeout_s)},
    {"api.order_settle_s", CK_SECONDS, offsetof(struct cfg, api_order_settle_s)},
    {"api.rate_share", CK_SHARE, offsetof(struct cfg, api_rate_share)},
    {"token.module", CK_PATH, offsetof(struct cfg, token_module)},
    {"token.uri", CK_URI, offsetof(struct cfg, token_uri)},
    {"token.allowed", CK_TOKENS, offsetof(struct cfg, token_allowed)},
    {"token.allow_software", CK_BOOL, offsetof(struct cfg, token_allow_software)},
    {"order_defaults", CK_OBJECT, offsetof(struct cfg, order_defaults)},
    {"poll.initial_s", CK_SECONDS, offsetof(struct cfg, poll_initial_s)},
    {"poll.max_s", CK_SECONDS, offsetof(struct cfg, poll_max_s)},
    {"poll.timeout_s", CK_SECONDS, offsetof(struct cfg, poll_timeout_s)},
    {"trust.anchors", CK_PATH, offsetof(struct cfg, trust_anchors)},
    {"renew.warn_days", CK_DAYS, offsetof(struct cfg, renew_warn_days)},
    {"ui.lang", CK_LANG, offsetof(struct cfg, ui_lang)},
    {"state_dir", CK_PATH, offsetof(struct cfg, state_dir)},
};

#define CFG_NKEYS (sizeof(cfg_keys) / sizeof(cfg_keys[0]))

static const char *const cfg_sections[] = {"api", "token", "poll", "trust", "renew", "ui"};

/* Parsing context: where messages go and which keys were seen. */
struct cfg_ctx {
    const char *name; /* file name for messages */
    char *errbuf;
    size_t errlen;
    bool seen[CFG_NKEYS];
};

__attribute__((format(printf, 3, 4))) static void cfg_err(char *errbuf, size_t errlen,
                                                          const char *fmt, ...)
{
    va_list ap;

    if (!errbuf || !errlen)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

/* Copy a user-supplied key name for a message: printable ASCII only, at most 64 bytes. */
static void cfg_printable(const char *in, char *out, size_t outlen)
{
    size_t i = 0;

    for (; *in && i + 4 < outlen && i < 64; in++)
        out[i++] = (*in >= 0x20 && *in < 0x7f) ? *in : '?';
    if (*in && i + 4 <= outlen) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
}

static char **cfg_str_slot(struct cfg *cfg, const struct cfg_key *k)
{
    return (char **)(void *)((char *)cfg + k->off);
}

static double *cfg_num_slot(struct cfg *cfg, const struct cfg_key *k)
{
    return (double *)(void *)((char *)cfg + k->off);
}

static void cfg_rules_free(struct cfg_token_rules *rules)
{
    if (!rules)
        return;
    for (size_t i = 0; i < rules->n; i++) {
        free(rules->v[i].manufacturer);
        free(rules->v[i].model);
        free(rules->v[i].module);
    }
    free(rules->v);
    free(rules);
}

void cfg_free(struct cfg *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < CFG_NKEYS; i++)
        if (cfg_keys[i].kind != CK_SECONDS && cfg_keys[i].kind != CK_BOOL &&
            cfg_keys[i].kind != CK_TOKENS && cfg_keys[i].kind != CK_DAYS &&
            cfg_keys[i].kind != CK_SHARE)
            free(*cfg_str_slot(cfg, &cfg_keys[i]));
    cfg_rules_free(cfg->token_allowed);
    free(cfg->path);
    free(cfg);
}

int cfg_new_defaults(struct cfg **ret)
{
    struct cfg *cfg = NULL;
    int r = PA_E_NOMEM;

    cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        goto out;
    cfg->api_url = strdup(CFG_DEFAULT_URL);
    cfg->api_product = strdup(CFG_DEFAULT_PRODUCT);
    cfg->api_csr_field = strdup(CFG_DEFAULT_CSR_FIELD);
    cfg->api_provisioning_field = strdup(CFG_DEFAULT_PROVISIONING_FIELD);
    cfg->token_module = strdup(PKIO_DEFAULT_MODULE);
    cfg->state_dir = strdup(PKIO_DEFAULT_STATE_DIR);
    if (!cfg->api_url || !cfg->api_product || !cfg->api_csr_field || !cfg->api_provisioning_field ||
        !cfg->token_module || !cfg->state_dir)
        goto out;
    cfg->api_timeout_s = 60;
    cfg->api_connect_timeout_s = 15;
    cfg->api_order_settle_s = 600;
    cfg->api_rate_share = 1;
    cfg->poll_initial_s = 30;
    cfg->poll_max_s = 600;
    cfg->poll_timeout_s = 86400;
    cfg->renew_warn_days = CFG_DEFAULT_WARN_DAYS;
    *ret = cfg;
    cfg = NULL;
    r = 0;
out:
    cfg_free(cfg);
    return r;
}

/* True if s (n bytes) is a syntactically valid dotted field path such as "certificate.csr". */
static bool cfg_field_ok(const char *s, size_t n)
{
    size_t seg = 0, segments = 1;

    if (n == 0 || n > CFG_MAX_FIELD)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (seg == 0)
                return false;
            seg = 0;
            segments++;
            continue;
        }
        if (!isalnum((unsigned char)s[i]) && s[i] != '_')
            return false;
        seg++;
    }
    return seg > 0 && segments <= CFG_MAX_SEGMENTS;
}

/* True if a equals b or one is a dotted prefix of the other ("a.b" and "a.b.c"). */
static bool cfg_fields_overlap(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), n = la < lb ? la : lb;

    if (strncmp(a, b, n) != 0)
        return false;
    if (la == lb)
        return true;
    return (la > lb ? a[n] : b[n]) == '.';
}

/* Check a string value for kind k; on success *ret_val is a malloc'd copy. */
static int cfg_take_string(struct cfg_ctx *c, const struct cfg_key *k, json_object *v,
                           char **ret_val)
{
    const char *s;
    size_t n;
    char *copy = NULL;

    if (!json_object_is_type(v, json_type_string)) {
        cfg_err(c->errbuf, c->errlen, _("%s: %s: must be a string"), c->name, k->name);
        return PA_E_CONFIG;
    }
    s = json_object_get_string(v);
    n = (size_t)json_object_get_string_len(v);
    if (n == 0) {
        cfg_err(c->errbuf, c->errlen, _("%s: %s: must not be empty"), c->name, k->name);
        return PA_E_CONFIG;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            cfg_err(c->errbuf, c->errlen, _("%s: %s: must not contain control characters"), c->name,
                    k->name);
            return PA_E_CONFIG;
        }
    }
    switch (k->kind) {
    case CK_URL:
        if (strncasecmp(s, "https://", 8) != 0 || n == 8 || s[8] == '/' ||
            strpbrk(s, " \"<>\\^`{|}")) {
            cfg_err(c->errbuf, c->errlen, _("%s: %s: must be an https:// URL"), c->name, k->name);
            return PA_E_CONFIG;
        }
        while (n > 9 && s[n - 1] == '/')
            n--;
        break;
    case CK_PROXY:
        if ((strncasecmp(s, "http://", 7) != 0 && strncasecmp(s, "https://", 8) != 0) ||
            strpbrk(s, " \"<>\\^`{|}")) {
            cfg_err(c->errbuf, c->errlen, _("%s: %s: must be an http:// or https:// proxy URL"),
                    c->name, k->name);
            return PA_E_CONFIG;
        }
        break;
    case CK_PRODUCT:
        if (!req_product_supported(s)) {
            cfg_err(c->errbuf, c->errlen, _("%s: %s: unsupported product (supported: %s)"), c->name,
                    k->name, req_product_list());
            return PA_E_CONFIG;
        }
        break;
    case CK_FIELD:
        if (!cfg_field_ok(s, n)) {
            cfg_err(c->errbuf, c->errlen,
                    _("%s: %s: must be a dotted field path such as \"certificate.csr\""), c->name,
                    k->name);
            return PA_E_CONFIG;
        }
        break;
    case CK_LANG:
        if (!i18n_lang_valid(s)) {
            cfg_err(c->errbuf, c->errlen, _("%s: %s: must be \"nl\" or \"en\""), c->name, k->name);
            return PA_E_CONFIG;
        }
        break;
    case CK_URI:
        if (strncasecmp(s, "pkcs11:", 7) != 0) {
            cfg_err(c->errbuf, c->errlen, _("%s: %s: must be a pkcs11: URI"), c->name, k->name);
            return PA_E_CONFIG;
        }
        break;
    default:
        break;
    }
    copy = strndup(s, n);
    if (!copy)
        return PA_E_NOMEM;
    *ret_val = copy;
    return 0;
}

/* One string member of a token.allowed entry: absent, or a non-empty printable string. */
static int cfg_rule_str(struct cfg_ctx *c, json_object *o, const char *key, size_t i, size_t max,
                        char **ret)
{
    json_object *v;
    const char *s;

    *ret = NULL;
    if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
        return 0;
    s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
    for (const char *p = s; p && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            s = "";
    if (!s || !*s || strlen(s) > max) {
        cfg_err(c->errbuf, c->errlen,
                _("%s: token.allowed[%zu].%s: must be a string of 1 to %zu "
                  "printable characters"),
                c->name, i, key, max);
        return PA_E_CONFIG;
    }
    *ret = strdup(s);
    return *ret ? 0 : PA_E_NOMEM;
}

/* token.allowed: [{"manufacturer": ..., "model": ..., "module": ...}, ...], each with at least
 * a manufacturer or a model, and no other keys. */
static int cfg_take_rules(struct cfg_ctx *c, json_object *v, struct cfg_token_rules **ret)
{
    struct cfg_token_rules *rules = NULL;
    size_t n;
    int r = PA_E_CONFIG;

    if (!json_object_is_type(v, json_type_array) || (n = json_object_array_length(v)) == 0) {
        cfg_err(c->errbuf, c->errlen, _("%s: token.allowed: must be a non-empty array"), c->name);
        return PA_E_CONFIG;
    }
    rules = calloc(1, sizeof(*rules));
    if (rules)
        rules->v = calloc(n, sizeof(*rules->v));
    if (!rules || !rules->v) {
        r = PA_E_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(v, i);
        struct cfg_token_rule *t = &rules->v[i];

        rules->n = i + 1; /* so that a failure below frees this entry's strings too */
        if (!json_object_is_type(o, json_type_object)) {
            cfg_err(c->errbuf, c->errlen, _("%s: token.allowed[%zu]: must be an object"), c->name,
                    i);
            goto out;
        }
        json_object_object_foreach(o, key, val)
        {
            (void)val;
            if (strcmp(key, "manufacturer") && strcmp(key, "model") && strcmp(key, "module")) {
                cfg_err(c->errbuf, c->errlen, _("%s: token.allowed[%zu]: unknown key"), c->name, i);
                goto out;
            }
        }
        if (cfg_rule_str(c, o, "manufacturer", i, 32, &t->manufacturer) < 0 ||
            cfg_rule_str(c, o, "model", i, 16, &t->model) < 0 ||
            cfg_rule_str(c, o, "module", i, 4096, &t->module) < 0)
            goto out;
        if (!t->manufacturer && !t->model) {
            cfg_err(c->errbuf, c->errlen,
                    _("%s: token.allowed[%zu]: needs a manufacturer or a model"), c->name, i);
            goto out;
        }
    }
    *ret = rules;
    rules = NULL;
    r = 0;
out:
    cfg_rules_free(rules);
    return r;
}

/* A whole number of days, 1..CFG_MAX_DAYS (renew.warn_days). */
static int cfg_take_days(struct cfg_ctx *c, struct cfg *cfg, const struct cfg_key *k,
                         json_object *v)
{
    int64_t d;

    if (!json_object_is_type(v, json_type_int)) {
        cfg_err(c->errbuf, c->errlen, _("%s: %s: must be a whole number of days"), c->name,
                k->name);
        return PA_E_CONFIG;
    }
    errno = 0;
    d = json_object_get_int64(v);
    if (errno || d < 1 || d > CFG_MAX_DAYS) {
        cfg_err(c->errbuf, c->errlen, _("%s: %s: must be 1 to %d"), c->name, k->name, CFG_MAX_DAYS);
        return PA_E_CONFIG;
    }
    *(int *)(void *)((char *)cfg + k->off) = (int)d;
    return 0;
}

/* A fraction in (0,1] (api.rate_share). */
static int cfg_take_share(struct cfg_ctx *c, struct cfg *cfg, const struct cfg_key *k,
                          json_object *v)
{
    double d = json_object_get_double(v);

    if ((!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) ||
        !isfinite(d) || d <= 0 || d > 1) {
        cfg_err(c->errbuf, c->errlen, _("%s: %s: must be a number > 0 and at most 1"), c->name,
                k->name);
        return PA_E_CONFIG;
    }
    *cfg_num_slot(cfg, k) = d;
    return 0;
}

/* Check and store one key's value. */
static int cfg_set(struct cfg_ctx *c, struct cfg *cfg, const struct cfg_key *k, json_object *v)
{
    char *s = NULL;
    double d;
    int r;

    switch (k->kind) {
    case CK_BOOL:
        if (!json_object_is_type(v, json_type_boolean)) {
            cfg_err(c->errbuf, c->errlen, _("%s: %s: must be true or false"), c->name, k->name);
            return PA_E_CONFIG;
        }
        *(bool *)(void *)((char *)cfg + k->off) = json_object_get_boolean(v);
        return 0;
    case CK_DAYS:
        return cfg_take_days(c, cfg, k, v);
    case CK_SHARE:
        return cfg_take_share(c, cfg, k, v);
    case CK_TOKENS: {
        struct cfg_token_rules *rules = NULL;

        r = cfg_take_rules(c, v, &rules);
        if (r < 0)
            return r;
        cfg_rules_free(cfg->token_allowed);
        cfg->token_allowed = rules;
        return 0;
    }
    case CK_SECONDS:
        if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) {
            cfg_err(c->errbuf, c->errlen, _("%s: %s: must be a number of seconds"), c->name,
                    k->name);
            return PA_E_CONFIG;
        }
        d = json_object_get_double(v);
        if (!isfinite(d) || d <= 0 || d > CFG_MAX_SECONDS) {
            cfg_err(c->errbuf, c->errlen, _("%s: %s: must be > 0 and at most %.0f"), c->name,
                    k->name, CFG_MAX_SECONDS);
            return PA_E_CONFIG;
        }
        *cfg_num_slot(cfg, k) = d;
        return 0;
    case CK_OBJECT:
        if (!json_object_is_type(v, json_type_object)) {
            cfg_err(c->errbuf, c->errlen, _("%s: %s: must be an object"), c->name, k->name);
            return PA_E_CONFIG;
        }
        if (json_object_object_get_ex(v, "credit_card", NULL)) {
            cfg_err(c->errbuf, c->errlen,
                    _("%s: %s.credit_card: card data does not belong in the configuration"),
                    c->name, k->name);
            return PA_E_CONFIG;
        }
        s = strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE));
        if (!s)
            return PA_E_NOMEM;
        break;
    default:
        r = cfg_take_string(c, k, v, &s);
        if (r < 0)
            return r;
        break;
    }
    free(*cfg_str_slot(cfg, k));
    *cfg_str_slot(cfg, k) = s;
    return 0;
}

/* Find a key by its full dotted name and store its value. */
static int cfg_apply(struct cfg_ctx *c, struct cfg *cfg, const char *name, json_object *v)
{
    char shown[80];

    for (size_t i = 0; i < CFG_NKEYS; i++) {
        if (strcmp(cfg_keys[i].name, name) != 0)
            continue;
        if (c->seen[i]) {
            cfg_err(c->errbuf, c->errlen, _("%s: %s: given twice"), c->name, name);
            return PA_E_CONFIG;
        }
        c->seen[i] = true;
        return cfg_set(c, cfg, &cfg_keys[i], v);
    }
    cfg_printable(name, shown, sizeof(shown));
    cfg_err(c->errbuf, c->errlen, _("%s: unknown key \"%s\""), c->name, shown);
    return PA_E_CONFIG;
}

static bool cfg_is_section(const char *name)
{
    for (size_t i = 0; i < sizeof(cfg_sections) / sizeof(cfg_sections[0]); i++)
        if (strcmp(cfg_sections[i], name) == 0)
            return true;
    return false;
}

/* Walk the root object, then check values that depend on each other. */
static int cfg_walk(struct cfg_ctx *c, struct cfg *cfg, json_object *root)
{
    char full[160], shown[80];
    int r;

    json_object_object_foreach(root, key, val)
    {
        if (!cfg_is_section(key)) {
            r = cfg_apply(c, cfg, key, val);
            if (r < 0)
                return r;
            continue;
        }
        if (!json_object_is_type(val, json_type_object)) {
            cfg_err(c->errbuf, c->errlen, _("%s: %s: must be an object"), c->name, key);
            return PA_E_CONFIG;
        }
        json_object_object_foreach(val, sub, subval)
        {
            if (strlen(sub) + strlen(key) + 2 > sizeof(full)) {
                cfg_printable(sub, shown, sizeof(shown));
                cfg_err(c->errbuf, c->errlen, _("%s: unknown key \"%s.%s\""), c->name, key, shown);
                return PA_E_CONFIG;
            }
            if (snprintf(full, sizeof(full), "%s.%s", key, sub) >= (int)sizeof(full))
                return PA_E_CONFIG; /* unreachable: checked above; keeps -O2 quiet */
            r = cfg_apply(c, cfg, full, subval);
            if (r < 0)
                return r;
        }
    }
    if (cfg->api_connect_timeout_s > cfg->api_timeout_s) {
        cfg_err(c->errbuf, c->errlen,
                _("%s: api.connect_timeout_s: must not exceed api.timeout_s (%g > %g)"), c->name,
                cfg->api_connect_timeout_s, cfg->api_timeout_s);
        return PA_E_CONFIG;
    }
    if (cfg->poll_initial_s > cfg->poll_max_s) {
        cfg_err(c->errbuf, c->errlen, _("%s: poll.initial_s: must not exceed poll.max_s (%g > %g)"),
                c->name, cfg->poll_initial_s, cfg->poll_max_s);
        return PA_E_CONFIG;
    }
    if (cfg_fields_overlap(cfg->api_csr_field, cfg->api_provisioning_field)) {
        cfg_err(c->errbuf, c->errlen,
                _("%s: api.provisioning_field: must not overlap api.csr_field"), c->name);
        return PA_E_CONFIG;
    }
    return 0;
}

/* Line and column (1-based) of byte offset off in buf. */
static void cfg_line_col(const char *buf, size_t off, unsigned long *line, unsigned long *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (buf[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

int cfg_load_mem(const char *buf, size_t len, const char *name, struct cfg **ret, char *errbuf,
                 size_t errlen)
{
    struct cfg_ctx c = {.name = name ? name : "config", .errbuf = errbuf, .errlen = errlen};
    struct json_tokener *tok = NULL;
    json_object *root = NULL;
    struct cfg *cfg = NULL;
    enum json_tokener_error jerr;
    unsigned long line, col;
    size_t end;
    int r;

    if (len > CFG_MAX_FILE) {
        cfg_err(errbuf, errlen, _("%s: larger than %d bytes"), c.name, CFG_MAX_FILE);
        r = PA_E_CONFIG;
        goto out;
    }
    if (memchr(buf, '\0', len)) {
        cfg_err(errbuf, errlen, _("%s: contains a NUL byte"), c.name);
        r = PA_E_CONFIG;
        goto out;
    }
    tok = json_tokener_new_ex(CFG_MAX_DEPTH);
    if (!tok) {
        r = PA_E_NOMEM;
        goto out;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    root = json_tokener_parse_ex(tok, buf, (int)len);
    jerr = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_success) {
        while (end < len && isspace((unsigned char)buf[end]))
            end++;
        if (end < len) {
            cfg_line_col(buf, end, &line, &col);
            cfg_err(errbuf, errlen, _("%s:%lu:%lu: invalid JSON: data after the end"), c.name, line,
                    col);
            r = PA_E_CONFIG;
            goto out;
        }
    } else {
        if (jerr == json_tokener_continue)
            end = len;
        cfg_line_col(buf, end, &line, &col);
        cfg_err(errbuf, errlen, _("%s:%lu:%lu: invalid JSON: %s"), c.name, line, col,
                jerr == json_tokener_continue ? _("unexpected end of input")
                                              : json_tokener_error_desc(jerr));
        r = PA_E_CONFIG;
        goto out;
    }
    if (!json_object_is_type(root, json_type_object)) {
        cfg_err(errbuf, errlen, _("%s: must contain a JSON object"), c.name);
        r = PA_E_CONFIG;
        goto out;
    }
    if (!req_json_finite(root)) {
        cfg_err(errbuf, errlen, _("%s: a number is out of range"), c.name);
        r = PA_E_CONFIG;
        goto out;
    }
    r = cfg_new_defaults(&cfg);
    if (r < 0)
        goto out;
    r = cfg_walk(&c, cfg, root);
    if (r < 0)
        goto out;
    *ret = cfg;
    cfg = NULL;
out:
    cfg_free(cfg);
    json_object_put(root);
    if (tok)
        json_tokener_free(tok);
    return r;
}

/* Read a whole regular file of at most max bytes. *ret_buf is malloc'd and NUL-terminated. */
static int cfg_read_file(const char *path, bool missing_ok, char **ret_buf, size_t *ret_len,
                         char *errbuf, size_t errlen)
{
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    int fd = -1, r;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT && missing_ok) {
            r = 1;
            goto out;
        }
        cfg_err(errbuf, errlen, _("%s: cannot open: %s"), path, strerror(errno));
        r = errno == ENOENT ? PA_E_CONFIG : PA_E_IO;
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        cfg_err(errbuf, errlen, _("%s: cannot stat: %s"), path, strerror(errno));
        r = PA_E_IO;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        cfg_err(errbuf, errlen, _("%s: not a regular file"), path);
        r = PA_E_CONFIG;
        goto out;
    }
    if (st.st_size > CFG_MAX_FILE) {
        cfg_err(errbuf, errlen, _("%s: larger than %d bytes"), path, CFG_MAX_FILE);
        r = PA_E_CONFIG;
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        r = PA_E_NOMEM;
        goto out;
    }
    while (len < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            cfg_err(errbuf, errlen, _("%s: cannot read: %s"), path, strerror(errno));
            r = PA_E_IO;
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    *ret_buf = buf;
    *ret_len = len;
    buf = NULL;
    r = 0;
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return r;
}

int cfg_load(const char *path, struct cfg **ret, char *errbuf, size_t errlen)
{
    const char *file = path ? path : PKIO_DEFAULT_CONFIG;
    struct cfg *cfg = NULL;
    char *buf = NULL;
    size_t len = 0;
    int r;

    r = cfg_read_file(file, path == NULL, &buf, &len, errbuf, errlen);
    if (r < 0)
        goto out;
    if (r == 1) {
        log_debug("config: %s not found, using defaults", file);
        r = cfg_new_defaults(&cfg);
        if (r < 0)
            goto out;
    } else {
        r = cfg_load_mem(buf, len, file, &cfg, errbuf, errlen);
        if (r < 0)
            goto out;
        cfg->path = strdup(file);
        if (!cfg->path) {
            r = PA_E_NOMEM;
            goto out;
        }
    }
    *ret = cfg;
    cfg = NULL;
out:
    cfg_free(cfg);
    free(buf);
    return r;
}

/* PA_E_CONFIG if the key has control characters (it travels in an HTTP header). */
static int cfg_key_chars_ok(const struct secret *s)
{
    for (size_t i = 0; i < s->len; i++)
        if ((unsigned char)s->buf[i] < 0x20 || s->buf[i] == 0x7f)
            return PA_E_CONFIG;
    return 0;
}

/* What can be wrong with an API key from the environment or a descriptor. */
enum cfg_key_problem { CFG_KEY_OK, CFG_KEY_LENGTH, CFG_KEY_CONTROL };

/* The message for a key from source (an environment variable or an option) with problem p. */
static void cfg_key_err(enum cfg_key_problem p, const char *source, char *errbuf, size_t errlen)
{
    if (p == CFG_KEY_LENGTH)
        cfg_err(errbuf, errlen, _("%s: empty or longer than %d bytes"), source, CFG_API_KEY_MAX);
    else if (p == CFG_KEY_CONTROL)
        cfg_err(errbuf, errlen, _("%s: contains control characters"), source);
    else
        cfg_err(errbuf, errlen, "%s", "");
}

/* A key from len bytes of text (line endings at its end dropped): 0 and *ret, or PA_E_CONFIG
 * (*ret_problem says why) or PA_E_NOMEM. */
static int cfg_key_take(const char *text, size_t len, struct secret **ret,
                        enum cfg_key_problem *ret_problem)
{
    struct secret *s = NULL;
    int r;

    *ret_problem = CFG_KEY_OK;
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    if (len == 0 || len > CFG_API_KEY_MAX) {
        *ret_problem = CFG_KEY_LENGTH;
        return PA_E_CONFIG;
    }
    r = secret_from_mem(text, len, &s);
    if (r < 0)
        return r;
    if (cfg_key_chars_ok(s) < 0) {
        secret_free(s);
        *ret_problem = CFG_KEY_CONTROL;
        return PA_E_CONFIG;
    }
    *ret = s;
    return 0;
}

/* The API key from the environment; 1 when the variable is unset or empty. */
static int cfg_api_key_env(struct secret **ret, char *errbuf, size_t errlen)
{
    const char *env = secure_getenv(CFG_API_KEY_ENV);
    enum cfg_key_problem p;
    int r;

    if (!env || !*env)
        return 1;
    r = cfg_key_take(env, strlen(env), ret, &p);
    if (r < 0)
        cfg_key_err(p, CFG_API_KEY_ENV, errbuf, errlen);
    return r;
}

/* The API key from the file named by api.key_file, after checking its type and mode. */
static int cfg_api_key_file(const struct cfg *cfg, struct secret **ret, char *errbuf, size_t errlen)
{
    const char *cname = cfg->path ? cfg->path : PKIO_DEFAULT_CONFIG;
    const char *file = cfg->api_key_file;
    struct secret *s = NULL;
    struct stat st;
    int r;

    if (!file) {
        cfg_err(errbuf, errlen, _("no API key: set api.key_file in %s or %s in the environment"),
                cname, CFG_API_KEY_ENV);
        r = PA_E_CONFIG;
        goto out;
    }
    if (lstat(file, &st) < 0) {
        cfg_err(errbuf, errlen, _("%s: api.key_file: cannot use %s: %s"), cname, file,
                strerror(errno));
        r = errno == ENOENT ? PA_E_CONFIG : PA_E_IO;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        if (S_ISLNK(st.st_mode))
            cfg_err(errbuf, errlen,
                    _("%s: api.key_file: %s is not a regular file (symbolic links are refused)"),
                    cname, file);
        else
            cfg_err(errbuf, errlen, _("%s: api.key_file: %s is not a regular file"), cname, file);
        r = PA_E_CONFIG;
        goto out;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        cfg_err(errbuf, errlen,
                _("%s: api.key_file: %s is group- or world-accessible; run: chmod 600 %s"), cname,
                file, file);
        r = PA_E_CONFIG;
        goto out;
    }
    r = secret_from_file(file, CFG_API_KEY_MAX, &s);
    if (r == PA_E_IO) {
        cfg_err(errbuf, errlen, _("%s: api.key_file: cannot read %s: %s"), cname, file,
                strerror(errno));
        goto out;
    }
    if (r < 0) {
        cfg_err(errbuf, errlen,
                _("%s: api.key_file: %s must hold the key on one line (at most %d bytes) and be "
                  "accessible only by its owner"),
                cname, file, CFG_API_KEY_MAX);
        goto out;
    }
    r = cfg_key_chars_ok(s);
    if (r < 0) {
        cfg_err(errbuf, errlen, _("%s: api.key_file: the key in %s contains control characters"),
                cname, file);
        goto out;
    }
    *ret = s;
    s = NULL;
out:
    secret_free(s);
    return r;
}

/*
 * The key taken out of the environment at start (cfg_take_env_key), or from --api-key-fd: 1 = not
 * there / not taken. What was wrong with it is said when the key is asked for (cfg_api_key),
 * in the language chosen by then.
 */
static struct secret *cfg_env_key;
static int cfg_env_rc = 1;
static bool cfg_env_taken;
static enum cfg_key_problem cfg_env_problem;
static const char *cfg_env_source = CFG_API_KEY_ENV;

void cfg_take_env_key(void)
{
    char *env = getenv(CFG_API_KEY_ENV);
    const char *senv = secure_getenv(CFG_API_KEY_ENV);

    if (cfg_env_taken)
        return;
    cfg_env_taken = true;
    if (senv && *senv)
        cfg_env_rc = cfg_key_take(senv, strlen(senv), &cfg_env_key, &cfg_env_problem);
    if (env) {
        /* Wipe "NAME=value" in place (it is what /proc/PID/environ shows), then drop it. getenv
         * points just past the '=' of the environ entry. */
        char *entry = env - (strlen(CFG_API_KEY_ENV) + 1);

        (void)unsetenv(CFG_API_KEY_ENV); /* out of environ; the string itself stays allocated */
        explicit_bzero(entry, strlen(entry));
    }
}

int cfg_take_fd_key(int fd, char *errbuf, size_t errlen)
{
    enum cfg_key_problem p = CFG_KEY_LENGTH;
    struct secret *line = NULL, *key = NULL;
    int r;

    if (fcntl(fd, F_GETFD) < 0) {
        cfg_err(errbuf, errlen, _("--api-key-fd: descriptor %d is not open"), fd);
        return PA_E_CONFIG;
    }
    r = secret_from_fd(fd, CFG_API_KEY_MAX, &line); /* closes fd */
    if (r == 0)
        r = cfg_key_take(line->buf, line->len, &key, &p);
    else if (r != PA_E_NOMEM)
        r = PA_E_CONFIG; /* nothing, or more than a key, before end of file or a newline */
    secret_free(line);
    if (r < 0) {
        cfg_key_err(p, "--api-key-fd", errbuf, errlen);
        return r;
    }
    secret_free(cfg_env_key);
    cfg_env_key = key;
    cfg_env_rc = 0;
    cfg_env_taken = true;
    cfg_env_source = "--api-key-fd";
    return 0;
}

const struct secret *cfg_env_api_key(void)
{
    return cfg_env_rc == 0 ? cfg_env_key : NULL;
}

/* The environment's key: the copy taken at start, else (tests, libraries) the variable. */
static int cfg_api_key_from_env(struct secret **ret, char *errbuf, size_t errlen)
{
    if (!cfg_env_taken)
        return cfg_api_key_env(ret, errbuf, errlen);
    if (cfg_env_rc < 0) {
        cfg_key_err(cfg_env_problem, cfg_env_source, errbuf, errlen);
        return cfg_env_rc;
    }
    if (cfg_env_rc == 1)
        return 1;
    return secret_from_mem(cfg_env_key->buf, cfg_env_key->len, ret);
}

int cfg_api_key(const struct cfg *cfg, struct secret **ret, char *errbuf, size_t errlen)
{
    struct secret *s = NULL;
    int r;

    r = cfg_api_key_from_env(&s, errbuf, errlen);
    if (r == 1)
        r = cfg_api_key_file(cfg, &s, errbuf, errlen);
    if (r < 0)
        goto out;
    *ret = s;
    s = NULL;
    r = 0;
out:
    secret_free(s);
    return r;
}
