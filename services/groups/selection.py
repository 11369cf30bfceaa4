"""Which rows belong to a group: its own row, the users its rows refer to, and its tenant rows."""

# SQL text is built from identifiers only (information_schema names and the config, quoted by
# sql.ident); every value goes in as a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from services.groups.schema import GroupSchema, Table
from services.groups.sql import checksum_select, ident, quote_label, union_all

Role = Literal["group", "users", "tenant"]


@dataclass(frozen=True)
class Part:
    """The slice of one table that belongs to a group: ``SELECT ... FROM table WHERE where``."""

    table: Table
    where: str  # SQL text with %s placeholders, built from identifiers only
    args: tuple[object, ...]
    role: Role

    @property
    def name(self) -> str:
        return self.table.name

    def checksum_columns(self, schema: GroupSchema) -> tuple[str, ...]:
        """Columns compared between servers; the group row leaves out its suspended column,
        which a move changes on purpose."""
        names = self.table.column_names
        if self.role == "group":
            return tuple(c for c in names if c != schema.spec.suspended)
        return names


def user_ids_sql(schema: GroupSchema) -> tuple[str, int]:
    """SQL listing the ids of the users the group's rows refer to, and how many times it takes the group id."""
    refs = schema.tenant_user_refs()
    if not refs:
        return "", 0
    fk = ident(schema.spec.fk)
    selects = [f"SELECT {ident(r.columns[0])} AS uid FROM {ident(r.table)} WHERE {fk} = %s "
               f"AND {ident(r.columns[0])} IS NOT NULL" for r in refs]
    return " UNION ".join(selects), len(refs)


def users_where(schema: GroupSchema) -> tuple[str, int]:
    """``pk IN (...)`` for the users the group's rows refer to, and how many group id parameters it takes.

    The id list is a derived table so the server materialises it once; a plain ``IN (... UNION ...)``
    runs as a dependent subquery for every user of the server.
    """
    sql, n = user_ids_sql(schema)
    if not n or schema.users is None:
        return "", 0
    return f"{ident(schema.users.primary_key[0])} IN (SELECT uid FROM ({sql}) AS ids)", n


def group_parts(schema: GroupSchema, group_id: int) -> list[Part]:
    """The group's rows in insert order: the group row, its users (every user the group's rows
    refer to), then tenant tables parents first."""
    spec = schema.spec
    parts = [Part(schema.groups, f"{ident(spec.key)} = %s", (group_id,), "group")]
    if schema.users is not None:
        where, n = users_where(schema)
        if n:
            parts.append(Part(schema.users, where, (group_id,) * n, "users"))
    for table in schema.tenant:
        parts.append(Part(table, f"{ident(spec.fk)} = %s", (group_id,), "tenant"))
    return parts


def count_sql(parts: Sequence[Part]) -> tuple[str, list[object]]:
    """One query returning (table, rows) for every part."""
    selects = []
    args: list[object] = []
    for part in parts:
        selects.append(f"SELECT {quote_label(part.name)}, COUNT(*) FROM {ident(part.name)} WHERE {part.where}")
        args.extend(part.args)
    return union_all(selects), args


def checksums_sql(schema: GroupSchema, parts: Sequence[Part], *, lock: bool = False) -> tuple[str, list[object]]:
    """One query returning (table, rows, sum, xor) for every part (see :func:`sql.checksum_select`)."""
    selects = []
    args: list[object] = []
    for part in parts:
        selects.append(checksum_select(part.name, part.name, part.checksum_columns(schema), part.where,
                                       lock=lock))
        args.extend(part.args)
    return union_all(selects), args

