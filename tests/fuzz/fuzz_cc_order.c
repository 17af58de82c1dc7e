/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target: order info and order POST answer parsers (agent/ca/certcentral.c). Corpus:
 * tests/fuzz/corpus/cc_order/. */
#include "fuzz.h"

#include "certcentral.h"
#include "pa_err.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    struct cc_order_info oi;
    struct cc_order_result res;
    int r;

    r = cc_parse_order_info(body, size, &oi);
    FUZZ_CHECK(r == 0 || r == PA_E_CA_PROTOCOL || r == PA_E_NOMEM);
    if (r == 0) {
        FUZZ_CHECK(oi.id > 0 && oi.certificate_id >= 0);
        FUZZ_CHECK(memchr(oi.status, 0, sizeof(oi.status)) != NULL);
        FUZZ_CHECK(memchr(oi.reason, 0, sizeof(oi.reason)) != NULL);
        /* an issued order always has a certificate to download */
        FUZZ_CHECK(oi.st != CC_ST_ISSUED || oi.certificate_id > 0);
        if (strlen(oi.status) < sizeof(oi.status) - 1)
            FUZZ_CHECK(oi.st == cc_map_status(oi.status, NULL, 0));
        /* valid_till is "" or yyyy-mm-dd; a revoke request id is never negative */
        FUZZ_CHECK(
            oi.valid_till[0] == '\0' ||
            (strlen(oi.valid_till) == 10 && oi.valid_till[4] == '-' && oi.valid_till[7] == '-'));
        FUZZ_CHECK(oi.individual.id >= 0 && oi.revoke_request_id >= 0);
        FUZZ_CHECK(memchr(oi.revoke_request_status, 0, sizeof(oi.revoke_request_status)) != NULL);
    } else {
        /* failure leaves nothing to free */
        FUZZ_CHECK(oi.id == 0 && !oi.csr && !oi.serial_number && !oi.common_name &&
                   !oi.date_created && !oi.product);
        FUZZ_CHECK(!oi.individual.first_name && !oi.individual.last_name && !oi.individual.email);
        FUZZ_CHECK(oi.valid_till[0] == '\0' && oi.revoke_request_id == 0);
    }
    cc_order_info_clear(&oi);

    memset(&res, 0, sizeof(res));
    r = cc_parse_order_result(body, size, &res);
    FUZZ_CHECK(r == 0 || r == PA_E_CA_PROTOCOL || r == PA_E_NOMEM);
    if (r == 0) {
        FUZZ_CHECK(res.id > 0 && res.certificate_id >= 0);
        FUZZ_CHECK(memchr(res.request_status, 0, sizeof(res.request_status)) != NULL);
    }
    return 0;
}
