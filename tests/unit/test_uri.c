/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test_uri.c - RFC 7512 PKCS#11 URI parsing, matching and formatting (pkcs11/uri.c), and the
 * key type names. Pure code: no module is loaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pa_err.h"
#include "secret.h"
#include "tok.h"

/* Parse s, which must succeed; the caller clears *u. */
static void parse_ok(const char *s, bool allow_pin_value, struct tok_uri *u)
{
    int r = tok_uri_parse(s, allow_pin_value, u);

    if (r != 0)
        print_error("tok_uri_parse(\"%s\") = %d\n", s, r);
    assert_int_equal(r, 0);
}

/* Parse s, which must fail with PA_E_USAGE and leave the output untouched. */
static void parse_usage(const char *s, bool allow_pin_value)
{
    struct tok_uri u, before;
    int r;

    memset(&u, 0x5a, sizeof(u));
    memcpy(&before, &u, sizeof(u));
    r = tok_uri_parse(s, allow_pin_value, &u);
    if (r != PA_E_USAGE)
        print_error("tok_uri_parse(\"%s\") = %d, expected PA_E_USAGE\n", s, r);
    assert_int_equal(r, PA_E_USAGE);
    assert_memory_equal(&u, &before, sizeof(u));
}

static bool uri_is_empty(const struct tok_uri *u)
{
    return !u->token && !u->manufacturer && !u->model && !u->serial && !u->has_slot_id &&
           u->id_len == 0 && !u->object && !u->type && !u->pin_source && !u->pin_value;
}

/* ---- single attributes ----------------------------------------------------------------- */

static void test_attr_token(void **state)
{
    struct tok_uri u;

    (void)state;
    parse_ok("pkcs11:token=My%20Token", false, &u);
    assert_string_equal(u.token, "My Token");
    assert_null(u.manufacturer);
    assert_null(u.serial);
    tok_uri_clear(&u);
}

static void test_attr_manufacturer(void **state)
{
    struct tok_uri u;

    (void)state;
    parse_ok("pkcs11:manufacturer=SoftHSM%20project", false, &u);
    assert_string_equal(u.manufacturer, "SoftHSM project");
    assert_null(u.token);
    tok_uri_clear(&u);
}

static void test_attr_model(void **state)
{
    struct tok_uri u;

    (void)state;
    parse_ok("pkcs11:model=SoftHSM%20v2", false, &u);
    assert_string_equal(u.model, "SoftHSM v2");
    tok_uri_clear(&u);
}

static void test_attr_serial(void **state)
{
    struct tok_uri u;

    (void)state;
    parse_ok("pkcs11:serial=0123456789abcdef", false, &u);
    assert_string_equal(u.serial, "0123456789abcdef");
    tok_uri_clear(&u);
}

static void test_attr_slot_id(void **state)
{
    struct tok_uri u;

    (void)state;
    parse_ok("pkcs11:slot-id=42", false, &u);
    assert_true(u.has_slot_id);
    assert_int_equal(u.slot_id, 42);
    tok_uri_clear(&u);

    parse_ok("pkcs11:slot-id=0", false, &u);
    assert_true(u.has_slot_id);
    assert_int_equal(u.slot_id, 0);
    tok_uri_clear(&u);

    /* The value is percent-decoded before it is read as a number. */
    parse_ok("pkcs11:slot-id=%34%32", false, &u);
    assert_int_equal(u.slot_id, 42);
    tok_uri_clear(&u);

    parse_ok("pkcs11:slot-id=18446744073709551615", false, &u);
    assert_true(u.slot_id == 18446744073709551615UL);
    tok_uri_clear(&u);
}

static void test_attr_slot_id_bad(void **state)
{
    (void)state;
    parse_usage("pkcs11:slot-id=", false);
    parse_usage("pkcs11:slot-id=-1", false);
    parse_usage("pkcs11:slot-id=+1", false);
    parse_usage("pkcs11:slot-id=%201", false);
    parse_usage("pkcs11:slot-id=12a", false);
    parse_usage("pkcs11:slot-id=0x10", false);
    parse_usage("pkcs11:slot-id=18446744073709551616", false);
    parse_usage("pkcs11:slot-id=1;slot-id=1", false);
}

static void test_attr_id_binary(void **state)
{
    static const unsigned char want[] = {0x01, 0x02, 0x00, 0xff, 0x41, 0x7e};
    struct tok_uri u;

    (void)state;
    parse_ok("pkcs11:id=%01%02%00%ffA~", false, &u);
    assert_int_equal(u.id_len, sizeof(want));
    assert_memory_equal(u.id, want, sizeof(want));
    tok_uri_clear(&u);
}

static void test_attr_id_limits(void **state)
{
    char s[16 + 3 * (TOK_ID_MAX + 1)];
    struct tok_uri u;
    size_t pos;

    (void)state;
    pos = (size_t)snprintf(s, sizeof(s), "pkcs11:id=");
    for (int i = 0; i < TOK_ID_MAX; i++)
        pos += (size_t)snprintf(s + pos, sizeof(s) - pos, "%%%02x", i);
    parse_ok(s, false, &u);
    assert_int_equal(u.id_len, TOK_ID_MAX);
    for (int i = 0; i < TOK_ID_MAX; i++)
        assert_int_equal(u.id[i], i);
    tok_uri_clear(&u);

    (void)snprintf(s + pos, sizeof(s) - pos, "%%40");
    parse_usage(s, false); /* TOK_ID_MAX + 1 bytes */
    parse_usage("pkcs11:id=", false);
    parse_usage("pkcs11:id=%01;id=%01", false);
}

