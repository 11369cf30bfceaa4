"""Planning a move: what will be copied, how long it may take, and every reason to refuse it."""

# SQL text is built from identifiers only (information_schema names and the config, quoted by
# sql.ident); every value goes in as a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

import pymysql.cursors

from services.groups.checks import Checksum, diff_checksums, fetch_checksums, fetch_counts
from services.groups.endpoint import Conn, MysqlEndpoint, close_quietly, connect, execute, mysql_errors, query
from services.groups.errors import GroupNotFound, MoveRefused
from services.groups.schema import GroupSchema, Table, compare, discover
from services.groups.selection import Part, group_parts, users_where
from services.groups.sql import estimate_seconds, ident, quote_label, row_hash_expr, union_all
from services.inventory import GroupsSpec

T = TypeVar("T")
U = TypeVar("U")
Mode = Literal["move", "resume", "done"]
DEFAULT_BATCH_BYTES = 4 << 20
_CHUNK = 1000
_INT_TYPES = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint"}


@dataclass
class Side:
    """One end of a move: its endpoint, an open session and its schema."""

    endpoint: MysqlEndpoint
    spec: GroupsSpec
    conn: Conn | None = None
    schema: GroupSchema | None = None
    rtt: float = 0.0
    max_packet: int = 16 << 20
    doing: str = "working"

    @property
    def label(self) -> str:
        return self.endpoint.label

    def open(self, doing: str) -> Side:
        self.doing = doing
        self.conn = connect(self.endpoint, doing=doing)
        with mysql_errors(self.endpoint, doing):
            started = time.monotonic()
            self.schema = discover(self.conn, self.endpoint, self.spec)
            self.rtt = time.monotonic() - started  # one round trip (and a few ms of server work)
            self.max_packet = self.schema.max_packet
        return self

    def db(self) -> Conn:
        assert self.conn is not None, "the session is not open"
        return self.conn

    def sch(self) -> GroupSchema:
        assert self.schema is not None, "the schema is not known yet"
        return self.schema

    def guard(self) -> contextlib.AbstractContextManager[None]:
        """Name errors raised inside after this side's server."""
        return mysql_errors(self.endpoint, self.doing)

    def q(self, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
        with self.guard():
            return query(self.db(), sql, args)

    def x(self, sql: str, args: Any = None) -> int:
        with self.guard():
            return execute(self.db(), sql, args)

    def checksums(self, parts: Sequence[Part], *, lock: bool = False) -> dict[str, Checksum]:
        with self.guard():
            return fetch_checksums(self.db(), self.sch(), parts, lock=lock)

    def counts(self, parts: Sequence[Part]) -> dict[str, int]:
        with self.guard():
            return fetch_counts(self.db(), parts)

    def reopen(self, doing: str) -> Conn:
        close_quietly(self.conn)
        self.conn = None
        return self.open(doing).db()

    def close(self) -> None:
        close_quietly(self.conn)
        self.conn = None


class Pair:
    """Runs the same kind of work on both servers at once (halves the round trips' wall time)."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="groups-move")

    def both(self, left: Callable[[], T], right: Callable[[], U]) -> tuple[T, U]:
        future = self._pool.submit(right)
        try:
            first = left()
        except BaseException:
            try:
                future.result()
            except BaseException:  # noqa: S110 - the first error is the one to report
                pass
            raise
        return first, future.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


@dataclass(frozen=True)
class TablePlan:
    table: str
    rows: int
    bytes_estimate: int
    role: str  # "group", "users" or "tenant"


@dataclass(frozen=True)
class MovePlan:
    group_id: int
    group_name: str
    source: str
    target: str
    mode: Mode  # "move": a fresh move; "resume": finish an interrupted one; "done": already moved
    tables: tuple[TablePlan, ...]  # copy order: group row, users, tenant tables parents first
    users_to_copy: int
    users_shared: int  # the group's users that the target already has, identical
    suspended_on_source: bool
    suspended_on_target: bool | None  # None while the target has no copy
    estimated_seconds: float
    rtt_seconds: float
    warnings: tuple[str, ...] = ()

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def describe(self) -> str:
        head = f"Group {self.group_id} ({self.group_name}): {self.source} -> {self.target}"
        if self.mode == "done":
            return f"{head}: already moved; nothing to do."
        lines = [head]
        if self.mode == "resume":
            lines.append("  The target already holds an identical copy: the move will switch it on and "
                         "remove the source copy.")
        lines.append(f"  {self.total_rows} rows; about {self.estimated_seconds:.1f} s "
                     f"(round trip {self.rtt_seconds * 1000:.0f} ms)")
        for t in self.tables:
            lines.append(f"  {t.table:<24} {t.rows:>10}")
        if self.users_shared:
            lines.append(f"  {self.users_shared} of its users already exist on {self.target} and are kept")
        lines.extend(f"  note: {w}" for w in self.warnings)
        return "\n".join(lines)


@dataclass
class PlanState:
    """A plan and what executing it needs."""

    plan: MovePlan
    parts: list[Part] = field(default_factory=list)  # on the source; users = every user referred to
    counts: dict[str, int] = field(default_factory=dict)
    expected: dict[str, Checksum] = field(default_factory=dict)  # resume: the checksums both copies had
    source_suspended: datetime | None = None
    target_suspended: datetime | None = None
    users: UsersAnalysis | None = None  # a fresh move: the users as planned


def _group_row(side: Side, group_id: int) -> tuple[str, datetime | None] | None:
    spec = side.spec
    rows = side.q(f"SELECT {ident(spec.name)}, {ident(spec.suspended)} FROM {ident(spec.table)} "
                            f"WHERE {ident(spec.key)} = %s", (group_id,))
    if not rows:
        return None
    value = rows[0][1]
    return str(rows[0][0]), value if isinstance(value, datetime) else (None if value is None else datetime.min)


def _chunks(values: Sequence[T], size: int = _CHUNK) -> list[Sequence[T]]:
    return [values[i:i + size] for i in range(0, len(values), size)]


def _in_list(cols: Sequence[str], n: int) -> str:
    if len(cols) == 1:
        return f"{ident(cols[0])} IN ({', '.join(['%s'] * n)})"
    one = "(" + ", ".join(["%s"] * len(cols)) + ")"
    return f"({', '.join(ident(c) for c in cols)}) IN ({', '.join([one] * n)})"


def _flat(rows: Sequence[Sequence[Any]]) -> list[Any]:
    return [v for row in rows for v in row]


@dataclass(frozen=True)
class SourceUser:
    id: int
    digest: str  # MD5 of the whole row, as the server renders it
    email: object
    keys: tuple[tuple[object, ...], ...]  # the values of each unique key, in users.unique_keys order


@dataclass
class UsersAnalysis:
    mine: dict[int, SourceUser] = field(default_factory=dict)
    to_copy: list[int] = field(default_factory=list)
    shared: list[int] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


def source_users(x: Side, group_id: int) -> dict[int, SourceUser]:
    """The users the group's rows refer to, on the source, in one query."""
    schema = x.sch()
    users = schema.users
    where, n = users_where(schema)
    if users is None or not n:
        return {}
    pk = users.primary_key[0]
    email = ident(schema.spec.email) if users.has(schema.spec.email) else "NULL"
    keys = users.unique_keys
    key_cols = "".join(f", {ident(c)}" for key in keys for c in key)
    rows = x.q(f"SELECT {ident(pk)}, {row_hash_expr(users.column_names)}, {email}{key_cols} "
               f"FROM {ident(users.name)} WHERE {where}", [group_id] * n)
    out: dict[int, SourceUser] = {}
    for row in rows:
        values, found = list(row[3:]), []
        for key in keys:
            found.append(tuple(values[:len(key)]))
            values = values[len(key):]
        out[int(row[0])] = SourceUser(int(row[0]), str(row[1]), row[2], tuple(found))
    return out


def analyse_users(x: Side, y: Side, group_id: int, mine: dict[int, SourceUser] | None = None) -> UsersAnalysis:
    """Which of the group's users the target lacks, has identical, or has in conflict (a different
    row under the same id, or the same email under another id). One query on each side."""
    schema = x.sch()
    users = schema.users
    out = UsersAnalysis(mine=source_users(x, group_id) if mine is None else mine)
    if users is None or not out.mine:
        return out
    pk = users.primary_key[0]
    keys = users.unique_keys
    email = ident(schema.spec.email) if users.has(schema.spec.email) else "NULL"
    key_cols = "".join(f", {ident(c)}" for key in keys for c in key)
    by_key = [{u.keys[i]: u.id for u in out.mine.values() if all(v is not None for v in u.keys[i])}
              for i in range(len(keys))]
    theirs: dict[int, tuple[str, object]] = {}
    ids = sorted(out.mine)
    for chunk in _chunks(ids):
        conditions = [_in_list([pk], len(chunk))]
        args: list[object] = list(chunk)
        for i, key in enumerate(keys):
            values = [out.mine[u].keys[i] for u in chunk if out.mine[u].keys[i] in by_key[i]]
            if values:
                conditions.append(_in_list(key, len(values)))
                args += _flat(values)
        rows = y.q(f"SELECT {ident(pk)}, {row_hash_expr(users.column_names)}, {email}{key_cols} "
                   f"FROM {ident(users.name)} WHERE {' OR '.join(conditions)}", args)
        for row in rows:
            uid = int(row[0])
            theirs[uid] = (str(row[1]), row[2])
            values = list(row[3:])
            for i, key in enumerate(keys):
                value, values = tuple(values[:len(key)]), values[len(key):]
                owner = by_key[i].get(value)
                if owner is not None and owner != uid:
                    shown = ", ".join(str(v) for v in value)
                    out.conflicts.append(f"{'/'.join(key)} {shown} is user {owner} on {x.label} but user {uid} "
                                         f"on {y.label}; merge these accounts first")
    for uid in ids:
        if uid not in theirs:
            out.to_copy.append(uid)
        elif theirs[uid][0] == out.mine[uid].digest:
            out.shared.append(uid)
        else:
            out.conflicts.append(f"user {uid} is {out.mine[uid].email or 'someone'} on {x.label} but "
                                 f"{theirs[uid][1] or 'someone else'} on {y.label}")
    out.conflicts = list(dict.fromkeys(out.conflicts))
    return out


def _exact_collisions(x: Side, y: Side, part: Part, cols: Sequence[str]) -> tuple[int, list[str]]:
    """Stream the key values of ``part`` from the source and look each chunk up on the target."""
    found = 0
    examples: list[str] = []
    select = f"SELECT {', '.join(ident(c) for c in cols)} FROM {ident(part.name)} WHERE {part.where}"
    with x.guard(), x.db().cursor(pymysql.cursors.SSCursor) as cursor:
        cursor.execute(select, part.args)
        while chunk := cursor.fetchmany(_CHUNK):
            values = [row for row in chunk if all(v is not None for v in row)]
            if not values:
                continue
            hits = y.q(f"SELECT {', '.join(ident(c) for c in cols)} FROM {ident(part.name)} "
                                 f"WHERE {_in_list(cols, len(values))}", _flat(values))
            found += len(hits)
            for hit in hits[: max(0, 5 - len(examples))]:
                examples.append(", ".join(f"{c}={v}" for c, v in zip(cols, hit, strict=True)))
    return found, examples


def _ranged_pk(part: Part) -> str | None:
    """The primary key column when it is a single integer (so a range check can rule collisions out)."""
    pk = part.table.primary_key
    column = part.table.column(pk[0]) if len(pk) == 1 else None
    if part.role == "tenant" and column is not None and column.data_type in _INT_TYPES:
        return pk[0]
    return None


def counts_and_bounds(x: Side, parts: Sequence[Part]) -> tuple[dict[str, int], dict[str, tuple[Any, Any]]]:
    """Rows per part, and the lowest and highest integer id of each tenant part: one round trip."""
    selects: list[str] = []
    args: list[object] = []
    for part in parts:
        column = _ranged_pk(part)
        bounds = f"MIN({ident(column)}), MAX({ident(column)})" if column else "NULL, NULL"
        selects.append(f"SELECT {quote_label(part.name)}, COUNT(*), {bounds} FROM {ident(part.name)} "
                       f"WHERE {part.where}")
        args.extend(part.args)
    rows = x.q(union_all(selects), args)
    return ({str(r[0]): int(r[1]) for r in rows},
            {str(r[0]): (r[2], r[3]) for r in rows if r[2] is not None})


def key_collisions(x: Side, y: Side, parts: Sequence[Part], bounds: dict[str, tuple[Any, Any]]) -> list[str]:
    """Keys of the group's rows (primary and unique keys) that the target already uses.

    Integer ids are first checked as a range on the target (one query for all tables); only a
    table whose range overlaps is then checked id by id.
    """
    fk = x.sch().spec.fk
    reasons: list[str] = []
    checks: list[tuple[Part, tuple[str, ...]]] = []
    probed: list[tuple[Part, str]] = []
    probes: list[str] = []
    probe_args: list[object] = []
    for part in parts:
        table: Table = part.table
        if part.role == "users":
            continue  # users are matched by id on purpose; see analyse_users
        column = _ranged_pk(part)
        if column is not None:
            if part.name in bounds:
                low, high = bounds[part.name]
                probes.append(f"SELECT COUNT(*) FROM {ident(part.name)} WHERE {ident(column)} BETWEEN %s AND %s")
                probe_args += [low, high]
                probed.append((part, column))
        elif part.role == "tenant" and table.primary_key:
            checks.append((part, table.primary_key))
        checks += [(part, k) for k in table.unique_keys if fk not in k]
    if probes:
        counts = y.q(union_all(probes), probe_args)
        checks += [(part, (column,)) for (part, column), (n,) in zip(probed, counts, strict=True) if int(n)]
    for part, cols in checks:
        found, examples = _exact_collisions(x, y, part, cols)
        if found:
            what = "id" if len(cols) == 1 and cols == part.table.primary_key else "/".join(cols)
            reasons.append(f"{part.name}: {found} of the group's {what} values already exist on {y.label} "
                           f"(e.g. {'; '.join(examples)})")
    return reasons


def missing_references(x: Side, y: Side, group_id: int) -> list[str]:
    """Rows of shared tables (not groups, not users) that the group refers to and the target lacks."""
    schema = x.sch()
    reasons: list[str] = []
    for ref in schema.shared_refs():
        cols = ref.columns
        select = (f"SELECT DISTINCT {', '.join(ident(c) for c in cols)} FROM {ident(ref.table)} "
                  f"WHERE {ident(schema.spec.fk)} = %s AND "
                  + " AND ".join(f"{ident(c)} IS NOT NULL" for c in cols))
        values = [tuple(r) for r in x.q(select, (group_id,))]
        missing: list[tuple[Any, ...]] = []
        for chunk in _chunks(values):
            there = {tuple(r) for r in y.q(
                f"SELECT {', '.join(ident(c) for c in ref.ref_columns)} FROM {ident(ref.ref_table)} "
                        f"WHERE {_in_list(ref.ref_columns, len(chunk))}", _flat(chunk))}
            missing += [v for v in chunk if v not in there]
        if missing:
            shown = ", ".join(str(v[0] if len(v) == 1 else v) for v in missing[:5])
            reasons.append(f"{ref.table}.{','.join(cols)} refers to {len(missing)} row(s) of {ref.ref_table} "
                           f"that {y.label} lacks (e.g. {shown})")
    return reasons


def make_plan(x: Side, y: Side, group_id: int, pair: Pair, *, batch_bytes: int | None = None) -> PlanState:
    """Check everything that can be checked without changing anything; refuse with every reason found."""
    xs, ys = x.sch(), y.sch()
    head = f"Group {group_id} cannot be moved from {x.label} to {y.label}"
    reasons = [*xs.problems, *compare(xs, ys)]
    if reasons:
        raise MoveRefused(f"{head}: the databases do not match. Nothing was changed.", reasons)
    mine, theirs = pair.both(lambda: _group_row(x, group_id), lambda: _group_row(y, group_id))
    if mine is None and theirs is None:
        raise GroupNotFound(group_id, f"{x.label} (nor on {y.label})")
    if mine is None:
        assert theirs is not None
        plan = MovePlan(group_id=group_id, group_name=theirs[0], source=x.label, target=y.label, mode="done",
                        tables=(), users_to_copy=0, users_shared=0, suspended_on_source=False,
                        suspended_on_target=theirs[1] is not None, estimated_seconds=0.0,
                        rtt_seconds=max(x.rtt, y.rtt))
        return PlanState(plan=plan, target_suspended=theirs[1])
    name, x_suspended = mine
    parts = group_parts(xs, group_id)
    state = PlanState(plan=None, parts=parts, source_suspended=x_suspended,  # type: ignore[arg-type]
                      target_suspended=theirs[1] if theirs else None)
    warnings = list(xs.warnings)
    users = UsersAnalysis()
    if theirs is None:
        state.counts, bounds = counts_and_bounds(x, parts)
        users = analyse_users(x, y, group_id)
        state.users = users
        reasons = users.conflicts + key_collisions(x, y, parts, bounds) + missing_references(x, y, group_id)
        if reasons:
            raise MoveRefused(f"{head}: some of its rows would collide with rows already on {y.label}. "
                              "Nothing was changed.", reasons)
        mode: Mode = "move"
    else:
        target_parts = group_parts(ys, group_id)
        sums_x, sums_y = pair.both(lambda: x.checksums(parts), lambda: y.checksums(target_parts))
        differences = diff_checksums(sums_x, sums_y, x.label, y.label, [p.name for p in parts])
        if differences:
            raise MoveRefused(
                f"{head}: the group exists on both servers and the two copies differ. Nothing was changed. "
                f"If the copy on {y.label} is the live one, export the copy on {x.label}, then remove it "
                "by hand.", differences)
        state.expected = sums_x
        state.counts = {t: c.rows for t, c in sums_x.items()}
        mode = "resume"
    table_plans = tuple(
        TablePlan(p.name, state.counts.get(p.name, 0),
                  state.counts.get(p.name, 0) * max(p.table.avg_row_length, 64), p.role) for p in parts)
    total_bytes = sum(t.bytes_estimate for t in table_plans)
    rows = sum(t.rows for t in table_plans)
    rtt = max(x.rtt, y.rtt)
    batch = batch_bytes or min(DEFAULT_BATCH_BYTES, y.max_packet // 2)
    seconds = estimate_seconds(rows=rows, data_bytes=total_bytes if mode == "move" else 0, rtt=rtt,
                               batch_bytes=batch, tables=len(parts))
    if x_suspended is not None:
        warnings.append(f"the group is already suspended on {x.label}; unless told otherwise the move keeps it "
                        "suspended on the target")
    state.plan = MovePlan(
        group_id=group_id, group_name=name, source=x.label, target=y.label, mode=mode, tables=table_plans,
        users_to_copy=len(users.to_copy), users_shared=len(users.shared),
        suspended_on_source=x_suspended is not None,
        suspended_on_target=None if theirs is None else theirs[1] is not None,
        estimated_seconds=seconds, rtt_seconds=rtt, warnings=tuple(warnings),
    )
    return state


def plan_move(source: MysqlEndpoint, target: MysqlEndpoint, spec: GroupsSpec, group_id: int) -> MovePlan:
    """What moving ``group_id`` from ``source`` to ``target`` would do. Changes nothing.

    Raises :class:`MoveRefused` (schemas differ, ids or emails collide, a shared row is missing),
    :class:`GroupNotFound`, or a connection error.
    """
    x, y = Side(source, spec), Side(target, spec)
    pair = Pair()
    try:
        pair.both(lambda: x.open(f"planning the move of group {group_id}"),
                  lambda: y.open(f"planning the move of group {group_id}"))
        return make_plan(x, y, group_id, pair).plan
    finally:
        x.close()
        y.close()
        pair.close()
