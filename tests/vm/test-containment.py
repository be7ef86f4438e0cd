#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A broken unlockd cannot lock the admin out: with unlockd crashing or
hanging in the initrd, the boot still reaches systemd-cryptsetup's own
passphrase prompt, the recovery key and the passphrase still open the root,
and the time to that prompt is bounded.

The initramfs holds, in unlockd's place (the dracut module's UNLOCKD_BINARY
override), tests/vm/fault-unlockd.c: per boot, an SMBIOS OEM string from
QEMU makes it crash (SIGSEGV) or hang (ignoring SIGTERM, never notifying
systemd). A test-only drop-in lowers the unit's TimeoutStartSec= from 90 s
to 20 s, to keep the test short; TimeoutStopSec= (10 s, then SIGKILL) is the
production value.

1. crash: the prompt follows at once; the recovery key (a systemd-format key
   in its own keyslot, added on the host) opens the root; the journal shows
   the SIGSEGV;
2. hang: systemd-cryptsetup waits for unlockd.service (it is ordered before
   cryptsetup-pre.target), which is terminated at TimeoutStartSec= and
   killed TimeoutStopSec= later; then the prompt; the passphrase opens.
"""
import json
import os
import re
import secrets
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vm  # noqa: E402

SYSTEMD_PROMPT = r"Please enter passphrase (or recovery key )?for disk [^\r\n]*:"
STARTING = r"Starting \S*unlockd\.service"
START_TIMEOUT = 20      # the test's drop-in
STOP_TIMEOUT = 10       # units/unlockd.service.in
LUKS_HEADER_MB = 16     # luksFormat's default LUKS2 header + keyslot area

MODULE_SETUP = """#!/bin/bash
# Test only: a drop-in for unlockd.service (tests/vm/test-containment.py).
check() { return 255; }
depends() { echo unlockd; }
install() {
        inst_simple "$moddir/timeout.conf" "$systemdsystemunitdir/unlockd.service.d/50-vm-containment.conf"
}
"""


def recovery_key():
    """A systemd-format recovery key: 32 random bytes in modhex, 8 groups."""
    alphabet = "cbdefghijklnrtuv"
    s = "".join(alphabet[b >> 4] + alphabet[b & 15] for b in secrets.token_bytes(32))
    return "-".join(s[i:i + 8] for i in range(0, 64, 8))


def add_recovery_key(work, key):
    """Adds key as a keyslot (and a systemd-recovery token) to the disk's
    LUKS2 header, on the host: the header is cut out of disk.img, changed
    by cryptsetup, and written back. PBKDF2 with 1000 iterations, as for
    the test passphrase, so TCG boots are not slow."""
    disk, hdr = os.path.join(work, "disk.img"), os.path.join(work, "header.img")
    keyfile = os.path.join(work, "recovery-key")
    with open(keyfile, "w") as f:
        f.write(key)
    run = lambda *a, **kw: subprocess.run(list(a), check=True, **kw)  # noqa: E731
    # The LUKS2 partition: the second of the GPT (tests/vm/setup).
    table = json.loads(run("sfdisk", "--json", disk, capture_output=True).stdout)["partitiontable"]
    start = table["partitions"][1]["start"] * table.get("sectorsize", 512)
    assert start % (1 << 20) == 0, f"the LUKS2 partition starts at {start}, not on a MiB"
    off = start >> 20
    run("dd", f"if={disk}", f"of={hdr}", "bs=1M", f"skip={off}", f"count={LUKS_HEADER_MB}", "status=none")
    uuid = run("cryptsetup", "luksUUID", hdr, capture_output=True, text=True).stdout.strip()
    assert uuid == open(os.path.join(work, "uuid")).read().strip(), f"not the disk's LUKS2 header: {uuid}"
    run("cryptsetup", "luksAddKey", "--batch-mode", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
        "--key-slot", "1", "--key-file", os.path.join(work, "pass"), hdr, keyfile)
    run("cryptsetup", "token", "import", hdr, input=b'{"type":"systemd-recovery","keyslots":["1"]}')
    run("dd", f"if={hdr}", f"of={disk}", "bs=1M", f"seek={off}", "conv=notrunc", "status=none")
    os.unlink(hdr)


def journal(m, match):
    """[(seconds since boot, message)] of this boot's journal entries that
    match (journalctl arguments, e.g. "-u unlockd.service")."""
    _, out = m.run(f"journalctl -b -o short-monotonic --no-pager {match}")
    res = []
    for line in out.splitlines():
        g = re.match(r"\[\s*([0-9.]+)\] \S+ [^:]+: (.*)", line)
        if g:
            res.append((float(g.group(1)), g.group(2)))
    return res


def first(entries, pattern):
    for t, msg in entries:
        if re.search(pattern, msg):
            return t
    raise AssertionError(f"no journal entry matching {pattern!r} in:\n" +
                         "\n".join(f"{t:10.3f} {msg}" for t, msg in entries))


def boot(work, name, fault, secret, uuid):
    """Boots with fault, types secret at systemd-cryptsetup's prompt;
    returns (host seconds from unlockd's start to the prompt, the journal
    of unlockd.service, of the console password agent)."""
    m = vm.VM(work, name, extra_args=["-smbios", f"type=11,value=unlockd-vm-fault={fault}"]).start()
    m.expect(STARTING, 240, "unlockd.service starting")
    t0 = time.monotonic()
    m.expect(SYSTEMD_PROMPT, START_TIMEOUT + STOP_TIMEOUT + 120, "systemd-cryptsetup's prompt")
    waited = time.monotonic() - t0
    vm.progress(f"{name}: systemd-cryptsetup asked {waited:.1f}s after unlockd.service started")
    m.send(secret + "\r")
    m.shell_ready(240)
    _, src = m.run("findmnt -n -o SOURCE /")
    assert src.strip() == f"/dev/mapper/luks-{uuid}", src
    unit = journal(m, "-u unlockd.service")
    agent = journal(m, "-t systemd-tty-ask-password-agent")
    want = "crashing" if fault == "crash" else "hanging"
    assert any(f"unlockd-vm-fault: {want}" in msg for _, msg in unit), unit
    m.poweroff()
    return waited, unit, agent


def story():
    with vm.phase("setup: root filesystem, LUKS2 disk"):
        work, uuid = vm.make_disk("containment.")

    with vm.phase("setup: recovery key, stand-in unlockd, initramfs"):
        key = recovery_key()
        add_recovery_key(work, key)
        fake = os.path.join(work, "fault-unlockd")
        subprocess.run(["gcc", "-O2", "-Wall", "-Werror", "-o", fake,
                        os.path.join(vm.HERE, "fault-unlockd.c")], check=True)
        mod = os.path.join(work, "dracut-base", "modules.d", "99unlockd-vm-containment")
        os.makedirs(mod)
        with open(os.path.join(mod, "module-setup.sh"), "w") as f:
            f.write(MODULE_SETUP)
        os.chmod(os.path.join(mod, "module-setup.sh"), 0o755)
        with open(os.path.join(mod, "timeout.conf"), "w") as f:
            f.write(f"[Service]\nTimeoutStartSec={START_TIMEOUT}s\n")
        # dracut sources its configuration: the module's override of
        # the binary, and the test module.
        with open(os.path.join(work, "dracut.conf.d", "50-containment.conf"), "w") as f:
            f.write(f'UNLOCKD_BINARY="{fake}"\nadd_dracutmodules+=" unlockd-vm-containment "\n')
        vm.setup("initrd", work, "containment")
        assert "unlockd-vm-fault=" in vm.lsinitrd(work, "-f", "usr/bin/unlockd"), \
            "the stand-in is not in the initramfs"
        u = vm.lsinitrd(work, "-f", "usr/lib/systemd/system/unlockd.service")
        assert re.search(r"^TimeoutStartSec=90s$", u, re.M) and re.search(rf"^TimeoutStopSec={STOP_TIMEOUT}s$", u, re.M), u

    with vm.phase("boot 1: unlockd crashes; the recovery key at systemd-cryptsetup's prompt"):
        waited, unit, agent = boot(work, "containment-1-crash", "crash", key, uuid)
        start = first(unit, r"^Starting unlockd")
        dead = first(unit, r"Main process exited, code=(killed|dumped), status=11/SEGV")
        asked = first(agent, r"Starting password query")
        vm.progress(f"crash: unlockd died {dead - start:.1f}s after its start; "
                    f"the prompt came {asked - dead:.1f}s later (guest clock)")
        assert asked - start < 15, f"the prompt came {asked - start:.1f}s after unlockd started"
        assert waited < 60, f"the prompt came {waited:.1f}s (host clock) after unlockd started"

    with vm.phase("boot 2: unlockd hangs; the passphrase at systemd-cryptsetup's prompt"):
        waited, unit, agent = boot(work, "containment-2-hang", "hang", vm.PASSPHRASE, uuid)
        start = first(unit, r"^Starting unlockd")
        term = first(unit, r"start operation timed out\. Terminating")
        kill = first(unit, r"State 'stop-sigterm' timed out\. Killing")
        first(unit, r"Failed with result 'timeout'")
        asked = first(agent, r"Starting password query")
        vm.progress(f"hang: SIGTERM {term - start:.1f}s, SIGKILL {kill - start:.1f}s, "
                    f"prompt {asked - start:.1f}s after unlockd's start (guest clock)")
        assert START_TIMEOUT - 1 <= term - start <= START_TIMEOUT + 3, (start, term)
        assert STOP_TIMEOUT - 1 <= kill - term <= STOP_TIMEOUT + 3, (term, kill)
        assert 0 <= asked - kill < 10, (kill, asked)
        bound = START_TIMEOUT + STOP_TIMEOUT
        assert waited < bound + 60, f"the prompt came {waited:.1f}s (host clock) after unlockd started"


if __name__ == "__main__":
    vm.run_story(story)
