/* SPDX-License-Identifier: Apache-2.0 */
/*
 * https_stub.c - the in-process CertCentral stub of https_stub.h: OpenSSL server, one thread,
 * one request per connection; a test root CA signs the CSRs of the orders.
 */
#include "https_stub.h"

#include <arpa/inet.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STUB_API        "/services/v2"
#define STUB_MAX_ORDERS 64
#define STUB_MAX_FAULTS 16
#define STUB_REQ_MAX    (256 * 1024)
#define STUB_API_KEY    "stub-api-key-0123456789abcdef"

struct stub_order {
    long id, cert_id;
    char product[64];
    char status[16];
    char date[32]; /* yyyy-mm-ddThh:mm:ss+00:00 */
    char *csr;     /* as sent */
    char *first, *last, *email;
    unsigned polls;
    char *cert_pem; /* once issued */
    char serial[40], cn[128], valid_till[11];
};

struct stub_fault {
    unsigned n;
    enum stub_action a;
};

struct stub {
    char url[64];
    int lfd;
    SSL_CTX *ssl;
    pthread_t thread;
    pthread_mutex_t mu;
    volatile int stop;
    EVP_PKEY *ca_key;
    X509 *ca_cert;
    /* state, under mu */
    struct stub_order orders[STUB_MAX_ORDERS];
    unsigned norders, posts, requests, revokes, issue_on;
    struct stub_fault post_faults[STUB_MAX_FAULTS], req_faults[STUB_MAX_FAULTS];
    struct stub_fault poll_faults[STUB_MAX_FAULTS];
    unsigned npost_faults, nreq_faults, npoll_faults, npolls;
    double timeout_s;
};

struct http_req {
    char method[8];
    char path[1024];
    char *body;
    size_t body_len;
};

/* ---- certificates ------------------------------------------------------------------------ */

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return -1;
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* A certificate for pub with subject name, signed by issuer_key (issuer NULL: self-signed). */
static X509 *make_cert(EVP_PKEY *pub, const X509_NAME *name, X509 *issuer, EVP_PKEY *issuer_key,
                       const char *const *exts)
{
    X509 *x = X509_new();
    ASN1_INTEGER *sn = X509_get_serialNumber(x);
    unsigned char rnd[8];
    BIGNUM *bn;

    RAND_bytes(rnd, sizeof(rnd));
    rnd[0] &= 0x7f;
    bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
    BN_to_ASN1_INTEGER(bn, sn);
    BN_free(bn);
    X509_set_version(x, X509_VERSION_3);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 365L * 86400);
    X509_set_pubkey(x, pub);
    for (size_t i = 0; exts[i]; i += 2)
        if (add_ext(x, issuer ? issuer : x, OBJ_txt2nid(exts[i]), exts[i + 1]) < 0)
            goto fail;
    if (X509_sign(x, issuer_key, EVP_sha256()) <= 0)
        goto fail;
    return x;
fail:
    X509_free(x);
    return NULL;
}

static X509_NAME *cn_name(const char *cn)
{
    X509_NAME *n = X509_NAME_new();

    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    return n;
}

static int write_pem(const char *dir, const char *file, X509 *x, EVP_PKEY *key)
{
    char path[4096];
    FILE *f;
    int ok;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    f = fopen(path, "w");
    if (!f)
        return -1;
    ok = x ? PEM_write_X509(f, x) : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static int write_key_file(const char *dir)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/key", dir);
    f = fopen(path, "w");
    if (!f)
        return -1;
    fchmod(fileno(f), 0600);
    fputs(STUB_API_KEY "\n", f);
    return fclose(f) == 0 ? 0 : -1;
}

