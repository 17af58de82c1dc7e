/* SPDX-License-Identifier: Apache-2.0 */
/*
 * watch.c - the hands-free station: `pkio-agent watch [--kiosk]`.
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
 *
 * Everything happens in one poll loop: token events, children, signals, job records and queue
 * changes (inotify), officers handing in requests (intake.h), and on a kiosk the keystrokes of
 * the one prompt that may be open (watch_kiosk.c). Nothing in it blocks: a person typing a PIN,
 * or not typing at all, never holds up another token, a pulled token, or a stop. Times are kept
 * on the monotonic clock.
 *
 * This file owns the loop, its setup and the options; the tokens and what starts for each are in
 * watch_token.c, the children in watch_child.c, the expiry notice in watch_expiry.c, the kiosk's
 * prompt in watch_kiosk.c.
 *
 * Language: the kiosk speaks Dutch unless --lang, ui.lang or the environment says otherwise, and
 * the children are told the same (--lang). The daemon's own lines ("pkio-agent: watch: ...", for
 * the journal, or watch.log on a kiosk) stay English, like the audit log and syslog: they are the
 * station's record, and officers search them.
 */
#include "watch.h"

#include "cli.h"
#include "config.h"
#include "detect.h"
#include "i18n.h"
#include "job.h"
#include "pa_err.h"
#include "tok.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum {
    OPT_KIOSK = CLI_OPT_FIRST,
    OPT_LANG,
    OPT_RESCAN,
    OPT_DETECT,
    OPT_PIN_SOURCE,
    OPT_IGNORE,
    OPT_IDLE,
    OPT_RETRY,
    OPT_CONFIRM,
    OPT_PIN_TIMEOUT,
    OPT_OFFICERS,
};

static int sigpipe_fd[2] = {-1, -1};

static void on_signal(int sig)
{
    unsigned char c = (unsigned char)sig;
    int saved = errno;

    (void)!write(sigpipe_fd[1], &c, 1);
    errno = saved;
}

