/* SPDX-License-Identifier: Apache-2.0 */
/*
 * watch_expiry.c - a certificate about to expire (#11): on insertion, a token whose certificate
 * (the leaf of its last finished job's cert_pem) expires within 60 days gets one journal line
 * and a line on the kiosk.
 */
#include "watch.h"

#include "i18n.h"
#include "job.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define EXPIRY_WARN_DAYS 60 /* a certificate expiring this soon is announced on insertion */

/* The leaf of a job's certificates (its cert_serial, else the first) and its notAfter. */
static int leaf_not_after(const struct job *j, time_t *ret)
{
    BIO *b = BIO_new_mem_buf(j->cert_pem, -1);
    X509 *x, *leaf = NULL;
    struct tm tm;
    int r = -1;

    while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
        char *hex = bn ? BN_bn2hex(bn) : NULL;
        bool match = hex && j->cert_serial[0] && strcasecmp(hex, j->cert_serial) == 0;

        OPENSSL_free(hex);
        BN_free(bn);
        if (!leaf || match) {
            X509_free(leaf);
            leaf = x;
        } else {
            X509_free(x);
        }
        if (match)
            break;
    }
    if (leaf && ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &tm) == 1) {
        *ret = timegm(&tm);
        r = 0;
    }
    X509_free(leaf);
    BIO_free(b);
    return r;
}

/* The job whose certificate the token carries now: its newest finished job, unless replaced. */
static const struct job *current_cert_job(struct job *const *list, size_t n, const struct wtoken *t)
{
    bool unfinished = false;
    const struct job *j = watch_job_pick(list, n, t, &unfinished);

    if (!j || unfinished || !j->cert_pem || j->state != JOB_DONE ||
        strcmp(j->cert_revoke_status, "revoked") == 0)
        return NULL;
    for (size_t i = 0; i < n; i++) /* renewed onto another token: that one counts */
        if (list[i]->replaces_certificate_id &&
            list[i]->replaces_certificate_id == j->certificate_id &&
            (list[i]->state == JOB_DONE || list[i]->state == JOB_INSTALLED))
            return NULL;
    return j;
}

/* On insertion: a certificate of ours on this token that expires within 60 days is announced. */
void watch_expiry_check(struct watch *w, struct wtoken *t)
{
    size_t n = 0;
    struct job **list = watch_jobs(w, &n);
    const struct job *j = current_cert_job(list, n, t);
    time_t end = 0, now = time(NULL);

    t->expiry[0] = '\0';
    if (j && leaf_not_after(j, &end) == 0 && end - now <= (time_t)EXPIRY_WARN_DAYS * 86400) {
        char date[32], iso[32];
        struct tm tm;

        gmtime_r(&end, &tm);
        /* TRANSLATORS: a date as strftime(3) writes it, on the kiosk (Dutch: %d-%m-%Y). */
        strftime(date, sizeof(date), _("%Y-%m-%d"), &tm);
        strftime(iso, sizeof(iso), "%Y-%m-%d", &tm);
        if (end > now)
            snprintf(t->expiry, sizeof(t->expiry),
                     _("Certificate expires on %s - ask an officer to renew it"), date);
        else
            snprintf(t->expiry, sizeof(t->expiry),
                     _("Certificate expired on %s - ask an officer to renew it"), date);
        fprintf(stderr,
                "pkio-agent: watch: token '%s' (serial %s): the certificate of job %s %s on %s "
                "(%lld days): ask an officer to renew it\n",
                t->label_safe, t->serial_safe, j->id, end > now ? "expires" : "expired", iso,
                (long long)((end - now) / 86400));
    }
    job_list_free(list, n);
}
