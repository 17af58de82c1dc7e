/* SPDX-License-Identifier: Apache-2.0 */
/*
 * job_format.c - the job record's file format (job.h): struct job <-> JSON, and the strict
 * checks of every field.
 *
 * The format ("format": 1) is one JSON object; every member is listed in job_fields[] with its
 * type and bound. Unknown members, wrong types, out-of-range numbers, over-long strings and
 * unknown state names are refused, so a struct job built by job_parse always satisfies
 * job_check, and job_save refuses (PA_E_INTERNAL) to write a struct that does not: what we write
 * we can always read back. Pure code (no files): fuzzed by fuzz_job.
 */
#include "job.h"
#include "job_internal.h"

#include "i18n.h"
#include "pa_err.h"
#include "pjson.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#define JOB_FORMAT     1
#define JOB_MAX_DEPTH  8
#define JOB_MAX_TIME   253402300799 /* 9999-12-31T23:59:59Z */
#define JOB_MAX_POLL_S 31536000.0   /* one year */
#define JOB_JSON_FLAGS                                                                             \
    (JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE)

/* ---------------------------------------------------------------------------------------- */
/* The field table                                                                          */

enum job_kind {
    JK_TEXT,   /* char[size]: any text shorter than size */
    JK_ID,     /* char[33]: exactly 32 lowercase hex digits */
    JK_SHA256, /* char[65]: empty or 64 hex digits */
    JK_HEX,    /* char[size]: an even number of hex digits (may be empty) */
    JK_PTEXT,  /* char *: NULL or text of at most size bytes */
    JK_TIME,   /* time_t in [0, JOB_MAX_TIME] */
    JK_LONG,   /* long >= 0 */
    JK_BOOL,   /* bool */
    JK_SECS,   /* double in [0, JOB_MAX_POLL_S] */
    JK_STATE,  /* enum job_state, as its name */
};

struct job_field {
    const char *name;
    enum job_kind kind;
    size_t off;
    size_t size; /* JK_TEXT/JK_HEX/JK_ID/JK_SHA256: array size; JK_PTEXT: max length */
    bool required;
};

#define JF(name, kind, size, req)                                                                  \
    {                                                                                              \
#name, kind, offsetof(struct job, name), size, req                                         \
    }
#define JA(name, kind, req) JF(name, kind, sizeof(((struct job *)0)->name), req)

static const struct job_field job_fields[] = {
    JA(id, JK_ID, true),
    JF(state, JK_STATE, 0, true),
    JF(created, JK_TIME, 0, true),
    JF(updated, JK_TIME, 0, true),
    JA(token_serial, JK_TEXT, false),
    JA(token_label, JK_TEXT, false),
    JA(token_model, JK_TEXT, false),
    JA(token_manufacturer, JK_TEXT, false),
    JA(key_type, JK_TEXT, false),
    JA(key_label, JK_TEXT, false),
    JA(key_id_hex, JK_HEX, false),
    JA(spki_sha256, JK_SHA256, false),
    JF(custody_ok, JK_BOOL, 0, false),
    JF(keygen_at, JK_TIME, 0, false),
    JA(keygen_mechanism, JK_TEXT, false),
    JF(slot_hw, JK_BOOL, 0, false),
    JF(slot_removable, JK_BOOL, 0, false),
    JF(module_path, JK_PTEXT, PATH_MAX, false),
    JF(custody, JK_PTEXT, 1024, false),
    JA(profile, JK_TEXT, false),
    JF(csr_pem, JK_PTEXT, 64 * 1024, false),
    JA(csr_sha256, JK_SHA256, false),
    JF(pss, JK_BOOL, 0, false),
    JF(product, JK_PTEXT, 128, false),
    JF(request_path, JK_PTEXT, PATH_MAX, false),
    JA(request_sha256, JK_SHA256, false),
    JF(order_attempt_at, JK_TIME, 0, false),
    JF(order_id, JK_LONG, 0, false),
    JF(certificate_id, JK_LONG, 0, false),
    JA(order_status, JK_TEXT, false),
    JF(next_poll, JK_TIME, 0, false),
    JF(poll_interval_s, JK_SECS, 0, false),
    JF(cert_pem, JK_PTEXT, 256 * 1024, false),
    JA(cert_serial, JK_TEXT, false),
    JF(replaces_certificate_id, JK_LONG, 0, false),
    JF(replaces_order_id, JK_LONG, 0, false),
    JF(old_revoked, JK_BOOL, 0, false),
    JF(revoke_attempt_at, JK_TIME, 0, false),
    JF(revoke_request_id, JK_LONG, 0, false),
    JA(revoke_status, JK_TEXT, false),
    JF(cert_revoke_at, JK_TIME, 0, false),
    JA(cert_revoke_reason, JK_TEXT, false),
    JF(cert_revoke_request_id, JK_LONG, 0, false),
    JA(cert_revoke_status, JK_TEXT, false),
    JF(last_error, JK_PTEXT, JOB_MAX_LINE, false),
    JF(audit_seq, JK_LONG, 0, false),
    JA(audit_sha256, JK_SHA256, false),
    JF(audit_pending, JK_PTEXT, 256 * 1024, false),
};

