/* SPDX-License-Identifier: Apache-2.0 */
/*
 * detect.c - token arrival and removal: PC/SC events, a udev hint, and a periodic rescan.
 *
 * Shape:
 *  - PC/SC: one thread blocks in SCardGetStatusChange(INFINITE) on every reader plus
 *    "\\?PnP?\Notification". It describes what changed, stores the text under a mutex and
 *    writes to an eventfd. detect_close() wakes it with SCardCancel (never pthread_cancel).
 *    When the service goes away, the thread ends; detect_poll() notices, drops the source and
 *    tries again at each periodic rescan (if there is one).
 *  - udev: a libudev netlink monitor ("udev" events, subsystem usb). Its fd is read directly,
 *    without a thread, only when udevd runs (an unused monitor would never fire).
 *  - both fds sit in one epoll fd, which is what detect_fd() returns.
 *  - periodic rescan: CLOCK_MONOTONIC deadlines, only when no event source runs (or forced).
 * Idle costs no CPU: the caller blocks in poll() and the thread in pcsc-lite.
 */
#include "detect.h"

#include "log.h"
#include "pa_err.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <PCSC/winscard.h>
#include <libudev.h>

#define DETECT_MSG_MAX    192
#define DETECT_RESCAN_MAX 86400.0 /* one day: a larger interval is a configuration mistake */
#define PNP_READER        "\\\\?PnP?\\Notification"

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

struct detect {
    struct detect_opts opts;
    int epfd;
    int evfd; /* written by the PC/SC thread */

    /* PC/SC. ctx, rs, names and nrs belong to the thread while it runs. */
    bool pcsc_running; /* main thread's view: a thread exists */
    bool have_ctx;
    SCARDCONTEXT ctx;
    pthread_t thread;
    SCARD_READERSTATE *rs; /* readers, then the PnP entry last */
    DWORD nrs;
    char *names; /* multi-string the reader names point into */

    /* Shared with the thread, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool sync_init;
    bool stop;        /* asked to stop */
    bool exited;      /* thread returned */
    bool lost;        /* thread returned because the service went away */
    unsigned pending; /* events since the last detect_poll */
    char pcsc_msg[DETECT_MSG_MAX];

    /* udev */
    struct udev *udev;
    struct udev_monitor *mon;

    /* periodic rescan */
    long long interval_ms;
    bool rescan_on;
    struct timespec next;

    char sources[64];
};

/* ---- time ------------------------------------------------------------------------------ */

static long long now_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long ts_ms_ceil(const struct timespec *ts)
{
    return (long long)ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000;
}

static void ts_after_ms(struct timespec *ts, long long ms)
{
    (void)clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

static bool ts_passed(const struct timespec *ts)
{
    struct timespec now;

    (void)clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec != ts->tv_sec)
        return now.tv_sec > ts->tv_sec;
    return now.tv_nsec >= ts->tv_nsec;
}

static void copy_msg(char *dst, size_t dstlen, const char *src)
{
    if (!dst || dstlen == 0)
        return;
    (void)snprintf(dst, dstlen, "%s", src);
}

/* ---- sources string and rescan state (main thread) -------------------------------------- */

static void update_sources(struct detect *d)
{
    char rescan[32] = "";
    bool events = d->pcsc_running || d->mon;
    int n;

    d->rescan_on = d->interval_ms > 0 && (d->opts.force_rescan || !events);
    if (d->rescan_on) {
        if (d->interval_ms % 100 == 0)
            (void)snprintf(rescan, sizeof(rescan), "rescan(%.1fs)", (double)d->interval_ms / 1000);
        else
            (void)snprintf(rescan, sizeof(rescan), "rescan(%gs)", (double)d->interval_ms / 1000);
    }
    n = snprintf(d->sources, sizeof(d->sources), "%s%s%s%s%s", d->pcsc_running ? "pcsc" : "",
                 d->pcsc_running && d->mon ? "," : "", d->mon ? "udev" : "",
                 events && d->rescan_on ? "," : "", rescan);
    if (n <= 0)
        (void)snprintf(d->sources, sizeof(d->sources), "none");
}

