/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cc_policy.c - the CertCentral client's policy: which failed requests are sent again (by retry
 * policy: GET, PUT, and the order POST only when it certainly placed nothing), how long to wait
 * before the next attempt (bounded exponential backoff with jitter from the kernel, or the
 * server's Retry-After capped), the rate budgets a request waits for (this client's own ring, and
 * the station's shared file through agent/ca/ratebudget.h), the sleep and clock hooks, and the
 * mapping of order statuses.
 */
#include "cc_internal.h"

#include "i18n.h"
#include "log.h"
#include "pa_err.h"
#include "stop.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ---------------------------------------------------------------------------------------- */
/* status mapping, backoff */

enum cc_status cc_map_status(const char *status, char *reason, size_t reason_len)
{
    static const struct {
        const char *status;
        enum cc_status st;
        const char *reason;
    } map[] = {
        {"issued", CC_ST_ISSUED, N_("issued")},
        {"pending", CC_ST_WAITING, N_("pending: DigiCert is processing the order (validation)")},
        {"processing", CC_ST_WAITING, N_("processing at DigiCert")},
        {"needs_approval", CC_ST_WAITING, N_("needs approval in CertCentral")},
        {"waiting_pickup", CC_ST_WAITING, N_("waiting for pickup")},
        {"reissue_pending", CC_ST_WAITING, N_("a reissue is pending at DigiCert")},
        {"submitted", CC_ST_WAITING, N_("submitted, awaiting approval in CertCentral")},
        {"approved", CC_ST_WAITING, N_("approved, certificate not issued yet")},
        {"rejected", CC_ST_FAILED, N_("rejected by DigiCert")},
        {"denied", CC_ST_FAILED, N_("denied in CertCentral")},
        {"canceled", CC_ST_FAILED, N_("canceled")},
        {"revoked", CC_ST_FAILED, N_("certificate revoked")},
        {"expired", CC_ST_FAILED, N_("expired")},
    };

    for (size_t i = 0; status && i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(status, map[i].status) == 0) {
            if (reason)
                cc_copy_str(reason, reason_len, map[i].reason);
            return map[i].st;
        }
    }
    if (reason && reason_len) {
        (void)snprintf(reason, reason_len, "unknown order status \"%.40s\"",
                       status ? status : "(none)");
        cc_sanitize(reason);
    }
    return CC_ST_UNKNOWN;
}

double cc_backoff_delay(unsigned attempt, double base_s, double cap_s, double rnd01)
{
    double hi;

    if (attempt == 0 || !(base_s > 0) || !(cap_s > 0))
        return 0;
    if (cap_s < base_s)
        return cap_s;
    if (!(rnd01 >= 0))
        rnd01 = 0;
    if (rnd01 > 1)
        rnd01 = 1;
    hi = base_s;
    for (unsigned i = 1; i < attempt && hi < cap_s; i++)
        hi *= 2;
    if (hi > cap_s)
        hi = cap_s;
    return base_s + rnd01 * (hi - base_s);
}

/* Uniform in [0,1) from the kernel; 0.5 if that fails. */
static double random01(void)
{
    uint64_t v;

    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
        return 0.5;
    return (double)(v >> 11) * (1.0 / 9007199254740992.0);
}

/* ---------------------------------------------------------------------------------------- */
/* which failures are retried, and after how long */

bool cc_policy_answer_failed(long status)
{
    return status == 429 || status >= 500;
}

bool cc_policy_answer_maybe_sent(long status)
{
    /* DigiCert refuses rate-limited requests before acting on them. */
    return status != 429;
}

bool cc_policy_retry_answer(enum cc_retry_policy rp, long status)
{
    switch (rp) {
    case CC_RP_IDEMPOTENT:
        return true;
    case CC_RP_UNPROCESSED:
        return status == 429 || status == 503;
    case CC_RP_ORDER:
        /* only an answer that says the order certainly was not taken (a 429); a 503 or another
         * 5xx may come after CertCentral acted on it */
        return !cc_policy_answer_maybe_sent(status);
    }
    return false;
}

bool cc_policy_retry_failure(enum cc_retry_policy rp, bool maybe_sent)
{
    /* CC_RP_UNPROCESSED and CC_RP_ORDER: only what never reached the server (DNS, connect) */
    return rp == CC_RP_IDEMPOTENT || !maybe_sent;
}

unsigned cc_policy_attempts(const struct cc_client *c, enum cc_retry_policy rp)
{
    if (rp == CC_RP_ORDER && c->order_sends < c->attempts)
        return c->order_sends;
    return c->attempts;
}

double cc_policy_delay(const struct cc_client *c, unsigned attempt, long retry_after_s)
{
    if (retry_after_s > 0)
        return (double)retry_after_s < c->cap_s ? (double)retry_after_s : c->cap_s;
    return cc_backoff_delay(attempt, c->base_s, c->cap_s, random01());
}

/* ---------------------------------------------------------------------------------------- */
/* the hooks and the settings */

static void default_sleep(double seconds, void *arg)
{
    (void)arg;
    (void)stop_sleep(seconds); /* ends early on SIGTERM/SIGINT; the exchange then gives up */
}

