/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enroll.c - the enrollment state machine (see enroll.h and docs/ARCHITECTURE.md).
 *
 * One function per step; each loads what it needs, acts, records the result in the job with a
 * transition, saves the record atomically and appends an audit line. The one step that cannot be
 * repeated blindly is placing the order: the record says ORDERING (with the time of the attempt)
 * before the POST leaves, and a resumed ORDERING job looks the order up at CertCentral before it
 * would ever order again.
 *
 * This file: the run's context, the plumbing the steps share, the driver loop, the locks and the
 * entry points enroll, resume and cancel. The steps live in enroll_*.c (see enroll_internal.h).
 */
#include "enroll.h"

#include "enroll_internal.h"

#include "audit.h"
#include "certcentral.h"
#include "certs.h"
#include "diag.h"
#include "config.h"
#include "csr.h"
#include "fsutil.h"
#include "i18n.h"
#include "job.h"
#include "pa_err.h"
#include "request.h"
#include "revoke.h"
#include "secret.h"
#include "stop.h"

#include <openssl/sha.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TOKEN_LOCK_WAIT_S 5.0 /* a second process for one token waits this long, then "busy" */

void enroll_handle_stop_signals(void)
{
    stop_handle_signals();
}

void enroll_crash_point(const char *name)
{
    const char *at = getenv("PKIO_TEST_CRASH_AT");

    if (at && strcmp(at, name) == 0)
        (void)raise(SIGKILL);
}

void enroll_progress(const struct ectx *e, const char *fmt, ...)
{
    const struct enroll_ui *ui = e->env->ui;
    char line[1024];
    va_list ap;

    if (!ui || !ui->progress)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    ui->progress(ui->arg, e->job ? e->job->id : "", line);
}

void enroll_warn(const struct ectx *e, const char *fmt, ...)
{
    const struct enroll_ui *ui = e->env->ui;
    char line[1024];
    size_t n;
    va_list ap;

    if (!ui || !ui->warn)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    n = strlen(line);
    if (n && line[n - 1] == '\n')
        line[n - 1] = '\0';
    ui->warn(ui->arg, line);
}

void enroll_hex_encode(char *out, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", p[i]);
    out[2 * n] = '\0';
}

int enroll_hex_decode(const char *s, unsigned char *out, size_t max, size_t *ret_len)
{
    size_t n = strlen(s);

    if (n == 0 || n % 2 || n / 2 > max)
        return PA_E_JOB;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;

        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return PA_E_JOB;
        out[i] = (unsigned char)v;
    }
    *ret_len = n / 2;
    return 0;
}

void enroll_sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];

    SHA256(p, n, md);
    enroll_hex_encode(out, md, sizeof(md));
}

struct pa_diag *enroll_aside(struct ectx *e, struct pa_diag *scratch)
{
    struct pa_diag *keep = e->d;

    diag_clear(scratch);
    e->d = scratch;
    return keep;
}

void enroll_aside_end(struct ectx *e, struct pa_diag *keep)
{
    char line[sizeof(e->d->context) + sizeof(e->d->detail) + sizeof(e->d->hint) + 32];

    if (e->d->error && e->d->context[0]) {
        diag_format(e->d, line, sizeof(line));
        enroll_warn(e, "%s", line);
    }
    e->d = keep;
}

int enroll_save(struct ectx *e)
{
    int r = job_save(e->state_dir, e->job);

    if (r < 0)
        return diag_fail(e->d, r, strerror(errno), "saving job %s in %s", e->job->id, e->state_dir);
    return 0;
}

/*
 * Save the job with the event as an intent, in one atomic write with the state it records, then
 * append it to the audit log and keep its (seq, hash) in the record (audit_commit_pending saves
 * again). Replaces enroll_save() before an event: a kill anywhere in between loses no event, and
 * the next lock_and_load appends what is pending (never twice).
 */
int enroll_audit(struct ectx *e, const char *event, const char *outcome, const char *detail)
{
    struct audit_event ev = {
        .event = event,
        .outcome = outcome,
        .job_id = e->job->id,
        .token_serial = e->job->token_serial,
        .token_label = e->job->token_label,
        .key_id = e->job->key_id_hex[0] ? e->job->key_id_hex : NULL,
        .custody = e->job->custody_ok ? e->job->custody : NULL,
        .csr_sha256 = e->job->csr_sha256[0] ? e->job->csr_sha256 : NULL,
        .order_id = e->job->order_id,
        .certificate_id = e->job->certificate_id,
        .cert_serial = e->job->cert_serial[0] ? e->job->cert_serial : NULL,
        .detail = detail,
    };
    int r = audit_job_intent(e->job, &ev);
    int s = enroll_save(e); /* the state and the event in one write: a kill now loses neither */

    if (r < 0)
        return diag_fail(e->d, r, NULL, "recording audit event %s of job %s", event, e->job->id);
    if (s < 0)
        return s;
    r = audit_commit_pending(e->state_dir, e->job);
    if (r < 0)
        return diag_fail(e->d, r, strerror(errno), "appending to the audit log in %s",
                         e->state_dir);
    return 0;
}

