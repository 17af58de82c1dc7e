/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test_request.c - agent/core/request.c: loading, every validation rule (valid and invalid, exact
 * error paths and messages), all errors at once, defaults merge precedence, CSR placement,
 * card data never in messages, permission check of card-carrying request files.
 *
 * Most cases start from a valid request and change one field with edit(), so each test shows
 * exactly the rule it exercises.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "config.h"
#include "pa_err.h"
#include "request.h"

/* A complete valid request for pkio_organisation_person_prof (same as valid-prof.json). */
static const char base_prof[] =
    "{\"certificate\":{\"signature_hash\":\"sha256\",\"profile_option\":\"authentication\","
    "\"is_rsassa_pss\":false,\"individual\":{\"first_name\":\"Johanna Maria\","
    "\"last_name\":\"de Vries\",\"email\":\"j.devries@notariaat-devries.example.nl\","
    "\"telephone\":\"+31 20 555 0123\",\"country\":\"NL\",\"state\":\"Noord-Holland\","
    "\"city\":\"Amsterdam\",\"zip\":\"1017 AB\",\"professional_title\":\"Toegevoegd Notaris\"}},"
    "\"csa_agreed_to\":true,\"cs_provisioning_method\":\"token\","
    "\"ship_info\":{\"name\":\"Johanna de Vries\",\"addr1\":\"Herengracht 100\",\"addr2\":\"\","
    "\"city\":\"Amsterdam\",\"state\":\"Noord-Holland\",\"zip\":\"1017 AB\",\"country\":\"NL\","
    "\"method\":\"STANDARD\"},\"order_validity\":{\"years\":1},\"payment_method\":\"balance\"}";

/* A valid card payment (test card number, far-future expiry). */
#define CARD_NUMBER "4111111111111111"
#define CARD_OBJ                                                                                   \
    "{\"number\":\"" CARD_NUMBER "\",\"expiration_month\":\"12\",\"expiration_year\":\"2099\","    \
    "\"cvv\":\"123\",\"cardholder_name\":\"Johanna de Vries\",\"set_as_default\":false}"
#define BILLING_OBJ                                                                                \
    "{\"address\":\"Herengracht 100\",\"city\":\"Amsterdam\",\"zip\":\"1017 AB\","                 \
    "\"country\":\"NL\"}"

#define DEL "\001delete" /* edit(): remove the member */

static struct cfg *cfg_prof, *cfg_burger, *cfg_signing, *cfg_orgp;

struct exp {
    const char *path;
    const char *msg;
};

static struct cfg *mkcfg(const char *json)
{
    struct cfg *cfg = NULL;
    char err[256] = "";

    if (cfg_load_mem(json, strlen(json), "test", &cfg, err, sizeof(err)) != 0)
        fail_msg("config: %s", err);
    return cfg;
}

static int setup(void **state)
{
    (void)state;
    cfg_prof = mkcfg("{}");
    cfg_burger = mkcfg("{\"api\":{\"product\":\"pkio_burger\",\"provisioning_field\":"
                       "\"provisioning_method\"}}");
    cfg_signing = mkcfg("{\"api\":{\"product\":\"pkio_qualified_organisation_person_prof\"}}");
    cfg_orgp = mkcfg("{\"api\":{\"product\":\"pkio_organisation_person\"}}");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cfg_free(cfg_prof);
    cfg_free(cfg_burger);
    cfg_free(cfg_signing);
    cfg_free(cfg_orgp);
    return 0;
}

/* Set the member at a dotted path (objects created on the way) to JSON text, or DEL it. */
static void edit_one(json_object *root, const char *path, const char *value)
{
    char buf[256], *p = buf, *dot;
    json_object *cur = root, *next;

    assert_true(strlen(path) < sizeof(buf));
    memcpy(buf, path, strlen(path) + 1);
    while ((dot = strchr(p, '.')) != NULL) {
        *dot = '\0';
        if (!json_object_object_get_ex(cur, p, &next) ||
            !json_object_is_type(next, json_type_object)) {
            next = json_object_new_object();
            json_object_object_add(cur, p, next);
        }
        cur = next;
        p = dot + 1;
    }
    if (strcmp(value, DEL) == 0) {
        json_object_object_del(cur, p);
        return;
    }
    next = json_tokener_parse(value);
    if (!next && strcmp(value, "null") != 0)
        fail_msg("bad JSON in test: %s", value);
    json_object_object_add(cur, p, next);
}

/* base with (path, value) pairs applied, NULL-terminated; caller frees. */
static char *edit(const char *base, ...)
{
    json_object *root = json_tokener_parse(base);
    const char *path;
    char *out;
    va_list ap;

    assert_non_null(root);
    va_start(ap, base);
    while ((path = va_arg(ap, const char *)) != NULL)
        edit_one(root, path, va_arg(ap, const char *));
    va_end(ap);
    out = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
    json_object_put(root);
    assert_non_null(out);
    return out;
}

static struct req *load(const char *json)
{
    struct req *req = NULL;
    char err[256] = "";

    if (req_load_mem(json, strlen(json), &req, err, sizeof(err)) != 0)
        fail_msg("load: %s", err);
    return req;
}

static void dump(const struct req_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        print_error("  got: {\"%s\", \"%s\"}\n", errs->v[i].path, errs->v[i].msg);
}

/* Validate json with cfg and compare the error list exactly (order included). */
static void check(const char *json, const struct cfg *cfg, bool with_csr, const struct exp *exp,
                  size_t n)
{
    struct req *req = load(json);
    struct req_errors errs = {0};
    int r = req_validate(req, cfg, with_csr, &errs);
    bool same = errs.n == n;

    for (size_t i = 0; same && i < n; i++)
        same = strcmp(errs.v[i].path, exp[i].path) == 0 && strcmp(errs.v[i].msg, exp[i].msg) == 0;
    if (!same) {
        for (size_t i = 0; i < n; i++)
            print_error("  want: {\"%s\", \"%s\"}\n", exp[i].path, exp[i].msg);
        dump(&errs);
    }
    assert_true(same);
    assert_int_equal(r, n ? PA_E_REQUEST : 0);
    req_errors_clear(&errs);
    req_free(req);
}

#define EXPECT(json, cfg, ...)                                                                     \
    do {                                                                                           \
        static const struct exp e_[] = {__VA_ARGS__};                                              \
        check((json), (cfg), false, e_, sizeof(e_) / sizeof(e_[0]));                               \
    } while (0)

static void check_ok(const char *json, const struct cfg *cfg)
{
    check(json, cfg, false, NULL, 0);
}

/* One edit of base_prof must give exactly one error. */
static void expect1(const char *path, const char *value, const char *epath, const char *emsg)
{
    char *j = edit(base_prof, path, value, NULL);
    struct exp e = {epath, emsg};

    check(j, cfg_prof, false, &e, 1);
    free(j);
}

/* One edit of base_prof must stay valid. */
static void ok1(const char *path, const char *value)
{
    char *j = edit(base_prof, path, value, NULL);

    check_ok(j, cfg_prof);
    free(j);
}

static void date_plus(long days, char out[16])
{
    time_t t = time(NULL) + days * 86400;
    struct tm tm;

    assert_non_null(gmtime_r(&t, &tm));
    assert_int_equal(strftime(out, 16, "%Y-%m-%d", &tm), 10);
}

static long today_days(void)
{
    return (long)(time(NULL) / 86400);
}

/* ------------------------------------------------------------------------------------------ */
/* Files in tests/data/requests                                                               */

static struct req *load_file(const char *name, int want)
{
    char path[512], err[512] = "";
    struct req *req = NULL;
    int r;

    (void)snprintf(path, sizeof(path), "%s/requests/%s", PKIO_TEST_DATA, name);
    r = req_load_file(path, &req, err, sizeof(err));
    if (r != want)
        fail_msg("%s: %d (%s)", path, r, err);
    return req;
}

