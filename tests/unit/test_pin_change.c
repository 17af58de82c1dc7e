/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test_pin_change.c - the pure parts of changing a transport PIN: may the PIN be changed given
 * the token's flags (tok_pin_change_precheck), the token's PIN length range (tok_pin_len_range,
 * tok_pin_len_ok), is a new PIN acceptable (cli_new_pin_check), and the --pin-fd protocol (one
 * line: the PIN; two lines: transport PIN, new PIN) as parsed by secret_parse_lines and read by
 * secret_lines_from_fd.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "pa_err.h"
#include "secret.h"
#include "tok.h"

#define MAX_LEN 256

/* A token with a transport PIN: initialised, PIN must be changed, 4 to 8 characters. */
static struct tok_info transport_info(void)
{
    struct tok_info i;

    memset(&i, 0, sizeof(i));
    (void)snprintf(i.label, sizeof(i.label), "%s", "PKIo card");
    (void)snprintf(i.serial, sizeof(i.serial), "%s", "0011223344556677");
    i.token_initialized = true;
    i.login_required = true;
    i.user_pin_initialized = true;
    i.user_pin_to_be_changed = true;
    i.min_pin_len = 4;
    i.max_pin_len = 8;
    return i;
}

static struct secret *S(const char *s)
{
    struct secret *r = NULL;

    assert_int_equal(secret_from_mem(s, strlen(s), &r), 0);
    return r;
}

/* ---- flags ---------------------------------------------------------------------------- */

static void test_change_allowed(void **state)
{
    struct tok_info i = transport_info();

    (void)state;
    assert_int_equal(tok_pin_change_precheck(&i), 0);
    i.user_pin_count_low = true; /* one wrong PIN so far: one careful attempt is still fine */
    assert_int_equal(tok_pin_change_precheck(&i), 0);
    /* A login is still refused until the PIN is changed. */
    assert_int_equal(tok_login_precheck(&i), PA_E_PIN_LOCKED);
    assert_non_null(strstr(tok_detail(), "changed"));
}

static void test_change_refused_final_try(void **state)
{
    struct tok_info i = transport_info();

    (void)state;
    i.user_pin_final_try = true;
    i.user_pin_count_low = true;
    assert_int_equal(tok_pin_change_precheck(&i), PA_E_PIN_LOCKED);
    assert_non_null(strstr(tok_detail(), "one PIN attempt left"));
    assert_non_null(strstr(tok_detail(), "'PKIo card'"));
}

static void test_change_refused_locked(void **state)
{
    struct tok_info i = transport_info();

    (void)state;
    i.user_pin_locked = true;
    assert_int_equal(tok_pin_change_precheck(&i), PA_E_PIN_LOCKED);
    assert_non_null(strstr(tok_detail(), "locked"));
}

static void test_change_refused_no_pin(void **state)
{
    struct tok_info i = transport_info();

    (void)state;
    i.user_pin_initialized = false;
    assert_int_equal(tok_pin_change_precheck(&i), PA_E_PIN_LOCKED);
    assert_non_null(strstr(tok_detail(), "no user PIN set"));
    assert_non_null(strstr(tok_detail(), "issuer"));
    i.user_pin_to_be_changed = false;
    assert_int_equal(tok_login_precheck(&i), PA_E_PIN_LOCKED);
    assert_non_null(strstr(tok_detail(), "issuer"));
}

/* ---- lengths -------------------------------------------------------------------------- */

static void test_len_range(void **state)
{
    struct tok_info i = transport_info();
    size_t min = 99, max = 99;

    (void)state;
    tok_pin_len_range(&i, &min, &max);
    assert_int_equal(min, 4);
    assert_int_equal(max, 8);
    i.max_pin_len = ~0UL; /* CK_UNAVAILABLE_INFORMATION */
    tok_pin_len_range(&i, &min, &max);
    assert_int_equal(min, 4);
    assert_int_equal(max, 0);
    i.min_pin_len = ~0UL;
    i.max_pin_len = 0;
    tok_pin_len_range(&i, &min, &max);
    assert_int_equal(min, 0);
    assert_int_equal(max, 0);
    i.min_pin_len = 6;
    i.max_pin_len = 4; /* nonsense: no maximum rather than no PIN at all */
    tok_pin_len_range(&i, &min, &max);
    assert_int_equal(min, 6);
    assert_int_equal(max, 0);
}

