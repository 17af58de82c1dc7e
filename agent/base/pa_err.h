/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pa_err.h - the project's error codes and the exit codes they map to.
 *
 * Every function in pkio-agent returns 0 or one of these negative codes. Library codes
 * (CK_RV, CURLcode, json-c errors) never leave the module that owns the library; they are
 * mapped to one of these at the module's edge. The exit-code table is documented in
 * docs/pkio-agent.8 (EXIT STATUS) and must stay in step with pa_err_exit_code().
 */
#ifndef PKIO_PA_ERR_H
#define PKIO_PA_ERR_H

#include <stddef.h>

enum pa_err {
    PA_OK = 0,
    PA_E_INTERNAL = -1,         /* bug or unexpected library failure */
    PA_E_NOMEM = -2,            /* out of memory */
    PA_E_IO = -3,               /* file system error */
    PA_E_USAGE = -4,            /* bad command line */
    PA_E_CONFIG = -5,           /* bad configuration file or key file */
    PA_E_REQUEST = -6,          /* invalid order request file */
    PA_E_MODULE = -7,           /* PKCS#11 module cannot be loaded */
    PA_E_TOKEN_NOT_FOUND = -8,  /* no token (or object) matches */
    PA_E_TOKEN_AMBIGUOUS = -9,  /* several tokens match; we never guess */
    PA_E_TOKEN = -10,           /* token refused an operation or reported an error */
    PA_E_TOKEN_GONE = -11,      /* token removed mid-operation */
    PA_E_PIN_INCORRECT = -12,   /* the token rejected the PIN (one attempt spent) */
    PA_E_PIN_LOCKED = -13,      /* PIN locked, final try or must be changed: login refused */
    PA_E_PIN_UNAVAILABLE = -14, /* no PIN source and no terminal to ask on */
    PA_E_UNSUPPORTED = -15,     /* token lacks the mechanism, key size or room */
    PA_E_CUSTODY = -16,         /* key is not provably generated on and bound to the token */
    PA_E_CSR = -17,             /* CSR could not be built or did not verify */
    PA_E_CA_REJECTED = -18,     /* CertCentral refused the request or the order ended badly */
    PA_E_CA_AUTH = -19,         /* CertCentral refused the API key (401/403) */
    PA_E_CA_UNAVAILABLE = -20,  /* network, TLS, 5xx or rate limit: try again later */
    PA_E_CA_PROTOCOL = -21,     /* CertCentral answered something we cannot understand */
    PA_E_PENDING = -22,         /* order placed, certificate not issued yet */
    PA_E_JOB = -23,             /* job record problem or undecidable recovery: officer needed */
    PA_E_CERT = -24,            /* issued certificate does not match the key or chain */
    PA_E_BUSY = -25,            /* another pkio-agent process is working on this token or job */
    PA_E_REFUSED = -26,         /* a safety check refused: other person, token not blank, ... */
    PA_E_EXPIRING = -27,        /* `expiring`: certificates are due for renewal (or expired) */
};

/* Short English description of an error code; never NULL. */
const char *pa_err_str(int err);

/* Process exit status for an error code (0 for PA_OK). */
int pa_err_exit_code(int err);

/*
 * The one error formatter: the message (printf format) into buf, when there is one (buf may be
 * NULL or len 0), then return err, so that `return pa_errf(errbuf, errlen, PA_E_JOB, ...)` both
 * says and returns.
 */
__attribute__((format(printf, 4, 5))) int pa_errf(char *buf, size_t len, int err, const char *fmt,
                                                  ...);

#endif
