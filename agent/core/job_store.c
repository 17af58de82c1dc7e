/* SPDX-License-Identifier: Apache-2.0 */
/*
 * job_store.c - job records on disk (job.h): STATE_DIR and STATE_DIR/jobs, saving one record
 * atomically as jobs/ID.json, loading one by id or prefix, listing them all (a record that does
 * not parse is set aside as ID.json.corrupt), and the job and token locks (flock on
 * jobs/ID.lock and jobs/token-H.lock). What a record holds is job_format.c's.
 */
#include "job.h"
#include "job_internal.h"

#include "fsutil.h"
#include "i18n.h"
#include "log.h"
#include "pa_err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define JOB_PREFIX_MIN 6

/* STATE_DIR/jobs/NAME (malloc'd; NULL when out of memory). */
static char *job_path(const char *state_dir, const char *name)
{
    char *p = NULL;

    if (asprintf(&p, "%s/jobs/%s", state_dir, name) < 0)
        return NULL;
    return p;
}

/* STATE_DIR/jobs (malloc'd; NULL when out of memory). */
static char *job_dir_path(const char *state_dir)
{
    char *p = NULL;

    if (asprintf(&p, "%s/jobs", state_dir) < 0)
        return NULL;
    return p;
}

/* ---------------------------------------------------------------------------------------- */
/* Directories                                                                              */

/* stat path and refuse what another user could change. */
static int job_dir_check(const char *path, char *errbuf, size_t errlen)
{
    struct stat st;

    if (stat(path, &st) < 0)
        return pa_errf(errbuf, errlen, PA_E_IO, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return pa_errf(errbuf, errlen, PA_E_CONFIG, _("%s: not a directory"), path);
    if (st.st_uid != geteuid())
        return pa_errf(errbuf, errlen, PA_E_CONFIG,
                       _("%s: owned by uid %lu, not by the current user (uid %lu)"), path,
                       (unsigned long)st.st_uid, (unsigned long)geteuid());
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return pa_errf(errbuf, errlen, PA_E_CONFIG, _("%s: group or world writable (mode %04o)"),
                       path, (unsigned)(st.st_mode & 07777));
    return 0;
}

/* mkdir path (0700) unless it exists; with parents when make_parents. */
static int job_mkdir(char *path, bool make_parents, char *errbuf, size_t errlen)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST)
        return 0;
    if (errno == ENOENT && make_parents) {
        char *slash = strrchr(path, '/');

        if (slash && slash != path) {
            int r;

            *slash = '\0';
            r = job_mkdir(path, true, errbuf, errlen);
            *slash = '/';
            if (r < 0)
                return r;
            if (mkdir(path, 0700) == 0 || errno == EEXIST)
                return 0;
        }
    }
    return pa_errf(errbuf, errlen, PA_E_IO, _("cannot create %s: %s"), path, strerror(errno));
}

/*
 * Create STATE_DIR (with parents) and STATE_DIR/jobs, mode 0700, when missing. PA_E_CONFIG when
 * either is not a directory, is not owned by the effective user, or is group/world writable;
 * PA_E_IO when it cannot be created.
 */
int job_dir_prepare(const char *state_dir, char *errbuf, size_t errlen)
{
    char *dir = NULL, *jobs = NULL;
    size_t len;
    int r = PA_E_NOMEM;

    if (!state_dir || !state_dir[0])
        return pa_errf(errbuf, errlen, PA_E_CONFIG, _("no state directory"));
    dir = strdup(state_dir);
    if (!dir)
        goto out;
    len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        dir[--len] = '\0';
    jobs = job_dir_path(dir);
    if (!jobs)
        goto out;
    r = job_mkdir(dir, true, errbuf, errlen);
    if (r < 0)
        goto out;
    r = job_dir_check(dir, errbuf, errlen);
    if (r < 0)
        goto out;
    r = job_mkdir(jobs, false, errbuf, errlen);
    if (r < 0)
        goto out;
    r = job_dir_check(jobs, errbuf, errlen);
out:
    free(dir);
    free(jobs);
    return r;
}

/* Check, stamp and write j atomically; on failure j->updated is unchanged. */
int job_save(const char *state_dir, struct job *j)
{
    char err[256], *json = NULL, *path = NULL, name[JOB_ID_LEN + 8];
    time_t old;
    int r;

    if (!state_dir || !j)
        return PA_E_INTERNAL;
    old = j->updated;
    j->updated = time(NULL);
    r = job_check(j, err, sizeof(err));
    if (r < 0) {
        log_debug("job: refusing to save an invalid job: %s", err);
        r = PA_E_INTERNAL;
        goto out;
    }
    r = PA_E_NOMEM;
    json = job_to_json(j);
    if (!json)
        goto out;
    (void)snprintf(name, sizeof(name), "%s.json", j->id);
    path = job_path(state_dir, name);
    if (!path)
        goto out;
    /* A record holds no secret: where jobs/ is shared with the officers' group (setgid, made so
     * by `pkio-agent watch`) they may read it (`status`, 0640); elsewhere it is 0600. */
    r = fs_write_atomic(path, json, strlen(json), fs_mode_in_dir(path, 0600, 0640));
    if (r < 0)
        log_debug("job: cannot write %s: %s", path, strerror(errno));
out:
    if (r < 0)
        j->updated = old;
    free(json);
    free(path);
    return r;
}

