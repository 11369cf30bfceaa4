"""The command palette's list: the matching actions, best first, those that change something greyed
out while read-only mode is on."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

from views.state import PaletteAction

COLUMNS = ("Action", "Where")
_Index = QModelIndex | QPersistentModelIndex
READ_ONLY_HINT = "read-only mode is on"


class PaletteModel(QAbstractTableModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[PaletteAction] = []
        self.read_only = True

    def set_rows(self, actions: list[PaletteAction], read_only: bool) -> None:
        self.beginResetModel()
        self._rows = list(actions)
        self.read_only = read_only
        self.endResetModel()

    def action_at(self, row: int) -> PaletteAction | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def is_disabled(self, action: PaletteAction) -> bool:
        return self.read_only and action.changes_something

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole and \
                0 <= section < len(COLUMNS):
            return COLUMNS[section]
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        # Disabled rows stay selectable, so Enter on one says why it won't run.
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        action = self._rows[index.row()]
        disabled = self.is_disabled(action)
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                return action.title + (f"  ({READ_ONLY_HINT})" if disabled else "")
            parts = [p for p in (action.page, action.shortcut) if p]
            return " · ".join(parts)
        if role == Qt.ItemDataRole.ToolTipRole:
            if disabled:
                return f"{action.title}: disabled because {READ_ONLY_HINT} (toggle it in the status bar)."
            return action.title + (f" ({', '.join(action.keywords)})" if action.keywords else "")
        if role == Qt.ItemDataRole.ForegroundRole:
            if disabled or column == 1:
                palette = QApplication.palette()
                return palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text) if disabled \
                    else QColor(palette.color(QPalette.ColorRole.PlaceholderText))
            return None
        if role == Qt.ItemDataRole.FontRole and disabled and column == 0:
            font = QFont()
            font.setItalic(True)
            return font
        if role == Qt.ItemDataRole.UserRole:
            return action.key or action.title
        return None
