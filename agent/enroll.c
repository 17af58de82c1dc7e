/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enroll.c - the enrollment state machine (see enroll.h and docs/ARCHITECTURE.md).
 *
 * One function per step; each loads what it needs, acts, records the result in the job with a
 * transition, saves the record atomically and appends an audit line. The one step that cannot be
 * repeated blindly is placing the order: the record says ORDERING (with the time of the attempt)
 * before the POST leaves, and a resumed ORDERING job looks the order up at CertCentral before it
 * would ever order again.
 */
#include "enroll.h"

#include "audit.h"
#include "certcentral.h"
#include "certs.h"
#include "cli.h"
#include "config.h"
#include "csr.h"
#include "fsutil.h"
#include "job.h"
#include "pa_err.h"
#include "request.h"
#include "secret.h"
#include "writeback.h"

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REQ_FILE_MAX     (256 * 1024)
#define KEY_LABEL_PREFIX "pkio-"

struct ectx {
    struct cli *cli;
    const struct enroll_opts *o;
    const char *state_dir;
    struct job *job;
    int lock_fd;
    struct cc_client *cc; /* created on first use */
    struct tok_ctx *tctx; /* the token stays open for the whole run once opened */
    struct tok_token *tok;
    struct timespec t0;
    bool tty;
};

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

void enroll_handle_stop_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal; /* no SA_RESTART: sleeps end early */
    sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGTERM, &sa, NULL);
    (void)sigaction(SIGINT, &sa, NULL);
}

void enroll_crash_point(const char *name)
{
    const char *at = getenv("PKIO_TEST_CRASH_AT");

    if (at && strcmp(at, name) == 0)
        (void)raise(SIGKILL);
}

static double elapsed(const struct ectx *e)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - e->t0.tv_sec) + (double)(now.tv_nsec - e->t0.tv_nsec) / 1e9;
}

/* One line per step for a person at a terminal. */
static void progress(const struct ectx *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void progress(const struct ectx *e, const char *fmt, ...)
{
    va_list ap;

    if (!e->tty || e->cli->json)
        return;
    fprintf(stderr, "[%7.1fs] job %.8s: ", elapsed(e), e->job ? e->job->id : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void hex_encode(char *out, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", p[i]);
    out[2 * n] = '\0';
}

static int hex_decode(const char *s, unsigned char *out, size_t max, size_t *ret_len)
{
    size_t n = strlen(s);

    if (n == 0 || n % 2 || n / 2 > max)
        return PA_E_JOB;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;

        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return PA_E_JOB;
        out[i] = (unsigned char)v;
    }
    *ret_len = n / 2;
    return 0;
}

static void sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];

    SHA256(p, n, md);
    hex_encode(out, md, sizeof(md));
}

static int save(struct ectx *e)
{
    int r = job_save(e->state_dir, e->job);

    if (r < 0)
        return cli_fail(r, strerror(errno), "saving job %s in %s", e->job->id, e->state_dir);
    return 0;
}

static int audit(struct ectx *e, const char *event, const char *outcome, const char *detail)
{
    struct audit_event ev = {
        .event = event,
        .outcome = outcome,
        .job_id = e->job->id,
        .token_serial = e->job->token_serial,
        .token_label = e->job->token_label,
        .key_id = e->job->key_id_hex[0] ? e->job->key_id_hex : NULL,
        .custody = e->job->custody_ok ? "sensitive,always_sensitive,never_extractable,local" : NULL,
        .csr_sha256 = e->job->csr_sha256[0] ? e->job->csr_sha256 : NULL,
        .order_id = e->job->order_id,
        .certificate_id = e->job->certificate_id,
        .cert_serial = e->job->cert_serial[0] ? e->job->cert_serial : NULL,
        .detail = detail,
    };
    int r = audit_append(e->state_dir, &ev);

    if (r < 0)
        return cli_fail(r, strerror(errno), "appending to the audit log in %s", e->state_dir);
    return 0;
}

/* Record a failure in the job (terminal) and report it. */
static int fail_job(struct ectx *e, int err, const char *event, const char *msg)
{
    (void)job_set_error(e->job, msg);
    (void)job_transition(e->job, JOB_FAILED, "%s", msg);
    (void)save(e);
    (void)audit(e, event, "failed", msg);
    return cli_fail(err, msg, "job %s", e->job->id);
}

static int cc(struct ectx *e, struct cc_client **ret)
{
    int r = 0;

    if (!e->cc)
        r = cli_cc_client(e->cli, &e->cc);
    *ret = e->cc;
    return r;
}

static void token_close(struct ectx *e)
{
    tok_token_close(e->tok);
    tok_close(e->tctx);
    e->tok = NULL;
    e->tctx = NULL;
}

/*
 * Open (once per run) and log in to the job's token; refuse any other token. On enroll the
 * officer's URI is used, on resume one built from the job's serial and label.
 */
static int token_open(struct ectx *e)
{
    struct tok_info info = {0}, now;
    char *uri = NULL, *full = NULL;
    int r;

    if (e->tok)
        return 0;
    if (e->o->token_uri) {
        uri = strdup(e->o->token_uri);
    } else {
        snprintf(info.label, sizeof(info.label), "%s", e->job->token_label);
        snprintf(info.serial, sizeof(info.serial), "%s", e->job->token_serial);
        uri = tok_uri_for_key(&info, NULL, 0, NULL);
        if (uri && e->o->pin_source) {
            size_t n = strlen(uri) + strlen(e->o->pin_source) + 16;

            full = malloc(n);
            if (full)
                snprintf(full, n, "%s?pin-source=%s", uri, e->o->pin_source);
            free(uri);
            uri = full;
        }
    }
    if (!uri)
        return cli_fail(PA_E_NOMEM, NULL, "token URI");
    r = cli_open_token(e->cli, uri, true, &e->tctx, &e->tok, NULL);
    free(uri);
    if (r < 0)
        return r;
    r = tok_token_info(e->tok, &now);
    if (r < 0) {
        cli_fail(r, tok_detail(), "token");
        token_close(e);
        return r;
    }
    /* A job is bound to its token: never touch another one. */
    if (e->job && e->job->token_serial[0] &&
        (strcmp(now.serial, e->job->token_serial) != 0 ||
         strcmp(now.label, e->job->token_label) != 0)) {
        cli_fail(PA_E_TOKEN_GONE, NULL,
                 "job %s belongs to token '%s' (serial %s), not to '%s' (serial %s)", e->job->id,
                 e->job->token_label, e->job->token_serial, now.label, now.serial);
        token_close(e);
        return PA_E_TOKEN_GONE;
    }
    return 0;
}

