/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test_csr.c - the CSR subject parser and builder, csr_build/csr_check_pem with in-memory
 * OpenSSL keys (csr_build takes any EVP_PKEY, so no token is needed), and csr_spki_sha256.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "csr.h"
#include "pa_err.h"

/*
 * Fixed keys for csr_spki_sha256. The expected values were computed with
 *   openssl pkey -in KEY -pubout -outform DER | sha256sum
 * (OpenSSL 3.0, Debian 12).
 */
static const char fixed_ec_key[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgp6NCU64O2IgK4J/T\n"
    "xvEgQWb8Uz1FAO79kkjO7Q2wBTShRANCAASlDrQRTWu70CR1Yw8MOlAH36E1d5pA\n"
    "Uo4WKq3qnW1yqk4ltYnO372jaXJQOm2i2xCh+s3StRyDE49GRAmkYIgN\n"
    "-----END PRIVATE KEY-----\n";
static const char fixed_ec_spki_sha256[] =
    "d94bfef68b06c426ba2b3c63ee582429b2cdcc88761b282dc44ffec596a8aa10";

static const char fixed_rsa_pub[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAgt1XEQlJNS2ATEnzCIZ3\n"
    "/rlJNV2Wlj/nIRXigoAJGLLnjZJZ44UlOX3eT0mzX1FjieCu/ebFg+e+2TOejN8I\n"
    "Jiy5rKHCRMVfWhKsFpjUXFysbTg4+UBMY9Mv2KNNiYT2xzKkTUpHs6gB+oVuUxQu\n"
    "CnV/jg7453p5cRARTWMVU9mGofS2hXDE7NwAM05As9gwaF9SvRKJjgP0JeA0t/tP\n"
    "q8YPtsj0o4nAwnVLgFHbnE5K1f0D1QXg0tVoP1Robe8Im5AZdg4QCeHBboSrqda7\n"
    "C8X8Lr98wvplf73X/59oS+BuMZjW18BdifgHcQzi/F8/RTEukBBkV/3gC/TSzoVt\n"
    "HwIDAQAB\n"
    "-----END PUBLIC KEY-----\n";
static const char fixed_rsa_spki_sha256[] =
    "8a2d4c294ccfa4f823a8f40f95aaebb0cce29fe7020083db330e883d59a3363e";

/* Keys shared by the tests: generated once (RSA generation is the slow part). */
struct keys {
    EVP_PKEY *rsa;     /* private, RSA 2048 */
    EVP_PKEY *rsa_pub; /* public half of rsa only, as read from a token */
    EVP_PKEY *ec;      /* private, P-256 */
    EVP_PKEY *ec_pub;
    EVP_PKEY *fixed_ec;  /* private, P-256, from fixed_ec_key */
    EVP_PKEY *fixed_rsa; /* public, from fixed_rsa_pub */
};

static struct keys K;

static EVP_PKEY *pem_key(const char *pem, bool pub)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = NULL;

    if (!bio)
        return NULL;
    k = pub ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL)
            : PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    return k;
}

/* The public half of k as a new key without private parts; caller frees. */
static EVP_PKEY *public_only(EVP_PKEY *k)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    EVP_PKEY *pub = NULL;
    int len = i2d_PUBKEY(k, &der);

    if (len <= 0)
        return NULL;
    p = der;
    pub = d2i_PUBKEY(NULL, &p, len);
    OPENSSL_free(der);
    return pub;
}

static int keys_setup(void **state)
{
    (void)state;
    K.rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    K.ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    K.fixed_ec = pem_key(fixed_ec_key, false);
    K.fixed_rsa = pem_key(fixed_rsa_pub, true);
    if (!K.rsa || !K.ec || !K.fixed_ec || !K.fixed_rsa)
        return -1;
    K.rsa_pub = public_only(K.rsa);
    K.ec_pub = public_only(K.ec);
    return K.rsa_pub && K.ec_pub ? 0 : -1;
}

static int keys_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(K.rsa);
    EVP_PKEY_free(K.rsa_pub);
    EVP_PKEY_free(K.ec);
    EVP_PKEY_free(K.ec_pub);
    EVP_PKEY_free(K.fixed_ec);
    EVP_PKEY_free(K.fixed_rsa);
    memset(&K, 0, sizeof(K));
    return 0;
}

/* ---- csr_subject_parse ---------------------------------------------------------------- */

static void test_subject_full(void **state)
{
    struct csr_subject s;
    char err[256] = "";

    (void)state;
    assert_int_equal(
        csr_subject_parse("/CN=Jan de Vries/GN=Jan/SN=de Vries/C=NL", &s, err, sizeof(err)), 0);
    assert_string_equal(s.cn, "Jan de Vries");
    assert_string_equal(s.given_name, "Jan");
    assert_string_equal(s.surname, "de Vries");
    assert_string_equal(s.country, "NL");
    assert_string_equal(err, "");
    csr_subject_clear(&s);
    assert_null(s.cn);
}

static void test_subject_cn_only(void **state)
{
    struct csr_subject s;

    (void)state;
    assert_int_equal(csr_subject_parse("/CN=Jan", &s, NULL, 0), 0);
    assert_string_equal(s.cn, "Jan");
    assert_null(s.given_name);
    assert_null(s.surname);
    assert_null(s.country);
    csr_subject_clear(&s);
}

static void test_subject_long_names(void **state)
{
    struct csr_subject s;

    (void)state;
    assert_int_equal(
        csr_subject_parse("/C=BE/surname=Peeters/givenName=An/CN=An Peeters", &s, NULL, 0), 0);
    assert_string_equal(s.cn, "An Peeters");
    assert_string_equal(s.given_name, "An");
    assert_string_equal(s.surname, "Peeters");
    assert_string_equal(s.country, "BE");
    csr_subject_clear(&s);
}

static void test_subject_escape_slash(void **state)
{
    struct csr_subject s;

    (void)state;
    assert_int_equal(csr_subject_parse("/CN=ACME\\/Sales/SN=a\\\\b", &s, NULL, 0), 0);
    assert_string_equal(s.cn, "ACME/Sales");
    assert_string_equal(s.surname, "a\\b");
    csr_subject_clear(&s);

    /* A backslash at the very end has nothing to escape and is kept. */
    assert_int_equal(csr_subject_parse("/CN=x\\", &s, NULL, 0), 0);
    assert_string_equal(s.cn, "x\\");
    csr_subject_clear(&s);
}