static double default_clock(void *arg)
{
    struct timespec ts;

    (void)arg;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
        return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int cc_policy_init(struct cc_client *c)
{
    c->attempts = 6;
    c->base_s = 5;
    c->cap_s = 60;
    c->sleep_fn = default_sleep;
    c->clock_fn = default_clock;
    c->share = 1;
    return cc_client_set_budget(c, 100, 5.0, 1000, 180.0);
}

void cc_client_set_retry(struct cc_client *c, unsigned attempts, double base_s, double cap_s)
{
    c->attempts = attempts ? attempts : 1;
    c->base_s = base_s > 0 ? base_s : 0;
    c->cap_s = cap_s > 0 ? cap_s : 0;
}

void cc_client_set_sleep(struct cc_client *c, cc_sleep_fn *fn, void *arg)
{
    c->sleep_fn = fn ? fn : default_sleep;
    c->sleep_arg = fn ? arg : NULL;
}

void cc_client_set_transport(struct cc_client *c, cc_transport_fn *fn, void *arg)
{
    c->transport = fn;
    c->transport_arg = fn ? arg : NULL;
}

void cc_client_set_clock(struct cc_client *c, cc_clock_fn *fn, void *arg)
{
    c->clock_fn = fn ? fn : default_clock;
    c->clock_arg = fn ? arg : NULL;
}

int cc_client_set_budget(struct cc_client *c, unsigned burst_n, double burst_s, unsigned long_n,
                         double long_s)
{
    size_t cap = burst_n > long_n ? burst_n : long_n;
    double *ring;

    if (cap == 0)
        cap = 1;
    ring = calloc(cap, sizeof(*ring));
    if (!ring)
        return PA_E_NOMEM;
    free(c->ring);
    c->ring = ring;
    c->ring_cap = cap;
    c->ring_count = 0;
    c->ring_head = 0;
    c->lim = (struct rb_limits){burst_n, burst_s, long_n, long_s};
    rb_limits_scale(&c->lim, c->share, &c->eff);
    return 0;
}

int cc_client_set_station_budget(struct cc_client *c, const char *state_dir, double share)
{
    char *path = NULL;

    if (!(share > 0 && share <= 1))
        return PA_E_CONFIG;
    if (state_dir && asprintf(&path, "%s/%s", state_dir, RB_FILE_NAME) < 0)
        return PA_E_NOMEM;
    rb_station_close(c->station);
    c->station = NULL;
    c->station_failed = false;
    free(c->station_path);
    c->station_path = path;
    c->share = share;
    rb_limits_scale(&c->lim, c->share, &c->eff);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* the rate budgets */

/* The k-th most recent request completion time (k >= 1, k <= ring_count). */
static double ring_kth(const struct cc_client *c, size_t k)
{
    return c->ring[(c->ring_head + c->ring_cap - k) % c->ring_cap];
}

/* Seconds until one more request fits this process's own windows (<= 0: now). */
static double local_wait(const struct cc_client *c)
{
    double now = c->clock_fn(c->clock_arg), wait = 0;

    if (c->eff.burst_n && c->ring_count >= c->eff.burst_n) {
        double w = ring_kth(c, c->eff.burst_n) + c->eff.burst_s - now;

        if (w > wait)
            wait = w;
    }
    if (c->eff.long_n && c->ring_count >= c->eff.long_n) {
        double w = ring_kth(c, c->eff.long_n) + c->eff.long_s - now;

        if (w > wait)
            wait = w;
    }
    return wait;
}

/*
 * Seconds until one more request fits the station's budget; 0 when it was reserved in *tk (or
 * the file cannot be used: then this request keeps to the client's own budget only).
 */
static double station_wait(struct cc_client *c, struct rb_ticket *tk)
{
    double wait = 0;
    int r;

    if (!c->station_path || c->station_failed)
        return 0;
    if (!c->station) {
        r = rb_station_open(c->station_path, &c->station);
        if (r < 0) {
            log_debug("certcentral: station rate budget %s unusable (%s); "
                      "keeping to this process's budget",
                      c->station_path, pa_err_str(r));
            c->station_failed = true;
            return 0;
        }
    }
    r = rb_station_reserve(c->station, &c->eff, &wait, tk);
    if (r < 0) {
        log_debug("certcentral: station rate budget: %s; this request keeps to its own budget",
                  pa_err_str(r));
        return 0;
    }
    return wait;
}

bool cc_budget_wait(struct cc_client *c, struct rb_ticket *tk)
{
    for (;;) {
        double wait;

        if (stop_requested())
            return false;
        wait = local_wait(c);

        if (!(wait > 0))
            wait = station_wait(c, tk);
        if (!(wait > 0))
            return true;
        log_debug("certcentral: rate budget: waiting %.3f s", wait);
        c->sleep_fn(wait + 0.001, c->sleep_arg);
    }
}

void cc_budget_record(struct cc_client *c, struct rb_ticket *tk)
{
    c->ring[c->ring_head] = c->clock_fn(c->clock_arg);
    c->ring_head = (c->ring_head + 1) % c->ring_cap;
    if (c->ring_count < c->ring_cap)
        c->ring_count++;
    cc_budget_release(c, tk);
}

void cc_budget_release(struct cc_client *c, struct rb_ticket *tk)
{
    if (c->station && tk->valid)
        (void)rb_station_done(c->station, tk);
}
