/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tok.h - pkio-agent's token layer: the only code that talks PKCS#11 and libp11.
 *
 * The rest of the agent sees tokens through this small API. CK_RV never leaves pkcs11/;
 * every function returns 0 or a negative PA_E_* code (pa_err.h). Nothing here logs above
 * debug level; the caller reports the error once. A PIN given to tok_login() is used for one
 * C_Login and never kept: no function hands it back.
 */
#ifndef PKIO_TOK_H
#define PKIO_TOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

struct secret;

#define TOK_ID_MAX 64 /* longest CKA_ID we create or accept */

/* What a token says about itself (CK_TOKEN_INFO, made printable). */
struct tok_info {
    unsigned long slot_id; /* valid for this process only: never persist */
    char label[33];        /* trailing blanks and NULs trimmed */
    char manufacturer[33];
    char model[17];
    char serial[17];
    bool token_initialized;
    bool login_required;
    bool user_pin_initialized;
    bool user_pin_count_low;
    bool user_pin_final_try;
    bool user_pin_locked;
    bool user_pin_to_be_changed;
    bool protected_auth_path; /* PIN pad on the reader */
    bool write_protected;
    bool rng;
    long free_public_memory;  /* bytes, -1 when the token does not say */
    long free_private_memory; /* bytes, -1 when the token does not say */
    unsigned long min_pin_len, max_pin_len;
};

/* A parsed RFC 7512 PKCS#11 URI (only the attributes the agent uses). */
struct tok_uri {
    char *token; /* token label */
    char *manufacturer;
    char *model;
    char *serial;
    bool has_slot_id;
    unsigned long slot_id;
    unsigned char id[TOK_ID_MAX]; /* CKA_ID */
    size_t id_len;                /* 0 = not given */
    char *object;                 /* CKA_LABEL */
    char *type;                   /* "private", "public", "cert", ... */
    char *pin_source;             /* file path (a "file:" prefix is stripped) */
    struct secret *pin_value;     /* only ever set from non-argv sources; see tok_uri_parse */
};

/* Key types the agent can generate. */
enum tok_key_type {
    TOK_KEY_RSA2048,
    TOK_KEY_RSA3072,
    TOK_KEY_RSA4096,
    TOK_KEY_EC_P256,
    TOK_KEY_EC_P384
};

/*
 * Custody attributes of a private key, read back from the token. An attribute the module does not
 * report reads as false (extractable: as true when it is unreported and reported_extractable is
 * false). value_readable is true when any secret component (CKA_VALUE, CKA_PRIVATE_EXPONENT,
 * CKA_PRIME_1) came back with a value: such a key is never acceptable.
 */
struct tok_custody {
    bool sensitive, extractable, local, never_extractable, always_sensitive, is_token, is_private;
    bool value_readable;
    bool reported_extractable;          /* the module answered CKA_EXTRACTABLE */
    bool sign, decrypt, unwrap, derive; /* usage attributes of the private key */
};

/* Key usages asked for at generation (the request's profile decides). */
enum {
    TOK_USE_SIGN = 1,    /* CKA_SIGN / CKA_VERIFY (also needed to sign the CSR) */
    TOK_USE_DECRYPT = 2, /* RSA: CKA_DECRYPT + CKA_UNWRAP (ENCRYPT/WRAP); EC: CKA_DERIVE */
};

/* What a key generation can prove about itself; recorded as custody evidence. */
struct tok_keygen_info {
    char mechanism[40];  /* "CKM_RSA_PKCS_KEY_PAIR_GEN" ... */
    bool hw_slot;        /* the slot says CKF_HW_SLOT */
    bool removable;      /* the slot says CKF_REMOVABLE_DEVICE */
    bool usage_explicit; /* unwanted usages were set false explicitly (else token defaults) */
};

struct tok_ctx;   /* one loaded module */
struct tok_token; /* one selected token with an open session */

/* ---- URIs (uri.c: pure, no PKCS#11) -------------------------------------------------- */

/*
 * Parse a "pkcs11:" URI. Percent-encoding is decoded; unknown attributes are ignored as RFC
 * 7512 says, except module-path/module-name (we refuse them: the module is chosen with
 * --module or the config file). pin-value is accepted only when allow_pin_value is true;
 * command-line URIs pass false so a PIN never sits in argv.
 */
int tok_uri_parse(const char *s, bool allow_pin_value, struct tok_uri *ret);
void tok_uri_clear(struct tok_uri *u);
/* Does the token described by info match the token part of u? */
bool tok_uri_matches(const struct tok_uri *u, const struct tok_info *info);
/*
 * Formatting (caller frees; NULL only when out of memory). Every byte of a value outside RFC
 * 3986 unreserved (ALPHA DIGIT - . _ ~) is percent-encoded, upper-case hex; the id always in
 * full. That is stricter than RFC 7512 needs, and what every parser accepts. The result parses
 * back with tok_uri_parse to the same attributes (when it is within the parser's 4096 bytes).
 */
