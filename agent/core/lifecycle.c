/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lifecycle.c - the pure decisions behind `expiring` and `certs`: days to a date, whether a
 * certificate is due for renewal, and which job of ours explains a key or certificate on a token.
 */
#include "lifecycle.h"

#include "certs.h"
#include "job.h"
#include "pa_err.h"
#include "queue.h"
#include "tok.h"

#include <openssl/bn.h>
#include <openssl/err.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DAY 86400

/* floor(t / DAY), also for times before 1970. */
static long day_of(time_t t)
{
    long long q = (long long)t / DAY;

    if ((long long)t % DAY < 0)
        q--;
    return (long)q;
}

long lc_days_until(time_t t, time_t now)
{
    return day_of(t) - day_of(now);
}

int lc_parse_date_end(const char *s, time_t *ret)
{
    struct tm tm = {0}, back;
    time_t t;

    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return -1;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
            return -1;
    tm.tm_year = atoi(s) - 1900;
    tm.tm_mon = atoi(s + 5) - 1;
    tm.tm_mday = atoi(s + 8);
    tm.tm_hour = 23;
    tm.tm_min = 59;
    tm.tm_sec = 59;
    t = timegm(&tm);
    /* timegm normalises 2027-02-30 to March: refuse what does not come back as written. */
    if (t == (time_t)-1 || !gmtime_r(&t, &back) || back.tm_mday != atoi(s + 8) ||
        back.tm_mon != atoi(s + 5) - 1 || back.tm_year != atoi(s) - 1900)
        return -1;
    *ret = t;
    return 0;
}

int lc_asn1_time(const ASN1_TIME *t, time_t *ret)
{
    struct tm tm = {0};
    time_t v;

    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) {
        ERR_clear_error();
        return -1;
    }
    v = timegm(&tm);
    if (v == (time_t)-1)
        return -1;
    *ret = v;
    return 0;
}

void lc_format_time(time_t t, char *out, size_t outlen)
{
    struct tm tm;

    if (!gmtime_r(&t, &tm) || strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, outlen, "?");
}

const char *lc_source_name(enum lc_source s)
{
    return s == LC_SRC_CERTCENTRAL   ? "certcentral"
           : s == LC_SRC_CERTIFICATE ? "certificate"
                                     : "none";
}

static bool word_is(const char *s, const char *word)
{
    return s && strcmp(s, word) == 0;
}

int lc_expiry_decide(const struct lc_expiry_in *in, long within_days, time_t now,
                     struct lc_expiry *ret)
{
    struct lc_expiry e = {.source = LC_SRC_NONE};
    time_t till;

    if (in->valid_till && *in->valid_till && lc_parse_date_end(in->valid_till, &till) == 0) {
        e.source = LC_SRC_CERTCENTRAL;
        e.expires = till;
    } else if (in->not_after) {
        e.source = LC_SRC_CERTIFICATE;
        e.expires = in->not_after;
    } else {
        return -1;
    }
    e.days_left = lc_days_until(e.expires, now);
    e.expired = now > e.expires || word_is(in->cc_status, "expired");
    e.revoked = in->revoked_here || word_is(in->cc_status, "revoked");
    e.listed = e.expired || e.days_left <= within_days;
    e.due = e.listed && !e.revoked && !in->replaced;
    *ret = e;
    return 0;
}

/* ---- jobs ------------------------------------------------------------------------------------ */

int lc_jobs_index(struct job *const *v, size_t n, struct lc_jobs *ret)
{
    STACK_OF(X509) **certs = calloc(n ? n : 1, sizeof(*certs));

    if (!certs)
        return PA_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *pem = v[i]->cert_pem;

        /* An unreadable bundle explains nothing; the job is still matched by key and serial. */
        if (pem && *pem && certs_parse_pem(pem, strlen(pem), &certs[i]) < 0)
            certs[i] = NULL;
    }
    ERR_clear_error();
    ret->v = v;
    ret->n = n;
    ret->certs = certs;
    return 0;
}

void lc_jobs_clear(struct lc_jobs *j)
{
    if (!j || !j->certs)
        return;
    for (size_t i = 0; i < j->n; i++)
        sk_X509_pop_free(j->certs[i], X509_free);
    free(j->certs);
    j->certs = NULL;
}

/* Is job j bound to this token? The one token-binding predicate: serial and label. */
static bool on_token(const struct job *j, const struct tok_info *tok)
{
    return queue_token_bound(j->token_serial, j->token_label, NULL, NULL, tok);
}

bool lc_id_is_hex(const unsigned char *id, size_t id_len, const char *hex)
{
    char two[3];

    if (!id_len || !hex || strlen(hex) != 2 * id_len)
        return false;
    for (size_t i = 0; i < id_len; i++) {
        snprintf(two, sizeof(two), "%02x", id[i]);
        if (strncasecmp(two, hex + 2 * i, 2) != 0)
            return false;
    }
    return true;
}

bool lc_serial_eq(const char *a, const char *b)
{
    if (!a || !b || !*a || !*b)
        return false;
    while (a[0] == '0' && a[1])
        a++;
    while (b[0] == '0' && b[1])
        b++;
    return strcasecmp(a, b) == 0;
}

void lc_cert_serial(X509 *cert, char *out, size_t outlen)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *h = bn ? BN_bn2hex(bn) : NULL;

    snprintf(out, outlen, "%s", h ? h : "");
    OPENSSL_free(h);
    BN_free(bn);
}

