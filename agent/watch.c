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
#include "secret.h"
#include "tok.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define EXPIRY_WARN_DAYS 60    /* a certificate expiring this soon is announced on insertion */
#define FORGET_MIN_S     600.0 /* a token gone this long (and at least --idle-timeout) is forgotten */

enum {
    OPT_KIOSK = 0x100,
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

void note(struct wtoken *t, const char *text)
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
const struct job *job_pick(struct job *const *list, size_t n, const struct wtoken *t,
                           bool *ret_unfinished)
{
    const struct job *best = NULL;

    *ret_unfinished = false;
    for (size_t i = 0; i < n; i++) {
        const struct job *j = list[i];

        if (strcmp(j->token_serial, t->serial) != 0 || strcmp(j->token_label, t->label) != 0)
            continue;
        if (!job_state_terminal(j->state)) {
            *ret_unfinished = true;
            return j;
        }
        best = j; /* oldest first: the last one wins */
    }
    return best;
}

/* ---- tokens --------------------------------------------------------------------------------- */

static struct wtoken *find_token(struct watch *w, const char *serial, const char *label)
{
    for (size_t i = 0; i < w->ntok; i++)
        if (strcmp(w->tok[i]->serial, serial) == 0 && strcmp(w->tok[i]->label, label) == 0)
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
    kiosk_clean(t->serial, t->serial_safe, sizeof(t->serial_safe));
    kiosk_clean(t->label, t->label_safe, sizeof(t->label_safe));
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

void refresh_pin_state(struct watch *w, struct wtoken *t)
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

void wtoken_info(const struct wtoken *t, struct tok_info *ret)
{
    memset(ret, 0, sizeof(*ret));
    snprintf(ret->serial, sizeof(ret->serial), "%s", t->serial);
    snprintf(ret->label, sizeof(ret->label), "%s", t->label);
    snprintf(ret->manufacturer, sizeof(ret->manufacturer), "%s", t->manufacturer);
    snprintf(ret->model, sizeof(ret->model), "%s", t->model);
    ret->min_pin_len = t->min_pin_len;
    ret->max_pin_len = t->max_pin_len;
}

/* ---- children ------------------------------------------------------------------------------- */

/* The environment of a child: ours, with PKIO_ACTOR naming the officer (if any). */
static char **child_env(const char *actor)
{
    size_t n = 0, k = 0;
    char **env;

    while (environ[n])
        n++;
    env = calloc(n + 2, sizeof(*env));
    if (!env)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "PKIO_ACTOR=", 11) != 0)
            env[k++] = environ[i];
    if (actor && *actor && asprintf(&env[k], "PKIO_ACTOR=%s", actor) >= 0)
        k++;
    env[k] = NULL;
    return env;
}

static void child_env_free(char **env, const char *actor)
{
    size_t n = 0;

    if (!env)
        return;
    while (env[n])
        n++;
    if (actor && *actor && n)
        free(env[n - 1]); /* the one we made */
    free(env);
}

/* In the child, before exec: the pipe's read end fd as descriptor target (not closed on exec). */
static void child_fd(int fd, int target)
{
    /* Above the targets first, so that neither pipe lands on the other's target. */
    int high = fcntl(fd, F_DUPFD_CLOEXEC, 10);

    if (high < 0 || dup2(high, target) < 0)
        _exit(127);
}

/* In the child, before exec: signals back to normal, output to the log on a kiosk, the PIN on
 * descriptor 3 and the API key on descriptor 4 (pipes; -1: none). */
static void child_setup(const char *log, int pin_rfd, int key_rfd)
{
    sigset_t none;

    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGQUIT, SIG_DFL);
    signal(SIGTSTP, SIG_DFL);
    if (log) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd >= 0)
            dup2(fd, STDIN_FILENO);
    }
    if (pin_rfd >= 0)
        child_fd(pin_rfd, 3);
    if (key_rfd >= 0)
        child_fd(key_rfd, 4);
}

