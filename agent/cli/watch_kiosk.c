/* SPDX-License-Identifier: Apache-2.0 */
/*
 * watch_kiosk.c - the kiosk of `pkio-agent watch --kiosk`: the screen, and its one prompt.
 *
 * The prompt (whose certificate to confirm, a PIN, a transport PIN and a new one typed twice) is
 * part of the daemon's poll loop: keystrokes are read as they come, in non-canonical mode without
 * echo, and nothing waits for them. One prompt at a time; a token that needs one while another is
 * open waits its turn (its queue entry goes back in line meanwhile). A prompt closes when it is
 * answered, when its time is up (--pin-timeout, --confirm-timeout), when its token is pulled and
 * when the daemon stops; what was typed is wiped. Every label, serial and name on the screen has
 * been through text_clean. Its texts are English msgids, shown in the kiosk's language (Dutch
 * unless chosen otherwise: cmd_watch).
 */
#include "watch.h"

#include "cli.h"
#include "i18n.h"
#include "job.h"
#include "pa_err.h"
#include "text.h"
#include "request.h"
#include "secret.h"
#include "tok.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KIOSK_PIN_MAX 256

/* ---- whose certificate ---------------------------------------------------------------------- */

/* The person a request file is for: first and last name, else the individual id; "" unknown. */
static void whose(const char *request, char *buf, size_t len)
{
    const char *first = NULL, *last = NULL;
    struct req *req = NULL;
    char err[256], raw[200] = "";
    long id = -1;

    buf[0] = '\0';
    if (!request || access(request, F_OK) != 0 ||
        req_load_file(request, &req, err, sizeof(err)) < 0)
        return; /* a job past ordering: its request copy is gone */
    if (req_individual(req, &first, &last, NULL, &id) == 0) {
        if (first || last)
            snprintf(raw, sizeof(raw), "%s%s%s", first ? first : "", first && last ? " " : "",
                     last ? last : "");
        else if (id > 0)
            snprintf(raw, sizeof(raw), _("individual %ld"), id);
    }
    req_free(req);
    text_clean(raw, buf, len);
}

void watch_whom_text(const struct wtoken *t, const char *request, char *buf, size_t len)
{
    char name[200], who[260] = "", tok[200];

    whose(request, name, sizeof(name));
    if (name[0])
        snprintf(who, sizeof(who), _("Certificate for: %s"), name);
    snprintf(tok, sizeof(tok), _("Token: %s, serial %s"), t->label_safe, t->serial_safe);
    snprintf(buf, len, "%s%s%s  %s\n", who[0] ? "  " : "", who, who[0] ? "\n" : "", tok);
}

/* ---- the prompt ----------------------------------------------------------------------------- */