static void test_attr_object(void **state)
{
    struct tok_uri u;

    (void)state;
    parse_ok("pkcs11:object=PKIo%20key%202025", false, &u);
    assert_string_equal(u.object, "PKIo key 2025");
    tok_uri_clear(&u);
}

static void test_attr_type(void **state)
{
    struct tok_uri u;

    (void)state;
    parse_ok("pkcs11:type=private", false, &u);
    assert_string_equal(u.type, "private");
    tok_uri_clear(&u);
    parse_ok("pkcs11:type=cert", false, &u);
    assert_string_equal(u.type, "cert");
    tok_uri_clear(&u);
}

static void test_attr_pin_source_file(void **state)
{
    struct tok_uri u;

    (void)state;
    parse_ok("pkcs11:token=t?pin-source=file:/etc/pkio/pin", false, &u);
    assert_string_equal(u.pin_source, "/etc/pkio/pin");
    assert_null(u.pin_value);
    tok_uri_clear(&u);

    parse_ok("pkcs11:token=t?pin-source=file%3A%2Fetc%2Fpkio%2Fpin", false, &u);
    assert_string_equal(u.pin_source, "/etc/pkio/pin");
    tok_uri_clear(&u);
}

static void test_attr_pin_source_plain(void **state)
{
    struct tok_uri u;

    (void)state;
    parse_ok("pkcs11:token=t?pin-source=/etc/pkio/pin", false, &u);
    assert_string_equal(u.pin_source, "/etc/pkio/pin");
    tok_uri_clear(&u);

    parse_ok("pkcs11:token=t?pin-source=pin.txt", false, &u);
    assert_string_equal(u.pin_source, "pin.txt");
    tok_uri_clear(&u);
}

static void test_attr_pin_source_bad(void **state)
{
    (void)state;
    parse_usage("pkcs11:?pin-source=", false);
    parse_usage("pkcs11:?pin-source=file:", false);
    parse_usage("pkcs11:?pin-source=/a&pin-source=/b", false);
    parse_usage("pkcs11:?pin-source=/a%00b", false);
}

static void test_all_attributes(void **state)
{
    static const unsigned char want_id[] = {0xde, 0xad, 0x00, 0xbe, 0xef};
    struct tok_uri u;

    (void)state;
    parse_ok("pkcs11:token=PKIo;manufacturer=SoftHSM%20project;model=SoftHSM%20v2;"
             "serial=3b5a1e0c2d4f6a8b;slot-id=7;id=%de%ad%00%be%ef;object=key;type=private"
             "?pin-source=file:/run/pin",
             false, &u);
    assert_string_equal(u.token, "PKIo");
    assert_string_equal(u.manufacturer, "SoftHSM project");
    assert_string_equal(u.model, "SoftHSM v2");
    assert_string_equal(u.serial, "3b5a1e0c2d4f6a8b");
    assert_true(u.has_slot_id);
    assert_int_equal(u.slot_id, 7);
    assert_int_equal(u.id_len, sizeof(want_id));
    assert_memory_equal(u.id, want_id, sizeof(want_id));
    assert_string_equal(u.object, "key");
    assert_string_equal(u.type, "private");
    assert_string_equal(u.pin_source, "/run/pin");
    assert_null(u.pin_value);
    tok_uri_clear(&u);
    assert_true(uri_is_empty(&u));
}

/* ---- path and query ------------------------------------------------------------------- */

static void test_empty_uri(void **state)
{
    struct tok_uri u;

    (void)state;
    parse_ok("pkcs11:", false, &u);
    assert_true(uri_is_empty(&u));
    tok_uri_clear(&u);
    parse_ok("pkcs11:?", false, &u);
    assert_true(uri_is_empty(&u));
    tok_uri_clear(&u);
}

static void test_scheme(void **state)
{
    struct tok_uri u;

    (void)state;
    parse_ok("PKCS11:token=a", false, &u); /* RFC 3986: the scheme is case-insensitive */
    assert_string_equal(u.token, "a");
    tok_uri_clear(&u);
    parse_usage("pkcs11", false);
    parse_usage("pkcs11;token=a", false);
    parse_usage("token=a", false);
    parse_usage("", false);
    parse_usage("file:/tmp/x", false);
    assert_int_equal(tok_uri_parse(NULL, false, &u), PA_E_USAGE);
}

static void test_query_separators(void **state)
{
    struct tok_uri u;

    (void)state;
    /* ';' separates path attributes, '&' query attributes; elsewhere they are data. */
    parse_ok("pkcs11:token=a&b;object=c?pin-source=/x;y&foo=bar", false, &u);
    assert_string_equal(u.token, "a&b");
    assert_string_equal(u.object, "c");
    assert_string_equal(u.pin_source, "/x;y");
    tok_uri_clear(&u);
}

