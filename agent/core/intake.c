/* SPDX-License-Identifier: Apache-2.0 */
/*
 * intake.c - officers hand requests to the daemon (intake.h). The daemon's answer on the socket,
 * its journal line and its audit line are records: English whatever the daemon's language (the
 * checks run with it set aside). The officer's side shows the answer translated when it is one
 * of our texts, and says in the officer's language what went wrong on its side.
 */
#include "intake.h"

#include "audit.h"
#include "fsutil.h"
#include "i18n.h"
#include "pa_err.h"
#include "text.h"
#include "pjson.h"
#include "queue.h"
#include "request.h"
#include "secret.h"
#include "tok.h"

#include <json-c/json.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define INTAKE_MAX_CONNS  8
#define INTAKE_MAX_MSG    (REQ_MAX_SIZE + 16 * 1024) /* a request and its binding */
#define INTAKE_TIMEOUT_S  10.0                       /* to send one entry */
#define INTAKE_REPLY_S    60                         /* the officer's wait for the answer */
#define INTAKE_JSON_DEPTH 32 /* json-c's default: an entry wraps a request (16) */

/* ---- the group ------------------------------------------------------------------------------ */

int officers_lookup(const char *name, struct officers *ret)
{
    struct group gr, *res = NULL;
    size_t cap = 16384;
    char *buf = NULL;
    int e = ERANGE;

    if (strlen(name) >= sizeof(ret->name))
        return PA_E_USAGE;
    snprintf(ret->name, sizeof(ret->name), "%s", name);
    ret->gid = (gid_t)-1;
    while (e == ERANGE && cap <= (1u << 20)) {
        char *nb = realloc(buf, cap);

        if (!nb)
            break;
        buf = nb;
        e = getgrnam_r(name, &gr, buf, cap, &res);
        cap *= 2;
    }
    if (e == 0 && res)
        ret->gid = res->gr_gid;
    free(buf);
    return 0;
}

/* Is gid among the groups of user name (primary group pgid)? */
static bool in_group(const char *name, gid_t pgid, gid_t gid)
{
    gid_t small[64], *groups = small;
    int n = 64;
    bool found = false;

    if (pgid == gid)
        return true;
    if (getgrouplist(name, pgid, groups, &n) < 0) {
        groups = n > 0 ? calloc((size_t)n, sizeof(*groups)) : NULL;
        if (!groups || getgrouplist(name, pgid, groups, &n) < 0)
            n = 0;
    }
    for (int i = 0; i < n && !found; i++)
        found = groups[i] == gid;
    if (groups != small)
        free(groups);
    return found;
}

bool officers_allow(const struct officers *o, uid_t uid, char *login, size_t loginlen)
{
    struct passwd pw, *res = NULL;
    char buf[4096];

    snprintf(login, loginlen, "uid %lu", (unsigned long)uid);
    if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res)
        text_clean(res->pw_name, login, loginlen);
    if (uid == 0 || uid == geteuid())
        return true;
    if (!res || o->gid == (gid_t)-1)
        return false;
    return in_group(res->pw_name, res->pw_gid, o->gid);
}

/* ---- sharing what holds no secret ----------------------------------------------------------- */

/* Give path (of type S_IFDIR, S_IFREG or S_IFSOCK) the group and mode, if the effective user
 * owns it. A socket cannot be opened: it is changed by name (its directory is the daemon's). */
static int share_socket(const char *path, gid_t gid, mode_t mode)
{
    struct stat st;

    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : PA_E_IO;
    if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid())
        return 0;
    return lchown(path, (uid_t)-1, gid) < 0 || chmod(path, mode) < 0 ? PA_E_IO : 0;
}

static int share_path(const char *path, mode_t type, gid_t gid, mode_t mode)
{
    int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    struct stat st;
    int fd, r = 0;

    if (type == S_IFSOCK)
        return share_socket(path, gid, mode);
    fd = open(path, flags | (type == S_IFDIR ? O_DIRECTORY : 0));
    if (fd < 0) /* gone, or a symbolic link (never followed; not ours to share) */
        return errno == ENOENT || errno == ELOOP || errno == ENOTDIR ? 0 : PA_E_IO;
    if (fstat(fd, &st) < 0)
        r = PA_E_IO;
    else if (st.st_uid == geteuid() && (st.st_mode & S_IFMT) == type)
        r = fs_share_fd(fd, gid, mode);
    close(fd);
    return r;
}