static void check_file(const char *name, const struct exp *exp, size_t n)
{
    struct req *req = load_file(name, 0);
    char *json = req_to_json(req);

    req_free(req);
    check(json, cfg_prof, false, exp, n);
    free(json);
}

static void test_file_valid_prof(void **state)
{
    const char *first, *last, *country;
    struct req *req;
    long id;

    (void)state;
    check_file("valid-prof.json", NULL, 0);
    req = load_file("valid-prof.json", 0);
    assert_int_equal(req_individual(req, &first, &last, &country, &id), 0);
    assert_string_equal(first, "Johanna Maria");
    assert_string_equal(last, "de Vries");
    assert_string_equal(country, "NL");
    assert_int_equal(id, -1);
    assert_false(req_has_card(req));
    req_free(req);
}

static void test_file_valid_individual_id(void **state)
{
    const char *first = "x", *last = "x", *country = "x";
    struct req *req;
    long id;

    (void)state;
    check_file("valid-individual-id.json", NULL, 0);
    req = load_file("valid-individual-id.json", 0);
    assert_int_equal(req_individual(req, &first, &last, &country, &id), 0);
    assert_null(first);
    assert_null(last);
    assert_null(country);
    assert_int_equal(id, 21);
    req_free(req);
}

static void test_file_invalid_individual(void **state)
{
    static const struct exp e[] = {
        {"certificate.individual.first_name",
         "must not start with a title such as \"Dr.\" or \"Mr.\""},
        {"certificate.individual.last_name", "must not be empty"},
        {"certificate.individual.email", "must be an e-mail address (local@domain.tld)"},
        {"certificate.individual.telephone", "must start with + and the country code"},
        {"certificate.individual.country", "must be a two-letter country code"},
        {"certificate.individual.professional_title", "is required"},
    };

    (void)state;
    check_file("invalid-individual.json", e, sizeof(e) / sizeof(e[0]));
}

static void test_file_invalid_id_with_details(void **state)
{
    static const struct exp e[] = {
        {"certificate.individual.first_name", "must be absent when id is given"},
        {"certificate.individual.email", "must be absent when id is given"},
    };

    (void)state;
    check_file("invalid-id-with-details.json", e, sizeof(e) / sizeof(e[0]));
}

static void test_file_invalid_order(void **state)
{
    static const struct exp e[] = {
        {"certificate.is_rsassa_pss", "must be a boolean"},
        {"provisioning_method", "unknown field"},
        {"certificate.signature_hash", "must be \"sha256\""},
        {"certificate.profile_option", "must be one of: authentication, encryption"},
        {"csa_agreed_to", "must be true"},
        {"cs_provisioning_method", "is required"},
        {"ship_info.addr2", "is required"},
        {"ship_info.method", "must be STANDARD or EXPEDITED"},
        {"order_validity", "give at most one of years, days, custom_expiration_date"},
        {"order_validity.years", "must be 1, 2 or 3"},
        {"payment_method", "must be one of: balance, card, profile"},
    };

    (void)state;
    check_file("invalid-order.json", e, sizeof(e) / sizeof(e[0]));
}

static void test_file_invalid_syntax(void **state)
{
    char path[512], err[512] = "", want[600];
    struct req *req = NULL;

    (void)state;
    (void)snprintf(path, sizeof(path), "%s/requests/invalid-syntax.json", PKIO_TEST_DATA);
    assert_int_equal(req_load_file(path, &req, err, sizeof(err)), PA_E_REQUEST);
    assert_null(req);
    (void)snprintf(want, sizeof(want), "%s:4:3: invalid JSON: ", path);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("got \"%s\", want prefix \"%s\"", err, want);
}

/* Copy a data file to a private temp dir with the given mode; returns the path (static). */
static const char *copy_with_mode(const char *name, mode_t mode, char *dir, size_t dirlen)
{
    static char dst[600];
    char src[512], buf[8192];
    ssize_t n;
    int in, out;

    (void)snprintf(dir, dirlen, "%s/pkio-test-request.XXXXXX",
                   getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(dir));
    (void)snprintf(src, sizeof(src), "%s/requests/%s", PKIO_TEST_DATA, name);
    (void)snprintf(dst, sizeof(dst), "%s/%s", dir, name);
    in = open(src, O_RDONLY | O_CLOEXEC);
    assert_true(in >= 0);
    out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(out >= 0);
    while ((n = read(in, buf, sizeof(buf))) > 0)
        assert_int_equal(write(out, buf, (size_t)n), n);
    assert_int_equal(fchmod(out, mode), 0);
    close(in);
    close(out);
    return dst;
}

static void test_file_card_permissions(void **state)
{
    char dir[512], err[1024] = "", want[1400];
    struct req *req = NULL;
    const char *path;

    (void)state;
    /* group/world readable + card data: refused, with the fix in the message */
    path = copy_with_mode("valid-card.json", 0644, dir, sizeof(dir));
    assert_int_equal(req_load_file(path, &req, err, sizeof(err)), PA_E_REQUEST);
    assert_null(req);
    (void)snprintf(want, sizeof(want),
                   "%s: contains credit card data but is group- or world-accessible; run: "
                   "chmod 600 %s",
                   path, path);
    assert_string_equal(err, want);
    assert_null(strstr(err, CARD_NUMBER));
    /* 0640 is refused too */
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(req_load_file(path, &req, err, sizeof(err)), PA_E_REQUEST);
    /* owner only: accepted and valid */
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(req_load_file(path, &req, err, sizeof(err)), 0);
    assert_true(req_has_card(req));
    req_free(req);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);

    /* a file without card data may be world-readable */
    path = copy_with_mode("valid-prof.json", 0644, dir, sizeof(dir));
    assert_int_equal(req_load_file(path, &req, err, sizeof(err)), 0);
    req_free(req);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);

    /* the card example validates once readable by its owner only */
    path = copy_with_mode("valid-card.json", 0600, dir, sizeof(dir));
    req = NULL;
    assert_int_equal(req_load_file(path, &req, err, sizeof(err)), 0);
    {
        struct req_errors errs = {0};

        assert_int_equal(req_validate(req, cfg_prof, false, &errs), 0);
        req_errors_clear(&errs);
    }
    req_free(req);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
}

static void test_file_invalid_card(void **state)
{
    static const struct exp e[] = {
        {"credit_card.number", "is not a valid card number (Luhn check failed)"},
        {"credit_card.expiration_month", "must be two digits, \"01\" to \"12\""},
        {"credit_card.cvv", "must be 3 or 4 digits"},
        {"billing_address", "is required when payment_method is card"},
    };
    char dir[512], err[512] = "";
    struct req_errors errs = {0};
    struct req *req = NULL;
    const char *path;

    (void)state;
    path = copy_with_mode("invalid-card.json", 0600, dir, sizeof(dir));
    assert_int_equal(req_load_file(path, &req, err, sizeof(err)), 0);
    assert_int_equal(req_validate(req, cfg_prof, false, &errs), PA_E_REQUEST);
    if (errs.n != sizeof(e) / sizeof(e[0]))
        dump(&errs);
    assert_int_equal(errs.n, sizeof(e) / sizeof(e[0]));
    for (size_t i = 0; i < errs.n; i++) {
        assert_string_equal(errs.v[i].path, e[i].path);
        assert_string_equal(errs.v[i].msg, e[i].msg);
        assert_null(strstr(errs.v[i].msg, "4111111111111112"));
        assert_null(strstr(errs.v[i].msg, "12345"));
    }
    req_errors_clear(&errs);
    req_free(req);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
}

static void test_file_missing(void **state)
{
    char err[512] = "";
    struct req *req = NULL;

    (void)state;
    assert_int_equal(req_load_file("/nonexistent/request.json", &req, err, sizeof(err)),
                     PA_E_REQUEST);
    assert_string_equal(err, "/nonexistent/request.json: cannot open: No such file or directory");
    assert_int_equal(req_load_file("/", &req, err, sizeof(err)), PA_E_REQUEST);
    assert_string_equal(err, "/: not a regular file");
}

