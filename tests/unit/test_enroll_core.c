/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_enroll_core.c - the enrollment state machine (agent/enroll*.c) as a library, step by step
 * and at every crash point, against an in-process CertCentral stub (https_stub.c) and a private
 * SoftHSM2 token per test; the fake module (tests/fake-p11) for PIN states and a pulled token.
 *
 * Every enroll/resume runs in a child process, as the command would: a crash point
 * (PKIO_TEST_CRASH_AT) SIGKILLs only the child, the PKCS#11 module is initialised fresh each
 * time, and the parent (cmocka, the stub's thread) never loads a module. The child sends back
 * the return value, the diag and the job states it saw at each progress line (enroll_ui.progress
 * reads the record from disk); the parent asserts those, the job record, the stub's count of
 * orders and what the token holds (counted in another child).
 *
 * The only calls into the enrollment API are in run_core() (the adapter).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "enroll.h"
#include "https_stub.h"
#include "job.h"
#include "pa_err.h"
#include "secret.h"
#include "tok.h"

#define SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define USER_PIN       "1234"
#define REQUEST_FILE   PKIO_TEST_DATA "/requests/valid-prof.json"

/* The suite's fixture: one stub, one SoftHSM2 directory, one configuration. */
static struct {
    char dir[1024];
    char pin[4200], cfg_path[4200];
    struct stub *stub;
    struct cfg *cfg;
    bool softhsm;
    unsigned ntest;
} fx;

/* What a child run reports to the parent. */
struct run_out {
    bool killed; /* the child ended by SIGKILL (a crash point) */
    int rc;
    int derr;
    bool already_done;
    char context[1024];
    char detail[1024];
    char job[33];
    char states[1024]; /* the job's state at each progress line, distinct, comma separated */
};

/* What one test runs on. */
struct run_in {
    const char *module;
    char state_dir[4200];
    char label[33];
    const char *resume_job; /* NULL: enroll_start */
    const char *crash_at;   /* PKIO_TEST_CRASH_AT, or NULL */
    long replaces_cert;
};

/* ---- the adapter: the only calls into the enrollment API ------------------------------------ */

struct progress_arg {
    const char *state_dir;
    struct run_out *out;
};

/* enroll_ui.progress: note the job's state as the record on disk says now. */
static void on_progress(void *arg, const char *job_id, const char *line)
{
    struct progress_arg *pa = arg;
    struct job *j = NULL;
    char err[256], *s = pa->out->states;
    const char *name;
    size_t used = strlen(s), nlen;

    (void)line;
    if (!job_id || !*job_id || job_load(pa->state_dir, job_id, &j, err, sizeof(err)) < 0)
        return;
    name = job_state_name(j->state);
    nlen = strlen(name);
    /* distinct consecutive states only */
    if (!(used >= nlen && strcmp(s + used - nlen, name) == 0 &&
          (used == nlen || s[used - nlen - 1] == ',')))
        snprintf(s + used, sizeof(pa->out->states) - used, "%s%s", used ? "," : "", name);
    job_free(j);
}

static void run_core(const struct run_in *in, struct run_out *out)
{
    struct progress_arg pa = {in->state_dir, out};
    struct enroll_ui ui = {.arg = &pa, .progress = on_progress};
    struct enroll_env env = {fx.cfg, in->module, in->state_dir, &ui};
    struct enroll_opts o = {0};
    struct enroll_result res = {0};
    struct pa_diag d;
    char uri[128];

    diag_clear(&d);
    snprintf(uri, sizeof(uri), "pkcs11:token=%s", in->label);
    o.token_uri = in->resume_job ? NULL : uri;
    o.pin_source = fx.pin;
    o.request = REQUEST_FILE;
    o.key_type = TOK_KEY_RSA2048;
    o.replaces_certificate_id = in->replaces_cert;
    if (in->resume_job)
        out->rc = enroll_resume(&env, in->resume_job, &o, &res, &d);
    else
        out->rc = enroll_start(&env, &o, &res, &d);
    out->derr = d.error;
    out->already_done = res.already_done;
    snprintf(out->context, sizeof(out->context), "%s", d.context);
    snprintf(out->detail, sizeof(out->detail), "%s", d.detail);
    snprintf(out->job, sizeof(out->job), "%s", res.job_id);
    enroll_result_clear(&res);
}

/* ---- children -------------------------------------------------------------------------------- */

static void write_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t w = write(fd, c, n);

        if (w <= 0)
            return;
        c += w;
        n -= (size_t)w;
    }
}

