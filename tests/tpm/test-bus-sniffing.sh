#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The TPM bus can be sniffed: record every byte between unlockd/unlockctl and
# the TPM (libtss2-tcti-pcap) during enroll, unlock (with and without a
# PIN) and re-seal, and assert that the sealed secret, the keyslot
# passphrase derived from it, the PIN and the volume passphrase appear
# nowhere. A control capture of a tpm2-tools unseal without parameter
# encryption shows that the check does find a secret sent in clear.
source "$(dirname "$0")/../lib.sh"
need swtpm cryptsetup python3 tpm2_unseal
[ -e /usr/lib/x86_64-linux-gnu/libtss2-tcti-pcap.so.0 ] || ls /usr/lib/*/libtss2-tcti-pcap.so.0 >/dev/null 2>&1 \
        || skip "libtss2-tcti-pcap0 is not installed"
# A -Dstatic=true build links the device, swtpm and mssim TCTIs alone: the
# pcap TCTI, which loads the TCTI it wraps with dlopen(), is not one of them.
case $(ldd "$UNLOCKD_EXE" 2>&1) in
*'not a dynamic executable'*|*'statically linked'*) skip "a static unlockd has no pcap TCTI to record the bus with" ;;
esac

start_swtpm
PCAP=$TEST_DIR/bus.pcap
PTCTI="pcap:$TCTI"
printf 'sniffable passphrase' > "$TEST_DIR/pass"

# contains FILE NEEDLE-HEX: the bytes appear in the capture.
contains() { python3 -c 'import sys; sys.exit(0 if bytes.fromhex(sys.argv[2]) in open(sys.argv[1],"rb").read() else 1)' "$1" "$2"; }
hex() { printf '%s' "$1" | xxd -p | tr -d '\n'; }

# The keyslot passphrase is base64 of the secret; the secret itself is its decoding.
secret_hex_of() { printf '%s' "$1" | base64 -d | xxd -p | tr -d '\n'; }

assert_clean() {  # PCAP CONTEXT SECRET-HEX...
        local pcap=$1 ctx=$2; shift 2
        [ -s "$pcap" ] || fail "$ctx: nothing was captured"
        for h in "$@"; do
                contains "$pcap" "$h" && fail "$ctx: a secret ($h) crossed the TPM bus in clear"
        done
        return 0
}

say "enroll (with a PIN) under capture"
IMG=$TEST_DIR/disk.img
make_luks "$IMG" "sniffable passphrase"
rm -f "$PCAP"
NEWPIN=24680 TCTI_PCAP_FILE=$PCAP "$UNLOCKCTL" enroll --tpm2 --pin --pcrs=7 --unlock-key-file="$TEST_DIR/pass" --tcti="$PTCTI" "$IMG" 2>/dev/null
# Recover the keyslot passphrase with a tpm2-tools chain (not captured) to know what to look for.
TOKEN=$(cryptsetup token export --token-id 0 "$IMG")
python3 - "$TOKEN" "$TEST_DIR" <<'PY'
import base64, json, struct, sys
t = json.loads(sys.argv[1]); d = sys.argv[2]
b = base64.b64decode(t["tpm2-blob"]); n = struct.unpack(">H", b[:2])[0]
open(d + "/priv", "wb").write(b[:2 + n]); open(d + "/pub", "wb").write(b[2 + n:])
PY
tpm2_createprimary -Q -C o -g sha256 -G ecc256:aes128cfb \
        -a 'restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth' -c "$TEST_DIR/primary.ctx"
tpm2_flushcontext -t
tpm2_load -Q -C "$TEST_DIR/primary.ctx" -u "$TEST_DIR/pub" -r "$TEST_DIR/priv" -c "$TEST_DIR/sealed.ctx"
tpm2_flushcontext -t
# Control: an unseal WITHOUT parameter encryption, captured: the secret shows.
CONTROL=$TEST_DIR/control.pcap
tpm2_startauthsession -Q --policy-session -S "$TEST_DIR/s.ctx"
tpm2_policypcr -Q -S "$TEST_DIR/s.ctx" -l sha256:7
tpm2_policyauthvalue -Q -S "$TEST_DIR/s.ctx"
AUTH=$(printf '24680' | sha256sum | cut -d' ' -f1)
TCTI_PCAP_FILE=$CONTROL TPM2TOOLS_TCTI="$PTCTI" tpm2_unseal -Q -p "session:$TEST_DIR/s.ctx+hex:$AUTH" -c "$TEST_DIR/sealed.ctx" -o "$TEST_DIR/secret"
tpm2_flushcontext "$TEST_DIR/s.ctx"; tpm2_flushcontext -t
SECRET=$(xxd -p "$TEST_DIR/secret" | tr -d '\n')
PASS=$(base64 -w0 "$TEST_DIR/secret")
opens_with "$IMG" "$PASS" || fail "the control chain did not recover the keyslot passphrase"
contains "$CONTROL" "$SECRET" || fail "control: the unencrypted unseal does not show the secret — the check would find nothing"
assert_clean "$PCAP" "enroll" "$SECRET" "$(hex "$PASS")" "$(hex 24680)" "$(hex 'sniffable passphrase')"

say "unlock with the PIN under capture"
rm -f "$PCAP"
PIN=24680 TCTI_PCAP_FILE=$PCAP "$UNLOCKD" --test --no-prompt --tcti="$PTCTI" "$IMG" 2>/dev/null || fail "unlock failed"
assert_clean "$PCAP" "unlock (PIN)" "$SECRET" "$(hex "$PASS")" "$(hex 24680)" "$(hex 'sniffable passphrase')"
# The PIN's auth value does not cross either (it keys the HMAC only).
assert_clean "$PCAP" "unlock (PIN auth value)" "$AUTH"

say "unlock without a PIN, and the re-seal, under capture"
IMG2=$TEST_DIR/nopin.img
make_luks "$IMG2" "sniffable passphrase"
KEY=$("$UNLOCKCTL" enroll --tpm2 --pcrs=7 --recovery-key --unlock-key-file="$TEST_DIR/pass" --tcti="$TCTI" "$IMG2" 2>/dev/null)
tpm2_pcrextend "7:sha256=$(printf '%064x' 5)"
printf '%s\n' "$KEY" > "$TEST_DIR/typed"
rm -f "$PCAP"
TCTI_PCAP_FILE=$PCAP "$SOURCE_DIR/tools/pty-drive" --expect 'passphrase: ' --send-file "$TEST_DIR/typed" -- \
        "$UNLOCKD" --test --console=/dev/tty --ask-password=no --state-dir="$TEST_DIR/state" --tcti="$PTCTI" "$IMG2" >/dev/null
UUID=$(cryptsetup luksUUID "$IMG2")
RESEAL_SECRET=$(keyctl pipe "$(keyctl search @u user "unlockd:reseal:$UUID")" | xxd -p | tr -d '\n')
[ ${#RESEAL_SECRET} = 64 ] || fail "no re-seal secret in the keyring"
assert_clean "$PCAP" "recovery unlock" "$(hex "$KEY")" "$RESEAL_SECRET"
rm -f "$PCAP"
TCTI_PCAP_FILE=$PCAP "$UNLOCKCTL" reseal --state-dir="$TEST_DIR/state" --tcti="$PTCTI" 2>/dev/null || fail "reseal failed"
RESEAL_PASS=$(printf '%s' "$RESEAL_SECRET" | xxd -r -p | base64 -w0)
assert_clean "$PCAP" "re-seal (seal and verifying unseal)" "$RESEAL_SECRET" "$(hex "$RESEAL_PASS")"
rm -f "$PCAP"
TCTI_PCAP_FILE=$PCAP "$UNLOCKD" --test --no-prompt --tcti="$PTCTI" "$IMG2" 2>/dev/null || fail "TPM unlock after reseal failed"
assert_clean "$PCAP" "unlock after re-seal" "$RESEAL_SECRET" "$(hex "$RESEAL_PASS")"


# The fewest commands (bench/tpm-commands.py counts them): an unlock under
# the legacy primary is CreatePrimary, Load, StartAuthSession, PolicyPCR,
# Unseal and two FlushContext (object, primary; the TPM flushes the policy
# session after Unseal); under a persistent SRK no CreatePrimary and one
# FlushContext. No PolicyGetDigest: the policy hash is checked on the host.
commands() { python3 "$SOURCE_DIR/bench/tpm-commands.py" "$1"; }
say "TPM commands per unlock: at most 7 under the legacy primary"
N=$(commands "$PCAP")
assert_eq "$(json_get "$N" 'j["total"]')" 7 "commands of an unlock under the legacy primary ($N)"
assert_eq "$(json_get "$N" 'j["commands"].get("PolicyGetDigest", 0)')" 0 "PolicyGetDigest round trips"
say "TPM commands per unlock: at most 5 under a persistent SRK"
tpm2_createprimary -Q -C o -g sha256 -G ecc256:aes128cfb \
        -a 'restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda' -c "$TEST_DIR/srk.ctx"
tpm2_evictcontrol -Q -C o -c "$TEST_DIR/srk.ctx" 0x81000001
tpm2_flushcontext -t
IMG3=$TEST_DIR/srk.img
make_luks "$IMG3" "sniffable passphrase"
"$UNLOCKCTL" enroll --tpm2 --pcrs=7 --unlock-key-file="$TEST_DIR/pass" --tcti="$TCTI" "$IMG3" 2>/dev/null
assert_eq "$(json_get "$(cryptsetup token export --token-id 0 "$IMG3")" '"tpm2_srk" in j')" True "token sealed under the SRK"
rm -f "$PCAP"
TCTI_PCAP_FILE=$PCAP "$UNLOCKD" --test --no-prompt --tcti="$PTCTI" "$IMG3" 2>/dev/null || fail "TPM unlock under the SRK failed"
assert_clean "$PCAP" "unlock under the SRK" "$(hex 'sniffable passphrase')"
N=$(commands "$PCAP")
assert_eq "$(json_get "$N" 'j["total"]')" 5 "commands of an unlock under a persistent SRK ($N)"

echo PASS
