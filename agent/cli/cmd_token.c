/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_token.c - the token commands: tokens, keygen, csr.
 */
#include "certs.h"
#include "cli.h"
#include "csr.h"
#include "fsutil.h"
#include "i18n.h"
#include "pa_err.h"
#include "request.h"
#include "tok.h"
#include "writeback.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPT_TOKEN = CLI_OPT_FIRST,
    OPT_KEY_TYPE,
    OPT_LABEL,
    OPT_KEY,
    OPT_REQUEST,
    OPT_SUBJECT,
    OPT_PSS,
    OPT_CERT,
    OPT_TRUST
};

static void hex(char *out, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", p[i]);
    out[2 * n] = '\0';
}

static json_object *info_json(const struct tok_info *t)
{
    json_object *o = json_object_new_object(), *f = json_object_new_object();

    json_object_object_add(o, "label", json_object_new_string(t->label));
    json_object_object_add(o, "serial", json_object_new_string(t->serial));
    json_object_object_add(o, "manufacturer", json_object_new_string(t->manufacturer));
    json_object_object_add(o, "model", json_object_new_string(t->model));
    json_object_object_add(o, "slot_id", json_object_new_int64((int64_t)t->slot_id));
    json_object_object_add(f, "token_initialized", json_object_new_boolean(t->token_initialized));
    json_object_object_add(f, "login_required", json_object_new_boolean(t->login_required));
    json_object_object_add(f, "user_pin_initialized",
                           json_object_new_boolean(t->user_pin_initialized));
    json_object_object_add(f, "user_pin_count_low", json_object_new_boolean(t->user_pin_count_low));
    json_object_object_add(f, "user_pin_final_try", json_object_new_boolean(t->user_pin_final_try));
    json_object_object_add(f, "user_pin_locked", json_object_new_boolean(t->user_pin_locked));
    json_object_object_add(f, "user_pin_to_be_changed",
                           json_object_new_boolean(t->user_pin_to_be_changed));
    json_object_object_add(f, "protected_authentication_path",
                           json_object_new_boolean(t->protected_auth_path));
    json_object_object_add(f, "write_protected", json_object_new_boolean(t->write_protected));
    json_object_object_add(o, "flags", f);
    json_object_object_add(
        o, "free_public_memory",
        t->free_public_memory < 0 ? NULL : json_object_new_int64(t->free_public_memory));
    json_object_object_add(
        o, "free_private_memory",
        t->free_private_memory < 0 ? NULL : json_object_new_int64(t->free_private_memory));
    return o;
}

static const char *pin_state(const struct tok_info *t)
{
    if (!t->user_pin_initialized)
        return _("no user PIN");
    if (t->user_pin_locked)
        return _("PIN LOCKED");
    if (t->user_pin_final_try)
        return _("PIN: final try");
    if (t->user_pin_to_be_changed)
        return _("PIN must be changed");
    if (t->user_pin_count_low)
        return _("PIN: tries low");
    return _("PIN ok");
}

/* "  pkcs11:token=...;serial=...", percent-encoded (labels have spaces, '(', '/', ...). */
static void print_token_uri(const struct tok_info *t)
{
    char *uri = tok_uri_for_token(t);

    printf("  %s\n", uri ? uri : _("(no memory for the URI)"));
    free(uri);
}

static void tokens_json(const struct cli *cli, const struct tok_info *list, size_t n)
{
    json_object *o = json_object_new_object(), *a = json_object_new_array();

    for (size_t i = 0; i < n; i++)
        json_object_array_add(a, info_json(&list[i]));
    json_object_object_add(o, "module", json_object_new_string(cli_module(cli)));
    json_object_object_add(o, "tokens", a);
    cli_print_json(o);
}

