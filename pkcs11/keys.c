/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keys.c - key pairs on the token: capability check, generation with raw C_GenerateKeyPair
 * (libp11 0.4.12 has no EC keygen and no attribute control), custody attributes, lookup,
 * public key export and deletion.
 */
#include "p11.h"

#include "i18n.h"
#include "log.h"
#include "pa_err.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* DER OIDs for CKA_EC_PARAMS. */
static const unsigned char oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x03, 0x01, 0x07};
static const unsigned char oid_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};

struct keyspec {
    CK_MECHANISM_TYPE mech;
    CK_ULONG bits;
    const unsigned char *oid;
    size_t oid_len;
};

static struct keyspec spec_of(enum tok_key_type type)
{
    switch (type) {
    case TOK_KEY_RSA3072:
        return (struct keyspec){CKM_RSA_PKCS_KEY_PAIR_GEN, 3072, NULL, 0};
    case TOK_KEY_RSA4096:
        return (struct keyspec){CKM_RSA_PKCS_KEY_PAIR_GEN, 4096, NULL, 0};
    case TOK_KEY_EC_P256:
        return (struct keyspec){CKM_EC_KEY_PAIR_GEN, 256, oid_p256, sizeof(oid_p256)};
    case TOK_KEY_EC_P384:
        return (struct keyspec){CKM_EC_KEY_PAIR_GEN, 384, oid_p384, sizeof(oid_p384)};
    case TOK_KEY_RSA2048:
    default:
        return (struct keyspec){CKM_RSA_PKCS_KEY_PAIR_GEN, 2048, NULL, 0};
    }
}

bool tok_is_piv(const struct tok_info *info)
{
    /* OpenSC's PIV driver names itself as the manufacturer ("piv_II"). */
    return strncmp(info->manufacturer, "piv_II", 6) == 0 || strstr(info->model, "PIV") != NULL;
}

/* Does the token offer mech with CKF_SIGN? */
static bool can_sign(struct tok_token *t, CK_MECHANISM_TYPE mech)
{
    CK_MECHANISM_INFO mi;

    return P11CALL(t->ctx, C_GetMechanismInfo, t->slot, mech, &mi) == CKR_OK &&
           (mi.flags & CKF_SIGN);
}

int tok_check_sign(struct tok_token *t, enum tok_key_type type, bool pss)
{
    struct keyspec ks = spec_of(type);

    if (ks.oid && !can_sign(t, CKM_ECDSA)) {
        /* The engine hashes with SHA-256 and has the token sign the digest (CKM_ECDSA). */
        p11_set_detail(can_sign(t, CKM_ECDSA_SHA1)
                           ? _("token '%s' cannot sign ECDSA with SHA-256 (no CKM_ECDSA; it "
                               "offers only CKM_ECDSA_SHA1), so no CSR can be made with an EC key "
                               "on it; use an RSA key")
                           : _("token '%s' cannot sign ECDSA with SHA-256 (no CKM_ECDSA), so no "
                               "CSR can be made with an EC key on it; use an RSA key"),
                       t->info.label);
        return PA_E_UNSUPPORTED;
    }
    if (!ks.oid && pss && !can_sign(t, CKM_RSA_PKCS_PSS)) {
        p11_set_detail(_("token '%s' cannot sign RSASSA-PSS (no CKM_RSA_PKCS_PSS); enroll "
                         "without --pss"),
                       t->info.label);
        return PA_E_UNSUPPORTED;
    }
    if (!ks.oid && !pss && !can_sign(t, CKM_RSA_PKCS)) {
        p11_set_detail(can_sign(t, CKM_RSA_PKCS_PSS)
                           ? _("token '%s' cannot sign with PKCS#1 v1.5 (no CKM_RSA_PKCS); try "
                               "--pss")
                           : _("token '%s' cannot sign with PKCS#1 v1.5 (no CKM_RSA_PKCS)"),
                       t->info.label);
        return PA_E_UNSUPPORTED;
    }
    return 0;
}

/* Is the size of ks within the mechanism's? Sizes are in bits for both RSA and EC; some old
 * tokens report EC sizes in bytes. A maximum of 0 says nothing. */
static bool keygen_size_ok(const struct keyspec *ks, const CK_MECHANISM_INFO *mi)
{
    if (!mi->ulMaxKeySize || (ks->bits >= mi->ulMinKeySize && ks->bits <= mi->ulMaxKeySize))
        return true;
    return ks->oid && ks->bits / 8 >= mi->ulMinKeySize && ks->bits / 8 <= mi->ulMaxKeySize;
}