/* Job records (ID.json, ID.json.corrupt) and queue entries: no secrets in them. */
static bool shared_file_name(const char *name)
{
    size_t n = strlen(name);

    if (name[0] == '.' || strstr(name, ".tmp.") || strstr(name, ".request."))
        return false;
    return (n > 5 && strcmp(name + n - 5, ".json") == 0) ||
           (n > 13 && strcmp(name + n - 13, ".json.corrupt") == 0) ||
           (n > 7 && strcmp(name + n - 7, ".reason") == 0);
}

/* Share the files of dir that hold no secret (0640). */
static int share_files(const char *dir, gid_t gid)
{
    struct dirent *d;
    DIR *dp = opendir(dir);
    int r = 0;

    if (!dp)
        return errno == ENOENT ? 0 : PA_E_IO;
    while ((d = readdir(dp)) != NULL) {
        char p[4400];

        if (!shared_file_name(d->d_name))
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, d->d_name);
        if (share_path(p, S_IFREG, gid, 0640) < 0)
            r = PA_E_IO;
    }
    closedir(dp);
    return r;
}

int state_share_audit(const char *state_dir, const struct officers *o)
{
    struct stat st;
    char p[4096];
    int fd, r = 0;

    if (o->gid == (gid_t)-1)
        return 0;
    if (snprintf(p, sizeof(p), "%s/audit.log", state_dir) >= (int)sizeof(p))
        return PA_E_CONFIG;
    /* Created empty if missing (an empty log is an intact chain of 0 lines), so that it is born
     * readable by the group: audit.c keeps the mode of the file it appends to. */
    fd = open(p, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd < 0)
        return PA_E_IO;
    if (fstat(fd, &st) < 0)
        r = PA_E_IO;
    else if (S_ISREG(st.st_mode) && st.st_uid == geteuid())
        r = fs_share_fd(fd, o->gid, 0640);
    close(fd);
    return r;
}

bool state_shared(const char *state_dir, const struct officers *o)
{
    struct stat st;
    char p[4096];

    if (o->gid == (gid_t)-1)
        return true;
    snprintf(p, sizeof(p), "%s/queue/intake.sock", state_dir);
    if (stat(state_dir, &st) < 0 || st.st_gid != o->gid || (st.st_mode & 0750) != 0750)
        return false;
    return lstat(p, &st) < 0 || (st.st_gid == o->gid && (st.st_mode & 0660) == 0660);
}

int state_share(const char *state_dir, const struct officers *o, char *errbuf, size_t errlen)
{
    static const char *const dirs[] = {"jobs", "queue", "queue/taken", "queue/rejected"};
    char p[4096];
    int r;

    if (o->gid == (gid_t)-1)
        return 0;
    r = share_path(state_dir, S_IFDIR, o->gid, 0750);
    for (size_t i = 0; r == 0 && i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", state_dir, dirs[i]);
        /* setgid: what is made inside belongs to the group (its mode still decides) */
        r = share_path(p, S_IFDIR, o->gid, 02750);
        if (r == 0)
            r = share_files(p, o->gid);
    }
    snprintf(p, sizeof(p), "%s/queue/intake.sock", state_dir);
    if (r == 0)
        r = share_path(p, S_IFSOCK, o->gid, 0660);
    if (r == 0)
        r = state_share_audit(state_dir, o);
    if (r < 0)
        snprintf(errbuf, errlen, "giving group %s read access to %s: %s", o->name, state_dir,
                 strerror(errno));
    return r;
}

/* ---- the socket ----------------------------------------------------------------------------- */

struct iconn {
    int fd;
    uid_t uid;
    char login[64];
    char *buf; /* the entry being read; wiped before it is freed (it may hold card data) */
    size_t len, cap;
    double deadline;
};

struct intake {
    const struct intake_ctx *ctx;
    int lfd;
    char path[108];
    struct iconn conns[INTAKE_MAX_CONNS];
    size_t nconns;
};

static double mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int sock_addr(const char *state_dir, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/queue/intake.sock", state_dir) >=
        (int)sizeof(sa->sun_path))
        return PA_E_CONFIG;
    return 0;
}

