/* SPDX-License-Identifier: Apache-2.0 */
#include "secret.h"

#include "fsutil.h"
#include "pa_err.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

void secret_wipe(void *p, size_t len)
{
    if (p && len)
        explicit_bzero(p, len);
}

void secret_harden_process(void)
{
    struct rlimit no_core = {0, 0};

    /* No core file may carry a PIN or the API key. */
    (void)setrlimit(RLIMIT_CORE, &no_core);
#ifndef __SANITIZE_ADDRESS__ /* LeakSanitizer needs to ptrace the process */
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
}

static int secret_alloc(size_t cap, struct secret **ret)
{
    struct secret *s = calloc(1, sizeof(*s));

    if (!s)
        return PA_E_NOMEM;
    s->buf = calloc(1, cap);
    if (!s->buf) {
        free(s);
        return PA_E_NOMEM;
    }
    s->cap = cap;
    (void)mlock(s->buf, cap); /* best effort: keep it out of swap */
    *ret = s;
    return 0;
}

void secret_free(struct secret *s)
{
    if (!s)
        return;
    if (s->buf) {
        secret_wipe(s->buf, s->cap);
        (void)munlock(s->buf, s->cap);
        free(s->buf);
    }
    free(s);
}

int secret_from_mem(const char *src, size_t len, struct secret **ret)
{
    struct secret *s = NULL;
    int r = secret_alloc(len + 1, &s);

    if (r < 0)
        return r;
    memcpy(s->buf, src, len);
    s->buf[len] = '\0';
    s->len = len;
    *ret = s;
    return 0;
}

/* Strip one trailing "\n" or "\r\n"; reject NUL bytes and further line breaks. */
static int secret_trim_line(struct secret *s)
{
    if (s->len && s->buf[s->len - 1] == '\n')
        s->buf[--s->len] = '\0';
    if (s->len && s->buf[s->len - 1] == '\r')
        s->buf[--s->len] = '\0';
    if (strlen(s->buf) != s->len || memchr(s->buf, '\n', s->len))
        return PA_E_CONFIG;
    return 0;
}

/* What a failed fs_read_into of a secret file means: no such file, or not a plain small file,
 * is the configuration's fault; anything else the file system's. */
static int secret_read_error(const struct fs_read *rd, int r)
{
    if (rd->failed == FS_READ_OPEN && rd->err == ENOENT)
        return PA_E_CONFIG;
    if (rd->failed == FS_READ_TYPE || rd->failed == FS_READ_SIZE)
        return PA_E_CONFIG;
    return r;
}

int secret_from_file(const char *path, size_t max_len, struct secret **ret)
{
    struct secret *s = NULL;
    struct fs_read rd;
    int r;

    /* Room for max_len, "\r\n" and the NUL: anything beyond the limit is refused. */
    r = secret_alloc(max_len + 3, &s);
    if (r < 0)
        return r;
    r = fs_read_into(path, O_NOFOLLOW, s->buf, max_len + 2, &rd);
    if (r < 0)
        r = secret_read_error(&rd, r);
    else if (rd.mode & (S_IRWXG | S_IRWXO))
        r = PA_E_CONFIG; /* group/world accessible secrets are refused */
    if (r == 0) {
        s->len = rd.len;
        r = secret_trim_line(s);
    }
    if (r == 0 && (s->len == 0 || s->len > max_len))
        r = PA_E_CONFIG;
    if (r == 0) {
        *ret = s;
        s = NULL;
    }
    secret_free(s);
    return r;
}

/* Read one line from the terminal: up to room bytes kept in buf, the rest read and dropped, the
 * line end not kept. The number of bytes kept. */
static size_t tty_read_line(int fd, char *buf, size_t room)
{
    size_t len = 0;

    for (;;) {
        char c;
        ssize_t n = read(fd, &c, 1);

        if (n <= 0 || c == '\n' || c == '\r')
            break;
        if (len < room)
            buf[len++] = c;
        c = 0;
    }
    return len;
}

