/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fsutil.c - the file plumbing every module shares: atomic durable writes, the one bounded read
 * of a whole file (fs_read, and fs_read_owned for files only their owner could have made),
 * wiping a file before removing it, modes for shared directories.
 */
#include "fsutil.h"

#include "i18n.h"
#include "pa_err.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fsync_dir_of(const char *path)
{
    char *copy = strdup(path);
    int fd, r = 0;

    if (!copy)
        return PA_E_NOMEM;
    fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0)
        r = PA_E_IO;
    if (fd >= 0)
        close(fd);
    free(copy);
    return r;
}

int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    const char *p = data;
    int fd = -1, r = PA_E_IO;

    if (!tmp)
        return PA_E_NOMEM;
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        goto out;
    if (fchmod(fd, mode) < 0)
        goto out;
    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto out;
        p += n;
        len -= (size_t)n;
    }
    if (fsync(fd) < 0)
        goto out;
    if (close(fd) < 0) {
        fd = -1;
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) < 0)
        goto out;
    free(tmp);
    return fsync_dir_of(path);
out:
    if (fd >= 0)
        close(fd);
    (void)unlink(tmp);
    free(tmp);
    return r;
}

/* Read fd to its end into buf (room for cap bytes): 0 and *ret_len; 1 when it holds more than
 * cap bytes; PA_E_IO (errno). */
static int read_into(int fd, char *buf, size_t cap, size_t *ret_len)
{
    size_t len = 0;
    char extra;

    for (;;) {
        ssize_t n = len < cap ? read(fd, buf + len, cap - len) : read(fd, &extra, 1);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return PA_E_IO;
        if (n == 0)
            break;
        if (len >= cap)
            return 1;
        len += (size_t)n;
    }
    *ret_len = len;
    return 0;
}

/* Note the step of fs_read() that failed and its errno (0: leave errno alone); returns r. */
static int read_failed(struct fs_read *rd, enum fs_read_step step, int err, int r)
{
    rd->failed = step;
    rd->err = err;
    if (err)
        errno = err;
    return r;
}

/* fs_read() on an open descriptor, into buf (max + 1 bytes) or, when NULL, a malloc'd one. */
static int read_whole_fd(int fd, size_t max, char *buf, struct fs_read *rd)
{
    char *mem = NULL;
    struct stat st;
    int r;

    if (fstat(fd, &st) < 0)
        return read_failed(rd, FS_READ_STAT, errno, PA_E_IO);
    if (!S_ISREG(st.st_mode))
        return read_failed(rd, FS_READ_TYPE, 0, PA_E_IO);
    if (st.st_size < 0 || (uintmax_t)st.st_size > max)
        return read_failed(rd, FS_READ_SIZE, EFBIG, PA_E_IO);
    rd->mode = st.st_mode;
    if (!buf)
        buf = mem = malloc(max + 1);
    if (!buf)
        return read_failed(rd, FS_READ_NOMEM, 0, PA_E_NOMEM);
    r = read_into(fd, buf, max, &rd->len);
    if (r != 0) {
        int saved = errno;

        free(mem);
        rd->len = 0;
        return r == 1 ? read_failed(rd, FS_READ_SIZE, EFBIG, PA_E_IO)
                      : read_failed(rd, FS_READ_READ, saved, PA_E_IO);
    }
    buf[rd->len] = '\0';
    rd->buf = buf;
    return 0;
}

/* fs_read() and fs_read_into(): open path with oflags added, read it into buf or a new one. */
static int read_path(const char *path, int oflags, size_t max, char *buf, struct fs_read *ret)
{
    int fd, r, saved;

    memset(ret, 0, sizeof(*ret));
    /* a FIFO must not block */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | oflags);
    if (fd < 0)
        return read_failed(ret, FS_READ_OPEN, errno, PA_E_IO);
    r = read_whole_fd(fd, max, buf, ret);
    saved = errno;
    close(fd);
    errno = saved;
    return r;
}

int fs_read(const char *path, size_t max, struct fs_read *ret)
{
    return read_path(path, 0, max, NULL, ret);
}

int fs_read_into(const char *path, int oflags, char *buf, size_t max, struct fs_read *ret)
{
    return read_path(path, oflags, max, buf, ret);
}

