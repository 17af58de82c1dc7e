/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for agent/ca/certcentral.c: the pure parsers, status mapping, backoff,
 * PEM check, and the client's retry/budget/no-retry logic against a port that refuses
 * connections (a bound socket that never listens), with a fake clock and sleep; the order
 * POST's retry policy also against scripted answers (cc_client_set_transport).
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
#include <sys/wait.h>
#include <unistd.h>

#include "cc_internal.h"
#include "certcentral.h"
#include "http.h"
#include "pa_err.h"
#include "secret.h"
#include "stop.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* ------------------------------------------------------------------------------------------ */
/* cc_map_status */

static void test_map_status(void **state)
{
    static const struct {
        const char *s;
        enum cc_status st;
    } rows[] = {
        {"issued", CC_ST_ISSUED},          {"pending", CC_ST_WAITING},
        {"processing", CC_ST_WAITING},     {"needs_approval", CC_ST_WAITING},
        {"waiting_pickup", CC_ST_WAITING}, {"reissue_pending", CC_ST_WAITING},
        {"submitted", CC_ST_WAITING},      {"approved", CC_ST_WAITING},
        {"rejected", CC_ST_FAILED},        {"denied", CC_ST_FAILED},
        {"canceled", CC_ST_FAILED},        {"revoked", CC_ST_FAILED},
        {"expired", CC_ST_FAILED},         {"ISSUED", CC_ST_UNKNOWN},
        {"needs_csr", CC_ST_UNKNOWN},      {"", CC_ST_UNKNOWN},
        {"cancelled", CC_ST_UNKNOWN},
    };
    char reason[160];

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        reason[0] = '\0';
        assert_int_equal(cc_map_status(rows[i].s, reason, sizeof(reason)), rows[i].st);
        assert_true(reason[0] != '\0');
    }
    assert_int_equal(cc_map_status(NULL, reason, sizeof(reason)), CC_ST_UNKNOWN);
    cc_map_status("needs_approval", reason, sizeof(reason));
    assert_string_equal(reason, "needs approval in CertCentral");
    cc_map_status("weird\nstatus", reason, sizeof(reason));
    assert_non_null(strstr(reason, "unknown order status"));
    assert_null(strchr(reason, '\n'));
    /* a tiny buffer is still terminated */
    cc_map_status("needs_approval", reason, 5);
    assert_string_equal(reason, "need");
    assert_int_equal(cc_map_status("issued", NULL, 0), CC_ST_ISSUED);
}

/* ------------------------------------------------------------------------------------------ */
/* cc_backoff_delay */

static void test_backoff(void **state)
{
    (void)state;
    assert_true(cc_backoff_delay(0, 5, 60, 0.7) == 0);
    /* first retry: exactly base, whatever the random value */
    assert_true(cc_backoff_delay(1, 5, 60, 0.0) == 5);
    assert_true(cc_backoff_delay(1, 5, 60, 0.99) == 5);
    /* second: [5, 10], third [5, 20], fourth [5, 40], then capped at 60 */
    assert_true(cc_backoff_delay(2, 5, 60, 0.0) == 5);
    assert_true(cc_backoff_delay(2, 5, 60, 0.5) == 7.5);
    assert_true(cc_backoff_delay(3, 5, 60, 0.5) == 12.5);
    assert_true(cc_backoff_delay(4, 5, 60, 1.0) == 40);
    assert_true(cc_backoff_delay(5, 5, 60, 1.0) == 60);
    assert_true(cc_backoff_delay(6, 5, 60, 1.0) == 60);
    for (unsigned n = 1; n < 200; n++) {
        double d = cc_backoff_delay(n, 5, 60, 0.999999);

        assert_true(d >= 5 && d <= 60);
    }
    assert_true(cc_backoff_delay(4000000000u, 5, 60, 0.5) <= 60);
    /* out-of-range random values are clamped */
    assert_true(cc_backoff_delay(3, 5, 60, -3) == 5);
    assert_true(cc_backoff_delay(3, 5, 60, 7) == 20);
    /* cap below base: the cap wins; non-positive inputs: no wait */
    assert_true(cc_backoff_delay(3, 5, 2, 0.5) == 2);
    assert_true(cc_backoff_delay(3, 0, 60, 0.5) == 0);
    assert_true(cc_backoff_delay(3, 5, 0, 0.5) == 0);
}

/* ------------------------------------------------------------------------------------------ */
/* cc_parse_errors */

static void test_parse_errors(void **state)
{
    char msg[256];

    (void)state;
    assert_int_equal(cc_parse_errors(S("{\"errors\":[{\"code\":\"request_limit_exceeded\","
                                       "\"message\":\"Service unavailable, please limit request "
                                       "volume\"}]}"),
                                     msg, sizeof(msg)),
                     0);
    assert_string_equal(msg,
                        "request_limit_exceeded: Service unavailable, please limit request volume");
    assert_int_equal(cc_parse_errors(S("{\"errors\":[{\"code\":\"a|b\",\"message\":\"one\"},"
                                       "{\"code\":\"c\",\"message\":\"two\"},{\"code\":\"d\"}]}"),
                                     msg, sizeof(msg)),
                     0);
    assert_string_equal(msg, "a|b: one; c: two; d");
    /* the old single-object shape */
    assert_int_equal(
        cc_parse_errors(S("{\"errors\":{\"code\":\"x\",\"message\":\"y\"}}"), msg, sizeof(msg)), 0);
    assert_string_equal(msg, "x: y");
    /* control characters from the server never reach our one-line messages */
    assert_int_equal(
        cc_parse_errors(S("{\"errors\":[{\"code\":\"x\",\"message\":\"a\\nb\\u001bc\"}]}"), msg,
                        sizeof(msg)),
        0);
    assert_string_equal(msg, "x: a?b?c");
    /* truncation into a small buffer */
    assert_int_equal(
        cc_parse_errors(S("{\"errors\":[{\"code\":\"abcdefgh\",\"message\":\"ijkl\"}]}"), msg, 6),
        0);
    assert_string_equal(msg, "abcde");
    /* not the errors shape */
    assert_int_equal(cc_parse_errors(S("{\"errors\":[]}"), msg, sizeof(msg)), PA_E_CA_PROTOCOL);
    assert_string_equal(msg, "");
    assert_int_equal(cc_parse_errors(S("{\"id\":1}"), msg, sizeof(msg)), PA_E_CA_PROTOCOL);
    assert_int_equal(cc_parse_errors(S("{\"errors\":\"bad\"}"), msg, sizeof(msg)),
                     PA_E_CA_PROTOCOL);
    assert_int_equal(
        cc_parse_errors(S("{\"errors\":[{\"message\":\"no code\"}]}"), msg, sizeof(msg)),
        PA_E_CA_PROTOCOL);
    assert_int_equal(cc_parse_errors(S("{\"errors\":[{\"code\":\"\"}]}"), msg, sizeof(msg)),
                     PA_E_CA_PROTOCOL);
    assert_int_equal(cc_parse_errors(S("{\"errors\":[{\"code\":7}]}"), msg, sizeof(msg)),
                     PA_E_CA_PROTOCOL);
    assert_int_equal(cc_parse_errors(S("{\"errors\":[\"x\"]}"), msg, sizeof(msg)),
                     PA_E_CA_PROTOCOL);
    assert_int_equal(cc_parse_errors(S("<html>502</html>"), msg, sizeof(msg)), PA_E_CA_PROTOCOL);
    assert_int_equal(cc_parse_errors(S(""), msg, sizeof(msg)), PA_E_CA_PROTOCOL);
    assert_int_equal(cc_parse_errors(S("{\"errors\":[{\"code\":\"x\""), msg, sizeof(msg)),
                     PA_E_CA_PROTOCOL);
}

/* ------------------------------------------------------------------------------------------ */
/* cc_parse_order_result */

