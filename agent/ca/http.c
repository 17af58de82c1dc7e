/* SPDX-License-Identifier: Apache-2.0 */
#include "http.h"

#include "i18n.h"
#include "log.h"
#include "pa_err.h"
#include "secret.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HTTP_DEFAULT_CONNECT_S 30.0
#define HTTP_DEFAULT_TIMEOUT_S 60.0
#define HTTP_DEFAULT_MAX_BODY  ((size_t)4 * 1024 * 1024)
#define HTTP_KEY_HEADER        "X-DC-DEVKEY: "

struct http_conn {
    CURL *h; /* created at the first request */
};

struct body_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
    int too_big;
};

int http_global_init(void)
{
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);

    if (rc != CURLE_OK) {
        log_debug("http: curl_global_init: %s", curl_easy_strerror(rc));
        return PA_E_INTERNAL;
    }
    return 0;
}

void http_global_cleanup(void)
{
    curl_global_cleanup();
}

int http_conn_new(struct http_conn **ret)
{
    struct http_conn *conn = calloc(1, sizeof(*conn));

    if (!conn)
        return PA_E_NOMEM;
    *ret = conn;
    return 0;
}

void http_conn_free(struct http_conn *conn)
{
    if (!conn)
        return;
    if (conn->h)
        curl_easy_cleanup(conn->h);
    free(conn);
}

void http_response_clear(struct http_response *resp)
{
    if (!resp)
        return;
    free(resp->content_type);
    free(resp->body);
    memset(resp, 0, sizeof(*resp));
}

/* Append to the body buffer; refuse (and remember why) beyond the cap. */
static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct body_buf *b = userdata;
    size_t n = size * nmemb;

    if (n > b->max - b->len) {
        b->too_big = 1;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *p;

        while (cap < b->len + n + 1)
            cap = cap > SIZE_MAX / 2 ? b->len + n + 1 : cap * 2;
        if (cap > b->max + 1)
            cap = b->max + 1;
        p = realloc(b->data, cap);
        if (!p)
            return 0;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* printf into ret->errmsg; control characters from library text become '?'. */
__attribute__((format(printf, 2, 3))) static void set_err(struct http_response *ret,
                                                          const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(ret->errmsg, sizeof(ret->errmsg), fmt, ap);
    va_end(ap);
    for (char *p = ret->errmsg; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
            *p = '?';
}

/* curl's error buffer if it says something, else the generic text for rc. */
static const char *detail(const char *errbuf, CURLcode rc)
{
    return errbuf[0] ? errbuf : curl_easy_strerror(rc);
}

static long to_ms(double s, double dflt)
{
    if (!(s > 0))
        s = dflt;
    if (s > 86400.0)
        s = 86400.0;
    return (long)(s * 1000.0 + 0.5);
}

/*
 * Split url into host and port for messages and refuse anything but https. Returns 0,
 * PA_E_CONFIG or PA_E_NOMEM; *ret_host is malloc'd (caller frees).
 */
static int url_host(const char *url, char **ret_host, long *ret_port, struct http_response *ret)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    int r;

    if (!u)
        return PA_E_NOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        set_err(ret, _("malformed URL %s"), url);
        r = PA_E_CONFIG;
        goto out;
    }
    if (strcasecmp(scheme, "https") != 0) {
        set_err(ret, _("refusing %s URL %s: HTTPS only"), scheme, url);
        r = PA_E_CONFIG;
        goto out;
    }
    {
        char *end = NULL;

        errno = 0;
        *ret_port = strtol(port, &end, 10);
        if (errno != 0 || end == port || *end != '\0' || *ret_port < 0 || *ret_port > 65535) {
            set_err(ret, _("malformed port in URL %s"), url);
            r = PA_E_CONFIG;
            goto out;
        }
    }
    *ret_host = strdup(host);
    if (!*ret_host) {
        r = PA_E_NOMEM;
        goto out;
    }
    r = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return r;
}

/*
 * Build the X-DC-DEVKEY header into list. The temporary buffer is wiped here; the copy that
 * curl_slist_append makes is wiped by free_headers.
 */
static int add_key_header(struct curl_slist **list, const struct secret *key,
                          struct http_response *ret)
{
    size_t hlen = strlen(HTTP_KEY_HEADER);
    struct curl_slist *l;
    char *buf;

    for (size_t i = 0; i < key->len; i++) {
        unsigned char c = (unsigned char)key->buf[i];

        if (c < 0x21 || c == 0x7f) {
            set_err(ret, _("the API key contains spaces or control characters"));
            return PA_E_CONFIG;
        }
    }
    buf = malloc(hlen + key->len + 1);
    if (!buf)
        return PA_E_NOMEM;
    memcpy(buf, HTTP_KEY_HEADER, hlen);
    memcpy(buf + hlen, key->buf, key->len);
    buf[hlen + key->len] = '\0';
    l = curl_slist_append(*list, buf);
    secret_wipe(buf, hlen + key->len);
    free(buf);
    if (!l)
        return PA_E_NOMEM;
    *list = l;
    return 0;
}

