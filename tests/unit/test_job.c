/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_job.c - job records (agent/core/job.c): states and transitions, the JSON format, files,
 * prefix lookup, listing and locks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "job.h"
#include "pa_err.h"

/* Fill a char array field (the value must fit). */
#define SET(field, value)                                                                          \
    assert_true(snprintf((field), sizeof(field), "%s", (value)) < (int)sizeof(field))

static char tmpdir[4096]; /* private to this process: parallel-safe */
static char state_dir[4200];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Each test gets an empty directory of its own; STATE_DIR is tmpdir/state (prepared). */
static int dir_setup(void **state)
{
    const char *base = getenv("TMPDIR");
    char err[256];

    (void)state;
    if (!base || !*base)
        base = "/tmp";
    if (snprintf(tmpdir, sizeof(tmpdir), "%s/pkio-test-job.XXXXXX", base) >= (int)sizeof(tmpdir))
        return -1;
    if (!mkdtemp(tmpdir))
        return -1;
    (void)snprintf(state_dir, sizeof(state_dir), "%s/state", tmpdir);
    return job_dir_prepare(state_dir, err, sizeof(err)) == 0 ? 0 : -1;
}

static int dir_teardown(void **state)
{
    (void)state;
    (void)chmod(tmpdir, 0700);
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* STATE_DIR/jobs/name in a static buffer (one of two). */
static const char *job_file(const char *name)
{
    static char paths[2][4300];
    static int n;
    char *p = paths[n++ & 1];

    (void)snprintf(p, sizeof(paths[0]), "%s/jobs/%s", state_dir, name);
    return p;
}

static void write_file(const char *path, const char *data)
{
    FILE *f = fopen(path, "we");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, strlen(data), f), strlen(data));
    assert_int_equal(fclose(f), 0);
}

static mode_t mode_of(const char *path)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

/* A job with every field set to a distinct non-default value. */
static struct job *full_job(void)
{
    struct job *j = NULL;

    assert_int_equal(job_new(&j), 0);
    j->created = 1700000000;
    j->history[0].at = 1700000000;
    SET(j->token_serial, "0123456789abcdef");
    SET(j->token_label, "PKIo token \"kees\" \xc3\xa9");
    SET(j->token_model, "SoftHSM v2");
    SET(j->token_manufacturer, "SoftHSM project");
    SET(j->key_type, "rsa:3072");
    SET(j->key_label, "pkio-auth-2024");
    SET(j->key_id_hex, "0A1b2c3D");
    SET(j->spki_sha256, "1111111111111111111111111111111111111111111111111111111111111111");
    j->custody_ok = true;
    assert_int_equal(job_set_str(&j->csr_pem, "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n"
                                              "-----END CERTIFICATE REQUEST-----\n"),
                     0);
    SET(j->csr_sha256, "2222222222222222222222222222222222222222222222222222222222222222");
    j->pss = true;
    assert_int_equal(job_set_str(&j->product, "pkio_organisation_person_prof"), 0);
    assert_int_equal(job_set_str(&j->request_path, "/etc/pkio-agent/requests/kees.json"), 0);
    SET(j->request_sha256, "3333333333333333333333333333333333333333333333333333333333333333");
    j->order_attempt_at = 1700000100;
    j->order_id = 123456789;
    j->certificate_id = 987654321;
    SET(j->order_status, "needs_approval");
    j->next_poll = 1700000200;
    j->poll_interval_s = 37.25;
    assert_int_equal(job_set_str(&j->cert_pem, "-----BEGIN CERTIFICATE-----\nMIIC\n"
                                               "-----END CERTIFICATE-----\n"),
                     0);
    SET(j->cert_serial, "7F00AB");
    j->replaces_certificate_id = 555;
    j->replaces_order_id = 444;
    j->old_revoked = true;
    assert_int_equal(job_set_error(j, "CertCentral said: no"), 0);
    assert_int_equal(job_transition(j, JOB_KEY_READY, "key %s", "generated"), 0);
    assert_int_equal(job_note(j, "waiting: %s", "needs_approval"), 0);
    return j;
}

static void assert_jobs_equal(const struct job *a, const struct job *b)
{
    assert_string_equal(a->id, b->id);
    assert_int_equal(a->state, b->state);
    assert_int_equal(a->created, b->created);
    assert_int_equal(a->updated, b->updated);
    assert_string_equal(a->token_serial, b->token_serial);
    assert_string_equal(a->token_label, b->token_label);
    assert_string_equal(a->token_model, b->token_model);
    assert_string_equal(a->token_manufacturer, b->token_manufacturer);
    assert_string_equal(a->key_type, b->key_type);
    assert_string_equal(a->key_label, b->key_label);
    assert_string_equal(a->key_id_hex, b->key_id_hex);
    assert_string_equal(a->spki_sha256, b->spki_sha256);
    assert_int_equal(a->custody_ok, b->custody_ok);
    assert_string_equal(a->csr_pem, b->csr_pem);
    assert_string_equal(a->csr_sha256, b->csr_sha256);
    assert_int_equal(a->pss, b->pss);
    assert_string_equal(a->product, b->product);
    assert_string_equal(a->request_path, b->request_path);
    assert_string_equal(a->request_sha256, b->request_sha256);
    assert_int_equal(a->order_attempt_at, b->order_attempt_at);
    assert_int_equal(a->order_id, b->order_id);
    assert_int_equal(a->certificate_id, b->certificate_id);
    assert_string_equal(a->order_status, b->order_status);
    assert_int_equal(a->next_poll, b->next_poll);
    assert_true(a->poll_interval_s == b->poll_interval_s);
    assert_string_equal(a->cert_pem, b->cert_pem);
    assert_string_equal(a->cert_serial, b->cert_serial);
    assert_int_equal(a->replaces_certificate_id, b->replaces_certificate_id);
    assert_int_equal(a->replaces_order_id, b->replaces_order_id);
    assert_int_equal(a->old_revoked, b->old_revoked);
    assert_string_equal(a->last_error, b->last_error);
    assert_int_equal(a->nhistory, b->nhistory);
    for (size_t i = 0; i < a->nhistory; i++) {
        assert_int_equal(a->history[i].at, b->history[i].at);
        assert_int_equal(a->history[i].state, b->history[i].state);
        if (a->history[i].note)
            assert_string_equal(a->history[i].note, b->history[i].note);
        else
            assert_null(b->history[i].note);
    }
}

