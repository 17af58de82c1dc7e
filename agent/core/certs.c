/* SPDX-License-Identifier: Apache-2.0 */
#include "certs.h"

#include "fsutil.h"
#include "i18n.h"
#include "pa_err.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int certs_parse_pem(const char *pem, size_t len, STACK_OF(X509) * *ret)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    int r = PA_E_CERT;

    if (!sk || !bio || len > 1 << 20) {
        r = sk && bio ? PA_E_CERT : PA_E_NOMEM;
        goto out;
    }
    for (;;) {
        char *name = NULL, *header = NULL;
        unsigned char *data = NULL;
        const unsigned char *p;
        long dlen = 0;
        X509 *x;

        if (!PEM_read_bio(bio, &name, &header, &data, &dlen)) {
            unsigned long e = ERR_peek_last_error();

            ERR_clear_error();
            if (ERR_GET_REASON(e) == PEM_R_NO_START_LINE && sk_X509_num(sk) > 0)
                break; /* end of input */
            goto out;
        }
        p = data;
        x = strcmp(name, "CERTIFICATE") == 0 ? d2i_X509(NULL, &p, dlen) : NULL;
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        if (!x || !sk_X509_push(sk, x)) {
            X509_free(x);
            goto out;
        }
    }
    *ret = sk;
    sk = NULL;
    r = 0;
out:
    ERR_clear_error();
    BIO_free(bio);
    sk_X509_pop_free(sk, X509_free);
    return r;
}

int certs_pick_leaf(STACK_OF(X509) * all, EVP_PKEY *key, X509 **ret_leaf,
                    STACK_OF(X509) * *ret_chain)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    X509 *leaf = NULL;

    if (!chain)
        return PA_E_NOMEM;
    for (int i = 0; i < sk_X509_num(all); i++) {
        X509 *x = sk_X509_value(all, i);

        if (!leaf && EVP_PKEY_eq(X509_get0_pubkey(x), key) == 1) {
            leaf = x;
        } else if (!sk_X509_push(chain, x)) {
            sk_X509_free(chain);
            return PA_E_NOMEM;
        }
    }
    ERR_clear_error();
    if (!leaf) {
        sk_X509_free(chain);
        return PA_E_CERT;
    }
    for (int i = 0; i < sk_X509_num(chain); i++)
        X509_up_ref(sk_X509_value(chain, i));
    X509_up_ref(leaf);
    *ret_leaf = leaf;
    *ret_chain = chain;
    return 0;
}

/* The certificates between leaf and anchor on the verified path: not the leaf, not a
 * self-signed anchor. */
static STACK_OF(X509) * path_between(X509_STORE_CTX *ctx)
{
    STACK_OF(X509) *full = X509_STORE_CTX_get1_chain(ctx), *mid = sk_X509_new_null();

    for (int i = 1; full && mid && i < sk_X509_num(full); i++) {
        X509 *x = sk_X509_value(full, i);

        if (X509_check_issued(x, x) == X509_V_OK) /* the anchor */
            continue;
        if (X509_up_ref(x) != 1 || sk_X509_push(mid, x) <= 0) {
            sk_X509_pop_free(mid, X509_free);
            mid = NULL;
        }
    }
    sk_X509_pop_free(full, X509_free);
    return mid;
}

int certs_verify_path(X509 *leaf, STACK_OF(X509) * chain, const char *anchors_pem_file,
                      STACK_OF(X509) * *ret_path, char *errbuf, size_t errlen)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int r = PA_E_CERT;

    if (!store || !ctx) {
        r = PA_E_NOMEM;
        goto out;
    }
    if (X509_STORE_load_file(store, anchors_pem_file) != 1) {
        snprintf(errbuf, errlen, _("cannot read trust anchors from %s"), anchors_pem_file);
        r = PA_E_CONFIG;
        goto out;
    }
    if (X509_STORE_CTX_init(ctx, store, leaf, chain) != 1)
        goto out;
    if (X509_verify_cert(ctx) != 1) {
        snprintf(errbuf, errlen, _("certificate chain does not verify to %s: %s"), anchors_pem_file,
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        goto out;
    }
    if (ret_path) {
        *ret_path = path_between(ctx);
        if (!*ret_path) {
            r = PA_E_NOMEM;
            goto out;
        }
    }
    r = 0;
out:
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return r;
}

