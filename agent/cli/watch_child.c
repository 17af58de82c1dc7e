/* SPDX-License-Identifier: Apache-2.0 */
/*
 * watch_child.c - the children of `pkio-agent watch`: one process per job (the same binary,
 * `resume` or `enroll`), started with its environment (PKIO_ACTOR), its arguments and its pipes
 * (the PIN typed on the kiosk on descriptor 3, the API key on descriptor 4: never by argv or the
 * environment), and reaped when it ends: what its exit status means for its token and for the
 * queue entry it took.
 */
#include "watch.h"

#include "cli.h"
#include "config.h"
#include "i18n.h"
#include "job.h"
#include "pa_err.h"
#include "secret.h"
#include "tok.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

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

/*
 * The child's arguments: the daemon's global options, the PIN pipe (pin) and the API key's
 * (key) descriptors, then cmd. Copies into av (execve wants writable strings, made before fork;
 * at most 27 and a NULL). Returns how many.
 */
static size_t child_argv(const struct watch *w, const char *const cmd[], bool pin, bool key,
                         char *av[28])
{
    const char *argv[28];
    size_t n = 0;

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
    if (pin) { /* the PIN typed on the kiosk travels by pipe, never by argv */
        argv[n++] = "--pin-fd";
        argv[n++] = "3";
    }
    if (key) { /* nor does the API key: it travels by pipe */
        argv[n++] = "--api-key-fd";
        argv[n++] = "4";
    }
    for (size_t i = 0; cmd[i] && n < 27; i++)
        argv[n++] = cmd[i];
    for (size_t i = 0; i < n; i++)
        av[i] = strdup(argv[i]);
    return n;
}

/* Run the same binary for one job; its output goes to the journal, or a log in kiosk mode. */
static int spawn(struct watch *w, struct wtoken *t, const char *const cmd[], int pin_rfd,
                 const char *actor)
{
    char *av[28] = {NULL}, **env = child_env(actor), log[4200];
    size_t n;
    pid_t pid = -1;
    int key_rfd = -1, key_wfd = -1;

    if (env && key_pipe(&key_rfd, &key_wfd) < 0) {
        child_env_free(env, actor);
        env = NULL; /* no child without its key */
    }
    n = child_argv(w, cmd, pin_rfd >= 0, key_rfd >= 0, av);
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

void watch_launch_clear(struct watch *w, struct launch *l, bool started)
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
        watch_launch_clear(w, l, false);
        return;
    }
    memcpy(t->queued, e->id, sizeof(t->queued));
    fprintf(
        stderr, "pkio-agent: watch: token '%s' (serial %s): enrolling queued request %s (%s)%s%s\n",
        t->label_safe, t->serial_safe, e->id, bound ? "bound to this token" : "for a blank token",
        l->actor[0] ? ", queued by " : "", l->actor);
    watch_launch_clear(w, l, true);
}

void watch_launch_start(struct watch *w, struct wtoken *t, struct launch *l, int pin_fd)
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
    watch_launch_clear(w, l, true);
}

/* ---- children ending ------------------------------------------------------------------------ */

/* The child of a queued enrollment ended: return the request if nothing was enrolled. */
static void requeue(struct watch *w, struct wtoken *t, bool refused)
{
    bool unfinished = false;
    size_t n = 0;
    struct job **list = watch_jobs(w, &n);
    const struct job *j = watch_job_pick(list, n, t, &unfinished);

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
        watch_token_in_use(t);
    } else if (t->last_exit == 6 || t->last_exit == 7) {
        t->pin_failed = true;
        /* A rejected or blocked PIN is never tried again by itself. */
        watch_note(t, _("PIN wrong or blocked - call an officer"));
    } else if (t->last_exit != 0 && !w->stopping) {
        /* Not done yet (waiting, token pulled, CertCentral away): try again later. */
        t->retry_at = watch_now() + w->retry_s;
    }
    t->queued[0] = '\0';
    w->sweep_due = true;
}

void watch_reap(struct watch *w)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        for (size_t i = 0; i < w->ntok; i++)
            if (w->tok[i]->child == pid)
                child_exited(w, w->tok[i], status);
    watch_prompt_next(w);
}
