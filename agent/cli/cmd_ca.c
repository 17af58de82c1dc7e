/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_ca.c - the CertCentral commands: validate, order, order-status, download.
 */
#include "certcentral.h"
#include "cli.h"
#include "config.h"
#include "fsutil.h"
#include "i18n.h"
#include "pa_err.h"
#include "request.h"
#include "secret.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_REQUEST = CLI_OPT_FIRST, OPT_CSR, OPT_FORMAT };

/* Parse a positive decimal id. */
static int parse_id(const char *s, long *ret)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || !*s || *end || v <= 0)
        return PA_E_USAGE;
    *ret = v;
    return 0;
}

struct ca_args {
    const char *request, *csr, *format, *output;
};

/* The options of validate, order and download (each takes only those it lists). */
static int ca_option(void *arg, int c, const char *val)
{
    struct ca_args *a = arg;

    switch (c) {
    case OPT_REQUEST:
        a->request = val;
        return 0;
    case OPT_CSR:
        a->csr = val;
        return 0;
    case OPT_FORMAT:
        a->format = val;
        if (strcmp(val, "pem_noroot") != 0 && strcmp(val, "pem_all") != 0)
            return cli_fail(PA_E_USAGE, N_("pem_noroot or pem_all"), "--format");
        return 0;
    case 'o':
        a->output = val;
        return 0;
    default:
        return CLI_OPT_UNKNOWN;
    }
}

int cmd_validate(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"request", required_argument, NULL, OPT_REQUEST},
        {"csr", required_argument, NULL, OPT_CSR},
        CLI_OPTS_END,
    };
    static const struct cli_getopt how = {
        .command = "validate", .longopts = opts, .option = ca_option};
    struct ca_args a = {0};
    struct req *req = NULL;
    int r = cli_getopt(cli, &how, &a, argc, argv);

    if (r != 0)
        return r < 0 ? r : 0;
    if (!a.request || optind != argc)
        return cli_fail(PA_E_USAGE, N_("--request FILE is required"), "validate");
    r = cli_prepare_request(cli, a.request, a.csr, &req);
    if (r < 0)
        return r;
    if (cli->json) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "valid", json_object_new_boolean(1));
        json_object_object_add(o, "product", json_object_new_string(cli->cfg->api_product));
        cli_print_json(o);
    } else {
        printf(a.csr ? _("%s: valid %s order (with CSR)\n")
                     : _("%s: valid %s order (CSR not checked: add --csr FILE)\n"),
               a.request, cli->cfg->api_product);
    }
    req_free(req);
    return 0;
}

static void order_print(const struct cli *cli, const struct cc_order_result *res)
{
    if (cli->json) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "order_id", json_object_new_int64(res->id));
        json_object_object_add(o, "certificate_id",
                               res->certificate_id ? json_object_new_int64(res->certificate_id)
                                                   : NULL);
        json_object_object_add(o, "request_status", json_object_new_string(res->request_status));
        cli_print_json(o);
        return;
    }
    printf(_("order %ld placed"), res->id);
    if (res->request_status[0])
        printf(_(" (request %s)"), res->request_status);
    if (res->certificate_id)
        printf(_("; certificate id %ld"), res->certificate_id);
    putchar('\n');
}

/* Place the order (body) once; a failure says whether it may have been placed after all. */
static int order_place(const struct cli *cli, const char *body, struct cc_order_result *res)
{
    struct cc_client *cc = NULL;
    int r = cli_cc_client(cli, &cc);

    if (r < 0)
        return r;
    r = cc_place_order(cc, cli->cfg->api_product, body, NULL, NULL, res);
    if (r < 0 && cc_order_maybe_placed(cc))
        cli_fail(r, cc_last_error(cc),
                 "the order may have been placed; check CertCentral (or 'pkio-agent "
                 "enroll'/'resume', which look it up) before ordering again; order");
    else if (r < 0)
        cli_fail(r, cc_last_error(cc), "order");
    cc_client_free(cc);
    return r;
}

int cmd_order(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"request", required_argument, NULL, OPT_REQUEST},
        {"csr", required_argument, NULL, OPT_CSR},
        CLI_OPTS_END,
    };
    static const struct cli_getopt how = {
        .command = "order", .longopts = opts, .option = ca_option};
    struct ca_args a = {0};
    struct cc_order_result res;
    struct req *req = NULL;
    char *body = NULL;
    int r = cli_getopt(cli, &how, &a, argc, argv);

    if (r != 0)
        return r < 0 ? r : 0;
    if (!a.request || !a.csr || optind != argc)
        return cli_fail(PA_E_USAGE, N_("--request FILE and --csr FILE are required"), "order");
    /* Nothing leaves the machine unless the whole order is valid. */
    r = cli_prepare_request(cli, a.request, a.csr, &req);
    if (r < 0)
        return r;
    body = req_to_json(req);
    if (!body)
        r = cli_fail(PA_E_NOMEM, NULL, "order");
    else
        r = order_place(cli, body, &res);
    if (r == 0)
        order_print(cli, &res);
    if (body && req_has_card(req))
        secret_wipe(body, strlen(body));
    free(body);
    req_free(req);
    return r;
}

