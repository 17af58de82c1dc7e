/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_key.c - the CertCentral API key: taken out of the environment at start
 * (cfg_take_env_key) or read from a descriptor (--api-key-fd), else read from api.key_file,
 * a regular file that only its owner can read; kept in locked memory (struct secret).
 */
#include "config.h"
#include "config_internal.h"

#include "i18n.h"
#include "pa_err.h"
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* PA_E_CONFIG if the key has control characters (it travels in an HTTP header). */
static int cfg_key_chars_ok(const struct secret *s)
{
    for (size_t i = 0; i < s->len; i++)
        if ((unsigned char)s->buf[i] < 0x20 || s->buf[i] == 0x7f)
            return PA_E_CONFIG;
    return 0;
}

/* What can be wrong with an API key from the environment or a descriptor. */
enum cfg_key_problem { CFG_KEY_OK, CFG_KEY_LENGTH, CFG_KEY_CONTROL };

/* The message for a key from source (an environment variable or an option) with problem p. */
static void cfg_key_err(enum cfg_key_problem p, const char *source, char *errbuf, size_t errlen)
{
    if (p == CFG_KEY_LENGTH)
        (void)pa_errf(errbuf, errlen, 0, _("%s: empty or longer than %d bytes"), source,
                      CFG_API_KEY_MAX);
    else if (p == CFG_KEY_CONTROL)
        (void)pa_errf(errbuf, errlen, 0, _("%s: contains control characters"), source);
    else
        (void)pa_errf(errbuf, errlen, 0, "%s", "");
}

/* A key from len bytes of text (line endings at its end dropped): 0 and *ret, or PA_E_CONFIG
 * (*ret_problem says why) or PA_E_NOMEM. */
static int cfg_key_take(const char *text, size_t len, struct secret **ret,
                        enum cfg_key_problem *ret_problem)
{
    struct secret *s = NULL;
    int r;

    *ret_problem = CFG_KEY_OK;
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    if (len == 0 || len > CFG_API_KEY_MAX) {
        *ret_problem = CFG_KEY_LENGTH;
        return PA_E_CONFIG;
    }
    r = secret_from_mem(text, len, &s);
    if (r < 0)
        return r;
    if (cfg_key_chars_ok(s) < 0) {
        secret_free(s);
        *ret_problem = CFG_KEY_CONTROL;
        return PA_E_CONFIG;
    }
    *ret = s;
    return 0;
}

/* The API key from the environment; 1 when the variable is unset or empty. */
static int cfg_api_key_env(struct secret **ret, char *errbuf, size_t errlen)
{
    const char *env = secure_getenv(CFG_API_KEY_ENV);
    enum cfg_key_problem p;
    int r;

    if (!env || !*env)
        return 1;
    r = cfg_key_take(env, strlen(env), ret, &p);
    if (r < 0)
        cfg_key_err(p, CFG_API_KEY_ENV, errbuf, errlen);
    return r;
}

/* The API key from the file named by api.key_file, after checking its type and mode. */
static int cfg_api_key_file(const struct cfg *cfg, struct secret **ret, char *errbuf, size_t errlen)
{
    const char *cname = cfg_name(cfg);
    const char *file = cfg->api_key_file;
    struct secret *s = NULL;
    struct stat st;
    int r;

    if (!file) {
        (void)pa_errf(errbuf, errlen, 0,
                      _("no API key: set api.key_file in %s or %s in the environment"), cname,
                      CFG_API_KEY_ENV);
        r = PA_E_CONFIG;
        goto out;
    }
    if (lstat(file, &st) < 0) {
        (void)pa_errf(errbuf, errlen, 0, _("%s: api.key_file: cannot use %s: %s"), cname, file,
                      strerror(errno));
        r = errno == ENOENT ? PA_E_CONFIG : PA_E_IO;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        if (S_ISLNK(st.st_mode))
            (void)pa_errf(
                errbuf, errlen, 0,
                _("%s: api.key_file: %s is not a regular file (symbolic links are refused)"), cname,
                file);
        else
            (void)pa_errf(errbuf, errlen, 0, _("%s: api.key_file: %s is not a regular file"), cname,
                          file);
        r = PA_E_CONFIG;
        goto out;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        (void)pa_errf(errbuf, errlen, 0,
                      _("%s: api.key_file: %s is group- or world-accessible; run: chmod 600 %s"),
                      cname, file, file);
        r = PA_E_CONFIG;
        goto out;
    }
    r = secret_from_file(file, CFG_API_KEY_MAX, &s);
    if (r == PA_E_IO) {
        (void)pa_errf(errbuf, errlen, 0, _("%s: api.key_file: cannot read %s: %s"), cname, file,
                      strerror(errno));
        goto out;
    }
    if (r < 0) {
        (void)pa_errf(
            errbuf, errlen, 0,
            _("%s: api.key_file: %s must hold the key on one line (at most %d bytes) and be "
              "accessible only by its owner"),
            cname, file, CFG_API_KEY_MAX);
        goto out;
    }
    r = cfg_key_chars_ok(s);
    if (r < 0) {
        (void)pa_errf(errbuf, errlen, 0,
                      _("%s: api.key_file: the key in %s contains control characters"), cname,
                      file);
        goto out;
    }
    *ret = s;
    s = NULL;
out:
    secret_free(s);
    return r;
}

