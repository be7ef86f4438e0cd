#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Sealing to a predicted next boot (design.md section 10) on a software TPM.
# A "boot" restarts swtpm (the PCRs reset) and extends the PCRs with the
# events of an event log that make-eventlog.py writes for that boot's
# components: the firmware's part, played by the test. The volume is sealed
# to PCRs 4+9+12 (boot loader and kernel, command line and initrd, the
# command line again), and then:
#   - `unlockctl predict` offline and online gives exactly the next boot's
#     values, for a new initrd, command line, kernel and boot loader;
#   - `unlockctl reseal --predict` adds a token for the same keyslot, no
#     keyslot; again it is a no-op;
#   - the next boot opens with the predicted token, without sending the old
#     one to the TPM; the booted system retires the old one; the passphrase
#     and the recovery key open throughout;
#   - a PCR whose replay is not the TPM's value is not predicted: nothing is
#     sealed and the message names the PCR;
#   - at most 3 predictions per keyslot.
. "$(dirname "$0")/../lib.sh"
need swtpm tpm2_pcrextend cryptsetup python3

PE_DIGEST=$BUILD_DIR/tests/unit/pe-digest
MKLOG=$SOURCE_DIR/tests/tpm/make-eventlog.py
SDBOOT=/usr/lib/systemd/boot/efi/systemd-bootx64.efi
for f in "$SDBOOT" /usr/lib/shim/mmx64.efi /usr/lib/shim/fbx64.efi /usr/lib/shim/shimx64.efi; do
        [ -f "$f" ] || skip "$f is not installed (systemd-boot-efi, shim-signed)"
done
KERNEL_A=/usr/lib/shim/mmx64.efi        # any EFI binaries: what matters is their Authenticode digest
KERNEL_B=/usr/lib/shim/fbx64.efi
LOADER_B=/usr/lib/shim/shimx64.efi
digest() { "$PE_DIGEST" "$1" | cut -d' ' -f1; }

PASS="old passphrase"
STATE=$TEST_DIR/state
IMG=$TEST_DIR/disk.img
printf 'initrd A' > "$TEST_DIR/initrd-a"
printf 'initrd B' > "$TEST_DIR/initrd-b"
CMD_A="initrd=\\initrd root=/dev/vda2"
CMD_C="initrd=\\initrd root=/dev/vda2 quiet"
export UNLOCKD_EVENTLOG=$TEST_DIR/log

# boot LOADER KERNEL CMDLINE INITRD [UNLOGGED]: a boot with these components.
boot() {
        local e extra=()
        [ -z "${5:-}" ] || extra=(--unlogged "$5")
        # An orderly reboot: TPM2_Shutdown first, as the OS does (a TPM
        # that loses power without it counts a dictionary-attack failure).
        [ -z "${SWTPM_PID:-}" ] || tpm2_shutdown -c
        stop_swtpm
        start_swtpm "$TEST_DIR/tpm"
        python3 "$MKLOG" "$TEST_DIR/log" --boot-loader "$(digest "$1")" --kernel "$(digest "$2")" \
                --cmdline "$3" --initrd "$4" "${extra[@]}" > "$TEST_DIR/extends"
        while read -r e; do
                tpm2_pcrextend "${e%%:*}:sha256=${e#*:}"
        done < "$TEST_DIR/extends"
        rm -rf "$STATE"
}
pcr() { tpm2_pcrread "sha256:$1" | sed -n 's/.*0x\([0-9A-Fa-f]*\).*/\1/p' | tr 'A-F' 'a-f'; }
tpm_opens() {
        UNLOCKD_TEST_RETIRE=1 "$UNLOCKD" --test --no-prompt --state-dir="$STATE" --tcti="$TCTI" "$IMG" > "$TEST_DIR/tpm.log" 2>&1
}
n_tokens() { cryptsetup luksDump "$IMG" | grep -cE "^  [0-9]+: systemd-tpm2" || true; }
n_keyslots() { cryptsetup luksDump "$IMG" | grep -cE '^  [0-9]+: luks2'; }
assert_owner() {
        opens_with "$IMG" "$PASS" || fail "$1: the passphrase no longer opens the volume"
        opens_with "$IMG" "$KEY" || fail "$1: the recovery key no longer opens the volume"
}

say "boot A; enroll on PCRs 4+9+12"
boot "$SDBOOT" "$KERNEL_A" "$CMD_A" "$TEST_DIR/initrd-a"
make_luks "$IMG" "$PASS"
printf '%s' "$PASS" > "$TEST_DIR/pass"
KEY=$("$UNLOCKCTL" enroll --tpm2 --pcrs=4+9+12 --recovery-key --unlock-key-file="$TEST_DIR/pass" --tcti="$TCTI" "$IMG" 2>/dev/null)
tpm_opens || { cat "$TEST_DIR/tpm.log"; fail "the TPM did not open the fresh enrollment"; }
SLOTS=$(n_keyslots)

