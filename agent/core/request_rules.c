/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * request_rules.c - the rule pass: the fields each product requires and the values they may
 * take (names, e-mail, telephone, country, validity, payment and card data, the CSR). Values of
 * the wrong JSON type are skipped: the structure pass (request_schema.c) reported them already.
 * No message contains a value: a request may carry card data, and messages end up in logs.
 */
#include "request_internal.h"

#include "config.h"
#include "i18n.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---------------------------------------------------------------------------------------- */
/* Dotted paths (csr_field, provisioning_field)                                             */

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
/* Rule pass helpers                                                                        */

/* Record one problem at base.key whose message is msgid (English, marked N_()). */
static void req_err_at(struct req_chk *k, const char *base, const char *key, const char *msgid)
{
    char path[REQ_PATH_MAX];

    (void)req_join(path, sizeof(path), base, key);
    req_err_text(k, path, msgid);
}

/* A required member of type t: NULL (and "is required") when absent, NULL when mistyped. */
static json_object *req_need(struct req_chk *k, json_object *obj, const char *base, const char *key,
                             enum req_type t)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(obj, key, &v)) {
        req_err_at(k, base, key, N_("is required"));
        return NULL;
    }
    return req_type_ok(v, t) ? v : NULL;
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
    json_object *v = req_need(k, obj, base, key, REQ_T_STRING);
    const char *s;

    if (!v)
        return NULL;
    s = json_object_get_string(v);
    if (req_blank(s)) {
        req_err_at(k, base, key, N_("must not be empty"));
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
    json_object *v = req_need(k, obj, base, "country", REQ_T_STRING);

    if (v && !req_country_ok(json_object_get_string(v)))
        req_err_at(k, base, "country", N_("must be a two-letter country code"));
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

/* The local part of an e-mail address (s up to at): printable ASCII, no spaces or specials. */
static bool req_email_local_ok(const char *s, const char *at)
{
    if (at == s)
        return false;
    for (const char *p = s; p < at; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || strchr("()<>,;:\\\"[]", *p))
            return false;
    return true;
}

/* The top-level domain: two or more letters. */
static bool req_tld_ok(const char *s)
{
    if (strlen(s) < 2)
        return false;
    for (; *s; s++)
        if (!isalpha((unsigned char)*s))
            return false;
    return true;
}

/* A domain of at least two labels of ASCII letters, digits and '-' (not first or last). */
static bool req_email_domain_ok(const char *d)
{
    const char *label = d, *last = NULL;

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
        if ((!isalnum((unsigned char)*p) && *p != '-') || (unsigned char)*p >= 0x80)
            return false;
    }
    return last != d && req_tld_ok(last); /* last == d: no dot in the domain */
}

/* local@domain.tld, printable ASCII, no spaces; domain labels of letters, digits and '-'. */
static bool req_email_ok(const char *s)
{
    const char *at = strchr(s, '@');

    if (!at || strlen(s) > 254 || strchr(at + 1, '@'))
        return false;
    return req_email_local_ok(s, at) && req_email_domain_ok(at + 1);
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

/* The value of the n decimal digits at s; false if one of them is not a digit. */
static bool req_decimal(const char *s, size_t n, long *ret)
{
    long v = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *ret = v;
    return true;
}

/* Parse YYYY-MM-DD into days since the epoch; false if malformed or not a real date. */
static bool req_parse_date(const char *s, long *ret_days)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    long y, m, d;
    int dim;

    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' || !req_decimal(s, 4, &y) ||
        !req_decimal(s + 5, 2, &m) || !req_decimal(s + 8, 2, &d))
        return false;
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
    json_object *id = NULL, *v;
    const char *s, *msg;

    if (json_object_object_get_ex(ind, "id", &id)) {
        if (json_object_is_type(id, json_type_int) && json_object_get_int64(id) <= 0)
            req_err_text(k, "certificate.individual.id", N_("must be a positive integer"));
        for (const struct req_field *f = req_f_individual; f->name; f++) {
            if (strcmp(f->name, "id") == 0 || !json_object_object_get_ex(ind, f->name, NULL))
                continue;
            req_err_at(k, base, f->name, N_("must be absent when id is given"));
        }
        return;
    }
    s = req_need_text(k, ind, base, "first_name");
    if (s && req_has_title(s))
        req_err_text(k, "certificate.individual.first_name",
                     N_("must not start with a title such as \"Dr.\" or \"Mr.\""));
    (void)req_need_text(k, ind, base, "last_name");
    v = req_need(k, ind, base, "email", REQ_T_STRING);
    if (v && !req_email_ok(json_object_get_string(v)))
        req_err_text(k, "certificate.individual.email",
                     N_("must be an e-mail address (local@domain.tld)"));
    v = req_need(k, ind, base, "telephone", REQ_T_STRING);
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

    cert = req_need(k, root, "", "certificate", REQ_T_OBJECT);
    if (!cert)
        return;
    v = req_need(k, cert, "certificate", "signature_hash", REQ_T_STRING);
    if (v && strcmp(json_object_get_string(v), "sha256") != 0)
        req_err_text(k, "certificate.signature_hash", N_("must be \"sha256\""));
    v = req_need(k, cert, "certificate", "profile_option", REQ_T_STRING);
    if (v && !req_in_list(json_object_get_string(v), k->prod->profiles))
        req_err(k, "certificate.profile_option", N_("must be one of: %s"), k->prod->profile_text);
    v = req_need(k, cert, "certificate", "individual", REQ_T_OBJECT);
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
    (void)req_need(k, ship, base, "addr2", REQ_T_STRING); /* required, may be empty */
    req_need_country(k, ship, base);
    v = req_need(k, ship, base, "method", REQ_T_STRING);
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
    v = req_opt(ov, "years", REQ_T_INT);
    if (v && (json_object_get_int64(v) < 1 || json_object_get_int64(v) > 3))
        req_err_text(k, "order_validity.years", N_("must be 1, 2 or 3"));
    v = req_opt(ov, "days", REQ_T_INT);
    if (v && (json_object_get_int64(v) < 1 || json_object_get_int64(v) > 1095))
        req_err_text(k, "order_validity.days", N_("must be 1 to 1095"));
    v = req_opt(ov, "custom_expiration_date", REQ_T_STRING);
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

