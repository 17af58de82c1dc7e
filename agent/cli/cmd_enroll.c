/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_enroll.c - the enrollment commands: enroll, renew, revoke, resume, status, cancel, audit.
 */
#include "audit.h"
#include "cli.h"
#include "config.h"
#include "enroll.h"
#include "i18n.h"
#include "job.h"
#include "pa_err.h"
#include "revoke.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPT_TOKEN = CLI_OPT_FIRST,
    OPT_REQUEST,
    OPT_KEY_TYPE,
    OPT_PSS,
    OPT_NO_WAIT,
    OPT_REPLACES,
    OPT_ALL,
    OPT_PIN_SOURCE,
    OPT_ONLY_BLANK,
    OPT_EARLY,
    OPT_JOB,
    OPT_CERT,
    OPT_SERIAL,
    OPT_REASON,
    OPT_COMMENT,
    OPT_YES,
    OPT_JOURNAL,
    OPT_JOURNAL_FILE,
    OPT_SINCE,
};

/* "123" is a certificate id, "order:45" an order id. */
static int parse_replaces(const char *s, long *cert, long *order)
{
    const char *p = s;
    long *dst = cert;
    char *end = NULL;
    long v;

    if (strncmp(s, "order:", 6) == 0) {
        p = s + 6;
        dst = order;
    } else if (strncmp(s, "cert:", 5) == 0) {
        p = s + 5;
    }
    errno = 0;
    v = strtol(p, &end, 10);
    if (errno || !*p || *end || v <= 0)
        return PA_E_USAGE;
    *dst = v;
    return 0;
}

/* One option of enroll/renew (renew adds --early). */
static int enroll_option(void *arg, int c, const char *val)
{
    struct enroll_opts *o = arg;

    switch (c) {
    case OPT_TOKEN:
        o->token_uri = val;
        return 0;
    case OPT_REQUEST:
        o->request = val;
        return 0;
    case OPT_KEY_TYPE:
        return cli_key_type(val, &o->key_type) < 0 ? PA_E_USAGE : 0;
    case OPT_PSS:
    case OPT_NO_WAIT:
    case OPT_ONLY_BLANK:
        o->pss |= c == OPT_PSS;
        o->no_wait |= c == OPT_NO_WAIT;
        o->only_blank |= c == OPT_ONLY_BLANK;
        return 0;
    case OPT_REPLACES:
        if (parse_replaces(val, &o->replaces_certificate_id, &o->replaces_order_id) < 0)
            return cli_fail(PA_E_USAGE, N_("a certificate id, or order:ORDER_ID"), "--replaces");
        return 0;
    case OPT_EARLY:
        o->early = o->renew;
        return o->renew ? 0 : CLI_OPT_UNKNOWN;
    default:
        return CLI_OPT_UNKNOWN;
    }
}

/* The options enroll and renew share (renew adds --early and makes --request optional). */
static int parse_enroll(struct cli *cli, int argc, char **argv, struct enroll_opts *o)
{
    static const struct option opts[] = {
        {"token", required_argument, NULL, OPT_TOKEN},
        {"request", required_argument, NULL, OPT_REQUEST},
        {"key-type", required_argument, NULL, OPT_KEY_TYPE},
        {"pss", no_argument, NULL, OPT_PSS},
        {"no-wait", no_argument, NULL, OPT_NO_WAIT},
        {"replaces", required_argument, NULL, OPT_REPLACES},
        {"only-blank", no_argument, NULL, OPT_ONLY_BLANK},
        {"early", no_argument, NULL, OPT_EARLY},
        CLI_OPTS_END,
    };
    static const struct cli_getopt enroll_how = {
        .command = "enroll", .longopts = opts, .option = enroll_option};
    static const struct cli_getopt renew_how = {
        .command = "renew", .longopts = opts, .option = enroll_option};
    const char *cmd = o->renew ? "renew" : "enroll";
    int r = cli_getopt(cli, o->renew ? &renew_how : &enroll_how, o, argc, argv);

    if (r != 0)
        return r;
    if (!o->token_uri && cli->cfg->token_uri)
        o->token_uri = cli->cfg->token_uri;
    if (!o->token_uri || (!o->request && !o->renew) || optind != argc)
        return cli_fail(PA_E_USAGE,
                        N_("--token URI (or token.uri) and --request FILE are required"), "%s",
                        cmd);
    if (o->pss && (o->key_type == TOK_KEY_EC_P256 || o->key_type == TOK_KEY_EC_P384))
        return cli_fail(PA_E_USAGE, N_("--pss needs an RSA key"), "%s", cmd);
    return 0;
}

