/* SPDX-License-Identifier: Apache-2.0 */
/*
 * writeback.h - putting an issued certificate and its chain on the token next to the key,
 * then reading it back.
 */
#ifndef PKIO_WRITEBACK_H
#define PKIO_WRITEBACK_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/x509.h>

struct tok_token;

struct wb_result {
    bool leaf_written;   /* false: the identical certificate was there already */
    unsigned ca_written; /* CA certificates written */
    unsigned ca_present; /* CA certificates that were there already */
    unsigned ca_skipped; /* CA certificates the token refused (no room, object too large...) */
    char skipped[200];   /* why, for the first one: "CN=...: CKR_DEVICE_MEMORY" */
};

/*
 * Store leaf under the key's CKA_ID and label first, then each certificate of chain as a CA object
 * as far as the token takes them: a CA certificate the token refuses (no room left, object too
 * large) is left off and counted in ca_skipped; a refused leaf is an error. Nothing identical is
 * written twice. Refuses (PA_E_CERT) when the leaf's public key is not the
 * token key's. Afterwards reads the key's certificates back and requires the leaf among them.
 * errbuf gets a one-line reason on failure.
 */
int wb_install(struct tok_token *t, const unsigned char *id, size_t id_len, X509 *leaf,
               STACK_OF(X509) * chain, struct wb_result *ret, char *errbuf, size_t errlen);

#endif
