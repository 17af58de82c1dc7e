/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certs.c - certificate objects on the token: store (leaf under the key's CKA_ID and label,
 * CA certificates as their own objects) and list.
 */
#include "p11.h"

#include "pa_err.h"

#include <openssl/x509.h>

#include <stdlib.h>
#include <string.h>

/* Is a certificate with exactly this DER value already on the token? */
static int cert_present(struct tok_token *t, unsigned char *der, int der_len, bool *ret)
{
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_VALUE, der, (CK_ULONG)der_len},
    };
    CK_OBJECT_HANDLE h;
    CK_ULONG n = 0;
    CK_RV rv;

    rv = P11CALL(t->ctx, C_FindObjectsInit, t->session, tmpl, 2);
    if (rv != CKR_OK)
        return p11_err(rv);
    rv = P11CALL(t->ctx, C_FindObjects, t->session, &h, 1, &n);
    (void)P11CALL(t->ctx, C_FindObjectsFinal, t->session);
    if (rv != CKR_OK)
        return p11_err(rv);
    *ret = n > 0;
    return 0;
}

/* The subject CN of a certificate, for CA certificate labels (caller frees). */
static char *subject_cn(X509 *cert)
{
    X509_NAME *name = X509_get_subject_name(cert);
    int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    unsigned char *utf8 = NULL;
    char *s = NULL;
    int len;

    if (idx < 0)
        return strdup("CA certificate");
    len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
    if (len < 0)
        return strdup("CA certificate");
    s = strndup((char *)utf8, (size_t)len);
    OPENSSL_free(utf8);
    return s;
}

/* The DER encodings a certificate object carries. */
struct cert_der {
    unsigned char *der, *subj, *iss, *ser;
    int der_len, subj_len, iss_len, ser_len;
};

static void cert_der_free(struct cert_der *d)
{
    OPENSSL_free(d->der);
    OPENSSL_free(d->subj);
    OPENSSL_free(d->iss);
    OPENSSL_free(d->ser);
}

/* Encode cert, its subject, issuer and serial number: 0 or PA_E_INTERNAL. */
static int cert_der_encode(X509 *cert, struct cert_der *d)
{
    d->der_len = i2d_X509(cert, &d->der);
    d->subj_len = i2d_X509_NAME(X509_get_subject_name(cert), &d->subj);
    d->iss_len = i2d_X509_NAME(X509_get_issuer_name(cert), &d->iss);
    d->ser_len = i2d_ASN1_INTEGER(X509_get0_serialNumber(cert), &d->ser);
    if (d->der_len <= 0 || d->subj_len <= 0 || d->iss_len <= 0 || d->ser_len <= 0)
        return PA_E_INTERNAL;
    return 0;
}

/*
 * Create the certificate object: a leaf under CKA_ID id (id_len > 0), else a CA certificate of
 * category "authority" (without the category on a token that predates it, v2.20).
 */
static int create_cert_object(struct tok_token *t, const struct cert_der *d,
                              const unsigned char *id, size_t id_len, const char *label)
{
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_CERTIFICATE_TYPE ctype = CKC_X_509;
    CK_ULONG category = 2; /* CK_CERTIFICATE_CATEGORY_AUTHORITY */
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_CERTIFICATE_TYPE, &ctype, sizeof(ctype)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &no, sizeof(no)},
        {CKA_SUBJECT, d->subj, (CK_ULONG)d->subj_len},
        {CKA_ISSUER, d->iss, (CK_ULONG)d->iss_len},
        {CKA_SERIAL_NUMBER, d->ser, (CK_ULONG)d->ser_len},
        {CKA_VALUE, d->der, (CK_ULONG)d->der_len},
        {CKA_LABEL, (void *)(uintptr_t)label, label ? strlen(label) : 0},
        {CKA_ID, (void *)(uintptr_t)id, id_len},                 /* leaf only */
        {CKA_CERTIFICATE_CATEGORY, &category, sizeof(category)}, /* CA only */
    };
    CK_OBJECT_HANDLE h;
    CK_ULONG n = label ? 9 : 8;
    CK_RV rv;

    tmpl[n] = id_len ? tmpl[9] : tmpl[10];
    n++;
    rv = P11CALL(t->ctx, C_CreateObject, t->session, tmpl, n, &h);
    if (!id_len && (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_VALUE_INVALID ||
                    rv == CKR_TEMPLATE_INCONSISTENT))
        rv = P11CALL(t->ctx, C_CreateObject, t->session, tmpl, n - 1, &h); /* v2.20 token */
    return rv == CKR_OK ? 0 : p11_err(rv);
}

int tok_store_cert(struct tok_token *t, X509 *cert, const unsigned char *id, size_t id_len,
                   const char *label, bool *ret_written)
{
    struct cert_der d = {0};
    char *ca_label = NULL;
    bool present = false;
    int r;

    r = cert_der_encode(cert, &d);
    if (r < 0)
        goto out;
    r = cert_present(t, d.der, d.der_len, &present);
    if (r < 0)
        goto out;
    if (present) {
        *ret_written = false;
        goto out;
    }
    if (!id_len) {
        ca_label = subject_cn(cert);
        if (!ca_label) {
            r = PA_E_NOMEM;
            goto out;
        }
        label = ca_label;
    }
    r = create_cert_object(t, &d, id, id_len, label);
    if (r == 0)
        *ret_written = true;
out:
    cert_der_free(&d);
    free(ca_label);
    return r;
}

int tok_list_certs(struct tok_token *t, const unsigned char *id, size_t id_len,
                   STACK_OF(X509) * *ret)
{
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_ID, (void *)(uintptr_t)id, id_len},
    };
    CK_OBJECT_HANDLE h[64];
    STACK_OF(X509) *sk = sk_X509_new_null();
    CK_ULONG n = 0;
    CK_RV rv;
    int r;

    if (!sk)
        return PA_E_NOMEM;
    rv = P11CALL(t->ctx, C_FindObjectsInit, t->session, tmpl, id_len ? 2 : 1);
    if (rv != CKR_OK) {
        r = p11_err(rv);
        goto out;
    }
    rv = P11CALL(t->ctx, C_FindObjects, t->session, h, 64, &n);
    (void)P11CALL(t->ctx, C_FindObjectsFinal, t->session);
    if (rv != CKR_OK) {
        r = p11_err(rv);
        goto out;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        CK_ATTRIBUTE a = {CKA_VALUE, NULL, 0};
        const unsigned char *p;
        unsigned char *buf;
        X509 *x;

        rv = P11CALL(t->ctx, C_GetAttributeValue, t->session, h[i], &a, 1);
        if (rv != CKR_OK || a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > 65536)
            continue;
        buf = malloc(a.ulValueLen ? a.ulValueLen : 1);
        if (!buf) {
            r = PA_E_NOMEM;
            goto out;
        }
        a.pValue = buf;
        rv = P11CALL(t->ctx, C_GetAttributeValue, t->session, h[i], &a, 1);
        p = buf;
        x = rv == CKR_OK ? d2i_X509(NULL, &p, (long)a.ulValueLen) : NULL;
        free(buf);
        if (x && !sk_X509_push(sk, x)) {
            X509_free(x);
            r = PA_E_NOMEM;
            goto out;
        }
    }
    *ret = sk;
    sk = NULL;
    r = 0;
out:
    sk_X509_pop_free(sk, X509_free);
    return r;
}