/*
 * A pipe for the API key the daemon took from the environment (cfg_take_env_key), so that its
 * children have it without an environment variable or argv: the read end for the child, the
 * write end in *ret_wfd (both close-on-exec: no other child inherits them). 0 and -1s when there
 * is no such key; PA_E_INTERNAL.
 */
static int key_pipe(int *ret_rfd, int *ret_wfd)
{
    int fds[2];

    *ret_rfd = *ret_wfd = -1;
    if (!cfg_env_api_key())
        return 0;
    if (pipe2(fds, O_CLOEXEC) < 0)
        return PA_E_INTERNAL;
    *ret_rfd = fds[0];
    *ret_wfd = fds[1];
    return 0;
}

/* The parent, after fork: the key and a newline into the pipe (far smaller than its buffer: this
 * never blocks). The child reads the first line. */
static void key_send(int wfd)
{
    const struct secret *key = cfg_env_api_key();

    if (wfd >= 0 && key)
        (void)!(write(wfd, key->buf, key->len) == (ssize_t)key->len && write(wfd, "\n", 1) == 1);
}

/* Run the same binary for one job; its output goes to the journal, or a log in kiosk mode. */
static int spawn(struct watch *w, struct wtoken *t, const char *const cmd[], int pin_rfd,
                 const char *actor)
{
    const char *argv[28];
    char *av[28] = {NULL}, **env = child_env(actor), log[4200];
    size_t n = 0;
    pid_t pid = -1;
    int key_rfd = -1, key_wfd = -1;

    argv[n++] = "pkio-agent";
    if (w->cli->config) {
        argv[n++] = "--config";
        argv[n++] = w->cli->config;
    }
    argv[n++] = "--state-dir";
    argv[n++] = cli_state_dir(w->cli);
    argv[n++] = "--module";
    argv[n++] = cli_module(w->cli);
    argv[n++] = "--lang"; /* the daemon's language, whatever chose it */
    argv[n++] = i18n_lang();
    if (pin_rfd >= 0) { /* the PIN typed on the kiosk travels by pipe, never by argv */
        argv[n++] = "--pin-fd";
        argv[n++] = "3";
    }
    if (env && key_pipe(&key_rfd, &key_wfd) < 0) {
        child_env_free(env, actor);
        env = NULL; /* no child without its key */
    }
    if (key_rfd >= 0) { /* nor does the API key: it travels by pipe */
        argv[n++] = "--api-key-fd";
        argv[n++] = "4";
    }
    for (size_t i = 0; cmd[i] && n < 27; i++)
        argv[n++] = cmd[i];
    for (size_t i = 0; i < n; i++) /* execve wants writable strings: copies, made before fork */
        av[i] = strdup(argv[i]);
    snprintf(log, sizeof(log), "%s/watch.log", cli_state_dir(w->cli));
    if (env)
        pid = fork();
    if (pid == 0) {
        child_setup(w->kiosk ? log : NULL, pin_rfd, key_rfd);
        execve("/proc/self/exe", av, env);
        _exit(127);
    }
    if (pid > 0)
        key_send(key_wfd);
    if (key_wfd >= 0)
        close(key_wfd);
    if (key_rfd >= 0)
        close(key_rfd);
    for (size_t i = 0; i < n; i++)
        free(av[i]);
    child_env_free(env, actor);
    if (pid < 0)
        return PA_E_INTERNAL;
    t->child = pid;
    t->note[0] = '\0';
    return 0;
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

void launch_clear(struct watch *w, struct launch *l, bool started)
{
    if (l->has_entry && !started)
        (void)queue_untake(cli_state_dir(w->cli), l->entry.id); /* nothing lost: back in line */
    queue_entry_clear(&l->entry);
    free(l->pin_source);
    memset(l, 0, sizeof(*l));
}

static void launch_enroll(struct watch *w, struct wtoken *t, struct launch *l, int pin_fd)
{
    const struct queue_entry *e = &l->entry;
    bool bound = !queue_bind_empty(&e->bind);
    char uri[600];
    /* An unbound entry: the child checks blankness again once logged in (private keys). */
    const char *cmd[] = {
        "enroll", "--token", uri, "--request", e->request, bound ? NULL : "--only-blank", NULL};

    token_uri_of(t, pin_fd >= 0 ? NULL : l->pin_source, uri, sizeof(uri));
    if (spawn(w, t, cmd, pin_fd, l->actor) < 0) {
        launch_clear(w, l, false);
        return;
    }
    memcpy(t->queued, e->id, sizeof(t->queued));
    fprintf(
        stderr, "pkio-agent: watch: token '%s' (serial %s): enrolling queued request %s (%s)%s%s\n",
        t->label_safe, t->serial_safe, e->id, bound ? "bound to this token" : "for a blank token",
        l->actor[0] ? ", queued by " : "", l->actor);
    launch_clear(w, l, true);
}

void launch_start(struct watch *w, struct wtoken *t, struct launch *l, int pin_fd)
{
    const char *cmd[] = {"resume", l->job, "--pin-source", l->pin_source, NULL};

    if (l->has_entry) {
        launch_enroll(w, t, l, pin_fd);
        return;
    }
    if (pin_fd >= 0 || !l->pin_source)
        cmd[2] = NULL; /* the pipe carries every PIN */
    if (spawn(w, t, cmd, pin_fd, l->actor) == 0)
        fprintf(stderr, "pkio-agent: watch: token '%s' (serial %s): resuming job %s\n",
                t->label_safe, t->serial_safe, l->job);
    launch_clear(w, l, true);
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
        launch_start(w, t, l, -1);
    } else if (r == ASK_BUSY) {
        t->want_prompt = true;     /* one prompt at a time: its turn comes when this one closes */
        launch_clear(w, l, false); /* a taken entry goes back in line meanwhile */
    } else if (r < 0) {
        launch_clear(w, l, false);
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
        whom_text(t, j->request_path, l.whom, sizeof(l.whom));
    launch_or_ask(w, t, &l, false);
}

/* A token that holds keys or certificates and is none of our business: never written to. */
static void token_in_use(struct wtoken *t)
{
    note(t, _("Token already in use - call an officer"));
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

    wtoken_info(t, info);
    r = tok_peek_contents(w->ctx, info, &c);
    if (r < 0) {
        char detail[256];

        kiosk_clean(tok_detail(), detail, sizeof(detail));
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
        kiosk_clean(l.entry.officer, l.actor, sizeof(l.actor));
    if (w->kiosk)
        whom_text(t, l.entry.request, l.whom, sizeof(l.whom));
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

        kiosk_clean(rejected, safe, sizeof(safe)); /* file names are anyone's text */
        fprintf(stderr, "pkio-agent: watch: queue: set aside in queue/rejected: %s\n", safe);
    }
    if (r == 0) {
        enroll_entry(w, t, &e);
        return;
    }
    t->want_request = true; /* a request bound to it may still be queued */
    if (blank == 0) {
        token_in_use(t);
    } else if (blank < 0) {
        note(t, _("Cannot read the token - please wait"));
        t->retry_at = watch_now() + w->retry_s;
    } else {
        note(t, _("No request queued for this token - call an officer"));
    }
}

static void start_job(struct watch *w, struct wtoken *t)
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
    j = job_pick(list, n, t, &unfinished);
    if (j && unfinished)
        resume_job(w, t, j);
    else if (!j)
        take_queued(w, t);
    /* else: enrolled before, and that job ended: never again by itself */
    job_list_free(list, n);
}