int cmd_enroll(struct cli *cli, int argc, char **argv)
{
    struct enroll_opts o = {.key_type = TOK_KEY_RSA2048};
    int r = parse_enroll(cli, argc, argv, &o);

    if (r != 0)
        return r < 0 ? r : 0;
    enroll_handle_stop_signals();
    return cli_run_enroll(cli, NULL, &o);
}

/* Is the job's token the one the URI names? */
static bool job_matches_uri(const struct job *j, const struct tok_uri *u)
{
    struct tok_info info;

    memset(&info, 0, sizeof(info));
    snprintf(info.label, sizeof(info.label), "%s", j->token_label);
    snprintf(info.serial, sizeof(info.serial), "%s", j->token_serial);
    snprintf(info.model, sizeof(info.model), "%s", j->token_model);
    snprintf(info.manufacturer, sizeof(info.manufacturer), "%s", j->token_manufacturer);
    return tok_uri_matches(u, &info);
}

/*
 * The certificate a renewal replaces, and the request it was made with: --replaces names it
 * (then the job of that certificate, if ours, gives the request), else the newest finished job
 * on the token the URI names.
 */
/* The newest finished job with the certificate --replaces names, else on the URI's token. */
static struct job *renew_pick(struct job **list, size_t n, const struct enroll_opts *o,
                              const struct tok_uri *u)
{
    struct job *pick = NULL;

    for (size_t i = 0; i < n; i++) {
        struct job *j = list[i];

        if (j->state != JOB_DONE || !j->certificate_id)
            continue;
        if (o->replaces_certificate_id ? j->certificate_id == o->replaces_certificate_id
                                       : job_matches_uri(j, u))
            pick = j; /* oldest first: the last one is the newest */
    }
    return pick;
}

/* What renew's options leave open, from the job picked (NULL: none). */
static int renew_from_pick(struct enroll_opts *o, const struct job *pick, char **ret_request)
{
    if (!pick && !o->replaces_certificate_id)
        return cli_fail(PA_E_USAGE,
                        N_("no finished enrollment of this station on that token; name "
                           "the certificate with --replaces"),
                        "renew --token %s", o->token_uri);
    if (pick && !o->replaces_certificate_id)
        o->replaces_certificate_id = pick->certificate_id;
    if (!o->request && pick && pick->request_path)
        *ret_request = strdup(pick->request_path);
    if (!o->request && !*ret_request)
        return cli_fail(PA_E_USAGE,
                        N_("the request of the replaced certificate is not known here; "
                           "give it with --request"),
                        "renew");
    return 0;
}

static int renew_target(struct cli *cli, struct enroll_opts *o, char **ret_request)
{
    struct job **list = NULL;
    struct tok_uri u;
    size_t n = 0;
    char err[1024] = "";
    int r = tok_uri_parse(o->token_uri, false, &u);

    if (r < 0)
        return cli_fail(PA_E_USAGE, tok_detail(), "--token %s", o->token_uri);
    r = job_list(cli_state_dir(cli), &list, &n, err, sizeof(err));
    if (r < 0)
        cli_fail(r, err, "jobs in %s", cli_state_dir(cli));
    else
        r = renew_from_pick(o, renew_pick(list, n, o, &u), ret_request);
    job_list_free(list, n);
    tok_uri_clear(&u);
    return r;
}

int cmd_renew(struct cli *cli, int argc, char **argv)
{
    struct enroll_opts o = {.key_type = TOK_KEY_RSA2048, .renew = true};
    char *request = NULL;
    int r = parse_enroll(cli, argc, argv, &o);

    if (r != 0)
        return r < 0 ? r : 0;
    o.warn_days = cli->cfg->renew_warn_days;
    r = renew_target(cli, &o, &request);
    if (r == 0) {
        if (!o.request)
            o.request = request;
        enroll_handle_stop_signals();
        r = cli_run_enroll(cli, NULL, &o);
    }
    free(request);
    return r;
}

