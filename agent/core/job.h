/* SPDX-License-Identifier: Apache-2.0 */
/*
 * job.h - enrollment job records: one JSON file per enrollment in STATE_DIR/jobs/, written
 * atomically (temp, fsync, rename, fsync dir), mode 0600, holding no secret (no PIN, no API key,
 * no card data). The record is the only state that outlives a process: every step writes it
 * before acting and after, so a kill between any two steps leaves a record that says what to do.
 *
 * The module: job.c (the record in memory), job_state.c (states and moves), job_format.c (the
 * JSON file format and its checks), job_store.c (files, listing, locks); job_internal.h is
 * theirs alone.
 */
#ifndef PKIO_JOB_H
#define PKIO_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

enum job_state {
    JOB_NEW,       /* record created, token bound, no key yet */
    JOB_KEY_READY, /* key pair generated on the token and custody-checked */
    JOB_CSR_READY, /* CSR built and verified; request validated */
    JOB_ORDERING,  /* about to POST the order: after a kill here, look the order up first */
    JOB_ORDERED,   /* order id known; polling (order_status says what CertCentral says) */
    JOB_ISSUED,    /* certificate downloaded and verified (cert_pem holds leaf + chain) */
    JOB_INSTALLED, /* leaf and chain written to the token and read back */
    JOB_DONE,      /* finished (for a re-key: the old certificate revoked too) */
    JOB_FAILED,    /* terminal: last_error says why */
    JOB_CANCELED,  /* terminal: canceled by the officer */
    JOB_STATE__MAX
};

struct job_event {
    time_t at;
    enum job_state state;
    char *note; /* may be NULL */
};

struct job {
    char id[33]; /* 32 hex chars: 16 random bytes */
    enum job_state state;
    time_t created, updated;
    /* The token the job is bound to: serial AND label (tpm2-pkcs11 serials are all zero). */
    char token_serial[17], token_label[33], token_model[17], token_manufacturer[33];
    /* The key. */
    char key_type[16]; /* "rsa:2048" ... */
    char key_label[65];
    char key_id_hex[129]; /* CKA_ID, hex; empty before keygen */
    char spki_sha256[65]; /* SHA-256 of the public key's DER SubjectPublicKeyInfo */
    bool custody_ok;      /* custody checked and good */
    /* Custody evidence (docs/ARCHITECTURE.md "Custody"): what proves the key is on the token. */
    time_t keygen_at;             /* this job called C_GenerateKeyPair at (saved before the call) */
    char keygen_mechanism[40];    /* "CKM_RSA_PKCS_KEY_PAIR_GEN" ... */
    bool slot_hw, slot_removable; /* CKF_HW_SLOT, CKF_REMOVABLE_DEVICE of the slot */
    char *module_path;            /* the PKCS#11 module that generated it */
    char *custody;                /* "generated here; value_readable=no extractable=no ..." */
    char profile[32];             /* the request's certificate.profile_option */
    char *csr_pem;                /* NULL before the CSR */
    char csr_sha256[65];          /* SHA-256 of the CSR's DER */
    bool pss;                     /* CSR signed with RSASSA-PSS */
    /* The order. */
    char *product;           /* e.g. pkio_organisation_person_prof */
    char *request_path;      /* the request file as given (re-read until ordered) */
    char request_sha256[65]; /* of the request file's bytes: a changed file is refused */
    time_t order_attempt_at; /* when the POST was (about to be) sent; 0 = never */
    long order_id;           /* 0 = unknown */
    long certificate_id;     /* 0 = unknown */
    char order_status[32];   /* CertCentral's last word, e.g. "needs_approval" */
    time_t next_poll;        /* 0 = now */
    double poll_interval_s;  /* current interval (grows up to poll.max_s) */
    char *cert_pem;          /* issued leaf + chain (PEM), once downloaded */
    char cert_serial[65];    /* leaf serial, hex */
    /* Re-keying. */
    long replaces_certificate_id; /* 0 = not a re-key */
    long replaces_order_id;
    bool old_revoked;         /* CertCentral shows the replaced certificate revoked */
    time_t revoke_attempt_at; /* a revoke PUT may have left at this time; 0 = never sent */
    long revoke_request_id;   /* the revocation request that awaits an approver, 0 = none */
    char revoke_status[16];   /* "", "pending" (request awaits approval), "revoked", "rejected" */
    /* Revoking this job's own certificate (`pkio-agent revoke`): lost token, compromise... */
    time_t cert_revoke_at;       /* the revoke PUT may have left at this time; 0 = never sent */
    char cert_revoke_reason[32]; /* key_compromise, superseded, ... */
    long cert_revoke_request_id; /* the revocation request awaiting approval, 0 = none */
    char cert_revoke_status[16]; /* "", "pending", "revoked", "rejected" */
    char *last_error;            /* one line; NULL when none */
    /* The audit log (audit.h): this job's last line there, and events saved but not appended. */
    long audit_seq;        /* seq of the job's last audit line; 0 = none recorded */
    char audit_sha256[65]; /* that line's SHA-256 (hex); "" = none recorded */
    char *audit_pending;   /* JSON array of events to append (audit_commit_pending); NULL = none */
    struct job_event *history;
    size_t nhistory;
};

