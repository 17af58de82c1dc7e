/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_enroll_front.c - the command line as the front end of the enrollment core (enroll.h) and
 * of revoke (revoke.h): progress lines on a terminal, warnings, the token with every PIN source,
 * the request with its field problems, and all the printing of what a run came to (text or
 * --json) and of its one diagnostic (cli_report).
 */
#include "cli.h"
#include "diag.h"
#include "enroll.h"
#include "i18n.h"
#include "job.h"
#include "pa_err.h"
#include "revoke.h"

#include <json-c/json.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* What the command line does for the core: progress on a terminal, warnings, the token with
 * every PIN source (prompt, PIN pad, --pin-fd, transport PIN), the request with its problems. */
struct front {
    const struct cli *cli;
    struct timespec t0;
    bool tty;
};

static void front_progress(void *arg, const char *job_id, const char *line)
{
    const struct front *f = arg;
    struct timespec now;
    double s;

    if (!f->tty || f->cli->json)
        return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    s = (double)(now.tv_sec - f->t0.tv_sec) + (double)(now.tv_nsec - f->t0.tv_nsec) / 1e9;
    fprintf(stderr, _("[%7.1fs] job %.8s: "), s, job_id);
    fputs(line, stderr);
    fputc('\n', stderr);
}

static void front_warn(void *arg, const char *line)
{
    (void)arg;
    fprintf(stderr, "%s\n", line);
}

/* cli_open_token reports its failures itself (the diag only carries the error). The module is
 * the command line's (cli_module), the PIN file is in the URI. */
static int front_open_token(void *arg, const char *module, const char *uri, const char *pin_source,
                            struct tok_ctx **ctx, struct tok_token **tok, struct pa_diag *d)
{
    const struct front *f = arg;
    int r = cli_open_token(f->cli, uri, true, ctx, tok, NULL);

    (void)module;
    (void)pin_source;
    return r < 0 ? diag_shown(d, r) : 0;
}

static int front_prepare_request(void *arg, const char *file, struct req **ret, struct pa_diag *d)
{
    const struct front *f = arg;
    int r = cli_prepare_request(f->cli, file, NULL, ret);

    return r < 0 ? diag_shown(d, r) : 0;
}

static const struct enroll_ui front_ui = {
    .progress = front_progress,
    .warn = front_warn,
    .open_token = front_open_token,
    .prepare_request = front_prepare_request,
};

/* The environment of one call of the core; f and ui are the caller's storage. */
static void front_env(const struct cli *cli, struct front *f, struct enroll_ui *ui,
                      struct enroll_env *env)
{
    f->cli = cli;
    f->tty = isatty(STDERR_FILENO) || getenv("PKIO_PROGRESS"); /* PKIO_PROGRESS: logs, demos */
    clock_gettime(CLOCK_MONOTONIC, &f->t0);
    *ui = front_ui;
    ui->arg = f;
    env->cfg = cli->cfg;
    env->module = cli_module(cli);
    env->state_dir = cli_state_dir(cli);
    env->ui = ui;
}

/* A re-key whose old certificate is not revoked (yet) says so: it is not "revoked". */
static void report_revoke(const struct job *j)
{
    if (strcmp(j->revoke_status, "pending") == 0)
        printf(_("job %s: replaced certificate %ld is NOT revoked yet: revocation request %ld "
                 "awaits approval in CertCentral\n"),
               j->id, j->replaces_certificate_id, j->revoke_request_id);
    else if (strcmp(j->revoke_status, "rejected") == 0)
        printf(_("job %s: replaced certificate %ld is NOT revoked: an approver rejected "
                 "revocation request %ld; revoke it in CertCentral\n"),
               j->id, j->replaces_certificate_id, j->revoke_request_id);
}

static void report_json(const struct job *j, int r)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "job", json_object_new_string(j->id));
    json_object_object_add(o, "state", json_object_new_string(job_state_name(j->state)));
    json_object_object_add(o, "token_serial", json_object_new_string(j->token_serial));
    json_object_object_add(o, "token_label", json_object_new_string(j->token_label));
    json_object_object_add(o, "key_id", json_object_new_string(j->key_id_hex));
    json_object_object_add(o, "order_id", j->order_id ? json_object_new_int64(j->order_id) : NULL);
    json_object_object_add(o, "order_status", json_object_new_string(j->order_status));
    json_object_object_add(o, "certificate_id",
                           j->certificate_id ? json_object_new_int64(j->certificate_id) : NULL);
    json_object_object_add(o, "certificate_serial", json_object_new_string(j->cert_serial));
    json_object_object_add(o, "pending", json_object_new_boolean(r == PA_E_PENDING));
    if (j->replaces_certificate_id || j->replaces_order_id) {
        json_object_object_add(o, "replaces_certificate_id",
                               json_object_new_int64(j->replaces_certificate_id));
        json_object_object_add(o, "replaced_revocation", json_object_new_string(j->revoke_status));
    }
    cli_print_json(o);
}

