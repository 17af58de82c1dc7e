/* SPDX-License-Identifier: Apache-2.0 */
/*
 * job.c - enrollment job records (job.h): the state machine's allowed moves, and one JSON file
 * per job in STATE_DIR/jobs/ID.json.
 *
 * The file format ("format": 1) is one JSON object; every member is listed in job_fields[] with
 * its type and bound. Unknown members, wrong types, out-of-range numbers, over-long strings and
 * unknown state names are refused, so a struct job built by job_parse always satisfies
 * job_check, and job_save refuses (PA_E_INTERNAL) to write a struct that does not: what we write
 * we can always read back.
 *
 * Allowed transitions (job_transition):
 *   - forward: new -> key_ready -> csr_ready -> ordering -> ordered -> issued -> installed -> done;
 *   - any non-terminal state -> failed or canceled;
 *   - failed -> any non-terminal state (resume once the cause is fixed; history keeps the
 *     failure);
 *   - nothing else: no move to the same state (use job_note for "still waiting"), no way out of
 *     done or canceled.
 *
 * History: every transition and note appends {at, state, note}. A job keeps at most
 * JOB_MAX_HISTORY events: when full, the oldest event after the first ("created") is dropped.
 */
#include "job.h"

#include "fsutil.h"
#include "i18n.h"
#include "log.h"
#include "pa_err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#define JOB_FORMAT      1
#define JOB_MAX_FILE    (4 * 1024 * 1024)
#define JOB_MAX_DEPTH   8
#define JOB_MAX_HISTORY 1000
#define JOB_MAX_LINE    1024         /* a note or last_error, in bytes */
#define JOB_MAX_TIME    253402300799 /* 9999-12-31T23:59:59Z */
#define JOB_MAX_POLL_S  31536000.0   /* one year */
#define JOB_ID_LEN      32
#define JOB_PREFIX_MIN  6
#define JOB_JSON_FLAGS                                                                             \
    (JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE)

/* ---------------------------------------------------------------------------------------- */
/* States and transitions                                                                   */

static const char *const job_state_names[JOB_STATE__MAX] = {
    [JOB_NEW] = "new",
    [JOB_KEY_READY] = "key_ready",
    [JOB_CSR_READY] = "csr_ready",
    [JOB_ORDERING] = "ordering",
    [JOB_ORDERED] = "ordered",
    [JOB_ISSUED] = "issued",
    [JOB_INSTALLED] = "installed",
    [JOB_DONE] = "done",
    [JOB_FAILED] = "failed",
    [JOB_CANCELED] = "canceled",
};

const char *job_state_name(enum job_state s)
{
    if ((int)s < 0 || s >= JOB_STATE__MAX)
        return "invalid";
    return job_state_names[s];
}

int job_state_parse(const char *name, enum job_state *ret)
{
    if (!name)
        return PA_E_JOB;
    for (int i = 0; i < JOB_STATE__MAX; i++) {
        if (strcmp(job_state_names[i], name) == 0) {
            *ret = (enum job_state)i;
            return 0;
        }
    }
    return PA_E_JOB;
}

bool job_state_terminal(enum job_state s)
{
    return s == JOB_DONE || s == JOB_FAILED || s == JOB_CANCELED;
}

static bool job_state_valid(enum job_state s)
{
    return (int)s >= 0 && s < JOB_STATE__MAX;
}

/* The one forward step out of each state (JOB_STATE__MAX: none). */
static enum job_state job_next_state(enum job_state s)
{
    switch (s) {
    case JOB_NEW:
        return JOB_KEY_READY;
    case JOB_KEY_READY:
        return JOB_CSR_READY;
    case JOB_CSR_READY:
        return JOB_ORDERING;
    case JOB_ORDERING:
        return JOB_ORDERED;
    case JOB_ORDERED:
        return JOB_ISSUED;
    case JOB_ISSUED:
        return JOB_INSTALLED;
    case JOB_INSTALLED:
        return JOB_DONE;
    default:
        return JOB_STATE__MAX;
    }
}

/* Whether the state machine allows from -> to (see the top of this file). */
static bool job_transition_allowed(enum job_state from, enum job_state to)
{
    if (!job_state_valid(from) || !job_state_valid(to) || from == to)
        return false;
    if (to == JOB_CANCELED) /* a failed job is canceled to clean up after it */
        return !job_state_terminal(from) || from == JOB_FAILED;
    if (to == JOB_FAILED)
        return !job_state_terminal(from);
    if (from == JOB_FAILED)
        return !job_state_terminal(to);
    return job_next_state(from) == to;
}

/* ---------------------------------------------------------------------------------------- */
/* Small helpers                                                                            */

