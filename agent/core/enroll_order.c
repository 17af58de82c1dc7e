/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enroll_order.c - placing the order exactly once: the order body, the before-send stamp of
 * every send, the record of a send that certainly placed nothing (the client's retry policy
 * decides whether to send again), and, for a job left in ORDERING, recovery of the order by its
 * public key within the settle window.
 */
#include "enroll_internal.h"

#include "certcentral.h"
#include "diag.h"
#include "config.h"
#include "csr.h"
#include "i18n.h"
#include "job.h"
#include "pa_err.h"
#include "person.h"
#include "queue.h"
#include "request.h"
#include "secret.h"
#include "stop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Build the order body: request + defaults + CSR, validated. Caller frees (wipes if card). */
static int order_body(struct ectx *e, char **ret_body, bool *ret_card)
{
    struct req_errors errs = {0};
    struct req *req = NULL;
    int r;

    r = enroll_load_request(e, &req);
    if (r < 0)
        return r;
    r = req_merge_defaults(req, e->env->cfg);
    if (r == 0)
        r = req_set_csr(req, e->env->cfg, e->job->csr_pem);
    if (r == 0)
        r = req_validate(req, e->env->cfg, true, &errs);
    if (r == PA_E_REQUEST) {
        char line[1024];

        req_errors_format(&errs, line, sizeof(line));
        diag_fail(e->d, r, line,
                  ngettext("request %s: %zu problem", "request %s: %zu problems", errs.n),
                  e->job->request_path, errs.n);
    } else if (r < 0) {
        diag_fail(e->d, r, NULL, "preparing the order of job %s", e->job->id);
    }
    if (r == 0) {
        *ret_card = req_has_card(req);
        *ret_body = req_to_json(req);
        if (!*ret_body)
            r = diag_fail(e->d, PA_E_NOMEM, NULL, "order body");
    }
    req_errors_clear(&errs);
    req_free(req);
    return r;
}

/* The product the job orders: recorded when it started, so a changed configuration never
 * makes recovery look in the wrong place. */
static const char *job_product(const struct ectx *e)
{
    return e->job->product ? e->job->product : e->env->cfg->api_product;
}

/*
 * cc_place_order's before-send hook: record the attempt durably at the moment the POST really
 * leaves (after any rate-budget wait). A kill from here on is recovered by looking the order up,
 * never by ordering again blindly.
 */
static int stamp_attempt(void *arg)
{
    struct ectx *e = arg;
    int r;

    e->job->order_attempt_at = time(NULL);
    if (e->job->state != JOB_ORDERING)
        r = job_transition(e->job, JOB_ORDERING, "placing the order");
    else
        r = job_note(e->job, "placing the order");
    if (r == 0)
        r = enroll_save(e);
    e->stamp_failed = r < 0;
    if (r == 0)
        enroll_crash_point("before-post");
    return r;
}

/* Sleep s seconds unless a stop is requested (the signal ends the sleep early). */
static void nap(double s)
{
    (void)stop_sleep(s);
}

/* The order is placed and saved: a queued request copy (card data) is no longer needed. */
static void forget_request(const struct ectx *e)
{
    int r = e->job->request_path ? queue_forget_request(e->state_dir, e->job->request_path) : 1;

    if (r < 0)
        enroll_warn(e,
                    _("pkio-agent: warning: job %s: request copy %s could not be wiped (%s); the "
                      "daemon tries again\n"),
                    e->job->id, e->job->request_path, _(pa_err_str(r)));
}

static int order_placed(struct ectx *e, const struct cc_order_result *res)
{
    int r;

    e->job->order_id = res->id;
    e->job->certificate_id = res->certificate_id;
    snprintf(e->job->order_status, sizeof(e->job->order_status), "%s",
             res->request_status[0] ? res->request_status : "pending");
    e->job->poll_interval_s = e->env->cfg->poll_initial_s;
    e->job->next_poll = time(NULL);
    r = job_transition(e->job, JOB_ORDERED, "order %ld placed", res->id);
    if (r == 0)
        r = enroll_audit(e, "order", "ok", NULL);
    if (r == 0)
        forget_request(e);
    enroll_progress(e, _("order %ld placed"), res->id);
    return r;
}

/*
 * cc_place_order_ex's not_sent hook: a send certainly placed nothing. Record that (ordering
 * again is safe) before the client waits for the next send; refuse the next send when the
 * officer asked not to wait or a stop is requested.
 */
