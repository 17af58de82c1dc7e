/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target: check of a downloaded PEM bundle (agent/ca/certcentral.c). Corpus:
 * tests/fuzz/corpus/cc_pem/. */
#include "fuzz.h"

#include "certcentral.h"
#include "pa_err.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char begin[] = "-----BEGIN CERTIFICATE-----";
    int r = cc_check_pem_certs((const char *)data, size);

    FUZZ_CHECK(r == 0 || r == PA_E_CA_PROTOCOL);
    if (r == 0) {
        /* accepted: no NUL byte, and at least one complete certificate block */
        FUZZ_CHECK(memchr(data, 0, size) == NULL);
        FUZZ_CHECK(size > sizeof(begin) && memmem(data, size, begin, sizeof(begin) - 1));
    }
    return 0;
}