/* Re-check the binding right before an operation on the token (it may have been swapped). */
static int token_check(struct ectx *e)
{
    struct tok_info now;
    int r = tok_token_info(e->tok, &now);

    if (r == 0 && (strcmp(now.serial, e->job->token_serial) != 0 ||
                   strcmp(now.label, e->job->token_label) != 0))
        r = PA_E_TOKEN_GONE;
    if (r < 0)
        cli_fail(r, tok_detail(), "token '%s' (serial %s) for job %s", e->job->token_label,
                 e->job->token_serial, e->job->id);
    return r;
}

static int key_id(const struct ectx *e, unsigned char *id, size_t *id_len)
{
    return hex_decode(e->job->key_id_hex, id, TOK_ID_MAX, id_len);
}

/* The public key the job is about, from its CSR (which was checked against the token key). */
static int job_pubkey(const struct ectx *e, EVP_PKEY **ret)
{
    BIO *bio = BIO_new_mem_buf(e->job->csr_pem, -1);
    X509_REQ *req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
    EVP_PKEY *pub = req ? X509_REQ_get_pubkey(req) : NULL;

    X509_REQ_free(req);
    BIO_free(bio);
    if (!pub)
        return PA_E_JOB;
    *ret = pub;
    return 0;
}

/* ---- steps ------------------------------------------------------------------------------ */

static int step_keygen(struct ectx *e)
{
    char label[sizeof(e->job->key_label)];
    unsigned char id[TOK_ID_MAX];
    struct tok_custody cust;
    EVP_PKEY *pub = NULL;
    size_t id_len = 0;
    bool adopted = false;
    int r;

    r = token_open(e);
    if (r == 0)
        r = token_check(e);
    if (r < 0)
        return r;
    snprintf(label, sizeof(label), KEY_LABEL_PREFIX "%.16s", e->job->id);
    /* A kill between keygen and saving leaves a key with our label: adopt it, never make two;
     * a kill inside keygen may leave half a pair or mismatched ids: repair that first. */
    r = tok_reconcile_label(e->tok, label);
    if (r < 0)
        return cli_fail(r, tok_detail(), "keys labelled %s on token '%s'", label,
                        e->job->token_label);
    r = tok_find_key_by_label(e->tok, label, id, &id_len);
    if (r == 0) {
        adopted = true;
    } else if (r == PA_E_TOKEN_NOT_FOUND) {
        progress(e, "generating a %s key pair on the token…", e->job->key_type);
        r = tok_keygen(e->tok, e->o->key_type, label, id, &id_len);
    }
    if (r < 0)
        return cli_fail(r, tok_detail(), "key generation on token '%s'", e->job->token_label);
    enroll_crash_point("after-keygen");
    r = tok_key_custody(e->tok, id, id_len, &cust);
    if (r == 0)
        r = tok_custody_ok(&cust);
    if (r < 0) {
        char msg[300];

        snprintf(msg, sizeof(msg), "%s; the key was %s", tok_detail(),
                 tok_delete_keypair(e->tok, id, id_len) == 0 ? "deleted" : "NOT deleted");
        return fail_job(e, r, "keygen", msg);
    }
    r = tok_public_key(e->tok, id, id_len, &pub);
    if (r == 0)
        r = csr_spki_sha256(pub, e->job->spki_sha256);
    EVP_PKEY_free(pub);
    if (r < 0)
        return cli_fail(r, tok_detail(), "reading the new public key");
    hex_encode(e->job->key_id_hex, id, id_len);
    snprintf(e->job->key_label, sizeof(e->job->key_label), "%s", label);
    e->job->custody_ok = true;
    r = job_transition(e->job, JOB_KEY_READY, "%s key %s on the token",
                       adopted ? "adopted" : "generated", e->job->key_id_hex);
    if (r == 0)
        r = save(e);
    if (r == 0)
        r = audit(e, "keygen", "ok", adopted ? "key from an interrupted run adopted" : NULL);
    progress(e, "key pair generated on the token; custody checked");
    return r;
}

/* Load the request and check it is the one the job started with. */
static int load_request(struct ectx *e, struct req **ret)
{
    char err[512] = "", sha[65], *buf = NULL;
    size_t len = 0;
    int r;

    r = fs_read_file(e->job->request_path, REQ_FILE_MAX, &buf, &len);
    if (r < 0)
        return cli_fail(PA_E_REQUEST, strerror(errno), "request %s", e->job->request_path);
    sha256_hex(buf, len, sha);
    secret_wipe(buf, len);
    free(buf);
    if (strcmp(sha, e->job->request_sha256) != 0)
        return cli_fail(PA_E_REQUEST, "the file changed since the job started",
                        "request %s of job %s", e->job->request_path, e->job->id);
    r = req_load_file(e->job->request_path, ret, err, sizeof(err));
    if (r < 0)
        return cli_fail(r, err, "request %s", e->job->request_path);
    return 0;
}

