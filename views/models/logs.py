"""Log lines as a table: time, server, unit, level, message. Errors in red, warnings in amber.

Built for a live follow: rows arrive in chunks (:meth:`LogModel.append`), the oldest are dropped
past ``max_rows`` in one removal, and the text filter is applied here (not in a proxy), so each
chunk costs one insert however many lines the model holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QFont

from services.triage.logs import LogEntry
from views.style import STATE_COLOURS

COLUMNS = ("Time", "Server", "Unit", "Level", "Message")
TIME, SERVER, UNIT, LEVEL, MESSAGE = range(len(COLUMNS))
DISPLAY, TOOLTIP, FONT, FOREGROUND, USER = (int(r.value) for r in (
    Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.FontRole,
    Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.UserRole))
_ROLES = frozenset((DISPLAY, TOOLTIP, FONT, FOREGROUND, USER))
DEFAULT_MAX_ROWS = 20_000
_Index = QModelIndex | QPersistentModelIndex
_ERROR = QColor(STATE_COLOURS["CRITICAL"])
_WARNING = QColor(STATE_COLOURS["WARNING"])


def one_line(text: str) -> str:
    return text.replace("\r", "").replace("\n", " ⏎ ") if "\n" in text or "\r" in text else text


class LogModel(QAbstractTableModel):
    def __init__(self, parent: Any = None, *, max_rows: int = DEFAULT_MAX_ROWS) -> None:
        super().__init__(parent)
        self.max_rows = max_rows
        self._all: list[LogEntry] = []  # every line held, oldest first (at most max_rows, plus a slack)
        self._rows: list[LogEntry] = []  # the ones the filter shows
        self._filter = ""
        self._errors_only = False
        self._bold = QFont()
        self._bold.setBold(True)
        self.dropped = 0  # lines dropped off the top since the last reset

    # --- contents ------------------------------------------------------------------------------------

    @property
    def total(self) -> int:
        return len(self._all)

    @property
    def entries(self) -> list[LogEntry]:
        return list(self._all)

    def entry_at(self, row: int) -> LogEntry | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def _accepts(self, entry: LogEntry) -> bool:
        if self._errors_only and not entry.is_error:
            return False
        if not self._filter:
            return True
        needle = self._filter
        return needle in entry.message.lower() or needle in entry.unit.lower() or needle in entry.server.lower() \
            or needle in entry.identifier.lower()

    def set_entries(self, entries: Iterable[LogEntry]) -> None:
        self.beginResetModel()
        self._all = list(entries)[-self.max_rows:]
        self._rows = [e for e in self._all if self._accepts(e)]
        self.dropped = 0
        self.endResetModel()

    def set_filter(self, text: str, *, errors_only: bool | None = None) -> None:
        text = text.strip().lower()
        errors = self._errors_only if errors_only is None else errors_only
        if text == self._filter and errors == self._errors_only:
            return
        self.beginResetModel()
        self._filter = text
        self._errors_only = errors
        self._rows = [e for e in self._all if self._accepts(e)]
        self.endResetModel()

    def append(self, entries: list[LogEntry]) -> int:
        """Add newer lines at the bottom (one insert), then drop the oldest past ``max_rows`` (one removal).
        Returns how many rows became visible."""
        if not entries:
            return 0
        self._all.extend(entries)
        shown = [e for e in entries if self._accepts(e)] if (self._filter or self._errors_only) else entries
        if shown:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(shown) - 1)
            self._rows.extend(shown)
            self.endInsertRows()
        # Trim with some slack, so a steady follow removes rows in chunks, not at every append.
        if len(self._all) > self.max_rows + max(100, self.max_rows // 10):
            self._trim(len(self._all) - self.max_rows)
        return len(shown)

    def prepend(self, entries: list[LogEntry]) -> None:
        """Add older lines at the top (a page loaded with "Load older")."""
        if not entries:
            return
        room = max(0, self.max_rows - len(self._all))
        entries = entries[-room:] if room else []
        if not entries:
            return
        shown = [e for e in entries if self._accepts(e)]
        self._all[:0] = entries
        if shown:
            self.beginInsertRows(QModelIndex(), 0, len(shown) - 1)
            self._rows[:0] = shown
            self.endInsertRows()

    def _trim(self, count: int) -> None:
        dropped = self._all[:count]
        del self._all[:count]
        self.dropped += count
        visible = sum(1 for e in dropped if self._accepts(e)) if (self._filter or self._errors_only) else count
        visible = min(visible, len(self._rows))
        if visible:
            self.beginRemoveRows(QModelIndex(), 0, visible - 1)
            del self._rows[:visible]
            self.endRemoveRows()

    def clear(self) -> None:
        self.set_entries([])

    # --- Qt ------------------------------------------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole and \
                0 <= section < len(COLUMNS):
            return COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = DISPLAY) -> Any:
        # Called for every visible cell and role at each repaint while following: int roles, early outs.
        if role not in _ROLES:
            return None
        row = index.row()
        if row < 0 or row >= len(self._rows):
            return None
        entry = self._rows[row]
        if role == DISPLAY:
            column = index.column()
            if column == MESSAGE:
                return one_line(entry.message)
            if column == TIME:
                text = entry.at.astimezone().strftime("%m-%d %H:%M:%S.%f")[:-3]
                return text if entry.exact_time else f"~{text}"
            if column == SERVER:
                return entry.server
            if column == UNIT:
                return entry.unit or entry.identifier
            if column == LEVEL:
                return entry.priority_name
            return None
        priority = entry.priority
        if role == FOREGROUND:
            if priority is None or priority > 4:
                return None
            return _ERROR if priority <= 3 else _WARNING
        if role == FONT:
            return self._bold if priority is not None and priority <= 3 and index.column() in (LEVEL, MESSAGE) \
                else None
        if role == TOOLTIP:
            if index.column() != MESSAGE:
                return None
            where = entry.source if entry.source != "journal" else f"journal, {entry.unit or entry.identifier}"
            pid = f" [{entry.pid}]" if entry.pid else ""
            when = f"{entry.at.astimezone():%Y-%m-%d %H:%M:%S %Z}"
            return f"{entry.server} · {where}{pid}\n{when}\n\n{entry.message[:4000]}"
        return entry  # USER
