#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The recovery drill on swtpm and LUKS2 images: `unlockctl drill` → the next
# unlockd run asks, saying it is a drill, although the TPM would open; it
# records drill:true, queues no re-seal, adds no keyslot; the run after
# that opens by TPM without a prompt. A wrong answer, --no-prompt, --cancel,
# the volumes of state.json, and forged drill tokens in the header (one
# prompt at most, no keyslot touched, a forged record only shown).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/reseal-lib.sh"

DRILL_MSG='This is a recovery drill requested with .unlockctl drill.'
n_drill() { cryptsetup luksDump "$1" | grep -cE "^  [0-9]+: unlockd-drill$" || true; }
keyslots() { cryptsetup luksDump "$1" | grep -E '^  [0-9]+: luks2' | tr -d ' ' | tr '\n' ,; }
salts() { cryptsetup luksDump --dump-json-metadata "$1" | python3 -c 'import json,sys; print(sorted((k, v["kdf"]["salt"]) for k, v in json.load(sys.stdin)["keyslots"].items()))'; }
state() { json_get "$(cat "$STATE/state.json")" "j['volumes'][0]$1"; }
status_json() { "$UNLOCKCTL" status --json --state-dir="$STATE" --tcti="$TCTI" "$1"; }

say "a drill: the next run asks although the TPM would open, and changes nothing but its own tokens"
IMG=$TEST_DIR/disk.img
fresh "$IMG"
tpm_opens "$IMG" || fail "the TPM did not open a fresh enrollment"
SLOTS=$(keyslots "$IMG"); SALTS=$(salts "$IMG")
"$UNLOCKCTL" drill "$IMG" 2>"$TEST_DIR/drill.log" || { cat "$TEST_DIR/drill.log"; fail "unlockctl drill failed"; }
assert_eq "$(n_drill "$IMG")" 1 "drill flags"
"$UNLOCKCTL" drill "$IMG" 2>"$TEST_DIR/drill.log" || fail "a second unlockctl drill failed"
grep -q "pending already" "$TEST_DIR/drill.log" || fail "a second drill did not say one is pending: $(cat "$TEST_DIR/drill.log")"
assert_eq "$(n_drill "$IMG")" 1 "drill flags after a second drill"
assert_eq "$(json_get "$(status_json "$IMG")" 'j["volumes"][0]["drill-pending"]')" True "status: drill pending"
"$UNLOCKCTL" status --state-dir="$STATE" --tcti="$TCTI" "$IMG" | grep -q "recovery drill pending" || fail "status text: no pending drill"

type_at "$IMG" "$KEY" "$DRILL_MSG"
grep -q "the TPM was not asked" "$TEST_DIR/prompt.log" || fail "the prompt did not say the TPM was not asked"
grep -q "changed since sealing\|re-sealed to this boot" "$TEST_DIR/prompt.log" && fail "the drill prompt spoke of a TPM refusal"
assert_eq "$(state '["method"]')" recovery-key "state.json method"
assert_eq "$(state '["drill"]')" True "state.json drill"
assert_eq "$(state '["reseal"]')" none "state.json re-seal"
assert_eq "$(state '["tokens"]')" "[]" "state.json: no TPM2 token tried"
[ -e "$STATE/reseal/$UUID.json" ] && fail "a drill queued a re-seal job"
key_in_keyring "$UUID" && fail "a drill put a re-seal secret into the keyring"
assert_eq "$(n_tokens "$IMG" unlockd-pending)" 0 "pending markers after a drill"
assert_eq "$(keyslots "$IMG")" "$SLOTS" "keyslots after a drill"
assert_eq "$(salts "$IMG")" "$SALTS" "keyslot salts after a drill"
assert_eq "$(n_drill "$IMG")" 0 "drill flags after the drill"
assert_eq "$(n_tokens "$IMG" unlockd-drill-result)" 1 "drill records"
S=$(status_json "$IMG")
assert_eq "$(json_get "$S" 'j["volumes"][0]["last-drill"]["result"]')" recovery-key "status: last drill"
assert_eq "$(json_get "$S" 'abs(j["volumes"][0]["last-drill"]["time"] - int(__import__("time").time())) < 300')" True "status: last drill time"
assert_eq "$(json_get "$S" 'j["volumes"][0]["drill-pending"]')" False "status: no drill pending"
"$UNLOCKCTL" status --state-dir="$STATE" --tcti="$TCTI" "$IMG" > "$TEST_DIR/status.txt"
grep -qE "last drill passed: [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} UTC, with the recovery key" "$TEST_DIR/status.txt" \
        || fail "status text: $(cat "$TEST_DIR/status.txt")"