/* Record a failure in the job (terminal) and report it: msg in English for the records, shown
 * (NULL: msg, translated when it is a message of the catalog) for the officer. */
int enroll_fail_job(struct ectx *e, int err, const char *event, const char *msg, const char *shown)
{
    struct pa_diag aside, *keep;

    (void)job_set_error(e->job, msg);
    (void)job_transition(e->job, JOB_FAILED, "%s", msg);
    keep = enroll_aside(e, &aside);
    (void)enroll_audit(e, event, "failed", msg);
    enroll_aside_end(e, keep);
    return diag_fail(e->d, err, shown ? shown : msg, "job %s", e->job->id);
}

int enroll_cc(struct ectx *e, struct cc_client **ret)
{
    int r = 0;

    if (!e->cc)
        r = enroll_cc_client(e->env->cfg, e->state_dir, &e->cc, e->d);
    *ret = e->cc;
    return r;
}

/* Drive the job until it is done, waits (PA_E_PENDING) or fails. */
static int drive(struct ectx *e)
{
    int r = 0;

    e->driven = true;
    while (r == 0) {
        if (stop_requested() && !job_state_is_terminal(e->job->state)) {
            (void)job_note(e->job, "stopped on request; resume continues here");
            (void)enroll_save(e);
            return PA_E_PENDING; /* the record says where to go on */
        }
        switch (e->job->state) {
        case JOB_NEW:
            r = enroll_step_keygen(e);
            break;
        case JOB_KEY_READY:
            r = enroll_step_csr(e);
            break;
        case JOB_CSR_READY:
            r = enroll_step_order(e);
            break;
        case JOB_ORDERING:
            r = enroll_step_recover(e);
            break;
        case JOB_ORDERED:
            r = enroll_step_poll(e);
            break;
        case JOB_ISSUED:
            r = enroll_step_install(e);
            break;
        case JOB_INSTALLED:
            r = enroll_step_finish(e);
            break;
        case JOB_DONE:
            return 0;
        case JOB_FAILED:
            return diag_fail(e->d, PA_E_JOB, e->job->last_error, "job %s failed", e->job->id);
        case JOB_CANCELED:
            return diag_fail(e->d, PA_E_JOB, N_("it was canceled"), "job %s", e->job->id);
        case JOB_STATE__MAX:
        default:
            return diag_fail(e->d, PA_E_INTERNAL, NULL, "job %s: bad state", e->job->id);
        }
    }
    return r;
}

static int sha256_file(const char *path, char out[65])
{
    char *buf = NULL;
    size_t len = 0;
    int r = fs_read_file(path, ENROLL_REQ_FILE_MAX, &buf, &len);

    if (r < 0)
        return r;
    enroll_sha256_hex(buf, len, out);
    secret_wipe(buf, len);
    free(buf);
    return 0;
}

void enroll_result_clear(struct enroll_result *res)
{
    if (!res)
        return;
    job_free(res->job);
    memset(res, 0, sizeof(*res));
}

/* The run ends: the job record goes to the result (when asked for), everything else is freed. */
static void ectx_clear(struct ectx *e, struct enroll_result *res)
{
    enroll_token_close(e);
    cc_client_free(e->cc);
    if (res && e->job) {
        enroll_result_clear(res);
        memcpy(res->job_id, e->job->id, sizeof(res->job_id));
        res->already_done = e->already_done;
        res->driven = e->driven;
        res->job = e->job;
        e->job = NULL;
    }
    job_free(e->job);
    job_unlock(e->lock_fd);
    job_unlock(e->token_lock_fd);
}

static int ectx_init(struct ectx *e, const struct enroll_env *env, const struct enroll_opts *o,
                     struct enroll_result *res, struct pa_diag *d)
{
    char err[512] = "";
    int r;

    memset(e, 0, sizeof(*e));
    if (res)
        memset(res, 0, sizeof(*res));
    e->env = env;
    e->d = d;
    e->o = o;
    e->lock_fd = -1;
    e->token_lock_fd = -1;
    e->state_dir = env->state_dir;
    r = job_dir_prepare(e->state_dir, err, sizeof(err));
    if (r < 0)
        return diag_fail(e->d, r, err, "state directory %s", e->state_dir);
    return 0;
}

/* ---- locks: one process per token, records read only under their lock --------------------- */

