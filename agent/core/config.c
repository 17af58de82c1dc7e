/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.c - load and check the JSON configuration file (pkio-agent.conf(5)); the API key is
 * config_key.c's.
 *
 * The file is an object of sections ("api", "token", "poll", "trust", "renew", "ui") and top-level
 * keys
 * ("order_defaults", "state_dir"). A key may also be written in its dotted form at the top level
 * ("api.url": ...). Every key is checked once against one table; anything else is an error.
 */
#include "config.h"
#include "config_internal.h"
#include "i18n.h"

#include "fsutil.h"
#include "log.h"
#include "pa_err.h"
#include "request.h"
#include "secret.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

const char *cfg_name(const struct cfg *cfg)
{
    return cfg->path ? cfg->path : PKIO_DEFAULT_CONFIG;
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

/* An https:// URL with a host, without characters that have no place in one. */
static bool cfg_url_ok(const char *s, size_t n)
{
    return strncasecmp(s, "https://", 8) == 0 && n != 8 && s[8] != '/' &&
           !strpbrk(s, " \"<>\\^`{|}");
}

/* An http:// or https:// proxy URL. */
static bool cfg_proxy_ok(const char *s)
{
    return (strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0) &&
           !strpbrk(s, " \"<>\\^`{|}");
}

/* Does s (n bytes) hold a control character? */
static bool cfg_has_control(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return true;
    return false;
}

/*
 * Check a non-empty string s for kind k: 0, or PA_E_CONFIG with the message. *n becomes the
 * length to keep (a URL loses trailing slashes).
 */
static int cfg_check_kind(struct cfg_ctx *c, const struct cfg_key *k, const char *s, size_t *n)
{
    switch (k->kind) {
    case CK_URL:
        if (!cfg_url_ok(s, *n))
            return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG, _("%s: %s: must be an https:// URL"),
                           c->name, k->name);
        while (*n > 9 && s[*n - 1] == '/')
            (*n)--;
        return 0;
    case CK_PROXY:
        if (!cfg_proxy_ok(s))
            return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG,
                           _("%s: %s: must be an http:// or https:// proxy URL"), c->name, k->name);
        return 0;
    case CK_PRODUCT:
        if (!req_product_supported(s))
            return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG,
                           _("%s: %s: unsupported product (supported: %s)"), c->name, k->name,
                           req_product_list());
        return 0;
    case CK_FIELD:
        if (!cfg_field_ok(s, *n))
            return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG,
                           _("%s: %s: must be a dotted field path such as \"certificate.csr\""),
                           c->name, k->name);
        return 0;
    case CK_LANG:
        if (!i18n_lang_valid(s))
            return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG, _("%s: %s: must be \"nl\" or \"en\""),
                           c->name, k->name);
        return 0;
    case CK_URI:
        if (strncasecmp(s, "pkcs11:", 7) != 0)
            return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG, _("%s: %s: must be a pkcs11: URI"),
                           c->name, k->name);
        return 0;
    default:
        return 0;
    }
}

/* Check a string value for kind k; on success *ret_val is a malloc'd copy. */
static int cfg_take_string(struct cfg_ctx *c, const struct cfg_key *k, json_object *v,
                           char **ret_val)
{
    const char *s;
    size_t n;
    char *copy = NULL;
    int r;

    if (!json_object_is_type(v, json_type_string))
        return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG, _("%s: %s: must be a string"), c->name,
                       k->name);
    s = json_object_get_string(v);
    n = (size_t)json_object_get_string_len(v);
    if (n == 0)
        return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG, _("%s: %s: must not be empty"), c->name,
                       k->name);
    if (cfg_has_control(s, n))
        return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG,
                       _("%s: %s: must not contain control characters"), c->name, k->name);
    r = cfg_check_kind(c, k, s, &n);
    if (r < 0)
        return r;
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
    if (!s || !*s || strlen(s) > max || cfg_has_control(s, strlen(s)))
        return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG,
                       _("%s: token.allowed[%zu].%s: must be a string of 1 to %zu "
                         "printable characters"),
                       c->name, i, key, max);
    *ret = strdup(s);
    return *ret ? 0 : PA_E_NOMEM;
}

/* Entry i of token.allowed: an object of manufacturer, model and module, with at least a
 * manufacturer or a model. t's strings are set as far as they were read, also on failure. */
