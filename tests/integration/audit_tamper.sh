#!/usr/bin/env bash
# An audit trail that proves itself (issue #10 point 2). Real enrollments on SoftHSM2 against the
# sandbox write the audit log; every line's anchor goes to a syslog the test runs (a unix datagram
# socket it owns, named by the PKIO_AUDIT_SYSLOG_SOCKET test hook, written to a syslog text file).
# Then, as someone with write access to the state directory would:
#   - cut the tail off      -> `audit verify` (the job records) and --against-journal report it
#   - delete the log        -> both report it (job records exist: not "intact, 0 lines")
#   - rewrite the chain, recomputing every hash (and fixing the job record to match)
#                           -> --against-journal reports the rewritten lines
#   - kill the agent between saving a job record and appending its audit line (before and
#     after the append: PKIO_TEST_CRASH_AT=audit-before-append / audit-after-append)
#                           -> no event lost, none written twice, and the trail verifies
source "$PKIO_SRC/tests/lib/common.sh"
source "$PKIO_SRC/tests/lib/softhsm.sh"
source "$PKIO_SRC/tests/integration/cc_lib.sh"
source "$PKIO_SRC/tests/integration/enroll_lib.sh"
require_cmd openssl python3 curl pkcs11-tool

tokdir=$(pkio_tmpdir)
softhsm_setup "$tokdir" aud-a
softhsm_add_token "$tokdir" aud-b >/dev/null
enroll_setup "$SOFTHSM_MODULE" --issue-after-polls 1
req=$PKIO_SRC/tests/data/requests/valid-prof.json
pin=$TOKEN_PIN_FILE
uri() { echo "pkcs11:token=$1?pin-source=$pin"; }
LOG=$STATE/audit.log

# --- the syslog: every datagram one line of $JOURNAL, as rsyslog would write it ----------------
sysdir=$(pkio_tmpdir)
SOCK=$sysdir/log.sock
JOURNAL=$sysdir/syslog
cat >"$sysdir/sink.py" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        out.write(s.recv(65536).replace(b"\n", b" ").rstrip() + b"\n")
EOF
pkio_spawn syslog python3 "$sysdir/sink.py" "$SOCK" "$JOURNAL"
pkio_wait_until 10 "the syslog sink" test -S "$SOCK"
export PKIO_AUDIT_SYSLOG_SOCKET=$SOCK

# Everything sent so far is in $JOURNAL once a marker sent after it is.
syslog_sync()
{
    local mark="sync-$RANDOM$RANDOM"
    python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(sys.argv[2].encode(), sys.argv[1])' \
        "$SOCK" "$mark"
    pkio_wait_until 10 "the syslog sink to catch up" grep -q "$mark" "$JOURNAL"
}
verify_journal() { syslog_sync && pa audit verify --against-journal --journal-file "$JOURNAL" "$@"; }
kinds() { python3 -c 'import json, sys; print(" ".join(sorted({f["kind"] for f in json.load(open(sys.argv[1]))["findings"]})))' "$OUT"; }
job_of_token()
{
    pa status --json | python3 -c 'import json,sys; j=[x["id"] for x in json.load(sys.stdin)["jobs"] if x["token_label"]==sys.argv[1]]; print(j[-1] if j else "")' "$1"
}
# How many lines of the log are event $2 of job $1.
count_event()
{
    python3 - "$LOG" "$1" "$2" <<'EOF'
import json, sys
print(sum(1 for l in open(sys.argv[1]) if (lambda o: o.get("job") == sys.argv[2] and o["event"] == sys.argv[3])(json.loads(l))))
EOF
}
restore() { cp "$PKIO_ROOT/pristine.log" "$LOG" && cp "$PKIO_ROOT/pristine.job" "$STATE/jobs/$job_a.json"; }

# --- an enrollment: its lines, their anchors, the job record's last line ---------------------------
expect_exit 0 -- pa enroll --token "$(uri aud-a)" --request "$req" --json
job_a=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["state"]=="done", d; print(d["job"])' "$OUT")
n=$(wc -l <"$LOG")
[[ $n -ge 7 ]] || fail "only $n audit lines for a whole enrollment"
[[ $(job_field "$job_a" audit_seq) == "$n" ]] ||
    fail "job record does not keep its last audit line (audit_seq '$(job_field "$job_a" audit_seq)', the log has $n lines): is agent/core/enroll.c wired to audit_job_intent/audit_commit_pending (agent/core/audit.h)?"
[[ -z $(job_field "$job_a" audit_pending) ]] || fail "job a still holds pending audit events"
syslog_sync
[[ $(grep -c "pkio-agent\[[0-9]*\]: audit anchor seq=[0-9]* sha256=" "$JOURNAL") -eq $n ]] ||
    fail "not one anchor per line in the syslog: $(cat "$JOURNAL")"
python3 - "$LOG" <<'EOF' || fail "audit lines do not say who acted"
import json, pwd, os, sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    assert o["user"] and o["user_from"] in ("sudo", "login", "PKIO_ACTOR", "uid"), o
    assert o["uid"] == os.getuid(), o
    if o["user_from"] == "uid":
        assert o["user"] == pwd.getpwuid(os.getuid()).pw_name, o
EOF
expect_exit 0 -- pa audit verify
grep -q "audit log intact: $n lines; job records: 1, all agree" "$OUT" || fail "verify: $(cat "$OUT")"
expect_exit 0 -- verify_journal
grep -q "journal: $n anchors, all agree" "$OUT" || fail "verify against the journal: $(cat "$OUT")"
cp "$LOG" "$PKIO_ROOT/pristine.log"
cp "$STATE/jobs/$job_a.json" "$PKIO_ROOT/pristine.job"
pass "enroll: $n audit lines, one anchor each in the syslog, the job record holds the last; verify intact with and without the journal"