/* Naming a key: token, serial, id (when id_len), object (when label is not empty), type=private. */
char *tok_uri_for_key(const struct tok_info *info, const unsigned char *id, size_t id_len,
                      const char *label);
/* A URI naming a token: token and serial. */
char *tok_uri_for_token(const struct tok_info *info);
/* Every attribute u holds, pin-source in the query; pin-value is never printed. */
char *tok_uri_format(const struct tok_uri *u);
/* Parse a key type such as "rsa:2048" or "ec:p256". */
int tok_key_type_parse(const char *s, enum tok_key_type *ret);
const char *tok_key_type_name(enum tok_key_type t);

/* ---- module and tokens ---------------------------------------------------------------- */

/*
 * The detail of the last failure in this thread, e.g. "C_Login: CKR_PIN_INCORRECT" or
 * "token reports the user PIN on its final try". Never contains a PIN. Empty if none.
 */
const char *tok_detail(void);

/* Load and initialise a PKCS#11 module by path. PA_E_MODULE when it cannot. */
int tok_open(const char *module_path, struct tok_ctx **ret);
/* Finalise and unload; accepts NULL. Closes tokens still open. */
void tok_close(struct tok_ctx *ctx);
/* Re-initialise the module (SoftHSM-style modules see new tokens only after this). */
int tok_rescan(struct tok_ctx *ctx);

/* List slots that hold a token. *ret is malloc'd (caller frees), *ret_n may be 0. */
int tok_list(struct tok_ctx *ctx, struct tok_info **ret, size_t *ret_n);

/*
 * Select exactly one token matching u (token, manufacturer, model, serial, slot-id). With no
 * match: PA_E_TOKEN_NOT_FOUND. With several: PA_E_TOKEN_AMBIGUOUS, and *ret_matches and *ret_n (if
 * non-NULL) receive the candidates so the caller can list them. Opens a R/W session.
 */
int tok_select(struct tok_ctx *ctx, const struct tok_uri *u, struct tok_token **ret,
               struct tok_info **ret_matches, size_t *ret_n);
void tok_token_close(struct tok_token *t);
/* Current info (re-read from the token). PA_E_TOKEN_GONE if it was removed. */
int tok_token_info(struct tok_token *t, struct tok_info *ret);

/*
 * Why a login would be refused before trying: PA_E_PIN_LOCKED when the token reports
 * locked, final try or to-be-changed; 0 otherwise. Pure function of the flags.
 */
int tok_login_precheck(const struct tok_info *info);

/*
 * Why a PIN change would be refused before trying: PA_E_PIN_LOCKED when the token reports
 * locked, final try (the last try is never spent) or no user PIN set (only its issuer can
 * initialise it); 0 otherwise, whether or not the PIN must be changed. Pure.
 */
int tok_pin_change_precheck(const struct tok_info *info);

/*
 * The PIN lengths the token accepts (ulMinPinLen, ulMaxPinLen): *ret_min 0 when it sets no
 * minimum, *ret_max 0 when it names no maximum. Pure.
 */
void tok_pin_len_range(const struct tok_info *info, size_t *ret_min, size_t *ret_max);
/* Is a PIN of len bytes within the token's range (and not empty)? Pure. */
bool tok_pin_len_ok(const struct tok_info *info, size_t len);

/*
 * Change the user PIN of a token that reports it must be changed (CKF_USER_PIN_TO_BE_CHANGED,
 * e.g. a transport PIN): one C_SetPIN in the token's R/W session, which must not be logged in
 * (so it is the CKU_USER PIN that changes). The flags are read again first: refused
 * (PA_E_PIN_LOCKED) on final try, locked or no user PIN, PA_E_TOKEN when the token no longer
 * asks for a change. old_pin and new_pin both NULL: the PIN pad asks for both
 * (C_SetPIN(NULL, 0, NULL, 0); the token must report CKF_PROTECTED_AUTHENTICATION_PATH).
 * PINs outside the token's length range are not sent. PA_E_PIN_INCORRECT when the token
 * rejects the old PIN or refuses the new one: never retry. Neither PIN is kept.
 */
int tok_change_pin(struct tok_token *t, const struct secret *old_pin, const struct secret *new_pin);