static void test_query_only(void **state)
{
    struct tok_uri u;

    (void)state;
    parse_ok("pkcs11:?pin-source=/p", false, &u);
    assert_string_equal(u.pin_source, "/p");
    assert_null(u.token);
    tok_uri_clear(&u);
}

static void test_path_pin_source(void **state)
{
    struct tok_uri u;

    (void)state;
    /* The parser does not tie attributes to a component: pin-source in the path also works. */
    parse_ok("pkcs11:token=a;pin-source=/p", false, &u);
    assert_string_equal(u.pin_source, "/p");
    tok_uri_clear(&u);
}

static void test_duplicate_path_and_query(void **state)
{
    (void)state;
    parse_usage("pkcs11:token=a?token=b", false);
    parse_usage("pkcs11:pin-source=/a?pin-source=/b", false);
}

static void test_value_with_equals(void **state)
{
    struct tok_uri u;

    (void)state;
    parse_ok("pkcs11:object=a=b", false, &u);
    assert_string_equal(u.object, "a=b");
    tok_uri_clear(&u);
}

static void test_empty_text_value(void **state)
{
    struct tok_uri u;

    (void)state;
    /* RFC 7512 allows an empty value; it then names the empty label. */
    parse_ok("pkcs11:token=", false, &u);
    assert_non_null(u.token);
    assert_string_equal(u.token, "");
    tok_uri_clear(&u);
}

/* ---- percent-decoding ----------------------------------------------------------------- */

static void test_pct_decode(void **state)
{
    struct tok_uri u;

    (void)state;
    parse_ok("pkcs11:token=%41%4a%4A%2f%25%3b%3F%c3%a9", false, &u);
    assert_string_equal(u.token, "AJJ/%;?\xc3\xa9");
    tok_uri_clear(&u);
}

static void test_pct_decode_bad(void **state)
{
    (void)state;
    parse_usage("pkcs11:token=%", false);
    parse_usage("pkcs11:token=%4", false);
    parse_usage("pkcs11:token=a%4;object=b", false);
    parse_usage("pkcs11:token=%zz", false);
    parse_usage("pkcs11:token=%4g", false);
    parse_usage("pkcs11:token=%g4", false);
    parse_usage("pkcs11:id=%0", false);
    parse_usage("pkcs11:?pin-source=%", false);
}

static void test_text_nul_refused(void **state)
{
    (void)state;
    parse_usage("pkcs11:token=a%00b", false);
    parse_usage("pkcs11:manufacturer=%00", false);
    parse_usage("pkcs11:model=a%00", false);
    parse_usage("pkcs11:serial=%001", false);
    parse_usage("pkcs11:object=x%00", false);
    parse_usage("pkcs11:type=%00private", false);
}

/* ---- malformed ------------------------------------------------------------------------ */

static void test_trailing_separator(void **state)
{
    (void)state;
    parse_usage("pkcs11:token=a;", false);
    parse_usage("pkcs11:;", false);
    parse_usage("pkcs11:token=a?pin-source=/p&", false);
    parse_usage("pkcs11:?&", false);
}

static void test_empty_item(void **state)
{
    (void)state;
    parse_usage("pkcs11:token=a;;object=b", false);
    parse_usage("pkcs11:;token=a", false);
    parse_usage("pkcs11:?&pin-source=/p", false);
}

static void test_empty_name(void **state)
{
    (void)state;
    parse_usage("pkcs11:=a", false);
    parse_usage("pkcs11:token=a;=b", false);
    parse_usage("pkcs11:?=b", false);
}

static void test_missing_equals(void **state)
{
    (void)state;
    parse_usage("pkcs11:token", false);
    parse_usage("pkcs11:token=a;object", false);
    parse_usage("pkcs11:?pin-source", false);
}

static void test_duplicates(void **state)
{
    (void)state;
    parse_usage("pkcs11:token=a;token=a", false);
    parse_usage("pkcs11:manufacturer=a;manufacturer=b", false);
    parse_usage("pkcs11:model=a;model=b", false);
    parse_usage("pkcs11:serial=a;serial=b", false);
    parse_usage("pkcs11:object=a;object=b", false);
    parse_usage("pkcs11:type=private;type=public", false);
    parse_usage("pkcs11:token=a;token=", false);
}

static void test_too_long(void **state)
{
    size_t n = 4097;
    char *s = malloc(n + 1);
    struct tok_uri u;

    (void)state;
    assert_non_null(s);
    memcpy(s, "pkcs11:object=", 14);
    memset(s + 14, 'a', n - 14);
    s[n] = '\0';
    parse_usage(s, false); /* 4097 characters */
    s[4096] = '\0';
    parse_ok(s, false, &u); /* 4096 characters */
    assert_int_equal(strlen(u.object), 4096 - 14);
    tok_uri_clear(&u);
    free(s);
}

/* ---- pin-value and module attributes ------------------------------------------------- */

static void test_pin_value_refused(void **state)
{
    (void)state;
    parse_usage("pkcs11:token=a?pin-value=1234", false);
    parse_usage("pkcs11:token=a;pin-value=1234", false);
}

