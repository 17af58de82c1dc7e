/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_lifecycle.c - after enrollment: `expiring` (this station's certificates that are due for
 * renewal, for the daily timer) and `certs` (what a token holds and which job of ours put it
 * there). Both only read: no token is written, no order is changed.
 */
#include "certcentral.h"
#include "certs.h"
#include "cli.h"
#include "config.h"
#include "http.h"
#include "i18n.h"
#include "job.h"
#include "lifecycle.h"
#include "pa_err.h"
#include "secret.h"
#include "tok.h"

#include <openssl/err.h>

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_WITHIN = CLI_OPT_FIRST, OPT_TOKEN };

#define NONE ((size_t)-1)

/* ---- shared ---------------------------------------------------------------------------------- */

static void hex(char *out, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", p[i]);
    out[2 * n] = '\0';
}

/* A name in RFC 4514 order and escaping, UTF-8 kept, made printable. */
static void name_string(const X509_NAME *name, char *out, size_t outlen)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL;

    out[0] = '\0';
    if (!b)
        return;
    if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        long len = BIO_get_mem_data(b, &p);

        if (len > 0)
            lc_printable(p, (size_t)len, out, outlen);
    }
    BIO_free(b);
    ERR_clear_error();
}

static json_object *str_or_null(const char *s)
{
    return s && *s ? json_object_new_string(s) : NULL;
}

static json_object *long_or_null(long v)
{
    return v ? json_object_new_int64(v) : NULL;
}

static json_object *time_or_null(time_t t)
{
    char buf[32];

    if (!t)
        return NULL;
    lc_format_time(t, buf, sizeof(buf));
    return json_object_new_string(buf);
}

/* The station's jobs, indexed; reports once. *ret_list must be freed with job_list_free. */
static int load_jobs(struct cli *cli, struct job ***ret_list, size_t *ret_n, struct lc_jobs *ret)
{
    char err[512] = "";
    int r;

    r = job_list(cli_state_dir(cli), ret_list, ret_n, err, sizeof(err));
    if (r < 0)
        return cli_fail(r, err, "jobs in %s", cli_state_dir(cli));
    if (err[0]) /* a corrupt record is set aside and named; the others still count */
        fprintf(stderr, _("pkio-agent: warning: %s\n"), err);
    r = lc_jobs_index(*ret_list, *ret_n, ret);
    if (r < 0) {
        job_list_free(*ret_list, *ret_n);
        *ret_list = NULL;
        return cli_fail(r, NULL, "jobs in %s", cli_state_dir(cli));
    }
    return 0;
}

/* ---- expiring -------------------------------------------------------------------------------- */

struct exp_run {
    struct cli *cli;
    long within;
    time_t now;
    struct cc_client *cc; /* NULL: CertCentral is not (or no longer) asked */
    char cc_note[320];    /* why not; "" while it is asked (English, for --json) */
    char cc_shown[320];   /* the same in the officer's language */
    struct lc_jobs jobs;
    json_object *rows;
    size_t checked, listed, due;
};

/*
 * A CertCentral client for reading orders, when there is an API key. CertCentral is optional
 * here: without it the certificates' own dates serve. Few retries: this is a report.
 */
static struct cc_client *lookup_client(struct exp_run *run)
{
    const struct cli *cli = run->cli;
    struct http_opts opts = {
        .ca_bundle = cli->cfg->api_ca_bundle,
        .connect_timeout_s = cli->cfg->api_connect_timeout_s,
        .timeout_s = cli->cfg->api_timeout_s,
        .max_body = 4u << 20,
    };
    struct cc_client *c = NULL;
    struct secret *key = NULL;
    char err[512] = "";
    int r;

    r = cfg_api_key(cli->cfg, &key, err, sizeof(err));
    if (r == 0)
        r = cc_client_new(cli->cfg->api_url, key, &opts, &c);
    secret_free(key);
    if (r < 0) {
        snprintf(run->cc_note, sizeof(run->cc_note), "not asked: %s", err[0] ? err : pa_err_str(r));
        snprintf(run->cc_shown, sizeof(run->cc_shown), _("not asked: %s"),
                 err[0] ? err : _(pa_err_str(r)));
        return NULL;
    }
    cc_client_set_retry(c, 2, 1.0, 5.0);
    return c;
}

