/* SPDX-License-Identifier: Apache-2.0 */
#include "stop.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop_flag;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

void stop_handle_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal; /* no SA_RESTART: sleeps and reads end early */
    sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGTERM, &sa, NULL);
    (void)sigaction(SIGINT, &sa, NULL);
}

bool stop_requested(void)
{
    return stop_flag != 0;
}

void stop_request(void)
{
    stop_flag = 1;
}

bool stop_sleep(double seconds)
{
    struct timespec until;

    if (stop_flag)
        return false;
    if (!(seconds > 0))
        return true;
    if (seconds > 86400)
        seconds = 86400;
    if (clock_gettime(CLOCK_MONOTONIC, &until) < 0)
        return true;
    until.tv_sec += (time_t)seconds;
    until.tv_nsec += (long)((seconds - (double)(time_t)seconds) * 1e9);
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    /* The signal interrupts the sleep (EINTR); any other interruption sleeps on to the end. */
    while (!stop_flag) {
        int r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);

        if (r == 0)
            return true;
        if (r != EINTR)
            return true;
    }
    return false;
}