/* ---- PC/SC ----------------------------------------------------------------------------- */

static void pcsc_free_readers(struct detect *d)
{
    free(d->rs);
    free(d->names);
    d->rs = NULL;
    d->names = NULL;
    d->nrs = 0;
}

/*
 * Fetch the reader list into a new multi-string (*ret, caller frees; an empty list when there
 * is no reader). Returns the pcsc-lite code (SCARD_S_SUCCESS also for "no readers").
 */
static LONG pcsc_list(SCARDCONTEXT ctx, char **ret)
{
    char *buf = NULL;
    DWORD len;
    LONG rv = SCARD_E_INSUFFICIENT_BUFFER;
    int tries;

    /* The list can grow between the two calls: then ask again, a few times. */
    for (tries = 0; tries < 5 && rv == SCARD_E_INSUFFICIENT_BUFFER; tries++) {
        free(buf);
        buf = NULL;
        len = 0;
        rv = SCardListReaders(ctx, NULL, NULL, &len);
        if (rv != SCARD_S_SUCCESS)
            break;
        buf = calloc(1, (size_t)len + 2); /* + 2: always double-NUL terminated */
        if (!buf) {
            rv = SCARD_E_NO_MEMORY;
            break;
        }
        rv = SCardListReaders(ctx, NULL, buf, &len);
    }
    if (rv == SCARD_E_NO_READERS_AVAILABLE) {
        free(buf);
        buf = calloc(1, 2);
        rv = buf ? SCARD_S_SUCCESS : SCARD_E_NO_MEMORY;
    }
    if (rv != SCARD_S_SUCCESS) {
        free(buf);
        buf = NULL;
    }
    *ret = buf;
    return rv;
}

static const SCARD_READERSTATE *find_reader(const SCARD_READERSTATE *rs, DWORD n, const char *name)
{
    DWORD i;

    for (i = 0; i < n; i++)
        if (strcmp(rs[i].szReader, name) == 0)
            return &rs[i];
    return NULL;
}

/*
 * Rebuild d->rs from the current reader list, keeping the known state of readers that stay
 * (a new reader starts UNAWARE, so the next wait reports its state at once) and of the PnP
 * entry. Describes an added or removed reader in msg (untouched when the list is the same).
 *
 * pcsc-lite 1.9.9 ignores the PnP entry's current state: it fires when the reader count
 * differs from the count at the start of the call. A reader that appears between
 * SCardListReaders and the next call is therefore seen at the next change only; udev (when it
 * runs) still reports it. Newer pcsc-lite keeps the count in the high word, which we carry.
 */
static LONG pcsc_relist(struct detect *d, char *msg, size_t msglen)
{
    SCARD_READERSTATE *rs = NULL;
    char *names = NULL;
    const char *p;
    DWORD n = 0, i, nold = d->rs ? d->nrs - 1 : 0;
    LONG rv;

    rv = pcsc_list(d->ctx, &names);
    if (rv != SCARD_S_SUCCESS)
        goto out;
    for (p = names; *p; p += strlen(p) + 1)
        n++;
    rs = calloc((size_t)n + 1, sizeof(*rs));
    if (!rs) {
        rv = SCARD_E_NO_MEMORY;
        goto out;
    }
    for (i = 0, p = names; *p; p += strlen(p) + 1, i++) {
        const SCARD_READERSTATE *old = d->rs ? find_reader(d->rs, nold, p) : NULL;

        rs[i].szReader = p;
        rs[i].dwCurrentState = old ? old->dwCurrentState : SCARD_STATE_UNAWARE;
        if (!old && d->rs)
            (void)snprintf(msg, msglen, "pcsc: reader added: '%s'", p);
    }
    for (i = 0; i < nold; i++)
        if (!find_reader(rs, n, d->rs[i].szReader))
            (void)snprintf(msg, msglen, "pcsc: reader removed: '%s'", d->rs[i].szReader);
    rs[n].szReader = PNP_READER;
    rs[n].dwCurrentState = d->rs ? d->rs[nold].dwCurrentState : SCARD_STATE_UNAWARE;
    pcsc_free_readers(d);
    d->rs = rs;
    d->names = names;
    d->nrs = n + 1;
    rs = NULL;
    names = NULL;
out:
    free(rs);
    free(names);
    return rv;
}