__attribute__((format(printf, 3, 4))) static void job_msg(char *errbuf, size_t errlen,
                                                          const char *fmt, ...)
{
    va_list ap;

    if (!errbuf || !errlen)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

static bool job_is_hex(const char *s, bool lower_only)
{
    for (; *s; s++) {
        if (*s >= '0' && *s <= '9')
            continue;
        if (*s >= 'a' && *s <= 'f')
            continue;
        if (!lower_only && *s >= 'A' && *s <= 'F')
            continue;
        return false;
    }
    return true;
}

static bool job_id_valid(const char *id)
{
    return strlen(id) == JOB_ID_LEN && job_is_hex(id, true);
}

/*
 * Make s one line of at most max bytes in place: control characters become spaces, and a cut
 * never splits a UTF-8 sequence.
 */
static void job_one_line(char *s, size_t max)
{
    size_t len = strlen(s);

    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            s[i] = ' ';
    if (len <= max)
        return;
    len = max;
    while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
        len--;
    s[len] = '\0';
}

/* A malloc'd one-line copy of the formatted note (NULL fmt: *ret = NULL). */
__attribute__((format(printf, 2, 0))) static int job_format_note(char **ret, const char *fmt,
                                                                 va_list ap)
{
    char *s = NULL;

    if (!fmt) {
        *ret = NULL;
        return 0;
    }
    if (vasprintf(&s, fmt, ap) < 0)
        return PA_E_NOMEM;
    job_one_line(s, JOB_MAX_LINE);
    *ret = s;
    return 0;
}

/* Append an event (taking ownership of note, also on failure). */
static int job_add_event(struct job *j, time_t at, enum job_state state, char *note)
{
    struct job_event *h;

    if (j->nhistory >= JOB_MAX_HISTORY) {
        /* keep the first event, drop the oldest after it */
        free(j->history[1].note);
        memmove(&j->history[1], &j->history[2], (j->nhistory - 2) * sizeof(*j->history));
        j->nhistory--;
    }
    h = realloc(j->history, (j->nhistory + 1) * sizeof(*j->history));
    if (!h) {
        free(note);
        return PA_E_NOMEM;
    }
    j->history = h;
    j->history[j->nhistory].at = at;
    j->history[j->nhistory].state = state;
    j->history[j->nhistory].note = note;
    j->nhistory++;
    return 0;
}

/* STATE_DIR/jobs/NAME (malloc'd; NULL when out of memory). */
static char *job_path(const char *state_dir, const char *name)
{
    char *p = NULL;

    if (asprintf(&p, "%s/jobs/%s", state_dir, name) < 0)
        return NULL;
    return p;
}

/* ---------------------------------------------------------------------------------------- */
/* Life cycle                                                                               */

int job_new(struct job **ret)
{
    unsigned char rnd[JOB_ID_LEN / 2];
    struct job *j = NULL;
    size_t got = 0;
    int r = PA_E_NOMEM;

    j = calloc(1, sizeof(*j));
    if (!j)
        goto out;
    while (got < sizeof(rnd)) {
        ssize_t n = getrandom(rnd + got, sizeof(rnd) - got, 0);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r = PA_E_INTERNAL;
            goto out;
        }
        got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof(rnd); i++)
        (void)snprintf(j->id + 2 * i, 3, "%02x", rnd[i]);
    j->state = JOB_NEW;
    j->created = j->updated = time(NULL);
    r = job_add_event(j, j->created, JOB_NEW, strdup("created"));
    if (r < 0)
        goto out;
    *ret = j;
    j = NULL;
out:
    job_free(j);
    return r;
}

void job_free(struct job *j)
{
    if (!j)
        return;
    free(j->csr_pem);
    free(j->product);
    free(j->request_path);
    free(j->cert_pem);
    free(j->module_path);
    free(j->custody);
    free(j->last_error);
    free(j->audit_pending);
    for (size_t i = 0; i < j->nhistory; i++)
        free(j->history[i].note);
    free(j->history);
    free(j);
}

int job_transition(struct job *j, enum job_state to, const char *fmt, ...)
{
    char *note = NULL;
    va_list ap;
    int r;

    if (!j || !job_transition_allowed(j->state, to)) {
        log_debug("job: refused transition %s -> %s", j ? job_state_name(j->state) : "?",
                  job_state_name(to));
        return PA_E_INTERNAL;
    }
    va_start(ap, fmt);
    r = job_format_note(&note, fmt, ap);
    va_end(ap);
    if (r < 0)
        return r;
    r = job_add_event(j, time(NULL), to, note);
    if (r < 0)
        return r;
    j->state = to;
    return 0;
}

int job_note(struct job *j, const char *fmt, ...)
{
    char *note = NULL;
    va_list ap;
    int r;

    if (!j)
        return PA_E_INTERNAL;
    va_start(ap, fmt);
    r = job_format_note(&note, fmt, ap);
    va_end(ap);
    if (r < 0)
        return r;
    return job_add_event(j, time(NULL), j->state, note);
}

int job_set_error(struct job *j, const char *msg)
{
    char *copy = NULL;

    if (!j)
        return PA_E_INTERNAL;
    if (msg) {
        copy = strdup(msg);
        if (!copy)
            return PA_E_NOMEM;
        job_one_line(copy, JOB_MAX_LINE);
    }
    free(j->last_error);
    j->last_error = copy;
    return 0;
}

int job_set_str(char **field, const char *value)
{
    char *copy = NULL;

    if (!field)
        return PA_E_INTERNAL;
    if (value) {
        copy = strdup(value);
        if (!copy)
            return PA_E_NOMEM;
    }
    free(*field);
    *field = copy;
    return 0;
}

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

