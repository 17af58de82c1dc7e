/* SPDX-License-Identifier: Apache-2.0 */
#include "pa_err.h"

struct pa_err_row {
    int err;
    int exit_code;
    const char *text;
};

/* Keep in step with EXIT STATUS in docs/pkio-agent.8. */
static const struct pa_err_row rows[] = {
    {PA_OK, 0, "success"},
    {PA_E_INTERNAL, 1, "internal error"},
    {PA_E_NOMEM, 1, "out of memory"},
    {PA_E_IO, 1, "file system error"},
    {PA_E_USAGE, 2, "usage error"},
    {PA_E_CONFIG, 3, "configuration error"},
    {PA_E_REQUEST, 4, "invalid order request"},
    {PA_E_MODULE, 5, "PKCS#11 module cannot be loaded"},
    {PA_E_TOKEN_NOT_FOUND, 5, "token or object not found"},
    {PA_E_TOKEN_AMBIGUOUS, 5, "more than one token matches"},
    {PA_E_TOKEN, 5, "token error"},
    {PA_E_TOKEN_GONE, 5, "token removed"},
    {PA_E_PIN_INCORRECT, 6, "PIN incorrect"},
    {PA_E_PIN_UNAVAILABLE, 6, "no PIN available"},
    {PA_E_PIN_LOCKED, 7, "PIN locked or on its final try; login refused"},
    {PA_E_UNSUPPORTED, 8, "token does not support the operation"},
    {PA_E_CUSTODY, 9, "key custody check failed"},
    {PA_E_CSR, 9, "CSR check failed"},
    {PA_E_CA_REJECTED, 10, "CertCentral rejected the request"},
    {PA_E_CA_AUTH, 11, "CertCentral refused the API key"},
    {PA_E_CA_UNAVAILABLE, 12, "CertCentral unavailable"},
    {PA_E_CA_PROTOCOL, 12, "unexpected answer from CertCentral"},
    {PA_E_PENDING, 13, "certificate not issued yet"},
    {PA_E_JOB, 14, "enrollment job needs attention"},
    {PA_E_CERT, 9, "issued certificate failed verification"},
    {PA_E_BUSY, 15, "token or job busy in another pkio-agent process"},
    {PA_E_REFUSED, 16, "refused by a safety check"},
    {PA_E_EXPIRING, 17, "certificates due for renewal"},
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
