/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test_secret.c - secrets in memory and secret files (agent/base/secret.c): permissions, line
 * endings, length limits, wiping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pa_err.h"
#include "secret.h"

static char tmpdir[4096]; /* private to this process: parallel-safe */

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
    if (!base || !*base)
        base = "/tmp";
    if (snprintf(tmpdir, sizeof(tmpdir), "%s/pkio-test-secret.XXXXXX", base) >= (int)sizeof(tmpdir))
        return -1;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int dir_teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Create tmpdir/name with exactly these bytes and this mode; returns the path (static). */
static const char *put(const char *name, const void *data, size_t len, mode_t mode)
{
    static char path[4200];
    int fd;

    (void)snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    (void)unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0); /* exact mode, whatever the umask */
    assert_int_equal(close(fd), 0);
    return path;
}

/* Read name (written with put) and expect success with exactly want. */
static void read_ok(const char *data, size_t len, size_t max_len, const char *want)
{
    struct secret *s = NULL;
    const char *path = put("pin", data, len, 0600);

    assert_int_equal(secret_from_file(path, max_len, &s), 0);
    assert_non_null(s);
    assert_int_equal(s->len, strlen(want));
    assert_string_equal(s->buf, want);
    assert_true(s->cap > s->len);
    secret_free(s);
}

/* Expect err and an untouched *ret. */
static void read_fails(const char *path, size_t max_len, int err)
{
    struct secret *s = (struct secret *)&s; /* a sentinel that must survive */
    struct secret *before = s;
    int r = secret_from_file(path, max_len, &s);

    if (r == 0 && s != before) { /* wrongly accepted: free it so only the assertion reports */
        secret_free(s);
        s = before;
    }
    assert_int_equal(r, err);
    assert_ptr_equal(s, before);
}

static void test_file_0600(void **state)
{
    (void)state;
    read_ok("123456\n", 7, 64, "123456");
}

static void test_file_0400(void **state)
{
    struct secret *s = NULL;

    (void)state;
    assert_int_equal(secret_from_file(put("pin", "1234", 4, 0400), 64, &s), 0);
    assert_string_equal(s->buf, "1234");
    secret_free(s);
}

static void test_file_0644_refused(void **state)
{
    (void)state;
    read_fails(put("pin", "1234\n", 5, 0644), 64, PA_E_CONFIG);
}

static void test_file_0640_refused(void **state)
{
    (void)state;
    read_fails(put("pin", "1234\n", 5, 0640), 64, PA_E_CONFIG);
}

static void test_file_other_bits_refused(void **state)
{
    (void)state;
    read_fails(put("pin", "1234\n", 5, 0604), 64, PA_E_CONFIG);
    read_fails(put("pin", "1234\n", 5, 0601), 64, PA_E_CONFIG);
    read_fails(put("pin", "1234\n", 5, 0610), 64, PA_E_CONFIG);
    read_fails(put("pin", "1234\n", 5, 0620), 64, PA_E_CONFIG);
}

static void test_directory_refused(void **state)
{
    char path[4200];

    (void)state;
    (void)snprintf(path, sizeof(path), "%s/pindir", tmpdir);
    assert_int_equal(mkdir(path, 0700), 0);
    read_fails(path, 64, PA_E_CONFIG);
    assert_int_equal(rmdir(path), 0);
}

static void test_symlink_refused(void **state)
{
    char link[4200];
    const char *target = put("pin", "1234\n", 5, 0600);

    (void)state;
    (void)snprintf(link, sizeof(link), "%s/pinlink", tmpdir);
    assert_int_equal(symlink(target, link), 0);
    read_fails(link, 64, PA_E_IO); /* O_NOFOLLOW */
    assert_int_equal(unlink(link), 0);
}

static void test_missing_file(void **state)
{
    char path[4200];

    (void)state;
    (void)snprintf(path, sizeof(path), "%s/does-not-exist", tmpdir);
    read_fails(path, 64, PA_E_CONFIG);
}

static void test_no_newline(void **state)
{
    (void)state;
    read_ok("1234", 4, 64, "1234");
}

static void test_strips_lf(void **state)
{
    (void)state;
    read_ok("1234\n", 5, 64, "1234");
}

static void test_strips_crlf(void **state)
{
    (void)state;
    read_ok("1234\r\n", 6, 64, "1234");
    read_ok("1234\r", 5, 64, "1234");
}

static void test_keeps_inner_spaces(void **state)
{
    (void)state;
    read_ok(" pass phrase \n", 14, 64, " pass phrase ");
}