static void test_pin_value_allowed(void **state)
{
    struct tok_uri u;

    (void)state;
    parse_ok("pkcs11:token=a?pin-value=12%2634", true, &u);
    assert_non_null(u.pin_value);
    assert_int_equal(u.pin_value->len, 5);
    assert_string_equal(u.pin_value->buf, "12&34");
    assert_null(u.pin_source);
    tok_uri_clear(&u);
    assert_null(u.pin_value);
}

static void test_pin_value_bad(void **state)
{
    char s[300];
    int n;

    (void)state;
    parse_usage("pkcs11:?pin-value=", true);
    parse_usage("pkcs11:?pin-value=12%0034", true);
    parse_usage("pkcs11:?pin-value=12%3", true);
    parse_usage("pkcs11:?pin-value=1&pin-value=1", true);
    n = snprintf(s, sizeof(s), "pkcs11:?pin-value=");
    memset(s + n, '7', 257);
    s[n + 257] = '\0';
    parse_usage(s, true); /* longer than 256 */
}

static void test_pin_value_max(void **state)
{
    char s[300];
    struct tok_uri u;
    int n;

    (void)state;
    n = snprintf(s, sizeof(s), "pkcs11:?pin-value=");
    memset(s + n, '7', 256);
    s[n + 256] = '\0';
    parse_ok(s, true, &u);
    assert_int_equal(u.pin_value->len, 256);
    tok_uri_clear(&u);
}

static void test_pin_source_and_value(void **state)
{
    (void)state;
    parse_usage("pkcs11:token=a?pin-source=/p&pin-value=1234", true);
    parse_usage("pkcs11:token=a?pin-value=1234&pin-source=/p", true);
}

static void test_module_refused(void **state)
{
    (void)state;
    parse_usage("pkcs11:token=a?module-path=/usr/lib/evil.so", false);
    parse_usage("pkcs11:token=a?module-path=/usr/lib/evil.so", true);
    parse_usage("pkcs11:token=a?module-name=softhsm2", false);
    parse_usage("pkcs11:token=a;module-path=/x.so", true);
}

static void test_unknown_ignored(void **state)
{
    struct tok_uri u;

    (void)state;
    parse_ok("pkcs11:library-manufacturer=OpenSC;token=a;library-version=1.2;x-vendor=%zz%"
             "?foo=bar&x-other=1",
             false, &u);
    assert_string_equal(u.token, "a");
    assert_null(u.manufacturer);
    assert_null(u.object);
    tok_uri_clear(&u);
}

static void test_clear(void **state)
{
    struct tok_uri u;

    (void)state;
    tok_uri_clear(NULL);
    parse_ok("pkcs11:token=a;object=b?pin-value=1", true, &u);
    tok_uri_clear(&u);
    assert_true(uri_is_empty(&u));
    tok_uri_clear(&u); /* twice is harmless */
}

/* ---- matching ------------------------------------------------------------------------- */

static struct tok_info info_sample(void)
{
    struct tok_info i;

    memset(&i, 0, sizeof(i));
    i.slot_id = 3;
    (void)snprintf(i.label, sizeof(i.label), "%s", "Jan de Vries");
    (void)snprintf(i.manufacturer, sizeof(i.manufacturer), "%s", "SoftHSM project");
    (void)snprintf(i.model, sizeof(i.model), "%s", "SoftHSM v2");
    (void)snprintf(i.serial, sizeof(i.serial), "%s", "3b5a1e0c2d4f6a8b");
    return i;
}

static bool matches(const char *s)
{
    struct tok_info info = info_sample();
    struct tok_uri u;
    bool m;

    parse_ok(s, false, &u);
    m = tok_uri_matches(&u, &info);
    tok_uri_clear(&u);
    return m;
}

static void test_matches(void **state)
{
    (void)state;
    assert_true(matches("pkcs11:"));
    assert_true(matches("pkcs11:token=Jan%20de%20Vries"));
    assert_true(matches("pkcs11:manufacturer=SoftHSM%20project;model=SoftHSM%20v2"));
    assert_true(matches("pkcs11:serial=3b5a1e0c2d4f6a8b;slot-id=3"));
    assert_true(matches("pkcs11:token=Jan%20de%20Vries;manufacturer=SoftHSM%20project;"
                        "model=SoftHSM%20v2;serial=3b5a1e0c2d4f6a8b;slot-id=3"));
    /* Object attributes do not take part in token matching. */
    assert_true(matches("pkcs11:token=Jan%20de%20Vries;id=%01;object=x;type=cert"));
}

static void test_matches_mismatch(void **state)
{
    (void)state;
    assert_false(matches("pkcs11:token=Jan%20de%20vries"));
    assert_false(matches("pkcs11:token=Jan%20de%20Vries%20"));
    assert_false(matches("pkcs11:token="));
    assert_false(matches("pkcs11:manufacturer=SoftHSM"));
    assert_false(matches("pkcs11:model=SoftHSM%20v3"));
    assert_false(matches("pkcs11:serial=3b5a1e0c2d4f6a8c"));
    assert_false(matches("pkcs11:slot-id=0"));
    assert_false(matches("pkcs11:token=Jan%20de%20Vries;serial=0"));
}

/* ---- formatting ----------------------------------------------------------------------- */

