/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test_queue.c - queue binding (agent/core/queue.c): which entry may go to which token. An entry
 * bound by --serial or by the token attributes of --token goes only to a token matching every
 * attribute it names; an unbound entry only to a blank token; entries of the older format (serial
 * only, token URI beside it) are bound by that URI too; a binding that cannot be read binds to
 * nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
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
    int r = queue_take(tmpdir, t, blank, &e, NULL, 0);

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
    assert_int_equal(chmod(path, 0640), 0); /* as the queue writes them */
}

static bool rejected_for(const char *name, const char *why);

/* Reasons in queue/rejected/ (each rejected entry has one). */
static size_t count_rejected(void)
{
    struct queue_rejected *v = NULL;
    size_t n = 0;

    assert_int_equal(queue_rejected_list(tmpdir, &v, &n), 0);
    for (size_t i = 0; i < n; i++)
        assert_true(v[i].reason[0] != '\0');
    free(v);
    return n;
}

static void test_take_format1_entry_bound_by_its_uri(void **state)
{
    struct tok_info alice = token("alice", "A1", "SoftHSM project", "SoftHSM v2");
    struct tok_info bob = token("bob", "B1", "SoftHSM project", "SoftHSM v2");
    char json[8400];

    (void)state;
    assert_int_equal(queue_dir_prepare(tmpdir), 0);
    snprintf(json, sizeof(json),
             "{\"format\":1,\"id\":\"0123456789abcdef0123456789abcdef\",\"request\":"
             "\"%s/queue/0123456789abcdef0123456789abcdef.request.json\","
             "\"serial\":null,\"token_uri\":\"pkcs11:token=alice?pin-source=/run/pin\","
             "\"created\":1}",
             tmpdir);
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
                 "{\"format\":2,\"id\":\"%031zx%c\",\"request\":"
                 "\"%s/queue/%031zx%c.request.json\",\"bind\":%s,\"created\":1}",
                 i, 'a', tmpdir, i, 'a', binds[i]);
        snprintf(name, sizeof(name), "000000000001-%031zx%c.json", i, 'a');
        write_entry(name, json);
    }
    assert_string_equal(take(&bob, true), "");
    assert_int_equal(count_rejected(), sizeof(binds) / sizeof(binds[0]));
    for (size_t i = 0; i < sizeof(binds) / sizeof(binds[0]); i++) {
        snprintf(name, sizeof(name), "000000000001-%031zx%c.json", i, 'a');
        assert_true(rejected_for(name, "binding"));
    }
}

/* The path of queue/NAME (static). */
static const char *qpath(const char *name)
{
    static char p[4400];

    snprintf(p, sizeof(p), "%s/queue/%s", tmpdir, name);
    return p;
}

/* A valid unbound entry's JSON for id (its request copy is where the queue keeps it). */
static void entry_text(char *json, size_t len, const char *id, const char *request_path)
{
    char req[4400];

    if (!request_path) {
        snprintf(req, sizeof(req), "%s/queue/%s.request.json", tmpdir, id);
        request_path = req;
    }
    snprintf(json, len,
             "{\"format\":2,\"id\":\"%s\",\"request\":\"%s\",\"bind\":null,\"created\":1}", id,
             request_path);
}

static bool rejected_for(const char *name, const char *why)
{
    struct queue_rejected *v = NULL;
    size_t n = 0;
    bool found = false;

    assert_int_equal(queue_rejected_list(tmpdir, &v, &n), 0);
    for (size_t i = 0; i < n; i++)
        found |= strcmp(v[i].name, name) == 0 && strstr(v[i].reason, why) != NULL;
    free(v);
    return found;
}

