/* SPDX-License-Identifier: Apache-2.0 */
/*
 * watch_token.c - the tokens `pkio-agent watch` has seen (a growable array; tokens gone for long
 * are forgotten), what a scan finds (arrivals and removals), and what starts for a token: the
 * unfinished job bound to it, else the queued request bound to it, else - only when it is blank -
 * an unbound one; a token in use is left alone.
 */
#include "watch.h"

#include "cli.h"
#include "i18n.h"
#include "job.h"
#include "text.h"
#include "tok.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORGET_MIN_S 600.0 /* a token gone this long (and at least --idle-timeout) is forgotten */

/* ---- jobs ----------------------------------------------------------------------------------- */

/* The job records, read without locks (never saved or driven from here). NULL when none. */
struct job **watch_jobs(struct watch *w, size_t *ret_n)
{
    struct job **list = NULL;
    char err[256];

    *ret_n = 0;
    if (job_list(cli_state_dir(w->cli), &list, ret_n, err, sizeof(err)) < 0)
        return NULL;
    return list;
}

/* The job bound to a token: the unfinished one if any, else the newest. */
const struct job *watch_job_pick(struct job *const *list, size_t n, const struct wtoken *t,
                                 bool *ret_unfinished)
{
    const struct job *best = NULL;
    struct tok_info info;

    *ret_unfinished = false;
    watch_token_info(t, &info);
    for (size_t i = 0; i < n; i++) {
        const struct job *j = list[i];

        if (!queue_token_bound(j->token_serial, j->token_label, NULL, NULL, &info))
            continue;
        if (!job_state_is_terminal(j->state)) {
            *ret_unfinished = true;
            return j;
        }
        best = j; /* oldest first: the last one wins */
    }
    return best;
}

/* ---- tokens --------------------------------------------------------------------------------- */

/* The token we know as this one (by serial and label), NULL when it is new. */
static struct wtoken *find_token(struct watch *w, const struct tok_info *info)
{
    for (size_t i = 0; i < w->ntok; i++)
        if (queue_token_bound(w->tok[i]->serial, w->tok[i]->label, NULL, NULL, info))
            return w->tok[i];
    return NULL;
}

/* A token seen for the first time (the array grows as needed). NULL when out of memory. */
static struct wtoken *add_token(struct watch *w, const struct tok_info *info)
{
    struct wtoken *t;

    if (w->ntok == w->captok) {
        size_t cap = w->captok ? w->captok * 2 : 16;
        struct wtoken **nv = realloc(w->tok, cap * sizeof(*nv));

        if (!nv)
            return NULL;
        w->tok = nv;
        w->captok = cap;
    }
    t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    snprintf(t->serial, sizeof(t->serial), "%s", info->serial);
    snprintf(t->label, sizeof(t->label), "%s", info->label);
    text_clean(t->serial, t->serial_safe, sizeof(t->serial_safe));
    text_clean(t->label, t->label_safe, sizeof(t->label_safe));
    t->last_exit = -1;
    t->gone_since = -1; /* treated as an arrival */
    w->tok[w->ntok++] = t;
    return t;
}

/* Tokens gone for long are forgotten: a long-running daemon serves any number of them. */
static void forget_tokens(struct watch *w)
{
    double now = watch_now(), after = w->idle_s > FORGET_MIN_S ? w->idle_s : FORGET_MIN_S;
    size_t k = 0;

    for (size_t i = 0; i < w->ntok; i++) {
        struct wtoken *t = w->tok[i];

        if (!t->present && t->gone_since > 0 && now - t->gone_since > after && !t->child &&
            w->prompt.t != t) {
            free(t);
            continue;
        }
        w->tok[k++] = t;
    }
    w->ntok = k;
}

/* What the kiosk knows of a token's PIN, from what the token says now. */
static void set_pin_state(struct wtoken *t, const struct tok_info *info)
{
    t->pinpad = info->protected_auth_path;
    t->pin_change = info->user_pin_to_be_changed && tok_pin_change_precheck(info) == 0;
    t->pin_blocked = !t->pin_change && tok_login_precheck(info) < 0;
    t->min_pin_len = info->min_pin_len;
    t->max_pin_len = info->max_pin_len;
}

