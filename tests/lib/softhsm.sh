# shellcheck shell=bash
# softhsm.sh - a private SoftHSM2 token directory per test (token-test-recipes.md 1.1).
#
#   source "$PKIO_SRC/tests/lib/common.sh"; source "$PKIO_SRC/tests/lib/softhsm.sh"
#   softhsm_setup "$(pkio_tmpdir)"            # or: softhsm_setup DIR LABEL
#
# softhsm_setup DIR [LABEL]
#   Writes DIR/softhsm2.conf with DIR/tokens as the token directory, exports SOFTHSM2_CONF,
#   initialises a token (default label pkio-test, SO PIN 12345678, user PIN 1234) with
#   `softhsm2-util --init-token --free` and writes the user PIN to DIR/pin (0600). Exports:
#     SOFTHSM_MODULE=/usr/lib/softhsm/libsofthsm2.so   SOFTHSM2_CONF
#     TOKEN_LABEL TOKEN_SERIAL TOKEN_URI="pkcs11:token=LABEL;serial=SERIAL"
#     TOKEN_MODULE (= SOFTHSM_MODULE) TOKEN_PIN=1234 TOKEN_SO_PIN=12345678 TOKEN_PIN_FILE=DIR/pin
#     SOFTHSM_TOKEN_LABEL SOFTHSM_TOKEN_SERIAL SOFTHSM_TOKEN_URI (same values; they survive a
#     later tpm2_setup, which overwrites the TOKEN_* ones)
#   SoftHSM needs no daemon, so there is nothing to stop; the directory goes with PKIO_ROOT.
# softhsm_add_token DIR LABEL
#   Another token in the same directory, same PINs; prints its serial. Labels may repeat
#   (the serial tells the tokens apart).
# softhsm_delete_token LABEL [SERIAL]
#   softhsm2-util --delete-token for the token with that label (in $SOFTHSM2_CONF); with SERIAL,
#   the token with that serial (use it when labels repeat; LABEL is then only informative).
# softhsm_serials
#   Prints the serial of every initialised token in $SOFTHSM2_CONF, one a line.
# softhsm_stage_setup STAGE
#   A second, private token directory STAGE/tokens (with STAGE/softhsm2.conf) that no process
#   watching $SOFTHSM2_CONF sees: tokens are built there, objects and all, then inserted whole.
# softhsm_stage_token STAGE LABEL
#   Initialise a token (same PINs) in STAGE; prints its serial.
# softhsm_stage_run STAGE CMD...
#   Run CMD (e.g. pkcs11-tool --module "$SOFTHSM_MODULE" ...) with SOFTHSM2_CONF set to STAGE's.
# softhsm_token_path DIR LABEL
#   The directory DIR/tokens/UUID of the token labelled LABEL (labels must be unique in DIR).
# softhsm_insert_staged STAGE DIR LABEL
#   Move the token LABEL from STAGE into DIR/tokens in one rename: a watcher of DIR sees it
#   appear complete, never half-built.

SOFTHSM_SO_PIN=12345678
SOFTHSM_USER_PIN=1234

softhsm_serials()
{
    softhsm2-util --show-slots 2>/dev/null |
        awk '/^[[:space:]]*Serial number:/ { if (NF >= 3) print $3 }'
}

# Initialises a free slot under $SOFTHSM2_CONF; prints the new token's serial.
_softhsm_init()
{
    local label=$1 before after s new=''
    before=$(softhsm_serials)
    softhsm2-util --init-token --free --label "$label" --so-pin "$SOFTHSM_SO_PIN" \
        --pin "$SOFTHSM_USER_PIN" >"$PKIO_ROOT/softhsm-init.log" 2>&1 ||
        fail "softhsm2-util --init-token --label $label failed: $(cat "$PKIO_ROOT/softhsm-init.log")"
    after=$(softhsm_serials)
    for s in $after; do
        if ! grep -qxF -- "$s" <<<"$before"; then
            [[ -z $new ]] || fail "more than one new SoftHSM token appeared: $new $s"
            new=$s
        fi
    done
    [[ -n $new ]] || fail "cannot find the serial of the new SoftHSM token '$label'"
    printf '%s\n' "$new"
}

