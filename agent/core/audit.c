/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit.c - the audit log's line (audit.h): its format, the strict parse and checks of one
 * line, hashing, and building the line an event makes; the language of what verification says.
 * Appending is in audit_log.c, the anchors in audit_anchor.c, verification in audit_verify.c
 * (audit_internal.h: what they share).
 *
 * The chain. STATE_DIR/audit.log holds one JSON object per line. Line N carries "seq": N and
 * "prev": the SHA-256 (hex) of the exact bytes of line N-1 without its newline (64 zeros for
 * line 1), so changing, inserting or deleting a line breaks the chain at or right after it.
 * Since the file alone can be cut or rewritten, the chain is anchored outside it too
 * (audit_anchor.c, and the job records: audit_log.c).
 *
 * Who acted ("user", "user_from"): SUDO_USER when root runs us under sudo; else the login name
 * (getlogin_r: the audit login uid, which sudo and su keep); else PKIO_ACTOR, which the daemon
 * may set for its children (they have no login session); else the uid's passwd name.
 *
 * Field values are clipped to AUDIT_MAX_FIELD bytes (at a UTF-8 boundary); json-c escapes
 * control characters, so a line never contains a raw newline.
 */
#include "audit.h"
#include "audit_internal.h"

#include "i18n.h"
#include "pa_err.h"
#include "pjson.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

/* Not used here: for the unit and fuzz tests, which include this file to reach its helpers. */
#include <fcntl.h>
#include <sys/stat.h>

#define AUDIT_MAX_FIELD 512 /* bytes per string value */
#define AUDIT_MAX_DEPTH 4
#define AUDIT_MAX_NAME  64
#define AUDIT_ACTOR_ENV "PKIO_ACTOR"

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

/* See audit.h: English unless audit_translate_messages(true). */
static bool audit_translated;

void audit_translate_messages(bool on)
{
    audit_translated = on;
}

/* A message as verification shows it (msgid marked N_()); format_arg keeps printf checks. */
const char *audit_tr(const char *msgid)
{
    return audit_translated ? _(msgid) : msgid;
}

/* SHA-256 of len bytes as 64 lowercase hex digits + NUL in hex. */
int audit_sha256_hex(const void *data, size_t len, char hex[AUDIT_HEX_LEN + 1])
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

    if (!json_object_is_type(v, json_type_int))
        return pa_errf(errbuf, errlen, PA_E_JOB, audit_tr(N_("\"%s\" is not an integer")), m->name);
    errno = 0;
    x = json_object_get_int64(v);
    if (errno != 0 || x < 0 || x == INT64_MAX)
        return pa_errf(errbuf, errlen, PA_E_JOB, audit_tr(N_("\"%s\" is out of range")), m->name);
    return 0;
}

static int audit_check_str(const struct audit_member *m, json_object *v, char *errbuf,
                           size_t errlen)
{
    const char *s;
    int len;

    if (!json_object_is_type(v, json_type_string))
        return pa_errf(errbuf, errlen, PA_E_JOB, audit_tr(N_("\"%s\" is not a string")), m->name);
    s = json_object_get_string(v);
    len = json_object_get_string_len(v);
    if (len < 0 || strlen(s) != (size_t)len)
        return pa_errf(errbuf, errlen, PA_E_JOB, audit_tr(N_("\"%s\" contains a NUL character")),
                       m->name);
    if (m->type == AT_STR && len > AUDIT_MAX_FIELD)
        return pa_errf(errbuf, errlen, PA_E_JOB, audit_tr(N_("\"%s\" is longer than %d bytes")),
                       m->name, AUDIT_MAX_FIELD);
    if (m->type == AT_TIME && !audit_is_time(s))
        return pa_errf(errbuf, errlen, PA_E_JOB, audit_tr(N_("\"%s\" is not a UTC time")), m->name);
    if (m->type == AT_HASH && !audit_is_hash(s))
        return pa_errf(errbuf, errlen, PA_E_JOB, audit_tr(N_("\"%s\" is not a SHA-256 in hex")),
                       m->name);
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
    if (!line)
        return pa_errf(errbuf, errlen, PA_E_JOB, audit_tr(N_("no line")));
    if (len > AUDIT_MAX_LINE)
        return pa_errf(errbuf, errlen, PA_E_JOB, audit_tr(N_("longer than %d bytes")),
                       AUDIT_MAX_LINE);
    if (len == 0)
        return pa_errf(errbuf, errlen, PA_E_JOB, audit_tr(N_("empty line")));
    if (line[0] != '{' || line[len - 1] != '}') {
        return pa_errf(errbuf, errlen, PA_E_JOB,
                       audit_tr(N_("bad JSON: not one object from the first byte to the last")));
    }
    if (memchr(line, '\0', len) || memchr(line, '\n', len))
        return pa_errf(errbuf, errlen, PA_E_JOB,
                       audit_tr(N_("bad JSON: contains a NUL or newline byte")));
    return 0;
}

