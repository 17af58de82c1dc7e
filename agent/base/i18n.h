/* SPDX-License-Identifier: Apache-2.0 */
/*
 * i18n.h - the language of user-facing messages: gettext with an English (en) and a Dutch (nl)
 * catalog, chosen by --lang, else the configuration's ui.lang, else the environment
 * (LANGUAGE, LC_ALL, LC_MESSAGES, LANG), else a default (English; Dutch for the kiosk).
 *
 * Every message an officer or a person at the kiosk reads goes through _() (or N_() where the
 * text is a static initialiser, translated with _() where it is shown). Machine records (the
 * audit log, job records, syslog anchors, JSON field names) and debug logging stay English.
 * cli_fail() and cli_fail_hint() translate their format and hint themselves.
 */
#ifndef PKIO_I18N_H
#define PKIO_I18N_H

#include <libintl.h>
#include <stdbool.h>

#define _(s)  gettext(s)
#define N_(s) (s)

/* gettext's text domain: the catalogs are LOCALEDIR/LANG/LC_MESSAGES/pkio-agent.mo. */
#define I18N_DOMAIN "pkio-agent"

/*
 * Bind the catalogs (PKIO_LOCALEDIR from the environment when not setuid, for a build tree;
 * else the compiled-in directory) and choose the language the environment names, else English.
 * Messages are UTF-8 whatever the locale (a locale need not be installed: C.UTF-8 serves).
 */
void i18n_init(void);

/* Is s a language we have a catalog for ("nl" or "en")? */
bool i18n_lang_valid(const char *s);

/*
 * Use language lang ("nl" or "en") from now on, for this process and (through LANGUAGE) for
 * the processes it starts. 0, or PA_E_USAGE for any other value.
 */
int i18n_set_lang(const char *lang);

/* The language in use: "nl" or "en". */
const char *i18n_lang(void);

/* The language the environment named when i18n_init() ran ("nl" or "en"), or NULL when it
 * named none of ours (LANGUAGE set by i18n_set_lang() does not count). */
const char *i18n_env_lang(void);

#endif
