/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h - what the command implementations share: global options, the one-line error report,
 * opening a token from a URI, and JSON output.
 */
#ifndef PKIO_CLI_H
#define PKIO_CLI_H

#include <stdbool.h>

#include <json-c/json.h>

#include "tok.h"

struct cc_client;
struct req;
struct cfg;
struct tok_ctx;
struct tok_token;
struct tok_uri;

/* Global options (before the command, as git does). */
struct cli {
    const char *module;    /* --module, else config, else built-in default */
    const char *config;    /* --config */
    const char *state_dir; /* --state-dir */
    bool json;             /* --json */
    int verbose;           /* -v count */
    struct cfg *cfg;       /* loaded once by main(), before the command runs */
    int pin_fd;            /* --pin-fd: read the PIN from this descriptor (a supervisor's pipe) */
};

/* A command: returns 0 or a negative PA_E_* code that it has already reported. */
struct cli_command {
    const char *name;
    int (*run)(struct cli *cli, int argc, char **argv);
    const char *synopsis;
};

/*
 * Report a failure on one line of stderr: "pkio-agent: CONTEXT: DETAIL; HINT", where DETAIL is
 * the token layer's detail (if any) or the error's text, and HINT tells the officer what to do.
 * Returns err so callers can `return cli_fail(...)`.
 */
int cli_fail(int err, const char *detail, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The module to use: --module, else config token.module, else the built-in default. */
const char *cli_module(const struct cli *cli);
/* The state directory: --state-dir, else the config's state_dir. */
const char *cli_state_dir(const struct cli *cli);

/* Load the configuration (--config, else the default file); reports errors once. */
int cli_load_config(struct cli *cli);

/* A CertCentral client from the configuration (API key from key file or environment). */
int cli_cc_client(const struct cli *cli, struct cc_client **ret);

/*
 * Open the module, select exactly one token matching uri_text (a command-line URI: pin-value
 * refused), and log in when login is true (PIN from pin-source, a no-echo prompt, or the PIN
 * pad). On failure reports once and returns the error; *ret_ctx and *ret_tok are then NULL.
 * ret_uri (optional) receives the parsed URI (caller clears with tok_uri_clear).
 */
int cli_open_token(const struct cli *cli, const char *uri_text, bool login,
                   struct tok_ctx **ret_ctx, struct tok_token **ret_tok, struct tok_uri *ret_uri);

/*
 * Load a request file, merge the configured order_defaults, add the CSR from csr_file (checked:
 * PEM, signature, SHA-256) when not NULL, and validate it. Every problem is reported once, on
 * one line with field paths (and as JSON with --json). *ret is ready to send (req_free).
 */
int cli_prepare_request(const struct cli *cli, const char *file, const char *csr_file,
                        struct req **ret);

/* Parse a --key-type value; reports a usage error once. */
int cli_key_type(const char *s, enum tok_key_type *ret);

/* Print a JSON object (with "version": 1 added) on stdout and release it. */
void cli_print_json(json_object *obj);

/* Print usage for one command on stdout. */
void cli_usage(const char *synopsis);

/* The command implementations. */
int cmd_tokens(struct cli *cli, int argc, char **argv);
int cmd_keygen(struct cli *cli, int argc, char **argv);
int cmd_csr(struct cli *cli, int argc, char **argv);
int cmd_install(struct cli *cli, int argc, char **argv);
int cmd_delete_key(struct cli *cli, int argc, char **argv);
int cmd_validate(struct cli *cli, int argc, char **argv);
int cmd_order(struct cli *cli, int argc, char **argv);
int cmd_order_status(struct cli *cli, int argc, char **argv);
int cmd_download(struct cli *cli, int argc, char **argv);
int cmd_enroll(struct cli *cli, int argc, char **argv);
int cmd_renew(struct cli *cli, int argc, char **argv);
int cmd_revoke(struct cli *cli, int argc, char **argv);
int cmd_resume(struct cli *cli, int argc, char **argv);
int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_cancel(struct cli *cli, int argc, char **argv);
int cmd_audit(struct cli *cli, int argc, char **argv);
int cmd_watch(struct cli *cli, int argc, char **argv);
int cmd_queue(struct cli *cli, int argc, char **argv);

#endif
