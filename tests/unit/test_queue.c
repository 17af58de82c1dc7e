/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test_queue.c - queue binding (agent/queue.c): which entry may go to which token. An entry bound
 * by --serial or by the token attributes of --token goes only to a token matching every attribute
 * it names; an unbound entry only to a blank token; entries of the older format (serial only,
 * token URI beside it) are bound by that URI too; a binding that cannot be read binds to nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pa_err.h"
#include "queue.h"
#include "tok.h"

static char tmpdir[4096];
static char request[4200];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int dir_setup(void **state)
{
    FILE *f;

    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "%s/pkio-queue-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(request, sizeof(request), "%s/request.json", tmpdir);
    f = fopen(request, "w");
    if (!f)
        return -1;
    fputs("{\"certificate\": {}}\n", f);
    return fclose(f);
}

static int dir_teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static struct tok_info token(const char *label, const char *serial, const char *manufacturer,
                             const char *model)
{
    struct tok_info t;

    memset(&t, 0, sizeof(t));
    snprintf(t.label, sizeof(t.label), "%s", label);
    snprintf(t.serial, sizeof(t.serial), "%s", serial);
    snprintf(t.manufacturer, sizeof(t.manufacturer), "%s", manufacturer);
    snprintf(t.model, sizeof(t.model), "%s", model);
    t.token_initialized = true;
    return t;
}

static struct queue_bind bind_of(const char *serial, const char *uri)
{
    struct queue_bind b;
    char err[256] = "";

    if (queue_bind_from(serial, uri, &b, err, sizeof(err)) != 0)
        fail_msg("queue_bind_from(%s, %s): %s", serial ? serial : "NULL", uri ? uri : "NULL", err);
    return b;
}

/* ---- queue_bind_from ------------------------------------------------------------------------ */

static void test_bind_serial_only(void **state)
{
    struct queue_bind b = bind_of("7de46fa857d27f6c", NULL);

    (void)state;
    assert_string_equal(b.serial, "7de46fa857d27f6c");
    assert_null(b.label);
    assert_null(b.manufacturer);
    assert_null(b.model);
    assert_false(queue_bind_empty(&b));
    queue_bind_clear(&b);
}

static void test_bind_uri_attributes(void **state)
{
    struct queue_bind b =
        bind_of(NULL, "pkcs11:token=alice%20b;manufacturer=ACME;model=Card%201;serial=0042?"
                      "pin-source=/run/pin");

    (void)state;
    assert_string_equal(b.label, "alice b");
    assert_string_equal(b.manufacturer, "ACME");
    assert_string_equal(b.model, "Card 1");
    assert_string_equal(b.serial, "0042");
    queue_bind_clear(&b);
    b = bind_of(NULL, "pkcs11:token=alice");
    assert_string_equal(b.label, "alice");
    assert_null(b.serial);
    queue_bind_clear(&b);
}

static void test_bind_uri_without_token_attributes_is_unbound(void **state)
{
    const char *uris[] = {"pkcs11:", "pkcs11:?pin-source=/run/pin", "pkcs11:object=pkio-agent",
                          "pkcs11:id=%01%02;type=private"};

    (void)state;
    for (size_t i = 0; i < sizeof(uris) / sizeof(uris[0]); i++) {
        struct queue_bind b = bind_of(NULL, uris[i]);

        if (!queue_bind_empty(&b))
            fail_msg("%s should bind nothing", uris[i]);
        queue_bind_clear(&b);
    }
    {
        struct queue_bind b = bind_of(NULL, NULL);

        assert_true(queue_bind_empty(&b));
        queue_bind_clear(&b);
    }
}

static void test_bind_refusals(void **state)
{
    struct queue_bind b;
    char err[256];

    (void)state;
    /* The two serials differ: which token was meant? */
    assert_int_equal(queue_bind_from("AAAA", "pkcs11:serial=BBBB", &b, err, sizeof(err)),
                     PA_E_USAGE);
    assert_non_null(strstr(err, "differ"));
    /* slot-id changes between insertions: it cannot bind a queued request. */
    assert_int_equal(queue_bind_from(NULL, "pkcs11:slot-id=3", &b, err, sizeof(err)), PA_E_USAGE);
    assert_non_null(strstr(err, "slot-id"));
    /* A PIN never goes into the state directory. */
    assert_int_equal(queue_bind_from(NULL, "pkcs11:token=a?pin-value=1234", &b, err, sizeof(err)),
                     PA_E_USAGE);
    assert_int_equal(queue_bind_from(NULL, "not-a-uri", &b, err, sizeof(err)), PA_E_USAGE);
    /* The same serial twice is fine. */
    b = bind_of("AAAA", "pkcs11:token=alice;serial=AAAA");
    assert_string_equal(b.serial, "AAAA");
    assert_string_equal(b.label, "alice");
    queue_bind_clear(&b);
}

