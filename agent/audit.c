/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit.c - the hash-chained audit log (audit.h).
 *
 * The chain. STATE_DIR/audit.log holds one JSON object per line. Line N carries "seq": N and
 * "prev": the SHA-256 (hex) of the exact bytes of line N-1 without its newline (64 zeros for
 * line 1), so changing, inserting or deleting a line breaks the chain at or right after it.
 *
 * The anchors. Whoever can write the file can cut its tail, delete it, or rewrite every line and
 * recompute every hash, so the chain is anchored outside the file, twice:
 *   - every line's (seq, SHA-256) goes to syslog (LOG_AUTHPRIV; journald under systemd) as
 *     "audit anchor seq=N sha256=H prev=P chain=C log=L job=J event=E outcome=O". chain is the
 *     first 16 hex digits of the SHA-256 of the chain's line 1 (a log moved aside starts a new
 *     chain), log those of the SHA-256 of the log's absolute path (several state directories on
 *     one machine). The fields up to job are fixed in order and form; the rest is for people.
 *     prev anchors line N-1 once more, so a kill between writing a line and sending its anchor
 *     leaves at most the last line unanchored until the next one. The journal is append-only to
 *     the daemon's user: an attacker can add anchors, not remove them, so every anchor must be
 *     accounted for by the file, and two different anchors for one line are reported too.
 *     PKIO_AUDIT_SYSLOG_SOCKET (a test hook) sends them to that unix datagram socket instead.
 *   - every job record keeps the (seq, SHA-256) of its last line (audit_commit_pending), so
 *     `audit verify` alone sees a cut-off tail, a deleted log, or a rewritten line that a job
 *     record points to.
 *
 * Appending: open with O_APPEND, flock LOCK_EX (blocking: appenders queue), read only the last
 * line (one pread of at most AUDIT_MAX_LINE + 2 bytes from the end), write the new line with one
 * write(2), fsync; then the anchor. A log whose last line is incomplete (power cut mid-write) or
 * unreadable is not appended to (PA_E_JOB): audit_verify names the line; the officer moves the
 * file aside, which starts a new chain. Readers take LOCK_SH so they never see a half-written
 * line.
 *
 * Job events (audit_job_intent, audit_commit_pending): the event is stored in the job record
 * (audit_pending: a JSON array of line bodies, every member but seq and prev) in the same atomic
 * write as the state it records, then appended. A body already in the log is recognised: the
 * lines after the job's last recorded line are read backwards from the end, down to the first
 * line older than the intent ("at" is the append time, which only grows), and each is compared
 * byte for byte with the line the body makes with that line's seq, at and prev. The earliest
 * match wins, so two identical pending events map to two lines, in order. (A clock set back
 * between the intent and the append can make an event appear twice; it never loses one.)
 *
 * Who acted ("user", "user_from"): SUDO_USER when root runs us under sudo; else the login name
 * (getlogin_r: the audit login uid, which sudo and su keep); else PKIO_ACTOR, which the daemon
 * may set for its children (they have no login session); else the uid's passwd name.
 *
 * Field values are clipped to AUDIT_MAX_FIELD bytes (at a UTF-8 boundary); json-c escapes
 * control characters, so a line never contains a raw newline.
 */
#include "audit.h"

#include "i18n.h"
#include "job.h"
#include "log.h"
#include "pa_err.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#define AUDIT_FILE             "audit.log"
#define AUDIT_MAX_LINE         (64 * 1024) /* bytes, without the newline */
#define AUDIT_MAX_FIELD        512         /* bytes per string value */
#define AUDIT_MAX_DEPTH        4
#define AUDIT_HEX_LEN          64
#define AUDIT_ID_LEN           16
#define AUDIT_ZERO_PREV        "0000000000000000000000000000000000000000000000000000000000000000"
#define AUDIT_OPEN_TRY         5 /* attempts when the file is renamed away under us */
#define AUDIT_MAX_PENDING_TEXT (256 * 1024)
#define AUDIT_MAX_NAME         64
#define AUDIT_MAX_JOURNAL_LINE 8192
#define AUDIT_RSCAN_BUF        (2 * (AUDIT_MAX_LINE + 1))
#define AUDIT_MSG_LEN          640
#define AUDIT_ANCHOR_TAG       "audit anchor "
#define AUDIT_SOCKET_ENV       "PKIO_AUDIT_SYSLOG_SOCKET"
#define AUDIT_ACTOR_ENV        "PKIO_ACTOR"
#define AUDIT_JSON_FLAGS       (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define AUDIT_HEX_DIGITS       "0123456789abcdef"

extern char **environ;

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

/* Every member a line may have, in the order lines carry them: seq first, prev last. */
static const struct audit_member audit_members[] = {
    {"seq", AT_INT, true},          {"at", AT_TIME, true},
    {"user", AT_STR, true},         {"user_from", AT_STR, false},
    {"uid", AT_INT, true},          {"pid", AT_INT, true},
    {"event", AT_STR, true},        {"outcome", AT_STR, true},
    {"job", AT_STR, false},         {"token_serial", AT_STR, false},
    {"token_label", AT_STR, false}, {"key_id", AT_STR, false},
    {"custody", AT_STR, false},     {"csr_sha256", AT_STR, false},
    {"order_id", AT_INT, false},    {"certificate_id", AT_INT, false},
    {"cert_serial", AT_STR, false}, {"detail", AT_STR, false},
    {"prev", AT_HASH, true},
};

#define AUDIT_NMEMBERS (sizeof(audit_members) / sizeof(audit_members[0]))

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

/* See audit.h: English unless audit_translate_messages(true). */
static bool audit_translated;

void audit_translate_messages(bool on)
{
    audit_translated = on;
}

/* A message as verification shows it (msgid marked N_()); format_arg keeps printf checks. */
__attribute__((format_arg(1))) static const char *audit_tr(const char *msgid)
{
    return audit_translated ? _(msgid) : msgid;
}

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

/* Test hook: PKIO_TEST_CRASH_AT=<name> kills the process here (as enroll_crash_point does). */
static void audit_crash_point(const char *name)
{
    const char *at = getenv("PKIO_TEST_CRASH_AT");

    if (at && strcmp(at, name) == 0)
        (void)raise(SIGKILL);
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
    return strlen(s) == AUDIT_HEX_LEN && strspn(s, AUDIT_HEX_DIGITS) == AUDIT_HEX_LEN;
}

/* ---------------------------------------------------------------------------------------- */
/* One line                                                                                 */

static int audit_check_int(const struct audit_member *m, json_object *v, char *errbuf,
                           size_t errlen)
{
    int64_t x;

    if (!json_object_is_type(v, json_type_int)) {
        audit_msg(errbuf, errlen, audit_tr(N_("\"%s\" is not an integer")), m->name);
        return PA_E_JOB;
    }
    errno = 0;
    x = json_object_get_int64(v);
    if (errno != 0 || x < 0 || x == INT64_MAX) {
        audit_msg(errbuf, errlen, audit_tr(N_("\"%s\" is out of range")), m->name);
        return PA_E_JOB;
    }
    return 0;
}

