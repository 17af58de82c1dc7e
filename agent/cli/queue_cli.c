/* SPDX-License-Identifier: Apache-2.0 */
/*
 * queue_cli.c - `pkio-agent queue add` and `pkio-agent queue list`.
 *
 * The owner of the state directory (the daemon's user; everybody on a single-user station)
 * writes the entry into the queue itself. Anyone else - root, and the members of the officers'
 * group - hands it to the running daemon through its socket, which checks who is asking and the
 * entry before it queues it (intake.h). Either way the request is validated here first, so a
 * mistake is said at the desk, not when a token arrives at an unattended kiosk.
 */
#include "audit.h"
#include "cli.h"
#include "fsutil.h"
#include "i18n.h"
#include "intake.h"
#include "job.h"
#include "kiosk.h"
#include "pa_err.h"
#include "text.h"
#include "queue.h"
#include "request.h"
#include "secret.h"

#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { OPT_REQUEST = CLI_OPT_FIRST, OPT_SERIAL, OPT_TOKEN };

/* The binding of an entry as JSON (null when unbound). */
static json_object *bind_json(const struct queue_bind *b)
{
    const char *names[] = {"serial", "token", "manufacturer", "model"};
    const char *vals[] = {b->serial, b->label, b->manufacturer, b->model};
    json_object *o;

    if (queue_bind_empty(b))
        return NULL;
    o = json_object_new_object();
    for (size_t i = 0; i < 4; i++)
        if (vals[i])
            json_object_object_add(o, names[i], json_object_new_string(vals[i]));
    return o;
}

static json_object *entry_to_json(const struct queue_entry *e)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "id", json_object_new_string(e->id));
    json_object_object_add(o, "serial",
                           e->bind.serial ? json_object_new_string(e->bind.serial) : NULL);
    json_object_object_add(o, "bind", bind_json(&e->bind));
    json_object_object_add(o, "request", json_object_new_string(e->request));
    json_object_object_add(o, "officer", e->officer ? json_object_new_string(e->officer) : NULL);
    return o;
}

static void list_json(const struct queue_entry *v, size_t n, const struct queue_rejected *rv,
                      size_t nr)
{
    json_object *o = json_object_new_object(), *a = json_object_new_array(),
                *ra = json_object_new_array();

    for (size_t i = 0; i < n; i++)
        json_object_array_add(a, entry_to_json(&v[i]));
    for (size_t i = 0; i < nr; i++) {
        json_object *e = json_object_new_object();

        json_object_object_add(e, "name", json_object_new_string(rv[i].name));
        json_object_object_add(e, "reason", json_object_new_string(rv[i].reason));
        json_object_array_add(ra, e);
    }
    json_object_object_add(o, "queue", a);
    json_object_object_add(o, "rejected", ra);
    cli_print_json(o);
}

static void list_text(const struct queue_entry *v, size_t n, const struct queue_rejected *rv,
                      size_t nr)
{
    for (size_t i = 0; i < n; i++) {
        char raw[256], b[256], who[80];

        queue_bind_format(&v[i].bind, raw, sizeof(raw));
        text_clean(raw, b, sizeof(b));
        text_clean(v[i].officer ? v[i].officer : "", who, sizeof(who));
        printf("%s  %s", v[i].id, b[0] ? b : _("(first blank token)"));
        if (who[0]) {
            printf("  ");
            printf(_("queued by %s"), who);
        }
        printf("\n");
    }
    if (!n)
        printf("%s\n", _("queue is empty"));
    for (size_t i = 0; i < nr; i++) {
        char why[256];

        /* The reason is a record in English: shown translated when it is one of our texts. */
        text_clean(rv[i].reason[0] ? _(rv[i].reason) : "", why, sizeof(why));
        printf(_("rejected %s: %s\n"), rv[i].name, why);
    }
}

static int queue_list_cmd(struct cli *cli, int argc, char **argv)
{
    struct queue_entry *v = NULL;
    struct queue_rejected *rv = NULL;
    size_t n = 0, nr = 0;
    int r;

    if (argc == 3 && strcmp(argv[2], "--json") == 0)
        cli->json = true;
    else if (argc != 2)
        return cli_fail(PA_E_USAGE, NULL, "queue list");
    r = queue_list(cli_state_dir(cli), &v, &n);
    if (r == 0)
        r = queue_rejected_list(cli_state_dir(cli), &rv, &nr);
    if (r < 0) {
        queue_list_free(v, n);
        return cli_fail(r, strerror(errno), "queue in %s", cli_state_dir(cli));
    }
    if (cli->json)
        list_json(v, n, rv, nr);
    else
        list_text(v, n, rv, nr);
    queue_list_free(v, n);
    free(rv);
    return 0;
}

struct add_args {
    const char *request, *serial, *token;
};

static int queue_add_option(void *arg, int c, const char *val)
{
    struct add_args *a = arg;

    if (c == OPT_REQUEST)
        a->request = val;
    else if (c == OPT_SERIAL)
        a->serial = val;
    else if (c == OPT_TOKEN)
        a->token = val;
    else
        return CLI_OPT_UNKNOWN;
    return 0;
}

/* queue add's options; PA_E_USAGE (reported) when they do not add up. */
static int queue_add_args(struct cli *cli, int argc, char **argv, struct add_args *a)
{
    static const struct option opts[] = {
        {"request", required_argument, NULL, OPT_REQUEST},
        {"serial", required_argument, NULL, OPT_SERIAL},
        {"token", required_argument, NULL, OPT_TOKEN},
        CLI_OPTS_END,
    };
    static const struct cli_getopt how = {.command = "queue",
                                          .context = "queue add",
                                          .longopts = opts,
                                          .option = queue_add_option,
                                          .help_refused = true};
    int r = cli_getopt(cli, &how, a, argc, argv);

    if (r < 0)
        return r;
    if (!a->request || optind != argc)
        return cli_fail(PA_E_USAGE, N_("--request FILE is required"), "queue add");
    return 0;
}

