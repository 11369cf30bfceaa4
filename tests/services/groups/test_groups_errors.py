"""Typed, operator-readable errors; the password never shows."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from services.errors import AuthError, ConnectError
from services.groups import (
    ConnectionLost,
    MysqlAuthError,
    MysqlConnectError,
    MysqlEndpoint,
    SchemaError,
    group_detail,
    list_groups,
    move_group,
    plan_move,
)
from services.inventory import GroupsSpec

SECRET = "not-the-password-4711"


def test_wrong_password(app1: MysqlEndpoint, spec: GroupsSpec) -> None:
    wrong = dataclasses.replace(app1, password=SECRET)
    with pytest.raises(MysqlAuthError) as refused:
        list_groups(wrong, spec)
    assert isinstance(refused.value, AuthError)
    text = str(refused.value)
    assert "refused user 'panel'" in text and "app1/mysql" in text
    assert SECRET not in text and SECRET not in repr(refused.value.args)
    assert SECRET not in repr(wrong)


def test_nothing_listens(app1: MysqlEndpoint, spec: GroupsSpec) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gone = dataclasses.replace(app1, port=port, server="app9", connect_timeout=2)
    with pytest.raises(MysqlConnectError) as unreachable:
        group_detail(gone, spec, 1)
    assert isinstance(unreachable.value, ConnectError)
    assert f"127.0.0.1:{port}" in str(unreachable.value) and "SSH tunnel" in str(unreachable.value)


def test_missing_table_and_columns(app1: MysqlEndpoint) -> None:
    with pytest.raises(SchemaError, match="no table 'teams'"):
        list_groups(app1, GroupsSpec(table="teams"))
    with pytest.raises(SchemaError) as missing:
        list_groups(app1, GroupsSpec(suspended="disabled_at", name="title"))
    assert missing.value.table == "groups" and set(missing.value.columns) == {"disabled_at", "title"}


def test_a_move_to_an_unreachable_target_changes_nothing(app1: MysqlEndpoint, app2: MysqlEndpoint,
                                                         spec: GroupsSpec, rows_of: Any) -> None:
    before = rows_of(app1, 29)
    with pytest.raises(MysqlAuthError):
        move_group(app1, dataclasses.replace(app2, password=SECRET), spec, 29)
    with pytest.raises(MysqlAuthError):
        plan_move(app1, dataclasses.replace(app2, password=SECRET), spec, 29)
    assert rows_of(app1, 29) == before
    assert not group_detail(app1, spec, 29).is_suspended


def test_a_dropped_pooled_session_is_replaced(app1: MysqlEndpoint, spec: GroupsSpec, admin1: Any) -> None:
    assert list_groups(app1, spec, limit=1).rows
    with admin1.cursor() as cursor:
        cursor.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'panel'")
        for (session,) in cursor.fetchall():
            cursor.execute(f"KILL CONNECTION {int(session)}")
    assert list_groups(app1, spec, limit=1).rows  # retried once on a fresh session


def test_a_stuck_server_times_out_as_connection_lost(app1: MysqlEndpoint, spec: GroupsSpec, admin1: Any) -> None:
    impatient = dataclasses.replace(app1, read_timeout=1)
    with admin1.cursor() as cursor:
        cursor.execute("LOCK TABLES `groups` WRITE")
        try:
            started = time.monotonic()
            with pytest.raises(ConnectionLost, match="no answer within the read timeout"):
                list_groups(impatient, spec, limit=1)
            assert time.monotonic() - started < 10
        finally:
            cursor.execute("UNLOCK TABLES")
