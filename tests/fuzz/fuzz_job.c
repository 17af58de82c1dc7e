/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_job.c - job_parse, job_to_json and the state machine (agent/core/job.c).
 *
 * Invariants beyond "no crash, no leak": only PA_E_JOB on bad input, with a NUL-terminated
 * message; an accepted job serialises, and the result parses again to the same JSON (what we
 * write we can read); a refused transition changes nothing, an allowed one appends one event.
 */
#include "fuzz.h"

#include <string.h>

#include "job.h"
#include "pa_err.h"

/* Serialise j, parse the result, and check both agree; returns the JSON (caller frees). */
static char *round_trip(const struct job *j)
{
    struct job *k = NULL;
    char err[256], *a, *b;

    a = job_to_json(j);
    FUZZ_CHECK(a != NULL);
    err[0] = '\0';
    FUZZ_CHECK(job_parse(a, strlen(a), &k, err, sizeof(err)) == 0);
    b = job_to_json(k);
    FUZZ_CHECK(b != NULL && strcmp(a, b) == 0);
    FUZZ_CHECK(strcmp(j->id, k->id) == 0 && j->state == k->state && j->nhistory == k->nhistory);
    free(b);
    job_free(k);
    return a;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct job *j = NULL;
    char err[256];
    int r;

    memset(err, 'x', sizeof(err));
    err[0] = '\0';
    r = job_parse((const char *)data, size, &j, err, sizeof(err));
    FUZZ_CHECK(r == 0 || r == PA_E_JOB);
    FUZZ_CHECK(strnlen(err, sizeof(err)) < sizeof(err));
    if (r != 0) {
        FUZZ_CHECK(j == NULL && err[0]);
        return 0;
    }
    FUZZ_CHECK(strlen(j->id) == 32 && job_state_name(j->state)[0]);
    free(round_trip(j));

    /* every move from the parsed state: refused ones change nothing */
    for (int s = 0; s <= JOB_STATE__MAX; s++) {
        enum job_state before = j->state;
        size_t n = j->nhistory;

        r = job_transition(j, (enum job_state)s, "fuzz %d", s);
        if (r == 0) {
            FUZZ_CHECK(j->state == (enum job_state)s && j->nhistory >= 1);
            FUZZ_CHECK(j->history[j->nhistory - 1].state == j->state);
            FUZZ_CHECK(n == 1000 ? j->nhistory == n : j->nhistory == n + 1);
        } else {
            FUZZ_CHECK(r == PA_E_INTERNAL && j->state == before && j->nhistory == n);
        }
    }
    FUZZ_CHECK(job_note(j, "%s", "note\nwith a newline") == 0);
    FUZZ_CHECK(strchr(j->history[j->nhistory - 1].note, '\n') == NULL);
    FUZZ_CHECK(job_set_error(j, "error\r\n") == 0);
    free(round_trip(j));
    job_free(j);
    return 0;
}
