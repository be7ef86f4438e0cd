#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Secrets do not outlive their use, and are never logged. Every unlockd and
# unlockctl run below goes under gdb (tests/tpm/secret-scan.py), which copies
# every readable mapping of the live process at exit(), after main() has
# returned (secret pages are MADV_DONTDUMP, so a core would not show them),
# and looks for every secret the test knows: the TPM-unsealed secret (raw,
# hex, and base64: the keyslot passphrase), the PIN and its TPM auth value,
# recovery keys as typed and normalised and their raw bytes, passphrases
# (right and wrong), the re-seal secret, the volume key. The test learns
# them independently: passphrases, PINs and typed keys are its own, TPM
# secrets come from unsealing with tpm2-tools, the re-seal secret from the
# kernel keyring, volume keys from cryptsetup, recovery keys from what
# unlockctl printed (its memory is checked again once they are known).
#
# Positive controls, so that it cannot pass by scanning nothing: the same
# scan at a call where a secret is in use (crypt_volume_key_get,
# Esys_Unseal, …) must find it, and the scan at exit must find a marker that
# is in memory then (the volume's UUID).
#
# Every run logs at debug level: its stdout, stderr, state.json and re-seal
# jobs must hold no secret (and must name the volume, and hold debug lines).
# And the processes are not dumpable, with a core size limit of 0.
#
# Under the sanitizer build of ./run-tests, LeakSanitizer is off for the gdb
# runs (it cannot work under ptrace; the other suites check leaks). The
# memcheck runs (tests/valgrind-suite) leave this test out: gdb runs the
# binaries themselves.
source "$(dirname "$0")/../lib.sh"
need swtpm cryptsetup python3 gdb keyctl tpm2_unseal tpm2_pcrextend sha256sum

start_swtpm
UNLOCKD=$BUILD_DIR/agent/unlockd
UNLOCKCTL=$BUILD_DIR/agent/unlockctl
SCAN=$SOURCE_DIR/tests/tpm/secret-scan.py
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
NEEDLES=$TEST_DIR/needles
STATE=$TEST_DIR/state
: > "$NEEDLES"

hexof() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
rnd() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
unhex() { printf "$(printf '%s' "$1" | sed 's/../\\x&/g')"; }

# secret_text LABEL TEXT: a secret that is text; also its hex form.
secret_text() {
        echo "$1 $(hexof "$2")" >> "$NEEDLES"
        echo "$1-hex $(hexof "$(hexof "$2")")" >> "$NEEDLES"
}
# secret_bytes LABEL HEX: raw secret bytes; also as hex text and as base64.
secret_bytes() {
        echo "$1 $2" >> "$NEEDLES"
        echo "$1-hex $(hexof "$2")" >> "$NEEDLES"
        echo "$1-b64 $(hexof "$(unhex "$2" | base64 -w0)")" >> "$NEEDLES"
}
# markers NAME IMAGE: the volume's UUID (in memory at exit) and path (in the logs).
markers() {
        echo "mark-uuid-$1 $(hexof "$(cryptsetup luksUUID "$2")")" >> "$NEEDLES"
        echo "mark-path-$1 $(hexof "$2")" >> "$NEEDLES"
}
# The TPM auth value of a PIN (systemd v252: SHA256, trailing zero bytes dropped).
pin_auth() { printf '%s' "$1" | sha256sum | cut -c1-64 | sed -E 's/(00)+$//'; }
# volume_key IMAGE PASSPHRASE-FILE: in hex.
volume_key() {
        cryptsetup luksDump --dump-volume-key --batch-mode --key-file "$2" "$1" |
                sed -n '/^MK dump:/,$p' | sed 's/^MK dump://' | tr -d ' \t\n'
}
# tpm_secret IMAGE TOKEN-ID PCRS [PIN]: unseals a token with tpm2-tools
# (systemd's chain, legacy ECC primary); the secret in hex.
tpm_secret() {
        local d=$TEST_DIR/unseal auth=
        mkdir -p "$d"
        cryptsetup token export --token-id "$2" "$1" | python3 -c '
import base64, json, struct, sys
t = json.load(sys.stdin); d = sys.argv[1]
b = base64.b64decode(t["tpm2-blob"]); n = struct.unpack(">H", b[:2])[0]
open(d + "/priv", "wb").write(b[:2 + n]); open(d + "/pub", "wb").write(b[2 + n:])' "$d"
        tpm2_createprimary -Q -C o -g sha256 -G ecc256:aes128cfb \
                -a 'restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth' -c "$d/primary.ctx"
        tpm2_flushcontext -t
        tpm2_load -Q -C "$d/primary.ctx" -u "$d/pub" -r "$d/priv" -c "$d/sealed.ctx"
        tpm2_flushcontext -t
        tpm2_startauthsession -Q --policy-session -S "$d/s.ctx"
        tpm2_policypcr -Q -S "$d/s.ctx" -l "sha256:$3"
        if [ -n "${4:-}" ]; then
                tpm2_policyauthvalue -Q -S "$d/s.ctx"
                auth="+hex:$(printf '%s' "$4" | sha256sum | cut -c1-64)"
        fi
        tpm2_unseal -Q -p "session:$d/s.ctx$auth" -c "$d/sealed.ctx" -o "$d/secret"
        tpm2_flushcontext "$d/s.ctx"; tpm2_flushcontext -t
        od -An -v -tx1 "$d/secret" | tr -d ' \n'
        rm -rf "$d"
}