/* ---------------------------------------------------------------------------------------- */
/* Loading                                                                                  */

/* Whether name is "<32 lowercase hex>.json". */
static bool job_file_name(const char *name)
{
    return strlen(name) == JOB_ID_LEN + 5 && strcmp(name + JOB_ID_LEN, ".json") == 0 &&
           strspn(name, "0123456789abcdef") == JOB_ID_LEN;
}

/*
 * What fs_read's failure r means for the job file path of job id: PA_E_JOB when there is no
 * readable record (none, not a regular file, too large), else r.
 */
static int job_read_error(int r, const struct fs_read *rd, const char *path, const char *id,
                          char *errbuf, size_t errlen)
{
    if (r != PA_E_IO)
        return r;
    if (rd->failed == FS_READ_OPEN && rd->err == ENOENT)
        return pa_errf(errbuf, errlen, PA_E_JOB, _("no job %s"), id);
    if (rd->failed == FS_READ_TYPE || rd->failed == FS_READ_SIZE) {
        fs_read_explain(rd, path, JOB_MAX_FILE, errbuf, errlen);
        return PA_E_JOB;
    }
    return pa_errf(errbuf, errlen, PA_E_IO, "%s: %s", path, strerror(rd->err));
}

/* Read and parse one job file (full id); the id inside must match the name. */
static int job_load_file(const char *state_dir, const char *id, struct job **ret, char *errbuf,
                         size_t errlen)
{
    char *path = NULL, name[JOB_ID_LEN + 8], err[256];
    struct fs_read rd = {0};
    struct job *j = NULL;
    int r = PA_E_NOMEM;

    (void)snprintf(name, sizeof(name), "%s.json", id);
    path = job_path(state_dir, name);
    if (!path)
        goto out;
    r = fs_read(path, JOB_MAX_FILE, &rd);
    if (r < 0) {
        r = job_read_error(r, &rd, path, id, errbuf, errlen);
        goto out;
    }
    err[0] = '\0';
    r = job_parse(rd.buf, rd.len, &j, err, sizeof(err));
    if (r < 0) {
        (void)pa_errf(errbuf, errlen, 0, "%s: %s", path, err);
        goto out;
    }
    if (strcmp(j->id, id) != 0) {
        r = pa_errf(errbuf, errlen, PA_E_JOB, _("%s: holds job %s"), path, j->id);
        goto out;
    }
    *ret = j;
    j = NULL;
    r = 0;
out:
    job_free(j);
    free(rd.buf);
    free(path);
    return r;
}

/*
 * The id of the one job file whose name starts with want (len lowercase hex digits) into found.
 * PA_E_JOB when none or several do.
 */
static int job_find_prefix(const char *state_dir, const char *want, size_t len,
                           char found[JOB_ID_LEN + 1], char *errbuf, size_t errlen)
{
    char *jobs = job_dir_path(state_dir);
    size_t nfound = 0;
    DIR *d = NULL;
    struct dirent *e;
    int r = PA_E_NOMEM;

    if (!jobs)
        goto out;
    d = opendir(jobs);
    if (!d) {
        if (errno == ENOENT)
            r = pa_errf(errbuf, errlen, PA_E_JOB, _("no job %s"), want);
        else
            r = pa_errf(errbuf, errlen, PA_E_IO, "%s: %s", jobs, strerror(errno));
        goto out;
    }
    while ((e = readdir(d)) != NULL) {
        if (!job_file_name(e->d_name) || strncmp(e->d_name, want, len) != 0)
            continue;
        nfound++;
        memcpy(found, e->d_name, JOB_ID_LEN);
        found[JOB_ID_LEN] = '\0';
    }
    if (nfound == 0)
        r = pa_errf(errbuf, errlen, PA_E_JOB, _("no job %s"), want);
    else if (nfound > 1)
        r = pa_errf(errbuf, errlen, PA_E_JOB, _("%s: prefix matches several jobs"), want);
    else
        r = 0;
out:
    if (d)
        closedir(d);
    free(jobs);
    return r;
}

