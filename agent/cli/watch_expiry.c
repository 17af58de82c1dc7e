/* SPDX-License-Identifier: Apache-2.0 */
/*
 * watch_expiry.c - a certificate about to expire (#11): on insertion, a token whose certificate
 * (the leaf of its last finished job's cert_pem) expires within 60 days gets one journal line
 * and a line on the kiosk.
 */
#include "watch.h"

#include "i18n.h"
#include "job.h"
#include "lifecycle.h"

#include <openssl/x509.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#define EXPIRY_WARN_DAYS 60 /* a certificate expiring this soon is announced on insertion */

/* The notAfter of job i's leaf (lc_job_leaf: its cert_serial, else the first). 0 or -1. */
static int leaf_not_after(const struct lc_jobs *jobs, size_t i, time_t *ret)
{
    X509 *leaf = lc_job_leaf(jobs, i);

    return leaf ? lc_asn1_time(X509_get0_notAfter(leaf), ret) : -1;
}

/*
 * The job whose certificate the token carries now: its newest finished job, unless revoked or
 * replaced by a later job of ours (lc_revocation: also renewed onto another token). Its index,
 * or -1 when none.
 */
static long current_cert_job(const struct lc_jobs *jobs, const struct wtoken *t)
{
    bool unfinished = false;
    const struct job *j = watch_job_pick(jobs->v, jobs->n, t, &unfinished);
    size_t i = 0, by = 0;

    if (!j || unfinished || !j->cert_pem || j->state != JOB_DONE ||
        strcmp(j->cert_revoke_status, "revoked") == 0)
        return -1;
    while (jobs->v[i] != j)
        i++;
    (void)lc_revocation(jobs, i, &by);
    return by == (size_t)-1 ? (long)i : -1;
}

/* On insertion: a certificate of ours on this token that expires within 60 days is announced. */
void watch_expiry_check(struct watch *w, struct wtoken *t)
{
    size_t n = 0;
    struct job **list = watch_jobs(w, &n);
    struct lc_jobs jobs = {0};
    long i = list && lc_jobs_index(list, n, &jobs) == 0 ? current_cert_job(&jobs, t) : -1;
    time_t end = 0, now = time(NULL);

    t->expiry[0] = '\0';
    if (i >= 0 && leaf_not_after(&jobs, (size_t)i, &end) == 0 &&
        end - now <= (time_t)EXPIRY_WARN_DAYS * 86400) {
        const struct job *j = jobs.v[i];
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
    lc_jobs_clear(&jobs);
    job_list_free(list, n);
}
