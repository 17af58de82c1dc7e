#!/usr/bin/env bash
# Dutch and English everywhere: the catalogs cover every message of the sources; the same
# failures (a malformed request, a wrong PIN on a real SoftHSM2 token, a bad configuration) read
# in English and in Dutch with the same exit code; the language follows --lang, else ui.lang,
# else LANGUAGE/LC_ALL/LC_MESSAGES/LANG (also when that locale is not installed), else English;
# and --json output does not change with the language.
source "$PKIO_SRC/tests/lib/common.sh"
source "$PKIO_SRC/tests/lib/softhsm.sh"
require_cmd msgcmp msgfmt msgattrib xgettext gettext python3
[[ -f $PKIO_LOCALEDIR/nl/LC_MESSAGES/pkio-agent.mo && -f $PKIO_LOCALEDIR/en/LC_MESSAGES/pkio-agent.mo ]] ||
    fail "the catalogs are not built in $PKIO_LOCALEDIR"

# Dutch for an English msgid, from the built catalog (what the program must print).
nl() { TEXTDOMAINDIR=$PKIO_LOCALEDIR LANGUAGE=nl LC_ALL=C.UTF-8 gettext -d pkio-agent "$1"; }

# --- the catalogs cover the sources ------------------------------------------------------------
pot=$PKIO_ROOT/sources.pot
bash "$PKIO_SRC/po/xgettext.sh" >"$pot"
n=$(grep -c '^msgid "..*"' "$pot")
[[ $n -gt 300 ]] || fail "only $n messages marked for translation in the sources"
msgcmp "$PKIO_SRC/po/nl.po" "$pot" 2>"$PKIO_ROOT/msgcmp.err" ||
    fail "po/nl.po lacks translations of the sources (run po/update.sh and translate): $(head -c 2000 "$PKIO_ROOT/msgcmp.err")"
msgcmp "$PKIO_SRC/po/en.po" "$pot" 2>"$PKIO_ROOT/msgcmp.err" ||
    fail "po/en.po is behind the sources (run po/update.sh): $(head -c 2000 "$PKIO_ROOT/msgcmp.err")"
[[ -z $(msgattrib --only-fuzzy --no-obsolete "$PKIO_SRC/po/nl.po") ]] || fail "po/nl.po has fuzzy translations"
msgfmt --check-format -o /dev/null "$PKIO_SRC/po/nl.po" || fail "po/nl.po: format strings do not match"
# Spot checks that the Dutch is Dutch, not the msgid copied.
for id in "see 'pkio-agent --help'" "usage error" "PIN incorrect" \
    "fix the request file; nothing was sent"; do
    [[ $(nl "$id") != "$id" ]] || fail "'$id' is not translated in the built nl catalog"
done
pass "po/nl.po and po/en.po cover all $n messages of the sources; no fuzzy entry, formats match"

# --- a malformed request, in both languages ----------------------------------------------------
bad=$PKIO_SRC/tests/data/requests/invalid-order.json
hint_en="fix the request file; nothing was sent"
hint_nl=$(nl "$hint_en")
expect_exit 4 -- "$PKIO_AGENT" validate --request "$bad"
cp "$ERR" "$PKIO_ROOT/req.en"
grep -qF "$hint_en" "$ERR" && grep -q "certificate.signature_hash: must be \"sha256\"" "$ERR" ||
    fail "English request error: $(cat "$ERR")"
expect_exit 4 -- "$PKIO_AGENT" --lang nl validate --request "$bad"
cp "$ERR" "$PKIO_ROOT/req.nl"
grep -qF "$hint_nl" "$ERR" || fail "Dutch request error lacks '$hint_nl': $(cat "$ERR")"
grep -qF "$hint_en" "$ERR" && fail "Dutch request error still has the English hint: $(cat "$ERR")"
grep -q "certificate.signature_hash" "$ERR" || fail "the Dutch error lost the field path: $(cat "$ERR")"
grep -q "must be" "$ERR" && fail "the Dutch error has English field problems: $(cat "$ERR")"
[[ $(wc -l <"$ERR") -eq 1 ]] || fail "the Dutch error is not one line: $(cat "$ERR")"
pass "malformed request: exit 4 in both; English: $(head -c 90 "$PKIO_ROOT/req.en")...; Dutch: $(head -c 90 "$PKIO_ROOT/req.nl")..."

