"""How groups and their data spread over the servers, and which moves would even them out.

Counts every group's rows on every server (``services.groups.balance``, servers in parallel, on a
worker), then suggests a few moves; "Move…" on a suggestion opens the move dialog with its plan.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from panel.mysql import MysqlAccess
from services.errors import PanelError
from services.groups import BalanceReport, balance
from services.inventory import GroupsSpec
from views.dialogs.group_detail import small_table
from views.models.groups import RecordsModel
from views.state import PanelState
from views.workers import Job, JobContext


class BalanceDialog(QDialog):
    move_requested = Signal(int, str, str, str, int)  # group id, name, source, target, data rows
    report_ready = Signal(object)  # BalanceReport or PanelError

    def __init__(self, state: PanelState, access: MysqlAccess, spec: GroupsSpec, servers: Sequence[str],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.access = access
        self.spec = spec
        self.servers = list(servers)
        self.report: BalanceReport | None = None
        self.job: Job | None = None
        self.setWindowTitle("Balance the servers")
        self.setMinimumSize(560, 420)
        self.status = QLabel("Counting the groups and their rows on every server…")
        self.status.setWordWrap(True)
        self.servers_model = RecordsModel(("Server", "Groups", "Suspended", "Data rows", "After the moves"), self,
                                          right_aligned=(1, 2, 3, 4))
        self.moves_model = RecordsModel(("Group", "Name", "From", "To", "Data rows"), self, right_aligned=(0, 4))
        self.servers_table = small_table(self.servers_model)
        self.moves_table: QTableView = small_table(self.moves_model)
        self.moves_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.moves_table.doubleClicked.connect(lambda _: self.move_chosen())
        self.move_button = QPushButton("Move…")
        self.move_button.setEnabled(False)
        self.move_button.clicked.connect(self.move_chosen)
        self.moves_table.selectionModel().selectionChanged.connect(
            lambda *_: self.move_button.setEnabled(self._chosen() is not None))
        refresh = QPushButton("Count again")
        refresh.clicked.connect(self.refresh)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addWidget(refresh)
        buttons.addStretch(1)
        buttons.addWidget(self.move_button)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.servers_table, 1)
        layout.addWidget(QLabel("Suggested moves (each lowers the gap between the fullest and the emptiest server):"))
        layout.addWidget(self.moves_table, 2)
        layout.addLayout(buttons)
        self.refresh()

    def refresh(self) -> None:
        if self.job is not None:
            self.job.cancel.cancel()
        self.status.setText("Counting the groups and their rows on every server…")
        access, spec, servers = self.access, self.spec, self.servers

        def work(job: JobContext) -> BalanceReport:
            endpoints = [access.endpoint(server, job.cancel) for server in servers]
            return balance(endpoints, spec)

        self.job = job = self.state.runner.submit("Counting rows per server", work, timeout=600,
                                                  on_success=lambda report: self._done(job, report),
                                                  on_error=lambda error: self._failed(job, error))

    def _done(self, job: Job, report: BalanceReport) -> None:
        if job is not self.job:
            return
        self.job = None
        self.report = report
        after = dict(report.projected)
        self.servers_model.set_rows([(s.server, f"{s.groups:,}", f"{s.suspended:,}", f"{s.data_rows:,}",
                                      f"{after.get(s.server, s.data_rows):,}") for s in report.servers])
        self.moves_model.set_rows([(m.group_id, m.name, m.source, m.target, f"{m.data_rows:,}")
                                   for m in report.suggestions])
        if report.suggestions:
            self.status.setText(f"The gap between the fullest and the emptiest server is {report.spread_before:,} "
                                f"rows; the {len(report.suggestions)} moves below would bring it to "
                                f"{report.spread_after:,}.")
        else:
            self.status.setText("The servers are as even as moving single groups can make them.")
        self.report_ready.emit(report)

    def _failed(self, job: Job, error: PanelError) -> None:
        if job is not self.job:
            return
        self.job = None
        self.status.setText(f"Could not count the rows: {error}")
        self.report_ready.emit(error)

    def _chosen(self) -> int | None:
        rows = self.moves_table.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def move_chosen(self) -> None:
        number = self._chosen()
        if self.report is None or number is None or number >= len(self.report.suggestions):
            return
        move = self.report.suggestions[number]
        self.move_requested.emit(move.group_id, move.name, move.source, move.target, move.data_rows)

    def reject(self) -> None:
        if self.job is not None:
            self.job.cancel.cancel()
        super().reject()
