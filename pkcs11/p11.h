/* SPDX-License-Identifier: Apache-2.0 */
/*
 * p11.h - private to pkcs11/: the module handle, the token handle and the one choke point
 * through which every C_* call goes (debug trace + CK_RV mapping).
 */
#ifndef PKIO_P11_H
#define PKIO_P11_H

#include "tok.h"

#include <p11-kit/pkcs11.h>

#include <openssl/engine.h>

struct tok_ctx {
    void *dl;            /* dlopen handle */
    CK_FUNCTION_LIST *f; /* the module's function list */
    char *module_path;   /* also handed to the engine */
    bool initialized;    /* C_Initialize succeeded (or was already done) */
    ENGINE *engine;      /* libp11's engine, loaded on first signing key */
};

struct tok_token {
    struct tok_ctx *ctx;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE session;
    struct tok_info info; /* as selected: serial is the binding */
};

/* Record rv of a call for tok_detail() and trace it at debug level; returns rv. */
CK_RV p11_note(const char *fn, CK_RV rv);
/* Map a CK_RV to a PA_E_* code. */
int p11_err(CK_RV rv);
const char *p11_rv_name(CK_RV rv);
void p11_set_detail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Is the user logged in on this token's session (C_GetSessionInfo)? */
bool p11_session_logged_in(struct tok_token *t);

/* Every object matching tmpl (NULL, 0: all) this session sees, at most P11_MAX_OBJECTS (more
 * is PA_E_TOKEN: a broken module); *ret_h is malloc'd (NULL when none). */
#define P11_MAX_OBJECTS 4096
int p11_find_handles(struct tok_token *t, CK_ATTRIBUTE *tmpl, CK_ULONG ntmpl,
                     CK_OBJECT_HANDLE **ret_h, size_t *ret_n);

#define P11CALL(ctx, fn, ...) p11_note(#fn, (ctx)->f->fn(__VA_ARGS__))

#endif