void fs_read_explain(const struct fs_read *rd, const char *path, size_t max, char *errbuf,
                     size_t errlen)
{
    if (!errbuf || !errlen)
        return;
    switch (rd->failed) {
    case FS_READ_OPEN:
        (void)snprintf(errbuf, errlen, _("%s: cannot open: %s"), path, strerror(rd->err));
        break;
    case FS_READ_STAT:
        (void)snprintf(errbuf, errlen, _("%s: cannot stat: %s"), path, strerror(rd->err));
        break;
    case FS_READ_TYPE:
        (void)snprintf(errbuf, errlen, _("%s: not a regular file"), path);
        break;
    case FS_READ_SIZE:
        (void)snprintf(errbuf, errlen, _("%s: larger than %d bytes"), path, (int)max);
        break;
    case FS_READ_READ:
        (void)snprintf(errbuf, errlen, _("%s: cannot read: %s"), path, strerror(rd->err));
        break;
    default: /* FS_READ_OK, FS_READ_NOMEM: nothing to say about the file */
        break;
    }
}

int fs_read_file(const char *path, size_t max, char **ret, size_t *ret_len)
{
    struct fs_read rd;
    int r = fs_read(path, max, &rd);

    if (r < 0)
        return r;
    *ret = rd.buf;
    *ret_len = rd.len;
    return 0;
}

/*
 * Why st is not a file that only its owner could have made (NULL: it is one). The reasons stay
 * English (a rejected queue entry's reason is written to a file) and are marked N_() so that
 * where one is shown it can be translated with _().
 */
static const char *owned_problem(const struct stat *st, uid_t owner)
{
    if (!S_ISREG(st->st_mode))
        return N_("not a regular file");
    if (st->st_nlink != 1)
        return N_("a file with several names (hard links)");
    if (st->st_uid != owner)
        return N_("owned by another user");
    if (st->st_mode & S_IRWXO)
        return N_("accessible by every user");
    return NULL;
}

int fs_read_owned(int dirfd, const char *name, size_t max, uid_t owner, char **ret, size_t *ret_len,
                  char *why, size_t whylen)
{
    struct fs_read rd = {0};
    const char *problem;
    struct stat st;
    int fd, r = PA_E_IO;

    fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
    if (fd < 0) {
        if (errno != ELOOP)
            return PA_E_IO;
        snprintf(why, whylen, "%s", N_("a symbolic link"));
        return PA_E_REFUSED;
    }
    if (fstat(fd, &st) < 0)
        goto out;
    problem = owned_problem(&st, owner);
    if (problem || st.st_size < 0 || (size_t)st.st_size > max) {
        snprintf(why, whylen, "%s", problem ? problem : N_("too large"));
        r = PA_E_REFUSED;
        goto out;
    }
    r = read_whole_fd(fd, max, NULL, &rd);
    if (r == 0) {
        *ret = rd.buf;
        *ret_len = rd.len;
    } else if (rd.failed == FS_READ_SIZE) {
        snprintf(why, whylen, "%s", N_("too large"));
        r = PA_E_REFUSED;
    }
out:
    close(fd);
    return r;
}

/* Write len zeros over fd from the start, then fsync. */
static int zero_fill(int fd, off_t len)
{
    static const char zeros[4096];

    if (lseek(fd, 0, SEEK_SET) < 0)
        return PA_E_IO;
    while (len > 0) {
        size_t chunk = len > (off_t)sizeof(zeros) ? sizeof(zeros) : (size_t)len;
        ssize_t n = write(fd, zeros, chunk);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return PA_E_IO;
        len -= n;
    }
    return fsync(fd) < 0 ? PA_E_IO : 0;
}

int fs_wipe_unlink(int dirfd, const char *name)
{
    struct stat st;
    int fd, r;

    fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? 0 : errno == ELOOP ? PA_E_REFUSED : PA_E_IO;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return PA_E_IO;
    }
    r = S_ISREG(st.st_mode) && st.st_uid == geteuid() ? zero_fill(fd, st.st_size) : PA_E_REFUSED;
    close(fd);
    if (r < 0)
        return r;
    if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
        return PA_E_IO;
    if (dirfd != AT_FDCWD)
        return fsync(dirfd) < 0 ? PA_E_IO : 0;
    return fsync_dir_of(name);
}

int fs_share_fd(int fd, gid_t gid, mode_t mode)
{
    if (gid != (gid_t)-1 && fchown(fd, (uid_t)-1, gid) < 0)
        return PA_E_IO;
    return fchmod(fd, mode) < 0 ? PA_E_IO : 0;
}

mode_t fs_mode_in_dir(const char *path, mode_t private_mode, mode_t shared_mode)
{
    char *copy = strdup(path);
    struct stat st;
    bool shared;

    if (!copy)
        return private_mode;
    shared = stat(dirname(copy), &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & S_ISGID);
    free(copy);
    return shared ? shared_mode : private_mode;
}