softhsm_setup()
{
    [[ $# -ge 1 && $# -le 2 ]] || fail "usage: softhsm_setup DIR [LABEL]"
    local dir=$1 label=${2:-pkio-test} serial
    require_cmd softhsm2-util pkcs11-tool
    SOFTHSM_MODULE=/usr/lib/softhsm/libsofthsm2.so
    [[ -e $SOFTHSM_MODULE ]] || fail "$SOFTHSM_MODULE missing (apt-get install softhsm2)"
    mkdir -p "$dir/tokens" || fail "cannot create $dir/tokens"
    chmod 0700 "$dir" "$dir/tokens"
    cat >"$dir/softhsm2.conf" <<EOF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
slots.mechanisms = ALL
library.reset_on_fork = false
EOF
    export SOFTHSM2_CONF=$dir/softhsm2.conf
    serial=$(_softhsm_init "$label") || exit 1
    write_secret_file "$dir/pin" "$SOFTHSM_USER_PIN"

    export SOFTHSM_MODULE TOKEN_MODULE=$SOFTHSM_MODULE
    export TOKEN_LABEL=$label TOKEN_SERIAL=$serial
    TOKEN_URI="pkcs11:token=$(pkio_uri_encode "$label");serial=$(pkio_uri_encode "$serial")"
    export TOKEN_URI TOKEN_PIN=$SOFTHSM_USER_PIN TOKEN_SO_PIN=$SOFTHSM_SO_PIN
    export TOKEN_PIN_FILE=$dir/pin
    export SOFTHSM_TOKEN_LABEL=$TOKEN_LABEL SOFTHSM_TOKEN_SERIAL=$TOKEN_SERIAL
    export SOFTHSM_TOKEN_URI=$TOKEN_URI
}

softhsm_add_token()
{
    [[ $# -eq 2 ]] || fail "usage: softhsm_add_token DIR LABEL"
    [[ -f $1/softhsm2.conf ]] || fail "softhsm_add_token: run softhsm_setup $1 first"
    SOFTHSM2_CONF=$1/softhsm2.conf _softhsm_init "$2"
}

softhsm_delete_token()
{
    [[ $# -ge 1 && $# -le 2 ]] || fail "usage: softhsm_delete_token LABEL [SERIAL]"
    [[ -n ${SOFTHSM2_CONF:-} ]] || fail "softhsm_delete_token: SOFTHSM2_CONF is not set"
    local sel=(--token "$1")
    if [[ $# -eq 2 ]]; then
        sel=(--serial "$2")
    fi
    softhsm2-util --delete-token "${sel[@]}" >"$PKIO_ROOT/softhsm-delete.log" 2>&1 ||
        fail "softhsm2-util --delete-token ${sel[*]} failed: $(cat "$PKIO_ROOT/softhsm-delete.log")"
}

softhsm_stage_setup()
{
    [[ $# -eq 1 ]] || fail "usage: softhsm_stage_setup STAGE"
    mkdir -p "$1/tokens" || fail "cannot create $1/tokens"
    chmod 0700 "$1" "$1/tokens"
    cat >"$1/softhsm2.conf" <<EOF
directories.tokendir = $1/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
slots.mechanisms = ALL
library.reset_on_fork = false
EOF
}

softhsm_stage_token()
{
    [[ $# -eq 2 ]] || fail "usage: softhsm_stage_token STAGE LABEL"
    [[ -f $1/softhsm2.conf ]] || fail "softhsm_stage_token: run softhsm_stage_setup $1 first"
    SOFTHSM2_CONF=$1/softhsm2.conf _softhsm_init "$2"
}

softhsm_stage_run()
{
    [[ $# -ge 2 ]] || fail "usage: softhsm_stage_run STAGE CMD..."
    local stage=$1
    shift
    SOFTHSM2_CONF=$stage/softhsm2.conf "$@"
}

softhsm_token_path()
{
    [[ $# -eq 2 ]] || fail "usage: softhsm_token_path DIR LABEL"
    local f n=0 found=''
    for f in "$1"/tokens/*/token.object; do
        [[ -e $f ]] || continue
        if grep -qF -- "$2" "$f"; then
            found=$(dirname "$f")
            n=$((n + 1))
        fi
    done
    [[ $n -eq 1 ]] || fail "softhsm_token_path: $n tokens in $1 match label '$2'"
    printf '%s\n' "$found"
}

softhsm_insert_staged()
{
    [[ $# -eq 3 ]] || fail "usage: softhsm_insert_staged STAGE DIR LABEL"
    local from
    from=$(softhsm_token_path "$1" "$3") || exit 1
    mv -- "$from" "$2/tokens/" || fail "cannot move token $3 into $2/tokens"
}
