/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certcentral.c - the CertCentral client: creating and freeing it, URLs, one API exchange (the
 * rate budget, the before-send hook, the request, the judgement of the answer, the retries that
 * cc_policy.c allows) and the public calls built on it: order, order info, the order list,
 * download, cancel, revoke, ping. Parsing the answers is cc_parse.c's; retry and budget
 * decisions are cc_policy.c's.
 */
#include "certcentral.h"

#include "cc_internal.h"
#include "http.h"
#include "i18n.h"
#include "log.h"
#include "pa_err.h"
#include "secret.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CC_URL_MAX         2048
#define CC_MAX_ORDERS      100000 /* list results we accept in total */
#define CC_MAX_PAGES       10000
#define CC_DEFAULT_PAGE    1000
#define CC_AUTH_HINT       N_("check api.key_file / PKIO_AGENT_API_KEY; the key needs the Orders role")
#define CC_HINT_MAYBE      N_("the order may have been placed; run resume/status before ordering again")
#define CC_HINT_NOT_PLACED N_("the order was not placed")

/* exchange(): the before-send hook stopped the request; never leaves this file. */
#define PA_E_STOPPED_BEFORE_SEND (-1000)
/* send_once(): a stop (SIGTERM) came before the request was sent; never leaves this file. */
#define PA_E_STOPPED_WAITING (-1001)

/* ---------------------------------------------------------------------------------------- */
/* small helpers */

/* Overwrite every occurrence of the API key in the error text. */
static void mask_key(struct cc_client *c)
{
    size_t klen = c->key ? c->key->len : 0;
    char *p = c->last_error;

    if (klen < 4)
        return;
    while ((p = memmem(p, strlen(p), c->key->buf, klen)) != NULL)
        memset(p, '*', klen);
}

__attribute__((format(printf, 2, 3))) static void set_error(struct cc_client *c, const char *fmt,
                                                            ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(c->last_error, sizeof(c->last_error), fmt, ap);
    va_end(ap);
    cc_sanitize(c->last_error);
    mask_key(c);
}

__attribute__((format(printf, 2, 3))) static void append_error(struct cc_client *c, const char *fmt,
                                                               ...)
{
    size_t used = strlen(c->last_error);
    va_list ap;

    if (used + 1 >= sizeof(c->last_error))
        return;
    va_start(ap, fmt);
    (void)vsnprintf(c->last_error + used, sizeof(c->last_error) - used, fmt, ap);
    va_end(ap);
    cc_sanitize(c->last_error);
    mask_key(c);
}

/* True if the media type of content_type (parameters ignored) equals type. */
static bool media_is(const char *content_type, const char *type)
{
    size_t n = strlen(type);

    if (!content_type)
        return false;
    while (*content_type == ' ' || *content_type == '\t')
        content_type++;
    if (strncasecmp(content_type, type, n) != 0)
        return false;
    content_type += n;
    while (*content_type == ' ' || *content_type == '\t')
        content_type++;
    return *content_type == '\0' || *content_type == ';';
}

static bool valid_product(const char *p)
{
    size_t n = 0;

    if (!p)
        return false;
    for (; p[n]; n++)
        if (!((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= '0' && p[n] <= '9') || p[n] == '_'))
            return false;
    return n > 0 && n <= 64;
}

/* ---------------------------------------------------------------------------------------- */
/* the client */

/* Copy opts and the strings it points to into c. 0 or PA_E_NOMEM. */
static int copy_opts(struct cc_client *c, const struct http_opts *opts)
{
    c->opts = *opts;
    c->opts.ca_bundle = NULL;
    c->opts.user_agent = NULL;
    c->opts.proxy = NULL;
    if (opts->proxy) {
        c->proxy = strdup(opts->proxy);
        if (!c->proxy)
            return PA_E_NOMEM;
        c->opts.proxy = c->proxy;
    }
    if (opts->ca_bundle) {
        c->ca_bundle = strdup(opts->ca_bundle);
        if (!c->ca_bundle)
            return PA_E_NOMEM;
        c->opts.ca_bundle = c->ca_bundle;
    }
    if (opts->user_agent) {
        c->user_agent = strdup(opts->user_agent);
        if (!c->user_agent)
            return PA_E_NOMEM;
        c->opts.user_agent = c->user_agent;
    }
    return 0;
}

