/* SPDX-License-Identifier: Apache-2.0 */
#include "fsutil.h"

#include "pa_err.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
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

int fs_read_file(const char *path, size_t max, char **ret, size_t *ret_len)
{
    char *buf = NULL;
    size_t len = 0;
    struct stat st;
    int fd, r = PA_E_IO;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK); /* a FIFO must not block */
    if (fd < 0)
        return PA_E_IO;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        goto out;
    buf = malloc(max + 1);
    if (!buf) {
        r = PA_E_NOMEM;
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, max + 1 - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto out;
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max) {
            r = PA_E_IO;
            errno = EFBIG;
            goto out;
        }
    }
    buf[len] = '\0';
    *ret = buf;
    *ret_len = len;
    buf = NULL;
    r = 0;
out:
    free(buf);
    close(fd);
    return r;
}