/* Wipe every header line that carries the API key, then free the list. */
static void free_headers(struct curl_slist *list)
{
    size_t hlen = strlen(HTTP_KEY_HEADER);

    for (struct curl_slist *l = list; l; l = l->next)
        if (l->data && strncasecmp(l->data, HTTP_KEY_HEADER, hlen) == 0)
            secret_wipe(l->data, strlen(l->data));
    curl_slist_free_all(list);
}

static int append_header(struct curl_slist **list, const char *h)
{
    struct curl_slist *l = curl_slist_append(*list, h);

    if (!l)
        return PA_E_NOMEM;
    *list = l;
    return 0;
}

/* What a failed transfer is judged by. */
struct failure {
    CURLcode rc;
    const char *errbuf; /* curl's error buffer */
    const char *host;
    long port;
    const struct http_opts *opts;
    size_t max_body;
    int too_big; /* the body went over max_body */
};

/* A failure on our side or of the configuration: its PA_E_* code, or 1 when rc is not one. */
static int map_local_error(const struct failure *f, struct http_response *ret)
{
    switch (f->rc) {
    case CURLE_OUT_OF_MEMORY:
        set_err(ret, _("out of memory"));
        return PA_E_NOMEM;
    case CURLE_UNSUPPORTED_PROTOCOL:
        set_err(ret, _("refusing non-HTTPS URL"));
        return PA_E_CONFIG;
    case CURLE_URL_MALFORMAT:
        set_err(ret, _("malformed URL"));
        return PA_E_CONFIG;
    case CURLE_SSL_CACERT_BADFILE:
        set_err(ret, _("cannot read CA bundle %s"),
                f->opts->ca_bundle ? f->opts->ca_bundle : _("(system)"));
        return PA_E_CONFIG;
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
        if (f->too_big || f->rc == CURLE_FILESIZE_EXCEEDED) {
            set_err(ret, _("response larger than %zu bytes"), f->max_body);
            return PA_E_CA_PROTOCOL;
        }
        set_err(ret, _("out of memory"));
        return PA_E_NOMEM;
    default:
        return 1;
    }
}

/* A failure to reach the server, or of the connection: a PA_E_* code and a one-line reason. */
static int map_network_error(CURL *h, const struct failure *f, struct http_response *ret)
{
    const char *d = detail(f->errbuf, f->rc);
    curl_off_t connect_t = 0;
    long os_errno = 0;

    (void)curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connect_t);
    (void)curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
    switch (f->rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        set_err(ret, _("cannot resolve host %s (%s)"), f->host, d);
        return PA_E_CA_UNAVAILABLE;
    case CURLE_COULDNT_CONNECT:
        if (os_errno == ECONNREFUSED)
            set_err(ret, _("connection to %s:%ld refused"), f->host, f->port);
        else
            set_err(ret, _("cannot connect to %s:%ld (%s)"), f->host, f->port, d);
        return PA_E_CA_UNAVAILABLE;
    case CURLE_OPERATION_TIMEDOUT:
        if (connect_t == 0)
            set_err(ret, _("connecting to %s:%ld timed out after %g s"), f->host, f->port,
                    (double)to_ms(f->opts->connect_timeout_s, HTTP_DEFAULT_CONNECT_S) / 1000.0);
        else
            set_err(ret, _("request to %s timed out after %g s"), f->host,
                    (double)to_ms(f->opts->timeout_s, HTTP_DEFAULT_TIMEOUT_S) / 1000.0);
        return PA_E_CA_UNAVAILABLE;
    case CURLE_PEER_FAILED_VERIFICATION:
        set_err(ret, _("TLS certificate of %s not trusted (%s)"), f->host, d);
        return PA_E_CA_UNAVAILABLE;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        set_err(ret, _("TLS handshake with %s failed (%s)"), f->host, d);
        return PA_E_CA_UNAVAILABLE;
    case CURLE_GOT_NOTHING:
        set_err(ret, _("%s closed the connection without answering"), f->host);
        return PA_E_CA_UNAVAILABLE;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
        set_err(ret, _("connection to %s dropped (%s)"), f->host, d);
        return PA_E_CA_UNAVAILABLE;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_TOO_MANY_REDIRECTS:
        set_err(ret, _("unusable answer from %s (%s)"), f->host, d);
        return PA_E_CA_PROTOCOL;
    default:
        set_err(ret, _("request to %s failed (%s)"), f->host, d);
        return PA_E_CA_UNAVAILABLE;
    }
}