/* ------------------------------------------------------------------------------------------ */
/* Parsing                                                                                    */

static void load_fails(const char *buf, size_t len, const char *want)
{
    char err[512] = "";
    struct req *req = NULL;

    assert_int_equal(req_load_mem(buf, len, &req, err, sizeof(err)), PA_E_REQUEST);
    assert_null(req);
    assert_string_equal(err, want);
}

static void test_parse_errors(void **state)
{
    static const char nul[] = "{\"a\":\"\0\"}";
    char *big;

    (void)state;
    load_fails("{\n  \"a\": 1,\n  x\n}", 17,
               "request:3:3: invalid JSON: quoted object property name expected");
    load_fails("{\"a\": 1", 7, "request:1:8: invalid JSON: unexpected end of input");
    load_fails("[]", 2, "request: must contain a JSON object");
    load_fails("\"x\"", 3, "request: must contain a JSON object");
    load_fails("{} {}", 5, "request:1:4: invalid JSON: unexpected character");
    load_fails(nul, sizeof(nul) - 1, "request: contains a NUL byte");
    load_fails("{\"a\":1e999}", 11, "request: a number is out of range");
    load_fails("{\"a\":'x'}", 9, "request:1:6: invalid JSON: unexpected character");
    load_fails("{\"a\":1,}", 8, "request:1:8: invalid JSON: unexpected character");
    load_fails("{\"a\":\"\xff\"}", 9, "request:1:7: invalid JSON: invalid utf-8 string");
    big = calloc(1, REQ_MAX_SIZE + 2);
    assert_non_null(big);
    memset(big, ' ', REQ_MAX_SIZE + 1);
    big[0] = '{';
    big[REQ_MAX_SIZE] = '}';
    load_fails(big, REQ_MAX_SIZE + 1, "request: larger than 262144 bytes");
    free(big);
}

static void test_deep_nesting(void **state)
{
    char buf[200], err[256] = "";
    struct req *req = NULL;
    size_t i, n = 0;

    (void)state;
    for (i = 0; i < 40; i++)
        buf[n++] = '[';
    for (i = 0; i < 40; i++)
        buf[n++] = ']';
    assert_int_equal(req_load_mem(buf, n, &req, err, sizeof(err)), PA_E_REQUEST);
    assert_non_null(strstr(err, "nesting too deep"));
}

/* ------------------------------------------------------------------------------------------ */
/* certificate                                                                                */

static void test_certificate(void **state)
{
    (void)state;
    expect1("certificate", DEL, "certificate", "is required");
    expect1("certificate", "[]", "certificate", "must be an object");
    expect1("certificate", "null", "certificate", "must be an object");
    expect1("certificate.extra", "1", "certificate.extra", "unknown field");
}

static void test_signature_hash(void **state)
{
    (void)state;
    expect1("certificate.signature_hash", DEL, "certificate.signature_hash", "is required");
    expect1("certificate.signature_hash", "\"sha1\"", "certificate.signature_hash",
            "must be \"sha256\"");
    expect1("certificate.signature_hash", "\"SHA256\"", "certificate.signature_hash",
            "must be \"sha256\"");
    expect1("certificate.signature_hash", "256", "certificate.signature_hash", "must be a string");
}

static void test_profile_option(void **state)
{
    char *j;

    (void)state;
    ok1("certificate.profile_option", "\"encryption\"");
    ok1("certificate.profile_option", "\"authentication\"");
    expect1("certificate.profile_option", DEL, "certificate.profile_option", "is required");
    expect1("certificate.profile_option", "\"nonrepudiation\"", "certificate.profile_option",
            "must be one of: authentication, encryption");
    expect1("certificate.profile_option", "true", "certificate.profile_option", "must be a string");
    /* signing product: nonrepudiation only, qscd provisioning */
    j = edit(base_prof, "certificate.profile_option", "\"nonrepudiation\"",
             "cs_provisioning_method", "\"qscd\"", NULL);
    check_ok(j, cfg_signing);
    free(j);
    j = edit(base_prof, "cs_provisioning_method", "\"qscd\"", NULL);
    EXPECT(j, cfg_signing, {"certificate.profile_option", "must be one of: nonrepudiation"});
    free(j);
}

static void test_is_rsassa_pss(void **state)
{
    (void)state;
    ok1("certificate.is_rsassa_pss", "true");
    ok1("certificate.is_rsassa_pss", DEL);
    expect1("certificate.is_rsassa_pss", "\"true\"", "certificate.is_rsassa_pss",
            "must be a boolean");
    expect1("certificate.is_rsassa_pss", "1", "certificate.is_rsassa_pss", "must be a boolean");
}

/* ------------------------------------------------------------------------------------------ */
/* certificate.individual                                                                     */

static void test_individual_required(void **state)
{
    (void)state;
    expect1("certificate.individual", DEL, "certificate.individual", "is required");
    expect1("certificate.individual", "\"21\"", "certificate.individual", "must be an object");
    expect1("certificate.individual.nickname", "\"Jo\"", "certificate.individual.nickname",
            "unknown field");
}

static void test_individual_empty(void **state)
{
    char *j = edit(base_prof, "certificate.individual", "{}", NULL);

    (void)state;
    EXPECT(j, cfg_prof, {"certificate.individual.first_name", "is required"},
           {"certificate.individual.last_name", "is required"},
           {"certificate.individual.email", "is required"},
           {"certificate.individual.telephone", "is required"},
           {"certificate.individual.country", "is required"},
           {"certificate.individual.state", "is required"},
           {"certificate.individual.professional_title", "is required"});
    free(j);
}

static void test_individual_id(void **state)
{
    char *j;

    (void)state;
    ok1("certificate.individual", "{\"id\":1}");
    expect1("certificate.individual", "{\"id\":0}", "certificate.individual.id",
            "must be a positive integer");
    expect1("certificate.individual", "{\"id\":-5}", "certificate.individual.id",
            "must be a positive integer");
    expect1("certificate.individual", "{\"id\":\"21\"}", "certificate.individual.id",
            "must be an integer");
    expect1("certificate.individual", "{\"id\":2.5}", "certificate.individual.id",
            "must be an integer");
    /* id plus details: every detail must be absent (we do not silently ignore them) */
    j = edit(base_prof, "certificate.individual.id", "7", NULL);
    EXPECT(j, cfg_prof, {"certificate.individual.first_name", "must be absent when id is given"},
           {"certificate.individual.last_name", "must be absent when id is given"},
           {"certificate.individual.email", "must be absent when id is given"},
           {"certificate.individual.telephone", "must be absent when id is given"},
           {"certificate.individual.country", "must be absent when id is given"},
           {"certificate.individual.state", "must be absent when id is given"},
           {"certificate.individual.city", "must be absent when id is given"},
           {"certificate.individual.zip", "must be absent when id is given"},
           {"certificate.individual.professional_title", "must be absent when id is given"});
    free(j);
}

static void test_first_name(void **state)
{
    static const char *const titled[] = {"\"Dr. Johanna\"", "\"dr Johanna\"",
                                         "\"DR.Johanna\"",  "\"Prof. Jan\"",
                                         "\"Mr. Jan\"",     "\"Mr Jan\"",
                                         "\"mr.Jan\"",      "\"Mrs. Ann\"",
                                         "\"Ir. Jan\"",     "\"Drs. Jan\"",
                                         "\"Ing. Jan\"",    "\"Dr.\"",
                                         "\"  Dr. Jan\"",   NULL};
    static const char *const fine[] = {"\"Drew\"",  "\"Mrinal\"",     "\"Irene\"", "\"Ingrid\"",
                                       "\"J. M.\"", "\"Jan-Willem\"", "\"Émile\"", NULL};

    (void)state;
    for (size_t i = 0; titled[i]; i++)
        expect1("certificate.individual.first_name", titled[i], "certificate.individual.first_name",
                "must not start with a title such as \"Dr.\" or \"Mr.\"");
    for (size_t i = 0; fine[i]; i++)
        ok1("certificate.individual.first_name", fine[i]);
    expect1("certificate.individual.first_name", DEL, "certificate.individual.first_name",
            "is required");
    expect1("certificate.individual.first_name", "\"\"", "certificate.individual.first_name",
            "must not be empty");
    expect1("certificate.individual.first_name", "\"   \"", "certificate.individual.first_name",
            "must not be empty");
    expect1("certificate.individual.first_name", "[\"Jan\"]", "certificate.individual.first_name",
            "must be a string");
    expect1("certificate.individual.first_name", "\"Jan\\u0000Piet\"",
            "certificate.individual.first_name", "must not contain a NUL character");
}