/* ---- states and transitions ----------------------------------------------------------- */

static void test_state_names(void **state)
{
    enum job_state s;

    (void)state;
    for (int i = 0; i < JOB_STATE__MAX; i++) {
        assert_int_equal(job_state_parse(job_state_name((enum job_state)i), &s), 0);
        assert_int_equal(s, i);
    }
    assert_string_equal(job_state_name(JOB_KEY_READY), "key_ready");
    assert_string_equal(job_state_name(JOB_CANCELED), "canceled");
    assert_int_equal(job_state_parse("bogus", &s), PA_E_JOB);
    assert_int_equal(job_state_parse("NEW", &s), PA_E_JOB);
    assert_int_equal(job_state_parse(NULL, &s), PA_E_JOB);
    assert_true(job_state_is_terminal(JOB_DONE));
    assert_true(job_state_is_terminal(JOB_FAILED));
    assert_true(job_state_is_terminal(JOB_CANCELED));
    assert_false(job_state_is_terminal(JOB_INSTALLED));
    assert_false(job_state_is_terminal(JOB_NEW));
}

static void test_new(void **state)
{
    struct job *a = NULL, *b = NULL;
    time_t before = time(NULL);

    (void)state;
    assert_int_equal(job_new(&a), 0);
    assert_int_equal(job_new(&b), 0);
    assert_int_equal(strlen(a->id), 32);
    assert_int_equal(strspn(a->id, "0123456789abcdef"), 32);
    assert_string_not_equal(a->id, b->id);
    assert_int_equal(a->state, JOB_NEW);
    assert_true(a->created >= before && a->created == a->updated);
    assert_int_equal(a->nhistory, 1);
    assert_int_equal(a->history[0].state, JOB_NEW);
    assert_int_equal(a->history[0].at, a->created);
    assert_string_equal(a->history[0].note, "created");
    assert_null(a->csr_pem);
    assert_int_equal(a->order_id, 0);
    job_free(a);
    job_free(b);
    job_free(NULL);
}

static void test_transition_forward(void **state)
{
    static const enum job_state path[] = {JOB_KEY_READY, JOB_CSR_READY, JOB_ORDERING, JOB_ORDERED,
                                          JOB_ISSUED,    JOB_INSTALLED, JOB_DONE};
    struct job *j = NULL;

    (void)state;
    assert_int_equal(job_new(&j), 0);
    for (size_t i = 0; i < sizeof(path) / sizeof(path[0]); i++) {
        time_t before = time(NULL);

        assert_int_equal(job_transition(j, path[i], "step %zu", i), 0);
        assert_int_equal(j->state, path[i]);
        assert_int_equal(j->nhistory, i + 2);
        assert_int_equal(j->history[i + 1].state, path[i]);
        assert_true(j->history[i + 1].at >= before);
        assert_non_null(j->history[i + 1].note);
    }
    assert_string_equal(j->history[3].note, "step 2");
    /* done is terminal */
    for (int s = 0; s < JOB_STATE__MAX; s++)
        assert_int_equal(job_transition(j, (enum job_state)s, "x"), PA_E_INTERNAL);
    assert_int_equal(j->state, JOB_DONE);
    assert_int_equal(j->nhistory, 8);
    job_free(j);
}

/* Whether the rules in job.c allow from -> to (the test's own copy of the table). */
static bool expect_allowed(enum job_state from, enum job_state to)
{
    bool from_term = job_state_is_terminal(from), to_term = job_state_is_terminal(to);

    if (from == to)
        return false;
    if (to == JOB_CANCELED) /* a failed job may be canceled (its key removed) */
        return !from_term || from == JOB_FAILED;
    if (to == JOB_FAILED)
        return !from_term;
    if (from == JOB_FAILED)
        return !to_term;
    return !from_term && to == from + 1;
}

