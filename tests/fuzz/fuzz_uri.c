/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz_uri.c - fuzz target for the PKCS#11 URI parser (pkcs11/uri.c).
 *
 * Each input is parsed as given and behind "pkcs11:", once with and once without
 * allow_pin_value. Besides "no crash, no leak, no undefined behaviour", FUZZ_CHECK holds:
 *  - allow_pin_value only widens what is accepted, and false never yields a pin_value;
 *  - a parsed URI keeps its limits (id length, PIN length, no empty pin-source, one PIN source);
 *  - a URI matches the token it describes (tok_uri_matches);
 *  - tok_uri_for_key output parses back to the same token, serial, id and object;
 *  - everything printed (tok_uri_for_key, tok_uri_for_token, tok_uri_format) is "pkcs11:" then
 *    only RFC 3986 unreserved characters, %XX with upper-case hex and the separators ; = ? &
 *    (the conservative RFC 7512 form), and never carries a pin-value;
 *  - round trip: tok_uri_format of any parsed URI parses back to the same attributes (all but
 *    pin-value), and formatting that again gives the same text.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "pa_err.h"
#include "secret.h"
#include "tok.h"

#define URI_MAX 4096 /* as in uri.c */
#define PIN_MAX 256  /* as in uri.c */

static bool eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Copy src into a token-info field when it fits; false if it does not. */
static bool fits(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);

    if (n >= cap)
        return false;
    memcpy(dst, src, n + 1);
    return true;
}

static void check_limits(const struct tok_uri *u)
{
    FUZZ_CHECK(u->id_len <= TOK_ID_MAX);
    FUZZ_CHECK(!u->pin_source || u->pin_source[0] != '\0');
    FUZZ_CHECK(!u->pin_source || !u->pin_value);
    if (u->pin_value) {
        FUZZ_CHECK(u->pin_value->len > 0 && u->pin_value->len <= PIN_MAX);
        FUZZ_CHECK(strlen(u->pin_value->buf) == u->pin_value->len);
    }
}

static bool same_uri(const struct tok_uri *a, const struct tok_uri *b)
{
    return eq(a->token, b->token) && eq(a->manufacturer, b->manufacturer) &&
           eq(a->model, b->model) && eq(a->serial, b->serial) && a->has_slot_id == b->has_slot_id &&
           a->slot_id == b->slot_id && a->id_len == b->id_len &&
           memcmp(a->id, b->id, a->id_len) == 0 && eq(a->object, b->object) &&
           eq(a->type, b->type) && eq(a->pin_source, b->pin_source);
}

