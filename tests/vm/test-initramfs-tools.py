#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The whole story with Debian's initramfs-tools (busybox, cryptroot, no
systemd in the initramfs), the image built by the real mkinitramfs with
unlockd's hook and local-top script (tests/vm/setup --initramfs-tools).
unlockd is installed as a user installs it: the Debian packages built from
this tree (tools/build-deb), unlockd and unlockd-initramfs-tools, with dpkg
in the disk's root filesystem. The kernel has two consoles, tty0 and ttyS0
(the last, /dev/console, is the one cryptroot would ask on), and "quiet":

1. no TPM2 token yet: unlockd asks; the passphrase opens; cryptroot does
   not ask again; dpkg says both packages are installed, at the version
   built, and their files are as packaged (`dpkg -V`), where the packages
   put them; in the booted system enroll TPM2 (PCRs 4+9) and a recovery
   key;
2. boot: the TPM unlocks the root; no prompt at all, neither unlockd's nor
   cryptroot's;
3. new initramfs (PCR 9 changes), boot: unlockd says why and asks, alone
   (cryptroot never asks); a wrong key is refused; the recovery key opens;
   the job and state unlockd wrote in the initramfs are in the booted
   system's /run, the secret in the kernel keyring, and the re-seal service
   succeeds;
4. boot: the TPM unlocks again with no prompt; then a planned update in
   the booted system: `update-initramfs -u` rebuilds the image with the
   disk's own initramfs-tools, modules and unlockd hook, and runs the
   packaged post-update.d hook (KERNEL-VERSION IMAGE), which says in one
   line that it sealed to it; the image is installed on the ESP (mounted on
   /boot/efi, as a boot loader's own hook would);
5. boot: the TPM unlocks with no prompt through the predicted token (PCR 9
   changed); the re-seal service retires the old token;
6. containment: a stand-in that crashes (fault-unlockd.c, as in
   test-containment.py) in unlockd's place in a new image; boot: the script
   says so, cryptroot asks with its own prompt, and the passphrase opens
   the root (cryptroot says so; the boot is not followed further).

With UNLOCKD_VM_RELEASE=trixie (the test test-initramfs-tools-trixie) the
disk is Debian 13's: its kernel, systemd 257, initramfs-tools,
cryptsetup-initramfs and busybox, and the packages built from this tree
inside the Debian 13 tree (tests/vm/setup --release trixie
--initramfs-tools); the same story.
"""
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vm  # noqa: E402

RELEASE = vm.RELEASE
# Boot names (serial logs): itools-N-... on Debian 12, trixie-itools-N-...
# on Debian 13.
NAME = "itools" if RELEASE == "bookworm" else f"{RELEASE}-itools"
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


# Where the packages put what the boot needs, and which package owns it.
PACKAGED = {
    "/usr/bin/unlockd": "unlockd",
    "/usr/bin/unlockctl": "unlockd",
    "/lib/systemd/system/unlockd-reseal.service": "unlockd",
    "/usr/share/initramfs-tools/hooks/unlockd": "unlockd-initramfs-tools",
    "/usr/share/initramfs-tools/scripts/local-top/unlockd": "unlockd-initramfs-tools",
    "/etc/initramfs/post-update.d/unlockd": "unlockd-initramfs-tools",
}


def check_packages(m, work):
    """In the booted guest: unlockd and unlockd-initramfs-tools are
    installed (dpkg), at the version of the .debs setup installed; their
    files are unchanged (`dpkg -V`) and in the places above; the re-seal
    service is enabled."""
    debs = os.path.join(work, "debs")
    want = {}
    for f in os.listdir(debs):
        pkg = f.split("_")[0]
        if f.endswith(".deb") and pkg in ("unlockd", "unlockd-initramfs-tools"):
            want[pkg] = subprocess.run(["dpkg-deb", "-f", os.path.join(debs, f), "Version"], check=True,
                                       capture_output=True, text=True).stdout.strip()
    assert len(want) == 2, f"{debs}: {want}"
    _, out = m.run("dpkg-query -W -f='${Package} ${Version} ${Status}\\n' unlockd unlockd-initramfs-tools")
    got = {line.split()[0]: line.split(None, 2)[1:] for line in out.splitlines() if line.strip()}
    for pkg, version in want.items():
        assert got.get(pkg) == [version, "install ok installed"], f"{pkg}: {out}"
    # dpkg -V: every file's checksum against the package's (any line is a
    # file not as packaged).
    _, out = m.run("dpkg -V unlockd unlockd-initramfs-tools")
    assert out.strip() == "", f"dpkg -V: {out}"
    _, out = m.run("dpkg -L unlockd unlockd-initramfs-tools")
    listed = set(out.split())
    _, owners = m.run("dpkg -S " + " ".join(PACKAGED))
    for path, pkg in PACKAGED.items():
        assert path in listed, f"dpkg -L does not list {path}"
        assert f"{pkg}: {path}" in owners.splitlines(), f"{path} is not {pkg}'s: {owners}"
        m.run(f"test -f {path}")
    _, out = m.run("systemctl is-enabled unlockd-reseal.service")
    assert out.strip() == "enabled", out


def story():
    # Every console: unlockd asks on both; the test reads the serial one.
    # "quiet", as Debian's installer sets it: the kernel and initramfs-tools
    # say less, unlockd only notices and above.
    os.environ["UNLOCKD_VM_CONSOLES"] = "tty0 ttyS0,115200"
    os.environ["UNLOCKD_VM_CMDLINE"] = (os.environ.get("UNLOCKD_VM_CMDLINE", "") + " quiet").strip()

    with vm.phase("setup: LUKS2 disk, initramfs by mkinitramfs"):
        work, uuid = vm.make_disk(f"{NAME}.", "--initramfs-tools")
        release = open(os.path.join(work, "release")).read().strip()
        assert release == RELEASE, f"setup made a {release} disk"
        check_image(work)

    with vm.phase("boot 1: unlockd's prompt, the passphrase; enroll"):
        m = vm.VM(work, f"{NAME}-1-enroll").start()
        mark = m.mark()
        m.expect(r"has no TPM2 token", 240, "unlockd saying there is no TPM2 token")
        m.expect(vm.PROMPT, 60, "unlockd's prompt")
        m.send(vm.PASSPHRASE + "\r")
        m.shell_ready()
        assert CRYPTROOT_PROMPT not in m.since(mark), "cryptroot asked after unlockd had opened the root"
        _, out = m.run("systemctl --version | head -n 1; uname -r; dpkg-query -W -f='${Version}\\n' initramfs-tools")
        vm.progress(f"{RELEASE}: {' / '.join(out.split(chr(10)))}")
        assert RELEASE != "trixie" or "systemd 257" in out, f"not Debian 13's systemd: {out}"
        check_packages(m, work)
        key = vm.enroll(m, uuid)
        m.poweroff()

    with vm.phase("boot 2: TPM unlock, no prompt"):
        m = vm.tpm_boot(work, f"{NAME}-2-tpm", "prompted although the TPM should unlock", PROMPTS)
        pcr9_before = m.pcr(9)
        m.poweroff()

    with vm.phase("setup: new initramfs (PCR 9 changes)"):
        vm.setup("initrd", work, "2")

    with vm.phase("boot 3: unlockd alone asks; wrong key, recovery key; re-seal"):
        m = vm.VM(work, f"{NAME}-3-recovery").start()
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

    with vm.phase("boot 4: TPM unlock again, no prompt; a planned initramfs update, predicted by the hook"):
        m = vm.tpm_boot(work, f"{NAME}-4-tpm-again", "prompted after the re-seal", PROMPTS)
        pcr9_before = m.pcr(9)
        # The image this boot started from, where Debian keeps it, and the
        # ESP (vfat loaded in the initramfs) on /boot/efi.
        m.run("mkdir -p /boot/efi && mount -t vfat /dev/vda1 /boot/efi")
        m.run('cp /boot/efi/initrd.img "/boot/initrd.img-$(uname -r)"')
        # update-initramfs: mkinitramfs in the booted system, then the
        # post-update.d hooks with the version and the new image.
        _, out = m.run('update-initramfs -u -k "$(uname -r)" 2>&1', timeout=600)
        # One line of unlockd's: "unlockd: DEVICE: sealed keyslot N to the
        # next boot's PCR 4+9 (new initrd) as token T, beside token U."
        lines = [line for line in out.splitlines() if line.startswith("unlockd:")]
        assert len(lines) == 1 and re.match(r"unlockd: \S+: sealed keyslot \d+ .*\(new initrd\)", lines[0]), \
            f"the hook did not say in one line that it sealed to the new initramfs: {out}"
        assert "update-initramfs: Generating /boot/initrd.img-" in out, out
        _, out = m.run('cmp -s /boot/efi/initrd.img "/boot/initrd.img-$(uname -r)" && echo same || echo differs')
        assert out.strip() == "differs", "update-initramfs made the image the ESP already had"
        m.run('cp "/boot/initrd.img-$(uname -r)" /boot/efi/initrd.img && umount /boot/efi')
        m.poweroff()

    with vm.phase("boot 5: the predicted token opens, no prompt; the old token retired"):
        m = vm.tpm_boot(work, f"{NAME}-5-predicted", "prompted after a predicted initramfs update", PROMPTS)
        assert pcr9_before != m.pcr(9), "PCR 9 did not change with the initramfs"
        vm.check_predicted(m, "initrd")
        m.poweroff()

    with vm.phase("setup: a crashing unlockd in the image"):
        fake = os.path.join(work, "fault-unlockd")
        subprocess.run(["gcc", "-O2", "-Wall", "-o", fake, os.path.join(vm.HERE, "fault-unlockd.c")], check=True)
        vm.setup("initrd", work, "crash", env={"UNLOCKD_BINARY": fake})

    with vm.phase("boot 6: unlockd crashes; cryptroot's prompt, the passphrase"):
        m = vm.VM(work, f"{NAME}-6-crash", extra_args=["-smbios", "type=11,value=unlockd-vm-fault=crash"]).start()
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
