#!/usr/bin/env bash
# Print the template of every user-facing message in the sources (a .pot) on stdout; with file
# arguments (relative to the source tree), of those files only.
# The keywords: _() and N_() (agent/base/i18n.h), and the functions that translate their own
# format (cli_fail's 3rd argument, cli_fail_hint's 4th; its hint, the 3rd, is marked N_(); the
# same for diag_fail's 4th and diag_fail_hint's 5th).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
cd "$src"
files=("$@")
[[ ${#files[@]} -gt 0 ]] || files=(agent/base/*.c agent/ca/*.c pkcs11/*.c agent/core/*.c agent/cli/*.c)
xgettext --language=C --from-code=UTF-8 --no-wrap --sort-by-file --add-location=file --add-comments=TRANSLATORS: \
    --package-name=pkio-agent --msgid-bugs-address=https://github.com/pkio-agent/pkio-agent/issues \
    --keyword=_ --keyword=N_ --keyword=cli_fail:3 --keyword=cli_fail_hint:4 --keyword=diag_fail:4 --keyword=diag_fail_hint:5 \
    -o - "${files[@]}" | sed 's/^"Content-Type: text\/plain; charset=CHARSET\\n"$/"Content-Type: text\/plain; charset=UTF-8\\n"/'
