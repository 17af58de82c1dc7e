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

#endif