static void test_last_name(void **state)
{
    (void)state;
    ok1("certificate.individual.last_name", "\"van den Berg Sr.\"");
    expect1("certificate.individual.last_name", DEL, "certificate.individual.last_name",
            "is required");
    expect1("certificate.individual.last_name", "\"\"", "certificate.individual.last_name",
            "must not be empty");
    expect1("certificate.individual.last_name", "null", "certificate.individual.last_name",
            "must be a string");
}

static void test_email(void **state)
{
    static const char *const bad[] = {
        "\"jan\"",        "\"jan@\"",      "\"@example.nl\"", "\"jan@nl\"",    "\"jan@x.n\"",
        "\"jan @x.nl\"",  "\"jan@x..nl\"", "\"jan@-x.nl\"",   "\"jan@x.nl.\"", "\"a@b@x.nl\"",
        "\"jan@x_y.nl\"", "\"jan@x.n1\"",  "\"j<n>@x.nl\"",   "\"jan@.x.nl\"", NULL};
    static const char *const good[] = {"\"jan.de-vries+pki@notaris.example.nl\"", "\"J@X.NL\"",
                                       "\"a_b@sub-1.example.com\"", NULL};

    (void)state;
    for (size_t i = 0; bad[i]; i++)
        expect1("certificate.individual.email", bad[i], "certificate.individual.email",
                "must be an e-mail address (local@domain.tld)");
    for (size_t i = 0; good[i]; i++)
        ok1("certificate.individual.email", good[i]);
    expect1("certificate.individual.email", DEL, "certificate.individual.email", "is required");
    expect1("certificate.individual.email", "1", "certificate.individual.email",
            "must be a string");
}

static void test_telephone(void **state)
{
    static const char *const good[] = {"\"+31-0-72 568 7878\"", "\"+31(0)20 254 7999\"",
                                       "\"+18018308989\"", "\"+31 20 555 0123\"", NULL};

    (void)state;
    for (size_t i = 0; good[i]; i++)
        ok1("certificate.individual.telephone", good[i]);
    expect1("certificate.individual.telephone", "\"020 555 0123\"",
            "certificate.individual.telephone", "must start with + and the country code");
    expect1("certificate.individual.telephone", "\"0031 20 555 0123\"",
            "certificate.individual.telephone", "must start with + and the country code");
    expect1("certificate.individual.telephone", "\"+0 20 555 0123\"",
            "certificate.individual.telephone", "must start with + and the country code");
    expect1("certificate.individual.telephone", "\"+ 31 20 555 0123\"",
            "certificate.individual.telephone", "must start with + and the country code");
    expect1("certificate.individual.telephone", "\"\"", "certificate.individual.telephone",
            "must start with + and the country code");
    expect1("certificate.individual.telephone", "\"+31 20 555 0123 ext. 4\"",
            "certificate.individual.telephone",
            "may contain only digits, spaces, '-', '(' and ')' after the +");
    expect1("certificate.individual.telephone", "\"+31/20/5550123\"",
            "certificate.individual.telephone",
            "may contain only digits, spaces, '-', '(' and ')' after the +");
    expect1("certificate.individual.telephone", "\"+31 2\"", "certificate.individual.telephone",
            "must have 7 to 20 digits");
    expect1("certificate.individual.telephone", "\"+312345678901234567890\"",
            "certificate.individual.telephone", "must have 7 to 20 digits");
    expect1("certificate.individual.telephone", DEL, "certificate.individual.telephone",
            "is required");
    expect1("certificate.individual.telephone", "31205550123", "certificate.individual.telephone",
            "must be a string");
}

static void test_country(void **state)
{
    (void)state;
    ok1("certificate.individual.country", "\"nl\"");
    ok1("certificate.individual.country", "\"BE\"");
    expect1("certificate.individual.country", "\"NLD\"", "certificate.individual.country",
            "must be a two-letter country code");
    expect1("certificate.individual.country", "\"N\"", "certificate.individual.country",
            "must be a two-letter country code");
    expect1("certificate.individual.country", "\"N1\"", "certificate.individual.country",
            "must be a two-letter country code");
    expect1("certificate.individual.country", DEL, "certificate.individual.country", "is required");
    expect1("certificate.individual.country", "31", "certificate.individual.country",
            "must be a string");
}

static void test_state_city_zip(void **state)
{
    (void)state;
    expect1("certificate.individual.state", DEL, "certificate.individual.state", "is required");
    expect1("certificate.individual.state", "\"\"", "certificate.individual.state",
            "must not be empty");
    ok1("certificate.individual.city", DEL);
    ok1("certificate.individual.zip", DEL);
    ok1("certificate.individual.city", "\"\"");
    expect1("certificate.individual.city", "5", "certificate.individual.city", "must be a string");
    expect1("certificate.individual.zip", "1017", "certificate.individual.zip", "must be a string");
}

static void test_professional_title(void **state)
{
    char *j;

    (void)state;
    expect1("certificate.individual.professional_title", DEL,
            "certificate.individual.professional_title", "is required");
    expect1("certificate.individual.professional_title", "\" \"",
            "certificate.individual.professional_title", "must not be empty");
    expect1("certificate.individual.professional_title", "false",
            "certificate.individual.professional_title", "must be a string");
    /* citizen product: no title, provisioning field configured as provisioning_method */
    j = edit(base_prof, "certificate.individual.professional_title", DEL, "cs_provisioning_method",
             DEL, "provisioning_method", "\"token\"", NULL);
    check_ok(j, cfg_burger);
    free(j);
    j = edit(base_prof, "cs_provisioning_method", DEL, "provisioning_method", "\"token\"", NULL);
    EXPECT(j, cfg_burger,
           {"certificate.individual.professional_title", "not used by product pkio_burger"});
    free(j);
}

/* ------------------------------------------------------------------------------------------ */
/* Top level                                                                                  */

static void test_csa_agreed_to(void **state)
{
    (void)state;
    expect1("csa_agreed_to", DEL, "csa_agreed_to", "is required");
    expect1("csa_agreed_to", "false", "csa_agreed_to", "must be true");
    expect1("csa_agreed_to", "\"true\"", "csa_agreed_to", "must be a boolean");
    expect1("csa_agreed_to", "1", "csa_agreed_to", "must be a boolean");
}

static void test_provisioning(void **state)
{
    char *j;

    (void)state;
    expect1("cs_provisioning_method", DEL, "cs_provisioning_method", "is required");
    expect1("cs_provisioning_method", "\"qscd\"", "cs_provisioning_method", "must be \"token\"");
    expect1("cs_provisioning_method", "\"ship_token\"", "cs_provisioning_method",
            "must be \"token\"");
    expect1("cs_provisioning_method", "[]", "cs_provisioning_method", "must be a string");
    /* the other spelling is an unknown field for this configuration */
    j = edit(base_prof, "cs_provisioning_method", DEL, "provisioning_method", "\"token\"", NULL);
    EXPECT(j, cfg_prof, {"provisioning_method", "unknown field"},
           {"cs_provisioning_method", "is required"});
    free(j);
    /* signing product wants qscd */
    j = edit(base_prof, "certificate.profile_option", "\"nonrepudiation\"", NULL);
    EXPECT(j, cfg_signing, {"cs_provisioning_method", "must be \"qscd\""});
    free(j);
}

