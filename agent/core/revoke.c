/* SPDX-License-Identifier: Apache-2.0 */
#include "revoke.h"

#include "audit.h"
#include "certcentral.h"
#include "diag.h"
#include "enroll.h"
#include "i18n.h"
#include "job.h"
#include "pa_err.h"
#include "person.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum revoke_state revoke_state_of(const struct cc_order_info *info, bool attempted)
{
    const char *rs = info->revoke_request_status;

    if (strcmp(info->status, "revoked") == 0 || strcmp(rs, "approved") == 0)
        return RV_REVOKED;
    if (strcmp(rs, "pending") == 0 || strcmp(rs, "submitted") == 0)
        return RV_PENDING;
    if (strcmp(rs, "rejected") == 0 && attempted)
        return RV_REJECTED;
    return RV_NONE;
}

const char *revoke_state_name(enum revoke_state s)
{
    static const char *const names[] = {"", "revoked", "pending", "rejected"};

    return (unsigned)s < 4 ? names[s] : "";
}

bool revoke_reason_valid(const char *reason)
{
    static const char *const ok[] = {"key_compromise", "superseded", "cessation_of_operation",
                                     "affiliation_changed", "unspecified"};

    for (size_t i = 0; reason && i < sizeof(ok) / sizeof(ok[0]); i++)
        if (strcmp(reason, ok[i]) == 0)
            return true;
    return false;
}

/* The run: the target, the job (locked) if it is ours, the client. */
struct rv {
    const struct enroll_env *env;
    struct pa_diag *d;
    struct revoke_result *res;
    const struct revoke_opts *o;
    const char *state_dir;
    struct job *job; /* NULL: a certificate without a job of ours (--cert) */
    int lock_fd;
    long cert, order;
    struct cc_client *cc;
    struct cc_order_info info;
};

/* Load the job under its lock: the only copy acted on. */
static int lock_job(struct rv *v, const char *id)
{
    char err[512] = "", jid[33];
    struct job *j = NULL;
    int r = job_load(v->state_dir, id, &j, err, sizeof(err));

    if (r < 0)
        return diag_fail(v->d, r, err, "job %s", id);
    snprintf(jid, sizeof(jid), "%s", j->id);
    job_free(j);
    r = job_lock(v->state_dir, jid, &v->lock_fd);
    if (r < 0)
        return diag_fail(v->d, r, N_("another pkio-agent process is working on it"), "job %s", jid);
    r = job_load(v->state_dir, jid, &v->job, err, sizeof(err));
    if (r < 0)
        return diag_fail(v->d, r, err, "job %s", jid);
    r = audit_commit_pending(v->state_dir, v->job); /* what a kill left in the record */
    if (r < 0)
        return diag_fail(v->d, r, strerror(errno), "appending the pending audit events of job %s",
                         jid);
    if (!v->job->certificate_id)
        return diag_fail(v->d, PA_E_JOB, N_("it has no certificate (cancel it instead)"), "job %s",
                         jid);
    v->cert = v->job->certificate_id;
    v->order = v->job->order_id;
    return 0;
}

/* The newest job with a certificate matching cert (cert > 0) or token serial; ambiguity refused. */
static int find_job(struct rv *v, long cert, const char *serial, char ret_id[33])
{
    struct job **list = NULL;
    size_t n = 0, hits = 0;
    char err[1024] = "";
    long seen = 0;
    int r = job_list(v->state_dir, &list, &n, err, sizeof(err));

    if (r < 0)
        return diag_fail(v->d, r, err, "jobs in %s", v->state_dir);
    ret_id[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const struct job *j = list[i];

        if (!j->certificate_id || !j->cert_serial[0] ||
            (cert ? j->certificate_id != cert : strcmp(j->token_serial, serial) != 0))
            continue;
        if (seen != j->certificate_id)
            hits++;
        seen = j->certificate_id;
        snprintf(ret_id, 33, "%s", j->id);
    }
    job_list_free(list, n);
    if (hits > 1 && !cert)
        return diag_fail(v->d, PA_E_USAGE,
                         N_("more than one certificate was enrolled on that token serial; name one "
                            "with --job or --cert (see 'pkio-agent status')"),
                         "token serial %s", serial);
    return 0;
}