/* An https:// base URL of sane length and a non-empty key. */
static bool client_args_ok(const char *base_url, const struct secret *api_key)
{
    return base_url && strncasecmp(base_url, "https://", 8) == 0 && strlen(base_url) <= 1024 &&
           strlen(base_url) > 8 && api_key && api_key->buf && api_key->len > 0;
}

int cc_client_new(const char *base_url, const struct secret *api_key, const struct http_opts *opts,
                  struct cc_client **ret)
{
    struct cc_client *c = NULL;
    size_t n;
    int r;

    if (!client_args_ok(base_url, api_key))
        return PA_E_CONFIG;
    c = calloc(1, sizeof(*c));
    if (!c)
        return PA_E_NOMEM;
    c->base_url = strdup(base_url);
    if (!c->base_url) {
        r = PA_E_NOMEM;
        goto out;
    }
    n = strlen(c->base_url);
    while (n > 8 && c->base_url[n - 1] == '/')
        c->base_url[--n] = '\0';
    r = secret_from_mem(api_key->buf, api_key->len, &c->key);
    if (r == 0 && opts)
        r = copy_opts(c, opts);
    if (r == 0)
        r = http_conn_new(&c->conn);
    if (r < 0)
        goto out;
    c->page_size = CC_DEFAULT_PAGE;
    r = cc_policy_init(c);
    if (r < 0)
        goto out;
    *ret = c;
    c = NULL;
    r = 0;
out:
    cc_client_free(c);
    return r;
}

void cc_client_free(struct cc_client *c)
{
    if (!c)
        return;
    secret_free(c->key);
    secret_wipe(c->last_error, sizeof(c->last_error));
    http_conn_free(c->conn);
    rb_station_close(c->station);
    free(c->station_path);
    free(c->base_url);
    free(c->ca_bundle);
    free(c->proxy);
    free(c->user_agent);
    free(c->ring);
    free(c);
}

void cc_client_set_page_size(struct cc_client *c, unsigned n)
{
    c->page_size = n ? (n > CC_DEFAULT_PAGE ? CC_DEFAULT_PAGE : n) : CC_DEFAULT_PAGE;
}

unsigned long cc_client_requests(const struct cc_client *c)
{
    return c->requests;
}

unsigned long cc_client_connections(const struct cc_client *c)
{
    return c->connections;
}

const char *cc_last_error(const struct cc_client *c)
{
    return c->last_error;
}

bool cc_order_maybe_placed(const struct cc_client *c)
{
    return c->maybe_placed;
}

/* Full URL from a printf-style path; PA_E_INTERNAL if it does not fit. */
__attribute__((format(printf, 4, 5))) static int make_url(struct cc_client *c, char *buf,
                                                          size_t buflen, const char *fmt, ...)
{
    size_t n = strlen(c->base_url);
    va_list ap;
    int w;

    if (n + 1 >= buflen)
        return PA_E_INTERNAL;
    memcpy(buf, c->base_url, n);
    va_start(ap, fmt);
    w = vsnprintf(buf + n, buflen - n, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= buflen - n) {
        set_error(c, _("URL too long"));
        return PA_E_INTERNAL;
    }
    return 0;
}

/* last_error from an HTTP answer: the API's "code: message" list, or status/URL/content type. */
static void set_http_error(struct cc_client *c, const struct http_response *resp, const char *url)
{
    char msg[400];

    if (media_is(resp->content_type, "application/json") &&
        cc_parse_errors(resp->body, resp->body_len, msg, sizeof(msg)) == 0)
        set_error(c, "%s", msg);
    else
        set_error(c, _("HTTP %ld from %s (%s)"), resp->status, url,
                  resp->content_type ? resp->content_type : _("no content type"));
}