static void test_provisioning_nested_field(void **state)
{
    struct cfg *cfg =
        mkcfg("{\"api\":{\"provisioning_field\":\"certificate.cs_provisioning_method\"}}");
    char *j;

    (void)state;
    j = edit(base_prof, "cs_provisioning_method", DEL, "certificate.cs_provisioning_method",
             "\"token\"", NULL);
    check_ok(j, cfg);
    free(j);
    EXPECT(base_prof, cfg, {"cs_provisioning_method", "unknown field"},
           {"certificate.cs_provisioning_method", "is required"});
    cfg_free(cfg);
}

static void test_ship_info(void **state)
{
    char *j;

    (void)state;
    ok1("ship_info", DEL);
    ok1("ship_info.addr2", "\"Floor 4\"");
    ok1("ship_info.method", "\"EXPEDITED\"");
    expect1("ship_info", "\"NL\"", "ship_info", "must be an object");
    expect1("ship_info.addr2", DEL, "ship_info.addr2", "is required");
    expect1("ship_info.addr2", "null", "ship_info.addr2", "must be a string");
    expect1("ship_info.method", "\"standard\"", "ship_info.method",
            "must be STANDARD or EXPEDITED");
    expect1("ship_info.method", "\"OVERNIGHT\"", "ship_info.method",
            "must be STANDARD or EXPEDITED");
    expect1("ship_info.country", "\"Netherlands\"", "ship_info.country",
            "must be a two-letter country code");
    expect1("ship_info.name", "\"\"", "ship_info.name", "must not be empty");
    expect1("ship_info.phone", "\"+31 20 555 0123\"", "ship_info.phone", "unknown field");
    j = edit(base_prof, "ship_info", "{}", NULL);
    EXPECT(j, cfg_prof, {"ship_info.name", "is required"}, {"ship_info.addr1", "is required"},
           {"ship_info.city", "is required"}, {"ship_info.state", "is required"},
           {"ship_info.zip", "is required"}, {"ship_info.addr2", "is required"},
           {"ship_info.country", "is required"}, {"ship_info.method", "is required"});
    free(j);
}

static void test_order_validity(void **state)
{
    (void)state;
    ok1("order_validity", DEL);
    ok1("order_validity", "{}");
    ok1("order_validity", "{\"years\":3}");
    ok1("order_validity", "{\"days\":1}");
    ok1("order_validity", "{\"days\":1095}");
    expect1("order_validity", "{\"years\":0}", "order_validity.years", "must be 1, 2 or 3");
    expect1("order_validity", "{\"years\":4}", "order_validity.years", "must be 1, 2 or 3");
    expect1("order_validity", "{\"years\":\"1\"}", "order_validity.years", "must be an integer");
    expect1("order_validity", "{\"days\":0}", "order_validity.days", "must be 1 to 1095");
    expect1("order_validity", "{\"days\":1096}", "order_validity.days", "must be 1 to 1095");
    expect1("order_validity", "{\"years\":1,\"days\":30}", "order_validity",
            "give at most one of years, days, custom_expiration_date");
    expect1("order_validity", "{\"months\":6}", "order_validity.months", "unknown field");
    expect1("order_validity", "[1]", "order_validity", "must be an object");
}

static void test_custom_expiration_date(void **state)
{
    static const char *const bad_format[] = {
        "\"2030-1-01\"",  "\"2030/01/01\"", "\"20300101\"",   "\"2030-02-30\"", "\"2031-02-29\"",
        "\"2030-13-01\"", "\"2030-00-10\"", "\"2030-01-00\"", "\"tomorrow\"",   NULL};
    const char *msg_range = "must be after today and at most 397 days from today";
    char d[16], v[64];
    long day;

    (void)state;
    for (size_t i = 0; bad_format[i]; i++) {
        (void)snprintf(v, sizeof(v), "{\"custom_expiration_date\":%s}", bad_format[i]);
        expect1("order_validity", v, "order_validity.custom_expiration_date",
                "must be a real date as YYYY-MM-DD");
    }
    expect1("order_validity", "{\"custom_expiration_date\":20300101}",
            "order_validity.custom_expiration_date", "must be a string");
    /* the date window is relative to today (UTC); redo a round that straddled midnight */
    do {
        day = today_days();
        date_plus(1, d);
        (void)snprintf(v, sizeof(v), "{\"custom_expiration_date\":\"%s\"}", d);
        ok1("order_validity", v);
        date_plus(397, d);
        (void)snprintf(v, sizeof(v), "{\"custom_expiration_date\":\"%s\"}", d);
        ok1("order_validity", v);
        date_plus(0, d);
        (void)snprintf(v, sizeof(v), "{\"custom_expiration_date\":\"%s\"}", d);
        expect1("order_validity", v, "order_validity.custom_expiration_date", msg_range);
        date_plus(-30, d);
        (void)snprintf(v, sizeof(v), "{\"custom_expiration_date\":\"%s\"}", d);
        expect1("order_validity", v, "order_validity.custom_expiration_date", msg_range);
        date_plus(398, d);
        (void)snprintf(v, sizeof(v), "{\"custom_expiration_date\":\"%s\"}", d);
        expect1("order_validity", v, "order_validity.custom_expiration_date", msg_range);
    } while (day != today_days());
}

static void test_payment_method(void **state)
{
    (void)state;
    ok1("payment_method", "\"profile\"");
    expect1("payment_method", DEL, "payment_method", "is required");
    expect1("payment_method", "\"invoice\"", "payment_method",
            "must be one of: balance, card, profile");
    expect1("payment_method", "\"Balance\"", "payment_method",
            "must be one of: balance, card, profile");
    expect1("payment_method", "1", "payment_method", "must be a string");
}

static char *card_request(const char *path, const char *value)
{
    return edit(base_prof, "payment_method", "\"card\"", "credit_card", CARD_OBJ, "billing_address",
                BILLING_OBJ, path, value, NULL);
}

static void card_expect(const char *path, const char *value, const char *epath, const char *emsg)
{
    char *j = card_request(path, value);
    struct exp e = {epath, emsg};

    check(j, cfg_prof, false, emsg ? &e : NULL, emsg ? 1 : 0);
    free(j);
}

