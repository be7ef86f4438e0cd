#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The whole story on a real kernel, with a dracut (systemd) initramfs:

1. boot with a passphrase; in the booted system enroll TPM2 (PCRs 4+9) and a
   recovery key;
2. boot: the TPM unlocks the root with no prompt; `unlockctl status` says
   tpm2; `unlockctl drill` (the volumes of this boot's state.json);
3. boot, the recovery drill: the TPM is not asked, the prompt on the serial
   console says it is a drill; the recovery key opens; state.json says
   drill, re-seal none; no job, the keyslots and the TPM token as they were;
   `unlockctl status` shows the passed drill; then a planned update, as a
   distribution makes it in the booted system: with the ESP mounted on
   /boot/efi, a new initramfs, built by dracut in the booted system as a
   kernel or dracut update does (on Debian 13: the old one with one more
   cpio archive), is predicted (`unlockctl reseal --predict --initrd=`)
   and installed;
4. boot: the TPM unlocks with no prompt (the drill was once), with the
   predicted token; the re-seal service retires the old token; then a new
   boot loader (systemd-boot with a different Authenticode digest: two
   bytes of its .sdmagic section changed, as a new build would differ) and a new kernel command line are predicted and installed;
5. boot: the TPM unlocks with no prompt again (PCRs 4, 9 and 12 changed);
6. an unpredicted change: the initramfs rebuilt on the host (harmless
   change, PCR 9 changes; the ESP rewritten, PCR 4 too), boot: the prompt
   appears on the serial console saying why; a wrong key is refused; the
   recovery key opens; the re-seal service runs and reports success;
7. boot: the TPM unlocks again with no prompt.

The steps shared with test-initramfs-tools.py are in vm.py.

With UNLOCKD_VM_RELEASE=trixie (the test test-dracut-trixie) the disk is
Debian 13's: its kernel, systemd 257, dracut, systemd-boot, and unlockd
built inside that tree. There the story is boots 1, 2, 6 and 7 (enroll,
TPM unlock, an unpredicted change with the recovery prompt and the
re-seal, TPM unlock again): 4 boots instead of 7. UNLOCKD_VM_STORY=full
tells the whole story on either release.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vm  # noqa: E402

RELEASE = vm.RELEASE
FULL = RELEASE == "bookworm" or os.environ.get("UNLOCKD_VM_STORY") == "full"
# The boots' names (serial logs in $UNLOCKD_VM_ARTIFACTS): dracut-N-...,
# trixie-dracut-N-... on Debian 13.
NAME = "dracut" if RELEASE == "bookworm" else f"{RELEASE}-dracut"


def story():
    work, uuid = vm.make_disk("unlockd-vm." if RELEASE == "bookworm" else f"unlockd-vm-{RELEASE}.")
    if RELEASE != "bookworm":
        # The image is the release's own: its kernel, systemd and unlockd
        # built against its libraries.
        ver = open(os.path.join(work, "release")).read().strip()
        assert ver == RELEASE, f"setup made a {ver} disk"

    # Boot 1: no TPM token yet: unlockd asks; the passphrase opens.
    m = vm.passphrase_boot(work, f"{NAME}-1-enroll")
    key = vm.enroll(m, uuid)
    m.poweroff()

    # Boot 2: the TPM unlocks, no prompt.
    m = vm.tpm_boot(work, f"{NAME}-2-tpm", "prompted although the TPM should unlock")
    if RELEASE != "bookworm":
        _, out = m.run("uname -r; systemctl --version | head -n 1; cryptsetup --version; "
                       "dpkg-query -W -f='${Version}\\n' libtss2-esys-3.0.2-0t64")
        vm.progress(f"{RELEASE}: {' / '.join(out.split(chr(10)))}")
        assert RELEASE != "trixie" or "systemd 257" in out, f"not Debian 13's systemd: {out}"
    pcr9_before = m.pcr(9)
    before = vm.volume_status(m)
    if not FULL:
        m.poweroff()
        recovery_and_again(work, key)
        return
    _, out = m.run("unlockctl drill 2>&1")
    assert "recovery drill set up" in out, out
    m.poweroff()

    # Boot 3: the recovery drill, in the boot after `unlockctl drill` (the
    # drill shares the TPM boot before it and the recovery boot after it:
    # the reason there shows the TPM asked again).
    m = vm.VM(work, f"{NAME}-3-drill").start()
    mark = m.mark()
    m.expect(r"This is a recovery drill requested with 'unlockctl drill' for \S+ \([-0-9a-f]+\): the TPM was not asked",
             240, "the drill's message")
    m.expect(vm.PROMPT, 60, "the prompt")
    m.send(key + "\r")
    m.shell_ready()
    assert "changed since sealing" not in m.since(mark), "the drill boot asked the TPM"
    st = vm.volume_status(m)
    boot = st["this-boot"]
    assert boot["method"] == "recovery-key" and boot["drill"] is True and boot["reseal"] == "none", st
    assert boot["tokens"] == [], st
    assert st.get("job") is None, st
    assert st["keyslots"] == before["keyslots"], (before, st)
    assert [t for t in st["tokens"] if t["type"] == "systemd-tpm2"] == \
        [t for t in before["tokens"] if t["type"] == "systemd-tpm2"], (before, st)
    assert st["drill-pending"] is False and st["last-drill"]["result"] == "recovery-key", st
    _, out = m.run("unlockctl status")
    assert "last drill passed: " in out and "with the recovery key" in out, out
    # A planned update: a new initramfs, predicted, then installed.
    m.run("mkdir -p /boot/efi && mount -t vfat /dev/vda1 /boot/efi")
    if RELEASE == "bookworm":
        # Rebuilt by dracut in the booted system, as a kernel or dracut
        # update does (the root filesystem holds dracut, the kernel's
        # modules and the host's options: setup's dracut_tree).
        _, out = m.run("dracut --force /run/new.img \"$(uname -r)\" 2>&1 | tail -n 2; "
                       "lsinitrd /run/new.img usr/bin/unlockd | head -c 200 | wc -c", timeout=1200)
        assert "Creating initramfs image file '/run/new.img' done" in out, f"dracut in the booted system: {out}"
        assert int(out.split()[-1]) > 0, f"the new initramfs has no unlockd: {out}"
        m.run("! cmp -s /run/new.img /boot/efi/initrd.img")
    else:
        # Debian 13's tree: the old image with one more cpio archive.
        m.run("cp /boot/efi/initrd.img /run/new.img && mkdir -p /run/x && echo planned > /run/x/unlockd-vm-planned "
              "&& (cd /run/x && echo ./unlockd-vm-planned | cpio -o -H newc 2>/dev/null) >> /run/new.img")
    _, out = m.run("unlockctl reseal --predict --initrd=/run/new.img 2>&1")
    assert "sealed keyslot" in out and "(new initrd)" in out, out
    m.run("cp /run/new.img /boot/efi/initrd.img && umount /boot/efi")
    m.poweroff()

    # Boot 4: the predicted token opens, no prompt; the old token retired.
    m = vm.tpm_boot(work, f"{NAME}-4-predicted", "prompted after a predicted initramfs update")
    assert pcr9_before != m.pcr(9), "PCR 9 did not change with the initramfs"
    vm.check_predicted(m, "initrd")
    # A new boot loader and kernel command line, predicted, then installed.
    m.run("mount -t vfat /dev/vda1 /boot/efi && cp /boot/efi/EFI/BOOT/BOOTX64.EFI /run/loader.efi "
          "&& LC_ALL=C sed -i 's/#### LoaderInfo: systemd-boot /#### LoaderInfo: systemd-b00t /' /run/loader.efi "
          "&& ! cmp -s /run/loader.efi /boot/efi/EFI/BOOT/BOOTX64.EFI")
    _, cmdline = m.run("cat /proc/cmdline")
    pcr4, pcr12 = m.pcr(4), m.pcr(12)
    _, out = m.run(f"unlockctl reseal --predict --boot-loader=/run/loader.efi --cmdline='{cmdline.strip()} unlockd.vm=2' 2>&1")
    assert "sealed keyslot" in out and "(new boot-loader+cmdline)" in out, out
    m.run("cp /run/loader.efi /boot/efi/EFI/BOOT/BOOTX64.EFI "
          "&& sed -i '/^options/s/[[:space:]]*$/ unlockd.vm=2/' /boot/efi/loader/entries/unlockd.conf && umount /boot/efi")
    m.poweroff()

    # Boot 5: the TPM unlocks with no prompt, through the new prediction.
    m = vm.tpm_boot(work, f"{NAME}-5-predicted", "prompted after a predicted boot loader and command line update")
    assert m.pcr(4) != pcr4 and m.pcr(12) != pcr12, "PCRs 4 and 12 did not change"
    vm.check_predicted(m, "boot-loader+cmdline")
    m.poweroff()
    recovery_and_again(work, key)


def recovery_and_again(work, key):
    # The "package upgrade" nobody predicted: the initramfs rebuilt on the
    # host, the ESP rewritten.
    vm.setup("initrd", work, "2")

    # Boot 6: the PCRs changed: the prompt says why; wrong key, then the right one.
    m = vm.VM(work, f"{NAME}-6-recovery").start()
    vm.recover(m, key, reason=r"PCR [0-9+]*9 changed since sealing")
    # The re-seal service runs in the booted system.
    vm.check_resealed(m)
    m.poweroff()

    # Boot 7: the TPM unlocks again, no prompt.
    m = vm.tpm_boot(work, f"{NAME}-7-tpm-again", "prompted after the re-seal")
    # `unlockctl reseal --via-service` starts the unit over D-Bus and
    # returns its result: success here (no job: the unit's condition
    # skips it), failure when the unit cannot run.
    m.run("unlockctl reseal --via-service")
    m.run("systemctl mask -q --runtime unlockd-reseal.service")
    rc, out = m.run("unlockctl reseal --via-service", check=False)
    assert rc != 0, f"--via-service reported success for a masked unit: {out}"
    m.poweroff()


if __name__ == "__main__":
    vm.run_story(story)
