/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cc_driver - call one agent/ca/certcentral.c function against a CertCentral (sandbox) URL and
 * print the outcome as key=value lines, for tests/integration/cc_*.sh.
 *
 *   cc_driver --url URL --key-file FILE [--ca FILE] [--attempts N] [--base S] [--cap S]
 *             [--budget BURST_N BURST_S LONG_N LONG_S] [--station STATE_DIR SHARE]
 *             [--max-body N] [--timeout S] [--page-size N] [--debug]
 *             COMMAND ARGS... [+ COMMAND ARGS...]...
 *
 * Commands: place PRODUCT BODY_FILE (one POST) | order PRODUCT BODY_FILE (cc_place_order_ex:
 *           sent again while certainly not placed) | info ORDER_ID | info-repeat ORDER_ID N |
 *           list PRODUCT|- SINCE|- | download CERT_ID FORMAT OUT_FILE |
 *           cancel ORDER_ID NOTE | revoke CERT_ID REASON|- COMMENTS|- |
 *           find-order CERT_ID [PRODUCT] | ping
 * Several commands joined by "+" run one after the other on one client (one connection cache),
 * stopping at the first failure. --station shares the rate budget through STATE_DIR/ratebudget.
 *
 * Exit status: 0 on success, else -PA_E_* (e.g. 19 for PA_E_CA_AUTH), 2 for usage errors.
 * The last lines are always "requests=N", "connections=N" (opened by libcurl) and
 * "slept=COUNT total=S max=S" (real sleeps).
 * The API key is read from a 0600 file, never from argv.
 */
#include "certcentral.h"
#include "http.h"
#include "log.h"
#include "pa_err.h"
#include "secret.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DRV_USAGE 1 /* run(): bad command line (positive: never a PA_E_* code) */

struct sleeps {
    unsigned n;
    double total;
    double max;
};

