/* SPDX-License-Identifier: Apache-2.0 */
#include "certcentral.h"

#include "http.h"
#include "i18n.h"
#include "log.h"
#include "pa_err.h"
#include "ratebudget.h"
#include "secret.h"
#include "stop.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#define CC_JSON_DEPTH      20
#define CC_URL_MAX         2048
#define CC_MAX_ORDERS      100000 /* list results we accept in total */
#define CC_MAX_PAGES       10000
#define CC_MAX_ERRORS      8 /* entries of an errors array we report */
#define CC_MAX_PEM_CERTS   16
#define CC_DEFAULT_PAGE    1000
#define CC_AUTH_HINT       N_("check api.key_file / PKIO_AGENT_API_KEY; the key needs the Orders role")
#define CC_HINT_MAYBE      N_("the order may have been placed; run resume/status before ordering again")
#define CC_HINT_NOT_PLACED N_("the order was not placed")

/* exchange(): the before-send hook stopped the request; never leaves this file. */
#define PA_E_STOPPED_BEFORE_SEND (-1000)
/* send_once(): a stop (SIGTERM) came before the request was sent; never leaves this file. */
#define PA_E_STOPPED_WAITING (-1001)

enum retry_policy {
    RP_NONE,        /* never retried (the order POST) */
    RP_IDEMPOTENT,  /* GET: retried on 429, 5xx and network failures */
    RP_UNPROCESSED, /* PUT: retried only when the server cannot have acted (429, 503, not sent) */
};

struct cc_client {
    char *base_url; /* without trailing '/' */
    char *ca_bundle;
    char *proxy;
    char *user_agent;
    struct http_opts opts; /* points at the copies above */
    struct secret *key;

    unsigned attempts;
    double base_s;
    double cap_s;
    cc_sleep_fn *sleep_fn;
    void *sleep_arg;
    cc_clock_fn *clock_fn;
    void *clock_arg;

    /* Rate budget: completion times of the most recent requests, a ring. */
    double *ring;
    size_t ring_cap;
    size_t ring_count;
    size_t ring_head;           /* next slot to write */
    struct rb_limits lim;       /* as set (the key's limits) */
    double share;               /* this station's part of them, (0,1] */
    struct rb_limits eff;       /* lim scaled by share: what this client keeps to */
    char *station_path;         /* the station's budget file, or NULL */
    struct rb_station *station; /* opened at the first request */
    bool station_failed;        /* the file cannot be used: own budget only */

    struct http_conn *conn; /* kept open between requests */
    unsigned long connections;

    unsigned page_size;
    unsigned long requests;
    cc_before_send_fn *before_send; /* set during cc_place_order only */
    void *before_send_arg;
    int before_send_rc;
    bool maybe_placed;    /* of the last cc_place_order */
    bool last_maybe_sent; /* of the last failed exchange */
    char last_error[512];
};

/* Reason text of a parser failure (internal; public parsers pass NULL). */
struct perr {
    char msg[160];
};

/* ---------------------------------------------------------------------------------------- */
/* small helpers */

static void sanitize(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            *s = '?';
}

__attribute__((format(printf, 2, 3))) static void perr_set(struct perr *pe, const char *fmt, ...)
{
    va_list ap;

    if (!pe)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(pe->msg, sizeof(pe->msg), fmt, ap);
    va_end(ap);
    sanitize(pe->msg);
}

/* Overwrite every occurrence of the API key in the error text. */
static void mask_key(struct cc_client *c)
{
    size_t klen = c->key ? c->key->len : 0;
    char *p = c->last_error;

    if (klen < 4)
        return;
    while ((p = memmem(p, strlen(p), c->key->buf, klen)) != NULL)
        memset(p, '*', klen);
}

__attribute__((format(printf, 2, 3))) static void set_error(struct cc_client *c, const char *fmt,
                                                            ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(c->last_error, sizeof(c->last_error), fmt, ap);
    va_end(ap);
    sanitize(c->last_error);
    mask_key(c);
}

__attribute__((format(printf, 2, 3))) static void append_error(struct cc_client *c, const char *fmt,
                                                               ...)
{
    size_t used = strlen(c->last_error);
    va_list ap;

    if (used + 1 >= sizeof(c->last_error))
        return;
    va_start(ap, fmt);
    (void)vsnprintf(c->last_error + used, sizeof(c->last_error) - used, fmt, ap);
    va_end(ap);
    sanitize(c->last_error);
    mask_key(c);
}

/* True if the media type of content_type (parameters ignored) equals type. */
static bool media_is(const char *content_type, const char *type)
{
    size_t n = strlen(type);

    if (!content_type)
        return false;
    while (*content_type == ' ' || *content_type == '\t')
        content_type++;
    if (strncasecmp(content_type, type, n) != 0)
        return false;
    content_type += n;
    while (*content_type == ' ' || *content_type == '\t')
        content_type++;
    return *content_type == '\0' || *content_type == ';';
}

static bool valid_product(const char *p)
{
    size_t n = 0;

    if (!p)
        return false;
    for (; p[n]; n++)
        if (!((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= '0' && p[n] <= '9') || p[n] == '_'))
            return false;
    return n > 0 && n <= 64;
}

static bool valid_date(const char *d)
{
    if (!d || strlen(d) != 10)
        return false;
    for (int i = 0; i < 10; i++) {
        if (i == 4 || i == 7) {
            if (d[i] != '-')
                return false;
        } else if (d[i] < '0' || d[i] > '9') {
            return false;
        }
    }
    return true;
}

/* Copy a string into a fixed buffer, truncating. */
static void copy_str(char *dst, size_t dstlen, const char *src)
{
    if (!dstlen)
        return;
    (void)snprintf(dst, dstlen, "%s", src ? src : "");
}

/* ---------------------------------------------------------------------------------------- */
/* status mapping, backoff */

enum cc_status cc_map_status(const char *status, char *reason, size_t reason_len)
{
    static const struct {
        const char *status;
        enum cc_status st;
        const char *reason;
    } map[] = {
        {"issued", CC_ST_ISSUED, N_("issued")},
        {"pending", CC_ST_WAITING, N_("pending: DigiCert is processing the order (validation)")},
        {"processing", CC_ST_WAITING, N_("processing at DigiCert")},
        {"needs_approval", CC_ST_WAITING, N_("needs approval in CertCentral")},
        {"waiting_pickup", CC_ST_WAITING, N_("waiting for pickup")},
        {"reissue_pending", CC_ST_WAITING, N_("a reissue is pending at DigiCert")},
        {"submitted", CC_ST_WAITING, N_("submitted, awaiting approval in CertCentral")},
        {"approved", CC_ST_WAITING, N_("approved, certificate not issued yet")},
        {"rejected", CC_ST_FAILED, N_("rejected by DigiCert")},
        {"denied", CC_ST_FAILED, N_("denied in CertCentral")},
        {"canceled", CC_ST_FAILED, N_("canceled")},
        {"revoked", CC_ST_FAILED, N_("certificate revoked")},
        {"expired", CC_ST_FAILED, N_("expired")},
    };

    for (size_t i = 0; status && i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(status, map[i].status) == 0) {
            if (reason)
                copy_str(reason, reason_len, map[i].reason);
            return map[i].st;
        }
    }
    if (reason && reason_len) {
        (void)snprintf(reason, reason_len, "unknown order status \"%.40s\"",
                       status ? status : "(none)");
        sanitize(reason);
    }
    return CC_ST_UNKNOWN;
}