static void test_transition_matrix(void **state)
{
    int allowed = 0;

    (void)state;
    for (int from = 0; from < JOB_STATE__MAX; from++) {
        for (int to = 0; to < JOB_STATE__MAX; to++) {
            struct job *j = NULL;
            bool want = expect_allowed((enum job_state)from, (enum job_state)to);
            int r;

            assert_int_equal(job_new(&j), 0);
            j->state = (enum job_state)from;
            r = job_transition(j, (enum job_state)to, NULL);
            if (want) {
                allowed++;
                assert_int_equal(r, 0);
                assert_int_equal(j->state, to);
                assert_int_equal(j->nhistory, 2);
                assert_null(j->history[1].note);
            } else {
                assert_int_equal(r, PA_E_INTERNAL);
                assert_int_equal(j->state, from); /* a refused move changes nothing */
                assert_int_equal(j->nhistory, 1);
            }
            job_free(j);
        }
    }
    /* 7 forward + 7 non-terminal x {failed, canceled} + failed -> 7 non-terminal + canceled */
    assert_int_equal(allowed, 7 + 14 + 7 + 1);
}

static void test_transition_spot_checks(void **state)
{
    struct job *j = NULL;

    (void)state;
    assert_int_equal(job_new(&j), 0);
    assert_int_equal(job_transition(j, JOB_ORDERED, "skip"), PA_E_INTERNAL);
    j->state = JOB_ORDERED;
    assert_int_equal(job_transition(j, JOB_ORDERED, "again"), PA_E_INTERNAL);
    assert_int_equal(job_transition(j, JOB_ORDERING, "back"), PA_E_INTERNAL);
    assert_int_equal(job_transition(j, JOB_FAILED, "rejected: %s", "bad org"), 0);
    assert_int_equal(job_transition(j, JOB_DONE, "done"), PA_E_INTERNAL);
    assert_int_equal(job_transition(j, JOB_ORDERED, "resumed"), 0);
    assert_int_equal(job_transition(j, JOB_CANCELED, "officer"), 0);
    assert_int_equal(job_transition(j, JOB_FAILED, "after cancel"), PA_E_INTERNAL);
    assert_int_equal(job_transition(j, JOB_NEW, "no"), PA_E_INTERNAL);
    assert_int_equal(job_transition(j, (enum job_state)JOB_STATE__MAX, "no"), PA_E_INTERNAL);
    assert_int_equal(job_transition(NULL, JOB_FAILED, "no"), PA_E_INTERNAL);
    assert_int_equal(j->nhistory, 4);
    assert_int_equal(j->history[1].state, JOB_FAILED);
    assert_string_equal(j->history[1].note, "rejected: bad org");
    assert_int_equal(j->history[2].state, JOB_ORDERED);
    assert_int_equal(j->history[3].state, JOB_CANCELED);
    job_free(j);
}

static void test_notes_and_errors(void **state)
{
    struct job *j = NULL;
    char long_note[3000];

    (void)state;
    assert_int_equal(job_new(&j), 0);
    assert_int_equal(job_note(j, "line one\nline\ttwo\x1b[31m"), 0);
    assert_int_equal(j->state, JOB_NEW);
    assert_int_equal(j->history[1].state, JOB_NEW);
    assert_string_equal(j->history[1].note, "line one line two [31m");
    memset(long_note, 'x', sizeof(long_note) - 1);
    long_note[sizeof(long_note) - 1] = '\0';
    long_note[1023] = '\xc3'; /* a two-byte sequence across the cut */
    long_note[1024] = '\xa9';
    assert_int_equal(job_note(j, "%s", long_note), 0);
    assert_int_equal(strlen(j->history[2].note), 1023);
    assert_int_equal(job_note(j, NULL), 0);
    assert_null(j->history[3].note);
    assert_int_equal(job_note(NULL, "x"), PA_E_INTERNAL);

    assert_int_equal(job_set_error(j, "first\r\nsecond"), 0);
    assert_string_equal(j->last_error, "first  second");
    assert_int_equal(job_set_error(j, long_note), 0);
    assert_int_equal(strlen(j->last_error), 1023);
    assert_int_equal(job_set_error(j, NULL), 0);
    assert_null(j->last_error);

    assert_int_equal(job_set_str(&j->product, "a"), 0);
    assert_string_equal(j->product, "a");
    assert_int_equal(job_set_str(&j->product, j->product), 0); /* self-assignment is safe */
    assert_string_equal(j->product, "a");
    assert_int_equal(job_set_str(&j->product, NULL), 0);
    assert_null(j->product);
    assert_int_equal(job_set_str(NULL, "x"), PA_E_INTERNAL);
    job_free(j);
}

static void test_history_cap(void **state)
{
    struct job *j = NULL, *back = NULL;
    char *json, err[256];

    (void)state;
    assert_int_equal(job_new(&j), 0);
    for (int i = 0; i < 1100; i++)
        assert_int_equal(job_note(j, "poll %d", i), 0);
    assert_int_equal(j->nhistory, 1000);
    assert_string_equal(j->history[0].note, "created");
    assert_string_equal(j->history[1].note, "poll 101");
    assert_string_equal(j->history[999].note, "poll 1099");
    json = job_to_json(j);
    assert_non_null(json);
    assert_int_equal(job_parse(json, strlen(json), &back, err, sizeof(err)), 0);
    assert_int_equal(back->nhistory, 1000);
    free(json);
    job_free(back);
    job_free(j);
}

/* ---- JSON ----------------------------------------------------------------------------- */

