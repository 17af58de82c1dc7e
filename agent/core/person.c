/* SPDX-License-Identifier: Apache-2.0 */
#include "person.h"

#include "i18n.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Decode one UTF-8 sequence at s; 0 on an invalid one (then the byte is taken as it is). */
static size_t utf8_decode(const unsigned char *s, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if ((s[0] & 0xe0) == 0xc0 && (s[1] & 0xc0) == 0x80 && s[0] >= 0xc2) {
        *cp = ((uint32_t)(s[0] & 0x1f) << 6) | (s[1] & 0x3f);
        return 2;
    }
    if ((s[0] & 0xf0) == 0xe0 && (s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80) {
        *cp = ((uint32_t)(s[0] & 0x0f) << 12) | ((uint32_t)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
        return *cp >= 0x800 ? 3 : 0;
    }
    return 0;
}

static size_t utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    out[0] = (char)(0xe0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
}

/* Lower case for Latin Extended-A (U+0100..U+017F): pairs, with the odd runs and Ÿ. */
static uint32_t fold_ext_a(uint32_t c)
{
    bool even_pairs = (c <= 0x137) || (c >= 0x14a && c <= 0x177);
    bool odd_pairs = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e);

    if ((even_pairs && c % 2 == 0) || (odd_pairs && c % 2 == 1))
        return c + 1;
    return c == 0x178 ? 0xff : c;
}

/* Lower case for ASCII, Latin-1 Supplement and Latin Extended-A; others unchanged. */
static uint32_t fold(uint32_t c)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 0xc0 && c <= 0xde && c != 0xd7))
        return c + 32;
    if (c >= 0x100 && c <= 0x17f)
        return fold_ext_a(c);
    return c;
}

static bool is_space(uint32_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == 0xa0;
}

int person_normalise(const char *in, char *out, size_t outlen)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0;
    bool pending_space = false;

    if (outlen == 0)
        return -1;
    while (*s) {
        uint32_t cp;
        char enc[4];
        size_t n = utf8_decode(s, &cp), m;

        if (n == 0) {
            cp = *s; /* not UTF-8: keep the byte */
            n = 1;
            enc[0] = (char)*s;
            m = 1;
        } else if (is_space(cp)) {
            pending_space = o > 0;
            s += n;
            continue;
        } else {
            m = utf8_encode(fold(cp), enc);
        }
        if (o + (pending_space ? 1 : 0) + m >= outlen)
            return -1;
        if (pending_space)
            out[o++] = ' ';
        pending_space = false;
        memcpy(out + o, enc, m);
        o += m;
        s += n;
    }
    out[o] = '\0';
    return 0;
}

static bool same_text(const char *a, const char *b)
{
    char na[512], nb[512];

    if (!a || !b || person_normalise(a, na, sizeof(na)) < 0 ||
        person_normalise(b, nb, sizeof(nb)) < 0)
        return false;
    return na[0] != '\0' && strcmp(na, nb) == 0;
}

static bool has_names(const struct person *p)
{
    return p->first_name && p->last_name && p->email;
}

enum person_match person_compare(const struct person *a, const struct person *b)
{
    if (a->id > 0 && b->id > 0)
        return a->id == b->id ? PERSON_SAME : PERSON_DIFFERENT;
    if (!has_names(a) || !has_names(b))
        return PERSON_UNKNOWN;
    if (same_text(a->first_name, b->first_name) && same_text(a->last_name, b->last_name) &&
        same_text(a->email, b->email))
        return PERSON_SAME;
    return PERSON_DIFFERENT;
}

/* Printable copy: control characters (C0, DEL) shown as '?'. */
static void printable(const char *in, char *out, size_t outlen)
{
    size_t o = 0;

    for (; in && *in && o + 1 < outlen; in++)
        out[o++] = ((unsigned char)*in < 0x20 || *in == 0x7f) ? '?' : *in;
    out[o] = '\0';
}

void person_describe(const struct person *p, char *out, size_t outlen)
{
    char f[128] = "", l[128] = "", m[160] = "";

    printable(p->first_name, f, sizeof(f));
    printable(p->last_name, l, sizeof(l));
    printable(p->email, m, sizeof(m));
    if (p->first_name || p->last_name)
        snprintf(out, outlen, "%s%s%s%s%s%s", f, f[0] && l[0] ? " " : "", l, m[0] ? " <" : "", m,
                 m[0] ? ">" : "");
    else if (p->id > 0)
        snprintf(out, outlen, _("individual %ld"), p->id);
    else
        snprintf(out, outlen, "%s", _("an unknown person"));
}

const char *person_product_family(const char *product)
{
    static const char *const auth_enc[] = {"pkio_organisation_person",
                                           "pkio_organisation_person_prof",
                                           "pkio_private_person_prof", "pkio_burger"};
    static const char *const signing[] = {"pkio_qualified_burger",
                                          "pkio_qualified_organisation_person_prof"};

    if (!product)
        return "";
    for (size_t i = 0; i < sizeof(auth_enc) / sizeof(auth_enc[0]); i++)
        if (strcmp(product, auth_enc[i]) == 0)
            return "pkio-person-authentication-encryption";
    for (size_t i = 0; i < sizeof(signing) / sizeof(signing[0]); i++)
        if (strcmp(product, signing[i]) == 0)
            return "pkio-person-signing";
    return product;
}