/*
 * After SCardGetStatusChange returned: describe the change (the last one wins) into msg and
 * take the event states as the new current states (with pcsc-lite's event counter in the high
 * word, so a remove + insert between two calls is still a change). Returns true when the
 * reader list must be rebuilt.
 */
static bool pcsc_digest(struct detect *d, char *msg, size_t msglen)
{
    bool relist = false;
    DWORD i;

    for (i = 0; i < d->nrs; i++) {
        SCARD_READERSTATE *r = &d->rs[i];
        DWORD oldst = r->dwCurrentState, newst = r->dwEventState;
        bool was = (oldst & SCARD_STATE_PRESENT) != 0, is = (newst & SCARD_STATE_PRESENT) != 0;

        if (!(newst & SCARD_STATE_CHANGED))
            continue;
        r->dwCurrentState = newst & ~(DWORD)SCARD_STATE_CHANGED;
        if (i + 1 == d->nrs || (newst & (SCARD_STATE_UNKNOWN | SCARD_STATE_IGNORE))) {
            relist = true; /* PnP entry, or a reader went away */
            continue;
        }
        if (oldst == SCARD_STATE_UNAWARE) {
            if (is)
                (void)snprintf(msg, msglen, "pcsc: card present in '%s'", r->szReader);
        } else if (is && (!was || (oldst >> 16) != (newst >> 16))) {
            (void)snprintf(msg, msglen, "pcsc: card inserted in '%s'", r->szReader);
        } else if (was && !is) {
            (void)snprintf(msg, msglen, "pcsc: card removed from '%s'", r->szReader);
        }
    }
    return relist;
}

static bool pcsc_should_stop(struct detect *d)
{
    bool stop;

    pthread_mutex_lock(&d->mu);
    stop = d->stop;
    pthread_mutex_unlock(&d->mu);
    return stop;
}

