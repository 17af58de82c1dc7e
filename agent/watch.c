/* SPDX-License-Identifier: Apache-2.0 */
/*
 * watch.c - the hands-free station: `pkio-agent watch [--kiosk]` and `pkio-agent queue`.
 *
 * A foreground daemon made for systemd. It waits (without spinning) for token events, then
 * re-enumerates through PKCS#11. For every token that arrives it resumes the job bound to that
 * token's serial and label, or takes the next request from the queue and enrolls it. Each job
 * runs in its own child process (the same binary, `resume` or `enroll`), so jobs are independent
 * and a pulled token only stops its own job: the record stays where it was (parked) and the job
 * continues when the same token returns. SIGTERM is passed to the children, which stop once their
 * current step is safe; the daemon exits when they have.
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
    OPT_REQUEST,
    OPT_SERIAL,
    OPT_TOKEN
};

struct wtoken {
    char serial[17], label[33];
    bool present;
    pid_t child;       /* 0 = none running */
    int last_exit;     /* exit status of the last child, -1 none */
    time_t retry_at;   /* when to try again after a child that stopped early; 0 = on arrival */
    time_t left_at;    /* when it was removed */
    bool pinpad;       /* the token has a protected authentication path */
    bool pin_blocked;  /* locked, final try, must change, or no PIN set: never prompt */
    char queued[33];   /* queue entry an enroll child took (returned if it never started) */
    bool want_request; /* present, never enrolled, waiting for a queued request */
    bool pin_failed;   /* the last PIN was rejected: nothing more until it is re-inserted */
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

static void render(struct watch *w);

/*
 * The PIN for a job on a kiosk: typed on the kiosk's terminal, without echo, and handed to the
 * job's process through a pipe. Returns the pipe's read end, -1 when no PIN is to be typed here
 * (a PIN file or the PIN pad serves), or -2 when the job must not start (say why in t->note).
 */
static int kiosk_pin(struct watch *w, struct wtoken *t, const char *pin_source)
{
    struct secret *pin = NULL;
    char prompt[96];
    int fds[2], r;

    if (!w->kiosk || pin_source || t->pinpad)
        return -1;
    if (t->pin_blocked) { /* never spend the last try, never type into a locked token */
        snprintf(t->note, sizeof(t->note), "%s",
                 say(w, "PIN geblokkeerd of laatste poging - roep een medewerker",
                     "PIN blocked or on its last try - call an officer"));
        return -2;
    }
    snprintf(t->note, sizeof(t->note), "%s",
             say(w, "Voer de PIN van uw token in", "Enter your token's PIN"));
    render(w);
    snprintf(prompt, sizeof(prompt), "  PIN (%s): ", t->label);
    r = secret_prompt(prompt, 256, &pin);
    if (r < 0) {
        snprintf(t->note, sizeof(t->note), "%s",
                 say(w, "Geen PIN ingevoerd - haal het token eruit en plaats het opnieuw",
                     "No PIN entered - remove the token and insert it again"));
        return -2;
    }
    if (pipe2(fds, O_CLOEXEC) < 0) {
        secret_free(pin);
        return -2;
    }
    /* A PIN is far smaller than a pipe's buffer: this never blocks. */
    if (write(fds[1], pin->buf, pin->len) != (ssize_t)pin->len || write(fds[1], "\n", 1) != 1) {
        close(fds[0]);
        fds[0] = -2;
    }
    close(fds[1]);
    secret_free(pin);
    t->note[0] = '\0';
    return fds[0];
}

