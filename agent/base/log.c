/* SPDX-License-Identifier: Apache-2.0 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static enum log_level current = LOG_LVL_WARN;

void log_set_level(enum log_level level)
{
    current = level;
}

enum log_level log_get_level(void)
{
    return current;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *const prefix[] = {"error", "warning", "info", "debug"};
    va_list ap;

    if (level > current)
        return;
    fprintf(stderr, "pkio-agent: %s: ", prefix[level]);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
