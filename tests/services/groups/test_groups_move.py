"""Planning and moving groups between two real MariaDB servers, and every reason to refuse a move."""

from __future__ import annotations

from typing import Any

import pymysql
import pytest

from services.cancel import CancelToken
from services.groups import (
    MoveCancelled,
    MoveRefused,
    MysqlEndpoint,
    group_detail,
    move_group,
    plan_move,
)
from services.inventory import GroupsSpec


def _empty(rows: dict[str, list[Any]]) -> bool:
    return all(not v for t, v in rows.items() if t != "users")


def _run(admin: pymysql.connections.Connection[Any], *statements: str) -> None:
    with admin.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    admin.commit()


def test_plan_changes_nothing(app1: MysqlEndpoint, app2: MysqlEndpoint, spec: GroupsSpec, rows_of: Any) -> None:
    before = rows_of(app1, 11), rows_of(app2, 11)
    plan = plan_move(app1, app2, spec, 11)
    assert plan.mode == "move" and plan.group_name == "bright-ember-co"
    assert [t.table for t in plan.tables][:2] == ["groups", "users"]
    names = [t.table for t in plan.tables]
    assert names.index("projects") < names.index("documents")
    assert {t.table: t.rows for t in plan.tables} == {t: len(v) for t, v in before[0].items()}
    assert plan.users_to_copy == len(before[0]["users"]) and plan.users_shared == 0
    assert plan.estimated_seconds >= 0 and "bright-ember-co" in plan.describe()
    assert (rows_of(app1, 11), rows_of(app2, 11)) == before
    assert not group_detail(app1, spec, 11).is_suspended


def test_move_there_and_back_row_by_row(app1: MysqlEndpoint, app2: MysqlEndpoint, spec: GroupsSpec,
                                        rows_of: Any) -> None:
    before = rows_of(app1, 11)
    labels: list[str] = []
    result = move_group(app1, app2, spec, 11, progress=lambda label, done, total: labels.append(label),
                        batch_bytes=4096)
    assert result.outcome == "moved" and result.active_on_target
    assert result.rows_copied == sum(len(v) for v in before.values())
    assert result.users_copied == len(before["users"])
    assert {"plan", "freeze", "copy", "verify", "switch"} <= set(labels)
    assert "copy documents" in labels and any(label.startswith("delete ") for label in labels)
    assert rows_of(app2, 11) == before
    after_x = rows_of(app1, 11)
    assert _empty(after_x)
    detail = group_detail(app2, spec, 11)
    assert not detail.is_suspended and detail.server == "app2"
    assert "moved from app1 to app2" in result.summary()
    # Move it home again: the same rows come back, and the users are shared where they still exist.
    back = move_group(app2, app1, spec, 11)
    assert back.outcome == "moved"
    assert rows_of(app1, 11) == before
    assert _empty(rows_of(app2, 11))


def test_users_still_used_on_the_source_stay(app1: MysqlEndpoint, app2: MysqlEndpoint, spec: GroupsSpec,
                                             admin1: Any) -> None:
    # The demo owner belongs to acme, acme-labs, acme-europe and desert-ops: moving desert-ops must keep her.
    owner = "wile.coyote@acme.example"
    result = move_group(app1, app2, spec, 4)
    try:
        with admin1.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM users WHERE email = %s", (owner,))
            assert cursor.fetchone()[0] == 1
        assert owner in [m.email for m in group_detail(app2, spec, 4).members]
        assert result.users_deleted < result.users_copied
    finally:
        move_group(app2, app1, spec, 4)


def test_moving_twice_is_done(app1: MysqlEndpoint, app2: MysqlEndpoint, spec: GroupsSpec) -> None:
    move_group(app1, app2, spec, 24)
    try:
        assert plan_move(app1, app2, spec, 24).mode == "done"
        again = move_group(app1, app2, spec, 24)
        assert again.outcome == "already-moved" and again.active_on_target
    finally:
        move_group(app2, app1, spec, 24)


def test_schema_mismatch_is_refused(app1: MysqlEndpoint, app2: MysqlEndpoint, spec: GroupsSpec, admin2: Any,
                                    rows_of: Any) -> None:
    before = rows_of(app1, 12), rows_of(app2, 12)
    _run(admin2, "ALTER TABLE documents ADD COLUMN summary TEXT NULL",
         "ALTER TABLE invoices MODIFY status VARCHAR(20) NOT NULL")
    try:
        with pytest.raises(MoveRefused) as refused:
            plan_move(app1, app2, spec, 12)
        text = str(refused.value)
        assert "do not match" in text and "Nothing was changed" in text
        assert "column documents.summary exists on app2 but not on app1" in refused.value.reasons
        assert "column invoices.status is varchar(16) on app1 but varchar(20) on app2" in refused.value.reasons
        with pytest.raises(MoveRefused):
            move_group(app1, app2, spec, 12)
        assert (rows_of(app1, 12), rows_of(app2, 12)) == before
        assert not group_detail(app1, spec, 12).is_suspended
    finally:
        _run(admin2, "ALTER TABLE documents DROP COLUMN summary",
             "ALTER TABLE invoices MODIFY status VARCHAR(16) NOT NULL")


