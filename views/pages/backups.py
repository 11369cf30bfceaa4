"""Backups: every rdiff-backup repository at a glance, what changed, verify, restore and thin out.

- One row per configured repository (known from the config before anything is read): where it is,
  its newest session and that session's age against max_age_hours (coloured), its session count,
  total size, the errors of the last session, the regress state, and its problem. Hosts are read
  in parallel and each row fills in as its host answers, so a host that is down delays nobody.
- The selected repository's sessions (a plain table model: instant at 1,000+ rows), a chart of the
  backed-up data and of each run's increment over time, and its details (notes, error log).
- What changed between two sessions or since one, filterable by path; and the quick intrusion
  check "What changed in /etc since the last backup" (live files against the newest backup).
- Verify a session (progress, cancel, audited); restore to this laptop (:class:`RestoreDialog`);
  remove sessions older than a time (the exact list first, a confirmation, audited); regress a
  backup that broke off (confirmation, audited). Changing actions respect read-only mode.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from PySide6.QtCharts import QDateTimeAxis
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from panel import backups
from panel.backups import ChangeReport, human_age, human_size, label, parse_time, session_line
from services.backups import RemovalResult, Repository, RepoTarget, Session, VerifyResult
from services.backups.models import iso_utc
from services.errors import Cancelled, PanelError
from views.charts import Series, TimeSeriesChart
from views.dialogs.messages import show_error
from views.dialogs.restore import RestoreDialog
from views.models.backups import (
    R_PROBLEM,
    R_WHERE,
    S_TIME,
    ChangesModel,
    RepoRow,
    RepositoriesModel,
    SessionsModel,
)
from views.state import PaletteAction, PanelState
from views.style import STATE_COLOURS, monospace
from views.tables import row_table
from views.workers import Job, JobContext

SESSION_WIDTHS = (150, 110, 70, 80, 84, 90, 50, 60)  # one per SESSION_COLUMNS
ACTION_PREFIX = "backups:"
READ_TIMEOUT = 300.0


def _unit(values: list[float]) -> tuple[str, float]:
    """The largest unit in which the top value is still at least 10 (the axis labels are whole numbers)."""
    top = max(values, default=0.0)
    for name, size in (("GiB", 1024.0 ** 3), ("MiB", 1024.0 ** 2), ("KiB", 1024.0)):
        if top >= 10 * size:
            return name, size
    return "B", 1.0


CHART_POINTS = 240  # a chart a few hundred pixels wide shows no more; each point is a call into Qt


def thin(points: list[tuple[datetime, float]], limit: int = CHART_POINTS, *, keep_peaks: bool = False
         ) -> list[tuple[datetime, float]]:
    """At most ``limit`` points: one per bucket of neighbours, its last point (or, with ``keep_peaks``,
    its largest, so a run that wrote a big increment still stands out)."""
    if len(points) <= limit:
        return points
    size = len(points) / limit
    thinned = []
    for number in range(limit):
        bucket = points[int(number * size):int((number + 1) * size)] or points[-1:]
        thinned.append(max(bucket, key=lambda p: p[1]) if keep_peaks else bucket[-1])
    if not keep_peaks:  # the line spans the whole time, oldest to newest
        thinned[0], thinned[-1] = points[0], points[-1]
    return thinned


def size_series(repository: Repository) -> list[Series]:
    """The chart's two lines: the data the runs backed up, and what each run wrote as increment."""
    sessions = [s for s in repository.sessions if s.stats is not None]
    source = thin([(s.time, float(s.stats.source_file_size)) for s in sessions  # type: ignore[union-attr]
                   if s.stats.source_file_size is not None])  # type: ignore[union-attr]
    increments = thin([(s.time, float(s.increment_size)) for s in sessions if s.increment_size is not None],
                      keep_peaks=True)
    source_unit, source_scale = _unit([v for _, v in source])
    increment_unit, increment_scale = _unit([v for _, v in increments])
    return [
        Series(f"Data ({source_unit})", [(t, v / source_scale) for t, v in source], "blue"),
        Series(f"Increment ({increment_unit})", [(t, v / increment_scale) for t, v in increments], "amber",
               right_axis=True),
    ]