/* Check one field of j against its rule; on failure write "NAME: why" to errbuf. */
static int job_check_field(const struct job *j, const struct job_field *f, char *errbuf,
                           size_t errlen)
{
    const char *p = (const char *)j + f->off;
    const char *s;
    size_t len;
    double d;
    long l;
    time_t t;

    switch (f->kind) {
    case JK_TEXT:
    case JK_ID:
    case JK_SHA256:
    case JK_HEX:
        len = strnlen(p, f->size);
        if (len >= f->size) {
            job_msg(errbuf, errlen, _("%s: longer than %zu bytes"), f->name, f->size - 1);
            return PA_E_JOB;
        }
        if (f->kind == JK_ID && !job_id_valid(p)) {
            job_msg(errbuf, errlen, _("%s: not %d lowercase hex digits"), f->name, JOB_ID_LEN);
            return PA_E_JOB;
        }
        if (f->kind == JK_SHA256 && len != 0 && (len != 64 || !job_is_hex(p, false))) {
            job_msg(errbuf, errlen, _("%s: not a SHA-256 in hex"), f->name);
            return PA_E_JOB;
        }
        if (f->kind == JK_HEX && (len % 2 != 0 || !job_is_hex(p, false))) {
            job_msg(errbuf, errlen, _("%s: not an even number of hex digits"), f->name);
            return PA_E_JOB;
        }
        return 0;
    case JK_PTEXT:
        memcpy(&s, p, sizeof(s));
        if (s && strlen(s) > f->size) {
            job_msg(errbuf, errlen, _("%s: longer than %zu bytes"), f->name, f->size);
            return PA_E_JOB;
        }
        return 0;
    case JK_TIME:
        memcpy(&t, p, sizeof(t));
        if (t < 0 || t > (time_t)JOB_MAX_TIME) {
            job_msg(errbuf, errlen, _("%s: time out of range"), f->name);
            return PA_E_JOB;
        }
        return 0;
    case JK_LONG:
        memcpy(&l, p, sizeof(l));
        if (l < 0 || l == LONG_MAX) {
            job_msg(errbuf, errlen, _("%s: out of range"), f->name);
            return PA_E_JOB;
        }
        return 0;
    case JK_BOOL:
        return 0;
    case JK_SECS:
        memcpy(&d, p, sizeof(d));
        if (!isfinite(d) || d < 0 || d > JOB_MAX_POLL_S) {
            job_msg(errbuf, errlen, _("%s: out of range"), f->name);
            return PA_E_JOB;
        }
        return 0;
    case JK_STATE:
        if (!job_state_valid(j->state)) {
            job_msg(errbuf, errlen, _("%s: invalid state"), f->name);
            return PA_E_JOB;
        }
        return 0;
    }
    return PA_E_INTERNAL;
}

