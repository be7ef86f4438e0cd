#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Nothing locks anyone out: keyslots are removed only when unlockd proves
# they are its own, and every refusal says why. Each case was a way to
# lose the passphrase, the recovery key or the TPM path:
#  - enroll wiping the keyslot it said it kept (--wipe-slot=all --force,
#    --wipe-slot=tpm2) and a guard that counted the pending keyslot as a
#    way in;
#  - forged header fields taken as proof of ownership (an unlockd-pending
#    marker on keyslot 0, a systemd-tpm2 token re-pointed at keyslot 0);
#  - (a re-seal that retired the stale keyslot after a failed PCR read:
#    test-reseal-crash.sh, it needs the crash points);
#  - a hostile generation that broke every later re-seal;
#  - a FIFO or a directory named *.json in the re-seal directory;
#  - a stale token that enroll called "nothing to do"; a full keyslot table
#    or metadata area answered with a bare errno;
#  - escape sequences from a token type on the terminal, a keyslot listed
#    twice;
# then a property test: forged headers × every operation, the passphrase
# and the recovery key must open the volume after each step.
source "$(dirname "$0")/../lib.sh"
PASS="owner passphrase"
source "$(dirname "$0")/reseal-lib.sh"

enroll() { "$UNLOCKCTL" enroll --unlock-key-file="$TEST_DIR/pass" --tcti="$TCTI" "$@" 2>"$TEST_DIR/enroll.log"; }
token_json() { cryptsetup token export --token-id "$2" "$1"; }
# import IMAGE JSON: adds a token as anyone who can write the header can.
import() { printf '%s' "$2" | cryptsetup token import "$1" >/dev/null || fail "cannot import token $2"; }
# repoint JSON KEYSLOT: the token with its keyslots replaced.
repoint() { python3 -c 'import json,sys; t=json.loads(sys.argv[1]); t["keyslots"]=[sys.argv[2]]; print(json.dumps(t))' "$1" "$2"; }

say "enroll: a no-op with --wipe-slot=all --force keeps the TPM2 keyslot it kept"
IMG=$TEST_DIR/noop-all.img
fresh "$IMG"
enroll --tpm2 --pcrs=7 --wipe-slot=all --force "$IMG" || { cat "$TEST_DIR/enroll.log"; fail "enroll failed"; }
grep -q "nothing to do" "$TEST_DIR/enroll.log" || fail "the no-op was not said"
slot_active "$IMG" 2 || fail "the kept TPM2 keyslot 2 was wiped"
tpm_opens "$IMG" || fail "the TPM no longer opens the volume"
assert_eq "$(n_keyslots "$IMG")" 1 "keyslots left (--force wiped the others as asked)"

say "enroll: --tpm2 --wipe-slot=tpm2 keeps the TPM2 keyslot it kept"
IMG=$TEST_DIR/noop-tpm2.img
fresh "$IMG"
enroll --tpm2 --pcrs=7 --wipe-slot=tpm2 "$IMG" || { cat "$TEST_DIR/enroll.log"; fail "enroll failed"; }
slot_active "$IMG" 2 || fail "the only TPM2 keyslot was wiped"
tpm_opens "$IMG" || fail "the TPM no longer opens the volume"
assert_owner "$IMG" "--wipe-slot=tpm2 no-op"

say "enroll: the guard does not count a pending re-seal keyslot as a way in"
IMG=$TEST_DIR/guard.img
fresh "$IMG"
extend_pcr7
type_at "$IMG" "$KEY"
[ -f "$STATE/reseal/$UUID.json" ] || fail "no re-seal job"
rc=0; enroll --wipe-slot=password,recovery "$IMG" || rc=$?
[ "$rc" != 0 ] || fail "the guard let the passphrase and the recovery key go with only TPM and pending keyslots left"
grep -q "Refusing to leave" "$TEST_DIR/enroll.log" || fail "the refusal did not say why: $(cat "$TEST_DIR/enroll.log")"
assert_owner "$IMG" "guard"
reseal || { cat "$TEST_DIR/reseal.log"; fail "reseal failed"; }
tpm_opens "$IMG" || fail "TPM does not open after the re-seal"

