/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_commands.c - the command table, the one place a command's synopsis is written (shown by
 * `pkio-agent --help`, `pkio-agent COMMAND --help` and some usage errors), and the option loop
 * every command shares (cli_getopt).
 */
#include "cli.h"
#include "i18n.h"
#include "lifecycle.h"
#include "pa_err.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

/* The synopses are shown to people but not translated: they are the command line itself. */
static const struct cli_command commands[] = {
    {"enroll", cmd_enroll,
     "enroll --token URI --request FILE [--key-type TYPE] [--pss] [--no-wait] [--replaces "
     "CERT_ID|order:ORDER_ID] [--only-blank] [--json]"},
    {"renew", cmd_renew,
     "renew --token URI [--replaces CERT_ID] [--request FILE] [--early] [--key-type TYPE] [--pss] "
     "[--no-wait] [--json]"},
    {"revoke", cmd_revoke,
     "revoke (--job JOB | --cert CERT_ID | --serial TOKEN_SERIAL) --reason REASON "
     "[--comment TEXT] [--yes] [--json]"},
    {"resume", cmd_resume, "resume (JOB | --all) [--pin-source FILE] [--no-wait] [--json]"},
    {"status", cmd_status, "status [JOB] [--json]"},
    {"cancel", cmd_cancel, "cancel JOB [--pin-source FILE] [--json]"},
    {"audit", cmd_audit,
     "audit verify [--against-journal] [--journal-file FILE] [--since WHEN] [--json]"},
    {"watch", cmd_watch,
     "watch [--kiosk] [--lang nl|en] [--detect pcsc,udev,rescan] [--rescan S] "
     "[--pin-source FILE] [--ignore SERIAL]... [--idle-timeout S] [--retry S] "
     "[--confirm-timeout S] [--pin-timeout S] [--officers GROUP]"},
    {"queue", cmd_queue,
     "queue add --request FILE [--serial S] [--token URI] [--json] | queue list [--json]"},
    {"expiring", cmd_expiring, "expiring [--within DAYS] [--json]"},
    {"certs", cmd_certs, "certs [--token URI] [--json]"},
    {"tokens", cmd_tokens, "tokens [--json]"},
    {"keygen", cmd_keygen,
     "keygen --token URI [--key-type rsa:2048|rsa:3072|rsa:4096|ec:p256|ec:p384] "
     "[--label TEXT] [--json]"},
    {"csr", cmd_csr, "csr --key URI (--request FILE | --subject DN) [--pss] [-o FILE] [--json]"},
    {"install", cmd_install, "install --key URI --cert FILE [--trust FILE] [--json]"},
    {"delete-key", cmd_delete_key, "delete-key --key URI [--json]"},
    {"validate", cmd_validate, "validate --request FILE [--csr FILE] [--json]"},
    {"order", cmd_order, "order --request FILE --csr FILE [--json]"},
    {"order-status", cmd_order_status, "order-status ORDER_ID [--json]"},
    {"download", cmd_download, "download CERT_ID [--format pem_noroot|pem_all] [-o FILE] [--json]"},
};

const struct cli_command *cli_command_at(size_t i)
{
    return i < sizeof(commands) / sizeof(commands[0]) ? &commands[i] : NULL;
}

const struct cli_command *cli_command_find(const char *name)
{
    const struct cli_command *c;

    for (size_t i = 0; (c = cli_command_at(i)) != NULL; i++)
        if (strcmp(name, c->name) == 0)
            return c;
    return NULL;
}

const char *cli_synopsis(const char *name)
{
    const struct cli_command *c = cli_command_find(name);

    return c ? c->synopsis : name;
}

void cli_usage(const char *name)
{
    printf(_("usage: pkio-agent [global options] %s\n"), cli_synopsis(name));
}

/* A usage error in the command's options, reported once. The context is translated as
 * cli_fail translates its format (the command "order" is "bestelling" in Dutch). */
static int option_error(const struct cli_getopt *how)
{
    return cli_fail(PA_E_USAGE, how->error_synopsis ? cli_synopsis(how->command) : NULL, "%s",
                    _(how->context ? how->context : how->command));
}

int cli_getopt(struct cli *cli, const struct cli_getopt *how, void *arg, int argc, char **argv)
{
    int c, r = 0;

    while (r == 0 && (c = getopt_long(argc, argv, how->shortopts ? how->shortopts : "h",
                                      how->longopts, NULL)) != -1) {
        if (c == 'h' && !how->help_refused) {
            cli_usage(how->command);
            return 1;
        }
        if (c == CLI_OPT_JSON)
            cli->json = true;
        else if (c == '?' || c == ':' || c == 'h' || !how->option) /* 'h': help_refused */
            r = CLI_OPT_UNKNOWN;
        else
            r = how->option(arg, c, optarg);
        if (r == CLI_OPT_UNKNOWN)
            r = option_error(how);
    }
    return r;
}
