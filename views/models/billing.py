"""Billing tables: Stripe customers joined to the SaaS's groups (tens of thousands of rows, appended
a page at a time while they load), the past_due and unpaid subscriptions with their failed
invoices, and recent failed payments.

The customers model filters and sorts itself, in plain Python over precomputed keys: a
QSortFilterProxyModel would call back into Python for every comparison, which over 10,000 rows
stalls the window for a noticeable moment on each page that arrives.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from services.stripe import Customer, DelinquentSubscription, Invoice, PaymentFailure
from services.vendors import STATUS_URGENCY, money
from views.models.cloudflare import Column, RowsModel, stamp, when
from views.style import STATE_COLOURS

_Index = QModelIndex | QPersistentModelIndex
PROBLEM_STATUSES = frozenset({"past_due", "unpaid", "incomplete"})
STATUS_COLOURS = {"unpaid": STATE_COLOURS["CRITICAL"], "past_due": STATE_COLOURS["WARNING"],
                  "incomplete": STATE_COLOURS["WARNING"], "active": STATE_COLOURS["OK"]}


def _urgency(status: str) -> int:
    return STATUS_URGENCY.index(status) if status in STATUS_URGENCY else len(STATUS_URGENCY) + (0 if status else 1)


# -- customers ---------------------------------------------------------------------------------------

# A customer row is a plain tuple of strings and numbers. Python's garbage collector stops tracking
# such tuples, so 10,000 loaded customers add nothing to its full collections, which otherwise scan
# every object while holding the GIL and stall the window for tens of milliseconds.
# The display texts are made here too, on the worker that reads the page, not while painting.
ID, NAME, EMAIL, GROUP_ID, SERVER, CREATED, IS_DELINQUENT, HAYSTACK, GROUP_TEXT, CREATED_TEXT, ORDER = range(11)
Row = tuple[Any, ...]


def customer_row(customer: Customer, order: int) -> Row:
    server = str(customer.metadata.get("server", ""))
    group_text = str(customer.group_id) if customer.group_id is not None else ""
    haystack = " ".join(filter(None, [customer.id, customer.name, customer.email, group_text, server])).lower()
    return (customer.id, customer.name or "", customer.email or "", customer.group_id, server,
            stamp(customer.created), bool(customer.delinquent), haystack, group_text, when(customer.created),
            order)


def row_customer(row: Row) -> Customer:
    """The Customer back from its row (for the selection, the dashboard link, the group)."""
    metadata = {"server": row[SERVER]} if row[SERVER] else {}
    if row[GROUP_ID] is not None:
        metadata["group_id"] = str(row[GROUP_ID])
    created = datetime.fromtimestamp(row[CREATED], UTC) if row[CREATED] else None
    return Customer(id=row[ID], email=row[EMAIL] or None, name=row[NAME] or None, group_id=row[GROUP_ID],
                    created=created, delinquent=row[IS_DELINQUENT], metadata=metadata)


CUSTOMER_COLUMNS = ("Customer", "Name", "Email", "Group", "Server", "Subscription", "Delinquent", "Created")
GROUP, SUBSCRIPTION, DELINQUENT = 3, 5, 6
_TEXT_FIELDS = {0: ID, 1: NAME, 2: EMAIL, GROUP: GROUP_TEXT, 4: SERVER, 7: CREATED_TEXT}
_DISPLAY, _USER = int(Qt.ItemDataRole.DisplayRole), int(Qt.ItemDataRole.UserRole)
_FOREGROUND, _TOOLTIP = int(Qt.ItemDataRole.ForegroundRole), int(Qt.ItemDataRole.ToolTipRole)
_ALIGNMENT = int(Qt.ItemDataRole.TextAlignmentRole)
_CUSTOMER_ROLES = frozenset({_DISPLAY, _USER, _FOREGROUND, _TOOLTIP, _ALIGNMENT})
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)


class CustomersModel(QAbstractTableModel):
    """Every customer loaded so far. ``append`` adds a page of rows where they belong (at the end,
    or at their sorted place); ``set_filter`` and ``sort`` work on plain Python lists."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._all: list[Row] = []
        self._known: set[str] = set()
        self._visible: list[Row] = []  # filtered, ascending by _keys
        self._keys: list[tuple[Any, int]] = []  # sort key of each visible row (parallel to _visible)
        self._statuses: dict[str, str] = {}  # customer id -> most urgent subscription status
        self.sort_column: int | None = None
        self.sort_order = Qt.SortOrder.AscendingOrder
        self._descending = False  # the view shows _visible from its end
        self.text = ""
        self.only_problems = False
        self._brushes = {status: QBrush(QColor(colour)) for status, colour in STATUS_COLOURS.items()}
        self._critical = QBrush(QColor(STATE_COLOURS["CRITICAL"]))

    # -- contents ---------------------------------------------------------------------------------

    @property
    def total(self) -> int:
        return len(self._all)

    def clear(self) -> None:
        self.beginResetModel()
        self._all.clear()
        self._known.clear()
        self._visible.clear()
        self._keys.clear()
        self._statuses.clear()
        self.endResetModel()

    def status(self, row: Row) -> str:
        return self._statuses.get(row[ID], "")

    def _sort_value(self, row: Row, column: int) -> Any:
        if column == 0:
            return row[ID]
        if column in (1, 2):
            return str(row[NAME if column == 1 else EMAIL]).lower()
        if column == GROUP:
            return row[GROUP_ID] if row[GROUP_ID] is not None else -1
        if column == 4:
            return row[SERVER]
        if column == SUBSCRIPTION:
            return _urgency(self.status(row))
        if column == DELINQUENT:
            return 0 if row[IS_DELINQUENT] else 1
        return -row[CREATED]

    def _key(self, row: Row) -> tuple[Any, int]:
        if self.sort_column is None:
            return (0, row[ORDER])
        return (self._sort_value(row, self.sort_column), row[ORDER])

    def _accepts(self, row: Row) -> bool:
        if self.only_problems and not (row[IS_DELINQUENT] or self.status(row) in PROBLEM_STATUSES):
            return False
        return not self.text or self.text in row[HAYSTACK]

    def _view_row(self, position: int) -> int:
        """The view's row of position ``position`` in the ascending list."""
        return len(self._visible) - 1 - position if self._descending else position

    def _row(self, view_row: int) -> Row:
        return self._visible[len(self._visible) - 1 - view_row] if self._descending else self._visible[view_row]

    def append(self, customers: Sequence[Customer]) -> int:
        """Add a page of customers; returns how many became visible."""
        return self.append_rows([customer_row(c, 0) for c in customers])

    def append_rows(self, rows: Sequence[Row]) -> int:
        """Add a page of rows made by :func:`customer_row` (on the worker: the Customer objects then
        never live long enough to reach the garbage collector's old generation)."""
        added = []
        for given in rows:
            if given[ID] in self._known:
                continue  # a page read twice (a retry after a lost answer) adds nothing
            row = (*given[:ORDER], len(self._all))
            self._all.append(row)
            self._known.add(row[ID])
            if self._accepts(row):
                added.append(row)
        if not added:
            return 0
        if self.sort_column is None:
            first = len(self._visible)
            self.beginInsertRows(QModelIndex(), first, first + len(added) - 1)
            self._visible.extend(added)
            self._keys.extend(self._key(r) for r in added)
            self.endInsertRows()
            return len(added)
        # Sorted: insert each run of new rows that lands in one place with one begin/endInsertRows
        # (a page sorted by creation time is one run; a random order a run per row at worst).
        pairs = sorted(((self._key(r), r) for r in added), key=lambda pair: pair[0])
        runs: list[tuple[int, list[tuple[tuple[Any, int], Row]]]] = []
        for key, row in pairs:
            position = bisect.bisect_left(self._keys, key)
            if runs and runs[-1][0] == position:
                runs[-1][1].append((key, row))
            else:
                runs.append((position, [(key, row)]))
        descending = self._descending
        for position, run in reversed(runs):  # from the end, so earlier positions stay right
            count = len(run)
            first = len(self._visible) - position if descending else position
            self.beginInsertRows(QModelIndex(), first, first + count - 1)
            self._keys[position:position] = [k for k, _ in run]
            self._visible[position:position] = [r for _, r in run]
            self.endInsertRows()
        return len(added)

    def set_statuses(self, statuses: dict[str, str]) -> None:
        """Join each customer's most urgent subscription status (from the subscriptions load)."""
        self._statuses = dict(statuses)
        if self.only_problems or self.sort_column == SUBSCRIPTION:
            self._rebuild()
        elif self._visible:
            self.dataChanged.emit(self.index(0, SUBSCRIPTION), self.index(len(self._visible) - 1, SUBSCRIPTION))

    def set_filter(self, text: str, only_problems: bool) -> None:
        self.text = text.strip().lower()
        self.only_problems = only_problems
        self._rebuild()

    def _rebuild(self) -> None:
        self.beginResetModel()
        self._place([r for r in self._all if self._accepts(r)])
        self.endResetModel()

    def _place(self, rows: list[Row]) -> None:
        pairs = sorted(((self._key(r), r) for r in rows), key=lambda pair: pair[0])
        self._keys = [k for k, _ in pairs]
        self._visible = [r for _, r in pairs]

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(CUSTOMER_COLUMNS):
            return
        self.layoutAboutToBeChanged.emit()
        before = self.persistentIndexList()
        rows_before = [(self._row(i.row())[ORDER], i.column()) if 0 <= i.row() < len(self._visible) else None
                       for i in before]
        self.sort_column, self.sort_order = column, order
        self._descending = order == Qt.SortOrder.DescendingOrder
        self._place(list(self._visible))
        where = {r[ORDER]: n for n, r in enumerate(self._visible)}
        after = []
        for found in rows_before:
            if found is None:
                after.append(QModelIndex())
                continue
            order_number, col = found
            after.append(self.index(self._view_row(where[order_number]), col))
        self.changePersistentIndexList(before, after)
        self.layoutChanged.emit()

    # -- lookups ----------------------------------------------------------------------------------

    def customer_at(self, view_row: int) -> Customer | None:
        return row_customer(self._row(view_row)) if 0 <= view_row < len(self._visible) else None

    def row_of(self, customer_id: str) -> int:
        for n in range(len(self._visible)):
            if self._row(n)[ID] == customer_id:
                return n
        return -1

    # -- Qt ---------------------------------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._visible)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(CUSTOMER_COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole and \
                0 <= section < len(CUSTOMER_COLUMNS):
            return CUSTOMER_COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # Called for every visible cell and role on each repaint: the cheap answers come first.
        if role not in _CUSTOMER_ROLES:
            return None
        number, column = index.row(), index.column()
        count = len(self._visible)
        if not 0 <= number < count or not 0 <= column < len(CUSTOMER_COLUMNS):
            return None
        row = self._visible[count - 1 - number] if self._descending else self._visible[number]
        if role == _DISPLAY:
            field = _TEXT_FIELDS.get(column)
            if field is not None:
                return row[field]
            if column == SUBSCRIPTION:
                return self._statuses.get(row[ID]) or "—"
            return "delinquent" if row[IS_DELINQUENT] else ""
        if role == _FOREGROUND:
            if column == SUBSCRIPTION:
                return self._brushes.get(self._statuses.get(row[ID], ""))
            if column == DELINQUENT and row[IS_DELINQUENT]:
                return self._critical
            return None
        if role == _USER:
            return row[ID]
        if role == _ALIGNMENT:
            return _RIGHT if column == GROUP else None
        if column == GROUP and row[GROUP_ID] is not None:
            return "Double-click to show this group"
        return None