double watch_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void watch_note(struct wtoken *t, const char *text)
{
    snprintf(t->note, sizeof(t->note), "%s", text);
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

bool watch_ignored(const struct watch *w, const char *serial)
{
    for (size_t i = 0; i < w->nignore; i++)
        if (strcmp(w->ignore[i], serial) == 0)
            return true;
    return false;
}

/* ---- the queue's leftovers ------------------------------------------------------------------ */

/*
 * A job past ordering no longer needs its request: the copy in the queue (card data) is wiped
 * and removed. A job that ended leaves no taken entry behind. (enroll wipes the copy itself once
 * the order is placed; this catches whatever a crash or an older binary left.)
 */
static void sweep(struct watch *w)
{
    const char *sd = cli_state_dir(w->cli);
    size_t n = 0;
    struct job **list = watch_jobs(w, &n);

    w->sweep_due = false;
    for (size_t i = 0; i < n; i++) {
        const struct job *j = list[i];
        char id[33];

        if (!j->request_path || !queue_holds_request(sd, j->request_path, id))
            continue;
        if ((j->order_id || j->state == JOB_CANCELED) && access(j->request_path, F_OK) == 0) {
            if (queue_forget_request(sd, j->request_path) == 0)
                fprintf(stderr, "pkio-agent: watch: job %s: request copy %s wiped and removed\n",
                        j->id, id);
        }
        if (job_state_is_terminal(j->state))
            (void)queue_taken_remove(sd, id);
    }
    job_list_free(list, n);
}

/* At start: taken entries whose enrollment never started (no job has them) go back in line. */
static void requeue_orphans(struct watch *w)
{
    const char *sd = cli_state_dir(w->cli);
    struct queue_entry *v = NULL;
    size_t nv = 0, n = 0;
    struct job **list;

    if (queue_taken_list(sd, &v, &nv) < 0)
        return;
    list = watch_jobs(w, &n);
    for (size_t i = 0; i < nv; i++) {
        bool used = false;
        char id[33];

        for (size_t k = 0; k < n && !used; k++)
            used = list[k]->request_path && queue_holds_request(sd, list[k]->request_path, id) &&
                   strcmp(id, v[i].id) == 0;
        if (!used && queue_untake(sd, v[i].id) == 0)
            fprintf(stderr,
                    "pkio-agent: watch: queue: entry %s is back in the queue (its "
                    "enrollment never started)\n",
                    v[i].id);
    }
    job_list_free(list, n);
    queue_list_free(v, nv);
}

/*
 * STATE_DIR's group or mode changed: systemd re-owns a state directory to the Group= and
 * StateDirectoryMode= of whichever unit starts with it, so a sibling unit that differs takes the
 * officers' access away. Given back at once (only when it is really gone, so that our own
 * changes do not make a loop).
 */
static void share_again(struct watch *w)
{
    const char *sd = cli_state_dir(w->cli);
    char err[512] = "";

    w->share_due = false;
    if (state_shared(sd, &w->officers))
        return;
    if (state_share(sd, &w->officers, err, sizeof(err)) < 0)
        fprintf(stderr, "pkio-agent: watch: %s\n", err);
    else
        fprintf(stderr,
                "pkio-agent: watch: %s was changed under us (another unit's Group= or "
                "StateDirectoryMode=?): group %s's read access given back\n",
                sd, w->officers.name);
}

/* ---- the loop ------------------------------------------------------------------------------- */

/* The sooner of two poll() timeouts (-1: none). */
static int sooner(int a, int b)
{
    return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

/* When something is due for this token: a retry, or leaving the kiosk's screen. -1 none. */
static int token_due_ms(const struct watch *w, const struct wtoken *t, double now)
{
    if (t->retry_at && t->present && !t->child)
        return t->retry_at > now ? (int)((t->retry_at - now) * 1000) + 1 : 0;
    if (w->kiosk && !t->present && t->gone_since > 0 && now - t->gone_since <= w->idle_s)
        return (int)((w->idle_s - (now - t->gone_since)) * 1000) + 100;
    return -1;
}

static int next_timeout_ms(struct watch *w)
{
    int ms = detect_timeout_ms(w->det);
    double now = watch_now();

    for (size_t i = 0; i < w->ntok; i++)
        ms = sooner(ms, token_due_ms(w, w->tok[i], now));
    ms = sooner(ms, kiosk_timeout_ms(w));
    return sooner(ms, intake_timeout_ms(w->intake));
}

static void status_line(struct watch *w)
{
    char msg[256];
    size_t present = 0, running = 0;

    for (size_t i = 0; i < w->ntok; i++) {
        present += w->tok[i]->present;
        running += w->tok[i]->child != 0;
    }
    snprintf(msg, sizeof(msg), "STATUS=%zu token(s) present, %zu job(s) running; sources %s",
             present, running, detect_sources(w->det));
    sd_notify_msg(msg);
}

/* SIGTERM: an open prompt is closed at once, the children stop at their next safe step. */
static void stop(struct watch *w)
{
    w->stopping = true;
    sd_notify_msg("STOPPING=1");
    fprintf(stderr, "pkio-agent: watch: stopping; jobs finish their current step\n");
    kiosk_cancel(w, NULL, NULL);
    for (size_t i = 0; i < w->ntok; i++)
        if (w->tok[i]->child)
            kill(w->tok[i]->child, SIGTERM);
}

/* Signals arrive through a pipe: SIGCHLD reaps, the others stop the daemon. */
static void on_signals(struct watch *w)
{
    unsigned char sig;

    while (read(sigpipe_fd[0], &sig, 1) == 1) {
        if (sig == SIGCHLD)
            watch_reap(w);
        else if (!w->stopping)
            stop(w);
    }
}

/* An inotify event: a new audit log, a job record, a queue entry, or STATE_DIR's modes. */
static bool on_event(struct watch *w, const struct inotify_event *ev)
{
    if (ev->wd == w->wd_state && (ev->mask & IN_ATTRIB))
        w->share_due = true; /* owner or mode changed under us: looked at once this round */
    if (!ev->len)
        return false;
    if (ev->wd == w->wd_state && (ev->mask & (IN_CREATE | IN_MOVED_TO)) &&
        strcmp(ev->name, "audit.log") == 0)
        (void)state_share_audit(cli_state_dir(w->cli), &w->officers); /* born 0600 elsewhere */
    if (ev->wd == w->wd_jobs)
        w->sweep_due = true;
    return ev->wd == w->wd_queue && (ev->mask & IN_MOVED_TO) && strstr(ev->name, ".json") &&
           !strstr(ev->name, ".request.") && !strstr(ev->name, ".tmp.");
}

/* Job records changed or requests arrived: tokens waiting for a request look again. */
static void on_inotify(struct watch *w)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool queued = false;
    ssize_t len;

    /* A bounded number of reads: what we change ourselves must never keep us here. */
    for (int rounds = 0; rounds < 64 && (len = read(w->inofd, buf, sizeof(buf))) > 0; rounds++) {
        for (char *q = buf; q < buf + len;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)q;

            queued |= on_event(w, ev);
            q += sizeof(*ev) + ev->len;
        }
    }
    for (size_t i = 0; queued && !w->stopping && i < w->ntok; i++)
        if (w->tok[i]->want_request)
            watch_start_job(w, w->tok[i]);
}