void prompt_next(struct watch *w)
{
    for (size_t i = 0; i < w->ntok && !w->prompt.t && !w->stopping; i++) {
        struct wtoken *t = w->tok[i];

        if (t->want_prompt && t->present && !t->child)
            start_job(w, t);
    }
}

/* ---- a certificate about to expire (#11) ---------------------------------------------------- */

/* The leaf of a job's certificates (its cert_serial, else the first) and its notAfter. */
static int leaf_not_after(const struct job *j, time_t *ret)
{
    BIO *b = BIO_new_mem_buf(j->cert_pem, -1);
    X509 *x, *leaf = NULL;
    struct tm tm;
    int r = -1;

    while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
        char *hex = bn ? BN_bn2hex(bn) : NULL;
        bool match = hex && j->cert_serial[0] && strcasecmp(hex, j->cert_serial) == 0;

        OPENSSL_free(hex);
        BN_free(bn);
        if (!leaf || match) {
            X509_free(leaf);
            leaf = x;
        } else {
            X509_free(x);
        }
        if (match)
            break;
    }
    if (leaf && ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &tm) == 1) {
        *ret = timegm(&tm);
        r = 0;
    }
    X509_free(leaf);
    BIO_free(b);
    return r;
}

/* The job whose certificate the token carries now: its newest finished job, unless replaced. */
static const struct job *current_cert_job(struct job *const *list, size_t n, const struct wtoken *t)
{
    bool unfinished = false;
    const struct job *j = job_pick(list, n, t, &unfinished);

    if (!j || unfinished || !j->cert_pem || j->state != JOB_DONE ||
        strcmp(j->cert_revoke_status, "revoked") == 0)
        return NULL;
    for (size_t i = 0; i < n; i++) /* renewed onto another token: that one counts */
        if (list[i]->replaces_certificate_id &&
            list[i]->replaces_certificate_id == j->certificate_id &&
            (list[i]->state == JOB_DONE || list[i]->state == JOB_INSTALLED))
            return NULL;
    return j;
}