/* Does the token (info) offer a key pair generation mechanism for type, of its size? */
static int keygen_mech_ok(struct tok_token *t, const struct tok_info *info, enum tok_key_type type)
{
    struct keyspec ks = spec_of(type);
    CK_MECHANISM_INFO mi;
    CK_RV rv;

    rv = P11CALL(t->ctx, C_GetMechanismInfo, t->slot, ks.mech, &mi);
    if (rv == CKR_MECHANISM_INVALID && tok_is_piv(info)) {
        p11_set_detail("%s", _("this is a PIV card (OpenSC's PIV driver), and key pairs cannot "
                               "be generated on it through PKCS#11; generate the key in the "
                               "card's PIV slot with its vendor's tool (yubico-piv-tool, ykman piv "
                               "keys generate) or use a PKCS#15 card"));
        return PA_E_UNSUPPORTED;
    }
    if (rv == CKR_MECHANISM_INVALID) {
        p11_set_detail(_("token '%s' cannot generate %s keys"), info->label,
                       tok_key_type_name(type));
        return PA_E_UNSUPPORTED;
    }
    if (rv != CKR_OK)
        return p11_err(rv);
    if (!(mi.flags & CKF_GENERATE_KEY_PAIR)) {
        p11_set_detail(_("token '%s' cannot generate %s key pairs"), info->label,
                       tok_key_type_name(type));
        return PA_E_UNSUPPORTED;
    }
    if (!keygen_size_ok(&ks, &mi)) {
        p11_set_detail(_("token '%s' supports %s keys of %lu-%lu bits only, not %lu"), info->label,
                       ks.oid ? "EC" : "RSA", (unsigned long)mi.ulMinKeySize,
                       (unsigned long)mi.ulMaxKeySize, (unsigned long)ks.bits);
        return PA_E_UNSUPPORTED;
    }
    return 0;
}

int tok_check_keygen(struct tok_token *t, enum tok_key_type type)
{
    struct tok_info info;
    int r;

    r = tok_token_info(t, &info);
    if (r < 0)
        return r;
    if (info.write_protected) {
        p11_set_detail(_("token '%s' is write-protected"), info.label);
        return PA_E_UNSUPPORTED;
    }
    r = keygen_mech_ok(t, &info, type);
    if (r < 0)
        return r;
    if (info.free_private_memory >= 0 && info.free_private_memory < 1024 &&
        info.free_private_memory != 0) {
        p11_set_detail(_("token '%s' has only %ld bytes of private memory left"), info.label,
                       info.free_private_memory);
        return PA_E_UNSUPPORTED;
    }
    return 0;
}

/* Find objects of a class (and id, if id_len > 0). Up to max handles into out. */
static int find_objects(struct tok_token *t, CK_OBJECT_CLASS cls, const unsigned char *id,
                        size_t id_len, CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *ret_n)
{
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_ID, (void *)(uintptr_t)id, id_len},
    };
    CK_ULONG n = 0;
    CK_RV rv;

    rv = P11CALL(t->ctx, C_FindObjectsInit, t->session, tmpl, id_len ? 2 : 1);
    if (rv != CKR_OK)
        return p11_err(rv);
    rv = P11CALL(t->ctx, C_FindObjects, t->session, out, max, &n);
    (void)P11CALL(t->ctx, C_FindObjectsFinal, t->session);
    if (rv != CKR_OK)
        return p11_err(rv);
    *ret_n = n;
    return 0;
}

/* Exactly one object of this class and id, else NOT_FOUND / AMBIGUOUS. */
static int find_one(struct tok_token *t, CK_OBJECT_CLASS cls, const unsigned char *id,
                    size_t id_len, CK_OBJECT_HANDLE *ret)
{
    CK_OBJECT_HANDLE h[2];
    CK_ULONG n = 0;
    int r = find_objects(t, cls, id, id_len, h, 2, &n);

    if (r < 0)
        return r;
    if (n == 0)
        return PA_E_TOKEN_NOT_FOUND;
    if (n > 1) {
        p11_set_detail("%s", cls == CKO_PRIVATE_KEY
                                 ? _("two private key objects share one CKA_ID; refusing to guess")
                                 : _("two public key objects share one CKA_ID; refusing to guess"));
        return PA_E_TOKEN_AMBIGUOUS;
    }
    *ret = h[0];
    return 0;
}