say "predict offline and online = the values boot B will have (new initrd)"
# What boot B will give, measured by playing boot B on a scratch TPM.
(
        SWTPM_PID=
        start_swtpm "$TEST_DIR/tpm-b"
        python3 "$MKLOG" "$TEST_DIR/log-b" --boot-loader "$(digest "$SDBOOT")" --kernel "$(digest "$KERNEL_A")" \
                --cmdline "$CMD_A" --initrd "$TEST_DIR/initrd-b" > "$TEST_DIR/extends-b"
        while read -r e; do tpm2_pcrextend "${e%%:*}:sha256=${e#*:}"; done < "$TEST_DIR/extends-b"
        for i in 4 9 12; do echo "$i $(pcr "$i")"; done > "$TEST_DIR/expected-b"
        stop_swtpm
)
for mode in offline online; do
        if [ $mode = offline ]; then
                args=(--event-log="$TEST_DIR/log")
        else
                args=(--tcti="$TCTI")
        fi
        "$UNLOCKCTL" predict "${args[@]}" --pcrs=4+9+12 --initrd="$TEST_DIR/initrd-b" --json > "$TEST_DIR/predict.json" ||
                fail "predict ($mode) failed"
        python3 - "$TEST_DIR/predict.json" "$TEST_DIR/expected-b" "$mode" <<'EOF' || fail "predict ($mode) is not boot B"
import json, sys
p = json.load(open(sys.argv[1]))
exp = dict(l.split() for l in open(sys.argv[2]))
got = {str(e["pcr"]): e for e in p["pcrs"]}
assert p["reference"] == ("event-log" if sys.argv[3] == "offline" else "tpm"), p["reference"]
for i in ("4", "9", "12"):
    assert got[i]["predicted"] == exp[i], (i, got[i], exp[i])
    assert got[i]["predictable"], got[i]
assert got["9"]["substituted"] == "initrd" and got["4"]["substituted"] is None, got
assert got["9"]["current"] != got["9"]["predicted"] and got["4"]["current"] == got["4"]["predicted"]
assert [s["component"] for s in p["substitutions"]] == ["initrd"], p["substitutions"]
EOF
done
# Text output names the substituted component; without a component, an error.
"$UNLOCKCTL" predict --event-log="$TEST_DIR/log" --pcrs=9 --initrd="$TEST_DIR/initrd-b" | grep -E '^ 9 sha256 [0-9a-f]{64}  \(initrd\)$' >/dev/null ||
        fail "predict's text output"
if "$UNLOCKCTL" predict --event-log="$TEST_DIR/log" 2>"$TEST_DIR/err"; then fail "predict without a component succeeded"; fi
grep -F -- "--initrd=" "$TEST_DIR/err" >/dev/null || fail "predict without a component: $(cat "$TEST_DIR/err")"

say "reseal --predict: one more token for the same keyslot; again a no-op"
"$UNLOCKCTL" reseal --predict --initrd="$TEST_DIR/initrd-b" --state-dir="$STATE" --tcti="$TCTI" "$IMG" 2> "$TEST_DIR/predict.log" ||
        { cat "$TEST_DIR/predict.log"; fail "reseal --predict failed"; }
grep -E "sealed keyslot [0-9]+ to the next boot's PCR 4\+9\+12 \(new initrd\)" "$TEST_DIR/predict.log" >/dev/null ||
        fail "reseal --predict said: $(cat "$TEST_DIR/predict.log")"
[ "$(n_tokens)" = 2 ] || fail "expected 2 TPM2 tokens, got $(n_tokens)"
[ "$(n_keyslots)" = "$SLOTS" ] || fail "reseal --predict changed the keyslots"
cryptsetup luksDump --dump-json-metadata "$IMG" | python3 -c '
import json, sys
t = [v for v in json.load(sys.stdin)["tokens"].values() if v["type"] == "systemd-tpm2"]
assert len({tuple(x["keyslots"]) for x in t}) == 1, "not the same keyslot"
assert sorted(x.get("unlockd-predicted", "") for x in t) == ["", "initrd"], t
' || fail "the predicted token is not what it should be"
"$UNLOCKCTL" reseal --predict --initrd="$TEST_DIR/initrd-b" --state-dir="$STATE" --tcti="$TCTI" "$IMG" 2> "$TEST_DIR/predict.log" ||
        fail "reseal --predict again failed"