static void poke(struct detect *d)
{
    uint64_t one = 1;

    if (write(d->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_debug("detect: eventfd write: %s", strerror(errno));
}

/* Hand one event description to the main thread and make detect_fd() readable. */
static void pcsc_notify(struct detect *d, const char *msg)
{
    pthread_mutex_lock(&d->mu);
    copy_msg(d->pcsc_msg, sizeof(d->pcsc_msg), msg);
    d->pending++;
    pthread_mutex_unlock(&d->mu);
    poke(d);
}

static bool pcsc_service_gone(LONG rv)
{
    return rv == SCARD_E_NO_SERVICE || rv == SCARD_E_SERVICE_STOPPED || rv == SCARD_F_COMM_ERROR ||
           rv == SCARD_E_INVALID_HANDLE;
}

/*
 * The PC/SC waiter. Blocks in SCardGetStatusChange(INFINITE); leaves when asked (stop, woken
 * by SCardCancel) or on any unexpected error (the service went away, or worse), so an error
 * that repeats can never become a busy loop. Its last words go through pcsc_msg.
 */
static void *pcsc_thread(void *arg)
{
    struct detect *d = arg;
    char msg[DETECT_MSG_MAX];
    LONG rv = SCARD_S_SUCCESS;
    long long spin_start = now_ms();
    unsigned spins = 0;

    for (;;) {
        bool relist = false;

        if (pcsc_should_stop(d))
            break;
        rv = SCardGetStatusChange(d->ctx, INFINITE, d->rs, d->nrs);
        if (pcsc_should_stop(d))
            break;
        msg[0] = '\0';
        if (rv == SCARD_E_CANCELLED || rv == SCARD_E_TIMEOUT)
            rv = SCARD_S_SUCCESS;
        else if (rv == SCARD_E_UNKNOWN_READER || rv == SCARD_E_READER_UNAVAILABLE)
            relist = true;
        else if (rv == SCARD_S_SUCCESS)
            relist = pcsc_digest(d, msg, sizeof(msg));
        if (rv == SCARD_S_SUCCESS && relist)
            rv = pcsc_relist(d, msg, sizeof(msg));
        if (rv != SCARD_S_SUCCESS)
            break;
        if (msg[0])
            pcsc_notify(d, msg);
        /* Guard against a library that keeps returning without news: never spin. */
        if (msg[0] || relist || now_ms() - spin_start > 10000) {
            spin_start = now_ms();
            spins = 0;
        } else if (++spins > 100) {
            rv = SCARD_F_UNKNOWN_ERROR;
            break;
        }
    }
    pthread_mutex_lock(&d->mu);
    d->exited = true;
    if (rv != SCARD_S_SUCCESS && !d->stop) {
        log_debug("detect: pcsc waiter ends: %s (0x%lx)", pcsc_stringify_error(rv),
                  (unsigned long)rv);
        d->lost = true;
        if (pcsc_service_gone(rv))
            copy_msg(d->pcsc_msg, sizeof(d->pcsc_msg), "pcsc: service stopped");
        else
            (void)snprintf(d->pcsc_msg, sizeof(d->pcsc_msg), "pcsc: watcher failed: %s",
                           pcsc_stringify_error(rv));
        d->pending++;
    }
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->mu);
    poke(d);
    return NULL;
}

/* Stop the waiter (if any) and release the context. Main thread only. */
static void pcsc_stop(struct detect *d)
{
    uint64_t cnt;

    if (d->pcsc_running) {
        pthread_mutex_lock(&d->mu);
        d->stop = true;
        while (!d->exited) {
            struct timespec until;

            pthread_mutex_unlock(&d->mu);
            /* A no-op while the thread is not blocked yet: then ask again shortly. */
            (void)SCardCancel(d->ctx);
            pthread_mutex_lock(&d->mu);
            if (d->exited)
                break;
            ts_after_ms(&until, 100);
            (void)pthread_cond_timedwait(&d->cond, &d->mu, &until);
        }
        pthread_mutex_unlock(&d->mu);
        (void)pthread_join(d->thread, NULL);
        d->pcsc_running = false;
        /* The thread is gone: what it left in the eventfd is stale (taken or reported). */
        while (read(d->evfd, &cnt, sizeof(cnt)) > 0)
            ;
    }
    if (d->have_ctx) {
        (void)SCardReleaseContext(d->ctx);
        d->have_ctx = false;
    }
    pcsc_free_readers(d);
    pthread_mutex_lock(&d->mu);
    d->stop = false;
    d->exited = false;
    d->lost = false;
    d->pending = 0;
    pthread_mutex_unlock(&d->mu);
}

/*
 * Connect to pcscd, take the current state of every reader as the baseline (synchronously, so
 * a change after this returns is never lost) and start the waiter. Returns 0 also when pcscd
 * is not reachable (d->pcsc_running stays false); a negative PA_E_* on real errors.
 */
static int pcsc_start(struct detect *d)
{
    char msg[DETECT_MSG_MAX];
    sigset_t all, old;
    bool started;
    LONG rv;
    int r = 0;

    rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &d->ctx);
    if (rv != SCARD_S_SUCCESS) {
        log_debug("detect: pcsc not available: %s", pcsc_stringify_error(rv));
        goto out;
    }
    d->have_ctx = true;
    rv = pcsc_relist(d, msg, sizeof(msg));
    if (rv == SCARD_S_SUCCESS) {
        rv = SCardGetStatusChange(d->ctx, 0, d->rs, d->nrs);
        if (rv == SCARD_S_SUCCESS || rv == SCARD_E_TIMEOUT) {
            (void)pcsc_digest(d, msg, sizeof(msg));
            rv = SCARD_S_SUCCESS;
        }
    }
    if (rv != SCARD_S_SUCCESS) {
        log_debug("detect: pcsc baseline: %s", pcsc_stringify_error(rv));
        if (rv == SCARD_E_NO_MEMORY)
            r = PA_E_NOMEM;
        goto out;
    }
    /* The waiter takes no signals: they stay with the caller's thread (and its poll()). */
    sigfillset(&all);
    if (pthread_sigmask(SIG_SETMASK, &all, &old) != 0) {
        r = PA_E_INTERNAL;
        goto out;
    }
    started = pthread_create(&d->thread, NULL, pcsc_thread, d) == 0;
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!started) {
        r = PA_E_INTERNAL;
        goto out;
    }
    d->pcsc_running = true;
    log_debug("detect: pcsc: watching %lu reader(s)", (unsigned long)(d->nrs - 1));
