/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * request.c - the CertCentral order body as data: strict parsing (also of the configuration,
 * req_json_parse), loading from a file or memory, the individual's fields, merging defaults,
 * placing the CSR, serialising, and wiping card data. Checking it is request_schema.c's and
 * request_rules.c's.
 */
#include "request_internal.h"

#include "config.h"
#include "fsutil.h"
#include "i18n.h"
#include "pa_err.h"
#include "secret.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REQ_MAX_DEPTH  16
#define REQ_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* ---------------------------------------------------------------------------------------- */
/* Strict parsing                                                                           */

__attribute__((format(printf, 3, 4))) static void req_msg(char *errbuf, size_t errlen,
                                                          const char *fmt, ...)
{
    va_list ap;

    if (!errbuf || !errlen)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

/* Line and column (1-based) of byte offset off in buf. */
static void req_line_col(const char *buf, size_t off, unsigned long *line, unsigned long *col)
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

/* Wipe every string below v (card data) in place before json-c frees it. */
static void req_wipe_strings(json_object *v)
{
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);

        secret_wipe((void *)(uintptr_t)s, (size_t)json_object_get_string_len(v));
    } else if (json_object_is_type(v, json_type_object)) {
        json_object_object_foreach(v, key, val)
        {
            (void)key;
            req_wipe_strings(val);
        }
    }
}

/* Free a parsed tree that is not kept, wiping its card data first; accepts NULL. */
static void req_json_drop(json_object *root)
{
    if (root && json_object_object_get_ex(root, "credit_card", NULL))
        req_wipe_strings(root);
    json_object_put(root);
}

/* Free a tokener; its scratch buffer held the last strings parsed, maybe card data. */
static void req_tokener_free(struct json_tokener *tok)
{
    if (!tok)
        return;
    if (tok->pb && tok->pb->buf)
        secret_wipe(tok->pb->buf, (size_t)tok->pb->size);
    json_tokener_free(tok);
}

/* False if any number below v does not fit a double (json-c turns 1e999 into inf). */
bool req_json_finite(struct json_object *v)
{
    size_t n;

    switch (json_object_get_type(v)) {
    case json_type_double:
        return isfinite(json_object_get_double(v));
    case json_type_object: {
        json_object_object_foreach(v, key, val)
        {
            (void)key;
            if (!req_json_finite(val))
                return false;
        }
        return true;
    }
    case json_type_array:
        n = json_object_array_length(v);
        for (size_t i = 0; i < n; i++)
            if (!req_json_finite(json_object_array_get_idx(v, i)))
                return false;
        return true;
    default:
        return true;
    }
}

/*
 * Run the tokener over buf: true with *ret (NULL for the literal null) when buf is exactly one
 * JSON value and white space, else false with the position in errbuf.
 */
static bool req_json_tokens(struct json_tokener *tok, const char *name, const char *buf, size_t len,
                            json_object **ret, char *errbuf, size_t errlen)
{
    enum json_tokener_error jerr;
    unsigned long line, col;
    json_object *root;
    size_t end;

    root = json_tokener_parse_ex(tok, buf, (int)len);
    jerr = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    if (jerr != json_tokener_success) {
        if (jerr == json_tokener_continue)
            end = len;
        req_line_col(buf, end, &line, &col);
        req_msg(errbuf, errlen, _("%s:%lu:%lu: invalid JSON: %s"), name, line, col,
                jerr == json_tokener_continue ? _("unexpected end of input")
                                              : json_tokener_error_desc(jerr));
        req_json_drop(root);
        return false;
    }
    while (end < len && isspace((unsigned char)buf[end]))
        end++;
    if (end < len) {
        req_line_col(buf, end, &line, &col);
        req_msg(errbuf, errlen, _("%s:%lu:%lu: invalid JSON: data after the end"), name, line, col);
        req_json_drop(root);
        return false;
    }
    *ret = root;
    return true;
}

int req_json_parse(const char *name, const char *buf, size_t len, size_t max, int err,
                   struct json_object **ret, char *errbuf, size_t errlen)
{
    struct json_tokener *tok = NULL;
    json_object *root = NULL;
    int r = err;

