/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_audit.c - the hash-chained audit log (agent/core/audit.c, included to reach its static
 * helpers and to keep these tests out of the machine's syslog).
 *
 * Tampering rules asserted here (see audit_verify):
 *   - a changed byte that keeps line K valid JSON is caught at line K+1 (its prev no longer
 *     matches); a change that breaks line K itself (JSON, seq, a field) is caught at line K;
 *   - a deleted line K is caught at line K (the old line K+1 now sits there with the wrong seq);
 *   - an incomplete last line is named, and nothing is appended after it.
 * Anchors and job records (audit_verify_report):
 *   - a cut-off tail, a deleted log and a rewritten chain (hashes recomputed) are each reported
 *     against a journal (fake anchor lists, and real anchors caught on a private socket), and
 *     against the job records' last (seq, hash) without one;
 *   - a kill between saving a job record and appending its event loses nothing and appends
 *     nothing twice (audit_commit_pending after a SIGKILL at either crash point).
 */
#include "audit.c"

#include "job.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

static char tmpdir[4096]; /* private to this process: parallel-safe */
static char log_path[4200];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int dir_setup(void **state)
{
    const char *base = getenv("TMPDIR");

    (void)state;
    audit_syslog_enabled = false;
    (void)unsetenv(AUDIT_SOCKET_ENV);
    (void)unsetenv("PKIO_TEST_CRASH_AT");
    if (!base || !*base)
        base = "/tmp";
    if (snprintf(tmpdir, sizeof(tmpdir), "%s/pkio-test-audit.XXXXXX", base) >= (int)sizeof(tmpdir))
        return -1;
    if (!mkdtemp(tmpdir))
        return -1;
    (void)snprintf(log_path, sizeof(log_path), "%s/audit.log", tmpdir);
    return 0;
}

static int dir_teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The whole log (malloc'd, NUL-terminated). */
static char *slurp(size_t *ret_len)
{
    FILE *f = fopen(log_path, "rbe");
    char *buf;
    long len;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    len = ftell(f);
    assert_true(len >= 0);
    rewind(f);
    buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    buf[len] = '\0';
    fclose(f);
    if (ret_len)
        *ret_len = (size_t)len;
    return buf;
}

static void spew(const char *data, size_t len)
{
    FILE *f = fopen(log_path, "wbe");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Line n (1-based) of buf, without its newline, into a malloc'd string. */
static char *line_of(const char *buf, int n)
{
    const char *p = buf, *nl;

    for (int i = 1; i < n; i++) {
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
    }
    nl = strchr(p, '\n');
    assert_non_null(nl);
    return strndup(p, (size_t)(nl - p));
}

static void hex_sha256(const char *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;

    assert_int_equal(EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL), 1);
    assert_int_equal(mdlen, 32);
    for (int i = 0; i < 32; i++)
        (void)snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The new line for ev (body now, seq, prev), newline included; malloc'd. */
static int audit_format(const struct audit_event *ev, long seq, const char *prev, char **ret)
{
    json_object *body = NULL;
    size_t len;
    int r = audit_body_from_event(ev, &body);

    if (r == 0)
        r = audit_line_from_body(body, seq, prev, NULL, ret, &len);
    json_object_put(body);
    return r;
}

static void append_n(int n, const char *detail)
{
    for (int i = 0; i < n; i++) {
        struct audit_event ev = {.event = "poll", .outcome = "ok", .detail = detail};

        assert_int_equal(audit_append(tmpdir, &ev), 0);
    }
}

/* The usual three lines: keygen, order, issued. */
static void append_three(void)
{
    struct audit_event e1 = {
        .event = "keygen",
        .outcome = "ok",
        .job_id = "0123456789abcdef0123456789abcdef",
        .token_serial = "a1b2c3d4e5f60718",
        .token_label = "kees",
        .key_id = "0a1b",
        .custody = "sensitive,always_sensitive,never_extractable,local",
    };
    struct audit_event e2 = {
        .event = "order",
        .outcome = "ok",
        .job_id = "0123456789abcdef0123456789abcdef",
        .csr_sha256 = "2222222222222222222222222222222222222222222222222222222222222222",
        .order_id = 123456,
        .detail = "second",
    };
    struct audit_event e3 = {
        .event = "issued",
        .outcome = "ok",
        .order_id = 123456,
        .certificate_id = 654321,
        .cert_serial = "7F00AB",
    };

    assert_int_equal(audit_append(tmpdir, &e1), 0);
    assert_int_equal(audit_append(tmpdir, &e2), 0);
    assert_int_equal(audit_append(tmpdir, &e3), 0);
}

/* Verify and expect a break at line `bad` whose message contains `why`. */
static void expect_broken(long bad, const char *why)
{
    long lines = -1, got = -1;
    char err[512] = "", want[32];

    assert_int_equal(audit_verify(tmpdir, &lines, &got, err, sizeof(err)), PA_E_JOB);
    if (got != bad || !strstr(err, why))
        fail_msg("expected line %ld (%s), got line %ld: %s", bad, why, got, err);
    (void)snprintf(want, sizeof(want), "line %ld: ", bad);
    assert_non_null(strstr(err, want));
    assert_int_equal(lines, -1); /* untouched on failure */
}

static void expect_intact(long want_lines)
{
    long lines = -1, bad = -1;
    char err[512] = "";

    if (audit_verify(tmpdir, &lines, &bad, err, sizeof(err)) != 0)
        fail_msg("verify failed: %s", err);
    assert_int_equal(lines, want_lines);
    assert_int_equal(bad, -1);
}

/* ---- appending ------------------------------------------------------------------------ */

static void test_append_three(void **state)
{
    char *buf, *l1, *l2, *l3, h[65];
    json_object *o, *v;
    struct stat st;
    struct passwd *pw = getpwuid(getuid());

    (void)state;
    append_three();
    expect_intact(3);
    assert_int_equal(stat(log_path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    buf = slurp(NULL);
    l1 = line_of(buf, 1);
    l2 = line_of(buf, 2);
    l3 = line_of(buf, 3);
    /* the layout: seq first, prev last, one object per line */
    assert_true(strncmp(l1, "{\"seq\":1,\"at\":\"", 15) == 0);
    assert_non_null(strstr(l1, "\"prev\":\"" AUDIT_ZERO_PREV "\"}"));
    assert_true(strncmp(l2, "{\"seq\":2,", 9) == 0);
    hex_sha256(l1, strlen(l1), h);
    assert_non_null(strstr(l2, h));
    hex_sha256(l2, strlen(l2), h);
    assert_non_null(strstr(l3, h));

    o = json_tokener_parse(l1);
    assert_non_null(o);
    assert_true(json_object_object_get_ex(o, "user", &v));
    assert_non_null(pw);
    {
        char who[AUDIT_MAX_NAME + 1];
        const char *from = NULL;

        audit_actor(who, sizeof(who), &from);
        assert_string_equal(json_object_get_string(v), who);
        if (strcmp(from, "uid") == 0)
            assert_string_equal(who, pw->pw_name);
        assert_true(json_object_object_get_ex(o, "user_from", &v));
        assert_string_equal(json_object_get_string(v), from);
    }
    assert_true(json_object_object_get_ex(o, "uid", &v));
    assert_int_equal(json_object_get_int64(v), getuid());
    assert_true(json_object_object_get_ex(o, "pid", &v));
    assert_int_equal(json_object_get_int64(v), getpid());
    assert_true(json_object_object_get_ex(o, "at", &v));
    assert_true(audit_is_time(json_object_get_string(v)));
    assert_true(json_object_object_get_ex(o, "custody", &v));
    assert_string_equal(json_object_get_string(v),
                        "sensitive,always_sensitive,never_extractable,local");
    assert_true(json_object_object_get_ex(o, "token_label", &v));
    assert_false(json_object_object_get_ex(o, "order_id", NULL)); /* 0: left out */
    assert_false(json_object_object_get_ex(o, "detail", NULL));   /* NULL: left out */
    json_object_put(o);

    o = json_tokener_parse(l3);
    assert_non_null(o);
    assert_true(json_object_object_get_ex(o, "certificate_id", &v));
    assert_int_equal(json_object_get_int64(v), 654321);
    assert_true(json_object_object_get_ex(o, "cert_serial", &v));
    assert_string_equal(json_object_get_string(v), "7F00AB");
    assert_false(json_object_object_get_ex(o, "job", NULL));
    json_object_put(o);
    free(l1);
    free(l2);
    free(l3);
    free(buf);
}

static void test_append_umask(void **state)
{
    mode_t old = umask(0);
    struct stat st;

    (void)state;
    append_n(1, NULL);
    umask(old);
    assert_int_equal(stat(log_path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
}

static void test_append_refusals(void **state)
{
    struct audit_event ev = {.event = "x", .outcome = "ok"};
    struct audit_event no_event = {.outcome = "ok"};
    struct audit_event empty_outcome = {.event = "x", .outcome = ""};
    char other[4300];

    (void)state;
    assert_int_equal(audit_append(tmpdir, &no_event), PA_E_INTERNAL);
    assert_int_equal(audit_append(tmpdir, &empty_outcome), PA_E_INTERNAL);
    assert_int_equal(audit_append(tmpdir, NULL), PA_E_INTERNAL);
    assert_int_equal(audit_append(NULL, &ev), PA_E_INTERNAL);
    assert_int_equal(access(log_path, F_OK), -1); /* nothing created */
    (void)snprintf(other, sizeof(other), "%s/missing", tmpdir);
    assert_int_equal(audit_append(other, &ev), PA_E_IO);

    /* group-writable log: refused, untouched */
    append_n(1, NULL);
    assert_int_equal(chmod(log_path, 0620), 0);
    assert_int_equal(audit_append(tmpdir, &ev), PA_E_CONFIG);
    assert_int_equal(chmod(log_path, 0600), 0);
    expect_intact(1);

    /* a symlink is not followed */
    (void)snprintf(other, sizeof(other), "%s/elsewhere.log", tmpdir);
    assert_int_equal(rename(log_path, other), 0);
    assert_int_equal(symlink(other, log_path), 0);
    assert_int_equal(audit_append(tmpdir, &ev), PA_E_IO);
}

static void test_append_clips_and_escapes(void **state)
{
    char detail[2100], *buf, *l1;
    json_object *o, *v;
    const char *s;
    size_t len;

    (void)state;
    detail[0] = 'x';
    for (size_t i = 1; i + 2 < sizeof(detail); i += 2) {
        detail[i] = '\xc3';
        detail[i + 1] = '\xa9';
    }
    detail[sizeof(detail) - 1] = '\0';
    append_n(1, detail);
    append_n(1, "a\nb\x01\"c\\");
    expect_intact(2);
    buf = slurp(&len);
    assert_int_equal(memchr(buf, '\0', len), NULL);
    l1 = line_of(buf, 1);
    o = json_tokener_parse(l1);
    assert_non_null(o);
    assert_true(json_object_object_get_ex(o, "detail", &v));
    s = json_object_get_string(v);
    assert_int_equal(strlen(s), 511); /* 512 would cut "é" in half */
    assert_int_equal(memcmp(s, detail, 511), 0);
    json_object_put(o);
    free(l1);
    l1 = line_of(buf, 2);
    assert_non_null(strstr(l1, "\"detail\":\"a\\nb\\u0001\\\"c\\\\\""));
    free(l1);
    free(buf);
}

static void test_append_big_log_tail(void **state)
{
    char detail[501];
    struct stat st;

    (void)state;
    memset(detail, 'd', sizeof(detail) - 1);
    detail[sizeof(detail) - 1] = '\0';
    append_n(200, detail); /* well over AUDIT_MAX_LINE + 2 bytes: the tail is read, not all */
    assert_int_equal(stat(log_path, &st), 0);
    assert_true(st.st_size > 2 * (AUDIT_MAX_LINE + 2));
    expect_intact(200);
}

static void test_append_after_move_aside(void **state)
{
    char old[4300], *buf, *l1;

    (void)state;
    append_n(2, NULL);
    (void)snprintf(old, sizeof(old), "%s/audit.log.1", tmpdir);
    assert_int_equal(rename(log_path, old), 0);
    append_n(1, NULL);
    expect_intact(1);
    buf = slurp(NULL);
    l1 = line_of(buf, 1);
    assert_true(strncmp(l1, "{\"seq\":1,", 9) == 0);
    free(l1);
    free(buf);
}

static void test_concurrent_appends(void **state)
{
    pid_t pids[2];

    (void)state;
    append_n(1, "before");
    for (int i = 0; i < 2; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            for (int k = 0; k < 50; k++) {
                struct audit_event ev = {.event = "poll", .outcome = i ? "child1" : "child0"};

                if (audit_append(tmpdir, &ev) != 0)
                    _exit(1);
            }
            _exit(0);
        }
    }
    for (int i = 0; i < 2; i++) {
        int status = 0;

        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    expect_intact(101);
}

/* ---- verifying ------------------------------------------------------------------------ */

static void test_verify_empty(void **state)
{
    (void)state;
    expect_intact(0); /* no file */
    spew("", 0);
    expect_intact(0);
    assert_int_equal(audit_verify(tmpdir, NULL, NULL, NULL, 0), 0);
}

/* Replace the first `from` in line n of the log with `to`. */
static void edit_line(int n, const char *from, const char *to)
{
    char *buf = slurp(NULL), *line = line_of(buf, n), *p, *out;
    size_t start = 0, len;

    for (int i = 1; i < n; i++)
        start = (size_t)(strchr(buf + start, '\n') - buf) + 1;
    p = strstr(buf + start, from);
    assert_non_null(p);
    assert_true((size_t)(p - buf) < start + strlen(line));
    len = strlen(buf) - strlen(from) + strlen(to);
    out = malloc(len + 1);
    assert_non_null(out);
    (void)snprintf(out, len + 1, "%.*s%s%s", (int)(p - buf), buf, to, p + strlen(from));
    spew(out, len);
    free(out);
    free(line);
    free(buf);
}

static void test_tamper_value(void **state)
{
    (void)state;
    append_three();
    edit_line(2, "\"detail\":\"second\"", "\"detail\":\"sEcond\""); /* still valid JSON */
    expect_broken(3, "prev mismatch");
}

static void test_tamper_json(void **state)
{
    (void)state;
    append_three();
    edit_line(2, "{\"seq\":2,", "{\"seq\":2;");
    expect_broken(2, "bad JSON");
}

static void test_tamper_seq(void **state)
{
    (void)state;
    append_three();
    edit_line(2, "{\"seq\":2,", "{\"seq\":7,");
    expect_broken(2, "seq 7, expected 2");
}

static void test_tamper_prev_of_first(void **state)
{
    (void)state;
    append_three();
    edit_line(1, "\"prev\":\"0000", "\"prev\":\"1000");
    expect_broken(1, "prev mismatch");
}

static void test_tamper_missing_field(void **state)
{
    (void)state;
    append_three();
    edit_line(1, "\"outcome\":\"ok\",", "");
    expect_broken(1, "missing field \"outcome\"");
}

static void test_delete_line(void **state)
{
    char *buf, *l1, *l3, *out;
    size_t len;

    (void)state;
    append_three();
    buf = slurp(NULL);
    l1 = line_of(buf, 1);
    l3 = line_of(buf, 3);
    len = strlen(l1) + strlen(l3) + 2;
    out = malloc(len + 1);
    assert_non_null(out);
    (void)snprintf(out, len + 1, "%s\n%s\n", l1, l3);
    spew(out, len);
    expect_broken(2, "seq 3, expected 2");
    free(out);
    free(l1);
    free(l3);
    free(buf);
}

static void test_duplicate_line(void **state)
{
    char *buf, *l2, *dup;
    size_t len;

    (void)state;
    append_three();
    buf = slurp(NULL);
    l2 = line_of(buf, 2);
    len = strlen(l2) * 2 + 2;
    dup = malloc(len + 1);
    assert_non_null(dup);
    (void)snprintf(dup, len + 1, "%s\n%s", l2, l2);
    edit_line(2, l2, dup);
    free(dup);
    free(l2);
    free(buf);
    expect_broken(3, "seq 2, expected 3");
}

static void test_truncated_last_line(void **state)
{
    struct audit_event ev = {.event = "x", .outcome = "ok"};
    struct stat st;

    (void)state;
    append_three();
    assert_int_equal(stat(log_path, &st), 0);
    assert_int_equal(truncate(log_path, st.st_size - 10), 0);
    expect_broken(3, "incomplete");
    assert_int_equal(audit_append(tmpdir, &ev), PA_E_JOB); /* never glued onto a torn line */
    assert_int_equal(stat(log_path, &st), 0);
    expect_broken(3, "incomplete");

    /* only the newline missing: still incomplete */
    assert_int_equal(unlink(log_path), 0);
    append_three();
    assert_int_equal(stat(log_path, &st), 0);
    assert_int_equal(truncate(log_path, st.st_size - 1), 0);
    expect_broken(3, "incomplete");
    assert_int_equal(audit_append(tmpdir, &ev), PA_E_JOB);
}

static void test_damaged_last_line_blocks_append(void **state)
{
    struct audit_event ev = {.event = "x", .outcome = "ok"};
    char *big;
    size_t big_len = AUDIT_MAX_LINE + 10;
    FILE *f;

    (void)state;
    append_three();
    f = fopen(log_path, "ae");
    assert_non_null(f);
    fputs("garbage\n", f);
    fclose(f);
    assert_int_equal(audit_append(tmpdir, &ev), PA_E_JOB);
    expect_broken(4, "bad JSON");

    /* a last line longer than any line we write */
    assert_int_equal(unlink(log_path), 0);
    append_three();
    big = malloc(big_len + 1);
    assert_non_null(big);
    memset(big, 'x', big_len);
    big[big_len] = '\n';
    f = fopen(log_path, "ae");
    assert_non_null(f);
    assert_int_equal(fwrite(big, 1, big_len + 1, f), big_len + 1);
    fclose(f);
    free(big);
    assert_int_equal(audit_append(tmpdir, &ev), PA_E_JOB);
    expect_broken(4, "longer than");
}

static void test_verify_not_regular(void **state)
{
    char err[256];
    long bad = -1;

    (void)state;
    assert_int_equal(mkfifo(log_path, 0600), 0);
    assert_int_equal(audit_verify(tmpdir, NULL, &bad, err, sizeof(err)), PA_E_IO);
    assert_non_null(strstr(err, "not a regular file"));
    assert_int_equal(bad, -1);
}

/* ---- one line ------------------------------------------------------------------------- */

static void test_check_line(void **state)
{
    static const struct audit_event ev = {.event = "order", .outcome = "ok", .order_id = 5};
    static const struct {
        const char *from, *to, *why;
    } edits[] = {
        {"\"seq\":1", "\"seq\":0", "seq\" is out of range"},
        {"\"seq\":1", "\"seq\":-1", "seq\" is out of range"},
        {"\"seq\":1", "\"seq\":\"1\"", "seq\" is not an integer"},
        {"\"seq\":1", "\"seq\":1.0", "seq\" is not an integer"},
        {"\"seq\":1", "\"seq\":99999999999999999999", "out of range"},
        {"\"uid\":", "\"uid\":\"0\",\"x\":", "uid\" is not an integer"},
        {"\"at\":\"", "\"at\":\"x", "at\" is not a UTC time"},
        {"\"event\":\"order\"", "\"event\":null", "event\" is not a string"},
        {"\"event\":\"order\"", "\"event\":\"a\\u0000b\"", "NUL"},
        {"\"order_id\":5", "\"order_id\":5,\"color\":\"red\"", "unknown member"},
        {"\"prev\":\"0", "\"prev\":\"A", "not a SHA-256"},
        {"\"pid\":", "\"pid\":{\"a\":{\"b\":{\"c\":{}}}},\"q\":", "bad JSON"},
        {"{", "[", "bad JSON"},
        {"}", "} ", "bad JSON"},
        {"}", "}{}", "bad JSON"},
        {"\"user\":", "\"usr\":", "unknown member"},
    };
    char *line = NULL, err[256];
    size_t len;

    (void)state;
    assert_int_equal(audit_format(&ev, 1, AUDIT_ZERO_PREV, &line), 0);
    len = strlen(line) - 1; /* without the newline */
    line[len] = '\0';
    assert_int_equal(audit_check_line(line, len, 1, AUDIT_ZERO_PREV, err, sizeof(err)), 0);
    assert_int_equal(audit_check_line(line, len, 2, AUDIT_ZERO_PREV, err, sizeof(err)), PA_E_JOB);
    assert_non_null(strstr(err, "seq 1, expected 2"));
    assert_int_equal(
        audit_check_line(line, len, 1,
                         "1111111111111111111111111111111111111111111111111111111111111111", err,
                         sizeof(err)),
        PA_E_JOB);
    assert_non_null(strstr(err, "prev mismatch"));
    assert_int_equal(audit_check_line(line, len, 1, NULL, err, sizeof(err)), PA_E_JOB);
    assert_int_equal(audit_check_line(line, len - 1, 1, AUDIT_ZERO_PREV, err, sizeof(err)),
                     PA_E_JOB);
    assert_non_null(strstr(err, "bad JSON"));
    assert_int_equal(audit_check_line("", 0, 1, AUDIT_ZERO_PREV, err, sizeof(err)), PA_E_JOB);
    assert_non_null(strstr(err, "empty line"));
    assert_int_equal(audit_check_line(NULL, 0, 1, AUDIT_ZERO_PREV, NULL, 0), PA_E_JOB);

    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        char *p = strstr(line, edits[i].from), *out;
        size_t olen;

        assert_non_null(p);
        olen = len - strlen(edits[i].from) + strlen(edits[i].to);
        out = malloc(olen + 1);
        assert_non_null(out);
        (void)snprintf(out, olen + 1, "%.*s%s%s", (int)(p - line), line, edits[i].to,
                       p + strlen(edits[i].from));
        err[0] = '\0';
        if (audit_check_line(out, olen, 1, AUDIT_ZERO_PREV, err, sizeof(err)) != PA_E_JOB ||
            !strstr(err, edits[i].why))
            fail_msg("%s: \"%s\" lacks \"%s\"", out, err, edits[i].why);
        free(out);
    }
    free(line);
}

static void test_check_line_long_string(void **state)
{
    char *line, err[256];
    int n;
    size_t cap = 2000;

    (void)state;
    line = malloc(cap);
    assert_non_null(line);
    n = snprintf(line, cap,
                 "{\"seq\":1,\"at\":\"2024-01-01T00:00:00Z\",\"user\":\"u\",\"uid\":0,\"pid\":1,"
                 "\"event\":\"e\",\"outcome\":\"o\",\"detail\":\"%0513d\",\"prev\":\"%s\"}",
                 0, AUDIT_ZERO_PREV);
    assert_true(n > 0 && (size_t)n < cap);
    assert_int_equal(audit_check_line(line, (size_t)n, 1, AUDIT_ZERO_PREV, err, sizeof(err)),
                     PA_E_JOB);
    assert_non_null(strstr(err, "\"detail\" is longer than 512 bytes"));
    free(line);
}

/* ---- anchors -------------------------------------------------------------------------- */

static void fill(char *buf, char c, size_t n)
{
    memset(buf, c, n);
    buf[n] = '\0';
}

static void test_anchor_message(void **state)
{
    struct audit_written w;
    struct audit_anchor a;
    json_object *body = json_object_new_object();
    char msg[AUDIT_MSG_LEN], want[AUDIT_MSG_LEN], logid[17];
    struct audit_event bare = {.event = "keygen", .outcome = "ok"};

    (void)state;
    fill(w.sha, 'a', 64);
    fill(w.prev, 'b', 64);
    fill(w.chain, 'c', 16);
    fill(logid, 'd', 16);
    w.seq = 7;
    assert_int_equal(audit_add_str(body, "event", "order"), 0);
    assert_int_equal(audit_add_str(body, "outcome", "fa iled\n"), 0);
    assert_int_equal(audit_add_str(body, "job", "0123456789abcdef0123456789abcdef"), 0);
    assert_int_equal(audit_add_str(body, "token_serial", "ser ial"), 0);
    assert_int_equal(audit_add_int(body, "order_id", 42), 0);
    audit_anchor_msg(msg, sizeof(msg), &w, logid, body);
    (void)snprintf(want, sizeof(want),
                   "audit anchor seq=7 sha256=%s prev=%s chain=%s log=%s "
                   "job=0123456789abcdef0123456789abcdef event=order outcome=fa?iled? "
                   "token=ser?ial order=42",
                   w.sha, w.prev, w.chain, logid);
    assert_string_equal(msg, want);
    assert_int_equal(audit_parse_anchor(msg, strlen(msg), &a), 1);
    assert_int_equal(a.seq, 7);
    assert_string_equal(a.sha256, w.sha);
    assert_string_equal(a.prev, w.prev);
    assert_string_equal(a.chain, w.chain);
    assert_string_equal(a.log, logid);
    assert_string_equal(a.job, "0123456789abcdef0123456789abcdef");

    /* a job that is no job id does not go into the fixed part */
    assert_int_equal(audit_add_str(body, "job", "x y=1"), 0);
    audit_anchor_msg(msg, sizeof(msg), &w, logid, body);
    assert_non_null(strstr(msg, " job=- event=order"));
    assert_int_equal(audit_parse_anchor(msg, strlen(msg), &a), 1);
    assert_string_equal(a.job, "");

    audit_unlogged_msg(msg, sizeof(msg), body);
    assert_string_equal(msg, "audit: event=order outcome=fa?iled? job=- (not in audit.log)");
    json_object_put(body);

    /* one real append with syslog on: the path runs (no syslog daemon is needed) */
    audit_syslog_enabled = true;
    assert_int_equal(audit_append(tmpdir, &bare), 0);
    audit_syslog_enabled = false;
    expect_intact(1);
}

static void test_append_ex(void **state)
{
    struct audit_event ev = {.event = "x", .outcome = "ok"};
    char sha[AUDIT_SHA256_HEX], h[65], *buf, *l3;
    long seq = 0;

    (void)state;
    append_n(2, NULL);
    assert_int_equal(audit_append_ex(tmpdir, &ev, &seq, sha), 0);
    assert_int_equal(seq, 3);
    buf = slurp(NULL);
    l3 = line_of(buf, 3);
    hex_sha256(l3, strlen(l3), h);
    assert_string_equal(sha, h);
    assert_int_equal(audit_append_ex(tmpdir, &ev, NULL, NULL), 0);
    expect_intact(4);
    free(l3);
    free(buf);
}

static void test_actor(void **state)
{
    char who[AUDIT_MAX_NAME + 1], login[256], *old_sudo = NULL;
    const char *from = NULL, *s = getenv("SUDO_USER");
    bool has_login = getlogin_r(login, sizeof(login)) == 0 && audit_name_ok(login);

    (void)state;
    if (s)
        old_sudo = strdup(s);
    assert_int_equal(unsetenv("SUDO_USER"), 0);
    assert_int_equal(setenv("PKIO_ACTOR", "officer.jansen", 1), 0);
    audit_actor(who, sizeof(who), &from);
    if (has_login) {
        assert_string_equal(from, "login");
        assert_string_equal(who, login);
    } else { /* no login session (a daemon's child): the daemon names the officer */
        assert_string_equal(from, "PKIO_ACTOR");
        assert_string_equal(who, "officer.jansen");
    }
    assert_int_equal(setenv("PKIO_ACTOR", "bad name", 1), 0);
    audit_actor(who, sizeof(who), &from);
    assert_string_not_equal(from, "PKIO_ACTOR");
    assert_int_equal(unsetenv("PKIO_ACTOR"), 0);
    assert_false(audit_name_ok(""));
    assert_false(audit_name_ok("a\tb"));
    assert_false(
        audit_name_ok("01234567890123456789012345678901234567890123456789012345678901234"));
    assert_true(audit_name_ok("jansen@ORG.EXAMPLE"));
    if (getuid() == 0) {
        assert_int_equal(setenv("SUDO_USER", "kees", 1), 0);
        audit_actor(who, sizeof(who), &from);
        assert_string_equal(from, "sudo");
        assert_string_equal(who, "kees");
    }
    if (old_sudo)
        assert_int_equal(setenv("SUDO_USER", old_sudo, 1), 0);
    else
        assert_int_equal(unsetenv("SUDO_USER"), 0);
    free(old_sudo);
}

static void test_parse_anchor(void **state)
{
    char sha[65], prev[65], chain[17], logid[17], job[33], base[600], line[800];
    const char *prefixes[] = {
        "", "Jan  1 00:00:00 host pkio-agent[123]: ", "<86>Jan  1 00:00:00 pkio-agent[9]: ",
        "2024-01-01T00:00:00+01:00 host pkio-agent: ", "x pkio-agentd[1]: y pkio-agent[77]: "};
    static const struct {
        const char *from, *to;
    } bad[] = {
        {"seq=12 ", "seq=0 "},
        {"seq=12 ", "seq=012 "},
        {"seq=12 ", "seq=-1 "},
        {"seq=12 ", "seq=1234567890123456789 "},
        {"seq=12 ", "seq=12"},
        {"sha256=a", "sha256="},
        {"sha256=a", "sha256=A"},
        {"prev=", "prv="},
        {" log=", " logs="},
        {"job=0123", "job=x123"},
        {"job=0123", "job=00000123"},
        {"audit anchor ", "audit anchor  "},
        {"audit anchor ", "audit: anchor "},
    };
    struct audit_anchor a;

    (void)state;
    fill(sha, 'a', 64);
    fill(prev, 'b', 64);
    fill(chain, 'c', 16);
    fill(logid, 'd', 16);
    fill(job, '0', 32);
    job[28] = '0';
    memcpy(job, "0123", 4);
    (void)snprintf(base, sizeof(base),
                   "audit anchor seq=12 sha256=%s prev=%s chain=%s log=%s job=%s event=e "
                   "outcome=o",
                   sha, prev, chain, logid, job);
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        (void)snprintf(line, sizeof(line), "%s%s", prefixes[i], base);
        memset(&a, 0x55, sizeof(a));
        if (audit_parse_anchor(line, strlen(line), &a) != 1)
            fail_msg("not an anchor: %s", line);
        assert_int_equal(a.seq, 12);
        assert_string_equal(a.sha256, sha);
        assert_string_equal(a.prev, prev);
        assert_string_equal(a.chain, chain);
        assert_string_equal(a.log, logid);
        assert_string_equal(a.job, job);
    }
    /* the fixed part alone, and job "-" */
    (void)snprintf(line, sizeof(line), "audit anchor seq=1 sha256=%s prev=%s chain=%s log=%s job=-",
                   sha, prev, chain, logid);
    assert_int_equal(audit_parse_anchor(line, strlen(line), &a), 1);
    assert_string_equal(a.job, "");
    /* not ours, or not anchors */
    (void)snprintf(line, sizeof(line), "Jan 1 host other[1]: %s", base);
    assert_int_equal(audit_parse_anchor(line, strlen(line), &a), 0);
    (void)snprintf(line, sizeof(line), "x pkio-agentx[1]: %s", base);
    assert_int_equal(audit_parse_anchor(line, strlen(line), &a), 0);
    assert_int_equal(audit_parse_anchor("pkio-agent[1]: audit: event=x outcome=y seq=3", 46, &a),
                     0);
    assert_int_equal(audit_parse_anchor(base, strlen(base) + 1, &a), 0); /* a NUL inside */
    assert_int_equal(audit_parse_anchor(NULL, 0, &a), 0);
    assert_int_equal(audit_parse_anchor(base, AUDIT_MAX_JOURNAL_LINE + 1, &a), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *p = strstr(base, bad[i].from);

        assert_non_null(p);
        (void)snprintf(line, sizeof(line), "%.*s%s%s", (int)(p - base), base, bad[i].to,
                       p + strlen(bad[i].from));
        if (audit_parse_anchor(line, strlen(line), &a) != 0)
            fail_msg("taken as an anchor: %s", line);
    }
}

/* The hashes of the log's lines (malloc'd), as audit_verify_report sees them. */
static char *walk(long *n)
{
    struct audit_walk w;

    audit_walk_init(&w);
    assert_int_equal(audit_walk_file(log_path, &w, NULL, 0), 0);
    *n = w.n;
    return w.hashes;
}

static const char *hash_of(const char *hashes, long k)
{
    return hashes + (size_t)(k - 1) * AUDIT_SHA256_HEX;
}

/* The anchors pkio-agent sent for lines first..last of a log with these hashes, in order. */
static size_t anchors_of(const char *hashes, long first, long last, struct audit_anchor *out)
{
    size_t n = 0;

    for (long k = first; k <= last; k++, n++) {
        memset(&out[n], 0, sizeof(out[n]));
        out[n].seq = k;
        memcpy(out[n].sha256, hash_of(hashes, k), 65);
        memcpy(out[n].prev, k > 1 ? hash_of(hashes, k - 1) : AUDIT_ZERO_PREV, 65);
        memcpy(out[n].chain, hashes, 16);
        fill(out[n].log, 'd', 16);
        out[n].order = (long)n;
    }
    return n;
}

/* Keep the first n lines of the log. */
static void keep_lines(int n)
{
    char *buf = slurp(NULL), *p = buf;

    for (int i = 0; i < n; i++) {
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
    }
    spew(buf, (size_t)(p - buf));
    free(buf);
}

/* Recompute every "prev" after a rewrite, as an attacker with write access would. */
static void rechain(void)
{
    char *buf = slurp(NULL), *out, prev[65] = AUDIT_ZERO_PREV, *p, *nl;
    size_t len = strlen(buf);

    out = strdup(buf);
    assert_non_null(out);
    for (p = out; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        char *hash = nl - 66; /* "prev":"<64>"} */

        assert_true(hash > p && strncmp(hash - 8, "\"prev\":\"", 8) == 0);
        memcpy(hash, prev, 64);
        hex_sha256(p, (size_t)(nl - p), prev);
    }
    spew(out, len);
    free(out);
    free(buf);
}

static void report_clear(struct audit_report *rep)
{
    audit_report_clear(rep);
    memset(rep, 0, sizeof(*rep));
}

/* Expect exactly one finding of kind, lines first..last, whose text contains why. */
static void expect_one(const struct audit_report *rep, enum audit_finding_kind kind, long first,
                       long last, const char *why)
{
    char text[512];

    if (rep->nfindings != 1)
        fail_msg("%zu findings, expected one %s", rep->nfindings, audit_finding_name(kind));
    audit_finding_text(&rep->findings[0], text, sizeof(text));
    if (rep->findings[0].kind != kind || rep->findings[0].first != first ||
        rep->findings[0].last != last || !strstr(text, why))
        fail_msg("got %s %ld..%ld \"%s\", expected %s %ld..%ld \"%s\"",
                 audit_finding_name(rep->findings[0].kind), rep->findings[0].first,
                 rep->findings[0].last, text, audit_finding_name(kind), first, last, why);
}

static int sink_fd = -1;

/* Catch the anchors on a private socket (the PKIO_AUDIT_SYSLOG_SOCKET test hook). */
static void sink_open(void)
{
    struct sockaddr_un sa;
    char path[4300];

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    (void)snprintf(path, sizeof(path), "%s/sink", tmpdir);
    assert_true(strlen(path) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, path, strlen(path) + 1);
    sink_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(sink_fd >= 0);
    assert_int_equal(bind(sink_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(setenv(AUDIT_SOCKET_ENV, path, 1), 0);
    audit_syslog_enabled = true;
}

/* Every datagram so far: anchors into out (at most max), every datagram a line of copy. */
static size_t sink_drain(struct audit_anchor *out, size_t max, FILE *copy)
{
    char buf[2048];
    ssize_t n;
    size_t k = 0;

    while ((n = recv(sink_fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
        if (copy)
            assert_int_equal(fprintf(copy, "%.*s\n", (int)n, buf), n + 1);
        if (k < max && audit_parse_anchor(buf, (size_t)n, &out[k]) == 1) {
            out[k].order = (long)k;
            k++;
        }
    }
    return k;
}

static void sink_close(void)
{
    audit_syslog_enabled = false;
    assert_int_equal(unsetenv(AUDIT_SOCKET_ENV), 0);
    close(sink_fd);
    sink_fd = -1;
}

static void test_anchors_on_socket(void **state)
{
    struct audit_anchor a[8];
    struct audit_report rep;
    char logid[17], *hashes;
    long n = 0;
    size_t na;

    (void)state;
    sink_open();
    append_three();
    na = sink_drain(a, 8, NULL);
    sink_close();
    assert_int_equal(na, 3);
    hashes = walk(&n);
    assert_int_equal(n, 3);
    audit_log_id(tmpdir, logid);
    for (long k = 1; k <= 3; k++) {
        assert_int_equal(a[k - 1].seq, k);
        assert_string_equal(a[k - 1].sha256, hash_of(hashes, k));
        assert_string_equal(a[k - 1].prev, k == 1 ? AUDIT_ZERO_PREV : hash_of(hashes, k - 1));
        assert_int_equal(strncmp(a[k - 1].chain, hashes, 16), 0);
        assert_string_equal(a[k - 1].log, logid);
    }
    assert_string_equal(a[0].job, "0123456789abcdef0123456789abcdef");
    assert_string_equal(a[2].job, "");
    memset(&rep, 0, sizeof(rep));
    assert_int_equal(audit_compare_journal(hashes, n, a, na, &rep), 0);
    assert_int_equal(rep.nfindings, 0);
    assert_int_equal(rep.anchors, 3);
    assert_int_equal(rep.journal_first, 1);
    report_clear(&rep);
    free(hashes);
}

static void test_journal_intact(void **state)
{
    struct audit_anchor a[16];
    struct audit_report rep;
    char *hashes;
    long n = 0;

    (void)state;
    append_n(5, NULL);
    hashes = walk(&n);
    memset(&rep, 0, sizeof(rep));
    assert_int_equal(audit_compare_journal(hashes, n, a, anchors_of(hashes, 1, 5, a), &rep), 0);
    assert_int_equal(rep.nfindings, 0);
    report_clear(&rep);
    /* each anchor twice (sent again by a replay): still intact */
    anchors_of(hashes, 1, 5, a + 5);
    assert_int_equal(audit_compare_journal(hashes, n, a, 10, &rep), 0);
    assert_int_equal(rep.nfindings, 0);
    report_clear(&rep);
    free(hashes);
}

static void test_journal_truncated(void **state)
{
    struct audit_anchor a[8];
    struct audit_report rep;
    char *hashes, *cut;
    size_t na;
    long n = 0;

    (void)state;
    append_n(5, NULL);
    hashes = walk(&n);
    na = anchors_of(hashes, 1, 5, a);
    keep_lines(3);
    expect_intact(3); /* the file alone cannot tell */
    cut = walk(&n);
    memset(&rep, 0, sizeof(rep));
    assert_int_equal(audit_compare_journal(cut, n, a, na, &rep), 0);
    expect_one(&rep, AF_TRUNCATED, 4, 5, "lines 4..5 missing");
    assert_non_null(strstr(audit_finding_name(rep.findings[0].kind), "truncated"));
    report_clear(&rep);
    free(cut);
    free(hashes);
}

static void test_journal_deleted(void **state)
{
    struct audit_anchor a[8];
    struct audit_report rep;
    char *hashes;
    size_t na;
    long n = 0;

    (void)state;
    append_n(5, NULL);
    hashes = walk(&n);
    na = anchors_of(hashes, 1, 5, a);
    memset(&rep, 0, sizeof(rep));
    assert_int_equal(audit_compare_journal(NULL, 0, a, na, &rep), 0);
    expect_one(&rep, AF_LOG_MISSING, 1, 5, "missing or empty");
    report_clear(&rep);
    free(hashes);
}

static void test_journal_rewritten(void **state)
{
    struct audit_anchor a[8];
    struct audit_report rep;
    char *hashes, *fake, *orig;
    size_t na, len;
    long n = 0;

    (void)state;
    append_n(4, "d");
    orig = slurp(&len);
    hashes = walk(&n);
    na = anchors_of(hashes, 1, 4, a);

    edit_line(2, "\"detail\":\"d\"", "\"detail\":\"e\"");
    rechain();
    expect_intact(4); /* a consistent chain: the file alone cannot tell */
    fake = walk(&n);
    memset(&rep, 0, sizeof(rep));
    assert_int_equal(audit_compare_journal(fake, n, a, na, &rep), 0);
    expect_one(&rep, AF_REWRITTEN, 2, 4, "rewritten");
    report_clear(&rep);
    free(fake);

    /* from line 1 on: a new chain id, still compared with the chain the journal holds */
    spew(orig, len);
    edit_line(1, "\"detail\":\"d\"", "\"detail\":\"e\"");
    rechain();
    expect_intact(4);
    fake = walk(&n);
    assert_int_equal(audit_compare_journal(fake, n, a, na, &rep), 0);
    expect_one(&rep, AF_REWRITTEN, 1, 4, "lines 1..4 differ");
    report_clear(&rep);
    free(fake);
    free(orig);
    free(hashes);
}

static void test_journal_unanchored_and_old(void **state)
{
    struct audit_anchor a[8];
    struct audit_report rep;
    char *hashes;
    long n = 0;

    (void)state;
    append_n(5, NULL);
    hashes = walk(&n);
    memset(&rep, 0, sizeof(rep));
    /* the journal kept only lines 3..4 (rotated), line 3's prev anchors line 2 */
    assert_int_equal(audit_compare_journal(hashes, n, a, anchors_of(hashes, 3, 4, a), &rep), 0);
    assert_int_equal(rep.journal_first, 2);
    expect_one(&rep, AF_UNANCHORED, 5, 5, "line 5 have no anchor");
    report_clear(&rep);
    free(hashes);
}

static void test_journal_conflict(void **state)
{
    struct audit_anchor a[8];
    struct audit_report rep;
    char *hashes;
    size_t na;
    long n = 0;

    (void)state;
    append_n(3, NULL);
    hashes = walk(&n);
    na = anchors_of(hashes, 1, 3, a);
    a[na] = a[1];
    fill(a[na].sha256, 'f', 64);
    a[na++].order = 9;
    memset(&rep, 0, sizeof(rep));
    assert_int_equal(audit_compare_journal(hashes, n, a, na, &rep), 0);
    expect_one(&rep, AF_CONFLICT, 2, 2, "forged");
    report_clear(&rep);
    free(hashes);
}

static void test_journal_other_chain(void **state)
{
    struct audit_anchor a[8];
    struct audit_report rep;
    char *hashes;
    size_t na;
    long n = 0;

    (void)state;
    append_n(3, NULL);
    hashes = walk(&n);
    na = anchors_of(hashes, 1, 3, a);
    for (int i = 0; i < 2; i++) { /* an earlier chain of this log, e.g. the deleted one */
        a[na] = a[i];
        fill(a[na].chain, '1', 16);
        fill(a[na].sha256, (char)('6' + i), 64);
        a[na++].order = -1;
    }
    memset(&rep, 0, sizeof(rep));
    assert_int_equal(audit_compare_journal(hashes, n, a, na, &rep), 0);
    expect_one(&rep, AF_OTHER_CHAIN, 1, 2, "chain 1111111111111111");
    report_clear(&rep);
    free(hashes);
}

static void test_journal_prev_anchors(void **state)
{
    struct audit_anchor a[8];
    struct audit_report rep;
    char *hashes;
    long n = 0;

    (void)state;
    append_n(3, NULL);
    hashes = walk(&n);
    anchors_of(hashes, 1, 1, a);
    anchors_of(hashes, 3, 3, a + 1); /* line 2's own anchor lost (killed before sending it) */
    memset(&rep, 0, sizeof(rep));
    assert_int_equal(audit_compare_journal(hashes, n, a, 2, &rep), 0);
    assert_int_equal(rep.nfindings, 0);
    report_clear(&rep);
    free(hashes);
}

/* ---- job records ---------------------------------------------------------------------- */

static void test_jobs_compare(void **state)
{
    struct job a, b, c, d;
    struct job *list[] = {&a, &b, &c, &d};
    struct audit_report rep;
    char pend[] = "[{}]", *hashes;
    long n = 0;

    (void)state;
    append_n(3, NULL);
    hashes = walk(&n);
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&c, 0, sizeof(c));
    memset(&d, 0, sizeof(d));
    fill(a.id, 'a', 32);
    fill(b.id, 'b', 32);
    fill(c.id, 'c', 32);
    fill(d.id, 'd', 32);
    a.audit_seq = 2;
    memcpy(a.audit_sha256, hash_of(hashes, 2), 65);
    b.audit_seq = 5;
    fill(b.audit_sha256, 'e', 64);
    c.audit_seq = 1;
    fill(c.audit_sha256, 'f', 64);
    d.audit_pending = pend;
    memset(&rep, 0, sizeof(rep));
    assert_int_equal(audit_compare_jobs(hashes, n, false, list, 4, &rep), 0);
    assert_int_equal(rep.jobs, 4);
    assert_int_equal(rep.nfindings, 3);
    assert_int_equal(rep.findings[0].kind, AF_JOB_PAST_END);
    assert_int_equal(rep.findings[0].first, 4);
    assert_int_equal(rep.findings[0].last, 5);
    assert_string_equal(rep.findings[0].job, b.id);
    assert_int_equal(rep.findings[1].kind, AF_JOB_MISMATCH);
    assert_int_equal(rep.findings[1].first, 1);
    assert_string_equal(rep.findings[1].want, "ffffffffffffffff");
    assert_int_equal(rep.findings[2].kind, AF_PENDING);
    assert_false(audit_finding_tampered(AF_PENDING));
    report_clear(&rep);

    /* no log: the record that saw the most lines is named; a pending-only record needs none */
    assert_int_equal(audit_compare_jobs(NULL, 0, true, list, 3, &rep), 0);
    expect_one(&rep, AF_LOG_MISSING, 1, 5,
               "job bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb recorded audit line 5");
    report_clear(&rep);
    assert_int_equal(audit_compare_jobs(NULL, 0, true, list + 3, 1, &rep), 0);
    expect_one(&rep, AF_PENDING, 0, 0, "not in the log yet");
    report_clear(&rep);
    free(hashes);
}

static struct job *new_job(void)
{
    char err[256];
    struct job *j = NULL;

    assert_int_equal(job_dir_prepare(tmpdir, err, sizeof(err)), 0);
    assert_int_equal(job_new(&j), 0);
    return j;
}

/* What a step of enroll.c does: intent, save, commit. */
static void job_event(struct job *j, const char *event)
{
    struct audit_event ev = {.event = event, .outcome = "ok", .job_id = j->id};

    assert_int_equal(audit_job_intent(j, &ev), 0);
    assert_int_equal(job_save(tmpdir, j), 0);
    assert_int_equal(audit_commit_pending(tmpdir, j), 0);
}

static struct job *reload(const struct job *j)
{
    char err[256];
    struct job *k = NULL;

    if (job_load(tmpdir, j->id, &k, err, sizeof(err)) != 0)
        fail_msg("job_load: %s", err);
    return k;
}

static int report(const struct audit_verify_opts *o, struct audit_report *rep)
{
    char err[512] = "";
    int r = audit_verify_report(tmpdir, o, rep, err, sizeof(err));

    if (r != 0 && r != PA_E_JOB)
        print_message("audit_verify_report: %s\n", err);
    return r;
}

static void test_report_missing_log(void **state)
{
    struct audit_verify_opts o = {0};
    struct audit_report rep;
    struct job *j = new_job();
    char want[128];

    (void)state;
    assert_int_equal(job_save(tmpdir, j), 0);
    assert_int_equal(report(&o, &rep), PA_E_JOB);
    assert_true(rep.log_missing);
    (void)snprintf(want, sizeof(want), "job %s exists", j->id);
    expect_one(&rep, AF_LOG_MISSING, 0, 0, want);
    report_clear(&rep);
    spew("", 0); /* an empty log is no better */
    assert_int_equal(report(&o, &rep), PA_E_JOB);
    expect_one(&rep, AF_LOG_MISSING, 0, 0, "missing or empty");
    report_clear(&rep);
    assert_int_equal(audit_verify(tmpdir, NULL, NULL, NULL, 0), 0); /* the chain alone: 0 lines */

    /* a record whose first event is still pending needs no log yet: a note, not tampering */
    assert_int_equal(unlink(log_path), 0);
    {
        struct audit_event ev = {.event = "start", .outcome = "ok", .job_id = j->id};

        assert_int_equal(audit_job_intent(j, &ev), 0);
        assert_int_equal(job_save(tmpdir, j), 0);
    }
    assert_int_equal(report(&o, &rep), 0);
    expect_one(&rep, AF_PENDING, 0, 0, "not in the log yet");
    report_clear(&rep);
    job_free(j);
}

static void test_report_jobs_tail(void **state)
{
    struct audit_verify_opts o = {0};
    struct audit_report rep;
    struct job *j = new_job();
    char *orig;
    size_t len;

    (void)state;
    job_event(j, "start");
    append_n(1, "another job"); /* lines of others in between */
    job_event(j, "keygen");
    assert_int_equal(j->audit_seq, 3);
    assert_int_equal(report(&o, &rep), 0);
    assert_int_equal(rep.jobs, 1);
    assert_int_equal(rep.nfindings, 0);
    report_clear(&rep);
    orig = slurp(&len);

    keep_lines(2); /* the tail cut off */
    assert_int_equal(report(&o, &rep), PA_E_JOB);
    expect_one(&rep, AF_JOB_PAST_END, 3, 3, "ends at line 2");
    report_clear(&rep);

    spew(orig, len); /* rewritten, hashes recomputed */
    edit_line(2, "another job", "another j0b");
    rechain();
    assert_int_equal(report(&o, &rep), PA_E_JOB);
    expect_one(&rep, AF_JOB_MISMATCH, 3, 3, "rewritten");
    report_clear(&rep);

    assert_int_equal(unlink(log_path), 0); /* deleted */
    assert_int_equal(report(&o, &rep), PA_E_JOB);
    expect_one(&rep, AF_LOG_MISSING, 1, 3, "recorded audit line 3");
    report_clear(&rep);

    spew(orig, len);
    edit_line(2, "\"seq\":2", "\"seq\":9"); /* and the chain itself still speaks first */
    assert_int_equal(report(&o, &rep), PA_E_JOB);
    assert_int_equal(rep.bad_line, 2);
    assert_int_equal(rep.findings[0].kind, AF_CHAIN_BROKEN);
    assert_non_null(strstr(rep.reason, "seq 9, expected 2"));
    report_clear(&rep);
    free(orig);
    job_free(j);
}

static void test_report_journal_file(void **state)
{
    struct audit_verify_opts o = {.against_journal = true};
    struct audit_anchor a[16];
    struct audit_report rep;
    struct job *j = new_job(), *k;
    char journal[4300], *orig, *hashes;
    size_t len;
    long n = 0;
    FILE *f;

    (void)state;
    (void)snprintf(journal, sizeof(journal), "%s/syslog", tmpdir);
    f = fopen(journal, "we");
    assert_non_null(f);
    fprintf(f, "Jan  1 00:00:00 host other[1]: hello\n");
    sink_open();
    job_event(j, "start");
    job_event(j, "keygen");
    job_event(j, "csr");
    assert_int_equal(sink_drain(a, 16, f), 3);
    sink_close();
    fclose(f);
    o.journal_file = journal;
    orig = slurp(&len);

    assert_int_equal(report(&o, &rep), 0);
    assert_int_equal(rep.anchors, 3);
    assert_int_equal(rep.nfindings, 0);
    report_clear(&rep);

    keep_lines(1); /* truncated: both the journal and the record say so */
    assert_int_equal(report(&o, &rep), PA_E_JOB);
    assert_int_equal(rep.nfindings, 2);
    assert_int_equal(rep.findings[0].kind, AF_JOB_PAST_END);
    assert_int_equal(rep.findings[1].kind, AF_TRUNCATED);
    assert_int_equal(rep.findings[1].first, 2);
    assert_int_equal(rep.findings[1].last, 3);
    report_clear(&rep);

    assert_int_equal(unlink(log_path), 0); /* deleted */
    assert_int_equal(report(&o, &rep), PA_E_JOB);
    assert_int_equal(rep.nfindings, 2);
    assert_int_equal(rep.findings[0].kind, AF_LOG_MISSING);
    assert_int_equal(rep.findings[1].kind, AF_LOG_MISSING);
    report_clear(&rep);

    /* rewritten, hashes recomputed, and the job record made to agree: only the journal tells */
    spew(orig, len);
    edit_line(2, "\"event\":\"keygen\"", "\"event\":\"keygen2\"");
    rechain();
    hashes = walk(&n);
    k = reload(j);
    memcpy(k->audit_sha256, hash_of(hashes, 3), 65);
    assert_int_equal(job_save(tmpdir, k), 0);
    o.against_journal = false;
    o.journal_file = NULL;
    assert_int_equal(report(&o, &rep), 0);
    report_clear(&rep);
    o.against_journal = true;
    o.journal_file = journal;
    assert_int_equal(report(&o, &rep), PA_E_JOB);
    expect_one(&rep, AF_REWRITTEN, 2, 3, "rewritten");
    report_clear(&rep);

    /* a journal without a single anchor of a log that has lines: cannot check, not "intact" */
    spew("", 0);
    assert_int_equal(rename(log_path, journal), 0);
    spew(orig, len);
    assert_int_equal(report(&o, &rep), PA_E_IO);
    report_clear(&rep);
    free(hashes);
    free(orig);
    job_free(k);
    job_free(j);
}

/* ---- job events: intent, commit, kills in between ------------------------------------- */

static long count_lines(void)
{
    long n = 0;
    char *buf, *p;

    if (access(log_path, F_OK) != 0)
        return 0;
    buf = slurp(NULL);
    for (p = buf; (p = strchr(p, '\n')) != NULL; p++)
        n++;
    free(buf);
    return n;
}

static void test_intent_commit(void **state)
{
    struct job *j = new_job(), *k;
    struct audit_event ev = {.event = "start", .outcome = "ok"};
    char *buf, *l1, h[65];

    (void)state;
    ev.job_id = j->id;
    assert_int_equal(audit_job_intent(j, &ev), 0);
    assert_non_null(j->audit_pending);
    assert_non_null(strstr(j->audit_pending, "\"event\":\"start\""));
    assert_int_equal(count_lines(), 0); /* no I/O */
    assert_int_equal(job_save(tmpdir, j), 0);
    assert_int_equal(audit_commit_pending(tmpdir, j), 0);
    assert_null(j->audit_pending);
    assert_int_equal(j->audit_seq, 1);
    buf = slurp(NULL);
    l1 = line_of(buf, 1);
    hex_sha256(l1, strlen(l1), h);
    assert_string_equal(j->audit_sha256, h);
    assert_non_null(strstr(l1, j->id));
    k = reload(j); /* saved */
    assert_int_equal(k->audit_seq, 1);
    assert_string_equal(k->audit_sha256, h);
    assert_null(k->audit_pending);
    assert_int_equal(audit_commit_pending(tmpdir, k), 0); /* nothing pending: nothing to do */
    assert_int_equal(count_lines(), 1);
    expect_intact(1);
    job_free(k);
    free(l1);
    free(buf);
    job_free(j);
}

/* In a child: intent, save, commit with PKIO_TEST_CRASH_AT=point; it must die by SIGKILL. */
static void crash_child(const char *point, struct job *j, const char *event)
{
    int status = 0;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        struct audit_event ev = {.event = event, .outcome = "ok", .job_id = j->id};

        if (setenv("PKIO_TEST_CRASH_AT", point, 1) != 0 || audit_job_intent(j, &ev) != 0 ||
            job_save(tmpdir, j) != 0)
            _exit(2);
        (void)audit_commit_pending(tmpdir, j);
        _exit(3);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
}

static void test_commit_crash_before_append(void **state)
{
    struct audit_verify_opts o = {0};
    struct audit_report rep;
    struct job *j = new_job(), *k;

    (void)state;
    job_event(j, "start");
    crash_child("audit-before-append", j, "keygen");
    assert_int_equal(count_lines(), 1); /* the event is not in the log... */
    k = reload(j);
    assert_non_null(k->audit_pending); /* ...but in the record */
    assert_int_equal(k->audit_seq, 1);
    assert_int_equal(report(&o, &rep), 0); /* not tampering: a note */
    expect_one(&rep, AF_PENDING, 0, 0, k->id);
    report_clear(&rep);
    assert_int_equal(audit_commit_pending(tmpdir, k), 0); /* the next load replays it */
    assert_int_equal(count_lines(), 2);
    assert_int_equal(k->audit_seq, 2);
    job_free(k);
    k = reload(j);
    assert_null(k->audit_pending);
    assert_int_equal(k->audit_seq, 2);
    assert_int_equal(report(&o, &rep), 0);
    assert_int_equal(rep.nfindings, 0);
    report_clear(&rep);
    job_free(k);
    job_free(j);
}

static void test_commit_crash_after_append(void **state)
{
    struct audit_verify_opts o = {0};
    struct audit_report rep;
    struct job *j = new_job(), *k;
    char *buf, *l2, h[65];

    (void)state;
    job_event(j, "start");
    crash_child("audit-after-append", j, "keygen");
    assert_int_equal(count_lines(), 2); /* appended, but the record does not know */
    k = reload(j);
    assert_non_null(k->audit_pending);
    assert_int_equal(k->audit_seq, 1);
    append_n(1, "another job"); /* someone appends in between */
    assert_int_equal(audit_commit_pending(tmpdir, k), 0);
    assert_int_equal(count_lines(), 3); /* found, not appended twice */
    assert_int_equal(k->audit_seq, 2);
    buf = slurp(NULL);
    l2 = line_of(buf, 2);
    assert_non_null(strstr(l2, "\"event\":\"keygen\""));
    hex_sha256(l2, strlen(l2), h);
    assert_string_equal(k->audit_sha256, h);
    assert_int_equal(report(&o, &rep), 0);
    assert_int_equal(rep.nfindings, 0);
    report_clear(&rep);
    free(l2);
    free(buf);
    job_free(k);
    job_free(j);
}

static void test_commit_partial_and_twins(void **state)
{
    struct job *j = new_job();
    struct audit_event ev = {.event = "order", .outcome = "failed", .detail = "same"};
    json_object *arr = NULL;
    struct audit_batch b;
    char *twin, *inner;
    size_t len;

    (void)state;
    ev.job_id = j->id;
    assert_int_equal(audit_job_intent(j, &ev), 0);
    len = strlen(j->audit_pending);
    inner = strndup(j->audit_pending + 1, len - 2);
    assert_non_null(inner);
    assert_true(asprintf(&twin, "[%s,%s]", inner, inner) > 0);
    assert_int_equal(job_set_str(&j->audit_pending, twin), 0);
    assert_int_equal(job_save(tmpdir, j), 0);

    /* killed after the first of the two: only it is in the log */
    assert_int_equal(audit_pending_load(j, &arr), 0);
    memset(&b, 0, sizeof(b));
    {
        json_object *first = json_object_array_get_idx(arr, 0);

        b.bodies = &first;
        b.n = 1;
        assert_int_equal(audit_commit_bodies(tmpdir, &b), 0);
    }
    json_object_put(arr);
    assert_int_equal(count_lines(), 1);
    assert_int_equal(audit_commit_pending(tmpdir, j), 0);
    assert_int_equal(count_lines(), 2); /* the first found, the identical second appended */
    assert_int_equal(j->audit_seq, 2);

    /* killed after both: nothing appended again */
    assert_int_equal(job_set_str(&j->audit_pending, twin), 0);
    j->audit_seq = 0;
    j->audit_sha256[0] = '\0';
    assert_int_equal(audit_commit_pending(tmpdir, j), 0);
    assert_int_equal(count_lines(), 2);
    assert_int_equal(j->audit_seq, 2);
    expect_intact(2);
    free(twin);
    free(inner);
    job_free(j);
}

static void test_intent_refusals(void **state)
{
    struct job *j = new_job();
    struct audit_event ev = {.event = "poll", .outcome = "ok"};
    struct audit_event no_outcome = {.event = "poll"};
    static const char *const bad[] = {
        "not json",
        "[1]",
        "{}",
        "[{\"at\":\"2024-01-01T00:00:00Z\",\"user\":\"u\",\"uid\":0,\"pid\":1,\"outcome\":\"ok\"}]",
    };

    (void)state;
    assert_int_equal(audit_job_intent(NULL, &ev), PA_E_INTERNAL);
    assert_int_equal(audit_job_intent(j, NULL), PA_E_INTERNAL);
    assert_int_equal(audit_job_intent(j, &no_outcome), PA_E_INTERNAL);
    assert_int_equal(audit_commit_pending(NULL, j), PA_E_INTERNAL);
    assert_int_equal(audit_commit_pending(tmpdir, NULL), PA_E_INTERNAL);
    for (int i = 0; i < AUDIT_MAX_PENDING; i++)
        assert_int_equal(audit_job_intent(j, &ev), 0);
    assert_int_equal(audit_job_intent(j, &ev), PA_E_JOB); /* a broken log: say so, keep them */
    assert_int_equal(audit_commit_pending(tmpdir, j), 0);
    assert_int_equal(count_lines(), AUDIT_MAX_PENDING);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(job_set_str(&j->audit_pending, bad[i]), 0);
        assert_int_equal(audit_job_intent(j, &ev), i == 3 ? 0 : PA_E_JOB);
        assert_int_equal(job_set_str(&j->audit_pending, bad[i]), 0);
        assert_int_equal(audit_commit_pending(tmpdir, j), PA_E_JOB);
        assert_string_equal(j->audit_pending, bad[i]);      /* kept for the officer */
        assert_int_equal(count_lines(), AUDIT_MAX_PENDING); /* no bad line written */
    }
    expect_intact(AUDIT_MAX_PENDING);
    job_free(j);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, dir_setup, dir_teardown)
    const struct CMUnitTest tests[] = {
        T(test_append_three),
        T(test_append_umask),
        T(test_append_refusals),
        T(test_append_clips_and_escapes),
        T(test_append_big_log_tail),
        T(test_append_after_move_aside),
        T(test_concurrent_appends),
        T(test_verify_empty),
        T(test_tamper_value),
        T(test_tamper_json),
        T(test_tamper_seq),
        T(test_tamper_prev_of_first),
        T(test_tamper_missing_field),
        T(test_delete_line),
        T(test_duplicate_line),
        T(test_truncated_last_line),
        T(test_damaged_last_line_blocks_append),
        T(test_verify_not_regular),
        T(test_check_line),
        T(test_check_line_long_string),
        T(test_anchor_message),
        T(test_append_ex),
        T(test_actor),
        T(test_parse_anchor),
        T(test_anchors_on_socket),
        T(test_journal_intact),
        T(test_journal_truncated),
        T(test_journal_deleted),
        T(test_journal_rewritten),
        T(test_journal_unanchored_and_old),
        T(test_journal_conflict),
        T(test_journal_other_chain),
        T(test_journal_prev_anchors),
        T(test_jobs_compare),
        T(test_report_missing_log),
        T(test_report_jobs_tail),
        T(test_report_journal_file),
        T(test_intent_commit),
        T(test_commit_crash_before_append),
        T(test_commit_crash_after_append),
        T(test_commit_partial_and_twins),
        T(test_intent_refusals),
    };
#undef T

    return cmocka_run_group_tests(tests, NULL, NULL);
}