/* Root CA and the TLS server certificate (self-signed, IP:127.0.0.1), files in dir. */
static int make_pki(struct stub *s, const char *dir)
{
    static const char *const root_ext[] = {"basicConstraints",
                                           "critical,CA:TRUE",
                                           "keyUsage",
                                           "critical,keyCertSign,cRLSign",
                                           "subjectKeyIdentifier",
                                           "hash",
                                           NULL};
    static const char *const tls_ext[] = {"basicConstraints",
                                          "critical,CA:FALSE",
                                          "keyUsage",
                                          "critical,digitalSignature",
                                          "extendedKeyUsage",
                                          "serverAuth",
                                          "subjectAltName",
                                          "IP:127.0.0.1,DNS:localhost",
                                          NULL};
    EVP_PKEY *tls_key = EVP_EC_gen("P-256");
    X509_NAME *rn = cn_name("pkio-agent test stub root"), *tn = cn_name("127.0.0.1");
    X509 *tls = NULL;
    int r = -1;

    s->ca_key = EVP_EC_gen("P-256");
    if (!s->ca_key || !tls_key)
        goto out;
    s->ca_cert = make_cert(s->ca_key, rn, NULL, s->ca_key, root_ext);
    tls = make_cert(tls_key, tn, NULL, tls_key, tls_ext);
    if (!s->ca_cert || !tls)
        goto out;
    if (write_pem(dir, "root.pem", s->ca_cert, NULL) < 0 ||
        write_pem(dir, "tls.pem", tls, NULL) < 0 || write_key_file(dir) < 0)
        goto out;
    s->ssl = SSL_CTX_new(TLS_server_method());
    if (!s->ssl || SSL_CTX_use_certificate(s->ssl, tls) != 1 ||
        SSL_CTX_use_PrivateKey(s->ssl, tls_key) != 1)
        goto out;
    r = 0;
out:
    X509_NAME_free(rn);
    X509_NAME_free(tn);
    X509_free(tls);
    EVP_PKEY_free(tls_key);
    return r;
}

/* Sign the order's CSR: the leaf, PEM, into o. */
static int issue(struct stub *s, struct stub_order *o)
{
    static const char *const leaf_ext[] = {"basicConstraints",
                                           "critical,CA:FALSE",
                                           "keyUsage",
                                           "critical,digitalSignature,keyEncipherment",
                                           "extendedKeyUsage",
                                           "clientAuth,emailProtection",
                                           "authorityKeyIdentifier",
                                           "keyid:always",
                                           NULL};
    BIO *in = BIO_new_mem_buf(o->csr, -1), *out = BIO_new(BIO_s_mem());
    X509_REQ *req = in ? PEM_read_bio_X509_REQ(in, NULL, NULL, NULL) : NULL;
    EVP_PKEY *pub = req ? X509_REQ_get_pubkey(req) : NULL;
    X509 *x = pub ? make_cert(pub, X509_REQ_get_subject_name(req), s->ca_cert, s->ca_key, leaf_ext)
                  : NULL;
    char *data = NULL;
    long n;
    int r = -1;

    if (x && PEM_write_bio_X509(out, x) == 1 && (n = BIO_get_mem_data(out, &data)) > 0) {
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
        char *hex = bn ? BN_bn2hex(bn) : NULL;
        time_t t = time(NULL) + 365L * 86400;
        struct tm tm;

        o->cert_pem = strndup(data, (size_t)n);
        snprintf(o->serial, sizeof(o->serial), "%s", hex ? hex : "01");
        X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req), NID_commonName, o->cn,
                                  sizeof(o->cn));
        gmtime_r(&t, &tm);
        strftime(o->valid_till, sizeof(o->valid_till), "%Y-%m-%d", &tm);
        OPENSSL_free(hex);
        BN_free(bn);
        snprintf(o->status, sizeof(o->status), "issued");
        r = o->cert_pem ? 0 : -1;
    }
    X509_free(x);
    EVP_PKEY_free(pub);
    X509_REQ_free(req);
    BIO_free(in);
    BIO_free(out);
    return r;
}

/* ---- HTTP ------------------------------------------------------------------------------- */