static void test_uri_for_key_exact(void **state)
{
    static const unsigned char id[] = {0x00, 0xff, 'a', ';'};
    struct tok_info info = info_sample();
    char *s;

    (void)state;
    (void)snprintf(info.label, sizeof(info.label), "%s", "My Token/1;x");
    (void)snprintf(info.serial, sizeof(info.serial), "%s", "0123ABCD");
    s = tok_uri_for_key(&info, id, sizeof(id), "Key %1");
    assert_non_null(s);
    /* The id is percent-encoded in full, even its unreserved bytes ('a' is %61). */
    assert_string_equal(s, "pkcs11:token=My%20Token%2F1%3Bx;serial=0123ABCD;id=%00%FF%61%3B;"
                           "object=Key%20%251;type=private");
    free(s);

    s = tok_uri_for_key(&info, NULL, 0, NULL);
    assert_non_null(s);
    assert_string_equal(s, "pkcs11:token=My%20Token%2F1%3Bx;serial=0123ABCD;type=private");
    free(s);

    s = tok_uri_for_key(&info, id, 1, "");
    assert_non_null(s);
    assert_string_equal(s, "pkcs11:token=My%20Token%2F1%3Bx;serial=0123ABCD;id=%00;type=private");
    free(s);
}

/* Format, parse, and compare: token, serial, id, object and type survive. */
static void round_trip(const struct tok_info *info, const unsigned char *id, size_t id_len,
                       const char *label)
{
    struct tok_uri u;
    char *s = tok_uri_for_key(info, id, id_len, label);

    assert_non_null(s);
    parse_ok(s, false, &u);
    assert_string_equal(u.token, info->label);
    assert_string_equal(u.serial, info->serial);
    assert_int_equal(u.id_len, id_len);
    if (id_len)
        assert_memory_equal(u.id, id, id_len);
    if (label && *label)
        assert_string_equal(u.object, label);
    else
        assert_null(u.object);
    assert_string_equal(u.type, "private");
    assert_null(u.manufacturer);
    assert_false(u.has_slot_id);
    assert_true(tok_uri_matches(&u, info));
    tok_uri_clear(&u);
    free(s);
}

static void test_uri_for_key_round_trip(void **state)
{
    static const unsigned char sha1_id[20] = {0x3f, 0x1a, 0x00, 0x9c, 0x25, 0x3b, 0xff,
                                              0x80, 0x7e, 0x2f, 0x3d, 0x26, 0x3f};
    struct tok_info info = info_sample();

    (void)state;
    round_trip(&info, sha1_id, sizeof(sha1_id), "PKIo 2025 Jan de Vries");
    round_trip(&info, sha1_id, 1, NULL);
    round_trip(&info, NULL, 0, "only a label");
}

static void test_uri_for_key_worst_case(void **state)
{
    unsigned char id[TOK_ID_MAX];
    char label[301];
    struct tok_info info;

    (void)state;
    /* Every byte needs escaping: the buffer must still hold the whole URI. */
    memset(&info, 0, sizeof(info));
    memset(info.label, '%', sizeof(info.label) - 1);
    memset(info.serial, ' ', sizeof(info.serial) - 1);
    for (size_t i = 0; i < sizeof(id); i++)
        id[i] = (unsigned char)(0x80 + i);
    for (size_t i = 0; i < sizeof(label) - 1; i++)
        label[i] = (char)(0x80 | (i & 0x7f));
    label[sizeof(label) - 1] = '\0';
    round_trip(&info, id, sizeof(id), label);
}

/* ---- RFC 7512 printing: percent-encoding and round trips -------------------------------- */

static const char unreserved_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                       "0123456789-._~";

/* How the agent prints one byte: unreserved as is, anything else as %XX (upper-case hex). */
static void enc_byte(char *out, size_t *pos, unsigned char c)
{
    if (c && strchr(unreserved_chars, c))
        out[(*pos)++] = (char)c;
    else
        *pos += (size_t)sprintf(out + *pos, "%%%02X", c);
}

static bool eq_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Every attribute but pin-value (which is never printed) is the same. */
static bool same_attrs(const struct tok_uri *a, const struct tok_uri *b)
{
    return eq_str(a->token, b->token) && eq_str(a->manufacturer, b->manufacturer) &&
           eq_str(a->model, b->model) && eq_str(a->serial, b->serial) &&
           a->has_slot_id == b->has_slot_id && a->slot_id == b->slot_id && a->id_len == b->id_len &&
           memcmp(a->id, b->id, a->id_len) == 0 && eq_str(a->object, b->object) &&
           eq_str(a->type, b->type) && eq_str(a->pin_source, b->pin_source);
}

/*
 * Only what every parser takes: "pkcs11:", then unreserved characters, "%XX" with upper-case
 * hex, and the separators ';', '=', '?' and '&' (no second ':', no '/', '(', ' ', ...).
 */
