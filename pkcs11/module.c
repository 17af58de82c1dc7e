/* SPDX-License-Identifier: Apache-2.0 */
/*
 * module.c - loading a PKCS#11 module, the CK_RV choke point, slots and tokens, login.
 */
#include "p11.h"

#include "i18n.h"
#include "log.h"
#include "pa_err.h"
#include "secret.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char detail[256];

const char *tok_detail(void)
{
    return detail;
}

void p11_set_detail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
}

const char *p11_rv_name(CK_RV rv)
{
    switch (rv) {
#define RV(x)                                                                                      \
    case x:                                                                                        \
        return #x
        RV(CKR_OK);
        RV(CKR_HOST_MEMORY);
        RV(CKR_SLOT_ID_INVALID);
        RV(CKR_GENERAL_ERROR);
        RV(CKR_FUNCTION_FAILED);
        RV(CKR_ARGUMENTS_BAD);
        RV(CKR_ATTRIBUTE_READ_ONLY);
        RV(CKR_ATTRIBUTE_SENSITIVE);
        RV(CKR_ATTRIBUTE_TYPE_INVALID);
        RV(CKR_ATTRIBUTE_VALUE_INVALID);
        RV(CKR_DEVICE_ERROR);
        RV(CKR_DEVICE_MEMORY);
        RV(CKR_DEVICE_REMOVED);
        RV(CKR_FUNCTION_NOT_SUPPORTED);
        RV(CKR_KEY_SIZE_RANGE);
        RV(CKR_MECHANISM_INVALID);
        RV(CKR_MECHANISM_PARAM_INVALID);
        RV(CKR_OBJECT_HANDLE_INVALID);
        RV(CKR_PIN_INCORRECT);
        RV(CKR_PIN_INVALID);
        RV(CKR_PIN_LEN_RANGE);
        RV(CKR_PIN_EXPIRED);
        RV(CKR_PIN_LOCKED);
        RV(CKR_SESSION_CLOSED);
        RV(CKR_SESSION_HANDLE_INVALID);
        RV(CKR_SESSION_READ_ONLY);
        RV(CKR_TEMPLATE_INCOMPLETE);
        RV(CKR_TEMPLATE_INCONSISTENT);
        RV(CKR_TOKEN_NOT_PRESENT);
        RV(CKR_TOKEN_NOT_RECOGNIZED);
        RV(CKR_TOKEN_WRITE_PROTECTED);
        RV(CKR_USER_ALREADY_LOGGED_IN);
        RV(CKR_USER_NOT_LOGGED_IN);
        RV(CKR_USER_PIN_NOT_INITIALIZED);
        RV(CKR_USER_TYPE_INVALID);
        RV(CKR_CRYPTOKI_NOT_INITIALIZED);
        RV(CKR_CRYPTOKI_ALREADY_INITIALIZED);
        RV(CKR_BUFFER_TOO_SMALL);
#undef RV
    default:
        return "CKR_(unknown)";
    }
}

CK_RV p11_note(const char *fn, CK_RV rv)
{
    if (rv != CKR_OK) {
        p11_set_detail("%s: %s (0x%lx)", fn, p11_rv_name(rv), (unsigned long)rv);
        log_debug("pkcs11: %s", detail);
    }
    return rv;
}

int p11_err(CK_RV rv)
{
    switch (rv) {
    case CKR_OK:
        return 0;
    case CKR_HOST_MEMORY:
        return PA_E_NOMEM;
    case CKR_PIN_INCORRECT:
        return PA_E_PIN_INCORRECT;
    case CKR_PIN_LOCKED:
    case CKR_PIN_EXPIRED:
        return PA_E_PIN_LOCKED;
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_DEVICE_REMOVED:
    case CKR_SESSION_CLOSED:
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SLOT_ID_INVALID:
    case CKR_TOKEN_NOT_RECOGNIZED:
        return PA_E_TOKEN_GONE;
    case CKR_MECHANISM_INVALID:
    case CKR_KEY_SIZE_RANGE:
    case CKR_DEVICE_MEMORY:
    case CKR_FUNCTION_NOT_SUPPORTED:
        return PA_E_UNSUPPORTED;
    default:
        return PA_E_TOKEN;
    }
}