/* CertCentral's order info for job j, when it can be had; a CertCentral that cannot be reached
 * (or refuses the key) is not asked again in this run. */
static void ask_certcentral(struct exp_run *run, const struct job *j, struct cc_order_info *info)
{
    int r;

    if (!run->cc || !j->order_id)
        return;
    r = cc_order_info(run->cc, j->order_id, info);
    if (r == 0)
        return;
    if (r == PA_E_CA_UNAVAILABLE || r == PA_E_CA_AUTH) {
        snprintf(run->cc_note, sizeof(run->cc_note), "%s: %s", pa_err_str(r),
                 cc_last_error(run->cc));
        snprintf(run->cc_shown, sizeof(run->cc_shown), "%s: %s", _(pa_err_str(r)),
                 cc_last_error(run->cc));
        fprintf(stderr,
                _("pkio-agent: warning: CertCentral: %s; the certificates' own dates are used\n"),
                run->cc_shown);
        cc_client_free(run->cc);
        run->cc = NULL;
    } else {
        fprintf(stderr, _("pkio-agent: warning: order %ld at CertCentral: %s\n"), j->order_id,
                cc_last_error(run->cc));
    }
    cc_order_info_clear(info);
}

static const char *row_state(const struct lc_expiry *e, size_t by)
{
    if (e->revoked)
        return _("revoked");
    if (by != NONE)
        return _("replaced");
    return e->expired ? _("EXPIRED") : _("due");
}

static void emit_row(struct exp_run *run, size_t i, const struct lc_expiry_in *in,
                     const struct lc_expiry *e, size_t by, const char *subject)
{
    const struct job *j = run->jobs.v[i];
    char when[32];
    json_object *o;

    lc_format_time(e->expires, when, sizeof(when));
    if (!run->rows) {
        if (run->listed == 1)
            printf("%-12s %-20s %-16s %-8s %-10s %5s  %-11s %s\n", _("JOB"), _("TOKEN"),
                   _("SERIAL"), _("ORDER"), _("EXPIRES"), _("DAYS"), _("SOURCE"), _("STATE"));
        printf("%-12.12s %-20.20s %-16.16s %-8ld %.10s %5ld  %-11s %s%s%.12s\n", j->id,
               j->token_label, j->token_serial, j->order_id, when, e->days_left,
               lc_source_name(e->source), row_state(e, by), by != NONE ? _(" by ") : "",
               by != NONE ? run->jobs.v[by]->id : "");
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "job", json_object_new_string(j->id));
    json_object_object_add(o, "token_label", json_object_new_string(j->token_label));
    json_object_object_add(o, "token_serial", json_object_new_string(j->token_serial));
    json_object_object_add(o, "order_id", long_or_null(j->order_id));
    json_object_object_add(o, "certificate_id", long_or_null(j->certificate_id));
    json_object_object_add(o, "certificate_serial", str_or_null(j->cert_serial));
    json_object_object_add(o, "subject", str_or_null(subject));
    json_object_object_add(o, "not_after", time_or_null(in->not_after));
    json_object_object_add(o, "valid_till", str_or_null(in->valid_till));
    json_object_object_add(o, "certcentral_status", str_or_null(in->cc_status));
    json_object_object_add(o, "expires", json_object_new_string(when));
    json_object_object_add(o, "days_left", json_object_new_int64(e->days_left));
    json_object_object_add(o, "source", json_object_new_string(lc_source_name(e->source)));
    json_object_object_add(o, "expired", json_object_new_boolean(e->expired));
    json_object_object_add(o, "revoked", json_object_new_boolean(e->revoked));
    json_object_object_add(o, "replaced_by",
                           by != NONE ? json_object_new_string(run->jobs.v[by]->id) : NULL);
    json_object_object_add(o, "due", json_object_new_boolean(e->due));
    json_object_array_add(run->rows, o);
}

