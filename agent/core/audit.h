/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit.h - the tamper-evident audit log: append-only JSON lines in STATE_DIR/audit.log, each
 * carrying the SHA-256 of the line before it. The chain is anchored outside the file: every
 * line's (seq, SHA-256) also goes to syslog/journald as an anchor message, and every job record
 * keeps the (seq, SHA-256) of its last line, so a deleted log, a cut-off tail and a rewritten
 * chain are found (audit_verify_report). No secrets.
 */
#ifndef PKIO_AUDIT_H
#define PKIO_AUDIT_H

#include <stdbool.h>
#include <stddef.h>

struct job;

#define AUDIT_SHA256_HEX 65 /* 64 lowercase hex digits + NUL */

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
 * Append one line {"seq":N,"at":"RFC3339 UTC","user":"name","user_from":"how","uid":U,"pid":P,
 * <fields>,"prev":"<sha256 hex of the previous line, 64 zeros for the first>"} to
 * STATE_DIR/audit.log (created 0600), under an exclusive flock, fsync'd; then send its anchor
 * to syslog (LOG_AUTHPRIV|LOG_INFO): "audit anchor seq=N sha256=H prev=P chain=C log=L job=J
 * event=... ". "user" is who acted (audit.c: SUDO_USER under sudo as root, else the login name,
 * else PKIO_ACTOR for a process without a login session, else the uid's name); "user_from"
 * says which ("sudo", "login", "PKIO_ACTOR", "uid").
 */
int audit_append(const char *state_dir, const struct audit_event *ev);
/* The same; on success *ret_seq and ret_sha256 (either may be NULL) name the line written. */
int audit_append_ex(const char *state_dir, const struct audit_event *ev, long *ret_seq,
                    char ret_sha256[AUDIT_SHA256_HEX]);

/*
 * A job's events, so that a kill between saving the record and appending the line loses none:
 *
 *   audit_job_intent(j, &ev);            adds ev (stamped now, with the actor) to
 *                                        j->audit_pending; no I/O
 *   job_save(state_dir, j);              the new state and the intent in one atomic write
 *   audit_commit_pending(state_dir, j);  appends every pending event, sets j->audit_seq and
 *                                        j->audit_sha256 to the last line, clears
 *                                        j->audit_pending and saves the record again
 *
 * audit_commit_pending is idempotent: an event whose line is already in the log (the process
 * was killed after appending, before saving) is found (the lines after j->audit_seq, not older
 * than the event, compared byte for byte with the line the event makes) and not appended again.
 * Call it also right after loading a record under its job lock, to replay what a kill left.
 * PA_E_JOB from audit_job_intent when AUDIT_MAX_PENDING events already wait (a broken log).
 */
#define AUDIT_MAX_PENDING 32
int audit_job_intent(struct job *j, const struct audit_event *ev);
int audit_commit_pending(const char *state_dir, struct job *j);

/*
 * Check the chain in the file only. 0 when intact (*ret_lines = number of lines; a missing log
 * is 0 lines); PA_E_JOB when a line is not valid JSON, has a wrong seq, or its "prev" does not
 * match the line before: *ret_bad_line is then that line's number (1-based) and errbuf says
 * what is wrong.
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

/* ---- the full check: file, job records, and the journal ---------------------------------- */

/* One anchor read from the journal. */
struct audit_anchor {
    long seq;
    char sha256[AUDIT_SHA256_HEX];
    char prev[AUDIT_SHA256_HEX];
    char chain[17]; /* first 16 hex digits of the SHA-256 of the chain's line 1 */
    char log[17];   /* first 16 hex digits of the SHA-256 of the log's absolute path */
    char job[33];   /* "" when the line has no job */
    long order;     /* position in the journal (set by the reader; 0 from audit_parse_anchor) */
};

/*
 * Whether a journal or syslog line is an anchor, and its fields: the message (as `journalctl -o
 * cat` prints it) starts with "audit anchor ", or a syslog line carries it after
 * "pkio-agent[PID]: " or "pkio-agent: ". 1 = anchor, 0 = not one. Pure.
 */
int audit_parse_anchor(const char *line, size_t len, struct audit_anchor *ret);

