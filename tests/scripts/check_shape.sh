#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The shape of the code under agent/ and pkcs11/ (recursively), and the man page against the
# command table. One line per problem, then exit 1; exit 0 when all holds. A missing tool is a
# failure, never a skip (tests/scripts/deps.sh test installs them).
#   - every function: pmccabe complexity <= 15 and <= 80 lines;
#   - every .c/.h: <= 900 lines, and clang-format (the repo's .clang-format) changes nothing;
#   - cppcheck (warning, performance, portability) finds nothing;
#   - docs/pkio-agent.8's SYNOPSIS is the command table's synopses (`pkio-agent COMMAND --help`),
#     line for line, both ways; `COMMAND --help` exits 0, `queue add --help` is a usage error.
# Usage: check_shape.sh [SRC_DIR]   (PKIO_SRC, else the repository this script is in; the program
# is PKIO_AGENT, else SRC_DIR/build/agent/pkio-agent)
set -uo pipefail
export LC_ALL=C.UTF-8 LANGUAGE=

src=${1:-${PKIO_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}}
agent=${PKIO_AGENT:-$src/build/agent/pkio-agent}
max_ccn=15 max_fn_lines=80 max_file_lines=900
problems=0

problem() {
    echo "shape: $*"
    problems=$((problems + 1))
}

have() {
    command -v "$1" >/dev/null 2>&1 && return 0
    problem "$1 is not installed (bash tests/scripts/deps.sh test)"
    return 1
}

cd "$src" || { echo "shape: no source directory $src"; exit 1; }
mapfile -t files < <(find agent pkcs11 -type f \( -name '*.c' -o -name '*.h' \) | LC_ALL=C sort)
[ ${#files[@]} -gt 0 ] || { echo "shape: no sources under $src/agent or $src/pkcs11"; exit 1; }

# Function size and complexity (pmccabe, tab-separated: modified-ccn ccn statements first-line
# lines file(line): name; the limits apply to the first and the fifth).
check_functions() {
    have pmccabe || return
    local line
    while IFS= read -r line; do problem "$line"; done < <(
        pmccabe "${files[@]}" 2>/dev/null |
            awk -F'\t' -v c="$max_ccn" -v l="$max_fn_lines" '
                $1 + 0 > c { printf "%s: complexity %d > %d\n", $6, $1, c }
                $5 + 0 > l { printf "%s: %d lines > %d\n", $6, $5, l }')
}

check_file_sizes() {
    local f n
    for f in "${files[@]}"; do
        n=$(wc -l <"$f")
        [ "$n" -le "$max_file_lines" ] || problem "$f: $n lines > $max_file_lines"
    done
}

check_format() {
    have clang-format || return
    local line
    # One run for all files; the first place per file that clang-format would change.
    while IFS= read -r line; do
        problem "clang-format: $line: not formatted (clang-format -i ${line%%:*})"
    done < <(clang-format --dry-run -Werror "${files[@]}" 2>&1 |
        sed -n 's/^\([^ :]*:[0-9]*:[0-9]*\): error: .*Wclang-format-violations.*/\1/p' |
        awk -F: '!seen[$1]++')
    clang-format --dry-run "${files[0]}" >/dev/null 2>&1 || problem "clang-format does not run"
}

# Quiet on today's code, loud on real bugs (out of bounds, leaks, use after free, misuse of the C
# library). A justified exception is an inline `// cppcheck-suppress ID` on the line before.
check_cppcheck() {
    have cppcheck || return
    local out
    out=$(cppcheck --enable=warning,performance,portability --error-exitcode=1 --inline-suppr -q \
        --std=c11 --language=c -j "$(nproc 2>/dev/null || echo 2)" \
        -I agent/base -I agent/ca -I pkcs11 -I agent/core -I agent/cli \
        --template='{file}:{line}: {severity}: {message} [{id}]' agent pkcs11 2>&1)
    local rc=$?
    [ -n "$out" ] && while IFS= read -r line; do problem "cppcheck: $line"; done <<<"$out"
    [ $rc -eq 0 ] || [ -n "$out" ] || problem "cppcheck failed (exit $rc) without saying why"
}

# Squeeze blanks (stdin to stdout).
norm() { sed -e 's/[[:space:]]\+/ /g' -e 's/^ //' -e 's/ $//'; }

# The man page's SYNOPSIS as text, one line per command line.
man_synopsis() {
    groff -man -Tascii -P-cbou -rLL=3000n docs/pkio-agent.8 2>/dev/null |
        sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' | sed '1d;$d' | norm |
        sed -n 's/^pkio-agent \[global-options\] //p'
}

# The table's synopses into $table: `pkio-agent COMMAND --help` for every command `pkio-agent
# --help` lists; a command with subcommands ("queue add ... | queue list ...") gives one line each.
table=""
table_synopsis() {
    local cmds c out rc
    cmds=$("$agent" --lang en --help 2>/dev/null | sed -n '/^commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }')
    [ -n "$cmds" ] || { problem "'$agent --help' lists no commands"; return; }
    for c in $cmds; do
        out=$("$agent" --lang en "$c" --help 2>&1)
        rc=$?
        [ $rc -eq 0 ] || problem "'pkio-agent $c --help' exits $rc, not 0"
        out=$(printf '%s\n' "$out" | norm | sed -n 's/^usage: pkio-agent \[global options\] //p')
        [ -n "$out" ] || { problem "'pkio-agent $c --help' shows no synopsis"; continue; }
        table+=$(printf '%s\n' "$out" | sed "s/ | $c /\\n$c /g")$'\n'
    done
    table=${table%$'\n'}
}

check_synopsis() {
    have groff || return
    [ -x "$agent" ] || { problem "no program $agent to ask for its synopses (set PKIO_AGENT)"; return; }
    local man line rc
    man=$(man_synopsis)
    table_synopsis
    [ -n "$man" ] || { problem "docs/pkio-agent.8: no SYNOPSIS lines"; return; }
    while IFS= read -r line; do
        grep -qxF -- "$line" <<<"$man" || problem "docs/pkio-agent.8 SYNOPSIS lacks: $line"
    done <<<"$table"
    while IFS= read -r line; do
        grep -qxF -- "$line" <<<"$table" ||
            problem "docs/pkio-agent.8 SYNOPSIS has what the command table does not: $line"
    done <<<"$man"
    # The man page (DESCRIPTION) says so: after queue add, --help is a usage error.
    "$agent" --lang en queue add --help >/dev/null 2>&1
    rc=$?
    [ $rc -eq 2 ] || problem "'pkio-agent queue add --help' exits $rc, not 2 (a usage error)"
}

check_functions
check_file_sizes
check_format
check_cppcheck
check_synopsis

if [ "$problems" -gt 0 ]; then
    echo "shape: $problems problem(s)"
    exit 1
fi
echo "shape: ok (${#files[@]} files)"