static void expiring_one(struct exp_run *run, size_t i)
{
    const struct job *j = run->jobs.v[i];
    X509 *leaf = lc_job_leaf(&run->jobs, i);
    struct lc_expiry_in in = {0};
    struct cc_order_info info;
    struct lc_expiry e;
    char subject[512] = "";
    const char *rev;
    size_t by = NONE;

    memset(&info, 0, sizeof(info));
    if (leaf) {
        (void)lc_asn1_time(X509_get0_notAfter(leaf), &in.not_after);
        name_string(X509_get_subject_name(leaf), subject, sizeof(subject));
    }
    ask_certcentral(run, j, &info);
    in.valid_till = info.valid_till;
    in.cc_status = info.status;
    rev = lc_revocation(&run->jobs, i, &by);
    in.revoked_here = strcmp(rev, "revoked") == 0;
    in.replaced = by != NONE;
    run->checked++;
    if (lc_expiry_decide(&in, run->within, run->now, &e) < 0) {
        fprintf(stderr,
                _("pkio-agent: warning: job %s: no expiry date (its certificate cannot be "
                  "read and CertCentral gave none)\n"),
                j->id);
    } else if (e.listed) {
        run->listed++;
        run->due += e.due;
        emit_row(run, i, &in, &e, by, subject);
    }
    cc_order_info_clear(&info);
}

static int parse_days(const char *s, long *ret)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || !*s || *end || v < 0 || v > CFG_MAX_DAYS)
        return cli_fail(PA_E_USAGE, N_("a whole number of days, 0 to 3650"), "--within %s", s);
    *ret = v;
    return 0;
}

static int expiring_option(void *arg, int c, const char *val)
{
    struct exp_run *run = arg;

    if (c != OPT_WITHIN)
        return CLI_OPT_UNKNOWN;
    return parse_days(val, &run->within) < 0 ? PA_E_USAGE : 0;
}

static int expiring_args(struct exp_run *run, int argc, char **argv)
{
    static const struct option opts[] = {
        {"within", required_argument, NULL, OPT_WITHIN},
        CLI_OPTS_END,
    };
    static const struct cli_getopt how = {
        .command = "expiring", .longopts = opts, .option = expiring_option};
    int r = cli_getopt(run->cli, &how, run, argc, argv);

    if (r != 0)
        return r;
    if (optind != argc)
        return cli_fail(PA_E_USAGE, N_("unexpected argument"), "expiring");
    return 0;
}

static void expiring_report(struct exp_run *run)
{
    if (run->rows) {
        json_object *o = json_object_new_object(), *cc = json_object_new_object();

        json_object_object_add(o, "within_days", json_object_new_int64(run->within));
        json_object_object_add(o, "now", time_or_null(run->now));
        json_object_object_add(cc, "used", json_object_new_boolean(run->cc != NULL));
        json_object_object_add(cc, "note", str_or_null(run->cc_note));
        json_object_object_add(o, "certcentral", cc);
        json_object_object_add(o, "checked", json_object_new_int64((int64_t)run->checked));
        json_object_object_add(o, "due", json_object_new_int64((int64_t)run->due));
        json_object_object_add(o, "certificates", run->rows);
        run->rows = NULL;
        cli_print_json(o);
        return;
    }
    if (run->listed)
        printf("\n");
    printf(ngettext("%zu of %zu certificate enrolled here listed (expiring within %ld days, or "
                    "expired); %zu due for renewal",
                    "%zu of %zu certificates enrolled here listed (expiring within %ld days, or "
                    "expired); %zu due for renewal",
                    run->checked),
           run->listed, run->checked, run->within, run->due);
    if (run->cc_shown[0])
        printf(_(" (CertCentral %s)"), run->cc_shown);
    printf("\n");
}

int cmd_expiring(struct cli *cli, int argc, char **argv)
{
    struct exp_run run = {.cli = cli, .within = cli->cfg->renew_warn_days, .now = time(NULL)};
    struct job **list = NULL;
    size_t n = 0;
    int r;

    r = expiring_args(&run, argc, argv);
    if (r != 0)
        return r < 0 ? r : 0;
    r = load_jobs(cli, &list, &n, &run.jobs);
    if (r < 0)
        return r;
    run.cc = lookup_client(&run);
    if (cli->json)
        run.rows = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        if ((list[i]->state == JOB_DONE || list[i]->state == JOB_INSTALLED) && list[i]->cert_pem &&
            list[i]->cert_pem[0])
            expiring_one(&run, i);
    expiring_report(&run);
    fflush(stdout); /* the list first, then the one line on stderr */
    if (run.due)
        r = cli_fail(PA_E_EXPIRING, N_("listed above; 'pkio-agent renew --token URI' renews one"),
                     ngettext("expiring: %zu certificate due for renewal (within %ld days)",
                              "expiring: %zu certificates due for renewal (within %ld days)",
                              run.due),
                     run.due, run.within);
    json_object_put(run.rows);
    cc_client_free(run.cc);
    lc_jobs_clear(&run.jobs);
    job_list_free(list, n);
    return r;
}

