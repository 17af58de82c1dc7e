/* SPDX-License-Identifier: Apache-2.0 */
#include "writeback.h"

#include "i18n.h"
#include "pa_err.h"
#include "tok.h"

#include <openssl/err.h>
#include <openssl/objects.h>

#include <stdio.h>
#include <stdlib.h>

/* The chain, as far as the token takes it; a pulled token is an error, a refusal is noted. */
static int store_chain(struct tok_token *t, STACK_OF(X509) * chain, struct wb_result *res)
{
    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *ca = sk_X509_value(chain, i);
        bool written = false;
        int r = tok_store_cert(t, ca, NULL, 0, NULL, &written);

        if (r == PA_E_TOKEN_GONE || r == PA_E_NOMEM)
            return r;
        if (r < 0) {
            if (!res->ca_skipped) {
                char cn[128] = "?";

                X509_NAME_get_text_by_NID(X509_get_subject_name(ca), NID_commonName, cn,
                                          sizeof(cn));
                snprintf(res->skipped, sizeof(res->skipped), "CN=%s: %s", cn, tok_detail());
            }
            res->ca_skipped++;
        } else if (written) {
            res->ca_written++;
        } else {
            res->ca_present++;
        }
    }
    return 0;
}

int wb_install(struct tok_token *t, const unsigned char *id, size_t id_len, X509 *leaf,
               STACK_OF(X509) * chain, struct wb_result *ret, char *errbuf, size_t errlen)
{
    STACK_OF(X509) *back = NULL;
    struct wb_result res = {0};
    EVP_PKEY *pub = NULL;
    char *label = NULL;
    bool found = false;
    int r;

    r = tok_find_key(t, id, id_len, &label);
    if (r == 0)
        r = tok_public_key(t, id, id_len, &pub);
    if (r < 0) {
        snprintf(errbuf, errlen, _("key on the token: %s"), tok_detail());
        goto out;
    }
    if (EVP_PKEY_eq(X509_get0_pubkey(leaf), pub) != 1) {
        ERR_clear_error();
        snprintf(errbuf, errlen, "%s", _("the certificate's public key is not the token key's"));
        r = PA_E_CERT;
        goto out;
    }
    r = tok_store_cert(t, leaf, id, id_len, label, &res.leaf_written);
    if (r < 0) {
        snprintf(errbuf, errlen, _("writing the certificate: %s"), tok_detail());
        goto out;
    }
    r = store_chain(t, chain, &res);
    if (r < 0) {
        snprintf(errbuf, errlen, _("writing CA certificates: %s"), tok_detail());
        goto out;
    }
    /* Read back: the leaf must now be there under the key's id, byte for byte. */
    r = tok_list_certs(t, id, id_len, &back);
    if (r < 0) {
        snprintf(errbuf, errlen, _("reading certificates back: %s"), tok_detail());
        goto out;
    }
    for (int i = 0; i < sk_X509_num(back) && !found; i++)
        found = X509_cmp(sk_X509_value(back, i), leaf) == 0;
    if (!found) {
        snprintf(errbuf, errlen, "%s", _("the certificate is not on the token after writing it"));
        r = PA_E_TOKEN;
        goto out;
    }
    *ret = res;
    r = 0;
out:
    sk_X509_pop_free(back, X509_free);
    EVP_PKEY_free(pub);
    free(label);
    return r;
}