static void test_card(void **state)
{
    char v[16];
    time_t now = time(NULL);
    struct tm tm;

    (void)state;
    card_expect("certificate.individual.city", "\"Utrecht\"", NULL, NULL);
    card_expect("credit_card.number", "\"5555555555554444\"", NULL, NULL);
    card_expect("credit_card.number", "\"378282246310005\"", NULL, NULL);
    card_expect("credit_card.cvv", "\"1234\"", NULL, NULL);
    card_expect("credit_card.set_as_default", "true", NULL, NULL);
    card_expect("credit_card.save_credit_card", "null", NULL, NULL);
    card_expect("credit_card.save_credit_card", "false", NULL, NULL);
    card_expect("billing_address.state", "\"Noord-Holland\"", NULL, NULL);
    card_expect("credit_card.number", "\"4111111111111112\"", "credit_card.number",
                "is not a valid card number (Luhn check failed)");
    card_expect("credit_card.number", "\"41111111111\"", "credit_card.number",
                "must be 12 to 19 digits");
    card_expect("credit_card.number", "\"41111111111111111111\"", "credit_card.number",
                "must be 12 to 19 digits");
    card_expect("credit_card.number", "\"4111 1111 1111 1111\"", "credit_card.number",
                "must be 12 to 19 digits");
    card_expect("credit_card.number", "4111111111111111", "credit_card.number", "must be a string");
    card_expect("credit_card.number", DEL, "credit_card.number", "is required");
    card_expect("credit_card.set_as_default", DEL, "credit_card.set_as_default", "is required");
    card_expect("credit_card.expiration_month", "\"13\"", "credit_card.expiration_month",
                "must be two digits, \"01\" to \"12\"");
    card_expect("credit_card.expiration_month", "\"00\"", "credit_card.expiration_month",
                "must be two digits, \"01\" to \"12\"");
    card_expect("credit_card.expiration_month", "\"1\"", "credit_card.expiration_month",
                "must be two digits, \"01\" to \"12\"");
    card_expect("credit_card.expiration_month", "12", "credit_card.expiration_month",
                "must be a string");
    card_expect("credit_card.expiration_year", "\"99\"", "credit_card.expiration_year",
                "must be four digits");
    card_expect("credit_card.expiration_year", DEL, "credit_card.expiration_year", "is required");
    assert_non_null(gmtime_r(&now, &tm));
    (void)snprintf(v, sizeof(v), "\"%04d\"", tm.tm_year + 1900 - 1);
    card_expect("credit_card.expiration_year", v, "credit_card.expiration_year",
                "the card has expired");
    (void)snprintf(v, sizeof(v), "\"%04d\"", tm.tm_year + 1900 + 1);
    card_expect("credit_card.expiration_year", v, NULL, NULL);
    card_expect("credit_card.cvv", "\"12\"", "credit_card.cvv", "must be 3 or 4 digits");
    card_expect("credit_card.cvv", "\"12a\"", "credit_card.cvv", "must be 3 or 4 digits");
    card_expect("credit_card.cvv", "\"12345\"", "credit_card.cvv", "must be 3 or 4 digits");
    card_expect("credit_card.cardholder_name", "\"\"", "credit_card.cardholder_name",
                "must not be empty");
    card_expect("credit_card.set_as_default", "\"yes\"", "credit_card.set_as_default",
                "must be a boolean");
    card_expect("credit_card.save_credit_card", "1", "credit_card.save_credit_card",
                "must be a boolean or null");
    /* unknown members of the card object are not named: the name could be a card number */
    card_expect("credit_card.4111111111111111", "\"x\"", "credit_card", "has an unknown field");
    card_expect("billing_address", DEL, "billing_address",
                "is required when payment_method is card");
    card_expect("billing_address.address", DEL, "billing_address.address", "is required");
    card_expect("billing_address.city", "\"\"", "billing_address.city", "must not be empty");
    card_expect("billing_address.country", "\"NLD\"", "billing_address.country",
                "must be a two-letter country code");
    card_expect("billing_address.country", DEL, "billing_address.country", "is required");
    card_expect("billing_address.street", "\"x\"", "billing_address.street", "unknown field");
    card_expect("credit_card", DEL, "credit_card", "is required when payment_method is card");
    card_expect("credit_card", "\"4111111111111111\"", "credit_card", "must be an object");
    card_expect("payment_method", "\"balance\"", "credit_card",
                "is allowed only when payment_method is card");
}

static void test_card_data_not_in_messages(void **state)
{
    static const char *const secrets[] = {"4111111111111112", "98765", "4111", "9876", NULL};
    char *j = edit(base_prof, "payment_method", "\"card\"", "credit_card",
                   "{\"number\":\"4111111111111112\",\"expiration_month\":\"98765\","
                   "\"expiration_year\":\"98765\",\"cvv\":\"98765\",\"cardholder_name\":\"\",\"set_"
                   "as_default\":false,"
                   "\"9876543210\":1}",
                   NULL);
    struct req_errors errs = {0};
    struct req *req = load(j);
    char err[256];

    (void)state;
    assert_true(req_has_card(req));
    assert_int_equal(req_validate(req, cfg_prof, true, &errs), PA_E_REQUEST);
    assert_true(errs.n >= 6);
    for (size_t i = 0; i < errs.n; i++)
        for (size_t s = 0; secrets[s]; s++) {
            assert_null(strstr(errs.v[i].path, secrets[s]));
            assert_null(strstr(errs.v[i].msg, secrets[s]));
        }
    req_errors_clear(&errs);
    req_free(req);
    free(j);
    /* a syntax error right after the card number: the message has a position, not the text */
    j = strdup("{\"credit_card\":{\"number\":\"4111111111111111\"x}}");
    assert_int_equal(req_load_mem(j, strlen(j), &req, err, sizeof(err)), PA_E_REQUEST);
    free(j);
    assert_null(strstr(err, "4111"));
}

static void test_unknown_fields(void **state)
{
    char *j;

    (void)state;
    expect1("comment", "\"typo\"", "comment", "unknown field");
    expect1("certificate.csr_pem", "\"x\"", "certificate.csr_pem", "unknown field");
    expect1("organization", "{\"id\":1}", "organization",
            "not used by product pkio_organisation_person_prof");
    /* Fields other CertCentral products take are not in this product's table: refused. */
    expect1("comments", "\"for the registration officer\"", "comments", "unknown field");
    expect1("skip_approval", "true", "skip_approval", "unknown field");
    expect1("container", "{\"id\":5}", "container", "unknown field");
    /* a dotted key is a key, not a path, even if it spells the CSR field's path */
    j = strdup(base_prof);
    assert_non_null(j);
    j[strlen(j) - 1] = '\0';
    {
        char buf[2048];

        (void)snprintf(buf, sizeof(buf), "%s,\"certificate.csr\":\"x\"}", j);
        EXPECT(buf, cfg_prof, {"certificate.csr", "unknown field"});
    }
    free(j);
    j = edit(base_prof, "certificate.csr", "\"x\"", NULL);
    check_ok(j, cfg_prof); /* the CSR field is known (not required without with_csr) */
    free(j);
}

static void test_organization_product(void **state)
{
    char *j = edit(base_prof, "certificate.individual.professional_title", DEL, NULL);
    char *j2 = edit(j, "organization", "{\"id\":12,\"contacts\":[{\"id\":3}]}", NULL);
    char *j3 = edit(j, "organization", "{\"id\":0,\"contacts\":{}}", NULL);

    (void)state;
    EXPECT(j, cfg_orgp, {"organization", "is required"});
    check_ok(j2, cfg_orgp);
    EXPECT(j3, cfg_orgp, {"organization.contacts", "must be an array"},
           {"organization.id", "must be a positive integer"});
    free(j);
    free(j2);
    free(j3);
}

/* ------------------------------------------------------------------------------------------ */
/* All at once, structure pass, error cap                                                     */

static void test_all_errors_at_once(void **state)
{
    static const char json[] =
        "{\"certificate\":{\"signature_hash\":\"sha1\",\"profile_option\":7,"
        "\"individual\":{\"first_name\":\"Mr. X\",\"email\":\"x\",\"telephone\":\"0612\","
        "\"country\":\"Nederland\",\"state\":\"\",\"title\":\"Notaris\"}},"
        "\"csa_agreed_to\":\"yes\",\"cs_provisioning_method\":\"usb\","
        "\"order_validity\":{\"days\":2000},\"payment_method\":\"card\",\"extra\":{}}";

    (void)state;
    EXPECT(json, cfg_prof, {"certificate.profile_option", "must be a string"},
           {"certificate.individual.title", "unknown field"},
           {"csa_agreed_to", "must be a boolean"}, {"extra", "unknown field"},
           {"certificate.signature_hash", "must be \"sha256\""},
           {"certificate.individual.first_name",
            "must not start with a title such as \"Dr.\" or \"Mr.\""},
           {"certificate.individual.last_name", "is required"},
           {"certificate.individual.email", "must be an e-mail address (local@domain.tld)"},
           {"certificate.individual.telephone", "must start with + and the country code"},
           {"certificate.individual.country", "must be a two-letter country code"},
           {"certificate.individual.state", "must not be empty"},
           {"certificate.individual.professional_title", "is required"},
           {"cs_provisioning_method", "must be \"token\""},
           {"order_validity.days", "must be 1 to 1095"},
           {"credit_card", "is required when payment_method is card"},
           {"billing_address", "is required when payment_method is card"});
}