static int step_csr(struct ectx *e)
{
    const char *first = NULL, *last = NULL, *country = NULL;
    struct csr_subject subj = {0};
    EVP_PKEY *pub = NULL, *sign = NULL;
    struct tok_custody cust;
    unsigned char id[TOK_ID_MAX];
    struct req *req = NULL;
    char err[512] = "", spki[65], *pem = NULL;
    size_t id_len = 0;
    long individual_id = -1;
    int r;

    r = load_request(e, &req);
    if (r < 0)
        return r;
    r = req_individual(req, &first, &last, &country, &individual_id);
    if (r == 0 && individual_id > 0 && (!first || !last)) {
        /* An existing individual: CertCentral takes the name from its records; the CSR
         * subject only needs a CN, which DigiCert ignores for these products. */
        first = "PKIo";
        last = "enrollee";
    }
    if (r == 0)
        r = csr_subject_person(first, last, country, &subj, err, sizeof(err));
    if (r < 0) {
        cli_fail(r, err, "request %s", e->job->request_path);
        goto out;
    }
    r = token_open(e);
    if (r == 0)
        r = token_check(e);
    if (r == 0)
        r = key_id(e, id, &id_len);
    if (r < 0)
        goto out;
    r = tok_key_custody(e->tok, id, id_len, &cust);
    if (r == 0)
        r = tok_custody_ok(&cust);
    if (r == 0)
        r = tok_public_key(e->tok, id, id_len, &pub);
    if (r == 0)
        r = csr_spki_sha256(pub, spki);
    if (r == 0 && strcmp(spki, e->job->spki_sha256) != 0) {
        r = cli_fail(PA_E_CUSTODY, "its public key is not the one recorded at generation",
                     "key %s of job %s", e->job->key_id_hex, e->job->id);
        goto out;
    }
    if (r == 0)
        r = tok_signing_key(e->tok, id, id_len, &sign);
    if (r < 0) {
        cli_fail(r, tok_detail(), "key %s of job %s", e->job->key_id_hex, e->job->id);
        goto out;
    }
    r = csr_build(sign, pub, &subj, e->job->pss, &pem, err, sizeof(err));
    if (r < 0) {
        cli_fail(r, err, "CSR of job %s", e->job->id);
        goto out;
    }
    {
        BIO *bio = BIO_new_mem_buf(pem, -1);
        X509_REQ *x = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
        unsigned char *der = NULL;
        int dlen = x ? i2d_X509_REQ(x, &der) : -1;

        if (dlen > 0)
            sha256_hex(der, (size_t)dlen, e->job->csr_sha256);
        OPENSSL_free(der);
        X509_REQ_free(x);
        BIO_free(bio);
    }
    r = job_set_str(&e->job->csr_pem, pem);
    if (r == 0)
        r = job_transition(e->job, JOB_CSR_READY, "CSR for \"%s\" signed on the token", subj.cn);
    if (r == 0)
        r = save(e);
    if (r == 0)
        r = audit(e, "csr", "ok", NULL);
    progress(e, "SHA-256 CSR signed on the token and verified");
out:
    free(pem);
    EVP_PKEY_free(sign);
    EVP_PKEY_free(pub);
    csr_subject_clear(&subj);
    req_free(req);
    return r;
}

/* Build the order body: request + defaults + CSR, validated. Caller frees (wipes if card). */
static int order_body(struct ectx *e, char **ret_body, bool *ret_card)
{
    struct req_errors errs = {0};
    struct req *req = NULL;
    char line[1024];
    int r;

    r = load_request(e, &req);
    if (r < 0)
        return r;
    r = req_merge_defaults(req, e->cli->cfg);
    if (r == 0)
        r = req_set_csr(req, e->cli->cfg, e->job->csr_pem);
    if (r == 0)
        r = req_validate(req, e->cli->cfg, true, &errs);
    if (r == PA_E_REQUEST) {
        req_errors_format(&errs, line, sizeof(line));
        cli_fail(r, line, "request %s: %zu problem%s", e->job->request_path, errs.n,
                 errs.n == 1 ? "" : "s");
    } else if (r < 0) {
        cli_fail(r, NULL, "preparing the order of job %s", e->job->id);
    }
    if (r == 0) {
        *ret_card = req_has_card(req);
        *ret_body = req_to_json(req);
        if (!*ret_body)
            r = cli_fail(PA_E_NOMEM, NULL, "order body");
    }
    req_errors_clear(&errs);
    req_free(req);
    return r;
}

