"""The Logs, Services, Processes and Timeline pages, and "Open a terminal here", on a real sshd."""

from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QMessageBox

from panel.store import AuditEntry
from tests.services.triage.triage_fakes import FakeBin, sample_journal
from tests.views.triage.conftest import Gui, Logs
from views.models.logs import LEVEL, MESSAGE, LogModel
from views.pages.fleet import FleetPage
from views.pages.logs import LogsPage
from views.pages.processes import ProcessesPage
from views.pages.services_page import ServicesPage
from views.pages.timeline import TimelinePage
from views.style import STATE_COLOURS


def audit(gui: Gui, action: str) -> list[AuditEntry]:
    return gui.context.store.audit_entries(action_prefix=action)


def messages(model: LogModel) -> list[str]:
    return [str(model.data(model.index(row, MESSAGE))) for row in range(model.rowCount())]


# --- Logs ---------------------------------------------------------------------------------------------------


def test_logs_fall_back_to_the_log_files_and_follow_them(qtbot, qtmodeltester, gui: Gui,
                                                         logs: Logs) -> None:
    page = LogsPage(gui.state)
    qtbot.addWidget(page)
    page.show()
    page.activate()  # app1, its journal missing on this machine: nginx-error.log and app-error.log
    qtbot.waitUntil(lambda: page.model.rowCount() > 0, timeout=15000)
    qtmodeltester.check(page.model)
    assert page.model.rowCount() == 330  # the newest 500 lines of each (300 + 30)
    assert "nginx-error.log" in page.status.text()
    shown = messages(page.model)
    assert shown[-1] == "2024/01/02 03:04:59 [notice] 812#812: *299 line 299"  # merged by time
    first_error = next(r for r in range(page.model.rowCount())
                       if page.model.data(page.model.index(r, LEVEL)) == "err")
    colour = page.model.data(page.model.index(first_error, MESSAGE), Qt.ItemDataRole.ForegroundRole)
    assert isinstance(colour, QColor) and colour.name() == QColor(STATE_COLOURS["CRITICAL"]).name()

    # the search box filters as you type
    qtbot.keyClicks(page.search_edit, "line 29")
    qtbot.waitUntil(lambda: page.model.rowCount() == 12, timeout=3000)  # nginx 29, 290…299; app 29
    page.search_edit.clear()
    page.errors_box.setChecked(True)
    qtbot.waitUntil(lambda: page.model.rowCount() == 30, timeout=3000)
    page.errors_box.setChecked(False)
    qtbot.waitUntil(lambda: page.model.rowCount() == 330, timeout=3000)

    # follow: lines written now show up, in batches
    page.follow_button.setChecked(True)
    qtbot.waitUntil(lambda: page.following and len(gui.runner.active_jobs) == 2, timeout=5000)
    with logs.nginx.open("a") as handle:
        for n in range(300, 420):
            handle.write(f"2024/01/02 04:00:00 [error] 812#812: *{n} followed {n}\n")
    qtbot.waitUntil(lambda: page.model.rowCount() == 450, timeout=15000)
    assert messages(page.model)[-1].endswith("followed 419")
    assert "following live" in page.status.text()
    page.follow_button.setChecked(False)
    qtbot.waitUntil(lambda: not gui.runner.active_jobs, timeout=10000)


def test_logs_of_two_servers_are_merged_and_paged_back(qtbot, gui: Gui, logs: Logs) -> None:
    page = LogsPage(gui.state)
    qtbot.addWidget(page)
    page.show_servers(["app1", "app2"])
    qtbot.waitUntil(lambda: page.model.rowCount() > 0 and not page._reading, timeout=15000)
    servers = {page.model.entry_at(r).server for r in range(page.model.rowCount())}  # type: ignore[union-attr]
    assert servers == {"app1", "app2"}, page.status.text()
    times = [page.model.entry_at(r).at for r in range(page.model.rowCount())]  # type: ignore[union-attr]
    assert times == sorted(times)

    # a long file: older pages load on demand
    logs.nginx.write_text("".join(f"2024/01/02 03:00:00 [notice] old line {n}\n" for n in range(1200)))
    page.show_servers(["app1"])
    qtbot.waitUntil(lambda: page.model.rowCount() == 530 and not page._reading, timeout=15000)
    page.older_button.click()
    qtbot.waitUntil(lambda: page.model.rowCount() == 1030, timeout=15000)
    page.older_button.click()
    qtbot.waitUntil(lambda: page.model.rowCount() == 1230, timeout=15000)
    assert sum("old line" in m for m in messages(page.model)) == 1200


