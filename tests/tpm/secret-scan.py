#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Runs a program under gdb, copies its live memory at exit() and at control
points, and looks for secrets there and in what it wrote.

    secret-scan.py --needles FILE --dump DIR [--control FUNCTION[@N]]...
                   [--canary LABEL]... [--in-use LABEL]... [--absent-at FUNCTION=LABEL]...
                   [--status N]
                   [--files PATH]... [--log-mark LABEL] [--debug-log]
                   [--esys-session-auth LABEL]... [--timeout S]
                   [--expect REGEX | --send TEXT]... -- PROGRAM ARG...
    secret-scan.py --needles FILE --dump DIR --rescan [the same checks]

FILE holds one needle a line, "LABEL HEX"; labels starting with "mark-" are
not secrets but markers (a volume's UUID or path). gdb (memscan-gdb.py)
copies every readable mapping of the program into DIR at the first (N-th)
call of each --control function, where a secret is in use, and at exit(),
after main() returned. The program's stdout and stderr go to DIR/stdout and
DIR/stderr. --rescan checks an earlier run again, against secrets learnt
only after it (a key the program generated and printed). "@CONSOLE@" in an
argument becomes the path of a pseudo-terminal: --expect waits for REGEX in
what the program wrote there, --send types TEXT (escapes such as \\r).

It fails (exit 1) when
- a secret is in memory at exit, unless it is a residue the README
  documents and this script recognises by its surroundings: an
  --esys-session-auth auth value inside an ESAPI policy session's HMAC key,
  or, in a sanitizer build, a value in the sanitizer runtime's copy of the
  environment;
- a --canary marker (in memory at the end anyway, e.g. the volume UUID) is
  not found at exit, or an --in-use secret at none of the control points:
  then the scan would not see a secret either; a control point is never
  reached;
- a secret is in DIR/stdout, DIR/stderr or under a --files path (state.json,
  re-seal jobs); --log-mark is in none of them; with --debug-log, stderr has
  no debug-level line (they carry their source location);
- the process is dumpable or its core size limit is not 0;
- its exit status is not --status (default 0).
Exit 77 when gdb is missing."""
import argparse
import glob
import json
import os
import pty
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# The expect/send engine tools/pty-drive uses.
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
from ptydrive import Terminal, unescape  # noqa: E402


def run(a, failures):
    if os.path.isdir(a.dump):
        shutil.rmtree(a.dump)
    os.makedirs(a.dump)
    config = os.path.join(a.dump, "config.json")
    with open(config, "w") as f:
        json.dump({"dump_dir": a.dump, "controls": a.control}, f)

    master = slave = -1
    cmd = a.cmd
    if any("@CONSOLE@" in c for c in cmd):
        master, slave = pty.openpty()
        cmd = [c.replace("@CONSOLE@", os.ttyname(slave)) for c in cmd]
    # -batch-silent: gdb's own messages do not mix with the program's stdout.
    gdb = ["gdb", "-nx", "-batch-silent",
           "-ex", f"python MEMSCAN_CONFIG={config!r}", "-x", os.path.join(HERE, "memscan-gdb.py"),
           "--args", *cmd]
    with open(os.path.join(a.dump, "stdout"), "wb") as out, open(os.path.join(a.dump, "stderr"), "wb") as err:
        p = subprocess.Popen(gdb, stdin=subprocess.DEVNULL, stdout=out, stderr=err)

    deadline = time.monotonic() + a.timeout
    # The terminal stays open here too (slave), so the program's end is
    # seen by polling it, not as the end of its output.
    term = Terminal(master, alive=lambda: p.poll() is None) if master >= 0 else None
    for kind, arg in a.steps or []:
        if kind == "send":
            term.send(arg)
            continue
        if not term.expect(arg, deadline):
            failures.append(f"the program never wrote /{arg}/ on the console; it wrote: {term.buf[-500:]!r}")
            p.kill()
            break
    if term:
        term.drain(deadline)
    else:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    if p.poll() is None:
        p.kill()
        failures.append("gdb/the program did not finish in time")
    p.wait()
    for fd in (master, slave):
        if fd >= 0:
            os.close(fd)


def esys_session_auth(data, i, n):
    """Whether the auth value at data[i:i+n] is ESAPI's copy in a policy
    session's HMAC key: tpm2-tss's IESYS_SESSION has type_policy_session
    (4 bytes, POLICY_AUTH = 1), sizeSessionValue (2 bytes), then
    sessionValue: the 32-byte session key followed by the auth value of the
    entity the session authorised. ESAPI frees it unwiped, and no API
    reaches it (README, Security)."""
    head = data[i - 38:i - 32]
    if len(head) == 6 and head == (1).to_bytes(4, "little") + (32 + n).to_bytes(2, "little"):
        return "ESAPI's policy-session HMAC key (IESYS_SESSION.sessionValue)"
    return None


def sanitizer_environ(data, i, n):
    """Whether the secret at data[i:i+n] is the value of a NAME=value entry
    in a copy of the environment. In a sanitizer build the sanitizer runtime
    keeps such a copy of the initial environment (read from
    /proc/self/environ at start-up); the program wipes its own ($PIN,
    $PASSWORD, $NEWPIN) but cannot reach that one. Production builds have
    no such copy."""
    if data[i + n:i + n + 1] != b"\0":
        return None
    m = re.search(rb"\0([A-Z_][A-Z0-9_]*)=\Z", data[max(0, i - 65):i])
    if m:
        return f"the sanitizer runtime's copy of the environment ({m[1].decode()}=…)"
    return None


def check_memory(a, needles, failures):
    stops = []
    for path in sorted(glob.glob(os.path.join(a.dump, "[0-9]*.json")), key=lambda p: int(os.path.basename(p)[:-5])):
        index = json.load(open(path))
        data = open(path[:-5] + ".bin", "rb").read()
        sanitized = bool(index["skipped"])
        index["hits"] = []
        for label, needle in needles.items():
            i = data.find(needle)
            while i >= 0:
                r = next(r for r in index["regions"] if r["offset"] <= i < r["offset"] + r["size"])
                known = None
                if label in a.esys_session_auth:
                    known = esys_session_auth(data, i, len(needle))
                if not known and sanitized and r["name"] == "[anonymous]":
                    known = sanitizer_environ(data, i, len(needle))
                index["hits"].append((label, hex(r["start"] + i - r["offset"]), r["name"], r["perms"], known))
                i = data.find(needle, i + 1)
        index["bytes"] = len(data)
        index["sanitized"] = sanitized
        stops.append(index)

    ends = [s for s in stops if s["where"] == "exit"]
    controls = [s for s in stops if s["where"].startswith("control:")]
    if not ends:
        failures.append("the program never reached exit()")
    for s in stops:
        print(f"  memory at {s['where']}: {len(s['regions'])} mappings, {s['bytes'] >> 10} KiB, "
              f"found: {', '.join(sorted(set(h[0] for h in s['hits']))) or 'nothing'}"
              + (f"; {len(s['skipped'])} sanitizer shadow mapping(s) skipped" if s["skipped"] else ""))
        if s["unreadable"]:
            failures.append(f"unreadable mappings at {s['where']}: {s['unreadable']}")
    for c in a.control:
        if not any(s["where"] == "control:" + c for s in controls):
            failures.append(f"the control point {c}() was never reached")
    for label in a.in_use:
        if not any(h[0] == label for s in controls for h in s["hits"]):
            failures.append(f"positive control: {label} is not found while in use: the scan is blind to it")
    # A secret that must already be wiped at a control point: how the
    # workarounds for tpm2-tss's leftover copies are judged (with them
    # off, the unsealed secret is still there when the keyslot is tried).
    for spec in a.absent_at:
        func, label = spec.split("=", 1)
        if func not in a.control:
            failures.append(f"--absent-at {spec}: {func} is not a --control point")
        for st in stops:
            if st["where"] == "control:" + func and st["sanitized"]:
                # A sanitizer build lays out stack frames of its own (redzones,
                # instrumented callers): what is left where is not the shipped
                # program's. The plain build is the judge here.
                print(f"  --absent-at {spec}: not judged in a sanitizer build")
                continue
            if st["where"] == "control:" + func:
                for h in st["hits"]:
                    if h[0] == label and not h[4]:
                        failures.append(f"{label} is still in memory at {func}(): {h[1]} in {h[2]} ({h[3]})")
    for s in ends:
        for label in a.canary:
            if not any(h[0] == label for h in s["hits"]):
                failures.append(f"positive control: the marker {label} is not found at exit: the scan is blind")
        for label, addr, name, perms, known in s["hits"]:
            if label.startswith("mark-"):
                continue
            if known:
                print(f"  documented residue (README, Security): {label} at {addr} in {name}: {known}")
                continue
            failures.append(f"{label} remains in memory at exit: {addr} in {name} ({perms})")
        if s.get("dumpable") != 0:
            failures.append(f"the process did not make itself non-dumpable (last PR_SET_DUMPABLE: {s.get('dumpable')}, -1: none)")
        if s.get("core_limit") != "0":
            failures.append(f"the core file size limit is {s.get('core_limit')}, not 0")
        if s.get("status") != a.status:
            failures.append(f"exit status {s.get('status')}, expected {a.status}")


def check_files(a, needles, failures):
    files = [os.path.join(a.dump, "stdout"), os.path.join(a.dump, "stderr")]
    for p in a.files:
        files += [p] if os.path.isfile(p) else sorted(glob.glob(os.path.join(p, "**"), recursive=True))
    files = [f for f in files if os.path.isfile(f)]
    contents = {f: open(f, "rb").read() for f in files}
    for f, data in contents.items():
        for label, needle in needles.items():
            if not label.startswith("mark-") and needle in data:
                failures.append(f"{label} is written in {f}")
    if a.log_mark and not any(needles[a.log_mark] in d for d in contents.values()):
        failures.append(f"positive control: the output does not even name {a.log_mark}: the check reads nothing")
    if a.debug_log and not re.search(rb"\(\S+\.c:\d+\) ", contents[files[1]]):
        failures.append("stderr has no debug-level line: the log check does not see the highest level")
    print(f"  output: {len(files)} files, {sum(len(d) for d in contents.values()) >> 10} KiB")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--needles", required=True)
    ap.add_argument("--dump", required=True)
    ap.add_argument("--rescan", action="store_true")
    ap.add_argument("--control", action="append", default=[])
    ap.add_argument("--canary", action="append", default=[])
    ap.add_argument("--in-use", action="append", default=[])
    ap.add_argument("--absent-at", action="append", default=[], metavar="FUNCTION=LABEL")
    ap.add_argument("--esys-session-auth", action="append", default=[])
    ap.add_argument("--status", type=int, default=0)
    ap.add_argument("--files", action="append", default=[])
    ap.add_argument("--log-mark")
    ap.add_argument("--debug-log", action="store_true")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--expect", action="append", dest="steps", type=lambda s: ("expect", s))
    ap.add_argument("--send", action="append", dest="steps",
                    type=lambda s: ("send", unescape(s)))
    ap.add_argument("cmd", nargs="*")
    a = ap.parse_args()
    if not a.rescan and not a.cmd:
        ap.error("no program")
    if not a.rescan and not shutil.which("gdb"):
        print("SKIP: gdb is not installed")
        return 77

    needles = {}
    with open(a.needles) as f:
        for line in f:
            if line.strip():
                label, hexval = line.split()
                needles[label] = bytes.fromhex(hexval)
    for label in a.canary + a.in_use + a.esys_session_auth + ([a.log_mark] if a.log_mark else []):
        if label not in needles:
            sys.exit(f"secret-scan: unknown needle {label}")

    failures = []
    if not a.rescan:
        run(a, failures)
    if not failures:
        check_memory(a, needles, failures)
        check_files(a, needles, failures)
    for f in failures:
        print(f"  FAIL: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
