"""A server's processes as a sortable table: PID, user, CPU, memory, resident size, age, command."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt

from services.triage.processes import ProcessInfo
from views.models.table import RIGHT_ALIGNED, ListTableModel

COLUMNS = ("PID", "User", "CPU %", "Mem %", "Resident", "Running for", "Command", "Arguments")
PID, USER, CPU, MEMORY, RSS, ELAPSED, COMMAND, ARGS = range(len(COLUMNS))
_NUMERIC = (PID, CPU, MEMORY, RSS, ELAPSED)


def format_size(kb: int) -> str:
    if kb >= 1024 * 1024:
        return f"{kb / 1024 / 1024:.1f} GiB"
    if kb >= 1024:
        return f"{kb / 1024:.0f} MiB"
    return f"{kb} KiB"


def format_age(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {seconds:02d}s"


def _sort_key(column: int) -> Any:
    keys = {
        PID: lambda p: p.pid, USER: lambda p: p.user, CPU: lambda p: p.cpu_percent, MEMORY: lambda p: p.rss_kb,
        RSS: lambda p: p.rss_kb, ELAPSED: lambda p: p.elapsed_seconds, COMMAND: lambda p: p.command.lower(),
        ARGS: lambda p: p.args.lower(),
    }
    return keys.get(column, keys[CPU])


class ProcessModel(ListTableModel[ProcessInfo]):
    columns = COLUMNS

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._all: list[ProcessInfo] = []
        self._text = ""
        self.sort_column = CPU
        self.sort_order = Qt.SortOrder.DescendingOrder

    def set_processes(self, processes: list[ProcessInfo] | tuple[ProcessInfo, ...]) -> None:
        self.beginResetModel()
        self._all = list(processes)
        self._refilter()
        self.endResetModel()

    def set_filter(self, text: str) -> None:
        self.beginResetModel()
        self._text = text.strip().lower()
        self._refilter()
        self.endResetModel()

    def _refilter(self) -> None:
        text = self._text
        rows = [p for p in self._all if not text or text in p.args.lower() or text in p.command.lower()
                or text in p.user.lower() or text == str(p.pid)]
        rows.sort(key=_sort_key(self.sort_column), reverse=self.sort_order == Qt.SortOrder.DescendingOrder)
        self._rows = rows

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.layoutAboutToBeChanged.emit()
        self.sort_column = column
        self.sort_order = order
        self._refilter()
        self.layoutChanged.emit()

    @property
    def total(self) -> int:
        return len(self._all)

    def process_at(self, row: int) -> ProcessInfo | None:
        return self.row_at(row)

    def row_of(self, pid: int) -> int:
        return self._find(lambda process: process.pid == pid)

    def cell(self, process: ProcessInfo, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return (str(process.pid), process.user, f"{process.cpu_percent:.1f}", f"{process.memory_percent:.1f}",
                    format_size(process.rss_kb), format_age(process.elapsed_seconds), process.command,
                    process.args)[column]
        if role == Qt.ItemDataRole.TextAlignmentRole and column in _NUMERIC:
            return RIGHT_ALIGNED
        if role == Qt.ItemDataRole.ToolTipRole and column == ARGS:
            return process.args
        if role == Qt.ItemDataRole.UserRole:
            return process.pid
        return None