out:
    if (!d->pcsc_running)
        pcsc_stop(d);
    return r;
}

/* ---- udev ------------------------------------------------------------------------------ */

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

/* Leading decimal class of "class/subclass/protocol" (INTERFACE, TYPE), or -1. */
static int parse_class(const char *s)
{
    char *end;
    unsigned long c;

    if (!s)
        return -1;
    errno = 0;
    c = strtoul(s, &end, 10);
    if (errno || end == s || *end != '/' || c > 255)
        return -1;
    return (int)c;
}

/* A sysfs class attribute ("0b"), or -1. */
static int parse_hex_class(const char *s)
{
    char *end;
    unsigned long c;

    if (!s)
        return -1;
    errno = 0;
    c = strtoul(s, &end, 16);
    if (errno || end == s || (*end != '\0' && *end != '\n') || c > 255)
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

/*
 * Decide whether a usb add/remove event concerns a smart-card reader (an interface of class
 * 0x0b) or a known token, from the event's properties first (they are all a remove event
 * carries), then from sysfs attributes (add only). On a match, describes it in msg.
 */
static bool udev_classify(struct udev_device *dev, const char *action, char *msg, size_t msglen)
{
    const char *devtype = udev_device_get_devtype(dev);
    const char *sysname = udev_device_get_sysname(dev);
    bool add = streq(action, "add"), have_id, ccid = false;
    const struct known_id *k = NULL;
    unsigned vid = 0, pid = 0;

    have_id = parse_product(udev_device_get_property_value(dev, "PRODUCT"), &vid, &pid);
    if (!have_id && add && streq(devtype, "usb_device")) {
        const char *v = udev_device_get_sysattr_value(dev, "idVendor");
        const char *p = udev_device_get_sysattr_value(dev, "idProduct");
        char both[32];

        if (v && p && snprintf(both, sizeof(both), "%s/%s", v, p) < (int)sizeof(both))
            have_id = parse_product(both, &vid, &pid);
    }
    if (have_id)
        k = known_lookup(vid, pid);
    if (streq(devtype, "usb_interface")) {
        ccid = parse_class(udev_device_get_property_value(dev, "INTERFACE")) == USB_CLASS_CCID;
        if (!ccid && add) {
            const char *c = udev_device_get_sysattr_value(dev, "bInterfaceClass");

            ccid = parse_hex_class(c) == USB_CLASS_CCID;
        }
    } else if (streq(devtype, "usb_device")) {
        ccid = interfaces_have_class(udev_device_get_property_value(dev, "ID_USB_INTERFACES"),
                                     USB_CLASS_CCID) ||
               parse_class(udev_device_get_property_value(dev, "TYPE")) == USB_CLASS_CCID;
    }
    if (!k && !ccid)
        return false;
    (void)snprintf(msg, msglen, "udev: %s %s: %04x:%04x%s%s%s at %s", k ? "token" : "reader",
                   add ? "added" : "removed", vid, pid, k ? " (" : "", k ? k->name : "",
                   k ? ")" : "", sysname ? sysname : "?");
    return true;
}

/* Drain the monitor; returns the number of relevant events, the last one described in msg. */
static unsigned udev_drain(struct detect *d, char *msg, size_t msglen)
{
    unsigned n = 0;

    for (;;) {
        struct udev_device *dev;
        const char *action;

        errno = 0;
        dev = udev_monitor_receive_device(d->mon);
        if (!dev && errno == ENOBUFS) {
            /* The socket overflowed: events were lost, so enumerate anyway. */
            copy_msg(msg, msglen, "udev: events lost, rescanning");
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

static void udev_stop(struct detect *d)
{
    if (d->mon)
        udev_monitor_unref(d->mon);
    if (d->udev)
        udev_unref(d->udev);
    d->mon = NULL;
    d->udev = NULL;
}

/*
 * Start the udev monitor, but only when udevd runs: a monitor without udevd never fires and
 * would wrongly switch the periodic rescan off. Returns 0 also when udev is not usable.
 */
static int udev_start(struct detect *d)
{
    struct udev_queue *q = NULL;
    struct epoll_event ev = {.events = EPOLLIN};
    bool ok = false;
    int r = 0;

    d->udev = udev_new();
    if (!d->udev)
        goto out;
    q = udev_queue_new(d->udev);
    if (!q || !udev_queue_get_udev_is_active(q)) {
        log_debug("detect: udevd is not running, no udev monitor");
        goto out;
    }
    d->mon = udev_monitor_new_from_netlink(d->udev, "udev");
    if (!d->mon || udev_monitor_filter_add_match_subsystem_devtype(d->mon, "usb", NULL) < 0 ||
        udev_monitor_enable_receiving(d->mon) < 0) {
        log_debug("detect: udev monitor unavailable");
        goto out;
    }
    ev.data.fd = udev_monitor_get_fd(d->mon);
    if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev) < 0) {
        r = PA_E_INTERNAL;
        goto out;
    }
    ok = true;
out:
    if (q)
        udev_queue_unref(q);
    if (!ok)
        udev_stop(d);
    return r;
}

/* ---- public ---------------------------------------------------------------------------- */

static int sync_init(struct detect *d)
{
    pthread_condattr_t ca;
    int r = PA_E_INTERNAL;

    if (pthread_condattr_init(&ca) != 0)
        return PA_E_INTERNAL;
    /* ts_after_ms() deadlines are CLOCK_MONOTONIC */
    if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0)
        goto out;
    if (pthread_mutex_init(&d->mu, NULL) != 0)
        goto out;
    if (pthread_cond_init(&d->cond, &ca) != 0) {
        pthread_mutex_destroy(&d->mu);
        goto out;
    }
    d->sync_init = true;
    r = 0;
out:
    pthread_condattr_destroy(&ca);
    return r;
}

int detect_open(const struct detect_opts *o, struct detect **ret)
{
    struct detect *d = NULL;
    struct epoll_event ev = {.events = EPOLLIN};
    int r = PA_E_INTERNAL;

    if (!o || !ret)
        return PA_E_INTERNAL;
    if (!(o->rescan_s >= 0 && o->rescan_s <= DETECT_RESCAN_MAX)) /* also refuses NaN */
        return PA_E_USAGE;
    d = calloc(1, sizeof(*d));
    if (!d)
        return PA_E_NOMEM;
    d->opts = *o;
    d->epfd = -1;
    d->evfd = -1;
    d->interval_ms = (long long)(o->rescan_s * 1000.0 + 0.5);
    if (o->rescan_s > 0 && d->interval_ms < 1)
        d->interval_ms = 1;
    r = sync_init(d);
    if (r < 0)
        goto out;
    r = PA_E_INTERNAL;
    d->epfd = epoll_create1(EPOLL_CLOEXEC);
    d->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (d->epfd < 0 || d->evfd < 0)
        goto out;
    ev.data.fd = d->evfd;
    if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->evfd, &ev) < 0)
        goto out;
    r = o->use_udev ? udev_start(d) : 0;
    if (r < 0)
        goto out;
    r = o->use_pcsc ? pcsc_start(d) : 0;
    if (r < 0)
        goto out;
    update_sources(d);
    if (d->rescan_on)
        ts_after_ms(&d->next, d->interval_ms);
    log_debug("detect: sources %s", d->sources);
    *ret = d;
    d = NULL;