static int order_not_sent(void *arg, const char *why, double retry_in_s)
{
    struct ectx *e = arg;
    struct pa_diag aside, *keep;

    e->job->order_attempt_at = 0;
    (void)job_note(e->job, "order not placed: %s", why);
    keep = enroll_aside(e, &aside);
    (void)enroll_save(e);
    enroll_aside_end(e, keep);
    if (retry_in_s < 0)
        return 0;
    if (e->o->no_wait || stop_requested())
        return PA_E_PENDING; /* no next send: the client returns this send's failure */
    enroll_progress(e, _("CertCentral busy (%s); trying again in %.0fs"), why, retry_in_s);
    return 0;
}

/* The POST failed for good (the client's retry policy is spent): was it maybe placed? */
static int order_failed(struct ectx *e, struct cc_client *c, int r)
{
    struct pa_diag aside, *keep;

    if (cc_order_maybe_placed(c)) {
        (void)job_note(e->job, "order may have been placed: %s", cc_last_error(c));
        keep = enroll_aside(e, &aside);
        (void)enroll_audit(e, "order", "failed", cc_last_error(c));
        enroll_aside_end(e, keep);
        diag_fail(e->d, r, cc_last_error(c),
                  "the order of job %s may have been placed; 'pkio-agent resume %s' looks it up "
                  "before anything else",
                  e->job->id, e->job->id);
        return r;
    }
    diag_fail(e->d, r, cc_last_error(c), "order of job %s (not placed)", e->job->id);
    (void)enroll_audit(e, "order", "failed", cc_last_error(c)); /* first failure wins */
    return r;
}

/*
 * Place the order. The client's one retry policy (CC_RP_ORDER) sends the POST again only when
 * it certainly placed nothing and the failure is for now (429, nothing reached the server);
 * stamp_attempt records every send before it leaves, order_not_sent every send that placed
 * nothing.
 */
int enroll_step_order(struct ectx *e)
{
    const struct cc_order_send send = {stamp_attempt, order_not_sent, e, 0};
    struct cc_order_result res;
    struct cc_client *c = NULL;
    char *body = NULL;
    bool card = false;
    int r = order_body(e, &body, &card);

    if (r == 0)
        r = enroll_cc(e, &c);
    if (r == 0) {
        enroll_progress(e, "%s", _("placing the order at CertCentral…"));
        r = cc_place_order_ex(c, job_product(e), body, &send, &res);
        enroll_crash_point("after-post");
        if (r == 0)
            r = order_placed(e, &res);
        else if (!e->stamp_failed) /* stamp failed: nothing was sent; enroll_save() said why */
            r = order_failed(e, c, r);
    }
    if (body && card)
        secret_wipe(body, strlen(body));
    free(body);
    return r;
}

/* Does this order carry the job's key? 1 yes, 0 no, -1 unknown: no CSR shown, or one that does
 * not decode in any armour. Matching is by public key, never by text. */
static int order_has_key(const struct cc_order_info *info, const char *spki_sha256)
{
    char got[65];

    if (!info->csr || csr_text_spki_sha256(info->csr, got) < 0)
        return -1;
    return strcmp(got, spki_sha256) == 0;
}

/* The person of the job's request, to skip orders that certainly name someone else. */
struct req_person {
    struct req *req;
    struct person p;
};

static void req_person_load(struct ectx *e, struct req_person *rp)
{
    char err[256];

    memset(rp, 0, sizeof(*rp));
    if (!e->job->request_path ||
        req_load_file(e->job->request_path, &rp->req, err, sizeof(err)) < 0)
        return;
    (void)req_individual(rp->req, &rp->p.first_name, &rp->p.last_name, NULL, &rp->p.id);
    rp->p.email = req_individual_str(rp->req, "email");
    if (rp->p.id < 0)
        rp->p.id = 0;
}

struct recover_scan {
    size_t matches, unknown;
    long found, found_cert;
};

/* Look at each order in list: ours (by key), certainly not ours, or unknown. */
static int recover_scan(struct ectx *e, struct cc_client *c, const struct cc_order_info *list,
                        size_t n, struct recover_scan *sc)
{
    struct req_person rp;
    int r = 0;

    req_person_load(e, &rp);
    memset(sc, 0, sizeof(*sc));
    for (size_t i = 0; i < n && r == 0; i++) {
        struct cc_order_info info;
        struct person them;
        int has;

        r = cc_order_info(c, list[i].id, &info);
        if (r < 0) {
            diag_fail(e->d, r, cc_last_error(c), "order %ld", list[i].id);
            break;
        }
        has = order_has_key(&info, e->job->spki_sha256);
        them = (struct person){info.individual.id, info.individual.first_name,
                               info.individual.last_name, info.individual.email};
        if (has == 1) {
            sc->matches++;
            sc->found = info.id;
            sc->found_cert = info.certificate_id;
        } else if (has < 0 && person_compare(&rp.p, &them) != PERSON_DIFFERENT) {
            sc->unknown++; /* might be ours: we cannot tell */
        }
        cc_order_info_clear(&info);
    }
    req_free(rp.req);
    return r;
}

