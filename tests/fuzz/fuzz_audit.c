/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_audit.c - the audit log's line check, verifier and tail reader (agent/core/audit.c, included
 * so syslog stays off).
 *
 * Each input is (1) checked as one line by audit_check_line, (2) written as audit.log in a
 * private temporary directory and verified, (3) read line by line as a journal (audit_parse_anchor)
 * and compared with that log (audit_compare_journal), (4) appended to and verified again.
 * Invariants: only PA_E_JOB for bad input; a clean log of N lines verifies as N lines and takes
 * an append (N + 1 lines after); a broken log names a line in 1..N+1, and an append either is
 * refused or leaves the first break where it was; an anchor taken has every field well-formed,
 * and every finding names lines first <= last, at most AUDIT_MAX_FINDINGS of them.
 */
#include "audit.c"

#include "fuzz.h"

static char fuzz_dir[4096], fuzz_log[4200];

static void fuzz_cleanup(void)
{
    (void)unlink(fuzz_log);
    (void)rmdir(fuzz_dir);
}

/* A private directory, on tmpfs when there is one (appends fsync). */
static void fuzz_setup_once(void)
{
    const char *base = getenv("TMPDIR");

    if (fuzz_dir[0])
        return;
    audit_syslog_enabled = false;
    if (!base || !*base)
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    (void)snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/pkio-fuzz-audit.XXXXXX", base);
    FUZZ_CHECK(mkdtemp(fuzz_dir) != NULL);
    (void)snprintf(fuzz_log, sizeof(fuzz_log), "%s/audit.log", fuzz_dir);
    FUZZ_CHECK(atexit(fuzz_cleanup) == 0);
}

static void fuzz_write_log(const uint8_t *data, size_t size)
{
    int fd = open(fuzz_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(audit_write_all(fd, (const char *)data, size) == 0);
    FUZZ_CHECK(close(fd) == 0);
}

#define FUZZ_MAX_ANCHORS 64

/* The input's lines as journal lines: the anchors among them, compared with the log. */
static void fuzz_anchors(const uint8_t *data, size_t size)
{
    struct audit_anchor a[FUZZ_MAX_ANCHORS], x;
    struct audit_report rep;
    struct audit_walk w;
    size_t n = 0, start = 0;

    for (size_t i = 0; i <= size && n < FUZZ_MAX_ANCHORS; i++) {
        int r;

        if (i < size && data[i] != '\n')
            continue;
        r = audit_parse_anchor((const char *)data + start, i - start, &x);
        FUZZ_CHECK(r == 0 || r == 1);
        start = i + 1;
        if (r == 0)
            continue;
        FUZZ_CHECK(x.seq >= 1 && audit_is_hash(x.sha256) && audit_is_hash(x.prev));
        FUZZ_CHECK(strlen(x.chain) == 16 && strlen(x.log) == 16 && strlen(x.job) <= 32);
        x.order = (long)n;
        a[n++] = x;
    }
    audit_walk_init(&w);
    FUZZ_CHECK(audit_walk_file(fuzz_log, &w, NULL, 0) == 0);
    memset(&rep, 0, sizeof(rep));
    FUZZ_CHECK(audit_compare_journal(w.hashes, w.n, a, n, &rep) == 0);
    FUZZ_CHECK(rep.nfindings <= AUDIT_MAX_FINDINGS && rep.anchors == (long)n);
    for (size_t i = 0; i < rep.nfindings; i++)
        FUZZ_CHECK(rep.findings[i].first >= 1 && rep.findings[i].first <= rep.findings[i].last);
    audit_report_clear(&rep);
    free(w.hashes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct audit_event ev = {.event = "fuzz", .outcome = "ok", .order_id = 1};
    char err[512];
    long lines = -1, bad = -1, lines2 = -1, bad2 = -1, nl = 0;
    struct stat st;
    int r, r2;

    fuzz_setup_once();

    err[0] = '\0';
    r = audit_check_line((const char *)data, size, 1, AUDIT_ZERO_PREV, err, sizeof(err));
    FUZZ_CHECK(r == 0 || r == PA_E_JOB);
    FUZZ_CHECK(r == 0 || err[0]);

    for (size_t i = 0; i < size; i++)
        nl += data[i] == '\n';
    fuzz_write_log(data, size);
    err[0] = '\0';
    r = audit_verify(fuzz_dir, &lines, &bad, err, sizeof(err));
    FUZZ_CHECK(r == 0 || r == PA_E_JOB);
    if (r == 0) {
        FUZZ_CHECK(lines == nl && bad == -1);
        FUZZ_CHECK(size == 0 || data[size - 1] == '\n');
    } else {
        FUZZ_CHECK(bad >= 1 && bad <= nl + 1 && err[0] && lines == -1);
    }
    fuzz_anchors(data, size);

    r2 = audit_append(fuzz_dir, &ev);
    FUZZ_CHECK(r2 == 0 || r2 == PA_E_JOB);
    if (r2 != 0) {
        FUZZ_CHECK(r != 0); /* a clean log always takes an append */
        FUZZ_CHECK(stat(fuzz_log, &st) == 0 && (size_t)st.st_size == size);
    } else {
        r2 = audit_verify(fuzz_dir, &lines2, &bad2, err, sizeof(err));
        if (r == 0)
            FUZZ_CHECK(r2 == 0 && lines2 == lines + 1);
        else
            FUZZ_CHECK(r2 == PA_E_JOB && bad2 == bad);
    }
    (void)unlink(fuzz_log);
    return 0;
}