static int audit_check_str(const struct audit_member *m, json_object *v, char *errbuf,
                           size_t errlen)
{
    const char *s;
    int len;

    if (!json_object_is_type(v, json_type_string)) {
        audit_msg(errbuf, errlen, audit_tr(N_("\"%s\" is not a string")), m->name);
        return PA_E_JOB;
    }
    s = json_object_get_string(v);
    len = json_object_get_string_len(v);
    if (len < 0 || strlen(s) != (size_t)len) {
        audit_msg(errbuf, errlen, audit_tr(N_("\"%s\" contains a NUL character")), m->name);
        return PA_E_JOB;
    }
    if (m->type == AT_STR && len > AUDIT_MAX_FIELD) {
        audit_msg(errbuf, errlen, audit_tr(N_("\"%s\" is longer than %d bytes")), m->name,
                  AUDIT_MAX_FIELD);
        return PA_E_JOB;
    }
    if (m->type == AT_TIME && !audit_is_time(s)) {
        audit_msg(errbuf, errlen, audit_tr(N_("\"%s\" is not a UTC time")), m->name);
        return PA_E_JOB;
    }
    if (m->type == AT_HASH && !audit_is_hash(s)) {
        audit_msg(errbuf, errlen, audit_tr(N_("\"%s\" is not a SHA-256 in hex")), m->name);
        return PA_E_JOB;
    }
    return 0;
}

static const struct audit_member *audit_member_find(const char *name)
{
    for (size_t i = 0; i < AUDIT_NMEMBERS; i++)
        if (strcmp(name, audit_members[i].name) == 0)
            return &audit_members[i];
    return NULL;
}

/* The bytes of a line before any JSON: there, not too long, one object, no NUL or newline. */
static int audit_check_shape(const char *line, size_t len, char *errbuf, size_t errlen)
{
    if (!line) {
        audit_msg(errbuf, errlen, audit_tr(N_("no line")));
        return PA_E_JOB;
    }
    if (len > AUDIT_MAX_LINE) {
        audit_msg(errbuf, errlen, audit_tr(N_("longer than %d bytes")), AUDIT_MAX_LINE);
        return PA_E_JOB;
    }
    if (len == 0) {
        audit_msg(errbuf, errlen, audit_tr(N_("empty line")));
        return PA_E_JOB;
    }
    if (line[0] != '{' || line[len - 1] != '}') {
        audit_msg(errbuf, errlen,
                  audit_tr(N_("bad JSON: not one object from the first byte to the last")));
        return PA_E_JOB;
    }
    if (memchr(line, '\0', len) || memchr(line, '\n', len)) {
        audit_msg(errbuf, errlen, audit_tr(N_("bad JSON: contains a NUL or newline byte")));
        return PA_E_JOB;
    }
    return 0;
}

/* Parse len bytes as one strict JSON value, at most AUDIT_MAX_DEPTH deep, nothing after it. */
static int audit_json_parse(const char *text, size_t len, json_object **ret, char *errbuf,
                            size_t errlen)
{
    struct json_tokener *tok = json_tokener_new_ex(AUDIT_MAX_DEPTH);
    json_object *root = NULL;
    enum json_tokener_error jerr;
    int r = PA_E_JOB;

    if (!tok)
        return PA_E_NOMEM;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    root = json_tokener_parse_ex(tok, text, (int)len);
    jerr = json_tokener_get_error(tok);
    if (jerr != json_tokener_success)
        audit_msg(errbuf, errlen, audit_tr(N_("bad JSON: %s")),
                  jerr == json_tokener_continue ? audit_tr(N_("unexpected end of line"))
                                                : json_tokener_error_desc(jerr));
    else if (json_tokener_get_parse_end(tok) != len)
        audit_msg(errbuf, errlen, audit_tr(N_("bad JSON: data after the object")));
    else
        r = 0;
    if (r == 0) {
        *ret = root;
        root = NULL;
    }
    json_object_put(root);
    json_tokener_free(tok);
    return r;
}

/* Every member known and well-formed, every required one there. */
static int audit_check_members(json_object *root, char *errbuf, size_t errlen)
{
    if (!json_object_is_type(root, json_type_object)) {
        audit_msg(errbuf, errlen, audit_tr(N_("bad JSON: not an object")));
        return PA_E_JOB;
    }
    json_object_object_foreach(root, key, val)
    {
        const struct audit_member *m = audit_member_find(key);

        if (!m) {
            audit_msg(errbuf, errlen, audit_tr(N_("unknown member")));
            return PA_E_JOB;
        }
        if ((m->type == AT_INT ? audit_check_int(m, val, errbuf, errlen)
                               : audit_check_str(m, val, errbuf, errlen)) < 0)
            return PA_E_JOB;
    }
    for (size_t i = 0; i < AUDIT_NMEMBERS; i++) {
        if (audit_members[i].required &&
            !json_object_object_get_ex(root, audit_members[i].name, NULL)) {
            audit_msg(errbuf, errlen, audit_tr(N_("missing field \"%s\"")), audit_members[i].name);
            return PA_E_JOB;
        }
    }
    return 0;
}

/* Parse and check one line on its own (everything but the chain); *p: its seq, prev and at. */
static int audit_parse_line(const char *line, size_t len, struct audit_parsed *p, char *errbuf,
                            size_t errlen)
{
    json_object *root = NULL, *v;
    int64_t seq;
    int r = audit_check_shape(line, len, errbuf, errlen);

    if (r == 0)
        r = audit_json_parse(line, len, &root, errbuf, errlen);
    if (r == 0)
        r = audit_check_members(root, errbuf, errlen);
    if (r < 0)
        goto out;
    (void)json_object_object_get_ex(root, "seq", &v);
    seq = json_object_get_int64(v);
    if (seq < 1 || seq > (int64_t)(LONG_MAX - 1)) {
        audit_msg(errbuf, errlen, audit_tr(N_("\"seq\" is out of range")));
        r = PA_E_JOB;
        goto out;
    }
    p->seq = (long)seq;
    (void)json_object_object_get_ex(root, "prev", &v);
    memcpy(p->prev, json_object_get_string(v), AUDIT_HEX_LEN + 1);
    (void)json_object_object_get_ex(root, "at", &v);
    (void)snprintf(p->at, sizeof(p->at), "%s", json_object_get_string(v));
out:
    json_object_put(root);
    return r;
}