def test_the_journal_is_shown_and_filtered_by_unit(qtbot, gui: Gui, fake_bin: FakeBin) -> None:
    fake_bin.append_journal(sample_journal(dt.datetime(2024, 1, 2, 3, 0, tzinfo=dt.UTC), 40))
    page = LogsPage(gui.state)
    qtbot.addWidget(page)
    page.path_prefix = fake_bin.prefix
    page.units_edit.setText("saas-worker")
    page.show_servers(["app1"])
    qtbot.waitUntil(lambda: page.model.rowCount() == 4, timeout=15000)
    assert all("Traceback" in m for m in messages(page.model))
    assert "app1: journal" in page.status.text()
    page.units_edit.clear()
    page.priority_box.setCurrentIndex(page.priority_box.findData(4))  # warnings and worse: reloads
    qtbot.waitUntil(lambda: page.model.rowCount() == 8, timeout=15000)


def test_the_log_model_caps_its_lines_and_inserts_in_chunks(qtmodeltester) -> None:
    from services.triage.logs import LogEntry

    model = LogModel(max_rows=1000)
    inserted: list[int] = []
    model.rowsInserted.connect(lambda _, first, last: inserted.append(last - first + 1))
    base = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    for chunk in range(30):
        model.append([LogEntry(base + dt.timedelta(seconds=chunk * 100 + n), "app1", f"line {chunk * 100 + n}")
                      for n in range(100)])
    assert inserted == [100] * 30
    assert model.total <= 1000 + 100 and model.rowCount() == model.total
    assert str(model.data(model.index(model.rowCount() - 1, MESSAGE))) == "line 2999"
    model.set_filter("line 29")
    assert all("line 29" in m for m in messages(model))
    qtmodeltester.check(model)


# --- Services -------------------------------------------------------------------------------------------------


@pytest.fixture
def services(qtbot, gui: Gui, fake_bin: FakeBin) -> Iterator[ServicesPage]:
    fake_bin.append_journal(sample_journal(dt.datetime(2024, 1, 2, 3, 0, tzinfo=dt.UTC), 40))
    page = ServicesPage(gui.state)
    qtbot.addWidget(page)
    page.path_prefix = fake_bin.prefix
    page.show()
    page.activate()
    qtbot.waitUntil(lambda: page.model.rowCount() > 0, timeout=15000)
    yield page


def choose(qtbot, page: ServicesPage, unit: str) -> None:
    page.table.selectRow(page.model.row_of(unit))
    qtbot.waitUntil(lambda: page.status_text.toPlainText().startswith(("●", "×")) and unit in
                    page.status_text.toPlainText(), timeout=10000)


def test_units_are_listed_filtered_and_shown_with_their_logs(qtbot, qtmodeltester, services: ServicesPage,
                                                             gui: Gui) -> None:
    qtmodeltester.check(services.model)
    assert services.model.unit_at(0).name == "saas-worker.service"  # type: ignore[union-attr]  # failed first
    qtbot.keyClicks(services.filter_edit, "nginx")
    qtbot.waitUntil(lambda: services.model.rowCount() == 1, timeout=3000)
    services.filter_edit.clear()
    services.state_box.setCurrentIndex(services.state_box.findData("failed"))
    assert [services.model.data(services.model.index(r, 0)) for r in range(services.model.rowCount())] == \
        ["saas-worker.service"]
    services.state_box.setCurrentIndex(0)
    choose(qtbot, services, "saas-worker.service")
    qtbot.waitUntil(lambda: "Traceback" in services.log_text.toPlainText(), timeout=10000)
    # its palette actions, for every listed service
    titles = {a.title for a in gui.state.actions.values()}
    assert {"Restart nginx on app1", "Stop nginx on app1", "Start saas-worker on app1",
            "Status of nginx on app1"} <= titles


