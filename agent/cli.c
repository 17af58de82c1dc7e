/* SPDX-License-Identifier: Apache-2.0 */
#include "cli.h"

#include "certcentral.h"
#include "config.h"
#include "csr.h"
#include "fsutil.h"
#include "http.h"
#include "pa_err.h"
#include "request.h"
#include "secret.h"
#include "tok.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PKIO_DEFAULT_MODULE
#define PKIO_DEFAULT_MODULE "/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so"
#endif

#define PIN_MAX 256
#define CSR_MAX (64 * 1024)

/* What the officer should do next, per error. */
static const char *hint(int err)
{
    switch (err) {
    case PA_E_USAGE:
        return "see 'pkio-agent --help'";
    case PA_E_MODULE:
        return "install the token's PKCS#11 module or name it with --module PATH";
    case PA_E_TOKEN_NOT_FOUND:
        return "check that the token is inserted; 'pkio-agent tokens' lists what is present";
    case PA_E_TOKEN_AMBIGUOUS:
        return "name one token by serial=... in the URI";
    case PA_E_TOKEN_GONE:
        return "the token was removed; insert the same token and run the command again";
    case PA_E_PIN_INCORRECT:
        return "no further attempt was made; check the PIN before trying again, the token counts "
               "failed attempts";
    case PA_E_PIN_LOCKED:
        return "pkio-agent will not try a PIN on this token; have the PIN reset (unblocked) first";
    case PA_E_PIN_UNAVAILABLE:
        return "give pin-source=FILE in the token URI or run on a terminal";
    case PA_E_UNSUPPORTED:
        return "choose another --key-type or another token";
    case PA_E_CUSTODY:
        return "use a key generated on the token by 'pkio-agent keygen'";
    case PA_E_CONFIG:
        return "fix the file named above (secret files must be mode 0600)";
    case PA_E_REQUEST:
        return "fix the request file; nothing was sent";
    case PA_E_CA_UNAVAILABLE:
        return "try again later; 'pkio-agent order-status' shows an order's state";
    default:
        return NULL;
    }
}

