/* SPDX-License-Identifier: Apache-2.0 */
/*
 * watch.c - the hands-free station: `pkio-agent watch [--kiosk]` and `pkio-agent queue`.
 *
 * A foreground daemon made for systemd. It waits (without spinning) for token events, then
 * re-enumerates through PKCS#11. For every token that arrives it resumes the job bound to that
 * token's serial and label, or takes the next request from the queue and enrolls it: a request
 * bound to that token, else - only if the token is blank, counted without logging in - an unbound
 * one, whose `enroll` child checks blankness again after login (--only-blank). A token in use (not
 * blank, no job of ours, no request bound to it) is never written to. Each job runs in its own
 * child process (the same binary, `resume` or `enroll`), so jobs are independent and a pulled
 * token only stops its own job: the record stays where it was (parked) and the job continues when
 * the same token returns. SIGTERM is passed to the children, which stop once their current step
 * is safe; the daemon exits when they have. On a kiosk the enrollee sees whose certificate is
 * about to be made, on which token, and confirms before anything is generated.
 */
#include "cli.h"
#include "config.h"
#include "detect.h"
#include "job.h"
#include "pa_err.h"
#include "queue.h"
#include "request.h"
#include "secret.h"
#include "tok.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MAX_TOKENS 64

enum {
    OPT_JSON = 0x100,
    OPT_KIOSK,
    OPT_LANG,
    OPT_RESCAN,
    OPT_DETECT,
    OPT_PIN_SOURCE,
    OPT_IGNORE,
    OPT_IDLE,
    OPT_RETRY,
    OPT_CONFIRM,
    OPT_REQUEST,
    OPT_SERIAL,
    OPT_TOKEN
};

struct wtoken {
    char serial[17], label[33];
    char manufacturer[33], model[17];
    unsigned long min_pin_len, max_pin_len; /* the token's PIN lengths, for a new PIN */
    bool present;
    pid_t child;       /* 0 = none running */
    int last_exit;     /* exit status of the last child, -1 none */
    time_t retry_at;   /* when to try again after a child that stopped early; 0 = on arrival */
    time_t left_at;    /* when it was removed */
    bool pinpad;       /* the token has a protected authentication path */
    bool pin_blocked;  /* locked, final try, or no PIN set: never prompt */
    bool pin_change;   /* a transport PIN that must be changed (and may be) */
    char queued[33];   /* queue entry an enroll child took (returned if it never started) */
    bool want_request; /* present, never enrolled, waiting for a queued request */
    bool pin_failed;   /* the last PIN was rejected: nothing more until it is re-inserted */
    bool refused;      /* its enroll child found it not blank: nothing more until re-inserted */
    bool in_use_noted; /* "in use" is in the journal for this insertion */
    char note[160];    /* what the kiosk says when no job explains it */
};

struct watch {
    struct cli *cli;
    bool kiosk;
    bool dutch;
    double rescan_s;
    const char *detect_list;
    const char *pin_source;
    const char *ignore[32];
    size_t nignore;
    double idle_s;
    double retry_s;
    double confirm_s;
    struct tok_ctx *ctx;
    struct detect *det;
    int inofd;
    struct wtoken tokens[MAX_TOKENS];
    size_t ntokens;
    bool stopping;
};

static int sigpipe_fd[2] = {-1, -1};

static void on_signal(int sig)
{
    unsigned char c = (unsigned char)sig;
    int saved = errno;

    (void)!write(sigpipe_fd[1], &c, 1);
    errno = saved;
}

/* systemd's notification protocol, without libsystemd. */
static void sd_notify_msg(const char *msg)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    socklen_t len;
    int fd;

    if (!path || !*path || strlen(path) >= sizeof(sa.sun_path))
        return;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path));
    if (path[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract namespace */
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    (void)sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
    close(fd);
}

static bool ignored(const struct watch *w, const char *serial)
{
    for (size_t i = 0; i < w->nignore; i++)
        if (strcmp(w->ignore[i], serial) == 0)
            return true;
    return false;
}

static struct wtoken *find_token(struct watch *w, const char *serial, const char *label)
{
    for (size_t i = 0; i < w->ntokens; i++)
        if (strcmp(w->tokens[i].serial, serial) == 0 && strcmp(w->tokens[i].label, label) == 0)
            return &w->tokens[i];
    return NULL;
}

/* The job bound to a token: the unfinished one if any, else the newest. Caller frees. */
static struct job *job_of(struct watch *w, const struct wtoken *t, bool *ret_unfinished)
{
    struct job **list = NULL, *best = NULL;
    char err[256];
    size_t n = 0;

    *ret_unfinished = false;
    if (job_list(cli_state_dir(w->cli), &list, &n, err, sizeof(err)) < 0)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        struct job *j = list[i];

        if (strcmp(j->token_serial, t->serial) != 0 || strcmp(j->token_label, t->label) != 0)
            continue;
        if (!job_state_terminal(j->state)) {
            *ret_unfinished = true;
            best = j;
            list[i] = NULL;
            break;
        }
        best = j; /* oldest first: the last one wins */
    }
    if (best && !*ret_unfinished)
        for (size_t i = 0; i < n; i++)
            if (list[i] == best)
                list[i] = NULL;
    job_list_free(list, n);
    return best;
}

/* The PIN file for a token's job: --pin-source, else the one in a queue entry's URI. */
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