static void tokens_text(const struct cli *cli, const struct tok_info *list, size_t n)
{
    if (n == 0)
        printf(_("no token present (module %s)\n"), cli_module(cli));
    for (size_t i = 0; i < n; i++) {
        const struct tok_info *t = &list[i];

        if (!t->token_initialized) {
            printf(_("(uninitialised token in slot %lu, %s %s)\n"), t->slot_id, t->manufacturer,
                   t->model);
            continue;
        }
        printf(_("%-16s serial %-16s %s %s; %s%s%s"), t->label, t->serial, t->manufacturer,
               t->model, pin_state(t), t->protected_auth_path ? _("; PIN pad") : "",
               t->write_protected ? _("; write-protected") : "");
        if (t->free_private_memory >= 0)
            printf(_("; %ld bytes free"), t->free_private_memory);
        printf("\n");
        print_token_uri(t);
    }
}

int cmd_tokens(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {CLI_OPTS_END};
    static const struct cli_getopt how = {.command = "tokens", .longopts = opts};
    struct tok_ctx *ctx = NULL;
    struct tok_info *list = NULL;
    size_t n = 0;
    int r = cli_getopt(cli, &how, NULL, argc, argv);

    if (r != 0)
        return r < 0 ? r : 0;
    if (optind != argc)
        return cli_fail(PA_E_USAGE, N_("unexpected argument"), "tokens");
    r = tok_open(cli_module(cli), &ctx);
    if (r < 0)
        return cli_fail(r, tok_detail(), "PKCS#11 module %s", cli_module(cli));
    r = tok_list(ctx, &list, &n);
    if (r < 0)
        cli_fail(r, tok_detail(), "listing tokens");
    else if (cli->json)
        tokens_json(cli, list, n);
    else
        tokens_text(cli, list, n);
    free(list);
    tok_close(ctx);
    return r < 0 ? r : 0;
}

static json_object *custody_json(const struct tok_custody *c)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "sensitive", json_object_new_boolean(c->sensitive));
    json_object_object_add(o, "always_sensitive", json_object_new_boolean(c->always_sensitive));
    json_object_object_add(o, "extractable", json_object_new_boolean(c->extractable));
    json_object_object_add(o, "never_extractable", json_object_new_boolean(c->never_extractable));
    json_object_object_add(o, "local", json_object_new_boolean(c->local));
    return o;
}

struct keygen_args {
    const char *token, *label;
    enum tok_key_type type;
};

static int keygen_option(void *arg, int c, const char *val)
{
    struct keygen_args *a = arg;

    switch (c) {
    case OPT_TOKEN:
        a->token = val;
        return 0;
    case OPT_KEY_TYPE:
        return cli_key_type(val, &a->type) < 0 ? PA_E_USAGE : 0;
    case OPT_LABEL:
        a->label = val;
        if (!*val || strlen(val) > 64)
            return cli_fail(PA_E_USAGE, N_("1 to 64 bytes"), "--label");
        return 0;
    default:
        return CLI_OPT_UNKNOWN;
    }
}

/* A new key pair that passed the gate for our own keys, or nothing left on the token. */
static int keygen_checked(struct tok_token *tok, const struct tok_info *info,
                          const struct keygen_args *a, unsigned char *id, size_t *id_len,
                          struct tok_custody *cust)
{
    int r = tok_keygen(tok, a->type, a->label, id, id_len);

    if (r < 0)
        return cli_fail(r, tok_detail(), "generating a %s key on token '%s'",
                        tok_key_type_name(a->type), info->label);
    /* This command just generated the key itself: the gate for our own keys (unreadable, not
     * extractable), which holds on card stacks that report CKA_LOCAL false. */
    r = tok_key_custody(tok, id, *id_len, cust);
    if (r == 0)
        r = tok_custody_ok_generated(cust);
    if (r < 0) {
        /* A key we will not use must not stay behind on the person's token. */
        int d = tok_delete_keypair(tok, id, *id_len);

        cli_fail(r, tok_detail(), "new key on token '%s' (%s)", info->label,
                 d == 0 ? _("deleted again") : _("COULD NOT BE DELETED"));
    }
    return r;
}

