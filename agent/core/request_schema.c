/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * request_schema.c - what a request may contain: the supported products, the schema of known
 * fields, the recording of problems, the structure pass and the check entry points
 * (req_check_types, req_validate).
 *
 * Validation runs in two passes over the JSON tree. The structure pass (req_check_types) walks
 * every member against one schema table: wrong JSON types and unknown fields. The rule pass
 * (request_rules.c) checks required fields and values per product; it skips values of the wrong
 * type (the first pass already reported them), so each problem is reported once. No message
 * contains a value: a request may carry card data, and messages end up in logs.
 */
#include "request_internal.h"

#include "config.h"
#include "i18n.h"
#include "pa_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------- */
/* Products                                                                                 */

static const char *const req_prof_authenc[] = {"authentication", "encryption", NULL};
/* The citizen auth/enc page shows an example with nonrepudiation too (certcentral-api.md §4). */
static const char *const req_prof_citizen[] = {"authentication", "encryption", "nonrepudiation",
                                               NULL};
static const char *const req_prof_signing[] = {"nonrepudiation", NULL};

/* The PKIo person family, certcentral-api.md §4. */
static const struct req_product req_products[] = {
    {"pkio_organisation_person", req_prof_authenc, "authentication, encryption", "token", false,
     true},
    {"pkio_organisation_person_prof", req_prof_authenc, "authentication, encryption", "token", true,
     false},
    {"pkio_private_person_prof", req_prof_authenc, "authentication, encryption", "token", true,
     false},
    {"pkio_burger", req_prof_citizen, "authentication, encryption, nonrepudiation", "token", false,
     false},
    {"pkio_qualified_burger", req_prof_signing, "nonrepudiation", "qscd", false, false},
    {"pkio_qualified_organisation_person_prof", req_prof_signing, "nonrepudiation", "qscd", true,
     false},
};

static const struct req_product *req_product_find(const char *id)
{
    if (!id)
        return NULL;
    for (size_t i = 0; i < sizeof(req_products) / sizeof(req_products[0]); i++)
        if (strcmp(req_products[i].id, id) == 0)
            return &req_products[i];
    return NULL;
}

bool req_product_supported(const char *product)
{
    return req_product_find(product) != NULL;
}

const char *req_product_list(void)
{
    return "pkio_organisation_person, pkio_organisation_person_prof, pkio_private_person_prof, "
           "pkio_burger, pkio_qualified_burger, pkio_qualified_organisation_person_prof";
}

/* ---------------------------------------------------------------------------------------- */
/* Schema                                                                                   */

static const char *const req_type_msg[] = {
    [REQ_T_STRING] = N_("must be a string"), [REQ_T_INT] = N_("must be an integer"),
    [REQ_T_BOOL] = N_("must be a boolean"),  [REQ_T_OBJECT] = N_("must be an object"),
    [REQ_T_ARRAY] = N_("must be an array"),  [REQ_T_BOOL_OR_NULL] = N_("must be a boolean or null"),
};

#define REQ_F_ORG    0x1u /* known only for products that need an organization */
#define REQ_F_TITLE  0x2u /* known only for products with a professional title */
#define REQ_F_SECRET 0x4u /* object of card data: never name its unknown members */

const struct req_field req_f_individual[] = {
    {"id", REQ_T_INT, 0, NULL},           {"first_name", REQ_T_STRING, 0, NULL},
    {"last_name", REQ_T_STRING, 0, NULL}, {"email", REQ_T_STRING, 0, NULL},
    {"telephone", REQ_T_STRING, 0, NULL}, {"country", REQ_T_STRING, 0, NULL},
    {"state", REQ_T_STRING, 0, NULL},     {"city", REQ_T_STRING, 0, NULL},
    {"zip", REQ_T_STRING, 0, NULL},       {"professional_title", REQ_T_STRING, REQ_F_TITLE, NULL},
    {NULL, REQ_T_STRING, 0, NULL},
};