void watch_refresh_pin_state(struct watch *w, struct wtoken *t)
{
    struct tok_info *list = NULL;
    size_t n = 0;

    if (tok_list(w->ctx, &list, &n) < 0)
        return;
    for (size_t i = 0; i < n; i++)
        if (list[i].token_initialized &&
            queue_token_bound(t->serial, t->label, NULL, NULL, &list[i]))
            set_pin_state(t, &list[i]);
    free(list);
}

void watch_token_info(const struct wtoken *t, struct tok_info *ret)
{
    memset(ret, 0, sizeof(*ret));
    snprintf(ret->serial, sizeof(ret->serial), "%s", t->serial);
    snprintf(ret->label, sizeof(ret->label), "%s", t->label);
    snprintf(ret->manufacturer, sizeof(ret->manufacturer), "%s", t->manufacturer);
    snprintf(ret->model, sizeof(ret->model), "%s", t->model);
    ret->min_pin_len = t->min_pin_len;
    ret->max_pin_len = t->max_pin_len;
}

/* The PIN file for a job: the one in its queue entry's URI, else --pin-source. */
static char *pin_source_of(const struct watch *w, const char *entry_uri)
{
    struct tok_uri u;
    char *p = NULL;

    if (entry_uri && tok_uri_parse(entry_uri, false, &u) == 0) {
        if (u.pin_source)
            p = strdup(u.pin_source);
        tok_uri_clear(&u);
    }
    if (!p && w->pin_source)
        p = strdup(w->pin_source);
    return p;
}

/* Start l now, or through the kiosk's prompt; the prompt may be busy with another token. */
static void launch_or_ask(struct watch *w, struct wtoken *t, struct launch *l, bool confirm)
{
    int r = w->kiosk ? kiosk_ask(w, t, l, confirm) : ASK_NONE;

    if (r == ASK_NONE) {
        watch_launch_start(w, t, l, -1);
    } else if (r == ASK_BUSY) {
        t->want_prompt = true; /* one prompt at a time: its turn comes when this one closes */
        watch_launch_clear(w, l, false); /* a taken entry goes back in line meanwhile */
    } else if (r < 0) {
        watch_launch_clear(w, l, false);
    }
}

/* Continue the unfinished job of a token that came back (with its entry's PIN file, if any). */
static void resume_job(struct watch *w, struct wtoken *t, const struct job *j)
{
    struct launch l = {.what = "resume"};
    struct queue_entry e;
    bool from_queue =
        j->request_path && queue_taken_find(cli_state_dir(w->cli), j->request_path, &e) == 0;

    snprintf(l.job, sizeof(l.job), "%s", j->id);
    l.pin_source = pin_source_of(w, from_queue ? e.token_uri : NULL);
    if (from_queue && e.officer)
        snprintf(l.actor, sizeof(l.actor), "%s", e.officer);
    if (from_queue)
        queue_entry_clear(&e);
    if (w->kiosk)
        watch_whom_text(t, j->request_path, l.whom, sizeof(l.whom));
    launch_or_ask(w, t, &l, false);
}

/* A token that holds keys or certificates and is none of our business: never written to. */
void watch_token_in_use(struct wtoken *t)
{
    watch_note(t, _("Token already in use - call an officer"));
    if (!t->in_use_noted)
        fprintf(stderr,
                "pkio-agent: watch: token '%s' (serial %s) is in use (it holds keys or "
                "certificates) and no queued request is bound to it: left alone\n",
                t->label_safe, t->serial_safe);
    t->in_use_noted = true;
}

/* Is the token blank, counted without logging in? 1 yes, 0 no, negative: could not count. */
static int token_blank(struct watch *w, const struct wtoken *t, struct tok_info *info)
{
    struct tok_contents c;
    int r;

    watch_token_info(t, info);
    r = tok_peek_contents(w->ctx, info, &c);
    if (r < 0) {
        char detail[256];

        text_clean(tok_detail(), detail, sizeof(detail));
        fprintf(stderr, "pkio-agent: watch: token '%s' (serial %s): counting its objects: %s\n",
                t->label_safe, t->serial_safe, detail);
        return r;
    }
    return tok_contents_blank(&c) ? 1 : 0;
}

/* Enroll a taken queue entry on this token (after the kiosk's confirmation). */
static void enroll_entry(struct watch *w, struct wtoken *t, struct queue_entry *e)
{
    struct launch l = {.what = "enroll", .entry = *e, .has_entry = true};

    memset(e, 0, sizeof(*e)); /* l owns it now */
    l.pin_source = pin_source_of(w, l.entry.token_uri);
    if (l.entry.officer)
        text_clean(l.entry.officer, l.actor, sizeof(l.actor));
    if (w->kiosk)
        watch_whom_text(t, l.entry.request, l.whom, sizeof(l.whom));
    launch_or_ask(w, t, &l, true);
}

