"""In the whole window: the background poll finds a down server and the window shows the notification
(the tray where there is one, the in-window banner here, offscreen)."""

from __future__ import annotations

from pathlib import Path

import keyring
import pytest
from PySide6.QtCore import QSettings

from tests.keyrings import MemoryKeyring
from tests.services.checks.check_helpers import free_port
from tests.views.alerts.conftest import server_toml
from views.main_window import MainWindow
from views.pages.alerts import AlertsPage


@pytest.fixture
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PANEL_DATA_DIR", str(tmp_path / "data"))
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("SSH_AUTH_SOCK", "STRIPE_API_KEY", "MAILGUN_API_KEY", "CLOUDFLARE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    yield tmp_path
    keyring.set_keyring(previous)


def test_the_poll_raises_a_banner_for_a_new_critical(qtbot, private_home: Path, lab_client_key: Path) -> None:
    config = private_home / "panel.toml"
    config.write_text(server_toml("db1", free_port(), lab_client_key))
    window = MainWindow(config, settings=QSettings(str(private_home / "q.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    shown: list[tuple[str, str]] = []
    window.notifier.shown.connect(lambda severity, text: shown.append((severity, text)))
    try:
        window.show()
        window.load()
        qtbot.waitUntil(lambda: isinstance(window.page("Alerts"), AlertsPage), timeout=15000)
        page = window.page("Alerts")
        assert isinstance(page, AlertsPage)
        # it polls by itself, once its stored interval is read (on a worker)
        qtbot.waitUntil(page.timer.isActive, timeout=15000)
        qtbot.waitUntil(lambda: any(s == "CRITICAL" and "db1" in t for s, t in shown), timeout=60000)
        assert window.banner.isVisible() or window.notifier.uses_tray
        # the palette knows how to run the checks
        assert "alerts:run" in window.state.actions
    finally:
        window.close()
