"""The lab's private MariaDB (panel.lab.mariadb) and its demo data (panel.lab.saas_data)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from panel.lab import saas_data
from panel.lab.mariadb import MariaDBError, MariaDBHandle, build_template, start_mariadb, stop_mariadb
from panel.lab.secrets import MYSQL_PASSWORD

GROUPS = 25
# Every server in this file uses the same seed and sizes, so only the first one builds the template.
SAME = {"server": "app2", "group_offset": 1_000_000, "groups": GROUPS, "seed": 3}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mariadb-cache")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> Iterator[MariaDBHandle]:
    handle = start_mariadb(tmp_path_factory.mktemp("mariadb"), cache_dir=cache, **SAME)  # type: ignore[arg-type]
    try:
        yield handle
    finally:
        handle.stop(remove_data=True)


def _one(cursor: Any) -> tuple[Any, ...]:
    row = cursor.fetchone()
    assert row is not None
    return tuple(row)


def _panel(handle: MariaDBHandle, password: str = MYSQL_PASSWORD) -> pymysql.connections.Connection:
    return pymysql.connect(host="127.0.0.1", port=handle.port, user="panel", password=password, database="saas")


def test_serves_the_demo_database_to_the_panel_account(server: MariaDBHandle) -> None:
    assert server.alive() and server.port > 0 and server.socket.exists()
    expected = saas_data.generate(saas_data.SeedSpec("app2", 1_000_000, GROUPS, 3)).counts()
    conn = _panel(server)
    try:
        with conn.cursor() as cursor:
            for table, count in expected.items():
                cursor.execute(f"SELECT COUNT(*), MIN(id), MAX(id) FROM `{table}`")  # noqa: S608
                n, low, _ = _one(cursor)
                assert n == count, table
                assert low > (1_000_000 if table == "groups" else 1_000_000_000), table
            cursor.execute("SELECT name FROM `groups` WHERE id = 1000001")
            assert _one(cursor)[0] == "globex"
            cursor.execute("SELECT COUNT(*) FROM `groups` WHERE suspended_at IS NOT NULL AND name = 'umbrella'")
            assert _one(cursor)[0] == 1
            cursor.execute("SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS "
                           "WHERE CONSTRAINT_SCHEMA = 'saas'")
            assert _one(cursor)[0] == 8  # real foreign keys
    finally:
        conn.close()
    with pytest.raises(pymysql.err.OperationalError) as refused:
        _panel(server, "wrong").close()
    assert refused.value.args[0] == 1045


def test_no_password_on_any_command_line(server: MariaDBHandle) -> None:
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            assert MYSQL_PASSWORD.encode() not in argv


def test_admin_connection_over_the_socket(server: MariaDBHandle) -> None:
    conn = server.admin_connection()
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT CURRENT_USER()")
            assert _one(cursor)[0].startswith("root@")
    finally:
        conn.close()


def test_the_same_handle_is_found_again(server: MariaDBHandle) -> None:
    again = MariaDBHandle.load(server.base.parent, "app2")
    assert again is not None and (again.pid, again.port, again.socket) == (server.pid, server.port, server.socket)
    reused = start_mariadb(server.base.parent, **SAME)  # type: ignore[arg-type]
    assert reused.pid == server.pid  # already running: reused, not started twice


def test_outlives_the_process_that_started_it_and_keeps_its_data(tmp_path: Path, cache: Path) -> None:
    folder = tmp_path / "lab"
    script = ("import sys; from pathlib import Path; from panel.lab.mariadb import start_mariadb; "
              f"h = start_mariadb(Path(sys.argv[1]), server='app2', group_offset=1_000_000, groups={GROUPS}, "
              "seed=3, cache_dir=Path(sys.argv[2])); print(h.port)")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[3]))
    done = subprocess.run([sys.executable, "-c", script, str(folder), str(cache)], capture_output=True, text=True,
                          timeout=120, env=env, check=True)
    handle = MariaDBHandle.load(folder, "app2")
    assert handle is not None and handle.alive() and int(done.stdout.strip()) == handle.port
    try:
        conn = _panel(handle)
        with conn.cursor() as cursor:
            cursor.execute("UPDATE `groups` SET name = 'renamed' WHERE id = 1000001")
        conn.commit()
        conn.close()
        assert stop_mariadb(folder, "app2")
        assert not handle.alive()
        assert json.loads((handle.base / "state.json").read_text())["pid"] == 0
        # A restart keeps the data (as a rebooted server would).
        restarted = start_mariadb(folder, cache_dir=cache, **SAME)  # type: ignore[arg-type]
        assert restarted.pid != handle.pid and restarted.alive()
        conn = _panel(restarted)
        with conn.cursor() as cursor:
            cursor.execute("SELECT name FROM `groups` WHERE id = 1000001")
            assert _one(cursor)[0] == "renamed"
        conn.close()
        # fresh=True starts over from the seeded template.
        fresh = start_mariadb(folder, cache_dir=cache, fresh=True, **SAME)  # type: ignore[arg-type]
        conn = _panel(fresh)
        with conn.cursor() as cursor:
            cursor.execute("SELECT name FROM `groups` WHERE id = 1000001")
            assert _one(cursor)[0] == "globex"
        conn.close()
    finally:
        stop_mariadb(folder, "app2", remove_data=True)
    assert not (folder / "mariadb-app2").exists()
    assert not stop_mariadb(folder, "app2")


def test_the_seeded_template_is_cached(cache: Path) -> None:
    spec = saas_data.SeedSpec("app2", 1_000_000, GROUPS, 3)
    template = build_template(spec, cache_dir=cache)  # built by the module's server already
    assert (template.parent / "complete").exists()
    timings = json.loads((template.parent / "timings.json").read_text())
    assert timings["rows"] == saas_data.generate(spec).counts()
    assert build_template(spec, cache_dir=cache) == template


def test_a_taken_port_is_reported(tmp_path: Path, cache: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(MariaDBError, match=f"could not start on port {port}"):
            start_mariadb(tmp_path, port=port, cache_dir=cache, **SAME)  # type: ignore[arg-type]
    stop_mariadb(tmp_path, "app2", remove_data=True)


def test_long_folders_get_a_short_socket(tmp_path: Path, cache: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    handle = start_mariadb(deep, cache_dir=cache, **SAME)  # type: ignore[arg-type]
    try:
        assert len(str(handle.socket)) < 100 and handle.alive()
        handle.admin_connection().close()
    finally:
        handle.stop(remove_data=True)
    assert not handle.socket.parent.exists()


def test_generated_data_is_deterministic_and_never_collides() -> None:
    one = saas_data.generate(saas_data.SeedSpec("app1", 0, 300, 1))
    assert one.tables == saas_data.generate(saas_data.SeedSpec("app1", 0, 300, 1)).tables
    assert one.tables != saas_data.generate(saas_data.SeedSpec("app1", 0, 300, 2)).tables
    two = saas_data.generate(saas_data.SeedSpec("app2", 1_000_000, 200, 1))
    for table in saas_data.TABLE_ORDER:
        ids_one = {int(str(r[0])) for r in one.tables[table]}
        ids_two = {int(str(r[0])) for r in two.tables[table]}
        assert len(ids_one) == len(one.tables[table]) and not ids_one & ids_two, table
    emails_one = {r[1] for r in one.tables["users"]}
    assert len(emails_one) == len(one.tables["users"])
    assert not emails_one & {r[1] for r in two.tables["users"]}
    groups = {r[0]: r for r in one.tables["groups"]}
    assert [groups[str(i)][1] for i in (1, 2, 3, 4, 5)] == ["acme", "acme-labs", "acme-europe", "desert-ops",
                                                            "initech"]
    assert groups["5"][3] is not None  # initech is suspended
    owner = next(r[0] for r in one.tables["users"] if r[1] == "wile.coyote@acme.example")
    assert {r[1] for r in one.tables["memberships"] if r[2] == owner} >= {"1", "2", "3", "4"}
    member = {r[2] for r in one.tables["memberships"]}
    assert {r[2] for r in one.tables["activity"] if r[2] is not None} <= member


def test_prune_removes_old_versions_and_abandoned_builds(tmp_path: Path) -> None:
    from panel.lab.mariadb import prune_cache

    current = tmp_path / f"s{saas_data.SCHEMA_VERSION}d{saas_data.DATA_VERSION}-app1-o0-g3-r1-x"
    old = tmp_path / "s0d0-app1-o0-g3-r1-x"
    building = tmp_path / "building-abc"
    fresh_build = tmp_path / "building-def"
    for path in (current, old, building, fresh_build):
        (path / "data").mkdir(parents=True)
    os.utime(building, (1_000_000, 1_000_000))
    removed = prune_cache(tmp_path)
    assert sorted(removed) == sorted([old, building])
    assert current.exists() and fresh_build.exists()
