#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Interoperability with systemd's TPM2 tokens, both directions:
#  - volumes enrolled by systemd-cryptenroll (PCR 7, PCR 0+7, with a PIN)
#    open with unlockd --test;
#  - a volume enrolled by unlockctl is unsealed by a tpm2-tools chain doing
#    what systemd-cryptsetup does, and that passphrase opens the keyslot;
#  - an RSA-primary token and a token sealed under a persistent SRK (with
#    tpm2_srk), both built with tpm2-tools, open with unlockd;
#  - a signed PCR policy (--tpm2-public-key, with PCR 7) opens with the
#    signature systemd-measure sign (252) made for PCR 11 at enter-initrd.
source "$(dirname "$0")/../lib.sh"
need swtpm systemd-cryptenroll tpm2_createprimary tpm2_unseal cryptsetup python3 openssl unshare

start_swtpm
printf 'interop pass' > "$TEST_DIR/pass"

# systemd-cryptenroll v252 leaves a session loaded on a TPM without a
# resource manager (swtpm); flush what it left so that the leak checks
# below see only unlockd's own handles.
sd_enroll() {
        systemd-cryptenroll "$@" 2>/dev/null
        tpm2_flushcontext -l >/dev/null 2>&1 || true
        tpm2_flushcontext -t >/dev/null 2>&1 || true
        assert_no_tpm_leaks "flushing after systemd-cryptenroll"
}

for pcrs in 7 0+7; do
        say "systemd-cryptenroll --tpm2-pcrs=$pcrs → unlockd"
        IMG=$TEST_DIR/sd-$pcrs.img
        make_luks "$IMG" "interop pass"
        PASSWORD="interop pass" sd_enroll --tpm2-device="$TCTI" --tpm2-pcrs="$pcrs" "$IMG"
        cryptsetup token export --token-id 0 "$IMG" | grep -q '"systemd-tpm2"' || fail "systemd-cryptenroll wrote no token"
        unlockd_opens "$IMG"
done

say "no PCRs (--tpm2-pcrs= / --pcrs=): systemd's token opens with unlockd, and unlockd's with the tools chain"
IMG=$TEST_DIR/sd-none.img
make_luks "$IMG" "interop pass"
PASSWORD="interop pass" sd_enroll --tpm2-device="$TCTI" --tpm2-pcrs= "$IMG"
assert_eq "$(json_get "$(cryptsetup token export --token-id 0 "$IMG")" 'j["tpm2-policy-hash"]')" "$(printf '0%.0s' $(seq 64))" "systemd's empty-PCR policy"
unlockd_opens "$IMG"

say "systemd-cryptenroll --tpm2-with-pin → unlockd with \$PIN"
IMG=$TEST_DIR/sd-pin.img
make_luks "$IMG" "interop pass"
PASSWORD="interop pass" NEWPIN=2468 sd_enroll --tpm2-device="$TCTI" --tpm2-pcrs=7 --tpm2-with-pin=yes "$IMG"
unlockd_opens "$IMG" PIN=2468
OUT=$(PIN=1357 "$UNLOCKD" --test --no-prompt --json --tcti="$TCTI" "$IMG" 2>/dev/null) && fail "wrong PIN opened a systemd PIN token"
assert_eq "$(json_get "$OUT" 'j["volumes"][0]["tokens"][0]["result"]')" pin-wrong "wrong PIN on systemd token"
tpm2_dictionarylockout --clear-lockout >/dev/null

say "systemd-cryptenroll --tpm2-public-key --tpm2-pcrs=7, signed by systemd-measure → unlockd"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$TEST_DIR/policy.key" 2>/dev/null
openssl pkey -in "$TEST_DIR/policy.key" -pubout -out "$TEST_DIR/policy.pem"
IMG=$TEST_DIR/sd-signed.img
make_luks "$IMG" "interop pass"
PASSWORD="interop pass" sd_enroll --tpm2-device="$TCTI" --tpm2-public-key="$TEST_DIR/policy.pem" \
        --tpm2-public-key-pcrs=11 --tpm2-pcrs=7 "$IMG"