def test_a_restart_is_confirmed_then_run_and_audited(qtbot, services: ServicesPage, gui: Gui,
                                                     fake_bin: FakeBin) -> None:
    choose(qtbot, services, "nginx.service")
    assert not services.restart_button.isEnabled()  # read-only mode is on
    services.restart_button.setEnabled(True)
    services.restart_button.click()
    assert services.confirm_box is None and fake_bin.calls() == []  # refused without asking

    gui.state.set_read_only(False)
    assert services.restart_button.isEnabled()
    services.restart_button.click()
    box = services.confirm_box
    assert isinstance(box, QMessageBox) and box.isVisible()
    assert "Restart nginx.service on app1?" in box.text()
    qtbot.keyClick(box, Qt.Key.Key_Escape)  # cancelled: nothing runs
    qtbot.waitUntil(lambda: not box.isVisible(), timeout=3000)
    assert fake_bin.calls() == []

    services.restart_button.click()
    box = services.confirm_box
    assert box is not None
    qtbot.keyClick(box, Qt.Key.Key_Return)  # restart is the default button
    qtbot.waitUntil(lambda: bool(audit(gui, "unit.restart")), timeout=15000)
    assert fake_bin.calls() == [["systemctl", "restart", "--", "nginx.service"]]
    [entry] = audit(gui, "unit.restart")
    assert (entry.target, entry.outcome, entry.detail) == ("app1/nginx.service", "ok", "now active")
    qtbot.waitUntil(lambda: "Restarted nginx.service on app1" in services.message.text(), timeout=5000)


def test_a_stop_defaults_to_cancel_and_a_failure_is_audited(qtbot, services: ServicesPage, gui: Gui,
                                                            fake_bin: FakeBin) -> None:
    gui.state.set_read_only(False)
    choose(qtbot, services, "nginx.service")
    services.stop_button.click()
    box = services.confirm_box
    assert box is not None
    qtbot.keyClick(box, Qt.Key.Key_Return)  # Enter on a stop means Cancel
    qtbot.waitUntil(lambda: not box.isVisible(), timeout=3000)
    assert fake_bin.calls() == []

    services.control("app1", "broken.service", "restart")  # as the palette's "Restart broken on app1" does
    box = services.confirm_box
    assert box is not None
    qtbot.keyClick(box, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(audit(gui, "unit.restart")), timeout=15000)
    [entry] = audit(gui, "unit.restart")
    assert entry.outcome == "failed" and "control process exited with error code" in entry.detail
    qtbot.waitUntil(lambda: "failed" in services.message.text(), timeout=5000)


# --- Processes ------------------------------------------------------------------------------------------------


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["sh", "-c", f"exec sleep 301 # {uuid.uuid4().hex}"], stdin=subprocess.DEVNULL)
    comm = Path(f"/proc/{process.pid}/comm")
    deadline = time.monotonic() + 10
    while comm.read_text().strip() != "sleep" and time.monotonic() < deadline:  # until sh has become sleep
        threading.Event().wait(0.01)
    yield process
    process.kill()
    process.wait()


def test_a_process_is_found_and_killed_after_confirmation(qtbot, qtmodeltester, gui: Gui,
                                                          sleeper: subprocess.Popen[bytes]) -> None:
    page = ProcessesPage(gui.state)
    qtbot.addWidget(page)
    page.show()
    page.activate()
    qtbot.waitUntil(lambda: page.model.row_of(sleeper.pid) >= 0, timeout=15000)
    qtmodeltester.check(page.model)
    qtbot.keyClicks(page.filter_edit, "sleep 301")
    qtbot.waitUntil(lambda: page.model.rowCount() == 1, timeout=3000)
    page.table.selectRow(0)
    assert page.selected_process().pid == sleeper.pid  # type: ignore[union-attr]

    page.kill_selected("TERM")  # read-only: refused, nothing asked
    assert page.confirm_box is None and sleeper.poll() is None
    gui.state.set_read_only(False)
    page.term_button.click()
    box = page.confirm_box
    assert box is not None and "sleep 301" in box.text()
    qtbot.keyClick(box, Qt.Key.Key_Return)  # Cancel is the default for a kill
    qtbot.waitUntil(lambda: not box.isVisible(), timeout=3000)
    assert sleeper.poll() is None
    page.term_button.click()
    box = page.confirm_box
    assert box is not None
    kill = next(b for b in box.buttons() if b.text().startswith("Send TERM"))
    kill.click()
    assert sleeper.wait(15) == -15
    qtbot.waitUntil(lambda: bool(audit(gui, "process.kill")), timeout=10000)
    [entry] = audit(gui, "process.kill")
    assert entry.target == f"app1/pid:{sleeper.pid}" and entry.outcome == "ok"
    assert "301" not in entry.detail  # the arguments never go to the audit log (they may hold secrets)


