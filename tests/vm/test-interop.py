#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Tokens cross between unlockd and systemd (v252, Debian 12; with
UNLOCKD_VM_RELEASE=trixie, the test test-interop-trixie, v257 of Debian 13,
unlockd built in that tree) at boot, in both directions, on a real kernel
with a dracut initramfs:

1. boot (unlockd in the initrd, no TPM2 token yet: it asks, the passphrase
   opens); in the booted system, systemd-cryptenroll enrolls a TPM2 token
   (PCRs 4+9; systemd 257 seals it under the persistent SRK, tpm2_srk);
2. boot: unlockd opens the root with systemd's token, with no prompt;
   `unlockctl status --json` says tpm2, token 0, which has no unlockd
   fields. Then systemd-cryptenroll replaces it with a PIN token
   (--tpm2-with-pin=yes; systemd 257 salts the PIN, tpm2_salt);
3. boot: unlockd asks for the TPM2 PIN; a wrong PIN is refused and asked
   again; the PIN typed at the boot prompt opens the root. Then systemd's
   token goes (systemd-cryptenroll --wipe-slot=tpm2)
   and `unlockctl enroll --tpm2 --no-srk --pcrs=4+7` enrolls unlockd's
   (not PCR 9: the next initramfs differs); cryptsetup's systemd-tpm2 token
   plugin opens it (`cryptsetup open --test-passphrase --token-only`);
