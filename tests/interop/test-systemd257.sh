#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Interoperability with the tokens of systemd 257 (Debian 13): its
# systemd-cryptenroll runs in a Debian 13 tree (tests/interop/trixie-setup,
# built once and cached) under chroot (tests/interop/in-trixie), against this test's swtpm on the host,
# on LUKS2 image files of the host; unlockd --test opens what it enrolled:
#  - the default token (sealed under the persistent SRK it creates at
#    0x81000001, recorded in tpm2_srk), a PIN token (tpm2_salt), and a token
#    without PCRs (--tpm2-pcrs=);
#  - the offline enrollment (--tpm2-device-key=SRK.pub, PCR 7 given by
#    value): a tpm2-blob with a third part, the import seed, which unlockd
#    TPM2_Imports under the SRK, with and without a PIN — one TPM command
#    more than an ordinary unlock (counted through libtss2-tcti-pcap);
#  - a token whose tpm2-blob and tpm2-policy-hash are one-element arrays
#    (systemd ≥ 256 parses that form; 257 writes a single shard as a plain
#    string, so the test rewrites a real token that way);
# the other way round, what unlockctl enroll --tpm2-device-key seals offline
# (to the SRK systemd made, and to one of the other algorithm) is imported
# and unsealed by systemd 257's systemd-cryptsetup (its own TPM2 code, not
# the token plugin), and opens with unlockd;
# signed PCR policies (--tpm2-public-key, the signature made by
# systemd-measure sign) open, alone, with a literal PCR and with a PIN;
# and the kinds unlockd does not unseal are skipped with a message naming
# the feature, never a PCR mismatch: a pcrlock policy (systemd-pcrlock
# make-policy, on an event log that holds only its header, as the swtpm's
# PCRs are unextended), and the two-shard token systemd writes for pcrlock
# and a signed policy together.
source "$(dirname "$0")/../lib.sh"
need swtpm tpm2_readpublic tpm2_pcrread tpm2_getcap cryptsetup python3 unshare chroot openssl
[ "$(id -u)" = 0 ] || skip "chroot and mount namespaces need root"

ROOT=$("$SOURCE_DIR/tests/interop/trixie-setup") || fail "the Debian 13 tree could not be built (tests/interop/trixie-setup)"
[ -x "$ROOT/usr/bin/systemd-cryptenroll" ] || fail "no systemd-cryptenroll in $ROOT"

start_swtpm
printf 'interop pass' > "$TEST_DIR/pass"

# The tree sees $TEST_DIR (images, swtpm socket, keys) at the same path
# (env EVENTLOG=FILE: the firmware event log it sees; PCR11=HEX: the PCR 11
# that sysfs shows, for systemd-measure --current).
sd257() { "$SOURCE_DIR/tests/interop/in-trixie" "$TEST_DIR" "$@"; }
sd257 systemd-cryptenroll --version | head -1 | grep -q '^systemd 257' || fail "the tree's systemd is not 257: $(sd257 systemd-cryptenroll --version | head -1)"

# systemd-cryptenroll may leave handles on a TPM without a resource manager
# (swtpm); flush them so that the leak checks see only unlockd's.
sd_enroll() {
        sd257 systemd-cryptenroll "$@" 2>"$TEST_DIR/enroll.log" || { cat "$TEST_DIR/enroll.log" >&2; fail "systemd 257's systemd-cryptenroll $*"; }
        tpm2_flushcontext -l >/dev/null 2>&1 || true
        tpm2_flushcontext -t >/dev/null 2>&1 || true
        assert_no_tpm_leaks "flushing after systemd-cryptenroll"
}

new_image() {  # NAME: a fresh LUKS2 image with the passphrase; prints its path
        make_luks "$TEST_DIR/$1.img" "interop pass"
        echo "$TEST_DIR/$1.img"
}