int cli_fail(int err, const char *detail, const char *fmt, ...)
{
    const char *h = hint(err);
    va_list ap;

    fputs("pkio-agent: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, ": %s", detail && *detail ? detail : pa_err_str(err));
    if (h)
        fprintf(stderr, "; %s", h);
    fputc('\n', stderr);
    return err;
}

const char *cli_module(const struct cli *cli)
{
    if (cli->module)
        return cli->module;
    if (cli->cfg && cli->cfg->token_module)
        return cli->cfg->token_module;
    return PKIO_DEFAULT_MODULE;
}

const char *cli_state_dir(const struct cli *cli)
{
    if (cli->state_dir)
        return cli->state_dir;
    return cli->cfg->state_dir;
}

int cli_load_config(struct cli *cli)
{
    char err[512] = "";
    int r = cfg_load(cli->config, &cli->cfg, err, sizeof(err));

    if (r < 0)
        return cli_fail(r, err, "configuration");
    return 0;
}

int cli_cc_client(const struct cli *cli, struct cc_client **ret)
{
    struct http_opts opts = {
        .ca_bundle = cli->cfg->api_ca_bundle,
        .connect_timeout_s = cli->cfg->api_connect_timeout_s,
        .timeout_s = cli->cfg->api_timeout_s,
        .max_body = 4u << 20,
        .user_agent = NULL,
    };
    struct secret *key = NULL;
    char err[512] = "";
    int r;

    r = cfg_api_key(cli->cfg, &key, err, sizeof(err));
    if (r < 0)
        return cli_fail(r, err, "CertCentral API key");
    r = cc_client_new(cli->cfg->api_url, key, &opts, ret);
    secret_free(key);
    if (r < 0)
        return cli_fail(r, NULL, "CertCentral client for %s", cli->cfg->api_url);
    return 0;
}

int cli_key_type(const char *s, enum tok_key_type *ret)
{
    if (tok_key_type_parse(s, ret) < 0)
        return cli_fail(PA_E_USAGE, "use rsa:2048, rsa:3072, rsa:4096, ec:p256 or ec:p384",
                        "--key-type %s", s);
    return 0;
}

void cli_print_json(json_object *obj)
{
    json_object_object_add(obj, "version", json_object_new_int(1));
    puts(json_object_to_json_string_ext(obj,
                                        JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(obj);
}

void cli_usage(const char *synopsis)
{
    printf("usage: pkio-agent [global options] %s\n", synopsis);
}

/* Get the PIN for a token: pin-source file, then the PIN pad, then a no-echo prompt. */
static int get_pin(const struct cli *cli, const struct tok_uri *u, const struct tok_info *info,
                   struct secret **ret, bool *ret_pinpad)
{
    char prompt[128];
    int r;

    *ret = NULL;
    *ret_pinpad = false;
    if (u->pin_source) {
        r = secret_from_file(u->pin_source, PIN_MAX, ret);
        if (r == PA_E_CONFIG)
            return cli_fail(PA_E_CONFIG, "missing, empty, too long, or readable by group/others",
                            "PIN file %s", u->pin_source);
        if (r < 0)
            return cli_fail(r, NULL, "PIN file %s", u->pin_source);
        return 0;
    }
    if (u->pin_value)
        return secret_from_mem(u->pin_value->buf, u->pin_value->len, ret);
    if (cli->pin_fd >= 0) {
        r = secret_from_fd(cli->pin_fd, PIN_MAX, ret);
        if (r < 0)
            return cli_fail(r, "nothing to read", "PIN descriptor %d", cli->pin_fd);
        return 0;
    }
    if (info->protected_auth_path) {
        fprintf(stderr, "Enter the PIN on the reader's PIN pad for token '%s'.\n", info->label);
        *ret_pinpad = true;
        return 0;
    }
    snprintf(prompt, sizeof(prompt), "PIN for token '%s' (serial %s): ", info->label, info->serial);
    r = secret_prompt(prompt, PIN_MAX, ret);
    if (r < 0)
        return cli_fail(r, NULL, "token '%s'", info->label);
    return 0;
}

/* One line listing the candidates of an ambiguous selection. */
static void list_candidates(char *buf, size_t len, const struct tok_info *m, size_t n)
{
    size_t pos = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n && pos + 1 < len; i++) {
        int w = snprintf(buf + pos, len - pos, "%sserial %s ('%s', %s)", i ? ", " : "", m[i].serial,
                         m[i].label, m[i].model);
        if (w < 0)
            break;
        pos += (size_t)w;
    }
}

int cli_open_token(const struct cli *cli, const char *uri_text, bool login,
                   struct tok_ctx **ret_ctx, struct tok_token **ret_tok, struct tok_uri *ret_uri)
{
    struct tok_uri u;
    struct tok_ctx *ctx = NULL;
    struct tok_token *tok = NULL;
    struct tok_info *matches = NULL;
    struct secret *pin = NULL;
    bool pinpad = false;
    size_t nmatch = 0;
    int r;

    *ret_ctx = NULL;
    *ret_tok = NULL;
    memset(&u, 0, sizeof(u));
    r = tok_uri_parse(uri_text, false, &u);
    if (r < 0) {
        /* Never echo the URI: it may carry a PIN the user should not have put there. */
        if (strstr(uri_text, "pin-value"))
            return cli_fail(PA_E_USAGE,
                            "pin-value is not accepted on the command line (it "
                            "would show in the process list)",
                            "token URI");
        return cli_fail(PA_E_USAGE, "not a valid RFC 7512 PKCS#11 URI", "token URI");
    }
    r = tok_open(cli_module(cli), &ctx);
    if (r < 0) {
        cli_fail(r, tok_detail(), "PKCS#11 module %s", cli_module(cli));
        goto out;
    }
    r = tok_select(ctx, &u, &tok, &matches, &nmatch);
    if (r == PA_E_TOKEN_AMBIGUOUS) {
        char list[1024];

        list_candidates(list, sizeof(list), matches, nmatch);
        cli_fail(r, list, "%zu tokens match %s", nmatch, uri_text);
        goto out;
    }
    if (r < 0) {
        cli_fail(r, tok_detail(), "token %s", uri_text);
        goto out;
    }
    if (login) {
        struct tok_info info;

        r = tok_token_info(tok, &info);
        if (r == 0)
            r = tok_login_precheck(&info); /* refuse before even asking for a PIN */
        if (r == 0 && info.login_required)
            r = get_pin(cli, &u, &info, &pin, &pinpad);
        else if (r < 0)
            cli_fail(r, tok_detail(), "login to token '%s'", info.label);
        if (r < 0)
            goto out;
        if (info.login_required && !pin && !pinpad) {
            r = PA_E_PIN_UNAVAILABLE;
            goto out;
        }
        r = tok_login(tok, pin);
        if (r < 0) {
            cli_fail(r, tok_detail(), "login to token '%s' (serial %s)", info.label, info.serial);
            goto out;
        }
    }
    *ret_ctx = ctx;
    *ret_tok = tok;
    ctx = NULL;
    tok = NULL;
    if (ret_uri) {
        *ret_uri = u;
        memset(&u, 0, sizeof(u));
    }
out:
    secret_free(pin);
    free(matches);
    tok_uri_clear(&u);
    tok_token_close(tok);
    tok_close(ctx);
    return r;
}

/* All validation errors on one line, and as JSON when asked. */
static int report_invalid(const struct cli *cli, const char *file, const struct req_errors *errs)
{
    char line[2048];

    req_errors_format(errs, line, sizeof(line));
    if (cli->json) {
        json_object *o = json_object_new_object(), *a = json_object_new_array();

        for (size_t i = 0; i < errs->n; i++) {
            json_object *e = json_object_new_object();

            json_object_object_add(e, "path", json_object_new_string(errs->v[i].path));
            json_object_object_add(e, "message", json_object_new_string(errs->v[i].msg));
            json_object_array_add(a, e);
        }
        json_object_object_add(o, "valid", json_object_new_boolean(0));
        json_object_object_add(o, "errors", a);
        cli_print_json(o);
    }
    return cli_fail(PA_E_REQUEST, line, "request %s: %zu problem%s", file, errs->n,
                    errs->n == 1 ? "" : "s");
}

/*
 * Load a request, merge the configured defaults, add the CSR (if any) and validate. On
 * success *ret holds the request ready to send. Reports every failure once.
 */
int cli_prepare_request(const struct cli *cli, const char *file, const char *csr_file,
                        struct req **ret)
{
    struct req_errors errs = {0};
    struct req *req = NULL;
    char err[512] = "", *csr = NULL;
    size_t csr_len = 0;
    int r;

    r = req_load_file(file, &req, err, sizeof(err));
    if (r < 0)
        return cli_fail(r, err, "request %s", file);
    r = req_merge_defaults(req, cli->cfg);
    if (r < 0) {
        cli_fail(r, NULL, "merging order_defaults into %s", file);
        goto out;
    }
    if (csr_file) {
        r = fs_read_file(csr_file, CSR_MAX, &csr, &csr_len);
        if (r < 0) {
            cli_fail(r, NULL, "reading CSR %s", csr_file);
            goto out;
        }
        r = csr_check_pem(csr, NULL, err, sizeof(err));
        if (r < 0) {
            cli_fail(r, err, "CSR %s", csr_file);
            goto out;
        }
        r = req_set_csr(req, cli->cfg, csr);
        if (r < 0) {
            cli_fail(r, NULL, "adding the CSR to %s", file);
            goto out;
        }
    }
    r = req_validate(req, cli->cfg, csr_file != NULL, &errs);
    if (r == PA_E_REQUEST) {
        report_invalid(cli, file, &errs);
        goto out;
    }
    if (r < 0) {
        cli_fail(r, NULL, "validating %s", file);
        goto out;
    }
    *ret = req;
    req = NULL;
out:
    req_errors_clear(&errs);
    free(csr);
    req_free(req);
    return r;
}