static void start_job(struct watch *w, struct wtoken *t)
{
    struct queue_entry e;
    struct job *j;
    bool unfinished = false;
    char uri[512], *pin = NULL;
    int pin_fd;

    if (t->child || ignored(w, t->serial) || !t->present || t->pin_failed)
        return;
    t->want_request = false;
    j = job_of(w, t, &unfinished);
    if (j && unfinished) {
        const char *cmd[] = {"resume", j->id, "--pin-source", NULL, NULL};

        pin = pin_source_of(w, NULL);
        if (pin)
            cmd[3] = pin;
        else
            cmd[2] = NULL;
        pin_fd = kiosk_pin(w, t, pin);
        if (pin_fd != -2 && spawn(w, t, cmd, pin_fd) == 0)
            fprintf(stderr, "pkio-agent: watch: token '%s' (serial %s): resuming job %s\n",
                    t->label, t->serial, j->id);
        if (pin_fd >= 0)
            close(pin_fd);
        job_free(j);
        free(pin);
        return;
    }
    if (j) { /* enrolled before: never again by itself */
        job_free(j);
        return;
    }
    if (queue_take(cli_state_dir(w->cli), t->serial, &e) < 0) {
        t->want_request = true;
        snprintf(t->note, sizeof(t->note), "%s",
                 say(w, "Geen aanvraag klaar voor dit token - roep een medewerker",
                     "No request queued for this token - call an officer"));
        return;
    }
    pin = pin_source_of(w, e.token_uri);
    {
        struct tok_info info = {0};
        char *base;

        snprintf(info.label, sizeof(info.label), "%s", t->label);
        snprintf(info.serial, sizeof(info.serial), "%s", t->serial);
        base = tok_uri_for_key(&info, NULL, 0, NULL);
        snprintf(uri, sizeof(uri), "%s%s%s", base ? base : "", pin ? "?pin-source=" : "",
                 pin ? pin : "");
        free(base);
    }
    pin_fd = kiosk_pin(w, t, pin);
    if (pin_fd == -2) {
        (void)queue_untake(cli_state_dir(w->cli), e.id); /* nothing lost: back in the queue */
    } else {
        const char *cmd[] = {"enroll", "--token", uri, "--request", e.request, NULL};

        if (spawn(w, t, cmd, pin_fd) == 0) {
            memcpy(t->queued, e.id, sizeof(t->queued));
            fprintf(stderr,
                    "pkio-agent: watch: token '%s' (serial %s): enrolling queued request %s\n",
                    t->label, t->serial, e.id);
        } else {
            (void)queue_untake(cli_state_dir(w->cli), e.id);
        }
    }
    if (pin_fd >= 0)
        close(pin_fd);
    free(pin);
    queue_entry_clear(&e);
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
    for (size_t i = 0; i < n; i++) {
        struct wtoken *t;

        if (!list[i].token_initialized)
            continue;
        t = find_token(w, list[i].serial, list[i].label);
        if (!t && w->ntokens < MAX_TOKENS) {
            t = &w->tokens[w->ntokens++];
            memset(t, 0, sizeof(*t));
            snprintf(t->serial, sizeof(t->serial), "%s", list[i].serial);
            snprintf(t->label, sizeof(t->label), "%s", list[i].label);
            t->last_exit = -1;
            t->left_at = 1; /* treat as an arrival below */
        }
        if (!t)
            continue;
        t->present = true;
        t->pinpad = list[i].protected_auth_path;
        t->pin_blocked = tok_login_precheck(&list[i]) < 0;
        if (t->left_at) { /* arrived (or came back) */
            t->left_at = 0;
            t->pin_failed = false;
            t->retry_at = 0;
            start_job(w, t);
        }
    }
    for (size_t i = 0; i < w->ntokens; i++) {
        struct wtoken *t = &w->tokens[i];

        if (!t->present && !t->left_at)
            t->left_at = now;
    }
    free(list);
}

static void reap(struct watch *w)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < w->ntokens; i++) {
            struct wtoken *t = &w->tokens[i];

            if (t->child != pid)
                continue;
            t->child = 0;
            t->last_exit = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            if (t->queued[0]) {
                bool unfinished = false;
                struct job *j = job_of(w, t, &unfinished);

                /* The enrollment never started (no job): its request goes back to the queue. */
                if (!j)
                    (void)queue_untake(cli_state_dir(w->cli), t->queued);
                job_free(j);
                t->queued[0] = '\0';
            }
            if (t->last_exit == 6 || t->last_exit == 7) {
                t->pin_failed = true;
                /* A rejected or blocked PIN is never tried again by itself. */
                snprintf(t->note, sizeof(t->note), "%s",
                         say(w, "PIN onjuist of geblokkeerd - roep een medewerker",
                             "PIN wrong or blocked - call an officer"));
            } else if (t->last_exit != 0 && !w->stopping) {
                /* Not done yet (waiting, token pulled, CertCentral away): try again later. */
                t->retry_at = time(NULL) + (time_t)(w->retry_s + 0.999);
            }
        }
    }
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

