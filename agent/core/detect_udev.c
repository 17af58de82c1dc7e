/* SPDX-License-Identifier: Apache-2.0 */
/*
 * detect_udev.c - the udev hint for token detection: a libudev netlink monitor of USB devices,
 * and which of its events concern a smart-card reader (an interface of class 0x0b) or a known
 * token. Main thread only; detect.c polls the monitor's fd through its epoll fd.
 */
#include "detect_internal.h"

#include "log.h"
#include "pa_err.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>

#include <libudev.h>

/* A USB id that is a token or reader even when its interface class says otherwise. */
struct known_id {
    uint16_t vid, pid;
    const char *name;
};

static const struct known_id known_ids[] = {
    {0x0529, 0x0620, "SafeNet eToken 5110"},
    {0x08e6, 0x3437, "Gemalto IDPrime reader"},
    {0x08e6, 0x3438, "Gemalto IDPrime reader"},
    {0x1050, 0x0407, "YubiKey"},
};

#define USB_CLASS_CCID 0x0b

static const struct known_id *known_lookup(unsigned vid, unsigned pid)
{
    size_t i;

    for (i = 0; i < sizeof(known_ids) / sizeof(known_ids[0]); i++)
        if (known_ids[i].vid == vid && known_ids[i].pid == pid)
            return &known_ids[i];
    return NULL;
}

/* Parse "vid/pid/bcd" (hex, from the PRODUCT property). */
static bool parse_product(const char *s, unsigned *vid, unsigned *pid)
{
    char *end;
    unsigned long v, p;

    if (!s)
        return false;
    errno = 0;
    v = strtoul(s, &end, 16);
    if (errno || end == s || *end != '/' || v > 0xffff)
        return false;
    s = end + 1;
    p = strtoul(s, &end, 16);
    if (errno || end == s || (*end != '/' && *end != '\0') || p > 0xffff)
        return false;
    *vid = (unsigned)v;
    *pid = (unsigned)p;
    return true;
}

/*
 * A USB class, or -1: the leading decimal class of "class/subclass/protocol" (INTERFACE, TYPE;
 * sysfs false), or a sysfs class attribute ("0b", hex, perhaps with a newline; sysfs true).
 */
static int parse_class(const char *s, bool sysfs)
{
    char *end;
    unsigned long c;

    if (!s)
        return -1;
    errno = 0;
    c = strtoul(s, &end, sysfs ? 16 : 10);
    if (errno || end == s || c > 255)
        return -1;
    if (sysfs ? *end != '\0' && *end != '\n' : *end != '/')
        return -1;
    return (int)c;
}

/* ID_USB_INTERFACES is ":ccsspp:ccsspp:" (hex); true when one interface has class cls. */
static bool interfaces_have_class(const char *s, int cls)
{
    char want[3];
    const char *p;

    if (!s)
        return false;
    (void)snprintf(want, sizeof(want), "%02x", (unsigned)cls);
    for (p = strchr(s, ':'); p; p = strchr(p + 1, ':'))
        if (strlen(p) >= 7 && strncasecmp(p + 1, want, 2) == 0)
            return true;
    return false;
}

static bool streq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* The event's USB vendor and product ids: the PRODUCT property, else (add) sysfs. */
static bool udev_ids(struct udev_device *dev, bool add, unsigned *vid, unsigned *pid)
{
    const char *v, *p;
    char both[32];

    if (parse_product(udev_device_get_property_value(dev, "PRODUCT"), vid, pid))
        return true;
    if (!add || !streq(udev_device_get_devtype(dev), "usb_device"))
        return false;
    v = udev_device_get_sysattr_value(dev, "idVendor");
    p = udev_device_get_sysattr_value(dev, "idProduct");
    return v && p && snprintf(both, sizeof(both), "%s/%s", v, p) < (int)sizeof(both) &&
           parse_product(both, vid, pid);
}

