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

static bool is_name(const char *name, size_t nlen, const char *lit)
{
    return nlen == strlen(lit) && memcmp(name, lit, nlen) == 0;
}

/* The field of a text attribute (token, manufacturer, model, serial, object, type), or NULL. */
static char **text_field(struct tok_uri *u, const char *name, size_t nlen)
{
    static const char *const names[] = {"token",  "manufacturer", "model",
                                        "serial", "object",       "type"};
    char **fields[] = {&u->token, &u->manufacturer, &u->model, &u->serial, &u->object, &u->type};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (is_name(name, nlen, names[i]))
            return fields[i];
    return NULL;
}

static int set_pin_source(struct tok_uri *u, const char *v, size_t vlen)
{
    int r = set_text(&u->pin_source, v, vlen);

    if (r == 0 && strncmp(u->pin_source, "file:", 5) == 0)
        memmove(u->pin_source, u->pin_source + 5, strlen(u->pin_source + 5) + 1);
    if (r == 0 && u->pin_source[0] == '\0')
        r = PA_E_USAGE;
    return r;
}

static int set_slot_id(struct tok_uri *u, const char *v, size_t vlen)
{
    char *t = NULL, *end = NULL;
    unsigned long long n;
    int r = set_text(&t, v, vlen);

    if (r < 0)
        return r;
    errno = 0;
    n = strtoull(t, &end, 10);
    r = (errno || !*t || *end || !isdigit((unsigned char)t[0]) || u->has_slot_id) ? PA_E_USAGE : 0;
    free(t);
    if (r == 0) {
        u->slot_id = (unsigned long)n;
        u->has_slot_id = true;
    }
    return r;
}

