/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test_intake.c - officers and the daemon (agent/core/intake.c): an entry handed to the daemon's
 * socket is validated and queued with the sender's login name and uid (SO_PEERCRED), or refused
 * with a reason (not JSON, unknown members, an invalid request, a token URI with pin-value or a
 * slot-id); a second daemon on the same state directory is refused; state_share gives a group
 * read access to job records, the audit log and queue entries, never to request copies, and
 * records written in a shared jobs/ directory are born group-readable (fs_mode_in_dir).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "fsutil.h"
#include "intake.h"
#include "pa_err.h"
#include "queue.h"

static char tmpdir[4096];
static struct cfg *cfg;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int dir_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "%s/pkio-intake-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir) || cfg_new_defaults(&cfg) < 0)
        return -1;
    return 0;
}

static int dir_teardown(void **state)
{
    (void)state;
    cfg_free(cfg);
    cfg = NULL;
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The text of a request file in tests/data/requests. */
static char *request_text(const char *name)
{
    char path[4096], *buf = NULL;
    size_t len = 0;

    snprintf(path, sizeof(path), "%s/requests/%s", PKIO_TEST_DATA, name);
    assert_int_equal(fs_read_file(path, 1 << 20, &buf, &len), 0);
    return buf;
}

/*
 * Submit entry from a child process while this one serves the socket, as the daemon's loop does.
 * The child's result and the id or reason it got come back through a pipe.
 */
static int submit(struct intake *in, const char *entry, char *answer, size_t len)
{
    int fds[2], status = 0;
    ssize_t n;
    pid_t pid;

    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char id[33] = "", err[512] = "";
        int r = intake_submit(tmpdir, entry, strlen(entry), id, err, sizeof(err));
        const char *out = r == 0 ? id : err;

        (void)!write(fds[1], out, strlen(out));
        _exit(r == 0 ? 0 : r == PA_E_REFUSED ? 1 : 2);
    }
    close(fds[1]);
    while (waitpid(pid, &status, WNOHANG) == 0) {
        struct pollfd p[16];
        size_t np = intake_pollfds(in, p, 16);

        if (poll(p, np, 50) > 0)
            intake_handle(in, p, np);
        (void)intake_timeout_ms(in);
    }
    n = read(fds[0], answer, len - 1);
    answer[n > 0 ? n : 0] = '\0';
    close(fds[0]);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_submit_queue_and_refuse(void **state)
{
    struct officers o = {.name = "no-such-group-here", .gid = (gid_t)-1};
    struct intake_ctx ctx = {.state_dir = tmpdir, .cfg = cfg, .officers = &o};
    struct intake *in = NULL, *second = NULL;
    struct queue_entry *v = NULL;
    struct passwd *pw = getpwuid(geteuid());
    char *req = request_text("valid-prof.json"), *bad = request_text("invalid-individual.json");
    char entry[1 << 16], answer[600], err[512] = "";
    size_t n = 0;

    (void)state;
    assert_int_equal(intake_open(&ctx, &in, err, sizeof(err)), 0);
    assert_int_equal(intake_open(&ctx, &second, err, sizeof(err)), PA_E_BUSY);
    snprintf(entry, sizeof(entry),
             "{\"format\":1,\"serial\":\"A1\",\"token_uri\":\"pkcs11:token=alice\",\"request\":%s}",
             req);
    assert_int_equal(submit(in, entry, answer, sizeof(answer)), 0);
    assert_int_equal(strlen(answer), 32);
    assert_int_equal(queue_list(tmpdir, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].id, answer);
    assert_string_equal(v[0].bind.serial, "A1");
    assert_string_equal(v[0].bind.label, "alice");
    assert_string_equal(v[0].officer, pw->pw_name); /* from the kernel, not from the entry */
    assert_int_equal(v[0].officer_uid, (long)geteuid());
    queue_list_free(v, n);

    assert_int_equal(submit(in, "{not json", answer, sizeof(answer)), 1);
    assert_non_null(strstr(answer, "JSON"));
    snprintf(entry, sizeof(entry), "{\"format\":1,\"officer\":\"mallory\",\"request\":%s}", req);
    assert_int_equal(submit(in, entry, answer, sizeof(answer)), 1);
    assert_non_null(strstr(answer, "unknown member"));
    snprintf(entry, sizeof(entry), "{\"format\":1,\"request\":%s}", bad);
    assert_int_equal(submit(in, entry, answer, sizeof(answer)), 1);
    assert_non_null(strstr(answer, "invalid request"));
    snprintf(entry, sizeof(entry),
             "{\"format\":1,\"token_uri\":\"pkcs11:slot-id=1\",\"request\":%s}", req);
    assert_int_equal(submit(in, entry, answer, sizeof(answer)), 1);
    assert_non_null(strstr(answer, "slot-id"));
    assert_int_equal(submit(in, "{\"format\":1,\"request\":[]}", answer, sizeof(answer)), 1);
    assert_int_equal(queue_list(tmpdir, &v, &n), 0);
    assert_int_equal(n, 1); /* nothing refused was queued */
    queue_list_free(v, n);
    intake_close(in);
    /* no daemon: the officer is told so */
    assert_int_equal(intake_submit(tmpdir, "{}", 2, answer, err, sizeof(err)), PA_E_IO);
    assert_non_null(strstr(err, "no pkio-agent watch daemon"));
    free(req);
    free(bad);
}

static mode_t mode_of(const char *rel)
{
    char p[4400];
    struct stat st;

    snprintf(p, sizeof(p), "%s/%s", tmpdir, rel);
    assert_int_equal(lstat(p, &st), 0);
    return st.st_mode & 07777;
}

static void test_state_share(void **state)
{
    struct officers o = {.name = "mine", .gid = getegid()};
    struct officers none = {.name = "none", .gid = (gid_t)-1};
    char err[512] = "", id[33], name[80], p[4400];

    (void)state;
    assert_int_equal(queue_add_text(tmpdir, "{}", 2, NULL, NULL, "alice", 1, id, err, sizeof(err)),
                     0);
    snprintf(p, sizeof(p), "%s/jobs", tmpdir);
    assert_int_equal(mkdir(p, 0700), 0);
    assert_int_equal(chmod(tmpdir, 0700), 0);
    assert_int_equal(state_share(tmpdir, &none, err, sizeof(err)), 0); /* no group: nothing */
    assert_int_equal(mode_of("jobs"), 0700);
    assert_int_equal(state_share(tmpdir, &o, err, sizeof(err)), 0);
    assert_int_equal(mode_of(""), 0750);
    assert_int_equal(mode_of("jobs"), 02750);
    assert_int_equal(mode_of("queue"), 02750);
    assert_int_equal(mode_of("queue/taken"), 02750);
    assert_int_equal(mode_of("audit.log"), 0640); /* made, so that it is born shared */
    snprintf(name, sizeof(name), "queue/%s.request.json", id);
    assert_int_equal(mode_of(name), 0600); /* card data stays private */
    /* A record written in the shared jobs/ is group-readable; elsewhere private. */
    snprintf(p, sizeof(p), "%s/jobs/x.json", tmpdir);
    assert_int_equal(fs_mode_in_dir(p, 0600, 0640), 0640);
    snprintf(p, sizeof(p), "%s/queue/rejected/x", tmpdir);
    assert_int_equal(fs_mode_in_dir(p, 0600, 0640), 0640);
    snprintf(p, sizeof(p), "%s/x", tmpdir);
    assert_int_equal(fs_mode_in_dir(p, 0600, 0640), 0600);
}

static void test_officers_allow(void **state)
{
    struct officers none = {.name = "none", .gid = (gid_t)-1};
    char login[64];

    (void)state;
    assert_true(officers_allow(&none, geteuid(), login, sizeof(login))); /* the daemon's user */
    assert_true(officers_allow(&none, 0, login, sizeof(login)));         /* root */
    assert_string_equal(login, "root");
    if (geteuid() != 65534)
        assert_false(officers_allow(&none, 65534, login, sizeof(login)));
    assert_int_equal(officers_lookup("no-such-group-here", &none), 0);
    assert_true(none.gid == (gid_t)-1);
    assert_int_equal(officers_lookup("root", &none), 0);
    assert_true(none.gid == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_submit_queue_and_refuse, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_state_share, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_officers_allow, dir_setup, dir_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