4. the initramfs is rebuilt WITHOUT unlockd, with dracut's tpm2-tss module
   (the TSS libraries and systemd's libcryptsetup token plugin) and
   rd.luks.options=tpm2-device=auto; boot: systemd-cryptsetup opens the
   root with unlockd's token, with no prompt, and unlockd never ran.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vm  # noqa: E402

# Debian 12's systemd or Debian 13's; the boots' names (serial logs in
# $UNLOCKD_VM_ARTIFACTS): interop-N-..., trixie-interop-N-... on Debian 13.
SYSTEMD = "systemd 252" if vm.RELEASE == "bookworm" else "systemd 257"
NAME = "interop" if vm.RELEASE == "bookworm" else f"{vm.RELEASE}-interop"

# The prompts that must not appear when a token opens the root: unlockd's
# and systemd-cryptsetup's.
PROMPTS = ("Recovery key or passphrase", "Please enter passphrase")
# The PIN of systemd-cryptenroll's PIN token, and a wrong one.
PIN = "4711 boot pin"
WRONG_PIN = "1147 boot pin"
PIN_PROMPT = r"TPM2 PIN[^\r\n]*: "


def token(m, dev, tid):
    """Token tid of dev as a dict (cryptsetup token export, in the guest)."""
    _, out = m.run(f"cryptsetup token export --token-id {tid} {dev}; echo")
    return json.loads(out)


def tpm2_token(m, dev):
    """(id, token) of dev's one systemd-tpm2 token."""
    found = []
    for tid in range(8):
        rc, out = m.run(f"cryptsetup token export --token-id {tid} {dev} && echo", check=False)
        t = json.loads(out) if rc == 0 else None
        if t and t["type"] == "systemd-tpm2":
            found.append((tid, t))
    assert len(found) == 1, f"not one systemd-tpm2 token: {found}"
    return found[0]


def story():
    with vm.phase("setup: root filesystem, LUKS2 disk, initramfs with unlockd"):
        work, uuid = vm.make_disk("interop." if vm.RELEASE == "bookworm" else f"interop-{vm.RELEASE}.")
    dev = f"/dev/disk/by-uuid/{uuid}"

    with vm.phase("boot 1: passphrase, systemd-cryptenroll"):
        m = vm.passphrase_boot(work, f"{NAME}-1-cryptenroll", timeout=240 if vm.RELEASE == "bookworm" else 600)
        _, ver = m.run("systemd-cryptenroll --version | head -n 1")
        vm.progress(f"guest: {ver.strip()}")
        assert ver.startswith(SYSTEMD), f"not systemd {SYSTEMD[8:]}: {ver}"
        m.run(f"PASSWORD='{vm.PASSPHRASE}' systemd-cryptenroll --tpm2-device=auto --tpm2-pcrs=4+9 {dev}")
        t = token(m, dev, 0)
        assert t["type"] == "systemd-tpm2" and t["tpm2-pcrs"] == [4, 9], t
        # systemd 257 seals under the persistent SRK; 252 under its own primary.
        assert ("tpm2_srk" in t) == (vm.RELEASE != "bookworm"), t
        assert not [k for k in t if k.startswith("unlockd-")], f"systemd's token has unlockd fields: {t}"
        m.poweroff()

    with vm.phase("boot 2: unlockd opens with systemd's token; systemd's PIN token instead"):
        m = vm.VM(work, f"{NAME}-2-systemd-token").start()
        mark = m.mark()
        m.shell_ready()
        vm.assert_no_prompt(m, mark, "unlockd with systemd-cryptenroll's token", PROMPTS)
        _, st = m.run("unlockctl status --json")
        b = json.loads(st)["volumes"][0]["this-boot"]
        assert b["method"] == "tpm2" and b["token"] == 0, st
        _, j = m.run("journalctl -b -u unlockd.service -o cat")
        assert re.search(r"unlocked with TPM2 token 0 \(keyslot 1\)", j), j
        # systemd's PIN token in its place (enrolled, then the old one wiped).
        m.run(f"PASSWORD='{vm.PASSPHRASE}' NEWPIN='{PIN}' systemd-cryptenroll --tpm2-device=auto "
              f"--tpm2-pcrs=4+9 --tpm2-with-pin=yes --wipe-slot=tpm2 {dev}")
        pin_id, t = tpm2_token(m, dev)
        assert t.get("tpm2-pin") is True and t["tpm2-pcrs"] == [4, 9], t
        # systemd 257 salts the PIN (tpm2_salt); 252 hashes it unsalted.
        assert ("tpm2_salt" in t) == (vm.RELEASE != "bookworm"), t
        m.poweroff()

    with vm.phase("boot 3: unlockd asks for systemd's PIN; a wrong one, then the PIN; unlockctl enroll"):
        m = vm.VM(work, f"{NAME}-3-systemd-pin").start()
        m.expect(PIN_PROMPT, 600, "unlockd asking for the TPM2 PIN")
        m.send(WRONG_PIN + "\r")
        m.expect(r"did not unlock it\. Try again", 120, "the wrong PIN refused")
        m.expect(PIN_PROMPT, 60, "the PIN prompt again")
        m.send(PIN + "\r")
        m.shell_ready()
        _, st = m.run("unlockctl status --json")
        b = json.loads(st)["volumes"][0]["this-boot"]
        assert b["method"] == "tpm2" and b["token"] == pin_id, st
        # Now the other way round: only unlockd's token on the volume.
        m.run(f"systemd-cryptenroll --wipe-slot=tpm2 {dev}")
        m.run(f"printf '%s' '{vm.PASSPHRASE}' > /run/pass")
        m.run(f"unlockctl enroll --tpm2 --no-srk --pcrs=4+7 --unlock-key-file=/run/pass {dev}")
        m.run("rm /run/pass")
        t = token(m, dev, 0)
        assert t["tpm2-pcrs"] == [4, 7] and "unlockd-pcr-values" in t and "tpm2_srk" not in t, t
        rc, out = m.run(f"cryptsetup token export --token-id 1 {dev}", check=False)
        assert rc != 0, f"a second token is left: {out}"
        m.run(f"cryptsetup open --test-passphrase --token-only {dev}")
        m.poweroff()

    with vm.phase("setup: initramfs without unlockd, with dracut's tpm2-tss module"):
        with open(os.path.join(work, "dracut.conf.d", "50-interop.conf"), "w") as f:
            f.write('add_dracutmodules+=" tpm2-tss "\n')
        cmdline = (os.environ.get("UNLOCKD_VM_CMDLINE", "") + " rd.luks.options=tpm2-device=auto").strip()
        vm.setup("initrd", work, "2", "--without-unlockd", env={"UNLOCKD_VM_CMDLINE": cmdline})
        files = vm.lsinitrd(work)
        assert "libcryptsetup-token-systemd-tpm2.so" in files, "no systemd-tpm2 token plugin in the initramfs"
        assert not re.search(r"bin/unlockd$|unlockd\.service$", files, re.M), "unlockd is in the initramfs"

    with vm.phase("boot 4: systemd-cryptsetup opens with unlockd's token"):
        m = vm.VM(work, f"{NAME}-4-systemd-cryptsetup").start()
        mark = m.mark()
        m.shell_ready()
        vm.assert_no_prompt(m, mark, "systemd-cryptsetup with unlockd's token", PROMPTS)
        _, src = m.run("findmnt -n -o SOURCE /")
        assert src.strip() == f"/dev/mapper/luks-{uuid}", src
        _, cmdline = m.run("cat /proc/cmdline")
        assert "rd.luks.options=tpm2-device=auto" in cmdline, cmdline
        _, j = m.run("journalctl -b -o cat -u 'systemd-cryptsetup@*'")
        assert "Finished systemd-cryptsetup@" in j, j
        _, j = m.run("journalctl -b -o cat -u unlockd.service; ls /run/unlockd 2>&1; true")
        assert "Starting unlockd" not in j and "No such file" in j, f"unlockd ran: {j}"
        # The only keyslots: the passphrase and unlockd's TPM2 keyslot.
        _, st = m.run("unlockctl status --json")
        v = json.loads(st)["volumes"][0]
        assert sorted(k["kind"] for k in v["keyslots"]) == ["passphrase", "tpm2"], st
        m.poweroff()


if __name__ == "__main__":
    vm.run_story(story)
