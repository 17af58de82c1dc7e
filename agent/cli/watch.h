/* SPDX-License-Identifier: Apache-2.0 */
/*
 * watch.h - the internals of `pkio-agent watch`, shared by watch.c (the poll loop and the
 * options), watch_token.c (the tokens seen and what starts for each), watch_child.c (the per-job
 * children and their pipes), watch_expiry.c (a certificate about to expire) and watch_kiosk.c
 * (the kiosk's screen and its one prompt). Not an API.
 */
#ifndef PKIO_WATCH_H
#define PKIO_WATCH_H

#include "intake.h"
#include "kiosk.h"
#include "queue.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct cli;
struct detect;
struct job;
struct secret;
struct tok_ctx;
struct tok_info;

#define WATCH_MAX_IGNORE  32
#define PROMPT_LINES      10 /* what a prompt asked and said, newest last */
#define PROMPT_LINE_BYTES 200

/* A token the daemon has seen (the array grows; tokens gone for long are forgotten). */
struct wtoken {
    char serial[17], label[33];           /* as the module reports them */
    char serial_safe[17], label_safe[33]; /* the same, fit to print (text_clean) */
    char manufacturer[33], model[17];
    unsigned long min_pin_len, max_pin_len; /* the token's PIN lengths, for a new PIN */
    bool present;
    pid_t child;       /* 0 = none running */
    int last_exit;     /* exit status of the last child, -1 none */
    double retry_at;   /* monotonic: when to try again after a child that stopped early; 0 none */
    double gone_since; /* monotonic: when it was removed; 0 = present */
    bool pinpad;       /* the token has a protected authentication path */
    bool pin_blocked;  /* locked, final try, or no PIN set: never prompt */
    bool pin_change;   /* a transport PIN that must be changed (and may be) */
    char queued[33];   /* queue entry an enroll child took (returned if it never started) */
    bool want_request; /* present, never enrolled, waiting for a queued request */
    bool want_prompt;  /* waits until the kiosk's one prompt is free */
    bool pin_failed;   /* the last PIN was rejected: nothing more until it is re-inserted */
    bool refused;      /* its enroll child found it not blank: nothing more until re-inserted */
    bool in_use_noted; /* "in use" is in the journal for this insertion */
    char note[160];    /* what the kiosk says when no job explains it */
    char expiry[160];  /* "certificate expires on ..." for this insertion; "" none */
};

/* What to start for a token once the kiosk's question is answered (or at once). */
struct launch {
    const char *what;         /* "resume" or "enroll" */
    char job[33];             /* resume: the job */
    struct queue_entry entry; /* enroll: the taken entry (owned) */
    bool has_entry;
    char *pin_source; /* the PIN file the child uses when no PIN travels by pipe; NULL none */
    char actor[64];   /* the officer who queued it (PKIO_ACTOR for the child's audit); "" */
    char whom[512];   /* the lines naming whose certificate goes onto which token */
};

enum prompt_step { P_NONE, P_CONFIRM, P_PIN, P_TRANSPORT, P_NEW, P_AGAIN };

/* The kiosk's one prompt: read keystroke by keystroke from the poll loop. */
struct prompt {
    struct wtoken *t; /* NULL: no prompt open */
    enum prompt_step step;
    struct kiosk_line line;
    struct secret *old;   /* the transport PIN (typed, or from the PIN file) */
    struct secret *first; /* the PIN, or the new PIN typed once */
    unsigned tries;       /* new PINs refused so far */
    double deadline;      /* monotonic */
    char lines[PROMPT_LINES][PROMPT_LINE_BYTES];
    size_t nlines;
    struct launch l;
};

