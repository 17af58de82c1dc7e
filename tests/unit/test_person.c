/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_person.c - same person or not (re-key safety): normalisation of names and e-mail,
 * the id rule, unknown when one side lacks data, product families, messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "person.h"

static void test_normalise(void **state)
{
    char out[64];

    (void)state;
    assert_int_equal(person_normalise("  Johanna \t Maria\n", out, sizeof(out)), 0);
    assert_string_equal(out, "johanna maria");
    assert_int_equal(person_normalise("JOSÉ ÉLODIE ÇA ŒUVRE Ÿ", out, sizeof(out)), 0);
    assert_string_equal(out, "josé élodie ça œuvre ÿ");
    assert_int_equal(person_normalise("", out, sizeof(out)), 0);
    assert_string_equal(out, "");
    /* invalid UTF-8 is kept byte for byte */
    assert_int_equal(person_normalise("A\xff"
                                      "B",
                                      out, sizeof(out)),
                     0);
    assert_string_equal(out, "a\xff"
                             "b");
    assert_int_equal(person_normalise("abcdefgh", out, 5), -1);
}

static void test_compare(void **state)
{
    struct person a = {0, "Johanna Maria", "de Vries", "j.devries@example.nl"};
    struct person b = {0, "JOHANNA  MARIA", " De Vries", "J.DeVries@Example.NL"};
    struct person c = {0, "Pieter", "Bakker", "p.bakker@example.nl"};
    struct person only_id = {42, NULL, NULL, NULL};
    struct person id42 = {42, "Pieter", "Bakker", "p.bakker@example.nl"};
    struct person id43 = {43, "Johanna Maria", "de Vries", "j.devries@example.nl"};
    struct person no_mail = {0, "Johanna Maria", "de Vries", NULL};

    (void)state;
    assert_int_equal(person_compare(&a, &b), PERSON_SAME);
    assert_int_equal(person_compare(&a, &c), PERSON_DIFFERENT);
    /* ids decide when both have one, whatever the names say */
    assert_int_equal(person_compare(&only_id, &id42), PERSON_SAME);
    assert_int_equal(person_compare(&id42, &id43), PERSON_DIFFERENT);
    /* an id on one side only, or a missing e-mail: cannot tell */
    assert_int_equal(person_compare(&only_id, &a), PERSON_UNKNOWN);
    assert_int_equal(person_compare(&no_mail, &a), PERSON_UNKNOWN);
    /* the same names with another e-mail is another person */
    b.email = "someone.else@example.nl";
    assert_int_equal(person_compare(&a, &b), PERSON_DIFFERENT);
}

static void test_describe(void **state)
{
    struct person a = {0, "Johanna", "de Vries", "j@example.nl"};
    struct person id = {7, NULL, NULL, NULL};
    struct person none = {0, NULL, NULL, NULL};
    struct person ctl = {0, "Evil\x1b[2J", "Name", NULL};
    char out[128];

    (void)state;
    person_describe(&a, out, sizeof(out));
    assert_string_equal(out, "Johanna de Vries <j@example.nl>");
    person_describe(&id, out, sizeof(out));
    assert_string_equal(out, "individual 7");
    person_describe(&none, out, sizeof(out));
    assert_string_equal(out, "an unknown person");
    person_describe(&ctl, out, sizeof(out));
    assert_null(strchr(out, '\x1b'));
}

static void test_family(void **state)
{
    (void)state;
    assert_string_equal(person_product_family("pkio_organisation_person_prof"),
                        person_product_family("pkio_private_person_prof"));
    assert_string_equal(person_product_family("pkio_organisation_person_prof"),
                        person_product_family("pkio_burger"));
    assert_string_not_equal(person_product_family("pkio_organisation_person_prof"),
                            person_product_family("pkio_qualified_burger"));
    assert_string_equal(person_product_family("pkio_qualified_burger"),
                        person_product_family("pkio_qualified_organisation_person_prof"));
    assert_string_equal(person_product_family("ssl_plus"), "ssl_plus");
    assert_string_equal(person_product_family(NULL), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalise),
        cmocka_unit_test(test_compare),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_family),
    };

    return cmocka_run_group_tests_name("person", tests, NULL, NULL);
}