/*
 * Log in as the user. Reads the token flags first and refuses (PA_E_PIN_LOCKED) on final
 * try, locked or to-be-changed (change it first: tok_change_pin). pin == NULL means the
 * protected authentication path (PIN pad); then the token must report
 * CKF_PROTECTED_AUTHENTICATION_PATH. Exactly one C_Login is made;
 * PA_E_PIN_INCORRECT when the token rejects the PIN: never retry with the same PIN.
 * Already logged in counts as success. The PIN is not kept.
 */
int tok_login(struct tok_token *t, const struct secret *pin);

/* Does the token offer mechanism + size for this key type? PA_E_UNSUPPORTED otherwise. */
int tok_check_keygen(struct tok_token *t, enum tok_key_type type);
/*
 * Can the token sign a SHA-256 CSR with a key of this type, the way the engine asks it to (RSA:
 * CKM_RSA_PKCS, or CKM_RSA_PKCS_PSS with pss; EC: CKM_ECDSA over a digest made in OpenSSL)?
 * PA_E_UNSUPPORTED with the reason in tok_detail(), e.g. a card that offers only CKM_ECDSA_SHA1.
 */
int tok_check_sign(struct tok_token *t, enum tok_key_type type, bool pss);
/* A PIV card as OpenSC shows it (no key generation through PKCS#11). Pure. */
bool tok_is_piv(const struct tok_info *info);

/*
 * Generate a key pair on the token (C_GenerateKeyPair; CKA_TOKEN, CKA_PRIVATE,
 * CKA_SENSITIVE=true, CKA_EXTRACTABLE=false). Both halves get the same CKA_ID, derived from
 * the public key (SHA-1 of the public key value: RSA modulus / EC point, as most middleware
 * does) and the label. ret_id receives the CKA_ID (TOK_ID_MAX bytes of room).
 */
int tok_keygen(struct tok_token *t, enum tok_key_type type, const char *label,
               unsigned char *ret_id, size_t *ret_id_len);
/*
 * The same with the usages (TOK_USE_*) set explicitly: wanted ones true, the others false where
 * the token accepts an explicit false (tpm2-pkcs11 refuses false for some; then the template
 * leaves them to the token's default, which tok_key_custody reads back). ret_info (may be NULL)
 * receives the evidence: mechanism and slot flags.
 */
int tok_keygen_ex(struct tok_token *t, enum tok_key_type type, unsigned usage, const char *label,
                  unsigned char *ret_id, size_t *ret_id_len, struct tok_keygen_info *ret_info);

/* Read the custody attributes of the private key with this CKA_ID. */
int tok_key_custody(struct tok_token *t, const unsigned char *id, size_t id_len,
                    struct tok_custody *ret);
/*
 * The gate for a key we did NOT generate in this job: attribute proof only. PA_E_CUSTODY unless
 * sensitive, always sensitive, never extractable, not extractable, local, and its value unreadable.
 */
int tok_custody_ok(const struct tok_custody *c);
/*
 * The gate for a key this job generated itself with C_GenerateKeyPair on this token (many card
 * stacks, OpenSC's PKCS#15 layer among them, report CKA_LOCAL, CKA_SENSITIVE and friends false
 * for keys the card made): its secret value must be unreadable, CKA_EXTRACTABLE not true, and
 * it must be a private token object. PA_E_CUSTODY otherwise.
 */
int tok_custody_ok_generated(const struct tok_custody *c);
/* "sensitive=yes always_sensitive=no ..." for the record; out gets at most outlen-1 bytes. */
void tok_custody_describe(const struct tok_custody *c, char *out, size_t outlen);
/* PA_E_CUSTODY when a usage asked for (TOK_USE_*) is not on the key. */
int tok_usage_ok(const struct tok_custody *c, unsigned usage, bool ec);

/* Does a private key with this id exist? 0 yes, PA_E_TOKEN_NOT_FOUND no. ret_label optional. */
int tok_find_key(struct tok_token *t, const unsigned char *id, size_t id_len, char **ret_label);
/* Find the id of the (single) private key with this label. */
int tok_find_key_by_label(struct tok_token *t, const char *label, unsigned char *ret_id,
                          size_t *ret_id_len);

/* The public key of the key pair with this id, as an OpenSSL key (caller frees). */
int tok_public_key(struct tok_token *t, const unsigned char *id, size_t id_len, EVP_PKEY **ret);

/*
 * A signing handle for the private key with this id, through libp11's "pkcs11" ENGINE (so
 * RSASSA-PSS uses CKM_RSA_PKCS_PSS). The engine is never made OpenSSL's default. The token
 * must be logged in. Caller frees with EVP_PKEY_free() before tok_token_close().
 */
int tok_signing_key(struct tok_token *t, const unsigned char *id, size_t id_len, EVP_PKEY **ret);