static const struct req_field req_f_certificate[] = {
    {"signature_hash", REQ_T_STRING, 0, NULL},
    {"profile_option", REQ_T_STRING, 0, NULL},
    {"is_rsassa_pss", REQ_T_BOOL, 0, NULL},
    {"individual", REQ_T_OBJECT, 0, req_f_individual},
    {NULL, REQ_T_STRING, 0, NULL},
};

static const struct req_field req_f_ship[] = {
    {"name", REQ_T_STRING, 0, NULL},    {"addr1", REQ_T_STRING, 0, NULL},
    {"addr2", REQ_T_STRING, 0, NULL},   {"city", REQ_T_STRING, 0, NULL},
    {"state", REQ_T_STRING, 0, NULL},   {"zip", REQ_T_STRING, 0, NULL},
    {"country", REQ_T_STRING, 0, NULL}, {"method", REQ_T_STRING, 0, NULL},
    {NULL, REQ_T_STRING, 0, NULL},
};

static const struct req_field req_f_validity[] = {
    {"years", REQ_T_INT, 0, NULL},
    {"days", REQ_T_INT, 0, NULL},
    {"custom_expiration_date", REQ_T_STRING, 0, NULL},
    {NULL, REQ_T_STRING, 0, NULL},
};

static const struct req_field req_f_card[] = {
    {"number", REQ_T_STRING, 0, NULL},          {"expiration_month", REQ_T_STRING, 0, NULL},
    {"expiration_year", REQ_T_STRING, 0, NULL}, {"cvv", REQ_T_STRING, 0, NULL},
    {"cardholder_name", REQ_T_STRING, 0, NULL}, {"save_credit_card", REQ_T_BOOL_OR_NULL, 0, NULL},
    {"set_as_default", REQ_T_BOOL, 0, NULL},    {NULL, REQ_T_STRING, 0, NULL},
};

static const struct req_field req_f_billing[] = {
    {"address", REQ_T_STRING, 0, NULL}, {"address2", REQ_T_STRING, 0, NULL},
    {"city", REQ_T_STRING, 0, NULL},    {"state", REQ_T_STRING, 0, NULL},
    {"country", REQ_T_STRING, 0, NULL}, {"zip", REQ_T_STRING, 0, NULL},
    {NULL, REQ_T_STRING, 0, NULL},
};

static const struct req_field req_f_organization[] = {
    {"id", REQ_T_INT, 0, NULL},
    {"contacts", REQ_T_ARRAY, 0, NULL},
    {NULL, REQ_T_STRING, 0, NULL},
};

static const struct req_field req_f_root[] = {
    {"certificate", REQ_T_OBJECT, 0, req_f_certificate},
    {"csa_agreed_to", REQ_T_BOOL, 0, NULL},
    {"ship_info", REQ_T_OBJECT, 0, req_f_ship},
    {"order_validity", REQ_T_OBJECT, 0, req_f_validity},
    {"payment_method", REQ_T_STRING, 0, NULL},
    {"credit_card", REQ_T_OBJECT, REQ_F_SECRET, req_f_card},
    {"billing_address", REQ_T_OBJECT, 0, req_f_billing},
    {"organization", REQ_T_OBJECT, REQ_F_ORG, req_f_organization},
    {NULL, REQ_T_STRING, 0, NULL},
};

static const struct req_field *req_field_find(const struct req_field *fields, const char *name)
{
    for (; fields && fields->name; fields++)
        if (strcmp(fields->name, name) == 0)
            return fields;
    return NULL;
}

bool req_type_ok(json_object *v, enum req_type t)
{
    switch (t) {
    case REQ_T_STRING:
        return json_object_is_type(v, json_type_string);
    case REQ_T_INT:
        return json_object_is_type(v, json_type_int);
    case REQ_T_BOOL:
        return json_object_is_type(v, json_type_boolean);
    case REQ_T_OBJECT:
        return json_object_is_type(v, json_type_object);
    case REQ_T_ARRAY:
        return json_object_is_type(v, json_type_array);
    case REQ_T_BOOL_OR_NULL:
        return v == NULL || json_object_is_type(v, json_type_boolean);
    }
    return false;
}

json_object *req_opt(json_object *obj, const char *key, enum req_type t)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(obj, key, &v) || !req_type_ok(v, t))
        return NULL;
    return v;
}

