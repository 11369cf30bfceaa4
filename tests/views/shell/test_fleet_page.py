"""The Fleet page, the trust dialog and the Audit page, on real sshd servers."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from panel.lab.procs import free_ports
from panel.lab.sshd import SshdServer, start_stall_server
from services.hostkeys import PublicKey
from tests.views.shell.conftest import server_table
from views.dialogs.trust import TrustDialog
from views.main_window import MainWindow
from views.pages.audit import AuditPage
from views.pages.fleet import FleetPage

pytestmark = pytest.mark.usefixtures("panel_home")


def _state_of(page: FleetPage, server: str) -> str:
    row = page.model.row_of(server)
    return str(page.model.data(page.model.index(row, 1)))


def test_fleet_shows_up_and_down_servers(
    qtbot, qtmodeltester, open_window: Callable[[Path], MainWindow], sshd: SshdServer, client_key: Path,
    tmp_path: Path,
) -> None:
    config = tmp_path / "panel.toml"
    config.write_text(server_table("app1", sshd.port, client_key, sshd.host_key_line)
                      + server_table("gone", free_ports(1)[0], client_key))
    window = open_window(config)
    qtbot.waitUntil(lambda: window.page("Fleet") is not None, timeout=10000)
    page = window.page("Fleet")
    assert isinstance(page, FleetPage)
    qtbot.waitUntil(lambda: _state_of(page, "app1") == "up" and _state_of(page, "gone") == "down", timeout=15000)
    qtmodeltester.check(page.model)
    uptime = page.model.data(page.model.index(page.model.row_of("app1"), 2))
    assert uptime not in ("?", "—")
    page.table.selectRow(page.model.row_of("gone"))
    assert "refused" in page.details.toPlainText()


def test_an_unknown_key_is_trusted_only_through_the_dialog(
    qtbot, open_window: Callable[[Path], MainWindow], sshd: SshdServer, client_key: Path, tmp_path: Path,
) -> None:
    config = tmp_path / "panel.toml"
    config.write_text(server_table("app1", sshd.port, client_key))
    window = open_window(config)
    qtbot.waitUntil(lambda: window.page("Fleet") is not None, timeout=10000)
    page = window.page("Fleet")
    assert isinstance(page, FleetPage)
    qtbot.waitUntil(lambda: _state_of(page, "app1") == "unknown-host-key", timeout=15000)
    page.table.selectRow(0)
    fingerprint = PublicKey.parse(sshd.host_key_line).fingerprint
    assert fingerprint in page.details.toPlainText()
    assert page.trust_button.isVisible()

    page.trust_button.click()
    dialog = page.findChild(TrustDialog)
    assert dialog is not None and dialog.isVisible()
    assert fingerprint in dialog.fingerprint_label.text()
    dialog.trust_button.click()

    qtbot.waitUntil(lambda: _state_of(page, "app1") == "up", timeout=15000)
    known_hosts = Path(tmp_path / "data" / "known_hosts").read_text()
    assert PublicKey.parse(sshd.host_key_line).line() in known_hosts
    entries = window.state.context.store.audit_entries(text="host-key.trust")
    assert entries and fingerprint in entries[0].detail


def test_the_window_stays_responsive_while_a_server_stalls_its_banner(
    qtbot, open_window: Callable[[Path], MainWindow], client_key: Path, tmp_path: Path,
) -> None:
    stall = start_stall_server(5.0)
    try:
        config = tmp_path / "panel.toml"
        config.write_text(server_table("slow", stall.port, client_key))
        gaps: list[float] = []
        last = [time.monotonic()]

        def tick() -> None:
            now = time.monotonic()
            gaps.append(now - last[0])
            last[0] = now

        probe = QTimer()
        probe.setInterval(10)
        probe.timeout.connect(tick)
        probe.start()
        window = open_window(config)
        qtbot.waitUntil(lambda: window.page("Fleet") is not None, timeout=10000)
        page = window.page("Fleet")
        assert isinstance(page, FleetPage)
        qtbot.waitUntil(lambda: stall.accepted >= 1, timeout=10000)
        stalled_since = time.monotonic()
        # Measure through the whole 5 s stall, while the probe waits for the banner on a worker.
        qtbot.waitUntil(lambda: time.monotonic() - stalled_since > 5.5, timeout=10000)
        probe.stop()
        assert window.runner.active_jobs, "the probe should still be waiting on the stalled server"
        assert max(gaps[1:]) < 0.2, f"the event loop stalled for {max(gaps[1:]) * 1000:.0f} ms"
    finally:
        stall.stop()


def test_the_audit_page_lists_and_filters(
    qtbot, qtmodeltester, open_window: Callable[[Path], MainWindow], sshd: SshdServer, client_key: Path,
    tmp_path: Path,
) -> None:
    config = tmp_path / "panel.toml"
    config.write_text(server_table("app1", sshd.port, client_key, sshd.host_key_line))
    window = open_window(config)
    qtbot.waitUntil(lambda: window.page("Audit") is not None, timeout=10000)
    store = window.state.context.store
    store.audit("unlock", "app1", "ok", "volume root")
    store.audit("group.move", "app1/group:42", "failed", "collision on documents")
    page = window.show_page("Audit")
    assert isinstance(page, AuditPage)
    qtbot.waitUntil(lambda: page.model.rowCount() == 2, timeout=5000)
    qtmodeltester.check(page.model)
    page.filter_edit.setText("collision")
    qtbot.waitUntil(lambda: page.model.rowCount() == 1, timeout=5000)
    assert page.model.data(page.model.index(0, 1)) == "group.move"


def test_a_broken_config_is_explained_in_a_dialog(
    qtbot, open_window: Callable[[Path], MainWindow], tmp_path: Path,
) -> None:
    config = tmp_path / "panel.toml"
    config.write_text('[servers.app1]\nhost = "127.0.0.1"\nprot = 22\n')
    window = open_window(config)
    qtbot.waitUntil(lambda: window.findChild(QMessageBox) is not None, timeout=10000)
    box = window.findChild(QMessageBox)
    assert box is not None
    assert f"{config}:3: servers.app1.prot: unknown key" in box.text()
    box.close()
    QApplication.processEvents()