struct revoke_args {
    struct revoke_opts o;
    int given; /* how many of --job, --cert, --serial */
};

static int revoke_option(void *arg, int c, const char *val)
{
    struct revoke_args *a = arg;
    long order = 0;

    switch (c) {
    case OPT_JOB:
        a->o.job = val;
        break;
    case OPT_CERT:
        if (parse_replaces(val, &a->o.cert, &order) < 0 || order)
            return cli_fail(PA_E_USAGE, N_("a certificate id"), "--cert");
        break;
    case OPT_SERIAL:
        a->o.serial = val;
        break;
    case OPT_REASON:
        a->o.reason = val;
        return 0;
    case OPT_COMMENT:
        a->o.comment = val;
        return 0;
    case OPT_YES:
        a->o.yes = true;
        return 0;
    default:
        return CLI_OPT_UNKNOWN;
    }
    a->given++;
    return 0;
}

int cmd_revoke(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"job", required_argument, NULL, OPT_JOB},
        {"cert", required_argument, NULL, OPT_CERT},
        {"serial", required_argument, NULL, OPT_SERIAL},
        {"reason", required_argument, NULL, OPT_REASON},
        {"comment", required_argument, NULL, OPT_COMMENT},
        {"yes", no_argument, NULL, OPT_YES},
        CLI_OPTS_END,
    };
    static const struct cli_getopt how = {
        .command = "revoke", .longopts = opts, .option = revoke_option};
    struct revoke_args a = {0};
    int r = cli_getopt(cli, &how, &a, argc, argv);

    if (r != 0)
        return r < 0 ? r : 0;
    if (a.given != 1 || optind != argc)
        return cli_fail(PA_E_USAGE, N_("name exactly one of --job, --cert, --serial"), "revoke");
    if (!revoke_reason_valid(a.o.reason))
        return cli_fail(PA_E_USAGE,
                        N_("--reason key_compromise, superseded, cessation_of_operation, "
                           "affiliation_changed or unspecified"),
                        "revoke");
    return cli_run_revoke(cli, &a.o);
}

struct job_args {
    struct enroll_opts o;
    bool all; /* resume --all */
};

/* The options of resume and cancel (cancel takes only --pin-source). */
static int job_option(void *arg, int c, const char *val)
{
    struct job_args *a = arg;

    switch (c) {
    case OPT_ALL:
        a->all = true;
        return 0;
    case OPT_PIN_SOURCE:
        a->o.pin_source = val;
        return 0;
    case OPT_NO_WAIT:
        a->o.no_wait = true;
        return 0;
    default:
        return CLI_OPT_UNKNOWN;
    }
}

/* Every unfinished job, each independent: one failure does not stop the others. */
static int resume_all(struct cli *cli, const struct enroll_opts *o)
{
    struct job **list = NULL;
    char err[512] = "";
    size_t n = 0;
    int r, worst = 0;

    r = job_list(cli_state_dir(cli), &list, &n, err, sizeof(err));
    if (r < 0)
        return cli_fail(r, err, "jobs in %s", cli_state_dir(cli));
    if (err[0])
        fprintf(stderr, _("pkio-agent: warning: %s; tell the officer in charge\n"), err);
    for (size_t i = 0; i < n; i++) {
        if (job_state_is_terminal(list[i]->state))
            continue;
        r = cli_run_enroll(cli, list[i]->id, o);
        if (r < 0 && (worst == 0 || worst == PA_E_PENDING))
            worst = r;
    }
    job_list_free(list, n);
    return worst;
}

int cmd_resume(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"all", no_argument, NULL, OPT_ALL},
        {"pin-source", required_argument, NULL, OPT_PIN_SOURCE},
        {"no-wait", no_argument, NULL, OPT_NO_WAIT},
        CLI_OPTS_END,
    };
    static const struct cli_getopt how = {
        .command = "resume", .longopts = opts, .option = job_option};
    struct job_args a = {.o = {.key_type = TOK_KEY_RSA2048}};
    int r = cli_getopt(cli, &how, &a, argc, argv);

    if (r != 0)
        return r < 0 ? r : 0;
    if (!((a.all && optind == argc) || (!a.all && optind == argc - 1)))
        return cli_fail(PA_E_USAGE, N_("name one JOB, or --all"), "resume");
    enroll_handle_stop_signals();
    if (!a.all)
        return cli_run_enroll(cli, argv[optind], &a.o);
    return resume_all(cli, &a.o);
}

