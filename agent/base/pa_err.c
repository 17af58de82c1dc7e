/* SPDX-License-Identifier: Apache-2.0 */
#include "pa_err.h"
#include "i18n.h"

#include <stdarg.h>
#include <stdio.h>

struct pa_err_row {
    int err;
    int exit_code;
    const char *text;
};

/* English (JSON and logs); cli_fail shows them translated. Keep in step with EXIT STATUS in
 * docs/pkio-agent.8. */
static const struct pa_err_row rows[] = {
    {PA_OK, 0, N_("success")},
    {PA_E_INTERNAL, 1, N_("internal error")},
    {PA_E_NOMEM, 1, N_("out of memory")},
    {PA_E_IO, 1, N_("file system error")},
    {PA_E_USAGE, 2, N_("usage error")},
    {PA_E_CONFIG, 3, N_("configuration error")},
    {PA_E_REQUEST, 4, N_("invalid order request")},
    {PA_E_MODULE, 5, N_("PKCS#11 module cannot be loaded")},
    {PA_E_TOKEN_NOT_FOUND, 5, N_("token or object not found")},
    {PA_E_TOKEN_AMBIGUOUS, 5, N_("more than one token matches")},
    {PA_E_TOKEN, 5, N_("token error")},
    {PA_E_TOKEN_GONE, 5, N_("token removed")},
    {PA_E_PIN_INCORRECT, 6, N_("PIN incorrect")},
    {PA_E_PIN_UNAVAILABLE, 6, N_("no PIN available")},
    {PA_E_PIN_LOCKED, 7, N_("PIN locked or on its final try; login refused")},
    {PA_E_UNSUPPORTED, 8, N_("token does not support the operation")},
    {PA_E_CUSTODY, 9, N_("key custody check failed")},
    {PA_E_CSR, 9, N_("CSR check failed")},
    {PA_E_CA_REJECTED, 10, N_("CertCentral rejected the request")},
    {PA_E_CA_AUTH, 11, N_("CertCentral refused the API key")},
    {PA_E_CA_UNAVAILABLE, 12, N_("CertCentral unavailable")},
    {PA_E_CA_PROTOCOL, 12, N_("unexpected answer from CertCentral")},
    {PA_E_PENDING, 13, N_("certificate not issued yet")},
    {PA_E_JOB, 14, N_("enrollment job needs attention")},
    {PA_E_CERT, 9, N_("issued certificate failed verification")},
    {PA_E_BUSY, 15, N_("token or job busy in another pkio-agent process")},
    {PA_E_REFUSED, 16, N_("refused by a safety check")},
    {PA_E_EXPIRING, 17, N_("certificates due for renewal")},
};

static const struct pa_err_row *find(int err)
{
    for (unsigned i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        if (rows[i].err == err)
            return &rows[i];
    return &rows[1];
}

const char *pa_err_str(int err)
{
    return find(err)->text;
}

int pa_err_exit_code(int err)
{
    return find(err)->exit_code;
}

int pa_errf(char *buf, size_t len, int err, const char *fmt, ...)
{
    va_list ap;

    if (!buf || !len)
        return err;
    va_start(ap, fmt);
    (void)vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return err;
}
