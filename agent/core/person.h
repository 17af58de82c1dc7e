/* SPDX-License-Identifier: Apache-2.0 */
/*
 * person.h - is this the same person, for the same kind of certificate? Used before a re-key
 * (`enroll --replaces`) so that a typo at the desk never revokes someone else's certificate.
 * Pure functions, no I/O; unit-tested.
 */
#ifndef PKIO_PERSON_H
#define PKIO_PERSON_H

#include <stdbool.h>
#include <stddef.h>

/* A certificate holder: an individual id (CertCentral's, 0 = unknown) and/or names + e-mail. */
struct person {
    long id;
    const char *first_name, *last_name, *email; /* NULL = unknown */
};

/*
 * Normalise a name or e-mail for comparison the way a person reads it: leading and trailing
 * white space dropped, inner runs of white space made one space, letters folded to lower case
 * (ASCII, Latin-1 and Latin Extended-A, so "JOSÉ  de Vries" equals "José de Vries"). Invalid
 * UTF-8 is compared byte for byte. out receives at most outlen-1 bytes; 0 or -1 (too long).
 */
int person_normalise(const char *in, char *out, size_t outlen);

enum person_match {
    PERSON_SAME,      /* the same individual */
    PERSON_DIFFERENT, /* certainly someone else */
    PERSON_UNKNOWN,   /* not enough on one side to tell (e.g. only an id here, only names there) */
};

/*
 * Compare: when both carry an individual id, the ids decide. Otherwise first name, last name
 * and e-mail must all be known on both sides and equal after person_normalise.
 */
enum person_match person_compare(const struct person *a, const struct person *b);

/* "Jan Jansen <jan@example.nl>", "individual 123", or "an unknown person" for messages. */
void person_describe(const struct person *p, char *out, size_t outlen);

/*
 * The product family of a CertCentral product id: the PKIo person authentication/encryption
 * products are one family, the PKIo person signing products another; any other id is a family
 * of its own. A re-key stays within one family.
 */
const char *person_product_family(const char *product);

#endif