static int set_id(struct tok_uri *u, const char *v, size_t vlen)
{
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

static int set_pin_value(struct tok_uri *u, const char *v, size_t vlen, bool allow_pin_value)
{
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

static int set_attr(struct tok_uri *u, const char *name, size_t nlen, const char *v, size_t vlen,
                    bool allow_pin_value)
{
    char **field = text_field(u, name, nlen);

    if (field)
        return set_text(field, v, vlen);
    if (is_name(name, nlen, "pin-source"))
        return set_pin_source(u, v, vlen);
    if (is_name(name, nlen, "slot-id"))
        return set_slot_id(u, v, vlen);
    if (is_name(name, nlen, "id"))
        return set_id(u, v, vlen);
    if (is_name(name, nlen, "pin-value"))
        return set_pin_value(u, v, vlen, allow_pin_value);
    if (is_name(name, nlen, "module-path") || is_name(name, nlen, "module-name"))
        return PA_E_USAGE; /* the module comes from --module or the config file */
    return 0;              /* RFC 7512: unknown attributes are ignored */
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

/*
 * Formatting. RFC 7512 section 2.3 lets a path value carry p11-pchar (unreserved, pct-encoded and
 * ":[]@!$'()*+,=") and a query value p11-qchar (unreserved, pct-encoded and "[]/?|!$'()*+,:=@")
 * literally. Tools differ in what they leave literal (p11-kit, and so GnuTLS's p11tool, encode
 * '(' and ')'), so we print the conservative form every parser accepts: every byte outside RFC
 * 3986 unreserved (ALPHA DIGIT - . _ ~) is percent-encoded, with upper-case hex, in path and
 * query alike; the id is encoded byte by byte in full. What we print parses back
 * (tok_uri_parse) to the same values.
 */

/* A growing string; on allocation failure it is freed and stays NULL. */
struct ubuf {
    char *p;
    size_t len, cap;
};

static bool ub_reserve(struct ubuf *b, size_t more)
{
    char *n;
    size_t cap;

    if (!b->p)
        return false;
    if (b->len + more < b->cap)
        return true;
    cap = 2 * (b->len + more) + 64;
    n = realloc(b->p, cap);
    if (!n) {
        free(b->p);
        b->p = NULL;
        return false;
    }
    b->p = n;
    b->cap = cap;
    return true;
}

static void ub_lit(struct ubuf *b, const char *lit)
{
    size_t n = strlen(lit);

    if (!ub_reserve(b, n))
        return;
    memcpy(b->p + b->len, lit, n + 1);
    b->len += n;
}

/* RFC 3986 unreserved, in ASCII whatever the locale says. */
static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* Append v[0..len), percent-encoding every byte (all) or every byte but unreserved ones. */
static void ub_pct(struct ubuf *b, const unsigned char *v, size_t len, bool all)
{
    static const char hex[] = "0123456789ABCDEF";

    if (!ub_reserve(b, 3 * len))
        return;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = v[i];

        if (!all && unreserved(c)) {
            b->p[b->len++] = (char)c;
        } else {
            b->p[b->len++] = '%';
            b->p[b->len++] = hex[c >> 4];
            b->p[b->len++] = hex[c & 15];
        }
    }
    b->p[b->len] = '\0';
}

/* ";name=value" (or "name=value" first in the path / after '?'); value NULL: nothing. */
static void ub_attr(struct ubuf *b, bool *first, const char *name, const char *value)
{
    if (!value)
        return;
    ub_lit(b, *first ? "" : ";");
    ub_lit(b, name);
    ub_lit(b, "=");
    ub_pct(b, (const unsigned char *)value, strlen(value), false);
    *first = false;
}

/* What a printed URI says; the strings are the caller's. */
struct uri_parts {
    const char *token, *manufacturer, *model, *serial;
    bool has_slot_id;
    unsigned long slot_id;
    const unsigned char *id;
    size_t id_len; /* 0: no id attribute */
    const char *object, *type;
    const char *pin_source; /* a path, as tok_uri_parse leaves it; printed in the query */
};

static char *format_parts(const struct uri_parts *p)
{
    struct ubuf b = {malloc(256), 0, 256};
    bool first = true;
    char num[24];

    if (!b.p)
        return NULL;
    b.p[0] = '\0';
    ub_lit(&b, "pkcs11:");
    ub_attr(&b, &first, "token", p->token);
    ub_attr(&b, &first, "manufacturer", p->manufacturer);
    ub_attr(&b, &first, "model", p->model);
    ub_attr(&b, &first, "serial", p->serial);
    if (p->has_slot_id) {
        (void)snprintf(num, sizeof(num), "%lu", p->slot_id);
        ub_attr(&b, &first, "slot-id", num);
    }
    if (p->id_len) {
        ub_lit(&b, first ? "id=" : ";id=");
        ub_pct(&b, p->id, p->id_len, true);
        first = false;
    }
    ub_attr(&b, &first, "object", p->object);
    ub_attr(&b, &first, "type", p->type);
    if (p->pin_source) {
        /* The parser strips one leading "file:": a path that starts with one gets another. */
        ub_lit(&b,
               strncmp(p->pin_source, "file:", 5) == 0 ? "?pin-source=file%3A" : "?pin-source=");
        ub_pct(&b, (const unsigned char *)p->pin_source, strlen(p->pin_source), false);
    }
    return b.p;
}

char *tok_uri_format(const struct tok_uri *u)
{
    struct uri_parts p = {
        .token = u->token,
        .manufacturer = u->manufacturer,
        .model = u->model,
        .serial = u->serial,
        .has_slot_id = u->has_slot_id,
        .slot_id = u->slot_id,
        .id = u->id,
        .id_len = u->id_len,
        .object = u->object,
        .type = u->type,
        .pin_source = u->pin_source,
    };

    return format_parts(&p); /* pin_value is never printed */
}

char *tok_uri_for_token(const struct tok_info *info)
{
    struct uri_parts p = {.token = info->label, .serial = info->serial};

    return format_parts(&p);
}

char *tok_uri_for_key(const struct tok_info *info, const unsigned char *id, size_t id_len,
                      const char *label)
{
    struct uri_parts p = {
        .token = info->label,
        .serial = info->serial,
        .id = id,
        .id_len = id ? id_len : 0,
        .object = label && *label ? label : NULL,
        .type = "private",
    };

    return format_parts(&p);
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
