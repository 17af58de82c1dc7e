/* SPDX-License-Identifier: Apache-2.0 */
/*
 * detect_internal.h - what detect.c (the sources, PC/SC and the rescan) shares with
 * detect_udev.c (the udev monitor). Not an API.
 */
#ifndef PKIO_DETECT_INTERNAL_H
#define PKIO_DETECT_INTERNAL_H

#include <stddef.h>

struct udev;
struct udev_monitor;

/* The udev monitor: both NULL when udevd does not run (or udev is not asked for). */
struct detect_udev {
    struct udev *udev;
    struct udev_monitor *mon;
};

/*
 * Start the udev monitor (its fd added to epfd), but only when udevd runs: a monitor without
 * udevd never fires and would wrongly switch the periodic rescan off. Returns 0 also when udev
 * is not usable (u->mon stays NULL); PA_E_INTERNAL when epoll refuses the fd.
 */
int detect_udev_start(struct detect_udev *u, int epfd);
void detect_udev_stop(struct detect_udev *u);
/* Drain the monitor; returns the number of relevant events, the last one described in msg. */
unsigned detect_udev_drain(struct detect_udev *u, char *msg, size_t msglen);

#endif