/* Run fn(arg, out) in a child; out is what it sent, out->killed when SIGKILL ended it. */
static void in_child(void (*fn)(const void *arg, struct run_out *out), const void *arg,
                     struct run_out *out)
{
    int p[2], st = 0;
    size_t got = 0;
    pid_t pid;

    memset(out, 0, sizeof(*out));
    assert_int_equal(pipe(p), 0);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct run_out o;

        close(p[0]);
        memset(&o, 0, sizeof(o));
        fn(arg, &o);
        write_all(p[1], &o, sizeof(o));
        _exit(0);
    }
    close(p[1]);
    while (got < sizeof(*out)) {
        ssize_t n = read(p[0], (char *)out + got, sizeof(*out) - got);

        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(p[0]);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
        memset(out, 0, sizeof(*out));
        out->killed = true;
        return;
    }
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(got, sizeof(*out));
}

static void child_run(const void *arg, struct run_out *out)
{
    const struct run_in *in = arg;

    if (in->crash_at)
        setenv("PKIO_TEST_CRASH_AT", in->crash_at, 1);
    else
        unsetenv("PKIO_TEST_CRASH_AT");
    run_core(in, out);
}

static void run(const struct run_in *in, struct run_out *out)
{
    in_child(child_run, in, out);
    if (!out->killed)
        print_message("  %s %s: rc %d (%s) states [%s]%s%s%s%s\n",
                      in->resume_job ? "resume" : "enroll", in->label, out->rc, pa_err_str(out->rc),
                      out->states, out->context[0] ? " | " : "", out->context,
                      out->detail[0] ? ": " : "", out->detail);
    else
        print_message("  %s %s: killed at %s\n", in->resume_job ? "resume" : "enroll", in->label,
                      in->crash_at);
    /* the diag: a failure is the return value, with a context */
    if (!out->killed && out->rc < 0 && out->rc != PA_E_PENDING) {
        assert_int_equal(out->derr, out->rc);
        assert_true(out->context[0] != '\0');
    }
}

/* Count the keys and user certificates on the SoftHSM token (in a child: no module here);
 * out->states gets "private keys,public keys,user certificates". */
static void child_count(const void *arg, struct run_out *out)
{
    const struct run_in *in = arg;
    struct tok_ctx *ctx = NULL;
    struct tok_token *tok = NULL;
    struct tok_contents c = {0};
    struct secret *pin = NULL;
    struct tok_uri u = {0};
    char uri[128];

    snprintf(uri, sizeof(uri), "pkcs11:token=%s", in->label);
    out->rc = tok_uri_parse(uri, false, &u);
    if (out->rc == 0)
        out->rc = tok_open(SOFTHSM_MODULE, &ctx);
    if (out->rc == 0)
        out->rc = tok_select(ctx, &u, &tok, NULL, NULL);
    if (out->rc == 0)
        out->rc = secret_from_mem(USER_PIN, strlen(USER_PIN), &pin);
    if (out->rc == 0)
        out->rc = tok_login(tok, pin);
    if (out->rc == 0)
        out->rc = tok_token_contents(tok, &c);
    snprintf(out->states, sizeof(out->states), "%u,%u,%u", c.private_keys, c.public_keys,
             c.user_certs);
    secret_free(pin);
    tok_uri_clear(&u);
    tok_token_close(tok);
    tok_close(ctx);
}

/* The token holds this many "private keys,public keys,user certificates". */
static void assert_token_holds(const struct run_in *in, const char *counts)
{
    struct run_out out;

    in_child(child_count, in, &out);
    assert_false(out.killed);
    assert_int_equal(out.rc, 0);
    assert_string_equal(out.states, counts);
}

/* The token holds exactly one key pair and one (user) certificate. */
static void assert_token_one_key_one_cert(const struct run_in *in)
{
    assert_token_holds(in, "1,1,1");
}

/* ---- fixture ----------------------------------------------------------------------------------
 */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");

    if (!f)
        return -1;
    fchmod(fileno(f), mode);
    fputs(text, f);
    return fclose(f);
}

