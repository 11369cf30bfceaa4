"""Starting, finding and stopping the lab's background processes, and waiting for their ports.

The lab's servers must outlive the ``lab up`` command that starts them and be stoppable later by
another process (``lab down``). So every process is recorded by pid *and* start time (from
``/proc/PID/stat``): a pid that was reused by an unrelated process is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.errors import PanelError


class LabError(PanelError):
    """A part of the lab could not be started or stopped. Says which, and where its log is."""


@dataclass(frozen=True)
class ProcessRecord:
    """A background process, recorded so that another process can stop it safely later."""

    pid: int
    start_ticks: int  # field 22 of /proc/PID/stat: tells our process from a later one with its pid
    what: str  # for messages: "sshd of app1"

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "start_ticks": self.start_ticks, "what": self.what}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcessRecord:
        return cls(pid=int(data["pid"]), start_ticks=int(data["start_ticks"]), what=str(data["what"]))


# Popen objects of the children this process started, so that stopping them also reaps them
# (and Python never warns that a child "is still running" when the object is collected).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (which may hold spaces), or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw.rsplit(")", 1)[1].split()


def start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def record_for(pid: int, what: str) -> ProcessRecord | None:
    ticks = start_ticks(pid)
    return ProcessRecord(pid, ticks, what) if ticks is not None else None


def is_alive(record: ProcessRecord) -> bool:
    """True while the very process that was recorded runs (a zombie counts as gone)."""
    fields = _stat_fields(record.pid)
    if fields is None or fields[0] in ("Z", "X"):
        _reap(record.pid)
        return False
    return int(fields[19]) == record.start_ticks


def is_alive_json(data: Mapping[str, Any] | None) -> bool:
    """:func:`is_alive` for a record kept as JSON (None: nothing recorded, so not alive)."""
    return bool(data) and is_alive(ProcessRecord.from_json(data or {}))


def reap_finished() -> None:
    """Collect the exit status of our children that ended (say, a dropbear that the boot finisher,
    another process, stopped), so that none lingers as a zombie."""
    for pid, popen in list(_CHILDREN.items()):
        if popen.poll() is not None:
            _CHILDREN.pop(pid, None)


def _reap(pid: int) -> None:
    popen = _CHILDREN.pop(pid, None)
    if popen is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=0.5)
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def start_detached(
    argv: Sequence[str],
    *,
    what: str,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ProcessRecord:
    """Start a daemon that keeps running after this process exits (own session, no terminal).

    Its stdout and stderr go to ``log`` (appended), so nothing ties it to our pipes.
    """
    reap_finished()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as log_file:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal of `lab up` must not reach it
            env=dict(env) if env is not None else None,
            cwd=cwd,
        )
    _CHILDREN[popen.pid] = popen
    record = record_for(popen.pid, what)
    if record is None:  # it died at once; report it with its log
        popen.wait()
        _CHILDREN.pop(popen.pid, None)
        raise LabError(f"{what} exited at once (status {popen.returncode}). {log_tail(log)}")
    return record


def log_tail(log: Path, lines: int = 8) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return f"(no log at {log})"
    return f"Last lines of {log}:\n" + "\n".join(text[-lines:])


def children_of(pid: int) -> list[int]:
    """Every descendant of ``pid`` (read from /proc), deepest last."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields:
            parents.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    queue = [pid]
    while queue:
        for child in parents.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found


def stop(record: ProcessRecord | None, *, timeout: float = 5.0, tree: bool = True) -> None:
    """Stop a recorded process and (with ``tree``) its descendants: TERM, then KILL at the deadline.

    Killing the descendants too makes a lab "reboot" drop the open SSH connections (sshd and dropbear
    serve each connection in a child that would otherwise live on). Never signals ourselves.
    """
    reap_finished()
    if record is None or not is_alive(record):
        if record is not None:
            _reap(record.pid)
        return
    own = os.getpid()
    victims = [record.pid] + ([p for p in children_of(record.pid) if p != own] if tree else [])
    ticks = {pid: start_ticks(pid) for pid in victims}
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)

    def gone(pid: int) -> bool:
        _reap(pid)
        fields = _stat_fields(pid)
        return fields is None or fields[0] in ("Z", "X") or int(fields[19]) != ticks[pid]

    if not wait_until(lambda: all(gone(pid) for pid in victims), timeout):
        for pid in victims:
            if not gone(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        wait_until(lambda: all(gone(pid) for pid in victims), timeout)
    _reap(record.pid)


def wait_until(predicate: Callable[[], bool], timeout: float, *, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass. True if it held."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def read_banner(host: str, port: int, timeout: float = 1.0) -> bytes | None:
    """The first line a server sends (an SSH banner), or None if it refuses or says nothing in time."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            data = b""
            while b"\n" not in data and len(data) < 512:
                chunk = conn.recv(256)
                if not chunk:
                    break
                data += chunk
            return data.split(b"\n", 1)[0].rstrip(b"\r") if data else None
    except OSError:
        return None


def wait_for_banner(
    host: str,
    port: int,
    *,
    timeout: float,
    record: ProcessRecord | None = None,
    log: Path | None = None,
) -> bytes:
    """Wait until ``host:port`` answers with an SSH banner. Fails early if ``record`` dies."""
    found: list[bytes] = []

    def answered() -> bool:
        if record is not None and not is_alive(record):
            where = log_tail(log) if log else ""
            raise LabError(f"{record.what} exited before it answered on {host}:{port}. {where}")
        banner = read_banner(host, port, timeout=0.5)
        if banner and banner.startswith(b"SSH-"):
            found.append(banner)
            return True
        return False

    if not wait_until(answered, timeout, interval=0.02):
        where = log_tail(log) if log else ""
        raise LabError(f"Nothing answered with an SSH banner on {host}:{port} within {timeout:g} s. {where}")
    return found[0]


def wait_for_listen(host: str, port: int, *, timeout: float, record: ProcessRecord | None = None) -> None:
    """Wait until something accepts TCP connections on ``host:port``."""

    def accepting() -> bool:
        if record is not None and not is_alive(record):
            raise LabError(f"{record.what} exited before it listened on {host}:{port}.")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False

    if not wait_until(accepting, timeout):
        raise LabError(f"Nothing listened on {host}:{port} within {timeout:g} s.")


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports that are free right now (all held open together, then released)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if nothing listens on ``port`` (closed connections lingering in TIME_WAIT do not count,
    as servers bind with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def processes_mentioning(text: str) -> list[int]:
    """Pids of live (non-zombie) processes whose command line contains ``text``. For tests and ``down``."""
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        fields = _stat_fields(int(entry))
        if fields and fields[0] not in ("Z", "X") and text.encode() in cmdline:
            found.append(int(entry))
    return found