int audit_check_line(const char *line, size_t len, long expect_seq, const char *expect_prev,
                     char *errbuf, size_t errlen)
{
    struct audit_parsed p;
    int r;

    r = audit_parse_line(line, len, &p, errbuf, errlen);
    if (r < 0)
        return r;
    if (p.seq != expect_seq) {
        audit_msg(errbuf, errlen, audit_tr(N_("seq %ld, expected %ld")), p.seq, expect_seq);
        return PA_E_JOB;
    }
    if (!expect_prev || strcmp(p.prev, expect_prev) != 0) {
        audit_msg(errbuf, errlen, "%s",
                  expect_seq == 1
                      ? audit_tr(N_("prev mismatch: not the SHA-256 of the line before (64 zeros "
                                    "for line 1)"))
                      : audit_tr(N_("prev mismatch: not the SHA-256 of the line before")));
        return PA_E_JOB;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Building a line: the body (who, what, when) and the line it makes                        */

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

/* A string member of body, or NULL. */
static const char *audit_body_str(json_object *body, const char *key)
{
    json_object *v;

    if (!json_object_object_get_ex(body, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static int audit_now(char at[32])
{
    struct tm tm;
    time_t now = time(NULL);

    if (!gmtime_r(&now, &tm) || strftime(at, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return PA_E_INTERNAL;
    return 0;
}

/* A user name we write: 1 to AUDIT_MAX_NAME bytes, no space or control character. */
static bool audit_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > AUDIT_MAX_NAME)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* Who acted (see the top of this file): the name into buf, how it was found into *from. */
static void audit_actor(char *buf, size_t len, const char **from)
{
    struct passwd pw, *res = NULL;
    char tmp[4096];
    const char *sudo = getenv("SUDO_USER"), *actor = getenv(AUDIT_ACTOR_ENV);

    if (getuid() == 0 && audit_name_ok(sudo)) {
        (void)snprintf(buf, len, "%s", sudo);
        *from = "sudo";
    } else if (getlogin_r(tmp, sizeof(tmp)) == 0 && audit_name_ok(tmp)) {
        (void)snprintf(buf, len, "%s", tmp);
        *from = "login";
    } else if (audit_name_ok(actor)) {
        (void)snprintf(buf, len, "%s", actor);
        *from = AUDIT_ACTOR_ENV;
    } else {
        *from = "uid";
        if (getpwuid_r(getuid(), &pw, tmp, sizeof(tmp), &res) == 0 && res && res->pw_name)
            (void)snprintf(buf, len, "%s", res->pw_name);
        else
            (void)snprintf(buf, len, "unknown");
    }
}

/* The body of ev's line: every member but seq and prev, "at" = now, the actor, uid and pid. */
static int audit_body_from_event(const struct audit_event *ev, json_object **ret)
{
    char at[32], user[AUDIT_MAX_NAME + 1];
    const char *from = "uid";
    struct {
        const char *key, *value;
    } strs[] = {
        {"at", at},
        {"user", user},
        {"user_from", NULL},
        {"event", ev->event},
        {"outcome", ev->outcome},
        {"job", ev->job_id},
        {"token_serial", ev->token_serial},
        {"token_label", ev->token_label},
        {"key_id", ev->key_id},
        {"custody", ev->custody},
        {"csr_sha256", ev->csr_sha256},
        {"cert_serial", ev->cert_serial},
        {"detail", ev->detail},
    };
    const struct {
        const char *key;
        int64_t value;
        bool always;
    } ints[] = {
        {"uid", (int64_t)getuid(), true},
        {"pid", (int64_t)getpid(), true},
        {"order_id", ev->order_id, false},
        {"certificate_id", ev->certificate_id, false},
    };
    json_object *o = NULL;
    int r = audit_now(at);

    if (r < 0)
        return r;
    audit_actor(user, sizeof(user), &from);
    strs[2].value = from;
    o = json_object_new_object();
    r = o ? 0 : PA_E_NOMEM;
    for (size_t i = 0; r == 0 && i < sizeof(strs) / sizeof(strs[0]); i++)
        r = audit_add_str(o, strs[i].key, strs[i].value);
    for (size_t i = 0; r == 0 && i < sizeof(ints) / sizeof(ints[0]); i++)
        if (ints[i].always || ints[i].value > 0)
            r = audit_add_int(o, ints[i].key, ints[i].value);
    if (r < 0) {
        json_object_put(o);
        return r;
    }
    *ret = o;
    return 0;
}

/* Copy member name of body (if there) into o. */
static int audit_copy_member(json_object *o, json_object *body, const char *name)
{
    json_object *v, *c;

    if (!json_object_object_get_ex(body, name, &v))
        return 0;
    c = json_object_get(v);
    if (json_object_object_add(o, name, c) < 0) {
        json_object_put(c);
        return PA_E_NOMEM;
    }
    return 0;
}

/*
 * The line body makes with seq, prev and at (NULL: the body's own "at"), members in the order
 * of audit_members, newline included; malloc'd, *ret_len its length with the newline.
 */
static int audit_line_from_body(json_object *body, long seq, const char *prev, const char *at,
                                char **ret, size_t *ret_len)
{
    json_object *o = json_object_new_object();
    const char *s = NULL;
    char *line;
    size_t len;
    int r = o ? audit_add_int(o, "seq", seq) : PA_E_NOMEM;

    for (size_t i = 1; r == 0 && i + 1 < AUDIT_NMEMBERS; i++) {
        const char *name = audit_members[i].name;

        if (at && strcmp(name, "at") == 0)
            r = audit_add_str(o, name, at);
        else
            r = audit_copy_member(o, body, name);
    }
    if (r == 0)
        r = audit_add_str(o, "prev", prev);
    if (r == 0)
        s = json_object_to_json_string_ext(o, AUDIT_JSON_FLAGS);
    if (r == 0 && !s)
        r = PA_E_NOMEM;
    if (r < 0)
        goto out;
    len = strlen(s);
    r = PA_E_JOB; /* a body with over-long values (only a damaged job record has one) */
    if (len > AUDIT_MAX_LINE || strchr(s, '\n'))
        goto out;
    r = PA_E_NOMEM;
    line = malloc(len + 2);
    if (!line)
        goto out;
    memcpy(line, s, len);
    line[len] = '\n';
    line[len + 1] = '\0';
    *ret = line;
    *ret_len = len + 1;
    r = 0;
out:
    json_object_put(o);
    return r;
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

/* The log's id in anchors: SHA-256 of STATE_DIR/audit.log's absolute path, 16 digits. */
static void audit_log_id(const char *state_dir, char id[AUDIT_ID_LEN + 1])
{
    char *real = realpath(state_dir, NULL), *path = NULL, h[AUDIT_HEX_LEN + 1];

    if (asprintf(&path, "%s/%s", real ? real : state_dir, AUDIT_FILE) < 0)
        path = NULL;
    if (!path || audit_sha256_hex(path, strlen(path), h) < 0)
        memcpy(h, AUDIT_ZERO_PREV, sizeof(h));
    memcpy(id, h, AUDIT_ID_LEN);
    id[AUDIT_ID_LEN] = '\0';
    free(real);
    free(path);
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

/* ---------------------------------------------------------------------------------------- */
/* Anchors out                                                                              */

/* Copy at most 64 bytes of s into buf, control characters and spaces as '?'. */
static const char *audit_sys_str(const char *s, char *buf, size_t len)
{
    size_t i;

    if (len > 65)
        len = 65;
    for (i = 0; s[i] && i + 1 < len; i++)
        buf[i] = ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f) ? '?' : s[i];
    buf[i] = '\0';
    return buf;
}

/* The job member of body as it goes into an anchor: up to 32 hex digits, else "-". */
static const char *audit_anchor_job(json_object *body)
{
    const char *s = audit_body_str(body, "job");
    size_t n = s ? strlen(s) : 0;

    return n > 0 && n <= 32 && strspn(s, AUDIT_HEX_DIGITS) == n ? s : "-";
}

/* The anchor of line w of log logid, whose body is body (the part after job is for people). */
static void audit_anchor_msg(char *buf, size_t len, const struct audit_written *w,
                             const char *logid, json_object *body)
{
    const char *ev = audit_body_str(body, "event"), *oc = audit_body_str(body, "outcome");
    const char *tok = audit_body_str(body, "token_serial");
    json_object *v = NULL;
    char e[65], o[65], t[65];
    int n;

    n = snprintf(buf, len,
                 AUDIT_ANCHOR_TAG "seq=%ld sha256=%s prev=%s chain=%s log=%s job=%s event=%s "
                                  "outcome=%s",
                 w->seq, w->sha, w->prev, w->chain, logid, audit_anchor_job(body),
                 audit_sys_str(ev ? ev : "?", e, sizeof(e)),
                 audit_sys_str(oc ? oc : "?", o, sizeof(o)));
    if (n >= 0 && (size_t)n < len && tok)
        n += snprintf(buf + n, len - (size_t)n, " token=%s", audit_sys_str(tok, t, sizeof(t)));
    if (n >= 0 && (size_t)n < len && json_object_object_get_ex(body, "order_id", &v) &&
        json_object_is_type(v, json_type_int))
        (void)snprintf(buf + n, len - (size_t)n, " order=%" PRId64, json_object_get_int64(v));
}

/* The message for an event that could not be written to the log. */
static void audit_unlogged_msg(char *buf, size_t len, json_object *body)
{
    const char *ev = audit_body_str(body, "event"), *oc = audit_body_str(body, "outcome");
    char e[65], o[65];

    (void)snprintf(buf, len, "audit: event=%s outcome=%s job=%s (not in audit.log)",
                   audit_sys_str(ev ? ev : "?", e, sizeof(e)),
                   audit_sys_str(oc ? oc : "?", o, sizeof(o)), audit_anchor_job(body));
}

/* The test hook: one RFC 3164 datagram to the unix socket at path. */
static void audit_send_socket(const char *path, const char *msg)
{
    struct sockaddr_un sa;
    char buf[AUDIT_MSG_LEN + 128], ts[32];
    time_t now = time(NULL);
    struct tm tm;
    int fd, n;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path))
        return;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (!localtime_r(&now, &tm) || strftime(ts, sizeof(ts), "%b %e %H:%M:%S", &tm) == 0)
        return;
    n = snprintf(buf, sizeof(buf), "<%d>%s pkio-agent[%ld]: %s", LOG_AUTHPRIV | LOG_INFO, ts,
                 (long)getpid(), msg);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return;
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        log_debug("audit: cannot send to %s: %s", path, strerror(errno));
    close(fd);
}

static void audit_send(const char *msg)
{
    static bool opened;
    const char *sock = getenv(AUDIT_SOCKET_ENV);

    if (!audit_syslog_enabled)
        return;
    if (sock && sock[0]) {
        audit_send_socket(sock, msg);
        return;
    }
    if (!opened) {
        openlog("pkio-agent", LOG_PID, LOG_AUTHPRIV);
        opened = true;
    }
    syslog(LOG_AUTHPRIV | LOG_INFO, "%s", msg);
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

/* Bodies to bring into the log, in order (audit_commit_bodies). */
struct audit_batch {
    json_object *const *bodies;
    size_t n;
    long after_seq; /* with find: a body may already be in the lines after this one */
    bool find;
    size_t done; /* bodies in the log */
    struct audit_written last;
};

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
static int audit_commit_bodies(const char *state_dir, struct audit_batch *b)
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
static int audit_pending_load(const struct job *j, json_object **ret)
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

/* ---------------------------------------------------------------------------------------- */
/* Reading the whole file                                                                   */

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

static void audit_walk_init(struct audit_walk *w)
{
    memset(w, 0, sizeof(*w));
    memcpy(w->prev, AUDIT_ZERO_PREV, sizeof(w->prev));
}

/* One complete line: check it against the chain (until the first break) and keep its hash. */
static int audit_walk_add(struct audit_walk *w, const char *line, size_t len)
{
    int r;

    if (w->n == w->cap) {
        long cap = w->cap ? w->cap * 2 : 256;
        char *nh = cap < LONG_MAX / (2 * AUDIT_SHA256_HEX)
                       ? realloc(w->hashes, (size_t)cap * AUDIT_SHA256_HEX)
                       : NULL;

        if (!nh)
            return PA_E_NOMEM;
        w->hashes = nh;
        w->cap = cap;
    }
    if (w->bad == 0) {
        r = audit_check_line(line, len, w->n + 1, w->prev, w->err, sizeof(w->err));
        if (r == PA_E_NOMEM)
            return r;
        if (r < 0)
            w->bad = w->n + 1;
    }
    r = audit_sha256_hex(line, len, w->prev);
    if (r < 0)
        return r;
    memcpy(w->hashes + (size_t)w->n * AUDIT_SHA256_HEX, w->prev, AUDIT_SHA256_HEX);
    w->n++;
    return 0;
}

/* Feed the complete lines in buf[0..have) to w; *ret_used: the bytes they took. */
static int audit_walk_buf(struct audit_walk *w, const char *buf, size_t have, size_t *ret_used)
{
    size_t start = 0;
    const char *nl;
    int r;

    while ((nl = memchr(buf + start, '\n', have - start)) != NULL) {
        size_t len = (size_t)(nl - (buf + start));

        r = audit_walk_add(w, buf + start, len);
        if (r < 0)
            return r;
        start += len + 1;
    }
    *ret_used = start;
    return 0;
}

/* Read the whole file (at most AUDIT_MAX_LINE + 1 bytes in memory at a time). */
static int audit_walk_fd(int fd, const char *path, struct audit_walk *w, char *errbuf,
                         size_t errlen)
{
    const size_t cap = AUDIT_MAX_LINE + 1;
    char *buf = malloc(cap);
    size_t have = 0, used = 0;
    int r = buf ? 0 : PA_E_NOMEM;

    while (r == 0) {
        ssize_t n = read(fd, buf + have, cap - have);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            audit_msg(errbuf, errlen, "%s: %s", path, strerror(errno));
            r = PA_E_IO;
        }
        if (n <= 0)
            break;
        have += (size_t)n;
        r = audit_walk_buf(w, buf, have, &used);
        memmove(buf, buf + used, have - used);
        have -= used;
        if (have == cap)
            break;
    }
    if (r == 0 && have > 0 && w->bad == 0) {
        w->bad = w->n + 1;
        (void)snprintf(w->err, sizeof(w->err), "%s",
                       have == cap ? audit_tr(N_("longer than 65536 bytes"))
                                   : audit_tr(N_("incomplete: no newline at the end of the file "
                                                 "(cut off mid-write?)")));
    }
    free(buf);
    return r;
}

/* Walk the log at path under a shared lock. A missing file: w->missing, 0 lines. */
static int audit_walk_file(const char *path, struct audit_walk *w, char *errbuf, size_t errlen)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK), r = 0;

    if (fd < 0) {
        if (errno == ENOENT) {
            w->missing = true;
            return 0;
        }
        audit_msg(errbuf, errlen, "%s: %s", path, strerror(errno));
        return PA_E_IO;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        audit_msg(errbuf, errlen, audit_tr(N_("%s: not a regular file")), path);
        r = PA_E_IO;
    }
    while (r == 0 && flock(fd, LOCK_SH) < 0) {
        if (errno != EINTR) {
            audit_msg(errbuf, errlen, audit_tr(N_("%s: cannot lock: %s")), path, strerror(errno));
            r = PA_E_IO;
        }
    }
    if (r == 0) {
        w->owner = st.st_uid;
        r = audit_walk_fd(fd, path, w, errbuf, errlen);
    }
    close(fd);
    return r;
}

int audit_verify(const char *state_dir, long *ret_lines, long *ret_bad_line, char *errbuf,
                 size_t errlen)
{
    struct audit_walk w;
    char *path = NULL;
    int r;

    if (!state_dir)
        return PA_E_INTERNAL;
    audit_walk_init(&w);
    if (asprintf(&path, "%s/%s", state_dir, AUDIT_FILE) < 0)
        return PA_E_NOMEM;
    r = audit_walk_file(path, &w, errbuf, errlen);
    if (r == 0 && w.bad) {
        r = PA_E_JOB;
        if (ret_bad_line)
            *ret_bad_line = w.bad;
        audit_msg(errbuf, errlen, audit_tr(N_("%s: line %ld: %s")), path, w.bad, w.err);
    }
    if (r == 0 && ret_lines)
        *ret_lines = w.n;
    free(w.hashes);
    free(path);
    return r;
}

/* ---------------------------------------------------------------------------------------- */
/* Anchors in                                                                               */

/* Where the anchor's fields start in line (NUL-terminated), or NULL. */
static const char *audit_anchor_start(const char *line)
{
    static const char tag[] = AUDIT_ANCHOR_TAG, ident[] = "pkio-agent";
    const char *p, *q;

    if (strncmp(line, tag, sizeof(tag) - 1) == 0)
        return line + sizeof(tag) - 1;
    for (p = strstr(line, ident); p; p = strstr(p + 1, ident)) {
        q = p + sizeof(ident) - 1;
        if (*q == '[') {
            size_t d = strspn(q + 1, "0123456789");

            if (d == 0 || q[1 + d] != ']')
                continue;
            q += d + 2;
        }
        if (strncmp(q, ": ", 2) == 0 && strncmp(q + 2, tag, sizeof(tag) - 1) == 0)
            return q + 2 + sizeof(tag) - 1;
    }
    return NULL;
}

/* "KEY" + exactly n lowercase hex digits (n_max > n: any count in [n, n_max]) and a space or
 * the end; advances *p past them. */
static bool audit_take_hex(const char **p, const char *key, size_t n, size_t n_max, char *out)
{
    size_t kl = strlen(key), got;
    const char *v;

    if (strncmp(*p, key, kl) != 0)
        return false;
    v = *p + kl;
    got = strspn(v, AUDIT_HEX_DIGITS);
    if (got < n || got > n_max || (v[got] != ' ' && v[got] != '\0'))
        return false;
    memcpy(out, v, got);
    out[got] = '\0';
    *p = v + got + (v[got] == ' ');
    return true;
}

static bool audit_take_seq(const char **p, long *out)
{
    const char *v = *p + 4;
    size_t d;
    char *end = NULL;
    long x;

    if (strncmp(*p, "seq=", 4) != 0)
        return false;
    d = strspn(v, "0123456789");
    if (d == 0 || d > 18 || v[0] == '0' || v[d] != ' ')
        return false;
    x = strtol(v, &end, 10);
    if (end != v + d || x < 1)
        return false;
    *out = x;
    *p = v + d + 1;
    return true;
}

int audit_parse_anchor(const char *line, size_t len, struct audit_anchor *ret)
{
    char buf[AUDIT_MAX_JOURNAL_LINE + 1];
    struct audit_anchor a;
    const char *p;

    if (!line || !ret || len > AUDIT_MAX_JOURNAL_LINE || memchr(line, '\0', len))
        return 0;
    memcpy(buf, line, len);
    buf[len] = '\0';
    memset(&a, 0, sizeof(a));
    p = audit_anchor_start(buf);
    if (!p || !audit_take_seq(&p, &a.seq) ||
        !audit_take_hex(&p, "sha256=", AUDIT_HEX_LEN, AUDIT_HEX_LEN, a.sha256) ||
        !audit_take_hex(&p, "prev=", AUDIT_HEX_LEN, AUDIT_HEX_LEN, a.prev) ||
        !audit_take_hex(&p, "chain=", AUDIT_ID_LEN, AUDIT_ID_LEN, a.chain) ||
        !audit_take_hex(&p, "log=", AUDIT_ID_LEN, AUDIT_ID_LEN, a.log))
        return 0;
    if (strncmp(p, "job=- ", 6) == 0 || strcmp(p, "job=-") == 0)
        a.job[0] = '\0';
    else if (!audit_take_hex(&p, "job=", 1, 32, a.job))
        return 0;
    *ret = a;
    return 1;
}

/* A growing array of anchors. */
struct audit_anchors {
    struct audit_anchor *v;
    size_t n, cap;
};

static int audit_anchors_add(struct audit_anchors *a, const struct audit_anchor *x)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 256;
        struct audit_anchor *nv =
            cap < SIZE_MAX / (2 * sizeof(*nv)) ? realloc(a->v, cap * sizeof(*nv)) : NULL;

        if (!nv)
            return PA_E_NOMEM;
        a->v = nv;
        a->cap = cap;
    }
    a->v[a->n++] = *x;
    return 0;
}

/* The anchors of log logid in the lines of f, in their order. */
static int audit_anchors_read(FILE *f, const char *logid, struct audit_anchors *a)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int r = 0;

    while (r == 0 && (n = getline(&line, &cap, f)) > 0) {
        struct audit_anchor x;

        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        if (audit_parse_anchor(line, (size_t)n, &x) == 1 && strcmp(x.log, logid) == 0) {
            x.order = (long)a->n;
            r = audit_anchors_add(a, &x);
        }
    }
    if (r == 0 && ferror(f))
        r = PA_E_IO;
    free(line);
    return r;
}

