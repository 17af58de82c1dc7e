/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test_contents.c - what a token holds (pkcs11/contents.c). tok_contents_blank() is pure and
 * tested on its own; tok_token_contents() and tok_peek_contents() are tested on a private
 * SoftHSM2 token (skipped when SoftHSM2 is not installed) holding one certificate of every kind
 * the definition distinguishes: CKA_CERTIFICATE_CATEGORY authority / token user / unspecified /
 * absent, with and without basicConstraints CA:TRUE, and a v1 certificate without extensions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dlfcn.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <p11-kit/pkcs11.h>

#include "pa_err.h"
#include "secret.h"
#include "tok.h"

#define SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define LABEL          "contents"
#define USER_PIN       "1234"

/* ---- tok_contents_blank ---------------------------------------------------------------------- */

static void test_blank_empty(void **state)
{
    struct tok_contents c = {0};

    (void)state;
    assert_true(tok_contents_blank(&c));
    c.logged_in = true;
    assert_true(tok_contents_blank(&c));
}

static void test_blank_ca_certs_only(void **state)
{
    struct tok_contents c = {.ca_certs = 3};

    (void)state;
    assert_true(tok_contents_blank(&c));
}

static void test_not_blank(void **state)
{
    struct tok_contents base = {.ca_certs = 1, .logged_in = true};
    struct tok_contents c;

    (void)state;
    c = base;
    c.private_keys = 1;
    assert_false(tok_contents_blank(&c));
    c = base;
    c.public_keys = 1;
    assert_false(tok_contents_blank(&c));
    c = base;
    c.secret_keys = 1;
    assert_false(tok_contents_blank(&c));
    c = base;
    c.user_certs = 1;
    assert_false(tok_contents_blank(&c));
    c = (struct tok_contents){.user_certs = 1}; /* not logged in: a user cert is still seen */
    assert_false(tok_contents_blank(&c));
}

/* ---- a SoftHSM2 token with one object of each kind --------------------------------------------
 */

static char tmpdir[4096];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* A self-signed certificate: basicConstraints absent (bc < 0), CA:FALSE (0) or CA:TRUE (1). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, int bc)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();

    assert_non_null(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    X509_set_version(x, bc < 0 ? X509_VERSION_1 : X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, name);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    if (bc >= 0) {
        X509V3_CTX ctx;
        X509_EXTENSION *ext;

        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
                                  bc ? "critical,CA:TRUE" : "critical,CA:FALSE");
        assert_non_null(ext);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    return x;
}

/* Store a certificate object; category < 0: no CKA_CERTIFICATE_CATEGORY attribute. */
static void create_cert(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, X509 *x, long category)
{
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_CERTIFICATE_TYPE type = CKC_X_509;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG cat = (CK_ULONG)(category < 0 ? 0 : category);
    unsigned char *der = NULL, *subj = NULL;
    int der_len = i2d_X509(x, &der), subj_len = i2d_X509_NAME(X509_get_subject_name(x), &subj);
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_CERTIFICATE_TYPE, &type, sizeof(type)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &no, sizeof(no)},
        {CKA_SUBJECT, subj, (CK_ULONG)subj_len},
        {CKA_VALUE, der, (CK_ULONG)der_len},
        {CKA_CERTIFICATE_CATEGORY, &cat, sizeof(cat)},
    };
    CK_OBJECT_HANDLE h;

    assert_true(der_len > 0 && subj_len > 0);
    assert_int_equal(f->C_CreateObject(s, tmpl, category < 0 ? 6 : 7, &h), CKR_OK);
    OPENSSL_free(der);
    OPENSSL_free(subj);
}

/* A private secret key and a public data object (data objects never count). */
static void create_secret_and_data(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s)
{
    CK_OBJECT_CLASS sec = CKO_SECRET_KEY, data = CKO_DATA;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    unsigned char v[16] = {1, 2, 3};
    CK_ATTRIBUTE key[] = {
        {CKA_CLASS, &sec, sizeof(sec)}, {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &yes, sizeof(yes)}, {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_VALUE, v, sizeof(v)},
    };
    CK_ATTRIBUTE obj[] = {
        {CKA_CLASS, &data, sizeof(data)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &no, sizeof(no)},
        {CKA_VALUE, v, sizeof(v)},
    };
    CK_OBJECT_HANDLE h;

    assert_int_equal(f->C_CreateObject(s, key, 5, &h), CKR_OK);
    assert_int_equal(f->C_CreateObject(s, obj, 4, &h), CKR_OK);
}

/* The slot of our token (the one labelled LABEL). */
static CK_SLOT_ID our_slot(CK_FUNCTION_LIST *f)
{
    CK_SLOT_ID slots[16];
    CK_ULONG n = 16;

    assert_int_equal(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;

        if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
            memcmp(ti.label, LABEL, strlen(LABEL)) == 0 && ti.label[strlen(LABEL)] == ' ')
            return slots[i];
    }
    fail_msg("token %s not found", LABEL);
    return 0;
}

