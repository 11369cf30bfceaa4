"""Audit: every action the panel took, when, on what, and how it ended. Filterable."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton, QTableView, QVBoxLayout, QWidget

from panel.store import AuditEntry
from views.models.audit import AuditModel
from views.state import PanelState
from views.workers import JobContext


class AuditPage(QWidget):
    title = "Audit"

    def __init__(self, state: PanelState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.model = AuditModel(self)
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter by action, server, outcome or detail…")
        self.filter_edit.setClearButtonEnabled(True)
        self.count_label = QLabel()
        refresh = QPushButton("Reload")
        refresh.clicked.connect(self.reload)
        top = QHBoxLayout()
        top.addWidget(self.filter_edit, 1)
        top.addWidget(self.count_label)
        top.addWidget(refresh)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table)
        # Debounce typing: the query runs on a worker once the operator pauses.
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(150)
        self._debounce.timeout.connect(self.reload)
        self.filter_edit.textChanged.connect(lambda _: self._debounce.start())

    def activate(self) -> None:
        self.reload()

    def reload(self) -> None:
        text = self.filter_edit.text().strip()
        store = self.state.context.store

        def load(job: JobContext) -> list[AuditEntry]:
            return store.audit_entries(text=text)

        self.state.runner.submit("Reading the audit log", load, timeout=10, on_success=self._show,
                                 on_error=lambda error: self.count_label.setText(str(error)))

    def _show(self, entries: list[AuditEntry]) -> None:
        self.model.set_entries(entries)
        self.count_label.setText(f"{len(entries)} entries")