static void respond(SSL *ssl, int status, const char *ctype, const char *body, size_t len)
{
    char head[512];
    const char *reason = status == 200   ? "OK"
                         : status == 201 ? "Created"
                         : status == 204 ? "No Content"
                         : status == 404 ? "Not Found"
                         : status == 429 ? "Too Many Requests"
                         : status == 503 ? "Service Unavailable"
                                         : "Error";
    int n;

    if (!body)
        len = 0;
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\n%s%s%sContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
                 reason, ctype ? "Content-Type: " : "", ctype ? ctype : "", ctype ? "\r\n" : "",
                 len);
    SSL_write(ssl, head, n);
    if (len)
        SSL_write(ssl, body, (int)len);
}

static void respond_json(SSL *ssl, int status, struct json_object *o)
{
    const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);

    respond(ssl, status, "application/json", t, strlen(t));
    json_object_put(o);
}

static void respond_error(SSL *ssl, int status, const char *code, const char *msg)
{
    char body[512];

    snprintf(body, sizeof(body), "{\"errors\":[{\"code\":\"%s\",\"message\":\"%s\"}]}", code, msg);
    respond(ssl, status, "application/json", body, strlen(body));
}

/* Read one request (headers, Content-Length body). 0 or -1. */
static int read_request(SSL *ssl, struct http_req *rq)
{
    char *buf = malloc(STUB_REQ_MAX + 1), *end = NULL, *cl;
    size_t have = 0, want = 0, hlen;
    int n;

    if (!buf)
        return -1;
    while (!end && have < STUB_REQ_MAX) {
        n = SSL_read(ssl, buf + have, (int)(STUB_REQ_MAX - have));
        if (n <= 0)
            goto fail;
        have += (size_t)n;
        buf[have] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    if (!end || sscanf(buf, "%7s %1023s", rq->method, rq->path) != 2)
        goto fail;
    hlen = (size_t)(end - buf) + 4;
    cl = strcasestr(buf, "\r\ncontent-length:");
    if (cl && cl < end)
        want = strtoul(cl + 17, NULL, 10);
    if (want > STUB_REQ_MAX - hlen)
        goto fail;
    while (have < hlen + want) {
        n = SSL_read(ssl, buf + have, (int)(hlen + want - have));
        if (n <= 0)
            goto fail;
        have += (size_t)n;
    }
    rq->body = strndup(buf + hlen, want);
    rq->body_len = want;
    free(buf);
    return rq->body ? 0 : -1;
fail:
    free(buf);
    return -1;
}

/* ---- the API ------------------------------------------------------------------------------ */

static struct stub_order *find_order(struct stub *s, long id, long cert_id)
{
    for (unsigned i = 0; i < s->norders; i++)
        if ((id && s->orders[i].id == id) || (cert_id && s->orders[i].cert_id == cert_id))
            return &s->orders[i];
    return NULL;
}

static struct json_object *jstr(const char *v)
{
    return json_object_new_string(v ? v : "");
}

static struct json_object *order_json(const struct stub_order *o)
{
    struct json_object *j = json_object_new_object(), *c = json_object_new_object();
    struct json_object *p = json_object_new_object(), *ind = json_object_new_object();

    json_object_object_add(j, "id", json_object_new_int64(o->id));
    json_object_object_add(j, "status", jstr(o->status));
    json_object_object_add(j, "date_created", jstr(o->date));
    json_object_object_add(p, "name_id", jstr(o->product));
    json_object_object_add(j, "product", p);
    json_object_object_add(c, "id", json_object_new_int64(o->cert_id));
    json_object_object_add(c, "csr", jstr(o->csr));
    if (o->cert_pem) {
        json_object_object_add(c, "serial_number", jstr(o->serial));
        json_object_object_add(c, "common_name", jstr(o->cn));
        json_object_object_add(c, "valid_till", jstr(o->valid_till));
    }
    json_object_object_add(j, "certificate", c);
    if (o->first)
        json_object_object_add(ind, "first_name", jstr(o->first));
    if (o->last)
        json_object_object_add(ind, "last_name", jstr(o->last));
    if (o->email)
        json_object_object_add(ind, "email", jstr(o->email));
    json_object_object_add(j, "individual", ind);
    return j;
}

static char *dup_path(struct json_object *root, const char *a, const char *b, const char *c)
{
    struct json_object *v = root;

    if (!json_object_object_get_ex(v, a, &v) || !json_object_object_get_ex(v, b, &v))
        return NULL;
    if (c && !json_object_object_get_ex(v, c, &v))
        return NULL;
    return json_object_is_type(v, json_type_string) ? strdup(json_object_get_string(v)) : NULL;
}

/* Make the order from a POST body; NULL when the body is not an order. */
static struct stub_order *new_order(struct stub *s, const char *product, const char *body)
{
    struct json_object *root = json_tokener_parse(body);
    struct stub_order *o;
    time_t now = time(NULL);
    struct tm tm;

    if (!root || s->norders >= STUB_MAX_ORDERS) {
        json_object_put(root);
        return NULL;
    }
    o = &s->orders[s->norders];
    memset(o, 0, sizeof(*o));
    o->csr = dup_path(root, "certificate", "csr", NULL);
    if (!o->csr) {
        json_object_put(root);
        return NULL;
    }
    s->norders++;
    o->id = 1000 + s->norders;
    o->cert_id = 5000 + s->norders;
    snprintf(o->product, sizeof(o->product), "%s", product);
    snprintf(o->status, sizeof(o->status), "pending");
    gmtime_r(&now, &tm);
    strftime(o->date, sizeof(o->date), "%Y-%m-%dT%H:%M:%S+00:00", &tm);
    o->first = dup_path(root, "certificate", "individual", "first_name");
    o->last = dup_path(root, "certificate", "individual", "last_name");
    o->email = dup_path(root, "certificate", "individual", "email");
    json_object_put(root);
    return o;
}

static enum stub_action fault_for(const struct stub_fault *f, unsigned nf, unsigned n)
{
    for (unsigned i = 0; i < nf; i++)
        if (f[i].n == n)
            return f[i].a;
    return STUB_OK;
}

static void post_order(struct stub *s, SSL *ssl, const char *product, const struct http_req *rq)
{
    enum stub_action a = fault_for(s->post_faults, s->npost_faults, ++s->posts);
    struct stub_order *o;
    char body[256];
    int n;

    if (a == STUB_429) {
        respond_error(ssl, 429, "request_limit_exceeded",
                      "Service unavailable, please limit request volume");
        return;
    }
    if (a == STUB_503 || a == STUB_DROP) {
        if (a == STUB_503)
            respond_error(ssl, 503, "service_unavailable", "try later");
        return;
    }
    o = new_order(s, product, rq->body);
    if (!o) {
        respond_error(ssl, 400, "invalid_request", "no CSR");
        return;
    }
    n = snprintf(
        body, sizeof(body),
        "{\"id\":%ld,\"certificate_id\":%ld,\"requests\":[{\"id\":%ld,\"status\":\"pending\"}]}",
        o->id, o->cert_id, o->id + 7000);
    switch (a) {
    case STUB_503_PLACED:
        respond_error(ssl, 503, "service_unavailable", "try later");
        break;
    case STUB_GARBAGE:
        respond(ssl, 201, "application/json", "<html>oops</html>", 17);
        break;
    case STUB_TRUNCATED:
        respond(ssl, 201, "application/json", body, (size_t)n / 2);
        break;
    case STUB_LOST:
        break;
    case STUB_TIMEOUT: {
        double t = s->timeout_s;
        struct timespec ts = {(time_t)t, (long)((t - (double)(time_t)t) * 1e9)};

        pthread_mutex_unlock(&s->mu);
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&s->mu);
        break;
    }
    default:
        respond(ssl, 201, "application/json", body, (size_t)n);
        break;
    }
}

