"""The emulated initramfs: real dropbear, real LUKS2 headers, the cryptroot-unlock emulation.

Driven through the system ``ssh`` client with strict host key checking, as a person would, and
through paramiko as the panel does.
"""

from __future__ import annotations

import base64
import os
import pwd
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest

from panel.lab import cryptroot_unlock, procs
from panel.lab.dropbear import DropbearServer, start_unlock_server
from panel.lab.luks import create_volume, passphrase_opens
from panel.lab.secrets import LUKS_PASSPHRASE
from panel.lab.sshd import SshdServer, public_key_line

pytestmark = pytest.mark.lab

PASSPHRASE = LUKS_PASSPHRASE.encode()
BAD = b"cryptsetup: cryptsetup failed, bad password or options?"


@pytest.fixture
def start_initramfs(tmp_path: Path, lab_client_key: Path) -> Iterator[Callable[..., DropbearServer]]:
    """Start more unlock servers (each in its own folder); all are stopped at the end."""
    started: list[DropbearServer] = []

    def start(**options: object) -> DropbearServer:
        folder = tmp_path / f"initramfs-{len(started)}"
        server = start_unlock_server(folder, client_key=lab_client_key, **options)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def attempt(ssh_run, server: DropbearServer, data: bytes, *, tty: bool = False) -> tuple[int, list[str]]:
    result = ssh_run(server.port, server.host_key_line, stdin=data, tty=tty)
    lines = result.stdout.decode().replace("\r", "").splitlines()
    return result.returncode, [line for line in lines if line]


def received(server: DropbearServer) -> list[bytes]:
    assert server.received_log is not None
    return [entry["data"] for entry in cryptroot_unlock.read_received(server.received_log)]


def state_of(server: DropbearServer) -> dict[str, Any]:
    assert server.state_file is not None
    return cryptroot_unlock.load_state(server.state_file)


def test_luks_headers_are_real_and_take_the_passphrase_on_stdin(tmp_path: Path) -> None:
    volume = create_volume(tmp_path / "v.img", LUKS_PASSPHRASE)
    assert volume.read_bytes()[:6] == b"LUKS\xba\xbe"
    assert passphrase_opens(volume, PASSPHRASE)
    assert not passphrase_opens(volume, PASSPHRASE + b"\n")
    assert not passphrase_opens(volume, b"wrong")


def test_the_right_passphrase_unlocks_the_volume(dropbear_server: DropbearServer, ssh_run) -> None:
    status, lines = attempt(ssh_run, dropbear_server, PASSPHRASE)

    assert status == 0
    assert lines == ["Please unlock disk root", "cryptsetup: root set up successfully"]
    assert received(dropbear_server) == [PASSPHRASE]
    assert state_of(dropbear_server)["unlocked"] == ["root"]


def test_a_wrong_passphrase_is_refused(dropbear_server: DropbearServer, ssh_run) -> None:
    status, lines = attempt(ssh_run, dropbear_server, b"not the passphrase")

    assert status != 0
    assert lines == ["Please unlock disk root", BAD.decode()]
    assert state_of(dropbear_server)["failures"] == {"root": 1}
    assert state_of(dropbear_server)["phase"] == "locked"


def test_without_a_terminal_a_trailing_newline_is_part_of_the_passphrase(
    dropbear_server: DropbearServer, ssh_run
) -> None:
    status, lines = attempt(ssh_run, dropbear_server, PASSPHRASE + b"\n")  # as `echo pass | ssh ...`

    assert status != 0
    assert lines[-1] == BAD.decode()
    assert received(dropbear_server) == [PASSPHRASE + b"\n"]


def test_with_a_terminal_the_newline_is_stripped(dropbear_server: DropbearServer, ssh_run) -> None:
    status, lines = attempt(ssh_run, dropbear_server, PASSPHRASE + b"\n", tty=True)

    assert status == 0
    assert "Please unlock disk root: " in lines  # then the input on that line
    assert lines[-1] == "cryptsetup: root set up successfully"
    entries = cryptroot_unlock.read_received(dropbear_server.received_log or Path())
    assert [(entry["data"], entry["tty"]) for entry in entries] == [(PASSPHRASE, True)]


def test_three_failures_exhaust_the_tries(dropbear_server: DropbearServer, ssh_run) -> None:
    for guess in (b"one", b"two"):
        assert attempt(ssh_run, dropbear_server, guess)[1][-1] == BAD.decode()

    status, lines = attempt(ssh_run, dropbear_server, b"three")
    assert status != 0
    assert lines[-2:] == [BAD.decode(), "cryptsetup: maximum number of tries exceeded for root"]

    # Even the right passphrase is no longer asked for: the initramfs has given up on the volume.
    status, lines = attempt(ssh_run, dropbear_server, PASSPHRASE)
    assert status != 0
    assert lines == ["cryptsetup: maximum number of tries exceeded for root"]
    assert received(dropbear_server) == [b"one", b"two", b"three"]


