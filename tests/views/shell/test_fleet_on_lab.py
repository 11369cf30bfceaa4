"""The Fleet page on the whole demo fleet: every server up, and a reboot seen within one refresh."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import keyring
import pytest

from panel.lab.fleet import Lab, LabInfo
from panel.lab.secrets import DemoKeyring
from views.main_window import MainWindow
from views.pages.fleet import FleetPage

pytestmark = pytest.mark.usefixtures("panel_home")


def _state_of(page: FleetPage, server: str) -> str:
    return str(page.model.data(page.model.index(page.model.row_of(server), 1)))


def test_the_demo_fleet_is_up_and_a_reboot_shows_locked_within_one_refresh(
    qtbot, open_window: Callable[[Path], MainWindow], lab: LabInfo, lab_control: Lab,
) -> None:
    keyring.set_keyring(DemoKeyring())
    window = open_window(lab.config_path)
    qtbot.waitUntil(lambda: window.page("Fleet") is not None, timeout=15000)
    page = window.page("Fleet")
    assert isinstance(page, FleetPage)
    servers = list(window.state.context.inventory.servers)
    assert servers == ["app1", "app2", "backup1"]
    qtbot.waitUntil(lambda: all(_state_of(page, s) == "up" for s in servers), timeout=30000)

    lab_control.reboot("app1")
    try:
        window.state.refresh("app1")  # one refresh, as the poller or F5 would do
        qtbot.waitUntil(lambda: _state_of(page, "app1") in ("locked", "down"), timeout=30000)
        assert _state_of(page, "app1") == "locked"
        assert window.state.statuses["app1"].endpoint == "initramfs"
    finally:
        lab_control.ensure_up("app1")
