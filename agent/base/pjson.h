/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pjson.h - the one strict JSON parse: json-c's strict tokener over an explicit length, with a
 * depth limit, a size limit, no NUL byte, nothing after the value, and (as asked) UTF-8 checked,
 * an object at the top, every number finite. Callers word the failure themselves (struct
 * pjson_err says what and where) or through pjson_explain(). The only file of agent/base that
 * includes json-c; this header needs only the struct's name.
 */
#ifndef PKIO_PJSON_H
#define PKIO_PJSON_H

#include <stdbool.h>
#include <stddef.h>

struct json_object;

/* pjson_opts.flags */
#define PJSON_UTF8     0x01u /* strings must be valid UTF-8 */
#define PJSON_OBJECT   0x02u /* the value must be an object */
#define PJSON_FINITE   0x04u /* every number must fit a double (json-c makes 1e999 inf) */
#define PJSON_NO_SPACE 0x08u /* nothing at all after the value, not even white space */
#define PJSON_WIPE     0x10u /* the input may hold secrets: wipe what json-c copied of it */

struct pjson_opts {
    size_t max;     /* at most this many bytes; 0: no limit but INT_MAX */
    int depth;      /* nesting limit (json_tokener_new_ex) */
    unsigned flags; /* PJSON_* */
    int err;        /* the code returned for input that is refused, e.g. PA_E_CONFIG */
};

/* What was wrong with the input (struct pjson_err.fail). */
enum pjson_fail {
    PJSON_OK,
    PJSON_NO_DATA,    /* buf is NULL */
    PJSON_TOO_LARGE,  /* more than max bytes */
    PJSON_NUL,        /* a NUL byte */
    PJSON_TRUNCATED,  /* the input ends inside the value */
    PJSON_SYNTAX,     /* json-c refused it at off: desc */
    PJSON_TRAILING,   /* something after the value, at off */
    PJSON_NOT_OBJECT, /* PJSON_OBJECT and the value is something else */
    PJSON_RANGE,      /* PJSON_FINITE and a number is out of range */
};

struct pjson_err {
    enum pjson_fail fail;
    size_t off;              /* TRUNCATED, SYNTAX, TRAILING: the byte offset */
    unsigned long line, col; /* off as a 1-based line and column */
    const char *desc;        /* SYNTAX: json-c's (English) description */
};

/*
 * Parse buf[0..len) as one strict JSON value under o. 0 with *ret (json_object_put; NULL for the
 * literal null); o->err with *e filled when the input is refused; PA_E_NOMEM. e may be NULL.
 */
int pjson_parse(const char *buf, size_t len, const struct pjson_opts *o, struct json_object **ret,
                struct pjson_err *e);

/*
 * The failure in the user's language. With name: "NAME:LINE:COL: invalid JSON: DESC",
 * "NAME: must contain a JSON object", "NAME: larger than MAX bytes", ... ; without (the caller
 * names the file): "invalid JSON: DESC", "not a JSON object", "larger than MAX bytes", ...
 * errbuf may be NULL.
 */
void pjson_explain(const struct pjson_err *e, const char *name, size_t max, char *errbuf,
                   size_t errlen);

/* False if a number below v does not fit a double. */
bool pjson_finite(struct json_object *v);

/* Wipe every string below v in place (before it is freed: card data may be among them). */
void pjson_wipe(struct json_object *v);

#endif