/* Read a variable-length attribute into a malloc'd buffer. */
static int get_attr(struct tok_token *t, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type,
                    unsigned char **ret, CK_ULONG *ret_len)
{
    CK_ATTRIBUTE a = {type, NULL, 0};
    CK_RV rv;

    rv = P11CALL(t->ctx, C_GetAttributeValue, t->session, h, &a, 1);
    if (rv != CKR_OK)
        return p11_err(rv);
    if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > 1 << 20)
        return PA_E_TOKEN;
    a.pValue = malloc(a.ulValueLen ? a.ulValueLen : 1);
    if (!a.pValue)
        return PA_E_NOMEM;
    rv = P11CALL(t->ctx, C_GetAttributeValue, t->session, h, &a, 1);
    if (rv != CKR_OK) {
        free(a.pValue);
        return p11_err(rv);
    }
    *ret = a.pValue;
    *ret_len = a.ulValueLen;
    return 0;
}

/* Strip the DER OCTET STRING around CKA_EC_POINT (tokens differ: some return it raw). */
static int ec_point_raw(const unsigned char *p, size_t len, const unsigned char **ret,
                        size_t *ret_len)
{
    if (len >= 2 && p[0] == 0x04 && (p[1] & 0x80) == 0 && (size_t)p[1] + 2 == len) {
        *ret = p + 2;
        *ret_len = len - 2;
        return 0;
    }
    if (len >= 3 && p[0] == 0x04 && p[1] == 0x81 && (size_t)p[2] + 3 == len) {
        *ret = p + 3;
        *ret_len = len - 3;
        return 0;
    }
    if (len > 0 && p[0] == 0x04 && (len % 2) == 1) { /* raw uncompressed point */
        *ret = p;
        *ret_len = len;
        return 0;
    }
    return PA_E_TOKEN;
}

static const char *curve_of_oid(const unsigned char *oid, size_t len)
{
    if (len == sizeof(oid_p256) && memcmp(oid, oid_p256, len) == 0)
        return "prime256v1";
    if (len == sizeof(oid_p384) && memcmp(oid, oid_p384, len) == 0)
        return "secp384r1";
    return NULL;
}

/* The two attribute values a public key is made of. */
struct key_attrs {
    unsigned char *v1, *v2;
    CK_ULONG l1, l2;
};

/* RSA: v1 the modulus, v2 the public exponent. */
static int rsa_params(const struct key_attrs *a, OSSL_PARAM_BLD *bld, OSSL_PARAM **ret)
{
    BIGNUM *n = BN_bin2bn(a->v1, (int)a->l1, NULL), *e = BN_bin2bn(a->v2, (int)a->l2, NULL);
    OSSL_PARAM *params = NULL;

    /* The builder keeps the BIGNUMs by reference: they live until OSSL_PARAM_BLD_to_param. */
    if (n && e && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
        params = OSSL_PARAM_BLD_to_param(bld);
    BN_free(n);
    BN_free(e);
    if (!params)
        return PA_E_TOKEN;
    *ret = params;
    return 0;
}

/* EC: v1 the curve's OID (P-256, P-384), v2 the point. */
static int ec_params(const struct key_attrs *a, OSSL_PARAM_BLD *bld, OSSL_PARAM **ret)
{
    const char *curve = curve_of_oid(a->v1, a->l1);
    OSSL_PARAM *params = NULL;
    const unsigned char *pt;
    size_t ptlen;

    if (curve && ec_point_raw(a->v2, a->l2, &pt, &ptlen) == 0 &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curve, 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, ptlen))
        params = OSSL_PARAM_BLD_to_param(bld);
    if (!params)
        return PA_E_TOKEN;
    *ret = params;
    return 0;
}

/* The OpenSSL parameters of a key object of type kt (CKK_RSA or CKK_EC). */
static int pubkey_params(struct tok_token *t, CK_OBJECT_HANDLE h, CK_KEY_TYPE kt, OSSL_PARAM **ret)
{
    struct key_attrs a = {0};
    OSSL_PARAM_BLD *bld = NULL;
    int r;

    if ((r = get_attr(t, h, kt == CKK_RSA ? CKA_MODULUS : CKA_EC_PARAMS, &a.v1, &a.l1)) < 0 ||
        (r = get_attr(t, h, kt == CKK_RSA ? CKA_PUBLIC_EXPONENT : CKA_EC_POINT, &a.v2, &a.l2)) < 0)
        goto out;
    bld = OSSL_PARAM_BLD_new();
    if (!bld) {
        r = PA_E_NOMEM;
        goto out;
    }
    r = kt == CKK_RSA ? rsa_params(&a, bld, ret) : ec_params(&a, bld, ret);
out:
    OSSL_PARAM_BLD_free(bld);
    free(a.v1);
    free(a.v2);
    return r;
}

