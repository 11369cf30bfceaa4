"""Finding groups, showing one, suspending and reactivating it."""

# SQL text is built from identifiers only (information_schema names and the config, quoted by
# sql.ident); every value goes in as a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from services.groups.endpoint import Conn, MysqlEndpoint, T, execute, query, with_session
from services.groups.errors import GroupNotFound, SchemaError
from services.groups.models import GroupDetail, GroupPage, GroupRow, GroupState, Member, TableCount
from services.groups.schema import GroupSchema, cached_schema, forget_schemas
from services.groups.sql import Order, ident, parse_order, parse_search
from services.inventory import GroupsSpec

MAX_LIMIT = 1000


def _run(endpoint: MysqlEndpoint, doing: str, work: Callable[[Conn], T]) -> T:
    """Run on a pooled session; a schema error drops the cached schemas, so the next call sees the change."""
    try:
        return with_session(endpoint, doing, work)
    except SchemaError:
        forget_schemas()
        raise


def _members_expr(schema: GroupSchema, alias: str) -> str:
    spec, members = schema.spec, schema.members
    if members is None:
        return "0"
    return (f"(SELECT COUNT(*) FROM {ident(members.name)} AS m "
            f"WHERE m.{ident(spec.fk)} = {alias}.{ident(spec.key)})")


def _rows_expr(schema: GroupSchema, alias: str) -> str:
    spec = schema.spec
    parts = [f"(SELECT COUNT(*) FROM {ident(t.name)} AS x WHERE x.{ident(spec.fk)} = {alias}.{ident(spec.key)})"
             for t in schema.tenant]
    return " + ".join(parts) or "0"


def _counts_join(schema: GroupSchema, order: Order) -> str:
    """For the orders by members or data rows: a join with the counts of every group, aggregated once
    (index scans), instead of one correlated count per group."""
    spec = schema.spec
    fk = ident(spec.fk)
    if order.key == "members":
        tables = [schema.members] if schema.members is not None else []
    elif order.key == "data_rows":
        tables = list(schema.tenant)
    else:
        return ""
    if not tables:
        return ""
    counts = " UNION ALL ".join(f"SELECT {fk} AS gid, COUNT(*) AS n FROM {ident(t.name)} GROUP BY {fk}"
                                for t in tables)
    return (f"LEFT JOIN (SELECT gid, SUM(n) AS n FROM ({counts}) AS per_table GROUP BY gid) AS counts "
            f"ON counts.gid = g.{ident(spec.key)}")


def _order_sql(order: Order, schema: GroupSchema, alias: str, *, computed: bool) -> str:
    spec = schema.spec
    direction = " DESC" if order.descending else ""
    key = f"{alias}.{ident('id' if computed else spec.key)}"
    if order.key == "id":
        return f"{key}{direction}"
    if computed:
        column = {"name": "name", "created": "created", "suspended": "suspended",
                  "members": "members", "data_rows": "data_rows"}[order.key]
        expr = f"{alias}.{ident(column)}" if order.key in ("name", "created", "suspended") else ident(column)
    elif order.key == "name":
        expr = f"{alias}.{ident(spec.name)}"
    elif order.key == "created":
        expr = f"{alias}.{ident(spec.created)}" if spec.created else key
    elif order.key == "suspended":
        expr = f"{alias}.{ident(spec.suspended)}"
    else:  # members, data_rows: see _counts_join
        expr = "COALESCE(counts.n, 0)" if _counts_join(schema, order) else "0"
    return f"{expr}{direction}, {key}{direction}"


def _hits_sql(schema: GroupSchema, text: str | None) -> tuple[str, list[Any]] | None:
    """The ids of the groups a search finds, as a UNION of index-friendly parts (an OR of a name match
    and an email subquery would run the subquery once per group)."""
    search = parse_search(text)
    if search is None:
        return None
    spec = schema.spec
    key, table = ident(spec.key), ident(spec.table)
    parts: list[str] = []
    args: list[Any] = []
    if search.group_id is not None:
        parts.append(f"SELECT {key} AS id FROM {table} WHERE {key} = %s")
        args.append(search.group_id)
        if search.id_only:
            return parts[0], args
    parts.append(f"SELECT {key} FROM {table} WHERE {ident(spec.name)} LIKE %s")
    args.append(search.pattern)
    users, members = schema.users, schema.members
    if users is not None and members is not None and users.has(spec.email):
        # STRAIGHT_JOIN: from the matching users to their memberships, never the other way round.
        parts.append(
            f"SELECT STRAIGHT_JOIN m.{ident(spec.fk)} FROM {ident(users.name)} AS u JOIN {ident(members.name)} AS m "
            f"ON m.{ident(spec.user_key)} = u.{ident(users.primary_key[0])} WHERE u.{ident(spec.email)} LIKE %s")
        args.append(search.email_pattern)
    return " UNION ".join(parts), args


