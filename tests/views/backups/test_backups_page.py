"""The Backups page on the lab's real servers and repositories (real sshd, real rdiff-backup 2.2):
what the operator sees per repository, problems in their own rows, what changed, verify with
progress and cancel, restore over SFTP with progress and without overwriting, and the confirmation
before a removal."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from panel.lab.fleet import LabInfo
from services.backups import Session
from services.backups.models import iso_utc
from tests.views.backups.backup_helpers import (
    backup_toml,
    copy_lab_repo,
    down_server_toml,
    lab_config,
    lab_repo,
)
from tests.views.backups.conftest import MakePage, read
from views.models.backups import GREEN, R_AGE, R_PROBLEM, R_REGRESS, R_SESSIONS, RED
from views.pages.backups import BackupsPage

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(shutil.which("rdiff-backup") is None, reason="rdiff-backup is not installed"),
]


def cell(page: BackupsPage, row: int, column: int) -> str:
    return str(page.model.index(row, column).data())


def colour(page: BackupsPage, row: int, column: int) -> str:
    return page.model.index(row, column).data(Qt.ItemDataRole.ForegroundRole).color().name()


def select(page: BackupsPage, label: str) -> None:
    page.focus_item(label)
    row = page.selected_row()
    assert row is not None and row.label == label


def select_session(page: BackupsPage, session: Session) -> None:
    page.sessions_table.selectRow(page.sessions_model.row_of(session))
    assert page.selected_session() == session


def audit(page: BackupsPage, action: str) -> list[tuple[str, str, str]]:
    return [(e.target, e.outcome, e.detail) for e in page.state.context.store.audit_entries(action_prefix=action)]


def test_every_repository_at_a_glance(qtbot, make_page: MakePage, lab: LabInfo, tmp_path: Path) -> None:
    page = make_page(lab_config(lab, tmp_path / "cfg"))
    # the rows come from the config at once, before anything is read
    assert [row.label for row in page.model.rows()] == ["app1/local", "app1/offsite"]
    assert cell(page, 0, R_PROBLEM) == "not read yet"
    read(page, qtbot)
    assert cell(page, 0, R_SESSIONS) == "60" and cell(page, 1, R_SESSIONS) == "57"
    assert colour(page, 0, R_AGE) == GREEN  # fresh: under max_age_hours
    assert colour(page, 1, R_AGE) == RED  # the offsite copy is 3 days old: past twice 26 h
    assert cell(page, 0, R_REGRESS) == "no" and cell(page, 0, R_PROBLEM) == ""
    assert "1 stale" in page.summary.text()
    # the selected repository's sessions, newest first, and its chart
    select(page, "app1/local")
    assert page.sessions_model.rowCount() == 60
    assert page.sessions_model.index(0, 1).data() == "mirror (newest)"
    data, increments = page.chart.series_data
    assert len(data.points) == 60 and len(increments.points) == 60
    assert data.name.startswith("Data (") and increments.right_axis
    # the session whose run could not read a file shows its error
    errors = [s for s in page.sessions_model.sessions() if s.errors]
    assert len(errors) == 1
    select(page, "app1/offsite")
    assert page.sessions_model.rowCount() == 57
    assert "stale" in page.details.toPlainText()


def test_each_problem_shows_in_its_own_row_and_the_others_still_show(qtbot, make_page: MakePage, lab: LabInfo,
                                                                     tmp_path: Path) -> None:
    not_a_repo = tmp_path / "just-a-folder"
    not_a_repo.mkdir()
    local = lab_repo(lab, "local")["path"]
    backups = (backup_toml("app1", "local", local) + backup_toml("app1", "missing", "/srv/no/such/repository")
               + backup_toml("app1", "plain", not_a_repo)
               + backup_toml("app9", "local", "/var/backups/rdiff/app9"))
    page = make_page(lab_config(lab, tmp_path / "cfg", backups=backups,
                                extra=down_server_toml("app9", lab.client_key)))
    read(page, qtbot)
    problems = [cell(page, row, R_PROBLEM) for row in range(4)]
    assert problems[0] == ""
    assert cell(page, 0, R_SESSIONS) == "60"
    assert problems[1] == "The path /srv/no/such/repository does not exist on app1."
    assert "not an rdiff-backup repository" in problems[2]
    assert "app9" in problems[3] and cell(page, 3, R_SESSIONS) == "—"
    assert all(colour(page, row, R_PROBLEM) == RED for row in (1, 2, 3))
    assert "3 unreadable" in page.summary.text()
    select(page, "app9/local")
    assert page.sessions_model.rowCount() == 0
    assert not page.verify_button.isEnabled() and not page.restore_button.isEnabled()
    assert "app9" in page.details.toPlainText()


def test_what_changed_between_two_sessions_filterable_by_path(qtbot, make_page: MakePage, lab: LabInfo,
                                                              tmp_path: Path) -> None:
    page = make_page(lab_config(lab, tmp_path / "cfg"))
    read(page, qtbot)
    select(page, "app1/local")
    sessions = sorted(page.sessions_model.sessions(), key=lambda s: s.time)
    # the lab changed sshd_config in session 12 and passwd in session 18
    page.from_box.setCurrentIndex(page.sessions_model.row_of(sessions[11]))
    page.to_box.setCurrentIndex(page.sessions_model.row_of(sessions[18]))
    with qtbot.waitSignal(page.operation_done, timeout=60000) as done:
        page.compare_button.click()
    assert done.args[0] == "changes"
    changes = {c.path: c.kind for c in page.changes_model.changes()}
    assert changes["etc/ssh/sshd_config"] == "changed" and changes["etc/passwd"] == "changed"
    assert page.tabs.currentIndex() == 1
    assert iso_utc(sessions[11].time) in page.changes_label.text()
    page.filter_edit.setText("SSHD")
    assert page.changes_proxy.rowCount() == 1
    assert page.changes_proxy.index(0, 0).data() == "/etc/ssh/sshd_config"
    assert "1 shown by the filter" in page.changes_label.text()
    # since one session, up to the newest
    page.filter_edit.clear()
    select_session(page, sessions[40])
    with qtbot.waitSignal(page.operation_done, timeout=60000):
        page.since_button.click()
    since = {c.path: c.kind for c in page.changes_model.changes()}
    assert since.get("etc/ssl/private/app1.key") == "added"  # readable again after session 41


def test_the_etc_shortcut_is_a_quick_intrusion_check(qtbot, make_page: MakePage, lab: LabInfo,
                                                     tmp_path: Path) -> None:
    page = make_page(lab_config(lab, tmp_path / "cfg"))
    read(page, qtbot)
    select(page, "app1/local")
    with qtbot.waitSignal(page.operation_done, timeout=60000) as done:
        page.etc_button.click()
    assert done.args[0] == "etc"
    # the live /etc of app1 against its newest backup: the line added after the backup
    assert [(c.path, c.kind) for c in page.changes_model.changes()] == [("etc/passwd", "changed")]
    assert "1 change(s) in /etc" in page.result_label.text()
    select(page, "app1/offsite")  # away from the live files: what its newest backup changed
    with qtbot.waitSignal(page.operation_done, timeout=60000):
        page.etc_button.click()
    assert "backup1" in page.changes_label.text()


def test_verify_a_session_with_progress_cancel_and_the_audit_log(qtbot, make_page: MakePage, lab: LabInfo,
                                                                tmp_path: Path) -> None:
    page = make_page(lab_config(lab, tmp_path / "cfg"))
    read(page, qtbot)
    select(page, "app1/local")
    session = sorted(page.sessions_model.sessions(), key=lambda s: s.time)[30]
    select_session(page, session)
    with qtbot.waitSignal(page.operation_done, timeout=120000) as done:
        page.verify_button.click()
        assert page.busy_box.isVisibleTo(page) and page.cancel_button.isEnabled()
        assert not page.verify_button.isEnabled()  # one operation at a time
    result = done.args[1]
    assert done.args[0] == "verify" and result.ok and result.at == session.time
    assert not page.busy_box.isVisibleTo(page)
    assert "✔" in page.result_label.text()
    target, outcome, detail = audit(page, "backup.verify")[0]
    assert (target, outcome) == ("app1/local", "ok") and iso_utc(session.time) in detail

    # cancel: as soon as rdiff-backup runs on the server (the progress line says so)
    with qtbot.waitSignal(page.operation_failed, timeout=120000) as failed:
        page.verify_button.click()
        qtbot.waitUntil(lambda: page.busy_label.text().startswith("Verifying /"), timeout=30000)
        page.cancel_button.click()
    assert failed.args[0] == "verify" and "cancelled" in failed.args[1]
    assert audit(page, "backup.verify")[0][:2] == ("app1/local", "cancelled")
    assert page.verify_button.isEnabled()


def test_restore_over_sftp_with_progress_never_overwriting_without_asking(qtbot, make_page: MakePage, lab: LabInfo,
                                                                         tmp_path: Path) -> None:
    page = make_page(lab_config(lab, tmp_path / "cfg"))
    read(page, qtbot)
    select(page, "app1/offsite")  # on backup1: restored there, streamed back over SFTP
    destination = tmp_path / "laptop"
    destination.mkdir()
    dialog = page.restore_for("app1/offsite", "etc")
    assert dialog is not None and dialog.isVisible()
    assert dialog.path_edit.text() == "etc"
    # the folder is chosen in a non-blocking file dialog
    dialog.choose_folder()
    chooser = dialog.folder_dialog
    assert chooser is not None and chooser.isVisible()
    chooser.fileSelected.emit(str(destination))
    chooser.reject()
    assert dialog.destination_edit.text() == str(destination)

    values: list[int] = []
    dialog.progress.valueChanged.connect(values.append)
    with qtbot.waitSignal(dialog.restored, timeout=120000) as restored:
        dialog.restore_button.click()
    outcome = restored.args[0]
    assert (destination / "etc" / "hostname").read_text() == "app1\n"
    assert outcome.local_root == destination / "etc" and len(outcome.written) >= 10
    assert values == sorted(values) and values[-1] == 1000 and len(set(values)) > 2
    assert "Restored to" in dialog.status.text()

    # again: every file is in the way; the dialog asks, "keep mine" writes nothing over them
    mine = destination / "etc" / "hostname"
    mine.write_text("edited on the laptop\n")
    with qtbot.waitSignal(dialog.conflicts_found, timeout=120000):
        dialog.restore_button.click()
    box = dialog.conflict_box
    assert box is not None and box.isVisible() and str(mine) in box.text()
    keep = next(b for b in box.buttons() if b.text().startswith("Keep mine"))
    with qtbot.waitSignal(dialog.restored, timeout=120000) as kept:
        keep.click()
    assert mine.read_text() == "edited on the laptop\n" and mine in kept.args[0].kept

    # cancel at the question: nothing written, the temporary copy on backup1 deleted
    with qtbot.waitSignal(dialog.conflicts_found, timeout=120000) as asked:
        dialog.restore_button.click()
    temp = Path(asked.args[0].copy.temp_dir)
    assert dialog.conflict_box is not None
    dialog.conflict_box.button(QMessageBox.StandardButton.Cancel).click()
    qtbot.waitUntil(lambda: not temp.exists(), timeout=30000)
    assert mine.read_text() == "edited on the laptop\n" and "untouched" in dialog.status.text()

    # overwrite, when the operator says so
    with qtbot.waitSignal(dialog.conflicts_found, timeout=120000):
        dialog.restore_button.click()
    assert dialog.conflict_box is not None
    overwrite = next(b for b in dialog.conflict_box.buttons() if b.text() == "Overwrite them")
    with qtbot.waitSignal(dialog.restored, timeout=120000):
        overwrite.click()
    assert mine.read_text() == "app1\n"
    outcomes = [e[1] for e in audit(page, "backup.restore")]
    assert outcomes == ["ok", "ok", "ok"]
    dialog.reject()


def test_removal_lists_the_sessions_and_asks_first(qtbot, make_page: MakePage, lab: LabInfo, tmp_path: Path) -> None:
    copy = copy_lab_repo(lab, "local", tmp_path / "repo-copy")
    page = make_page(lab_config(lab, tmp_path / "cfg", backups=backup_toml("app1", "copy", copy)))
    read(page, qtbot)
    select(page, "app1/copy")
    sessions = sorted(page.sessions_model.sessions(), key=lambda s: s.time)
    assert not page.remove_button.isEnabled()  # read-only mode is on until the operator turns it off
    messages: list[str] = []
    page.state.message.connect(messages.append)
    page.remove_older()
    assert page.removal_dialog is None and "Read-only mode is on" in messages[-1]

    page.state.set_read_only(False, remember=False)
    assert page.remove_button.isEnabled()
    select_session(page, sessions[10])  # that session stays; the 10 before it go
    assert page.older_edit.text() == iso_utc(sessions[10].time)
    page.remove_button.click()
    qtbot.waitUntil(lambda: page.removal_dialog is not None and page.removal_dialog.isVisible(), timeout=60000)
    dialog = page.removal_dialog
    assert dialog is not None
    listed = dialog.listing.toPlainText().splitlines()
    assert [line.split()[0] for line in listed] == [iso_utc(s.time) for s in sessions[:10]]
    assert "10" in dialog.remove_button.text()
    dialog.cancel_button.click()  # cancel once: nothing removed
    qtbot.waitUntil(lambda: page.removal_dialog is None, timeout=10000)
    assert "Nothing was removed" in page.result_label.text()
    assert audit(page, "backup.remove-older-than") == []
    with qtbot.waitSignal(page.repository_updated, timeout=60000):
        page.read_repository("app1/copy")
    assert page.sessions_model.rowCount() == 60

    assert page.older_edit.text() == iso_utc(sessions[10].time)  # the re-read kept the chosen session
    page.remove_button.click()  # confirm once: removed and audited
    qtbot.waitUntil(lambda: page.removal_dialog is not None and page.removal_dialog.isVisible(), timeout=60000)
    assert page.removal_dialog is not None and len(page.removal_dialog.listing.toPlainText().splitlines()) == 10
    with qtbot.waitSignal(page.repository_updated, timeout=120000):
        page.removal_dialog.remove_button.click()
    assert page.sessions_model.rowCount() == 50
    assert min(s.time for s in page.sessions_model.sessions()) == sessions[10].time
    (entry,) = audit(page, "backup.remove-older-than")
    assert entry[:2] == ("app1/copy", "ok") and "removed 10 session(s)" in entry[2]
    assert "Removed 10 session(s)" in page.result_label.text()


def test_palette_actions_and_navigation(qtbot, make_page: MakePage, lab: LabInfo, tmp_path: Path) -> None:
    page = make_page(lab_config(lab, tmp_path / "cfg"))
    actions = {action.title: action for action in page.state.actions.values()}
    assert {"Backups: what changed in /etc on app1", "Verify backup app1/local", "Verify backup app1/offsite",
            "Restore from backup app1/offsite…", "Remove old sessions of backup app1/local…"} <= set(actions)
    assert actions["Remove old sessions of backup app1/local…"].changes_something
    assert not actions["Restore from backup app1/offsite…"].changes_something  # writes only on this laptop
    assert not actions["Verify backup app1/local"].changes_something
    navigated: list[tuple[str, object]] = []
    page.state.navigate.connect(lambda title, argument: navigated.append((title, argument)))
    with qtbot.waitSignal(page.operation_done, timeout=120000) as done:
        actions["Verify backup app1/offsite"].run()
    assert navigated == [("Backups", "app1/offsite")]
    assert page.selected_row() is not None and page.selected_row().label == "app1/offsite"  # type: ignore[union-attr]
    assert done.args[0] == "verify" and done.args[1].ok
    with qtbot.waitSignal(page.operation_done, timeout=120000) as etc:
        actions["Backups: what changed in /etc on app1"].run()
    assert etc.args[0] == "etc" and [c.path for c in etc.args[1].changes] == ["etc/passwd"]
    page.focus_item("app1")
    assert page.selected_row().label == "app1/local"  # type: ignore[union-attr]
