#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Enroll and unlock against swtpm and LUKS2 image files: TPM unlock, PCR
# change → refused with the right reason, PIN right/wrong, recovery key,
# enrolling twice, refusing to leave no way in, no TPM handles leaked.
source "$(dirname "$0")/../lib.sh"
need swtpm tpm2_pcrextend tpm2_getcap cryptsetup python3

start_swtpm
IMG=$TEST_DIR/disk.img
make_luks "$IMG" "correct horse"
printf 'correct horse' > "$TEST_DIR/pass"

say "enroll TPM2 (PCR 0+7) and a recovery key"
KEY=$("$UNLOCKCTL" enroll --tpm2 --pcrs=0+7 --recovery-key --unlock-key-file="$TEST_DIR/pass" --tcti="$TCTI" "$IMG")
[[ "$KEY" =~ ^([cbdefghijklnrtuv]{8}-){7}[cbdefghijklnrtuv]{8}$ ]] || fail "recovery key has the wrong form: $KEY"
assert_no_tpm_leaks enroll
TOKEN=$(cryptsetup token export --token-id 1 "$IMG")
assert_eq "$(json_get "$TOKEN" 'j["type"]')" systemd-tpm2 "token type"
assert_eq "$(json_get "$TOKEN" 'j["tpm2-pcrs"]')" "[0, 7]" "token PCRs"
assert_eq "$(json_get "$TOKEN" 'j["tpm2-pcr-bank"]')" sha256 "token bank"
assert_eq "$(json_get "$TOKEN" 'j["tpm2-primary-alg"]')" ecc "primary alg"
assert_eq "$(json_get "$TOKEN" 'len(j["unlockd-pcr-values"])')" 2 "recorded PCR values"
assert_eq "$(json_get "$TOKEN" 'list(j.keys())[:9]')" "['type', 'keyslots', 'tpm2-blob', 'tpm2-pcrs', 'tpm2-pcr-bank', 'tpm2-primary-alg', 'tpm2-policy-hash', 'tpm2-pin', 'unlockd-pcr-values']" "token field order"
TPM_SLOT=$(json_get "$TOKEN" 'j["keyslots"][0]')
# The keyslot uses PBKDF2-SHA512 with 1000 iterations.
cryptsetup luksDump "$IMG" | awk -v s="  $TPM_SLOT: luks2" '$0==s{f=1} f&&/PBKDF|Hash|Iterations/{print} f&&/AF hash/{exit}' > "$TEST_DIR/kdf"
grep -q 'PBKDF:.*pbkdf2' "$TEST_DIR/kdf" && grep -q 'Hash:.*sha512' "$TEST_DIR/kdf" && grep -q 'Iterations:.*1000$' "$TEST_DIR/kdf" \
        || fail "TPM keyslot KDF is not PBKDF2-SHA512/1000: $(cat "$TEST_DIR/kdf")"

say "recovery key and the old passphrase open the volume"
opens_with "$IMG" "$KEY" || fail "recovery key does not open the volume"
opens_with "$IMG" "correct horse" || fail "old passphrase does not open the volume"
opens_with "$IMG" "wrong" && fail "a wrong passphrase opened the volume"

say "unlockd --test opens through the TPM"
OUT=$("$UNLOCKD" --test --no-prompt --json --tcti="$TCTI" "$IMG")
assert_eq "$(json_get "$OUT" 'j["volumes"][0]["opened"]')" True "opened"
assert_eq "$(json_get "$OUT" 'j["volumes"][0]["method"]')" tpm2 "method"
assert_eq "$(json_get "$OUT" 'j["volumes"][0]["keyslot"]')" "$TPM_SLOT" "keyslot"
assert_no_tpm_leaks "unseal"

say "enrolling the same PCRs again is a no-op"
"$UNLOCKCTL" enroll --tpm2 --pcrs=0+7 --unlock-key-file="$TEST_DIR/pass" --tcti="$TCTI" "$IMG" 2>"$TEST_DIR/err"
grep -q "nothing to do" "$TEST_DIR/err" || fail "second enroll did not say it is a no-op"
assert_eq "$(cryptsetup luksDump "$IMG" | grep -c ': systemd-tpm2')" 1 "number of TPM2 tokens"

say "a wrong unlock passphrase is refused and changes nothing"
printf 'nope' > "$TEST_DIR/bad"
if "$UNLOCKCTL" enroll --tpm2 --pcrs=7 --unlock-key-file="$TEST_DIR/bad" --tcti="$TCTI" "$IMG" 2>"$TEST_DIR/err"; then
        fail "enroll with a wrong passphrase succeeded"
