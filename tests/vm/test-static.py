#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A static unlockd (-Dstatic=true, README "A static unlockd") in both
initramfs flavours. Registered only in a static build (tests/vm/meson.build),
whose unlockd it boots: `meson test -C build-static --suite vm test-static`.

For each flavour, dracut (the build's `meson install`, its 90unlockd module)
and initramfs-tools (this tree's Debian packages, with the static binary in
unlockd's place through the hook's UNLOCKD_BINARY override):

0. the image's unlockd is the build's static executable (its build ID; no
   program interpreter), and the image has no TCTI library that the
   hook or module would have copied for a dynamic one;
1. no TPM2 token yet: the static unlockd asks; the passphrase opens; in the
   booted system enroll TPM2 (PCRs 4+9) and a recovery key;
2. boot: the static unlockd's TPM unlock, its device TCTI linked in; no
   prompt, neither unlockd's nor cryptroot's.
"""
import glob
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vm  # noqa: E402

BUILD = os.environ.get("UNLOCKD_BUILD_DIR", "")
CRYPTROOT_PROMPT = "Please unlock disk"
PROMPTS = ("Recovery key or passphrase", CRYPTROOT_PROMPT)


def static_binary():
    """The build's unlockd, checked to be a static executable."""
    path = os.path.join(BUILD, "agent", "unlockd")
    if not os.path.isfile(path):
        raise vm.VMError(f"no {path}: UNLOCKD_BUILD_DIR is not a built static build")
    check_static(path, "the build's unlockd")
    return path


def check_static(path, what):
    """Fails unless path is an ELF executable without a program interpreter
    (PT_INTERP) nor a dynamic section: nothing for ld.so to load."""
    out = subprocess.run(["readelf", "-lW", path], capture_output=True, text=True, check=True).stdout
    assert "Elf file type is EXEC" in out or "Elf file type is DYN" in out, f"{what}: not an ELF executable"
    assert "INTERP" not in out and "DYNAMIC" not in out, f"{what} is dynamically linked:\n{out}"


def build_id(path):
    out = subprocess.run(["readelf", "-n", path], capture_output=True, text=True, check=True).stdout
    m = re.search(r"Build ID: ([0-9a-f]+)", out)
    assert m, f"{path} has no build ID"
    return m.group(1)


def image_files(work, flavour):
    """Unpacks work's initramfs; returns (its root dir, the relative paths)."""
    dest = tempfile.mkdtemp(prefix="image.", dir=work)
    img = os.path.join(work, "initrd.img")
    if flavour == "dracut":
        subprocess.run(["lsinitrd", "--unpack", img], cwd=dest, check=True, capture_output=True)
        root = dest
    else:
        subprocess.run(["unmkinitramfs", img, dest], check=True, capture_output=True)
        # An early (microcode) archive puts the main one in main/.
        root = os.path.join(dest, "main") if os.path.isdir(os.path.join(dest, "main")) else dest
    files = [os.path.relpath(p, root) for p in glob.glob(os.path.join(root, "**"), recursive=True)]
    return root, files


def check_image(work, flavour, binary):
    root, files = image_files(work, flavour)
    exe = os.path.join(root, "usr/bin/unlockd")
    assert os.path.isfile(exe), f"{flavour}: no usr/bin/unlockd in the initramfs"
    check_static(exe, f"{flavour}: the initramfs's unlockd")
    # dracut strips what it installs: the build ID says it is the same.
    assert build_id(exe) == build_id(binary), f"{flavour}: the initramfs's unlockd is not the build's static one"
    tcti = [f for f in files if "libtss2-tcti" in f or "libtss2-tctildr" in f]
    assert not tcti, f"{flavour}: a TCTI library was copied beside the static unlockd: {tcti}"
    vm.progress(f"{flavour}: the image's unlockd is the static build's ({os.path.getsize(exe) >> 10} KiB), no TCTI library")


def flavour(name, binary, *setup_args, env=None):
    with vm.phase(f"{name}: setup (disk, initramfs with the static unlockd)"):
        work, uuid = vm.make_disk(f"static-{name}.", *setup_args, env=env)
        check_image(work, name, binary)

    with vm.phase(f"{name} boot 1: the static unlockd's prompt, the passphrase; enroll"):
        m = vm.passphrase_boot(work, f"static-{name}-1")
        assert CRYPTROOT_PROMPT not in m.since(0), "cryptroot asked after unlockd had opened the root"
        vm.enroll(m, uuid)
        m.poweroff()

    with vm.phase(f"{name} boot 2: the static unlockd's TPM unlock, no prompt"):
        m = vm.tpm_boot(work, f"static-{name}-2", "prompted although the TPM should unlock", PROMPTS)
        m.poweroff()


def story():
    binary = static_binary()
    flavour("dracut", binary, "--build-dir", BUILD)
    flavour("initramfs-tools", binary, "--initramfs-tools", env={"UNLOCKD_BINARY": binary})


if __name__ == "__main__":
    vm.run_story(story)
