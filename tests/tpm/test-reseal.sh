#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The re-seal story on swtpm and LUKS2 images: TPM unlock → PCR extended →
# recovery unlock (typed at unlockd's prompt) queues a job + keyring secret
# → unlockctl reseal → the TPM opens again; the recovery key and the
# passphrase keep working; the stale keyslot is gone. Then a torn job, a
# missing secret, an absent volume, two jobs (SIGKILL at every step is
# test-reseal-crash.sh).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/reseal-lib.sh"

say "the whole story"
IMG=$TEST_DIR/disk.img
setup "$IMG"
tpm_opens "$IMG" && fail "the TPM opened after the PCR change"
OLD_SLOT=$(cryptsetup token export --token-id 1 "$IMG" | python3 -c 'import json,sys; print(json.load(sys.stdin)["keyslots"][0])')
recover "$IMG"
grep -q "re-sealed to this boot" "$TEST_DIR/prompt.log" || fail "the prompt did not say a re-seal follows"
JOB=$STATE/reseal/$UUID.json
[ -f "$JOB" ] || fail "no job file $JOB"
[ "$(stat -c %a "$JOB")" = 600 ] || fail "job file mode is $(stat -c %a "$JOB")"
assert_eq "$(json_get "$(cat "$JOB")" 'j["pcrs"]')" "[7]" "job PCRs"
assert_eq "$(json_get "$(cat "$JOB")" 'j["stale"][0]["keyslot"]')" "$OLD_SLOT" "job stale keyslot"
key_in_keyring "$UUID" || fail "no secret in the keyring"
assert_eq "$(n_tokens "$IMG" unlockd-pending)" 1 "pending tokens"
assert_eq "$(json_get "$(cat "$STATE/state.json")" 'j["volumes"][0]["method"]')" recovery-key "state.json method"
assert_eq "$(json_get "$(cat "$STATE/state.json")" 'j["volumes"][0]["keyslot"]')" 1 "state.json keyslot (the recovery key's)"
assert_eq "$(json_get "$(cat "$STATE/state.json")" 'j["volumes"][0]["reseal"]')" queued "state.json re-seal"
assert_invariants "$IMG" "after queueing"
STATUS=$("$UNLOCKCTL" status --json --state-dir="$STATE" --tcti="$TCTI" "$IMG")
assert_eq "$(json_get "$STATUS" 'j["volumes"][0]["job"] is not None')" True "status shows the job"
assert_eq "$(json_get "$STATUS" '[t["policy-satisfied"] for t in j["volumes"][0]["tokens"] if t["type"]=="systemd-tpm2"]')" "[False]" "status: stale policy"
assert_eq "$(json_get "$STATUS" 'j["volumes"][0]["orphaned-keyslots"]')" "[]" "status: no orphans"

"$UNLOCKCTL" reseal --state-dir="$STATE" --tcti="$TCTI" 2>"$TEST_DIR/reseal.log" || { cat "$TEST_DIR/reseal.log"; fail "reseal failed"; }
grep -q "verified by unsealing" "$TEST_DIR/reseal.log" || fail "reseal did not verify: $(cat "$TEST_DIR/reseal.log")"
[ -f "$JOB" ] && fail "job file still there"
key_in_keyring "$UUID" && fail "secret still in the keyring"
assert_eq "$(n_tokens "$IMG" unlockd-pending)" 0 "pending tokens after reseal"
assert_eq "$(n_tokens "$IMG" systemd-tpm2)" 1 "TPM2 tokens after reseal"
assert_eq "$(n_keyslots "$IMG")" 3 "keyslots after reseal (passphrase, recovery, TPM)"
cryptsetup luksDump "$IMG" | grep -qE "^  $OLD_SLOT: luks2" && fail "stale keyslot $OLD_SLOT still there"
tpm_opens "$IMG" || fail "the TPM does not open the volume after reseal"
assert_invariants "$IMG" "after reseal"
STATUS=$("$UNLOCKCTL" status --json --state-dir="$STATE" --tcti="$TCTI" "$IMG")
assert_eq "$(json_get "$STATUS" '[t["policy-satisfied"] for t in j["volumes"][0]["tokens"] if t["type"]=="systemd-tpm2"]')" "[True]" "status: new policy"
"$UNLOCKCTL" reseal --state-dir="$STATE" --tcti="$TCTI" 2>&1 | grep -q "No re-seal jobs" || fail "a second reseal was not a no-op"

