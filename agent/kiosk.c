/* SPDX-License-Identifier: Apache-2.0 */
#include "kiosk.h"

#include "pa_err.h"
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* ---- text ----------------------------------------------------------------------------------- */

/* The length of the UTF-8 sequence a lead byte starts (0: not a lead byte) and its bits. */
static size_t utf8_lead(unsigned char b, unsigned long *ret_bits)
{
    if (b >= 0xc2 && b <= 0xdf) {
        *ret_bits = b & 0x1fu;
        return 2;
    }
    if (b >= 0xe0 && b <= 0xef) {
        *ret_bits = b & 0x0fu;
        return 3;
    }
    if (b >= 0xf0 && b <= 0xf4) {
        *ret_bits = b & 0x07u;
        return 4;
    }
    return 0; /* a continuation byte, 0xc0/0xc1 (overlong) or 0xf5.. */
}

/* The UTF-8 sequence at s (n bytes there): its length and code point; 0 when it is invalid. */
static size_t utf8_decode(const unsigned char *s, size_t n, unsigned long *ret_cp)
{
    unsigned long c = s[0];
    size_t len = s[0] < 0x80 ? 1 : utf8_lead(s[0], &c);

    if (len == 0 || n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3fu);
    }
    if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10ffff)) ||
        (c >= 0xd800 && c <= 0xdfff))
        return 0; /* overlong, beyond Unicode, or a surrogate */
    *ret_cp = c;
    return len;
}

/* Characters that do something on a terminal, or reorder what is shown around them. */
static bool cp_unsafe(unsigned long c)
{
    return c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x2028 || c == 0x2029 || c == 0x061c ||
           c == 0x200e || c == 0x200f || (c >= 0x202a && c <= 0x202e) ||
           (c >= 0x2066 && c <= 0x2069);
}

void kiosk_clean(const char *in, char *out, size_t outlen)
{
    size_t n = in ? strlen(in) : 0, o = 0;

    if (!outlen)
        return;
    for (size_t i = 0; i < n;) {
        unsigned long cp = 0;
        size_t k = utf8_decode((const unsigned char *)in + i, n - i, &cp), put = k;
        const char *src = in + i;

        if (k == 0 || cp_unsafe(cp)) {
            src = "?";
            put = 1;
            k = k ? k : 1;
        }
        if (o + put >= outlen)
            break;
        memcpy(out + o, src, put);
        o += put;
        i += k;
    }
    out[o] = '\0';
}

/* ---- the line editor ------------------------------------------------------------------------ */

#define KIOSK_LINE_MAX 512

int kiosk_line_init(struct kiosk_line *l, size_t max)
{
    static const char zeros[KIOSK_LINE_MAX];
    int r;

    memset(l, 0, sizeof(*l));
    if (max == 0 || max > KIOSK_LINE_MAX)
        return PA_E_INTERNAL;
    r = secret_from_mem(zeros, max, &l->buf); /* room for max bytes and a NUL, locked */
    if (r < 0)
        return r;
    l->buf->len = 0;
    l->max = max;
    return 0;
}

void kiosk_line_clear(struct kiosk_line *l)
{
    if (!l)
        return;
    secret_free(l->buf);
    memset(l, 0, sizeof(*l));
}

void kiosk_line_reset(struct kiosk_line *l)
{
    if (l->buf)
        secret_wipe(l->buf->buf, l->buf->cap);
    if (l->buf)
        l->buf->len = 0;
    l->overflow = false;
    l->esc = 0;
}

/* Backspace: the last character, continuation bytes and all. */
static void line_rubout(struct kiosk_line *l)
{
    struct secret *s = l->buf;

    while (s->len && ((unsigned char)s->buf[s->len - 1] & 0xc0) == 0x80)
        s->buf[--s->len] = '\0';
    if (s->len)
        s->buf[--s->len] = '\0';
}

enum kiosk_key_result kiosk_line_key(struct kiosk_line *l, unsigned char c)
{
    if (l->esc == 1) { /* ESC [ and ESC O start a sequence; anything else ends it */
        l->esc = (c == '[' || c == 'O') ? 2 : 0;
        return KIOSK_MORE;
    }
    if (l->esc == 2) { /* parameters until the final byte */
        if (c >= 0x40 && c <= 0x7e)
            l->esc = 0;
        return KIOSK_MORE;
    }
    if (c == '\r' || c == '\n')
        return KIOSK_ENTER;
    if (c == 0x1b)
        l->esc = 1;
    else if (c == 0x7f || c == 0x08)
        line_rubout(l);
    else if (c == 0x15)
        kiosk_line_reset(l);
    else if (c < 0x20)
        ; /* other control keys do nothing */
    else if (l->buf->len < l->max)
        l->buf->buf[l->buf->len++] = (char)c;
    else
        l->overflow = true;
    return KIOSK_MORE;
}

int kiosk_line_take(struct kiosk_line *l, struct secret **ret)
{
    int r = PA_E_PIN_UNAVAILABLE;

    if (l->buf->len && !l->overflow)
        r = secret_from_mem(l->buf->buf, l->buf->len, ret);
    kiosk_line_reset(l);
    return r;
}

/* ---- the terminal --------------------------------------------------------------------------- */

int kiosk_tty_open(struct kiosk_tty *t)
{
    struct termios raw;

    t->fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    t->changed = false;
    if (t->fd < 0)
        return 0; /* no terminal: nobody types here */
    if (!isatty(t->fd) || tcgetattr(t->fd, &t->saved) < 0) {
        close(t->fd);
        t->fd = -1;
        return 0;
    }
    raw = t->saved;
    raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ECHONL | ISIG | IEXTEN);
    raw.c_iflag &= ~(tcflag_t)(IXON | IXOFF);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    if (tcsetattr(t->fd, TCSAFLUSH, &raw) < 0) {
        close(t->fd);
        t->fd = -1;
        return PA_E_IO;
    }
    t->changed = true;
    return 0;
}

void kiosk_tty_close(struct kiosk_tty *t)
{
    if (t->fd < 0)
        return;
    if (t->changed)
        (void)tcsetattr(t->fd, TCSAFLUSH, &t->saved);
    close(t->fd);
    t->fd = -1;
    t->changed = false;
}

void kiosk_tty_discard(struct kiosk_tty *t)
{
    unsigned char junk[256];

    if (t->fd < 0)
        return;
    (void)tcflush(t->fd, TCIFLUSH);
    while (read(t->fd, junk, sizeof(junk)) > 0)
        ;
    secret_wipe(junk, sizeof(junk));
}

long kiosk_tty_read(struct kiosk_tty *t, unsigned char *buf, size_t len)
{
    ssize_t n;

    if (t->fd < 0)
        return -1;
    n = read(t->fd, buf, len);
    if (n > 0)
        return (long)n;
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    return -1; /* hang-up, or the terminal is gone */
}
