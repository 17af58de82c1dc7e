/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test_token_flags.c - the pure decisions of the token layer: may we log in given the token's
 * PIN flags (tok_login_precheck), and is a key's custody acceptable (tok_custody_ok).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "pa_err.h"
#include "tok.h"

/* A token that may be logged into: PIN initialised, nothing else set. */
static struct tok_info good_info(void)
{
    struct tok_info i;

    memset(&i, 0, sizeof(i));
    (void)snprintf(i.label, sizeof(i.label), "%s", "PKIo card");
    (void)snprintf(i.serial, sizeof(i.serial), "%s", "0011223344556677");
    i.token_initialized = true;
    i.login_required = true;
    i.user_pin_initialized = true;
    i.free_public_memory = -1;
    i.free_private_memory = -1;
    return i;
}

/* The detail of the last refusal must name the token and contain the expected phrase. */
static void assert_detail(const char *phrase)
{
    const char *d = tok_detail();

    assert_non_null(d);
    if (!strstr(d, phrase) || !strstr(d, "PKIo card") || !strstr(d, "0011223344556677"))
        print_error("detail \"%s\" lacks \"%s\" or the token name\n", d, phrase);
    assert_non_null(strstr(d, phrase));
    assert_non_null(strstr(d, "'PKIo card'"));
    assert_non_null(strstr(d, "0011223344556677"));
}

static void test_precheck_ok(void **state)
{
    struct tok_info i = good_info();

    (void)state;
    assert_int_equal(tok_login_precheck(&i), 0);
}

static void test_precheck_count_low_ok(void **state)
{
    struct tok_info i = good_info();

    (void)state;
    i.user_pin_count_low = true; /* one wrong PIN so far: still worth one careful attempt */
    assert_int_equal(tok_login_precheck(&i), 0);
}

static void test_precheck_locked(void **state)
{
    struct tok_info i = good_info();

    (void)state;
    i.user_pin_locked = true;
    assert_int_equal(tok_login_precheck(&i), PA_E_PIN_LOCKED);
    assert_detail("locked");
}

static void test_precheck_final_try(void **state)
{
    struct tok_info i = good_info();

    (void)state;
    i.user_pin_final_try = true;
    i.user_pin_count_low = true; /* tokens set both */
    assert_int_equal(tok_login_precheck(&i), PA_E_PIN_LOCKED);
    assert_detail("one PIN attempt left");
}

static void test_precheck_to_be_changed(void **state)
{
    struct tok_info i = good_info();

    (void)state;
    i.user_pin_to_be_changed = true;
    assert_int_equal(tok_login_precheck(&i), PA_E_PIN_LOCKED);
    assert_detail("changed");
}

static void test_precheck_not_initialised(void **state)
{
    struct tok_info i = good_info();

    (void)state;
    i.user_pin_initialized = false;
    assert_int_equal(tok_login_precheck(&i), PA_E_PIN_LOCKED);
    assert_detail("no user PIN set");
}

static void test_precheck_locked_wins(void **state)
{
    struct tok_info i = good_info();

    (void)state;
    /* Locked and final try together: the stronger statement is reported. */
    i.user_pin_locked = true;
    i.user_pin_final_try = true;
    i.user_pin_to_be_changed = true;
    assert_int_equal(tok_login_precheck(&i), PA_E_PIN_LOCKED);
    assert_detail("locked");
}

/* A key that passes: generated on the token, never extractable, always sensitive. */
static struct tok_custody good_custody(void)
{
    struct tok_custody c;

    memset(&c, 0, sizeof(c));
    c.sensitive = true;
    c.extractable = false;
    c.local = true;
    c.never_extractable = true;
    c.always_sensitive = true;
    c.is_token = true;
    c.is_private = true;
    return c;
}

static void assert_custody_refused(const struct tok_custody *c, const char *phrase)
{
    const char *d;

    assert_int_equal(tok_custody_ok(c), PA_E_CUSTODY);
    d = tok_detail();
    if (!strstr(d, phrase))
        print_error("detail \"%s\" lacks \"%s\"\n", d, phrase);
    assert_non_null(strstr(d, phrase));
}

static void test_custody_ok(void **state)
{
    struct tok_custody c = good_custody();

    (void)state;
    assert_int_equal(tok_custody_ok(&c), 0);
}

static void test_custody_not_local(void **state)
{
    struct tok_custody c = good_custody();

    (void)state;
    c.local = false;
    assert_custody_refused(&c, "CKA_LOCAL");
}

static void test_custody_extractable(void **state)
{
    struct tok_custody c = good_custody();

    (void)state;
    c.extractable = true;
    assert_custody_refused(&c, "is extractable");
}

static void test_custody_was_extractable(void **state)
{
    struct tok_custody c = good_custody();

    (void)state;
    c.never_extractable = false;
    assert_custody_refused(&c, "was extractable");
}

static void test_custody_not_sensitive(void **state)
{
    struct tok_custody c = good_custody();

    (void)state;
    c.sensitive = false;
    assert_custody_refused(&c, "not sensitive");
}

static void test_custody_not_always_sensitive(void **state)
{
    struct tok_custody c = good_custody();

    (void)state;
    c.always_sensitive = false;
    assert_custody_refused(&c, "not always sensitive");
}

static void test_custody_session_object(void **state)
{
    struct tok_custody c = good_custody();

    (void)state;
    c.is_token = false;
    assert_custody_refused(&c, "session object");
}

static void test_custody_public_object(void **state)
{
    struct tok_custody c = good_custody();

    (void)state;
    c.is_private = false;
    assert_custody_refused(&c, "not a private object");
}

static void test_custody_all_false(void **state)
{
    struct tok_custody c;

    (void)state;
    memset(&c, 0, sizeof(c));
    assert_int_equal(tok_custody_ok(&c), PA_E_CUSTODY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_precheck_ok),
        cmocka_unit_test(test_precheck_count_low_ok),
        cmocka_unit_test(test_precheck_locked),
        cmocka_unit_test(test_precheck_final_try),
        cmocka_unit_test(test_precheck_to_be_changed),
        cmocka_unit_test(test_precheck_not_initialised),
        cmocka_unit_test(test_precheck_locked_wins),
        cmocka_unit_test(test_custody_ok),
        cmocka_unit_test(test_custody_not_local),
        cmocka_unit_test(test_custody_extractable),
        cmocka_unit_test(test_custody_was_extractable),
        cmocka_unit_test(test_custody_not_sensitive),
        cmocka_unit_test(test_custody_not_always_sensitive),
        cmocka_unit_test(test_custody_session_object),
        cmocka_unit_test(test_custody_public_object),
        cmocka_unit_test(test_custody_all_false),
    };

    return cmocka_run_group_tests_name("token_flags", tests, NULL, NULL);
}
