"""Helpers for the groups tests of the window and the CLI: read a lab server's rows straight from MariaDB.

Straight means over TCP to the lab's MariaDB port with pymysql, not through the panel, so that a
test checks what the panel did with a second pair of eyes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql

from panel.context import PanelContext
from panel.lab.fleet import LabInfo
from panel.lab.secrets import MYSQL_PASSWORD
from tests.services.groups.bench_move import BIG
from views.state import PanelState
from views.workers import JobRunner

BIG_GROUPS = 100_000  # groups added to the private "app1" of big_pair (tests/views/groups/conftest.py)
BIG_ROWS = 50_000  # make_big_group's size argument for group BIG there (about 45,000 rows)



@dataclass
class Panel:
    """What a page needs: the core context, the job runner and the shared state."""

    context: PanelContext
    runner: JobRunner
    state: PanelState
    store_path: Path


TENANT = ("memberships", "projects", "documents", "invoices", "activity")
Rows = dict[str, list[tuple[Any, ...]]]
__all__ = ["BIG", "BIG_GROUPS", "BIG_ROWS", "Panel"]


def connect(port: int) -> pymysql.connections.Connection[Any]:
    return pymysql.connect(host="127.0.0.1", port=port, user="panel", password=MYSQL_PASSWORD, database="saas",
                           charset="utf8mb4", autocommit=True)


def lab_port(lab: LabInfo, server: str) -> int:
    port = lab.server(server).mysql_port
    assert port is not None, f"the lab's {server} has no MariaDB"
    return port


def group_rows(port: int, group_id: int) -> Rows:
    """Every row of the group (its row, the users its rows refer to, every tenant table), sorted."""
    conn = connect(port)
    try:
        out: Rows = {}
        with conn.cursor() as cursor:
            cursor.execute("SELECT * FROM `groups` WHERE id = %s", (group_id,))
            out["groups"] = list(cursor.fetchall())
            for table in TENANT:
                cursor.execute(f"SELECT * FROM `{table}` WHERE group_id = %s ORDER BY id", (group_id,))  # noqa: S608
                out[table] = list(cursor.fetchall())
            cursor.execute(
                "SELECT * FROM users WHERE id IN (SELECT user_id FROM memberships WHERE group_id = %s "
                "UNION SELECT user_id FROM activity WHERE group_id = %s) ORDER BY id", (group_id, group_id))
            out["users"] = list(cursor.fetchall())
        return out
    finally:
        conn.close()


def count(port: int, sql: str, args: Any = None) -> int:
    conn = connect(port)
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql, args)
            row = cursor.fetchone()
            assert row is not None
            return int(row[0])
    finally:
        conn.close()


def has_group(port: int, group_id: int) -> bool:
    return count(port, "SELECT COUNT(*) FROM `groups` WHERE id = %s", (group_id,)) == 1


def suspended_at(port: int, group_id: int) -> Any:
    conn = connect(port)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT suspended_at FROM `groups` WHERE id = %s", (group_id,))
            row = cursor.fetchone()
            assert row is not None, f"no group {group_id}"
            return row[0]
    finally:
        conn.close()


def same_rows_moved(before: Rows, after: Rows) -> None:
    """The group's rows on the target equal the source's, row by row (the group row's suspension aside)."""
    for table in before:
        if table == "groups":
            assert [r[:3] for r in after[table]] == [r[:3] for r in before[table]], table
        else:
            assert after[table] == before[table], table
