/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target: CertCentral error-array parser (agent/ca/certcentral.c). Corpus:
 * tests/fuzz/corpus/cc_errors/. */
#include "fuzz.h"

#include "certcentral.h"
#include "pa_err.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char msg[256];
    int r;

    memset(msg, 0x55, sizeof(msg));
    r = cc_parse_errors((const char *)data, size, msg, sizeof(msg));
    FUZZ_CHECK(r == 0 || r == PA_E_CA_PROTOCOL || r == PA_E_NOMEM);
    FUZZ_CHECK(memchr(msg, 0, sizeof(msg)) != NULL);
    /* one line, printable: it goes into user-facing messages */
    for (size_t i = 0; msg[i]; i++)
        FUZZ_CHECK((unsigned char)msg[i] >= 0x20 && msg[i] != 0x7f);
    FUZZ_CHECK(r != 0 || msg[0] != 0);
    FUZZ_CHECK(r == 0 || msg[0] == 0);
    /* the smallest buffer is still terminated */
    (void)cc_parse_errors((const char *)data, size, msg, 1);
    FUZZ_CHECK(msg[0] == 0);
    return 0;
}
