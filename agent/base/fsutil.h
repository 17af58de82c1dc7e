/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fsutil.h - durable file writes and bounded reads.
 */
#ifndef PKIO_FSUTIL_H
#define PKIO_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Write data to path atomically and durably: a temporary file in the same directory (mode),
 * write, fsync, rename over path, fsync the directory. The temporary file is removed on error.
 */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* The step at which fs_read() failed (struct fs_read.failed). */
enum fs_read_step {
    FS_READ_OK,    /* nothing failed */
    FS_READ_OPEN,  /* open(2): err says why (ENOENT: there is no such file) */
    FS_READ_STAT,  /* fstat(2): err */
    FS_READ_TYPE,  /* not a regular file (err 0) */
    FS_READ_SIZE,  /* larger than max (err EFBIG) */
    FS_READ_READ,  /* read(2): err */
    FS_READ_NOMEM, /* out of memory */
};

/* A file read whole by fs_read(). */
struct fs_read {
    char *buf;                /* its bytes and a NUL; malloc'd, the caller frees (and wipes) */
    size_t len;               /* bytes read, without the NUL */
    mode_t mode;              /* its st_mode */
    enum fs_read_step failed; /* on failure: the step that failed */
    int err;                  /* on failure: that step's errno (see enum fs_read_step) */
};

/*
 * The one bounded read of a whole file: a regular file (opened without blocking, so a FIFO is
 * refused rather than waited on) of at most max bytes, read to its end into ret->buf.
 * 0 with *ret filled; PA_E_IO (ret->failed and ret->err say why, errno is ret->err unless that is
 * 0) or PA_E_NOMEM. ret->buf is NULL after a failure.
 */
int fs_read(const char *path, size_t max, struct fs_read *ret);

/*
 * fs_read() into memory the caller holds (a secret's locked buffer): buf has room for max + 1
 * bytes (the file and a NUL), and oflags are added to open(2)'s flags (e.g. O_NOFOLLOW). On
 * success ret->buf is buf; the caller wipes buf also after a failure (a part may have been read).
 */
int fs_read_into(const char *path, int oflags, char *buf, size_t max, struct fs_read *ret);

/*
 * The one-line message for a failed fs_read() of path, in the user's language: "PATH: cannot
 * open: REASON", "PATH: cannot stat: REASON", "PATH: not a regular file", "PATH: larger than MAX
 * bytes" or "PATH: cannot read: REASON". errbuf may be NULL.
 */
void fs_read_explain(const struct fs_read *rd, const char *path, size_t max, char *errbuf,
                     size_t errlen);

/*
 * fs_read() for callers that need only the text: a NUL-terminated malloc'd buffer. PA_E_IO with
 * errno EFBIG when larger than max, errno untouched when not a regular file, else errno from the
 * call that failed; PA_E_NOMEM.
 */
int fs_read_file(const char *path, size_t max, char **ret, size_t *ret_len);

/*
 * Read file name in directory dirfd (AT_FDCWD: name is a path) like fs_read_file, but only if it
 * is what its owner alone could have put there: a regular file (never through a symbolic link),
 * one link, owned by owner, nothing for others (no world bits). PA_E_REFUSED when it is not (why
 * says which, e.g. "a symbolic link"); PA_E_IO (errno set, ENOENT when it vanished) when it
 * cannot be read; PA_E_NOMEM.
 */
int fs_read_owned(int dirfd, const char *name, size_t max, uid_t owner, char **ret, size_t *ret_len,
                  char *why, size_t whylen);

/*
 * Overwrite the regular file name in directory dirfd with zeros, fsync it, remove it and fsync
 * the directory: what a file held is not left in it (a copy-on-write or journalling file system
 * may still keep old blocks; the file's name and data are gone from the tree). 0, also when it
 * was already gone; PA_E_REFUSED when it is a symbolic link, not a regular file or not owned by
 * the effective user; PA_E_IO.
 */
int fs_wipe_unlink(int dirfd, const char *name);

/*
 * The mode for a new file at path: shared_mode when its directory is setgid (handed to a group on
 * purpose, see docs/ARCHITECTURE.md "Officers and the daemon"), else private_mode.
 */
mode_t fs_mode_in_dir(const char *path, mode_t private_mode, mode_t shared_mode);

/* Set group (unless (gid_t)-1) and mode of an open file or directory. 0 or PA_E_IO. */
int fs_share_fd(int fd, gid_t gid, mode_t mode);

#endif
