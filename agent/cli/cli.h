/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h - what the command implementations share: global options, the one-line error report,
 * opening a token from a URI, and JSON output.
 */
#ifndef PKIO_CLI_H
#define PKIO_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "tok.h"

struct cc_client;
struct req;
struct cfg;
struct tok_ctx;
struct tok_token;
struct tok_uri;
struct secret;
struct pa_diag;

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

/* ---- the command table and the option loop (cli_commands.c) ---- */

/* A command: run returns 0 or a negative PA_E_* code that it has already reported. */
struct cli_command {
    const char *name;
    int (*run)(struct cli *cli, int argc, char **argv);
    const char *synopsis; /* the one text of its usage: not translated (it is the command line) */
};

/* The i-th command of the table (in `pkio-agent --help` order), NULL past the end. */
const struct cli_command *cli_command_at(size_t i);
/* The command called name, or NULL. */
const struct cli_command *cli_command_find(const char *name);
/* The synopsis of the command called name (name itself when there is none). */
const char *cli_synopsis(const char *name);
/* Print "usage: pkio-agent [global options] SYNOPSIS" of the command called name on stdout. */
void cli_usage(const char *name);

struct option;

/* --json, which every command but watch takes; a command's own option values start above it. */
enum { CLI_OPT_JSON = 0x100, CLI_OPT_FIRST };
/* The end of every command's long options but watch's: --json, --help, the terminator. */
/* clang-format off */
#define CLI_OPTS_END                                                                               \
    {"json", no_argument, NULL, CLI_OPT_JSON}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}
/* clang-format on */
/* What a command's option function returns for an option that is not one of its own. */
#define CLI_OPT_UNKNOWN 1

/* How a command reads its options (cli_getopt). */
struct cli_getopt {
    const char *command;           /* its name in the table: --help shows its synopsis */
    const char *context;           /* usage errors say "pkio-agent: CONTEXT: ..." (NULL: command) */
    const char *shortopts;         /* getopt's short options (NULL: "h") */
    const struct option *longopts; /* --json as CLI_OPT_JSON, --help as 'h' */
    /* The command's own option c with its argument: 0, a negative PA_E_* (reported), or
     * CLI_OPT_UNKNOWN (reported here as a usage error). NULL: the command has none. */
    int (*option)(void *arg, int c, const char *val);
    bool error_synopsis; /* a usage error names the synopsis instead of "usage error" */
    bool help_refused;   /* --help/-h is a usage error, not the synopsis */
};

/*
 * The option loop every command shares: getopt_long over argv; --help prints the synopsis from
 * the table; --json sets cli->json; an unknown option is a usage error; the rest go to
 * how->option with arg. 0 (optind at the first operand), 1 after --help, or a negative PA_E_*
 * (reported once).
 */
int cli_getopt(struct cli *cli, const struct cli_getopt *how, void *arg, int argc, char **argv);

/*
 * Report a failure on one line of stderr: "pkio-agent: CONTEXT: DETAIL; HINT", where DETAIL is
 * the token layer's detail (if any) or the error's text, and HINT tells the officer what to do.
 * Returns err so callers can `return cli_fail(...)`.
 */
int cli_fail(int err, const char *detail, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* cli_fail with a hint of its own (NULL: none) instead of the error's usual one. */
int cli_fail_hint(int err, const char *detail, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Report a library call's diagnostic exactly as cli_fail would have: one line on stderr,
 * "pkio-agent: CONTEXT: DETAIL; HINT" (the error's usual hint unless the diag has its own).
 * Nothing when nothing failed or the diag was already shown (context ""). Returns d->error.
 */
int cli_report(const struct cli *cli, const struct pa_diag *d);

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
 * refused), and log in when login is true (PIN from pin-source, --pin-fd, the PIN pad, or a
 * no-echo prompt). A token whose PIN must be changed (a transport PIN) gets a new PIN first:
 * on its PIN pad, from --pin-fd's second line, or typed twice at the terminal; elsewhere it is
 * refused (PA_E_PIN_LOCKED). On failure reports once and returns the error; *ret_ctx and
 * *ret_tok are then NULL. ret_uri (optional) receives the parsed URI (caller clears with
 * tok_uri_clear).
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

/* ---- choosing a new PIN (a token's transport PIN must be changed) ---- */

/* How often a new PIN is asked for (typed twice each time) before giving up. */
#define CLI_NEW_PIN_TRIES 3

/* What cli_ask_new_pin shows; the kiosk passes its own (Dutch) texts. No format strings. */
struct cli_pin_texts {
    const char *new_pin;   /* "New PIN"; the length range follows in parentheses, then ": " */
    const char *again;     /* the whole second prompt, "New PIN again: " */
    const char *chars;     /* "characters" */
    const char *at_least;  /* "at least" */
    const char *differ;    /* the two entries differ */
    const char *too_short; /* shorter than the token's ulMinPinLen */
    const char *too_long;  /* longer than its ulMaxPinLen */
    const char *same;      /* the new PIN is the transport PIN */
};
extern const struct cli_pin_texts cli_pin_texts_en;

enum cli_new_pin_verdict {
    CLI_NEW_PIN_OK,
    CLI_NEW_PIN_TOO_SHORT,
    CLI_NEW_PIN_TOO_LONG,
    CLI_NEW_PIN_SAME,
    CLI_NEW_PIN_DIFFER
};

/*
 * Is first acceptable as the token's new PIN: within the token's length range, not the current
 * PIN old (may be NULL), and equal to second (NULL: not typed again yet)? Pure.
 */
enum cli_new_pin_verdict cli_new_pin_check(const struct tok_info *info, const struct secret *old,
                                           const struct secret *first, const struct secret *second);

/*
 * Ask on the terminal, without echo, for a new PIN and then for it again, checked with
 * cli_new_pin_check; on a refusal say why and ask again, CLI_NEW_PIN_TRIES times at most. The
 * token is never touched. lead (may be NULL or "") is shown above the first prompt. 0 and *ret,
 * or PA_E_PIN_UNAVAILABLE (no terminal, nothing typed, or no acceptable PIN). Reports nothing.
 */
int cli_ask_new_pin(const struct tok_info *info, const struct secret *old,
                    const struct cli_pin_texts *tx, const char *lead, struct secret **ret);

/* Parse a --key-type value; reports a usage error once. */
int cli_key_type(const char *s, enum tok_key_type *ret);

/* Print a JSON object (with "version": 1 added) on stdout and release it. */
void cli_print_json(json_object *obj);

/* ---- the front end of the enrollment core (cmd_enroll_front.c) ---- */

struct enroll_opts;
struct revoke_opts;

/* enroll (job_id NULL) or resume JOB: run the core, then print what came of it (or the diag). */
int cli_run_enroll(const struct cli *cli, const char *job_id, const struct enroll_opts *o);
/* cancel JOB, and say so. */
int cli_run_cancel(const struct cli *cli, const char *job_id, const struct enroll_opts *o);
/* revoke, and say what was settled. */
int cli_run_revoke(const struct cli *cli, const struct revoke_opts *ro);

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
