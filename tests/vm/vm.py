# SPDX-License-Identifier: LGPL-2.1-or-later
"""VM harness for unlockd's boot tests (python3 standard library only).

VM:      swtpm + QEMU (q35, OVMF, TCG by default) booting DIR/disk.img made by
         `tests/vm/setup disk DIR ...`, with the serial console on a pipe that
         the test reads (expect) and writes (send, run).
HostTPM: swtpm alone on the same TPM state, for host-side TPM operations
         between boots (QEMU stopped), through the TCTI "swtpm:path=...".

One scenario = one DIR; its TPM state (DIR/tpm) and UEFI variables
(DIR/OVMF_VARS.fd) persist across its boots. Every wait has a timeout; a
timeout or an early QEMU exit raises VMError with the tail of the serial log.
Each boot's serial log is written as it comes to $UNLOCKD_VM_ARTIFACTS/NAME.log
(default $UNLOCKD_VM_CACHE/artifacts), with swtpm's log next to it."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

CACHE = os.environ.get("UNLOCKD_VM_CACHE", "/var/tmp/unlockd-vm")
# vCPUs per VM (TCG runs each in a host thread).
SMP = os.environ.get("UNLOCKD_VM_SMP", "2")
ARTIFACTS = os.environ.get("UNLOCKD_VM_ARTIFACTS", os.path.join(CACHE, "artifacts"))
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
# A disk made with `setup disk --secure-boot` boots OVMF's Secure Boot build
# (its variable store in SMM: q35 with smm=on, the flash "secure"), with
# the variable store OVMF_VARS_4M.ms.fd (Microsoft's keys) copied into DIR.
OVMF_CODE_SECBOOT = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
OVMF_VARS_MS = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
# The Debian release of the disks (tests/vm/setup --release). Debian 13's
# kernel takes about twice as long to reach the booted system's shell under
# TCG (its jitter entropy source spins at start; 294 s measured on a loaded
# machine against 300 s of Debian 12's timeout), so its waits for the shell
# are doubled.
RELEASE = os.environ.get("UNLOCKD_VM_RELEASE", "bookworm")
SHELL_TIMEOUT = 600 if RELEASE == "trixie" else 300
HERE = os.path.dirname(os.path.abspath(__file__))
T0 = time.monotonic()
PHASES = []
# What run_story() cleans up: the VMs started and the work dirs made.
_STARTED = []
_WORKDIRS = []


def progress(msg):
    print(f"[vm {time.monotonic() - T0:7.1f}s] {msg}", flush=True)


class VMError(Exception):
    pass


class phase:
    """`with vm.phase("boot 1"):` prints and records how long a phase took."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.t = time.monotonic()
        progress(f"--- {self.name}")
        return self

    def __exit__(self, *exc):
        d = time.monotonic() - self.t
        PHASES.append((self.name, d, exc[0] is None))
        progress(f"--- {self.name}: {d:.1f}s{'' if exc[0] is None else ' (failed)'}")
        return False


def summary():
    """Prints the time of every phase so far."""
    for name, d, ok in PHASES:
        print(f"    {d:7.1f}s  {name}{'' if ok else '  (failed)'}", flush=True)
    print(f"    {time.monotonic() - T0:7.1f}s  total", flush=True)


def missing_tools():
    """Host programs the VM suite needs that are not installed (empty: none)."""
    tools = ("qemu-system-x86_64", "swtpm", "swtpm_ioctl", "dracut", "debootstrap", "cryptsetup",
             "mkfs.ext4", "mkfs.vfat", "mcopy", "sfdisk", "gcc")
    miss = [t for t in tools if not shutil.which(t)]
    if not os.path.exists(OVMF_CODE):
        miss.append(OVMF_CODE)
    return miss


def missing_secure_boot():
    """What the Secure Boot flavour (setup disk --secure-boot) needs beyond
    missing_tools() and is not installed (empty: none)."""
    files = (OVMF_CODE_SECBOOT, OVMF_VARS_MS, "/usr/lib/shim/shimx64.efi.signed",
             "/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed")
    return [f for f in files if not os.path.exists(f)]


def secure_boot(workdir):
    """Whether the disk in workdir boots the Secure Boot chain."""
    try:
        return open(os.path.join(workdir, "boot")).read().strip() == "secure-boot"
    except FileNotFoundError:
        return False


def setup(*args, env=None):
    """Runs tests/vm/setup with args (raises on failure); env: more
    environment variables for it."""
    progress("setup " + " ".join(args) + "".join(f" ({k}={v})" for k, v in (env or {}).items()))
    subprocess.run([os.path.join(HERE, "setup"), *args], check=True, env={**os.environ, **(env or {})})


