/* SPDX-License-Identifier: Apache-2.0 */
/*
 * job_internal.h - what the job module's files share and nothing else includes: the limits of
 * the record format, the message helper, and the checks one file makes for another.
 *
 *   job.c        the record in memory: create, free, transition, notes, setters, history
 *   job_state.c  the state machine: names, terminal/cancelable, allowed moves
 *   job_format.c the file format: JSON <-> struct job, strict checks of every field
 *   job_store.c  STATE_DIR/jobs: directories, save, load, list, corrupt records, locks
 */
#ifndef PKIO_JOB_INTERNAL_H
#define PKIO_JOB_INTERNAL_H

#include "job.h"

#include <stdbool.h>
#include <stddef.h>

#define JOB_MAX_FILE    (4 * 1024 * 1024)
#define JOB_MAX_HISTORY 1000
#define JOB_MAX_LINE    1024 /* a note or last_error, in bytes */
#define JOB_ID_LEN      32

/* Whether s is all hex digits (lowercase only when lower_only). */
bool job_is_hex(const char *s, bool lower_only);
/* Whether id is exactly JOB_ID_LEN lowercase hex digits. */
bool job_id_valid(const char *id);

/* Free every history event and the array; j has no history after. */
void job_history_clear(struct job *j);

/* Whether s is one of the states (not JOB_STATE__MAX, not out of the enum). */
bool job_state_valid(enum job_state s);
/* Whether the state machine allows from -> to (job_state.c). */
bool job_transition_allowed(enum job_state from, enum job_state to);

/* Whether j satisfies every rule of the file format (PA_E_JOB and a message if not). */
int job_check(const struct job *j, char *errbuf, size_t errlen);

#endif