double cc_backoff_delay(unsigned attempt, double base_s, double cap_s, double rnd01)
{
    double hi;

    if (attempt == 0 || !(base_s > 0) || !(cap_s > 0))
        return 0;
    if (cap_s < base_s)
        return cap_s;
    if (!(rnd01 >= 0))
        rnd01 = 0;
    if (rnd01 > 1)
        rnd01 = 1;
    hi = base_s;
    for (unsigned i = 1; i < attempt && hi < cap_s; i++)
        hi *= 2;
    if (hi > cap_s)
        hi = cap_s;
    return base_s + rnd01 * (hi - base_s);
}

/* ---------------------------------------------------------------------------------------- */
/* json-c helpers: strict parse, typed getters */

/*
 * Parse body[0..len) as one JSON object: strict, UTF-8 checked, depth-limited, the whole input
 * consumed (trailing whitespace only). A truncated body is an error. *ret: json_object_put.
 */
static int parse_json_object(const char *body, size_t len, struct json_object **ret,
                             struct perr *pe)
{
    struct json_tokener *tok = NULL;
    struct json_object *obj = NULL;
    enum json_tokener_error jerr;
    int r = PA_E_CA_PROTOCOL;

    if (!body || len == 0) {
        perr_set(pe, _("empty body"));
        goto out;
    }
    if (len > INT_MAX || memchr(body, '\0', len)) {
        perr_set(pe, _("body too large or contains NUL bytes"));
        goto out;
    }
    tok = json_tokener_new_ex(CC_JSON_DEPTH);
    if (!tok) {
        r = PA_E_NOMEM;
        goto out;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    obj = json_tokener_parse_ex(tok, body, (int)len);
    jerr = json_tokener_get_error(tok);
    if (jerr == json_tokener_continue) {
        perr_set(pe, _("truncated JSON"));
        goto out;
    }
    if (!obj || jerr != json_tokener_success) {
        perr_set(pe, _("invalid JSON (%s)"), json_tokener_error_desc(jerr));
        goto out;
    }
    for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
        if (body[i] != ' ' && body[i] != '\t' && body[i] != '\r' && body[i] != '\n') {
            perr_set(pe, _("trailing data after JSON"));
            goto out;
        }
    }
    if (!json_object_is_type(obj, json_type_object)) {
        perr_set(pe, _("JSON answer is not an object"));
        goto out;
    }
    *ret = obj;
    obj = NULL;
    r = 0;
out:
    json_object_put(obj);
    if (tok)
        json_tokener_free(tok);
    return r;
}

/*
 * Typed member lookup. Returns 1 when key is present with type t, 0 when absent or null (an
 * error if required), PA_E_CA_PROTOCOL when present with another type.
 */
static int get_typed(struct json_object *o, const char *key, enum json_type t, bool required,
                     struct json_object **ret, struct perr *pe)
{
    struct json_object *v = NULL;

    *ret = NULL;
    if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
        if (required) {
            perr_set(pe, _("\"%s\" missing"), key);
            return PA_E_CA_PROTOCOL;
        }
        return 0;
    }
    if (!json_object_is_type(v, t)) {
        perr_set(pe, _("\"%s\" is a %s, expected %s"), key,
                 json_type_to_name(json_object_get_type(v)), json_type_to_name(t));
        return PA_E_CA_PROTOCOL;
    }
    *ret = v;
    return 1;
}

/* A positive integer id; *ret stays 0 when absent. */
static int get_id(struct json_object *o, const char *key, bool required, long *ret, struct perr *pe)
{
    struct json_object *v;
    int64_t id;
    int r = get_typed(o, key, json_type_int, required, &v, pe);

    if (r <= 0)
        return r;
    errno = 0;
    id = json_object_get_int64(v);
    if (id <= 0 || id >= INT64_MAX || (long)id != id || errno != 0) {
        perr_set(pe, _("\"%s\" is not a valid id"), key);
        return PA_E_CA_PROTOCOL;
    }
    *ret = (long)id;
    return 1;
}

/* A string without embedded NUL; *ret points into o (valid while o lives). */
static int get_str(struct json_object *o, const char *key, bool required, const char **ret,
                   struct perr *pe)
{
    struct json_object *v;
    const char *s;
    int r = get_typed(o, key, json_type_string, required, &v, pe);

    *ret = NULL;
    if (r <= 0)
        return r;
    s = json_object_get_string(v);
    if (!s || strlen(s) != (size_t)json_object_get_string_len(v)) {
        perr_set(pe, _("\"%s\" contains a NUL character"), key);
        return PA_E_CA_PROTOCOL;
    }
    *ret = s;
    return 1;
}

/* get_str + strdup; *ret NULL when absent. */
static int dup_str(struct json_object *o, const char *key, char **ret, struct perr *pe)
{
    const char *s;
    int r = get_str(o, key, false, &s, pe);

    if (r <= 0)
        return r;
    *ret = strdup(s);
    return *ret ? 1 : PA_E_NOMEM;
}

/* ---------------------------------------------------------------------------------------- */
/* pure parsers */

static int parse_errors_ex(const char *body, size_t len, char *msg, size_t msglen, struct perr *pe)
{
    struct json_object *root = NULL, *errs = NULL, *one = NULL;
    size_t used = 0, n, count = 0;
    int r;

    if (msglen)
        msg[0] = '\0';
    r = parse_json_object(body, len, &root, pe);
    if (r < 0)
        goto out;
    if (!json_object_object_get_ex(root, "errors", &errs)) {
        perr_set(pe, _("no \"errors\" member"));
        r = PA_E_CA_PROTOCOL;
        goto out;
    }
    if (json_object_is_type(errs, json_type_object)) {
        one = errs; /* an old shape: a single error object */
        n = 1;
    } else if (json_object_is_type(errs, json_type_array)) {
        n = json_object_array_length(errs);
    } else {
        perr_set(pe, _("\"errors\" is not an array"));
        r = PA_E_CA_PROTOCOL;
        goto out;
    }
    for (size_t i = 0; i < n && count < CC_MAX_ERRORS; i++) {
        struct json_object *e = one ? one : json_object_array_get_idx(errs, i);
        const char *code = NULL, *text = NULL;
        int w;

        if (!json_object_is_type(e, json_type_object)) {
            perr_set(pe, _("an error entry is not an object"));
            r = PA_E_CA_PROTOCOL;
            goto out;
        }
        r = get_str(e, "code", true, &code, pe);
        if (r < 0)
            goto out;
        if (code[0] == '\0') {
            perr_set(pe, _("an error entry has an empty code"));
            r = PA_E_CA_PROTOCOL;
            goto out;
        }
        r = get_str(e, "message", false, &text, pe);
        if (r < 0)
            goto out;
        if (used >= msglen)
            continue;
        w = snprintf(msg + used, msglen - used, "%s%.100s%s%.200s", count ? "; " : "", code,
                     text ? ": " : "", text ? text : "");
        if (w > 0)
            used += (size_t)w;
        count++;
    }
    if (count == 0) {
        perr_set(pe, _("empty \"errors\""));
        r = PA_E_CA_PROTOCOL;
        goto out;
    }
    if (msglen)
        sanitize(msg);
    r = 0;
out:
    if (r < 0 && msglen)
        msg[0] = '\0';
    json_object_put(root);
    return r;
}

int cc_parse_errors(const char *body, size_t len, char *msg, size_t msglen)
{
    return parse_errors_ex(body, len, msg, msglen, NULL);
}