/*
 * The key taken out of the environment at start (cfg_take_env_key), or from --api-key-fd: 1 = not
 * there / not taken. What was wrong with it is said when the key is asked for (cfg_api_key),
 * in the language chosen by then.
 */
static struct secret *cfg_env_key;
static int cfg_env_rc = 1;
static bool cfg_env_taken;
static enum cfg_key_problem cfg_env_problem;
static const char *cfg_env_source = CFG_API_KEY_ENV;

void cfg_take_env_key(void)
{
    char *env = getenv(CFG_API_KEY_ENV);
    const char *senv = secure_getenv(CFG_API_KEY_ENV);

    if (cfg_env_taken)
        return;
    cfg_env_taken = true;
    if (senv && *senv)
        cfg_env_rc = cfg_key_take(senv, strlen(senv), &cfg_env_key, &cfg_env_problem);
    if (env) {
        /* Wipe "NAME=value" in place (it is what /proc/PID/environ shows), then drop it. getenv
         * points just past the '=' of the environ entry. */
        char *entry = env - (strlen(CFG_API_KEY_ENV) + 1);

        (void)unsetenv(CFG_API_KEY_ENV); /* out of environ; the string itself stays allocated */
        explicit_bzero(entry, strlen(entry));
    }
}

int cfg_take_fd_key(int fd, char *errbuf, size_t errlen)
{
    enum cfg_key_problem p = CFG_KEY_LENGTH;
    struct secret *line = NULL, *key = NULL;
    int r;

    if (fcntl(fd, F_GETFD) < 0)
        return pa_errf(errbuf, errlen, PA_E_CONFIG, _("--api-key-fd: descriptor %d is not open"),
                       fd);
    r = secret_from_fd(fd, CFG_API_KEY_MAX, &line); /* closes fd */
    if (r == 0)
        r = cfg_key_take(line->buf, line->len, &key, &p);
    else if (r != PA_E_NOMEM)
        r = PA_E_CONFIG; /* nothing, or more than a key, before end of file or a newline */
    secret_free(line);
    if (r < 0) {
        cfg_key_err(p, "--api-key-fd", errbuf, errlen);
        return r;
    }
    secret_free(cfg_env_key);
    cfg_env_key = key;
    cfg_env_rc = 0;
    cfg_env_taken = true;
    cfg_env_source = "--api-key-fd";
    return 0;
}

const struct secret *cfg_env_api_key(void)
{
    return cfg_env_rc == 0 ? cfg_env_key : NULL;
}

/* The environment's key: the copy taken at start, else (tests, libraries) the variable. */
static int cfg_api_key_from_env(struct secret **ret, char *errbuf, size_t errlen)
{
    if (!cfg_env_taken)
        return cfg_api_key_env(ret, errbuf, errlen);
    if (cfg_env_rc < 0) {
        cfg_key_err(cfg_env_problem, cfg_env_source, errbuf, errlen);
        return cfg_env_rc;
    }
    if (cfg_env_rc == 1)
        return 1;
    return secret_from_mem(cfg_env_key->buf, cfg_env_key->len, ret);
}

int cfg_api_key(const struct cfg *cfg, struct secret **ret, char *errbuf, size_t errlen)
{
    struct secret *s = NULL;
    int r;

    r = cfg_api_key_from_env(&s, errbuf, errlen);
    if (r == 1)
        r = cfg_api_key_file(cfg, &s, errbuf, errlen);
    if (r < 0)
        goto out;
    *ret = s;
    s = NULL;
    r = 0;
out:
    secret_free(s);
    return r;
}