static int step_order(struct ectx *e)
{
    struct cc_order_result res;
    struct cc_client *c = NULL;
    char *body = NULL;
    bool card = false;
    int r;

    r = order_body(e, &body, &card);
    if (r == 0)
        r = cc(e, &c);
    if (r < 0)
        goto out;
    for (unsigned attempt = 0;; attempt++) {
        /* Record the attempt durably before anything leaves: a kill from here on is recovered
         * by looking the order up, never by ordering again blindly. */
        e->job->order_attempt_at = time(NULL);
        if (e->job->state != JOB_ORDERING)
            r = job_transition(e->job, JOB_ORDERING, "placing the order");
        else
            r = job_note(e->job, "placing the order");
        if (r == 0)
            r = save(e);
        if (r < 0)
            goto out;
        enroll_crash_point("before-post");
        progress(e, "placing the order at CertCentral…");
        r = cc_place_order(c, e->cli->cfg->api_product, body, NULL, NULL, &res);
        enroll_crash_point("after-post");
        if (r == 0)
            break;
        if (cc_order_maybe_placed(c)) {
            (void)job_note(e->job, "order may have been placed: %s", cc_last_error(c));
            (void)save(e);
            cli_fail(r, cc_last_error(c),
                     "the order of job %s may have been placed; 'pkio-agent resume %s' looks it "
                     "up before anything else",
                     e->job->id, e->job->id);
            (void)audit(e, "order", "failed", cc_last_error(c));
            goto out;
        }
        e->job->order_attempt_at = 0; /* certainly not placed: ordering again is safe */
        (void)job_note(e->job, "order not placed: %s", cc_last_error(c));
        (void)save(e);
        /* Not placed, and only for now (429, 503, no connection): wait and send it again, a
         * few times. A refusal (4xx) or a maybe-placed order is never sent again here. */
        if (r == PA_E_CA_UNAVAILABLE && attempt < 3 && !stop_requested && !e->o->no_wait) {
            unsigned short rnd = 0;
            double d;

            /* Jitter from the CSPRNG: processes sharing a key must not retry in step. */
            (void)RAND_bytes((unsigned char *)&rnd, sizeof(rnd));
            d = cc_backoff_delay(attempt, 5.0, 60.0, (double)rnd / 65536.0);
            struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};

            progress(e, "CertCentral busy (%s); trying again in %.0fs", cc_last_error(c), d);
            nanosleep(&ts, NULL);
            continue;
        }
        cli_fail(r, cc_last_error(c), "order of job %s (not placed)", e->job->id);
        (void)audit(e, "order", "failed", cc_last_error(c));
        goto out;
    }
    e->job->order_id = res.id;
    e->job->certificate_id = res.certificate_id;
    snprintf(e->job->order_status, sizeof(e->job->order_status), "%s",
             res.request_status[0] ? res.request_status : "pending");
    e->job->poll_interval_s = e->cli->cfg->poll_initial_s;
    e->job->next_poll = time(NULL);
    r = job_transition(e->job, JOB_ORDERED, "order %ld placed", res.id);
    if (r == 0)
        r = save(e);
    if (r == 0)
        r = audit(e, "order", "ok", NULL);
    progress(e, "order %ld placed", res.id);
out:
    if (body && card)
        secret_wipe(body, strlen(body));
    free(body);
    return r;
}

static void strip_ws(char *s)
{
    char *o = s;

    for (; *s; s++)
        if (*s != ' ' && *s != '\n' && *s != '\r' && *s != '\t')
            *o++ = *s;
    *o = '\0';
}

/* Does this order carry our CSR? -1 when CertCentral does not say. */
static int order_has_csr(const struct cc_order_info *info, const char *csr_pem)
{
    char *a, *b;
    int same;

    if (!info->csr)
        return -1;
    a = strdup(info->csr);
    b = strdup(csr_pem);
    if (!a || !b) {
        free(a);
        free(b);
        return -1;
    }
    strip_ws(a);
    strip_ws(b);
    same = strcmp(a, b) == 0;
    free(a);
    free(b);
    return same;
}

/*
 * ORDERING after a kill or a lost answer: find the order this job placed, by its CSR, among
 * the product's orders created since the attempt. Found: continue with it. Certainly none:
 * order (once). Undecidable: stop and say so.
 */
static int step_recover(struct ectx *e)
{
    struct cc_order_info *list = NULL, info;
    struct cc_client *c = NULL;
    long found = 0, found_cert = 0, unknown = 0;
    size_t n = 0, matches = 0;
    char since[16];
    struct tm tm;
    time_t t;
    int r;

    if (!e->job->order_attempt_at)
        return step_order(e); /* the attempt never left the machine */
    r = cc(e, &c);
    if (r < 0)
        return r;
    t = e->job->order_attempt_at - 86400; /* date filters are days; be generous */
    gmtime_r(&t, &tm);
    strftime(since, sizeof(since), "%Y-%m-%d", &tm);
    progress(e, "looking up the order placed before the interruption…");
    r = cc_list_orders(c, e->cli->cfg->api_product, since, &list, &n);
    if (r < 0)
        return cli_fail(r, cc_last_error(c), "looking up the order of job %s", e->job->id);
    for (size_t i = 0; i < n; i++) {
        int has;

        memset(&info, 0, sizeof(info));
        r = cc_order_info(c, list[i].id, &info);
        if (r < 0) {
            cli_fail(r, cc_last_error(c), "order %ld", list[i].id);
            cc_order_info_clear(&info);
            goto out;
        }
        has = order_has_csr(&info, e->job->csr_pem);
        if (has == 1) {
            matches++;
            found = info.id;
            found_cert = info.certificate_id;
        } else if (has < 0) {
            unknown++;
        }
        cc_order_info_clear(&info);
    }
    if (matches > 1) {
        r = cli_fail(PA_E_JOB,
                     "more than one order carries this job's CSR; cancel the extra "
                     "ones in CertCentral",
                     "job %s", e->job->id);
        goto out;
    }
    if (matches == 1) {
        e->job->order_id = found;
        e->job->certificate_id = found_cert;
        e->job->poll_interval_s = e->cli->cfg->poll_initial_s;
        e->job->next_poll = time(NULL);
        r = job_transition(e->job, JOB_ORDERED, "order %ld found after the interruption", found);
        if (r == 0)
            r = save(e);
        if (r == 0)
            r = audit(e, "order", "recovered", NULL);
        progress(e, "order %ld found; not ordering again", found);
        goto out;
    }
    if (unknown > 0) {
        r = cli_fail(PA_E_JOB,
                     "CertCentral does not show the CSR of recent orders, so pkio-agent cannot "
                     "tell whether the interrupted order was placed; check CertCentral, then "
                     "cancel this job or record the order",
                     "job %s", e->job->id);
        goto out;
    }
    /* No order with our CSR exists. An answer in flight cannot arrive after the client's total
     * timeout; past that, the attempt certainly did not create an order. */
    {
        double window = e->cli->cfg->api_timeout_s + 1.0;
        double age = difftime(time(NULL), e->job->order_attempt_at);

        if (age < window) {
            struct timespec ts = {(time_t)(window - age) + 1, 0};

            progress(e, "waiting %lds before deciding that the interrupted order was not placed",
                     (long)ts.tv_sec);
            cc_order_list_free(list, n);
            list = NULL;
            nanosleep(&ts, NULL);
            return step_recover(e); /* once more, now past the window */
        }
    }
    e->job->order_attempt_at = 0;
    (void)job_note(e->job, "no order carries this CSR: the interrupted attempt was not placed");
    r = save(e);
    if (r == 0)
        r = step_order(e);
out:
    cc_order_list_free(list, n);
    return r;
}

