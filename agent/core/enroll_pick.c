/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enroll_pick.c - which job an `enroll` on a token drives: continue the unfinished one, report
 * the finished one, or (after the token, policy and --replaces checks) start a new one.
 */
#include "enroll_internal.h"

#include "certcentral.h"
#include "diag.h"
#include "config.h"
#include "i18n.h"
#include "job.h"
#include "pa_err.h"
#include "person.h"
#include "policy.h"
#include "request.h"
#include "revoke.h"
#include "secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Before a job exists: can this token generate the key and sign the CSR with it? */
static int check_mechanisms(struct ectx *e, const struct tok_info *info)
{
    int r = tok_check_keygen(e->tok, e->o->key_type);

    if (r == 0)
        r = tok_check_sign(e->tok, e->o->key_type, e->o->pss);
    if (r < 0)
        return diag_fail_hint(e->d, r, tok_detail(),
                              tok_is_piv(info) ? N_("nothing was generated or ordered")
                                               : N_("nothing was generated or ordered; choose "
                                                    "another --key-type or another token"),
                              "token '%s' (serial %s)", info->label, info->serial);
    return 0;
}

/* PKIo keys belong on certified hardware: the configured token policy decides. */
static int check_policy(struct ectx *e, const struct tok_info *info)
{
    char why[400];
    int r = policy_check_token(e->env->cfg, e->env->module, info, why, sizeof(why));

    if (r < 0)
        return diag_fail(e->d, r, why, "token '%s' (serial %s): refused by the token policy",
                         info->label, info->serial);
    return 0;
}

/* An unbound request from the queue may only go to a blank token (see docs/pkio-agent.8). */
static int check_blank(struct ectx *e, const struct tok_info *info)
{
    struct tok_contents c;
    int r = tok_token_contents(e->tok, &c);

    if (r < 0)
        return diag_fail(e->d, r, tok_detail(), "reading what token '%s' holds", info->label);
    if (!c.logged_in) /* private keys would be invisible: never call such a token blank */
        return diag_fail(
            e->d, PA_E_REFUSED, N_("its private objects cannot be seen without a login"),
            "token '%s' (serial %s) is not known to be blank", info->label, info->serial);
    if (tok_contents_blank(&c))
        return 0;
    return diag_fail(
        e->d, PA_E_REFUSED, N_("it is not blank; an unbound request never goes to a token in use"),
        "token '%s' (serial %s) holds %u private, %u public and %u secret key(s) and "
        "%u certificate(s)",
        info->label, info->serial, c.private_keys, c.public_keys, c.secret_keys, c.user_certs);
}

/* ---- re-key: only of the same person ----------------------------------------------------------
 */

static void person_of_request(const struct req *req, struct person *p)
{
    memset(p, 0, sizeof(*p));
    (void)req_individual(req, &p->first_name, &p->last_name, NULL, &p->id);
    p->email = req_individual_str(req, "email");
    if (p->id < 0)
        p->id = 0;
}

/* A renewal replaces only a certificate that is due, unless --early. */
static int check_due(struct pa_diag *d, const struct enroll_opts *o,
                     const struct cc_order_info *old, long cert)
{
    char due[11];
    time_t t = time(NULL) + (time_t)o->warn_days * 86400;
    struct tm tm;

    if (!o->renew || o->early || !old->valid_till[0])
        return 0;
    gmtime_r(&t, &tm);
    strftime(due, sizeof(due), "%Y-%m-%d", &tm);
    if (strcmp(old->valid_till, due) <= 0)
        return 0;
    return diag_fail(d, PA_E_REFUSED,
                     N_("it is not due for renewal yet; add --early to renew it now anyway"),
                     "certificate %ld is valid until %s (renewal within %d days)", cert,
                     old->valid_till, o->warn_days);
}

