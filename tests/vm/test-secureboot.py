#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""unlockd under Secure Boot, on a real kernel with a dracut initramfs:
OVMF's Secure Boot build with Microsoft's keys enrolled (OVMF_VARS_4M.ms.fd),
Debian's signed shim -> signed grub -> signed kernel (`setup disk
--secure-boot`). Three disks from one setup run (the second and third
copies of the first, made before any boot), six boots:

1. disk A, boot 1: no TPM2 token: the passphrase opens. The booted system
   says Secure Boot is on (the SecureBoot variable is 1, the kernel says
   "Secure boot enabled" and runs locked down); the firmware's event log,
   replayed, gives the TPM's PCR 7 and holds the Secure Boot events (the
   db authority that verified shim, shim's SbatLevel and the authority it
   verified grub with). `unlockctl enroll --tpm2 --pcrs=7+4` seals to the
   Secure Boot state and the signed boot chain, with a recovery key.
2. disk B, its first boot, provisioned offline as an image builder would:
   the test makes B's TPM (a new swtpm state) and its persistent SRK at
   0x81000001 as a hypervisor does, reads srk.pub with tpm2_readpublic, and
   seals B's key on the host with `unlockctl enroll --tpm2-device-key=srk.pub
   --pcrs=4+7 --failed-boot-options=1 --secure-boot-vars=OVMF_VARS.fd
   --boot-loader=shim --boot-loader=grub --kernel=vmlinuz` (no TPM
   reachable): PCR 7 predicted from B's variable store (a fresh copy of
   OVMF_VARS_4M.ms.fd, as A's was before its first boot) and the signed
   chain, PCR 4 from the chain's Authenticode digests and the boot order
   (q35's empty CD-ROM drive is tried before the disk: one failed boot
   option); `unlockctl predict` gives the values boot 1 measured, with PCR
   7 alone as with 4+7. The never-booted VM unlocks through the TPM
   (TPM2_Import of the offline blob) with no prompt.
   Disk C (a third copy, its own new TPM and SRK): the same provisioning
   by systemd 257's `systemd-cryptenroll --tpm2-device-key=srk.pub
   --tpm2-pcrs=7:sha256=HEX` (from the Debian 13 tree on the host,
   tests/interop/trixie-setup), PCR 7 as predicted: its first boot unlocks
   through unlockd and the TPM with no prompt.
3. disk A, boot 2: the TPM unlocks with no prompt under Secure Boot (PCR 7
   is the same although the variable store changed in boot 1: boot entries
   and shim's variables are not in PCR 7).
4. a Secure Boot change, as a hypervisor applies a dbx update to a VM's
   variable store while it is off: one more SHA-256 entry (of no image of
   the chain) appended to dbx in A's store. Disk A, boot 3: unlockd says
   PCR 7 changed and asks; a wrong key is refused, the recovery key opens;
   PCR 7 is what `unlockctl predict --secure-boot-vars=` computes from the
   updated store; unlockd-reseal.service re-seals to 7+4.
5. disk A, boot 4: the TPM unlocks with no prompt.
"""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vm  # noqa: E402

EVENTLOG = "/sys/kernel/security/tpm0/binary_bios_measurements"
SECUREBOOT_VAR = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
SRK_HANDLE = "0x81000001"
SHIM = "/usr/lib/shim/shimx64.efi.signed"
GRUB = "/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"
# OVMF's Secure Boot build runs its variable store in SMM, which TCG
# emulates slowly: a boot takes about twice as long as the other flavour's
# (and far longer on a loaded machine).
BOOT_TIMEOUT = 900


def check_secure_boot(m):
    """In the booted guest: Secure Boot is on, as the firmware and the
    kernel see it."""
    _, out = m.run(f"od -An -v -tx1 {SECUREBOOT_VAR}")
    assert out.split() == ["06", "00", "00", "00", "01"], f"SecureBoot variable: {out!r}"
    _, out = m.run("dmesg | grep -i 'secure boot'")
    assert "Secure boot enabled" in out, f"the kernel does not say Secure boot enabled: {out}"
    _, out = m.run("cat /sys/kernel/security/lockdown")
    assert re.search(r"\[(integrity|confidentiality)\]", out), f"the kernel is not locked down: {out}"
    vm.progress(f"guest: Secure Boot enabled; lockdown {out.strip()}")


def check_eventlog(m):
    """In the booted guest: the firmware's event log replays to the TPM's
    PCR 7 and holds the Secure Boot chain's events. Returns PCR 7 and 4."""
    pcr7, pcr4 = m.pcr(7), m.pcr(4)
    _, out = m.run(f"tpm2_eventlog {EVENTLOG}", timeout=300)
    names = set(re.findall(r"UnicodeName: (\S+)", out))
    for n in ("SecureBoot", "PK", "KEK", "db", "dbx", "SbatLevel"):
        assert n in names, f"no {n} event in the event log: {sorted(names)}"
    assert "MokListRT" in names or "Shim" in names, f"no shim authority event for grub: {sorted(names)}"
    assert out.count("EV_EFI_VARIABLE_AUTHORITY") >= 3, "fewer than 3 authority events"
    m7 = re.search(r"sha256:\s*(?:.*\n)*?\s*7\s*:\s*0x([0-9A-Fa-f]{64})", out[out.rfind("pcrs:"):])
    assert m7, f"tpm2_eventlog gives no PCR 7 replay: {out[-2000:]}"
    assert m7.group(1).lower() == pcr7, f"the event log replays PCR 7 to {m7.group(1)}, the TPM has {pcr7}"
    vm.progress(f"guest: event log replays to PCR 7 {pcr7}; PCR 4 {pcr4}")
    return pcr7, pcr4


def clone(work, prefix):
    """A copy of work's never-booted disk, with its own (absent) TPM state."""
    new = vm.new_workdir(prefix)
    for f in os.listdir(work):
        src = os.path.join(work, f)
        if f != "tpm" and os.path.isfile(src):
            subprocess.run(["cp", "--sparse=always", src, os.path.join(new, f)], check=True)
    return new


def boot_chain():
    """The signed images setup --secure-boot puts on the ESP, in load order
    (unlockctl's --boot-loader=... --kernel=)."""
    k = subprocess.run(["bash", "-c", "ls /lib/modules | sort -V | tail -n1"], capture_output=True, text=True,
                       check=True).stdout.strip()
    return [f"--boot-loader={SHIM}", f"--boot-loader={GRUB}", f"--kernel=/boot/vmlinuz-{k}"]


# The boot options OVMF tries and fails before the disk in vm.VM's q35: its
# default (empty) CD-ROM drive.
FAILED_BOOT_OPTIONS = "--failed-boot-options=1"


def predict(work, build, pcrs):
    """PCRs pcrs ("7" or "4+7") predicted on the host from work's variable
    store (never booted) and the signed boot chain, with neither TPM nor
    event log: {pcr: value}."""
    extra = [FAILED_BOOT_OPTIONS] if "4" in pcrs.split("+") else []
    r = subprocess.run([os.path.join(build, "agent", "unlockctl"), "predict",
                        f"--secure-boot-vars={os.path.join(work, 'OVMF_VARS.fd')}", *boot_chain(), f"--pcrs={pcrs}",
                        *extra, "--json"], capture_output=True, text=True)
    assert r.returncode == 0, f"unlockctl predict --secure-boot-vars --pcrs={pcrs} failed: {r.stderr}"
    j = json.loads(r.stdout)
    assert j["secure-boot"] is True, j
    return {p["pcr"]: p["predicted"].lower() for p in j["pcrs"]}


def make_srk(work):
    """As a hypervisor would: work's new TPM with its persistent SRK;
    returns srk.pub, read from it (tpm2_readpublic)."""
    srk_pub = os.path.join(work, "srk.pub")
    with vm.HostTPM(work, "secureboot-hypervisor") as tpm:
        env = {**os.environ, "TPM2TOOLS_TCTI": tpm.tcti}
        ctx = os.path.join(work, "srk.ctx")
        subprocess.run(["tpm2_createprimary", "-Q", "-C", "o", "-G", "ecc256:null:aes128cfb", "-c", ctx, "-a",
                        "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|decrypt|noda"],
                       env=env, check=True)
        subprocess.run(["tpm2_evictcontrol", "-Q", "-C", "o", "-c", ctx, SRK_HANDLE], env=env, check=True)
        subprocess.run(["tpm2_readpublic", "-Q", "-c", SRK_HANDLE, "-f", "tss", "-o", srk_pub], env=env, check=True)
    return srk_pub


def enroll_partition(work, enroll):
    """The LUKS2 partition (the GPT's second, as setup makes the disk) out
    of work's disk, as a file, given to enroll(path); its header written
    back. Returns what enroll returned."""
    disk = os.path.join(work, "disk.img")
    part = os.path.join(work, "luks.img")
    gpt = json.loads(subprocess.run(["sfdisk", "-J", disk], capture_output=True, check=True).stdout)
    p = gpt["partitiontable"]["partitions"][1]
    assert gpt["partitiontable"].get("sectorsize", 512) == 512 and p["type"] == "0FC63DAF-8483-4772-8E79-3D69D8477DE4", gpt
    offset = p["start"] * 512
    subprocess.run(["dd", f"if={disk}", f"of={part}", "bs=1M", "iflag=skip_bytes,count_bytes", f"skip={offset}",
                    f"count={p['size'] * 512}", "conv=sparse", "status=none"], check=True)
    meta = json.loads(subprocess.run(["cryptsetup", "luksDump", "--dump-json-metadata", part],
                                     capture_output=True, check=True).stdout)
    data_offset = int(meta["segments"]["0"]["offset"])
    ret = enroll(part)
    with open(part, "rb") as f, open(disk, "r+b") as d:
        d.seek(offset)
        d.write(f.read(data_offset))
    os.unlink(part)
    return ret


def provision_offline(work, build):
    """As a hypervisor and an image builder would: a new TPM with its SRK,
    srk.pub read from it, then the disk's key sealed on the host for that
    SRK and the PCRs 4 and 7 predicted from the variable store and the boot
    chain (enroll --secure-boot-vars=), with no TPM reachable. Returns the
    recovery key."""
    srk_pub = make_srk(work)
    no_tpm = f"swtpm:path={os.path.join(work, 'no-such-tpm')}"

    def enroll(part):
        r = subprocess.run([os.path.join(build, "agent", "unlockctl"), "enroll", f"--tcti={no_tpm}",
                            f"--unlock-key-file={os.path.join(work, 'pass')}", f"--tpm2-device-key={srk_pub}",
                            "--pcrs=4+7", FAILED_BOOT_OPTIONS,
                            f"--secure-boot-vars={os.path.join(work, 'OVMF_VARS.fd')}", *boot_chain(),
                            "--recovery-key", part],
                           capture_output=True, text=True)
        assert r.returncode == 0, f"offline enroll failed: {r.stderr}"
        key = re.search(vm.RECOVERY_KEY, r.stdout)
        assert key, f"no recovery key printed: {r.stdout}"
        return key.group(0)
    return enroll_partition(work, enroll)


def provision_systemd(work, pcr7):
    """The same provisioning by systemd 257's systemd-cryptenroll
    --tpm2-device-key=srk.pub --tpm2-pcrs=7:sha256=HEX, run in the Debian 13
    tree on the host (tests/interop/in-trixie: chroot, the work dir
    bind-mounted at its own path), PCR 7 as unlockctl predicted it. No TPM
    is reachable in the chroot."""
    srk_pub = make_srk(work)

    def enroll(part):
        r = subprocess.run(
            [os.path.join(vm.HERE, "..", "interop", "in-trixie"), os.path.abspath(work),
             "systemd-cryptenroll", f"--unlock-key-file={os.path.join(work, 'pass')}",
             f"--tpm2-device-key={srk_pub}", f"--tpm2-pcrs=7:sha256={pcr7}", part],
            capture_output=True, text=True, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SYSTEMD_LOG_LEVEL": "info"})
        assert r.returncode == 0, f"systemd-cryptenroll --tpm2-device-key failed: {r.stdout}{r.stderr}"
        meta = json.loads(subprocess.run(["cryptsetup", "luksDump", "--dump-json-metadata", part],
                                         capture_output=True, check=True).stdout)
        tokens = [t for t in meta["tokens"].values() if t["type"] == "systemd-tpm2"]
        assert len(tokens) == 1 and not any(k.startswith("unlockd-") for k in tokens[0]), tokens
        assert tokens[0].get("tpm2_srk") and tokens[0]["tpm2-pcrs"] == [7], tokens
        vm.progress(f"host: systemd 257's systemd-cryptenroll sealed offline: {r.stderr.strip().splitlines()[-1:]}")
    enroll_partition(work, enroll)


EFI_GLOBAL_VARIABLE = bytes.fromhex("61dfe48bca93d211aa0d00e098032b8c")        # 8be4df61-93ca-11d2-...
EFI_IMAGE_SECURITY_DATABASE = bytes.fromhex("cbb219d73a3d9645a3bcdad00e67656f")  # d719b2cb-3d3a-4596-...
EFI_CERT_SHA256 = bytes.fromhex("2616c4c14c509240aca941f936934328")              # c1c41626-504c-4092-...


def dbx_append(path, digest, owner=bytes(16)):
    """Appends one EFI_SIGNATURE_LIST of the SHA-256 digest to dbx in the
    EDK2 authenticated variable store path (OVMF_VARS.fd), as the firmware
    stores an append write: the live dbx entry marked deleted, a new one
    (same attributes, monotonic count, time stamp and key index; the old
    data, then the new list) written into the store's free space."""
    with open(path, "rb") as f:
        buf = bytearray(f.read())
    store = int.from_bytes(buf[48:50], "little")
    assert buf[store:store + 16] == bytes.fromhex("782cf3aa7b949a43a1802e144ec37792"), "not an authenticated store"
    end = store + int.from_bytes(buf[store + 16:store + 20], "little")
    off, live = (store + 28 + 3) & ~3, None
    while off + 60 <= end and buf[off:off + 2] == b"\xaa\x55":
        name_size = int.from_bytes(buf[off + 36:off + 40], "little")
        data_size = int.from_bytes(buf[off + 40:off + 44], "little")
        name = bytes(buf[off + 60:off + 60 + name_size]).decode("utf-16-le").rstrip("\0")
        if name == "dbx" and buf[off + 44:off + 60] == EFI_IMAGE_SECURITY_DATABASE and buf[off + 2] == 0x3f:
            live = (off, name_size, data_size)
        off = (off + 60 + name_size + data_size + 3) & ~3
    assert live, f"no live dbx variable in {path}"
    old, name_size, data_size = live
    esl = EFI_CERT_SHA256 + (28 + 48).to_bytes(4, "little") + bytes(4) + (48).to_bytes(4, "little") + owner + digest
    header = bytearray(buf[old:old + 60])
    header[40:44] = (data_size + len(esl)).to_bytes(4, "little")
    new = bytes(header) + buf[old + 60:old + 60 + name_size + data_size] + esl
    assert off + len(new) <= end and buf[off:off + len(new)] == b"\xff" * len(new), "no free space in the store"
    buf[off:off + len(new)] = new
    buf[old + 2] = 0x3c     # VAR_ADDED & VAR_IN_DELETED_TRANSITION & VAR_DELETED
    with open(path, "r+b") as f:
        f.write(buf)


def story():
    with vm.phase("setup: Secure Boot disk (shim, grub, signed kernel; Microsoft's keys)"):
        work_a, uuid = vm.make_disk("secureboot.", "--secure-boot")
        work_b = clone(work_a, "secureboot-offline.")
        work_c = clone(work_a, "secureboot-systemd.")
    # The host's unlockctl, from the build the disk got unlockd from
    # (without UNLOCKD_BUILD_DIR, setup's own build in the cache).
    build = os.environ.get("UNLOCKD_BUILD_DIR") or os.path.join(vm.CACHE, "build")
    if not os.access(os.path.join(build, "agent", "unlockctl"), os.X_OK):
        raise vm.VMError(f"no unlockctl in {build}/agent for the offline enrollment on the host")

    with vm.phase("disk A boot 1: passphrase under Secure Boot, event log, enroll PCR 7+4"):
        m = vm.passphrase_boot(work_a, "secureboot-1-enroll", timeout=BOOT_TIMEOUT)
        check_secure_boot(m)
        pcr7, pcr4 = check_eventlog(m)
        key_a = vm.enroll(m, uuid, pcrs="7+4")
        assert key_a
        _, out = m.run("unlockctl status --json")
        tpm = [t for t in json.loads(out)["volumes"][0]["tokens"] if t["type"] == "systemd-tpm2"]
        assert len(tpm) == 1 and tpm[0]["pcrs"] == [4, 7], tpm
        m.poweroff()

    with vm.phase("disk B: provisioned offline (SRK public key, predicted PCRs 4+7), first boot by TPM"):
        predicted = predict(work_b, build, "7")
        assert predicted == {7: pcr7}, f"PCR 7 predicted from the variable store: {predicted}, measured in boot 1: {pcr7}"
        predicted = predict(work_b, build, "4+7")
        assert predicted == {4: pcr4, 7: pcr7}, \
            f"PCRs 4+7 predicted from the variable store and the chain: {predicted}, measured in boot 1: {pcr4}, {pcr7}"
        vm.progress(f"host: PCR 7 {pcr7} and PCR 4 {pcr4} predicted offline, as boot 1 measured them")
        provision_offline(work_b, build)
        m = vm.tpm_boot(work_b, "secureboot-2-offline-first-boot",
                        "prompted on the first boot of a disk sealed offline for PCRs 4+7", timeout=BOOT_TIMEOUT)
        check_secure_boot(m)
        assert m.pcr(7) == pcr7 and m.pcr(4) == pcr4, "PCR 7 or 4 of the first boot differs from disk A's"
        st = vm.volume_status(m)
        opened = [t for t in st["tokens"] if t.get("token") == st["this-boot"]["token"]]
        assert opened and opened[0].get("offline-sealed") is True and opened[0]["pcrs"] == [4, 7], st
        m.poweroff()

    with vm.phase("disk C: provisioned offline by systemd-cryptenroll 257 (PCR 7), first boot by TPM"):
        provision_systemd(work_c, pcr7)
        m = vm.tpm_boot(work_c, "secureboot-2c-systemd-offline-first-boot",
                        "prompted on the first boot of a disk sealed offline by systemd-cryptenroll",
                        timeout=BOOT_TIMEOUT)
        st = vm.volume_status(m)
        opened = [t for t in st["tokens"] if t.get("token") == st["this-boot"]["token"]]
        assert opened and opened[0].get("offline-sealed") is True and opened[0]["pcrs"] == [7], st
        m.poweroff()

    with vm.phase("disk A boot 2: the TPM unlocks under Secure Boot, no prompt"):
        m = vm.tpm_boot(work_a, "secureboot-3-tpm", "prompted under Secure Boot although the TPM should unlock",
                        timeout=BOOT_TIMEOUT)
        assert m.pcr(7) == pcr7 and m.pcr(4) == pcr4, "PCR 7 or 4 changed between boots"
        m.poweroff()

    with vm.phase("dbx update in A's store; disk A boot 3: PCR 7 changed, recovery key, re-seal"):
        before = predict(work_a, build, "7")[7]
        assert before == pcr7, f"PCR 7 predicted from A's store after two boots: {before}, measured: {pcr7}"
        dbx_append(os.path.join(work_a, "OVMF_VARS.fd"), bytes.fromhex("5e" * 32))
        after = predict(work_a, build, "7")[7]
        assert after != pcr7, "PCR 7 predicted from the updated store is the old one"
        m = vm.VM(work_a, "secureboot-4-dbx-update").start()
        vm.recover(m, key_a, reason=r"PCR 7 changed since sealing", timeout=BOOT_TIMEOUT)
        assert m.pcr(7) == after, f"PCR 7 after the dbx update: {m.pcr(7)}, predicted from the store: {after}"
        assert m.pcr(4) == pcr4, "PCR 4 changed with a dbx update"
        vm.check_resealed(m)
        m.poweroff()

    with vm.phase("disk A boot 4: the TPM unlocks under the new dbx, no prompt"):
        m = vm.tpm_boot(work_a, "secureboot-5-tpm", "prompted after the re-seal under the new dbx",
                        timeout=BOOT_TIMEOUT)
        assert m.pcr(7) == after, "PCR 7 changed after the re-seal"
        m.poweroff()


if __name__ == "__main__":
    missing = vm.missing_secure_boot()
    if missing and not vm.skip_reason():
        print(f"SKIP: missing {', '.join(missing)} (tests/vm/setup --deps-only installs them)", flush=True)
        sys.exit(77)
    vm.run_story(story)