static int recover_found(struct ectx *e, long found, long found_cert)
{
    int r;

    e->job->order_id = found;
    e->job->certificate_id = found_cert;
    e->job->poll_interval_s = e->env->cfg->poll_initial_s;
    e->job->next_poll = time(NULL);
    r = job_transition(e->job, JOB_ORDERED, "order %ld found after the interruption", found);
    if (r == 0)
        r = enroll_audit(e, "order", "recovered", NULL);
    if (r == 0)
        forget_request(e);
    enroll_progress(e, _("order %ld found; not ordering again"), found);
    return r;
}

/* One look at the product's orders since the attempt. 1 = none of ours (yet). */
static int recover_once(struct ectx *e, struct cc_client *c)
{
    struct cc_order_info *list = NULL;
    struct recover_scan sc;
    size_t n = 0;
    char since[16];
    struct tm tm;
    time_t t = e->job->order_attempt_at - 86400; /* date filters are days; be generous */
    int r;

    gmtime_r(&t, &tm);
    strftime(since, sizeof(since), "%Y-%m-%d", &tm);
    r = cc_list_orders(c, job_product(e), since, &list, &n);
    if (r < 0)
        return diag_fail(e->d, r, cc_last_error(c), "looking up the order of job %s", e->job->id);
    r = recover_scan(e, c, list, n, &sc);
    cc_order_list_free(list, n);
    if (r < 0)
        return r;
    if (sc.matches > 1)
        return diag_fail(e->d, PA_E_JOB,
                         N_("more than one order carries this job's key; cancel the extra ones in "
                            "CertCentral, then record the one to keep"),
                         "job %s", e->job->id);
    if (sc.matches == 1)
        return recover_found(e, sc.found, sc.found_cert);
    if (sc.unknown > 0)
        return diag_fail(e->d, PA_E_JOB,
                         N_("CertCentral shows no readable CSR for recent orders that may be this "
                            "job's, so pkio-agent cannot tell whether the interrupted order was "
                            "placed; it will not order again. Check CertCentral, then cancel this "
                            "job or record the order"),
                         "job %s", e->job->id);
    return 1;
}

/*
 * ORDERING after a kill or a lost answer: find the order this job placed, by its public key,
 * among the product's orders created since the attempt. Found: continue with it. None, and the
 * settle window (CertCentral may act on a request after the client gave up, and may list a new
 * order only later) has passed: the attempt placed nothing, order (once). Undecidable: stop.
 */
int enroll_step_recover(struct ectx *e)
{
    const struct cfg *cfg = e->env->cfg;
    double window = cfg->api_order_settle_s;
    struct cc_client *c = NULL;
    int r;

    if (!e->job->order_attempt_at)
        return enroll_step_order(e); /* the attempt never left the machine */
    if (window < cfg->api_timeout_s + 1.0)
        window = cfg->api_timeout_s + 1.0;
    r = enroll_cc(e, &c);
    if (r < 0)
        return r;
    enroll_progress(e, "%s", _("looking up the order placed before the interruption…"));
    for (;;) {
        double age = difftime(time(NULL), e->job->order_attempt_at);

        r = recover_once(e, c);
        if (r != 1)
            return r;
        if (age >= window)
            break;
        if (e->o->no_wait || stop_requested()) {
            (void)job_note(e->job,
                           "no order found yet; looking again until %.0fs after the "
                           "attempt before ordering",
                           window);
            (void)enroll_save(e);
            return PA_E_PENDING;
        }
        enroll_progress(
            e,
            _("no order found yet; looking again (up to %.0fs after the attempt) before "
              "deciding that it was not placed"),
            window - age);
        nap(window - age < 5.0 ? window - age + 0.5 : 5.0);
    }
    e->job->order_attempt_at = 0;
    (void)job_note(e->job, "no order carries this key %.0fs after the attempt: it was not placed",
                   window);
    r = enroll_save(e);
    if (r == 0)
        r = enroll_step_order(e);
    return r;
}