def _page_sql(schema: GroupSchema, text: str | None, order: Order) -> tuple[str, list[Any]]:
    """One query for a page: its rows, their member and row counts, and how many groups match.

    Without a search the page walks an index (name, id or creation date) and the total is a plain
    count; with one, the matching ids are gathered first and the total is a window count over them.
    """
    spec = schema.spec
    table, key = ident(spec.table), ident(spec.key)
    created = f"g.{ident(spec.created)}" if spec.created else "NULL"
    hits = _hits_sql(schema, text)
    if hits is None:
        join, args, total = "", [], f"(SELECT COUNT(*) FROM {table})"
        window = ""
    else:
        join, args = f"JOIN ({hits[0]}) AS hits ON hits.id = g.{key}", hits[1]
        total, window = "p.total", ", COUNT(*) OVER () AS total"
    inner = (f"SELECT g.{key} AS id, g.{ident(spec.name)} AS name, {created} AS created, "
             f"g.{ident(spec.suspended)} AS suspended{window} "
             f"FROM {table} AS g {join} {_counts_join(schema, order)} "
             f"ORDER BY {_order_sql(order, schema, 'g', computed=False)} LIMIT %s OFFSET %s")
    sql = (f"SELECT p.id, p.name, p.created, p.suspended, {total} AS total, "
           f"{_members_expr(schema, 'p')} AS members, {_rows_expr(schema, 'p')} AS data_rows "
           f"FROM ({inner}) AS p ORDER BY {_order_sql(order, schema, 'p', computed=True)}")
    return sql, args