/* What a driven job's run came to (r: the core's return). */
static void report(const struct cli *cli, const struct job *j, int r)
{
    if (cli->json) {
        report_json(j, r);
        return;
    }
    if (r == 0 && j->state == JOB_DONE) {
        printf(_("job %s: done; certificate %s is on token '%s' (serial %s) with key %s\n"), j->id,
               j->cert_serial, j->token_label, j->token_serial, j->key_label);
        report_revoke(j);
    } else if (r == PA_E_PENDING && j->state == JOB_ORDERED)
        printf(_("job %s: order %ld placed, waiting (%s); 'pkio-agent resume %s' continues\n"),
               j->id, j->order_id, j->order_status[0] ? j->order_status : "pending", j->id);
    else if (r == PA_E_PENDING)
        printf(_("job %s: stopped at '%s'; 'pkio-agent resume %s' continues\n"), j->id,
               job_state_name(j->state), j->id);
}

/* enroll found a finished job for this request: nothing was ordered. */
static void say_done(const struct cli *cli, const struct job *d)
{
    if (cli->json) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "job", json_object_new_string(d->id));
        json_object_object_add(o, "state", json_object_new_string(job_state_name(d->state)));
        json_object_object_add(o, "already_done", json_object_new_boolean(1));
        json_object_object_add(o, "certificate_serial", json_object_new_string(d->cert_serial));
        cli_print_json(o);
    } else {
        printf(_("job %s: already done for this request; certificate %s is on token '%s' "
                 "(serial %s); nothing ordered\n"),
               d->id, d->cert_serial, d->token_label, d->token_serial);
    }
}

/* enroll (job_id NULL) or resume: run the core, then say what came of it. */
int cli_run_enroll(const struct cli *cli, const char *job_id, const struct enroll_opts *o)
{
    struct enroll_result res;
    struct enroll_env env;
    struct enroll_ui ui;
    struct pa_diag d;
    struct front f;
    int r;

    diag_clear(&d);
    front_env(cli, &f, &ui, &env);
    r = job_id ? enroll_resume(&env, job_id, o, &res, &d) : enroll_start(&env, o, &res, &d);
    (void)cli_report(cli, &d);
    if (res.job && res.already_done)
        say_done(cli, res.job);
    else if (res.job && res.driven)
        report(cli, res.job, r);
    enroll_result_clear(&res);
    return r;
}

int cli_run_cancel(const struct cli *cli, const char *job_id, const struct enroll_opts *o)
{
    struct enroll_result res;
    struct enroll_env env;
    struct enroll_ui ui;
    struct pa_diag d;
    struct front f;
    int r;

    diag_clear(&d);
    front_env(cli, &f, &ui, &env);
    r = enroll_cancel(&env, job_id, o, &res, &d);
    (void)cli_report(cli, &d);
    if (r == 0 && res.job && !cli->json)
        printf(_("job %s canceled%s%s\n"), res.job->id,
               res.job->order_id ? _("; order canceled") : "",
               res.job->key_id_hex[0] ? _("; key removed from the token") : "");
    enroll_result_clear(&res);
    return r;
}

int cli_run_revoke(const struct cli *cli, const struct revoke_opts *ro)
{
    struct revoke_result res;
    struct enroll_env env;
    struct enroll_ui ui;
    struct pa_diag d;
    struct front f;
    char what[160];
    int r;

    diag_clear(&d);
    front_env(cli, &f, &ui, &env);
    r = revoke_run(&env, ro, &res, &d);
    (void)cli_report(cli, &d);
    if (!res.settled)
        return r;
    if (cli->json) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "certificate_id", json_object_new_int64(res.certificate_id));
        json_object_object_add(o, "order_id", json_object_new_int64(res.order_id));
        json_object_object_add(o, "job", res.job_id[0] ? json_object_new_string(res.job_id) : NULL);
        json_object_object_add(o, "revocation",
                               json_object_new_string(revoke_state_name(res.state)));
        json_object_object_add(o, "request_id",
                               res.request_id ? json_object_new_int64(res.request_id) : NULL);
        cli_print_json(o);
    } else {
        revoke_settled_text(res.state, res.request_id, true, what, sizeof(what));
        printf(_("certificate %ld: %s\n"), res.certificate_id, what);
    }
    return r;
}
