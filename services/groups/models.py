"""The dataclasses the groups feature returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class GroupRow:
    id: int
    name: str
    server: str
    members: int
    created: datetime | None
    suspended: datetime | None  # when it was suspended; None while active
    data_rows: int  # rows across every tenant table

    @property
    def is_suspended(self) -> bool:
        return self.suspended is not None


@dataclass(frozen=True)
class GroupPage:
    rows: tuple[GroupRow, ...]
    total: int  # groups matching the search, over every page
    offset: int
    limit: int
    server: str
    search: str | None = None
    order_by: str = "name"

    @property
    def has_more(self) -> bool:
        return self.offset + len(self.rows) < self.total


@dataclass(frozen=True)
class Member:
    user_id: int
    email: str
    name: str | None = None
    role: str | None = None
    joined: datetime | None = None


@dataclass(frozen=True)
class TableCount:
    table: str
    rows: int


@dataclass(frozen=True)
class GroupDetail:
    id: int
    name: str
    server: str
    created: datetime | None
    suspended: datetime | None
    members: tuple[Member, ...]
    tables: tuple[TableCount, ...]  # every tenant table, parents first

    @property
    def is_suspended(self) -> bool:
        return self.suspended is not None

    @property
    def data_rows(self) -> int:
        return sum(t.rows for t in self.tables)


@dataclass(frozen=True)
class GroupState:
    id: int
    name: str
    server: str
    suspended: datetime | None
    changed: bool  # False when it already was in the asked state

    @property
    def is_suspended(self) -> bool:
        return self.suspended is not None