/* Is it a smart-card reader: an interface of class 0x0b, or a device that has one? */
static bool udev_is_ccid(struct udev_device *dev, bool add)
{
    const char *devtype = udev_device_get_devtype(dev);

    if (streq(devtype, "usb_interface")) {
        if (parse_class(udev_device_get_property_value(dev, "INTERFACE"), false) == USB_CLASS_CCID)
            return true;
        return add && parse_class(udev_device_get_sysattr_value(dev, "bInterfaceClass"), true) ==
                          USB_CLASS_CCID;
    }
    if (streq(devtype, "usb_device"))
        return interfaces_have_class(udev_device_get_property_value(dev, "ID_USB_INTERFACES"),
                                     USB_CLASS_CCID) ||
               parse_class(udev_device_get_property_value(dev, "TYPE"), false) == USB_CLASS_CCID;
    return false;
}

/*
 * Decide whether a usb add/remove event concerns a smart-card reader (an interface of class
 * 0x0b) or a known token, from the event's properties first (they are all a remove event
 * carries), then from sysfs attributes (add only). On a match, describes it in msg.
 */
static bool udev_classify(struct udev_device *dev, const char *action, char *msg, size_t msglen)
{
    const char *sysname = udev_device_get_sysname(dev);
    bool add = streq(action, "add");
    const struct known_id *k = NULL;
    unsigned vid = 0, pid = 0;

    if (udev_ids(dev, add, &vid, &pid))
        k = known_lookup(vid, pid);
    if (!k && !udev_is_ccid(dev, add))
        return false;
    (void)snprintf(msg, msglen, "udev: %s %s: %04x:%04x%s%s%s at %s", k ? "token" : "reader",
                   add ? "added" : "removed", vid, pid, k ? " (" : "", k ? k->name : "",
                   k ? ")" : "", sysname ? sysname : "?");
    return true;
}

/* Drain the monitor; returns the number of relevant events, the last one described in msg. */
unsigned detect_udev_drain(struct detect_udev *u, char *msg, size_t msglen)
{
    unsigned n = 0;

    for (;;) {
        struct udev_device *dev;
        const char *action;

        errno = 0;
        dev = udev_monitor_receive_device(u->mon);
        if (!dev && errno == ENOBUFS) {
            /* The socket overflowed: events were lost, so enumerate anyway. */
            (void)snprintf(msg, msglen, "%s", "udev: events lost, rescanning");
            n++;
            continue;
        }
        if (!dev)
            break;
        action = udev_device_get_action(dev);
        if ((streq(action, "add") || streq(action, "remove")) &&
            udev_classify(dev, action, msg, msglen))
            n++;
        udev_device_unref(dev);
    }
    return n;
}

void detect_udev_stop(struct detect_udev *u)
{
    if (u->mon)
        udev_monitor_unref(u->mon);
    if (u->udev)
        udev_unref(u->udev);
    u->mon = NULL;
    u->udev = NULL;
}

int detect_udev_start(struct detect_udev *u, int epfd)
{
    struct udev_queue *q = NULL;
    struct epoll_event ev = {.events = EPOLLIN};
    bool ok = false;
    int r = 0;

    u->udev = udev_new();
    if (!u->udev)
        goto out;
    q = udev_queue_new(u->udev);
    if (!q || !udev_queue_get_udev_is_active(q)) {
        log_debug("detect: udevd is not running, no udev monitor");
        goto out;
    }
    u->mon = udev_monitor_new_from_netlink(u->udev, "udev");
    if (!u->mon || udev_monitor_filter_add_match_subsystem_devtype(u->mon, "usb", NULL) < 0 ||
        udev_monitor_enable_receiving(u->mon) < 0) {
        log_debug("detect: udev monitor unavailable");
        goto out;
    }
    ev.data.fd = udev_monitor_get_fd(u->mon);
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, ev.data.fd, &ev) < 0) {
        r = PA_E_INTERNAL;
        goto out;
    }
    ok = true;
out:
    if (q)
        udev_queue_unref(q);
    if (!ok)
        detect_udev_stop(u);
    return r;
}
