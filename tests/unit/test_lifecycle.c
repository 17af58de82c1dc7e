/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_lifecycle.c - the pure parts of `expiring` and `certs`: days to a date, the due verdict,
 * which job explains a key or certificate, revocation as our records know it, printable labels,
 * and the renew.warn_days configuration key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "job.h"
#include "lifecycle.h"
#include "pa_err.h"
#include "tok.h"

#define DAY 86400
/* 2026-12-03T10:00:00Z */
#define NOW ((time_t)1796292000)

static void test_days(void **state)
{
    time_t midnight = NOW - 10 * 3600; /* 2026-12-03T00:00:00Z */

    (void)state;
    assert_int_equal(lc_days_until(NOW, NOW), 0);
    assert_int_equal(lc_days_until(midnight + DAY - 1, NOW), 0); /* later today */
    assert_int_equal(lc_days_until(midnight, NOW), 0);           /* earlier today */
    assert_int_equal(lc_days_until(midnight + DAY, NOW), 1);     /* tomorrow, 00:00 */
    assert_int_equal(lc_days_until(midnight - 1, NOW), -1);      /* yesterday, 23:59:59 */
    assert_int_equal(lc_days_until(NOW + 20 * DAY, NOW), 20);
    assert_int_equal(lc_days_until(NOW - 400 * DAY, NOW), -400);
    assert_int_equal(lc_days_until((time_t)-1, (time_t)0), -1); /* before 1970 rounds down */
}

static void test_parse_date(void **state)
{
    time_t t = 0;
    char buf[32];

    (void)state;
    assert_int_equal(lc_parse_date_end("2026-12-23", &t), 0);
    lc_format_time(t, buf, sizeof(buf));
    assert_string_equal(buf, "2026-12-23T23:59:59Z");
    assert_int_equal(lc_days_until(t, NOW), 20);
    assert_int_equal(lc_parse_date_end("2028-02-29", &t), 0); /* leap day */
    assert_int_equal(lc_parse_date_end("2027-02-29", &t), -1);
    assert_int_equal(lc_parse_date_end("2027-02-30", &t), -1);
    assert_int_equal(lc_parse_date_end("2027-13-01", &t), -1);
    assert_int_equal(lc_parse_date_end("2027-1-01", &t), -1);
    assert_int_equal(lc_parse_date_end("2027-01-01T00:00:00", &t), -1);
    assert_int_equal(lc_parse_date_end("", &t), -1);
    assert_int_equal(lc_parse_date_end(NULL, &t), -1);
    assert_int_equal(lc_parse_date_end("2027/01/01", &t), -1);
}

static void test_decide(void **state)
{
    struct lc_expiry_in in = {0};
    struct lc_expiry e;

    (void)state;
    /* no date at all */
    assert_int_equal(lc_expiry_decide(&in, 30, NOW, &e), -1);
    /* the certificate's notAfter, 40 days out: not listed */
    in.not_after = NOW + 40 * DAY;
    assert_int_equal(lc_expiry_decide(&in, 30, NOW, &e), 0);
    assert_int_equal(e.source, LC_SRC_CERTIFICATE);
    assert_int_equal(e.days_left, 40);
    assert_false(e.listed);
    assert_false(e.due);
    /* CertCentral's valid_till wins when it gives one */
    in.valid_till = "2026-12-23";
    in.cc_status = "issued";
    assert_int_equal(lc_expiry_decide(&in, 30, NOW, &e), 0);
    assert_int_equal(e.source, LC_SRC_CERTCENTRAL);
    assert_int_equal(e.days_left, 20);
    assert_true(e.listed);
    assert_true(e.due);
    assert_false(e.expired);
    assert_string_equal(lc_source_name(e.source), "certcentral");
    /* the window edge is inclusive */
    assert_int_equal(lc_expiry_decide(&in, 20, NOW, &e), 0);
    assert_true(e.listed);
    assert_int_equal(lc_expiry_decide(&in, 19, NOW, &e), 0);
    assert_false(e.listed);
    /* an unparsable valid_till falls back to the certificate */
    in.valid_till = "soon";
    assert_int_equal(lc_expiry_decide(&in, 30, NOW, &e), 0);
    assert_int_equal(e.source, LC_SRC_CERTIFICATE);
    /* expired: listed whatever the window, due */
    in.valid_till = "2026-11-30";
    assert_int_equal(lc_expiry_decide(&in, 0, NOW, &e), 0);
    assert_true(e.expired);
    assert_int_equal(e.days_left, -3);
    assert_true(e.listed);
    assert_true(e.due);
    /* CertCentral says expired (even with a later date): listed and flagged */
    in.valid_till = "2027-06-01";
    in.cc_status = "expired";
    assert_int_equal(lc_expiry_decide(&in, 30, NOW, &e), 0);
    assert_true(e.expired);
    assert_true(e.listed);
    /* revoked at CertCentral: listed, flagged, not due */
    in.valid_till = "2026-12-10";
    in.cc_status = "revoked";
    assert_int_equal(lc_expiry_decide(&in, 30, NOW, &e), 0);
    assert_true(e.listed);
    assert_true(e.revoked);
    assert_false(e.due);
    /* revoked in our records, or replaced by a later job: not due */
    in.cc_status = "issued";
    in.revoked_here = true;
    assert_int_equal(lc_expiry_decide(&in, 30, NOW, &e), 0);
    assert_true(e.revoked);
    assert_false(e.due);
    in.revoked_here = false;
    in.replaced = true;
    assert_int_equal(lc_expiry_decide(&in, 30, NOW, &e), 0);
    assert_false(e.revoked);
    assert_true(e.listed);
    assert_false(e.due);
}