static void keygen_print(const struct cli *cli, const char *uri, const char *idhex,
                         const struct keygen_args *a, const struct tok_info *info,
                         const struct tok_custody *cust)
{
    json_object *o;

    if (!cli->json) {
        puts(uri);
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "uri", json_object_new_string(uri));
    json_object_object_add(o, "id", json_object_new_string(idhex));
    json_object_object_add(o, "label", json_object_new_string(a->label));
    json_object_object_add(o, "key_type", json_object_new_string(tok_key_type_name(a->type)));
    json_object_object_add(o, "token", info_json(info));
    json_object_object_add(o, "custody", custody_json(cust));
    cli_print_json(o);
}

int cmd_keygen(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"token", required_argument, NULL, OPT_TOKEN},
        {"key-type", required_argument, NULL, OPT_KEY_TYPE},
        {"label", required_argument, NULL, OPT_LABEL},
        CLI_OPTS_END,
    };
    static const struct cli_getopt how = {
        .command = "keygen", .longopts = opts, .option = keygen_option};
    struct keygen_args a = {.label = "pkio-agent", .type = TOK_KEY_RSA2048};
    struct tok_ctx *ctx = NULL;
    struct tok_token *tok = NULL;
    struct tok_custody cust;
    struct tok_info info;
    unsigned char id[TOK_ID_MAX];
    char idhex[2 * TOK_ID_MAX + 1], *uri = NULL;
    size_t id_len = 0;
    int r = cli_getopt(cli, &how, &a, argc, argv);

    if (r != 0)
        return r < 0 ? r : 0;
    if (!a.token || optind != argc)
        return cli_fail(PA_E_USAGE, N_("--token URI is required"), "keygen");
    r = cli_open_token(cli, a.token, true, &ctx, &tok, NULL);
    if (r < 0)
        return r;
    r = tok_token_info(tok, &info);
    if (r == 0)
        r = tok_check_keygen(tok, a.type);
    if (r < 0) {
        cli_fail(r, tok_detail(), "token '%s'", info.label);
        goto out;
    }
    r = keygen_checked(tok, &info, &a, id, &id_len, &cust);
    if (r < 0)
        goto out;
    uri = tok_uri_for_key(&info, id, id_len, a.label);
    if (!uri) {
        r = cli_fail(PA_E_NOMEM, NULL, "keygen");
        goto out;
    }
    hex(idhex, id, id_len);
    keygen_print(cli, uri, idhex, &a, &info, &cust);
out:
    free(uri);
    tok_token_close(tok);
    tok_close(ctx);
    return r;
}

/* Resolve the key of a key URI: by id=, else by object= label. */
static int key_id_of(struct tok_token *tok, const struct tok_uri *u, unsigned char *id,
                     size_t *id_len)
{
    if (u->type && strcmp(u->type, "private") != 0)
        return PA_E_USAGE;
    if (u->id_len) {
        memcpy(id, u->id, u->id_len);
        *id_len = u->id_len;
        return tok_find_key(tok, id, *id_len, NULL);
    }
    if (u->object)
        return tok_find_key_by_label(tok, u->object, id, id_len);
    return PA_E_USAGE;
}

/* Subject from --subject or from the request file's certificate.individual. */
static int subject_of(const char *request, const char *subject, struct csr_subject *ret)
{
    const char *first = NULL, *last = NULL, *country = NULL;
    struct req *req = NULL;
    long individual_id = -1;
    char err[256] = "";
    int r;

    if (subject) {
        r = csr_subject_parse(subject, ret, err, sizeof(err));
        return r < 0 ? cli_fail(r, err, "--subject") : 0;
    }
    r = req_load_file(request, &req, err, sizeof(err));
    if (r < 0)
        return cli_fail(r, err, "request %s", request);
    r = req_individual(req, &first, &last, &country, &individual_id);
    if (r == 0)
        r = csr_subject_person(first, last, country, ret, err, sizeof(err));
    if (r < 0)
        cli_fail(r, err, "request %s", request);
    req_free(req);
    return r;
}

