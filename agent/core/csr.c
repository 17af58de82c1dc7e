/* SPDX-License-Identifier: Apache-2.0 */
/*
 * csr.c - the PKCS#10 request for a token key: parsing the subject, building and signing the
 * request through the engine, and checking it (signature, SHA-256, key binding).
 */
#include "csr.h"

#include "i18n.h"
#include "pa_err.h"
#include "tok.h"

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int fail(int err, char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(int err, char *errbuf, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (errbuf && errlen) {
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return err;
}

void csr_subject_clear(struct csr_subject *s)
{
    if (!s)
        return;
    free(s->cn);
    free(s->given_name);
    free(s->surname);
    free(s->country);
    memset(s, 0, sizeof(*s));
}

/*
 * 1 to 64 bytes of UTF-8 without control characters. UTF-8 validity is decided by the OpenSSL
 * code that encodes the subject in csr_build(), so a subject accepted here always encodes.
 */
static bool valid_text(const char *s)
{
    size_t n = strlen(s);
    bool ok;

    if (n == 0 || n > 64) /* ub-common-name */
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    (void)ERR_set_mark();
    ok = ASN1_mbstring_copy(NULL, (const unsigned char *)s, (int)n, MBSTRING_UTF8,
                            B_ASN1_UTF8STRING) >= 0;
    (void)ERR_pop_to_mark(); /* drop only the error this check may have queued */
    return ok;
}

static bool valid_country(const char *s)
{
    return strlen(s) == 2 && isalpha((unsigned char)s[0]) && isalpha((unsigned char)s[1]);
}

static int set_part(char **field, const char *key, const char *val, char *errbuf, size_t errlen)
{
    if (*field)
        return fail(PA_E_USAGE, errbuf, errlen, _("subject: %s given twice"), key);
    if (!valid_text(val))
        return fail(PA_E_USAGE, errbuf, errlen,
                    _("subject: %s is empty, too long, not UTF-8 or has control characters"), key);
    *field = strdup(val);
    return *field ? 0 : PA_E_NOMEM;
}

/* The attribute types of the subject parts: OpenSSL's short name, the long name, the OID. */
static const char *const subject_keys[4][3] = {
    {"CN", "commonName", "2.5.4.3"},
    {"GN", "givenName", "2.5.4.42"},
    {"SN", "surname", "2.5.4.4"},
    {"C", "countryName", "2.5.4.6"},
};

/* Set the part key names (compared case-insensitively when any_case) to val. */
static int add_part(struct csr_subject *s, const char *key, const char *val, bool any_case,
                    char *errbuf, size_t errlen)
{
    char **fields[4] = {&s->cn, &s->given_name, &s->surname, &s->country};

    for (size_t i = 0; i < 4; i++) {
        for (size_t j = 0; j < 3; j++) {
            const char *name = subject_keys[i][j];
            int r;

            if (any_case ? strcasecmp(key, name) != 0 : strcmp(key, name) != 0)
                continue;
            r = set_part(fields[i], key, val, errbuf, errlen);
            if (r == 0 && i == 3 && !valid_country(val))
                r = fail(PA_E_USAGE, errbuf, errlen, _("subject: C must be two letters"));
            return r;
        }
    }
    return fail(PA_E_USAGE, errbuf, errlen,
                _("subject: '%s' is not allowed (only CN, GN, SN and C)"), key);
}

/* OpenSSL's one-line form "/C=NL/CN=Jan": a backslash takes the next character literally. */
static int parse_slash(const char *dn, size_t len, struct csr_subject *s, char *errbuf,
                       size_t errlen)
{
    char *buf = malloc(len + 1), *key, *val;
    size_t o = 0;
    int r = buf ? 0 : PA_E_NOMEM;

    for (size_t i = 1; i <= len && r == 0; i++) {
        if (i < len && dn[i] == '\\' && i + 1 < len) {
            buf[o++] = dn[++i];
            continue;
        }
        if (i < len && dn[i] != '/') {
            buf[o++] = dn[i];
            continue;
        }
        buf[o] = '\0';
        o = 0;
        key = buf;
        val = strchr(buf, '=');
        if (!val) {
            r = fail(PA_E_USAGE, errbuf, errlen, _("subject: '%s' is not KEY=VALUE"), key);
            break;
        }
        *val++ = '\0';
        r = add_part(s, key, val, false, errbuf, errlen);
    }
    free(buf);
    return r;
}

/* RFC 4514: characters a value may hold only escaped (besides '\\'), and what may follow '\\'. */
#define DN_MUST_ESCAPE "\";<>"
#define DN_ESCAPABLE   "\"+,;<>\\ #="

static int dn_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * RFC 4514 attribute type, up to '=' (blanks before and after the type are allowed): copied
 * into key, *p left after the '='.
 */
static int dn_type(const char **p, char *key, char *errbuf, size_t errlen)
{
    const char *s = *p, *start, *end;

    while (*s == ' ')
        s++;
    start = s;
    while (*s && *s != '=' && *s != ',' && *s != '+')
        s++;
    end = s;
    while (end > start && end[-1] == ' ')
        end--;
    memcpy(key, start, (size_t)(end - start));
    key[end - start] = '\0';
    if (*s != '=')
        return fail(PA_E_USAGE, errbuf, errlen,
                    _("subject: '%s' is not KEY=VALUE (write a ',' inside a value as '\\,')"), key);
    *p = s + 1;
    return 0;
}

/* One RFC 4514 escape at *p ('\\' then a special character or two hex digits) into val. */
static int dn_unescape(const char **p, const char *key, char *val, size_t *o, char *errbuf,
                       size_t errlen)
{
    const char *s = *p + 1;
    int hi = dn_hexval(s[0]), lo = hi >= 0 ? dn_hexval(s[1]) : -1;

    if (hi >= 0 && lo >= 0) {
        if (hi == 0 && lo == 0) /* \00 would cut the value short: a control character */
            return fail(PA_E_USAGE, errbuf, errlen,
                        _("subject: %s is empty, too long, not UTF-8 or has control characters"),
                        key);
        val[(*o)++] = (char)(hi << 4 | lo);
        *p = s + 2;
        return 0;
    }
    if (*s && strchr(DN_ESCAPABLE, *s)) {
        val[(*o)++] = *s;
        *p = s + 1;
        return 0;
    }
    return fail(PA_E_USAGE, errbuf, errlen,
                _("subject: %s: '\\' must be followed by one of , + \" \\ < > ; = # space, or two "
                  "hex digits"),
                key);
}

/* RFC 4514 attribute value, up to an unescaped ',' or '+' or the end: unescaped into val. */
static int dn_value(const char **p, const char *key, char *val, char *errbuf, size_t errlen)
{
    const char *s = *p;
    bool raw_space = false;
    size_t o = 0;
    int r;

    if (*s == '#')
        return fail(PA_E_USAGE, errbuf, errlen,
                    _("subject: %s: values in hex (#...) are not supported; write a leading '#' "
                      "as '\\#'"),
                    key);
    if (*s == ' ')
        return fail(PA_E_USAGE, errbuf, errlen,
                    _("subject: %s: a leading space must be escaped as '\\ '"), key);
    while (*s && *s != ',' && *s != '+') {
        raw_space = false;
        if (*s == '\\') {
            r = dn_unescape(&s, key, val, &o, errbuf, errlen);
            if (r < 0)
                return r;
            continue;
        }
        if (strchr(DN_MUST_ESCAPE, *s))
            return fail(PA_E_USAGE, errbuf, errlen, _("subject: %s: write '%c' as '\\%c'"), key, *s,
                        *s);
        raw_space = *s == ' ';
        val[o++] = *s++;
    }
    if (raw_space)
        return fail(PA_E_USAGE, errbuf, errlen,
                    _("subject: %s: a trailing space must be escaped as '\\ '"), key);
    val[o] = '\0';
    *p = s;
    return 0;
}

/*
 * RFC 4514 "CN=Jan,C=NL": RDNs separated by ',', most specific first. Each RDN holds one
 * attribute: multi-valued RDNs ('+') are refused.
 */
static int parse_rfc4514(const char *dn, size_t len, struct csr_subject *s, char *errbuf,
                         size_t errlen)
{
    char *key = malloc(len + 1), *val = malloc(len + 1);
    const char *p = dn;
    int r = key && val ? 0 : PA_E_NOMEM;

    while (r == 0) {
        r = dn_type(&p, key, errbuf, errlen);
        if (r == 0)
            r = dn_value(&p, key, val, errbuf, errlen);
        if (r == 0)
            r = add_part(s, key, val, true, errbuf, errlen);
        if (r < 0 || *p == '\0')
            break;
        if (*p == '+')
            r = fail(PA_E_USAGE, errbuf, errlen,
                     _("subject: multi-valued RDNs ('+') are not supported; write a '+' inside a "
                       "value as '\\+'"));
        p++; /* past the ',' */
    }
    free(key);
    free(val);
    return r;
}

int csr_subject_parse(const char *dn, struct csr_subject *ret, char *errbuf, size_t errlen)
{
    struct csr_subject s = {0};
    size_t len = strlen(dn);
    int r;

    if (len == 0 || len > 1024)
        return fail(PA_E_USAGE, errbuf, errlen,
                    _("subject must look like CN=First Last,C=NL or /C=NL/CN=First Last"));
    if (dn[0] == '/')
        r = parse_slash(dn, len, &s, errbuf, errlen);
    else
        r = parse_rfc4514(dn, len, &s, errbuf, errlen);
    if (r == 0 && !s.cn)
        r = fail(PA_E_USAGE, errbuf, errlen, _("subject needs exactly one CN"));
    if (r < 0) {
        csr_subject_clear(&s);
        return r;
    }
    *ret = s;
    return 0;
}

/* The enrollee's country, two letters, upper-cased. */
static int set_person_country(struct csr_subject *s, const char *country, char *errbuf,
                              size_t errlen)
{
    int r;

    if (!valid_country(country))
        return fail(PA_E_REQUEST, errbuf, errlen,
                    _("certificate.individual.country must be two letters"));
    r = set_part(&s->country, "C", country, errbuf, errlen);
    if (r == 0)
        for (char *p = s->country; *p; p++)
            *p = (char)toupper((unsigned char)*p);
    return r;
}

int csr_subject_person(const char *first, const char *last, const char *country,
                       struct csr_subject *ret, char *errbuf, size_t errlen)
{
    struct csr_subject s = {0};
    char *cn = NULL;
    size_t n;
    int r;

    if (!first || !last || !*first || !*last)
        return fail(PA_E_REQUEST, errbuf, errlen,
                    _("certificate.individual needs first_name and last_name for the CSR subject"));
    n = strlen(first) + strlen(last) + 2;
    cn = malloc(n);
    if (!cn)
        return PA_E_NOMEM;
    snprintf(cn, n, "%s %s", first, last);
    r = set_part(&s.cn, "CN", cn, errbuf, errlen);
    if (r == 0)
        r = set_part(&s.given_name, "GN", first, errbuf, errlen);
    if (r == 0)
        r = set_part(&s.surname, "SN", last, errbuf, errlen);
    if (r == 0 && country && *country)
        r = set_person_country(&s, country, errbuf, errlen);
    free(cn);
    if (r < 0) {
        csr_subject_clear(&s);
        return r == PA_E_USAGE ? PA_E_REQUEST : r;
    }
    *ret = s;
    return 0;
}

static int add_entry(X509_NAME *name, int nid, const char *val)
{
    if (!val)
        return 1;
    return X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8, (const unsigned char *)val, -1, -1,
                                      0);
}

int csr_spki_sha256(EVP_PKEY *pkey, char ret_hex[65])
{
    unsigned char *der = NULL, md[32];
    int len = i2d_PUBKEY(pkey, &der);

    if (len <= 0)
        return PA_E_INTERNAL;
    EVP_Digest(der, (size_t)len, md, NULL, EVP_sha256(), NULL);
    OPENSSL_free(der);
    for (int i = 0; i < 32; i++)
        snprintf(ret_hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* The base64 text of a CSR shown in any armour: between the BEGIN line and the END marker when
 * there is armour, else all of it; every byte that is not base64 is dropped (line breaks, CR,
 * blanks, tabs). NULL when out of memory. */
static char *csr_base64_of(const char *text)
{
    const char *b = strstr(text, "-----BEGIN"), *e = NULL;
    char *out, *o;

    if (b) {
        b = strstr(b + 10, "-----");
        if (!b)
            return strdup("");
        b += 5;
        e = strstr(b, "-----END");
    }
    if (!b)
        b = text;
    if (!e)
        e = b + strlen(b);
    out = malloc((size_t)(e - b) + 1);
    if (!out)
        return NULL;
    o = out;
    for (const char *p = b; p < e; p++)
        if (isalnum((unsigned char)*p) || *p == '+' || *p == '/' || *p == '=')
            *o++ = *p;
    *o = '\0';
    return out;
}

int csr_text_spki_sha256(const char *text, char ret_hex[65])
{
    unsigned char *der = NULL;
    const unsigned char *p;
    X509_REQ *req = NULL;
    char *b64 = csr_base64_of(text ? text : "");
    size_t n = b64 ? strlen(b64) : 0;
    int len, r = PA_E_CSR;

    if (!b64)
        return PA_E_NOMEM;
    if (n == 0 || n % 4 != 0)
        goto out;
    der = malloc(n / 4 * 3 + 1);
    if (!der) {
        r = PA_E_NOMEM;
        goto out;
    }
    len = EVP_DecodeBlock(der, (const unsigned char *)b64, (int)n);
    if (len <= 0)
        goto out;
    /* EVP_DecodeBlock counts padding bytes as data: drop them. */
    len -= (n >= 1 && b64[n - 1] == '=') + (n >= 2 && b64[n - 2] == '=');
    p = der;
    req = d2i_X509_REQ(NULL, &p, len);
    if (!req || p != der + len || !X509_REQ_get0_pubkey(req))
        goto out;
    r = csr_spki_sha256(X509_REQ_get0_pubkey(req), ret_hex);
out:
    ERR_clear_error();
    X509_REQ_free(req);
    free(der);
    free(b64);
    return r;
}

/* Verify signature and key binding of a parsed request. */
static int check_req(X509_REQ *req, EVP_PKEY *expect_pub, char *errbuf, size_t errlen)
{
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    int nid = X509_REQ_get_signature_nid(req), md_nid = NID_undef, pk_nid = NID_undef;

    if (!pub)
        return fail(PA_E_CSR, errbuf, errlen, _("CSR has no usable public key"));
    if (X509_REQ_verify(req, pub) != 1) {
        ERR_clear_error();
        return fail(PA_E_CSR, errbuf, errlen, _("CSR signature does not verify"));
    }
    if (nid == NID_rsassaPss) {
        const X509_ALGOR *alg = NULL;
        RSA_PSS_PARAMS *pss;

        X509_REQ_get0_signature(req, NULL, &alg);
        pss =
            alg ? ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(RSA_PSS_PARAMS), alg->parameter) : NULL;
        if (pss && pss->hashAlgorithm)
            md_nid = OBJ_obj2nid(pss->hashAlgorithm->algorithm);
        RSA_PSS_PARAMS_free(pss);
    } else if (!OBJ_find_sigid_algs(nid, &md_nid, &pk_nid)) {
        md_nid = NID_undef;
    }
    if (md_nid != NID_sha256)
        return fail(PA_E_CSR, errbuf, errlen, _("CSR is not signed with SHA-256"));
    if (expect_pub && EVP_PKEY_eq(pub, expect_pub) != 1) {
        ERR_clear_error();
        return fail(PA_E_CSR, errbuf, errlen, _("CSR public key is not the token key's"));
    }
    return 0;
}

/* The subject as a name in the order C, GN, SN, CN (absent parts left out). */
static int csr_subject_name(const struct csr_subject *subj, X509_NAME **ret, char *errbuf,
                            size_t errlen)
{
    X509_NAME *name = X509_NAME_new();

    if (!name)
        return PA_E_NOMEM;
    if (!add_entry(name, NID_countryName, subj->country) ||
        !add_entry(name, NID_givenName, subj->given_name) ||
        !add_entry(name, NID_surname, subj->surname) ||
        !add_entry(name, NID_commonName, subj->cn)) {
        X509_NAME_free(name);
        return fail(PA_E_CSR, errbuf, errlen, _("cannot encode the subject"));
    }
    *ret = name;
    return 0;
}

/* Sign req with sign_key and SHA-256: PKCS#1 v1.5, or RSASSA-PSS (pss), or ECDSA. */
static int csr_sign(X509_REQ *req, EVP_PKEY *sign_key, bool pss, char *errbuf, size_t errlen)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int r = 0;

    if (!mctx)
        return PA_E_NOMEM;
    if (EVP_DigestSignInit(mctx, &pctx, EVP_sha256(), NULL, sign_key) != 1)
        r = fail(PA_E_CSR, errbuf, errlen, _("the token key cannot sign with SHA-256"));
    else if (pss && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
                     EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1))
        r = fail(PA_E_CSR, errbuf, errlen, _("the token key cannot sign with RSASSA-PSS"));
    else if (X509_REQ_sign_ctx(req, mctx) <= 0)
        r = fail(PA_E_CSR, errbuf, errlen, _("the token refused to sign the CSR"));
    EVP_MD_CTX_free(mctx);
    return r;
}