/* A token never enrolled here: the request bound to it, else (blank only) an unbound one. */
static void take_queued(struct watch *w, struct wtoken *t)
{
    struct queue_entry e;
    struct tok_info info;
    char rejected[512];
    int blank = token_blank(w, t, &info);
    int r = queue_take(cli_state_dir(w->cli), &info, blank == 1, &e, rejected, sizeof(rejected));

    if (rejected[0]) {
        char safe[512];

        text_clean(rejected, safe, sizeof(safe)); /* file names are anyone's text */
        fprintf(stderr, "pkio-agent: watch: queue: set aside in queue/rejected: %s\n", safe);
    }
    if (r == 0) {
        enroll_entry(w, t, &e);
        return;
    }
    t->want_request = true; /* a request bound to it may still be queued */
    if (blank == 0) {
        watch_token_in_use(t);
    } else if (blank < 0) {
        watch_note(t, _("Cannot read the token - please wait"));
        t->retry_at = watch_now() + w->retry_s;
    } else {
        watch_note(t, _("No request queued for this token - call an officer"));
    }
}

void watch_start_job(struct watch *w, struct wtoken *t)
{
    struct job **list;
    const struct job *j;
    bool unfinished = false;
    size_t n = 0;

    if (t->child || watch_ignored(w, t->serial) || !t->present || t->pin_failed || t->refused ||
        w->prompt.t == t || w->stopping)
        return;
    t->want_request = false;
    t->want_prompt = false;
    list = watch_jobs(w, &n);
    j = watch_job_pick(list, n, t, &unfinished);
    if (j && unfinished)
        resume_job(w, t, j);
    else if (!j)
        take_queued(w, t);
    /* else: enrolled before, and that job ended: never again by itself */
    job_list_free(list, n);
}

void watch_prompt_next(struct watch *w)
{
    for (size_t i = 0; i < w->ntok && !w->prompt.t && !w->stopping; i++) {
        struct wtoken *t = w->tok[i];

        if (t->want_prompt && t->present && !t->child)
            watch_start_job(w, t);
    }
}

/* ---- scanning ------------------------------------------------------------------------------- */

/* A token listed by the module: new, back, or still there. */
static void token_seen(struct watch *w, const struct tok_info *info)
{
    struct wtoken *t = find_token(w, info);

    if (!t)
        t = add_token(w, info);
    if (!t)
        return;
    t->present = true;
    snprintf(t->manufacturer, sizeof(t->manufacturer), "%s", info->manufacturer);
    snprintf(t->model, sizeof(t->model), "%s", info->model);
    set_pin_state(t, info);
    if (t->gone_since) { /* arrived (or came back): whatever held it back is forgotten */
        t->gone_since = 0;
        t->pin_failed = false;
        t->refused = false;
        t->in_use_noted = false;
        t->retry_at = 0;
        if (!watch_ignored(w, t->serial))
            watch_expiry_check(w, t);
        watch_start_job(w, t);
    }
}

/* A token that is no longer listed: its prompt, if open, is closed (typed bytes wiped). */
static void token_gone(struct watch *w, struct wtoken *t)
{
    t->gone_since = watch_now();
    t->want_prompt = false;
    if (w->prompt.t == t)
        kiosk_cancel(w, t, N_("Token removed - insert it again"));
}

/* Re-enumerate: which tokens are present now? */
void watch_scan(struct watch *w)
{
    struct tok_info *list = NULL;
    size_t n = 0;

    if (tok_rescan(w->ctx) < 0 || tok_list(w->ctx, &list, &n) < 0) {
        char detail[256];

        text_clean(tok_detail(), detail, sizeof(detail));
        fprintf(stderr, "pkio-agent: watch: listing tokens: %s\n", detail);
        return;
    }
    for (size_t i = 0; i < w->ntok; i++)
        w->tok[i]->present = false;
    for (size_t i = 0; i < n; i++)
        if (list[i].token_initialized)
            token_seen(w, &list[i]);
    for (size_t i = 0; i < w->ntok; i++)
        if (!w->tok[i]->present && !w->tok[i]->gone_since)
            token_gone(w, w->tok[i]);
    free(list);
    forget_tokens(w);
}