#define JOB_NFIELDS (sizeof(job_fields) / sizeof(job_fields[0]))

/* ---------------------------------------------------------------------------------------- */
/* Checks                                                                                   */

static bool job_secs_ok(double d)
{
    return isfinite(d) && d >= 0 && d <= JOB_MAX_POLL_S;
}

/* A char array field (JK_TEXT, JK_ID, JK_SHA256, JK_HEX) against its rule. */
static int job_check_chars(const char *p, const struct job_field *f, char *errbuf, size_t errlen)
{
    size_t len = strnlen(p, f->size);

    if (len >= f->size)
        return pa_errf(errbuf, errlen, PA_E_JOB, _("%s: longer than %zu bytes"), f->name,
                       f->size - 1);
    if (f->kind == JK_ID && !job_id_valid(p))
        return pa_errf(errbuf, errlen, PA_E_JOB, _("%s: not %d lowercase hex digits"), f->name,
                       JOB_ID_LEN);
    if (f->kind == JK_SHA256 && len != 0 && (len != 64 || !job_is_hex(p, false)))
        return pa_errf(errbuf, errlen, PA_E_JOB, _("%s: not a SHA-256 in hex"), f->name);
    if (f->kind == JK_HEX && (len % 2 != 0 || !job_is_hex(p, false)))
        return pa_errf(errbuf, errlen, PA_E_JOB, _("%s: not an even number of hex digits"),
                       f->name);
    return 0;
}

/* Check one field of j against its rule; on failure write "NAME: why" to errbuf. */
static int job_check_field(const struct job *j, const struct job_field *f, char *errbuf,
                           size_t errlen)
{
    const char *p = (const char *)j + f->off;
    const char *s;
    double d;
    long l;
    time_t t;

    switch (f->kind) {
    case JK_TEXT:
    case JK_ID:
    case JK_SHA256:
    case JK_HEX:
        return job_check_chars(p, f, errbuf, errlen);
    case JK_PTEXT:
        memcpy(&s, p, sizeof(s));
        if (s && strlen(s) > f->size)
            return pa_errf(errbuf, errlen, PA_E_JOB, _("%s: longer than %zu bytes"), f->name,
                           f->size);
        return 0;
    case JK_TIME:
        memcpy(&t, p, sizeof(t));
        if (t < 0 || t > (time_t)JOB_MAX_TIME)
            return pa_errf(errbuf, errlen, PA_E_JOB, _("%s: time out of range"), f->name);
        return 0;
    case JK_LONG:
        memcpy(&l, p, sizeof(l));
        if (l < 0 || l == LONG_MAX)
            return pa_errf(errbuf, errlen, PA_E_JOB, _("%s: out of range"), f->name);
        return 0;
    case JK_BOOL:
        return 0;
    case JK_SECS:
        memcpy(&d, p, sizeof(d));
        if (!job_secs_ok(d))
            return pa_errf(errbuf, errlen, PA_E_JOB, _("%s: out of range"), f->name);
        return 0;
    case JK_STATE:
        if (!job_state_valid(j->state))
            return pa_errf(errbuf, errlen, PA_E_JOB, _("%s: invalid state"), f->name);
        return 0;
    }
    return PA_E_INTERNAL;
}

