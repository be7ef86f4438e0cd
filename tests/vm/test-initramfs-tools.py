#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The whole story with Debian's initramfs-tools (busybox, cryptroot, no
systemd in the initramfs), the image built by the real mkinitramfs with
unlockd's hook and local-top script (tests/vm/setup --initramfs-tools). The
kernel has two consoles, tty0 and ttyS0 (the last, /dev/console, is the
one cryptroot would ask on), and "quiet":

1. no TPM2 token yet: unlockd asks; the passphrase opens; cryptroot does
   not ask again; in the booted system enroll TPM2 (PCRs 4+9) and a
   recovery key;
2. boot: the TPM unlocks the root; no prompt at all, neither unlockd's nor
   cryptroot's;
3. new initramfs (PCR 9 changes), boot: unlockd says why and asks, alone
   (cryptroot never asks); a wrong key is refused; the recovery key opens;
   the job and state unlockd wrote in the initramfs are in the booted
   system's /run, the secret in the kernel keyring, and the re-seal service
   succeeds;
4. boot: the TPM unlocks again with no prompt;
5. containment: a stand-in that crashes (fault-unlockd.c, as in
   test-containment.py) in unlockd's place in a new image; boot: the script
   says so, cryptroot asks with its own prompt, and the passphrase opens
   the root (cryptroot says so; the boot is not followed further).
"""
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vm  # noqa: E402

# cryptroot's prompt (cryptsetup-initramfs's askpass).
CRYPTROOT_PROMPT = "Please unlock disk"
PROMPTS = ("Recovery key or passphrase", CRYPTROOT_PROMPT)


def check_image(work):
    """The image holds unlockd, the dlopen()ed TCTI, the local-top script
    ordered before cryptroot, and cryptroot's crypttab naming the root."""
    if not shutil.which("lsinitramfs"):
        vm.progress("lsinitramfs not installed: image contents not checked")
        return
    files = subprocess.run(["lsinitramfs", os.path.join(work, "initrd.img")], check=True,
                           capture_output=True, text=True).stdout.split()
    for want in ("usr/bin/unlockd", "scripts/local-top/unlockd", "cryptroot/crypttab"):
        assert want in files, f"{want} is not in the initramfs"
    assert any(f.endswith("/libtss2-tcti-device.so.0") for f in files), "no libtss2-tcti-device.so.0 in the initramfs"


def story():
    # Every console: unlockd asks on both; the test reads the serial one.
    # "quiet", as Debian's installer sets it: the kernel and initramfs-tools
    # say less, unlockd only notices and above.
    os.environ["UNLOCKD_VM_CONSOLES"] = "tty0 ttyS0,115200"
    os.environ["UNLOCKD_VM_CMDLINE"] = (os.environ.get("UNLOCKD_VM_CMDLINE", "") + " quiet").strip()

    with vm.phase("setup: LUKS2 disk, initramfs by mkinitramfs"):
        work, uuid = vm.make_disk("itools.", "--initramfs-tools")
        check_image(work)

    with vm.phase("boot 1: unlockd's prompt, the passphrase; enroll"):
        m = vm.VM(work, "itools-1-enroll").start()
        mark = m.mark()
        m.expect(r"has no TPM2 token", 240, "unlockd saying there is no TPM2 token")
        m.expect(vm.PROMPT, 60, "unlockd's prompt")
        m.send(vm.PASSPHRASE + "\r")
        m.shell_ready()
        assert CRYPTROOT_PROMPT not in m.since(mark), "cryptroot asked after unlockd had opened the root"
        key = vm.enroll(m, uuid)
        m.poweroff()

    with vm.phase("boot 2: TPM unlock, no prompt"):
        m = vm.tpm_boot(work, "itools-2-tpm", "prompted although the TPM should unlock", PROMPTS)
        pcr9_before = m.pcr(9)
        m.poweroff()

    with vm.phase("setup: new initramfs (PCR 9 changes)"):
        vm.setup("initrd", work, "2")

    with vm.phase("boot 3: unlockd alone asks; wrong key, recovery key; re-seal"):
        m = vm.VM(work, "itools-3-recovery").start()
        mark = m.mark()
        vm.recover(m, key)
        seen = m.since(mark)
        assert CRYPTROOT_PROMPT not in seen, "cryptroot asked as well"
        n = len(re.findall(vm.PROMPT, seen))
        assert n == 2, f"unlockd's prompt appeared {n} times on the serial console, not 2 (one per answer)"
        assert pcr9_before != m.pcr(9), "PCR 9 did not change with the initramfs"
        # What the initramfs wrote reached the booted system: /run was
        # moved into the root, and the state says a re-seal was queued.
        _, out = m.run("cat /run/unlockd/state.json; echo")
        v = json.loads(out)["volumes"][0]
        assert v["method"] == "recovery-key" and v["reseal"] == "queued", out
        # The secret in root's keyring and the job in /run: the service
        # needs both to re-seal and verify.
        vm.check_resealed(m)
        m.poweroff()

    with vm.phase("boot 4: TPM unlock again, no prompt"):
        m = vm.tpm_boot(work, "itools-4-tpm-again", "prompted after the re-seal", PROMPTS)
        m.poweroff()

    with vm.phase("setup: a crashing unlockd in the image"):
        fake = os.path.join(work, "fault-unlockd")
        subprocess.run(["gcc", "-O2", "-Wall", "-o", fake, os.path.join(vm.HERE, "fault-unlockd.c")], check=True)
        vm.setup("initrd", work, "crash", env={"UNLOCKD_BINARY": fake})

    with vm.phase("boot 5: unlockd crashes; cryptroot's prompt, the passphrase"):
        m = vm.VM(work, "itools-5-crash", extra_args=["-smbios", "type=11,value=unlockd-vm-fault=crash"]).start()
        mark = m.mark()
        m.expect(r"unlockd: killed by signal 11", 240, "the script saying unlockd crashed")
        m.expect(CRYPTROOT_PROMPT + r".*: ", 60, "cryptroot's prompt")
        m.send(vm.PASSPHRASE + "\r")
        # cryptroot's own word that the root is open is enough here: the
        # rest of the boot is the same as in boot 1.
        m.expect(r"cryptsetup: luks-[-0-9a-f]+: set up successfully", 120, "cryptroot opening the root")
        assert "Recovery key or passphrase" not in m.since(mark), "unlockd's prompt in a boot where it crashed"
        m.kill()


if __name__ == "__main__":
    vm.run_story(story)
