/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_anchor.c - the audit log's anchors (audit.h): sending them to syslog/journald, and
 * reading them back from the journal or a syslog file.
 *
 * Whoever can write the file can cut its tail, delete it, or rewrite every line and recompute
 * every hash, so the chain is anchored outside the file: every line's (seq, SHA-256) goes to
 * syslog (LOG_AUTHPRIV; journald under systemd) as "audit anchor seq=N sha256=H prev=P chain=C
 * log=L job=J event=E outcome=O". chain is the first 16 hex digits of the SHA-256 of the
 * chain's line 1 (a log moved aside starts a new chain), log those of the SHA-256 of the log's
 * absolute path (several state directories on one machine). The fields up to job are fixed in
 * order and form; the rest is for people. prev anchors line N-1 once more, so a kill between
 * writing a line and sending its anchor leaves at most the last line unanchored until the next
 * one. The journal is append-only to the daemon's user: an attacker can add anchors, not remove
 * them, so every anchor must be accounted for by the file, and two different anchors for one
 * line are reported too (audit_verify.c). PKIO_AUDIT_SYSLOG_SOCKET (a test hook) sends them to
 * that unix datagram socket instead.
 */
#include "audit.h"
#include "audit_internal.h"

#include "i18n.h"
#include "log.h"
#include "pa_err.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#define AUDIT_ANCHOR_TAG "audit anchor "

extern char **environ;

/* See audit_internal.h. */
bool audit_syslog_enabled = true;

/* The log's id in anchors: SHA-256 of STATE_DIR/audit.log's absolute path, 16 digits. */
void audit_log_id(const char *state_dir, char id[AUDIT_ID_LEN + 1])
{
    char *real = realpath(state_dir, NULL), *path = NULL, h[AUDIT_HEX_LEN + 1];

    if (asprintf(&path, "%s/%s", real ? real : state_dir, AUDIT_FILE) < 0)
        path = NULL;
    if (!path || audit_sha256_hex(path, strlen(path), h) < 0)
        memcpy(h, AUDIT_ZERO_PREV, sizeof(h));
    memcpy(id, h, AUDIT_ID_LEN);
    id[AUDIT_ID_LEN] = '\0';
    free(real);
    free(path);
}

/* ---------------------------------------------------------------------------------------- */
/* Anchors out                                                                              */

/* Copy at most 64 bytes of s into buf, control characters and spaces as '?'. */
static const char *audit_sys_str(const char *s, char *buf, size_t len)
{
    size_t i;

    if (len > 65)
        len = 65;
    for (i = 0; s[i] && i + 1 < len; i++)
        buf[i] = ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f) ? '?' : s[i];
    buf[i] = '\0';
    return buf;
}

/* The job member of body as it goes into an anchor: up to 32 hex digits, else "-". */
static const char *audit_anchor_job(json_object *body)
{
    const char *s = audit_body_str(body, "job");
    size_t n = s ? strlen(s) : 0;

    return n > 0 && n <= 32 && strspn(s, AUDIT_HEX_DIGITS) == n ? s : "-";
}

/* The anchor of line w of log logid, whose body is body (the part after job is for people). */
void audit_anchor_msg(char *buf, size_t len, const struct audit_written *w, const char *logid,
                      json_object *body)
{
    const char *ev = audit_body_str(body, "event"), *oc = audit_body_str(body, "outcome");
    const char *tok = audit_body_str(body, "token_serial");
    json_object *v = NULL;
    char e[65], o[65];
    int n;

    n = snprintf(buf, len,
                 AUDIT_ANCHOR_TAG "seq=%ld sha256=%s prev=%s chain=%s log=%s job=%s event=%s "
                                  "outcome=%s",
                 w->seq, w->sha, w->prev, w->chain, logid, audit_anchor_job(body),
                 audit_sys_str(ev ? ev : "?", e, sizeof(e)),
                 audit_sys_str(oc ? oc : "?", o, sizeof(o)));
    if (n >= 0 && (size_t)n < len && tok) {
        char t[65];

        n += snprintf(buf + n, len - (size_t)n, " token=%s", audit_sys_str(tok, t, sizeof(t)));
    }
    if (n >= 0 && (size_t)n < len && json_object_object_get_ex(body, "order_id", &v) &&
        json_object_is_type(v, json_type_int))
        (void)snprintf(buf + n, len - (size_t)n, " order=%" PRId64, json_object_get_int64(v));
}