say "a forged pending marker on keyslot 0 is not an orphan to remove: TPM unlock, recovery, re-seal"
IMG=$TEST_DIR/forged-marker.img
fresh "$IMG"
import "$IMG" '{"type":"unlockd-pending","keyslots":["0"],"unlockd-generation":1}'
tpm_opens "$IMG" || { cat "$TEST_DIR/tpm.log"; fail "TPM unlock failed"; }
grep -q "stays" "$TEST_DIR/tpm.log" || fail "the kept marker was not said: $(cat "$TEST_DIR/tpm.log")"
assert_owner "$IMG" "forged marker, TPM unlock"
extend_pcr7
type_at "$IMG" "$KEY"
assert_owner "$IMG" "forged marker, recovery"
reseal || { cat "$TEST_DIR/reseal.log"; fail "reseal failed"; }
assert_owner "$IMG" "forged marker, re-seal"
tpm_opens "$IMG" || fail "TPM does not open after the re-seal"
# A marker carrying a real proof, copied and re-pointed, proves nothing.
extend_pcr7
type_at "$IMG" "$KEY"
PTOK=$(cryptsetup luksDump "$IMG" | python3 -c 'import sys,re; print([m.group(1) for m in re.finditer(r"^  (\d+): unlockd-pending", sys.stdin.read(), re.M)][-1])')
import "$IMG" "$(repoint "$(token_json "$IMG" "$PTOK")" 0)"
keyctl unlink "$(keyctl search @u user "unlockd:reseal:$UUID")" @u >/dev/null
rm -f "$STATE/reseal/$UUID.json"
extend_pcr7
type_at "$IMG" "$KEY"   # the orphans are checked with the volume key here
assert_owner "$IMG" "copied proof"
reseal || { cat "$TEST_DIR/reseal.log"; fail "reseal failed"; }
assert_owner "$IMG" "copied proof, re-seal"

for typed in passphrase recovery; do
        say "a systemd-tpm2 token re-pointed at keyslot 0 is not a stale keyslot to retire ($typed typed)"
        IMG=$TEST_DIR/forged-tpm-$typed.img
        fresh "$IMG"
        import "$IMG" "$(repoint "$(token_json "$IMG" 1)" 0)"
        extend_pcr7
        if [ "$typed" = passphrase ]; then type_at "$IMG" "$PASS"; else type_at "$IMG" "$KEY"; fi
        assert_eq "$(json_get "$(cat "$STATE/reseal/$UUID.json")" 'sorted(s["keyslot"] for s in j["stale"])')" "[0, 2]" "stale keyslots recorded"
        reseal || { cat "$TEST_DIR/reseal.log"; fail "reseal failed"; }
        grep -q "stay" "$TEST_DIR/reseal.log" || fail "the kept keyslot 0 was not said: $(cat "$TEST_DIR/reseal.log")"
        assert_owner "$IMG" "forged TPM2 token ($typed)"
        slot_active "$IMG" 2 && fail "the real stale TPM2 keyslot 2 (proven) was not retired"
        tpm_opens "$IMG" || fail "TPM does not open after the re-seal"
done

say "a hostile unlockd-generation does not break later re-seals"
IMG=$TEST_DIR/generation.img
fresh "$IMG"
import "$IMG" "$(python3 -c 'import json,sys; t=json.loads(sys.argv[1]); t["unlockd-generation"]=9223372036854775806; print(json.dumps(t))' "$(token_json "$IMG" 1)")"
extend_pcr7
type_at "$IMG" "$KEY"
assert_eq "$(json_get "$(cat "$STATE/reseal/$UUID.json")" 'j["generation"] < 2**32')" True "generation of the job"
reseal || { cat "$TEST_DIR/reseal.log"; fail "reseal failed after a hostile generation"; }
tpm_opens "$IMG" || fail "TPM does not open after the re-seal"
assert_owner "$IMG" "hostile generation"

