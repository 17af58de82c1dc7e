/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cc_parse.c - reading CertCentral's answers: one strict json-c parse (explicit length, depth
 * limit, UTF-8 checked, the whole input consumed) that every parser uses, typed getters, the
 * parsers of errors, the order POST's answer, order info, the order list and the revoke answer,
 * and the check that a download holds only PEM certificates. Pure code, fuzzed
 * (tests/fuzz/fuzz_cc_*.c).
 */
#include "cc_internal.h"

#include "i18n.h"
#include "pa_err.h"
#include "pjson.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CC_JSON_DEPTH    20
#define CC_MAX_ORDERS    100000 /* list results we accept in one page */
#define CC_MAX_ERRORS    8      /* entries of an errors array we report */
#define CC_MAX_PEM_CERTS 16

/* ---------------------------------------------------------------------------------------- */
/* small helpers */

void cc_sanitize(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            *s = '?';
}

void cc_copy_str(char *dst, size_t dstlen, const char *src)
{
    if (!dstlen)
        return;
    (void)snprintf(dst, dstlen, "%s", src ? src : "");
}

bool cc_valid_date(const char *d)
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

__attribute__((format(printf, 2, 3))) static void perr_set(struct cc_perr *pe, const char *fmt, ...)
{
    va_list ap;

    if (!pe)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(pe->msg, sizeof(pe->msg), fmt, ap);
    va_end(ap);
    cc_sanitize(pe->msg);
}

/* ---------------------------------------------------------------------------------------- */
/* json-c helpers: strict parse, typed getters */

/*
 * Parse body[0..len) as one JSON object: strict, UTF-8 checked, depth-limited, the whole input
 * consumed (trailing whitespace only). A truncated body is an error. *ret: json_object_put.
 */
static int parse_json_object(const char *body, size_t len, struct json_object **ret,
                             struct cc_perr *pe)
{
    const struct pjson_opts o = {INT_MAX, CC_JSON_DEPTH, PJSON_UTF8 | PJSON_OBJECT,
                                 PA_E_CA_PROTOCOL};
    struct pjson_err e;
    int r;

    if (body && len == 0)
        body = NULL; /* "empty body" */
    r = pjson_parse(body, len, &o, ret, &e);
    if (r == 0 || r == PA_E_NOMEM)
        return r;
    if (e.fail == PJSON_NO_DATA)
        perr_set(pe, _("empty body"));
    else if (e.fail == PJSON_TOO_LARGE || e.fail == PJSON_NUL)
        perr_set(pe, _("body too large or contains NUL bytes"));
    else if (e.fail == PJSON_TRUNCATED)
        perr_set(pe, _("truncated JSON"));
    else if (e.fail == PJSON_TRAILING)
        perr_set(pe, _("trailing data after JSON"));
    else if (e.fail == PJSON_NOT_OBJECT)
        perr_set(pe, _("JSON answer is not an object"));
    else
        perr_set(pe, _("invalid JSON (%s)"), e.desc);
    return r;
}

/*
 * Typed member lookup. Returns 1 when key is present with type t, 0 when absent or null (an
 * error if required), PA_E_CA_PROTOCOL when present with another type.
 */
static int get_typed(struct json_object *o, const char *key, enum json_type t, bool required,
                     struct json_object **ret, struct cc_perr *pe)
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
static int get_id(struct json_object *o, const char *key, bool required, long *ret,
                  struct cc_perr *pe)
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
                   struct cc_perr *pe)
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
static int dup_str(struct json_object *o, const char *key, char **ret, struct cc_perr *pe)
{
    const char *s;
    int r = get_str(o, key, false, &s, pe);

    if (r <= 0)
        return r;
    *ret = strdup(s);
    return *ret ? 1 : PA_E_NOMEM;
}

/* ---------------------------------------------------------------------------------------- */
/* errors */

/* The "errors" member: an array, or (an old shape) a single error object; *n its entries. */
static int errors_member(struct json_object *root, struct json_object **ret, size_t *n,
                         struct cc_perr *pe)
{
    struct json_object *errs = NULL;

    if (!json_object_object_get_ex(root, "errors", &errs)) {
        perr_set(pe, _("no \"errors\" member"));
        return PA_E_CA_PROTOCOL;
    }
    if (json_object_is_type(errs, json_type_object)) {
        *n = 1;
    } else if (json_object_is_type(errs, json_type_array)) {
        *n = json_object_array_length(errs);
    } else {
        perr_set(pe, _("\"errors\" is not an array"));
        return PA_E_CA_PROTOCOL;
    }
    *ret = errs;
    return 0;
}

