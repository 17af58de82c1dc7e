/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_verify.c - verifying the audit log (audit.h): the whole file's chain (audit_verify),
 * and the full check (audit_verify_report) against the job records' last lines and the
 * journal's anchors; the findings and their texts.
 */
#include "audit.h"
#include "audit_internal.h"

#include "i18n.h"
#include "job.h"
#include "log.h"
#include "pa_err.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------- */
/* Reading the whole file                                                                   */

void audit_walk_init(struct audit_walk *w)
{
    memset(w, 0, sizeof(*w));
    memcpy(w->prev, AUDIT_ZERO_PREV, sizeof(w->prev));
}

/* One complete line: check it against the chain (until the first break) and keep its hash. */
static int audit_walk_add(struct audit_walk *w, const char *line, size_t len)
{
    int r;

    if (w->n == w->cap) {
        long cap = w->cap ? w->cap * 2 : 256;
        char *nh = cap < LONG_MAX / (2 * AUDIT_SHA256_HEX)
                       ? realloc(w->hashes, (size_t)cap * AUDIT_SHA256_HEX)
                       : NULL;

        if (!nh)
            return PA_E_NOMEM;
        w->hashes = nh;
        w->cap = cap;
    }
    if (w->bad == 0) {
        r = audit_check_line(line, len, w->n + 1, w->prev, w->err, sizeof(w->err));
        if (r == PA_E_NOMEM)
            return r;
        if (r < 0)
            w->bad = w->n + 1;
    }
    r = audit_sha256_hex(line, len, w->prev);
    if (r < 0)
        return r;
    memcpy(w->hashes + (size_t)w->n * AUDIT_SHA256_HEX, w->prev, AUDIT_SHA256_HEX);
    w->n++;
    return 0;
}

/* Feed the complete lines in buf[0..have) to w; *ret_used: the bytes they took. */
static int audit_walk_buf(struct audit_walk *w, const char *buf, size_t have, size_t *ret_used)
{
    size_t start = 0;
    const char *nl;

    while ((nl = memchr(buf + start, '\n', have - start)) != NULL) {
        size_t len = (size_t)(nl - (buf + start));
        int r = audit_walk_add(w, buf + start, len);

        if (r < 0)
            return r;
        start += len + 1;
    }
    *ret_used = start;
    return 0;
}

/* Read the whole file (at most AUDIT_MAX_LINE + 1 bytes in memory at a time). */
static int audit_walk_fd(int fd, const char *path, struct audit_walk *w, char *errbuf,
                         size_t errlen)
{
    const size_t cap = AUDIT_MAX_LINE + 1;
    char *buf = malloc(cap);
    size_t have = 0, used = 0;
    int r = buf ? 0 : PA_E_NOMEM;

    while (r == 0) {
        ssize_t n = read(fd, buf + have, cap - have);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            (void)pa_errf(errbuf, errlen, 0, "%s: %s", path, strerror(errno));
            r = PA_E_IO;
        }
        if (n <= 0)
            break;
        have += (size_t)n;
        r = audit_walk_buf(w, buf, have, &used);
        memmove(buf, buf + used, have - used);
        have -= used;
        if (have == cap)
            break;
    }
    if (r == 0 && have > 0 && w->bad == 0) {
        w->bad = w->n + 1;
        (void)snprintf(w->err, sizeof(w->err), "%s",
                       have == cap ? audit_tr(N_("longer than 65536 bytes"))
                                   : audit_tr(N_("incomplete: no newline at the end of the file "
                                                 "(cut off mid-write?)")));
    }
    free(buf);
    return r;
}

