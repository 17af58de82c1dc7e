/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_internal.h - what config.c (the configuration file) lends config_key.c (the API key):
 * the message formatter and the name the configuration is known by.
 */
#ifndef PKIO_CONFIG_INTERNAL_H
#define PKIO_CONFIG_INTERNAL_H

#include <stddef.h>

struct cfg;

/* The file cfg was loaded from, else the default configuration file (for messages). */
const char *cfg_name(const struct cfg *cfg);

#endif