static void test_parse_order_result(void **state)
{
    struct cc_order_result r;

    (void)state;
    /* the four documented variants */
    memset(&r, 0x55, sizeof(r));
    assert_int_equal(
        cc_parse_order_result(S("{ \"id\": 112233, \"requests\": [ { \"id\": 113, \"status\": "
                                "\"pending\" } ] }"),
                              &r),
        0);
    assert_int_equal(r.id, 112233);
    assert_int_equal(r.certificate_id, 0);
    assert_string_equal(r.request_status, "pending");
    assert_int_equal(
        cc_parse_order_result(S("{ \"id\": 112233, \"requests\": [ { \"id\": 113, \"status\": "
                                "\"approved\" } ], \"certificate_id\": 113 }\n"),
                              &r),
        0);
    assert_int_equal(r.certificate_id, 113);
    assert_string_equal(r.request_status, "approved");
    assert_int_equal(cc_parse_order_result(S("{ \"id\": 112233, \"certificate_id\": 113 }"), &r),
                     0);
    assert_string_equal(r.request_status, "");
    assert_int_equal(cc_parse_order_result(S("{\"id\":1,\"requests\":[]}"), &r), 0);

    /* type errors are protocol errors, and ret stays untouched */
    memset(&r, 0, sizeof(r));
    r.id = 42;
    assert_int_equal(cc_parse_order_result(S("{\"id\":\"112233\"}"), &r), PA_E_CA_PROTOCOL);
    assert_int_equal(r.id, 42);
    assert_int_equal(cc_parse_order_result(S("{\"id\":112233.0}"), &r), PA_E_CA_PROTOCOL);
    assert_int_equal(cc_parse_order_result(S("{\"id\":-1}"), &r), PA_E_CA_PROTOCOL);
    assert_int_equal(cc_parse_order_result(S("{\"id\":0}"), &r), PA_E_CA_PROTOCOL);
    assert_int_equal(cc_parse_order_result(S("{\"id\":true}"), &r), PA_E_CA_PROTOCOL);
    assert_int_equal(cc_parse_order_result(S("{\"id\":99999999999999999999999}"), &r),
                     PA_E_CA_PROTOCOL);
    assert_int_equal(cc_parse_order_result(S("{\"certificate_id\":1}"), &r), PA_E_CA_PROTOCOL);
    assert_int_equal(cc_parse_order_result(S("{\"id\":1,\"certificate_id\":\"2\"}"), &r),
                     PA_E_CA_PROTOCOL);
    assert_int_equal(cc_parse_order_result(S("{\"id\":1,\"requests\":{}}"), &r), PA_E_CA_PROTOCOL);
    assert_int_equal(cc_parse_order_result(S("{\"id\":1,\"requests\":[1]}"), &r), PA_E_CA_PROTOCOL);
    assert_int_equal(cc_parse_order_result(S("{\"id\":1,\"requests\":[{\"status\":[\"x\"]}]}"), &r),
                     PA_E_CA_PROTOCOL);
    assert_int_equal(cc_parse_order_result(S("{\"id\":1,\"requests\":[{\"id\":\"3\"}]}"), &r),
                     PA_E_CA_PROTOCOL);
    /* null optional members are absent */
    assert_int_equal(cc_parse_order_result(S("{\"id\":1,\"certificate_id\":null}"), &r), 0);
    assert_int_equal(r.certificate_id, 0);
    /* syntax: truncated, trailing data, not an object, NUL bytes, bad UTF-8, too deep */
    assert_int_equal(cc_parse_order_result(S("{\"id\":1"), &r), PA_E_CA_PROTOCOL);
    assert_int_equal(cc_parse_order_result(S("{\"id\":1} x"), &r), PA_E_CA_PROTOCOL);
    assert_int_equal(cc_parse_order_result(S("{\"id\":1}{\"id\":2}"), &r), PA_E_CA_PROTOCOL);
    assert_int_equal(cc_parse_order_result(S("[{\"id\":1}]"), &r), PA_E_CA_PROTOCOL);
    assert_int_equal(cc_parse_order_result(S("12"), &r), PA_E_CA_PROTOCOL);
    assert_int_equal(cc_parse_order_result(S("{\"id\":1}\0"), &r), PA_E_CA_PROTOCOL);
    assert_int_equal(cc_parse_order_result(S("{\"id\":1,\"x\":\"\xff\"}"), &r), PA_E_CA_PROTOCOL);
    assert_int_equal(cc_parse_order_result(S("{\"id\":1,}"), &r), PA_E_CA_PROTOCOL);
    assert_int_equal(cc_parse_order_result(NULL, 0, &r), PA_E_CA_PROTOCOL);
    {
        char deep[200];
        size_t n = 0;

        n += (size_t)snprintf(deep, sizeof(deep), "{\"id\":1,\"x\":");
        for (int i = 0; i < 30; i++)
            deep[n++] = '[';
        for (int i = 0; i < 30; i++)
            deep[n++] = ']';
        deep[n++] = '}';
        assert_int_equal(cc_parse_order_result(deep, n, &r), PA_E_CA_PROTOCOL);
    }
    /* the body need not be NUL-terminated: parse only the given length */
    assert_int_equal(cc_parse_order_result("{\"id\":7}GARBAGE", 8, &r), 0);
    assert_int_equal(r.id, 7);
}

/* ------------------------------------------------------------------------------------------ */
/* cc_parse_order_info */

static const char issued_body[] =
    "{\"id\": 100001, \"certificate\": {\"id\": 300001, \"common_name\": \"Jan Jansen\", "
    "\"date_created\": \"2025-01-02T10:00:00+00:00\", \"signature_hash\": \"sha256\", "
    "\"serial_number\": \"4A0B\", \"thumbprint\": \"AB\", \"csr\": \"-----BEGIN CERTIFICATE "
    "REQUEST-----\\nMII\\n-----END CERTIFICATE REQUEST-----\\n\", \"cert_validity\": {\"days\": "
    "365}}, \"status\": \"issued\", \"is_renewed\": false, \"date_created\": "
    "\"2025-01-01T09:00:00+00:00\", \"product\": {\"name_id\": \"pkio_organisation_person_prof\", "
    "\"name\": \"PKIo\", \"type\": \"client_certificate\"}, \"requests\": [{\"id\": 200001, "
    "\"status\": \"approved\"}], \"cs_provisioning_method\": \"token\", \"payment_method\": "
    "\"balance\"}";

