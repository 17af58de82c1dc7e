/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz_subject.c - fuzz target for the CSR subject (agent/csr.c): csr_subject_parse on the whole
 * input, csr_subject_person on the input split at '\n' (first, last, country), and csr_build
 * with one EC key on every subject that was accepted.
 *
 * FUZZ_CHECK holds: an accepted subject has a CN and only 1-64 byte parts of valid UTF-8
 * without control characters, and a two-letter country; an error always comes with a message;
 * csr_subject_person makes CN = "first last" with an upper-case country; an accepted subject
 * always encodes into a CSR that verifies (csr_build never meets a subject it cannot encode).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "csr.h"
#include "fuzz.h"
#include "pa_err.h"

static EVP_PKEY *key; /* made on first use, kept for the life of the process */

static bool part_ok(const char *s)
{
    size_t n;

    if (!s)
        return true;
    n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static bool country_ok(const char *c, bool upper)
{
    if (!c)
        return true;
    if (strlen(c) != 2)
        return false;
    for (int i = 0; i < 2; i++) {
        bool up = c[i] >= 'A' && c[i] <= 'Z', low = c[i] >= 'a' && c[i] <= 'z';

        if (!(up || (low && !upper)))
            return false;
    }
    return true;
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool utf8_ok(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;

    if (!s)
        return true;
    while (*s) {
        unsigned c = *s, n, cp;

        if (c < 0x80) {
            s++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        for (unsigned i = 1; i <= n; i++) {
            if ((s[i] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        s += n + 1;
    }
    return true;
}

static void check_subject(const struct csr_subject *s, bool upper_country)
{
    FUZZ_CHECK(s->cn != NULL);
    FUZZ_CHECK(part_ok(s->cn) && part_ok(s->given_name) && part_ok(s->surname));
    FUZZ_CHECK(utf8_ok(s->cn) && utf8_ok(s->given_name) && utf8_ok(s->surname));
    FUZZ_CHECK(country_ok(s->country, upper_country));
}

/* An accepted subject always encodes into a CSR that verifies. */
static void check_build(const struct csr_subject *s)
{
    char *pem = NULL, err[256] = "";
    int r;

    if (!key)
        key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    FUZZ_CHECK(key != NULL);
    r = csr_build(key, key, s, false, &pem, err, sizeof(err));
    if (r != 0)
        fprintf(stderr, "csr_build: %d %s\n", r, err);
    FUZZ_CHECK(r == 0 && pem != NULL);
    FUZZ_CHECK(csr_check_pem(pem, key, NULL, 0) == 0);
    FUZZ_CHECK(ERR_peek_error() == 0); /* no OpenSSL errors left behind */
    free(pem);
}

static void fuzz_parse(const char *dn)
{
    struct csr_subject s;
    char err[256] = "";
    int r = csr_subject_parse(dn, &s, err, sizeof(err));

    if (r != 0) {
        FUZZ_CHECK(r == PA_E_USAGE && err[0] != '\0');
        return;
    }
    check_subject(&s, false);
    check_build(&s);
    csr_subject_clear(&s);
}

static void fuzz_person(char *text)
{
    char *first = text, *last = NULL, *country = NULL, *nl, *cn;
    struct csr_subject s;
    char err[256] = "";
    size_t n;
    int r;

    nl = strchr(first, '\n');
    if (nl) {
        *nl = '\0';
        last = nl + 1;
        nl = strchr(last, '\n');
        if (nl) {
            *nl = '\0';
            country = nl + 1;
        }
    }
    r = csr_subject_person(first, last, country, &s, err, sizeof(err));
    if (r != 0) {
        FUZZ_CHECK(r == PA_E_REQUEST && err[0] != '\0');
        return;
    }
    check_subject(&s, true);
    n = strlen(first) + strlen(last) + 2;
    cn = malloc(n);
    if (cn) {
        (void)snprintf(cn, n, "%s %s", first, last);
        FUZZ_CHECK(strcmp(s.cn, cn) == 0);
        free(cn);
    }
    FUZZ_CHECK(strcmp(s.given_name, first) == 0 && strcmp(s.surname, last) == 0);
    FUZZ_CHECK((country && *country) ? s.country != NULL : s.country == NULL);
    check_build(&s);
    csr_subject_clear(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s;

    if (size > 2048)
        return 0;
    s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    fuzz_parse(s);
    fuzz_person(s); /* splits s in place: last */
    free(s);
    return 0;
}