def test_processes_sort_by_memory_and_refresh_live(qtbot, gui: Gui) -> None:
    page = ProcessesPage(gui.state)
    qtbot.addWidget(page)
    page.live_timer.setInterval(200)
    page.show()
    qtbot.waitUntil(lambda: page.model.rowCount() > 0, timeout=15000)
    page.memory_button.click()
    sizes = [page.model.process_at(r).rss_kb for r in range(page.model.rowCount())]  # type: ignore[union-attr]
    assert sizes == sorted(sizes, reverse=True)
    refreshed: list[int] = []
    page.model.modelReset.connect(lambda: refreshed.append(1))
    qtbot.waitUntil(lambda: len(refreshed) >= 2, timeout=10000)  # the live refresh keeps coming
    page.hide()
    assert not page.live_timer.isActive()


# --- Timeline ---------------------------------------------------------------------------------------------------


def test_the_timeline_shows_reboots_unlocks_and_actions(qtbot, qtmodeltester, gui: Gui,
                                                        fake_bin: FakeBin) -> None:
    now = dt.datetime.now(dt.UTC)
    fake_bin.set_boots([{"index": 0, "boot_id": "5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d",
                         "first_entry": int((now - dt.timedelta(hours=2)).timestamp() * 1e6),
                         "last_entry": int(now.timestamp() * 1e6)}])
    gui.context.store.audit("unlock", "app1", "ok", "volume root")
    gui.context.store.audit("unit.restart", "app2/nginx.service", "ok", "now active")
    page = TimelinePage(gui.state)
    qtbot.addWidget(page)
    page.path_prefix = fake_bin.prefix
    page.activate()
    qtbot.waitUntil(lambda: page.timeline is not None, timeout=20000)
    qtmodeltester.check(page.model)
    rows = [(page.model.event_at(r).source, page.model.event_at(r).server, page.model.event_at(r).kind)  # type: ignore[union-attr]
            for r in range(page.model.rowCount())]
    assert ("reboots", "app1", "reboot") in rows and ("reboots", "app2", "reboot") in rows
    assert ("unlocks", "app1", "unlocked") in rows and ("audit", "app2", "unit.restart") in rows
    times = [page.model.event_at(r).at for r in range(page.model.rowCount())]  # type: ignore[union-attr]
    assert times == sorted(times, reverse=True)  # newest first
    assert "Cloudflare (no [cloudflare] zone in the config)" in page.status.text()
    page.server_box.setCurrentIndex(page.server_box.findData("app2"))
    assert {page.model.event_at(r).server for r in range(page.model.rowCount())} <= {"app2", ""}  # type: ignore[union-attr]
    page.source_box.setCurrentIndex(page.source_box.findData("unlocks"))
    assert page.model.rowCount() == 0  # app2 had no unlock


# --- "Open a terminal here" ----------------------------------------------------------------------------------------


def test_open_a_terminal_here_starts_the_users_terminal_with_ssh(qtbot, gui: Gui, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = tmp_path / "terminal-argv"
    fake = tmp_path / "my-terminal"
    fake.write_text(f"#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > {recorded}.tmp\n"
                    f"mv {recorded}.tmp {recorded}\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("TERMINAL", str(fake))
    page = FleetPage(gui.state)
    qtbot.addWidget(page)
    page.table.selectRow(page.model.row_of("app2"))
    assert {"Refresh app2", "Open terminal on app2"} <= {a.title for a in gui.state.actions.values()}
    page.terminal_button.click()
    qtbot.waitUntil(recorded.exists, timeout=10000)
    argv = recorded.read_text().splitlines()
    spec = gui.context.spec("app2")
    assert argv[0] == "-e" and argv[1] == "ssh"
    assert argv[argv.index("-p") + 1] == str(spec.port) and argv[-1] == f"{spec.user}@{spec.host}"
    known_hosts = Path(next(a for a in argv if a.startswith("UserKnownHostsFile=")).split("=", 1)[1])
    assert known_hosts.read_text().split()[0] == "panel-app2" and "StrictHostKeyChecking=yes" in argv
    assert str(os.environ["PANEL_DATA_DIR"]) in str(known_hosts)
    qtbot.waitUntil(lambda: bool(audit(gui, "terminal.open")), timeout=5000)