int cmd_cancel(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"pin-source", required_argument, NULL, OPT_PIN_SOURCE},
        CLI_OPTS_END,
    };
    static const struct cli_getopt how = {
        .command = "cancel", .longopts = opts, .option = job_option};
    struct job_args a = {.o = {.key_type = TOK_KEY_RSA2048}};
    int r = cli_getopt(cli, &how, &a, argc, argv);

    if (r != 0)
        return r < 0 ? r : 0;
    if (optind != argc - 1)
        return cli_fail(PA_E_USAGE, N_("name one JOB"), "cancel");
    return cli_run_cancel(cli, argv[optind], &a.o);
}

static json_object *job_json(const struct job *j)
{
    char *s = job_to_json(j);
    json_object *o = s ? json_tokener_parse(s) : NULL;

    free(s);
    return o ? o : json_object_new_object();
}

/* The key lines of status JOB: key, custody, keygen. */
static void print_job_key(const struct job *j)
{
    if (j->key_id_hex[0])
        printf(_("  key       %s id %s (%s)%s\n"), j->key_type, j->key_id_hex, j->key_label,
               j->custody_ok ? _(", custody checked") : "");
    if (j->custody)
        printf(_("  custody   %s\n"), j->custody);
    if (j->keygen_at)
        printf(j->slot_removable ? _("  keygen    %s on a %s, removable slot, module %s\n")
                                 : _("  keygen    %s on a %s slot, module %s\n"),
               j->keygen_mechanism[0] ? j->keygen_mechanism : _("(interrupted before the answer)"),
               j->slot_hw ? _("hardware") : _("software"), j->module_path ? j->module_path : "?");
}

/* The "replaces" line of status JOB, with what became of the old certificate. */
static void print_job_replaces(const struct job *j)
{
    if (!j->replaces_certificate_id && !j->replaces_order_id)
        return;
    if (j->replaces_certificate_id)
        printf(_("  replaces  certificate %ld"), j->replaces_certificate_id);
    else
        printf(_("  replaces  order %ld"), j->replaces_order_id);
    if (j->old_revoked)
        printf("%s\n", _(" (revoked)"));
    else if (strcmp(j->revoke_status, "pending") == 0)
        printf(_(" (NOT revoked yet: revocation request %ld awaits approval)\n"),
               j->revoke_request_id);
    else if (strcmp(j->revoke_status, "rejected") == 0)
        printf(_(" (NOT revoked: revocation request %ld rejected)\n"), j->revoke_request_id);
    else
        printf("%s\n", j->revoke_attempt_at ? _(" (revocation sent, answer not seen yet)") : "");
}

static void print_job(const struct job *j)
{
    char when[32];
    struct tm tm;

    printf(_("job %s: %s\n"), j->id, job_state_name(j->state));
    printf(_("  token     '%s' serial %s (%s %s)\n"), j->token_label, j->token_serial,
           j->token_manufacturer, j->token_model);
    print_job_key(j);
    if (j->request_path)
        printf(_("  request   %s (%s)\n"), j->request_path, j->product ? j->product : "");
    if (j->order_id)
        printf(_("  order     %ld: %s\n"), j->order_id, j->order_status);
    if (j->certificate_id)
        printf(_("  cert      id %ld serial %s\n"), j->certificate_id, j->cert_serial);
    print_job_replaces(j);
    if (j->last_error)
        printf(_("  error     %s\n"), j->last_error[0] ? _(j->last_error) : "");
    for (size_t i = 0; i < j->nhistory; i++) {
        gmtime_r(&j->history[i].at, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        printf("  %s %-10s %s\n", when, job_state_name(j->history[i].state),
               j->history[i].note ? j->history[i].note : "");
    }
}

/* status JOB: one job in full. */
static int status_one(struct cli *cli, const char *id)
{
    struct job *one = NULL;
    char err[512] = "";
    int r = job_load(cli_state_dir(cli), id, &one, err, sizeof(err));

    if (r < 0)
        return cli_fail(r, err, "job %s", id);
    if (cli->json) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "job", job_json(one));
        cli_print_json(o);
    } else {
        print_job(one);
    }
    job_free(one);
    return 0;
}

