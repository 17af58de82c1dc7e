/* SPDX-License-Identifier: Apache-2.0 */
/*
 * job_state.c - the job state machine (job.h): the state names, which states are terminal and
 * which a job may be canceled in, and which moves job_transition allows.
 *
 * Allowed transitions:
 *   - forward: new -> key_ready -> csr_ready -> ordering -> ordered -> issued -> installed -> done;
 *   - any non-terminal state -> failed or canceled;
 *   - failed -> any non-terminal state (resume once the cause is fixed; history keeps the
 *     failure), or canceled;
 *   - nothing else: no move to the same state (use job_note for "still waiting"), no way out of
 *     done or canceled.
 */
#include "job.h"
#include "job_internal.h"

#include "pa_err.h"

#include <string.h>

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

bool job_state_is_terminal(enum job_state s)
{
    return s == JOB_DONE || s == JOB_FAILED || s == JOB_CANCELED;
}

bool job_state_is_cancelable(enum job_state s)
{
    switch (s) {
    case JOB_NEW:
    case JOB_KEY_READY:
    case JOB_CSR_READY:
    case JOB_ORDERING:
    case JOB_ORDERED:
    case JOB_FAILED:
        return true;
    default: /* issued, installed, done: a certificate exists; canceled: over */
        return false;
    }
}

bool job_state_valid(enum job_state s)
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

bool job_transition_allowed(enum job_state from, enum job_state to)
{
    if (!job_state_valid(from) || !job_state_valid(to) || from == to)
        return false;
    if (to == JOB_CANCELED) /* a failed job is canceled to clean up after it */
        return !job_state_is_terminal(from) || from == JOB_FAILED;
    if (to == JOB_FAILED)
        return !job_state_is_terminal(from);
    if (from == JOB_FAILED)
        return !job_state_is_terminal(to);
    return job_next_state(from) == to;
}