/* Run the same binary for one job; its output goes to the journal, or a log in kiosk mode. */
static int spawn(struct watch *w, struct wtoken *t, const char *const cmd[], int pin_rfd)
{
    const char *argv[24];
    size_t n = 0;
    pid_t pid;

    argv[n++] = "pkio-agent";
    if (w->cli->config) {
        argv[n++] = "--config";
        argv[n++] = w->cli->config;
    }
    argv[n++] = "--state-dir";
    argv[n++] = cli_state_dir(w->cli);
    argv[n++] = "--module";
    argv[n++] = cli_module(w->cli);
    if (pin_rfd >= 0) { /* the PIN typed on the kiosk travels by pipe, never by argv */
        argv[n++] = "--pin-fd";
        argv[n++] = "3";
    }
    for (size_t i = 0; cmd[i] && n < 23; i++)
        argv[n++] = cmd[i];
    argv[n] = NULL;
    pid = fork();
    if (pid < 0)
        return PA_E_INTERNAL;
    if (pid == 0) {
        sigset_t none;

        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        if (w->kiosk) {
            char log[4096];
            int fd;

            snprintf(log, sizeof(log), "%s/watch.log", cli_state_dir(w->cli));
            fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
            if (fd >= 0) {
                dup2(fd, STDOUT_FILENO);
                dup2(fd, STDERR_FILENO);
            }
            fd = open("/dev/null", O_RDONLY);
            if (fd >= 0)
                dup2(fd, STDIN_FILENO);
        }
        if (pin_rfd >= 0 && dup2(pin_rfd, 3) < 0)
            _exit(127);
        {
            char *av[24];

            for (size_t i = 0; i <= n; i++) /* execv wants writable strings: give it copies */
                av[i] = argv[i] ? strdup(argv[i]) : NULL;
            execv("/proc/self/exe", av);
        }
        _exit(127);
    }
    t->child = pid;
    t->note[0] = '\0';
    return 0;
}

static const char *say(const struct watch *w, const char *nl, const char *en)
{
    return w->dutch ? nl : en;
}

static void note(struct wtoken *t, const char *text)
{
    snprintf(t->note, sizeof(t->note), "%s", text);
}

static void render(struct watch *w);
static void wtoken_info(const struct wtoken *t, struct tok_info *ret);

/* The name of the person a request file is for: first and last name, else the individual id. */
static void whose(const struct watch *w, const char *request, char *buf, size_t len)
{
    const char *first = NULL, *last = NULL;
    struct req *req = NULL;
    char err[256];
    long id = -1;

    snprintf(buf, len, "?");
    if (!request || req_load_file(request, &req, err, sizeof(err)) < 0)
        return;
    if (req_individual(req, &first, &last, NULL, &id) == 0) {
        if (first || last)
            snprintf(buf, len, "%s%s%s", first ? first : "", first && last ? " " : "",
                     last ? last : "");
        else if (id > 0)
            snprintf(buf, len, "%s %ld", say(w, "persoon", "individual"), id);
    }
    req_free(req);
}

/* The kiosk's lines naming whose certificate goes onto which token. */
static void whom_text(const struct watch *w, const struct wtoken *t, const char *request, char *buf,
                      size_t len)
{
    char name[200];

    whose(w, request, name, sizeof(name));
    snprintf(buf, len, "  %s: %s\n  Token: %s, %s %s\n",
             say(w, "Certificaat voor", "Certificate for"), name, t->label,
             say(w, "serienummer", "serial"), t->serial);
}

/*
 * Ask on the terminal for a yes: Enter, j or y within secs seconds. Keys typed before the
 * question are discarded. 0 when confirmed; PA_E_REFUSED for no, a timeout or no terminal.
 */
static int tty_confirm(const char *prompt, double secs)
{
    struct timespec t0, now;
    char line[64];
    ssize_t n = 0;
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY), r = PA_E_REFUSED;

    if (fd < 0)
        return PA_E_REFUSED;
    (void)tcflush(fd, TCIFLUSH);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (write(fd, prompt, strlen(prompt)) < 0)
        goto out;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        double left;

        clock_gettime(CLOCK_MONOTONIC, &now);
        left = secs - (double)(now.tv_sec - t0.tv_sec) - (now.tv_nsec - t0.tv_nsec) / 1e9;
        if (left <= 0 || poll(&p, 1, (int)(left * 1000) + 1) == 0)
            break;
        if (p.revents & POLLIN) { /* canonical mode: one whole line */
            n = read(fd, line, sizeof(line) - 1);
            break;
        }
        if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
            break;
    }
    if (n > 0 && (line[0] == '\n' || line[0] == '\r' || strchr("jJyY", line[0])))
        r = 0;
    (void)tcflush(fd, TCIFLUSH);
    (void)!write(fd, "\n", 1);
out:
    close(fd);
    return r;
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

/* Read the PIN flags again: a job may have changed the PIN since the last scan. */
static void refresh_pin_state(struct watch *w, struct wtoken *t)
{
    struct tok_info *list = NULL;
    size_t n = 0;

    if (tok_list(w->ctx, &list, &n) < 0)
        return;
    for (size_t i = 0; i < n; i++)
        if (list[i].token_initialized && strcmp(list[i].serial, t->serial) == 0 &&
            strcmp(list[i].label, t->label) == 0)
            set_pin_state(t, &list[i]);
    free(list);
}

static const struct cli_pin_texts kiosk_texts_nl = {
    .new_pin = "  Nieuwe PIN",
    .again = "  Nieuwe PIN nogmaals: ",
    .chars = "tekens",
    .at_least = "minstens",
    .differ = "  De twee PINs zijn niet gelijk",
    .too_short = "  De nieuwe PIN is te kort",
    .too_long = "  De nieuwe PIN is te lang",
    .same = "  De nieuwe PIN moet anders zijn dan de transport-PIN",
};

static const struct cli_pin_texts kiosk_texts_en = {
    .new_pin = "  New PIN",
    .again = "  New PIN again: ",
    .chars = "characters",
    .at_least = "at least",
    .differ = "  The two PINs differ",
    .too_short = "  The new PIN is too short",
    .too_long = "  The new PIN is too long",
    .same = "  The new PIN must differ from the transport PIN",
};