static void test_subject_equals_in_value(void **state)
{
    struct csr_subject s;

    (void)state;
    assert_int_equal(csr_subject_parse("/CN=a=b", &s, NULL, 0), 0);
    assert_string_equal(s.cn, "a=b");
    csr_subject_clear(&s);
}

static void test_subject_utf8(void **state)
{
    struct csr_subject s;

    (void)state;
    assert_int_equal(csr_subject_parse("/CN=J\xc3\xbcrgen M\xc3\xbcller", &s, NULL, 0), 0);
    assert_string_equal(s.cn, "J\xc3\xbcrgen M\xc3\xbcller");
    csr_subject_clear(&s);
}

static void test_subject_cn_length(void **state)
{
    char dn[80], err[256];
    struct csr_subject s;

    (void)state;
    memcpy(dn, "/CN=", 4);
    memset(dn + 4, 'x', 64);
    dn[68] = '\0';
    assert_int_equal(csr_subject_parse(dn, &s, err, sizeof(err)), 0); /* ub-common-name */
    assert_int_equal(strlen(s.cn), 64);
    csr_subject_clear(&s);
    dn[68] = 'x';
    dn[69] = '\0';
    assert_int_equal(csr_subject_parse(dn, &s, err, sizeof(err)), PA_E_USAGE);
    assert_string_equal(err, "subject: CN is empty, too long, not UTF-8 or has control characters");
}

/* dn must be refused with PA_E_USAGE and this message; *ret stays untouched. */
static void subject_bad(const char *dn, const char *msg)
{
    struct csr_subject s, before;
    char err[256] = "";
    int r;

    memset(&s, 0x5a, sizeof(s));
    memcpy(&before, &s, sizeof(s));
    r = csr_subject_parse(dn, &s, err, sizeof(err));
    if (r != PA_E_USAGE || strcmp(err, msg) != 0)
        print_error("csr_subject_parse(\"%s\") = %d \"%s\"\n", dn, r, err);
    assert_int_equal(r, PA_E_USAGE);
    assert_string_equal(err, msg);
    assert_memory_equal(&s, &before, sizeof(s));
}

static void test_subject_no_cn(void **state)
{
    (void)state;
    subject_bad("/GN=Jan/SN=de Vries/C=NL", "subject needs exactly one CN");
}

static void test_subject_two_cns(void **state)
{
    (void)state;
    subject_bad("/CN=Jan/CN=Piet", "subject: CN given twice");
    subject_bad("/CN=Jan/C=NL/C=BE", "subject: C given twice");
    subject_bad("/CN=Jan/GN=a/givenName=b", "subject: givenName given twice");
    subject_bad("/CN=Jan/SN=a/surname=b", "subject: surname given twice");
}

static void test_subject_unknown_key(void **state)
{
    (void)state;
    subject_bad("/CN=Jan/O=ACME", "subject: 'O' is not allowed (only CN, GN, SN and C)");
    subject_bad("/cn=Jan", "subject: 'cn' is not allowed (only CN, GN, SN and C)");
    subject_bad("/CN=Jan/emailAddress=jan@example.nl",
                "subject: 'emailAddress' is not allowed (only CN, GN, SN and C)");
    subject_bad("/CN=Jan/=x", "subject: '' is not allowed (only CN, GN, SN and C)");
}

static void test_subject_bad_country(void **state)
{
    (void)state;
    subject_bad("/CN=Jan/C=NLD", "subject: C must be two letters");
    subject_bad("/CN=Jan/C=N1", "subject: C must be two letters");
    subject_bad("/CN=Jan/C=N", "subject: C must be two letters");
    subject_bad("/CN=Jan/C= N", "subject: C must be two letters");
    subject_bad("/CN=Jan/C=", "subject: C is empty, too long, not UTF-8 or has control characters");
}

static void test_subject_control_chars(void **state)
{
    (void)state;
    subject_bad("/CN=Jan\tde Vries",
                "subject: CN is empty, too long, not UTF-8 or has control characters");
    subject_bad("/CN=Jan\nde Vries",
                "subject: CN is empty, too long, not UTF-8 or has control characters");
    subject_bad("/CN=Jan/SN=de\x7fVries",
                "subject: SN is empty, too long, not UTF-8 or has control characters");
    subject_bad("/CN=Jan/GN=\x1b[0m",
                "subject: GN is empty, too long, not UTF-8 or has control characters");
    subject_bad("/CN=", "subject: CN is empty, too long, not UTF-8 or has control characters");
}

static void test_subject_bad_utf8(void **state)
{
    (void)state;
    /* Refused before the token is touched, not later by csr_build. */
    subject_bad("/CN=J\xc3", "subject: CN is empty, too long, not UTF-8 or has control characters");
    subject_bad("/CN=Jan/SN=\xc0\xaf",
                "subject: SN is empty, too long, not UTF-8 or has control characters");
    subject_bad("/CN=Jan/GN=\xed\xa0\x80",
                "subject: GN is empty, too long, not UTF-8 or has control characters");
    subject_bad("/CN=\xf4\x90\x80\x80",
                "subject: CN is empty, too long, not UTF-8 or has control characters");
    subject_bad("/CN=caf\xe9",
                "subject: CN is empty, too long, not UTF-8 or has control characters");
}

static void test_subject_bad_shape(void **state)
{
    char *big;

    (void)state;
    subject_bad("", "subject must look like CN=First Last,C=NL or /C=NL/CN=First Last");
    /* "CN=Jan" is RFC 4514 now (see the rfc4514 tests); a bare name is neither form. */
    subject_bad("Jan", "subject: 'Jan' is not KEY=VALUE (write a ',' inside a value as '\\,')");
    subject_bad("/", "subject: '' is not KEY=VALUE");
    subject_bad("/CN", "subject: 'CN' is not KEY=VALUE");
    subject_bad("/CN=Jan/", "subject: '' is not KEY=VALUE");
    subject_bad("/CN=Jan//C=NL", "subject: '' is not KEY=VALUE");

    big = malloc(1100);
    assert_non_null(big);
    memcpy(big, "/CN=Jan/SN=", 11);
    memset(big + 11, 'x', 1025 - 11);
    big[1025] = '\0';
    subject_bad(big, "subject must look like CN=First Last,C=NL or /C=NL/CN=First Last");
    free(big);
}

