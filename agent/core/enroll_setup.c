/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enroll_setup.c - what the core needs from outside the state machine, made from the
 * configuration alone when the front end does not do it (struct enroll_ui): the CertCentral
 * client, the token opened and logged in with a PIN file, the request loaded and validated.
 */
#include "enroll.h"

#include "enroll_internal.h"

#include "certcentral.h"
#include "config.h"
#include "diag.h"
#include "http.h"
#include "i18n.h"
#include "pa_err.h"
#include "request.h"
#include "secret.h"
#include "tok.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PIN_MAX 256

int enroll_cc_client(const struct cfg *cfg, const char *state_dir, struct cc_client **ret,
                     struct pa_diag *d)
{
    struct http_opts opts = {
        .ca_bundle = cfg->api_ca_bundle,
        .proxy = cfg->api_proxy,
        .connect_timeout_s = cfg->api_connect_timeout_s,
        .timeout_s = cfg->api_timeout_s,
        .max_body = 4u << 20,
        .user_agent = NULL,
    };
    struct secret *key = NULL;
    char err[512] = "";
    int r;

    r = cfg_api_key(cfg, &key, err, sizeof(err));
    if (r < 0)
        return diag_fail(d, r, err, "CertCentral API key");
    r = cc_client_new(cfg->api_url, key, &opts, ret);
    secret_free(key);
    if (r < 0)
        return diag_fail(d, r, NULL, "CertCentral client for %s", cfg->api_url);
    /* One rate budget for every process of the station: STATE_DIR/ratebudget. */
    r = cc_client_set_station_budget(*ret, state_dir, cfg->api_rate_share);
    if (r < 0) {
        cc_client_free(*ret);
        *ret = NULL;
        return diag_fail(d, r, NULL, "CertCentral rate budget");
    }
    return 0;
}

/* Log in with the PIN file (the URI's pin-source, else pin_source), or on the PIN pad; a
 * token whose PIN must be changed first is refused: the core never prompts. */
static int login_quietly(struct tok_token *tok, const struct tok_uri *u, const char *pin_source,
                         struct pa_diag *d)
{
    const char *file = u->pin_source ? u->pin_source : pin_source;
    struct secret *pin = NULL;
    struct tok_info info;
    int r = tok_token_info(tok, &info);

    if (r < 0)
        return diag_fail(d, r, tok_detail(), "login to the token");
    r = tok_login_precheck(&info);
    if (r < 0)
        return diag_fail(d, r, tok_detail(), "login to token '%s'", info.label);
    if (!info.login_required)
        return 0;
    if (file) {
        r = secret_from_file(file, PIN_MAX, &pin);
        if (r == PA_E_CONFIG)
            return diag_fail(d, r, N_("missing, empty, too long, or readable by group/others"),
                             "PIN file %s", file);
        if (r < 0)
            return diag_fail(d, r, NULL, "PIN file %s", file);
    } else if (!info.protected_auth_path) {
        return diag_fail(d, PA_E_PIN_UNAVAILABLE, NULL, "token '%s'", info.label);
    }
    r = tok_login(tok, pin); /* NULL: the PIN pad */
    secret_free(pin);
    if (r < 0)
        return diag_fail(d, r, tok_detail(), "login to token '%s' (serial %s)", info.label,
                         info.serial);
    return 0;
}

/* The core's own way to the token (no front end callback). */
static int open_token_quietly(const struct ectx *e, const char *uri, struct tok_ctx **ret_ctx,
                              struct tok_token **ret_tok)
{
    struct tok_ctx *ctx = NULL;
    struct tok_token *tok = NULL;
    struct tok_uri u;
    int r;

    memset(&u, 0, sizeof(u));
    r = tok_uri_parse(uri, false, &u);
    if (r < 0)
        return diag_fail(e->d, PA_E_USAGE, N_("not a valid RFC 7512 PKCS#11 URI"), "token URI");
    r = tok_open(e->env->module, &ctx);
    if (r < 0) {
        diag_fail(e->d, r, tok_detail(), "PKCS#11 module %s", e->env->module);
        goto out;
    }
    r = tok_select(ctx, &u, &tok, NULL, NULL);
    if (r < 0) {
        diag_fail(e->d, r, tok_detail(), "token %s", uri);
        goto out;
    }
    r = login_quietly(tok, &u, e->o->pin_source, e->d);
    if (r < 0)
        goto out;
    *ret_ctx = ctx;
    *ret_tok = tok;
    ctx = NULL;
    tok = NULL;
out:
    tok_uri_clear(&u);
    tok_token_close(tok);
    tok_close(ctx);
    return r;
}

int enroll_open_token(struct ectx *e, const char *uri)
{
    const struct enroll_ui *ui = e->env->ui;

    if (ui && ui->open_token)
        return ui->open_token(ui->arg, e->env->module, uri, e->o->pin_source, &e->tctx, &e->tok,
                              e->d);
    return open_token_quietly(e, uri, &e->tctx, &e->tok);
}

/* The core's own request check (no front end callback): problems go into the detail. */
static int prepare_quietly(struct ectx *e, const char *file, struct req **ret)
{
    struct req_errors errs = {0};
    struct req *req = NULL;
    char err[512] = "";
    int r = req_load_file(file, &req, err, sizeof(err));

    if (r < 0)
        return diag_fail(e->d, r, err, "request %s", file);
    r = req_merge_defaults(req, e->env->cfg);
    if (r < 0) {
        diag_fail(e->d, r, NULL, "merging order_defaults into %s", file);
        goto out;
    }
    r = req_validate(req, e->env->cfg, false, &errs);
    if (r == PA_E_REQUEST) {
        char line[1024];

        req_errors_format(&errs, line, sizeof(line));
        diag_fail(e->d, r, line,
                  ngettext("request %s: %zu problem", "request %s: %zu problems", errs.n), file,
                  errs.n);
    } else if (r < 0) {
        diag_fail(e->d, r, NULL, "validating %s", file);
    }
    if (r == 0) {
        *ret = req;
        req = NULL;
    }
out:
    req_errors_clear(&errs);
    req_free(req);
    return r;
}

int enroll_prepare_request(struct ectx *e, const char *file, struct req **ret)
{
    const struct enroll_ui *ui = e->env->ui;

    if (ui && ui->prepare_request)
        return ui->prepare_request(ui->arg, file, ret, e->d);
    return prepare_quietly(e, file, ret);
}
