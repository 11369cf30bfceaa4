"""Helpers for the unlock tests: a server of one's own in its initramfs, endpoints, and a cuttable proxy."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from panel.lab import procs
from panel.lab.cryptroot_unlock import load_state, read_received
from panel.lab.dropbear import DropbearServer, start_unlock_server
from panel.lab.sshd import start_sshd
from services.hostkeys import PublicKey
from services.inventory import ServerSpec
from services.ssh import SshEndpoint, initramfs_endpoint, system_endpoint
from services.unlock import UnlockProgress, UnlockRequest

USER = "root"


@dataclass
class PrivateServer:
    """A server of the test's own: a real sshd (stopped: "rebooted") and the lab's real dropbear and
    LUKS2 headers in front; unlocking its last volume starts the sshd again after ``boot_delay``."""

    spec: ServerSpec
    dropbear: DropbearServer
    state_file: Path
    received_log: Path

    def received(self) -> list[bytes]:
        return [entry["data"] for entry in read_received(self.received_log)]

    def failures(self) -> dict[str, int]:
        return dict(load_state(self.state_file)["failures"])

    def phase(self) -> str:
        return str(load_state(self.state_file)["phase"])


def start_private_server(folder: Path, client_key: Path, *, passphrase: str, volumes: tuple[str, ...] = ("root",),
                         initramfs_delay: float = 0.0, boot_delay: float = 0.2, name: str = "priv") -> PrivateServer:
    sshd = start_sshd(folder / "sshd", client_key=client_key, name=name)
    sshd.stop()  # the system is down: the boot finisher starts it again, same key and port
    dropbear = start_unlock_server(folder / "initramfs", client_key=client_key, volumes=volumes, name=name,
                                   passphrase=passphrase, initramfs_delay=initramfs_delay, boot_delay=boot_delay,
                                   sshd_argv=sshd.argv)
    assert dropbear.state_file is not None and dropbear.received_log is not None
    spec = ServerSpec(name=name, host="127.0.0.1", port=sshd.port, user=USER, identity=str(client_key),
                      host_key=sshd.host_key_line, unlock_port=dropbear.port,
                      unlock_host_key=dropbear.host_key_line, unlock_volumes=volumes if len(volumes) > 1 else ())
    return PrivateServer(spec, dropbear, dropbear.state_file, dropbear.received_log)


def endpoints(spec: ServerSpec, folder: Path) -> tuple[SshEndpoint, SshEndpoint]:
    system = system_endpoint(spec, known_hosts=folder / "known_hosts")
    return system, initramfs_endpoint(spec, known_hosts=folder / "known_hosts.initramfs", system=system)


def request_for(spec: ServerSpec, folder: Path, passphrase: str | bytes) -> UnlockRequest:
    system, initramfs = endpoints(spec, folder)
    return UnlockRequest(spec, system, initramfs, passphrase=lambda volume: passphrase)


def other_key_line() -> str:
    """A well-formed ed25519 public key that no server holds."""
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes(range(32))
    return PublicKey("ssh-ed25519", blob).line()


class Events(list[UnlockProgress]):
    """A progress callback that keeps every event."""

    def __call__(self, event: UnlockProgress) -> None:
        self.append(event)

    def messages(self, step: str | None = None) -> list[str]:
        return [e.message for e in self if step is None or e.step == step]


def entries_for(received_log: Path, server: str) -> list[bytes]:
    return [entry["data"] for entry in read_received(received_log) if entry["server"] == server]


def wait_for(predicate: object, timeout: float, what: str) -> None:
    assert callable(predicate)
    if not procs.wait_until(predicate, timeout, interval=0.02):
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


# --- a proxy whose connections can be cut ----------------------------------------------------------


class CuttableProxy:
    """Forwards 127.0.0.1:port to a target port. Its FIRST connection delays the server's answers by
    ``first_delay`` seconds, so a test can cut it after the server acted but before the client saw the
    answer. ``cut()`` closes every open connection; the listener stays, so a retry gets through."""

    def __init__(self, target_port: int, *, first_delay: float = 0.0) -> None:
        self.target_port = target_port
        self.first_delay = first_delay
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self.connections = 0
        self.cuts = 0

    def start(self) -> CuttableProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            delay = self.first_delay if self.connections == 0 else 0.0
            self.connections += 1
            with self._lock:
                self._sockets.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream, 0.0), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, delay), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, delay: float) -> None:
        pending: queue.Queue[tuple[float, bytes]] = queue.Queue()

        def release() -> None:
            while True:
                due, data = pending.get()
                wait = due - time.monotonic()
                if wait > 0:
                    self._stopped.wait(wait)
                try:
                    if not data:
                        sink.shutdown(socket.SHUT_WR)
                        return
                    sink.sendall(data)
                except OSError:
                    return

        threading.Thread(target=release, daemon=True).start()
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            pending.put((time.monotonic() + delay, data))
            if not data:
                return

    def cut(self) -> None:
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.cuts += 1

    def stop(self) -> None:
        self._stopped.set()
        self._listener.close()
        self.cut()


def emulator_pids(state_file: Path) -> list[int]:
    """The cryptroot-unlock emulator processes serving a session (not dropbear, not the boot finisher)."""
    found = []
    for pid in procs.processes_mentioning(str(state_file)):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if os.path.basename(argv[0]).startswith(b"python") and b"--finish" not in argv and \
                any(arg.endswith(b"cryptroot_unlock.py") for arg in argv):
            found.append(pid)
    return found


def freeze_and_cut_first_session(state_file: Path, proxy: CuttableProxy, timeout: float = 20.0) -> threading.Event:
    """In a thread: as soon as the emulator starts for a session, stop it (SIGSTOP), cut the connection,
    and kill it, so the session ends without an answer. Returns an event set once the cut happened."""
    done = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = emulator_pids(state_file)
            if pids:
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGSTOP)
                proxy.cut()
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                done.set()
                return
            done.wait(0.003)

    threading.Thread(target=watch, daemon=True).start()
    return done
