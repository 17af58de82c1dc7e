/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enroll_revoke.c - the end of a re-key: revoking the replaced certificate exactly once (read
 * before (re)sending, so a lost answer is harmless), recording it in both jobs, and the last
 * step of every job.
 */
#include "enroll_internal.h"

#include "certcentral.h"
#include "diag.h"
#include "i18n.h"
#include "job.h"
#include "pa_err.h"
#include "revoke.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Note the link in the replaced certificate's job, if it is one of ours. */
static void link_old_job(struct ectx *e, long old_cert, const char *what)
{
    struct job **list = NULL;
    size_t n = 0;
    char err[256];

    if (job_list(e->state_dir, &list, &n, err, sizeof(err)) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        if (list[i]->certificate_id == old_cert && strcmp(list[i]->id, e->job->id) != 0) {
            int fd = -1;
            struct job *fresh = NULL;

            /* Load again under its lock: never save a copy read before someone else wrote. */
            if (job_lock(e->state_dir, list[i]->id, &fd) == 0 &&
                job_load(e->state_dir, list[i]->id, &fresh, err, sizeof(err)) == 0) {
                (void)job_note(fresh, "certificate %ld %s: replaced by job %s", old_cert, what,
                               e->job->id);
                (void)job_save(e->state_dir, fresh);
            }
            job_free(fresh);
            job_unlock(fd);
        }
    }
    job_list_free(list, n);
}

/* The order of a certificate: from our own job records first, else from CertCentral's list. */
int enroll_order_of_certificate(struct ectx *e, struct cc_client *c, long cert, long *ret)
{
    struct job **list = NULL;
    size_t n = 0;
    char err[256];
    int r;

    *ret = 0;
    if (job_list(e->state_dir, &list, &n, err, sizeof(err)) == 0)
        for (size_t i = 0; i < n && !*ret; i++)
            if (list[i]->certificate_id == cert && list[i]->order_id)
                *ret = list[i]->order_id;
    job_list_free(list, n);
    if (*ret)
        return 0;
    r = cc_find_order_by_certificate(c, NULL, cert, ret);
    if (r < 0)
        return diag_fail(e->d, r, cc_last_error(c), "finding the order of certificate %ld", cert);
    return 0;
}

/*
 * What CertCentral says now about the replaced certificate: 1 when that settles the revoke
 * (revoked, a revocation request waits for approval, or, after our own attempt, an approver
 * rejected it), 0 when nothing is there yet. Reading before (re)sending is what makes a lost
 * answer harmless: "already revoked" is success, a pending request is not sent twice.
 */
static int revoke_settled(struct ectx *e, struct cc_client *c)
{
    struct cc_order_info info;
    enum revoke_state st;
    int r = cc_order_info(c, e->job->replaces_order_id, &info);

    if (r < 0) {
        cc_order_info_clear(&info);
        return diag_fail(e->d, r, cc_last_error(c), "reading order %ld of the replaced certificate",
                         e->job->replaces_order_id);
    }
    st = revoke_state_of(&info, e->job->revoke_attempt_at != 0);
    if (st != RV_NONE) {
        e->job->old_revoked = st == RV_REVOKED;
        e->job->revoke_request_id = st == RV_REVOKED ? 0 : info.revoke_request_id;
        snprintf(e->job->revoke_status, sizeof(e->job->revoke_status), "%s", revoke_state_name(st));
    }
    cc_order_info_clear(&info);
    return st != RV_NONE;
}