# --- the tail cut off ----------------------------------------------------------------------------
expect_exit 1 -- pa audit verify --against-journal --journal-file /dev/null
grep -q "holds no anchor of this log" "$ERR" || fail "a journal without anchors vouched: $(cat "$OUT" "$ERR")"

head -n $((n - 2)) "$PKIO_ROOT/pristine.log" >"$LOG"
expect_exit 14 -- pa audit verify
grep -q "TAMPERED: job $job_a recorded audit line $n, but the log ends at line $((n - 2)): tail cut off" "$OUT" ||
    fail "a cut tail not reported from the job record: $(cat "$OUT" "$ERR")"
grep -q "tampered" "$ERR" && [[ $(wc -l <"$ERR") -eq 1 ]] || fail "not one line on stderr: $(cat "$ERR")"
expect_exit 14 -- verify_journal
grep -q "TAMPERED: lines $((n - 1))..$n missing: the journal anchored them, the file ends at line $((n - 2))" "$OUT" ||
    fail "a cut tail not reported against the journal: $(cat "$OUT")"
expect_exit 14 -- verify_journal --json
[[ $(kinds) == "job_past_end truncated" ]] || fail "findings: $(kinds)"
restore
pass "tail cut off: reported by the job record alone and against the journal (exit 14)"

# --- the log deleted -----------------------------------------------------------------------------
rm "$LOG"
expect_exit 14 -- pa audit verify
grep -q "the log is missing or empty, but job $job_a recorded audit line $n: deleted" "$OUT" ||
    fail "a deleted log not reported: $(cat "$OUT")"
expect_exit 14 -- verify_journal --json
[[ $(kinds) == "log_missing" ]] || fail "findings: $(kinds)"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert not d["intact"] and d["lines"] == 0, d' "$OUT"
restore
pass "log deleted: an error (job records exist), by the records and against the journal"

# --- the chain rewritten, every hash recomputed, the job record fixed to match ---------------------
python3 - "$LOG" "$STATE/jobs/$job_a.json" <<'EOF'
import hashlib, json, re, sys
lines = open(sys.argv[1], "rb").read().split(b"\n")[:-1]
lines[1] = lines[1].replace(b'"outcome":"ok"', b'"outcome":"refused"', 1)
prev, out = b"0" * 64, []
for l in lines:
    l = re.sub(rb'"prev":"[0-9a-f]{64}"}$', b'"prev":"' + prev + b'"}', l)
    out.append(l)
    prev = hashlib.sha256(l).hexdigest().encode()
open(sys.argv[1], "wb").write(b"\n".join(out) + b"\n")
job = json.load(open(sys.argv[2]))
job["audit_sha256"] = prev.decode()
json.dump(job, open(sys.argv[2], "w"), indent=2)
EOF
expect_exit 0 -- pa audit verify # file and records agree: only the journal can tell
expect_exit 14 -- verify_journal
grep -q "TAMPERED: lines 2..$n differ from the journal's anchors (line 2: journal [0-9a-f]*..., file [0-9a-f]*...): rewritten" "$OUT" ||
    fail "a rewritten chain not reported: $(cat "$OUT")"
cp "$PKIO_ROOT/pristine.job" "$STATE/jobs/$job_a.json" # the record not fixed: it tells too
expect_exit 14 -- pa audit verify
grep -q "TAMPERED: line $n differs from what job $job_a recorded" "$OUT" || fail "$(cat "$OUT")"
restore
expect_exit 0 -- verify_journal
pass "chain rewritten with every hash recomputed: reported against the journal (and by an unfixed job record)"

# --- killed between the record and its audit line --------------------------------------------------
expect_exit 137 -- env PKIO_TEST_CRASH_AT=audit-before-append "$PKIO_AGENT" --config "$CFG" \
    enroll --token "$(uri aud-b)" --request "$req"
job_b=$(job_of_token aud-b)
[[ -n $job_b && -n $(job_field "$job_b" audit_pending) ]] || fail "the record holds no pending event"
[[ $(count_event "$job_b" start) -eq 0 ]] || fail "the start line is in the log already"
expect_exit 0 -- verify_journal # pending in the record: a note, not tampering
grep -q "note: job $job_b holds audit events not in the log yet" "$OUT" || fail "$(cat "$OUT")"
# the next run appends it (on load), and is killed before it can save the record
expect_exit 137 -- env PKIO_TEST_CRASH_AT=audit-after-append "$PKIO_AGENT" --config "$CFG" \
    enroll --token "$(uri aud-b)" --request "$req"
[[ $(count_event "$job_b" start) -eq 1 ]] || fail "start not appended by the next load"
[[ -n $(job_field "$job_b" audit_pending) ]] || fail "the record lost its pending event"
if [[ $(id -u) -eq 0 ]]; then
    who=(env SUDO_USER=officer-kees)
else
    who=(env)
fi
expect_exit 0 -- "${who[@]}" "$PKIO_AGENT" --config "$CFG" enroll --token "$(uri aud-b)" --request "$req"
for ev in start keygen csr order issued installed done; do
    [[ $(count_event "$job_b" $ev) -eq 1 ]] || fail "job b: $(count_event "$job_b" $ev) '$ev' lines"
done
[[ $(job_field "$job_b" audit_seq) == "$(wc -l <"$LOG")" && -z $(job_field "$job_b" audit_pending) ]] ||
    fail "job b's record does not hold its last line"
if [[ $(id -u) -eq 0 ]]; then
    tail -n 1 "$LOG" | grep -q '"user":"officer-kees","user_from":"sudo"' || fail "the officer under sudo: $(tail -n 1 "$LOG")"
fi
expect_exit 0 -- verify_journal
pass "killed before and after the append: every event once, the trail verifies against the journal"
