/* SPDX-License-Identifier: Apache-2.0 */
/*
 * secret.h - the one place that holds secrets (PINs, the API key) in memory.
 *
 * A secret lives in a locked (mlock), non-dumpable buffer and is wiped before it is freed, on
 * every path. Secret files are refused when group- or world-accessible.
 */
#ifndef PKIO_SECRET_H
#define PKIO_SECRET_H

#include <stdbool.h>
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

/*
 * The --pin-fd protocol: one line, the PIN; or two lines, the current PIN (for a token whose PIN
 * must be changed: its transport PIN) and then the new PIN. Each line ends with "\n" (a "\r"
 * before it is dropped; the last line may lack it) and holds 1 to max_len bytes, no NUL. Anything
 * else (no line, an empty line, a third line) is PA_E_PIN_UNAVAILABLE. *ret_second is NULL when
 * there is one line. Pure: parses buf[0..len).
 */
int secret_parse_lines(const char *buf, size_t len, size_t max_len, struct secret **ret_first,
                       struct secret **ret_second);

/*
 * Read the --pin-fd protocol (secret_parse_lines) from a descriptor, up to end of file: the
 * writer closes its end after the last line. The descriptor is closed.
 */
int secret_lines_from_fd(int fd, size_t max_len, struct secret **ret_first,
                         struct secret **ret_second);

/* Prompt on the controlling terminal without echo. PA_E_PIN_UNAVAILABLE without a terminal. */
int secret_prompt(const char *prompt, size_t max_len, struct secret **ret);

/* Is there a controlling terminal that secret_prompt could ask on? */
bool secret_can_prompt(void);

/* Do two secrets hold the same bytes? (Time independent of where they differ.) NULL is unequal. */
bool secret_equal(const struct secret *a, const struct secret *b);

/* Wipe and free; accepts NULL. */
void secret_free(struct secret *s);

/* Wipe len bytes of memory in a way the compiler cannot drop. */
void secret_wipe(void *p, size_t len);

#endif
