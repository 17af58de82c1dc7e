/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.h - the agent's configuration file (JSON), documented in pkio-agent.conf(5).
 *
 * cfg_load() reads and checks the whole file at once: unknown keys, wrong types and bad values
 * are errors that name the file and the key, so typos never silently fall back to a default.
 * The API key is never part of struct cfg: cfg_api_key() fetches it into a struct secret.
 */
#ifndef PKIO_CONFIG_H
#define PKIO_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct secret;

/* One entry of token.allowed: a token is allowed when every field given here equals its own. */
struct cfg_token_rule {
    char *manufacturer; /* CK_TOKEN_INFO manufacturerID (trimmed), or NULL: any */
    char *model;        /* CK_TOKEN_INFO model (trimmed), or NULL: any */
    char *module;       /* PKCS#11 module path, or NULL: any */
};

struct cfg_token_rules {
    size_t n;
    struct cfg_token_rule *v;
};

#ifndef PKIO_DEFAULT_CONFIG
#define PKIO_DEFAULT_CONFIG "/etc/pkio-agent/config.json"
#endif

/* Environment variable that may carry the API key (read with secure_getenv). */
#define CFG_API_KEY_ENV "PKIO_AGENT_API_KEY"

/* Default and largest renew.warn_days. */
#define CFG_DEFAULT_WARN_DAYS 60
#define CFG_MAX_DAYS          3650

/* Longest API key accepted from the environment or the key file. */
#define CFG_API_KEY_MAX 1024

/*
 * The loaded configuration. Every string is malloc'd and owned by the struct (cfg_free frees
 * them); optional strings are NULL when unset. Durations are in seconds.
 */
struct cfg {
    char *path; /* file it was loaded from; NULL when built from defaults or memory */

    char *api_url;                /* api.url, https://, no trailing '/' */
    char *api_key_file;           /* api.key_file or NULL */
    char *api_ca_bundle;          /* api.ca_bundle or NULL (system store) */
    char *api_proxy;              /* api.proxy or NULL: no proxy (environment ignored) */
    char *api_product;            /* api.product: a PKIo person product id */
    char *api_csr_field;          /* api.csr_field: dotted JSON path of the CSR PEM */
    char *api_provisioning_field; /* api.provisioning_field: dotted JSON path */
    double api_timeout_s;         /* api.timeout_s, > 0 */
    double api_connect_timeout_s; /* api.connect_timeout_s, > 0, <= api_timeout_s */
    double api_order_settle_s;    /* api.order_settle_s, > 0: see enroll's recovery */
    double api_rate_share;        /* api.rate_share, (0,1]: this station's part of the key's
                                     rate limits (default 1) */

    char *token_module;                    /* token.module: PKCS#11 module path */
    char *token_uri;                       /* token.uri or NULL: default PKCS#11 token URI */
    struct cfg_token_rules *token_allowed; /* token.allowed, NULL: any hardware token */
    bool token_allow_software;             /* token.allow_software (default false) */

    char *order_defaults; /* order_defaults as compact JSON object text, or NULL */

    double poll_initial_s; /* poll.initial_s, > 0, <= poll_max_s */
    double poll_max_s;     /* poll.max_s, > 0 */
    double poll_timeout_s; /* poll.timeout_s, > 0 */

    char *trust_anchors; /* trust.anchors: PEM file of roots, or NULL */

    int renew_warn_days; /* renew.warn_days: 1..CFG_MAX_DAYS, "due" within this many days */

    char *ui_lang; /* ui.lang (or the global --lang): "nl" or "en", or NULL (the environment
                      chooses) */

    char *state_dir; /* state_dir */
};

/**
 * Load and check a configuration file.
 *
 * @param path   file to read; NULL means PKIO_DEFAULT_CONFIG, and then a missing file means
 *               "all defaults" (a missing explicit file is an error)
 * @param ret    receives the configuration (free with cfg_free); untouched on failure
 * @param errbuf receives a one-line message naming the file and the key on failure; may be NULL
 * @retval 0 success
 * @retval PA_E_CONFIG bad JSON, unknown key, wrong type or value, missing explicit file
 * @retval PA_E_IO the file exists but cannot be read
 * @retval PA_E_NOMEM out of memory
 */
int cfg_load(const char *path, struct cfg **ret, char *errbuf, size_t errlen);

/**
 * Same checks as cfg_load() on a JSON text in memory (len bytes, no NUL needed).
 * @param name used in messages in place of the file name (NULL: "config")
 */
int cfg_load_mem(const char *buf, size_t len, const char *name, struct cfg **ret, char *errbuf,
                 size_t errlen);

/** A configuration with every key at its default. 0 or PA_E_NOMEM. */
int cfg_new_defaults(struct cfg **ret);

/** Free a configuration; accepts NULL. */
void cfg_free(struct cfg *cfg);

/**
 * Fetch the CertCentral API key: the PKIO_AGENT_API_KEY environment variable first, then the
 * file named by api.key_file (first line, trailing newline trimmed).
 *
 * @param ret receives the key (free with secret_free); untouched on failure
 * @retval 0 success
 * @retval PA_E_CONFIG no key source, the key file is not a regular file or is group/world
 *         accessible (errbuf says what to run, e.g. "chmod 600 FILE"), empty or too long
 * @retval PA_E_IO the key file cannot be read
 * @retval PA_E_NOMEM out of memory
 */
int cfg_api_key(const struct cfg *cfg, struct secret **ret, char *errbuf, size_t errlen);

/*
 * Take PKIO_AGENT_API_KEY out of the environment: copied into locked memory, the variable's
 * bytes wiped and the variable removed, so no child process or PKCS#11 module ever sees it.
 * main() calls it first thing; cfg_api_key() then uses the copy. Idempotent.
 */
void cfg_take_env_key(void);
/* The key taken from the environment (or from --api-key-fd), or NULL (none, or it was invalid). */
const struct secret *cfg_env_api_key(void);

/*
 * --api-key-fd FD: the API key is the first line read from descriptor fd (a pipe from the
 * process that started this one: `watch` hands its key to its children so), kept where
 * cfg_take_env_key keeps the environment's key, which it replaces. The descriptor is closed.
 * 0, or PA_E_CONFIG (nothing there, too long, control characters) with errbuf saying why.
 */
int cfg_take_fd_key(int fd, char *errbuf, size_t errlen);

#endif