static int download_and_verify(struct ectx *e)
{
    STACK_OF(X509) *all = NULL, *chain = NULL;
    struct cc_client *c = NULL;
    EVP_PKEY *pub = NULL;
    X509 *leaf = NULL;
    char err[512] = "", *pem = NULL;
    size_t len = 0;
    int r;

    if (!e->cli->cfg->trust_anchors)
        return cli_fail(PA_E_CONFIG, "set trust.anchors to the PEM file of the PKIoverheid roots",
                        "configuration");
    r = cc(e, &c);
    if (r < 0)
        return r;
    r = cc_download(c, e->job->certificate_id, "pem_noroot", &pem, &len);
    if (r < 0)
        return cli_fail(r, cc_last_error(c), "downloading certificate %ld", e->job->certificate_id);
    r = certs_parse_pem(pem, len, &all);
    if (r == 0)
        r = job_pubkey(e, &pub);
    if (r == 0)
        r = certs_pick_leaf(all, pub, &leaf, &chain);
    if (r < 0) {
        r = fail_job(e, PA_E_CERT, "issued", "the issued certificate does not carry the token key");
        goto out;
    }
    r = certs_verify_chain(leaf, chain, e->cli->cfg->trust_anchors, err, sizeof(err));
    if (r < 0) {
        r = fail_job(e, r, "issued", err);
        goto out;
    }
    {
        const ASN1_INTEGER *sn = X509_get0_serialNumber(leaf);
        BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
        char *h = bn ? BN_bn2hex(bn) : NULL;

        snprintf(e->job->cert_serial, sizeof(e->job->cert_serial), "%s", h ? h : "");
        OPENSSL_free(h);
        BN_free(bn);
    }
    r = job_set_str(&e->job->cert_pem, pem);
    if (r == 0)
        r = job_transition(e->job, JOB_ISSUED,
                           "certificate %ld (serial %s) downloaded and verified",
                           e->job->certificate_id, e->job->cert_serial);
    if (r == 0)
        r = save(e);
    if (r == 0)
        r = audit(e, "issued", "ok", NULL);
    progress(e, "certificate issued, chain verified");
out:
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    sk_X509_pop_free(all, X509_free);
    EVP_PKEY_free(pub);
    free(pem);
    return r;
}

static int step_poll(struct ectx *e)
{
    const struct cfg *cfg = e->cli->cfg;
    struct cc_client *c = NULL;
    int r = cc(e, &c);

    if (r < 0)
        return r;
    for (bool waited = false;; waited = true) {
        struct cc_order_info info;
        time_t now = time(NULL);

        if (stop_requested)
            return PA_E_PENDING;
        if (!waited && e->job->next_poll > now) {
            if (e->o->no_wait)
                return PA_E_PENDING;
            struct timespec ts = {e->job->next_poll - now, 0};

            nanosleep(&ts, NULL);
        }
        memset(&info, 0, sizeof(info));
        r = cc_order_info(c, e->job->order_id, &info);
        if (r < 0) {
            cli_fail(r, cc_last_error(c), "order %ld of job %s", e->job->order_id, e->job->id);
            cc_order_info_clear(&info);
            return r;
        }
        if (strcmp(info.status, e->job->order_status) != 0) {
            snprintf(e->job->order_status, sizeof(e->job->order_status), "%s", info.status);
            (void)job_note(e->job, "CertCentral: %s (%s)", info.status, info.reason);
            progress(e, "order %ld: %s", e->job->order_id,
                     info.reason[0] ? info.reason : info.status);
        }
        if (info.certificate_id)
            e->job->certificate_id = info.certificate_id;
        switch (info.st) {
        case CC_ST_ISSUED:
            cc_order_info_clear(&info);
            if (!e->job->certificate_id)
                return cli_fail(PA_E_CA_PROTOCOL, "issued without a certificate id", "order %ld",
                                e->job->order_id);
            return download_and_verify(e);
        case CC_ST_FAILED: {
            char msg[256];

            snprintf(msg, sizeof(msg), "order %ld ended: %s", e->job->order_id, info.reason);
            cc_order_info_clear(&info);
            return fail_job(e, PA_E_CA_REJECTED, "order", msg);
        }
        case CC_ST_UNKNOWN:
            r = cli_fail(PA_E_CA_PROTOCOL, info.reason, "order %ld of job %s", e->job->order_id,
                         e->job->id);
            cc_order_info_clear(&info);
            (void)save(e);
            return r;
        case CC_ST_WAITING:
        default:
            break;
        }
        cc_order_info_clear(&info);
        /* Waiting: status-aware backoff, recorded so a restart does not poll in a burst. */
        e->job->next_poll = time(NULL) + (time_t)(e->job->poll_interval_s + 0.999);
        if (e->job->poll_interval_s < cfg->poll_initial_s)
            e->job->poll_interval_s = cfg->poll_initial_s;
        e->job->poll_interval_s *= 2;
        if (e->job->poll_interval_s > cfg->poll_max_s)
            e->job->poll_interval_s = cfg->poll_max_s;
        r = save(e);
        if (r < 0)
            return r;
        if (e->o->no_wait)
            return PA_E_PENDING;
        if (difftime(time(NULL), e->job->order_attempt_at) > cfg->poll_timeout_s)
            return cli_fail(PA_E_PENDING, e->job->order_status,
                            "order %ld of job %s is still waiting; 'pkio-agent resume %s' "
                            "continues later",
                            e->job->order_id, e->job->id, e->job->id);
        {
            /* Sleep the (possibly fractional) interval itself; next_poll is for restarts. */
            double s = e->job->poll_interval_s / 2; /* the interval before doubling */
            struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};

            nanosleep(&ts, NULL);
        }
    }
}

