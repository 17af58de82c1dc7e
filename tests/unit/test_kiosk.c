/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test_kiosk.c - the kiosk's terminal helpers: text made safe to print (agent/base/text.c: C0, DEL,
 * C1 as code points and as raw bytes, invalid and overlong UTF-8, surrogates, bidirectional
 * overrides; valid UTF-8 kept; never a split character) and the line editor fed one keystroke at
 * a time (Backspace over UTF-8, Ctrl-U, escape sequences ignored, overflow refused, Enter).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "kiosk.h"
#include "pa_err.h"
#include "text.h"
#include "secret.h"

static const char *clean(const char *in, size_t outlen)
{
    static char out[256];

    text_clean(in, out, outlen);
    return out;
}

static void test_clean_keeps_text(void **state)
{
    (void)state;
    assert_string_equal(clean("person-1", 64), "person-1");
    assert_string_equal(clean("Jos\xc3\xa9 \xe2\x82\xac 5 \xf0\x9f\x94\x91", 64),
                        "Jos\xc3\xa9 \xe2\x82\xac 5 \xf0\x9f\x94\x91"); /* é € 🔑 */
    assert_string_equal(clean("", 64), "");
    assert_string_equal(clean(NULL, 64), "");
}

static void test_clean_controls(void **state)
{
    (void)state;
    /* ESC [31m: C0 ESC replaced, the rest is harmless text */
    assert_string_equal(clean("\x1b[31mred\x1b[0m", 64), "?[31mred?[0m");
    assert_string_equal(clean("a\tb\nc\rd\x07\x7f", 64), "a?b?c?d??");
    /* C1 as code points (U+009B CSI, U+0085 NEL) and as raw bytes (invalid UTF-8) */
    assert_string_equal(clean("x\xc2\x9b"
                              "31my\xc2\x85z",
                              64),
                        "x?31my?z");
    assert_string_equal(clean("x\x9b"
                              "31m\x90y",
                              64),
                        "x?31m?y");
    /* bidirectional override and isolate, line separator */
    assert_string_equal(clean("a\xe2\x80\xae"
                              "b\xe2\x81\xa6"
                              "c\xe2\x80\xa8"
                              "d",
                              64),
                        "a?b?c?d");
}

static void test_clean_invalid_utf8(void **state)
{
    (void)state;
    assert_string_equal(clean("\xc0\xaf", 64), "??");           /* overlong '/' */
    assert_string_equal(clean("\xe0\x80\xaf", 64), "???");      /* overlong, 3 bytes */
    assert_string_equal(clean("\xed\xa0\x80", 64), "???");      /* a surrogate */
    assert_string_equal(clean("\xf4\x90\x80\x80", 64), "????"); /* beyond U+10FFFF */
    assert_string_equal(clean("ab\xe2\x82", 64), "ab??");       /* cut short */
    assert_string_equal(clean("\xff\xfe", 64), "??");
}

static void test_clean_truncates_whole_characters(void **state)
{
    (void)state;
    assert_string_equal(clean("abcdef", 4), "abc");
    assert_string_equal(clean("ab\xe2\x82\xac", 5), "ab"); /* € needs 3 bytes + NUL */
    assert_string_equal(clean("ab\xe2\x82\xac", 6), "ab\xe2\x82\xac");
    assert_string_equal(clean("abc", 1), "");
}

/* Feed s; the result of the last key. */
static enum kiosk_key_result feed(struct kiosk_line *l, const char *s, size_t n)
{
    enum kiosk_key_result r = KIOSK_MORE;

    for (size_t i = 0; i < n; i++)
        r = kiosk_line_key(l, (unsigned char)s[i]);
    return r;
}

static void test_line_editing(void **state)
{
    struct kiosk_line l;
    struct secret *s = NULL;

    (void)state;
    assert_int_equal(kiosk_line_init(&l, 8), 0);
    assert_int_equal(feed(&l,
                          "12x\x7f"
                          "3",
                          5),
                     KIOSK_MORE);                          /* Backspace */
    assert_int_equal(feed(&l, "\x1b[D", 3), KIOSK_MORE);   /* an arrow key: nothing */
    assert_int_equal(feed(&l, "\x1bOP", 3), KIOSK_MORE);   /* F1: nothing */
    assert_int_equal(feed(&l, "\x03\x1a", 2), KIOSK_MORE); /* Ctrl-C, Ctrl-Z: nothing */
    assert_int_equal(feed(&l, "4\r", 2), KIOSK_ENTER);
    assert_int_equal(kiosk_line_take(&l, &s), 0);
    assert_int_equal(s->len, 4);
    assert_memory_equal(s->buf, "1234", 4);
    secret_free(s);
    /* Backspace takes a whole UTF-8 character; Ctrl-U the whole line. */
    assert_int_equal(feed(&l, "a\xc3\xa9\x08\n", 5), KIOSK_ENTER);
    assert_int_equal(kiosk_line_take(&l, &s), 0);
    assert_int_equal(s->len, 1);
    secret_free(s);
    assert_int_equal(feed(&l,
                          "secret\x15"
                          "\n",
                          8),
                     KIOSK_ENTER);
    assert_int_equal(kiosk_line_take(&l, &s), PA_E_PIN_UNAVAILABLE); /* empty */
    kiosk_line_clear(&l);
}

static void test_line_overflow_refused(void **state)
{
    struct kiosk_line l;
    struct secret *s = NULL;

    (void)state;
    assert_int_equal(kiosk_line_init(&l, 4), 0);
    assert_int_equal(feed(&l, "123456\n", 7), KIOSK_ENTER);
    assert_true(l.overflow);
    assert_int_equal(kiosk_line_take(&l, &s), PA_E_PIN_UNAVAILABLE); /* never cut to fit */
    assert_false(l.overflow);
    assert_int_equal(feed(&l, "1234\n", 5), KIOSK_ENTER);
    assert_int_equal(kiosk_line_take(&l, &s), 0);
    secret_free(s);
    kiosk_line_clear(&l);
    assert_int_equal(kiosk_line_init(&l, 0), PA_E_INTERNAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_keeps_text),
        cmocka_unit_test(test_clean_controls),
        cmocka_unit_test(test_clean_invalid_utf8),
        cmocka_unit_test(test_clean_truncates_whole_characters),
        cmocka_unit_test(test_line_editing),
        cmocka_unit_test(test_line_overflow_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
