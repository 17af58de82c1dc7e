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

enum { OPT_JSON = 0x100, OPT_REQUEST, OPT_CSR, OPT_FORMAT };

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

int cmd_validate(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"request", required_argument, NULL, OPT_REQUEST},
        {"csr", required_argument, NULL, OPT_CSR},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *request = NULL, *csr = NULL;
    struct req *req = NULL;
    int c, r;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == OPT_REQUEST) {
            request = optarg;
        } else if (c == OPT_CSR) {
            csr = optarg;
        } else if (c == OPT_JSON) {
            cli->json = true;
        } else if (c == 'h') {
            cli_usage("validate --request FILE [--csr FILE] [--json]");
            return 0;
        } else {
            return cli_fail(PA_E_USAGE, NULL, "validate");
        }
    }
    if (!request || optind != argc)
        return cli_fail(PA_E_USAGE, N_("--request FILE is required"), "validate");
    r = cli_prepare_request(cli, request, csr, &req);
    if (r < 0)
        return r;
    if (cli->json) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "valid", json_object_new_boolean(1));
        json_object_object_add(o, "product", json_object_new_string(cli->cfg->api_product));
        cli_print_json(o);
    } else {
        printf(csr ? _("%s: valid %s order (with CSR)\n")
                   : _("%s: valid %s order (CSR not checked: add --csr FILE)\n"),
               request, cli->cfg->api_product);
    }
    req_free(req);
    return 0;
}

int cmd_order(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"request", required_argument, NULL, OPT_REQUEST},
        {"csr", required_argument, NULL, OPT_CSR},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *request = NULL, *csr = NULL;
    struct cc_order_result res;
    struct cc_client *cc = NULL;
    struct req *req = NULL;
    char *body = NULL;
    int c, r;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == OPT_REQUEST) {
            request = optarg;
        } else if (c == OPT_CSR) {
            csr = optarg;
        } else if (c == OPT_JSON) {
            cli->json = true;
        } else if (c == 'h') {
            cli_usage("order --request FILE --csr FILE [--json]");
            return 0;
        } else {
            return cli_fail(PA_E_USAGE, NULL, "order");
        }
    }
    if (!request || !csr || optind != argc)
        return cli_fail(PA_E_USAGE, N_("--request FILE and --csr FILE are required"), "order");
    /* Nothing leaves the machine unless the whole order is valid. */
    r = cli_prepare_request(cli, request, csr, &req);
    if (r < 0)
        return r;
    body = req_to_json(req);
    if (!body) {
        r = cli_fail(PA_E_NOMEM, NULL, "order");
        goto out;
    }
    r = cli_cc_client(cli, &cc);
    if (r < 0)
        goto out;
    r = cc_place_order(cc, cli->cfg->api_product, body, NULL, NULL, &res);
    if (r < 0) {
        if (cc_order_maybe_placed(cc))
            cli_fail(r, cc_last_error(cc),
                     "the order may have been placed; check CertCentral (or 'pkio-agent "
                     "enroll'/'resume', which look it up) before ordering again; order");
        else
            cli_fail(r, cc_last_error(cc), "order");
        goto out;
    }
    if (cli->json) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "order_id", json_object_new_int64(res.id));
        json_object_object_add(o, "certificate_id",
                               res.certificate_id ? json_object_new_int64(res.certificate_id)
                                                  : NULL);
        json_object_object_add(o, "request_status", json_object_new_string(res.request_status));
        cli_print_json(o);
    } else {
        printf(_("order %ld placed"), res.id);
        if (res.request_status[0])
            printf(_(" (request %s)"), res.request_status);
        if (res.certificate_id)
            printf(_("; certificate id %ld"), res.certificate_id);
        putchar('\n');
    }
out:
    if (body && req_has_card(req))
        secret_wipe(body, strlen(body));
    free(body);
    cc_client_free(cc);
    req_free(req);
    return r;
}

