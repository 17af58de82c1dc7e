/* SPDX-License-Identifier: Apache-2.0 */
/*
 * revoke.h - revoking a certificate at CertCentral once, whatever is lost or killed on the way:
 * `pkio-agent revoke` (a lost or stolen token, a compromised key, a person who left) and the
 * re-key's revocation of the replaced certificate share the rule that CertCentral's order is
 * read before any (re)send, so "already revoked" is success and a revocation request that waits
 * for an approver is never sent twice.
 */
#ifndef PKIO_REVOKE_H
#define PKIO_REVOKE_H

#include <stdbool.h>
#include <stddef.h>

struct cc_order_info;
struct enroll_env;
struct pa_diag;

enum revoke_state {
    RV_NONE,     /* nothing there yet: (re)send */
    RV_REVOKED,  /* CertCentral shows the certificate revoked (or the request approved) */
    RV_PENDING,  /* a revocation request waits for an approver */
    RV_REJECTED, /* an approver rejected the request (only counted after our own attempt) */
};

/*
 * What the order info says about the certificate's revocation. attempted: we sent a revoke
 * earlier (a rejected request is ours to report only then). Pure.
 */
enum revoke_state revoke_state_of(const struct cc_order_info *info, bool attempted);
/* "", "revoked", "pending", "rejected" (the job record's words). */
const char *revoke_state_name(enum revoke_state s);

struct revoke_opts {
    const char *job;    /* --job ID (or prefix) */
    long cert;          /* --cert CERT_ID */
    const char *serial; /* --serial TOKEN_SERIAL: the token need not be present */
    const char *reason; /* key_compromise, superseded, cessation_of_operation, ... */
    const char *comment;
    bool yes; /* no confirmation question */
};

/* True for the revocation reasons CertCentral takes. */
bool revoke_reason_valid(const char *reason);

/* What revoke_run settled: the front end says it ("certificate N: revoked", or JSON). */
struct revoke_result {
    bool settled; /* false: nothing settled (the diag says why) */
    long certificate_id;
    long order_id;
    char job_id[33];         /* "" : a certificate without a job of ours */
    enum revoke_state state; /* RV_REVOKED, RV_PENDING or RV_REJECTED */
    long request_id;         /* the revocation request, 0 when none is known */
};

/* What a settled revocation is: in English for the records, translated (tr) for the officer. */
void revoke_settled_text(enum revoke_state st, long request_id, bool tr, char *out, size_t len);

/*
 * `pkio-agent revoke`: find the certificate (a job of ours; a certificate without a job only
 * with --cert), show whose it is on the terminal (/dev/tty) and ask unless --yes, record the
 * attempt in the job, revoke, and record the outcome (revoked, or the pending request) in the
 * job, the audit log and *res. Returns 0 when revoked or pending (res->settled),
 * PA_E_CA_REJECTED when an approver rejected our request (res->settled too), else the error
 * (in d). Nothing is printed on stdout or stderr.
 */
int revoke_run(const struct enroll_env *env, const struct revoke_opts *o, struct revoke_result *res,
               struct pa_diag *d);

#endif
