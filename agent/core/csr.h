/* SPDX-License-Identifier: Apache-2.0 */
/*
 * csr.h - building and checking the PKCS#10 request for a token key (OpenSSL only).
 */
#ifndef PKIO_CSR_H
#define PKIO_CSR_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

/* The subject: exactly one CN; the other parts are optional (NULL). */
struct csr_subject {
    char *cn;
    char *given_name;
    char *surname;
    char *country; /* two letters */
};

/*
 * Parse a subject in one of two forms:
 *  - RFC 4514, "CN=Jan de Vries,SN=de Vries,GN=Jan,C=NL": RDNs separated by ',', most specific
 *    first; attribute types case-insensitive; escapes \, \+ \" \\ \< \> \; \= \# "\ " and
 *    hex pairs (\4A, \C3\A9); '"', ';', '<', '>', a leading '#' or space and a trailing space
 *    only escaped; blanks before and after an attribute type are allowed. Multi-valued RDNs
 *    ('+') and hex values ("#04...") are refused.
 *  - OpenSSL's one-line form, "/C=NL/GN=Jan/SN=de Vries/CN=Jan de Vries" (starts with '/'):
 *    attribute types case-sensitive; a backslash takes the next character literally.
 * Only CN (commonName), GN (givenName), SN (surname) and C (countryName), or their OIDs, are
 * accepted; CN must appear exactly once, each part is 1-64 bytes of UTF-8 without control
 * characters, C two letters. The order given does not matter: csr_build always writes C, GN,
 * SN, CN (RFC 4514: "CN=..,SN=..,GN=..,C=.."), so "CN=Jan,C=NL" and "/C=NL/CN=Jan" give the
 * same subject. PA_E_USAGE with a message in errbuf otherwise.
 */
int csr_subject_parse(const char *dn, struct csr_subject *ret, char *errbuf, size_t errlen);
/* Build the subject of an enrollee: CN = "first last", GN, SN and C when known. */
int csr_subject_person(const char *first, const char *last, const char *country,
                       struct csr_subject *ret, char *errbuf, size_t errlen);
void csr_subject_clear(struct csr_subject *s);

/*
 * Build a SHA-256 CSR signed by sign_key (the token key through the engine): RSA PKCS#1 v1.5
 * by default, RSASSA-PSS (salt 32, MGF1-SHA-256) with pss, ECDSA for EC keys. Before handing
 * it out, the CSR's signature is verified and its public key compared with token_pub (the
 * public key read from the token). *ret_pem is malloc'd PEM text.
 */
int csr_build(EVP_PKEY *sign_key, EVP_PKEY *token_pub, const struct csr_subject *subj, bool pss,
              char **ret_pem, char *errbuf, size_t errlen);

struct tok_token;

/* Which part of csr_from_token_key failed. */
enum csr_step {
    CSR_STEP_KEY,   /* reading the key's public half or its signing handle (the token's words) */
    CSR_STEP_SPKI,  /* the public key is not the one expected */
    CSR_STEP_BUILD, /* building, signing or checking the CSR */
};

/*
 * The one way from a token key to a CSR (`csr` and the enrollment's CSR step): the key's
 * public half from the token, compared with expect_spki (csr_spki_sha256 hex; NULL: any), its
 * signing handle, then csr_build. The key's custody is the caller's check, made before. On
 * success *ret_pem (malloc'd PEM) and, when ret_pub is not NULL, *ret_pub (the public key, for
 * the caller to free). On failure *ret_step says which part failed and errbuf has the detail
 * (the token layer's for CSR_STEP_KEY, empty for CSR_STEP_SPKI).
 */
int csr_from_token_key(struct tok_token *tok, const unsigned char *id, size_t id_len,
                       const char *expect_spki, const struct csr_subject *subj, bool pss,
                       char **ret_pem, EVP_PKEY **ret_pub, enum csr_step *ret_step, char *errbuf,
                       size_t errlen);

/*
 * Check a PEM CSR: parses, signature verifies, SHA-256, and (when expect_pub is not NULL) its
 * public key equals expect_pub. Used again before ordering.
 */
int csr_check_pem(const char *pem, EVP_PKEY *expect_pub, char *errbuf, size_t errlen);

/* SHA-256 of the DER SubjectPublicKeyInfo of a key, as 64 hex characters + NUL. */
int csr_spki_sha256(EVP_PKEY *pkey, char ret_hex[65]);

/*
 * SHA-256 (hex) of the public key of a CSR shown as text in any of the ways a server may show it:
 * PEM with any armour label ("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"), base64 with or
 * without line breaks or CRs, or bare base64 of the DER. PA_E_CSR when it is not a decodable
 * PKCS#10 request (the caller treats that as "unknown", never as "another CSR").
 */
int csr_text_spki_sha256(const char *text, char ret_hex[65]);

#endif
