/* SPDX-License-Identifier: Apache-2.0 */
/*
 * detect.h - token arrival and removal, behind one interface.
 *
 * Sources, in order of preference: PC/SC card and reader events (pcsc-lite
 * SCardGetStatusChange on every reader plus "\\?PnP?\Notification"), udev (libudev monitor of
 * smart-card readers: USB interface class 0x0b and known token ids) as a hint for reader
 * hotplug, and, only when no event source is available (or when asked), a periodic rescan.
 * An event means "something may have changed": the caller re-enumerates through PKCS#11
 * (tok_rescan + tok_list), which is the truth. Waiting uses no CPU: the caller polls detect_fd().
 */
#ifndef PKIO_DETECT_H
#define PKIO_DETECT_H

#include <stdbool.h>
#include <stddef.h>

struct detect_opts {
    bool use_pcsc;     /* watch PC/SC (if pcscd is reachable) */
    bool use_udev;     /* watch udev for smart-card readers */
    double rescan_s;   /* periodic rescan interval when no event source works (> 0), or
                          when force_rescan is set; 0 = never */
    bool force_rescan; /* also rescan periodically even with event sources */
};

struct detect;

/*
 * Start the event sources that are available. Never fails just because pcscd or udev is
 * missing: detect_sources() says what runs. PA_E_INTERNAL only on real errors (threads, pipes).
 */
int detect_open(const struct detect_opts *o, struct detect **ret);
void detect_close(struct detect *d); /* stops threads cleanly (never pthread_cancel) */

/* A file descriptor that becomes readable when an event is pending (for poll()). */
int detect_fd(const struct detect *d);

/*
 * Milliseconds until the next periodic rescan is due (for poll()'s timeout), or -1 when there
 * is no periodic rescan.
 */
int detect_timeout_ms(const struct detect *d);

/*
 * Consume pending events (non-blocking). Returns 1 when the caller should re-enumerate tokens
 * (an event arrived or a periodic rescan is due), 0 when nothing happened. what (optional)
 * receives a short description of the last event, e.g. "pcsc: card inserted in 'Reader 0'".
 */
int detect_poll(struct detect *d, char *what, size_t whatlen);

/* Which sources are running, e.g. "pcsc,udev" or "rescan(1.0s)". Static storage in d. */
const char *detect_sources(const struct detect *d);

#endif