static void test_json_round_trip(void **state)
{
    struct job *j = full_job(), *back = NULL;
    char *json, *json2, err[256] = "";

    (void)state;
    json = job_to_json(j);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"format\": 1"));
    assert_int_equal(json[strlen(json) - 1], '\n');
    assert_int_equal(job_parse(json, strlen(json), &back, err, sizeof(err)), 0);
    assert_jobs_equal(j, back);
    json2 = job_to_json(back);
    assert_string_equal(json, json2);
    free(json);
    free(json2);
    job_free(back);
    job_free(j);
}

static void test_parse_minimal(void **state)
{
    static const char min[] = "{\"format\":1,\"id\":\"0123456789abcdef0123456789abcdef\","
                              "\"state\":\"ordering\",\"created\":5,\"updated\":6,"
                              "\"csr_pem\":null}";
    struct job *j = NULL;
    char err[256] = "";

    (void)state;
    assert_int_equal(job_parse(min, strlen(min), &j, err, sizeof(err)), 0);
    assert_string_equal(j->id, "0123456789abcdef0123456789abcdef");
    assert_int_equal(j->state, JOB_ORDERING);
    assert_int_equal(j->created, 5);
    assert_int_equal(j->updated, 6);
    assert_null(j->csr_pem);
    assert_null(j->product);
    assert_string_equal(j->token_serial, "");
    assert_int_equal(j->order_id, 0);
    assert_false(j->custody_ok);
    assert_int_equal(j->nhistory, 0);
    job_free(j);
}

/* Replace the first occurrence of from in a copy of the full job's JSON; parse; expect refusal. */
static void expect_refused_edit(const char *from, const char *to, const char *why)
{
    struct job *j = full_job(), *back = NULL;
    char *json = job_to_json(j), *p, *edited, err[256] = "";
    size_t len;

    assert_non_null(json);
    p = strstr(json, from);
    if (!p)
        fail_msg("\"%s\" not in %s", from, json);
    len = strlen(json) - strlen(from) + strlen(to);
    edited = malloc(len + 1);
    assert_non_null(edited);
    (void)snprintf(edited, len + 1, "%.*s%s%s", (int)(p - json), json, to, p + strlen(from));
    if (job_parse(edited, len, &back, err, sizeof(err)) != PA_E_JOB)
        fail_msg("accepted: %s -> %s", from, to);
    assert_null(back);
    if (!strstr(err, why))
        fail_msg("%s -> %s: message \"%s\" lacks \"%s\"", from, to, err, why);
    free(edited);
    free(json);
    job_free(j);
}

static void test_parse_refuses_edits(void **state)
{
    (void)state;
    expect_refused_edit("\"format\": 1", "\"format\": 2", "format 2 is not supported");
    expect_refused_edit("\"format\": 1", "\"format\": \"1\"", "format: not an integer");
    expect_refused_edit("\"format\": 1,", "", "\"format\" missing");
    expect_refused_edit("\"state\": \"key_ready\"", "\"state\": \"waiting\"", "unknown state");
    expect_refused_edit("\"state\": \"key_ready\"", "\"state\": 1", "state: not a string");
    expect_refused_edit("\"state\": \"key_ready\",", "", "\"state\" missing");
    expect_refused_edit("\"order_id\": 123456789", "\"order_id\": -1", "order_id: out of range");
    expect_refused_edit("\"order_id\": 123456789", "\"order_id\": 1.5", "not an integer");
    expect_refused_edit("\"order_id\": 123456789", "\"order_id\": \"123\"", "not an integer");
    expect_refused_edit("\"order_id\": 123456789", "\"order_id\": 99999999999999999999",
                        "out of range");
    expect_refused_edit("\"created\": 1700000000", "\"created\": -5", "created: out of range");
    expect_refused_edit("\"created\": 1700000000", "\"created\": 999999999999999",
                        "created: out of range");
    expect_refused_edit("\"custody_ok\": true", "\"custody_ok\": 1", "not true or false");
    expect_refused_edit("\"poll_interval_s\": 37.25", "\"poll_interval_s\": -1",
                        "poll_interval_s: out of range");
    expect_refused_edit("\"poll_interval_s\": 37.25", "\"poll_interval_s\": 1e300", "out of range");
    expect_refused_edit("\"poll_interval_s\": 37.25", "\"poll_interval_s\": null", "not a number");
    expect_refused_edit("\"key_label\": \"pkio-auth-2024\"",
                        "\"key_label\": \"" /* 65 chars: one too many */
                        "0123456789012345678901234567890123456789012345678901234567890123"
                        "4\"",
                        "key_label: longer than 64 bytes");
    expect_refused_edit("\"token_serial\": \"0123456789abcdef\"",
                        "\"token_serial\": \"0123456789abcdef0\"", "longer than 16 bytes");
    expect_refused_edit("\"token_serial\": \"0123456789abcdef\"", "\"token_serial\": \"a\\u0000b\"",
                        "NUL");
    expect_refused_edit("\"token_serial\": \"0123456789abcdef\"", "\"token_serial\": null",
                        "not a string");
    expect_refused_edit("\"key_id_hex\": \"0A1b2c3D\"", "\"key_id_hex\": \"0A1\"",
                        "even number of hex");
    expect_refused_edit("\"key_id_hex\": \"0A1b2c3D\"", "\"key_id_hex\": \"0x1b\"",
                        "even number of hex");
    expect_refused_edit("\"spki_sha256\": \"1111", "\"spki_sha256\": \"111", "not a SHA-256");
    expect_refused_edit("\"spki_sha256\": \"1111", "\"spki_sha256\": \"zz11", "not a SHA-256");
    expect_refused_edit("\"id\": \"", "\"id\": \"A", "id: longer than 32");
    expect_refused_edit("\"id\": \"", "\"id\": \"../", "id: longer than 32");
    expect_refused_edit("\"product\": \"", "\"product\": 7, \"x\": \"", "product: not a string");
    expect_refused_edit("\"format\": 1", "\"format\": 1, \"extra\": 1", "unknown member \"extra\"");
    expect_refused_edit("\"format\": 1", "\"format\": 1, \"e\\nx\": 1", "unknown member");
    expect_refused_edit("\"history\": [", "\"history\": 5, \"h\": [", "history: not an array");
    expect_refused_edit("\"at\": 1700000000,", "", "\"at\" or \"state\" missing");
    expect_refused_edit("\"state\": \"new\"", "\"state\": \"old\"", "history[0]: unknown state");
    expect_refused_edit("\"note\": \"created\"", "\"note\": \"created\", \"who\": 1",
                        "history[0]: unknown member");
    expect_refused_edit("\"note\": \"created\"", "\"note\": 12", "history[0]: not a string");
}