struct csr_args {
    const char *key, *request, *subject, *output;
    bool pss;
};

static int csr_option(void *arg, int c, const char *val)
{
    struct csr_args *a = arg;

    switch (c) {
    case OPT_KEY:
        a->key = val;
        return 0;
    case OPT_REQUEST:
        a->request = val;
        return 0;
    case OPT_SUBJECT:
        a->subject = val;
        return 0;
    case OPT_PSS:
        a->pss = true;
        return 0;
    case 'o':
        a->output = val;
        return 0;
    default:
        return CLI_OPT_UNKNOWN;
    }
}

/* The key the URI names (id: TOK_ID_MAX bytes), with its custody checked. */
static int csr_keys(struct tok_token *tok, const struct tok_uri *u, const char *key,
                    struct tok_custody *cust, unsigned char *id, size_t *id_len)
{
    int r = key_id_of(tok, u, id, id_len);

    if (r < 0)
        return cli_fail(r,
                        r == PA_E_USAGE ? N_("the key URI needs id= or object= (and type=private)")
                        : r == PA_E_TOKEN_NOT_FOUND
                            ? N_("no private key with that id or object on the token")
                            : tok_detail(),
                        "key %s", key);
    r = tok_key_custody(tok, id, *id_len, cust);
    if (r == 0)
        r = tok_custody_ok(cust);
    if (r < 0)
        cli_fail(r, tok_detail(), "key %s", key);
    return r;
}

static void csr_print(const struct cli *cli, const struct csr_args *a, const char *pem,
                      const struct csr_subject *subj, EVP_PKEY *pub, const struct tok_custody *cust)
{
    json_object *o;
    char spki[65];

    if (!cli->json) {
        if (!a->output)
            fputs(pem, stdout);
        return;
    }
    o = json_object_new_object();
    (void)csr_spki_sha256(pub, spki);
    json_object_object_add(o, "csr", json_object_new_string(pem));
    json_object_object_add(o, "subject_cn", json_object_new_string(subj->cn));
    json_object_object_add(o, "signature",
                           json_object_new_string(a->pss ? "rsassa-pss-sha256"
                                                  : EVP_PKEY_get_base_id(pub) == EVP_PKEY_EC
                                                      ? "ecdsa-sha256"
                                                      : "sha256-rsa-pkcs1"));
    json_object_object_add(o, "spki_sha256", json_object_new_string(spki));
    json_object_object_add(o, "custody", custody_json(cust));
    if (a->output)
        json_object_object_add(o, "output", json_object_new_string(a->output));
    cli_print_json(o);
}

int cmd_csr(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, OPT_KEY},
        {"request", required_argument, NULL, OPT_REQUEST},
        {"subject", required_argument, NULL, OPT_SUBJECT},
        {"pss", no_argument, NULL, OPT_PSS},
        {"output", required_argument, NULL, 'o'},
        CLI_OPTS_END,
    };
    static const struct cli_getopt how = {
        .command = "csr", .shortopts = "ho:", .longopts = opts, .option = csr_option};
    struct csr_args a = {0};
    struct csr_subject subj = {0};
    struct tok_ctx *ctx = NULL;
    struct tok_token *tok = NULL;
    struct tok_custody cust;
    struct tok_uri u;
    unsigned char id[TOK_ID_MAX];
    enum csr_step step = CSR_STEP_KEY;
    EVP_PKEY *pub = NULL;
    char err[256] = "", *pem = NULL;
    size_t id_len = 0;
    int r;

    memset(&u, 0, sizeof(u));
    r = cli_getopt(cli, &how, &a, argc, argv);
    if (r != 0)
        return r < 0 ? r : 0;
    if (!a.key || optind != argc || !a.request == !a.subject)
        return cli_fail(PA_E_USAGE, N_("--key URI and one of --request FILE or --subject DN"),
                        "csr");
    /* Check the subject before touching the token: a bad request costs no PIN entry. */
    r = subject_of(a.request, a.subject, &subj);
    if (r < 0)
        return r;
    r = cli_open_token(cli, a.key, true, &ctx, &tok, &u);
    if (r == 0)
        r = csr_keys(tok, &u, a.key, &cust, id, &id_len);
    if (r < 0)
        goto out;
    r = csr_from_token_key(tok, id, id_len, NULL, &subj, a.pss, &pem, &pub, &step, err,
                           sizeof(err));
    if (r < 0) {
        if (step == CSR_STEP_KEY)
            cli_fail(r, err, "key %s", a.key);
        else
            cli_fail(r, err, "CSR");
        goto out;
    }
    if (a.output) {
        r = fs_write_atomic(a.output, pem, strlen(pem), 0644);
        if (r < 0) {
            cli_fail(r, NULL, "writing %s", a.output);
            goto out;
        }
    }
    csr_print(cli, &a, pem, &subj, pub, &cust);