/* Parse len bytes as one strict JSON value, at most AUDIT_MAX_DEPTH deep, nothing after it. */
int audit_json_parse(const char *text, size_t len, json_object **ret, char *errbuf, size_t errlen)
{
    const struct pjson_opts o = {0, AUDIT_MAX_DEPTH, PJSON_NO_SPACE, PA_E_JOB};
    struct pjson_err e;
    int r = pjson_parse(text, len, &o, ret, &e);

    if (r == PA_E_NOMEM || r == 0)
        return r;
    if (e.fail == PJSON_TRAILING)
        (void)pa_errf(errbuf, errlen, 0, audit_tr(N_("bad JSON: data after the object")));
    else if (e.fail == PJSON_TRUNCATED || e.fail == PJSON_SYNTAX)
        (void)pa_errf(errbuf, errlen, 0, audit_tr(N_("bad JSON: %s")),
                      e.fail == PJSON_TRUNCATED ? audit_tr(N_("unexpected end of line")) : e.desc);
    else
        (void)audit_check_shape(text, len, errbuf, errlen); /* no data, too long, a NUL byte */
    return r;
}

/* Every member known and well-formed, every required one there. */
static int audit_check_members(json_object *root, char *errbuf, size_t errlen)
{
    if (!json_object_is_type(root, json_type_object))
        return pa_errf(errbuf, errlen, PA_E_JOB, audit_tr(N_("bad JSON: not an object")));
    json_object_object_foreach(root, key, val)
    {
        const struct audit_member *m = audit_member_find(key);

        if (!m)
            return pa_errf(errbuf, errlen, PA_E_JOB, audit_tr(N_("unknown member")));
        if ((m->type == AT_INT ? audit_check_int(m, val, errbuf, errlen)
                               : audit_check_str(m, val, errbuf, errlen)) < 0)
            return PA_E_JOB;
    }
    for (size_t i = 0; i < AUDIT_NMEMBERS; i++) {
        if (audit_members[i].required &&
            !json_object_object_get_ex(root, audit_members[i].name, NULL))
            return pa_errf(errbuf, errlen, PA_E_JOB, audit_tr(N_("missing field \"%s\"")),
                           audit_members[i].name);
    }
    return 0;
}

/* Parse and check one line on its own (everything but the chain); *p: its seq, prev and at. */
int audit_parse_line(const char *line, size_t len, struct audit_parsed *p, char *errbuf,
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
        (void)pa_errf(errbuf, errlen, 0, audit_tr(N_("\"seq\" is out of range")));
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
    if (p.seq != expect_seq)
        return pa_errf(errbuf, errlen, PA_E_JOB, audit_tr(N_("seq %ld, expected %ld")), p.seq,
                       expect_seq);
    if (!expect_prev || strcmp(p.prev, expect_prev) != 0)
        return pa_errf(
            errbuf, errlen, PA_E_JOB, "%s",
            expect_seq == 1
                ? audit_tr(N_("prev mismatch: not the SHA-256 of the line before (64 zeros "
                              "for line 1)"))
                : audit_tr(N_("prev mismatch: not the SHA-256 of the line before")));
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
const char *audit_body_str(json_object *body, const char *key)
{
    json_object *v;

    if (!json_object_object_get_ex(body, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

int audit_now(char at[32])
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
int audit_body_from_event(const struct audit_event *ev, json_object **ret)
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
int audit_line_from_body(json_object *body, long seq, const char *prev, const char *at, char **ret,
                         size_t *ret_len)
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
