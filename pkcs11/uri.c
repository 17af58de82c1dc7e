/* SPDX-License-Identifier: Apache-2.0 */
/*
 * uri.c - RFC 7512 PKCS#11 URIs: parsing, matching and formatting. Pure code, no PKCS#11 calls,
 * so the unit tests and the fuzzer reach all of it.
 */
#include "tok.h"

#include "pa_err.h"
#include "secret.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define URI_MAX 4096
#define PIN_MAX 256

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/*
 * Percent-decode [s, s+len) into a new buffer (NUL-terminated, *ret_len bytes before it).
 * Embedded NULs are allowed in the result (CKA_ID is binary); callers that want text check.
 */
static int pct_decode(const char *s, size_t len, char **ret, size_t *ret_len)
{
    char *out = malloc(len + 1);
    size_t o = 0;

    if (!out)
        return PA_E_NOMEM;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            int hi, lo;

            if (i + 2 >= len) {
                free(out);
                return PA_E_USAGE;
            }
            hi = hexval((unsigned char)s[i + 1]);
            lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0) {
                free(out);
                return PA_E_USAGE;
            }
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    *ret = out;
    *ret_len = o;
    return 0;
}

/* A text attribute: decoded, no embedded NUL. */
static int set_text(char **field, const char *v, size_t len)
{
    char *d = NULL;
    size_t dlen;
    int r = pct_decode(v, len, &d, &dlen);

    if (r < 0)
        return r;
    if (strlen(d) != dlen || *field) { /* embedded NUL, or attribute given twice */
        free(d);
        return PA_E_USAGE;
    }
    *field = d;
    return 0;
}

static int set_attr(struct tok_uri *u, const char *name, size_t nlen, const char *v, size_t vlen,
                    bool allow_pin_value)
{
#define IS(lit) (nlen == sizeof(lit) - 1 && memcmp(name, lit, nlen) == 0)
    if (IS("token"))
        return set_text(&u->token, v, vlen);
    if (IS("manufacturer"))
        return set_text(&u->manufacturer, v, vlen);
    if (IS("model"))
        return set_text(&u->model, v, vlen);
    if (IS("serial"))
        return set_text(&u->serial, v, vlen);
    if (IS("object"))
        return set_text(&u->object, v, vlen);
    if (IS("type"))
        return set_text(&u->type, v, vlen);
    if (IS("pin-source")) {
        int r = set_text(&u->pin_source, v, vlen);

        if (r == 0 && strncmp(u->pin_source, "file:", 5) == 0)
            memmove(u->pin_source, u->pin_source + 5, strlen(u->pin_source + 5) + 1);
        if (r == 0 && u->pin_source[0] == '\0')
            r = PA_E_USAGE;
        return r;
    }
    if (IS("slot-id")) {
        char *t = NULL, *end = NULL;
        unsigned long long n;
        int r = set_text(&t, v, vlen);

        if (r < 0)
            return r;
        errno = 0;
        n = strtoull(t, &end, 10);
        r = (errno || !*t || *end || !isdigit((unsigned char)t[0]) || u->has_slot_id) ? PA_E_USAGE
                                                                                      : 0;
        free(t);
        if (r == 0) {
            u->slot_id = (unsigned long)n;
            u->has_slot_id = true;
        }
        return r;
    }
    if (IS("id")) {
        char *d = NULL;
        size_t dlen;
        int r = pct_decode(v, vlen, &d, &dlen);

        if (r < 0)
            return r;
        if (dlen == 0 || dlen > TOK_ID_MAX || u->id_len) {
            free(d);
            return PA_E_USAGE;
        }
        memcpy(u->id, d, dlen);
        u->id_len = dlen;
        free(d);
        return 0;
    }
    if (IS("pin-value")) {
        char *d = NULL;
        size_t dlen;
        int r;

        if (!allow_pin_value || u->pin_value)
            return PA_E_USAGE;
        r = pct_decode(v, vlen, &d, &dlen);
        if (r < 0)
            return r;
        r = (dlen == 0 || dlen > PIN_MAX || strlen(d) != dlen)
                ? PA_E_USAGE
                : secret_from_mem(d, dlen, &u->pin_value);
        secret_wipe(d, dlen);
        free(d);
        return r;
    }
    if (IS("module-path") || IS("module-name"))
        return PA_E_USAGE; /* the module comes from --module or the config file */
    return 0;              /* RFC 7512: unknown attributes are ignored */
#undef IS
}

/* Parse "a=b;c=d" (sep ';') or "a=b&c=d" (sep '&'). */
static int parse_list(struct tok_uri *u, const char *s, size_t len, char sep, bool allow_pin_value)
{
    size_t i = 0;

    while (i < len) {
        const char *item = s + i;
        const char *end = memchr(item, sep, len - i);
        size_t ilen = end ? (size_t)(end - item) : len - i;
        const char *eq = memchr(item, '=', ilen);
        int r;

        if (ilen == 0)
            return PA_E_USAGE;
        if (!eq || eq == item)
            return PA_E_USAGE;
        r = set_attr(u, item, (size_t)(eq - item), eq + 1, ilen - (size_t)(eq - item) - 1,
                     allow_pin_value);
        if (r < 0)
            return r;
        i += ilen + (end ? 1 : 0);
        if (end && i == len)
            return PA_E_USAGE; /* trailing separator */
    }
    return 0;
}

