/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for agent/ca/ratebudget.c (the station-wide CertCentral rate budget) and its use by
 * the client: scaling by api.rate_share, one process, two processes (fork) sharing the file never
 * exceeding a window, share 0.5 halving it, requests in flight, damaged files reset without
 * blocking, a lock held too long, files that cannot be used; and the api.rate_share key.
 * Real time with windows of a fraction of a second.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "certcentral.h"
#include "config.h"
#include "http.h"
#include "pa_err.h"
#include "ratebudget.h"
#include "secret.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static double now_real(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* A private directory per test, removed with its files. */
struct dir {
    char path[64];
    char file[96];
};

static int setup_dir(void **state)
{
    struct dir *d = calloc(1, sizeof(*d));

    assert_non_null(d);
    strcpy(d->path, "/tmp/pkio-rbtest-XXXXXX");
    assert_non_null(mkdtemp(d->path));
    (void)snprintf(d->file, sizeof(d->file), "%s/%s", d->path, RB_FILE_NAME);
    *state = d;
    return 0;
}

static int teardown_dir(void **state)
{
    struct dir *d = *state;
    char cmd[128];

    (void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->path);
    assert_int_equal(system(cmd), 0);
    free(d);
    return 0;
}

/* One request under lim: wait as told until it is reserved, then done at once. Its time. */
static double one_request(struct rb_station *st, const struct rb_limits *lim)
{
    struct rb_ticket tk = {0};
    double wait = 0, t;

    for (;;) {
        assert_int_equal(rb_station_reserve(st, lim, &wait, &tk), 0);
        if (wait <= 0)
            break;
        assert_true(wait <= (lim->long_s > lim->burst_s ? lim->long_s : lim->burst_s) + 0.01);
        nap(wait);
    }
    assert_true(tk.valid);
    t = now_real();
    assert_int_equal(rb_station_done(st, &tk), 0);
    assert_false(tk.valid);
    return t;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* The most request times found in any window of w seconds. */
static unsigned max_in_window(double *t, size_t n, double w)
{
    unsigned best = 0;

    qsort(t, n, sizeof(*t), cmp_dbl);
    for (size_t i = 0; i < n; i++) {
        unsigned k = 0;

        for (size_t j = i; j < n && t[j] < t[i] + w; j++)
            k++;
        if (k > best)
            best = k;
    }
    return best;
}

/* ------------------------------------------------------------------------------------------ */

static void test_scale(void **state)
{
    const struct rb_limits dc = {100, 5.0, 1000, 180.0};
    struct rb_limits r;

    (void)state;
    rb_limits_scale(&dc, 1, &r);
    assert_int_equal(r.burst_n, 100);
    assert_int_equal(r.long_n, 1000);
    assert_true(r.burst_s == 5.0 && r.long_s == 180.0);
    rb_limits_scale(&dc, 0.5, &r);
    assert_int_equal(r.burst_n, 50);
    assert_int_equal(r.long_n, 500);
    rb_limits_scale(&dc, 0.125, &r);
    assert_int_equal(r.burst_n, 12); /* rounded down */
    assert_int_equal(r.long_n, 125);
    rb_limits_scale(&dc, 0.001, &r);
    assert_int_equal(r.burst_n, 1); /* at least one */
    assert_int_equal(r.long_n, 1);
    /* out-of-range shares count as 1 */
    rb_limits_scale(&dc, 0, &r);
    assert_int_equal(r.burst_n, 100);
    rb_limits_scale(&dc, 1.5, &r);
    assert_int_equal(r.burst_n, 100);
    rb_limits_scale(&dc, NAN, &r);
    assert_int_equal(r.long_n, 1000);
    /* 0 = no limit stays; counts beyond the file are capped */
    rb_limits_scale(&(struct rb_limits){0, 5.0, 5000, 180.0}, 1, &r);
    assert_int_equal(r.burst_n, 0);
    assert_int_equal(r.long_n, RB_SLOTS - 16);
}

/* One process: the 4th request within the window waits for it; in-flight requests count. */
static void test_one_process(void **state)
{
    struct dir *d = *state;
    const struct rb_limits lim = {3, 0.4, 0, 0};
    struct rb_station *st = NULL;
    struct rb_ticket tk[4] = {{0}};
    struct stat sb;
    double wait = -1, t0;

    assert_int_equal(rb_station_open(d->file, &st), 0);
    assert_int_equal(stat(d->file, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    t0 = now_real();
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rb_station_reserve(st, &lim, &wait, &tk[i]), 0);
        assert_true(wait == 0);
        assert_true(tk[i].valid);
    }
    /* three in flight: the 4th must wait a whole window (they count as "now") */
    assert_int_equal(rb_station_reserve(st, &lim, &wait, &tk[3]), 0);
    assert_true(wait > 0.35 && wait <= 0.401);
    assert_false(tk[3].valid);
    for (int i = 0; i < 3; i++)
        assert_int_equal(rb_station_done(st, &tk[i]), 0);
    assert_int_equal(rb_station_done(st, &tk[0]), 0); /* done twice: nothing */
    assert_int_equal(rb_station_reserve(st, &lim, &wait, &tk[3]), 0);
    assert_true(wait > 0.3 && wait <= 0.4 + 0.01);
    nap(wait);
    assert_int_equal(rb_station_reserve(st, &lim, &wait, &tk[3]), 0);
    assert_true(wait == 0);
    assert_true(now_real() - t0 >= 0.4);
    assert_int_equal(rb_station_done(st, &tk[3]), 0);
    assert_int_equal(stat(d->file, &sb), 0);
    assert_int_equal(sb.st_size, 16 + RB_SLOTS * 16);
    rb_station_close(st);
    rb_station_close(NULL);
}

/* Each child makes n requests through its own rb_station on path and writes their times. */
static pid_t spawn_requester(const char *path, const struct rb_limits *lim, int n, int wfd)
{
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        struct rb_station *st = NULL;

        if (rb_station_open(path, &st) < 0)
            _exit(3);
        for (int i = 0; i < n; i++) {
            double t = one_request(st, lim);

            if (write(wfd, &t, sizeof(t)) != (ssize_t)sizeof(t))
                _exit(4);
        }
        rb_station_close(st);
        _exit(0);
    }
    return pid;
}

