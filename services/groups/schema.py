"""What the SaaS database looks like: tenant tables, keys and foreign keys, read from information_schema.

A *tenant table* is a base table that has the group column (``GroupsSpec.fk``). Tenant tables are
returned parents first (a topological order of their foreign keys), which is the order rows can be
inserted in; deleting goes the other way.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from services.groups.endpoint import Conn, MysqlEndpoint, query
from services.groups.errors import SchemaError
from services.groups.sql import CycleError, topo_order
from services.inventory import GroupsSpec


@dataclass(frozen=True)
class Column:
    name: str
    column_type: str  # "bigint(20)", "varchar(150)"...
    data_type: str  # "bigint", "varchar"...
    nullable: bool
    generated: bool = False


@dataclass(frozen=True)
class ForeignKey:
    name: str
    table: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    unique_keys: tuple[tuple[str, ...], ...] = ()  # besides the primary key
    foreign_keys: tuple[ForeignKey, ...] = ()
    rows_estimate: int = 0
    avg_row_length: int = 0

    def column(self, name: str) -> Column | None:
        for column in self.columns:
            if column.name == name:
                return column
        return None

    def has(self, name: str) -> bool:
        return self.column(name) is not None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def stored_columns(self) -> tuple[Column, ...]:
        """The columns an INSERT writes (generated columns are computed by the server)."""
        return tuple(c for c in self.columns if not c.generated)

    @property
    def order_by(self) -> tuple[str, ...]:
        return self.primary_key or self.column_names


@dataclass(frozen=True)
class GroupSchema:
    server: str
    database: str
    spec: GroupsSpec
    tables: Mapping[str, Table]
    groups: Table
    tenant: tuple[Table, ...]  # parents first
    users: Table | None
    members: Table | None
    problems: tuple[str, ...] = ()  # what makes a move unsafe
    warnings: tuple[str, ...] = ()
    max_packet: int = 16 << 20  # the server's max_allowed_packet
    discovered_at: float = field(default_factory=time.monotonic)

    @property
    def tenant_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tenant)

    def user_refs(self) -> tuple[ForeignKey, ...]:
        """Every foreign key, in any table, that points at the users table."""
        if self.users is None:
            return ()
        return tuple(fk for t in self.tables.values() for fk in t.foreign_keys
                     if fk.ref_table == self.users.name and len(fk.columns) == 1)

    def tenant_user_refs(self) -> tuple[ForeignKey, ...]:
        names = set(self.tenant_names)
        return tuple(fk for fk in self.user_refs() if fk.table in names)

    def shared_refs(self) -> tuple[ForeignKey, ...]:
        """Foreign keys from tenant tables to shared tables other than groups and users."""
        names = set(self.tenant_names)
        skip = {self.groups.name} | ({self.users.name} if self.users else set())
        return tuple(fk for t in self.tenant for fk in t.foreign_keys
                     if fk.ref_table not in names and fk.ref_table not in skip)


_DISCOVERY = """
(SELECT 'c' AS k, TABLE_NAME AS t, COLUMN_NAME AS c, ORDINAL_POSITION AS n, COLUMN_TYPE AS a,
        DATA_TYPE AS b, IS_NULLABLE AS d, EXTRA AS e
   FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %(db)s)
UNION ALL
(SELECT 'u', TABLE_NAME, COLUMN_NAME, SEQ_IN_INDEX, INDEX_NAME, NULL, NULL, NULL
   FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %(db)s AND NON_UNIQUE = 0)
UNION ALL
(SELECT 'f', k.TABLE_NAME, k.COLUMN_NAME, k.ORDINAL_POSITION, k.CONSTRAINT_NAME,
        k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, NULL
   FROM information_schema.KEY_COLUMN_USAGE k
   JOIN information_schema.REFERENTIAL_CONSTRAINTS r
     ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME
    AND r.TABLE_NAME = k.TABLE_NAME
  WHERE k.TABLE_SCHEMA = %(db)s AND k.REFERENCED_TABLE_SCHEMA = %(db)s)
UNION ALL
(SELECT 't', TABLE_NAME, TABLE_TYPE, TABLE_ROWS, AVG_ROW_LENGTH, ENGINE, NULL, NULL
   FROM information_schema.TABLES WHERE TABLE_SCHEMA = %(db)s)
