/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit.c - the hash-chained audit log (audit.h).
 *
 * STATE_DIR/audit.log holds one JSON object per line. Line N carries "seq": N and "prev": the
 * SHA-256 (hex) of the exact bytes of line N-1 without its newline (64 zeros for line 1), so
 * changing, inserting or deleting a line breaks the chain at or right after it. Removing lines
 * from the end (or the whole file) cannot be seen in the file itself: every event also goes to
 * syslog (LOG_AUTHPRIV), the copy to compare against.
 *
 * Appending: open with O_APPEND, flock LOCK_EX (blocking: appenders queue), read only the last
 * line (one pread of at most AUDIT_MAX_LINE + 2 bytes from the end), write the new line with one
 * write(2), fsync. A log whose last line is incomplete (power cut mid-write) or unreadable is
 * not appended to (PA_E_JOB): audit_verify names the line; the officer moves the file aside,
 * which starts a new chain. audit_verify takes LOCK_SH so it never sees a half-written line.
 *
 * Field values are clipped to AUDIT_MAX_FIELD bytes (at a UTF-8 boundary); json-c escapes
 * control characters, so a line never contains a raw newline.
 */
#include "audit.h"

#include "log.h"
#include "pa_err.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#define AUDIT_FILE      "audit.log"
#define AUDIT_MAX_LINE  (64 * 1024) /* bytes, without the newline */
#define AUDIT_MAX_FIELD 512         /* bytes per string value */
#define AUDIT_MAX_DEPTH 4
#define AUDIT_HEX_LEN   64
#define AUDIT_ZERO_PREV "0000000000000000000000000000000000000000000000000000000000000000"
#define AUDIT_OPEN_TRY  5 /* attempts when the file is renamed away under us */

/* Whether audit_append also sends to syslog (unit tests that include this file turn it off). */
static bool audit_syslog_enabled = true;

enum audit_type {
    AT_STR,  /* string of at most AUDIT_MAX_FIELD bytes */
    AT_INT,  /* integer >= 0 */
    AT_TIME, /* "YYYY-MM-DDTHH:MM:SSZ" */
    AT_HASH, /* 64 lowercase hex digits */
};

struct audit_member {
    const char *name;
    enum audit_type type;
    bool required;
};

/* Every member a line may have, in the order audit_append writes them. */
static const struct audit_member audit_members[] = {
    {"seq", AT_INT, true},          {"at", AT_TIME, true},       {"user", AT_STR, true},
    {"uid", AT_INT, true},          {"pid", AT_INT, true},       {"event", AT_STR, true},
    {"outcome", AT_STR, true},      {"job", AT_STR, false},      {"token_serial", AT_STR, false},
    {"token_label", AT_STR, false}, {"key_id", AT_STR, false},   {"custody", AT_STR, false},
    {"csr_sha256", AT_STR, false},  {"order_id", AT_INT, false}, {"certificate_id", AT_INT, false},
    {"cert_serial", AT_STR, false}, {"detail", AT_STR, false},   {"prev", AT_HASH, true},
};

#define AUDIT_NMEMBERS (sizeof(audit_members) / sizeof(audit_members[0]))

