"""Services: a server's systemd units and their state, filtered; the chosen unit's status and its
last log lines side by side; restart, stop or start one, confirmed first and audited.

Every unit a server has also becomes palette actions ("Restart nginx on app2"), so the operator
can act on it from Ctrl+K without opening this page first.
"""

from __future__ import annotations

from functools import partial

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from services.errors import Cancelled, PanelError
from services.probe import ServerState, ServerStatus
from services.triage.units import UnitList, UnitStatus, control_unit, list_units, unit_status
from views.dialogs.messages import ask_to_confirm
from views.models.units import STATE_FILTERS, UnitsModel
from views.server_box import refill_servers
from views.state import PaletteAction, PanelState
from views.style import monospace
from views.tables import row_table, table_over
from views.workers import JobContext

VERB_TEXT = {"restart": ("Restart", "Restarted", "Restarting"), "stop": ("Stop", "Stopped", "Stopping"),
             "start": ("Start", "Started", "Starting"), "reload": ("Reload", "Reloaded", "Reloading")}


class ServicesPage(QWidget):
    title = "Services"

    def __init__(self, state: PanelState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.path_prefix = ""  # folders put first on the servers' PATH for these commands
        self.model = UnitsModel(self)
        self.units: dict[str, UnitList] = {}
        self.confirm_box: QMessageBox | None = None
        self._listing: set[str] = set()
        self._listed_once: set[str] = set()
        self._status_generation = 0
        self._wanted_unit: str | None = None

        self.server_box = QComboBox()
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter units (Ctrl+F)…")
        self.filter_edit.setClearButtonEnabled(True)
        self.state_box = QComboBox()
        for label, value in STATE_FILTERS:
            self.state_box.addItem(label, value)
        self.reload_button = QPushButton("Reload (F5)")
        self.count_label = QLabel()
        top = QHBoxLayout()
        top.addWidget(self.server_box)
        top.addWidget(self.filter_edit, 1)
        top.addWidget(self.state_box)
        top.addWidget(self.count_label)
        top.addWidget(self.reload_button)

        self.table = row_table(self.model)

        self.status_text = QPlainTextEdit()
        self.status_text.setReadOnly(True)
        self.status_text.setFont(monospace())
        self.status_text.setPlaceholderText("The chosen unit's systemctl status")
        self.status_text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.log_text = QPlainTextEdit()
        self.log_text.setReadOnly(True)
        self.log_text.setFont(monospace())
        self.log_text.setPlaceholderText("Its last log lines")
        self.log_text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        side_by_side = QSplitter(Qt.Orientation.Horizontal)
        side_by_side.addWidget(self.status_text)
        side_by_side.addWidget(self.log_text)

        self.restart_button = QPushButton("Restart…")
        self.stop_button = QPushButton("Stop…")
        self.start_button = QPushButton("Start…")
        self.logs_button = QPushButton("All its logs")
        buttons = QHBoxLayout()
        buttons.addWidget(self.restart_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.start_button)
        buttons.addStretch(1)
        buttons.addWidget(self.logs_button)
        splitter = table_over(self.table, buttons, side_by_side)
        self.message = QLabel()
        self.message.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.message)

        self._selection_debounce = QTimer(self)
        self._selection_debounce.setSingleShot(True)
        self._selection_debounce.setInterval(150)
        self._selection_debounce.timeout.connect(self.show_status)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._selection_debounce.start())
        self._filter_debounce = QTimer(self)
        self._filter_debounce.setSingleShot(True)
        self._filter_debounce.setInterval(100)
        self._filter_debounce.timeout.connect(self._apply_filter)

        self.reload_button.clicked.connect(self.reload)
        self.server_box.currentIndexChanged.connect(lambda _: self._server_changed())
        self.filter_edit.textChanged.connect(lambda _: self._filter_debounce.start())
        self.state_box.currentIndexChanged.connect(lambda _: self._apply_filter())
        self.restart_button.clicked.connect(lambda: self._act_on_selected("restart"))
        self.stop_button.clicked.connect(lambda: self._act_on_selected("stop"))
        self.start_button.clicked.connect(lambda: self._act_on_selected("start"))
        self.logs_button.clicked.connect(self._open_logs)
        context = Qt.ShortcutContext.WidgetWithChildrenShortcut
        QShortcut(QKeySequence(Qt.Key.Key_F5), self, self.reload, context=context)
        QShortcut(QKeySequence("Ctrl+F"), self, lambda: self.filter_edit.setFocus(), context=context)
        state.read_only_changed.connect(lambda _: self._update_buttons())
        state.status_changed.connect(self._status_changed)
        state.inventory_changed.connect(self._inventory_changed)
        self._inventory_changed()

    # --- servers ------------------------------------------------------------------------------------------

    @property
    def server(self) -> str:
        return str(self.server_box.currentText())

    def _inventory_changed(self) -> None:
        servers = list(self.state.context.inventory.servers)
        refill_servers(self.server_box, servers)
        for gone in set(self.units) - set(servers):
            del self.units[gone]
            self.state.remove_actions(f"units/{gone}/")
        self.state.remove_actions("services/")
        for server in servers:
            self.state.add_action(PaletteAction(
                f"Services on {server}", partial(self.show_server, server),
                keywords=("systemd", "units", "systemctl", "daemons"), page=self.title, key=f"services/{server}"))
        self._update_buttons()

    def _status_changed(self, status: ServerStatus) -> None:
        """Once a server is up, read its units in the background, so the palette knows them."""
        if status.state is ServerState.UP and status.server not in self._listed_once:
            self._listed_once.add(status.server)
            self.list_server(status.server, quiet=True)

    def show_server(self, server: str, unit: str | None = None) -> None:
        self.state.navigate.emit(self.title, None)
        self.focus_item(server if unit is None else (server, unit))

    def focus_item(self, argument: object) -> None:
        server, unit = argument if isinstance(argument, tuple) else (argument, None)
        if not isinstance(server, str) or server not in self.state.context.inventory.servers:
            return
        self._wanted_unit = unit if isinstance(unit, str) else None
        if self.server != server:
            self.server_box.setCurrentText(server)  # lists it
        else:
            self._show_units()
            if server not in self.units:
                self.reload()

    def activate(self) -> None:
        if self.server and self.server not in self.units and self.server not in self._listing:
            self.reload()

    def _server_changed(self) -> None:
        self.status_text.clear()
        self.log_text.clear()
        self._show_units()
        self.reload()

    # --- listing -------------------------------------------------------------------------------------------

    def reload(self) -> None:
        if self.server:
            self.list_server(self.server)

    def list_server(self, server: str, *, quiet: bool = False) -> None:
        if server in self._listing:
            return
        self._listing.add(server)
        context = self.state.context
        prefix = self.path_prefix
        if not quiet:
            self.message.setText(f"Reading the units of {server}…")

        def read(job: JobContext) -> UnitList:
            return list_units(context.runner(server), server, path_prefix=prefix, cancel=job.cancel)

        def failed(error: PanelError) -> None:
            if not quiet or server == self.server:
                self.message.setText(str(error))

        self.state.runner.submit(f"Reading the units of {server}", read, timeout=40,
                                 on_success=partial(self._listed, quiet=quiet), on_error=failed,
                                 on_finished=lambda: self._listing.discard(server))

    def _listed(self, units: UnitList, *, quiet: bool = False) -> None:
        self.units[units.server] = units
        self._register_unit_actions(units)
        if units.server == self.server:
            self._show_units()
            if not quiet:
                self.message.setText(f"{units.server}: {len(units.units)} units" + (
                    " (read from an older systemctl's table)" if units.format == "plain" else ""))

    def _show_units(self) -> None:
        listed = self.units.get(self.server)
        selected = self.selected_unit()
        self.model.set_units(listed.units if listed else ())
        wanted = self._wanted_unit or selected
        self._wanted_unit = None
        row = self.model.row_of(wanted) if wanted else -1
        if row >= 0:
            self.table.selectRow(row)
            self.table.scrollTo(self.model.index(row, 0))
        elif self.model.rowCount():
            self.table.selectRow(0)
        self._update_count()
        self._update_buttons()

    def _apply_filter(self) -> None:
        self.model.set_filter(self.filter_edit.text(), str(self.state_box.currentData() or ""))
        if self.model.rowCount():
            self.table.selectRow(0)
        self._update_count()

    def _update_count(self) -> None:
        self.count_label.setText(f"{self.model.rowCount()} of {self.model.total}")

    def _register_unit_actions(self, units: UnitList) -> None:
        server = units.server
        self.state.remove_actions(f"units/{server}/")
        for unit in units.units:
            if unit.kind != "service" or unit.load not in ("loaded", ""):
                continue
            name = unit.short_name
            words = (unit.name, "systemctl", "service", "unit", unit.description)
            self.state.add_action(PaletteAction(
                f"Status of {name} on {server}", partial(self.show_server, server, unit.name),
                keywords=(*words, "status", "logs"), page=self.title, key=f"units/{server}/{unit.name}/status"))
            verbs = ["restart", "stop"] if unit.active == "active" else ["start", "restart"]
            for verb in verbs:
                self.state.add_action(PaletteAction(
                    f"{VERB_TEXT[verb][0]} {name} on {server}", partial(self.control, server, unit.name, verb),
                    changes_something=True, keywords=words, page=self.title,
                    key=f"units/{server}/{unit.name}/{verb}"))

    # --- the chosen unit -------------------------------------------------------------------------------------

    def selected_unit(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        unit = self.model.unit_at(rows[0].row())
        return unit.name if unit else None

    def _update_buttons(self) -> None:
        has_unit = self.selected_unit() is not None
        for button in (self.restart_button, self.stop_button, self.start_button):
            button.setEnabled(has_unit and not self.state.read_only)
            button.setToolTip("Read-only mode is on." if self.state.read_only else "")
        self.logs_button.setEnabled(has_unit)

    def show_status(self) -> None:
        self._update_buttons()
        unit = self.selected_unit()
        server = self.server
        if unit is None or not server:
            return
        self._status_generation += 1
        generation = self._status_generation
        context = self.state.context
        prefix = self.path_prefix

        def read(job: JobContext) -> UnitStatus:
            return unit_status(context.runner(server), server, unit, path_prefix=prefix, cancel=job.cancel)

        def done(status: UnitStatus) -> None:
            if generation != self._status_generation:
                return
            self.status_text.setPlainText(status.status_text)
            if status.log:
                self.log_text.setPlainText("\n".join(
                    f"{e.at.astimezone():%m-%d %H:%M:%S} {e.priority_name:7} {e.message}" for e in status.log))
                self.log_text.verticalScrollBar().setValue(self.log_text.verticalScrollBar().maximum())
            else:
                self.log_text.setPlainText(status.log_note)

        def failed(error: PanelError) -> None:
            if generation == self._status_generation:
                self.status_text.setPlainText(str(error))

        self.state.runner.submit(f"Reading the status of {unit} on {server}", read, timeout=30, on_success=done,
                                 on_error=failed)

    def _open_logs(self) -> None:
        unit = self.selected_unit()
        if unit:
            self.state.navigate.emit("Logs", (self.server, unit))

    # --- acting ----------------------------------------------------------------------------------------------

    def _act_on_selected(self, verb: str) -> None:
        unit = self.selected_unit()
        if unit:
            self.control(self.server, unit, verb)

    def control(self, server: str, unit: str, verb: str) -> None:
        """Restart, stop or start ``unit`` on ``server``: refused in read-only mode, confirmed, then audited."""
        label = VERB_TEXT[verb][0]
        what = f"{label} {unit} on {server}"
        if not self.state.allow_change(what):
            return
        if self.server != server or self.selected_unit() != unit:
            self.show_server(server, unit)
        destructive = verb == "stop"
        text = (f"{label} {unit} on {server}?\n\n"
                + ("It stays stopped until someone starts it again." if destructive else
                   "It is unavailable for as long as it takes to start again."))
        self.confirm_box = ask_to_confirm(self, f"{label} {unit}?", text, f"{label} {unit}",
                                          lambda: self._run_control(server, unit, verb), destructive=destructive)

    def _run_control(self, server: str, unit: str, verb: str) -> None:
        label, done_label, doing = VERB_TEXT[verb]
        if not self.state.allow_change(f"{label} {unit} on {server}"):
            return
        context = self.state.context
        store = context.store
        prefix = self.path_prefix
        action = f"unit.{verb}"
        target = f"{server}/{unit}"

        def run(job: JobContext) -> str:
            try:
                after = control_unit(context.runner(server), server, unit, verb, path_prefix=prefix, cancel=job.cancel)
            except Cancelled:
                store.audit(action, target, "cancelled")
                raise
            except PanelError as error:
                store.audit(action, target, "failed", str(error)[:500])
                raise
            store.audit(action, target, "ok", f"now {after}")
            return after

        def done(after: str) -> None:
            self.message.setText(f"{done_label} {unit} on {server}: now {after}.")
            self.state.message.emit(f"{done_label} {unit} on {server}: now {after}.")
            self.list_server(server, quiet=True)
            if server == self.server:
                self.show_status()

        def failed(error: PanelError) -> None:
            self.message.setText(str(error))
            self.state.notify.emit("WARNING", f"{label} {unit} on {server} failed", str(error))

        self.message.setText(f"{doing} {unit} on {server}…")
        self.state.runner.submit(f"{label} {unit} on {server}", run, timeout=120, queue=f"units/{server}",
                                 on_success=done, on_error=failed)