/* Whether j satisfies every rule of the file format (PA_E_JOB and a message if not). */
static int job_check(const struct job *j, char *errbuf, size_t errlen)
{
    int r;

    for (size_t i = 0; i < JOB_NFIELDS; i++) {
        r = job_check_field(j, &job_fields[i], errbuf, errlen);
        if (r < 0)
            return r;
    }
    if (j->nhistory > JOB_MAX_HISTORY) {
        job_msg(errbuf, errlen, _("history: more than %d events"), JOB_MAX_HISTORY);
        return PA_E_JOB;
    }
    if (j->nhistory && !j->history) {
        job_msg(errbuf, errlen, _("history: missing"));
        return PA_E_JOB;
    }
    for (size_t i = 0; i < j->nhistory; i++) {
        const struct job_event *e = &j->history[i];

        if (e->at < 0 || e->at > (time_t)JOB_MAX_TIME || !job_state_valid(e->state) ||
            (e->note && strlen(e->note) > JOB_MAX_LINE)) {
            job_msg(errbuf, errlen, _("history[%zu]: invalid event"), i);
            return PA_E_JOB;
        }
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

/* A JSON string's bytes, refusing embedded NULs and more than max bytes. */
static int job_json_str(json_object *v, size_t max, const char **ret, char *errbuf, size_t errlen,
                        const char *name)
{
    const char *s;
    int len;

    if (!json_object_is_type(v, json_type_string)) {
        job_msg(errbuf, errlen, _("%s: not a string"), name);
        return PA_E_JOB;
    }
    s = json_object_get_string(v);
    len = json_object_get_string_len(v);
    if (len < 0 || strlen(s) != (size_t)len) {
        job_msg(errbuf, errlen, _("%s: contains a NUL character"), name);
        return PA_E_JOB;
    }
    if ((size_t)len > max) {
        job_msg(errbuf, errlen, _("%s: longer than %zu bytes"), name, max);
        return PA_E_JOB;
    }
    *ret = s;
    return 0;
}

/* A JSON integer in [min, max]. */
static int job_json_int(json_object *v, int64_t min, int64_t max, int64_t *ret, char *errbuf,
                        size_t errlen, const char *name)
{
    int64_t x;

    if (!json_object_is_type(v, json_type_int)) {
        job_msg(errbuf, errlen, _("%s: not an integer"), name);
        return PA_E_JOB;
    }
    errno = 0;
    x = json_object_get_int64(v);
    if (errno != 0 || x < min || x > max || x == INT64_MAX) {
        job_msg(errbuf, errlen, _("%s: out of range"), name);
        return PA_E_JOB;
    }
    *ret = x;
    return 0;
}

/* Store one member's value into j according to f (types and bounds; job_check does formats). */
static int job_field_from_json(struct job *j, const struct job_field *f, json_object *v,
                               char *errbuf, size_t errlen)
{
    char *p = (char *)j + f->off;
    const char *s = NULL;
    char *copy, *old;
    int64_t x;
    double d;
    long l;
    time_t t;
    bool b;
    int r;

    switch (f->kind) {
    case JK_TEXT:
    case JK_ID:
    case JK_SHA256:
    case JK_HEX:
        r = job_json_str(v, f->size - 1, &s, errbuf, errlen, f->name);
        if (r < 0)
            return r;
        memcpy(p, s, strlen(s) + 1);
        return 0;
    case JK_PTEXT:
        if (json_object_is_type(v, json_type_null))
            return 0;
        r = job_json_str(v, f->size, &s, errbuf, errlen, f->name);
        if (r < 0)
            return r;
        copy = strdup(s);
        if (!copy)
            return PA_E_NOMEM;
        memcpy(&old, p, sizeof(old));
        free(old); /* a duplicate key replaces the earlier value */
        memcpy(p, &copy, sizeof(copy));
        return 0;
    case JK_TIME:
        r = job_json_int(v, 0, JOB_MAX_TIME, &x, errbuf, errlen, f->name);
        if (r < 0)
            return r;
        t = (time_t)x;
        memcpy(p, &t, sizeof(t));
        return 0;
    case JK_LONG:
        /* json-c saturates larger numbers to INT64_MAX: that value itself is refused */
        r = job_json_int(v, 0, (int64_t)LONG_MAX - 1, &x, errbuf, errlen, f->name);
        if (r < 0)
            return r;
        l = (long)x;
        memcpy(p, &l, sizeof(l));
        return 0;
    case JK_BOOL:
        if (!json_object_is_type(v, json_type_boolean)) {
            job_msg(errbuf, errlen, _("%s: not true or false"), f->name);
            return PA_E_JOB;
        }
        b = json_object_get_boolean(v);
        memcpy(p, &b, sizeof(b));
        return 0;
    case JK_SECS:
        if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)) {
            job_msg(errbuf, errlen, _("%s: not a number"), f->name);
            return PA_E_JOB;
        }
        d = json_object_get_double(v);
        if (!isfinite(d) || d < 0 || d > JOB_MAX_POLL_S) {
            job_msg(errbuf, errlen, _("%s: out of range"), f->name);
            return PA_E_JOB;
        }
        memcpy(p, &d, sizeof(d));
        return 0;
    case JK_STATE:
        r = job_json_str(v, 32, &s, errbuf, errlen, f->name);
        if (r < 0)
            return r;
        if (job_state_parse(s, &j->state) < 0) {
            job_msg(errbuf, errlen, _("%s: unknown state"), f->name);
            return PA_E_JOB;
        }
        return 0;
    }
    return PA_E_INTERNAL;
}

static int job_history_from_json(struct job *j, json_object *arr, char *errbuf, size_t errlen)
{
    size_t n;

    if (!json_object_is_type(arr, json_type_array)) {
        job_msg(errbuf, errlen, _("history: not an array"));
        return PA_E_JOB;
    }
    n = json_object_array_length(arr);
    if (n > JOB_MAX_HISTORY) {
        job_msg(errbuf, errlen, _("history: more than %d events"), JOB_MAX_HISTORY);
        return PA_E_JOB;
    }
    /* a duplicate "history" key replaces the earlier array */
    for (size_t i = 0; i < j->nhistory; i++)
        free(j->history[i].note);
    free(j->history);
    j->history = NULL;
    j->nhistory = 0;
    if (n == 0)
        return 0;
    j->history = calloc(n, sizeof(*j->history));
    if (!j->history)
        return PA_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        json_object *ev = json_object_array_get_idx(arr, i);
        struct job_event *e = &j->history[i];
        bool have_at = false, have_state = false;
        char name[32];
        int64_t x;
        int r;

        (void)snprintf(name, sizeof(name), "history[%zu]", i);
        if (!json_object_is_type(ev, json_type_object)) {
            job_msg(errbuf, errlen, _("%s: not an object"), name);
            return PA_E_JOB;
        }
        j->nhistory = i + 1; /* so job_free sees e->note */
        json_object_object_foreach(ev, key, val)
        {
            const char *s = NULL;

            if (strcmp(key, "at") == 0) {
                r = job_json_int(val, 0, JOB_MAX_TIME, &x, errbuf, errlen, name);
                if (r < 0)
                    return r;
                e->at = (time_t)x;
                have_at = true;
            } else if (strcmp(key, "state") == 0) {
                r = job_json_str(val, 32, &s, errbuf, errlen, name);
                if (r < 0)
                    return r;
                if (job_state_parse(s, &e->state) < 0) {
                    job_msg(errbuf, errlen, _("%s: unknown state"), name);
                    return PA_E_JOB;
                }
                have_state = true;
            } else if (strcmp(key, "note") == 0) {
                free(e->note);
                e->note = NULL;
                if (json_object_is_type(val, json_type_null))
                    continue;
                r = job_json_str(val, JOB_MAX_LINE, &s, errbuf, errlen, name);
                if (r < 0)
                    return r;
                e->note = strdup(s);
                if (!e->note)
                    return PA_E_NOMEM;
            } else {
                job_msg(errbuf, errlen, _("%s: unknown member"), name);
                return PA_E_JOB;
            }
        }
        if (!have_at || !have_state) {
            job_msg(errbuf, errlen, _("%s: \"at\" or \"state\" missing"), name);
            return PA_E_JOB;
        }
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
 * Parse a job file's bytes. On success *ret is a new job (job_free); on failure PA_E_JOB (or
 * PA_E_NOMEM) and errbuf says what is wrong, without quoting values.
 */
