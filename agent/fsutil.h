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

/* Read a whole file of at most max bytes into a NUL-terminated malloc'd buffer. */
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
