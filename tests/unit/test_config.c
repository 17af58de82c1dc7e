/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test_config.c - agent/core/config.c: defaults, every key, dotted keys, unknown keys, wrong types,
 * https only, poll and timeout values, order_defaults, JSON errors with line:column, and the
 * API key: key-file permission refusal (0644 refused, 0600 accepted), environment precedence.
 *
 * Built with agent/core/config.c compiled in and PKIO_DEFAULT_CONFIG pointing at a path that never
 * exists (tests/unit/CMakeLists.txt), so cfg_load(NULL) is tested without touching /etc.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "pa_err.h"
#include "secret.h"

static char tmpdir[512];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    (void)snprintf(tmpdir, sizeof(tmpdir), "%s/pkio-test-config.XXXXXX",
                   getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir))
        return -1;
    unsetenv(CFG_API_KEY_ENV);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unsetenv(CFG_API_KEY_ENV);
    return nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Write content to tmpdir/name with mode; returns the path in a static buffer per slot. */
static const char *write_file(const char *name, const char *content, mode_t mode)
{
    static char paths[4][600];
    static int slot;
    char *path = paths[slot++ % 4];
    int fd;

    (void)snprintf(path, 600, "%s/%s", tmpdir, name);
    (void)unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
    return path;
}

static struct cfg *load_ok(const char *json)
{
    struct cfg *cfg = NULL;
    char err[512] = "";

    if (cfg_load_mem(json, strlen(json), "t.json", &cfg, err, sizeof(err)) != 0)
        fail_msg("unexpected error: %s", err);
    return cfg;
}

/* json must be refused with PA_E_CONFIG and exactly this message. */
static void load_fails(const char *json, const char *want)
{
    struct cfg *cfg = NULL;
    char err[512] = "";
    int r = cfg_load_mem(json, strlen(json), "t.json", &cfg, err, sizeof(err));

    if (r != PA_E_CONFIG || strcmp(err, want) != 0)
        fail_msg("%s\n  got %d \"%s\"\n  want \"%s\"", json, r, err, want);
    assert_null(cfg);
}

static void assert_defaults(const struct cfg *cfg)
{
    assert_string_equal(cfg->api_url, "https://certcentral.digicert.eu/services/v2");
    assert_null(cfg->api_key_file);
    assert_null(cfg->api_ca_bundle);
    assert_string_equal(cfg->api_product, "pkio_organisation_person_prof");
    assert_string_equal(cfg->api_csr_field, "certificate.csr");
    assert_string_equal(cfg->api_provisioning_field, "cs_provisioning_method");
    assert_true(cfg->api_timeout_s == 60);
    assert_true(cfg->api_connect_timeout_s == 15);
    assert_string_equal(cfg->token_module, PKIO_DEFAULT_MODULE);
    assert_null(cfg->token_uri);
    assert_null(cfg->order_defaults);
    assert_true(cfg->poll_initial_s == 30);
    assert_true(cfg->poll_max_s == 600);
    assert_true(cfg->poll_timeout_s == 86400);
    assert_null(cfg->trust_anchors);
    assert_string_equal(cfg->state_dir, PKIO_DEFAULT_STATE_DIR);
}

static void test_defaults(void **state)
{
    struct cfg *cfg = NULL;
    char err[256] = "";

    (void)state;
    /* the (test) default path does not exist: all defaults */
    assert_int_not_equal(access(PKIO_DEFAULT_CONFIG, F_OK), 0);
    assert_int_equal(cfg_load(NULL, &cfg, err, sizeof(err)), 0);
    assert_null(cfg->path);
    assert_defaults(cfg);
    cfg_free(cfg);
    assert_int_equal(cfg_new_defaults(&cfg), 0);
    assert_defaults(cfg);
    cfg_free(cfg);
    cfg = load_ok("{}");
    assert_defaults(cfg);
    cfg_free(cfg);
    cfg = load_ok("{\"api\":{},\"token\":{},\"poll\":{},\"trust\":{}}");
    assert_defaults(cfg);
    cfg_free(cfg);
    cfg_free(NULL);
}

