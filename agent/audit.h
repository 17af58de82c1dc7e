/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit.h - the tamper-evident audit log: append-only JSON lines in STATE_DIR/audit.log, each
 * carrying the SHA-256 of the line before it, also sent to syslog/journald. No secrets.
 */
#ifndef PKIO_AUDIT_H
#define PKIO_AUDIT_H

#include <stddef.h>

/* One event. Every field but event and outcome may be NULL / 0 (then omitted). */
struct audit_event {
    const char *event;   /* "keygen", "csr", "order", "issued", "installed", "revoke", ... */
    const char *outcome; /* "ok", "failed", "refused", ... */
    const char *job_id;
    const char *token_serial;
    const char *token_label;
    const char *key_id;  /* CKA_ID hex */
    const char *custody; /* e.g. "sensitive,always_sensitive,never_extractable,local" */
    const char *csr_sha256;
    long order_id;
    long certificate_id;
    const char *cert_serial;
    const char *detail; /* one line */
};

/*
 * Append one line {"seq":N,"at":"RFC3339 UTC","user":"name","uid":U,"pid":P,<fields>,
 * "prev":"<sha256 hex of the previous line, 64 zeros for the first>"} to STATE_DIR/audit.log
 * (created 0600), under an exclusive flock, fsync'd; then syslog it (LOG_AUTHPRIV|LOG_INFO).
 */
int audit_append(const char *state_dir, const struct audit_event *ev);

/*
 * Check the chain. 0 when intact (*ret_lines = number of lines); PA_E_JOB when a line is not
 * valid JSON, has a wrong seq, or its "prev" does not match the line before: *ret_bad_line is
 * then that line's number (1-based) and errbuf says what is wrong.
 */
int audit_verify(const char *state_dir, long *ret_lines, long *ret_bad_line, char *errbuf,
                 size_t errlen);

/*
 * Check one line of the log (len bytes, without its newline) on its own: a JSON object with
 * every required member, each member of the right type, "seq" == expect_seq and "prev" ==
 * expect_prev (64 lowercase hex digits). 0, or PA_E_JOB with errbuf saying what is wrong. Pure
 * (no I/O); audit_verify applies it to every line.
 */
int audit_check_line(const char *line, size_t len, long expect_seq, const char *expect_prev,
                     char *errbuf, size_t errlen);

#endif
