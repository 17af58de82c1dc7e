/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * request.c - the CertCentral order body: load, merge defaults, place the CSR, validate.
 *
 * Validation runs in two passes over the JSON tree. The structure pass (req_check_types) walks
 * every member against one schema table: wrong JSON types and unknown fields. The rule pass
 * checks required fields and values per product; it skips values of the wrong type (the first
 * pass already reported them), so each problem is reported once. No message contains a value:
 * a request may carry card data, and messages end up in logs.
 */
#include "request.h"

#include "config.h"
#include "i18n.h"
#include "log.h"
#include "pa_err.h"
#include "secret.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#define REQ_MAX_DEPTH  16
#define REQ_PATH_MAX   256 /* internal path buffers; req_error.path is shorter */
#define REQ_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

struct req {
    json_object *root; /* always an object */
};

/* ---------------------------------------------------------------------------------------- */
/* Products                                                                                 */

struct req_product {
    const char *id;
    const char *const *profiles; /* allowed certificate.profile_option values */
    const char *profile_text;    /* the same, for messages */
    const char *provisioning;    /* required value of the provisioning field */
    bool title;                  /* certificate.individual.professional_title required */
    bool organization;           /* organization {id} required */
};

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

enum req_type { RT_STRING, RT_INT, RT_BOOL, RT_OBJECT, RT_ARRAY, RT_BOOL_OR_NULL };

static const char *const req_type_msg[] = {
    [RT_STRING] = N_("must be a string"), [RT_INT] = N_("must be an integer"),
    [RT_BOOL] = N_("must be a boolean"),  [RT_OBJECT] = N_("must be an object"),
    [RT_ARRAY] = N_("must be an array"),  [RT_BOOL_OR_NULL] = N_("must be a boolean or null"),
};

#define RF_ORG    0x1u /* known only for products that need an organization */
#define RF_TITLE  0x2u /* known only for products with a professional title */
#define RF_SECRET 0x4u /* object of card data: never name its unknown members */

struct req_field {
    const char *name;
    enum req_type type;
    unsigned flags;
    const struct req_field *children; /* members of an RT_OBJECT; NULL name ends the list */
};

static const struct req_field req_f_individual[] = {
    {"id", RT_INT, 0, NULL},           {"first_name", RT_STRING, 0, NULL},
    {"last_name", RT_STRING, 0, NULL}, {"email", RT_STRING, 0, NULL},
    {"telephone", RT_STRING, 0, NULL}, {"country", RT_STRING, 0, NULL},
    {"state", RT_STRING, 0, NULL},     {"city", RT_STRING, 0, NULL},
    {"zip", RT_STRING, 0, NULL},       {"professional_title", RT_STRING, RF_TITLE, NULL},
    {NULL, RT_STRING, 0, NULL},
};

static const struct req_field req_f_certificate[] = {
    {"signature_hash", RT_STRING, 0, NULL},
    {"profile_option", RT_STRING, 0, NULL},
    {"is_rsassa_pss", RT_BOOL, 0, NULL},
    {"individual", RT_OBJECT, 0, req_f_individual},
    {NULL, RT_STRING, 0, NULL},
};

static const struct req_field req_f_ship[] = {
    {"name", RT_STRING, 0, NULL},    {"addr1", RT_STRING, 0, NULL},  {"addr2", RT_STRING, 0, NULL},
    {"city", RT_STRING, 0, NULL},    {"state", RT_STRING, 0, NULL},  {"zip", RT_STRING, 0, NULL},
    {"country", RT_STRING, 0, NULL}, {"method", RT_STRING, 0, NULL}, {NULL, RT_STRING, 0, NULL},
};

static const struct req_field req_f_validity[] = {
    {"years", RT_INT, 0, NULL},
    {"days", RT_INT, 0, NULL},
    {"custom_expiration_date", RT_STRING, 0, NULL},
    {NULL, RT_STRING, 0, NULL},
};

static const struct req_field req_f_card[] = {
    {"number", RT_STRING, 0, NULL},          {"expiration_month", RT_STRING, 0, NULL},
    {"expiration_year", RT_STRING, 0, NULL}, {"cvv", RT_STRING, 0, NULL},
    {"cardholder_name", RT_STRING, 0, NULL}, {"save_credit_card", RT_BOOL_OR_NULL, 0, NULL},
    {"set_as_default", RT_BOOL, 0, NULL},    {NULL, RT_STRING, 0, NULL},
};

