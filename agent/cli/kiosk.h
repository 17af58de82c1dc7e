/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kiosk.h - the kiosk's terminal, for `pkio-agent watch --kiosk`: text made safe to print, a
 * line editor fed one keystroke at a time (the daemon reads the terminal in non-canonical,
 * no-echo mode from its poll loop, so a prompt never blocks it), and the terminal itself.
 */
#ifndef PKIO_KIOSK_H
#define PKIO_KIOSK_H

#include <stdbool.h>
#include <stddef.h>
#include <termios.h>

struct secret;

/* One line typed at a prompt, without echo: the bytes live in a locked secret. */
struct kiosk_line {
    struct secret *buf; /* room for max bytes */
    size_t max;
    bool overflow; /* more than max bytes were typed: refused on Enter */
    int esc;       /* inside an escape sequence: 0 no, 1 after ESC, 2 in a CSI/SS3 sequence */
};

enum kiosk_key_result {
    KIOSK_MORE,  /* keep reading */
    KIOSK_ENTER, /* Enter: the line is complete */
};

/* Start a line of at most max bytes. 0 or PA_E_NOMEM. */
int kiosk_line_init(struct kiosk_line *l, size_t max);
/* Wipe and free. */
void kiosk_line_clear(struct kiosk_line *l);
/* Forget what was typed (wiped). */
void kiosk_line_reset(struct kiosk_line *l);
/*
 * One byte from the terminal: printable bytes (and UTF-8) are added; Backspace/DEL removes the
 * last character, Ctrl-U the whole line; other control bytes and escape sequences (arrow keys,
 * function keys) are ignored. CR or LF completes the line. Pure.
 */
enum kiosk_key_result kiosk_line_key(struct kiosk_line *l, unsigned char c);
/* The typed line as a new secret (wiped from l). 0, PA_E_PIN_UNAVAILABLE (empty or too long). */
int kiosk_line_take(struct kiosk_line *l, struct secret **ret);

/* The kiosk's terminal, in non-canonical mode without echo, signals or flow control. */
struct kiosk_tty {
    int fd; /* -1: no terminal */
    struct termios saved;
    bool changed;
};

/*
 * Open /dev/tty (non-blocking) and set it up: no canonical mode, no echo, no signals from the
 * keyboard (Ctrl-C, Ctrl-Z, Ctrl-\ are plain bytes), no XON/XOFF (Ctrl-S cannot freeze the
 * screen). t->fd is -1 when there is no terminal (then nobody can type a PIN). 0 or PA_E_IO.
 */
int kiosk_tty_open(struct kiosk_tty *t);
/* Restore the terminal as it was and close it; safe to call twice. */
void kiosk_tty_close(struct kiosk_tty *t);
/* Discard what was typed and not read yet (keys pressed before a question do not count). */
void kiosk_tty_discard(struct kiosk_tty *t);
/* Read what is there (non-blocking) into buf; the number of bytes, 0 when none, -1 on hang-up. */
long kiosk_tty_read(struct kiosk_tty *t, unsigned char *buf, size_t len);

#endif