/* ---- csr_subject_person --------------------------------------------------------------- */

static void test_person(void **state)
{
    struct csr_subject s;
    char err[256] = "";

    (void)state;
    assert_int_equal(csr_subject_person("Jan", "de Vries", "nl", &s, err, sizeof(err)), 0);
    assert_string_equal(s.cn, "Jan de Vries");
    assert_string_equal(s.given_name, "Jan");
    assert_string_equal(s.surname, "de Vries");
    assert_string_equal(s.country, "NL");
    csr_subject_clear(&s);

    assert_int_equal(csr_subject_person("An", "Peeters", NULL, &s, err, sizeof(err)), 0);
    assert_string_equal(s.cn, "An Peeters");
    assert_null(s.country);
    csr_subject_clear(&s);

    assert_int_equal(csr_subject_person("An", "Peeters", "", &s, err, sizeof(err)), 0);
    assert_null(s.country);
    csr_subject_clear(&s);
}

static void person_bad(const char *first, const char *last, const char *country, const char *msg)
{
    struct csr_subject s, before;
    char err[256] = "";

    memset(&s, 0x5a, sizeof(s));
    memcpy(&before, &s, sizeof(s));
    assert_int_equal(csr_subject_person(first, last, country, &s, err, sizeof(err)), PA_E_REQUEST);
    assert_string_equal(err, msg);
    assert_memory_equal(&s, &before, sizeof(s));
}

static void test_person_bad(void **state)
{
    struct csr_subject s;
    char longname[62];

    (void)state;
    person_bad(NULL, "de Vries", "NL",
               "certificate.individual needs first_name and last_name for the CSR subject");
    person_bad("Jan", "", "NL",
               "certificate.individual needs first_name and last_name for the CSR subject");
    person_bad("Jan", "de Vries", "NLD", "certificate.individual.country must be two letters");
    person_bad("Jan", "de Vries", "1L", "certificate.individual.country must be two letters");
    person_bad("Jan", "M\xfcller", "DE",
               "subject: CN is empty, too long, not UTF-8 or has control characters");
    person_bad("Jan\r", "de Vries", "NL",
               "subject: CN is empty, too long, not UTF-8 or has control characters");
    /* "Jan " + 60 characters is 64, the limit of a CN; one more is over it. */
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    longname[60] = '\0';
    assert_int_equal(csr_subject_person("Jan", longname, NULL, &s, NULL, 0), 0);
    assert_int_equal(strlen(s.cn), 64);
    csr_subject_clear(&s);
    longname[60] = 'x';
    person_bad("Jan", longname, NULL,
               "subject: CN is empty, too long, not UTF-8 or has control characters");
}

/* ---- csr_build ------------------------------------------------------------------------ */

static X509_REQ *parse_req(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509_REQ *req;

    assert_non_null(bio);
    req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(req);
    return req;
}

/* The single value of nid in name as text, or NULL; fails if nid appears more than once. */
static char *name_value(const X509_NAME *name, int nid)
{
    int i = X509_NAME_get_index_by_NID(name, nid, -1);
    const ASN1_STRING *v;
    unsigned char *utf8 = NULL;
    char *s;
    int len;

    if (i < 0)
        return NULL;
    assert_true(X509_NAME_get_index_by_NID(name, nid, i) < 0);
    v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    len = ASN1_STRING_to_UTF8(&utf8, v);
    assert_true(len >= 0);
    s = strndup((const char *)utf8, (size_t)len);
    OPENSSL_free(utf8);
    return s;
}

static int name_type(const X509_NAME *name, int nid)
{
    int i = X509_NAME_get_index_by_NID(name, nid, -1);

    assert_true(i >= 0);
    return ASN1_STRING_type(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
}

/* Check what every CSR we hand out must be; returns the parsed request (caller frees). */
static X509_REQ *check_common(const char *pem, EVP_PKEY *pub, const struct csr_subject *subj)
{
    X509_REQ *req = parse_req(pem);
    const X509_NAME *name = X509_REQ_get_subject_name(req);
    char *v;

    assert_int_equal(X509_REQ_get_version(req), 0);
    assert_int_equal(X509_REQ_verify(req, pub), 1);
    assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), pub), 1);
    assert_int_equal(X509_REQ_get_attr_count(req), 0);
    v = name_value(name, NID_commonName); /* exactly one CN */
    assert_non_null(v);
    assert_string_equal(v, subj->cn);
    free(v);
    assert_int_equal(name_type(name, NID_commonName), V_ASN1_UTF8STRING);
    v = name_value(name, NID_givenName);
    if (subj->given_name)
        assert_string_equal(v, subj->given_name);
    else
        assert_null(v);
    free(v);
    v = name_value(name, NID_surname);
    if (subj->surname)
        assert_string_equal(v, subj->surname);
    else
        assert_null(v);
    free(v);
    v = name_value(name, NID_countryName);
    if (subj->country) {
        assert_string_equal(v, subj->country);
        assert_int_equal(name_type(name, NID_countryName), V_ASN1_PRINTABLESTRING);
    } else {
        assert_null(v);
    }
    free(v);
    assert_int_equal(X509_NAME_entry_count(name),
                     1 + !!subj->given_name + !!subj->surname + !!subj->country);
    assert_int_equal(csr_check_pem(pem, pub, NULL, 0), 0);
    return req;
}

static struct csr_subject person_subject(void)
{
    struct csr_subject s;

    assert_int_equal(csr_subject_person("Jan", "de Vries", "NL", &s, NULL, 0), 0);
    return s;
}

static void test_build_rsa_pkcs1(void **state)
{
    struct csr_subject subj = person_subject();
    char *pem = NULL, err[256] = "";
    X509_REQ *req;

    (void)state;
    assert_int_equal(csr_build(K.rsa, K.rsa_pub, &subj, false, &pem, err, sizeof(err)), 0);
    assert_non_null(pem);
    assert_non_null(strstr(pem, "-----BEGIN CERTIFICATE REQUEST-----\n"));
    req = check_common(pem, K.rsa_pub, &subj);
    assert_int_equal(X509_REQ_get_signature_nid(req), NID_sha256WithRSAEncryption);
    X509_REQ_free(req);
    free(pem);
    csr_subject_clear(&subj);
}