static int cfg_take_rule(struct cfg_ctx *c, json_object *o, size_t i, struct cfg_token_rule *t)
{
    if (!json_object_is_type(o, json_type_object))
        return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG,
                       _("%s: token.allowed[%zu]: must be an object"), c->name, i);
    json_object_object_foreach(o, key, val)
    {
        (void)val;
        if (strcmp(key, "manufacturer") && strcmp(key, "model") && strcmp(key, "module"))
            return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG,
                           _("%s: token.allowed[%zu]: unknown key"), c->name, i);
    }
    if (cfg_rule_str(c, o, "manufacturer", i, 32, &t->manufacturer) < 0 ||
        cfg_rule_str(c, o, "model", i, 16, &t->model) < 0 ||
        cfg_rule_str(c, o, "module", i, 4096, &t->module) < 0)
        return PA_E_CONFIG;
    if (!t->manufacturer && !t->model)
        return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG,
                       _("%s: token.allowed[%zu]: needs a manufacturer or a model"), c->name, i);
    return 0;
}

/* token.allowed: [{"manufacturer": ..., "model": ..., "module": ...}, ...], each with at least
 * a manufacturer or a model, and no other keys. */
static int cfg_take_rules(struct cfg_ctx *c, json_object *v, struct cfg_token_rules **ret)
{
    struct cfg_token_rules *rules = NULL;
    size_t n;
    int r = PA_E_CONFIG;

    if (!json_object_is_type(v, json_type_array) || (n = json_object_array_length(v)) == 0)
        return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG,
                       _("%s: token.allowed: must be a non-empty array"), c->name);
    rules = calloc(1, sizeof(*rules));
    if (rules)
        rules->v = calloc(n, sizeof(*rules->v));
    if (!rules || !rules->v) {
        r = PA_E_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        rules->n = i + 1; /* so that a failure below frees this entry's strings too */
        r = cfg_take_rule(c, json_object_array_get_idx(v, i), i, &rules->v[i]);
        if (r < 0)
            goto out;
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

    if (!json_object_is_type(v, json_type_int))
        return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG,
                       _("%s: %s: must be a whole number of days"), c->name, k->name);
    errno = 0;
    d = json_object_get_int64(v);
    if (errno || d < 1 || d > CFG_MAX_DAYS)
        return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG, _("%s: %s: must be 1 to %d"), c->name,
                       k->name, CFG_MAX_DAYS);
    *(int *)(void *)((char *)cfg + k->off) = (int)d;
    return 0;
}

/* A fraction in (0,1] (api.rate_share). */
static int cfg_take_share(struct cfg_ctx *c, struct cfg *cfg, const struct cfg_key *k,
                          json_object *v)
{
    double d = json_object_get_double(v);

    if ((!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) ||
        !isfinite(d) || d <= 0 || d > 1)
        return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG,
                       _("%s: %s: must be a number > 0 and at most 1"), c->name, k->name);
    *cfg_num_slot(cfg, k) = d;
    return 0;
}

/* A number of seconds, > 0 and at most CFG_MAX_SECONDS. */
static int cfg_take_seconds(struct cfg_ctx *c, struct cfg *cfg, const struct cfg_key *k,
                            json_object *v)
{
    double d;

    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
        return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG, _("%s: %s: must be a number of seconds"),
                       c->name, k->name);
    d = json_object_get_double(v);
    if (!isfinite(d) || d <= 0 || d > CFG_MAX_SECONDS)
        return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG, _("%s: %s: must be > 0 and at most %.0f"),
                       c->name, k->name, CFG_MAX_SECONDS);
    *cfg_num_slot(cfg, k) = d;
    return 0;
}

/* true or false. */
static int cfg_take_bool(struct cfg_ctx *c, struct cfg *cfg, const struct cfg_key *k,
                         json_object *v)
{
    if (!json_object_is_type(v, json_type_boolean))
        return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG, _("%s: %s: must be true or false"),
                       c->name, k->name);
    *(bool *)(void *)((char *)cfg + k->off) = json_object_get_boolean(v);
    return 0;
}

/* token.allowed, replacing any rules given before. */
static int cfg_take_tokens(struct cfg_ctx *c, struct cfg *cfg, json_object *v)
{
    struct cfg_token_rules *rules = NULL;
    int r = cfg_take_rules(c, v, &rules);

    if (r < 0)
        return r;
    cfg_rules_free(cfg->token_allowed);
    cfg->token_allowed = rules;
    return 0;
}

/* An object without card data, kept as compact JSON text (order_defaults). */
static int cfg_take_object(struct cfg_ctx *c, const struct cfg_key *k, json_object *v,
                           char **ret_val)
{
    if (!json_object_is_type(v, json_type_object))
        return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG, _("%s: %s: must be an object"), c->name,
                       k->name);
    if (json_object_object_get_ex(v, "credit_card", NULL))
        return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG,
                       _("%s: %s.credit_card: card data does not belong in the configuration"),
                       c->name, k->name);
    *ret_val = strdup(
        json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    return *ret_val ? 0 : PA_E_NOMEM;
}