static void test_parse_order_info(void **state)
{
    struct cc_order_info oi;

    (void)state;
    assert_int_equal(cc_parse_order_info(issued_body, sizeof(issued_body) - 1, &oi), 0);
    assert_int_equal(oi.id, 100001);
    assert_string_equal(oi.status, "issued");
    assert_int_equal(oi.st, CC_ST_ISSUED);
    assert_int_equal(oi.certificate_id, 300001);
    assert_non_null(oi.csr);
    assert_non_null(strstr(oi.csr, "BEGIN CERTIFICATE REQUEST"));
    assert_string_equal(oi.serial_number, "4A0B");
    assert_string_equal(oi.common_name, "Jan Jansen");
    assert_string_equal(oi.date_created, "2025-01-01T09:00:00+00:00");
    assert_string_equal(oi.product, "pkio_organisation_person_prof");
    cc_order_info_clear(&oi);
    assert_null(oi.csr);
    cc_order_info_clear(&oi); /* twice is harmless */
    cc_order_info_clear(NULL);

    /* minimal pending order; request waiting for an approver */
    assert_int_equal(cc_parse_order_info(S("{\"id\":5,\"status\":\"pending\",\"requests\":[{\"id\""
                                           ":9,\"status\":\"pending\"}]}"),
                                         &oi),
                     0);
    assert_int_equal(oi.st, CC_ST_WAITING);
    assert_int_equal(oi.certificate_id, 0);
    assert_null(oi.csr);
    assert_null(oi.product);
    assert_string_equal(oi.reason, "request awaits approval in CertCentral");
    cc_order_info_clear(&oi);

    assert_int_equal(cc_parse_order_info(S("{\"id\":5,\"status\":\"needs_approval\"}"), &oi), 0);
    assert_int_equal(oi.st, CC_ST_WAITING);
    assert_string_equal(oi.reason, "needs approval in CertCentral");
    cc_order_info_clear(&oi);

    /* date_created falls back to the certificate's; nulls are absent */
    assert_int_equal(cc_parse_order_info(S("{\"id\":5,\"status\":\"pending\",\"date_created\":null,"
                                           "\"certificate\":{\"id\":null,\"date_created\":\"d\","
                                           "\"csr\":null}}"),
                                         &oi),
                     0);
    assert_string_equal(oi.date_created, "d");
    assert_int_equal(oi.certificate_id, 0);
    cc_order_info_clear(&oi);

    /* unknown status parses (UNKNOWN), long status is truncated to fit */
    assert_int_equal(cc_parse_order_info(S("{\"id\":5,\"status\":\"a_very_long_status_that_does_"
                                           "not_fit_in_32_bytes\"}"),
                                         &oi),
                     0);
    assert_int_equal(oi.st, CC_ST_UNKNOWN);
    assert_int_equal(strlen(oi.status), 31);
    cc_order_info_clear(&oi);

    /* issued without a certificate id cannot be downloaded: protocol error */
    assert_int_equal(cc_parse_order_info(S("{\"id\":5,\"status\":\"issued\"}"), &oi),
                     PA_E_CA_PROTOCOL);
    /* wrong types anywhere: protocol error, ret zeroed */
    static const char *const bad[] = {
        "{\"id\":\"5\",\"status\":\"pending\"}",
        "{\"id\":5,\"status\":[\"pending\"]}",
        "{\"id\":5}",
        "{\"status\":\"pending\"}",
        "{\"id\":5,\"status\":\"pending\",\"certificate\":[]}",
        "{\"id\":5,\"status\":\"pending\",\"certificate\":{\"id\":\"300001\"}}",
        "{\"id\":5,\"status\":\"pending\",\"certificate\":{\"csr\":1}}",
        "{\"id\":5,\"status\":\"pending\",\"certificate\":{\"serial_number\":12}}",
        "{\"id\":5,\"status\":\"pending\",\"certificate\":{\"common_name\":{}}}",
        "{\"id\":5,\"status\":\"pending\",\"date_created\":1}",
        "{\"id\":5,\"status\":\"pending\",\"product\":\"x\"}",
        "{\"id\":5,\"status\":\"pending\",\"product\":{\"name_id\":3}}",
        "{\"id\":5,\"status\":\"pending\",\"requests\":[\"x\"]}",
        "{\"id\":5,\"status\":\"pending\",\"requests\":{}}",
        "{\"id\":5,\"status\":\"pend\\u0000ing\"}",
        "{\"id\":5,\"status\":\"pending\"",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&oi, 0x55, sizeof(oi));
        assert_int_equal(cc_parse_order_info(bad[i], strlen(bad[i]), &oi), PA_E_CA_PROTOCOL);
        assert_int_equal(oi.id, 0);
        assert_null(oi.csr);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* cc_parse_order_list */

static void test_parse_order_list(void **state)
{
    struct cc_order_info *l = NULL;
    size_t n = 99;
    long total = -7;

    (void)state;
    assert_int_equal(cc_parse_order_list(
                         S("{\"orders\":[{\"id\":1,\"status\":\"issued\",\"certificate\":{\"id\":"
                           "11,\"common_name\":\"A\"},\"product\":{\"name_id\":\"p\"}},{\"id\":2,"
                           "\"status\":\"pending\"}],\"page\":{\"total\":5,\"limit\":2,\"offset\""
                           ":0}}"),
                         &l, &n, &total),
                     0);
    assert_int_equal(n, 2);
    assert_int_equal(total, 5);
    assert_int_equal(l[0].id, 1);
    assert_int_equal(l[0].certificate_id, 11);
    assert_string_equal(l[0].common_name, "A");
    assert_string_equal(l[0].product, "p");
    assert_int_equal(l[1].st, CC_ST_WAITING);
    cc_order_list_free(l, n);

    assert_int_equal(
        cc_parse_order_list(S("{\"orders\":[],\"page\":{\"total\":0}}"), &l, &n, &total), 0);
    assert_int_equal(n, 0);
    assert_null(l);
    assert_int_equal(total, 0);
    /* no page object: total is the count */
    assert_int_equal(
        cc_parse_order_list(S("{\"orders\":[{\"id\":1,\"status\":\"x\"}]}"), &l, &n, &total), 0);
    assert_int_equal(total, 1);
    cc_order_list_free(l, n);
    assert_int_equal(cc_parse_order_list(S("{\"orders\":[]}"), &l, &n, NULL), 0);
    cc_order_list_free(NULL, 0);

    static const char *const bad[] = {
        "{}",
        "{\"orders\":{}}",
        "{\"orders\":[1]}",
        "{\"orders\":[{\"id\":1,\"status\":\"issued\"}]}", /* issued, no certificate id */
        "{\"orders\":[{\"id\":1,\"status\":\"x\"},{\"id\":\"2\",\"status\":\"x\"}]}",
        "{\"orders\":[],\"page\":{\"total\":\"3\"}}",
        "{\"orders\":[],\"page\":{\"total\":-1}}",
        "{\"orders\":[],\"page\":[]}",
        "{\"orders\":[{\"id\":1,\"status\":\"x\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        l = NULL;
        n = 0;
        assert_int_equal(cc_parse_order_list(bad[i], strlen(bad[i]), &l, &n, &total),
                         PA_E_CA_PROTOCOL);
        assert_null(l);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* cc_parse_order_info: holder, valid_till, revoke requests */

/* Parse body, expecting success. */
static void parse_ok(const char *body, struct cc_order_info *oi)
{
    assert_int_equal(cc_parse_order_info(body, strlen(body), oi), 0);
}

/* Parse body, expecting PA_E_CA_PROTOCOL and nothing left to free. */
static void parse_bad(const char *body)
{
    struct cc_order_info oi;

    memset(&oi, 0x55, sizeof(oi));
    assert_int_equal(cc_parse_order_info(body, strlen(body), &oi), PA_E_CA_PROTOCOL);
    assert_int_equal(oi.id, 0);
    assert_null(oi.individual.first_name);
    assert_null(oi.individual.email);
    assert_int_equal(oi.individual.id, 0);
    assert_string_equal(oi.valid_till, "");
    assert_int_equal(oi.revoke_request_id, 0);
}

static void test_parse_order_individual(void **state)
{
    struct cc_order_info oi;

    (void)state;
    /* top level, as order info shows it */
    parse_ok("{\"id\":5,\"status\":\"pending\",\"individual\":{\"id\":21,\"first_name\":\"Jan\","
             "\"last_name\":\"Jansen\",\"email\":\"jan@example.nl\",\"telephone\":\"+31 20\","
             "\"professional_title\":\"Notaris\"}}",
             &oi);
    assert_int_equal(oi.individual.id, 21);
    assert_string_equal(oi.individual.first_name, "Jan");
    assert_string_equal(oi.individual.last_name, "Jansen");
    assert_string_equal(oi.individual.email, "jan@example.nl");
    cc_order_info_clear(&oi);
    assert_null(oi.individual.first_name);
    assert_int_equal(oi.individual.id, 0);

    /* under certificate, as the order body had it */
    parse_ok("{\"id\":5,\"status\":\"pending\",\"certificate\":{\"individual\":{\"first_name\":"
             "\"Piet\",\"email\":\"piet@example.nl\"}}}",
             &oi);
    assert_int_equal(oi.individual.id, 0);
    assert_string_equal(oi.individual.first_name, "Piet");
    assert_null(oi.individual.last_name);
    assert_string_equal(oi.individual.email, "piet@example.nl");
    cc_order_info_clear(&oi);

    /* the top level wins over the certificate's; a stored individual may show only its id */
    parse_ok("{\"id\":5,\"status\":\"pending\",\"individual\":{\"id\":7},\"certificate\":{"
             "\"individual\":{\"id\":8,\"first_name\":\"X\"}}}",
             &oi);
    assert_int_equal(oi.individual.id, 7);
    assert_null(oi.individual.first_name);
    cc_order_info_clear(&oi);

    /* a null top level falls back to the certificate's */
    parse_ok("{\"id\":5,\"status\":\"pending\",\"individual\":null,\"certificate\":{"
             "\"individual\":{\"last_name\":\"Klaassen\"}}}",
             &oi);
    assert_string_equal(oi.individual.last_name, "Klaassen");
    cc_order_info_clear(&oi);

    /* absent everywhere: zero; nulls inside are absent */
    parse_ok("{\"id\":5,\"status\":\"pending\",\"certificate\":{\"id\":3}}", &oi);
    assert_int_equal(oi.individual.id, 0);
    assert_null(oi.individual.first_name);
    assert_null(oi.individual.last_name);
    assert_null(oi.individual.email);
    cc_order_info_clear(&oi);
    parse_ok("{\"id\":5,\"status\":\"pending\",\"individual\":{\"id\":null,\"email\":null}}", &oi);
    assert_int_equal(oi.individual.id, 0);
    assert_null(oi.individual.email);
    cc_order_info_clear(&oi);

    /* wrong types: protocol error, nothing leaks (the strings before the bad one were copied) */
    parse_bad("{\"id\":5,\"status\":\"pending\",\"individual\":\"Jan Jansen\"}");
    parse_bad("{\"id\":5,\"status\":\"pending\",\"individual\":[]}");
    parse_bad("{\"id\":5,\"status\":\"pending\",\"individual\":{\"id\":\"21\"}}");
    parse_bad("{\"id\":5,\"status\":\"pending\",\"individual\":{\"id\":0}}");
    parse_bad("{\"id\":5,\"status\":\"pending\",\"individual\":{\"id\":1.5}}");
    parse_bad("{\"id\":5,\"status\":\"pending\",\"individual\":{\"first_name\":1}}");
    parse_bad("{\"id\":5,\"status\":\"pending\",\"individual\":{\"first_name\":\"Jan\","
              "\"last_name\":true}}");
    parse_bad("{\"id\":5,\"status\":\"pending\",\"individual\":{\"first_name\":\"Jan\","
              "\"last_name\":\"J\",\"email\":[\"jan@example.nl\"]}}");
    parse_bad("{\"id\":5,\"status\":\"pending\",\"individual\":{\"email\":\"a\\u0000b\"}}");
    parse_bad("{\"id\":5,\"status\":\"pending\",\"certificate\":{\"individual\":7}}");
    parse_bad("{\"id\":5,\"status\":\"pending\",\"certificate\":{\"individual\":{\"email\":{}}}}");

    /* the order list carries the holder too */
    {
        struct cc_order_info *l = NULL;
        size_t n = 0;

        assert_int_equal(
            cc_parse_order_list(S("{\"orders\":[{\"id\":1,\"status\":\"pending\",\"individual\":{"
                                  "\"email\":\"a@b.nl\"}},{\"id\":2,\"status\":\"pending\","
                                  "\"individual\":{\"email\":2}}]}"),
                                &l, &n, NULL),
            PA_E_CA_PROTOCOL);
        assert_null(l);
        assert_int_equal(
            cc_parse_order_list(S("{\"orders\":[{\"id\":1,\"status\":\"pending\",\"individual\":{"
                                  "\"email\":\"a@b.nl\"}}]}"),
                                &l, &n, NULL),
            0);
        assert_string_equal(l[0].individual.email, "a@b.nl");
        cc_order_list_free(l, n);
    }
}

static void test_parse_order_valid_till(void **state)
{
    struct cc_order_info oi;

    (void)state;
    assert_int_equal(cc_parse_order_info(issued_body, sizeof(issued_body) - 1, &oi), 0);
    assert_string_equal(oi.valid_till, ""); /* not in that answer */
    cc_order_info_clear(&oi);

    parse_ok("{\"id\":5,\"status\":\"issued\",\"certificate\":{\"id\":3,\"valid_from\":"
             "\"2025-01-02\",\"valid_till\":\"2026-01-02\"}}",
             &oi);
    assert_string_equal(oi.valid_till, "2026-01-02");
    cc_order_info_clear(&oi);
    assert_string_equal(oi.valid_till, "");

    /* only certificate.valid_till counts; null is absent */
    parse_ok("{\"id\":5,\"status\":\"pending\",\"valid_till\":\"2026-01-02\",\"certificate\":{"
             "\"valid_till\":null}}",
             &oi);
    assert_string_equal(oi.valid_till, "");
    cc_order_info_clear(&oi);

    parse_bad("{\"id\":5,\"status\":\"pending\",\"certificate\":{\"valid_till\":20260102}}");
    parse_bad("{\"id\":5,\"status\":\"pending\",\"certificate\":{\"valid_till\":\"2026/01/02\"}}");
    parse_bad("{\"id\":5,\"status\":\"pending\",\"certificate\":{\"valid_till\":\"26-01-02\"}}");
    parse_bad("{\"id\":5,\"status\":\"pending\",\"certificate\":{\"valid_till\":\"2026-1-02\"}}");
    parse_bad("{\"id\":5,\"status\":\"pending\",\"certificate\":{\"valid_till\":\"2026-01-0x\"}}");
    parse_bad("{\"id\":5,\"status\":\"pending\",\"certificate\":{\"valid_till\":"
              "\"2026-01-02T00:00:00+00:00\"}}");
    /* "" (before issuance) counts as absent */
    parse_ok("{\"id\":5,\"status\":\"pending\",\"certificate\":{\"valid_till\":\"\"}}", &oi);
    assert_string_equal(oi.valid_till, "");
    cc_order_info_clear(&oi);
}

static void test_parse_order_revoke_requests(void **state)
{
    struct cc_order_info oi;

    (void)state;
    /* none: no requests at all, or none of type revoke */
    parse_ok("{\"id\":5,\"status\":\"issued\",\"certificate\":{\"id\":3}}", &oi);
    assert_int_equal(oi.revoke_request_id, 0);
    assert_string_equal(oi.revoke_request_status, "");
    cc_order_info_clear(&oi);
    assert_int_equal(cc_parse_order_info(issued_body, sizeof(issued_body) - 1, &oi), 0);
    assert_int_equal(oi.revoke_request_id, 0);
    assert_string_equal(oi.revoke_request_status, "");
    cc_order_info_clear(&oi);
    parse_ok("{\"id\":5,\"status\":\"issued\",\"certificate\":{\"id\":3},\"requests\":[{\"id\":1,"
             "\"type\":\"new_request\",\"status\":\"approved\"},{\"id\":2,\"type\":\"reissue\","
             "\"status\":\"pending\"}]}",
             &oi);
    assert_int_equal(oi.revoke_request_id, 0);
    assert_string_equal(oi.revoke_request_status, "");
    cc_order_info_clear(&oi);

    /* one revoke request among others */
    parse_ok("{\"id\":5,\"status\":\"issued\",\"certificate\":{\"id\":3},\"requests\":[{\"id\":1,"
             "\"date\":\"2025-01-01T10:00:00+00:00\",\"type\":\"new_request\",\"status\":"
             "\"approved\"},{\"id\":2,\"date\":\"2025-03-01T10:00:00+00:00\",\"type\":\"revoke\","
             "\"status\":\"pending\",\"comments\":\"x\"}]}",
             &oi);
    assert_int_equal(oi.revoke_request_id, 2);
    assert_string_equal(oi.revoke_request_status, "pending");
    assert_string_equal(oi.status, "issued"); /* the order itself is still issued */
    cc_order_info_clear(&oi);
    assert_int_equal(oi.revoke_request_id, 0);

    /* several: the newest revoke wins, wherever it stands in the array */
    parse_ok(
        "{\"id\":5,\"status\":\"issued\",\"certificate\":{\"id\":3},\"requests\":[{\"id\":1,"
        "\"date\":\"2025-01-01T10:00:00+00:00\",\"type\":\"new_request\",\"status\":"
        "\"approved\"},{\"id\":2,\"date\":\"2025-02-01T10:00:00+00:00\",\"type\":\"revoke\","
        "\"status\":\"rejected\"},{\"id\":4,\"date\":\"2025-03-01T10:00:00+00:00\",\"type\":"
        "\"revoke\",\"status\":\"submitted\"},{\"id\":3,\"date\":\"2025-02-15T10:00:00+00:00\","
        "\"type\":\"reissue\",\"status\":\"pending\"}]}",
        &oi);
    assert_int_equal(oi.revoke_request_id, 4);
    assert_string_equal(oi.revoke_request_status, "submitted");
    cc_order_info_clear(&oi);
    parse_ok("{\"id\":5,\"status\":\"revoked\",\"requests\":[{\"id\":9,\"date\":\"2025-03-01 10:00:"
             "00\",\"type\":\"revoke\",\"status\":\"approved\"},{\"id\":6,\"date\":\"2025-02-01 "
             "10:00:00\",\"type\":\"revoke\",\"status\":\"rejected\"},{\"id\":1,\"type\":"
             "\"new_request\",\"status\":\"approved\"}]}",
             &oi);
    assert_int_equal(oi.revoke_request_id, 9);
    assert_string_equal(oi.revoke_request_status, "approved");
    cc_order_info_clear(&oi);
    /* same date (second resolution): the higher id is the newer */
    parse_ok("{\"id\":5,\"status\":\"issued\",\"certificate\":{\"id\":3},\"requests\":[{\"id\":12,"
             "\"date\":\"2025-03-01T10:00:00+00:00\",\"type\":\"revoke\",\"status\":\"pending\"},"
             "{\"id\":11,\"date\":\"2025-03-01T10:00:00+00:00\",\"type\":\"revoke\",\"status\":"
             "\"rejected\"}]}",
             &oi);
    assert_int_equal(oi.revoke_request_id, 12);
    assert_string_equal(oi.revoke_request_status, "pending");
    cc_order_info_clear(&oi);
    /* no dates: the higher id */
    parse_ok("{\"id\":5,\"status\":\"issued\",\"certificate\":{\"id\":3},\"requests\":[{\"id\":8,"
             "\"type\":\"revoke\",\"status\":\"pending\"},{\"id\":7,\"type\":\"revoke\",\"status\":"
             "\"rejected\"}]}",
             &oi);
    assert_int_equal(oi.revoke_request_id, 8);
    assert_string_equal(oi.revoke_request_status, "pending");
    cc_order_info_clear(&oi);

    /* wrong types: protocol error */
    parse_bad("{\"id\":5,\"status\":\"issued\",\"certificate\":{\"id\":3},\"requests\":[{\"id\":1,"
              "\"type\":7,\"status\":\"pending\"}]}");
    parse_bad("{\"id\":5,\"status\":\"issued\",\"certificate\":{\"id\":3},\"requests\":[{\"id\":"
              "\"1\",\"type\":\"revoke\",\"status\":\"pending\"}]}");
    parse_bad("{\"id\":5,\"status\":\"issued\",\"certificate\":{\"id\":3},\"requests\":[{\"id\":1,"
              "\"type\":\"revoke\",\"status\":[]}]}");
    parse_bad("{\"id\":5,\"status\":\"issued\",\"certificate\":{\"id\":3},\"requests\":[{\"id\":1,"
              "\"type\":\"revoke\",\"status\":\"pending\",\"date\":1}]}");
    parse_bad("{\"id\":5,\"status\":\"issued\",\"certificate\":{\"id\":3},\"requests\":[{\"id\":1,"
              "\"type\":\"revoke\",\"status\":\"pending\"},7]}");
}

/* ------------------------------------------------------------------------------------------ */
/* cc_check_pem_certs */

#define CERT_A                                                                                     \
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\nAAAA+/==\n-----END CERTIFICATE-----\n"

static void test_check_pem(void **state)
{
    (void)state;
    assert_int_equal(cc_check_pem_certs(S(CERT_A)), 0);
    assert_int_equal(cc_check_pem_certs(S(CERT_A CERT_A "\n" CERT_A)), 0);
    assert_int_equal(cc_check_pem_certs(S("-----BEGIN CERTIFICATE-----\r\nMIIB\r\n-----END "
                                          "CERTIFICATE-----")),
                     0);
    assert_int_equal(cc_check_pem_certs(S("\n\n" CERT_A "  \n")), 0);

    assert_int_equal(cc_check_pem_certs(S("")), PA_E_CA_PROTOCOL);
    assert_int_equal(cc_check_pem_certs(NULL, 0), PA_E_CA_PROTOCOL);
    assert_int_equal(cc_check_pem_certs(S("\n\n")), PA_E_CA_PROTOCOL);
    assert_int_equal(cc_check_pem_certs(S(CERT_A "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END "
                                                 "PRIVATE KEY-----\n")),
                     PA_E_CA_PROTOCOL);
    assert_int_equal(cc_check_pem_certs(S("-----BEGIN PKCS7-----\nMIIE\n-----END PKCS7-----\n")),
                     PA_E_CA_PROTOCOL);
    assert_int_equal(cc_check_pem_certs(S("subject=CN=x\n" CERT_A)), PA_E_CA_PROTOCOL);
    assert_int_equal(cc_check_pem_certs(S(CERT_A "trailing text\n")), PA_E_CA_PROTOCOL);
    assert_int_equal(cc_check_pem_certs(S("-----BEGIN CERTIFICATE-----\nMIIB\n")),
                     PA_E_CA_PROTOCOL);
    assert_int_equal(cc_check_pem_certs(S("-----BEGIN CERTIFICATE-----\n-----END "
                                          "CERTIFICATE-----\n")),
                     PA_E_CA_PROTOCOL);
    assert_int_equal(cc_check_pem_certs(S("-----BEGIN CERTIFICATE-----\nMI IB\n-----END "
                                          "CERTIFICATE-----\n")),
                     PA_E_CA_PROTOCOL);
    assert_int_equal(cc_check_pem_certs(S("-----BEGIN CERTIFICATE-----\nMIIB\n\n-----END "
                                          "CERTIFICATE-----\n")),
                     PA_E_CA_PROTOCOL);
    assert_int_equal(cc_check_pem_certs(S(CERT_A "\0")), PA_E_CA_PROTOCOL);
    assert_int_equal(cc_check_pem_certs(S("-----END CERTIFICATE-----\n")), PA_E_CA_PROTOCOL);
    {
        char many[17 * (sizeof(CERT_A) - 1) + 1];

        for (int i = 0; i < 17; i++)
            memcpy(many + (size_t)i * (sizeof(CERT_A) - 1), CERT_A, sizeof(CERT_A) - 1);
        assert_int_equal(cc_check_pem_certs(many, 16 * (sizeof(CERT_A) - 1)), 0);
        assert_int_equal(cc_check_pem_certs(many, 17 * (sizeof(CERT_A) - 1)), PA_E_CA_PROTOCOL);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* the client, against a port that refuses connections */

struct fake_time {
    double now;
    double slept[64];
    int n;
};

static void fake_sleep(double s, void *arg)
{
    struct fake_time *f = arg;

    if (f->n < 64)
        f->slept[f->n] = s;
    f->n++;
    f->now += s;
}

static double fake_clock(void *arg)
{
    return ((struct fake_time *)arg)->now;
}

struct refusing {
    int fd;
    char url[64];
};

/* A socket bound to a loopback port but never listening: connects there are refused, and no
 * other test can take the port while we hold it. */
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
    (void)snprintf(r->url, sizeof(r->url), "https://127.0.0.1:%u/services/v2/",
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

static struct cc_client *new_client(const char *url, struct fake_time *ft)
{
    struct secret *key = NULL;
    struct cc_client *c = NULL;
    struct http_opts opts = {.connect_timeout_s = 10, .timeout_s = 10};

    assert_int_equal(secret_from_mem(S("sandbox-0123456789abcdef"), &key), 0);
    assert_int_equal(cc_client_new(url, key, &opts, &c), 0);
    secret_free(key); /* the client keeps its own copy */
    cc_client_set_sleep(c, fake_sleep, ft);
    cc_client_set_clock(c, fake_clock, ft);
    return c;
}

static void test_client_new(void **state)
{
    struct secret *key = NULL, *empty = NULL;
    struct cc_client *c = NULL;

    (void)state;
    assert_int_equal(secret_from_mem(S("k-123456"), &key), 0);
    assert_int_equal(secret_from_mem(S(""), &empty), 0);
    assert_int_equal(cc_client_new("http://certcentral.digicert.eu/services/v2", key, NULL, &c),
                     PA_E_CONFIG);
    assert_int_equal(cc_client_new("https://", key, NULL, &c), PA_E_CONFIG);
    assert_int_equal(cc_client_new(NULL, key, NULL, &c), PA_E_CONFIG);
    assert_int_equal(cc_client_new(CC_BASE_URL_EU, empty, NULL, &c), PA_E_CONFIG);
    assert_int_equal(cc_client_new(CC_BASE_URL_EU, NULL, NULL, &c), PA_E_CONFIG);
    assert_null(c);
    assert_int_equal(cc_client_new(CC_BASE_URL_EU, key, NULL, &c), 0);
    assert_string_equal(cc_last_error(c), "");
    assert_false(cc_order_maybe_placed(c));
    assert_int_equal(cc_client_requests(c), 0);
    /* argument checks happen before any request */
    assert_int_equal(cc_place_order(c, "../x", "{}", NULL, NULL, &(struct cc_order_result){0}),
                     PA_E_CONFIG);
    assert_int_equal(cc_place_order(c, "", "{}", NULL, NULL, &(struct cc_order_result){0}),
                     PA_E_CONFIG);
    assert_int_equal(
        cc_list_orders(c, "p", "2025-1-01", &(struct cc_order_info *){NULL}, &(size_t){0}),
        PA_E_USAGE);
    assert_int_equal(cc_list_orders(c, "P x", NULL, &(struct cc_order_info *){NULL}, &(size_t){0}),
                     PA_E_CONFIG);
    assert_int_equal(cc_download(c, 1, "p7b", &(char *){NULL}, &(size_t){0}), PA_E_INTERNAL);
    assert_int_equal(cc_order_info(c, 0, &(struct cc_order_info){0}), PA_E_INTERNAL);
    assert_int_equal(cc_client_requests(c), 0);
    cc_client_free(c);
    cc_client_free(NULL);
    secret_free(key);
    secret_free(empty);
}

/* GET: retried with the backoff schedule, then UNAVAILABLE with the reason. */
static void test_client_get_retries(void **state)
{
    struct refusing *rf = *state;
    struct fake_time ft = {0};
    struct cc_client *c = new_client(rf->url, &ft);
    struct cc_order_info oi;

    cc_client_set_retry(c, 4, 1.0, 4.0);
    assert_int_equal(cc_order_info(c, 12, &oi), PA_E_CA_UNAVAILABLE);
    assert_int_equal(cc_client_requests(c), 4);
    assert_int_equal(ft.n, 3);
    assert_true(ft.slept[0] == 1.0);
    assert_true(ft.slept[1] >= 1.0 && ft.slept[1] <= 2.0);
    assert_true(ft.slept[2] >= 1.0 && ft.slept[2] <= 4.0);
    assert_non_null(strstr(cc_last_error(c), "refused"));
    assert_non_null(strstr(cc_last_error(c), "gave up after 4 attempts"));
    assert_null(strstr(cc_last_error(c), "0123456789abcdef"));
    cc_client_free(c);
}

/* PUT (cancel): a request that never left is retried too. */
static void test_client_put_retries_unsent(void **state)
{
    struct refusing *rf = *state;
    struct fake_time ft = {0};
    struct cc_client *c = new_client(rf->url, &ft);

    cc_client_set_retry(c, 3, 0.5, 1.0);
    assert_int_equal(cc_cancel_order(c, 12, "test"), PA_E_CA_UNAVAILABLE);
    assert_int_equal(cc_client_requests(c), 3);
    assert_int_equal(ft.n, 2);
    cc_client_free(c);
}

/* The order POST: one request, no retry, "not placed". */
static void test_client_post_never_retried(void **state)
{
    struct refusing *rf = *state;
    struct fake_time ft = {0};
    struct cc_client *c = new_client(rf->url, &ft);
    struct cc_order_result res = {0};

    cc_client_set_retry(c, 6, 1.0, 4.0);
    assert_int_equal(cc_place_order(c, "pkio_organisation_person_prof", "{}", NULL, NULL, &res),
                     PA_E_CA_UNAVAILABLE);
    assert_int_equal(cc_client_requests(c), 1);
    assert_int_equal(ft.n, 0);
    assert_false(cc_order_maybe_placed(c));
    assert_non_null(strstr(cc_last_error(c), "refused"));
    assert_non_null(strstr(cc_last_error(c), "the order was not placed"));
    cc_client_free(c);
}

/* Rate budget: the 4th request within 10 s waits for the window to open. */
static void test_client_budget(void **state)
{
    struct refusing *rf = *state;
    struct fake_time ft = {0};
    struct cc_client *c = new_client(rf->url, &ft);
    struct cc_order_info oi;

    cc_client_set_retry(c, 1, 1.0, 1.0);
    assert_int_equal(cc_client_set_budget(c, 3, 10.0, 1000, 180.0), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(cc_order_info(c, 12, &oi), PA_E_CA_UNAVAILABLE);
    assert_int_equal(ft.n, 0);
    assert_int_equal(cc_order_info(c, 12, &oi), PA_E_CA_UNAVAILABLE);
    assert_int_equal(ft.n, 1);
    assert_true(ft.slept[0] >= 10.0 && ft.slept[0] < 10.1);
    /* two more fit in the window that started at the 4th request; the 7th waits again */
    assert_int_equal(cc_order_info(c, 12, &oi), PA_E_CA_UNAVAILABLE);
    assert_int_equal(cc_order_info(c, 12, &oi), PA_E_CA_UNAVAILABLE);
    assert_int_equal(ft.n, 1);
    assert_int_equal(cc_order_info(c, 12, &oi), PA_E_CA_UNAVAILABLE);
    assert_int_equal(ft.n, 2);
    assert_true(ft.slept[1] >= 10.0 && ft.slept[1] < 10.1);
    assert_int_equal(cc_client_requests(c), 7);

    /* the long window alone: 2 per 60 s */
    ft.n = 0;
    assert_int_equal(cc_client_set_budget(c, 100, 5.0, 2, 60.0), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(cc_order_info(c, 12, &oi), PA_E_CA_UNAVAILABLE);
    assert_int_equal(ft.n, 2);
    assert_true(ft.slept[0] >= 60.0 && ft.slept[0] < 60.1);
    assert_true(ft.slept[1] >= 60.0 && ft.slept[1] < 60.1);
    cc_client_free(c);
}

/* Every request counts against the budget, retries included. */
static void test_client_budget_with_retries(void **state)
{
    struct refusing *rf = *state;
    struct fake_time ft = {0};
    struct cc_client *c = new_client(rf->url, &ft);
    struct cc_order_info oi;
    double total = 0;

    cc_client_set_retry(c, 6, 0.1, 0.1);
    assert_int_equal(cc_client_set_budget(c, 2, 5.0, 1000, 180.0), 0);
    assert_int_equal(cc_order_info(c, 12, &oi), PA_E_CA_UNAVAILABLE);
    assert_int_equal(cc_client_requests(c), 6);
    for (int i = 0; i < ft.n && i < 64; i++)
        total += ft.slept[i];
    /* 6 requests at 2 per 5 s need at least two full windows */
    assert_true(total >= 10.0);
    cc_client_free(c);
}

/* before_send: an event log shared by the sleep hook and the before-send hook. */
struct hook_probe {
    struct fake_time ft;
    struct cc_client *c;
    char events[16]; /* 'S' slept, 'H' hook called */
    int n_events;
    int calls;
    int rc;                 /* what the hook returns */
    bool get_inside;        /* the hook itself makes a GET */
    unsigned long requests; /* cc_client_requests() seen by the hook */
    double now;             /* clock seen by the hook */
};

static void probe_event(struct hook_probe *p, char ev)
{
    if (p->n_events < (int)sizeof(p->events) - 1)
        p->events[p->n_events++] = ev;
}

static void probe_sleep(double s, void *arg)
{
    struct hook_probe *p = arg;

    fake_sleep(s, &p->ft);
    probe_event(p, 'S');
}

static double probe_clock(void *arg)
{
    return ((struct hook_probe *)arg)->ft.now;
}

static int probe_hook(void *arg)
{
    struct hook_probe *p = arg;

    p->calls++;
    probe_event(p, 'H');
    p->requests = cc_client_requests(p->c);
    p->now = p->ft.now;
    if (p->get_inside) {
        struct cc_order_info oi;

        assert_int_equal(cc_order_info(p->c, 12, &oi), PA_E_CA_UNAVAILABLE);
    }
    return p->rc;
}

static struct cc_client *probe_client(const char *url, struct hook_probe *p)
{
    p->c = new_client(url, &p->ft);
    cc_client_set_sleep(p->c, probe_sleep, p);
    cc_client_set_clock(p->c, probe_clock, p);
    cc_client_set_retry(p->c, 1, 1.0, 1.0);
    /* one request per 10 s: the POST after a GET must wait for the window */
    assert_int_equal(cc_client_set_budget(p->c, 1, 10.0, 1000, 180.0), 0);
    return p->c;
}

/* The hook runs once, right before the POST, after the rate-budget wait. */
static void test_client_before_send_after_budget(void **state)
{
    struct refusing *rf = *state;
    struct hook_probe p = {.rc = 0};
    struct cc_client *c = probe_client(rf->url, &p);
    struct cc_order_result res = {0};
    struct cc_order_info oi;

    assert_int_equal(cc_order_info(c, 12, &oi), PA_E_CA_UNAVAILABLE);
    assert_int_equal(p.n_events, 0);
    assert_int_equal(cc_place_order(c, "pkio_organisation_person_prof", "{}", probe_hook, &p, &res),
                     PA_E_CA_UNAVAILABLE);
    assert_int_equal(p.calls, 1);
    assert_string_equal(p.events, "SH"); /* waited, then the hook, then the POST */
    assert_true(p.now >= 10.0);
    assert_int_equal(p.requests, 1); /* the POST had not started when the hook ran */
    assert_int_equal(cc_client_requests(c), 2);
    assert_false(cc_order_maybe_placed(c));

    /* the hook belongs to that one POST: later requests do not call it */
    assert_int_equal(cc_order_info(c, 12, &oi), PA_E_CA_UNAVAILABLE);
    assert_int_equal(cc_place_order(c, "pkio_organisation_person_prof", "{}", NULL, NULL, &res),
                     PA_E_CA_UNAVAILABLE);
    assert_int_equal(p.calls, 1);
    assert_int_equal(cc_client_requests(c), 4);

    /* a positive return is "go" as well */
    p.rc = 1;
    assert_int_equal(cc_place_order(c, "pkio_organisation_person_prof", "{}", probe_hook, &p, &res),
                     PA_E_CA_UNAVAILABLE);
    assert_int_equal(p.calls, 2);
    assert_int_equal(cc_client_requests(c), 5);
    /* argument errors come before the hook */
    assert_int_equal(cc_place_order(c, "Bad Product", "{}", probe_hook, &p, &res), PA_E_CONFIG);
    assert_int_equal(p.calls, 2);
    cc_client_free(c);
}

/* A negative hook return stops the POST: nothing sent, that value returned, not placed. */
static void test_client_before_send_stops(void **state)
{
    struct refusing *rf = *state;
    struct hook_probe p = {.rc = PA_E_IO};
    struct cc_client *c = probe_client(rf->url, &p);
    struct cc_order_result res = {.id = 77};
    unsigned long before;

    before = cc_client_requests(c);
    assert_int_equal(cc_place_order(c, "pkio_organisation_person_prof", "{}", probe_hook, &p, &res),
                     PA_E_IO);
    assert_int_equal(p.calls, 1);
    assert_int_equal(cc_client_requests(c), before);
    assert_false(cc_order_maybe_placed(c));
    assert_int_equal(res.id, 77); /* ret untouched */
    assert_non_null(strstr(cc_last_error(c), "the order was not placed"));

    p.rc = PA_E_BUSY;
    assert_int_equal(cc_place_order(c, "pkio_organisation_person_prof", "{}", probe_hook, &p, &res),
                     PA_E_BUSY);
    assert_int_equal(p.calls, 2);
    assert_int_equal(cc_client_requests(c), before);
    assert_false(cc_order_maybe_placed(c));
    cc_client_free(c);
}

/* A hook that talks to CertCentral itself (e.g. a last look-up) is not called again for that. */
static void test_client_before_send_reentrant(void **state)
{
    struct refusing *rf = *state;
    struct hook_probe p = {.rc = 0, .get_inside = true};
    struct cc_client *c = probe_client(rf->url, &p);
    struct cc_order_result res = {0};

    assert_int_equal(cc_place_order(c, "pkio_organisation_person_prof", "{}", probe_hook, &p, &res),
                     PA_E_CA_UNAVAILABLE);
    assert_int_equal(p.calls, 1);
    assert_int_equal(cc_client_requests(c), 2); /* the hook's GET and the POST */
    cc_client_free(c);
}

/* cc_ping: one GET of the order list, retried like every GET; argument checks of find-order. */
static void test_client_ping_find(void **state)
{
    struct refusing *rf = *state;
    struct fake_time ft = {0};
    struct cc_client *c = new_client(rf->url, &ft);
    long order_id = -5;

    cc_client_set_retry(c, 3, 1.0, 1.0);
    assert_int_equal(cc_ping(c), PA_E_CA_UNAVAILABLE);
    assert_int_equal(cc_client_requests(c), 3);
    assert_non_null(strstr(cc_last_error(c), "refused"));
    assert_non_null(strstr(cc_last_error(c), "gave up after 3 attempts"));

    assert_int_equal(cc_find_order_by_certificate(c, NULL, 0, &order_id), PA_E_INTERNAL);
    assert_int_equal(cc_find_order_by_certificate(c, "Bad Product", 5, &order_id), PA_E_CONFIG);
    assert_int_equal(cc_client_requests(c), 3);
    assert_int_equal(cc_find_order_by_certificate(c, NULL, 5, &order_id), PA_E_CA_UNAVAILABLE);
    assert_int_equal(cc_find_order_by_certificate(c, "pkio_burger", 5, &order_id),
                     PA_E_CA_UNAVAILABLE);
    assert_int_equal(cc_client_requests(c), 9);
    assert_int_equal(order_id, -5); /* written only on success */
    cc_client_free(c);
}

/* ------------------------------------------------------------------------------------------ */
/* the order POST's retry policy, against scripted answers */

#define ORDER_OK "{\"id\":4711,\"requests\":[{\"id\":1,\"status\":\"pending\"}]}"
#define PRODUCT  "pkio_organisation_person_prof"

/* One scripted outcome of a send: an answer (status > 0) or a failure (r < 0). */
struct scripted {
    long status;
    long retry_after_s;
    const char *body; /* JSON */
    int r;            /* failure: PA_E_CA_UNAVAILABLE, ... */
    bool maybe_sent, transient;
};

struct script {
    const struct scripted *steps;
    int n_steps;
    int sends;
    struct fake_time ft;
    char events[64]; /* B before_send, P sent, N not_sent, S slept */
    int n_events;
    int before, not_sent;
    double retry_in[16];
    int before_rc_at; /* before_send returns before_rc on this call (1-based); 0: never */
    int before_rc;
    int refuse_retry; /* not_sent returns this */
    bool stop_in_sleep;
};

static void script_event(struct script *sc, char ev)
{
    if (sc->n_events < (int)sizeof(sc->events) - 1)
        sc->events[sc->n_events++] = ev;
}

static int script_transport(void *arg, const char *method, const char *url, const char *body,
                            struct http_response *resp)
{
    struct script *sc = arg;
    const struct scripted *st;

    (void)body;
    memset(resp, 0, sizeof(*resp));
    assert_string_equal(method, "POST");
    assert_non_null(strstr(url, "/order/certificate/" PRODUCT));
    assert_true(sc->sends < sc->n_steps);
    st = &sc->steps[sc->sends++];
    script_event(sc, 'P');
    if (st->r < 0) {
        (void)snprintf(resp->errmsg, sizeof(resp->errmsg), "scripted failure %d", sc->sends);
        resp->maybe_sent = st->maybe_sent;
        resp->transient = st->transient;
        return st->r;
    }
    resp->status = st->status;
    resp->retry_after_s = st->retry_after_s;
    resp->content_type = strdup("application/json");
    resp->body = strdup(st->body ? st->body : "");
    assert_non_null(resp->content_type);
    assert_non_null(resp->body);
    resp->body_len = strlen(resp->body);
    return 0;
}

static void script_sleep(double s, void *arg)
{
    struct script *sc = arg;

    fake_sleep(s, &sc->ft);
    script_event(sc, 'S');
    if (sc->stop_in_sleep)
        stop_request(); /* as a SIGTERM during the wait */
}

static double script_clock(void *arg)
{
    return ((struct script *)arg)->ft.now;
}

static int script_before(void *arg)
{
    struct script *sc = arg;

    sc->before++;
    script_event(sc, 'B');
    return sc->before == sc->before_rc_at ? sc->before_rc : 0;
}

static int script_not_sent(void *arg, const char *why, double retry_in_s)
{
    struct script *sc = arg;

    assert_non_null(why);
    assert_true(why[0] != '\0');
    if (sc->not_sent < 16)
        sc->retry_in[sc->not_sent] = retry_in_s;
    sc->not_sent++;
    script_event(sc, 'N');
    return retry_in_s >= 0 ? sc->refuse_retry : 0;
}

static struct cc_client *script_client(struct script *sc, const struct scripted *steps, int n)
{
    struct cc_client *c = new_client("https://127.0.0.1:9/services/v2", &sc->ft);

    sc->steps = steps;
    sc->n_steps = n;
    cc_client_set_transport(c, script_transport, sc);
    cc_client_set_sleep(c, script_sleep, sc);
    cc_client_set_clock(c, script_clock, sc);
    return c;
}

static int script_order(struct cc_client *c, struct script *sc, struct cc_order_result *res)
{
    const struct cc_order_send send = {script_before, script_not_sent, sc, 0};

    return cc_place_order_ex(c, PRODUCT, "{}", &send, res);
}

/* 429 twice, then 201: three sends, the hooks around each, Retry-After honoured. */
static void test_order_429_resent(void **state)
{
    static const struct scripted steps[] = {
        {.status = 429, .retry_after_s = 7, .body = "{\"errors\":[{\"code\":\"limit\"}]}"},
        {.status = 429, .body = "{\"errors\":[{\"code\":\"limit\"}]}"},
        {.status = 201, .body = ORDER_OK},
    };
    struct script sc = {0};
    struct cc_client *c = script_client(&sc, steps, 3);
    struct cc_order_result res = {0};

    (void)state;
    assert_int_equal(script_order(c, &sc, &res), 0);
    assert_int_equal(res.id, 4711);
    assert_int_equal(sc.sends, 3);
    assert_int_equal(cc_client_requests(c), 3);
    assert_int_equal(sc.before, 3);
    assert_int_equal(sc.not_sent, 2);
    /* the hook before every send; "not placed" recorded before each wait */
    assert_string_equal(sc.events, "BPNSBPNSBP");
    assert_int_equal(sc.ft.n, 2);
    assert_true(sc.ft.slept[0] == 7.0); /* Retry-After */
    assert_true(sc.retry_in[0] == 7.0);
    assert_true(sc.ft.slept[1] >= 5.0 && sc.ft.slept[1] <= 10.0); /* backoff, 2nd retry */
    assert_true(sc.retry_in[1] == sc.ft.slept[1]);
    assert_false(cc_order_maybe_placed(c));
    cc_client_free(c);
}

/* 429 every time: CC_ORDER_SENDS sends, a Retry-After capped, "not placed" after each. */
static void test_order_429_gives_up(void **state)
{
    static const struct scripted steps[] = {
        {.status = 429, .retry_after_s = 3600}, {.status = 429}, {.status = 429}, {.status = 429},
        {.status = 201, .body = ORDER_OK},
    };
    struct script sc = {0};
    struct cc_client *c = script_client(&sc, steps, 5);
    struct cc_order_result res = {.id = -1};

    (void)state;
    assert_int_equal(script_order(c, &sc, &res), PA_E_CA_UNAVAILABLE);
    assert_int_equal(res.id, -1);
    assert_int_equal(sc.sends, CC_ORDER_SENDS);
    assert_int_equal(sc.before, 4);
    assert_int_equal(sc.not_sent, 4);
    assert_true(sc.retry_in[2] >= 0);
    assert_true(sc.retry_in[3] < 0); /* the last: nothing follows */
    assert_string_equal(sc.events, "BPNSBPNSBPNSBPN");
    assert_true(sc.ft.slept[0] == 60.0); /* Retry-After, capped at the client's cap */
    assert_false(cc_order_maybe_placed(c));
    assert_non_null(strstr(cc_last_error(c), "gave up after 4 attempts"));
    assert_non_null(strstr(cc_last_error(c), "the order was not placed"));
    cc_client_free(c);

    /* the client's attempts, when lower, bound the sends too */
    memset(&sc, 0, sizeof(sc));
    c = script_client(&sc, steps, 5);
    cc_client_set_retry(c, 2, 1.0, 4.0);
    assert_int_equal(script_order(c, &sc, &res), PA_E_CA_UNAVAILABLE);
    assert_int_equal(sc.sends, 2);
    assert_int_equal(sc.not_sent, 2);
    cc_client_free(c);

    /* cc_place_order: one send, never again */
    memset(&sc, 0, sizeof(sc));
    c = script_client(&sc, steps, 5);
    assert_int_equal(cc_place_order(c, PRODUCT, "{}", script_before, &sc, &res),
                     PA_E_CA_UNAVAILABLE);
    assert_int_equal(sc.sends, 1);
    assert_int_equal(sc.before, 1);
    assert_int_equal(sc.ft.n, 0);
    assert_false(cc_order_maybe_placed(c));
    cc_client_free(c);
}

/* 503, 500, a timeout after the request left: maybe placed, exactly one send. */
static void test_order_maybe_placed_once(void **state)
{
    static const struct scripted cases[] = {
        {.status = 503, .retry_after_s = 1},
        {.status = 500},
        {.r = PA_E_CA_UNAVAILABLE, .maybe_sent = true, .transient = true},
        {.r = PA_E_CA_PROTOCOL, .maybe_sent = true, .transient = true}, /* answer too large */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct scripted steps[] = {cases[i], {.status = 201, .body = ORDER_OK}};
        struct script sc = {0};
        struct cc_client *c = script_client(&sc, steps, 2);
        struct cc_order_result res = {0};

        assert_int_equal(script_order(c, &sc, &res), PA_E_CA_UNAVAILABLE);
        assert_int_equal(sc.sends, 1);
        assert_int_equal(sc.before, 1);
        assert_int_equal(sc.not_sent, 0);
        assert_int_equal(sc.ft.n, 0);
        assert_true(cc_order_maybe_placed(c));
        assert_non_null(strstr(cc_last_error(c), "the order may have been placed"));
        cc_client_free(c);
    }
}

/* Nothing reached the server: sent again; a refusal (4xx, 401) or an untrusted certificate: not. */
static void test_order_not_sent_resent(void **state)
{
    static const struct scripted unsent[] = {
        {.r = PA_E_CA_UNAVAILABLE, .transient = true},
        {.status = 201, .body = ORDER_OK},
    };
    static const struct scripted final[][2] = {
        {{.status = 400, .body = "{\"errors\":[{\"code\":\"invalid_csr\",\"message\":\"x\"}]}"}},
        {{.status = 401, .body = "{\"errors\":[{\"code\":\"access_denied\"}]}"}},
        {{.r = PA_E_CA_UNAVAILABLE, .transient = false}},
    };
    static const int final_rc[] = {PA_E_CA_REJECTED, PA_E_CA_AUTH, PA_E_CA_UNAVAILABLE};
    struct script sc = {0};
    struct cc_client *c = script_client(&sc, unsent, 2);
    struct cc_order_result res = {0};

    (void)state;
    assert_int_equal(script_order(c, &sc, &res), 0);
    assert_int_equal(res.id, 4711);
    assert_string_equal(sc.events, "BPNSBP");
    assert_true(sc.ft.slept[0] == 5.0); /* the first retry waits the base */
    cc_client_free(c);

    for (size_t i = 0; i < sizeof(final) / sizeof(final[0]); i++) {
        memset(&sc, 0, sizeof(sc));
        c = script_client(&sc, final[i], 1);
        assert_int_equal(script_order(c, &sc, &res), final_rc[i]);
        assert_int_equal(sc.sends, 1);
        assert_string_equal(sc.events, "BPN"); /* not placed, nothing follows */
        assert_true(sc.retry_in[0] < 0);
        assert_false(cc_order_maybe_placed(c));
        assert_non_null(strstr(cc_last_error(c), "the order was not placed"));
        cc_client_free(c);
    }
}

/* A refused connection, for real: sent again, CC_ORDER_SENDS times. */
static void test_order_refused_resent(void **state)
{
    struct refusing *rf = *state;
    struct script sc = {0};
    struct cc_client *c = new_client(rf->url, &sc.ft);
    const struct cc_order_send send = {script_before, script_not_sent, &sc, 0};
    struct cc_order_result res = {0};

    cc_client_set_sleep(c, script_sleep, &sc);
    assert_int_equal(cc_place_order_ex(c, PRODUCT, "{}", &send, &res), PA_E_CA_UNAVAILABLE);
    assert_int_equal(cc_client_requests(c), CC_ORDER_SENDS);
    assert_int_equal(sc.before, CC_ORDER_SENDS);
    assert_int_equal(sc.not_sent, CC_ORDER_SENDS);
    assert_string_equal(sc.events, "BNSBNSBNSBN");
    assert_false(cc_order_maybe_placed(c));
    assert_non_null(strstr(cc_last_error(c), "refused"));
    cc_client_free(c);

    /* send NULL: the same policy without hooks */
    memset(&sc, 0, sizeof(sc));
    c = new_client(rf->url, &sc.ft);
    assert_int_equal(cc_place_order_ex(c, PRODUCT, "{}", NULL, &res), PA_E_CA_UNAVAILABLE);
    assert_int_equal(cc_client_requests(c), CC_ORDER_SENDS);
    assert_int_equal(sc.ft.n, CC_ORDER_SENDS - 1);
    cc_client_free(c);
}

/* The caller's hooks stop it: not_sent refusing the next send; before_send on a later send. */
static void test_order_hooks_stop(void **state)
{
    static const struct scripted steps[] = {
        {.status = 429},
        {.status = 201, .body = ORDER_OK},
    };
    struct script sc = {.refuse_retry = PA_E_PENDING};
    struct cc_client *c = script_client(&sc, steps, 2);
    struct cc_order_result res = {0};

    (void)state;
    assert_int_equal(script_order(c, &sc, &res), PA_E_CA_UNAVAILABLE);
    assert_string_equal(sc.events, "BPN"); /* told once, no wait, nothing more */
    assert_false(cc_order_maybe_placed(c));
    cc_client_free(c);

    memset(&sc, 0, sizeof(sc));
    sc.before_rc_at = 2;
    sc.before_rc = PA_E_IO;
    c = script_client(&sc, steps, 2);
    assert_int_equal(script_order(c, &sc, &res), PA_E_IO);
    assert_string_equal(sc.events, "BPNSB");
    assert_int_equal(sc.sends, 1);
    assert_false(cc_order_maybe_placed(c));
    assert_non_null(strstr(cc_last_error(c), "the order was not placed"));
    cc_client_free(c);
}

/* The stop flag cannot be taken back: the child process gets it. 0 when all is as expected. */
static int stop_child(void)
{
    static const struct scripted steps[] = {
        {.status = 429},
        {.status = 201, .body = ORDER_OK},
    };
    struct script sc = {.stop_in_sleep = true};
    struct cc_client *c = script_client(&sc, steps, 2);
    struct cc_order_result res = {0};
    int bad = 0;

    bad |= script_order(c, &sc, &res) != PA_E_CA_UNAVAILABLE;
    bad |= (sc.sends != 1) << 1;
    bad |= (strcmp(sc.events, "BPNS") != 0) << 2; /* no before_send, no send after the stop */
    bad |= cc_order_maybe_placed(c) << 3;
    bad |= (strstr(cc_last_error(c), "stopped (SIGTERM or SIGINT)") == NULL) << 4;
    bad |= (cc_client_requests(c) != 1) << 5;
    cc_client_free(c);
    return bad;
}

/* A stop (SIGTERM) during the wait between sends: nothing more is sent. */
static void test_order_stop_in_wait(void **state)
{
    int status = 0;
    pid_t pid;

    (void)state;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(stop_child());
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_status),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_order_result),
        cmocka_unit_test(test_parse_order_info),
        cmocka_unit_test(test_parse_order_list),
        cmocka_unit_test(test_parse_order_individual),
        cmocka_unit_test(test_parse_order_valid_till),
        cmocka_unit_test(test_parse_order_revoke_requests),
        cmocka_unit_test(test_check_pem),
        cmocka_unit_test(test_client_new),
        cmocka_unit_test_setup_teardown(test_client_get_retries, setup_refusing, teardown_refusing),
        cmocka_unit_test_setup_teardown(test_client_put_retries_unsent, setup_refusing,
                                        teardown_refusing),
        cmocka_unit_test_setup_teardown(test_client_post_never_retried, setup_refusing,
                                        teardown_refusing),
        cmocka_unit_test_setup_teardown(test_client_budget, setup_refusing, teardown_refusing),
        cmocka_unit_test_setup_teardown(test_client_budget_with_retries, setup_refusing,
                                        teardown_refusing),
        cmocka_unit_test_setup_teardown(test_client_before_send_after_budget, setup_refusing,
                                        teardown_refusing),
        cmocka_unit_test_setup_teardown(test_client_before_send_stops, setup_refusing,
                                        teardown_refusing),
        cmocka_unit_test_setup_teardown(test_client_before_send_reentrant, setup_refusing,
                                        teardown_refusing),
        cmocka_unit_test_setup_teardown(test_client_ping_find, setup_refusing, teardown_refusing),
        cmocka_unit_test(test_order_429_resent),
        cmocka_unit_test(test_order_429_gives_up),
        cmocka_unit_test(test_order_maybe_placed_once),
        cmocka_unit_test(test_order_not_sent_resent),
        cmocka_unit_test_setup_teardown(test_order_refused_resent, setup_refusing,
                                        teardown_refusing),
        cmocka_unit_test(test_order_hooks_stop),
        cmocka_unit_test(test_order_stop_in_wait),
    };
    int r;

    if (http_global_init() < 0)
        return 1;
    r = cmocka_run_group_tests(tests, NULL, NULL);
    http_global_cleanup();
    return r;
}