/* ---- certs ----------------------------------------------------------------------------------- */

struct certs_run {
    struct cli *cli;
    struct lc_jobs jobs;
    time_t now;
    json_object *tokens; /* with --json */
    unsigned foreign;    /* over all tokens */
};

/* What one token shows, and the jobs that explain it. */
struct certs_tok {
    struct certs_run *run;
    struct tok_token *tok;
    struct tok_info info;
    struct tok_objects *objs;
    STACK_OF(X509) * all; /* every certificate on the token: untrusted intermediates */
    json_object *keys, *certs, *others;
    unsigned foreign;
};

static const char *job_short(const struct certs_run *run, size_t i)
{
    return run->jobs.v[i]->id;
}

/* Custody evidence of a key pair: the job record's for ours, else read live when visible. */
static json_object *custody_of(struct certs_tok *ct, const struct lc_match *m,
                               const struct tok_object *priv, char *line, size_t linelen)
{
    json_object *o = json_object_new_object();
    struct tok_custody c;

    if (m->role == LC_KEY) {
        const struct job *j = ct->run->jobs.v[m->job];

        snprintf(line, linelen, _("(job record) %s"), j->custody ? j->custody : _("none recorded"));
        json_object_object_add(o, "source", json_object_new_string("job"));
        json_object_object_add(o, "ok", json_object_new_boolean(j->custody_ok));
        json_object_object_add(o, "evidence", str_or_null(j->custody));
    } else if (priv && tok_key_custody(ct->tok, priv->id, priv->id_len, &c) == 0) {
        bool ok = tok_custody_ok(&c) == 0;
        char d[400];

        tok_custody_describe(&c, d, sizeof(d));
        snprintf(line, linelen, _("(read from the token) %s%s"), d,
                 ok ? "" : _("; NOT provably generated on the token"));
        json_object_object_add(o, "source", json_object_new_string("token"));
        json_object_object_add(o, "ok", json_object_new_boolean(ok));
        json_object_object_add(o, "evidence", json_object_new_string(d));
    } else {
        snprintf(line, linelen, "%s",
                 ct->objs->logged_in ? _("unknown: the private key is not visible")
                                     : _("unknown: the private key is not visible without login"));
        json_object_object_add(o, "source", json_object_new_string("none"));
        json_object_object_add(o, "ok", NULL);
        json_object_object_add(o, "evidence", NULL);
    }
    return o;
}

/* The job, its state and order on an object's JSON (nulls for foreign ones). */
static void add_job(json_object *o, const struct certs_run *run, const struct lc_match *m)
{
    const struct job *j = m->role == LC_FOREIGN ? NULL : run->jobs.v[m->job];

    json_object_object_add(o, "role", json_object_new_string(lc_role_name(m->role)));
    json_object_object_add(
        o, "foreign", json_object_new_boolean(m->role == LC_FOREIGN || m->role == LC_UNDER_KEY));
    json_object_object_add(o, "job", j ? json_object_new_string(j->id) : NULL);
    json_object_object_add(o, "job_state",
                           j ? json_object_new_string(job_state_name(j->state)) : NULL);
    json_object_object_add(o, "order_id", j ? long_or_null(j->order_id) : NULL);
}

static void print_job(const struct certs_run *run, const struct lc_match *m)
{
    const struct job *j = m->role == LC_FOREIGN ? NULL : run->jobs.v[m->job];

    if (!j) {
        printf("%s", _("FOREIGN (no job of this station)"));
        return;
    }
    printf(m->role == LC_UNDER_KEY ? _("FOREIGN: under the key of job %.12s (%s), order %ld")
           : m->role == LC_CHAIN   ? _("chain of job %.12s (%s), order %ld")
                                   : _("of job %.12s (%s), order %ld"),
           job_short(run, m->job), job_state_name(j->state), j->order_id);
}