/* Check and store one key's value. */
static int cfg_set(struct cfg_ctx *c, struct cfg *cfg, const struct cfg_key *k, json_object *v)
{
    char *s = NULL;
    int r;

    switch (k->kind) {
    case CK_BOOL:
        return cfg_take_bool(c, cfg, k, v);
    case CK_DAYS:
        return cfg_take_days(c, cfg, k, v);
    case CK_SHARE:
        return cfg_take_share(c, cfg, k, v);
    case CK_TOKENS:
        return cfg_take_tokens(c, cfg, v);
    case CK_SECONDS:
        return cfg_take_seconds(c, cfg, k, v);
    case CK_OBJECT:
        r = cfg_take_object(c, k, v, &s);
        break;
    default:
        r = cfg_take_string(c, k, v, &s);
        break;
    }
    if (r < 0)
        return r;
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
        if (c->seen[i])
            return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG, _("%s: %s: given twice"), c->name,
                           name);
        c->seen[i] = true;
        return cfg_set(c, cfg, &cfg_keys[i], v);
    }
    cfg_printable(name, shown, sizeof(shown));
    return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG, _("%s: unknown key \"%s\""), c->name, shown);
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
        if (!json_object_is_type(val, json_type_object))
            return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG, _("%s: %s: must be an object"),
                           c->name, key);
        json_object_object_foreach(val, sub, subval)
        {
            if (strlen(sub) + strlen(key) + 2 > sizeof(full)) {
                cfg_printable(sub, shown, sizeof(shown));
                return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG, _("%s: unknown key \"%s.%s\""),
                               c->name, key, shown);
            }
            if (snprintf(full, sizeof(full), "%s.%s", key, sub) >= (int)sizeof(full))
                return PA_E_CONFIG; /* unreachable: checked above; keeps -O2 quiet */
            r = cfg_apply(c, cfg, full, subval);
            if (r < 0)
                return r;
        }
    }
    if (cfg->api_connect_timeout_s > cfg->api_timeout_s)
        return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG,
                       _("%s: api.connect_timeout_s: must not exceed api.timeout_s (%g > %g)"),
                       c->name, cfg->api_connect_timeout_s, cfg->api_timeout_s);
    if (cfg->poll_initial_s > cfg->poll_max_s)
        return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG,
                       _("%s: poll.initial_s: must not exceed poll.max_s (%g > %g)"), c->name,
                       cfg->poll_initial_s, cfg->poll_max_s);
    if (cfg_fields_overlap(cfg->api_csr_field, cfg->api_provisioning_field))
        return pa_errf(c->errbuf, c->errlen, PA_E_CONFIG,
                       _("%s: api.provisioning_field: must not overlap api.csr_field"), c->name);
    return 0;
}

int cfg_load_mem(const char *buf, size_t len, const char *name, struct cfg **ret, char *errbuf,
                 size_t errlen)
{
    struct cfg_ctx c = {.name = name ? name : "config", .errbuf = errbuf, .errlen = errlen};
    json_object *root = NULL;
    struct cfg *cfg = NULL;
    int r;

    r = req_json_parse(c.name, buf, len, CFG_MAX_FILE, PA_E_CONFIG, &root, errbuf, errlen);
    if (r < 0)
        return r;
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
    return r;
}

/*
 * Read the configuration file: 0 with *rd filled, 1 when it does not exist and may be missing
 * (missing_ok), else PA_E_CONFIG (missing, not a regular file, too large) or PA_E_IO with the
 * message, or PA_E_NOMEM.
 */
static int cfg_read_file(const char *path, bool missing_ok, struct fs_read *rd, char *errbuf,
                         size_t errlen)
{
    int r = fs_read(path, CFG_MAX_FILE, rd);

    if (r == 0 || r == PA_E_NOMEM)
        return r;
    if (rd->failed == FS_READ_OPEN && rd->err == ENOENT && missing_ok)
        return 1;
    fs_read_explain(rd, path, CFG_MAX_FILE, errbuf, errlen);
    switch (rd->failed) {
    case FS_READ_OPEN:
        return rd->err == ENOENT ? PA_E_CONFIG : PA_E_IO;
    case FS_READ_TYPE:
    case FS_READ_SIZE:
        return PA_E_CONFIG;
    default:
        return PA_E_IO;
    }
}

int cfg_load(const char *path, struct cfg **ret, char *errbuf, size_t errlen)
{
    const char *file = path ? path : PKIO_DEFAULT_CONFIG;
    struct cfg *cfg = NULL;
    struct fs_read rd = {0};
    int r;

    r = cfg_read_file(file, path == NULL, &rd, errbuf, errlen);
    if (r < 0)
        goto out;
    if (r == 1) {
        log_debug("config: %s not found, using defaults", file);
        r = cfg_new_defaults(&cfg);
        if (r < 0)
            goto out;
    } else {
        r = cfg_load_mem(rd.buf, rd.len, file, &cfg, errbuf, errlen);
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
    free(rd.buf);
    return r;
}
