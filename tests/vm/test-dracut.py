#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The whole story on a real kernel, with a dracut (systemd) initramfs:

1. boot with a passphrase; in the booted system enroll TPM2 (PCRs 4+9) and a
   recovery key;
2. boot: the TPM unlocks the root with no prompt; `unlockctl status` says tpm2;
3. rebuild the initramfs with a harmless change (PCR 9 changes), boot: the
   prompt appears on the serial console saying why; a wrong key is refused;
   the recovery key opens; the re-seal service runs and reports success;
4. boot: the TPM unlocks again with no prompt.

The steps shared with test-initramfs-tools.py are in vm.py.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vm  # noqa: E402


def story():
    work, uuid = vm.make_disk("unlockd-vm.")

    # Boot 1: no TPM token yet: unlockd asks; the passphrase opens.
    m = vm.VM(work, "dracut-1-enroll").start()
    m.expect(r"has no TPM2 token|no TPM2 token", 240, "unlockd saying there is no TPM2 token")
    m.expect(vm.PROMPT, 60, "the prompt")
    m.send(vm.PASSPHRASE + "\r")
    m.shell_ready()
    key = vm.enroll(m, uuid)
    m.poweroff()

    # Boot 2: the TPM unlocks, no prompt.
    m = vm.tpm_boot(work, "dracut-2-tpm", "prompted although the TPM should unlock")
    pcr9_before = m.pcr(9)
    m.poweroff()

    # The "package upgrade": a harmless change to the initramfs.
    vm.setup("initrd", work, "2")

    # Boot 3: PCR 9 changed: the prompt says why; wrong key, then the right one.
    m = vm.VM(work, "dracut-3-recovery").start()
    vm.recover(m, key)
    assert pcr9_before != m.pcr(9), "PCR 9 did not change with the initramfs"
    # The re-seal service runs in the booted system.
    vm.check_resealed(m)
    m.poweroff()

    # Boot 4: the TPM unlocks again, no prompt.
    m = vm.tpm_boot(work, "dracut-4-tpm-again", "prompted after the re-seal")
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
