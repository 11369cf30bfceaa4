"""Property tests of the pure parts: SQL text building, search and order parsing, plans, balancing.

A few properties are checked against the real server too (quoting, LIKE escaping, literals),
since that is the only judge of whether SQL text means what we think.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from services.groups import MysqlEndpoint, suggest_moves
from services.groups.checks import Checksum, diff_checksums
from services.groups.export import line_table
from services.groups.schema import build_schema
from services.groups.sql import (
    ORDER_KEYS,
    CycleError,
    batches,
    estimate_seconds,
    ident,
    like_contains,
    parse_order,
    parse_search,
    topo_order,
    tuple_expr,
)
from services.inventory import GroupsSpec

DB = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def conn(app1: MysqlEndpoint) -> Iterator[pymysql.connections.Connection[Any]]:
    c = pymysql.connect(host=app1.host, port=app1.port, user=app1.user, password=app1.password,
                        database=app1.database, charset="utf8mb4", autocommit=True)
    try:
        yield c
    finally:
        c.close()


# MariaDB keeps identifiers in utf8mb3 (the BMP only) and trims control characters off aliases.
names = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs", "Cc"]),
                min_size=1, max_size=40).filter(lambda s: s == s.strip())


@given(names)
def test_ident_round_trips(name: str) -> None:
    quoted = ident(name)
    assert quoted.startswith("`") and quoted.endswith("`")
    inner = quoted[1:-1]
    assert inner.replace("``", "").count("`") == 0
    assert inner.replace("``", "`") == name


@DB
@given(names)
def test_ident_means_the_name_to_the_server(conn: Any, name: str) -> None:
    with conn.cursor() as cursor:
        cursor.execute(f"SELECT 1 AS {ident(name)}")
        assert cursor.description[0][0] == name


fragments = st.text(alphabet=string.ascii_letters[:4] + "%_\\'", max_size=12)


@DB
@given(fragments, fragments)
def test_like_contains_matches_literally(conn: Any, haystack: str, needle: str) -> None:
    with conn.cursor() as cursor:
        cursor.execute("SELECT %s COLLATE utf8mb4_bin LIKE %s", (haystack, like_contains(needle)))
        assert bool(cursor.fetchone()[0]) == (needle in haystack)


values = st.one_of(st.none(), st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60))


@DB
@given(st.lists(values, min_size=3, max_size=3), st.binary(max_size=20))
def test_rendered_literals_insert_back_the_same_values(conn: Any, texts: list[str | None], blob: bytes) -> None:
    with conn.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE IF NOT EXISTS lit (a TEXT, b VARCHAR(200), c LONGTEXT, d BLOB, "
                       "e BIT(8), f DECIMAL(10,2), g DATETIME(6)) CHARACTER SET utf8mb4")
        cursor.execute("DELETE FROM lit")
        cursor.execute("INSERT INTO lit VALUES (%s, %s, %s, %s, b'101', 12.5, '2024-02-29 23:59:59.123456')",
                       (*texts, blob))
        columns = [("a", "text"), ("b", "varchar"), ("c", "longtext"), ("d", "blob"), ("e", "bit"),
                   ("f", "decimal"), ("g", "datetime")]
        cursor.execute(f"SELECT {tuple_expr(columns)} FROM lit")  # noqa: S608
        (rendered,) = cursor.fetchone()
        assert "\n" not in rendered and "\r" not in rendered  # one line per statement
        cursor.execute("SELECT * FROM lit")
        original = cursor.fetchone()
        cursor.execute(f"INSERT INTO lit VALUES {rendered}")  # noqa: S608
        cursor.execute("SELECT * FROM lit")
        rows = cursor.fetchall()
        assert len(rows) == 2 and rows[0] == rows[1] == original


@given(st.text(max_size=30))
def test_parse_search(text: str) -> None:
    search = parse_search(text)
    if not text.strip():
        assert search is None
        return
    assert search is not None
    stripped = text.strip()
    digits = stripped.removeprefix("#")
    if digits.isascii() and digits.isdigit() and len(digits) <= 18:
        assert search.group_id == int(digits)
        assert search.id_only == stripped.startswith("#")
    else:
        assert search.group_id is None and not search.id_only and search.text == stripped


@given(st.sampled_from(ORDER_KEYS), st.booleans(), st.sampled_from(["-{}", "{} desc", "{}", "{} asc", " {} "]))
def test_parse_order(key: str, upper: bool, form: str) -> None:
    text = form.format(key.upper() if upper else key)
    order = parse_order(text)
    assert order.key == key and order.descending == ("-" in form or "desc" in form)
    assert parse_order(str(order)) == order


@given(st.text(max_size=20).filter(lambda s: s.strip().lower().lstrip("-").split(" ")[0] not in ORDER_KEYS))
def test_parse_order_refuses_the_rest(text: str) -> None:
    with pytest.raises(ValueError):
        parse_order(text)


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[str], dict[str, list[str]]]:
    tables = draw(st.lists(st.text(string.ascii_lowercase, min_size=1, max_size=5), min_size=1, max_size=8,
                           unique=True))
    # Edges only point to earlier tables in a hidden order: acyclic by construction.
    hidden = draw(st.permutations(tables))
    parents = {t: draw(st.lists(st.sampled_from(hidden[:i] or ["outside"]), max_size=3))
               for i, t in enumerate(hidden)}
    return tables, parents


@given(dags())
def test_topo_order_puts_parents_first(dag: tuple[list[str], dict[str, list[str]]]) -> None:
    tables, parents = dag
    order = topo_order(tables, parents)
    assert sorted(order) == sorted(tables)
    position = {t: i for i, t in enumerate(order)}
    for child, refs in parents.items():
        for parent in refs:
            if parent in position and parent != child:
                assert position[parent] < position[child]
    assert topo_order(tables, parents) == order  # deterministic


def test_topo_order_names_a_cycle() -> None:
    with pytest.raises(CycleError) as cycle:
        topo_order(["a", "b", "c", "d"], {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]})
    assert set(cycle.value.tables) == {"a", "b", "c", "d"}
    assert topo_order(["a"], {"a": ["a"]}) == ["a"]  # a self reference is no cycle


@given(st.lists(st.text(string.ascii_letters + "é'", min_size=1, max_size=30), max_size=60),
       st.integers(min_value=20, max_value=400))
def test_batches_keep_every_value_within_the_size(items: list[str], limit: int) -> None:
    prefix = "INSERT INTO t VALUES "
    statements = list(batches(prefix, items, limit))
    rebuilt = [v for s in statements for v in s[len(prefix):].split(",")] if items else []
    assert rebuilt == items
    for statement in statements:
        assert statement.startswith(prefix)
        if statement.count(",") > 0:
            assert len(statement.encode()) <= limit


@given(st.dictionaries(st.sampled_from(["app1", "app2", "app3", "app4"]),
                       st.lists(st.integers(min_value=0, max_value=5000), max_size=25), min_size=1),
       st.integers(min_value=0, max_value=15))
def test_suggested_moves_always_even_out(sizes: dict[str, list[int]], max_moves: int) -> None:
    groups: dict[str, list[tuple[int, int]]] = {}
    gid = 0
    for server, counts in sizes.items():
        groups[server] = []
        for n in counts:
            gid += 1
            groups[server].append((gid, n))
    load = {s: sum(n for _, n in g) for s, g in groups.items()}
    where = {g: s for s, items in groups.items() for g, _ in items}
    moves = suggest_moves(groups, max_moves=max_moves)
    assert len(moves) <= max_moves
    assert len({m[0] for m in moves}) == len(moves)
    for group, source, target, rows in moves:
        assert where[group] == source != target and rows > 0
        before = sum(v * v for v in load.values())
        load[source] -= rows
        load[target] += rows
        where[group] = target
        assert sum(v * v for v in load.values()) < before
    assert sum(load.values()) == sum(n for counts in sizes.values() for n in counts)


@given(st.integers(0, 10**7), st.integers(0, 10**9), st.floats(0, 1), st.integers(1, 1 << 24),
       st.integers(0, 10**7), st.floats(0, 1))
def test_estimate_grows_with_work(rows: int, data: int, rtt: float, batch: int, more: int, slower: float) -> None:
    base = estimate_seconds(rows=rows, data_bytes=data, rtt=rtt, batch_bytes=batch, tables=7)
    assert base >= 0
    assert estimate_seconds(rows=rows + more, data_bytes=data + more, rtt=rtt + slower, batch_bytes=batch,
                            tables=7) >= base


checksums = st.builds(Checksum, st.integers(0, 100), st.integers(0, 2**70), st.integers(0, 2**64 - 1))


@given(st.dictionaries(st.sampled_from(["a", "b", "c"]), checksums),
       st.dictionaries(st.sampled_from(["a", "b", "c"]), checksums))
def test_diff_checksums_is_empty_exactly_when_equal(left: dict[str, Checksum], right: dict[str, Checksum]) -> None:
    assert (diff_checksums(left, right, "x", "y") == []) == (left == right)
    assert diff_checksums(left, dict(left), "x", "y") == []


@given(names)
def test_line_table_reads_back_any_table_name(name: str) -> None:
    assume("\n" not in name)
    line = ("INSERT INTO " + ident(name) + " (`id`) VALUES (1);\n").encode()  # noqa: S608
    assert line_table(line, "sql") == name
    assert line_table(b"-- a comment\n", "sql") is None


def _schema_rows(extra_fk: bool) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    tables = {"groups": ["id", "name", "suspended_at", "created_at"], "users": ["id", "email"],
              "notes": ["id", "group_id", "doc_id"], "docs": ["id", "group_id", "user_id"],
              "audit": ["id", "note_id"]}
    for table, columns in tables.items():
        rows.append(("t", table, "BASE TABLE", 10, 100, "InnoDB", None, None))
        for n, column in enumerate(columns, 1):
            rows.append(("c", table, column, n, "bigint(20)", "bigint", "NO", ""))
        rows.append(("u", table, "id", 1, "PRIMARY", None, None, None))
    rows.append(("t", "report", "VIEW", 0, 0, None, None, None))
    rows.append(("c", "report", "group_id", 1, "bigint(20)", "bigint", "NO", ""))
    fks = [("notes", "doc_id", "docs", "id"), ("notes", "group_id", "groups", "id"),
           ("docs", "group_id", "groups", "id"), ("docs", "user_id", "users", "id")]
    if extra_fk:
        fks.append(("audit", "note_id", "notes", "id"))
    for i, (table, column, ref, ref_column) in enumerate(fks):
        rows.append(("f", table, column, 1, f"fk{i}", ref, ref_column, None))
    return rows


def test_build_schema_finds_tenant_tables_in_order() -> None:
    schema = build_schema(_schema_rows(False), server="s", database="d", spec=GroupsSpec())
    assert schema.tenant_names == ("docs", "notes")  # notes refer to docs; the view is ignored
    assert schema.problems == ()
    assert [fk.table for fk in schema.tenant_user_refs()] == ["docs"]
    broken = build_schema(_schema_rows(True), server="s", database="d", spec=GroupsSpec())
    assert any("audit" in p and "notes" in p for p in broken.problems)