/* ---------------------------------------------------------------------------------------- */
/* Error collection                                                                         */

/* Keep one problem: msg in English (for --json), local in the user's language. */
static void req_err_store(struct req_chk *k, const char *path, const char *msg, const char *local)
{
    struct req_error *v;

    if (!k->errs || k->r < 0 || k->errs->n >= REQ_MAX_ERRORS)
        return;
    v = realloc(k->errs->v, (k->errs->n + 1) * sizeof(*v));
    if (!v) {
        k->r = PA_E_NOMEM;
        return;
    }
    k->errs->v = v;
    v += k->errs->n++;
    (void)snprintf(v->path, sizeof(v->path), "%s", path);
    (void)snprintf(v->msg, sizeof(v->msg), "%s", msg);
    (void)snprintf(v->local, sizeof(v->local), "%s", local ? local : msg);
}

/* Record one problem at path: msg in English, local in the user's language. */
static void req_err_add(struct req_chk *k, const char *path, const char *msg, const char *local)
{
    k->count++;
    if (!k->errs)
        return;
    if (k->errs->n + 1 == REQ_MAX_ERRORS)
        req_err_store(k, "", "further errors not shown", _("further errors not shown"));
    else
        req_err_store(k, path, msg, local);
}

void req_err(struct req_chk *k, const char *path, const char *fmt, ...)
{
    char msg[160], local[160];
    va_list ap, ap2;

    va_start(ap, fmt);
    va_copy(ap2, ap);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    (void)vsnprintf(local, sizeof(local), _(fmt), ap2);
    va_end(ap2);
    va_end(ap);
    req_err_add(k, path, msg, local);
}

void req_err_text(struct req_chk *k, const char *path, const char *msgid)
{
    req_err_add(k, path, msgid, _(msgid));
}

void req_errors_clear(struct req_errors *errs)
{
    if (!errs)
        return;
    free(errs->v);
    errs->v = NULL;
    errs->n = 0;
}

bool req_join(char *out, size_t outlen, const char *base, const char *key)
{
    size_t i = 0;

    if (base && *base) {
        int n = snprintf(out, outlen, "%s.", base);

        if (n < 0 || (size_t)n >= outlen)
            return false;
        i = (size_t)n;
    }
    for (; *key; key++) {
        if (i + 1 >= outlen) {
            out[i] = '\0';
            return false;
        }
        out[i++] = (*key >= 0x20 && *key < 0x7f) ? *key : '?';
    }
    out[i] = '\0';
    return true;
}

/* ---------------------------------------------------------------------------------------- */
/* Dotted paths (csr_field, provisioning_field)                                             */

enum req_extra { REQ_EXTRA_NONE, REQ_EXTRA_FIELD, REQ_EXTRA_PARENT };

/* Is path one of the configured extra fields (or an object on the way to one)? */
static enum req_extra req_extra_kind(const struct cfg *cfg, const char *path)
{
    const char *fields[2] = {cfg->api_csr_field, cfg->api_provisioning_field};
    size_t n = strlen(path);

    for (size_t i = 0; i < 2; i++) {
        if (!fields[i])
            continue;
        if (strcmp(fields[i], path) == 0)
            return REQ_EXTRA_FIELD;
    }
    for (size_t i = 0; i < 2; i++) {
        if (!fields[i])
            continue;
        if (strncmp(fields[i], path, n) == 0 && fields[i][n] == '.')
            return REQ_EXTRA_PARENT;
    }
    return REQ_EXTRA_NONE;
}

/* ---------------------------------------------------------------------------------------- */
/* Structure pass                                                                           */