/* Is the replaced certificate still in force? 0, or the refusal (reported). */
static int check_old_state(struct pa_diag *d, const struct cc_order_info *old, long cert)
{
    char today[11];
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(today, sizeof(today), "%Y-%m-%d", &tm);
    if (strcmp(old->status, "revoked") == 0 || strcmp(old->revoke_request_status, "approved") == 0)
        return diag_fail(d, PA_E_REFUSED, N_("it is already revoked"), "certificate %ld", cert);
    if (strcmp(old->status, "expired") == 0 ||
        (old->valid_till[0] && strcmp(old->valid_till, today) < 0))
        return diag_fail(d, PA_E_REFUSED, N_("it has expired; enroll without --replaces"),
                         "certificate %ld (valid till %s)", cert,
                         old->valid_till[0] ? old->valid_till : "?");
    if (old->st != CC_ST_ISSUED)
        return diag_fail(d, PA_E_REFUSED, N_("it is not an issued certificate"),
                         "certificate %ld (%s)", cert, old->status);
    if (strcmp(old->revoke_request_status, "pending") == 0 ||
        strcmp(old->revoke_request_status, "submitted") == 0)
        return diag_fail(d, PA_E_REFUSED, N_("a revocation request for it is already pending"),
                         "certificate %ld", cert);
    return 0;
}

/* Same product family and same individual, or the refusal naming both. */
static int check_old_holder(struct ectx *e, const struct cc_order_info *old, long cert,
                            const struct req *req)
{
    const char *product = e->env->cfg->api_product;
    struct person now, then;
    char a[300], b[300];

    if (!old->product ||
        strcmp(person_product_family(old->product), person_product_family(product)) != 0)
        return diag_fail(e->d, PA_E_REFUSED, N_("a re-key stays within one product family"),
                         "certificate %ld is a %s certificate, the request is for %s", cert,
                         old->product ? old->product : _("(unknown product)"), product);
    person_of_request(req, &now);
    then = (struct person){old->individual.id, old->individual.first_name,
                           old->individual.last_name, old->individual.email};
    person_describe(&now, a, sizeof(a));
    person_describe(&then, b, sizeof(b));
    switch (person_compare(&now, &then)) {
    case PERSON_SAME:
        return 0;
    case PERSON_DIFFERENT:
        return diag_fail(e->d, PA_E_REFUSED,
                         N_("a re-key replaces only the same person's certificate; check the "
                            "certificate id. Nothing was generated, ordered or revoked"),
                         "certificate %ld belongs to %s, the request is for %s", cert, b, a);
    case PERSON_UNKNOWN:
    default:
        return diag_fail(e->d, PA_E_REFUSED,
                         N_("CertCentral's order does not show enough to confirm it is the same "
                            "person (individual id, or names and e-mail). Nothing was generated, "
                            "ordered or revoked"),
                         "certificate %ld (%s) against the request for %s", cert, b, a);
    }
}

/*
 * --replaces: before anything is generated or ordered, the old certificate's order must name
 * the same individual, be of the same product family, and be issued and in force. Fills in the
 * order and certificate id.
 */
static int check_replaces(struct ectx *e, long *order, long *cert)
{
    struct cc_order_info old;
    struct cc_client *c = NULL;
    struct req *req = NULL;
    char err[512] = "";
    int r;

    memset(&old, 0, sizeof(old));
    if (!*order && !*cert)
        return 0;
    r = enroll_cc(e, &c);
    if (r == 0 && !*order)
        r = enroll_order_of_certificate(e, c, *cert, order);
    if (r < 0)
        return r;
    r = cc_order_info(c, *order, &old);
    if (r < 0) {
        diag_fail(e->d, r, cc_last_error(c), "order %ld of the certificate to replace", *order);
        goto out;
    }
    if (*cert && old.certificate_id != *cert) {
        r = diag_fail(e->d, PA_E_REFUSED, N_("it is not the certificate of that order"),
                      "certificate %ld (order %ld holds %ld)", *cert, *order, old.certificate_id);
        goto out;
    }
    *cert = old.certificate_id;
    r = check_old_state(e->d, &old, *cert);
    if (r == 0)
        r = check_due(e->d, e->o, &old, *cert);
    if (r == 0) {
        r = req_load_file(e->o->request, &req, err, sizeof(err));
        if (r < 0)
            diag_fail(e->d, r, err, "request %s", e->o->request);
    }
    if (r == 0)
        r = check_old_holder(e, &old, *cert, req);
out:
    req_free(req);
    cc_order_info_clear(&old);
    return r;
}

