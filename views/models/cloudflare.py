"""Cloudflare tables: the zone's DNS records (with the ones pointing outside the inventory
flagged) and recent firewall events. Also the small column-driven table model the Billing and
Mail models share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QBrush, QColor

from services.cloudflare import DnsRecord, FirewallEvent
from services.vendors import RecordCheck, check_record, relative_name, ttl_text
from views.models.table import RIGHT_ALIGNED, ListTableModel
from views.style import STATE_COLOURS

_Index = QModelIndex | QPersistentModelIndex
SORT_ROLE = Qt.ItemDataRole.UserRole + 1  # a plain str, int or float to sort by
_ROLES = frozenset({Qt.ItemDataRole.DisplayRole, SORT_ROLE, Qt.ItemDataRole.ToolTipRole,
                    Qt.ItemDataRole.TextAlignmentRole, Qt.ItemDataRole.ForegroundRole,
                    Qt.ItemDataRole.BackgroundRole})
FLAG_BACKGROUND = "#d0342c"  # with alpha: a tint that reads in light and dark palettes


def when(moment: datetime | None, *, seconds: bool = False) -> str:
    if moment is None:
        return ""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def stamp(moment: datetime | None) -> float:
    return moment.timestamp() if moment is not None else 0.0


@dataclass(frozen=True)
class Column:
    title: str
    display: Callable[[Any], str]
    sort_key: Callable[[Any], str | int | float] | None = None
    right: bool = False  # numbers: aligned right
    tooltip: Callable[[Any], str] | None = None


class RowsModel(ListTableModel[Any]):
    """A read-only table over a list of rows, one :class:`Column` per column. Subclasses set
    ``columns`` and may colour rows through ``foreground``/``background``."""

    columns: tuple[Column, ...] = ()

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._sort: tuple[int, Qt.SortOrder] | None = None

    @property
    def rows(self) -> list[Any]:
        return list(self._rows)

    def set_rows(self, rows: Sequence[Any]) -> None:
        self.beginResetModel()
        self._rows = self._sorted(list(rows))
        self.endResetModel()

    def _sorted(self, rows: list[Any]) -> list[Any]:
        if self._sort is None:
            return rows
        column, order = self._sort
        spec = self.columns[column]
        key = spec.sort_key or spec.display
        return sorted(rows, key=key, reverse=order == Qt.SortOrder.DescendingOrder)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sorted in Python over the rows (a proxy sorting through ``data`` would call back into
        Python for every comparison)."""
        if not 0 <= column < len(self.columns):
            return
        self.layoutAboutToBeChanged.emit()
        before = self.persistentIndexList()
        kept = [(self._rows[i.row()], i.column()) if 0 <= i.row() < len(self._rows) else None for i in before]
        self._sort = (column, order)
        self._rows = self._sorted(self._rows)
        where = {id(row): n for n, row in enumerate(self._rows)}
        after = [self.index(where[id(found[0])], found[1]) if found is not None else QModelIndex() for found in kept]
        self.changePersistentIndexList(before, after)
        self.layoutChanged.emit()

    def column_title(self, section: int) -> str:
        return str(self.columns[section].title)

    def foreground(self, row: Any, column: int) -> QColor | None:
        return None

    def background(self, row: Any, column: int) -> QColor | None:
        return None

    def cell(self, row: Any, column_number: int, role: int) -> Any:
        if role not in _ROLES or not 0 <= column_number < len(self.columns):
            return None
        column = self.columns[column_number]
        if role == Qt.ItemDataRole.DisplayRole:
            return column.display(row)
        if role == SORT_ROLE:
            return column.sort_key(row) if column.sort_key else column.display(row)
        if role == Qt.ItemDataRole.ToolTipRole and column.tooltip is not None:
            return column.tooltip(row) or None
        if role == Qt.ItemDataRole.TextAlignmentRole and column.right:
            return RIGHT_ALIGNED
        if role == Qt.ItemDataRole.ForegroundRole:
            colour = self.foreground(row, column_number)
            return QBrush(colour) if colour is not None else None
        if role == Qt.ItemDataRole.BackgroundRole:
            colour = self.background(row, column_number)
            return QBrush(colour) if colour is not None else None
        return None


