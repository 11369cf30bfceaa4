"""A real dropbear on a loopback port, standing in for the SSH server of a Debian initramfs.

Its forced command is :mod:`panel.lab.cryptroot_unlock`, so whatever a client asks to run, it gets
the unlock prompt, as with ``command="cryptroot-unlock"`` in a real ``dropbear-initramfs`` setup.
Its host key is its own (made by ``dropbearkey``), never the booted system's.

Where dropbear reads its authorized keys: dropbear 2022.83 only reads
``<home of the user>/.ssh/authorized_keys`` (no ``-D`` option yet), taking the home from the passwd
database. To leave the real user's ``~/.ssh`` alone, dropbear runs in a mount namespace of its own
(``unshare --mount``) where a lab copy of /etc/passwd, whose home for the current user is a lab
folder, is bind-mounted over /etc/passwd (see :mod:`panel.lab.nsexec`). The host never sees that
mount. This needs root (CAP_SYS_ADMIN), which CI and the demo machine have.
"""

from __future__ import annotations

import os
import pwd
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from panel.lab import cryptroot_unlock as emulator
from panel.lab import procs
from panel.lab.luks import create_volume
from panel.lab.procs import LabError, ProcessRecord
from panel.lab.secrets import LUKS_PASSPHRASE
from panel.lab.sshd import HOST, START_TIMEOUT, known_hosts_line, public_key_line

DROPBEAR = "/usr/sbin/dropbear"
NSEXEC = Path(__file__).resolve().with_name("nsexec.py")
STATE_NAME = "unlock.json"


@dataclass
class DropbearServer:
    """A running dropbear. With a ``state_file`` (an unlock server), ``stop()`` also ends the
    boot finisher and the sshd it may have started, so nothing of the server outlives it."""

    name: str
    port: int
    host_key_line: str
    pid: int
    folder: Path
    log_path: Path
    record: ProcessRecord
    host: str = HOST
    state_file: Path | None = None
    received_log: Path | None = None

    def known_hosts_line(self) -> str:
        return known_hosts_line(self.host, self.port, self.host_key_line)

    def stop(self) -> None:
        if self.state_file is not None and self.state_file.exists():
            stop_server_processes(self.state_file)
        procs.stop(self.record)


def ensure_dropbear_key(folder: Path) -> tuple[Path, str]:
    """The initramfs's own ed25519 host key in ``folder`` (made once), and its public line."""
    folder.mkdir(parents=True, exist_ok=True)
    key = folder / "dropbear_ed25519_host_key"
    if not key.exists():
        _run(["dropbearkey", "-t", "ed25519", "-f", str(key)])
    output = _run(["dropbearkey", "-y", "-f", str(key)])
    for line in output.splitlines():
        if line.startswith("ssh-ed25519 "):
            kind, blob = line.split()[:2]
            return key, f"{kind} {blob}"
    raise LabError(f"dropbearkey -y printed no ed25519 public key for {key}.")