# -- past_due and unpaid subscriptions ------------------------------------------------------------


@dataclass(frozen=True)
class DelinquentRow:
    """One failed (open) invoice of a past_due or unpaid subscription; a subscription without an
    open invoice gets one row with ``invoice`` None."""

    entry: DelinquentSubscription
    invoice: Invoice | None
    group_id: int | None

    @property
    def status(self) -> str:
        return self.entry.subscription.status


def delinquent_rows(entries: Sequence[DelinquentSubscription]) -> list[DelinquentRow]:
    rows: list[DelinquentRow] = []
    for entry in entries:
        group = entry.subscription.group_id
        invoices: tuple[Invoice | None, ...] = entry.failed_invoices or (None,)
        rows.extend(DelinquentRow(entry, invoice, group) for invoice in invoices)
    return rows


def _amount(row: DelinquentRow) -> str:
    invoice = row.invoice
    return money(invoice.amount_remaining, invoice.currency) if invoice else ""


DELINQUENT_COLUMNS = (
    Column("Status", lambda r: r.status, sort_key=lambda r: _urgency(r.status)),
    Column("Subscription", lambda r: r.entry.subscription.id),
    Column("Customer", lambda r: r.entry.subscription.customer_id),
    Column("Group", lambda r: str(r.group_id) if r.group_id is not None else "",
           sort_key=lambda r: r.group_id if r.group_id is not None else -1, right=True),
    Column("Failed invoice", lambda r: r.invoice.id if r.invoice else "no open invoice"),
    Column("Amount due", _amount, sort_key=lambda r: r.invoice.amount_remaining if r.invoice else 0, right=True),
    Column("Attempts", lambda r: str(r.invoice.attempt_count) if r.invoice else "",
           sort_key=lambda r: r.invoice.attempt_count if r.invoice else 0, right=True),
    Column("Next attempt", lambda r: when(r.invoice.next_payment_attempt) if r.invoice and
           r.invoice.next_payment_attempt else ("none: Stripe gave up" if r.status == "unpaid" else ""),
           sort_key=lambda r: stamp(r.invoice.next_payment_attempt) if r.invoice else 0.0),
)


