/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test_pjson.c - the one strict JSON parse (agent/base/pjson.c) and the one error formatter
 * (pa_errf, agent/base/pa_err.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "i18n.h"
#include "pa_err.h"
#include "pjson.h"

#define ERR PA_E_CONFIG

static const struct pjson_opts strict = {1024, 4, PJSON_UTF8 | PJSON_OBJECT | PJSON_FINITE, ERR};

/* Parse s (strlen) under o; expect failure fail at line:col (0: not checked). */
static void refused(const struct pjson_opts *o, const char *s, size_t len, enum pjson_fail fail,
                    unsigned long line, unsigned long col)
{
    json_object *v = (json_object *)(uintptr_t)1;
    struct pjson_err e;

    assert_int_equal(pjson_parse(s, len, o, &v, &e), ERR);
    assert_int_equal(e.fail, fail);
    assert_ptr_equal(v, (json_object *)(uintptr_t)1); /* untouched */
    if (line) {
        assert_int_equal(e.line, line);
        assert_int_equal(e.col, col);
    }
}

static void test_good(void **state)
{
    const char *s = " {\"a\": [1, 2.5, \"x\"], \"b\": {\"c\": null}}\r\n\t ";
    json_object *v = NULL, *a;
    struct pjson_err e;

    (void)state;
    assert_int_equal(pjson_parse(s, strlen(s), &strict, &v, &e), 0);
    assert_int_equal(e.fail, PJSON_OK);
    assert_true(json_object_is_type(v, json_type_object));
    assert_true(json_object_object_get_ex(v, "a", &a));
    assert_int_equal(json_object_array_length(a), 3);
    json_object_put(v);
    /* an explicit length: what follows is not read */
    assert_int_equal(pjson_parse("{}garbage", 2, &strict, &v, NULL), 0);
    json_object_put(v);
}

static void test_trailing(void **state)
{
    const struct pjson_opts nospace = {0, 4, PJSON_NO_SPACE, ERR};
    json_object *v = NULL;

    (void)state;
    refused(&strict, "{} x", 4, PJSON_SYNTAX, 1, 4);
    refused(&strict, "{} {}", 5, PJSON_SYNTAX, 1, 4);
    refused(&strict, "{}\n\n  ]", 7, PJSON_SYNTAX, 3, 3);
    refused(&nospace, "{} ", 3, PJSON_TRAILING, 1, 3);
    assert_int_equal(pjson_parse("[1]", 3, &nospace, &v, NULL), 0);
    assert_true(json_object_is_type(v, json_type_array));
    json_object_put(v);
}

static void test_truncated(void **state)
{
    (void)state;
    refused(&strict, "{\"a\": ", 6, PJSON_TRUNCATED, 1, 7);
    refused(&strict, "", 0, PJSON_TRUNCATED, 1, 1);
    refused(&strict, "{\"a\":\n[1,", 9, PJSON_TRUNCATED, 2, 4);
}

static void test_syntax(void **state)
{
    struct pjson_err e;
    json_object *v = NULL;

    (void)state;
    refused(&strict, "{\"a\":'x'}", 9, PJSON_SYNTAX, 1, 6);
    refused(&strict, "{\"a\":1,}", 8, PJSON_SYNTAX, 1, 8);
    refused(&strict, "{/* c */}", 9, PJSON_SYNTAX, 1, 2);
    assert_int_equal(pjson_parse("{\"a\":\"\xff\"}", 9, &strict, &v, &e), ERR);
    assert_int_equal(e.fail, PJSON_SYNTAX);
    assert_string_equal(e.desc, "invalid utf-8 string");
}

static void test_utf8_optional(void **state)
{
    const struct pjson_opts bytes = {0, 4, 0, ERR};
    json_object *v = NULL;

    (void)state;
    assert_int_equal(pjson_parse("{\"a\":\"\xff\"}", 9, &bytes, &v, NULL), 0);
    json_object_put(v);
}

static void test_depth(void **state)
{
    json_object *v = NULL;

    (void)state;
    /* depth 4: four nested containers, not five */
    assert_int_equal(pjson_parse("{\"a\":{\"b\":[{}]}}", 16, &strict, &v, NULL), 0);
    json_object_put(v);
    refused(&strict, "{\"a\":{\"b\":[{\"c\":[]}]}}", 22, PJSON_SYNTAX, 0, 0);
}

static void test_size_and_nul(void **state)
{
    const struct pjson_opts small = {8, 4, PJSON_OBJECT, ERR};
    json_object *v = NULL;

    (void)state;
    assert_int_equal(pjson_parse("{\"a\":12}", 8, &small, &v, NULL), 0);
    json_object_put(v);
    refused(&small, "{\"a\":123}", 9, PJSON_TOO_LARGE, 0, 0);
    refused(&small, "{\"a\"\0:1}", 8, PJSON_NUL, 0, 0);
    refused(&small, NULL, 0, PJSON_NO_DATA, 0, 0);
}

static void test_top_level(void **state)
{
    const struct pjson_opts any = {0, 4, 0, ERR};
    json_object *v = (json_object *)(uintptr_t)1;

    (void)state;
    refused(&strict, "[]", 2, PJSON_NOT_OBJECT, 0, 0);
    refused(&strict, "\"x\"", 3, PJSON_NOT_OBJECT, 0, 0);
    /* a bare literal or number never ends (json-c waits for more): truncated */
    refused(&strict, "null", 4, PJSON_TRUNCATED, 1, 5);
    refused(&any, "7", 1, PJSON_TRUNCATED, 1, 2);
    assert_int_equal(pjson_parse("\"x\"", 3, &any, &v, NULL), 0);
    assert_string_equal(json_object_get_string(v), "x");
    json_object_put(v);
}

static void test_finite(void **state)
{
    const struct pjson_opts any = {0, 4, PJSON_OBJECT, ERR};
    json_object *v = NULL;

    (void)state;
    refused(&strict, "{\"a\":1e999}", 11, PJSON_RANGE, 0, 0);
    refused(&strict, "{\"a\":[1,-1e999]}", 16, PJSON_RANGE, 0, 0);
    assert_int_equal(pjson_parse("{\"a\":1e999}", 11, &any, &v, NULL), 0);
    assert_false(pjson_finite(v));
    json_object_put(v);
}

static void test_wipe(void **state)
{
    const struct pjson_opts o = {0, 4, PJSON_WIPE, ERR};
    json_object *v = NULL, *s;
    const char *p;

    (void)state;
    assert_int_equal(pjson_parse("{\"n\":[\"4111\"],\"m\":\"12\"}", 23, &o, &v, NULL), 0);
    pjson_wipe(v);
    assert_true(json_object_object_get_ex(v, "m", &s));
    p = json_object_get_string(s);
    assert_int_equal(p[0], 0);
    assert_int_equal(p[1], 0);
    s = json_object_array_get_idx(json_object_object_get(v, "n"), 0);
    assert_int_equal(json_object_get_string(s)[0], 0);
    json_object_put(v);
}

/* The messages: the request/configuration wording with a name, the job wording without. */
static void test_explain(void **state)
{
    char msg[256];
    struct pjson_err e;
    json_object *v = NULL;

    (void)state;
    (void)pjson_parse("{\"api\": {", 9, &strict, &v, &e);
    pjson_explain(&e, "t.json", 1024, msg, sizeof(msg));
    assert_string_equal(msg, "t.json:1:10: invalid JSON: unexpected end of input");
    pjson_explain(&e, NULL, 1024, msg, sizeof(msg));
    assert_string_equal(msg, "invalid JSON: unexpected end of input");
    (void)pjson_parse("[]", 2, &strict, &v, &e);
    pjson_explain(&e, "t.json", 1024, msg, sizeof(msg));
    assert_string_equal(msg, "t.json: must contain a JSON object");
    pjson_explain(&e, NULL, 1024, msg, sizeof(msg));
    assert_string_equal(msg, "not a JSON object");
    (void)pjson_parse("{} ", 3, &(struct pjson_opts){0, 4, PJSON_NO_SPACE, ERR}, &v, &e);
    pjson_explain(&e, "t", 0, msg, sizeof(msg));
    assert_string_equal(msg, "t:1:3: invalid JSON: data after the end");
    (void)pjson_parse("{\"a\":1e999}", 11, &strict, &v, &e);
    pjson_explain(&e, "t", 0, msg, sizeof(msg));
    assert_string_equal(msg, "t: a number is out of range");
    (void)pjson_parse("{\"a\":1}x", 2000, &strict, &v, &e);
    pjson_explain(&e, "t", 1024, msg, sizeof(msg));
    assert_string_equal(msg, "t: larger than 1024 bytes");
    pjson_explain(&e, "t", 1024, NULL, 0); /* no buffer: nothing happens */
}

static void test_pa_errf(void **state)
{
    char buf[8];

    (void)state;
    assert_int_equal(pa_errf(buf, sizeof(buf), PA_E_JOB, "%s-%d", "abc", 12345), PA_E_JOB);
    assert_string_equal(buf, "abc-123"); /* truncated, terminated */
    assert_int_equal(pa_errf(NULL, 0, PA_E_IO, "%s", "x"), PA_E_IO);
    buf[0] = 'q';
    assert_int_equal(pa_errf(buf, 0, 0, "%s", "x"), 0);
    assert_int_equal(buf[0], 'q');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),          cmocka_unit_test(test_trailing),
        cmocka_unit_test(test_truncated),     cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_utf8_optional), cmocka_unit_test(test_depth),
        cmocka_unit_test(test_size_and_nul),  cmocka_unit_test(test_top_level),
        cmocka_unit_test(test_finite),        cmocka_unit_test(test_wipe),
        cmocka_unit_test(test_explain),       cmocka_unit_test(test_pa_errf),
    };

    (void)i18n_set_lang("en");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