static void test_second_line_refused(void **state)
{
    (void)state;
    read_fails(put("pin", "1234\n5678\n", 10, 0600), 64, PA_E_CONFIG);
    read_fails(put("pin", "1234\n5678", 9, 0600), 64, PA_E_CONFIG);
    read_fails(put("pin", "1234\n\n", 6, 0600), 64, PA_E_CONFIG);
    read_fails(put("pin", "1234\r\n\r\n", 8, 0600), 64, PA_E_CONFIG);
    read_fails(put("pin", "\n1234", 5, 0600), 64, PA_E_CONFIG);
}

static void test_second_line_at_limit_refused(void **state)
{
    (void)state;
    /* The first line is exactly max_len long: what follows it must still be noticed. */
    read_fails(put("pin", "123456\nX", 8, 0600), 6, PA_E_CONFIG);
    read_fails(put("pin", "123456\r\nsecond line", 19, 0600), 6, PA_E_CONFIG);
    read_fails(put("pin", "123456\n\n", 8, 0600), 6, PA_E_CONFIG);
}

static void test_nul_refused(void **state)
{
    (void)state;
    read_fails(put("pin",
                   "12\0"
                   "34\n",
                   6, 0600),
               64, PA_E_CONFIG);
    read_fails(put("pin", "\0", 1, 0600), 64, PA_E_CONFIG);
    read_fails(put("pin", "1234\0\n", 6, 0600), 64, PA_E_CONFIG);
}

static void test_empty_refused(void **state)
{
    (void)state;
    read_fails(put("pin", "", 0, 0600), 64, PA_E_CONFIG);
    read_fails(put("pin", "\n", 1, 0600), 64, PA_E_CONFIG);
    read_fails(put("pin", "\r\n", 2, 0600), 64, PA_E_CONFIG);
}

static void test_max_len(void **state)
{
    (void)state;
    read_ok("123456", 6, 6, "123456");
    read_ok("123456\n", 7, 6, "123456");
    read_ok("123456\r\n", 8, 6, "123456");
    read_fails(put("pin", "1234567", 7, 0600), 6, PA_E_CONFIG);
    read_fails(put("pin", "1234567\n", 8, 0600), 6, PA_E_CONFIG);
    read_fails(put("pin", "1234567890123456789", 19, 0600), 6, PA_E_CONFIG);
}

static void test_from_mem(void **state)
{
    struct secret *s = NULL;

    (void)state;
    assert_int_equal(secret_from_mem("12345678", 4, &s), 0);
    assert_int_equal(s->len, 4);
    assert_string_equal(s->buf, "1234");
    assert_true(s->cap >= 5);
    secret_free(s);
    s = NULL;
    assert_int_equal(secret_from_mem("", 0, &s), 0);
    assert_int_equal(s->len, 0);
    assert_string_equal(s->buf, "");
    secret_free(s);
}

static void test_free_null(void **state)
{
    (void)state;
    secret_free(NULL);
    secret_wipe(NULL, 16);
}

static void test_wipe(void **state)
{
    static const unsigned char zero[16];
    unsigned char buf[16];

    (void)state;
    memset(buf, 0xa5, sizeof(buf));
    secret_wipe(buf, 0);
    assert_int_equal(buf[0], 0xa5);
    secret_wipe(buf, sizeof(buf));
    assert_memory_equal(buf, zero, sizeof(buf));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_0600),
        cmocka_unit_test(test_file_0400),
        cmocka_unit_test(test_file_0644_refused),
        cmocka_unit_test(test_file_0640_refused),
        cmocka_unit_test(test_file_other_bits_refused),
        cmocka_unit_test(test_directory_refused),
        cmocka_unit_test(test_symlink_refused),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_no_newline),
        cmocka_unit_test(test_strips_lf),
        cmocka_unit_test(test_strips_crlf),
        cmocka_unit_test(test_keeps_inner_spaces),
        cmocka_unit_test(test_second_line_refused),
        cmocka_unit_test(test_second_line_at_limit_refused),
        cmocka_unit_test(test_nul_refused),
        cmocka_unit_test(test_empty_refused),
        cmocka_unit_test(test_max_len),
        cmocka_unit_test(test_from_mem),
        cmocka_unit_test(test_free_null),
        cmocka_unit_test(test_wipe),
    };

    return cmocka_run_group_tests_name("secret", tests, dir_setup, dir_teardown);
}