/* A rerun must not change what the job replaces: say so, never keep the old value silently. */
static int check_replaces_unchanged(struct pa_diag *d, const struct job *j,
                                    const struct enroll_opts *o)
{
    bool same_cert = o->replaces_certificate_id == j->replaces_certificate_id;
    bool same_order = o->replaces_order_id == j->replaces_order_id;
    bool given = o->replaces_certificate_id || o->replaces_order_id;
    bool had = j->replaces_certificate_id || j->replaces_order_id;

    char was[96], now[96];

    /* The job filled in the other id itself: a rerun with either original value is the same. */
    if (!(given || had) || (o->replaces_certificate_id ? same_cert : same_order))
        return 0;
    if (j->replaces_certificate_id)
        snprintf(was, sizeof(was), _("replacing certificate %ld"), j->replaces_certificate_id);
    else if (j->replaces_order_id)
        snprintf(was, sizeof(was), _("replacing order %ld"), j->replaces_order_id);
    else
        snprintf(was, sizeof(was), "%s", _("without --replaces"));
    if (given)
        snprintf(now, sizeof(now), "--replaces %ld",
                 o->replaces_certificate_id ? o->replaces_certificate_id : o->replaces_order_id);
    else
        snprintf(now, sizeof(now), "%s", _("no --replaces"));
    return diag_fail(d, PA_E_REFUSED,
                     N_("a rerun must name the same certificate to replace; cancel the job to "
                        "start over with another one"),
                     "job %s was started %s, this run says %s", j->id, was, now);
}

/* ---- choosing the job for a token --------------------------------------------------------- */

/*
 * Could a new job for this token pay for something this one already paid for (or may have)? An
 * unfinished job, or a failed one whose order exists (or may) and was not ended by CertCentral.
 */
static bool money_at_stake(const struct job *j)
{
    if (j->state == JOB_DONE || j->state == JOB_CANCELED)
        return false; /* ended for good */
    if (!job_state_is_terminal(j->state))
        return true;
    if (!j->order_id && !j->order_attempt_at)
        return false;
    return cc_map_status(j->order_status, NULL, 0) != CC_ST_FAILED;
}

/*
 * The job an `enroll` on this token continues (*cont), or the finished job for the same request
 * (*done); both NULL: start a new one. A job at stake for another request file is refused.
 */
static int pick_job(struct pa_diag *d, struct job **list, size_t n, const struct tok_info *info,
                    const char *sha, struct job **cont, struct job **done)
{
    *cont = *done = NULL;
    for (size_t i = 0; i < n; i++) {
        struct job *j = list[i];

        if (!enroll_job_on_token(j, info))
            continue;
        if (money_at_stake(j) && !*cont) {
            if (strcmp(j->request_sha256, sha) != 0)
                return diag_fail(d, PA_E_JOB, N_("it was started for another request file"),
                                 "token '%s' (serial %s) has unfinished job %s (%s); 'pkio-agent "
                                 "resume %s' or 'pkio-agent cancel %s' first",
                                 info->label, info->serial, j->id, job_state_name(j->state), j->id,
                                 j->id);
            *cont = j;
        } else if (j->state == JOB_DONE && strcmp(j->request_sha256, sha) == 0) {
            *done = j; /* the caller checks that its key is still on the token */
        }
    }
    if (*cont)
        *done = NULL;
    return 0;
}

/* Back to the state a failed job failed in (resume after the officer fixed the cause). */
int enroll_unfail(struct job *j)
{
    for (size_t i = j->nhistory; i-- > 0;) {
        enum job_state s = j->history[i].state;

        if (!job_state_is_terminal(s))
            return job_transition(j, s, "resumed after failure");
    }
    return job_transition(j, JOB_NEW, "resumed after failure");
}

/* The request's profile, which decides the key's usages (read once, when the job starts). */
static int job_profile_from(struct job *j, const char *request)
{
    struct req *req = NULL;
    char err[256];
    int r = req_load_file(request, &req, err, sizeof(err));

    if (r == 0)
        snprintf(j->profile, sizeof(j->profile), "%s",
                 req_profile_option(req) ? req_profile_option(req) : "");
    req_free(req);
    return r;
}