/* nproc processes, n requests each, under lim: returns the times (sorted), checks exit codes. */
static void run_processes(const char *path, const struct rb_limits *lim, int nproc, int n,
                          double *times)
{
    int fds[2];
    pid_t pids[8];
    size_t got = 0;

    assert_true(nproc <= 8);
    assert_int_equal(pipe(fds), 0);
    for (int i = 0; i < nproc; i++)
        pids[i] = spawn_requester(path, lim, n, fds[1]);
    close(fds[1]);
    while (got < (size_t)(nproc * n)) {
        ssize_t r = read(fds[0], &times[got], sizeof(double));

        assert_int_equal(r, sizeof(double));
        got++;
    }
    close(fds[0]);
    for (int i = 0; i < nproc; i++) {
        int status = -1;

        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
}

/* Two processes share the file: together they never exceed a window. */
static void test_two_processes(void **state)
{
    struct dir *d = *state;
    const struct rb_limits lim = {5, 0.5, 12, 2.0};
    double times[40], t0 = now_real();

    run_processes(d->file, &lim, 2, 15, times);
    assert_true(max_in_window(times, 30, 0.5) <= 5);
    assert_true(max_in_window(times, 30, 2.0) <= 12);
    /* 30 requests at 12 per 2 s take at least two full long windows */
    assert_true(now_real() - t0 >= 4.0);
}

/* api.rate_share 0.5: the same key's limits, half of them for this station. */
static void test_share_halves(void **state)
{
    struct dir *d = *state;
    const struct rb_limits key = {8, 0.5, 0, 0};
    struct rb_limits half;
    double times[40];

    rb_limits_scale(&key, 0.5, &half);
    assert_int_equal(half.burst_n, 4);
    run_processes(d->file, &half, 3, 8, times);
    assert_int_equal(max_in_window(times, 24, 0.5), 4);
}

/* A request in flight in another, living process counts; one of a dead process does not. */
static void test_inflight_other_process(void **state)
{
    struct dir *d = *state;
    const struct rb_limits lim = {1, 30.0, 0, 0};
    struct rb_station *st = NULL;
    struct rb_ticket tk = {0};
    int go[2], ready[2];
    double wait = -1;
    char c = 0;
    pid_t pid;

    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(ready), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* reserve, then wait to be told to die without "done" */
        struct rb_station *cs = NULL;
        struct rb_ticket ct = {0};
        double w = -1;

        if (rb_station_open(d->file, &cs) < 0 || rb_station_reserve(cs, &lim, &w, &ct) < 0 ||
            w != 0 || write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) < 0)
            _exit(3);
        _exit(0);
    }
    assert_int_equal(read(ready[0], &c, 1), 1);
    assert_int_equal(rb_station_open(d->file, &st), 0);
    assert_int_equal(rb_station_reserve(st, &lim, &wait, &tk), 0);
    assert_true(wait > 29.0); /* the child's request is in flight: a whole window */
    assert_int_equal(write(go[1], "g", 1), 1);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    /* the child is gone: its entry becomes "completed now", which still fills the window */
    assert_int_equal(rb_station_reserve(st, &lim, &wait, &tk), 0);
    assert_true(wait > 29.0 && wait <= 30.0);
    rb_station_close(st);
    for (int i = 0; i < 2; i++) {
        close(go[i]);
        close(ready[i]);
    }
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

