"""Fixtures of the unlock service tests."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from panel.lab.fleet import Lab
from tests.services.unlock.unlock_helpers import PrivateServer, start_private_server


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No ~/.ssh (config, keys, known_hosts) and no agent: only what a test names plays a part."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return home


@pytest.fixture
def private_passphrase() -> str:
    """A passphrase made for one test, with a space and non-ASCII text in it."""
    return f"pässe {secrets.token_urlsafe(12)}"


@pytest.fixture
def private_server(tmp_path: Path, lab_client_key: Path) -> Iterator[Callable[..., PrivateServer]]:
    started: list[PrivateServer] = []

    def make(passphrase: str, **options: object) -> PrivateServer:
        folder = tmp_path / f"server{len(started)}"
        server = start_private_server(folder, lab_client_key, passphrase=passphrase, **options)  # type: ignore[arg-type]
        started.append(server)
        return server

    try:
        yield make
    finally:
        for server in started:
            server.dropbear.stop()


@pytest.fixture
def rebooted(lab_control: Lab) -> Iterator[Callable[[str], None]]:
    """``rebooted("app1")`` puts a lab server into its locked initramfs; it is up again after the test."""
    touched: list[str] = []

    def reboot(server: str) -> None:
        touched.append(server)
        lab_control.reboot(server)

    try:
        yield reboot
    finally:
        for server in touched:
            lab_control.ensure_up(server)
