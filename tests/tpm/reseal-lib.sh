# SPDX-License-Identifier: LGPL-2.1-or-later
# The re-seal story's fixtures, shared by test-reseal.sh,
# test-reseal-crash.sh and test-ownership.sh. Source it after tests/lib.sh.
# A volume here has the passphrase $PASS (keyslot 0), the recovery key $KEY
# (keyslot 1, token 0) and a TPM2 token on PCR 7 (keyslot 2, token 1).
need swtpm tpm2_pcrextend cryptsetup python3 keyctl
PTY_DRIVE=$SOURCE_DIR/tools/pty-drive

start_swtpm
PASS=${PASS:-old passphrase}
printf '%s' "$PASS" > "$TEST_DIR/pass"
STATE=$TEST_DIR/state
EXTENDS=()

# The "update": PCR 7 changes. replay_pcr7 gives the same PCR 7 again after
# a swtpm restart (which resets the PCRs).
extend_pcr7() {
        local d
        d=$(printf '%064x' $(( ${#EXTENDS[@]} + 1 )))
        EXTENDS+=("$d")
        tpm2_pcrextend "7:sha256=$d"
}
replay_pcr7() { local d; for d in "${EXTENDS[@]}"; do tpm2_pcrextend "7:sha256=$d"; done; }

# fresh IMAGE: the volume, enrolled; sets $KEY and $UUID.
fresh() {
        make_luks "$1" "$PASS"
        KEY=$("$UNLOCKCTL" enroll --tpm2 --pcrs=7 --recovery-key --unlock-key-file="$TEST_DIR/pass" --tcti="$TCTI" "$1" 2>/dev/null)
        UUID=$(cryptsetup luksUUID "$1")
}

# type_at IMAGE TEXT [REGEX]: the boot after an update: TEXT typed at
# unlockd's prompt (after REGEX, when given, was printed).
type_at() {
        local expect=()
        [ -z "${3:-}" ] || expect=(--expect "$3")
        printf '%s\n' "$2" > "$TEST_DIR/typed"
        "$PTY_DRIVE" --timeout 60 "${expect[@]}" --expect 'Recovery key or passphrase: ' --send-file "$TEST_DIR/typed" -- \
                "$UNLOCKD" --test --console=/dev/tty --ask-password=no --state-dir="$STATE" --tcti="$TCTI" "$1" \
                > "$TEST_DIR/prompt.log" 2>&1 || { cat "$TEST_DIR/prompt.log"; fail "manual unlock of $1 failed"; }
}

tpm_opens() { "$UNLOCKD" --test --no-prompt --state-dir="$STATE" --tcti="$TCTI" "$1" >"$TEST_DIR/tpm.log" 2>&1; }
reseal() { "$UNLOCKCTL" reseal --state-dir="$STATE" --tcti="$TCTI" "$@" 2>"$TEST_DIR/reseal.log"; }
n_keyslots() { cryptsetup luksDump "$1" | grep -cE '^  [0-9]+: luks2'; }
n_tokens() { cryptsetup luksDump "$1" | grep -cE "^  [0-9]+: $2" || true; }
# No grep -q on a pipe: under pipefail, cryptsetup's SIGPIPE would fail it.
slot_active() { cryptsetup luksDump "$1" | grep -E "^  $2: luks2" >/dev/null; }
key_in_keyring() { keyctl search @u user "unlockd:reseal:$1" >/dev/null 2>&1; }

# assert_owner IMAGE CONTEXT: what the owner had still opens the volume.
assert_owner() {
        opens_with "$1" "$PASS" || fail "$2: the passphrase no longer opens the volume"
        opens_with "$1" "$KEY" || fail "$2: the recovery key no longer opens the volume"
}

# The story's steps: setup IMAGE makes a volume the TPM opens, then PCR 7
# changes; recover IMAGE is the next boot: the TPM refuses, the recovery
# key is typed.
setup() {
        fresh "$1"
        tpm_opens "$1" || fail "TPM did not open a fresh enrollment"
        extend_pcr7
}
recover() { type_at "$1" "$KEY" 'PCR 7 changed'; }
assert_invariants() { assert_owner "$@"; }