assert_eq "$(json_get "$(cryptsetup token export --token-id 0 "$IMG")" 'j["tpm2_pubkey_pcrs"]')" "[11]" "a signed-policy token"
# systemd-measure --current reads PCR 11 from sysfs: the swtpm's, in a
# private mount namespace.
tpm2_pcrread -Q sha256:11 -o "$TEST_DIR/pcr11"
unshare --mount --propagation private -- bash -c '
        mount -t tmpfs tmpfs /sys
        mkdir -p /sys/class/tpm/tpm0/pcr-sha256
        od -An -v -tx1 "$1" | tr -d " \n" | tr a-f A-F > /sys/class/tpm/tpm0/pcr-sha256/11
        exec /usr/lib/systemd/systemd-measure sign --tpm2-device="$2" --current --bank=sha256 --phase=enter-initrd \
                --private-key="$3/policy.key" --public-key="$3/policy.pem" -j' sd "$TEST_DIR/pcr11" "$TCTI" "$TEST_DIR" \
        > "$TEST_DIR/sig.json" || fail "systemd-measure sign"
tpm2_flushcontext -t >/dev/null 2>&1 || true
OUT=$(UNLOCKD_PCR_SIGNATURE=$TEST_DIR/sig.json "$UNLOCKD" --test --no-prompt --json --tcti="$TCTI" "$IMG" 2>/dev/null) \
        && fail "the signed token opened before PCR 11 reached enter-initrd"
assert_eq "$(json_get "$OUT" 'j["volumes"][0]["tokens"][0]["result"]')" signature-missing "the signed token before enter-initrd"
tpm2_pcrextend "11:sha256=$(printf enter-initrd | sha256sum | cut -c1-64)"
UNLOCKD_PCR_SIGNATURE=$TEST_DIR/sig.json unlockd_opens "$IMG"

say "systemd-cryptenroll token, PCR 7 extended → unlockd refuses with pcr-mismatch"
IMG=$TEST_DIR/sd-7.img
tpm2_pcrextend "7:sha256=$(printf '%064x' 1)"
OUT=$("$UNLOCKD" --test --no-prompt --json --tcti="$TCTI" "$IMG" 2>/dev/null) && fail "opened after PCR change"
assert_eq "$(json_get "$OUT" 'j["volumes"][0]["tokens"][0]["result"]')" pcr-mismatch "systemd token after PCR change"
assert_no_tpm_leaks "refused systemd token"

# The tpm2-tools chain that does what systemd-cryptsetup does with a
# systemd-tpm2 token (legacy primary, PolicyPCR [+ PolicyAuthValue], Unseal).
# Prints the keyslot passphrase: base64 of the unsealed secret.
tools_unseal() {  # TOKEN-JSON
        local d=$TEST_DIR/chain
        rm -rf "$d"; mkdir -p "$d"
        python3 - "$1" "$d" <<'PY'
import base64, json, struct, sys
t = json.loads(sys.argv[1]); d = sys.argv[2]
blob = base64.b64decode(t["tpm2-blob"])
n = struct.unpack(">H", blob[:2])[0]
open(d + "/priv", "wb").write(blob[:2 + n])
open(d + "/pub", "wb").write(blob[2 + n:])
bank = t.get("tpm2-pcr-bank", "sha256")
open(d + "/pcrs", "w").write(bank + ":" + ",".join(str(p) for p in t["tpm2-pcrs"]))
open(d + "/alg", "w").write("ecc256:aes128cfb" if t.get("tpm2-primary-alg", "ecc") == "ecc" else "rsa2048:aes128cfb")
open(d + "/srk", "wb").write(base64.b64decode(t["tpm2_srk"]) if "tpm2_srk" in t else b"")
PY
        if [ -s "$d/srk" ]; then
                PARENT=$d/srk.tr; cp "$d/srk" "$PARENT"
        else
                tpm2_createprimary -Q -C o -g sha256 -G "$(cat "$d/alg")" \
                        -a 'restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth' -c "$d/primary.ctx"
                PARENT=$d/primary.ctx
        fi
        # swtpm has no resource manager: tpm2-tools leave objects loaded,
        # so flush transients after each step (the .ctx files keep them).
        tpm2_flushcontext -t
        tpm2_load -Q -C "$PARENT" -u "$d/pub" -r "$d/priv" -c "$d/sealed.ctx"
        tpm2_flushcontext -t
        tpm2_startauthsession -Q --policy-session -S "$d/session.ctx"
        # No PCRs: no PolicyPCR (systemd's policy is then all zeros).
        grep -q ':$' "$d/pcrs" || tpm2_policypcr -Q -S "$d/session.ctx" -l "$(cat "$d/pcrs")"
        tpm2_unseal -Q -p session:"$d/session.ctx" -c "$d/sealed.ctx" -o "$d/secret"
        tpm2_flushcontext "$d/session.ctx"
        tpm2_flushcontext -t
        base64 -w0 "$d/secret"
}

