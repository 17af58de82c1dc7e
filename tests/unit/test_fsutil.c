/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test_fsutil.c - atomic durable writes and bounded reads (agent/base/fsutil.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "pa_err.h"

static char tmpdir[4096]; /* private to this process: parallel-safe */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int rm_tree(const char *path)
{
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Each test gets an empty directory of its own. */
static int dir_setup(void **state)
{
    const char *base = getenv("TMPDIR");

    (void)state;
    if (!base || !*base)
        base = "/tmp";
    if (snprintf(tmpdir, sizeof(tmpdir), "%s/pkio-test-fsutil.XXXXXX", base) >= (int)sizeof(tmpdir))
        return -1;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int dir_teardown(void **state)
{
    (void)state;
    return rm_tree(tmpdir);
}

/* tmpdir/name in a static buffer (one of two, so two paths can be live at once). */
static const char *at(const char *name)
{
    static char paths[2][4200];
    static int n;
    char *p = paths[n++ & 1];

    (void)snprintf(p, sizeof(paths[0]), "%s/%s", tmpdir, name);
    return p;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted entry names of dir, comma-separated (static buffer). */
static const char *listing(const char *dir)
{
    static char out[4096];
    char *names[64];
    size_t n = 0, pos = 0;
    struct dirent *de;
    DIR *d = opendir(dir);

    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        assert_true(n < 64);
        names[n] = strdup(de->d_name);
        assert_non_null(names[n]);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), cmp_str);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        pos += (size_t)snprintf(out + pos, sizeof(out) - pos, "%s%s", i ? "," : "", names[i]);
        assert_true(pos < sizeof(out));
        free(names[i]);
    }
    return out;
}

static void assert_content(const char *path, const void *want, size_t len)
{
    char *buf = NULL;
    size_t got = 0;

    assert_int_equal(fs_read_file(path, len + 16, &buf, &got), 0);
    assert_int_equal(got, len);
    if (len)
        assert_memory_equal(buf, want, len);
    assert_int_equal(buf[len], '\0');
    free(buf);
}

static mode_t mode_of(const char *path)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

/* ---- fs_write_atomic ------------------------------------------------------------------ */

static void test_write_creates(void **state)
{
    static const char pem[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const char *path = at("cert.pem");

    (void)state;
    assert_int_equal(fs_write_atomic(path, pem, strlen(pem), 0644), 0);
    assert_int_equal(mode_of(path), 0644);
    assert_content(path, pem, strlen(pem));
    assert_string_equal(listing(tmpdir), "cert.pem");
}

static void test_write_modes(void **state)
{
    mode_t old = umask(077); /* the mode is exact, whatever the umask */

    (void)state;
    assert_int_equal(fs_write_atomic(at("a"), "x", 1, 0600), 0);
    assert_int_equal(mode_of(at("a")), 0600);
    assert_int_equal(fs_write_atomic(at("b"), "x", 1, 0640), 0);
    assert_int_equal(mode_of(at("b")), 0640);
    assert_int_equal(fs_write_atomic(at("c"), "x", 1, 0644), 0);
    assert_int_equal(mode_of(at("c")), 0644);
    (void)umask(old);
    assert_string_equal(listing(tmpdir), "a,b,c");
}

static void test_write_empty(void **state)
{
    (void)state;
    assert_int_equal(fs_write_atomic(at("empty"), "", 0, 0600), 0);
    assert_content(at("empty"), "", 0);
    assert_string_equal(listing(tmpdir), "empty");
}

static void test_write_binary_large(void **state)
{
    size_t len = 3 * 1024 * 1024 + 7;
    unsigned char *data = malloc(len);

    (void)state;
    assert_non_null(data);
    for (size_t i = 0; i < len; i++)
        data[i] = (unsigned char)(i * 131 + (i >> 9));
    assert_int_equal(fs_write_atomic(at("big"), data, len, 0600), 0);
    assert_content(at("big"), data, len);
    free(data);
    assert_string_equal(listing(tmpdir), "big");
}

static void test_write_replaces_atomically(void **state)
{
    struct stat before, after, link_st;

    (void)state;
    assert_int_equal(fs_write_atomic(at("job.json"), "old contents", 12, 0644), 0);
    assert_int_equal(stat(at("job.json"), &before), 0);
    /* A second name for the old file: if it still holds the old bytes afterwards, the new
     * file was renamed over the name, not rewritten in place. */
    assert_int_equal(link(at("job.json"), at("old-link")), 0);

    assert_int_equal(fs_write_atomic(at("job.json"), "new", 3, 0600), 0);
    assert_int_equal(stat(at("job.json"), &after), 0);
    assert_true(after.st_ino != before.st_ino);
    assert_int_equal(after.st_mode & 07777, 0600);
    assert_content(at("job.json"), "new", 3);
    assert_content(at("old-link"), "old contents", 12);
    assert_int_equal(stat(at("old-link"), &link_st), 0);
    assert_true(link_st.st_ino == before.st_ino);
    assert_string_equal(listing(tmpdir), "job.json,old-link");
}

static void test_write_missing_dir(void **state)
{
    (void)state;
    assert_int_equal(fs_write_atomic(at("no-such-dir/cert.pem"), "x", 1, 0600), PA_E_IO);
    assert_string_equal(listing(tmpdir), "");
}

static void test_write_over_directory(void **state)
{
    char inner[4200];

    (void)state;
    /* rename() cannot replace a directory: the temporary file must not be left behind. */
    assert_int_equal(mkdir(at("target"), 0700), 0);
    (void)snprintf(inner, sizeof(inner), "%s/keep", at("target"));
    assert_int_equal(fs_write_atomic(inner, "k", 1, 0600), 0);
    assert_int_equal(fs_write_atomic(at("target"), "x", 1, 0600), PA_E_IO);
    assert_string_equal(listing(tmpdir), "target");
    assert_string_equal(listing(at("target")), "keep");
    assert_content(inner, "k", 1);
}

static void test_write_keeps_old_on_failure(void **state)
{
    char sub[4200];

    (void)state;
    assert_int_equal(fs_write_atomic(at("state"), "v1", 2, 0600), 0);
    /* A path through a regular file fails (ENOTDIR) and touches nothing. */
    (void)snprintf(sub, sizeof(sub), "%s/child", at("state"));
    assert_int_equal(fs_write_atomic(sub, "v2", 2, 0600), PA_E_IO);
    assert_content(at("state"), "v1", 2);
    assert_string_equal(listing(tmpdir), "state");
}

/* ---- fs_read_file --------------------------------------------------------------------- */

static void test_read_exact_cap(void **state)
{
    char *buf = NULL;
    size_t len = 0;

    (void)state;
    assert_int_equal(fs_write_atomic(at("f"), "0123456789", 10, 0600), 0);
    assert_int_equal(fs_read_file(at("f"), 10, &buf, &len), 0);
    assert_int_equal(len, 10);
    assert_string_equal(buf, "0123456789");
    free(buf);
}

static void test_read_over_cap(void **state)
{
    char *buf = (char *)&buf; /* sentinel: untouched on failure */
    size_t len = 12345;

    (void)state;
    assert_int_equal(fs_write_atomic(at("f"), "0123456789", 10, 0600), 0);
    assert_int_equal(fs_read_file(at("f"), 9, &buf, &len), PA_E_IO);
    assert_ptr_equal(buf, (char *)&buf);
    assert_int_equal(len, 12345);
    assert_int_equal(fs_read_file(at("f"), 0, &buf, &len), PA_E_IO);
}

static void test_read_large_over_cap(void **state)
{
    size_t n = 1024 * 1024;
    char *data = calloc(1, n), *buf = NULL;
    size_t len = 0;

    (void)state;
    assert_non_null(data);
    assert_int_equal(fs_write_atomic(at("f"), data, n, 0600), 0);
    assert_int_equal(fs_read_file(at("f"), 4096, &buf, &len), PA_E_IO);
    assert_null(buf);
    assert_int_equal(fs_read_file(at("f"), n, &buf, &len), 0);
    assert_int_equal(len, n);
    free(buf);
    free(data);
}

static void test_read_empty(void **state)
{
    char *buf = NULL;
    size_t len = 99;

    (void)state;
    assert_int_equal(fs_write_atomic(at("f"), "", 0, 0600), 0);
    assert_int_equal(fs_read_file(at("f"), 0, &buf, &len), 0);
    assert_int_equal(len, 0);
    assert_string_equal(buf, "");
    free(buf);
}

static void test_read_binary(void **state)
{
    static const char data[] = {'a', '\0', 'b', '\n', '\0'};
    char *buf = NULL;
    size_t len = 0;

    (void)state;
    assert_int_equal(fs_write_atomic(at("f"), data, sizeof(data), 0600), 0);
    assert_int_equal(fs_read_file(at("f"), 100, &buf, &len), 0);
    assert_int_equal(len, sizeof(data));
    assert_memory_equal(buf, data, sizeof(data));
    free(buf);
}

static void test_read_not_regular(void **state)
{
    char *buf = NULL;
    size_t len = 0;

    (void)state;
    assert_int_equal(fs_read_file(tmpdir, 100, &buf, &len), PA_E_IO);
    assert_int_equal(fs_read_file(at("missing"), 100, &buf, &len), PA_E_IO);
    assert_null(buf);
}

/* fs_read_into: the caller's buffer, extra open flags, the step that failed. */
static void test_read_into(void **state)
{
    char buf[11];
    struct fs_read rd;

    (void)state;
    assert_int_equal(fs_write_atomic(at("f"), "0123456789", 10, 0640), 0);
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(fs_read_into(at("f"), O_NOFOLLOW, buf, 10, &rd), 0);
    assert_ptr_equal(rd.buf, buf);
    assert_int_equal(rd.len, 10);
    assert_string_equal(buf, "0123456789");
    assert_int_equal(rd.mode & 0777, 0640);
    assert_int_equal(fs_read_into(at("f"), 0, buf, 9, &rd), PA_E_IO);
    assert_int_equal(rd.failed, FS_READ_SIZE);
    assert_null(rd.buf);
    assert_int_equal(symlink(at("f"), at("link")), 0);
    assert_int_equal(fs_read_into(at("link"), 0, buf, 10, &rd), 0);
    assert_int_equal(fs_read_into(at("link"), O_NOFOLLOW, buf, 10, &rd), PA_E_IO);
    assert_int_equal(rd.failed, FS_READ_OPEN);
    assert_int_equal(rd.err, ELOOP);
    assert_int_equal(mkfifo(at("fifo"), 0600), 0); /* refused, not waited on */
    assert_int_equal(fs_read_into(at("fifo"), O_NOFOLLOW, buf, 10, &rd), PA_E_IO);
    assert_int_equal(rd.failed, FS_READ_TYPE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_creates, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_write_modes, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_write_empty, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_write_binary_large, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_write_replaces_atomically, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_write_missing_dir, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_write_over_directory, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_write_keeps_old_on_failure, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_read_exact_cap, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_read_over_cap, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_read_large_over_cap, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_read_empty, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_read_binary, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_read_not_regular, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_read_into, dir_setup, dir_teardown),
    };

    return cmocka_run_group_tests_name("fsutil", tests, NULL, NULL);
}
