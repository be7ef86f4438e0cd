#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Counts the TPM commands in a libtss2-tcti-pcap capture (pcapng; each
command is a TCP segment to port 2321). Prints JSON: {"total": N,
"commands": {"CreatePrimary": n, …}}."""
import json
import struct
import sys

NAMES = {
    0x131: "CreatePrimary", 0x153: "Create", 0x157: "Load", 0x15E: "Unseal", 0x165: "FlushContext",
    0x176: "StartAuthSession", 0x17E: "PCR_Read", 0x17F: "PolicyPCR", 0x16B: "PolicyAuthValue",
    0x189: "PolicyGetDigest", 0x17A: "GetCapability", 0x173: "ReadPublic", 0x17B: "GetRandom",
    0x144: "Startup", 0x182: "PCR_Extend", 0x16C: "PolicyPassword", 0x161: "ContextLoad",
    0x162: "ContextSave", 0x121: "EvictControl", 0x186: "PolicyAuthorize", 0x16F: "PolicySecret",
    0x158: "RSA_Encrypt", 0x159: "RSA_Decrypt", 0x177: "PolicyRestart", 0x16A: "PolicyCommandCode",
    0x17C: "VerifySignature", 0x15D: "Hash", 0x138: "ObjectChangeAuth", 0x156: "Import",
}


def commands(path):
    d = open(path, "rb").read()
    off = 0
    out = []
    while off + 12 <= len(d):
        btype, blen = struct.unpack_from("<II", d, off)
        if blen < 12 or off + blen > len(d):
            break
        if btype == 6:  # Enhanced Packet Block
            caplen = struct.unpack_from("<I", d, off + 20)[0]
            pkt = d[off + 28: off + 28 + caplen]
            ihl = (pkt[0] & 15) * 4
            tcp = pkt[ihl:]
            dport = struct.unpack_from(">H", tcp, 2)[0]
            payload = tcp[(tcp[12] >> 4) * 4:]
            if dport == 2321 and len(payload) >= 10 and payload[:2] in (b"\x80\x01", b"\x80\x02"):
                out.append(struct.unpack_from(">I", payload, 6)[0])
        off += blen
    return out


def main():
    cmds = commands(sys.argv[1])
    counts = {}
    for c in cmds:
        n = NAMES.get(c, hex(c))
        counts[n] = counts.get(n, 0) + 1
    print(json.dumps({"total": len(cmds), "commands": counts}))


if __name__ == "__main__":
    main()
