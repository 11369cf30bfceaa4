"""Processes: a server's busiest processes by CPU or memory, refreshed live; kill one (confirmed and
audited); open a terminal on the server.

:func:`open_terminal` (also used by the Fleet page) starts the operator's own terminal emulator
with the ``ssh`` command line that :mod:`services.triage.terminal` builds: same host, port, user,
identity and pinned host key as the panel.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from PySide6.QtCore import QProcess, Qt, QTimer
from PySide6.QtGui import QHideEvent, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from panel import paths
from services.errors import Cancelled, PanelError
from services.triage.processes import ProcessInfo, ProcessList, kill_process, list_processes
from services.triage.terminal import TerminalLaunch, prepare_terminal
from views.dialogs.messages import ask_to_confirm
from views.models.processes import CPU, RSS, ProcessModel
from views.server_box import refill_servers
from views.state import PaletteAction, PanelState
from views.tables import row_table
from views.workers import JobContext

LIVE_INTERVAL_MS = 3000


def open_terminal(state: PanelState, server: str) -> None:
    """"Open a terminal here": write the pinned key to the panel's terminal known_hosts (on a worker),
    then start the operator's terminal emulator running ssh to ``server``. Audited."""
    context = state.context
    try:
        spec = context.spec(server)
    except PanelError as error:
        state.message.emit(str(error))
        return

    def prepare(job: JobContext) -> TerminalLaunch:
        endpoint = context.system_endpoint(server)  # reads ~/.ssh/config and the panel's known_hosts
        return prepare_terminal(spec, endpoint, paths.data_dir() / "terminal")

    def launch(terminal: TerminalLaunch) -> None:
        started, pid = QProcess.startDetached(terminal.program, list(terminal.arguments))
        outcome = "ok" if started else "failed"
        name = Path(terminal.program).name
        detail = f"{name} running ssh -p {spec.port} {spec.user}@{spec.host}"
        state.runner.submit("Auditing the terminal", lambda job: context.store.audit("terminal.open", server, outcome,
                                                                                    detail), timeout=10)
        if started:
            state.message.emit(f"Opened a terminal on {server} ({name}, pid {pid}).")
        else:
            state.notify.emit("WARNING", f"Could not open a terminal on {server}",
                              f"{terminal.program} did not start.")

    def failed(error: PanelError) -> None:
        state.message.emit(f"Could not open a terminal on {server}: {error}")

    state.runner.submit(f"Opening a terminal on {server}", prepare, timeout=15, on_success=launch, on_error=failed)