fi
grep -q "does not unlock" "$TEST_DIR/err" || fail "no clear message for a wrong passphrase: $(cat "$TEST_DIR/err")"
assert_eq "$(cryptsetup luksDump "$IMG" | grep -c ': systemd-tpm2')" 1 "TPM2 tokens after a refused enroll"

say "PCR 7 extended: the TPM refuses, saying which PCR changed"
tpm2_pcrextend 7:sha256=$(printf 'a%.0s' $(seq 64))
if OUT=$("$UNLOCKD" --test --no-prompt --json --tcti="$TCTI" "$IMG" 2>"$TEST_DIR/err"); then
        fail "unlockd opened the volume after a PCR change"
fi
assert_eq "$(json_get "$OUT" 'j["volumes"][0]["opened"]')" False "opened after PCR change"
assert_eq "$(json_get "$OUT" 'j["volumes"][0]["tokens"][0]["result"]')" pcr-mismatch "result"
assert_eq "$(json_get "$OUT" 'j["volumes"][0]["tokens"][0]["pcrs-changed"]')" "[7]" "changed PCRs"
grep -q "PCR 7 changed" "$TEST_DIR/err" || fail "message does not name PCR 7: $(cat "$TEST_DIR/err")"
assert_no_tpm_leaks "refused unseal"
opens_with "$IMG" "$KEY" || fail "recovery key does not open the volume after the PCR change"

# The TPM's count of failed authorizations (dictionary-attack protection).
da_failures() { printf '%d' "$(tpm2_getcap properties-variable | awk '/TPM2_PT_LOCKOUT_COUNTER/ { print $2 }')"; }

say "PIN: right PIN opens, wrong PIN is refused as such"
IMG2=$TEST_DIR/pin.img
make_luks "$IMG2" "correct horse"
NEWPIN=1234 "$UNLOCKCTL" enroll --tpm2 --pin --pcrs=0 --unlock-key-file="$TEST_DIR/pass" --tcti="$TCTI" "$IMG2"
TOKEN=$(cryptsetup token export --token-id 0 "$IMG2")
assert_eq "$(json_get "$TOKEN" 'j["tpm2-pin"]')" True "tpm2-pin"
OUT=$(PIN=1234 "$UNLOCKD" --test --no-prompt --json --tcti="$TCTI" "$IMG2")
assert_eq "$(json_get "$OUT" 'j["volumes"][0]["method"]')" tpm2 "PIN unlock"
tpm2_dictionarylockout -Q --setup-parameters --max-tries=32 --recovery-time=600 --lockout-recovery-time=1
tpm2_dictionarylockout -Q --clear-lockout
if OUT=$(PIN=4321 "$UNLOCKD" --test --no-prompt --json --tcti="$TCTI" "$IMG2" 2>/dev/null); then
        fail "a wrong PIN opened the volume"
fi
assert_eq "$(da_failures)" 1 "failed authorizations the TPM counted for one wrong PIN"
assert_eq "$(json_get "$OUT" 'j["volumes"][0]["tokens"][0]["result"]')" pin-wrong "wrong PIN result"
if OUT=$("$UNLOCKD" --test --no-prompt --json --tcti="$TCTI" "$IMG2" 2>/dev/null </dev/null); then
        fail "no PIN opened the volume"
fi
assert_eq "$(json_get "$OUT" 'j["volumes"][0]["tokens"][0]["result"]')" pin-required "no PIN result"
assert_no_tpm_leaks "PIN paths"
tpm2_dictionarylockout --clear-lockout >/dev/null

say "PIN asked at the prompt: a wrong PIN is asked again; three wrong PINs fall back to the recovery prompt"
tpm2_dictionarylockout -Q --setup-parameters --max-tries=32 --recovery-time=600 --lockout-recovery-time=1
tpm2_dictionarylockout -Q --clear-lockout
OUT=$("$SOURCE_DIR/tools/pty-drive" --timeout 60 --expect 'TPM2 PIN: ' --send '9999\r' --expect 'Try again' \
        --expect 'TPM2 PIN: ' --send '1234\r' -- \
        "$UNLOCKD" --test --json --console=/dev/tty --ask-password=no --no-reseal --state-dir="$TEST_DIR/st1" --tcti="$TCTI" "$IMG2")
