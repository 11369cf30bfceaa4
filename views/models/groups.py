"""The Groups table: every group of every server, fetched in pages and merged in one sorted list.

The model never holds more than the rows the view scrolled to. Each server is a *cursor* that
fetches pages (``list_groups`` with offset and limit, on a worker) in the model's order; the
model merges the cursors' heads into one list, taking a row only while every server that still
has rows has one buffered, so the merged order is the same as one big sorted query. When the
view nears the end, ``fetchMore`` asks the servers whose buffers ran dry for their next page.

A new search or sort starts a new *generation*: the jobs of the previous one are cancelled and
their late answers are dropped.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor

from services.cancel import CancelToken
from services.errors import Cancelled, PanelError
from services.groups import GroupPage, GroupRow
from views.models.table import RIGHT_ALIGNED, ListTableModel
from views.style import STATE_COLOURS
from views.workers import Job, JobContext, JobRunner

COLUMNS = ("ID", "Name", "Server", "Members", "Created", "State", "Data rows")
COLUMN_ORDER = ("id", "name", "server", "members", "created", "suspended", "data_rows")
ID, NAME, SERVER, MEMBERS, CREATED, STATE, ROWS = range(len(COLUMNS))
FIRST_PAGE = 200
PAGE = 1000
_Index = QModelIndex | QPersistentModelIndex

# fetch(server, search, offset, limit, order_by, cancel) -> GroupPage; runs on a worker thread.
FetchPage = Callable[[str, "str | None", int, int, str, CancelToken], GroupPage]


def _text_key(text: str) -> str:
    """Close to MySQL's *_unicode_ci order (case-insensitive) for merging the servers' pages."""
    return text.casefold()


def merge_key(order_key: str) -> Callable[[GroupRow], Any]:
    """The Python key that sorts rows as ``list_groups(order_by=order_key)`` does (NULLs first, then id)."""
    if order_key == "id":
        return lambda r: r.id
    if order_key == "name":
        return lambda r: (_text_key(r.name), r.id)
    if order_key == "server":
        return lambda r: (r.server, _text_key(r.name), r.id)
    if order_key == "created":
        return lambda r: (r.created is not None, r.created or datetime.min, r.id)
    if order_key == "suspended":
        return lambda r: (r.suspended is not None, r.suspended or datetime.min, r.id)
    if order_key == "members":
        return lambda r: (r.members, r.id)
    if order_key == "data_rows":
        return lambda r: (r.data_rows, r.id)
    raise ValueError(f"cannot sort groups by {order_key!r}")


@dataclass(eq=False)
class _Cursor:
    server: str
    offset: int = 0  # the next page starts here
    total: int | None = None  # groups matching on this server; None until the first page arrives
    buffer: deque[GroupRow] = field(default_factory=deque)
    job: Job | None = None
    error: PanelError | None = None

    @property
    def exhausted(self) -> bool:
        """Every page was fetched (the buffer may still hold rows)."""
        return self.total is not None and self.offset >= self.total

    @property
    def done(self) -> bool:
        return self.error is not None or (self.exhausted and not self.buffer)

    @property
    def blocking(self) -> bool:
        """The merge waits for this server's next page."""
        return self.error is None and not self.buffer and not self.exhausted


def format_when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value else ""


def state_text(row: GroupRow) -> str:
    return f"suspended {format_when(row.suspended)}" if row.suspended else "active"


