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

struct cli;
struct job;

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

/*
 * `enroll`: select the token; if it has an unfinished job, continue that one (the officer's
 * natural retry never starts a second enrollment); else create a job bound to the token's
 * serial and label and drive it. *ret_job (optional) receives the job id (33 bytes).
 * Returns 0 when done, PA_E_PENDING when waiting, or the error (already reported).
 */
int enroll_start(struct cli *cli, const struct enroll_opts *o, char *ret_job);

/* `resume`: drive an existing job from its recorded state. */
int enroll_resume(struct cli *cli, const char *job_id, const struct enroll_opts *o);

/* `cancel`: cancel the job's pending order (if any) and remove its key from the token. */
int enroll_cancel(struct cli *cli, const char *job_id, const struct enroll_opts *o);

/*
 * SIGTERM/SIGINT stop a running enroll/resume once the current step is safe: the record is saved
 * and the command returns PA_E_PENDING. Call before enroll_start/enroll_resume.
 */
void enroll_handle_stop_signals(void);

/* Test hook: when PKIO_TEST_CRASH_AT names this point, the process kills itself (SIGKILL). */
void enroll_crash_point(const char *name);

#endif
