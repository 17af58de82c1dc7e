/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_enroll.c - the enrollment commands: enroll, resume, status, cancel, audit verify.
 */
#include "audit.h"
#include "cli.h"
#include "config.h"
#include "enroll.h"
#include "job.h"
#include "pa_err.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPT_JSON = 0x100,
    OPT_TOKEN,
    OPT_REQUEST,
    OPT_KEY_TYPE,
    OPT_PSS,
    OPT_NO_WAIT,
    OPT_REPLACES,
    OPT_ALL,
    OPT_PIN_SOURCE,
    OPT_ONLY_BLANK,
};

#define SYN_ENROLL                                                                                 \
    "enroll --token URI --request FILE [--key-type T] [--pss] [--no-wait] [--replaces "            \
    "CERT_ID|order:ORDER_ID] [--only-blank] [--json]"
#define SYN_RESUME "resume (JOB | --all) [--pin-source FILE] [--no-wait] [--json]"

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

int cmd_enroll(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"token", required_argument, NULL, OPT_TOKEN},
        {"request", required_argument, NULL, OPT_REQUEST},
        {"key-type", required_argument, NULL, OPT_KEY_TYPE},
        {"pss", no_argument, NULL, OPT_PSS},
        {"no-wait", no_argument, NULL, OPT_NO_WAIT},
        {"replaces", required_argument, NULL, OPT_REPLACES},
        {"only-blank", no_argument, NULL, OPT_ONLY_BLANK},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct enroll_opts o = {.key_type = TOK_KEY_RSA2048};
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_TOKEN:
            o.token_uri = optarg;
            break;
        case OPT_REQUEST:
            o.request = optarg;
            break;
        case OPT_KEY_TYPE:
            if (cli_key_type(optarg, &o.key_type) < 0)
                return PA_E_USAGE;
            break;
        case OPT_PSS:
            o.pss = true;
            break;
        case OPT_NO_WAIT:
            o.no_wait = true;
            break;
        case OPT_ONLY_BLANK:
            o.only_blank = true;
            break;
        case OPT_REPLACES:
            if (parse_replaces(optarg, &o.replaces_certificate_id, &o.replaces_order_id) < 0)
                return cli_fail(PA_E_USAGE, "a certificate id, or order:ORDER_ID", "--replaces");
            break;
        case OPT_JSON:
            cli->json = true;
            break;
        case 'h':
            cli_usage(SYN_ENROLL);
            return 0;
        default:
            return cli_fail(PA_E_USAGE, NULL, "enroll");
        }
    }
    if (!o.token_uri && cli->cfg->token_uri)
        o.token_uri = cli->cfg->token_uri;
    if (!o.token_uri || !o.request || optind != argc)
        return cli_fail(PA_E_USAGE, "--token URI (or token.uri) and --request FILE are required",
                        "enroll");
    if (o.pss && (o.key_type == TOK_KEY_EC_P256 || o.key_type == TOK_KEY_EC_P384))
        return cli_fail(PA_E_USAGE, "--pss needs an RSA key", "enroll");
    enroll_handle_stop_signals();
    return enroll_start(cli, &o, NULL);
}

int cmd_resume(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"all", no_argument, NULL, OPT_ALL},
        {"pin-source", required_argument, NULL, OPT_PIN_SOURCE},
        {"no-wait", no_argument, NULL, OPT_NO_WAIT},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct enroll_opts o = {.key_type = TOK_KEY_RSA2048};
    struct job **list = NULL;
    char err[512] = "";
    bool all = false;
    size_t n = 0;
    int c, r, worst = 0;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_ALL:
            all = true;
            break;
        case OPT_PIN_SOURCE:
            o.pin_source = optarg;
            break;
        case OPT_NO_WAIT:
            o.no_wait = true;
            break;
        case OPT_JSON:
            cli->json = true;
            break;
        case 'h':
            cli_usage(SYN_RESUME);
            return 0;
        default:
            return cli_fail(PA_E_USAGE, NULL, "resume");
        }
    }
    if (!((all && optind == argc) || (!all && optind == argc - 1)))
        return cli_fail(PA_E_USAGE, "name one JOB, or --all", "resume");
    enroll_handle_stop_signals();
    if (!all)
        return enroll_resume(cli, argv[optind], &o);
    r = job_list(cli_state_dir(cli), &list, &n, err, sizeof(err));
    if (r < 0)
        return cli_fail(r, err, "jobs in %s", cli_state_dir(cli));
    if (err[0])
        fprintf(stderr, "pkio-agent: warning: %s; tell the officer in charge\n", err);
    /* Every unfinished job, each independent: one failure does not stop the others. */
    for (size_t i = 0; i < n; i++) {
        if (job_state_terminal(list[i]->state))
            continue;
        r = enroll_resume(cli, list[i]->id, &o);
        if (r < 0 && (worst == 0 || worst == PA_E_PENDING))
            worst = r;
    }
    job_list_free(list, n);
    return worst;
}

int cmd_cancel(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"pin-source", required_argument, NULL, OPT_PIN_SOURCE},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct enroll_opts o = {.key_type = TOK_KEY_RSA2048};
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == OPT_PIN_SOURCE) {
            o.pin_source = optarg;
        } else if (c == OPT_JSON) {
            cli->json = true;
        } else if (c == 'h') {
            cli_usage("cancel JOB [--pin-source FILE] [--json]");
            return 0;
        } else {
            return cli_fail(PA_E_USAGE, NULL, "cancel");
        }
    }
    if (optind != argc - 1)
        return cli_fail(PA_E_USAGE, "name one JOB", "cancel");
    return enroll_cancel(cli, argv[optind], &o);
}