static void test_missing_explicit_file(void **state)
{
    struct cfg *cfg = NULL;
    char err[256] = "", path[600];

    (void)state;
    (void)snprintf(path, sizeof(path), "%s/none.json", tmpdir);
    assert_int_equal(cfg_load(path, &cfg, err, sizeof(err)), PA_E_CONFIG);
    assert_null(cfg);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, ": cannot open: No such file or directory"));
    assert_int_equal(cfg_load(tmpdir, &cfg, err, sizeof(err)), PA_E_CONFIG);
    assert_non_null(strstr(err, ": not a regular file"));
}

static void test_every_key(void **state)
{
    const char *path =
        write_file("full.json",
                   "{\n"
                   "  \"api\": {\n"
                   "    \"url\": \"https://127.0.0.1:8443/services/v2/\",\n"
                   "    \"key_file\": \"/etc/pkio-agent/api-key\",\n"
                   "    \"ca_bundle\": \"/etc/pkio-agent/ca.pem\",\n"
                   "    \"product\": \"pkio_qualified_organisation_person_prof\",\n"
                   "    \"csr_field\": \"csr\",\n"
                   "    \"provisioning_field\": \"provisioning_method\",\n"
                   "    \"timeout_s\": 2.5,\n"
                   "    \"connect_timeout_s\": 1\n"
                   "  },\n"
                   "  \"token\": {\n"
                   "    \"module\": \"/usr/lib/softhsm/libsofthsm2.so\",\n"
                   "    \"uri\": \"pkcs11:token=PKIo;pin-source=file:/run/pin\"\n"
                   "  },\n"
                   "  \"order_defaults\": { \"payment_method\": \"balance\",\n"
                   "                      \"certificate\": { \"signature_hash\": \"sha256\" } },\n"
                   "  \"poll\": { \"initial_s\": 0.005, \"max_s\": 0.04, \"timeout_s\": 2 },\n"
                   "  \"trust\": { \"anchors\": \"/etc/pkio-agent/roots.pem\" },\n"
                   "  \"state_dir\": \"/tmp/state\"\n"
                   "}\n",
                   0644);
    struct cfg *cfg = NULL;
    char err[256] = "";

    (void)state;
    assert_int_equal(cfg_load(path, &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg->path, path);
    assert_string_equal(cfg->api_url, "https://127.0.0.1:8443/services/v2");
    assert_string_equal(cfg->api_key_file, "/etc/pkio-agent/api-key");
    assert_string_equal(cfg->api_ca_bundle, "/etc/pkio-agent/ca.pem");
    assert_string_equal(cfg->api_product, "pkio_qualified_organisation_person_prof");
    assert_string_equal(cfg->api_csr_field, "csr");
    assert_string_equal(cfg->api_provisioning_field, "provisioning_method");
    assert_true(cfg->api_timeout_s == 2.5);
    assert_true(cfg->api_connect_timeout_s == 1);
    assert_string_equal(cfg->token_module, "/usr/lib/softhsm/libsofthsm2.so");
    assert_string_equal(cfg->token_uri, "pkcs11:token=PKIo;pin-source=file:/run/pin");
    assert_string_equal(cfg->order_defaults,
                        "{\"payment_method\":\"balance\",\"certificate\":{\"signature_hash\":"
                        "\"sha256\"}}");
    assert_true(cfg->poll_initial_s == 0.005);
    assert_true(cfg->poll_max_s == 0.04);
    assert_true(cfg->poll_timeout_s == 2);
    assert_string_equal(cfg->trust_anchors, "/etc/pkio-agent/roots.pem");
    assert_string_equal(cfg->state_dir, "/tmp/state");
    cfg_free(cfg);
}

static void test_dotted_keys(void **state)
{
    struct cfg *cfg;

    (void)state;
    cfg = load_ok("{\"api.url\":\"https://h/v2\",\"poll.max_s\":5,\"poll.initial_s\":1}");
    assert_string_equal(cfg->api_url, "https://h/v2");
    assert_true(cfg->poll_max_s == 5);
    cfg_free(cfg);
    load_fails("{\"api\":{\"url\":\"https://a\"},\"api.url\":\"https://b\"}",
               "t.json: api.url: given twice");
}

static void test_unknown_keys(void **state)
{
    (void)state;
    load_fails("{\"apii\":{}}", "t.json: unknown key \"apii\"");
    load_fails("{\"api\":{\"urll\":\"https://x\"}}", "t.json: unknown key \"api.urll\"");
    load_fails("{\"order_default\":{}}", "t.json: unknown key \"order_default\"");
    load_fails("{\"poll\":{\"interval\":3}}", "t.json: unknown key \"poll.interval\"");
    load_fails("{\"token\":{\"pin\":\"1234\"}}", "t.json: unknown key \"token.pin\"");
    load_fails("{\"api\":{\"key\":\"s3cr3t\"}}", "t.json: unknown key \"api.key\"");
    load_fails("{\"a\\nb\":1}", "t.json: unknown key \"a?b\"");
    load_fails("{\"api\":5}", "t.json: api: must be an object");
    load_fails("{\"trust\":[]}", "t.json: trust: must be an object");
}

static void test_bad_types(void **state)
{
    static const struct {
        const char *json, *msg;
    } rows[] = {
        {"{\"api\":{\"url\":5}}", "t.json: api.url: must be a string"},
        {"{\"api\":{\"key_file\":true}}", "t.json: api.key_file: must be a string"},
        {"{\"api\":{\"ca_bundle\":null}}", "t.json: api.ca_bundle: must be a string"},
        {"{\"api\":{\"product\":[]}}", "t.json: api.product: must be a string"},
        {"{\"api\":{\"csr_field\":{}}}", "t.json: api.csr_field: must be a string"},
        {"{\"api\":{\"provisioning_field\":1}}",
         "t.json: api.provisioning_field: must be a string"},
        {"{\"api\":{\"timeout_s\":\"60\"}}", "t.json: api.timeout_s: must be a number of seconds"},
        {"{\"api\":{\"connect_timeout_s\":true}}",
         "t.json: api.connect_timeout_s: must be a number of seconds"},
        {"{\"token\":{\"module\":1}}", "t.json: token.module: must be a string"},
        {"{\"token\":{\"uri\":{}}}", "t.json: token.uri: must be a string"},
        {"{\"order_defaults\":\"{}\"}", "t.json: order_defaults: must be an object"},
        {"{\"order_defaults\":[]}", "t.json: order_defaults: must be an object"},
        {"{\"poll\":{\"initial_s\":\"1\"}}", "t.json: poll.initial_s: must be a number of seconds"},
        {"{\"poll\":{\"max_s\":null}}", "t.json: poll.max_s: must be a number of seconds"},
        {"{\"poll\":{\"timeout_s\":[1]}}", "t.json: poll.timeout_s: must be a number of seconds"},
        {"{\"trust\":{\"anchors\":false}}", "t.json: trust.anchors: must be a string"},
        {"{\"state_dir\":7}", "t.json: state_dir: must be a string"},
        {"{\"state_dir\":\"\"}", "t.json: state_dir: must not be empty"},
        {"{\"token\":{\"module\":\"/x\\ny\"}}",
         "t.json: token.module: must not contain control characters"},
        {"{\"token\":{\"module\":\"/x\\u0000y\"}}",
         "t.json: token.module: must not contain control characters"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        load_fails(rows[i].json, rows[i].msg);
}

static void test_https_only(void **state)
{
    static const char *const bad[] = {"http://certcentral.digicert.eu/services/v2",
                                      "ftp://x/y",
                                      "https://",
                                      "https:///services/v2",
                                      "certcentral.digicert.eu/services/v2",
                                      "https://bad host/",
                                      NULL};
    char json[256];
    struct cfg *cfg;

    (void)state;
    for (size_t i = 0; bad[i]; i++) {
        (void)snprintf(json, sizeof(json), "{\"api\":{\"url\":\"%s\"}}", bad[i]);
        load_fails(json, "t.json: api.url: must be an https:// URL");
    }
    cfg = load_ok("{\"api\":{\"url\":\"HTTPS://localhost:8443/services/v2//\"}}");
    assert_string_equal(cfg->api_url, "HTTPS://localhost:8443/services/v2");
    cfg_free(cfg);
}

static void test_product(void **state)
{
    static const char *const good[] = {"pkio_organisation_person",
                                       "pkio_organisation_person_prof",
                                       "pkio_private_person_prof",
                                       "pkio_burger",
                                       "pkio_qualified_burger",
                                       "pkio_qualified_organisation_person_prof",
                                       NULL};
    char json[256], want[512];
    struct cfg *cfg;

    (void)state;
    for (size_t i = 0; good[i]; i++) {
        (void)snprintf(json, sizeof(json), "{\"api\":{\"product\":\"%s\"}}", good[i]);
        cfg = load_ok(json);
        assert_string_equal(cfg->api_product, good[i]);
        cfg_free(cfg);
    }
    (void)snprintf(want, sizeof(want), "t.json: api.product: unsupported product (supported: %s)",
                   "pkio_organisation_person, pkio_organisation_person_prof, "
                   "pkio_private_person_prof, pkio_burger, pkio_qualified_burger, "
                   "pkio_qualified_organisation_person_prof");
    load_fails("{\"api\":{\"product\":\"pkio_private_services_server\"}}", want);
    load_fails("{\"api\":{\"product\":\"ssl_plus\"}}", want);
}

static void test_fields(void **state)
{
    static const char *const bad[] = {"",    ".csr", "csr.",      "certificate..csr",
                                      "a b", "a-b",  "a.b.c.d.e", NULL};
    char json[256], want[256];
    struct cfg *cfg;

    (void)state;
    for (size_t i = 0; bad[i]; i++) {
        (void)snprintf(json, sizeof(json), "{\"api\":{\"csr_field\":\"%s\"}}", bad[i]);
        (void)snprintf(want, sizeof(want), "t.json: api.csr_field: %s",
                       *bad[i] ? "must be a dotted field path such as \"certificate.csr\""
                               : "must not be empty");
        load_fails(json, want);
    }
    cfg = load_ok("{\"api\":{\"csr_field\":\"a.b.c.d\",\"provisioning_field\":\"a.c\"}}");
    cfg_free(cfg);
    load_fails("{\"api\":{\"csr_field\":\"x\",\"provisioning_field\":\"x\"}}",
               "t.json: api.provisioning_field: must not overlap api.csr_field");
    load_fails("{\"api\":{\"csr_field\":\"a.b\",\"provisioning_field\":\"a\"}}",
               "t.json: api.provisioning_field: must not overlap api.csr_field");
    load_fails("{\"api\":{\"provisioning_field\":\"certificate.csr.x\"}}",
               "t.json: api.provisioning_field: must not overlap api.csr_field");
}

static void test_poll_values(void **state)
{
    struct cfg *cfg;

    (void)state;
    cfg = load_ok("{\"poll\":{\"initial_s\":0.001,\"max_s\":0.001,\"timeout_s\":0.5}}");
    assert_true(cfg->poll_initial_s == 0.001);
    assert_true(cfg->poll_max_s == 0.001);
    assert_true(cfg->poll_timeout_s == 0.5);
    cfg_free(cfg);
    load_fails("{\"poll\":{\"initial_s\":0}}",
               "t.json: poll.initial_s: must be > 0 and at most 31536000");
    load_fails("{\"poll\":{\"max_s\":-1}}", "t.json: poll.max_s: must be > 0 and at most 31536000");
    load_fails("{\"poll\":{\"timeout_s\":0.0}}",
               "t.json: poll.timeout_s: must be > 0 and at most 31536000");
    load_fails("{\"poll\":{\"timeout_s\":1e9}}",
               "t.json: poll.timeout_s: must be > 0 and at most 31536000");
    load_fails("{\"poll\":{\"timeout_s\":1e999}}", "t.json: a number is out of range");
    /* initial <= max, also against a default */
    load_fails("{\"poll\":{\"initial_s\":10,\"max_s\":5}}",
               "t.json: poll.initial_s: must not exceed poll.max_s (10 > 5)");
    load_fails("{\"poll\":{\"max_s\":10}}",
               "t.json: poll.initial_s: must not exceed poll.max_s (30 > 10)");
    load_fails("{\"poll\":{\"initial_s\":700}}",
               "t.json: poll.initial_s: must not exceed poll.max_s (700 > 600)");
}

static void test_timeouts(void **state)
{
    struct cfg *cfg;

    (void)state;
    cfg = load_ok("{\"api\":{\"timeout_s\":0.5,\"connect_timeout_s\":0.25}}");
    assert_true(cfg->api_timeout_s == 0.5);
    assert_true(cfg->api_connect_timeout_s == 0.25);
    cfg_free(cfg);
    load_fails("{\"api\":{\"timeout_s\":10}}",
               "t.json: api.connect_timeout_s: must not exceed api.timeout_s (15 > 10)");
    load_fails("{\"api\":{\"timeout_s\":0}}",
               "t.json: api.timeout_s: must be > 0 and at most 31536000");
}

static void test_order_defaults(void **state)
{
    struct cfg *cfg;

    (void)state;
    cfg = load_ok("{\"order_defaults\":{}}");
    assert_string_equal(cfg->order_defaults, "{}");
    cfg_free(cfg);
    cfg = load_ok("{\"order_defaults\":{\"comments\":\"a/b \\\"c\\\"\"}}");
    assert_string_equal(cfg->order_defaults, "{\"comments\":\"a/b \\\"c\\\"\"}");
    cfg_free(cfg);
    load_fails("{\"order_defaults\":{\"credit_card\":{\"number\":\"4111111111111111\"}}}",
               "t.json: order_defaults.credit_card: card data does not belong in the "
               "configuration");
}

static void test_token_uri(void **state)
{
    struct cfg *cfg;

    (void)state;
    cfg = load_ok("{\"token\":{\"uri\":\"pkcs11:serial=0123;pin-source=file:/run/pin\"}}");
    assert_string_equal(cfg->token_uri, "pkcs11:serial=0123;pin-source=file:/run/pin");
    cfg_free(cfg);
    load_fails("{\"token\":{\"uri\":\"serial=0123\"}}", "t.json: token.uri: must be a pkcs11: URI");
}

static void test_json_errors(void **state)
{
    static const char nul[] = "{\"a\":\0}";
    struct cfg *cfg = NULL;
    char err[256];
    const char *path;

    (void)state;
    load_fails("{\n  \"api\": {\n    \"url\": \"https://x\",\n  }\n}",
               "t.json:4:3: invalid JSON: unexpected character");
    load_fails("{\"api\": {", "t.json:1:10: invalid JSON: unexpected end of input");
    load_fails("", "t.json:1:1: invalid JSON: unexpected end of input");
    load_fails("[]", "t.json: must contain a JSON object");
    load_fails("{} x", "t.json:1:4: invalid JSON: unexpected character");
    load_fails("{/* c */}", "t.json:1:2: invalid JSON: quoted object property name expected");
    assert_int_equal(cfg_load_mem(nul, sizeof(nul) - 1, NULL, &cfg, err, sizeof(err)), PA_E_CONFIG);
    assert_string_equal(err, "config: contains a NUL byte");
    /* through a file: the file name leads the message */
    path = write_file("bad.json", "{\n\"poll\": {\"max_s\": 1,}\n}\n", 0644);
    assert_int_equal(cfg_load(path, &cfg, err, sizeof(err)), PA_E_CONFIG);
    assert_null(cfg);
    assert_memory_equal(err, path, strlen(path));
    assert_string_equal(err + strlen(path), ":2:21: invalid JSON: unexpected character");
    /* NULL errbuf is fine */
    assert_int_equal(cfg_load_mem("[]", 2, NULL, &cfg, NULL, 0), PA_E_CONFIG);
}

/* ------------------------------------------------------------------------------------------ */
/* API key                                                                                    */

static struct cfg *cfg_with_key_file(const char *key_path)
{
    char json[1024];

    (void)snprintf(json, sizeof(json), "{\"api\":{\"key_file\":\"%s\"}}", key_path);
    return load_ok(json);
}

static void key_fails(const struct cfg *cfg, int want_r, const char *want_msg)
{
    struct secret *key = NULL;
    char err[1024] = "";
    int r = cfg_api_key(cfg, &key, err, sizeof(err));

    if (r != want_r || strcmp(err, want_msg) != 0)
        fail_msg("got %d \"%s\"\n  want %d \"%s\"", r, err, want_r, want_msg);
    assert_null(key);
    assert_null(strstr(err, "S3CRET"));
}

static void key_is(const struct cfg *cfg, const char *want)
{
    struct secret *key = NULL;
    char err[1024] = "";

    if (cfg_api_key(cfg, &key, err, sizeof(err)) != 0)
        fail_msg("cfg_api_key: %s", err);
    assert_string_equal(key->buf, want);
    assert_int_equal(key->len, strlen(want));
    secret_free(key);
}

static void test_api_key_file_permissions(void **state)
{
    const char *path = write_file("key", "S3CRET-KEY-0123\n", 0644);
    struct cfg *cfg = cfg_with_key_file(path);
    char want[2048];

    (void)state;
    (void)snprintf(want, sizeof(want),
                   "%s: api.key_file: %s is group- or world-accessible; run: chmod 600 %s",
                   PKIO_DEFAULT_CONFIG, path, path);
    key_fails(cfg, PA_E_CONFIG, want);
    assert_int_equal(chmod(path, 0640), 0);
    key_fails(cfg, PA_E_CONFIG, want);
    assert_int_equal(chmod(path, 0604), 0);
    key_fails(cfg, PA_E_CONFIG, want);
    assert_int_equal(chmod(path, 0610), 0);
    key_fails(cfg, PA_E_CONFIG, want);
    assert_int_equal(chmod(path, 0600), 0);
    key_is(cfg, "S3CRET-KEY-0123");
    assert_int_equal(chmod(path, 0400), 0);
    key_is(cfg, "S3CRET-KEY-0123");
    cfg_free(cfg);
}

static void test_api_key_file_content(void **state)
{
    const char *path;
    struct cfg *cfg;
    char want[2048], link[700], big[CFG_API_KEY_MAX + 8];

    (void)state;
    /* CRLF and no newline are fine */
    path = write_file("k1", "S3CRET-crlf\r\n", 0600);
    cfg = cfg_with_key_file(path);
    key_is(cfg, "S3CRET-crlf");
    cfg_free(cfg);
    path = write_file("k2", "S3CRET-nonl", 0600);
    cfg = cfg_with_key_file(path);
    key_is(cfg, "S3CRET-nonl");
    cfg_free(cfg);

    /* empty, two lines, control characters, too long: refused without echoing the key */
    (void)snprintf(want, sizeof(want), "%s", "");
    path = write_file("k3", "", 0600);
    cfg = cfg_with_key_file(path);
    (void)snprintf(want, sizeof(want),
                   "%s: api.key_file: %s must hold the key on one line (at most %d bytes) and be "
                   "accessible only by its owner",
                   PKIO_DEFAULT_CONFIG, path, CFG_API_KEY_MAX);
    key_fails(cfg, PA_E_CONFIG, want);
    cfg_free(cfg);
    path = write_file("k4", "S3CRET\nsecond\n", 0600);
    cfg = cfg_with_key_file(path);
    (void)snprintf(want, sizeof(want),
                   "%s: api.key_file: %s must hold the key on one line (at most %d bytes) and be "
                   "accessible only by its owner",
                   PKIO_DEFAULT_CONFIG, path, CFG_API_KEY_MAX);
    key_fails(cfg, PA_E_CONFIG, want);
    cfg_free(cfg);
    memset(big, 'K', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    path = write_file("k5", big, 0600);
    cfg = cfg_with_key_file(path);
    (void)snprintf(want, sizeof(want),
                   "%s: api.key_file: %s must hold the key on one line (at most %d bytes) and be "
                   "accessible only by its owner",
                   PKIO_DEFAULT_CONFIG, path, CFG_API_KEY_MAX);
    key_fails(cfg, PA_E_CONFIG, want);
    cfg_free(cfg);
    path = write_file("k6", "S3CRET\tX\n", 0600);
    cfg = cfg_with_key_file(path);
    (void)snprintf(want, sizeof(want),
                   "%s: api.key_file: the key in %s contains control characters",
                   PKIO_DEFAULT_CONFIG, path);
    key_fails(cfg, PA_E_CONFIG, want);
    cfg_free(cfg);

    /* not a regular file: directory, symbolic link */
    cfg = cfg_with_key_file(tmpdir);
    (void)snprintf(want, sizeof(want), "%s: api.key_file: %s is not a regular file",
                   PKIO_DEFAULT_CONFIG, tmpdir);
    key_fails(cfg, PA_E_CONFIG, want);
    cfg_free(cfg);
    path = write_file("k7", "S3CRET\n", 0600);
    (void)snprintf(link, sizeof(link), "%s/link", tmpdir);
    assert_int_equal(symlink(path, link), 0);
    cfg = cfg_with_key_file(link);
    (void)snprintf(want, sizeof(want),
                   "%s: api.key_file: %s is not a regular file (symbolic links are refused)",
                   PKIO_DEFAULT_CONFIG, link);
    key_fails(cfg, PA_E_CONFIG, want);
    cfg_free(cfg);

    /* missing */
    (void)snprintf(link, sizeof(link), "%s/missing", tmpdir);
    cfg = cfg_with_key_file(link);
    (void)snprintf(want, sizeof(want), "%s: api.key_file: cannot use %s: No such file or directory",
                   PKIO_DEFAULT_CONFIG, link);
    key_fails(cfg, PA_E_CONFIG, want);
    cfg_free(cfg);
}

static void test_api_key_config_path_in_message(void **state)
{
    const char *key = write_file("k8", "S3CRET\n", 0644);
    char json[1024], want[2048], err[256] = "";
    const char *cpath;
    struct cfg *cfg = NULL;

    (void)state;
    (void)snprintf(json, sizeof(json), "{\"api\":{\"key_file\":\"%s\"}}", key);
    cpath = write_file("withkey.json", json, 0644);
    assert_int_equal(cfg_load(cpath, &cfg, err, sizeof(err)), 0);
    (void)snprintf(want, sizeof(want),
                   "%s: api.key_file: %s is group- or world-accessible; run: chmod 600 %s", cpath,
                   key, key);
    key_fails(cfg, PA_E_CONFIG, want);
    cfg_free(cfg);
}

static void test_api_key_env(void **state)
{
    const char *path = write_file("k9", "S3CRET-FROM-FILE\n", 0600);
    struct cfg *cfg = cfg_with_key_file(path);
    struct cfg *nokey = load_ok("{}");
    char want[1024];

    (void)state;
    /* no source at all */
    (void)snprintf(want, sizeof(want),
                   "no API key: set api.key_file in %s or PKIO_AGENT_API_KEY in the environment",
                   PKIO_DEFAULT_CONFIG);
    key_fails(nokey, PA_E_CONFIG, want);
    key_is(cfg, "S3CRET-FROM-FILE");
    /* the environment wins over the file, and needs no file */
    assert_int_equal(setenv(CFG_API_KEY_ENV, "S3CRET-FROM-ENV", 1), 0);
    key_is(cfg, "S3CRET-FROM-ENV");
    key_is(nokey, "S3CRET-FROM-ENV");
    /* even when the file would be refused */
    assert_int_equal(chmod(path, 0644), 0);
    key_is(cfg, "S3CRET-FROM-ENV");
    assert_int_equal(chmod(path, 0600), 0);
    /* trailing newline trimmed */
    assert_int_equal(setenv(CFG_API_KEY_ENV, "S3CRET-NL\r\n", 1), 0);
    key_is(cfg, "S3CRET-NL");
    /* control characters refused */
    assert_int_equal(setenv(CFG_API_KEY_ENV, "S3CRET\r\nX-Evil: 1", 1), 0);
    key_fails(cfg, PA_E_CONFIG, "PKIO_AGENT_API_KEY: contains control characters");
    /* only a line ending: refused */
    assert_int_equal(setenv(CFG_API_KEY_ENV, "\n", 1), 0);
    key_fails(cfg, PA_E_CONFIG, "PKIO_AGENT_API_KEY: empty or longer than 1024 bytes");
    /* empty: as if unset, the file is used */
    assert_int_equal(setenv(CFG_API_KEY_ENV, "", 1), 0);
    key_is(cfg, "S3CRET-FROM-FILE");
    unsetenv(CFG_API_KEY_ENV);
    cfg_free(cfg);
    cfg_free(nokey);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_missing_explicit_file),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_dotted_keys),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_bad_types),
        cmocka_unit_test(test_https_only),
        cmocka_unit_test(test_product),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_poll_values),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_order_defaults),
        cmocka_unit_test(test_token_uri),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_api_key_file_permissions),
        cmocka_unit_test(test_api_key_file_content),
        cmocka_unit_test(test_api_key_config_path_in_message),
        cmocka_unit_test(test_api_key_env),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