tpm_opens "$IMG" || { cat "$TEST_DIR/tpm.log"; fail "the TPM did not open the run after the drill"; }
assert_eq "$(state '["method"]')" tpm2 "state.json method after the drill"
assert_eq "$(state '["drill"]')" False "state.json drill after the drill"
assert_owner "$IMG" "after the drill"

say "a passphrase drill; the drill of the volumes of state.json (no DEVICE)"
"$UNLOCKCTL" drill --state-dir="$STATE" 2>/dev/null || fail "unlockctl drill without DEVICE failed"
assert_eq "$(n_drill "$IMG")" 1 "drill flags from state.json's volumes"
type_at "$IMG" "$PASS" "$DRILL_MSG"
assert_eq "$(state '["method"]')" passphrase "state.json method (passphrase)"
assert_eq "$(state '["drill"]')" True "state.json drill (passphrase)"
assert_eq "$(n_tokens "$IMG" unlockd-drill-result)" 1 "drill records after a second drill (the older one replaced)"
assert_eq "$(json_get "$(status_json "$IMG")" 'j["volumes"][0]["last-drill"]["result"]')" passphrase "status: last drill (passphrase)"
"$UNLOCKCTL" drill --state-dir="$TEST_DIR/nothing" 2>/dev/null && fail "unlockctl drill without DEVICE and state.json succeeded"

say "a wrong answer is refused; unanswered, the drill is over all the same (one prompt per drill)"
"$UNLOCKCTL" drill "$IMG" 2>/dev/null
rc=0
"$PTY_DRIVE" --timeout 60 --expect "$DRILL_MSG" --expect 'Recovery key or passphrase: ' --send 'not the key\r' -- \
        "$UNLOCKD" --test --console=/dev/tty --ask-password=no --tries=1 --state-dir="$STATE" --tcti="$TCTI" "$IMG" \
        > "$TEST_DIR/wrong.log" 2>&1 || rc=$?
assert_eq "$rc" 3 "exit status after a wrong answer with --tries=1"
grep -q "Try again\|did not unlock" "$TEST_DIR/wrong.log" || fail "the wrong key was not refused: $(cat "$TEST_DIR/wrong.log")"
assert_eq "$(state '["opened"]')" False "state.json opened after a failed drill"
assert_eq "$(state '["drill"]')" True "state.json drill after a failed drill"
assert_eq "$(n_drill "$IMG")" 0 "drill flags after an unanswered drill"
assert_eq "$(json_get "$(status_json "$IMG")" 'j["volumes"][0]["last-drill"]["result"]')" not-passed "status: failed drill"
"$UNLOCKCTL" status --state-dir="$STATE" --tcti="$TCTI" "$IMG" | grep -q "last drill NOT passed" || fail "status text: failed drill"
rc=0
"$UNLOCKD" --test --console=/dev/null --ask-password=no --timeout=1 --state-dir="$STATE" --tcti="$TCTI" "$IMG" >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 0 "the run after an unanswered drill (the TPM opens, nothing asked)"