/*
 * A token that still has its transport PIN: the transport PIN (from the PIN file, else typed)
 * and a new PIN, typed twice and checked here (length, equal, not the transport PIN) before the
 * token is touched. whom stands above the first prompt.
 */
static int kiosk_new_pin(struct watch *w, struct wtoken *t, const char *pin_source,
                         const char *whom, struct secret **ret_old, struct secret **ret_new)
{
    struct tok_info info;
    char prompt[768];
    int r;

    note(t, say(w, "Uw token heeft nog een transport-PIN: kies een nieuwe PIN",
                "Your token still has its transport PIN: choose a new PIN"));
    render(w);
    if (pin_source) { /* the station's transport PIN file: the pipe carries it */
        r = secret_from_file(pin_source, 256, ret_old);
        if (r < 0) {
            note(t, say(w, "PIN-bestand onbruikbaar - roep een medewerker",
                        "PIN file unusable - call an officer"));
            return r;
        }
    } else {
        snprintf(prompt, sizeof(prompt), "%s%s  %s (%s): ", whom ? whom : "", whom ? "\n" : "",
                 say(w, "Transport-PIN", "Transport PIN"), t->label);
        r = secret_prompt(prompt, 256, ret_old);
        whom = NULL; /* shown */
        if (r < 0) {
            note(t, say(w, "Geen PIN ingevoerd - haal het token eruit en plaats het opnieuw",
                        "No PIN entered - remove the token and insert it again"));
            return r;
        }
    }
    wtoken_info(t, &info);
    info.min_pin_len = t->min_pin_len;
    info.max_pin_len = t->max_pin_len;
    r = cli_ask_new_pin(&info, *ret_old, w->dutch ? &kiosk_texts_nl : &kiosk_texts_en, whom,
                        ret_new);
    if (r < 0)
        note(t, say(w, "Geen nieuwe PIN gekozen - haal het token eruit en plaats het opnieuw",
                    "No new PIN chosen - remove the token and insert it again"));
    return r;
}

/* A pipe holding the --pin-fd protocol: the PIN, and the new PIN when there is one. */
static int pin_pipe(const struct secret *pin, const struct secret *new_pin)
{
    int fds[2];
    bool ok;

    if (pipe2(fds, O_CLOEXEC) < 0)
        return -2;
    /* Two PINs are far smaller than a pipe's buffer: this never blocks. */
    ok = write(fds[1], pin->buf, pin->len) == (ssize_t)pin->len && write(fds[1], "\n", 1) == 1;
    if (ok && new_pin)
        ok = write(fds[1], new_pin->buf, new_pin->len) == (ssize_t)new_pin->len &&
             write(fds[1], "\n", 1) == 1;
    close(fds[1]); /* the child reads up to end of file */
    if (!ok) {
        close(fds[0]);
        return -2;
    }
    return fds[0];
}

/*
 * The PIN for a job on a kiosk: typed on the kiosk's terminal, without echo, and handed to the
 * job's process through a pipe; whom (may be NULL) is shown right above the prompt, so typing the
 * PIN confirms it. A token that still has its transport PIN gets a new one here: transport PIN
 * (typed, or from pin_source) and new PIN travel together. Returns the pipe's read end, -1 when no
 * PIN is to be typed here (a PIN file or the PIN pad serves), or -2 when the job must not start
 * (say why in t->note).
 */
static int kiosk_pin(struct watch *w, struct wtoken *t, const char *pin_source, const char *whom)
{
    struct secret *pin = NULL, *new_pin = NULL;
    char prompt[768];
    int fd = -2, r;

    if (!w->kiosk)
        return -1;
    refresh_pin_state(w, t);
    if (t->pinpad || (pin_source && !t->pin_change))
        return -1;
    if (t->pin_blocked) { /* never spend the last try, never type into a locked token */
        note(t, say(w, "PIN geblokkeerd of laatste poging - roep een medewerker",
                    "PIN blocked or on its last try - call an officer"));
        return -2;
    }
    if (t->pin_change) {
        r = kiosk_new_pin(w, t, pin_source, whom, &pin, &new_pin);
    } else {
        note(t, say(w, "Voer de PIN van uw token in", "Enter your token's PIN"));
        render(w);
        snprintf(prompt, sizeof(prompt), "%s%s  PIN (%s): ", whom ? whom : "", whom ? "\n" : "",
                 t->label);
        r = secret_prompt(prompt, 256, &pin);
        if (r < 0)
            note(t, say(w, "Geen PIN ingevoerd - haal het token eruit en plaats het opnieuw",
                        "No PIN entered - remove the token and insert it again"));
    }
    if (r == 0)
        fd = pin_pipe(pin, new_pin);
    secret_free(pin);
    secret_free(new_pin);
    if (fd >= 0)
        t->note[0] = '\0';
    return fd;
}

/*
 * Before a queued enrollment starts on a kiosk: show whose certificate it will be and on which
 * token. Typing the PIN confirms it; where a PIN file or the PIN pad serves, the enrollee presses
 * a key instead, within --confirm-timeout. Returns as kiosk_pin does (-2: not confirmed).
 */
static int kiosk_confirm(struct watch *w, struct wtoken *t, const char *request, const char *pin)
{
    char whom[512], prompt[768];

    if (!w->kiosk)
        return -1;
    whom_text(w, t, request, whom, sizeof(whom));
    refresh_pin_state(w, t);
    if ((!pin || t->pin_change) && !t->pinpad) /* typing a PIN confirms */
        return kiosk_pin(w, t, pin, whom);
    note(t,
         say(w, "Controleer wiens certificaat dit wordt", "Check whose certificate this will be"));
    render(w);
    snprintf(prompt, sizeof(prompt), "%s\n  %s (%.0f s): ", whom,
             say(w, "Klopt dit? Druk op Enter of j om te bevestigen, n om te stoppen",
                 "Is this right? Press Enter or y to confirm, n to stop"),
             w->confirm_s);
    if (tty_confirm(prompt, w->confirm_s) < 0) {
        note(t, say(w, "Niet bevestigd - haal het token eruit en plaats het opnieuw",
                    "Not confirmed - remove the token and insert it again"));
        return -2;
    }
    t->note[0] = '\0';
    return -1;
}

