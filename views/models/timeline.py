"""The timeline as a table, newest first: when, source, server, what, summary; coloured by severity."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont

from services.triage.timeline import TimelineEvent
from views.models.table import ListTableModel
from views.style import STATE_COLOURS

COLUMNS = ("When", "Source", "Server", "What", "Summary")


class TimelineModel(ListTableModel[TimelineEvent]):
    columns = COLUMNS

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._all: list[TimelineEvent] = []
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
        return self.row_at(row)

    def cell(self, event: TimelineEvent, column: int, role: int) -> Any:
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