/* On insertion: a certificate of ours on this token that expires within 60 days is announced. */
static void expiry_check(struct watch *w, struct wtoken *t)
{
    size_t n = 0;
    struct job **list = watch_jobs(w, &n);
    const struct job *j = current_cert_job(list, n, t);
    time_t end = 0, now = time(NULL);
    char date[32], iso[32];
    struct tm tm;

    t->expiry[0] = '\0';
    if (j && leaf_not_after(j, &end) == 0 && end - now <= (time_t)EXPIRY_WARN_DAYS * 86400) {
        gmtime_r(&end, &tm);
        /* TRANSLATORS: a date as strftime(3) writes it, on the kiosk (Dutch: %d-%m-%Y). */
        strftime(date, sizeof(date), _("%Y-%m-%d"), &tm);
        strftime(iso, sizeof(iso), "%Y-%m-%d", &tm);
        if (end > now)
            snprintf(t->expiry, sizeof(t->expiry),
                     _("Certificate expires on %s - ask an officer to renew it"), date);
        else
            snprintf(t->expiry, sizeof(t->expiry),
                     _("Certificate expired on %s - ask an officer to renew it"), date);
        fprintf(stderr,
                "pkio-agent: watch: token '%s' (serial %s): the certificate of job %s %s on %s "
                "(%lld days): ask an officer to renew it\n",
                t->label_safe, t->serial_safe, j->id, end > now ? "expires" : "expired", iso,
                (long long)((end - now) / 86400));
    }
    job_list_free(list, n);
}

/* ---- scanning ------------------------------------------------------------------------------- */