static int write_config(void)
{
    char text[16384], err[512];

    snprintf(
        text, sizeof(text),
        "{\"api\": {\"url\": \"%s\", \"key_file\": \"%s/key\", \"ca_bundle\": \"%s/tls.pem\",\n"
        "  \"timeout_s\": 2, \"connect_timeout_s\": 1, \"order_settle_s\": 2},\n"
        " \"token\": {\"module\": \"%s\", \"allow_software\": true},\n"
        " \"trust\": {\"anchors\": \"%s/root.pem\"},\n"
        " \"poll\": {\"initial_s\": 0.05, \"max_s\": 0.2, \"timeout_s\": 30},\n"
        " \"state_dir\": \"%s/state\"}\n",
        stub_url(fx.stub), fx.dir, fx.dir, SOFTHSM_MODULE, fx.dir, fx.dir);
    snprintf(fx.cfg_path, sizeof(fx.cfg_path), "%s/config.json", fx.dir);
    if (write_file(fx.cfg_path, text, 0600) < 0)
        return -1;
    if (cfg_load(fx.cfg_path, &fx.cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "config: %s\n", err);
        return -1;
    }
    return 0;
}

static int write_softhsm_conf(void)
{
    char path[4200], text[8400];

    snprintf(path, sizeof(path), "%s/tokens", fx.dir);
    if (mkdir(path, 0700) < 0)
        return -1;
    snprintf(text, sizeof(text),
             "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n"
             "slots.removable = false\n",
             fx.dir);
    snprintf(path, sizeof(path), "%s/softhsm2.conf", fx.dir);
    if (write_file(path, text, 0600) < 0)
        return -1;
    setenv("SOFTHSM2_CONF", path, 1);
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    snprintf(fx.dir, sizeof(fx.dir), "/tmp/pkio-enroll-core-XXXXXX");
    if (!mkdtemp(fx.dir))
        return -1;
    fx.softhsm = access(SOFTHSM_MODULE, R_OK) == 0 &&
                 system("command -v softhsm2-util >/dev/null 2>&1") == 0;
    snprintf(fx.pin, sizeof(fx.pin), "%s/pin", fx.dir);
    if (write_file(fx.pin, USER_PIN "\n", 0600) < 0 || write_softhsm_conf() < 0)
        return -1;
    if (stub_start(fx.dir, &fx.stub) < 0)
        return -1;
    return write_config();
}