static void assert_conservative(const char *s)
{
    assert_memory_equal(s, "pkcs11:", 7);
    for (const char *p = s + 7; *p; p++) {
        if (*p == '%') {
            assert_non_null(strchr("0123456789ABCDEF", p[1]));
            assert_non_null(strchr("0123456789ABCDEF", p[2]));
            assert_true(p[1] && p[2]);
            p += 2;
            continue;
        }
        if (!strchr(unreserved_chars, *p) && !strchr(";=?&", *p))
            print_error("unexpected '%c' in %s\n", *p, s);
        assert_true(strchr(unreserved_chars, *p) || strchr(";=?&", *p));
    }
}

static struct tok_info info_with(const char *label, const char *serial)
{
    struct tok_info i;

    memset(&i, 0, sizeof(i));
    assert_true(strlen(label) < sizeof(i.label) && strlen(serial) < sizeof(i.serial));
    memcpy(i.label, label, strlen(label) + 1);
    memcpy(i.serial, serial, strlen(serial) + 1);
    return i;
}

static void test_print_isoapplet(void **state)
{
    static const unsigned char id[] = {0x3f, 0x00, 0x41};
    struct tok_info info = info_with("JavaCard isoApplet (User PIN)", "0123456789ABCDEF");
    char *s;

    (void)state;
    s = tok_uri_for_token(&info);
    assert_non_null(s);
    assert_string_equal(s, "pkcs11:token=JavaCard%20isoApplet%20%28User%20PIN%29;"
                           "serial=0123456789ABCDEF");
    assert_conservative(s);
    free(s);
    s = tok_uri_for_key(&info, id, sizeof(id), "pkio-agent (2025)");
    assert_non_null(s);
    assert_string_equal(s, "pkcs11:token=JavaCard%20isoApplet%20%28User%20PIN%29;"
                           "serial=0123456789ABCDEF;id=%3F%00%41;"
                           "object=pkio-agent%20%282025%29;type=private");
    assert_conservative(s);
    free(s);
    round_trip(&info, id, sizeof(id), "pkio-agent (2025)");
}

static void test_print_token_round_trip(void **state)
{
    struct tok_info info = info_with("a;b?c/d%e f&g", "S/N 1");
    struct tok_uri u;
    char *s;

    (void)state;
    s = tok_uri_for_token(&info);
    assert_non_null(s);
    assert_string_equal(s, "pkcs11:token=a%3Bb%3Fc%2Fd%25e%20f%26g;serial=S%2FN%201");
    parse_ok(s, false, &u);
    assert_string_equal(u.token, info.label);
    assert_string_equal(u.serial, info.serial);
    assert_null(u.object);
    assert_null(u.type);
    assert_int_equal(u.id_len, 0);
    assert_true(tok_uri_matches(&u, &info));
    tok_uri_clear(&u);
    free(s);
}

/* Each byte 0x01-0xff in a label is printed as enc_byte says and read back as itself. */
static void test_print_every_byte(void **state)
{
    (void)state;
    for (int c = 1; c < 256; c++) {
        char label[4] = {(char)c, 'x', (char)c, '\0'}, want[64];
        struct tok_info info = info_with(label, "1");
        size_t pos = (size_t)sprintf(want, "pkcs11:token=");
        struct tok_uri u;
        char *s;

        enc_byte(want, &pos, (unsigned char)c);
        want[pos++] = 'x';
        enc_byte(want, &pos, (unsigned char)c);
        (void)sprintf(want + pos, ";serial=1");
        s = tok_uri_for_token(&info);
        assert_non_null(s);
        assert_string_equal(s, want);
        assert_conservative(s);
        parse_ok(s, false, &u);
        assert_string_equal(u.token, label);
        tok_uri_clear(&u);
        free(s);
    }
}

/* Every printable ASCII character, in labels of the maximum length (32) and a serial (16). */
static void test_print_printable_ascii(void **state)
{
    char all[96];
    unsigned char id[TOK_ID_MAX];

    (void)state;
    for (int c = 0x20; c < 0x7f; c++)
        all[c - 0x20] = (char)c;
    all[95] = '\0';
    for (size_t i = 0; i < sizeof(id); i++)
        id[i] = (unsigned char)(0x20 + i);
    for (size_t off = 0; off < 95; off += 16) {
        char label[33] = "", serial[17] = "", object[33] = "";
        struct tok_info info;
        char *s;

        /* 32 bytes from off, wrapping around, so every character lands in every field. */
        for (size_t k = 0; k < 32; k++)
            label[k] = all[(off + k) % 95];
        for (size_t k = 0; k < 16; k++)
            serial[k] = all[(off + 40 + k) % 95];
        for (size_t k = 0; k < 32; k++)
            object[k] = all[(off + 60 + k) % 95];
        info = info_with(label, serial);
        assert_int_equal(strlen(info.label), 32);
        s = tok_uri_for_key(&info, id, sizeof(id), object);
        assert_non_null(s);
        assert_conservative(s);
        free(s);
        round_trip(&info, id, sizeof(id), object);
    }
}