static int parse_order_result_ex(const char *body, size_t len, struct cc_order_result *ret,
                                 struct perr *pe)
{
    struct json_object *root = NULL, *reqs = NULL;
    struct cc_order_result res;
    int r;

    memset(&res, 0, sizeof(res));
    r = parse_json_object(body, len, &root, pe);
    if (r < 0)
        goto out;
    r = get_id(root, "id", true, &res.id, pe);
    if (r < 0)
        goto out;
    r = get_id(root, "certificate_id", false, &res.certificate_id, pe);
    if (r < 0)
        goto out;
    r = get_typed(root, "requests", json_type_array, false, &reqs, pe);
    if (r < 0)
        goto out;
    if (reqs && json_object_array_length(reqs) > 0) {
        struct json_object *req0 = json_object_array_get_idx(reqs, 0);
        const char *st = NULL;
        long req_id = 0;

        if (!json_object_is_type(req0, json_type_object)) {
            perr_set(pe, _("requests[0] is not an object"));
            r = PA_E_CA_PROTOCOL;
            goto out;
        }
        r = get_id(req0, "id", false, &req_id, pe);
        if (r < 0)
            goto out;
        r = get_str(req0, "status", false, &st, pe);
        if (r < 0)
            goto out;
        copy_str(res.request_status, sizeof(res.request_status), st);
    }
    *ret = res;
    r = 0;
out:
    json_object_put(root);
    return r;
}

int cc_parse_order_result(const char *body, size_t len, struct cc_order_result *ret)
{
    return parse_order_result_ex(body, len, ret, NULL);
}

void cc_order_info_clear(struct cc_order_info *info)
{
    if (!info)
        return;
    free(info->csr);
    free(info->serial_number);
    free(info->common_name);
    free(info->date_created);
    free(info->product);
    free(info->individual.first_name);
    free(info->individual.last_name);
    free(info->individual.email);
    memset(info, 0, sizeof(*info));
}

void cc_order_list_free(struct cc_order_info *list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        cc_order_info_clear(&list[i]);
    free(list);
}

/* requests[i] as an object, or PA_E_CA_PROTOCOL. */
static int request_at(struct json_object *reqs, size_t i, struct json_object **ret, struct perr *pe)
{
    struct json_object *q = json_object_array_get_idx(reqs, i);

    if (!json_object_is_type(q, json_type_object)) {
        perr_set(pe, _("requests[%zu] is not an object"), i);
        return PA_E_CA_PROTOCOL;
    }
    *ret = q;
    return 0;
}

/* True if some request of the order still waits for an approver. */
static int request_awaits_approval(struct json_object *order, bool *ret, struct perr *pe)
{
    struct json_object *reqs = NULL;
    int r = get_typed(order, "requests", json_type_array, false, &reqs, pe);

    *ret = false;
    if (r <= 0)
        return r;
    for (size_t i = 0; i < json_object_array_length(reqs); i++) {
        struct json_object *q = NULL;
        const char *st = NULL;

        r = request_at(reqs, i, &q, pe);
        if (r == 0)
            r = get_str(q, "status", false, &st, pe);
        if (r < 0)
            return r;
        if (st && (strcmp(st, "pending") == 0 || strcmp(st, "submitted") == 0))
            *ret = true;
    }
    return 0;
}

/*
 * Is a request (date, id) newer than the best so far? Dates (ISO 8601 as CertCentral writes them)
 * compare as text, a dated request beats an undated one; then the higher id; then the later
 * entry (>=), so the order of the array decides only among equals.
 */
static bool request_newer(const char *date, long id, const char *best_date, long best_id)
{
    int d = strcmp(date ? date : "", best_date ? best_date : "");

    return d > 0 || (d == 0 && id >= best_id);
}

/* The newest requests[] entry of type "revoke": its id and status into info (0/"" if none). */
static int order_revoke_request(struct json_object *o, struct cc_order_info *info, struct perr *pe)
{
    struct json_object *reqs = NULL;
    const char *best_date = NULL;
    bool found = false;
    int r = get_typed(o, "requests", json_type_array, false, &reqs, pe);

    if (r <= 0)
        return r;
    for (size_t i = 0; i < json_object_array_length(reqs); i++) {
        struct json_object *q = NULL;
        const char *type = NULL, *date = NULL, *st = NULL;
        long id = 0;

        r = request_at(reqs, i, &q, pe);
        if (r == 0)
            r = get_str(q, "type", false, &type, pe);
        if (r < 0)
            return r;
        if (!type || strcmp(type, "revoke") != 0)
            continue;
        r = get_str(q, "date", false, &date, pe);
        if (r >= 0)
            r = get_id(q, "id", false, &id, pe);
        if (r >= 0)
            r = get_str(q, "status", false, &st, pe);
        if (r < 0)
            return r;
        if (found && !request_newer(date, id, best_date, info->revoke_request_id))
            continue;
        found = true;
        best_date = date;
        info->revoke_request_id = id;
        copy_str(info->revoke_request_status, sizeof(info->revoke_request_status), st);
    }
    return 0;
}

/* The holder: the order's "individual" object, else certificate.individual; all optional. */
static int order_individual(struct json_object *o, struct json_object *cert,
                            struct cc_individual *ret, struct perr *pe)
{
    struct json_object *ind = NULL;
    int r = get_typed(o, "individual", json_type_object, false, &ind, pe);

    if (r == 0 && cert)
        r = get_typed(cert, "individual", json_type_object, false, &ind, pe);
    if (r <= 0)
        return r;
    r = get_id(ind, "id", false, &ret->id, pe);
    if (r >= 0)
        r = dup_str(ind, "first_name", &ret->first_name, pe);
    if (r >= 0)
        r = dup_str(ind, "last_name", &ret->last_name, pe);
    if (r >= 0)
        r = dup_str(ind, "email", &ret->email, pe);
    return r < 0 ? r : 0;
}

/* certificate.{id,csr,serial_number,common_name,valid_till} into info. */
static int order_certificate(struct json_object *cert, struct cc_order_info *info, struct perr *pe)
{
    const char *till = NULL;
    int r = get_id(cert, "id", false, &info->certificate_id, pe);

    if (r >= 0)
        r = dup_str(cert, "csr", &info->csr, pe);
    if (r >= 0)
        r = dup_str(cert, "serial_number", &info->serial_number, pe);
    if (r >= 0)
        r = dup_str(cert, "common_name", &info->common_name, pe);
    if (r >= 0)
        r = get_str(cert, "valid_till", false, &till, pe);
    if (r < 0)
        return r;
    if (till && !*till)
        till = NULL; /* "" before issuance counts as absent */
    if (till && !valid_date(till)) {
        perr_set(pe, _("\"valid_till\" is not a yyyy-mm-dd date"));
        return PA_E_CA_PROTOCOL;
    }
    copy_str(info->valid_till, sizeof(info->valid_till), till);
    return 0;
}

/* id, status (mapped, with its reason) and the approval hint of the requests. */
static int order_status(struct json_object *o, struct cc_order_info *info, struct perr *pe)
{
    const char *status = NULL;
    bool awaits = false;
    int r = get_id(o, "id", true, &info->id, pe);

    if (r >= 0)
        r = get_str(o, "status", true, &status, pe);
    if (r < 0)
        return r;
    copy_str(info->status, sizeof(info->status), status);
    info->st = cc_map_status(status, info->reason, sizeof(info->reason));
    r = request_awaits_approval(o, &awaits, pe);
    if (r < 0)
        return r;
    if (awaits && (strcmp(status, "pending") == 0 || strcmp(status, "submitted") == 0))
        copy_str(info->reason, sizeof(info->reason), N_("request awaits approval in CertCentral"));
    return 0;
}