static const struct req_field req_f_billing[] = {
    {"address", RT_STRING, 0, NULL}, {"address2", RT_STRING, 0, NULL}, {"city", RT_STRING, 0, NULL},
    {"state", RT_STRING, 0, NULL},   {"country", RT_STRING, 0, NULL},  {"zip", RT_STRING, 0, NULL},
    {NULL, RT_STRING, 0, NULL},
};

static const struct req_field req_f_organization[] = {
    {"id", RT_INT, 0, NULL},
    {"contacts", RT_ARRAY, 0, NULL},
    {NULL, RT_STRING, 0, NULL},
};

static const struct req_field req_f_root[] = {
    {"certificate", RT_OBJECT, 0, req_f_certificate},
    {"csa_agreed_to", RT_BOOL, 0, NULL},
    {"ship_info", RT_OBJECT, 0, req_f_ship},
    {"order_validity", RT_OBJECT, 0, req_f_validity},
    {"payment_method", RT_STRING, 0, NULL},
    {"credit_card", RT_OBJECT, RF_SECRET, req_f_card},
    {"billing_address", RT_OBJECT, 0, req_f_billing},
    {"organization", RT_OBJECT, RF_ORG, req_f_organization},
    {NULL, RT_STRING, 0, NULL},
};

static const struct req_field *req_field_find(const struct req_field *fields, const char *name)
{
    for (; fields && fields->name; fields++)
        if (strcmp(fields->name, name) == 0)
            return fields;
    return NULL;
}

static bool req_type_ok(json_object *v, enum req_type t)
{
    switch (t) {
    case RT_STRING:
        return json_object_is_type(v, json_type_string);
    case RT_INT:
        return json_object_is_type(v, json_type_int);
    case RT_BOOL:
        return json_object_is_type(v, json_type_boolean);
    case RT_OBJECT:
        return json_object_is_type(v, json_type_object);
    case RT_ARRAY:
        return json_object_is_type(v, json_type_array);
    case RT_BOOL_OR_NULL:
        return v == NULL || json_object_is_type(v, json_type_boolean);
    }
    return false;
}

/* ---------------------------------------------------------------------------------------- */
/* Error collection                                                                         */

struct req_chk {
    const struct cfg *cfg;
    const struct req_product *prod;
    struct req_errors *errs; /* may be NULL */
    size_t count;            /* problems found, also those not stored */
    int r;                   /* PA_E_NOMEM once an allocation failed */
};

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

/*
 * Record one problem at path. The message never contains a value from the request. fmt is
 * English (marked N_()); the message is kept in English and in the user's language.
 */
__attribute__((format(printf, 3, 4))) static void req_err(struct req_chk *k, const char *path,
                                                          const char *fmt, ...)
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

/* Record one problem at path whose message is msgid (English, marked N_()). */
static void req_err_text(struct req_chk *k, const char *path, const char *msgid)
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

/*
 * out = base.key (key alone at the root), non-printable bytes shown as '?'. Returns false when
 * the result was truncated (it is still NUL-terminated and usable in messages).
 */
static bool req_join(char *out, size_t outlen, const char *base, const char *key)
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

/* The member at a dotted path; *present tells whether it exists (its value may be null). */
static json_object *req_lookup(json_object *root, const char *path, bool *present)
{
    char seg[REQ_PATH_MAX];
    json_object *cur = root, *next = NULL;
    const char *p = path;

    *present = false;
    if (!path || !*path)
        return NULL;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);

        if (n == 0 || n >= sizeof(seg) || !json_object_is_type(cur, json_type_object))
            return NULL;
        memcpy(seg, p, n);
        seg[n] = '\0';
        if (!json_object_object_get_ex(cur, seg, &next))
            return NULL;
        if (!dot)
            break;
        cur = next;
        p = dot + 1;
    }
    *present = true;
    return next;
}

/* ---------------------------------------------------------------------------------------- */
/* Structure pass                                                                           */

