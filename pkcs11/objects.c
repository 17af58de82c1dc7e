/* SPDX-License-Identifier: Apache-2.0 */
/*
 * objects.c - every object a token shows: class, CKA_ID, CKA_LABEL, CKA_PRIVATE, the key type of
 * keys and the X.509 value of certificates (with CA or not, as contents.c decides it), for
 * `pkio-agent certs`. Read only: nothing here writes to a token or logs in.
 */
#include "p11.h"

#include "i18n.h"
#include "pa_err.h"

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OBJECTS_VAL_MAX    65536 /* largest certificate value read */
#define OBJECTS_LBL_MAX    4096  /* longest label read */
#define CATEGORY_AUTHORITY 2UL   /* CKA_CERTIFICATE_CATEGORY: authority */

const char *tok_obj_class_name(enum tok_obj_class c)
{
    static const char *const names[] = {"private_key", "public_key", "secret_key",
                                        "certificate", "data",       "other"};

    return (unsigned)c < sizeof(names) / sizeof(names[0]) ? names[c] : "other";
}

/* Errors that mean the token or session is gone; anything else reads as "attribute absent". */
static bool fatal_rv(CK_RV rv)
{
    return rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT ||
           rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED || rv == CKR_DEVICE_ERROR ||
           rv == CKR_HOST_MEMORY;
}

/* Every handle the session sees. */
/*
 * A variable-length attribute into a malloc'd buffer (one byte more, NUL). 1 when the token does
 * not give it (or it is larger than max); negative only when the token is gone.
 */
static int get_var(struct tok_token *t, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, size_t max,
                   unsigned char **ret, size_t *ret_len)
{
    CK_ATTRIBUTE a = {type, NULL, 0};
    unsigned char *buf;
    CK_RV rv;

    rv = P11CALL(t->ctx, C_GetAttributeValue, t->session, h, &a, 1);
    if (fatal_rv(rv))
        return p11_err(rv);
    if (rv != CKR_OK || a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > max)
        return 1;
    buf = calloc(1, a.ulValueLen + 1);
    if (!buf)
        return PA_E_NOMEM;
    a.pValue = buf;
    rv = P11CALL(t->ctx, C_GetAttributeValue, t->session, h, &a, 1);
    if (rv != CKR_OK || a.ulValueLen > max) {
        free(buf);
        return fatal_rv(rv) ? p11_err(rv) : 1;
    }
    *ret = buf;
    *ret_len = a.ulValueLen;
    return 0;
}

/* A CK_ULONG attribute; 1 when absent, negative when the token is gone. */
static int get_ulong(struct tok_token *t, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, CK_ULONG *ret)
{
    CK_ULONG v = 0;
    CK_ATTRIBUTE a = {type, &v, sizeof(v)};
    CK_RV rv = P11CALL(t->ctx, C_GetAttributeValue, t->session, h, &a, 1);

    if (fatal_rv(rv))
        return p11_err(rv);
    if (rv != CKR_OK || a.ulValueLen != sizeof(v))
        return 1;
    *ret = v;
    return 0;
}

/* A CK_BBOOL attribute: absent reads as false; negative when the token is gone. */
static int get_bool(struct tok_token *t, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, bool *ret)
{
    CK_BBOOL v = CK_FALSE;
    CK_ATTRIBUTE a = {type, &v, sizeof(v)};
    CK_RV rv = P11CALL(t->ctx, C_GetAttributeValue, t->session, h, &a, 1);

    if (fatal_rv(rv))
        return p11_err(rv);
    *ret = rv == CKR_OK && a.ulValueLen == sizeof(v) && v == CK_TRUE;
    return 0;
}

static enum tok_obj_class class_of(CK_ULONG cls)
{
    switch (cls) {
    case CKO_PRIVATE_KEY:
        return TOK_OBJ_PRIVATE_KEY;
    case CKO_PUBLIC_KEY:
        return TOK_OBJ_PUBLIC_KEY;
    case CKO_SECRET_KEY:
        return TOK_OBJ_SECRET_KEY;
    case CKO_CERTIFICATE:
        return TOK_OBJ_CERTIFICATE;
    case CKO_DATA:
        return TOK_OBJ_DATA;
    default:
        return TOK_OBJ_OTHER;
    }
}

/* CKA_KEY_TYPE of a key object, as "rsa", "ec" or "other". */
static int read_key_type(struct tok_token *t, CK_OBJECT_HANDLE h, struct tok_object *o)
{
    CK_ULONG kt = (CK_ULONG)-1;
    int r = get_ulong(t, h, CKA_KEY_TYPE, &kt);

    if (r < 0)
        return r;
    snprintf(o->key_type, sizeof(o->key_type), "%s",
             kt == CKK_RSA  ? "rsa"
             : kt == CKK_EC ? "ec"
                            : "other");
    return 0;
}

/*
 * The X.509 value of a certificate object, and whether it is a CA certificate: category
 * authority; where the token gives no category (or 0, unspecified), basicConstraints CA:TRUE.
 */