/* A scripted fault for an order-info GET (nothing else happens); 1 when one was answered. */
static int poll_fault(struct stub *s, SSL *ssl)
{
    enum stub_action a = fault_for(s->poll_faults, s->npoll_faults, ++s->npolls);

    if (a == STUB_429)
        respond_error(ssl, 429, "request_limit_exceeded", "Service unavailable");
    else if (a == STUB_503)
        respond_error(ssl, 503, "service_unavailable", "try later");
    else if (a == STUB_GARBAGE || a == STUB_TRUNCATED)
        respond(ssl, 200, "application/json", "{\"id\": 1, \"status\": ", 18);
    return a != STUB_OK;
}

static void get_order(struct stub *s, SSL *ssl, long id)
{
    struct stub_order *o = find_order(s, id, 0);

    if (poll_fault(s, ssl))
        return;
    if (!o) {
        respond_error(ssl, 404, "not_found", "no such order");
        return;
    }
    o->polls++;
    if (!o->cert_pem && strcmp(o->status, "pending") == 0 && s->issue_on && o->polls >= s->issue_on)
        (void)issue(s, o);
    respond_json(ssl, 200, order_json(o));
}

/* The value of query parameter key (percent-encoded as the client sends it), or NULL. */
static const char *query(const char *path, const char *key)
{
    const char *p = strstr(path, key);

    return p ? p + strlen(key) : NULL;
}