out:
    detect_close(d);
    return r;
}

void detect_close(struct detect *d)
{
    if (!d)
        return;
    if (d->sync_init)
        pcsc_stop(d);
    udev_stop(d);
    if (d->evfd >= 0)
        close(d->evfd);
    if (d->epfd >= 0)
        close(d->epfd);
    if (d->sync_init) {
        pthread_cond_destroy(&d->cond);
        pthread_mutex_destroy(&d->mu);
    }
    free(d);
}

int detect_fd(const struct detect *d)
{
    return d ? d->epfd : -1;
}

int detect_timeout_ms(const struct detect *d)
{
    long long left;

    if (!d || !d->rescan_on)
        return -1;
    /* Rounded up: after poll() waited this long, the rescan is due. */
    left = ts_ms_ceil(&d->next) - now_ms();
    if (left < 0)
        return 0;
    return left > INT_MAX ? INT_MAX : (int)left;
}

/*
 * Take what the PC/SC thread left: returns the number of events, the last description copied
 * into msg; sets *lost when the thread ended on its own (the caller then drops the source).
 */
static unsigned take_pcsc(struct detect *d, char *msg, size_t msglen, bool *lost)
{
    uint64_t cnt;
    unsigned n;

    while (read(d->evfd, &cnt, sizeof(cnt)) > 0)
        ;
    pthread_mutex_lock(&d->mu);
    n = d->pending;
    if (n)
        copy_msg(msg, msglen, d->pcsc_msg);
    d->pending = 0;
    *lost = d->exited && d->lost;
    pthread_mutex_unlock(&d->mu);
    return n;
}

