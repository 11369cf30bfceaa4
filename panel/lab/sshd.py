"""A real OpenSSH sshd on a loopback port, confined to one folder, plus two misbehaving servers.

Everything sshd reads or writes (host key, authorized keys, pid file, log) is inside its folder:
the lab never touches the real user's ``~/.ssh``. It runs as the current user.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from panel.lab import procs
from panel.lab.procs import LabError, ProcessRecord

SSHD = "/usr/sbin/sshd"
HOST = "127.0.0.1"
CLIENT_KEY_NAME = "client_ed25519"
START_TIMEOUT = 15.0


@dataclass
class SshdServer:
    """A running sshd. ``stop()`` ends it and every connection it serves."""

    name: str
    port: int
    host_key_line: str  # "ssh-ed25519 AAAA...", without a comment
    pid: int
    folder: Path
    config_path: Path
    log_path: Path
    record: ProcessRecord
    host: str = HOST

    @property
    def argv(self) -> list[str]:
        return sshd_argv(self.config_path)

    def known_hosts_line(self) -> str:
        return known_hosts_line(self.host, self.port, self.host_key_line)

    def stop(self) -> None:
        procs.stop(self.record)


def known_hosts_line(host: str, port: int, key_line: str) -> str:
    """A known_hosts line for a key on a non-standard port, as OpenSSH writes it."""
    return f"[{host}]:{port} {key_line}" if port != 22 else f"{host} {key_line}"


def ensure_client_key(directory: Path) -> Path:
    """The lab-wide client key (ed25519, no passphrase) at ``directory/client_ed25519``; made once."""
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / CLIENT_KEY_NAME
    if not key.exists() or not Path(f"{key}.pub").exists():
        for stale in (key, Path(f"{key}.pub")):
            stale.unlink(missing_ok=True)
        # -N "" is the (empty) passphrase of a throwaway lab key: nothing secret is on argv.
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "panel-lab-client", "-f", str(key)])
    return key


def public_key_line(private_key: Path) -> str:
    """``type base64`` of the .pub beside a key made by ssh-keygen (the comment dropped)."""
    kind, blob = Path(f"{private_key}.pub").read_text().split()[:2]
    return f"{kind} {blob}"


def ensure_host_key(folder: Path) -> tuple[Path, str]:
    """The server's own ed25519 host key in ``folder`` (reused if there), and its public line."""
    key = folder / "ssh_host_ed25519_key"
    if not key.exists():
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "panel-lab-host", "-f", str(key)])
    return key, public_key_line(key)


def write_sshd_config(
    folder: Path,
    *,
    port: int,
    host_key: Path,
    authorized_keys: Path,
    login_grace_time: int,
    host: str = HOST,
) -> Path:
    config = folder / "sshd_config"
    config.write_text(
        "\n".join(
            [
                "# Written by panel.lab.sshd: a loopback sshd confined to this folder.",
                f"ListenAddress {host}:{port}",
                f"HostKey {host_key}",
                # Absolute path: sshd must never read the real user's ~/.ssh/authorized_keys.
                f"AuthorizedKeysFile {authorized_keys}",
                f"PidFile {folder / 'sshd.pid'}",
                "StrictModes no",  # the lab folder lives under /tmp or the user's state folder
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "UsePAM no",
                "AllowTcpForwarding yes",  # the panel tunnels MySQL through it
                "Subsystem sftp internal-sftp",
                f"LoginGraceTime {login_grace_time}",
                "MaxStartups 100:30:200",  # tests and the panel open many connections at once
                # bash sources ~/.bashrc for ssh commands only at SHLVL 0. The lab's servers share this
                # machine's root account, whose .bashrc (a developer's: pyenv, ...) no server would have
                # and which costs ~100 ms of CPU per command; SHLVL=1 keeps commands as a server runs them.
                "SetEnv SHLVL=1",
                "MaxSessions 64",
                "UseDNS no",
                "PrintMotd no",
                "PrintLastLog no",
                "X11Forwarding no",
                "PermitUserEnvironment no",
                "LogLevel INFO",
                "",
            ]
        )
    )
    return config