# unlockd_skips IMAGE FEATURE: the token is skipped as unsupported, naming
# FEATURE, and nothing else is said of it (no PCR diagnosis).
unlockd_skips() {
        local out
        out=$("$UNLOCKD" --test --no-prompt --json --tcti="$TCTI" "$1" 2>"$TEST_DIR/skip.log") && fail "unlockd opened $1"
        assert_eq "$(json_get "$out" 'j["volumes"][0]["tokens"][0]["result"]')" unsupported "result for $1"
        json_get "$out" 'j["volumes"][0]["tokens"][0]["detail"]' | grep -qF "$2" \
                || fail "the detail for $1 does not name $2: $(json_get "$out" 'j["volumes"][0]["tokens"][0]["detail"]')"
        assert_eq "$(json_get "$out" '"pcrs-changed" in j["volumes"][0]["tokens"][0]')" False "no PCR diagnosis for $1"
        grep -q "uses $2" "$TEST_DIR/skip.log" || fail "unlockd's message for $1 does not name $2: $(cat "$TEST_DIR/skip.log")"
        assert_no_tpm_leaks "unlockd skipping $1"
}

token() { cryptsetup token export --token-id 0 "$1"; }

# blob_parts TOKEN-JSON: the number of parts of the (first) tpm2-blob.
blob_parts() {
        python3 - "$1" <<'PY'
import base64, json, struct, sys
b = json.loads(sys.argv[1])["tpm2-blob"]
b = base64.b64decode(b[0] if isinstance(b, list) else b)
off = n = 0
while off < len(b):
    off += 2 + struct.unpack_from(">H", b, off)[0]
    n += 1
assert off == len(b), "parts do not add up"
print(n)
PY
}

say "systemd 257's default token (persistent SRK, tpm2_srk) → unlockd"
IMG=$(new_image default)
PASSWORD="interop pass" sd_enroll --tpm2-device="$TCTI" "$IMG"
TOKEN=$(token "$IMG")
assert_eq "$(json_get "$TOKEN" '"tpm2_srk" in j')" True "tpm2_srk in systemd 257's token"
assert_eq "$(json_get "$TOKEN" 'j["tpm2-pcrs"]')" "[7]" "systemd 257's default PCRs"
assert_eq "$(blob_parts "$TOKEN")" 2 "parts of an ordinary tpm2-blob"
tpm2_getcap handles-persistent | grep -q 0x81000001 || fail "systemd-cryptenroll made no SRK at 0x81000001"
unlockd_opens "$IMG"

say "the same token with tpm2-blob and tpm2-policy-hash as one-element arrays → unlockd"
IMG2=$(new_image array)
cp "$IMG" "$IMG2"
python3 - "$TOKEN" > "$TEST_DIR/array.json" <<'PY'
import json, sys
t = json.loads(sys.argv[1])
t["tpm2-blob"] = [t["tpm2-blob"]]
t["tpm2-policy-hash"] = [t["tpm2-policy-hash"]]
print(json.dumps(t))
PY
# (without the host's systemd 252 token plugin, whose validation wants strings)
cryptsetup token import --disable-external-tokens --token-id 0 --token-replace --json-file "$TEST_DIR/array.json" "$IMG2"
assert_eq "$(json_get "$(token "$IMG2")" 'type(j["tpm2-blob"]).__name__')" list "tpm2-blob form"
unlockd_opens "$IMG2"

say "systemd 257's PIN token (tpm2_salt) → unlockd with \$PIN; a wrong PIN is pin-wrong"
IMG=$(new_image pin)
PASSWORD="interop pass" NEWPIN=2468 sd_enroll --tpm2-device="$TCTI" --tpm2-with-pin=yes "$IMG"
TOKEN=$(token "$IMG")
assert_eq "$(json_get "$TOKEN" '"tpm2_salt" in j and j["tpm2-pin"]')" True "a salted PIN token"
unlockd_opens "$IMG" PIN=2468
OUT=$(PIN=1357 "$UNLOCKD" --test --no-prompt --json --tcti="$TCTI" "$IMG" 2>/dev/null) && fail "a wrong PIN opened systemd 257's PIN token"
assert_eq "$(json_get "$OUT" 'j["volumes"][0]["tokens"][0]["result"]')" pin-wrong "wrong PIN on systemd 257's token"
tpm2_dictionarylockout --clear-lockout >/dev/null

say "systemd 257 with --tpm2-pcrs= (no PolicyPCR) → unlockd"
IMG=$(new_image nopcrs)
PASSWORD="interop pass" sd_enroll --tpm2-device="$TCTI" --tpm2-pcrs= "$IMG"
assert_eq "$(json_get "$(token "$IMG")" 'j["tpm2-pcrs"]')" "[]" "no PCRs"
unlockd_opens "$IMG"