/* The before-send hook of the order POST being placed, if any; 0 or its negative return. */
static int order_before_send(struct cc_client *c)
{
    const struct cc_order_send *send = c->order_send;
    int r = 0;

    if (!send || !send->before_send)
        return 0;
    /* not ours while it runs: requests the hook itself makes are plain ones */
    c->order_send = NULL;
    r = send->before_send(send->arg);
    c->order_send = send;
    return r < 0 ? r : 0;
}

/*
 * Tell the caller that the POST sent last placed nothing (once per send): retry_in_s >= 0 before
 * the wait for the next send, < 0 when none follows. 0, or the hook's refusal of the next send.
 */
static int order_not_sent(struct cc_client *c, double retry_in_s)
{
    const struct cc_order_send *send = c->order_send;
    int r;

    if (!c->order_unjudged)
        return 0;
    c->order_unjudged = false;
    if (!send || !send->not_sent)
        return 0;
    c->order_send = NULL;
    r = send->not_sent(send->arg, c->last_error, retry_in_s);
    c->order_send = send;
    return r < 0 ? r : 0;
}

/*
 * One attempt: wait for the budgets, run the order's before-send hook (before every send of the
 * POST), send. PA_E_STOPPED_BEFORE_SEND when the hook stopped it; else what the request returned.
 */
static int send_once(struct cc_client *c, const char *method, const char *url, const char *body,
                     enum cc_retry_policy rp, struct http_response *resp)
{
    struct rb_ticket tk = {0};
    int r;

    if (!cc_budget_wait(c, &tk))
        return PA_E_STOPPED_WAITING;
    if (rp == CC_RP_ORDER) {
        c->before_send_rc = order_before_send(c);
        if (c->before_send_rc < 0) {
            cc_budget_release(c, &tk);
            return PA_E_STOPPED_BEFORE_SEND;
        }
        c->order_unjudged = true;
    }
    c->requests++;
    if (c->transport)
        r = c->transport(c->transport_arg, method, url, body, resp);
    else
        r = http_conn_request(c->conn, &c->opts, method, url, c->key, body, resp);
    c->connections += resp->new_connections > 0 ? (unsigned long)resp->new_connections : 0;
    cc_budget_record(c, &tk);
    return r;
}

/*
 * Judge an answer that arrived: 0 when it is the caller's to judge; else PA_E_CA_AUTH (final) or
 * PA_E_CA_UNAVAILABLE (429, 5xx) with *retryable as the policy rp says.
 */
static int judge_answer(struct cc_client *c, const char *url, enum cc_retry_policy rp,
                        const struct http_response *resp, bool *retryable)
{
    *retryable = false;
    if (resp->status == 401 || resp->status == 403) {
        set_http_error(c, resp, url);
        append_error(c, _(" (HTTP %ld; %s)"), resp->status, _(CC_AUTH_HINT));
        c->last_maybe_sent = false;
        return PA_E_CA_AUTH;
    }
    if (!cc_policy_answer_failed(resp->status))
        return 0;
    set_http_error(c, resp, url);
    c->last_maybe_sent = cc_policy_answer_maybe_sent(resp->status);
    *retryable = cc_policy_retry_answer(rp, resp->status);
    return PA_E_CA_UNAVAILABLE;
}

enum cc_next { CC_NEXT_FINAL, CC_NEXT_GIVE_UP, CC_NEXT_RETRY };

/*
 * Judge the attempt that send_once returned r for (not a stop): 0 when resp holds an answer for
 * the caller; else a PA_E_* code with last_error and last_maybe_sent set, and *next: RETRY when
 * rp sends it again, GIVE_UP when it does not, FINAL for a failure no retry can mend.
 */