/* Which halves of a key pair are on the token (at least one is). */
static const char *pair_halves(const struct tok_object *priv, const struct tok_object *pub)
{
    return priv && pub ? _("private and public") : priv ? _("private only") : _("public");
}

/* One key pair: a private and/or a public key object with one CKA_ID. */
static void show_keypair(struct certs_tok *ct, const struct tok_object *priv,
                         const struct tok_object *pub)
{
    const struct tok_object *k = priv ? priv : pub;
    struct lc_match m = lc_match_key(&ct->run->jobs, &ct->info, k->id, k->id_len);
    char id[2 * TOK_ID_MAX + 1], label[256], line[640];
    json_object *o, *cust;

    hex(id, k->id, k->id_len);
    lc_printable(k->label, strlen(k->label), label, sizeof(label));
    cust = custody_of(ct, &m, priv, line, sizeof(line));
    ct->foreign += m.role == LC_FOREIGN;
    if (!ct->keys) {
        printf(_("  key pair     id %s label '%s' %s, %s: "), id[0] ? id : _("(none)"), label,
               k->key_type, pair_halves(priv, pub));
        print_job(ct->run, &m);
        printf(_("\n               custody %s\n"), line);
        json_object_put(cust);
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(id));
    json_object_object_add(o, "label", json_object_new_string(label));
    json_object_object_add(o, "key_type", json_object_new_string(k->key_type));
    json_object_object_add(o, "private_key", json_object_new_boolean(priv != NULL));
    json_object_object_add(o, "public_key", json_object_new_boolean(pub != NULL));
    add_job(o, ct->run, &m);
    json_object_object_add(o, "custody", cust);
    json_object_array_add(ct->keys, o);
}

static bool same_id(const struct tok_object *a, const struct tok_object *b)
{
    return a->id_len && a->id_len == b->id_len && memcmp(a->id, b->id, a->id_len) == 0;
}

/* Key pairs: private keys with the public key of the same CKA_ID, then lone public keys. */
static void show_keys(struct certs_tok *ct)
{
    const struct tok_objects *ob = ct->objs;

    for (size_t i = 0; i < ob->n; i++) {
        const struct tok_object *pub = NULL;

        if (ob->v[i].cls != TOK_OBJ_PRIVATE_KEY)
            continue;
        for (size_t k = 0; k < ob->n && !pub; k++)
            if (ob->v[k].cls == TOK_OBJ_PUBLIC_KEY && same_id(&ob->v[k], &ob->v[i]))
                pub = &ob->v[k];
        show_keypair(ct, &ob->v[i], pub);
    }
    for (size_t i = 0; i < ob->n; i++) {
        bool paired = false;

        if (ob->v[i].cls != TOK_OBJ_PUBLIC_KEY)
            continue;
        for (size_t k = 0; k < ob->n && !paired; k++)
            paired = ob->v[k].cls == TOK_OBJ_PRIVATE_KEY && same_id(&ob->v[k], &ob->v[i]);
        if (!paired)
            show_keypair(ct, NULL, &ob->v[i]);
    }
}

/* Does cert verify to trust.anchors through the token's other certificates? */
static json_object *chain_check(struct certs_tok *ct, X509 *cert, char *err, size_t errlen)
{
    const char *anchors = ct->run->cli->cfg->trust_anchors;

    if (!anchors) {
        snprintf(err, errlen, "%s", N_("trust.anchors is not set")); /* translated when shown */
        return NULL;
    }
    if (certs_verify_chain(cert, ct->all, anchors, err, errlen) == 0) {
        err[0] = '\0';
        return json_object_new_boolean(1);
    }
    return json_object_new_boolean(0);
}

/* Revocation as our records know it, for the certificate a job was issued. */
static const char *records_revocation(const struct certs_tok *ct, const struct lc_match *m,
                                      size_t *by)
{
    *by = NONE;
    if (m->role != LC_LEAF)
        return "";
    return lc_revocation(&ct->run->jobs, m->job, by);
}

struct cert_facts {
    char id[2 * TOK_ID_MAX + 1], label[256], subject[512], issuer[512], serial[80], err[512];
    time_t not_before, not_after;
    const char *revocation;
    size_t by;
    struct lc_match m;
    json_object *verifies;
};