/* Does this user write the queue itself (it owns the state directory, or will create it)? */
static bool writes_queue_itself(const char *state_dir)
{
    struct stat st;

    if (stat(state_dir, &st) < 0)
        return errno == ENOENT;
    return st.st_uid == geteuid();
}

/* The state directory's owner queues directly; the entry is in the audit log like any other. */
static int add_direct(struct cli *cli, const char *request, const struct queue_bind *bind,
                      const char *token, char *id, char *err, size_t errlen)
{
    const char *sd = cli_state_dir(cli);
    struct passwd *pw = getpwuid(geteuid());
    struct audit_event ev = {.event = "queue-intake", .outcome = "ok"};
    char detail[256], login[64], *text = NULL;
    size_t len = 0;
    int r = job_dir_prepare(sd, err, errlen);

    text_clean(pw ? pw->pw_name : "", login, sizeof(login));
    if (r == 0 && fs_read_file(request, REQ_MAX_SIZE, &text, &len) < 0) {
        snprintf(err, errlen, _("cannot read %s: %s"), request, strerror(errno));
        r = PA_E_REQUEST;
    }
    if (r == 0)
        r = queue_add_text(sd, text, len, bind, token, login[0] ? login : NULL, (long)geteuid(), id,
                           err, errlen);
    if (text) {
        secret_wipe(text, len); /* it may hold card data */
        free(text);
    }
    if (r < 0)
        return r;
    snprintf(detail, sizeof(detail), "entry %s queued by %s (uid %lu), the state directory's owner",
             id, login[0] ? login : "?", (unsigned long)geteuid());
    ev.detail = detail;
    if (audit_append(sd, &ev) < 0)
        fprintf(stderr, _("pkio-agent: warning: the audit log in %s could not be written\n"), sd);
    return 0;
}

/* {"format":1,"serial":S,"token_uri":U,"request":{...}} for the daemon's socket. */
static int entry_for_daemon(const char *request, const char *serial, const char *token,
                            json_object **ret)
{
    char *buf = NULL;
    size_t len = 0;
    json_object *req, *o;
    int r = fs_read_file(request, REQ_MAX_SIZE, &buf, &len);

    if (r < 0)
        return PA_E_REQUEST;
    req = json_tokener_parse(buf);
    secret_wipe(buf, len);
    free(buf);
    if (!req)
        return PA_E_REQUEST;
    o = json_object_new_object();
    json_object_object_add(o, "format", json_object_new_int(1));
    json_object_object_add(o, "serial", serial ? json_object_new_string(serial) : NULL);
    json_object_object_add(o, "token_uri", token ? json_object_new_string(token) : NULL);
    json_object_object_add(o, "request", req);
    *ret = o;
    return 0;
}

/* Anyone else hands the entry to the daemon, which queues it (or says why not). */
static int add_by_daemon(struct cli *cli, const char *request, const char *serial,
                         const char *token, char *id, char *err, size_t errlen)
{
    json_object *o = NULL;
    const char *txt;
    int r = entry_for_daemon(request, serial, token, &o);

    if (r < 0) {
        snprintf(err, errlen, _("cannot read %s"), request);
        return r;
    }
    txt = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    r = intake_submit(cli_state_dir(cli), txt, strlen(txt), id, err, errlen);
    secret_wipe((void *)(uintptr_t)txt, strlen(txt)); /* it may hold card data */
    json_object_put(o);
    return r;
}

static void added(const struct cli *cli, const char *id, const struct queue_bind *bind)
{
    char b[256];

    if (cli->json) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "id", json_object_new_string(id));
        json_object_object_add(o, "bind", bind_json(bind));
        cli_print_json(o);
        return;
    }
    queue_bind_format(bind, b, sizeof(b));
    if (b[0])
        printf(_("queued %s for the token with %s\n"), id, b);
    else
        printf(_("queued %s for the first blank token\n"), id);
}

static int queue_add_cmd(struct cli *cli, int argc, char **argv)
{
    struct add_args a = {0};
    struct queue_bind bind = {0};
    struct req *req = NULL;
    char err[512] = "", id[33] = "";
    int r;

    r = queue_add_args(cli, argc, argv, &a);
    if (r < 0)
        return r;
    /* The binding: --serial and the token attributes of --token (its pin-source only is kept in
     * the URI; a PIN never goes into the state directory: pin-value is refused). */
    r = queue_bind_from(a.serial, a.token, &bind, err, sizeof(err));
    if (r < 0)
        return cli_fail(r, err, "queue add");
    /* A queued request must be valid now, not when a token arrives at an unattended kiosk. */
    r = cli_prepare_request(cli, a.request, NULL, &req);
    if (r == 0 && writes_queue_itself(cli_state_dir(cli)))
        r = add_direct(cli, a.request, &bind, a.token, id, err, sizeof(err));
    else if (r == 0)
        r = add_by_daemon(cli, a.request, a.serial, a.token, id, err, sizeof(err));
    if (r < 0 && err[0])
        cli_fail(r, err, "queue");
    if (r == 0)
        added(cli, id, &bind);
    queue_bind_clear(&bind);
    req_free(req);
    return r;
}

int cmd_queue(struct cli *cli, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "list") == 0)
        return queue_list_cmd(cli, argc, argv);
    if (argc >= 2 && strcmp(argv[1], "add") == 0)
        return queue_add_cmd(cli, argc - 1, argv + 1);
    cli_usage("queue");
    return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : PA_E_USAGE;
}