/* The URI the child selects this one token by (label and serial), with the PIN file if any. */
static void token_uri_of(const struct wtoken *t, const char *pin, char *uri, size_t len)
{
    struct tok_info info = {0};
    char *base;

    snprintf(info.label, sizeof(info.label), "%s", t->label);
    snprintf(info.serial, sizeof(info.serial), "%s", t->serial);
    base = tok_uri_for_key(&info, NULL, 0, NULL);
    snprintf(uri, len, "%s%s%s", base ? base : "", pin ? "?pin-source=" : "", pin ? pin : "");
    free(base);
}

static void wtoken_info(const struct wtoken *t, struct tok_info *ret)
{
    memset(ret, 0, sizeof(*ret));
    snprintf(ret->serial, sizeof(ret->serial), "%s", t->serial);
    snprintf(ret->label, sizeof(ret->label), "%s", t->label);
    snprintf(ret->manufacturer, sizeof(ret->manufacturer), "%s", t->manufacturer);
    snprintf(ret->model, sizeof(ret->model), "%s", t->model);
}

/* Continue the unfinished job of a token that came back. */
static void resume_job(struct watch *w, struct wtoken *t, const struct job *j)
{
    const char *cmd[] = {"resume", j->id, "--pin-source", NULL, NULL};
    char *pin = pin_source_of(w, NULL);
    char whom[512];
    int pin_fd;

    if (pin)
        cmd[3] = pin;
    else
        cmd[2] = NULL;
    if (w->kiosk)
        whom_text(w, t, j->request_path, whom, sizeof(whom));
    pin_fd = kiosk_pin(w, t, pin, w->kiosk ? whom : NULL);
    if (pin_fd >= 0)
        cmd[2] = NULL; /* the pipe carries every PIN */
    if (pin_fd != -2 && spawn(w, t, cmd, pin_fd) == 0)
        fprintf(stderr, "pkio-agent: watch: token '%s' (serial %s): resuming job %s\n", t->label,
                t->serial, j->id);
    if (pin_fd >= 0)
        close(pin_fd);
    free(pin);
}

/* A token that holds keys or certificates and is none of our business: never written to. */
static void token_in_use(struct watch *w, struct wtoken *t)
{
    note(t, say(w, "Token is al in gebruik - roep een medewerker",
                "Token already in use - call an officer"));
    if (!t->in_use_noted)
        fprintf(stderr,
                "pkio-agent: watch: token '%s' (serial %s) is in use (it holds keys or "
                "certificates) and no queued request is bound to it: left alone\n",
                t->label, t->serial);
    t->in_use_noted = true;
}

/* Is the token blank, counted without logging in? 1 yes, 0 no, negative: could not count. */
static int token_blank(struct watch *w, const struct wtoken *t, struct tok_info *info)
{
    struct tok_contents c;
    int r;

    wtoken_info(t, info);
    r = tok_peek_contents(w->ctx, info, &c);
    if (r < 0) {
        fprintf(stderr, "pkio-agent: watch: token '%s' (serial %s): counting its objects: %s\n",
                t->label, t->serial, tok_detail());
        return r;
    }
    return tok_contents_blank(&c) ? 1 : 0;
}

/* Enroll a taken queue entry on this token (after the kiosk's confirmation). */
static void enroll_entry(struct watch *w, struct wtoken *t, const struct queue_entry *e)
{
    bool bound = !queue_bind_empty(&e->bind);
    char uri[512], *pin = pin_source_of(w, e->token_uri);
    /* An unbound entry: the child checks blankness again once logged in (private keys). */
    const char *cmd[] = {
        "enroll", "--token", uri, "--request", e->request, bound ? NULL : "--only-blank", NULL};
    int pin_fd;

    pin_fd = kiosk_confirm(w, t, e->request, pin);
    token_uri_of(t, pin_fd >= 0 ? NULL : pin, uri, sizeof(uri)); /* the pipe carries every PIN */
    if (pin_fd == -2 || spawn(w, t, cmd, pin_fd) < 0) {
        (void)queue_untake(cli_state_dir(w->cli), e->id); /* nothing lost: back in the queue */
    } else {
        memcpy(t->queued, e->id, sizeof(t->queued));
        fprintf(stderr,
                "pkio-agent: watch: token '%s' (serial %s): enrolling queued request %s (%s)\n",
                t->label, t->serial, e->id, bound ? "bound to this token" : "for a blank token");
    }
    if (pin_fd >= 0)
        close(pin_fd);
    free(pin);
}

/* A token never enrolled here: the request bound to it, else (blank only) an unbound one. */
static void take_queued(struct watch *w, struct wtoken *t)
{
    struct queue_entry e;
    struct tok_info info;
    int blank = token_blank(w, t, &info);

    if (queue_take(cli_state_dir(w->cli), &info, blank == 1, &e) == 0) {
        enroll_entry(w, t, &e);
        queue_entry_clear(&e);
        return;
    }
    t->want_request = true; /* a request bound to it may still be queued */
    if (blank == 0) {
        token_in_use(w, t);
    } else if (blank < 0) {
        note(t, say(w, "Token kan niet gelezen worden - even geduld",
                    "Cannot read the token - please wait"));
        t->retry_at = time(NULL) + (time_t)(w->retry_s + 0.999);
    } else {
        note(t, say(w, "Geen aanvraag klaar voor dit token - roep een medewerker",
                    "No request queued for this token - call an officer"));
    }
}

