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
"""
import json
import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vm  # noqa: E402

PROMPT = r"Recovery key or passphrase\)?: "
PASSPHRASE = "vm test passphrase"


def main():
    miss = vm.missing_tools()
    if miss:
        print(f"SKIP: missing {', '.join(miss)} (tests/vm/setup --deps-only installs them)")
        return 77
    if os.geteuid() != 0:
        print("SKIP: the VM suite builds images with debootstrap and needs root")
        return 77
    os.makedirs(vm.CACHE, exist_ok=True)
    work = tempfile.mkdtemp(prefix="unlockd-vm.", dir=os.environ.get("UNLOCKD_VM_WORK", vm.CACHE))
    passfile = os.path.join(work, "pass")
    with open(passfile, "w") as f:
        f.write(PASSPHRASE)
    vm.setup("disk", work, passfile)
    if open(os.path.join(work, "unlockd")).read().strip() == "absent":
        raise vm.VMError("the disk was made without unlockd: it could not be built or installed "
                         "(setup's messages above say why)")
    uuid = open(os.path.join(work, "uuid")).read().strip()
    ok = False
    try:
        # Boot 1: no TPM token yet: unlockd asks; the passphrase opens.
        m = vm.VM(work, "dracut-1-enroll")
        m.start()
        m.expect(r"has no TPM2 token|no TPM2 token", 240, "unlockd saying there is no TPM2 token")
        m.expect(PROMPT, 60, "the prompt")
        m.send(PASSPHRASE + "\r")
        m.shell_ready()
        m.run(f"printf '%s' '{PASSPHRASE}' > /run/pass")
        rc, out = m.run("unlockctl enroll --tpm2 --pcrs=4+9 --recovery-key --unlock-key-file=/run/pass "
                        f"/dev/disk/by-uuid/{uuid} 2>/dev/null")
        key = re.search(r"([cbdefghijklnrtuv]{8}-){7}[cbdefghijklnrtuv]{8}", out)
        assert key, f"no recovery key printed: {out}"
        key = key.group(0)
        m.run("rm /run/pass")
        _, st = m.run("unlockctl status --json")
        s = json.loads(st)
        assert s["volumes"][0]["this-boot"]["method"] == "passphrase", st
        m.poweroff()

        # Boot 2: the TPM unlocks, no prompt.
        m = vm.VM(work, "dracut-2-tpm")
        m.start()
        mark = m.mark()
        m.shell_ready()
        assert "Recovery key or passphrase" not in m.since(mark), "prompted although the TPM should unlock"
        _, st = m.run("unlockctl status --json")
        s = json.loads(st)
        assert s["volumes"][0]["this-boot"]["method"] == "tpm2", st
        _, pcr9_before = m.run("cat /sys/class/tpm/tpm0/pcr-sha256/9")
        m.poweroff()

        # The "package upgrade": a harmless change to the initramfs.
        vm.setup("initrd", work, "2")

        # Boot 3: PCR 9 changed: the prompt says why; wrong key, then the right one.
        m = vm.VM(work, "dracut-3-recovery")
        m.start()
        m.expect(r"PCR 9 changed since sealing", 240, "the reason (PCR 9 changed)")
        m.expect(PROMPT, 60, "the prompt")
        m.send("cbdefghi-jklnrtuv-cbdefghi-jklnrtuv-cbdefghi-jklnrtuv-cbdefghi-jklnrtuv\r")
        m.expect(r"did not unlock it\. Try again", 120, "the wrong key refused")
        m.expect(PROMPT, 30, "the prompt again")
        m.send(key + "\r")
        m.shell_ready()
        _, pcr9_after = m.run("cat /sys/class/tpm/tpm0/pcr-sha256/9")
        assert pcr9_before != pcr9_after, "PCR 9 did not change with the initramfs"
        # The re-seal service runs in the booted system.
        m.run("for i in $(seq 120); do systemctl is-active -q unlockd-reseal.service || "
              "[ \"$(systemctl show -P ExecMainStatus unlockd-reseal.service)\" = '' ] || break; sleep 1; done; true")
        m.run("systemctl show -P Result unlockd-reseal.service | grep -qx success", timeout=150)
        _, journal = m.run("journalctl -b -u unlockd-reseal.service --no-pager -o cat")
        assert "re-sealed keyslot" in journal and "verified by unsealing" in journal, journal
        _, st = m.run("unlockctl status --json")
        s = json.loads(st)
        assert s["volumes"][0]["this-boot"]["method"] == "recovery-key", st
        assert s["volumes"][0].get("job") is None, st
        m.poweroff()

        # Boot 4: the TPM unlocks again, no prompt.
        m = vm.VM(work, "dracut-4-tpm-again")
        m.start()
        mark = m.mark()
        m.shell_ready()
        assert "Recovery key or passphrase" not in m.since(mark), "prompted after the re-seal"
        _, st = m.run("unlockctl status --json")
        s = json.loads(st)
        assert s["volumes"][0]["this-boot"]["method"] == "tpm2", st
        # `unlockctl reseal --via-service` starts the unit over D-Bus and
        # returns its result: success here (no job: the unit's condition
        # skips it), failure when the unit cannot run.
        m.run("unlockctl reseal --via-service")
        m.run("systemctl mask -q --runtime unlockd-reseal.service")
        rc, out = m.run("unlockctl reseal --via-service", check=False)
        assert rc != 0, f"--via-service reported success for a masked unit: {out}"
        m.poweroff()
        ok = True
        vm.progress("PASS")
        return 0
    finally:
        try:
            m.kill()
        except Exception:
            pass
        if ok and not os.environ.get("UNLOCKD_VM_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
        elif not ok:
            vm.progress(f"failed; serial logs in {vm.ARTIFACTS}, work dir {work}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (vm.VMError, AssertionError) as e:
        print(f"FAIL: {e}", flush=True)
        sys.exit(1)