static void list_orders(struct stub *s, SSL *ssl, const char *path)
{
    struct json_object *j = json_object_new_object(), *arr = json_object_new_array();
    struct json_object *page = json_object_new_object();
    const char *prod = query(path, "filters%5Bproduct_name_id%5D=");
    const char *since = query(path, "filters%5Bdate_created%5D=%3E%3D");
    const char *lim = query(path, "limit=");
    unsigned limit = lim ? (unsigned)strtoul(lim, NULL, 10) : 1000, n = 0;

    for (unsigned i = 0; i < s->norders && n < limit; i++) {
        const struct stub_order *o = &s->orders[i];
        size_t pl = strlen(o->product);

        if (prod && (strncmp(prod, o->product, pl) != 0 || (prod[pl] && prod[pl] != '&')))
            continue;
        if (since && strncmp(o->date, since, 10) < 0)
            continue;
        json_object_array_add(arr, order_json(o));
        n++;
    }
    json_object_object_add(j, "orders", arr);
    json_object_object_add(page, "total", json_object_new_int(n));
    json_object_object_add(page, "limit", json_object_new_int(limit));
    json_object_object_add(page, "offset", json_object_new_int(0));
    json_object_object_add(j, "page", page);
    respond_json(ssl, 200, j);
}

static void download(struct stub *s, SSL *ssl, long cert_id)
{
    struct stub_order *o = find_order(s, 0, cert_id);

    if (!o || !o->cert_pem) {
        respond_error(ssl, 404, "not_found", "no such certificate");
        return;
    }
    respond(ssl, 200, "application/x-pem-file", o->cert_pem, strlen(o->cert_pem));
}

static void put_status(struct stub *s, SSL *ssl, long id, const char *status, bool by_cert)
{
    struct stub_order *o = by_cert ? find_order(s, 0, id) : find_order(s, id, 0);

    if (!o) {
        respond_error(ssl, 404, "not_found", "no such order");
        return;
    }
    if (by_cert)
        s->revokes++;
    snprintf(o->status, sizeof(o->status), "%s", status);
    respond(ssl, 204, NULL, NULL, 0);
}

/* p is prefix, a number (*id), suffix, and nothing else. */
static bool path_id(const char *p, const char *prefix, const char *suffix, long *id)
{
    size_t n = strlen(prefix);
    char *end = NULL;

    if (strncmp(p, prefix, n) != 0 || p[n] < '0' || p[n] > '9')
        return false;
    *id = strtol(p + n, &end, 10);
    return strcmp(end, suffix) == 0;
}