static int watch_loop(struct watch *w)
{
    struct detect_opts dopts = {
        .use_pcsc = strstr(w->detect_list, "pcsc") != NULL,
        .use_udev = strstr(w->detect_list, "udev") != NULL,
        .rescan_s = w->rescan_s,
        .force_rescan = strstr(w->detect_list, "rescan") != NULL,
    };
    struct sigaction sa;
    char jobs[4096], queue[4096];
    int r;

    if (pipe2(sigpipe_fd, O_CLOEXEC | O_NONBLOCK) < 0)
        return cli_fail(PA_E_INTERNAL, strerror(errno), "watch");
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
        bool running = false;
        char what[160];

        for (size_t i = 0; i < w->ntokens; i++)
            running |= w->tokens[i].child != 0;
        if (w->stopping && !running)
            break;
        if (w->stopping)
            p[1].fd = -1; /* events no longer matter, and an unread one would spin poll() */
        if (poll(p, w->inofd >= 0 ? 3 : 2, w->stopping ? -1 : next_timeout_ms(w)) < 0 &&
            errno != EINTR)
            break;
        if (p[0].revents & POLLIN) {
            unsigned char sig;

            while (read(sigpipe_fd[0], &sig, 1) == 1) {
                if (sig == SIGCHLD) {
                    reap(w);
                } else if (!w->stopping) {
                    w->stopping = true;
                    sd_notify_msg("STOPPING=1");
                    fprintf(stderr,
                            "pkio-agent: watch: stopping; jobs finish their current step\n");
                    for (size_t i = 0; i < w->ntokens; i++)
                        if (w->tokens[i].child)
                            kill(w->tokens[i].child, SIGTERM);
                }
            }
        }
        if (p[2].revents & POLLIN) {
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
            /* A request added: tokens waiting for one get it now. */
            for (size_t i = 0; queued && !w->stopping && i < w->ntokens; i++)
                if (w->tokens[i].want_request)
                    start_job(w, &w->tokens[i]);
        }
        if (!w->stopping && detect_poll(w->det, what, sizeof(what)) > 0)
            scan(w);
        if (!w->stopping) {
            time_t now = time(NULL);

            for (size_t i = 0; i < w->ntokens; i++) {
                struct wtoken *t = &w->tokens[i];

                if (t->retry_at && t->retry_at <= now && t->present && !t->child) {
                    t->retry_at = 0;
                    start_job(w, t);
                }
            }
        }
        render(w);
        status_line(w);
    }
    return 0;
}

int cmd_watch(struct cli *cli, int argc, char **argv)
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
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct watch *w = calloc(1, sizeof(*w));
    const char *lang = NULL;
    char err[512] = "";
    int c, r;

    if (!w)
        return cli_fail(PA_E_NOMEM, NULL, "watch");
    w->cli = cli;
    w->rescan_s = 2.0;
    w->detect_list = "pcsc,udev";
    w->idle_s = 30;
    w->retry_s = 30;
    w->inofd = -1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end = NULL;
        double v;

        switch (c) {
        case OPT_KIOSK:
            w->kiosk = true;
            break;
        case OPT_LANG:
            lang = optarg;
            break;
        case OPT_DETECT:
            w->detect_list = optarg;
            break;
        case OPT_PIN_SOURCE:
            w->pin_source = optarg;
            break;
        case OPT_IGNORE:
            if (w->nignore < 32)
                w->ignore[w->nignore++] = optarg;
            break;
        case OPT_RESCAN:
        case OPT_IDLE:
        case OPT_RETRY:
            v = strtod(optarg, &end);
            if (!*optarg || *end || v <= 0) {
                free(w);
                return cli_fail(PA_E_USAGE, "a positive number of seconds", "%s",
                                c == OPT_RESCAN ? "--rescan"
                                : c == OPT_IDLE ? "--idle-timeout"
                                                : "--retry");
            }
            *(c == OPT_RESCAN ? &w->rescan_s : c == OPT_IDLE ? &w->idle_s : &w->retry_s) = v;
            break;
        case 'h':
            cli_usage("watch [--kiosk] [--lang nl|en] [--detect pcsc,udev,rescan] [--rescan S] "
                      "[--pin-source FILE] [--ignore SERIAL]... [--idle-timeout S] [--retry S]");
            free(w);
            return 0;
        default:
            free(w);
            return cli_fail(PA_E_USAGE, NULL, "watch");
        }
    }
    if (optind != argc || (lang && strcmp(lang, "nl") != 0 && strcmp(lang, "en") != 0)) {
        free(w);
        return cli_fail(PA_E_USAGE, "--lang nl or en", "watch");
    }
    w->dutch = lang ? strcmp(lang, "nl") == 0 : w->kiosk; /* Dutch by default for kiosks */
    r = job_dir_prepare(cli_state_dir(cli), err, sizeof(err));
    if (r < 0) {
        cli_fail(r, err, "state directory %s", cli_state_dir(cli));
    } else {
        r = watch_loop(w);
    }
    detect_close(w->det);
    tok_close(w->ctx);
    if (w->inofd >= 0)
        close(w->inofd);
    free(w);
    return r;
}

