/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz_config.c - cfg_load_mem, and order_defaults merged into a request.
 *
 * Invariants beyond "no crash, no leak": only PA_E_CONFIG on bad input; the message is
 * NUL-terminated; an accepted configuration satisfies every documented constraint; its
 * order_defaults merge into a request and the result serialises.
 */
#include "fuzz.h"

#include <math.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "pa_err.h"
#include "request.h"

static void check_cfg(const struct cfg *cfg)
{
    struct req *req = NULL;
    char err[256], *json;

    FUZZ_CHECK(cfg->api_url && strncasecmp(cfg->api_url, "https://", 8) == 0);
    FUZZ_CHECK(req_product_supported(cfg->api_product));
    FUZZ_CHECK(cfg->api_csr_field && cfg->api_csr_field[0]);
    FUZZ_CHECK(cfg->api_provisioning_field && cfg->api_provisioning_field[0]);
    FUZZ_CHECK(strcmp(cfg->api_csr_field, cfg->api_provisioning_field) != 0);
    FUZZ_CHECK(cfg->token_module && cfg->state_dir);
    FUZZ_CHECK(isfinite(cfg->api_timeout_s) && cfg->api_timeout_s > 0);
    FUZZ_CHECK(cfg->api_connect_timeout_s > 0 && cfg->api_connect_timeout_s <= cfg->api_timeout_s);
    FUZZ_CHECK(cfg->poll_initial_s > 0 && cfg->poll_initial_s <= cfg->poll_max_s);
    FUZZ_CHECK(isfinite(cfg->poll_max_s) && isfinite(cfg->poll_timeout_s) &&
               cfg->poll_timeout_s > 0);
    FUZZ_CHECK(!cfg->token_uri || strncasecmp(cfg->token_uri, "pkcs11:", 7) == 0);

    FUZZ_CHECK(req_load_mem("{\"comments\":\"x\"}", 16, &req, err, sizeof(err)) == 0);
    FUZZ_CHECK(req_merge_defaults(req, cfg) == 0);
    FUZZ_CHECK(req_set_csr(req, cfg, "csr") == 0 || cfg->order_defaults);
    (void)req_validate(req, cfg, true, NULL);
    json = req_to_json(req);
    FUZZ_CHECK(json != NULL);
    free(json);
    req_free(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfg *cfg = NULL;
    char err[256];
    int r;

    err[0] = '\0';
    r = cfg_load_mem((const char *)data, size, "fuzz", &cfg, err, sizeof(err));
    FUZZ_CHECK(r == 0 || r == PA_E_CONFIG);
    FUZZ_CHECK(strnlen(err, sizeof(err)) < sizeof(err));
    if (r != 0) {
        FUZZ_CHECK(cfg == NULL && err[0]);
        return 0;
    }
    check_cfg(cfg);
    cfg_free(cfg);
    return 0;
}