static int step_install(struct ectx *e)
{
    STACK_OF(X509) *all = NULL, *chain = NULL;
    unsigned char id[TOK_ID_MAX];
    struct wb_result res;
    EVP_PKEY *pub = NULL;
    X509 *leaf = NULL;
    char err[512] = "";
    size_t id_len = 0;
    int r;

    r = token_open(e);
    if (r == 0)
        r = token_check(e);
    if (r == 0)
        r = key_id(e, id, &id_len);
    if (r < 0)
        return r;
    r = certs_parse_pem(e->job->cert_pem, strlen(e->job->cert_pem), &all);
    if (r == 0)
        r = job_pubkey(e, &pub);
    if (r == 0)
        r = certs_pick_leaf(all, pub, &leaf, &chain);
    if (r < 0) {
        cli_fail(r, NULL, "certificate of job %s", e->job->id);
        goto out;
    }
    progress(e, "writing the certificate and its chain to the token…");
    r = wb_install(e->tok, id, id_len, leaf, chain, &res, err, sizeof(err));
    if (r < 0) {
        cli_fail(r, err, "writing the certificate of job %s to token '%s'", e->job->id,
                 e->job->token_label);
        goto out;
    }
    enroll_crash_point("after-install");
    r = job_transition(e->job, JOB_INSTALLED,
                       "certificate on the token (%s), %u CA certificate(s) written, %u present",
                       res.leaf_written ? "written" : "already there", res.ca_written,
                       res.ca_present);
    if (r == 0)
        r = save(e);
    if (r == 0)
        r = audit(e, "installed", "ok", NULL);
    progress(e, "certificate written to the token and read back");
out:
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    sk_X509_pop_free(all, X509_free);
    EVP_PKEY_free(pub);
    return r;
}

/* Note the link in the replaced certificate's job, if it is one of ours. */
static void link_old_job(struct ectx *e, long old_cert)
{
    struct job **list = NULL;
    size_t n = 0;
    char err[256];

    if (job_list(e->state_dir, &list, &n, err, sizeof(err)) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        if (list[i]->certificate_id == old_cert && strcmp(list[i]->id, e->job->id) != 0) {
            int fd = -1;

            if (job_lock(e->state_dir, list[i]->id, &fd) == 0) {
                (void)job_note(list[i], "certificate %ld revoked (superseded): replaced by job %s",
                               old_cert, e->job->id);
                (void)job_save(e->state_dir, list[i]);
                job_unlock(fd);
            }
        }
    }
    job_list_free(list, n);
}

static int step_finish(struct ectx *e)
{
    struct cc_client *c = NULL;
    long old = e->job->replaces_certificate_id;
    char comment[128];
    int r;

    if ((e->job->replaces_certificate_id || e->job->replaces_order_id) && !e->job->old_revoked) {
        r = cc(e, &c);
        if (r < 0)
            return r;
        if (!old) {
            struct cc_order_info info;

            memset(&info, 0, sizeof(info));
            r = cc_order_info(c, e->job->replaces_order_id, &info);
            old = info.certificate_id;
            cc_order_info_clear(&info);
            if (r < 0 || !old)
                return cli_fail(r < 0 ? r : PA_E_CA_PROTOCOL, cc_last_error(c),
                                "finding the certificate of replaced order %ld",
                                e->job->replaces_order_id);
            e->job->replaces_certificate_id = old;
        }
        /* Only now, with the new certificate safely on the new token, revoke the old one. */
        enroll_crash_point("before-revoke");
        snprintf(comment, sizeof(comment), "replaced by pkio-agent job %s", e->job->id);
        r = cc_revoke_certificate(c, old, "superseded", comment, NULL);
        if (r < 0) {
            (void)audit(e, "revoke", "failed", cc_last_error(c));
            return cli_fail(r, cc_last_error(c), "revoking replaced certificate %ld", old);
        }
        e->job->old_revoked = true;
        (void)job_note(e->job, "replaced certificate %ld revoked (superseded)%s%s", old,
                       cc_last_error(c)[0] ? ": " : "", cc_last_error(c));
        r = save(e);
        if (r == 0)
            r = audit(e, "revoke", "ok", cc_last_error(c)[0] ? cc_last_error(c) : NULL);
        if (r < 0)
            return r;
        link_old_job(e, old);
        progress(e, "replaced certificate %ld revoked", old);
    }
    r = job_transition(e->job, JOB_DONE, "done");
    if (r == 0)
        r = save(e);
    if (r == 0)
        r = audit(e, "done", "ok", NULL);
    return r;
}

/* Drive the job until it is done, waits (PA_E_PENDING) or fails. */
static int drive(struct ectx *e)
{
    int r = 0;

    while (r == 0) {
        if (stop_requested && !job_state_terminal(e->job->state)) {
            (void)job_note(e->job, "stopped on request; resume continues here");
            (void)save(e);
            return PA_E_PENDING; /* the record says where to go on */
        }
        switch (e->job->state) {
        case JOB_NEW:
            r = step_keygen(e);
            break;
        case JOB_KEY_READY:
            r = step_csr(e);
            break;
        case JOB_CSR_READY:
            r = step_order(e);
            break;
        case JOB_ORDERING:
            r = step_recover(e);
            break;
        case JOB_ORDERED:
            r = step_poll(e);
            break;
        case JOB_ISSUED:
            r = step_install(e);
            break;
        case JOB_INSTALLED:
            r = step_finish(e);
            break;
        case JOB_DONE:
            return 0;
        case JOB_FAILED:
            return cli_fail(PA_E_JOB, e->job->last_error, "job %s failed", e->job->id);
        case JOB_CANCELED:
            return cli_fail(PA_E_JOB, "it was canceled", "job %s", e->job->id);
        case JOB_STATE__MAX:
        default:
            return cli_fail(PA_E_INTERNAL, NULL, "job %s: bad state", e->job->id);
        }
    }
    return r;
}