static void test_build_rsa_pss(void **state)
{
    struct csr_subject subj = person_subject();
    char *pem = NULL, err[256] = "";
    const X509_ALGOR *alg = NULL, *mgf_md = NULL;
    X509_ALGOR *mgf_md_owned = NULL;
    RSA_PSS_PARAMS *pss;
    X509_REQ *req;

    (void)state;
    assert_int_equal(csr_build(K.rsa, K.rsa_pub, &subj, true, &pem, err, sizeof(err)), 0);
    req = check_common(pem, K.rsa_pub, &subj);
    assert_int_equal(X509_REQ_get_signature_nid(req), NID_rsassaPss);
    X509_REQ_get0_signature(req, NULL, &alg);
    assert_non_null(alg);
    pss = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(RSA_PSS_PARAMS), alg->parameter);
    assert_non_null(pss);
    /* hashAlgorithm SHA-256, MGF1 with SHA-256, salt length 32 (the digest length). */
    assert_non_null(pss->hashAlgorithm);
    assert_int_equal(OBJ_obj2nid(pss->hashAlgorithm->algorithm), NID_sha256);
    assert_non_null(pss->maskGenAlgorithm);
    assert_int_equal(OBJ_obj2nid(pss->maskGenAlgorithm->algorithm), NID_mgf1);
    mgf_md_owned =
        ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(X509_ALGOR), pss->maskGenAlgorithm->parameter);
    mgf_md = mgf_md_owned;
    assert_non_null(mgf_md);
    assert_int_equal(OBJ_obj2nid(mgf_md->algorithm), NID_sha256);
    assert_non_null(pss->saltLength);
    assert_int_equal(ASN1_INTEGER_get(pss->saltLength), 32);
    X509_ALGOR_free(mgf_md_owned);
    RSA_PSS_PARAMS_free(pss);
    X509_REQ_free(req);
    free(pem);
    csr_subject_clear(&subj);
}

static void test_build_ec(void **state)
{
    struct csr_subject subj = person_subject();
    char *pem = NULL, err[256] = "";
    X509_REQ *req;

    (void)state;
    assert_int_equal(csr_build(K.ec, K.ec_pub, &subj, false, &pem, err, sizeof(err)), 0);
    req = check_common(pem, K.ec_pub, &subj);
    assert_int_equal(X509_REQ_get_signature_nid(req), NID_ecdsa_with_SHA256);
    X509_REQ_free(req);
    free(pem);
    csr_subject_clear(&subj);
}

static void test_build_cn_only_utf8(void **state)
{
    struct csr_subject subj;
    char *pem = NULL;
    X509_REQ *req;

    (void)state;
    assert_int_equal(csr_subject_parse("/CN=J\xc3\xbcrgen M\xc3\xbcller", &subj, NULL, 0), 0);
    assert_int_equal(csr_build(K.ec, K.ec_pub, &subj, false, &pem, NULL, 0), 0);
    req = check_common(pem, K.ec_pub, &subj);
    X509_REQ_free(req);
    free(pem);
    csr_subject_clear(&subj);
}

static void test_build_wrong_token_pub(void **state)
{
    struct csr_subject subj = person_subject();
    char *pem = NULL, err[256] = "";

    (void)state;
    /* The token's public key is not the signing key's: refused, nothing handed out. */
    assert_int_equal(csr_build(K.rsa, K.fixed_rsa, &subj, false, &pem, err, sizeof(err)), PA_E_CSR);
    assert_null(pem);
    assert_string_equal(err, "CSR signature does not verify");
    assert_int_equal(csr_build(K.rsa, K.fixed_rsa, &subj, true, &pem, err, sizeof(err)), PA_E_CSR);
    assert_null(pem);
    assert_int_equal(csr_build(K.ec, K.fixed_ec, &subj, false, &pem, err, sizeof(err)), PA_E_CSR);
    assert_null(pem);
    assert_int_equal(ERR_peek_error(), 0); /* no stale OpenSSL errors left behind */
    csr_subject_clear(&subj);
}

static void test_build_pss_ec(void **state)
{
    struct csr_subject subj = person_subject();
    char *pem = NULL, err[256] = "";

    (void)state;
    assert_int_equal(csr_build(K.ec, K.ec_pub, &subj, true, &pem, err, sizeof(err)), PA_E_USAGE);
    assert_null(pem);
    assert_string_equal(err, "--pss needs an RSA key");
    csr_subject_clear(&subj);
}

/* ---- csr_check_pem -------------------------------------------------------------------- */

static void test_check_garbage(void **state)
{
    static const char *const garbage[] = {
        "",
        "hello",
        "-----BEGIN CERTIFICATE REQUEST-----\n@@@@\n-----END CERTIFICATE REQUEST-----\n",
        "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n",
        "-----BEGIN CERTIFICATE REQUEST-----\n",
    };
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        err[0] = '\0';
        assert_int_equal(csr_check_pem(garbage[i], NULL, err, sizeof(err)), PA_E_CSR);
        assert_string_equal(err, "not a PEM certificate request");
    }
    assert_int_equal(csr_check_pem(fixed_rsa_pub, NULL, err, sizeof(err)), PA_E_CSR);
    assert_int_equal(ERR_peek_error(), 0);
}

/* A request signed by key with md (NULL for the key's default), as PEM; caller frees. */
static char *make_req_pem(EVP_PKEY *key, const EVP_MD *md)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *pem;
    long len;

    assert_non_null(req);
    assert_non_null(name);
    assert_non_null(bio);
    assert_int_equal(X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                                (const unsigned char *)"Jan de Vries", -1, -1, 0),
                     1);
    assert_int_equal(X509_REQ_set_version(req, 0), 1);
    assert_int_equal(X509_REQ_set_subject_name(req, name), 1);
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    assert_true(X509_REQ_sign(req, key, md) > 0);
    assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
    len = BIO_get_mem_data(bio, &data);
    pem = strndup(data, (size_t)len);
    assert_non_null(pem);
    BIO_free(bio);
    X509_NAME_free(name);
    X509_REQ_free(req);
    return pem;
}

