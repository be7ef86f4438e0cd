# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared helpers for the shell test suites: a private swtpm, LUKS2 images,
# assertions. Source it; it sets `set -euo pipefail` and a cleanup trap.
set -euo pipefail

BUILD_DIR=${UNLOCKD_BUILD_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build}
SOURCE_DIR=${UNLOCKD_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
UNLOCKD=${UNLOCKD:-$BUILD_DIR/agent/unlockd}
UNLOCKCTL=${UNLOCKCTL:-$BUILD_DIR/agent/unlockctl}
# The executable itself, even when UNLOCKD is the valgrind wrapper below.
UNLOCKD_EXE=$UNLOCKD

TEST_DIR=$(mktemp -d "${TMPDIR:-/tmp}/unlockd-test.XXXXXX")

# With UNLOCKD_VALGRIND=DIR, every unlockd/unlockctl run of the test goes
# through valgrind memcheck, one log per process in DIR (checked by the
# caller: tests/valgrind-suite).
if [ -n "${UNLOCKD_VALGRIND:-}" ]; then
        mkdir -p "$TEST_DIR/bin" "$UNLOCKD_VALGRIND"
        for prog in unlockd unlockctl; do
                real=$BUILD_DIR/agent/$prog
                printf '#!/bin/sh\nexec valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect --track-fds=no --log-file=%s/%s.%%p.log %s "$@"\n' \
                        "$UNLOCKD_VALGRIND" "$prog" "$real" > "$TEST_DIR/bin/$prog"
                chmod +x "$TEST_DIR/bin/$prog"
        done
        UNLOCKD=$TEST_DIR/bin/unlockd
        UNLOCKCTL=$TEST_DIR/bin/unlockctl
fi
SWTPM_PID=
_swtpm_dirs=()  # every swtpm this test started: checked for leaks and stopped at exit
_cleanup_hooks=()

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
say() { echo "== $*"; }

need() {
        for c in "$@"; do
                command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"
        done
}

# swtpm_start/swtpm_stop/swtpm_running DIR, make_luks IMAGE PASSPHRASE [SIZE]
# (shared with bench/run and demo).
source "$(dirname "${BASH_SOURCE[0]}")/fixtures.sh"

on_exit() { _cleanup_hooks+=("$1"); }

# After a passing test, whatever it checked on the way: no TPM handle is
# left on any swtpm it started (tpm2-tss's integration tests check the same
# after each test). A swtpm the test killed, or left not answering, is not
# checked, and the log says so.
_final_leak_check() {
        local d msg rc ok=0
        for d in "${_swtpm_dirs[@]}"; do
                if ! swtpm_running "$d"; then
                        say "no final TPM leak check on the swtpm in $d: it is no longer running"
                        continue
                fi
                rc=0
                msg=$(TPM2TOOLS_TCTI="swtpm:path=$d/sock" tpm_leaks) || rc=$?
                case $rc in
                0) say "no TPM handle left at the end (swtpm in $d)" ;;
                1) echo "FAIL: TPM leaks at the end of the test: $msg (swtpm in $d)" >&2; ok=1 ;;
                2) say "no final TPM leak check on the swtpm in $d: it does not answer tpm2_getcap" ;;
                *) say "no final TPM leak check on the swtpm in $d: tpm2_getcap is not installed" ;;
                esac
        done
        return $ok
}

_cleanup() {
        local rc=$? d
        for h in "${_cleanup_hooks[@]}"; do eval "$h" || true; done
        if [ "$rc" = 0 ]; then _final_leak_check || rc=1; fi
        for d in "${_swtpm_dirs[@]}"; do swtpm_stop "$d"; done
        SWTPM_PID=
        rm -rf "$TEST_DIR"
        exit $rc
}
trap _cleanup EXIT

# Starts a fresh swtpm (state in $TEST_DIR/tpm unless $1 names a directory)
# and exports TCTI and TPM2TOOLS_TCTI. Every swtpm started is stopped at
# exit, after the final leak check.
start_swtpm() {
        local state=${1:-$TEST_DIR/tpm}
        need swtpm
        swtpm_start "$state" || fail "swtpm did not start in $state"
        _swtpm_dirs+=("$state")
        SWTPM_DIR=$state
        export TCTI=$SWTPM_TCTI
        export TPM2TOOLS_TCTI=$TCTI
}

# Stops the swtpm start_swtpm started last.
stop_swtpm() {
        if [ -n "${SWTPM_PID:-}" ]; then
                swtpm_stop "$SWTPM_DIR"
                SWTPM_PID=
        fi
}

# opens_with IMAGE PASSPHRASE: the passphrase opens a keyslot.
opens_with() {
        printf '%s' "$2" | cryptsetup open --test-passphrase --key-file - "$1" >/dev/null 2>&1
}

# tpm_leaks: prints how many transient objects and sessions the TPM
# ($TPM2TOOLS_TCTI) holds; status 0 when none, 1 when some, 2 when the TPM
# does not answer, 3 when tpm2_getcap is not installed.
tpm_leaks() {
        local t s s2
        command -v tpm2_getcap >/dev/null 2>&1 || return 3
        t=$(timeout 30 tpm2_getcap handles-transient 2>/dev/null) || return 2
        s=$(timeout 30 tpm2_getcap handles-loaded-session 2>/dev/null) || return 2
        s2=$(timeout 30 tpm2_getcap handles-saved-session 2>/dev/null) || return 2
        t=$(grep -c 0x <<<"$t" || true)
        s=$(grep -c 0x <<<"$s" || true)
        s2=$(grep -c 0x <<<"$s2" || true)
        echo "$t transient objects, $s loaded + $s2 saved sessions"
        [ "$t" = 0 ] && [ "$s" = 0 ] && [ "$s2" = 0 ]
}

# Asserts that the TPM holds no transient object and no session (and after
# every passing test, _final_leak_check does again).
assert_no_tpm_leaks() {
        local msg rc=0
        need tpm2_getcap
        msg=$(tpm_leaks) || rc=$?
        case $rc in
        0) ;;
        1) fail "TPM leaks: $msg after $1" ;;
        *) fail "cannot check for TPM leaks after $1: the TPM does not answer tpm2_getcap" ;;
        esac
}

# json_get JSON PYTHON-EXPR: evaluates an expression on the parsed JSON `j`.
json_get() {
        python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"
}

assert_eq() {
        [ "$1" = "$2" ] || fail "${3:-value}: expected '$2', got '$1'"
}

# unlockd_opens IMAGE [ENV...]: unlockd --test opens IMAGE through a TPM2
# token (with ENV, e.g. PIN=…), and leaves no TPM handle behind.
unlockd_opens() {  # IMAGE [ENV...]
        local img=$1; shift
        local out
        out=$(env "$@" "$UNLOCKD" --test --no-prompt --json --tcti="$TCTI" "$img") || fail "unlockd did not open $img: $out"
        assert_eq "$(json_get "$out" 'j["volumes"][0]["method"]')" tpm2 "method for $img"
        assert_no_tpm_leaks "unlockd on $img"
}