int job_parse(const char *buf, size_t len, struct job **ret, char *errbuf, size_t errlen)
{
    struct json_tokener *tok = NULL;
    json_object *root = NULL;
    struct job *j = NULL;
    bool seen[JOB_NFIELDS] = {false};
    bool have_format = false, have_history = false;
    enum json_tokener_error jerr;
    size_t end;
    int64_t x;
    int r = PA_E_JOB;

    if (!buf) {
        job_msg(errbuf, errlen, _("no data"));
        goto out;
    }
    if (len > JOB_MAX_FILE) {
        job_msg(errbuf, errlen, _("larger than %d bytes"), JOB_MAX_FILE);
        goto out;
    }
    if (memchr(buf, '\0', len)) {
        job_msg(errbuf, errlen, _("contains a NUL byte"));
        goto out;
    }
    tok = json_tokener_new_ex(JOB_MAX_DEPTH);
    if (!tok) {
        r = PA_E_NOMEM;
        goto out;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    root = json_tokener_parse_ex(tok, buf, (int)len);
    jerr = json_tokener_get_error(tok);
    if (jerr != json_tokener_success) {
        job_msg(errbuf, errlen, _("invalid JSON: %s"),
                jerr == json_tokener_continue ? _("unexpected end of input")
                                              : json_tokener_error_desc(jerr));
        goto out;
    }
    end = json_tokener_get_parse_end(tok);
    while (end < len &&
           (buf[end] == ' ' || buf[end] == '\t' || buf[end] == '\n' || buf[end] == '\r'))
        end++;
    if (end < len) {
        job_msg(errbuf, errlen, _("invalid JSON: data after the end"));
        goto out;
    }
    if (!json_object_is_type(root, json_type_object)) {
        job_msg(errbuf, errlen, _("not a JSON object"));
        goto out;
    }
    j = calloc(1, sizeof(*j));
    if (!j) {
        r = PA_E_NOMEM;
        goto out;
    }
    json_object_object_foreach(root, key, val)
    {
        size_t i;

        if (strcmp(key, "format") == 0) {
            r = job_json_int(val, INT64_MIN, INT64_MAX, &x, errbuf, errlen, key);
            if (r < 0)
                goto out;
            if (x != JOB_FORMAT) {
                job_msg(errbuf, errlen, _("format %lld is not supported (only %d)"), (long long)x,
                        JOB_FORMAT);
                r = PA_E_JOB;
                goto out;
            }
            have_format = true;
            continue;
        }
        if (strcmp(key, "history") == 0) {
            r = job_history_from_json(j, val, errbuf, errlen);
            if (r < 0)
                goto out;
            have_history = true;
            continue;
        }
        for (i = 0; i < JOB_NFIELDS; i++)
            if (strcmp(key, job_fields[i].name) == 0)
                break;
        if (i == JOB_NFIELDS) {
            if (job_name_quotable(key))
                job_msg(errbuf, errlen, _("unknown member \"%s\""), key);
            else
                job_msg(errbuf, errlen, _("unknown member"));
            r = PA_E_JOB;
            goto out;
        }
        r = job_field_from_json(j, &job_fields[i], val, errbuf, errlen);
        if (r < 0)
            goto out;
        seen[i] = true;
    }
    r = PA_E_JOB;
    if (!have_format) {
        job_msg(errbuf, errlen, _("\"format\" missing"));
        goto out;
    }
    for (size_t i = 0; i < JOB_NFIELDS; i++) {
        if (job_fields[i].required && !seen[i]) {
            job_msg(errbuf, errlen, _("\"%s\" missing"), job_fields[i].name);
            goto out;
        }
    }
    (void)have_history; /* optional: a job without history is still a job */
    r = job_check(j, errbuf, errlen);
    if (r < 0)
        goto out;
    *ret = j;
    j = NULL;
    r = 0;
out:
    job_free(j);
    json_object_put(root);
    if (tok)
        json_tokener_free(tok);
    return r;
}

/* ---------------------------------------------------------------------------------------- */
/* Files                                                                                    */

/* stat path and refuse what another user could change. */
static int job_dir_check(const char *path, char *errbuf, size_t errlen)
{
    struct stat st;

    if (stat(path, &st) < 0) {
        job_msg(errbuf, errlen, "%s: %s", path, strerror(errno));
        return PA_E_IO;
    }
    if (!S_ISDIR(st.st_mode)) {
        job_msg(errbuf, errlen, _("%s: not a directory"), path);
        return PA_E_CONFIG;
    }
    if (st.st_uid != geteuid()) {
        job_msg(errbuf, errlen, _("%s: owned by uid %lu, not by the current user (uid %lu)"), path,
                (unsigned long)st.st_uid, (unsigned long)geteuid());
        return PA_E_CONFIG;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        job_msg(errbuf, errlen, _("%s: group or world writable (mode %04o)"), path,
                (unsigned)(st.st_mode & 07777));
        return PA_E_CONFIG;
    }
    return 0;
}

/* mkdir path (0700) unless it exists; with parents when make_parents. */
static int job_mkdir(char *path, bool make_parents, char *errbuf, size_t errlen)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST)
        return 0;
    if (errno == ENOENT && make_parents) {
        char *slash = strrchr(path, '/');
        int r;

        if (slash && slash != path) {
            *slash = '\0';
            r = job_mkdir(path, true, errbuf, errlen);
            *slash = '/';
            if (r < 0)
                return r;
            if (mkdir(path, 0700) == 0 || errno == EEXIST)
                return 0;
        }
    }
    job_msg(errbuf, errlen, _("cannot create %s: %s"), path, strerror(errno));
    return PA_E_IO;
}