/* code (required, not empty) and message (optional) of entry i of errs. */
static int error_entry(struct json_object *errs, size_t i, const char **code, const char **text,
                       struct cc_perr *pe)
{
    struct json_object *e =
        json_object_is_type(errs, json_type_object) ? errs : json_object_array_get_idx(errs, i);
    int r;

    if (!json_object_is_type(e, json_type_object)) {
        perr_set(pe, _("an error entry is not an object"));
        return PA_E_CA_PROTOCOL;
    }
    r = get_str(e, "code", true, code, pe);
    if (r < 0)
        return r;
    if ((*code)[0] == '\0') {
        perr_set(pe, _("an error entry has an empty code"));
        return PA_E_CA_PROTOCOL;
    }
    r = get_str(e, "message", false, text, pe);
    return r < 0 ? r : 0;
}

/* Append "code: message" to msg, after "; " unless first; false (nothing done) when full. */
static bool errors_append(char *msg, size_t msglen, size_t *used, bool first, const char *code,
                          const char *text)
{
    int w;

    if (*used >= msglen)
        return false;
    w = snprintf(msg + *used, msglen - *used, "%s%.100s%s%.200s", first ? "" : "; ", code,
                 text ? ": " : "", text ? text : "");
    if (w > 0)
        *used += (size_t)w;
    return true;
}

static int parse_errors_ex(const char *body, size_t len, char *msg, size_t msglen,
                           struct cc_perr *pe)
{
    struct json_object *root = NULL, *errs = NULL;
    size_t used = 0, n = 0, count = 0;
    int r;

    if (msglen)
        msg[0] = '\0';
    r = parse_json_object(body, len, &root, pe);
    if (r == 0)
        r = errors_member(root, &errs, &n, pe);
    for (size_t i = 0; r == 0 && i < n && count < CC_MAX_ERRORS; i++) {
        const char *code = NULL, *text = NULL;

        r = error_entry(errs, i, &code, &text, pe);
        if (r == 0 && errors_append(msg, msglen, &used, count == 0, code, text))
            count++;
    }
    if (r == 0 && count == 0) {
        perr_set(pe, _("empty \"errors\""));
        r = PA_E_CA_PROTOCOL;
    }
    if (r == 0 && msglen)
        cc_sanitize(msg);
    if (r < 0 && msglen)
        msg[0] = '\0';
    json_object_put(root);
    return r;
}

int cc_parse_errors(const char *body, size_t len, char *msg, size_t msglen)
{
    return parse_errors_ex(body, len, msg, msglen, NULL);
}

/* ---------------------------------------------------------------------------------------- */
/* the order POST's answer */

/* requests[0] of the answer, when there is one: its id is checked, its status copied. */
static int first_request(struct json_object *root, struct cc_order_result *res, struct cc_perr *pe)
{
    struct json_object *reqs = NULL, *req0;
    const char *st = NULL;
    long req_id = 0;
    int r = get_typed(root, "requests", json_type_array, false, &reqs, pe);

    if (r <= 0 || json_object_array_length(reqs) == 0)
        return r < 0 ? r : 0;
    req0 = json_object_array_get_idx(reqs, 0);
    if (!json_object_is_type(req0, json_type_object)) {
        perr_set(pe, _("requests[0] is not an object"));
        return PA_E_CA_PROTOCOL;
    }
    r = get_id(req0, "id", false, &req_id, pe);
    if (r >= 0)
        r = get_str(req0, "status", false, &st, pe);
    if (r < 0)
        return r;
    cc_copy_str(res->request_status, sizeof(res->request_status), st);
    return 0;
}

int cc_parse_order_result_ex(const char *body, size_t len, struct cc_order_result *ret,
                             struct cc_perr *pe)
{
    struct json_object *root = NULL;
    struct cc_order_result res;
    int r;

    memset(&res, 0, sizeof(res));
    r = parse_json_object(body, len, &root, pe);
    if (r == 0)
        r = get_id(root, "id", true, &res.id, pe);
    if (r >= 0)
        r = get_id(root, "certificate_id", false, &res.certificate_id, pe);
    if (r >= 0)
        r = first_request(root, &res, pe);
    if (r == 0)
        *ret = res;
    json_object_put(root);
    return r < 0 ? r : 0;
}

int cc_parse_order_result(const char *body, size_t len, struct cc_order_result *ret)
{
    return cc_parse_order_result_ex(body, len, ret, NULL);
}

