"""The Qt boilerplate of a flat, read-only table over a Python list: row and column counts,
header titles and the bounds check before a cell is asked for. A subclass names its columns and
answers ``cell`` for one row, column and role.

This leaves every role to the subclass: the Fleet, Unlock, triage and audit tables answer icons,
fonts and user data too. ``cloudflare.RowsModel`` builds on it with column specs and a fixed set
of roles, for the vendor tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

RowT = TypeVar("RowT")
RIGHT_ALIGNED = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)  # numbers
_Index = QModelIndex | QPersistentModelIndex


class ListTableModel(QAbstractTableModel, Generic[RowT]):
    """``_rows`` are the rows shown, in order; ``columns`` the header titles (or, in a subclass
    that says how to title them, column specs)."""

    columns: tuple[Any, ...] = ()

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[RowT] = []

    def row_at(self, number: int) -> RowT | None:
        return self._rows[number] if 0 <= number < len(self._rows) else None

    def _find(self, match: Callable[[RowT], bool]) -> int:
        """The number of the first row that matches, or -1 as Qt's own look-ups answer."""
        return next((number for number, row in enumerate(self._rows) if match(row)), -1)

    def _row_changed(self, number: int) -> None:
        self.dataChanged.emit(self.index(number, 0), self.index(number, len(self.columns) - 1))

    def cell(self, row: RowT, column: int, role: int) -> Any:
        """What ``data`` answers for this row, column and role; None for a role not shown."""
        raise NotImplementedError

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole and \
                0 <= section < len(self.columns):
            return self.column_title(section)
        return None

    def column_title(self, section: int) -> str:
        return str(self.columns[section])

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        return self.cell(self._rows[index.row()], index.column(), role)