static void test_check_sha1(void **state)
{
    char *pem, err[256] = "";
    X509_REQ *req;

    (void)state;
    pem = make_req_pem(K.rsa, EVP_sha1());
    req = parse_req(pem);
    assert_int_equal(X509_REQ_get_signature_nid(req), NID_sha1WithRSAEncryption);
    assert_int_equal(X509_REQ_verify(req, K.rsa), 1); /* a valid request, only the hash is bad */
    X509_REQ_free(req);
    assert_int_equal(csr_check_pem(pem, NULL, err, sizeof(err)), PA_E_CSR);
    assert_string_equal(err, "CSR is not signed with SHA-256");
    assert_int_equal(csr_check_pem(pem, K.rsa_pub, err, sizeof(err)), PA_E_CSR);
    free(pem);

    pem = make_req_pem(K.ec, EVP_sha1());
    assert_int_equal(csr_check_pem(pem, K.ec_pub, err, sizeof(err)), PA_E_CSR);
    assert_string_equal(err, "CSR is not signed with SHA-256");
    free(pem);
}

static void test_check_sha384(void **state)
{
    char *pem, err[256] = "";

    (void)state;
    pem = make_req_pem(K.ec, EVP_sha384());
    assert_int_equal(csr_check_pem(pem, NULL, err, sizeof(err)), PA_E_CSR);
    assert_string_equal(err, "CSR is not signed with SHA-256");
    free(pem);
}

static void test_check_sha256_external(void **state)
{
    char *pem, err[256] = "";

    (void)state;
    /* A request made by other software is accepted when it is right. */
    pem = make_req_pem(K.ec, EVP_sha256());
    assert_int_equal(csr_check_pem(pem, NULL, err, sizeof(err)), 0);
    assert_int_equal(csr_check_pem(pem, K.ec_pub, err, sizeof(err)), 0);
    assert_int_equal(csr_check_pem(pem, K.fixed_ec, err, sizeof(err)), PA_E_CSR);
    assert_string_equal(err, "CSR public key is not the token key's");
    assert_int_equal(csr_check_pem(pem, K.rsa_pub, err, sizeof(err)), PA_E_CSR);
    assert_string_equal(err, "CSR public key is not the token key's");
    free(pem);
}

static void test_check_tampered(void **state)
{
    struct csr_subject subj = person_subject();
    char *pem = NULL, *data = NULL, *bad, err[256] = "";
    X509_NAME *other = X509_NAME_new();
    X509_REQ *req;
    BIO *bio;
    long len;

    (void)state;
    assert_int_equal(csr_build(K.rsa, K.rsa_pub, &subj, false, &pem, NULL, 0), 0);
    /* Change the subject after signing: the signature no longer covers it. */
    req = parse_req(pem);
    assert_non_null(other);
    assert_int_equal(X509_NAME_add_entry_by_NID(other, NID_commonName, MBSTRING_UTF8,
                                                (const unsigned char *)"Piet", -1, -1, 0),
                     1);
    assert_int_equal(X509_REQ_set_subject_name(req, other), 1);
    bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
    len = BIO_get_mem_data(bio, &data);
    bad = strndup(data, (size_t)len);
    assert_non_null(bad);
    assert_int_equal(csr_check_pem(bad, NULL, err, sizeof(err)), PA_E_CSR);
    assert_string_equal(err, "CSR signature does not verify");
    assert_int_equal(csr_check_pem(pem, NULL, err, sizeof(err)), 0);
    free(bad);
    BIO_free(bio);
    X509_NAME_free(other);
    X509_REQ_free(req);
    free(pem);
    csr_subject_clear(&subj);
}

/* ---- csr_spki_sha256 ------------------------------------------------------------------ */

static void test_spki_sha256_fixed(void **state)
{
    char hex[65];

    (void)state;
    memset(hex, 'Z', sizeof(hex));
    assert_int_equal(csr_spki_sha256(K.fixed_ec, hex), 0);
    assert_string_equal(hex, fixed_ec_spki_sha256);
    memset(hex, 'Z', sizeof(hex));
    assert_int_equal(csr_spki_sha256(K.fixed_rsa, hex), 0);
    assert_string_equal(hex, fixed_rsa_spki_sha256);
}

static void test_spki_sha256_private_equals_public(void **state)
{
    char a[65], b[65];

    (void)state;
    /* The hash covers the public key only: the private key and its public half agree. */
    assert_int_equal(csr_spki_sha256(K.rsa, a), 0);
    assert_int_equal(csr_spki_sha256(K.rsa_pub, b), 0);
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), 64);
    assert_int_equal(csr_spki_sha256(K.ec, a), 0);
    assert_int_equal(csr_spki_sha256(K.ec_pub, b), 0);
    assert_string_equal(a, b);
}

/* Re-encode pem's base64 body: new armour label, line width (0 = one line), line end. */
static char *reencode(const char *pem, const char *label, size_t width, const char *eol)
{
    const char *b = strstr(pem, "-----\n") + 6, *e = strstr(pem, "-----END");
    char body[8192], *out = malloc(16384);
    size_t n = 0, o = 0;

    assert_non_null(out);
    for (const char *p = b; p < e; p++)
        if (*p != '\n')
            body[n++] = *p;
    body[n] = '\0';
    if (label)
        o += (size_t)sprintf(out + o, "-----BEGIN %s-----%s", label, width ? eol : "");
    for (size_t i = 0; i < n; i += width ? width : n) {
        size_t k = width && n - i > width ? width : n - i;

        memcpy(out + o, body + i, k);
        o += k;
        if (width) {
            strcpy(out + o, eol);
            o += strlen(eol);
        }
    }
    if (label)
        o += (size_t)sprintf(out + o, "-----END %s-----", label);
    out[o] = '\0';
    return out;
}

