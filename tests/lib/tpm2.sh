# shellcheck shell=bash
# tpm2.sh - a private tpm2-pkcs11 token: swtpm + a private D-Bus + tpm2-abrmd
# (token-test-recipes.md 5.1). Three daemons, each started from this shell, recorded by PID
# and stopped on exit in the order abrmd, dbus, swtpm.
#
#   source "$PKIO_SRC/tests/lib/common.sh"; source "$PKIO_SRC/tests/lib/tpm2.sh"
#   tpm2_setup "$(pkio_tmpdir)"              # or: tpm2_setup DIR LABEL
#
# tpm2_setup DIR [LABEL]      (call it directly, not inside $(...): it registers teardown)
#   Starts swtpm (state in DIR/state), dbus-daemon with its own config (DIR/dbus.conf, no
#   system bus needed), tpm2-abrmd on that bus, waits until com.intel.tss2.Tabrmd is owned,
#   then `tpm2_ptool init` + `addtoken` (label default tpm-test, SO PIN 12345678, user PIN
#   1234) and checks that `pkcs11-tool -L` sees the token. Writes the user PIN to DIR/pin.
#   Exports:
#     TPM2_MODULE=/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so
#     TPM2_PKCS11_TCTI TPM2TOOLS_TCTI (tabrmd:bus_type=session) TPM2_PKCS11_STORE=DIR/store
#     TPM2_PKCS11_BACKEND=esysdb (keeps FAPI and its system-wide keystore out of the way)
#     DBUS_SESSION_BUS_ADDRESS
#     TOKEN_LABEL TOKEN_SERIAL TOKEN_URI="pkcs11:token=LABEL;serial=SERIAL" TOKEN_MODULE
#     TOKEN_PIN TOKEN_SO_PIN TOKEN_PIN_FILE   and TPM2_TOKEN_LABEL/_SERIAL/_URI (same values)
#     TPM2_SWTPM_PID TPM2_DBUS_PID TPM2_ABRMD_PID   the daemons, for checks after teardown
#     TPM2_SWTPM_TCTI   swtpm's own TCTI (swtpm:path=... or swtpm:host=127.0.0.1,port=N)
#     TPM2_SETUP_MS     wall time of tpm2_setup in milliseconds
#
# swtpm transport: by default a Unix socket inside DIR, so parallel tests cannot collide.
# TPM2_SWTPM_TRANSPORT=tcp uses 127.0.0.1 instead, on a port pair (N, N+1: tcti-swtpm wants
# the control channel on N+1) chosen at run time: python3 asks the kernel for a free port,
# swtpm binds it, and if another process got there first swtpm fails with "Address already
# in use" and the next pair is tried.
#
# tpm2_teardown  stops the three daemons now (normally left to the exit trap).

TPM2_MODULE_PATH=/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so
TPM2_SO_PIN=12345678
TPM2_USER_PIN=1234
_TPM2_WAIT_SECS=30

# Waits until FILE is non-empty while PID lives. Returns 0 when ready, 1 if PID exited.
_tpm2_wait_file()
{
    local pid=$1 file=$2 i
    for ((i = 0; i < _TPM2_WAIT_SECS * 50; i++)); do
        [[ -s $file ]] && return 0
        kill -0 "$pid" 2>/dev/null || {
            [[ -s $file ]] && return 0
            return 1
        }
        sleep 0.02
    done
    fail "gave up after ${_TPM2_WAIT_SECS}s waiting for $file"
}

# Prints N such that 127.0.0.1:N and :N+1 are free right now.
_tpm2_free_port_pair()
{
    python3 - <<'EOF'
import socket, sys
for _ in range(200):
    a = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    a.bind(("127.0.0.1", 0))
    port = a.getsockname()[1]
    b = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if port >= 65535:
            raise OSError("no room for port+1")
        b.bind(("127.0.0.1", port + 1))
    except OSError:
        continue
    finally:
        a.close()
        b.close()
    print(port)
    sys.exit(0)
sys.exit("no free port pair on 127.0.0.1")
EOF
}

