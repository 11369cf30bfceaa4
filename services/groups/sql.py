"""Pure helpers that build SQL text. No I/O here, so they are property-tested.

Only identifiers that come from ``information_schema`` or the config are ever put into
SQL text, and always through :func:`ident`; every value goes in as a bound parameter.
"""

# SQL text is built from identifiers only (information_schema names and the config, quoted by
# sql.ident); every value goes in as a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from services.groups.errors import SchemaError

BINARY_TYPES = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob",
                          "geometry", "point", "linestring", "polygon", "multipoint",
                          "multilinestring", "multipolygon", "geometrycollection"})


def ident(name: str) -> str:
    """Quote a MySQL identifier with backticks (a backtick inside is doubled)."""
    if not name or "\0" in name:
        raise SchemaError(f"{name!r} is not a valid table or column name.")
    return "`" + name.replace("`", "``") + "`"


def qualified(table: str, column: str) -> str:
    return f"{ident(table)}.{ident(column)}"


def like_escape(text: str) -> str:
    """Escape LIKE's wildcards so ``text`` matches itself (the default escape character is ``\\``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def like_contains(text: str) -> str:
    return f"%{like_escape(text)}%"


@dataclass(frozen=True)
class Search:
    """What a search box text means: an id (when it is a number) and a substring of names and emails."""

    text: str
    group_id: int | None
    id_only: bool = False  # "#42" means the group with id 42, nothing else

    @property
    def pattern(self) -> str:
        """Names match anywhere."""
        return like_contains(self.text)

    @property
    def email_pattern(self) -> str:
        """Emails match from their start (``wile.coy``), which an index serves, or by domain
        (``@acme.example``), which scans every email."""
        if self.text.startswith("@"):
            return like_contains(self.text)
        return like_escape(self.text) + "%"


def parse_search(text: str | None) -> Search | None:
    """None for an empty search. ``42`` matches group id 42 and names or emails containing 42;
    ``#42`` matches only group id 42."""
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    digits = text[1:] if text.startswith("#") else text
    group_id = int(digits) if digits.isascii() and digits.isdigit() and len(digits) <= 18 else None
    if text.startswith("#") and group_id is not None:
        return Search(text=digits, group_id=group_id, id_only=True)
    return Search(text=text, group_id=group_id)


ORDER_KEYS = ("id", "name", "created", "suspended", "members", "data_rows")


@dataclass(frozen=True)
class Order:
    key: str
    descending: bool

    def __str__(self) -> str:
        return ("-" if self.descending else "") + self.key


def parse_order(order_by: str) -> Order:
    """``"name"``, ``"-created"`` (descending), ``"members desc"``... into an :class:`Order`."""
    text = order_by.strip().lower()
    descending = False
    if text.startswith("-"):
        descending, text = True, text[1:].strip()
    else:
        parts = text.split()
        if len(parts) == 2 and parts[1] in ("asc", "desc"):
            text, descending = parts[0], parts[1] == "desc"
    if text not in ORDER_KEYS:
        raise ValueError(f"Cannot sort groups by {order_by!r}; choose one of {', '.join(ORDER_KEYS)} "
                         "(prefix with - for descending).")
    return Order(text, descending)


def value_literal_expr(column: str, data_type: str) -> str:
    """A SQL expression that renders ``column`` as a one-line SQL literal that inserts back the same value.

    It relies on backslash escapes, so sessions never run with NO_BACKSLASH_ESCAPES (see endpoint).
    """
    col = ident(column)
    data_type = data_type.lower()
    if data_type == "bit":
        return f"IF({col} IS NULL, 'NULL', CAST({col} + 0 AS CHAR))"
    if data_type in BINARY_TYPES:
        return f"IF({col} IS NULL, 'NULL', CONCAT('X''', HEX({col}), ''''))"
    # QUOTE leaves line breaks raw; escape them so that every statement fits on one line.
    return f"REPLACE(REPLACE(QUOTE({col}), '\\n', '\\\\n'), '\\r', '\\\\r')"


def tuple_expr(columns: Sequence[tuple[str, str]]) -> str:
    """``CONCAT('(', lit(a), ',', lit(b), ')')`` for (name, data_type) pairs: one VALUES tuple per row."""
    if not columns:
        raise SchemaError("A table without columns cannot be copied.")
    parts = ", ',', ".join(value_literal_expr(name, data_type) for name, data_type in columns)
    return f"CONCAT('(', {parts}, ')')"


