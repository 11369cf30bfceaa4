"""Two real MariaDB servers for the groups tests, started once per session and always torn down.

- ``servers`` (session): the two ``MariaDBHandle`` (app1: groups 1..GROUPS_1, app2: from 1,000,001).
- ``app1`` / ``app2``: their ``MysqlEndpoint`` for the ``panel`` account over TCP.
- ``admin1`` / ``admin2``: superuser connections over the unix socket, for setting up faults.
- ``rows_of``: every row of a group, per table, to compare copies row by row.

Tests share the servers, so each test works on groups of its own (see ``GROUP_*`` below) and
undoes any schema change it makes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pymysql
import pytest

from panel.lab.mariadb import MariaDBHandle, cache_root, start_mariadb
from services.groups import MysqlEndpoint
from services.groups.endpoint import POOL
from services.groups.schema import forget_schemas
from services.inventory import GroupsSpec

GROUPS_1 = 80
GROUPS_2 = 40
OFFSET_2 = 1_000_000
SEED = 7

RowsOf = Callable[[MysqlEndpoint, int], dict[str, list[tuple[Any, ...]]]]


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MariaDBHandle, MariaDBHandle]]:
    folder = tmp_path_factory.mktemp("groups-mysql")
    # The seeded data dirs are cached where the lab caches them (PANEL_LAB_CACHE or the user cache
    # folder), keyed by seed, sizes and versions: after the first run the servers start in ~1 s.
    cache = cache_root()
    handles: list[MariaDBHandle] = []
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [
                pool.submit(start_mariadb, folder, server="app1", group_offset=0, groups=GROUPS_1, seed=SEED,
                            cache_dir=cache),
                pool.submit(start_mariadb, folder, server="app2", group_offset=OFFSET_2, groups=GROUPS_2,
                            seed=SEED, cache_dir=cache),
            ]
            errors = []
            for future in futures:
                try:
                    handles.append(future.result())
                except Exception as exc:
                    errors.append(exc)
            if errors:
                raise errors[0]
        yield handles[0], handles[1]
    finally:
        POOL.clear()
        forget_schemas()
        for handle in handles:
            handle.stop(remove_data=True)


@pytest.fixture(scope="session")
def spec() -> GroupsSpec:
    return GroupsSpec()


@pytest.fixture(scope="session")
def app1(servers: tuple[MariaDBHandle, MariaDBHandle]) -> MysqlEndpoint:
    return servers[0].endpoint(read_timeout=30)


@pytest.fixture(scope="session")
def app2(servers: tuple[MariaDBHandle, MariaDBHandle]) -> MysqlEndpoint:
    return servers[1].endpoint(read_timeout=30)


def _admin(handle: MariaDBHandle) -> Iterator[pymysql.connections.Connection[Any]]:
    conn = handle.admin_connection()
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def admin1(servers: tuple[MariaDBHandle, MariaDBHandle]) -> Iterator[pymysql.connections.Connection[Any]]:
    yield from _admin(servers[0])


@pytest.fixture
def admin2(servers: tuple[MariaDBHandle, MariaDBHandle]) -> Iterator[pymysql.connections.Connection[Any]]:
    yield from _admin(servers[1])


TABLES = ("groups", "memberships", "projects", "documents", "invoices", "activity")


def group_rows(endpoint: MysqlEndpoint, group_id: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the group (its row, its users, every tenant table), sorted, straight from the server."""
    conn = pymysql.connect(host=endpoint.host, port=endpoint.port, user=endpoint.user, password=endpoint.password,
                           database=endpoint.database, charset="utf8mb4")
    try:
        out: dict[str, list[tuple[Any, ...]]] = {}
        with conn.cursor() as cursor:
            cursor.execute("SELECT id, name, created_at FROM `groups` WHERE id = %s", (group_id,))
            out["groups"] = sorted(cursor.fetchall())
            for table in TABLES[1:]:
                cursor.execute(f"SELECT * FROM `{table}` WHERE group_id = %s ORDER BY id", (group_id,))  # noqa: S608
                out[table] = list(cursor.fetchall())
            cursor.execute(
                "SELECT * FROM users WHERE id IN (SELECT user_id FROM memberships WHERE group_id = %s "
                "UNION SELECT user_id FROM activity WHERE group_id = %s) ORDER BY id", (group_id, group_id))
            out["users"] = list(cursor.fetchall())
        return out
    finally:
        conn.close()


@pytest.fixture(scope="session")
def rows_of() -> RowsOf:
    return group_rows


def total_rows(rows: dict[str, list[tuple[Any, ...]]]) -> int:
    return sum(len(v) for v in rows.values())

