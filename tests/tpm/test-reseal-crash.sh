#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The re-seal under fault injection: `unlockctl reseal` killed (SIGKILL) at
# every step, and a TPM that goes away after the new token is written. After
# each: the passphrase and the recovery key open, a TPM path is left, and the
# next run finishes the job. Needs a build with -Dtest-hooks=true (./run-tests
# sets it): the crash points exist only there.
source "$(dirname "$0")/../lib.sh"
grep -aq UNLOCKD_RESEAL_CRASH_AT "$BUILD_DIR/agent/unlockctl" ||
        skip "unlockctl was built without -Dtest-hooks=true: no crash points to inject faults at"
source "$(dirname "$0")/reseal-lib.sh"

STEPS="after-load before-token after-token after-pending after-verify after-stale-token after-stale-keyslot after-drop-key"
for step in $STEPS; do
        say "fault injection: SIGKILL at $step"
        IMG=$TEST_DIR/crash-$step.img
        setup "$IMG"
        OLD_TOKEN=$(cryptsetup token export --token-id 1 "$IMG")
        recover "$IMG"
        rc=0
        UNLOCKD_RESEAL_CRASH_AT=$step "$UNLOCKCTL" reseal --state-dir="$STATE" --tcti="$TCTI" 2>/dev/null || rc=$?
        assert_eq "$rc" 137 "exit status of the killed reseal at $step"
        assert_invariants "$IMG" "killed at $step"
        # At least one TPM path: the old token still there, or the new one opens.
        if ! tpm_opens "$IMG"; then
                [ "$(n_tokens "$IMG" systemd-tpm2)" -gt 0 ] || fail "killed at $step: no TPM path left at all"
                opens_with "$IMG" "$KEY" || fail "killed at $step: neither TPM nor recovery"
        fi
        "$UNLOCKCTL" reseal --state-dir="$STATE" --tcti="$TCTI" 2>"$TEST_DIR/reseal.log" || { cat "$TEST_DIR/reseal.log"; fail "reseal after a crash at $step failed"; }
        tpm_opens "$IMG" || fail "killed at $step: the TPM does not open after the second reseal"
        assert_invariants "$IMG" "after recovery from $step"
        assert_eq "$(n_keyslots "$IMG")" 3 "keyslots after recovery from $step"
        assert_eq "$(n_tokens "$IMG" unlockd-pending)" 0 "pending tokens after recovery from $step"
        [ -e "$STATE/reseal/$UUID.json" ] && fail "job left after recovery from $step"
        key_in_keyring "$UUID" && fail "secret left in the keyring after recovery from $step"
done


for step in dismiss-after-keyslot dismiss-after-token after-drop-key; do
        for sealed in no yes; do
                say "fault injection: reseal --dismiss killed at $step (new token written first: $sealed)"
                IMG=$TEST_DIR/dismiss-$step-$sealed.img
                setup "$IMG"
                OLD_TOKEN=$(cryptsetup token export --token-id 1 "$IMG")
                recover "$IMG"
                if [ "$sealed" = yes ]; then
                        rc=0; UNLOCKD_RESEAL_CRASH_AT=after-pending "$UNLOCKCTL" reseal --state-dir="$STATE" --tcti="$TCTI" 2>/dev/null || rc=$?
                        assert_eq "$rc" 137 "the re-seal killed after its new token"
                fi
                rc=0
                UNLOCKD_RESEAL_CRASH_AT=$step "$UNLOCKCTL" reseal --dismiss --state-dir="$STATE" --tcti="$TCTI" 2>/dev/null || rc=$?
                assert_eq "$rc" 137 "exit status of the dismissal killed at $step"
                assert_invariants "$IMG" "dismissal killed at $step"
                if [ -e "$STATE/reseal/$UUID.json" ]; then
                        "$UNLOCKCTL" reseal --dismiss --state-dir="$STATE" --tcti="$TCTI" 2>"$TEST_DIR/reseal.log" ||
                                { cat "$TEST_DIR/reseal.log"; fail "the dismissal after a crash at $step failed"; }
                fi
                assert_invariants "$IMG" "after the dismissal killed at $step"
                assert_eq "$(n_keyslots "$IMG")" 3 "keyslots after the dismissal killed at $step"
                assert_eq "$(n_tokens "$IMG" unlockd-pending)" 0 "pending tokens after the dismissal killed at $step"
                assert_eq "$(n_tokens "$IMG" systemd-tpm2)" 1 "TPM2 tokens after the dismissal killed at $step"
                assert_eq "$(cryptsetup token export --token-id 1 "$IMG")" "$OLD_TOKEN" "the old TPM2 token after $step"
                [ -e "$STATE/reseal/$UUID.json" ] && fail "job left after the dismissal killed at $step"
                key_in_keyring "$UUID" && fail "secret left after the dismissal killed at $step"
                tpm2_flushcontext -t >/dev/null 2>&1 || true
                tpm2_flushcontext -l >/dev/null 2>&1 || true
        done
done

say "the TPM goes away after the new token is written: the re-seal stops, keeps the job, and finishes later"
IMG=$TEST_DIR/tpm-gone.img
fresh "$IMG"
extend_pcr7
type_at "$IMG" "$KEY"
rc=0; UNLOCKD_RESEAL_CRASH_AT=after-pending reseal || rc=$?
assert_eq "$rc" 137 "the re-seal killed after the new token"
stop_swtpm
rc=0; reseal || rc=$?
[ "$rc" != 0 ] || fail "the re-seal succeeded without a TPM to verify with"
grep -qi "job kept" "$TEST_DIR/reseal.log" || fail "no 'job kept': $(cat "$TEST_DIR/reseal.log")"
[ -f "$STATE/reseal/$UUID.json" ] || fail "the job was removed without verification"
slot_active "$IMG" 2 || fail "the stale keyslot was retired without verification"
assert_owner "$IMG" "TPM gone"
start_swtpm "$SWTPM_DIR"
replay_pcr7
reseal || { cat "$TEST_DIR/reseal.log"; fail "the re-seal did not finish once the TPM was back"; }
grep -q "verified by unsealing" "$TEST_DIR/reseal.log" || fail "not verified: $(cat "$TEST_DIR/reseal.log")"
slot_active "$IMG" 2 && fail "the stale keyslot stayed after the verified re-seal"
tpm_opens "$IMG" || fail "TPM does not open after the finished re-seal"
assert_owner "$IMG" "TPM back"

echo PASS
