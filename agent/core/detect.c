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
 *    without a thread, only when udevd runs (an unused monitor would never fire). It lives in
 *    detect_udev.c.
 *  - both fds sit in one epoll fd, which is what detect_fd() returns.
 *  - periodic rescan: CLOCK_MONOTONIC deadlines, only when no event source runs (or forced).
 * Idle costs no CPU: the caller blocks in poll() and the thread in pcsc-lite.
 */
#include "detect.h"
#include "detect_internal.h"

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
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <PCSC/winscard.h>

#define DETECT_MSG_MAX    192
#define DETECT_RESCAN_MAX 86400.0 /* one day: a larger interval is a configuration mistake */
#define PNP_READER        "\\\\?PnP?\\Notification"

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

    struct detect_udev u; /* the udev monitor, when udevd runs */

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
    bool events = d->pcsc_running || d->u.mon;
    int n;

    d->rescan_on = d->interval_ms > 0 && (d->opts.force_rescan || !events);
    if (d->rescan_on) {
        if (d->interval_ms % 100 == 0)
            (void)snprintf(rescan, sizeof(rescan), "rescan(%.1fs)", (double)d->interval_ms / 1000);
        else
            (void)snprintf(rescan, sizeof(rescan), "rescan(%gs)", (double)d->interval_ms / 1000);
    }
    n = snprintf(d->sources, sizeof(d->sources), "%s%s%s%s%s", d->pcsc_running ? "pcsc" : "",
                 d->pcsc_running && d->u.mon ? "," : "", d->u.mon ? "udev" : "",
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
 * After one SCardGetStatusChange returned rv: digest it, and rebuild the reader list when the
 * change asks for it (*relist). What changed goes into msg ("" nothing). Returns the pcsc-lite
 * code to go on with: SCARD_S_SUCCESS, or the error the waiter ends on.
 */
static LONG pcsc_after_wait(struct detect *d, LONG rv, char *msg, size_t msglen, bool *relist)
{
    *relist = false;
    msg[0] = '\0';
    if (rv == SCARD_E_CANCELLED || rv == SCARD_E_TIMEOUT)
        rv = SCARD_S_SUCCESS;
    else if (rv == SCARD_E_UNKNOWN_READER || rv == SCARD_E_READER_UNAVAILABLE)
        *relist = true;
    else if (rv == SCARD_S_SUCCESS)
        *relist = pcsc_digest(d, msg, msglen);
    if (rv == SCARD_S_SUCCESS && *relist)
        rv = pcsc_relist(d, msg, msglen);
    return rv;
}

/* Guard against a library that keeps returning without news: never spin. */
struct spin_guard {
    long long start;
    unsigned spins;
};

/* One more return from the library (news: something happened); false when it spins. */
static bool spin_ok(struct spin_guard *g, bool news)
{
    if (news || now_ms() - g->start > 10000) {
        g->start = now_ms();
        g->spins = 0;
        return true;
    }
    return ++g->spins <= 100;
}

/* The waiter's last words (through pcsc_msg) and its exit, seen by the main thread. */
static void pcsc_thread_end(struct detect *d, LONG rv)
{
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
    struct spin_guard guard = {now_ms(), 0};

    for (;;) {
        bool relist = false;

        if (pcsc_should_stop(d))
            break;
        rv = SCardGetStatusChange(d->ctx, INFINITE, d->rs, d->nrs);
        if (pcsc_should_stop(d))
            break;
        rv = pcsc_after_wait(d, rv, msg, sizeof(msg), &relist);
        if (rv != SCARD_S_SUCCESS)
            break;
        if (msg[0])
            pcsc_notify(d, msg);
        if (!spin_ok(&guard, msg[0] || relist)) {
            rv = SCARD_F_UNKNOWN_ERROR;
            break;
        }
    }
    pcsc_thread_end(d, rv);
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

/* A new detector for o: the rescan interval, the lock and the two descriptors, no source yet. */
static int detect_new(const struct detect_opts *o, struct detect **ret)
{
    struct detect *d = calloc(1, sizeof(*d));
    struct epoll_event ev = {.events = EPOLLIN};
    int r;

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
    *ret = d;
    d = NULL;
    r = 0;
out:
    detect_close(d);
    return r;
}

int detect_open(const struct detect_opts *o, struct detect **ret)
{
    struct detect *d = NULL;
    int r;

    if (!o || !ret)
        return PA_E_INTERNAL;
    if (!(o->rescan_s >= 0 && o->rescan_s <= DETECT_RESCAN_MAX)) /* also refuses NaN */
        return PA_E_USAGE;
    r = detect_new(o, &d);
    if (r < 0)
        return r;
    r = o->use_udev ? detect_udev_start(&d->u, d->epfd) : 0;
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
    detect_udev_stop(&d->u);
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
 * The periodic rescan, after the events (how many) the sources had: 1 when a rescan is due now
 * (described in msg), else 0. A due rescan also tries to start PC/SC again (the service may have
 * come back: once per period, never in a loop). The next deadline is one period away whenever
 * the caller enumerates now, or the rescan just became necessary (had: it was on before).
 */
static unsigned rescan_due(struct detect *d, bool had, unsigned events, char *msg, size_t msglen)
{
    if (!d->rescan_on)
        return 0;
    if (!had) {
        /* Rescan just became necessary; this event already asks for an enumeration. */
        ts_after_ms(&d->next, d->interval_ms);
        return 0;
    }
    if (!ts_passed(&d->next)) {
        if (events) /* the caller enumerates now: the next periodic rescan is one period away */
            ts_after_ms(&d->next, d->interval_ms);
        return 0;
    }
    copy_msg(msg, msglen, "rescan: periodic");
    if (d->opts.use_pcsc && !d->pcsc_running && pcsc_start(d) == 0 && d->pcsc_running) {
        copy_msg(msg, msglen, "pcsc: service available");
        update_sources(d);
    }
    ts_after_ms(&d->next, d->interval_ms);
    return 1;
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
    if (d->u.mon)
        events += detect_udev_drain(&d->u, umsg, sizeof(umsg));
    events += rescan_due(d, had_rescan, events, rmsg, sizeof(rmsg));
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
