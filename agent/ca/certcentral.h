/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certcentral.h - the DigiCert CertCentral Services API v2 calls the agent needs.
 *
 * Every call checks the HTTP status, then the Content-Type, then parses the body with json-c
 * (explicit length, depth limit, every field type-checked) into our own structs. Errors come
 * back as PA_E_* codes; cc_last_error() holds one line for the user (never the API key).
 *
 * Retries, one policy for every call: GETs are retried on 429, 5xx and network failures with
 * bounded exponential backoff (jitter from the kernel's CSPRNG, so processes sharing a key never
 * retry in step; a Retry-After that libcurl reads as a delay in the future is honoured, capped);
 * PUTs only when the server cannot have acted on them (429, 503, or a failure before the request
 * was sent); the order POST only when it certainly placed nothing (429, or a network failure
 * before the request was sent), at most CC_ORDER_SENDS times in all. 401/403 are final. Every
 * wait (backoff, rate budget) is the sleep hook, by default one that a SIGTERM/SIGINT ends
 * (agent/base/stop.h); after a stop nothing more is sent.
 * A client-side budget keeps us under DigiCert's rate limits (100 requests / 5 s and
 * 1000 requests / 3 min per key, rolling) by sleeping before a request that would exceed them:
 * the client's own, and with cc_client_set_station_budget the one every process of the station
 * shares (agent/ca/ratebudget.h).
 * The client keeps one HTTPS connection open between its requests (agent/ca/http.h): one TLS
 * handshake per process rather than per request; the order POST and PUTs open a new one.
 */
#ifndef PKIO_CERTCENTRAL_H
#define PKIO_CERTCENTRAL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct http_opts;
struct secret;

/* Production base URL of CertCentral Europe (the only instance with PKIo products). */
#define CC_BASE_URL_EU "https://certcentral.digicert.eu/services/v2"

struct cc_client; /* opaque: base URL, HTTP options, API key, retry and rate-budget state */

/* Sleep hook (seconds); tests replace it. arg is passed through. */
typedef void cc_sleep_fn(double seconds, void *arg);
/* Monotonic clock hook (seconds); tests replace it together with the sleep hook. */
typedef double cc_clock_fn(void *arg);

/*
 * Create a client. base_url must be https (e.g. CC_BASE_URL_EU; a trailing '/' is dropped);
 * api_key is copied into a secret owned by the client; opts (may be NULL) is copied, with its
 * strings. Retry defaults: 6 attempts, base 5 s, cap 60 s. Returns 0, PA_E_CONFIG (bad URL or
 * empty key) or PA_E_NOMEM. Free with cc_client_free.
 */
int cc_client_new(const char *base_url, const struct secret *api_key, const struct http_opts *opts,
                  struct cc_client **ret);
/* Wipe the key and free everything; accepts NULL. */
void cc_client_free(struct cc_client *c);

/* Retry policy for GET/PUT: total attempts (>= 1), backoff base and cap in seconds. */
void cc_client_set_retry(struct cc_client *c, unsigned attempts, double base_s, double cap_s);
/* Replace the sleep function (NULL restores nanosleep). */
void cc_client_set_sleep(struct cc_client *c, cc_sleep_fn *fn, void *arg);
/* Replace the monotonic clock (NULL restores CLOCK_MONOTONIC). */
void cc_client_set_clock(struct cc_client *c, cc_clock_fn *fn, void *arg);
/*
 * Rate budget: at most burst_n requests per burst_s seconds and long_n per long_s seconds
 * (defaults 100 / 5 s and 1000 / 180 s), both counts scaled by the station's share (see
 * cc_client_set_station_budget). A request is counted when its answer arrived, so the server,
 * which counts on arrival, never sees more than the budget. Returns 0 or PA_E_NOMEM.
 */
int cc_client_set_budget(struct cc_client *c, unsigned burst_n, double burst_s, unsigned long_n,
                         double long_s);
/*
 * Share the rate budget with every process of the station: before each request the client also
 * reserves a place in STATE_DIR/ratebudget (agent/ca/ratebudget.h; created 0600, flock), waiting
 * (with the sleep hook) until one more request fits the station's windows. share, in (0,1], is
 * this station's part of the key's limits when several stations use one key (api.rate_share):
 * it scales both counts of the budget (rounded down, at least 1), the client's own too.
 * state_dir NULL: only the share applies. The file is opened at the first request; when it cannot
 * be used (no such directory, not writable, locked for RB_LOCK_WAIT_S), the client keeps to its
 * own budget (said at debug level). Returns 0, PA_E_CONFIG (share outside (0,1]) or PA_E_NOMEM.
 */
int cc_client_set_station_budget(struct cc_client *c, const char *state_dir, double share);
/* Orders requested per page by cc_list_orders (default 1000, DigiCert's maximum). */
void cc_client_set_page_size(struct cc_client *c, unsigned n);
/* Number of HTTP requests this client has started (tests compare it with the server's log). */
unsigned long cc_client_requests(const struct cc_client *c);
/* Number of connections (TCP + TLS handshakes) libcurl opened for this client's requests. */
unsigned long cc_client_connections(const struct cc_client *c);