/*
 * Create STATE_DIR (with parents) and STATE_DIR/jobs, mode 0700, when missing. PA_E_CONFIG when
 * either is not a directory, is not owned by the effective user, or is group/world writable;
 * PA_E_IO when it cannot be created.
 */
int job_dir_prepare(const char *state_dir, char *errbuf, size_t errlen)
{
    char *dir = NULL, *jobs = NULL;
    size_t len;
    int r = PA_E_NOMEM;

    if (!state_dir || !state_dir[0]) {
        job_msg(errbuf, errlen, _("no state directory"));
        return PA_E_CONFIG;
    }
    dir = strdup(state_dir);
    if (!dir)
        goto out;
    len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        dir[--len] = '\0';
    if (asprintf(&jobs, "%s/jobs", dir) < 0) {
        jobs = NULL;
        goto out;
    }
    r = job_mkdir(dir, true, errbuf, errlen);
    if (r < 0)
        goto out;
    r = job_dir_check(dir, errbuf, errlen);
    if (r < 0)
        goto out;
    r = job_mkdir(jobs, false, errbuf, errlen);
    if (r < 0)
        goto out;
    r = job_dir_check(jobs, errbuf, errlen);
out:
    free(dir);
    free(jobs);
    return r;
}

/* Check, stamp and write j atomically; on failure j->updated is unchanged. */
int job_save(const char *state_dir, struct job *j)
{
    char err[256], *json = NULL, *path = NULL, name[JOB_ID_LEN + 8];
    time_t old;
    int r;

    if (!state_dir || !j)
        return PA_E_INTERNAL;
    old = j->updated;
    j->updated = time(NULL);
    r = job_check(j, err, sizeof(err));
    if (r < 0) {
        log_debug("job: refusing to save an invalid job: %s", err);
        r = PA_E_INTERNAL;
        goto out;
    }
    r = PA_E_NOMEM;
    json = job_to_json(j);
    if (!json)
        goto out;
    (void)snprintf(name, sizeof(name), "%s.json", j->id);
    path = job_path(state_dir, name);
    if (!path)
        goto out;
    /* A record holds no secret: where jobs/ is shared with the officers' group (setgid, made so
     * by `pkio-agent watch`) they may read it (`status`, 0640); elsewhere it is 0600. */
    r = fs_write_atomic(path, json, strlen(json), fs_mode_in_dir(path, 0600, 0640));
    if (r < 0)
        log_debug("job: cannot write %s: %s", path, strerror(errno));
out:
    if (r < 0)
        j->updated = old;
    free(json);
    free(path);
    return r;
}

/* Whether name is "<32 lowercase hex>.json". */
static bool job_file_name(const char *name)
{
    return strlen(name) == JOB_ID_LEN + 5 && strcmp(name + JOB_ID_LEN, ".json") == 0 &&
           strspn(name, "0123456789abcdef") == JOB_ID_LEN;
}

/* Read and parse one job file (full id); the id inside must match the name. */
static int job_load_file(const char *state_dir, const char *id, struct job **ret, char *errbuf,
                         size_t errlen)
{
    char *path = NULL, *buf = NULL, name[JOB_ID_LEN + 8], err[256];
    struct job *j = NULL;
    size_t len = 0;
    int r = PA_E_NOMEM;

    (void)snprintf(name, sizeof(name), "%s.json", id);
    path = job_path(state_dir, name);
    if (!path)
        goto out;
    errno = 0;
    r = fs_read_file(path, JOB_MAX_FILE, &buf, &len);
    if (r < 0) {
        if (r == PA_E_IO && errno == 0) {
            job_msg(errbuf, errlen, _("%s: not a regular file"), path);
            r = PA_E_JOB;
        } else if (r == PA_E_IO && errno == ENOENT) {
            job_msg(errbuf, errlen, _("no job %s"), id);
            r = PA_E_JOB;
        } else if (r == PA_E_IO && errno == EFBIG) {
            job_msg(errbuf, errlen, _("%s: larger than %d bytes"), path, JOB_MAX_FILE);
            r = PA_E_JOB;
        } else if (r == PA_E_IO) {
            job_msg(errbuf, errlen, "%s: %s", path, strerror(errno));
        }
        goto out;
    }
    err[0] = '\0';
    r = job_parse(buf, len, &j, err, sizeof(err));
    if (r < 0) {
        job_msg(errbuf, errlen, "%s: %s", path, err);
        goto out;
    }
    if (strcmp(j->id, id) != 0) {
        job_msg(errbuf, errlen, _("%s: holds job %s"), path, j->id);
        r = PA_E_JOB;
        goto out;
    }
    *ret = j;
    j = NULL;
    r = 0;
out:
    job_free(j);
    free(buf);
    free(path);
    return r;
}

