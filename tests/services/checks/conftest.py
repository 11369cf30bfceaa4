"""A real sshd per test (cheap: no lab), and an SSH pool that is closed afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from panel.lab.sshd import SshdServer, start_sshd
from services.ssh import SshPool


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME without ~/.ssh, so the user's own known_hosts, config and keys play no part."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return home


@pytest.fixture
def target(tmp_path: Path, lab_client_key: Path, isolated_home: Path) -> Iterator[SshdServer]:
    server = start_sshd(tmp_path / "sshd", client_key=lab_client_key, name="app1")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pool() -> Iterator[SshPool]:
    pool = SshPool()
    try:
        yield pool
    finally:
        pool.close_all()
