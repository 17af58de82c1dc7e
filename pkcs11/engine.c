/* SPDX-License-Identifier: Apache-2.0 */
/*
 * engine.c - signing keys through libp11's "pkcs11" ENGINE, so that OpenSSL signs on the token
 * with the proper mechanism (CKM_RSA_PKCS_PSS for RSASSA-PSS, not raw RSA).
 *
 * The engine loads the same module path; the module is initialised once per process and the
 * login is per application, so the engine finds the session we logged in already and never
 * needs the PIN. The engine is never made OpenSSL's default (tpm2-pkcs11 uses OpenSSL inside the
 * module and breaks if it is). The key is looked up by us first, because the 0.4.12 engine can
 * crash at exit after a failed lookup.
 */
#include "p11.h"

#include "i18n.h"
#include "pa_err.h"

#include <openssl/err.h>
#include <openssl/ui.h>

#include <stdlib.h>
#include <string.h>

static int engine_load(struct tok_ctx *ctx)
{
    ENGINE *e = NULL;

    if (ctx->engine)
        return 0;
    e = ENGINE_by_id("pkcs11");
    if (!e) {
        p11_set_detail("%s", _("OpenSSL cannot load the pkcs11 engine (Debian package "
                               "libengine-pkcs11-openssl)"));
        ERR_clear_error();
        return PA_E_MODULE;
    }
    if (!ENGINE_ctrl_cmd_string(e, "MODULE_PATH", ctx->module_path, 0) || !ENGINE_init(e)) {
        p11_set_detail(_("the pkcs11 engine cannot use module %s"), ctx->module_path);
        ERR_clear_error();
        ENGINE_free(e);
        return PA_E_MODULE;
    }
    ctx->engine = e; /* structural + functional reference, released in tok_close() */
    return 0;
}

/*
 * The engine must never ask for a PIN by itself: that would bypass the PIN-flag checks and the
 * one-C_Login rule (it happens when the engine gets a module instance of its own that is not
 * logged in, as with p11-kit-client). A UI whose reader always fails makes it give up instead.
 */
static int ui_refuse(UI *ui, UI_STRING *uis)
{
    (void)ui;
    (void)uis;
    return 0;
}

int tok_signing_key(struct tok_token *t, const unsigned char *id, size_t id_len, EVP_PKEY **ret)
{
    UI_METHOD *no_prompt = NULL;
    struct tok_info info = t->info;
    EVP_PKEY *pkey;
    char *uri;
    int r;

    r = tok_find_key(t, id, id_len, NULL);
    if (r < 0)
        return r;
    r = engine_load(t->ctx);
    if (r < 0)
        return r;
    /* Name the key by serial and id only: labels and (tpm2) models may not be unique/clean. */
    info.label[0] = '\0';
    uri = tok_uri_for_key(&info, id, id_len, NULL);
    if (!uri)
        return PA_E_NOMEM;
    /* tok_uri_for_key() writes "token=;serial=..": drop the empty token attribute. */
    if (strncmp(uri, "pkcs11:token=;", 14) == 0)
        memmove(uri + 7, uri + 14, strlen(uri + 14) + 1);
    no_prompt = UI_create_method("pkio-agent: no PIN prompts from the engine");
    if (!no_prompt || UI_method_set_reader(no_prompt, ui_refuse) != 0) {
        UI_destroy_method(no_prompt);
        free(uri);
        return PA_E_NOMEM;
    }
    pkey = ENGINE_load_private_key(t->ctx->engine, uri, no_prompt, NULL);
    UI_destroy_method(no_prompt);
    free(uri);
    if (!pkey) {
        p11_set_detail("%s", _("the pkcs11 engine could not load the key (a module that gives "
                               "the engine its own, not logged-in instance, such as "
                               "p11-kit-client, is not supported)"));
        ERR_clear_error();
        return PA_E_TOKEN;
    }
    *ret = pkey;
    return 0;
}