/*
 * One line describing the last failure ("request_limit_exceeded: Service unavailable, ...",
 * "HTTP 502 from https://.../order/certificate/12 (text/html)"); "" if none. Never contains the
 * API key. Valid until the next call on c.
 */
const char *cc_last_error(const struct cc_client *c);

/*
 * After a failed cc_place_order(_ex): true when the POST may have reached CertCentral (answer lost,
 * timeout, 5xx, unreadable answer), so the caller must look the order up before ordering again;
 * false when it certainly was not placed (DNS, connect or TLS failure, 4xx, 429).
 */
bool cc_order_maybe_placed(const struct cc_client *c);

enum cc_status { CC_ST_ISSUED, CC_ST_WAITING, CC_ST_FAILED, CC_ST_UNKNOWN };

/* The certificate holder as order info shows it (top-level "individual", else
 * certificate.individual). Strings are NULL when absent. */
struct cc_individual {
    long id; /* CertCentral's individual id, 0 when not shown */
    char *first_name, *last_name, *email;
};

struct cc_order_info {
    long id;
    char status[32]; /* CertCentral's order status, truncated to fit */
    enum cc_status st;
    long certificate_id; /* certificate.id, 0 if none yet */
    char *csr;           /* certificate.csr if the API returns it, else NULL */
    char *serial_number; /* NULL if absent */
    char *common_name;   /* NULL if absent */
    char *date_created;  /* order date_created (or certificate.date_created); NULL if absent */
    char *product;       /* product.name_id; NULL if absent */
    char reason[160];    /* for humans: "needs approval in CertCentral", ... */
    struct cc_individual individual; /* zero when the answer has none */
    char valid_till[11];             /* certificate.valid_till (yyyy-mm-dd), "" if absent */
    long revoke_request_id;          /* newest requests[] entry of type "revoke" (by date, then
                                        id, then position), 0 if none */
    char revoke_request_status[16];  /* its status (pending, submitted, approved, rejected) */
};

struct cc_order_result {
    long id;
    long certificate_id;     /* 0 if none */
    char request_status[32]; /* requests[0].status, "" if none */
};

/*
 * Called right before each send of the order POST (after any rate-budget wait), so the caller can
 * record the attempt durably at the moment it really happens. A negative return stops the POST
 * (nothing is sent; cc_place_order_ex returns that value and cc_order_maybe_placed() is false).
 */
typedef int cc_before_send_fn(void *arg);

/*
 * Called after a send of the order POST (one that before_send let go) that certainly placed
 * nothing (429, 4xx, 401/403, or no connection made), once per such send, so the caller can
 * record "not placed". why is the reason (cc_last_error()). retry_in_s >= 0: the client will
 * wait that long (stop-aware) and send again; a negative return refuses that, and
 * cc_place_order_ex returns the failure of the send. retry_in_s < 0: no send follows (the
 * return value is ignored).
 */
typedef int cc_not_sent_fn(void *arg, const char *why, double retry_in_s);

/* Most sends of one order: the first and three more (fewer when the client's attempts are). */
#define CC_ORDER_SENDS 4

struct cc_order_send {
    cc_before_send_fn *before_send; /* may be NULL */
    cc_not_sent_fn *not_sent;       /* may be NULL */
    void *arg;                      /* passed to both */
    unsigned max_sends;             /* 0: CC_ORDER_SENDS; 1: never sent again */
};

/*
 * Place an order: POST json_body to /order/certificate/<product> (product is [a-z0-9_]+), sent
 * again only while it certainly was not placed and failed for now (see above). send may be NULL
 * (no hooks, CC_ORDER_SENDS). Returns 0 (ret filled), PA_E_CA_REJECTED (4xx; cc_last_error has
 * "code: message"), PA_E_CA_AUTH, PA_E_CA_UNAVAILABLE (network, 429, 5xx, or a stop before a
 * send), PA_E_CA_PROTOCOL (2xx with an unreadable answer), PA_E_CONFIG, PA_E_NOMEM, or the
 * negative value before_send returned. On failure see cc_order_maybe_placed().
 */
int cc_place_order_ex(struct cc_client *c, const char *product, const char *json_body,
                      const struct cc_order_send *send, struct cc_order_result *ret);

/*
 * cc_place_order_ex with before_send and arg, no not_sent, and max_sends 1: ONE POST, never
 * sent again (the `order` command: a person decides).
 */
int cc_place_order(struct cc_client *c, const char *product, const char *json_body,
                   cc_before_send_fn *before_send, void *arg, struct cc_order_result *ret);

/*
 * GET /order/certificate/<id>. 0 or PA_E_*. ret is zeroed first, so cc_order_info_clear is safe
 * on every path; on success it owns strings.
 */