static int judge_attempt(struct cc_client *c, const char *url, enum cc_retry_policy rp, int r,
                         const struct http_response *resp, enum cc_next *next)
{
    bool retryable = false;

    *next = CC_NEXT_FINAL;
    if (r < 0) {
        set_error(c, "%s", resp->errmsg);
        c->last_maybe_sent = resp->maybe_sent;
        if (r == PA_E_CA_UNAVAILABLE && resp->transient)
            *next = cc_policy_retry_failure(rp, resp->maybe_sent) ? CC_NEXT_RETRY : CC_NEXT_GIVE_UP;
        return r;
    }
    r = judge_answer(c, url, rp, resp, &retryable);
    if (r < 0)
        *next = retryable ? CC_NEXT_RETRY : CC_NEXT_GIVE_UP;
    return r;
}

/*
 * One API exchange with the retry policy, the rate budgets and 401/403 handling. Returns 0 with
 * resp holding an answer whose status is not 401/403/429/5xx (the caller judges it); otherwise
 * a PA_E_* code with last_error and last_maybe_sent set and resp cleared. Under CC_RP_ORDER the
 * order's not_sent hook hears of each send that placed nothing before the wait for the next.
 */
static int exchange(struct cc_client *c, const char *method, const char *url, const char *body,
                    enum cc_retry_policy rp, struct http_response *resp)
{
    int r;

    for (unsigned attempt = 0;; attempt++) {
        enum cc_next next;
        double delay;

        r = send_once(c, method, url, body, rp, resp);
        if (r == PA_E_STOPPED_BEFORE_SEND)
            return r;
        if (r == PA_E_STOPPED_WAITING) {
            /* what an earlier attempt may have sent stays in last_maybe_sent */
            set_error(c, _("stopped (SIGTERM or SIGINT) before %s %s was sent"), method, url);
            if (attempt == 0)
                c->last_maybe_sent = false;
            r = PA_E_CA_UNAVAILABLE;
            goto out;
        }
        r = judge_attempt(c, url, rp, r, resp, &next);
        if (r == 0)
            return 0;
        if (next == CC_NEXT_FINAL)
            goto out;
        if (next == CC_NEXT_GIVE_UP || attempt + 1 >= cc_policy_attempts(c, rp)) {
            if (attempt > 0)
                append_error(c, _(" (gave up after %u attempts)"), attempt + 1);
            goto out;
        }
        /* the Retry-After of an answer (a failure has none), else backoff with jitter */
        delay = cc_policy_delay(c, attempt + 1, resp->retry_after_s);
        log_debug("certcentral: %s %s: %s; retrying in %.3f s", method, url, c->last_error, delay);
        http_response_clear(resp);
        if (rp == CC_RP_ORDER && order_not_sent(c, delay) < 0)
            goto out; /* the caller does not want it sent again */
        c->sleep_fn(delay, c->sleep_arg);
    }
out:
    http_response_clear(resp);
    return r;
}

/* Unexpected status of a non-failing exchange: 4xx -> REJECTED, anything else -> PROTOCOL. */
static int fail_status(struct cc_client *c, const struct http_response *resp, const char *url)
{
    set_http_error(c, resp, url);
    return resp->status >= 400 && resp->status < 500 ? PA_E_CA_REJECTED : PA_E_CA_PROTOCOL;
}

static int expect_json(struct cc_client *c, const struct http_response *resp, const char *url)
{
    if (media_is(resp->content_type, "application/json"))
        return 0;
    set_error(c, _("HTTP %ld from %s: expected JSON, got %s"), resp->status, url,
              resp->content_type ? resp->content_type : _("no content type"));
    return PA_E_CA_PROTOCOL;
}

/* GET url (retried as idempotent) and require 200; with want_json also a JSON content type. */
static int get_checked(struct cc_client *c, const char *url, bool want_json,
                       struct http_response *resp)
{
    int r = exchange(c, "GET", url, NULL, CC_RP_IDEMPOTENT, resp);

    if (r < 0)
        return r;
    if (resp->status != 200)
        return fail_status(c, resp, url);
    return want_json ? expect_json(c, resp, url) : 0;
}