/* req as PEM text, malloc'd and NUL-terminated. */
static int csr_pem(X509_REQ *req, char **ret_pem)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem, *data;
    long len;
    int r = PA_E_NOMEM;

    if (!bio || !PEM_write_bio_X509_REQ(bio, req))
        goto out;
    len = BIO_get_mem_data(bio, &data);
    pem = malloc((size_t)len + 1);
    if (!pem)
        goto out;
    memcpy(pem, data, (size_t)len);
    pem[len] = '\0';
    *ret_pem = pem;
    r = 0;
out:
    BIO_free(bio);
    return r;
}

int csr_build(EVP_PKEY *sign_key, EVP_PKEY *token_pub, const struct csr_subject *subj, bool pss,
              char **ret_pem, char *errbuf, size_t errlen)
{
    X509_REQ *req = NULL;
    X509_NAME *name = NULL;
    int r;

    if (pss && EVP_PKEY_get_base_id(token_pub) != EVP_PKEY_RSA)
        return fail(PA_E_USAGE, errbuf, errlen, _("--pss needs an RSA key"));
    r = csr_subject_name(subj, &name, errbuf, errlen);
    if (r < 0)
        goto out;
    req = X509_REQ_new();
    if (!req) {
        r = PA_E_NOMEM;
        goto out;
    }
    /* The public key comes from the token object; the engine key must sign for it. */
    if (!X509_REQ_set_version(req, 0) || !X509_REQ_set_subject_name(req, name) ||
        !X509_REQ_set_pubkey(req, token_pub)) {
        r = PA_E_CSR;
        goto out;
    }
    r = csr_sign(req, sign_key, pss, errbuf, errlen);
    if (r == 0)
        r = check_req(req, token_pub, errbuf, errlen);
    if (r == 0)
        r = csr_pem(req, ret_pem);
out:
    ERR_clear_error();
    X509_NAME_free(name);
    X509_REQ_free(req);
    return r;
}

