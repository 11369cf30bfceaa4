"""Item models of the Backups page: the repositories, a repository's sessions, and file changes.

All three are plain QAbstractTableModel subclasses over Python lists. The sessions model formats its
rows once when they are set (not in ``data``), and sorts its list itself, so a repository of 1,000+
sessions shows and sorts at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from panel.backups import human_age, human_size
from services.backups import FileChange, Repository, RepoTarget, Session
from services.backups.models import iso_utc
from views.style import STATE_COLOURS, dot_icon

_Index = QModelIndex | QPersistentModelIndex
_DISPLAY = Qt.ItemDataRole.DisplayRole
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
GREEN, AMBER, RED, GREY = STATE_COLOURS["OK"], STATE_COLOURS["WARNING"], STATE_COLOURS["CRITICAL"], "#7f8c8d"
SortKey = Callable[[Any], Any]


def short_time(moment: Any) -> str:
    """``2026-03-01 02:30 UTC``: what a table cell shows (the tooltip has the full ISO 8601)."""
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def age_colour(repository: Repository) -> str | None:
    """Green within max_age_hours, amber past it, red past twice it (as the backup alert judges)."""
    age = repository.age_hours
    if age is None:
        return None
    if age <= repository.max_age_hours:
        return GREEN
    return RED if age > 2 * repository.max_age_hours else AMBER


# --- repositories -------------------------------------------------------------------------------------------

REPO_COLUMNS = ("Repository", "Where", "Newest session", "Age / max", "Sessions", "Total size", "Errors",
                "Regress", "Problem")
_REPO_TIPS = ("Whose backup, and its name in the config", "The host that holds it, and its path there",
              "When the newest backup run started", "How old the newest session is, against max_age_hours",
              "Sessions (restore points and runs) in the repository", "What the whole repository takes",
              "Files the last session could not back up", "Whether the last backup broke off and needs "
              "rdiff-backup regress", "Why the repository could not be read fully, or what needs you")
R_NAME, R_WHERE, R_NEWEST, R_AGE, R_SESSIONS, R_SIZE, R_ERRORS, R_REGRESS, R_PROBLEM = range(len(REPO_COLUMNS))


@dataclass
class RepoRow:
    target: RepoTarget
    repository: Repository | None = None
    reading: bool = False

    @property
    def label(self) -> str:
        return f"{self.target.server}/{self.target.spec.name}"

    @property
    def host(self) -> str:
        return self.target.host

    def colour(self) -> str:
        """The row's dot: red for a problem that hides the sessions or a needed regress, amber for a
        stale backup or errors in the last session, green when all is well."""
        repository = self.repository
        if repository is None:
            return GREY
        if not repository.readable or repository.needs_regress:
            return RED
        colour = age_colour(repository) or GREY
        if colour == GREEN and (repository.last_errors or repository.problem):
            return AMBER
        return colour


class RepositoriesModel(QAbstractTableModel):
    """One row per configured repository, known from the config before anything is read."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[RepoRow] = []

    def set_targets(self, targets: Sequence[RepoTarget]) -> None:
        """Rows for the config's repositories; what was already read for them stays."""
        known = {row.label: row for row in self._rows}
        self.beginResetModel()
        self._rows = []
        for target in targets:
            row = RepoRow(target)
            old = known.get(row.label)
            if old is not None and old.target == target:
                row.repository, row.reading = old.repository, old.reading
            self._rows.append(row)
        self.endResetModel()

    def rows(self) -> list[RepoRow]:
        return list(self._rows)

    def row_at(self, number: int) -> RepoRow | None:
        return self._rows[number] if 0 <= number < len(self._rows) else None

    def row_of(self, label: str) -> int:
        return next((n for n, row in enumerate(self._rows) if row.label == label), -1)

    def set_reading(self, labels: Sequence[str], reading: bool = True) -> None:
        for label in labels:
            number = self.row_of(label)
            if number >= 0:
                self._rows[number].reading = reading
                self._changed(number)

    def update(self, repository: Repository) -> None:
        number = self.row_of(f"{repository.server}/{repository.name}")
        if number < 0:
            return
        self._rows[number].repository = repository
        self._rows[number].reading = False
        self._changed(number)

    def _changed(self, number: int) -> None:
        self.dataChanged.emit(self.index(number, 0), self.index(number, len(REPO_COLUMNS) - 1))

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(REPO_COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = _DISPLAY) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(REPO_COLUMNS):
            return None
        if role == _DISPLAY:
            return REPO_COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return _REPO_TIPS[section]
        return None

    def data(self, index: _Index, role: int = _DISPLAY) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        column = index.column()
        if role == _DISPLAY:
            return self._display(row, column)
        if role == Qt.ItemDataRole.DecorationRole and column == R_NAME:
            return dot_icon(row.colour())
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._foreground(row, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row, column)
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (R_SESSIONS, R_SIZE, R_ERRORS):
            return _RIGHT
        if role == Qt.ItemDataRole.UserRole:
            return row.label
        return None

    def _display(self, row: RepoRow, column: int) -> str:
        repository = row.repository
        if column == R_NAME:
            return row.label
        if column == R_WHERE:
            where = "this laptop" if row.host == "local" else row.host
            return f"{where}:{row.target.spec.path}"
        if column == R_PROBLEM:
            if row.reading:
                return "reading…" if repository is None else f"reading again… {repository.problem or ''}".strip()
            if repository is None:
                return "not read yet"
            return repository.problem or ""
        if repository is None:
            return ""
        if column == R_NEWEST:
            return short_time(repository.newest)
        if column == R_AGE:
            if repository.age_hours is None:
                return ""
            return f"{human_age(repository.age_hours)} / {repository.max_age_hours:g} h"
        if column == R_SESSIONS:
            return str(len(repository.sessions)) if repository.sessions else "—"
        if column == R_SIZE:
            return human_size(repository.total_size) if repository.total_size is not None else ""
        if column == R_ERRORS:
            errors = repository.last_errors
            return "" if errors is None else str(errors)
        if column == R_REGRESS:
            if not repository.readable:
                return ""
            return "NEEDED" if repository.needs_regress else "no"
        return ""

    def _foreground(self, row: RepoRow, column: int) -> QBrush | None:
        repository = row.repository
        if repository is None:
            return None
        colour: str | None = None
        if column == R_AGE:
            colour = age_colour(repository)
        elif column == R_ERRORS and repository.last_errors:
            colour = AMBER
        elif column == R_REGRESS and repository.needs_regress:
            colour = RED
        elif column == R_PROBLEM and repository.problem:
            colour = RED if not repository.readable or repository.needs_regress else AMBER
        return QBrush(QColor(colour)) if colour else None

    def _tooltip(self, row: RepoRow, column: int) -> str | None:
        repository = row.repository
        if repository is None:
            return row.target.spec.path
        if column == R_NEWEST and repository.newest is not None:
            return iso_utc(repository.newest)
        if column == R_AGE:
            return {"fresh": "Fresh: the newest session is within max_age_hours.",
                    "stale": "STALE: the newest session is older than max_age_hours.",
                    "unknown": "No session could be read."}[repository.freshness]
        if column == R_REGRESS and repository.needs_regress:
            started = iso_utc(repository.broken_session) if repository.broken_session else "?"
            return f"The backup that started {started} broke off; rdiff-backup regress undoes it."
        texts = [t for t in (repository.problem, *repository.notes) if t]
        return "\n".join(texts) or f"{row.label}: {repository.path} on {repository.where}"


