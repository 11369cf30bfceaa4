"""The Groups page on the lab: search as you type through the tunnels, the detail, suspend, export,
the password dialog and the palette. This file changes app1's group 7 only, and puts it back."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox, QPushButton

from panel.lab.fleet import LabInfo
from panel.lab.secrets import MYSQL_PASSWORD
from panel.mysql import MysqlPasswordMissing, open_mysql
from services.groups import reactivate, verify_export
from tests.keyrings import LockedKeyring, MemoryKeyring
from tests.views.groups.groups_testlib import Panel, count, group_rows, lab_port, suspended_at
from views.models.groups import NAME, STATE
from views.pages.groups import GroupsPage

SUSPENDED = 7  # solar-ember-works on app1
MakePanel = Callable[..., Panel]


def _page(qtbot: Any, panel: Panel) -> GroupsPage:
    page = GroupsPage(panel.state)
    qtbot.addWidget(page)
    page.resize(1100, 700)
    page.show()
    return page


def _settled(page: GroupsPage) -> bool:
    model = page.model
    return model.started and not model.is_loading and model.totals_known


def _names(page: GroupsPage) -> list[str]:
    return [page.model.data(page.model.index(n, NAME)) for n in range(page.model.rowCount())]


def _button(box: QMessageBox, text: str) -> QPushButton:
    return next(b for b in box.findChildren(QPushButton) if b.text().replace("&", "") == text)


def _visible_box(page: GroupsPage) -> QMessageBox | None:
    boxes = [b for b in page.findChildren(QMessageBox) if b.isVisible()]
    return boxes[-1] if boxes else None


def test_search_as_you_type_through_the_tunnels(qtbot: Any, lab: LabInfo, make_panel: MakePanel) -> None:
    page = _page(qtbot, make_panel(lab.config_path))
    page.activate()
    qtbot.waitUntil(lambda: _settled(page), timeout=30000)
    model = page.model
    assert model.total == 5000 and 0 < model.loaded < 5000  # pages, not the whole list
    assert "of 5,000 groups" in page.count_label.text()
    generation, requests = model.generation, model.requests

    qtbot.keyClicks(page.search, "wile.coyote")  # eleven keystrokes, faster than the 150 ms pause
    qtbot.waitUntil(lambda: model.search == "wile.coyote" and _settled(page), timeout=30000)
    assert sorted(_names(page)) == ["acme", "acme-europe", "acme-labs", "desert-ops"]
    assert model.generation == generation + 1  # one search for the whole word...
    assert model.requests == requests + 2  # ...one page from each server
    assert "4 of 4 groups matching" in page.count_label.text()

    # A search still under way is cancelled by the next one, and its answer never shows.
    page.search.setText("blue")
    page._search_timer.stop()
    page._apply_search()  # as if the pause had come: the search of "blue" starts
    cancelled = model.cancelled_jobs
    page.search.setText("#1000001")  # typed before any answer came back
    page._search_timer.stop()
    page._apply_search()
    qtbot.waitUntil(lambda: model.search == "#1000001" and _settled(page), timeout=30000)
    assert model.cancelled_jobs == cancelled + 2
    qtbot.waitUntil(lambda: not page.state.runner.active_jobs, timeout=30000)
    assert _names(page) == ["globex"]
    assert model.data(model.index(0, 2)) == "app2"

    groups_before = count(lab_port(lab, "app1"), "SELECT COUNT(*) FROM `groups`")
    page.search.setText("'; DROP TABLE groups; --")
    qtbot.waitUntil(lambda: model.search == "'; DROP TABLE groups; --" and _settled(page), timeout=30000)
    assert model.rowCount() == 0 and "No group matching" in page.count_label.text()
    assert count(lab_port(lab, "app1"), "SELECT COUNT(*) FROM `groups`") == groups_before == 3000


def test_navigate_finds_a_group_and_shows_its_members_data_history_and_billing(
        qtbot: Any, lab: LabInfo, make_panel: MakePanel) -> None:
    panel = make_panel(lab.config_path)
    panel.context.store.audit("group.suspend", "app1/group:1", "ok", "an earlier suspension (test)")
    page = _page(qtbot, panel)
    with qtbot.waitSignal(page.detail_loaded, timeout=30000) as loaded:
        with qtbot.waitSignal(page.focused, timeout=30000) as focused:
            page.focus_item("acme")  # what state.navigate("Groups", "acme") does
        assert focused.args[0].id == 1 and focused.args[0].server == "app1"
    detail = loaded.args[0]
    assert detail.id == 1 and detail.name == "acme"
    assert page.search.text() == "acme"
    assert page.table.currentIndex().row() == 0 and page.detail.row is not None and page.detail.row.id == 1
    members = [page.detail.members_model.data(page.detail.members_model.index(n, 0))
               for n in range(page.detail.members_model.rowCount())]
    assert "wile.coyote@acme.example" in members and len(members) == 10
    tables = {page.detail.tables_model.data(page.detail.tables_model.index(n, 0))
              for n in range(page.detail.tables_model.rowCount())}
    assert {"memberships", "projects", "documents", "invoices", "activity", "total"} <= tables
    assert page.detail.history_model.rowCount() == 1
    assert page.detail.history_model.data(page.detail.history_model.index(0, 1)) == "group.suspend"
    assert "active" in page.detail.facts_label.text()
    # The lab's Stripe stand-in knows the demo groups; the line appears once Stripe answers.
    qtbot.waitUntil(lambda: page.detail.billing_label.text() not in ("", "Billing: …"), timeout=30000)
    assert page.detail.billing_label.text().startswith("Billing: ")
    assert "Stripe:" not in page.detail.billing_label.text()

    with qtbot.waitSignal(page.focused, timeout=30000) as focused:
        page.focus_item(1_000_001)  # the Billing page's "Show group" passes an id
    assert focused.args[0].name == "globex" and focused.args[0].server == "app2"


def test_the_palette_finds_groups_without_one_action_per_group(qtbot: Any, lab: LabInfo,
                                                               make_panel: MakePanel) -> None:
    panel = make_panel(lab.config_path)
    page = _page(qtbot, panel)
    titles = {a.title: a for a in panel.state.actions.values()}
    assert "Find group…" in titles
    assert {t for t in titles if t.startswith(("Move the chosen", "Suspend the chosen"))}
    assert all(titles[t].changes_something for t in titles if t.startswith(("Move", "Suspend", "Reactivate")))
    assert not titles["Export the chosen group (GDPR)…"].changes_something
    assert len([a for a in panel.state.actions if a.startswith("groups/")]) < 10
    page.activateWindow()
    titles["Find group…"].run()
    qtbot.waitUntil(page.search.hasFocus, timeout=5000)


def test_suspend_asks_first_then_suspends_and_reactivates(qtbot: Any, lab: LabInfo, make_panel: MakePanel) -> None:
    port = lab_port(lab, "app1")
    assert suspended_at(port, SUSPENDED) is None
    panel = make_panel(lab.config_path)
    page = _page(qtbot, panel)
    with qtbot.waitSignal(page.detail_loaded, timeout=30000):
        page.focus_item(SUSPENDED)

    panel.state.read_only = True  # read-only mode: nothing is even asked
    page.detail.set_read_only(True)
    assert not page.detail.suspend_button.isEnabled()
    with qtbot.waitSignal(panel.state.message) as said:
        page.suspend_chosen()
    assert "Read-only mode" in said.args[0] and _visible_box(page) is None

    panel.state.read_only = False
    page.detail.set_read_only(False)
    try:
        qtbot.mouseClick(page.detail.suspend_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: _visible_box(page) is not None, timeout=5000)
        box = _visible_box(page)
        assert box is not None and "Suspend group solar-ember-works" in box.text()
        _button(box, "Cancel").click()  # the operator thinks again: nothing happens
        assert suspended_at(port, SUSPENDED) is None

        qtbot.mouseClick(page.detail.suspend_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: _visible_box(page) is not None, timeout=5000)
        box = _visible_box(page)
        assert box is not None
        with qtbot.waitSignal(page.group_changed, timeout=30000) as changed:
            qtbot.mouseClick(_button(box, "Suspend"), Qt.MouseButton.LeftButton)
        assert changed.args[0] == "suspend" and changed.args[1].suspended is not None
        assert suspended_at(port, SUSPENDED) is not None
        row = page.model.row_of("app1", SUSPENDED)
        assert str(page.model.data(page.model.index(row, STATE))).startswith("suspended")
        entry = panel.context.store.audit_entries(target=f"app1/group:{SUSPENDED}")[0]
        assert (entry.action, entry.outcome) == ("group.suspend", "ok")
        qtbot.waitUntil(page.detail.reactivate_button.isVisible, timeout=5000)
        assert not page.detail.suspend_button.isVisible()

        qtbot.waitUntil(page.detail.reactivate_button.isEnabled, timeout=10000)
        qtbot.mouseClick(page.detail.reactivate_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: _visible_box(page) is not None, timeout=5000)
        box = _visible_box(page)
        assert box is not None
        with qtbot.waitSignal(page.group_changed, timeout=30000) as changed:
            qtbot.mouseClick(_button(box, "Reactivate"), Qt.MouseButton.LeftButton)
        assert changed.args[0] == "reactivate" and changed.args[1].suspended is None
    finally:
        if suspended_at(port, SUSPENDED) is not None:  # leave the lab as it was, whatever happened
            reactivate(open_mysql(panel.context, "app1")[0], panel.context.inventory.groups, SUSPENDED)
    assert suspended_at(port, SUSPENDED) is None
    actions = [(e.action, e.outcome) for e in panel.context.store.audit_entries(target=f"app1/group:{SUSPENDED}")]
    assert actions == [("group.reactivate", "ok"), ("group.suspend", "ok")]


def test_export_through_the_file_dialog(qtbot: Any, lab: LabInfo, make_panel: MakePanel, tmp_path: Path) -> None:
    panel = make_panel(lab.config_path)
    panel.state.read_only = True  # exporting reads only: allowed in read-only mode
    page = _page(qtbot, panel)
    with qtbot.waitSignal(page.detail_loaded, timeout=30000):
        page.focus_item("acme-europe")
    assert page.detail.export_button.isEnabled()
    qtbot.mouseClick(page.detail.export_button, Qt.MouseButton.LeftButton)
    dialog = page.file_dialog
    assert isinstance(dialog, QFileDialog) and dialog.isVisible()  # open(): the window keeps running
    out = tmp_path / "acme-europe.jsonl"
    with qtbot.waitSignal(page.group_changed, timeout=60000) as changed:
        dialog.selectFile(str(out))
        dialog.accept()
    manifest = changed.args[1]
    assert changed.args[0] == "export" and manifest.path == out
    assert verify_export(manifest.manifest_path) == []
    rows = group_rows(lab_port(lab, "app1"), 3)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sum(1 for line in lines if line["table"] == "invoices") == len(rows["invoices"])
    entry = panel.context.store.audit_entries(target="app1/group:3")[0]
    assert (entry.action, entry.outcome) == ("group.export", "ok") and str(out) in entry.detail
    assert page.export_progress is not None and not page.export_progress.isVisible()


def _next_dialog(qtbot: Any, page: GroupsPage, previous: object) -> Any:
    qtbot.waitUntil(lambda: page.password_dialog is not None and page.password_dialog is not previous
                    and page.password_dialog.isVisible(), timeout=30000)
    return page.password_dialog


def test_a_missing_password_is_asked_for_and_remembered(qtbot: Any, lab: LabInfo, make_panel: MakePanel) -> None:
    keyring = MemoryKeyring()  # a working keyring without the database passwords
    page = _page(qtbot, make_panel(lab.config_path, backend=keyring))
    page.activate()
    dialog = _next_dialog(qtbot, page, None)
    qtbot.waitUntil(lambda: len(page.model.errors) == 2, timeout=30000)
    assert page.banner.isVisible() and page.password_button.isVisible()
    assert all(isinstance(e, MysqlPasswordMissing) for e in page.model.errors.values())
    assert dialog.remember_box.isVisible() and dialog.remember_box.isChecked()
    first = dialog.windowTitle().rsplit(" ", 1)[-1]
    qtbot.keyClicks(dialog.edit, "wrong-password")
    dialog.accept_button.click()

    # One dialog at a time, each server in turn; the refused one again, saying why.
    refused_seen = False
    while not (refused_seen and _settled(page) and not page.model.errors):
        dialog = _next_dialog(qtbot, page, dialog)
        server = dialog.windowTitle().rsplit(" ", 1)[-1]
        if server == first and not refused_seen:
            assert "refused" in dialog.problem_label.text()
            assert ("panel", f"{first}/mysql") not in keyring.entries  # a refused password is not kept
            refused_seen = True
        qtbot.keyClicks(dialog.edit, MYSQL_PASSWORD)
        dialog.accept_button.click()
        qtbot.waitUntil(lambda s=server: keyring.entries.get(("panel", f"{s}/mysql")) == MYSQL_PASSWORD,
                        timeout=30000)
        if len(keyring.entries) == 2:
            qtbot.waitUntil(lambda: _settled(page) and not page.model.errors, timeout=30000)
    assert page.model.total == 5000 and not page.banner.isVisible()


def test_without_a_working_keyring_the_password_is_not_offered_to_be_remembered(
        qtbot: Any, lab: LabInfo, make_panel: MakePanel) -> None:
    keyring = LockedKeyring()
    page = _page(qtbot, make_panel(lab.config_path, backend=keyring))
    page.server_box.setCurrentText("app2")
    page.activate()
    qtbot.waitUntil(lambda: page.password_dialog is not None and page.password_dialog.isVisible(), timeout=30000)
    dialog = page.password_dialog
    assert dialog is not None
    assert not dialog.remember_box.isVisible() and not dialog.remember
    assert dialog.no_keyring_label.isVisible() and "locked" in dialog.no_keyring_label.text()
    qtbot.keyClicks(dialog.edit, MYSQL_PASSWORD)
    dialog.accept_button.click()
    qtbot.waitUntil(lambda: _settled(page) and page.model.total == 2000, timeout=30000)
    assert keyring.entries == {}


def test_balance_shows_the_load_per_server_and_offers_the_suggested_moves(
        qtbot: Any, lab: LabInfo, make_panel: MakePanel) -> None:
    panel = make_panel(lab.config_path)
    page = _page(qtbot, panel)
    page.show_balance()
    dialog = page.balance_dialog
    assert dialog is not None and dialog.isVisible()
    with qtbot.waitSignal(dialog.report_ready, timeout=60000) as ready:
        pass
    report = ready.args[0]
    servers = {s.server: s for s in report.servers}
    assert servers["app1"].groups == 3000 and servers["app2"].groups == 2000
    assert dialog.servers_model.rowCount() == 2
    assert dialog.moves_model.rowCount() == len(report.suggestions) > 0  # app1 holds more rows than app2
    assert "would bring it to" in dialog.status.text()

    panel.state.read_only = True  # read-only: a suggestion does not even open the move
    dialog.moves_table.selectRow(0)
    dialog.move_button.click()
    assert page.move_dialog is None

    panel.state.read_only = False
    dialog.move_button.click()
    move = page.move_dialog
    assert move is not None and move.isVisible()
    first = report.suggestions[0]
    assert move.row.id == first.group_id and move.row.server == first.source and move.target == first.target
    qtbot.waitUntil(lambda: move.plan is not None or move.error is not None, timeout=60000)
    move.reject()  # planned only: nothing moved
    dialog.reject()
