#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A volume enrolled on Debian 12 keeps opening after the root filesystem
is upgraded to Debian 13 (same disk, same LUKS2 header, same TPM; a new
root), with a dracut initramfs, re-seal included:

1. Debian 12 (systemd 252): the passphrase opens; `unlockctl enroll --tpm2
   --pcrs=4+9 --recovery-key` by Debian 12's unlockd;
2. Debian 12: the TPM unlocks with no prompt;
3. `setup upgrade`: the root filesystem replaced by Debian 13's with
   unlockd built there, Debian 13's kernel, dracut image and systemd-boot
   on the ESP (PCRs 4 and 9 change, as an unpredicted kernel update
   changes them). Debian 13's unlockd reads the token Debian 12's sealed,
   says PCR 4+9 changed, a wrong key is refused, the recovery key opens;
   the booted system is Debian 13 (systemd 257); Debian 13's
   unlockd-reseal.service re-seals;
4. Debian 13: the TPM unlocks with no prompt through the re-sealed
   token. Then the TPM2 keyslots go (systemd 257's `systemd-cryptenroll
   --wipe-slot=tpm2`) and Debian 13's `unlockctl enroll --tpm2 --pcrs=4+9`
   enrolls a new token;
5. Debian 13: the TPM unlocks with no prompt through that token.

With test-interop-trixie (whose first boot is Debian 13's unlockd asking
on a volume with no token, the passphrase opening it) this is the whole
dracut story on Debian 13 — enroll, TPM unlock, a PCR change, the recovery
prompt, the re-seal, TPM unlock again — told in boots the upgrade needs
anyway (test-dracut-trixie tells it alone, in suite vm-extra). 5 boots,
three of them Debian 13's (slower under TCG). Suites vm and vm-trixie."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The disk must hold Debian 13's root filesystem after the upgrade.
os.environ["UNLOCKD_VM_ROOT_MB"] = os.environ.get("UNLOCKD_VM_ROOT_MB") or "1200"
os.environ["UNLOCKD_VM_RELEASE"] = "bookworm"
import vm  # noqa: E402

TRIXIE_TIMEOUT = 900


def versions(m):
    _, out = m.run("systemctl --version | head -n 1; . /etc/os-release; echo $VERSION_ID")
    return out


def story():
    work, uuid = vm.make_disk("unlockd-vm-upgrade.")

    with vm.phase("Debian 12 boot 1: passphrase, enroll PCRs 4+9"):
        m = vm.passphrase_boot(work, "upgrade-1-enroll")
        out = versions(m)
        assert "systemd 252" in out and out.split()[-1] == "12", out
        key = vm.enroll(m, uuid)
        m.poweroff()

    with vm.phase("Debian 12 boot 2: the TPM unlocks"):
        m = vm.tpm_boot(work, "upgrade-2-tpm", "prompted on Debian 12 although the TPM should unlock")
        before = vm.volume_status(m)
        m.poweroff()

    with vm.phase("setup upgrade: Debian 13's root filesystem, kernel and initramfs"):
        vm.setup("upgrade", work, os.path.join(work, "pass"))

    with vm.phase("Debian 13 boot 3: PCRs 4+9 changed, recovery key, re-seal"):
        m = vm.VM(work, "upgrade-3-trixie-recovery").start()
        vm.recover(m, key, reason=r"PCR 4\+9 changed since sealing", timeout=TRIXIE_TIMEOUT)
        out = versions(m)
        assert "systemd 257" in out and out.split()[-1] == "13", f"not Debian 13 after the upgrade: {out}"
        st = vm.volume_status(m)
        assert st["this-boot"]["method"] == "recovery-key", st
        vm.check_resealed(m)
        # The passphrase and the recovery key Debian 12 enrolled are kept
        # through the re-seal; the TPM2 keyslot is a new one.
        st = vm.volume_status(m)
        kept = [k for k in before["keyslots"] if k["kind"] in ("passphrase", "recovery-key")]
        assert len(kept) == 2 and all(k in st["keyslots"] for k in kept), (before, st)
        assert sorted(k["kind"] for k in st["keyslots"]) == ["passphrase", "recovery-key", "tpm2"], st
        m.poweroff()

    with vm.phase("Debian 13 boot 4: the TPM unlocks again; Debian 13's unlockctl enrolls a new token"):
        m = vm.tpm_boot(work, "upgrade-4-trixie-tpm", "prompted on Debian 13 after the re-seal",
                        timeout=TRIXIE_TIMEOUT)
        out = versions(m)
        assert "systemd 257" in out, out
        dev = f"/dev/disk/by-uuid/{uuid}"
        m.run(f"systemd-cryptenroll --wipe-slot=tpm2 {dev}")
        st = vm.volume_status(m)
        assert not [t for t in st["tokens"] if t["type"] == "systemd-tpm2"], st
        m.run(f"printf '%s' '{vm.PASSPHRASE}' > /run/pass")
        m.run(f"unlockctl enroll --tpm2 --pcrs=4+9 --unlock-key-file=/run/pass {dev}")
        m.run("rm /run/pass")
        st = vm.volume_status(m)
        new = [t["token"] for t in st["tokens"] if t["type"] == "systemd-tpm2"]
        assert len(new) == 1, st
        assert sorted(k["kind"] for k in st["keyslots"]) == ["passphrase", "recovery-key", "tpm2"], st
        m.poweroff()

    with vm.phase("Debian 13 boot 5: the TPM unlocks with the token Debian 13 enrolled"):
        m = vm.tpm_boot(work, "upgrade-5-trixie-enrolled", "prompted on Debian 13 after its own enroll",
                        timeout=TRIXIE_TIMEOUT)
        st = vm.volume_status(m)
        assert st["this-boot"]["token"] == new[0], (new, st)
        m.poweroff()


if __name__ == "__main__":
    vm.run_story(story)
