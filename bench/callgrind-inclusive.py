#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""bench/callgrind-inclusive.py CALLGRIND.OUT FUNCTION...: the inclusive
instruction counts of the functions named, from `callgrind_annotate
--inclusive=yes` of a `valgrind --tool=callgrind` output file (the largest
count where a name appears more than once, 0 where it does not appear).
Prints JSON: {"FUNCTION": n, ...}."""
import json
import re
import subprocess
import sys


def inclusive(path, functions):
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", path], check=True, capture_output=True,
                          text=True).stdout
    best = dict.fromkeys(functions, 0)
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(\S+)", line)
        if not m:
            continue
        fn = m.group(2).split(":")[-1].split("@")[0]
        if fn in best:
            best[fn] = max(best[fn], int(m.group(1).replace(",", "")))
    return best


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: bench/callgrind-inclusive.py CALLGRIND.OUT FUNCTION...")
    json.dump(inclusive(sys.argv[1], sys.argv[2:]), sys.stdout)
    print()