/*
 * Load a job by its id or a unique prefix (6 to 32 hex digits, any case). PA_E_JOB when no job
 * or several jobs match, or the file is corrupt (errbuf names the file).
 */
int job_load(const char *state_dir, const char *id, struct job **ret, char *errbuf, size_t errlen)
{
    char want[JOB_ID_LEN + 1], found[JOB_ID_LEN + 1] = "", *jobs = NULL;
    size_t len, nfound = 0;
    DIR *d = NULL;
    struct dirent *e;
    int r = PA_E_JOB;

    if (!state_dir || !id || !ret)
        return PA_E_INTERNAL;
    len = strlen(id);
    if (len < JOB_PREFIX_MIN || len > JOB_ID_LEN || !job_is_hex(id, false)) {
        job_msg(errbuf, errlen, _("not a job id (%d to %d hex digits)"), JOB_PREFIX_MIN,
                JOB_ID_LEN);
        return PA_E_JOB;
    }
    for (size_t i = 0; i <= len; i++)
        want[i] = (char)(id[i] >= 'A' && id[i] <= 'F' ? id[i] - 'A' + 'a' : id[i]);
    if (len == JOB_ID_LEN)
        return job_load_file(state_dir, want, ret, errbuf, errlen);

    r = PA_E_NOMEM;
    if (asprintf(&jobs, "%s/jobs", state_dir) < 0) {
        jobs = NULL;
        goto out;
    }
    d = opendir(jobs);
    if (!d) {
        if (errno == ENOENT) {
            job_msg(errbuf, errlen, _("no job %s"), want);
            r = PA_E_JOB;
        } else {
            job_msg(errbuf, errlen, "%s: %s", jobs, strerror(errno));
            r = PA_E_IO;
        }
        goto out;
    }
    while ((e = readdir(d)) != NULL) {
        if (!job_file_name(e->d_name) || strncmp(e->d_name, want, len) != 0)
            continue;
        nfound++;
        memcpy(found, e->d_name, JOB_ID_LEN);
        found[JOB_ID_LEN] = '\0';
    }
    if (nfound == 0) {
        job_msg(errbuf, errlen, _("no job %s"), want);
        r = PA_E_JOB;
        goto out;
    }
    if (nfound > 1) {
        job_msg(errbuf, errlen, _("%s: prefix matches several jobs"), want);
        r = PA_E_JOB;
        goto out;
    }
    r = job_load_file(state_dir, found, ret, errbuf, errlen);
out:
    if (d)
        closedir(d);
    free(jobs);
    return r;
}

static int job_cmp_age(const void *a, const void *b)
{
    const struct job *x = *(struct job *const *)a, *y = *(struct job *const *)b;

    if (x->created != y->created)
        return x->created < y->created ? -1 : 1;
    return strcmp(x->id, y->id);
}

/*
 * A record that does not parse: move it to ID.json.corrupt (never deleted: the officer reads it)
 * so that it blocks neither the other jobs nor the daemon, and say so in aside. A file that
 * vanished in between (never happens to job records, which are not removed) is just skipped.
 */
static void job_set_aside(const char *state_dir, const char *id, const char *why, char *aside,
                          size_t asidelen)
{
    char name[JOB_ID_LEN + 16], *from = NULL, *to = NULL;
    size_t used = strlen(aside);

    (void)snprintf(name, sizeof(name), "%s.json", id);
    from = job_path(state_dir, name);
    (void)snprintf(name, sizeof(name), "%s.json.corrupt", id);
    to = job_path(state_dir, name);
    if (from && to && access(from, F_OK) == 0) {
        bool moved = rename(from, to) == 0;

        const char *sep = used ? "; " : "";

        if (moved)
            (void)snprintf(aside + used, asidelen - used,
                           _("%sjob record %s is corrupt (%.160s); set aside as %s"), sep, id, why,
                           to);
        else
            (void)snprintf(aside + used, asidelen - used,
                           _("%sjob record %s is corrupt (%.160s); NOT set aside"), sep, id, why);
    }
    free(from);
    free(to);
}

/*
 * Every job in STATE_DIR/jobs, oldest (created) first, ties by id. Files other than ID.json
 * (locks, *.tmp.*, *.corrupt) are skipped. A corrupt job file is moved aside to ID.json.corrupt
 * and named in errbuf, and the listing goes on (returns 0): one bad file never blocks the other
 * jobs or the daemon, and nothing is deleted. A missing jobs directory means no jobs. *ret may be
 * NULL when *ret_n is 0; free with job_list_free.
 */
