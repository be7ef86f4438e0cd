# SPDX-License-Identifier: LGPL-2.1-or-later
"""Shared pieces of the prompt tests: pseudo-terminal consoles, waiting for
an ask-password file, running the driver (optionally under $PROMPT_DRIVER_WRAPPER, e.g.
"valgrind --leak-check=full --error-exitcode=99 -q"), and a check() that
counts failures instead of stopping at the first."""
import array
import configparser
import glob
import os
import pty
import select
import shlex
import socket
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("UNLOCKD_BUILD_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../build"))
DRIVER = os.path.join(BUILD, "tests/prompt/prompt-driver")
WRAPPER = shlex.split(os.environ.get("PROMPT_DRIVER_WRAPPER", ""))
SLOW = 4 if WRAPPER else 1          # valgrind is slow to start

# prompt-driver's exit codes
ACCEPTED, OTHER, TIMEOUT, NO_MORE_TRIES, ALL_GONE, NO_CONSOLE, ABORTED, CANCELLED = 0, 1, 2, 3, 4, 5, 6, 7

PROMPT = b"Recovery key or passphrase: "
ANSWER = "correct horse battery"

failures = 0


def make_luks(path, passphrase, size="20M"):
    """A LUKS2 image file at path (size for truncate(1)) whose keyslot 0
    opens with passphrase (str or bytes), with PBKDF2 at 1000 iterations so
    that the KDF costs next to nothing: the options of tests/fixtures.sh's
    make_luks."""
    if isinstance(passphrase, str):
        passphrase = passphrase.encode()
    if os.path.lexists(path):
        os.unlink(path)
    subprocess.run(["truncate", "-s", size, path], check=True)
    subprocess.run(["cryptsetup", "luksFormat", "--type", "luks2", "--batch-mode",
                    "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file", "-", path],
                   input=passphrase, stdout=subprocess.DEVNULL, check=True)


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print(f"FAIL: {what}", flush=True)
    else:
        print(f"ok: {what}", flush=True)
    return cond


def result():
    print("PASS" if failures == 0 else f"{failures} failure(s)")
    return 1 if failures else 0


class Console:
    """A pseudo-terminal: the driver opens the slave by path; we type on the master."""

    def __init__(self):
        self.master, self.slave = pty.openpty()
        self.path = os.ttyname(self.slave)
        self.out = b""

    def read(self, timeout=0.2):
        end = time.monotonic() + timeout
        while self.master >= 0:
            left = end - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select([self.master], [], [], left)
            if not r:
                return
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            if not data:
                return
            self.out += data

    def wait_for(self, needle, timeout=10, count=1):
        end = time.monotonic() + timeout * SLOW
        while self.out.count(needle) < count and time.monotonic() < end:
            self.read(0.05)
        return self.out.count(needle) >= count

    def type(self, s):
        os.write(self.master, s.encode() if isinstance(s, str) else s)

    def hang_up(self):
        os.close(self.master)
        self.master = -1

    def close(self):
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)
        self.master = self.slave = -1


def wait_ask(d, old=(), timeout=10):
    """The first ask file in directory d not in old, and its [Ask] section."""
    end = time.monotonic() + timeout * SLOW
    while time.monotonic() < end:
        for path in sorted(glob.glob(os.path.join(d, "ask.*"))):
            if path in old:
                continue
            c = configparser.ConfigParser(interpolation=None)
            try:
                with open(path) as f:
                    c.read_file(f)
            except FileNotFoundError:
                continue
            return path, c["Ask"]
        time.sleep(0.02)
    return None, None


def send(sock_path, data, uid=0, fds=()):
    """Sends one datagram from a child process running as uid."""
    pid = os.fork()
    if pid == 0:
        try:
            if uid:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 65536)
            anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
            s.sendmsg([data], anc, 0, sock_path)
            os._exit(0)
        except Exception as e:
            print(f"sender: {e}", file=sys.stderr, flush=True)
            os._exit(1)
    _, st = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(st)


class Driver:
    """answer may be bytes (any byte but NUL) as well as a string. stdin
    defaults to /dev/null; new_session starts the driver without a
    controlling terminal."""

    def __init__(self, args, answer=ANSWER, env=None, prefix=(), stdin=subprocess.DEVNULL, new_session=False):
        e = dict(os.environ, **(env or {}))
        if answer is not None:
            e["ANSWER"] = os.fsdecode(answer)
        # Files, not pipes: nobody reads them until the driver is done.
        self.out, self.err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        self.p = subprocess.Popen([*prefix, *WRAPPER, DRIVER, "--debug", *args], env=e, stdin=stdin,
                                  stdout=self.out, stderr=self.err, start_new_session=new_session)
        self.pid = self.p.pid
        self.stdout = self.stderr = ""
        self.stdout_bytes = b""

    def running(self):
        return self.p.poll() is None

    def finish(self, consoles=(), timeout=20):
        """Waits for the driver, draining the consoles; returns its exit code."""
        end = time.monotonic() + timeout * SLOW
        while self.p.poll() is None and time.monotonic() < end:
            for c in consoles:
                c.read(0.05)
            if not consoles:
                time.sleep(0.05)
        if self.p.poll() is None:
            self.p.kill()
            print("driver did not finish; killed", flush=True)
        self.p.wait()
        self.out.seek(0)
        self.err.seek(0)
        self.stdout_bytes = self.out.read()
        self.stdout, self.stderr = self.stdout_bytes.decode(errors="replace"), self.err.read().decode(errors="replace")
        for c in consoles:
            c.read(0.1)
        if self.p.returncode == 99 and WRAPPER:
            print(self.stderr, file=sys.stderr)
        return self.p.returncode

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
