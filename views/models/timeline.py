"""The timeline as a table, newest first: when, source, server, what, summary; coloured by severity."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QFont

from services.triage.timeline import TimelineEvent
from views.style import STATE_COLOURS

COLUMNS = ("When", "Source", "Server", "What", "Summary")
_Index = QModelIndex | QPersistentModelIndex


class TimelineModel(QAbstractTableModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._all: list[TimelineEvent] = []
        self._rows: list[TimelineEvent] = []
        self._text = ""
        self._source = ""
        self._server = ""
        self._italic = QFont()
        self._italic.setItalic(True)

    def set_events(self, events: list[TimelineEvent] | tuple[TimelineEvent, ...]) -> None:
        self.beginResetModel()
        self._all = sorted(events, reverse=True)
        self._refilter()
        self.endResetModel()

    def set_filter(self, *, text: str = "", source: str = "", server: str = "") -> None:
        self.beginResetModel()
        self._text = text.strip().lower()
        self._source = source
        self._server = server
        self._refilter()
        self.endResetModel()

    def _refilter(self) -> None:
        self._rows = [
            e for e in self._all
            if (not self._source or e.source == self._source)
            and (not self._server or e.server in (self._server, ""))
            and (not self._text or self._text in e.summary.lower() or self._text in e.kind.lower()
                 or self._text in e.server.lower())
        ]

    @property
    def total(self) -> int:
        return len(self._all)

    def sources(self) -> list[str]:
        return sorted({e.source for e in self._all})

    def event_at(self, row: int) -> TimelineEvent | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole and \
                0 <= section < len(COLUMNS):
            return COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        event = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (event.at.astimezone().strftime("%Y-%m-%d %H:%M:%S"), event.source, event.server or "—",
                    event.kind, event.summary)[column]
        if role == Qt.ItemDataRole.ToolTipRole:
            return event.summary
        if role == Qt.ItemDataRole.ForegroundRole:
            if event.unavailable:
                return QColor(STATE_COLOURS["refreshing"])
            colour = STATE_COLOURS.get(event.severity)
            return QColor(colour) if colour and event.severity != "INFO" else None
        if role == Qt.ItemDataRole.FontRole and event.unavailable:
            return self._italic
        if role == Qt.ItemDataRole.UserRole:
            return event
        return None