assert_eq "$(json_get "$(cat "$TEST_DIR/st1/state.json")" 'j["volumes"][0]["method"]')" tpm2 "PIN typed at the prompt"
assert_eq "$(da_failures)" 1 "failed authorizations for one wrong PIN typed, then the right one"
tpm2_dictionarylockout -Q --clear-lockout
"$SOURCE_DIR/tools/pty-drive" --timeout 60 --expect 'TPM2 PIN: ' --send '1\r' --expect 'TPM2 PIN: ' --send '2\r' \
        --expect 'TPM2 PIN: ' --send '3\r' --expect 'wrong PIN' --expect 'Recovery key or passphrase: ' \
        --send 'correct horse\r' -- \
        "$UNLOCKD" --test --console=/dev/tty --ask-password=no --no-reseal --state-dir="$TEST_DIR/st2" --tcti="$TCTI" "$IMG2" >/dev/null \
        || fail "three wrong PINs did not fall back to the recovery prompt"
assert_eq "$(json_get "$(cat "$TEST_DIR/st2/state.json")" 'j["volumes"][0]["method"]')" passphrase "after three wrong PINs"
assert_eq "$(json_get "$(cat "$TEST_DIR/st2/state.json")" 'j["volumes"][0]["tokens"][0]["result"]')" pin-wrong "token result after three wrong PINs"
assert_eq "$(da_failures)" 3 "failed authorizations for three wrong PINs (no more tries than were typed)"
tpm2_dictionarylockout -Q --clear-lockout
assert_no_tpm_leaks "PIN prompt"

say "no TPM: the outcome says so"
OUT=$("$UNLOCKD" --test --no-prompt --json --tcti="swtpm:path=$TEST_DIR/nonexistent" "$IMG" 2>/dev/null) && fail "opened without a TPM"
assert_eq "$(json_get "$OUT" 'j["volumes"][0]["tokens"][0]["result"]')" no-tpm "no TPM result"

say "refuses to leave a volume with only TPM keyslots"
IMG3=$TEST_DIR/only.img
make_luks "$IMG3" "correct horse"
if "$UNLOCKCTL" enroll --tpm2 --pcrs=0 --wipe-slot=password --unlock-key-file="$TEST_DIR/pass" --tcti="$TCTI" "$IMG3" 2>"$TEST_DIR/err"; then
        fail "enroll left a TPM-only volume without --force"
fi
grep -q "Refusing" "$TEST_DIR/err" || fail "no clear refusal: $(cat "$TEST_DIR/err")"
opens_with "$IMG3" "correct horse" || fail "refused enroll removed the passphrase"
assert_eq "$(cryptsetup luksDump "$IMG3" | grep -c ': systemd-tpm2' || true)" 0 "tokens after refusal"
# With a recovery key enrolled at the same time the wipe is allowed.
KEY3=$("$UNLOCKCTL" enroll --tpm2 --pcrs=0 --recovery-key --wipe-slot=password --unlock-key-file="$TEST_DIR/pass" --tcti="$TCTI" "$IMG3")
opens_with "$IMG3" "correct horse" && fail "password slot was not wiped"
opens_with "$IMG3" "$KEY3" || fail "recovery key does not open after the wipe"
"$UNLOCKD" --test --no-prompt --tcti="$TCTI" "$IMG3" || fail "TPM does not open after the wipe"

say "dictionary-attack lockout: its own outcome, and the recovery key still works"
tpm2_dictionarylockout -Q --setup-parameters --max-tries=2 --recovery-time=600 --lockout-recovery-time=600
for pin in 1 2; do PIN=$pin "$UNLOCKD" --test --no-prompt --tcti="$TCTI" "$IMG2" >/dev/null 2>&1 || true; done
OUT=$(PIN=1234 "$UNLOCKD" --test --no-prompt --json --tcti="$TCTI" "$IMG2" 2>"$TEST_DIR/err") && fail "opened while locked out"
assert_eq "$(json_get "$OUT" 'j["volumes"][0]["tokens"][0]["result"]')" lockout "result in lockout"
grep -q "lockout" "$TEST_DIR/err" || fail "no lockout message: $(cat "$TEST_DIR/err")"
# The legacy primary (systemd's template, no NODA) is itself DA-protected:
# during lockout every token under it reports lockout, PIN or not.
OUT=$("$UNLOCKD" --test --no-prompt --json --tcti="$TCTI" "$IMG3" 2>/dev/null) && fail "opened a legacy-primary token during lockout"
assert_eq "$(json_get "$OUT" 'j["volumes"][0]["tokens"][0]["result"]')" lockout "PIN-less token during lockout"
# Enrolling says why it cannot seal.
"$UNLOCKCTL" enroll --tpm2 --pcrs=1 --unlock-key-file="$TEST_DIR/pass" --tcti="$TCTI" "$IMG2" 2>"$TEST_DIR/err" && fail "enrolled during lockout"
grep -q "dictionary-attack lockout" "$TEST_DIR/err" || fail "enroll during lockout does not say why: $(cat "$TEST_DIR/err")"
opens_with "$IMG2" "correct horse" || fail "passphrase does not open during lockout"
tpm2_dictionarylockout -Q --clear-lockout
PIN=1234 "$UNLOCKD" --test --no-prompt --tcti="$TCTI" "$IMG2" 2>/dev/null || fail "PIN does not open after the lockout was cleared"
assert_no_tpm_leaks "lockout"

