"""How groups and their rows spread over the servers, and which moves would even them out."""

# SQL text is built from identifiers only (information_schema names and the config, quoted by
# sql.ident); every value goes in as a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from services.groups.endpoint import Conn, MysqlEndpoint, query, with_session
from services.groups.schema import GroupSchema, cached_schema
from services.groups.sql import ident
from services.inventory import GroupsSpec


@dataclass(frozen=True)
class ServerLoad:
    server: str
    groups: int
    suspended: int
    data_rows: int


@dataclass(frozen=True)
class MoveSuggestion:
    group_id: int
    name: str
    source: str
    target: str
    data_rows: int


@dataclass(frozen=True)
class BalanceReport:
    servers: tuple[ServerLoad, ...]
    suggestions: tuple[MoveSuggestion, ...]
    projected: tuple[tuple[str, int], ...]  # data rows per server after the suggested moves

    @property
    def spread_before(self) -> int:
        rows = [s.data_rows for s in self.servers]
        return max(rows) - min(rows) if rows else 0

    @property
    def spread_after(self) -> int:
        rows = [n for _, n in self.projected]
        return max(rows) - min(rows) if rows else 0


def suggest_moves(groups: Mapping[str, Sequence[tuple[int, int]]], *, max_moves: int = 10
                  ) -> list[tuple[int, str, str, int]]:
    """Greedy moves ``(group_id, source, target, rows)`` that even out the rows per server.

    ``groups`` maps a server to its ``(group_id, rows)``. Each move takes from the fullest server
    the group whose size is closest to half the gap to the emptiest one, and only if it is
    smaller than the gap, so every move strictly lowers the sum of squared loads; no group
    moves twice.
    """
    load = {server: sum(rows for _, rows in items) for server, items in groups.items()}
    where = {gid: server for server, items in groups.items() for gid, _ in items}
    size = {gid: rows for items in groups.values() for gid, rows in items}
    moved: set[int] = set()
    out: list[tuple[int, str, str, int]] = []
    if len(load) < 2:
        return out
    for _ in range(max_moves):
        heavy = max(load, key=lambda s: (load[s], s))
        light = min(load, key=lambda s: (load[s], s))
        gap = load[heavy] - load[light]
        if gap <= 1:
            break
        best: int | None = None
        for gid, server in where.items():
            rows = size[gid]
            if server != heavy or gid in moved or not 0 < rows < gap:
                continue
            if best is None or (abs(gap - 2 * rows), gid) < (abs(gap - 2 * size[best]), best):
                best = gid
        if best is None:
            break
        moved.add(best)
        where[best] = light
        load[heavy] -= size[best]
        load[light] += size[best]
        out.append((best, heavy, light, size[best]))
    return out


def _per_group_sql(schema: GroupSchema) -> str:
    spec = schema.spec
    counts = " UNION ALL ".join(f"SELECT {ident(spec.fk)} AS gid, COUNT(*) AS n FROM {ident(t.name)} "
                                f"GROUP BY {ident(spec.fk)}" for t in schema.tenant)
    joined = (f"LEFT JOIN (SELECT gid, SUM(n) AS n FROM ({counts}) AS a GROUP BY gid) AS c "
              f"ON c.gid = g.{ident(spec.key)}") if counts else ""
    rows = "COALESCE(c.n, 0)" if counts else "0"
    return (f"SELECT g.{ident(spec.key)}, g.{ident(spec.name)}, g.{ident(spec.suspended)} IS NOT NULL, {rows} "
            f"FROM {ident(spec.table)} AS g {joined}")


def _server_groups(endpoint: MysqlEndpoint, spec: GroupsSpec) -> list[tuple[int, str, bool, int]]:
    def work(conn: Conn) -> list[tuple[int, str, bool, int]]:
        schema = cached_schema(conn, endpoint, spec)
        return [(int(r[0]), str(r[1]), bool(r[2]), int(r[3])) for r in query(conn, _per_group_sql(schema))]

    return with_session(endpoint, "counting rows per group", work)


def balance(endpoints: Sequence[MysqlEndpoint], spec: GroupsSpec, *, max_suggestions: int = 10) -> BalanceReport:
    """Groups and data rows per server (counted exactly, servers in parallel) and suggested moves."""
    with ThreadPoolExecutor(max_workers=max(1, min(len(endpoints), 8))) as pool:
        results = list(pool.map(lambda e: _server_groups(e, spec), endpoints))
    loads: list[ServerLoad] = []
    names: dict[tuple[str, int], str] = {}
    groups: dict[str, list[tuple[int, int]]] = {}
    for endpoint, found in zip(endpoints, results, strict=True):
        loads.append(ServerLoad(endpoint.label, len(found), sum(1 for r in found if r[2]),
                                sum(r[3] for r in found)))
        groups[endpoint.label] = [(gid, n) for gid, _, _, n in found]
        names.update({(endpoint.label, gid): name for gid, name, _, _ in found})
    moves = suggest_moves(groups, max_moves=max_suggestions)
    projected = {s.server: s.data_rows for s in loads}
    suggestions = []
    for gid, source, target, rows in moves:
        projected[source] -= rows
        projected[target] += rows
        suggestions.append(MoveSuggestion(gid, names[(source, gid)], source, target, rows))
    return BalanceReport(servers=tuple(loads), suggestions=tuple(suggestions),
                         projected=tuple(projected.items()))