say "a FIFO and a directory named *.json in the re-seal directory neither hang nor fail the run"
IMG=$TEST_DIR/fifo.img
fresh "$IMG"
extend_pcr7
type_at "$IMG" "$KEY"
mkfifo "$STATE/reseal/0fifo000-0000-4000-8000-000000000000.json"
mkdir "$STATE/reseal/0dir0000-0000-4000-8000-000000000000.json"
ln -s "$STATE/reseal/$UUID.json" "$STATE/reseal/1link000-0000-4000-8000-000000000000.json"
rc=0; timeout 30 "$UNLOCKCTL" reseal --state-dir="$STATE" --tcti="$TCTI" 2>"$TEST_DIR/reseal.log" || rc=$?
[ "$rc" != 124 ] || fail "reseal hung on a FIFO"
assert_eq "$rc" 0 "reseal exit status with odd entries"
grep -q "not a regular file" "$TEST_DIR/reseal.log" || fail "the odd entries were not said: $(cat "$TEST_DIR/reseal.log")"
tpm_opens "$IMG" || fail "the real job did not run"
rm -rf "$STATE/reseal/0fifo000-0000-4000-8000-000000000000.json" "$STATE/reseal/0dir0000-0000-4000-8000-000000000000.json" \
        "$STATE/reseal/1link000-0000-4000-8000-000000000000.json"

say "enroll over a stale token replaces it"
IMG=$TEST_DIR/stale-enroll.img
fresh "$IMG"
extend_pcr7
enroll --tpm2 --pcrs=7 "$IMG" || { cat "$TEST_DIR/enroll.log"; fail "enroll over a stale token failed"; }
grep -q "nothing to do" "$TEST_DIR/enroll.log" && fail "enroll called a stale token nothing to do"
tpm_opens "$IMG" || fail "the TPM does not open after enrolling over the stale token"
slot_active "$IMG" 2 && fail "the replaced keyslot 2 stayed"
assert_eq "$(cryptsetup luksDump "$IMG" | grep -c ': systemd-tpm2')" 1 "TPM2 tokens after the replacement"
assert_owner "$IMG" "stale enroll"

say "a full keyslot table and a full metadata area say what to do, and change nothing"
IMG=$TEST_DIR/full.img
fresh "$IMG"
for i in $(seq 3 31); do
        printf 'extra %d' "$i" > "$TEST_DIR/extra"
        cryptsetup luksAddKey --batch-mode --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file "$TEST_DIR/pass" \
                "$IMG" "$TEST_DIR/extra" >/dev/null
done
# The header as it matters: keyslots and tokens (not the write counter).
dump() { cryptsetup luksDump "$1" | grep -v '^Epoch:' | md5sum; }
assert_eq "$(n_keyslots "$IMG")" 32 "keyslots in the full table"
BEFORE=$(dump "$IMG")
rc=0; enroll --tpm2 --pcrs=0 "$IMG" || rc=$?
[ "$rc" != 0 ] || fail "enroll into a full keyslot table succeeded"
grep -q "every keyslot is in use" "$TEST_DIR/enroll.log" || fail "no clear message: $(cat "$TEST_DIR/enroll.log")"
assert_eq "$(dump "$IMG")" "$BEFORE" "header after the refused enroll into $IMG"
IMG=$TEST_DIR/meta.img
rm -f "$IMG"; truncate -s 20M "$IMG"
printf '%s' "$PASS" | cryptsetup luksFormat --type luks2 --batch-mode --luks2-metadata-size=16k --luks2-keyslots-size=1m \
        --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file - "$IMG" >/dev/null
filler=$(python3 -c 'print("a" * 1500)')
for i in $(seq 32); do
        printf '{"type":"filler","keyslots":[],"x":"%s"}' "$filler" | cryptsetup token import "$IMG" >/dev/null 2>&1 || break
done
BEFORE=$(dump "$IMG")
rc=0; enroll --tpm2 --pcrs=0 "$IMG" || rc=$?
[ "$rc" != 0 ] || fail "enroll into a full metadata area succeeded"
grep -q "metadata area is full" "$TEST_DIR/enroll.log" || fail "no clear message: $(cat "$TEST_DIR/enroll.log")"
assert_eq "$(dump "$IMG")" "$BEFORE" "header after the refused enroll into $IMG"
opens_with "$IMG" "$PASS" || fail "the passphrase does not open the metadata-full volume"

