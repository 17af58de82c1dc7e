/* SPDX-License-Identifier: Apache-2.0 */
#include "ratebudget.h"

#include "log.h"
#include "pa_err.h"
#include "stop.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RB_MAGIC      "PKIORB01"
#define RB_SKEW_S     1.0 /* entries this far in the future are believed */
#define RB_FULL_WAIT  0.05
#define RB_MAX_COUNT  (RB_SLOTS - 16)
#define RB_LOCK_STEP0 0.0002
#define RB_LOCK_STEP1 0.01

enum rb_state { RB_EMPTY = 0, RB_INFLIGHT = 1, RB_DONE = 2 };

struct rb_entry {
    double t;       /* CLOCK_REALTIME seconds: sent (in flight) or completed (done) */
    uint32_t pid;   /* the process that sent it */
    uint32_t state; /* enum rb_state */
};

struct rb_header {
    char magic[8];
    uint32_t slots;
    uint32_t entry_size;
};

struct rb_image {
    struct rb_header h;
    struct rb_entry e[RB_SLOTS];
};

_Static_assert(sizeof(struct rb_entry) == 16, "rb_entry layout");
_Static_assert(sizeof(struct rb_header) == 16, "rb_header layout");

struct rb_station {
    char *path;
    int fd;
    pid_t pid;  /* the process that opened fd: a forked child opens its own */
    bool reset; /* the image was rebuilt: write all of it */
    bool dirty[RB_SLOTS];
    struct rb_image img;
    double times[RB_SLOTS];
};

void rb_limits_scale(const struct rb_limits *lim, double share, struct rb_limits *ret)
{
    unsigned n[2] = {lim->burst_n, lim->long_n};

    if (!(share > 0 && share <= 1))
        share = 1;
    for (int i = 0; i < 2; i++) {
        if (n[i] == 0)
            continue;
        n[i] = (unsigned)floor((double)n[i] * share);
        if (n[i] < 1)
            n[i] = 1;
        if (n[i] > RB_MAX_COUNT)
            n[i] = RB_MAX_COUNT;
    }
    *ret = *lim;
    ret->burst_n = n[0];
    ret->long_n = n[1];
}

