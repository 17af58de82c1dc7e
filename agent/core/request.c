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
#include "pjson.h"
#include "secret.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REQ_MAX_DEPTH  16
#define REQ_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* ---------------------------------------------------------------------------------------- */
/* Strict parsing                                                                           */

/* Free a parsed tree that is not kept, wiping its card data first; accepts NULL. */
static void req_json_drop(json_object *root)
{
    if (root && json_object_object_get_ex(root, "credit_card", NULL))
        pjson_wipe(root);
    json_object_put(root);
}

int req_json_parse(const char *name, const char *buf, size_t len, size_t max, int err,
                   struct json_object **ret, char *errbuf, size_t errlen)
{
    const struct pjson_opts o = {max, REQ_MAX_DEPTH,
                                 PJSON_UTF8 | PJSON_OBJECT | PJSON_FINITE | PJSON_WIPE, err};
    struct pjson_err e;
    int r = pjson_parse(buf, len, &o, ret, &e);

    if (r < 0 && r != PA_E_NOMEM)
        pjson_explain(&e, name, max, errbuf, errlen);
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
        r = pa_errf(errbuf, errlen, PA_E_REQUEST,
                    _("%s: contains credit card data but is group- or world-accessible; run: "
                      "chmod 600 %s"),
                    path, path);
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
        pjson_wipe(cc);
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
    const struct pjson_opts o = {0, REQ_MAX_DEPTH, PJSON_OBJECT, PA_E_CONFIG};
    json_object *defs = NULL;
    int r;

    if (!cfg->order_defaults)
        return 0;
    r = pjson_parse(cfg->order_defaults, strlen(cfg->order_defaults), &o, &defs, NULL);
    if (r == 0)
        r = req_merge(req->root, defs);
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
