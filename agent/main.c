/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - pkio-agent's entry point: global options, then the command table. Wiring only.
 */
#include "cli.h"
#include "config.h"
#include "http.h"
#include "lifecycle.h"
#include "log.h"
#include "pa_err.h"
#include "secret.h"

#include <getopt.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static const struct cli_command commands[] = {
    {"enroll", cmd_enroll,
     "enroll --token URI --request FILE [--key-type T] [--pss] [--no-wait] [--replaces ID] "
     "[--json]"},
    {"renew", cmd_renew,
     "renew --token URI [--replaces CERT_ID] [--request FILE] [--early] [--key-type T] [--pss] "
     "[--no-wait] [--json]"},
    {"revoke", cmd_revoke,
     "revoke (--job ID | --cert CERT_ID | --serial TOKEN_SERIAL) --reason REASON [--comment TEXT] "
     "[--yes] [--json]"},
    {"resume", cmd_resume, "resume (JOB | --all) [--pin-source FILE] [--no-wait] [--json]"},
    {"status", cmd_status, "status [JOB] [--json]"},
    {"cancel", cmd_cancel, "cancel JOB [--pin-source FILE] [--json]"},
    {"audit", cmd_audit,
     "audit verify [--against-journal] [--journal-file FILE] [--since WHEN] [--json]"},
    {"watch", cmd_watch,
     "watch [--kiosk] [--lang nl|en] [--detect pcsc,udev,rescan] [--rescan S] "
     "[--pin-source FILE] [--ignore SERIAL]..."},
    {"queue", cmd_queue, "queue add --request FILE [--serial S] [--token URI] | queue list"},
    {"expiring", cmd_expiring, "expiring [--within DAYS] [--json]"},
    {"certs", cmd_certs, "certs [--token URI] [--json]"},
    {"tokens", cmd_tokens, "tokens [--json]"},
    {"keygen", cmd_keygen, "keygen --token URI [--key-type T] [--label TEXT] [--json]"},
    {"csr", cmd_csr, "csr --key URI (--request FILE | --subject DN) [--pss] [-o FILE] [--json]"},
    {"install", cmd_install, "install --key URI --cert FILE [--trust FILE] [--json]"},
    {"delete-key", cmd_delete_key, "delete-key --key URI [--json]"},
    {"validate", cmd_validate, "validate --request FILE [--csr FILE] [--json]"},
    {"order", cmd_order, "order --request FILE --csr FILE [--json]"},
    {"order-status", cmd_order_status, "order-status ORDER_ID [--json]"},
    {"download", cmd_download, "download CERT_ID [--format pem_noroot|pem_all] [-o FILE] [--json]"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: pkio-agent [--module PATH] [--config FILE] [--state-dir DIR] [--json] "
               "[--pin-fd FD] [-v] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %s\n", commands[i].synopsis);
    fprintf(f, "\n'pkio-agent COMMAND --help' shows a command's options; man pkio-agent(8) has "
               "the exit codes.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"module", required_argument, NULL, 'm'},
        {"config", required_argument, NULL, 'c'},
        {"state-dir", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"pin-fd", required_argument, NULL, 'p'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct cli cli = {.pin_fd = -1};
    int c, r;

    secret_harden_process();
    /* Before anything else can run: no module or child ever sees the API key in the environment. */
    cfg_take_env_key();
    /* TLS secrets are never written out for a debugger: libcurl's OpenSSL backend would. */
    (void)unsetenv("SSLKEYLOGFILE");
    /* '+': stop at the command name; its options are parsed by the command. */
    while ((c = getopt_long(argc, argv, "+vh", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            cli.module = optarg;
            break;
        case 'c':
            cli.config = optarg;
            break;
        case 's':
            cli.state_dir = optarg;
            break;
        case 'j':
            cli.json = true;
            break;
        case 'p': {
            char *end = NULL;
            long fd = strtol(optarg, &end, 10);

            if (!*optarg || *end || fd < 3 || fd > 1024) {
                fprintf(stderr, "pkio-agent: --pin-fd: a descriptor number from 3 up\n");
                return pa_err_exit_code(PA_E_USAGE);
            }
            cli.pin_fd = (int)fd;
            break;
        }
        case 'v':
            cli.verbose++;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("pkio-agent %s\n", PKIO_VERSION);
            return 0;
        default:
            usage(stderr);
            return pa_err_exit_code(PA_E_USAGE);
        }
    }
    log_set_level(cli.verbose >= 2 ? LOG_LVL_DEBUG : cli.verbose ? LOG_LVL_INFO : LOG_LVL_WARN);
    if (optind >= argc) {
        usage(stderr);
        return pa_err_exit_code(PA_E_USAGE);
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[optind], commands[i].name) == 0) {
            int cargc = argc - optind;
            char **cargv = argv + optind;

            optind = 0; /* getopt re-initialises (permuting again) for the command's options */
            r = cli_load_config(&cli);
            if (r == 0 && http_global_init() < 0)
                r = cli_fail(PA_E_INTERNAL, NULL, "libcurl initialisation");
            if (r == 0) {
                r = commands[i].run(&cli, cargc, cargv);
                http_global_cleanup();
            }
            cfg_free(cli.cfg);
            return pa_err_exit_code(r);
        }
    }
    fprintf(stderr, "pkio-agent: unknown command '%s'; see 'pkio-agent --help'\n", argv[optind]);
    return pa_err_exit_code(PA_E_USAGE);
}
