/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_log.c - appending to the audit log (audit.h): the file, its lock and its tail; a job's
 * events as intents in its record, then committed to the log.
 *
 * Appending: open with O_APPEND, flock LOCK_EX (blocking: appenders queue), read only the last
 * line (one pread of at most AUDIT_MAX_LINE + 2 bytes from the end), write the new line with one
 * write(2), fsync; then the anchor (audit_anchor.c). A log whose last line is incomplete (power
 * cut mid-write) or unreadable is not appended to (PA_E_JOB): audit_verify names the line; the
 * officer moves the file aside, which starts a new chain. Readers take LOCK_SH so they never see
 * a half-written line.
 *
 * Job events (audit_job_intent, audit_commit_pending): the event is stored in the job record
 * (audit_pending: a JSON array of line bodies, every member but seq and prev) in the same atomic
 * write as the state it records, then appended. A body already in the log is recognised: the
 * lines after the job's last recorded line are read backwards from the end, down to the first
 * line older than the intent ("at" is the append time, which only grows), and each is compared
 * byte for byte with the line the body makes with that line's seq, at and prev. The earliest
 * match wins, so two identical pending events map to two lines, in order. (A clock set back
 * between the intent and the append can make an event appear twice; it never loses one.) Every
 * job record keeps the (seq, SHA-256) of its last line, so `audit verify` alone sees a cut-off
 * tail, a deleted log, or a rewritten line that a job record points to.
 */
#include "audit.h"
#include "audit_internal.h"

#include "job.h"
#include "log.h"
#include "pa_err.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#define AUDIT_OPEN_TRY         5 /* attempts when the file is renamed away under us */
#define AUDIT_MAX_PENDING_TEXT (256 * 1024)
#define AUDIT_RSCAN_BUF        (2 * (AUDIT_MAX_LINE + 1))

/* Test hook: PKIO_TEST_CRASH_AT=<name> kills the process here (as enroll_crash_point does). */
static void audit_crash_point(const char *name)
{
    const char *at = getenv("PKIO_TEST_CRASH_AT");

    if (at && strcmp(at, name) == 0)
        (void)raise(SIGKILL);
}

/* ---------------------------------------------------------------------------------------- */
/* The file                                                                                 */