def test_id_collision_is_refused(app1: MysqlEndpoint, app2: MysqlEndpoint, spec: GroupsSpec, admin2: Any,
                                 rows_of: Any) -> None:
    before = rows_of(app1, 13)
    taken = before["projects"][0][0]
    _run(admin2, f"INSERT INTO projects (id, group_id, name, created_at) "  # noqa: S608
                 f"VALUES ({int(taken)}, 1000002, 'squatter', '2024-01-01')")
    after_y = rows_of(app2, 13)
    try:
        with pytest.raises(MoveRefused) as refused:
            plan_move(app1, app2, spec, 13)
        assert f"projects: 1 of the group's id values already exist on app2 (e.g. id={taken})" \
            in refused.value.reasons
        with pytest.raises(MoveRefused):
            move_group(app1, app2, spec, 13)
        assert rows_of(app1, 13) == before and rows_of(app2, 13) == after_y
        assert not group_detail(app1, spec, 13).is_suspended
    finally:
        _run(admin2, f"DELETE FROM projects WHERE id = {int(taken)}")  # noqa: S608


def test_email_collision_is_refused(app1: MysqlEndpoint, app2: MysqlEndpoint, spec: GroupsSpec, admin2: Any,
                                    rows_of: Any) -> None:
    email = rows_of(app1, 14)["users"][0][1]
    with admin2.cursor() as cursor:
        cursor.execute("SELECT id, email FROM users ORDER BY id DESC LIMIT 1")
        uid, old = cursor.fetchone()
        cursor.execute("UPDATE users SET email = %s WHERE id = %s", (email, uid))
    admin2.commit()
    try:
        with pytest.raises(MoveRefused) as refused:
            move_group(app1, app2, spec, 14)
        assert any(f"email {email} is user" in r and f"but user {uid} on app2" in r for r in refused.value.reasons)
        assert not group_detail(app1, spec, 14).is_suspended
        assert _empty(rows_of(app2, 14))
    finally:
        with admin2.cursor() as cursor:
            cursor.execute("UPDATE users SET email = %s WHERE id = %s", (old, uid))
        admin2.commit()


def test_a_suspended_group_stays_suspended(app1: MysqlEndpoint, app2: MysqlEndpoint, spec: GroupsSpec) -> None:
    suspended_at = group_detail(app1, spec, 5).suspended
    assert suspended_at is not None
    result = move_group(app1, app2, spec, 5)
    try:
        assert not result.active_on_target
        assert group_detail(app2, spec, 5).suspended == suspended_at
    finally:
        back = move_group(app2, app1, spec, 5)
    assert group_detail(app1, spec, 5).suspended == suspended_at and not back.active_on_target


def test_a_second_mover_is_refused(app1: MysqlEndpoint, app2: MysqlEndpoint, spec: GroupsSpec, admin1: Any) -> None:
    with admin1.cursor() as cursor:
        cursor.execute("SELECT GET_LOCK('panel.move.saas.23', 0)")
        try:
            with pytest.raises(MoveRefused, match="Another move of group 23"):
                move_group(app1, app2, spec, 23)
        finally:
            cursor.execute("SELECT RELEASE_LOCK('panel.move.saas.23')")
    assert not group_detail(app1, spec, 23).is_suspended


def test_cancel_during_the_copy(app1: MysqlEndpoint, app2: MysqlEndpoint, spec: GroupsSpec, rows_of: Any) -> None:
    before = rows_of(app1, 22)
    token = CancelToken()

    def progress(label: str, done: int, total: int) -> None:
        if label.startswith("copy ") and done:
            token.cancel()

    with pytest.raises(MoveCancelled) as cancelled:
        move_group(app1, app2, spec, 22, progress=progress, cancel=token, batch_bytes=2048)
    assert "cancelled" in str(cancelled.value) and "active again on app1" in str(cancelled.value)
    assert not cancelled.value.both_copies and not cancelled.value.source_frozen
    assert rows_of(app1, 22) == before and _empty(rows_of(app2, 22))
    assert not group_detail(app1, spec, 22).is_suspended