# Starts swtpm; sets TPM2_SWTPM_PID and TPM2_SWTPM_TCTI.
_tpm2_start_swtpm()
{
    local dir=$1 sockdir=$2 transport=${TPM2_SWTPM_TRANSPORT:-unix} attempt port pidfile log
    local -a server ctrl
    for ((attempt = 1; attempt <= 20; attempt++)); do
        pidfile=$dir/swtpm.$attempt.pid
        log=$dir/swtpm.$attempt.log
        if [[ $transport == unix ]]; then
            server=(--server "type=unixio,path=$sockdir/swtpm.sock")
            ctrl=(--ctrl "type=unixio,path=$sockdir/swtpm.sock.ctrl")
            TPM2_SWTPM_TCTI="swtpm:path=$sockdir/swtpm.sock"
        elif [[ $transport == tcp ]]; then
            port=$(_tpm2_free_port_pair) || fail "cannot find a free TCP port pair"
            server=(--server "type=tcp,port=$port,bindaddr=127.0.0.1")
            ctrl=(--ctrl "type=tcp,port=$((port + 1)),bindaddr=127.0.0.1")
            TPM2_SWTPM_TCTI="swtpm:host=127.0.0.1,port=$port"
        else
            fail "TPM2_SWTPM_TRANSPORT must be unix or tcp, not '$transport'"
        fi
        swtpm socket --tpm2 --tpmstate "dir=$dir/state" "${server[@]}" "${ctrl[@]}" \
            --flags not-need-init,startup-clear --pid "file=$pidfile" \
            --log "file=$log,level=1" >"$dir/swtpm.out" 2>&1 &
        TPM2_SWTPM_PID=$!
        pkio_on_exit "pkio_stop_pid $TPM2_SWTPM_PID swtpm"
        # swtpm writes its PID file only after both sockets are listening.
        if _tpm2_wait_file "$TPM2_SWTPM_PID" "$pidfile"; then
            export TPM2_SWTPM_PID TPM2_SWTPM_TCTI
            return 0
        fi
        if [[ $transport == tcp ]] && grep -qs 'Address already in use' "$log" "$dir/swtpm.out"; then
            continue # lost the race for the port: take another pair
        fi
        fail "swtpm did not start: $(cat "$log" "$dir/swtpm.out")"
    done
    fail "swtpm: no free port pair after 20 attempts"
}

# Starts a private session bus; sets TPM2_DBUS_PID and exports DBUS_SESSION_BUS_ADDRESS.
_tpm2_start_dbus()
{
    local dir=$1 sockdir=$2 addr=''
    cat >"$dir/dbus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$sockdir/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
    rm -f "$dir/dbus.fifo"
    mkfifo -m 0600 "$dir/dbus.fifo"
    # The address is printed on fd 3 once the bus listens; a FIFO makes that the readiness
    # signal (EOF if dbus-daemon dies first). "Failed to set fd limit" on stderr is harmless.
    dbus-daemon --config-file="$dir/dbus.conf" --nofork --nopidfile --print-address=3 \
        3>"$dir/dbus.fifo" >"$dir/dbus.log" 2>&1 &
    TPM2_DBUS_PID=$!
    pkio_on_exit "pkio_stop_pid $TPM2_DBUS_PID dbus-daemon"
    read -r -t "$_TPM2_WAIT_SECS" addr <"$dir/dbus.fifo" || true
    [[ $addr == unix:* ]] || fail "dbus-daemon did not start: $(cat "$dir/dbus.log")"
    export TPM2_DBUS_PID DBUS_SESSION_BUS_ADDRESS=$addr
}

_tpm2_tabrmd_on_bus()
{
    dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.NameHasOwner string:com.intel.tss2.Tabrmd 2>/dev/null |
        grep -q 'boolean true'
}

# Starts tpm2-abrmd on the private bus; sets TPM2_ABRMD_PID.
_tpm2_start_abrmd()
{
    local dir=$1 i
    local -a root=()
    if [[ $EUID -eq 0 ]]; then
        root=(--allow-root)
    fi
    # --max-transients: the default (27 per connection) runs out after ~14 keygens in one
    # process (recipes 5.2); tests that make many keys in one process need more.
    tpm2-abrmd --session "${root[@]}" --flush-all --max-transients=64 \
        --tcti="$TPM2_SWTPM_TCTI" >"$dir/abrmd.log" 2>&1 &
    TPM2_ABRMD_PID=$!
    pkio_on_exit "pkio_stop_pid $TPM2_ABRMD_PID tpm2-abrmd"
    for ((i = 0; i < _TPM2_WAIT_SECS * 50; i++)); do
        if _tpm2_tabrmd_on_bus; then
            export TPM2_ABRMD_PID
            return 0
        fi
        kill -0 "$TPM2_ABRMD_PID" 2>/dev/null ||
            fail "tpm2-abrmd exited during start-up: $(cat "$dir/abrmd.log")"
        sleep 0.02
    done
    fail "tpm2-abrmd did not own com.intel.tss2.Tabrmd within ${_TPM2_WAIT_SECS}s: $(cat "$dir/abrmd.log")"
}

# Prints the serial of the token labelled $2 in `pkcs11-tool -L` output read from stdin.
_tpm2_serial_of()
{
    awk -v want="$1" '
        /^Slot / { label = ""; have = 0 }
        /^[[:space:]]+token label[[:space:]]*:/ {
            sub(/^[^:]*:[[:space:]]?/, ""); label = $0; have = 1
        }
        /^[[:space:]]+serial num[[:space:]]*:/ {
            sub(/^[^:]*:[[:space:]]?/, "")
            if (have && label == want) { print; exit }
        }'
}