/* Another daemon answering on the socket? Else remove what is left of an earlier one. */
static int sock_claim(const struct sockaddr_un *sa, char *errbuf, size_t errlen)
{
    struct stat st;
    int fd;

    if (lstat(sa->sun_path, &st) < 0)
        return errno == ENOENT ? 0 : PA_E_IO;
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(errbuf, errlen, _("%s exists and is not a socket"), sa->sun_path);
        return PA_E_IO;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0) {
        close(fd);
        snprintf(errbuf, errlen, _("another pkio-agent watch answers on %s"), sa->sun_path);
        return PA_E_BUSY;
    }
    if (fd >= 0)
        close(fd);
    return unlink(sa->sun_path) == 0 || errno == ENOENT ? 0 : PA_E_IO;
}

/* Bind and listen; the socket file gets the group's 0660 (or 0600 without a group). */
static int sock_listen(struct intake *in, const struct sockaddr_un *sa)
{
    const struct officers *o = in->ctx->officers;
    bool shared = o->gid != (gid_t)-1;

    in->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (in->lfd < 0 || bind(in->lfd, (const struct sockaddr *)sa, sizeof(*sa)) < 0)
        return PA_E_IO;
    if ((shared && chown(sa->sun_path, (uid_t)-1, o->gid) < 0) ||
        chmod(sa->sun_path, shared ? 0660 : 0600) < 0 || listen(in->lfd, 16) < 0)
        return PA_E_IO;
    return 0;
}

int intake_open(const struct intake_ctx *ctx, struct intake **ret, char *errbuf, size_t errlen)
{
    struct intake *in = calloc(1, sizeof(*in));
    struct sockaddr_un sa;
    int r;

    if (!in)
        return PA_E_NOMEM;
    in->ctx = ctx;
    in->lfd = -1;
    r = sock_addr(ctx->state_dir, &sa);
    if (r < 0)
        snprintf(errbuf, errlen, _("%s/queue/intake.sock: path too long for a socket"),
                 ctx->state_dir);
    if (r == 0)
        r = queue_dir_prepare(ctx->state_dir);
    if (r == 0)
        r = sock_claim(&sa, errbuf, errlen);
    if (r == 0) {
        r = sock_listen(in, &sa);
        if (r < 0)
            snprintf(errbuf, errlen, "%s: %s", sa.sun_path, strerror(errno));
    }
    if (r < 0) {
        if (in->lfd >= 0)
            close(in->lfd);
        free(in);
        return r;
    }
    memcpy(in->path, sa.sun_path, sizeof(in->path));
    *ret = in;
    return 0;
}

