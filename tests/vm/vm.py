# SPDX-License-Identifier: LGPL-2.1-or-later
"""VM harness for unlockd's boot tests: swtpm + QEMU (q35, OVMF, TCG) with
the serial console on a pipe that the test reads and writes.

Every wait has a timeout; a timeout raises VMError with the tail of the
serial log. Each boot's serial log is kept in the artefacts directory."""
import os
import re
import shutil
import subprocess
import sys
import threading
import time

CACHE = os.environ.get("UNLOCKD_VM_CACHE", "/var/tmp/unlockd-vm")
ARTIFACTS = os.environ.get("UNLOCKD_VM_ARTIFACTS", os.path.join(CACHE, "artifacts"))
T0 = time.monotonic()


def progress(msg):
    print(f"[vm {time.monotonic() - T0:7.1f}s] {msg}", flush=True)


class VMError(Exception):
    pass


class VM:
    def __init__(self, workdir, name):
        self.workdir = workdir
        self.name = name
        self.tpmdir = os.path.join(workdir, "tpm")
        os.makedirs(self.tpmdir, exist_ok=True)
        os.makedirs(ARTIFACTS, exist_ok=True)
        self.log_path = os.path.join(ARTIFACTS, f"{name}.log")
        self.buf = b""
        self.pos = 0
        self.lock = threading.Condition()
        self.swtpm = None
        self.qemu = None
        self.eof = False

    def start(self):
        sock = os.path.join(self.tpmdir, "swtpm-sock")
        if os.path.exists(sock):
            os.unlink(sock)
        self.swtpm = subprocess.Popen(
            ["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={self.tpmdir}",
             "--ctrl", f"type=unixio,path={sock}", "--terminate"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        accel = os.environ.get("UNLOCKD_VM_ACCEL", "tcg")
        cmd = ["qemu-system-x86_64", "-machine", "q35", "-accel", accel, "-m", "1536", "-smp", "2",
               "-drive", "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
               "-drive", f"if=pflash,format=raw,file={os.path.join(self.workdir, 'OVMF_VARS.fd')}",
               "-drive", f"file={os.path.join(self.workdir, 'disk.img')},format=raw,if=virtio",
               "-chardev", f"socket,id=chrtpm,path={sock}",
               "-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-tis,tpmdev=tpm0",
               "-serial", "stdio", "-display", "none", "-monitor", "none", "-nic", "none", "-no-reboot"]
        self.logf = open(self.log_path, "wb")
        self.qemu = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        threading.Thread(target=self._reader, daemon=True).start()
        progress(f"{self.name}: QEMU started (serial log {self.log_path})")

    def _reader(self):
        while True:
            data = self.qemu.stdout.read1(65536)
            with self.lock:
                if not data:
                    self.eof = True
                    self.lock.notify_all()
                    return
                self.buf += data
                self.logf.write(data)
                self.logf.flush()
                self.lock.notify_all()

    def tail(self, n=3000):
        return self.buf[-n:].decode(errors="replace")

    def expect(self, pattern, timeout, what=None, flags=0):
        """Waits for pattern in the output after the last match; returns the match."""
        rx = re.compile(pattern.encode() if isinstance(pattern, str) else pattern, flags)
        deadline = time.monotonic() + timeout
        progress(f"{self.name}: waiting for {what or pattern!r} (up to {timeout}s)")
        with self.lock:
            while True:
                m = rx.search(self.buf, self.pos)
                if m:
                    self.pos = m.end()
                    progress(f"{self.name}: saw {what or pattern!r}")
                    return m
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    raise VMError(f"{self.name}: {'timed out' if left <= 0 else 'VM stopped'} waiting for "
                                  f"{what or pattern!r}\n--- serial tail ---\n{self.tail()}")
                self.lock.wait(min(left, 1.0))

    def since(self, mark):
        return self.buf[mark:].decode(errors="replace")

    def mark(self):
        return self.pos

    def send(self, text):
        self.qemu.stdin.write(text.encode())
        self.qemu.stdin.flush()

    def shell_ready(self, timeout=300):
        self.expect(r"vm# ", timeout, "the booted system's shell")

    def run(self, cmd, timeout=120, check=True):
        """Runs a shell command in the guest; returns (status, output)."""
        tag = f"__{int(time.monotonic() * 1000) % 100000000}__"
        self.send(f"echo {tag}B; {cmd}; echo {tag}E$?\n")
        m = self.expect(re.escape(tag) + r"B\r?\n(.*?)" + re.escape(tag) + r"E(\d+)", timeout, f"`{cmd}`",
                        flags=re.S)
        out = m.group(1).decode(errors="replace").replace("\r", "")
        rc = int(m.group(2))
        if check and rc != 0:
            raise VMError(f"{self.name}: `{cmd}` failed with {rc}:\n{out}")
        return rc, out

    def poweroff(self, timeout=180):
        progress(f"{self.name}: powering off")
        self.send("systemctl poweroff\n")
        self.wait_exit(timeout)

    def wait_exit(self, timeout=180):
        try:
            self.qemu.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise VMError(f"{self.name}: did not power off\n{self.tail()}")
        self._stop_swtpm()
        self.logf.close()

    def kill(self):
        if self.qemu and self.qemu.poll() is None:
            self.qemu.kill()
            self.qemu.wait()
        self._stop_swtpm()

    def _stop_swtpm(self):
        if self.swtpm and self.swtpm.poll() is None:
            try:
                self.swtpm.wait(10)
            except subprocess.TimeoutExpired:
                self.swtpm.kill()
                self.swtpm.wait()


def setup(*args):
    here = os.path.dirname(os.path.abspath(__file__))
    progress("setup " + " ".join(args))
    subprocess.run([os.path.join(here, "setup"), *args], check=True)