static void start_job(struct watch *w, struct wtoken *t)
{
    struct job *j;
    bool unfinished = false;

    if (t->child || ignored(w, t->serial) || !t->present || t->pin_failed || t->refused)
        return;
    t->want_request = false;
    j = job_of(w, t, &unfinished);
    if (j && unfinished)
        resume_job(w, t, j);
    else if (!j)
        take_queued(w, t);
    /* else: enrolled before, and that job ended: never again by itself */
    job_free(j);
}

/* A token listed by the module: new, back, or still there. */
static void token_seen(struct watch *w, const struct tok_info *info)
{
    struct wtoken *t = find_token(w, info->serial, info->label);

    if (!t && w->ntokens < MAX_TOKENS) {
        t = &w->tokens[w->ntokens++];
        memset(t, 0, sizeof(*t));
        snprintf(t->serial, sizeof(t->serial), "%s", info->serial);
        snprintf(t->label, sizeof(t->label), "%s", info->label);
        t->last_exit = -1;
        t->left_at = 1; /* treat as an arrival below */
    }
    if (!t)
        return;
    t->present = true;
    snprintf(t->manufacturer, sizeof(t->manufacturer), "%s", info->manufacturer);
    snprintf(t->model, sizeof(t->model), "%s", info->model);
    set_pin_state(t, info);
    if (t->left_at) { /* arrived (or came back): whatever held it back is forgotten */
        t->left_at = 0;
        t->pin_failed = false;
        t->refused = false;
        t->in_use_noted = false;
        t->retry_at = 0;
        start_job(w, t);
    }
}

/* Re-enumerate: which tokens are present now? */
static void scan(struct watch *w)
{
    struct tok_info *list = NULL;
    size_t n = 0;
    time_t now = time(NULL);

    if (tok_rescan(w->ctx) < 0 || tok_list(w->ctx, &list, &n) < 0) {
        fprintf(stderr, "pkio-agent: watch: listing tokens: %s\n", tok_detail());
        return;
    }
    for (size_t i = 0; i < w->ntokens; i++)
        w->tokens[i].present = false;
    for (size_t i = 0; i < n; i++)
        if (list[i].token_initialized)
            token_seen(w, &list[i]);
    for (size_t i = 0; i < w->ntokens; i++) {
        struct wtoken *t = &w->tokens[i];

        if (!t->present && !t->left_at)
            t->left_at = now;
    }
    free(list);
}

/* The child of a queued enrollment ended: return the request if nothing was enrolled. */
static void requeue(struct watch *w, struct wtoken *t, bool refused)
{
    bool unfinished = false;
    struct job *j = job_of(w, t, &unfinished);

    /* Never started (no job), or refused as not for this token: back to the queue. */
    if (!j || refused)
        (void)queue_untake(cli_state_dir(w->cli), t->queued);
    job_free(j);
}

static void child_exited(struct watch *w, struct wtoken *t, int status)
{
    bool refused;

    t->child = 0;
    t->last_exit = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    refused = t->last_exit == pa_err_exit_code(PA_E_REFUSED);
    if (t->queued[0])
        requeue(w, t, refused);
    if (refused) {
        /* Not for this token: never tried again by itself (a re-insertion clears it). */
        fprintf(stderr,
                "pkio-agent: watch: token '%s' (serial %s) refused by its job's safety check "
                "(not blank once logged in)%s%s%s; left alone until it is re-inserted\n",
                t->label, t->serial, t->queued[0] ? ": request " : "", t->queued,
                t->queued[0] ? " is back in the queue" : "");
        t->refused = true;
        t->in_use_noted = true; /* that was its one journal line */
        token_in_use(w, t);
    } else if (t->last_exit == 6 || t->last_exit == 7) {
        t->pin_failed = true;
        /* A rejected or blocked PIN is never tried again by itself. */
        note(t, say(w, "PIN onjuist of geblokkeerd - roep een medewerker",
                    "PIN wrong or blocked - call an officer"));
    } else if (t->last_exit != 0 && !w->stopping) {
        /* Not done yet (waiting, token pulled, CertCentral away): try again later. */
        t->retry_at = time(NULL) + (time_t)(w->retry_s + 0.999);
    }
    t->queued[0] = '\0';
}

static void reap(struct watch *w)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        for (size_t i = 0; i < w->ntokens; i++)
            if (w->tokens[i].child == pid)
                child_exited(w, &w->tokens[i], status);
}

/* The kiosk line for one token. */
static const char *token_status(struct watch *w, const struct wtoken *t)
{
    bool unfinished = false;
    struct job *j = job_of(w, t, &unfinished);
    static char buf[200];
    const char *s = NULL;

    if (!j) {
        snprintf(buf, sizeof(buf), "%s",
                 t->note[0] ? t->note : say(w, "Even geduld...", "Please wait..."));
        return buf;
    }
    switch (j->state) {
    case JOB_NEW:
        s = say(w, "Sleutel wordt gemaakt...", "Generating the key...");
        break;
    case JOB_KEY_READY:
    case JOB_CSR_READY:
        s = say(w, "Aanvraag wordt voorbereid...", "Preparing the request...");
        break;
    case JOB_ORDERING:
    case JOB_ORDERED:
        s = strcmp(j->order_status, "needs_approval") == 0
                ? say(w, "Certificaat aangevraagd - wacht op goedkeuring",
                      "Certificate requested - waiting for approval")
                : say(w, "Certificaat aangevraagd - even geduld",
                      "Certificate requested - please wait");
        break;
    case JOB_ISSUED:
    case JOB_INSTALLED:
        s = say(w, "Certificaat wordt op het token gezet...",
                "Writing the certificate to the token...");
        break;
    case JOB_DONE:
        s = say(w, "Klaar - u kunt het token verwijderen", "Done - you may remove the token");
        break;
    case JOB_FAILED:
        s = say(w, "Er ging iets mis - roep een medewerker",
                "Something went wrong - call an officer");
        break;
    case JOB_CANCELED:
        s = say(w, "Geannuleerd - roep een medewerker", "Canceled - call an officer");
        break;
    case JOB_STATE__MAX:
    default:
        s = "?";
        break;
    }
    if (!t->present && unfinished)
        s = say(w, "Token verwijderd - plaats het opnieuw om verder te gaan",
                "Token removed - insert it again to continue");
    else if (unfinished && !t->child && (t->last_exit == 6 || t->last_exit == 7))
        s = say(w, "PIN nodig of geblokkeerd - roep een medewerker",
                "PIN needed or blocked - call an officer");
    snprintf(buf, sizeof(buf), "%s", s);
    job_free(j);
    return buf;
}