/* GET requests. 1 when p was one of them. */
static int route_get(struct stub *s, SSL *ssl, const char *p)
{
    char fmt[32];
    long id;

    if (strncmp(p, "/order/certificate?", 19) == 0)
        list_orders(s, ssl, p);
    else if (path_id(p, "/order/certificate/", "", &id))
        get_order(s, ssl, id);
    else if (sscanf(p, "/certificate/%ld/download/format/%31s", &id, fmt) == 2)
        download(s, ssl, id);
    else
        return 0;
    return 1;
}

/* PUT requests. 1 when p was one of them. */
static int route_put(struct stub *s, SSL *ssl, const char *p)
{
    long id;

    if (path_id(p, "/certificate/", "/revoke", &id))
        put_status(s, ssl, id, "revoked", true);
    else if (path_id(p, "/order/certificate/", "/status", &id))
        put_status(s, ssl, id, "canceled", false);
    else
        return 0;
    return 1;
}

static void route(struct stub *s, SSL *ssl, const struct http_req *rq)
{
    const char *p = rq->path;
    char prod[64];
    int end = -1, done = 0;

    if (strncmp(p, STUB_API, strlen(STUB_API)) == 0) {
        p += strlen(STUB_API);
        if (strcmp(rq->method, "POST") == 0 &&
            sscanf(p, "/order/certificate/%63[a-z0-9_]%n", prod, &end) == 1 && end >= 0 &&
            !p[end]) {
            post_order(s, ssl, prod, rq);
            done = 1;
        } else if (strcmp(rq->method, "GET") == 0) {
            done = route_get(s, ssl, p);
        } else if (strcmp(rq->method, "PUT") == 0) {
            done = route_put(s, ssl, p);
        }
    }
    if (!done)
        respond_error(ssl, 404, "not_found", "unknown path");
}

static void serve_one(struct stub *s, int fd)
{
    struct http_req rq = {0};
    SSL *ssl = SSL_new(s->ssl);
    enum stub_action a;

    if (!ssl)
        return;
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1 || read_request(ssl, &rq) < 0)
        goto out;
    pthread_mutex_lock(&s->mu);
    a = fault_for(s->req_faults, s->nreq_faults, ++s->requests);
    if (a == STUB_429)
        respond_error(ssl, 429, "request_limit_exceeded",
                      "Service unavailable, please limit request volume");
    else if (a == STUB_503)
        respond_error(ssl, 503, "service_unavailable", "try later");
    else if (a == STUB_OK)
        route(s, ssl, &rq);
    pthread_mutex_unlock(&s->mu);
    SSL_shutdown(ssl);
out:
    ERR_clear_error();
    free(rq.body);
    SSL_free(ssl);
}

static void *serve(void *arg)
{
    struct stub *s = arg;

    while (!s->stop) {
        struct pollfd pf = {s->lfd, POLLIN, 0};
        int fd;

        if (poll(&pf, 1, 100) <= 0)
            continue;
        fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        {
            struct timeval tv = {10, 0};

            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        }
        serve_one(s, fd);
        close(fd);
    }
    return NULL;
}

/* ---- life --------------------------------------------------------------------------------- */

static int listen_local(struct stub *s)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof(a);
    int one = 1;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->lfd < 0)
        return -1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s->lfd, 16) < 0 ||
        getsockname(s->lfd, (struct sockaddr *)&a, &alen) < 0)
        return -1;
    snprintf(s->url, sizeof(s->url), "https://127.0.0.1:%u" STUB_API, ntohs(a.sin_port));
    return 0;
}

int stub_start(const char *dir, struct stub **ret)
{
    struct stub *s = calloc(1, sizeof(*s));

    if (!s)
        return -1;
    s->lfd = -1;
    s->issue_on = 1;
    s->timeout_s = 3;
    pthread_mutex_init(&s->mu, NULL);
    if (make_pki(s, dir) < 0 || listen_local(s) < 0 ||
        pthread_create(&s->thread, NULL, serve, s) != 0) {
        if (s->lfd >= 0)
            close(s->lfd);
        SSL_CTX_free(s->ssl);
        EVP_PKEY_free(s->ca_key);
        X509_free(s->ca_cert);
        free(s);
        return -1;
    }
    *ret = s;
    return 0;
}