/* ---------------------------------------------------------------------------------------- */
/* order info and the order list */

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
static int request_at(struct json_object *reqs, size_t i, struct json_object **ret,
                      struct cc_perr *pe)
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
static int request_awaits_approval(struct json_object *order, bool *ret, struct cc_perr *pe)
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
static int order_revoke_request(struct json_object *o, struct cc_order_info *info,
                                struct cc_perr *pe)
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
        cc_copy_str(info->revoke_request_status, sizeof(info->revoke_request_status), st);
    }
    return 0;
}

/* The holder: the order's "individual" object, else certificate.individual; all optional. */
static int order_individual(struct json_object *o, struct json_object *cert,
                            struct cc_individual *ret, struct cc_perr *pe)
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
static int order_certificate(struct json_object *cert, struct cc_order_info *info,
                             struct cc_perr *pe)
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
    if (till && !cc_valid_date(till)) {
        perr_set(pe, _("\"valid_till\" is not a yyyy-mm-dd date"));
        return PA_E_CA_PROTOCOL;
    }
    cc_copy_str(info->valid_till, sizeof(info->valid_till), till);
    return 0;
}

/* id, status (mapped, with its reason) and the approval hint of the requests. */
static int order_status(struct json_object *o, struct cc_order_info *info, struct cc_perr *pe)
{
    const char *status = NULL;
    bool awaits = false;
    int r = get_id(o, "id", true, &info->id, pe);

    if (r >= 0)
        r = get_str(o, "status", true, &status, pe);
    if (r < 0)
        return r;
    cc_copy_str(info->status, sizeof(info->status), status);
    info->st = cc_map_status(status, info->reason, sizeof(info->reason));
    r = request_awaits_approval(o, &awaits, pe);
    if (r < 0)
        return r;
    if (awaits && (strcmp(status, "pending") == 0 || strcmp(status, "submitted") == 0))
        cc_copy_str(info->reason, sizeof(info->reason),
                    N_("request awaits approval in CertCentral"));
    return 0;
}

/* date_created (the order's, else the certificate's) and product.name_id. */
static int order_date_product(struct json_object *o, struct json_object *cert,
                              struct cc_order_info *info, struct cc_perr *pe)
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
static int order_from_json(struct json_object *o, struct cc_order_info *ret, struct cc_perr *pe)
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

int cc_parse_order_info_ex(const char *body, size_t len, struct cc_order_info *ret,
                           struct cc_perr *pe)
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
    return cc_parse_order_info_ex(body, len, ret, NULL);
}

/* page.total when present, in [0, CC_MAX_ORDERS]; *ret unchanged when absent. */
static int page_total(struct json_object *root, long *ret, struct cc_perr *pe)
{
    struct json_object *page = NULL, *t = NULL;
    int64_t v;
    int r = get_typed(root, "page", json_type_object, false, &page, pe);

    if (r > 0)
        r = get_typed(page, "total", json_type_int, false, &t, pe);
    if (r <= 0)
        return r;
    v = json_object_get_int64(t);
    if (v < 0 || v > CC_MAX_ORDERS) {
        perr_set(pe, _("page.total out of range"));
        return PA_E_CA_PROTOCOL;
    }
    *ret = (long)v;
    return 0;
}

/* Every entry of the array orders (n of them) into a new list; *ret NULL when n is 0. */
static int orders_from_array(struct json_object *orders, size_t n, struct cc_order_info **ret,
                             struct cc_perr *pe)
{
    struct cc_order_info *list = NULL;
    size_t done;
    int r = 0;

    if (n) {
        list = calloc(n, sizeof(*list));
        if (!list)
            return PA_E_NOMEM;
    }
    for (done = 0; done < n; done++) {
        struct json_object *o = json_object_array_get_idx(orders, done);

        if (!json_object_is_type(o, json_type_object)) {
            perr_set(pe, _("orders[%zu] is not an object"), done);
            r = PA_E_CA_PROTOCOL;
            break;
        }
        r = order_from_json(o, &list[done], pe);
        if (r < 0)
            break;
    }
    if (r < 0) {
        cc_order_list_free(list, done);
        return r;
    }
    *ret = list;
    return 0;
}

