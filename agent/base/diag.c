/* SPDX-License-Identifier: Apache-2.0 */
#include "diag.h"

#include "i18n.h"
#include "pa_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void diag_clear(struct pa_diag *d)
{
    memset(d, 0, sizeof(*d));
}

static void vrecord(struct pa_diag *d, int err, const char *detail, const char *hint, bool hint_set,
                    const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));
static void vrecord(struct pa_diag *d, int err, const char *detail, const char *hint, bool hint_set,
                    const char *fmt, va_list ap)
{
    if (!d || d->error)
        return;
    diag_clear(d);
    d->error = err;
    vsnprintf(d->context, sizeof(d->context), _(fmt), ap);
    if (!d->context[0]) /* "" is the front end's "already shown"; never for a recorded failure */
        snprintf(d->context, sizeof(d->context), "pkio-agent");
    /* a literal detail (N_()) is translated; one built by a module is already in the user's
     * language (gettext returns it unchanged) */
    snprintf(d->detail, sizeof(d->detail), "%s", detail && *detail ? _(detail) : "");
    d->hint_set = hint_set;
    snprintf(d->hint, sizeof(d->hint), "%s", hint && *hint ? _(hint) : "");
}

int diag_fail(struct pa_diag *d, int err, const char *detail, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vrecord(d, err, detail, NULL, false, fmt, ap);
    va_end(ap);
    return err;
}

int diag_fail_hint(struct pa_diag *d, int err, const char *detail, const char *hint,
                   const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vrecord(d, err, detail, hint, true, fmt, ap);
    va_end(ap);
    return err;
}

int diag_shown(struct pa_diag *d, int err)
{
    if (d && !d->error) {
        diag_clear(d);
        d->error = err;
        d->hint_set = true;
    }
    return err;
}

const char *diag_usual_hint(int err)
{
    switch (err) {
    case PA_E_USAGE:
        return N_("see 'pkio-agent --help'");
    case PA_E_MODULE:
        return N_("install the token's PKCS#11 module or name it with --module PATH");
    case PA_E_TOKEN_NOT_FOUND:
        return N_("check that the token is inserted; 'pkio-agent tokens' lists what is present");
    case PA_E_TOKEN_AMBIGUOUS:
        return N_("name one token by serial=... in the URI");
    case PA_E_TOKEN_GONE:
        return N_("the token was removed; insert the same token and run the command again");
    case PA_E_PIN_INCORRECT:
        return N_(
            "no further attempt was made; check the PIN before trying again, the token counts "
            "failed attempts");
    case PA_E_PIN_LOCKED:
        return N_(
            "pkio-agent will not try a PIN on this token; have the PIN reset (unblocked) first");
    case PA_E_PIN_UNAVAILABLE:
        return N_("give pin-source=FILE in the token URI or run on a terminal");
    case PA_E_UNSUPPORTED:
        return N_("choose another --key-type or another token");
    case PA_E_CUSTODY:
        return N_("use a key generated on the token by 'pkio-agent keygen'");
    case PA_E_CONFIG:
        return N_("fix the file named above (secret files must be mode 0600)");
    case PA_E_REQUEST:
        return N_("fix the request file; nothing was sent");
    case PA_E_CA_UNAVAILABLE:
        return N_("try again later; 'pkio-agent order-status' shows an order's state");
    default:
        return NULL;
    }
}

void diag_format(const struct pa_diag *d, char *buf, size_t len)
{
    const char *h = d->hint_set ? d->hint : diag_usual_hint(d->error);

    if (h && *h && !d->hint_set)
        h = _(h);
    snprintf(buf, len, "pkio-agent: %s: %s%s%s", d->context,
             d->detail[0] ? d->detail : _(pa_err_str(d->error)), h && *h ? "; " : "",
             h && *h ? h : "");
}