static void test_parse_refuses_bytes(void **state)
{
    static const struct {
        const char *in;
        const char *why;
    } cases[] = {
        {"", "invalid JSON"},
        {"{", "invalid JSON"},
        {"[]", "not a JSON object"},
        {"null", "JSON"}, /* json-c wants more input after a bare literal */
        {"\"job\"", "not a JSON object"},
        {"{} {}", "invalid JSON"},
        {"{}x", "invalid JSON"},
        {"{\"format\":1,}", "invalid JSON"},
        {"{'format':1}", "missing"}, /* json-c takes single quotes even when strict */
        {"{\"format\":1}", "\"id\" missing"},
        {"{\"format\":1,\"id\":\"0123456789abcdef0123456789abcdef\",\"state\":\"new\","
         "\"created\":1}",
         "\"updated\" missing"},
        {"{\"format\":1,\"id\":\"0123456789ABCDEF0123456789ABCDEF\",\"state\":\"new\","
         "\"created\":1,\"updated\":1}",
         "lowercase hex"},
        {"{\"format\":1,\"id\":\"0123456789abcdef0123456789abcdeg\",\"state\":\"new\","
         "\"created\":1,\"updated\":1}",
         "lowercase hex"},
        {"{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":{\"i\":1}}}}}}}}}",
         "invalid JSON"},
    };
    struct job *j = NULL;
    char err[256], *big;
    size_t big_len = 5 * 1024 * 1024;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        if (job_parse(cases[i].in, strlen(cases[i].in), &j, err, sizeof(err)) != PA_E_JOB)
            fail_msg("accepted: %s", cases[i].in);
        if (!strstr(err, cases[i].why))
            fail_msg("%s: message \"%s\" lacks \"%s\"", cases[i].in, err, cases[i].why);
    }
    assert_int_equal(job_parse("{\"format\":1}\0", 13, &j, err, sizeof(err)), PA_E_JOB);
    assert_non_null(strstr(err, "NUL"));
    assert_int_equal(job_parse(NULL, 0, &j, err, sizeof(err)), PA_E_JOB);
    big = malloc(big_len);
    assert_non_null(big);
    memset(big, ' ', big_len);
    assert_int_equal(job_parse(big, big_len, &j, err, sizeof(err)), PA_E_JOB);
    assert_non_null(strstr(err, "larger than"));
    free(big);
    /* no message buffer is fine too */
    assert_int_equal(job_parse("[]", 2, &j, NULL, 0), PA_E_JOB);
}

static void test_parse_string_limits(void **state)
{
    char *buf, err[256];
    struct job *j = NULL;
    size_t n = 300 * 1024;

    (void)state;
    buf = malloc(n + 200);
    assert_non_null(buf);
    /* cert_pem may hold 256 KiB, not more */
    for (int over = 0; over <= 1; over++) {
        size_t len = 256 * 1024 + (size_t)over;
        int off = snprintf(buf, 200,
                           "{\"format\":1,\"id\":\"0123456789abcdef0123456789abcdef\","
                           "\"state\":\"new\",\"created\":1,\"updated\":1,"
                           "\"cert_pem\":\"");

        memset(buf + off, 'A', len);
        memcpy(buf + off + len, "\"}", 3);
        err[0] = '\0';
        if (over) {
            assert_int_equal(job_parse(buf, strlen(buf), &j, err, sizeof(err)), PA_E_JOB);
            assert_non_null(strstr(err, "cert_pem: longer than 262144 bytes"));
        } else {
            assert_int_equal(job_parse(buf, strlen(buf), &j, err, sizeof(err)), 0);
            assert_int_equal(strlen(j->cert_pem), len);
            job_free(j);
            j = NULL;
        }
    }
    free(buf);
}

/* ---- files ---------------------------------------------------------------------------- */