grep -F "already sealed" "$TEST_DIR/predict.log" >/dev/null || fail "again: $(cat "$TEST_DIR/predict.log")"
[ "$(n_tokens)" = 2 ] || fail "reseal --predict again added a token"
assert_owner "after reseal --predict"
# This boot still opens with the old token (nothing retired: --test
# writes no retirement without UNLOCKD_TEST_RETIRE, and this is not the boot
# the prediction was for).
"$UNLOCKD" --test --no-prompt --state-dir="$STATE" --tcti="$TCTI" "$IMG" > "$TEST_DIR/tpm.log" 2>&1 || fail "boot A no longer opens"
[ ! -e "$STATE/retire" ] || fail "a check by hand (--test) queued a retirement"

# Killed at each step of sealing a prediction (in a -Dtest-hooks build):
# the token is written whole or not at all, nothing else changes, a rerun
# seals (or finds it sealed).
if grep -a UNLOCKD_RESEAL_CRASH_AT "$BUILD_DIR/agent/unlockctl" >/dev/null; then
        printf 'initrd X' > "$TEST_DIR/initrd-x"
        for step in preseal-sealed preseal-written; do
                before=$(n_tokens)
                rc=0; UNLOCKD_RESEAL_CRASH_AT=$step "$UNLOCKCTL" reseal --predict --initrd="$TEST_DIR/initrd-x" \
                        --state-dir="$STATE" --tcti="$TCTI" "$IMG" 2>/dev/null || rc=$?
                [ $rc -ne 0 ] || fail "reseal --predict was not killed at $step"
                [ "$(n_keyslots)" = "$SLOTS" ] || fail "killed at $step: the keyslots changed"
                assert_owner "killed at $step"
                case $step in
                preseal-sealed) [ "$(n_tokens)" = "$before" ] || fail "killed before the write: a token was written" ;;
                preseal-written) [ "$(n_tokens)" = $((before + 1)) ] || fail "killed after the write: no token" ;;
                esac
        done
        "$UNLOCKCTL" reseal --predict --initrd="$TEST_DIR/initrd-x" --state-dir="$STATE" --tcti="$TCTI" "$IMG" 2> "$TEST_DIR/predict.log" ||
                fail "the rerun after the crashes failed"
        grep -F "already sealed" "$TEST_DIR/predict.log" >/dev/null || fail "the rerun: $(cat "$TEST_DIR/predict.log")"
        # Back to one prediction (for boot B): remove the extra one by hand.
        id=$(cryptsetup luksDump --dump-json-metadata "$IMG" | python3 -c '
import json, sys, subprocess
t = json.load(sys.stdin)["tokens"]
print(max(int(k) for k, v in t.items() if v.get("unlockd-predicted") == "initrd"))')
        cryptsetup token remove --token-id "$id" "$IMG"
        [ "$(n_tokens)" = 2 ] || fail "expected 2 TPM2 tokens again, got $(n_tokens)"
else
        echo "(no crash points in this build: the fault injection is left out)"
fi

say "boot B (the new initrd): the predicted token opens; the old one is not tried, then retired"
boot "$SDBOOT" "$KERNEL_A" "$CMD_A" "$TEST_DIR/initrd-b"
tpm_opens || { cat "$TEST_DIR/tpm.log"; fail "boot B did not open by TPM"; }
python3 - "$STATE/state.json" <<'EOF' || fail "state.json of boot B: $(cat "$STATE/state.json")"
import json, sys
v = json.load(open(sys.argv[1]))["volumes"][0]
assert v["method"] == "tpm2", v
assert [t["result"] for t in v["tokens"]] == ["opened"], v["tokens"]     # one TPM unseal, no other token tried
assert len(v["retire"]) == 1 and v["retire"][0]["token"] != v["token"], v
EOF
[ -f "$STATE/retire/$(cryptsetup luksUUID "$IMG").json" ] || fail "no retirement queued"
if grep -a UNLOCKD_RESEAL_CRASH_AT "$BUILD_DIR/agent/unlockctl" >/dev/null; then
        rc=0; UNLOCKD_RESEAL_CRASH_AT=retire-removed "$UNLOCKCTL" reseal --state-dir="$STATE" --tcti="$TCTI" 2>/dev/null || rc=$?
        [ $rc -ne 0 ] || fail "the retirement was not killed"
        [ "$(n_tokens)" = 1 ] || fail "killed after the removal: $(n_tokens) TPM2 tokens"
        [ -f "$STATE/retire/$(cryptsetup luksUUID "$IMG").json" ] || fail "killed: the retirement is no longer queued"
        assert_owner "killed in the retirement"
fi
"$UNLOCKCTL" reseal --state-dir="$STATE" --tcti="$TCTI" 2> "$TEST_DIR/reseal.log" || fail "reseal (retire) failed: $(cat "$TEST_DIR/reseal.log")"
grep -a UNLOCKD_RESEAL_CRASH_AT "$BUILD_DIR/agent/unlockctl" >/dev/null ||
        grep -F "retired TPM2 token" "$TEST_DIR/reseal.log" >/dev/null || fail "no retirement: $(cat "$TEST_DIR/reseal.log")"
[ "$(n_tokens)" = 1 ] || fail "expected 1 TPM2 token after the retirement, got $(n_tokens)"
[ ! -e "$STATE/retire/$(cryptsetup luksUUID "$IMG").json" ] || fail "the retirement stays queued"
[ "$(n_keyslots)" = "$SLOTS" ] || fail "the retirement removed a keyslot"
assert_owner "after the retirement"
tpm_opens || fail "boot B no longer opens after the retirement"

say "a new kernel, boot loader and command line: PCRs 4, 9 and 12 predicted"
"$UNLOCKCTL" reseal --predict --kernel="$KERNEL_B" --boot-loader="$LOADER_B" --cmdline="$CMD_C" \
        --state-dir="$STATE" --tcti="$TCTI" "$IMG" 2> "$TEST_DIR/predict.log" || { cat "$TEST_DIR/predict.log"; fail "reseal --predict (kernel) failed"; }
grep -F "(new boot-loader+kernel+cmdline)" "$TEST_DIR/predict.log" >/dev/null || fail "said: $(cat "$TEST_DIR/predict.log")"
boot "$LOADER_B" "$KERNEL_B" "$CMD_C" "$TEST_DIR/initrd-b"
tpm_opens || { cat "$TEST_DIR/tpm.log"; fail "boot C did not open by TPM"; }
"$UNLOCKCTL" reseal --state-dir="$STATE" --tcti="$TCTI" 2> "$TEST_DIR/reseal.log" || fail "reseal (retire) failed"
[ "$(n_tokens)" = 1 ] || fail "expected 1 TPM2 token after boot C's retirement, got $(n_tokens)"
assert_owner "after boot C"

say "an unlogged extend of PCR 9: not predictable, nothing sealed, the PCR named"
boot "$LOADER_B" "$KERNEL_B" "$CMD_C" "$TEST_DIR/initrd-b" "9:$(printf '%064x' 7)"
if "$UNLOCKCTL" predict --tcti="$TCTI" --pcrs=4+9 --initrd="$TEST_DIR/initrd-a" > "$TEST_DIR/out" 2>&1; then
        fail "predict succeeded with an unpredictable PCR"
fi
grep -E "^   not predictable" "$TEST_DIR/out" >/dev/null || fail "predict did not say PCR 9 is not predictable: $(cat "$TEST_DIR/out")"
N=$(n_tokens)
# The PCR 4+9+12 token does not open this boot: no secret to seal.
if "$UNLOCKCTL" reseal --predict --initrd="$TEST_DIR/initrd-a" --state-dir="$STATE" --tcti="$TCTI" "$IMG" 2> "$TEST_DIR/predict.log"; then
        fail "reseal --predict succeeded without a token that opens"
fi
grep -F "no TPM2 token opens it this boot" "$TEST_DIR/predict.log" >/dev/null || fail "said: $(cat "$TEST_DIR/predict.log")"
# A token that opens this boot, on PCR 9, whose replay is wrong.
"$UNLOCKCTL" enroll --tpm2 --pcrs=9 --unlock-key-file="$TEST_DIR/pass" --tcti="$TCTI" "$IMG" 2>"$TEST_DIR/enroll.log" || { cat "$TEST_DIR/enroll.log"; 
        fail "enroll on PCR 9 failed"; }
N=$(n_tokens)
if "$UNLOCKCTL" reseal --predict --initrd="$TEST_DIR/initrd-a" --state-dir="$STATE" --tcti="$TCTI" "$IMG" 2> "$TEST_DIR/predict.log"; then
        fail "reseal --predict succeeded with PCR 9 unpredictable"
fi
grep -E "PCR 9 of token [0-9]+ cannot be predicted" "$TEST_DIR/predict.log" >/dev/null || fail "said: $(cat "$TEST_DIR/predict.log")"
[ "$(n_tokens)" = "$N" ] || fail "reseal --predict sealed to a guess"
assert_owner "after the unpredictable boot"

say "at most 3 predictions per keyslot"
boot "$LOADER_B" "$KERNEL_B" "$CMD_C" "$TEST_DIR/initrd-b"
: > "$TEST_DIR/predict.log"
for i in 1 2 3 4 5; do
        printf 'initrd %s' "$i" > "$TEST_DIR/initrd-$i"
        "$UNLOCKCTL" reseal --predict --initrd="$TEST_DIR/initrd-$i" --state-dir="$STATE" --tcti="$TCTI" "$IMG" 2>> "$TEST_DIR/predict.log" ||
                { cat "$TEST_DIR/predict.log"; fail "reseal --predict $i failed"; }
done
grep -F "removed the oldest prediction" "$TEST_DIR/predict.log" >/dev/null || fail "no oldest prediction removed: $(cat "$TEST_DIR/predict.log")"
cryptsetup luksDump --dump-json-metadata "$IMG" | python3 -c '
import json, sys
t = [v for v in json.load(sys.stdin)["tokens"].values() if v["type"] == "systemd-tpm2"]
# The token that opens this boot (itself boot C'\''s prediction) and the 3 newest.
p = [x for x in t if x.get("unlockd-predicted") == "initrd"]
assert len(p) == 3, p
assert len(t) == 5, t       # + the PCR 9 token
' || fail "more than 3 predictions per keyslot"
assert_owner "after 5 predictions"
boot "$LOADER_B" "$KERNEL_B" "$CMD_C" "$TEST_DIR/initrd-5"
tpm_opens || fail "the newest prediction does not open"
"$UNLOCKCTL" reseal --state-dir="$STATE" --tcti="$TCTI" 2>/dev/null || fail "retire after the newest prediction"

say "the hooks: initramfs-tools post-update.d and kernel-install print one line and seal"
export UNLOCKCTL
export UNLOCKD_PREDICT_OPTIONS="--state-dir=$STATE --tcti=$TCTI $IMG"
out=$("$SOURCE_DIR/hooks/predict-initramfs" "$(uname -r)" "$TEST_DIR/initrd-a") || fail "the initramfs hook failed"
[ "$(printf '%s\n' "$out" | wc -l)" = 1 ] || fail "the initramfs hook printed more than one line: $out"
case $out in "unlockd: "*"sealed keyslot"*"(new initrd)"*) ;; *) fail "the initramfs hook said: $out" ;; esac
out=$("$SOURCE_DIR/hooks/predict-initramfs" 0.0.0-other "$TEST_DIR/initrd-a") || fail "the initramfs hook failed"
case $out in "unlockd: "*"not the running"*) ;; *) fail "the initramfs hook for another kernel said: $out" ;; esac
# kernel-install: the command line from the entry as systemd-boot builds it.
ESP=$TEST_DIR/esp
mkdir -p "$ESP/loader/entries" "$ESP/tok/9.9"
printf 'title T\nlinux /tok/9.9/linux\ninitrd /tok/9.9/initrd\noptions root=/dev/vda2\noptions quiet\n' > "$ESP/loader/entries/tok-9.9.conf"
cp "$TEST_DIR/initrd-a" "$ESP/tok/9.9/initrd"
out=$(KERNEL_INSTALL_BOOT_ROOT=$ESP KERNEL_INSTALL_ENTRY_TOKEN=tok "$SOURCE_DIR/hooks/predict-kernel-install" add 9.9 "$ESP/tok/9.9" "$KERNEL_A") ||
        fail "the kernel-install plugin failed"
case $out in "unlockd: "*"sealed keyslot"*"(new kernel+initrd+cmdline)"*) ;; *) fail "the kernel-install plugin said: $out" ;; esac
out=$("$SOURCE_DIR/hooks/predict-kernel-install" remove 9.9 "$ESP/tok/9.9") || fail "remove failed"
[ -z "$out" ] || fail "kernel-install remove printed: $out"
boot "$LOADER_B" "$KERNEL_A" 'initrd=\tok\9.9\initrd root=/dev/vda2 quiet' "$TEST_DIR/initrd-a"
tpm_opens || { cat "$TEST_DIR/tpm.log"; fail "the boot the kernel-install plugin predicted did not open by TPM"; }
# A failure is one line and exit 0: no TPM.
out=$(UNLOCKD_PREDICT_OPTIONS="--state-dir=$STATE --tcti=swtpm:path=$TEST_DIR/none $IMG" \
      "$SOURCE_DIR/hooks/predict-initramfs" "$(uname -r)" "$TEST_DIR/initrd-b") || fail "the hook failed the upgrade"
case $out in "unlockd: could not seal"*) ;; *) fail "the hook without a TPM said: $out" ;; esac
assert_owner "at the end"
echo "OK"