static void clear_orders(struct stub *s)
{
    for (unsigned i = 0; i < s->norders; i++) {
        struct stub_order *o = &s->orders[i];

        free(o->csr);
        free(o->first);
        free(o->last);
        free(o->email);
        free(o->cert_pem);
    }
    s->norders = 0;
}

void stub_stop(struct stub *s)
{
    if (!s)
        return;
    s->stop = 1;
    pthread_join(s->thread, NULL);
    close(s->lfd);
    clear_orders(s);
    SSL_CTX_free(s->ssl);
    EVP_PKEY_free(s->ca_key);
    X509_free(s->ca_cert);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

const char *stub_url(const struct stub *s)
{
    return s->url;
}

void stub_reset(struct stub *s)
{
    pthread_mutex_lock(&s->mu);
    clear_orders(s);
    s->posts = s->requests = s->revokes = 0;
    s->npost_faults = s->nreq_faults = s->npoll_faults = s->npolls = 0;
    s->issue_on = 1;
    s->timeout_s = 3;
    pthread_mutex_unlock(&s->mu);
}

void stub_issue_on_poll(struct stub *s, unsigned n)
{
    pthread_mutex_lock(&s->mu);
    s->issue_on = n;
    pthread_mutex_unlock(&s->mu);
}

static void add_fault(struct stub *s, struct stub_fault *f, unsigned *nf, unsigned n,
                      enum stub_action a)
{
    pthread_mutex_lock(&s->mu);
    if (*nf < STUB_MAX_FAULTS)
        f[(*nf)++] = (struct stub_fault){n, a};
    pthread_mutex_unlock(&s->mu);
}

void stub_fault_post(struct stub *s, unsigned n, enum stub_action a)
{
    add_fault(s, s->post_faults, &s->npost_faults, n, a);
}

void stub_fault_poll(struct stub *s, unsigned n, enum stub_action a)
{
    add_fault(s, s->poll_faults, &s->npoll_faults, n, a);
}

void stub_fault_request(struct stub *s, unsigned n, enum stub_action a)
{
    add_fault(s, s->req_faults, &s->nreq_faults, n, a);
}

void stub_set_timeout(struct stub *s, double seconds)
{
    pthread_mutex_lock(&s->mu);
    s->timeout_s = seconds;
    pthread_mutex_unlock(&s->mu);
}

static unsigned counter(struct stub *s, const unsigned *c)
{
    unsigned v;

    pthread_mutex_lock(&s->mu);
    v = *c;
    pthread_mutex_unlock(&s->mu);
    return v;
}

unsigned stub_posts(struct stub *s)
{
    return counter(s, &s->posts);
}

unsigned stub_orders(struct stub *s)
{
    return counter(s, &s->norders);
}

unsigned stub_requests(struct stub *s)
{
    return counter(s, &s->requests);
}

unsigned stub_revokes(struct stub *s)
{
    return counter(s, &s->revokes);
}

long stub_order_id(struct stub *s, unsigned n)
{
    long id;

    pthread_mutex_lock(&s->mu);
    id = (n >= 1 && n <= s->norders) ? s->orders[n - 1].id : 0;
    pthread_mutex_unlock(&s->mu);
    return id;
}

long stub_certificate_id(struct stub *s, unsigned n)
{
    long id;

    pthread_mutex_lock(&s->mu);
    id = (n >= 1 && n <= s->norders) ? s->orders[n - 1].cert_id : 0;
    pthread_mutex_unlock(&s->mu);
    return id;
}

void stub_order_status(struct stub *s, long order_id, char *buf, size_t len)
{
    const struct stub_order *o;

    pthread_mutex_lock(&s->mu);
    o = find_order(s, order_id, 0);
    snprintf(buf, len, "%s", o ? o->status : "");
    pthread_mutex_unlock(&s->mu);
}
