"""The audit log as a table, newest first."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt

from panel.store import AuditEntry
from views.models.table import ListTableModel

COLUMNS = ("When", "Action", "Target", "Outcome", "Detail")


class AuditModel(ListTableModel[AuditEntry]):
    columns = COLUMNS

    def set_entries(self, entries: list[AuditEntry]) -> None:
        self.beginResetModel()
        self._rows = list(entries)
        self.endResetModel()

    def entry_at(self, row: int) -> AuditEntry | None:
        return self.row_at(row)

    def cell(self, entry: AuditEntry, column: int, role: int) -> Any:
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return (
                entry.at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                entry.action,
                entry.target,
                entry.outcome,
                entry.detail,
            )[column]
        return None