out:
    free(pem);
    EVP_PKEY_free(pub);
    csr_subject_clear(&subj);
    tok_uri_clear(&u);
    tok_token_close(tok);
    tok_close(ctx);
    return r;
}

struct key_args {
    const char *key, *certfile, *trust;
};

/* install's and delete-key's options (delete-key has no --cert or --trust). */
static int key_option(void *arg, int c, const char *val)
{
    struct key_args *a = arg;

    switch (c) {
    case OPT_KEY:
        a->key = val;
        return 0;
    case OPT_CERT:
        a->certfile = val;
        return 0;
    case OPT_TRUST:
        a->trust = val;
        return 0;
    default:
        return CLI_OPT_UNKNOWN;
    }
}

/* The certificates of a PEM bundle file; reported. */
static int install_bundle(const char *certfile, STACK_OF(X509) * *all)
{
    char *pem = NULL;
    size_t pem_len = 0;
    int r = fs_read_file(certfile, 1 << 20, &pem, &pem_len);

    if (r < 0)
        return cli_fail(r, NULL, "reading %s", certfile);
    r = certs_parse_pem(pem, pem_len, all);
    if (r < 0)
        cli_fail(r, N_("not a PEM certificate bundle"), "%s", certfile);
    free(pem);
    return r;
}

/* The key the URI names (id and public key); reported. */
static int install_key(struct tok_token *tok, const struct tok_uri *u, const char *key,
                       unsigned char *id, size_t *id_len, EVP_PKEY **pub)
{
    int r = key_id_of(tok, u, id, id_len);

    if (r == 0)
        r = tok_public_key(tok, id, *id_len, pub);
    if (r < 0)
        cli_fail(r, r == PA_E_USAGE ? N_("the key URI needs id= or object=") : tok_detail(),
                 "key %s", key);
    return r;
}

/* The leaf that carries pub and the rest of the bundle, verified against --trust if given. */
static int install_chain(const struct key_args *a, STACK_OF(X509) * all, EVP_PKEY *pub, X509 **leaf,
                         STACK_OF(X509) * *chain)
{
    int r = certs_pick_leaf(all, pub, leaf, chain);

    if (r < 0)
        return cli_fail(r, N_("no certificate in it carries the token key"), "%s", a->certfile);
    if (a->trust) {
        char err[256] = "";

        r = certs_verify_chain(*leaf, *chain, a->trust, err, sizeof(err));
        if (r < 0)
            cli_fail(r, err, "%s", a->certfile);
    }
    return r;
}

static void install_print(const struct cli *cli, const struct wb_result *res)
{
    if (cli->json) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "leaf_written", json_object_new_boolean(res->leaf_written));
        json_object_object_add(o, "ca_written", json_object_new_int((int)res->ca_written));
        json_object_object_add(o, "ca_present", json_object_new_int((int)res->ca_present));
        cli_print_json(o);
        return;
    }
    fputs(res->leaf_written ? _("certificate written on the token")
                            : _("certificate already on the token"),
          stdout);
    printf(ngettext("; %u CA certificate written, %u already there\n",
                    "; %u CA certificates written, %u already there\n", res->ca_written),
           res->ca_written, res->ca_present);
}