static void test_save_load(void **state)
{
    struct job *j = full_job(), *back = NULL;
    char err[256] = "", name[64];
    time_t before = time(NULL);

    (void)state;
    j->updated = 1;
    assert_int_equal(job_save(state_dir, j), 0);
    assert_true(j->updated >= before);
    (void)snprintf(name, sizeof(name), "%s.json", j->id);
    assert_int_equal(mode_of(job_file(name)), 0600);
    assert_int_equal(mode_of(job_file("")), 0700);
    assert_int_equal(job_load(state_dir, j->id, &back, err, sizeof(err)), 0);
    assert_jobs_equal(j, back);
    job_free(back);
    job_free(j);
}

static void test_save_mode_with_umask(void **state)
{
    struct job *j = NULL;
    char name[64];
    mode_t old = umask(0);

    (void)state;
    assert_int_equal(job_new(&j), 0);
    assert_int_equal(job_save(state_dir, j), 0);
    umask(old);
    (void)snprintf(name, sizeof(name), "%s.json", j->id);
    assert_int_equal(mode_of(job_file(name)), 0600);
    job_free(j);
}

static void test_save_replaces_atomically(void **state)
{
    struct job *j = NULL, *back = NULL;
    struct stat st1, st2;
    char err[256], name[64];
    struct dirent *de;
    DIR *d;
    int nfiles = 0;

    (void)state;
    assert_int_equal(job_new(&j), 0);
    (void)snprintf(name, sizeof(name), "%s.json", j->id);
    assert_int_equal(job_save(state_dir, j), 0);
    assert_int_equal(stat(job_file(name), &st1), 0);
    assert_int_equal(job_transition(j, JOB_KEY_READY, "key"), 0);
    assert_int_equal(job_save(state_dir, j), 0);
    assert_int_equal(stat(job_file(name), &st2), 0);
    assert_true(st1.st_ino != st2.st_ino); /* a new file renamed over the old one */
    assert_int_equal(job_load(state_dir, j->id, &back, err, sizeof(err)), 0);
    assert_int_equal(back->state, JOB_KEY_READY);
    d = opendir(job_file(""));
    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            nfiles++;
    closedir(d);
    assert_int_equal(nfiles, 1); /* no temporary file left behind */
    job_free(back);
    job_free(j);
}

static void test_save_refuses_invalid(void **state)
{
    struct job *j = NULL, *back = NULL;
    char err[256];
    time_t old;

    (void)state;
    assert_int_equal(job_new(&j), 0);
    assert_int_equal(job_save(state_dir, j), 0);
    SET(j->key_id_hex, "not hex");
    j->updated = old = 42;
    assert_int_equal(job_save(state_dir, j), PA_E_INTERNAL);
    assert_int_equal(j->updated, old);
    SET(j->key_id_hex, "00");
    j->order_id = -3;
    assert_int_equal(job_save(state_dir, j), PA_E_INTERNAL);
    j->order_id = 0;
    j->state = (enum job_state)99;
    assert_int_equal(job_save(state_dir, j), PA_E_INTERNAL);
    j->state = JOB_NEW;
    /* the file on disk is still the first, valid save */
    assert_int_equal(job_load(state_dir, j->id, &back, err, sizeof(err)), 0);
    assert_string_equal(back->key_id_hex, "");
    job_free(back);
    /* a missing jobs directory is an I/O error */
    assert_int_equal(job_save("/nonexistent-pkio-state", j), PA_E_IO);
    job_free(j);
}

/* Save a job with the given id and created time. */
static void save_with_id(const char *id, time_t created)
{
    struct job *j = NULL;

    assert_int_equal(job_new(&j), 0);
    SET(j->id, id);
    j->created = created;
    assert_int_equal(job_save(state_dir, j), 0);
    job_free(j);
}

static void test_load_prefix(void **state)
{
    struct job *j = NULL;
    char err[256];

    (void)state;
    save_with_id("abcdef0000000000000000000000000a", 3);
    save_with_id("abcdef1000000000000000000000000b", 2);
    save_with_id("1234560000000000000000000000000c", 1);
    /* unique prefixes, any case */
    assert_int_equal(job_load(state_dir, "abcdef0", &j, err, sizeof(err)), 0);
    assert_string_equal(j->id, "abcdef0000000000000000000000000a");
    job_free(j);
    assert_int_equal(job_load(state_dir, "ABCDEF1", &j, err, sizeof(err)), 0);
    assert_string_equal(j->id, "abcdef1000000000000000000000000b");
    job_free(j);
    assert_int_equal(job_load(state_dir, "123456", &j, err, sizeof(err)), 0);
    assert_string_equal(j->id, "1234560000000000000000000000000c");
    job_free(j);
    j = NULL;
    /* ambiguous */
    assert_int_equal(job_load(state_dir, "abcdef", &j, err, sizeof(err)), PA_E_JOB);
    assert_non_null(strstr(err, "prefix matches several jobs"));
    assert_null(j);
    /* too short, not hex, too long, absent */
    assert_int_equal(job_load(state_dir, "abcde", &j, err, sizeof(err)), PA_E_JOB);
    assert_non_null(strstr(err, "not a job id"));
    assert_int_equal(job_load(state_dir, "abcdeg", &j, err, sizeof(err)), PA_E_JOB);
    assert_int_equal(job_load(state_dir, "../../etc/passwd", &j, err, sizeof(err)), PA_E_JOB);
    assert_int_equal(job_load(state_dir, "abcdef0000000000000000000000000a0", &j, err, sizeof(err)),
                     PA_E_JOB);
    assert_int_equal(job_load(state_dir, "fedcba", &j, err, sizeof(err)), PA_E_JOB);
    assert_non_null(strstr(err, "no job fedcba"));
    assert_int_equal(job_load(state_dir, "fedcba0000000000000000000000000a", &j, err, sizeof(err)),
                     PA_E_JOB);
    assert_non_null(strstr(err, "no job"));
    assert_null(j);
}

