/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_detect.c - agent/core/detect.c without event sources: no pcscd (PCSCLITE_CSOCK_NAME points
 * to a socket that does not exist), no udev (use_udev off). Checks the periodic-rescan contract of
 * detect_timeout_ms/detect_poll, the sources string and option checking. The event sources
 * themselves are covered by tests/integration/detect_pcsc.sh and detect_udev.sh.
 *
 * No assertion depends on how fast the machine is: "not due yet" uses a one-hour period, and
 * "due" is checked only after poll() has waited the full detect_timeout_ms().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "detect.h"
#include "pa_err.h"

static char nosock[4096];

/* PC/SC must find no service: point the client library at a socket that does not exist. */
static int group_setup(void **state)
{
    const char *base = getenv("TMPDIR");

    (void)state;
    if (!base || !*base)
        base = "/tmp";
    if (snprintf(nosock, sizeof(nosock), "%s/pkio-test-detect-%ld/none.comm", base,
                 (long)getpid()) >= (int)sizeof(nosock))
        return -1;
    return setenv("PCSCLITE_CSOCK_NAME", nosock, 1);
}

static struct detect *open_ok(bool pcsc, double rescan_s, bool force)
{
    struct detect_opts o = {
        .use_pcsc = pcsc, .use_udev = false, .rescan_s = rescan_s, .force_rescan = force};
    struct detect *d = NULL;

    assert_int_equal(detect_open(&o, &d), 0);
    assert_non_null(d);
    return d;
}

/* The fd is valid for poll() in every mode and is not readable without events. */
static void assert_fd_quiet(struct detect *d)
{
    struct pollfd p = {.fd = detect_fd(d), .events = POLLIN};

    assert_true(p.fd >= 0);
    assert_int_equal(poll(&p, 1, 0), 0);
}

static void test_no_pcscd_falls_back_to_rescan(void **state)
{
    struct detect *d;

    (void)state;
    d = open_ok(true, 1.5, false);
    assert_string_equal(detect_sources(d), "rescan(1.5s)");
    assert_fd_quiet(d);
    detect_close(d);
}

static void test_not_due_yet(void **state)
{
    char what[64] = "untouched";
    struct detect *d;
    int t;

    (void)state;
    d = open_ok(true, 3600, false);
    assert_string_equal(detect_sources(d), "rescan(3600.0s)");
    t = detect_timeout_ms(d);
    assert_true(t > 3590 * 1000);
    assert_true(t <= 3600 * 1000 + 1); /* rounded up to whole milliseconds */
    assert_int_equal(detect_poll(d, what, sizeof(what)), 0);
    assert_string_equal(what, ""); /* nothing happened: empty description */
    assert_int_equal(detect_poll(d, NULL, 0), 0);
    detect_close(d);
}

/* Waiting detect_timeout_ms() in poll() always makes the rescan due; then the period restarts. */
static void test_due_after_timeout(void **state)
{
    char what[64];
    struct detect *d;
    int i;

    (void)state;
    d = open_ok(true, 0.02, false);
    assert_string_equal(detect_sources(d), "rescan(0.02s)");
    for (i = 0; i < 3; i++) {
        struct pollfd p = {.fd = detect_fd(d), .events = POLLIN};
        int t = detect_timeout_ms(d);

        assert_true(t >= 0 && t <= 21);      /* rounded up to whole milliseconds */
        assert_int_equal(poll(&p, 1, t), 0); /* no event source: only the timeout wakes us */
        memset(what, 'x', sizeof(what));
        assert_int_equal(detect_poll(d, what, sizeof(what)), 1);
        /* pcscd is still missing: the retry at the rescan tick failed quietly */
        assert_string_equal(what, "rescan: periodic");
        assert_string_equal(detect_sources(d), "rescan(0.02s)");
        t = detect_timeout_ms(d);
        assert_true(t >= 0 && t <= 21);
    }
    detect_close(d);
}

static void test_what_truncated_or_null(void **state)
{
    char what[5];
    struct detect *d;

    (void)state;
    d = open_ok(false, 0.001, false);
    assert_string_equal(detect_sources(d), "rescan(0.001s)");
    assert_int_equal(poll(NULL, 0, detect_timeout_ms(d)), 0);
    assert_int_equal(detect_poll(d, what, sizeof(what)), 1);
    assert_string_equal(what, "resc");
    assert_int_equal(poll(NULL, 0, detect_timeout_ms(d)), 0);
    assert_int_equal(detect_poll(d, NULL, 0), 1);
    detect_close(d);
}

static void test_never(void **state)
{
    char what[16] = "untouched";
    struct detect *d;

    (void)state;
    d = open_ok(true, 0, false);
    assert_string_equal(detect_sources(d), "none");
    assert_int_equal(detect_timeout_ms(d), -1);
    assert_int_equal(detect_poll(d, what, sizeof(what)), 0);
    assert_string_equal(what, "");
    assert_fd_quiet(d);
    detect_close(d);

    /* force_rescan without an interval is still "never" */
    d = open_ok(false, 0, true);
    assert_string_equal(detect_sources(d), "none");
    assert_int_equal(detect_timeout_ms(d), -1);
    detect_close(d);
}

static void test_force_without_sources(void **state)
{
    struct detect *d;

    (void)state;
    d = open_ok(false, 2, true);
    assert_string_equal(detect_sources(d), "rescan(2.0s)");
    assert_true(detect_timeout_ms(d) > 1000);
    detect_close(d);
}

static void test_bad_options(void **state)
{
    struct detect_opts o = {.rescan_s = -1};
    static char sentinel;
    struct detect *d = (struct detect *)(void *)&sentinel; /* untouched on failure */

    (void)state;
    assert_int_equal(detect_open(&o, &d), PA_E_USAGE);
    assert_ptr_equal(d, (struct detect *)(void *)&sentinel);
    o.rescan_s = NAN;
    assert_int_equal(detect_open(&o, &d), PA_E_USAGE);
    o.rescan_s = 1e9;
    assert_int_equal(detect_open(&o, &d), PA_E_USAGE);
    assert_int_equal(detect_open(NULL, &d), PA_E_INTERNAL);
    assert_int_equal(detect_open(&o, NULL), PA_E_INTERNAL);
    assert_ptr_equal(d, (struct detect *)(void *)&sentinel);
}

static void test_null_handle(void **state)
{
    char what[8] = "x";

    (void)state;
    detect_close(NULL);
    assert_int_equal(detect_fd(NULL), -1);
    assert_int_equal(detect_timeout_ms(NULL), -1);
    assert_int_equal(detect_poll(NULL, what, sizeof(what)), 0);
    assert_string_equal(detect_sources(NULL), "none");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_pcscd_falls_back_to_rescan),
        cmocka_unit_test(test_not_due_yet),
        cmocka_unit_test(test_due_after_timeout),
        cmocka_unit_test(test_what_truncated_or_null),
        cmocka_unit_test(test_never),
        cmocka_unit_test(test_force_without_sources),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_null_handle),
    };

    return cmocka_run_group_tests(tests, group_setup, NULL);
}