/* Walk the log at path under a shared lock. A missing file: w->missing, 0 lines. */
int audit_walk_file(const char *path, struct audit_walk *w, char *errbuf, size_t errlen)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK), r = 0;

    if (fd < 0) {
        if (errno == ENOENT) {
            w->missing = true;
            return 0;
        }
        return pa_errf(errbuf, errlen, PA_E_IO, "%s: %s", path, strerror(errno));
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        (void)pa_errf(errbuf, errlen, 0, audit_tr(N_("%s: not a regular file")), path);
        r = PA_E_IO;
    }
    while (r == 0 && flock(fd, LOCK_SH) < 0) {
        if (errno != EINTR) {
            (void)pa_errf(errbuf, errlen, 0, audit_tr(N_("%s: cannot lock: %s")), path,
                          strerror(errno));
            r = PA_E_IO;
        }
    }
    if (r == 0) {
        w->owner = st.st_uid;
        r = audit_walk_fd(fd, path, w, errbuf, errlen);
    }
    close(fd);
    return r;
}

int audit_verify(const char *state_dir, long *ret_lines, long *ret_bad_line, char *errbuf,
                 size_t errlen)
{
    struct audit_walk w;
    char *path = NULL;
    int r;

    if (!state_dir)
        return PA_E_INTERNAL;
    audit_walk_init(&w);
    if (asprintf(&path, "%s/%s", state_dir, AUDIT_FILE) < 0)
        return PA_E_NOMEM;
    r = audit_walk_file(path, &w, errbuf, errlen);
    if (r == 0 && w.bad) {
        r = PA_E_JOB;
        if (ret_bad_line)
            *ret_bad_line = w.bad;
        (void)pa_errf(errbuf, errlen, 0, audit_tr(N_("%s: line %ld: %s")), path, w.bad, w.err);
    }
    if (r == 0 && ret_lines)
        *ret_lines = w.n;
    free(w.hashes);
    free(path);
    return r;
}

/* ---------------------------------------------------------------------------------------- */
/* Comparing                                                                                */

bool audit_finding_tampered(enum audit_finding_kind kind)
{
    return kind != AF_PENDING;
}

/* Add a finding to rep; consecutive lines of one kind about no job become one range. */
static void audit_add(struct audit_report *rep, const struct audit_finding *nf)
{
    struct audit_finding *f = rep->nfindings ? &rep->findings[rep->nfindings - 1] : NULL;
    bool ranged = nf->kind == AF_REWRITTEN || nf->kind == AF_UNANCHORED || nf->kind == AF_CONFLICT;

    if (f && ranged && f->kind == nf->kind && f->last + 1 == nf->first) {
        f->last = nf->last;
        return;
    }
    if (!rep->findings)
        rep->findings = calloc(AUDIT_MAX_FINDINGS, sizeof(*rep->findings));
    if (!rep->findings || rep->nfindings == AUDIT_MAX_FINDINGS) {
        rep->dropped++;
        return;
    }
    rep->findings[rep->nfindings++] = *nf;
}

static int audit_anchor_cmp(const void *a, const void *b)
{
    const struct audit_anchor *x = a, *y = b;
    int c = strcmp(x->chain, y->chain);

    if (c == 0)
        c = (x->seq > y->seq) - (x->seq < y->seq);
    if (c == 0)
        c = strcmp(x->sha256, y->sha256);
    if (c == 0)
        c = (x->order > y->order) - (x->order < y->order);
    return c;
}

/* Sorted anchors without repeats of one (chain, seq, sha256); returns the new count. */
static size_t audit_anchor_dedupe(struct audit_anchor *v, size_t n)
{
    size_t out = 0;

    for (size_t i = 0; i < n; i++) {
        if (out > 0 && strcmp(v[out - 1].chain, v[i].chain) == 0 && v[out - 1].seq == v[i].seq &&
            strcmp(v[out - 1].sha256, v[i].sha256) == 0)
            continue;
        v[out++] = v[i];
    }
    return out;
}

/* The chain the file should hold: its own when the journal has it, else the latest one. */
static void audit_pick_chain(const struct audit_anchor *v, size_t n, const char *first_hash,
                             char out[AUDIT_ID_LEN + 1])
{
    long latest = -1;

    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (first_hash && strncmp(v[i].chain, first_hash, AUDIT_ID_LEN) == 0) {
            memcpy(out, v[i].chain, AUDIT_ID_LEN + 1);
            return;
        }
        if (v[i].order > latest) {
            latest = v[i].order;
            memcpy(out, v[i].chain, AUDIT_ID_LEN + 1);
        }
    }
}

