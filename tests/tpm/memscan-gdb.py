# SPDX-License-Identifier: LGPL-2.1-or-later
"""gdb side of tests/tpm/secret-scan.py, run as
    gdb -nx -batch-silent -ex "python MEMSCAN_CONFIG='config.json'" -x memscan-gdb.py --args PROGRAM...

At the first (or N-th) call of each configured function, and at exit() (main() has
returned and every cleanup of the program has run), it copies every readable
mapping of the process, read live through /proc/PID/mem (secret pages are
MADV_DONTDUMP, so a core file would leave them out), into DUMP_DIR/N.bin,
with an index in DUMP_DIR/N.json. At a function it lets the program go on at
once. It follows the process's prctl() system calls (a catchpoint: calling
prctl(PR_GET_DUMPABLE) in the process from gdb fails on some CPUs, gdb
cannot restore their extended register state), so that the index says
whether the process made itself non-dumpable, and records the exit status."""
import json
import os
import re

import gdb

CHUNK = 64 << 20
# AddressSanitizer's shadow memory (x86-64): which bytes of the program's
# memory may be accessed, no data. The high shadow is terabytes.
HUGE = 1 << 32
ASAN_LOW_SHADOW = (0x7fff0000, 0x8fff8000)
SKIP = ("[vvar]", "[vvar_vclock]", "[vsyscall]")

cfg = json.load(open(MEMSCAN_CONFIG))  # noqa: F821 (set by the caller)
stops = 0


def dump(where, extra=None):
    global stops
    pid = gdb.selected_inferior().pid
    base = os.path.join(cfg["dump_dir"], str(stops))
    stops += 1
    index = {"where": where, "regions": [], "skipped": [], "unreadable": []}
    index.update(extra or {})
    with open(f"/proc/{pid}/maps") as f:
        maps = f.read().splitlines()
    offset = 0
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem, open(base + ".bin", "wb") as out:
        for line in maps:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)", line)
            start, end, perms, name = int(m[1], 16), int(m[2], 16), m[3], m[4]
            if perms[0] != "r" or name in SKIP:
                continue
            if end - start > HUGE or (name == "" and ASAN_LOW_SHADOW[0] <= start and end <= ASAN_LOW_SHADOW[1]):
                index["skipped"].append(line)
                continue
            region = {"start": start, "perms": perms, "name": name or "[anonymous]", "offset": offset, "size": 0}
            pos = start
            while pos < end:
                try:
                    mem.seek(pos)
                    data = mem.read(min(CHUNK, end - pos))
                except OSError:
                    index["unreadable"].append(line)
                    break
                out.write(data)
                region["size"] += len(data)
                offset += len(data)
                pos += len(data)
            index["regions"].append(region)
    with open(f"/proc/{pid}/limits") as f:
        core = [l.split()[4] for l in f if l.startswith("Max core file size")]
    index["core_limit"] = core[0] if core else None
    with open(base + ".json", "w") as f:
        json.dump(index, f)
    return base + ".json"


class DumpPoint(gdb.Breakpoint):
    """FUNCTION or FUNCTION@N: copies the memory at the first (N-th) call
    and lets the program go on."""

    def __init__(self, spec):
        func, _, n = spec.partition("@")
        super().__init__(func, internal=True)
        self.spec, self.n, self.calls = spec, int(n or 1), 0

    def stop(self):
        self.calls += 1
        if self.calls == self.n:
            dump("control:" + self.spec)
        return False


gdb.execute("set pagination off")
gdb.execute("set confirm off")
gdb.execute("set startup-with-shell off")
gdb.execute("set breakpoint pending on")
try:
    gdb.execute("set debuginfod enabled off")
except gdb.error:
    pass
for c in cfg.get("controls", []):
    DumpPoint(c)
at_exit = gdb.Breakpoint("exit", internal=True)
gdb.execute("catch syscall prctl")
stopped_at_exit = False
# PR_SET_DUMPABLE calls, by value: a system call stops twice (entry and
# return) with the same arguments in %rdi and %rsi.
set_dumpable = []


def on_stop(event):
    global stopped_at_exit
    if isinstance(event, gdb.BreakpointEvent) and at_exit in event.breakpoints:
        stopped_at_exit = True


gdb.events.stop.connect(on_stop)
gdb.execute("run")
while gdb.selected_inferior().pid and not stopped_at_exit:
    if int(gdb.parse_and_eval("$rdi")) == 4:     # PR_SET_DUMPABLE
        set_dumpable.append(int(gdb.parse_and_eval("$rsi")))
    gdb.execute("continue")
if gdb.selected_inferior().pid:
    path = dump("exit")
    index = json.load(open(path))
    # Not dumpable when the last PR_SET_DUMPABLE made it so (-1: never called).
    index["dumpable"] = set_dumpable[-1] if set_dumpable else -1
    gdb.execute("delete")
    gdb.execute("continue")
    try:
        index["status"] = int(gdb.parse_and_eval("$_exitcode"))
    except gdb.error as e:
        index["status"] = str(e)
    with open(path, "w") as f:
        json.dump(index, f)
