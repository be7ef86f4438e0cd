#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Failure containment on the unlock path:
#  - the TPM goes away mid-unlock (swtpm killed while unlockd waits for the
#    PIN, with its TPM context open): the token says so, and the recovery
#    prompt still opens the volume;
#  - hostile tokens in a real LUKS2 header: each is skipped with a message
#    naming the fault, no crash, and the prompt still works;
#  - a TPM that never answers: --watchdog= (the bound where no service
#    manager gives one, as in initramfs-tools) ends unlockd in time; a
#    device that is slow to appear does not.
source "$(dirname "$0")/../lib.sh"
need swtpm cryptsetup python3
PTY_DRIVE=$SOURCE_DIR/tools/pty-drive

start_swtpm
printf 'fault pass' > "$TEST_DIR/pass"

say "the TPM disappears while unlockd waits for the PIN"
IMG=$TEST_DIR/pin.img
make_luks "$IMG" "fault pass"
NEWPIN=1357 "$UNLOCKCTL" enroll --tpm2 --pin --pcrs=7 --unlock-key-file="$TEST_DIR/pass" --tcti="$TCTI" "$IMG" 2>/dev/null
# swtpm is killed as soon as the PIN prompt is shown, then the PIN is typed.
"$PTY_DRIVE" --timeout 30 --expect 'TPM2 PIN: ' --run "kill -KILL $SWTPM_PID; sleep 0.3" --send '1357\r' \
        --expect 'Recovery key or passphrase: ' --send 'fault pass\r' -- \
        "$UNLOCKD" --test --console=/dev/tty --ask-password=no --no-reseal --state-dir="$TEST_DIR/state" --tcti="$TCTI" "$IMG" \
        || fail "the unlock did not survive the TPM going away"
S=$(cat "$TEST_DIR/state/state.json")
assert_eq "$(json_get "$S" 'j["volumes"][0]["method"]')" passphrase "opened by the passphrase after the TPM went away"
assert_eq "$(json_get "$S" 'j["volumes"][0]["tokens"][0]["result"] in ("no-tpm", "failed")')" True "token outcome after the TPM went away ($(json_get "$S" 'j["volumes"][0]["tokens"][0]'))"
SWTPM_PID=
start_swtpm "$TEST_DIR/tpm2"

say "hostile tokens in a real header: each skipped with its fault, the prompt still works"
IMG=$TEST_DIR/hostile.img
make_luks "$IMG" "fault pass"
"$UNLOCKCTL" enroll --tpm2 --pcrs=7 --unlock-key-file="$TEST_DIR/pass" --tcti="$TCTI" "$IMG" 2>/dev/null
GOOD=$(cryptsetup token export --token-id 0 "$IMG")
cryptsetup token remove --token-id 0 "$IMG"
python3 - "$GOOD" "$TEST_DIR/hostile" <<'PY'
import json, os, sys
g = json.loads(sys.argv[1]); d = sys.argv[2]; os.makedirs(d)
def put(name, **kw):
    t = dict(g); t.update(kw)
    for k, v in list(t.items()):
        if v is None:
            del t[k]
    open(f"{d}/{name}.json", "w").write(json.dumps(t))