# --- sessions -------------------------------------------------------------------------------------------------

SESSION_COLUMNS = ("Time (UTC)", "Kind", "Size", "To restore", "Run wrote", "Files +/−/~", "Errors",
                   "Took")
S_TIME, S_KIND, S_SIZE, S_CUMULATIVE, S_INCREMENT, S_FILES, S_ERRORS, S_TOOK = range(len(SESSION_COLUMNS))
_SESSION_TIPS = (
    "When the backup run started",
    "mirror: the newest state; increment: a restore point; no changes: the run found nothing to back up",
    "What this point in time takes in the repository (rdiff-backup list increments --size)",
    "What restoring to this point needs: the mirror plus every increment back to it",
    "The increment data this run wrote (its session statistics)",
    "Files the run found new, deleted and changed",
    "Files the run could not back up",
    "How long the run took",
)


def _optional(value: int | float | None, text: Callable[[Any], str] = str) -> str:
    return "" if value is None else text(value)


def _kind(session: Session) -> str:
    if session.is_mirror:
        return "mirror (newest)"
    if session.listed is False:
        return "no changes"
    return "increment" if session.listed else "?"


def _files(session: Session) -> str:
    stats = session.stats
    if stats is None or (stats.new_files is None and stats.deleted_files is None and stats.changed_files is None):
        return ""
    return f"+{_optional(stats.new_files)} −{_optional(stats.deleted_files)} ~{_optional(stats.changed_files)}"


