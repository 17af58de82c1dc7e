/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lifecycle.h - what happens to certificates after enrollment: `pkio-agent expiring` (which of
 * this station's certificates are due for renewal) and `pkio-agent certs` (what a token holds and
 * which job of ours put it there). The decisions are pure functions, unit-tested; the commands
 * are in cmd_lifecycle.c.
 */
#ifndef PKIO_LIFECYCLE_H
#define PKIO_LIFECYCLE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

struct cli;
struct job;
struct tok_info;

/* ---- dates ---------------------------------------------------------------------------------- */

/* Whole days from the UTC date of now to the UTC date of t: 0 today, 1 tomorrow, -1 yesterday. */
long lc_days_until(time_t t, time_t now);
/* A "yyyy-mm-dd" date (CertCentral's valid_till) as its last second, 23:59:59 UTC. 0 or -1. */
int lc_parse_date_end(const char *s, time_t *ret);
/* An ASN.1 time (a certificate's notBefore / notAfter) as time_t. 0 or -1. */
int lc_asn1_time(const ASN1_TIME *t, time_t *ret);
/* "2027-01-15T12:00:00Z" into out (at least 21 bytes). */
void lc_format_time(time_t t, char *out, size_t outlen);

/* ---- expiring ------------------------------------------------------------------------------- */

enum lc_source { LC_SRC_NONE, LC_SRC_CERTIFICATE, LC_SRC_CERTCENTRAL };
const char *lc_source_name(enum lc_source s); /* "none", "certificate", "certcentral" */

/* What is known about one certificate of ours. */
struct lc_expiry_in {
    time_t not_after;       /* notAfter of the leaf in the job's cert_pem; 0 = unknown */
    const char *valid_till; /* CertCentral's valid_till (yyyy-mm-dd); NULL or "" = not asked */
    const char *cc_status;  /* CertCentral's order status; NULL or "" = not asked */
    bool revoked_here;      /* our records say revoked (the job's own revoke, or a re-key's) */
    bool replaced;          /* a later job of ours holds its successor (installed or done) */
};

/* The verdict on it. */
struct lc_expiry {
    enum lc_source source; /* CertCentral's valid_till when it gave one, else the certificate */
    time_t expires;        /* the moment used */
    long days_left;        /* lc_days_until(expires, now): negative once past */
    bool expired;          /* expires is past, or CertCentral says "expired" */
    bool revoked;          /* CertCentral says "revoked", or our records do */
    bool listed;           /* expired, or expires within the window */
    bool due;              /* listed, and neither revoked nor replaced: counts for the exit */
};

/*
 * Decide for one certificate: listed when it expires within within_days (days_left <=
 * within_days) or has expired; due when listed and neither revoked nor replaced. -1 when there
 * is no date at all (neither notAfter nor a valid_till that parses). Pure.
 */
int lc_expiry_decide(const struct lc_expiry_in *in, long within_days, time_t now,
                     struct lc_expiry *ret);

/* ---- jobs and what they explain ------------------------------------------------------------ */

/* The station's jobs with each one's certificates (cert_pem parsed once). */
struct lc_jobs {
    struct job *const *v;
    size_t n;
    STACK_OF(X509) * *certs; /* per job: its cert_pem parsed, NULL when none or unreadable */
};
/* Parse every job's cert_pem. 0 or PA_E_NOMEM; lc_jobs_clear frees what it made (not jobs). */
int lc_jobs_index(struct job *const *v, size_t n, struct lc_jobs *ret);
void lc_jobs_clear(struct lc_jobs *j);

/* Is id (id_len bytes) the key id hex (any case) names? An empty id matches nothing. */
bool lc_id_is_hex(const unsigned char *id, size_t id_len, const char *hex);
/* The same certificate serial in hex: case and leading zeros do not count. "" matches nothing. */
bool lc_serial_eq(const char *a, const char *b);
/* A certificate's serial number in upper-case hex (as job records keep it) into out. */
void lc_cert_serial(X509 *cert, char *out, size_t outlen);

/* The leaf of a job's certificates: the one with the job's cert_serial, else the first. */
X509 *lc_job_leaf(const struct lc_jobs *jobs, size_t i);

/* What explains an object on a token. */
enum lc_role {
    LC_FOREIGN,   /* no job of ours */
    LC_KEY,       /* a job's key pair (CKA_ID) */
    LC_LEAF,      /* the certificate a job was issued (serial) */
    LC_CHAIN,     /* a CA certificate of a job's chain (byte for byte) */
    LC_UNDER_KEY, /* a certificate under a job's key id that is not the one it was issued */
};
const char *lc_role_name(enum lc_role r); /* "foreign", "key", "leaf", "chain", "under_key" */

struct lc_match {
    enum lc_role role;
    size_t job; /* index into lc_jobs.v; meaningful unless role is LC_FOREIGN */
};

/* The newest job bound to tok (queue_token_bound: serial and label) whose key has this CKA_ID.
 * Pure. */
struct lc_match lc_match_key(const struct lc_jobs *jobs, const struct tok_info *tok,
                             const unsigned char *id, size_t id_len);
/*
 * The newest job bound to this token that explains this certificate: by serial (its leaf), else
 * byte for byte in its chain, else by CKA_ID (under its key, but not its certificate). Pure.
 */
struct lc_match lc_match_cert(const struct lc_jobs *jobs, const struct tok_info *tok, X509 *cert,
                              const unsigned char *id, size_t id_len);

/*
 * What our records say about the revocation of job i's certificate: its own revoke (`pkio-agent
 * revoke`), else the re-key that replaced it (enroll --replaces / renew). "revoked", "pending",
 * "rejected" or "". ret_replaced_by (may be NULL) receives the index of the installed or done job
 * that replaced it, or (size_t)-1. Pure.
 */
const char *lc_revocation(const struct lc_jobs *jobs, size_t i, size_t *ret_replaced_by);

/* Copy s into out as valid UTF-8 without control characters ('?' for each bad byte). */
void lc_printable(const char *s, size_t len, char *out, size_t outlen);

/* ---- the commands (cmd_lifecycle.c) -------------------------------------------------------- */

int cmd_expiring(struct cli *cli, int argc, char **argv);
int cmd_certs(struct cli *cli, int argc, char **argv);

#endif
