#!/usr/bin/env bash
# Officers without sudo (docs/ARCHITECTURE.md "Officers and the daemon"), on SoftHSM2 against the
# sandbox, with real users: the daemon runs as a non-root user of its own ("pkio-agent"-like, its
# primary group the officers' group as the packaged unit has it), an officer is a non-root member
# of the officers' group, an outsider is neither. Needs root (useradd); the users and groups are
# removed again at the end.
#   - the daemon shares what holds no secret with the group: STATE_DIR 0750, jobs/ 2750,
#     audit.log 0640, queue/ 2750, its socket 0660; the API key and the request copies stay 0600;
#   - the officer queues a request holding card data (valid-card.json) through the socket: it is
#     queued under the officer's login name; the officer lists the queue, runs `status` and
#     `audit verify`, and cannot read the API key file or the request copy;
#   - refused at intake, with a reason, nothing queued: the outsider (by the socket's permission,
#     and by the daemon's own check when an administrator opened the socket to everyone), a
#     malformed entry, an officer's entry naming a PIN file;
#   - an entry planted in the private queue as a symbolic link, or owned by another user, is set
#     aside in queue/rejected/ with its reason (listed by `queue list`) and never taken;
#   - the daemon enrolls the officer's request on a blank token; once the order is placed the
#     card number is nowhere in the state directory (the request copy is wiped and removed), and
#     when the job is done the taken entry is gone too; the job's audit lines name the officer.
source "$PKIO_SRC/tests/lib/common.sh"
source "$PKIO_SRC/tests/lib/softhsm.sh"
source "$PKIO_SRC/tests/integration/cc_lib.sh"
source "$PKIO_SRC/tests/integration/enroll_lib.sh"
require_cmd openssl python3 curl pkcs11-tool setpriv runuser useradd userdel groupadd groupdel
if [[ $(id -u) -ne 0 ]]; then
    echo "skip: needs root to create the test users"
    exit 77
fi

# --- users and groups (names unique to this run) -------------------------------------------------
OFF=pkt-off-$$ # the officers' group
AGT=pkt-agt-$$ # the daemon's user
OFC=pkt-ofc-$$ # an officer
XTR=pkt-xtr-$$ # someone else on the machine
groupadd --system "$OFF" || fail "groupadd $OFF"
pkio_on_exit "groupdel '$OFF' 2>/dev/null || true"
for u in "$AGT" "$OFC" "$XTR"; do
    useradd --system --no-create-home --shell /usr/sbin/nologin --user-group "$u" || fail "useradd $u"
    pkio_on_exit "userdel '$u' 2>/dev/null || true; groupdel '$u' 2>/dev/null || true"
done
usermod -a -G "$OFF" "$OFC" || fail "usermod $OFC"
as_daemon() { setpriv --reuid="$AGT" --regid="$OFF" --groups="$AGT" -- "$@"; }
as_officer() { runuser -u "$OFC" -- "$@"; }
as_outsider() { runuser -u "$XTR" -- "$@"; }

# --- the station: files the daemon's user owns, a configuration everyone reads -------------------
chmod 0711 "$PKIO_ROOT" # others may pass through to the station, nothing more
ST=$PKIO_ROOT/station
PUB=$PKIO_ROOT/pub
mkdir -m 0755 "$ST" "$PUB"
softhsm_setup "$ST/softhsm" officer-desk # the officer's own token, ignored by the daemon
desk_serial=$TOKEN_SERIAL
stage=$ST/stage
softhsm_stage_setup "$stage"
enroll_setup "$SOFTHSM_MODULE"
cp "$SB/tls-ca.pem" "$SB/root.pem" "$PUB/"
# valid-card.json orders for individual 21, already known to the account
cc_sandbox_post /__sandbox/individuals \
    '{"individuals":[{"id":21,"first_name":"Johanna","last_name":"de Vries","email":"j.devries@notariaat-devries.example.nl"}]}'