int certs_verify_chain(X509 *leaf, STACK_OF(X509) * chain, const char *anchors_pem_file,
                       char *errbuf, size_t errlen)
{
    return certs_verify_path(leaf, chain, anchors_pem_file, NULL, errbuf, errlen);
}

char *certs_to_pem(X509 *leaf, STACK_OF(X509) * rest)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *out = NULL;
    long n;
    bool ok = bio && PEM_write_bio_X509(bio, leaf) == 1;

    for (int i = 0; ok && i < sk_X509_num(rest); i++)
        ok = PEM_write_bio_X509(bio, sk_X509_value(rest, i)) == 1;
    n = ok ? BIO_get_mem_data(bio, &data) : 0;
    if (n > 0) {
        out = malloc((size_t)n + 1);
        if (out) {
            memcpy(out, data, (size_t)n);
            out[n] = '\0';
        }
    }
    BIO_free(bio);
    return out;
}

int certs_check_anchors(const char *anchors_pem_file, char *errbuf, size_t errlen)
{
    STACK_OF(X509) *all = NULL;
    char *pem = NULL;
    size_t len = 0;
    int r;

    if (!anchors_pem_file) {
        snprintf(errbuf, errlen, "%s", _("trust.anchors is not set"));
        return PA_E_CONFIG;
    }
    r = fs_read_file(anchors_pem_file, 4 * 1024 * 1024, &pem, &len);
    if (r < 0) {
        snprintf(errbuf, errlen, _("cannot read trust anchors %s: %s"), anchors_pem_file,
                 strerror(errno));
        return PA_E_CONFIG;
    }
    r = certs_parse_pem(pem, len, &all);
    if (r < 0) {
        snprintf(errbuf, errlen, _("trust anchors %s: not a PEM file of certificates"),
                 anchors_pem_file);
        r = PA_E_CONFIG;
    }
    sk_X509_pop_free(all, X509_free);
    free(pem);
    return r;
}

/* The EKU of an authentication certificate, if it has one, must allow client authentication. */
static bool eku_fits_auth(X509 *leaf)
{
    uint32_t xku = X509_get_extended_key_usage(leaf);

    if (!(X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE))
        return true;
    return xku & (XKU_SSL_CLIENT | XKU_SMIME | XKU_ANYEKU);
}

int certs_check_usage(X509 *leaf, const char *profile, char *errbuf, size_t errlen)
{
    EVP_PKEY *pub = X509_get0_pubkey(leaf);
    bool ec = pub && EVP_PKEY_get_base_id(pub) == EVP_PKEY_EC;
    uint32_t ku = X509_get_key_usage(leaf); /* UINT32_MAX when the extension is absent */
    uint32_t need = 0;
    const char *what = NULL;

    if (!profile || !*profile)
        return 0;
    if (strcmp(profile, "authentication") == 0) {
        need = KU_DIGITAL_SIGNATURE;
        what = "digitalSignature";
    } else if (strcmp(profile, "encryption") == 0) {
        need = ec ? KU_KEY_AGREEMENT : KU_KEY_ENCIPHERMENT;
        what = ec ? "keyAgreement" : "keyEncipherment";
    } else if (strcmp(profile, "nonrepudiation") == 0) {
        need = KU_NON_REPUDIATION;
        what = "nonRepudiation";
    } else {
        return 0;
    }
    if (!(ku & need)) {
        snprintf(errbuf, errlen,
                 _("the issued certificate's keyUsage lacks %s, which the %s "
                   "profile needs"),
                 what, profile);
        return PA_E_CERT;
    }
    if (strcmp(profile, "authentication") == 0 && !eku_fits_auth(leaf)) {
        snprintf(errbuf, errlen, "%s",
                 _("the issued certificate's extendedKeyUsage does not allow "
                   "client authentication"));
        return PA_E_CERT;
    }
    return 0;
}
