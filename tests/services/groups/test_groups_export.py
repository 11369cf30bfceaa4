"""Exporting a group: every row, a manifest whose checksums we recompute here, and a SQL file that loads."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pymysql
import pytest

from panel.lab import saas_data
from panel.lab.mariadb import MariaDBHandle
from services.cancel import CancelToken
from services.errors import Cancelled
from services.groups import ExportManifest, MysqlEndpoint, export_group, group_detail, verify_export
from services.inventory import GroupsSpec


def _recompute(path: Path, fmt: str) -> tuple[dict[str, str], dict[str, int]]:
    digests: dict[str, Any] = {}
    rows: dict[str, int] = {}
    for line in path.read_bytes().splitlines(keepends=True):
        if fmt == "jsonl":
            table = json.loads(line)["table"]
            count = 1
        elif line.startswith(b"INSERT INTO `"):
            table = line.split(b"`")[1].decode()
            count = line.count(b"),(") + 1
        else:
            continue
        digests.setdefault(table, hashlib.sha256()).update(line)
        rows[table] = rows.get(table, 0) + count
    return {t: d.hexdigest() for t, d in digests.items()}, rows


@pytest.mark.parametrize("fmt", ["jsonl", "sql"])
def test_export_matches_manifest(app1: MysqlEndpoint, spec: GroupsSpec, tmp_path: Path, fmt: str,
                                 rows_of: Any) -> None:
    seen: list[tuple[str, int, int]] = []
    out = tmp_path / f"acme.{fmt}"
    manifest = export_group(app1, spec, 1, out, format=fmt,  # type: ignore[arg-type]
                            progress=lambda t, d, n: seen.append((t, d, n)))
    assert manifest.path == out and manifest.manifest_path.exists()
    assert not list(tmp_path.glob(".*partial"))
    on_disk = json.loads(manifest.manifest_path.read_text())
    assert on_disk["file_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    digests, rows = _recompute(out, fmt)
    for entry in on_disk["tables"]:
        assert digests.get(entry["table"], hashlib.sha256().hexdigest()) == entry["sha256"], entry["table"]
        assert rows.get(entry["table"], 0) == entry["rows"], entry["table"]
    expected = {t: len(v) for t, v in rows_of(app1, 1).items()}
    assert {t.table: t.rows for t in manifest.tables} == expected
    assert [t.table for t in manifest.tables][:2] == ["groups", "users"]
    detail = group_detail(app1, spec, 1)
    assert manifest.total_rows == detail.data_rows + 1 + len(rows_of(app1, 1)["users"])
    assert verify_export(manifest.manifest_path) == []
    assert ExportManifest.load(manifest.manifest_path) == manifest
    assert seen and seen[-1][1] == seen[-1][2]
    if fmt == "jsonl":
        first = json.loads(out.read_text().splitlines()[0])
        assert first == {"table": "groups", "row": {"id": 1, "name": "acme", "created_at": first["row"]["created_at"],
                                                    "suspended_at": None}}
    # A changed byte is caught.
    data = bytearray(out.read_bytes())
    data[-5] ^= 1
    out.write_bytes(bytes(data))
    assert verify_export(manifest.manifest_path)


def test_sql_export_loads_into_an_empty_schema(app2: MysqlEndpoint, spec: GroupsSpec, tmp_path: Path,
                                               servers: tuple[MariaDBHandle, MariaDBHandle], rows_of: Any) -> None:
    out = tmp_path / "globex.sql"
    export_group(app2, spec, 1_000_001, out, format="sql")
    handle = servers[1]
    admin = handle.admin_connection(database=None)
    try:
        with admin.cursor() as cursor:
            cursor.execute("CREATE DATABASE scratch CHARACTER SET utf8mb4")
            cursor.execute("USE scratch")
            saas_data.create_schema(cursor)
        with out.open("rb") as stdin:
            subprocess.run(["mariadb", "--no-defaults", f"--socket={handle.socket}", "scratch"], stdin=stdin,
                           check=True, timeout=60, capture_output=True)
        loaded = pymysql.connect(unix_socket=str(handle.socket), database="scratch", charset="utf8mb4",
                                 user="root")
        try:
            with loaded.cursor() as cursor:
                for table, rows in rows_of(app2, 1_000_001).items():
                    if table == "groups":
                        cursor.execute("SELECT id, name, created_at FROM `groups`")
                    else:
                        cursor.execute(f"SELECT * FROM `{table}` ORDER BY id")  # noqa: S608
                    assert sorted(cursor.fetchall()) == sorted(rows), table
        finally:
            loaded.close()
    finally:
        with admin.cursor() as cursor:
            cursor.execute("DROP DATABASE IF EXISTS scratch")
        admin.close()


def test_cancelled_export_leaves_nothing(app1: MysqlEndpoint, spec: GroupsSpec, tmp_path: Path) -> None:
    token = CancelToken()

    def progress(table: str, done: int, total: int) -> None:
        if table == "activity":
            token.cancel()

    with pytest.raises(Cancelled):
        export_group(app1, spec, 1, tmp_path / "x.jsonl", progress=progress, cancel=token)
    assert list(tmp_path.iterdir()) == []


def test_export_of_a_missing_group(app1: MysqlEndpoint, spec: GroupsSpec, tmp_path: Path) -> None:
    from services.groups import GroupNotFound

    with pytest.raises(GroupNotFound):
        export_group(app1, spec, 777_777, tmp_path / "none.jsonl")
    assert list(tmp_path.iterdir()) == []