static void test_load_checks_file(void **state)
{
    struct job *j = NULL;
    char err[256], body[512];

    (void)state;
    /* a file whose id is not its name */
    (void)snprintf(body, sizeof(body),
                   "{\"format\":1,\"id\":\"%s\",\"state\":\"new\",\"created\":1,\"updated\":1}",
                   "11111111111111111111111111111111");
    write_file(job_file("22222222222222222222222222222222.json"), body);
    assert_int_equal(job_load(state_dir, "222222", &j, err, sizeof(err)), PA_E_JOB);
    assert_non_null(strstr(err, "holds job 1111"));
    /* a corrupt file: the message names it */
    write_file(job_file("33333333333333333333333333333333.json"), "{\"format\":1,");
    assert_int_equal(job_load(state_dir, "33333333333333333333333333333333", &j, err, sizeof(err)),
                     PA_E_JOB);
    assert_non_null(strstr(err, "33333333333333333333333333333333.json: invalid JSON"));
    assert_null(j);
    /* a directory where a job file should be */
    assert_int_equal(mkdir(job_file("44444444444444444444444444444444.json"), 0700), 0);
    assert_int_equal(job_load(state_dir, "444444", &j, err, sizeof(err)), PA_E_JOB);
    assert_non_null(strstr(err, "44444444444444444444444444444444.json: not a regular file"));
    assert_null(j);
}