static void conn_free(struct iconn *c)
{
    if (c->buf) {
        secret_wipe(c->buf, c->cap);
        free(c->buf);
    }
    if (c->fd >= 0)
        close(c->fd);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

void intake_close(struct intake *in)
{
    if (!in)
        return;
    for (size_t i = 0; i < in->nconns; i++)
        conn_free(&in->conns[i]);
    if (in->lfd >= 0) {
        close(in->lfd);
        (void)unlink(in->path);
    }
    free(in);
}

size_t intake_pollfds(const struct intake *in, struct pollfd *p, size_t max)
{
    size_t n = 0;

    if (!in || max == 0)
        return 0;
    p[n++] = (struct pollfd){in->lfd, POLLIN, 0};
    for (size_t i = 0; i < in->nconns && n < max; i++)
        p[n++] = (struct pollfd){in->conns[i].fd, POLLIN, 0};
    return n;
}

/* The answer, one JSON line; the officer's side reads it. Never blocks (it fits the buffer). */
static void reply(int fd, const char *id, const char *reason)
{
    json_object *o = json_object_new_object();
    const char *txt;

    json_object_object_add(o, "ok", json_object_new_boolean(id != NULL));
    if (id)
        json_object_object_add(o, "id", json_object_new_string(id));
    else
        json_object_object_add(o, "reason", json_object_new_string(reason));
    txt = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    (void)!send(fd, txt, strlen(txt), MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)!send(fd, "\n", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    json_object_put(o);
}

/* One journal line and one audit line for every entry handed in, taken or refused. */
static void record(const struct intake *in, const struct iconn *c, const char *id,
                   const char *reason)
{
    struct audit_event ev = {.event = "queue-intake", .outcome = id ? "ok" : "refused"};
    char detail[512], safe[512];

    if (id)
        snprintf(detail, sizeof(detail), "entry %s queued by officer %s (uid %lu)", id, c->login,
                 (unsigned long)c->uid);
    else
        snprintf(detail, sizeof(detail), "entry from %s (uid %lu) refused: %s", c->login,
                 (unsigned long)c->uid, reason);
    text_clean(detail, safe, sizeof(safe)); /* a reason may quote what the officer sent */
    ev.detail = safe;
    fprintf(stderr, "pkio-agent: watch: queue: %s\n", safe);
    if (audit_append(in->ctx->state_dir, &ev) < 0)
        fprintf(stderr, "pkio-agent: watch: queue: cannot append to the audit log in %s\n",
                in->ctx->state_dir);
}

/* The request as the daemon will send it: valid for the product, with the station's defaults. */
static int check_request(const struct cfg *cfg, const char *text, char *why, size_t whylen)
{
    struct req_errors errs = {0};
    struct req *req = NULL;
    char err[256] = "";
    int r = req_load_mem(text, strlen(text), &req, err, sizeof(err));

    if (r < 0) {
        snprintf(why, whylen, "the request does not parse: %s", err);
        return PA_E_REFUSED;
    }
    r = req_merge_defaults(req, cfg);
    if (r == 0)
        r = req_validate(req, cfg, false, &errs);
    if (r == PA_E_REQUEST) {
        char line[240];

        req_errors_format(&errs, line, sizeof(line));
        snprintf(why, whylen, "invalid request: %s", line);
    } else if (r < 0) {
        snprintf(why, whylen, "the request cannot be checked (%s)", pa_err_str(r));
    }
    req_errors_clear(&errs);
    req_free(req);
    return r < 0 ? PA_E_REFUSED : 0;
}

/* A string member (or null/absent: NULL). false when it is there and not a string. */
static bool opt_member(json_object *o, const char *key, const char **ret)
{
    json_object *v = NULL;

    *ret = NULL;
    if (!json_object_object_get_ex(o, key, &v) || !v)
        return true;
    if (!json_object_is_type(v, json_type_string))
        return false;
    *ret = json_object_get_string(v);
    return true;
}

/* The entry's shape: {"format":1,"serial":...,"token_uri":...,"request":{...}}, nothing else. */
static const char *entry_shape(json_object *o, const char **serial, const char **uri,
                               json_object **req)
{
    json_object *v;

    if (!o || !json_object_is_type(o, json_type_object))
        return N_("not a JSON object");
    json_object_object_foreach(o, key, val)
    {
        (void)val;
        if (strcmp(key, "format") && strcmp(key, "serial") && strcmp(key, "token_uri") &&
            strcmp(key, "request"))
            return N_("unknown member in the entry");
    }
    if (!json_object_object_get_ex(o, "format", &v) || !json_object_is_type(v, json_type_int) ||
        json_object_get_int(v) != 1)
        return N_("not entry format 1");
    if (!opt_member(o, "serial", serial) || !opt_member(o, "token_uri", uri))
        return N_("serial and token_uri must be strings");
    if (!json_object_object_get_ex(o, "request", req) ||
        !json_object_is_type(*req, json_type_object))
        return N_("no request object");
    return NULL;
}

/* A PIN file is read by the daemon's user: only root and that user may name one. */
static const char *uri_problem(const char *uri, uid_t uid)
{
    struct tok_uri u;
    bool pin_file;

    if (!uri)
        return NULL;
    memset(&u, 0, sizeof(u));
    if (tok_uri_parse(uri, false, &u) < 0)
        return N_("token_uri: not a PKCS#11 URI, or it carries pin-value");
    pin_file = u.pin_source != NULL;
    tok_uri_clear(&u);
    if (pin_file && uid != 0 && uid != geteuid())
        return N_("token_uri: a PIN file (pin-source) names a path the daemon would read; only "
                  "the station's administrator may name one (the daemon's --pin-source serves "
                  "officers)");
    return NULL;
}

/* Check the entry and queue it; 0 and id, or PA_E_REFUSED and why. */
static int take_in(struct intake *in, struct iconn *c, char *id, char *why, size_t whylen)
{
    const struct pjson_opts opts = {0, INTAKE_JSON_DEPTH, PJSON_NO_SPACE | PJSON_WIPE,
                                    PA_E_REFUSED};
    json_object *o = NULL, *req = NULL;
    const char *serial = NULL, *uri = NULL, *problem;
    struct queue_bind bind = {0};
    int r = pjson_parse(c->buf, c->len, &opts, &o, NULL);

    problem = r == PA_E_NOMEM ? N_("out of memory")
              : r < 0 || !o   ? N_("not one JSON object")
                              : entry_shape(o, &serial, &uri, &req);
    r = PA_E_REFUSED;
    if (!problem)
        problem = uri_problem(uri, c->uid);
    if (!problem && queue_bind_from(serial, uri, &bind, why, whylen) < 0)
        problem = why;
    if (problem) {
        if (problem != why)
            snprintf(why, whylen, "%s", problem);
    } else {
        const char *text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PRETTY);

        r = check_request(in->ctx->cfg, text, why, whylen);
        if (r == 0 && queue_add_text(in->ctx->state_dir, text, strlen(text), &bind, uri, c->login,
                                     (long)c->uid, id, why, whylen) < 0)
            r = PA_E_REFUSED;
        secret_wipe((void *)(uintptr_t)text, strlen(text));
    }
    queue_bind_clear(&bind);
    pjson_wipe(o);
    json_object_put(o);
    return r;
}

/* The whole entry is in: take it in or refuse it, answer, and close. */
static void finish(struct intake *in, struct iconn *c, const char *refusal)
{
    char id[33] = "", why[512] = "";
    const char *lang = i18n_lang();

    (void)i18n_set_lang("en"); /* the answer, the journal and the audit log: English */
    if (refusal)
        snprintf(why, sizeof(why), "%s", refusal);
    else if (take_in(in, c, id, why, sizeof(why)) < 0)
        id[0] = '\0';
    (void)i18n_set_lang(lang);
    reply(c->fd, id[0] ? id : NULL, why);
    record(in, c, id[0] ? id : NULL, why);
    conn_free(c);
}

/* Room for more of the entry (the old buffer is wiped, never left to realloc). */
static bool grow(struct iconn *c)
{
    size_t cap = c->cap ? c->cap * 2 : 16384;
    char *nb;

    if (cap > INTAKE_MAX_MSG + 1)
        cap = INTAKE_MAX_MSG + 1;
    nb = malloc(cap);
    if (!nb)
        return false;
    if (c->buf) {
        memcpy(nb, c->buf, c->len);
        secret_wipe(c->buf, c->cap);
        free(c->buf);
    }
    c->buf = nb;
    c->cap = cap;
    return true;
}

/* Read what is there; finish on end of file, an error, or too much. */
static void conn_read(struct intake *in, struct iconn *c)
{
    for (;;) {
        ssize_t n;

        if (c->len == c->cap && (c->len > INTAKE_MAX_MSG || !grow(c))) {
            finish(in, c, N_("the entry is too large"));
            return;
        }
        n = read(c->fd, c->buf + c->len, c->cap - c->len);
        if (n > 0) {
            c->len += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n == 0 && c->len == 0) { /* nothing sent (another daemon looking): no entry */
            conn_free(c);
            return;
        }
        if (n < 0 || c->len > INTAKE_MAX_MSG)
            finish(in, c, n < 0 ? N_("reading the entry failed") : N_("the entry is too large"));
        else
            finish(in, c, NULL);
        return;
    }
}

/* A new connection: who is it, and may they queue? */
static void conn_accept(struct intake *in)
{
    struct iconn c = {.fd = -1};
    struct ucred cr;
    socklen_t len = sizeof(cr);

    c.fd = accept4(in->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c.fd < 0)
        return;
    if (getsockopt(c.fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
        close(c.fd);
        return;
    }
    c.uid = cr.uid;
    c.deadline = mono_now() + INTAKE_TIMEOUT_S;
    if (!officers_allow(in->ctx->officers, cr.uid, c.login, sizeof(c.login))) {
        char why[256];

        snprintf(why, sizeof(why), "%s is not root, the daemon's user or a member of group %s",
                 c.login, in->ctx->officers->name);
        finish(in, &c, why);
    } else if (in->nconns == INTAKE_MAX_CONNS) {
        reply(c.fd, NULL, N_("the daemon is busy; try again"));
        close(c.fd);
    } else {
        in->conns[in->nconns++] = c;
    }
}

/* Drop the connections that were finished (fd -1). */
static void compact(struct intake *in)
{
    size_t k = 0;

    for (size_t i = 0; i < in->nconns; i++)
        if (in->conns[i].fd >= 0)
            in->conns[k++] = in->conns[i];
    in->nconns = k;
}

void intake_handle(struct intake *in, const struct pollfd *p, size_t n)
{
    if (!in)
        return;
    for (size_t i = 0; i < n; i++) {
        if (!p[i].revents)
            continue;
        if (p[i].fd == in->lfd) {
            for (int k = 0; k < INTAKE_MAX_CONNS + 1; k++) /* a few at a time: never starve */
                conn_accept(in);
            continue;
        }
        for (size_t j = 0; j < in->nconns; j++)
            if (in->conns[j].fd == p[i].fd)
                conn_read(in, &in->conns[j]);
    }
    compact(in);
}

int intake_timeout_ms(struct intake *in)
{
    double now = mono_now(), next = -1;

    if (!in)
        return -1;
    for (size_t i = 0; i < in->nconns; i++) {
        struct iconn *c = &in->conns[i];

        if (c->deadline <= now)
            finish(in, c, N_("timed out before the whole entry arrived"));
        else if (next < 0 || c->deadline - now < next)
            next = c->deadline - now;
    }
    compact(in);
    return next < 0 ? -1 : (int)(next * 1000) + 1;
}

/* ---- the officer's side --------------------------------------------------------------------- */

/* Connect to the daemon's socket; errbuf says why not. */
static int submit_connect(const char *state_dir, int *ret_fd, char *errbuf, size_t errlen)
{
    struct sockaddr_un sa;
    int fd;

    if (sock_addr(state_dir, &sa) < 0) {
        snprintf(errbuf, errlen, _("%s/queue/intake.sock: path too long for a socket"), state_dir);
        return PA_E_CONFIG;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) == 0) {
        *ret_fd = fd;
        return 0;
    }
    if (errno == EACCES || errno == EPERM)
        snprintf(errbuf, errlen,
                 _("%s: permission denied (only root, the daemon's user and members of the "
                   "officers' group may queue)"),
                 sa.sun_path);
    else
        snprintf(errbuf, errlen, _("no pkio-agent watch daemon answers on %s (%s); is it running?"),
                 sa.sun_path, strerror(errno));
    if (fd >= 0)
        close(fd);
    return errno == EACCES || errno == EPERM ? PA_E_REFUSED : PA_E_IO;
}

/* Send it all, then say that was all. */
static int submit_send(int fd, const char *entry, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, entry, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return PA_E_IO;
        entry += n;
        len -= (size_t)n;
    }
    return shutdown(fd, SHUT_WR) < 0 ? PA_E_IO : 0;
}

