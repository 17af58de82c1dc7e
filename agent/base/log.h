/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.h - diagnostics on stderr (journald picks them up under systemd).
 *
 * Library-like modules (pkcs11/, parsers) log only at debug level; the caller logs once.
 * Never pass a secret (PIN, API key, card data) to these functions.
 */
#ifndef PKIO_LOG_H
#define PKIO_LOG_H

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN = 1, LOG_LVL_INFO = 2, LOG_LVL_DEBUG = 3 };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
