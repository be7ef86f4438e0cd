#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""prompt_ask_check() through systemd's ask-password protocol, with this test
as the password agent: it waits for ask.* in the directory, parses it, and
replies on the socket it names. Root's right answer is accepted; a non-root
sender is ignored; a wrong answer or an agent's cancel replaces the ask
file; replies that are too long, malformed or carry file descriptors do no
harm; timeout and tries exit codes; a stop signal removes the files before
it takes effect; nothing is left in the directory."""
import glob
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from promptlib import ACCEPTED, ANSWER, NO_MORE_TRIES, SLOW, TIMEOUT, Driver, check, result, send, wait_ask

NOBODY = 65534


def leftovers(d):
    return sorted(os.listdir(d))


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def setup():
    t = tempfile.mkdtemp(prefix="unlockd-agent.")
    os.chmod(t, 0o755)                      # another user must reach the socket
    d = os.path.join(t, "ask-password")
    os.mkdir(d, 0o755)
    return t, d


def test_conversation(t, d):
    drv = Driver(["--ask-password-dir=" + d, "--id=unlockd:/dev/vda2",
                  "--message=The TPM did not unlock /dev/vda2.\nA re-seal will follow."])
    try:
        ask, a = wait_ask(d)
        if not check(ask is not None, "an ask file appears"):
            return
        check(a.get("PID") == str(drv.pid), f"PID= is the asker's ({a.get('PID')})")
        check(a.get("Echo") == "0" and a.get("AcceptCached") == "0", "Echo=0, AcceptCached=0")
        check(a.get("NotAfter") == "0", "NotAfter=0 without a timeout")
        check(a.get("Icon") == "drive-harddisk", "Icon=drive-harddisk")
        check(a.get("Id") == "unlockd:/dev/vda2", f"Id= as given ({a.get('Id')})")
        msg = a.get("Message", "")
        check("The TPM did not unlock /dev/vda2. A re-seal will follow." in msg and "Recovery key or passphrase" in msg,
              f"Message= on one line, with the reason and the question: {msg!r}")
        sock = a.get("Socket", "")
        st = os.stat(sock) if os.path.exists(sock) else None
        check(st is not None and stat.S_ISSOCK(st.st_mode), f"Socket= names a socket ({sock})")
        check(st is not None and stat.S_IMODE(st.st_mode) & 0o077 == 0,
              f"only root may send to the socket (mode {oct(stat.S_IMODE(st.st_mode)) if st else None})")
        check(not glob.glob(os.path.join(d, ".tmp*")), "no temporary file left next to the ask file")

        # A wrong answer from root: a new ask file saying so.
        send(sock, b"+wrong answer")
        ask2, a2 = wait_ask(d, old=[ask])
        check(ask2 is not None and not os.path.exists(ask), "a wrong answer replaces the ask file")
        check(ask2 is not None and "Try again" in a2.get("Message", ""), "the new ask says try again")
        check(ask2 is not None and a2.get("Socket") == sock, "on the same socket")

        # The right answer from nobody: ignored (the socket opened up for the test).
        os.chmod(sock, 0o666)
        check(send(sock, ("+" + ANSWER).encode(), uid=NOBODY) == 0, "sent the right answer as uid 65534")
        # Malformed replies from root: ignored too.
        send(sock, b"")
        send(sock, b"?what")
        # Too long: '+' and 64 KiB + 1 of secret.
        send(sock, b"+" + b"x" * (64 * 1024 + 1))
        time.sleep(0.5 * SLOW)
        check(drv.running(), "a non-root, malformed or oversized reply does not end the prompt")
        check(os.path.exists(ask2) and len(glob.glob(os.path.join(d, "ask.*"))) == 1,
              "and leaves the ask file as it was")

        # A reply carrying file descriptors: they are closed, not kept.
        before = fd_count(drv.pid)
        fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(3)]
        send(sock, b"+wrong again", fds=fds)
        for fd in fds:
            os.close(fd)
        ask3, _ = wait_ask(d, old=[ask, ask2])
        check(ask3 is not None, "a wrong answer with file descriptors is still an answer")
        check(fd_count(drv.pid) == before, f"passed file descriptors are closed ({before} → {fd_count(drv.pid)})")

        # An agent's cancel: the question goes away and comes back.
        send(sock, b"-")
        ask4, _ = wait_ask(d, old=[ask, ask2, ask3], timeout=5)
        check(ask4 is not None and not os.path.exists(ask3), "a cancel withdraws the ask file and asks again")

        check(send(sock, ("+" + ANSWER).encode()) == 0, "sent the right answer as root")
        rc = drv.finish()
        check(rc == ACCEPTED, f"accepted (rc {rc})")
        check(drv.stdout == f"rejected\nrejected\naccepted: {ANSWER}\n",
              f"check() saw root's answers only: {drv.stdout!r}")
        check(leftovers(d) == [], f"no ask file, socket or temporary file left: {leftovers(d)}")
        check(ANSWER not in drv.stderr and "wrong answer" not in drv.stderr, "no answer is logged (debug level)")
        check("uid 65534" in drv.stderr, "the ignored sender is logged at debug level")
    finally:
        drv.kill()


def test_long_answer(t, d):
    secret = "s" * (64 * 1024)                  # '+' and 64 KiB: the largest reply taken
    drv = Driver(["--ask-password-dir=" + d], answer=secret)
    try:
        ask, a = wait_ask(d)
        if check(ask is not None, "an ask file appears"):
            send(a["Socket"], ("+" + secret).encode())
        rc = drv.finish()
        check(rc == ACCEPTED and drv.stdout == f"accepted: {secret}\n", f"a 64 KiB answer is taken whole (rc {rc})")
        check(leftovers(d) == [], "nothing left")
    finally:
        drv.kill()


def test_timeout(t, d):
    drv = Driver(["--ask-password-dir=" + d, "--timeout-usec=1500000"])
    try:
        ask, a = wait_ask(d)
        now = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        if check(ask is not None, "an ask file appears"):
            na = int(a.get("NotAfter", "0"))
            check(now < na <= now + 1500000, f"NotAfter= is the monotonic deadline ({na - now} µs from now)")
        rc = drv.finish()
        check(rc == TIMEOUT, f"timeout: exit {TIMEOUT} (got {rc})")
        check(leftovers(d) == [], f"nothing left after a timeout: {leftovers(d)}")
    finally:
        drv.kill()


def test_max_tries(t, d):
    drv = Driver(["--ask-password-dir=" + d, "--max-tries=2"])
    try:
        seen = []
        for i in range(2):
            ask, a = wait_ask(d, old=seen)
            if not check(ask is not None, f"ask file {i + 1} appears"):
                break
            seen.append(ask)
            send(a["Socket"], b"+bad")
        rc = drv.finish()
        check(rc == NO_MORE_TRIES, f"two wrong answers with --max-tries=2: exit {NO_MORE_TRIES} (got {rc})")
        check(leftovers(d) == [], f"nothing left: {leftovers(d)}")
    finally:
        drv.kill()


def test_stop_signal(t, d):
    """SIGTERM while the agents are asked: the ask file and the socket go, then
    the process dies of the signal."""
    drv = Driver(["--ask-password-dir=" + d])
    try:
        ask, a = wait_ask(d)
        if not check(ask is not None, "an ask file appears"):
            return
        drv.p.send_signal(signal.SIGTERM)
        rc = drv.finish()
        check(rc == -signal.SIGTERM, f"the process dies of SIGTERM (returncode {rc})")
        check(leftovers(d) == [], f"the ask file and the socket are gone: {leftovers(d)}")
    finally:
        drv.kill()


# Runs the driver where /run/systemd/system exists (a private mount namespace
# with a tmpfs on /run), or where it does not.
WITH_SYSTEMD = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                'mount -t tmpfs unlockd-test /run && mkdir -p /run/systemd/system && exec "$@"', "sh"]
WITHOUT_SYSTEMD = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                   'mount -t tmpfs unlockd-test /run && exec "$@"', "sh"]


def test_auto(t, d):
    """ask_password=-1 asks the agents where systemd runs, the consoles elsewhere."""
    from promptlib import PROMPT, Console
    if not shutil.which("unshare") or subprocess.run(WITH_SYSTEMD + ["true"]).returncode != 0:
        print("no private mount namespace: auto mode checked on this host's side only")
        cases = [(os.path.exists("/run/systemd/system"), ())]
    else:
        cases = [(True, WITH_SYSTEMD), (False, WITHOUT_SYSTEMD)]
    for systemd, prefix in cases:
        c = Console()
        drv = Driver(["--ask-password=auto", "--console=" + c.path], env={"UNLOCKD_ASK_PASSWORD_DIR": d},
                     prefix=prefix)
        try:
            if systemd:
                ask, a = wait_ask(d)
                check(ask is not None, "auto, systemd running: an ask file appears")
                c.read(0.3)
                check(PROMPT not in c.out, "and the console is not asked")
                if ask:
                    send(a["Socket"], ("+" + ANSWER).encode())
            else:
                check(c.wait_for(PROMPT), "auto, no systemd: the console is asked")
                check(not glob.glob(os.path.join(d, "ask.*")), "and no ask file is written")
                c.type(ANSWER + "\r")
            rc = drv.finish([c])
            check(rc == ACCEPTED, f"auto mode ({'agents' if systemd else 'consoles'}) accepts (rc {rc})")
            check(leftovers(d) == [], "nothing left")
        finally:
            drv.kill()
            c.close()


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root (to answer as root and as another user)")
        return 77
    t, d = setup()
    try:
        for test in (test_conversation, test_long_answer, test_timeout, test_max_tries, test_stop_signal, test_auto):
            print(f"# {test.__name__}", flush=True)
            test(t, d)
    finally:
        shutil.rmtree(t, ignore_errors=True)
    return result()


if __name__ == "__main__":
    sys.exit(main())