static int new_job(struct ectx *e, const struct tok_info *info, const char *abs, const char *sha,
                   long replaces_order, long replaces_cert)
{
    struct job *j = NULL;
    int r = job_new(&j);

    if (r < 0)
        return diag_fail(e->d, r, NULL, "new job");
    e->job = j;
    snprintf(j->token_serial, sizeof(j->token_serial), "%s", info->serial);
    snprintf(j->token_label, sizeof(j->token_label), "%s", info->label);
    snprintf(j->token_model, sizeof(j->token_model), "%s", info->model);
    snprintf(j->token_manufacturer, sizeof(j->token_manufacturer), "%s", info->manufacturer);
    snprintf(j->key_type, sizeof(j->key_type), "%s", tok_key_type_name(e->o->key_type));
    snprintf(j->request_sha256, sizeof(j->request_sha256), "%s", sha);
    j->pss = e->o->pss;
    r = job_profile_from(j, abs);
    if (r < 0)
        return diag_fail(e->d, r, NULL, "request %s", abs);
    j->replaces_certificate_id = replaces_cert;
    j->replaces_order_id = replaces_order;
    r = job_set_str(&j->product, e->env->cfg->api_product);
    if (r == 0)
        r = job_set_str(&j->request_path, abs);
    if (r == 0)
        r = job_note(j, "enrollment started for token '%s' (serial %s)", info->label, info->serial);
    if (r == 0 && replaces_cert)
        r = job_note(j, "replaces certificate %ld (order %ld) of the same person", replaces_cert,
                     replaces_order);
    /* The record does not exist yet, so nobody else can hold its lock. */
    if (r == 0)
        r = job_lock(e->state_dir, j->id, &e->lock_fd);
    if (r == 0)
        r = enroll_audit(e, "start", "ok", NULL);
    if (r == 0)
        enroll_progress(e, "%s", _("enrollment started"));
    return r;
}

/* Does the token still hold the finished job's key? A token that was wiped and initialised again
 * (same serial and label) does not: then this is a new enrollment, not a rerun. */
static bool still_there(struct ectx *e, const struct job *d)
{
    unsigned char id[TOK_ID_MAX];
    size_t id_len = 0;

    if (enroll_hex_decode(d->key_id_hex, id, sizeof(id), &id_len) < 0)
        return false;
    if (tok_find_key(e->tok, id, id_len, NULL) == 0)
        return true;
    enroll_progress(e, _("job %s finished for this request, but its key is no longer on the token"),
                    d->id);
    return false;
}

/* The finished job becomes the run's job (taken out of the list, never saved or driven): the
 * front end says "already done" from it. */
static void take_done(struct ectx *e, struct job **list, size_t n, const struct job *d)
{
    for (size_t i = 0; i < n; i++) {
        if (list[i] == d) {
            job_free(e->job);
            e->job = list[i];
            list[i] = NULL;
        }
    }
}

/* Continue the job for this token: same request, same --replaces, then under its own lock. */
static int continue_job(struct ectx *e, const struct job *cont)
{
    int r = check_replaces_unchanged(e->d, cont, e->o);

    if (r == 0)
        r = enroll_lock_and_load(e, cont->id);
    if (r == 0 && e->job->state == JOB_FAILED) {
        r = enroll_unfail(e->job);
        if (r == 0)
            r = enroll_save(e);
    }
    if (r == 0)
        enroll_progress(e, _("continuing the unfinished job for this token (%s)"),
                        job_state_name(e->job->state));
    return r;
}

/* Under the token lock: continue, find done (e->job), or start a job for this token. */
int enroll_choose_and_lock(struct ectx *e, const struct tok_info *info, const char *abs,
                           const char *sha, bool *ret_done)
{
    struct job **list = NULL, *cont = NULL, *done = NULL;
    long order = e->o->replaces_order_id, cert = e->o->replaces_certificate_id;
    size_t n = 0;
    int r = enroll_list_jobs(e, &list, &n);

    *ret_done = false;
    if (r == 0)
        r = pick_job(e->d, list, n, info, sha, &cont, &done);
    if (r == 0 && cont) {
        r = continue_job(e, cont);
    } else if (r == 0 && done && !e->o->renew && still_there(e, done)) {
        *ret_done = true;
        take_done(e, list, n, done);
    } else if (r == 0) {
        r = check_policy(e, info);
        if (r == 0)
            r = check_mechanisms(e, info);
        if (r == 0 && e->o->only_blank)
            r = check_blank(e, info);
        if (r == 0)
            r = check_replaces(e, &order, &cert);
        if (r == 0)
            r = new_job(e, info, abs, sha, order, cert);
    }
    job_list_free(list, n);
    return r;
}