static void status_list_text(const struct cli *cli, struct job **list, size_t n)
{
    if (n == 0)
        printf(_("no jobs in %s\n"), cli_state_dir(cli));
    for (size_t i = 0; i < n; i++) {
        const struct job *j = list[i];

        printf(_("%.12s  %-10s token %-16s serial %-16s order %-8ld %s\n"), j->id,
               job_state_name(j->state), j->token_label, j->token_serial, j->order_id,
               j->order_status);
    }
}

int cmd_status(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {CLI_OPTS_END};
    static const struct cli_getopt how = {.command = "status", .longopts = opts};
    struct job **list = NULL;
    char err[512] = "";
    size_t n = 0;
    int r = cli_getopt(cli, &how, NULL, argc, argv);

    if (r != 0)
        return r < 0 ? r : 0;
    if (optind < argc - 1)
        return cli_fail(PA_E_USAGE, N_("at most one JOB"), "status");
    if (optind == argc - 1)
        return status_one(cli, argv[optind]);
    r = job_list(cli_state_dir(cli), &list, &n, err, sizeof(err));
    if (r < 0)
        return cli_fail(r, err, "jobs in %s", cli_state_dir(cli));
    if (err[0]) /* a corrupt record is set aside and named; the others are still listed */
        fprintf(stderr, _("pkio-agent: warning: %s\n"), err);
    if (cli->json) {
        json_object *o = json_object_new_object(), *a = json_object_new_array();

        for (size_t i = 0; i < n; i++)
            json_object_array_add(a, job_json(list[i]));
        json_object_object_add(o, "jobs", a);
        cli_print_json(o);
    } else {
        status_list_text(cli, list, n);
    }
    job_list_free(list, n);
    return 0;
}

/* The text of finding f (with the chain's reason for a broken chain). */
static void audit_text(const struct audit_report *rep, const struct audit_finding *f, char *buf,
                       size_t len)
{
    audit_finding_text(f, buf, len);
    if (f->kind == AF_CHAIN_BROKEN && rep->reason[0])
        snprintf(buf + strlen(buf), len - strlen(buf), ": %s", rep->reason);
}

static json_object *audit_findings_json(const struct audit_report *rep)
{
    json_object *a = json_object_new_array();
    char text[512];

    for (size_t i = 0; a && i < rep->nfindings; i++) {
        const struct audit_finding *f = &rep->findings[i];
        json_object *o = json_object_new_object();

        audit_text(rep, f, text, sizeof(text));
        json_object_object_add(o, "kind", json_object_new_string(audit_finding_name(f->kind)));
        json_object_object_add(o, "tampered",
                               json_object_new_boolean(audit_finding_tampered(f->kind)));
        json_object_object_add(o, "first", f->first ? json_object_new_int64(f->first) : NULL);
        json_object_object_add(o, "last", f->last ? json_object_new_int64(f->last) : NULL);
        json_object_object_add(o, "job", f->job[0] ? json_object_new_string(f->job) : NULL);
        json_object_object_add(o, "text", json_object_new_string(text));
        json_object_array_add(a, o);
    }
    return a;
}

/* The first finding that means tampering, or NULL. */
static const struct audit_finding *audit_first_tamper(const struct audit_report *rep)
{
    for (size_t i = 0; i < rep->nfindings; i++)
        if (audit_finding_tampered(rep->findings[i].kind))
            return &rep->findings[i];
    return NULL;
}

static void audit_print_json(const struct audit_report *rep, int r, const char *err)
{
    json_object *o = json_object_new_object();
    const struct audit_finding *first = audit_first_tamper(rep);
    char text[512] = "";

    if (r == PA_E_JOB && first)
        audit_text(rep, first, text, sizeof(text));
    else if (r < 0)
        snprintf(text, sizeof(text), "%s", err);
    json_object_object_add(o, "intact", json_object_new_boolean(r == 0));
    json_object_object_add(o, "lines", json_object_new_int64(rep->lines));
    json_object_object_add(o, "first_bad_line",
                           rep->bad_line ? json_object_new_int64(rep->bad_line) : NULL);
    json_object_object_add(o, "reason", r == 0 ? NULL : json_object_new_string(text));
    json_object_object_add(o, "jobs", json_object_new_int64(rep->jobs));
    json_object_object_add(o, "anchors",
                           rep->anchors >= 0 ? json_object_new_int64(rep->anchors) : NULL);
    json_object_object_add(o, "journal_first",
                           rep->journal_first ? json_object_new_int64(rep->journal_first) : NULL);
    json_object_object_add(o, "findings", audit_findings_json(rep));
    json_object_object_add(o, "findings_dropped", json_object_new_int64((int64_t)rep->dropped));
    cli_print_json(o);
}