say "offline enrollment: --tpm2-device-key=SRK.pub --tpm2-pcrs=7:sha256=… (import seed) → unlockd"
# SRK.pub as systemd-analyze srk and tpm2-setup write it: the TPM2B_PUBLIC of
# the SRK systemd-cryptenroll made above.
tpm2_readpublic -Q -c 0x81000001 -f tss -o "$TEST_DIR/srk.pub"
tpm2_pcrread -Q sha256:7 -o "$TEST_DIR/pcr7"
PCR7=$(od -An -v -tx1 "$TEST_DIR/pcr7" | tr -d ' \n')
assert_eq "${#PCR7}" 64 "PCR 7 value"
IMG=$(new_image offline)
PASSWORD="interop pass" sd_enroll --tpm2-device-key="$TEST_DIR/srk.pub" --tpm2-pcrs="7:sha256=$PCR7" "$IMG"
OFFLINE=$IMG
TOKEN=$(token "$IMG")
assert_eq "$(blob_parts "$TOKEN")" 3 "parts of an offline tpm2-blob (private, public, import seed)"
unlockd_opens "$IMG"
ST=$("$UNLOCKCTL" status --json --tcti="$TCTI" --state-dir="$TEST_DIR/state" "$IMG")
assert_eq "$(json_get "$ST" '[t.get("offline-sealed") for t in j["volumes"][0]["tokens"] if t["type"]=="systemd-tpm2"]')" "[True]" "status: offline-sealed"
"$UNLOCKCTL" status --tcti="$TCTI" --state-dir="$TEST_DIR/state" "$IMG" | grep -q "sealed offline" || fail "status text does not say the token is sealed offline"

say "offline enrollment with a PIN → unlockd with \$PIN; a wrong PIN is pin-wrong"
IMG=$(new_image offline-pin)
PASSWORD="interop pass" NEWPIN=8642 sd_enroll --tpm2-device-key="$TEST_DIR/srk.pub" --tpm2-pcrs="7:sha256=$PCR7" \
        --tpm2-with-pin=yes "$IMG"
assert_eq "$(blob_parts "$(token "$IMG")")" 3 "parts of an offline PIN tpm2-blob"
unlockd_opens "$IMG" PIN=8642
OUT=$(PIN=8643 "$UNLOCKD" --test --no-prompt --json --tcti="$TCTI" "$IMG" 2>/dev/null) && fail "a wrong PIN opened the offline PIN token"
assert_eq "$(json_get "$OUT" 'j["volumes"][0]["tokens"][0]["result"]')" pin-wrong "wrong PIN on the offline token"
tpm2_dictionarylockout --clear-lockout >/dev/null