static void report(struct ectx *e, int r)
{
    const struct job *j = e->job;

    if (e->cli->json) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "job", json_object_new_string(j->id));
        json_object_object_add(o, "state", json_object_new_string(job_state_name(j->state)));
        json_object_object_add(o, "token_serial", json_object_new_string(j->token_serial));
        json_object_object_add(o, "token_label", json_object_new_string(j->token_label));
        json_object_object_add(o, "key_id", json_object_new_string(j->key_id_hex));
        json_object_object_add(o, "order_id",
                               j->order_id ? json_object_new_int64(j->order_id) : NULL);
        json_object_object_add(o, "order_status", json_object_new_string(j->order_status));
        json_object_object_add(o, "certificate_id",
                               j->certificate_id ? json_object_new_int64(j->certificate_id) : NULL);
        json_object_object_add(o, "certificate_serial", json_object_new_string(j->cert_serial));
        json_object_object_add(o, "pending", json_object_new_boolean(r == PA_E_PENDING));
        cli_print_json(o);
        return;
    }
    if (r == 0 && j->state == JOB_DONE)
        printf("job %s: done; certificate %s is on token '%s' (serial %s) with key %s\n", j->id,
               j->cert_serial, j->token_label, j->token_serial, j->key_label);
    else if (r == PA_E_PENDING && j->state == JOB_ORDERED)
        printf("job %s: order %ld placed, waiting (%s); 'pkio-agent resume %s' continues\n", j->id,
               j->order_id, j->order_status[0] ? j->order_status : "pending", j->id);
    else if (r == PA_E_PENDING)
        printf("job %s: stopped at '%s'; 'pkio-agent resume %s' continues\n", j->id,
               job_state_name(j->state), j->id);
}

static int sha256_file(const char *path, char out[65])
{
    char *buf = NULL;
    size_t len = 0;
    int r = fs_read_file(path, REQ_FILE_MAX, &buf, &len);

    if (r < 0)
        return r;
    sha256_hex(buf, len, out);
    secret_wipe(buf, len);
    free(buf);
    return 0;
}

/* Lock the job and drive it; release everything. */
static int run_job(struct ectx *e)
{
    int r = job_lock(e->state_dir, e->job->id, &e->lock_fd);

    if (r < 0)
        return cli_fail(r, "another pkio-agent process is working on it", "job %s", e->job->id);
    r = drive(e);
    report(e, r);
    job_unlock(e->lock_fd);
    e->lock_fd = -1;
    return r;
}

static void ectx_clear(struct ectx *e)
{
    token_close(e);
    cc_client_free(e->cc);
    job_free(e->job);
    if (e->lock_fd >= 0)
        job_unlock(e->lock_fd);
}

static int ectx_init(struct ectx *e, struct cli *cli, const struct enroll_opts *o)
{
    char err[512] = "";
    int r;

    memset(e, 0, sizeof(*e));
    e->cli = cli;
    e->o = o;
    e->lock_fd = -1;
    e->state_dir = cli_state_dir(cli);
    e->tty = isatty(STDERR_FILENO) || getenv("PKIO_PROGRESS"); /* PKIO_PROGRESS: logs, demos */
    clock_gettime(CLOCK_MONOTONIC, &e->t0);
    r = job_dir_prepare(e->state_dir, err, sizeof(err));
    if (r < 0)
        return cli_fail(r, err, "state directory %s", e->state_dir);
    return 0;
}

/* Validate the request (without the CSR) before anything touches the token or the network. */
static int precheck_request(struct cli *cli, const char *path)
{
    struct req *req = NULL;
    int r = cli_prepare_request(cli, path, NULL, &req);

    req_free(req);
    return r;
}

int enroll_start(struct cli *cli, const struct enroll_opts *o, char *ret_job)
{
    struct job **list = NULL;
    struct tok_info info;
    struct ectx e;
    char err[512] = "", sha[65], *abs = NULL;
    size_t n = 0;
    int r;

    r = ectx_init(&e, cli, o);
    if (r < 0)
        return r;
    r = precheck_request(cli, o->request);
    if (r < 0)
        goto out;
    abs = realpath(o->request, NULL);
    if (!abs || sha256_file(abs, sha) < 0) {
        r = cli_fail(PA_E_REQUEST, strerror(errno), "request %s", o->request);
        goto out;
    }
    r = token_open(&e);
    if (r == 0)
        r = tok_token_info(e.tok, &info);
    if (r < 0)
        goto out;
    /* The officer's natural retry: an unfinished job on this token is continued, not doubled. */
    r = job_list(e.state_dir, &list, &n, err, sizeof(err));
    if (r < 0) {
        cli_fail(r, err, "jobs in %s", e.state_dir);
        goto out;
    }
    for (size_t i = 0; i < n && !e.job; i++) {
        struct job *j = list[i];

        if (job_state_terminal(j->state) || strcmp(j->token_serial, info.serial) != 0 ||
            strcmp(j->token_label, info.label) != 0)
            continue;
        if (strcmp(j->request_sha256, sha) != 0) {
            r = cli_fail(PA_E_JOB, "it was started for another request file",
                         "token '%s' (serial %s) has unfinished job %s (%s); 'pkio-agent resume "
                         "%s' or 'pkio-agent cancel %s' first",
                         info.label, info.serial, j->id, job_state_name(j->state), j->id, j->id);
            goto out;
        }
        e.job = j;
        list[i] = NULL;
        progress(&e, "continuing the unfinished job for this token (%s)",
                 job_state_name(e.job->state));
    }
    if (!e.job) {
        r = job_new(&e.job);
        if (r < 0) {
            cli_fail(r, NULL, "new job");
            goto out;
        }
        snprintf(e.job->token_serial, sizeof(e.job->token_serial), "%s", info.serial);
        snprintf(e.job->token_label, sizeof(e.job->token_label), "%s", info.label);
        snprintf(e.job->token_model, sizeof(e.job->token_model), "%s", info.model);
        snprintf(e.job->token_manufacturer, sizeof(e.job->token_manufacturer), "%s",
                 info.manufacturer);
        snprintf(e.job->key_type, sizeof(e.job->key_type), "%s", tok_key_type_name(o->key_type));
        snprintf(e.job->request_sha256, sizeof(e.job->request_sha256), "%s", sha);
        e.job->pss = o->pss;
        e.job->replaces_certificate_id = o->replaces_certificate_id;
        e.job->replaces_order_id = o->replaces_order_id;
        r = job_set_str(&e.job->product, cli->cfg->api_product);
        if (r == 0)
            r = job_set_str(&e.job->request_path, abs);
        if (r == 0)
            r = job_note(e.job, "enrollment started for token '%s' (serial %s)", info.label,
                         info.serial);
        if (r == 0)
            r = save(&e);
        if (r == 0)
            r = audit(&e, "start", "ok", NULL);
        if (r < 0)
            goto out;
        progress(&e, "enrollment started");
    }
    if (ret_job)
        memcpy(ret_job, e.job->id, sizeof(e.job->id));
    r = run_job(&e);
out:
    job_list_free(list, n);
    free(abs);
    ectx_clear(&e);
    return r;
}

