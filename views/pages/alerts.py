"""Alerts: the triage entry point. What is wrong, the worst first, with the next step one click away.

The page also owns the background poll: every interval it runs all the checks (on a worker), folds
the results into the alert history, updates the tray (``state.alerts_summary``) and raises a
notification for each new CRITICAL alert (``state.notify``).
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QItemSelection, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSpinBox,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from panel.alerts import RESOLVED, AcceptResult, Alert, AlertBook, CheckRun, LookBack, run_checks
from services.checks import ids
from services.checks.model import PAGE_ALERTS, Severity
from services.errors import PanelError
from views.models.alerts import SEVERITY, AlertsFilter, AlertsModel, when
from views.state import PaletteAction, PanelState
from views.tables import row_table, table_over
from views.workers import JobContext

SILENCE_CHOICES = (("1 hour", dt.timedelta(hours=1)), ("4 hours", dt.timedelta(hours=4)),
                   ("1 day", dt.timedelta(days=1)), ("1 week", dt.timedelta(days=7)))
SEVERITY_FILTERS = (
    ("All severities", {Severity.CRITICAL, Severity.WARNING, Severity.UNKNOWN}),
    ("CRITICAL", {Severity.CRITICAL}),
    ("CRITICAL and WARNING", {Severity.CRITICAL, Severity.WARNING}),
    ("WARNING", {Severity.WARNING}),
    ("UNKNOWN", {Severity.UNKNOWN}),
)
ACTION_PREFIX = "alerts:"


@dataclass(frozen=True)
class Snapshot:
    """What the page shows, read from the store on a worker."""

    alerts: list[Alert]
    worst: Severity
    count: int
    last_run: dt.datetime | None


def _snapshot(book: AlertBook) -> Snapshot:
    alerts = book.alerts(include_resolved=True, limit=2000)
    worst, count = book.summary()
    return Snapshot(alerts, worst, count, book.last_run())


class AlertsPage(QWidget):
    title = "Alerts"
    sweep_finished = Signal(object)  # the CheckRun, after the page updated (tests and other pages listen)
    snapshot_loaded = Signal()

    def __init__(self, state: PanelState, parent: QWidget | None = None, *, autostart: bool = True) -> None:
        super().__init__(parent)
        self.state = state
        self.book = AlertBook(state.context.store)
        self.running = False
        self.last_run: CheckRun | None = None
        self.interval_seconds = 300
        self._looked: LookBack | None = None

        self.model = AlertsModel(self)
        self.proxy = AlertsFilter(self)
        self.proxy.setSourceModel(self.model)
        self.table = row_table(self.proxy, sort_by=(SEVERITY, Qt.SortOrder.DescendingOrder))
        self.table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.table.doubleClicked.connect(lambda _: self.run_action())

        # toolbar: run, interval, last run
        self.run_button = QPushButton("Run all checks (F5)")
        self.run_button.clicked.connect(lambda: self.run_now())
        self.interval_box = QSpinBox()
        self.interval_box.setRange(1, 1440)
        self.interval_box.setSuffix(" min")
        self.interval_box.setPrefix("every ")
        self.interval_box.setToolTip("How often the panel runs every check in the background.")
        self.interval_box.setValue(5)
        self.interval_box.valueChanged.connect(self._interval_changed)
        self.run_label = QLabel("Not run yet.")
        toolbar = QHBoxLayout()
        toolbar.addWidget(self.run_button)
        toolbar.addWidget(self.interval_box)
        toolbar.addWidget(self.run_label, 1)

        # filters
        self.search = QLineEdit()
        self.search.setPlaceholderText("Filter: server, check, file, port… (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(lambda text: self._refilter(text=text))
        self.severity_box = QComboBox()
        for label, _ in SEVERITY_FILTERS:
            self.severity_box.addItem(label)
        self.severity_box.currentIndexChanged.connect(
            lambda index: self._refilter(severities=SEVERITY_FILTERS[index][1]))
        self.silenced_box = QCheckBox("Silenced")
        self.silenced_box.setChecked(True)
        self.silenced_box.toggled.connect(lambda on: self._refilter(show_silenced=on))
        self.resolved_box = QCheckBox("Resolved (history)")
        self.resolved_box.toggled.connect(lambda on: self._refilter(show_resolved=on))
        filters = QHBoxLayout()
        filters.addWidget(self.search, 1)
        filters.addWidget(self.severity_box)
        filters.addWidget(self.silenced_box)
        filters.addWidget(self.resolved_box)

        self.since_label = QLabel()
        self.since_label.setWordWrap(True)
        self.seen_button = QPushButton("Mark all as seen")
        self.seen_button.clicked.connect(self.mark_seen)
        since_row = QHBoxLayout()
        since_row.addWidget(self.since_label, 1)
        since_row.addWidget(self.seen_button)

        # details and the next steps
        self.details = QTextBrowser()
        self.details.setOpenLinks(False)
        self.action_button = QPushButton()
        self.action_button.clicked.connect(self.run_action)
        self.accept_button = QPushButton("Accept these changes")
        self.accept_button.setToolTip("Make the files as they are now the accepted baseline (written to the audit "
                                      "log).")
        self.accept_button.clicked.connect(self._accept_selected)
        self.ack_button = QPushButton("Acknowledge")
        self.ack_button.setShortcut(QKeySequence("Ctrl+Shift+A"))
        self.ack_button.clicked.connect(self.acknowledge_selected)
        self.silence_button = QToolButton()
        self.silence_button.setText("Silence")
        self.silence_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.silence_button)
        self.silence_actions: list[QAction] = []
        for label, span in SILENCE_CHOICES:
            action = menu.addAction(f"for {label}")
            action.triggered.connect(lambda _=False, span=span: self.silence_selected(span))
            self.silence_actions.append(action)
        self.silence_button.setMenu(menu)
        self.unsilence_button = QPushButton("Unsilence")
        self.unsilence_button.clicked.connect(self.unsilence_selected)
        buttons = QHBoxLayout()
        buttons.addWidget(self.action_button)
        buttons.addWidget(self.accept_button)
        buttons.addStretch(1)
        buttons.addWidget(self.ack_button)
        buttons.addWidget(self.silence_button)
        buttons.addWidget(self.unsilence_button)
        splitter = table_over(self.table, self.details, buttons)
        layout = QVBoxLayout(self)
        layout.addLayout(toolbar)
        layout.addLayout(filters)
        layout.addLayout(since_row)
        layout.addWidget(splitter)

        QShortcut(QKeySequence(Qt.Key.Key_F5), self, lambda: self.run_now(),
                  context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        QShortcut(QKeySequence.StandardKey.Find, self, self.search.setFocus,
                  context=Qt.ShortcutContext.WidgetWithChildrenShortcut)

        self.timer = QTimer(self)
        self.timer.timeout.connect(lambda: self.run_now())
        self._show_details(None)
        state.inventory_changed.connect(self._register_actions)
        state.read_only_changed.connect(lambda _: self._show_details(self.selected_alert()))
        self._register_actions()
        self._load_settings(autostart)

    # --- the background poll ------------------------------------------------------------------------

    def _load_settings(self, autostart: bool) -> None:
        book = self.book

        def load(job: JobContext) -> tuple[int, Snapshot]:
            return book.interval_seconds(), _snapshot(book)

        def loaded(result: tuple[int, Snapshot]) -> None:
            seconds, snapshot = result
            self.interval_seconds = seconds
            self.interval_box.blockSignals(True)
            self.interval_box.setValue(max(1, seconds // 60))
            self.interval_box.blockSignals(False)
            self._apply_snapshot(snapshot)
            if autostart:
                self.timer.start(seconds * 1000)
                QTimer.singleShot(1500, self, lambda: self.run_now())

        self.state.runner.submit("Loading the alerts", load, timeout=20, on_success=loaded,
                                 on_error=lambda error: self.state.message.emit(f"Alerts: {error}"))

    def start(self, seconds: int | None = None) -> None:
        """Poll every ``seconds`` (default: the stored interval)."""
        self.timer.start((seconds or self.interval_seconds) * 1000)

    def stop(self) -> None:
        self.timer.stop()

    def _interval_changed(self, minutes: int) -> None:
        self.interval_seconds = minutes * 60
        if self.timer.isActive():
            self.timer.start(self.interval_seconds * 1000)
        book = self.book
        self.state.runner.submit("Saving the check interval",
                                 lambda job: book.set_interval_seconds(minutes * 60), timeout=10)

    def run_now(self, servers: list[str] | None = None) -> None:
        """Run every check once, on a worker. A run already under way is not doubled."""
        if self.running:
            return
        self.running = True
        self.run_button.setEnabled(False)
        self.run_label.setText("Running every check…")
        context = self.state.context
        book = self.book
        timeout = 60 + max((s.checks.check_timeout_seconds for s in context.inventory.servers.values()), default=60)

        def sweep(job: JobContext) -> tuple[CheckRun, Snapshot]:
            run = run_checks(context, servers=servers, book=book, cancel=job.cancel)
            return run, _snapshot(book)

        self.state.runner.submit("Running all checks", sweep, timeout=timeout, on_success=self._swept,
                                 on_error=self._sweep_failed, on_finished=self._sweep_done)

    def _sweep_done(self) -> None:
        self.running = False
        self.run_button.setEnabled(True)

    def _sweep_failed(self, error: PanelError) -> None:
        self._sweep_done()
        self.run_label.setText(f"The checks failed: {error}")
        self.state.message.emit(f"The checks failed: {error}")

    def _swept(self, result: tuple[CheckRun, Snapshot]) -> None:
        run, snapshot = result
        self._sweep_done()
        self.last_run = run
        for outcome in run.sweep.servers.values():
            if outcome.status is not None:
                self.state.statuses[outcome.server] = outcome.status
                self.state.status_changed.emit(outcome.status)
        self._apply_snapshot(snapshot)
        notices = run.recorded.needs_notice()
        if len(notices) > 3:
            servers = sorted({a.server or "business" for a in notices})
            self.state.notify.emit("CRITICAL", f"{len(notices)} new critical alerts",
                                   f"On {', '.join(servers)}. Open the Alerts page.")
        else:
            for alert in notices:
                self.state.notify.emit("CRITICAL", f"{alert.server or 'Business'}: {alert.check}", alert.summary)
        self.sweep_finished.emit(run)

    def _apply_snapshot(self, snapshot: Snapshot) -> None:
        selected = self.selected_alert()
        self.model.set_alerts(snapshot.alerts)
        self.state.alerts_summary.emit(str(snapshot.worst), snapshot.count)
        if snapshot.last_run is not None:
            run = self.last_run
            extra = f" in {run.sweep.elapsed:.1f} s" if run is not None else ""
            self.run_label.setText(f"Last run {when(snapshot.last_run)}{extra}: {snapshot.count} open alert(s), "
                                   f"worst {snapshot.worst}.")
        if selected is not None:
            self.select_alert(selected.id)
        elif self.proxy.rowCount() and not self.table.selectionModel().hasSelection():
            self.table.selectRow(0)
        self._show_details(self.selected_alert())
        self.snapshot_loaded.emit()

    def reload(self) -> None:
        book = self.book
        self.state.runner.submit("Loading the alerts", lambda job: _snapshot(book), timeout=20,
                                 on_success=self._apply_snapshot,
                                 on_error=lambda error: self.state.message.emit(f"Alerts: {error}"))

    # --- what changed since the operator last looked ---------------------------------------------------

    def activate(self) -> None:
        book = self.book

        def look(job: JobContext) -> LookBack:
            since = book.last_looked()
            back = book.changes_since(since)
            book.mark_looked()
            return back

        self.state.runner.submit("Reading what changed", look, timeout=20, on_success=self._looked_back)

    def _looked_back(self, back: LookBack) -> None:
        self._looked = back
        self.model.set_since(back.since)
        self.since_label.setText(back.text())

    def mark_seen(self) -> None:
        self.model.set_since(dt.datetime.now(dt.UTC))
        self.since_label.setText("All marked as seen.")
        book = self.book
        self.state.runner.submit("Marking alerts as seen", lambda job: book.mark_looked(), timeout=10)

    # --- selection and details ---------------------------------------------------------------------------

    def selected_alert(self) -> Alert | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        source = self.proxy.mapToSource(rows[0])
        return self.model.alert_at(source.row())

    def select_alert(self, alert_id: int) -> bool:
        row = self.model.row_of(alert_id)
        if row < 0:
            return False
        index = self.proxy.mapFromSource(self.model.index(row, 0))
        if not index.isValid():
            return False
        self.table.selectRow(index.row())
        self.table.scrollTo(index)
        return True

    def focus_item(self, argument: object) -> None:
        """Show one alert (an id) or the alerts of one server (a name)."""
        if isinstance(argument, int):
            self.select_alert(argument)
            return
        if isinstance(argument, str):
            self.search.setText(argument)
            if self.proxy.rowCount():
                self.table.selectRow(0)

    def _selection_changed(self, selected: QItemSelection, _: QItemSelection) -> None:
        self._show_details(self.selected_alert())

    def _refilter(self, **changes: Any) -> None:
        self.proxy.set_filter(**changes)
        if not self.table.selectionModel().hasSelection() and self.proxy.rowCount():
            self.table.selectRow(0)
        self._show_details(self.selected_alert())

    def _show_details(self, alert: Alert | None) -> None:
        for widget in (self.ack_button, self.silence_button, self.unsilence_button, self.action_button,
                       self.accept_button):
            widget.setVisible(False)
        if alert is None:
            self.details.setHtml("<p>No alert selected. Run the checks (F5), or widen the filters.</p>"
                                 if not self.model.rowCount() or not self.proxy.rowCount() else "")
            return
        open_ = alert.is_open
        self.details.setHtml(details_html(alert, []))
        self._load_events(alert)
        self.ack_button.setVisible(open_ and alert.status == "new")
        self.silence_button.setVisible(open_)
        self.unsilence_button.setVisible(alert.silenced())
        accept = alert.check == ids.FILES and open_ and alert.severity is Severity.WARNING
        self.accept_button.setVisible(accept)
        self.accept_button.setToolTip("Read-only mode is on: turn it off to accept." if self.state.read_only else
                                      "Make the files as they are now the accepted baseline (written to the audit "
                                      "log).")
        self.accept_button.setText(f"Accept these changes on {alert.server}")
        if alert.action is not None and alert.action.page != PAGE_ALERTS:
            self.action_button.setText(f"{alert.action.title} →")
            self.action_button.setVisible(True)

    def _load_events(self, alert: Alert) -> None:
        book = self.book

        def shown(events: list[tuple[dt.datetime, str, str]]) -> None:
            current = self.selected_alert()
            if current is not None and current.id == alert.id:
                self.details.setHtml(details_html(current, events))

        self.state.runner.submit("Reading the alert's history", lambda job: book.events(alert.id), timeout=10,
                                 on_success=shown)

    # --- the operator's steps ---------------------------------------------------------------------------

    def run_action(self) -> None:
        alert = self.selected_alert()
        if alert is None or alert.action is None:
            return
        if alert.action.page == PAGE_ALERTS:
            if alert.check == ids.FILES:
                self._accept_selected()
            return
        self.state.navigate.emit(alert.action.page, alert.action.argument or alert.server or None)

    def _book_step(self, title: str, step: Any) -> None:
        book = self.book

        def work(job: JobContext) -> Snapshot:
            step(book)
            return _snapshot(book)

        self.state.runner.submit(title, work, timeout=20, on_success=self._apply_snapshot,
                                 on_error=lambda error: self.state.message.emit(f"{title}: {error}"))

    def acknowledge_selected(self) -> None:
        alert = self.selected_alert()
        if alert is not None and alert.is_open:
            self._book_step(f"Acknowledging {alert.check}", lambda book: book.acknowledge(alert.id))

    def silence_selected(self, span: dt.timedelta) -> None:
        alert = self.selected_alert()
        if alert is not None and alert.is_open:
            until = dt.datetime.now(dt.UTC) + span
            self._book_step(f"Silencing {alert.check}", lambda book: book.silence(alert.id, until))

    def unsilence_selected(self) -> None:
        alert = self.selected_alert()
        if alert is not None:
            self._book_step(f"Unsilencing {alert.check}", lambda book: book.unsilence(alert.id))

    def _accept_selected(self) -> None:
        alert = self.selected_alert()
        if alert is not None and alert.check == ids.FILES:
            self.accept_changes(alert.server, reviewed=alert.evidence)

    def accept_changes(self, server: str, *, reviewed: tuple[str, ...] | None = None) -> None:
        """Accept the file changes of ``server`` as its new baseline (audited). With ``reviewed`` (the lines
        the operator saw), changes that arrived since are refused, to be reviewed first."""
        if not self.state.allow_change(f"accepting the file changes on {server}"):
            return
        book = self.book

        def accept(job: JobContext) -> tuple[AcceptResult, Snapshot]:
            pending = book.pending(server)
            if pending is None:
                raise PanelError(f"There are no file changes waiting for acceptance on {server}.")
            if reviewed is not None:
                seen = {line for line in reviewed if line.startswith(("added", "removed", "changed"))}
                if not set(pending.lines[:200]) <= seen:
                    raise PanelError(f"New changes arrived on {server} since this list was shown; review them "
                                     "again before accepting.")
            result = book.accept(server, scan_id=pending.scan_id)
            return result, _snapshot(book)

        def accepted(result: tuple[AcceptResult, Snapshot]) -> None:
            outcome, snapshot = result
            self.state.message.emit(f"Accepted {outcome.accepted} change(s) on {server} as the new baseline.")
            self._apply_snapshot(snapshot)

        self.state.runner.submit(f"Accepting the file changes on {server}", accept, timeout=20, queue=None,
                                 on_success=accepted,
                                 on_error=lambda error: self.state.message.emit(f"Not accepted: {error}"))

    # --- the command palette ------------------------------------------------------------------------------

    def _accept_action(self, server: str) -> Callable[[], None]:
        return lambda: self.accept_changes(server)

    def _register_actions(self) -> None:
        self.state.remove_actions(ACTION_PREFIX)
        self.state.add_action(PaletteAction("Run all checks", lambda: self.run_now(),
                                            keywords=("alerts", "check", "sweep"), shortcut="F5", page=self.title,
                                            key=f"{ACTION_PREFIX}run"))
        self.state.add_action(PaletteAction("Show alerts", lambda: self.state.navigate.emit(self.title, None),
                                            keywords=("alerts", "triage"), page=self.title,
                                            key=f"{ACTION_PREFIX}show"))
        for name, spec in self.state.context.inventory.servers.items():
            if not spec.checks.watch_paths:
                continue
            self.state.add_action(PaletteAction(
                f"Accept file changes on {name}", self._accept_action(name),
                changes_something=True, keywords=("baseline", "aide", "files", "accept", name), page=self.title,
                key=f"{ACTION_PREFIX}accept:{name}"))


def details_html(alert: Alert, events: list[tuple[dt.datetime, str, str]]) -> str:
    colour = {"CRITICAL": "#d0342c", "WARNING": "#d98e04", "UNKNOWN": "#8e44ad"}.get(str(alert.severity), "inherit")
    where = html.escape(alert.server or "the business")
    lines = [f"<h3><span style='color:{colour}'>{html.escape(str(alert.severity))}</span> "
             f"{html.escape(alert.check)} <small>on {where}</small></h3>",
             f"<p>{html.escape(alert.summary)}</p>"]
    status = alert.display_status
    if alert.silenced():
        assert alert.silenced_until is not None
        status += f" until {when(alert.silenced_until)}"
    if alert.status == RESOLVED and alert.resolved_at is not None:
        status += f" {when(alert.resolved_at)}" + (f" ({alert.resolution})" if alert.resolution else "")
    lines.append(f"<p><b>Status:</b> {html.escape(status)} · <b>first seen</b> {when(alert.first_seen)} · "
                 f"<b>last seen</b> {when(alert.last_seen)} · seen {alert.occurrences} time(s)</p>")
    if alert.evidence:
        lines.append("<p><b>Evidence</b></p><pre>" + html.escape("\n".join(alert.evidence)) + "</pre>")
    if alert.action is not None:
        lines.append(f"<p><b>Next step:</b> {html.escape(alert.action.title)}</p>")
    for at, kind, detail in events:
        lines.append(f"<p><small>{when(at)} {html.escape(kind)}: {html.escape(detail)}</small></p>")
    return "".join(lines)

