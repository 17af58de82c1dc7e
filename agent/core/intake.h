/* SPDX-License-Identifier: Apache-2.0 */
/*
 * intake.h - officers and the daemon (docs/ARCHITECTURE.md, "Officers and the daemon").
 *
 * Members of the officers' group (pkio-officers) queue requests, read `status` and verify the
 * audit log without the daemon's user and without its key material:
 *   - what holds no secret is readable by the group: STATE_DIR (0750), jobs/ (2750) and the job
 *     records (0640), audit.log (0640), queue/, queue/taken/, queue/rejected/ (2750) and the
 *     entries (0640) - state_share();
 *   - what may hold secrets is not: request copies (card data), locks, watch.log (0600), and the
 *     API key (its own file, 0600, the daemon's user);
 *   - nobody but the daemon's user writes in STATE_DIR. An officer hands a request to the daemon
 *     through its socket STATE_DIR/queue/intake.sock (0660, the group): the kernel says who is
 *     connecting (SO_PEERCRED), the daemon checks that user against the group, validates the
 *     entry strictly and writes the queue entry itself, recording the officer's login name. So
 *     card data never lands in a file that a group can read, and nothing an officer writes is
 *     ever read back by the daemon from a shared directory.
 */
#ifndef PKIO_INTAKE_H
#define PKIO_INTAKE_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct cfg;

#define OFFICERS_GROUP_DEFAULT "pkio-officers"

/* The officers' group. */
struct officers {
    char name[64];
    gid_t gid; /* (gid_t)-1: no such group, nothing is shared and only root and the daemon's
                  own user may queue */
};

/* Look the group up by name. 0 (gid -1 when it does not exist), or PA_E_USAGE (name too long). */
int officers_lookup(const char *name, struct officers *ret);

/*
 * May uid queue requests: root, the daemon's own user, or a member of the group (primary or
 * supplementary, as the group database says now)? login receives uid's login name, or "uid N".
 */
bool officers_allow(const struct officers *o, uid_t uid, char *login, size_t loginlen);

/*
 * Give the group read access to what holds no secret (see above), creating audit.log if it is
 * missing so that it is born readable by the group. Only directories and files the effective
 * user owns are changed, never through a symbolic link. Nothing when o->gid is -1. 0 or PA_E_IO
 * (errbuf says what).
 */
int state_share(const char *state_dir, const struct officers *o, char *errbuf, size_t errlen);
/*
 * Is it still so? (STATE_DIR's group and mode, and the socket's.) Something else - a sibling unit
 * with another Group= or StateDirectoryMode= - may have changed them back.
 */
bool state_shared(const char *state_dir, const struct officers *o);
/* The same for STATE_DIR/audit.log alone (a new log was started). */
int state_share_audit(const char *state_dir, const struct officers *o);

/* ---- the daemon's socket ---------------------------------------------------------------- */

struct intake;

struct intake_ctx {
    const char *state_dir;
    const struct cfg *cfg; /* the request rules (order_defaults, product) */
    const struct officers *officers;
};

/*
 * Listen on STATE_DIR/queue/intake.sock (0660 and the group's when there is one, else 0600).
 * PA_E_BUSY when another daemon already answers there; PA_E_IO. ctx must outlive the intake.
 */
int intake_open(const struct intake_ctx *ctx, struct intake **ret, char *errbuf, size_t errlen);
void intake_close(struct intake *in);

/* The descriptors to poll (the socket and the connections being read), at most max. */
size_t intake_pollfds(const struct intake *in, struct pollfd *p, size_t max);
/*
 * Handle what poll() said about them: accept connections (refused at once when the peer may not
 * queue), read entries, and when one is complete take it into the queue or refuse it, answer,
 * and write one journal line and one audit line either way. Never blocks.
 */
void intake_handle(struct intake *in, const struct pollfd *p, size_t n);
/* Milliseconds until a connection being read times out (-1: none); expire those that did. */
int intake_timeout_ms(struct intake *in);

/* ---- the officer's side --------------------------------------------------------------------- */

/*
 * Hand one entry to the daemon of state_dir: {"format":1,"serial":S|null,"token_uri":U|null,
 * "request":{...}}. 0 and ret_id (33 bytes) when it is queued; PA_E_REFUSED (the daemon's reason,
 * or the socket's permission) or PA_E_IO (no daemon answering) with errbuf.
 */
int intake_submit(const char *state_dir, const char *entry, size_t len, char *ret_id, char *errbuf,
                  size_t errlen);

#endif