/* Back to the state a failed job failed in (resume after the officer fixed the cause). */
static int unfail(struct job *j)
{
    for (size_t i = j->nhistory; i-- > 0;) {
        enum job_state s = j->history[i].state;

        if (s != JOB_FAILED && !job_state_terminal(s))
            return job_transition(j, s, "resumed after failure");
    }
    return job_transition(j, JOB_NEW, "resumed after failure");
}

int enroll_resume(struct cli *cli, const char *job_id, const struct enroll_opts *o)
{
    struct ectx e;
    char err[512] = "";
    int r;

    r = ectx_init(&e, cli, o);
    if (r < 0)
        return r;
    r = job_load(e.state_dir, job_id, &e.job, err, sizeof(err));
    if (r < 0) {
        cli_fail(r, err, "job %s", job_id);
        goto out;
    }
    if (e.job->state == JOB_DONE) {
        report(&e, 0);
        goto out;
    }
    if (e.job->state == JOB_FAILED) {
        r = unfail(e.job);
        if (r == 0)
            r = save(&e);
        if (r < 0)
            goto out;
    }
    r = run_job(&e);
out:
    ectx_clear(&e);
    return r;
}

int enroll_cancel(struct cli *cli, const char *job_id, const struct enroll_opts *o)
{
    unsigned char id[TOK_ID_MAX];
    struct cc_client *c = NULL;
    struct ectx e;
    char err[512] = "";
    size_t id_len = 0;
    int r;

    r = ectx_init(&e, cli, o);
    if (r < 0)
        return r;
    r = job_load(e.state_dir, job_id, &e.job, err, sizeof(err));
    if (r < 0) {
        cli_fail(r, err, "job %s", job_id);
        goto out;
    }
    if (e.job->state == JOB_DONE || e.job->state == JOB_CANCELED || e.job->state >= JOB_ISSUED) {
        r = cli_fail(PA_E_JOB,
                     e.job->state >= JOB_ISSUED && e.job->state != JOB_CANCELED
                         ? "its certificate is issued; revoke it in CertCentral instead"
                         : "nothing to cancel",
                     "job %s (%s)", e.job->id, job_state_name(e.job->state));
        goto out;
    }
    r = job_lock(e.state_dir, e.job->id, &e.lock_fd);
    if (r < 0) {
        cli_fail(r, "another pkio-agent process is working on it", "job %s", e.job->id);
        goto out;
    }
    if (e.job->state == JOB_ORDERING && e.job->order_attempt_at) {
        r = cli_fail(PA_E_JOB, "its order may have been placed; 'pkio-agent resume' finds it first",
                     "job %s", e.job->id);
        goto out;
    }
    if (e.job->order_id) {
        r = cc(&e, &c);
        if (r == 0)
            r = cc_cancel_order(c, e.job->order_id, "canceled by the registration officer");
        if (r < 0) {
            cli_fail(r, cc_last_error(c), "canceling order %ld", e.job->order_id);
            goto out;
        }
        (void)audit(&e, "cancel-order", "ok", NULL);
    }
    /* The orphan key goes too; it has no certificate and never will. */
    if (e.job->key_id_hex[0]) {
        r = token_open(&e);
        if (r == 0)
            r = token_check(&e);
        if (r == 0)
            r = key_id(&e, id, &id_len);
        if (r == 0) {
            r = tok_delete_keypair(e.tok, id, id_len);
            if (r == PA_E_TOKEN_NOT_FOUND)
                r = 0;
        }
        if (r < 0) {
            cli_fail(r, tok_detail(), "removing key %s of job %s", e.job->key_id_hex, e.job->id);
            goto out;
        }
    }
    r = job_transition(e.job, JOB_CANCELED, "canceled by the officer");
    if (r == 0)
        r = save(&e);
    if (r == 0)
        r = audit(&e, "cancel", "ok", NULL);
    if (r == 0 && !cli->json)
        printf("job %s canceled%s%s\n", e.job->id, e.job->order_id ? "; order canceled" : "",
               e.job->key_id_hex[0] ? "; key removed from the token" : "");
out:
    ectx_clear(&e);
    return r;
}