tpm2_setup()
{
    [[ $# -ge 1 && $# -le 2 ]] || fail "usage: tpm2_setup DIR [LABEL]"
    local dir=$1 label=${2:-tpm-test} t0 sockdir serial lib
    t0=${EPOCHREALTIME/./}
    if _pkio_in_subshell; then
        fail "tpm2_setup called in a subshell: its daemons would never be stopped"
    fi
    require_cmd swtpm tpm2-abrmd tpm2_ptool dbus-daemon dbus-send pkcs11-tool ps
    if [[ ${TPM2_SWTPM_TRANSPORT:-unix} == tcp ]]; then
        require_cmd python3
    fi
    [[ -e $TPM2_MODULE_PATH ]] || fail "$TPM2_MODULE_PATH missing (apt-get install libtpm2-pkcs11-1)"
    for lib in libtss2-tcti-tabrmd.so.0 libtss2-tcti-swtpm.so.0; do
        [[ -e /usr/lib/x86_64-linux-gnu/$lib ]] ||
            fail "$lib missing (apt-get install ${lib%.so.0}0)"
    done

    mkdir -p "$dir/state" "$dir/store" || fail "cannot create $dir"
    chmod 0700 "$dir" "$dir/state" "$dir/store"
    # AF_UNIX paths are limited to 108 bytes; a deep TMPDIR gets a short socket dir in /tmp.
    sockdir=$dir
    if ((${#dir} > 80)); then
        sockdir=$(mktemp -d /tmp/pkio-tpm.XXXXXXXX) || fail "mktemp -d /tmp/pkio-tpm failed"
        pkio_on_exit "rm -rf -- '$sockdir'"
    fi

    _tpm2_start_swtpm "$dir" "$sockdir"
    _tpm2_start_dbus "$dir" "$sockdir"
    _tpm2_start_abrmd "$dir"

    export TPM2TOOLS_TCTI="tabrmd:bus_type=session"
    export TPM2_PKCS11_TCTI="tabrmd:bus_type=session"
    export TPM2_PKCS11_STORE=$dir/store TPM2_PKCS11_BACKEND=esysdb
    export TPM2_MODULE=$TPM2_MODULE_PATH

    tpm2_ptool init --path="$dir/store" >"$dir/ptool.log" 2>&1 ||
        fail "tpm2_ptool init failed: $(cat "$dir/ptool.log")"
    tpm2_ptool addtoken --pid=1 --sopin="$TPM2_SO_PIN" --userpin="$TPM2_USER_PIN" \
        --label="$label" --path="$dir/store" >>"$dir/ptool.log" 2>&1 ||
        fail "tpm2_ptool addtoken failed: $(cat "$dir/ptool.log")"

    pkcs11-tool --module "$TPM2_MODULE" -L >"$dir/slots.txt" 2>&1 ||
        fail "pkcs11-tool -L on tpm2-pkcs11 failed: $(cat "$dir/slots.txt")"
    serial=$(_tpm2_serial_of "$label" <"$dir/slots.txt")
    [[ -n $serial ]] || fail "pkcs11-tool -L does not show token '$label': $(cat "$dir/slots.txt")"
    write_secret_file "$dir/pin" "$TPM2_USER_PIN"

    export TOKEN_MODULE=$TPM2_MODULE TOKEN_LABEL=$label TOKEN_SERIAL=$serial
    TOKEN_URI="pkcs11:token=$(pkio_uri_encode "$label");serial=$(pkio_uri_encode "$serial")"
    export TOKEN_URI TOKEN_PIN=$TPM2_USER_PIN TOKEN_SO_PIN=$TPM2_SO_PIN TOKEN_PIN_FILE=$dir/pin
    export TPM2_TOKEN_LABEL=$TOKEN_LABEL TPM2_TOKEN_SERIAL=$TOKEN_SERIAL TPM2_TOKEN_URI=$TOKEN_URI
    TPM2_SETUP_MS=$(((${EPOCHREALTIME/./} - t0) / 1000))
    export TPM2_SETUP_MS
    echo "note: tpm2_setup ready in ${TPM2_SETUP_MS} ms (swtpm $TPM2_SWTPM_PID," \
        "dbus $TPM2_DBUS_PID, abrmd $TPM2_ABRMD_PID)" >&2
}

tpm2_teardown()
{
    pkio_stop_pid "${TPM2_ABRMD_PID:-}" tpm2-abrmd
    pkio_stop_pid "${TPM2_DBUS_PID:-}" dbus-daemon
    pkio_stop_pid "${TPM2_SWTPM_PID:-}" swtpm
}
