/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certs.h - issued certificates: split a PEM bundle, pick the leaf by public key, verify the
 * chain to trust anchors (OpenSSL only; no token access).
 */
#ifndef PKIO_CERTS_H
#define PKIO_CERTS_H

#include <stddef.h>

#include <openssl/x509.h>

/* Parse every CERTIFICATE block of a PEM text; PA_E_CERT if there is none or any is bad. */
int certs_parse_pem(const char *pem, size_t len, STACK_OF(X509) * *ret);

/*
 * Split a bundle into the leaf whose public key equals key (by key, never by position) and the
 * rest. PA_E_CERT when no certificate carries the key. *ret_leaf is up-ref'd; *ret_chain is a
 * new stack of up-ref'd certificates (caller frees both).
 */
int certs_pick_leaf(STACK_OF(X509) * all, EVP_PKEY *key, X509 **ret_leaf,
                    STACK_OF(X509) * *ret_chain);

/*
 * Verify leaf with the chain as untrusted intermediates to the anchors in anchors_pem_file.
 * PA_E_CERT with a message in errbuf when it does not verify.
 */
int certs_verify_chain(X509 *leaf, STACK_OF(X509) * chain, const char *anchors_pem_file,
                       char *errbuf, size_t errlen);
/*
 * The same, and *ret_path receives the certificates of the verified path between the leaf and
 * the (self-signed) anchor, up-ref'd: only these belong on the token, whatever else the download
 * carried.
 */
int certs_verify_path(X509 *leaf, STACK_OF(X509) * chain, const char *anchors_pem_file,
                      STACK_OF(X509) * *ret_path, char *errbuf, size_t errlen);
/* leaf then rest as one PEM text (malloc'd, NUL-terminated); NULL when out of memory. */
char *certs_to_pem(X509 *leaf, STACK_OF(X509) * rest);

/*
 * Can the trust anchors be used? The file must be readable and hold only parsable PEM
 * certificates (at least one). PA_E_CONFIG with a message in errbuf otherwise.
 */
int certs_check_anchors(const char *anchors_pem_file, char *errbuf, size_t errlen);

/*
 * Does the issued certificate's keyUsage (and extendedKeyUsage, when present) fit the key and the
 * request's profile? authentication: digitalSignature, and an EKU (if any) with clientAuth,
 * emailProtection or anyExtendedKeyUsage; encryption: keyEncipherment for RSA keys, keyAgreement
 * for EC keys; nonrepudiation: nonRepudiation. An unknown or empty profile is not checked.
 * PA_E_CERT with the reason in errbuf.
 */
int certs_check_usage(X509 *leaf, const char *profile, char *errbuf, size_t errlen);

#endif
