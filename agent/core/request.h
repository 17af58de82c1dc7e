/* SPDX-License-Identifier: Apache-2.0 */
/*
 * request.h - the CertCentral order body (without the CSR): load, merge defaults, add the CSR,
 * validate against the product's rules, serialise. Format: docs/request-format.md.
 *
 * A request may carry credit card data. Then (req_has_card()) the body must never be logged,
 * and no message produced here ever contains a field value: errors name the field path only.
 */
#ifndef PKIO_REQUEST_H
#define PKIO_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

struct cfg;
struct req; /* opaque */
struct json_object;

#define REQ_MAX_SIZE   (256 * 1024) /* largest request file / buffer */
#define REQ_MAX_ERRORS 64           /* req_validate stops collecting after this many */

/* One problem: the field's dotted path (printable ASCII, may be truncated) and the rule. */
struct req_error {
    char path[128];
    char msg[160];   /* English: what --json reports */
    char local[160]; /* the same in the user's language (i18n.h): what people read */
};

struct req_errors {
    struct req_error *v; /* malloc'd; free with req_errors_clear */
    size_t n;
};

/**
 * Load a request file. A file that contains "credit_card" must not be group- or
 * world-accessible (the message says to run chmod 600).
 * @param ret receives the request (free with req_free); untouched on failure
 * @retval 0, PA_E_REQUEST (cannot open or read, not a regular file, too large, bad JSON with
 *         line:column, not an object, card data in a group/world-accessible file), PA_E_NOMEM
 */
int req_load_file(const char *path, struct req **ret, char *errbuf, size_t errlen);

/** Same as req_load_file() on len bytes of memory (no NUL needed); no permission check. */
int req_load_mem(const char *buf, size_t len, struct req **ret, char *errbuf, size_t errlen);

/** Free a request, wiping card data first; accepts NULL. */
void req_free(struct req *req);

/**
 * Subject parts for the CSR from certificate.individual. Each output may be NULL (not wanted);
 * strings are NULL when absent or not strings, valid until req_free; *individual_id is -1
 * unless "id" is a positive integer.
 * @retval 0, PA_E_REQUEST (no certificate.individual object; outputs untouched)
 */
int req_individual(const struct req *req, const char **first, const char **last,
                   const char **country, long *individual_id);

/** certificate.profile_option as a string, or NULL; valid until req_free. */
const char *req_profile_option(const struct req *req);

/** The string certificate.individual.KEY, or NULL (absent, not a string); valid until req_free. */
const char *req_individual_str(const struct req *req, const char *key);

/**
 * Merge cfg->order_defaults under the request: keys the request lacks are added, objects are
 * merged recursively, request values win. 0, PA_E_CONFIG (defaults not a JSON object),
 * PA_E_NOMEM.
 */
int req_merge_defaults(struct req *req, const struct cfg *cfg);

/**
 * Put csr_pem at cfg->api_csr_field (dotted path; missing objects are created, an existing
 * value is replaced). 0, PA_E_REQUEST (a path component exists but is not an object), PA_E_NOMEM.
 */
int req_set_csr(struct req *req, const struct cfg *cfg, const char *csr_pem);

/**
 * Check the structure only: every known field has the right JSON type, and there are no
 * unknown fields (organization and professional_title are known only for products that use
 * them). Errors are appended to errs (which must be zeroed or cleared); errs may be NULL.
 * @retval 0, PA_E_REQUEST (problems found), PA_E_NOMEM
 */
int req_check_types(const struct req *req, const struct cfg *cfg, struct req_errors *errs);

/**
 * req_check_types() plus the rules of product cfg->api_product (see docs/request-format.md);
 * collects ALL problems into errs, e.g. path "certificate.individual.telephone", msg "must
 * start with + and the country code". with_csr: the CSR field must also be present.
 * @retval 0, PA_E_REQUEST (problems found), PA_E_CONFIG (unsupported product), PA_E_NOMEM
 */
int req_validate(const struct req *req, const struct cfg *cfg, bool with_csr,
                 struct req_errors *errs);

/** Free and reset an error list; accepts NULL. */
void req_errors_clear(struct req_errors *errs);

/**
 * The strict parse of a request or the configuration: len bytes (no NUL needed) of at most max
 * bytes, without NUL bytes, as strict JSON with valid UTF-8, nested at most 16 deep, one object
 * and nothing after it but white space, every number finite (pjson_parse). name is used in
 * the messages ("NAME: larger than MAX bytes", "NAME:LINE:COL: invalid JSON: ...", "NAME: must
 * contain a JSON object", ...). The tokener's buffer is wiped, and so is the card data of a tree
 * that is refused.
 * @param ret receives the object (json_object_put it); untouched on failure
 * @retval 0, err (the caller's error code, e.g. PA_E_REQUEST or PA_E_CONFIG; errbuf says why),
 *         PA_E_NOMEM
 */
int req_json_parse(const char *name, const char *buf, size_t len, size_t max, int err,
                   struct json_object **ret, char *errbuf, size_t errlen);
/* All errors on one line: "path: message; path: message" (truncated to fit). */
void req_errors_format(const struct req_errors *errs, char *buf, size_t len);

/**
 * The body as compact JSON; caller frees (and, if req_has_card(), wipes it with secret_wipe
 * first). NULL when out of memory.
 */
char *req_to_json(const struct req *req);

/** True if the request pays by card or carries card data: never log its body then. */
bool req_has_card(const struct req *req);

/** True if product is a PKIo person product id this module has rules for. */
bool req_product_supported(const char *product);

/** The supported product ids as one comma-separated string (for messages). */
const char *req_product_list(void);

#endif
