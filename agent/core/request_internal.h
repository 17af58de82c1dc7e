/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * request_internal.h - what the files of the request module share and nobody else sees: the
 * request itself, the schema's types, the check context and its error recording. request.c
 * loads, edits and serialises; request_schema.c owns the products, the schema, the structure
 * pass and the check entry points; request_rules.c owns the product rules.
 */
#ifndef PKIO_REQUEST_INTERNAL_H
#define PKIO_REQUEST_INTERNAL_H

#include "request.h"

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#define REQ_PATH_MAX 256 /* internal path buffers; req_error.path is shorter */

struct req {
    json_object *root; /* always an object */
};

/* A product of the PKIo person family and what its requests must say. */
struct req_product {
    const char *id;
    const char *const *profiles; /* allowed certificate.profile_option values */
    const char *profile_text;    /* the same, for messages */
    const char *provisioning;    /* required value of the provisioning field */
    bool title;                  /* certificate.individual.professional_title required */
    bool organization;           /* organization {id} required */
};

/* The JSON type a known field must have. */
enum req_type {
    REQ_T_STRING,
    REQ_T_INT,
    REQ_T_BOOL,
    REQ_T_OBJECT,
    REQ_T_ARRAY,
    REQ_T_BOOL_OR_NULL,
};

/* One known field of the schema. */
struct req_field {
    const char *name;
    enum req_type type;
    unsigned flags;                   /* REQ_F_* of request_schema.c */
    const struct req_field *children; /* members of a REQ_T_OBJECT; NULL name ends the list */
};

/* The members of certificate.individual, in the order problems with them are reported. */
extern const struct req_field req_f_individual[];

/* One run of checks: the configuration, the product, and the problems found. */
struct req_chk {
    const struct cfg *cfg;
    const struct req_product *prod;
    struct req_errors *errs; /* may be NULL */
    size_t count;            /* problems found, also those not stored */
    int r;                   /* PA_E_NOMEM once an allocation failed */
};

/* Does v have JSON type t? */
bool req_type_ok(json_object *v, enum req_type t);

/* An optional member of type t, or NULL (absent or of another type). */
json_object *req_opt(json_object *obj, const char *key, enum req_type t);

/*
 * Record one problem at path. The message never contains a value from the request. fmt is
 * English (marked N_()); the message is kept in English and in the user's language.
 */
__attribute__((format(printf, 3, 4))) void req_err(struct req_chk *k, const char *path,
                                                   const char *fmt, ...);

/* Record one problem at path whose message is msgid (English, marked N_()). */
void req_err_text(struct req_chk *k, const char *path, const char *msgid);

/*
 * out = base.key (key alone at the root), non-printable bytes shown as '?'. Returns false when
 * the result was truncated (it is still NUL-terminated and usable in messages).
 */
bool req_join(char *out, size_t outlen, const char *base, const char *key);

/* The rule pass (request_rules.c): required fields and values of product k->prod. */
void req_rules(struct req_chk *k, json_object *root, bool with_csr);

#endif
