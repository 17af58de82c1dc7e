/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target: order list parser (agent/ca/certcentral.c). Corpus:
 * tests/fuzz/corpus/cc_order_list/.
 */
#include "fuzz.h"

#include "certcentral.h"
#include "pa_err.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cc_order_info *list = NULL;
    size_t n = 0;
    long total = -1;
    int r = cc_parse_order_list((const char *)data, size, &list, &n, &total);

    FUZZ_CHECK(r == 0 || r == PA_E_CA_PROTOCOL || r == PA_E_NOMEM);
    if (r == 0) {
        FUZZ_CHECK((n > 0) == (list != NULL));
        FUZZ_CHECK(total >= 0);
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(list[i].id > 0 &&
                       (list[i].st != CC_ST_ISSUED || list[i].certificate_id > 0));
        cc_order_list_free(list, n);
    } else {
        FUZZ_CHECK(list == NULL);
    }
    return 0;
}