def _private_passwd(folder: Path, home: Path) -> Path:
    """A copy of /etc/passwd in which the current user's home is ``home``."""
    user = pwd.getpwuid(os.geteuid()).pw_name
    lines = []
    for line in Path("/etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if len(fields) == 7 and fields[0] == user:
            fields[5] = str(home)
        lines.append(":".join(fields))
    passwd = folder / "passwd"
    passwd.write_text("\n".join(lines) + "\n")
    passwd.chmod(0o644)
    return passwd


def emulator_command(state_file: Path) -> list[str]:
    """dropbear's forced command: the cryptroot-unlock emulation for the server in ``state_file``."""
    return [sys.executable, "-I", str(Path(emulator.__file__).resolve()), str(state_file)]


def start_dropbear(
    folder: Path,
    *,
    client_key: Path,
    forced_command: Sequence[str],
    port: int | None = None,
    name: str = "dropbear",
    host: str = HOST,
    timeout: float = START_TIMEOUT,
) -> DropbearServer:
    """Start dropbear in ``folder`` on ``port`` (a free one if None); wait for its banner."""
    if os.geteuid() != 0:
        raise LabError(
            "The lab's dropbear needs root: it runs in a mount namespace of its own so that it reads "
            "the lab's authorized_keys instead of yours (dropbear 2022.83 has no option for that)."
        )
    folder.mkdir(parents=True, exist_ok=True)
    host_key, host_key_line = ensure_dropbear_key(folder)
    home = folder / "home"
    (home / ".ssh").mkdir(parents=True, exist_ok=True)
    (home / ".ssh").chmod(0o700)
    # dropbear checks that these are not writable by group or others.
    for path in (folder, home):
        path.chmod(0o755)
    authorized_keys = home / ".ssh" / "authorized_keys"
    authorized_keys.write_text(public_key_line(client_key) + "\n")
    authorized_keys.chmod(0o600)
    passwd = _private_passwd(folder, home)
    chosen = port if port is not None else procs.free_ports(1, host)[0]
    argv = [
        DROPBEAR,
        "-F",  # stay in the foreground: we track it by pid
        "-E",  # log to stderr, i.e. the log file
        "-s",  # no password logins, as dropbear-initramfs
        "-m",
        "-j", "-k",  # no port forwarding in an initramfs
        "-p", f"{host}:{chosen}",
        "-r", str(host_key),
        "-P", str(folder / "dropbear.pid"),
        "-c", shlex.join(forced_command),
    ]  # fmt: skip
    launcher = [
        "unshare", "--mount", "--propagation", "private", "--",
        sys.executable, "-I", str(NSEXEC), os.readlink("/proc/self/ns/mnt"), str(passwd), "--",
    ]  # fmt: skip
    log = folder / "dropbear.log"
    record = procs.start_detached([*launcher, *argv], what=f"dropbear of {name}", log=log)
    try:
        procs.wait_for_banner(host, chosen, timeout=timeout, record=record, log=log)
    except BaseException:
        procs.stop(record)
        raise
    return DropbearServer(
        name=name,
        port=chosen,
        host_key_line=host_key_line,
        pid=record.pid,
        folder=folder,
        log_path=log,
        record=record,
        host=host,
    )


def prepare_unlock_state(
    folder: Path,
    *,
    server: str,
    volumes: Sequence[str],
    received_log: Path,
    passphrase: str = LUKS_PASSPHRASE,
    initramfs_delay: float = 0.0,
    boot_delay: float = 2.0,
    sshd_argv: list[str] | None = None,
    sshd_log: Path | None = None,
) -> Path:
    """Make the server's LUKS2 headers and its emulator state file (all locked). Returns the state file."""
    headers = {volume: create_volume(folder / "luks" / f"{volume}.img", passphrase) for volume in volumes}
    state_file = folder / STATE_NAME
    state = emulator.new_state(
        server=server,
        volumes=headers,
        received_log=received_log,
        initramfs_delay=initramfs_delay,
        boot_delay=boot_delay,
        sshd_argv=sshd_argv,
        sshd_log=sshd_log,
    )
    emulator.save_state(state_file, state)
    return state_file


def boot_initramfs(
    state_file: Path,
    *,
    client_key: Path,
    port: int | None = None,
    host: str = HOST,
) -> DropbearServer:
    """Put the server into its initramfs: stop whatever runs, lock every volume, start dropbear.

    Keeps dropbear's folder (so its host key) and, when given, its port: a reboot changes neither.
    """
    with emulator.locked(state_file):
        state = emulator.load_state(state_file)
        _stop_recorded(state)
        emulator.relock(state)
        server = start_dropbear(
            state_file.parent / "dropbear",
            client_key=client_key,
            forced_command=emulator_command(state_file),
            port=port,
            name=state["server"],
            host=host,
        )
        state["dropbear"] = server.record.to_json()
        state["host_mount_namespace"] = os.readlink("/proc/self/ns/mnt")
        emulator.save_state(state_file, state)
    server.state_file = state_file
    server.received_log = Path(state["received_log"])
    return server


def start_unlock_server(
    folder: Path,
    *,
    client_key: Path,
    volumes: Sequence[str] = ("root",),
    name: str = "app1",
    port: int | None = None,
    passphrase: str = LUKS_PASSPHRASE,
    initramfs_delay: float = 0.0,
    boot_delay: float = 2.0,
    sshd_argv: list[str] | None = None,
    received_log: Path | None = None,
) -> DropbearServer:
    """A server waiting in its initramfs: LUKS2 headers, emulator state, and dropbear in front.

    With ``sshd_argv``, the system's sshd is started that way once the last volume is unlocked.
    """
    folder.mkdir(parents=True, exist_ok=True)
    state_file = prepare_unlock_state(
        folder,
        server=name,
        volumes=volumes,
        received_log=received_log or folder / "received.log",
        passphrase=passphrase,
        initramfs_delay=initramfs_delay,
        boot_delay=boot_delay,
        sshd_argv=sshd_argv,
        sshd_log=folder / "sshd-after-boot.log",
    )
    return boot_initramfs(state_file, client_key=client_key, port=port)


def _stop_recorded(state: emulator.State) -> None:
    # The finisher first, so it cannot start an sshd behind our back.
    for key in ("finisher", "dropbear", "sshd"):
        procs.stop(emulator.record_of(state, key))
        state[key] = None


def stop_server_processes(state_file: Path) -> None:
    """Stop the finisher, dropbear and sshd that the state file records for one server."""
    with emulator.locked(state_file):
        state = emulator.load_state(state_file)
        _stop_recorded(state)
        emulator.save_state(state_file, state)


def _run(argv: list[str]) -> str:
    result = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, check=False)
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()
        raise LabError(f"{argv[0]} failed (status {result.returncode}): {message}")
    return result.stdout.decode(errors="replace")