static void test_print_utf8(void **state)
{
    /* "Jürgen Müller", and 10 x U+20AC EURO SIGN + "ab": 32 bytes, the longest label. */
    struct tok_info info = info_with("J\xc3\xbcrgen M\xc3\xbcller", "1");
    char euro[33];
    char *s;

    (void)state;
    s = tok_uri_for_token(&info);
    assert_non_null(s);
    assert_string_equal(s, "pkcs11:token=J%C3%BCrgen%20M%C3%BCller;serial=1");
    free(s);
    round_trip(&info, (const unsigned char *)"\x01", 1, "\xe2\x82\xac \xf0\x9f\x94\x91 key");

    for (int i = 0; i < 10; i++)
        memcpy(euro + 3 * i, "\xe2\x82\xac", 3);
    memcpy(euro + 30, "ab", 3);
    info = info_with(euro, "2");
    assert_int_equal(strlen(info.label), 32);
    s = tok_uri_for_token(&info);
    assert_non_null(s);
    assert_int_equal(strlen(s), strlen("pkcs11:token=") + 10 * 9 + 2 + strlen(";serial=2"));
    assert_conservative(s);
    free(s);
    round_trip(&info, NULL, 0, euro);
}

static void test_print_max_label(void **state)
{
    char label[33];
    struct tok_info info;
    char *s;

    (void)state;
    memset(label, '(', 32);
    label[32] = '\0';
    info = info_with(label, "0000000000000000");
    s = tok_uri_for_token(&info);
    assert_non_null(s);
    assert_int_equal(strlen(s), strlen("pkcs11:token=") + 3 * 32 + strlen(";serial=") + 16);
    assert_conservative(s);
    free(s);
    round_trip(&info, NULL, 0, label);
    memset(label, 'z', 32);
    info = info_with(label, "0000000000000000");
    round_trip(&info, NULL, 0, NULL);
}

/* tok_uri_format: everything parsed comes back, printed in the conservative form. */
static void test_format_round_trip(void **state)
{
    struct tok_uri u, back;
    char *s;

    (void)state;
    parse_ok("pkcs11:token=JavaCard isoApplet (User PIN);manufacturer=ACME [NL];"
             "model=M!$'*+,:@;serial=a=b;slot-id=07;id=%00a~;object=%C3%A9 %25;type=private"
             "?pin-source=file:/run/my pins/a%26b;c",
             false, &u);
    s = tok_uri_format(&u);
    assert_non_null(s);
    assert_string_equal(s, "pkcs11:token=JavaCard%20isoApplet%20%28User%20PIN%29;"
                           "manufacturer=ACME%20%5BNL%5D;model=M%21%24%27%2A%2B%2C%3A%40;"
                           "serial=a%3Db;slot-id=7;id=%00%61%7E;object=%C3%A9%20%25;"
                           "type=private?pin-source=%2Frun%2Fmy%20pins%2Fa%26b%3Bc");
    assert_conservative(s);
    parse_ok(s, false, &back);
    assert_true(same_attrs(&u, &back));
    tok_uri_clear(&back);
    tok_uri_clear(&u);
    free(s);
}

static void test_format_edges(void **state)
{
    struct tok_uri u, back;
    char *s;

    (void)state;
    /* Nothing: just the scheme. */
    parse_ok("pkcs11:", false, &u);
    s = tok_uri_format(&u);
    assert_string_equal(s, "pkcs11:");
    free(s);
    tok_uri_clear(&u);

    /* Query only; a path that itself starts with "file:" keeps it. */
    parse_ok("pkcs11:?pin-source=file:file:x", false, &u);
    assert_string_equal(u.pin_source, "file:x");
    s = tok_uri_format(&u);
    assert_string_equal(s, "pkcs11:?pin-source=file%3Afile%3Ax");
    parse_ok(s, false, &back);
    assert_string_equal(back.pin_source, "file:x");
    tok_uri_clear(&back);
    free(s);
    tok_uri_clear(&u);

    /* Empty values are printed (they name the empty label), slot-id 0 and the largest. */
    parse_ok("pkcs11:token=;object=;slot-id=18446744073709551615", false, &u);
    s = tok_uri_format(&u);
    assert_string_equal(s, "pkcs11:token=;slot-id=18446744073709551615;object=");
    parse_ok(s, false, &back);
    assert_true(same_attrs(&u, &back));
    tok_uri_clear(&back);
    free(s);
    tok_uri_clear(&u);
}

static void test_format_no_pin_value(void **state)
{
    struct tok_uri u, back;
    char *s;

    (void)state;
    parse_ok("pkcs11:token=t?pin-value=1234", true, &u);
    assert_non_null(u.pin_value);
    s = tok_uri_format(&u);
    assert_string_equal(s, "pkcs11:token=t");
    assert_null(strstr(s, "1234"));
    parse_ok(s, false, &back);
    assert_null(back.pin_value);
    assert_true(same_attrs(&u, &back));
    tok_uri_clear(&back);
    tok_uri_clear(&u);
    free(s);
}

/* ---- key types ------------------------------------------------------------------------ */