/* A revocation state of our records ("revoked", "pending", "rejected"), for the officer. */
static const char *revocation_text(const char *s)
{
    if (strcmp(s, "revoked") == 0)
        return _("revoked");
    if (strcmp(s, "pending") == 0)
        return _("pending");
    if (strcmp(s, "rejected") == 0)
        return _("rejected");
    return s;
}

static void print_cert(const struct certs_tok *ct, const struct tok_object *c,
                       const struct cert_facts *f)
{
    char nb[32], na[32];

    lc_format_time(f->not_before, nb, sizeof(nb));
    lc_format_time(f->not_after, na, sizeof(na));
    printf(_("  certificate  %s%s\n               serial %s, issuer %s, valid %.10s to %.10s%s\n"
             "               id %s label '%s': "),
           c->ca ? _("(CA) ") : "", f->subject, f->serial, f->issuer, nb, na,
           ct->run->now > f->not_after ? _(" (EXPIRED)") : "", f->id[0] ? f->id : _("(none)"),
           f->label);
    print_job(ct->run, &f->m);
    printf(_("\n               chain: %s%s\n"),
           !f->verifies                           ? _("not checked: ")
           : json_object_get_boolean(f->verifies) ? _("verifies to trust.anchors")
                                                  : _("does NOT verify: "),
           f->err[0] ? _(f->err) : "");
    if (f->revocation[0] || f->by != NONE)
        printf(_("               revocation (our records): %s%s%.12s\n"),
               f->revocation[0] ? revocation_text(f->revocation) : _("none"),
               f->by != NONE ? _("; replaced by job ") : "",
               f->by != NONE ? job_short(ct->run, f->by) : "");
}

static void cert_json(struct certs_tok *ct, const struct tok_object *c, struct cert_facts *f)
{
    json_object *o = json_object_new_object();
    const struct job *j = f->m.role == LC_FOREIGN ? NULL : ct->run->jobs.v[f->m.job];

    json_object_object_add(o, "id", json_object_new_string(f->id));
    json_object_object_add(o, "label", json_object_new_string(f->label));
    json_object_object_add(o, "ca", json_object_new_boolean(c->ca));
    json_object_object_add(o, "subject", json_object_new_string(f->subject));
    json_object_object_add(o, "issuer", json_object_new_string(f->issuer));
    json_object_object_add(o, "serial", json_object_new_string(f->serial));
    json_object_object_add(o, "not_before", time_or_null(f->not_before));
    json_object_object_add(o, "not_after", time_or_null(f->not_after));
    json_object_object_add(o, "expired", json_object_new_boolean(ct->run->now > f->not_after));
    json_object_object_add(o, "chain_verifies", f->verifies);
    f->verifies = NULL;
    json_object_object_add(o, "chain_error", str_or_null(f->err));
    add_job(o, ct->run, &f->m);
    json_object_object_add(o, "certificate_id",
                           j && f->m.role == LC_LEAF ? long_or_null(j->certificate_id) : NULL);
    json_object_object_add(o, "revocation", str_or_null(f->revocation));
    json_object_object_add(
        o, "replaced_by", f->by != NONE ? json_object_new_string(job_short(ct->run, f->by)) : NULL);
    json_object_array_add(ct->certs, o);
}

static void show_cert(struct certs_tok *ct, const struct tok_object *c)
{
    struct cert_facts f = {.by = NONE};

    hex(f.id, c->id, c->id_len);
    lc_printable(c->label, strlen(c->label), f.label, sizeof(f.label));
    name_string(X509_get_subject_name(c->cert), f.subject, sizeof(f.subject));
    name_string(X509_get_issuer_name(c->cert), f.issuer, sizeof(f.issuer));
    lc_cert_serial(c->cert, f.serial, sizeof(f.serial));
    (void)lc_asn1_time(X509_get0_notBefore(c->cert), &f.not_before);
    (void)lc_asn1_time(X509_get0_notAfter(c->cert), &f.not_after);
    f.m = lc_match_cert(&ct->run->jobs, &ct->info, c->cert, c->id, c->id_len);
    f.revocation = records_revocation(ct, &f.m, &f.by);
    f.verifies = chain_check(ct, c->cert, f.err, sizeof(f.err));
    ct->foreign += f.m.role == LC_FOREIGN || f.m.role == LC_UNDER_KEY;
    if (ct->certs)
        cert_json(ct, c, &f);
    else
        print_cert(ct, c, &f);
    json_object_put(f.verifies);
}