static void render(struct watch *w)
{
    time_t now = time(NULL);
    size_t shown = 0;

    if (!w->kiosk)
        return;
    fputs("\033[H\033[2J\n", stdout);
    fputs(say(w, "  PKIoverheid certificaat op uw token\n\n",
              "  PKIoverheid certificate on your token\n\n"),
          stdout);
    for (size_t i = 0; i < w->ntokens; i++) {
        const struct wtoken *t = &w->tokens[i];

        if (ignored(w, t->serial))
            continue;
        if (!t->present && (!t->left_at || difftime(now, t->left_at) > w->idle_s))
            continue; /* idle timeout: a token gone long enough leaves the screen */
        printf("  \033[1m%s\033[0m\n    (token %s)\n\n", token_status(w, t), t->label);
        shown++;
    }
    if (!shown)
        printf("  \033[1m%s\033[0m\n", say(w, "Plaats uw token", "Insert your token"));
    fflush(stdout);
}

static int next_timeout_ms(struct watch *w)
{
    int ms = detect_timeout_ms(w->det);
    time_t now = time(NULL);

    for (size_t i = 0; i < w->ntokens; i++) {
        const struct wtoken *t = &w->tokens[i];
        int d = -1;

        if (t->retry_at && t->present && !t->child)
            d = t->retry_at > now ? (int)(t->retry_at - now) * 1000 : 0;
        else if (w->kiosk && !t->present && t->left_at && difftime(now, t->left_at) <= w->idle_s)
            d = (int)((w->idle_s - difftime(now, t->left_at)) * 1000) + 100;
        if (d >= 0 && (ms < 0 || d < ms))
            ms = d;
    }
    return ms;
}

static void status_line(struct watch *w)
{
    char msg[256];
    size_t present = 0, running = 0;

    for (size_t i = 0; i < w->ntokens; i++) {
        present += w->tokens[i].present;
        running += w->tokens[i].child != 0;
    }
    snprintf(msg, sizeof(msg), "STATUS=%zu token(s) present, %zu job(s) running; sources %s",
             present, running, detect_sources(w->det));
    sd_notify_msg(msg);
}

/* Signals arrive through a pipe: SIGCHLD reaps, the others stop the daemon. */
static void on_signals(struct watch *w)
{
    unsigned char sig;

    while (read(sigpipe_fd[0], &sig, 1) == 1) {
        if (sig == SIGCHLD) {
            reap(w);
        } else if (!w->stopping) {
            w->stopping = true;
            sd_notify_msg("STOPPING=1");
            fprintf(stderr, "pkio-agent: watch: stopping; jobs finish their current step\n");
            for (size_t i = 0; i < w->ntokens; i++)
                if (w->tokens[i].child)
                    kill(w->tokens[i].child, SIGTERM);
        }
    }
}

/* Job records changed or requests arrived: tokens waiting for a request look again. */
static void on_inotify(struct watch *w)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool queued = false;
    ssize_t len;

    while ((len = read(w->inofd, buf, sizeof(buf))) > 0) {
        for (char *q = buf; q < buf + len;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)q;

            if (ev->len && strstr(ev->name, ".json") && !strstr(ev->name, ".request.") &&
                !strstr(ev->name, ".tmp."))
                queued |= ev->mask & IN_MOVED_TO;
            q += sizeof(*ev) + ev->len;
        }
    }
    for (size_t i = 0; queued && !w->stopping && i < w->ntokens; i++)
        if (w->tokens[i].want_request)
            start_job(w, &w->tokens[i]);
}

static void retry_due(struct watch *w)
{
    time_t now = time(NULL);

    for (size_t i = 0; i < w->ntokens; i++) {
        struct wtoken *t = &w->tokens[i];

        if (t->retry_at && t->retry_at <= now && t->present && !t->child) {
            t->retry_at = 0;
            start_job(w, t);
        }
    }
}

static void handle_signals_setup(struct watch *w)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    if (w->kiosk) { /* no way out from the kiosk's keyboard */
        signal(SIGINT, SIG_IGN);
        signal(SIGQUIT, SIG_IGN);
        signal(SIGTSTP, SIG_IGN);
    } else {
        sigaction(SIGINT, &sa, NULL);
    }
}

/* Module, token events, and inotify on the job records and the queue. */
static int watch_setup(struct watch *w)
{
    struct detect_opts dopts = {
        .use_pcsc = strstr(w->detect_list, "pcsc") != NULL,
        .use_udev = strstr(w->detect_list, "udev") != NULL,
        .rescan_s = w->rescan_s,
        .force_rescan = strstr(w->detect_list, "rescan") != NULL,
    };
    char jobs[4096], queue[4096];
    int r;

    if (pipe2(sigpipe_fd, O_CLOEXEC | O_NONBLOCK) < 0)
        return cli_fail(PA_E_INTERNAL, strerror(errno), "watch");
    handle_signals_setup(w);
    r = tok_open(cli_module(w->cli), &w->ctx);
    if (r < 0)
        return cli_fail(r, tok_detail(), "PKCS#11 module %s", cli_module(w->cli));
    r = detect_open(&dopts, &w->det);
    if (r < 0)
        return cli_fail(r, NULL, "token detection");
    snprintf(jobs, sizeof(jobs), "%s/jobs", cli_state_dir(w->cli));
    /* Job records change (kiosk screen) and requests arrive in the queue: both are events. */
    w->inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (queue_dir_prepare(cli_state_dir(w->cli)) < 0)
        return cli_fail(PA_E_IO, strerror(errno), "queue in %s", cli_state_dir(w->cli));
    snprintf(queue, sizeof(queue), "%s/queue", cli_state_dir(w->cli));
    if (w->inofd >= 0 && (inotify_add_watch(w->inofd, jobs, IN_MOVED_TO | IN_CLOSE_WRITE) < 0 ||
                          inotify_add_watch(w->inofd, queue, IN_MOVED_TO) < 0)) {
        close(w->inofd);
        w->inofd = -1;
    }
    return 0;
}