/* Fill the token through the module directly (the token layer only writes what it writes). */
static void fill_token(void)
{
    CK_C_GetFunctionList get;
    CK_FUNCTION_LIST *f = NULL;
    CK_SESSION_HANDLE s;
    CK_UTF8CHAR user_pin[] = USER_PIN;
    EVP_PKEY *key = EVP_RSA_gen(2048);
    void *dl = dlopen(SOFTHSM_MODULE, RTLD_NOW | RTLD_LOCAL);
    struct {
        const char *cn;
        int bc;
        long category;
    } certs[] = {
        {"authority, not CA:TRUE", 0, 2}, /* CA: the category says so */
        {"no category, CA:TRUE", 1, -1},  /* CA: basicConstraints */
        {"unspecified, CA:TRUE", 1, 0},   /* CA: basicConstraints */
        {"token user, CA:TRUE", 1, 1},    /* user: the category says so */
        {"other entity, CA:TRUE", 1, 3},  /* user: the category says so */
        {"no category, CA:FALSE", 0, -1}, /* user */
        {"v1, no extensions", -1, -1},    /* user: nothing says CA */
    };

    assert_non_null(dl);
    assert_non_null(key);
    *(void **)&get = dlsym(dl, "C_GetFunctionList");
    assert_non_null(get);
    assert_int_equal(get(&f), CKR_OK);
    assert_int_equal(f->C_Initialize(NULL), CKR_OK);
    assert_int_equal(
        f->C_OpenSession(our_slot(f), CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK);
    assert_int_equal(f->C_Login(s, CKU_USER, user_pin, sizeof(user_pin) - 1), CKR_OK);
    for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++) {
        X509 *x = make_cert(key, certs[i].cn, certs[i].bc);

        create_cert(f, s, x, certs[i].category);
        X509_free(x);
    }
    create_secret_and_data(f, s);
    f->C_CloseSession(s);
    f->C_Finalize(NULL);
    EVP_PKEY_free(key);
    /* dl stays open: the token layer dlopens the same module again. */
}

static int softhsm_setup(void **state)
{
    char conf[4200], cmd[4400];
    FILE *fp;

    (void)state;
    if (access(SOFTHSM_MODULE, R_OK) != 0 || system("command -v softhsm2-util >/dev/null") != 0)
        return 0; /* the test skips itself */
    snprintf(tmpdir, sizeof(tmpdir), "%s/pkio-contents-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(conf, sizeof(conf), "%s/tokens", tmpdir);
    if (mkdir(conf, 0700) < 0)
        return -1;
    snprintf(conf, sizeof(conf), "%s/softhsm2.conf", tmpdir);
    fp = fopen(conf, "w");
    if (!fp)
        return -1;
    fprintf(fp, "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n",
            tmpdir);
    fclose(fp);
    setenv("SOFTHSM2_CONF", conf, 1);
    snprintf(cmd, sizeof(cmd),
             "softhsm2-util --init-token --free --label %s --so-pin 12345678 --pin %s "
             ">/dev/null 2>&1",
             LABEL, USER_PIN);
    if (system(cmd) != 0)
        return -1;
    fill_token();
    return 0;
}

static int softhsm_teardown(void **state)
{
    (void)state;
    if (tmpdir[0])
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static void assert_counts(const struct tok_contents *c, unsigned priv, unsigned pub, unsigned sec,
                          unsigned user, unsigned ca, bool logged_in)
{
    if (c->private_keys != priv || c->public_keys != pub || c->secret_keys != sec ||
        c->user_certs != user || c->ca_certs != ca || c->logged_in != logged_in)
        fail_msg("counted priv %u pub %u secret %u user %u ca %u logged_in %d; expected "
                 "%u %u %u %u %u %d",
                 c->private_keys, c->public_keys, c->secret_keys, c->user_certs, c->ca_certs,
                 c->logged_in, priv, pub, sec, user, ca, logged_in);
}

static void test_contents_on_softhsm(void **state)
{
    struct tok_ctx *ctx = NULL;
    struct tok_token *tok = NULL;
    struct tok_uri u = {0};
    char label[] = LABEL;
    struct tok_info info;
    struct tok_contents c;
    struct secret *pin = NULL;
    unsigned char id[TOK_ID_MAX];
    size_t id_len = 0;

    (void)state;
    if (!tmpdir[0])
        skip();
    assert_int_equal(tok_open(SOFTHSM_MODULE, &ctx), 0);
    u.token = label;
    assert_int_equal(tok_select(ctx, &u, &tok, NULL, NULL), 0);
    assert_int_equal(tok_token_info(tok, &info), 0);
    /* Without login: the private secret key is hidden; 3 CA and 4 user certificates. */
    assert_int_equal(tok_token_contents(tok, &c), 0);
    assert_counts(&c, 0, 0, 0, 4, 3, false);
    assert_false(tok_contents_blank(&c));
    assert_int_equal(tok_peek_contents(ctx, &info, &c), 0);
    assert_counts(&c, 0, 0, 0, 4, 3, false);
    /* Logged in: the secret key too; then a key pair of our own. */
    assert_int_equal(secret_from_mem(USER_PIN, strlen(USER_PIN), &pin), 0);
    assert_int_equal(tok_login(tok, pin), 0);
    assert_int_equal(tok_token_contents(tok, &c), 0);
    assert_counts(&c, 0, 0, 1, 4, 3, true);
    assert_int_equal(tok_keygen(tok, TOK_KEY_EC_P256, "contents-key", id, &id_len), 0);
    assert_int_equal(tok_token_contents(tok, &c), 0);
    assert_counts(&c, 1, 1, 1, 4, 3, true);
    /* Peeking at a token that is not there. */
    snprintf(info.serial, sizeof(info.serial), "%s", "no-such-serial");
    assert_int_equal(tok_peek_contents(ctx, &info, &c), PA_E_TOKEN_NOT_FOUND);
    secret_free(pin);
    tok_token_close(tok);
    tok_close(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blank_empty),
        cmocka_unit_test(test_blank_ca_certs_only),
        cmocka_unit_test(test_not_blank),
        cmocka_unit_test_setup_teardown(test_contents_on_softhsm, softhsm_setup, softhsm_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