static bool hexdigit(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/* "pkcs11:", then unreserved characters, %XX (upper-case hex) and the separators ; = ? & only. */
static void check_printed(const char *s)
{
    FUZZ_CHECK(strncmp(s, "pkcs11:", 7) == 0);
    for (const char *p = s + 7; *p; p++) {
        char c = *p;

        if (c == '%') {
            FUZZ_CHECK(hexdigit(p[1]) && hexdigit(p[2]));
            p += 2;
            continue;
        }
        FUZZ_CHECK((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   strchr("-._~;=?&", c) != NULL);
    }
    FUZZ_CHECK(strstr(s, "pin-value=") == NULL);
}

/* tok_uri_format(u) parses back to u (without its PIN) and formats to the same text again. */
static void check_format_round_trip(const struct tok_uri *u)
{
    struct tok_uri back;
    char *s = tok_uri_format(u), *again;

    if (!s)
        return; /* out of memory */
    check_printed(s);
    if (strlen(s) > URI_MAX) {
        free(s); /* longer than the parser takes: only with long values that all need escaping */
        return;
    }
    FUZZ_CHECK(tok_uri_parse(s, false, &back) == 0);
    FUZZ_CHECK(same_uri(u, &back));
    FUZZ_CHECK(back.pin_value == NULL);
    again = tok_uri_format(&back);
    FUZZ_CHECK(!again || strcmp(again, s) == 0);
    free(again);
    tok_uri_clear(&back);
    free(s);
}

/* tok_uri_for_token(info) parses back to exactly the token's label and serial. */
static void check_token_round_trip(const struct tok_info *info)
{
    struct tok_uri back;
    char *s = tok_uri_for_token(info);

    if (!s)
        return;
    check_printed(s);
    FUZZ_CHECK(tok_uri_parse(s, false, &back) == 0);
    FUZZ_CHECK(eq(back.token, info->label) && eq(back.serial, info->serial));
    FUZZ_CHECK(!back.manufacturer && !back.model && !back.object && !back.type && !back.id_len);
    FUZZ_CHECK(tok_uri_matches(&back, info));
    tok_uri_clear(&back);
    free(s);
}

/*
 * The token u describes (when its strings fit CK_TOKEN_INFO) must match u, and a key URI
 * formatted for that token must parse back to the same key.
 */
static void check_match_and_round_trip(const struct tok_uri *u)
{
    struct tok_info info;
    struct tok_uri back;
    char *s = NULL;

    memset(&info, 0, sizeof(info));
    if ((u->token && !fits(info.label, sizeof(info.label), u->token)) ||
        (u->manufacturer && !fits(info.manufacturer, sizeof(info.manufacturer), u->manufacturer)) ||
        (u->model && !fits(info.model, sizeof(info.model), u->model)) ||
        (u->serial && !fits(info.serial, sizeof(info.serial), u->serial)))
        return;
    info.slot_id = u->has_slot_id ? u->slot_id : 0;
    FUZZ_CHECK(tok_uri_matches(u, &info));

    check_token_round_trip(&info);
    s = tok_uri_for_key(&info, u->id, u->id_len, u->object);
    if (!s)
        return; /* out of memory */
    check_printed(s);
    if (strlen(s) > URI_MAX) {
        free(s); /* longer than the parser takes: only with object labels over ~1300 bytes */
        return;
    }
    FUZZ_CHECK(tok_uri_parse(s, false, &back) == 0);
    FUZZ_CHECK(eq(back.token, info.label));
    FUZZ_CHECK(eq(back.serial, info.serial));
    FUZZ_CHECK(back.id_len == u->id_len && memcmp(back.id, u->id, u->id_len) == 0);
    if (u->object && u->object[0])
        FUZZ_CHECK(eq(back.object, u->object));
    else
        FUZZ_CHECK(back.object == NULL);
    FUZZ_CHECK(eq(back.type, "private"));
    FUZZ_CHECK(tok_uri_matches(&back, &info));
    tok_uri_clear(&back);
    free(s);
}

static void one(const char *s)
{
    struct tok_uri strict, lax;
    int r_strict = tok_uri_parse(s, false, &strict);
    int r_lax = tok_uri_parse(s, true, &lax);

    FUZZ_CHECK(r_strict == 0 || r_strict == PA_E_USAGE || r_strict == PA_E_NOMEM);
    FUZZ_CHECK(r_lax == 0 || r_lax == PA_E_USAGE || r_lax == PA_E_NOMEM);
    if (r_strict == 0) {
        FUZZ_CHECK(strict.pin_value == NULL);
        FUZZ_CHECK(r_lax == 0 && same_uri(&strict, &lax));
        check_limits(&strict);
        check_match_and_round_trip(&strict);
        check_format_round_trip(&strict);
        tok_uri_clear(&strict);
    }
    if (r_lax == 0) {
        check_limits(&lax);
        check_match_and_round_trip(&lax);
        check_format_round_trip(&lax);
        tok_uri_clear(&lax);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s;

    if (size > 2 * URI_MAX)
        return 0;
    s = malloc(size + 8);
    if (!s)
        return 0;
    /* As given (so the scheme check is fuzzed too), then behind "pkcs11:". */
    memcpy(s, data, size);
    s[size] = '\0';
    one(s);
    memcpy(s, "pkcs11:", 7);
    memcpy(s + 7, data, size);
    s[size + 7] = '\0';
    one(s);
    free(s);
    return 0;
}
