/* SPDX-License-Identifier: Apache-2.0 */
/*
 * https_stub.h - an in-process CertCentral stub for unit tests: an OpenSSL HTTPS server on
 * 127.0.0.1 (ephemeral port) in a thread, with a throwaway self-signed TLS certificate and a
 * test CA (root) that signs the CSRs it is sent. It knows just enough of the Services API v2
 * for an enrollment:
 *
 *   POST /services/v2/order/certificate/<product>        place an order (counted)
 *   GET  /services/v2/order/certificate/<id>             order info (issues on the Nth poll)
 *   GET  /services/v2/order/certificate?limit=..&...     order list (product, date filters)
 *   GET  /services/v2/certificate/<id>/download/format/F the leaf as PEM
 *   PUT  /services/v2/certificate/<id>/revoke            revoke (204)
 *   PUT  /services/v2/order/certificate/<id>/status      cancel (204)
 *
 * Every answer closes the connection (Connection: close), so one thread serves everything.
 * Tests script faults: for the Nth POST (1-based) or the Nth request of any kind.
 */
#ifndef PKIO_TEST_HTTPS_STUB_H
#define PKIO_TEST_HTTPS_STUB_H

#include <stdbool.h>
#include <stddef.h>

enum stub_action {
    STUB_OK = 0,
    STUB_429,        /* 429 request_limit_exceeded, nothing done */
    STUB_503,        /* 503, nothing done */
    STUB_503_PLACED, /* POST: the order is placed, the answer is a 503 */
    STUB_GARBAGE,    /* POST: placed, 201 with a body that is not JSON */
    STUB_TRUNCATED,  /* POST: placed, 201 with the JSON cut in half */
    STUB_LOST,       /* POST: placed, the connection is closed without an answer */
    STUB_TIMEOUT,    /* POST: placed, no answer for stub_timeout_s seconds, then closed */
    STUB_DROP,       /* the connection is closed after reading the request, nothing done */
};

struct stub;

/*
 * Make the CA (root key and certificate), the TLS certificate, and start serving. dir: a
 * directory the stub writes tls.pem (the client's CA bundle), root.pem (the trust anchors)
 * and key (the API key file, 0600) into. 0 or -1.
 */
int stub_start(const char *dir, struct stub **ret);
void stub_stop(struct stub *s);

/* https://127.0.0.1:PORT/services/v2 */
const char *stub_url(const struct stub *s);

/* Forget orders, counters and faults (between tests); issue on the first poll. */
void stub_reset(struct stub *s);
/* Issue an order's certificate on its Nth order-info GET (1 = the first poll; 0 = never). */
void stub_issue_on_poll(struct stub *s, unsigned n);
/* The nth POST (1-based) gets action a. */
void stub_fault_post(struct stub *s, unsigned n, enum stub_action a);
/* The nth order-info GET (1-based, over all orders) gets action a: STUB_429, STUB_503,
 * STUB_DROP (nothing done), STUB_GARBAGE or STUB_TRUNCATED (200, cut JSON). The poll is not
 * counted towards issuing. */
void stub_fault_poll(struct stub *s, unsigned n, enum stub_action a);
/* The nth request of any kind (1-based) gets action a (STUB_429, STUB_503, STUB_DROP). */
void stub_fault_request(struct stub *s, unsigned n, enum stub_action a);
/* Seconds STUB_TIMEOUT holds the connection (default 3). */
void stub_set_timeout(struct stub *s, double seconds);

/* Counters. */
unsigned stub_posts(struct stub *s);    /* order POSTs received */
unsigned stub_orders(struct stub *s);   /* orders that exist */
unsigned stub_requests(struct stub *s); /* requests of any kind */
unsigned stub_revokes(struct stub *s);  /* revoke PUTs received */
/* The id of the nth order (1-based), its certificate id; 0 if none. */
long stub_order_id(struct stub *s, unsigned n);
long stub_certificate_id(struct stub *s, unsigned n);
/* The status of the order with this id ("" when unknown), copied into buf. */
void stub_order_status(struct stub *s, long order_id, char *buf, size_t len);

#endif
