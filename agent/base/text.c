/* SPDX-License-Identifier: Apache-2.0 */
/*
 * text.c - text made safe to print: what an officer, a CA answer or a token sent is shown on a
 * terminal, in the journal or in a record only through text_clean.
 */
#include "text.h"

#include <stdbool.h>
#include <string.h>

/* The length of the UTF-8 sequence a lead byte starts (0: not a lead byte) and its bits. */
static size_t utf8_lead(unsigned char b, unsigned long *ret_bits)
{
    if (b >= 0xc2 && b <= 0xdf) {
        *ret_bits = b & 0x1fu;
        return 2;
    }
    if (b >= 0xe0 && b <= 0xef) {
        *ret_bits = b & 0x0fu;
        return 3;
    }
    if (b >= 0xf0 && b <= 0xf4) {
        *ret_bits = b & 0x07u;
        return 4;
    }
    return 0; /* a continuation byte, 0xc0/0xc1 (overlong) or 0xf5.. */
}

/* The UTF-8 sequence at s (n bytes there): its length and code point; 0 when it is invalid. */
static size_t utf8_decode(const unsigned char *s, size_t n, unsigned long *ret_cp)
{
    unsigned long c = s[0];
    size_t len = s[0] < 0x80 ? 1 : utf8_lead(s[0], &c);

    if (len == 0 || n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3fu);
    }
    if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10ffff)) ||
        (c >= 0xd800 && c <= 0xdfff))
        return 0; /* overlong, beyond Unicode, or a surrogate */
    *ret_cp = c;
    return len;
}

/* Characters that do something on a terminal, or reorder what is shown around them. */
static bool cp_unsafe(unsigned long c)
{
    return c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x2028 || c == 0x2029 || c == 0x061c ||
           c == 0x200e || c == 0x200f || (c >= 0x202a && c <= 0x202e) ||
           (c >= 0x2066 && c <= 0x2069);
}

void text_clean(const char *in, char *out, size_t outlen)
{
    size_t n = in ? strlen(in) : 0, o = 0;

    if (!outlen)
        return;
    for (size_t i = 0; i < n;) {
        unsigned long cp = 0;
        size_t k = utf8_decode((const unsigned char *)in + i, n - i, &cp), put = k;
        const char *src = in + i;

        if (k == 0 || cp_unsafe(cp)) {
            src = "?";
            put = 1;
            k = k ? k : 1;
        }
        if (o + put >= outlen)
            break;
        memcpy(out + o, src, put);
        o += put;
        i += k;
    }
    out[o] = '\0';
}