/* A token listed by the module: new, back, or still there. */
static void token_seen(struct watch *w, const struct tok_info *info)
{
    struct wtoken *t = find_token(w, info->serial, info->label);

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
            expiry_check(w, t);
        start_job(w, t);
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
static void scan(struct watch *w)
{
    struct tok_info *list = NULL;
    size_t n = 0;

    if (tok_rescan(w->ctx) < 0 || tok_list(w->ctx, &list, &n) < 0) {
        char detail[256];

        kiosk_clean(tok_detail(), detail, sizeof(detail));
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

/* ---- children ending ------------------------------------------------------------------------ */

/* The child of a queued enrollment ended: return the request if nothing was enrolled. */
static void requeue(struct watch *w, struct wtoken *t, bool refused)
{
    bool unfinished = false;
    size_t n = 0;
    struct job **list = watch_jobs(w, &n);
    const struct job *j = job_pick(list, n, t, &unfinished);

    /* Never started (no job), or refused as not for this token: back to the queue. */
    if (!j || refused)
        (void)queue_untake(cli_state_dir(w->cli), t->queued);
    job_list_free(list, n);
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
                t->label_safe, t->serial_safe, t->queued[0] ? ": request " : "", t->queued,
                t->queued[0] ? " is back in the queue" : "");
        t->refused = true;
        t->in_use_noted = true; /* that was its one journal line */
        token_in_use(t);
    } else if (t->last_exit == 6 || t->last_exit == 7) {
        t->pin_failed = true;
        /* A rejected or blocked PIN is never tried again by itself. */
        note(t, _("PIN wrong or blocked - call an officer"));
    } else if (t->last_exit != 0 && !w->stopping) {
        /* Not done yet (waiting, token pulled, CertCentral away): try again later. */
        t->retry_at = watch_now() + w->retry_s;
    }
    t->queued[0] = '\0';
    w->sweep_due = true;
}

static void reap(struct watch *w)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        for (size_t i = 0; i < w->ntok; i++)
            if (w->tok[i]->child == pid)
                child_exited(w, w->tok[i], status);
    prompt_next(w);
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
        if (job_state_terminal(j->state))
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
            reap(w);
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
            start_job(w, w->tok[i]);
}

static void retry_due(struct watch *w)
{
    double now = watch_now();

    for (size_t i = 0; i < w->ntok; i++) {
        struct wtoken *t = w->tok[i];

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
        scan(w);
    if (!w->stopping)
        retry_due(w);
    if (w->sweep_due)
        sweep(w);
    if (w->share_due)
        share_again(w);
    (void)kiosk_timeout_ms(w);
    prompt_next(w);
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
    scan(w);
    kiosk_render(w);
    status_line(w);
    while (loop_once(w))
        ;
    return 0;
}

/* ---- options -------------------------------------------------------------------------------- */

#define SYN_WATCH                                                                                  \
    "watch [--kiosk] [--lang nl|en] [--detect pcsc,udev,rescan] [--rescan S] "                     \
    "[--pin-source FILE] [--ignore SERIAL]... [--idle-timeout S] [--retry S] "                     \
    "[--confirm-timeout S] [--pin-timeout S] [--officers GROUP]"

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
    case OPT_OFFICERS:
        w->officers_name = optarg;
        return 0;
    case OPT_IGNORE:
        if (w->nignore < WATCH_MAX_IGNORE)
            w->ignore[w->nignore++] = optarg;
        return 0;
    case 'h':
        cli_usage(SYN_WATCH);
        return 1;
    case OPT_RESCAN:
    case OPT_IDLE:
    case OPT_RETRY:
    case OPT_CONFIRM:
    case OPT_PIN_TIMEOUT:
        return seconds_opt(w, c, optarg);
    default:
        return cli_fail(PA_E_USAGE, NULL, "watch");
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
        {"pin-timeout", required_argument, NULL, OPT_PIN_TIMEOUT},
        {"officers", required_argument, NULL, OPT_OFFICERS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *lang = NULL;
    int c, r = 0;

    while (r == 0 && (c = getopt_long(argc, argv, "h", opts, NULL)) != -1)
        r = watch_option(w, c, &lang);
    if (r == 0 && (optind != argc || (lang && !i18n_lang_valid(lang))))
        r = cli_fail(PA_E_USAGE, N_("--lang nl or en"), "watch");
    if (r == 0) /* for the kiosk, the daemon's messages and its children (--lang) */
        (void)i18n_set_lang(watch_lang(w, lang));
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