/* Judge line k (hash h) by the anchors s[0..m) of its seq; first: the first anchored seq. */
static void audit_judge_line(long k, const char *h, const struct audit_anchor *s, size_t m,
                             long first, struct audit_report *rep)
{
    struct audit_finding f;
    const char *other = NULL;
    bool found = false;

    for (size_t x = 0; x < m; x++) {
        if (strcmp(s[x].sha256, h) == 0)
            found = true;
        else if (!other)
            other = s[x].sha256;
    }
    if ((m == 0 && k < first) || (found && m == 1))
        return; /* older than the journal, or anchored and unique */
    memset(&f, 0, sizeof(f));
    f.first = f.last = k;
    f.kind = m == 0 ? AF_UNANCHORED : found ? AF_CONFLICT : AF_REWRITTEN;
    if (other)
        memcpy(f.want, other, AUDIT_ID_LEN);
    memcpy(f.got, h, AUDIT_ID_LEN);
    audit_add(rep, &f);
}

/* Compare the file's lines with the anchors v[0..n) of its chain (sorted by seq). */
static void audit_compare_lines(const char *hashes, long n_lines, const struct audit_anchor *v,
                                size_t n, struct audit_report *rep)
{
    struct audit_finding f;
    size_t i = 0, j;

    if (n == 0)
        return;
    rep->journal_first = v[0].seq <= n_lines ? v[0].seq : 0;
    for (long k = 1; k <= n_lines; k++) {
        while (i < n && v[i].seq < k)
            i++;
        for (j = i; j < n && v[j].seq == k; j++)
            ;
        audit_judge_line(k, hashes + (size_t)(k - 1) * AUDIT_SHA256_HEX, v + i, j - i, v[0].seq,
                         rep);
        i = j;
    }
    while (i < n && v[i].seq <= n_lines)
        i++;
    if (i == n)
        return;
    memset(&f, 0, sizeof(f));
    f.kind = n_lines == 0 ? AF_LOG_MISSING : AF_TRUNCATED;
    f.first = v[i].seq;
    f.last = v[n - 1].seq;
    memcpy(f.chain, v[i].chain, sizeof(f.chain));
    audit_add(rep, &f);
}

/* Every chain of this log in the journal other than mine: not in the file. */
static void audit_other_chains(const struct audit_anchor *v, size_t n, const char *mine,
                               struct audit_report *rep)
{
    struct audit_finding f;

    for (size_t i = 0, j; i < n; i = j) {
        for (j = i; j < n && strcmp(v[j].chain, v[i].chain) == 0; j++)
            ;
        if (strcmp(v[i].chain, mine) == 0)
            continue;
        memset(&f, 0, sizeof(f));
        f.kind = AF_OTHER_CHAIN;
        f.first = v[i].seq;
        f.last = v[j - 1].seq;
        memcpy(f.chain, v[i].chain, sizeof(f.chain));
        audit_add(rep, &f);
    }
}

int audit_compare_journal(const char *hashes, long n_lines, const struct audit_anchor *anchors,
                          size_t n_anchors, struct audit_report *rep)
{
    struct audit_anchor *v;
    char mine[AUDIT_ID_LEN + 1];
    size_t n = 0, lo, hi;

    if (!rep || (n_lines > 0 && !hashes) || (n_anchors > 0 && !anchors))
        return PA_E_INTERNAL;
    v = calloc(2 * n_anchors + 1, sizeof(*v));
    if (!v)
        return PA_E_NOMEM;
    for (size_t i = 0; i < n_anchors; i++) {
        v[n++] = anchors[i];
        if (anchors[i].seq > 1) { /* prev anchors the line before once more */
            v[n] = anchors[i];
            v[n].seq--;
            memcpy(v[n++].sha256, anchors[i].prev, AUDIT_SHA256_HEX);
        }
    }
    rep->anchors = (long)n_anchors;
    audit_pick_chain(v, n, n_lines > 0 ? hashes : NULL, mine);
    qsort(v, n, sizeof(*v), audit_anchor_cmp);
    n = audit_anchor_dedupe(v, n);
    for (lo = 0; lo < n && strcmp(v[lo].chain, mine) != 0; lo++)
        ;
    for (hi = lo; hi < n && strcmp(v[hi].chain, mine) == 0; hi++)
        ;
    audit_compare_lines(hashes, n_lines, v + lo, hi - lo, rep);
    audit_other_chains(v, n, mine, rep);
    free(v);
    return 0;
}