static const char *order_state_name(enum cc_status st)
{
    return st == CC_ST_ISSUED    ? "issued"
           : st == CC_ST_WAITING ? "waiting"
           : st == CC_ST_FAILED  ? "failed"
                                 : "unknown";
}

static void order_info_print(const struct cli *cli, const struct cc_order_info *info)
{
    if (cli->json) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "order_id", json_object_new_int64(info->id));
        json_object_object_add(o, "status", json_object_new_string(info->status));
        json_object_object_add(o, "state", json_object_new_string(order_state_name(info->st)));
        json_object_object_add(o, "reason", json_object_new_string(info->reason));
        json_object_object_add(o, "certificate_id",
                               info->certificate_id ? json_object_new_int64(info->certificate_id)
                                                    : NULL);
        cli_print_json(o);
        return;
    }
    printf(_("order %ld: %s"), info->id, info->status);
    if (info->reason[0] && strcmp(info->reason, info->status) != 0)
        printf(" (%s)", _(info->reason));
    if (info->certificate_id)
        printf(_("; certificate id %ld"), info->certificate_id);
    putchar('\n');
}

/* The exit status says it too, for scripts: issued 0, waiting 13, ended badly 10. */
static int order_info_status(const struct cc_order_info *info, long id)
{
    switch (info->st) {
    case CC_ST_ISSUED:
        return 0;
    case CC_ST_WAITING:
        return PA_E_PENDING;
    case CC_ST_FAILED:
        return PA_E_CA_REJECTED;
    case CC_ST_UNKNOWN:
    default:
        return cli_fail(PA_E_CA_PROTOCOL, info->status,
                        "order %ld has a status pkio-agent does "
                        "not know",
                        id);
    }
}

/* The one numeric id operand of order-status and download; else the usage error (reported). */
static int one_id(int argc, char **argv, const char *what, const char *cmd, long *id)
{
    if (optind + 1 != argc || parse_id(argv[optind], id) < 0)
        return cli_fail(PA_E_USAGE, what, "%s", _(cmd));
    return 0;
}

int cmd_order_status(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {CLI_OPTS_END};
    static const struct cli_getopt how = {.command = "order-status", .longopts = opts};
    struct cc_order_info info;
    struct cc_client *cc = NULL;
    long id = 0;
    int r;

    memset(&info, 0, sizeof(info));
    r = cli_getopt(cli, &how, NULL, argc, argv);
    if (r != 0)
        return r < 0 ? r : 0;
    r = one_id(argc, argv, N_("one numeric ORDER_ID"), "order-status", &id);
    if (r == 0)
        r = cli_cc_client(cli, &cc);
    if (r < 0)
        return r;
    r = cc_order_info(cc, id, &info);
    if (r < 0) {
        cli_fail(r, cc_last_error(cc), "order %ld", id);
    } else {
        order_info_print(cli, &info);
        r = order_info_status(&info, id);
    }
    cc_order_info_clear(&info);
    cc_client_free(cc);
    return r;
}

static void download_print(const struct cli *cli, const struct ca_args *a, long id, const char *pem,
                           size_t len)
{
    if (cli->json) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "certificate_id", json_object_new_int64(id));
        json_object_object_add(o, "format", json_object_new_string(a->format));
        json_object_object_add(o, "pem", json_object_new_string_len(pem, (int)len));
        if (a->output)
            json_object_object_add(o, "output", json_object_new_string(a->output));
        cli_print_json(o);
    } else if (!a->output) {
        fwrite(pem, 1, len, stdout);
    }
}

int cmd_download(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, OPT_FORMAT},
        {"output", required_argument, NULL, 'o'},
        CLI_OPTS_END,
    };
    static const struct cli_getopt how = {
        .command = "download", .shortopts = "ho:", .longopts = opts, .option = ca_option};
    struct ca_args a = {.format = "pem_noroot"};
    struct cc_client *cc = NULL;
    char *pem = NULL;
    size_t len = 0;
    long id = 0;
    int r = cli_getopt(cli, &how, &a, argc, argv);

    if (r != 0)
        return r < 0 ? r : 0;
    r = one_id(argc, argv, N_("one numeric CERT_ID"), "download", &id);
    if (r == 0)
        r = cli_cc_client(cli, &cc);
    if (r < 0)
        return r;
    r = cc_download(cc, id, a.format, &pem, &len);
    if (r < 0)
        cli_fail(r, cc_last_error(cc), "certificate %ld", id);
    if (r == 0 && a.output) {
        r = fs_write_atomic(a.output, pem, len, 0644);
        if (r < 0)
            cli_fail(r, NULL, "writing %s", a.output);
    }
    if (r == 0)
        download_print(cli, &a, id, pem, len);
    free(pem);
    cc_client_free(cc);
    return r;
}
