"""Real OpenSSH sshd and dropbear servers for the SSH layer's tests, each in its own tmp folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from panel.lab.dropbear import DropbearServer, start_dropbear
from panel.lab.sshd import SshdServer, ensure_client_key, start_sshd


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME without ~/.ssh, so the user's own known_hosts, config and keys play no part."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return home


@pytest.fixture
def client_key(tmp_path: Path) -> Path:
    return ensure_client_key(tmp_path / "keys")


@pytest.fixture
def sshd(tmp_path: Path, client_key: Path) -> Iterator[SshdServer]:
    server = start_sshd(tmp_path / "sshd", client_key=client_key, name="app1")
    yield server
    server.stop()


@pytest.fixture
def dropbear(tmp_path: Path, client_key: Path) -> Iterator[DropbearServer]:
    server = start_dropbear(tmp_path / "dropbear", client_key=client_key,
                            forced_command=["echo", "Please unlock disk root"], name="app1")
    yield server
    server.stop()