/* Record the settled revoke in the job, the audit log and the replaced job. */
static int revoke_record(struct ectx *e)
{
    long old = e->job->replaces_certificate_id, req = e->job->revoke_request_id;
    char what[96], shown[160];
    int r;

    /* what: English, for the records; shown: for the officer */
    if (strcmp(e->job->revoke_status, "revoked") == 0) {
        snprintf(what, sizeof(what), "revoked (superseded)");
        snprintf(shown, sizeof(shown), "%s", _("revoked (superseded)"));
    } else if (strcmp(e->job->revoke_status, "pending") == 0) {
        snprintf(what, sizeof(what), "revocation request %ld awaits approval in CertCentral", req);
        snprintf(shown, sizeof(shown), _("revocation request %ld awaits approval in CertCentral"),
                 req);
    } else {
        snprintf(what, sizeof(what), "revocation request %ld was rejected by an approver", req);
        snprintf(shown, sizeof(shown), _("revocation request %ld was rejected by an approver"),
                 req);
    }
    (void)job_note(e->job, "replaced certificate %ld: %s", old, what);
    r = enroll_audit(e, "revoke", strcmp(e->job->revoke_status, "revoked") == 0 ? "ok" : "pending",
                     what);
    if (r == 0)
        link_old_job(e, old, what);
    enroll_progress(e, _("replaced certificate %ld: %s"), old, shown);
    return r;
}

/* Find the replaced certificate's order and id (jobs started before both were recorded). */
static int revoke_target(struct ectx *e, struct cc_client *c)
{
    struct cc_order_info info;
    int r = 0;

    if (!e->job->replaces_order_id)
        r = enroll_order_of_certificate(e, c, e->job->replaces_certificate_id,
                                        &e->job->replaces_order_id);
    if (r < 0 || e->job->replaces_certificate_id)
        return r;
    r = cc_order_info(c, e->job->replaces_order_id, &info);
    e->job->replaces_certificate_id = info.certificate_id;
    cc_order_info_clear(&info);
    if (r < 0 || !e->job->replaces_certificate_id)
        return diag_fail(e->d, r < 0 ? r : PA_E_CA_PROTOCOL, cc_last_error(c),
                         "finding the certificate of replaced order %ld",
                         e->job->replaces_order_id);
    return 0;
}

/* Revoke the replaced certificate once, whatever is lost or killed on the way. */
static int revoke_old(struct ectx *e)
{
    struct cc_revoke_result res;
    struct cc_client *c = NULL;
    char comment[128];
    int r = enroll_cc(e, &c);

    if (r == 0)
        r = revoke_target(e, c);
    if (r == 0)
        r = revoke_settled(e, c); /* a previous attempt, or someone else, may have done it */
    if (r != 0)
        return r < 0 ? r : revoke_record(e);
    e->job->revoke_attempt_at = time(NULL);
    r = enroll_save(e);
    if (r < 0)
        return r;
    /* Only now, with the new certificate safely on the new token, revoke the old one. */
    enroll_crash_point("before-revoke");
    snprintf(comment, sizeof(comment), "replaced by pkio-agent job %s", e->job->id);
    r = cc_revoke_certificate(c, e->job->replaces_certificate_id, "superseded", comment, &res);
    enroll_crash_point("after-revoke");
    if (r == 0) {
        e->job->old_revoked = !res.pending;
        e->job->revoke_request_id = res.request_id;
        snprintf(e->job->revoke_status, sizeof(e->job->revoke_status), "%s",
                 res.pending ? "pending" : "revoked");
        return revoke_record(e);
    }
    {
        struct pa_diag aside, *keep;
        char why[512];
        int settled;

        snprintf(why, sizeof(why), "%s", cc_last_error(c));
        keep = enroll_aside(e, &aside);
        settled = revoke_settled(e, c); /* e.g. "already revoked", or the answer was lost */
        if (settled != 1)
            (void)enroll_audit(e, "revoke", "failed", why);
        enroll_aside_end(e, keep);
        if (settled == 1)
            return revoke_record(e);
        return diag_fail(e->d, r, why,
                         "revoking replaced certificate %ld (the new certificate is on the token; "
                         "'pkio-agent resume %s' checks CertCentral before trying again)",
                         e->job->replaces_certificate_id, e->job->id);
    }
}

int enroll_step_finish(struct ectx *e)
{
    int r = 0;

    if ((e->job->replaces_certificate_id || e->job->replaces_order_id) &&
        !e->job->revoke_status[0] && !e->job->old_revoked)
        r = revoke_old(e);
    if (r == 0)
        r = job_transition(e->job, JOB_DONE, "done");
    if (r == 0)
        r = enroll_audit(e, "done", "ok", NULL);
    return r;
}
