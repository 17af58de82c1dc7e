/* SPDX-License-Identifier: Apache-2.0 */
/*
 * i18n.c - choosing the catalog. glibc's gettext ignores LANGUAGE in the "C" locale, and a
 * workstation need not have nl_NL.UTF-8 generated: LC_MESSAGES falls back to the built-in
 * C.UTF-8, and LANGUAGE then names the catalog. Only LC_MESSAGES changes: numbers and JSON
 * stay in the C locale.
 */
#include "i18n.h"
#include "pa_err.h"

#include <locale.h>
#include <stdlib.h>
#include <string.h>

#ifndef PKIO_LOCALEDIR
#define PKIO_LOCALEDIR "/usr/share/locale"
#endif

static const char *current = "en";
static const char *env_lang; /* what the environment named when i18n_init() ran */

bool i18n_lang_valid(const char *s)
{
    return s && (strcmp(s, "nl") == 0 || strcmp(s, "en") == 0);
}

/* "nl_NL.UTF-8", "nl", "nl_BE@euro" -> "nl"; "en_GB" -> "en"; "C", "POSIX", "de_DE" -> NULL. */
static const char *lang_of(const char *v)
{
    if (!v || !*v)
        return NULL;
    if (strncmp(v, "nl", 2) == 0 && strchr("_.@:", v[2] ? v[2] : '_'))
        return "nl";
    if (strncmp(v, "en", 2) == 0 && strchr("_.@:", v[2] ? v[2] : '_'))
        return "en";
    return NULL;
}

/* What the environment names now (before i18n_set_lang() sets LANGUAGE). */
static const char *lang_of_env(void)
{
    /* POSIX order: LC_ALL overrides LC_MESSAGES overrides LANG; GNU's LANGUAGE comes first
     * unless the locale is C (then gettext ignores it too). */
    const char *all = getenv("LC_ALL"), *msgs = getenv("LC_MESSAGES"), *lang = getenv("LANG");
    const char *loc = all && *all ? all : msgs && *msgs ? msgs : lang;

    if (loc && *loc && strcmp(loc, "C") != 0 && strcmp(loc, "POSIX") != 0) {
        const char *l = lang_of(getenv("LANGUAGE"));

        if (l)
            return l;
    }
    return lang_of(loc);
}

int i18n_set_lang(const char *lang)
{
    if (!i18n_lang_valid(lang))
        return PA_E_USAGE;
    current = strcmp(lang, "nl") == 0 ? "nl" : "en";
    if (setenv("LANGUAGE", current, 1) != 0)
        return PA_E_NOMEM;
    /* A new textdomain() call makes gettext drop what it looked up in the old language. */
    textdomain(I18N_DOMAIN);
    return 0;
}

const char *i18n_lang(void)
{
    return current;
}

void i18n_init(void)
{
    const char *dir = secure_getenv("PKIO_LOCALEDIR");
    const char *loc = setlocale(LC_MESSAGES, "");
    const char *lang = lang_of_env();

    if (!loc || strcmp(loc, "C") == 0 || strcmp(loc, "POSIX") == 0)
        (void)setlocale(LC_MESSAGES, "C.UTF-8");
    bindtextdomain(I18N_DOMAIN, dir && *dir ? dir : PKIO_LOCALEDIR);
    bind_textdomain_codeset(I18N_DOMAIN, "UTF-8");
    env_lang = lang;
    (void)i18n_set_lang(lang ? lang : "en");
}

const char *i18n_env_lang(void)
{
    return env_lang;
}
