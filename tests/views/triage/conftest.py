"""A real sshd (two server names on it), a config with log files, and the triage pages or the whole window."""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import keyring
import pytest
from PySide6.QtCore import QSettings

from panel.context import PanelContext
from panel.lab.sshd import SshdServer, ensure_client_key, start_sshd
from panel.secrets import SecretStore
from panel.store import Store
from tests.keyrings import MemoryKeyring
from tests.services.triage.triage_fakes import FakeBin, make_fake_bin
from views.main_window import MainWindow
from views.state import PanelState
from views.workers import JobRunner

USER = pwd.getpwuid(os.geteuid()).pw_name


@pytest.fixture(scope="module")
def gui_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_client_key(tmp_path_factory.mktemp("gui-keys"))


@pytest.fixture(scope="module")
def gui_sshd(tmp_path_factory: pytest.TempPathFactory, gui_key: Path) -> Iterator[SshdServer]:
    server = start_sshd(tmp_path_factory.mktemp("gui-sshd"), client_key=gui_key, name="app1")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def panel_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The panel's data folder, HOME and keyring, private to the test."""
    monkeypatch.setenv("PANEL_DATA_DIR", str(tmp_path / "data"))
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    yield tmp_path
    keyring.set_keyring(previous)


@dataclass
class Logs:
    nginx: Path
    app: Path


@pytest.fixture
def logs(tmp_path: Path) -> Logs:
    folder = tmp_path / "var-log"
    folder.mkdir()
    nginx = folder / "nginx-error.log"
    nginx.write_text("".join(
        f"2024/01/02 03:{n // 60:02d}:{n % 60:02d} [{'error' if n % 10 == 0 else 'notice'}] 812#812: *{n} line {n}\n"
        for n in range(300)))
    app = folder / "app-error.log"
    app.write_text("".join(f"2024-01-02 03:00:{n:02d},500 INFO saas: app line {n}\n" for n in range(30)))
    return Logs(nginx, app)


@pytest.fixture
def config(tmp_path: Path, gui_sshd: SshdServer, gui_key: Path, logs: Logs) -> Path:
    text = ""
    for name, files in (("app1", [logs.nginx, logs.app]), ("app2", [logs.app])):
        text += (f'[servers.{name}]\nhost = "{gui_sshd.host}"\nport = {gui_sshd.port}\nuser = "{USER}"\n'
                 f'identity = "{gui_key}"\nhost_key = "{gui_sshd.host_key_line}"\n\n'
                 f"[servers.{name}.checks]\nlog_files = [{', '.join(repr(str(f)) for f in files)}]\n\n")
    path = tmp_path / "panel.toml"
    path.write_text(text)
    return path


@pytest.fixture
def fake_bin(tmp_path: Path) -> FakeBin:
    return make_fake_bin(tmp_path / "fake-bin")


@dataclass
class Gui:
    state: PanelState
    context: PanelContext
    runner: JobRunner


@pytest.fixture
def gui(qtbot, config: Path, tmp_path: Path) -> Iterator[Gui]:
    store = Store(tmp_path / "store.sqlite3")
    context = PanelContext.open(config, store=store, secrets=SecretStore(MemoryKeyring()))
    runner = JobRunner()
    state = PanelState(context, runner)
    state.poll_timer.stop()
    yield Gui(state, context, runner)
    runner.shutdown()
    context.close()
    store.close()


@pytest.fixture
def open_window(qtbot, tmp_path: Path) -> Iterator[Callable[[Path], MainWindow]]:
    windows: list[MainWindow] = []

    def open_on(path: Path) -> MainWindow:
        settings = QSettings(str(tmp_path / "qsettings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(path, settings=settings)
        qtbot.addWidget(window)
        window.show()
        window.load()
        windows.append(window)
        qtbot.waitUntil(lambda: window.state is not None and bool(window.pages), timeout=15000)
        return window

    yield open_on
    for window in windows:
        window.close()