static int module_initialize(struct tok_ctx *ctx)
{
    CK_C_INITIALIZE_ARGS args;
    CK_RV rv;

    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    rv = P11CALL(ctx, C_Initialize, &args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
        return PA_E_MODULE;
    ctx->initialized = true;
    return 0;
}

int tok_open(const char *module_path, struct tok_ctx **ret)
{
    CK_C_GetFunctionList get_list;
    struct tok_ctx *ctx = NULL;
    int r = PA_E_MODULE;

    detail[0] = '\0';
    ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return PA_E_NOMEM;
    ctx->module_path = strdup(module_path);
    if (!ctx->module_path) {
        r = PA_E_NOMEM;
        goto out;
    }
    ctx->dl = dlopen(module_path, RTLD_NOW | RTLD_LOCAL);
    if (!ctx->dl) {
        const char *e = dlerror();

        p11_set_detail("%s", e ? e : _("dlopen failed"));
        goto out;
    }
    *(void **)&get_list = dlsym(ctx->dl, "C_GetFunctionList");
    if (!get_list) {
        p11_set_detail(_("%s is not a PKCS#11 module (no C_GetFunctionList)"), module_path);
        goto out;
    }
    if (get_list(&ctx->f) != CKR_OK || !ctx->f) {
        p11_set_detail("%s", _("C_GetFunctionList failed"));
        goto out;
    }
    r = module_initialize(ctx);
    if (r < 0)
        goto out;
    *ret = ctx;
    ctx = NULL;
    r = 0;
out:
    tok_close(ctx);
    return r;
}

void tok_close(struct tok_ctx *ctx)
{
    if (!ctx)
        return;
    if (ctx->engine) {
        /* The engine shares the module with us; let it finish first. */
        ENGINE_finish(ctx->engine);
        ENGINE_free(ctx->engine);
    }
    if (ctx->initialized)
        (void)ctx->f->C_Finalize(NULL);
    if (ctx->dl && !getenv("PKIO_NO_DLCLOSE")) /* keep for readable sanitizer traces */
        dlclose(ctx->dl);
    free(ctx->module_path);
    free(ctx);
}

int tok_rescan(struct tok_ctx *ctx)
{
    if (ctx->engine)
        return 0; /* never pull the module from under a live engine */
    if (ctx->initialized)
        (void)P11CALL(ctx, C_Finalize, NULL);
    ctx->initialized = false;
    return module_initialize(ctx);
}

/* Copy a blank- (or NUL-) padded CK_UTF8CHAR field into a C string. */
static void pad_copy(char *dst, size_t dstlen, const CK_UTF8CHAR *src, size_t srclen)
{
    size_t n = srclen < dstlen - 1 ? srclen : dstlen - 1;

    memcpy(dst, src, n);
    dst[n] = '\0';
    n = strnlen(dst, n);
    while (n > 0 && (dst[n - 1] == ' ' || dst[n - 1] == '\0'))
        n--;
    dst[n] = '\0';
    for (size_t i = 0; i < n; i++) /* keep output and logs printable */
        if ((unsigned char)dst[i] < 0x20 || dst[i] == 0x7f)
            dst[i] = '?';
}

static long mem_value(CK_ULONG v)
{
    if (v == CK_UNAVAILABLE_INFORMATION || v > (CK_ULONG)0x7fffffffL)
        return -1;
    return (long)v;
}

static int read_token_info(struct tok_ctx *ctx, CK_SLOT_ID slot, struct tok_info *ret)
{
    CK_TOKEN_INFO ti;
    CK_RV rv;

    rv = P11CALL(ctx, C_GetTokenInfo, slot, &ti);
    if (rv != CKR_OK)
        return p11_err(rv);
    memset(ret, 0, sizeof(*ret));
    ret->slot_id = slot;
    pad_copy(ret->label, sizeof(ret->label), ti.label, sizeof(ti.label));
    pad_copy(ret->manufacturer, sizeof(ret->manufacturer), ti.manufacturerID,
             sizeof(ti.manufacturerID));
    pad_copy(ret->model, sizeof(ret->model), ti.model, sizeof(ti.model));
    pad_copy(ret->serial, sizeof(ret->serial), ti.serialNumber, sizeof(ti.serialNumber));
    ret->token_initialized = ti.flags & CKF_TOKEN_INITIALIZED;
    ret->login_required = ti.flags & CKF_LOGIN_REQUIRED;
    ret->user_pin_initialized = ti.flags & CKF_USER_PIN_INITIALIZED;
    ret->user_pin_count_low = ti.flags & CKF_USER_PIN_COUNT_LOW;
    ret->user_pin_final_try = ti.flags & CKF_USER_PIN_FINAL_TRY;
    ret->user_pin_locked = ti.flags & CKF_USER_PIN_LOCKED;
    ret->user_pin_to_be_changed = ti.flags & CKF_USER_PIN_TO_BE_CHANGED;
    ret->protected_auth_path = ti.flags & CKF_PROTECTED_AUTHENTICATION_PATH;
    ret->write_protected = ti.flags & CKF_WRITE_PROTECTED;
    ret->rng = ti.flags & CKF_RNG;
    ret->free_public_memory = mem_value(ti.ulFreePublicMemory);
    ret->free_private_memory = mem_value(ti.ulFreePrivateMemory);
    ret->min_pin_len = ti.ulMinPinLen;
    ret->max_pin_len = ti.ulMaxPinLen;
    return 0;
}

int tok_list(struct tok_ctx *ctx, struct tok_info **ret, size_t *ret_n)
{
    CK_SLOT_ID *slots = NULL;
    struct tok_info *infos = NULL;
    CK_ULONG n = 0;
    size_t found = 0;
    CK_RV rv;
    int r;

    rv = P11CALL(ctx, C_GetSlotList, CK_TRUE, NULL, &n);
    if (rv != CKR_OK) {
        r = p11_err(rv);
        goto out;
    }
    slots = calloc(n ? n : 1, sizeof(*slots));
    infos = calloc(n ? n : 1, sizeof(*infos));
    if (!slots || !infos) {
        r = PA_E_NOMEM;
        goto out;
    }
    rv = P11CALL(ctx, C_GetSlotList, CK_TRUE, slots, &n);
    if (rv != CKR_OK) {
        r = p11_err(rv);
        goto out;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        /* A slot whose token vanished or is unreadable is not a candidate. */
        if (read_token_info(ctx, slots[i], &infos[found]) == 0)
            found++;
    }
    *ret = infos;
    *ret_n = found;
    infos = NULL;
    r = 0;
out:
    free(slots);
    free(infos);
    return r;
}

int tok_select(struct tok_ctx *ctx, const struct tok_uri *u, struct tok_token **ret,
               struct tok_info **ret_matches, size_t *ret_n)
{
    struct tok_info *all = NULL, *match = NULL;
    struct tok_token *t = NULL;
    size_t n = 0, nmatch = 0;
    CK_RV rv;
    int r;

    r = tok_list(ctx, &all, &n);
    if (r < 0)
        goto out;
    match = calloc(n ? n : 1, sizeof(*match));
    if (!match) {
        r = PA_E_NOMEM;
        goto out;
    }
    /* An uninitialised token cannot hold keys; tpm2-pkcs11 even gives its empty slot the same
     * serial as the real token. */
    for (size_t i = 0; i < n; i++)
        if (all[i].token_initialized && tok_uri_matches(u, &all[i]))
            match[nmatch++] = all[i];
    if (nmatch == 0) {
        p11_set_detail(ngettext("no token matches (%zu token present)",
                                "no token matches (%zu tokens present)", n),
                       n);
        r = PA_E_TOKEN_NOT_FOUND;
        goto out;
    }
    if (nmatch > 1) {
        p11_set_detail(_("%zu tokens match; name one by serial"), nmatch);
        if (ret_matches) {
            *ret_matches = match;
            *ret_n = nmatch;
            match = NULL;
        }
        r = PA_E_TOKEN_AMBIGUOUS;
        goto out;
    }
    t = calloc(1, sizeof(*t));
    if (!t) {
        r = PA_E_NOMEM;
        goto out;
    }
    t->ctx = ctx;
    t->slot = match[0].slot_id;
    t->info = match[0];
    t->session = CK_INVALID_HANDLE;
    rv = P11CALL(ctx, C_OpenSession, t->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                 &t->session);
    if (rv != CKR_OK) {
        r = p11_err(rv);
        goto out;
    }
    *ret = t;
    t = NULL;
    r = 0;
out:
    tok_token_close(t);
    free(all);
    free(match);
    return r;
}

void tok_token_close(struct tok_token *t)
{
    if (!t)
        return;
    if (t->session != CK_INVALID_HANDLE)
        (void)P11CALL(t->ctx, C_CloseSession, t->session);
    free(t);
}

int tok_token_info(struct tok_token *t, struct tok_info *ret)
{
    struct tok_info info;
    int r = read_token_info(t->ctx, t->slot, &info);

    if (r < 0)
        return r;
    /* A different token in the same slot is as good as gone: never touch it. */
    if (strcmp(info.serial, t->info.serial) != 0) {
        p11_set_detail(_("token in slot %lu is now serial %s, not %s"), (unsigned long)t->slot,
                       info.serial, t->info.serial);
        return PA_E_TOKEN_GONE;
    }
    *ret = info;
    return 0;
}

int tok_login_precheck(const struct tok_info *info)
{
    if (info->user_pin_locked) {
        p11_set_detail(_("token '%s' (serial %s) reports its user PIN locked"), info->label,
                       info->serial);
        return PA_E_PIN_LOCKED;
    }
    if (info->user_pin_final_try) {
        p11_set_detail(_("token '%s' (serial %s) reports one PIN attempt left; not trying, to "
                         "avoid locking it"),
                       info->label, info->serial);
        return PA_E_PIN_LOCKED;
    }
    if (info->user_pin_to_be_changed) {
        p11_set_detail(_("token '%s' (serial %s) requires the user PIN to be changed first"),
                       info->label, info->serial);
        return PA_E_PIN_LOCKED;
    }
    if (!info->user_pin_initialized) {
        p11_set_detail(_("token '%s' (serial %s) has no user PIN set: its issuer (security "
                         "officer) must initialise the token first"),
                       info->label, info->serial);
        return PA_E_PIN_LOCKED;
    }
    return 0;
}

int tok_pin_change_precheck(const struct tok_info *info)
{
    struct tok_info i = *info;

    i.user_pin_to_be_changed = false; /* the one flag that a change answers */
    return tok_login_precheck(&i);
}

void tok_pin_len_range(const struct tok_info *info, size_t *ret_min, size_t *ret_max)
{
    unsigned long min = info->min_pin_len, max = info->max_pin_len;

    *ret_min = min == CK_UNAVAILABLE_INFORMATION ? 0 : (size_t)min;
    *ret_max = max == CK_UNAVAILABLE_INFORMATION || max < *ret_min ? 0 : (size_t)max;
}

bool tok_pin_len_ok(const struct tok_info *info, size_t len)
{
    size_t min, max;

    tok_pin_len_range(info, &min, &max);
    return len > 0 && len >= min && (max == 0 || len <= max);
}

bool p11_session_logged_in(struct tok_token *t)
{
    CK_SESSION_INFO si;

    if (P11CALL(t->ctx, C_GetSessionInfo, t->session, &si) != CKR_OK)
        return false;
    return si.state == CKS_RW_USER_FUNCTIONS || si.state == CKS_RO_USER_FUNCTIONS;
}

int tok_login(struct tok_token *t, const struct secret *pin)
{
    struct tok_info info;
    CK_RV rv;
    int r;

    r = tok_token_info(t, &info);
    if (r < 0)
        return r;
    if (!info.login_required || p11_session_logged_in(t))
        return 0;
    r = tok_login_precheck(&info);
    if (r < 0)
        return r;
    if (!pin) {
        if (!info.protected_auth_path) {
            p11_set_detail(_("no PIN given and token '%s' has no PIN pad"), info.label);
            return PA_E_PIN_UNAVAILABLE;
        }
        rv = P11CALL(t->ctx, C_Login, t->session, CKU_USER, NULL, 0);
    } else {
        if (!tok_pin_len_ok(&info, pin->len)) {
            p11_set_detail(_("PIN length %zu is outside token '%s''s range %lu-%lu; no login "
                             "attempted"),
                           pin->len, info.label, info.min_pin_len, info.max_pin_len);
            return PA_E_PIN_INCORRECT;
        }
        rv = P11CALL(t->ctx, C_Login, t->session, CKU_USER, (CK_UTF8CHAR *)pin->buf,
                     (CK_ULONG)pin->len);
    }
    if (rv == CKR_USER_ALREADY_LOGGED_IN)
        return 0;
    if (rv == CKR_PIN_INCORRECT)
        p11_set_detail(_("token '%s' (serial %s) rejected the PIN"), info.label, info.serial);
    return p11_err(rv);
}

/* What C_SetPIN's answer means; the detail says that the PIN was not changed. */
static int set_pin_result(const struct tok_info *info, CK_RV rv)
{
    switch (rv) {
    case CKR_OK:
        return 0;
    case CKR_PIN_INCORRECT:
        p11_set_detail(_("token '%s' (serial %s) rejected the current (transport) PIN; the PIN "
                         "was not changed"),
                       info->label, info->serial);
        return PA_E_PIN_INCORRECT;
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
        p11_set_detail(_("token '%s' (serial %s) refused the new PIN (%s); the PIN was not "
                         "changed"),
                       info->label, info->serial, p11_rv_name(rv));
        return PA_E_PIN_INCORRECT;
    default:
        return p11_err(rv);
    }
}

/* Is this a token whose PIN tok_change_pin may change now? 0 yes; the detail says why not. */
static int change_allowed(struct tok_token *t, const struct tok_info *info, bool pinpad)
{
    int r = tok_pin_change_precheck(info); /* read just now: never spend the last try */

    if (r < 0)
        return r;
    if (!info->user_pin_to_be_changed) {
        p11_set_detail(_("token '%s' (serial %s) no longer asks for its PIN to be changed; "
                         "nothing changed"),
                       info->label, info->serial);
        return PA_E_TOKEN;
    }
    if (pinpad && !info->protected_auth_path) {
        p11_set_detail(_("no PIN given and token '%s' has no PIN pad"), info->label);
        return PA_E_PIN_UNAVAILABLE;
    }
    if (p11_session_logged_in(t)) { /* C_SetPIN would change the logged-in user's PIN */
        p11_set_detail(_("token '%s' is already logged in; its PIN was not changed"), info->label);
        return PA_E_INTERNAL;
    }
    return 0;
}

int tok_change_pin(struct tok_token *t, const struct secret *old_pin, const struct secret *new_pin)
{
    struct tok_info info;
    CK_RV rv;
    int r;

    if (!old_pin != !new_pin)
        return PA_E_INTERNAL;
    r = tok_token_info(t, &info);
    if (r == 0)
        r = change_allowed(t, &info, !old_pin);
    if (r < 0)
        return r;
    if (!old_pin) {
        rv = P11CALL(t->ctx, C_SetPIN, t->session, NULL, 0, NULL, 0);
        return set_pin_result(&info, rv);
    }
    if (!tok_pin_len_ok(&info, old_pin->len)) {
        p11_set_detail(_("current PIN length %zu is outside token '%s''s range %lu-%lu; no "
                         "change attempted"),
                       old_pin->len, info.label, info.min_pin_len, info.max_pin_len);
        return PA_E_PIN_INCORRECT;
    }
    if (!tok_pin_len_ok(&info, new_pin->len)) {
        p11_set_detail(_("new PIN length %zu is outside token '%s''s range %lu-%lu; no change "
                         "attempted"),
                       new_pin->len, info.label, info.min_pin_len, info.max_pin_len);
        return PA_E_PIN_UNAVAILABLE;
    }
    rv = P11CALL(t->ctx, C_SetPIN, t->session, (CK_UTF8CHAR *)old_pin->buf, (CK_ULONG)old_pin->len,
                 (CK_UTF8CHAR *)new_pin->buf, (CK_ULONG)new_pin->len);
    return set_pin_result(&info, rv);
}
