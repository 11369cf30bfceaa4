"""Fleet: every server with a coloured state, uptime, load and fullest disk; details below."""

from __future__ import annotations

import html
from functools import partial

from PySide6.QtCore import QItemSelection, Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from services.errors import PanelError
from services.probe import ServerState, ServerStatus
from views.dialogs.trust import TrustDialog
from views.models.fleet import FleetModel, format_uptime
from views.pages.processes import open_terminal
from views.state import PaletteAction, PanelState
from views.tables import row_table, table_over
from views.workers import JobContext


class FleetPage(QWidget):
    title = "Fleet"

    def __init__(self, state: PanelState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.model = FleetModel(self)
        self.table = row_table(self.model)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)

        self.refresh_button = QPushButton("Refresh all (F5)")
        self.refresh_button.clicked.connect(state.refresh_all)
        self.summary = QLabel()
        self.summary.setObjectName("summary")
        toolbar = QHBoxLayout()
        toolbar.addWidget(self.summary, 1)
        toolbar.addWidget(self.refresh_button)

        self.details = QTextBrowser()
        self.details.setOpenLinks(False)
        self.trust_button = QPushButton("Check and trust this key…")
        self.trust_button.hide()
        self.trust_button.clicked.connect(self._trust_selected)
        self.refresh_one_button = QPushButton("Refresh this server")
        self.refresh_one_button.clicked.connect(self._refresh_selected)
        self.terminal_button = QPushButton("Open a terminal here")
        self.terminal_button.clicked.connect(lambda: open_terminal(state, self.selected_server() or ""))
        detail_buttons = QHBoxLayout()
        detail_buttons.addWidget(self.trust_button)
        detail_buttons.addStretch(1)
        detail_buttons.addWidget(self.terminal_button)
        detail_buttons.addWidget(self.refresh_one_button)
        splitter = table_over(self.table, self.details, detail_buttons)
        layout = QVBoxLayout(self)
        layout.addLayout(toolbar)
        layout.addWidget(splitter)

        QShortcut(QKeySequence(Qt.Key.Key_F5), self, state.refresh_all,
                  context=Qt.ShortcutContext.WindowShortcut)
        state.status_changed.connect(self._status_changed)
        state.refresh_started.connect(lambda server: self.model.set_refreshing(server, True))
        state.inventory_changed.connect(self.load_servers)
        self.load_servers()

    def load_servers(self) -> None:
        servers = [(name, f"{spec.host}:{spec.port}") for name, spec in self.state.context.inventory.servers.items()]
        self.model.set_servers(servers, self.state.statuses)
        if servers:
            self.table.selectRow(0)
        self._update_summary()
        self.state.remove_actions("fleet/")
        for name, _ in servers:
            self.state.add_action(PaletteAction(f"Refresh {name}", partial(self.state.refresh, name),
                                                keywords=("probe", "status", "check"), page=self.title,
                                                key=f"fleet/{name}/refresh"))
            self.state.add_action(PaletteAction(f"Open terminal on {name}", partial(open_terminal, self.state, name),
                                                keywords=("shell", "ssh", "console"), page=self.title,
                                                key=f"fleet/{name}/terminal"))

    def selected_server(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        row = self.model.server_at(rows[0].row())
        return row.server if row else None

    def _status_changed(self, status: ServerStatus) -> None:
        self.model.update_status(status)
        self._update_summary()
        if status.server == self.selected_server():
            self._show_details(status.server)

    def _update_summary(self) -> None:
        counts: dict[str, int] = {}
        for status in self.state.statuses.values():
            counts[str(status.state)] = counts.get(str(status.state), 0) + 1
        total = len(self.state.context.inventory.servers)
        parts = [f"{total} servers"] + [f"{n} {state}" for state, n in sorted(counts.items())]
        self.summary.setText(" · ".join(parts))

    def _selection_changed(self, selected: QItemSelection, _: QItemSelection) -> None:
        server = self.selected_server()
        if server is not None:
            self._show_details(server)

    def _show_details(self, server: str) -> None:
        spec = self.state.context.inventory.servers.get(server)
        status = self.state.statuses.get(server)
        self.trust_button.setVisible(status is not None and status.state is ServerState.UNKNOWN_HOST_KEY)
        self.details.setHtml(details_html(server, spec.host if spec else "?", spec.port if spec else 0, status))

    def _refresh_selected(self) -> None:
        server = self.selected_server()
        if server:
            self.state.refresh(server)

    def _trust_selected(self) -> None:
        server = self.selected_server()
        status = self.state.statuses.get(server or "")
        if server is None or status is None or not status.public_key or not status.fingerprint:
            return
        dialog = TrustDialog(server, status.endpoint, status.fingerprint, status.public_key, self)
        dialog.accepted.connect(lambda: self._trust(server, status.endpoint, dialog.public_key))
        dialog.open()

    def _trust(self, server: str, endpoint: str, public_key: str) -> None:
        context = self.state.context

        def trust(job: JobContext) -> None:
            context.trust_host_key(server, endpoint, public_key)

        def failed(error: PanelError) -> None:
            self.state.message.emit(f"Could not trust the key of {server}: {error}")

        self.state.runner.submit(f"Trusting the key of {server}", trust, timeout=10,
                                 on_success=lambda _: self.state.refresh(server), on_error=failed)


def details_html(server: str, host: str, port: int, status: ServerStatus | None) -> str:
    lines = [f"<h3>{html.escape(server)} <small>{html.escape(host)}:{port}</small></h3>"]
    if status is None:
        lines.append("<p>Not checked yet.</p>")
        return "".join(lines)
    lines.append(f"<p><b>State:</b> {html.escape(str(status.state))} "
                 f"(checked {status.checked_at.astimezone():%H:%M:%S}, {status.elapsed_ms:.0f} ms)</p>")
    if status.detail:
        colour = "#d0342c" if status.state is ServerState.HOST_KEY_MISMATCH else "inherit"
        lines.append(f"<p style='color:{colour}'>{html.escape(status.detail)}</p>")
    if status.state is ServerState.HOST_KEY_MISMATCH:
        lines.append(f"<p><b>Offered:</b> <code>{html.escape(status.fingerprint or '')}</code><br>"
                     f"<b>Pinned:</b> <code>{html.escape(', '.join(status.expected))}</code></p>"
                     "<p>Nothing was sent to this host. To replace the pin after you know why the key "
                     "changed, use Settings → Host keys.</p>")
    facts = status.facts
    if facts is not None:
        rows = [
            ("Uptime", format_uptime(facts.uptime_seconds)),
            ("Load", " ".join(f"{x:.2f}" for x in facts.load) if facts.load else "?"),
            ("Cores", str(facts.cores or "?")),
            ("Memory used", "?" if facts.memory_used_percent is None else f"{facts.memory_used_percent:.0f}%"),
            ("Failed units", "?" if facts.failed_units is None else str(facts.failed_units)),
            ("Kernel", facts.kernel or "?"),
            ("Debian", facts.debian or "?"),
            ("Reboot required", {True: "yes", False: "no", None: "?"}[facts.reboot_required]),
        ]
        lines.append("<table cellspacing='4'>" + "".join(
            f"<tr><td><b>{k}</b></td><td>{html.escape(v)}</td></tr>" for k, v in rows) + "</table>")
        if facts.disks:
            lines.append("<p><b>Disks</b></p><table cellspacing='4'>" + "".join(
                f"<tr><td>{html.escape(d.mount)}</td><td align='right'>{d.percent}%</td>"
                f"<td align='right'>{d.used_kb // 1048576} / {d.size_kb // 1048576} GiB</td></tr>"
                for d in sorted(facts.disks, key=lambda d: -d.percent)) + "</table>")
    return "".join(lines)