put("bad-base64", **{"tpm2-blob": "%%%not base64%%%"})
put("truncated-blob", **{"tpm2-blob": g["tpm2-blob"][:40]})
put("pcr-out-of-range", **{"tpm2-pcrs": [7, 99]})
put("huge-pcr-array", **{"tpm2-pcrs": list(range(24)) * 50})
put("unknown-bank", **{"tpm2-pcr-bank": "sm3_256"})
put("pcrs-wrong-type", **{"tpm2-pcrs": "7"})
put("hash-wrong-size", **{"tpm2-policy-hash": "00"})
put("missing-blob", **{"tpm2-blob": None})
put("signed-policy", **{"tpm2_pubkey": "LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0=", "tpm2_pubkey_pcrs": [11]})
PY
for f in "$TEST_DIR"/hostile/*.json; do
        cryptsetup token import --disable-external-tokens --json-file "$f" "$IMG" 2>/dev/null || echo "(libcryptsetup itself refused $(basename "$f"))"
done
N=$(cryptsetup luksDump "$IMG" | grep -c ': systemd-tpm2' || true)
[ "$N" -ge 8 ] || fail "only $N hostile tokens made it into the header"
OUT=$("$PTY_DRIVE" --timeout 60 --expect 'Recovery key or passphrase: ' --send 'fault pass\r' -- \
        "$UNLOCKD" --test --json --console=/dev/tty --ask-password=no --no-reseal --state-dir="$TEST_DIR/st2" --tcti="$TCTI" "$IMG") \
        || fail "unlockd did not survive the hostile tokens"
S=$(cat "$TEST_DIR/st2/state.json")
assert_eq "$(json_get "$S" 'j["volumes"][0]["method"]')" passphrase "opened at the prompt despite hostile tokens"
assert_eq "$(json_get "$S" 'len(j["volumes"][0]["tokens"])')" "$N" "one outcome per hostile token"
assert_eq "$(json_get "$S" 'all(t["result"] in ("malformed", "unsupported") and t["detail"] for t in j["volumes"][0]["tokens"])')" True \
        "every hostile token skipped with a reason: $(json_get "$S" '[(t["result"], t["detail"]) for t in j["volumes"][0]["tokens"]]')"
assert_no_tpm_leaks "hostile tokens"

say "a TPM that accepts commands and never answers: --watchdog= bounds unlockd"
IMG3=$TEST_DIR/mute.img
make_luks "$IMG3" "fault pass"
"$UNLOCKCTL" enroll --tpm2 --pcrs=7 --unlock-key-file="$TEST_DIR/pass" --tcti="$TCTI" "$IMG3" 2>/dev/null
# A listener on the swtpm TCTI's data and control sockets that takes every
# connection and every byte and never replies.
python3 - "$TEST_DIR/mute" <<'PY' &
import os, select, socket, sys
socks = []
for p in (sys.argv[1], sys.argv[1] + ".ctrl"):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(p)
    s.listen(8)
    socks.append(s)
open(sys.argv[1] + ".ready", "w").close()
conns = []
while True:
    r, _, _ = select.select(socks + conns, [], [], 120)
    if not r:
        break
    for s in r:
        if s in socks:
            conns.append(s.accept()[0])
        elif not s.recv(4096):
            conns.remove(s)
PY
MUTE_PID=$!
for _ in $(seq 50); do [ -e "$TEST_DIR/mute.ready" ] && break; sleep 0.1; done
start=$(date +%s%N)
rc=0
timeout 60 "$UNLOCKD" --test --no-prompt --watchdog=2 --state-dir="$TEST_DIR/st-mute" --tcti="swtpm:path=$TEST_DIR/mute" \
        "$IMG3" 2>"$TEST_DIR/err" || rc=$?
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
kill "$MUTE_PID" 2>/dev/null || true
assert_eq "$rc" 142 "exit status of unlockd stopped by its watchdog (128 + SIGALRM; 124 would be timeout(1)'s)"
[ "$elapsed_ms" -ge 1900 ] && [ "$elapsed_ms" -lt 20000 ] || fail "the watchdog fired after $elapsed_ms ms, not about 2 s"
# The same TPM answering: the watchdog does not fire on a healthy unlock.
"$UNLOCKD" --test --no-prompt --watchdog=2 --tcti="$TCTI" "$IMG3" 2>/dev/null || fail "unlockd with --watchdog=2 did not open with a working TPM"

say "waiting for a device that is slow to appear is a sign of life: the watchdog does not fire"
# 8 s of waiting for a device that never comes, under a 6 s watchdog.
rc=0
UNLOCKD_CMDLINE="rd.luks.uuid=0bad0bad-0000-4000-8000-00000000000f rd.unlockd.timeout=8" UNLOCKD_CRYPTTAB=/dev/null \
        timeout 60 "$UNLOCKD" --test --no-prompt --watchdog=6 --state-dir="$TEST_DIR/st-wait" 2>"$TEST_DIR/err" || rc=$?
assert_eq "$rc" 0 "exit status after waiting 8 s for a device under --watchdog=6"
grep -q "not found; skipping it" "$TEST_DIR/err" || fail "the device wait did not end as such: $(cat "$TEST_DIR/err")"
echo PASS
