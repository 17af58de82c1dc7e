/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enroll_token.c - the enrollment's token: opening it once per run and keeping the job bound to
 * it, key generation (or adoption after an interruption) with the custody gate, and the CSR step.
 */
#include "enroll_internal.h"

#include "diag.h"
#include "csr.h"
#include "fsutil.h"
#include "i18n.h"
#include "job.h"
#include "pa_err.h"
#include "queue.h"
#include "request.h"
#include "secret.h"

#include <openssl/pem.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_LABEL_PREFIX "pkio-"

void enroll_token_close(struct ectx *e)
{
    tok_token_close(e->tok);
    tok_close(e->tctx);
    e->tok = NULL;
    e->tctx = NULL;
}

/* Is the job bound to this token (serial and label: tpm2-pkcs11 serials are all zero)? */
bool enroll_job_on_token(const struct job *j, const struct tok_info *info)
{
    return queue_token_bound(j->token_serial, j->token_label, NULL, NULL, info);
}

/*
 * Open (once per run) and log in to the job's token; refuse any other token. On enroll the
 * officer's URI is used, on resume one built from the job's serial and label.
 */
int enroll_token_open(struct ectx *e)
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
        return diag_fail(e->d, PA_E_NOMEM, NULL, "token URI");
    r = enroll_open_token(e, uri);
    free(uri);
    if (r < 0)
        return r;
    r = tok_token_info(e->tok, &now);
    if (r < 0) {
        diag_fail(e->d, r, tok_detail(), "token");
        enroll_token_close(e);
        return r;
    }
    /* A job is bound to its token: never touch another one. */
    if (e->job && e->job->token_serial[0] && !enroll_job_on_token(e->job, &now)) {
        diag_fail(e->d, PA_E_TOKEN_GONE, NULL,
                  "job %s belongs to token '%s' (serial %s), not to '%s' (serial %s)", e->job->id,
                  e->job->token_label, e->job->token_serial, now.label, now.serial);
        enroll_token_close(e);
        return PA_E_TOKEN_GONE;
    }
    return 0;
}

/* Re-check the binding right before an operation on the token (it may have been swapped). */
int enroll_token_check(struct ectx *e)
{
    struct tok_info now;
    int r = tok_token_info(e->tok, &now);

    if (r == 0 && !enroll_job_on_token(e->job, &now))
        r = PA_E_TOKEN_GONE;
    if (r < 0)
        diag_fail(e->d, r, tok_detail(), "token '%s' (serial %s) for job %s", e->job->token_label,
                  e->job->token_serial, e->job->id);
    return r;
}

int enroll_token_key(struct ectx *e, unsigned char *id, size_t *id_len)
{
    int r = enroll_token_open(e);

    if (r == 0)
        r = enroll_token_check(e);
    if (r == 0)
        r = enroll_hex_decode(e->job->key_id_hex, id, TOK_ID_MAX, id_len);
    return r;
}

/* The public key the job is about, from its CSR (which was checked against the token key). */
int enroll_job_pubkey(const struct ectx *e, EVP_PKEY **ret)
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
    r = job_set_str(&e->job->module_path, e->env->module);
    if (r == 0)
        r = enroll_save(e);
    if (r < 0)
        return r;
    enroll_progress(e, _("generating a %s key pair on the token…"), e->job->key_type);
    r = tok_keygen_ex(e->tok, e->o->key_type, profile_usage(e->job->profile), label, id, id_len,
                      &ki);
    if (r == 0) {
        snprintf(e->job->keygen_mechanism, sizeof(e->job->keygen_mechanism), "%s", ki.mechanism);
        e->job->slot_hw = ki.hw_slot;
        e->job->slot_removable = ki.removable;
    }
    return r;
}

int enroll_step_keygen(struct ectx *e)
{
    char label[sizeof(e->job->key_label)];
    unsigned char id[TOK_ID_MAX];
    EVP_PKEY *pub = NULL;
    size_t id_len = 0;
    bool adopted = false;
    int r;

    r = enroll_token_open(e);
    if (r == 0)
        r = enroll_token_check(e);
    if (r < 0)
        return r;
    snprintf(label, sizeof(label), KEY_LABEL_PREFIX "%.16s", e->job->id);
    /* A kill between keygen and saving leaves a key with our label: adopt it, never make two;
     * a kill inside keygen may leave half a pair or mismatched ids: repair that first. */
    r = tok_reconcile_label(e->tok, label);
    if (r < 0)
        return diag_fail(e->d, r, tok_detail(), "keys labelled %s on token '%s'", label,
                         e->job->token_label);
    r = keygen_or_adopt(e, label, id, &id_len, &adopted);
    if (r < 0)
        return diag_fail(e->d, r, tok_detail(), "key generation on token '%s'",
                         e->job->token_label);
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
        return enroll_fail_job(e, r, "keygen", msg, shown);
    }
    r = tok_public_key(e->tok, id, id_len, &pub);
    if (r == 0)
        r = csr_spki_sha256(pub, e->job->spki_sha256);
    EVP_PKEY_free(pub);
    if (r < 0)
        return diag_fail(e->d, r, tok_detail(), "reading the new public key");
    enroll_hex_encode(e->job->key_id_hex, id, id_len);
    snprintf(e->job->key_label, sizeof(e->job->key_label), "%s", label);
    e->job->custody_ok = true;
    r = job_transition(e->job, JOB_KEY_READY, "%s key %s on the token (%s)",
                       adopted ? "adopted" : "generated", e->job->key_id_hex, e->job->custody);
    if (r == 0)
        r = enroll_audit(e, "keygen", "ok", adopted ? "key from an interrupted run adopted" : NULL);
    enroll_progress(e, "%s", _("key pair generated on the token; custody checked"));
    return r;
}