int cc_parse_order_list_ex(const char *body, size_t len, struct cc_order_info **ret, size_t *ret_n,
                           long *ret_total, struct cc_perr *pe)
{
    struct json_object *root = NULL, *orders = NULL;
    struct cc_order_info *list = NULL;
    size_t n = 0;
    long total = -1;
    int r = parse_json_object(body, len, &root, pe);

    if (r == 0)
        r = get_typed(root, "orders", json_type_array, true, &orders, pe);
    if (r < 0)
        goto out;
    n = json_object_array_length(orders);
    if (n > CC_MAX_ORDERS) {
        perr_set(pe, _("too many orders in one page (%zu)"), n);
        r = PA_E_CA_PROTOCOL;
        goto out;
    }
    r = page_total(root, &total, pe);
    if (r == 0)
        r = orders_from_array(orders, n, &list, pe);
    if (r < 0)
        goto out;
    *ret = list;
    *ret_n = n;
    if (ret_total)
        *ret_total = total >= 0 ? total : (long)n;
out:
    json_object_put(root);
    return r;
}

int cc_parse_order_list(const char *body, size_t len, struct cc_order_info **ret, size_t *ret_n,
                        long *ret_total)
{
    return cc_parse_order_list_ex(body, len, ret, ret_n, ret_total, NULL);
}

/* ---------------------------------------------------------------------------------------- */
/* the revoke answer */

bool cc_parse_revoke_pending(const char *body, size_t len, struct cc_revoke_result *ret,
                             char *status, size_t status_len)
{
    struct json_object *root = NULL;
    const char *st = NULL;
    long req_id = 0;
    bool pending = false;

    /* 204: revoked. 200/201 with a request object: waits for an approver. */
    if (parse_json_object(body, len, &root, NULL) == 0 &&
        get_id(root, "id", false, &req_id, NULL) > 0 &&
        get_str(root, "status", false, &st, NULL) > 0 && strcmp(st, "approved") != 0) {
        pending = true;
        ret->pending = true;
        ret->request_id = req_id;
        cc_copy_str(ret->request_status, sizeof(ret->request_status), st);
        cc_copy_str(status, status_len, st);
    }
    json_object_put(root);
    return pending;
}

/* ---------------------------------------------------------------------------------------- */
/* PEM bundles */

/* Where a PEM check is: between blocks or inside one, and how much it has seen. */
struct pem_scan {
    bool inside;
    size_t blocks;
    size_t body_lines;
};

static bool b64_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '+' || ch == '/' || ch == '=';
}

/* Whether line[0..n) is made of spaces and tabs only (or is empty). */
static bool pem_blank(const char *line, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (line[i] != ' ' && line[i] != '\t')
            return false;
    return true;
}

/* Whether line[0..n) is a non-empty line of base64 characters. */
static bool pem_base64(const char *line, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!b64_char(line[i]))
            return false;
    return n > 0;
}

static bool pem_line_is(const char *line, size_t n, const char *marker)
{
    return n == strlen(marker) && memcmp(line, marker, n) == 0;
}

/* The length of line[0..n) without a final '\r'. */
static size_t without_cr(const char *line, size_t n)
{
    return n > 0 && line[n - 1] == '\r' ? n - 1 : n;
}

/* One line (without its line end) into the scan: 0, or PA_E_CA_PROTOCOL. */
static int pem_line(struct pem_scan *s, const char *line, size_t n)
{
    if (!s->inside) {
        if (pem_blank(line, n))
            return 0;
        /* text, or a block of another type, or too many blocks */
        if (!pem_line_is(line, n, "-----BEGIN CERTIFICATE-----") || ++s->blocks > CC_MAX_PEM_CERTS)
            return PA_E_CA_PROTOCOL;
        s->inside = true;
        s->body_lines = 0;
        return 0;
    }
    if (pem_line_is(line, n, "-----END CERTIFICATE-----")) {
        if (s->body_lines == 0)
            return PA_E_CA_PROTOCOL;
        s->inside = false;
        return 0;
    }
    if (!pem_base64(line, n))
        return PA_E_CA_PROTOCOL;
    s->body_lines++;
    return 0;
}

int cc_check_pem_certs(const char *pem, size_t len)
{
    struct pem_scan s = {false, 0, 0};
    size_t pos = 0;

    if (!pem || len == 0 || memchr(pem, '\0', len))
        return PA_E_CA_PROTOCOL;
    while (pos < len) {
        const char *line = pem + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;

        pos += n + (nl ? 1 : 0);
        if (pem_line(&s, line, without_cr(line, n)) < 0)
            return PA_E_CA_PROTOCOL;
    }
    return !s.inside && s.blocks > 0 ? 0 : PA_E_CA_PROTOCOL;
}