class SortingProxy(QSortFilterProxyModel):
    """Filters on a lower-case text over every column's display text; sorting is the source
    model's own (in Python, see ``RowsModel.sort``), the proxy keeps the source's order."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self.text = ""

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        model = self.sourceModel()
        if isinstance(model, RowsModel):
            model.sort(column, order)
        else:
            super().sort(column, order)

    def set_text(self, text: str) -> None:
        self.beginFilterChange()
        self.text = text.strip().lower()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def accepts(self, row: Any) -> bool:
        """Further conditions of a subclass."""
        return True

    def filterAcceptsRow(self, source_row: int, source_parent: _Index) -> bool:
        model = self.sourceModel()
        if not isinstance(model, RowsModel):
            return True
        row = model.row_at(source_row)
        if row is None or not self.accepts(row):
            return False
        if not self.text:
            return True
        return any(self.text in column.display(row).lower() for column in model.columns)


# -- DNS ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DnsRow:
    record: DnsRecord
    check: RecordCheck
    zone: str

    @property
    def name(self) -> str:
        return relative_name(self.record.name, self.zone)


def _content(row: DnsRow) -> str:
    record = row.record
    return f"{record.priority} {record.content}" if record.type == "MX" and record.priority is not None \
        else record.content


def _points_to_tip(row: DnsRow) -> str:
    if not row.check.applies:
        return ""
    if row.check.stray:
        return (f"{row.record.content} is not the address of any server in the inventory: a forgotten or "
                "decommissioned host, or a server missing from the config.")
    return f"{row.record.content} is {', '.join(row.check.servers)} in the inventory."


DNS_COLUMNS = (
    Column("Type", lambda r: r.record.type),
    Column("Name", lambda r: r.name, tooltip=lambda r: r.record.name),
    Column("Content", _content, tooltip=lambda r: r.record.content),
    Column("Proxied", lambda r: "proxied" if r.record.proxied else ("DNS only" if r.record.proxiable else "")),
    Column("TTL", lambda r: ttl_text(r.record.ttl), sort_key=lambda r: r.record.ttl, right=True),
    Column("Points to", lambda r: r.check.text, tooltip=_points_to_tip,
           sort_key=lambda r: ("0" if r.check.stray else "1") + r.check.text),
    Column("Comment", lambda r: r.record.comment or ""),
)
POINTS_TO = 5


class DnsRecordsModel(RowsModel):
    columns = DNS_COLUMNS

    def set_records(self, records: Sequence[DnsRecord], addresses: dict[str, tuple[str, ...]], zone: str) -> None:
        self.set_rows([DnsRow(r, check_record(r, addresses), zone) for r in records])

    def record_at(self, row: int) -> DnsRecord | None:
        found = self.row_at(row)
        return found.record if isinstance(found, DnsRow) else None

    def row_of(self, record_id: str) -> int:
        return next((n for n, r in enumerate(self._rows) if r.record.id == record_id), -1)

    @property
    def stray_count(self) -> int:
        return sum(1 for r in self._rows if r.check.stray)

    def foreground(self, row: DnsRow, column: int) -> QColor | None:
        if row.check.stray and column in (2, POINTS_TO):
            return QColor(STATE_COLOURS["CRITICAL"])
        return None

    def background(self, row: DnsRow, column: int) -> QColor | None:
        if row.check.stray:
            tint = QColor(FLAG_BACKGROUND)
            tint.setAlpha(40)
            return tint
        return None


class DnsFilter(SortingProxy):
    """Text over every column, one record type, or only the records outside the inventory."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.record_type = ""
        self.only_stray = False

    def set_type(self, record_type: str) -> None:
        self.beginFilterChange()
        self.record_type = record_type
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_only_stray(self, only: bool) -> None:
        self.beginFilterChange()
        self.only_stray = only
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def accepts(self, row: DnsRow) -> bool:
        if self.record_type and row.record.type != self.record_type:
            return False
        return not self.only_stray or row.check.stray


# -- firewall ----------------------------------------------------------------------------------------

FIREWALL_COLUMNS = (
    Column("When", lambda e: when(e.occurred_at, seconds=True), sort_key=lambda e: stamp(e.occurred_at)),
    Column("Action", lambda e: e.action),
    Column("Source", lambda e: e.source),
    Column("Client IP", lambda e: e.client_ip),
    Column("Country", lambda e: e.country),
    Column("Method", lambda e: e.method),
    Column("Path", lambda e: e.path, tooltip=lambda e: e.user_agent),
    Column("Ray ID", lambda e: e.ray_id),
)


class FirewallEventsModel(RowsModel):
    columns = FIREWALL_COLUMNS

    def set_events(self, events: Sequence[FirewallEvent]) -> None:
        self.set_rows(events)

    def foreground(self, row: FirewallEvent, column: int) -> QColor | None:
        if column == 1 and row.action == "block":
            return QColor(STATE_COLOURS["CRITICAL"])
        return None