say "--no-prompt: a pending drill fails the volume and stays for a prompting run; --cancel"
"$UNLOCKCTL" drill "$IMG" 2>/dev/null
tpm_opens "$IMG" && fail "--no-prompt opened a volume with a pending drill"
grep -q "drill is pending" "$TEST_DIR/tpm.log" || fail "--no-prompt did not say a drill is pending: $(cat "$TEST_DIR/tpm.log")"
assert_eq "$(n_drill "$IMG")" 1 "drill flags after --no-prompt (not asked)"
"$UNLOCKCTL" drill --cancel "$IMG" 2>"$TEST_DIR/cancel.log" || fail "drill --cancel failed"
grep -q "Cancelled" "$TEST_DIR/cancel.log" || fail "drill --cancel said: $(cat "$TEST_DIR/cancel.log")"
assert_eq "$(n_drill "$IMG")" 0 "drill flags after --cancel"
"$UNLOCKCTL" drill --cancel "$IMG" 2>&1 | grep -q "No recovery drill was pending" || fail "a second --cancel"
tpm_opens "$IMG" || fail "the TPM did not open after --cancel"

say "no TPM2 token: nothing to drill"
make_luks "$TEST_DIR/plain.img" "$PASS"
"$UNLOCKCTL" drill "$TEST_DIR/plain.img" 2>"$TEST_DIR/plain.log" && fail "a drill of a volume without a TPM2 token succeeded"
grep -q "nothing to drill" "$TEST_DIR/plain.log" || fail "unlockctl drill said: $(cat "$TEST_DIR/plain.log")"
assert_eq "$(n_drill "$TEST_DIR/plain.img")" 0 "drill flags on a volume without a TPM2 token"

say "forged drill tokens: one prompt at most, no keyslot touched, a forged record only shown"
SLOTS=$(keyslots "$IMG"); SALTS=$(salts "$IMG")
# Flags that name the passphrase's and the TPM's keyslots, with junk fields.
printf '%s' '{"type":"unlockd-drill","keyslots":["0"],"unlockd-requested":"soon","x":[1,2,3]}' \
        | cryptsetup token import "$IMG" --token-id 5
printf '%s' '{"type":"unlockd-drill","keyslots":["2"],"unlockd-requested":-1}' | cryptsetup token import "$IMG" --token-id 6
# Records that do not parse: shown as nothing.
for t in '{"type":"unlockd-drill-result","keyslots":[],"unlockd-time":99999999999999,"unlockd-result":"recovery-key"}' \
         '{"type":"unlockd-drill-result","keyslots":[],"unlockd-time":-5,"unlockd-result":"passphrase"}' \
         '{"type":"unlockd-drill-result","keyslots":[],"unlockd-time":1,"unlockd-result":"\u001b[2Jpwned"}' \
         '{"type":"unlockd-drill-result","keyslots":[],"unlockd-time":"1","unlockd-result":"passphrase"}'; do
        printf '%s' "$t" | cryptsetup token import "$IMG"
done
assert_eq "$(n_drill "$IMG")" 2 "forged flags"
type_at "$IMG" "$KEY" "$DRILL_MSG"
assert_eq "$(n_drill "$IMG")" 0 "forged flags after one prompt"
assert_eq "$(keyslots "$IMG")" "$SLOTS" "keyslots after a forged drill"
assert_eq "$(salts "$IMG")" "$SALTS" "keyslot salts after a forged drill"
assert_owner "$IMG" "after a forged drill"
tpm_opens "$IMG" || fail "the TPM did not open after a forged drill"
S=$(status_json "$IMG")
assert_eq "$(json_get "$S" 'j["volumes"][0]["last-drill"]["result"]')" recovery-key "status ignores malformed records"
assert_eq "$(n_tokens "$IMG" unlockd-drill-result)" 1 "drill records after the forged drill (the malformed ones gone too)"
# A forged record that parses is shown, and no more than that.
printf '%s' '{"type":"unlockd-drill-result","keyslots":["1"],"unlockd-time":253402300799,"unlockd-result":"passphrase"}' \
        | cryptsetup token import "$IMG"
"$UNLOCKCTL" status --state-dir="$STATE" --tcti="$TCTI" "$IMG" | grep -q "last drill passed: 9999-12-31 23:59:59 UTC, with the passphrase (as the LUKS2 header records it)" \
        || fail "status: a forged record"
tpm_opens "$IMG" || fail "the TPM did not open with a forged record"
assert_eq "$(keyslots "$IMG")" "$SLOTS" "keyslots with a forged record"
assert_owner "$IMG" "with a forged record"
say "PASS"