/* The message for an event that could not be written to the log. */
void audit_unlogged_msg(char *buf, size_t len, json_object *body)
{
    const char *ev = audit_body_str(body, "event"), *oc = audit_body_str(body, "outcome");
    char e[65], o[65];

    (void)snprintf(buf, len, "audit: event=%s outcome=%s job=%s (not in audit.log)",
                   audit_sys_str(ev ? ev : "?", e, sizeof(e)),
                   audit_sys_str(oc ? oc : "?", o, sizeof(o)), audit_anchor_job(body));
}

/* The test hook: one RFC 3164 datagram to the unix socket at path. */
static void audit_send_socket(const char *path, const char *msg)
{
    struct sockaddr_un sa;
    char buf[AUDIT_MSG_LEN + 128], ts[32];
    time_t now = time(NULL);
    struct tm tm;
    int fd, n;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path))
        return;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (!localtime_r(&now, &tm) || strftime(ts, sizeof(ts), "%b %e %H:%M:%S", &tm) == 0)
        return;
    n = snprintf(buf, sizeof(buf), "<%d>%s pkio-agent[%ld]: %s", LOG_AUTHPRIV | LOG_INFO, ts,
                 (long)getpid(), msg);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return;
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        log_debug("audit: cannot send to %s: %s", path, strerror(errno));
    close(fd);
}

void audit_send(const char *msg)
{
    static bool opened;
    const char *sock = getenv(AUDIT_SOCKET_ENV);

    if (!audit_syslog_enabled)
        return;
    if (sock && sock[0]) {
        audit_send_socket(sock, msg);
        return;
    }
    if (!opened) {
        openlog("pkio-agent", LOG_PID, LOG_AUTHPRIV);
        opened = true;
    }
    syslog(LOG_AUTHPRIV | LOG_INFO, "%s", msg);
}

/* ---------------------------------------------------------------------------------------- */
/* Anchors in                                                                               */

/* Where the anchor's fields start in line (NUL-terminated), or NULL. */
static const char *audit_anchor_start(const char *line)
{
    static const char tag[] = AUDIT_ANCHOR_TAG, ident[] = "pkio-agent";
    const char *p;

    if (strncmp(line, tag, sizeof(tag) - 1) == 0)
        return line + sizeof(tag) - 1;
    for (p = strstr(line, ident); p; p = strstr(p + 1, ident)) {
        const char *q = p + sizeof(ident) - 1;

        if (*q == '[') {
            size_t d = strspn(q + 1, "0123456789");

            if (d == 0 || q[1 + d] != ']')
                continue;
            q += d + 2;
        }
        if (strncmp(q, ": ", 2) == 0 && strncmp(q + 2, tag, sizeof(tag) - 1) == 0)
            return q + 2 + sizeof(tag) - 1;
    }
    return NULL;
}

/* "KEY" + exactly n lowercase hex digits (n_max > n: any count in [n, n_max]) and a space or
 * the end; advances *p past them. */
static bool audit_take_hex(const char **p, const char *key, size_t n, size_t n_max, char *out)
{
    size_t kl = strlen(key), got;
    const char *v;

    if (strncmp(*p, key, kl) != 0)
        return false;
    v = *p + kl;
    got = strspn(v, AUDIT_HEX_DIGITS);
    if (got < n || got > n_max || (v[got] != ' ' && v[got] != '\0'))
        return false;
    memcpy(out, v, got);
    out[got] = '\0';
    *p = v + got + (v[got] == ' ');
    return true;
}

static bool audit_take_seq(const char **p, long *out)
{
    const char *v = *p + 4;
    size_t d;
    char *end = NULL;
    long x;

    if (strncmp(*p, "seq=", 4) != 0)
        return false;
    d = strspn(v, "0123456789");
    if (d == 0 || d > 18 || v[0] == '0' || v[d] != ' ')
        return false;
    x = strtol(v, &end, 10);
    if (end != v + d || x < 1)
        return false;
    *out = x;
    *p = v + d + 1;
    return true;
}