/* ---- matching ------------------------------------------------------------------------------- */

static void test_matches_all_named_attributes(void **state)
{
    struct tok_info alice = token("alice", "0042", "ACME", "Card 1");
    struct tok_info other = token("alice", "0043", "ACME", "Card 1");
    struct queue_bind b = bind_of(NULL, "pkcs11:token=alice;serial=0042;manufacturer=ACME");

    (void)state;
    assert_true(queue_bind_matches(&b, &alice));
    assert_false(queue_bind_matches(&b, &other)); /* same label, another serial */
    queue_bind_clear(&b);
    b = bind_of(NULL, "pkcs11:token=alice");
    assert_true(queue_bind_matches(&b, &alice));
    assert_true(queue_bind_matches(&b, &other));
    queue_bind_clear(&b);
    b = bind_of(NULL, "pkcs11:token=Alice"); /* exact, case and all */
    assert_false(queue_bind_matches(&b, &alice));
    queue_bind_clear(&b);
    b = bind_of(NULL, "pkcs11:token=alic");
    assert_false(queue_bind_matches(&b, &alice));
    queue_bind_clear(&b);
    b = bind_of(NULL, "pkcs11:model=Card%202");
    assert_false(queue_bind_matches(&b, &alice));
    queue_bind_clear(&b);
}

static void test_fits(void **state)
{
    struct tok_info bob = token("bob", "0001", "SoftHSM project", "SoftHSM v2");
    struct tok_info alice = token("alice", "0002", "SoftHSM project", "SoftHSM v2");
    struct queue_entry e;

    (void)state;
    memset(&e, 0, sizeof(e));
    /* Unbound: a blank token only. */
    assert_true(queue_entry_fits(&e, &bob, true));
    assert_false(queue_entry_fits(&e, &bob, false));
    assert_false(queue_bind_matches(&e.bind, &bob)); /* an empty binding matches no token */
    /* Bound: that token only, blank or not; never another one, even a blank one. */
    e.bind = bind_of(NULL, "pkcs11:token=alice");
    assert_true(queue_entry_fits(&e, &alice, false));
    assert_true(queue_entry_fits(&e, &alice, true));
    assert_false(queue_entry_fits(&e, &bob, true));
    assert_false(queue_entry_fits(&e, &bob, false));
    queue_bind_clear(&e.bind);
}

static void test_format(void **state)
{
    struct queue_bind b = bind_of("0042", "pkcs11:token=alice;model=Card");
    char buf[128];

    (void)state;
    queue_bind_format(&b, buf, sizeof(buf));
    assert_string_equal(buf, "token=alice serial=0042 model=Card");
    queue_bind_clear(&b);
    memset(&b, 0, sizeof(b));
    queue_bind_format(&b, buf, sizeof(buf));
    assert_string_equal(buf, "");
}

/* ---- queue_take on a real queue directory --------------------------------------------------- */

static char *add(const struct queue_bind *b, const char *uri)
{
    static char id[33];
    char err[256] = "";

    if (queue_add(tmpdir, request, b, uri, id, err, sizeof(err)) != 0)
        fail_msg("queue_add: %s", err);
    return id;
}

/* Take for this token; the id taken, or "" for none. */
static const char *take(const struct tok_info *t, bool blank)
{
    static char id[33];
    struct queue_entry e;
    int r = queue_take(tmpdir, t, blank, &e);

    id[0] = '\0';
    if (r == PA_E_TOKEN_NOT_FOUND)
        return id;
    assert_int_equal(r, 0);
    memcpy(id, e.id, sizeof(id));
    queue_entry_clear(&e);
    return id;
}