static double rb_now(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
        return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rb_open_fd(struct rb_station *st)
{
    struct stat sb;
    int fd = open(st->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

    if (fd < 0) {
        log_debug("ratebudget: open %s: %s", st->path, strerror(errno));
        return PA_E_IO;
    }
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        log_debug("ratebudget: %s is not a regular file", st->path);
        close(fd);
        return PA_E_IO;
    }
    st->fd = fd;
    st->pid = getpid();
    return 0;
}

int rb_station_open(const char *path, struct rb_station **ret)
{
    struct rb_station *st = calloc(1, sizeof(*st));
    int r;

    if (!st)
        return PA_E_NOMEM;
    st->fd = -1;
    st->path = strdup(path);
    if (!st->path) {
        r = PA_E_NOMEM;
        goto out;
    }
    r = rb_open_fd(st);
    if (r < 0)
        goto out;
    *ret = st;
    st = NULL;
out:
    rb_station_close(st);
    return r;
}

void rb_station_close(struct rb_station *st)
{
    if (!st)
        return;
    if (st->fd >= 0)
        close(st->fd);
    free(st->path);
    free(st);
}

/* The file lock, waited for in growing steps up to RB_LOCK_WAIT_S. 0, PA_E_BUSY or PA_E_IO. */
static int rb_lock(struct rb_station *st)
{
    double waited = 0, step = RB_LOCK_STEP0;

    /* flock belongs to the open file: a child forked with our descriptor would share it. */
    if (st->pid != getpid()) {
        close(st->fd);
        st->fd = -1;
        if (rb_open_fd(st) < 0)
            return PA_E_IO;
    }
    for (;;) {
        if (flock(st->fd, LOCK_EX | LOCK_NB) == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK) {
            log_debug("ratebudget: flock %s: %s", st->path, strerror(errno));
            return PA_E_IO;
        }
        if (waited >= RB_LOCK_WAIT_S) {
            log_debug("ratebudget: %s stayed locked for %.0f s", st->path, waited);
            return PA_E_BUSY;
        }
        if (!stop_sleep(step)) {
            log_debug("ratebudget: stopped while waiting for %s", st->path);
            return PA_E_BUSY;
        }
        waited += step;
        step = step * 2 > RB_LOCK_STEP1 ? RB_LOCK_STEP1 : step * 2;
    }
}

static void rb_unlock(struct rb_station *st)
{
    (void)flock(st->fd, LOCK_UN);
}

static bool rb_pid_alive(uint32_t pid)
{
    if (pid == 0 || pid > INT32_MAX)
        return false;
    return kill((pid_t)pid, 0) == 0 || errno != ESRCH;
}

static void rb_reset(struct rb_station *st)
{
    memset(&st->img, 0, sizeof(st->img));
    memcpy(st->img.h.magic, RB_MAGIC, sizeof(st->img.h.magic));
    st->img.h.slots = RB_SLOTS;
    st->img.h.entry_size = sizeof(struct rb_entry);
    st->reset = true;
}

/* Bring one entry in line with now: invalid -> empty; stale or future -> done at now. */
static bool rb_normalise(struct rb_entry *e, double now)
{
    if (e->state > RB_DONE || !isfinite(e->t) || e->t < 0) {
        memset(e, 0, sizeof(*e));
        return true;
    }
    if (e->state == RB_INFLIGHT &&
        (e->t > now + RB_SKEW_S || now - e->t > RB_INFLIGHT_MAX_S || !rb_pid_alive(e->pid))) {
        e->state = RB_DONE;
        e->t = now;
        return true;
    }
    if (e->state == RB_DONE && e->t > now + RB_SKEW_S) {
        e->t = now;
        return true;
    }
    return false;
}

/* Read the file into st->img (reset if damaged) and normalise it. 0 or PA_E_IO. */
static int rb_load(struct rb_station *st, double now)
{
    struct stat sb;
    ssize_t n;

    st->reset = false;
    memset(st->dirty, 0, sizeof(st->dirty));
    if (fstat(st->fd, &sb) < 0)
        return PA_E_IO;
    n = pread(st->fd, &st->img, sizeof(st->img), 0);
    if (n < 0)
        return PA_E_IO;
    if ((size_t)n != sizeof(st->img) || sb.st_size != (off_t)sizeof(st->img) ||
        memcmp(st->img.h.magic, RB_MAGIC, sizeof(st->img.h.magic)) != 0 ||
        st->img.h.slots != RB_SLOTS || st->img.h.entry_size != sizeof(struct rb_entry)) {
        if (sb.st_size != 0)
            log_debug("ratebudget: %s damaged (%lld bytes); reset", st->path,
                      (long long)sb.st_size);
        rb_reset(st);
        return 0;
    }
    for (size_t i = 0; i < RB_SLOTS; i++)
        st->dirty[i] = rb_normalise(&st->img.e[i], now);
    return 0;
}

/* Write what changed: everything after a reset, else the changed entries. 0 or PA_E_IO. */
static int rb_store(struct rb_station *st)
{
    if (st->reset) {
        if (pwrite(st->fd, &st->img, sizeof(st->img), 0) != (ssize_t)sizeof(st->img) ||
            ftruncate(st->fd, (off_t)sizeof(st->img)) < 0)
            return PA_E_IO;
        return 0;
    }
    for (size_t i = 0; i < RB_SLOTS; i++) {
        off_t off = (off_t)(offsetof(struct rb_image, e) + i * sizeof(struct rb_entry));

        if (st->dirty[i] &&
            pwrite(st->fd, &st->img.e[i], sizeof(struct rb_entry), off) != sizeof(struct rb_entry))
            return PA_E_IO;
    }
    return 0;
}

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? 1 : x > y ? -1 : 0;
}

