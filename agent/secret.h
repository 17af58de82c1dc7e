/* SPDX-License-Identifier: Apache-2.0 */
/*
 * secret.h - the one place that holds secrets (PINs, the API key) in memory.
 *
 * A secret lives in a locked (mlock), non-dumpable buffer and is wiped before it is freed, on
 * every path. Secret files are refused when group- or world-accessible.
 */
#ifndef PKIO_SECRET_H
#define PKIO_SECRET_H

#include <stddef.h>

struct secret {
    char *buf;  /* NUL-terminated; never logged */
    size_t len; /* strlen(buf) */
    size_t cap; /* allocated size */
};

/* Make the process non-dumpable and core files empty; call once at start-up. */
void secret_harden_process(void);

/* Copy len bytes of s into a new secret. */
int secret_from_mem(const char *s, size_t len, struct secret **ret);

/*
 * Read a secret from a file: the first line, without its line ending. Refuses files that are
 * group/world accessible (PA_E_CONFIG), empty, or longer than max_len.
 */
int secret_from_file(const char *path, size_t max_len, struct secret **ret);

/*
 * Read a secret from an open file descriptor (a pipe from a supervising process): the first
 * line, at most max_len bytes. The descriptor is closed. PA_E_PIN_UNAVAILABLE when empty.
 */
int secret_from_fd(int fd, size_t max_len, struct secret **ret);

/* Prompt on the controlling terminal without echo. PA_E_PIN_UNAVAILABLE without a terminal. */
int secret_prompt(const char *prompt, size_t max_len, struct secret **ret);

/* Wipe and free; accepts NULL. */
void secret_free(struct secret *s);

/* Wipe len bytes of memory in a way the compiler cannot drop. */
void secret_wipe(void *p, size_t len);

#endif
