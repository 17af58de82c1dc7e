/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.h - HTTPS requests (libcurl easy interface), one at a time per connection holder.
 *
 * The only module that includes curl.h. Policy, not options: HTTPS only (also for redirects,
 * which are never followed), peer and host verification always on, TLS 1.2 or newer, connect and
 * total timeouts, a hard cap on the response body. The API key travels only in the X-DC-DEVKEY
 * request header and is wiped from our header buffer after the request.
 *
 * A struct http_conn keeps one libcurl handle, and with it the open connection and the TLS
 * session, from one request to the next: consecutive GETs to the same server reuse the
 * connection instead of a new TCP and TLS handshake each. Every other method (POST, PUT, DELETE)
 * goes out on a new connection, because libcurl silently sends a request again on a fresh
 * connection when a reused one closes before any answer arrives, and a second POST could be a
 * second order. A new connection still resumes the cached TLS session.
 */
#ifndef PKIO_HTTP_H
#define PKIO_HTTP_H

#include <stdbool.h>
#include <stddef.h>

struct secret;

struct http_opts {
    const char *ca_bundle;    /* PEM file of trusted CAs; NULL: the system store */
    double connect_timeout_s; /* <= 0: 30 s */
    double timeout_s;         /* whole transfer; <= 0: 60 s */
    size_t max_body;          /* response body cap in bytes; 0: 4 MiB */
    const char *user_agent;   /* NULL: "pkio-agent/" PKIO_VERSION */
    const char *proxy;        /* api.proxy; NULL: none, and the *_proxy variables are ignored */
};

struct http_response {
    long status;        /* HTTP status; 0 when no response arrived */
    char *content_type; /* Content-Type header or NULL */
    char *body;         /* NUL-terminated (the NUL is not counted in body_len); never NULL on 0 */
    size_t body_len;
    long retry_after_s;   /* Retry-After as libcurl reads it (delay-seconds or HTTP-date), in
                             seconds from now; 0 when absent, unreadable or not in the future */
    long new_connections; /* connections libcurl opened for this request (0: one was reused);
                             kept on failure too */
    bool maybe_sent;      /* on failure: the request may have reached the server */
    bool transient;       /* on failure: worth retrying (not a certificate or local problem) */
    char errmsg[256];     /* on failure: one line, e.g. "connection to 127.0.0.1:443 refused" */
};

struct http_conn; /* one libcurl handle and its connection cache; not shared between threads */

/* Process-wide libcurl set-up; call once before any thread starts. 0 or PA_E_INTERNAL. */
int http_global_init(void);
void http_global_cleanup(void);

/*
 * Perform one request on a new connection. method is "GET", "POST", "PUT" or "DELETE";
 * json_body (may be NULL) is sent with Content-Type: application/json; api_key (may be NULL) as
 * X-DC-DEVKEY.
 *
 * Returns 0 when an HTTP response arrived, whatever its status; ret then owns the strings (free
 * with http_response_clear). On failure ret->errmsg, ret->maybe_sent and ret->transient are set
 * and: PA_E_CA_UNAVAILABLE (DNS, connect, TLS, timeout, dropped connection), PA_E_CA_PROTOCOL (body
 * larger than max_body), PA_E_CONFIG (not an https URL, unreadable CA bundle), PA_E_NOMEM,
 * PA_E_INTERNAL. ret is always initialised, so http_response_clear is safe on every path.
 */
int http_request(const struct http_opts *opts, const char *method, const char *url,
                 const struct secret *api_key, const char *json_body, struct http_response *ret);

/* A connection holder for http_conn_request; 0 or PA_E_NOMEM. Free with http_conn_free. */
int http_conn_new(struct http_conn **ret);
/* Close its connections and free it; accepts NULL. */
void http_conn_free(struct http_conn *conn);

/*
 * http_request on conn's handle: a GET may reuse a connection an earlier request of conn left
 * open (to the same host and port, with the same TLS settings); other methods open a new one.
 * conn NULL: a handle for this request only (what http_request does).
 */
int http_conn_request(struct http_conn *conn, const struct http_opts *opts, const char *method,
                      const char *url, const struct secret *api_key, const char *json_body,
                      struct http_response *ret);

/* Free the strings of a response and reset it; accepts NULL. */
void http_response_clear(struct http_response *resp);

#endif