/* After the POST exchange failed: whether it may have been placed, said in last_error. */
static int order_exchange_failed(struct cc_client *c, int r)
{
    c->maybe_placed = r != PA_E_CA_AUTH && c->last_maybe_sent;
    if (r == PA_E_CA_PROTOCOL) /* the answer was too large: it did arrive */
        r = PA_E_CA_UNAVAILABLE;
    append_error(c, "; %s", c->maybe_placed ? _(CC_HINT_MAYBE) : _(CC_HINT_NOT_PLACED));
    return r;
}

/* The answer to the POST that arrived (2xx..5xx other than 401/403/429/5xx): 0 and *ret, or
 * a PA_E_* code with maybe_placed and last_error set. */
static int order_answer(struct cc_client *c, const char *url, const struct http_response *resp,
                        struct cc_order_result *ret)
{
    struct cc_perr pe = {""};
    int r;

    if (resp->status != 200 && resp->status != 201) {
        r = fail_status(c, resp, url);
        c->maybe_placed = r != PA_E_CA_REJECTED;
        append_error(c, "; %s", c->maybe_placed ? _(CC_HINT_MAYBE) : _(CC_HINT_NOT_PLACED));
        return r;
    }
    r = expect_json(c, resp, url);
    if (r == 0) {
        r = cc_parse_order_result_ex(resp->body, resp->body_len, ret, &pe);
        if (r < 0)
            set_error(c, _("unreadable answer to the order from %s: %s"), url, pe.msg);
    }
    if (r < 0) {
        c->maybe_placed = true;
        append_error(c, "; %s", _(CC_HINT_MAYBE));
    }
    return r;
}

int cc_place_order_ex(struct cc_client *c, const char *product, const char *json_body,
                      const struct cc_order_send *send, struct cc_order_result *ret)
{
    struct http_response resp = {0};
    struct cc_order_result res;
    char url[CC_URL_MAX];
    int r;

    c->last_error[0] = '\0';
    c->maybe_placed = false;
    if (!valid_product(product)) {
        set_error(c, _("invalid product id"));
        return PA_E_CONFIG;
    }
    if (!json_body)
        return PA_E_INTERNAL;
    r = make_url(c, url, sizeof(url), "/order/certificate/%s", product);
    if (r < 0)
        return r;
    c->order_send = send;
    c->order_sends = send && send->max_sends ? send->max_sends : CC_ORDER_SENDS;
    c->order_unjudged = false;
    r = exchange(c, "POST", url, json_body, CC_RP_ORDER, &resp);
    if (r == PA_E_STOPPED_BEFORE_SEND) {
        r = c->before_send_rc;
        set_error(c, _("the order POST was stopped before it was sent (%s); %s"), _(pa_err_str(r)),
                  _(CC_HINT_NOT_PLACED));
    } else if (r < 0) {
        r = order_exchange_failed(c, r);
    } else {
        r = order_answer(c, url, &resp, &res);
    }
    if (r < 0 && !c->maybe_placed)
        (void)order_not_sent(c, -1.0); /* the last send placed nothing, and none follows */
    c->order_send = NULL;
    c->order_unjudged = false;
    if (r == 0)
        *ret = res;
    http_response_clear(&resp);
    return r;
}

int cc_place_order(struct cc_client *c, const char *product, const char *json_body,
                   cc_before_send_fn *before_send, void *arg, struct cc_order_result *ret)
{
    const struct cc_order_send once = {before_send, NULL, arg, 1};

    return cc_place_order_ex(c, product, json_body, &once, ret);
}

int cc_order_info(struct cc_client *c, long order_id, struct cc_order_info *ret)
{
    struct http_response resp = {0};
    struct cc_perr pe = {""};
    char url[CC_URL_MAX];
    int r;

    memset(ret, 0, sizeof(*ret));
    c->last_error[0] = '\0';
    if (order_id <= 0)
        return PA_E_INTERNAL;
    r = make_url(c, url, sizeof(url), "/order/certificate/%ld", order_id);
    if (r < 0)
        return r;
    r = get_checked(c, url, true, &resp);
    if (r < 0)
        goto out;
    r = cc_parse_order_info_ex(resp.body, resp.body_len, ret, &pe);
    if (r == PA_E_CA_PROTOCOL)
        set_error(c, _("unreadable order info from %s: %s"), url, pe.msg);
out:
    http_response_clear(&resp);
    return r;
}