int cmd_install(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, OPT_KEY},
        {"cert", required_argument, NULL, OPT_CERT},
        {"trust", required_argument, NULL, OPT_TRUST},
        CLI_OPTS_END,
    };
    static const struct cli_getopt how = {
        .command = "install", .longopts = opts, .option = key_option};
    struct key_args a = {0};
    STACK_OF(X509) *all = NULL, *chain = NULL;
    struct tok_ctx *ctx = NULL;
    struct tok_token *tok = NULL;
    struct wb_result res;
    struct tok_uri u;
    EVP_PKEY *pub = NULL;
    X509 *leaf = NULL;
    unsigned char id[TOK_ID_MAX];
    char err[256] = "";
    size_t id_len = 0;
    int r;

    memset(&u, 0, sizeof(u));
    r = cli_getopt(cli, &how, &a, argc, argv);
    if (r != 0)
        return r < 0 ? r : 0;
    if (!a.key || !a.certfile || optind != argc)
        return cli_fail(PA_E_USAGE, N_("--key URI and --cert FILE are required"), "install");
    /* Everything that needs no token first: a bad file costs no PIN entry. */
    r = install_bundle(a.certfile, &all);
    if (r == 0)
        r = cli_open_token(cli, a.key, true, &ctx, &tok, &u);
    if (r == 0)
        r = install_key(tok, &u, a.key, id, &id_len, &pub);
    if (r == 0)
        r = install_chain(&a, all, pub, &leaf, &chain);
    if (r < 0)
        goto out;
    r = wb_install(tok, id, id_len, leaf, chain, &res, err, sizeof(err));
    if (r < 0)
        cli_fail(r, err, "installing %s", a.certfile);
    else
        install_print(cli, &res);
out:
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    sk_X509_pop_free(all, X509_free);
    EVP_PKEY_free(pub);
    tok_uri_clear(&u);
    tok_token_close(tok);
    tok_close(ctx);
    return r;
}

int cmd_delete_key(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, OPT_KEY},
        CLI_OPTS_END,
    };
    static const struct cli_getopt how = {
        .command = "delete-key", .longopts = opts, .option = key_option};
    struct key_args a = {0};
    struct tok_ctx *ctx = NULL;
    struct tok_token *tok = NULL;
    unsigned char id[TOK_ID_MAX];
    char idhex[2 * TOK_ID_MAX + 1];
    size_t id_len = 0;
    struct tok_uri u;
    int r;

    memset(&u, 0, sizeof(u));
    r = cli_getopt(cli, &how, &a, argc, argv);
    if (r != 0)
        return r < 0 ? r : 0;
    if (!a.key || optind != argc)
        return cli_fail(PA_E_USAGE, N_("--key URI is required"), "delete-key");
    r = cli_open_token(cli, a.key, true, &ctx, &tok, &u);
    if (r < 0)
        goto out;
    /* Only the key pair: certificates stay, so a mistake never removes an issued certificate. */
    r = key_id_of(tok, &u, id, &id_len);
    if (r == 0)
        r = tok_delete_keypair(tok, id, id_len);
    if (r < 0) {
        cli_fail(r, r == PA_E_USAGE ? N_("the key URI needs id= or object=") : tok_detail(),
                 "key %s", a.key);
        goto out;
    }
    hex(idhex, id, id_len);
    if (cli->json) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "deleted_id", json_object_new_string(idhex));
        cli_print_json(o);
    } else {
        printf(_("deleted key pair id %s\n"), idhex);
    }
out:
    tok_uri_clear(&u);
    tok_token_close(tok);
    tok_close(ctx);
    return r;
}