if ls /usr/lib/*/libtss2-tcti-pcap.so.0 >/dev/null 2>&1; then
        say "TPM commands: an import-seed unlock has exactly one more (Import) than an ordinary one"
        count() {  # IMAGE: prints {"total": N, "commands": {…}}
                rm -f "$TEST_DIR/c.pcap"
                TCTI_PCAP_FILE=$TEST_DIR/c.pcap "$UNLOCKD" --test --no-prompt --tcti="pcap:$TCTI" "$1" 2>/dev/null \
                        || fail "unlockd did not open $1 through the pcap TCTI"
                python3 "$SOURCE_DIR/bench/tpm-commands.py" "$TEST_DIR/c.pcap"
        }
        ORD=$(count "$TEST_DIR/default.img")
        IMP=$(count "$OFFLINE")
        say "ordinary (SRK) unlock: $ORD"
        say "import-seed unlock:    $IMP"
        assert_eq "$(json_get "$IMP" 'j["total"]')" "$(( $(json_get "$ORD" 'j["total"]') + 1 ))" "commands of an import-seed unlock"
        assert_eq "$(json_get "$IMP" 'j["commands"].get("Import", 0)')" 1 "Imports of an import-seed unlock"
        assert_no_tpm_leaks "counted unlocks"
fi

say "signed PCR policy (--tpm2-public-key, signed by systemd-measure) → unlockd"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$TEST_DIR/policy.key" 2>/dev/null
openssl pkey -in "$TEST_DIR/policy.key" -pubout -out "$TEST_DIR/policy.pem"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$TEST_DIR/other.key" 2>/dev/null
openssl pkey -in "$TEST_DIR/other.key" -pubout -out "$TEST_DIR/other.pem"
# measure_sign KEY PHASE OUT: systemd 257's systemd-measure signs PCR 11 as
# the TPM has it now, extended by the boot phase PHASE (as systemd-pcrphase
# extends it at boot), into OUT (the JSON systemd-stub leaves in /.extra).
measure_sign() {
        local p11
        tpm2_pcrread -Q sha256:11 -o "$TEST_DIR/pcr11"
        p11=$(od -An -v -tx1 "$TEST_DIR/pcr11" | tr -d ' \n' | tr a-f A-F)
        PCR11=$p11 sd257 /usr/lib/systemd/systemd-measure sign --current --bank=sha256 --phase="$2" \
                --private-key="$TEST_DIR/$1.key" --public-key="$TEST_DIR/$1.pem" -j >"$3" 2>"$TEST_DIR/measure.log" \
                || { cat "$TEST_DIR/measure.log" >&2; fail "systemd-measure sign"; }
}
# unlockd_refuses IMAGE SIGNATURE RESULT TEXT: the token is refused with
# RESULT, its detail says TEXT, and nothing of PCRs having changed.
unlockd_refuses() {
        local out
        out=$(UNLOCKD_PCR_SIGNATURE=$2 "$UNLOCKD" --test --no-prompt --json --tcti="$TCTI" "$1" 2>"$TEST_DIR/refuse.log") \
                && fail "unlockd opened $1 with $2"
        assert_eq "$(json_get "$out" 'j["volumes"][0]["tokens"][0]["result"]')" "$3" "result for $1 with $2"
        json_get "$out" 'j["volumes"][0]["tokens"][0]["detail"]' | grep -qF "$4" \
                || fail "the detail for $1 does not say '$4': $(json_get "$out" 'j["volumes"][0]["tokens"][0]["detail"]')"
        assert_eq "$(json_get "$out" '"pcrs-changed" in j["volumes"][0]["tokens"][0]')" False "no PCR diagnosis for $1"
        grep -q "changed since sealing" "$TEST_DIR/refuse.log" && fail "unlockd says PCRs changed for $1"
        assert_no_tpm_leaks "unlockd refusing $1"
}
IMG=$(new_image signed)
PASSWORD="interop pass" sd_enroll --tpm2-device="$TCTI" --tpm2-public-key="$TEST_DIR/policy.pem" \
        --tpm2-public-key-pcrs=11 --tpm2-pcrs= "$IMG"
SIGNED=$IMG
TOKEN=$(token "$IMG")
assert_eq "$(json_get "$TOKEN" 'j["tpm2_pubkey_pcrs"], j["tpm2-pcrs"]')" "([11], [])" "a signed-policy token"
IMG=$(new_image signed-pcr7)
PASSWORD="interop pass" sd_enroll --tpm2-device="$TCTI" --tpm2-public-key="$TEST_DIR/policy.pem" \
        --tpm2-public-key-pcrs=11 --tpm2-pcrs=7 "$IMG"
SIGNED7=$IMG
IMG=$(new_image signed-pin)
PASSWORD="interop pass" NEWPIN=1593 sd_enroll --tpm2-device="$TCTI" --tpm2-public-key="$TEST_DIR/policy.pem" \
        --tpm2-public-key-pcrs=11 --tpm2-pcrs=7 --tpm2-with-pin=yes "$IMG"
SIGNEDPIN=$IMG
# Signed for the phase systemd-pcrphase enters first; PCR 11 is not there yet.
measure_sign policy enter-initrd "$TEST_DIR/sig.json"
measure_sign other enter-initrd "$TEST_DIR/sig-other.json"
python3 - "$TEST_DIR/sig.json" > "$TEST_DIR/sig-bad.json" <<'PY'
import base64, json, sys
j = json.load(open(sys.argv[1]))
for e in j["sha256"]:
    s = bytearray(base64.b64decode(e["sig"])); s[10] ^= 1
    e["sig"] = base64.b64encode(bytes(s)).decode()
print(json.dumps(j))
PY
unlockd_refuses "$SIGNED" "$TEST_DIR/none.json" signature-missing "no signature file"
unlockd_refuses "$SIGNED" "$TEST_DIR/sig.json" signature-missing "has no signature for PCR 11 (sha256)"
grep -q "has no signature for PCR 11" "$TEST_DIR/refuse.log" || fail "no message on the console: $(cat "$TEST_DIR/refuse.log")"
say "  PCR 11 extended with enter-initrd: the signed tokens open (alone, with PCR 7, with a PIN)"
tpm2_pcrextend "11:sha256=$(printf enter-initrd | sha256sum | cut -c1-64)"
UNLOCKD_PCR_SIGNATURE=$TEST_DIR/sig.json unlockd_opens "$SIGNED"
UNLOCKD_PCR_SIGNATURE=$TEST_DIR/sig.json unlockd_opens "$SIGNED7"
UNLOCKD_PCR_SIGNATURE=$TEST_DIR/sig.json unlockd_opens "$SIGNEDPIN" PIN=1593
ST=$("$UNLOCKCTL" status --json --tcti="$TCTI" --state-dir="$TEST_DIR/state" "$SIGNED7")
assert_eq "$(json_get "$ST" '[(t.get("signed-pcrs"), t["pcrs"], "policy-satisfied" in t) for t in j["volumes"][0]["tokens"] if t["type"]=="systemd-tpm2"]')" \
        "[([11], [7], False)]" "status of a signed-policy token"
"$UNLOCKCTL" status --tcti="$TCTI" --state-dir="$TEST_DIR/state" "$SIGNED7" | grep -q "signed PCR policy over PCRs \[ *11 *\]" \
        || fail "status text does not name the signed policy: $("$UNLOCKCTL" status --tcti="$TCTI" --state-dir="$TEST_DIR/state" "$SIGNED7")"
say "  a signature by another key, a corrupted signature: refused, not a PCR mismatch"
unlockd_refuses "$SIGNED" "$TEST_DIR/sig-other.json" signature-missing "has no signature for PCR 11"
unlockd_refuses "$SIGNED" "$TEST_DIR/sig-bad.json" signature-rejected "does not verify with the token's key"
say "  a refused signature falls to the prompt, where the passphrase opens the volume"
PTY_DRIVE=$SOURCE_DIR/tools/pty-drive
printf '%s\n' "interop pass" > "$TEST_DIR/typed"
UNLOCKD_PCR_SIGNATURE=$TEST_DIR/sig-bad.json "$PTY_DRIVE" --timeout 60 --expect 'Recovery key or passphrase: ' \
        --send-file "$TEST_DIR/typed" -- "$UNLOCKD" --test --json --console=/dev/tty --ask-password=no \
        --state-dir="$TEST_DIR/state" --tcti="$TCTI" "$SIGNED" > "$TEST_DIR/prompt.log" 2>&1 \
        || { cat "$TEST_DIR/prompt.log" >&2; fail "the prompt after a refused signature"; }
grep -q '"method": *"passphrase"' "$TEST_DIR/prompt.log" || fail "not opened by the passphrase: $(cat "$TEST_DIR/prompt.log")"
assert_no_tpm_leaks "the prompt after a refused signature"

say "pcrlock (systemd-pcrlock make-policy) and pcrlock + signed policy (two shards): skipped, naming the feature"
# An event log of only its header (TCG_EfiSpecIDEvent, SHA-256): what the
# unextended PCRs of the swtpm agree with.
python3 - "$TEST_DIR/eventlog" <<'PY'
import struct, sys
ev = b"Spec ID Event03\0" + struct.pack("<IBBBBI", 0, 0, 2, 0, 2, 1) + struct.pack("<HH", 0x000B, 32) + b"\0"
open(sys.argv[1], "wb").write(struct.pack("<II", 0, 3) + bytes(20) + struct.pack("<I", len(ev)) + ev)
PY
mkdir -p "$TEST_DIR/pcrlock.d"
EVENTLOG=$TEST_DIR/eventlog SYSTEMD_TPM2_DEVICE=$TCTI sd257 /usr/lib/systemd/systemd-pcrlock make-policy --pcr=7 \
        --components="$TEST_DIR/pcrlock.d" --policy="$TEST_DIR/pcrlock.json" >"$TEST_DIR/pcrlock.log" 2>&1 \
        || { cat "$TEST_DIR/pcrlock.log" >&2; fail "systemd-pcrlock make-policy"; }
tpm2_flushcontext -t >/dev/null 2>&1 || true
tpm2_flushcontext -l >/dev/null 2>&1 || true
IMG=$(new_image pcrlock)
PASSWORD="interop pass" sd_enroll --tpm2-device="$TCTI" --tpm2-pcrlock="$TEST_DIR/pcrlock.json" --tpm2-pcrs= "$IMG"
assert_eq "$(json_get "$(token "$IMG")" 'j.get("tpm2_pcrlock")')" True "a pcrlock token"
unlockd_skips "$IMG" tpm2_pcrlock
IMG=$(new_image shards)
PASSWORD="interop pass" sd_enroll --tpm2-device="$TCTI" --tpm2-pcrlock="$TEST_DIR/pcrlock.json" \
        --tpm2-public-key="$TEST_DIR/policy.pem" --tpm2-public-key-pcrs=11 --tpm2-pcrs= "$IMG"
assert_eq "$(json_get "$(token "$IMG")" 'len(j["tpm2-blob"]), len(j["tpm2-policy-hash"])')" "(2, 2)" "a two-shard token"
unlockd_skips "$IMG" "two shards"

say "PCR 7 extended: the default and the offline token are refused with pcr-mismatch"
tpm2_pcrextend "7:sha256=$(printf '%064x' 1)"
for img in "$TEST_DIR/default.img" "$OFFLINE"; do
        OUT=$("$UNLOCKD" --test --no-prompt --json --tcti="$TCTI" "$img" 2>/dev/null) && fail "$img opened after a PCR change"
        assert_eq "$(json_get "$OUT" 'j["volumes"][0]["tokens"][0]["result"]')" pcr-mismatch "$img after the PCR change"
        assert_no_tpm_leaks "refused $img"
done
say "  the signed token with PCR 7: pcr-mismatch of the literal PCR 7, the signed PCR 11 not blamed"
OUT=$(UNLOCKD_PCR_SIGNATURE=$TEST_DIR/sig.json "$UNLOCKD" --test --no-prompt --json --tcti="$TCTI" "$SIGNED7" 2>/dev/null) \
        && fail "the signed token with PCR 7 opened after PCR 7 changed"
assert_eq "$(json_get "$OUT" 'j["volumes"][0]["tokens"][0]["result"]')" pcr-mismatch "the signed token with PCR 7 after the change"
assert_eq "$(json_get "$OUT" 'j["volumes"][0]["tokens"][0]["detail"]')" "PCR policy (signed PCR 11, PCR 7) not satisfied" "its detail"
assert_eq "$(json_get "$OUT" '"pcrs-changed" in j["volumes"][0]["tokens"][0]')" False "no recorded PCR values to blame"
UNLOCKD_PCR_SIGNATURE=$TEST_DIR/sig.json unlockd_opens "$SIGNED"
assert_no_tpm_leaks "refused signed token with PCR 7"

say "unlockctl enroll --tpm2-device-key (sealed offline by unlockd) → systemd 257's systemd-cryptsetup unseals it"
# sd_attach IMAGE: systemd-cryptsetup attaches IMAGE with its own TPM2 code
# (no token plugin), in the tree; prints its debug log. Where device-mapper
# is missing, the activation fails after the keyslot took the key: the
# log then shows the unsealing done and no wrong-key error.
sd_attach() {  # IMAGE [online]: online = a token sealed on the TPM, no import
        local name=sd257-offline-$$ rc=0
        SYSTEMD_LOG_LEVEL=debug SYSTEMD_CRYPTSETUP_USE_TOKEN_MODULE=0 \
                sd257 /usr/lib/systemd/systemd-cryptsetup attach "$name" "$1" - "tpm2-device=$TCTI,headless=1" \
                >"$TEST_DIR/attach.log" 2>&1 || rc=$?
        [ "$rc" = 0 ] && sd257 /usr/lib/systemd/systemd-cryptsetup detach "$name" >/dev/null 2>&1
        tpm2_flushcontext -t >/dev/null 2>&1 || true
        tpm2_flushcontext -l >/dev/null 2>&1 || true
        grep -q "Completed TPM2 key unsealing" "$TEST_DIR/attach.log" \
                || { cat "$TEST_DIR/attach.log" >&2; fail "systemd-cryptsetup did not unseal $1"; }
        [ "${2:-}" = online ] || grep -q "Importing key into TPM" "$TEST_DIR/attach.log" \
                || fail "systemd-cryptsetup did not import $1"
        # Activated, or the keyslot took the key and only device-mapper
        # is missing (a wrong key fails with "Operation not permitted").
        if [ "$rc" != 0 ] && ! { grep -q "Cannot initialize device-mapper" "$TEST_DIR/attach.log" &&
                                 grep -q "TPM2 acquired key: Operation not supported" "$TEST_DIR/attach.log"; }; then
                cat "$TEST_DIR/attach.log" >&2
                fail "the key systemd-cryptsetup unsealed from $1 does not open its keyslot"
        fi
}
say "unlockctl enroll --tpm2 --pcrs=7 (sealed on the TPM, under systemd's SRK) → systemd 257's systemd-cryptsetup unseals it"
IMG=$(new_image unlockd-online)
"$UNLOCKCTL" enroll --tpm2 --pcrs=7 --tcti="$TCTI" --unlock-key-file="$TEST_DIR/pass" "$IMG" 2>/dev/null \
        || fail "unlockctl enroll --tpm2"
assert_eq "$(json_get "$(token "$IMG")" '"tpm2_srk" in j')" True "unlockd's token under the SRK"
sd_attach "$IMG" online
unlockd_opens "$IMG"
# The PCR 7 the TPM has now, as the prediction; first the SRK systemd made,
# then one of the other algorithm (as a hypervisor would make it).
tpm2_pcrread -Q sha256:7 -o "$TEST_DIR/pcr7"
PCR7=$(od -An -v -tx1 "$TEST_DIR/pcr7" | tr -d ' \n')
SD_ALG=$(od -An -v -tx1 -j2 -N2 "$TEST_DIR/srk.pub" | tr -d ' \n')  # TPMT_PUBLIC.type
case $SD_ALG in 0001) SD_ALG=rsa OTHER=ecc OTHER_G=ecc256:null:aes128cfb ;;
        0023) SD_ALG=ecc OTHER=rsa OTHER_G=rsa2048:null:aes128cfb ;;
        *) fail "systemd's SRK is of an unknown type: $SD_ALG" ;; esac
for alg in "$SD_ALG" "$OTHER"; do
        SRKPUB=$TEST_DIR/srk.pub
        if [ "$alg" = "$OTHER" ]; then
                tpm2_evictcontrol -Q -C o -c 0x81000001 >/dev/null
                tpm2_createprimary -Q -C o -G "$OTHER_G" -c "$TEST_DIR/other.ctx" \
                        -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|decrypt|noda'
                tpm2_evictcontrol -Q -C o -c "$TEST_DIR/other.ctx" 0x81000001 >/dev/null
                tpm2_flushcontext -t >/dev/null 2>&1 || true
                SRKPUB=$TEST_DIR/srk-other.pub
                tpm2_readpublic -Q -c 0x81000001 -f tss -o "$SRKPUB"
        fi
        say "  $alg SRK"
        IMG=$(new_image "unlockd-offline-$alg")
        "$UNLOCKCTL" enroll --tcti="swtpm:path=$TEST_DIR/no-tpm" --unlock-key-file="$TEST_DIR/pass" \
                --tpm2-device-key="$SRKPUB" --pcrs="7:sha256=$PCR7" "$IMG" 2>/dev/null || fail "unlockctl enroll --tpm2-device-key"
        TOKEN=$(token "$IMG")
        assert_eq "$(blob_parts "$TOKEN")" 3 "parts of unlockd's offline tpm2-blob"
        assert_eq "$(json_get "$TOKEN" 'j["tpm2-primary-alg"]')" "$alg" "tpm2-primary-alg of unlockd's offline token"
        sd_attach "$IMG"
        unlockd_opens "$IMG"
done
echo PASS