say "re-seal off: --no-reseal and rd.unlockd.reseal=0 queue nothing"
IMG=$TEST_DIR/off.img
setup "$IMG"
printf '%s\n' "$KEY" > "$TEST_DIR/typed"
UNLOCKD_CMDLINE="quiet rd.unlockd.reseal=0" "$PTY_DRIVE" --expect 'passphrase: ' --send-file "$TEST_DIR/typed" -- \
        "$UNLOCKD" --test --console=/dev/tty --ask-password=no --state-dir="$STATE" --tcti="$TCTI" "$IMG" >/dev/null
[ -e "$STATE/reseal/$(cryptsetup luksUUID "$IMG").json" ] && fail "a job was queued with rd.unlockd.reseal=0"
assert_eq "$(n_tokens "$IMG" unlockd-pending)" 0 "pending tokens with re-seal off"

say "reseal --dismiss: the admin does not accept the new boot chain; the old token stays, nothing is left"
IMG=$TEST_DIR/dismiss.img
setup "$IMG"
OLD_TOKEN=$(cryptsetup token export --token-id 1 "$IMG")
recover "$IMG"
assert_eq "$(n_keyslots "$IMG")" 4 "keyslots with the re-seal pending"
"$UNLOCKCTL" reseal --dismiss --state-dir="$STATE" --tcti="$TCTI" "$IMG" 2>"$TEST_DIR/reseal.log" ||
        { cat "$TEST_DIR/reseal.log"; fail "reseal --dismiss failed"; }
grep -q "re-seal dismissed" "$TEST_DIR/reseal.log" || fail "no message of what was removed: $(cat "$TEST_DIR/reseal.log")"
[ -e "$STATE/reseal/$UUID.json" ] && fail "the dismissed job is still there"
key_in_keyring "$UUID" && fail "the dismissed job's secret is still in the keyring"
assert_eq "$(n_keyslots "$IMG")" 3 "keyslots after the dismissal (passphrase, recovery, old TPM)"
assert_eq "$(n_tokens "$IMG" unlockd-pending)" 0 "pending tokens after the dismissal"
assert_eq "$(cryptsetup token export --token-id 1 "$IMG")" "$OLD_TOKEN" "the old TPM2 token"
assert_invariants "$IMG" "dismissed"
tpm_opens "$IMG" && fail "the TPM opened the dismissed boot chain"
"$UNLOCKCTL" reseal --state-dir="$STATE" --tcti="$TCTI" 2>&1 | grep -q "No re-seal jobs" || fail "a job is left after the dismissal"
# Only the volumes named: another volume's job stays.
IMG2=$TEST_DIR/dismiss-other.img IMG3=$TEST_DIR/dismiss-this.img
fresh "$IMG2"; KEY2=$KEY UUID2=$UUID
fresh "$IMG3"; KEY3=$KEY UUID3=$UUID
extend_pcr7     # one update for both
KEY=$KEY2 recover "$IMG2"
KEY=$KEY3 recover "$IMG3"
"$UNLOCKCTL" reseal --dismiss --state-dir="$STATE" --tcti="$TCTI" "$IMG3" 2>/dev/null || fail "dismissing one volume failed"
[ -e "$STATE/reseal/$UUID2.json" ] || fail "dismissing $IMG3 removed the job of $IMG2"
[ -e "$STATE/reseal/$UUID3.json" ] && fail "the job of $IMG3 was not dismissed"
"$UNLOCKCTL" reseal --state-dir="$STATE" --tcti="$TCTI" 2>/dev/null || fail "the other volume's re-seal failed"
tpm_opens "$IMG2" || fail "the other volume's re-seal did not take"

say "a torn job file is removed; its keyslot is cleaned as an orphan"
IMG=$TEST_DIR/torn.img
setup "$IMG"
recover "$IMG"
JOB=$STATE/reseal/$UUID.json
head -c 40 "$JOB" > "$JOB.torn" && mv "$JOB.torn" "$JOB"
"$UNLOCKCTL" reseal --state-dir="$STATE" --tcti="$TCTI" 2>"$TEST_DIR/reseal.log" || fail "reseal failed on a torn job"
grep -q "unreadable" "$TEST_DIR/reseal.log" || fail "no message about the torn job: $(cat "$TEST_DIR/reseal.log")"
[ -e "$JOB" ] && fail "torn job still there"
"$UNLOCKCTL" status --json --state-dir="$STATE" --tcti="$TCTI" "$IMG" > "$TEST_DIR/st.json"
assert_eq "$(json_get "$(cat "$TEST_DIR/st.json")" 'len(j["volumes"][0]["orphaned-keyslots"])')" 1 "orphans reported"
# The next boot (TPM still refusing) cleans the orphan before queueing again.
recover "$IMG"
assert_eq "$(n_tokens "$IMG" unlockd-pending)" 1 "pending tokens after the orphan was cleaned"
"$UNLOCKCTL" reseal --state-dir="$STATE" --tcti="$TCTI" 2>/dev/null || fail "reseal after the torn job failed"
tpm_opens "$IMG" || fail "TPM does not open after the torn-job recovery"
assert_eq "$(n_keyslots "$IMG")" 3 "keyslots after the torn-job recovery"
assert_invariants "$IMG" "torn job"