static bool any_running(const struct watch *w)
{
    for (size_t i = 0; i < w->ntokens; i++)
        if (w->tokens[i].child)
            return true;
    return false;
}

static int watch_loop(struct watch *w)
{
    int r = watch_setup(w);

    if (r < 0)
        return r;
    fprintf(stderr, "pkio-agent: watch: ready; token events from %s\n", detect_sources(w->det));
    sd_notify_msg("READY=1");
    scan(w);
    render(w);
    status_line(w);
    for (;;) {
        struct pollfd p[3] = {
            {sigpipe_fd[0], POLLIN, 0},
            {detect_fd(w->det), POLLIN, 0},
            {w->inofd, POLLIN, 0},
        };
        char what[160];

        if (w->stopping && !any_running(w))
            break;
        if (w->stopping)
            p[1].fd = -1; /* events no longer matter, and an unread one would spin poll() */
        if (poll(p, w->inofd >= 0 ? 3 : 2, w->stopping ? -1 : next_timeout_ms(w)) < 0 &&
            errno != EINTR)
            break;
        if (p[0].revents & POLLIN)
            on_signals(w);
        if (p[2].revents & POLLIN)
            on_inotify(w);
        if (!w->stopping && detect_poll(w->det, what, sizeof(what)) > 0)
            scan(w);
        if (!w->stopping)
            retry_due(w);
        render(w);
        status_line(w);
    }
    return 0;
}

#define SYN_WATCH                                                                                  \
    "watch [--kiosk] [--lang nl|en] [--detect pcsc,udev,rescan] [--rescan S] "                     \
    "[--pin-source FILE] [--ignore SERIAL]... [--idle-timeout S] [--retry S] "                     \
    "[--confirm-timeout S]"

/* A positive number of seconds for --rescan, --idle-timeout, --retry or --confirm-timeout. */
static int seconds_opt(struct watch *w, int c, const char *arg)
{
    double *dst = c == OPT_RESCAN  ? &w->rescan_s
                  : c == OPT_IDLE  ? &w->idle_s
                  : c == OPT_RETRY ? &w->retry_s
                                   : &w->confirm_s;
    const char *name = c == OPT_RESCAN  ? "--rescan"
                       : c == OPT_IDLE  ? "--idle-timeout"
                       : c == OPT_RETRY ? "--retry"
                                        : "--confirm-timeout";
    char *end = NULL;
    double v = strtod(arg, &end);

    if (!*arg || *end || !(v > 0))
        return cli_fail(PA_E_USAGE, "a positive number of seconds", "%s", name);
    *dst = v;
    return 0;
}

/* One of watch's options; 1 for --help, 0, or PA_E_USAGE (reported). */
static int watch_option(struct watch *w, int c, const char **lang)
{
    switch (c) {
    case OPT_KIOSK:
        w->kiosk = true;
        return 0;
    case OPT_LANG:
        *lang = optarg;
        return 0;
    case OPT_DETECT:
        w->detect_list = optarg;
        return 0;
    case OPT_PIN_SOURCE:
        w->pin_source = optarg;
        return 0;
    case OPT_IGNORE:
        if (w->nignore < 32)
            w->ignore[w->nignore++] = optarg;
        return 0;
    case 'h':
        cli_usage(SYN_WATCH);
        return 1;
    case OPT_RESCAN:
    case OPT_IDLE:
    case OPT_RETRY:
    case OPT_CONFIRM:
        return seconds_opt(w, c, optarg);
    default:
        return cli_fail(PA_E_USAGE, NULL, "watch");
    }
}

