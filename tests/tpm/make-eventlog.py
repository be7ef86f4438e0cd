#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""make-eventlog.py LOG --boot-loader HEX --kernel HEX --cmdline TEXT --initrd FILE
   [--unlogged PCR:HEX]

Writes a crypto-agile TCG event log (SHA-256 bank) of the boot the VM
suite's chain makes (design.md section 10): PCR 4 = EV_EFI_ACTION "Calling
EFI Application from Boot Option", EV_SEPARATOR, the boot loader's and the
kernel's EV_EFI_BOOT_SERVICES_APPLICATION (their Authenticode digests, given);
PCR 9 = the Linux EFI stub's two EV_EVENT_TAG (LoadOptions: the command line
as UTF-16LE with its NUL; "Linux initrd": the file's SHA-256); PCR 12 =
systemd-boot's EV_IPL of the command line. Prints "PCR:HEX" per event, in
order, for tpm2_pcrextend to make a software TPM's PCRs what this boot
would: the test's stand-in for firmware. --unlogged adds an extend that the
log does not show (a PCR whose replay is then not the TPM's value).
"""
import argparse
import hashlib
import struct
import sys

EV_SEPARATOR = 0x4
EV_EVENT_TAG = 0x6
EV_IPL = 0xD
EV_NO_ACTION = 0x3
EV_EFI_BOOT_SERVICES_APPLICATION = 0x80000003
EV_EFI_ACTION = 0x80000007
SHA256 = 0x000B


def header():
    spec = b"Spec ID Event03\0" + struct.pack("<IBBBB", 0, 0, 2, 0, 2)
    spec += struct.pack("<I", 1) + struct.pack("<HH", SHA256, 32) + b"\0"
    return struct.pack("<II", 0, EV_NO_ACTION) + b"\0" * 20 + struct.pack("<I", len(spec)) + spec


def event(pcr, typ, digest, data):
    return (struct.pack("<III", pcr, typ, 1) + struct.pack("<H", SHA256) + digest
            + struct.pack("<I", len(data)) + data)


def tagged(tag, desc):
    return struct.pack("<II", tag, len(desc)) + desc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("--boot-loader", required=True)
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--cmdline", required=True)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--unlogged", action="append", default=[])
    a = ap.parse_args()

    cmdline = (a.cmdline + "\0").encode("utf-16-le")
    with open(a.initrd, "rb") as f:
        initrd = hashlib.sha256(f.read()).digest()
    action = b"Calling EFI Application from Boot Option"
    events = [
        (4, EV_EFI_ACTION, hashlib.sha256(action).digest(), action),
        (4, EV_SEPARATOR, hashlib.sha256(b"\0" * 4).digest(), b"\0" * 4),
        (4, EV_EFI_BOOT_SERVICES_APPLICATION, bytes.fromhex(a.boot_loader), b"\0" * 32),
        (4, EV_EFI_BOOT_SERVICES_APPLICATION, bytes.fromhex(a.kernel), b"\0" * 32),
        (9, EV_EVENT_TAG, hashlib.sha256(cmdline).digest(), tagged(0x8F3B22ED, b"LOADED_IMAGE::LoadOptions\0")),
        (9, EV_EVENT_TAG, initrd, tagged(0x8F3B22EC, b"Linux initrd\0")),
        (12, EV_IPL, hashlib.sha256(cmdline).digest(), cmdline),
    ]
    out = header() + b"".join(event(*e) for e in events)
    with open(a.log, "wb") as f:
        f.write(out)
    for pcr, _, d, _ in events:
        print(f"{pcr}:{d.hex()}")
    for u in a.unlogged:
        print(u)


if __name__ == "__main__":
    sys.exit(main())