def list_groups(
    endpoint: MysqlEndpoint,
    spec: GroupsSpec,
    *,
    search: str | None = None,
    limit: int = 50,
    offset: int = 0,
    order_by: str = "name",
) -> GroupPage:
    """One page of groups, found by id, name or a member's email. One query per page.

    ``search``: ``42`` finds group 42 and names containing 42; ``#42`` only group 42; a name
    matches anywhere; an email matches from its start (``wile.coy``) or by its domain when the
    text starts with ``@`` (``@acme.example``, which reads every email: slower on big servers).
    Every value is a bound parameter and LIKE wildcards in the text match themselves.

    ``order_by`` is ``id``, ``name``, ``created``, ``suspended``, ``members`` or ``data_rows``,
    with a leading ``-`` for descending. Sorting by ``members`` or ``data_rows`` counts rows for
    every matching group, so it is slower on big servers; the other orders use indexes.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    if offset < 0:
        raise ValueError(f"offset must not be negative, not {offset}")
    order = parse_order(order_by)

    def work(conn: Conn) -> GroupPage:
        schema = cached_schema(conn, endpoint, spec)
        sql, args = _page_sql(schema, search, order)
        rows = query(conn, sql, [*args, limit, offset])
        if rows:
            total = int(rows[0][4])
        elif offset:  # past the end: count apart
            hits = _hits_sql(schema, search)
            counted = (f"SELECT COUNT(*) FROM ({hits[0]}) AS hits" if hits
                       else f"SELECT COUNT(*) FROM {ident(spec.table)}")
            total = int(query(conn, counted, hits[1] if hits else None)[0][0])
        else:
            total = 0
        return GroupPage(
            rows=tuple(GroupRow(id=int(r[0]), name=str(r[1]), server=endpoint.label, members=int(r[5]),
                                created=_dt(r[2]), suspended=_dt(r[3]), data_rows=int(r[6])) for r in rows),
            total=total, offset=offset, limit=limit, server=endpoint.label, search=search,
            order_by=str(order),
        )

    return _run(endpoint, "listing groups", work)


def _dt(value: object) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _member_sql(schema: GroupSchema) -> str:
    spec = schema.spec
    members = schema.members
    assert members is not None
    users = schema.users
    role = f"m.{ident('role')}" if members.has("role") else "NULL"
    joined = next((f"m.{ident(c)}" for c in ("created_at", "joined_at", "date_joined") if members.has(c)), "NULL")
    if users is None or not users.has(spec.email):
        return (f"SELECT m.{ident(spec.user_key)}, '', NULL, {role}, {joined} FROM {ident(members.name)} AS m "
                f"WHERE m.{ident(spec.fk)} = %s ORDER BY m.{ident(spec.user_key)}")
    if users.has("name"):
        name = f"u.{ident('name')}"
    elif users.has("first_name") and users.has("last_name"):
        name = f"CONCAT_WS(' ', u.{ident('first_name')}, u.{ident('last_name')})"
    else:
        name = "NULL"
    return (f"SELECT u.{ident(users.primary_key[0])}, u.{ident(spec.email)}, {name}, {role}, {joined} "
            f"FROM {ident(members.name)} AS m JOIN {ident(users.name)} AS u "
            f"ON u.{ident(users.primary_key[0])} = m.{ident(spec.user_key)} "
            f"WHERE m.{ident(spec.fk)} = %s ORDER BY u.{ident(spec.email)}")


def group_detail(endpoint: MysqlEndpoint, spec: GroupsSpec, group_id: int) -> GroupDetail:
    """A group's members (with emails), its row count in every tenant table, and its state."""

    def work(conn: Conn) -> GroupDetail:
        schema = cached_schema(conn, endpoint, spec)
        created = f"g.{ident(spec.created)}" if spec.created else "NULL"
        counts = ", ".join(f"(SELECT COUNT(*) FROM {ident(t.name)} WHERE {ident(spec.fk)} = g.{ident(spec.key)})"
                           for t in schema.tenant)
        head = query(conn, f"SELECT g.{ident(spec.name)}, {created}, g.{ident(spec.suspended)}"
                           f"{', ' + counts if counts else ''} FROM {ident(spec.table)} AS g "
                           f"WHERE g.{ident(spec.key)} = %s", (group_id,))
        if not head:
            raise GroupNotFound(group_id, endpoint.label)
        row = head[0]
        members: tuple[Member, ...] = ()
        if schema.members is not None:
            members = tuple(Member(user_id=int(m[0]), email=str(m[1] or ""),
                                   name=None if m[2] is None else str(m[2]),
                                   role=None if m[3] is None else str(m[3]), joined=_dt(m[4]))
                            for m in query(conn, _member_sql(schema), (group_id,)))
        return GroupDetail(
            id=group_id, name=str(row[0]), server=endpoint.label, created=_dt(row[1]), suspended=_dt(row[2]),
            members=members,
            tables=tuple(TableCount(t.name, int(n)) for t, n in zip(schema.tenant, row[3:], strict=True)),
        )

    return _run(endpoint, f"reading group {group_id}", work)


def _set_suspended(endpoint: MysqlEndpoint, spec: GroupsSpec, group_id: int, suspend: bool) -> GroupState:
    table, key, column = ident(spec.table), ident(spec.key), ident(spec.suspended)
    if suspend:
        update = f"UPDATE {table} SET {column} = UTC_TIMESTAMP() WHERE {key} = %s AND {column} IS NULL"
    else:
        update = f"UPDATE {table} SET {column} = NULL WHERE {key} = %s AND {column} IS NOT NULL"

    def work(conn: Conn) -> GroupState:
        changed = execute(conn, update, (group_id,)) > 0
        rows = query(conn, f"SELECT {ident(spec.name)}, {column} FROM {table} WHERE {key} = %s", (group_id,))
        if not rows:
            raise GroupNotFound(group_id, endpoint.label)
        return GroupState(id=group_id, name=str(rows[0][0]), server=endpoint.label,
                          suspended=_dt(rows[0][1]), changed=changed)

    doing = f"{'suspending' if suspend else 'reactivating'} group {group_id}"
    return with_session(endpoint, doing, work)


def suspend(endpoint: MysqlEndpoint, spec: GroupsSpec, group_id: int) -> GroupState:
    """Set the suspended column to now (UTC). Idempotent: an already suspended group keeps its date."""
    return _set_suspended(endpoint, spec, group_id, True)


def reactivate(endpoint: MysqlEndpoint, spec: GroupsSpec, group_id: int) -> GroupState:
    """Clear the suspended column. Idempotent."""
    return _set_suspended(endpoint, spec, group_id, False)