static void test_text_spki_any_armour(void **state)
{
    struct csr_subject subj = person_subject();
    char *pem = NULL, err[256] = "", want[65], got[65], *t;

    (void)state;
    assert_int_equal(csr_build(K.rsa, K.rsa_pub, &subj, true, &pem, err, sizeof(err)), 0);
    assert_int_equal(csr_spki_sha256(K.rsa_pub, want), 0);
    assert_int_equal(csr_text_spki_sha256(pem, got), 0);
    assert_string_equal(got, want);
    /* the presentations a server may choose */
    t = reencode(pem, "NEW CERTIFICATE REQUEST", 76, "\r\n");
    assert_int_equal(csr_text_spki_sha256(t, got), 0);
    assert_string_equal(got, want);
    free(t);
    t = reencode(pem, "CERTIFICATE REQUEST", 0, "");
    assert_int_equal(csr_text_spki_sha256(t, got), 0);
    assert_string_equal(got, want);
    free(t);
    t = reencode(pem, NULL, 0, "");
    assert_int_equal(csr_text_spki_sha256(t, got), 0);
    assert_string_equal(got, want);
    free(t);
    t = reencode(pem, NULL, 64, " \n\t");
    assert_int_equal(csr_text_spki_sha256(t, got), 0);
    assert_string_equal(got, want);
    /* cut short, or not a CSR: unknown, never "another key" */
    t[strlen(t) / 2] = '\0';
    assert_int_equal(csr_text_spki_sha256(t, got), PA_E_CSR);
    free(t);
    assert_int_equal(csr_text_spki_sha256("(CSR not available)", got), PA_E_CSR);
    assert_int_equal(csr_text_spki_sha256("", got), PA_E_CSR);
    assert_int_equal(csr_text_spki_sha256("-----BEGIN CERTIFICATE REQUEST-----", got), PA_E_CSR);
    assert_int_equal(csr_text_spki_sha256(NULL, got), PA_E_CSR);
    free(pem);
    csr_subject_clear(&subj);
}

/* ---- csr_subject_parse: RFC 4514 ----------------------------------------------------- */

static bool eq_or_null(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool same_subject(const struct csr_subject *a, const struct csr_subject *b)
{
    return eq_or_null(a->cn, b->cn) && eq_or_null(a->given_name, b->given_name) &&
           eq_or_null(a->surname, b->surname) && eq_or_null(a->country, b->country);
}

/* Parse dn, which must succeed; the caller clears *s. */
static void subject_ok(const char *dn, struct csr_subject *s)
{
    char err[256] = "";
    int r = csr_subject_parse(dn, s, err, sizeof(err));

    if (r != 0)
        print_error("csr_subject_parse(\"%s\") = %d \"%s\"\n", dn, r, err);
    assert_int_equal(r, 0);
}

/* The CSR subject of s (built with the EC test key); caller frees. */
static X509_NAME *built_name(const struct csr_subject *s)
{
    char *pem = NULL, err[256] = "";
    X509_REQ *req;
    X509_NAME *name;

    assert_int_equal(csr_build(K.ec, K.ec_pub, s, false, &pem, err, sizeof(err)), 0);
    req = parse_req(pem);
    name = X509_NAME_dup(X509_REQ_get_subject_name(req));
    assert_non_null(name);
    X509_REQ_free(req);
    free(pem);
    return name;
}

/* name as OpenSSL prints it in RFC 2253/4514 form; caller frees. */
static char *rfc2253(const X509_NAME *name)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *s;
    long len;

    assert_non_null(bio);
    assert_true(X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0);
    len = BIO_get_mem_data(bio, &data);
    s = strndup(data, (size_t)len);
    BIO_free(bio);
    assert_non_null(s);
    return s;
}

static void test_rfc4514_full(void **state)
{
    struct csr_subject s;

    (void)state;
    subject_ok("CN=Jan de Vries,SN=de Vries,GN=Jan,C=NL", &s);
    assert_string_equal(s.cn, "Jan de Vries");
    assert_string_equal(s.given_name, "Jan");
    assert_string_equal(s.surname, "de Vries");
    assert_string_equal(s.country, "NL");
    csr_subject_clear(&s);

    subject_ok("CN=Jan", &s);
    assert_string_equal(s.cn, "Jan");
    assert_null(s.given_name);
    assert_null(s.surname);
    assert_null(s.country);
    csr_subject_clear(&s);
}

/* RFC 4514 lists the most specific RDN first: "CN=Jan,C=NL" is the DN the slash form writes
 * "/C=NL/CN=Jan". Both give the same X509_NAME, which OpenSSL prints back as we were given. */
static void test_rfc4514_order(void **state)
{
    struct csr_subject a, b, c;
    X509_NAME *na, *nb;
    char *text;

    (void)state;
    subject_ok("CN=Jan Jansen,SN=Jansen,GN=Jan,C=NL", &a);
    subject_ok("/C=NL/GN=Jan/SN=Jansen/CN=Jan Jansen", &b);
    subject_ok("C=NL,GN=Jan,SN=Jansen,CN=Jan Jansen", &c); /* any order: the same subject */
    assert_true(same_subject(&a, &b));
    assert_true(same_subject(&a, &c));
    na = built_name(&a);
    nb = built_name(&b);
    assert_int_equal(X509_NAME_cmp(na, nb), 0);
    /* The CSR's RDNs: C first, CN last (most specific); RFC 4514 prints them reversed. */
    assert_int_equal(OBJ_obj2nid(X509_NAME_ENTRY_get_object(X509_NAME_get_entry(na, 0))),
                     NID_countryName);
    assert_int_equal(OBJ_obj2nid(X509_NAME_ENTRY_get_object(X509_NAME_get_entry(na, 3))),
                     NID_commonName);
    text = rfc2253(na);
    assert_string_equal(text, "CN=Jan Jansen,SN=Jansen,GN=Jan,C=NL");
    free(text);
    X509_NAME_free(na);
    X509_NAME_free(nb);
    csr_subject_clear(&a);
    csr_subject_clear(&b);
    csr_subject_clear(&c);

    subject_ok("CN=Jan,C=NL", &a);
    subject_ok("/C=NL/CN=Jan", &b);
    na = built_name(&a);
    nb = built_name(&b);
    assert_int_equal(X509_NAME_cmp(na, nb), 0);
    X509_NAME_free(na);
    X509_NAME_free(nb);
    csr_subject_clear(&a);
    csr_subject_clear(&b);
}