/* ---- certificates and jobs ---- */

static X509 *make_cert(const char *cn, long serial)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();

    assert_non_null(key);
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, name);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 365L * DAY);
    X509_set_pubkey(x, key);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    EVP_PKEY_free(key);
    return x;
}

static char *pem_of(X509 *a, X509 *b)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *p = NULL, *s;
    long n;

    PEM_write_bio_X509(bio, a);
    if (b)
        PEM_write_bio_X509(bio, b);
    n = BIO_get_mem_data(bio, &p);
    s = strndup(p, (size_t)n);
    BIO_free(bio);
    return s;
}

static struct job *make_job(const char *serial, const char *label, const char *key_id_hex)
{
    struct job *j = NULL;

    assert_int_equal(job_new(&j), 0);
    snprintf(j->token_serial, sizeof(j->token_serial), "%s", serial);
    snprintf(j->token_label, sizeof(j->token_label), "%s", label);
    snprintf(j->key_id_hex, sizeof(j->key_id_hex), "%s", key_id_hex);
    return j;
}

static void test_ids_and_serials(void **state)
{
    const unsigned char id[] = {0x0a, 0xbc, 0xff};
    char buf[32];
    X509 *x;

    (void)state;
    assert_true(lc_id_is_hex(id, 3, "0abcff"));
    assert_true(lc_id_is_hex(id, 3, "0ABCFF"));
    assert_false(lc_id_is_hex(id, 3, "0abcfe"));
    assert_false(lc_id_is_hex(id, 2, "0abcff"));
    assert_false(lc_id_is_hex(id, 0, ""));
    assert_false(lc_id_is_hex(id, 3, NULL));
    assert_true(lc_serial_eq("0A1B", "a1b"));
    assert_true(lc_serial_eq("00", "0"));
    assert_false(lc_serial_eq("0A1B", "A1C"));
    assert_false(lc_serial_eq("", ""));
    assert_false(lc_serial_eq(NULL, "1"));
    x = make_cert("serial", 0x1a2b3c);
    lc_cert_serial(x, buf, sizeof(buf));
    assert_string_equal(buf, "1A2B3C");
    X509_free(x);
}

/* A token as tok_list reports it: only serial and label bind a job. */
static struct tok_info tok_of(const char *serial, const char *label)
{
    struct tok_info t = {.token_initialized = true};

    snprintf(t.serial, sizeof(t.serial), "%s", serial);
    snprintf(t.label, sizeof(t.label), "%s", label);
    snprintf(t.model, sizeof(t.model), "%s", "any model");
    return t;
}