int csr_check_pem(const char *pem, EVP_PKEY *expect_pub, char *errbuf, size_t errlen)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509_REQ *req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
    int r;

    if (!req)
        r = fail(PA_E_CSR, errbuf, errlen, _("not a PEM certificate request"));
    else
        r = check_req(req, expect_pub, errbuf, errlen);
    ERR_clear_error();
    X509_REQ_free(req);
    BIO_free(bio);
    return r;
}

/* The key's two halves from the token, the public one checked against expect_spki. */
static int token_key_halves(struct tok_token *tok, const unsigned char *id, size_t id_len,
                            const char *expect_spki, EVP_PKEY **pub, EVP_PKEY **sign,
                            enum csr_step *step)
{
    char spki[65];
    int r = tok_public_key(tok, id, id_len, pub);

    if (r == 0 && expect_spki) {
        r = csr_spki_sha256(*pub, spki);
        if (r == 0 && strcmp(spki, expect_spki) != 0) {
            *step = CSR_STEP_SPKI;
            return PA_E_CUSTODY;
        }
    }
    if (r == 0)
        r = tok_signing_key(tok, id, id_len, sign);
    return r;
}

int csr_from_token_key(struct tok_token *tok, const unsigned char *id, size_t id_len,
                       const char *expect_spki, const struct csr_subject *subj, bool pss,
                       char **ret_pem, EVP_PKEY **ret_pub, enum csr_step *ret_step, char *errbuf,
                       size_t errlen)
{
    EVP_PKEY *pub = NULL, *sign = NULL;
    enum csr_step step = CSR_STEP_KEY;
    int r;

    errbuf[0] = '\0';
    r = token_key_halves(tok, id, id_len, expect_spki, &pub, &sign, &step);
    if (r < 0 && step == CSR_STEP_KEY)
        snprintf(errbuf, errlen, "%s", tok_detail());
    if (r == 0) {
        step = CSR_STEP_BUILD;
        r = csr_build(sign, pub, subj, pss, ret_pem, errbuf, errlen);
    }
    if (r == 0 && ret_pub) {
        *ret_pub = pub;
        pub = NULL;
    }
    *ret_step = step;
    EVP_PKEY_free(sign);
    EVP_PKEY_free(pub);
    return r;
}