static void test_check_types_only(void **state)
{
    struct req_errors errs = {0};
    struct req *req;

    (void)state;
    /* rules (required fields, values) are not the structure pass's business */
    req = load("{\"certificate\":{\"signature_hash\":\"md5\"}}");
    assert_int_equal(req_check_types(req, cfg_prof, &errs), 0);
    assert_int_equal(errs.n, 0);
    req_free(req);
    /* types and unknown fields are, at every level */
    req = load("{\"certificate\":{\"individual\":{\"id\":\"1\",\"zip\":1017}},"
               "\"ship_info\":{\"method\":1},\"credit_card\":{\"cvv\":123},\"foo\":1,"
               "\"order_validity\":{\"years\":1.5}}");
    assert_int_equal(req_check_types(req, cfg_prof, NULL), PA_E_REQUEST);
    assert_int_equal(req_check_types(req, cfg_prof, &errs), PA_E_REQUEST);
    assert_int_equal(errs.n, 6);
    assert_string_equal(errs.v[0].path, "certificate.individual.id");
    assert_string_equal(errs.v[0].msg, "must be an integer");
    assert_string_equal(errs.v[1].path, "certificate.individual.zip");
    assert_string_equal(errs.v[1].msg, "must be a string");
    assert_string_equal(errs.v[2].path, "ship_info.method");
    assert_string_equal(errs.v[3].path, "credit_card.cvv");
    assert_string_equal(errs.v[3].msg, "must be a string");
    assert_string_equal(errs.v[4].path, "foo");
    assert_string_equal(errs.v[4].msg, "unknown field");
    assert_string_equal(errs.v[5].path, "order_validity.years");
    req_errors_clear(&errs);
    req_free(req);
}

static void test_error_cap(void **state)
{
    struct req_errors errs = {0};
    char buf[4096], key[32];
    struct req *req;
    size_t n = 0;

    (void)state;
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "{");
    for (int i = 0; i < 100; i++) {
        (void)snprintf(key, sizeof(key), "%s\"k%d\":1", i ? "," : "", i);
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s", key);
    }
    (void)snprintf(buf + n, sizeof(buf) - n, "}");
    req = load(buf);
    assert_int_equal(req_validate(req, cfg_prof, false, &errs), PA_E_REQUEST);
    assert_int_equal(errs.n, REQ_MAX_ERRORS);
    assert_string_equal(errs.v[0].path, "k0");
    assert_string_equal(errs.v[REQ_MAX_ERRORS - 2].path, "k62");
    assert_string_equal(errs.v[REQ_MAX_ERRORS - 1].path, "");
    assert_string_equal(errs.v[REQ_MAX_ERRORS - 1].msg, "further errors not shown");
    /* NULL errs: still counted */
    assert_int_equal(req_validate(req, cfg_prof, false, NULL), PA_E_REQUEST);
    req_errors_clear(&errs);
    req_errors_clear(&errs);
    req_errors_clear(NULL);
    req_free(req);
}

static void test_long_and_odd_keys(void **state)
{
    char buf[1024], long_key[400];
    struct req_errors errs = {0};
    struct req *req;

    (void)state;
    memset(long_key, 'a', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    (void)snprintf(buf, sizeof(buf), "{\"certificate\":{\"%s\":1,\"b\\n\\u0001\":2}}", long_key);
    req = load(buf);
    assert_int_equal(req_check_types(req, cfg_prof, &errs), PA_E_REQUEST);
    assert_int_equal(errs.n, 2);
    assert_int_equal(strlen(errs.v[0].path), sizeof(errs.v[0].path) - 1);
    assert_memory_equal(errs.v[0].path, "certificate.aaaa", 16);
    assert_string_equal(errs.v[1].path, "certificate.b??");
    req_errors_clear(&errs);
    req_free(req);
}

static void test_unsupported_product(void **state)
{
    struct cfg *cfg = mkcfg("{}");
    struct req *req = load(base_prof);

    (void)state;
    free(cfg->api_product);
    cfg->api_product = strdup("pkio_private_services_server");
    assert_int_equal(req_validate(req, cfg, false, NULL), PA_E_CONFIG);
    assert_int_equal(req_check_types(req, cfg, NULL), PA_E_CONFIG);
    assert_false(req_product_supported("pkio_private_services_server"));
    assert_false(req_product_supported(NULL));
    assert_true(req_product_supported("pkio_organisation_person_prof"));
    assert_non_null(strstr(req_product_list(), "pkio_qualified_burger"));
    req_free(req);
    cfg_free(cfg);
}

/* ------------------------------------------------------------------------------------------ */
/* Defaults, CSR, output                                                                      */

/* Parse the request's JSON output for inspection; caller puts. */
static json_object *as_json(const struct req *req)
{
    char *s = req_to_json(req);
    json_object *o;

    assert_non_null(s);
    o = json_tokener_parse(s);
    assert_non_null(o);
    free(s);
    return o;
}

static const char *str_at(json_object *root, const char *a, const char *b, const char *c)
{
    json_object *v = root;

    assert_true(json_object_object_get_ex(v, a, &v));
    if (b)
        assert_true(json_object_object_get_ex(v, b, &v));
    if (c)
        assert_true(json_object_object_get_ex(v, c, &v));
    return json_object_get_string(v);
}

static void test_merge_defaults(void **state)
{
    struct cfg *cfg = mkcfg(
        "{\"order_defaults\":{\"payment_method\":\"balance\",\"csa_agreed_to\":true,"
        "\"cs_provisioning_method\":\"token\",\"certificate\":{\"signature_hash\":\"sha256\","
        "\"profile_option\":\"encryption\",\"individual\":{\"country\":\"NL\"}},"
        "\"ship_info\":{\"method\":\"EXPEDITED\",\"country\":\"NL\",\"addr2\":\"default\"}}}");
    char *j = edit(base_prof, "payment_method", DEL, "csa_agreed_to", DEL, "cs_provisioning_method",
                   DEL, "certificate.signature_hash", DEL, "certificate.individual.country", DEL,
                   "ship_info.country", DEL, "ship_info.addr2", "\"mine\"", NULL);
    struct req *req = load(j);
    struct req_errors errs = {0};
    json_object *o;

    (void)state;
    assert_int_equal(req_validate(req, cfg, false, &errs), PA_E_REQUEST);
    req_errors_clear(&errs);
    assert_int_equal(req_merge_defaults(req, cfg), 0);
    assert_int_equal(req_validate(req, cfg, false, &errs), 0);
    o = as_json(req);
    /* request values win, at every depth */
    assert_string_equal(str_at(o, "certificate", "profile_option", NULL), "authentication");
    assert_string_equal(str_at(o, "ship_info", "method", NULL), "STANDARD");
    assert_string_equal(str_at(o, "ship_info", "addr2", NULL), "mine");
    /* missing values come from the defaults, also inside objects */
    assert_string_equal(str_at(o, "payment_method", NULL, NULL), "balance");
    assert_string_equal(str_at(o, "cs_provisioning_method", NULL, NULL), "token");
    assert_string_equal(str_at(o, "certificate", "signature_hash", NULL), "sha256");
    assert_string_equal(str_at(o, "certificate", "individual", "country"), "NL");
    assert_string_equal(str_at(o, "certificate", "individual", "first_name"), "Johanna Maria");
    assert_string_equal(str_at(o, "ship_info", "country", NULL), "NL");
    json_object_put(o);
    req_free(req);
    free(j);

    /* a request value of another type also wins (validation then reports it) */
    req = load("{\"ship_info\":\"none\"}");
    assert_int_equal(req_merge_defaults(req, cfg), 0);
    o = as_json(req);
    assert_string_equal(str_at(o, "ship_info", NULL, NULL), "none");
    json_object_put(o);
    req_free(req);
    cfg_free(cfg);

    /* no defaults: nothing changes */
    req = load("{}");
    assert_int_equal(req_merge_defaults(req, cfg_prof), 0);
    j = req_to_json(req);
    assert_string_equal(j, "{}");
    free(j);
    req_free(req);
}

#define CSR_PEM "-----BEGIN CERTIFICATE REQUEST-----\nMIIBAA==\n-----END CERTIFICATE REQUEST-----\n"

static void test_csr_default_field(void **state)
{
    struct req *req = load(base_prof);
    struct req_errors errs = {0};
    json_object *o;
    char *s;

    (void)state;
    assert_int_equal(req_validate(req, cfg_prof, true, &errs), PA_E_REQUEST);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.v[0].path, "certificate.csr");
    assert_string_equal(errs.v[0].msg, "is required");
    req_errors_clear(&errs);
    assert_int_equal(req_set_csr(req, cfg_prof, CSR_PEM), 0);
    assert_int_equal(req_validate(req, cfg_prof, true, &errs), 0);
    o = as_json(req);
    assert_string_equal(str_at(o, "certificate", "csr", NULL), CSR_PEM);
    json_object_put(o);
    /* compact output, '/' not escaped, newlines escaped */
    s = req_to_json(req);
    assert_null(strchr(s, '\n'));
    assert_null(strstr(s, "\": "));
    assert_non_null(strstr(s, "\"csr\":\"-----BEGIN CERTIFICATE REQUEST-----\\nMIIBAA==\\n"));
    free(s);
    /* replaced, not duplicated */
    assert_int_equal(req_set_csr(req, cfg_prof, "not a csr"), 0);
    assert_int_equal(req_validate(req, cfg_prof, true, &errs), PA_E_REQUEST);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.v[0].path, "certificate.csr");
    assert_string_equal(errs.v[0].msg, "must be a PEM certificate request");
    req_errors_clear(&errs);
    req_free(req);
}