static void req_check_string(struct req_chk *k, const char *path, json_object *v)
{
    if (strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
        req_err_text(k, path, N_("must not contain a NUL character"));
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
        enum req_extra extra = REQ_EXTRA_NONE;

        if (f && (((f->flags & RF_ORG) && !k->prod->organization) ||
                  ((f->flags & RF_TITLE) && !k->prod->title))) {
            req_err(k, sub, N_("not used by product %s"), k->prod->id);
            continue;
        }
        if (!f) {
            if (fits && !strchr(key, '.'))
                extra = req_extra_kind(k->cfg, sub);
            if (extra == REQ_EXTRA_FIELD) {
                if (!json_object_is_type(val, json_type_string))
                    req_err_text(k, sub, req_type_msg[RT_STRING]);
                else
                    req_check_string(k, sub, val);
            } else if (extra == REQ_EXTRA_PARENT) {
                if (!json_object_is_type(val, json_type_object))
                    req_err_text(k, sub, req_type_msg[RT_OBJECT]);
                else
                    req_walk(k, val, sub, NULL, false);
            } else if (secret) {
                req_err_text(k, path, N_("has an unknown field"));
            } else {
                req_err_text(k, sub, N_("unknown field"));
            }
            continue;
        }
        if (!req_type_ok(val, f->type)) {
            req_err_text(k, sub, req_type_msg[f->type]);
            continue;
        }
        if (f->type == RT_STRING)
            req_check_string(k, sub, val);
        else if (f->type == RT_OBJECT)
            req_walk(k, val, sub, f->children, (f->flags & RF_SECRET) != 0);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Rule pass helpers                                                                        */

/* A required member of type t: NULL (and "is required") when absent, NULL when mistyped. */
static json_object *req_need(struct req_chk *k, json_object *obj, const char *base, const char *key,
                             enum req_type t)
{
    char path[REQ_PATH_MAX];
    json_object *v = NULL;

    if (!json_object_object_get_ex(obj, key, &v)) {
        (void)req_join(path, sizeof(path), base, key);
        req_err_text(k, path, N_("is required"));
        return NULL;
    }
    return req_type_ok(v, t) ? v : NULL;
}

/* An optional member of type t, or NULL. */
static json_object *req_opt(json_object *obj, const char *key, enum req_type t)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(obj, key, &v) || !req_type_ok(v, t))
        return NULL;
    return v;
}

static bool req_blank(const char *s)
{
    for (; *s; s++)
        if (!isspace((unsigned char)*s))
            return false;
    return true;
}

/* A required, non-blank string member; NULL when absent, mistyped or blank (all reported). */
static const char *req_need_text(struct req_chk *k, json_object *obj, const char *base,
                                 const char *key)
{
    char path[REQ_PATH_MAX];
    json_object *v = req_need(k, obj, base, key, RT_STRING);
    const char *s;

    if (!v)
        return NULL;
    s = json_object_get_string(v);
    if (req_blank(s)) {
        (void)req_join(path, sizeof(path), base, key);
        req_err_text(k, path, N_("must not be empty"));
        return NULL;
    }
    return s;
}