say "unlockctl enroll → tpm2-tools chain unseals → that passphrase opens the keyslot"
IMG=$TEST_DIR/ours.img
make_luks "$IMG" "interop pass"
"$UNLOCKCTL" enroll --tpm2 --pcrs=0+7 --unlock-key-file="$TEST_DIR/pass" --tcti="$TCTI" "$IMG"
TOKEN=$(cryptsetup token export --token-id 0 "$IMG")
PASS=$(tools_unseal "$TOKEN")
assert_eq "${#PASS}" 44 "passphrase length (base64 of 32 bytes)"
opens_with "$IMG" "$PASS" || fail "the tpm2-tools-unsealed passphrase does not open the keyslot"
SLOT=$(json_get "$TOKEN" 'j["keyslots"][0]')
printf '%s' "$PASS" | cryptsetup open --test-passphrase --key-slot "$SLOT" --key-file - "$IMG" \
        || fail "the passphrase does not open the token's own keyslot $SLOT"
assert_no_tpm_leaks "tpm2-tools chain"

say "unlockctl enroll with no PCRs → the tools chain unseals it"
IMG=$TEST_DIR/ours-none.img
make_luks "$IMG" "interop pass"
"$UNLOCKCTL" enroll --tpm2 --no-srk --pcrs= --unlock-key-file="$TEST_DIR/pass" --tcti="$TCTI" "$IMG"
TOKEN=$(cryptsetup token export --token-id 0 "$IMG")
assert_eq "$(json_get "$TOKEN" 'j["tpm2-policy-hash"]')" "$(printf '0%.0s' $(seq 64))" "unlockd's empty-PCR policy"
unlockd_opens "$IMG"
opens_with "$IMG" "$(tools_unseal "$TOKEN")" || fail "the tools chain did not unseal unlockd's empty-PCR token"

# Builds a systemd-tpm2 token with tpm2-tools alone: seal 32 random bytes
# under PARENT (a context file) to PCR 7, add the keyslot, import the token.
# With $TOOLS_POLICY (a file holding a policy digest), sealed to that
# instead; $TOOLS_EXTRA (a JSON object) is merged into the token.
tools_enroll() {  # IMAGE PARENT-CTX PRIMARY-ALG [SRK-TR]
        local img=$1 parent=$2 alg=$3 srk=${4:-} d=$TEST_DIR/mk
        rm -rf "$d"; mkdir -p "$d"
        head -c 32 /dev/urandom > "$d/secret"
        if [ -n "${TOOLS_POLICY:-}" ]; then
                cp "$TOOLS_POLICY" "$d/policy"
        else
                tpm2_startauthsession -Q -S "$d/trial.ctx"
                tpm2_policypcr -Q -S "$d/trial.ctx" -l sha256:7 -L "$d/policy"
                tpm2_flushcontext "$d/trial.ctx"
        fi
        tpm2_create -Q -C "$parent" -g sha256 -a 'fixedtpm|fixedparent|noda' -L "$d/policy" \
                -i "$d/secret" -u "$d/pub" -r "$d/priv"
        tpm2_flushcontext -t
        base64 -w0 "$d/secret" > "$d/pass"
        cryptsetup luksAddKey --batch-mode --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
                --key-file "$TEST_DIR/pass" "$img" "$d/pass"
        local slot
        slot=$(cryptsetup luksDump "$img" | awk '/^Keyslots:/{k=1} k&&/^  [0-9]+: luks2/{s=$1} /^Tokens:/{k=0} END{sub(":","",s); print s}')
        python3 - "$d" "$slot" "$alg" "$srk" "${TOOLS_EXTRA:-{\}}" > "$d/token.json" <<'PY'
import base64, json, sys
d, slot, alg, srk, extra = sys.argv[1:6]
blob = open(d + "/priv", "rb").read() + open(d + "/pub", "rb").read()
t = {"type": "systemd-tpm2", "keyslots": [slot], "tpm2-blob": base64.b64encode(blob).decode(),
     "tpm2-pcrs": [7], "tpm2-pcr-bank": "sha256", "tpm2-primary-alg": alg,
     "tpm2-policy-hash": open(d + "/policy", "rb").read().hex(), "tpm2-pin": False}
if srk:
    t["tpm2_srk"] = base64.b64encode(open(srk, "rb").read()).decode()
t.update(json.loads(extra))
print(json.dumps(t))
PY
        cryptsetup token import --json-file "$d/token.json" "$img"
}

