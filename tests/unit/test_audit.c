/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_audit.c - the hash-chained audit log (agent/audit.c, included to reach its static
 * helpers and to keep these tests out of the machine's syslog).
 *
 * Tampering rules asserted here (see audit_verify):
 *   - a changed byte that keeps line K valid JSON is caught at line K+1 (its prev no longer
 *     matches); a change that breaks line K itself (JSON, seq, a field) is caught at line K;
 *   - a deleted line K is caught at line K (the old line K+1 now sits there with the wrong seq);
 *   - an incomplete last line is named, and nothing is appended after it.
 */
#include "audit.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
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
    assert_string_equal(json_object_get_string(v), pw->pw_name);
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

/* ---- syslog --------------------------------------------------------------------------- */

static void test_syslog_message(void **state)
{
    struct audit_event ev = {
        .event = "order",
        .outcome = "failed",
        .job_id = "0123456789abcdef0123456789abcdef",
        .token_serial = "ser\nial",
        .order_id = 42,
        .detail = "not in syslog",
    };
    struct audit_event bare = {.event = "keygen", .outcome = "ok"};
    char msg[512];

    (void)state;
    audit_syslog_msg(msg, sizeof(msg), &ev, 7);
    assert_string_equal(msg, "audit: event=order outcome=failed "
                             "job=0123456789abcdef0123456789abcdef token=ser?ial order=42 seq=7");
    audit_syslog_msg(msg, sizeof(msg), &bare, 0);
    assert_string_equal(msg, "audit: event=keygen outcome=ok (not in audit.log)");
    audit_syslog_msg(msg, 20, &ev, 7); /* a short buffer truncates, never overflows */
    assert_int_equal(strlen(msg), 19);

    /* one real append with syslog on: the path runs (no syslog daemon is needed) */
    audit_syslog_enabled = true;
    assert_int_equal(audit_append(tmpdir, &bare), 0);
    audit_syslog_enabled = false;
    expect_intact(1);
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
        T(test_syslog_message),
    };
#undef T

    return cmocka_run_group_tests(tests, NULL, NULL);
}