    if (len > max) {
        req_msg(errbuf, errlen, _("%s: larger than %d bytes"), name, (int)max);
        return err;
    }
    if (memchr(buf, '\0', len)) {
        req_msg(errbuf, errlen, _("%s: contains a NUL byte"), name);
        return err;
    }
    tok = json_tokener_new_ex(REQ_MAX_DEPTH);
    if (!tok)
        return PA_E_NOMEM;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    if (!req_json_tokens(tok, name, buf, len, &root, errbuf, errlen))
        goto out;
    if (!json_object_is_type(root, json_type_object)) {
        req_msg(errbuf, errlen, _("%s: must contain a JSON object"), name);
        goto out;
    }
    if (!req_json_finite(root)) {
        req_msg(errbuf, errlen, _("%s: a number is out of range"), name);
        goto out;
    }
    *ret = root;
    root = NULL;
    r = 0;
out:
    req_json_drop(root);
    req_tokener_free(tok);
    return r;
}

/* ---------------------------------------------------------------------------------------- */
/* Loading                                                                                  */

/* Parse len bytes as a request object; name is used in messages. */
static int req_parse(const char *name, const char *buf, size_t len, struct req **ret, char *errbuf,
                     size_t errlen)
{
    json_object *root = NULL;
    struct req *req;
    int r;

    r = req_json_parse(name, buf, len, REQ_MAX_SIZE, PA_E_REQUEST, &root, errbuf, errlen);
    if (r < 0)
        return r;
    req = calloc(1, sizeof(*req));
    if (!req) {
        req_json_drop(root);
        return PA_E_NOMEM;
    }
    req->root = root;
    *ret = req;
    return 0;
}

int req_load_mem(const char *buf, size_t len, struct req **ret, char *errbuf, size_t errlen)
{
    return req_parse(_("request"), buf, len, ret, errbuf, errlen);
}

int req_load_file(const char *path, struct req **ret, char *errbuf, size_t errlen)
{
    struct req *req = NULL;
    struct fs_read rd;
    int r;

    r = fs_read(path, REQ_MAX_SIZE, &rd);
    if (r < 0) {
        fs_read_explain(&rd, path, REQ_MAX_SIZE, errbuf, errlen);
        return r == PA_E_NOMEM ? r : PA_E_REQUEST;
    }
    r = req_parse(path, rd.buf, rd.len, &req, errbuf, errlen);
    if (r == 0 && json_object_object_get_ex(req->root, "credit_card", NULL) &&
        (rd.mode & (S_IRWXG | S_IRWXO))) {
        req_msg(errbuf, errlen,
                _("%s: contains credit card data but is group- or world-accessible; run: chmod "
                  "600 %s"),
                path, path);
        r = PA_E_REQUEST;
    }
    if (r == 0) {
        *ret = req;
        req = NULL;
    }
    req_free(req);
    secret_wipe(rd.buf, rd.len);
    free(rd.buf);
    return r;
}

/* ---------------------------------------------------------------------------------------- */
/* Reading, editing, output                                                                 */

void req_free(struct req *req)
{
    json_object *cc;

    if (!req)
        return;
    /* Card data is wiped in place before json-c frees it. */
    cc = json_object_is_type(req->root, json_type_object)
             ? json_object_object_get(req->root, "credit_card")
             : NULL;
    if (cc)
        req_wipe_strings(cc);
    json_object_put(req->root);
    free(req);
}

/* The string value of an optional member, or NULL. */
static const char *req_opt_string(json_object *obj, const char *key)
{
    json_object *v = req_opt(obj, key, REQ_T_STRING);

    return v ? json_object_get_string(v) : NULL;
}

int req_individual(const struct req *req, const char **first, const char **last,
                   const char **country, long *individual_id)
{
    json_object *cert = NULL, *ind = NULL, *v = NULL;

    if (!json_object_object_get_ex(req->root, "certificate", &cert) ||
        !json_object_object_get_ex(cert, "individual", &ind) ||
        !json_object_is_type(ind, json_type_object))
        return PA_E_REQUEST;
    if (first)
        *first = req_opt_string(ind, "first_name");
    if (last)
        *last = req_opt_string(ind, "last_name");
    if (country)
        *country = req_opt_string(ind, "country");
    if (individual_id) {
        v = req_opt(ind, "id", REQ_T_INT);
        *individual_id = v && json_object_get_int64(v) > 0 ? (long)json_object_get_int64(v) : -1;
    }
    return 0;
}