def row_hash_expr(columns: Sequence[str]) -> str:
    """MD5 over an unambiguous rendering of the row (QUOTE keeps NULL apart from the text 'NULL')."""
    if not columns:
        raise SchemaError("A table without columns cannot be checksummed.")
    return "MD5(CONCAT_WS(',', " + ", ".join(f"QUOTE({ident(c)})" for c in columns) + "))"


def checksum_select(label: str, table: str, columns: Sequence[str], where: str, *, lock: bool = False) -> str:
    """One row: label, row count, SUM of the first 64 bits and XOR of the last 64 bits of each row's MD5.

    Order-independent and computed by the server, so both sides of a move compare with one query
    each. ``where`` is SQL text built by the caller from identifiers and ``%s`` placeholders only.
    ``lock`` takes exclusive locks on the rows (and the gaps around them) until the transaction ends.
    """
    h = row_hash_expr(columns)
    return (
        f"SELECT {quote_label(label)} AS t, COUNT(*) AS n, "
        f"COALESCE(SUM(CAST(CONV(SUBSTRING(h, 1, 16), 16, 10) AS UNSIGNED)), 0) AS s, "
        f"COALESCE(BIT_XOR(CAST(CONV(SUBSTRING(h, 17, 16), 16, 10) AS UNSIGNED)), 0) AS x "
        f"FROM (SELECT {h} AS h FROM {ident(table)} WHERE {where}{' FOR UPDATE' if lock else ''}) AS rows_"
    )


def quote_label(label: str) -> str:
    """A string literal for a label we chose ourselves (a table name): quotes and backslashes escaped."""
    return "'" + label.replace("\\", "\\\\").replace("'", "''") + "'"


def union_all(selects: Iterable[str]) -> str:
    return "\nUNION ALL\n".join(f"({s})" for s in selects)


def batches(prefix: str, values: Iterable[str], max_bytes: int) -> Iterator[str]:
    """Group ``values`` (VALUES tuples) into statements ``prefix + v1,v2,...`` of at most ``max_bytes``.

    A single tuple larger than ``max_bytes`` still gets a statement of its own.
    """
    current: list[str] = []
    size = len(prefix.encode())
    for value in values:
        n = len(value.encode()) + 1
        if current and size + n > max_bytes:
            yield prefix + ",".join(current)
            current, size = [], len(prefix.encode())
        current.append(value)
        size += n
    if current:
        yield prefix + ",".join(current)


class CycleError(ValueError):
    def __init__(self, tables: Sequence[str]) -> None:
        super().__init__(", ".join(tables))
        self.tables = tuple(tables)


def topo_order(tables: Sequence[str], parents: Mapping[str, Iterable[str]]) -> list[str]:
    """Order ``tables`` so each comes after the tables it references (``parents``).

    References to tables outside ``tables`` and to itself are ignored. Among tables that are free
    to go, the order of ``tables`` is kept, so the result is deterministic. A cycle raises
    :class:`CycleError` naming the tables caught in it.
    """
    members = set(tables)
    pending = {t: {p for p in parents.get(t, ()) if p in members and p != t} for t in tables}
    order: list[str] = []
    while pending:
        ready = [t for t in tables if t in pending and not pending[t]]
        if not ready:
            raise CycleError(sorted(pending))
        for t in ready:
            order.append(t)
            del pending[t]
        for deps in pending.values():
            deps.difference_update(ready)
    return order


def estimate_seconds(*, rows: int, data_bytes: int, rtt: float, batch_bytes: int, tables: int,
                     bandwidth: float = 8e6, rows_per_second: float = 60_000.0) -> float:
    """A rough duration for a move: fixed round trips, one per batch, transfer and insert time."""
    rtt = max(rtt, 0.0)
    batch_bytes = max(batch_bytes, 1)
    statements = -(-max(data_bytes, 0) // batch_bytes) + 2 * tables
    fixed = 30  # connects, discovery, plan, freeze, verify, commit, switch, delete
    return ((fixed + statements) * rtt + max(data_bytes, 0) / bandwidth * 2
            + max(rows, 0) / rows_per_second * 2)
