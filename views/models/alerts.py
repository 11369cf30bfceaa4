"""The Alerts table: one row per alert, the worst first; a proxy filters by severity, text and status."""

from __future__ import annotations

import datetime as dt
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QBrush, QColor, QFont

from panel.alerts import RESOLVED, Alert
from services.checks.model import Severity
from views.style import STATE_COLOURS, dot_icon

COLUMNS = ("Severity", "Server", "Check", "Summary", "Status", "First seen", "Last seen")
SEVERITY, SERVER, CHECK, SUMMARY, STATUS, FIRST_SEEN, LAST_SEEN = range(len(COLUMNS))
ALERT_ID_ROLE = Qt.ItemDataRole.UserRole
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
_Index = QModelIndex | QPersistentModelIndex


def when(moment: dt.datetime | None) -> str:
    if moment is None:
        return ""
    local = moment.astimezone()
    today = dt.datetime.now().astimezone().date()
    return local.strftime("%H:%M") if local.date() == today else local.strftime("%Y-%m-%d %H:%M")


class AlertsModel(QAbstractTableModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._alerts: list[Alert] = []
        self._since: dt.datetime | None = None  # when the operator last looked: newer rows stand out
        self._now = dt.datetime.now(dt.UTC)

    # --- content ------------------------------------------------------------------------------------

    def set_alerts(self, alerts: list[Alert], *, now: dt.datetime | None = None) -> None:
        self.beginResetModel()
        self._alerts = list(alerts)
        self._now = now or dt.datetime.now(dt.UTC)
        self.endResetModel()

    def set_since(self, since: dt.datetime | None) -> None:
        self._since = since
        if self._alerts:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._alerts) - 1, len(COLUMNS) - 1))

    @property
    def since(self) -> dt.datetime | None:
        return self._since

    def alert_at(self, row: int) -> Alert | None:
        return self._alerts[row] if 0 <= row < len(self._alerts) else None

    def row_of(self, alert_id: int) -> int:
        for number, alert in enumerate(self._alerts):
            if alert.id == alert_id:
                return number
        return -1

    def alerts(self) -> list[Alert]:
        return list(self._alerts)

    def is_news(self, alert: Alert) -> bool:
        """New or changed since the operator last looked."""
        if self._since is None:
            return alert.is_open
        return alert.first_seen > self._since or alert.changed_at > self._since

    def status_text(self, alert: Alert) -> str:
        if alert.status == RESOLVED:
            return f"resolved ({alert.resolution})" if alert.resolution else "resolved"
        if alert.silenced(self._now):
            assert alert.silenced_until is not None
            return f"silenced until {when(alert.silenced_until)}"
        return alert.status

    # --- Qt -----------------------------------------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._alerts)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole and \
                0 <= section < len(COLUMNS):
            return COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._alerts) or not 0 <= index.column() < len(COLUMNS):
            return None
        alert = self._alerts[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(alert, column)
        if role == SORT_ROLE:
            return self._sort_key(alert, column)
        if role == ALERT_ID_ROLE:
            return alert.id
        if role == Qt.ItemDataRole.DecorationRole and column == SEVERITY:
            return dot_icon(STATE_COLOURS.get(str(alert.severity), "#7f8c8d"))
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [alert.summary, *alert.evidence[:8]]
            if len(alert.evidence) > 8:
                lines.append(f"… {len(alert.evidence) - 8} more line(s)")
            return "\n".join(lines)
        if role == Qt.ItemDataRole.FontRole and alert.is_open and self.is_news(alert):
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ForegroundRole and (alert.status == RESOLVED or alert.silenced(self._now)):
            return QBrush(QColor("#7f8c8d"))
        return None

    def _display(self, alert: Alert, column: int) -> str:
        if column == SEVERITY:
            return str(alert.severity)
        if column == SERVER:
            return alert.server or "(business)"
        if column == CHECK:
            return f"{alert.check} {alert.subject}".strip() if alert.subject and alert.subject not in alert.summary \
                else alert.check
        if column == SUMMARY:
            return alert.summary
        if column == STATUS:
            news = "● " if alert.is_open and self.is_news(alert) else ""
            return news + self.status_text(alert)
        if column == FIRST_SEEN:
            return when(alert.first_seen)
        if column == LAST_SEEN:
            return when(alert.last_seen)
        return ""

    def _sort_key(self, alert: Alert, column: int) -> str:
        if column == SEVERITY:
            # open before resolved, then the worst, then the newest
            open_rank = 1 if alert.is_open and not alert.silenced(self._now) else 0
            return f"{open_rank}{alert.severity.rank}{alert.last_seen.isoformat()}"
        if column in (FIRST_SEEN, LAST_SEEN):
            moment = alert.first_seen if column == FIRST_SEEN else alert.last_seen
            return moment.isoformat()
        return self._display(alert, column).lower()


class AlertsFilter(QSortFilterProxyModel):
    """Filters by severity, by text (server, check, subject, summary, evidence) and by status."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.severities: set[Severity] = {Severity.CRITICAL, Severity.WARNING, Severity.UNKNOWN}
        self.text = ""
        self.show_resolved = False
        self.show_silenced = True
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)

    def set_filter(self, *, text: str | None = None, severities: set[Severity] | None = None,
                   show_resolved: bool | None = None, show_silenced: bool | None = None) -> None:
        self.beginFilterChange()
        if text is not None:
            self.text = text.strip().lower()
        if severities is not None:
            self.severities = set(severities)
        if show_resolved is not None:
            self.show_resolved = show_resolved
        if show_silenced is not None:
            self.show_silenced = show_silenced
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: _Index) -> bool:
        model = self.sourceModel()
        if not isinstance(model, AlertsModel):
            return True
        alert = model.alert_at(source_row)
        if alert is None:
            return False
        if alert.severity not in self.severities:
            return False
        if alert.status == RESOLVED and not self.show_resolved:
            return False
        if alert.status != RESOLVED and alert.silenced() and not self.show_silenced:
            return False
        if self.text:
            haystack = " ".join((alert.server, alert.check, alert.subject, alert.summary, *alert.evidence)).lower()
            return all(word in haystack for word in self.text.split())
        return True
