/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * replay.c - run a fuzz target over every file of one or more corpus directories (or files).
 *
 * Usage: replay_<name> DIR|FILE...
 * Exits 0 when every input ran; 1 when an argument cannot be read, a directory holds no input
 * (an empty or missing corpus is a broken test, not a pass) or the target returned an unknown
 * value. A bug in the code under test shows up as a crash, abort or sanitizer report.
 */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Read a whole file; *ret_buf is malloc'd (at least 1 byte). */
static int read_all(const char *path, uint8_t **ret_buf, size_t *ret_len)
{
    FILE *f = NULL;
    uint8_t *buf = NULL, *nbuf;
    size_t len = 0, cap = 4096, n;
    int r = -1;

    f = fopen(path, "rbe");
    if (!f)
        goto out;
    buf = malloc(cap);
    if (!buf)
        goto out;
    while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            nbuf = realloc(buf, cap * 2);
            if (!nbuf)
                goto out;
            buf = nbuf;
            cap *= 2;
        }
    }
    if (ferror(f))
        goto out;
    *ret_buf = buf;
    *ret_len = len;
    buf = NULL;
    r = 0;
out:
    free(buf);
    if (f)
        fclose(f);
    return r;
}

static int run_file(const char *path)
{
    uint8_t *buf = NULL, *copy = NULL;
    size_t len = 0;
    int rc;

    if (read_all(path, &buf, &len) < 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    /* an exact-size copy, so ASan catches reads past the input like libFuzzer does */
    copy = malloc(len ? len : 1);
    if (!copy) {
        free(buf);
        return -1;
    }
    memcpy(copy, buf, len);
    free(buf);
    rc = LLVMFuzzerTestOneInput(copy, len);
    free(copy);
    if (rc != 0 && rc != -1) {
        fprintf(stderr, "%s: target returned %d\n", path, rc);
        return -1;
    }
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run every regular file in dir (sorted, so runs are reproducible); returns how many ran. */
static long run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL, **nn, path[4096];
    size_t n = 0, cap = 0;
    long ran = -1;

    if (!d) {
        fprintf(stderr, "%s: %s\n", dir, strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            nn = realloc(names, cap * sizeof(*names));
            if (!nn)
                goto out;
            names = nn;
        }
        names[n] = strdup(e->d_name);
        if (!names[n])
            goto out;
        n++;
    }
    if (n)
        qsort(names, n, sizeof(*names), name_cmp);
    ran = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat st;

        (void)snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (run_file(path) < 0) {
            ran = -1;
            goto out;
        }
        ran++;
    }
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return ran;
}

int main(int argc, char **argv)
{
    long total = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;
        long ran;

        if (stat(argv[i], &st) < 0) {
            fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        if (S_ISDIR(st.st_mode)) {
            ran = run_dir(argv[i]);
            if (ran == 0)
                fprintf(stderr, "%s: no inputs\n", argv[i]);
            if (ran <= 0)
                return 1;
        } else {
            if (run_file(argv[i]) < 0)
                return 1;
            ran = 1;
        }
        total += ran;
    }
    printf("%ld inputs ran\n", total);
    return 0;
}