static int lock_token(struct ectx *e, const char *serial, const char *label)
{
    int r = job_token_lock(e->state_dir, serial, label, TOKEN_LOCK_WAIT_S, &e->token_lock_fd);

    if (r == PA_E_BUSY)
        return diag_fail(e->d, r,
                         N_("another pkio-agent process is working on it; try again when it has "
                            "finished"),
                         "token '%s' (serial %s)", label, serial);
    if (r < 0)
        return diag_fail(e->d, r, strerror(errno), "locking token '%s' (serial %s) in %s", label,
                         serial, e->state_dir);
    return 0;
}

/* Lock the job, then load its record under the lock: the only copy ever acted on. */
int enroll_lock_and_load(struct ectx *e, const char *id)
{
    char err[512] = "", jid[33];
    struct job *j = NULL;
    int r;

    snprintf(jid, sizeof(jid), "%s", id);
    r = job_lock(e->state_dir, jid, &e->lock_fd);
    if (r < 0)
        return diag_fail(e->d, r,
                         r == PA_E_BUSY ? N_("another pkio-agent process is working on it") : NULL,
                         "job %s", jid);
    r = job_load(e->state_dir, jid, &j, err, sizeof(err));
    if (r < 0)
        return diag_fail(e->d, r, err, "job %s", jid);
    job_free(e->job);
    e->job = j;
    /* events a kill left in the record (saved, not yet in the audit log): append them now */
    r = audit_commit_pending(e->state_dir, e->job);
    if (r < 0)
        return diag_fail(e->d, r, strerror(errno), "appending the pending audit events of job %s",
                         jid);
    return 0;
}

/* The job list, with a warning for records set aside as corrupt. */
int enroll_list_jobs(struct ectx *e, struct job ***list, size_t *n)
{
    char err[1024] = "";
    int r = job_list(e->state_dir, list, n, err, sizeof(err));

    if (r < 0)
        return diag_fail(e->d, r, err, "jobs in %s", e->state_dir);
    if (err[0])
        enroll_warn(e, _("pkio-agent: warning: %s; tell the officer in charge\n"), err);
    return 0;
}

/* Load a job by id (or prefix) to learn its token, lock that token, then lock and reload. */
static int lock_existing(struct ectx *e, const char *job_id)
{
    char err[512] = "", serial[17], label[33], id[33];
    struct job *j = NULL;
    int r = job_load(e->state_dir, job_id, &j, err, sizeof(err));

    if (r < 0)
        return diag_fail(e->d, r, err, "job %s", job_id);
    snprintf(serial, sizeof(serial), "%s", j->token_serial);
    snprintf(label, sizeof(label), "%s", j->token_label);
    snprintf(id, sizeof(id), "%s", j->id);
    job_free(j);
    r = lock_token(e, serial, label);
    if (r == 0)
        r = enroll_lock_and_load(e, id);
    return r;
}

/* ---- checks before anything is generated or ordered ----------------------------------------- */

/*
 * Everything a later step needs, checked while nothing is spent yet: the trust anchors (a wrong
 * path would only show after issuance), and, when an order is still to come, the API key and
 * CertCentral accepting it.
 */
static int preflight(struct ectx *e, bool will_order)
{
    struct cc_client *c = NULL;
    char err[512] = "";
    int r = certs_check_anchors(e->env->cfg->trust_anchors, err, sizeof(err));

    if (r < 0)
        return diag_fail(e->d, r, err,
                         "configuration (checked before anything is generated or ordered)");
    if (!will_order)
        return 0;
    r = enroll_cc(e, &c);
    if (r < 0)
        return r;
    r = cc_ping(c);
    if (r < 0)
        return diag_fail(e->d, r, cc_last_error(c),
                         "CertCentral check before anything is generated or ordered");
    return 0;
}

/* Validate the request (without the CSR) before anything touches the token or the network. */
static int precheck_request(struct ectx *e, const char *path)
{
    struct req *req = NULL;
    int r = enroll_prepare_request(e, path, &req);

    req_free(req);
    return r;
}

int enroll_start(const struct enroll_env *env, const struct enroll_opts *o,
                 struct enroll_result *res, struct pa_diag *d)
{
    struct tok_info info;
    struct ectx e;
    char sha[65], *abs = NULL;
    bool done = false;
    int r;

