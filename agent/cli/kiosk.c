/* SPDX-License-Identifier: Apache-2.0 */
#include "kiosk.h"

#include "pa_err.h"
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

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