class GroupsModel(QAbstractTableModel):
    """Rows of :class:`~services.groups.GroupRow`, merged from every server, fetched as the view scrolls."""

    loading_changed = Signal(bool)
    progress = Signal()  # rows arrived or a server answered: counts changed
    server_failed = Signal(str, object)  # server, PanelError
    generation_loaded = Signal(int)  # every server answered the first page of this generation

    def __init__(self, runner: JobRunner, fetch: FetchPage, servers: Sequence[str] = (), parent: QObject | None = None,
                 *, first_page: int = FIRST_PAGE, page: int = PAGE) -> None:
        super().__init__(parent)
        self.runner = runner
        self.fetch = fetch
        self.servers: list[str] = list(servers)
        self.first_page = first_page
        self.page = page
        self.search: str | None = None
        self.order_key = "name"
        self.descending = False
        self.generation = 0
        self.requests = 0  # pages asked for, over the model's life (for tests and the bench)
        self.cancelled_jobs = 0
        self._rows: list[GroupRow] = []
        self._cursors: list[_Cursor] = []
        self._wanted = 0
        self._notes: dict[tuple[str, int], str] = {}
        self._loading = False
        self._first_answers: set[str] = set()
        self.started = False  # nothing is fetched before start() (the page calls it when first shown)

    # --- what is shown -----------------------------------------------------------------------------------

    @property
    def order_by(self) -> str:
        """The services' ``order_by`` for each server's query."""
        key = "name" if self.order_key == "server" else self.order_key
        return ("-" if self.descending else "") + key

    @property
    def loaded(self) -> int:
        return len(self._rows)

    @property
    def total(self) -> int:
        """Groups matching, over every server that answered."""
        return sum(c.total or 0 for c in self._cursors if c.error is None)

    @property
    def totals_known(self) -> bool:
        return all(c.total is not None or c.error is not None for c in self._cursors)

    @property
    def errors(self) -> dict[str, PanelError]:
        return {c.server: c.error for c in self._cursors if c.error is not None}

    @property
    def is_loading(self) -> bool:
        return any(c.job is not None for c in self._cursors)

    def row_at(self, row: int) -> GroupRow | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def row_of(self, server: str, group_id: int) -> int:
        for number, row in enumerate(self._rows):
            if row.id == group_id and row.server == server:
                return number
        return -1

    def rows(self) -> list[GroupRow]:
        return list(self._rows)

    # --- what to show --------------------------------------------------------------------------------------

    def set_servers(self, servers: Sequence[str]) -> None:
        self.servers = list(servers)
        self.reload()

    def set_search(self, text: str | None) -> None:
        text = (text or "").strip() or None
        if text == self.search and self._cursors:
            return
        self.search = text
        self.reload()

    def set_order(self, order_key: str, descending: bool = False) -> None:
        merge_key(order_key)  # refuses an unknown key
        self.order_key = order_key
        self.descending = descending
        self.reload()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if 0 <= column < len(COLUMN_ORDER):
            descending = order == Qt.SortOrder.DescendingOrder
            if (COLUMN_ORDER[column], descending) != (self.order_key, self.descending) or not self._cursors:
                self.set_order(COLUMN_ORDER[column], descending)

    def start(self) -> None:
        """Fetch the first pages (once; later calls do nothing)."""
        if not self.started:
            self.started = True
            self.reload()

    def reload(self) -> None:
        """Start a new generation: cancel what is under way and fetch the first page of every server."""
        if not self.started:
            return
        self.generation += 1
        for cursor in self._cursors:
            if cursor.job is not None:
                cursor.job.cancel.cancel()
                self.cancelled_jobs += 1
                cursor.job = None
        self.beginResetModel()
        self._rows = []
        self._cursors = [_Cursor(server) for server in self.servers]
        self._wanted = self.first_page
        self._first_answers = set()
        self.endResetModel()
        for cursor in self._cursors:
            if cursor.job is None:  # a view (or a model tester) may have asked already, from endResetModel
                self._request(cursor, self.first_page)
        self._loading_maybe_changed()
        self.progress.emit()

    def set_note(self, server: str, group_id: int, note: str | None) -> None:
        """A transient word in the State column ("moving…", "suspending…"); None clears it."""
        if note:
            self._notes[(server, group_id)] = note
        else:
            self._notes.pop((server, group_id), None)
        number = self.row_of(server, group_id)
        if number >= 0:
            self.dataChanged.emit(self.index(number, STATE), self.index(number, STATE))

    def update_row(self, server: str, group_id: int, /, **changes: Any) -> GroupRow | None:
        """Change a shown row in place (after a suspend, or a move to another server)."""
        number = self.row_of(server, group_id)
        if number < 0:
            return None
        row = dataclasses.replace(self._rows[number], **changes)
        self._rows[number] = row
        self.dataChanged.emit(self.index(number, 0), self.index(number, len(COLUMNS) - 1))
        return row

    # --- fetching ---------------------------------------------------------------------------------------------

    def _request(self, cursor: _Cursor, limit: int) -> None:
        generation, server, search, order = self.generation, cursor.server, self.search, self.order_by
        offset, fetch = cursor.offset, self.fetch
        self.requests += 1
        word = f" matching {search!r}" if search else ""

        def work(job: JobContext) -> GroupPage:
            page = fetch(server, search, offset, limit, order, job.cancel)
            job.cancel.raise_if_cancelled(f"Listing the groups of {server}")
            return page

        cursor.job = self.runner.submit(
            f"Listing groups{word} on {server}", work, timeout=90,
            on_success=lambda page: self._arrived(generation, cursor, page),
            on_error=lambda error: self._failed(generation, cursor, error))

    def _arrived(self, generation: int, cursor: _Cursor, page: GroupPage) -> None:
        if generation != self.generation:
            return
        cursor.job = None
        cursor.error = None
        cursor.offset += len(page.rows)
        cursor.total = page.total if page.rows else cursor.offset  # an empty page ends this server's list
        cursor.buffer.extend(page.rows)
        self._first_answers.add(cursor.server)
        self._drain()
        self._continue()
        self._loading_maybe_changed()
        self.progress.emit()
        self._maybe_generation_loaded()

    def _failed(self, generation: int, cursor: _Cursor, error: PanelError) -> None:
        if generation != self.generation:
            return
        cursor.job = None
        if isinstance(error, Cancelled):
            return
        cursor.error = error
        self._first_answers.add(cursor.server)
        self.server_failed.emit(cursor.server, error)
        self._drain()  # the other servers' rows no longer wait for this one
        self._continue()
        self._loading_maybe_changed()
        self.progress.emit()
        self._maybe_generation_loaded()

    def _maybe_generation_loaded(self) -> None:
        if len(self._first_answers) == len(self._cursors) and not self.is_loading:
            self.generation_loaded.emit(self.generation)

    def _drain(self) -> None:
        """Append every row whose place in the merged order is certain."""
        key = merge_key(self.order_key)
        pick = max if self.descending else min
        batch: list[GroupRow] = []
        live = [c for c in self._cursors if c.error is None]
        while live and not any(c.blocking for c in live):
            heads = [c for c in live if c.buffer]
            if not heads:
                break
            if len(heads) == 1:
                batch.extend(heads[0].buffer)
                heads[0].buffer.clear()
                continue
            best = pick(heads, key=lambda c: key(c.buffer[0]))
            batch.append(best.buffer.popleft())
        if batch:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(batch) - 1)
            self._rows.extend(batch)
            self.endInsertRows()

    def _continue(self) -> None:
        """While fewer rows are shown than the view asked for, fetch the pages the merge waits for."""
        if len(self._rows) >= self._wanted:
            return
        for cursor in self._cursors:
            if cursor.blocking and cursor.job is None:
                self._request(cursor, self.page)

    def _loading_maybe_changed(self) -> None:
        loading = self.is_loading
        if loading != self._loading:
            self._loading = loading
            self.loading_changed.emit(loading)

    def canFetchMore(self, parent: _Index = QModelIndex()) -> bool:  # noqa: B008 - Qt's signature
        if parent.isValid():
            return False
        return any(not c.done for c in self._cursors)

    def fetchMore(self, parent: _Index = QModelIndex()) -> None:  # noqa: B008
        if parent.isValid():
            return
        self._wanted = max(self._wanted, len(self._rows) + self.page)
        self._continue()
        self._loading_maybe_changed()

    def fetch_all_loaded(self) -> bool:
        """True when every row of every server that answered is shown."""
        return all(c.done for c in self._cursors)

    # --- Qt's model interface --------------------------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(COLUMNS):
            if role == Qt.ItemDataRole.DisplayRole:
                return COLUMNS[section]
            if role == Qt.ItemDataRole.ToolTipRole and section == ROWS:
                return "Rows across every tenant table of the group"
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, column)
        if role == Qt.ItemDataRole.UserRole:
            return row
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (ID, MEMBERS, ROWS):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and column == STATE and row.suspended is not None:
            return QBrush(QColor(STATE_COLOURS["CRITICAL"]))
        if role == Qt.ItemDataRole.ToolTipRole and column == STATE and row.suspended is not None:
            return f"Suspended since {row.suspended:%Y-%m-%d %H:%M} UTC"
        return None

    def _display(self, row: GroupRow, column: int) -> str:
        if column == ID:
            return str(row.id)
        if column == NAME:
            return row.name
        if column == SERVER:
            return row.server
        if column == MEMBERS:
            return f"{row.members:,}"
        if column == CREATED:
            return format_when(row.created)
        if column == STATE:
            note = self._notes.get((row.server, row.id))
            return note or state_text(row)
        if column == ROWS:
            return f"{row.data_rows:,}"
        return ""


class RecordsModel(ListTableModel[tuple[tuple[str, ...], str]]):
    """A small read-only table of text (a group's members, its tables, its history); each row is its
    texts and its tooltip."""

    def __init__(self, columns: Sequence[str], parent: QObject | None = None, *,
                 right_aligned: Sequence[int] = ()) -> None:
        super().__init__(parent)
        self.columns = tuple(columns)
        self.right_aligned = frozenset(right_aligned)

    def set_rows(self, rows: Sequence[Sequence[object]], tips: Sequence[str] = ()) -> None:
        self.beginResetModel()
        texts = [tuple("" if v is None else str(v) for v in row) for row in rows]
        self._rows = [(row, tips[number] if number < len(tips) else "") for number, row in enumerate(texts)]
        self.endResetModel()

    def cell(self, row: tuple[tuple[str, ...], str], column: int, role: int) -> Any:
        texts, tip = row
        if role == Qt.ItemDataRole.DisplayRole and 0 <= column < len(texts):
            return texts[column]
        if role == Qt.ItemDataRole.ToolTipRole and tip:
            return tip
        if role == Qt.ItemDataRole.TextAlignmentRole and column in self.right_aligned:
            return RIGHT_ALIGNED
        return None