static int read_cert(struct tok_token *t, CK_OBJECT_HANDLE h, struct tok_object *o)
{
    CK_ULONG type = (CK_ULONG)-1, category = 0;
    unsigned char *der = NULL;
    const unsigned char *p;
    size_t len = 0;
    int r;

    r = get_ulong(t, h, CKA_CERTIFICATE_TYPE, &type);
    if (r < 0 || type != CKC_X_509)
        return r < 0 ? r : 0;
    r = get_ulong(t, h, CKA_CERTIFICATE_CATEGORY, &category);
    if (r < 0)
        return r;
    r = get_var(t, h, CKA_VALUE, OBJECTS_VAL_MAX, &der, &len);
    if (r != 0)
        return r < 0 ? r : 0;
    p = der;
    o->cert = d2i_X509(NULL, &p, (long)len);
    free(der);
    if (category != 0)
        o->ca = category == CATEGORY_AUTHORITY;
    else if (o->cert)
        o->ca = (X509_get_extension_flags(o->cert) & EXFLAG_CA) != 0;
    return 0;
}

/* CKA_ID and CKA_LABEL (a missing label reads as ""). */
static int read_names(struct tok_token *t, CK_OBJECT_HANDLE h, struct tok_object *o)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    int r;

    r = get_var(t, h, CKA_ID, OBJECTS_LBL_MAX, &buf, &len);
    if (r < 0)
        return r;
    if (r == 0 && len > TOK_ID_MAX) {
        o->id_too_long = true;
    } else if (r == 0) {
        memcpy(o->id, buf, len);
        o->id_len = len;
    }
    free(buf);
    buf = NULL;
    r = get_var(t, h, CKA_LABEL, OBJECTS_LBL_MAX, &buf, &len);
    if (r < 0)
        return r;
    o->label = r == 0 ? (char *)buf : strdup("");
    return o->label ? 0 : PA_E_NOMEM;
}

static int read_object(struct tok_token *t, CK_OBJECT_HANDLE h, struct tok_object *o)
{
    CK_ULONG cls = (CK_ULONG)-1;
    int r;

    r = get_ulong(t, h, CKA_CLASS, &cls);
    if (r < 0)
        return r;
    o->cls = class_of(cls);
    r = read_names(t, h, o);
    if (r == 0)
        r = get_bool(t, h, CKA_PRIVATE, &o->is_private);
    if (r == 0 && (o->cls == TOK_OBJ_PRIVATE_KEY || o->cls == TOK_OBJ_PUBLIC_KEY ||
                   o->cls == TOK_OBJ_SECRET_KEY))
        r = read_key_type(t, h, o);
    if (r == 0 && o->cls == TOK_OBJ_CERTIFICATE)
        r = read_cert(t, h, o);
    return r;
}

void tok_objects_free(struct tok_objects *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n; i++) {
        free(o->v[i].label);
        X509_free(o->v[i].cert);
    }
    free(o->v);
    free(o);
}

int tok_list_objects(struct tok_token *t, struct tok_objects **ret)
{
    struct tok_objects *o = NULL;
    CK_OBJECT_HANDLE *h = NULL;
    size_t n = 0;
    int r;

    r = p11_find_handles(t, NULL, 0, &h, &n);
    if (r < 0)
        return r;
    o = calloc(1, sizeof(*o));
    if (o)
        o->v = calloc(n ? n : 1, sizeof(*o->v));
    if (!o || !o->v) {
        r = PA_E_NOMEM;
        goto out;
    }
    for (; o->n < n; o->n++) {
        r = read_object(t, h[o->n], &o->v[o->n]);
        if (r < 0) {
            o->n++; /* free what this one got too */
            goto out;
        }
    }
    /* Private objects are visible when the user is logged in, or when the token needs no login. */
    o->logged_in = p11_session_logged_in(t) || !t->info.login_required;
    *ret = o;
    o = NULL;
    r = 0;
out:
    tok_objects_free(o);
    free(h);
    return r;
}

int tok_open_readonly(struct tok_ctx *ctx, const struct tok_info *which, struct tok_token **ret)
{
    struct tok_info *all = NULL;
    struct tok_token *t = NULL;
    size_t n = 0;
    CK_RV rv;
    int r;

    r = tok_list(ctx, &all, &n);
    if (r < 0)
        return r;
    r = PA_E_TOKEN_NOT_FOUND;
    for (size_t i = 0; i < n && r == PA_E_TOKEN_NOT_FOUND; i++) {
        if (!all[i].token_initialized || all[i].slot_id != which->slot_id ||
            strcmp(all[i].serial, which->serial) != 0 || strcmp(all[i].label, which->label) != 0)
            continue;
        t = calloc(1, sizeof(*t));
        if (!t) {
            r = PA_E_NOMEM;
            break;
        }
        *t = (struct tok_token){.ctx = ctx, .slot = all[i].slot_id, .info = all[i]};
        rv = P11CALL(ctx, C_OpenSession, t->slot, CKF_SERIAL_SESSION, NULL, NULL, &t->session);
        if (rv != CKR_OK) {
            t->session = CK_INVALID_HANDLE;
            r = p11_err(rv);
            break;
        }
        r = 0;
    }
    free(all);
    if (r == PA_E_TOKEN_NOT_FOUND)
        p11_set_detail(_("token '%s' (serial %s) is no longer present"), which->label,
                       which->serial);
    if (r < 0) {
        tok_token_close(t);
        return r;
    }
    *ret = t;
    return 0;
}
