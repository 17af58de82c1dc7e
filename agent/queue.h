/* SPDX-License-Identifier: Apache-2.0 */
/*
 * queue.h - the enrollment queue for hands-free stations: STATE_DIR/queue/ holds one entry per
 * request the officer added. An entry is bound to a token serial, or first-come for a blank
 * token. Taking an entry is an atomic rename into queue/taken/, so two tokens never take one.
 */
#ifndef PKIO_QUEUE_H
#define PKIO_QUEUE_H

#include <stddef.h>
#include <time.h>

struct queue_entry {
    char id[33];     /* random hex */
    char *request;   /* the queued copy of the request file (0600, in the queue dir) */
    char *serial;    /* NULL: first-come for a blank token */
    char *token_uri; /* NULL or a URI (may carry pin-source) */
    time_t created;
};

/* Create STATE_DIR/queue and queue/taken (0700) if missing. */
int queue_dir_prepare(const char *state_dir);

/*
 * Copy the request file into the queue (after the caller validated it) and add an entry.
 * ret_id (optional, 33 bytes) receives the entry id.
 */
int queue_add(const char *state_dir, const char *request, const char *serial, const char *token_uri,
              char *ret_id, char *errbuf, size_t errlen);

/* Entries waiting, oldest first (caller frees with queue_list_free). */
int queue_list(const char *state_dir, struct queue_entry **ret, size_t *ret_n);
void queue_list_free(struct queue_entry *v, size_t n);
void queue_entry_clear(struct queue_entry *e);

/*
 * Take the entry for this token: the oldest bound to serial, else (blank token) the oldest
 * unbound one. PA_E_TOKEN_NOT_FOUND when none. The entry moves to queue/taken/ atomically.
 */
int queue_take(const char *state_dir, const char *serial, struct queue_entry *ret);

/* Put a taken entry back (its enrollment never started, e.g. the PIN was refused). */
int queue_untake(const char *state_dir, const char *id);

#endif