/* One job record against the file. */
static void audit_compare_job(const char *hashes, long n_lines, const struct job *j,
                              struct audit_report *rep)
{
    struct audit_finding f;
    const char *h;

    if (j->audit_seq <= 0)
        return;
    memset(&f, 0, sizeof(f));
    (void)snprintf(f.job, sizeof(f.job), "%s", j->id);
    f.first = f.last = j->audit_seq;
    memcpy(f.want, j->audit_sha256, AUDIT_ID_LEN);
    if (j->audit_seq > n_lines) {
        f.kind = AF_JOB_PAST_END;
        f.first = n_lines + 1;
        audit_add(rep, &f);
        return;
    }
    h = hashes + (size_t)(j->audit_seq - 1) * AUDIT_SHA256_HEX;
    if (strcasecmp(h, j->audit_sha256) == 0)
        return;
    f.kind = AF_JOB_MISMATCH;
    memcpy(f.got, h, AUDIT_ID_LEN);
    audit_add(rep, &f);
}

/* A note for a record whose events are not all in the log yet. */
static void audit_note_pending(const struct job *j, struct audit_report *rep)
{
    struct audit_finding f;

    if (!j->audit_pending || !j->audit_pending[0])
        return;
    memset(&f, 0, sizeof(f));
    f.kind = AF_PENDING;
    (void)snprintf(f.job, sizeof(f.job), "%s", j->id);
    audit_add(rep, &f);
}