/* Build an OpenSSL public key from a public (or, for RSA, private) key object. */
static int pubkey_from_object(struct tok_token *t, CK_OBJECT_HANDLE h, EVP_PKEY **ret)
{
    CK_KEY_TYPE kt = 0;
    CK_ATTRIBUTE a = {CKA_KEY_TYPE, &kt, sizeof(kt)};
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_PKEY *pkey = NULL;
    int r;

    if (P11CALL(t->ctx, C_GetAttributeValue, t->session, h, &a, 1) != CKR_OK)
        return PA_E_TOKEN;
    if (kt != CKK_RSA && kt != CKK_EC) {
        p11_set_detail(_("unsupported key type 0x%lx"), (unsigned long)kt);
        return PA_E_UNSUPPORTED;
    }
    r = pubkey_params(t, h, kt, &params);
    if (r < 0)
        return r;
    r = PA_E_TOKEN;
    pctx = EVP_PKEY_CTX_new_from_name(NULL, kt == CKK_RSA ? "RSA" : "EC", NULL);
    if (!pctx || EVP_PKEY_fromdata_init(pctx) <= 0 ||
        EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        goto out;
    *ret = pkey;
    r = 0;
out:
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    return r;
}

int tok_public_key(struct tok_token *t, const unsigned char *id, size_t id_len, EVP_PKEY **ret)
{
    CK_OBJECT_HANDLE h;
    int r = find_one(t, CKO_PUBLIC_KEY, id, id_len, &h);

    if (r == PA_E_TOKEN_NOT_FOUND) /* some tokens keep only the private half */
        r = find_one(t, CKO_PRIVATE_KEY, id, id_len, &h);
    if (r < 0)
        return r;
    return pubkey_from_object(t, h, ret);
}

/* CKA_ID derived from the public key: SHA-1 of the RSA modulus or of the raw EC point. */
static int derive_id(struct tok_token *t, CK_OBJECT_HANDLE pub, bool ec, unsigned char *ret_id,
                     size_t *ret_len)
{
    unsigned char *v = NULL;
    const unsigned char *p;
    CK_ULONG len = 0;
    size_t plen;
    int r;

    r = get_attr(t, pub, ec ? CKA_EC_POINT : CKA_MODULUS, &v, &len);
    if (r < 0)
        return r;
    p = v;
    plen = len;
    if (ec && ec_point_raw(v, len, &p, &plen) < 0) {
        free(v);
        return PA_E_TOKEN;
    }
    SHA1(p, plen, ret_id);
    *ret_len = SHA_DIGEST_LENGTH;
    free(v);
    return 0;
}

/* Give both halves the CKA_ID derived from the public key, or leave both at tmp_id. */
static void set_ids(struct tok_token *t, CK_OBJECT_HANDLE hpub, CK_OBJECT_HANDLE hpriv, bool ec,
                    const unsigned char *tmp_id, size_t tmp_len, unsigned char *ret_id,
                    size_t *ret_id_len)
{
    unsigned char id[SHA_DIGEST_LENGTH];
    size_t id_len = 0;
    CK_RV rv = CKR_GENERAL_ERROR;

    if (derive_id(t, hpub, ec, id, &id_len) == 0) {
        CK_ATTRIBUTE set = {CKA_ID, id, id_len};

        /* Same CKA_ID on both halves, or neither changes. */
        rv = P11CALL(t->ctx, C_SetAttributeValue, t->session, hpriv, &set, 1);
        if (rv == CKR_OK) {
            rv = P11CALL(t->ctx, C_SetAttributeValue, t->session, hpub, &set, 1);
            if (rv != CKR_OK) {
                CK_ATTRIBUTE back = {CKA_ID, (void *)(uintptr_t)tmp_id, tmp_len};

                (void)P11CALL(t->ctx, C_SetAttributeValue, t->session, hpriv, &back, 1);
            }
        }
        if (rv != CKR_OK)
            log_debug("pkcs11: token keeps CKA_ID fixed; using the id it was generated with");
    }
    if (rv != CKR_OK) {
        /* The token keeps the id it chose (some cards pick their own and ignore ours): use
         * whatever the private key really carries. */
        unsigned char *v = NULL;
        CK_ULONG len = 0;

        if (get_attr(t, hpriv, CKA_ID, &v, &len) == 0 && len > 0 && len <= TOK_ID_MAX) {
            memcpy(ret_id, v, len);
            *ret_id_len = len;
            free(v);
            return;
        }
        free(v);
        memcpy(id, tmp_id, tmp_len);
        id_len = tmp_len;
    }
    memcpy(ret_id, id, id_len);
    *ret_id_len = id_len;
}

/* A template being built: attributes point into the caller's storage. */
struct tmpl {
    CK_ATTRIBUTE a[16];
    CK_ULONG n;
};

static void tmpl_add(struct tmpl *t, CK_ATTRIBUTE_TYPE type, const void *v, size_t len)
{
    t->a[t->n++] = (CK_ATTRIBUTE){type, (void *)(uintptr_t)v, len};
}

/* A usage attribute: true when wanted; false only in explicit mode, else left to the token. */
static void tmpl_use(struct tmpl *t, CK_ATTRIBUTE_TYPE type, bool want, bool explicit_)
{
    static const CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

    if (want || explicit_)
        tmpl_add(t, type, want ? &yes : &no, sizeof(CK_BBOOL));
}

/* Public and private templates for one generation attempt. */
static void build_templates(const struct keyspec *ks, unsigned usage, bool explicit_,
                            const unsigned char *id, size_t id_len, const char *label,
                            struct tmpl *pub, struct tmpl *priv)
{
    static const CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    static const CK_BYTE e65537[] = {0x01, 0x00, 0x01};
    bool ec = ks->oid != NULL, sign = usage & TOK_USE_SIGN, dec = usage & TOK_USE_DECRYPT;
    size_t label_len = label ? strlen(label) : 0;

    pub->n = priv->n = 0;
    tmpl_add(pub, CKA_TOKEN, &yes, 1);
    tmpl_add(pub, CKA_PRIVATE, &no, 1);
    tmpl_add(pub, CKA_ID, id, id_len);
    tmpl_use(pub, CKA_VERIFY, sign, explicit_);
    tmpl_add(priv, CKA_TOKEN, &yes, 1);
    tmpl_add(priv, CKA_PRIVATE, &yes, 1);
    tmpl_add(priv, CKA_SENSITIVE, &yes, 1);
    tmpl_add(priv, CKA_EXTRACTABLE, &no, 1);
    tmpl_add(priv, CKA_ID, id, id_len);
    tmpl_use(priv, CKA_SIGN, sign, explicit_);
    if (ec) {
        tmpl_use(priv, CKA_DERIVE, dec, explicit_);
        tmpl_add(pub, CKA_EC_PARAMS, ks->oid, ks->oid_len);
    } else {
        tmpl_use(pub, CKA_ENCRYPT, dec, explicit_);
        tmpl_use(pub, CKA_WRAP, dec, explicit_);
        tmpl_use(priv, CKA_DECRYPT, dec, explicit_);
        tmpl_use(priv, CKA_UNWRAP, dec, explicit_);
        tmpl_add(pub, CKA_MODULUS_BITS, &ks->bits, sizeof(ks->bits));
        tmpl_add(pub, CKA_PUBLIC_EXPONENT, e65537, sizeof(e65537));
    }
    if (label_len) {
        tmpl_add(pub, CKA_LABEL, label, label_len);
        tmpl_add(priv, CKA_LABEL, label, label_len);
    }
}

static void keygen_info(struct tok_token *t, const struct keyspec *ks, bool explicit_,
                        struct tok_keygen_info *ret)
{
    CK_SLOT_INFO si;

    memset(ret, 0, sizeof(*ret));
    snprintf(ret->mechanism, sizeof(ret->mechanism), "%s",
             ks->oid ? "CKM_EC_KEY_PAIR_GEN" : "CKM_RSA_PKCS_KEY_PAIR_GEN");
    if (P11CALL(t->ctx, C_GetSlotInfo, t->slot, &si) == CKR_OK) {
        ret->hw_slot = si.flags & CKF_HW_SLOT;
        ret->removable = si.flags & CKF_REMOVABLE_DEVICE;
    }
    ret->usage_explicit = explicit_;
}

/* May the explicit template be the reason the generation failed, and did it leave nothing? */
static bool explicit_refused(struct tok_token *t, CK_RV rv, const unsigned char *id, size_t id_len)
{
    CK_OBJECT_HANDLE h[1];
    CK_ULONG n1 = 0, n2 = 0;

    if (rv != CKR_ATTRIBUTE_VALUE_INVALID && rv != CKR_TEMPLATE_INCONSISTENT &&
        rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_GENERAL_ERROR && rv != CKR_FUNCTION_FAILED)
        return false;
    return find_objects(t, CKO_PRIVATE_KEY, id, id_len, h, 1, &n1) == 0 &&
           find_objects(t, CKO_PUBLIC_KEY, id, id_len, h, 1, &n2) == 0 && n1 == 0 && n2 == 0;
}

int tok_keygen_ex(struct tok_token *t, enum tok_key_type type, unsigned usage, const char *label,
                  unsigned char *ret_id, size_t *ret_id_len, struct tok_keygen_info *ret_info)
{
    struct keyspec ks = spec_of(type);
    CK_MECHANISM mech = {ks.mech, NULL, 0};
    CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE, hpriv = CK_INVALID_HANDLE;
    unsigned char tmp_id[SHA_DIGEST_LENGTH];
    struct tmpl pub, priv;
    bool explicit_ = true;
    CK_RV rv;
    int r;

    r = tok_check_keygen(t, type);
    if (r < 0)
        return r;
    /* A random id first: the public key, from which the real id derives, does not exist yet. */
    if (RAND_bytes(tmp_id, sizeof(tmp_id)) != 1)
        return PA_E_INTERNAL;
    build_templates(&ks, usage, true, tmp_id, sizeof(tmp_id), label, &pub, &priv);
    rv = P11CALL(t->ctx, C_GenerateKeyPair, t->session, &mech, pub.a, pub.n, priv.a, priv.n, &hpub,
                 &hpriv);
    if (rv != CKR_OK && explicit_refused(t, rv, tmp_id, sizeof(tmp_id))) {
        /* Some tokens refuse an explicit false (tpm2-pkcs11: CKR_GENERAL_ERROR): nothing was
         * made, so ask again with only the usages we want; the key's real usages are read back
         * afterwards and checked. */
        explicit_ = false;
        build_templates(&ks, usage, false, tmp_id, sizeof(tmp_id), label, &pub, &priv);
        rv = P11CALL(t->ctx, C_GenerateKeyPair, t->session, &mech, pub.a, pub.n, priv.a, priv.n,
                     &hpub, &hpriv);
    }
    if (rv != CKR_OK)
        return p11_err(rv);
    set_ids(t, hpub, hpriv, ks.oid != NULL, tmp_id, sizeof(tmp_id), ret_id, ret_id_len);
    if (ret_info)
        keygen_info(t, &ks, explicit_, ret_info);
    return 0;
}

int tok_keygen(struct tok_token *t, enum tok_key_type type, const char *label,
               unsigned char *ret_id, size_t *ret_id_len)
{
    return tok_keygen_ex(t, type, TOK_USE_SIGN, label, ret_id, ret_id_len, NULL);
}

static bool attr_true(const CK_ATTRIBUTE *a)
{
    return a->ulValueLen == sizeof(CK_BBOOL) && *(CK_BBOOL *)a->pValue == CK_TRUE;
}

/* Does any secret component of the key come back with a value? A sensitive key answers
 * CKR_ATTRIBUTE_SENSITIVE (or the attribute does not exist for its type). */
static int value_readable(struct tok_token *t, CK_OBJECT_HANDLE h, bool *ret)
{
    static const CK_ATTRIBUTE_TYPE secret[] = {CKA_VALUE, CKA_PRIVATE_EXPONENT, CKA_PRIME_1};

    *ret = false;
    for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++) {
        CK_ATTRIBUTE a = {secret[i], NULL, 0};
        CK_RV rv = P11CALL(t->ctx, C_GetAttributeValue, t->session, h, &a, 1);

        if (rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT ||
            rv == CKR_SESSION_HANDLE_INVALID)
            return p11_err(rv);
        if (rv == CKR_OK && a.ulValueLen != CK_UNAVAILABLE_INFORMATION && a.ulValueLen > 0)
            *ret = true;
    }
    return 0;
}