static void test_csr_configured_field(void **state)
{
    struct cfg *top = mkcfg("{\"api\":{\"csr_field\":\"csr\"}}");
    struct cfg *deep = mkcfg("{\"api\":{\"csr_field\":\"certificate.key.csr\"}}");
    struct req_errors errs = {0};
    struct req *req;
    json_object *o, *v;
    char *j;

    (void)state;
    req = load(base_prof);
    assert_int_equal(req_set_csr(req, top, CSR_PEM), 0);
    assert_int_equal(req_validate(req, top, true, &errs), 0);
    o = as_json(req);
    assert_string_equal(str_at(o, "csr", NULL, NULL), CSR_PEM);
    assert_true(json_object_object_get_ex(o, "certificate", &v));
    assert_false(json_object_object_get_ex(v, "csr", NULL));
    json_object_put(o);
    /* with the default configuration "csr" at the top is unknown */
    assert_int_equal(req_validate(req, cfg_prof, false, &errs), PA_E_REQUEST);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.v[0].path, "csr");
    assert_string_equal(errs.v[0].msg, "unknown field");
    req_errors_clear(&errs);
    req_free(req);

    /* intermediate objects are created */
    req = load(base_prof);
    assert_int_equal(req_set_csr(req, deep, CSR_PEM), 0);
    assert_int_equal(req_validate(req, deep, true, &errs), 0);
    o = as_json(req);
    assert_string_equal(str_at(o, "certificate", "key", "csr"), CSR_PEM);
    json_object_put(o);
    req_free(req);

    /* an intermediate that is not an object: refused, and reported by validation */
    j = edit(base_prof, "certificate.key", "\"x\"", NULL);
    req = load(j);
    assert_int_equal(req_set_csr(req, deep, CSR_PEM), PA_E_REQUEST);
    assert_int_equal(req_validate(req, deep, true, &errs), PA_E_REQUEST);
    assert_int_equal(errs.n, 2);
    assert_string_equal(errs.v[0].path, "certificate.key");
    assert_string_equal(errs.v[0].msg, "must be an object");
    assert_string_equal(errs.v[1].path, "certificate.key.csr");
    assert_string_equal(errs.v[1].msg, "is required");
    req_errors_clear(&errs);
    req_free(req);
    free(j);

    /* wrong type at the CSR field; unknown member next to it */
    j = edit(base_prof, "certificate.key", "{\"csr\":5,\"other\":1}", NULL);
    req = load(j);
    assert_int_equal(req_validate(req, deep, false, &errs), PA_E_REQUEST);
    assert_int_equal(errs.n, 2);
    assert_string_equal(errs.v[0].path, "certificate.key.csr");
    assert_string_equal(errs.v[0].msg, "must be a string");
    assert_string_equal(errs.v[1].path, "certificate.key.other");
    assert_string_equal(errs.v[1].msg, "unknown field");
    req_errors_clear(&errs);
    req_free(req);
    free(j);
    cfg_free(top);
    cfg_free(deep);
}

static void test_has_card(void **state)
{
    struct req *req;

    (void)state;
    req = load("{\"payment_method\":\"card\"}");
    assert_true(req_has_card(req));
    req_free(req);
    req = load("{\"payment_method\":\"balance\",\"credit_card\":{}}");
    assert_true(req_has_card(req));
    req_free(req);
    req = load("{\"payment_method\":\"balance\"}");
    assert_false(req_has_card(req));
    req_free(req);
    req = load("{\"payment_method\":5}");
    assert_false(req_has_card(req));
    req_free(req);
}

static void test_individual_accessor(void **state)
{
    const char *first = "untouched";
    long id = 99;
    struct req *req;

    (void)state;
    req = load("{\"certificate\":{}}");
    assert_int_equal(req_individual(req, &first, NULL, NULL, &id), PA_E_REQUEST);
    assert_string_equal(first, "untouched");
    assert_int_equal(id, 99);
    req_free(req);
    req = load("{\"certificate\":{\"individual\":{\"first_name\":5,\"id\":-1}}}");
    assert_int_equal(req_individual(req, &first, NULL, NULL, &id), 0);
    assert_null(first);
    assert_int_equal(id, -1);
    req_free(req);
    req_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_valid_prof),
        cmocka_unit_test(test_file_valid_individual_id),
        cmocka_unit_test(test_file_invalid_individual),
        cmocka_unit_test(test_file_invalid_id_with_details),
        cmocka_unit_test(test_file_invalid_order),
        cmocka_unit_test(test_file_invalid_syntax),
        cmocka_unit_test(test_file_card_permissions),
        cmocka_unit_test(test_file_invalid_card),
        cmocka_unit_test(test_file_missing),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_certificate),
        cmocka_unit_test(test_signature_hash),
        cmocka_unit_test(test_profile_option),
        cmocka_unit_test(test_is_rsassa_pss),
        cmocka_unit_test(test_individual_required),
        cmocka_unit_test(test_individual_empty),
        cmocka_unit_test(test_individual_id),
        cmocka_unit_test(test_first_name),
        cmocka_unit_test(test_last_name),
        cmocka_unit_test(test_email),
        cmocka_unit_test(test_telephone),
        cmocka_unit_test(test_country),
        cmocka_unit_test(test_state_city_zip),
        cmocka_unit_test(test_professional_title),
        cmocka_unit_test(test_csa_agreed_to),
        cmocka_unit_test(test_provisioning),
        cmocka_unit_test(test_provisioning_nested_field),
        cmocka_unit_test(test_ship_info),
        cmocka_unit_test(test_order_validity),
        cmocka_unit_test(test_custom_expiration_date),
        cmocka_unit_test(test_payment_method),
        cmocka_unit_test(test_card),
        cmocka_unit_test(test_card_data_not_in_messages),
        cmocka_unit_test(test_unknown_fields),
        cmocka_unit_test(test_organization_product),
        cmocka_unit_test(test_all_errors_at_once),
        cmocka_unit_test(test_check_types_only),
        cmocka_unit_test(test_error_cap),
        cmocka_unit_test(test_long_and_odd_keys),
        cmocka_unit_test(test_unsupported_product),
        cmocka_unit_test(test_merge_defaults),
        cmocka_unit_test(test_csr_default_field),
        cmocka_unit_test(test_csr_configured_field),
        cmocka_unit_test(test_has_card),
        cmocka_unit_test(test_individual_accessor),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
