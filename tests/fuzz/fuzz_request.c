/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz_request.c - req_load_mem + req_check_types + req_validate (and merge, CSR placement,
 * output) under several product configurations.
 *
 * Invariants checked beyond "no crash, no leak": load fails only with PA_E_REQUEST; messages
 * are NUL-terminated and printable; validation returns 0 exactly when it reports no error; a
 * structure error implies a validation error; the JSON output loads again and validates to the
 * same error list; the card number and CVV of the input never appear in an error.
 */
#include "fuzz.h"

#include <stdbool.h>
#include <string.h>

#include <json-c/json.h>

#include "config.h"
#include "pa_err.h"
#include "request.h"

static const char *const cfg_texts[] = {
    "{}",
    "{\"api\":{\"product\":\"pkio_qualified_organisation_person_prof\"}}",
    "{\"api\":{\"product\":\"pkio_burger\",\"csr_field\":\"csr\","
    "\"provisioning_field\":\"certificate.provisioning_method\"}}",
    "{\"api\":{\"product\":\"pkio_organisation_person\",\"csr_field\":\"certificate.key.csr\"},"
    "\"order_defaults\":{\"payment_method\":\"balance\",\"csa_agreed_to\":true,"
    "\"certificate\":{\"signature_hash\":\"sha256\",\"individual\":{\"country\":\"NL\"}},"
    "\"ship_info\":{\"method\":\"STANDARD\"}}}",
};

#define NCFG (sizeof(cfg_texts) / sizeof(cfg_texts[0]))

static struct cfg *cfgs[NCFG];

static void init(void)
{
    static bool done;
    char err[256];

    if (done)
        return;
    for (size_t i = 0; i < NCFG; i++)
        FUZZ_CHECK(cfg_load_mem(cfg_texts[i], strlen(cfg_texts[i]), "fuzz", &cfgs[i], err,
                                sizeof(err)) == 0);
    done = true;
}

static bool printable(const char *s, size_t max)
{
    size_t n = strnlen(s, max);

    if (n == max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

/*
 * The card number and CVV of the input (independent parse). Only values of 5+ digits are
 * checked: shorter ones, or text, may legitimately occur in the fixed messages ("1 to 1095").
 */
struct card {
    char number[64];
    char cvv[16];
};

static void copy_digits(json_object *v, char *out, size_t outlen)
{
    const char *s = json_object_get_string(v);
    size_t n = strlen(s);

    if (!json_object_is_type(v, json_type_string) || n < 5 || n >= outlen ||
        n != (size_t)json_object_get_string_len(v) || strspn(s, "0123456789") != n)
        return;
    memcpy(out, s, n + 1);
}

static void find_card(const uint8_t *data, size_t size, struct card *c)
{
    json_tokener *tok = json_tokener_new();
    json_object *root = NULL, *cc, *v;

    memset(c, 0, sizeof(*c));
    if (!tok)
        return;
    root = json_tokener_parse_ex(tok, (const char *)data, (int)size);
    if (json_object_object_get_ex(root, "credit_card", &cc)) {
        if (json_object_object_get_ex(cc, "number", &v))
            copy_digits(v, c->number, sizeof(c->number));
        if (json_object_object_get_ex(cc, "cvv", &v))
            copy_digits(v, c->cvv, sizeof(c->cvv));
    }
    json_object_put(root);
    json_tokener_free(tok);
}

static void check_errors(int r, const struct req_errors *errs, const struct card *c)
{
    FUZZ_CHECK(r == 0 || r == PA_E_REQUEST);
    FUZZ_CHECK((r == 0) == (errs->n == 0));
    FUZZ_CHECK(errs->n <= REQ_MAX_ERRORS);
    for (size_t i = 0; i < errs->n; i++) {
        const struct req_error *e = &errs->v[i];

        FUZZ_CHECK(printable(e->path, sizeof(e->path)));
        FUZZ_CHECK(printable(e->msg, sizeof(e->msg)) && e->msg[0]);
        if (c->number[0])
            FUZZ_CHECK(!strstr(e->msg, c->number));
        if (c->cvv[0])
            FUZZ_CHECK(!strstr(e->msg, c->cvv));
        if (strncmp(e->path, "credit_card", 11) == 0) {
            if (c->number[0])
                FUZZ_CHECK(!strstr(e->path, c->number));
            if (c->cvv[0])
                FUZZ_CHECK(!strstr(e->path + 11, c->cvv));
        }
    }
}

static bool same_errors(const struct req_errors *a, const struct req_errors *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i].path, b->v[i].path) != 0 || strcmp(a->v[i].msg, b->v[i].msg) != 0)
            return false;
    return true;
}

/* Everything a caller does with one request under one configuration. */
static void run_cfg(const uint8_t *data, size_t size, const struct cfg *cfg, const struct card *c)
{
    struct req_errors types = {0}, plain = {0}, again = {0}, full = {0};
    struct req *req = NULL, *back = NULL;
    const char *first, *last, *country;
    char err[256], *json = NULL;
    long id;
    int r, rt, rv;

    FUZZ_CHECK(req_load_mem((const char *)data, size, &req, err, sizeof(err)) == 0);
    rt = req_check_types(req, cfg, &types);
    check_errors(rt, &types, c);
    rv = req_validate(req, cfg, false, &plain);
    check_errors(rv, &plain, c);
    FUZZ_CHECK(rt == 0 || rv != 0);
    r = req_individual(req, &first, &last, &country, &id);
    FUZZ_CHECK(r == 0 || r == PA_E_REQUEST);
    FUZZ_CHECK(r != 0 || id == -1 || id > 0);

    /* the output reloads and validates the same */
    json = req_to_json(req);
    FUZZ_CHECK(json != NULL);
    if (strlen(json) <= REQ_MAX_SIZE) {
        FUZZ_CHECK(req_load_mem(json, strlen(json), &back, err, sizeof(err)) == 0);
        r = req_validate(back, cfg, false, &again);
        FUZZ_CHECK(r == rv);
        FUZZ_CHECK(same_errors(&plain, &again));
    }
    free(json);
    json = NULL;

    /* defaults, CSR, full validation, output */
    FUZZ_CHECK(req_merge_defaults(req, cfg) == 0);
    r = req_set_csr(
        req, cfg, "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n");
    FUZZ_CHECK(r == 0 || r == PA_E_REQUEST);
    r = req_validate(req, cfg, true, &full);
    check_errors(r, &full, c);
    json = req_to_json(req);
    FUZZ_CHECK(json != NULL);
    (void)req_has_card(req);

    free(json);
    req_errors_clear(&types);
    req_errors_clear(&plain);
    req_errors_clear(&again);
    req_errors_clear(&full);
    req_free(back);
    req_free(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct req *req = NULL;
    struct card card;
    char err[256];
    int r;

    init();
    err[0] = '\0';
    r = req_load_mem((const char *)data, size, &req, err, sizeof(err));
    FUZZ_CHECK(r == 0 || r == PA_E_REQUEST);
    FUZZ_CHECK(strnlen(err, sizeof(err)) < sizeof(err));
    if (r != 0) {
        FUZZ_CHECK(req == NULL && err[0]);
        return 0;
    }
    req_free(req);
    find_card(data, size, &card);
    if (card.number[0])
        FUZZ_CHECK(!strstr(err, card.number));
    for (size_t i = 0; i < NCFG; i++)
        run_cfg(data, size, cfgs[i], &card);
    return 0;
}