int tok_key_custody(struct tok_token *t, const unsigned char *id, size_t id_len,
                    struct tok_custody *ret)
{
    enum { N = 11 };
    static const CK_ATTRIBUTE_TYPE types[N] = {
        CKA_SENSITIVE,        CKA_EXTRACTABLE, CKA_LOCAL,   CKA_NEVER_EXTRACTABLE,
        CKA_ALWAYS_SENSITIVE, CKA_TOKEN,       CKA_PRIVATE, CKA_SIGN,
        CKA_DECRYPT,          CKA_UNWRAP,      CKA_DERIVE,
    };
    CK_BBOOL v[N] = {0};
    CK_ATTRIBUTE a[N];
    CK_OBJECT_HANDLE h;
    CK_RV rv;
    int r;

    r = find_one(t, CKO_PRIVATE_KEY, id, id_len, &h);
    if (r < 0)
        return r;
    /* Attributes a token cannot report come back as unavailable: read them one by one so one
     * missing attribute does not hide the others, and count "unknown" as false. */
    for (size_t i = 0; i < N; i++) {
        a[i] = (CK_ATTRIBUTE){types[i], &v[i], 1};
        rv = P11CALL(t->ctx, C_GetAttributeValue, t->session, h, &a[i], 1);
        if (rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT ||
            rv == CKR_SESSION_HANDLE_INVALID)
            return p11_err(rv);
        if (rv != CKR_OK)
            a[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
    }
    memset(ret, 0, sizeof(*ret));
    ret->sensitive = attr_true(&a[0]);
    ret->reported_extractable = a[1].ulValueLen != CK_UNAVAILABLE_INFORMATION;
    ret->extractable = !ret->reported_extractable || attr_true(&a[1]);
    ret->local = attr_true(&a[2]);
    ret->never_extractable = attr_true(&a[3]);
    ret->always_sensitive = attr_true(&a[4]);
    ret->is_token = attr_true(&a[5]);
    ret->is_private = attr_true(&a[6]);
    ret->sign = attr_true(&a[7]);
    ret->decrypt = attr_true(&a[8]);
    ret->unwrap = attr_true(&a[9]);
    ret->derive = attr_true(&a[10]);
    return value_readable(t, h, &ret->value_readable);
}

/* 0 when there is no reason (why is NULL), else PA_E_CUSTODY with the reason as the detail. */
static int custody_refused(const char *why)
{
    if (!why)
        return 0;
    p11_set_detail(_("the key %s; it cannot be used for a PKIo certificate"), _(why));
    return PA_E_CUSTODY;
}

int tok_custody_ok(const struct tok_custody *c)
{
    const char *why = NULL;

    if (c->value_readable)
        why = N_("can be read out (its secret value is not protected)");
    else if (!c->local)
        why = N_("was not generated on the token (CKA_LOCAL false)");
    else if (c->extractable)
        why = N_("is extractable");
    else if (!c->never_extractable)
        why = N_("was extractable at some time");
    else if (!c->sensitive)
        why = N_("is not sensitive");
    else if (!c->always_sensitive)
        why = N_("was not always sensitive");
    else if (!c->is_token)
        why = N_("is a session object");
    else if (!c->is_private)
        why = N_("is not a private object");
    return custody_refused(why);
}

int tok_custody_ok_generated(const struct tok_custody *c)
{
    const char *why = NULL;

    if (c->value_readable)
        why = N_("can be read out (its secret value is not protected)");
    else if (c->reported_extractable && c->extractable)
        why = N_("is extractable");
    else if (!c->is_token)
        why = N_("is a session object");
    return custody_refused(why);
}

void tok_custody_describe(const struct tok_custody *c, char *out, size_t outlen)
{
    snprintf(out, outlen,
             "value_readable=%s extractable=%s sensitive=%s always_sensitive=%s "
             "never_extractable=%s local=%s token=%s private=%s sign=%s decrypt=%s unwrap=%s "
             "derive=%s",
             c->value_readable ? "yes" : "no",
             c->reported_extractable ? (c->extractable ? "yes" : "no") : "unreported",
             c->sensitive ? "yes" : "no", c->always_sensitive ? "yes" : "no",
             c->never_extractable ? "yes" : "no", c->local ? "yes" : "no",
             c->is_token ? "yes" : "no", c->is_private ? "yes" : "no", c->sign ? "yes" : "no",
             c->decrypt ? "yes" : "no", c->unwrap ? "yes" : "no", c->derive ? "yes" : "no");
}

int tok_usage_ok(const struct tok_custody *c, unsigned usage, bool ec)
{
    const char *why = NULL;

    if ((usage & TOK_USE_SIGN) && !c->sign)
        why = N_("signing (CKA_SIGN)");
    else if ((usage & TOK_USE_DECRYPT) && ec && !c->derive)
        why = N_("key agreement (CKA_DERIVE)");
    else if ((usage & TOK_USE_DECRYPT) && !ec && !(c->decrypt && c->unwrap))
        why = N_("decryption (CKA_DECRYPT and CKA_UNWRAP)");
    if (why) {
        p11_set_detail(_("the token did not give the key the usage asked for: %s"), _(why));
        return PA_E_CUSTODY;
    }
    return 0;
}

int tok_find_key(struct tok_token *t, const unsigned char *id, size_t id_len, char **ret_label)
{
    CK_OBJECT_HANDLE h;
    unsigned char *v = NULL;
    CK_ULONG len = 0;
    int r = find_one(t, CKO_PRIVATE_KEY, id, id_len, &h);

    if (r < 0 || !ret_label)
        return r;
    *ret_label = NULL;
    if (get_attr(t, h, CKA_LABEL, &v, &len) == 0) {
        char *s = malloc(len + 1);

        if (s) {
            memcpy(s, v, len);
            s[len] = '\0';
        }
        *ret_label = s;
        free(v);
    }
    return 0;
}

int tok_find_key_by_label(struct tok_token *t, const char *label, unsigned char *ret_id,
                          size_t *ret_id_len)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_LABEL, (void *)(uintptr_t)label, strlen(label)},
    };
    CK_OBJECT_HANDLE h[2];
    unsigned char *v = NULL;
    CK_ULONG n = 0, len = 0;
    CK_RV rv;
    int r;

    rv = P11CALL(t->ctx, C_FindObjectsInit, t->session, tmpl, 2);
    if (rv != CKR_OK)
        return p11_err(rv);
    rv = P11CALL(t->ctx, C_FindObjects, t->session, h, 2, &n);
    (void)P11CALL(t->ctx, C_FindObjectsFinal, t->session);
    if (rv != CKR_OK)
        return p11_err(rv);
    if (n == 0)
        return PA_E_TOKEN_NOT_FOUND;
    if (n > 1) {
        p11_set_detail(_("several private keys are labelled '%s'; name one by id"), label);
        return PA_E_TOKEN_AMBIGUOUS;
    }
    r = get_attr(t, h[0], CKA_ID, &v, &len);
    if (r < 0)
        return r;
    if (len == 0 || len > TOK_ID_MAX) {
        free(v);
        return PA_E_TOKEN;
    }
    memcpy(ret_id, v, len);
    *ret_id_len = len;
    free(v);
    return 0;
}

