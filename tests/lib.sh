# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared helpers for the shell test suites: a private swtpm, LUKS2 images,
# assertions. Source it; it sets `set -euo pipefail` and a cleanup trap.
set -euo pipefail

BUILD_DIR=${UNLOCKD_BUILD_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build}
SOURCE_DIR=${UNLOCKD_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
UNLOCKD=${UNLOCKD:-$BUILD_DIR/agent/unlockd}
UNLOCKCTL=${UNLOCKCTL:-$BUILD_DIR/agent/unlockctl}

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
_cleanup_hooks=()

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
say() { echo "== $*"; }

need() {
        for c in "$@"; do
                command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"
        done
}

on_exit() { _cleanup_hooks+=("$1"); }

_cleanup() {
        local rc=$?
        for h in "${_cleanup_hooks[@]}"; do eval "$h" || true; done
        stop_swtpm
        rm -rf "$TEST_DIR"
        exit $rc
}
trap _cleanup EXIT

# Starts a fresh swtpm (state in $TEST_DIR/tpm unless $1 names a directory)
# and exports TCTI and TPM2TOOLS_TCTI.
start_swtpm() {
        local state=${1:-$TEST_DIR/tpm}
        need swtpm
        mkdir -p "$state"
        SWTPM_SOCK=$state/sock
        rm -f "$SWTPM_SOCK" "$SWTPM_SOCK.ctrl"
        swtpm socket --tpm2 --tpmstate dir="$state" \
                --server type=unixio,path="$SWTPM_SOCK" \
                --ctrl type=unixio,path="$SWTPM_SOCK.ctrl" \
                --flags not-need-init,startup-clear \
                --pid file="$state/pid" --daemon
        for _ in $(seq 100); do
                [ -S "$SWTPM_SOCK" ] && [ -s "$state/pid" ] && break
                sleep 0.05
        done
        SWTPM_PID=$(cat "$state/pid")
        export TCTI="swtpm:path=$SWTPM_SOCK"
        export TPM2TOOLS_TCTI=$TCTI
}

stop_swtpm() {
        if [ -n "${SWTPM_PID:-}" ]; then
                kill "$SWTPM_PID" 2>/dev/null || true
                for _ in $(seq 100); do kill -0 "$SWTPM_PID" 2>/dev/null || break; sleep 0.05; done
                SWTPM_PID=
        fi
}

# make_luks IMAGE PASSPHRASE: a small LUKS2 image with fast PBKDF2.
make_luks() {
        need cryptsetup
        rm -f "$1"
        truncate -s 20M "$1"
        printf '%s' "$2" | cryptsetup luksFormat --type luks2 --batch-mode \
                --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file - "$1" >/dev/null
}

# opens_with IMAGE PASSPHRASE: the passphrase opens a keyslot.
opens_with() {
        printf '%s' "$2" | cryptsetup open --test-passphrase --key-file - "$1" >/dev/null 2>&1
}

# Asserts that the TPM holds no transient object and no session.
assert_no_tpm_leaks() {
        local t s
        t=$(tpm2_getcap handles-transient | grep -c 0x || true)
        s=$(tpm2_getcap handles-loaded-session | grep -c 0x || true)
        s2=$(tpm2_getcap handles-saved-session | grep -c 0x || true)
        [ "$t" = 0 ] && [ "$s" = 0 ] && [ "$s2" = 0 ] || fail "TPM leaks: $t transient objects, $s loaded + $s2 saved sessions after $1"
}

# json_get JSON PYTHON-EXPR: evaluates an expression on the parsed JSON `j`.
json_get() {
        python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"
}

assert_eq() {
        [ "$1" = "$2" ] || fail "${3:-value}: expected '$2', got '$1'"
}