/*
 * Load a job by its id or a unique prefix (6 to 32 hex digits, any case). PA_E_JOB when no job
 * or several jobs match, or the file is corrupt (errbuf names the file).
 */
int job_load(const char *state_dir, const char *id, struct job **ret, char *errbuf, size_t errlen)
{
    char want[JOB_ID_LEN + 1], found[JOB_ID_LEN + 1] = "";
    size_t len;
    int r;

    if (!state_dir || !id || !ret)
        return PA_E_INTERNAL;
    len = strlen(id);
    if (len < JOB_PREFIX_MIN || len > JOB_ID_LEN || !job_is_hex(id, false))
        return pa_errf(errbuf, errlen, PA_E_JOB, _("not a job id (%d to %d hex digits)"),
                       JOB_PREFIX_MIN, JOB_ID_LEN);
    for (size_t i = 0; i <= len; i++)
        want[i] = (char)(id[i] >= 'A' && id[i] <= 'F' ? id[i] - 'A' + 'a' : id[i]);
    if (len == JOB_ID_LEN)
        return job_load_file(state_dir, want, ret, errbuf, errlen);
    r = job_find_prefix(state_dir, want, len, found, errbuf, errlen);
    if (r < 0)
        return r;
    return job_load_file(state_dir, found, ret, errbuf, errlen);
}

/* ---------------------------------------------------------------------------------------- */
/* Listing                                                                                  */

static int job_cmp_age(const void *a, const void *b)
{
    const struct job *x = *(struct job *const *)a, *y = *(struct job *const *)b;

    if (x->created != y->created)
        return x->created < y->created ? -1 : 1;
    return strcmp(x->id, y->id);
}

/*
 * A record that does not parse: move it to ID.json.corrupt (never deleted: the officer reads it)
 * so that it blocks neither the other jobs nor the daemon, and say so in aside. A file that
 * vanished in between (never happens to job records, which are not removed) is just skipped.
 */
static void job_set_aside(const char *state_dir, const char *id, const char *why, char *aside,
                          size_t asidelen)
{
    char name[JOB_ID_LEN + 16], *from = NULL, *to = NULL;
    size_t used = strlen(aside);

    (void)snprintf(name, sizeof(name), "%s.json", id);
    from = job_path(state_dir, name);
    (void)snprintf(name, sizeof(name), "%s.json.corrupt", id);
    to = job_path(state_dir, name);
    if (from && to && access(from, F_OK) == 0) {
        bool moved = rename(from, to) == 0;

        const char *sep = used ? "; " : "";

        if (moved)
            (void)snprintf(aside + used, asidelen - used,
                           _("%sjob record %s is corrupt (%.160s); set aside as %s"), sep, id, why,
                           to);
        else
            (void)snprintf(aside + used, asidelen - used,
                           _("%sjob record %s is corrupt (%.160s); NOT set aside"), sep, id, why);
    }
    free(from);
    free(to);
}

/* What job_list gathers: the jobs read so far, and the records set aside. */
struct job_listing {
    struct job **list;
    size_t n, cap;
    char aside[1024];
};

/* Load the job file jobs/NAME into the listing; a corrupt one is set aside (and named). */
static int job_list_one(struct job_listing *ls, const char *state_dir, const char *name,
                        char *errbuf, size_t errlen)
{
    char id[JOB_ID_LEN + 1], bad[512] = "";
    int r;

    if (ls->n == ls->cap) {
        size_t cap = ls->cap ? ls->cap * 2 : 16;
        struct job **nl = realloc(ls->list, cap * sizeof(*nl));

        if (!nl)
            return PA_E_NOMEM;
        ls->list = nl;
        ls->cap = cap;
    }
    memcpy(id, name, JOB_ID_LEN);
    id[JOB_ID_LEN] = '\0';
    r = job_load_file(state_dir, id, &ls->list[ls->n], bad, sizeof(bad));
    if (r == PA_E_JOB) {
        job_set_aside(state_dir, id, bad, ls->aside, sizeof(ls->aside));
        return 0;
    }
    if (r < 0)
        return pa_errf(errbuf, errlen, r, "%s", bad);
    ls->n++;
    return 0;
}

/* Every job file in the open directory d (the path jobs) into the listing. */
static int job_list_dir(struct job_listing *ls, const char *state_dir, const char *jobs, DIR *d,
                        char *errbuf, size_t errlen)
{
    for (;;) {
        struct dirent *e;
        int r;

        errno = 0;
        e = readdir(d);
        if (!e)
            break;
        if (!job_file_name(e->d_name)) {
            if (e->d_name[0] != '.')
                log_debug("job: skipping %s/%s", jobs, e->d_name);
            continue;
        }
        r = job_list_one(ls, state_dir, e->d_name, errbuf, errlen);
        if (r < 0)
            return r;
    }
    if (errno != 0)
        return pa_errf(errbuf, errlen, PA_E_IO, "%s: %s", jobs, strerror(errno));
    return 0;
}

