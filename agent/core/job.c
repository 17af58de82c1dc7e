/* SPDX-License-Identifier: Apache-2.0 */
/*
 * job.c - enrollment job records in memory (job.h): creating and freeing a job, moving it
 * through the state machine (the moves themselves are job_state.c's), notes, the setters, and
 * the small checks the other job_*.c files share (job_internal.h). The file format is
 * job_format.c's, the files and locks job_store.c's.
 *
 * History: every transition and note appends {at, state, note}. A job keeps at most
 * JOB_MAX_HISTORY events: when full, the oldest event after the first ("created") is dropped.
 */
#include "job.h"
#include "job_internal.h"

#include "log.h"
#include "pa_err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* ---------------------------------------------------------------------------------------- */
/* Shared helpers (job_internal.h)                                                          */

bool job_is_hex(const char *s, bool lower_only)
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

bool job_id_valid(const char *id)
{
    return strlen(id) == JOB_ID_LEN && job_is_hex(id, true);
}

void job_history_clear(struct job *j)
{
    for (size_t i = 0; i < j->nhistory; i++)
        free(j->history[i].note);
    free(j->history);
    j->history = NULL;
    j->nhistory = 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Notes and history                                                                        */

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
    job_history_clear(j);
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