# add_dummy_keyslot IMAGE N: as an attacker who writes the disk: keyslot N,
# a copy of keyslot 0's metadata with an area of zeros (it opens with
# nothing), bound to the volume key's digest; checksums fixed.
add_dummy_keyslot() {
        python3 - "$1" "$2" <<'PY'
import copy, hashlib, json, struct, sys
img, n = sys.argv[1], sys.argv[2]
f = open(img, "r+b")
def read(off):
    f.seek(off); b = bytearray(f.read(4096)); size = struct.unpack(">Q", b[8:16])[0]
    f.seek(off + 4096); return b, size, f.read(size - 4096)
b, size, js = read(0)
h = json.loads(js.rstrip(b"\0").decode())
ks = copy.deepcopy(h["keyslots"]["0"])
end = max(int(k["area"]["offset"]) + int(k["area"]["size"]) for k in h["keyslots"].values())
ks["area"]["offset"] = str(end)
h["keyslots"][n] = ks
h["digests"]["0"]["keyslots"].append(n)
f.seek(end); f.write(b"\0" * int(ks["area"]["size"]))
new = json.dumps(h).encode(); new += b"\0" * (size - 4096 - len(new))
for off in (0, size):
    hb, _, _ = read(off)
    hb[16:24] = struct.pack(">Q", struct.unpack(">Q", hb[16:24])[0] + 1)
    hb[0x1c0:0x200] = b"\0" * 64
    hb[0x1c0:0x1e0] = hashlib.sha256(bytes(hb) + new).digest()
    f.seek(off); f.write(hb); f.write(new)
PY
        slot_active "$1" "$2" || fail "could not forge keyslot $2"
}

say "wipe by kind: a forged recovery token on the passphrase keyslot does not get it wiped"
IMG=$TEST_DIR/kind-recovery.img
fresh "$IMG"
import "$IMG" '{"type":"systemd-recovery","keyslots":["0"]}'
NEWKEY=$(enroll --recovery-key --wipe-slot=recovery "$IMG") || { cat "$TEST_DIR/enroll.log"; fail "rotating the recovery key failed"; }
opens_with "$IMG" "$PASS" || fail "--wipe-slot=recovery wiped the passphrase it was authorized with"
opens_with "$IMG" "$NEWKEY" || fail "the new recovery key does not open"
opens_with "$IMG" "$KEY" && fail "the old recovery key was not wiped"
IMG=$TEST_DIR/kind-recovery2.img
fresh "$IMG"
import "$IMG" '{"type":"systemd-recovery","keyslots":["0"]}'
add_dummy_keyslot "$IMG" 7
enroll --wipe-slot=recovery "$IMG" || true
opens_with "$IMG" "$PASS" || fail "--wipe-slot=recovery took the passphrase (a forged recovery token)"

say "the guard counts only verified ways in: not a dummy keyslot, not a half-enrolled one"
IMG=$TEST_DIR/guard-dummy.img
fresh "$IMG"
cryptsetup token remove --token-id 0 "$IMG"     # the recovery key's token, stripped
add_dummy_keyslot "$IMG" 7
import "$IMG" '{"type":"systemd-recovery","keyslots":["7"]}'
rc=0; enroll --wipe-slot=password "$IMG" || rc=$?
[ "$rc" != 0 ] || fail "the guard let the passphrase and the recovery key go for a keyslot nobody can open"
assert_owner "$IMG" "dummy keyslot"
IMG=$TEST_DIR/guard-half.img
fresh "$IMG"
# An enroll killed between its keyslot and its token.
gdb -q -batch -ex 'break luks_token_add' -ex run -ex 'signal SIGKILL' --args \
        "$UNLOCKCTL" enroll --tpm2 --pcrs=0+7 --unlock-key-file="$TEST_DIR/pass" --tcti="$TCTI" "$IMG" >/dev/null 2>&1 || true
