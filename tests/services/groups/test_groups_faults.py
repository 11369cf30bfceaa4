"""Faults at every step of a move: no row is ever lost, and a re-run always finishes the move."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pymysql
import pytest

from services.groups import MoveFailed, MysqlEndpoint, group_detail, move_group
from services.inventory import GroupsSpec


class Boom(Exception):
    pass


def _empty(rows: dict[str, list[Any]]) -> bool:
    return all(not v for t, v in rows.items() if t != "users")


def _fail_at(prefix: str, nth: int, action: Callable[[], None] | None = None) -> Callable[[str], None]:
    """A hook that acts (raises, or runs ``action``) the ``nth`` time a point starting with ``prefix`` is hit."""
    hits = 0

    def hook(point: str) -> None:
        nonlocal hits
        if point.startswith(prefix):
            hits += 1
            if hits == nth:
                if action is None:
                    raise Boom(f"injected at {point}")
                action()

    return hook


def _kill_panel_sessions(admin: pymysql.connections.Connection[Any]) -> Callable[[], None]:
    def kill() -> None:
        with admin.cursor() as cursor:
            cursor.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'panel'")
            for (session,) in cursor.fetchall():
                cursor.execute(f"KILL CONNECTION {int(session)}")

    return kill


def _check_and_finish(app1: MysqlEndpoint, app2: MysqlEndpoint, spec: GroupsSpec, rows_of: Any, group: int,
                      before: dict[str, list[Any]], failure: MoveFailed, committed: bool) -> None:
    on_x, on_y = rows_of(app1, group), rows_of(app2, group)
    assert on_x == before, "the source lost or changed rows"
    assert failure.both_copies is committed
    if committed:
        assert on_y == before, "the committed copy differs"
        assert "Nothing was lost" in str(failure) and "Re-run the move" in str(failure)
    else:
        assert _empty(on_y), "a failed copy left rows on the target"
        assert "Nothing changed" in str(failure)
        assert not group_detail(app1, spec, group).is_suspended, "the source stayed frozen"
    activate = None if failure.was_suspended is None else not failure.was_suspended
    again = move_group(app1, app2, spec, group, activate=activate)
    assert again.outcome == ("resumed" if committed else "moved")
    assert rows_of(app2, group) == before and _empty(rows_of(app1, group))
    assert not group_detail(app2, spec, group).is_suspended
    # And home again, so the shared servers look as they did.
    move_group(app2, app1, spec, group)
    assert rows_of(app1, group) == before


@pytest.mark.parametrize(
    ("group", "prefix", "nth", "committed"),
    [
        (15, "frozen", 1, False),
        (16, "copy:", 3, False),  # mid-copy: after the third INSERT batch
        (17, "verified", 1, False),  # verified but not committed
        (18, "copied", 1, True),  # committed on the target, nothing else done
        (19, "switched", 1, True),  # active on the target, source still frozen
        (20, "delete:", 2, True),  # half of the source's tables deleted (then rolled back)
    ],
)
def test_injected_failure(app1: MysqlEndpoint, app2: MysqlEndpoint, spec: GroupsSpec, rows_of: Any, group: int,
                          prefix: str, nth: int, committed: bool) -> None:
    before = rows_of(app1, group)
    with pytest.raises(MoveFailed) as failed:
        move_group(app1, app2, spec, group, hook=_fail_at(prefix, nth), batch_bytes=1024)
    assert "injected at" in str(failed.value)
    _check_and_finish(app1, app2, spec, rows_of, group, before, failed.value, committed)


def test_target_connection_killed_mid_copy(app1: MysqlEndpoint, app2: MysqlEndpoint, spec: GroupsSpec,
                                           rows_of: Any, admin2: Any) -> None:
    before = rows_of(app1, 25)
    with pytest.raises(MoveFailed) as failed:
        move_group(app1, app2, spec, 25, hook=_fail_at("copy:", 2, _kill_panel_sessions(admin2)),
                   batch_bytes=1024)
    assert "connection to the database of app2 was lost" in str(failed.value)
    _check_and_finish(app1, app2, spec, rows_of, 25, before, failed.value, committed=False)


def test_target_connection_killed_before_the_commit(app1: MysqlEndpoint, app2: MysqlEndpoint, spec: GroupsSpec,
                                                    rows_of: Any, admin2: Any) -> None:
    """The commit fails: the move looks again with a fresh session, finds no copy, and undoes the freeze."""
    before = rows_of(app1, 31)
    with pytest.raises(MoveFailed) as failed:
        move_group(app1, app2, spec, 31, hook=_fail_at("verified", 1, _kill_panel_sessions(admin2)))
    _check_and_finish(app1, app2, spec, rows_of, 31, before, failed.value, committed=False)


def test_source_connection_killed_mid_copy(app1: MysqlEndpoint, app2: MysqlEndpoint, spec: GroupsSpec,
                                           rows_of: Any, admin1: Any) -> None:
    before = rows_of(app1, 26)
    with pytest.raises(MoveFailed) as failed:
        move_group(app1, app2, spec, 26, hook=_fail_at("copy:", 2, _kill_panel_sessions(admin1)),
                   batch_bytes=1024)
    assert "app1" in str(failed.value)
    _check_and_finish(app1, app2, spec, rows_of, 26, before, failed.value, committed=False)


def test_source_connection_killed_mid_delete(app1: MysqlEndpoint, app2: MysqlEndpoint, spec: GroupsSpec,
                                             rows_of: Any, admin1: Any) -> None:
    before = rows_of(app1, 27)
    with pytest.raises(MoveFailed) as failed:
        move_group(app1, app2, spec, 27, hook=_fail_at("delete:", 1, _kill_panel_sessions(admin1)))
    assert failed.value.both_copies
    _check_and_finish(app1, app2, spec, rows_of, 27, before, failed.value, committed=True)


def test_rows_written_on_the_frozen_source_are_never_deleted(app1: MysqlEndpoint, app2: MysqlEndpoint,
                                                             spec: GroupsSpec, rows_of: Any, admin1: Any) -> None:
    """An app that ignores the suspension and writes during the move: the delete refuses."""

    def sneak_in() -> None:
        with admin1.cursor() as cursor:
            cursor.execute("INSERT INTO activity (group_id, user_id, verb, at) VALUES (28, NULL, 'late', NOW())")
        admin1.commit()

    with pytest.raises(MoveFailed) as failed:
        move_group(app1, app2, spec, 28, hook=_fail_at("switched", 1, sneak_in))
    assert "changed on app1 after the copy" in str(failed.value) and "nothing was deleted" in str(failed.value)
    assert failed.value.both_copies
    late = [r for r in rows_of(app1, 28)["activity"] if r[3] == "late"]
    assert len(late) == 1
    # The copies now differ, so a re-run refuses rather than guess which one is right.
    from services.groups import MoveRefused

    with pytest.raises(MoveRefused, match="the two copies differ"):
        move_group(app1, app2, spec, 28)
    # The operator settles it: here, by removing the target's copy and moving again.
    conn = pymysql.connect(host=app2.host, port=app2.port, user=app2.user, password=app2.password,
                           database=app2.database)
    try:
        with conn.cursor() as cursor:
            for table in ("activity", "invoices", "documents", "projects", "memberships"):
                cursor.execute(f"DELETE FROM `{table}` WHERE group_id = 28")  # noqa: S608
            cursor.execute("DELETE FROM `groups` WHERE id = 28")
        conn.commit()
    finally:
        conn.close()
    with admin1.cursor() as cursor:
        cursor.execute("UPDATE `groups` SET suspended_at = NULL WHERE id = 28")
    admin1.commit()
    assert move_group(app1, app2, spec, 28).outcome == "moved"
    assert len([r for r in rows_of(app2, 28)["activity"] if r[3] == "late"]) == 1
    move_group(app2, app1, spec, 28)