def _wait_path(path, proc, what, timeout=10):
    # swtpm creates its sockets before it accepts: wait for the file.
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None:
            raise VMError(f"{what} exited with {proc.returncode} before creating {path}")
        if time.monotonic() > deadline:
            raise VMError(f"{what} did not create {path} within {timeout}s")
        time.sleep(0.02)


def _start_swtpm(tpmdir, name, ctrl, server=None, flags=None, terminate=False):
    """Starts `swtpm socket --tpm2` on the TPM state in tpmdir, its control
    channel on the unix socket ctrl and, with server, its TPM command
    channel on that socket (without, the client passes it over ctrl, as
    QEMU does); flags: its --flags; terminate: it exits when the client
    closes the connection. Logs to ARTIFACTS/NAME.swtpm.log. Returns the
    process once its sockets exist."""
    os.makedirs(tpmdir, exist_ok=True)
    os.makedirs(ARTIFACTS, exist_ok=True)
    socks = [p for p in (server, ctrl) if p]
    for p in socks:
        if os.path.exists(p):
            os.unlink(p)
    cmd = ["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={tpmdir}"]
    if server:
        cmd += ["--server", f"type=unixio,path={server}"]
    cmd += ["--ctrl", f"type=unixio,path={ctrl}"]
    if flags:
        cmd += ["--flags", flags]
    if terminate:
        cmd.append("--terminate")
    cmd += ["--log", f"file={os.path.join(ARTIFACTS, name + '.swtpm.log')},level=1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for p in socks:
        _wait_path(p, proc, "swtpm")
    return proc


def _stop_swtpm(proc, ctrl):
    """Stops swtpm cleanly (its state is saved), by its control channel."""
    if proc is None or proc.poll() is not None:
        return
    if ctrl and os.path.exists(ctrl):
        subprocess.run(["swtpm_ioctl", "--unix", ctrl, "-s"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=10, check=False)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class HostTPM:
    """swtpm alone on a scenario's TPM state, for host-side TPM operations
    while no VM runs:

        with vm.HostTPM(workdir) as tpm:
            subprocess.run(["unlockctl", "enroll", f"--tcti={tpm.tcti}", ...])

    No firmware drives it, so it starts itself (TPM2_Startup(CLEAR)): PCRs
    are reset, unlike in a booted VM. Persistent objects, NV indexes and the
    dictionary-attack state are shared with the VM's boots."""

    def __init__(self, workdir, name="host-tpm"):
        self.tpmdir = os.path.join(workdir, "tpm")
        self.sock = os.path.join(self.tpmdir, "host-sock")
        self.ctrl = self.sock + ".ctrl"
        self.tcti = f"swtpm:path={self.sock}"
        self.name = name
        self.proc = None

    def __enter__(self):
        self.proc = _start_swtpm(self.tpmdir, self.name, self.ctrl, server=self.sock,
                                 flags="not-need-init,startup-clear")
        progress(f"host-side swtpm on {self.tpmdir}: --tcti={self.tcti}")
        return self

    def __exit__(self, *exc):
        _stop_swtpm(self.proc, self.ctrl)
        progress("host-side swtpm stopped")
        return False


class VM:
    """One boot of a scenario's disk. start(), then expect()/send()/run(),
    then poweroff() (or kill() on any failure)."""

    def __init__(self, workdir, name, memory="1536", extra_args=()):
        self.workdir = workdir
        self.name = name
        self.memory = memory
        self.extra_args = list(extra_args)
        self.tpmdir = os.path.join(workdir, "tpm")
        self.log_path = os.path.join(ARTIFACTS, f"{name}.log")
        self.buf = b""
        self.pos = 0
        self.lock = threading.Condition()
        self.swtpm = None
        self.qemu = None
        self.eof = False
        self.started = None

    def start(self):
        sock = os.path.join(self.tpmdir, "swtpm-sock")
        # terminate: swtpm exits when QEMU closes the connection; the
        # state stays in tpmdir for the next boot.
        self.swtpm = _start_swtpm(self.tpmdir, self.name, sock, terminate=True)
        accel = os.environ.get("UNLOCKD_VM_ACCEL", "tcg")
        machine, code, sb = "q35", OVMF_CODE, []
        if secure_boot(self.workdir):
            machine, code = "q35,smm=on", OVMF_CODE_SECBOOT
            sb = ["-global", "driver=cfi.pflash01,property=secure,value=on"]
        cmd = ["qemu-system-x86_64", "-machine", machine, "-accel", accel, "-m", self.memory, "-smp", SMP, *sb,
               "-drive", f"if=pflash,format=raw,readonly=on,file={code}",
               "-drive", f"if=pflash,format=raw,file={os.path.join(self.workdir, 'OVMF_VARS.fd')}",
               "-drive", f"file={os.path.join(self.workdir, 'disk.img')},format=raw,if=virtio",
               "-chardev", f"socket,id=chrtpm,path={sock}",
               "-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-tis,tpmdev=tpm0",
               "-serial", "stdio", "-display", "none", "-monitor", "none", "-nic", "none", "-no-reboot",
               *self.extra_args]
        self.logf = open(self.log_path, "wb")
        self.qemu = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.started = time.monotonic()
        _STARTED.append(self)
        threading.Thread(target=self._reader, daemon=True).start()
        progress(f"{self.name}: QEMU started (serial log: {self.log_path})")
        return self

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
        """Waits for pattern (str or bytes regex) in the serial output after
        the previous match; returns the match (on bytes)."""
        rx = re.compile(pattern.encode() if isinstance(pattern, str) else pattern, flags)
        what = what or repr(pattern)
        deadline = time.monotonic() + timeout
        progress(f"{self.name}: waiting for {what} (up to {timeout}s)")
        with self.lock:
            while True:
                m = rx.search(self.buf, self.pos)
                if m:
                    self.pos = m.end()
                    progress(f"{self.name}: saw {what} ({time.monotonic() - self.started:.1f}s after start)")
                    return m
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    raise VMError(f"{self.name}: {'timed out' if left <= 0 else 'QEMU exited'} waiting for "
                                  f"{what}\n--- serial log tail ({self.log_path}) ---\n{self.tail()}\n---")
                self.lock.wait(min(left, 1.0))

    def mark(self):
        return self.pos

    def since(self, mark):
        """The serial output from mark (see mark()) to now, as text."""
        return self.buf[mark:].decode(errors="replace")

    def send(self, text):
        """Types text on the serial console (add "\\r" to press Enter)."""
        try:
            self.qemu.stdin.write(text.encode())
            self.qemu.stdin.flush()
        except (BrokenPipeError, ValueError) as e:
            raise VMError(f"{self.name}: cannot type on the console: QEMU is gone ({e})\n{self.tail()}")

    def shell_ready(self, timeout=None):
        """Waits for the booted system's root shell (autologin on ttyS0),
        up to SHELL_TIMEOUT seconds unless timeout says."""
        self.expect(r"vm# ", timeout or SHELL_TIMEOUT, "the booted system's shell")

    def run(self, cmd, timeout=120, check=True):
        """Runs a shell command in the booted guest's root shell; returns
        (status, output with stderr). With check, a non-zero status raises
        VMError. The kernel and systemd write to the same console, so the
        output is framed: each line comes back prefixed with a tag, and
        lines without it (console messages) are left out."""
        # The tag is assembled in the guest, so that the typed text (were it
        # echoed) never contains it.
        a, b = f"@{os.getpid()}x", f"{int(time.monotonic() * 1000) % 100000000}@"
        tag = a + b
        mark = self.pos
        self.send(f"{{ {cmd}\n}} >/run/vm-run.out 2>&1 </dev/null; r=$?; t={a}; t=${{t}}{b}; "
                  f"sed \"s/^/$t|/\" /run/vm-run.out; echo \"${{t}}E$r\"\n")
        m = self.expect(re.escape(tag) + r"E(\d+)\r?\n", timeout, f"`{cmd}`")
        rc = int(m.group(1))
        start = self.buf.rfind(b"\n", mark, m.start()) + 1
        body = self.buf[mark:start].decode(errors="replace").replace("\r", "")
        prefix = tag + "|"
        lines = [line[line.index(prefix) + len(prefix):] for line in body.split("\n") if prefix in line]
        out = "".join(line + "\n" for line in lines)
        if check and rc != 0:
            raise VMError(f"{self.name}: `{cmd}` failed with {rc}:\n{out}")
        return rc, out

    def pcr(self, index, bank="sha256"):
        """Reads a PCR in the guest (sysfs, kernel 5.12+); returns lowercase hex."""
        _, out = self.run(f"cat /sys/class/tpm/tpm0/pcr-{bank}/{index}")
        return out.strip().lower()

    def poweroff(self, timeout=180):
        progress(f"{self.name}: powering off")
        self.send("systemctl poweroff\n")
        self.wait_exit(timeout)

    def wait_exit(self, timeout=180):
        try:
            self.qemu.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise VMError(f"{self.name}: QEMU did not exit within {timeout}s\n{self.tail()}")
        self._stop_swtpm()
        self.logf.close()
        progress(f"{self.name}: QEMU exited ({time.monotonic() - self.started:.1f}s after start)")

    def kill(self):
        """Stops QEMU and swtpm now, whatever their state. Safe to call twice."""
        if self.qemu and self.qemu.poll() is None:
            self.qemu.kill()
            self.qemu.wait()
        self._stop_swtpm()

    def _stop_swtpm(self):
        # With --terminate swtpm leaves once QEMU has gone.
        if self.swtpm and self.swtpm.poll() is None:
            try:
                self.swtpm.wait(10)
            except subprocess.TimeoutExpired:
                self.swtpm.kill()
                self.swtpm.wait()


# The unlockd story, steps shared by the tests that tell it with different
# initramfs builders (test-dracut.py, test-initramfs-tools.py).

PASSPHRASE = "vm test passphrase"
PROMPT = r"Recovery key or passphrase\)?: "
RECOVERY_KEY = r"([cbdefghijklnrtuv]{8}-){7}[cbdefghijklnrtuv]{8}"
WRONG_KEY = "cbdefghi-jklnrtuv-cbdefghi-jklnrtuv-cbdefghi-jklnrtuv-cbdefghi-jklnrtuv"


def skip_reason():
    """Why the VM suite cannot run here (None: it can)."""
    miss = missing_tools()
    if miss:
        return f"missing {', '.join(miss)} (tests/vm/setup --deps-only installs them)"
    if os.geteuid() != 0:
        return "the VM suite builds images with debootstrap and needs root"
    return None


def new_workdir(prefix):
    """A new, empty work dir (removed by run_story() after a pass)."""
    os.makedirs(CACHE, exist_ok=True)
    work = tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("UNLOCKD_VM_WORK", CACHE))
    _WORKDIRS.append(work)
    return work


def make_disk(prefix, *setup_args, env=None):
    """A new work dir with a disk by `setup disk WORK PASSFILE setup_args...`
    (env: more environment variables for setup) holding unlockd; returns
    (work dir, LUKS2 UUID)."""
    work = new_workdir(prefix)
    passfile = os.path.join(work, "pass")
    with open(passfile, "w") as f:
        f.write(PASSPHRASE)
    setup("disk", work, passfile, *setup_args, env=env)
    if open(os.path.join(work, "unlockd")).read().strip() == "absent":
        raise VMError(f"the disk in {work} was made without unlockd: it could not be built or installed "
                      "(setup's messages above say why)")
    return work, open(os.path.join(work, "uuid")).read().strip()


def lsinitrd(work, *args):
    """`lsinitrd ARGS WORK/initrd.img` (the listing, or with "-f PATH" a
    file), as text."""
    return subprocess.run(["lsinitrd", *args, os.path.join(work, "initrd.img")], capture_output=True,
                          check=True).stdout.decode(errors="replace")


def volume_status(m):
    """`unlockctl status --json` in the guest: the first volume."""
    _, out = m.run("unlockctl status --json")
    return json.loads(out)["volumes"][0]


def assert_no_prompt(m, mark, what, prompts=("Recovery key or passphrase",)):
    """Fails when one of prompts appeared on the console since mark."""
    seen = m.since(mark)
    for p in prompts:
        assert p not in seen, f"{what}: a prompt appeared ({p!r})"


def passphrase_boot(work, name, timeout=240):
    """Boots a disk with no TPM2 token yet: unlockd says so and asks; the
    passphrase opens. Waits up to timeout seconds for unlockd's word and at
    least SHELL_TIMEOUT for the shell. Returns the running VM (at its shell)."""
    m = VM(work, name).start()
    m.expect(r"has no TPM2 token", timeout, "unlockd saying there is no TPM2 token")
    m.expect(PROMPT, 60, "the prompt")
    m.send(PASSPHRASE + "\r")
    m.shell_ready(max(timeout, SHELL_TIMEOUT))
    return m


def enroll(m, uuid, pcrs="4+9"):
    """In the booted guest (opened by the passphrase): enrolls a TPM2 token
    and a recovery key; returns the recovery key."""
    m.run(f"printf '%s' '{PASSPHRASE}' > /run/pass")
    _, out = m.run(f"unlockctl enroll --tpm2 --pcrs={pcrs} --recovery-key --unlock-key-file=/run/pass "
                   f"/dev/disk/by-uuid/{uuid} 2>/dev/null")
    m.run("rm /run/pass")
    key = re.search(RECOVERY_KEY, out)
    assert key, f"no recovery key printed: {out}"
    st = volume_status(m)
    assert st["this-boot"]["method"] == "passphrase", st
    return key.group(0)


def recover(m, key, reason=r"PCR 9 changed since sealing", timeout=240):
    """In the initrd, after the TPM refused: waits (up to timeout) for the
    reason and the prompt, types a wrong key (refused), then the recovery
    key; waits for the booted system's shell."""
    m.expect(reason, timeout, f"the reason ({reason})")
    m.expect(PROMPT, 60, "the prompt")
    m.send(WRONG_KEY + "\r")
    m.expect(r"did not unlock it\. Try again", 120, "the wrong key refused")
    m.expect(PROMPT, 30, "the prompt again")
    m.send(key + "\r")
    m.shell_ready(max(timeout, SHELL_TIMEOUT))


def check_resealed(m):
    """In the booted guest after a recovery-key unlock: waits for
    unlockd-reseal.service and checks that it re-sealed, verified, and left
    no job."""
    m.run("for i in $(seq 120); do systemctl is-active -q unlockd-reseal.service || "
          "[ \"$(systemctl show -P ExecMainStatus unlockd-reseal.service)\" = '' ] || break; sleep 1; done; true")
    m.run("systemctl show -P Result unlockd-reseal.service | grep -qx success", timeout=150)
    _, journal = m.run("journalctl -b -u unlockd-reseal.service --no-pager -o cat")
    assert "re-sealed keyslot" in journal and "verified by unsealing" in journal, journal
    st = volume_status(m)
    assert st["this-boot"]["method"] == "recovery-key", st
    assert st.get("job") is None, st


def check_predicted(m, components):
    """In the booted guest after a TPM unlock by a predicted token (sealed
    for `components`): one token was sent to the TPM and opened; the
    re-seal service retired the keyslot's other tokens."""
    st = volume_status(m)
    boot = st["this-boot"]
    assert boot["method"] == "tpm2" and [t["result"] for t in boot["tokens"]] == ["opened"], st
    opened = [t for t in st["tokens"] if t.get("token") == boot["token"]]
    assert opened and opened[0].get("predicted") == components, st
    m.run("for i in $(seq 120); do [ -z \"$(ls /run/unlockd/retire 2>/dev/null)\" ] && break; sleep 1; done; true")
    _, journal = m.run("journalctl -b -u unlockd-reseal.service --no-pager -o cat")
    assert "retired TPM2 token" in journal, journal
    st = volume_status(m)
    tpm = [t for t in st["tokens"] if t["type"] == "systemd-tpm2"]
    assert len(tpm) == 1 and tpm[0].get("predicted") == components, st


def tpm_boot(work, name, what, prompts=("Recovery key or passphrase",), timeout=300):
    """Boots and checks that the TPM opened the root with no prompt, the
    shell within timeout seconds; returns the running VM (at its shell)."""
    m = VM(work, name).start()
    mark = m.mark()
    m.shell_ready(timeout)
    assert_no_prompt(m, mark, what, prompts)
    st = volume_status(m)
    assert st["this-boot"]["method"] == "tpm2", st
    return m


def run_story(story):
    """Runs a test's story() and exits: 77 (skipped) when the suite cannot
    run here; 0 when story() returns; 1, with FAIL and the reason, when it
    raises VMError, an assertion fails, a host command fails
    (CalledProcessError) or a guest's output does not parse (ValueError,
    e.g. JSON). Then, whatever happened: every VM
    it started is stopped, the phase times are printed, and the work dirs
    made by make_disk() are removed after a pass (unless UNLOCKD_VM_KEEP),
    or named after a failure."""
    skip = skip_reason()
    if skip:
        print(f"SKIP: {skip}", flush=True)
        sys.exit(77)
    ok = False
    try:
        story()
        ok = True
        progress("PASS")
    except (VMError, AssertionError, subprocess.CalledProcessError, ValueError) as e:
        print(f"FAIL: {e}", flush=True)
    finally:
        for m in _STARTED:
            m.kill()
        summary()
        for work in _WORKDIRS:
            if not ok:
                progress(f"failed; serial logs in {ARTIFACTS}, work dir kept: {work}")
            elif not os.environ.get("UNLOCKD_VM_KEEP"):
                shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)