class MiddleElide(QStyledItemDelegate):
    """Elides in the middle: "app1:/var/back…/rdiff/app1" keeps the host and the repository's name."""

    def initStyleOption(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideMiddle


class RemovalDialog(QDialog):
    """Lists exactly the sessions a removal deletes, and asks. Opened with .open(): never blocks."""

    def __init__(self, repository: Repository, older_than: datetime, plan: list[Session],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.repository = repository
        self.older_than = older_than
        self.plan = plan
        self.setWindowTitle(f"Remove old sessions of {label(repository)}?")
        text = QLabel(
            f"These <b>{len(plan)}</b> session(s) of <b>{html.escape(label(repository))}</b> are older than "
            f"{html.escape(iso_utc(older_than))} and will be removed from {html.escape(repository.path)} on "
            f"{html.escape(repository.where)}. The newer sessions and the mirror stay. <b>This cannot be undone.</b>")
        text.setWordWrap(True)
        self.listing = QPlainTextEdit("\n".join(session_line(s) for s in plan))
        self.listing.setReadOnly(True)
        self.listing.setFont(monospace())
        buttons = QDialogButtonBox()
        self.remove_button = buttons.addButton(f"Remove {len(plan)} session(s)",
                                               QDialogButtonBox.ButtonRole.DestructiveRole)
        self.cancel_button = buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.cancel_button.setDefault(True)
        self.remove_button.clicked.connect(self.accept)
        self.cancel_button.clicked.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addWidget(self.listing)
        layout.addWidget(buttons)
        self.resize(560, 420)


class BackupsPage(QWidget):
    title = "Backups"
    repositories_loaded = Signal()  # a full read finished (every host answered)
    repository_updated = Signal(object)  # one Repository arrived
    operation_done = Signal(str, object)  # "verify", "changes", "etc", "remove", "regress" and its result
    operation_failed = Signal(str, str)  # the same names, and the message shown

    def __init__(self, state: PanelState, parent: QWidget | None = None, *, autostart: bool = True) -> None:
        super().__init__(parent)
        self.state = state
        self.read_job: Job | None = None
        self.operation: Job | None = None
        self.loaded_once = False
        self.last_read: float | None = None
        self.restore_dialog: RestoreDialog | None = None
        self.removal_dialog: RemovalDialog | None = None
        self.confirm_box: QMessageBox | None = None
        self._shown: tuple[int, str | None] = (0, None)  # the repository whose sessions are on screen
        self.error_box: QMessageBox | None = None

        # --- the repositories ---
        self.model = RepositoriesModel(self)
        self.table = row_table(self.model)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(R_WHERE, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(R_WHERE, 200)
        header.setSectionResizeMode(R_PROBLEM, QHeaderView.ResizeMode.Stretch)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)  # a problem reads from its start
        self.table.setItemDelegateForColumn(R_WHERE, MiddleElide(self.table))  # a path: both ends matter
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._repository_selected())

        self.summary = QLabel()
        self.summary.setObjectName("summary")
        self.refresh_button = QPushButton("Refresh (F5)")
        self.refresh_button.setToolTip("Read every repository again: one round trip per host, hosts in parallel.")
        self.refresh_button.clicked.connect(self.refresh)
        toolbar = QHBoxLayout()
        toolbar.addWidget(self.summary, 1)
        toolbar.addWidget(self.refresh_button)

        # --- the running operation (verify, changes, removal ...) ---
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setMaximumWidth(160)
        self.busy_label = QLabel()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_operation)
        self.result_label = QLabel()
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        busy_row = QHBoxLayout()
        busy_row.addWidget(self.busy_bar)
        busy_row.addWidget(self.busy_label, 1)
        busy_row.addWidget(self.cancel_button)
        self.busy_box = QWidget()
        self.busy_box.setLayout(busy_row)
        busy_row.setContentsMargins(0, 0, 0, 0)
        self.busy_box.hide()

        # --- sessions tab: table, chart, actions ---
        self.sessions_model = SessionsModel(self)
        self.sessions_table = row_table(self.sessions_model, SESSION_WIDTHS,  # never measures every row
                                        sort_by=(S_TIME, Qt.SortOrder.DescendingOrder))
        self.sessions_table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.sessions_table.selectionModel().selectionChanged.connect(lambda *_: self._session_selected())
        self.sessions_table.doubleClicked.connect(lambda _: self.restore_selected())

        self.chart = TimeSeriesChart("Size over time")
        self.chart.setMinimumWidth(320)

        self.verify_button = QPushButton("&Verify this session")
        self.verify_button.setToolTip("Check every file of the selected session against its recorded SHA-1 "
                                      "(rdiff-backup verify). The result goes to the audit log.")
        self.verify_button.clicked.connect(self.verify_selected)
        self.restore_button = QPushButton("R&estore…")
        self.restore_button.setToolTip("Restore a file or folder of the selected session to this laptop.")
        self.restore_button.clicked.connect(self.restore_selected)
        self.since_button = QPushButton("What changed since this session")
        self.since_button.clicked.connect(self.changes_since_selected)
        self.older_edit = QLineEdit()
        self.older_edit.setPlaceholderText("90D, 2026-01-01, or select a session")
        self.older_edit.setToolTip("Sessions older than this go. Select a session to fill it in with its time: "
                                   "that session stays, every older one goes.")
        self.older_edit.setMinimumWidth(self.older_edit.fontMetrics().horizontalAdvance("2026-03-01T02:30:00Z") + 24)
        self.remove_button = QPushButton("Remove older…")
        self.remove_button.setToolTip("List exactly the sessions older than this time, then ask before removing "
                                      "them (rdiff-backup remove increments --older-than). Audited.")
        self.remove_button.clicked.connect(self.remove_older)
        self.regress_button = QPushButton("Regress…")
        self.regress_button.setToolTip("Undo a backup that broke off (rdiff-backup regress). Audited.")
        self.regress_button.clicked.connect(self.regress_selected)
        session_actions = QHBoxLayout()
        for button in (self.verify_button, self.restore_button, self.since_button):
            session_actions.addWidget(button)
        session_actions.addStretch(1)
        session_actions.addWidget(QLabel("Remove sessions older than"))
        session_actions.addWidget(self.older_edit)
        session_actions.addWidget(self.remove_button)
        session_actions.addWidget(self.regress_button)

        sessions_split = QSplitter(Qt.Orientation.Horizontal)
        sessions_split.addWidget(self.sessions_table)
        sessions_split.addWidget(self.chart)
        sessions_split.setStretchFactor(0, 1)
        sessions_split.setStretchFactor(1, 1)
        sessions_tab = QWidget()
        sessions_layout = QVBoxLayout(sessions_tab)
        sessions_layout.addWidget(sessions_split, 1)
        sessions_layout.addLayout(session_actions)

        # --- what changed tab ---
        self.from_box = QComboBox()
        self.from_box.setModel(self.sessions_model)
        self.to_box = QComboBox()
        self.to_box.setModel(self.sessions_model)
        self.prefix_edit = QLineEdit()
        self.prefix_edit.setPlaceholderText("under a folder, e.g. etc (empty: everything)")
        self.compare_button = QPushButton("Show changes")
        self.compare_button.clicked.connect(self.show_changes)
        self.etc_button = QPushButton("What changed in /etc since the last backup")
        self.etc_button.setToolTip("A quick intrusion check: the server's live /etc against its newest backup "
                                   "(for a repository on another host: what its newest backup changed in /etc).")
        self.etc_button.clicked.connect(self.etc_check)
        compare_row = QHBoxLayout()
        compare_row.addWidget(QLabel("From"))
        compare_row.addWidget(self.from_box)
        compare_row.addWidget(QLabel("to"))
        compare_row.addWidget(self.to_box)
        compare_row.addWidget(self.prefix_edit, 1)
        compare_row.addWidget(self.compare_button)
        compare_row.addWidget(self.etc_button)
        self.changes_model = ChangesModel(self)
        self.changes_proxy = QSortFilterProxyModel(self)
        self.changes_proxy.setSourceModel(self.changes_model)
        self.changes_proxy.setFilterKeyColumn(0)
        self.changes_proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter by path…")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._filter_changes)
        self.changes_label = QLabel("Choose two sessions, or use the /etc check.")
        self.changes_label.setWordWrap(True)
        self.changes_table = row_table(self.changes_proxy, (), multi_select=True,
                                       sort_by=(0, Qt.SortOrder.AscendingOrder))
        self.changes_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.changes_table.doubleClicked.connect(lambda _: self.restore_selected_change())
        changes_tab = QWidget()
        changes_layout = QVBoxLayout(changes_tab)
        changes_layout.addLayout(compare_row)
        changes_layout.addWidget(self.changes_label)
        changes_layout.addWidget(self.filter_edit)
        changes_layout.addWidget(self.changes_table, 1)

        # --- details tab ---
        self.details = QTextBrowser()
        self.details.setOpenLinks(False)

        self.tabs = QTabWidget()
        self.tabs.addTab(sessions_tab, "&Sessions")
        self.tabs.addTab(changes_tab, "What &changed")
        self.tabs.addTab(self.details, "&Details")

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 5)
        layout = QVBoxLayout(self)
        layout.addLayout(toolbar)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.busy_box)
        layout.addWidget(self.result_label)

        QShortcut(QKeySequence(Qt.Key.Key_F5), self, self.refresh,
                  context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        QShortcut(QKeySequence("Ctrl+F"), self, self.filter_edit.setFocus,
                  context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        state.inventory_changed.connect(self.load_targets)
        state.read_only_changed.connect(lambda _: self._update_buttons())
        self.load_targets()
        if autostart:  # read in the background soon after the window opens: the page is ready when shown
            QTimer.singleShot(1500, self, self.activate)

    # --- rows and reading --------------------------------------------------------------------------------

    def load_targets(self) -> None:
        """Rows from the config (no I/O); reading happens on activate() or refresh()."""
        self.model.set_targets(backups.targets(self.state.context))
        shown_rows = min(max(self.model.rowCount(), 2), 6)  # the table shows up to 6 rows without scrolling
        self.table.setMinimumHeight(self.table.horizontalHeader().sizeHint().height() + 2 * self.table.frameWidth()
                                    + shown_rows * self.table.verticalHeader().defaultSectionSize() + 2)
        if self.model.rowCount() and not self.table.selectionModel().selectedRows():
            self.table.selectRow(0)
        self._register_actions()
        self._update_summary()
        self._repository_selected()

    def activate(self) -> None:
        if not self.loaded_once and self.read_job is None:
            self.refresh()

    def focus_item(self, argument: object) -> None:
        """``"app1"`` selects that server's first repository, ``"app1/offsite"`` that one."""
        text = str(argument)
        number = self.model.row_of(text)
        if number < 0:
            number = next((n for n, row in enumerate(self.model.rows()) if row.target.server == text), -1)
        if number >= 0:
            self.table.selectRow(number)
            self.table.setFocus()

    def refresh(self) -> None:
        """Read every repository (hosts in parallel; each row fills in as its host answers)."""
        if self.read_job is not None:
            return
        rows = self.model.rows()
        if not rows:
            self._update_summary()
            return
        context = self.state.context
        self.model.set_reading([row.label for row in rows])

        def read(job: JobContext) -> list[Repository]:
            return backups.read_all(context, cancel=job.cancel, timeout=READ_TIMEOUT - 10,
                                    on_host=lambda host, found: job.report(found))

        started: list[Job] = []
        job = self.state.runner.submit(
            "Reading the backups", read, timeout=READ_TIMEOUT,
            on_progress=self._host_read, on_success=self._all_read, on_error=self._read_failed,
            on_finished=lambda: self._read_finished(started[0]))
        started.append(job)
        self.read_job = job
        self._update_summary()

    def _host_read(self, repositories: list[Repository]) -> None:
        for repository in repositories:
            self._show_repository(repository)

    def _show_repository(self, repository: Repository) -> None:
        self.model.update(repository)
        selected = self.selected_row()
        if selected is not None and selected.label == label(repository):
            self._repository_selected()
        self.repository_updated.emit(repository)
        self._update_summary()

    def _all_read(self, repositories: list[Repository]) -> None:
        self.read_job = None  # before anything listening may ask for another read
        self.loaded_once = True
        self.last_read = time.monotonic()
        for repository in repositories:
            self.model.update(repository)
        self._register_actions()
        self._repository_selected()
        self._update_summary()
        self.repositories_loaded.emit()

    def _read_failed(self, error: PanelError) -> None:
        self.read_job = None
        self.model.set_reading([row.label for row in self.model.rows()], False)
        self.state.message.emit(f"Reading the backups: {error}")

    def _read_finished(self, job: Job) -> None:
        if self.read_job is job:
            self.read_job = None
        self._update_summary()

    def read_repository(self, row_label: str, then: Callable[[Repository], object] | None = None) -> None:
        """Read one repository again (after an action), then call ``then`` with it."""
        number = self.model.row_of(row_label)
        row = self.model.row_at(number)
        if row is None:
            return
        context = self.state.context
        target = row.target
        self.model.set_reading([row_label])

        def read(job: JobContext) -> Repository:
            return backups.read_one(context, target, cancel=job.cancel, timeout=READ_TIMEOUT - 10)

        def done(repository: Repository) -> None:
            self._show_repository(repository)
            if then is not None:
                then(repository)

        self.state.runner.submit(f"Reading {row_label}", read, timeout=READ_TIMEOUT, queue=f"backups:{target.host}",
                                 on_success=done, on_error=lambda error: self._one_read_failed(row_label, error))

    def _one_read_failed(self, row_label: str, error: PanelError) -> None:
        self.model.set_reading([row_label], False)
        self.state.message.emit(f"Reading {row_label}: {error}")

    def _update_summary(self) -> None:
        rows = self.model.rows()
        if not rows:
            self.summary.setText("No backups in the config: add [[servers.NAME.backups]] entries (name, path, and "
                                 "via for a repository on another host).")
            return
        read = [row.repository for row in rows if row.repository is not None]
        parts = [f"{len(rows)} repositor{'y' if len(rows) == 1 else 'ies'}"]
        stale = sum(1 for r in read if r.freshness == "stale")
        unreadable = sum(1 for r in read if not r.readable)
        regress = sum(1 for r in read if r.needs_regress)
        errors = sum(1 for r in read if r.last_errors)
        if stale:
            parts.append(f"<span style='color:{STATE_COLOURS['WARNING']}'>{stale} stale</span>")
        if unreadable:
            parts.append(f"<span style='color:{STATE_COLOURS['CRITICAL']}'>{unreadable} unreadable</span>")
        if regress:
            parts.append(f"<span style='color:{STATE_COLOURS['CRITICAL']}'>{regress} need a regress</span>")
        if errors:
            parts.append(f"{errors} with errors in the last session")
        if read and not (stale or unreadable or regress or errors):
            parts.append(f"<span style='color:{STATE_COLOURS['OK']}'>all fresh</span>")
        if self.read_job is not None:
            parts.append("reading…")
        self.summary.setText(" · ".join(parts))

    # --- selection ---------------------------------------------------------------------------------------

    def selected_row(self) -> RepoRow | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.row_at(rows[0].row()) if rows else None

    def selected_repository(self) -> Repository | None:
        row = self.selected_row()
        return row.repository if row is not None else None

    def selected_session(self) -> Session | None:
        rows = self.sessions_table.selectionModel().selectedRows()
        return self.sessions_model.session_at(rows[0].row()) if rows else None

    def _repository_selected(self) -> None:
        row = self.selected_row()
        repository = row.repository if row else None
        sessions = repository.sessions if repository else ()
        if self._shown != (id(repository), row.label if row else None):
            same_repository = row is not None and self._shown[1] == row.label
            keep = self.selected_session() if same_repository else None  # a re-read keeps the operator's choice
            self._shown = (id(repository), row.label if row else None)
            self.show_sessions(list(sessions), keep=keep)
            if repository is not None and repository.sessions:
                self.chart.set_series(size_series(repository), resolution="day",
                                      title=f"{label(repository)}: size over time")
                self._tidy_time_axis(repository)
            else:
                self.chart.set_series([], title="Size over time")
        self.details.setHtml(details_html(row, repository, backups.live_root(self.state.context, row.target))
                             if row else "<p>No backups configured.</p>")
        if repository is not None and not repository.readable and self.tabs.currentIndex() == 0:
            self.tabs.setCurrentIndex(2)  # no sessions to show: say why, in full
        self._update_buttons()

    def _tidy_time_axis(self, repository: Repository) -> None:
        """Short dates that fit a narrow chart: "3 Mar", or "Mar 2026" over more than a year."""
        newest, oldest = repository.newest, repository.oldest
        long_span = newest is not None and oldest is not None and (newest - oldest).days > 400
        for axis in self.chart.chart().axes(Qt.Orientation.Horizontal):
            if isinstance(axis, QDateTimeAxis):
                axis.setFormat("MMM yyyy" if long_span else "d MMM")
                axis.setTickCount(5)

    def show_sessions(self, sessions: list[Session], *, keep: Session | None = None) -> None:
        """Fill the sessions table (and the two "what changed" lists, which share its model). The session
        ``keep`` stays selected if it is still there; else the newest is."""
        self.sessions_model.set_sessions(sessions)
        count = self.sessions_model.rowCount()
        self.to_box.setCurrentIndex(self._row_of_newest())
        self.from_box.setCurrentIndex(min(1, count - 1) if count else -1)
        if count:
            row = self.sessions_model.row_of(keep) if keep is not None else -1
            self.sessions_table.selectRow(row if row >= 0 else 0)

    def _row_of_newest(self) -> int:
        sessions = self.sessions_model.sessions()
        if not sessions:
            return -1
        newest = max(sessions, key=lambda s: s.time)
        return self.sessions_model.row_of(newest)

    def _session_selected(self) -> None:
        session = self.selected_session()
        if session is not None:
            self.older_edit.setText(iso_utc(session.time))
        self._update_buttons()

    def _update_buttons(self) -> None:
        repository = self.selected_repository()
        readable = repository is not None and repository.readable
        idle = self.operation is None
        writable = not self.state.read_only
        session = self.selected_session()
        tip = "" if writable else " (read-only mode is on)"
        self.verify_button.setEnabled(readable and idle)
        self.restore_button.setEnabled(readable)
        self.since_button.setEnabled(readable and idle and session is not None and not session.is_mirror)
        self.compare_button.setEnabled(readable and idle)
        self.etc_button.setEnabled(self.selected_row() is not None and idle)
        self.remove_button.setEnabled(readable and idle and writable)
        self.remove_button.setToolTip("List exactly the sessions older than this time, then ask before removing "
                                      "them (rdiff-backup remove increments --older-than). Audited." + tip)
        self.regress_button.setEnabled(bool(repository and repository.needs_regress) and idle and writable)
        self.regress_button.setToolTip("Undo a backup that broke off (rdiff-backup regress). Audited." + tip)
        self.cancel_button.setEnabled(self.operation is not None)

    # --- operations: one at a time, with progress and cancel ------------------------------------------------

    def _start(self, kind: str, title: str, function: Callable[[JobContext], Any],
               on_success: Callable[[Any], object], *, timeout: float, queue: str | None = None) -> Job | None:
        if self.operation is not None:
            self.state.message.emit(f"{self.operation.title} is still running; cancel it first.")
            return None

        started: list[Job] = []

        def clear() -> None:
            """The operation is over: free the page before its result is shown (which may start another)."""
            if started and self.operation is started[0]:
                self.operation = None
                self.busy_box.hide()
                self._update_buttons()

        def succeeded(result: Any) -> None:
            clear()
            on_success(result)
            self.operation_done.emit(kind, result)

        def failed(error: PanelError) -> None:
            clear()
            text = f"{title} was cancelled." if isinstance(error, Cancelled) else f"{title}: {error}"
            self._show_result(text, "WARNING" if isinstance(error, Cancelled) else "CRITICAL")
            self.state.message.emit(text)
            self.operation_failed.emit(kind, text)

        self.busy_label.setText(title + "…")
        self.busy_box.show()
        self.result_label.clear()
        job = self.state.runner.submit(title, function, timeout=timeout, queue=queue, on_success=succeeded,
                                       on_error=failed, on_progress=lambda text: self.busy_label.setText(str(text)),
                                       on_finished=clear)
        started.append(job)
        self.operation = job
        self._update_buttons()
        return job

    def cancel_operation(self) -> None:
        if self.operation is not None:
            self.operation.cancel.cancel()
            self.busy_label.setText("Cancelling…")

    def _show_result(self, text: str, severity: str = "OK") -> None:
        colour = STATE_COLOURS.get(severity, "inherit")
        self.result_label.setText(f"<span style='color:{colour}'>{html.escape(text)}</span>")

    def _row(self, row_label: str | None = None) -> RepoRow | None:
        if row_label is None:
            return self.selected_row()
        return self.model.row_at(self.model.row_of(row_label))

    # --- verify -------------------------------------------------------------------------------------------------

    def verify_selected(self) -> None:
        session = self.selected_session()
        row = self.selected_row()
        if row is not None:
            self.verify(row.label, None if session is None or session.is_mirror else session.time)

    def verify(self, row_label: str, at: datetime | None = None) -> None:
        row = self._row(row_label)
        if row is None:
            return
        context = self.state.context
        target = row.target
        when = "the newest backup" if at is None else iso_utc(at)

        def run(job: JobContext) -> VerifyResult:
            return backups.verify_repository(context, target, at, cancel=job.cancel, progress=job.report)

        def done(result: VerifyResult) -> None:
            if result.ok:
                self._show_result(f"✔ {row_label}: every file of {when} matches its recorded checksum "
                                  "(written to the audit log).")
            else:
                self._show_result(f"✘ {row_label}: verifying {when} found {len(result.problems)} problem(s): "
                                  + "; ".join(result.problems[:3]), "CRITICAL")
                self.state.notify.emit("CRITICAL", f"Backup {row_label} failed verification",
                                       "; ".join(result.problems[:3]))
            self.state.message.emit(f"Verified {row_label} ({when}): {'ok' if result.ok else 'PROBLEMS'}")

        self._start("verify", f"Verifying {row_label} at {when}", run, done, timeout=6 * 3600)

    # --- what changed ---------------------------------------------------------------------------------------

    def _filter_changes(self, text: str) -> None:
        self.changes_proxy.setFilterFixedString(text)
        self._update_changes_label()

    def _update_changes_label(self) -> None:
        report: ChangeReport | None = getattr(self, "change_report", None)
        if report is None:
            return
        counts = self.changes_model.counts()
        total = sum(counts.values())
        shown = self.changes_proxy.rowCount()
        filtered = f" — {shown} shown by the filter" if shown != total else ""
        if total == 0:
            summary = "no file was added, removed or changed"
        else:
            summary = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
        self.changes_label.setText(f"{report.title}: {summary}{filtered}.")

    def _show_changes(self, report: ChangeReport) -> None:
        self.change_report = report
        self.changes_model.set_changes(report.changes)
        self._update_changes_label()
        self.tabs.setCurrentIndex(1)

    def show_changes(self) -> None:
        repository = self.selected_repository()
        first = self.sessions_model.session_at(self.from_box.currentIndex())
        second = self.sessions_model.session_at(self.to_box.currentIndex())
        if repository is None or first is None or second is None:
            return
        if first.time == second.time:
            self.changes_label.setText("Choose two different sessions.")
            return
        since, until = sorted((first.time, second.time))
        self.compare(repository, since, until, self.prefix_edit.text().strip())

    def changes_since_selected(self) -> None:
        repository = self.selected_repository()
        session = self.selected_session()
        if repository is None or session is None:
            return
        self.compare(repository, session.time, None, self.prefix_edit.text().strip())

    def compare(self, repository: Repository, since: datetime, until: datetime | None, prefix: str = "") -> None:
        context = self.state.context
        self.tabs.setCurrentIndex(1)
        self.changes_label.setText("Comparing…")

        def run(job: JobContext) -> ChangeReport:
            return backups.changes(context, repository, since, until, prefix=prefix or None, cancel=job.cancel)

        self._start("changes", f"Listing what changed in {label(repository)}", run, self._show_changes,
                    timeout=3600)

    def etc_check(self) -> None:
        row = self.selected_row()
        if row is not None:
            self.etc_check_for(row.label)

    def etc_check_for(self, row_label: str) -> None:
        row = self._row(row_label)
        if row is None:
            return
        context = self.state.context
        target, known = row.target, row.repository

        def run(job: JobContext) -> ChangeReport:
            repository = known if known is not None and known.readable else backups.read_one(
                context, target, cancel=job.cancel, with_sizes=False)
            return backups.etc_changes(context, repository, cancel=job.cancel)

        def done(report: ChangeReport) -> None:
            self._show_changes(report)
            if report.changes:
                self._show_result(f"{len(report.changes)} change(s) in /etc: {report.title}", "WARNING")
            else:
                self._show_result(f"Nothing changed in /etc: {report.title}")

        self.tabs.setCurrentIndex(1)
        self.changes_label.setText("Comparing /etc…")
        self._start("etc", f"Checking /etc of {row.target.server}", run, done, timeout=1800)

    # --- restore ----------------------------------------------------------------------------------------------

    def restore_selected(self, path: str = "") -> None:
        row = self.selected_row()
        if row is not None:
            self.restore_for(row.label, path, self.selected_session())

    def restore_selected_change(self) -> None:
        rows = self.changes_table.selectionModel().selectedRows()
        change = self.changes_proxy.index(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole) if rows else None
        if change is not None:
            self.restore_selected(change.path)

    def restore_for(self, row_label: str, path: str = "", session: Session | None = None) -> RestoreDialog | None:
        row = self._row(row_label)
        if row is None:
            return None
        repository = row.repository
        if repository is None or not repository.readable:
            self.read_repository(row_label, lambda found: self._open_restore(found, path, session)
                                 if found.readable else self._error("Cannot restore", found.problem or ""))
            return None
        return self._open_restore(repository, path, session)

    def _open_restore(self, repository: Repository, path: str, session: Session | None) -> RestoreDialog:
        if self.restore_dialog is not None:
            self.restore_dialog.close()
        destination = self.restore_dialog.destination_edit.text() if self.restore_dialog is not None else ""
        dialog = RestoreDialog(self.state, repository, path=path, session=session, destination=destination,
                               parent=self)
        self.restore_dialog = dialog
        dialog.open()
        return dialog

    # --- remove older sessions --------------------------------------------------------------------------------

    def remove_older(self) -> None:
        row = self.selected_row()
        repository = row.repository if row else None
        if row is None or repository is None:
            return
        if not self.state.allow_change(f"Removing old sessions of {row.label}"):
            return
        try:
            older_than = parse_time(self.older_edit.text())
        except PanelError as error:
            self._show_result(str(error), "WARNING")
            self.older_edit.setFocus()
            return
        context = self.state.context
        target = row.target

        def plan(job: JobContext) -> list[Session]:
            return backups.plan_removal(context, target, older_than, cancel=job.cancel)

        def planned(sessions: list[Session]) -> None:
            if not sessions:
                self._show_result(f"{row.label}: no session is older than {iso_utc(older_than)}; nothing to remove.")
                return
            self._confirm_removal(row.label, repository, older_than, sessions)

        self._start("plan", f"Listing the sessions of {row.label} older than {iso_utc(older_than)}", plan, planned,
                    timeout=300)

    def _confirm_removal(self, row_label: str, repository: Repository, older_than: datetime,
                         plan: list[Session]) -> None:
        dialog = RemovalDialog(repository, older_than, plan, self)
        self.removal_dialog = dialog

        def accepted() -> None:
            if self.state.allow_change(f"Removing old sessions of {row_label}"):
                self._remove(row_label, older_than, plan)

        def closed() -> None:
            if self.removal_dialog is dialog:
                self.removal_dialog = None
            dialog.deleteLater()

        dialog.accepted.connect(accepted)
        dialog.rejected.connect(lambda: self._show_result(f"Nothing was removed from {row_label}."))
        dialog.finished.connect(lambda _: closed())
        dialog.open()

    def _remove(self, row_label: str, older_than: datetime, plan: list[Session]) -> None:
        row = self._row(row_label)
        if row is None:
            return
        context = self.state.context
        target = row.target

        def run(job: JobContext) -> RemovalResult:
            return backups.remove_sessions(context, target, older_than, plan, cancel=job.cancel)

        def done(result: RemovalResult) -> None:
            self._show_result(f"Removed {len(result.removed)} session(s) from {row_label} (written to the audit log).")
            self.read_repository(row_label)

        self._start("remove", f"Removing {len(plan)} old session(s) of {row_label}", run, done, timeout=3600)

    # --- regress ----------------------------------------------------------------------------------------------

    def regress_selected(self) -> None:
        row = self.selected_row()
        if row is not None:
            self.regress_for(row.label)

    def regress_for(self, row_label: str) -> None:
        row = self._row(row_label)
        repository = row.repository if row else None
        if row is None or repository is None:
            return
        if not repository.needs_regress:
            self._show_result(f"{row_label} does not need a regress.")
            return
        if not self.state.allow_change(f"Regressing {row_label}"):
            return
        started = iso_utc(repository.broken_session) if repository.broken_session else "?"
        box = QMessageBox(QMessageBox.Icon.Warning, f"Regress {row_label}?",
                          f"The backup of {row_label} that started {started} broke off. rdiff-backup regress "
                          f"removes what it half wrote in {repository.path} on {repository.where}, so the next "
                          "backup can run. Go ahead?", parent=self)
        box.setTextFormat(Qt.TextFormat.PlainText)
        go = box.addButton("Regress", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        self.confirm_box = box
        context = self.state.context
        target = row.target

        def answered() -> None:
            self.confirm_box = None
            if box.clickedButton() is not go or not self.state.allow_change(f"Regressing {row_label}"):
                return

            def run(job: JobContext) -> None:
                backups.regress_repository(context, target, cancel=job.cancel)

            def done(_: object) -> None:
                self._show_result(f"{row_label} was regressed (written to the audit log).")
                self.read_repository(row_label)

            self._start("regress", f"Regressing {row_label}", run, done, timeout=6 * 3600)

        box.finished.connect(lambda _: answered())
        box.finished.connect(box.deleteLater)
        box.open()

    def _error(self, title: str, text: str) -> None:
        self.error_box = show_error(self, title, text)

    # --- palette ----------------------------------------------------------------------------------------------

    def _go(self, row_label: str, then: Callable[[], object] | None = None) -> None:
        self.state.navigate.emit(self.title, row_label)
        self.focus_item(row_label)
        if then is not None:
            then()

    def _register_actions(self) -> None:
        self.state.remove_actions(ACTION_PREFIX)
        rows = self.model.rows()
        servers: dict[str, RepoTarget] = {}
        for row in rows:
            target = row.target
            # the /etc check wants the server's own repository (live files); else its first one
            if target.server not in servers or (target.spec.via is None and servers[target.server].spec.via):
                servers[target.server] = target
        for server, target in servers.items():
            row_label = f"{server}/{target.spec.name}"
            self.state.add_action(PaletteAction(
                f"Backups: what changed in /etc on {server}", partial(self._go, row_label,
                                                                      partial(self.etc_check_for, row_label)),
                keywords=("backups", "etc", "intrusion", "changed", "files", server), page=self.title,
                key=f"{ACTION_PREFIX}etc:{server}"))
        for row in rows:
            row_label = row.label
            keywords = ("backup", "backups", "rdiff-backup", row.target.server, row.target.spec.name)
            self.state.add_action(PaletteAction(
                f"Show backup {row_label}", partial(self._go, row_label), keywords=keywords, page=self.title,
                key=f"{ACTION_PREFIX}show:{row_label}"))
            self.state.add_action(PaletteAction(
                f"Verify backup {row_label}", partial(self._go, row_label, partial(self.verify, row_label, None)),
                keywords=(*keywords, "verify", "check", "checksum"), page=self.title,
                key=f"{ACTION_PREFIX}verify:{row_label}"))
            self.state.add_action(PaletteAction(
                f"Restore from backup {row_label}…",
                partial(self._go, row_label, partial(self.restore_for, row_label, "", None)),
                keywords=(*keywords, "restore", "recover", "file"), page=self.title,
                key=f"{ACTION_PREFIX}restore:{row_label}"))
            self.state.add_action(PaletteAction(
                f"Remove old sessions of backup {row_label}…",
                partial(self._go, row_label, self._focus_removal), changes_something=True,
                keywords=(*keywords, "remove", "thin", "increments", "older", "prune"), page=self.title,
                key=f"{ACTION_PREFIX}remove:{row_label}"))
            if row.repository is not None and row.repository.needs_regress:
                self.state.add_action(PaletteAction(
                    f"Regress backup {row_label}", partial(self._go, row_label, partial(self.regress_for, row_label)),
                    changes_something=True, keywords=(*keywords, "regress", "broken", "fix"), page=self.title,
                    key=f"{ACTION_PREFIX}regress:{row_label}"))

    def _focus_removal(self) -> None:
        self.tabs.setCurrentIndex(0)
        self.older_edit.setFocus()
        self.older_edit.selectAll()


def details_html(row: RepoRow, repository: Repository | None, live: str = "/") -> str:
    spec = row.target.spec
    where = "this laptop" if row.host == "local" else row.host
    lines = [f"<h3>{html.escape(row.label)} <small>{html.escape(spec.path)} on {html.escape(where)}</small></h3>"]
    if repository is None:
        lines.append("<p>Reading…</p>" if row.reading else "<p>Not read yet (F5 reads every repository).</p>")
        return "".join(lines)
    if repository.problem:
        colour = STATE_COLOURS["CRITICAL"] if not repository.readable else STATE_COLOURS["WARNING"]
        lines.append(f"<p style='color:{colour}'><b>{html.escape(repository.problem)}</b></p>")
    facts = [("Freshness", f"{repository.freshness} — newest {human_age(repository.age_hours)} old, "
              f"max {repository.max_age_hours:g} h")]
    if repository.sessions:
        newest, oldest = repository.newest, repository.oldest
        facts += [("Sessions", f"{len(repository.sessions)}, {iso_utc(oldest) if oldest else '?'} … "
                   f"{iso_utc(newest) if newest else '?'}"),
                  ("Total size", human_size(repository.total_size)),
                  ("Errors in the last session",
                   "?" if repository.last_errors is None else str(repository.last_errors))]
    facts.append(("Regress", "NEEDED: the backup that started "
                  f"{iso_utc(repository.broken_session) if repository.broken_session else '?'} broke off"
                  if repository.needs_regress else "not needed"))
    if repository.cli:
        facts.append(("rdiff-backup", "2.1 or later (API 201)" if repository.cli == "api201" else
                      "2.0 (old command line)"))
    facts.append(("Read", f"{iso_utc(repository.read_at)} on {repository.where}"))
    if spec.via is None:
        facts.append(("Live files", f"{live or '/'} on {row.target.server} (what the /etc check compares)"))
    lines.append("<table cellspacing='4'>" + "".join(
        f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(v)}</td></tr>" for k, v in facts) + "</table>")
    if repository.notes:
        lines.append("<p><b>Notes</b></p><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in repository.notes)
                     + "</ul>")
    if repository.error_lines:
        when = iso_utc(repository.error_log_time) if repository.error_log_time else "?"
        lines.append(f"<p><b>Error log of {html.escape(when)}</b> ({repository.error_lines_total} line(s))</p><pre>"
                     + html.escape("\n".join(repository.error_lines[:50])) + "</pre>")
    return "".join(lines)


__all__ = ["BackupsPage", "RemovalDialog", "details_html", "size_series"]