tpm2_flushcontext -t >/dev/null 2>&1 || true
tpm2_flushcontext -l >/dev/null 2>&1 || true
assert_eq "$(n_keyslots "$IMG")" 4 "keyslots after the killed enroll (one without a token)"
rc=0; enroll --wipe-slot=0,recovery "$IMG" || rc=$?
[ "$rc" != 0 ] || fail "the guard counted a half-enrolled keyslot as a way in"
assert_owner "$IMG" "half-enrolled keyslot"
# Authorized by the recovery key, which stays, the same wipe of the passphrase is fine.
printf '%s' "$KEY" > "$TEST_DIR/key"
"$UNLOCKCTL" enroll --wipe-slot=0 --unlock-key-file="$TEST_DIR/key" --tcti="$TCTI" "$IMG" 2>"$TEST_DIR/enroll.log" ||
        { cat "$TEST_DIR/enroll.log"; fail "wiping the passphrase, authorized by the recovery key, was refused"; }
opens_with "$IMG" "$KEY" || fail "the recovery key no longer opens"

say "enroll --tpm2 over a forged 'current' token checks that it opens before calling it nothing to do"
IMG=$TEST_DIR/forged-current.img
fresh "$IMG"
extend_pcr7
# The policy hash of the current PCR 7, made by the TPM itself.
tpm2_startauthsession -S "$TEST_DIR/s.ctx" >/dev/null
tpm2_policypcr -S "$TEST_DIR/s.ctx" -l sha256:7 -L "$TEST_DIR/pol" >/dev/null
tpm2_flushcontext "$TEST_DIR/s.ctx" >/dev/null
PH=$(od -An -tx1 -v "$TEST_DIR/pol" | tr -d ' \n')
import "$IMG" "$(python3 -c 'import json,sys; t=json.loads(sys.argv[1]); t["keyslots"]=["0"]; t["tpm2-policy-hash"]=sys.argv[2]; [t.pop(k,None) for k in ("unlockd-proof","unlockd-pcr-values")]; print(json.dumps(t))' "$(token_json "$IMG" 1)" "$PH")"
enroll --tpm2 --pcrs=7 "$IMG" || { cat "$TEST_DIR/enroll.log"; fail "enroll failed"; }
grep -q "nothing to do" "$TEST_DIR/enroll.log" && fail "a forged token was taken as the current one"
tpm_opens "$IMG" || fail "the TPM does not open after enroll"
assert_owner "$IMG" "forged current token"

say "a stray job with a larger generation does not supersede the real one"
IMG=$TEST_DIR/stray.img
fresh "$IMG"
extend_pcr7
type_at "$IMG" "$KEY"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); j["generation"]+=5; json.dump(j, open(sys.argv[2],"w"))' \
        "$STATE/reseal/$UUID.json" "$STATE/reseal/zz-copy.json"
reseal || { cat "$TEST_DIR/reseal.log"; fail "reseal with a stray job failed"; }
grep -q "verified by unsealing" "$TEST_DIR/reseal.log" || fail "the real job did not run: $(cat "$TEST_DIR/reseal.log")"
tpm_opens "$IMG" || fail "TPM does not open after the re-seal"
ls "$STATE/reseal/" | grep -q . && fail "jobs left: $(ls "$STATE/reseal/")"

say "a refusal for a keyslot a person uses suggests no command to remove it"
IMG=$TEST_DIR/no-hint.img
fresh "$IMG"
import "$IMG" "$(repoint "$(token_json "$IMG" 1)" 0)"
import "$IMG" "$(repoint "$(token_json "$IMG" 1)" 1)"
extend_pcr7
type_at "$IMG" "$PASS"
reseal || { cat "$TEST_DIR/reseal.log"; fail "reseal failed"; }
grep -q "luksKillSlot" "$TEST_DIR/reseal.log" && fail "unlockd suggested removing a keyslot a person uses: $(cat "$TEST_DIR/reseal.log")"
assert_owner "$IMG" "no hint"

