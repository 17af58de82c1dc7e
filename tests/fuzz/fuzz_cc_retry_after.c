/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target: Retry-After parser (agent/certcentral.c). Corpus: tests/fuzz/corpus/cc_retry_after/.
 */
#include "fuzz.h"

#include "certcentral.h"
#include "pa_err.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char buf[256];
    double v;

    if (size >= sizeof(buf))
        return -1;
    memcpy(buf, data, size);
    buf[size] = 0; /* header values reach the parser as C strings */
    v = cc_parse_retry_after(buf, 60, 784111777);
    FUZZ_CHECK(v == -1 || (v >= 0 && v <= 60));
    v = cc_parse_retry_after(buf, 0, 0);
    FUZZ_CHECK(v == -1 || v == 0);
    return 0;
}