int job_check(const struct job *j, char *errbuf, size_t errlen)
{
    for (size_t i = 0; i < JOB_NFIELDS; i++) {
        int r = job_check_field(j, &job_fields[i], errbuf, errlen);

        if (r < 0)
            return r;
    }
    if (j->nhistory > JOB_MAX_HISTORY)
        return pa_errf(errbuf, errlen, PA_E_JOB, _("history: more than %d events"),
                       JOB_MAX_HISTORY);
    if (j->nhistory && !j->history)
        return pa_errf(errbuf, errlen, PA_E_JOB, _("history: missing"));
    for (size_t i = 0; i < j->nhistory; i++) {
        const struct job_event *e = &j->history[i];

        if (e->at < 0 || e->at > (time_t)JOB_MAX_TIME || !job_state_valid(e->state) ||
            (e->note && strlen(e->note) > JOB_MAX_LINE))
            return pa_errf(errbuf, errlen, PA_E_JOB, _("history[%zu]: invalid event"), i);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Serialisation                                                                            */

static int job_add(json_object *o, const char *key, json_object *v)
{
    if (!v)
        return PA_E_NOMEM;
    if (json_object_object_add(o, key, v) < 0) {
        json_object_put(v);
        return PA_E_NOMEM;
    }
    return 0;
}

static json_object *job_field_to_json(const struct job *j, const struct job_field *f)
{
    const char *p = (const char *)j + f->off;
    const char *s;
    double d;
    long l;
    time_t t;
    bool b;

    switch (f->kind) {
    case JK_TEXT:
    case JK_ID:
    case JK_SHA256:
    case JK_HEX:
        return json_object_new_string_len(p, (int)strnlen(p, f->size));
    case JK_PTEXT:
        memcpy(&s, p, sizeof(s));
        return json_object_new_string(s);
    case JK_TIME:
        memcpy(&t, p, sizeof(t));
        return json_object_new_int64((int64_t)t);
    case JK_LONG:
        memcpy(&l, p, sizeof(l));
        return json_object_new_int64((int64_t)l);
    case JK_BOOL:
        memcpy(&b, p, sizeof(b));
        return json_object_new_boolean(b);
    case JK_SECS:
        memcpy(&d, p, sizeof(d));
        return json_object_new_double(d);
    case JK_STATE:
        return json_object_new_string(job_state_name(j->state));
    }
    return NULL;
}

/* The history array (NULL when out of memory). */
static json_object *job_history_to_json(const struct job *j)
{
    json_object *arr = json_object_new_array(), *ev = NULL;

    if (!arr)
        return NULL;
    for (size_t i = 0; i < j->nhistory; i++) {
        const struct job_event *e = &j->history[i];

        ev = json_object_new_object();
        if (!ev)
            goto fail;
        if (job_add(ev, "at", json_object_new_int64((int64_t)e->at)) < 0 ||
            job_add(ev, "state", json_object_new_string(job_state_name(e->state))) < 0)
            goto fail;
        if (e->note && job_add(ev, "note", json_object_new_string(e->note)) < 0)
            goto fail;
        if (json_object_array_add(arr, ev) < 0)
            goto fail;
        ev = NULL;
    }
    return arr;
fail:
    json_object_put(ev);
    json_object_put(arr);
    return NULL;
}

/*
 * The job as pretty-printed JSON with a final newline; malloc'd, caller frees. NULL only when out
 * of memory. NULL pointer fields are left out. Does not check j (job_save does).
 */
char *job_to_json(const struct job *j)
{
    json_object *root = NULL;
    const char *s;
    char *out = NULL;
    size_t len;

    if (!j)
        return NULL;
    root = json_object_new_object();
    if (!root)
        goto out;
    if (job_add(root, "format", json_object_new_int(JOB_FORMAT)) < 0)
        goto out;
    for (size_t i = 0; i < JOB_NFIELDS; i++) {
        const struct job_field *f = &job_fields[i];

        if (f->kind == JK_PTEXT) {
            const char *v;

            memcpy(&v, (const char *)j + f->off, sizeof(v));
            if (!v)
                continue;
        }
        if (job_add(root, f->name, job_field_to_json(j, f)) < 0)
            goto out;
    }
    if (job_add(root, "history", job_history_to_json(j)) < 0)
        goto out;
    s = json_object_to_json_string_ext(root, JOB_JSON_FLAGS);
    if (!s)
        goto out;
    len = strlen(s);
    out = malloc(len + 2);
    if (!out)
        goto out;
    memcpy(out, s, len);
    out[len] = '\n';
    out[len + 1] = '\0';
out:
    json_object_put(root);
    return out;
}

/* ---------------------------------------------------------------------------------------- */
/* Parsing                                                                                  */

/* A JSON string's bytes, refusing embedded NULs and more than max bytes. */
static int job_json_str(json_object *v, size_t max, const char **ret, char *errbuf, size_t errlen,
                        const char *name)
{
    const char *s;
    int len;

    if (!json_object_is_type(v, json_type_string))
        return pa_errf(errbuf, errlen, PA_E_JOB, _("%s: not a string"), name);
    s = json_object_get_string(v);
    len = json_object_get_string_len(v);
    if (len < 0 || strlen(s) != (size_t)len)
        return pa_errf(errbuf, errlen, PA_E_JOB, _("%s: contains a NUL character"), name);
    if ((size_t)len > max)
        return pa_errf(errbuf, errlen, PA_E_JOB, _("%s: longer than %zu bytes"), name, max);
    *ret = s;
    return 0;
}

/* A malloc'd copy of a JSON string of at most max bytes (job_json_str's rules). */
static int job_json_strdup(json_object *v, size_t max, char **ret, char *errbuf, size_t errlen,
                           const char *name)
{
    const char *s = NULL;
    int r = job_json_str(v, max, &s, errbuf, errlen, name);

    if (r < 0)
        return r;
    *ret = strdup(s);
    return *ret ? 0 : PA_E_NOMEM;
}

/* A JSON integer in [min, max]. */
static int job_json_int(json_object *v, int64_t min, int64_t max, int64_t *ret, char *errbuf,
                        size_t errlen, const char *name)
{
    int64_t x;

    if (!json_object_is_type(v, json_type_int))
        return pa_errf(errbuf, errlen, PA_E_JOB, _("%s: not an integer"), name);
    errno = 0;
    x = json_object_get_int64(v);
    if (errno != 0 || x < min || x > max || x == INT64_MAX)
        return pa_errf(errbuf, errlen, PA_E_JOB, _("%s: out of range"), name);
    *ret = x;
    return 0;
}

/* A state, as its name. */
static int job_json_state(json_object *v, enum job_state *ret, char *errbuf, size_t errlen,
                          const char *name)
{
    const char *s = NULL;
    int r = job_json_str(v, 32, &s, errbuf, errlen, name);

    if (r < 0)
        return r;
    if (job_state_parse(s, ret) < 0)
        return pa_errf(errbuf, errlen, PA_E_JOB, _("%s: unknown state"), name);
    return 0;
}

/* A JK_PTEXT member: null leaves the field as it is; a duplicate key replaces the earlier value. */
static int job_ptext_from_json(char *p, const struct job_field *f, json_object *v, char *errbuf,
                               size_t errlen)
{
    char *copy = NULL, *old;
    int r;

    if (json_object_is_type(v, json_type_null))
        return 0;
    r = job_json_strdup(v, f->size, &copy, errbuf, errlen, f->name);
    if (r < 0)
        return r;
    memcpy(&old, p, sizeof(old));
    free(old);
    memcpy(p, &copy, sizeof(copy));
    return 0;
}

/* A JK_TIME, JK_LONG or JK_SECS member. */
static int job_number_from_json(char *p, const struct job_field *f, json_object *v, char *errbuf,
                                size_t errlen)
{
    int64_t x;
    double d;
    long l;
    time_t t;
    int r;

    if (f->kind == JK_TIME) {
        r = job_json_int(v, 0, JOB_MAX_TIME, &x, errbuf, errlen, f->name);
        t = (time_t)x;
        if (r == 0)
            memcpy(p, &t, sizeof(t));
        return r;
    }
    if (f->kind == JK_LONG) {
        /* json-c saturates larger numbers to INT64_MAX: that value itself is refused */
        r = job_json_int(v, 0, (int64_t)LONG_MAX - 1, &x, errbuf, errlen, f->name);
        l = (long)x;
        if (r == 0)
            memcpy(p, &l, sizeof(l));
        return r;
    }
    if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
        return pa_errf(errbuf, errlen, PA_E_JOB, _("%s: not a number"), f->name);
    d = json_object_get_double(v);
    if (!job_secs_ok(d))
        return pa_errf(errbuf, errlen, PA_E_JOB, _("%s: out of range"), f->name);
    memcpy(p, &d, sizeof(d));
    return 0;
}

/* Store one member's value into j according to f (types and bounds; job_check does formats). */
static int job_field_from_json(struct job *j, const struct job_field *f, json_object *v,
                               char *errbuf, size_t errlen)
{
    char *p = (char *)j + f->off;
    const char *s = NULL;
    bool b;
    int r;

    switch (f->kind) {
    case JK_TEXT:
    case JK_ID:
    case JK_SHA256:
    case JK_HEX:
        r = job_json_str(v, f->size - 1, &s, errbuf, errlen, f->name);
        if (r == 0)
            memcpy(p, s, strlen(s) + 1);
        return r;
    case JK_PTEXT:
        return job_ptext_from_json(p, f, v, errbuf, errlen);
    case JK_TIME:
    case JK_LONG:
    case JK_SECS:
        return job_number_from_json(p, f, v, errbuf, errlen);
    case JK_BOOL:
        if (!json_object_is_type(v, json_type_boolean))
            return pa_errf(errbuf, errlen, PA_E_JOB, _("%s: not true or false"), f->name);
        b = json_object_get_boolean(v);
        memcpy(p, &b, sizeof(b));
        return 0;
    case JK_STATE:
        return job_json_state(v, &j->state, errbuf, errlen, f->name);
    }
    return PA_E_INTERNAL;
}

/* One member of a history event; *have gets 1 for "at", 2 for "state". */
static int job_event_member(struct job_event *e, const char *key, json_object *val,
                            const char *name, unsigned *have, char *errbuf, size_t errlen)
{
    int64_t x;
    int r;

    if (strcmp(key, "at") == 0) {
        r = job_json_int(val, 0, JOB_MAX_TIME, &x, errbuf, errlen, name);
        if (r < 0)
            return r;
        e->at = (time_t)x;
        *have |= 1;
        return 0;
    }
    if (strcmp(key, "state") == 0) {
        r = job_json_state(val, &e->state, errbuf, errlen, name);
        if (r == 0)
            *have |= 2;
        return r;
    }
    if (strcmp(key, "note") == 0) {
        free(e->note);
        e->note = NULL;
        if (json_object_is_type(val, json_type_null))
            return 0;
        return job_json_strdup(val, JOB_MAX_LINE, &e->note, errbuf, errlen, name);
    }
    return pa_errf(errbuf, errlen, PA_E_JOB, _("%s: unknown member"), name);
}

/* History event i: an object with "at" and "state", and "note" if there is one. */
static int job_event_from_json(struct job_event *e, json_object *ev, size_t i, char *errbuf,
                               size_t errlen)
{
    unsigned have = 0;
    char name[32];

    (void)snprintf(name, sizeof(name), "history[%zu]", i);
    if (!json_object_is_type(ev, json_type_object))
        return pa_errf(errbuf, errlen, PA_E_JOB, _("%s: not an object"), name);
    json_object_object_foreach(ev, key, val)
    {
        int r = job_event_member(e, key, val, name, &have, errbuf, errlen);

        if (r < 0)
            return r;
    }
    if (have != 3)
        return pa_errf(errbuf, errlen, PA_E_JOB, _("%s: \"at\" or \"state\" missing"), name);
    return 0;
}

static int job_history_from_json(struct job *j, json_object *arr, char *errbuf, size_t errlen)
{
    size_t n;

    if (!json_object_is_type(arr, json_type_array))
        return pa_errf(errbuf, errlen, PA_E_JOB, _("history: not an array"));
    n = json_object_array_length(arr);
    if (n > JOB_MAX_HISTORY)
        return pa_errf(errbuf, errlen, PA_E_JOB, _("history: more than %d events"),
                       JOB_MAX_HISTORY);
    job_history_clear(j); /* a duplicate "history" key replaces the earlier array */
    if (n == 0)
        return 0;
    j->history = calloc(n, sizeof(*j->history));
    if (!j->history)
        return PA_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        int r;

        j->nhistory = i + 1; /* so job_free sees the event's note */
        r = job_event_from_json(&j->history[i], json_object_array_get_idx(arr, i), i, errbuf,
                                errlen);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Whether a member name is short and printable enough to quote in a message. */
static bool job_name_quotable(const char *s)
{
    size_t n = 0;

    for (; *s; s++, n++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f || *s == '"' || n >= 40)
            return false;
    return true;
}

/*
 * The JSON value in buf: at most JOB_MAX_FILE bytes, no NUL byte, strict JSON nested at most
 * JOB_MAX_DEPTH deep, nothing after it but white space, and an object.
 */
static int job_parse_object(const char *buf, size_t len, json_object **ret, char *errbuf,
                            size_t errlen)
{
    const struct pjson_opts o = {JOB_MAX_FILE, JOB_MAX_DEPTH, PJSON_OBJECT, PA_E_JOB};
    struct pjson_err e;
    int r = pjson_parse(buf, len, &o, ret, &e);

    if (r < 0 && r != PA_E_NOMEM)
        pjson_explain(&e, NULL, JOB_MAX_FILE, errbuf, errlen);
    return r;
}

/* Which members job_parse has seen. */
struct job_seen {
    bool format;
    bool field[JOB_NFIELDS];
};

/* "format": the one this code reads. */
static int job_format_from_json(json_object *v, char *errbuf, size_t errlen)
{
    int64_t x;
    int r = job_json_int(v, INT64_MIN, INT64_MAX, &x, errbuf, errlen, "format");

    if (r < 0)
        return r;
    if (x != JOB_FORMAT)
        return pa_errf(errbuf, errlen, PA_E_JOB, _("format %lld is not supported (only %d)"),
                       (long long)x, JOB_FORMAT);
    return 0;
}

/* One member of the record's object. */
static int job_member_from_json(struct job *j, const char *key, json_object *val,
                                struct job_seen *seen, char *errbuf, size_t errlen)
{
    size_t i;
    int r;

    if (strcmp(key, "format") == 0) {
        r = job_format_from_json(val, errbuf, errlen);
        seen->format = r == 0;
        return r;
    }
    if (strcmp(key, "history") == 0) /* optional: a job without history is still a job */
        return job_history_from_json(j, val, errbuf, errlen);
    for (i = 0; i < JOB_NFIELDS; i++)
        if (strcmp(key, job_fields[i].name) == 0)
            break;
    if (i == JOB_NFIELDS) {
        if (job_name_quotable(key))
            return pa_errf(errbuf, errlen, PA_E_JOB, _("unknown member \"%s\""), key);
        return pa_errf(errbuf, errlen, PA_E_JOB, _("unknown member"));
    }
    r = job_field_from_json(j, &job_fields[i], val, errbuf, errlen);
    seen->field[i] = r == 0;
    return r;
}

/* Whether "format" and every required member were there. */
static int job_check_complete(const struct job_seen *seen, char *errbuf, size_t errlen)
{
    if (!seen->format)
        return pa_errf(errbuf, errlen, PA_E_JOB, _("\"format\" missing"));
    for (size_t i = 0; i < JOB_NFIELDS; i++)
        if (job_fields[i].required && !seen->field[i])
            return pa_errf(errbuf, errlen, PA_E_JOB, _("\"%s\" missing"), job_fields[i].name);
    return 0;
}

/*
 * Parse a job file's bytes. On success *ret is a new job (job_free); on failure PA_E_JOB (or
 * PA_E_NOMEM) and errbuf says what is wrong, without quoting values.
 */
int job_parse(const char *buf, size_t len, struct job **ret, char *errbuf, size_t errlen)
{
    json_object *root = NULL;
    struct job *j = NULL;
    struct job_seen seen = {0};
    int r = job_parse_object(buf, len, &root, errbuf, errlen);

    if (r < 0)
        goto out;
    r = PA_E_NOMEM;
    j = calloc(1, sizeof(*j));
    if (!j)
        goto out;
    json_object_object_foreach(root, key, val)
    {
        r = job_member_from_json(j, key, val, &seen, errbuf, errlen);
        if (r < 0)
            goto out;
    }
    r = job_check_complete(&seen, errbuf, errlen);
    if (r == 0)
        r = job_check(j, errbuf, errlen);
    if (r < 0)
        goto out;
    *ret = j;
    j = NULL;
out:
    job_free(j);
    json_object_put(root);
    return r;
}
