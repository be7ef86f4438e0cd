#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""unlockd's prompt on several consoles (pseudo-terminals), end to end with a
real LUKS2 image that has no TPM2 token (so unlockd goes straight to the
prompt): first answer wins and the other consoles are withdrawn and
restored; wrong then right; editing keys; cancel; EOF on one console;
timeout and max-tries exit codes; every recovery key form; a passphrase
with a TAB and non-ASCII characters, typed with a Backspace over one of
them, opens its keyslot; state.json."""
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import termios
import time

BUILD = os.environ.get("UNLOCKD_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
UNLOCKD = os.path.join(BUILD, "agent/unlockd")
PASSPHRASE = "prompt test pass"
# Typed at a terminal, cryptsetup keeps TAB in a passphrase: so must unlockd.
TAB_PASSPHRASE = "tab\tpässwörd €"
T = tempfile.mkdtemp(prefix="unlockd-prompt.")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from promptlib import PROMPT, Console, check, make_luks, result  # noqa: E402


def sh(*args, input=None):
    return subprocess.run(args, input=input, check=True, capture_output=True)


def image_with_keys():
    img = os.path.join(T, "disk.img")
    make_luks(img, PASSPHRASE)
    # A systemd-form recovery key (keyslot 1, with its token) and a
    # secboot-form key (keyslot 2: 16 raw bytes as the passphrase).
    rk = "cccbcdce-cfcgchci-cjckclcn-crctcucv-bcbbbdbe-bfbgbhbi-bjbkblbn-brbtbubv"
    for i, secret in enumerate([rk.encode(), bytes(range(0xF0, 0x100))]):
        kf = os.path.join(T, f"new{i}")
        with open(kf, "wb") as f:
            f.write(secret)
        pf = os.path.join(T, "pass")
        with open(pf, "w") as f:
            f.write(PASSPHRASE)
        sh("cryptsetup", "luksAddKey", "--batch-mode", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
           "--key-file", pf, img, kf)
    tok = os.path.join(T, "tok.json")
    with open(tok, "w") as f:
        f.write('{"type":"systemd-recovery","keyslots":["1"]}')
    sh("cryptsetup", "token", "import", "--json-file", tok, img)
    # Keyslot 3: a passphrase with a TAB and multi-byte characters.
    kf = os.path.join(T, "tab")
    with open(kf, "wb") as f:
        f.write(TAB_PASSPHRASE.encode())
    sh("cryptsetup", "luksAddKey", "--batch-mode", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
       "--key-file", pf, img, kf)
    # secboot form of f0 f1 … ff: little-endian uint16 groups.
    sb = "-".join(f"{(0xF0 + 2 * g) | ((0xF1 + 2 * g) << 8):05d}" for g in range(8))
    return img, rk, sb


def run_unlockd(img, consoles, *extra):
    state = tempfile.mkdtemp(dir=T)
    args = [UNLOCKD, "--test", "--no-reseal", "--ask-password=no", "--state-dir=" + state,
            "--console=" + ",".join(c.path for c in consoles), *extra, img]
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p, state


def finish(p, consoles, timeout=30):
    end = time.monotonic() + timeout
    while p.poll() is None and time.monotonic() < end:
        for c in consoles:
            c.read(0.05)
    if p.poll() is None:
        p.kill()
    p.wait()
    for c in consoles:
        c.read(0.1)
    return p.returncode


def state_of(state):
    with open(os.path.join(state, "state.json")) as f:
        return json.load(f)["volumes"][0]


def test_two_consoles(img, rk):
    a, b = Console(), Console()
    p, state = run_unlockd(img, [a, b])
    check(a.wait_for(PROMPT) and b.wait_for(PROMPT), "both consoles show the prompt")
    check(b"has no TPM2 token" in a.out + b.out or b"no TPM2 token" in a.out + b.out,
          "the prompt says why it asks")
    a.type("typed ahead")                       # never submitted
    time.sleep(0.3)
    b.type(rk + "\r")
    rc = finish(p, [a, b])
    check(rc == 0, f"exit 0 after an answer on the second console (got {rc})")
    check(b"answered on another console" in a.out, "the first console's prompt is withdrawn")
    attrs = termios.tcgetattr(a.slave)
    check(attrs[3] & termios.ECHO, "the first console's echo is restored")
    r, _, _ = select.select([a.slave], [], [], 0.2)
    check(not r, "the first console's typed-ahead input was discarded")
    s = state_of(state)
    check(s["method"] == "recovery-key" and s["keyslot"] == 1, f"state.json: recovery-key, keyslot 1 ({s})")
    check(rk.encode() not in a.out + b.out, "the typed key is not echoed")


def test_wrong_then_right(img):
    a, b = Console(), Console()
    p, state = run_unlockd(img, [a, b])
    a.wait_for(PROMPT)
    b.wait_for(PROMPT)
    a.type("wrong pass\r")
    check(a.wait_for(b"Try again"), "a wrong answer is refused on that console")
    check(b"Try again" not in b.out, "the other console is not told")
    a.wait_for(b"Try again" + b"." + b"\r\n" + PROMPT, 5)
    check(PROMPT in a.out[a.out.index(b"Try again"):], "the prompt repeats")
    a.type(PASSPHRASE + "\r")
    check(finish(p, [a, b]) == 0, "the right passphrase opens")
    s = state_of(state)
    check(s["method"] == "passphrase" and s["keyslot"] == 0, f"state.json: passphrase, keyslot 0 ({s})")


def test_editing(img):
    a = Console()
    p, _ = run_unlockd(img, [a])
    a.wait_for(PROMPT)
    # Backspace (DEL and ^H), then Ctrl-U clears a wrong start.
    a.type("garbage\x15" + PASSPHRASE[:-1] + "xx\x7f\x08" + PASSPHRASE[-1] + "\r")
    check(finish(p, [a]) == 0, "backspace and Ctrl-U edit the line")


def test_tab_passphrase(img):
    a = Console()
    p, state = run_unlockd(img, [a], "--tries=1")
    a.wait_for(PROMPT)
    # "ö" typed twice and erased once: Backspace takes the whole character.
    typed = TAB_PASSPHRASE.replace("ö", "öö\x7f")
    a.type(typed + "\r")
    rc = finish(p, [a])
    check(rc == 0, f"a passphrase with a TAB, typed with a Backspace over a multi-byte character, opens (rc {rc})")
    if rc == 0:
        s = state_of(state)
        check(s["method"] == "passphrase" and s["keyslot"] == 3, f"state.json: passphrase, keyslot 3 ({s})")


def test_cancel(img):
    for key, name in ((b"\x03", "Ctrl-C"), (b"\x1b", "ESC")):
        a = Console()
        p, _ = run_unlockd(img, [a])
        a.wait_for(PROMPT)
        a.type(b"half typed" + key)
        check(a.wait_for(b"cancelled"), f"{name} cancels the entry")
        a.type(PASSPHRASE + "\r")
        check(finish(p, [a]) == 0, f"after {name}, a fresh entry opens (the cancelled text is gone)")


def test_eof_one_console(img):
    a, b = Console(), Console()
    p, _ = run_unlockd(img, [a, b])
    a.wait_for(PROMPT)
    b.wait_for(PROMPT)
    os.close(a.master)                          # a serial line unplugged
    time.sleep(0.5)
    check(p.poll() is None, "unlockd keeps asking after one console went away")
    b.type(PASSPHRASE + "\r")
    rc = finish(p, [b])
    check(rc == 0, f"the other console still answers (rc {rc})")


def test_timeout_and_tries(img):
    a = Console()
    p, state = run_unlockd(img, [a], "--timeout=1")
    rc = finish(p, [a], 20)
    check(rc == 2, f"--timeout ends with exit status 2 (got {rc})")
    check(state_of(state)["opened"] is False, "not opened after a timeout")
    a = Console()
    p, _ = run_unlockd(img, [a], "--tries=2")
    a.wait_for(PROMPT)
    a.type("bad1\r")
    a.wait_for(b"Try again")
    a.type("bad2\r")
    rc = finish(p, [a])
    check(rc == 3, f"--tries=2 ends with exit status 3 after two wrong answers (got {rc})")


def test_key_forms(img, rk, sb):
    forms = {
        "systemd key, upper case": rk.upper(),
        "systemd key, no dashes": rk.replace("-", ""),
        "systemd key, stray spaces": " " + rk[:20] + " " + rk[20:] + " ",
        "secboot key": sb,
        "secboot key, spaces": sb.replace("-", " "),
        "plain passphrase": PASSPHRASE,
    }
    for name, typed in forms.items():
        a = Console()
        p, state = run_unlockd(img, [a])
        a.wait_for(PROMPT)
        a.type(typed + "\r")
        rc = finish(p, [a])
        if check(rc == 0, f"{name} opens (rc {rc})"):
            s = state_of(state)
            want = "passphrase" if name == "plain passphrase" else "recovery-key"
            check(s["method"] == want, f"{name}: state.json method {s['method']}, expected {want}")


def main():
    for tool in ("cryptsetup",):
        if not shutil.which(tool):
            print(f"SKIP: {tool} missing")
            return 77
    img, rk, sb = image_with_keys()
    for t in (lambda: test_two_consoles(img, rk), lambda: test_wrong_then_right(img),
              lambda: test_editing(img), lambda: test_tab_passphrase(img), lambda: test_cancel(img),
              lambda: test_eof_one_console(img),
              lambda: test_timeout_and_tries(img), lambda: test_key_forms(img, rk, sb)):
        t()
    shutil.rmtree(T, ignore_errors=True)
    return result()


if __name__ == "__main__":
    sys.exit(main())
