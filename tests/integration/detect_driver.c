/* SPDX-License-Identifier: Apache-2.0 */
/*
 * detect_driver.c - runs agent/core/detect.c the way the agent's loop will, for the detect_* tests
 * and the idle-CPU benchmark.
 *
 *   detect_driver [--no-pcsc] [--no-udev] [--rescan SECONDS] [--force-rescan] [--debug]
 *
 * Prints "sources: ..." at start and whenever the set of sources changes, one
 * "event: <description>" line per detect_poll() that returned 1, and "stopped" after a clean
 * detect_close() on SIGTERM/SIGINT (exit 0). Errors: "error: ..." on stderr, exit 1 (2: usage).
 * Defaults: PC/SC and udev on, no periodic rescan.
 */
#include "detect.h"
#include "log.h"
#include "pa_err.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

static int usage(void)
{
    fprintf(stderr, "usage: detect_driver [--no-pcsc] [--no-udev] [--rescan SECONDS] "
                    "[--force-rescan] [--debug]\n");
    return 2;
}

static int parse_seconds(const char *s, double *ret)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end)
        return PA_E_USAGE;
    *ret = v;
    return 0;
}

int main(int argc, char **argv)
{
    struct detect_opts o = {.use_pcsc = true, .use_udev = true};
    struct detect *d = NULL;
    char what[256], sources[64];
    struct pollfd pfd[2];
    sigset_t mask;
    int i, r, rc = 1, sfd = -1;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-pcsc") == 0)
            o.use_pcsc = false;
        else if (strcmp(argv[i], "--no-udev") == 0)
            o.use_udev = false;
        else if (strcmp(argv[i], "--force-rescan") == 0)
            o.force_rescan = true;
        else if (strcmp(argv[i], "--debug") == 0)
            log_set_level(LOG_LVL_DEBUG);
        else if (strcmp(argv[i], "--rescan") == 0 && i + 1 < argc) {
            if (parse_seconds(argv[++i], &o.rescan_s) < 0)
                return usage();
        } else
            return usage();
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* SIGTERM/SIGINT arrive through a signalfd: the loop ends cleanly, never in a handler. */
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
        fprintf(stderr, "error: sigprocmask: %s\n", strerror(errno));
        goto out;
    }
    sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (sfd < 0) {
        fprintf(stderr, "error: signalfd: %s\n", strerror(errno));
        goto out;
    }

    r = detect_open(&o, &d);
    if (r < 0) {
        fprintf(stderr, "error: detect_open: %s\n", pa_err_str(r));
        goto out;
    }
    snprintf(sources, sizeof(sources), "%s", detect_sources(d));
    printf("sources: %s\n", sources);

    pfd[0].fd = detect_fd(d);
    pfd[0].events = POLLIN;
    pfd[1].fd = sfd;
    pfd[1].events = POLLIN;
    for (;;) {
        int n = poll(pfd, 2, detect_timeout_ms(d));

        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "error: poll: %s\n", strerror(errno));
            goto out;
        }
        if (n > 0 && (pfd[1].revents & POLLIN))
            break;
        if (detect_poll(d, what, sizeof(what)) == 1)
            printf("event: %s\n", what);
        if (strcmp(sources, detect_sources(d)) != 0) {
            snprintf(sources, sizeof(sources), "%s", detect_sources(d));
            printf("sources: %s\n", sources);
        }
    }
    detect_close(d);
    d = NULL;
    printf("stopped\n");
    rc = 0;
out:
    detect_close(d);
    if (sfd >= 0)
        close(sfd);
    return rc;
}
