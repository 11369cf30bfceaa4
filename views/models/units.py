"""systemd units as a table: name, state, sub-state, load state, description. Failed units in red."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from services.triage.units import Unit
from views.models.table import ListTableModel
from views.style import STATE_COLOURS, state_icon

COLUMNS = ("Unit", "Active", "State", "Load", "Description")

STATE_FILTERS = (("All units", ""), ("Running", "active"), ("Failed", "failed"), ("Not running", "inactive"))


class UnitsModel(ListTableModel[Unit]):
    columns = COLUMNS

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._all: list[Unit] = []
        self._text = ""
        self._state = ""

    def set_units(self, units: list[Unit] | tuple[Unit, ...]) -> None:
        self.beginResetModel()
        # failed first: that's what an incident looks for
        self._all = sorted(units, key=lambda u: (not u.failed, u.kind != "service", u.name))
        self._rows = [u for u in self._all if self._accepts(u)]
        self.endResetModel()

    def set_filter(self, text: str, state: str) -> None:
        self.beginResetModel()
        self._text = text.strip().lower()
        self._state = state
        self._rows = [u for u in self._all if self._accepts(u)]
        self.endResetModel()

    def _accepts(self, unit: Unit) -> bool:
        if self._state == "active" and unit.active != "active":
            return False
        if self._state == "failed" and not unit.failed:
            return False
        if self._state == "inactive" and unit.active == "active":
            return False
        text = self._text
        return not text or text in unit.name.lower() or text in unit.description.lower()

    @property
    def total(self) -> int:
        return len(self._all)

    def unit_at(self, row: int) -> Unit | None:
        return self.row_at(row)

    def row_of(self, name: str) -> int:
        return self._find(lambda unit: unit.name == name or unit.short_name == name)

    def cell(self, unit: Unit, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return (unit.name, unit.active, unit.sub, unit.load, unit.description)[column]
        if role == Qt.ItemDataRole.DecorationRole and column == 0:
            if unit.failed:
                return state_icon("CRITICAL")
            return state_icon("OK" if unit.running else "refreshing")
        if role == Qt.ItemDataRole.ForegroundRole and unit.failed:
            return QColor(STATE_COLOURS["CRITICAL"])
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{unit.name}: {unit.active} ({unit.sub}), {unit.load}\n{unit.description}"
        if role == Qt.ItemDataRole.UserRole:
            return unit.name
        return None