int tok_delete_keypair(struct tok_token *t, const unsigned char *id, size_t id_len)
{
    static const CK_OBJECT_CLASS classes[] = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY};
    bool any = false;

    if (id_len == 0)
        return PA_E_USAGE;
    for (size_t c = 0; c < 2; c++) {
        CK_OBJECT_HANDLE h[4];
        CK_ULONG n = 0;
        int r = find_objects(t, classes[c], id, id_len, h, 4, &n);

        if (r < 0)
            return r;
        for (CK_ULONG i = 0; i < n; i++) {
            CK_RV rv = P11CALL(t->ctx, C_DestroyObject, t->session, h[i]);

            if (rv != CKR_OK)
                return p11_err(rv);
            any = true;
        }
    }
    return any ? 0 : PA_E_TOKEN_NOT_FOUND;
}

/* Handles of the objects of a class carrying this label (at most max). */
static int find_by_label(struct tok_token *t, CK_OBJECT_CLASS cls, const char *label,
                         CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *ret_n)
{
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_LABEL, (void *)(uintptr_t)label, strlen(label)},
    };
    CK_RV rv;

    rv = P11CALL(t->ctx, C_FindObjectsInit, t->session, tmpl, 2);
    if (rv != CKR_OK)
        return p11_err(rv);
    rv = P11CALL(t->ctx, C_FindObjects, t->session, out, max, ret_n);
    (void)P11CALL(t->ctx, C_FindObjectsFinal, t->session);
    return p11_err(rv);
}

