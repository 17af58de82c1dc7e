/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stop.h - a stop asked for by SIGTERM or SIGINT, and sleeps that end when it comes.
 *
 * A process that installs the handlers (enroll, renew, resume: one job each) finishes the step
 * it is in and then stops with its job saved; every wait of its own (polling an order, backing
 * off after a 429 or 5xx, the station's rate budget, a lock) ends at once on the signal. Sleeps
 * are measured on the monotonic clock.
 */
#ifndef PKIO_STOP_H
#define PKIO_STOP_H

#include <stdbool.h>

/* SIGTERM and SIGINT set the stop flag (without SA_RESTART: a blocking call returns EINTR). */
void stop_handle_signals(void);

/* Has a stop been asked for? Async-signal-safe to set, cheap to read. */
bool stop_requested(void);

/* Ask for a stop from inside the process (the same as the signal). */
void stop_request(void);

/* Sleep seconds (monotonic clock; at most a day). false when a stop ended it (or was already
 * asked for), true when the whole time passed. */
bool stop_sleep(double seconds);

#endif
