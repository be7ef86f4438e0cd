# SPDX-License-Identifier: LGPL-2.1-or-later
"""The expect/send engine on the master side of a pseudo-terminal, shared by
tools/pty-drive (a command on its controlling terminal) and
tests/tpm/secret-scan.py (a program under gdb given the terminal's path).

    term = Terminal(fd, echo=sys.stdout.buffer, alive=lambda: p.poll() is None)
    if not term.expect("PIN: ", time.monotonic() + 30): ... term.why ...
    term.send(b"1234\\r")
    term.drain(time.monotonic() + 30)

expect() waits until the output since the last match matches; what it read
past the match stays for the next expect(). Without `alive`, the end of the
program is seen as the end of its output (EOF or EIO on the master: nobody
else holds the terminal open); with it, `alive()` is asked every `poll`
seconds (for a terminal the caller keeps open itself)."""
import os
import re
import select
import time


def unescape(text):
    """TEXT with \\n, \\r, \\x03 … escapes as the bytes to type."""
    return text.encode().decode("unicode_escape").encode("latin-1")


class Terminal:
    def __init__(self, fd, echo=None, alive=None, poll=0.02):
        self.fd = fd
        self.echo = echo
        self.alive = alive
        self.poll = poll
        self.buf = b""      # read since the last match
        self.why = None     # why the last expect() failed: "timeout", "eof" or "exited"

    def pump(self, deadline):
        """Reads what the program writes, waiting until the deadline (or, with
        `alive`, at most `poll` seconds) for it; False at the end of its output."""
        wait = max(0.0, deadline - time.monotonic())
        if self.alive:
            wait = min(wait, self.poll)
        r, _, _ = select.select([self.fd], [], [], wait)
        if not r:
            return True
        try:
            data = os.read(self.fd, 4096)
        except OSError:
            return False
        if not data:
            return False
        if self.echo:
            self.echo.write(data)
            self.echo.flush()
        self.buf += data
        return True

    def send(self, data):
        os.write(self.fd, data)

    def expect(self, regex, deadline):
        """The match of REGEX (a str) in the output since the last match, or
        None (then self.why) when the deadline passed or the program ended first."""
        rx = re.compile(regex.encode())
        while True:
            m = rx.search(self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m
            if time.monotonic() > deadline:
                self.why = "timeout"
                return None
            if self.alive and not self.alive():
                self.why = "exited"
                return None
            if not self.pump(deadline):
                if self.alive:
                    # A read error on a terminal the caller holds open: the
                    # program ends by itself; keep polling until it has.
                    time.sleep(self.poll)
                    continue
                self.why = "eof"
                return None

    def drain(self, deadline):
        """Reads (and echoes) the rest of the output until it ends, the program
        ends (with `alive`) or the deadline passes; so the program never
        blocks writing to the terminal."""
        while time.monotonic() < deadline and (not self.alive or self.alive()):
            if not self.pump(deadline):
                if not self.alive:
                    return
                time.sleep(self.poll)