static void real_sleep(double s, void *arg)
{
    struct sleeps *sl = arg;
    struct timespec ts;

    sl->n++;
    sl->total += s;
    if (s > sl->max)
        sl->max = s;
    if (!(s > 0))
        return;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int usage(void)
{
    fprintf(stderr, "usage: cc_driver --url URL --key-file FILE [options] COMMAND ARGS...\n");
    return 2;
}

static int num(const char *s, double *ret)
{
    char *end = NULL;

    errno = 0;
    *ret = strtod(s, &end);
    return errno == 0 && end != s && *end == '\0' ? 0 : -1;
}

static int lnum(const char *s, long *ret)
{
    char *end = NULL;

    errno = 0;
    *ret = strtol(s, &end, 10);
    return errno == 0 && end != s && *end == '\0' ? 0 : -1;
}

/* Read a whole file into a NUL-terminated buffer (caller frees). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;

    if (!f)
        return NULL;
    for (;;) {
        size_t n;

        if (cap - len < 4096) {
            char *p = realloc(buf, cap + 65536);

            if (!p) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = p;
            cap += 65536;
        }
        n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

static void print_info(const char *prefix, const struct cc_order_info *oi)
{
    static const char *const st[] = {"ISSUED", "WAITING", "FAILED", "UNKNOWN"};

    printf("%sid=%ld status=%s st=%s certificate_id=%ld product=%s has_csr=%d\n", prefix, oi->id,
           oi->status, st[oi->st], oi->certificate_id, oi->product ? oi->product : "-",
           oi->csr != NULL);
    printf("%sreason=%s\n", prefix, oi->reason);
    printf("%scommon_name=%s\n", prefix, oi->common_name ? oi->common_name : "-");
    printf("%sserial_number=%s\n", prefix, oi->serial_number ? oi->serial_number : "-");
    printf("%sdate_created=%s\n", prefix, oi->date_created ? oi->date_created : "-");
    printf("%svalid_till=%s\n", prefix, oi->valid_till[0] ? oi->valid_till : "-");
    printf("%sindividual id=%ld first_name=%s last_name=%s email=%s\n", prefix, oi->individual.id,
           oi->individual.first_name ? oi->individual.first_name : "-",
           oi->individual.last_name ? oi->individual.last_name : "-",
           oi->individual.email ? oi->individual.email : "-");
    printf("%srevoke_request_id=%ld revoke_request_status=%s\n", prefix, oi->revoke_request_id,
           oi->revoke_request_status[0] ? oi->revoke_request_status : "-");
}

/* revoke CERT_ID REASON|- COMMENTS|- */
static int cmd_revoke(struct cc_client *c, long cert_id, const char *reason, const char *comments)
{
    struct cc_revoke_result res = {.request_id = -1};
    int r = cc_revoke_certificate(c, cert_id, strcmp(reason, "-") ? reason : NULL,
                                  strcmp(comments, "-") ? comments : NULL, &res);

    if (r < 0)
        return r;
    printf("pending=%d request_id=%ld request_status=%s\n", res.pending, res.request_id,
           res.request_status[0] ? res.request_status : "-");
    printf("note=%s\n", cc_last_error(c));
    return 0;
}

/* find-order CERT_ID [PRODUCT] */
static int cmd_find_order(struct cc_client *c, int argc, char **argv)
{
    long cert_id = 0, order_id = 0;
    int r;

    if (argc < 2 || argc > 3 || lnum(argv[1], &cert_id) < 0)
        return DRV_USAGE;
    r = cc_find_order_by_certificate(c, argc == 3 ? argv[2] : NULL, cert_id, &order_id);
    if (r == 0)
        printf("order_id=%ld\n", order_id);
    return r;
}

/* ping */
static int cmd_ping(struct cc_client *c)
{
    int r = cc_ping(c);

    if (r == 0)
        printf("ping=ok\n");
    return r;
}

/* list PRODUCT|- SINCE|- */
static int cmd_list(struct cc_client *c, const char *product, const char *since)
{
    struct cc_order_info *l = NULL;
    size_t n = 0;
    int r = cc_list_orders(c, strcmp(product, "-") ? product : NULL,
                           strcmp(since, "-") ? since : NULL, &l, &n);

    if (r == 0) {
        printf("count=%zu\n", n);
        for (size_t i = 0; i < n; i++)
            printf("order id=%ld status=%s certificate_id=%ld product=%s\n", l[i].id, l[i].status,
                   l[i].certificate_id, l[i].product ? l[i].product : "-");
    }
    cc_order_list_free(l, n);
    return r;
}

/* download CERT_ID FORMAT OUT_FILE */
static int cmd_download(struct cc_client *c, long cert_id, const char *format, const char *path)
{
    char *pem = NULL;
    size_t len = 0;
    FILE *f;
    int r = cc_download(c, cert_id, format, &pem, &len);

    if (r < 0)
        return r;
    f = fopen(path, "wb");
    if (!f || fwrite(pem, 1, len, f) != len) {
        if (f)
            fclose(f);
        free(pem);
        return PA_E_IO;
    }
    fclose(f);
    free(pem);
    printf("bytes=%zu\n", len);
    return 0;
}

static int run(struct cc_client *c, int argc, char **argv)
{
    const char *cmd = argv[0];
    long id = 0;
    int r;

    if ((strcmp(cmd, "place") == 0 || strcmp(cmd, "order") == 0) && argc == 3) {
        struct cc_order_result res = {0};
        char *body = slurp(argv[2]);

        if (!body)
            return PA_E_IO;
        if (cmd[0] == 'p')
            r = cc_place_order(c, argv[1], body, NULL, NULL, &res);
        else
            r = cc_place_order_ex(c, argv[1], body, NULL, &res);
        free(body);
        if (r == 0)
            printf("id=%ld certificate_id=%ld request_status=%s\n", res.id, res.certificate_id,
                   res.request_status);
        return r;
    }
    if (strcmp(cmd, "info") == 0 && argc == 2 && lnum(argv[1], &id) == 0) {
        struct cc_order_info oi;

        r = cc_order_info(c, id, &oi);
        if (r == 0)
            print_info("", &oi);
        cc_order_info_clear(&oi);
        return r;
    }
    if (strcmp(cmd, "info-repeat") == 0 && argc == 3 && lnum(argv[1], &id) == 0) {
        long n = 0;

        if (lnum(argv[2], &n) < 0)
            return DRV_USAGE;
        for (long i = 0; i < n; i++) {
            struct cc_order_info oi;

            r = cc_order_info(c, id, &oi);
            cc_order_info_clear(&oi);
            if (r < 0)
                return r;
        }
        printf("done=%ld\n", n);
        return 0;
    }
    if (strcmp(cmd, "list") == 0 && argc == 3)
        return cmd_list(c, argv[1], argv[2]);
    if (strcmp(cmd, "download") == 0 && argc == 4 && lnum(argv[1], &id) == 0)
        return cmd_download(c, id, argv[2], argv[3]);
    if (strcmp(cmd, "cancel") == 0 && argc == 3 && lnum(argv[1], &id) == 0)
        return cc_cancel_order(c, id, argv[2]);
    if (strcmp(cmd, "revoke") == 0 && argc == 4 && lnum(argv[1], &id) == 0)
        return cmd_revoke(c, id, argv[2], argv[3]);
    if (strcmp(cmd, "find-order") == 0)
        return cmd_find_order(c, argc, argv);
    if (strcmp(cmd, "ping") == 0 && argc == 1)
        return cmd_ping(c);
    return DRV_USAGE;
}

/* The commands of argv, separated by "+", one after the other until one fails. */
static int run_all(struct cc_client *c, int argc, char **argv)
{
    int start = 0, r = DRV_USAGE;

    for (int k = 0; k <= argc; k++) {
        if (k < argc && strcmp(argv[k], "+") != 0)
            continue;
        if (k == start)
            return DRV_USAGE;
        r = run(c, k - start, argv + start);
        if (r != 0)
            return r;
        start = k + 1;
    }
    return r;
}

int main(int argc, char **argv)
{
    const char *url = NULL, *key_file = NULL;
    struct http_opts opts = {.connect_timeout_s = 10, .timeout_s = 30};
    double base = 0.05, cap = 0.5, budget[4] = {0};
    long attempts = 6, max_body = 0, page_size = 0;
    const char *station = NULL;
    double share = 1;
    bool set_budget = false;
    struct sleeps sl = {0};
    struct secret *key = NULL;
    struct cc_client *c = NULL;
    int i, r;

    for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *o = argv[i];

        if (strcmp(o, "--debug") == 0) {
            log_set_level(LOG_LVL_DEBUG);
            continue;
        }
        if (strcmp(o, "--budget") == 0) {
            if (i + 4 >= argc)
                return usage();
            for (int k = 0; k < 4; k++)
                if (num(argv[i + 1 + k], &budget[k]) < 0)
                    return usage();
            set_budget = true;
            i += 4;
            continue;
        }
        if (strcmp(o, "--station") == 0) {
            if (i + 2 >= argc || num(argv[i + 2], &share) < 0)
                return usage();
            station = argv[i + 1];
            i += 2;
            continue;
        }
        if (i + 1 >= argc)
            return usage();
        if (strcmp(o, "--url") == 0)
            url = argv[++i];
        else if (strcmp(o, "--key-file") == 0)
            key_file = argv[++i];
        else if (strcmp(o, "--ca") == 0)
            opts.ca_bundle = argv[++i];
        else if (strcmp(o, "--attempts") == 0 && lnum(argv[i + 1], &attempts) == 0 && attempts > 0)
            i++;
        else if (strcmp(o, "--base") == 0 && num(argv[i + 1], &base) == 0)
            i++;
        else if (strcmp(o, "--cap") == 0 && num(argv[i + 1], &cap) == 0)
            i++;
        else if (strcmp(o, "--max-body") == 0 && lnum(argv[i + 1], &max_body) == 0 && max_body > 0)
            i++;
        else if (strcmp(o, "--timeout") == 0 && num(argv[i + 1], &opts.timeout_s) == 0)
            i++;
        else if (strcmp(o, "--page-size") == 0 && lnum(argv[i + 1], &page_size) == 0 &&
                 page_size > 0)
            i++;
        else
            return usage();
    }
    if (!url || !key_file || i >= argc)
        return usage();
    opts.max_body = (size_t)max_body;

    r = http_global_init();
    if (r < 0)
        goto out;
    r = secret_from_file(key_file, 256, &key);
    if (r < 0) {
        printf("error: cannot read key file\n");
        goto out;
    }
    r = cc_client_new(url, key, &opts, &c);
    if (r < 0) {
        printf("error: cc_client_new: %s\n", pa_err_str(r));
        goto out;
    }
    cc_client_set_retry(c, (unsigned)attempts, base, cap);
    cc_client_set_sleep(c, real_sleep, &sl);
    if (page_size)
        cc_client_set_page_size(c, (unsigned)page_size);
    if (set_budget) {
        r = cc_client_set_budget(c, (unsigned)budget[0], budget[1], (unsigned)budget[2], budget[3]);
        if (r < 0)
            goto out;
    }
    if (station) {
        r = cc_client_set_station_budget(c, station, share);
        if (r < 0)
            goto out;
    }
    r = run_all(c, argc - i, argv + i);
    if (r == DRV_USAGE) {
        usage();
    } else if (r < 0) {
        printf("rc=%d (%s)\n", r, pa_err_str(r));
        printf("maybe_placed=%d\n", cc_order_maybe_placed(c));
        printf("error=%s\n", cc_last_error(c));
    }
    printf("requests=%lu\n", cc_client_requests(c));
    printf("connections=%lu\n", cc_client_connections(c));
out:
    printf("slept=%u total=%.3f max=%.3f\n", sl.n, sl.total, sl.max);
    cc_client_free(c);
    secret_free(key);
    http_global_cleanup();
    if (r == DRV_USAGE)
        return 2;
    return r < 0 ? -r : 0;
}