/* Secret keys, data objects, certificates that are not X.509: no job of ours makes them. */
static void show_other(struct certs_tok *ct, const struct tok_object *x)
{
    char id[2 * TOK_ID_MAX + 1], label[256];
    json_object *o;

    hex(id, x->id, x->id_len);
    lc_printable(x->label, strlen(x->label), label, sizeof(label));
    ct->foreign++;
    if (!ct->others) {
        printf(_("  %-12s id %s label '%s': FOREIGN (no job of this station)\n"),
               tok_obj_class_name(x->cls), id[0] ? id : _("(none)"), label);
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "class", json_object_new_string(tok_obj_class_name(x->cls)));
    json_object_object_add(o, "id", json_object_new_string(id));
    json_object_object_add(o, "label", json_object_new_string(label));
    json_object_object_add(o, "foreign", json_object_new_boolean(1));
    json_object_array_add(ct->others, o);
}

static void show_certs_and_others(struct certs_tok *ct)
{
    for (size_t i = 0; i < ct->objs->n; i++) {
        const struct tok_object *x = &ct->objs->v[i];

        if (x->cls == TOK_OBJ_CERTIFICATE && x->cert)
            show_cert(ct, x);
        else if (x->cls != TOK_OBJ_PRIVATE_KEY && x->cls != TOK_OBJ_PUBLIC_KEY)
            show_other(ct, x);
    }
}

static const char *visibility(const struct certs_tok *ct)
{
    /* English: the --json note; translated with _() where it is printed */
    return ct->objs->logged_in ? N_("logged in: all objects visible")
                               : N_("not logged in: public objects only, private objects (such as "
                                    "private keys) were not visible; give pin-source= in --token "
                                    "to see them");
}

static void token_json(struct certs_tok *ct)
{
    json_object *o = json_object_new_object(), *t = json_object_new_object();
    char *uri = tok_uri_for_token(&ct->info);

    json_object_object_add(t, "label", json_object_new_string(ct->info.label));
    json_object_object_add(t, "serial", json_object_new_string(ct->info.serial));
    json_object_object_add(t, "manufacturer", json_object_new_string(ct->info.manufacturer));
    json_object_object_add(t, "model", json_object_new_string(ct->info.model));
    json_object_object_add(o, "token", t);
    json_object_object_add(o, "uri", str_or_null(uri));
    json_object_object_add(o, "private_objects_visible",
                           json_object_new_boolean(ct->objs->logged_in));
    json_object_object_add(o, "note", json_object_new_string(visibility(ct)));
    json_object_object_add(o, "keys", ct->keys);
    json_object_object_add(o, "certificates", ct->certs);
    json_object_object_add(o, "other_objects", ct->others);
    json_object_object_add(o, "foreign", json_object_new_int64(ct->foreign));
    ct->keys = ct->certs = ct->others = NULL;
    json_object_array_add(ct->run->tokens, o);
    free(uri);
}

/* Every certificate on the token, as untrusted intermediates for chain checks. */
static int token_cert_stack(struct certs_tok *ct)
{
    ct->all = sk_X509_new_null();
    if (!ct->all)
        return PA_E_NOMEM;
    for (size_t i = 0; i < ct->objs->n; i++) {
        X509 *x = ct->objs->v[i].cert;

        if (!x)
            continue;
        if (!X509_up_ref(x))
            return PA_E_NOMEM;
        if (!sk_X509_push(ct->all, x)) {
            X509_free(x);
            return PA_E_NOMEM;
        }
    }
    return 0;
}