int secret_prompt(const char *prompt, size_t max_len, struct secret **ret)
{
    struct secret *s = NULL;
    struct termios old, noecho;
    int fd = -1, r;
    size_t len = 0;

    fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 || !isatty(fd)) {
        r = PA_E_PIN_UNAVAILABLE;
        goto out;
    }
    if (tcgetattr(fd, &old) < 0) {
        r = PA_E_PIN_UNAVAILABLE;
        goto out;
    }
    r = secret_alloc(max_len + 2, &s);
    if (r < 0)
        goto out;
    noecho = old;
    noecho.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    noecho.c_lflag |= ICANON;
    if (write(fd, prompt, strlen(prompt)) < 0 || tcsetattr(fd, TCSAFLUSH, &noecho) < 0) {
        r = PA_E_PIN_UNAVAILABLE;
        goto out;
    }
    /* nothing leaves between these two: echo is back on before any exit */
    len = tty_read_line(fd, s->buf, max_len + 1);
    (void)tcsetattr(fd, TCSAFLUSH, &old);
    (void)!write(fd, "\n", 1);
    s->len = len;
    s->buf[len] = '\0';
    if (len == 0 || len > max_len) {
        r = PA_E_PIN_UNAVAILABLE;
        goto out;
    }
    *ret = s;
    s = NULL;
    r = 0;
out:
    secret_free(s);
    if (fd >= 0)
        close(fd);
    return r;
}

int secret_from_fd(int fd, size_t max_len, struct secret **ret)
{
    struct secret *s = NULL;
    size_t len = 0;
    int r;

    r = secret_alloc(max_len + 2, &s);
    if (r < 0) {
        close(fd);
        return r;
    }
    while (len < max_len + 1) {
        ssize_t n = read(fd, s->buf + len, 1);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || s->buf[len] == '\n')
            break;
        len++;
    }
    close(fd);
    s->buf[len] = '\0';
    s->len = len;
    if (len && s->buf[len - 1] == '\r')
        s->buf[--s->len] = '\0';
    if (s->len == 0 || s->len > max_len) {
        secret_free(s);
        return PA_E_PIN_UNAVAILABLE;
    }
    *ret = s;
    return 0;
}

/* One line of the --pin-fd protocol: buf[0..len) without its "\n", an optional "\r" dropped. */
static int line_secret(const char *buf, size_t len, size_t max_len, struct secret **ret)
{
    if (len && buf[len - 1] == '\r')
        len--;
    if (len == 0 || len > max_len || memchr(buf, '\0', len))
        return PA_E_PIN_UNAVAILABLE;
    return secret_from_mem(buf, len, ret);
}

int secret_parse_lines(const char *buf, size_t len, size_t max_len, struct secret **ret_first,
                       struct secret **ret_second)
{
    struct secret *first = NULL, *second = NULL;
    const char *nl = memchr(buf, '\n', len);
    size_t n1 = nl ? (size_t)(nl - buf) : len, rest = nl ? len - n1 - 1 : 0;
    const char *nl2 = rest ? memchr(nl + 1, '\n', rest) : NULL;
    size_t n2 = nl2 ? (size_t)(nl2 - (nl + 1)) : rest;
    int r;

    /* Nothing may follow the second line's "\n". */
    if (nl2 && (size_t)(nl2 - buf) + 1 != len)
        return PA_E_PIN_UNAVAILABLE;
    r = line_secret(buf, n1, max_len, &first);
    if (r == 0 && rest)
        r = line_secret(nl + 1, n2, max_len, &second);
    if (r < 0) {
        secret_free(first);
        return r;
    }
    *ret_first = first;
    *ret_second = second;
    return 0;
}

int secret_lines_from_fd(int fd, size_t max_len, struct secret **ret_first,
                         struct secret **ret_second)
{
    struct secret *s = NULL;
    size_t cap = 2 * (max_len + 2) + 1, len = 0; /* two lines with "\r\n", and one byte more */
    int r = secret_alloc(cap + 1, &s);

    while (r == 0 && len < cap) {
        ssize_t n = read(fd, s->buf + len, cap - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            r = PA_E_PIN_UNAVAILABLE;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (r == 0 && len >= cap)
        r = PA_E_PIN_UNAVAILABLE; /* longer than two lines can be */
    if (r == 0)
        r = secret_parse_lines(s->buf, len, max_len, ret_first, ret_second);
    secret_free(s);
    return r;
}

bool secret_can_prompt(void)
{
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    bool ok = fd >= 0 && isatty(fd);

    if (fd >= 0)
        close(fd);
    return ok;
}

bool secret_equal(const struct secret *a, const struct secret *b)
{
    unsigned char diff = 0;

    if (!a || !b || a->len != b->len)
        return false;
    for (size_t i = 0; i < a->len; i++)
        diff |= (unsigned char)(a->buf[i] ^ b->buf[i]);
    return diff == 0;
}