/* Translate a failed transfer into a PA_E_* code, a one-line reason and the retry flags. */
static int map_curl_error(CURL *h, const struct failure *f, struct http_response *ret)
{
    curl_off_t pretransfer = 0;
    int r;

    (void)curl_easy_getinfo(h, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
    /* Once curl got past the handshake the request may have gone out. */
    ret->maybe_sent = pretransfer > 0;
    /* Network trouble may pass; an untrusted certificate or a local problem will not. */
    ret->transient = f->rc != CURLE_PEER_FAILED_VERIFICATION && f->rc != CURLE_SSL_CERTPROBLEM &&
                     f->rc != CURLE_SSL_PINNEDPUBKEYNOTMATCH && f->rc != CURLE_SSL_ISSUER_ERROR;
    r = map_local_error(f, ret);
    return r <= 0 ? r : map_network_error(h, f, ret);
}

/* Fill in everything the server answered; 0 or PA_E_NOMEM. */
static int collect_response(CURL *h, struct body_buf *body, struct http_response *ret)
{
    curl_off_t retry_after = 0;
    char *ct = NULL;

    (void)curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &ret->status);
    if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct) {
        ret->content_type = strdup(ct);
        if (!ret->content_type)
            return PA_E_NOMEM;
    }
    /* Both forms (delay-seconds, HTTP-date) are libcurl's to read; a date in the past comes
     * back negative, an unreadable value as 0. */
    if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK && retry_after > 0)
        ret->retry_after_s = retry_after > LONG_MAX ? LONG_MAX : (long)retry_after;
    if (!body->data) {
        body->data = calloc(1, 1);
        if (!body->data)
            return PA_E_NOMEM;
    }
    ret->body = body->data;
    ret->body_len = body->len;
    body->data = NULL;
    return 0;
}

/* The request headers: JSON both ways, no 100-continue, the API key if any. 0 or PA_E_*. */
static int build_headers(const char *json_body, const struct secret *api_key,
                         struct curl_slist **list, struct http_response *ret)
{
    int r = append_header(list, "Accept: application/json");

    if (r == 0)
        r = append_header(list, "Expect:");
    if (r == 0 && json_body)
        r = append_header(list, "Content-Type: application/json");
    if (r == 0 && api_key)
        r = add_key_header(list, api_key, ret);
    return r;
}

/* The security policy: every option here is a security property, so each must take. */
static CURLcode set_policy(CURL *h, const char *url, const struct http_opts *opts)
{
    CURLcode rc = curl_easy_setopt(h, CURLOPT_URL, url);

    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    /* Only the configured proxy: "" makes libcurl ignore https_proxy/all_proxy & co. */
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_PROXY, opts->proxy ? opts->proxy : "");
    if (rc == CURLE_OK) /* and no_proxy from the environment does not override api.proxy */
        rc = curl_easy_setopt(h, CURLOPT_NOPROXY, "");
    if (rc == CURLE_OK && opts->ca_bundle) {
        rc = curl_easy_setopt(h, CURLOPT_CAINFO, opts->ca_bundle);
        /* The bundle is the whole trust store, not an addition to the system one. */
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
    }
    return rc;
}

/* Timeouts, limits, buffers and callbacks of one transfer. */
static CURLcode set_transfer(CURL *h, const struct http_opts *opts, size_t max_body,
                             struct curl_slist *headers, char *errbuf, struct body_buf *body)
{
    CURLcode rc = curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                                   to_ms(opts->connect_timeout_s, HTTP_DEFAULT_CONNECT_S));

    if (rc == CURLE_OK)
        rc =
            curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, to_ms(opts->timeout_s, HTTP_DEFAULT_TIMEOUT_S));
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
                              (curl_off_t)(max_body > INT64_MAX ? INT64_MAX : max_body));
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_VERBOSE, 0L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_USERAGENT,
                              opts->user_agent ? opts->user_agent : "pkio-agent/" PKIO_VERSION);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
    return rc;
}

/*
 * The method and its body. Anything but a GET goes out on a new connection: on a reused one,
 * libcurl would send it again by itself if the connection closed before the answer.
 */
static CURLcode set_method(CURL *h, const char *method, const char *json_body)
{
    const char *b = json_body ? json_body : "";
    CURLcode rc = CURLE_OK;

    if (strcmp(method, "GET") == 0)
        return curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    if (strcmp(method, "POST") != 0)
        rc = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (rc == CURLE_OK && (json_body || strcmp(method, "DELETE") != 0)) {
        rc = curl_easy_setopt(h, CURLOPT_POSTFIELDS, b);
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(b));
    }
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
    return rc;
}