int cmd_queue(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"request", required_argument, NULL, OPT_REQUEST},
        {"serial", required_argument, NULL, OPT_SERIAL},
        {"token", required_argument, NULL, OPT_TOKEN},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *request = NULL, *serial = NULL, *token = NULL;
    struct req *req = NULL;
    struct tok_uri u;
    char err[512] = "", id[33];
    int c, r;

    if (argc < 2 || (strcmp(argv[1], "add") != 0 && strcmp(argv[1], "list") != 0)) {
        cli_usage("queue add --request FILE [--serial S] [--token URI] | queue list [--json]");
        return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : PA_E_USAGE;
    }
    if (strcmp(argv[1], "list") == 0) {
        struct queue_entry *v = NULL;
        size_t n = 0;

        if (argc == 3 && strcmp(argv[2], "--json") == 0)
            cli->json = true;
        r = queue_list(cli_state_dir(cli), &v, &n);
        if (r < 0)
            return cli_fail(r, NULL, "queue in %s", cli_state_dir(cli));
        if (cli->json) {
            json_object *o = json_object_new_object(), *a = json_object_new_array();

            for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_new_object();

                json_object_object_add(e, "id", json_object_new_string(v[i].id));
                json_object_object_add(e, "serial",
                                       v[i].serial ? json_object_new_string(v[i].serial) : NULL);
                json_object_object_add(e, "request", json_object_new_string(v[i].request));
                json_object_array_add(a, e);
            }
            json_object_object_add(o, "queue", a);
            cli_print_json(o);
        } else {
            for (size_t i = 0; i < n; i++)
                printf("%s  %s\n", v[i].id, v[i].serial ? v[i].serial : "(first blank token)");
            if (!n)
                printf("queue is empty\n");
        }
        queue_list_free(v, n);
        return 0;
    }
    argc--;
    argv++;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == OPT_REQUEST)
            request = optarg;
        else if (c == OPT_SERIAL)
            serial = optarg;
        else if (c == OPT_TOKEN)
            token = optarg;
        else if (c == OPT_JSON)
            cli->json = true;
        else
            return cli_fail(PA_E_USAGE, NULL, "queue add");
    }
    if (!request || optind != argc)
        return cli_fail(PA_E_USAGE, "--request FILE is required", "queue add");
    if (token) { /* pin-source only: a PIN never goes into the state directory */
        if (tok_uri_parse(token, false, &u) < 0)
            return cli_fail(PA_E_USAGE, "not a PKCS#11 URI, or it carries pin-value", "--token");
        tok_uri_clear(&u);
    }
    /* A queued request must be valid now, not when a token arrives at an unattended kiosk. */
    r = cli_prepare_request(cli, request, NULL, &req);
    if (r < 0)
        goto out;
    r = job_dir_prepare(cli_state_dir(cli), err, sizeof(err));
    if (r == 0)
        r = queue_add(cli_state_dir(cli), request, serial, token, id, err, sizeof(err));
    if (r < 0) {
        cli_fail(r, err, "queue");
        goto out;
    }
    if (cli->json) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "id", json_object_new_string(id));
        cli_print_json(o);
    } else {
        printf("queued %s for %s\n", id, serial ? serial : "the first blank token");
    }
out:
    req_free(req);
    return r;
}