int tok_uri_parse(const char *s, bool allow_pin_value, struct tok_uri *ret)
{
    struct tok_uri u;
    const char *q;
    size_t len;
    int r;

    memset(&u, 0, sizeof(u));
    if (!s || strncasecmp(s, "pkcs11:", 7) != 0)
        return PA_E_USAGE;
    len = strlen(s);
    if (len > URI_MAX)
        return PA_E_USAGE;
    s += 7;
    len -= 7;
    q = memchr(s, '?', len);
    r = parse_list(&u, s, q ? (size_t)(q - s) : len, ';', allow_pin_value);
    if (r == 0 && q)
        r = parse_list(&u, q + 1, len - (size_t)(q - s) - 1, '&', allow_pin_value);
    if (r == 0 && u.pin_source && u.pin_value)
        r = PA_E_USAGE; /* one PIN source only */
    if (r < 0) {
        tok_uri_clear(&u);
        return r;
    }
    *ret = u;
    return 0;
}

void tok_uri_clear(struct tok_uri *u)
{
    if (!u)
        return;
    free(u->token);
    free(u->manufacturer);
    free(u->model);
    free(u->serial);
    free(u->object);
    free(u->type);
    free(u->pin_source);
    secret_free(u->pin_value);
    memset(u, 0, sizeof(*u));
}

bool tok_uri_matches(const struct tok_uri *u, const struct tok_info *info)
{
    if (u->token && strcmp(u->token, info->label) != 0)
        return false;
    if (u->manufacturer && strcmp(u->manufacturer, info->manufacturer) != 0)
        return false;
    if (u->model && strcmp(u->model, info->model) != 0)
        return false;
    if (u->serial && strcmp(u->serial, info->serial) != 0)
        return false;
    if (u->has_slot_id && u->slot_id != info->slot_id)
        return false;
    return true;
}

/* Append text to a bounded buffer, percent-encoding all but RFC 3986 unreserved chars. */
static void pct_append(char *buf, size_t cap, size_t *pos, const unsigned char *v, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";

    for (size_t i = 0; i < len && *pos + 4 < cap; i++) {
        unsigned char c = v[i];

        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            buf[(*pos)++] = (char)c;
        } else {
            buf[(*pos)++] = '%';
            buf[(*pos)++] = hex[c >> 4];
            buf[(*pos)++] = hex[c & 15];
        }
    }
    buf[*pos] = '\0';
}

static void lit_append(char *buf, size_t cap, size_t *pos, const char *lit)
{
    size_t n = strlen(lit);

    if (*pos + n < cap) {
        memcpy(buf + *pos, lit, n + 1);
        *pos += n;
    }
}

char *tok_uri_for_key(const struct tok_info *info, const unsigned char *id, size_t id_len,
                      const char *label)
{
    size_t cap = 64 + 3 * (sizeof(info->label) + sizeof(info->serial) + TOK_ID_MAX) +
                 (label ? 3 * strlen(label) : 0);
    char *buf = malloc(cap);
    size_t pos = 0;

    if (!buf)
        return NULL;
    buf[0] = '\0';
    lit_append(buf, cap, &pos, "pkcs11:token=");
    pct_append(buf, cap, &pos, (const unsigned char *)info->label, strlen(info->label));
    lit_append(buf, cap, &pos, ";serial=");
    pct_append(buf, cap, &pos, (const unsigned char *)info->serial, strlen(info->serial));
    if (id_len) {
        lit_append(buf, cap, &pos, ";id=");
        pct_append(buf, cap, &pos, id, id_len);
    }
    if (label && *label) {
        lit_append(buf, cap, &pos, ";object=");
        pct_append(buf, cap, &pos, (const unsigned char *)label, strlen(label));
    }
    lit_append(buf, cap, &pos, ";type=private");
    return buf;
}

static const struct {
    const char *name;
    enum tok_key_type type;
} key_types[] = {
    {"rsa:2048", TOK_KEY_RSA2048}, {"rsa:3072", TOK_KEY_RSA3072}, {"rsa:4096", TOK_KEY_RSA4096},
    {"ec:p256", TOK_KEY_EC_P256},  {"ec:p384", TOK_KEY_EC_P384},
};

int tok_key_type_parse(const char *s, enum tok_key_type *ret)
{
    for (size_t i = 0; i < sizeof(key_types) / sizeof(key_types[0]); i++) {
        if (strcasecmp(s, key_types[i].name) == 0) {
            *ret = key_types[i].type;
            return 0;
        }
    }
    return PA_E_USAGE;
}

const char *tok_key_type_name(enum tok_key_type t)
{
    for (size_t i = 0; i < sizeof(key_types) / sizeof(key_types[0]); i++)
        if (key_types[i].type == t)
            return key_types[i].name;
    return "?";
}