static void test_rfc4514_escapes(void **state)
{
    struct csr_subject s;

    (void)state;
    subject_ok("CN=a\\,b\\+c\\\"d\\\\e\\<f\\>g\\;h\\=i", &s);
    assert_string_equal(s.cn, "a,b+c\"d\\e<f>g;h=i");
    csr_subject_clear(&s);

    /* A leading '#' or space and a trailing space, escaped; inner spaces and '#' as they are. */
    subject_ok("CN=\\#1 # x,SN=\\ de Vries\\ ", &s);
    assert_string_equal(s.cn, "#1 # x");
    assert_string_equal(s.surname, " de Vries ");
    csr_subject_clear(&s);

    /* '=' needs no escape inside a value; escaping it is allowed too. */
    subject_ok("CN=a=b\\=c", &s);
    assert_string_equal(s.cn, "a=b=c");
    csr_subject_clear(&s);

    /* Escaping a character that needs none (space, '#' inside the value) is harmless. */
    subject_ok("CN=Jan\\ de\\#Vries", &s);
    assert_string_equal(s.cn, "Jan de#Vries");
    csr_subject_clear(&s);

    /* A '/' is plain data in this form. */
    subject_ok("CN=ACME/Sales", &s);
    assert_string_equal(s.cn, "ACME/Sales");
    csr_subject_clear(&s);
}

static void test_rfc4514_hex_pairs(void **state)
{
    struct csr_subject s;

    (void)state;
    subject_ok("CN=\\4Aan \\4a\\61nsen", &s);
    assert_string_equal(s.cn, "Jan Jansen");
    csr_subject_clear(&s);

    /* Hex pairs make UTF-8 byte by byte; raw UTF-8 works as well. */
    subject_ok("CN=J\\C3\\BCrgen M\\c3\\bcller,SN=M\xc3\xbcller", &s);
    assert_string_equal(s.cn, "J\xc3\xbcrgen M\xc3\xbcller");
    assert_string_equal(s.surname, "M\xc3\xbcller");
    csr_subject_clear(&s);

    subject_ok("CN=\\2C\\2b\\5C\\20", &s); /* ",+\ " */
    assert_string_equal(s.cn, ",+\\ ");
    csr_subject_clear(&s);
}

static void test_rfc4514_types(void **state)
{
    struct csr_subject s;

    (void)state;
    /* Attribute types are case-insensitive; long names and OIDs are accepted. */
    subject_ok("cn=Jan de Vries,sn=de Vries,gn=Jan,c=NL", &s);
    assert_string_equal(s.cn, "Jan de Vries");
    assert_string_equal(s.surname, "de Vries");
    assert_string_equal(s.given_name, "Jan");
    assert_string_equal(s.country, "NL");
    csr_subject_clear(&s);

    subject_ok("commonName=Jan,SURNAME=V,givenname=J,countryName=nl", &s);
    assert_string_equal(s.cn, "Jan");
    assert_string_equal(s.surname, "V");
    assert_string_equal(s.given_name, "J");
    assert_string_equal(s.country, "nl");
    csr_subject_clear(&s);

    subject_ok("2.5.4.3=Jan,2.5.4.4=V,2.5.4.42=J,2.5.4.6=BE", &s);
    assert_string_equal(s.cn, "Jan");
    assert_string_equal(s.surname, "V");
    assert_string_equal(s.given_name, "J");
    assert_string_equal(s.country, "BE");
    csr_subject_clear(&s);

    /* Blanks around an attribute type are allowed ("CN=Jan, C=NL" is a common spelling). */
    subject_ok("CN=Jan, C=NL", &s);
    assert_string_equal(s.cn, "Jan");
    assert_string_equal(s.country, "NL");
    csr_subject_clear(&s);
    subject_ok(" CN =Jan,  C  =NL", &s);
    assert_string_equal(s.cn, "Jan");
    assert_string_equal(s.country, "NL");
    csr_subject_clear(&s);
}

static void test_rfc4514_bad(void **state)
{
    (void)state;
    subject_bad("CN=Jan+SN=Jansen", "subject: multi-valued RDNs ('+') are not supported; write a "
                                    "'+' inside a value as '\\+'");
    subject_bad("CN=#0C034A616E", "subject: CN: values in hex (#...) are not supported; write a "
                                  "leading '#' as '\\#'");
    subject_bad("CN= Jan", "subject: CN: a leading space must be escaped as '\\ '");
    subject_bad("CN=Jan ,C=NL", "subject: CN: a trailing space must be escaped as '\\ '");
    subject_bad("CN=Jan,C=NL ", "subject: C: a trailing space must be escaped as '\\ '");
    subject_bad("CN=a;b", "subject: CN: write ';' as '\\;'");
    subject_bad("CN=Jan;C=NL", "subject: CN: write ';' as '\\;'"); /* no RFC 2253 ';' */
    subject_bad("CN=\"Jan\"", "subject: CN: write '\"' as '\\\"'");
    subject_bad("CN=a<b", "subject: CN: write '<' as '\\<'");
    subject_bad("CN=a>b", "subject: CN: write '>' as '\\>'");
}

static void test_rfc4514_bad_escapes(void **state)
{
    static const char bad_escape[] = "subject: CN: '\\' must be followed by one of , + \" \\ < > "
                                     "; = # space, or two hex digits";
    static const char bad_text[] =
        "subject: CN is empty, too long, not UTF-8 or has control characters";

    (void)state;
    subject_bad("CN=a\\x", bad_escape);
    subject_bad("CN=a\\", bad_escape);
    subject_bad("CN=\\4", bad_escape);
    subject_bad("CN=\\4g", bad_escape);
    subject_bad("CN=\\g4", bad_escape);
    subject_bad("CN=a\\/b", bad_escape);
    subject_bad("CN=a\\00b", bad_text);       /* NUL */
    subject_bad("CN=a\\0Ab", bad_text);       /* newline */
    subject_bad("CN=a\\7F", bad_text);        /* DEL */
    subject_bad("CN=a\tb", bad_text);         /* raw control character */
    subject_bad("CN=caf\\E9", bad_text);      /* Latin-1, not UTF-8 */
    subject_bad("CN=\\C3", bad_text);         /* cut UTF-8 */
    subject_bad("CN=\\C0\\AF", bad_text);     /* overlong */
    subject_bad("CN=\\ED\\A0\\80", bad_text); /* surrogate */
    subject_bad("CN=", bad_text);
    subject_bad("CN=,C=NL", bad_text);
}