def test_two_volumes_take_one_invocation_each(start_initramfs, ssh_run) -> None:
    server = start_initramfs(name="app2", volumes=("root", "data"), boot_delay=30.0)

    assert attempt(ssh_run, server, PASSPHRASE) == (
        0,
        ["Please unlock disk root", "cryptsetup: root set up successfully"],
    )
    assert state_of(server)["phase"] == "locked"
    assert attempt(ssh_run, server, b"wrong")[1] == ["Please unlock disk data", BAD.decode()]
    assert attempt(ssh_run, server, PASSPHRASE) == (
        0,
        ["Please unlock disk data", "cryptsetup: data set up successfully"],
    )
    assert state_of(server)["phase"] == "booting"
    assert state_of(server)["unlocked"] == ["root", "data"]


def test_during_the_initramfs_delay_it_says_try_again_later(start_initramfs, ssh_run) -> None:
    server = start_initramfs(initramfs_delay=1.0)

    status, lines = attempt(ssh_run, server, PASSPHRASE)
    assert status != 0
    assert lines == ["Try again later"]
    assert received(server) == []  # nothing was read, and no try was spent

    outcomes: list[tuple[int, list[str]]] = []

    def unlocked() -> bool:
        outcomes.append(attempt(ssh_run, server, PASSPHRASE))
        return outcomes[-1][0] == 0

    assert procs.wait_until(unlocked, 15, interval=0.2)
    assert outcomes[-1][1][-1] == "cryptsetup: root set up successfully"
    assert all(lines == ["Try again later"] for _, lines in outcomes[:-1])


def test_after_the_last_volume_the_system_sshd_comes_back_with_its_own_key(
    sshd_server: SshdServer, start_initramfs, ssh_run
) -> None:
    system_key, system_port, sshd_argv = sshd_server.host_key_line, sshd_server.port, sshd_server.argv
    sshd_server.stop()  # "reboot": the system's sshd is gone, the initramfs answers instead
    server = start_initramfs(name="app1", volumes=("root",), sshd_argv=sshd_argv, boot_delay=0.3)
    assert server.host_key_line != system_key
    assert procs.read_banner("127.0.0.1", system_port, timeout=0.3) is None

    assert attempt(ssh_run, server, PASSPHRASE)[0] == 0

    assert procs.wait_until(lambda: state_of(server)["phase"] == "up", 15)
    procs.wait_for_banner("127.0.0.1", system_port, timeout=15)
    result = ssh_run(system_port, system_key, "echo", "booted")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"booted\n"
    # dropbear is gone, and the new sshd is recorded so that it can be stopped.
    assert procs.read_banner("127.0.0.1", server.port, timeout=0.3) is None
    assert not procs.is_alive(server.record)
    assert procs.is_alive_json(state_of(server)["sshd"])
    # The booted system sees the real passwd again (dropbear's private one stayed in its namespace).
    home = ssh_run(system_port, system_key, "printenv", "HOME").stdout.decode().strip()
    assert home == pwd.getpwuid(os.geteuid()).pw_dir


def test_paramiko_unlocks_as_the_panel_would(dropbear_server: DropbearServer, lab_client_key: Path) -> None:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    kind, blob = dropbear_server.host_key_line.split()
    client.get_host_keys().add(
        f"[127.0.0.1]:{dropbear_server.port}", kind, paramiko.PKey.from_type_string(kind, base64.b64decode(blob))
    )
    client.connect(
        "127.0.0.1",
        port=dropbear_server.port,
        username=pwd.getpwuid(os.geteuid()).pw_name,
        key_filename=str(lab_client_key),
        look_for_keys=False,
        allow_agent=False,
    )
    try:
        stdin, stdout, _ = client.exec_command("cryptroot-unlock", timeout=20)
        assert stdout.readline() == "Please unlock disk root\n"
        stdin.write(PASSPHRASE)
        stdin.channel.shutdown_write()
        assert stdout.read() == b"cryptsetup: root set up successfully\n"
        assert stdout.channel.recv_exit_status() == 0
    finally:
        client.close()
    assert received(dropbear_server) == [PASSPHRASE]


def test_dropbear_leaves_the_real_home_and_passwd_alone(dropbear_server: DropbearServer, lab_client_key: Path) -> None:
    real_home = pwd.getpwuid(os.geteuid()).pw_dir
    assert Path("/etc/passwd").read_text().count(str(dropbear_server.folder)) == 0
    real_keys = Path(real_home) / ".ssh" / "authorized_keys"
    assert not real_keys.exists() or public_key_line(lab_client_key) not in real_keys.read_text()
    assert (dropbear_server.folder / "home" / ".ssh" / "authorized_keys").exists()
