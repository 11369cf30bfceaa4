"""The Alerts page: its model, acknowledging, silencing, the notification and the tray summary, the action
button, and accepting file changes — on real servers (a real sshd, and a port nobody listens on)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from PySide6.QtCore import Qt

from panel.alerts import AlertBook
from panel.lab.sshd import SshdServer
from services.checks import ids
from services.checks.model import Action, CheckResult, Severity
from tests.services.checks.check_helpers import free_port
from tests.views.alerts.conftest import MakePage, server_toml, sshd_toml
from views.models.alerts import COLUMNS, SEVERITY, STATUS, AlertsModel
from views.pages.alerts import AlertsPage


def seed(page: AlertsPage, results: list[CheckResult], qtbot) -> None:
    """Put alerts in the store (as a sweep would) and let the page show them."""
    AlertBook(page.state.context.store).record(results)
    with qtbot.waitSignal(page.snapshot_loaded, timeout=10000):
        page.reload()


def alert(server: str, check: str, severity: Severity, subject: str = "", page: str = "Processes") -> CheckResult:
    return CheckResult(server, check, severity, f"{check} on {server} is {severity}", subject,
                       (f"line seen on {server}",), Action("Have a look", page, server))


def cell(page: AlertsPage, row: int, column: int) -> str:
    return str(page.proxy.index(row, column).data())


def wait_loaded(page: AlertsPage, qtbot) -> None:
    qtbot.waitUntil(lambda: page.run_label.text() != "" and not page.state.runner.active_jobs, timeout=10000)


def test_the_model_passes_the_model_tester_and_sorts_the_worst_first(qtbot, qtmodeltester, make_page: MakePage,
                                                                     lab_client_key: Path) -> None:
    page = make_page(server_toml("app1", free_port(), lab_client_key))
    wait_loaded(page, qtbot)
    seed(page, [alert("app1", ids.UNITS, Severity.WARNING, "nginx.service"),
                alert("app1", ids.SERVER, Severity.CRITICAL),
                alert("app2", ids.CLOCK, Severity.UNKNOWN)], qtbot)
    qtmodeltester.check(page.model)
    qtmodeltester.check(page.proxy)
    assert [cell(page, row, SEVERITY) for row in range(page.proxy.rowCount())] == ["CRITICAL", "WARNING", "UNKNOWN"]
    assert page.model.columnCount() == len(COLUMNS)
    # filters: by severity and by text
    page.severity_box.setCurrentIndex(1)  # CRITICAL only
    assert page.proxy.rowCount() == 1
    page.severity_box.setCurrentIndex(0)
    page.search.setText("nginx")
    assert page.proxy.rowCount() == 1 and "units.failed" in cell(page, 0, 2)
    page.search.clear()
    empty = AlertsModel()
    qtmodeltester.check(empty)


def test_acknowledge_and_silence_from_the_page(qtbot, make_page: MakePage, lab_client_key: Path) -> None:
    page = make_page(server_toml("app1", free_port(), lab_client_key))
    wait_loaded(page, qtbot)
    summaries: list[tuple[str, int]] = []
    page.state.alerts_summary.connect(lambda worst, count: summaries.append((worst, count)))
    seed(page, [alert("app1", ids.SERVER, Severity.CRITICAL), alert("app1", ids.DISK, Severity.WARNING, "/")], qtbot)
    assert summaries[-1] == ("CRITICAL", 2)
    page.table.selectRow(0)
    selected = page.selected_alert()
    assert selected is not None and selected.severity is Severity.CRITICAL
    assert page.ack_button.isVisibleTo(page)

    page.ack_button.click()
    qtbot.waitUntil(lambda: cell(page, 0, STATUS).endswith("acknowledged"), timeout=10000)
    assert not page.ack_button.isVisibleTo(page)
    assert summaries[-1] == ("CRITICAL", 2)  # acknowledged is still open

    page.table.selectRow(0)
    page.silence_actions[0].trigger()  # for 1 hour
    qtbot.waitUntil(lambda: summaries[-1] == ("WARNING", 1), timeout=10000)
    silenced = page.model.alert_at(page.model.row_of(selected.id))
    assert silenced is not None and silenced.silenced()
    assert "silenced until" in page.model.status_text(silenced)
    # a silenced alert sorts below the live ones and can be hidden
    assert cell(page, 0, SEVERITY) == "WARNING"
    page.silenced_box.setChecked(False)
    assert page.proxy.rowCount() == 1
    page.silenced_box.setChecked(True)
    page.select_alert(selected.id)
    assert page.unsilence_button.isVisibleTo(page)
    page.unsilence_button.click()
    qtbot.waitUntil(lambda: summaries[-1] == ("CRITICAL", 2), timeout=10000)


def test_a_new_critical_raises_a_notification_and_the_tray_summary(qtbot, make_page: MakePage, tmp_path: Path,
                                                                   sshd_server: SshdServer,
                                                                   lab_client_key: Path) -> None:
    down_port = free_port()
    page = make_page(server_toml("db1", down_port, lab_client_key) + sshd_toml("app1", sshd_server, lab_client_key))
    wait_loaded(page, qtbot)
    notices: list[tuple[str, str, str]] = []
    page.state.notify.connect(lambda *args: notices.append(args))
    with qtbot.waitSignal(page.sweep_finished, timeout=60000):
        page.run_now()
    down = [n for n in notices if n[0] == "CRITICAL" and n[1] == "db1: server.state"]
    assert down and "down" in down[0][2]
    # the worst first: the down server's alert is in the CRITICAL rows at the top
    rows = [(cell(page, r, SEVERITY), cell(page, r, 1), cell(page, r, 2)) for r in range(page.proxy.rowCount())]
    criticals = [row for row in rows if row[0] == "CRITICAL"]
    assert ("CRITICAL", "db1", ids.SERVER) in criticals and rows[:len(criticals)] == criticals
    # the sweep also tells the other pages the servers' states
    assert str(page.state.statuses["db1"].state) == "down" and str(page.state.statuses["app1"].state) == "up"
    # the same alert on the next sweep is not new: no second notification
    notices.clear()
    with qtbot.waitSignal(page.sweep_finished, timeout=60000):
        page.run_now()
    assert not [n for n in notices if n[1] == "db1: server.state"]
    # the action button leads to the right page, for the right server
    assert page.select_alert(next(a.id for a in page.model.alerts() if a.server == "db1" and a.check == ids.SERVER))
    with qtbot.waitSignal(page.state.navigate, timeout=5000) as navigated:
        page.action_button.click()
    assert navigated.args == ["Fleet", "db1"]


def test_accepting_file_changes_needs_read_write_and_clears_the_alert(qtbot, make_page: MakePage, tmp_path: Path,
                                                                      sshd_server: SshdServer,
                                                                      lab_client_key: Path) -> None:
    watched = tmp_path / "etc"
    watched.mkdir()
    (watched / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    page = make_page(sshd_toml("app1", sshd_server, lab_client_key, f'watch_paths = ["{watched}"]'))
    wait_loaded(page, qtbot)
    assert "alerts:accept:app1" in page.state.actions
    assert page.state.actions["alerts:accept:app1"].changes_something
    with qtbot.waitSignal(page.sweep_finished, timeout=60000):
        page.run_now()
    (watched / "passwd").write_text("root:x:0:0::/root:/bin/sh\nmallory:x:0:0::/:/bin/sh\n")
    with qtbot.waitSignal(page.sweep_finished, timeout=60000):
        page.run_now()
    files = next(a for a in page.model.alerts() if a.check == ids.FILES and a.is_open)
    assert page.select_alert(files.id)
    assert "passwd" in page.details.toPlainText()
    assert page.accept_button.isVisibleTo(page)

    messages: list[str] = []
    page.state.message.connect(messages.append)
    page.state.read_only = True
    page.accept_button.click()  # refused in read-only mode, and says so
    assert messages and "Read-only" in messages[-1]
    assert AlertBook(page.state.context.store).pending("app1") is not None

    page.state.read_only = False
    page.select_alert(files.id)
    page.accept_button.click()
    qtbot.waitUntil(lambda: any(m.startswith("Accepted 1 change") for m in messages), timeout=10000)
    qtbot.waitUntil(lambda: not any(a.check == ids.FILES and a.is_open for a in page.model.alerts()), timeout=10000)
    audit = page.state.context.store.audit_entries(action_prefix="checks.accept")
    assert audit and audit[0].target == "app1" and audit[0].outcome == "ok"


def test_it_says_what_changed_since_you_last_looked(qtbot, make_page: MakePage, lab_client_key: Path) -> None:
    page = make_page(server_toml("app1", free_port(), lab_client_key))
    wait_loaded(page, qtbot)
    book = AlertBook(page.state.context.store)
    now = dt.datetime.now(dt.UTC)
    book.record([alert("app1", ids.DISK, Severity.WARNING, "/")], now=now - dt.timedelta(minutes=10))
    book.mark_looked(now - dt.timedelta(minutes=5))
    # since then: the disk check passed, and the server went down
    seed(page, [alert("app1", ids.SERVER, Severity.CRITICAL),
                CheckResult("app1", ids.DISK, Severity.OK, "fine")], qtbot)
    page.activate()
    qtbot.waitUntil(lambda: "Since you last looked" in page.since_label.text(), timeout=10000)
    assert "1 new" in page.since_label.text() and "1 resolved" in page.since_label.text()
    new_row = next(r for r in range(page.proxy.rowCount()) if cell(page, r, 2) == ids.SERVER)
    assert cell(page, new_row, STATUS).startswith("●")
    assert page.proxy.index(new_row, 0).data(Qt.ItemDataRole.FontRole).bold()
    page.activate()  # looking again: nothing new since a moment ago
    qtbot.waitUntil(lambda: "Nothing changed" in page.since_label.text(), timeout=10000)