static void test_len_ok(void **state)
{
    struct tok_info i = transport_info();

    (void)state;
    assert_false(tok_pin_len_ok(&i, 0));
    assert_false(tok_pin_len_ok(&i, 3));
    assert_true(tok_pin_len_ok(&i, 4));
    assert_true(tok_pin_len_ok(&i, 8));
    assert_false(tok_pin_len_ok(&i, 9));
    i.min_pin_len = 0;
    i.max_pin_len = 0;
    assert_false(tok_pin_len_ok(&i, 0)); /* never an empty PIN */
    assert_true(tok_pin_len_ok(&i, 1));
    assert_true(tok_pin_len_ok(&i, 200));
}

/* ---- new PIN -------------------------------------------------------------------------- */

static void check(const char *old, const char *first, const char *second,
                  enum cli_new_pin_verdict want)
{
    struct tok_info i = transport_info();
    struct secret *o = old ? S(old) : NULL, *a = S(first), *b = second ? S(second) : NULL;

    if (cli_new_pin_check(&i, o, a, b) != want)
        print_error("old '%s' new '%s' again '%s': not verdict %d\n", old ? old : "(none)", first,
                    second ? second : "(none)", (int)want);
    assert_int_equal(cli_new_pin_check(&i, o, a, b), want);
    secret_free(o);
    secret_free(a);
    secret_free(b);
}

static void test_new_pin_verdicts(void **state)
{
    (void)state;
    check("1234", "5678", "5678", CLI_NEW_PIN_OK);
    check("1234", "5678", NULL, CLI_NEW_PIN_OK); /* not typed again yet */
    check(NULL, "5678", "5678", CLI_NEW_PIN_OK);
    check("1234", "567", "567", CLI_NEW_PIN_TOO_SHORT);
    check("1234", "123456789", "123456789", CLI_NEW_PIN_TOO_LONG);
    check("1234", "1234", "1234", CLI_NEW_PIN_SAME);
    check("1234", "5678", "5679", CLI_NEW_PIN_DIFFER);
    check("1234", "5678", "56789", CLI_NEW_PIN_DIFFER); /* a prefix is not equal */
    check("1234", "5678", "567", CLI_NEW_PIN_DIFFER);
    /* Length comes first: a short entry is not asked for again. */
    check("1234", "12", "13", CLI_NEW_PIN_TOO_SHORT);
}

static void test_new_pin_no_max(void **state)
{
    struct tok_info i = transport_info();
    char longpin[MAX_LEN + 2];
    struct secret *a, *b;

    (void)state;
    i.max_pin_len = 0;
    memset(longpin, 'x', MAX_LEN);
    longpin[MAX_LEN] = '\0';
    a = S(longpin);
    assert_int_equal(cli_new_pin_check(&i, NULL, a, a), CLI_NEW_PIN_OK);
    secret_free(a);
    longpin[MAX_LEN] = 'x'; /* beyond what the agent reads as a PIN */
    longpin[MAX_LEN + 1] = '\0';
    b = S(longpin);
    assert_int_equal(cli_new_pin_check(&i, NULL, b, b), CLI_NEW_PIN_TOO_LONG);
    secret_free(b);
}

static void test_secret_equal(void **state)
{
    struct secret *a = S("abcd"), *b = S("abcd"), *c = S("abce"), *d = S("abc");

    (void)state;
    assert_true(secret_equal(a, b));
    assert_false(secret_equal(a, c));
    assert_false(secret_equal(a, d));
    assert_false(secret_equal(a, NULL));
    assert_false(secret_equal(NULL, NULL));
    secret_free(a);
    secret_free(b);
    secret_free(c);
    secret_free(d);
}

/* ---- the --pin-fd protocol ------------------------------------------------------------ */

/* Parse buf (len bytes); want1/want2 NULL for "refused" / "no second line". */
static void parse(const char *buf, size_t len, const char *want1, const char *want2)
{
    struct secret *a = NULL, *b = NULL;
    int r = secret_parse_lines(buf, len, 8, &a, &b);

    if (!want1) {
        assert_int_equal(r, PA_E_PIN_UNAVAILABLE);
        return;
    }
    assert_int_equal(r, 0);
    assert_non_null(a);
    assert_string_equal(a->buf, want1);
    assert_int_equal(a->len, strlen(want1));
    if (want2) {
        assert_non_null(b);
        assert_string_equal(b->buf, want2);
        assert_int_equal(b->len, strlen(want2));
    } else {
        assert_null(b);
    }
    secret_free(a);
    secret_free(b);
}