static bool method_known(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 ||
           strcmp(m, "DELETE") == 0;
}

/* Everything the transfer needs on h; 0 or PA_E_* with ret->errmsg set. */
static int prepare(CURL *h, const struct http_opts *opts, const char *method, const char *url,
                   const char *json_body, struct curl_slist *headers, char *errbuf,
                   struct body_buf *body, struct http_response *ret)
{
    CURLcode rc;

    if (!method_known(method)) {
        set_err(ret, _("unsupported HTTP method %s"), method);
        return PA_E_INTERNAL;
    }
    rc = set_policy(h, url, opts);
    if (rc == CURLE_OK)
        rc = set_transfer(h, opts, body->max, headers, errbuf, body);
    if (rc == CURLE_OK)
        rc = set_method(h, method, json_body);
    if (rc != CURLE_OK) {
        /* An option we rely on is unknown to this libcurl: refuse rather than weaken. */
        set_err(ret, _("libcurl refused an option (%s)"), curl_easy_strerror(rc));
        return rc == CURLE_OUT_OF_MEMORY ? PA_E_NOMEM : PA_E_INTERNAL;
    }
    return 0;
}

/* After a failure: keep only the reason and the flags in ret. */
static void keep_failure(struct http_response *ret)
{
    char msg[sizeof(ret->errmsg)];
    bool sent = ret->maybe_sent, transient = ret->transient;
    long nconn = ret->new_connections;

    memcpy(msg, ret->errmsg, sizeof(msg));
    http_response_clear(ret);
    memcpy(ret->errmsg, msg, sizeof(msg));
    ret->maybe_sent = sent;
    ret->transient = transient;
    ret->new_connections = nconn;
}

/* Run the prepared transfer on h and fill ret. 0 or PA_E_* (ret->errmsg set). */
static int perform(CURL *h, const struct http_opts *opts, const char *method, const char *url,
                   const char *host, long port, const char *errbuf, struct body_buf *body,
                   struct http_response *ret)
{
    CURLcode rc;
    long nconn = 0;
    int r;

    log_debug("http: %s %s", method, url);
    rc = curl_easy_perform(h);
    if (curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &nconn) == CURLE_OK)
        ret->new_connections = nconn;
    if (rc != CURLE_OK) {
        struct failure f = {rc, errbuf, host, port, opts, body->max, body->too_big};

        r = map_curl_error(h, &f, ret);
        log_debug("http: %s %s failed: %s", method, url, ret->errmsg);
        return r;
    }
    r = collect_response(h, body, ret);
    if (r < 0) {
        set_err(ret, _("out of memory"));
        ret->maybe_sent = true;
        return r;
    }
    log_debug("http: %s %s -> %ld (%s, %zu bytes, %s connection)", method, url, ret->status,
              ret->content_type ? ret->content_type : "no content type", ret->body_len,
              nconn > 0 ? "new" : "reused");
    return 0;
}

int http_conn_request(struct http_conn *conn, const struct http_opts *opts, const char *method,
                      const char *url, const struct secret *api_key, const char *json_body,
                      struct http_response *ret)
{
    static const struct http_opts no_opts = {0};
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL;
    struct body_buf body = {0};
    char *host = NULL;
    long port = 0;
    CURL *h = conn ? conn->h : NULL;
    int r;

    memset(ret, 0, sizeof(*ret));
    if (!opts)
        opts = &no_opts;
    body.max = opts->max_body ? opts->max_body : HTTP_DEFAULT_MAX_BODY;

    r = url_host(url, &host, &port, ret);
    if (r < 0)
        goto out;
    if (!h)
        h = curl_easy_init();
    if (!h) {
        set_err(ret, _("cannot initialise libcurl"));
        r = PA_E_INTERNAL;
        goto out;
    }
    if (conn)
        conn->h = h;
    r = build_headers(json_body, api_key, &headers, ret);
    if (r == 0)
        r = prepare(h, opts, method, url, json_body, headers, errbuf, &body, ret);
    if (r == 0)
        r = perform(h, opts, method, url, host, port, errbuf, &body, ret);
out:
    if (r < 0)
        keep_failure(ret);
    /* The handle must not keep pointers to this call's headers and buffers; reset keeps the
     * connection cache and the TLS session. */
    if (h && conn)
        curl_easy_reset(h);
    else if (h)
        curl_easy_cleanup(h);
    free_headers(headers);
    free(body.data);
    free(host);
    return r;
}

int http_request(const struct http_opts *opts, const char *method, const char *url,
                 const struct secret *api_key, const char *json_body, struct http_response *ret)
{
    return http_conn_request(NULL, opts, method, url, api_key, json_body, ret);
}