int audit_parse_anchor(const char *line, size_t len, struct audit_anchor *ret)
{
    char buf[AUDIT_MAX_JOURNAL_LINE + 1];
    struct audit_anchor a;
    const char *p;

    if (!line || !ret || len > AUDIT_MAX_JOURNAL_LINE || memchr(line, '\0', len))
        return 0;
    memcpy(buf, line, len);
    buf[len] = '\0';
    memset(&a, 0, sizeof(a));
    p = audit_anchor_start(buf);
    if (!p || !audit_take_seq(&p, &a.seq) ||
        !audit_take_hex(&p, "sha256=", AUDIT_HEX_LEN, AUDIT_HEX_LEN, a.sha256) ||
        !audit_take_hex(&p, "prev=", AUDIT_HEX_LEN, AUDIT_HEX_LEN, a.prev) ||
        !audit_take_hex(&p, "chain=", AUDIT_ID_LEN, AUDIT_ID_LEN, a.chain) ||
        !audit_take_hex(&p, "log=", AUDIT_ID_LEN, AUDIT_ID_LEN, a.log))
        return 0;
    if (strncmp(p, "job=- ", 6) == 0 || strcmp(p, "job=-") == 0)
        a.job[0] = '\0';
    else if (!audit_take_hex(&p, "job=", 1, 32, a.job))
        return 0;
    *ret = a;
    return 1;
}

static int audit_anchors_add(struct audit_anchors *a, const struct audit_anchor *x)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 256;
        struct audit_anchor *nv =
            cap < SIZE_MAX / (2 * sizeof(*nv)) ? realloc(a->v, cap * sizeof(*nv)) : NULL;

        if (!nv)
            return PA_E_NOMEM;
        a->v = nv;
        a->cap = cap;
    }
    a->v[a->n++] = *x;
    return 0;
}

/* The anchors of log logid in the lines of f, in their order. */
static int audit_anchors_read(FILE *f, const char *logid, struct audit_anchors *a)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int r = 0;

    while (r == 0 && (n = getline(&line, &cap, f)) > 0) {
        struct audit_anchor x;

        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        if (audit_parse_anchor(line, (size_t)n, &x) == 1 && strcmp(x.log, logid) == 0) {
            x.order = (long)a->n;
            r = audit_anchors_add(a, &x);
        }
    }
    if (r == 0 && ferror(f))
        r = PA_E_IO;
    free(line);
    return r;
}

int audit_anchors_from_file(const char *path, const char *logid, struct audit_anchors *a,
                            char *errbuf, size_t errlen)
{
    FILE *f = fopen(path, "re");
    int r;

    if (!f)
        return pa_errf(errbuf, errlen, PA_E_IO, "%s: %s", path, strerror(errno));
    r = audit_anchors_read(f, logid, a);
    if (r == PA_E_IO)
        (void)pa_errf(errbuf, errlen, 0, "%s: %s", path, strerror(errno));
    fclose(f);
    return r;
}

/* Start journalctl with argv, its standard output on *ret_fd. */
static int audit_spawn(char *const argv[], pid_t *ret_pid, int *ret_fd)
{
    posix_spawn_file_actions_t fa;
    int p[2], err;

    if (pipe2(p, O_CLOEXEC) < 0)
        return PA_E_IO;
    if (posix_spawn_file_actions_init(&fa) != 0) {
        close(p[0]);
        close(p[1]);
        return PA_E_NOMEM;
    }
    err = posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
    if (err == 0)
        err = posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    if (err == 0)
        err = posix_spawnp(ret_pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (err != 0) {
        close(p[0]);
        errno = err;
        return PA_E_IO;
    }
    *ret_fd = p[0];
    return 0;
}

/* The anchors of log logid that journald holds from uid (journalctl). */
int audit_anchors_from_journal(uid_t uid, const char *since, const char *logid,
                               struct audit_anchors *a, char *errbuf, size_t errlen)
{
    char a0[] = "journalctl", a1[] = "--no-pager", a2[] = "--quiet", a3[] = "--output=cat",
         a4[] = "--identifier=pkio-agent", uidm[32], sincearg[256];
    char *argv[] = {a0, a1, a2, a3, a4, uidm, sincearg, NULL};
    FILE *f;
    pid_t pid = -1;
    int fd = -1, status = 0, r;

    (void)snprintf(uidm, sizeof(uidm), "_UID=%lu", (unsigned long)uid);
    if (since)
        (void)snprintf(sincearg, sizeof(sincearg), "--since=%s", since);
    else
        argv[6] = NULL;
    r = audit_spawn(argv, &pid, &fd);
    if (r < 0)
        return pa_errf(errbuf, errlen, r,
                       audit_tr(N_("cannot run journalctl: %s (give --journal-file)")),
                       strerror(errno));
    f = fdopen(fd, "r");
    r = f ? audit_anchors_read(f, logid, a) : PA_E_NOMEM;
    if (f)
        fclose(f);
    else
        close(fd);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (r == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
        (void)pa_errf(errbuf, errlen, 0, audit_tr(N_("journalctl failed (exit status %d)")),
                      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        r = PA_E_IO;
    }
    return r;
}