#define P(lit, w1, w2) parse(lit, sizeof(lit) - 1, w1, w2)

static void test_lines_one(void **state)
{
    (void)state;
    P("1234\n", "1234", NULL);
    P("1234", "1234", NULL);           /* the last line may lack its newline */
    P("1234\r\n", "1234", NULL);       /* a CR before the newline is dropped */
    P("12345678\n", "12345678", NULL); /* max_len exactly */
}

static void test_lines_two(void **state)
{
    (void)state;
    P("1234\nNew-5678\n", "1234", "New-5678");
    P("1234\nNew-5678", "1234", "New-5678");
    P("1234\r\nNew-5678\r\n", "1234", "New-5678");
    P("a b\n c d \n", "a b", " c d "); /* blanks are part of a PIN */
}

static void test_lines_refused(void **state)
{
    (void)state;
    P("", NULL, NULL);
    P("\n", NULL, NULL);
    P("\r\n", NULL, NULL);
    P("\n5678\n", NULL, NULL);       /* empty first line */
    P("1234\n\n", NULL, NULL);       /* empty second line */
    P("1234\n5678\nx", NULL, NULL);  /* a third line */
    P("1234\n5678\n\n", NULL, NULL); /* even an empty one */
    P("1234\n5678\n9012\n", NULL, NULL);
    P("123456789\n", NULL, NULL); /* longer than max_len */
    P("1234\n123456789\n", NULL, NULL);
    P("12\0004\n", NULL, NULL); /* NUL inside a line */
    P("1234\n56\00078\n", NULL, NULL);
}

/* Write text into a pipe, close the write end, and read it back as the child does. */
static int via_pipe(const char *text, struct secret **a, struct secret **b)
{
    int fds[2];

    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], text, strlen(text)), (ssize_t)strlen(text));
    close(fds[1]);
    return secret_lines_from_fd(fds[0], MAX_LEN, a, b);
}

static void test_lines_from_fd(void **state)
{
    struct secret *a = NULL, *b = NULL;
    int fds[2];

    (void)state;
    assert_int_equal(via_pipe("1234\nNieuw-2468\n", &a, &b), 0);
    assert_string_equal(a->buf, "1234");
    assert_string_equal(b->buf, "Nieuw-2468");
    secret_free(a);
    secret_free(b);
    a = b = NULL;
    assert_int_equal(via_pipe("1234\n", &a, &b), 0);
    assert_string_equal(a->buf, "1234");
    assert_null(b);
    secret_free(a);
    a = NULL;
    assert_int_equal(via_pipe("", &a, &b), PA_E_PIN_UNAVAILABLE);
    assert_int_equal(via_pipe("1\n2\n3\n", &a, &b), PA_E_PIN_UNAVAILABLE);

    /* Far more than two lines can hold: refused, not truncated into something that parses. */
    assert_int_equal(pipe(fds), 0);
    {
        char big[3 * MAX_LEN];

        memset(big, 'x', sizeof(big));
        assert_int_equal(write(fds[1], big, sizeof(big)), (ssize_t)sizeof(big));
    }
    close(fds[1]);
    assert_int_equal(secret_lines_from_fd(fds[0], MAX_LEN, &a, &b), PA_E_PIN_UNAVAILABLE);
    /* The descriptor was closed. */
    assert_int_equal(fcntl(fds[0], F_GETFD), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_change_allowed),
        cmocka_unit_test(test_change_refused_final_try),
        cmocka_unit_test(test_change_refused_locked),
        cmocka_unit_test(test_change_refused_no_pin),
        cmocka_unit_test(test_len_range),
        cmocka_unit_test(test_len_ok),
        cmocka_unit_test(test_new_pin_verdicts),
        cmocka_unit_test(test_new_pin_no_max),
        cmocka_unit_test(test_secret_equal),
        cmocka_unit_test(test_lines_one),
        cmocka_unit_test(test_lines_two),
        cmocka_unit_test(test_lines_refused),
        cmocka_unit_test(test_lines_from_fd),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