int audit_compare_jobs(const char *hashes, long n_lines, bool log_missing, struct job *const *jobs,
                       size_t n_jobs, struct audit_report *rep)
{
    struct audit_finding f;

    if (!rep || (n_jobs > 0 && !jobs) || (n_lines > 0 && !hashes))
        return PA_E_INTERNAL;
    memset(&f, 0, sizeof(f));
    f.kind = AF_LOG_MISSING;
    for (size_t i = 0; i < n_jobs; i++) {
        const struct job *j = jobs[i];

        audit_note_pending(j, rep);
        if (!log_missing) {
            audit_compare_job(hashes, n_lines, j, rep);
            continue;
        }
        /* no log: name the record that saw the most lines; one whose events are all still
         * pending needs no log yet */
        if (j->audit_seq <= 0 && j->audit_pending && j->audit_pending[0])
            continue;
        if (!f.job[0] || j->audit_seq > f.last) {
            (void)snprintf(f.job, sizeof(f.job), "%s", j->id);
            f.first = j->audit_seq > 0 ? 1 : 0;
            f.last = j->audit_seq;
        }
    }
    if (f.job[0])
        audit_add(rep, &f);
    rep->jobs = (long)n_jobs;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* The full check                                                                           */

static int audit_verify_jobs(const char *state_dir, const struct audit_walk *w,
                             struct audit_report *rep, char *errbuf, size_t errlen)
{
    struct job **list = NULL;
    size_t n = 0;
    char err[512] = "";
    int r = job_list(state_dir, &list, &n, err, sizeof(err));

    if (r < 0)
        return pa_errf(errbuf, errlen, r, audit_tr(N_("job records: %s")), err);
    if (err[0]) /* a corrupt record was set aside (and named): it holds no usable seq */
        log_debug("audit: %s", err);
    r = audit_compare_jobs(w->hashes, w->n, rep->log_missing, list, n, rep);
    job_list_free(list, n);
    return r;
}

static int audit_verify_journal(const char *state_dir, const struct audit_verify_opts *o,
                                const struct audit_walk *w, struct audit_report *rep, char *errbuf,
                                size_t errlen)
{
    struct audit_anchors a = {0};
    char logid[AUDIT_ID_LEN + 1];
    struct stat st;
    uid_t owner = w->missing ? (stat(state_dir, &st) == 0 ? st.st_uid : geteuid()) : w->owner;
    int r;

    audit_log_id(state_dir, logid);
    if (o->journal_file)
        r = audit_anchors_from_file(o->journal_file, logid, &a, errbuf, errlen);
    else
        r = audit_anchors_from_journal(owner, o->since, logid, &a, errbuf, errlen);
    if (r == 0 && a.n == 0 && w->n > 0) {
        if (o->journal_file)
            (void)pa_errf(
                errbuf, errlen, 0,
                audit_tr(N_("the %s holds no anchor of this log (log id %s): run as root or "
                            "as a member of group systemd-journal or adm, or give "
                            "--journal-file")),
                o->journal_file, logid);
        else
            (void)pa_errf(
                errbuf, errlen, 0,
                audit_tr(N_("the journal holds no anchor of this log (log id %s): run as "
                            "root or as a member of group systemd-journal or adm, or give "
                            "--journal-file")),
                logid);
        r = PA_E_IO;
    }
    if (r == 0)
        r = audit_compare_journal(w->hashes, w->n, a.v, a.n, rep);
    free(a.v);
    return r;
}

/* What the file itself says: its lines and the first break of its chain. */
static void audit_report_file(const struct audit_walk *w, struct audit_report *rep)
{
    struct audit_finding f;

    rep->lines = w->n;
    rep->log_missing = w->n == 0 && w->bad == 0;
    rep->bad_line = w->bad;
    (void)snprintf(rep->reason, sizeof(rep->reason), "%s", w->bad ? w->err : "");
    if (!w->bad)
        return;
    memset(&f, 0, sizeof(f));
    f.kind = AF_CHAIN_BROKEN;
    f.first = f.last = w->bad;
    audit_add(rep, &f);
}

static bool audit_report_tampered(const struct audit_report *rep)
{
    for (size_t i = 0; i < rep->nfindings; i++)
        if (audit_finding_tampered(rep->findings[i].kind))
            return true;
    return rep->dropped > 0;
}

int audit_verify_report(const char *state_dir, const struct audit_verify_opts *o,
                        struct audit_report *rep, char *errbuf, size_t errlen)
{
    struct audit_walk w;
    char *path = NULL;
    int r;

    if (!rep)
        return PA_E_INTERNAL;
    memset(rep, 0, sizeof(*rep));
    rep->anchors = -1;
    if (!state_dir || !o)
        return PA_E_INTERNAL;
    audit_walk_init(&w);
    if (asprintf(&path, "%s/%s", state_dir, AUDIT_FILE) < 0)
        return PA_E_NOMEM;
    r = audit_walk_file(path, &w, errbuf, errlen);
    if (r == 0) {
        audit_report_file(&w, rep);
        r = audit_verify_jobs(state_dir, &w, rep, errbuf, errlen);
    }
    if (r == 0 && o->against_journal)
        r = audit_verify_journal(state_dir, o, &w, rep, errbuf, errlen);
    if (r == 0 && audit_report_tampered(rep))
        r = PA_E_JOB;
    free(w.hashes);
    free(path);
    return r;
}

void audit_report_clear(struct audit_report *rep)
{
    if (!rep)
        return;
    free(rep->findings);
    rep->findings = NULL;
    rep->nfindings = 0;
}

const char *audit_finding_name(enum audit_finding_kind kind)
{
    static const char *const names[] = {
        [AF_CHAIN_BROKEN] = "chain_broken", [AF_LOG_MISSING] = "log_missing",
        [AF_TRUNCATED] = "truncated",       [AF_REWRITTEN] = "rewritten",
        [AF_CONFLICT] = "conflict",         [AF_UNANCHORED] = "unanchored",
        [AF_OTHER_CHAIN] = "other_chain",   [AF_JOB_PAST_END] = "job_past_end",
        [AF_JOB_MISMATCH] = "job_mismatch", [AF_PENDING] = "pending",
    };

    if ((unsigned)kind >= sizeof(names) / sizeof(names[0]) || !names[kind])
        return "unknown";
    return names[kind];
}

/* "line 5" or "lines 5..7" */
static const char *audit_lines(const struct audit_finding *f, char *buf, size_t len)
{
    if (f->first == f->last)
        (void)snprintf(buf, len, audit_tr(N_("line %ld")), f->first);
    else
        (void)snprintf(buf, len, audit_tr(N_("lines %ld..%ld")), f->first, f->last);
    return buf;
}

/* The text of AF_LOG_MISSING: what says the log existed (a job record, or the journal). */
static void audit_missing_text(const struct audit_finding *f, char *buf, size_t len)
{
    char l[64];

    if (f->job[0] && f->last > 0)
        (void)snprintf(
            buf, len,
            audit_tr(N_("the log is missing or empty, but job %s recorded audit line %ld: "
                        "deleted")),
            f->job, f->last);
    else if (f->job[0])
        (void)snprintf(buf, len,
                       audit_tr(N_("the log is missing or empty, but job %s exists: deleted")),
                       f->job);
    else
        (void)snprintf(
            buf, len,
            audit_tr(N_("the log is missing or empty, but the journal anchored %s: deleted")),
            audit_lines(f, l, sizeof(l)));
}

/* The texts of the findings about a job record (AF_JOB_PAST_END, AF_JOB_MISMATCH, AF_PENDING). */
static void audit_job_text(const struct audit_finding *f, char *buf, size_t len)
{
    if (f->kind == AF_JOB_PAST_END)
        (void)snprintf(
            buf, len,
            audit_tr(N_("job %s recorded audit line %ld, but the log ends at line %ld: tail cut "
                        "off or log replaced")),
            f->job, f->last, f->first - 1);
    else if (f->kind == AF_JOB_MISMATCH)
        (void)snprintf(
            buf, len,
            audit_tr(N_("line %ld differs from what job %s recorded (job %s..., file %s...): "
                        "rewritten")),
            f->first, f->job, f->want, f->got);
    else
        (void)snprintf(
            buf, len,
            audit_tr(N_("job %s holds audit events not in the log yet; they are appended when "
                        "the job is next resumed")),
            f->job);
}

void audit_finding_text(const struct audit_finding *f, char *buf, size_t len)
{
    char l[64];

    switch (f->kind) {
    case AF_CHAIN_BROKEN:
        (void)snprintf(buf, len, audit_tr(N_("line %ld breaks the chain")), f->first);
        return;
    case AF_LOG_MISSING:
        audit_missing_text(f, buf, len);
        return;
    case AF_TRUNCATED:
        (void)snprintf(
            buf, len,
            audit_tr(N_("%s missing: the journal anchored them, the file ends at line %ld: tail "
                        "cut off")),
            audit_lines(f, l, sizeof(l)), f->first - 1);
        return;
    case AF_REWRITTEN:
        (void)snprintf(
            buf, len,
            audit_tr(N_("%s differ from the journal's anchors (line %ld: journal %s..., file "
                        "%s...): rewritten")),
            audit_lines(f, l, sizeof(l)), f->first, f->want, f->got);
        return;
    case AF_CONFLICT:
        (void)snprintf(buf, len,
                       audit_tr(N_("%s have two different anchors in the journal: forged anchors")),
                       audit_lines(f, l, sizeof(l)));
        return;
    case AF_UNANCHORED:
        (void)snprintf(
            buf, len,
            audit_tr(N_("%s have no anchor in the journal: written without pkio-agent, or syslog "
                        "lost them")),
            audit_lines(f, l, sizeof(l)));
        return;
    case AF_OTHER_CHAIN:
        (void)snprintf(
            buf, len,
            audit_tr(N_("the journal anchored another chain of this log (chain %s, %s) that the "
                        "file does not hold: replaced, or moved aside (then verify --since after "
                        "the move)")),
            f->chain, audit_lines(f, l, sizeof(l)));
        return;
    case AF_JOB_PAST_END:
    case AF_JOB_MISMATCH:
    case AF_PENDING:
        audit_job_text(f, buf, len);
        return;
    }
    (void)snprintf(buf, len, audit_tr(N_("unknown finding")));
}