/* date_created (the order's, else the certificate's) and product.name_id. */
static int order_date_product(struct json_object *o, struct json_object *cert,
                              struct cc_order_info *info, struct perr *pe)
{
    struct json_object *product = NULL;
    int r = dup_str(o, "date_created", &info->date_created, pe);

    if (r >= 0 && !info->date_created && cert)
        r = dup_str(cert, "date_created", &info->date_created, pe);
    if (r >= 0)
        r = get_typed(o, "product", json_type_object, false, &product, pe);
    if (r >= 0 && product)
        r = dup_str(product, "name_id", &info->product, pe);
    return r < 0 ? r : 0;
}

/* One order object (order info, or an entry of the order list) into ret. */
static int order_from_json(struct json_object *o, struct cc_order_info *ret, struct perr *pe)
{
    struct json_object *cert = NULL;
    struct cc_order_info info;
    int r;

    memset(&info, 0, sizeof(info));
    r = order_status(o, &info, pe);
    if (r >= 0)
        r = get_typed(o, "certificate", json_type_object, false, &cert, pe);
    if (r > 0)
        r = order_certificate(cert, &info, pe);
    if (r >= 0)
        r = order_date_product(o, cert, &info, pe);
    if (r >= 0)
        r = order_individual(o, cert, &info.individual, pe);
    if (r >= 0)
        r = order_revoke_request(o, &info, pe);
    if (r < 0)
        goto out;
    if (info.st == CC_ST_ISSUED && info.certificate_id == 0) {
        perr_set(pe, _("order %ld is issued but has no certificate id"), info.id);
        r = PA_E_CA_PROTOCOL;
        goto out;
    }
    *ret = info;
    memset(&info, 0, sizeof(info));
    r = 0;
out:
    cc_order_info_clear(&info);
    return r;
}

static int parse_order_info_ex(const char *body, size_t len, struct cc_order_info *ret,
                               struct perr *pe)
{
    struct json_object *root = NULL;
    int r;

    memset(ret, 0, sizeof(*ret));
    r = parse_json_object(body, len, &root, pe);
    if (r == 0)
        r = order_from_json(root, ret, pe);
    json_object_put(root);
    return r;
}

int cc_parse_order_info(const char *body, size_t len, struct cc_order_info *ret)
{
    return parse_order_info_ex(body, len, ret, NULL);
}

static int parse_order_list_ex(const char *body, size_t len, struct cc_order_info **ret,
                               size_t *ret_n, long *ret_total, struct perr *pe)
{
    struct json_object *root = NULL, *orders = NULL, *page = NULL;
    struct cc_order_info *list = NULL;
    size_t n = 0, done = 0;
    long total = -1;
    int r;

    r = parse_json_object(body, len, &root, pe);
    if (r < 0)
        goto out;
    r = get_typed(root, "orders", json_type_array, true, &orders, pe);
    if (r < 0)
        goto out;
    n = json_object_array_length(orders);
    if (n > CC_MAX_ORDERS) {
        perr_set(pe, _("too many orders in one page (%zu)"), n);
        r = PA_E_CA_PROTOCOL;
        goto out;
    }
    r = get_typed(root, "page", json_type_object, false, &page, pe);
    if (r < 0)
        goto out;
    if (page) {
        struct json_object *t = NULL;

        r = get_typed(page, "total", json_type_int, false, &t, pe);
        if (r < 0)
            goto out;
        if (t) {
            int64_t v = json_object_get_int64(t);

            if (v < 0 || v > CC_MAX_ORDERS) {
                perr_set(pe, _("page.total out of range"));
                r = PA_E_CA_PROTOCOL;
                goto out;
            }
            total = (long)v;
        }
    }
    if (n) {
        list = calloc(n, sizeof(*list));
        if (!list) {
            r = PA_E_NOMEM;
            goto out;
        }
    }
    for (done = 0; done < n; done++) {
        struct json_object *o = json_object_array_get_idx(orders, done);

        if (!json_object_is_type(o, json_type_object)) {
            perr_set(pe, _("orders[%zu] is not an object"), done);
            r = PA_E_CA_PROTOCOL;
            goto out;
        }
        r = order_from_json(o, &list[done], pe);
        if (r < 0)
            goto out;
    }
    *ret = list;
    *ret_n = n;
    if (ret_total)
        *ret_total = total >= 0 ? total : (long)n;
    list = NULL;
    r = 0;
out:
    cc_order_list_free(list, done);
    json_object_put(root);
    return r;
}

int cc_parse_order_list(const char *body, size_t len, struct cc_order_info **ret, size_t *ret_n,
                        long *ret_total)
{
    return parse_order_list_ex(body, len, ret, ret_n, ret_total, NULL);
}

static bool b64_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '+' || ch == '/' || ch == '=';
}

int cc_check_pem_certs(const char *pem, size_t len)
{
    static const char begin[] = "-----BEGIN CERTIFICATE-----";
    static const char end[] = "-----END CERTIFICATE-----";
    size_t pos = 0, blocks = 0, body_lines = 0;
    bool inside = false;

    if (!pem || len == 0 || memchr(pem, '\0', len))
        return PA_E_CA_PROTOCOL;
    while (pos < len) {
        const char *line = pem + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;

        pos += n + (nl ? 1 : 0);
        if (n && line[n - 1] == '\r')
            n--;
        if (!inside) {
            bool blank = true;

            for (size_t i = 0; i < n; i++)
                if (line[i] != ' ' && line[i] != '\t')
                    blank = false;
            if (blank)
                continue;
            if (n != sizeof(begin) - 1 || memcmp(line, begin, n) != 0)
                return PA_E_CA_PROTOCOL; /* text, or a block of another type */
            if (++blocks > CC_MAX_PEM_CERTS)
                return PA_E_CA_PROTOCOL;
            inside = true;
            body_lines = 0;
        } else if (n == sizeof(end) - 1 && memcmp(line, end, n) == 0) {
            if (body_lines == 0)
                return PA_E_CA_PROTOCOL;
            inside = false;
        } else {
            if (n == 0)
                return PA_E_CA_PROTOCOL;
            for (size_t i = 0; i < n; i++)
                if (!b64_char(line[i]))
                    return PA_E_CA_PROTOCOL;
            body_lines++;
        }
    }
    return !inside && blocks > 0 ? 0 : PA_E_CA_PROTOCOL;
}

/* ---------------------------------------------------------------------------------------- */
/* the client */

static void default_sleep(double seconds, void *arg)
{
    (void)arg;
    (void)stop_sleep(seconds); /* ends early on SIGTERM/SIGINT; exchange() then gives up */
}