X509 *lc_job_leaf(const struct lc_jobs *jobs, size_t i)
{
    STACK_OF(X509) *sk = jobs->certs[i];
    char serial[80];

    for (int k = 0; sk && k < sk_X509_num(sk); k++) {
        lc_cert_serial(sk_X509_value(sk, k), serial, sizeof(serial));
        if (lc_serial_eq(serial, jobs->v[i]->cert_serial))
            return sk_X509_value(sk, k);
    }
    return sk && sk_X509_num(sk) > 0 ? sk_X509_value(sk, 0) : NULL;
}

const char *lc_role_name(enum lc_role r)
{
    static const char *const names[] = {"foreign", "key", "leaf", "chain", "under_key"};

    return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "foreign";
}

struct lc_match lc_match_key(const struct lc_jobs *jobs, const struct tok_info *tok,
                             const unsigned char *id, size_t id_len)
{
    for (size_t i = jobs->n; i-- > 0;) {
        const struct job *j = jobs->v[i];

        if (on_token(j, tok) && lc_id_is_hex(id, id_len, j->key_id_hex))
            return (struct lc_match){LC_KEY, i};
    }
    return (struct lc_match){LC_FOREIGN, 0};
}

/* Is cert one of job i's certificates, byte for byte? */
static bool in_job_certs(const struct lc_jobs *jobs, size_t i, X509 *cert)
{
    STACK_OF(X509) *sk = jobs->certs[i];

    for (int k = 0; sk && k < sk_X509_num(sk); k++)
        if (X509_cmp(sk_X509_value(sk, k), cert) == 0)
            return true;
    return false;
}

/* Serials are unique per issuer: the job's leaf, when it can be read, names the issuer. */
static bool same_issuer(const struct lc_jobs *jobs, size_t i, X509 *cert)
{
    X509 *leaf = lc_job_leaf(jobs, i);

    return !leaf || X509_NAME_cmp(X509_get_issuer_name(leaf), X509_get_issuer_name(cert)) == 0;
}

struct lc_match lc_match_cert(const struct lc_jobs *jobs, const struct tok_info *tok, X509 *cert,
                              const unsigned char *id, size_t id_len)
{
    char serial[80] = "";
    size_t i;

    if (cert)
        lc_cert_serial(cert, serial, sizeof(serial));
    for (i = jobs->n; i-- > 0;)
        if (on_token(jobs->v[i], tok) && lc_serial_eq(serial, jobs->v[i]->cert_serial) &&
            same_issuer(jobs, i, cert))
            return (struct lc_match){LC_LEAF, i};
    for (i = jobs->n; cert && i-- > 0;)
        if (on_token(jobs->v[i], tok) && in_job_certs(jobs, i, cert))
            return (struct lc_match){LC_CHAIN, i};
    for (i = jobs->n; i-- > 0;)
        if (on_token(jobs->v[i], tok) && lc_id_is_hex(id, id_len, jobs->v[i]->key_id_hex))
            return (struct lc_match){LC_UNDER_KEY, i};
    return (struct lc_match){LC_FOREIGN, 0};
}

/* The installed or done job that replaced job i's certificate (by certificate or order id). */
static size_t replaced_by(const struct lc_jobs *jobs, size_t i)
{
    const struct job *old = jobs->v[i];

    for (size_t k = jobs->n; k-- > 0;) {
        const struct job *j = jobs->v[k];

        if (k == i || (j->state != JOB_INSTALLED && j->state != JOB_DONE))
            continue;
        if ((old->certificate_id && j->replaces_certificate_id == old->certificate_id) ||
            (old->order_id && j->replaces_order_id == old->order_id))
            return k;
    }
    return (size_t)-1;
}

/* The job's own revocation (`pkio-agent revoke`), as its record keeps it. */
static const char *own_revocation(const struct job *j)
{
    return j->cert_revoke_status;
}

const char *lc_revocation(const struct lc_jobs *jobs, size_t i, size_t *ret_replaced_by)
{
    size_t by = replaced_by(jobs, i);
    const char *own = own_revocation(jobs->v[i]);

    if (ret_replaced_by)
        *ret_replaced_by = by;
    if (own && *own)
        return own;
    if (by == (size_t)-1)
        return "";
    if (jobs->v[by]->old_revoked)
        return "revoked";
    return jobs->v[by]->revoke_status;
}

/* Overlong three- and four-byte forms, surrogates, code points beyond U+10FFFF. */
static bool utf8_forbidden(const unsigned char *p)
{
    return (p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) ||
           (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90);
}

/* Length of the valid UTF-8 sequence of two or more bytes at p (n bytes left), else 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t len = p[0] > 0xf4 ? 0 : p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;

    if (!len || len > n)
        return 0;
    for (size_t k = 1; k < len; k++)
        if ((p[k] & 0xc0) != 0x80)
            return 0;
    return utf8_forbidden(p) ? 0 : len;
}

void lc_printable(const char *s, size_t len, char *out, size_t outlen)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0, i = 0;

    if (!outlen)
        return;
    while (i < len && o + 1 < outlen) {
        size_t n = p[i] < 0x80 ? 1 : utf8_len(p + i, len - i);

        if (n == 1 && (p[i] < 0x20 || p[i] == 0x7f))
            n = 0;
        if (n == 0) {
            out[o++] = '?';
            i++;
            continue;
        }
        if (o + n >= outlen)
            break;
        memcpy(out + o, p + i, n);
        o += n;
        i += n;
    }
    out[o] = '\0';
}
