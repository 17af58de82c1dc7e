/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enroll_cert.c - after the order: polling CertCentral, downloading and verifying the issued
 * certificate, and writing it with its chain to the token. A failure here keeps the order
 * (hold_job): the job is never a dead end that a second order would bypass.
 */
#include "enroll_internal.h"

#include "certcentral.h"
#include "certs.h"
#include "diag.h"
#include "config.h"
#include "i18n.h"
#include "job.h"
#include "pa_err.h"
#include "stop.h"
#include "writeback.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * A failure after the order exists: never a dead end that a new `enroll` would bypass with a
 * second order. The job keeps its state (and its order and key); the error is recorded, and
 * the same `enroll` (or `resume`) continues with the same order once the cause is fixed.
 */
static int hold_job(struct ectx *e, int err, const char *event, const char *msg)
{
    struct pa_diag aside, *keep;

    (void)job_set_error(e->job, msg);
    (void)job_note(e->job, "stopped: %s", msg);
    keep = enroll_aside(e, &aside);
    (void)enroll_audit(e, event, "failed", msg);
    enroll_aside_end(e, keep);
    return diag_fail(e->d, err, msg,
                     "job %s (order %ld kept; after fixing the cause, run the same enroll again or "
                     "'pkio-agent resume %s': nothing is ordered twice)",
                     e->job->id, e->job->order_id, e->job->id);
}

static int download_and_verify(struct ectx *e)
{
    STACK_OF(X509) *all = NULL, *chain = NULL, *path = NULL;
    struct cc_client *c = NULL;
    EVP_PKEY *pub = NULL;
    X509 *leaf = NULL;
    char err[512] = "", *pem = NULL;
    size_t len = 0;
    int r;

    if (!e->env->cfg->trust_anchors)
        return diag_fail(e->d, PA_E_CONFIG,
                         N_("set trust.anchors to the PEM file of the PKIoverheid roots"),
                         "configuration");
    r = enroll_cc(e, &c);
    if (r < 0)
        return r;
    r = cc_download(c, e->job->certificate_id, "pem_noroot", &pem, &len);
    if (r < 0)
        return diag_fail(e->d, r, cc_last_error(c), "downloading certificate %ld",
                         e->job->certificate_id);
    r = certs_parse_pem(pem, len, &all);
    if (r == 0)
        r = enroll_job_pubkey(e, &pub);
    if (r == 0)
        r = certs_pick_leaf(all, pub, &leaf, &chain);
    if (r < 0) {
        r = hold_job(e, PA_E_CERT, "issued",
                     N_("the issued certificate does not carry the token key"));
        goto out;
    }
    r = certs_verify_path(leaf, chain, e->env->cfg->trust_anchors, &path, err, sizeof(err));
    if (r == 0)
        r = certs_check_usage(leaf, e->job->profile, err, sizeof(err));
    if (r < 0) {
        r = hold_job(e, r, "issued", err);
        goto out;
    }
    {
        const ASN1_INTEGER *sn = X509_get0_serialNumber(leaf);
        BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
        char *h = bn ? BN_bn2hex(bn) : NULL;

        snprintf(e->job->cert_serial, sizeof(e->job->cert_serial), "%s", h ? h : "");
        OPENSSL_free(h);
        BN_free(bn);
    }
    /* Only the leaf and the verified path are kept (and later written to the token). */
    free(pem);
    pem = certs_to_pem(leaf, path);
    r = pem ? job_set_str(&e->job->cert_pem, pem) : PA_E_NOMEM;
    if (r == 0)
        r = job_transition(e->job, JOB_ISSUED,
                           "certificate %ld (serial %s) downloaded and verified",
                           e->job->certificate_id, e->job->cert_serial);
    if (r == 0)
        r = enroll_audit(e, "issued", "ok", NULL);
    enroll_progress(e, "%s", _("certificate issued, chain verified"));
out:
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    sk_X509_pop_free(path, X509_free);
    sk_X509_pop_free(all, X509_free);
    EVP_PKEY_free(pub);
    free(pem);
    return r;
}

/* What CertCentral says about the order, acted on (info is cleared): 1 = still waiting, else
 * the step's result. */
static int poll_outcome(struct ectx *e, struct cc_order_info *info)
{
    int r;

    if (strcmp(info->status, e->job->order_status) != 0) {
        snprintf(e->job->order_status, sizeof(e->job->order_status), "%s", info->status);
        (void)job_note(e->job, "CertCentral: %s (%s)", info->status, info->reason);
        enroll_progress(e, _("order %ld: %s"), e->job->order_id,
                        info->reason[0] ? _(info->reason) : info->status);
    }
    if (info->certificate_id)
        e->job->certificate_id = info->certificate_id;
    switch (info->st) {
    case CC_ST_ISSUED:
        cc_order_info_clear(info);
        if (!e->job->certificate_id)
            return diag_fail(e->d, PA_E_CA_PROTOCOL, N_("issued without a certificate id"),
                             "order %ld", e->job->order_id);
        return download_and_verify(e);
    case CC_ST_FAILED: {
        char msg[256], shown[256];

        snprintf(msg, sizeof(msg), "order %ld ended: %s", e->job->order_id, info->reason);
        snprintf(shown, sizeof(shown), _("order %ld ended: %s"), e->job->order_id, info->reason);
        cc_order_info_clear(info);
        return enroll_fail_job(e, PA_E_CA_REJECTED, "order", msg, shown);
    }
    case CC_ST_UNKNOWN:
        r = diag_fail(e->d, PA_E_CA_PROTOCOL, info->reason, "order %ld of job %s", e->job->order_id,
                      e->job->id);
        cc_order_info_clear(info);
        (void)enroll_save(e);
        return r;
    case CC_ST_WAITING:
    default:
        break;
    }
    cc_order_info_clear(info);
    return 1;
}

