"""Fixtures shared by every test: the lab (real sshd, dropbear, MariaDB ... on loopback).

- ``lab`` (session): the whole demo fleet, started once, always torn down. Yields a ``LabInfo``.
- ``lab_control`` (session): the ``Lab`` behind ``lab``, for ``reboot``/``ensure_up``/``phase``.
  A test that reboots a server must leave it up again (``lab_control.ensure_up(name)``).
- ``lab_client_key`` (session): the private key every lab server authorizes.
- ``sshd_server`` / ``dropbear_server`` (function): one cheap server in the test's tmp_path.
- ``ssh_run``: runs the system ``ssh`` client against a loopback port with a pinned host key.
"""

from __future__ import annotations

import gc
import os
import pwd
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from panel.lab.dropbear import DropbearServer, start_unlock_server
from panel.lab.fleet import Lab, LabInfo
from panel.lab.sshd import SshdServer, ensure_client_key, start_sshd
from views.garbage import collect_garbage_on_gui_thread

# Before any test module imports Qt: tests never open a real window (set it yourself to watch one).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

USER = pwd.getpwuid(os.geteuid()).pw_name

SshRun = Callable[..., subprocess.CompletedProcess[bytes]]


@pytest.fixture(scope="session", autouse=True)
def reap_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[Path], None]]:
    """``reap_servers(folder)``: stop whatever runs from ``folder`` once this run ends, even if it
    crashes before the fixtures' own teardown (see tests/reaper.py). pytest's folder is always in."""
    reaper = subprocess.Popen([sys.executable, str(Path(__file__).with_name("reaper.py"))], stdin=subprocess.PIPE,
                              start_new_session=True, text=True)
    assert reaper.stdin is not None
    pipe = reaper.stdin

    def register(folder: Path) -> None:
        pipe.write(f"{folder}\n")
        pipe.flush()

    register(tmp_path_factory.getbasetemp())
    yield register
    pipe.close()
    reaper.wait(timeout=120)


@pytest.fixture(scope="session")
def lab_client_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_client_key(tmp_path_factory.mktemp("lab-client"))


@pytest.fixture(scope="session")
def lab_control(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("lab"), boot_delay=0.5)
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="session")
def lab(lab_control: Lab) -> LabInfo:
    return lab_control.info()


@pytest.fixture
def sshd_server(tmp_path: Path, lab_client_key: Path) -> Iterator[SshdServer]:
    server = start_sshd(tmp_path / "sshd", client_key=lab_client_key, name="test-sshd", login_grace_time=20)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def dropbear_server(tmp_path: Path, lab_client_key: Path) -> Iterator[DropbearServer]:
    """An initramfs with one locked volume, "root", that opens with the demo passphrase."""
    server = start_unlock_server(
        tmp_path / "initramfs", client_key=lab_client_key, volumes=("root",), name="test-initramfs", boot_delay=0.2
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ssh_run(tmp_path: Path, lab_client_key: Path) -> SshRun:
    """``ssh_run(port, host_key_line, *command, stdin=b"", tty=False, key=...)`` with the system ssh.

    Strict host key checking against exactly ``host_key_line``, no user config, no agent, and
    nothing read from or written to the real ``~/.ssh``.
    """
    counter = iter(range(1_000_000))

    def run(
        port: int,
        host_key_line: str,
        *command: str,
        stdin: bytes = b"",
        tty: bool = False,
        key: Path | None = None,
        timeout: float = 30.0,
    ) -> subprocess.CompletedProcess[bytes]:
        known_hosts = tmp_path / f"known_hosts.{next(counter)}"
        known_hosts.write_text(f"[127.0.0.1]:{port} {host_key_line}\n")
        argv = [
            "ssh", "-F", "/dev/null",
            "-i", str(key or lab_client_key),
            "-o", f"UserKnownHostsFile={known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes",
            "-o", "ConnectTimeout=10",
            "-tt" if tty else "-T",
            "-p", str(port),
            f"{USER}@127.0.0.1",
            *command,
        ]  # fmt: skip
        return subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout, check=False)

    return run


@pytest.fixture(scope="session", autouse=True)
def _gc_on_the_gui_thread_only(qapp: Any) -> None:
    """As in the panel (views/garbage.py): Python's cyclic garbage collector runs on the GUI thread
    only. Left automatic, it may run on a worker thread and free a QObject there, which crashes Qt."""
    collect_garbage_on_gui_thread(qapp)


@pytest.fixture(autouse=True)
def _collect_garbage_after_each_test(_gc_on_the_gui_thread_only: None) -> Iterator[None]:
    """Also after each test, on the main thread: tests that never run the event loop make cycles too."""
    yield
    gc.collect()
