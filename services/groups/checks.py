"""Row counts and order-independent checksums of a group's rows, computed by the server."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from services.groups.endpoint import Conn, query
from services.groups.schema import GroupSchema
from services.groups.selection import Part, checksums_sql, count_sql


@dataclass(frozen=True)
class Checksum:
    rows: int
    sum: int  # SUM of the first 64 bits of each row's MD5
    xor: int  # BIT_XOR of the last 64 bits

    def __str__(self) -> str:
        return f"{self.rows} rows, {self.sum:x}/{self.xor:016x}"


def fetch_checksums(conn: Conn, schema: GroupSchema, parts: Sequence[Part], *, lock: bool = False
                    ) -> dict[str, Checksum]:
    """Checksums of every part, in one round trip. ``lock`` holds the rows until the transaction ends."""
    if not parts:
        return {}
    sql, args = checksums_sql(schema, parts, lock=lock)
    return {str(t): Checksum(int(n), int(s), int(x)) for t, n, s, x in query(conn, sql, args)}


def fetch_counts(conn: Conn, parts: Sequence[Part]) -> dict[str, int]:
    if not parts:
        return {}
    sql, args = count_sql(parts)
    return {str(t): int(n) for t, n in query(conn, sql, args)}


def diff_checksums(a: Mapping[str, Checksum], b: Mapping[str, Checksum], a_name: str, b_name: str,
                   tables: Sequence[str] | None = None) -> list[str]:
    """One sentence per table whose checksums differ (an empty list when they all match)."""
    names = list(tables) if tables is not None else sorted(set(a) | set(b))
    out: list[str] = []
    for name in names:
        left, right = a.get(name), b.get(name)
        if left == right:
            continue
        if left is None or right is None:
            out.append(f"{name}: only checked on {a_name if right is None else b_name}")
        elif left.rows != right.rows:
            out.append(f"{name}: {left.rows} rows on {a_name}, {right.rows} on {b_name}")
        else:
            out.append(f"{name}: {left.rows} rows on both, but their contents differ")
    return out
