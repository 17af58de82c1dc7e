/* SPDX-License-Identifier: Apache-2.0 */
/*
 * queue.h - the enrollment queue for hands-free stations: STATE_DIR/queue/ holds one entry per
 * request the officer added. An entry is bound to a token - by serial, or by the token
 * attributes of a PKCS#11 URI (label, serial, manufacturer, model) - and then goes only to a
 * token that matches every attribute it names; an unbound entry goes only to a blank token
 * (tok_contents_blank). Taking an entry is an atomic rename into queue/taken/, so two tokens
 * never take one.
 */
#ifndef PKIO_QUEUE_H
#define PKIO_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct tok_info;

/* The token an entry is bound to: each non-NULL attribute must match exactly. All NULL: unbound. */
struct queue_bind {
    char *serial;
    char *label; /* the URI's "token" attribute */
    char *manufacturer;
    char *model;
};

struct queue_entry {
    char id[33];            /* random hex */
    char *request;          /* the queued copy of the request file (0600, in the queue dir) */
    struct queue_bind bind; /* all NULL: for a blank token */
    char *token_uri;        /* NULL or a URI (may carry pin-source) */
    time_t created;
};

/*
 * The binding of `queue add --serial S --token URI` (either may be NULL): S, and the URI's token,
 * serial, manufacturer and model. PA_E_USAGE (reason in errbuf) when the URI does not parse or
 * carries pin-value, names a slot-id (not stable from one insertion to the next), or names a
 * serial other than S. A URI that names no token attribute binds nothing. Free with
 * queue_bind_clear.
 */
int queue_bind_from(const char *serial, const char *token_uri, struct queue_bind *ret, char *errbuf,
                    size_t errlen);
void queue_bind_clear(struct queue_bind *b);
/* Does the entry name no token attribute at all (first-come, for a blank token only)? */
bool queue_bind_empty(const struct queue_bind *b);
/* Does the token match every attribute the binding names? (An empty binding matches none.) */
bool queue_bind_matches(const struct queue_bind *b, const struct tok_info *tok);
/* May this entry go to this token? Bound: all its attributes match. Unbound: the token is blank. */
bool queue_entry_fits(const struct queue_entry *e, const struct tok_info *tok, bool blank);
/* "token=alice serial=..." (only the attributes named), or "" when unbound. */
void queue_bind_format(const struct queue_bind *b, char *buf, size_t len);

/* Create STATE_DIR/queue and queue/taken (0700) if missing. */
int queue_dir_prepare(const char *state_dir);

/*
 * Copy the request file into the queue (after the caller validated it) and add an entry bound as
 * bind says (NULL or empty: unbound). ret_id (optional, 33 bytes) receives the entry id.
 */
int queue_add(const char *state_dir, const char *request, const struct queue_bind *bind,
              const char *token_uri, char *ret_id, char *errbuf, size_t errlen);

/* Entries waiting, oldest first (caller frees with queue_list_free). */
int queue_list(const char *state_dir, struct queue_entry **ret, size_t *ret_n);
void queue_list_free(struct queue_entry *v, size_t n);
void queue_entry_clear(struct queue_entry *e);

/*
 * Take the entry for this token: the oldest entry bound to it (every attribute the entry names
 * matches tok's serial, label, manufacturer and model), else - only when blank is true - the
 * oldest unbound one. An entry bound to another token is never taken. PA_E_TOKEN_NOT_FOUND when
 * none. The entry moves to queue/taken/ atomically.
 */
int queue_take(const char *state_dir, const struct tok_info *tok, bool blank,
               struct queue_entry *ret);

/* Put a taken entry back (its enrollment never started, e.g. the PIN was refused). */
int queue_untake(const char *state_dir, const char *id);

#endif