static void test_match(void **state)
{
    const struct tok_info t1a = tok_of("S1", "tok-a"), t1b = tok_of("S1", "tok-b"),
                          t2a = tok_of("S2", "tok-a"), t2b = tok_of("S2", "tok-b");
    X509 *leaf_a = make_cert("Jan Jansen", 0x1001);
    X509 *ca = make_cert("Test CA", 0x77);
    X509 *leaf_b = make_cert("Piet Bakker", 0x2002);
    X509 *alien = make_cert("Alien", 0x1001); /* same serial as a's leaf */
    X509 *other = make_cert("Other", 0x3003);
    const unsigned char id_a[] = {0xaa, 0x01}, id_b[] = {0xbb, 0x02}, id_x[] = {0xcc};
    struct job *v[3];
    struct lc_jobs jobs;
    struct lc_match m;

    (void)state;
    v[0] = make_job("S1", "tok-a", "aa01");
    v[0]->cert_pem = pem_of(leaf_a, ca);
    snprintf(v[0]->cert_serial, sizeof(v[0]->cert_serial), "1001");
    v[1] = make_job("S2", "tok-b", "bb02");
    v[1]->cert_pem = pem_of(leaf_b, ca);
    snprintf(v[1]->cert_serial, sizeof(v[1]->cert_serial), "2002");
    v[2] = make_job("S1", "tok-a", ""); /* a job that never got a key */
    assert_int_equal(lc_jobs_index(v, 3, &jobs), 0);
    assert_ptr_equal(lc_job_leaf(&jobs, 0), sk_X509_value(jobs.certs[0], 0));
    assert_null(lc_job_leaf(&jobs, 2));

    /* keys: by CKA_ID, only on the job's own token (serial and label) */
    m = lc_match_key(&jobs, &t1a, id_a, sizeof(id_a));
    assert_int_equal(m.role, LC_KEY);
    assert_int_equal(m.job, 0);
    assert_int_equal(lc_match_key(&jobs, &t1b, id_a, sizeof(id_a)).role, LC_FOREIGN);
    assert_int_equal(lc_match_key(&jobs, &t2a, id_a, sizeof(id_a)).role, LC_FOREIGN);
    assert_int_equal(lc_match_key(&jobs, &t1a, id_b, sizeof(id_b)).role, LC_FOREIGN);
    assert_int_equal(lc_match_key(&jobs, &t1a, id_x, 0).role, LC_FOREIGN);

    /* certificates: the leaf by serial, the chain byte for byte, else under the key's id */
    m = lc_match_cert(&jobs, &t1a, leaf_a, id_a, sizeof(id_a));
    assert_int_equal(m.role, LC_LEAF);
    assert_int_equal(m.job, 0);
    m = lc_match_cert(&jobs, &t1a, ca, NULL, 0);
    assert_int_equal(m.role, LC_CHAIN);
    assert_int_equal(m.job, 0);
    m = lc_match_cert(&jobs, &t2b, ca, NULL, 0);
    assert_int_equal(m.role, LC_CHAIN);
    assert_int_equal(m.job, 1);
    m = lc_match_cert(&jobs, &t1a, other, id_a, sizeof(id_a));
    assert_int_equal(m.role, LC_UNDER_KEY);
    assert_int_equal(m.job, 0);
    assert_int_equal(lc_match_cert(&jobs, &t1a, other, id_x, sizeof(id_x)).role, LC_FOREIGN);
    /* on another token nothing of job a counts */
    assert_int_equal(lc_match_cert(&jobs, &t2b, leaf_a, id_a, sizeof(id_a)).role, LC_FOREIGN);
    /* the serial with the issuer of the job's leaf decides: another issuer's is not ours */
    assert_int_equal(lc_match_cert(&jobs, &t1a, alien, NULL, 0).role, LC_FOREIGN);
    /* a job whose bundle cannot be read is matched by serial alone */
    free(v[0]->cert_pem);
    v[0]->cert_pem = NULL;
    lc_jobs_clear(&jobs);
    assert_int_equal(lc_jobs_index(v, 3, &jobs), 0);
    assert_int_equal(lc_match_cert(&jobs, &t1a, alien, NULL, 0).role, LC_LEAF);
    assert_string_equal(lc_role_name(LC_UNDER_KEY), "under_key");
    assert_string_equal(lc_role_name(LC_FOREIGN), "foreign");

    lc_jobs_clear(&jobs);
    for (int i = 0; i < 3; i++)
        job_free(v[i]);
    X509_free(leaf_a);
    X509_free(leaf_b);
    X509_free(ca);
    X509_free(alien);
    X509_free(other);
}

