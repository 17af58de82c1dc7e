/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ratebudget.h - the station's CertCentral rate budget, shared by all its processes.
 *
 * DigiCert's limits (100 requests / 5 s and 1000 / 3 min, rolling) belong to the API key, so
 * every process of a station that uses the key (each child of `watch`, `order-status`, ...) must
 * count against one budget. It lives in STATE_DIR/ratebudget (0600): a header and a ring of
 * RB_SLOTS entries {time on CLOCK_REALTIME (the one clock all processes share), pid, state}.
 *
 * Before each request a process takes an flock on the file, reads it and either records the
 * request as in flight (one more fits both windows) or learns how long to wait; it waits with
 * the lock released, then asks again. When the answer has arrived (or the request failed) the
 * entry gets that completion time: CertCentral counts a request when it arrives, which is
 * before, so it never sees more than the budget. An entry in flight counts as "now"; one whose
 * process is gone, or older than RB_INFLIGHT_MAX_S, counts as completed when it is noticed.
 *
 * Damage never blocks: a file of another size or with a bad header is reset (history
 * forgotten), an invalid entry is cleared, an entry in the future (the clock was set back) is
 * moved to now, so no wait exceeds the longer window; the lock is waited for at most
 * RB_LOCK_WAIT_S. Nothing here logs above debug level.
 */
#ifndef PKIO_RATEBUDGET_H
#define PKIO_RATEBUDGET_H

#include <stdbool.h>

#define RB_FILE_NAME      "ratebudget" /* in the state directory */
#define RB_SLOTS          1024         /* entries in the file; counts are capped below this */
#define RB_LOCK_WAIT_S    5.0          /* longest wait for the file lock */
#define RB_INFLIGHT_MAX_S 900.0        /* an entry in flight longer than this is stale */

/* At most burst_n requests per burst_s seconds and long_n per long_s; a count of 0: no limit. */
struct rb_limits {
    unsigned burst_n;
    double burst_s;
    unsigned long_n;
    double long_s;
};

/*
 * The part of lim that one station may use: both counts times share (in (0,1]; anything else
 * counts as 1), rounded down but at least 1, and at most RB_SLOTS - 16. Pure.
 */
void rb_limits_scale(const struct rb_limits *lim, double share, struct rb_limits *ret);

/* One reserved request: its entry and what the entry holds. */
struct rb_ticket {
    bool valid;
    unsigned slot;
    double t;
};

struct rb_station; /* the open file */

/*
 * Open (creating it 0600 if need be) the budget file path. 0, PA_E_IO (cannot open, not a
 * regular file), PA_E_NOMEM. Close with rb_station_close.
 */
int rb_station_open(const char *path, struct rb_station **ret);
/* Close the file; accepts NULL. A ticket still valid stays in flight until it goes stale. */
void rb_station_close(struct rb_station *st);

/*
 * Ask for one request under lim (already scaled). 0 with *wait_s = 0: the request is recorded
 * in flight and *ticket is valid; 0 with *wait_s > 0: nothing recorded, ask again after that
 * many seconds. PA_E_BUSY (lock not obtained within RB_LOCK_WAIT_S), PA_E_IO.
 */
int rb_station_reserve(struct rb_station *st, const struct rb_limits *lim, double *wait_s,
                       struct rb_ticket *ticket);
/*
 * The request of ticket is over (answered or failed): its entry gets the current time. The
 * ticket becomes invalid. 0, or PA_E_BUSY / PA_E_IO (the entry then goes stale by itself).
 */
int rb_station_done(struct rb_station *st, struct rb_ticket *ticket);

#endif