/*
 * Every job in STATE_DIR/jobs, oldest (created) first, ties by id. Files other than ID.json
 * (locks, *.tmp.*, *.corrupt) are skipped. A corrupt job file is moved aside to ID.json.corrupt
 * and named in errbuf, and the listing goes on (returns 0): one bad file never blocks the other
 * jobs or the daemon, and nothing is deleted. A missing jobs directory means no jobs. *ret may be
 * NULL when *ret_n is 0; free with job_list_free.
 */
int job_list(const char *state_dir, struct job ***ret, size_t *ret_n, char *errbuf, size_t errlen)
{
    struct job_listing ls = {0};
    char *jobs = NULL;
    DIR *d = NULL;
    int r = PA_E_NOMEM;

    if (!state_dir || !ret || !ret_n)
        return PA_E_INTERNAL;
    jobs = job_dir_path(state_dir);
    if (!jobs)
        goto out;
    d = opendir(jobs);
    if (!d && errno != ENOENT) {
        r = pa_errf(errbuf, errlen, PA_E_IO, "%s: %s", jobs, strerror(errno));
        goto out;
    }
    if (d) { /* no jobs directory: no jobs */
        r = job_list_dir(&ls, state_dir, jobs, d, errbuf, errlen);
        if (r < 0)
            goto out;
        (void)pa_errf(errbuf, errlen, 0, "%s", ls.aside);
        if (ls.n > 1)
            qsort(ls.list, ls.n, sizeof(*ls.list), job_cmp_age);
    }
    *ret = ls.list;
    *ret_n = ls.n;
    ls.list = NULL;
    ls.n = 0;
    r = 0;
out:
    job_list_free(ls.list, ls.n);
    if (d)
        closedir(d);
    free(jobs);
    return r;
}

void job_list_free(struct job **list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        job_free(list[i]);
    free(list);
}

/*
 * Open STATE_DIR/jobs/NAME (created 0600, never removed: removing a lock file races with another
 * process locking it) and flock it exclusively, waiting up to wait_s seconds (0: not at all).
 * PA_E_BUSY when another open file keeps holding it.
 */
static int job_lock_file(const char *state_dir, const char *name, double wait_s, int *ret_fd)
{
    char *path = job_path(state_dir, name);
    double waited = 0;
    int fd = -1, r = PA_E_NOMEM;

    if (!path)
        goto out;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (fd < 0) {
        log_debug("job: cannot open %s: %s", path, strerror(errno));
        r = PA_E_IO;
        goto out;
    }
    while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        struct timespec ts = {0, 100 * 1000 * 1000};

        if (errno != EWOULDBLOCK && errno != EINTR) {
            log_debug("job: cannot lock %s: %s", path, strerror(errno));
            r = PA_E_IO;
            goto out;
        }
        if (errno == EWOULDBLOCK && waited >= wait_s) {
            log_debug("job: %s is locked by another process", path);
            r = PA_E_BUSY;
            goto out;
        }
        if (errno == EWOULDBLOCK) {
            (void)nanosleep(&ts, NULL);
            waited += 0.1;
        }
    }
    *ret_fd = fd;
    fd = -1;
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    free(path);
    return r;
}

/* Lock STATE_DIR/jobs/ID.lock without waiting. PA_E_BUSY when another open file holds it. */
int job_lock(const char *state_dir, const char *id, int *ret_fd)
{
    char name[JOB_ID_LEN + 8];

    if (!state_dir || !id || !ret_fd || !job_id_valid(id))
        return PA_E_INTERNAL;
    (void)snprintf(name, sizeof(name), "%s.lock", id);
    return job_lock_file(state_dir, name, 0, ret_fd);
}

static uint64_t job_fnv1a(const char *s, uint64_t h)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

int job_token_lock(const char *state_dir, const char *serial, const char *label, double wait_s,
                   int *ret_fd)
{
    char name[64];

    if (!state_dir || !serial || !label || !ret_fd)
        return PA_E_INTERNAL;
    /* The file name only spreads tokens over lock files: a collision makes two tokens share a
     * lock (one waits), never lets two processes share one token. */
    (void)snprintf(name, sizeof(name), "token-%016llx%016llx.lock",
                   (unsigned long long)job_fnv1a(serial, 0xcbf29ce484222325ULL),
                   (unsigned long long)job_fnv1a(label, 0x84222325cbf29ce4ULL));
    return job_lock_file(state_dir, name, wait_s, ret_fd);
}

void job_unlock(int fd)
{
    if (fd >= 0)
        (void)close(fd); /* closing the last descriptor releases the flock */
}