/* credit_card.number: 12 to 19 digits that pass the Luhn check. */
static void req_rules_card_number(struct req_chk *k, json_object *cc)
{
    json_object *v = req_need(k, cc, "credit_card", "number", REQ_T_STRING);
    const char *s = v ? json_object_get_string(v) : NULL;

    if (!s)
        return;
    if (!req_digits(s, 12, 19))
        req_err_text(k, "credit_card.number", N_("must be 12 to 19 digits"));
    else if (!req_luhn_ok(s))
        req_err_text(k, "credit_card.number", N_("is not a valid card number (Luhn check failed)"));
}

/*
 * The required string credit_card.KEY as a number of exactly n digits in [min, max], else 0
 * (absent or mistyped: reported as such; otherwise wrong: msgid).
 */
static long req_card_digits(struct req_chk *k, json_object *cc, const char *key, size_t n, long min,
                            long max, const char *msgid)
{
    json_object *v = req_need(k, cc, "credit_card", key, REQ_T_STRING);
    const char *s;
    long val = 0;

    if (!v)
        return 0;
    s = json_object_get_string(v);
    if (strlen(s) == n && req_decimal(s, n, &val) && val >= min && val <= max)
        return val;
    req_err_at(k, "credit_card", key, msgid);
    return 0;
}

static void req_rules_card(struct req_chk *k, json_object *cc)
{
    static const char base[] = "credit_card";
    json_object *v;
    long today, cmonth, cyear;
    int year, month;

    req_rules_card_number(k, cc);
    cmonth = req_card_digits(k, cc, "expiration_month", 2, 1, 12,
                             N_("must be two digits, \"01\" to \"12\""));
    cyear = req_card_digits(k, cc, "expiration_year", 4, 0, 9999, N_("must be four digits"));
    if (cyear && cmonth) {
        req_today(&today, &year, &month);
        if (cyear < year || (cyear == year && cmonth < month))
            req_err_text(k, "credit_card.expiration_year", N_("the card has expired"));
    }
    v = req_need(k, cc, base, "cvv", REQ_T_STRING);
    if (v && !req_digits(json_object_get_string(v), 3, 4))
        req_err_text(k, "credit_card.cvv", N_("must be 3 or 4 digits"));
    (void)req_need_text(k, cc, base, "cardholder_name");
    (void)req_need(k, cc, base, "set_as_default", REQ_T_BOOL); /* required in DigiCert's table */
}

static void req_rules_payment(struct req_chk *k, json_object *root)
{
    static const char *const methods[] = {"balance", "card", "profile", NULL};
    json_object *pm, *cc = NULL, *ba = NULL;
    bool card = false, has_cc, has_ba;

    pm = req_need(k, root, "", "payment_method", REQ_T_STRING);
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

void req_rules(struct req_chk *k, json_object *root, bool with_csr)
{
    json_object *v, *org;

    req_rules_certificate(k, root);
    v = req_need(k, root, "", "csa_agreed_to", REQ_T_BOOL);
    if (v && !json_object_get_boolean(v))
        req_err_text(k, "csa_agreed_to", N_("must be true"));
    v = req_need_path(k, root, k->cfg->api_provisioning_field);
    if (v && strcmp(json_object_get_string(v), k->prod->provisioning) != 0)
        req_err(k, k->cfg->api_provisioning_field, N_("must be \"%s\""), k->prod->provisioning);
    if (k->prod->organization) {
        org = req_need(k, root, "", "organization", REQ_T_OBJECT);
        v = org ? req_need(k, org, "organization", "id", REQ_T_INT) : NULL;
        if (v && json_object_get_int64(v) <= 0)
            req_err_text(k, "organization.id", N_("must be a positive integer"));
    }
    v = req_opt(root, "ship_info", REQ_T_OBJECT);
    if (v)
        req_rules_ship(k, v);
    v = req_opt(root, "order_validity", REQ_T_OBJECT);
    if (v)
        req_rules_validity(k, v);
    req_rules_payment(k, root);
    if (with_csr) {
        v = req_need_path(k, root, k->cfg->api_csr_field);
        if (v && !req_pem_csr_ok(json_object_get_string(v)))
            req_err_text(k, k->cfg->api_csr_field, N_("must be a PEM certificate request"));
    }
}