static int group_teardown(void **state)
{
    (void)state;
    stub_stop(fx.stub);
    cfg_free(fx.cfg);
    if (!getenv("PKIO_KEEP_TMP"))
        nftw(fx.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* A fresh token (its own label) and state directory; the stub keeps its orders. */
static void fresh_token(struct run_in *in)
{
    char cmd[600];

    if (!fx.softhsm)
        skip();
    memset(in, 0, sizeof(*in));
    fx.ntest++;
    in->module = SOFTHSM_MODULE;
    snprintf(in->label, sizeof(in->label), "core-%02u", fx.ntest);
    snprintf(in->state_dir, sizeof(in->state_dir), "%s/state-%02u", fx.dir, fx.ntest);
    snprintf(cmd, sizeof(cmd),
             "softhsm2-util --init-token --free --label %s --so-pin 12345678 --pin " USER_PIN
             " >/dev/null",
             in->label);
    assert_int_equal(system(cmd), 0);
}

/* A fresh token and state directory for one test; the stub forgets all. */
static void fresh(struct run_in *in)
{
    fresh_token(in);
    stub_reset(fx.stub);
}

/* ---- assertions on the job record --------------------------------------------------------- */

/* The one job in the state directory, loaded (job_free). */
static struct job *only_job(const struct run_in *in)
{
    struct job **list = NULL, *j = NULL;
    size_t n = 0;
    char err[512];

    assert_int_equal(job_list(in->state_dir, &list, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 1);
    assert_int_equal(job_load(in->state_dir, list[0]->id, &j, err, sizeof(err)), 0);
    job_list_free(list, n);
    return j;
}

static enum job_state only_job_state(const struct run_in *in)
{
    struct job *j = only_job(in);
    enum job_state s = j->state;

    job_free(j);
    return s;
}

/* Finished: DONE, with the stub's one order, exactly one POST, one key and cert on the token. */
static void assert_done_once(const struct run_in *in, unsigned posts)
{
    struct job *j = only_job(in);

    assert_string_equal(job_state_name(j->state), "done");
    assert_int_equal(stub_orders(fx.stub), 1);
    assert_int_equal(stub_posts(fx.stub), posts);
    assert_int_equal(j->order_id, stub_order_id(fx.stub, 1));
    assert_int_equal(j->certificate_id, stub_certificate_id(fx.stub, 1));
    assert_non_null(j->cert_pem);
    job_free(j);
    assert_token_one_key_one_cert(in);
}

static void job_id_of(const struct run_in *in, char id[33])
{
    struct job *j = only_job(in);

    snprintf(id, 33, "%s", j->id);
    job_free(j);
}

/* Resume the only job of in (from a copy of in), expecting it to finish. */
static void resume_to_done(const struct run_in *in)
{
    struct run_in again = *in;
    struct run_out out;
    char id[33];

    job_id_of(in, id);
    again.resume_job = id;
    again.crash_at = NULL;
    run(&again, &out);
    assert_false(out.killed);
    assert_int_equal(out.rc, 0);
}

/* states (comma separated) only moves forward and holds each of the states in need. */
static void assert_states_forward(const char *states, const char *need)
{
    char buf[1024], *save = NULL;
    int last = -1;

    snprintf(buf, sizeof(buf), "%s", states);
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        enum job_state st;

        assert_int_equal(job_state_parse(t, &st), 0);
        assert_true((int)st > last);
        last = (int)st;
    }
    snprintf(buf, sizeof(buf), "%s", need);
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char want[64];

        snprintf(want, sizeof(want), ",%s,", t);
        {
            char have[1100];

            snprintf(have, sizeof(have), ",%s,", states);
            assert_non_null(strstr(have, want));
        }
    }
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_happy_path(void **state)
{
    struct run_in in;
    struct run_out out;

    (void)state;
    fresh(&in);
    stub_issue_on_poll(fx.stub, 2);
    run(&in, &out);
    assert_false(out.killed);
    assert_int_equal(out.rc, 0);
    assert_false(out.already_done);
    assert_int_equal(strlen(out.job), 32);
    /* The record after each step, as the progress lines saw it: every step, forward only. */
    assert_states_forward(out.states, "new,key_ready,csr_ready,ordered,issued,installed");
    assert_done_once(&in, 1);
    /* The same enroll again: already done, nothing ordered. */
    run(&in, &out);
    assert_int_equal(out.rc, 0);
    assert_true(out.already_done);
    assert_int_equal(stub_posts(fx.stub), 1);
}

/* Kill the enroll at point, check the state it left and what the token holds then ("keys,
 * public keys,certificates"), resume, check it finished once. */
static void crash_and_resume(const char *point, const char *left_in, const char *on_token)
{
    struct run_in in;
    struct run_out out;

    fresh(&in);
    in.crash_at = point;
    run(&in, &out);
    assert_true(out.killed);
    assert_string_equal(job_state_name(only_job_state(&in)), left_in);
    assert_token_holds(&in, on_token);
    resume_to_done(&in);
    assert_done_once(&in, 1);
}

static void test_crash_after_keygen(void **state)
{
    (void)state;
    crash_and_resume("after-keygen", "new", "1,1,0");
}

static void test_crash_before_post(void **state)
{
    (void)state;
    crash_and_resume("before-post", "ordering", "1,1,0");
}

static void test_crash_after_post(void **state)
{
    (void)state;
    crash_and_resume("after-post", "ordering", "1,1,0");
}

static void test_crash_after_install(void **state)
{
    (void)state;
    crash_and_resume("after-install", "issued", "1,1,1");
}

/* The officer's natural retry (the same enroll) continues a killed job too. */
static void test_crash_after_post_enroll_again(void **state)
{
    struct run_in in;
    struct run_out out;

    (void)state;
    fresh(&in);
    in.crash_at = "after-post";
    run(&in, &out);
    assert_true(out.killed);
    in.crash_at = NULL;
    run(&in, &out);
    assert_int_equal(out.rc, 0);
    assert_done_once(&in, 1);
}

/* The job of in's token (by label) in in's state directory, loaded (job_free). */
static struct job *job_on(const struct run_in *in)
{
    struct job **list = NULL, *j = NULL;
    size_t n = 0;
    char err[512];

    assert_int_equal(job_list(in->state_dir, &list, &n, err, sizeof(err)), 0);
    for (size_t i = 0; i < n && !j; i++)
        if (strcmp(list[i]->token_label, in->label) == 0)
            assert_int_equal(job_load(in->state_dir, list[i]->id, &j, err, sizeof(err)), 0);
    job_list_free(list, n);
    assert_non_null(j);
    return j;
}

/* A re-key killed around its revoke: one order per token, the old certificate revoked once. */
static void rekey_crash(const char *point, const char *left_in)
{
    struct run_in first, second;
    struct run_out out;
    struct job *j;
    char status[16];

    fresh(&first);
    run(&first, &out);
    assert_int_equal(out.rc, 0);
    /* the second token in the same state directory: the re-key finds the old job there */
    fresh_token(&second);
    snprintf(second.state_dir, sizeof(second.state_dir), "%s", first.state_dir);
    second.replaces_cert = stub_certificate_id(fx.stub, 1);
    second.crash_at = point;
    run(&second, &out);
    assert_true(out.killed);
    j = job_on(&second);
    assert_string_equal(job_state_name(j->state), left_in);
    second.crash_at = NULL;
    second.resume_job = j->id;
    run(&second, &out);
    job_free(j);
    assert_int_equal(out.rc, 0);
    j = job_on(&second);
    assert_string_equal(job_state_name(j->state), "done");
    assert_int_equal(j->order_id, stub_order_id(fx.stub, 2));
    assert_int_equal(j->replaces_certificate_id, stub_certificate_id(fx.stub, 1));
    job_free(j);
    assert_int_equal(stub_orders(fx.stub), 2);
    assert_int_equal(stub_posts(fx.stub), 2);
    assert_int_equal(stub_revokes(fx.stub), 1);
    stub_order_status(fx.stub, stub_order_id(fx.stub, 1), status, sizeof(status));
    assert_string_equal(status, "revoked");
    assert_token_one_key_one_cert(&second);
}

static void test_crash_before_revoke(void **state)
{
    (void)state;
    rekey_crash("before-revoke", "installed");
}

static void test_crash_after_revoke(void **state)
{
    (void)state;
    rekey_crash("after-revoke", "installed");
}

/* The POST's first answer is action a; the enroll stops with the job in ORDERING (maybe
 * placed), and resume settles it: recovered by public key, or ordered once after the window. */
static void post_fault_then_resume(enum stub_action a, unsigned posts_total)
{
    struct run_in in;
    struct run_out out;
    struct job *j;

    fresh(&in);
    stub_fault_post(fx.stub, 1, a);
    run(&in, &out);
    assert_false(out.killed);
    assert_true(out.rc < 0);
    j = only_job(&in);
    assert_string_equal(job_state_name(j->state), "ordering");
    assert_true(j->order_attempt_at != 0); /* maybe placed: resume looks it up first */
    assert_int_equal(j->order_id, 0);
    job_free(j);
    assert_int_equal(stub_posts(fx.stub), 1);
    resume_to_done(&in);
    assert_done_once(&in, posts_total);
}

static void test_post_answer_lost(void **state)
{
    (void)state;
    post_fault_then_resume(STUB_LOST, 1);
}

static void test_post_timeout(void **state)
{
    (void)state;
    post_fault_then_resume(STUB_TIMEOUT, 1);
}

static void test_post_garbage(void **state)
{
    (void)state;
    post_fault_then_resume(STUB_GARBAGE, 1);
}

static void test_post_truncated(void **state)
{
    (void)state;
    post_fault_then_resume(STUB_TRUNCATED, 1);
}

/* 503 and the order was placed: found, never a second order. */
static void test_post_503_placed(void **state)
{
    (void)state;
    post_fault_then_resume(STUB_503_PLACED, 1);
}

/* 503 and nothing was placed: resume looks first (settle window), then orders once. */
static void test_post_503_not_placed(void **state)
{
    (void)state;
    post_fault_then_resume(STUB_503, 2);
}

/* 429: certainly not placed; the enroll waits and sends it again: 2 POSTs, 1 order. */
static void test_post_429_then_ok(void **state)
{
    struct run_in in;
    struct run_out out;

    (void)state;
    fresh(&in);
    stub_fault_post(fx.stub, 1, STUB_429);
    run(&in, &out);
    assert_int_equal(out.rc, 0);
    assert_states_forward(out.states, "csr_ready,ordering,ordered,installed");
    assert_done_once(&in, 2);
}

/* A 503 on a poll: the GET is retried (after the client's backoff), nothing is ordered again. */
static void test_poll_503_retried(void **state)
{
    struct run_in in;
    struct run_out out;

    (void)state;
    fresh(&in);
    stub_fault_poll(fx.stub, 1, STUB_503);
    run(&in, &out);
    assert_int_equal(out.rc, 0);
    assert_done_once(&in, 1);
}

/* An unreadable answer to a poll: the job keeps its order (ORDERED), resume finishes it. */
static void test_poll_garbage_held(void **state)
{
    struct run_in in;
    struct run_out out;
    struct job *j;

    (void)state;
    fresh(&in);
    stub_fault_poll(fx.stub, 1, STUB_GARBAGE);
    run(&in, &out);
    assert_int_equal(out.rc, PA_E_CA_PROTOCOL);
    j = only_job(&in);
    assert_string_equal(job_state_name(j->state), "ordered");
    assert_int_equal(j->order_id, stub_order_id(fx.stub, 1));
    job_free(j);
    resume_to_done(&in);
    assert_done_once(&in, 1);
}

/* ---- the fake module: PIN states, pulled token ---------------------------------------------- */

static char fake_log[4200];

/* Run an enroll on the fake module with these FAKEP11_* settings; the log of C_Login calls. */
static void fake_run(const char *flags, const char *remove_after, struct run_out *out, char *log,
                     size_t loglen)
{
    struct run_in in;
    FILE *f;
    size_t n = 0;

    memset(&in, 0, sizeof(in));
    fx.ntest++;
    in.module = FAKEP11_MODULE;
    snprintf(in.label, sizeof(in.label), "fake-token");
    snprintf(in.state_dir, sizeof(in.state_dir), "%s/state-%02u", fx.dir, fx.ntest);
    snprintf(fake_log, sizeof(fake_log), "%s/fake-%02u.log", fx.dir, fx.ntest);
    stub_reset(fx.stub);
    setenv("FAKEP11_LOG", fake_log, 1);
    if (flags)
        setenv("FAKEP11_FLAGS", flags, 1);
    if (remove_after)
        setenv("FAKEP11_REMOVE_AFTER", remove_after, 1);
    run(&in, out);
    unsetenv("FAKEP11_LOG");
    unsetenv("FAKEP11_FLAGS");
    unsetenv("FAKEP11_REMOVE_AFTER");
    log[0] = '\0';
    f = fopen(fake_log, "r");
    if (f) {
        n = fread(log, 1, loglen - 1, f);
        fclose(f);
    }
    log[n] = '\0';
    assert_false(out->killed);
    assert_int_equal(stub_posts(fx.stub), 0);
}

static void test_pin_locked(void **state)
{
    struct run_out out;
    char log[1024];

    (void)state;
    fake_run("locked", NULL, &out, log, sizeof(log));
    assert_int_equal(out.rc, PA_E_PIN_LOCKED);
    assert_null(strstr(log, "C_Login"));
}

static void test_pin_final_try(void **state)
{
    struct run_out out;
    char log[1024];

    (void)state;
    fake_run("final_try", NULL, &out, log, sizeof(log));
    assert_int_equal(out.rc, PA_E_PIN_LOCKED);
    assert_null(strstr(log, "C_Login"));
}

static void test_token_pulled(void **state)
{
    struct run_out out;
    char log[1024];

    (void)state;
    fake_run(NULL, "0", &out, log, sizeof(log));
    assert_true(out.rc == PA_E_TOKEN_NOT_FOUND || out.rc == PA_E_TOKEN_GONE);
    assert_null(strstr(log, "C_Login"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_happy_path),
        cmocka_unit_test(test_crash_after_keygen),
        cmocka_unit_test(test_crash_before_post),
        cmocka_unit_test(test_crash_after_post),
        cmocka_unit_test(test_crash_after_post_enroll_again),
        cmocka_unit_test(test_crash_after_install),
        cmocka_unit_test(test_crash_before_revoke),
        cmocka_unit_test(test_crash_after_revoke),
        cmocka_unit_test(test_post_answer_lost),
        cmocka_unit_test(test_post_timeout),
        cmocka_unit_test(test_post_garbage),
        cmocka_unit_test(test_post_truncated),
        cmocka_unit_test(test_post_503_placed),
        cmocka_unit_test(test_post_503_not_placed),
        cmocka_unit_test(test_post_429_then_ok),
        cmocka_unit_test(test_poll_503_retried),
        cmocka_unit_test(test_poll_garbage_held),
        cmocka_unit_test(test_pin_locked),
        cmocka_unit_test(test_pin_final_try),
        cmocka_unit_test(test_token_pulled),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