int tok_reconcile_label(struct tok_token *t, const char *label)
{
    CK_OBJECT_HANDLE priv[2], pub[8];
    CK_ULONG npriv = 0, npub = 0;
    unsigned char *id = NULL;
    CK_ULONG id_len = 0;
    int r;

    r = find_by_label(t, CKO_PRIVATE_KEY, label, priv, 2, &npriv);
    if (r == 0)
        r = find_by_label(t, CKO_PUBLIC_KEY, label, pub, 8, &npub);
    if (r < 0)
        return r;
    if (npriv > 1) {
        p11_set_detail(_("several private keys are labelled '%s'"), label);
        return PA_E_TOKEN_AMBIGUOUS;
    }
    if (npriv == 0) {
        /* Half a key pair from an interrupted generation: it will never be used. */
        for (CK_ULONG i = 0; i < npub; i++) {
            CK_RV rv = P11CALL(t->ctx, C_DestroyObject, t->session, pub[i]);

            if (rv != CKR_OK)
                return p11_err(rv);
        }
        return 0;
    }
    r = get_attr(t, priv[0], CKA_ID, &id, &id_len);
    if (r < 0)
        return r;
    /* Interrupted between the two C_SetAttributeValue(CKA_ID): give the public half its id. */
    for (CK_ULONG i = 0; i < npub && r == 0; i++) {
        unsigned char *pid = NULL;
        CK_ULONG plen = 0;

        r = get_attr(t, pub[i], CKA_ID, &pid, &plen);
        if (r == 0 && (plen != id_len || memcmp(pid, id, id_len) != 0)) {
            CK_ATTRIBUTE set = {CKA_ID, id, id_len};

            r = p11_err(P11CALL(t->ctx, C_SetAttributeValue, t->session, pub[i], &set, 1));
        }
        free(pid);
    }
    free(id);
    return r;
}
