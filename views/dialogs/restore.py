"""Restore a file or folder from a backup to a folder on this laptop, with progress.

The dialog runs two jobs (:mod:`panel.backups`): prepare (restore into a temporary folder where the
repository is, list it, find local files in the way) and copy (over SFTP, or locally for a
repository on this laptop). When local files are in the way it asks, without blocking the window:
overwrite them, keep them (restore the rest), or cancel. Nothing local is overwritten otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QStandardPaths, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from panel.backups import (
    ConflictChoice,
    PreparedRestore,
    RestoreOutcome,
    RestoreProgress,
    discard_restore,
    finish_restore,
    human_size,
    label,
    prepare_restore,
)
from services.backups import Repository, Session
from services.errors import Cancelled, PanelError
from views.models.backups import SessionsModel
from views.state import PanelState
from views.workers import Job, JobContext


class RestoreDialog(QDialog):
    restored = Signal(object)  # a RestoreOutcome
    failed = Signal(str)
    conflicts_found = Signal(object)  # the PreparedRestore whose conflicts are being asked about

    def __init__(self, state: PanelState, repository: Repository, *, path: str = "",
                 session: Session | None = None, destination: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.repository = repository
        self.job: Job | None = None
        self.prepared: PreparedRestore | None = None
        self.outcome: RestoreOutcome | None = None
        self.conflict_box: QMessageBox | None = None
        self.folder_dialog: QFileDialog | None = None
        self.setWindowTitle(f"Restore from {label(repository)}")
        self.setMinimumWidth(560)

        self.path_edit = QLineEdit(path)
        self.path_edit.setPlaceholderText("etc/nginx/nginx.conf — a file or folder inside the backup; empty: all")
        self.sessions = SessionsModel(self)
        self.sessions.set_sessions(repository.sessions)
        self.session_box = QComboBox()
        self.session_box.setModel(self.sessions)
        if session is not None and (row := self.sessions.row_of(session)) >= 0:
            self.session_box.setCurrentIndex(row)
        start = destination or QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DownloadLocation) \
            or QStandardPaths.writableLocation(QStandardPaths.StandardLocation.HomeLocation)
        self.destination_edit = QLineEdit(start)
        self.choose_button = QPushButton("Choose…")
        self.choose_button.clicked.connect(self.choose_folder)
        destination_row = QHBoxLayout()
        destination_row.addWidget(self.destination_edit, 1)
        destination_row.addWidget(self.choose_button)
        form = QFormLayout()
        form.addRow("&Path in the backup:", self.path_edit)
        form.addRow("&Session:", self.session_box)
        folder_label = QLabel("&Into the folder:")
        folder_label.setBuddy(self.destination_edit)
        form.addRow(folder_label, destination_row)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.status = QLabel(f"Restores into a temporary folder on {repository.where} first, then copies it here. "
                             "A local file is never overwritten without asking.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox()
        self.restore_button = self.buttons.addButton("&Restore", QDialogButtonBox.ButtonRole.AcceptRole)
        self.restore_button.setDefault(True)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.restore_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel_or_close)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)

    # --- inputs -------------------------------------------------------------------------------------------

    def chosen_session(self) -> Session | None:
        return self.sessions.session_at(self.session_box.currentIndex())

    def chosen_at(self) -> Any:
        """None for the newest session (rdiff-backup's "now"), else the session's time."""
        session = self.chosen_session()
        return None if session is None or session.is_mirror else session.time

    def choose_folder(self) -> None:
        dialog = QFileDialog(self, "Restore into which folder?", self.destination_edit.text())
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.fileSelected.connect(self.destination_edit.setText)
        dialog.finished.connect(dialog.deleteLater)
        self.folder_dialog = dialog
        dialog.open()

    def _set_busy(self, busy: bool) -> None:
        for widget in (self.path_edit, self.session_box, self.destination_edit, self.choose_button,
                       self.restore_button):
            widget.setEnabled(not busy)
        self.progress.setVisible(busy or self.progress.value() > 0)

    # --- the two jobs ----------------------------------------------------------------------------------------

    def start(self) -> None:
        destination = self.destination_edit.text().strip()
        if not destination:
            self.status.setText("Choose the folder on this laptop to restore into.")
            return
        if self.job is not None:
            return
        context = self.state.context
        repository = self.repository
        path = self.path_edit.text().strip()
        at = self.chosen_at()
        self.outcome = None
        self._set_busy(True)
        self.progress.setRange(0, 0)  # busy until the copy knows its size
        self.status.setText(f"Restoring /{path.strip('/')} on {repository.where}…")

        def prepare(job: JobContext) -> PreparedRestore:
            prepared = prepare_restore(context, repository, path, at, Path(destination).expanduser(),
                                       cancel=job.cancel)
            if job.cancel.cancelled:  # cancelled just as it finished: leave nothing behind on the host
                discard_restore(context, prepared)
                raise Cancelled(f"Restoring /{path.strip('/')}")
            return prepared

        self._submit(f"Restoring /{path.strip('/')} from {label(repository)}", prepare, 3600, self._prepared)

    def _submit(self, title: str, function: Any, timeout: float, on_success: Any,
                on_progress: Any = None) -> None:
        """Run one job of the restore; ``self.job`` is it until it ends (before its result is handled)."""
        started: list[Job] = []

        def clear() -> None:
            if started and self.job is started[0]:
                self.job = None

        def succeeded(result: Any) -> None:
            clear()
            on_success(result)

        def failed(error: PanelError) -> None:
            clear()
            self._failed(error)

        job = self.state.runner.submit(title, function, timeout=timeout, on_success=succeeded, on_error=failed,
                                       on_progress=on_progress, on_finished=clear)
        started.append(job)
        self.job = job

    def _prepared(self, prepared: PreparedRestore) -> None:
        self.prepared = prepared
        if not prepared.conflicts:
            self._copy("refuse")
            return
        shown = "\n".join(str(p) for p in prepared.conflicts[:15])
        more = f"\n… and {len(prepared.conflicts) - 15} more" if len(prepared.conflicts) > 15 else ""
        box = QMessageBox(QMessageBox.Icon.Question, "Local files are in the way",
                          f"{len(prepared.conflicts)} file(s) already exist in {prepared.destination}:\n\n"
                          f"{shown}{more}\n\nOverwrite them with the backup's copies?", parent=self)
        box.setTextFormat(Qt.TextFormat.PlainText)
        overwrite = box.addButton("Overwrite them", QMessageBox.ButtonRole.DestructiveRole)
        keep = box.addButton("Keep mine, restore the rest", QMessageBox.ButtonRole.AcceptRole)
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)
        box.setEscapeButton(cancel)

        def answered() -> None:
            clicked = box.clickedButton()
            self.conflict_box = None
            if clicked is overwrite:
                self._copy("overwrite")
            elif clicked is keep:
                self._copy("skip")
            else:
                self._discard("Nothing was restored; your local files are untouched.")

        box.finished.connect(lambda _: answered())
        box.finished.connect(box.deleteLater)
        self.conflict_box = box
        box.open()
        self.status.setText(f"{len(prepared.conflicts)} local file(s) are in the way: overwrite them, keep them, "
                            "or cancel.")
        self.conflicts_found.emit(prepared)

    def _copy(self, choice: ConflictChoice) -> None:
        prepared = self.prepared
        if prepared is None:
            return
        context = self.state.context
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.status.setText(f"Copying {human_size(prepared.total_bytes)} ({prepared.file_count} file(s)) from "
                            f"{prepared.copy.where}…")

        def copy(job: JobContext) -> RestoreOutcome:
            return finish_restore(context, prepared, on_conflict=choice, progress=job.report, cancel=job.cancel)

        self._submit(f"Copying the restore of /{prepared.copy.source_path} to this laptop", copy, 6 * 3600,
                     self._copied, self._progress)

    def _progress(self, progress: RestoreProgress) -> None:
        self.progress.setValue(int(progress.fraction * 1000))
        self.status.setText(f"{human_size(progress.done_bytes)} of {human_size(progress.total_bytes)} "
                            f"({progress.files_done} of {progress.files_total} file(s))")

    def _copied(self, outcome: RestoreOutcome) -> None:
        self.prepared = None
        self.outcome = outcome
        self.progress.setValue(1000)
        kept = f"; {len(outcome.kept)} local file(s) kept" if outcome.kept else ""
        notes = "".join(f"\n{note}" for note in outcome.notes)
        self.status.setText(f"Restored to {outcome.local_root}: {len(outcome.written)} file(s), "
                            f"{human_size(outcome.bytes)}{kept}.{notes}")
        self.cancel_button.setText("Close")
        self._set_busy(False)
        self.restore_button.setEnabled(True)
        self.state.message.emit(f"Restored {outcome.local_root} from {label(self.repository)}.")
        self.restored.emit(outcome)

    def _failed(self, error: PanelError) -> None:
        self.prepared = None  # finish_restore and prepare_restore clean up after themselves
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        text = "Cancelled; nothing more was copied." if isinstance(error, Cancelled) else str(error)
        self.status.setText(text)
        self._set_busy(False)
        self.failed.emit(text)

    def _discard(self, text: str) -> None:
        prepared, self.prepared = self.prepared, None
        self.status.setText(text)
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self._set_busy(False)
        if prepared is None:
            return
        context = self.state.context

        def discard(job: JobContext) -> None:
            discard_restore(context, prepared)

        self.state.runner.submit(f"Deleting the temporary restore on {prepared.copy.where}", discard, timeout=120,
                                 on_error=lambda error: self.state.message.emit(str(error)))

    # --- closing -------------------------------------------------------------------------------------------

    def cancel_or_close(self) -> None:
        if self.job is not None:
            self.job.cancel.cancel()
            self.status.setText("Cancelling…")
            return
        self.reject()

    def reject(self) -> None:
        if self.job is not None:
            self.job.cancel.cancel()
        if self.conflict_box is not None:
            self.conflict_box.close()
        if self.prepared is not None:
            self._discard("")
        super().reject()