/* Append page[0..n) to *list (size *count); takes ownership of page's strings. */
static int list_append(struct cc_order_info **list, size_t *count, struct cc_order_info *page,
                       size_t n)
{
    struct cc_order_info *l;

    if (n == 0)
        return 0;
    if (*count + n > CC_MAX_ORDERS)
        return PA_E_CA_PROTOCOL;
    l = realloc(*list, (*count + n) * sizeof(*l));
    if (!l)
        return PA_E_NOMEM;
    memcpy(l + *count, page, n * sizeof(*l));
    *list = l;
    *count += n;
    return 0;
}

/*
 * Receives one page of the order list and owns it (cc_order_list_free or take its entries).
 * Returns 0 to go on, 1 to stop walking, or a PA_E_* code (last_error set).
 */
typedef int page_fn(struct cc_client *c, struct cc_order_info *page, size_t n, void *arg);

/* GET and parse one page of the order list; *ret_total as cc_parse_order_list. */
static int get_order_page(struct cc_client *c, const char *url, struct cc_order_info **ret,
                          size_t *ret_n, long *ret_total)
{
    struct http_response resp = {0};
    struct cc_perr pe = {""};
    int r = get_checked(c, url, true, &resp);

    if (r < 0)
        goto out;
    r = cc_parse_order_list_ex(resp.body, resp.body_len, ret, ret_n, ret_total, &pe);
    if (r == PA_E_CA_PROTOCOL)
        set_error(c, _("unreadable order list from %s: %s"), url, pe.msg);
out:
    http_response_clear(&resp);
    return r;
}

/* Arguments of an order list walk: PA_E_CONFIG (product) or PA_E_USAGE (date), last_error set. */
static int check_list_args(struct cc_client *c, const char *product, const char *created_since)
{
    if (product && !valid_product(product)) {
        set_error(c, _("invalid product id"));
        return PA_E_CONFIG;
    }
    if (created_since && !cc_valid_date(created_since)) {
        set_error(c, _("invalid date \"%.20s\" (expected yyyy-mm-dd)"), created_since);
        return PA_E_USAGE;
    }
    return 0;
}

/* URL of the order list page at offset, with the optional product and date filters. */
static int order_page_url(struct cc_client *c, char *url, size_t url_len, const char *product,
                          const char *created_since, size_t offset)
{
    /* filters[product_name_id]=P&filters[date_created]=>=D, percent-encoded */
    return make_url(c, url, url_len, "/order/certificate?limit=%u&offset=%zu%s%s%s%s", c->page_size,
                    offset, product ? "&filters%5Bproduct_name_id%5D=" : "", product ? product : "",
                    created_since ? "&filters%5Bdate_created%5D=%3E%3D" : "",
                    created_since ? created_since : "");
}

/*
 * Walk the order list of product (NULL: all) created on or after created_since (NULL: any date),
 * page by page, handing each page to fn until fn stops or the list ends.
 */
static int walk_orders(struct cc_client *c, const char *product, const char *created_since,
                       page_fn *fn, void *arg)
{
    struct cc_order_info *page = NULL;
    size_t page_n = 0, offset = 0;
    char url[CC_URL_MAX];
    int r = check_list_args(c, product, created_since);

    if (r < 0)
        return r;
    for (unsigned pages = 0;; pages++) {
        long total = 0;

        if (pages >= CC_MAX_PAGES) {
            set_error(c, _("order list does not end after %u pages"), pages);
            return PA_E_CA_PROTOCOL;
        }
        r = order_page_url(c, url, sizeof(url), product, created_since, offset);
        if (r == 0)
            r = get_order_page(c, url, &page, &page_n, &total);
        if (r == 0)
            r = fn(c, page, page_n, arg); /* page now belongs to fn */
        if (r != 0)
            break;
        offset += page_n;
        if (page_n == 0 || offset >= (size_t)total)
            break;
    }
    return r < 0 ? r : 0;
}