/* watch's options into w; 1 when --help was shown, 0, or PA_E_USAGE (reported). */
static int watch_options(struct watch *w, int argc, char **argv)
{
    static const struct option opts[] = {
        {"kiosk", no_argument, NULL, OPT_KIOSK},
        {"lang", required_argument, NULL, OPT_LANG},
        {"rescan", required_argument, NULL, OPT_RESCAN},
        {"detect", required_argument, NULL, OPT_DETECT},
        {"pin-source", required_argument, NULL, OPT_PIN_SOURCE},
        {"ignore", required_argument, NULL, OPT_IGNORE},
        {"idle-timeout", required_argument, NULL, OPT_IDLE},
        {"retry", required_argument, NULL, OPT_RETRY},
        {"confirm-timeout", required_argument, NULL, OPT_CONFIRM},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *lang = NULL;
    int c, r = 0;

    while (r == 0 && (c = getopt_long(argc, argv, "h", opts, NULL)) != -1)
        r = watch_option(w, c, &lang);
    if (r == 0 && (optind != argc || (lang && strcmp(lang, "nl") != 0 && strcmp(lang, "en") != 0)))
        r = cli_fail(PA_E_USAGE, "--lang nl or en", "watch");
    w->dutch = lang ? strcmp(lang, "nl") == 0 : w->kiosk; /* Dutch by default for kiosks */
    return r;
}

int cmd_watch(struct cli *cli, int argc, char **argv)
{
    struct watch *w = calloc(1, sizeof(*w));
    char err[512] = "";
    int r;

    if (!w)
        return cli_fail(PA_E_NOMEM, NULL, "watch");
    w->cli = cli;
    w->rescan_s = 2.0;
    w->detect_list = "pcsc,udev";
    w->idle_s = 30;
    w->retry_s = 30;
    w->confirm_s = 60;
    w->inofd = -1;
    r = watch_options(w, argc, argv);
    if (r != 0) {
        free(w);
        return r > 0 ? 0 : r;
    }
    r = job_dir_prepare(cli_state_dir(cli), err, sizeof(err));
    if (r < 0)
        cli_fail(r, err, "state directory %s", cli_state_dir(cli));
    else
        r = watch_loop(w);
    detect_close(w->det);
    tok_close(w->ctx);
    if (w->inofd >= 0)
        close(w->inofd);
    free(w);
    return r;
}

/* The binding of an entry as JSON (null when unbound). */
static json_object *bind_json(const struct queue_bind *b)
{
    const char *names[] = {"serial", "token", "manufacturer", "model"};
    const char *vals[] = {b->serial, b->label, b->manufacturer, b->model};
    json_object *o;

    if (queue_bind_empty(b))
        return NULL;
    o = json_object_new_object();
    for (size_t i = 0; i < 4; i++)
        if (vals[i])
            json_object_object_add(o, names[i], json_object_new_string(vals[i]));
    return o;
}

static int queue_list_cmd(struct cli *cli, int argc, char **argv)
{
    struct queue_entry *v = NULL;
    size_t n = 0;
    int r;

    if (argc == 3 && strcmp(argv[2], "--json") == 0)
        cli->json = true;
    else if (argc != 2)
        return cli_fail(PA_E_USAGE, NULL, "queue list");
    r = queue_list(cli_state_dir(cli), &v, &n);
    if (r < 0)
        return cli_fail(r, NULL, "queue in %s", cli_state_dir(cli));
    if (cli->json) {
        json_object *o = json_object_new_object(), *a = json_object_new_array();

        for (size_t i = 0; i < n; i++) {
            json_object *e = json_object_new_object();

            json_object_object_add(e, "id", json_object_new_string(v[i].id));
            json_object_object_add(
                e, "serial", v[i].bind.serial ? json_object_new_string(v[i].bind.serial) : NULL);
            json_object_object_add(e, "bind", bind_json(&v[i].bind));
            json_object_object_add(e, "request", json_object_new_string(v[i].request));
            json_object_array_add(a, e);
        }
        json_object_object_add(o, "queue", a);
        cli_print_json(o);
    } else {
        for (size_t i = 0; i < n; i++) {
            char b[256];

            queue_bind_format(&v[i].bind, b, sizeof(b));
            printf("%s  %s\n", v[i].id, b[0] ? b : "(first blank token)");
        }
        if (!n)
            printf("queue is empty\n");
    }
    queue_list_free(v, n);
    return 0;
}

/* queue add's options; PA_E_USAGE (reported) when they do not add up. */
static int queue_add_args(struct cli *cli, int argc, char **argv, const char **request,
                          const char **serial, const char **token)
{
    static const struct option opts[] = {
        {"request", required_argument, NULL, OPT_REQUEST},
        {"serial", required_argument, NULL, OPT_SERIAL},
        {"token", required_argument, NULL, OPT_TOKEN},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == OPT_REQUEST)
            *request = optarg;
        else if (c == OPT_SERIAL)
            *serial = optarg;
        else if (c == OPT_TOKEN)
            *token = optarg;
        else if (c == OPT_JSON)
            cli->json = true;
        else
            return cli_fail(PA_E_USAGE, NULL, "queue add");
    }
    if (!*request || optind != argc)
        return cli_fail(PA_E_USAGE, "--request FILE is required", "queue add");
    return 0;
}

static int queue_add_cmd(struct cli *cli, int argc, char **argv)
{
    const char *request = NULL, *serial = NULL, *token = NULL;
    struct queue_bind bind = {0};
    struct req *req = NULL;
    char err[512] = "", id[33], b[256];
    int r;

    r = queue_add_args(cli, argc, argv, &request, &serial, &token);
    if (r < 0)
        return r;
    /* The binding: --serial and the token attributes of --token (its pin-source only is kept in
     * the URI; a PIN never goes into the state directory: pin-value is refused). */
    r = queue_bind_from(serial, token, &bind, err, sizeof(err));
    if (r < 0)
        return cli_fail(r, err, "queue add");
    /* A queued request must be valid now, not when a token arrives at an unattended kiosk. */
    r = cli_prepare_request(cli, request, NULL, &req);
    if (r == 0)
        r = job_dir_prepare(cli_state_dir(cli), err, sizeof(err));
    if (r == 0)
        r = queue_add(cli_state_dir(cli), request, &bind, token, id, err, sizeof(err));
    if (r < 0 && err[0])
        cli_fail(r, err, "queue");
    if (r == 0 && cli->json) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "id", json_object_new_string(id));
        json_object_object_add(o, "bind", bind_json(&bind));
        cli_print_json(o);
    } else if (r == 0) {
        queue_bind_format(&bind, b, sizeof(b));
        printf("queued %s for %s%s\n", id, b[0] ? "the token with " : "the first blank token", b);
    }
    queue_bind_clear(&bind);
    req_free(req);
    return r;
}

int cmd_queue(struct cli *cli, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "list") == 0)
        return queue_list_cmd(cli, argc, argv);
    if (argc >= 2 && strcmp(argv[1], "add") == 0)
        return queue_add_cmd(cli, argc - 1, argv + 1);
    cli_usage("queue add --request FILE [--serial S] [--token URI] | queue list [--json]");
    return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : PA_E_USAGE;
}
