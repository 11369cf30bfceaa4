"""What the panel knows about an rdiff-backup repository, as plain frozen dataclasses.

Every time is an aware ``datetime`` in UTC; :meth:`Repository.to_json` writes them as
ISO 8601 with a ``Z`` ("2026-03-01T02:30:00Z").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Freshness = Literal["fresh", "stale", "unknown"]
ChangeKind = Literal["added", "removed", "changed"]
CliFlavour = Literal["api201", "legacy"]


def iso_utc(moment: datetime) -> str:
    """``2026-03-01T02:30:00Z``: whole seconds unless the moment has a fraction."""
    moment = moment.astimezone(UTC)
    text = moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def as_utc(moment: datetime) -> datetime:
    """An aware datetime in UTC; a naive one is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def to_epoch(moment: datetime) -> int:
    """Whole seconds, as rdiff-backup takes them for ``--at``/``--older-than`` (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def jsonable(value: Any) -> Any:
    """Dataclasses, tuples and datetimes turned into JSON-ready values."""
    if isinstance(value, datetime):
        return iso_utc(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    return value


@dataclass(frozen=True)
class SessionStats:
    """One ``session_statistics.<time>.data`` file. A field the file lacks (truncated) is None."""

    start_time: datetime | None = None
    end_time: datetime | None = None
    elapsed_seconds: float | None = None
    source_files: int | None = None
    source_file_size: int | None = None
    mirror_files: int | None = None
    mirror_file_size: int | None = None
    new_files: int | None = None
    new_file_size: int | None = None
    deleted_files: int | None = None
    deleted_file_size: int | None = None
    changed_files: int | None = None
    changed_source_size: int | None = None
    changed_mirror_size: int | None = None
    increment_files: int | None = None
    increment_file_size: int | None = None
    total_destination_size_change: int | None = None
    errors: int | None = None
    complete: bool = False  # every field rdiff-backup writes was there, up to "Errors"


@dataclass(frozen=True)
class Session:
    """One backup run, as both ``list increments`` and the session statistics describe it."""

    time: datetime
    is_mirror: bool = False  # the newest session: the mirror itself, not an increment
    # rdiff-backup lists a session as a restore point only if it changed something; a run that
    # found nothing to do leaves statistics but no increment, and is still a backup that ran.
    # None: unknown (rdiff-backup could not list the repository; the statistics files could).
    listed: bool | None = True
    size: int | None = None  # bytes this point in time takes (listing "size"; the mirror's full size)
    cumulative_size: int | None = None  # bytes needed to restore to this point (listing "total_size")
    increment_size: int | None = None  # increment bytes this run wrote (statistics IncrementFileSize)
    errors: int | None = None  # files this run could not back up (statistics "Errors")
    stats: SessionStats | None = None
    stamp: str | None = None  # the time as rdiff-backup spells it in file names, for later look-ups
    sizes_approximate: bool = False  # sizes parsed from rounded text ("16.1 KB") of an old rdiff-backup


@dataclass(frozen=True)
class Repository:
    """One repository of one server, read where it lives. ``problem`` says why it could not be
    read fully, or what needs the operator (a broken-off backup); ``notes`` holds every remark."""

    server: str  # the server whose backup this is
    name: str  # the BackupSpec's name ("local", "offsite")
    where: str  # the host it was read on ("app1", "backup1", "this laptop")
    path: str
    via: str | None = None
    max_age_hours: float = 26.0
    read_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    sessions: tuple[Session, ...] = ()
    cli: CliFlavour | None = None  # which rdiff-backup command line answered
    needs_regress: bool = False  # two current_mirror markers: the last backup broke off
    broken_session: datetime | None = None  # when the run that broke off had started
    error_log_time: datetime | None = None  # the session whose error_log is in error_lines
    error_lines: tuple[str, ...] = ()  # the first lines of the newest error_log
    error_lines_total: int = 0  # how many lines that error_log has in all
    problem: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def newest(self) -> datetime | None:
        return max((s.time for s in self.sessions), default=None)

    @property
    def oldest(self) -> datetime | None:
        return min((s.time for s in self.sessions), default=None)

    @property
    def age_hours(self) -> float | None:
        newest = self.newest
        return None if newest is None else (self.read_at - newest).total_seconds() / 3600.0

    @property
    def freshness(self) -> Freshness:
        age = self.age_hours
        if age is None:
            return "unknown"
        return "fresh" if age <= self.max_age_hours else "stale"

    @property
    def total_size(self) -> int | None:
        """Bytes of the whole repository as rdiff-backup counts them: the oldest point's cumulative size."""
        sizes = [s.cumulative_size for s in self.sessions if s.listed and s.cumulative_size is not None]
        return max(sizes, default=None)

    @property
    def last_session(self) -> Session | None:
        return max(self.sessions, key=lambda s: s.time, default=None)

    @property
    def last_errors(self) -> int | None:
        """Errors of the newest session (from its statistics, else from its error_log)."""
        last = self.last_session
        if last is None:
            return None
        if last.errors is not None:
            return last.errors
        if self.error_log_time == last.time:
            return self.error_lines_total
        return None

    @property
    def readable(self) -> bool:
        return bool(self.sessions)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = jsonable(self)
        data.update(
            newest=jsonable(self.newest),
            oldest=jsonable(self.oldest),
            age_hours=None if self.age_hours is None else round(self.age_hours, 3),
            freshness=self.freshness,
            total_size=self.total_size,
            last_errors=self.last_errors,
            session_count=len(self.sessions),
        )
        return data


@dataclass(frozen=True)
class FileChange:
    path: str  # relative to the repository's root, as rdiff-backup prints it
    kind: ChangeKind


@dataclass(frozen=True)
class VerifyResult:
    at: datetime | None  # None: the newest backup
    ok: bool
    problems: tuple[str, ...] = ()  # rdiff-backup's ERROR and WARNING messages, one per entry
    cli: CliFlavour | None = None


@dataclass(frozen=True)
class RestoredCopy:
    """A restored file or folder in a fresh temporary folder on ``where`` (never a live path)."""

    where: str
    temp_dir: str  # the mktemp -d folder; hand it to cleanup_temp when done
    target: str  # temp_dir/<basename of the restored path>: what to copy to the laptop
    source_path: str  # the path inside the repository
    at: datetime | None
    local: bool  # True when where is this laptop (via="local"): no copying needed


@dataclass(frozen=True)
class RemovalResult:
    removed: tuple[Session, ...]
    forced: bool  # --force was given (more than one increment went)
    cli: CliFlavour | None = None
    output: str = ""