static void test_key_type_parse(void **state)
{
    enum tok_key_type t;

    (void)state;
    assert_int_equal(tok_key_type_parse("rsa:2048", &t), 0);
    assert_int_equal(t, TOK_KEY_RSA2048);
    assert_int_equal(tok_key_type_parse("rsa:3072", &t), 0);
    assert_int_equal(t, TOK_KEY_RSA3072);
    assert_int_equal(tok_key_type_parse("rsa:4096", &t), 0);
    assert_int_equal(t, TOK_KEY_RSA4096);
    assert_int_equal(tok_key_type_parse("ec:p256", &t), 0);
    assert_int_equal(t, TOK_KEY_EC_P256);
    assert_int_equal(tok_key_type_parse("ec:p384", &t), 0);
    assert_int_equal(t, TOK_KEY_EC_P384);
    assert_int_equal(tok_key_type_parse("EC:P384", &t), 0);
    assert_int_equal(t, TOK_KEY_EC_P384);
    assert_int_equal(tok_key_type_parse("RSA:2048", &t), 0);
    assert_int_equal(t, TOK_KEY_RSA2048);
}

static void test_key_type_parse_bad(void **state)
{
    enum tok_key_type t = TOK_KEY_EC_P256;

    (void)state;
    assert_int_equal(tok_key_type_parse("rsa:1024", &t), PA_E_USAGE);
    assert_int_equal(tok_key_type_parse("ec:p521", &t), PA_E_USAGE);
    assert_int_equal(tok_key_type_parse("rsa", &t), PA_E_USAGE);
    assert_int_equal(tok_key_type_parse("rsa:2048 ", &t), PA_E_USAGE);
    assert_int_equal(tok_key_type_parse("", &t), PA_E_USAGE);
    assert_int_equal(t, TOK_KEY_EC_P256); /* untouched */
}

static void test_key_type_name(void **state)
{
    static const enum tok_key_type all[] = {TOK_KEY_RSA2048, TOK_KEY_RSA3072, TOK_KEY_RSA4096,
                                            TOK_KEY_EC_P256, TOK_KEY_EC_P384};
    enum tok_key_type t;

    (void)state;
    assert_string_equal(tok_key_type_name(TOK_KEY_RSA2048), "rsa:2048");
    assert_string_equal(tok_key_type_name(TOK_KEY_RSA3072), "rsa:3072");
    assert_string_equal(tok_key_type_name(TOK_KEY_RSA4096), "rsa:4096");
    assert_string_equal(tok_key_type_name(TOK_KEY_EC_P256), "ec:p256");
    assert_string_equal(tok_key_type_name(TOK_KEY_EC_P384), "ec:p384");
    assert_string_equal(tok_key_type_name((enum tok_key_type)99), "?");
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        assert_int_equal(tok_key_type_parse(tok_key_type_name(all[i]), &t), 0);
        assert_int_equal(t, all[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attr_token),
        cmocka_unit_test(test_attr_manufacturer),
        cmocka_unit_test(test_attr_model),
        cmocka_unit_test(test_attr_serial),
        cmocka_unit_test(test_attr_slot_id),
        cmocka_unit_test(test_attr_slot_id_bad),
        cmocka_unit_test(test_attr_id_binary),
        cmocka_unit_test(test_attr_id_limits),
        cmocka_unit_test(test_attr_object),
        cmocka_unit_test(test_attr_type),
        cmocka_unit_test(test_attr_pin_source_file),
        cmocka_unit_test(test_attr_pin_source_plain),
        cmocka_unit_test(test_attr_pin_source_bad),
        cmocka_unit_test(test_all_attributes),
        cmocka_unit_test(test_empty_uri),
        cmocka_unit_test(test_scheme),
        cmocka_unit_test(test_query_separators),
        cmocka_unit_test(test_query_only),
        cmocka_unit_test(test_path_pin_source),
        cmocka_unit_test(test_duplicate_path_and_query),
        cmocka_unit_test(test_value_with_equals),
        cmocka_unit_test(test_empty_text_value),
        cmocka_unit_test(test_pct_decode),
        cmocka_unit_test(test_pct_decode_bad),
        cmocka_unit_test(test_text_nul_refused),
        cmocka_unit_test(test_trailing_separator),
        cmocka_unit_test(test_empty_item),
        cmocka_unit_test(test_empty_name),
        cmocka_unit_test(test_missing_equals),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_pin_value_refused),
        cmocka_unit_test(test_pin_value_allowed),
        cmocka_unit_test(test_pin_value_bad),
        cmocka_unit_test(test_pin_value_max),
        cmocka_unit_test(test_pin_source_and_value),
        cmocka_unit_test(test_module_refused),
        cmocka_unit_test(test_unknown_ignored),
        cmocka_unit_test(test_clear),
        cmocka_unit_test(test_matches),
        cmocka_unit_test(test_matches_mismatch),
        cmocka_unit_test(test_uri_for_key_exact),
        cmocka_unit_test(test_uri_for_key_round_trip),
        cmocka_unit_test(test_uri_for_key_worst_case),
        cmocka_unit_test(test_print_isoapplet),
        cmocka_unit_test(test_print_token_round_trip),
        cmocka_unit_test(test_print_every_byte),
        cmocka_unit_test(test_print_printable_ascii),
        cmocka_unit_test(test_print_utf8),
        cmocka_unit_test(test_print_max_label),
        cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_format_edges),
        cmocka_unit_test(test_format_no_pin_value),
        cmocka_unit_test(test_key_type_parse),
        cmocka_unit_test(test_key_type_parse_bad),
        cmocka_unit_test(test_key_type_name),
    };

    return cmocka_run_group_tests_name("uri", tests, NULL, NULL);
}