static void test_unusable_entries_rejected(void **state)
{
    struct tok_info bob = token("bob", "B1", "SoftHSM project", "SoftHSM v2");
    const char *link_name = "000000000001-11111111111111111111111111111111.json";
    const char *world_name = "000000000001-22222222222222222222222222222222.json";
    const char *hard_name = "000000000001-33333333333333333333333333333333.json";
    const char *elsewhere_name = "000000000001-44444444444444444444444444444444.json";
    const char *garbage_name = "000000000001-55555555555555555555555555555555.json";
    char json[8400], outside[4400], good[33];

    (void)state;
    assert_int_equal(queue_dir_prepare(tmpdir), 0);
    /* A symbolic link to a perfectly good entry elsewhere. */
    entry_text(json, sizeof(json), "11111111111111111111111111111111", NULL);
    snprintf(outside, sizeof(outside), "%s/elsewhere.json", tmpdir);
    write_entry("../elsewhere.json", json);
    assert_int_equal(symlink(outside, qpath(link_name)), 0);
    /* Readable by every user. */
    entry_text(json, sizeof(json), "22222222222222222222222222222222", NULL);
    write_entry(world_name, json);
    assert_int_equal(chmod(qpath(world_name), 0644), 0);
    /* A second name for a file (a hard link). */
    entry_text(json, sizeof(json), "33333333333333333333333333333333", NULL);
    write_entry("../hard.json", json);
    snprintf(outside, sizeof(outside), "%s/hard.json", tmpdir);
    assert_int_equal(link(outside, qpath(hard_name)), 0);
    /* A request that is not the entry's own copy. */
    entry_text(json, sizeof(json), "44444444444444444444444444444444", "/etc/passwd");
    write_entry(elsewhere_name, json);
    write_entry(garbage_name, "{not json");
    write_entry("evil.json", "{}");
    memcpy(good, add(NULL, NULL), 33); /* and one that is fine, queued last */
    assert_string_equal(take(&bob, true), good);
    assert_string_equal(take(&bob, true), "");
    assert_true(rejected_for(link_name, "symbolic link"));
    assert_true(rejected_for(world_name, "every user"));
    assert_true(rejected_for(hard_name, "hard links"));
    assert_true(rejected_for(elsewhere_name, "own copy"));
    assert_true(rejected_for(garbage_name, "JSON"));
    assert_true(rejected_for("evil.json", "file name"));
    assert_int_equal(count_rejected(), 6);
    assert_int_equal(access(qpath(link_name), F_OK) == 0 || errno != ENOENT, 0); /* moved */
}

static void test_foreign_owner_rejected(void **state)
{
    struct tok_info bob = token("bob", "B1", "SoftHSM project", "SoftHSM v2");
    const char *name = "000000000001-66666666666666666666666666666666.json";
    char json[8400];

    (void)state;
    if (geteuid() != 0)
        skip(); /* giving a file away needs root */
    assert_int_equal(queue_dir_prepare(tmpdir), 0);
    entry_text(json, sizeof(json), "66666666666666666666666666666666", NULL);
    write_entry(name, json);
    assert_int_equal(chown(qpath(name), 65534, 65534), 0);
    assert_string_equal(take(&bob, true), "");
    assert_true(rejected_for(name, "another user"));
}

static mode_t mode_of(const char *path)
{
    struct stat st;

    assert_int_equal(lstat(path, &st), 0);
    return st.st_mode & 07777;
}

static void test_entry_modes_and_officer(void **state)
{
    struct queue_entry *v = NULL;
    char id[33], err[256] = "", name[64];
    size_t n = 0;

    (void)state;
    assert_int_equal(
        queue_add_text(tmpdir, "{\"x\":1}", 7, NULL, NULL, "alice", 1234, id, err, sizeof(err)), 0);
    assert_int_equal(queue_list(tmpdir, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].id, id);
    assert_string_equal(v[0].officer, "alice");
    assert_int_equal(v[0].officer_uid, 1234);
    assert_string_equal(v[0].request, qpath(strcat(strcpy(name, id), ".request.json")));
    assert_int_equal(mode_of(v[0].request), 0600); /* may hold card data */
    queue_list_free(v, n);
    snprintf(name, sizeof(name), "%s.request.json", id);
    assert_true(queue_holds_request(tmpdir, qpath(name), NULL));
}

