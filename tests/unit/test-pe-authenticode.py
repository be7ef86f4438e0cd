#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""pe_authenticode_digest() on the real EFI binaries of this machine,
against references that do not share its code:

- a signed binary (the Debian kernel, grub, shim, mokmanager, fallback):
  the digest its signer put into the signature, and osslsigncode's own
  ("Calculated message digest" of `osslsigncode verify`). When osslsigncode
  cannot read the certificate table (shim's holds two WIN_CERTIFICATEs), the
  signed digest is taken from the first PKCS#7 blob with `openssl asn1parse`;
- an unsigned binary (systemd-boot, the EFI stub of systemd-stub): signed
  here with a throwaway key by `osslsigncode sign`, which computes the digest
  it signs itself; our digest of that signed copy must equal it, and, when
  the file length is a multiple of 8 (nothing padded before the
  certificate table), our digest of the original too;
- the event log fixture: when a boot application of that boot
  (tests/unit/data/eventlog-ovmf-sdboot.txt) is the same file as here (same
  SHA-256), our digest must be the one the firmware logged.

usage: test-pe-authenticode.py PE-DIGEST-PROGRAM FIXTURE.txt
Exit 0 on success, 1 on any mismatch, 77 when osslsigncode or openssl is
missing or no EFI binary is installed.
"""
import glob
import hashlib
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

CANDIDATES = [
    "/usr/lib/systemd/boot/efi/systemd-bootx64.efi",
    "/usr/lib/systemd/boot/efi/linuxx64.efi.stub",
    *sorted(glob.glob("/boot/vmlinuz-*")),
    *sorted(glob.glob("/usr/lib/shim/*.efi.signed")),
    *sorted(glob.glob("/usr/lib/shim/*.efi")),
    *sorted(glob.glob("/usr/lib/grub/x86_64-efi-signed/*.efi.signed")),
]

failures = []


def fail(msg):
    print(f"FAIL: {msg}", flush=True)
    failures.append(msg)


def ours(prog, path):
    r = subprocess.run([prog, path], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"{path}: pe-digest rejected it: {r.stderr.strip()}")
        return None
    return r.stdout.split()[0].lower()


def osslsigncode_digests(path):
    """(digest in the signature, digest osslsigncode calculated), either None."""
    r = subprocess.run(["osslsigncode", "verify", "-in", path], capture_output=True, text=True)
    out = r.stdout + r.stderr
    cur = re.search(r"Current message digest\s*:\s*([0-9A-Fa-f]+)", out)
    calc = re.search(r"Calculated message digest\s*:\s*([0-9A-Fa-f]+)", out)
    return (cur.group(1).lower() if cur else None, calc.group(1).lower() if calc else None)


def cert_table(data):
    """(offset, size) of the certificate table (data directory entry 4)."""
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    opt = pe + 24
    magic = struct.unpack_from("<H", data, opt)[0]
    dd = opt + (96 if magic == 0x10B else 112)
    n = struct.unpack_from("<I", data, dd - 4)[0]
    if n <= 4:
        return 0, 0
    return struct.unpack_from("<II", data, dd + 32)


def signed_digest_openssl(path, tmp):
    """The SHA-256 digest in the first WIN_CERTIFICATE's PKCS#7 blob (the
    SpcIndirectDataContent's DigestInfo: the first 32-byte OCTET STRING)."""
    data = open(path, "rb").read()
    off, size = cert_table(data)
    if size == 0:
        return None
    length, _rev, ctype = struct.unpack_from("<IHH", data, off)
    if ctype != 2 or length < 8 or length > size:  # WIN_CERT_TYPE_PKCS_SIGNED_DATA
        return None
    der = os.path.join(tmp, "sig.der")
    with open(der, "wb") as f:
        f.write(data[off + 8:off + length])
    r = subprocess.run(["openssl", "asn1parse", "-inform", "DER", "-in", der], capture_output=True, text=True)
    m = re.search(r"OCTET STRING\s+\[HEX DUMP\]:([0-9A-Fa-f]{64})\s*$", r.stdout, re.M)
    return m.group(1).lower() if m else None


def throwaway_key(tmp):
    key, crt = os.path.join(tmp, "key.pem"), os.path.join(tmp, "crt.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=unlockd test",
                    "-days", "1", "-keyout", key, "-out", crt], check=True, capture_output=True)
    return key, crt


def fixture_applications(path):
    """{file SHA-256: (name, logged Authenticode SHA-256)}"""
    apps = {}
    for line in open(path):
        w = line.split()
        if len(w) == 4 and w[0] == "boot-application":
            apps[w[2]] = (w[1], w[3])
    return apps


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    prog, fixture = sys.argv[1], sys.argv[2]
    for tool in ("osslsigncode", "openssl"):
        if not shutil.which(tool):
            print(f"SKIP: {tool} is not installed (tools/install-deps installs it)")
            return 77
    files = [f for f in dict.fromkeys(CANDIDATES) if os.path.isfile(f)]
    if not files:
        print("SKIP: no EFI binary installed (systemd-boot-efi, linux-image-amd64, shim-signed, "
              "grub-efi-amd64-signed)")
        return 77
    apps = fixture_applications(fixture)
    checked_log = 0

    with tempfile.TemporaryDirectory() as tmp:
        key, crt = throwaway_key(tmp)
        for path in files:
            d = ours(prog, path)
            if d is None:
                continue
            data = open(path, "rb").read()
            _, cert_size = cert_table(data)
            refs = []
            if cert_size > 0:
                cur, calc = osslsigncode_digests(path)
                if calc:
                    refs.append(("osslsigncode calculated", calc))
                if cur:
                    refs.append(("signature (osslsigncode)", cur))
                else:
                    s = signed_digest_openssl(path, tmp)
                    if s:
                        refs.append(("signature (openssl asn1parse)", s))
                if not refs:
                    fail(f"{path}: signed, but neither osslsigncode nor openssl gave a digest")
            else:
                signed = os.path.join(tmp, os.path.basename(path) + ".signed")
                subprocess.run(["osslsigncode", "sign", "-h", "sha256", "-certs", crt, "-key", key,
                                "-in", path, "-out", signed], check=True, capture_output=True)
                cur, calc = osslsigncode_digests(signed)
                d_signed = ours(prog, signed)
                if not cur or not calc:
                    fail(f"{path}: osslsigncode gave no digest for its signed copy")
                else:
                    for what, ref in (("signed here by osslsigncode", cur), ("osslsigncode calculated", calc)):
                        if d_signed != ref:
                            fail(f"{path} (signed copy): ours {d_signed} != {what} {ref}")
                    if len(data) % 8 == 0:
                        refs.append(("signed copy (no padding)", cur))
                    print(f"ok - {path} (signed copy): {d_signed} = osslsigncode's", flush=True)
            sha = hashlib.sha256(data).hexdigest()
            if sha in apps:
                refs.append((f"event log fixture ({apps[sha][0]})", apps[sha][1]))
                checked_log += 1
            for what, ref in refs:
                if d != ref:
                    fail(f"{path}: ours {d} != {what} {ref}")
                else:
                    print(f"ok - {path}: {d} = {what}", flush=True)
    if checked_log == 0:
        print("note: no boot application of the event log fixture is installed here (other builds)")
    if failures:
        print(f"{len(failures)} mismatches")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
