"""A real sshd, a config file pointing at it, and the window opened on that config."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import pytest
from PySide6.QtCore import QSettings

from panel.lab.sshd import SshdServer, ensure_client_key, start_sshd
from tests.keyrings import MemoryKeyring
from views.main_window import MainWindow


@pytest.fixture
def panel_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The panel's data folder, HOME and keyring, all private to the test."""
    monkeypatch.setenv("PANEL_DATA_DIR", str(tmp_path / "data"))
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    yield tmp_path
    keyring.set_keyring(previous)


@pytest.fixture
def client_key(tmp_path: Path) -> Path:
    return ensure_client_key(tmp_path / "keys")


@pytest.fixture
def sshd(tmp_path: Path, client_key: Path) -> Iterator[SshdServer]:
    server = start_sshd(tmp_path / "sshd", client_key=client_key, name="app1")
    yield server
    server.stop()


def server_table(name: str, port: int, client_key: Path, pin: str | None = None, host: str = "127.0.0.1") -> str:
    text = f'[servers.{name}]\nhost = "{host}"\nport = {port}\nuser = "root"\nidentity = "{client_key}"\n'
    if pin:
        text += f'host_key = "{pin}"\n'
    return text


@pytest.fixture
def open_window(qtbot, tmp_path: Path) -> Iterator[Callable[[Path], MainWindow]]:  # type: ignore[no-untyped-def]
    windows: list[MainWindow] = []

    def open_on(config: Path) -> MainWindow:
        settings = QSettings(str(tmp_path / "qsettings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(config, settings=settings)
        qtbot.addWidget(window)
        window.show()
        window.load()
        windows.append(window)
        return window

    yield open_on
    for window in windows:
        window.close()