/* Waiting: status-aware backoff, recorded so a restart does not poll in a burst. 1 = sleep and
 * poll again, else the step's result. */
static int poll_backoff(struct ectx *e)
{
    const struct cfg *cfg = e->env->cfg;
    int r;

    e->job->next_poll = time(NULL) + (time_t)(e->job->poll_interval_s + 0.999);
    if (e->job->poll_interval_s < cfg->poll_initial_s)
        e->job->poll_interval_s = cfg->poll_initial_s;
    e->job->poll_interval_s *= 2;
    if (e->job->poll_interval_s > cfg->poll_max_s)
        e->job->poll_interval_s = cfg->poll_max_s;
    r = enroll_save(e);
    if (r < 0)
        return r;
    if (e->o->no_wait)
        return PA_E_PENDING;
    if (difftime(time(NULL), e->job->order_attempt_at) > cfg->poll_timeout_s)
        return diag_fail(e->d, PA_E_PENDING, e->job->order_status,
                         "order %ld of job %s is still waiting; 'pkio-agent resume %s' "
                         "continues later",
                         e->job->order_id, e->job->id, e->job->id);
    return 1;
}

int enroll_step_poll(struct ectx *e)
{
    struct cc_client *c = NULL;
    int r = enroll_cc(e, &c);

    if (r < 0)
        return r;
    for (bool waited = false;; waited = true) {
        struct cc_order_info info;
        time_t now = time(NULL);

        if (stop_requested())
            return PA_E_PENDING;
        if (!waited && e->job->next_poll > now) {
            if (e->o->no_wait)
                return PA_E_PENDING;
            if (!stop_sleep(difftime(e->job->next_poll, now)))
                return PA_E_PENDING; /* stopped while waiting: nothing more is asked */
        }
        memset(&info, 0, sizeof(info));
        r = cc_order_info(c, e->job->order_id, &info);
        if (r < 0) {
            diag_fail(e->d, r, cc_last_error(c), "order %ld of job %s", e->job->order_id,
                      e->job->id);
            cc_order_info_clear(&info);
            return r;
        }
        r = poll_outcome(e, &info);
        if (r == 1)
            r = poll_backoff(e);
        if (r != 1)
            return r;
        /* Sleep the (possibly fractional) interval before doubling; next_poll is for restarts.
         * A stop ends the wait and the run: the job is saved, resume continues it. */
        if (!stop_sleep(e->job->poll_interval_s / 2))
            return PA_E_PENDING;
    }
}

int enroll_step_install(struct ectx *e)
{
    STACK_OF(X509) *all = NULL, *chain = NULL;
    unsigned char id[TOK_ID_MAX];
    struct wb_result res;
    EVP_PKEY *pub = NULL;
    X509 *leaf = NULL;
    char err[512] = "";
    size_t id_len = 0;
    int r;

    r = enroll_token_key(e, id, &id_len);
    if (r < 0)
        return r;
    r = certs_parse_pem(e->job->cert_pem, strlen(e->job->cert_pem), &all);
    if (r == 0)
        r = enroll_job_pubkey(e, &pub);
    if (r == 0)
        r = certs_pick_leaf(all, pub, &leaf, &chain);
    if (r < 0) {
        diag_fail(e->d, r, NULL, "certificate of job %s", e->job->id);
        goto out;
    }
    enroll_progress(e, "%s", _("writing the certificate and its chain to the token…"));
    r = wb_install(e->tok, id, id_len, leaf, chain, &res, err, sizeof(err));
    if (r < 0) {
        diag_fail(e->d, r, err, "writing the certificate of job %s to token '%s'", e->job->id,
                  e->job->token_label);
        goto out;
    }
    enroll_crash_point("after-install");
    r = job_transition(e->job, JOB_INSTALLED,
                       "certificate on the token (%s), %u CA certificate(s) written, %u present, "
                       "%u left off%s%s%s",
                       res.leaf_written ? "written" : "already there", res.ca_written,
                       res.ca_present, res.ca_skipped,
                       res.ca_skipped ? " (the token refused: " : "",
                       res.ca_skipped ? res.skipped : "", res.ca_skipped ? ")" : "");
    if (r == 0 && res.ca_skipped)
        enroll_progress(e,
                        _("%u CA certificate(s) did not fit on the token and were left off (%s)"),
                        res.ca_skipped, res.skipped);
    if (r == 0)
        r = enroll_audit(e, "installed", "ok", NULL);
    enroll_progress(e, "%s", _("certificate written to the token and read back"));
out:
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    sk_X509_pop_free(all, X509_free);
    EVP_PKEY_free(pub);
    return r;
}
