/* SPDX-License-Identifier: Apache-2.0 */
/*
 * queue.h - the enrollment queue for hands-free stations: STATE_DIR/queue/ holds one entry per
 * request an officer added. An entry is bound to a token - by serial, or by the token
 * attributes of a PKCS#11 URI (label, serial, manufacturer, model) - and then goes only to a
 * token that matches every attribute it names; an unbound entry goes only to a blank token
 * (tok_contents_blank). Taking an entry is an atomic rename into queue/taken/, so two tokens
 * never take one.
 *
 * Files (docs/ARCHITECTURE.md, "Officers and the daemon"): entries NNNNNNNNNNNN-ID.json (no card
 * data; 0640, the officers' group may read them), the request copy ID.request.json (0600: it may
 * hold card data; wiped once the job is past ordering, queue_forget_request), taken/ (entries
 * whose enrollment started; removed when the job ends), rejected/ (entries that could not be
 * used, each with NAME.reason). Only the daemon's user writes here; officers hand entries to the
 * daemon through its socket (intake.h).
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
    char id[33];   /* random hex */
    char *request; /* the queued copy of the request file: STATE_DIR/queue/ID.request.json */
    struct queue_bind bind; /* all NULL: for a blank token */
    char *token_uri;        /* NULL or a URI (may carry pin-source) */
    char *officer;          /* login name of who queued it; NULL when not recorded */
    long officer_uid;       /* their uid, -1 when not recorded */
    time_t created;
};

/* One entry set aside in queue/rejected/, and why. */
struct queue_rejected {
    char name[64];    /* the entry's file name */
    char reason[256]; /* one line, as written by the daemon (print it through text_clean) */
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
/*
 * The one token-binding predicate: does tok carry every attribute named (NULL: not named)? A
 * queue entry names what its binding holds (queue_bind_matches); a job, and a token the daemon
 * keeps track of, is bound by serial and label (tpm2-pkcs11 serials are all zero):
 * queue_token_bound(serial, label, NULL, NULL, tok).
 */
bool queue_token_bound(const char *serial, const char *label, const char *manufacturer,
                       const char *model, const struct tok_info *tok);
/* Does the token match every attribute the binding names? (An empty binding matches none.) */
bool queue_bind_matches(const struct queue_bind *b, const struct tok_info *tok);
/* May this entry go to this token? Bound: all its attributes match. Unbound: the token is blank. */
bool queue_entry_fits(const struct queue_entry *e, const struct tok_info *tok, bool blank);
/* "token=alice serial=..." (only the attributes named), or "" when unbound. */
void queue_bind_format(const struct queue_bind *b, char *buf, size_t len);

/* Create STATE_DIR/queue, queue/taken and queue/rejected (0700) if missing. */
int queue_dir_prepare(const char *state_dir);

/*
 * Copy the request file into the queue (after the caller validated it) and add an entry bound as
 * bind says (NULL or empty: unbound). ret_id (optional, 33 bytes) receives the entry id.
 */
int queue_add(const char *state_dir, const char *request, const struct queue_bind *bind,
              const char *token_uri, char *ret_id, char *errbuf, size_t errlen);

/*
 * The same with the request's bytes in memory (text, len) and who queued it (officer may be
 * NULL; uid -1). The request copy is written 0600, the entry 0640.
 */
int queue_add_text(const char *state_dir, const char *text, size_t len,
                   const struct queue_bind *bind, const char *token_uri, const char *officer,
                   long officer_uid, char *ret_id, char *errbuf, size_t errlen);

/*
 * Entries waiting, oldest first (caller frees with queue_list_free). An entry is read only when
 * it is a regular file (never a symbolic link) of the queue directory's owner with one link and
 * nothing for others; the others are not listed (queue_take sets them aside).
 */
int queue_list(const char *state_dir, struct queue_entry **ret, size_t *ret_n);
/* Entries in queue/taken/ (enrollments started and not ended), oldest first. */
int queue_taken_list(const char *state_dir, struct queue_entry **ret, size_t *ret_n);
void queue_list_free(struct queue_entry *v, size_t n);
void queue_entry_clear(struct queue_entry *e);

/* Entries set aside in queue/rejected/, with the reasons (free the array with free()). */
int queue_rejected_list(const char *state_dir, struct queue_rejected **ret, size_t *ret_n);

/*
 * Take the entry for this token: the oldest entry bound to it (every attribute the entry names
 * matches tok's serial, label, manufacturer and model), else - only when blank is true - the
 * oldest unbound one. An entry bound to another token is never taken. PA_E_TOKEN_NOT_FOUND when
 * none. The entry moves to queue/taken/ atomically. An entry that cannot be used (not a regular
 * file of the queue's owner, a symbolic link, several links, accessible by everyone, not valid
 * JSON, a binding that cannot be read, a request that is not the entry's own copy) is moved to
 * queue/rejected/ with NAME.reason, never taken and never first-come; rejected (optional)
 * receives "NAME: reason; ..." for the caller to report ("" when none).
 */
int queue_take(const char *state_dir, const struct tok_info *tok, bool blank,
               struct queue_entry *ret, char *rejected, size_t rejlen);

/* Put a taken entry back (its enrollment never started, e.g. the PIN was refused). */
int queue_untake(const char *state_dir, const char *id);

/*
 * Is path a request copy of this queue, STATE_DIR/queue/<32 hex>.request.json (the directory
 * compared after resolving symbolic links)? ret_id (optional, 33 bytes) receives the id.
 */
bool queue_holds_request(const char *state_dir, const char *path, char *ret_id);

/* The taken entry whose request copy is request (by its id). PA_E_TOKEN_NOT_FOUND when none. */
int queue_taken_find(const char *state_dir, const char *request, struct queue_entry *ret);

/* Remove the taken entry with this id (its job ended). 0, also when there is none. */
int queue_taken_remove(const char *state_dir, const char *id);

/*
 * A job no longer needs its request (the order is placed): wipe the request copy (overwritten
 * with zeros, fsync'd) and remove it, so the card data it may hold does not stay on disk. Only a
 * request copy of this queue is touched (queue_holds_request): for any other path it does
 * nothing and returns 1, so a job enrolled from an officer's own file may call it too. 0 when
 * the copy is wiped and removed or already gone; PA_E_REFUSED (not a regular file of this user),
 * PA_E_IO.
 */
int queue_forget_request(const char *state_dir, const char *request_path);

#endif
