#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""prompt_ask_check() on several consoles (pseudo-terminals), through
prompt-driver: the first right answer wins, the other consoles are withdrawn,
their settings restored and their unread input dropped; wrong answers are
told on their console only; editing keys; cancel; bounded input; EOF on one
console or all; timeout, tries, no console and check() failure exit codes;
a stop signal restores the consoles before it takes effect; the answer
appears in no log. A console that is not a terminal (a FIFO, a regular
file, /dev/null, a directory) is skipped with a warning, untouched; a
symbolic link to a terminal is followed. UTF-8-aware Backspace; TAB and the
other bytes cryptsetup keeps in a typed passphrase are kept; the tty prompt
(prompt_ask_tty) edits the same way."""
import os
import select
import signal
import sys
import tempfile
import termios
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from promptlib import (ABORTED, ACCEPTED, ALL_GONE, ANSWER, CANCELLED, NO_CONSOLE, NO_MORE_TRIES, PROMPT, SLOW,
                       TIMEOUT, Console, Driver, check, result)


def args_for(*consoles):
    return ["--console=" + c.path for c in consoles]


def readable(c, timeout=0.2):
    """Whether the slave side has input a reader would get."""
    r, _, _ = select.select([c.slave], [], [], timeout)
    return bool(r)


def restored(c):
    lflag = termios.tcgetattr(c.slave)[3]
    return bool(lflag & termios.ECHO) and bool(lflag & termios.ICANON) and bool(lflag & termios.ISIG)


def test_first_answer_wins():
    a, b = Console(), Console()
    d = Driver(args_for(a, b) + ["--message=The TPM did not unlock it.\nSecond line."],
               env={"CHECK_DELAY_MS": "800"})
    check(a.wait_for(PROMPT) and b.wait_for(PROMPT), "both consoles show the prompt")
    check(b"The TPM did not unlock it.\r\nSecond line.\r\n" + PROMPT in a.out, "the message, line by line, then the prompt")
    check(not (termios.tcgetattr(a.slave)[3] & termios.ECHO), "echo is off while asking")
    a.type("typed ahead on a")                  # never submitted
    time.sleep(0.3)
    b.type(ANSWER + "\r")
    time.sleep(0.3)                             # check() is running (800 ms)
    a.type("typed during the check\r")          # left in a's input queue
    rc = d.finish([a, b])
    check(rc == ACCEPTED, f"exit {ACCEPTED} after the answer on the second console (got {rc})")
    check(d.stdout == f"accepted: {ANSWER}\n", f"check() ran once, with the second console's line: {d.stdout!r}")
    check(b"answered on another console" in a.out, "the first console says the prompt was answered elsewhere")
    check(b"withdrawn" not in b.out and b"answered on another" not in b.out, "the answering console is not told that")
    check(restored(a) and restored(b), "both consoles' echo, canonical mode and signals are restored")
    check(not readable(a), "nothing typed on the first console is left to read")
    check(ANSWER.encode() not in a.out + b.out, "the answer is not echoed")
    check(ANSWER not in d.stderr, "the answer is not logged (debug level)")
    a.close(), b.close()


def test_wrong_then_right():
    a, b = Console(), Console()
    d = Driver(args_for(a, b))
    a.wait_for(PROMPT), b.wait_for(PROMPT)
    a.type("wrong answer\r\n")                # a terminal that sends CR LF for Enter
    check(a.wait_for(b"Try again"), "a wrong answer is refused on its console")
    check(a.wait_for(PROMPT, count=2), "and the prompt repeats there")
    time.sleep(0.3)
    a.read(), b.read()
    check(a.out.count(PROMPT) == 2, f"CR LF is one Enter, not an extra empty line ({a.out.count(PROMPT)} prompts)")
    check(b"Try again" not in b.out and b.out.count(PROMPT) == 1, "the other console is not told")
    check(d.running(), "still asking after a wrong answer")
    a.type(ANSWER + "\n")                      # LF alone submits too
    rc = d.finish([a, b])
    check(rc == ACCEPTED, f"the right answer after a wrong one is accepted (rc {rc})")
    check(d.stdout == f"rejected\naccepted: {ANSWER}\n", f"two checks: {d.stdout!r}")
    check("wrong answer" not in d.stderr, "the wrong answer is not logged")
    a.close(), b.close()


def test_editing():
    a = Console()
    d = Driver(args_for(a))
    a.wait_for(PROMPT)
    # Ctrl-U clears a wrong start; DEL and ^H erase one character each.
    a.type("garbage\x15" + ANSWER[:-1] + "xx\x7f\x08" + ANSWER[-1] + "\r")
    rc = d.finish([a])
    check(rc == ACCEPTED and d.stdout == f"accepted: {ANSWER}\n",
          f"backspace and Ctrl-U edit the line (rc {rc}, {d.stdout!r})")
    a.close()

    a = Console()
    d = Driver(args_for(a))
    a.wait_for(PROMPT)
    a.type("\x7f\x7f" + ANSWER + "\r")          # backspace on an empty line does nothing
    check(d.finish([a]) == ACCEPTED and d.stdout == f"accepted: {ANSWER}\n", "backspace on an empty line is harmless")
    a.close()


def test_cancel():
    for key, name in ((b"\x03", "Ctrl-C"), (b"\x1b", "ESC")):
        a = Console()
        d = Driver(args_for(a))
        a.wait_for(PROMPT)
        a.type(b"half typed" + key)
        check(a.wait_for(b"cancelled"), f"{name} cancels the entry and says so")
        check(a.wait_for(PROMPT, count=2), f"after {name}, the prompt repeats")
        check(d.running(), f"{name} does not end the prompt (nor kill it: ISIG is off)")
        a.type(ANSWER + "\r")
        rc = d.finish([a])
        check(rc == ACCEPTED and d.stdout == f"accepted: {ANSWER}\n",
              f"after {name}, a fresh entry is accepted, the cancelled text gone (rc {rc}, {d.stdout!r})")
        a.close()


def test_empty_line_and_bound():
    a = Console()
    d = Driver(args_for(a))
    a.wait_for(PROMPT)
    a.type("\r\r")
    check(a.wait_for(PROMPT, count=3), "an empty line asks again")
    a.type(ANSWER + "\r")
    rc = d.finish([a])
    check(rc == ACCEPTED and d.stdout == f"accepted: {ANSWER}\n", f"empty lines are not checked ({d.stdout!r})")
    a.close()

    # PROMPT_MAX_INPUT is 1024 with its NUL: 1023 characters are kept, the rest ignored.
    a = Console()
    d = Driver(args_for(a), answer="k" * 1023)
    a.wait_for(PROMPT)
    a.type("k" * 1500 + "\r")
    rc = d.finish([a])
    check(rc == ACCEPTED and d.stdout == "accepted: " + "k" * 1023 + "\n",
          f"input is bounded at 1023 characters, the extra ignored (rc {rc}, {len(d.stdout)} bytes out)")
    a.close()


def test_duplicate_console():
    a = Console()
    d = Driver(args_for(a, a))
    a.wait_for(PROMPT)
    time.sleep(0.3)
    a.read()
    check(a.out.count(PROMPT) == 1, f"the same terminal twice is asked once ({a.out.count(PROMPT)} prompts)")
    a.type(ANSWER + "\r")
    check(d.finish([a]) == ACCEPTED, "and answered there")
    a.close()


def test_stalled_console():
    """A console that takes no output (a serial line held by flow control)
    holds up the others for a bounded time only."""
    a, b = Console(), Console()                 # nobody reads a's output
    start = time.monotonic()
    d = Driver(args_for(a, b) + ["--message=" + "x" * 99, "--message-lines=3000"])    # 300 kB
    check(b.wait_for(PROMPT, timeout=15), "the second console gets its prompt although the first is stuck")
    took = time.monotonic() - start
    check(took < 8 * SLOW, f"after a bounded wait ({took:.1f} s)")
    b.type(ANSWER + "\r")
    rc = d.finish([b])
    check(rc == ACCEPTED, f"and answers (rc {rc})")
    check("does not take output" in d.stderr, "the stuck console is logged at debug level")
    check(restored(a), "the stuck console is restored all the same")
    a.close(), b.close()


def test_eof_one_console():
    a, b = Console(), Console()
    d = Driver(args_for(a, b))
    a.wait_for(PROMPT), b.wait_for(PROMPT)
    a.hang_up()                                 # a serial line unplugged
    time.sleep(0.5)
    check(d.running(), "still asking after one console went away")
    b.type(ANSWER + "\r")
    rc = d.finish([b])
    check(rc == ACCEPTED, f"the other console still answers (rc {rc})")
    check("went away" in d.stderr, "the lost console is logged at debug level")
    a.close(), b.close()

    a, b = Console(), Console()
    d = Driver(args_for(a, b))
    a.wait_for(PROMPT), b.wait_for(PROMPT)
    a.hang_up()
    b.hang_up()
    rc = d.finish()
    check(rc == ALL_GONE, f"every console at end of input: exit {ALL_GONE} (got {rc})")
    a.close(), b.close()


def test_timeout():
    a, b = Console(), Console()
    start = time.monotonic()
    d = Driver(args_for(a, b) + ["--timeout-usec=1000000"])
    a.wait_for(PROMPT)
    a.type("never finished")
    rc = d.finish([a, b])
    took = time.monotonic() - start
    check(rc == TIMEOUT, f"timeout: exit {TIMEOUT} (got {rc})")
    check(1.0 <= took < 8 * SLOW, f"after the timeout, not before ({took:.1f} s)")
    check(b"timed out" in a.out and b"timed out" in b.out, "every console says the prompt timed out")
    check(restored(a) and restored(b), "the consoles are restored after a timeout")
    check(d.stdout == "", "nothing was checked")
    a.close(), b.close()


def test_max_tries():
    a, b = Console(), Console()
    d = Driver(args_for(a, b) + ["--max-tries=2"])
    a.wait_for(PROMPT), b.wait_for(PROMPT)
    a.type("bad one\r")
    a.wait_for(b"Try again")
    b.type("bad two\r")                         # tries count across consoles
    rc = d.finish([a, b])
    check(rc == NO_MORE_TRIES, f"two wrong answers with --max-tries=2: exit {NO_MORE_TRIES} (got {rc})")
    check(b"No more tries" in b.out, "the console of the last try says no more tries")
    check(b"withdrawn: no more tries" in a.out, "the other console is withdrawn")
    check(d.stdout == "rejected\nrejected\n", f"two checks ({d.stdout!r})")
    check(restored(a) and restored(b), "the consoles are restored")
    a.close(), b.close()


def test_no_console():
    d = Driver(["--console=/nonexistent/tty"])
    rc = d.finish()
    check(rc == NO_CONSOLE, f"no console to ask on: exit {NO_CONSOLE} (got {rc})")

    a = Console()
    d = Driver(["--console=/nonexistent/tty"] + args_for(a))
    check(a.wait_for(PROMPT), "a missing console is skipped, the others are asked")
    a.type(ANSWER + "\r")
    check(d.finish([a]) == ACCEPTED, "and answer")
    check("/nonexistent/tty" in d.stderr, "the skipped console is logged at debug level")
    a.close()


def test_not_a_terminal():
    """A console must be a terminal: a FIFO would never answer (and read back
    what was written to it), a regular file would be overwritten with the
    prompt. Such a path is skipped, untouched, with a warning naming it and
    why; none left means "no console"."""
    t = tempfile.mkdtemp(prefix="unlockd-consoles.")
    fifo, regular, directory = (os.path.join(t, n) for n in ("fifo", "file", "dir"))
    os.mkfifo(fifo)
    content = b"not a terminal\ncorrect horse battery\n" * 3
    with open(regular, "wb") as f:
        f.write(content)
    os.mkdir(directory)
    mtime = os.stat(regular).st_mtime_ns

    for path, what in ((fifo, "FIFO"), (regular, "regular file"), ("/dev/null", "not a terminal"),
                       (directory, "directory")):
        start = time.monotonic()
        d = Driver(["--console=" + path])
        rc = d.finish(timeout=10)             # bounded: a FIFO console used to hang the prompt
        took = time.monotonic() - start
        check(rc == NO_CONSOLE, f"{path} alone: no console to ask on, exit {NO_CONSOLE} (got {rc}, {took:.1f} s)")
        warning = [line for line in d.stderr.splitlines() if path in line and what in line]
        check(warning, f"{path}: a warning names it and says why ({what}): {d.stderr.strip()[:300]!r}")
        check(d.stdout == "", f"{path}: nothing was read from it as an answer ({d.stdout[:60]!r})")

    with open(regular, "rb") as f:
        check(f.read() == content, "the regular file's content is unchanged")
    check(os.stat(regular).st_mtime_ns == mtime, "the regular file was not written to")

    # Skipped among real consoles: the terminal is asked, the others stay untouched.
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    a = Console()
    d = Driver([f"--console={fifo}", f"--console={regular}", "--console=/dev/null"] + args_for(a))
    check(a.wait_for(PROMPT), "with a FIFO, a regular file and /dev/null before it, the terminal is asked")
    a.type(ANSWER + "\r")
    rc = d.finish([a], timeout=10)
    check(rc == ACCEPTED and d.stdout == f"accepted: {ANSWER}\n", f"and answers (rc {rc}, {d.stdout!r})")
    try:
        leaked = os.read(rfd, 4096)
    except BlockingIOError:
        leaked = b""
    os.close(rfd)
    check(leaked == b"", f"nothing was written into the FIFO ({leaked[:40]!r})")
    with open(regular, "rb") as f:
        check(f.read() == content, "nor into the regular file")
    a.close()

    # A symbolic link to a terminal is a terminal (udev's /dev/serial/by-id/…).
    a = Console()
    link = os.path.join(t, "link")
    os.symlink(a.path, link)
    d = Driver(["--console=" + link])
    check(a.wait_for(PROMPT), "a symbolic link to a terminal is followed")
    a.type(ANSWER + "\r")
    check(d.finish([a]) == ACCEPTED, "and answered there")
    a.close()

    # The same rule for the consoles the kernel names in /sys/class/tty/console/active.
    dev = os.path.join(t, "dev")
    os.mkdir(dev)
    a = Console()
    os.mkfifo(os.path.join(dev, "ttyFIFO"))
    with open(os.path.join(dev, "ttyFILE"), "wb") as f:
        f.write(content)
    os.symlink("/dev/null", os.path.join(dev, "ttyNULL"))
    os.symlink(a.path, os.path.join(dev, "ttyPTY"))
    active = os.path.join(t, "active")
    with open(active, "w") as f:
        f.write("ttyFIFO ttyFILE ttyNULL ttyMISSING ttyPTY\n")
    d = Driver([f"--active-consoles={active}", f"--dev-dir={dev}"])
    check(a.wait_for(PROMPT), "active consoles: only the terminal is asked")
    a.type(ANSWER + "\r")
    rc = d.finish([a], timeout=10)
    check(rc == ACCEPTED and d.stdout == f"accepted: {ANSWER}\n", f"active consoles: answered (rc {rc}, {d.stdout!r})")
    for name, what in (("ttyFIFO", "FIFO"), ("ttyFILE", "regular file"), ("ttyNULL", "not a terminal"),
                       ("ttyMISSING", "No such file")):
        check(any(f"{dev}/{name}" in line and what in line for line in d.stderr.splitlines()),
              f"active consoles: {name} is skipped with a warning ({what})")
    with open(os.path.join(dev, "ttyFILE"), "rb") as f:
        check(f.read() == content, "active consoles: the regular file is unchanged")
    a.close()

    with open(active, "w") as f:
        f.write("ttyFIFO ttyFILE\n")
    d = Driver([f"--active-consoles={active}", f"--dev-dir={dev}"])
    rc = d.finish(timeout=10)
    check(rc == NO_CONSOLE, f"active consoles that are no terminals: no console, exit {NO_CONSOLE} (got {rc})")

    for p in (fifo, regular, link, active):
        os.unlink(p)
    for name in os.listdir(dev):
        os.unlink(os.path.join(dev, name))
    os.rmdir(dev)
    os.rmdir(directory)
    os.rmdir(t)


def test_utf8_backspace():
    """Backspace removes a whole character, not one byte of its UTF-8 sequence."""
    answer = "pässwörd €𝄞"
    a = Console()
    d = Driver(args_for(a), answer=answer)
    a.wait_for(PROMPT)
    # 2-, 3- and 4-byte sequences, erased with DEL and with ^H.
    a.type("pää\x7fsswöö\x7frd €€\x08𝄞𝄞\x7f\r")
    rc = d.finish([a])
    check(rc == ACCEPTED and d.stdout == f"accepted: {answer}\n",
          f"Backspace over ä, ö, €, 𝄞 removes each whole (rc {rc}, {d.stdout!r})")
    a.close()

    # Not UTF-8 (a Latin-1 terminal): one byte per Backspace; a stray lead byte is one too.
    a = Console()
    d = Driver(args_for(a), answer=b"caf\xe9")
    a.wait_for(PROMPT)
    a.type(b"caf\xe9\xe9\x7f\xc3\x7f\r")
    rc = d.finish([a])
    check(rc == ACCEPTED and d.stdout_bytes == b"accepted: caf\xe9\n",
          f"non-UTF-8 bytes are erased one at a time (rc {rc}, {d.stdout_bytes!r})")
    a.close()

    # The bound keeps characters whole: one that does not fit is dropped, not cut.
    a = Console()
    d = Driver(args_for(a), answer="k" * 1022)
    a.wait_for(PROMPT)
    a.type("k" * 1022 + "ä€\r")
    rc = d.finish([a])
    check(rc == ACCEPTED and d.stdout == "accepted: " + "k" * 1022 + "\n",
          f"a character past the bound is dropped whole (rc {rc}, {d.stdout[-12:]!r})")
    a.close()


# What a terminal's line discipline consumes with the kernel's default settings
# (cryptsetup reads a canonical-mode line, so these never reach a passphrase):
# NUL, ^Q ^S (flow control), ^R (reprint), ^V (literal next), ^W (word erase),
# ^Z (suspend), ^\ (quit).
CONSUMED = "\x00\x11\x13\x12\x16\x17\x1a\x1c"
# Everything else cryptsetup keeps, TAB included.
KEPT = "\t\x01\x02\x05\x06\x07\x0b\x0c\x0e\x0f\x10\x14\x18\x19\x1d\x1e\x1f"


def test_tab_and_control_bytes():
    answer = "tab\there" + KEPT + " ~é"
    a = Console()
    d = Driver(args_for(a), answer=answer)
    a.wait_for(PROMPT)
    a.type("tab\t" + CONSUMED + "here" + KEPT + " ~é\r")
    rc = d.finish([a])
    check(rc == ACCEPTED and d.stdout_bytes == b"accepted: " + answer.encode() + b"\n",
          f"TAB and the other bytes cryptsetup keeps are kept as typed, the consumed ones dropped "
          f"(rc {rc}, {d.stdout_bytes!r})")
    check(answer not in d.stderr, "the answer is not logged")
    a.close()

    # A TAB on its own is an answer too (not an empty line).
    a = Console()
    d = Driver(args_for(a), answer="\t")
    a.wait_for(PROMPT)
    a.type("\t\r")
    rc = d.finish([a])
    check(rc == ACCEPTED and d.stdout == "accepted: \t\n", f"a lone TAB is checked (rc {rc}, {d.stdout!r})")
    a.close()


def test_tty_prompt():
    """prompt_ask_tty() (unlockctl's prompts) edits the same way."""
    answer = "tab\tpäss"
    for typed, rc_want, out_want, what in (
            ("tab\tpää\x7f\x11ss\r", ACCEPTED, f"accepted: {answer}\n", "TAB kept, Backspace over ä, ^Q dropped"),
            ("tab\tpäss\n", ACCEPTED, f"accepted: {answer}\n", "LF is Enter"),
            ("garbage\x15tab\tpäss\x04", ACCEPTED, f"accepted: {answer}\n", "Ctrl-U clears, Ctrl-D ends the line"),
            ("half\x1b", CANCELLED, "", "ESC cancels"),
            ("half\x03", CANCELLED, "", "Ctrl-C cancels")):
        a = Console()
        d = Driver(["--tty"], answer=answer, stdin=a.slave, new_session=True)
        a.wait_for(PROMPT)
        check(not (termios.tcgetattr(a.slave)[3] & termios.ECHO), f"tty prompt, {what}: echo is off while asking")
        a.type(typed)
        rc = d.finish([a])
        check(rc == rc_want and d.stdout == out_want, f"tty prompt: {what} (rc {rc}, {d.stdout!r})")
        check(restored(a), f"tty prompt, {what}: the terminal is restored")
        a.close()


def test_check_fails():
    a, b = Console(), Console()
    d = Driver(args_for(a, b), env={"ABORT": "make it fail"})
    a.wait_for(PROMPT), b.wait_for(PROMPT)
    a.type("make it fail\r")
    rc = d.finish([a, b])
    check(rc == ABORTED, f"check() failing aborts the prompt with its error: exit {ABORTED} (got {rc})")
    check(b"withdrawn" in b.out and b"prompt ended" in a.out, "both consoles say the prompt ended")
    check(restored(a) and restored(b), "the consoles are restored")
    a.close(), b.close()


def test_stop_signal():
    """SIGTERM (systemd stopping the unit) or SIGHUP in the middle of a prompt:
    the consoles get their settings back and are told, then the signal takes
    effect: the process dies of it."""
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        a, b = Console(), Console()
        d = Driver(args_for(a, b))
        check(a.wait_for(PROMPT) and b.wait_for(PROMPT), f"{sig.name}: both consoles show the prompt")
        check(not (termios.tcgetattr(a.slave)[3] & termios.ECHO), f"{sig.name}: echo is off while asking")
        a.type("half a key")                    # never submitted
        time.sleep(0.2)
        d.p.send_signal(sig)
        rc = d.finish([a, b])
        check(rc == -sig, f"{sig.name}: the process dies of the signal (returncode {rc})")
        check(restored(a) and restored(b), f"{sig.name}: both consoles' echo, canonical mode and signals are restored")
        check(b"unlockd was stopped" in a.out and b"unlockd was stopped" in b.out,
              f"{sig.name}: both consoles say the prompt ended because unlockd was stopped")
        check(not readable(a), f"{sig.name}: the unsubmitted input is dropped")
        check("accepted" not in d.stdout, f"{sig.name}: nothing was accepted")
        a.close(), b.close()


def main():
    if not os.path.exists("/dev/ptmx"):
        print("SKIP: no pseudo-terminals")
        return 77
    for t in (test_first_answer_wins, test_wrong_then_right, test_editing, test_cancel, test_empty_line_and_bound,
              test_duplicate_console, test_stalled_console, test_eof_one_console, test_timeout, test_max_tries, test_no_console,
              test_not_a_terminal, test_utf8_backspace, test_tab_and_control_bytes, test_tty_prompt,
              test_check_fails, test_stop_signal):
        print(f"# {t.__name__}", flush=True)
        t()
    return result()


if __name__ == "__main__":
    sys.exit(main())