static json_object *job_json(const struct job *j)
{
    char *s = job_to_json(j);
    json_object *o = s ? json_tokener_parse(s) : NULL;

    free(s);
    return o ? o : json_object_new_object();
}

static void print_job(const struct job *j)
{
    char when[32];
    struct tm tm;

    printf("job %s: %s\n", j->id, job_state_name(j->state));
    printf("  token     '%s' serial %s (%s %s)\n", j->token_label, j->token_serial,
           j->token_manufacturer, j->token_model);
    if (j->key_id_hex[0])
        printf("  key       %s id %s (%s)%s\n", j->key_type, j->key_id_hex, j->key_label,
               j->custody_ok ? ", custody checked" : "");
    if (j->custody)
        printf("  custody   %s\n", j->custody);
    if (j->keygen_at)
        printf("  keygen    %s on a %s%s slot, module %s\n",
               j->keygen_mechanism[0] ? j->keygen_mechanism : "(interrupted before the answer)",
               j->slot_hw ? "hardware" : "software", j->slot_removable ? ", removable" : "",
               j->module_path ? j->module_path : "?");
    if (j->request_path)
        printf("  request   %s (%s)\n", j->request_path, j->product ? j->product : "");
    if (j->order_id)
        printf("  order     %ld: %s\n", j->order_id, j->order_status);
    if (j->certificate_id)
        printf("  cert      id %ld serial %s\n", j->certificate_id, j->cert_serial);
    if (j->replaces_certificate_id || j->replaces_order_id) {
        printf("  replaces  %s %ld", j->replaces_certificate_id ? "certificate" : "order",
               j->replaces_certificate_id ? j->replaces_certificate_id : j->replaces_order_id);
        if (j->old_revoked)
            printf(" (revoked)\n");
        else if (strcmp(j->revoke_status, "pending") == 0)
            printf(" (NOT revoked yet: revocation request %ld awaits approval)\n",
                   j->revoke_request_id);
        else if (strcmp(j->revoke_status, "rejected") == 0)
            printf(" (NOT revoked: revocation request %ld rejected)\n", j->revoke_request_id);
        else
            printf("%s\n", j->revoke_attempt_at ? " (revocation sent, answer not seen yet)" : "");
    }
    if (j->last_error)
        printf("  error     %s\n", j->last_error);
    for (size_t i = 0; i < j->nhistory; i++) {
        gmtime_r(&j->history[i].at, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        printf("  %s %-10s %s\n", when, job_state_name(j->history[i].state),
               j->history[i].note ? j->history[i].note : "");
    }
}

int cmd_status(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct job **list = NULL, *one = NULL;
    char err[512] = "";
    size_t n = 0;
    int c, r;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == OPT_JSON) {
            cli->json = true;
        } else if (c == 'h') {
            cli_usage("status [JOB] [--json]");
            return 0;
        } else {
            return cli_fail(PA_E_USAGE, NULL, "status");
        }
    }
    if (optind < argc - 1)
        return cli_fail(PA_E_USAGE, "at most one JOB", "status");
    if (optind == argc - 1) {
        r = job_load(cli_state_dir(cli), argv[optind], &one, err, sizeof(err));
        if (r < 0)
            return cli_fail(r, err, "job %s", argv[optind]);
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
    r = job_list(cli_state_dir(cli), &list, &n, err, sizeof(err));
    if (r < 0)
        return cli_fail(r, err, "jobs in %s", cli_state_dir(cli));
    if (err[0]) /* a corrupt record is set aside and named; the others are still listed */
        fprintf(stderr, "pkio-agent: warning: %s\n", err);
    if (cli->json) {
        json_object *o = json_object_new_object(), *a = json_object_new_array();

        for (size_t i = 0; i < n; i++)
            json_object_array_add(a, job_json(list[i]));
        json_object_object_add(o, "jobs", a);
        cli_print_json(o);
    } else {
        if (n == 0)
            printf("no jobs in %s\n", cli_state_dir(cli));
        for (size_t i = 0; i < n; i++) {
            const struct job *j = list[i];

            printf("%.12s  %-10s token %-16s serial %-16s order %-8ld %s\n", j->id,
                   job_state_name(j->state), j->token_label, j->token_serial, j->order_id,
                   j->order_status);
        }
    }
    job_list_free(list, n);
    return 0;
}

int cmd_audit(struct cli *cli, int argc, char **argv)
{
    char err[512] = "";
    long lines = 0, bad = 0;
    int r;

    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        cli_usage("audit verify [--json]");
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "verify") != 0 || argc > 3 ||
        (argc == 3 && strcmp(argv[2], "--json") != 0))
        return cli_fail(PA_E_USAGE, "audit verify [--json]", "audit");
    if (argc == 3)
        cli->json = true;
    r = audit_verify(cli_state_dir(cli), &lines, &bad, err, sizeof(err));
    if (cli->json) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "intact", json_object_new_boolean(r == 0));
        json_object_object_add(o, "lines", json_object_new_int64(lines));
        json_object_object_add(o, "first_bad_line", r == 0 ? NULL : json_object_new_int64(bad));
        json_object_object_add(o, "reason", r == 0 ? NULL : json_object_new_string(err));
        cli_print_json(o);
    }
    if (r < 0)
        return cli_fail(r, err, "audit log %s/audit.log: line %ld", cli_state_dir(cli), bad);
    if (!cli->json)
        printf("audit log intact: %ld line%s\n", lines, lines == 1 ? "" : "s");
    return 0;
}
