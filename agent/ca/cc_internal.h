/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cc_internal.h - what the CertCentral client's files share and nothing else includes: the
 * client's state, the retry policies, and the checks one file makes for another.
 *
 *   certcentral.c the client: URLs, requests, one exchange with retries, the public cc_* calls
 *   cc_policy.c   the retry policy (which failures are retried, backoff with jitter, the
 *                 Retry-After cap), the rate budgets (own ring, station file), status mapping
 *   cc_parse.c    json-c parsing of CertCentral's answers (one strict parse for all of them),
 *                 the PEM bundle check
 */
#ifndef PKIO_CC_INTERNAL_H
#define PKIO_CC_INTERNAL_H

#include "certcentral.h"
#include "http.h"
#include "ratebudget.h"

#include <stdbool.h>
#include <stddef.h>

/* Which failures of a request are sent again. */
enum cc_retry_policy {
    CC_RP_ORDER,       /* the order POST: sent again only when it certainly placed nothing and
                          failed for now (429, or a transient failure before it was sent) */
    CC_RP_IDEMPOTENT,  /* GET: retried on 429, 5xx and network failures */
    CC_RP_UNPROCESSED, /* PUT: retried only when the server cannot have acted (429, 503, not sent)
                        */
};

/* A transport that replaces http_conn_request (unit tests answer without a server). */
typedef int cc_transport_fn(void *arg, const char *method, const char *url, const char *body,
                            struct http_response *resp);

struct cc_client {
    char *base_url; /* without trailing '/' */
    char *ca_bundle;
    char *proxy;
    char *user_agent;
    struct http_opts opts; /* points at the copies above */
    struct secret *key;

    unsigned attempts;
    double base_s;
    double cap_s;
    cc_sleep_fn *sleep_fn;
    void *sleep_arg;
    cc_clock_fn *clock_fn;
    void *clock_arg;

    /* Rate budget: completion times of the most recent requests, a ring. */
    double *ring;
    size_t ring_cap;
    size_t ring_count;
    size_t ring_head;           /* next slot to write */
    struct rb_limits lim;       /* as set (the key's limits) */
    double share;               /* this station's part of them, (0,1] */
    struct rb_limits eff;       /* lim scaled by share: what this client keeps to */
    char *station_path;         /* the station's budget file, or NULL */
    struct rb_station *station; /* opened at the first request */
    bool station_failed;        /* the file cannot be used: own budget only */

    struct http_conn *conn; /* kept open between requests */
    unsigned long connections;

    unsigned page_size;
    unsigned long requests;
    cc_transport_fn *transport; /* NULL: http_conn_request */
    void *transport_arg;

    const struct cc_order_send *order_send; /* set during cc_place_order_ex only */
    unsigned order_sends;                   /* most sends of that order */
    bool order_unjudged; /* a POST went out and not_sent has not been told about it */
    int before_send_rc;
    bool maybe_placed;    /* of the last cc_place_order */
    bool last_maybe_sent; /* of the last failed exchange */
    char last_error[512];
};

/* ---- cc_policy.c ------------------------------------------------------------------------- */

/* The defaults of a new client: retries (6 attempts, 5 s, 60 s), the real sleep and clock, the
 * budget 100 / 5 s and 1000 / 180 s at share 1. 0 or PA_E_NOMEM. */
int cc_policy_init(struct cc_client *c);
/* An answer with this status failed for now (429, 5xx): the exchange judges it, not the caller. */
bool cc_policy_answer_failed(long status);
/* Whether the server may have acted on a request it answered with this failed status. */
bool cc_policy_answer_maybe_sent(long status);
/* Whether a request answered with this failed status is sent again under rp. */
bool cc_policy_retry_answer(enum cc_retry_policy rp, long status);
/* Whether a request that got no answer (a transient network failure) is sent again under rp. */
bool cc_policy_retry_failure(enum cc_retry_policy rp, bool maybe_sent);
/* Most attempts of a request under rp: the client's, and for an order also its most sends. */
unsigned cc_policy_attempts(const struct cc_client *c, enum cc_retry_policy rp);
/* Seconds to wait before attempt n (>= 1): the Retry-After (when > 0) capped, else backoff. */
double cc_policy_delay(const struct cc_client *c, unsigned attempt, long retry_after_s);
/* Unit tests only: send every request through fn (NULL restores HTTPS). */
void cc_client_set_transport(struct cc_client *c, cc_transport_fn *fn, void *arg);
/* Sleep until one more request fits both rate budgets; the station's then counts it in *tk.
 * false when a stop (SIGTERM/SIGINT) came first: nothing may be sent then. */
bool cc_budget_wait(struct cc_client *c, struct rb_ticket *tk);
/* The request of tk is over: record its completion in both budgets. */
void cc_budget_record(struct cc_client *c, struct rb_ticket *tk);
/* The request of tk was not sent after all: give its station place back. */
void cc_budget_release(struct cc_client *c, struct rb_ticket *tk);

/* ---- cc_parse.c -------------------------------------------------------------------------- */

/* Reason text of a parser failure (the public parsers pass none). */
struct cc_perr {
    char msg[160];
};

/* Control characters (C0, DEL) become '?'. */
void cc_sanitize(char *s);
/* Copy a string (NULL: "") into a fixed buffer, truncating. */
void cc_copy_str(char *dst, size_t dstlen, const char *src);
/* Whether d is a yyyy-mm-dd date (digits and dashes only). */
bool cc_valid_date(const char *d);

/* cc_parse_order_result, cc_parse_order_info, cc_parse_order_list with the reason in pe. */
int cc_parse_order_result_ex(const char *body, size_t len, struct cc_order_result *ret,
                             struct cc_perr *pe);
int cc_parse_order_info_ex(const char *body, size_t len, struct cc_order_info *ret,
                           struct cc_perr *pe);
int cc_parse_order_list_ex(const char *body, size_t len, struct cc_order_info **ret, size_t *ret_n,
                           long *ret_total, struct cc_perr *pe);
/*
 * The answer to a revoke PUT: true when it is a request object (id, status other than
 * "approved") that now waits for an approver; ret then has pending, request_id and the status
 * (truncated), status[0..status_len) the status in full. An unreadable answer: false.
 */
bool cc_parse_revoke_pending(const char *body, size_t len, struct cc_revoke_result *ret,
                             char *status, size_t status_len);

#endif