/* Seconds until one more request fits window (n, w), given times sorted newest first. */
static double rb_window_wait(const double *times, size_t count, unsigned n, double w, double now)
{
    if (n == 0 || count < n)
        return 0;
    return times[n - 1] + w - now;
}

/* How long until one more request fits both windows of lim (<= 0: now). */
static double rb_wait(struct rb_station *st, const struct rb_limits *lim, double now)
{
    size_t count = 0;
    double a, b;

    for (size_t i = 0; i < RB_SLOTS; i++) {
        const struct rb_entry *e = &st->img.e[i];

        if (e->state == RB_DONE)
            st->times[count++] = e->t;
        else if (e->state == RB_INFLIGHT)
            st->times[count++] = now; /* its answer is yet to come */
    }
    qsort(st->times, count, sizeof(st->times[0]), cmp_desc);
    a = rb_window_wait(st->times, count, lim->burst_n, lim->burst_s, now);
    b = rb_window_wait(st->times, count, lim->long_n, lim->long_s, now);
    return a > b ? a : b;
}

/* An entry to take: an empty one, else the oldest completed one; -1 if all are in flight. */
static long rb_pick(const struct rb_station *st)
{
    long best = -1;

    for (size_t i = 0; i < RB_SLOTS; i++) {
        const struct rb_entry *e = &st->img.e[i];

        if (e->state == RB_EMPTY)
            return (long)i;
        if (e->state == RB_DONE && (best < 0 || e->t < st->img.e[best].t))
            best = (long)i;
    }
    return best;
}

/* Under the lock: the wait, or the reservation. */
static int rb_reserve_locked(struct rb_station *st, const struct rb_limits *lim, double *wait_s,
                             struct rb_ticket *ticket)
{
    double now = rb_now(), wait;
    int r = rb_load(st, now);

    if (r < 0)
        return r;
    wait = rb_wait(st, lim, now);
    if (wait <= 0) {
        long slot = rb_pick(st);

        if (slot < 0) {
            wait = RB_FULL_WAIT;
        } else {
            st->img.e[slot] =
                (struct rb_entry){.t = now, .pid = (uint32_t)getpid(), .state = RB_INFLIGHT};
            st->dirty[slot] = true;
            *ticket = (struct rb_ticket){.valid = true, .slot = (unsigned)slot, .t = now};
            wait = 0;
        }
    }
    r = rb_store(st);
    if (r < 0) {
        ticket->valid = false;
        return r;
    }
    *wait_s = wait;
    return 0;
}

int rb_station_reserve(struct rb_station *st, const struct rb_limits *lim, double *wait_s,
                       struct rb_ticket *ticket)
{
    int r = rb_lock(st);

    if (r < 0)
        return r;
    r = rb_reserve_locked(st, lim, wait_s, ticket);
    if (r < 0)
        log_debug("ratebudget: cannot update %s: %s", st->path, strerror(errno));
    rb_unlock(st);
    return r;
}

int rb_station_done(struct rb_station *st, struct rb_ticket *ticket)
{
    off_t off;
    struct rb_entry e;
    double now;
    int r;

    if (!ticket->valid)
        return 0;
    ticket->valid = false;
    if (ticket->slot >= RB_SLOTS)
        return PA_E_INTERNAL;
    r = rb_lock(st);
    if (r < 0)
        return r;
    off = (off_t)(offsetof(struct rb_image, e) + ticket->slot * sizeof(struct rb_entry));
    now = rb_now();
    if (pread(st->fd, &e, sizeof(e), off) != (ssize_t)sizeof(e)) {
        r = PA_E_IO;
    } else if (e.state == RB_INFLIGHT && e.pid == (uint32_t)getpid() && e.t == ticket->t) {
        e.state = RB_DONE;
        e.t = now > ticket->t ? now : ticket->t;
        if (pwrite(st->fd, &e, sizeof(e), off) != (ssize_t)sizeof(e))
            r = PA_E_IO;
    }
    rb_unlock(st);
    return r;
}