/* pread exactly len bytes at off. */
static int audit_pread_all(int fd, char *buf, size_t len, off_t off)
{
    while (len > 0) {
        ssize_t n = pread(fd, buf, len, off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return PA_E_IO;
        buf += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

/*
 * The chain's end in a log of size bytes: the next seq and the hash of the last line. Reads
 * only the tail. PA_E_JOB when the last line is incomplete, too long or not a valid line.
 */
static int audit_tail(int fd, off_t size, long *ret_seq, char ret_prev[AUDIT_HEX_LEN + 1])
{
    char *buf = NULL, err[160];
    struct audit_parsed p;
    size_t want, start;
    int r;

    if (size == 0) {
        *ret_seq = 1;
        memcpy(ret_prev, AUDIT_ZERO_PREV, AUDIT_HEX_LEN + 1);
        return 0;
    }
    /* the longest line, its newline and the newline before it */
    want = (uintmax_t)size > AUDIT_MAX_LINE + 2 ? AUDIT_MAX_LINE + 2 : (size_t)size;
    buf = malloc(want);
    if (!buf)
        return PA_E_NOMEM;
    r = audit_pread_all(fd, buf, want, size - (off_t)want);
    if (r < 0) {
        log_debug("audit: cannot read the log: %s", strerror(errno));
        goto out;
    }
    r = PA_E_JOB;
    if (buf[want - 1] != '\n') {
        log_debug("audit: the last line is incomplete (no newline at the end); "
                  "run audit verification and move the log aside");
        goto out;
    }
    start = want - 1;
    while (start > 0 && buf[start - 1] != '\n')
        start--;
    if (start == 0 && want < (size_t)size) {
        log_debug("audit: the last line is longer than %d bytes", AUDIT_MAX_LINE);
        goto out;
    }
    r = audit_parse_line(buf + start, want - 1 - start, &p, err, sizeof(err));
    if (r < 0) {
        log_debug("audit: the last line is damaged: %s", err);
        r = r == PA_E_NOMEM ? r : PA_E_JOB;
        goto out;
    }
    r = audit_sha256_hex(buf + start, want - 1 - start, ret_prev);
    if (r == 0)
        *ret_seq = p.seq + 1;
out:
    free(buf);
    return r;
}

/* The chain id of a log of size bytes whose line seq has hash sha: line 1's hash, 16 digits. */
static int audit_chain_of(int fd, off_t size, long seq, const char *sha,
                          char chain[AUDIT_ID_LEN + 1])
{
    char *buf, *nl, h[AUDIT_HEX_LEN + 1];
    size_t want = (uintmax_t)size > AUDIT_MAX_LINE + 1 ? AUDIT_MAX_LINE + 1 : (size_t)size;
    int r;

    if (seq == 1) {
        memcpy(chain, sha, AUDIT_ID_LEN);
        chain[AUDIT_ID_LEN] = '\0';
        return 0;
    }
    buf = malloc(want ? want : 1);
    if (!buf)
        return PA_E_NOMEM;
    r = audit_pread_all(fd, buf, want, 0);
    nl = r == 0 ? memchr(buf, '\n', want) : NULL;
    if (r == 0 && !nl)
        r = PA_E_JOB;
    if (r == 0)
        r = audit_sha256_hex(buf, (size_t)(nl - buf), h);
    if (r == 0) {
        memcpy(chain, h, AUDIT_ID_LEN);
        chain[AUDIT_ID_LEN] = '\0';
    }
    free(buf);
    return r;
}

int audit_write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return PA_E_IO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/*
 * Open STATE_DIR/audit.log for appending and lock it; *ret_st is the file's state under the
 * lock. Retries when the file was renamed away between open and flock.
 */
static int audit_open_locked(const char *path, int *ret_fd, struct stat *ret_st)
{
    for (int attempt = 0; attempt < AUDIT_OPEN_TRY; attempt++) {
        struct stat st, pst;
        int fd;

        fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0) {
            log_debug("audit: cannot open %s: %s", path, strerror(errno));
            return PA_E_IO;
        }
        while (flock(fd, LOCK_EX) < 0) {
            if (errno != EINTR) {
                log_debug("audit: cannot lock %s: %s", path, strerror(errno));
                close(fd);
                return PA_E_IO;
            }
        }
        if (fstat(fd, &st) < 0) {
            close(fd);
            return PA_E_IO;
        }
        if (stat(path, &pst) < 0 || pst.st_ino != st.st_ino || pst.st_dev != st.st_dev) {
            close(fd); /* moved aside while we waited: open the new one */
            continue;
        }
        if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
            log_debug("audit: %s is not a regular file of ours, or group/world writable", path);
            close(fd);
            return PA_E_CONFIG;
        }
        *ret_fd = fd;
        *ret_st = st;
        return 0;
    }
    log_debug("audit: %s keeps changing", path);
    return PA_E_IO;
}

static int audit_fsync_dir(const char *state_dir)
{
    int fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int r = 0;

    if (fd < 0)
        return PA_E_IO;
    if (fsync(fd) < 0)
        r = PA_E_IO;
    close(fd);
    return r;
}

/* ---------------------------------------------------------------------------------------- */
/* Appending                                                                                */

/* Reading a log backwards, line by line (audit_rscan_prev). */
struct audit_rscan {
    int fd;
    off_t lo;    /* file offset of buf[0] */
    size_t have; /* bytes in buf */
    off_t end;   /* offset of the newline ending the next line to return; -1: none left */
    char *buf;   /* AUDIT_RSCAN_BUF bytes */
};

/* Fill buf with the bytes right before s->end (as many as fit). */
static int audit_rscan_load(struct audit_rscan *s)
{
    size_t want = s->end > AUDIT_RSCAN_BUF ? AUDIT_RSCAN_BUF : (size_t)s->end;
    int r = audit_pread_all(s->fd, s->buf, want, s->end - (off_t)want);

    if (r == 0) {
        s->lo = s->end - (off_t)want;
        s->have = want;
    }
    return r;
}

/* Where the line ending at s->end starts, searching the buffer backwards; -1: not in it. */
static off_t audit_rscan_start(const struct audit_rscan *s)
{
    for (off_t i = s->end - 1; i >= s->lo; i--)
        if (s->buf[i - s->lo] == '\n')
            return i + 1;
    return s->lo == 0 ? 0 : -1;
}

/*
 * The line before the one returned last (first: the last line of the file). 1 with *ret_line
 * (into the buffer, valid until the next call) and *ret_len; 0 at the start of the file;
 * PA_E_JOB for a line longer than the buffer; PA_E_IO when it cannot be read.
 */
static int audit_rscan_prev(struct audit_rscan *s, const char **ret_line, size_t *ret_len)
{
    bool loaded = false;
    off_t start;

    if (s->end < 0)
        return 0;
    if (s->end < s->lo || s->end > s->lo + (off_t)s->have) {
        if (audit_rscan_load(s) < 0)
            return PA_E_IO;
        loaded = true;
    }
    start = audit_rscan_start(s);
    if (start < 0 && !loaded) { /* the line starts before the buffer: load again */
        if (audit_rscan_load(s) < 0)
            return PA_E_IO;
        start = audit_rscan_start(s);
    }
    if (start < 0)
        return PA_E_JOB;
    *ret_line = s->buf + (start - s->lo);
    *ret_len = (size_t)(s->end - start);
    s->end = start - 1;
    return 1;
}

/* Whether line (len bytes, no newline, parsed as p) is the line body makes there. */
static int audit_is_line_of(json_object *body, const struct audit_parsed *p, const char *line,
                            size_t len)
{
    char *cand = NULL;
    size_t clen = 0;
    int r = audit_line_from_body(body, p->seq, p->prev, p->at, &cand, &clen);

    if (r == PA_E_JOB)
        return 0;
    if (r < 0)
        return r;
    r = clen == len + 1 && memcmp(cand, line, len) == 0;
    free(cand);
    return r;
}

/*
 * Whether body's line is already in the log of size bytes, after line after_seq: 1 with *w
 * (the earliest match), 0 when not. Reads backwards from the end and stops at line after_seq,
 * at a line older than the body's "at", or at a damaged line.
 */
static int audit_find_body(int fd, off_t size, json_object *body, long after_seq,
                           struct audit_written *w)
{
    struct audit_rscan s = {.fd = fd, .end = size - 1};
    const char *line, *since = audit_body_str(body, "at");
    struct audit_parsed p;
    size_t len = 0;
    int r, found = 0;

    if (size <= 0 || !since)
        return 0;
    s.buf = malloc(AUDIT_RSCAN_BUF);
    if (!s.buf)
        return PA_E_NOMEM;
    while ((r = audit_rscan_prev(&s, &line, &len)) == 1) {
        if (audit_parse_line(line, len, &p, NULL, 0) < 0 || p.seq <= after_seq ||
            strcmp(p.at, since) < 0)
            break;
        r = audit_is_line_of(body, &p, line, len);
        if (r < 0)
            break;
        if (r == 1) {
            found = 1;
            w->seq = p.seq;
            memcpy(w->prev, p.prev, sizeof(w->prev));
            r = audit_sha256_hex(line, len, w->sha);
            if (r < 0)
                break;
        }
    }
    free(s.buf);
    if (r < 0 && r != PA_E_JOB) /* PA_E_JOB: a line longer than any we write ends the search */
        return r;
    if (!found)
        return 0;
    r = audit_chain_of(fd, size, w->seq, w->sha, w->chain);
    return r < 0 ? r : 1;
}

/* Append body's line to the locked log of *size bytes; *w: the line written. */
static int audit_write_body(int fd, off_t *size, json_object *body, struct audit_written *w)
{
    struct audit_parsed p;
    char *line = NULL, at[32];
    size_t len = 0;
    long seq = 0;
    int r = audit_tail(fd, *size, &seq, w->prev);

    if (r == 0)
        r = audit_now(at);
    if (r == 0)
        r = audit_line_from_body(body, seq, w->prev, at, &line, &len);
    if (r == 0 && audit_parse_line(line, len - 1, &p, NULL, 0) < 0)
        r = PA_E_JOB; /* a damaged body (from a job record): never write a bad line */
    if (r == 0 && (r = audit_write_all(fd, line, len)) < 0) {
        log_debug("audit: cannot write the log: %s", strerror(errno));
        if (ftruncate(fd, *size) < 0)
            log_debug("audit: cannot cut the partial line off: %s", strerror(errno));
    }
    if (r == 0 && fsync(fd) < 0) {
        log_debug("audit: cannot fsync the log: %s", strerror(errno));
        r = PA_E_IO;
    }
    if (r == 0)
        r = audit_sha256_hex(line, len - 1, w->sha);
    if (r == 0) {
        w->seq = seq;
        *size += (off_t)len;
        r = audit_chain_of(fd, *size, seq, w->sha, w->chain);
    }
    free(line);
    return r;
}

/* Send the anchors of the bodies in the log and say which ones are not. */
static void audit_send_batch(const struct audit_batch *b, char (*msgs)[AUDIT_MSG_LEN])
{
    char msg[AUDIT_MSG_LEN];

    for (size_t i = 0; i < b->n; i++) {
        if (i < b->done && msgs) {
            audit_send(msgs[i]);
        } else if (i >= b->done) {
            audit_unlogged_msg(msg, sizeof(msg), b->bodies[i]);
            audit_send(msg);
        }
    }
}

/* Bring every body of b into the log (appending those not found), then send the anchors. */
int audit_commit_bodies(const char *state_dir, struct audit_batch *b)
{
    char *path = NULL, (*msgs)[AUDIT_MSG_LEN] = NULL, logid[AUDIT_ID_LEN + 1];
    struct stat st;
    off_t size = 0;
    int fd = -1, r = PA_E_NOMEM;

    msgs = calloc(b->n ? b->n : 1, sizeof(*msgs));
    if (!msgs || asprintf(&path, "%s/%s", state_dir, AUDIT_FILE) < 0) {
        path = NULL;
        goto out;
    }
    r = audit_open_locked(path, &fd, &st);
    if (r < 0)
        goto out;
    size = st.st_size;
    audit_log_id(state_dir, logid);
    for (; b->done < b->n; b->done++) {
        json_object *body = b->bodies[b->done];

        r = b->find ? audit_find_body(fd, size, body, b->after_seq, &b->last) : 0;
        if (r == 0)
            r = audit_write_body(fd, &size, body, &b->last);
        if (r < 0)
            break;
        b->after_seq = b->last.seq;
        audit_anchor_msg(msgs[b->done], sizeof(msgs[0]), &b->last, logid, body);
    }
    if (r >= 0 && st.st_size == 0 && size > 0 && audit_fsync_dir(state_dir) < 0) {
        log_debug("audit: cannot fsync %s: %s", state_dir, strerror(errno));
        r = PA_E_IO;
    }
    r = r > 0 ? 0 : r;
out:
    if (fd >= 0)
        close(fd); /* releases the lock */
    audit_send_batch(b, msgs);
    free(msgs);
    free(path);
    return r;
}

static bool audit_event_ok(const struct audit_event *ev)
{
    return ev && ev->event && ev->event[0] && ev->outcome && ev->outcome[0];
}

/*
 * Append ev (see audit.h). PA_E_INTERNAL without event/outcome; PA_E_CONFIG when the log is not
 * a regular file owned by us or is group/world writable; PA_E_JOB when the last line is
 * incomplete or damaged; PA_E_IO on I/O errors (a partly written line is cut off again). The
 * event goes to syslog in every case but the first; details go to log_debug.
 */
int audit_append_ex(const char *state_dir, const struct audit_event *ev, long *ret_seq,
                    char ret_sha256[AUDIT_SHA256_HEX])
{
    json_object *body = NULL;
    struct audit_batch b;
    int r;

    if (!state_dir || !audit_event_ok(ev))
        return PA_E_INTERNAL;
    r = audit_body_from_event(ev, &body);
    if (r < 0)
        return r;
    memset(&b, 0, sizeof(b));
    b.bodies = &body;
    b.n = 1;
    r = audit_commit_bodies(state_dir, &b);
    if (r == 0 && ret_seq)
        *ret_seq = b.last.seq;
    if (r == 0 && ret_sha256)
        memcpy(ret_sha256, b.last.sha, AUDIT_SHA256_HEX);
    json_object_put(body);
    return r;
}

int audit_append(const char *state_dir, const struct audit_event *ev)
{
    return audit_append_ex(state_dir, ev, NULL, NULL);
}

/* ---------------------------------------------------------------------------------------- */
/* Job events: intent in the record, then the line                                          */

/* The job's pending events as a JSON array of objects (a new empty one when none). */
int audit_pending_load(const struct job *j, json_object **ret)
{
    json_object *arr = NULL;
    size_t n;
    int r;

    if (!j->audit_pending || !j->audit_pending[0]) {
        arr = json_object_new_array();
        if (!arr)
            return PA_E_NOMEM;
        *ret = arr;
        return 0;
    }
    r = audit_json_parse(j->audit_pending, strlen(j->audit_pending), &arr, NULL, 0);
    if (r < 0)
        return r;
    r = json_object_is_type(arr, json_type_array) ? 0 : PA_E_JOB;
    n = r == 0 ? json_object_array_length(arr) : 0;
    if (n > AUDIT_MAX_PENDING)
        r = PA_E_JOB;
    for (size_t i = 0; r == 0 && i < n; i++)
        if (!json_object_is_type(json_object_array_get_idx(arr, i), json_type_object))
            r = PA_E_JOB;
    if (r < 0) {
        log_debug("audit: job %s: its pending audit events cannot be read", j->id);
        json_object_put(arr);
        return r;
    }
    *ret = arr;
    return 0;
}

int audit_job_intent(struct job *j, const struct audit_event *ev)
{
    json_object *arr = NULL, *body = NULL;
    const char *s = NULL;
    int r;

    if (!j || !audit_event_ok(ev))
        return PA_E_INTERNAL;
    r = audit_pending_load(j, &arr);
    if (r == 0 && json_object_array_length(arr) >= AUDIT_MAX_PENDING) {
        log_debug("audit: job %s: %d audit events already wait for the log", j->id,
                  AUDIT_MAX_PENDING);
        r = PA_E_JOB;
    }
    if (r == 0)
        r = audit_body_from_event(ev, &body);
    if (r == 0 && json_object_array_add(arr, body) < 0)
        r = PA_E_NOMEM;
    else if (r == 0)
        body = NULL;
    if (r == 0)
        s = json_object_to_json_string_ext(arr, AUDIT_JSON_FLAGS);
    if (r == 0 && !s)
        r = PA_E_NOMEM;
    if (r == 0 && strlen(s) > AUDIT_MAX_PENDING_TEXT)
        r = PA_E_JOB;
    if (r == 0)
        r = job_set_str(&j->audit_pending, s);
    json_object_put(body);
    json_object_put(arr);
    return r;
}

int audit_commit_pending(const char *state_dir, struct job *j)
{
    json_object *arr = NULL, **bodies = NULL;
    struct audit_batch b;
    size_t n;
    int r;

    if (!state_dir || !j)
        return PA_E_INTERNAL;
    if (!j->audit_pending)
        return 0;
    r = audit_pending_load(j, &arr);
    if (r < 0)
        return r;
    audit_crash_point("audit-before-append");
    n = json_object_array_length(arr);
    bodies = calloc(n ? n : 1, sizeof(*bodies));
    r = bodies ? 0 : PA_E_NOMEM;
    for (size_t i = 0; r == 0 && i < n; i++)
        bodies[i] = json_object_array_get_idx(arr, i);
    memset(&b, 0, sizeof(b));
    b.bodies = bodies;
    b.n = n;
    b.after_seq = j->audit_seq;
    b.find = true;
    if (r == 0 && n > 0)
        r = audit_commit_bodies(state_dir, &b);
    audit_crash_point("audit-after-append");
    if (r == 0 && n > 0) {
        j->audit_seq = b.last.seq;
        memcpy(j->audit_sha256, b.last.sha, sizeof(j->audit_sha256));
    }
    if (r == 0)
        r = job_set_str(&j->audit_pending, NULL);
    if (r == 0)
        r = job_save(state_dir, j);
    free(bodies);
    json_object_put(arr);
    return r;
}