static void req_check_string(struct req_chk *k, const char *path, json_object *v)
{
    if (strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
        req_err_text(k, path, N_("must not contain a NUL character"));
}

static void req_walk(struct req_chk *k, json_object *obj, const char *path,
                     const struct req_field *fields, bool secret);

/* Is f known only for products that need what k's product does not (organization, title)? */
static bool req_field_unused(const struct req_chk *k, const struct req_field *f)
{
    return ((f->flags & REQ_F_ORG) && !k->prod->organization) ||
           ((f->flags & REQ_F_TITLE) && !k->prod->title);
}

/*
 * A member key (at sub, fits: sub was not truncated) of an object at path that the schema does
 * not know: a configured extra field, an object on the way to one, or an unknown field (in card
 * data only its object is named).
 */
static void req_walk_unknown(struct req_chk *k, json_object *val, const char *key, const char *path,
                             const char *sub, bool fits, bool secret)
{
    enum req_extra extra = REQ_EXTRA_NONE;

    if (fits && !strchr(key, '.'))
        extra = req_extra_kind(k->cfg, sub);
    if (extra == REQ_EXTRA_FIELD) {
        if (!json_object_is_type(val, json_type_string))
            req_err_text(k, sub, req_type_msg[REQ_T_STRING]);
        else
            req_check_string(k, sub, val);
    } else if (extra == REQ_EXTRA_PARENT) {
        if (!json_object_is_type(val, json_type_object))
            req_err_text(k, sub, req_type_msg[REQ_T_OBJECT]);
        else
            req_walk(k, val, sub, NULL, false);
    } else if (secret) {
        req_err_text(k, path, N_("has an unknown field"));
    } else {
        req_err_text(k, sub, N_("unknown field"));
    }
}

/* Check every member of obj (at path) against fields; fields NULL: only extra fields allowed. */
static void req_walk(struct req_chk *k, json_object *obj, const char *path,
                     const struct req_field *fields, bool secret)
{
    char sub[REQ_PATH_MAX];

    json_object_object_foreach(obj, key, val)
    {
        const struct req_field *f = req_field_find(fields, key);
        bool fits = req_join(sub, sizeof(sub), path, key);

        if (f && req_field_unused(k, f)) {
            req_err(k, sub, N_("not used by product %s"), k->prod->id);
            continue;
        }
        if (!f) {
            req_walk_unknown(k, val, key, path, sub, fits, secret);
            continue;
        }
        if (!req_type_ok(val, f->type)) {
            req_err_text(k, sub, req_type_msg[f->type]);
            continue;
        }
        if (f->type == REQ_T_STRING)
            req_check_string(k, sub, val);
        else if (f->type == REQ_T_OBJECT)
            req_walk(k, val, sub, f->children, (f->flags & REQ_F_SECRET) != 0);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Entry points                                                                             */

/* Shared front of req_check_types and req_validate. */
static int req_chk_init(struct req_chk *k, const struct cfg *cfg, struct req_errors *errs)
{
    memset(k, 0, sizeof(*k));
    k->cfg = cfg;
    k->errs = errs;
    k->prod = req_product_find(cfg->api_product);
    if (!k->prod || !cfg->api_csr_field || !cfg->api_provisioning_field)
        return PA_E_CONFIG;
    return 0;
}

int req_check_types(const struct req *req, const struct cfg *cfg, struct req_errors *errs)
{
    struct req_chk k;
    int r;

    r = req_chk_init(&k, cfg, errs);
    if (r < 0)
        return r;
    req_walk(&k, req->root, "", req_f_root, false);
    if (k.r < 0)
        return k.r;
    return k.count ? PA_E_REQUEST : 0;
}

int req_validate(const struct req *req, const struct cfg *cfg, bool with_csr,
                 struct req_errors *errs)
{
    struct req_chk k;
    int r;

    r = req_chk_init(&k, cfg, errs);
    if (r < 0)
        return r;
    req_walk(&k, req->root, "", req_f_root, false);
    req_rules(&k, req->root, with_csr);
    if (k.r < 0)
        return k.r;
    return k.count ? PA_E_REQUEST : 0;
}

void req_errors_format(const struct req_errors *errs, char *buf, size_t len)
{
    size_t pos = 0;

    if (!len)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < errs->n && pos + 1 < len; i++) {
        int w = snprintf(buf + pos, len - pos, "%s%s: %s", i ? "; " : "", errs->v[i].path,
                         errs->v[i].local);

        if (w < 0)
            break;
        pos += (size_t)w;
    }
}