static void retry_due(struct watch *w)
{
    double now = watch_now();

    for (size_t i = 0; i < w->ntok; i++) {
        struct wtoken *t = w->tok[i];

        if (t->retry_at && t->retry_at <= now && t->present && !t->child) {
            t->retry_at = 0;
            watch_start_job(w, t);
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

/* inotify on STATE_DIR (a new audit log), the job records and the queue. */
static void watch_files(struct watch *w)
{
    const char *sd = cli_state_dir(w->cli);
    char jobs[4096], queue[4096];

    snprintf(jobs, sizeof(jobs), "%s/jobs", sd);
    snprintf(queue, sizeof(queue), "%s/queue", sd);
    w->inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->inofd < 0)
        return;
    w->wd_state = inotify_add_watch(w->inofd, sd, IN_CREATE | IN_MOVED_TO | IN_ATTRIB);
    w->wd_jobs = inotify_add_watch(w->inofd, jobs, IN_MOVED_TO | IN_CLOSE_WRITE);
    w->wd_queue = inotify_add_watch(w->inofd, queue, IN_MOVED_TO);
    if (w->wd_jobs < 0 || w->wd_queue < 0) {
        close(w->inofd);
        w->inofd = -1;
    }
}

/* The officers' group may read what holds no secret, and hand in requests by the socket. */
static int officers_setup(struct watch *w)
{
    const char *sd = cli_state_dir(w->cli);
    char err[512] = "";
    int r = officers_lookup(w->officers_name, &w->officers);

    if (r < 0)
        return cli_fail(r, N_("a group name"), "--officers");
    if (w->officers.gid == (gid_t)-1)
        fprintf(stderr,
                "pkio-agent: watch: no group '%s': only root and this user may queue requests, "
                "and nothing in %s is shared\n",
                w->officers.name, sd);
    if (state_share(sd, &w->officers, err, sizeof(err)) < 0) /* the daemon works without */
        fprintf(stderr, "pkio-agent: watch: warning: %s\n", err);
    w->ictx = (struct intake_ctx){.state_dir = sd, .cfg = w->cli->cfg, .officers = &w->officers};
    r = intake_open(&w->ictx, &w->intake, err, sizeof(err));
    if (r < 0)
        return cli_fail(r, err, "the queue's socket");
    return 0;
}

/* Module, token events, inotify, the officers' socket and (kiosk) the terminal. */
static int watch_setup(struct watch *w)
{
    struct detect_opts dopts = {
        .use_pcsc = strstr(w->detect_list, "pcsc") != NULL,
        .use_udev = strstr(w->detect_list, "udev") != NULL,
        .rescan_s = w->rescan_s,
        .force_rescan = strstr(w->detect_list, "rescan") != NULL,
    };
    int r;

    if (pipe2(sigpipe_fd, O_CLOEXEC | O_NONBLOCK) < 0)
        return cli_fail(PA_E_INTERNAL, strerror(errno), "watch");
    handle_signals_setup(w);
    if (queue_dir_prepare(cli_state_dir(w->cli)) < 0)
        return cli_fail(PA_E_IO, strerror(errno), "queue in %s", cli_state_dir(w->cli));
    r = officers_setup(w);
    if (r < 0)
        return r;
    r = tok_open(cli_module(w->cli), &w->ctx);
    if (r < 0)
        return cli_fail(r, tok_detail(), "PKCS#11 module %s", cli_module(w->cli));
    r = detect_open(&dopts, &w->det);
    if (r < 0)
        return cli_fail(r, NULL, "token detection");
    watch_files(w);
    if (w->kiosk && kiosk_tty_open(&w->tty) < 0)
        return cli_fail(PA_E_IO, strerror(errno), "the kiosk's terminal");
    requeue_orphans(w);
    sweep(w);
    return 0;
}

/* On a kiosk the daemon's own lines go to STATE_DIR/watch.log, not over the screen. */
static void kiosk_log(struct watch *w)
{
    char log[4200];
    int fd;

    if (!w->kiosk || !isatty(STDERR_FILENO))
        return;
    snprintf(log, sizeof(log), "%s/watch.log", cli_state_dir(w->cli));
    fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        fflush(stderr);
        dup2(fd, STDERR_FILENO);
        close(fd);
    }
}

static bool any_running(const struct watch *w)
{
    for (size_t i = 0; i < w->ntok; i++)
        if (w->tok[i]->child)
            return true;
    return false;
}

/* The descriptors to wait on; *ret_nfix is the number before the officers' socket's. */
static size_t loop_fds(struct watch *w, struct pollfd *p, size_t max, size_t *ret_nfix)
{
    size_t n = 0;

    p[n++] = (struct pollfd){sigpipe_fd[0], POLLIN, 0};
    /* Stopping: events no longer matter, and an unread one would spin poll(). */
    p[n++] = (struct pollfd){w->stopping ? -1 : detect_fd(w->det), POLLIN, 0};
    p[n++] = (struct pollfd){w->inofd, POLLIN, 0};
    p[n++] = (struct pollfd){w->tty.fd, POLLIN, 0};
    *ret_nfix = n;
    return n + intake_pollfds(w->intake, p + n, max - n);
}

/* One round: wait, then handle whatever happened. false when the daemon is done. */
static bool loop_once(struct watch *w)
{
    struct pollfd p[16];
    size_t nfix, n = loop_fds(w, p, 16, &nfix);
    char what[160];

    if (w->stopping && !any_running(w))
        return false;
    if (poll(p, n, w->stopping ? -1 : next_timeout_ms(w)) < 0 && errno != EINTR)
        return false;
    if (p[0].revents & POLLIN)
        on_signals(w);
    if (p[2].revents & POLLIN)
        on_inotify(w);
    if (p[3].revents)
        kiosk_input(w);
    intake_handle(w->intake, p + nfix, n - nfix);
    if (!w->stopping && detect_poll(w->det, what, sizeof(what)) > 0)
        watch_scan(w);
    if (!w->stopping)
        retry_due(w);
    if (w->sweep_due)
        sweep(w);
    if (w->share_due)
        share_again(w);
    (void)kiosk_timeout_ms(w);
    watch_prompt_next(w);
    kiosk_render(w);
    status_line(w);
    return true;
}

static int watch_loop(struct watch *w)
{
    int r = watch_setup(w);

    if (r < 0)
        return r;
    kiosk_log(w);
    fprintf(stderr,
            "pkio-agent: watch: ready; token events from %s; requests from officers on "
            "%s/queue/intake.sock\n",
            detect_sources(w->det), cli_state_dir(w->cli));
    sd_notify_msg("READY=1");
    watch_scan(w);
    kiosk_render(w);
    status_line(w);
    while (loop_once(w))
        ;
    return 0;
}

/* ---- options -------------------------------------------------------------------------------- */

/* A positive number of seconds for one of the timing options. */
static int seconds_opt(struct watch *w, int c, const char *arg)
{
    static const struct {
        int opt;
        const char *name;
        size_t off;
    } map[] = {
        {OPT_RESCAN, "--rescan", offsetof(struct watch, rescan_s)},
        {OPT_IDLE, "--idle-timeout", offsetof(struct watch, idle_s)},
        {OPT_RETRY, "--retry", offsetof(struct watch, retry_s)},
        {OPT_CONFIRM, "--confirm-timeout", offsetof(struct watch, confirm_s)},
        {OPT_PIN_TIMEOUT, "--pin-timeout", offsetof(struct watch, pin_timeout_s)},
    };
    char *end = NULL;
    double v = strtod(arg, &end);
    size_t i = 0;

    while (map[i].opt != c)
        i++;
    if (!*arg || *end || !(v > 0) || v > 1e6)
        return cli_fail(PA_E_USAGE, N_("a positive number of seconds"), "%s", map[i].name);
    *(double *)(void *)((char *)w + map[i].off) = v;
    return 0;
}

/* What watch's options fill in: the daemon, and --lang until the configuration is known. */
struct watch_args {
    struct watch *w;
    const char *lang;
};

/* One of watch's options (cli_getopt): 0, or PA_E_USAGE (reported). */
static int watch_option(void *arg, int c, const char *val)
{
    struct watch_args *a = arg;
    struct watch *w = a->w;

    switch (c) {
    case OPT_KIOSK:
        w->kiosk = true;
        return 0;
    case OPT_LANG:
        a->lang = val;
        return 0;
    case OPT_DETECT:
        w->detect_list = val;
        return 0;
    case OPT_PIN_SOURCE:
        w->pin_source = val;
        return 0;
    case OPT_OFFICERS:
        w->officers_name = val;
        return 0;
    case OPT_IGNORE:
        if (w->nignore < WATCH_MAX_IGNORE)
            w->ignore[w->nignore++] = val;
        return 0;
    case OPT_RESCAN:
    case OPT_IDLE:
    case OPT_RETRY:
    case OPT_CONFIRM:
    case OPT_PIN_TIMEOUT:
        return seconds_opt(w, c, val);
    default:
        return CLI_OPT_UNKNOWN;
    }
}

/*
 * The language: watch --lang, else the global --lang or the configuration's ui.lang (main() puts
 * the global option there), else the environment's (as it was at start), else Dutch on a kiosk
 * and English elsewhere.
 */
static const char *watch_lang(const struct watch *w, const char *opt)
{
    if (opt)
        return opt;
    if (w->cli->cfg && w->cli->cfg->ui_lang)
        return w->cli->cfg->ui_lang;
    if (i18n_env_lang())
        return i18n_env_lang();
    return w->kiosk ? "nl" : "en";
}

/* watch's options into w (the shared loop; watch has no --json); 1 when --help was shown, 0, or
 * PA_E_USAGE (reported). */
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
        {"pin-timeout", required_argument, NULL, OPT_PIN_TIMEOUT},
        {"officers", required_argument, NULL, OPT_OFFICERS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const struct cli_getopt how = {
        .command = "watch", .longopts = opts, .option = watch_option};
    struct watch_args a = {.w = w};
    int r = cli_getopt(w->cli, &how, &a, argc, argv);

    if (r == 0 && (optind != argc || (a.lang && !i18n_lang_valid(a.lang))))
        r = cli_fail(PA_E_USAGE, N_("--lang nl or en"), "watch");
    if (r == 0) /* for the kiosk, the daemon's messages and its children (--lang) */
        (void)i18n_set_lang(watch_lang(w, a.lang));
    return r;
}

static struct watch *watch_new(struct cli *cli)
{
    struct watch *w = calloc(1, sizeof(*w));

    if (!w)
        return NULL;
    w->cli = cli;
    w->rescan_s = 2.0;
    w->detect_list = "pcsc,udev";
    w->idle_s = 30;
    w->retry_s = 30;
    w->confirm_s = 60;
    w->pin_timeout_s = 120;
    w->officers_name = OFFICERS_GROUP_DEFAULT;
    w->inofd = w->wd_state = w->wd_jobs = w->wd_queue = -1;
    w->tty.fd = -1;
    return w;
}

static void watch_free(struct watch *w)
{
    kiosk_cancel(w, NULL, NULL);
    kiosk_tty_close(&w->tty); /* the terminal as it was */
    if (w->screen)
        fputs("\n", stdout);
    intake_close(w->intake);
    detect_close(w->det);
    tok_close(w->ctx);
    if (w->inofd >= 0)
        close(w->inofd);
    for (size_t i = 0; i < w->ntok; i++)
        free(w->tok[i]);
    free(w->tok);
    free(w->screen);
    free(w);
}

int cmd_watch(struct cli *cli, int argc, char **argv)
{
    struct watch *w = watch_new(cli);
    char err[512] = "";
    int r;

    if (!w)
        return cli_fail(PA_E_NOMEM, NULL, "watch");
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
    watch_free(w);
    return r;
}
