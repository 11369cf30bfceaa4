"""Moving a group from the window: the plan, the per-table progress, the summary, cancel, and a window
that keeps answering while the rows travel.

The lab test moves app1's group 4 (desert-ops) to app2 and back. The big tests move a group of about
45,000 rows between the private servers of ``big_pair``, reached through the lab's SSH tunnels.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QPushButton

from panel.lab.fleet import LabInfo
from panel.lab.mariadb import MariaDBHandle
from panel.mysql import open_mysql
from services.groups import MoveCancelled, MovePlan, MoveResult, move_group
from tests.views.groups.groups_testlib import BIG, Panel, Rows, connect, group_rows, has_group, lab_port
from views.dialogs.move_group import MoveGroupDialog
from views.pages.groups import GroupsPage

MOVED = 4  # desert-ops on app1
MakePanel = Callable[..., Panel]


def _page(qtbot: Any, panel: Panel) -> GroupsPage:
    page = GroupsPage(panel.state)
    qtbot.addWidget(page)
    page.resize(1100, 700)
    page.show()
    return page


def _planned(qtbot: Any, dialog: MoveGroupDialog, timeout: int = 60000) -> MovePlan:
    qtbot.waitUntil(lambda: dialog.plan is not None or dialog.error is not None, timeout=timeout)
    assert dialog.error is None, str(dialog.error)
    assert dialog.plan is not None
    return dialog.plan


def _planned_rows(dialog: MoveGroupDialog) -> dict[str, int]:
    return {name: int(rows.replace(",", "")) for name, (rows, _, _) in dialog.state_of_tables().items()}


def _move_with_the_dialog(qtbot: Any, page: GroupsPage, group: int | str, target: str, before: Rows) -> MoveResult:
    with qtbot.waitSignal(page.focused, timeout=30000) as focused:
        page.focus_item(group)
    row = focused.args[0]
    assert row is not None and row.server != target
    page.move_chosen(target)
    dialog = page.move_dialog
    assert isinstance(dialog, MoveGroupDialog) and dialog.isVisible()
    plan = _planned(qtbot, dialog)
    assert (plan.source, plan.target, plan.mode) == (row.server, target, "move")
    planned = _planned_rows(dialog)
    for table in ("memberships", "projects", "documents", "invoices", "activity"):
        assert planned[table] == len(before[table]), table
    assert planned["groups"] == 1 and planned["users"] == len(before["users"])
    assert "rows</b> in 7 tables" in dialog.plan_label.text() and "round trip" in dialog.plan_label.text()
    assert dialog.move_button.isEnabled()
    with qtbot.waitSignal(dialog.moved, timeout=120000) as moved:
        dialog.move_button.click()
    result: MoveResult = moved.args[0]
    assert dialog.summary.isVisible() and f"from {row.server} to {target}" in dialog.summary.toPlainText()
    copied = {name: done for name, (_, done, _) in dialog.state_of_tables().items()}
    assert {t: copied[t] for t in planned if t != "users"} == {t: n for t, n in planned.items() if t != "users"}
    assert dialog.state_of_tables()["activity"][2] == "removed"
    assert "✓ remove the source copy" in dialog.steps_label.text()
    assert dialog.cancel_button.text() == "Close"
    dialog.cancel_button.click()
    assert not dialog.isVisible()
    return result


def test_the_move_dialog_plans_moves_and_moves_back(qtbot: Any, lab: LabInfo, make_panel: MakePanel) -> None:
    port1, port2 = lab_port(lab, "app1"), lab_port(lab, "app2")
    before = group_rows(port1, MOVED)
    panel = make_panel(lab.config_path)
    page = _page(qtbot, panel)
    try:
        there = _move_with_the_dialog(qtbot, page, "desert-ops", "app2", before)
        assert there.outcome == "moved" and there.active_on_target
        assert group_rows(port2, MOVED) == before and not has_group(port1, MOVED)  # row by row
        shown = page.model.row_of("app2", MOVED)
        assert shown >= 0 and page.model.data(page.model.index(shown, 2)) == "app2"
        entry = panel.context.store.audit_entries(target=f"app1/group:{MOVED}")[0]
        assert (entry.action, entry.outcome) == ("group.move", "ok") and "from app1 to app2" in entry.detail

        back = _move_with_the_dialog(qtbot, page, MOVED, "app1", before)
        assert back.outcome == "moved"
    finally:
        if has_group(port2, MOVED):  # leave the lab as it was, whatever happened
            move_group(open_mysql(panel.context, "app2")[0], open_mysql(panel.context, "app1")[0],
                       panel.context.inventory.groups, MOVED)
    assert group_rows(port1, MOVED) == before and not has_group(port2, MOVED)
    assert [e.outcome for e in panel.context.store.audit_entries(target=f"app2/group:{MOVED}")] == ["ok"]


def test_a_move_that_cannot_be_done_says_why_before_changing_anything(
        qtbot: Any, lab: LabInfo, make_panel: MakePanel) -> None:
    page = _page(qtbot, make_panel(lab.config_path))
    with qtbot.waitSignal(page.focused, timeout=30000) as focused:
        page.focus_item("globex")
    page.move_chosen("app1")
    dialog = page.move_dialog
    assert dialog is not None
    row = focused.args[0]
    # Make app1 already hold one of globex's invoice ids: the plan must refuse, in plain words.
    port1 = lab_port(lab, "app1")
    invoice = group_rows(lab_port(lab, "app2"), row.id)["invoices"][0]

    conn = connect(port1)
    try:
        with conn.cursor() as cursor:
            cursor.execute("INSERT INTO invoices (id, group_id, number, amount_cents, status, issued_at) "
                           "VALUES (%s, 1, 'TEST-COLLIDE', 100, 'void', '2024-01-01')", (invoice[0],))
        dialog.make_plan()
        qtbot.waitUntil(lambda: dialog.error is not None, timeout=60000)
    finally:
        with conn.cursor() as cursor:
            cursor.execute("DELETE FROM invoices WHERE number = 'TEST-COLLIDE'")
        conn.close()
    text = dialog.plan_label.text()
    assert "This move is refused" in text and "invoices" in text and "already exist on app1" in text
    assert not dialog.move_button.isEnabled()
    assert has_group(lab_port(lab, "app2"), row.id) and not has_group(port1, row.id)
    dialog.reject()


class GapMeter:
    """Ticks every 10 ms on the GUI thread and records the longest wait between two ticks."""

    def __init__(self) -> None:
        self.longest = 0.0
        self.ticks = 0
        self._last = time.monotonic()
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.monotonic()
        self.longest = max(self.longest, now - self._last)
        self._last = now
        self.ticks += 1

    def start(self) -> None:
        self._last = time.monotonic()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()


def _where_big(big_pair: tuple[MariaDBHandle, MariaDBHandle]) -> tuple[str, str]:
    return ("app1", "app2") if has_group(big_pair[0].port, BIG) else ("app2", "app1")


@pytest.mark.slow
def test_the_window_keeps_answering_while_a_big_group_moves(
        qtbot: Any, big_config: Path, big_pair: tuple[MariaDBHandle, MariaDBHandle], make_panel: MakePanel) -> None:
    source, target = _where_big(big_pair)
    ports = {"app1": big_pair[0].port, "app2": big_pair[1].port}
    before = group_rows(ports[source], BIG)
    assert sum(len(v) for v in before.values()) > 40_000
    page = _page(qtbot, make_panel(big_config))
    with qtbot.waitSignal(page.focused, timeout=60000):
        page.focus_item(BIG)
    page.move_chosen(target)
    dialog = page.move_dialog
    assert dialog is not None
    _planned(qtbot, dialog)
    progress: list[int] = []
    dialog.overall.valueChanged.connect(progress.append)
    meter = GapMeter()
    meter.start()
    started = time.monotonic()
    with qtbot.waitSignal(dialog.moved, timeout=240000):
        dialog.move_button.click()
    seconds = time.monotonic() - started
    meter.stop()
    assert seconds > 1.0  # long enough for the measure to mean something
    assert meter.ticks > seconds * 20  # the event loop kept turning...
    assert meter.longest < 0.5, f"the window froze for {meter.longest:.2f} s during a {seconds:.1f} s move"
    assert len(set(progress)) >= 3  # ...and the progress moved as the batches went
    assert group_rows(ports[target], BIG) == before and not has_group(ports[source], BIG)


@pytest.mark.slow
# services.groups.copier.Reader: when a move is cancelled mid-stream, the source session is closed under
# the reader's streaming cursor, whose cleanup then fails at garbage collection ("Exception ignored in
# SSCursor.close"). Harmless to the move (reported to the groups services owner); ignored here only.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_cancel_stops_a_move_before_anything_changes(
        qtbot: Any, big_config: Path, big_pair: tuple[MariaDBHandle, MariaDBHandle], make_panel: MakePanel) -> None:
    source, target = _where_big(big_pair)
    ports = {"app1": big_pair[0].port, "app2": big_pair[1].port}
    before = group_rows(ports[source], BIG)
    panel = make_panel(big_config)
    page = _page(qtbot, panel)
    with qtbot.waitSignal(page.focused, timeout=60000):
        page.focus_item(BIG)
    page.move_chosen(target)
    dialog = page.move_dialog
    assert dialog is not None
    _planned(qtbot, dialog)
    dialog.move_button.click()
    qtbot.waitUntil(lambda: dialog.overall.value() > 0, timeout=60000)  # the copy has begun
    with qtbot.waitSignal(dialog.move_failed, timeout=120000) as failed:
        dialog.cancel_button.click()
    assert isinstance(failed.args[0], MoveCancelled)
    assert "cancelled" in dialog.summary.toPlainText()
    assert dialog.cancel_button.text() == "Close"
    assert group_rows(ports[source], BIG) == before and not has_group(ports[target], BIG)
    entry = panel.context.store.audit_entries(target=f"{source}/group:{BIG}")[0]
    assert (entry.action, entry.outcome) == ("group.move", "cancelled")
    dialog.cancel_button.click()
    assert not dialog.isVisible()


@pytest.mark.slow
def test_an_export_shows_its_progress_and_cancel_leaves_no_file(
        qtbot: Any, big_config: Path, big_pair: tuple[MariaDBHandle, MariaDBHandle], make_panel: MakePanel,
        tmp_path: Path) -> None:
    source, _ = _where_big(big_pair)
    panel = make_panel(big_config)
    page = _page(qtbot, panel)
    with qtbot.waitSignal(page.focused, timeout=60000) as focused:
        page.focus_item(BIG)
    out = tmp_path / "big.jsonl"
    page.start_export(focused.args[0], out)
    progress = page.export_progress
    assert progress is not None
    qtbot.waitUntil(lambda: progress.value() > 0, timeout=60000)  # rows are arriving
    assert "rows" in progress.labelText()
    cancel = next(b for b in progress.findChildren(QPushButton) if b.text() == "Cancel")
    with qtbot.waitSignal(page.group_changed, timeout=60000) as changed:
        cancel.click()
    assert changed.args[0] == "export" and "cancelled" in str(changed.args[1])
    assert not out.exists() and list(tmp_path.glob("*.partial")) == [] and list(tmp_path.glob(".*")) == []
    entry = panel.context.store.audit_entries(target=f"{source}/group:{BIG}")[0]
    assert (entry.action, entry.outcome) == ("group.export", "cancelled")