struct entry {
    double t;
    uint32_t pid, state;
};

/* Truncated, garbage, and entries that make no sense: reset or cleared, never a long wait. */
static void test_damaged_file(void **state)
{
    struct dir *d = *state;
    const struct rb_limits lim = {3, 0.3, 5, 0.6};
    struct rb_station *st = NULL;
    struct rb_ticket tk = {0};
    static unsigned char img[16 + RB_SLOTS * 16];
    struct entry *e = (struct entry *)(void *)(img + 16);
    double wait = -1, t0;
    struct stat sb;
    pid_t dead;

    write_file(d->file, "PKIO", 4);
    assert_int_equal(rb_station_open(d->file, &st), 0);
    assert_int_equal(rb_station_reserve(st, &lim, &wait, &tk), 0);
    assert_true(wait == 0 && tk.valid);
    assert_int_equal(rb_station_done(st, &tk), 0);
    assert_int_equal(stat(d->file, &sb), 0);
    assert_int_equal(sb.st_size, sizeof(img)); /* rewritten whole */

    for (size_t i = 0; i < sizeof(img); i++)
        img[i] = (unsigned char)(i * 131 + 7);
    write_file(d->file, img, sizeof(img)); /* garbage of the right size: bad header */
    assert_int_equal(rb_station_reserve(st, &lim, &wait, &tk), 0);
    assert_true(wait == 0 && tk.valid);
    assert_int_equal(rb_station_done(st, &tk), 0);

    /* a valid header; entries: invalid, a dead process in flight, all others far in the future */
    {
        int fd = open(d->file, O_RDONLY | O_CLOEXEC);

        assert_true(fd >= 0);
        assert_int_equal(pread(fd, img, 16, 0), 16);
        close(fd);
    }
    dead = fork();
    if (dead == 0)
        _exit(0);
    assert_int_equal(waitpid(dead, NULL, 0), dead);
    for (size_t i = 0; i < RB_SLOTS; i++)
        e[i] = (struct entry){now_real() + 1e6, 1, 2};
    e[0] = (struct entry){NAN, 1, 2};
    e[1] = (struct entry){now_real(), 1, 7};
    e[2] = (struct entry){now_real(), (uint32_t)dead, 1};
    e[3] = (struct entry){-5, 1, 2};
    write_file(d->file, img, sizeof(img));
    t0 = now_real();
    for (;;) { /* the future entries count as "now": one long window at most, then it fits */
        assert_int_equal(rb_station_reserve(st, &lim, &wait, &tk), 0);
        if (wait <= 0)
            break;
        assert_true(wait <= lim.long_s + 0.01);
        nap(wait);
        assert_true(now_real() - t0 < 3 * lim.long_s);
    }
    assert_int_equal(rb_station_done(st, &tk), 0);
    assert_true(now_real() - t0 >= lim.long_s - 0.05);
    rb_station_close(st);
}