struct watch {
    struct cli *cli;
    bool kiosk;
    double rescan_s, idle_s, retry_s, confirm_s, pin_timeout_s;
    const char *detect_list;
    const char *pin_source;
    const char *ignore[WATCH_MAX_IGNORE];
    size_t nignore;
    const char *officers_name;
    struct officers officers;
    struct tok_ctx *ctx;
    struct detect *det;
    int inofd, wd_state, wd_jobs, wd_queue;
    struct wtoken **tok; /* growable */
    size_t ntok, captok;
    bool stopping;
    bool sweep_due; /* job records changed: see whether request copies may go */
    bool share_due; /* STATE_DIR's owner or mode changed: see whether the group lost access */
    struct kiosk_tty tty;
    struct prompt prompt;
    struct intake *intake;
    struct intake_ctx ictx;
    char *screen; /* what the kiosk shows now (written only when it changes) */
};

/* ---- watch.c ---- */
double watch_now(void);                                        /* monotonic seconds */
bool watch_ignored(const struct watch *w, const char *serial); /* --ignore SERIAL */
void watch_note(struct wtoken *t, const char *text);           /* text: already translated */

/* ---- watch_token.c: the tokens seen, and what starts for each ---- */
/* Re-enumerate: which tokens are present now? Arrivals start their job. */
void watch_scan(struct watch *w);
/* Start what this token needs now (its job, or a queued request), unless something holds it. */
void watch_start_job(struct watch *w, struct wtoken *t);
/* The prompt closed: the next token waiting for it gets its turn. */
void watch_prompt_next(struct watch *w);
/* A token that holds keys or certificates and is none of our business: never written to. */
void watch_token_in_use(struct wtoken *t);
/* Read the token's PIN flags again (a job may have changed the PIN). */
void watch_refresh_pin_state(struct watch *w, struct wtoken *t);
void watch_token_info(const struct wtoken *t, struct tok_info *ret);
struct job **watch_jobs(struct watch *w, size_t *ret_n);
const struct job *watch_job_pick(struct job *const *list, size_t n, const struct wtoken *t,
                                 bool *ret_unfinished);

/* ---- watch_child.c: the per-job children ---- */
/* Start l for t: the PIN pipe's read end (-1: none). Frees nothing. */
void watch_launch_start(struct watch *w, struct wtoken *t, struct launch *l, int pin_fd);
/* Forget l (a taken entry goes back to the queue unless started). */
void watch_launch_clear(struct watch *w, struct launch *l, bool started);
/* SIGCHLD: the children that ended are reaped; then a token waiting for the prompt may start. */
void watch_reap(struct watch *w);

/* ---- watch_expiry.c ---- */
/* On insertion: a certificate of ours on this token that expires within 60 days is announced. */
void watch_expiry_check(struct watch *w, struct wtoken *t);

/* ---- watch_kiosk.c ---- */
enum ask_result { ASK_NONE = 1, ASK_OPEN = 0, ASK_BUSY = 2 };
/*
 * Does starting l on t need the kiosk's prompt (a PIN to type, or - confirm - whose certificate to
 * confirm)? ASK_NONE: start it at once. ASK_OPEN: the prompt is open and owns l. ASK_BUSY:
 * another token's prompt is open (l untouched). Negative: it must not start (t->note says why;
 * l untouched).
 */
int kiosk_ask(struct watch *w, struct wtoken *t, struct launch *l, bool confirm);
/* Keystrokes from the terminal. */
void kiosk_input(struct watch *w);
/* Close the prompt for t (or any, t NULL) without starting anything; why (an English msgid,
 * shown translated as t's note) may be NULL. */
void kiosk_cancel(struct watch *w, const struct wtoken *t, const char *why);
/* The prompt's deadline passed? Then close it. Milliseconds until it does, -1 none. */
int kiosk_timeout_ms(struct watch *w);
/* Draw the screen if it changed. */
void kiosk_render(struct watch *w);
/* "  Certificate for: NAME\n  Token: LABEL, serial SERIAL\n" (translated) into buf. */
void watch_whom_text(const struct wtoken *t, const char *request, char *buf, size_t len);

#endif
