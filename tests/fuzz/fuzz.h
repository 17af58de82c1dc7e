/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz.h - the libFuzzer entry point every target in tests/fuzz defines. The same target source
 * is linked with libFuzzer (PKIO_FUZZ=ON) and, in every build, with replay.c, which runs it over
 * a seed corpus as a ctest.
 */
#ifndef PKIO_FUZZ_H
#define PKIO_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Run one input. Returns 0 (or -1: input rejected from the corpus). Crashes or aborts on a bug. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort with a message when an invariant does not hold (a finding, in both builds). */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(__FILE__, __LINE__, #cond);                                                  \
    } while (0)

#include <stdio.h>
#include <stdlib.h>

__attribute__((noreturn, unused)) static inline void fuzz_fail(const char *file, int line,
                                                               const char *what)
{
    fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", file, line, what);
    abort();
}

#endif