    r = ectx_init(&e, env, o, res, d);
    if (r < 0)
        return r;
    r = precheck_request(&e, o->request);
    if (r < 0)
        goto out;
    abs = realpath(o->request, NULL);
    if (!abs || sha256_file(abs, sha) < 0) {
        r = diag_fail(d, PA_E_REQUEST, strerror(errno), "request %s", o->request);
        goto out;
    }
    r = preflight(&e, true);
    if (r == 0)
        r = enroll_token_open(&e);
    if (r == 0)
        r = tok_token_info(e.tok, &info);
    if (r < 0)
        goto out;
    /* From before the job list is read until the job record exists and is locked, and then
     * for the whole run: two processes never start (or drive) two jobs for one token. */
    r = lock_token(&e, info.serial, info.label);
    if (r == 0)
        r = enroll_choose_and_lock(&e, &info, abs, sha, &done);
    e.already_done = done;
    if (r < 0 || done)
        goto out;
    r = drive(&e);
out:
    free(abs);
    ectx_clear(&e, res);
    return r;
}

int enroll_resume(const struct enroll_env *env, const char *job_id, const struct enroll_opts *o,
                  struct enroll_result *res, struct pa_diag *d)
{
    struct ectx e;
    bool failed;
    int r;

    r = ectx_init(&e, env, o, res, d);
    if (r < 0)
        return r;
    r = lock_existing(&e, job_id);
    if (r < 0)
        goto out;
    e.driven = e.job->state == JOB_DONE; /* nothing to drive: its state is the answer */
    if (e.driven)
        goto out;
    failed = e.job->state == JOB_FAILED;
    if (failed)
        r = enroll_unfail(e.job); /* saved only once the checks pass */
    /* a job that will still order (also one a failure sent back) checks CertCentral first */
    if (r == 0)
        r = preflight(&e, e.job->state == JOB_NEW || e.job->state == JOB_KEY_READY ||
                              e.job->state == JOB_CSR_READY);
    if (r == 0 && failed)
        r = enroll_save(&e);
    if (r == 0)
        r = drive(&e);
out:
    ectx_clear(&e, res);
    return r;
}

/* Cancel the order at CertCentral, if the job has one that can still be canceled. */
static int cancel_order(struct ectx *e)
{
    struct cc_client *c = NULL;
    int r;

    if (e->job->state == JOB_ORDERING && e->job->order_attempt_at)
        return diag_fail(e->d, PA_E_JOB,
                         N_("its order may have been placed; 'pkio-agent resume' finds it "
                            "first"),
                         "job %s", e->job->id);
    if (!e->job->order_id || cc_map_status(e->job->order_status, NULL, 0) == CC_ST_FAILED)
        return 0;
    r = enroll_cc(e, &c);
    if (r == 0)
        r = cc_cancel_order(c, e->job->order_id, "canceled by the registration officer");
    if (r < 0)
        return diag_fail(e->d, r, cc_last_error(c), "canceling order %ld", e->job->order_id);
    (void)enroll_audit(e, "cancel-order", "ok", NULL);
    return 0;
}

/* The orphan key goes too; it has no certificate and never will. */
static int cancel_key(struct ectx *e)
{
    unsigned char id[TOK_ID_MAX];
    size_t id_len = 0;
    int r;

    if (!e->job->key_id_hex[0])
        return 0;
    r = enroll_token_key(e, id, &id_len);
    if (r == 0) {
        r = tok_delete_keypair(e->tok, id, id_len);
        if (r == PA_E_TOKEN_NOT_FOUND)
            r = 0;
    }
    if (r < 0)
        return diag_fail(e->d, r, tok_detail(), "removing key %s of job %s", e->job->key_id_hex,
                         e->job->id);
    return 0;
}

/* A job whose certificate exists is revoked, not canceled. */
static int cancelable(struct ectx *e)
{
    const struct job *j = e->job;

    if (!job_state_is_cancelable(j->state))
        return diag_fail(e->d, PA_E_JOB,
                         j->state == JOB_CANCELED
                             ? N_("nothing to cancel")
                             : N_("its certificate is issued; revoke it in CertCentral instead"),
                         "job %s (%s)", j->id, job_state_name(j->state));
    return 0;
}

int enroll_cancel(const struct enroll_env *env, const char *job_id, const struct enroll_opts *o,
                  struct enroll_result *res, struct pa_diag *d)
{
    struct ectx e;
    int r;

    r = ectx_init(&e, env, o, res, d);
    if (r < 0)
        return r;
    r = lock_existing(&e, job_id);
    if (r < 0)
        goto out;
    r = cancelable(&e);
    if (r == 0)
        r = cancel_order(&e);
    if (r == 0)
        r = cancel_key(&e);
    if (r == 0) {
        r = job_transition(e.job, JOB_CANCELED, "canceled by the officer");
        if (r < 0)
            diag_fail(d, r, NULL, "job %s (%s) cannot be canceled", e.job->id,
                      job_state_name(e.job->state));
    }
    if (r == 0)
        r = enroll_audit(&e, "cancel", "ok", NULL);
out:
    ectx_clear(&e, res);
    return r;
}