# scan NAME ARGS… -- PROGRAM ARGS…: runs it under gdb at debug level and
# checks its memory, output and state files (secret-scan.py).
scan() {
        local name=$1; shift
        say "$name"
        python3 "$SCAN" --needles "$NEEDLES" --dump "$TEST_DIR/dump/$name" --files "$STATE" --debug-log "$@" \
                || fail "$name: a secret outlived its use or was written out, or a check was blind (above)"
}
# rescan NAME ARGS…: the same run again, against the secrets learnt since.
rescan() {
        local name=$1; shift
        python3 "$SCAN" --needles "$NEEDLES" --dump "$TEST_DIR/dump/$name" --files "$STATE" --debug-log --rescan "$@" \
                || fail "$name: a secret it made outlived its use or was written out, or a check was blind (above)"
}
recovery_key_in() { grep -Eo '([cbdefghijklnrtuv]{8}-){7}[cbdefghijklnrtuv]{8}' "$1"; }

PASSPHRASE="hygiene pass $(rnd 6)"
printf '%s' "$PASSPHRASE" > "$TEST_DIR/pass"
secret_text passphrase "$PASSPHRASE"
WRONG="wrong guess $(rnd 6)"
secret_text wrong-guess "$WRONG"

# ---- enroll: a TPM2 token with a PIN, and a recovery key ---------------------
IMG=$TEST_DIR/pin.img
make_luks "$IMG" "$PASSPHRASE"
markers pin "$IMG"
secret_bytes volume-key-pin "$(volume_key "$IMG" "$TEST_DIR/pass")"
PINVAL=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')7
secret_text pin "$PINVAL"
echo "pin-auth $(pin_auth "$PINVAL")" >> "$NEEDLES"
NEWPIN=$PINVAL scan enroll --control crypt_keyslot_add_by_passphrase --control crypt_keyslot_add_by_passphrase@2 \
        --in-use passphrase --in-use pin \
        --canary mark-uuid-pin --log-mark mark-path-pin \
        -- "$UNLOCKCTL" enroll --tpm2 --pin --pcrs=7 --recovery-key --unlock-key-file="$TEST_DIR/pass" \
        --log-level=debug --tcti="$TCTI" "$IMG"
KEY=$(recovery_key_in "$TEST_DIR/dump/enroll/stdout") || fail "enroll printed no recovery key"
opens_with "$IMG" "$KEY" || fail "the printed recovery key does not open the volume"
SECRET=$(tpm_secret "$IMG" 1 7 "$PINVAL")
opens_with "$IMG" "$(unhex "$SECRET" | base64 -w0)" || fail "tpm2-tools did not unseal the enrolled secret"
secret_text pin-recovery-key "$KEY"
secret_bytes pin-secret "$SECRET"
# The recovery key is printed once, on stdout: there, and nowhere else.
sed -i "s/$KEY/(the recovery key)/" "$TEST_DIR/dump/enroll/stdout"
rescan enroll --in-use pin-recovery-key --in-use pin-secret-b64 --canary mark-uuid-pin --log-mark mark-path-pin

# ---- unlock with the PIN: from $PIN, and typed at the prompt ------------------
PIN=$PINVAL scan unlock-pin-env --control Esys_Unseal --control crypt_volume_key_get \
        --in-use pin --in-use pin-secret-b64 --canary mark-uuid-pin --log-mark mark-path-pin --esys-session-auth pin-auth \
        -- "$UNLOCKD" --test --no-prompt --log-level=debug --state-dir="$STATE" --tcti="$TCTI" "$IMG"
scan unlock-pin-typed --control Esys_Unseal --control crypt_volume_key_get \
        --in-use pin --in-use pin-secret-b64 --canary mark-uuid-pin --log-mark mark-path-pin --esys-session-auth pin-auth \
        --expect 'TPM2 PIN: ' --send "$PINVAL\r" \
        -- "$UNLOCKD" --test --console=@CONSOLE@ --ask-password=no --log-level=debug --state-dir="$STATE" \
        --tcti="$TCTI" "$IMG"