static void test_list(void **state)
{
    struct job **list = NULL;
    size_t n = 99;
    char err[256] = "";

    (void)state;
    assert_int_equal(job_list(state_dir, &list, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 0);
    job_list_free(list, n);

    save_with_id("cccccc0000000000000000000000000c", 300);
    save_with_id("aaaaaa0000000000000000000000000a", 100);
    save_with_id("bbbbbb0000000000000000000000000b", 200);
    save_with_id("000000000000000000000000000000bb", 200); /* same age: by id */
    write_file(job_file("dddddd0000000000000000000000000d.json.tmp.Ab12Cd"), "{ half");
    write_file(job_file("README"), "not a job");
    assert_int_equal(mkdir(job_file("eeeeee0000000000000000000000000e.json.d"), 0700), 0);
    assert_int_equal(job_list(state_dir, &list, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 4);
    assert_string_equal(list[0]->id, "aaaaaa0000000000000000000000000a");
    assert_string_equal(list[1]->id, "000000000000000000000000000000bb");
    assert_string_equal(list[2]->id, "bbbbbb0000000000000000000000000b");
    assert_string_equal(list[3]->id, "cccccc0000000000000000000000000c");
    job_list_free(list, n);

    /* a corrupt job file is named and set aside (kept as .corrupt); the others are listed */
    write_file(job_file("ffffff0000000000000000000000000f.json"), "[]");
    list = NULL;
    n = 77;
    assert_int_equal(job_list(state_dir, &list, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 4);
    assert_non_null(strstr(err, "job record ffffff0000000000000000000000000f is corrupt"));
    assert_non_null(strstr(err, "not a JSON object"));
    assert_non_null(strstr(err, "set aside as"));
    job_list_free(list, n);
    assert_int_equal(access(job_file("ffffff0000000000000000000000000f.json"), F_OK), -1);
    assert_int_equal(access(job_file("ffffff0000000000000000000000000f.json.corrupt"), F_OK), 0);
    /* and stays aside: the next listing is clean */
    assert_int_equal(job_list(state_dir, &list, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 4);
    assert_string_equal(err, "");
    job_list_free(list, n);
}

static void test_token_lock(void **state)
{
    int fd1 = -1, fd2 = -1, fd3 = -1, status;
    pid_t pid;

    (void)state;
    assert_int_equal(job_token_lock(state_dir, "7de46fa857d27f6c", "alice", 0, &fd1), 0);
    assert_true(fcntl(fd1, F_GETFD) & FD_CLOEXEC);
    /* the same token from another process: busy after the wait */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = -1;

        _exit(job_token_lock(state_dir, "7de46fa857d27f6c", "alice", 0.3, &fd) == PA_E_BUSY ? 0
                                                                                            : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* same serial, other label (tpm2-pkcs11 serials are all zero) and other serial: free */
    assert_int_equal(job_token_lock(state_dir, "7de46fa857d27f6c", "bob", 0, &fd2), 0);
    assert_int_equal(job_token_lock(state_dir, "0000000000000000", "alice", 0, &fd3), 0);
    job_unlock(fd2);
    job_unlock(fd3);
    /* a waiter gets the lock once it is released */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = -1;

        close(fd1); /* the lock belongs to the open file, which fork shares */
        _exit(job_token_lock(state_dir, "7de46fa857d27f6c", "alice", 5, &fd) == 0 ? 0 : 1);
    }
    (void)usleep(200 * 1000);
    job_unlock(fd1);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_list_without_dir(void **state)
{
    struct job **list = NULL;
    size_t n = 5;
    char err[256], path[4300];

    (void)state;
    (void)snprintf(path, sizeof(path), "%s/never-created", tmpdir);
    assert_int_equal(job_list(path, &list, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 0);
    job_list_free(list, n);
}

static void test_lock(void **state)
{
    const char *id = "abcdef0000000000000000000000000a";
    int fd1 = -1, fd2 = -1;
    pid_t pid;
    int status;

    (void)state;
    assert_int_equal(job_lock(state_dir, id, &fd1), 0);
    assert_true(fd1 >= 0);
    assert_true(fcntl(fd1, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(mode_of(job_file("abcdef0000000000000000000000000a.lock")), 0600);
    /* a second descriptor in this process */
    assert_int_equal(job_lock(state_dir, id, &fd2), PA_E_BUSY);
    assert_int_equal(fd2, -1);
    /* another process */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = -1;

        _exit(job_lock(state_dir, id, &fd) == PA_E_BUSY ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* another job's lock is independent */
    assert_int_equal(job_lock(state_dir, "bbbbbb0000000000000000000000000b", &fd2), 0);
    job_unlock(fd2);
    job_unlock(fd1);
    assert_int_equal(job_lock(state_dir, id, &fd2), 0);
    job_unlock(fd2);
    job_unlock(-1);
    /* bad ids never become paths */
    assert_int_equal(job_lock(state_dir, "../x", &fd2), PA_E_INTERNAL);
    assert_int_equal(job_lock(state_dir, "abcdef", &fd2), PA_E_INTERNAL);
}

static void test_dir_prepare(void **state)
{
    char path[4300], jobs[4400], err[256] = "";

    (void)state;
    (void)snprintf(path, sizeof(path), "%s/a/b/state/", tmpdir);
    assert_int_equal(job_dir_prepare(path, err, sizeof(err)), 0);
    (void)snprintf(path, sizeof(path), "%s/a/b/state", tmpdir);
    (void)snprintf(jobs, sizeof(jobs), "%s/jobs", path);
    assert_int_equal(mode_of(path) & 0777, 0700);
    assert_int_equal(mode_of(jobs) & 0777, 0700);
    assert_int_equal(job_dir_prepare(path, err, sizeof(err)), 0); /* again: fine */

    assert_int_equal(chmod(path, 0755), 0); /* readable is fine */
    assert_int_equal(job_dir_prepare(path, err, sizeof(err)), 0);
    assert_int_equal(chmod(path, 0770), 0);
    assert_int_equal(job_dir_prepare(path, err, sizeof(err)), PA_E_CONFIG);
    assert_non_null(strstr(err, "group or world writable"));
    assert_int_equal(chmod(path, 0703), 0);
    assert_int_equal(job_dir_prepare(path, err, sizeof(err)), PA_E_CONFIG);
    assert_int_equal(chmod(path, 0700), 0);
    assert_int_equal(chmod(jobs, 0777), 0);
    assert_int_equal(job_dir_prepare(path, err, sizeof(err)), PA_E_CONFIG);
    assert_non_null(strstr(err, "/jobs: group or world writable"));
    assert_int_equal(chmod(jobs, 0700), 0);

    if (geteuid() == 0) {
        assert_int_equal(chown(path, 4242, 4242), 0);
        assert_int_equal(job_dir_prepare(path, err, sizeof(err)), PA_E_CONFIG);
        assert_non_null(strstr(err, "not by the current user"));
        assert_int_equal(chown(path, 0, 0), 0);
    } else {
        /* "/" belongs to root, not to us */
        assert_int_equal(job_dir_prepare("/", err, sizeof(err)), PA_E_CONFIG);
        assert_non_null(strstr(err, "not by the current user"));
    }

    (void)snprintf(path, sizeof(path), "%s/file", tmpdir);
    write_file(path, "x");
    assert_int_equal(job_dir_prepare(path, err, sizeof(err)), PA_E_CONFIG);
    assert_non_null(strstr(err, "not a directory"));
    (void)snprintf(path, sizeof(path), "%s/file/sub", tmpdir);
    assert_int_equal(job_dir_prepare(path, err, sizeof(err)), PA_E_IO);
    assert_non_null(strstr(err, "cannot create"));
    assert_int_equal(job_dir_prepare("", err, sizeof(err)), PA_E_CONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_new),
        cmocka_unit_test(test_transition_forward),
        cmocka_unit_test(test_transition_matrix),
        cmocka_unit_test(test_transition_spot_checks),
        cmocka_unit_test(test_notes_and_errors),
        cmocka_unit_test(test_history_cap),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_parse_minimal),
        cmocka_unit_test(test_parse_refuses_edits),
        cmocka_unit_test(test_parse_refuses_bytes),
        cmocka_unit_test(test_parse_string_limits),
        cmocka_unit_test_setup_teardown(test_save_load, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_save_mode_with_umask, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_save_replaces_atomically, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_save_refuses_invalid, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_load_prefix, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_load_checks_file, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_list, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_list_without_dir, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_lock, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_token_lock, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_dir_prepare, dir_setup, dir_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
