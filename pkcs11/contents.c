/* SPDX-License-Identifier: Apache-2.0 */
/*
 * contents.c - what a token holds: its objects counted by class, certificates split into CA and
 * user certificates, and "blank" as pkio-agent defines it. tok_peek_contents() counts a token
 * the caller has not selected, without logging in, for the watch daemon.
 */
#include "p11.h"

#include "i18n.h"
#include "pa_err.h"

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdlib.h>
#include <string.h>

/* PKCS#11 v2.40 CKA_CERTIFICATE_CATEGORY values. */
#define CATEGORY_UNSPECIFIED 0UL
#define CATEGORY_AUTHORITY   2UL

int p11_find_handles(struct tok_token *t, CK_ATTRIBUTE *tmpl, CK_ULONG ntmpl,
                     CK_OBJECT_HANDLE **ret_h, size_t *ret_n)
{
    CK_OBJECT_HANDLE *h = NULL, batch[64];
    size_t n = 0;
    CK_ULONG got = 0;
    CK_RV rv;
    int r = 0;

    rv = P11CALL(t->ctx, C_FindObjectsInit, t->session, tmpl, ntmpl);
    if (rv != CKR_OK)
        return p11_err(rv);
    do {
        CK_OBJECT_HANDLE *more;

        rv = P11CALL(t->ctx, C_FindObjects, t->session, batch, 64, &got);
        if (rv != CKR_OK || got > 64 || n + got > P11_MAX_OBJECTS) {
            if (rv == CKR_OK)
                p11_set_detail(_("the token lists more than %d objects"), P11_MAX_OBJECTS);
            r = rv != CKR_OK ? p11_err(rv) : PA_E_TOKEN;
            break;
        }
        if (!got)
            break;
        more = realloc(h, (n + got) * sizeof(*h));
        if (!more) {
            r = PA_E_NOMEM;
            break;
        }
        h = more;
        memcpy(h + n, batch, got * sizeof(*h));
        n += got;
    } while (got > 0);
    (void)P11CALL(t->ctx, C_FindObjectsFinal, t->session);
    if (r < 0) {
        free(h);
        return r;
    }
    *ret_h = h;
    *ret_n = n;
    return 0;
}

/* Count the objects of one class this session can see; with ret_h, also their handles. */
static int find_class(struct tok_token *t, CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE **ret_h,
                      unsigned *ret_n)
{
    CK_ATTRIBUTE tmpl = {CKA_CLASS, &cls, sizeof(cls)};
    CK_OBJECT_HANDLE *h = NULL;
    size_t n = 0;
    int r = p11_find_handles(t, &tmpl, 1, &h, &n);

    if (r < 0)
        return r;
    if (ret_h)
        *ret_h = h;
    else
        free(h);
    *ret_n = (unsigned)n;
    return 0;
}

/* Does the X.509 value of a certificate object say basicConstraints CA:TRUE? */
static bool value_says_ca(struct tok_token *t, CK_OBJECT_HANDLE h)
{
    CK_CERTIFICATE_TYPE type = (CK_CERTIFICATE_TYPE)-1;
    CK_ATTRIBUTE a = {CKA_CERTIFICATE_TYPE, &type, sizeof(type)};
    const unsigned char *p;
    unsigned char *der = NULL;
    bool ca = false;
    X509 *x;

    if (P11CALL(t->ctx, C_GetAttributeValue, t->session, h, &a, 1) != CKR_OK || type != CKC_X_509)
        return false;
    a = (CK_ATTRIBUTE){CKA_VALUE, NULL, 0};
    if (P11CALL(t->ctx, C_GetAttributeValue, t->session, h, &a, 1) != CKR_OK ||
        a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen == 0 || a.ulValueLen > 65536)
        return false;
    der = malloc(a.ulValueLen);
    if (!der)
        return false;
    a.pValue = der;
    p = der;
    x = P11CALL(t->ctx, C_GetAttributeValue, t->session, h, &a, 1) == CKR_OK
            ? d2i_X509(NULL, &p, (long)a.ulValueLen)
            : NULL;
    /* EXFLAG_CA: basicConstraints present with cA TRUE (not a v1 root, not keyCertSign alone). */
    if (x)
        ca = (X509_get_extension_flags(x) & EXFLAG_CA) != 0;
    X509_free(x);
    free(der);
    return ca;
}

/*
 * A CA certificate: category authority; where the token gives no category (or 0, unspecified),
 * an X.509 certificate whose basicConstraints says CA:TRUE. Anything unreadable is not a CA.
 */
static bool is_ca_cert(struct tok_token *t, CK_OBJECT_HANDLE h)
{
    CK_ULONG category = CATEGORY_UNSPECIFIED;
    CK_ATTRIBUTE a = {CKA_CERTIFICATE_CATEGORY, &category, sizeof(category)};
    CK_RV rv = P11CALL(t->ctx, C_GetAttributeValue, t->session, h, &a, 1);

    if (rv == CKR_OK && a.ulValueLen == sizeof(category) && category != CATEGORY_UNSPECIFIED)
        return category == CATEGORY_AUTHORITY;
    return value_says_ca(t, h);
}