struct collect {
    struct cc_order_info *all;
    size_t count;
};

/* page_fn of cc_list_orders: append the page to the collection. */
static int collect_page(struct cc_client *c, struct cc_order_info *page, size_t n, void *arg)
{
    struct collect *col = arg;
    int r = list_append(&col->all, &col->count, page, n);

    if (r < 0) {
        if (r == PA_E_CA_PROTOCOL)
            set_error(c, _("more than %d orders listed"), CC_MAX_ORDERS);
        cc_order_list_free(page, n);
        return r;
    }
    free(page); /* its strings now belong to the collection */
    return 0;
}

int cc_list_orders(struct cc_client *c, const char *product, const char *created_since,
                   struct cc_order_info **ret, size_t *ret_n)
{
    struct collect col = {NULL, 0};
    int r;

    c->last_error[0] = '\0';
    r = walk_orders(c, product, created_since, collect_page, &col);
    if (r < 0)
        goto out;
    *ret = col.all;
    *ret_n = col.count;
    col.all = NULL;
    col.count = 0;
out:
    cc_order_list_free(col.all, col.count);
    return r;
}

int cc_download(struct cc_client *c, long certificate_id, const char *format, char **ret_pem,
                size_t *ret_len)
{
    static const char begin[] = "-----BEGIN CERTIFICATE-----";
    struct http_response resp = {0};
    char url[CC_URL_MAX];
    int r;

    c->last_error[0] = '\0';
    if (certificate_id <= 0 || !format ||
        (strcmp(format, "pem_noroot") != 0 && strcmp(format, "pem_all") != 0 &&
         strcmp(format, "pem_nointermediate") != 0))
        return PA_E_INTERNAL;
    r = make_url(c, url, sizeof(url), "/certificate/%ld/download/format/%s", certificate_id,
                 format);
    if (r < 0)
        return r;
    r = get_checked(c, url, false, &resp);
    if (r < 0)
        goto out;
    if (!media_is(resp.content_type, "application/x-pem-file") &&
        !((media_is(resp.content_type, "text/plain") ||
           media_is(resp.content_type, "application/octet-stream")) &&
          resp.body_len >= sizeof(begin) - 1 && memcmp(resp.body, begin, sizeof(begin) - 1) == 0)) {
        set_error(c, _("HTTP %ld from %s: expected a PEM file, got %s"), resp.status, url,
                  resp.content_type ? resp.content_type : _("no content type"));
        r = PA_E_CA_PROTOCOL;
        goto out;
    }
    if (cc_check_pem_certs(resp.body, resp.body_len) < 0) {
        set_error(c, _("download from %s is not a bundle of PEM certificates"), url);
        r = PA_E_CA_PROTOCOL;
        goto out;
    }
    *ret_pem = resp.body;
    *ret_len = resp.body_len;
    resp.body = NULL;
    r = 0;
out:
    http_response_clear(&resp);
    return r;
}

/*
 * Serialise a flat object of string members (NULL values skipped) for a request body.
 * Returns 0 and a malloc'd string in *ret, or PA_E_NOMEM.
 */
static int build_body(char **ret, const char *k1, const char *v1, const char *k2, const char *v2)
{
    struct json_object *o = json_object_new_object();
    const char *s;
    int r = PA_E_NOMEM;

    if (!o)
        return PA_E_NOMEM;
    if (v1 && json_object_object_add(o, k1, json_object_new_string(v1)) < 0)
        goto out;
    if (v2 && json_object_object_add(o, k2, json_object_new_string(v2)) < 0)
        goto out;
    s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    if (!s)
        goto out;
    *ret = strdup(s);
    if (*ret)
        r = 0;
out:
    json_object_put(o);
    return r;
}

