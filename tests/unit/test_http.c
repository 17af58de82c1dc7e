/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for agent/ca/http.c that need no server: URL policy, header checks, error mapping of
 * a refused connection, one http_conn across failures. TLS, connection reuse, Retry-After, body
 * caps and faults are covered by tests/integration/cc_*.sh against the CertCentral sandbox.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "pa_err.h"
#include "secret.h"

static const struct http_opts opts = {.connect_timeout_s = 5, .timeout_s = 5};

static void test_https_only(void **state)
{
    struct http_response resp;

    (void)state;
    assert_int_equal(http_request(&opts, "GET", "http://127.0.0.1:1/x", NULL, NULL, &resp),
                     PA_E_CONFIG);
    assert_non_null(strstr(resp.errmsg, "HTTPS only"));
    assert_false(resp.maybe_sent);
    assert_null(resp.body);
    http_response_clear(&resp);
    assert_int_equal(http_request(&opts, "GET", "ftp://127.0.0.1/x", NULL, NULL, &resp),
                     PA_E_CONFIG);
    http_response_clear(&resp);
    assert_int_equal(http_request(&opts, "GET", "file:///etc/passwd", NULL, NULL, &resp),
                     PA_E_CONFIG);
    http_response_clear(&resp);
    assert_int_equal(http_request(&opts, "GET", "not a url", NULL, NULL, &resp), PA_E_CONFIG);
    assert_non_null(strstr(resp.errmsg, "malformed URL"));
    http_response_clear(&resp);
    http_response_clear(NULL);
}

struct refusing {
    int fd;
    char url[64];
};

static int setup_refusing(void **state)
{
    struct refusing *r = calloc(1, sizeof(*r));
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);

    assert_non_null(r);
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(r->fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(r->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(r->fd, (struct sockaddr *)&sa, &len), 0);
    (void)snprintf(r->url, sizeof(r->url), "https://127.0.0.1:%u/services/v2/x",
                   (unsigned)ntohs(sa.sin_port));
    *state = r;
    return 0;
}

static int teardown_refusing(void **state)
{
    struct refusing *r = *state;

    close(r->fd);
    free(r);
    return 0;
}

static void test_refused(void **state)
{
    struct refusing *rf = *state;
    struct http_response resp;
    struct secret *key = NULL;

    assert_int_equal(secret_from_mem("secret-key-123", 14, &key), 0);
    assert_int_equal(http_request(&opts, "POST", rf->url, key, "{\"a\":1}", &resp),
                     PA_E_CA_UNAVAILABLE);
    assert_non_null(strstr(resp.errmsg, "refused"));
    assert_non_null(strstr(resp.errmsg, "127.0.0.1"));
    assert_null(strstr(resp.errmsg, "secret-key"));
    assert_false(resp.maybe_sent);
    assert_int_equal(resp.status, 0);
    assert_null(resp.body);
    http_response_clear(&resp);
    /* the caller's key is untouched by the request */
    assert_string_equal(key->buf, "secret-key-123");
    secret_free(key);
}

static void test_bad_key_and_method(void **state)
{
    struct refusing *rf = *state;
    struct http_response resp;
    struct secret *key = NULL;

    assert_int_equal(secret_from_mem("abc\r\nX-Evil: 1", 15, &key), 0);
    assert_int_equal(http_request(&opts, "GET", rf->url, key, NULL, &resp), PA_E_CONFIG);
    assert_non_null(strstr(resp.errmsg, "API key"));
    assert_null(strstr(resp.errmsg, "Evil"));
    http_response_clear(&resp);
    secret_free(key);
    assert_int_equal(http_request(&opts, "PATCH", rf->url, NULL, NULL, &resp), PA_E_INTERNAL);
    http_response_clear(&resp);
}

/* One http_conn for many requests: failures of every kind leave it usable and clean. */
static void test_conn_after_failures(void **state)
{
    struct refusing *rf = *state;
    struct http_conn *conn = NULL;
    struct http_response resp;

    assert_int_equal(http_conn_new(&conn), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(http_conn_request(conn, &opts, i == 1 ? "PUT" : "GET", rf->url, NULL,
                                           i == 1 ? "{}" : NULL, &resp),
                         PA_E_CA_UNAVAILABLE);
        assert_non_null(strstr(resp.errmsg, "refused"));
        assert_int_equal(resp.retry_after_s, 0);
        assert_false(resp.maybe_sent);
        assert_null(resp.body);
        http_response_clear(&resp);
    }
    assert_int_equal(http_conn_request(conn, &opts, "PATCH", rf->url, NULL, NULL, &resp),
                     PA_E_INTERNAL);
    http_response_clear(&resp);
    assert_int_equal(
        http_conn_request(conn, &opts, "GET", "http://127.0.0.1:1/x", NULL, NULL, &resp),
        PA_E_CONFIG);
    assert_non_null(strstr(resp.errmsg, "HTTPS only"));
    http_response_clear(&resp);
    assert_int_equal(http_conn_request(conn, &opts, "GET", rf->url, NULL, NULL, &resp),
                     PA_E_CA_UNAVAILABLE);
    http_response_clear(&resp);
    http_conn_free(conn);
    http_conn_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_https_only),
        cmocka_unit_test_setup_teardown(test_refused, setup_refusing, teardown_refusing),
        cmocka_unit_test_setup_teardown(test_bad_key_and_method, setup_refusing, teardown_refusing),
        cmocka_unit_test_setup_teardown(test_conn_after_failures, setup_refusing,
                                        teardown_refusing),
    };
    int r;

    if (http_global_init() < 0)
        return 1;
    r = cmocka_run_group_tests(tests, NULL, NULL);
    http_global_cleanup();
    return r;
}