static void test_take_bound_and_unbound(void **state)
{
    struct tok_info alice = token("alice", "A1", "SoftHSM project", "SoftHSM v2");
    struct tok_info bob = token("bob", "B1", "SoftHSM project", "SoftHSM v2");
    struct tok_info carol = token("carol", "C1", "SoftHSM project", "SoftHSM v2");
    struct tok_info frank = token("frank", "F1", "SoftHSM project", "SoftHSM v2");
    struct queue_bind ba = bind_of(NULL, "pkcs11:token=alice"), bf = bind_of("F1", NULL);
    char a[33], f[33], u[33];

    (void)state;
    memcpy(a, add(&ba, "pkcs11:token=alice"), 33);
    memcpy(f, add(&bf, NULL), 33);
    memcpy(u, add(NULL, NULL), 33);
    /* carol is in use: nothing is hers. */
    assert_string_equal(take(&carol, false), "");
    /* bob is blank: the unbound entry, never alice's or frank's. */
    assert_string_equal(take(&bob, true), u);
    assert_string_equal(take(&bob, true), "");
    /* alice, not blank, still gets the entry bound to her; frank his. */
    assert_string_equal(take(&alice, false), a);
    assert_string_equal(take(&frank, true), f);
    assert_string_equal(take(&frank, true), "");
    /* Put back, it is there for alice again, and still not for bob. */
    assert_int_equal(queue_untake(tmpdir, a), 0);
    assert_string_equal(take(&bob, true), "");
    assert_string_equal(take(&alice, true), a);
    queue_bind_clear(&ba);
    queue_bind_clear(&bf);
}

static void test_take_bound_wins_over_unbound(void **state)
{
    struct tok_info alice = token("alice", "A1", "SoftHSM project", "SoftHSM v2");
    struct queue_bind ba = bind_of(NULL, "pkcs11:serial=A1");
    char u[33], a[33];

    (void)state;
    memcpy(u, add(NULL, NULL), 33);
    memcpy(a, add(&ba, NULL), 33);
    assert_string_equal(take(&alice, true), a); /* blank too, but hers comes first */
    assert_string_equal(take(&alice, true), u);
    queue_bind_clear(&ba);
}

/* Write an entry file by hand (older format or damaged). */
static void write_entry(const char *name, const char *json)
{
    char path[4300];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/queue/%s", tmpdir, name);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(json, fp);
    assert_int_equal(fclose(fp), 0);
}

static void test_take_format1_entry_bound_by_its_uri(void **state)
{
    struct tok_info alice = token("alice", "A1", "SoftHSM project", "SoftHSM v2");
    struct tok_info bob = token("bob", "B1", "SoftHSM project", "SoftHSM v2");
    char json[8400];

    (void)state;
    assert_int_equal(queue_dir_prepare(tmpdir), 0);
    snprintf(json, sizeof(json),
             "{\"format\":1,\"id\":\"0123456789abcdef0123456789abcdef\",\"request\":\"%s\","
             "\"serial\":null,\"token_uri\":\"pkcs11:token=alice?pin-source=/run/pin\","
             "\"created\":1}",
             request);
    write_entry("000000000001-0123456789abcdef0123456789abcdef.json", json);
    /* Before, this was first-come: the bug. Now it is alice's. */
    assert_string_equal(take(&bob, true), "");
    assert_string_equal(take(&alice, false), "0123456789abcdef0123456789abcdef");
}

static void test_take_bad_binding_never_first_come(void **state)
{
    struct tok_info bob = token("bob", "B1", "SoftHSM project", "SoftHSM v2");
    /* Each would bind bob, or nothing, if read leniently; bob is blank and serial B1. */
    const char *binds[] = {"{}",
                           "{\"token\":7}",
                           "{\"label\":\"bob\"}",
                           "\"bob\"",
                           "{\"serial\":\"B1\",\"extra\":\"x\"}",
                           "[]"};
    char json[8400], name[64];

    (void)state;
    assert_int_equal(queue_dir_prepare(tmpdir), 0);
    for (size_t i = 0; i < sizeof(binds) / sizeof(binds[0]); i++) {
        snprintf(json, sizeof(json),
                 "{\"format\":2,\"id\":\"%031zx%c\",\"request\":\"%s\",\"bind\":%s,"
                 "\"created\":1}",
                 i, 'a', request, binds[i]);
        snprintf(name, sizeof(name), "000000000001-%031zx%c.json", i, 'a');
        write_entry(name, json);
    }
    assert_string_equal(take(&bob, true), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bind_serial_only),
        cmocka_unit_test(test_bind_uri_attributes),
        cmocka_unit_test(test_bind_uri_without_token_attributes_is_unbound),
        cmocka_unit_test(test_bind_refusals),
        cmocka_unit_test(test_matches_all_named_attributes),
        cmocka_unit_test(test_fits),
        cmocka_unit_test(test_format),
        cmocka_unit_test_setup_teardown(test_take_bound_and_unbound, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_take_bound_wins_over_unbound, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_take_format1_entry_bound_by_its_uri, dir_setup,
                                        dir_teardown),
        cmocka_unit_test_setup_teardown(test_take_bad_binding_never_first_come, dir_setup,
                                        dir_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