say "RSA legacy primary token (built with tpm2-tools) → unlockd"
IMG=$TEST_DIR/rsa.img
make_luks "$IMG" "interop pass"
tpm2_createprimary -Q -C o -g sha256 -G rsa2048:aes128cfb \
        -a 'restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth' -c "$TEST_DIR/rsa.ctx"
tpm2_flushcontext -t
tools_enroll "$IMG" "$TEST_DIR/rsa.ctx" rsa
unlockd_opens "$IMG"

say "token sealed under a persistent SRK at 0x81000001 (tpm2_srk) → unlockd"
tpm2_createprimary -Q -C o -g sha256 -G ecc256:aes128cfb \
        -a 'restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda' -c "$TEST_DIR/srk.ctx"
tpm2_evictcontrol -Q -C o -c "$TEST_DIR/srk.ctx" 0x81000001
tpm2_flushcontext -t
tpm2_readpublic -Q -c 0x81000001 -t "$TEST_DIR/srk.tr"
IMG=$TEST_DIR/srk.img
make_luks "$IMG" "interop pass"
tools_enroll "$IMG" "$TEST_DIR/srk.tr" ecc "$TEST_DIR/srk.tr"
unlockd_opens "$IMG"

say "signed PCR policy whose key name has the RSA exponent as 0 (some systemd versions), built with tpm2-tools → unlockd"
# PolicyAuthorize(name of the key with exponent 0) ‖ PolicyPCR(7 as now),
# the sealed object's policy; the signature of sig.json (made for the key's
# PCR 11 policy, whatever the exponent's form) opens it.
tpm2_pcrread -Q sha256:7 -o "$TEST_DIR/pcr7"
python3 - "$TEST_DIR/policy.pem" "$TEST_DIR/pcr7" "$TEST_DIR/exp0.policy" <<'PY'
import hashlib, struct, subprocess, sys
H = lambda b: hashlib.sha256(b).digest()
mod = subprocess.run(["openssl", "rsa", "-pubin", "-in", sys.argv[1], "-noout", "-modulus"],
                     capture_output=True, check=True).stdout.decode().strip().split("=")[1]
n = bytes.fromhex(mod)
# TPMT_PUBLIC: RSA, SHA256, decrypt|sign|userWithAuth, no policy, no symmetric, no scheme, 2048 bits, exponent 0
pub = struct.pack(">HHIH", 0x0001, 0x000B, 0x00060040, 0) + struct.pack(">HHHI", 0x0010, 0x0010, 8 * len(n), 0) \
      + struct.pack(">H", len(n)) + n
d = H(H(bytes(32) + struct.pack(">I", 0x16A) + struct.pack(">H", 0x000B) + H(pub)))
sel = struct.pack(">IHB", 1, 0x000B, 3) + bytes([0x80, 0, 0])
d = H(d + struct.pack(">I", 0x17F) + sel + H(open(sys.argv[2], "rb").read()))
open(sys.argv[3], "wb").write(d)
PY
IMG=$TEST_DIR/exp0.img
make_luks "$IMG" "interop pass"
TOOLS_POLICY=$TEST_DIR/exp0.policy \
TOOLS_EXTRA="{\"tpm2_pubkey\":\"$(base64 -w0 "$TEST_DIR/policy.pem")\",\"tpm2_pubkey_pcrs\":[11]}" \
        tools_enroll "$IMG" "$TEST_DIR/srk.tr" ecc "$TEST_DIR/srk.tr"
UNLOCKD_PCR_SIGNATURE=$TEST_DIR/sig.json unlockd_opens "$IMG"

