"""An emulation of Debian's ``cryptroot-unlock``, run by the lab's dropbear as its forced command.

    python -I cryptroot_unlock.py STATE_FILE            # one unlock attempt (dropbear runs this)
    python -I cryptroot_unlock.py --finish STATE_FILE   # the detached "rest of the boot"

The server's state is a JSON file (volumes and their LUKS2 headers, which are unlocked, failure
counts, when the initramfs "booted"), guarded by an flock so that concurrent sessions agree.

Like the real script, each passphrase is checked by the real ``cryptsetup`` against a real LUKS2
header, fed on standard input. Without a terminal the passphrase is everything up to end of input,
a trailing newline included (so ``echo pass | ssh ...`` fails, as on a real server); with a
terminal it is one line, the newline stripped. One invocation unlocks one volume, the first locked
one. When the last one opens, a detached finisher waits ``boot_delay`` seconds (the rest of the
boot), stops dropbear and starts the system's sshd again with its own host key and port.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script by dropbear (python -I): make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from panel.lab import procs
from panel.lab.luks import passphrase_opens

MAX_TRIES = 3
SCRIPT = Path(__file__).resolve()

State = dict[str, Any]


# --- the state file -------------------------------------------------------------------------------


@contextlib.contextmanager
def locked(state_path: Path) -> Iterator[None]:
    """Hold the server's state lock (a sibling ``.lock`` file, so the state can be replaced atomically)."""
    with open(state_path.with_suffix(".lock"), "a+b") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def load_state(state_path: Path) -> State:
    return dict(json.loads(state_path.read_text()))


def save_state(state_path: Path, state: State) -> None:
    temporary = state_path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=2, sort_keys=True))
    os.replace(temporary, state_path)


def new_state(
    *,
    server: str,
    volumes: dict[str, Path],
    received_log: Path,
    initramfs_delay: float = 0.0,
    boot_delay: float = 2.0,
    sshd_argv: list[str] | None = None,
    sshd_log: Path | None = None,
) -> State:
    """A freshly booted initramfs: every volume locked. ``volumes`` maps a name to its LUKS2 header.

    ``sshd_argv`` is how the booted system's sshd is started again after the last volume opens.
    """
    state: State = {
        "server": server,
        "volumes": [{"name": name, "header": str(header)} for name, header in volumes.items()],
        "received_log": str(received_log),
        "initramfs_delay": initramfs_delay,
        "boot_delay": boot_delay,
        "sshd_argv": sshd_argv,
        "sshd_log": str(sshd_log) if sshd_log else None,
        "sshd": None,  # ProcessRecord json of the booted system's sshd, once the finisher started it
        "dropbear": None,  # ProcessRecord json, set by whoever starts dropbear
        "finisher": None,
        "host_mount_namespace": None,  # set when dropbear runs in its own mount namespace
    }
    relock(state)
    return state


def relock(state: State, *, now: float | None = None) -> None:
    """Back to a just-booted initramfs: all volumes locked, no failures, the boot clock restarted."""
    state["unlocked"] = []
    state["failures"] = {volume["name"]: 0 for volume in state["volumes"]}
    state["booted_at"] = time.time() if now is None else now
    state["phase"] = "locked"  # then "booting" (finisher waiting), then "up" (sshd started)


def record_of(state: State, key: str) -> procs.ProcessRecord | None:
    data = state.get(key)
    return procs.ProcessRecord.from_json(data) if data else None


def read_received(received_log: Path) -> list[dict[str, Any]]:
    """The attempts recorded so far, each with ``server``, ``volume``, ``tty`` and ``data`` (bytes)."""
    if not received_log.exists():
        return []
    entries = []
    for line in received_log.read_text().splitlines():
        entry = json.loads(line)
        entry["data"] = base64.b64decode(entry.pop("base64"))
        entries.append(entry)
    return entries


# --- one unlock attempt ---------------------------------------------------------------------------


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _record_received(state: State, volume: str, data: bytes, tty: bool) -> None:
    # Test instrumentation of the emulated server, not a feature of the real one: it lets tests
    # assert exactly which bytes arrived. It only ever holds the lab's demo passphrase (public demo
    # data, printed by `lab up`) or the wrong guesses that tests send.
    entry = {
        "at": time.time(),
        "server": state["server"],
        "volume": volume,
        "tty": tty,
        "base64": base64.b64encode(data).decode(),
    }
    log = Path(state["received_log"])
    with open(log, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(json.dumps(entry) + "\n")


def _read_passphrase(volume: str) -> tuple[bytes, bool]:
    if sys.stdin.isatty():
        return _read_line_without_echo(f"Please unlock disk {volume}: "), True
    _say(f"Please unlock disk {volume}")
    return sys.stdin.buffer.read(), False  # to end of input, the newline (if any) kept


def _read_line_without_echo(prompt: str) -> bytes:
    """One line from the terminal, echo off, the newline stripped.

    Not getpass: it switches echo off with TCSAFLUSH, which throws away what a client typed (or
    piped) ahead of the prompt, and the session would then wait forever.
    """
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    quiet = list(saved)
    quiet[3] &= ~termios.ECHO
    sys.stdout.write(prompt)
    sys.stdout.flush()
    termios.tcsetattr(fd, termios.TCSANOW, quiet)
    try:
        line = sys.stdin.buffer.readline()
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, saved)
        _say("")
    return line[:-1] if line.endswith(b"\n") else line


