/* SPDX-License-Identifier: Apache-2.0 */
#include "cli.h"
#include "i18n.h"

#include "certcentral.h"
#include "config.h"
#include "csr.h"
#include "diag.h"
#include "enroll.h"
#include "fsutil.h"
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

/* What the officer should do next, per error (diag.c keeps the table). */
static const char *hint(int err)
{
    return diag_usual_hint(err);
}

/* "pkio-agent: CONTEXT: DETAIL; HINT" on stderr. */
static void vfail(int err, const char *detail, const char *h, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static void vfail(int err, const char *detail, const char *h, const char *fmt, va_list ap)
{
    /* The format, a literal detail (marked N_()) and the hint are translated here; a detail
     * built by a module is already in the user's language (gettext returns it unchanged). */
    fputs("pkio-agent: ", stderr);
    vfprintf(stderr, _(fmt), ap);
    fprintf(stderr, ": %s", detail && *detail ? _(detail) : _(pa_err_str(err)));
    if (h)
        fprintf(stderr, "; %s", _(h));
    fputc('\n', stderr);
}

int cli_fail(int err, const char *detail, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail(err, detail, hint(err), fmt, ap);
    va_end(ap);
    return err;
}

int cli_fail_hint(int err, const char *detail, const char *h, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail(err, detail, h, fmt, ap);
    va_end(ap);
    return err;
}

int cli_report(const struct cli *cli, const struct pa_diag *d)
{
    char line[sizeof(d->context) + sizeof(d->detail) + sizeof(d->hint) + 32];

    (void)cli;
    if (!d->error || !d->context[0]) /* nothing failed, or the front end has shown it */
        return d->error;
    diag_format(d, line, sizeof(line));
    fprintf(stderr, "%s\n", line);
    return d->error;
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
    struct pa_diag d;
    int r;

    diag_clear(&d);
    r = enroll_cc_client(cli->cfg, cli_state_dir(cli), ret, &d);
    if (r < 0)
        return cli_report(cli, &d);
    return 0;
}

int cli_key_type(const char *s, enum tok_key_type *ret)
{
    if (tok_key_type_parse(s, ret) < 0)
        return cli_fail(PA_E_USAGE, N_("use rsa:2048, rsa:3072, rsa:4096, ec:p256 or ec:p384"),
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

/* English msgids: cli.c shows them through tx_(), in the user's language. */
const struct cli_pin_texts cli_pin_texts_en = {
    .new_pin = N_("New PIN"),
    .again = N_("New PIN again: "),
    .chars = N_("characters"),
    .at_least = N_("at least"),
    .differ = N_("The two entries differ"),
    .too_short = N_("The new PIN is too short"),
    .too_long = N_("The new PIN is too long"),
    .same = N_("The new PIN must differ from the transport PIN"),
};

/* A text of a struct cli_pin_texts as shown: translated when it is one of our msgids (the
 * kiosk's own texts come back unchanged). gettext("") would be the catalog header. */
static const char *tx_(const char *s)
{
    return s && *s ? _(s) : "";
}

enum cli_new_pin_verdict cli_new_pin_check(const struct tok_info *info, const struct secret *old,
                                           const struct secret *first, const struct secret *second)
{
    size_t min, max;

    tok_pin_len_range(info, &min, &max);
    if (first->len == 0 || first->len < min)
        return CLI_NEW_PIN_TOO_SHORT;
    if ((max && first->len > max) || first->len > PIN_MAX)
        return CLI_NEW_PIN_TOO_LONG;
    if (old && secret_equal(old, first))
        return CLI_NEW_PIN_SAME;
    if (second && !secret_equal(first, second))
        return CLI_NEW_PIN_DIFFER;
    return CLI_NEW_PIN_OK;
}

static const char *verdict_text(const struct cli_pin_texts *tx, enum cli_new_pin_verdict v)
{
    switch (v) {
    case CLI_NEW_PIN_TOO_SHORT:
        return tx_(tx->too_short);
    case CLI_NEW_PIN_TOO_LONG:
        return tx_(tx->too_long);
    case CLI_NEW_PIN_SAME:
        return tx_(tx->same);
    case CLI_NEW_PIN_DIFFER:
        return tx_(tx->differ);
    case CLI_NEW_PIN_OK:
    default:
        return "";
    }
}

/* " (4-8 characters)" or " (at least 4 characters)". */
static void pin_range_text(const struct tok_info *info, const struct cli_pin_texts *tx, char *buf,
                           size_t len)
{
    size_t min, max;

    tok_pin_len_range(info, &min, &max);
    if (min < 1)
        min = 1;
    if (max)
        snprintf(buf, len, " (%zu-%zu %s)", min, max, tx_(tx->chars));
    else
        snprintf(buf, len, " (%s %zu %s)", tx_(tx->at_least), min, tx_(tx->chars));
}

int cli_ask_new_pin(const struct tok_info *info, const struct secret *old,
                    const struct cli_pin_texts *tx, const char *lead, struct secret **ret)
{
    struct secret *a = NULL, *b = NULL;
    const char *above = lead ? lead : "";
    char range[96], prompt[1024];
    int r = PA_E_PIN_UNAVAILABLE;

    pin_range_text(info, tx, range, sizeof(range));
    for (unsigned i = 0; i < CLI_NEW_PIN_TRIES; i++) {
        enum cli_new_pin_verdict v;
        size_t n = strlen(above);

        snprintf(prompt, sizeof(prompt), "%s%s%s%s: ", above, n && above[n - 1] != '\n' ? "\n" : "",
                 tx_(tx->new_pin), range);
        r = secret_prompt(prompt, PIN_MAX, &a);
        if (r < 0)
            break;
        v = cli_new_pin_check(info, old, a, NULL);
        if (v == CLI_NEW_PIN_OK) {
            r = secret_prompt(tx_(tx->again), PIN_MAX, &b);
            if (r < 0)
                break;
            v = cli_new_pin_check(info, old, a, b);
        }
        if (v == CLI_NEW_PIN_OK) {
            *ret = a;
            a = NULL;
            break;
        }
        r = PA_E_PIN_UNAVAILABLE; /* the token is not touched: ask again, a few times */
        above = verdict_text(tx, v);
        secret_free(a);
        secret_free(b);
        a = b = NULL;
    }
    secret_free(a);
    secret_free(b);
    return r;
}

/* The PIN the URI names: its pin-source file, or a pin-value from a source that is not argv.
 * 1 when it names none; failures are reported. */
static int pin_from_uri(const struct tok_uri *u, struct secret **ret)
{
    int r;

    if (!u->pin_source)
        return u->pin_value ? secret_from_mem(u->pin_value->buf, u->pin_value->len, ret) : 1;
    r = secret_from_file(u->pin_source, PIN_MAX, ret);
    if (r == PA_E_CONFIG)
        return cli_fail(PA_E_CONFIG, N_("missing, empty, too long, or readable by group/others"),
                        "PIN file %s", u->pin_source);
    if (r < 0)
        return cli_fail(r, NULL, "PIN file %s", u->pin_source);
    return 0;
}

/* The PIN from --pin-fd for a token whose PIN need not change: one line, never two. */
static int pin_from_fd(const struct cli *cli, const struct tok_info *info, struct secret **ret)
{
    struct secret *extra = NULL;
    int r = secret_lines_from_fd(cli->pin_fd, PIN_MAX, ret, &extra);

    if (r < 0)
        return cli_fail(r, N_("nothing to read, or not the one or two lines expected"),
                        "PIN descriptor %d", cli->pin_fd);
    if (extra) { /* meant for a PIN change the token no longer asks for: the first line is
                  * likely a transport PIN that is no longer right */
        secret_free(extra);
        secret_free(*ret);
        *ret = NULL;
        return cli_fail_hint(PA_E_PIN_UNAVAILABLE,
                             N_("a new PIN was given, but the token does not ask for its PIN to "
                                "be changed; no PIN was tried"),
                             N_("send the PIN alone (one line) for a token that needs no PIN "
                                "change"),
                             "PIN descriptor %d for token '%s'", cli->pin_fd, info->label);
    }
    return 0;
}

/* Get the PIN for a token: pin-source file, --pin-fd, then the PIN pad, then a no-echo prompt. */
static int get_pin(const struct cli *cli, const struct tok_uri *u, const struct tok_info *info,
                   struct secret **ret, bool *ret_pinpad)
{
    char prompt[128];
    int r;

    *ret = NULL;
    *ret_pinpad = false;
    r = pin_from_uri(u, ret);
    if (r <= 0)
        return r;
    if (cli->pin_fd >= 0)
        return pin_from_fd(cli, info, ret);
    if (info->protected_auth_path) {
        fprintf(stderr, _("Enter the PIN on the reader's PIN pad for token '%s'.\n"), info->label);
        *ret_pinpad = true;
        return 0;
    }
    snprintf(prompt, sizeof(prompt), _("PIN for token '%s' (serial %s): "), info->label,
             info->serial);
    r = secret_prompt(prompt, PIN_MAX, ret);
    if (r < 0)
        return cli_fail(r, NULL, "token '%s'", info->label);
    return 0;
}

/* Report why the token's PIN flags forbid a login or a PIN change (r from the precheck). */
static int pin_state_fail(int r, const struct tok_info *info)
{
    if (!info->user_pin_locked && !info->user_pin_final_try && !info->user_pin_initialized)
        return cli_fail_hint(r, tok_detail(), N_("pkio-agent never sets a token's first PIN"),
                             "login to token '%s'", info->label);
    return cli_fail(r, tok_detail(), "login to token '%s'", info->label);
}

/* A token whose PIN must be changed, and no way to ask for the new PIN: one clear line. */
static int refuse_change(const struct tok_info *info)
{
    return cli_fail_hint(PA_E_PIN_LOCKED,
                         N_("the token's PIN must be changed first (it still has its transport "
                            "PIN); no PIN was tried"),
                         N_("run this command at a terminal to choose a new PIN, or insert the "
                            "token at the kiosk"),
                         "token '%s' (serial %s)", info->label, info->serial);
}

/* The reader's PIN pad asks for the transport PIN and the new one (C_SetPIN(NULL...)). */
static int change_on_pinpad(struct tok_token *tok, const struct tok_info *info, bool *ret_pinpad)
{
    int r;

    fprintf(stderr,
            _("Token '%s' still has its transport PIN, which must be changed: on the reader's PIN "
              "pad, enter the transport PIN, then the new PIN twice.\n"),
            info->label);
    r = tok_change_pin(tok, NULL, NULL);
    if (r < 0)
        return cli_fail(r, tok_detail(),
                        "changing the PIN of token '%s' (serial %s) on the PIN pad", info->label,
                        info->serial);
    fprintf(stderr, _("PIN changed. Enter the new PIN on the reader's PIN pad for token '%s'.\n"),
            info->label);
    *ret_pinpad = true;
    return 0;
}

/* Transport and new PIN from --pin-fd (two lines); one line means nobody chose a new PIN. */
static int pins_from_fd(const struct cli *cli, const struct tok_info *info, struct secret **ret_old,
                        struct secret **ret_new)
{
    int r = secret_lines_from_fd(cli->pin_fd, PIN_MAX, ret_old, ret_new);
    enum cli_new_pin_verdict v;

    if (r < 0)
        return cli_fail(r, N_("nothing to read, or not the one or two lines expected"),
                        "PIN descriptor %d", cli->pin_fd);
    if (!*ret_new)
        return refuse_change(info);
    v = cli_new_pin_check(info, *ret_old, *ret_new, NULL);
    if (v != CLI_NEW_PIN_OK) {
        char why[160], range[96];

        pin_range_text(info, &cli_pin_texts_en, range, sizeof(range));
        snprintf(why, sizeof(why), "%s%s", verdict_text(&cli_pin_texts_en, v),
                 v == CLI_NEW_PIN_SAME ? "" : range);
        return cli_fail_hint(PA_E_PIN_UNAVAILABLE, why, N_("the token was not touched"),
                             "new PIN on descriptor %d for token '%s'", cli->pin_fd, info->label);
    }
    return 0;
}

/* Transport PIN from the URI or a prompt, the new PIN typed twice: only at a terminal. */
static int pins_from_terminal(const struct tok_uri *u, const struct tok_info *info,
                              struct secret **ret_old, struct secret **ret_new)
{
    char text[256];
    int r;

    if (!secret_can_prompt())
        return refuse_change(info);
    snprintf(text, sizeof(text),
             _("Token '%s' (serial %s) still has its transport PIN, which must be changed."),
             info->label, info->serial);
    r = pin_from_uri(u, ret_old);
    if (r < 0)
        return r;
    if (r > 0) {
        size_t n = strlen(text);

        snprintf(text + n, sizeof(text) - n, "\n%s", _("Transport PIN: "));
        r = secret_prompt(text, PIN_MAX, ret_old);
        if (r < 0)
            return cli_fail(r, NULL, "transport PIN for token '%s'", info->label);
        text[0] = '\0'; /* said once */
    }
    r = cli_ask_new_pin(info, *ret_old, &cli_pin_texts_en, text, ret_new);
    if (r < 0)
        return cli_fail_hint(r, N_("no new PIN was agreed on; the token was not touched"),
                             N_("run the command again"), "new PIN for token '%s'", info->label);
    return 0;
}

/*
 * A token whose PIN must be changed before use (a transport PIN): the PIN pad does it, or the
 * transport PIN (pin-source, --pin-fd line 1, or a prompt) and a new PIN (--pin-fd line 2, or
 * typed twice at the terminal) go into one C_SetPIN. *ret_pin is then the new PIN to log in with.
 */
static int change_first(const struct cli *cli, const struct tok_uri *u, struct tok_token *tok,
                        const struct tok_info *info, struct secret **ret_pin, bool *ret_pinpad)
{
    struct secret *old = NULL, *new_pin = NULL;
    bool uri_pin = u->pin_source || u->pin_value;
    int r = tok_pin_change_precheck(info); /* locked, final try, no PIN: refused before asking */

    if (r < 0)
        return pin_state_fail(r, info);
    if (!uri_pin && cli->pin_fd < 0 && info->protected_auth_path)
        return change_on_pinpad(tok, info, ret_pinpad);
    if (!uri_pin && cli->pin_fd >= 0)
        r = pins_from_fd(cli, info, &old, &new_pin);
    else
        r = pins_from_terminal(u, info, &old, &new_pin);
    if (r == 0) {
        r = tok_change_pin(tok, old, new_pin);
        if (r < 0)
            cli_fail(r, tok_detail(), "changing the PIN of token '%s' (serial %s)", info->label,
                     info->serial);
    }
    if (r == 0) {
        fprintf(stderr, _("Token '%s' (serial %s): PIN changed.\n"), info->label, info->serial);
        *ret_pin = new_pin;
        new_pin = NULL;
    }
    secret_free(old);
    secret_free(new_pin);
    return r;
}

/* Log in (one C_Login), changing a transport PIN first; every failure is reported once. */
static int login_token(const struct cli *cli, const struct tok_uri *u, struct tok_token *tok)
{
    struct secret *pin = NULL;
    struct tok_info info;
    bool pinpad = false;
    int r = tok_token_info(tok, &info);

    if (r < 0)
        return cli_fail(r, tok_detail(), "login to the token");
    if (info.user_pin_to_be_changed) {
        r = change_first(cli, u, tok, &info, &pin, &pinpad);
    } else {
        r = tok_login_precheck(&info); /* refuse before even asking for a PIN */
        if (r < 0)
            r = pin_state_fail(r, &info);
        else if (info.login_required)
            r = get_pin(cli, u, &info, &pin, &pinpad);
    }
    if (r == 0) {
        r = tok_login(tok, pin);
        if (r < 0)
            cli_fail(r, tok_detail(), "login to token '%s' (serial %s)", info.label, info.serial);
    }
    secret_free(pin);
    return r;
}

/* One line listing the candidates of an ambiguous selection. */
static void list_candidates(char *buf, size_t len, const struct tok_info *m, size_t n)
{
    size_t pos = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n && pos + 1 < len; i++) {
        int w = snprintf(buf + pos, len - pos, "%s", i ? ", " : "");

        if (w < 0 || (size_t)w >= len - pos)
            break;
        pos += (size_t)w;
        w = snprintf(buf + pos, len - pos, _("serial %s ('%s', %s)"), m[i].serial, m[i].label,
                     m[i].model);
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
                            N_("pin-value is not accepted on the command line (it "
                               "would show in the process list)"),
                            "token URI");
        return cli_fail(PA_E_USAGE, N_("not a valid RFC 7512 PKCS#11 URI"), "token URI");
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
        r = login_token(cli, &u, tok);
        if (r < 0)
            goto out;
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
    return cli_fail(PA_E_REQUEST, line,
                    ngettext("request %s: %zu problem", "request %s: %zu problems", errs->n), file,
                    errs->n);
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
