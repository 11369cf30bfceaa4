"""The Fleet table: one row per server, its state and health at a glance."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor

from services.probe import HostFacts, ServerStatus
from views.models.table import RIGHT_ALIGNED, ListTableModel
from views.style import STATE_COLOURS, state_icon

COLUMNS = ("Server", "State", "Uptime", "Load", "Memory", "Fullest disk", "System", "Checked", "Detail")


def format_uptime(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    return f"{days}d {hours}h" if days else f"{hours}h {rest // 60}m"


@dataclass
class FleetRow:
    server: str
    address: str
    status: ServerStatus | None = None
    refreshing: bool = False

    @property
    def state_text(self) -> str:
        if self.status is None:
            return "checking…" if self.refreshing else "not checked"
        return str(self.status.state)


class FleetModel(ListTableModel[FleetRow]):
    columns = COLUMNS

    def set_servers(self, servers: list[tuple[str, str]], statuses: dict[str, ServerStatus]) -> None:
        self.beginResetModel()
        self._rows = [FleetRow(name, address, statuses.get(name)) for name, address in servers]
        self.endResetModel()

    def row_of(self, server: str) -> int:
        return self._find(lambda row: row.server == server)

    def server_at(self, row: int) -> FleetRow | None:
        return self.row_at(row)

    def update_status(self, status: ServerStatus) -> None:
        number = self.row_of(status.server)
        if number < 0:
            return
        self._rows[number].status = status
        self._rows[number].refreshing = False
        self._row_changed(number)

    def set_refreshing(self, server: str, refreshing: bool) -> None:
        number = self.row_of(server)
        if number >= 0:
            self._rows[number].refreshing = refreshing
            self.dataChanged.emit(self.index(number, 1), self.index(number, 1))

    def cell(self, row: FleetRow, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, column)
        if role == Qt.ItemDataRole.DecorationRole and column == 1:
            return state_icon("refreshing" if row.status is None else row.state_text)
        if role == Qt.ItemDataRole.ToolTipRole:
            if row.status is not None and row.status.detail:
                return row.status.detail
            return row.address
        if role == Qt.ItemDataRole.UserRole:
            return row.server
        if role == Qt.ItemDataRole.ForegroundRole and column in (3, 5) and row.status and row.status.facts:
            return _warning_brush(row.status.facts, column)
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (2, 3, 4):
            return RIGHT_ALIGNED
        return None

    def _display(self, row: FleetRow, column: int) -> str:
        facts = row.status.facts if row.status else None
        if column == 0:
            return row.server
        if column == 1:
            return row.state_text + (" ⟳" if row.refreshing and row.status is not None else "")
        if column == 8:
            return row.status.detail.split(". ")[0] if row.status and row.status.detail else ""
        if facts is None:
            if column == 7 and row.status is not None:
                return _clock(row.status.checked_at)
            return "—"
        if column == 2:
            return format_uptime(facts.uptime_seconds)
        if column == 3:
            if facts.load is None:
                return "?"
            cores = f" / {facts.cores} cores" if facts.cores else ""
            return f"{facts.load[0]:.2f}{cores}"
        if column == 4:
            used = facts.memory_used_percent
            return "?" if used is None else f"{used:.0f}%"
        if column == 5:
            disk = facts.fullest_disk
            return "?" if disk is None else f"{disk.percent}% {disk.mount}"
        if column == 6:
            parts = [f"Debian {facts.debian}" if facts.debian else "", facts.kernel or ""]
            if facts.reboot_required:
                parts.append("reboot required")
            if facts.failed_units:
                parts.append(f"{facts.failed_units} failed units")
            return ", ".join(p for p in parts if p) or "?"
        if column == 7 and row.status is not None:
            return _clock(row.status.checked_at)
        return ""


def _clock(moment: dt.datetime) -> str:
    return moment.astimezone().strftime("%H:%M:%S")


def _warning_brush(facts: HostFacts, column: int) -> QBrush | None:
    """Amber for a load above the core count or a disk above 85 %: the eye goes there first."""
    if column == 3 and facts.load and facts.cores and facts.load[0] > facts.cores:
        return QBrush(QColor(STATE_COLOURS["WARNING"]))
    disk = facts.fullest_disk
    if column == 5 and disk is not None and disk.percent >= 85:
        return QBrush(QColor(STATE_COLOURS["CRITICAL" if disk.percent >= 95 else "WARNING"]))
    return None