say "escrow: the recovery key is printed only encrypted, and decrypts to a key that opens"
need openssl
IMG4=$TEST_DIR/escrow.img
make_luks "$IMG4" "correct horse"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$TEST_DIR/escrow.key" 2>/dev/null
openssl pkey -in "$TEST_DIR/escrow.key" -pubout -out "$TEST_DIR/escrow.pub"
OUT=$("$UNLOCKCTL" enroll --recovery-key --escrow-pubkey="$TEST_DIR/escrow.pub" --unlock-key-file="$TEST_DIR/pass" "$IMG4")
[[ "$OUT" =~ ^\{\"EncryptionKey\":\"[A-Za-z0-9+/=]+\"\}$ ]] || fail "escrow output is not the EncryptionKey JSON: $OUT"
[[ "$OUT" =~ [cbdefghijklnrtuv]{8}- ]] && fail "the clear recovery key was printed with escrow"
json_get "$OUT" 'j["EncryptionKey"]' | base64 -d > "$TEST_DIR/escrow.bin"
DECRYPTED=$(openssl pkeyutl -decrypt -inkey "$TEST_DIR/escrow.key" -pkeyopt rsa_padding_mode:oaep \
        -pkeyopt rsa_oaep_md:sha256 -in "$TEST_DIR/escrow.bin")
[[ "$DECRYPTED" =~ ^([cbdefghijklnrtuv]{8}-){7}[cbdefghijklnrtuv]{8}$ ]] || fail "escrow decrypts to something else"
opens_with "$IMG4" "$DECRYPTED" || fail "the escrowed recovery key does not open the volume"
# A bad public key enrolls nothing.
echo "not a key" > "$TEST_DIR/bad.pub"
"$UNLOCKCTL" enroll --recovery-key --escrow-pubkey="$TEST_DIR/bad.pub" --unlock-key-file="$TEST_DIR/pass" "$IMG4" 2>/dev/null && fail "enroll accepted a bad escrow key"
assert_eq "$(cryptsetup luksDump "$IMG4" | grep -c ': systemd-recovery')" 1 "recovery tokens after a refused escrow"

say "PIN token after a PCR change: refused as a PCR mismatch, never counted as a failed authorization"
IMG5=$TEST_DIR/pin-pcr.img
make_luks "$IMG5" "correct horse"
NEWPIN=1234 "$UNLOCKCTL" enroll --tpm2 --pin --pcrs=7 --unlock-key-file="$TEST_DIR/pass" --tcti="$TCTI" "$IMG5"
tpm2_pcrextend "7:sha256=$(printf '%064x' 77)"
tpm2_dictionarylockout -Q --setup-parameters --max-tries=32 --recovery-time=600 --lockout-recovery-time=1
tpm2_dictionarylockout -Q --clear-lockout
for pin in 1234 4321; do
        OUT=$(PIN=$pin "$UNLOCKD" --test --no-prompt --json --tcti="$TCTI" "$IMG5" 2>/dev/null) && fail "opened after a PCR change (PIN $pin)"
        assert_eq "$(json_get "$OUT" 'j["volumes"][0]["tokens"][0]["result"]')" pcr-mismatch "PIN $pin after a PCR change"
        assert_eq "$(json_get "$OUT" 'j["volumes"][0]["tokens"][0]["pcrs-changed"]')" "[7]" "changed PCRs (PIN $pin)"
done
assert_eq "$(da_failures)" 0 "failed authorizations the TPM counted for a PCR mismatch, right or wrong PIN"
assert_no_tpm_leaks "PIN token after a PCR change"

echo "PASS"
