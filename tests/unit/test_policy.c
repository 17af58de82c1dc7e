/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_policy.c - the token policy: software tokens (SoftHSM2, tpm2-pkcs11 on swtpm,
 * opencryptoki's soft token) refused unless token.allow_software; token.allowed matching by
 * manufacturer, model and module; the reason in the refusal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "pa_err.h"
#include "policy.h"

static struct tok_info tok(const char *manufacturer, const char *model)
{
    struct tok_info t;

    memset(&t, 0, sizeof(t));
    snprintf(t.manufacturer, sizeof(t.manufacturer), "%s", manufacturer);
    snprintf(t.model, sizeof(t.model), "%s", model);
    return t;
}

static struct cfg *load(const char *json)
{
    struct cfg *c = NULL;
    char err[256] = "";

    assert_int_equal(cfg_load_mem(json, strlen(json), "t", &c, err, sizeof(err)), 0);
    return c;
}

static void test_software_tokens(void **state)
{
    struct tok_info softhsm = tok("SoftHSM project", "SoftHSM v2");
    struct tok_info swtpm = tok("IBM", "SW   TPM");
    struct tok_info ock = tok("IBM", "Soft");
    struct tok_info ock38 = tok("IBM Corp.", "IBM SoftTok");
    struct tok_info card = tok("OpenSC Project", "PKCS#15 emulated");
    struct tok_info ibm_hw = tok("IBM", "CCA");

    (void)state;
    assert_non_null(strstr(policy_software_token(&softhsm), "SoftHSM2"));
    assert_non_null(strstr(policy_software_token(&swtpm), "swtpm"));
    assert_non_null(strstr(policy_software_token(&ock), "opencryptoki"));
    assert_non_null(strstr(policy_software_token(&ock38), "opencryptoki"));
    assert_null(policy_software_token(&card));
    assert_null(policy_software_token(&ibm_hw));
}

static void test_refused_without_setting(void **state)
{
    struct cfg *c = load("{}");
    struct tok_info softhsm = tok("SoftHSM project", "SoftHSM v2");
    struct tok_info card = tok("OpenSC Project", "PKCS#15 emulated");
    char why[400] = "";

    (void)state;
    assert_int_equal(policy_check_token(c, "/m.so", &softhsm, why, sizeof(why)), PA_E_REFUSED);
    assert_non_null(strstr(why, "SoftHSM2 is a software token"));
    assert_non_null(strstr(why, "token.allow_software"));
    assert_int_equal(policy_check_token(c, "/m.so", &card, why, sizeof(why)), 0);
    cfg_free(c);
    c = load("{\"token\": {\"allow_software\": true}}");
    assert_int_equal(policy_check_token(c, "/m.so", &softhsm, why, sizeof(why)), 0);
    cfg_free(c);
}

static void test_allowed_list(void **state)
{
    struct cfg *c = load("{\"token\": {\"allowed\": [{\"manufacturer\": \"OpenSC Project\", "
                         "\"model\": \"PKCS#15 emulated\", \"module\": \"/lib/opensc.so\"}, "
                         "{\"model\": \"SafeNet eToken\"}]}}");
    struct tok_info card = tok("OpenSC Project", "PKCS#15 emulated");
    struct tok_info etoken = tok("SafeNet, Inc.", "SafeNet eToken");
    struct tok_info other = tok("Yubico", "YubiKey PIV");
    char why[400] = "";

    (void)state;
    assert_int_equal(policy_check_token(c, "/lib/opensc.so", &card, why, sizeof(why)), 0);
    assert_int_equal(policy_check_token(c, "/lib/other.so", &card, why, sizeof(why)), PA_E_REFUSED);
    assert_non_null(strstr(why, "not in token.allowed"));
    assert_int_equal(policy_check_token(c, "/any.so", &etoken, why, sizeof(why)), 0);
    assert_int_equal(policy_check_token(c, "/any.so", &other, why, sizeof(why)), PA_E_REFUSED);
    assert_non_null(strstr(why, "YubiKey PIV"));
    cfg_free(c);
}

static void test_config_errors(void **state)
{
    static const char *const bad[] = {
        "{\"token\": {\"allow_software\": 1}}",
        "{\"token\": {\"allowed\": []}}",
        "{\"token\": {\"allowed\": {}}}",
        "{\"token\": {\"allowed\": [\"x\"]}}",
        "{\"token\": {\"allowed\": [{\"module\": \"/m.so\"}]}}",
        "{\"token\": {\"allowed\": [{\"model\": \"\"}]}}",
        "{\"token\": {\"allowed\": [{\"model\": \"a model name longer than 16\"}]}}",
        "{\"token\": {\"allowed\": [{\"model\": \"x\", \"serial\": \"1\"}]}}",
        "{\"token\": {\"allowed\": [{\"model\": \"x\\ny\"}]}}",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cfg *c = NULL;
        char err[256] = "";

        assert_int_equal(cfg_load_mem(bad[i], strlen(bad[i]), "t", &c, err, sizeof(err)),
                         PA_E_CONFIG);
        assert_non_null(strstr(err, "token.allow"));
        assert_null(c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_software_tokens),
        cmocka_unit_test(test_refused_without_setting),
        cmocka_unit_test(test_allowed_list),
        cmocka_unit_test(test_config_errors),
    };

    return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