def sshd_argv(config: Path) -> list[str]:
    return [SSHD, "-D", "-e", "-f", str(config)]


def start_sshd(
    folder: Path,
    *,
    client_key: Path,
    port: int | None = None,
    name: str = "sshd",
    login_grace_time: int = 30,
    host: str = HOST,
    timeout: float = START_TIMEOUT,
) -> SshdServer:
    """Start sshd in ``folder`` (made if needed) on ``port`` (a free one if None); wait for its banner.

    A host key already in the folder is reused, so a restarted server keeps its identity.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        # sshd as root insists on its privilege separation folder; Debian's unit makes it at boot.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    host_key, host_key_line = ensure_host_key(folder)
    authorized_keys = folder / "authorized_keys"
    authorized_keys.write_text(public_key_line(client_key) + "\n")
    chosen = port if port is not None else procs.free_ports(1, host)[0]
    config = write_sshd_config(
        folder,
        port=chosen,
        host_key=host_key,
        authorized_keys=authorized_keys,
        login_grace_time=login_grace_time,
        host=host,
    )
    _run([SSHD, "-t", "-f", str(config)])  # a bad config fails here with sshd's own message
    log = folder / "sshd.log"
    record = procs.start_detached(sshd_argv(config), what=f"sshd of {name}", log=log)
    try:
        procs.wait_for_banner(host, chosen, timeout=timeout, record=record, log=log)
    except BaseException:
        procs.stop(record)
        raise
    return SshdServer(
        name=name,
        port=chosen,
        host_key_line=host_key_line,
        pid=record.pid,
        folder=folder,
        config_path=config,
        log_path=log,
        record=record,
        host=host,
    )


def start_rogue_sshd(folder: Path, *, port: int, client_key: Path, name: str = "rogue") -> SshdServer:
    """An sshd with a *different* host key on a port another server used: a man-in-the-middle.

    ``folder`` must be a fresh folder (so a new key is made there). The real server on ``port``
    must be stopped first.
    """
    if (folder / "ssh_host_ed25519_key").exists():
        raise LabError(f"{folder} already has a host key; a rogue server needs a fresh folder.")
    return start_sshd(folder, client_key=client_key, port=port, name=name)


@dataclass
class StallServer:
    """Accepts connections and sends an SSH banner only after ``delay`` seconds (or never, if None).

    Stands in for a server behind a congested link, so tests can check the window stays responsive.
    """

    port: int
    delay: float | None
    banner: bytes
    host: str = HOST
    _listener: socket.socket | None = None
    _stopped: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _conns: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    accepted: int = 0

    def _serve(self) -> None:
        assert self._listener is not None
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self._conns.append(conn)
            thread = threading.Thread(target=self._stall, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _stall(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            if self.delay is not None and not self._stopped.wait(self.delay):
                conn.sendall(self.banner)
            # Then say nothing more (a real server would now wait for the client's key exchange).
            self._stopped.wait()

    def stop(self) -> None:
        self._stopped.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        with self._lock:
            for conn in self._conns:
                conn.close()
        for thread in self._threads:
            thread.join(timeout=2)


def start_stall_server(
    delay: float | None, *, port: int = 0, banner: bytes = b"SSH-2.0-OpenSSH_9.2p1 Stall\r\n", host: str = HOST
) -> StallServer:
    """Start a :class:`StallServer` in a background thread of this process."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(16)
    server = StallServer(port=listener.getsockname()[1], delay=delay, banner=banner, host=host)
    server._listener = listener
    thread = threading.Thread(target=server._serve, name=f"stall-{server.port}", daemon=True)
    server._threads.append(thread)
    thread.start()
    return server


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, check=False)
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()
        raise LabError(f"{argv[0]} failed (status {result.returncode}): {message}")