static void test_revocation(void **state)
{
    struct job *v[3];
    struct lc_jobs jobs;
    size_t by = 0;

    (void)state;
    v[0] = make_job("S1", "tok-a", "aa");
    v[0]->state = JOB_DONE;
    v[0]->certificate_id = 300001;
    v[0]->order_id = 100001;
    v[1] = make_job("S2", "tok-b", "bb");
    v[1]->state = JOB_ORDERED; /* a re-key under way: nothing replaced yet */
    v[1]->replaces_certificate_id = 300001;
    v[2] = make_job("S3", "tok-c", "cc");
    v[2]->state = JOB_DONE;
    assert_int_equal(lc_jobs_index(v, 3, &jobs), 0);

    assert_string_equal(lc_revocation(&jobs, 0, &by), "");
    assert_int_equal(by, (size_t)-1);
    /* a finished re-key replaced it; its revoke is pending, then done */
    v[1]->state = JOB_DONE;
    snprintf(v[1]->revoke_status, sizeof(v[1]->revoke_status), "pending");
    assert_string_equal(lc_revocation(&jobs, 0, &by), "pending");
    assert_int_equal(by, 1);
    v[1]->old_revoked = true;
    assert_string_equal(lc_revocation(&jobs, 0, &by), "revoked");
    /* by order id (--replaces order:N) */
    v[1]->replaces_certificate_id = 0;
    v[1]->replaces_order_id = 100001;
    v[1]->old_revoked = false;
    v[1]->revoke_status[0] = '\0';
    assert_string_equal(lc_revocation(&jobs, 0, NULL), "");
    assert_string_equal(lc_revocation(&jobs, 0, &by), "");
    assert_int_equal(by, 1);
    /* the job's own revoke comes first */
    snprintf(v[0]->cert_revoke_status, sizeof(v[0]->cert_revoke_status), "revoked");
    assert_string_equal(lc_revocation(&jobs, 0, &by), "revoked");
    /* nothing replaces job 2 */
    assert_string_equal(lc_revocation(&jobs, 2, &by), "");
    assert_int_equal(by, (size_t)-1);

    lc_jobs_clear(&jobs);
    for (int i = 0; i < 3; i++)
        job_free(v[i]);
}

static void test_printable(void **state)
{
    char out[32];

    (void)state;
    lc_printable("pkio-agent", 10, out, sizeof(out));
    assert_string_equal(out, "pkio-agent");
    lc_printable("a\nb\x7f", 4, out, sizeof(out));
    assert_string_equal(out, "a?b?");
    lc_printable("Jos\xc3\xa9", 5, out, sizeof(out));
    assert_string_equal(out, "Jos\xc3\xa9");
    lc_printable("x\xff\xc3", 3, out, sizeof(out)); /* bad byte, cut sequence */
    assert_string_equal(out, "x??");
    lc_printable("\xed\xa0\x80", 3, out, sizeof(out)); /* a surrogate */
    assert_string_equal(out, "???");
    lc_printable("\xc0\xaf", 2, out, sizeof(out)); /* overlong */
    assert_string_equal(out, "??");
    lc_printable("abcdef", 6, out, 4);
    assert_string_equal(out, "abc");
    lc_printable("ab\xc3\xa9", 4, out, 4); /* a sequence that does not fit is left out */
    assert_string_equal(out, "ab");
}

static int load(const char *text, struct cfg **ret, char *err, size_t errlen)
{
    return cfg_load_mem(text, strlen(text), "t", ret, err, errlen);
}

static void test_config(void **state)
{
    struct cfg *cfg = NULL;
    char err[256];

    (void)state;
    assert_int_equal(cfg_new_defaults(&cfg), 0);
    assert_int_equal(cfg->renew_warn_days, 60);
    cfg_free(cfg);
    cfg = NULL;
    assert_int_equal(load("{\"renew\": {\"warn_days\": 30}}", &cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg->renew_warn_days, 30);
    cfg_free(cfg);
    cfg = NULL;
    assert_int_equal(load("{\"renew.warn_days\": 3650}", &cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg->renew_warn_days, 3650);
    cfg_free(cfg);
    cfg = NULL;
    assert_int_equal(load("{\"renew\": {\"warn_days\": 0}}", &cfg, err, sizeof(err)), PA_E_CONFIG);
    assert_non_null(strstr(err, "renew.warn_days"));
    assert_int_equal(load("{\"renew\": {\"warn_days\": 3651}}", &cfg, err, sizeof(err)),
                     PA_E_CONFIG);
    assert_int_equal(load("{\"renew\": {\"warn_days\": 1.5}}", &cfg, err, sizeof(err)),
                     PA_E_CONFIG);
    assert_int_equal(load("{\"renew\": {\"warn_days\": \"30\"}}", &cfg, err, sizeof(err)),
                     PA_E_CONFIG);
    assert_int_equal(load("{\"renew\": {\"warn_dayz\": 30}}", &cfg, err, sizeof(err)), PA_E_CONFIG);
    assert_non_null(strstr(err, "renew.warn_dayz"));
    assert_null(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_days),      cmocka_unit_test(test_parse_date),
        cmocka_unit_test(test_decide),    cmocka_unit_test(test_ids_and_serials),
        cmocka_unit_test(test_match),     cmocka_unit_test(test_revocation),
        cmocka_unit_test(test_printable), cmocka_unit_test(test_config),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
