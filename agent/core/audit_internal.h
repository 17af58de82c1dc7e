/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_internal.h - what the files of the audit log (audit.h) share, and nothing else of the
 * agent may use:
 *   audit.c         the line: its format, the strict parse and checks, hashing, building a line
 *                   from an event; the language of verification texts
 *   audit_log.c     appending: the file, its lock and tail, job intents and their commit
 *   audit_anchor.c  the anchors: sending them to syslog/journald, reading them back
 *   audit_verify.c  verification: the whole file, the job records, the journal; the report
 * tests/unit/test_audit.c and tests/fuzz/fuzz_audit.c include audit.c and reach these too.
 */
#ifndef PKIO_AUDIT_INTERNAL_H
#define PKIO_AUDIT_INTERNAL_H

#include "audit.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <json-c/json.h>

#define AUDIT_FILE             "audit.log"
#define AUDIT_MAX_LINE         (64 * 1024) /* bytes, without the newline */
#define AUDIT_HEX_LEN          64
#define AUDIT_ID_LEN           16
#define AUDIT_ZERO_PREV        "0000000000000000000000000000000000000000000000000000000000000000"
#define AUDIT_MAX_JOURNAL_LINE 8192
#define AUDIT_MSG_LEN          640
#define AUDIT_SOCKET_ENV       "PKIO_AUDIT_SYSLOG_SOCKET"
#define AUDIT_JSON_FLAGS       (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define AUDIT_HEX_DIGITS       "0123456789abcdef"

/* What audit_parse_line tells about a line. */
struct audit_parsed {
    long seq;
    char prev[AUDIT_HEX_LEN + 1];
    char at[32];
};

/* A line in the log: its seq, hash, prev and chain (for its anchor). */
struct audit_written {
    long seq;
    char sha[AUDIT_HEX_LEN + 1];
    char prev[AUDIT_HEX_LEN + 1];
    char chain[AUDIT_ID_LEN + 1];
};

/* Bodies to bring into the log, in order (audit_commit_bodies). */
struct audit_batch {
    json_object *const *bodies;
    size_t n;
    long after_seq; /* with find: a body may already be in the lines after this one */
    bool find;
    size_t done; /* bodies in the log */
    struct audit_written last;
};

/* The lines of a log, hashed and checked (audit_walk_file). */
struct audit_walk {
    char *hashes; /* n entries of AUDIT_SHA256_HEX bytes */
    long n, cap;
    long bad; /* first line that breaks the chain, 0 = none */
    char err[192];
    bool missing; /* no file */
    uid_t owner;  /* the file's owner */
    char prev[AUDIT_HEX_LEN + 1];
};

/* A growing array of anchors. */
struct audit_anchors {
    struct audit_anchor *v;
    size_t n, cap;
};

/* ---- audit.c: the line ------------------------------------------------------------------ */
/* SHA-256 of len bytes as 64 lowercase hex digits + NUL in hex. */
int audit_sha256_hex(const void *data, size_t len, char hex[AUDIT_HEX_LEN + 1]);
/* A message as verification shows it (msgid marked N_()); format_arg keeps printf checks. */
__attribute__((format_arg(1))) const char *audit_tr(const char *msgid);
/* Parse len bytes as one strict JSON value (at most 4 deep), nothing after it. */
int audit_json_parse(const char *text, size_t len, json_object **ret, char *errbuf, size_t errlen);
/* Parse and check one line on its own (everything but the chain); *p: its seq, prev and at. */
int audit_parse_line(const char *line, size_t len, struct audit_parsed *p, char *errbuf,
                     size_t errlen);
/* A string member of body, or NULL. */
const char *audit_body_str(json_object *body, const char *key);
/* Now, as "YYYY-MM-DDTHH:MM:SSZ". */
int audit_now(char at[32]);
/* The body of ev's line: every member but seq and prev, "at" = now, the actor, uid and pid. */
int audit_body_from_event(const struct audit_event *ev, json_object **ret);
/*
 * The line body makes with seq, prev and at (NULL: the body's own "at"), members in the order
 * of the line format, newline included; malloc'd, *ret_len its length with the newline.
 * PA_E_JOB for a body with over-long values.
 */
int audit_line_from_body(json_object *body, long seq, const char *prev, const char *at, char **ret,
                         size_t *ret_len);

/* ---- audit_log.c: appending ------------------------------------------------------------- */

/* write(2) all len bytes of p (PA_E_IO when it cannot). */
int audit_write_all(int fd, const char *p, size_t len);

/* The job's pending events as a JSON array of objects (a new empty one when none). */
int audit_pending_load(const struct job *j, json_object **ret);
/* Bring every body of b into the log (appending those not found), then send the anchors. */
int audit_commit_bodies(const char *state_dir, struct audit_batch *b);

/* ---- audit_anchor.c: the anchors -------------------------------------------------------- */

/* Whether anchors are sent at all (unit tests that include audit.c turn it off). */
extern bool audit_syslog_enabled;
/* The log's id in anchors: SHA-256 of STATE_DIR/audit.log's absolute path, 16 digits. */
void audit_log_id(const char *state_dir, char id[AUDIT_ID_LEN + 1]);
/* The anchor of line w of log logid, whose body is body (the part after job is for people). */
void audit_anchor_msg(char *buf, size_t len, const struct audit_written *w, const char *logid,
                      json_object *body);
/* The message for an event that could not be written to the log. */
void audit_unlogged_msg(char *buf, size_t len, json_object *body);
/* Send msg to syslog (or to the test socket PKIO_AUDIT_SYSLOG_SOCKET names). */
void audit_send(const char *msg);
/* The anchors of log logid in the syslog text file at path, in their order. */
int audit_anchors_from_file(const char *path, const char *logid, struct audit_anchors *a,
                            char *errbuf, size_t errlen);
/* The anchors of log logid that journald holds from uid (journalctl; since may be NULL). */
int audit_anchors_from_journal(uid_t uid, const char *since, const char *logid,
                               struct audit_anchors *a, char *errbuf, size_t errlen);

/* ---- audit_verify.c: verification ------------------------------------------------------- */

void audit_walk_init(struct audit_walk *w);
/* Walk the log at path under a shared lock. A missing file: w->missing, 0 lines. */
int audit_walk_file(const char *path, struct audit_walk *w, char *errbuf, size_t errlen);

#endif