static void audit_print_text(const struct audit_report *rep, int r)
{
    char text[512];

    for (size_t i = 0; i < rep->nfindings; i++) {
        audit_text(rep, &rep->findings[i], text, sizeof(text));
        printf("%s: %s\n",
               audit_finding_tampered(rep->findings[i].kind) ? _("TAMPERED") : _("note"), text);
    }
    if (rep->dropped)
        printf(_("TAMPERED: ... and %zu more findings\n"), rep->dropped);
    if (r != 0)
        return;
    printf(ngettext("audit log intact: %ld line; job records: %ld, all agree",
                    "audit log intact: %ld lines; job records: %ld, all agree",
                    (unsigned long)rep->lines),
           rep->lines, rep->jobs);
    if (rep->anchors >= 0)
        printf(_("; journal: %ld anchors, all agree"), rep->anchors);
    if (rep->journal_first > 1)
        printf(_(" (lines 1..%ld are older than the journal)"), rep->journal_first - 1);
    printf("\n");
}

static int audit_option(void *arg, int c, const char *val)
{
    struct audit_verify_opts *o = arg;

    switch (c) {
    case OPT_JOURNAL:
        o->against_journal = true;
        return 0;
    case OPT_JOURNAL_FILE:
        o->against_journal = true;
        o->journal_file = val;
        return 0;
    case OPT_SINCE:
        o->since = val;
        return 0;
    default:
        return CLI_OPT_UNKNOWN;
    }
}

/* The options after "audit verify"; a usage error names the synopsis. */
static int audit_options(struct cli *cli, int argc, char **argv, struct audit_verify_opts *o)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, CLI_OPT_JSON},
        {"against-journal", no_argument, NULL, OPT_JOURNAL},
        {"journal-file", required_argument, NULL, OPT_JOURNAL_FILE},
        {"since", required_argument, NULL, OPT_SINCE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const struct cli_getopt how = {
        .command = "audit", .longopts = opts, .option = audit_option, .error_synopsis = true};
    int r;

    optind = 0;
    r = cli_getopt(cli, &how, o, argc, argv);
    if (r != 0)
        return r;
    if (optind != argc)
        return cli_fail(PA_E_USAGE, cli_synopsis("audit"), "audit");
    if (o->since && (!o->against_journal || o->journal_file))
        return cli_fail(PA_E_USAGE, N_("--since applies to the journal (--against-journal)"),
                        "audit");
    return 0;
}

int cmd_audit(struct cli *cli, int argc, char **argv)
{
    struct audit_verify_opts o = {0};
    struct audit_report rep;
    const struct audit_finding *first;
    char err[512] = "", text[512] = "";
    int r;

    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        cli_usage("audit");
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "verify") != 0)
        return cli_fail(PA_E_USAGE, cli_synopsis("audit"), "audit");
    r = audit_options(cli, argc - 1, argv + 1, &o);
    if (r != 0)
        return r < 0 ? r : 0;
    audit_translate_messages(!cli->json);
    r = audit_verify_report(cli_state_dir(cli), &o, &rep, err, sizeof(err));
    if (cli->json)
        audit_print_json(&rep, r, err);
    else
        audit_print_text(&rep, r);
    first = audit_first_tamper(&rep);
    if (r == PA_E_JOB && first)
        audit_text(&rep, first, text, sizeof(text));
    if (r == PA_E_JOB)
        cli_fail(r, first ? text : N_("too many findings"), "audit log %s/audit.log: tampered",
                 cli_state_dir(cli));
    else if (r < 0)
        cli_fail(r, err, "audit log %s/audit.log", cli_state_dir(cli));
    audit_report_clear(&rep);
    return r;
}
