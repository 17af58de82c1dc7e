/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enroll_internal.h - what the enroll module's files share and nothing else includes: the run's
 * context and the plumbing every step uses (save, audit, progress, the CertCentral client).
 *
 *   enroll.c        context, shared plumbing, the driver loop, locks, enroll/resume/cancel
 *   enroll_pick.c   which job an enroll on a token drives; token, policy and --replaces checks
 *   enroll_token.c  opening and binding the token, keygen and custody, the CSR step
 *   enroll_order.c  ordering exactly once: before-send stamp, retry, recovery by public key
 *   enroll_cert.c   polling, download, verification, write-back to the token
 *   enroll_revoke.c the re-key's revocation of the replaced certificate, the last step
 */
#ifndef PKIO_ENROLL_INTERNAL_H
#define PKIO_ENROLL_INTERNAL_H

#include "enroll.h"
#include "job.h"
#include "tok.h"

#include <openssl/evp.h>

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define ENROLL_REQ_FILE_MAX (256 * 1024)

struct cc_client;
struct pa_diag;
struct req;

struct ectx {
    const struct enroll_env *env;
    struct pa_diag *d; /* the run's one diagnostic */
    const struct enroll_opts *o;
    const char *state_dir;
    struct job *job;
    int lock_fd;
    int token_lock_fd;
    bool stamp_failed;    /* the before-send hook could not record the attempt */
    struct cc_client *cc; /* created on first use */
    struct tok_ctx *tctx; /* the token stays open for the whole run once opened */
    struct tok_token *tok;
    bool already_done; /* enroll: a finished job for this request exists */
    bool driven;       /* the driver loop ran (or resume found the job done) */
};

/* ---- enroll.c: shared plumbing ---- */

/* One line per step, through the front end (env->ui->progress). */
void enroll_progress(const struct ectx *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A warning that does not stop the run, through the front end (env->ui->warn). */
void enroll_warn(const struct ectx *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void enroll_hex_encode(char *out, const unsigned char *p, size_t n);
int enroll_hex_decode(const char *s, unsigned char *out, size_t max, size_t *ret_len);
void enroll_sha256_hex(const void *p, size_t n, char out[65]);
/*
 * A call whose failure is not the run's (a failure while another is being recorded, a save
 * before a retry): between enroll_aside and enroll_aside_end it records into scratch, and its
 * line goes to the front end at once (env->ui->warn, the line the command line would print), as
 * today's two-line reports did; e->d stays free for the failure that matters.
 */
struct pa_diag *enroll_aside(struct ectx *e, struct pa_diag *scratch);
void enroll_aside_end(struct ectx *e, struct pa_diag *keep);
/* Save the job record (reported). */
int enroll_save(struct ectx *e);
/* Save the job with the event as an intent, then append it to the audit log (reported). */
int enroll_audit(struct ectx *e, const char *event, const char *outcome, const char *detail);
/* Record a terminal failure in the job and in the diag (shown: NULL = msg). */
int enroll_fail_job(struct ectx *e, int err, const char *event, const char *msg, const char *shown);
/* The run's CertCentral client, created on first use. */
int enroll_cc(struct ectx *e, struct cc_client **ret);
/* Lock the job, then load its record under the lock (replaces e->job). */
int enroll_lock_and_load(struct ectx *e, const char *id);
/* The job list, with a warning (env->ui->warn) for records set aside as corrupt. */
int enroll_list_jobs(struct ectx *e, struct job ***list, size_t *n);

/* ---- enroll_setup.c ---- */

/* Open the token uri names and log in (env->ui->open_token, else a PIN file or the PIN pad). */
int enroll_open_token(struct ectx *e, const char *uri);
/* The request file, loaded, with defaults, validated (env->ui->prepare_request, else the core). */
int enroll_prepare_request(struct ectx *e, const char *file, struct req **ret);

/* ---- enroll_token.c ---- */

/* Open (once per run) and log in to the job's token; refuse any other token. */
int enroll_token_open(struct ectx *e);
/* Re-check the binding right before an operation on the token. */
int enroll_token_check(struct ectx *e);
void enroll_token_close(struct ectx *e);
/* Is the job bound to this token (serial and label)? */
bool enroll_job_on_token(const struct job *j, const struct tok_info *info);
/* enroll_token_open and _check, then the job's key id (id: TOK_ID_MAX bytes). */
int enroll_token_key(struct ectx *e, unsigned char *id, size_t *id_len);
/* The public key the job is about, from its CSR. */
int enroll_job_pubkey(const struct ectx *e, EVP_PKEY **ret);
/* Load the request and check it is the one the job started with. */
int enroll_load_request(struct ectx *e, struct req **ret);
int enroll_step_keygen(struct ectx *e); /* JOB_NEW -> JOB_KEY_READY */
int enroll_step_csr(struct ectx *e);    /* JOB_KEY_READY -> JOB_CSR_READY */

/* ---- enroll_order.c ---- */

int enroll_step_order(struct ectx *e);   /* JOB_CSR_READY -> (ORDERING) -> JOB_ORDERED */
int enroll_step_recover(struct ectx *e); /* JOB_ORDERING -> JOB_ORDERED, or order once */

/* ---- enroll_cert.c ---- */

int enroll_step_poll(struct ectx *e);    /* JOB_ORDERED -> JOB_ISSUED */
int enroll_step_install(struct ectx *e); /* JOB_ISSUED -> JOB_INSTALLED */

/* ---- enroll_revoke.c ---- */

/* The order of a certificate: from our own job records first, else from CertCentral. */
int enroll_order_of_certificate(struct ectx *e, struct cc_client *c, long cert, long *ret);
int enroll_step_finish(struct ectx *e); /* JOB_INSTALLED -> JOB_DONE (revoking the old one) */

/* ---- enroll_pick.c ---- */

/* Back to the state a failed job failed in. */
int enroll_unfail(struct job *j);
/* Under the token lock: continue, find done (*ret_done; e->job is that job), or start a job for
 * this token. */
int enroll_choose_and_lock(struct ectx *e, const struct tok_info *info, const char *abs,
                           const char *sha, bool *ret_done);

#endif
