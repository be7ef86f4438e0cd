#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""unlockd asks through systemd's ask-password protocol; this test is the
agent: it reads the ask file, replies on the socket. A wrong answer makes a
new ask file; a reply from a non-root sender is ignored; the right one opens
the volume; the ask file and socket are gone at the end."""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("UNLOCKD_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
UNLOCKD = os.path.join(BUILD, "agent/unlockd")
PASSPHRASE = "ask password test"

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from promptlib import check, make_luks, result, send, wait_ask  # noqa: E402


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root (to send as root and as another user)")
        return 77
    t = tempfile.mkdtemp(prefix="unlockd-ask.")
    os.chmod(t, 0o755)
    d = os.path.join(t, "ask")
    os.mkdir(d)
    os.chmod(d, 0o755)
    img = os.path.join(t, "disk.img")
    make_luks(img, PASSPHRASE)
    env = dict(os.environ, UNLOCKD_ASK_PASSWORD_DIR=d)
    p = subprocess.Popen([UNLOCKD, "--test", "--no-reseal", "--ask-password=yes", "--state-dir=" + t, img],
                         env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ask, a = wait_ask(d)
        if not check(ask is not None, "an ask file appears"):
            return 1
        check(a.get("PID") == str(p.pid), "PID= is unlockd's")
        check(a.get("Echo") == "0" and a.get("AcceptCached") == "0", "Echo=0, AcceptCached=0")
        check(a.get("Id", "").startswith("unlockd:"), "Id= names unlockd and the device")
        check("no TPM2 token" in a.get("Message", ""), f"Message= says why: {a.get('Message')}")
        sock = a["Socket"]
        check(os.path.exists(sock), "the socket exists")

        check(send(sock, b"+wrong") == 0, "sent a wrong answer")
        ask2, a2 = wait_ask(d, old=[ask])
        check(ask2 is not None and not os.path.exists(ask), "a wrong answer replaces the ask file")
        check(ask2 is not None and "Try again" in a2.get("Message", ""), "the new ask says try again")

        os.chmod(sock, 0o777)               # let another user reach it: the credentials decide
        check(send(sock, ("+" + PASSPHRASE).encode(), uid=65534) == 0, "sent the right answer as uid 65534")
        time.sleep(1)
        check(p.poll() is None, "a reply from a non-root sender is ignored")
        check(ask2 is not None and os.path.exists(ask2), "the ask stays after an ignored reply")

        check(send(sock, ("+" + PASSPHRASE).encode()) == 0, "sent the right answer as root")
        rc = p.wait(30)
        check(rc == 0, f"unlockd opened the volume (rc {rc})")
        check(not glob.glob(os.path.join(d, "ask.*")), "no ask file left")
        check(not os.path.exists(sock), "no socket left")
        err = p.stderr.read().decode()
        check(PASSPHRASE not in err and "wrong" not in err, "no answer is logged")
    finally:
        if p.poll() is None:
            p.kill()
        shutil.rmtree(t, ignore_errors=True)
    return result()


if __name__ == "__main__":
    sys.exit(main())