/* Load the request and check it is the one the job started with. */
int enroll_load_request(struct ectx *e, struct req **ret)
{
    char err[512] = "", sha[65], *buf = NULL;
    size_t len = 0;
    int r;

    r = fs_read_file(e->job->request_path, ENROLL_REQ_FILE_MAX, &buf, &len);
    if (r < 0)
        return diag_fail(e->d, PA_E_REQUEST, strerror(errno), "request %s", e->job->request_path);
    enroll_sha256_hex(buf, len, sha);
    secret_wipe(buf, len);
    free(buf);
    if (strcmp(sha, e->job->request_sha256) != 0)
        return diag_fail(e->d, PA_E_REQUEST, N_("the file changed since the job started"),
                         "request %s of job %s", e->job->request_path, e->job->id);
    r = req_load_file(e->job->request_path, ret, err, sizeof(err));
    if (r < 0)
        return diag_fail(e->d, r, err, "request %s", e->job->request_path);
    return 0;
}

/* The CSR subject of the job's request (reported). */
static int csr_subject_of(struct ectx *e, struct csr_subject *subj)
{
    const char *first = NULL, *last = NULL, *country = NULL;
    struct req *req = NULL;
    char err[512] = "";
    long individual_id = -1;
    int r;

    r = enroll_load_request(e, &req);
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
        r = csr_subject_person(first, last, country, subj, err, sizeof(err));
    if (r < 0)
        diag_fail(e->d, r, err, "request %s", e->job->request_path);
    req_free(req);
    return r;
}

/* The job's key on the token, checked again (custody, and the public key recorded at
 * generation), signs the CSR (csr_from_token_key). *ret_pem for the caller to free. */
static int csr_signed(struct ectx *e, const struct csr_subject *subj, char **ret_pem)
{
    unsigned char id[TOK_ID_MAX];
    char err[512] = "";
    enum csr_step step = CSR_STEP_KEY;
    size_t id_len = 0;
    int r;

    r = enroll_token_key(e, id, &id_len);
    if (r < 0)
        return r;
    r = custody_check(e, id, id_len);
    if (r < 0)
        return diag_fail(e->d, r, tok_detail(), "key %s of job %s", e->job->key_id_hex, e->job->id);
    r = csr_from_token_key(e->tok, id, id_len, e->job->spki_sha256, subj, e->job->pss, ret_pem,
                           NULL, &step, err, sizeof(err));
    if (r < 0 && step == CSR_STEP_SPKI)
        return diag_fail(e->d, PA_E_CUSTODY,
                         N_("its public key is not the one recorded at generation"),
                         "key %s of job %s", e->job->key_id_hex, e->job->id);
    if (r < 0 && step == CSR_STEP_KEY)
        return diag_fail(e->d, r, err, "key %s of job %s", e->job->key_id_hex, e->job->id);
    if (r < 0)
        return diag_fail(e->d, r, err, "CSR of job %s", e->job->id);
    return 0;
}

/* The SHA-256 of the CSR's DER, for the records (out is left alone if it does not parse). */
static void csr_digest(const char *pem, char out[65])
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509_REQ *x = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
    unsigned char *der = NULL;
    int dlen = x ? i2d_X509_REQ(x, &der) : -1;

    if (dlen > 0)
        enroll_sha256_hex(der, (size_t)dlen, out);
    OPENSSL_free(der);
    X509_REQ_free(x);
    BIO_free(bio);
}

int enroll_step_csr(struct ectx *e)
{
    struct csr_subject subj = {0};
    char *pem = NULL;
    int r;

    r = csr_subject_of(e, &subj);
    if (r == 0)
        r = csr_signed(e, &subj, &pem);
    if (r < 0)
        goto out;
    csr_digest(pem, e->job->csr_sha256);
    r = job_set_str(&e->job->csr_pem, pem);
    if (r == 0)
        r = job_transition(e->job, JOB_CSR_READY, "CSR for \"%s\" signed on the token", subj.cn);
    if (r == 0)
        r = enroll_audit(e, "csr", "ok", NULL);
    enroll_progress(e, "%s", _("SHA-256 CSR signed on the token and verified"));
out:
    free(pem);
    csr_subject_clear(&subj);
    return r;
}