static double default_clock(void *arg)
{
    struct timespec ts;

    (void)arg;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
        return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Uniform in [0,1) from the kernel; 0.5 if that fails. */
static double random01(void)
{
    uint64_t v;

    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
        return 0.5;
    return (double)(v >> 11) * (1.0 / 9007199254740992.0);
}

/* Copy opts and the strings it points to into c. 0 or PA_E_NOMEM. */
static int copy_opts(struct cc_client *c, const struct http_opts *opts)
{
    c->opts = *opts;
    c->opts.ca_bundle = NULL;
    c->opts.user_agent = NULL;
    c->opts.proxy = NULL;
    if (opts->proxy) {
        c->proxy = strdup(opts->proxy);
        if (!c->proxy)
            return PA_E_NOMEM;
        c->opts.proxy = c->proxy;
    }
    if (opts->ca_bundle) {
        c->ca_bundle = strdup(opts->ca_bundle);
        if (!c->ca_bundle)
            return PA_E_NOMEM;
        c->opts.ca_bundle = c->ca_bundle;
    }
    if (opts->user_agent) {
        c->user_agent = strdup(opts->user_agent);
        if (!c->user_agent)
            return PA_E_NOMEM;
        c->opts.user_agent = c->user_agent;
    }
    return 0;
}

/* An https:// base URL of sane length and a non-empty key. */
static bool client_args_ok(const char *base_url, const struct secret *api_key)
{
    return base_url && strncasecmp(base_url, "https://", 8) == 0 && strlen(base_url) <= 1024 &&
           strlen(base_url) > 8 && api_key && api_key->buf && api_key->len > 0;
}

int cc_client_new(const char *base_url, const struct secret *api_key, const struct http_opts *opts,
                  struct cc_client **ret)
{
    struct cc_client *c = NULL;
    size_t n;
    int r;

    if (!client_args_ok(base_url, api_key))
        return PA_E_CONFIG;
    c = calloc(1, sizeof(*c));
    if (!c)
        return PA_E_NOMEM;
    c->base_url = strdup(base_url);
    if (!c->base_url) {
        r = PA_E_NOMEM;
        goto out;
    }
    n = strlen(c->base_url);
    while (n > 8 && c->base_url[n - 1] == '/')
        c->base_url[--n] = '\0';
    r = secret_from_mem(api_key->buf, api_key->len, &c->key);
    if (r == 0 && opts)
        r = copy_opts(c, opts);
    if (r == 0)
        r = http_conn_new(&c->conn);
    if (r < 0)
        goto out;
    c->attempts = 6;
    c->base_s = 5;
    c->cap_s = 60;
    c->sleep_fn = default_sleep;
    c->clock_fn = default_clock;
    c->page_size = CC_DEFAULT_PAGE;
    c->share = 1;
    r = cc_client_set_budget(c, 100, 5.0, 1000, 180.0);
    if (r < 0)
        goto out;
    *ret = c;
    c = NULL;
    r = 0;
out:
    cc_client_free(c);
    return r;
}

void cc_client_free(struct cc_client *c)
{
    if (!c)
        return;
    secret_free(c->key);
    secret_wipe(c->last_error, sizeof(c->last_error));
    http_conn_free(c->conn);
    rb_station_close(c->station);
    free(c->station_path);
    free(c->base_url);
    free(c->ca_bundle);
    free(c->proxy);
    free(c->user_agent);
    free(c->ring);
    free(c);
}

void cc_client_set_retry(struct cc_client *c, unsigned attempts, double base_s, double cap_s)
{
    c->attempts = attempts ? attempts : 1;
    c->base_s = base_s > 0 ? base_s : 0;
    c->cap_s = cap_s > 0 ? cap_s : 0;
}

void cc_client_set_sleep(struct cc_client *c, cc_sleep_fn *fn, void *arg)
{
    c->sleep_fn = fn ? fn : default_sleep;
    c->sleep_arg = fn ? arg : NULL;
}

void cc_client_set_clock(struct cc_client *c, cc_clock_fn *fn, void *arg)
{
    c->clock_fn = fn ? fn : default_clock;
    c->clock_arg = fn ? arg : NULL;
}

int cc_client_set_budget(struct cc_client *c, unsigned burst_n, double burst_s, unsigned long_n,
                         double long_s)
{
    size_t cap = burst_n > long_n ? burst_n : long_n;
    double *ring;

    if (cap == 0)
        cap = 1;
    ring = calloc(cap, sizeof(*ring));
    if (!ring)
        return PA_E_NOMEM;
    free(c->ring);
    c->ring = ring;
    c->ring_cap = cap;
    c->ring_count = 0;
    c->ring_head = 0;
    c->lim = (struct rb_limits){burst_n, burst_s, long_n, long_s};
    rb_limits_scale(&c->lim, c->share, &c->eff);
    return 0;
}

int cc_client_set_station_budget(struct cc_client *c, const char *state_dir, double share)
{
    char *path = NULL;

    if (!(share > 0 && share <= 1))
        return PA_E_CONFIG;
    if (state_dir && asprintf(&path, "%s/%s", state_dir, RB_FILE_NAME) < 0)
        return PA_E_NOMEM;
    rb_station_close(c->station);
    c->station = NULL;
    c->station_failed = false;
    free(c->station_path);
    c->station_path = path;
    c->share = share;
    rb_limits_scale(&c->lim, c->share, &c->eff);
    return 0;
}

void cc_client_set_page_size(struct cc_client *c, unsigned n)
{
    c->page_size = n ? (n > CC_DEFAULT_PAGE ? CC_DEFAULT_PAGE : n) : CC_DEFAULT_PAGE;
}

unsigned long cc_client_requests(const struct cc_client *c)
{
    return c->requests;
}

unsigned long cc_client_connections(const struct cc_client *c)
{
    return c->connections;
}

const char *cc_last_error(const struct cc_client *c)
{
    return c->last_error;
}

bool cc_order_maybe_placed(const struct cc_client *c)
{
    return c->maybe_placed;
}

/* The k-th most recent request completion time (k >= 1, k <= ring_count). */
static double ring_kth(const struct cc_client *c, size_t k)
{
    return c->ring[(c->ring_head + c->ring_cap - k) % c->ring_cap];
}

/* Seconds until one more request fits this process's own windows (<= 0: now). */
static double local_wait(const struct cc_client *c)
{
    double now = c->clock_fn(c->clock_arg), wait = 0;

    if (c->eff.burst_n && c->ring_count >= c->eff.burst_n) {
        double w = ring_kth(c, c->eff.burst_n) + c->eff.burst_s - now;

        if (w > wait)
            wait = w;
    }
    if (c->eff.long_n && c->ring_count >= c->eff.long_n) {
        double w = ring_kth(c, c->eff.long_n) + c->eff.long_s - now;

        if (w > wait)
            wait = w;
    }
    return wait;
}

/*
 * Seconds until one more request fits the station's budget; 0 when it was reserved in *tk (or
 * the file cannot be used: then this request keeps to the client's own budget only).
 */
static double station_wait(struct cc_client *c, struct rb_ticket *tk)
{
    double wait = 0;
    int r;

    if (!c->station_path || c->station_failed)
        return 0;
    if (!c->station) {
        r = rb_station_open(c->station_path, &c->station);
        if (r < 0) {
            log_debug("certcentral: station rate budget %s unusable (%s); "
                      "keeping to this process's budget",
                      c->station_path, pa_err_str(r));
            c->station_failed = true;
            return 0;
        }
    }
    r = rb_station_reserve(c->station, &c->eff, &wait, tk);
    if (r < 0) {
        log_debug("certcentral: station rate budget: %s; this request keeps to its own budget",
                  pa_err_str(r));
        return 0;
    }
    return wait;
}

/* Sleep until one more request fits both rate budgets; the station's then counts it. false when
 * a stop (SIGTERM/SIGINT) came first: nothing may be sent then. */
static bool budget_wait(struct cc_client *c, struct rb_ticket *tk)
{
    for (;;) {
        double wait;

        if (stop_requested())
            return false;
        wait = local_wait(c);

        if (!(wait > 0))
            wait = station_wait(c, tk);
        if (!(wait > 0))
            return true;
        log_debug("certcentral: rate budget: waiting %.3f s", wait);
        c->sleep_fn(wait + 0.001, c->sleep_arg);
    }
}

/* The request of tk is over: record its completion in both budgets. */
static void budget_record(struct cc_client *c, struct rb_ticket *tk)
{
    c->ring[c->ring_head] = c->clock_fn(c->clock_arg);
    c->ring_head = (c->ring_head + 1) % c->ring_cap;
    if (c->ring_count < c->ring_cap)
        c->ring_count++;
    if (c->station && tk->valid)
        (void)rb_station_done(c->station, tk);
}

/* Full URL from a printf-style path; PA_E_INTERNAL if it does not fit. */
__attribute__((format(printf, 4, 5))) static int make_url(struct cc_client *c, char *buf,
                                                          size_t buflen, const char *fmt, ...)
{
    size_t n = strlen(c->base_url);
    va_list ap;
    int w;

    if (n + 1 >= buflen)
        return PA_E_INTERNAL;
    memcpy(buf, c->base_url, n);
    va_start(ap, fmt);
    w = vsnprintf(buf + n, buflen - n, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= buflen - n) {
        set_error(c, _("URL too long"));
        return PA_E_INTERNAL;
    }
    return 0;
}

/* last_error from an HTTP answer: the API's "code: message" list, or status/URL/content type. */
static void set_http_error(struct cc_client *c, const struct http_response *resp, const char *url)
{
    char msg[400];

    if (media_is(resp->content_type, "application/json") &&
        cc_parse_errors(resp->body, resp->body_len, msg, sizeof(msg)) == 0)
        set_error(c, "%s", msg);
    else
        set_error(c, _("HTTP %ld from %s (%s)"), resp->status, url,
                  resp->content_type ? resp->content_type : _("no content type"));
}

/*
 * One attempt: wait for the budgets, run the before-send hook (once per cc_place_order), send.
 * PA_E_STOPPED_BEFORE_SEND when the hook stopped it; else what http_conn_request returned.
 */
static int send_once(struct cc_client *c, const char *method, const char *url, const char *body,
                     struct http_response *resp)
{
    struct rb_ticket tk = {0};
    int r;

    if (!budget_wait(c, &tk))
        return PA_E_STOPPED_WAITING;
    if (c->before_send) {
        cc_before_send_fn *hook = c->before_send;

        /* taken first: called once, and never for requests the hook itself might make */
        c->before_send = NULL;
        c->before_send_rc = hook(c->before_send_arg);
        if (c->before_send_rc < 0) {
            if (c->station && tk.valid)
                (void)rb_station_done(c->station, &tk);
            return PA_E_STOPPED_BEFORE_SEND;
        }
    }
    c->requests++;
    r = http_conn_request(c->conn, &c->opts, method, url, c->key, body, resp);
    c->connections += resp->new_connections > 0 ? (unsigned long)resp->new_connections : 0;
    budget_record(c, &tk);
    return r;
}

/*
 * Judge an answer that arrived: 0 when it is the caller's to judge; else PA_E_CA_AUTH (final) or
 * PA_E_CA_UNAVAILABLE (429, 5xx) with *retryable and *delay (the Retry-After, capped; -1: none).
 */
static int judge_answer(struct cc_client *c, const char *url, enum retry_policy rp,
                        const struct http_response *resp, bool *retryable, double *delay)
{
    *retryable = false;
    *delay = -1;
    if (resp->status == 401 || resp->status == 403) {
        set_http_error(c, resp, url);
        append_error(c, _(" (HTTP %ld; %s)"), resp->status, _(CC_AUTH_HINT));
        c->last_maybe_sent = false;
        return PA_E_CA_AUTH;
    }
    if (resp->status != 429 && resp->status < 500)
        return 0;
    set_http_error(c, resp, url);
    /* DigiCert refuses rate-limited requests before acting on them. */
    c->last_maybe_sent = resp->status != 429;
    *retryable = rp == RP_IDEMPOTENT ||
                 (rp == RP_UNPROCESSED && (resp->status == 429 || resp->status == 503));
    if (resp->retry_after_s > 0)
        *delay = (double)resp->retry_after_s < c->cap_s ? (double)resp->retry_after_s : c->cap_s;
    return PA_E_CA_UNAVAILABLE;
}

/*
 * One API exchange with the retry policy, the rate budgets and 401/403 handling. Returns 0 with
 * resp holding an answer whose status is not 401/403/429/5xx (the caller judges it); otherwise
 * a PA_E_* code with last_error and last_maybe_sent set and resp cleared.
 */
static int exchange(struct cc_client *c, const char *method, const char *url, const char *body,
                    enum retry_policy rp, struct http_response *resp)
{
    int r;

    for (unsigned attempt = 0;; attempt++) {
        bool retryable = false;
        double delay = -1;

        r = send_once(c, method, url, body, resp);
        if (r == PA_E_STOPPED_BEFORE_SEND)
            return r;
        if (r == PA_E_STOPPED_WAITING) {
            /* what an earlier attempt may have sent stays in last_maybe_sent */
            set_error(c, _("stopped (SIGTERM or SIGINT) before %s %s was sent"), method, url);
            if (attempt == 0)
                c->last_maybe_sent = false;
            r = PA_E_CA_UNAVAILABLE;
            goto out;
        }
        if (r < 0) {
            set_error(c, "%s", resp->errmsg);
            c->last_maybe_sent = resp->maybe_sent;
            if (r != PA_E_CA_UNAVAILABLE || !resp->transient)
                goto out;
            retryable = rp == RP_IDEMPOTENT || (rp == RP_UNPROCESSED && !resp->maybe_sent);
        } else {
            r = judge_answer(c, url, rp, resp, &retryable, &delay);
            if (r == 0)
                return 0;
        }
        if (!retryable || attempt + 1 >= c->attempts) {
            if (attempt > 0)
                append_error(c, _(" (gave up after %u attempts)"), attempt + 1);
            goto out;
        }
        if (delay < 0)
            delay = cc_backoff_delay(attempt + 1, c->base_s, c->cap_s, random01());
        log_debug("certcentral: %s %s: %s; retrying in %.3f s", method, url, c->last_error, delay);
        http_response_clear(resp);
        c->sleep_fn(delay, c->sleep_arg);
    }
out:
    http_response_clear(resp);
    return r;
}

/* Unexpected status of a non-failing exchange: 4xx -> REJECTED, anything else -> PROTOCOL. */
static int fail_status(struct cc_client *c, const struct http_response *resp, const char *url)
{
    set_http_error(c, resp, url);
    return resp->status >= 400 && resp->status < 500 ? PA_E_CA_REJECTED : PA_E_CA_PROTOCOL;
}

static int expect_json(struct cc_client *c, const struct http_response *resp, const char *url)
{
    if (media_is(resp->content_type, "application/json"))
        return 0;
    set_error(c, _("HTTP %ld from %s: expected JSON, got %s"), resp->status, url,
              resp->content_type ? resp->content_type : _("no content type"));
    return PA_E_CA_PROTOCOL;
}

/* GET url (retried as idempotent) and require 200; with want_json also a JSON content type. */
static int get_checked(struct cc_client *c, const char *url, bool want_json,
                       struct http_response *resp)
{
    int r = exchange(c, "GET", url, NULL, RP_IDEMPOTENT, resp);

    if (r < 0)
        return r;
    if (resp->status != 200)
        return fail_status(c, resp, url);
    return want_json ? expect_json(c, resp, url) : 0;
}

int cc_place_order(struct cc_client *c, const char *product, const char *json_body,
                   cc_before_send_fn *before_send, void *arg, struct cc_order_result *ret)
{
    struct http_response resp = {0};
    struct cc_order_result res;
    struct perr pe = {""};
    char url[CC_URL_MAX];
    int r;

    c->last_error[0] = '\0';
    c->maybe_placed = false;
    if (!valid_product(product)) {
        set_error(c, _("invalid product id"));
        return PA_E_CONFIG;
    }
    if (!json_body)
        return PA_E_INTERNAL;
    r = make_url(c, url, sizeof(url), "/order/certificate/%s", product);
    if (r < 0)
        return r;
    c->before_send = before_send;
    c->before_send_arg = arg;
    r = exchange(c, "POST", url, json_body, RP_NONE, &resp);
    c->before_send = NULL;
    if (r == PA_E_STOPPED_BEFORE_SEND) {
        r = c->before_send_rc;
        set_error(c, _("the order POST was stopped before it was sent (%s); %s"), _(pa_err_str(r)),
                  _(CC_HINT_NOT_PLACED));
        goto out;
    }
    if (r < 0) {
        c->maybe_placed = r != PA_E_CA_AUTH && c->last_maybe_sent;
        if (r == PA_E_CA_PROTOCOL) /* the answer was too large: it did arrive */
            r = PA_E_CA_UNAVAILABLE;
        append_error(c, "; %s", c->maybe_placed ? _(CC_HINT_MAYBE) : _(CC_HINT_NOT_PLACED));
        goto out;
    }
    if (resp.status != 200 && resp.status != 201) {
        r = fail_status(c, &resp, url);
        c->maybe_placed = r != PA_E_CA_REJECTED;
        append_error(c, "; %s", c->maybe_placed ? _(CC_HINT_MAYBE) : _(CC_HINT_NOT_PLACED));
        goto out;
    }
    r = expect_json(c, &resp, url);
    if (r == 0) {
        r = parse_order_result_ex(resp.body, resp.body_len, &res, &pe);
        if (r < 0)
            set_error(c, _("unreadable answer to the order from %s: %s"), url, pe.msg);
    }
    if (r < 0) {
        c->maybe_placed = true;
        append_error(c, "; %s", _(CC_HINT_MAYBE));
        goto out;
    }
    *ret = res;
    r = 0;
out:
    http_response_clear(&resp);
    return r;
}

int cc_order_info(struct cc_client *c, long order_id, struct cc_order_info *ret)
{
    struct http_response resp = {0};
    struct perr pe = {""};
    char url[CC_URL_MAX];
    int r;

    memset(ret, 0, sizeof(*ret));
    c->last_error[0] = '\0';
    if (order_id <= 0)
        return PA_E_INTERNAL;
    r = make_url(c, url, sizeof(url), "/order/certificate/%ld", order_id);
    if (r < 0)
        return r;
    r = get_checked(c, url, true, &resp);
    if (r < 0)
        goto out;
    r = parse_order_info_ex(resp.body, resp.body_len, ret, &pe);
    if (r == PA_E_CA_PROTOCOL)
        set_error(c, _("unreadable order info from %s: %s"), url, pe.msg);
out:
    http_response_clear(&resp);
    return r;
}

/* Append page[0..n) to *list (size *count); takes ownership of page's strings. */
static int list_append(struct cc_order_info **list, size_t *count, struct cc_order_info *page,
                       size_t n)
{
    struct cc_order_info *l;

    if (n == 0)
        return 0;
    if (*count + n > CC_MAX_ORDERS)
        return PA_E_CA_PROTOCOL;
    l = realloc(*list, (*count + n) * sizeof(*l));
    if (!l)
        return PA_E_NOMEM;
    memcpy(l + *count, page, n * sizeof(*l));
    *list = l;
    *count += n;
    return 0;
}

/*
 * Receives one page of the order list and owns it (cc_order_list_free or take its entries).
 * Returns 0 to go on, 1 to stop walking, or a PA_E_* code (last_error set).
 */
typedef int page_fn(struct cc_client *c, struct cc_order_info *page, size_t n, void *arg);

/* GET and parse one page of the order list; *ret_total as cc_parse_order_list. */
static int get_order_page(struct cc_client *c, const char *url, struct cc_order_info **ret,
                          size_t *ret_n, long *ret_total)
{
    struct http_response resp = {0};
    struct perr pe = {""};
    int r = get_checked(c, url, true, &resp);

    if (r < 0)
        goto out;
    r = parse_order_list_ex(resp.body, resp.body_len, ret, ret_n, ret_total, &pe);
    if (r == PA_E_CA_PROTOCOL)
        set_error(c, _("unreadable order list from %s: %s"), url, pe.msg);
out:
    http_response_clear(&resp);
    return r;
}

/* Arguments of an order list walk: PA_E_CONFIG (product) or PA_E_USAGE (date), last_error set. */
static int check_list_args(struct cc_client *c, const char *product, const char *created_since)
{
    if (product && !valid_product(product)) {
        set_error(c, _("invalid product id"));
        return PA_E_CONFIG;
    }
    if (created_since && !valid_date(created_since)) {
        set_error(c, _("invalid date \"%.20s\" (expected yyyy-mm-dd)"), created_since);
        return PA_E_USAGE;
    }
    return 0;
}

/* URL of the order list page at offset, with the optional product and date filters. */
static int order_page_url(struct cc_client *c, char *url, size_t url_len, const char *product,
                          const char *created_since, size_t offset)
{
    /* filters[product_name_id]=P&filters[date_created]=>=D, percent-encoded */
    return make_url(c, url, url_len, "/order/certificate?limit=%u&offset=%zu%s%s%s%s", c->page_size,
                    offset, product ? "&filters%5Bproduct_name_id%5D=" : "", product ? product : "",
                    created_since ? "&filters%5Bdate_created%5D=%3E%3D" : "",
                    created_since ? created_since : "");
}

/*
 * Walk the order list of product (NULL: all) created on or after created_since (NULL: any date),
 * page by page, handing each page to fn until fn stops or the list ends.
 */
static int walk_orders(struct cc_client *c, const char *product, const char *created_since,
                       page_fn *fn, void *arg)
{
    struct cc_order_info *page = NULL;
    size_t page_n = 0, offset = 0;
    char url[CC_URL_MAX];
    int r = check_list_args(c, product, created_since);

    if (r < 0)
        return r;
    for (unsigned pages = 0;; pages++) {
        long total = 0;

        if (pages >= CC_MAX_PAGES) {
            set_error(c, _("order list does not end after %u pages"), pages);
            return PA_E_CA_PROTOCOL;
        }
        r = order_page_url(c, url, sizeof(url), product, created_since, offset);
        if (r == 0)
            r = get_order_page(c, url, &page, &page_n, &total);
        if (r == 0)
            r = fn(c, page, page_n, arg); /* page now belongs to fn */
        if (r != 0)
            break;
        offset += page_n;
        if (page_n == 0 || offset >= (size_t)total)
            break;
    }
    return r < 0 ? r : 0;
}

struct collect {
    struct cc_order_info *all;
    size_t count;
};

/* page_fn of cc_list_orders: append the page to the collection. */
static int collect_page(struct cc_client *c, struct cc_order_info *page, size_t n, void *arg)
{
    struct collect *col = arg;
    int r = list_append(&col->all, &col->count, page, n);

    if (r < 0) {
        if (r == PA_E_CA_PROTOCOL)
            set_error(c, _("more than %d orders listed"), CC_MAX_ORDERS);
        cc_order_list_free(page, n);
        return r;
    }
    free(page); /* its strings now belong to the collection */
    return 0;
}

int cc_list_orders(struct cc_client *c, const char *product, const char *created_since,
                   struct cc_order_info **ret, size_t *ret_n)
{
    struct collect col = {NULL, 0};
    int r;

    c->last_error[0] = '\0';
    r = walk_orders(c, product, created_since, collect_page, &col);
    if (r < 0)
        goto out;
    *ret = col.all;
    *ret_n = col.count;
    col.all = NULL;
    col.count = 0;
out:
    cc_order_list_free(col.all, col.count);
    return r;
}

int cc_download(struct cc_client *c, long certificate_id, const char *format, char **ret_pem,
                size_t *ret_len)
{
    static const char begin[] = "-----BEGIN CERTIFICATE-----";
    struct http_response resp = {0};
    char url[CC_URL_MAX];
    int r;

    c->last_error[0] = '\0';
    if (certificate_id <= 0 || !format ||
        (strcmp(format, "pem_noroot") != 0 && strcmp(format, "pem_all") != 0 &&
         strcmp(format, "pem_nointermediate") != 0))
        return PA_E_INTERNAL;
    r = make_url(c, url, sizeof(url), "/certificate/%ld/download/format/%s", certificate_id,
                 format);
    if (r < 0)
        return r;
    r = get_checked(c, url, false, &resp);
    if (r < 0)
        goto out;
    if (!media_is(resp.content_type, "application/x-pem-file") &&
        !((media_is(resp.content_type, "text/plain") ||
           media_is(resp.content_type, "application/octet-stream")) &&
          resp.body_len >= sizeof(begin) - 1 && memcmp(resp.body, begin, sizeof(begin) - 1) == 0)) {
        set_error(c, _("HTTP %ld from %s: expected a PEM file, got %s"), resp.status, url,
                  resp.content_type ? resp.content_type : _("no content type"));
        r = PA_E_CA_PROTOCOL;
        goto out;
    }
    if (cc_check_pem_certs(resp.body, resp.body_len) < 0) {
        set_error(c, _("download from %s is not a bundle of PEM certificates"), url);
        r = PA_E_CA_PROTOCOL;
        goto out;
    }
    *ret_pem = resp.body;
    *ret_len = resp.body_len;
    resp.body = NULL;
    r = 0;
out:
    http_response_clear(&resp);
    return r;
}

/*
 * Serialise a flat object of string members (NULL values skipped) for a request body.
 * Returns 0 and a malloc'd string in *ret, or PA_E_NOMEM.
 */
static int build_body(char **ret, const char *k1, const char *v1, const char *k2, const char *v2)
{
    struct json_object *o = json_object_new_object();
    const char *s;
    int r = PA_E_NOMEM;

    if (!o)
        return PA_E_NOMEM;
    if (v1 && json_object_object_add(o, k1, json_object_new_string(v1)) < 0)
        goto out;
    if (v2 && json_object_object_add(o, k2, json_object_new_string(v2)) < 0)
        goto out;
    s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    if (!s)
        goto out;
    *ret = strdup(s);
    if (*ret)
        r = 0;
out:
    json_object_put(o);
    return r;
}

int cc_cancel_order(struct cc_client *c, long order_id, const char *note)
{
    struct http_response resp = {0};
    char url[CC_URL_MAX];
    char *body = NULL;
    int r;

    c->last_error[0] = '\0';
    if (order_id <= 0)
        return PA_E_INTERNAL;
    r = make_url(c, url, sizeof(url), "/order/certificate/%ld/status", order_id);
    if (r < 0)
        return r;
    r = build_body(&body, "status", "canceled", "note", note ? note : "canceled by pkio-agent");
    if (r < 0)
        return r;
    r = exchange(c, "PUT", url, body, RP_UNPROCESSED, &resp);
    if (r < 0)
        goto out;
    if (resp.status != 204 && resp.status != 200)
        r = fail_status(c, &resp, url);
out:
    http_response_clear(&resp);
    free(body);
    return r;
}

int cc_revoke_certificate(struct cc_client *c, long certificate_id, const char *reason,
                          const char *comments, struct cc_revoke_result *ret)
{
    struct http_response resp = {0};
    struct json_object *root = NULL;
    struct cc_revoke_result res;
    char url[CC_URL_MAX];
    char *body = NULL;
    int r;

    memset(&res, 0, sizeof(res));
    c->last_error[0] = '\0';
    if (certificate_id <= 0)
        return PA_E_INTERNAL;
    r = make_url(c, url, sizeof(url), "/certificate/%ld/revoke", certificate_id);
    if (r < 0)
        return r;
    r = build_body(&body, "comments", comments ? comments : "revoked by pkio-agent",
                   "revocation_reason", reason);
    if (r < 0)
        return r;
    r = exchange(c, "PUT", url, body, RP_UNPROCESSED, &resp);
    if (r < 0)
        goto out;
    if (resp.status < 200 || resp.status > 299) {
        r = fail_status(c, &resp, url);
        goto out;
    }
    /* 204: revoked. 200/201 with a request object: waits for an approver. */
    if (resp.body_len && media_is(resp.content_type, "application/json") &&
        parse_json_object(resp.body, resp.body_len, &root, NULL) == 0) {
        long req_id = 0;
        const char *st = NULL;

        if (get_id(root, "id", false, &req_id, NULL) > 0 &&
            get_str(root, "status", false, &st, NULL) > 0 && strcmp(st, "approved") != 0) {
            res.pending = true;
            res.request_id = req_id;
            copy_str(res.request_status, sizeof(res.request_status), st);
            set_error(c, _("revocation request %ld awaits approval in CertCentral (%s)"), req_id,
                      st);
        }
    }
    if (ret)
        *ret = res;
    r = 0;
out:
    json_object_put(root);
    http_response_clear(&resp);
    free(body);
    return r;
}

struct find {
    long certificate_id;
    long order_id; /* 0 until found */
};

/* page_fn of cc_find_order_by_certificate: stop at the order holding the certificate. */
static int find_in_page(struct cc_client *c, struct cc_order_info *page, size_t n, void *arg)
{
    struct find *f = arg;

    (void)c;
    for (size_t i = 0; i < n && !f->order_id; i++)
        if (page[i].certificate_id == f->certificate_id)
            f->order_id = page[i].id;
    cc_order_list_free(page, n);
    return f->order_id ? 1 : 0;
}

int cc_find_order_by_certificate(struct cc_client *c, const char *product, long certificate_id,
                                 long *ret_order_id)
{
    struct find f = {certificate_id, 0};
    int r;

    c->last_error[0] = '\0';
    if (certificate_id <= 0)
        return PA_E_INTERNAL;
    r = walk_orders(c, product, NULL, find_in_page, &f);
    if (r < 0)
        return r;
    if (!f.order_id) {
        set_error(c, _("no order holds certificate %ld"), certificate_id);
        return PA_E_CA_REJECTED;
    }
    *ret_order_id = f.order_id;
    return 0;
}

int cc_ping(struct cc_client *c)
{
    struct cc_order_info *page = NULL;
    size_t n = 0;
    char url[CC_URL_MAX];
    int r;

    c->last_error[0] = '\0';
    r = make_url(c, url, sizeof(url), "/order/certificate?limit=%u", 1u);
    if (r == 0)
        r = get_order_page(c, url, &page, &n, NULL);
    cc_order_list_free(page, n);
    return r;
}
