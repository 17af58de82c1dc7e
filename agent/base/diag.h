/* SPDX-License-Identifier: Apache-2.0 */
/*
 * diag.h - one diagnostic: what a library call (the enrollment core, revoke) says went wrong,
 * in parts, for its front end to show. The command line shows it as one line
 * "pkio-agent: CONTEXT: DETAIL; HINT" (cli_report); another front end may lay it out itself.
 *
 * The rule: the first failure recorded wins. A later diag_fail on a diag that already holds
 * one changes nothing and returns its own err, so a failure on a cleanup path never hides the
 * failure that came first. Where the command line printed two lines for one run (an audit line
 * that cannot be appended while a job's failure is recorded, a save before a retry), the
 * enrollment core records the secondary failure in a scratch diag and sends its line
 * (diag_format) to the front end's warn callback at once (enroll_aside, enroll_internal.h), so
 * the output is unchanged and the diag keeps the failure that ends the run. A diag whose context is
 * "" while error is set was already shown by the front end itself (its callback printed it, e.g. a
 * PIN prompt's refusal): nothing more to show.
 */
#ifndef PKIO_DIAG_H
#define PKIO_DIAG_H

#include <stdbool.h>
#include <stddef.h>

struct pa_diag {
    int error;          /* PA_E_* of the failure; 0: nothing failed */
    char context[1024]; /* what failed, translated ("order of job X (not placed)") */
    char detail[1024];  /* the lower layer's words (token, CertCentral, OS); "" = none */
    char hint[512];     /* what to do */
    bool hint_set;      /* false: the front end uses the error's usual hint */
};

void diag_clear(struct pa_diag *d);

/*
 * Record a failure (fmt is translated with _(), as cli_fail does; detail too when it is a
 * message of the catalog, marked N_()) and return err. The first failure recorded wins; later
 * calls on a diag that holds one return err unchanged.
 */
int diag_fail(struct pa_diag *d, int err, const char *detail, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* diag_fail with a hint of its own (translated; NULL: none) instead of the error's usual one. */
int diag_fail_hint(struct pa_diag *d, int err, const char *detail, const char *hint,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The front end has shown this failure itself: record err only (context ""), return err. */
int diag_shown(struct pa_diag *d, int err);

/* What the officer should do next after err, untranslated (N_()), or NULL: a diag's hint when
 * it has none of its own (hint_set false). */
const char *diag_usual_hint(int err);
/* The one line the command line shows, translated, without a newline:
 * "pkio-agent: CONTEXT: DETAIL; HINT" (DETAIL: the error's text when empty; HINT: the error's
 * usual hint unless hint_set). */
void diag_format(const struct pa_diag *d, char *buf, size_t len);

#endif
