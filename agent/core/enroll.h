/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enroll.h - the enrollment state machine: drives one job record through keygen, custody, CSR,
 * validation, ordering (exactly once), polling, download, verification, write-back and, for a
 * re-key, revocation of the replaced certificate. Every step saves the record before and after
 * it acts, so a kill anywhere leaves a record that says what to do next.
 */
#ifndef PKIO_ENROLL_H
#define PKIO_ENROLL_H

#include <stdbool.h>

#include "tok.h"

struct cc_client;
struct pa_diag;
struct cfg;
struct req;
struct job;
struct tok_ctx;
struct tok_token;

struct enroll_opts {
    const char *token_uri;  /* enroll: the officer's URI; NULL on resume (derived from the job) */
    const char *pin_source; /* resume: PIN file for the job's token (else prompt / PIN pad) */
    const char *request;    /* enroll: the request file */
    enum tok_key_type key_type;
    bool pss;     /* CSR with RSASSA-PSS (and is_rsassa_pss is the request's business) */
    bool no_wait; /* return after ordering / while waiting: PA_E_PENDING */
    long replaces_certificate_id;
    long replaces_order_id;
    bool only_blank; /* enroll: refuse (PA_E_REFUSED) unless the token is blank (queue, unbound) */
    bool renew;      /* renew: never "already done"; the replaced certificate must be due */
    bool early;      /* renew --early: also a certificate not yet within renew.warn_days */
    int warn_days;   /* renew: "due" means valid_till within this many days */
};

/* What the front end does for the core. */
struct enroll_ui {
    void *arg;
    /* one progress line (translated, no newline), job id may be "" ; NULL: silent */
    void (*progress)(void *arg, const char *job_id, const char *line);
    /* a warning that does not stop the run (e.g. records set aside as corrupt): the whole line,
     * translated, "pkio-agent: warning: ..." without the newline; NULL: silent */
    void (*warn)(void *arg, const char *line);
    /* open the token uri names and log in (PIN from pin_source, PIN pad, prompt: the front
     * end's business). NULL: the core opens the module itself and logs in with pin_source
     * only (a PIN file), never prompting. */
    int (*open_token)(void *arg, const char *module, const char *uri, const char *pin_source,
                      struct tok_ctx **ctx, struct tok_token **tok, struct pa_diag *d);
    /* load, merge defaults, validate a request file; front end shows field problems (and
     * --json). NULL: the core does it, problems go into the diag's detail. */
    int (*prepare_request)(void *arg, const char *file, struct req **ret, struct pa_diag *d);
};

struct enroll_env {
    const struct cfg *cfg;
    const char *module; /* PKCS#11 module path */
    const char *state_dir;
    const struct enroll_ui *ui; /* may be NULL: all defaults */
};

struct enroll_result {
    char job_id[33];
    bool already_done; /* nothing ordered: a finished job for this request exists */
    bool driven;       /* the job was driven (or found done by resume): its state is the news,
                        * also after a failure; false: the run stopped before (checks, locks) */
    struct job *job;   /* the job record as the run left it (owned; enroll_result_clear) */
};

void enroll_result_clear(struct enroll_result *res);

/*
 * `enroll`: select the token; if it has an unfinished job, continue that one (the officer's
 * natural retry never starts a second enrollment); else create a job bound to the token's
 * serial and label and drive it. Returns 0 when done (or res->already_done), PA_E_PENDING when
 * waiting, or the error; d then holds the one line's parts (it may also hold a line with a
 * return of PA_E_PENDING: a wait that gave up). res->job may be NULL when no job was reached.
 * Nothing is printed but through env->ui.
 */
int enroll_start(const struct enroll_env *env, const struct enroll_opts *o,
                 struct enroll_result *res, struct pa_diag *d);

/* `resume`: drive an existing job (id or prefix) from its recorded state. */
int enroll_resume(const struct enroll_env *env, const char *job_id, const struct enroll_opts *o,
                  struct enroll_result *res, struct pa_diag *d);

/* `cancel`: cancel the job's pending order (if any) and remove its key from the token. */
int enroll_cancel(const struct enroll_env *env, const char *job_id, const struct enroll_opts *o,
                  struct enroll_result *res, struct pa_diag *d);

/* A CertCentral client from the configuration (API key from the key file, the environment or
 * --api-key-fd, as cfg_api_key finds it), with the station's rate budget in state_dir. */
int enroll_cc_client(const struct cfg *cfg, const char *state_dir, struct cc_client **ret,
                     struct pa_diag *d);

/*
 * SIGTERM/SIGINT stop a running enroll/resume once the current step is safe: the record is saved
 * and the command returns PA_E_PENDING. Call before enroll_start/enroll_resume.
 */
void enroll_handle_stop_signals(void);

/* Test hook: when PKIO_TEST_CRASH_AT names this point, the process kills itself (SIGKILL). */
void enroll_crash_point(const char *name);

#endif