static int resolve(struct rv *v)
{
    const struct revoke_opts *o = v->o;
    char id[33] = "";
    int r = 0;

    if (o->job)
        return lock_job(v, o->job);
    r = find_job(v, o->cert, o->serial, id);
    if (r == 0 && id[0])
        return lock_job(v, id);
    if (r < 0)
        return r;
    if (!o->cert) /* by serial: only certificates this station enrolled */
        return diag_fail(v->d, PA_E_JOB, N_("no certificate of ours was enrolled on it"),
                         "token serial %s", o->serial);
    v->cert = o->cert; /* named explicitly: not ours, but the officer says so */
    return 0;
}

static int read_order(struct rv *v)
{
    int r = enroll_cc_client(v->env->cfg, v->state_dir, &v->cc, v->d);

    if (r < 0)
        return r; /* reported */
    if (!v->order)
        r = cc_find_order_by_certificate(v->cc, NULL, v->cert, &v->order);
    if (r == 0)
        r = cc_order_info(v->cc, v->order, &v->info);
    if (r < 0)
        return diag_fail(v->d, r, cc_last_error(v->cc), "certificate %ld", v->cert);
    if (v->info.certificate_id != v->cert)
        return diag_fail(v->d, PA_E_CA_PROTOCOL,
                         N_("CertCentral shows another certificate for its order"),
                         "certificate %ld (order %ld)", v->cert, v->order);
    return 0;
}

/* "Johanna de Vries <j@x.nl>, serial 1A2B, valid till 2027-12-01, order 100001" */
static void describe(const struct rv *v, char *out, size_t len)
{
    struct person p = {v->info.individual.id, v->info.individual.first_name,
                       v->info.individual.last_name, v->info.individual.email};
    const char *serial = v->job && v->job->cert_serial[0]
                             ? v->job->cert_serial
                             : (v->info.serial_number ? v->info.serial_number : "?");
    const char *till = v->info.valid_till[0] ? v->info.valid_till : "?";
    char who[300];

    person_describe(&p, who, sizeof(who));
    if (v->job)
        snprintf(out, len, _("certificate %ld of %s, serial %s, valid till %s, order %ld, job %s"),
                 v->cert, who, serial, till, v->order, v->job->id);
    else
        snprintf(out, len,
                 _("certificate %ld of %s, serial %s, valid till %s, order %ld (not enrolled by "
                   "this station)"),
                 v->cert, who, serial, till, v->order);
}

/* Ask on the terminal; anything but "yes" (or its translation; no terminal at all) is no. */
static int confirm(const struct rv *v, const char *what)
{
    /* TRANSLATORS: the word the officer types to confirm a revocation ("yes" is taken too). */
    const char *yes = _("yes");
    char line[64] = "";
    FILE *tty;

    if (v->o->yes)
        return 0;
    tty = fopen("/dev/tty", "r+");
    if (!tty)
        return diag_fail(v->d, PA_E_USAGE,
                         N_("no terminal to confirm on; add --yes to revoke unattended"), "revoke");
    fprintf(tty, _("Revoke %s\nreason %s. This cannot be undone. Type '%s' to revoke: "), what,
            v->o->reason, yes);
    fflush(tty);
    if (!fgets(line, sizeof(line), tty))
        line[0] = '\0';
    fclose(tty);
    line[strcspn(line, "\n")] = '\0';
    if (strcmp(line, "yes") != 0 && strcmp(line, yes) != 0)
        return diag_fail(v->d, PA_E_REFUSED, N_("not confirmed; nothing was revoked"), "revoke");
    return 0;
}

static int audit_it(struct rv *v, const char *outcome, const char *detail)
{
    struct audit_event ev = {
        .event = "revoke-certificate",
        .outcome = outcome,
        .job_id = v->job ? v->job->id : NULL,
        .token_serial = v->job ? v->job->token_serial : NULL,
        .token_label = v->job ? v->job->token_label : NULL,
        .order_id = v->order,
        .certificate_id = v->cert,
        .cert_serial = v->job ? v->job->cert_serial : NULL,
        .detail = detail,
    };

    int r;

    if (!v->job) /* no record of ours to carry the intent: straight to the log */
        return audit_append(v->state_dir, &ev);
    /* The record and its event in one write, then the log: a kill between loses nothing. */
    r = audit_job_intent(v->job, &ev);
    if (r == 0)
        r = job_save(v->state_dir, v->job);
    if (r == 0)
        r = audit_commit_pending(v->state_dir, v->job);
    return r;
}

static int save_job(struct rv *v)
{
    int r = v->job ? job_save(v->state_dir, v->job) : 0;

    if (r < 0)
        return diag_fail(v->d, r, strerror(errno), "saving job %s", v->job->id);
    return 0;
}