const char *job_state_name(enum job_state s);
int job_state_parse(const char *name, enum job_state *ret);
/*
 * Terminal states: done, failed, canceled (nothing drives the job on; a failed one may be
 * resumed or canceled by the officer).
 */
bool job_state_is_terminal(enum job_state s);
/*
 * Whether the officer's `cancel` may end a job in state s: before a certificate exists (new,
 * key_ready, csr_ready, ordering, ordered) and failed. Not issued, installed or done (a
 * certificate exists: revoke it instead), not canceled (nothing left to cancel). The state
 * machine itself also lets issued and installed move to canceled (job_transition).
 */
bool job_state_is_cancelable(enum job_state s);

/* A new job in state NEW with a random id and created = updated = now. */
int job_new(struct job **ret);
void job_free(struct job *j);

/*
 * Move to state `to`, appending a history event with the note (printf-style, may be NULL).
 * Refuses (PA_E_INTERNAL) transitions the state machine does not allow: forward steps, any
 * state to FAILED/CANCELED, FAILED back to the state it failed in when resumed (see
 * job_state.c).
 */
int job_transition(struct job *j, enum job_state to, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Record a note in history without changing state (e.g. "waiting: needs_approval"). */
int job_note(struct job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Replace last_error (NULL clears). */
int job_set_error(struct job *j, const char *msg);
/* Replace a malloc'd string field: *field = strdup(value) (NULL clears). */
int job_set_str(char **field, const char *value);

/* Create STATE_DIR and STATE_DIR/jobs (0700) if missing; refuse a group/world-writable dir. */
int job_dir_prepare(const char *state_dir, char *errbuf, size_t errlen);
/* Save atomically to STATE_DIR/jobs/ID.json, mode 0600; sets updated = now. */
int job_save(const char *state_dir, struct job *j);
/* Load one job by id (or a unique prefix of at least 6 chars). PA_E_JOB if absent/corrupt. */
int job_load(const char *state_dir, const char *id, struct job **ret, char *errbuf, size_t errlen);
/* All jobs, oldest first. *ret is an array of job pointers (free each, then the array). */
int job_list(const char *state_dir, struct job ***ret, size_t *ret_n, char *errbuf, size_t errlen);
void job_list_free(struct job **list, size_t n);

/*
 * Take the job's lock (STATE_DIR/jobs/ID.lock, flock exclusive, non-blocking), so two
 * processes never drive one job. PA_E_BUSY when another process holds it. *ret_fd >= 0.
 */
int job_lock(const char *state_dir, const char *id, int *ret_fd);
void job_unlock(int fd);

/*
 * Take the lock of one token (STATE_DIR/jobs/token-H.lock, H from its serial and label), waiting
 * up to wait_s seconds for another process to release it; PA_E_BUSY after that. Whoever reads the
 * job list to decide what to do with a token holds this lock until the job record it acts on
 * exists and is locked, so two processes can never start two jobs for one token. Release with
 * job_unlock. Always taken before a job lock, never after (no lock-order inversion).
 */
int job_token_lock(const char *state_dir, const char *serial, const char *label, double wait_s,
                   int *ret_fd);

/*
 * A job record that failed to parse is moved aside to ID.json.corrupt (kept for the officer)
 * by job_list, which then goes on with the others; the names of the files set aside in this
 * call are reported in errbuf ("" when none) while job_list still returns 0.
 */

/* JSON (de)serialisation, pure (fuzzed). job_parse validates every field's type and range. */
char *job_to_json(const struct job *j);
int job_parse(const char *buf, size_t len, struct job **ret, char *errbuf, size_t errlen);

#endif