say "PIN token with tpm2_salt (newer systemd's PIN hashing), built with tpm2-tools → unlockd"
# authValue = SHA256(base64(PBKDF2-HMAC-SHA256(pin, salt, 10000, 32))).
IMG=$TEST_DIR/salted.img
make_luks "$IMG" "interop pass"
d=$TEST_DIR/salted; mkdir -p "$d"
head -c 32 /dev/urandom > "$d/salt"
AUTH=$(python3 -c 'import base64,hashlib,sys; s=open(sys.argv[1],"rb").read(); k=hashlib.pbkdf2_hmac("sha256",b"97531",s,10000,32); print(hashlib.sha256(base64.b64encode(k)).hexdigest())' "$d/salt")
head -c 32 /dev/urandom > "$d/secret"
tpm2_startauthsession -Q -S "$d/trial.ctx"
tpm2_policypcr -Q -S "$d/trial.ctx" -l sha256:7 -L "$d/policy"
tpm2_policyauthvalue -Q -S "$d/trial.ctx" -L "$d/policy"
tpm2_flushcontext "$d/trial.ctx"
tpm2_createprimary -Q -C o -g sha256 -G ecc256:aes128cfb \
        -a 'restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth' -c "$d/primary.ctx"
tpm2_flushcontext -t
tpm2_create -Q -C "$d/primary.ctx" -g sha256 -a 'fixedtpm|fixedparent' -L "$d/policy" -p "hex:$AUTH" \
        -i "$d/secret" -u "$d/pub" -r "$d/priv"
tpm2_flushcontext -t
base64 -w0 "$d/secret" > "$d/pass"
cryptsetup luksAddKey --batch-mode --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file "$TEST_DIR/pass" "$IMG" "$d/pass"
python3 - "$d" > "$d/token.json" <<'PY'
import base64, json, sys
d = sys.argv[1]
blob = open(d + "/priv", "rb").read() + open(d + "/pub", "rb").read()
print(json.dumps({"type": "systemd-tpm2", "keyslots": ["1"], "tpm2-blob": base64.b64encode(blob).decode(),
  "tpm2-pcrs": [7], "tpm2-pcr-bank": "sha256", "tpm2-primary-alg": "ecc",
  "tpm2-policy-hash": open(d + "/policy", "rb").read().hex(), "tpm2-pin": True,
  "tpm2_salt": base64.b64encode(open(d + "/salt", "rb").read()).decode()}))
PY
cryptsetup token import --json-file "$d/token.json" "$IMG"
unlockd_opens "$IMG" PIN=97531
OUT=$(PIN=97530 "$UNLOCKD" --test --no-prompt --json --tcti="$TCTI" "$IMG" 2>/dev/null) && fail "a wrong PIN opened the salted token"
assert_eq "$(json_get "$OUT" 'j["volumes"][0]["tokens"][0]["result"]')" pin-wrong "wrong PIN on the salted token"
tpm2_dictionarylockout --clear-lockout >/dev/null

say "with the SRK present, unlockctl seals under it and records tpm2_srk; both sides unseal"
IMG=$TEST_DIR/ours-srk.img
make_luks "$IMG" "interop pass"
"$UNLOCKCTL" enroll --tpm2 --pcrs=7 --unlock-key-file="$TEST_DIR/pass" --tcti="$TCTI" "$IMG"
TOKEN=$(cryptsetup token export --token-id 0 "$IMG")
assert_eq "$(json_get "$TOKEN" '"tpm2_srk" in j')" True "tpm2_srk recorded"
unlockd_opens "$IMG"
PASS=$(tools_unseal "$TOKEN")
opens_with "$IMG" "$PASS" || fail "tpm2-tools could not unseal the SRK token"

say "--no-srk seals under the legacy primary even with an SRK present"
IMG=$TEST_DIR/ours-nosrk.img
make_luks "$IMG" "interop pass"
"$UNLOCKCTL" enroll --tpm2 --no-srk --pcrs=7 --unlock-key-file="$TEST_DIR/pass" --tcti="$TCTI" "$IMG"
TOKEN=$(cryptsetup token export --token-id 0 "$IMG")
assert_eq "$(json_get "$TOKEN" '"tpm2_srk" in j')" False "no tpm2_srk with --no-srk"
unlockd_opens "$IMG"

echo PASS