# ---- TPM unlock without a PIN ---------------------------------------------------
IMG2=$TEST_DIR/disk.img
make_luks "$IMG2" "$PASSPHRASE"
markers disk "$IMG2"
secret_bytes volume-key-disk "$(volume_key "$IMG2" "$TEST_DIR/pass")"
KEY2=$("$UNLOCKCTL" enroll --tpm2 --pcrs=7 --recovery-key --unlock-key-file="$TEST_DIR/pass" --tcti="$TCTI" "$IMG2" 2>/dev/null)
secret_text recovery-key "$KEY2"
secret_bytes tpm-secret "$(tpm_secret "$IMG2" 1 7)"
# The unsealed secret itself is gone by the time its keyslot is tried (the
# tpm2-tss workarounds: without them ESAPI's copies are still there).
scan unlock-tpm --control Esys_Unseal --control crypt_volume_key_get --in-use tpm-secret-b64 \
        --absent-at crypt_volume_key_get=tpm-secret \
        --canary mark-uuid-disk --log-mark mark-path-disk \
        -- "$UNLOCKD" --test --no-prompt --log-level=debug --state-dir="$STATE" --tcti="$TCTI" "$IMG2"

# ---- the TPM refuses: a wrong guess, then the recovery key as people type it --
tpm2_pcrextend "7:sha256=$(printf '%064x' 7)"
TYPED=$(printf '%s' "$KEY2" | tr a-z- 'A-Z ')
secret_text recovery-key-typed "$TYPED"
secret_bytes recovery-key-bytes "$(printf '%s' "$KEY2" | tr -d - | tr cbdefghijklnrtuv 0123456789abcdef)"
scan unlock-recovery --control crypt_volume_key_get --control unlock_volume_with_input@2 \
        --control crypt_keyslot_add_by_passphrase --in-use wrong-guess --in-use recovery-key-typed \
        --in-use recovery-key --canary mark-uuid-disk --log-mark mark-path-disk \
        --expect 'Recovery key or passphrase: ' --send "$WRONG\r" --expect 'Try again' \
        --expect 'Recovery key or passphrase: ' --send "$TYPED\r" \
        -- "$UNLOCKD" --test --console=@CONSOLE@ --ask-password=no --log-level=debug --state-dir="$STATE" \
        --tcti="$TCTI" "$IMG2"
UUID2=$(cryptsetup luksUUID "$IMG2")
[ -s "$STATE/reseal/$UUID2.json" ] || fail "no re-seal job was written"
RESEAL=$(keyctl pipe "$(keyctl search @u user "unlockd:reseal:$UUID2")" | od -An -v -tx1 | tr -d ' \n')
[ ${#RESEAL} = 64 ] || fail "no re-seal secret in the keyring after the recovery unlock"
secret_bytes reseal-secret "$RESEAL"
rescan unlock-recovery --in-use reseal-secret-b64 --canary mark-uuid-disk --log-mark mark-path-disk

# ---- the re-seal ---------------------------------------------------------------
scan reseal --control Esys_Create --in-use reseal-secret --in-use reseal-secret-b64 \
        --canary mark-uuid-disk --log-mark mark-path-disk \
        -- "$UNLOCKCTL" reseal --log-level=debug --state-dir="$STATE" --tcti="$TCTI"
"$UNLOCKD" --test --no-prompt --tcti="$TCTI" "$IMG2" 2>/dev/null || fail "the re-sealed token does not open the volume"

# ---- a passphrase typed at the prompt; a recovery key enrolled with $PASSWORD --
IMG3=$TEST_DIR/plain.img
make_luks "$IMG3" "$PASSPHRASE"
markers plain "$IMG3"
secret_bytes volume-key-plain "$(volume_key "$IMG3" "$TEST_DIR/pass")"
scan unlock-passphrase --control crypt_volume_key_get@2 --in-use passphrase \
        --canary mark-uuid-plain --log-mark mark-path-plain \
        --expect 'Recovery key or passphrase: ' --send "$WRONG\r" --expect 'Try again' \
        --expect 'Recovery key or passphrase: ' --send "$PASSPHRASE\r" \
        -- "$UNLOCKD" --test --console=@CONSOLE@ --ask-password=no --log-level=debug --state-dir="$STATE" \
        --tcti="$TCTI" "$IMG3"
PASSWORD=$PASSPHRASE scan enroll-password --control crypt_keyslot_add_by_passphrase --in-use passphrase \
        --canary mark-uuid-plain --log-mark mark-path-plain \
        -- "$UNLOCKCTL" enroll --recovery-key --log-level=debug "$IMG3"
KEY3=$(recovery_key_in "$TEST_DIR/dump/enroll-password/stdout") || fail "enroll printed no recovery key"
opens_with "$IMG3" "$KEY3" || fail "the printed recovery key does not open the volume"
secret_text plain-recovery-key "$KEY3"
sed -i "s/$KEY3/(the recovery key)/" "$TEST_DIR/dump/enroll-password/stdout"
rescan enroll-password --in-use plain-recovery-key --canary mark-uuid-plain --log-mark mark-path-plain

echo PASS