/*
 * Several sources can fire between two calls: what gets the last event of each source that
 * fired, in the order pcsc, udev, rescan, joined by "; " (and truncated to whatlen).
 */
int detect_poll(struct detect *d, char *what, size_t whatlen)
{
    char pmsg[DETECT_MSG_MAX] = "", umsg[DETECT_MSG_MAX] = "", rmsg[DETECT_MSG_MAX] = "";
    bool lost = false, had_rescan;
    unsigned events;

    if (!d)
        return 0;
    had_rescan = d->rescan_on;
    events = take_pcsc(d, pmsg, sizeof(pmsg), &lost);
    if (lost) {
        pcsc_stop(d);
        update_sources(d);
    }
    if (d->mon)
        events += udev_drain(d, umsg, sizeof(umsg));
    if (d->rescan_on && !had_rescan) {
        /* Rescan just became necessary; this event already asks for an enumeration. */
        ts_after_ms(&d->next, d->interval_ms);
    } else if (d->rescan_on && ts_passed(&d->next)) {
        events++;
        copy_msg(rmsg, sizeof(rmsg), "rescan: periodic");
        /* The service may have come (back): try once per period, never in a loop. */
        if (d->opts.use_pcsc && !d->pcsc_running && pcsc_start(d) == 0 && d->pcsc_running) {
            copy_msg(rmsg, sizeof(rmsg), "pcsc: service available");
            update_sources(d);
        }
        ts_after_ms(&d->next, d->interval_ms);
    } else if (d->rescan_on && events) {
        /* The caller enumerates now: the next periodic rescan is one period away. */
        ts_after_ms(&d->next, d->interval_ms);
    }
    if (what && whatlen)
        (void)snprintf(what, whatlen, "%s%s%s%s%s", pmsg,
                       pmsg[0] && (umsg[0] || rmsg[0]) ? "; " : "", umsg,
                       umsg[0] && rmsg[0] ? "; " : "", rmsg);
    return events ? 1 : 0;
}

const char *detect_sources(const struct detect *d)
{
    return d ? d->sources : "none";
}