def unlock_once(state_path: Path) -> int:
    with locked(state_path):
        state = load_state(state_path)
        if state["phase"] != "locked":
            _say("cryptroot-unlock: every volume is already set up; the system is booting.")
            return 0
        if time.time() - state["booted_at"] < state["initramfs_delay"]:
            _say("Try again later")  # the real script says so while no askpass is waiting yet
            return 1
        volume = next(v for v in state["volumes"] if v["name"] not in state["unlocked"])
        if state["failures"][volume["name"]] >= MAX_TRIES:
            _say(f"cryptsetup: maximum number of tries exceeded for {volume['name']}")
            return 1

    passphrase, tty = _read_passphrase(volume["name"])
    opens = passphrase_opens(Path(volume["header"]), passphrase)

    with locked(state_path):
        state = load_state(state_path)
        _record_received(state, volume["name"], passphrase, tty)
        name = volume["name"]
        if state["phase"] != "locked" or name in state["unlocked"]:
            _say(f"cryptsetup: {name} set up successfully" if opens else "cryptroot-unlock: nothing to do.")
            return 0 if opens else 1
        if not opens:
            state["failures"][name] += 1
            save_state(state_path, state)
            _say("cryptsetup: cryptsetup failed, bad password or options?")
            if state["failures"][name] >= MAX_TRIES:
                _say(f"cryptsetup: maximum number of tries exceeded for {name}")
            return 1
        state["unlocked"].append(name)
        _say(f"cryptsetup: {name} set up successfully")
        if len(state["unlocked"]) == len(state["volumes"]):
            state["phase"] = "booting"
            unlocker = procs.record_for(os.getpid(), "cryptroot-unlock session")
            state["unlocker"] = unlocker.to_json() if unlocker else None
            state["finisher"] = _spawn_finisher(state_path, state).to_json()
        save_state(state_path, state)
        return 0


def _spawn_finisher(state_path: Path, state: State) -> procs.ProcessRecord:
    log = state_path.with_name("finisher.log")
    with open(log, "ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-I", str(SCRIPT), "--finish", str(state_path)],
            stdin=subprocess.DEVNULL,
            # Never our stdout: dropbear keeps the session open while anything holds its pipes.
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    record = procs.record_for(process.pid, f"boot finisher of {state['server']}")
    return record or procs.ProcessRecord(process.pid, 0, f"boot finisher of {state['server']}")


# --- the rest of the boot -------------------------------------------------------------------------


def finish_boot(state_path: Path) -> int:
    """Wait out the boot delay, stop dropbear, start the system's sshd. Runs detached."""
    state = load_state(state_path)
    # Let the unlocking session end first (as on a real server, where cryptroot-unlock returns
    # before the boot goes on), so that its client gets every line of output.
    unlocker = record_of(state, "unlocker")
    if unlocker is not None:
        procs.wait_until(lambda: not procs.is_alive(unlocker), 5.0)
    # A plain sleep: this process stands for the time a real server spends booting.
    time.sleep(max(0.0, float(state["boot_delay"])))
    with locked(state_path):
        state = load_state(state_path)
        finisher = record_of(state, "finisher")
        if state["phase"] != "booting" or finisher is None or finisher.pid != os.getpid():
            return 0  # rebooted or stopped meanwhile: this boot is void
        procs.stop(record_of(state, "dropbear"))  # also ends the sessions, as the real pivot does
        state["dropbear"] = None
        _leave_initramfs_namespace(state)
        if state.get("sshd_argv"):
            log = Path(state["sshd_log"] or state_path.with_name("sshd.log"))
            with open(log, "ab") as log_file:
                sshd = subprocess.Popen(
                    state["sshd_argv"],
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            record = procs.record_for(sshd.pid, f"sshd of {state['server']}")
            state["sshd"] = record.to_json() if record else None
        state["phase"] = "up"
        state["finisher"] = None
        save_state(state_path, state)
    return 0


def _leave_initramfs_namespace(state: State) -> None:
    """Undo dropbear's private /etc/passwd (see panel.lab.dropbear) before starting the real sshd.

    This process inherited dropbear's private mount namespace. The check against the host's
    namespace makes sure the host's own /etc/passwd is never touched.
    """
    host_namespace = state.get("host_mount_namespace")
    if host_namespace and os.readlink("/proc/self/ns/mnt") != host_namespace:
        subprocess.run(["umount", "/etc/passwd"], check=False, capture_output=True)


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "--finish":
        return finish_boot(Path(argv[2]))
    if len(argv) != 2:
        sys.stderr.write("usage: cryptroot_unlock.py [--finish] STATE_FILE\n")
        return 2
    return unlock_once(Path(argv[1]))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
