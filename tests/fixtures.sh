# SPDX-License-Identifier: LGPL-2.1-or-later
# A private software TPM and LUKS2 image files: the fixtures the shell test
# suites (through tests/lib.sh), bench/run and demo share, so that each is
# made in one place. Source it; it defines functions only (no traps, no
# shell options).

# need COMMAND...: tests/lib.sh's need skips the test (exit 77); without it,
# a missing command is an error.
declare -F need >/dev/null || need() {
        local c
        for c in "$@"; do
                command -v "$c" >/dev/null 2>&1 || { echo "$c is not installed" >&2; return 1; }
        done
}

# swtpm_start DIR: starts a swtpm daemon with its state, its sockets (DIR/sock,
# DIR/sock.ctrl) and its pid file (DIR/pid) in DIR, the TPM already started
# up (startup-clear), and waits until it accepts. Sets SWTPM_PID, SWTPM_SOCK
# and SWTPM_TCTI (the TCTI string for it); fails when swtpm does not come up.
swtpm_start() {
        local dir=$1
        need swtpm || return 1
        mkdir -p "$dir"
        rm -f "$dir/sock" "$dir/sock.ctrl" "$dir/pid"
        "$(dirname "${BASH_SOURCE[0]}")/../tools/swtpm-run" "$dir" --pid file="$dir/pid" --daemon || return 1
        for _ in $(seq 100); do
                [ -S "$dir/sock" ] && [ -s "$dir/pid" ] && break
                sleep 0.05
        done
        if ! [ -S "$dir/sock" ] || ! [ -s "$dir/pid" ]; then
                echo "swtpm did not start in $dir" >&2
                return 1
        fi
        SWTPM_PID=$(cat "$dir/pid")
        SWTPM_SOCK=$dir/sock
        SWTPM_TCTI="swtpm:path=$dir/sock"
}

# swtpm_running DIR: the swtpm started in DIR is still running (its pid is
# a process serving DIR/sock, not a later process that got the same pid).
swtpm_running() {
        local pid
        pid=$(cat "$1/pid" 2>/dev/null) || return 1
        [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
        tr '\0' '\n' < "/proc/$pid/cmdline" 2>/dev/null | grep -qxF "type=unixio,path=$1/sock"
}

# swtpm_stop DIR: stops the swtpm started in DIR, if it still runs, and
# waits (up to 5 s) until it has gone.
swtpm_stop() {
        local pid
        swtpm_running "$1" || return 0
        pid=$(cat "$1/pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 100); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.05
        done
}

# make_luks IMAGE PASSPHRASE [SIZE]: a LUKS2 image file (SIZE for
# truncate(1), default 20M) whose keyslot 0 opens with PASSPHRASE, with
# PBKDF2 at 1000 iterations so that the KDF costs next to nothing.
make_luks() {
        need cryptsetup || return 1
        rm -f "$1"
        truncate -s "${3:-20M}" "$1"
        printf '%s' "$2" | cryptsetup luksFormat --type luks2 --batch-mode \
                --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file - "$1" >/dev/null
}