int job_list(const char *state_dir, struct job ***ret, size_t *ret_n, char *errbuf, size_t errlen)
{
    struct job **list = NULL, **nl;
    size_t n = 0, cap = 0;
    char *jobs = NULL, id[JOB_ID_LEN + 1], bad[512], aside[1024] = "";
    DIR *d = NULL;
    struct dirent *e;
    int r = PA_E_NOMEM;

    if (!state_dir || !ret || !ret_n)
        return PA_E_INTERNAL;
    if (asprintf(&jobs, "%s/jobs", state_dir) < 0) {
        jobs = NULL;
        goto out;
    }
    d = opendir(jobs);
    if (!d) {
        if (errno == ENOENT) {
            r = 0;
            goto done;
        }
        job_msg(errbuf, errlen, "%s: %s", jobs, strerror(errno));
        r = PA_E_IO;
        goto out;
    }
    for (;;) {
        errno = 0;
        e = readdir(d);
        if (!e) {
            if (errno != 0) {
                job_msg(errbuf, errlen, "%s: %s", jobs, strerror(errno));
                r = PA_E_IO;
                goto out;
            }
            break;
        }
        if (!job_file_name(e->d_name)) {
            if (e->d_name[0] != '.')
                log_debug("job: skipping %s/%s", jobs, e->d_name);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            nl = realloc(list, cap * sizeof(*list));
            if (!nl) {
                r = PA_E_NOMEM;
                goto out;
            }
            list = nl;
        }
        memcpy(id, e->d_name, JOB_ID_LEN);
        id[JOB_ID_LEN] = '\0';
        r = job_load_file(state_dir, id, &list[n], bad, sizeof(bad));
        if (r == PA_E_JOB) {
            job_set_aside(state_dir, id, bad, aside, sizeof(aside));
            continue;
        }
        if (r < 0) {
            job_msg(errbuf, errlen, "%s", bad);
            goto out;
        }
        n++;
    }
    job_msg(errbuf, errlen, "%s", aside);
    if (n > 1)
        qsort(list, n, sizeof(*list), job_cmp_age);
    r = 0;
done:
    *ret = list;
    *ret_n = n;
    list = NULL;
    n = 0;
out:
    job_list_free(list, n);
    if (d)
        closedir(d);
    free(jobs);
    return r;
}

void job_list_free(struct job **list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        job_free(list[i]);
    free(list);
}

/*
 * Open STATE_DIR/jobs/NAME (created 0600, never removed: removing a lock file races with another
 * process locking it) and flock it exclusively, waiting up to wait_s seconds (0: not at all).
 * PA_E_BUSY when another open file keeps holding it.
 */
static int job_lock_file(const char *state_dir, const char *name, double wait_s, int *ret_fd)
{
    char *path = job_path(state_dir, name);
    double waited = 0;
    int fd = -1, r = PA_E_NOMEM;

    if (!path)
        goto out;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (fd < 0) {
        log_debug("job: cannot open %s: %s", path, strerror(errno));
        r = PA_E_IO;
        goto out;
    }
    while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        struct timespec ts = {0, 100 * 1000 * 1000};

        if (errno != EWOULDBLOCK && errno != EINTR) {
            log_debug("job: cannot lock %s: %s", path, strerror(errno));
            r = PA_E_IO;
            goto out;
        }
        if (errno == EWOULDBLOCK && waited >= wait_s) {
            log_debug("job: %s is locked by another process", path);
            r = PA_E_BUSY;
            goto out;
        }
        if (errno == EWOULDBLOCK) {
            (void)nanosleep(&ts, NULL);
            waited += 0.1;
        }
    }
    *ret_fd = fd;
    fd = -1;
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    free(path);
    return r;
}

/* Lock STATE_DIR/jobs/ID.lock without waiting. PA_E_BUSY when another open file holds it. */
int job_lock(const char *state_dir, const char *id, int *ret_fd)
{
    char name[JOB_ID_LEN + 8];

    if (!state_dir || !id || !ret_fd || !job_id_valid(id))
        return PA_E_INTERNAL;
    (void)snprintf(name, sizeof(name), "%s.lock", id);
    return job_lock_file(state_dir, name, 0, ret_fd);
}

static uint64_t job_fnv1a(const char *s, uint64_t h)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

int job_token_lock(const char *state_dir, const char *serial, const char *label, double wait_s,
                   int *ret_fd)
{
    char name[64];

    if (!state_dir || !serial || !label || !ret_fd)
        return PA_E_INTERNAL;
    /* The file name only spreads tokens over lock files: a collision makes two tokens share a
     * lock (one waits), never lets two processes share one token. */
    (void)snprintf(name, sizeof(name), "token-%016llx%016llx.lock",
                   (unsigned long long)job_fnv1a(serial, 0xcbf29ce484222325ULL),
                   (unsigned long long)job_fnv1a(label, 0x84222325cbf29ce4ULL));
    return job_lock_file(state_dir, name, wait_s, ret_fd);
}

void job_unlock(int fd)
{
    if (fd >= 0)
        (void)close(fd); /* closing the last descriptor releases the flock */
}