# --- how the language is chosen -----------------------------------------------------------------
cfg_nl=$PKIO_ROOT/nl.json cfg_en=$PKIO_ROOT/en.json
echo '{"ui": {"lang": "nl"}}' >"$cfg_nl"
echo '{"ui": {"lang": "en"}}' >"$cfg_en"
lang_of_run() { # env-args... : prints nl or en, from the hint of the malformed request
    local rc=0
    env "$@" "$PKIO_AGENT" ${CFG:+--config "$CFG"} ${LANGOPT:+--lang "$LANGOPT"} \
        validate --request "$bad" >/dev/null 2>"$PKIO_ROOT/lang.err" || rc=$?
    [[ $rc -eq 4 ]] || fail "validate exited $rc ($*): $(cat "$PKIO_ROOT/lang.err")"
    if grep -qF "$hint_nl" "$PKIO_ROOT/lang.err"; then echo nl; elif grep -qF "$hint_en" "$PKIO_ROOT/lang.err"; then echo en; else
        fail "neither language ($*): $(cat "$PKIO_ROOT/lang.err")"
    fi
}
check_lang() { # want description env-args...
    local want=$1 what=$2 got
    shift 2
    got=$(lang_of_run "$@")
    [[ $got == "$want" ]] || fail "$what: messages in '$got', expected '$want'"
}
check_lang en "C.UTF-8, no LANGUAGE"
check_lang nl "LANG=nl_NL.UTF-8 (locale not installed)" -u LC_ALL LANG=nl_NL.UTF-8
check_lang nl "LC_MESSAGES=nl_BE.UTF-8 over LANG=en_US.UTF-8" -u LC_ALL LANG=en_US.UTF-8 LC_MESSAGES=nl_BE.UTF-8
check_lang en "LC_ALL=en_GB.UTF-8 over LANG=nl_NL.UTF-8" LC_ALL=en_GB.UTF-8 LANG=nl_NL.UTF-8
check_lang nl "LANGUAGE=nl with LC_ALL=C.UTF-8" LANGUAGE=nl
check_lang en "LANGUAGE=nl with LC_ALL=C (gettext ignores LANGUAGE in the C locale)" LC_ALL=C LANGUAGE=nl
check_lang en "LANG=de_DE.UTF-8 (no catalog: English)" -u LC_ALL LANG=de_DE.UTF-8
CFG=$cfg_nl check_lang nl "ui.lang nl"
CFG=$cfg_nl check_lang nl "ui.lang nl over LANG=en_US.UTF-8" -u LC_ALL LANG=en_US.UTF-8
CFG=$cfg_en check_lang en "ui.lang en over LANG=nl_NL.UTF-8" -u LC_ALL LANG=nl_NL.UTF-8
CFG=$cfg_nl LANGOPT=en check_lang en "--lang en over ui.lang nl"
LANGOPT=nl check_lang nl "--lang nl over LC_ALL=C" LC_ALL=C
pass "language: --lang, then ui.lang, then LANGUAGE/LC_ALL/LC_MESSAGES/LANG (uninstalled locales too), else English"

# --- a bad configuration value, in both languages -----------------------------------------------
echo '{"ui": {"lang": "de"}}' >"$PKIO_ROOT/de.json"
expect_exit 3 -- "$PKIO_AGENT" --config "$PKIO_ROOT/de.json" validate --request "$bad"
grep -q 'ui.lang: must be "nl" or "en"' "$ERR" || fail "ui.lang de: $(cat "$ERR")"
expect_exit 3 -- "$PKIO_AGENT" --lang nl --config "$PKIO_ROOT/de.json" validate --request "$bad"
grep -q 'ui.lang' "$ERR" && ! grep -q 'must be' "$ERR" || fail "ui.lang de in Dutch: $(cat "$ERR")"
expect_exit 2 -- "$PKIO_AGENT" --lang fr tokens
grep -q -- "--lang" "$ERR" || fail "--lang fr: $(cat "$ERR")"
pass "ui.lang \"de\" refused (exit 3) in English and Dutch; --lang fr is a usage error"

# --- a wrong PIN on a real token, in both languages ----------------------------------------------
dir=$(pkio_tmpdir)
softhsm_setup "$dir"
write_secret_file "$dir/wrong" "9999"
pin_hint_en="no further attempt was made; check the PIN before trying again, the token counts failed attempts"
pin_hint_nl=$(nl "$pin_hint_en")
for lang in en nl; do
    expect_exit 6 -- "$PKIO_AGENT" --lang "$lang" --module "$SOFTHSM_MODULE" keygen \
        --token "$TOKEN_URI?pin-source=$dir/wrong"
    want=$pin_hint_en
    [[ $lang == nl ]] && want=$pin_hint_nl
    grep -qF "$want" "$ERR" || fail "wrong PIN ($lang) lacks its hint: $(cat "$ERR")"
    grep -q "'$TOKEN_LABEL'" "$ERR" && grep -q "$TOKEN_SERIAL" "$ERR" ||
        fail "wrong PIN ($lang) does not name the token: $(cat "$ERR")"
    grep -q 9999 "$ERR" && fail "the PIN appears in the message"
    [[ $(wc -l <"$ERR") -eq 1 ]] || fail "wrong PIN ($lang): not one line: $(cat "$ERR")"
    cp "$ERR" "$PKIO_ROOT/pin.$lang"
done
grep -q "rejected the PIN" "$PKIO_ROOT/pin.nl" && fail "Dutch wrong-PIN message is English: $(cat "$PKIO_ROOT/pin.nl")"
pass "wrong PIN on SoftHSM2: exit 6 in both; en: $(cat "$PKIO_ROOT/pin.en"); nl: $(cat "$PKIO_ROOT/pin.nl")"

# --- JSON does not change with the language ------------------------------------------------------
"$PKIO_AGENT" --json --module "$SOFTHSM_MODULE" tokens >"$PKIO_ROOT/tokens.en" 2>&1 ||
    fail "tokens --json: $(cat "$PKIO_ROOT/tokens.en")"
"$PKIO_AGENT" --lang nl --json --module "$SOFTHSM_MODULE" tokens >"$PKIO_ROOT/tokens.nl" 2>&1 ||
    fail "tokens --json in Dutch: $(cat "$PKIO_ROOT/tokens.nl")"
cmp -s "$PKIO_ROOT/tokens.en" "$PKIO_ROOT/tokens.nl" ||
    fail "--json output changes with the language: $(diff "$PKIO_ROOT/tokens.en" "$PKIO_ROOT/tokens.nl")"
pass "--json output is the same in Dutch and English"
