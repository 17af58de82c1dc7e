/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_custody.c - the custody gates for real card stacks: a key this job generated is accepted
 * on evidence that holds on every stack (secret value unreadable, CKA_EXTRACTABLE not true, a
 * token object) even when the module reports CKA_LOCAL and friends false, as OpenSC does for
 * on-card keys; a key we did not generate still needs the full attribute proof; usages asked
 * for must be on the key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "pa_err.h"
#include "tok.h"

/* What OpenSC's PKCS#15 layer reports for a key the card generated. */
static struct tok_custody opensc_card_key(void)
{
    struct tok_custody c;

    memset(&c, 0, sizeof(c));
    c.reported_extractable = true;
    c.extractable = false;
    c.is_token = true;
    c.is_private = true;
    c.sign = true;
    return c;
}

static void test_generated_on_card(void **state)
{
    struct tok_custody c = opensc_card_key();

    (void)state;
    assert_int_equal(tok_custody_ok_generated(&c), 0);
    /* the same attributes without our own C_GenerateKeyPair are not proof */
    assert_int_equal(tok_custody_ok(&c), PA_E_CUSTODY);
    assert_non_null(strstr(tok_detail(), "CKA_LOCAL"));
}

static void test_generated_but_readable(void **state)
{
    struct tok_custody c = opensc_card_key();

    (void)state;
    c.value_readable = true;
    assert_int_equal(tok_custody_ok_generated(&c), PA_E_CUSTODY);
    assert_non_null(strstr(tok_detail(), "read out"));
    c.value_readable = false;
    c.extractable = true;
    assert_int_equal(tok_custody_ok_generated(&c), PA_E_CUSTODY);
    assert_non_null(strstr(tok_detail(), "extractable"));
    c.extractable = false;
    c.is_token = false;
    assert_int_equal(tok_custody_ok_generated(&c), PA_E_CUSTODY);
}

static void test_generated_extractable_unreported(void **state)
{
    struct tok_custody c = opensc_card_key();

    (void)state;
    /* unreported is "not true" for our own key, but never attribute proof for another */
    c.reported_extractable = false;
    c.extractable = true;
    assert_int_equal(tok_custody_ok_generated(&c), 0);
    c.local = c.sensitive = c.always_sensitive = c.never_extractable = true;
    assert_int_equal(tok_custody_ok(&c), PA_E_CUSTODY);
}

static void test_attribute_proof_and_readable(void **state)
{
    struct tok_custody c;

    (void)state;
    memset(&c, 0, sizeof(c));
    c.sensitive = c.local = c.never_extractable = c.always_sensitive = true;
    c.is_token = c.is_private = c.reported_extractable = true;
    assert_int_equal(tok_custody_ok(&c), 0);
    c.value_readable = true; /* a module that lies in its flags still gives itself away */
    assert_int_equal(tok_custody_ok(&c), PA_E_CUSTODY);
}

static void test_usage(void **state)
{
    struct tok_custody c = opensc_card_key();

    (void)state;
    assert_int_equal(tok_usage_ok(&c, TOK_USE_SIGN, false), 0);
    assert_int_equal(tok_usage_ok(&c, TOK_USE_SIGN | TOK_USE_DECRYPT, false), PA_E_CUSTODY);
    assert_non_null(strstr(tok_detail(), "CKA_DECRYPT"));
    c.decrypt = true;
    assert_int_equal(tok_usage_ok(&c, TOK_USE_SIGN | TOK_USE_DECRYPT, false), PA_E_CUSTODY);
    c.unwrap = true;
    assert_int_equal(tok_usage_ok(&c, TOK_USE_SIGN | TOK_USE_DECRYPT, false), 0);
    assert_int_equal(tok_usage_ok(&c, TOK_USE_SIGN | TOK_USE_DECRYPT, true), PA_E_CUSTODY);
    assert_non_null(strstr(tok_detail(), "CKA_DERIVE"));
    c.derive = true;
    assert_int_equal(tok_usage_ok(&c, TOK_USE_SIGN | TOK_USE_DECRYPT, true), 0);
    c.sign = false;
    assert_int_equal(tok_usage_ok(&c, TOK_USE_SIGN, true), PA_E_CUSTODY);
}

static void test_describe(void **state)
{
    struct tok_custody c = opensc_card_key();
    char out[400];

    (void)state;
    tok_custody_describe(&c, out, sizeof(out));
    assert_non_null(strstr(out, "value_readable=no extractable=no"));
    assert_non_null(strstr(out, "local=no"));
    c.reported_extractable = false;
    tok_custody_describe(&c, out, sizeof(out));
    assert_non_null(strstr(out, "extractable=unreported"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_on_card),
        cmocka_unit_test(test_generated_but_readable),
        cmocka_unit_test(test_generated_extractable_unreported),
        cmocka_unit_test(test_attribute_proof_and_readable),
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_describe),
    };

    return cmocka_run_group_tests_name("custody", tests, NULL, NULL);
}