const char *req_profile_option(const struct req *req)
{
    json_object *cert = NULL;

    if (!json_object_object_get_ex(req->root, "certificate", &cert) ||
        !json_object_is_type(cert, json_type_object))
        return NULL;
    return req_opt_string(cert, "profile_option");
}

const char *req_individual_str(const struct req *req, const char *key)
{
    json_object *cert = NULL, *ind = NULL;

    if (!json_object_object_get_ex(req->root, "certificate", &cert) ||
        !json_object_object_get_ex(cert, "individual", &ind) ||
        !json_object_is_type(ind, json_type_object))
        return NULL;
    return req_opt_string(ind, key);
}

/* Add the members of src that dst lacks; merge objects present in both. */
static int req_merge(json_object *dst, json_object *src)
{
    int r;

    json_object_object_foreach(src, key, val)
    {
        json_object *cur = NULL;

        if (!json_object_object_get_ex(dst, key, &cur)) {
            if (json_object_object_add(dst, key, json_object_get(val)) < 0) {
                json_object_put(val);
                return PA_E_NOMEM;
            }
            continue;
        }
        if (json_object_is_type(cur, json_type_object) &&
            json_object_is_type(val, json_type_object)) {
            r = req_merge(cur, val);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

int req_merge_defaults(struct req *req, const struct cfg *cfg)
{
    json_object *defs = NULL;
    int r;

    if (!cfg->order_defaults)
        return 0;
    defs = json_tokener_parse(cfg->order_defaults);
    if (!json_object_is_type(defs, json_type_object)) {
        r = PA_E_CONFIG;
        goto out;
    }
    r = req_merge(req->root, defs);
out:
    json_object_put(defs);
    return r;
}

int req_set_csr(struct req *req, const struct cfg *cfg, const char *csr_pem)
{
    char seg[REQ_PATH_MAX];
    const char *p = cfg->api_csr_field;
    json_object *cur = req->root, *next = NULL, *str = NULL;
    int r;

    if (!p || !csr_pem)
        return PA_E_INTERNAL;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);

        if (n == 0 || n >= sizeof(seg)) {
            r = PA_E_CONFIG;
            goto out;
        }
        memcpy(seg, p, n);
        seg[n] = '\0';
        if (!dot)
            break;
        if (json_object_object_get_ex(cur, seg, &next)) {
            if (!json_object_is_type(next, json_type_object)) {
                r = PA_E_REQUEST;
                goto out;
            }
        } else {
            next = json_object_new_object();
            if (!next) {
                r = PA_E_NOMEM;
                goto out;
            }
            if (json_object_object_add(cur, seg, next) < 0) {
                json_object_put(next);
                r = PA_E_NOMEM;
                goto out;
            }
        }
        cur = next;
        p = dot + 1;
    }
    str = json_object_new_string(csr_pem);
    if (!str) {
        r = PA_E_NOMEM;
        goto out;
    }
    if (json_object_object_add(cur, seg, str) < 0) {
        r = PA_E_NOMEM;
        goto out;
    }
    str = NULL;
    r = 0;
out:
    json_object_put(str);
    return r;
}

char *req_to_json(const struct req *req)
{
    const char *s;
    size_t len = 0;
    char *out;

    s = json_object_to_json_string_length(req->root, REQ_JSON_FLAGS, &len);
    if (!s)
        return NULL;
    out = malloc(len + 1);
    if (out) {
        memcpy(out, s, len);
        out[len] = '\0';
    }
    /* json-c keeps the text in the object's print buffer: do not leave card data there. */
    secret_wipe((void *)(uintptr_t)s, len);
    return out;
}

bool req_has_card(const struct req *req)
{
    json_object *pm = NULL;

    if (json_object_object_get_ex(req->root, "credit_card", NULL))
        return true;
    return json_object_object_get_ex(req->root, "payment_method", &pm) &&
           json_object_is_type(pm, json_type_string) &&
           strcmp(json_object_get_string(pm), "card") == 0;
}