static int audit_anchors_from_file(const char *path, const char *logid, struct audit_anchors *a,
                                   char *errbuf, size_t errlen)
{
    FILE *f = fopen(path, "re");
    int r;

    if (!f) {
        audit_msg(errbuf, errlen, "%s: %s", path, strerror(errno));
        return PA_E_IO;
    }
    r = audit_anchors_read(f, logid, a);
    if (r == PA_E_IO)
        audit_msg(errbuf, errlen, "%s: %s", path, strerror(errno));
    fclose(f);
    return r;
}

/* Start journalctl with argv, its standard output on *ret_fd. */
static int audit_spawn(char *const argv[], pid_t *ret_pid, int *ret_fd)
{
    posix_spawn_file_actions_t fa;
    int p[2], err;

    if (pipe2(p, O_CLOEXEC) < 0)
        return PA_E_IO;
    if (posix_spawn_file_actions_init(&fa) != 0) {
        close(p[0]);
        close(p[1]);
        return PA_E_NOMEM;
    }
    err = posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
    if (err == 0)
        err = posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    if (err == 0)
        err = posix_spawnp(ret_pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (err != 0) {
        close(p[0]);
        errno = err;
        return PA_E_IO;
    }
    *ret_fd = p[0];
    return 0;
}

/* The anchors of log logid that journald holds from uid (journalctl). */
static int audit_anchors_from_journal(uid_t uid, const char *since, const char *logid,
                                      struct audit_anchors *a, char *errbuf, size_t errlen)
{
    char a0[] = "journalctl", a1[] = "--no-pager", a2[] = "--quiet", a3[] = "--output=cat",
         a4[] = "--identifier=pkio-agent", uidm[32], sincearg[256];
    char *argv[] = {a0, a1, a2, a3, a4, uidm, sincearg, NULL};
    FILE *f;
    pid_t pid = -1;
    int fd = -1, status = 0, r;

    (void)snprintf(uidm, sizeof(uidm), "_UID=%lu", (unsigned long)uid);
    if (since)
        (void)snprintf(sincearg, sizeof(sincearg), "--since=%s", since);
    else
        argv[6] = NULL;
    r = audit_spawn(argv, &pid, &fd);
    if (r < 0) {
        audit_msg(errbuf, errlen, audit_tr(N_("cannot run journalctl: %s (give --journal-file)")),
                  strerror(errno));
        return r;
    }
    f = fdopen(fd, "r");
    r = f ? audit_anchors_read(f, logid, a) : PA_E_NOMEM;
    if (f)
        fclose(f);
    else
        close(fd);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (r == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
        audit_msg(errbuf, errlen, audit_tr(N_("journalctl failed (exit status %d)")),
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        r = PA_E_IO;
    }
    return r;
}

/* ---------------------------------------------------------------------------------------- */
/* Comparing                                                                                */

bool audit_finding_tampered(enum audit_finding_kind kind)
{
    return kind != AF_PENDING;
}

/* Add a finding to rep; consecutive lines of one kind about no job become one range. */
static void audit_add(struct audit_report *rep, const struct audit_finding *nf)
{
    struct audit_finding *f = rep->nfindings ? &rep->findings[rep->nfindings - 1] : NULL;
    bool ranged = nf->kind == AF_REWRITTEN || nf->kind == AF_UNANCHORED || nf->kind == AF_CONFLICT;

    if (f && ranged && f->kind == nf->kind && f->last + 1 == nf->first) {
        f->last = nf->last;
        return;
    }
    if (!rep->findings)
        rep->findings = calloc(AUDIT_MAX_FINDINGS, sizeof(*rep->findings));
    if (!rep->findings || rep->nfindings == AUDIT_MAX_FINDINGS) {
        rep->dropped++;
        return;
    }
    rep->findings[rep->nfindings++] = *nf;
}

static int audit_anchor_cmp(const void *a, const void *b)
{
    const struct audit_anchor *x = a, *y = b;
    int c = strcmp(x->chain, y->chain);

    if (c == 0)
        c = (x->seq > y->seq) - (x->seq < y->seq);
    if (c == 0)
        c = strcmp(x->sha256, y->sha256);
    if (c == 0)
        c = (x->order > y->order) - (x->order < y->order);
    return c;
}

/* Sorted anchors without repeats of one (chain, seq, sha256); returns the new count. */
static size_t audit_anchor_dedupe(struct audit_anchor *v, size_t n)
{
    size_t out = 0;

    for (size_t i = 0; i < n; i++) {
        if (out > 0 && strcmp(v[out - 1].chain, v[i].chain) == 0 && v[out - 1].seq == v[i].seq &&
            strcmp(v[out - 1].sha256, v[i].sha256) == 0)
            continue;
        v[out++] = v[i];
    }
    return out;
}

/* The chain the file should hold: its own when the journal has it, else the latest one. */
static void audit_pick_chain(const struct audit_anchor *v, size_t n, const char *first_hash,
                             char out[AUDIT_ID_LEN + 1])
{
    long latest = -1;

    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (first_hash && strncmp(v[i].chain, first_hash, AUDIT_ID_LEN) == 0) {
            memcpy(out, v[i].chain, AUDIT_ID_LEN + 1);
            return;
        }
        if (v[i].order > latest) {
            latest = v[i].order;
            memcpy(out, v[i].chain, AUDIT_ID_LEN + 1);
        }
    }
}

/* Judge line k (hash h) by the anchors s[0..m) of its seq; first: the first anchored seq. */
static void audit_judge_line(long k, const char *h, const struct audit_anchor *s, size_t m,
                             long first, struct audit_report *rep)
{
    struct audit_finding f;
    const char *other = NULL;
    bool found = false;

    for (size_t x = 0; x < m; x++) {
        if (strcmp(s[x].sha256, h) == 0)
            found = true;
        else if (!other)
            other = s[x].sha256;
    }
    if ((m == 0 && k < first) || (found && m == 1))
        return; /* older than the journal, or anchored and unique */
    memset(&f, 0, sizeof(f));
    f.first = f.last = k;
    f.kind = m == 0 ? AF_UNANCHORED : found ? AF_CONFLICT : AF_REWRITTEN;
    if (other)
        memcpy(f.want, other, AUDIT_ID_LEN);
    memcpy(f.got, h, AUDIT_ID_LEN);
    audit_add(rep, &f);
}

/* Compare the file's lines with the anchors v[0..n) of its chain (sorted by seq). */
static void audit_compare_lines(const char *hashes, long n_lines, const struct audit_anchor *v,
                                size_t n, struct audit_report *rep)
{
    struct audit_finding f;
    size_t i = 0, j;

    if (n == 0)
        return;
    rep->journal_first = v[0].seq <= n_lines ? v[0].seq : 0;
    for (long k = 1; k <= n_lines; k++) {
        while (i < n && v[i].seq < k)
            i++;
        for (j = i; j < n && v[j].seq == k; j++)
            ;
        audit_judge_line(k, hashes + (size_t)(k - 1) * AUDIT_SHA256_HEX, v + i, j - i, v[0].seq,
                         rep);
        i = j;
    }
    while (i < n && v[i].seq <= n_lines)
        i++;
    if (i == n)
        return;
    memset(&f, 0, sizeof(f));
    f.kind = n_lines == 0 ? AF_LOG_MISSING : AF_TRUNCATED;
    f.first = v[i].seq;
    f.last = v[n - 1].seq;
    memcpy(f.chain, v[i].chain, sizeof(f.chain));
    audit_add(rep, &f);
}

/* Every chain of this log in the journal other than mine: not in the file. */
static void audit_other_chains(const struct audit_anchor *v, size_t n, const char *mine,
                               struct audit_report *rep)
{
    struct audit_finding f;

    for (size_t i = 0, j; i < n; i = j) {
        for (j = i; j < n && strcmp(v[j].chain, v[i].chain) == 0; j++)
            ;
        if (strcmp(v[i].chain, mine) == 0)
            continue;
        memset(&f, 0, sizeof(f));
        f.kind = AF_OTHER_CHAIN;
        f.first = v[i].seq;
        f.last = v[j - 1].seq;
        memcpy(f.chain, v[i].chain, sizeof(f.chain));
        audit_add(rep, &f);
    }
}

int audit_compare_journal(const char *hashes, long n_lines, const struct audit_anchor *anchors,
                          size_t n_anchors, struct audit_report *rep)
{
    struct audit_anchor *v;
    char mine[AUDIT_ID_LEN + 1];
    size_t n = 0, lo, hi;

    if (!rep || (n_lines > 0 && !hashes) || (n_anchors > 0 && !anchors))
        return PA_E_INTERNAL;
    v = calloc(2 * n_anchors + 1, sizeof(*v));
    if (!v)
        return PA_E_NOMEM;
    for (size_t i = 0; i < n_anchors; i++) {
        v[n++] = anchors[i];
        if (anchors[i].seq > 1) { /* prev anchors the line before once more */
            v[n] = anchors[i];
            v[n].seq--;
            memcpy(v[n++].sha256, anchors[i].prev, AUDIT_SHA256_HEX);
        }
    }
    rep->anchors = (long)n_anchors;
    audit_pick_chain(v, n, n_lines > 0 ? hashes : NULL, mine);
    qsort(v, n, sizeof(*v), audit_anchor_cmp);
    n = audit_anchor_dedupe(v, n);
    for (lo = 0; lo < n && strcmp(v[lo].chain, mine) != 0; lo++)
        ;
    for (hi = lo; hi < n && strcmp(v[hi].chain, mine) == 0; hi++)
        ;
    audit_compare_lines(hashes, n_lines, v + lo, hi - lo, rep);
    audit_other_chains(v, n, mine, rep);
    free(v);
    return 0;
}

/* One job record against the file. */
static void audit_compare_job(const char *hashes, long n_lines, const struct job *j,
                              struct audit_report *rep)
{
    struct audit_finding f;
    const char *h;

    if (j->audit_seq <= 0)
        return;
    memset(&f, 0, sizeof(f));
    (void)snprintf(f.job, sizeof(f.job), "%s", j->id);
    f.first = f.last = j->audit_seq;
    memcpy(f.want, j->audit_sha256, AUDIT_ID_LEN);
    if (j->audit_seq > n_lines) {
        f.kind = AF_JOB_PAST_END;
        f.first = n_lines + 1;
        audit_add(rep, &f);
        return;
    }
    h = hashes + (size_t)(j->audit_seq - 1) * AUDIT_SHA256_HEX;
    if (strcasecmp(h, j->audit_sha256) == 0)
        return;
    f.kind = AF_JOB_MISMATCH;
    memcpy(f.got, h, AUDIT_ID_LEN);
    audit_add(rep, &f);
}

/* A note for a record whose events are not all in the log yet. */
static void audit_note_pending(const struct job *j, struct audit_report *rep)
{
    struct audit_finding f;

    if (!j->audit_pending || !j->audit_pending[0])
        return;
    memset(&f, 0, sizeof(f));
    f.kind = AF_PENDING;
    (void)snprintf(f.job, sizeof(f.job), "%s", j->id);
    audit_add(rep, &f);
}

int audit_compare_jobs(const char *hashes, long n_lines, bool log_missing, struct job *const *jobs,
                       size_t n_jobs, struct audit_report *rep)
{
    struct audit_finding f;

    if (!rep || (n_jobs > 0 && !jobs) || (n_lines > 0 && !hashes))
        return PA_E_INTERNAL;
    memset(&f, 0, sizeof(f));
    f.kind = AF_LOG_MISSING;
    for (size_t i = 0; i < n_jobs; i++) {
        const struct job *j = jobs[i];

        audit_note_pending(j, rep);
        if (!log_missing) {
            audit_compare_job(hashes, n_lines, j, rep);
            continue;
        }
        /* no log: name the record that saw the most lines; one whose events are all still
         * pending needs no log yet */
        if (j->audit_seq <= 0 && j->audit_pending && j->audit_pending[0])
            continue;
        if (!f.job[0] || j->audit_seq > f.last) {
            (void)snprintf(f.job, sizeof(f.job), "%s", j->id);
            f.first = j->audit_seq > 0 ? 1 : 0;
            f.last = j->audit_seq;
        }
    }
    if (f.job[0])
        audit_add(rep, &f);
    rep->jobs = (long)n_jobs;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* The full check                                                                           */

static int audit_verify_jobs(const char *state_dir, const struct audit_walk *w,
                             struct audit_report *rep, char *errbuf, size_t errlen)
{
    struct job **list = NULL;
    size_t n = 0;
    char err[512] = "";
    int r = job_list(state_dir, &list, &n, err, sizeof(err));

    if (r < 0) {
        audit_msg(errbuf, errlen, audit_tr(N_("job records: %s")), err);
        return r;
    }
    if (err[0]) /* a corrupt record was set aside (and named): it holds no usable seq */
        log_debug("audit: %s", err);
    r = audit_compare_jobs(w->hashes, w->n, rep->log_missing, list, n, rep);
    job_list_free(list, n);
    return r;
}

static int audit_verify_journal(const char *state_dir, const struct audit_verify_opts *o,
                                const struct audit_walk *w, struct audit_report *rep, char *errbuf,
                                size_t errlen)
{
    struct audit_anchors a = {0};
    char logid[AUDIT_ID_LEN + 1];
    struct stat st;
    uid_t owner = w->missing ? (stat(state_dir, &st) == 0 ? st.st_uid : geteuid()) : w->owner;
    int r;

    audit_log_id(state_dir, logid);
    if (o->journal_file)
        r = audit_anchors_from_file(o->journal_file, logid, &a, errbuf, errlen);
    else
        r = audit_anchors_from_journal(owner, o->since, logid, &a, errbuf, errlen);
    if (r == 0 && a.n == 0 && w->n > 0) {
        if (o->journal_file)
            audit_msg(errbuf, errlen,
                      audit_tr(N_("the %s holds no anchor of this log (log id %s): run as root or "
                                  "as a member of group systemd-journal or adm, or give "
                                  "--journal-file")),
                      o->journal_file, logid);
        else
            audit_msg(errbuf, errlen,
                      audit_tr(N_("the journal holds no anchor of this log (log id %s): run as "
                                  "root or as a member of group systemd-journal or adm, or give "
                                  "--journal-file")),
                      logid);
        r = PA_E_IO;
    }
    if (r == 0)
        r = audit_compare_journal(w->hashes, w->n, a.v, a.n, rep);
    free(a.v);
    return r;
}

/* What the file itself says: its lines and the first break of its chain. */
static void audit_report_file(const struct audit_walk *w, struct audit_report *rep)
{
    struct audit_finding f;

    rep->lines = w->n;
    rep->log_missing = w->n == 0 && w->bad == 0;
    rep->bad_line = w->bad;
    (void)snprintf(rep->reason, sizeof(rep->reason), "%s", w->bad ? w->err : "");
    if (!w->bad)
        return;
    memset(&f, 0, sizeof(f));
    f.kind = AF_CHAIN_BROKEN;
    f.first = f.last = w->bad;
    audit_add(rep, &f);
}

static bool audit_report_tampered(const struct audit_report *rep)
{
    for (size_t i = 0; i < rep->nfindings; i++)
        if (audit_finding_tampered(rep->findings[i].kind))
            return true;
    return rep->dropped > 0;
}

int audit_verify_report(const char *state_dir, const struct audit_verify_opts *o,
                        struct audit_report *rep, char *errbuf, size_t errlen)
{
    struct audit_walk w;
    char *path = NULL;
    int r;

    if (!rep)
        return PA_E_INTERNAL;
    memset(rep, 0, sizeof(*rep));
    rep->anchors = -1;
    if (!state_dir || !o)
        return PA_E_INTERNAL;
    audit_walk_init(&w);
    if (asprintf(&path, "%s/%s", state_dir, AUDIT_FILE) < 0)
        return PA_E_NOMEM;
    r = audit_walk_file(path, &w, errbuf, errlen);
    if (r == 0) {
        audit_report_file(&w, rep);
        r = audit_verify_jobs(state_dir, &w, rep, errbuf, errlen);
    }
    if (r == 0 && o->against_journal)
        r = audit_verify_journal(state_dir, o, &w, rep, errbuf, errlen);
    if (r == 0 && audit_report_tampered(rep))
        r = PA_E_JOB;
    free(w.hashes);
    free(path);
    return r;
}

void audit_report_clear(struct audit_report *rep)
{
    if (!rep)
        return;
    free(rep->findings);
    rep->findings = NULL;
    rep->nfindings = 0;
}

const char *audit_finding_name(enum audit_finding_kind kind)
{
    static const char *const names[] = {
        [AF_CHAIN_BROKEN] = "chain_broken", [AF_LOG_MISSING] = "log_missing",
        [AF_TRUNCATED] = "truncated",       [AF_REWRITTEN] = "rewritten",
        [AF_CONFLICT] = "conflict",         [AF_UNANCHORED] = "unanchored",
        [AF_OTHER_CHAIN] = "other_chain",   [AF_JOB_PAST_END] = "job_past_end",
        [AF_JOB_MISMATCH] = "job_mismatch", [AF_PENDING] = "pending",
    };

    if ((unsigned)kind >= sizeof(names) / sizeof(names[0]) || !names[kind])
        return "unknown";
    return names[kind];
}

/* "line 5" or "lines 5..7" */
static const char *audit_lines(const struct audit_finding *f, char *buf, size_t len)
{
    if (f->first == f->last)
        (void)snprintf(buf, len, audit_tr(N_("line %ld")), f->first);
    else
        (void)snprintf(buf, len, audit_tr(N_("lines %ld..%ld")), f->first, f->last);
    return buf;
}

void audit_finding_text(const struct audit_finding *f, char *buf, size_t len)
{
    char l[64];

    switch (f->kind) {
    case AF_CHAIN_BROKEN:
        (void)snprintf(buf, len, audit_tr(N_("line %ld breaks the chain")), f->first);
        return;
    case AF_LOG_MISSING:
        if (f->job[0] && f->last > 0)
            (void)snprintf(
                buf, len,
                audit_tr(N_("the log is missing or empty, but job %s recorded audit line %ld: "
                            "deleted")),
                f->job, f->last);
        else if (f->job[0])
            (void)snprintf(buf, len,
                           audit_tr(N_("the log is missing or empty, but job %s exists: deleted")),
                           f->job);
        else
            (void)snprintf(
                buf, len,
                audit_tr(N_("the log is missing or empty, but the journal anchored %s: deleted")),
                audit_lines(f, l, sizeof(l)));
        return;
    case AF_TRUNCATED:
        (void)snprintf(
            buf, len,
            audit_tr(N_("%s missing: the journal anchored them, the file ends at line %ld: tail "
                        "cut off")),
            audit_lines(f, l, sizeof(l)), f->first - 1);
        return;
    case AF_REWRITTEN:
        (void)snprintf(
            buf, len,
            audit_tr(N_("%s differ from the journal's anchors (line %ld: journal %s..., file "
                        "%s...): rewritten")),
            audit_lines(f, l, sizeof(l)), f->first, f->want, f->got);
        return;
    case AF_CONFLICT:
        (void)snprintf(buf, len,
                       audit_tr(N_("%s have two different anchors in the journal: forged anchors")),
                       audit_lines(f, l, sizeof(l)));
        return;
    case AF_UNANCHORED:
        (void)snprintf(
            buf, len,
            audit_tr(N_("%s have no anchor in the journal: written without pkio-agent, or syslog "
                        "lost them")),
            audit_lines(f, l, sizeof(l)));
        return;
    case AF_OTHER_CHAIN:
        (void)snprintf(
            buf, len,
            audit_tr(N_("the journal anchored another chain of this log (chain %s, %s) that the "
                        "file does not hold: replaced, or moved aside (then verify --since after "
                        "the move)")),
            f->chain, audit_lines(f, l, sizeof(l)));
        return;
    case AF_JOB_PAST_END:
        (void)snprintf(
            buf, len,
            audit_tr(N_("job %s recorded audit line %ld, but the log ends at line %ld: tail cut "
                        "off or log replaced")),
            f->job, f->last, f->first - 1);
        return;
    case AF_JOB_MISMATCH:
        (void)snprintf(
            buf, len,
            audit_tr(N_("line %ld differs from what job %s recorded (job %s..., file %s...): "
                        "rewritten")),
            f->first, f->job, f->want, f->got);
        return;
    case AF_PENDING:
        (void)snprintf(
            buf, len,
            audit_tr(N_("job %s holds audit events not in the log yet; they are appended when "
                        "the job is next resumed")),
            f->job);
        return;
    }
    (void)snprintf(buf, len, audit_tr(N_("unknown finding")));
}