void revoke_settled_text(enum revoke_state st, long request_id, bool tr, char *out, size_t len)
{
    if (st == RV_REVOKED)
        snprintf(out, len, "%s", tr ? _("revoked") : "revoked");
    else if (st == RV_PENDING && tr)
        snprintf(out, len,
                 _("revocation request %ld awaits approval in CertCentral: NOT revoked yet"),
                 request_id);
    else if (st == RV_PENDING)
        snprintf(out, len, "revocation request %ld awaits approval in CertCentral: NOT revoked yet",
                 request_id);
    else if (tr)
        snprintf(out, len, _("revocation request %ld was rejected by an approver: NOT revoked"),
                 request_id);
    else
        snprintf(out, len, "revocation request %ld was rejected by an approver: NOT revoked",
                 request_id);
}

/* Record a settled revocation (in the job if ours, always in the audit log) and in the result. */
static int settled(struct rv *v, enum revoke_state st, long request_id)
{
    char what[160];
    int r;

    revoke_settled_text(st, request_id, false, what, sizeof(what));
    if (v->job) {
        snprintf(v->job->cert_revoke_status, sizeof(v->job->cert_revoke_status), "%s",
                 revoke_state_name(st));
        v->job->cert_revoke_request_id = request_id;
        (void)job_note(v->job, "certificate %ld: %s (%s)", v->cert, what, v->o->reason);
    }
    r = 0;
    if (audit_it(v, st == RV_REVOKED ? "ok" : "pending", what) < 0)
        r = diag_fail(v->d, PA_E_IO, strerror(errno), "appending to the audit log");
    if (r < 0)
        return r;
    v->res->settled = true;
    v->res->certificate_id = v->cert;
    v->res->order_id = v->order;
    snprintf(v->res->job_id, sizeof(v->res->job_id), "%s", v->job ? v->job->id : "");
    v->res->state = st;
    v->res->request_id = request_id;
    return st == RV_REJECTED ? PA_E_CA_REJECTED : 0;
}

/* Send the revoke once; a failure is settled by reading the order again. */
static int send_revoke(struct rv *v)
{
    struct cc_revoke_result res;
    char comment[256], why[512];
    enum revoke_state st;
    int r;

    if (v->job) {
        v->job->cert_revoke_at = time(NULL);
        snprintf(v->job->cert_revoke_reason, sizeof(v->job->cert_revoke_reason), "%s",
                 v->o->reason);
        r = save_job(v);
        if (r < 0)
            return r;
    }
    snprintf(comment, sizeof(comment), "%s",
             v->o->comment ? v->o->comment : "revoked with pkio-agent");
    r = cc_revoke_certificate(v->cc, v->cert, v->o->reason, comment, &res);
    if (r == 0)
        return settled(v, res.pending ? RV_PENDING : RV_REVOKED, res.request_id);
    snprintf(why, sizeof(why), "%s", cc_last_error(v->cc));
    cc_order_info_clear(&v->info);
    if (cc_order_info(v->cc, v->order, &v->info) == 0) {
        st = revoke_state_of(&v->info, true);
        if (st != RV_NONE) /* "already revoked", or the answer was lost */
            return settled(v, st, v->info.revoke_request_id);
    }
    (void)audit_it(v, "failed", why);
    return diag_fail(v->d, r, why,
                     "revoking certificate %ld (run the same command again: it checks CertCentral "
                     "before sending anything)",
                     v->cert);
}

int revoke_run(const struct enroll_env *env, const struct revoke_opts *o, struct revoke_result *res,
               struct pa_diag *d)
{
    struct rv v = {
        .env = env, .d = d, .res = res, .o = o, .lock_fd = -1, .state_dir = env->state_dir};
    enum revoke_state st;
    char what[600];
    int r;

    memset(res, 0, sizeof(*res));
    r = resolve(&v);
    if (r == 0)
        r = read_order(&v);
    if (r < 0)
        goto out;
    /* Read before (re)sending: a previous run or someone else may have done it already. */
    st = revoke_state_of(&v.info, v.job && v.job->cert_revoke_at);
    if (st != RV_NONE) {
        r = settled(&v, st, v.info.revoke_request_id);
        goto out;
    }
    describe(&v, what, sizeof(what));
    r = confirm(&v, what);
    if (r == 0)
        r = send_revoke(&v);
out:
    cc_order_info_clear(&v.info);
    cc_client_free(v.cc);
    job_free(v.job);
    job_unlock(v.lock_fd);
    return r;
}
