"""Moving a group to another server: the plan first, then the move with its progress, then a summary.

The plan (``plan_move``, which changes nothing) shows every table with its rows and an estimated
size, the users to copy, the estimated time, and any reason the move would be refused, in plain
words. "Move" runs ``move_group`` on a worker with per-table progress; "Cancel" stops it before the
copy is committed (after that, the move finishes: that is the quickest way back to one copy).
Every outcome is written to the audit log as ``group.move`` on ``SOURCE/group:ID``.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from panel.commands.groups import group_target, move_detail
from panel.mysql import LONG_READ_TIMEOUT, MysqlAccess
from services.errors import Cancelled, PanelError
from services.groups import (
    GroupRow,
    MoveCancelled,
    MoveFailed,
    MovePlan,
    MoveRefused,
    MoveResult,
    move_group,
    plan_move,
)
from services.inventory import GroupsSpec
from views.state import PanelState
from views.style import STATE_COLOURS
from views.workers import Job, JobContext

STEPS = ("plan", "freeze", "copy", "verify", "switch", "delete")
STEP_WORDS = {"plan": "plan", "freeze": "freeze the group", "copy": "copy", "verify": "verify",
              "switch": "switch on", "delete": "remove the source copy"}
TABLE, ROWS, SIZE, COPIED, REMOVED = range(5)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"about {seconds:.0f} s"
    return f"about {seconds / 60:.0f} min"


class MoveGroupDialog(QDialog):
    """``moved(MoveResult)`` once the group is on the target; ``refused``/``failed`` otherwise."""

    moved = Signal(object)  # MoveResult
    move_failed = Signal(object)  # PanelError
    plan_ready = Signal(object)  # MovePlan, or the PanelError that refused it

    def __init__(self, state: PanelState, access: MysqlAccess, spec: GroupsSpec, row: GroupRow,
                 targets: Sequence[str], *, target: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.access = access
        self.spec = spec
        self.row = row
        self.plan: MovePlan | None = None
        self.move_result: MoveResult | None = None
        self.error: PanelError | None = None
        self.plan_job: Job | None = None
        self.move_job: Job | None = None
        self.running = False
        self._table_rows: dict[str, int] = {}
        self._steps_done: list[str] = []
        self._step_now = ""
        self._started = 0.0
        self._finished: list[MoveResult] = []  # the result, once the move is done (a late Cancel cannot undo it)
        self.setWindowTitle(f"Move group {row.name}")
        self.setMinimumSize(660, 580)

        self.target_box = QComboBox()
        for name in targets:
            if name != row.server:
                self.target_box.addItem(name)
        if target is not None and self.target_box.findText(target) >= 0:
            self.target_box.setCurrentText(target)
        self.target_box.currentTextChanged.connect(lambda _: self.make_plan())
        head = QHBoxLayout()
        title = QLabel(f"Move <b>{html.escape(row.name)}</b> (id {row.id}) from <b>{html.escape(row.server)}</b> to")
        title.setTextFormat(Qt.TextFormat.RichText)
        head.addWidget(title)
        head.addWidget(self.target_box)
        head.addStretch(1)

        self.plan_label = QLabel()
        self.plan_label.setWordWrap(True)
        self.plan_label.setTextFormat(Qt.TextFormat.RichText)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Table", "Rows", "Est. size", "Copied", "Removed from source"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COPIED, QHeaderView.ResizeMode.Stretch)
        self.steps_label = QLabel()
        self.steps_label.setTextFormat(Qt.TextFormat.RichText)
        self.overall = QProgressBar()
        self.overall.setFormat("%p% of the rows copied")
        self.overall.hide()
        self.keep_suspended_box = QCheckBox()
        self.keep_suspended_box.hide()
        self.summary = QPlainTextEdit()
        self.summary.setReadOnly(True)
        self.summary.setMaximumHeight(100)
        self.summary.hide()

        self.move_button = QPushButton("Move")
        self.move_button.setEnabled(False)
        self.move_button.clicked.connect(self.start_move)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_or_close)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.move_button)
        buttons.addWidget(self.cancel_button)

        layout = QVBoxLayout(self)
        layout.addLayout(head)
        layout.addWidget(self.plan_label)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.keep_suspended_box)
        layout.addWidget(self.steps_label)
        layout.addWidget(self.overall)
        layout.addWidget(self.summary)
        layout.addLayout(buttons)
        if self.target_box.count() == 0:
            self.plan_label.setText("There is no other server with a database to move it to.")
        else:
            self.make_plan()

    @property
    def target(self) -> str:
        return self.target_box.currentText()

    # --- the plan --------------------------------------------------------------------------------------------

    def make_plan(self) -> None:
        if self.running or not self.target:
            return
        if self.plan_job is not None:
            self.plan_job.cancel.cancel()
        self.plan = None
        self.move_button.setEnabled(False)
        self.table.setRowCount(0)
        self.keep_suspended_box.hide()
        self.plan_label.setText(f"Planning the move to {html.escape(self.target)}: counting the rows and "
                                "checking that nothing would collide… Nothing is changed yet.")
        access, spec, row, target = self.access, self.spec, self.row, self.target

        def work(job: JobContext) -> MovePlan:
            source = access.endpoint(row.server, job.cancel, read_timeout=LONG_READ_TIMEOUT)
            there = access.endpoint(target, job.cancel, read_timeout=LONG_READ_TIMEOUT)
            return plan_move(source, there, spec, row.id)

        self.plan_job = job = self.state.runner.submit(
            f"Planning the move of {row.name} to {target}", work, timeout=300,
            on_success=lambda plan: self._planned(job, plan), on_error=lambda error: self._plan_failed(job, error))

    def _planned(self, job: Job, plan: MovePlan) -> None:
        if job is not self.plan_job:
            return
        self.plan_job = None
        self.plan = plan
        if plan.mode == "done":
            self.plan_label.setText(f"Group {plan.group_id} is already on {html.escape(plan.target)}: nothing to do.")
            self.plan_ready.emit(plan)
            return
        lines = [f"<b>{plan.total_rows:,} rows</b> in {len(plan.tables)} tables; "
                 f"{_duration(plan.estimated_seconds)} at a {plan.rtt_seconds * 1000:.0f} ms round trip."]
        if plan.mode == "resume":
            lines.append(f"{html.escape(plan.target)} already holds an identical copy (an interrupted move): "
                         "the move switches it on and removes the source copy.")
        lines.append(f"{plan.users_to_copy} of its users are copied" +
                     (f"; {plan.users_shared} already exist on {html.escape(plan.target)} and are kept."
                      if plan.users_shared else "."))
        lines.append(f"The group is suspended on {html.escape(plan.source)} while it is copied, and checked row "
                     f"by row on {html.escape(plan.target)} before the source copy is removed.")
        lines += [f"<span style='color:{STATE_COLOURS['WARNING']}'>Note: {html.escape(w)}</span>"
                  for w in plan.warnings]
        self.plan_label.setText("<br>".join(lines))
        self.table.setRowCount(len(plan.tables))
        self._table_rows = {}
        for number, table in enumerate(plan.tables):
            self._table_rows[table.table] = number
            self.table.setItem(number, TABLE, QTableWidgetItem(table.table))
            rows = QTableWidgetItem(f"{table.rows:,}")
            rows.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(number, ROWS, rows)
            size = QTableWidgetItem(_size(table.bytes_estimate))
            size.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(number, SIZE, size)
            bar = QProgressBar()
            bar.setRange(0, max(1, table.rows))
            bar.setValue(0)
            bar.setFormat("%v / %m")
            self.table.setCellWidget(number, COPIED, bar)
            self.table.setItem(number, REMOVED, QTableWidgetItem(""))
        if plan.suspended_on_source:
            self.keep_suspended_box.setText(f"Leave it suspended on {plan.target} "
                                            f"(it is suspended on {plan.source} now)")
            self.keep_suspended_box.setChecked(True)
            self.keep_suspended_box.show()
        self.move_button.setEnabled(True)
        self.move_button.setDefault(True)
        self._show_steps()
        self.plan_ready.emit(plan)

    def _plan_failed(self, job: Job, error: PanelError) -> None:
        if job is not self.plan_job:
            return
        self.plan_job = None
        if isinstance(error, Cancelled):
            return
        self.error = error
        if isinstance(error, MoveRefused):
            reasons = "".join(f"<li>{html.escape(r)}</li>" for r in error.reasons)
            self.plan_label.setText(
                f"<span style='color:{STATE_COLOURS['CRITICAL']}'><b>This move is refused.</b></span> "
                f"{html.escape(error.summary)}" + (f"<ul>{reasons}</ul>" if reasons else ""))
        else:
            self.plan_label.setText(f"<span style='color:{STATE_COLOURS['CRITICAL']}'>The move could not be "
                                    f"planned:</span> {html.escape(str(error))}")
        self.plan_ready.emit(error)

    # --- the move --------------------------------------------------------------------------------------------

    def start_move(self) -> None:
        plan = self.plan
        if plan is None or self.running or plan.mode == "done":
            return
        if not self.state.allow_change(f"moving group {self.row.name}"):
            return
        activate: bool | None = None
        if plan.suspended_on_source:
            activate = not self.keep_suspended_box.isChecked()
        self.running = True
        self._started = time.monotonic()
        self.target_box.setEnabled(False)
        self.keep_suspended_box.setEnabled(False)
        self.move_button.setEnabled(False)
        self.cancel_button.setText("Cancel")
        self.overall.setRange(0, max(1, plan.total_rows))
        self.overall.setValue(0)
        self.overall.show()
        self._steps_done = []
        access, spec, row, target, store = self.access, self.spec, self.row, plan.target, self.state.context.store
        audit_target = group_target(row.server, row.id)
        finished = self._finished = []

        def work(job: JobContext) -> MoveResult:
            source = access.endpoint(row.server, job.cancel, read_timeout=LONG_READ_TIMEOUT)
            there = access.endpoint(target, job.cancel, read_timeout=LONG_READ_TIMEOUT)
            where = f"{row.server} -> {target}"
            try:
                result = move_group(source, there, spec, row.id, cancel=job.cancel, activate=activate,
                                    progress=lambda label, done, total: job.report((label, done, total)))
            except MoveRefused as error:
                store.audit("group.move", audit_target, "refused", f"{where}: {error}")
                raise
            except (MoveCancelled, Cancelled) as error:
                store.audit("group.move", audit_target, "cancelled", f"{where}: {error}")
                raise
            except PanelError as error:
                store.audit("group.move", audit_target, "failed", f"{where}: {error}")
                raise
            store.audit("group.move", audit_target, "ok", move_detail(result))
            finished.append(result)
            return result

        self.move_job = self.state.runner.submit(
            f"Moving group {row.name} from {row.server} to {target}", work,
            timeout=max(3600.0, plan.estimated_seconds * 20),
            on_success=self._moved, on_error=self._move_failed, on_progress=self._progress)
        self._show_steps()

    def _progress(self, report: tuple[str, int, int]) -> None:
        label, done, total = report
        step, _, table = label.partition(" ")
        if step in STEPS:
            if step != self._step_now:
                if self._step_now and self._step_now not in self._steps_done:
                    self._steps_done.append(self._step_now)
                self._step_now = step
            if not table and total and done >= total and step not in self._steps_done:
                self._steps_done.append(step)
        number = self._table_rows.get(table, -1) if table else -1
        if number >= 0 and step == "copy":
            bar = self.table.cellWidget(number, COPIED)
            if isinstance(bar, QProgressBar):
                bar.setMaximum(max(1, total))
                bar.setValue(done)
            copied = sum(bar.value() for bar in self._bars())
            self.overall.setValue(min(copied, self.overall.maximum()))
        elif number >= 0 and step == "delete":
            item = self.table.item(number, REMOVED)
            if item is not None:
                item.setText("removed")
        self._show_steps(table if step in ("copy", "delete") else "")

    def _bars(self) -> list[QProgressBar]:
        bars = []
        for number in range(self.table.rowCount()):
            bar = self.table.cellWidget(number, COPIED)
            if isinstance(bar, QProgressBar):
                bars.append(bar)
        return bars

    def _show_steps(self, table: str = "") -> None:
        parts = []
        for step in STEPS:
            word = STEP_WORDS[step]
            if step in self._steps_done:
                parts.append(f"<span style='color:{STATE_COLOURS['OK']}'>✓ {word}</span>")
            elif self.running and step == self._step_now:
                detail = f" {html.escape(table)}" if table else ""
                parts.append(f"<b>▶ {word}{detail}…</b>")
            else:
                parts.append(f"<span style='color:#7f8c8d'>{word}</span>")
        self.steps_label.setText(" → ".join(parts))

    def _moved(self, result: MoveResult) -> None:
        self.running = False
        self.move_job = None
        self.move_result = result
        self._steps_done = list(STEPS)
        self._show_steps()
        for bar in self._bars():
            bar.setValue(bar.maximum())
        self.overall.setValue(self.overall.maximum())
        if result.outcome != "already-moved":
            for table, text in (("groups", "removed"),
                                ("users", f"{result.users_deleted} removed, the others still in use there")):
                item = self.table.item(self._table_rows.get(table, -1), REMOVED) if table in self._table_rows else None
                if item is not None:
                    item.setText(text)
        self.summary.setPlainText(result.summary())
        self.summary.show()
        self.cancel_button.setText("Close")
        self.state.message.emit(result.summary().splitlines()[0])
        self.moved.emit(result)

    def _move_failed(self, error: PanelError) -> None:
        if isinstance(error, Cancelled) and not isinstance(error, MoveFailed) and self._finished:
            self._moved(self._finished[0])  # Cancel came after the move had finished: it is done
            return
        self.running = False
        self.move_job = None
        self.error = error
        if isinstance(error, MoveRefused):
            text = f"The move was refused; nothing was changed.\n{error}"
        elif isinstance(error, MoveFailed):
            verb = "was cancelled" if isinstance(error, MoveCancelled) else "stopped"
            text = f"The move {verb}.\n{error}"
        elif isinstance(error, Cancelled):
            text = f"{error} Nothing was changed."
        else:
            text = f"The move failed: {error}"
        self.summary.setPlainText(text)
        self.summary.setStyleSheet(f"color: {STATE_COLOURS['CRITICAL']};")
        self.summary.show()
        self.cancel_button.setText("Close")
        self.cancel_button.setEnabled(True)
        self.move_failed.emit(error)

    # --- closing ---------------------------------------------------------------------------------------------

    def cancel_or_close(self) -> None:
        if self.running and self.move_job is not None:
            self.move_job.cancel.cancel()
            self.cancel_button.setEnabled(False)
            self.steps_label.setText(self.steps_label.text() + "<br><i>Cancelling… A move stops before its copy is "
                                     "committed; after that it finishes, as the quickest way back to one copy.</i>")
            return
        self.reject()

    def reject(self) -> None:
        if self.running:  # Escape during a move cancels it instead of hiding its outcome
            self.cancel_or_close()
            return
        if self.plan_job is not None:
            self.plan_job.cancel.cancel()
        super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.running:
            event.ignore()
            self.cancel_or_close()
            return
        super().closeEvent(event)

    def state_of_tables(self) -> dict[str, Any]:
        """What the table shows, per table (for tests): rows planned, rows copied, removed."""
        out: dict[str, Any] = {}
        for name, number in self._table_rows.items():
            bar = self.table.cellWidget(number, COPIED)
            removed = self.table.item(number, REMOVED)
            rows = self.table.item(number, ROWS)
            out[name] = (rows.text() if rows is not None else "",
                         bar.value() if isinstance(bar, QProgressBar) else None,
                         removed.text() if removed else "")
        return out