static void add_line(struct prompt *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_line(struct prompt *p, const char *fmt, ...)
{
    va_list ap;

    if (p->nlines == PROMPT_LINES) { /* the oldest scrolls away; whom stays above */
        memmove(p->lines[0], p->lines[1], sizeof(p->lines[0]) * (PROMPT_LINES - 1));
        p->nlines--;
    }
    va_start(ap, fmt);
    vsnprintf(p->lines[p->nlines++], PROMPT_LINE_BYTES, fmt, ap);
    va_end(ap);
}

/* The new PIN's question, with the token's PIN lengths: "New PIN (4-8 characters)". */
static void new_pin_text(const struct wtoken *t, char *buf, size_t len)
{
    struct tok_info info;
    size_t min, max;

    watch_token_info(t, &info);
    tok_pin_len_range(&info, &min, &max);
    if (min < 1)
        min = 1;
    if (max)
        snprintf(buf, len, _("New PIN (%zu-%zu characters)"), min, max);
    else
        snprintf(buf, len, _("New PIN (at least %zu characters)"), min);
}

/* Ask the question of step (the line it adds stays in the transcript once answered). */
static void step_to(struct watch *w, enum prompt_step step)
{
    struct prompt *p = &w->prompt;
    char text[128];

    p->step = step;
    p->deadline = watch_now() + (step == P_CONFIRM ? w->confirm_s : w->pin_timeout_s);
    switch (step) {
    case P_CONFIRM:
        add_line(p, "  %s (%.0f s): ", _("Is this right? Press Enter or y to confirm, n to stop"),
                 w->confirm_s);
        break;
    case P_PIN:
        add_line(p, "  %s (%s): ", _("PIN"), p->t->label_safe);
        break;
    case P_TRANSPORT:
        add_line(p, "  %s (%s): ", _("Transport PIN"), p->t->label_safe);
        break;
    case P_NEW:
        new_pin_text(p->t, text, sizeof(text));
        add_line(p, "  %s: ", text);
        break;
    case P_AGAIN:
        add_line(p, "  %s: ", _("New PIN again"));
        break;
    case P_NONE:
    default:
        break;
    }
}

/* Close the prompt: typed bytes and PINs wiped. Returns what it was to start (caller owns it). */
static struct launch close_prompt(struct watch *w)
{
    struct prompt *p = &w->prompt;
    struct launch l = p->l;

    kiosk_line_clear(&p->line);
    secret_free(p->old);
    secret_free(p->first);
    memset(p, 0, sizeof(*p));
    return l;
}

void kiosk_cancel(struct watch *w, const struct wtoken *t, const char *why)
{
    struct wtoken *pt = w->prompt.t;
    struct launch l;

    if (!pt || (t && pt != t))
        return;
    if (why)
        watch_note(pt, _(why));
    l = close_prompt(w);
    watch_launch_clear(w, &l, false); /* a taken entry goes back in the queue */
}

/* A pipe holding the --pin-fd protocol: the PIN, and the new PIN when there is one. */
static int pin_pipe(const struct secret *pin, const struct secret *new_pin)
{
    int fds[2];
    bool ok;

    if (pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    /* Two PINs are far smaller than a pipe's buffer: this never blocks. */
    ok = write(fds[1], pin->buf, pin->len) == (ssize_t)pin->len && write(fds[1], "\n", 1) == 1;
    if (ok && new_pin)
        ok = write(fds[1], new_pin->buf, new_pin->len) == (ssize_t)new_pin->len &&
             write(fds[1], "\n", 1) == 1;
    close(fds[1]); /* the child reads up to end of file */
    if (!ok) {
        close(fds[0]);
        return -1;
    }
    return fds[0];
}

/* Answered: start the job, with the PIN(s) in a pipe (or none: confirmed only). */
static void prompt_done(struct watch *w, bool with_pin)
{
    struct prompt *p = &w->prompt;
    struct wtoken *t = p->t;
    int fd = -1;
    struct launch l;

    if (with_pin) /* a transport PIN and a new one, or the PIN alone */
        fd = p->old ? pin_pipe(p->old, p->first) : pin_pipe(p->first, NULL);
    l = close_prompt(w);
    t->note[0] = '\0';
    if (with_pin && fd < 0) {
        watch_launch_clear(w, &l, false);
        return;
    }
    watch_launch_start(w, t, &l, fd);
    if (fd >= 0)
        close(fd);
}

static void no_new_pin(struct watch *w)
{
    kiosk_cancel(w, NULL, N_("No new PIN chosen - remove the token and insert it again"));
}

static void no_pin(struct watch *w)
{
    kiosk_cancel(w, NULL, N_("No PIN entered - remove the token and insert it again"));
}

/* A new PIN refused (the token untouched): say why and ask again, a few times. */
static void refuse_new(struct watch *w, enum cli_new_pin_verdict v)
{
    struct prompt *p = &w->prompt;

    secret_free(p->first);
    p->first = NULL;
    if (++p->tries >= CLI_NEW_PIN_TRIES) {
        no_new_pin(w);
        return;
    }
    add_line(p, "  %s",
             v == CLI_NEW_PIN_TOO_SHORT  ? _("The new PIN is too short")
             : v == CLI_NEW_PIN_TOO_LONG ? _("The new PIN is too long")
             : v == CLI_NEW_PIN_SAME     ? _("The new PIN must differ from the transport PIN")
                                         : _("The two PINs differ"));
    step_to(w, P_NEW);
}

/* The new PIN typed (s NULL: too long to hold), or typed again. */
static void new_pin_typed(struct watch *w, struct secret *s)
{
    struct prompt *p = &w->prompt;
    enum cli_new_pin_verdict v = p->step == P_NEW ? CLI_NEW_PIN_TOO_LONG : CLI_NEW_PIN_DIFFER;
    struct tok_info info;

    watch_token_info(p->t, &info);
    if (s && p->step == P_NEW)
        v = cli_new_pin_check(&info, p->old, s, NULL);
    else if (s)
        v = cli_new_pin_check(&info, p->old, p->first, s);
    if (v != CLI_NEW_PIN_OK) {
        secret_free(s);
        refuse_new(w, v);
    } else if (p->step == P_NEW) {
        p->first = s;
        step_to(w, P_AGAIN);
    } else {
        secret_free(s);
        prompt_done(w, true);
    }
}

/* Enter at a PIN prompt. */
static void prompt_enter(struct watch *w)
{
    struct prompt *p = &w->prompt;
    bool overflow = p->line.overflow;
    struct secret *s = NULL;
    int r = kiosk_line_take(&p->line, &s);

    if (p->step == P_PIN || p->step == P_TRANSPORT) {
        if (r < 0) {
            no_pin(w);
        } else if (p->step == P_PIN) {
            p->first = s;
            prompt_done(w, true);
        } else {
            p->old = s;
            step_to(w, P_NEW);
        }
    } else if (r < 0 && !overflow) {
        no_new_pin(w); /* Enter alone: nobody wants to choose one */
    } else {
        new_pin_typed(w, r < 0 ? NULL : s);
    }
}

/* One keystroke; true when the rest of what was read is to be dropped (a question answered). */
static bool prompt_key(struct watch *w, unsigned char c)
{
    struct prompt *p = &w->prompt;

    if (p->step == P_CONFIRM) {
        if (c && strchr("jJyY\r\n", c)) {
            prompt_done(w, false);
            return true;
        }
        if (c == 'n' || c == 'N') {
            kiosk_cancel(w, NULL, N_("Not confirmed - remove the token and insert it again"));
            return true;
        }
        return false;
    }
    if (kiosk_line_key(&p->line, c) != KIOSK_ENTER)
        return false;
    prompt_enter(w);
    return true;
}

void kiosk_input(struct watch *w)
{
    unsigned char buf[256];
    long n;

    while ((n = kiosk_tty_read(&w->tty, buf, sizeof(buf))) > 0) {
        /* Keys without a question are dropped; after an answer, the rest is too. */
        for (long i = 0; i < n && w->prompt.t; i++)
            if (prompt_key(w, buf[i]))
                break;
    }
    secret_wipe(buf, sizeof(buf));
    if (n < 0) { /* the terminal hung up: nobody can type here any more */
        no_pin(w);
        kiosk_tty_close(&w->tty);
    }
}

int kiosk_timeout_ms(struct watch *w)
{
    struct prompt *p = &w->prompt;
    double left = p->deadline - watch_now();

    if (!p->t)
        return -1;
    if (left > 0)
        return (int)(left * 1000) + 1;
    if (p->step == P_CONFIRM)
        kiosk_cancel(w, NULL, N_("Not confirmed - remove the token and insert it again"));
    else
        kiosk_cancel(w, NULL, N_("No PIN entered in time - remove the token and insert it again"));
    return -1;
}

/* What the prompt for t and l asks first; ASK_NONE when nothing; negative: never. */
static int first_step(struct wtoken *t, const struct launch *l, bool confirm, enum prompt_step *ret)
{
    /* Typing the PIN confirms; where a PIN file or the PIN pad serves, a key confirms. */
    bool typed = (!l->pin_source || t->pin_change) && !t->pinpad;

    if (!typed) {
        *ret = P_CONFIRM;
        return confirm ? 0 : ASK_NONE;
    }
    if (t->pin_blocked) { /* never spend the last try, never type into a locked token */
        watch_note(t, _("PIN blocked or on its last try - call an officer"));
        return PA_E_PIN_LOCKED;
    }
    *ret = !t->pin_change ? P_PIN : l->pin_source ? P_NEW : P_TRANSPORT;
    return 0;
}

/* The token's line on the screen while its prompt is open. */
static void step_note(struct wtoken *t, enum prompt_step step)
{
    if (step == P_CONFIRM)
        watch_note(t, _("Check whose certificate this will be"));
    else if (step == P_PIN)
        watch_note(t, _("Enter your token's PIN"));
    else
        watch_note(t, _("Your token still has its transport PIN: choose a new PIN"));
}

int kiosk_ask(struct watch *w, struct wtoken *t, struct launch *l, bool confirm)
{
    struct prompt *p = &w->prompt;
    enum prompt_step step = P_NONE;
    struct secret *old = NULL;
    int r;

    watch_refresh_pin_state(w, t);
    r = first_step(t, l, confirm, &step);
    if (r != 0)
        return r;
    if (p->t)
        return ASK_BUSY;
    if (w->tty.fd < 0) {
        watch_note(t, _("No keyboard - call an officer"));
        return PA_E_PIN_UNAVAILABLE;
    }
    if (step == P_NEW && secret_from_file(l->pin_source, KIOSK_PIN_MAX, &old) < 0) {
        watch_note(t, _("PIN file unusable - call an officer"));
        return PA_E_CONFIG; /* the station's transport PIN file */
    }
    r = kiosk_line_init(&p->line, KIOSK_PIN_MAX);
    if (r < 0) {
        secret_free(old);
        return r;
    }
    p->t = t;
    p->old = old;
    p->l = *l;
    memset(l, 0, sizeof(*l)); /* the prompt owns it now */
    step_note(t, step);
    kiosk_tty_discard(&w->tty); /* keys pressed before the question do not count */
    step_to(w, step);
    return ASK_OPEN;
}

/* ---- the screen ----------------------------------------------------------------------------- */

/* A growing text buffer. */
struct sbuf {
    char *p;
    size_t len, cap;
    bool failed;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;

    for (int attempt = 0; attempt < 2 && !b->failed; attempt++) {
        int n;

        va_start(ap, fmt);
        n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
        } else if (b->p && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        } else {
            size_t cap = (b->cap + (size_t)n + 1) * 2;
            char *np = realloc(b->p, cap);

            b->failed = !np;
            b->p = np ? np : b->p;
            b->cap = np ? cap : b->cap;
        }
    }
}

/* Write it all (a terminal may take it in parts). */
static void write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

/* What a job's state means to the enrollee. */
static const char *state_text(const struct job *j)
{
    switch (j->state) {
    case JOB_NEW:
        return _("Generating the key...");
    case JOB_KEY_READY:
    case JOB_CSR_READY:
        return _("Preparing the request...");
    case JOB_ORDERING:
    case JOB_ORDERED:
        return strcmp(j->order_status, "needs_approval") == 0
                   ? _("Certificate requested - waiting for approval")
                   : _("Certificate requested - please wait");
    case JOB_ISSUED:
    case JOB_INSTALLED:
        return _("Writing the certificate to the token...");
    case JOB_DONE:
        return _("Done - you may remove the token");
    case JOB_FAILED:
        return _("Something went wrong - call an officer");
    case JOB_CANCELED:
        return _("Canceled - call an officer");
    case JOB_STATE__MAX:
    default:
        return "?";
    }
}

/* The kiosk line for one token. */
static const char *token_status(struct watch *w, const struct wtoken *t, struct job *const *list,
                                size_t n)
{
    bool unfinished = false;
    const struct job *j = watch_job_pick(list, n, t, &unfinished);

    if (!j || w->prompt.t == t)
        return t->note[0] ? t->note : _("Please wait...");
    if (!t->present && unfinished)
        return _("Token removed - insert it again to continue");
    if (unfinished && !t->child && (t->last_exit == 6 || t->last_exit == 7))
        return _("PIN needed or blocked - call an officer");
    return state_text(j);
}

/* The tokens' lines; false when none is shown. */
static bool render_tokens(struct watch *w, struct sbuf *b)
{
    double now = watch_now();
    size_t n = 0;
    struct job **list = watch_jobs(w, &n);
    bool shown = false;

    for (size_t i = 0; i < w->ntok; i++) {
        const struct wtoken *t = w->tok[i];

        if (watch_ignored(w, t->serial))
            continue;
        if (!t->present && (t->gone_since <= 0 || now - t->gone_since > w->idle_s))
            continue; /* idle timeout: a token gone long enough leaves the screen */
        sb_printf(b, "  \033[1m%s\033[0m\n    (", token_status(w, t, list, n));
        sb_printf(b, _("token %s, serial %s"), t->label_safe, t->serial_safe);
        sb_printf(b, ")\n");
        if (t->expiry[0] && t->present)
            sb_printf(b, "    %s\n", t->expiry);
        sb_printf(b, "\n");
        shown = true;
    }
    job_list_free(list, n);
    return shown;
}

/* The open prompt: whose certificate on which token, then what was asked; the cursor after it. */
static void render_prompt(struct watch *w, struct sbuf *b)
{
    const struct prompt *p = &w->prompt;

    if (!p->t)
        return;
    sb_printf(b, "\n%s", p->l.whom);
    for (size_t i = 0; i < p->nlines; i++)
        sb_printf(b, "%s%s", p->lines[i], i + 1 < p->nlines ? "\n" : "");
}

void kiosk_render(struct watch *w)
{
    struct sbuf b = {0};

    if (!w->kiosk)
        return;
    sb_printf(&b, "\033[H\033[2J\n  %s\n\n", _("PKIoverheid certificate on your token"));
    if (!render_tokens(w, &b))
        sb_printf(&b, "  \033[1m%s\033[0m\n", _("Insert your token"));
    render_prompt(w, &b);
    if (!b.failed && (!w->screen || strcmp(w->screen, b.p) != 0)) {
        write_all(STDOUT_FILENO, b.p, b.len); /* the whole screen at once, never half of it */
        free(w->screen);
        w->screen = b.p;
        return;
    }
    free(b.p);
}