UNION ALL
(SELECT 'v', '', '', @@max_allowed_packet, NULL, NULL, NULL, NULL)
"""

_BASE_TYPES = {"BASE TABLE", "SYSTEM VERSIONED"}


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return "" if value is None else str(value)


def build_schema(rows: list[tuple[object, ...]], *, server: str, database: str, spec: GroupsSpec
                 ) -> GroupSchema:
    """Assemble a :class:`GroupSchema` from the rows of the discovery query (pure)."""
    kinds: dict[str, str] = {}
    stats: dict[str, tuple[int, int]] = {}
    columns: dict[str, list[tuple[int, Column]]] = defaultdict(list)
    uniques: dict[str, dict[str, list[tuple[int, str]]]] = defaultdict(lambda: defaultdict(list))
    fks: dict[str, dict[str, list[tuple[int, str, str, str]]]] = defaultdict(lambda: defaultdict(list))
    max_packet = 16 << 20
    for kind, table, c, n, a, b, d, e in rows:
        kind, table = _text(kind), _text(table)
        if kind == "v":
            max_packet = int(_text(n) or max_packet)
        elif kind == "t":
            kinds[table] = _text(c)
            stats[table] = (int(_text(n) or 0), int(_text(a) or 0))
        elif kind == "c":
            extra = _text(e).upper()
            columns[table].append((int(_text(n)), Column(
                name=_text(c), column_type=_text(a), data_type=_text(b).lower(),
                nullable=_text(d).upper() == "YES", generated="GENERATED" in extra or "PERSISTENT" in extra,
            )))
        elif kind == "u":
            uniques[table][_text(a)].append((int(_text(n)), _text(c)))
        elif kind == "f":
            fks[table][_text(a)].append((int(_text(n)), _text(c), _text(b), _text(d)))
    tables: dict[str, Table] = {}
    for name in sorted(columns):
        if kinds.get(name, "BASE TABLE") not in _BASE_TYPES:
            continue
        keys = {index: tuple(col for _, col in sorted(parts)) for index, parts in uniques[name].items()}
        foreign = []
        for constraint, parts in sorted(fks[name].items()):
            parts.sort()
            foreign.append(ForeignKey(name=constraint, table=name, columns=tuple(p[1] for p in parts),
                                      ref_table=parts[0][2], ref_columns=tuple(p[3] for p in parts)))
        rows_estimate, avg = stats.get(name, (0, 0))
        tables[name] = Table(
            name=name,
            columns=tuple(col for _, col in sorted(columns[name], key=lambda item: item[0])),
            primary_key=keys.pop("PRIMARY", ()),
            unique_keys=tuple(keys[k] for k in sorted(keys)),
            foreign_keys=tuple(foreign),
            rows_estimate=rows_estimate,
            avg_row_length=avg,
        )
    return _classify(tables, server=server, database=database, spec=spec, max_packet=max_packet)


def _classify(tables: dict[str, Table], *, server: str, database: str, spec: GroupsSpec,
              max_packet: int) -> GroupSchema:
    groups = tables.get(spec.table)
    if groups is None:
        raise SchemaError(f"The database {database!r} on {server} has no table {spec.table!r} "
                          "(the [groups] table in the config).", table=spec.table)
    needed = [spec.key, spec.name, spec.suspended] + ([spec.created] if spec.created else [])
    missing = [c for c in needed if not groups.has(c)]
    if missing:
        raise SchemaError(f"The table {spec.table!r} on {server} lacks the column(s) "
                          f"{', '.join(missing)} named in the [groups] config.",
                          table=spec.table, columns=missing)
    if groups.primary_key != (spec.key,):
        raise SchemaError(f"The primary key of {spec.table!r} on {server} is "
                          f"({', '.join(groups.primary_key) or 'none'}), not ({spec.key}) as configured.",
                          table=spec.table, columns=[spec.key])
    tenant_names = [t.name for t in tables.values() if t.name != spec.table and t.has(spec.fk)]
    problems: list[str] = []
    warnings: list[str] = []
    parents = {name: [fk.ref_table for fk in tables[name].foreign_keys] for name in tenant_names}
    try:
        ordered = topo_order(tenant_names, parents)
    except CycleError as exc:
        problems.append(f"the tables {', '.join(exc.tables)} refer to each other in a cycle, so there is "
                        "no safe order to copy them in")
        ordered = sorted(tenant_names)
    tenant_set = set(tenant_names)
    for table in tables.values():
        for fk in table.foreign_keys:
            if fk.ref_table == spec.table and table.name in tenant_set and fk.columns == (spec.fk,):
                continue
            if fk.ref_table == spec.table:
                problems.append(f"{table.name}.{','.join(fk.columns)} refers to {spec.table} through a column "
                                f"other than {spec.fk!r}; the panel cannot tell which group those rows "
                                "belong to")
            elif fk.ref_table in tenant_set and table.name not in tenant_set and table.name != spec.table:
                problems.append(f"{table.name} (a table without {spec.fk!r}) refers to {fk.ref_table}; "
                                "deleting the group's rows would break those references")
    for name in tenant_names:
        table = tables[name]
        if not table.primary_key:
            warnings.append(f"{name} has no primary key: id collisions on the target cannot be checked")
        if not any(fk.ref_table == spec.table and fk.columns == (spec.fk,) for fk in table.foreign_keys):
            warnings.append(f"{name}.{spec.fk} has no foreign key to {spec.table}")
    users = tables.get(spec.users_table)
    if users is not None and len(users.primary_key) != 1:
        problems.append(f"the users table {users.name} needs a one-column primary key")
    members = tables.get(spec.members_table)
    if members is not None and (members.name not in tenant_set or not members.has(spec.user_key)):
        members = None
    return GroupSchema(
        server=server, database=database, spec=spec, tables=tables, groups=groups,
        tenant=tuple(tables[n] for n in ordered), users=users, members=members,
        problems=tuple(problems), warnings=tuple(warnings), max_packet=max_packet,
    )


def discover(conn: Conn, endpoint: MysqlEndpoint, spec: GroupsSpec) -> GroupSchema:
    """Read the schema of ``endpoint.database`` in one round trip."""
    rows = query(conn, _DISCOVERY, {"db": endpoint.database})
    if not any(_text(r[0]) == "t" for r in rows):  # the 'v' row always comes
        raise SchemaError(f"The database {endpoint.database!r} on {endpoint.label} has no tables, or the "
                          f"user {endpoint.user!r} may not see them.")
    return build_schema(rows, server=endpoint.label, database=endpoint.database, spec=spec)


_cache: dict[tuple[str, int, str, str, str, GroupsSpec], GroupSchema] = {}
_cache_lock = threading.Lock()
CACHE_SECONDS = 120.0


def cached_schema(conn: Conn, endpoint: MysqlEndpoint, spec: GroupsSpec,
                  max_age: float = CACHE_SECONDS) -> GroupSchema:
    """The schema, reused for ``max_age`` seconds (listing pages then cost one round trip)."""
    key = (endpoint.host, endpoint.port, endpoint.database, endpoint.server, endpoint.user, spec)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and time.monotonic() - hit.discovered_at < max_age:
        return hit
    fresh = discover(conn, endpoint, spec)
    with _cache_lock:
        _cache[key] = fresh
    return fresh


def forget_schemas() -> None:
    with _cache_lock:
        _cache.clear()


def compare(source: GroupSchema, target: GroupSchema) -> list[str]:
    """Differences that make a move from ``source`` to ``target`` unsafe, one sentence each."""
    reasons: list[str] = []
    names = [source.groups.name, *source.tenant_names]
    if source.users is not None:
        names.append(source.users.name)
    for name in names:
        mine = source.tables[name]
        theirs = target.tables.get(name)
        if theirs is None:
            reasons.append(f"table {name} exists on {source.server} but not on {target.server}")
            continue
        if name in source.tenant_names and not theirs.has(source.spec.fk):
            reasons.append(f"table {name} on {target.server} has no {source.spec.fk} column")
        for column in mine.columns:
            other = theirs.column(column.name)
            if other is None:
                reasons.append(f"column {name}.{column.name} exists on {source.server} "
                               f"but not on {target.server}")
            elif other.column_type.lower() != column.column_type.lower():
                reasons.append(f"column {name}.{column.name} is {column.column_type} on {source.server} "
                               f"but {other.column_type} on {target.server}")
            elif other.nullable != column.nullable:
                reasons.append(f"column {name}.{column.name} is "
                               f"{'NULL' if column.nullable else 'NOT NULL'} on {source.server} but "
                               f"{'NULL' if other.nullable else 'NOT NULL'} on {target.server}")
            elif other.generated != column.generated:
                reasons.append(f"column {name}.{column.name} is generated on only one of the servers")
        for column in theirs.columns:
            if not mine.has(column.name):
                reasons.append(f"column {name}.{column.name} exists on {target.server} "
                               f"but not on {source.server}")
        if mine.primary_key != theirs.primary_key:
            reasons.append(f"table {name} has primary key ({', '.join(mine.primary_key)}) on "
                           f"{source.server} but ({', '.join(theirs.primary_key)}) on {target.server}")
    return reasons