class DelinquentModel(RowsModel):
    columns = DELINQUENT_COLUMNS

    def set_entries(self, entries: Sequence[DelinquentSubscription]) -> None:
        self.set_rows(delinquent_rows(entries))

    def row_of_invoice(self, invoice_id: str) -> int:
        return next((n for n, r in enumerate(self._rows) if r.invoice and r.invoice.id == invoice_id), -1)

    def foreground(self, row: DelinquentRow, column: int) -> QColor | None:
        if column == 0 and row.status in STATUS_COLOURS:
            return QColor(STATUS_COLOURS[row.status])
        return None


# -- failed payments ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailureRow:
    failure: PaymentFailure
    group_id: int | None


FAILURE_COLUMNS = (
    Column("When", lambda r: when(r.failure.occurred_at), sort_key=lambda r: stamp(r.failure.occurred_at)),
    Column("Invoice", lambda r: r.failure.invoice_id),
    Column("Customer", lambda r: r.failure.customer_id),
    Column("Group", lambda r: str(r.group_id) if r.group_id is not None else "",
           sort_key=lambda r: r.group_id if r.group_id is not None else -1, right=True),
    Column("Amount", lambda r: money(r.failure.amount_due, r.failure.currency),
           sort_key=lambda r: r.failure.amount_due, right=True),
    Column("Attempt", lambda r: str(r.failure.attempt_count), sort_key=lambda r: r.failure.attempt_count,
           right=True),
    Column("Next attempt", lambda r: when(r.failure.next_payment_attempt),
           sort_key=lambda r: stamp(r.failure.next_payment_attempt)),
)


class PaymentFailuresModel(RowsModel):
    columns = FAILURE_COLUMNS

    def set_failures(self, failures: Sequence[PaymentFailure], groups: dict[str, int]) -> None:
        """``groups``: subscription id -> group id."""
        self.set_rows([FailureRow(f, groups.get(f.subscription_id or "")) for f in failures])