class ProcessesPage(QWidget):
    title = "Processes"

    def __init__(self, state: PanelState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.path_prefix = ""  # folders put first on the servers' PATH for these commands
        self.model = ProcessModel(self)
        self.confirm_box: QMessageBox | None = None
        self._refreshing = False
        self._generation = 0

        self.server_box = QComboBox()
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter by command, user or PID (Ctrl+F)…")
        self.filter_edit.setClearButtonEnabled(True)
        self.live_box = QCheckBox("Live")
        self.live_box.setChecked(True)
        self.live_box.setToolTip(f"Refresh every {LIVE_INTERVAL_MS // 1000} s while this page is shown")
        self.cpu_button = QPushButton("By CPU")
        self.memory_button = QPushButton("By memory")
        self.reload_button = QPushButton("Refresh (F5)")
        self.count_label = QLabel()
        top = QHBoxLayout()
        top.addWidget(self.server_box)
        top.addWidget(self.filter_edit, 1)
        top.addWidget(self.cpu_button)
        top.addWidget(self.memory_button)
        top.addWidget(self.live_box)
        top.addWidget(self.count_label)
        top.addWidget(self.reload_button)

        self.table = row_table(self.model, sort_by=(CPU, Qt.SortOrder.DescendingOrder))

        self.term_button = QPushButton("Terminate (TERM)…")
        self.kill_button = QPushButton("Kill (KILL)…")
        self.terminal_button = QPushButton("Open a terminal here")
        self.message = QLabel()
        self.message.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.term_button)
        buttons.addWidget(self.kill_button)
        buttons.addStretch(1)
        buttons.addWidget(self.terminal_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.message)

        self.live_timer = QTimer(self)
        self.live_timer.setInterval(LIVE_INTERVAL_MS)
        self.live_timer.timeout.connect(self._live_tick)
        self.server_box.currentIndexChanged.connect(lambda _: self._server_changed())
        self.filter_edit.textChanged.connect(self._filter)
        self.reload_button.clicked.connect(self.refresh)
        self.cpu_button.clicked.connect(lambda: self.table.sortByColumn(CPU, Qt.SortOrder.DescendingOrder))
        self.memory_button.clicked.connect(lambda: self.table.sortByColumn(RSS, Qt.SortOrder.DescendingOrder))
        self.term_button.clicked.connect(lambda: self.kill_selected("TERM"))
        self.kill_button.clicked.connect(lambda: self.kill_selected("KILL"))
        self.terminal_button.clicked.connect(lambda: open_terminal(self.state, self.server) if self.server else None)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._update_buttons())
        context = Qt.ShortcutContext.WidgetWithChildrenShortcut
        QShortcut(QKeySequence(Qt.Key.Key_F5), self, self.refresh, context=context)
        QShortcut(QKeySequence("Ctrl+F"), self, lambda: self.filter_edit.setFocus(), context=context)
        QShortcut(QKeySequence(Qt.Key.Key_Delete), self.table, lambda: self.kill_selected("TERM"),
                  context=Qt.ShortcutContext.WidgetShortcut)
        state.read_only_changed.connect(lambda _: self._update_buttons())
        state.inventory_changed.connect(self._inventory_changed)
        self._inventory_changed()

    @property
    def server(self) -> str:
        return str(self.server_box.currentText())

    def _inventory_changed(self) -> None:
        servers = list(self.state.context.inventory.servers)
        refill_servers(self.server_box, servers)
        self.state.remove_actions("processes/")
        for server in servers:
            self.state.add_action(PaletteAction(
                f"Processes on {server}", partial(self.show_server, server, CPU),
                keywords=("top", "ps", "cpu", "load"), page=self.title, key=f"processes/{server}/cpu"))
            self.state.add_action(PaletteAction(
                f"Top processes by memory on {server}", partial(self.show_server, server, RSS),
                keywords=("ram", "rss", "ps", "oom"), page=self.title, key=f"processes/{server}/memory"))
        self.state.add_action(PaletteAction(
            "Terminate the chosen process", lambda: self.kill_selected("TERM"), changes_something=True,
            keywords=("kill", "sigterm", "stop"), shortcut="Delete", page=self.title, key="processes/term"))
        self.state.add_action(PaletteAction(
            "Kill the chosen process (KILL)", lambda: self.kill_selected("KILL"), changes_something=True,
            keywords=("kill -9", "sigkill"), page=self.title, key="processes/kill"))
        self._update_buttons()

    def show_server(self, server: str, sort_column: int = CPU) -> None:
        self.state.navigate.emit(self.title, None)
        self.focus_item(server)
        self.table.sortByColumn(sort_column, Qt.SortOrder.DescendingOrder)

    def focus_item(self, argument: object) -> None:
        if isinstance(argument, str) and argument in self.state.context.inventory.servers:
            if argument != self.server:
                self.server_box.setCurrentText(argument)
            else:
                self.refresh()

    def activate(self) -> None:
        self.refresh()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.live_timer.start()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self.live_timer.stop()

    def _server_changed(self) -> None:
        self._generation += 1
        self.model.set_processes(())
        self.refresh()

    def _live_tick(self) -> None:
        if self.live_box.isChecked() and self.isVisible():
            self.refresh()

    def refresh(self) -> None:
        server = self.server
        if not server or self._refreshing:
            return
        self._refreshing = True
        generation = self._generation
        context = self.state.context
        prefix = self.path_prefix

        def read(job: JobContext) -> ProcessList:
            return list_processes(context.runner(server), server, path_prefix=prefix, cancel=job.cancel)

        def done(listing: ProcessList) -> None:
            if generation != self._generation:
                return
            chosen = self.selected_process()
            self.model.set_processes(listing.processes)
            if chosen is not None and (row := self.model.row_of(chosen.pid)) >= 0:
                self.table.selectRow(row)
            self.count_label.setText(f"{self.model.rowCount()} of {self.model.total}")
            self._update_buttons()

        def failed(error: PanelError) -> None:
            if generation == self._generation:
                self.message.setText(str(error))

        def finished() -> None:
            self._refreshing = False

        self.state.runner.submit(f"Reading the processes of {server}", read, timeout=20, on_success=done,
                                 on_error=failed, on_finished=finished)

    def _filter(self, text: str) -> None:
        chosen = self.selected_process()
        self.model.set_filter(text)
        if chosen is not None and (row := self.model.row_of(chosen.pid)) >= 0:
            self.table.selectRow(row)
        self.count_label.setText(f"{self.model.rowCount()} of {self.model.total}")

    def selected_process(self) -> ProcessInfo | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.process_at(rows[0].row()) if rows else None

    def _update_buttons(self) -> None:
        chosen = self.selected_process() is not None
        for button in (self.term_button, self.kill_button):
            button.setEnabled(chosen and not self.state.read_only)
            button.setToolTip("Read-only mode is on." if self.state.read_only else "")

    def kill_selected(self, signal: str) -> None:
        """Send ``signal`` to the chosen process: refused in read-only mode, confirmed, audited."""
        process = self.selected_process()
        server = self.server
        what = f"sending {signal} to a process on {server or 'a server'}"
        if not self.state.allow_change(what):
            return
        if process is None:
            self.message.setText("Choose a process first.")
            return
        text = (f"Send {signal} to process {process.pid} ({process.command}) on {server}?\n\n{process.args[:300]}\n\n"
                + ("KILL ends it at once, without letting it clean up." if signal == "KILL" else
                   "TERM asks it to end; most programs stop within seconds."))
        self.confirm_box = ask_to_confirm(self, f"{signal} process {process.pid}?", text,
                                          f"Send {signal} to {process.pid}",
                                          lambda: self._run_kill(server, process, signal))

    def _run_kill(self, server: str, process: ProcessInfo, signal: str) -> None:
        if not self.state.allow_change(f"sending {signal} to process {process.pid} on {server}"):
            return
        context = self.state.context
        store = context.store
        prefix = self.path_prefix
        target = f"{server}/pid:{process.pid}"
        detail = f"{signal} to {process.command} (user {process.user})"  # never its arguments: they may hold secrets

        def run(job: JobContext) -> str:
            try:
                sent = kill_process(context.runner(server), server, process, signal=signal, path_prefix=prefix,
                                    cancel=job.cancel)
            except Cancelled:
                store.audit("process.kill", target, "cancelled", detail)
                raise
            except PanelError as error:
                store.audit("process.kill", target, "failed", f"{detail}: {str(error)[:300]}")
                raise
            store.audit("process.kill", target, "ok", detail)
            return sent

        def done(sent: str) -> None:
            self.message.setText(f"{server}: {sent} to {process.pid} ({process.command}).")
            self.refresh()

        self.state.runner.submit(f"Sending {signal} to {process.pid} on {server}", run, timeout=30,
                                 on_success=done, on_error=lambda error: self.message.setText(str(error)))