say "a missing keyring secret: the pending keyslot stays until a boot proves it, then goes, nothing else"
IMG=$TEST_DIR/nokey.img
setup "$IMG"
recover "$IMG"
keyctl unlink "$(keyctl search @u user "unlockd:reseal:$UUID")" @u >/dev/null
"$UNLOCKCTL" reseal --state-dir="$STATE" --tcti="$TCTI" 2>"$TEST_DIR/reseal.log" || fail "reseal failed without its secret"
grep -q "gone from the keyring" "$TEST_DIR/reseal.log" || fail "no message about the missing secret"
# Without the secret nothing proves the keyslot is unlockd's: it stays, reported.
assert_eq "$(n_keyslots "$IMG")" 4 "keyslots without the secret (passphrase, recovery, old TPM, pending)"
assert_eq "$(json_get "$("$UNLOCKCTL" status --json --state-dir="$STATE" --tcti="$TCTI" "$IMG")" 'len(j["volumes"][0]["orphaned-keyslots"])')" 1 "orphans reported"
assert_invariants "$IMG" "missing secret"
# The next boot holds the volume key (here: the recovery key typed again)
# and checks the marker's proof: the orphan goes, a new job comes.
recover "$IMG"
assert_eq "$(n_keyslots "$IMG")" 4 "keyslots after the next recovery (passphrase, recovery, old TPM, new pending)"
assert_eq "$(n_tokens "$IMG" unlockd-pending)" 1 "pending tokens after the orphan was removed"
"$UNLOCKCTL" reseal --state-dir="$STATE" --tcti="$TCTI" 2>/dev/null || fail "reseal after the missing secret failed"
assert_eq "$(n_keyslots "$IMG")" 3 "keyslots after that re-seal (passphrase, recovery, TPM)"
tpm_opens "$IMG" || fail "TPM does not open after the missing-secret recovery"
assert_invariants "$IMG" "missing secret"

say "a job for a volume that is not there fails clearly and harms nothing"
mkdir -p "$STATE/reseal"
cat > "$STATE/reseal/0bad0bad-0000-4000-8000-000000000000.json" <<JSON
{"version":1,"uuid":"0bad0bad-0000-4000-8000-000000000000","device":"$TEST_DIR/gone.img","method":"recovery-key",
 "keyslot":2,"generation":1,"pcr-bank":"sha256","pcrs":[7],"pcr-values":["$(printf '%064x' 0)"],"stale":[]}
JSON
rc=0
"$UNLOCKCTL" reseal --state-dir="$STATE" --tcti="$TCTI" 2>"$TEST_DIR/reseal.log" || rc=$?
[ "$rc" != 0 ] || fail "a job for an absent volume reported success"
grep -q "not present" "$TEST_DIR/reseal.log" || fail "no clear message for the absent volume: $(cat "$TEST_DIR/reseal.log")"
rm -f "$STATE/reseal/0bad0bad-0000-4000-8000-000000000000.json"

say "two jobs for one volume: the larger generation wins"
IMG=$TEST_DIR/two.img
setup "$IMG"
recover "$IMG"
cp "$STATE/reseal/$UUID.json" "$TEST_DIR/first.json"
extend_pcr7
recover "$IMG"
python3 - "$TEST_DIR/first.json" "$STATE/reseal/$UUID-older.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
json.dump(j, open(sys.argv[2], "w"))
PY
assert_eq "$(json_get "$(cat "$STATE/reseal/$UUID.json")" 'j["generation"]')" "$(( $(json_get "$(cat "$TEST_DIR/first.json")" 'j["generation"]') + 1 ))" "second job's generation"
"$UNLOCKCTL" reseal --state-dir="$STATE" --tcti="$TCTI" 2>"$TEST_DIR/reseal.log" || { cat "$TEST_DIR/reseal.log"; fail "reseal with two jobs failed"; }
grep -q "superseded" "$TEST_DIR/reseal.log" || fail "the older job was not reported as superseded"
ls "$STATE/reseal/" | grep -q . && fail "jobs left: $(ls "$STATE/reseal/")"
tpm_opens "$IMG" || fail "TPM does not open after two jobs"
assert_eq "$(n_keyslots "$IMG")" 3 "keyslots after two jobs"
assert_invariants "$IMG" "two jobs"

echo PASS