/* CKA_ID of an object (at most 64 bytes); 0 when it has none. */
static size_t object_id(struct tok_token *t, CK_OBJECT_HANDLE h, unsigned char id[64])
{
    CK_ATTRIBUTE a = {CKA_ID, id, 64};

    if (P11CALL(t->ctx, C_GetAttributeValue, t->session, h, &a, 1) != CKR_OK ||
        a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > 64)
        return 0;
    return a.ulValueLen;
}

/*
 * Public keys that only mirror a CA certificate: OpenSC's PKCS#15 layer shows a public-key
 * object (same CKA_ID) for every certificate on the card. They say nothing about keys of a
 * person, so a card holding only CA certificates stays blank.
 */
static unsigned mirrored_keys(struct tok_token *t, const CK_OBJECT_HANDLE *pubs, unsigned npubs,
                              const CK_OBJECT_HANDLE *cas, unsigned ncas)
{
    unsigned char a[64], b[64];
    unsigned n = 0;

    for (unsigned i = 0; i < npubs; i++) {
        size_t la = object_id(t, pubs[i], a);
        bool mirror = false;

        for (unsigned j = 0; la && j < ncas && !mirror; j++)
            mirror = object_id(t, cas[j], b) == la && memcmp(a, b, la) == 0;
        n += mirror;
    }
    return n;
}

int tok_token_contents(struct tok_token *t, struct tok_contents *ret)
{
    struct tok_contents c = {0};
    CK_OBJECT_HANDLE *certs = NULL, *pubs = NULL, *cas = NULL;
    unsigned ncerts = 0;
    int r;

    r = find_class(t, CKO_PRIVATE_KEY, NULL, &c.private_keys);
    if (r == 0)
        r = find_class(t, CKO_PUBLIC_KEY, &pubs, &c.public_keys);
    if (r == 0)
        r = find_class(t, CKO_SECRET_KEY, NULL, &c.secret_keys);
    if (r == 0)
        r = find_class(t, CKO_CERTIFICATE, &certs, &ncerts);
    if (r == 0 && ncerts && !(cas = calloc(ncerts, sizeof(*cas))))
        r = PA_E_NOMEM;
    for (unsigned i = 0; r == 0 && i < ncerts; i++) {
        if (is_ca_cert(t, certs[i]))
            cas[c.ca_certs++] = certs[i];
        else
            c.user_certs++;
    }
    if (r == 0 && c.public_keys && c.ca_certs)
        c.public_keys -= mirrored_keys(t, pubs, c.public_keys, cas, c.ca_certs);
    free(certs);
    free(pubs);
    free(cas);
    if (r < 0)
        return r;
    /* Private objects are visible when the user is logged in, or when the token needs no login. */
    c.logged_in = p11_session_logged_in(t) || !t->info.login_required;
    *ret = c;
    return 0;
}

bool tok_contents_blank(const struct tok_contents *c)
{
    return c->private_keys == 0 && c->public_keys == 0 && c->secret_keys == 0 && c->user_certs == 0;
}

/* The one initialised token with this serial and label (and manufacturer and model, if given). */
static int find_token(struct tok_ctx *ctx, const struct tok_info *which, struct tok_info *ret)
{
    struct tok_info *all = NULL;
    size_t n = 0, nmatch = 0;
    int r = tok_list(ctx, &all, &n);

    if (r < 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        if (!all[i].token_initialized || strcmp(all[i].serial, which->serial) != 0 ||
            strcmp(all[i].label, which->label) != 0 ||
            (which->manufacturer[0] && strcmp(all[i].manufacturer, which->manufacturer) != 0) ||
            (which->model[0] && strcmp(all[i].model, which->model) != 0))
            continue;
        if (nmatch++ == 0)
            *ret = all[i];
    }
    free(all);
    if (nmatch == 0) {
        p11_set_detail(_("token '%s' (serial %s) is not present"), which->label, which->serial);
        return PA_E_TOKEN_NOT_FOUND;
    }
    if (nmatch > 1) {
        p11_set_detail(_("%zu tokens are '%s' (serial %s)"), nmatch, which->label, which->serial);
        return PA_E_TOKEN_AMBIGUOUS;
    }
    return 0;
}

int tok_peek_contents(struct tok_ctx *ctx, const struct tok_info *which, struct tok_contents *ret)
{
    struct tok_token t = {.ctx = ctx, .session = CK_INVALID_HANDLE};
    CK_RV rv;
    int r;

    r = find_token(ctx, which, &t.info);
    if (r < 0)
        return r;
    t.slot = t.info.slot_id;
    /* A read-only public session: nothing is written, no PIN is asked for. */
    rv = P11CALL(ctx, C_OpenSession, t.slot, CKF_SERIAL_SESSION, NULL, NULL, &t.session);
    if (rv != CKR_OK)
        return p11_err(rv);
    r = tok_token_contents(&t, ret);
    (void)P11CALL(ctx, C_CloseSession, t.session);
    return r;
}