/* The daemon's answer: one JSON line. */
static int submit_answer(int fd, char *ret_id, char *errbuf, size_t errlen)
{
    const struct pjson_opts answer = {0, 4, PJSON_OBJECT, PA_E_IO}; /* {"ok": .., "id": ..} */
    char buf[2048];
    size_t len = 0;
    json_object *o = NULL, *v;
    int r = PA_E_IO;

    while (len < sizeof(buf) - 1) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t n;

        if (poll(&p, 1, INTAKE_REPLY_S * 1000) <= 0)
            break;
        n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    if (pjson_parse(buf, len, &answer, &o, NULL) < 0)
        o = NULL;
    if (o && json_object_object_get_ex(o, "ok", &v) && json_object_get_boolean(v) &&
        json_object_object_get_ex(o, "id", &v) && json_object_get_string_len(v) == 32) {
        memcpy(ret_id, json_object_get_string(v), 33);
        r = 0;
    } else if (o && json_object_object_get_ex(o, "reason", &v)) {
        const char *why = json_object_get_string(v);

        /* English from the daemon: translated when it is one of our texts (gettext("") would be
         * the catalog's header). */
        text_clean(why && *why ? _(why) : why, errbuf, errlen);
        r = PA_E_REFUSED;
    } else {
        snprintf(errbuf, errlen, "%s", _("the daemon gave no answer"));
    }
    json_object_put(o);
    return r;
}

int intake_submit(const char *state_dir, const char *entry, size_t len, char *ret_id, char *errbuf,
                  size_t errlen)
{
    int fd = -1, r = submit_connect(state_dir, &fd, errbuf, errlen);

    if (r < 0)
        return r;
    r = submit_send(fd, entry, len);
    if (r < 0)
        snprintf(errbuf, errlen, _("sending the entry to the daemon: %s"), strerror(errno));
    else
        r = submit_answer(fd, ret_id, errbuf, errlen);
    close(fd);
    return r;
}