say "status: no raw escape sequences from the header, each orphaned keyslot once"
IMG=$TEST_DIR/status.img
fresh "$IMG"
import "$IMG" "$(printf '{"type":"evil\\u001b]0;owned\\u0007\\u001b[31m","keyslots":[]}')"
import "$IMG" '{"type":"unlockd-pending","keyslots":["0"],"unlockd-generation":1}'
import "$IMG" '{"type":"unlockd-pending","keyslots":["0"],"unlockd-generation":2}'
"$UNLOCKCTL" status --state-dir="$STATE" --tcti="$TCTI" "$IMG" > "$TEST_DIR/status.txt" 2>&1
python3 - "$TEST_DIR/status.txt" <<'PY' || fail "status wrote control characters: $(cat -v "$TEST_DIR/status.txt")"
import sys
data = open(sys.argv[1], "rb").read()
bad = [c for c in data if c < 0x20 and c not in (0x0a,)]
sys.exit(1 if bad or b"\\x1b" not in data else 0)
PY
assert_eq "$(json_get "$("$UNLOCKCTL" status --json --state-dir="$STATE" --tcti="$TCTI" "$IMG")" 'j["volumes"][0]["orphaned-keyslots"]')" "[0]" "orphans listed once"
assert_eq "$(grep -c "keyslot 0 is marked" "$TEST_DIR/status.txt")" 1 "orphan lines in the text status"
grep -q "cryptsetup luksKillSlot" "$TEST_DIR/status.txt" || fail "status did not say how to remove the unproven keyslot by hand"

if command -v systemd-cryptenroll >/dev/null; then
        say "a systemd-cryptenroll token is adopted at a TPM unlock, so that its keyslot is retired by the next re-seal"
        IMG=$TEST_DIR/sd.img
        make_luks "$IMG" "$PASS"
        KEY=$("$UNLOCKCTL" enroll --recovery-key --unlock-key-file="$TEST_DIR/pass" "$IMG" 2>/dev/null)
        PASSWORD="$PASS" systemd-cryptenroll --tpm2-device="$TCTI" --tpm2-pcrs=7 "$IMG" >/dev/null 2>&1
        tpm2_flushcontext -l >/dev/null 2>&1 || true
        tpm2_flushcontext -t >/dev/null 2>&1 || true
        SDTOK=$(cryptsetup luksDump "$IMG" | sed -nE 's/^  ([0-9]+): systemd-tpm2/\1/p')
        SDSLOT=$(json_get "$(token_json "$IMG" "$SDTOK")" 'j["keyslots"][0]')
        assert_eq "$(json_get "$(token_json "$IMG" "$SDTOK")" '"unlockd-proof" in j')" False "proof before the TPM unlock"
        tpm_opens "$IMG" || { cat "$TEST_DIR/tpm.log"; fail "unlockd did not open the systemd-cryptenroll volume"; }
        assert_eq "$(json_get "$(token_json "$IMG" "$SDTOK")" '"unlockd-proof" in j')" True "proof after the TPM unlock"
        tpm_opens "$IMG" || fail "the adopted token no longer opens"
        extend_pcr7
        type_at "$IMG" "$KEY"
        reseal || { cat "$TEST_DIR/reseal.log"; fail "reseal failed"; }
        slot_active "$IMG" "$SDSLOT" && fail "the adopted stale keyslot $SDSLOT stayed"
        tpm_opens "$IMG" || fail "TPM does not open after the re-seal"
        assert_owner "$IMG" "adopted systemd token"

        say "a systemd-cryptenroll token never opened by unlockd is kept by the re-seal, and the admin is told"
        IMG=$TEST_DIR/sd-unproven.img
        make_luks "$IMG" "$PASS"
        KEY=$("$UNLOCKCTL" enroll --recovery-key --unlock-key-file="$TEST_DIR/pass" "$IMG" 2>/dev/null)
        PASSWORD="$PASS" systemd-cryptenroll --tpm2-device="$TCTI" --tpm2-pcrs=7 "$IMG" >/dev/null 2>&1
        tpm2_flushcontext -l >/dev/null 2>&1 || true
        tpm2_flushcontext -t >/dev/null 2>&1 || true
        SDSLOT=$(json_get "$(cryptsetup token export --token-id "$(cryptsetup luksDump "$IMG" | sed -nE 's/^  ([0-9]+): systemd-tpm2/\1/p')" "$IMG")" 'j["keyslots"][0]')
        extend_pcr7
        type_at "$IMG" "$KEY"
        reseal || { cat "$TEST_DIR/reseal.log"; fail "reseal failed"; }
        slot_active "$IMG" "$SDSLOT" || fail "the unproven keyslot $SDSLOT was removed"
        grep -q "luksKillSlot" "$TEST_DIR/reseal.log" || fail "the admin was not told how to remove it: $(cat "$TEST_DIR/reseal.log")"
        tpm_opens "$IMG" || fail "TPM does not open after the re-seal"
        assert_owner "$IMG" "unproven systemd token"
else
        fail "systemd-cryptenroll is not installed (tools/install-deps installs systemd)"
fi

say "property: forged headers × unlock, recovery, re-seal, enroll, wipe: the owner keeps the passphrase and the recovery key"
FORGERIES=(
        'marker:0' 'marker:1' 'marker:2'
        'tpm2:0' 'tpm2:1'
        'recovery:0' 'recovery:2'
        'dup-tpm2' 'two-markers:0' 'multi-keyslot-tpm2'
)
forge() {  # IMAGE FORGERY
        local img=$1 f=$2 t1
        t1=$(token_json "$img" 1)
        case $f in
        marker:*) import "$img" "{\"type\":\"unlockd-pending\",\"keyslots\":[\"${f#*:}\"],\"unlockd-generation\":7}" ;;
        tpm2:*) import "$img" "$(repoint "$t1" "${f#*:}")" ;;
        recovery:*) import "$img" "{\"type\":\"systemd-recovery\",\"keyslots\":[\"${f#*:}\"]}" ;;
        dup-tpm2) import "$img" "$t1" ;;
        two-markers:*)
                import "$img" "{\"type\":\"unlockd-pending\",\"keyslots\":[\"${f#*:}\"],\"unlockd-generation\":3}"
                import "$img" "{\"type\":\"unlockd-pending\",\"keyslots\":[\"${f#*:}\"],\"unlockd-generation\":4}" ;;
        multi-keyslot-tpm2) import "$img" "$(python3 -c 'import json,sys; t=json.loads(sys.argv[1]); t["keyslots"]=["0","1"]; print(json.dumps(t))' "$t1")" ;;
        esac
}
for f in "${FORGERIES[@]}"; do
        IMG=$TEST_DIR/prop.img
        fresh "$IMG"
        forge "$IMG" "$f"
        assert_owner "$IMG" "$f: forged"
        "$UNLOCKD" --test --no-prompt --state-dir="$STATE" --tcti="$TCTI" "$IMG" >/dev/null 2>&1 || true
        assert_owner "$IMG" "$f: after a TPM unlock"
        extend_pcr7
        type_at "$IMG" "$KEY"
        assert_owner "$IMG" "$f: after the recovery unlock"
        reseal || true
        assert_owner "$IMG" "$f: after the re-seal"
        extend_pcr7
        type_at "$IMG" "$PASS"
        assert_owner "$IMG" "$f: after a passphrase unlock"
        reseal || true
        assert_owner "$IMG" "$f: after the second re-seal"
        enroll --tpm2 --pcrs=7 "$IMG" || true
        assert_owner "$IMG" "$f: after enroll --tpm2"
        extend_pcr7
        enroll --tpm2 --pcrs=7 --wipe-slot=tpm2 "$IMG" || true
        assert_owner "$IMG" "$f: after enroll over a stale token with --wipe-slot=tpm2"
        enroll --wipe-slot=password "$IMG" || true
        opens_with "$IMG" "$KEY" || fail "$f: --wipe-slot=password took the recovery key"
        tpm_opens "$IMG" || fail "$f: the TPM no longer opens the volume at the end"
        rm -rf "$STATE/reseal"
done

echo PASS