int cc_cancel_order(struct cc_client *c, long order_id, const char *note)
{
    struct http_response resp = {0};
    char url[CC_URL_MAX];
    char *body = NULL;
    int r;

    c->last_error[0] = '\0';
    if (order_id <= 0)
        return PA_E_INTERNAL;
    r = make_url(c, url, sizeof(url), "/order/certificate/%ld/status", order_id);
    if (r < 0)
        return r;
    r = build_body(&body, "status", "canceled", "note", note ? note : "canceled by pkio-agent");
    if (r < 0)
        return r;
    r = exchange(c, "PUT", url, body, CC_RP_UNPROCESSED, &resp);
    if (r < 0)
        goto out;
    if (resp.status != 204 && resp.status != 200)
        r = fail_status(c, &resp, url);
out:
    http_response_clear(&resp);
    free(body);
    return r;
}

int cc_revoke_certificate(struct cc_client *c, long certificate_id, const char *reason,
                          const char *comments, struct cc_revoke_result *ret)
{
    struct http_response resp = {0};
    struct cc_revoke_result res;
    char url[CC_URL_MAX], status[sizeof(c->last_error)];
    char *body = NULL;
    int r;

    memset(&res, 0, sizeof(res));
    c->last_error[0] = '\0';
    if (certificate_id <= 0)
        return PA_E_INTERNAL;
    r = make_url(c, url, sizeof(url), "/certificate/%ld/revoke", certificate_id);
    if (r < 0)
        return r;
    r = build_body(&body, "comments", comments ? comments : "revoked by pkio-agent",
                   "revocation_reason", reason);
    if (r < 0)
        return r;
    r = exchange(c, "PUT", url, body, CC_RP_UNPROCESSED, &resp);
    if (r < 0)
        goto out;
    if (resp.status < 200 || resp.status > 299) {
        r = fail_status(c, &resp, url);
        goto out;
    }
    /* 204: revoked. 200/201 with a request object: waits for an approver. */
    if (resp.body_len && media_is(resp.content_type, "application/json") &&
        cc_parse_revoke_pending(resp.body, resp.body_len, &res, status, sizeof(status)))
        set_error(c, _("revocation request %ld awaits approval in CertCentral (%s)"),
                  res.request_id, status);
    if (ret)
        *ret = res;
    r = 0;
out:
    http_response_clear(&resp);
    free(body);
    return r;
}

struct find {
    long certificate_id;
    long order_id; /* 0 until found */
};

/* page_fn of cc_find_order_by_certificate: stop at the order holding the certificate. */
static int find_in_page(struct cc_client *c, struct cc_order_info *page, size_t n, void *arg)
{
    struct find *f = arg;

    (void)c;
    for (size_t i = 0; i < n && !f->order_id; i++)
        if (page[i].certificate_id == f->certificate_id)
            f->order_id = page[i].id;
    cc_order_list_free(page, n);
    return f->order_id ? 1 : 0;
}

int cc_find_order_by_certificate(struct cc_client *c, const char *product, long certificate_id,
                                 long *ret_order_id)
{
    struct find f = {certificate_id, 0};
    int r;

    c->last_error[0] = '\0';
    if (certificate_id <= 0)
        return PA_E_INTERNAL;
    r = walk_orders(c, product, NULL, find_in_page, &f);
    if (r < 0)
        return r;
    if (!f.order_id) {
        set_error(c, _("no order holds certificate %ld"), certificate_id);
        return PA_E_CA_REJECTED;
    }
    *ret_order_id = f.order_id;
    return 0;
}

int cc_ping(struct cc_client *c)
{
    struct cc_order_info *page = NULL;
    size_t n = 0;
    char url[CC_URL_MAX];
    int r;

    c->last_error[0] = '\0';
    r = make_url(c, url, sizeof(url), "/order/certificate?limit=%u", 1u);
    if (r == 0)
        r = get_order_page(c, url, &page, &n, NULL);
    cc_order_list_free(page, n);
    return r;
}