/* Everything about one opened token; reports once. */
static int certs_token(struct certs_run *run, struct tok_token *tok)
{
    struct certs_tok ct = {.run = run, .tok = tok};
    int r;

    r = tok_token_info(tok, &ct.info);
    if (r == 0)
        r = tok_list_objects(tok, &ct.objs);
    if (r < 0)
        return cli_fail(r, tok_detail(), "reading the objects of token '%s'", ct.info.label);
    r = token_cert_stack(&ct);
    if (r < 0) {
        cli_fail(r, NULL, "token '%s'", ct.info.label);
        goto out;
    }
    if (run->tokens) {
        ct.keys = json_object_new_array();
        ct.certs = json_object_new_array();
        ct.others = json_object_new_array();
    } else {
        printf(_("token '%s' serial %s (%s %s); %s\n"), ct.info.label, ct.info.serial,
               ct.info.manufacturer, ct.info.model, _(visibility(&ct)));
    }
    show_keys(&ct);
    show_certs_and_others(&ct);
    run->foreign += ct.foreign;
    if (run->tokens)
        token_json(&ct);
    else
        printf(ngettext("  %u object no job of this station explains\n\n",
                        "  %u objects no job of this station explains\n\n", ct.foreign),
               ct.foreign);
out:
    sk_X509_pop_free(ct.all, X509_free);
    tok_objects_free(ct.objs);
    return r;
}

/* The token the URI names; logged in only when the URI gives a pin-source (or --pin-fd). */
static int certs_named(struct certs_run *run, const char *uri)
{
    struct tok_ctx *ctx = NULL;
    struct tok_token *tok = NULL;
    struct tok_uri u;
    bool login;
    int r;

    memset(&u, 0, sizeof(u));
    login = run->cli->pin_fd >= 0 || (tok_uri_parse(uri, false, &u) == 0 && u.pin_source);
    tok_uri_clear(&u);
    r = cli_open_token(run->cli, uri, login, &ctx, &tok, NULL);
    if (r < 0)
        return r;
    r = certs_token(run, tok);
    tok_token_close(tok);
    tok_close(ctx);
    return r;
}

/* Every initialised token present, each in a read-only session without login. */
static int certs_all(struct certs_run *run)
{
    const char *module = cli_module(run->cli);
    struct tok_info *list = NULL;
    struct tok_ctx *ctx = NULL;
    size_t n = 0;
    int r, worst = 0;

    r = tok_open(module, &ctx);
    if (r < 0)
        return cli_fail(r, tok_detail(), "PKCS#11 module %s", module);
    r = tok_list(ctx, &list, &n);
    if (r < 0) {
        worst = cli_fail(r, tok_detail(), "listing tokens");
        n = 0;
    }
    for (size_t i = 0; i < n; i++) {
        struct tok_token *tok = NULL;

        if (!list[i].token_initialized)
            continue;
        r = tok_open_readonly(ctx, &list[i], &tok);
        if (r < 0)
            r = cli_fail(r, tok_detail(), "token '%s'", list[i].label);
        else
            r = certs_token(run, tok);
        tok_token_close(tok);
        if (r < 0 && !worst)
            worst = r;
    }
    if (!run->tokens && n == 0 && !worst)
        printf(_("no token present (module %s)\n"), module);
    free(list);
    tok_close(ctx);
    return worst;
}

static int certs_option(void *arg, int c, const char *val)
{
    const char **token = arg;

    if (c != OPT_TOKEN)
        return CLI_OPT_UNKNOWN;
    *token = val;
    return 0;
}

int cmd_certs(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"token", required_argument, NULL, OPT_TOKEN},
        CLI_OPTS_END,
    };
    static const struct cli_getopt how = {
        .command = "certs", .longopts = opts, .option = certs_option};
    struct certs_run run = {.cli = cli, .now = time(NULL)};
    const char *token = NULL;
    struct job **list = NULL;
    size_t n = 0;
    int r = cli_getopt(cli, &how, &token, argc, argv);

    if (r != 0)
        return r < 0 ? r : 0;
    if (optind != argc)
        return cli_fail(PA_E_USAGE, N_("unexpected argument"), "certs");
    r = load_jobs(cli, &list, &n, &run.jobs);
    if (r < 0)
        return r;
    if (cli->json)
        run.tokens = json_object_new_array();
    r = token ? certs_named(&run, token) : certs_all(&run);
    if (cli->json && (r == 0 || json_object_array_length(run.tokens) > 0)) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "tokens", run.tokens);
        json_object_object_add(o, "foreign", json_object_new_int64(run.foreign));
        run.tokens = NULL;
        cli_print_json(o);
    }
    json_object_put(run.tokens);
    lc_jobs_clear(&run.jobs);
    job_list_free(list, n);
    return r;
}