int cmd_order_status(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cc_order_info info;
    struct cc_client *cc = NULL;
    long id = 0;
    int c, r;

    memset(&info, 0, sizeof(info));
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == OPT_JSON) {
            cli->json = true;
        } else if (c == 'h') {
            cli_usage("order-status ORDER_ID [--json]");
            return 0;
        } else {
            return cli_fail(PA_E_USAGE, NULL, "order-status");
        }
    }
    if (optind + 1 != argc || parse_id(argv[optind], &id) < 0)
        return cli_fail(PA_E_USAGE, N_("one numeric ORDER_ID"), "order-status");
    r = cli_cc_client(cli, &cc);
    if (r < 0)
        return r;
    r = cc_order_info(cc, id, &info);
    if (r < 0) {
        cli_fail(r, cc_last_error(cc), "order %ld", id);
        goto out;
    }
    if (cli->json) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "order_id", json_object_new_int64(info.id));
        json_object_object_add(o, "status", json_object_new_string(info.status));
        json_object_object_add(o, "state",
                               json_object_new_string(info.st == CC_ST_ISSUED    ? "issued"
                                                      : info.st == CC_ST_WAITING ? "waiting"
                                                      : info.st == CC_ST_FAILED  ? "failed"
                                                                                 : "unknown"));
        json_object_object_add(o, "reason", json_object_new_string(info.reason));
        json_object_object_add(o, "certificate_id",
                               info.certificate_id ? json_object_new_int64(info.certificate_id)
                                                   : NULL);
        cli_print_json(o);
    } else {
        printf(_("order %ld: %s"), info.id, info.status);
        if (info.reason[0] && strcmp(info.reason, info.status) != 0)
            printf(" (%s)", _(info.reason));
        if (info.certificate_id)
            printf(_("; certificate id %ld"), info.certificate_id);
        putchar('\n');
    }
    /* The exit status says it too, for scripts: issued 0, waiting 13, ended badly 10. */
    switch (info.st) {
    case CC_ST_ISSUED:
        r = 0;
        break;
    case CC_ST_WAITING:
        r = PA_E_PENDING;
        break;
    case CC_ST_FAILED:
        r = PA_E_CA_REJECTED;
        break;
    case CC_ST_UNKNOWN:
    default:
        r = cli_fail(PA_E_CA_PROTOCOL, info.status,
                     "order %ld has a status pkio-agent does "
                     "not know",
                     id);
        break;
    }
out:
    cc_order_info_clear(&info);
    cc_client_free(cc);
    return r;
}

int cmd_download(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, OPT_FORMAT},
        {"output", required_argument, NULL, 'o'},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *format = "pem_noroot", *output = NULL;
    struct cc_client *cc = NULL;
    char *pem = NULL;
    size_t len = 0;
    long id = 0;
    int c, r;

    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        if (c == OPT_FORMAT) {
            format = optarg;
            if (strcmp(format, "pem_noroot") != 0 && strcmp(format, "pem_all") != 0)
                return cli_fail(PA_E_USAGE, N_("pem_noroot or pem_all"), "--format");
        } else if (c == 'o') {
            output = optarg;
        } else if (c == OPT_JSON) {
            cli->json = true;
        } else if (c == 'h') {
            cli_usage("download CERT_ID [--format pem_noroot|pem_all] [-o FILE] [--json]");
            return 0;
        } else {
            return cli_fail(PA_E_USAGE, NULL, "download");
        }
    }
    if (optind + 1 != argc || parse_id(argv[optind], &id) < 0)
        return cli_fail(PA_E_USAGE, N_("one numeric CERT_ID"), "download");
    r = cli_cc_client(cli, &cc);
    if (r < 0)
        return r;
    r = cc_download(cc, id, format, &pem, &len);
    if (r < 0) {
        cli_fail(r, cc_last_error(cc), "certificate %ld", id);
        goto out;
    }
    if (output) {
        r = fs_write_atomic(output, pem, len, 0644);
        if (r < 0) {
            cli_fail(r, NULL, "writing %s", output);
            goto out;
        }
    }
    if (cli->json) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "certificate_id", json_object_new_int64(id));
        json_object_object_add(o, "format", json_object_new_string(format));
        json_object_object_add(o, "pem", json_object_new_string_len(pem, (int)len));
        if (output)
            json_object_object_add(o, "output", json_object_new_string(output));
        cli_print_json(o);
    } else if (!output) {
        fwrite(pem, 1, len, stdout);
    }
out:
    free(pem);
    cc_client_free(cc);
    return r;
}