def _took(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _row_text(session: Session) -> tuple[str, ...]:
    approx = "~" if session.sizes_approximate else ""
    return (
        short_time(session.time),
        _kind(session),
        _optional(session.size, lambda v: approx + human_size(v)),
        _optional(session.cumulative_size, lambda v: approx + human_size(v)),
        _optional(session.increment_size, human_size),
        _files(session),
        _optional(session.errors),
        _took(session.stats.elapsed_seconds if session.stats else None),
    )


def _none_last(value: Any) -> tuple[bool, Any]:
    return (value is None, value if value is not None else 0)


_SORT_KEYS: tuple[SortKey, ...] = (
    lambda s: s.time,
    lambda s: (_kind(s), s.time),
    lambda s: _none_last(s.size),
    lambda s: _none_last(s.cumulative_size),
    lambda s: _none_last(s.increment_size),
    lambda s: _none_last(s.stats.changed_files if s.stats else None),
    lambda s: _none_last(s.errors),
    lambda s: _none_last(s.stats.elapsed_seconds if s.stats else None),
)


class SessionsModel(QAbstractTableModel):
    """A repository's sessions, newest first until the operator sorts otherwise."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._sessions: list[Session] = []
        self._texts: list[tuple[str, ...]] = []
        self._sort = (S_TIME, Qt.SortOrder.DescendingOrder)

    def set_sessions(self, sessions: Sequence[Session]) -> None:
        self.beginResetModel()
        column, order = self._sort
        self._sessions = sorted(sessions, key=_SORT_KEYS[column], reverse=order == Qt.SortOrder.DescendingOrder)
        self._texts = [_row_text(s) for s in self._sessions]
        self.endResetModel()

    def sessions(self) -> list[Session]:
        return list(self._sessions)

    def session_at(self, row: int) -> Session | None:
        return self._sessions[row] if 0 <= row < len(self._sessions) else None

    def row_of(self, session: Session) -> int:
        return next((n for n, s in enumerate(self._sessions) if s.time == session.time), -1)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._sessions)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(SESSION_COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = _DISPLAY) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(SESSION_COLUMNS):
            return None
        if role == _DISPLAY:
            return SESSION_COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return _SESSION_TIPS[section]
        return None

    def data(self, index: _Index, role: int = _DISPLAY) -> Any:
        if not index.isValid():
            return None
        row, column = index.row(), index.column()
        if not 0 <= row < len(self._sessions):
            return None
        if role == _DISPLAY:
            return self._texts[row][column]
        session = self._sessions[row]
        if role == Qt.ItemDataRole.ForegroundRole:
            if column == S_ERRORS and session.errors:
                return QBrush(QColor(AMBER))
            if column == S_KIND and session.is_mirror:
                return QBrush(QColor(GREEN))
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole and column not in (S_TIME, S_KIND):
            return _RIGHT
        if role == Qt.ItemDataRole.ToolTipRole and column == S_TIME:
            return iso_utc(session.time)
        if role == Qt.ItemDataRole.UserRole:
            return session
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(SESSION_COLUMNS):
            return
        self._sort = (column, order)
        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        old_sessions = [self._sessions[i.row()] if 0 <= i.row() < len(self._sessions) else None for i in old]
        pairs = sorted(zip(self._sessions, self._texts, strict=True), key=lambda p: _SORT_KEYS[column](p[0]),
                       reverse=order == Qt.SortOrder.DescendingOrder)
        self._sessions = [p[0] for p in pairs]
        self._texts = [p[1] for p in pairs]
        rows = {id(s): n for n, s in enumerate(self._sessions)}
        for index, session in zip(old, old_sessions, strict=True):
            if session is not None:
                self.changePersistentIndex(index, self.index(rows[id(session)], index.column()))
        self.layoutChanged.emit()


# --- file changes -------------------------------------------------------------------------------------------

CHANGE_COLUMNS = ("Path", "Change")
_KIND_COLOURS = {"added": GREEN, "removed": RED, "changed": AMBER}


class ChangesModel(QAbstractTableModel):
    """Files added, removed or changed; filter it with a QSortFilterProxyModel on the path."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._changes: list[FileChange] = []

    def set_changes(self, changes: Sequence[FileChange]) -> None:
        self.beginResetModel()
        self._changes = sorted(changes, key=lambda c: c.path)
        self.endResetModel()

    def changes(self) -> list[FileChange]:
        return list(self._changes)

    def counts(self) -> dict[str, int]:
        counts = {"added": 0, "removed": 0, "changed": 0}
        for change in self._changes:
            counts[change.kind] = counts.get(change.kind, 0) + 1
        return counts

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._changes)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(CHANGE_COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = _DISPLAY) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == _DISPLAY and 0 <= section < len(CHANGE_COLUMNS):
            return CHANGE_COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = _DISPLAY) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._changes):
            return None
        change = self._changes[index.row()]
        if role == _DISPLAY:
            return "/" + change.path if index.column() == 0 else change.kind
        if role == Qt.ItemDataRole.ForegroundRole and index.column() == 1:
            return QBrush(QColor(_KIND_COLOURS[change.kind]))
        if role == Qt.ItemDataRole.UserRole:
            return change
        return None
