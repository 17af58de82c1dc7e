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
#include "i18n.h"
#include "job.h"
#include "pa_err.h"
#include "person.h"
#include "policy.h"
#include "queue.h"
#include "request.h"
#include "revoke.h"
#include "secret.h"
#include "stop.h"
#include "writeback.h"

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REQ_FILE_MAX      (256 * 1024)
#define KEY_LABEL_PREFIX  "pkio-"
#define TOKEN_LOCK_WAIT_S 5.0 /* a second process for one token waits this long, then "busy" */

struct ectx {
    struct cli *cli;
    const struct enroll_opts *o;
    const char *state_dir;
    struct job *job;
    int lock_fd;
    int token_lock_fd;
    bool stamp_failed;    /* the before-send hook could not record the attempt */
    struct cc_client *cc; /* created on first use */
    struct tok_ctx *tctx; /* the token stays open for the whole run once opened */
    struct tok_token *tok;
    struct timespec t0;
    bool tty;
};

void enroll_handle_stop_signals(void)
{
    stop_handle_signals();
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
    fprintf(stderr, _("[%7.1fs] job %.8s: "), elapsed(e), e->job ? e->job->id : "");
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

/*
 * Save the job with the event as an intent, in one atomic write with the state it records, then
 * append it to the audit log and keep its (seq, hash) in the record (audit_commit_pending saves
 * again). Replaces save() before an event: a kill anywhere in between loses no event, and the
 * next lock_and_load appends what is pending (never twice).
 */
static int audit(struct ectx *e, const char *event, const char *outcome, const char *detail)
{
    struct audit_event ev = {
        .event = event,
        .outcome = outcome,
        .job_id = e->job->id,
        .token_serial = e->job->token_serial,
        .token_label = e->job->token_label,
        .key_id = e->job->key_id_hex[0] ? e->job->key_id_hex : NULL,
        .custody = e->job->custody_ok ? e->job->custody : NULL,
        .csr_sha256 = e->job->csr_sha256[0] ? e->job->csr_sha256 : NULL,
        .order_id = e->job->order_id,
        .certificate_id = e->job->certificate_id,
        .cert_serial = e->job->cert_serial[0] ? e->job->cert_serial : NULL,
        .detail = detail,
    };
    int r = audit_job_intent(e->job, &ev);
    int s = save(e); /* the state and the event in one write: a kill now loses neither */

    if (r < 0)
        return cli_fail(r, NULL, "recording audit event %s of job %s", event, e->job->id);
    if (s < 0)
        return s;
    r = audit_commit_pending(e->state_dir, e->job);
    if (r < 0)
        return cli_fail(r, strerror(errno), "appending to the audit log in %s", e->state_dir);
    return 0;
}

/* Record a failure in the job (terminal) and report it: msg in English for the records, shown
 * (NULL: msg, translated when it is a message of the catalog) for the officer. */
static int fail_job(struct ectx *e, int err, const char *event, const char *msg, const char *shown)
{
    (void)job_set_error(e->job, msg);
    (void)job_transition(e->job, JOB_FAILED, "%s", msg);
    (void)audit(e, event, "failed", msg);
    return cli_fail(err, shown ? shown : msg, "job %s", e->job->id);
}

/*
 * A failure after the order exists: never a dead end that a new `enroll` would bypass with a
 * second order. The job keeps its state (and its order and key); the error is recorded, and
 * the same `enroll` (or `resume`) continues with the same order once the cause is fixed.
 */
static int hold_job(struct ectx *e, int err, const char *event, const char *msg)
{
    (void)job_set_error(e->job, msg);
    (void)job_note(e->job, "stopped: %s", msg);
    (void)audit(e, event, "failed", msg);
    return cli_fail(err, msg,
                    "job %s (order %ld kept; after fixing the cause, run the same enroll again or "
                    "'pkio-agent resume %s': nothing is ordered twice)",
                    e->job->id, e->job->order_id, e->job->id);
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
    struct tok_info now;
    char *uri = NULL;
    int r;

    if (e->tok)
        return 0;
    if (e->o->token_uri) {
        uri = strdup(e->o->token_uri);
    } else {
        /* The job's own token, named by serial and label; the PIN file (if any) as pin-source,
         * percent-encoded like every value we print. */
        struct tok_uri u = {0};

        u.token = e->job->token_label;
        u.serial = e->job->token_serial;
        u.pin_source = (char *)(uintptr_t)e->o->pin_source;
        uri = tok_uri_format(&u);
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

/* The usages the request's profile needs. Encryption keys also sign: PKCS#10 proves possession
 * of the key by a signature, so the CSR cannot be made without CKA_SIGN. */
static unsigned profile_usage(const char *profile)
{
    if (profile && strcmp(profile, "encryption") == 0)
        return TOK_USE_SIGN | TOK_USE_DECRYPT;
    return TOK_USE_SIGN;
}

static bool key_is_ec(const struct job *j)
{
    return strncmp(j->key_type, "ec:", 3) == 0;
}

/*
 * The custody gate, with the evidence recorded in the job. A key this job generated with its own
 * C_GenerateKeyPair (keygen_at is saved before the call, so a key adopted after an interruption
 * counts too) must be unreadable and not extractable, whatever else the module reports; any other
 * key needs the full attribute proof. The usages asked for must be on the key.
 */
static int custody_check(struct ectx *e, const unsigned char *id, size_t id_len)
{
    struct tok_custody cust;
    char attrs[400], text[600];
    bool ours = e->job->keygen_at != 0;
    int r = tok_key_custody(e->tok, id, id_len, &cust);

    if (r == 0)
        r = ours ? tok_custody_ok_generated(&cust) : tok_custody_ok(&cust);
    if (r == 0)
        r = tok_usage_ok(&cust, profile_usage(e->job->profile), key_is_ec(e->job));
    if (r < 0)
        return r;
    tok_custody_describe(&cust, attrs, sizeof(attrs));
    snprintf(text, sizeof(text), "%s; %s",
             ours ? "generated by this job on this token"
                  : "not generated by this job: attribute proof",
             attrs);
    return job_set_str(&e->job->custody, text);
}

/* Generate the key pair (or adopt the one an interrupted run of this job made). */
static int keygen_or_adopt(struct ectx *e, const char *label, unsigned char *id, size_t *id_len,
                           bool *adopted)
{
    struct tok_keygen_info ki;
    int r = tok_find_key_by_label(e->tok, label, id, id_len);

    *adopted = r == 0;
    if (r != PA_E_TOKEN_NOT_FOUND)
        return r;
    /* Evidence first: this job is about to call C_GenerateKeyPair on this token. */
    e->job->keygen_at = time(NULL);
    r = job_set_str(&e->job->module_path, cli_module(e->cli));
    if (r == 0)
        r = save(e);
    if (r < 0)
        return r;
    progress(e, _("generating a %s key pair on the token…"), e->job->key_type);
    r = tok_keygen_ex(e->tok, e->o->key_type, profile_usage(e->job->profile), label, id, id_len,
                      &ki);
    if (r == 0) {
        snprintf(e->job->keygen_mechanism, sizeof(e->job->keygen_mechanism), "%s", ki.mechanism);
        e->job->slot_hw = ki.hw_slot;
        e->job->slot_removable = ki.removable;
    }
    return r;
}

static int step_keygen(struct ectx *e)
{
    char label[sizeof(e->job->key_label)];
    unsigned char id[TOK_ID_MAX];
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
    r = keygen_or_adopt(e, label, id, &id_len, &adopted);
    if (r < 0)
        return cli_fail(r, tok_detail(), "key generation on token '%s'", e->job->token_label);
    enroll_crash_point("after-keygen");
    r = custody_check(e, id, id_len);
    if (r < 0) {
        char msg[300], shown[300];

        if (tok_delete_keypair(e->tok, id, id_len) == 0) {
            snprintf(msg, sizeof(msg), "%s; the key was deleted", tok_detail());
            snprintf(shown, sizeof(shown), _("%s; the key was deleted"), tok_detail());
        } else {
            snprintf(msg, sizeof(msg), "%s; the key was NOT deleted", tok_detail());
            snprintf(shown, sizeof(shown), _("%s; the key was NOT deleted"), tok_detail());
        }
        return fail_job(e, r, "keygen", msg, shown);
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
    r = job_transition(e->job, JOB_KEY_READY, "%s key %s on the token (%s)",
                       adopted ? "adopted" : "generated", e->job->key_id_hex, e->job->custody);
    if (r == 0)
        r = audit(e, "keygen", "ok", adopted ? "key from an interrupted run adopted" : NULL);
    progress(e, "%s", _("key pair generated on the token; custody checked"));
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
        return cli_fail(PA_E_REQUEST, N_("the file changed since the job started"),
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
    r = custody_check(e, id, id_len);
    if (r == 0)
        r = tok_public_key(e->tok, id, id_len, &pub);
    if (r == 0)
        r = csr_spki_sha256(pub, spki);
    if (r == 0 && strcmp(spki, e->job->spki_sha256) != 0) {
        r = cli_fail(PA_E_CUSTODY, N_("its public key is not the one recorded at generation"),
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
        r = audit(e, "csr", "ok", NULL);
    progress(e, "%s", _("SHA-256 CSR signed on the token and verified"));
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
        cli_fail(r, line, ngettext("request %s: %zu problem", "request %s: %zu problems", errs.n),
                 e->job->request_path, errs.n);
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

/* The product the job orders: recorded when it started, so a changed configuration never
 * makes recovery look in the wrong place. */
static const char *job_product(const struct ectx *e)
{
    return e->job->product ? e->job->product : e->cli->cfg->api_product;
}

/*
 * cc_place_order's before-send hook: record the attempt durably at the moment the POST really
 * leaves (after any rate-budget wait). A kill from here on is recovered by looking the order up,
 * never by ordering again blindly.
 */
static int stamp_attempt(void *arg)
{
    struct ectx *e = arg;
    int r;

    e->job->order_attempt_at = time(NULL);
    if (e->job->state != JOB_ORDERING)
        r = job_transition(e->job, JOB_ORDERING, "placing the order");
    else
        r = job_note(e->job, "placing the order");
    if (r == 0)
        r = save(e);
    e->stamp_failed = r < 0;
    if (r == 0)
        enroll_crash_point("before-post");
    return r;
}

/* Sleep s seconds unless a stop is requested (the signal ends the sleep early). */
static void nap(double s)
{
    (void)stop_sleep(s);
}

/* The order is placed and saved: a queued request copy (card data) is no longer needed. */
static void forget_request(const struct ectx *e)
{
    int r = e->job->request_path ? queue_forget_request(e->state_dir, e->job->request_path) : 1;

    if (r < 0)
        fprintf(stderr,
                _("pkio-agent: warning: job %s: request copy %s could not be wiped (%s); the "
                  "daemon tries again\n"),
                e->job->id, e->job->request_path, _(pa_err_str(r)));
}

static int order_placed(struct ectx *e, const struct cc_order_result *res)
{
    int r;

    e->job->order_id = res->id;
    e->job->certificate_id = res->certificate_id;
    snprintf(e->job->order_status, sizeof(e->job->order_status), "%s",
             res->request_status[0] ? res->request_status : "pending");
    e->job->poll_interval_s = e->cli->cfg->poll_initial_s;
    e->job->next_poll = time(NULL);
    r = job_transition(e->job, JOB_ORDERED, "order %ld placed", res->id);
    if (r == 0)
        r = audit(e, "order", "ok", NULL);
    if (r == 0)
        forget_request(e);
    progress(e, _("order %ld placed"), res->id);
    return r;
}

/* The POST failed: say whether it may have been placed. 1 = try again after a wait. */
static int order_failed(struct ectx *e, struct cc_client *c, int r, unsigned attempt)
{
    if (cc_order_maybe_placed(c)) {
        (void)job_note(e->job, "order may have been placed: %s", cc_last_error(c));
        (void)audit(e, "order", "failed", cc_last_error(c));
        cli_fail(r, cc_last_error(c),
                 "the order of job %s may have been placed; 'pkio-agent resume %s' looks it up "
                 "before anything else",
                 e->job->id, e->job->id);
        return r;
    }
    e->job->order_attempt_at = 0; /* certainly not placed: ordering again is safe */
    (void)job_note(e->job, "order not placed: %s", cc_last_error(c));
    (void)save(e);
    /* Not placed, and only for now (429, 503, no connection): wait and send it again, a few
     * times. A refusal (4xx) or a maybe-placed order is never sent again here. */
    if (r == PA_E_CA_UNAVAILABLE && attempt < 3 && !stop_requested() && !e->o->no_wait) {
        unsigned short rnd = 0;
        double d;

        /* Jitter from the CSPRNG: processes sharing a key must not retry in step. */
        (void)RAND_bytes((unsigned char *)&rnd, sizeof(rnd));
        d = cc_backoff_delay(attempt + 1, 5.0, 60.0, (double)rnd / 65536.0);
        progress(e, _("CertCentral busy (%s); trying again in %.0fs"), cc_last_error(c), d);
        nap(d);
        return 1;
    }
    cli_fail(r, cc_last_error(c), "order of job %s (not placed)", e->job->id);
    (void)audit(e, "order", "failed", cc_last_error(c));
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
    for (unsigned attempt = 0; r == 0; attempt++) {
        progress(e, "%s", _("placing the order at CertCentral…"));
        r = cc_place_order(c, job_product(e), body, stamp_attempt, e, &res);
        enroll_crash_point("after-post");
        if (r == 0) {
            r = order_placed(e, &res);
            break;
        }
        if (e->stamp_failed)
            break; /* nothing was sent; save() said why */
        r = order_failed(e, c, r, attempt);
        if (r == 1)
            r = 0; /* go round again */
        else
            break;
    }
    if (body && card)
        secret_wipe(body, strlen(body));
    free(body);
    return r;
}

/* Does this order carry the job's key? 1 yes, 0 no, -1 unknown: no CSR shown, or one that does
 * not decode in any armour. Matching is by public key, never by text. */
static int order_has_key(const struct cc_order_info *info, const char *spki_sha256)
{
    char got[65];

    if (!info->csr || csr_text_spki_sha256(info->csr, got) < 0)
        return -1;
    return strcmp(got, spki_sha256) == 0;
}

/* The person of the job's request, to skip orders that certainly name someone else. */
struct req_person {
    struct req *req;
    struct person p;
};

static void req_person_load(struct ectx *e, struct req_person *rp)
{
    char err[256];

    memset(rp, 0, sizeof(*rp));
    if (!e->job->request_path ||
        req_load_file(e->job->request_path, &rp->req, err, sizeof(err)) < 0)
        return;
    (void)req_individual(rp->req, &rp->p.first_name, &rp->p.last_name, NULL, &rp->p.id);
    rp->p.email = req_individual_str(rp->req, "email");
    if (rp->p.id < 0)
        rp->p.id = 0;
}

struct recover_scan {
    size_t matches, unknown;
    long found, found_cert;
};

/* Look at each order in list: ours (by key), certainly not ours, or unknown. */
static int recover_scan(struct ectx *e, struct cc_client *c, const struct cc_order_info *list,
                        size_t n, struct recover_scan *sc)
{
    struct req_person rp;
    int r = 0;

    req_person_load(e, &rp);
    memset(sc, 0, sizeof(*sc));
    for (size_t i = 0; i < n && r == 0; i++) {
        struct cc_order_info info;
        struct person them;
        int has;

        r = cc_order_info(c, list[i].id, &info);
        if (r < 0) {
            cli_fail(r, cc_last_error(c), "order %ld", list[i].id);
            break;
        }
        has = order_has_key(&info, e->job->spki_sha256);
        them = (struct person){info.individual.id, info.individual.first_name,
                               info.individual.last_name, info.individual.email};
        if (has == 1) {
            sc->matches++;
            sc->found = info.id;
            sc->found_cert = info.certificate_id;
        } else if (has < 0 && person_compare(&rp.p, &them) != PERSON_DIFFERENT) {
            sc->unknown++; /* might be ours: we cannot tell */
        }
        cc_order_info_clear(&info);
    }
    req_free(rp.req);
    return r;
}

static int recover_found(struct ectx *e, long found, long found_cert)
{
    int r;

    e->job->order_id = found;
    e->job->certificate_id = found_cert;
    e->job->poll_interval_s = e->cli->cfg->poll_initial_s;
    e->job->next_poll = time(NULL);
    r = job_transition(e->job, JOB_ORDERED, "order %ld found after the interruption", found);
    if (r == 0)
        r = audit(e, "order", "recovered", NULL);
    if (r == 0)
        forget_request(e);
    progress(e, _("order %ld found; not ordering again"), found);
    return r;
}

/* One look at the product's orders since the attempt. 1 = none of ours (yet). */
static int recover_once(struct ectx *e, struct cc_client *c)
{
    struct cc_order_info *list = NULL;
    struct recover_scan sc;
    size_t n = 0;
    char since[16];
    struct tm tm;
    time_t t = e->job->order_attempt_at - 86400; /* date filters are days; be generous */
    int r;

    gmtime_r(&t, &tm);
    strftime(since, sizeof(since), "%Y-%m-%d", &tm);
    r = cc_list_orders(c, job_product(e), since, &list, &n);
    if (r < 0)
        return cli_fail(r, cc_last_error(c), "looking up the order of job %s", e->job->id);
    r = recover_scan(e, c, list, n, &sc);
    cc_order_list_free(list, n);
    if (r < 0)
        return r;
    if (sc.matches > 1)
        return cli_fail(PA_E_JOB,
                        N_("more than one order carries this job's key; cancel the extra ones in "
                           "CertCentral, then record the one to keep"),
                        "job %s", e->job->id);
    if (sc.matches == 1)
        return recover_found(e, sc.found, sc.found_cert);
    if (sc.unknown > 0)
        return cli_fail(PA_E_JOB,
                        N_("CertCentral shows no readable CSR for recent orders that may be this "
                           "job's, so pkio-agent cannot tell whether the interrupted order was "
                           "placed; it will not order again. Check CertCentral, then cancel this "
                           "job or record the order"),
                        "job %s", e->job->id);
    return 1;
}

/*
 * ORDERING after a kill or a lost answer: find the order this job placed, by its public key,
 * among the product's orders created since the attempt. Found: continue with it. None, and the
 * settle window (CertCentral may act on a request after the client gave up, and may list a new
 * order only later) has passed: the attempt placed nothing, order (once). Undecidable: stop.
 */
static int step_recover(struct ectx *e)
{
    const struct cfg *cfg = e->cli->cfg;
    double window = cfg->api_order_settle_s;
    struct cc_client *c = NULL;
    int r;

    if (!e->job->order_attempt_at)
        return step_order(e); /* the attempt never left the machine */
    if (window < cfg->api_timeout_s + 1.0)
        window = cfg->api_timeout_s + 1.0;
    r = cc(e, &c);
    if (r < 0)
        return r;
    progress(e, "%s", _("looking up the order placed before the interruption…"));
    for (;;) {
        double age = difftime(time(NULL), e->job->order_attempt_at);

        r = recover_once(e, c);
        if (r != 1)
            return r;
        if (age >= window)
            break;
        if (e->o->no_wait || stop_requested()) {
            (void)job_note(e->job,
                           "no order found yet; looking again until %.0fs after the "
                           "attempt before ordering",
                           window);
            (void)save(e);
            return PA_E_PENDING;
        }
        progress(e,
                 _("no order found yet; looking again (up to %.0fs after the attempt) before "
                   "deciding that it was not placed"),
                 window - age);
        nap(window - age < 5.0 ? window - age + 0.5 : 5.0);
    }
    e->job->order_attempt_at = 0;
    (void)job_note(e->job, "no order carries this key %.0fs after the attempt: it was not placed",
                   window);
    r = save(e);
    if (r == 0)
        r = step_order(e);
    return r;
}

static int download_and_verify(struct ectx *e)
{
    STACK_OF(X509) *all = NULL, *chain = NULL, *path = NULL;
    struct cc_client *c = NULL;
    EVP_PKEY *pub = NULL;
    X509 *leaf = NULL;
    char err[512] = "", *pem = NULL;
    size_t len = 0;
    int r;

    if (!e->cli->cfg->trust_anchors)
        return cli_fail(PA_E_CONFIG,
                        N_("set trust.anchors to the PEM file of the PKIoverheid roots"),
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
        r = hold_job(e, PA_E_CERT, "issued",
                     N_("the issued certificate does not carry the token key"));
        goto out;
    }
    r = certs_verify_path(leaf, chain, e->cli->cfg->trust_anchors, &path, err, sizeof(err));
    if (r == 0)
        r = certs_check_usage(leaf, e->job->profile, err, sizeof(err));
    if (r < 0) {
        r = hold_job(e, r, "issued", err);
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
    /* Only the leaf and the verified path are kept (and later written to the token). */
    free(pem);
    pem = certs_to_pem(leaf, path);
    r = pem ? job_set_str(&e->job->cert_pem, pem) : PA_E_NOMEM;
    if (r == 0)
        r = job_transition(e->job, JOB_ISSUED,
                           "certificate %ld (serial %s) downloaded and verified",
                           e->job->certificate_id, e->job->cert_serial);
    if (r == 0)
        r = audit(e, "issued", "ok", NULL);
    progress(e, "%s", _("certificate issued, chain verified"));
out:
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    sk_X509_pop_free(path, X509_free);
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

        if (stop_requested())
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
            progress(e, _("order %ld: %s"), e->job->order_id,
                     info.reason[0] ? _(info.reason) : info.status);
        }
        if (info.certificate_id)
            e->job->certificate_id = info.certificate_id;
        switch (info.st) {
        case CC_ST_ISSUED:
            cc_order_info_clear(&info);
            if (!e->job->certificate_id)
                return cli_fail(PA_E_CA_PROTOCOL, N_("issued without a certificate id"),
                                "order %ld", e->job->order_id);
            return download_and_verify(e);
        case CC_ST_FAILED: {
            char msg[256], shown[256];

            snprintf(msg, sizeof(msg), "order %ld ended: %s", e->job->order_id, info.reason);
            snprintf(shown, sizeof(shown), _("order %ld ended: %s"), e->job->order_id, info.reason);
            cc_order_info_clear(&info);
            return fail_job(e, PA_E_CA_REJECTED, "order", msg, shown);
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
    progress(e, "%s", _("writing the certificate and its chain to the token…"));
    r = wb_install(e->tok, id, id_len, leaf, chain, &res, err, sizeof(err));
    if (r < 0) {
        cli_fail(r, err, "writing the certificate of job %s to token '%s'", e->job->id,
                 e->job->token_label);
        goto out;
    }
    enroll_crash_point("after-install");
    r = job_transition(e->job, JOB_INSTALLED,
                       "certificate on the token (%s), %u CA certificate(s) written, %u present, "
                       "%u left off%s%s%s",
                       res.leaf_written ? "written" : "already there", res.ca_written,
                       res.ca_present, res.ca_skipped,
                       res.ca_skipped ? " (the token refused: " : "",
                       res.ca_skipped ? res.skipped : "", res.ca_skipped ? ")" : "");
    if (r == 0 && res.ca_skipped)
        progress(e, _("%u CA certificate(s) did not fit on the token and were left off (%s)"),
                 res.ca_skipped, res.skipped);
    if (r == 0)
        r = audit(e, "installed", "ok", NULL);
    progress(e, "%s", _("certificate written to the token and read back"));
out:
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    sk_X509_pop_free(all, X509_free);
    EVP_PKEY_free(pub);
    return r;
}

/* Note the link in the replaced certificate's job, if it is one of ours. */
static void link_old_job(struct ectx *e, long old_cert, const char *what)
{
    struct job **list = NULL;
    size_t n = 0;
    char err[256];

    if (job_list(e->state_dir, &list, &n, err, sizeof(err)) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        if (list[i]->certificate_id == old_cert && strcmp(list[i]->id, e->job->id) != 0) {
            int fd = -1;
            struct job *fresh = NULL;

            /* Load again under its lock: never save a copy read before someone else wrote. */
            if (job_lock(e->state_dir, list[i]->id, &fd) == 0 &&
                job_load(e->state_dir, list[i]->id, &fresh, err, sizeof(err)) == 0) {
                (void)job_note(fresh, "certificate %ld %s: replaced by job %s", old_cert, what,
                               e->job->id);
                (void)job_save(e->state_dir, fresh);
            }
            job_free(fresh);
            job_unlock(fd);
        }
    }
    job_list_free(list, n);
}

/* The order of a certificate: from our own job records first, else from CertCentral's list. */
static int order_of_certificate(struct ectx *e, struct cc_client *c, long cert, long *ret)
{
    struct job **list = NULL;
    size_t n = 0;
    char err[256];
    int r;

    *ret = 0;
    if (job_list(e->state_dir, &list, &n, err, sizeof(err)) == 0)
        for (size_t i = 0; i < n && !*ret; i++)
            if (list[i]->certificate_id == cert && list[i]->order_id)
                *ret = list[i]->order_id;
    job_list_free(list, n);
    if (*ret)
        return 0;
    r = cc_find_order_by_certificate(c, NULL, cert, ret);
    if (r < 0)
        return cli_fail(r, cc_last_error(c), "finding the order of certificate %ld", cert);
    return 0;
}

/*
 * What CertCentral says now about the replaced certificate: 1 when that settles the revoke
 * (revoked, a revocation request waits for approval, or, after our own attempt, an approver
 * rejected it), 0 when nothing is there yet. Reading before (re)sending is what makes a lost
 * answer harmless: "already revoked" is success, a pending request is not sent twice.
 */
static int revoke_settled(struct ectx *e, struct cc_client *c)
{
    struct cc_order_info info;
    enum revoke_state st;
    int r = cc_order_info(c, e->job->replaces_order_id, &info);

    if (r < 0) {
        cc_order_info_clear(&info);
        return cli_fail(r, cc_last_error(c), "reading order %ld of the replaced certificate",
                        e->job->replaces_order_id);
    }
    st = revoke_state_of(&info, e->job->revoke_attempt_at != 0);
    if (st != RV_NONE) {
        e->job->old_revoked = st == RV_REVOKED;
        e->job->revoke_request_id = st == RV_REVOKED ? 0 : info.revoke_request_id;
        snprintf(e->job->revoke_status, sizeof(e->job->revoke_status), "%s", revoke_state_name(st));
    }
    cc_order_info_clear(&info);
    return st != RV_NONE;
}

/* Record the settled revoke in the job, the audit log and the replaced job. */
static int revoke_record(struct ectx *e)
{
    long old = e->job->replaces_certificate_id, req = e->job->revoke_request_id;
    char what[96], shown[160];
    int r;

    /* what: English, for the records; shown: for the officer */
    if (strcmp(e->job->revoke_status, "revoked") == 0) {
        snprintf(what, sizeof(what), "revoked (superseded)");
        snprintf(shown, sizeof(shown), "%s", _("revoked (superseded)"));
    } else if (strcmp(e->job->revoke_status, "pending") == 0) {
        snprintf(what, sizeof(what), "revocation request %ld awaits approval in CertCentral", req);
        snprintf(shown, sizeof(shown), _("revocation request %ld awaits approval in CertCentral"),
                 req);
    } else {
        snprintf(what, sizeof(what), "revocation request %ld was rejected by an approver", req);
        snprintf(shown, sizeof(shown), _("revocation request %ld was rejected by an approver"),
                 req);
    }
    (void)job_note(e->job, "replaced certificate %ld: %s", old, what);
    r = audit(e, "revoke", strcmp(e->job->revoke_status, "revoked") == 0 ? "ok" : "pending", what);
    if (r == 0)
        link_old_job(e, old, what);
    progress(e, _("replaced certificate %ld: %s"), old, shown);
    return r;
}

/* Find the replaced certificate's order and id (jobs started before both were recorded). */
static int revoke_target(struct ectx *e, struct cc_client *c)
{
    struct cc_order_info info;
    int r = 0;

    if (!e->job->replaces_order_id)
        r = order_of_certificate(e, c, e->job->replaces_certificate_id, &e->job->replaces_order_id);
    if (r < 0 || e->job->replaces_certificate_id)
        return r;
    r = cc_order_info(c, e->job->replaces_order_id, &info);
    e->job->replaces_certificate_id = info.certificate_id;
    cc_order_info_clear(&info);
    if (r < 0 || !e->job->replaces_certificate_id)
        return cli_fail(r < 0 ? r : PA_E_CA_PROTOCOL, cc_last_error(c),
                        "finding the certificate of replaced order %ld", e->job->replaces_order_id);
    return 0;
}

/* Revoke the replaced certificate once, whatever is lost or killed on the way. */
static int revoke_old(struct ectx *e)
{
    struct cc_revoke_result res;
    struct cc_client *c = NULL;
    char comment[128];
    int r = cc(e, &c);

    if (r == 0)
        r = revoke_target(e, c);
    if (r == 0)
        r = revoke_settled(e, c); /* a previous attempt, or someone else, may have done it */
    if (r != 0)
        return r < 0 ? r : revoke_record(e);
    e->job->revoke_attempt_at = time(NULL);
    r = save(e);
    if (r < 0)
        return r;
    /* Only now, with the new certificate safely on the new token, revoke the old one. */
    enroll_crash_point("before-revoke");
    snprintf(comment, sizeof(comment), "replaced by pkio-agent job %s", e->job->id);
    r = cc_revoke_certificate(c, e->job->replaces_certificate_id, "superseded", comment, &res);
    enroll_crash_point("after-revoke");
    if (r == 0) {
        e->job->old_revoked = !res.pending;
        e->job->revoke_request_id = res.request_id;
        snprintf(e->job->revoke_status, sizeof(e->job->revoke_status), "%s",
                 res.pending ? "pending" : "revoked");
        return revoke_record(e);
    }
    {
        char why[512];

        snprintf(why, sizeof(why), "%s", cc_last_error(c));
        if (revoke_settled(e, c) == 1) /* e.g. "already revoked", or the answer was lost */
            return revoke_record(e);
        (void)audit(e, "revoke", "failed", why);
        return cli_fail(r, why,
                        "revoking replaced certificate %ld (the new certificate is on the token; "
                        "'pkio-agent resume %s' checks CertCentral before trying again)",
                        e->job->replaces_certificate_id, e->job->id);
    }
}

static int step_finish(struct ectx *e)
{
    int r = 0;

    if ((e->job->replaces_certificate_id || e->job->replaces_order_id) &&
        !e->job->revoke_status[0] && !e->job->old_revoked)
        r = revoke_old(e);
    if (r == 0)
        r = job_transition(e->job, JOB_DONE, "done");
    if (r == 0)
        r = audit(e, "done", "ok", NULL);
    return r;
}

/* Drive the job until it is done, waits (PA_E_PENDING) or fails. */
static int drive(struct ectx *e)
{
    int r = 0;

    while (r == 0) {
        if (stop_requested() && !job_state_terminal(e->job->state)) {
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
            return cli_fail(PA_E_JOB, N_("it was canceled"), "job %s", e->job->id);
        case JOB_STATE__MAX:
        default:
            return cli_fail(PA_E_INTERNAL, NULL, "job %s: bad state", e->job->id);
        }
    }
    return r;
}

/* A re-key whose old certificate is not revoked (yet) says so: it is not "revoked". */
static void report_revoke(const struct job *j)
{
    if (strcmp(j->revoke_status, "pending") == 0)
        printf(_("job %s: replaced certificate %ld is NOT revoked yet: revocation request %ld "
                 "awaits approval in CertCentral\n"),
               j->id, j->replaces_certificate_id, j->revoke_request_id);
    else if (strcmp(j->revoke_status, "rejected") == 0)
        printf(_("job %s: replaced certificate %ld is NOT revoked: an approver rejected "
                 "revocation request %ld; revoke it in CertCentral\n"),
               j->id, j->replaces_certificate_id, j->revoke_request_id);
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
        if (j->replaces_certificate_id || j->replaces_order_id) {
            json_object_object_add(o, "replaces_certificate_id",
                                   json_object_new_int64(j->replaces_certificate_id));
            json_object_object_add(o, "replaced_revocation",
                                   json_object_new_string(j->revoke_status));
        }
        cli_print_json(o);
        return;
    }
    if (r == 0 && j->state == JOB_DONE)
        printf(_("job %s: done; certificate %s is on token '%s' (serial %s) with key %s\n"), j->id,
               j->cert_serial, j->token_label, j->token_serial, j->key_label);
    if (r == 0 && j->state == JOB_DONE)
        report_revoke(j);
    else if (r == PA_E_PENDING && j->state == JOB_ORDERED)
        printf(_("job %s: order %ld placed, waiting (%s); 'pkio-agent resume %s' continues\n"),
               j->id, j->order_id, j->order_status[0] ? j->order_status : "pending", j->id);
    else if (r == PA_E_PENDING)
        printf(_("job %s: stopped at '%s'; 'pkio-agent resume %s' continues\n"), j->id,
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

/* Drive the job (its record and lock are held) and report. */
static int run_job(struct ectx *e)
{
    int r = drive(e);

    report(e, r);
    return r;
}

static void ectx_clear(struct ectx *e)
{
    token_close(e);
    cc_client_free(e->cc);
    job_free(e->job);
    job_unlock(e->lock_fd);
    job_unlock(e->token_lock_fd);
}

static int ectx_init(struct ectx *e, struct cli *cli, const struct enroll_opts *o)
{
    char err[512] = "";
    int r;

    memset(e, 0, sizeof(*e));
    e->cli = cli;
    e->o = o;
    e->lock_fd = -1;
    e->token_lock_fd = -1;
    e->state_dir = cli_state_dir(cli);
    e->tty = isatty(STDERR_FILENO) || getenv("PKIO_PROGRESS"); /* PKIO_PROGRESS: logs, demos */
    clock_gettime(CLOCK_MONOTONIC, &e->t0);
    r = job_dir_prepare(e->state_dir, err, sizeof(err));
    if (r < 0)
        return cli_fail(r, err, "state directory %s", e->state_dir);
    return 0;
}

/* ---- locks: one process per token, records read only under their lock --------------------- */

static int lock_token(struct ectx *e, const char *serial, const char *label)
{
    int r = job_token_lock(e->state_dir, serial, label, TOKEN_LOCK_WAIT_S, &e->token_lock_fd);

    if (r == PA_E_BUSY)
        return cli_fail(r,
                        N_("another pkio-agent process is working on it; try again when it has "
                           "finished"),
                        "token '%s' (serial %s)", label, serial);
    if (r < 0)
        return cli_fail(r, strerror(errno), "locking token '%s' (serial %s) in %s", label, serial,
                        e->state_dir);
    return 0;
}

/* Lock the job, then load its record under the lock: the only copy ever acted on. */
static int lock_and_load(struct ectx *e, const char *id)
{
    char err[512] = "", jid[33];
    struct job *j = NULL;
    int r;

    snprintf(jid, sizeof(jid), "%s", id);
    r = job_lock(e->state_dir, jid, &e->lock_fd);
    if (r < 0)
        return cli_fail(r,
                        r == PA_E_BUSY ? N_("another pkio-agent process is working on it") : NULL,
                        "job %s", jid);
    r = job_load(e->state_dir, jid, &j, err, sizeof(err));
    if (r < 0)
        return cli_fail(r, err, "job %s", jid);
    job_free(e->job);
    e->job = j;
    /* events a kill left in the record (saved, not yet in the audit log): append them now */
    r = audit_commit_pending(e->state_dir, e->job);
    if (r < 0)
        return cli_fail(r, strerror(errno), "appending the pending audit events of job %s", jid);
    return 0;
}

/* The job list, with a warning for records set aside as corrupt. */
static int list_jobs(struct ectx *e, struct job ***list, size_t *n)
{
    char err[1024] = "";
    int r = job_list(e->state_dir, list, n, err, sizeof(err));

    if (r < 0)
        return cli_fail(r, err, "jobs in %s", e->state_dir);
    if (err[0])
        fprintf(stderr, _("pkio-agent: warning: %s; tell the officer in charge\n"), err);
    return 0;
}

/* Load a job by id (or prefix) to learn its token, lock that token, then lock and reload. */
static int lock_existing(struct ectx *e, const char *job_id)
{
    char err[512] = "", serial[17], label[33], id[33];
    struct job *j = NULL;
    int r = job_load(e->state_dir, job_id, &j, err, sizeof(err));

    if (r < 0)
        return cli_fail(r, err, "job %s", job_id);
    snprintf(serial, sizeof(serial), "%s", j->token_serial);
    snprintf(label, sizeof(label), "%s", j->token_label);
    snprintf(id, sizeof(id), "%s", j->id);
    job_free(j);
    r = lock_token(e, serial, label);
    if (r == 0)
        r = lock_and_load(e, id);
    return r;
}

/* ---- checks before anything is generated or ordered ----------------------------------------- */

/*
 * Everything a later step needs, checked while nothing is spent yet: the trust anchors (a wrong
 * path would only show after issuance), and, when an order is still to come, the API key and
 * CertCentral accepting it.
 */
static int preflight(struct ectx *e, bool will_order)
{
    struct cc_client *c = NULL;
    char err[512] = "";
    int r = certs_check_anchors(e->cli->cfg->trust_anchors, err, sizeof(err));

    if (r < 0)
        return cli_fail(r, err, "configuration (checked before anything is generated or ordered)");
    if (!will_order)
        return 0;
    r = cc(e, &c);
    if (r < 0)
        return r;
    r = cc_ping(c);
    if (r < 0)
        return cli_fail(r, cc_last_error(c),
                        "CertCentral check before anything is generated or ordered");
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

/* Before a job exists: can this token generate the key and sign the CSR with it? */
static int check_mechanisms(struct ectx *e, const struct tok_info *info)
{
    int r = tok_check_keygen(e->tok, e->o->key_type);

    if (r == 0)
        r = tok_check_sign(e->tok, e->o->key_type, e->o->pss);
    if (r < 0)
        return cli_fail_hint(r, tok_detail(),
                             tok_is_piv(info) ? N_("nothing was generated or ordered")
                                              : N_("nothing was generated or ordered; choose "
                                                   "another --key-type or another token"),
                             "token '%s' (serial %s)", info->label, info->serial);
    return 0;
}

/* PKIo keys belong on certified hardware: the configured token policy decides. */
static int check_policy(struct ectx *e, const struct tok_info *info)
{
    char why[400];
    int r = policy_check_token(e->cli->cfg, cli_module(e->cli), info, why, sizeof(why));

    if (r < 0)
        return cli_fail(r, why, "token '%s' (serial %s): refused by the token policy", info->label,
                        info->serial);
    return 0;
}

/* An unbound request from the queue may only go to a blank token (see docs/pkio-agent.8). */
static int check_blank(struct ectx *e, const struct tok_info *info)
{
    struct tok_contents c;
    int r = tok_token_contents(e->tok, &c);

    if (r < 0)
        return cli_fail(r, tok_detail(), "reading what token '%s' holds", info->label);
    if (!c.logged_in) /* private keys would be invisible: never call such a token blank */
        return cli_fail(PA_E_REFUSED, N_("its private objects cannot be seen without a login"),
                        "token '%s' (serial %s) is not known to be blank", info->label,
                        info->serial);
    if (tok_contents_blank(&c))
        return 0;
    return cli_fail(
        PA_E_REFUSED, N_("it is not blank; an unbound request never goes to a token in use"),
        "token '%s' (serial %s) holds %u private, %u public and %u secret key(s) and "
        "%u certificate(s)",
        info->label, info->serial, c.private_keys, c.public_keys, c.secret_keys, c.user_certs);
}

/* ---- re-key: only of the same person ----------------------------------------------------------
 */

static void person_of_request(const struct req *req, struct person *p)
{
    memset(p, 0, sizeof(*p));
    (void)req_individual(req, &p->first_name, &p->last_name, NULL, &p->id);
    p->email = req_individual_str(req, "email");
    if (p->id < 0)
        p->id = 0;
}

/* A renewal replaces only a certificate that is due, unless --early. */
static int check_due(const struct enroll_opts *o, const struct cc_order_info *old, long cert)
{
    char due[11];
    time_t t = time(NULL) + (time_t)o->warn_days * 86400;
    struct tm tm;

    if (!o->renew || o->early || !old->valid_till[0])
        return 0;
    gmtime_r(&t, &tm);
    strftime(due, sizeof(due), "%Y-%m-%d", &tm);
    if (strcmp(old->valid_till, due) <= 0)
        return 0;
    return cli_fail(PA_E_REFUSED,
                    N_("it is not due for renewal yet; add --early to renew it now anyway"),
                    "certificate %ld is valid until %s (renewal within %d days)", cert,
                    old->valid_till, o->warn_days);
}

/* Is the replaced certificate still in force? 0, or the refusal (reported). */
static int check_old_state(const struct cc_order_info *old, long cert)
{
    char today[11];
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(today, sizeof(today), "%Y-%m-%d", &tm);
    if (strcmp(old->status, "revoked") == 0 || strcmp(old->revoke_request_status, "approved") == 0)
        return cli_fail(PA_E_REFUSED, N_("it is already revoked"), "certificate %ld", cert);
    if (strcmp(old->status, "expired") == 0 ||
        (old->valid_till[0] && strcmp(old->valid_till, today) < 0))
        return cli_fail(PA_E_REFUSED, N_("it has expired; enroll without --replaces"),
                        "certificate %ld (valid till %s)", cert,
                        old->valid_till[0] ? old->valid_till : "?");
    if (old->st != CC_ST_ISSUED)
        return cli_fail(PA_E_REFUSED, N_("it is not an issued certificate"), "certificate %ld (%s)",
                        cert, old->status);
    if (strcmp(old->revoke_request_status, "pending") == 0 ||
        strcmp(old->revoke_request_status, "submitted") == 0)
        return cli_fail(PA_E_REFUSED, N_("a revocation request for it is already pending"),
                        "certificate %ld", cert);
    return 0;
}

/* Same product family and same individual, or the refusal naming both. */
static int check_old_holder(struct ectx *e, const struct cc_order_info *old, long cert,
                            const struct req *req)
{
    const char *product = e->cli->cfg->api_product;
    struct person now, then;
    char a[300], b[300];

    if (!old->product ||
        strcmp(person_product_family(old->product), person_product_family(product)) != 0)
        return cli_fail(PA_E_REFUSED, N_("a re-key stays within one product family"),
                        "certificate %ld is a %s certificate, the request is for %s", cert,
                        old->product ? old->product : _("(unknown product)"), product);
    person_of_request(req, &now);
    then = (struct person){old->individual.id, old->individual.first_name,
                           old->individual.last_name, old->individual.email};
    person_describe(&now, a, sizeof(a));
    person_describe(&then, b, sizeof(b));
    switch (person_compare(&now, &then)) {
    case PERSON_SAME:
        return 0;
    case PERSON_DIFFERENT:
        return cli_fail(PA_E_REFUSED,
                        N_("a re-key replaces only the same person's certificate; check the "
                           "certificate id. Nothing was generated, ordered or revoked"),
                        "certificate %ld belongs to %s, the request is for %s", cert, b, a);
    case PERSON_UNKNOWN:
    default:
        return cli_fail(PA_E_REFUSED,
                        N_("CertCentral's order does not show enough to confirm it is the same "
                           "person (individual id, or names and e-mail). Nothing was generated, "
                           "ordered or revoked"),
                        "certificate %ld (%s) against the request for %s", cert, b, a);
    }
}

/*
 * --replaces: before anything is generated or ordered, the old certificate's order must name
 * the same individual, be of the same product family, and be issued and in force. Fills in the
 * order and certificate id.
 */
static int check_replaces(struct ectx *e, long *order, long *cert)
{
    struct cc_order_info old;
    struct cc_client *c = NULL;
    struct req *req = NULL;
    char err[512] = "";
    int r;

    memset(&old, 0, sizeof(old));
    if (!*order && !*cert)
        return 0;
    r = cc(e, &c);
    if (r == 0 && !*order)
        r = order_of_certificate(e, c, *cert, order);
    if (r < 0)
        return r;
    r = cc_order_info(c, *order, &old);
    if (r < 0) {
        cli_fail(r, cc_last_error(c), "order %ld of the certificate to replace", *order);
        goto out;
    }
    if (*cert && old.certificate_id != *cert) {
        r = cli_fail(PA_E_REFUSED, N_("it is not the certificate of that order"),
                     "certificate %ld (order %ld holds %ld)", *cert, *order, old.certificate_id);
        goto out;
    }
    *cert = old.certificate_id;
    r = check_old_state(&old, *cert);
    if (r == 0)
        r = check_due(e->o, &old, *cert);
    if (r == 0) {
        r = req_load_file(e->o->request, &req, err, sizeof(err));
        if (r < 0)
            cli_fail(r, err, "request %s", e->o->request);
    }
    if (r == 0)
        r = check_old_holder(e, &old, *cert, req);
out:
    req_free(req);
    cc_order_info_clear(&old);
    return r;
}

/* A rerun must not change what the job replaces: say so, never keep the old value silently. */
static int check_replaces_unchanged(const struct job *j, const struct enroll_opts *o)
{
    bool same_cert = o->replaces_certificate_id == j->replaces_certificate_id;
    bool same_order = o->replaces_order_id == j->replaces_order_id;
    bool given = o->replaces_certificate_id || o->replaces_order_id;
    bool had = j->replaces_certificate_id || j->replaces_order_id;

    char was[96], now[96];

    /* The job filled in the other id itself: a rerun with either original value is the same. */
    if (!(given || had) || (o->replaces_certificate_id ? same_cert : same_order))
        return 0;
    if (j->replaces_certificate_id)
        snprintf(was, sizeof(was), _("replacing certificate %ld"), j->replaces_certificate_id);
    else if (j->replaces_order_id)
        snprintf(was, sizeof(was), _("replacing order %ld"), j->replaces_order_id);
    else
        snprintf(was, sizeof(was), "%s", _("without --replaces"));
    if (given)
        snprintf(now, sizeof(now), "--replaces %ld",
                 o->replaces_certificate_id ? o->replaces_certificate_id : o->replaces_order_id);
    else
        snprintf(now, sizeof(now), "%s", _("no --replaces"));
    return cli_fail(PA_E_REFUSED,
                    N_("a rerun must name the same certificate to replace; cancel the job to "
                       "start over with another one"),
                    "job %s was started %s, this run says %s", j->id, was, now);
    return 0;
}

/* ---- choosing the job for a token --------------------------------------------------------- */

/*
 * Could a new job for this token pay for something this one already paid for (or may have)? An
 * unfinished job, or a failed one whose order exists (or may) and was not ended by CertCentral.
 */
static bool money_at_stake(const struct job *j)
{
    if (j->state == JOB_DONE || j->state == JOB_CANCELED)
        return false;
    if (!job_state_terminal(j->state))
        return true;
    if (!j->order_id && !j->order_attempt_at)
        return false;
    return cc_map_status(j->order_status, NULL, 0) != CC_ST_FAILED;
}

static bool job_on_token(const struct job *j, const struct tok_info *info)
{
    return strcmp(j->token_serial, info->serial) == 0 && strcmp(j->token_label, info->label) == 0;
}

/*
 * The job an `enroll` on this token continues (*cont), or the finished job for the same request
 * (*done); both NULL: start a new one. A job at stake for another request file is refused.
 */
static int pick_job(struct job **list, size_t n, const struct tok_info *info, const char *sha,
                    struct job **cont, struct job **done)
{
    *cont = *done = NULL;
    for (size_t i = 0; i < n; i++) {
        struct job *j = list[i];

        if (!job_on_token(j, info))
            continue;
        if (money_at_stake(j) && !*cont) {
            if (strcmp(j->request_sha256, sha) != 0)
                return cli_fail(PA_E_JOB, N_("it was started for another request file"),
                                "token '%s' (serial %s) has unfinished job %s (%s); 'pkio-agent "
                                "resume %s' or 'pkio-agent cancel %s' first",
                                info->label, info->serial, j->id, job_state_name(j->state), j->id,
                                j->id);
            *cont = j;
        } else if (j->state == JOB_DONE && strcmp(j->request_sha256, sha) == 0) {
            *done = j; /* the caller checks that its key is still on the token */
        }
    }
    if (*cont)
        *done = NULL;
    return 0;
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

/* The request's profile, which decides the key's usages (read once, when the job starts). */
static int job_profile_from(struct job *j, const char *request)
{
    struct req *req = NULL;
    char err[256];
    int r = req_load_file(request, &req, err, sizeof(err));

    if (r == 0)
        snprintf(j->profile, sizeof(j->profile), "%s",
                 req_profile_option(req) ? req_profile_option(req) : "");
    req_free(req);
    return r;
}

static int new_job(struct ectx *e, const struct tok_info *info, const char *abs, const char *sha,
                   long replaces_order, long replaces_cert)
{
    struct job *j = NULL;
    int r = job_new(&j);

    if (r < 0)
        return cli_fail(r, NULL, "new job");
    e->job = j;
    snprintf(j->token_serial, sizeof(j->token_serial), "%s", info->serial);
    snprintf(j->token_label, sizeof(j->token_label), "%s", info->label);
    snprintf(j->token_model, sizeof(j->token_model), "%s", info->model);
    snprintf(j->token_manufacturer, sizeof(j->token_manufacturer), "%s", info->manufacturer);
    snprintf(j->key_type, sizeof(j->key_type), "%s", tok_key_type_name(e->o->key_type));
    snprintf(j->request_sha256, sizeof(j->request_sha256), "%s", sha);
    j->pss = e->o->pss;
    r = job_profile_from(j, abs);
    if (r < 0)
        return cli_fail(r, NULL, "request %s", abs);
    j->replaces_certificate_id = replaces_cert;
    j->replaces_order_id = replaces_order;
    r = job_set_str(&j->product, e->cli->cfg->api_product);
    if (r == 0)
        r = job_set_str(&j->request_path, abs);
    if (r == 0)
        r = job_note(j, "enrollment started for token '%s' (serial %s)", info->label, info->serial);
    if (r == 0 && replaces_cert)
        r = job_note(j, "replaces certificate %ld (order %ld) of the same person", replaces_cert,
                     replaces_order);
    /* The record does not exist yet, so nobody else can hold its lock. */
    if (r == 0)
        r = job_lock(e->state_dir, j->id, &e->lock_fd);
    if (r == 0)
        r = audit(e, "start", "ok", NULL);
    if (r == 0)
        progress(e, "%s", _("enrollment started"));
    return r;
}

/* Does the token still hold the finished job's key? A token that was wiped and initialised again
 * (same serial and label) does not: then this is a new enrollment, not a rerun. */
static bool still_there(struct ectx *e, const struct job *d)
{
    unsigned char id[TOK_ID_MAX];
    size_t id_len = 0;

    if (hex_decode(d->key_id_hex, id, sizeof(id), &id_len) < 0)
        return false;
    if (tok_find_key(e->tok, id, id_len, NULL) == 0)
        return true;
    progress(e, _("job %s finished for this request, but its key is no longer on the token"),
             d->id);
    return false;
}

static int say_done(struct ectx *e, const struct job *d)
{
    if (e->cli->json) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "job", json_object_new_string(d->id));
        json_object_object_add(o, "state", json_object_new_string(job_state_name(d->state)));
        json_object_object_add(o, "already_done", json_object_new_boolean(1));
        json_object_object_add(o, "certificate_serial", json_object_new_string(d->cert_serial));
        cli_print_json(o);
    } else {
        printf(_("job %s: already done for this request; certificate %s is on token '%s' "
                 "(serial %s); nothing ordered\n"),
               d->id, d->cert_serial, d->token_label, d->token_serial);
    }
    return 0;
}

/* Continue the job for this token: same request, same --replaces, then under its own lock. */
static int continue_job(struct ectx *e, const struct job *cont)
{
    int r = check_replaces_unchanged(cont, e->o);

    if (r == 0)
        r = lock_and_load(e, cont->id);
    if (r == 0 && e->job->state == JOB_FAILED) {
        r = unfail(e->job);
        if (r == 0)
            r = save(e);
    }
    if (r == 0)
        progress(e, _("continuing the unfinished job for this token (%s)"),
                 job_state_name(e->job->state));
    return r;
}

/* Under the token lock: continue, report done, or start a job for this token. */
static int choose_and_lock(struct ectx *e, const struct tok_info *info, const char *abs,
                           const char *sha, bool *ret_done)
{
    struct job **list = NULL, *cont = NULL, *done = NULL;
    long order = e->o->replaces_order_id, cert = e->o->replaces_certificate_id;
    size_t n = 0;
    int r = list_jobs(e, &list, &n);

    *ret_done = false;
    if (r == 0)
        r = pick_job(list, n, info, sha, &cont, &done);
    if (r == 0 && cont) {
        r = continue_job(e, cont);
    } else if (r == 0 && done && !e->o->renew && still_there(e, done)) {
        *ret_done = true;
        r = say_done(e, done);
    } else if (r == 0) {
        r = check_policy(e, info);
        if (r == 0)
            r = check_mechanisms(e, info);
        if (r == 0 && e->o->only_blank)
            r = check_blank(e, info);
        if (r == 0)
            r = check_replaces(e, &order, &cert);
        if (r == 0)
            r = new_job(e, info, abs, sha, order, cert);
    }
    job_list_free(list, n);
    return r;
}

int enroll_start(struct cli *cli, const struct enroll_opts *o, char *ret_job)
{
    struct tok_info info;
    struct ectx e;
    char sha[65], *abs = NULL;
    bool done = false;
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
    r = preflight(&e, true);
    if (r == 0)
        r = token_open(&e);
    if (r == 0)
        r = tok_token_info(e.tok, &info);
    if (r < 0)
        goto out;
    /* From before the job list is read until the job record exists and is locked, and then
     * for the whole run: two processes never start (or drive) two jobs for one token. */
    r = lock_token(&e, info.serial, info.label);
    if (r == 0)
        r = choose_and_lock(&e, &info, abs, sha, &done);
    if (r < 0 || done)
        goto out;
    if (ret_job)
        memcpy(ret_job, e.job->id, sizeof(e.job->id));
    r = run_job(&e);
out:
    free(abs);
    ectx_clear(&e);
    return r;
}

int enroll_resume(struct cli *cli, const char *job_id, const struct enroll_opts *o)
{
    struct ectx e;
    int r;

    r = ectx_init(&e, cli, o);
    if (r < 0)
        return r;
    r = lock_existing(&e, job_id);
    if (r < 0)
        goto out;
    if (e.job->state == JOB_DONE) {
        report(&e, 0);
        goto out;
    }
    r = preflight(&e, e.job->state < JOB_ORDERING);
    if (r == 0 && e.job->state == JOB_FAILED) {
        r = unfail(e.job);
        if (r == 0)
            r = save(&e);
    }
    if (r == 0)
        r = run_job(&e);
out:
    ectx_clear(&e);
    return r;
}

/* Cancel the order at CertCentral, if the job has one that can still be canceled. */
static int cancel_order(struct ectx *e)
{
    struct cc_client *c = NULL;
    int r;

    if (e->job->state == JOB_ORDERING && e->job->order_attempt_at)
        return cli_fail(PA_E_JOB,
                        N_("its order may have been placed; 'pkio-agent resume' finds it "
                           "first"),
                        "job %s", e->job->id);
    if (!e->job->order_id || cc_map_status(e->job->order_status, NULL, 0) == CC_ST_FAILED)
        return 0;
    r = cc(e, &c);
    if (r == 0)
        r = cc_cancel_order(c, e->job->order_id, "canceled by the registration officer");
    if (r < 0)
        return cli_fail(r, cc_last_error(c), "canceling order %ld", e->job->order_id);
    (void)audit(e, "cancel-order", "ok", NULL);
    return 0;
}

/* The orphan key goes too; it has no certificate and never will. */
static int cancel_key(struct ectx *e)
{
    unsigned char id[TOK_ID_MAX];
    size_t id_len = 0;
    int r;

    if (!e->job->key_id_hex[0])
        return 0;
    r = token_open(e);
    if (r == 0)
        r = token_check(e);
    if (r == 0)
        r = key_id(e, id, &id_len);
    if (r == 0) {
        r = tok_delete_keypair(e->tok, id, id_len);
        if (r == PA_E_TOKEN_NOT_FOUND)
            r = 0;
    }
    if (r < 0)
        return cli_fail(r, tok_detail(), "removing key %s of job %s", e->job->key_id_hex,
                        e->job->id);
    return 0;
}

/* A job whose certificate exists is revoked, not canceled. */
static int cancelable(const struct job *j)
{
    bool issued = j->state == JOB_ISSUED || j->state == JOB_INSTALLED || j->state == JOB_DONE;

    if (issued || j->state == JOB_CANCELED)
        return cli_fail(PA_E_JOB,
                        issued ? N_("its certificate is issued; revoke it in CertCentral instead")
                               : N_("nothing to cancel"),
                        "job %s (%s)", j->id, job_state_name(j->state));
    return 0;
}

int enroll_cancel(struct cli *cli, const char *job_id, const struct enroll_opts *o)
{
    struct ectx e;
    int r;

    r = ectx_init(&e, cli, o);
    if (r < 0)
        return r;
    r = lock_existing(&e, job_id);
    if (r < 0)
        goto out;
    r = cancelable(e.job);
    if (r == 0)
        r = cancel_order(&e);
    if (r == 0)
        r = cancel_key(&e);
    if (r == 0) {
        r = job_transition(e.job, JOB_CANCELED, "canceled by the officer");
        if (r < 0)
            cli_fail(r, NULL, "job %s (%s) cannot be canceled", e.job->id,
                     job_state_name(e.job->state));
    }
    if (r == 0)
        r = audit(&e, "cancel", "ok", NULL);
    if (r == 0 && !cli->json)
        printf(_("job %s canceled%s%s\n"), e.job->id, e.job->order_id ? _("; order canceled") : "",
               e.job->key_id_hex[0] ? _("; key removed from the token") : "");
out:
    ectx_clear(&e);
    return r;
}