/* A lock held too long: PA_E_BUSY after RB_LOCK_WAIT_S, not a hang. */
static void test_lock_held(void **state)
{
    struct dir *d = *state;
    const struct rb_limits lim = {3, 0.3, 0, 0};
    struct rb_station *st = NULL;
    struct rb_ticket tk = {0};
    int ready[2];
    double wait = -1, t0;
    char c;
    pid_t pid;

    assert_int_equal(rb_station_open(d->file, &st), 0);
    assert_int_equal(pipe(ready), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(d->file, O_RDWR);

        if (fd < 0 || flock(fd, LOCK_EX) < 0 || write(ready[1], "r", 1) != 1)
            _exit(3);
        nap(RB_LOCK_WAIT_S + 2);
        _exit(0);
    }
    assert_int_equal(read(ready[0], &c, 1), 1);
    t0 = now_real();
    assert_int_equal(rb_station_reserve(st, &lim, &wait, &tk), PA_E_BUSY);
    assert_false(tk.valid);
    assert_true(now_real() - t0 >= RB_LOCK_WAIT_S - 0.1 && now_real() - t0 < RB_LOCK_WAIT_S + 1);
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    assert_int_equal(rb_station_reserve(st, &lim, &wait, &tk), 0);
    assert_true(wait == 0 && tk.valid);
    assert_int_equal(rb_station_done(st, &tk), 0);
    rb_station_close(st);
    close(ready[0]);
    close(ready[1]);
}