install -m 0600 -o "$AGT" -g "$AGT" "$CC_KEY_FILE" "$ST/api.key"
install -m 0600 -o "$AGT" -g "$AGT" "$TOKEN_PIN_FILE" "$ST/pin"
chmod 0644 "$PUB"/*
STATE=$ST/state
CFG=$PUB/config.json
cat >"$CFG" <<JSON
{"api": {"url": "$CC_URL", "key_file": "$ST/api.key", "ca_bundle": "$PUB/tls-ca.pem",
         "timeout_s": 3, "connect_timeout_s": 2, "order_settle_s": 4},
 "token": {"module": "$SOFTHSM_MODULE", "allow_software": true},
 "trust": {"anchors": "$PUB/root.pem"},
 "poll": {"initial_s": 0.05, "max_s": 0.2, "timeout_s": 60},
 "state_dir": "$STATE"}
JSON
chmod 0644 "$CFG"
chown -R "$AGT:$AGT" "$ST/softhsm" "$stage"
chown "$AGT:$AGT" "$ST"
chmod 0755 "$ST"
pa() { "$PKIO_AGENT" --config "$CFG" "$@"; }
card=4111111111111111
card_in_state() { grep -rqs "$card" "$STATE"; }
audit_count() { # EVENT OUTCOME [DETAIL-SUBSTRING]: lines of the audit log
    python3 - "$STATE/audit.log" "$@" <<'PY'
import json, sys
n = 0
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("event") == sys.argv[2] and e.get("outcome") == sys.argv[3] and \
            (len(sys.argv) < 5 or sys.argv[4] in e.get("detail", "")):
        n += 1
print(n)
PY
}
modes() { stat -c '%a %G' "$1"; }
# Like pkio_wait_until, but by the clock: the conditions here run a few processes each.
wait_secs() {
    local end=$((SECONDS + $1)) desc=$2
    shift 2
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < end)) || fail "gave up after waiting for $desc"
        sleep 0.2
    done
}

pkio_spawn watch setpriv --reuid="$AGT" --regid="$OFF" --groups="$AGT" -- "$PKIO_AGENT" \
    --config "$CFG" watch --detect rescan --rescan 0.3 --pin-source "$ST/pin" \
    --ignore "$desk_serial" --retry 0.5 --officers "$OFF"
watch_pid=$PKIO_SPAWN_PID
pkio_wait_until 20 "watch ready" grep -q "ready" "$PKIO_ROOT/watch.log"
[[ $(stat -c %U "$STATE") == "$AGT" ]] || fail "the state directory is not the daemon's"
[[ $(modes "$STATE") == "750 $OFF" && $(modes "$STATE/jobs") == "2750 $OFF" &&
    $(modes "$STATE/audit.log") == "640 $OFF" && $(modes "$STATE/queue") == "2750 $OFF" &&
    $(modes "$STATE/queue/intake.sock") == "660 $OFF" ]] ||
    fail "shared modes: $(stat -c '%a %U:%G %n' "$STATE" "$STATE"/* "$STATE/queue"/*)"
pass "daemon as $AGT: STATE_DIR 0750, jobs/ 2750, audit.log 0640, queue/ 2750, socket 0660, all group $OFF"

# --- the officer queues a request with card data ------------------------------------------------
OD=$PKIO_ROOT/officer
install -d -m 0700 -o "$OFC" -g "$OFC" "$OD"
install -m 0600 -o "$OFC" -g "$OFC" "$PKIO_SRC/tests/data/requests/valid-card.json" "$OD/card.json"
expect_exit 0 -- as_officer "$PKIO_AGENT" --config "$CFG" queue add --request "$OD/card.json"
grep -q "queued [0-9a-f]\{32\} for the first blank token" "$OUT" || fail "queue add said: $(cat "$OUT")"
id=$(awk '{print $2}' "$OUT")
expect_exit 0 -- as_officer "$PKIO_AGENT" --config "$CFG" queue list
grep -q "^$id .*queued by $OFC" "$OUT" || fail "queue list (officer): $(cat "$OUT")"
[[ $(stat -c '%a %U' "$STATE/queue/$id.request.json") == "600 $AGT" ]] || fail "request copy mode"
expect_exit nonzero -- as_officer cat "$STATE/queue/$id.request.json"
expect_exit nonzero -- as_officer cat "$ST/api.key"
expect_exit 0 -- as_officer "$PKIO_AGENT" --config "$CFG" status
expect_exit 0 -- as_officer "$PKIO_AGENT" --config "$CFG" audit verify
[[ $(audit_count queue-intake ok "queued by officer $OFC") -eq 1 ]] ||
    fail "no audit line naming the officer: $(tail -n 2 "$STATE/audit.log")"
pass "officer $OFC (no sudo): queue add through the socket, queue list, status, audit verify; cannot read the API key or the request copy"

# --- refused at intake ---------------------------------------------------------------------------
entries() { find "$STATE/queue" -maxdepth 1 -name '*-*.json' | wc -l; }
expect_exit 16 -- as_outsider "$PKIO_AGENT" --config "$CFG" --state-dir "$STATE" queue add \
    --request "$PKIO_SRC/tests/data/requests/valid-prof.json"
grep -q "permission denied" "$ERR" || fail "outsider: $(cat "$ERR")"
expect_exit nonzero -- as_outsider "$PKIO_AGENT" --config "$CFG" status
# An administrator's mistake opens the way to the socket: the daemon still checks who is asking.
chmod 0751 "$STATE"
chmod 2751 "$STATE/queue"
chmod 0666 "$STATE/queue/intake.sock"
expect_exit 16 -- as_outsider "$PKIO_AGENT" --config "$CFG" --state-dir "$STATE" queue add \
    --request "$PKIO_SRC/tests/data/requests/valid-prof.json"
grep -q "is not root, the daemon's user or a member of group $OFF" "$ERR" || fail "peer check: $(cat "$ERR")"
chmod 0750 "$STATE"
chmod 2750 "$STATE/queue"
chmod 0660 "$STATE/queue/intake.sock"
send_raw() { # what an officer's own program might send
    as_officer python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode()); s.shutdown(socket.SHUT_WR); print(s.makefile().read())' \
        "$STATE/queue/intake.sock" "$1"
}
[[ $(send_raw '{"format":1,"request":{"certificate":') == *'"ok":false'*'not one JSON object'* ]] ||
    fail "malformed entry: $(send_raw '{"format":1,"request":{"certificate":')"
[[ $(send_raw '{"format":1,"officer":"root","request":{}}') == *'"ok":false'*'unknown member'* ]] ||
    fail "entry with an officer of its own choosing was not refused"
expect_exit 16 -- as_officer "$PKIO_AGENT" --config "$CFG" queue add --request "$OD/card.json" \
    --token "pkcs11:token=x?pin-source=$ST/api.key"
grep -q "PIN file (pin-source)" "$ERR" || fail "officer's pin-source: $(cat "$ERR")"
[[ $(entries) -eq 1 ]] || fail "something refused was queued: $(ls "$STATE/queue")"
[[ $(audit_count queue-intake refused) -eq 4 ]] ||
    fail "refusals in the audit log: $(audit_count queue-intake refused), expected 4"
pass "refused at intake with a reason, nothing queued: the outsider (socket permission; daemon's own check), malformed, own 'officer', a PIN file from an officer"

# --- planted in the private queue: a symbolic link, another user's file ---------------------------
sym=000000000001-11111111111111111111111111111111.json
foreign=000000000001-22222222222222222222222222222222.json
printf '{"format":2,"id":"11111111111111111111111111111111","request":"%s/queue/11111111111111111111111111111111.request.json","bind":null}' \
    "$STATE" >"$PKIO_ROOT/planted.json"
ln -s "$PKIO_ROOT/planted.json" "$STATE/queue/$sym"
printf '{"format":2,"id":"22222222222222222222222222222222","request":"%s/queue/22222222222222222222222222222222.request.json","bind":null}' \
    "$STATE" >"$STATE/queue/$foreign"
chmod 0640 "$STATE/queue/$foreign" # root's

# --- a blank token: the officer's request is enrolled ------------------------------------------
cc_sandbox_post /__sandbox/behavior '{"behavior":"never"}' >/dev/null
serial=$(softhsm_stage_token "$stage" person-1)
chown -R "$AGT:$AGT" "$stage"
softhsm_insert_staged "$stage" "$ST/softhsm" person-1
job_state() { as_officer "$PKIO_AGENT" --config "$CFG" status --json | python3 -c 'import json,sys; s=[j["state"] for j in json.load(sys.stdin)["jobs"] if j["token_serial"]==sys.argv[1]]; print(s[-1] if s else "")' "$serial"; }
state_is() { [[ $(job_state) == "$1" ]]; }
wait_secs 60 "order placed" state_is ordered
wait_secs 10 "the card number gone from the state directory" eval '! card_in_state'
[[ ! -e $STATE/queue/$id.request.json ]] || fail "the request copy is still there"
pass "order placed: the card number is nowhere under $STATE (request copy wiped and removed)"
expect_exit 0 -- as_officer "$PKIO_AGENT" --config "$CFG" queue list --json
python3 - "$OUT" "$sym" "$foreign" <<'EOF' || fail "rejected entries: $(cat "$OUT")"
import json, sys
q = json.load(open(sys.argv[1]))
why = {r["name"]: r["reason"] for r in q["rejected"]}
assert "symbolic link" in why[sys.argv[2]], why
assert "another user" in why[sys.argv[3]], why
assert q["queue"] == [], q
EOF
[[ ! -e $STATE/queue/$sym && ! -e $STATE/queue/$foreign && -f $PKIO_ROOT/planted.json ]] ||
    fail "planted entries not moved aside, or the link's target touched"
pass "planted in the queue: a symbolic link and another user's entry set aside in queue/rejected/ with reasons, never taken"

cc_sandbox_post /__sandbox/behavior '{"behavior":"issue","issue_after_polls":0}' >/dev/null
wait_secs 90 "job done" state_is "done"
token_cert_matches_key person-1
wait_secs 10 "taken entry cleaned up" sh -c "! ls '$STATE/queue/taken/' | grep -q '$id'"
! card_in_state || fail "the card number is back in the state directory"
job=$(as_officer "$PKIO_AGENT" --config "$CFG" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["jobs"][-1]["id"])')
actor=$(python3 -c 'import json,sys; print(",".join(sorted({e["user"]+"/"+e["user_from"] for e in map(json.loads, open(sys.argv[1])) if e.get("job_id", e.get("job")) == sys.argv[2]})))' "$STATE/audit.log" "$job")
# The daemon's children have no login session: PKIO_ACTOR (the officer) names them. Under a
# login session (a CI shell with a login uid) the session's name wins, as audit.c documents.
if [[ $(cat /proc/self/loginuid 2>/dev/null) == 4294967295 ]]; then
    [[ $actor == "$OFC/PKIO_ACTOR" ]] || fail "the job's audit lines name '$actor', not $OFC"
fi
expect_exit 0 -- as_officer "$PKIO_AGENT" --config "$CFG" audit verify
expect_exit 0 -- as_officer "$PKIO_AGENT" --config "$CFG" status "$job"
pass "enrolled from the officer's entry; taken entry removed; the job's audit lines name $OFC; status and audit verify as the officer"

# --- as systemd does when another unit with this StateDirectory= has another Group= --------------
chown -R "$AGT:$AGT" "$STATE"
chmod 0700 "$STATE"
shared_again() { [[ $(modes "$STATE") == "750 $OFF" && $(modes "$STATE/jobs") == "2750 $OFF" &&
    $(modes "$STATE/queue/intake.sock") == "660 $OFF" ]]; }
wait_secs 10 "the group's access given back" shared_again
expect_exit 0 -- as_officer "$PKIO_AGENT" --config "$CFG" status
expect_exit 0 -- as_officer "$PKIO_AGENT" --config "$CFG" queue list
grep -q "was changed under us" "$PKIO_ROOT/watch.log" || fail "the daemon did not say so"
pass "state directory given to another group (as systemd does for a unit with another Group=): the daemon gives the officers' access back"

kill -TERM "$watch_pid"
pkio_wait_until 30 "watch stopped" sh -c "! kill -0 $watch_pid 2>/dev/null"
wait "$watch_pid" 2>/dev/null && rc=0 || rc=$?
[[ $rc -eq 0 ]] || fail "watch exited $rc on SIGTERM: $(tail -n 5 "$PKIO_ROOT/watch.log")"
[[ ! -e $STATE/queue/intake.sock ]] || fail "the socket was left behind"
expect_exit nonzero -- as_officer "$PKIO_AGENT" --config "$CFG" queue add --request "$OD/card.json"
grep -q "no pkio-agent watch daemon answers" "$ERR" || fail "without the daemon: $(cat "$ERR")"
pass "SIGTERM: exit 0, socket removed; an officer is told when no daemon answers"
if grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$PKIO_ROOT/watch.log"; then
    fail "sanitizer report from the daemon or a job (above)"
fi