static void test_rfc4514_bad_shape(void **state)
{
    static const char not_kv[] = " is not KEY=VALUE (write a ',' inside a value as '\\,')";
    char msg[128];

    (void)state;
    (void)snprintf(msg, sizeof(msg), "subject: 'Jansen'%s", not_kv);
    subject_bad("CN=Jan,Jansen", msg);
    (void)snprintf(msg, sizeof(msg), "subject: ''%s", not_kv);
    subject_bad("CN=Jan,", msg);
    subject_bad("CN=Jan,,C=NL", msg);
    subject_bad(",CN=Jan", msg);
    (void)snprintf(msg, sizeof(msg), "subject: 'CN'%s", not_kv);
    subject_bad("CN", msg);
    subject_bad("=Jan", "subject: '' is not allowed (only CN, GN, SN and C)");
    subject_bad("CN=Jan,O=ACME", "subject: 'O' is not allowed (only CN, GN, SN and C)");
    subject_bad("CN=Jan,2.5.4.10=ACME",
                "subject: '2.5.4.10' is not allowed (only CN, GN, SN and C)");
    subject_bad("CN=Jan,CN=Piet", "subject: CN given twice");
    subject_bad("cn=Jan,commonName=Piet", "subject: commonName given twice");
    subject_bad("C=NL", "subject needs exactly one CN");
    subject_bad("GN=Jan,SN=de Vries", "subject needs exactly one CN");
    subject_bad("CN=Jan,C=NLD", "subject: C must be two letters");
    subject_bad("CN=Jan,c=N1", "subject: C must be two letters");
}

static void test_rfc4514_length(void **state)
{
    char dn[256], err[256];
    struct csr_subject s;
    size_t pos = (size_t)snprintf(dn, sizeof(dn), "CN=");

    (void)state;
    /* 64 bytes (ub-common-name), each written as a hex pair: 192 characters of value. */
    for (int i = 0; i < 64; i++)
        pos += (size_t)snprintf(dn + pos, sizeof(dn) - pos, "\\%02X", 'a' + i % 26);
    subject_ok(dn, &s);
    assert_int_equal(strlen(s.cn), 64);
    csr_subject_clear(&s);
    (void)snprintf(dn + pos, sizeof(dn) - pos, "\\61");
    assert_int_equal(csr_subject_parse(dn, &s, err, sizeof(err)), PA_E_USAGE);
    assert_string_equal(err, "subject: CN is empty, too long, not UTF-8 or has control characters");
}

/* What OpenSSL prints for a subject (RFC 2253 flags: escapes and hex pairs) parses back. */
static void test_rfc4514_openssl_round_trip(void **state)
{
    static const char *const cns[] = {
        "Jan de Vries",
        "#lead",
        " lead and trail ",
        ",+\"\\<>;=#",
        "J\xc3\xbcrgen M\xc3\xbcller",
        "a/b",
        "\xe2\x82\xac \xf0\x9f\x94\x91",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cns) / sizeof(cns[0]); i++) {
        struct csr_subject s = {0}, back;
        X509_NAME *name;
        char *text;

        s.cn = strdup(cns[i]);
        s.given_name = strdup("G, \"g\"");
        s.surname = strdup("S+s");
        s.country = strdup("NL");
        assert_true(s.cn && s.given_name && s.surname && s.country);
        name = built_name(&s);
        text = rfc2253(name);
        subject_ok(text, &back);
        if (!same_subject(&s, &back))
            print_error("\"%s\" came back as CN \"%s\"\n", text, back.cn);
        assert_true(same_subject(&s, &back));
        csr_subject_clear(&back);
        free(text);
        X509_NAME_free(name);
        csr_subject_clear(&s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_spki_any_armour),
        cmocka_unit_test(test_subject_full),
        cmocka_unit_test(test_subject_cn_only),
        cmocka_unit_test(test_subject_long_names),
        cmocka_unit_test(test_subject_escape_slash),
        cmocka_unit_test(test_subject_equals_in_value),
        cmocka_unit_test(test_subject_utf8),
        cmocka_unit_test(test_subject_cn_length),
        cmocka_unit_test(test_subject_no_cn),
        cmocka_unit_test(test_subject_two_cns),
        cmocka_unit_test(test_subject_unknown_key),
        cmocka_unit_test(test_subject_bad_country),
        cmocka_unit_test(test_subject_control_chars),
        cmocka_unit_test(test_subject_bad_utf8),
        cmocka_unit_test(test_subject_bad_shape),
        cmocka_unit_test(test_rfc4514_full),
        cmocka_unit_test(test_rfc4514_order),
        cmocka_unit_test(test_rfc4514_escapes),
        cmocka_unit_test(test_rfc4514_hex_pairs),
        cmocka_unit_test(test_rfc4514_types),
        cmocka_unit_test(test_rfc4514_bad),
        cmocka_unit_test(test_rfc4514_bad_escapes),
        cmocka_unit_test(test_rfc4514_bad_shape),
        cmocka_unit_test(test_rfc4514_length),
        cmocka_unit_test(test_rfc4514_openssl_round_trip),
        cmocka_unit_test(test_person),
        cmocka_unit_test(test_person_bad),
        cmocka_unit_test(test_build_rsa_pkcs1),
        cmocka_unit_test(test_build_rsa_pss),
        cmocka_unit_test(test_build_ec),
        cmocka_unit_test(test_build_cn_only_utf8),
        cmocka_unit_test(test_build_wrong_token_pub),
        cmocka_unit_test(test_build_pss_ec),
        cmocka_unit_test(test_check_garbage),
        cmocka_unit_test(test_check_sha1),
        cmocka_unit_test(test_check_sha384),
        cmocka_unit_test(test_check_sha256_external),
        cmocka_unit_test(test_check_tampered),
        cmocka_unit_test(test_spki_sha256_fixed),
        cmocka_unit_test(test_spki_sha256_private_equals_public),
    };

    return cmocka_run_group_tests_name("csr", tests, keys_setup, keys_teardown);
}