enum audit_finding_kind {
    AF_CHAIN_BROKEN, /* the file's own chain breaks at a line */
    AF_LOG_MISSING,  /* no audit.log (or an empty one) while job records exist / anchors exist */
    AF_TRUNCATED,    /* lines the journal anchored are past the end of the file */
    AF_REWRITTEN,    /* a line differs from the journal's anchor for its seq */
    AF_CONFLICT,     /* the journal holds two anchors for one line (forged anchors?) */
    AF_UNANCHORED,   /* lines the journal never saw, after its first anchor of this chain */
    AF_OTHER_CHAIN,  /* a chain of this log in the journal that the file does not hold */
    AF_JOB_PAST_END, /* a job record's last audit line is past the end of the file */
    AF_JOB_MISMATCH, /* a job record's last audit line differs from the file's */
    AF_PENDING,      /* (not tampering) a job record holds events not yet appended */
};

struct audit_finding {
    enum audit_finding_kind kind;
    long first, last; /* lines (seq), 0 when not about lines */
    char job[33];     /* the job record, for the job kinds */
    char chain[17];   /* AF_OTHER_CHAIN: the chain */
    char want[17];    /* what the journal / job record says (hash prefix), "" when n/a */
    char got[17];     /* what the file has (hash prefix), "" when n/a */
};

struct audit_report {
    long lines;         /* complete lines in the file */
    bool log_missing;   /* no audit.log, or an empty one */
    long bad_line;      /* first line that breaks the file's own chain, 0 = none */
    char reason[256];   /* why bad_line is bad */
    long jobs;          /* job records compared */
    long anchors;       /* anchors of this log read from the journal, -1 = not compared */
    long journal_first; /* first line of the file's chain the journal still anchors, 0 none */
    struct audit_finding *findings;
    size_t nfindings;
    size_t dropped; /* findings not kept (more than AUDIT_MAX_FINDINGS) */
};

#define AUDIT_MAX_FINDINGS 64

struct audit_verify_opts {
    bool against_journal;     /* compare with the anchors in the journal (or journal_file) */
    const char *journal_file; /* a syslog text file instead of journalctl (tests, rsyslog) */
    const char *since; /* journalctl --since (a log moved aside before it is not looked at) */
};

/*
 * Verify STATE_DIR/audit.log: its chain, every job record's last line (STATE_DIR/jobs), and,
 * with o->against_journal, the journal's anchors. 0 = intact; PA_E_JOB = tampered (rep says
 * how, and what matched); other errors (errbuf): the file, the job records or the journal could
 * not be read (PA_E_IO also when the journal holds no anchor of a log that has lines: run as
 * root or as a member of systemd-journal, or give journal_file). rep is always filled as far as
 * it got; free it with audit_report_clear.
 */
int audit_verify_report(const char *state_dir, const struct audit_verify_opts *o,
                        struct audit_report *rep, char *errbuf, size_t errlen);
void audit_report_clear(struct audit_report *rep);
/* Whether a finding means tampering (every kind but AF_PENDING). */
bool audit_finding_tampered(enum audit_finding_kind kind);
/* A short stable name ("truncated", "rewritten", ...) and a one-line explanation. */
const char *audit_finding_name(enum audit_finding_kind kind);
void audit_finding_text(const struct audit_finding *f, char *buf, size_t len);

/*
 * The pure comparisons behind audit_verify_report, for tests. hashes: n_lines entries of
 * AUDIT_SHA256_HEX bytes (line k at hashes + (k-1) * AUDIT_SHA256_HEX). Findings are added to
 * rep (which starts zeroed).
 */
int audit_compare_journal(const char *hashes, long n_lines, const struct audit_anchor *anchors,
                          size_t n_anchors, struct audit_report *rep);
int audit_compare_jobs(const char *hashes, long n_lines, bool log_missing, struct job *const *jobs,
                       size_t n_jobs, struct audit_report *rep);

/*
 * The language of what verification says (its error texts, a line's damage, the findings):
 * English by default, as --json and the records need; the officer's language (i18n.h) after
 * audit_translate_messages(true), for human output.
 */
void audit_translate_messages(bool on);

#endif