static void test_forget_request(void **state)
{
    struct queue_entry *v = NULL;
    char other[4200], other_copy[4400], buf[64], victim[4400];
    size_t n = 0;
    ssize_t got;
    int fd;

    (void)state;
    add(NULL, NULL);
    assert_int_equal(queue_list(tmpdir, &v, &n), 0);
    assert_int_equal(n, 1);
    fd = open(v[0].request, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(queue_forget_request(tmpdir, v[0].request), 0);
    assert_int_equal(access(v[0].request, F_OK), -1);
    got = pread(fd, buf, sizeof(buf), 0); /* what the file held was overwritten first */
    for (ssize_t i = 0; i < got; i++)
        assert_int_equal(buf[i], 0);
    close(fd);
    assert_int_equal(queue_forget_request(tmpdir, v[0].request), 0); /* already gone */
    /* Nothing outside the queue is touched: the officer's own file, a copy's name elsewhere. */
    assert_int_equal(queue_forget_request(tmpdir, request), 1);
    assert_int_equal(access(request, F_OK), 0);
    snprintf(other, sizeof(other), "%.4000s/other", tmpdir);
    assert_int_equal(mkdir(other, 0700), 0);
    snprintf(other_copy, sizeof(other_copy), "%s/%s.request.json", other, v[0].id);
    write_entry("../other/x", "{}");
    assert_int_equal(rename(qpath("../other/x"), other_copy), 0);
    assert_int_equal(queue_forget_request(tmpdir, other_copy), 1);
    assert_int_equal(access(other_copy, F_OK), 0);
    /* A symbolic link in the queue under a copy's name is refused, its target untouched. */
    snprintf(victim, sizeof(victim), "%s/queue/%s.request.json", tmpdir, v[0].id);
    assert_int_equal(symlink(request, victim), 0);
    assert_int_equal(queue_forget_request(tmpdir, victim), PA_E_REFUSED);
    assert_int_equal(access(request, F_OK), 0);
    queue_list_free(v, n);
}

static void test_taken_find_and_remove(void **state)
{
    struct tok_info alice = token("alice", "A1", "SoftHSM project", "SoftHSM v2");
    struct queue_bind ba = bind_of("A1", NULL);
    struct queue_entry e, *v = NULL;
    char id[33], req[4400];
    size_t n = 0;

    (void)state;
    memcpy(id, add(&ba, NULL), 33);
    snprintf(req, sizeof(req), "%s/queue/%s.request.json", tmpdir, id);
    assert_int_equal(queue_taken_find(tmpdir, req, &e), PA_E_TOKEN_NOT_FOUND);
    assert_string_equal(take(&alice, false), id);
    assert_int_equal(queue_taken_find(tmpdir, req, &e), 0);
    assert_string_equal(e.id, id);
    queue_entry_clear(&e);
    assert_int_equal(queue_taken_list(tmpdir, &v, &n), 0);
    assert_int_equal(n, 1);
    queue_list_free(v, n);
    assert_int_equal(queue_taken_remove(tmpdir, id), 0);
    assert_int_equal(queue_taken_remove(tmpdir, id), 0);
    assert_int_equal(queue_taken_find(tmpdir, req, &e), PA_E_TOKEN_NOT_FOUND);
    assert_int_equal(queue_taken_list(tmpdir, &v, &n), 0);
    assert_int_equal(n, 0);
    queue_list_free(v, n);
    queue_bind_clear(&ba);
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
        cmocka_unit_test_setup_teardown(test_unusable_entries_rejected, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_foreign_owner_rejected, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_entry_modes_and_officer, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_forget_request, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_taken_find_and_remove, dir_setup, dir_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