/* Paths that cannot hold the file; a child forked with the parent's handle uses its own. */
static void test_unusable_and_fork(void **state)
{
    struct dir *d = *state;
    const struct rb_limits lim = {3, 5.0, 0, 0};
    struct rb_station *st = NULL;
    struct rb_ticket tk = {0};
    char path[128];
    double wait;
    int status = -1;
    pid_t pid;

    (void)snprintf(path, sizeof(path), "%s/no-such-dir/%s", d->path, RB_FILE_NAME);
    assert_int_equal(rb_station_open(path, &st), PA_E_IO);
    assert_null(st);
    assert_int_equal(mkdir(d->file, 0700), 0); /* a directory where the file should be */
    assert_int_equal(rb_station_open(d->file, &st), PA_E_IO);
    assert_int_equal(rmdir(d->file), 0);

    assert_int_equal(rb_station_open(d->file, &st), 0);
    assert_int_equal(rb_station_reserve(st, &lim, &wait, &tk), 0);
    assert_int_equal(rb_station_done(st, &tk), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rb_ticket ct = {0};
        double w = -1;

        _exit(rb_station_reserve(st, &lim, &w, &ct) == 0 && w == 0 && ct.valid &&
                      rb_station_done(st, &ct) == 0
                  ? 0
                  : 3);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* the child's request counts for the parent too: the third of three */
    assert_int_equal(rb_station_reserve(st, &lim, &wait, &tk), 0);
    assert_true(wait == 0);
    assert_int_equal(rb_station_done(st, &tk), 0);
    assert_int_equal(rb_station_reserve(st, &lim, &wait, &tk), 0);
    assert_true(wait > 0);
    rb_station_close(st);
}

/* ------------------------------------------------------------------------------------------ */
/* through the client: two clients (one per "process") sharing a state directory */

struct sleeps {
    int n;
    double total;
};

static void count_sleep(double s, void *arg)
{
    struct sleeps *sl = arg;

    sl->n++;
    sl->total += s;
    nap(s);
}

static struct cc_client *client(const char *url, struct sleeps *sl)
{
    struct secret *key = NULL;
    struct cc_client *c = NULL;
    struct http_opts opts = {.connect_timeout_s = 5, .timeout_s = 5};

    assert_int_equal(secret_from_mem(S("sandbox-0123456789abcdef"), &key), 0);
    assert_int_equal(cc_client_new(url, key, &opts, &c), 0);
    secret_free(key);
    cc_client_set_sleep(c, count_sleep, sl);
    cc_client_set_retry(c, 1, 0.1, 0.1);
    return c;
}

static void test_client_station(void **state)
{
    struct dir *d = *state;
    struct sleeps s1 = {0}, s2 = {0};
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    char url[64];
    struct cc_client *a, *b;
    struct cc_order_info oi;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    /* a bound port that never listens: every request is refused at once */
    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    (void)snprintf(url, sizeof(url), "https://127.0.0.1:%u/services/v2", ntohs(sa.sin_port));

    a = client(url, &s1);
    b = client(url, &s2);
    assert_int_equal(cc_client_set_station_budget(a, d->path, 0), PA_E_CONFIG);
    assert_int_equal(cc_client_set_station_budget(a, d->path, 1.01), PA_E_CONFIG);
    /* the key allows 4 per 0.6 s; this station may use half: 2 */
    assert_int_equal(cc_client_set_budget(a, 4, 0.6, 0, 0), 0);
    assert_int_equal(cc_client_set_budget(b, 4, 0.6, 0, 0), 0);
    assert_int_equal(cc_client_set_station_budget(a, d->path, 0.5), 0);
    assert_int_equal(cc_client_set_station_budget(b, d->path, 0.5), 0);
    assert_int_equal(cc_order_info(a, 12, &oi), PA_E_CA_UNAVAILABLE);
    assert_int_equal(cc_order_info(b, 12, &oi), PA_E_CA_UNAVAILABLE);
    assert_int_equal(s1.n + s2.n, 0);
    assert_int_equal(cc_order_info(a, 12, &oi), PA_E_CA_UNAVAILABLE); /* third: waits */
    assert_int_equal(s1.n, 1);
    assert_true(s1.total > 0.5 && s1.total < 0.7);
    assert_int_equal(cc_client_requests(a) + cc_client_requests(b), 3);
    assert_int_equal(cc_client_connections(a), 0); /* refused: none opened */
    cc_client_free(a);
    cc_client_free(b);

    /* a state directory that cannot hold the file: the client's own budget, no failure */
    a = client(url, &s1);
    assert_int_equal(cc_client_set_station_budget(a, "/nonexistent/pkio-state", 1), 0);
    assert_int_equal(cc_order_info(a, 12, &oi), PA_E_CA_UNAVAILABLE);
    assert_int_equal(cc_client_requests(a), 1);
    cc_client_free(a);
    close(fd);
}

/* ------------------------------------------------------------------------------------------ */
/* api.rate_share */

static void test_config_rate_share(void **state)
{
    static const struct {
        const char *json;
        int rc;
        double share;
    } rows[] = {
        {"{}", 0, 1},
        {"{\"api\": {\"rate_share\": 0.5}}", 0, 0.5},
        {"{\"api.rate_share\": 1}", 0, 1},
        {"{\"api\": {\"rate_share\": 0.01}}", 0, 0.01},
        {"{\"api\": {\"rate_share\": 0}}", PA_E_CONFIG, 0},
        {"{\"api\": {\"rate_share\": -0.5}}", PA_E_CONFIG, 0},
        {"{\"api\": {\"rate_share\": 1.5}}", PA_E_CONFIG, 0},
        {"{\"api\": {\"rate_share\": \"0.5\"}}", PA_E_CONFIG, 0},
        {"{\"api\": {\"rate_share\": true}}", PA_E_CONFIG, 0},
        {"{\"api\": {\"rate_share\": null}}", PA_E_CONFIG, 0},
    };
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct cfg *cfg = NULL;
        int r = cfg_load_mem(rows[i].json, strlen(rows[i].json), "t", &cfg, err, sizeof(err));

        assert_int_equal(r, rows[i].rc);
        if (r == 0)
            assert_true(cfg->api_rate_share == rows[i].share);
        else
            assert_non_null(strstr(err, "api.rate_share"));
        cfg_free(cfg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scale),
        cmocka_unit_test_setup_teardown(test_one_process, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_two_processes, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_share_halves, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_inflight_other_process, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_damaged_file, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_lock_held, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_unusable_and_fork, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_client_station, setup_dir, teardown_dir),
        cmocka_unit_test(test_config_rate_share),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
