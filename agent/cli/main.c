/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - pkio-agent's entry point: global options, then the command from the table
 * (cli_commands.c). Wiring only.
 */
#include "cli.h"
#include "config.h"
#include "http.h"
#include "i18n.h"
#include "log.h"
#include "pa_err.h"
#include "secret.h"

#include <getopt.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    const struct cli_command *cmd;

    fprintf(f, _("usage: pkio-agent [--module PATH] [--config FILE] [--state-dir DIR] [--json] "
                 "[--pin-fd FD] [--api-key-fd FD] [--lang nl|en] [-v] COMMAND [ARGS]\n\n"
                 "commands:\n"));
    for (size_t i = 0; (cmd = cli_command_at(i)) != NULL; i++)
        fprintf(f, "  %s\n", cmd->synopsis);
    fprintf(f, _("\n'pkio-agent COMMAND --help' shows a command's options; man pkio-agent(8) has "
                 "the exit codes.\n"));
}

enum { OPT_LANG = 256, OPT_API_KEY_FD };

/* A descriptor number for --pin-fd or --api-key-fd (3 up: 0-2 are stdio), or -1. */
static int fd_arg(const char *arg)
{
    char *end = NULL;
    long fd = strtol(arg, &end, 10);

    return !*arg || *end || fd < 3 || fd > 1024 ? -1 : (int)fd;
}

/* --api-key-fd: the API key from a pipe (watch's children get theirs so), read at once. */
static int api_key_fd(const char *arg)
{
    char err[256] = "";
    int fd = fd_arg(arg), r;

    if (fd < 0) {
        fprintf(stderr, "pkio-agent: %s\n", _("--api-key-fd: a descriptor number from 3 up"));
        return PA_E_USAGE;
    }
    r = cfg_take_fd_key(fd, err, sizeof(err));
    if (r < 0)
        fprintf(stderr, "pkio-agent: %s\n", err);
    return r;
}

/* One global option: 0, 1 (done: --help/--version printed), or a negative error (reported). */
static int global_option(struct cli *cli, int c, const char **lang)
{
    switch (c) {
    case 'm':
        cli->module = optarg;
        return 0;
    case 'c':
        cli->config = optarg;
        return 0;
    case 's':
        cli->state_dir = optarg;
        return 0;
    case 'j':
        cli->json = true;
        return 0;
    case 'p':
        cli->pin_fd = fd_arg(optarg);
        if (cli->pin_fd < 0) {
            fprintf(stderr, "pkio-agent: %s\n", _("--pin-fd: a descriptor number from 3 up"));
            return PA_E_USAGE;
        }
        return 0;
    case OPT_API_KEY_FD:
        return api_key_fd(optarg);
    case OPT_LANG:
        if (!i18n_lang_valid(optarg)) {
            fprintf(stderr, "pkio-agent: %s\n", _("--lang: nl or en"));
            return PA_E_USAGE;
        }
        *lang = optarg;
        (void)i18n_set_lang(optarg); /* at once: --help after it speaks it too */
        return 0;
    case 'v':
        cli->verbose++;
        return 0;
    case 'h':
        usage(stdout);
        return 1;
    case 'V':
        printf("pkio-agent %s\n", PKIO_VERSION);
        return 1;
    default:
        usage(stderr);
        return PA_E_USAGE;
    }
}

/* Load the configuration, choose the language (--lang, else ui.lang, else the environment),
 * start libcurl, run the command. --lang replaces ui.lang in the configuration, for commands that
 * choose a language of their own (watch). */
static int run_command(struct cli *cli, const struct cli_command *cmd, const char *lang, int argc,
                       char **argv)
{
    int r;

    optind = 0; /* getopt re-initialises (permuting again) for the command's options */
    r = cli_load_config(cli);
    if (r == 0 && lang) {
        free(cli->cfg->ui_lang);
        cli->cfg->ui_lang = strdup(lang);
        if (!cli->cfg->ui_lang)
            r = cli_fail(PA_E_NOMEM, NULL, "--lang");
    }
    if (r == 0 && cli->cfg->ui_lang)
        (void)i18n_set_lang(cli->cfg->ui_lang);
    if (r == 0 && http_global_init() < 0)
        r = cli_fail(PA_E_INTERNAL, NULL, "libcurl initialisation");
    if (r == 0) {
        r = cmd->run(cli, argc, argv);
        http_global_cleanup();
    }
    cfg_free(cli->cfg);
    return r;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"module", required_argument, NULL, 'm'},
        {"config", required_argument, NULL, 'c'},
        {"state-dir", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"pin-fd", required_argument, NULL, 'p'},
        {"api-key-fd", required_argument, NULL, OPT_API_KEY_FD},
        {"lang", required_argument, NULL, OPT_LANG},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct cli cli = {.pin_fd = -1};
    const struct cli_command *cmd;
    const char *lang = NULL;
    int c, r = 0;

    secret_harden_process();
    /* Before anything else can run: no module or child ever sees the API key in the environment. */
    cfg_take_env_key();
    /* TLS secrets are never written out for a debugger: libcurl's OpenSSL backend would. */
    (void)unsetenv("SSLKEYLOGFILE");
    i18n_init();
    /* '+': stop at the command name; its options are parsed by the command. */
    while (r == 0 && (c = getopt_long(argc, argv, "+vh", opts, NULL)) != -1)
        r = global_option(&cli, c, &lang);
    if (r != 0)
        return r > 0 ? 0 : pa_err_exit_code(r);
    log_set_level(cli.verbose >= 2 ? LOG_LVL_DEBUG : cli.verbose ? LOG_LVL_INFO : LOG_LVL_WARN);
    if (optind >= argc) {
        usage(stderr);
        return pa_err_exit_code(PA_E_USAGE);
    }
    cmd = cli_command_find(argv[optind]);
    if (cmd)
        return pa_err_exit_code(run_command(&cli, cmd, lang, argc - optind, argv + optind));
    fprintf(stderr, _("pkio-agent: unknown command '%s'; see 'pkio-agent --help'\n"), argv[optind]);
    return pa_err_exit_code(PA_E_USAGE);
}