static bool req_digits(const char *s, size_t min, size_t max)
{
    size_t n = strlen(s);

    if (n < min || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static bool req_country_ok(const char *s)
{
    return strlen(s) == 2 && isalpha((unsigned char)s[0]) && isalpha((unsigned char)s[1]) &&
           (unsigned char)s[0] < 0x80 && (unsigned char)s[1] < 0x80;
}

static void req_need_country(struct req_chk *k, json_object *obj, const char *base)
{
    char path[REQ_PATH_MAX];
    json_object *v = req_need(k, obj, base, "country", RT_STRING);

    if (v && !req_country_ok(json_object_get_string(v))) {
        (void)req_join(path, sizeof(path), base, "country");
        req_err_text(k, path, N_("must be a two-letter country code"));
    }
}

/* Does the given name start with an honorific or academic title? */
static bool req_has_title(const char *s)
{
    static const char *const titles[] = {"dr", "drs", "prof", "mr",  "mrs",  "ms", "miss",
                                         "ir", "ing", "bc",   "dhr", "mevr", "mw", NULL};
    size_t n = 0;

    while (*s == ' ' || *s == '\t')
        s++;
    while (isalpha((unsigned char)s[n]) && (unsigned char)s[n] < 0x80)
        n++;
    if (n == 0 || (s[n] != '\0' && s[n] != '.' && s[n] != ' ' && s[n] != '\t'))
        return false;
    for (size_t i = 0; titles[i]; i++)
        if (strlen(titles[i]) == n && strncasecmp(s, titles[i], n) == 0)
            return true;
    return false;
}

/* local@domain.tld, printable ASCII, no spaces; domain labels of letters, digits and '-'. */
static bool req_email_ok(const char *s)
{
    const char *at = strchr(s, '@'), *d, *label, *last = NULL;
    size_t n = strlen(s);

    if (!at || at == s || n > 254 || strchr(at + 1, '@'))
        return false;
    for (const char *p = s; p < at; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || strchr("()<>,;:\\\"[]", *p))
            return false;
    d = at + 1;
    label = d;
    for (const char *p = d;; p++) {
        if (*p == '.' || *p == '\0') {
            if (p == label || *label == '-' || p[-1] == '-')
                return false;
            last = label;
            if (*p == '\0')
                break;
            label = p + 1;
            continue;
        }
        if (!isalnum((unsigned char)*p) && *p != '-')
            return false;
        if ((unsigned char)*p >= 0x80)
            return false;
    }
    if (last == d) /* no dot in the domain */
        return false;
    if (strlen(last) < 2)
        return false;
    for (const char *p = last; *p; p++)
        if (!isalpha((unsigned char)*p))
            return false;
    return true;
}

/* Telephone rule; returns NULL or the message. */
static const char *req_phone_problem(const char *s)
{
    size_t digits = 0;

    if (s[0] != '+' || s[1] < '1' || s[1] > '9')
        return N_("must start with + and the country code");
    for (const char *p = s + 1; *p; p++) {
        if (*p >= '0' && *p <= '9')
            digits++;
        else if (*p != ' ' && *p != '-' && *p != '(' && *p != ')')
            return N_("may contain only digits, spaces, '-', '(' and ')' after the +");
    }
    if (digits < 7 || digits > 20)
        return N_("must have 7 to 20 digits");
    return NULL;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static long req_days_from_civil(long y, long m, long d)
{
    long era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Parse YYYY-MM-DD into days since the epoch; false if malformed or not a real date. */
static bool req_parse_date(const char *s, long *ret_days)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    long y, m, d;
    int dim;

    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return false;
    y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    m = (s[5] - '0') * 10 + (s[6] - '0');
    d = (s[8] - '0') * 10 + (s[9] - '0');
    if (m < 1 || m > 12 || d < 1)
        return false;
    dim = mdays[m - 1];
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        dim = 29;
    if (d > dim)
        return false;
    *ret_days = req_days_from_civil(y, m, d);
    return true;
}

/* Today (UTC) as days since the epoch, and the current year and month. */
static void req_today(long *days, int *year, int *month)
{
    time_t now = time(NULL);
    struct tm tm;

    *days = (long)(now / 86400);
    if (!gmtime_r(&now, &tm)) {
        *year = 1970;
        *month = 1;
        return;
    }
    *year = tm.tm_year + 1900;
    *month = tm.tm_mon + 1;
}

static bool req_luhn_ok(const char *s)
{
    size_t n = strlen(s);
    int sum = 0;

    for (size_t i = 0; i < n; i++) {
        int dgt = s[n - 1 - i] - '0';

        if (i % 2 == 1) {
            dgt *= 2;
            if (dgt > 9)
                dgt -= 9;
        }
        sum += dgt;
    }
    return sum % 10 == 0;
}

static bool req_in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

/* ---------------------------------------------------------------------------------------- */
/* Rule pass                                                                                */

static void req_rules_individual(struct req_chk *k, json_object *ind)
{
    static const char base[] = "certificate.individual";
    char path[REQ_PATH_MAX];
    json_object *id = NULL, *v;
    const char *s, *msg;

    if (json_object_object_get_ex(ind, "id", &id)) {
        if (json_object_is_type(id, json_type_int) && json_object_get_int64(id) <= 0)
            req_err_text(k, "certificate.individual.id", N_("must be a positive integer"));
        for (const struct req_field *f = req_f_individual; f->name; f++) {
            if (strcmp(f->name, "id") == 0 || !json_object_object_get_ex(ind, f->name, NULL))
                continue;
            (void)req_join(path, sizeof(path), base, f->name);
            req_err_text(k, path, N_("must be absent when id is given"));
        }
        return;
    }
    s = req_need_text(k, ind, base, "first_name");
    if (s && req_has_title(s))
        req_err_text(k, "certificate.individual.first_name",
                     N_("must not start with a title such as \"Dr.\" or \"Mr.\""));
    (void)req_need_text(k, ind, base, "last_name");
    v = req_need(k, ind, base, "email", RT_STRING);
    if (v && !req_email_ok(json_object_get_string(v)))
        req_err_text(k, "certificate.individual.email",
                     N_("must be an e-mail address (local@domain.tld)"));
    v = req_need(k, ind, base, "telephone", RT_STRING);
    msg = v ? req_phone_problem(json_object_get_string(v)) : NULL;
    if (msg)
        req_err_text(k, "certificate.individual.telephone", msg);
    req_need_country(k, ind, base);
    (void)req_need_text(k, ind, base, "state");
    if (k->prod->title)
        (void)req_need_text(k, ind, base, "professional_title");
}

static void req_rules_certificate(struct req_chk *k, json_object *root)
{
    json_object *cert, *v;

    cert = req_need(k, root, "", "certificate", RT_OBJECT);
    if (!cert)
        return;
    v = req_need(k, cert, "certificate", "signature_hash", RT_STRING);
    if (v && strcmp(json_object_get_string(v), "sha256") != 0)
        req_err_text(k, "certificate.signature_hash", N_("must be \"sha256\""));
    v = req_need(k, cert, "certificate", "profile_option", RT_STRING);
    if (v && !req_in_list(json_object_get_string(v), k->prod->profiles))
        req_err(k, "certificate.profile_option", N_("must be one of: %s"), k->prod->profile_text);
    v = req_need(k, cert, "certificate", "individual", RT_OBJECT);
    if (v)
        req_rules_individual(k, v);
}

/* A string member at a configured dotted path (provisioning or CSR field). */
static json_object *req_need_path(struct req_chk *k, json_object *root, const char *path)
{
    bool present;
    json_object *v = req_lookup(root, path, &present);

    if (!present) {
        req_err_text(k, path, N_("is required"));
        return NULL;
    }
    return json_object_is_type(v, json_type_string) ? v : NULL;
}

static void req_rules_ship(struct req_chk *k, json_object *ship)
{
    static const char base[] = "ship_info";
    static const char *const text[] = {"name", "addr1", "city", "state", "zip", NULL};
    json_object *v;

    for (size_t i = 0; text[i]; i++)
        (void)req_need_text(k, ship, base, text[i]);
    (void)req_need(k, ship, base, "addr2", RT_STRING); /* required, may be empty */
    req_need_country(k, ship, base);
    v = req_need(k, ship, base, "method", RT_STRING);
    if (v && strcmp(json_object_get_string(v), "STANDARD") != 0 &&
        strcmp(json_object_get_string(v), "EXPEDITED") != 0)
        req_err_text(k, "ship_info.method", N_("must be STANDARD or EXPEDITED"));
}

static void req_rules_validity(struct req_chk *k, json_object *ov)
{
    json_object *v;
    long today, when;
    int year, month, given = 0;

    given += json_object_object_get_ex(ov, "years", NULL);
    given += json_object_object_get_ex(ov, "days", NULL);
    given += json_object_object_get_ex(ov, "custom_expiration_date", NULL);
    if (given > 1)
        req_err_text(k, "order_validity",
                     N_("give at most one of years, days, custom_expiration_date"));
    v = req_opt(ov, "years", RT_INT);
    if (v && (json_object_get_int64(v) < 1 || json_object_get_int64(v) > 3))
        req_err_text(k, "order_validity.years", N_("must be 1, 2 or 3"));
    v = req_opt(ov, "days", RT_INT);
    if (v && (json_object_get_int64(v) < 1 || json_object_get_int64(v) > 1095))
        req_err_text(k, "order_validity.days", N_("must be 1 to 1095"));
    v = req_opt(ov, "custom_expiration_date", RT_STRING);
    if (!v)
        return;
    if (!req_parse_date(json_object_get_string(v), &when)) {
        req_err_text(k, "order_validity.custom_expiration_date",
                     N_("must be a real date as YYYY-MM-DD"));
        return;
    }
    req_today(&today, &year, &month);
    if (when <= today || when > today + 397)
        req_err_text(k, "order_validity.custom_expiration_date",
                     N_("must be after today and at most 397 days from today"));
}

static void req_rules_card(struct req_chk *k, json_object *cc)
{
    static const char base[] = "credit_card";
    json_object *v, *mv, *yv;
    const char *s;
    long today;
    int year, month, cmonth = 0, cyear = 0;

    v = req_need(k, cc, base, "number", RT_STRING);
    if (v) {
        s = json_object_get_string(v);
        if (!req_digits(s, 12, 19))
            req_err_text(k, "credit_card.number", N_("must be 12 to 19 digits"));
        else if (!req_luhn_ok(s))
            req_err_text(k, "credit_card.number",
                         N_("is not a valid card number (Luhn check failed)"));
    }
    mv = req_need(k, cc, base, "expiration_month", RT_STRING);
    if (mv) {
        s = json_object_get_string(mv);
        if (req_digits(s, 2, 2))
            cmonth = (s[0] - '0') * 10 + (s[1] - '0');
        if (cmonth < 1 || cmonth > 12)
            req_err_text(k, "credit_card.expiration_month",
                         N_("must be two digits, \"01\" to \"12\""));
    }
    yv = req_need(k, cc, base, "expiration_year", RT_STRING);
    if (yv) {
        s = json_object_get_string(yv);
        if (req_digits(s, 4, 4))
            cyear = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
        else
            req_err_text(k, "credit_card.expiration_year", N_("must be four digits"));
    }
    if (cyear && cmonth >= 1 && cmonth <= 12) {
        req_today(&today, &year, &month);
        if (cyear < year || (cyear == year && cmonth < month))
            req_err_text(k, "credit_card.expiration_year", N_("the card has expired"));
    }
    v = req_need(k, cc, base, "cvv", RT_STRING);
    if (v && !req_digits(json_object_get_string(v), 3, 4))
        req_err_text(k, "credit_card.cvv", N_("must be 3 or 4 digits"));
    (void)req_need_text(k, cc, base, "cardholder_name");
    (void)req_need(k, cc, base, "set_as_default", RT_BOOL); /* required in DigiCert's table */
}

static void req_rules_payment(struct req_chk *k, json_object *root)
{
    static const char *const methods[] = {"balance", "card", "profile", NULL};
    json_object *pm, *cc = NULL, *ba = NULL;
    bool card = false, has_cc, has_ba;

    pm = req_need(k, root, "", "payment_method", RT_STRING);
    if (pm && !req_in_list(json_object_get_string(pm), methods)) {
        req_err_text(k, "payment_method", N_("must be one of: balance, card, profile"));
        pm = NULL;
    }
    card = pm && strcmp(json_object_get_string(pm), "card") == 0;
    has_cc = json_object_object_get_ex(root, "credit_card", &cc);
    has_ba = json_object_object_get_ex(root, "billing_address", &ba);
    if (card && !has_cc)
        req_err_text(k, "credit_card", N_("is required when payment_method is card"));
    if (pm && !card && has_cc)
        req_err_text(k, "credit_card", N_("is allowed only when payment_method is card"));
    if (has_cc && json_object_is_type(cc, json_type_object))
        req_rules_card(k, cc);
    if (card && !has_ba)
        req_err_text(k, "billing_address", N_("is required when payment_method is card"));
    if (has_ba && json_object_is_type(ba, json_type_object)) {
        (void)req_need_text(k, ba, "billing_address", "address");
        (void)req_need_text(k, ba, "billing_address", "city");
        req_need_country(k, ba, "billing_address");
    }
}

static bool req_pem_csr_ok(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    if (strncmp(s, "-----BEGIN CERTIFICATE REQUEST-----", 35) == 0)
        return strstr(s, "-----END CERTIFICATE REQUEST-----") != NULL;
    if (strncmp(s, "-----BEGIN NEW CERTIFICATE REQUEST-----", 39) == 0)
        return strstr(s, "-----END NEW CERTIFICATE REQUEST-----") != NULL;
    return false;
}

static void req_rules(struct req_chk *k, json_object *root, bool with_csr)
{
    json_object *v, *org;

    req_rules_certificate(k, root);
    v = req_need(k, root, "", "csa_agreed_to", RT_BOOL);
    if (v && !json_object_get_boolean(v))
        req_err_text(k, "csa_agreed_to", N_("must be true"));
    v = req_need_path(k, root, k->cfg->api_provisioning_field);
    if (v && strcmp(json_object_get_string(v), k->prod->provisioning) != 0)
        req_err(k, k->cfg->api_provisioning_field, N_("must be \"%s\""), k->prod->provisioning);
    if (k->prod->organization) {
        org = req_need(k, root, "", "organization", RT_OBJECT);
        v = org ? req_need(k, org, "organization", "id", RT_INT) : NULL;
        if (v && json_object_get_int64(v) <= 0)
            req_err_text(k, "organization.id", N_("must be a positive integer"));
    }
    v = req_opt(root, "ship_info", RT_OBJECT);
    if (v)
        req_rules_ship(k, v);
    v = req_opt(root, "order_validity", RT_OBJECT);
    if (v)
        req_rules_validity(k, v);
    req_rules_payment(k, root);
    if (with_csr) {
        v = req_need_path(k, root, k->cfg->api_csr_field);
        if (v && !req_pem_csr_ok(json_object_get_string(v)))
            req_err_text(k, k->cfg->api_csr_field, N_("must be a PEM certificate request"));
    }
}

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

/* ---------------------------------------------------------------------------------------- */
/* Loading, editing, output                                                                 */

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

/* Parse len bytes as a request object; name is used in messages. */
static int req_parse(const char *name, const char *buf, size_t len, struct req **ret, char *errbuf,
                     size_t errlen)
{
    struct json_tokener *tok = NULL;
    json_object *root = NULL;
    struct req *req = NULL;
    enum json_tokener_error jerr;
    unsigned long line, col;
    size_t end;
    int r = PA_E_REQUEST;

    if (len > REQ_MAX_SIZE) {
        req_msg(errbuf, errlen, _("%s: larger than %d bytes"), name, REQ_MAX_SIZE);
        goto out;
    }
    if (memchr(buf, '\0', len)) {
        req_msg(errbuf, errlen, _("%s: contains a NUL byte"), name);
        goto out;
    }
    tok = json_tokener_new_ex(REQ_MAX_DEPTH);
    if (!tok) {
        r = PA_E_NOMEM;
        goto out;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
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
        goto out;
    }
    while (end < len && isspace((unsigned char)buf[end]))
        end++;
    if (end < len) {
        req_line_col(buf, end, &line, &col);
        req_msg(errbuf, errlen, _("%s:%lu:%lu: invalid JSON: data after the end"), name, line, col);
        goto out;
    }
    if (!json_object_is_type(root, json_type_object)) {
        req_msg(errbuf, errlen, _("%s: must contain a JSON object"), name);
        goto out;
    }
    if (!req_json_finite(root)) {
        req_msg(errbuf, errlen, _("%s: a number is out of range"), name);
        goto out;
    }
    req = calloc(1, sizeof(*req));
    if (!req) {
        r = PA_E_NOMEM;
        goto out;
    }
    req->root = root;
    root = NULL;
    *ret = req;
    r = 0;
out:
    if (root && json_object_object_get_ex(root, "credit_card", NULL))
        req_wipe_strings(root);
    json_object_put(root);
    if (tok) {
        /* The tokener's scratch buffer held the last strings parsed, maybe card data. */
        if (tok->pb && tok->pb->buf)
            secret_wipe(tok->pb->buf, (size_t)tok->pb->size);
        json_tokener_free(tok);
    }
    return r;
}

int req_load_mem(const char *buf, size_t len, struct req **ret, char *errbuf, size_t errlen)
{
    return req_parse(_("request"), buf, len, ret, errbuf, errlen);
}

int req_load_file(const char *path, struct req **ret, char *errbuf, size_t errlen)
{
    struct req *req = NULL;
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    int fd = -1, r = PA_E_REQUEST;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        req_msg(errbuf, errlen, _("%s: cannot open: %s"), path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        req_msg(errbuf, errlen, _("%s: cannot stat: %s"), path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        req_msg(errbuf, errlen, _("%s: not a regular file"), path);
        goto out;
    }
    if (st.st_size > REQ_MAX_SIZE) {
        req_msg(errbuf, errlen, _("%s: larger than %d bytes"), path, REQ_MAX_SIZE);
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
            req_msg(errbuf, errlen, _("%s: cannot read: %s"), path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    r = req_parse(path, buf, len, &req, errbuf, errlen);
    if (r < 0)
        goto out;
    if (json_object_object_get_ex(req->root, "credit_card", NULL) &&
        (st.st_mode & (S_IRWXG | S_IRWXO))) {
        req_msg(errbuf, errlen,
                _("%s: contains credit card data but is group- or world-accessible; run: chmod "
                  "600 %s"),
                path, path);
        r = PA_E_REQUEST;
        goto out;
    }
    *ret = req;
    req = NULL;
out:
    req_free(req);
    if (buf) {
        secret_wipe(buf, len);
        free(buf);
    }
    if (fd >= 0)
        close(fd);
    return r;
}

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
    json_object *v = req_opt(obj, key, RT_STRING);

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
        v = req_opt(ind, "id", RT_INT);
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