/*
 * Store a certificate. With id: as the key's certificate (CKA_ID = id, CKA_LABEL = label).
 * Without (id_len 0): as a CA certificate (CKA_CERTIFICATE_CATEGORY = authority where the
 * token accepts it). An identical certificate already on the token is not written again
 * (*ret_written = false).
 */
int tok_store_cert(struct tok_token *t, X509 *cert, const unsigned char *id, size_t id_len,
                   const char *label, bool *ret_written);

/*
 * All certificates on the token (caller frees with sk_X509_pop_free(sk, X509_free)). With
 * id_len > 0 only those with that CKA_ID.
 */
int tok_list_certs(struct tok_token *t, const unsigned char *id, size_t id_len,
                   STACK_OF(X509) * *ret);

/*
 * Repair what an interrupted key generation can leave under a label that belongs to one job:
 * public keys without a private key are deleted; public keys whose CKA_ID differs from the
 * (single) private key's get its id.
 */
int tok_reconcile_label(struct tok_token *t, const char *label);

/*
 * What a token holds, counted by object class. Without a login only public objects are seen
 * (most tokens keep private keys private), so callers that must know about private keys count
 * again after tok_login(). A CA certificate is one with CKA_CERTIFICATE_CATEGORY = authority, or,
 * where the token does not say, one whose basicConstraints says CA:TRUE.
 */
struct tok_contents {
    unsigned private_keys, public_keys, secret_keys;
    unsigned user_certs; /* certificates that are not CA certificates */
    unsigned ca_certs;
    bool logged_in; /* private objects were visible when counting */
};
/* Count the objects of the selected token (one C_FindObjects sweep per class). */
int tok_token_contents(struct tok_token *t, struct tok_contents *ret);
/*
 * Count the objects of a token that is not selected, without logging in: the one initialised
 * token with which->serial and which->label (and manufacturer and model where non-empty) gets a
 * read-only session for the count, closed again. Only public objects are seen (logged_in false
 * unless the token needs no login). PA_E_TOKEN_NOT_FOUND / PA_E_TOKEN_AMBIGUOUS when not
 * exactly one token is that one.
 */
int tok_peek_contents(struct tok_ctx *ctx, const struct tok_info *which, struct tok_contents *ret);
/*
 * Blank, as pkio-agent defines it (docs/pkio-agent.8): no private, public or secret key and no
 * certificate other than CA certificates. Data objects do not count. Pure.
 */
bool tok_contents_blank(const struct tok_contents *c);

/* Delete the private and public key with this id (and nothing else). */
int tok_delete_keypair(struct tok_token *t, const unsigned char *id, size_t id_len);

/* ---- every object on a token (objects.c) ----------------------------------------------- */

enum tok_obj_class {
    TOK_OBJ_PRIVATE_KEY,
    TOK_OBJ_PUBLIC_KEY,
    TOK_OBJ_SECRET_KEY,
    TOK_OBJ_CERTIFICATE,
    TOK_OBJ_DATA,
    TOK_OBJ_OTHER
};

/* One object as tok_list_objects reads it. */
struct tok_object {
    enum tok_obj_class cls;
    unsigned char id[TOK_ID_MAX]; /* CKA_ID */
    size_t id_len;                /* 0: none, or longer than TOK_ID_MAX (then id_too_long) */
    bool id_too_long;
    char *label;      /* CKA_LABEL as the token has it (up to a NUL); "" when none */
    bool is_private;  /* CKA_PRIVATE */
    char key_type[8]; /* keys: "rsa", "ec" or "other"; "" for the other classes */
    bool ca;          /* certificates: a CA certificate, as tok_token_contents counts them */
    X509 *cert;       /* certificates: the X.509 value; NULL when not X.509 or unreadable */
};

struct tok_objects {
    size_t n;
    struct tok_object *v;
    bool logged_in; /* private objects were visible (logged in, or the token needs no login) */
};

/*
 * Every object the token's session can see, in the module's order: without a login only the
 * public ones. At most 4096 (PA_E_TOKEN beyond). An attribute the token does not give (or keeps
 * sensitive) reads as absent; a removed token is PA_E_TOKEN_GONE. Free with tok_objects_free.
 */
int tok_list_objects(struct tok_token *t, struct tok_objects **ret);
void tok_objects_free(struct tok_objects *o);
/* "private_key", "public_key", "secret_key", "certificate", "data", "other". */
const char *tok_obj_class_name(enum tok_obj_class c);

/*
 * A read-only session, without login, on the initialised token that which describes: same slot,
 * serial and label. Nothing can be written through it. PA_E_TOKEN_NOT_FOUND when that token is no
 * longer there. Close with tok_token_close.
 */
int tok_open_readonly(struct tok_ctx *ctx, const struct tok_info *which, struct tok_token **ret);

#endif