__attribute__((format(printf, 3, 4))) static void audit_msg(char *errbuf, size_t errlen,
                                                            const char *fmt, ...)
{
    va_list ap;

    if (!errbuf || !errlen)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

/* SHA-256 of len bytes as 64 lowercase hex digits + NUL in hex. */
static int audit_sha256_hex(const void *data, size_t len, char hex[AUDIT_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return PA_E_INTERNAL;
    for (unsigned int i = 0; i < mdlen; i++)
        (void)snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static bool audit_is_time(const char *s)
{
    static const char pattern[] = "dddd-dd-ddTdd:dd:ddZ";

    if (strlen(s) != sizeof(pattern) - 1)
        return false;
    for (size_t i = 0; pattern[i]; i++) {
        if (pattern[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pattern[i])
            return false;
    }
    return true;
}

static bool audit_is_hash(const char *s)
{
    return strlen(s) == AUDIT_HEX_LEN && strspn(s, "0123456789abcdef") == AUDIT_HEX_LEN;
}

/* Check one member's value against its rule. */
static int audit_check_member(const struct audit_member *m, json_object *v, char *errbuf,
                              size_t errlen)
{
    const char *s;
    int64_t x;
    int len;

    if (m->type == AT_INT) {
        if (!json_object_is_type(v, json_type_int)) {
            audit_msg(errbuf, errlen, "\"%s\" is not an integer", m->name);
            return PA_E_JOB;
        }
        errno = 0;
        x = json_object_get_int64(v);
        if (errno != 0 || x < 0 || x == INT64_MAX) {
            audit_msg(errbuf, errlen, "\"%s\" is out of range", m->name);
            return PA_E_JOB;
        }
        return 0;
    }
    if (!json_object_is_type(v, json_type_string)) {
        audit_msg(errbuf, errlen, "\"%s\" is not a string", m->name);
        return PA_E_JOB;
    }
    s = json_object_get_string(v);
    len = json_object_get_string_len(v);
    if (len < 0 || strlen(s) != (size_t)len) {
        audit_msg(errbuf, errlen, "\"%s\" contains a NUL character", m->name);
        return PA_E_JOB;
    }
    if (m->type == AT_STR && len > AUDIT_MAX_FIELD) {
        audit_msg(errbuf, errlen, "\"%s\" is longer than %d bytes", m->name, AUDIT_MAX_FIELD);
        return PA_E_JOB;
    }
    if (m->type == AT_TIME && !audit_is_time(s)) {
        audit_msg(errbuf, errlen, "\"%s\" is not a UTC time", m->name);
        return PA_E_JOB;
    }
    if (m->type == AT_HASH && !audit_is_hash(s)) {
        audit_msg(errbuf, errlen, "\"%s\" is not a SHA-256 in hex", m->name);
        return PA_E_JOB;
    }
    return 0;
}

/*
 * Parse and check one line on its own (everything but the chain). On success *ret_seq is its
 * seq and ret_prev its prev.
 */
static int audit_parse_line(const char *line, size_t len, long *ret_seq,
                            char ret_prev[AUDIT_HEX_LEN + 1], char *errbuf, size_t errlen)
{
    struct json_tokener *tok = NULL;
    json_object *root = NULL, *v;
    enum json_tokener_error jerr;
    int64_t seq;
    int r = PA_E_JOB;

    if (!line) {
        audit_msg(errbuf, errlen, "no line");
        goto out;
    }
    if (len > AUDIT_MAX_LINE) {
        audit_msg(errbuf, errlen, "longer than %d bytes", AUDIT_MAX_LINE);
        goto out;
    }
    if (len == 0) {
        audit_msg(errbuf, errlen, "empty line");
        goto out;
    }
    if (line[0] != '{' || line[len - 1] != '}') {
        audit_msg(errbuf, errlen, "bad JSON: not one object from the first byte to the last");
        goto out;
    }
    if (memchr(line, '\0', len) || memchr(line, '\n', len)) {
        audit_msg(errbuf, errlen, "bad JSON: contains a NUL or newline byte");
        goto out;
    }
    tok = json_tokener_new_ex(AUDIT_MAX_DEPTH);
    if (!tok) {
        r = PA_E_NOMEM;
        goto out;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    root = json_tokener_parse_ex(tok, line, (int)len);
    jerr = json_tokener_get_error(tok);
    if (jerr != json_tokener_success) {
        audit_msg(errbuf, errlen, "bad JSON: %s",
                  jerr == json_tokener_continue ? "unexpected end of line"
                                                : json_tokener_error_desc(jerr));
        goto out;
    }
    if (json_tokener_get_parse_end(tok) != len) {
        audit_msg(errbuf, errlen, "bad JSON: data after the object");
        goto out;
    }
    if (!json_object_is_type(root, json_type_object)) {
        audit_msg(errbuf, errlen, "bad JSON: not an object");
        goto out;
    }
    json_object_object_foreach(root, key, val)
    {
        size_t i;

        for (i = 0; i < AUDIT_NMEMBERS; i++)
            if (strcmp(key, audit_members[i].name) == 0)
                break;
        if (i == AUDIT_NMEMBERS) {
            audit_msg(errbuf, errlen, "unknown member");
            goto out;
        }
        if (audit_check_member(&audit_members[i], val, errbuf, errlen) < 0)
            goto out;
    }
    for (size_t i = 0; i < AUDIT_NMEMBERS; i++) {
        if (audit_members[i].required &&
            !json_object_object_get_ex(root, audit_members[i].name, NULL)) {
            audit_msg(errbuf, errlen, "missing field \"%s\"", audit_members[i].name);
            goto out;
        }
    }
    (void)json_object_object_get_ex(root, "seq", &v);
    seq = json_object_get_int64(v);
    if (seq < 1 || seq > (int64_t)(LONG_MAX - 1)) {
        audit_msg(errbuf, errlen, "\"seq\" is out of range");
        goto out;
    }
    (void)json_object_object_get_ex(root, "prev", &v);
    memcpy(ret_prev, json_object_get_string(v), AUDIT_HEX_LEN + 1);
    *ret_seq = (long)seq;
    r = 0;
out:
    json_object_put(root);
    if (tok)
        json_tokener_free(tok);
    return r;
}

int audit_check_line(const char *line, size_t len, long expect_seq, const char *expect_prev,
                     char *errbuf, size_t errlen)
{
    char prev[AUDIT_HEX_LEN + 1];
    long seq = 0;
    int r;

    r = audit_parse_line(line, len, &seq, prev, errbuf, errlen);
    if (r < 0)
        return r;
    if (seq != expect_seq) {
        audit_msg(errbuf, errlen, "seq %ld, expected %ld", seq, expect_seq);
        return PA_E_JOB;
    }
    if (!expect_prev || strcmp(prev, expect_prev) != 0) {
        audit_msg(errbuf, errlen, "prev mismatch: not the SHA-256 of the line before%s",
                  expect_seq == 1 ? " (64 zeros for line 1)" : "");
        return PA_E_JOB;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Appending                                                                                */

/* A string member, clipped to AUDIT_MAX_FIELD bytes at a UTF-8 boundary; NULL value: no member. */
static int audit_add_str(json_object *o, const char *key, const char *value)
{
    json_object *v;
    size_t len;

    if (!value)
        return 0;
    len = strlen(value);
    if (len > AUDIT_MAX_FIELD) {
        len = AUDIT_MAX_FIELD;
        while (len > 0 && ((unsigned char)value[len] & 0xc0) == 0x80)
            len--;
    }
    v = json_object_new_string_len(value, (int)len);
    if (!v || json_object_object_add(o, key, v) < 0) {
        json_object_put(v);
        return PA_E_NOMEM;
    }
    return 0;
}

static int audit_add_int(json_object *o, const char *key, int64_t value)
{
    json_object *v = json_object_new_int64(value);

    if (!v || json_object_object_add(o, key, v) < 0) {
        json_object_put(v);
        return PA_E_NOMEM;
    }
    return 0;
}

/* The current user's name (or "unknown") into buf. */
static void audit_user(char *buf, size_t len)
{
    struct passwd pw, *res = NULL;
    char tmp[4096];

    if (getpwuid_r(getuid(), &pw, tmp, sizeof(tmp), &res) == 0 && res && res->pw_name)
        (void)snprintf(buf, len, "%s", res->pw_name);
    else
        (void)snprintf(buf, len, "unknown");
}

/* The new line, newline included, malloc'd; caller frees. */
static int audit_format(const struct audit_event *ev, long seq, const char *prev, char **ret)
{
    json_object *o = NULL;
    char at[32], user[256], *line;
    const char *s;
    size_t len;
    struct tm tm;
    time_t now = time(NULL);
    int r = PA_E_NOMEM;

    if (!gmtime_r(&now, &tm) || strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return PA_E_INTERNAL;
    audit_user(user, sizeof(user));
    o = json_object_new_object();
    if (!o)
        goto out;
    if (audit_add_int(o, "seq", seq) < 0 || audit_add_str(o, "at", at) < 0 ||
        audit_add_str(o, "user", user) < 0 || audit_add_int(o, "uid", (int64_t)getuid()) < 0 ||
        audit_add_int(o, "pid", (int64_t)getpid()) < 0 ||
        audit_add_str(o, "event", ev->event) < 0 || audit_add_str(o, "outcome", ev->outcome) < 0 ||
        audit_add_str(o, "job", ev->job_id) < 0 ||
        audit_add_str(o, "token_serial", ev->token_serial) < 0 ||
        audit_add_str(o, "token_label", ev->token_label) < 0 ||
        audit_add_str(o, "key_id", ev->key_id) < 0 ||
        audit_add_str(o, "custody", ev->custody) < 0 ||
        audit_add_str(o, "csr_sha256", ev->csr_sha256) < 0)
        goto out;
    if (ev->order_id > 0 && audit_add_int(o, "order_id", ev->order_id) < 0)
        goto out;
    if (ev->certificate_id > 0 && audit_add_int(o, "certificate_id", ev->certificate_id) < 0)
        goto out;
    if (audit_add_str(o, "cert_serial", ev->cert_serial) < 0 ||
        audit_add_str(o, "detail", ev->detail) < 0 || audit_add_str(o, "prev", prev) < 0)
        goto out;
    s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!s)
        goto out;
    len = strlen(s);
    if (len > AUDIT_MAX_LINE || strchr(s, '\n')) {
        r = PA_E_INTERNAL;
        goto out;
    }
    line = malloc(len + 2);
    if (!line)
        goto out;
    memcpy(line, s, len);
    line[len] = '\n';
    line[len + 1] = '\0';
    *ret = line;
    r = 0;
out:
    json_object_put(o);
    return r;
}

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
    char *buf = NULL, prev[AUDIT_HEX_LEN + 1], err[160];
    size_t want, start;
    long seq = 0;
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
    r = audit_parse_line(buf + start, want - 1 - start, &seq, prev, err, sizeof(err));
    if (r < 0) {
        log_debug("audit: the last line is damaged: %s", err);
        r = r == PA_E_NOMEM ? r : PA_E_JOB;
        goto out;
    }
    r = audit_sha256_hex(buf + start, want - 1 - start, ret_prev);
    if (r < 0)
        goto out;
    *ret_seq = seq + 1;
out:
    free(buf);
    return r;
}

static int audit_write_all(int fd, const char *p, size_t len)
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

/* Copy at most 64 bytes of s into buf, control characters as '?'. */
static const char *audit_sys_str(const char *s, char *buf, size_t len)
{
    size_t i;

    if (len > 65)
        len = 65;
    for (i = 0; s[i] && i + 1 < len; i++)
        buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    buf[i] = '\0';
    return buf;
}

/* The compact syslog message for an event into buf; seq 0: not in the file. */
static void audit_syslog_msg(char *buf, size_t len, const struct audit_event *ev, long seq)
{
    char a[65], b[65], c[65], d[65];
    int n;

    n = snprintf(buf, len, "audit: event=%s outcome=%s",
                 audit_sys_str(ev->event ? ev->event : "?", a, sizeof(a)),
                 audit_sys_str(ev->outcome ? ev->outcome : "?", b, sizeof(b)));
    if (n >= 0 && (size_t)n < len && ev->job_id)
        n += snprintf(buf + n, len - (size_t)n, " job=%s", audit_sys_str(ev->job_id, c, sizeof(c)));
    if (n >= 0 && (size_t)n < len && ev->token_serial)
        n += snprintf(buf + n, len - (size_t)n, " token=%s",
                      audit_sys_str(ev->token_serial, d, sizeof(d)));
    if (n >= 0 && (size_t)n < len && ev->order_id > 0)
        n += snprintf(buf + n, len - (size_t)n, " order=%ld", ev->order_id);
    if (n >= 0 && (size_t)n < len) {
        if (seq > 0)
            (void)snprintf(buf + n, len - (size_t)n, " seq=%ld", seq);
        else
            (void)snprintf(buf + n, len - (size_t)n, " (not in audit.log)");
    }
}

static void audit_syslog(const struct audit_event *ev, long seq)
{
    static bool opened;
    char msg[512];

    if (!audit_syslog_enabled)
        return;
    if (!opened) {
        openlog("pkio-agent", LOG_PID, LOG_AUTHPRIV);
        opened = true;
    }
    audit_syslog_msg(msg, sizeof(msg), ev, seq);
    syslog(LOG_AUTHPRIV | LOG_INFO, "%s", msg);
}

/*
 * Append ev (see audit.h). PA_E_INTERNAL without event/outcome; PA_E_CONFIG when the log is not
 * a regular file owned by us or is group/world writable; PA_E_JOB when the last line is
 * incomplete or damaged; PA_E_IO on I/O errors (a partly written line is cut off again). The
 * event goes to syslog in every case but the first; details go to log_debug.
 */
int audit_append(const char *state_dir, const struct audit_event *ev)
{
    char *path = NULL, *line = NULL, prev[AUDIT_HEX_LEN + 1];
    struct stat st;
    long seq = 0, written_seq = 0;
    int fd = -1, r;

    if (!state_dir || !ev || !ev->event || !ev->event[0] || !ev->outcome || !ev->outcome[0])
        return PA_E_INTERNAL;
    r = PA_E_NOMEM;
    if (asprintf(&path, "%s/%s", state_dir, AUDIT_FILE) < 0) {
        path = NULL;
        goto out;
    }
    r = audit_open_locked(path, &fd, &st);
    if (r < 0)
        goto out;
    r = audit_tail(fd, st.st_size, &seq, prev);
    if (r < 0)
        goto out;
    r = audit_format(ev, seq, prev, &line);
    if (r < 0)
        goto out;
    r = audit_write_all(fd, line, strlen(line));
    if (r < 0) {
        log_debug("audit: cannot write %s: %s", path, strerror(errno));
        if (ftruncate(fd, st.st_size) < 0)
            log_debug("audit: cannot cut the partial line off %s: %s", path, strerror(errno));
        goto out;
    }
    if (fsync(fd) < 0) {
        log_debug("audit: cannot fsync %s: %s", path, strerror(errno));
        r = PA_E_IO;
        goto out;
    }
    if (st.st_size == 0 && audit_fsync_dir(state_dir) < 0) {
        log_debug("audit: cannot fsync %s: %s", state_dir, strerror(errno));
        r = PA_E_IO;
        goto out;
    }
    written_seq = seq;
    r = 0;
out:
    if (fd >= 0)
        close(fd); /* releases the lock */
    audit_syslog(ev, written_seq);
    free(line);
    free(path);
    return r;
}

/* ---------------------------------------------------------------------------------------- */
/* Verifying                                                                                */

/*
 * Walk the whole log under a shared lock, line by line (at most AUDIT_MAX_LINE + 1 bytes in
 * memory). A missing or empty log is an intact chain of 0 lines.
 */
int audit_verify(const char *state_dir, long *ret_lines, long *ret_bad_line, char *errbuf,
                 size_t errlen)
{
    char *path = NULL, *buf = NULL, prev[AUDIT_HEX_LEN + 1] = AUDIT_ZERO_PREV, err[192];
    const size_t cap = AUDIT_MAX_LINE + 1;
    struct stat st;
    size_t have = 0;
    long lineno = 0, bad = 0;
    int fd = -1, r = PA_E_NOMEM;

    if (!state_dir)
        return PA_E_INTERNAL;
    if (asprintf(&path, "%s/%s", state_dir, AUDIT_FILE) < 0) {
        path = NULL;
        goto out;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT) {
            r = 0;
            goto out;
        }
        audit_msg(errbuf, errlen, "%s: %s", path, strerror(errno));
        r = PA_E_IO;
        goto out;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        audit_msg(errbuf, errlen, "%s: not a regular file", path);
        r = PA_E_IO;
        goto out;
    }
    while (flock(fd, LOCK_SH) < 0) {
        if (errno != EINTR) {
            audit_msg(errbuf, errlen, "%s: cannot lock: %s", path, strerror(errno));
            r = PA_E_IO;
            goto out;
        }
    }
    buf = malloc(cap);
    if (!buf)
        goto out;
    for (;;) {
        size_t start = 0;
        char *nl;
        ssize_t n = read(fd, buf + have, cap - have);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            audit_msg(errbuf, errlen, "%s: %s", path, strerror(errno));
            r = PA_E_IO;
            goto out;
        }
        if (n == 0)
            break;
        have += (size_t)n;
        while ((nl = memchr(buf + start, '\n', have - start)) != NULL) {
            size_t len = (size_t)(nl - (buf + start));

            lineno++;
            err[0] = '\0';
            r = audit_check_line(buf + start, len, lineno, prev, err, sizeof(err));
            if (r == PA_E_NOMEM)
                goto out;
            if (r < 0) {
                bad = lineno;
                goto out;
            }
            r = audit_sha256_hex(buf + start, len, prev);
            if (r < 0)
                goto out;
            start += len + 1;
        }
        memmove(buf, buf + start, have - start);
        have -= start;
        if (have == cap) {
            bad = lineno + 1;
            (void)snprintf(err, sizeof(err), "longer than %d bytes", AUDIT_MAX_LINE);
            r = PA_E_JOB;
            goto out;
        }
    }
    if (have > 0) {
        bad = lineno + 1;
        (void)snprintf(err, sizeof(err),
                       "incomplete: no newline at the end of the file (cut off mid-write?)");
        r = PA_E_JOB;
        goto out;
    }
    r = 0;
out:
    if (r == 0 && ret_lines)
        *ret_lines = lineno;
    if (bad > 0) {
        if (ret_bad_line)
            *ret_bad_line = bad;
        audit_msg(errbuf, errlen, "%s: line %ld: %s", path ? path : AUDIT_FILE, bad, err);
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    free(path);
    return r;
}