int cc_order_info(struct cc_client *c, long order_id, struct cc_order_info *ret);
/* Free the strings of info and zero it; accepts NULL. */
void cc_order_info_clear(struct cc_order_info *info);
/* Free an array returned by cc_list_orders / cc_parse_order_list; accepts NULL. */
void cc_order_list_free(struct cc_order_info *list, size_t n);

/*
 * List orders of product (NULL: all) created on or after created_since (yyyy-mm-dd, or NULL),
 * following the pages. *ret is a malloc'd array (cc_order_list_free), possibly empty (NULL, 0).
 */
int cc_list_orders(struct cc_client *c, const char *product, const char *created_since,
                   struct cc_order_info **ret, size_t *ret_n);

/*
 * Download a certificate as PEM (format "pem_noroot", "pem_all" or "pem_nointermediate").
 * The text is checked to hold only CERTIFICATE blocks; *ret_pem is malloc'd and NUL-terminated
 * (caller frees), *ret_len excludes the NUL.
 */
int cc_download(struct cc_client *c, long certificate_id, const char *format, char **ret_pem,
                size_t *ret_len);

/* Cancel a pending order (PUT .../status {"status":"canceled","note":note}). 0 or PA_E_*. */
int cc_cancel_order(struct cc_client *c, long order_id, const char *note);

struct cc_revoke_result {
    bool pending;            /* a revocation request was created and awaits an approver */
    long request_id;         /* that request's id, 0 when revoked at once */
    char request_status[16]; /* its status as answered, "" when revoked at once */
};

/*
 * Revoke one certificate (PUT /certificate/<id>/revoke). reason (e.g. "superseded") and comments
 * may be NULL; ret (may be NULL) says whether it was revoked at once or a request now waits.
 * Returns 0 in both cases; a pending request is also described in cc_last_error() ("revocation
 * request N awaits approval in CertCentral"). Not retried once it may have reached CertCentral:
 * the caller settles a lost answer by reading the order (cc_order_info: status "revoked", or
 * revoke_request_id) before sending again.
 */
int cc_revoke_certificate(struct cc_client *c, long certificate_id, const char *reason,
                          const char *comments, struct cc_revoke_result *ret);

/*
 * The order that holds certificate certificate_id: the order list (of product, NULL = all
 * products, all dates) is searched for certificate.id, page by page, stopping at the first match.
 * 0 with *ret_order_id set; PA_E_CA_REJECTED with cc_last_error() "no order holds certificate N"
 * when none does; otherwise the PA_E_* of the list requests (as cc_list_orders).
 */
int cc_find_order_by_certificate(struct cc_client *c, const char *product, long certificate_id,
                                 long *ret_order_id);

/*
 * One cheap authenticated GET (the order list with limit=1) to prove before anything is spent
 * that CertCentral is reachable and accepts the API key. 0 or the PA_E_* of that GET.
 */
int cc_ping(struct cc_client *c);

/*
 * Map an order status: issued -> ISSUED; pending, processing, needs_approval, waiting_pickup,
 * reissue_pending, submitted, approved (no certificate yet) -> WAITING; rejected, denied,
 * canceled, revoked, expired -> FAILED; anything else (or NULL) -> UNKNOWN. reason (may be NULL)
 * receives a human sentence, e.g. "needs approval in CertCentral".
 */
enum cc_status cc_map_status(const char *status, char *reason, size_t reason_len);

/*
 * Delay in seconds before attempt n (0-based) of a retried request: 0 for n = 0; otherwise a
 * value drawn uniformly (rnd01 in [0,1)) between base_s and min(cap_s, base_s * 2^(n-1)), so
 * the first retry waits exactly base_s and no wait exceeds cap_s. Pure.
 */
double cc_backoff_delay(unsigned attempt, double base_s, double cap_s, double rnd01);

/* Pure parsers (fuzzed). Bodies need not be NUL-terminated. 0 or PA_E_CA_PROTOCOL/PA_E_NOMEM. */
/* {"errors":[{"code","message"},...]} -> "code: message; code2: message2" (sanitised). */
int cc_parse_errors(const char *body, size_t len, char *msg, size_t msglen);
/* Answer to the order POST: id, certificate_id, requests[0].status. */
int cc_parse_order_result(const char *body, size_t len, struct cc_order_result *ret);
/* Order info; ret owns strings on success and is zeroed on failure. */
int cc_parse_order_info(const char *body, size_t len, struct cc_order_info *ret);
/* One page of the order list: {"orders":[...],"page":{"total":N,...}}; ret_total may be NULL. */
int cc_parse_order_list(const char *body, size_t len, struct cc_order_info **ret, size_t *ret_n,
                        long *ret_total);
/* 0 if pem holds one or more CERTIFICATE blocks and nothing else, else PA_E_CA_PROTOCOL. */
int cc_check_pem_certs(const char *pem, size_t len);

#endif
