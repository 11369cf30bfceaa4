"""Exporting one group (GDPR): every row of it, in one consistent snapshot, with a manifest.

The file holds the group row, the users its rows refer to, then every tenant table parents
first, each table's rows in primary key order. Formats:

- ``jsonl``: one line per row, ``{"table": "documents", "row": {"id": 1, ...}}``. Dates are ISO
  strings, decimals strings, binary values ``{"base64": "..."}``.
- ``sql``: multi-row ``INSERT`` statements, one per line, that load into an empty copy of the schema.

The manifest, written next to the file as ``FILE.manifest.json``, gives for each table its row
count and the SHA-256 of that table's lines in the file (each line with its trailing newline),
and the SHA-256 of the whole file. :func:`verify_export` checks a file against its manifest.
"""

# SQL text is built from identifiers only (information_schema names and the config, quoted by
# sql.ident); every value goes in as a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pymysql.cursors

from services.cancel import NEVER_CANCELLED, CancelToken
from services.groups.endpoint import Conn, MysqlEndpoint, close_quietly, connect, mysql_errors, query
from services.groups.errors import GroupNotFound
from services.groups.schema import GroupSchema, discover
from services.groups.selection import Part, count_sql, group_parts
from services.groups.sql import batches, ident, tuple_expr
from services.inventory import GroupsSpec

Format = Literal["jsonl", "sql"]
Progress = Callable[[str, int, int], None]
FETCH = 2000
SQL_STATEMENT_BYTES = 1 << 20


@dataclass(frozen=True)
class TableExport:
    table: str
    rows: int
    sha256: str


@dataclass(frozen=True)
class ExportManifest:
    group_id: int
    group_name: str
    server: str
    database: str
    format: str
    path: Path
    manifest_path: Path
    created_at: str  # ISO 8601, UTC
    tables: tuple[TableExport, ...]
    file_sha256: str
    file_bytes: int

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = self.path.name
        data["manifest_path"] = self.manifest_path.name
        data["total_rows"] = self.total_rows
        return data

    @classmethod
    def load(cls, manifest_path: Path) -> ExportManifest:
        data = json.loads(Path(manifest_path).read_text(encoding="utf-8"))
        return cls(
            group_id=int(data["group_id"]), group_name=str(data["group_name"]), server=str(data["server"]),
            database=str(data["database"]), format=str(data["format"]),
            path=Path(manifest_path).with_name(data["path"]), manifest_path=Path(manifest_path),
            created_at=str(data["created_at"]),
            tables=tuple(TableExport(str(t["table"]), int(t["rows"]), str(t["sha256"])) for t in data["tables"]),
            file_sha256=str(data["file_sha256"]), file_bytes=int(data["file_bytes"]),
        )


def manifest_path_for(out_path: Path) -> Path:
    return out_path.with_name(out_path.name + ".manifest.json")


def _json_value(value: object) -> object:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal | dt.timedelta):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot export a {type(value).__name__}")


def jsonl_line(table: str, columns: tuple[str, ...], row: tuple[object, ...]) -> bytes:
    record = {"table": table, "row": dict(zip(columns, row, strict=True))}
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=_json_value) + "\n").encode()


def _stream(conn: Conn, sql: str, args: list[object], cancel: CancelToken, what: str
            ) -> Iterator[list[tuple[Any, ...]]]:
    with conn.cursor(pymysql.cursors.SSCursor) as cursor:
        cursor.execute(sql, args)
        while True:
            cancel.raise_if_cancelled(what)
            chunk = cursor.fetchmany(FETCH)
            if not chunk:
                return
            yield list(chunk)


class _TableWriter:
    def __init__(self, out: Any) -> None:
        self.out = out
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.out.write(data)
        self.digest.update(data)


def _export_part(conn: Conn, schema: GroupSchema, part: Part, fmt: Format, writer: _TableWriter,
                 total: int, progress: Progress | None, cancel: CancelToken, what: str) -> int:
    table = part.table
    order = ", ".join(ident(c) for c in table.order_by)
    done = 0
    if fmt == "jsonl":
        columns = table.column_names
        sql = (f"SELECT {', '.join(ident(c) for c in columns)} FROM {ident(table.name)} "
               f"WHERE {part.where} ORDER BY {order}")
        for chunk in _stream(conn, sql, list(part.args), cancel, what):
            for row in chunk:
                writer.write(jsonl_line(table.name, columns, row))
            done += len(chunk)
            if progress:
                progress(table.name, done, total)
        return done
    stored = table.stored_columns
    sql = (f"SELECT {tuple_expr([(c.name, c.data_type) for c in stored])} "
           f"FROM {ident(table.name)} WHERE {part.where} ORDER BY {order}")
    prefix = f"INSERT INTO {ident(table.name)} ({', '.join(ident(c.name) for c in stored)}) VALUES "
    for chunk in _stream(conn, sql, list(part.args), cancel, what):
        for statement in batches(prefix, (str(r[0]) for r in chunk), SQL_STATEMENT_BYTES):
            writer.write((statement + ";\n").encode())
        done += len(chunk)
        if progress:
            progress(table.name, done, total)
    return done


def export_group(
    endpoint: MysqlEndpoint,
    spec: GroupsSpec,
    group_id: int,
    out_path: Path,
    *,
    format: Format = "jsonl",
    progress: Progress | None = None,
    cancel: CancelToken = NEVER_CANCELLED,
) -> ExportManifest:
    """Write every row of the group to ``out_path`` and the manifest next to it.

    The rows come from one consistent snapshot. The file appears only when complete; a
    cancelled or failed export leaves nothing behind. ``progress(table, done, total)``.
    """
    if format not in ("jsonl", "sql"):
        raise ValueError(f"unknown export format {format!r}; use 'jsonl' or 'sql'")
    out_path = Path(out_path)
    what = f"The export of group {group_id}"
    partial = out_path.with_name(f".{out_path.name}.partial")
    conn = connect(endpoint, doing=f"exporting group {group_id}")
    try:
        with mysql_errors(endpoint, f"exporting group {group_id}"):
            schema = discover(conn, endpoint, spec)
            with conn.cursor() as cursor:
                cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            head = query(conn, f"SELECT {ident(spec.name)} FROM {ident(spec.table)} "
                               f"WHERE {ident(spec.key)} = %s", (group_id,))
            if not head:
                raise GroupNotFound(group_id, endpoint.label)
            name = str(head[0][0])
            parts = group_parts(schema, group_id)
            sql, args = count_sql(parts)
            totals = {str(t): int(n) for t, n in query(conn, sql, args)}
            results: list[TableExport] = []
            created = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
            with partial.open("wb") as out:
                if format == "sql":
                    out.write(_sql_header(group_id, name, endpoint, created))
                for part in parts:
                    writer = _TableWriter(out)  # hashes exactly this table's lines
                    rows = _export_part(conn, schema, part, format, writer, totals.get(part.name, 0),
                                        progress, cancel, what)
                    results.append(TableExport(part.name, rows, writer.digest.hexdigest()))
                if format == "sql":
                    out.write(b"COMMIT;\n")
                out.flush()
                os.fsync(out.fileno())
            conn.rollback()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        close_quietly(conn)
    partial.replace(out_path)
    file_sha, size = _file_digest(out_path)
    manifest = ExportManifest(
        group_id=group_id, group_name=name, server=endpoint.label, database=endpoint.database, format=format,
        path=out_path, manifest_path=manifest_path_for(out_path), created_at=created,
        tables=tuple(results), file_sha256=file_sha, file_bytes=size,
    )
    tmp = manifest.manifest_path.with_name(manifest.manifest_path.name + ".partial")
    tmp.write_text(json.dumps(manifest.to_dict(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(manifest.manifest_path)
    return manifest


def _sql_header(group_id: int, name: str, endpoint: MysqlEndpoint, created: str) -> bytes:
    safe_name = name.replace("\n", " ").replace("\r", " ")
    return (f"-- Group {group_id} ({safe_name}) from {endpoint.label}, database {endpoint.database}, {created}\n"
            "-- Rows are parents first; load into an empty copy of the schema.\n"
            "SET NAMES utf8mb4;\nSET time_zone = '+00:00';\nSTART TRANSACTION;\n").encode()


def _file_digest(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def line_table(line: bytes, fmt: str) -> str | None:
    """The table a line of an export belongs to (None for header and footer lines)."""
    if fmt == "jsonl":
        return str(json.loads(line)["table"])
    if line.startswith(b"INSERT INTO `"):
        i = 13
        while i < len(line):
            if line[i:i + 2] == b"``":
                i += 2
            elif line[i:i + 1] == b"`":
                return line[13:i].decode().replace("``", "`")
            else:
                i += 1
    return None


def verify_export(manifest_path: Path) -> list[str]:
    """Recompute the checksums of an export; an empty list means it matches its manifest."""
    manifest = ExportManifest.load(manifest_path)
    problems: list[str] = []
    if not manifest.path.exists():
        return [f"{manifest.path} is missing"]
    file_sha, size = _file_digest(manifest.path)
    if file_sha != manifest.file_sha256 or size != manifest.file_bytes:
        problems.append(f"{manifest.path.name}: the file's SHA-256 or size differs from the manifest")
    digests: dict[str, Any] = {}
    rows: dict[str, int] = {}
    with manifest.path.open("rb") as f:
        for line in f:
            with contextlib.suppress(ValueError, KeyError):
                table = line_table(line, manifest.format)
                if table is None:
                    continue
                digests.setdefault(table, hashlib.sha256()).update(line)
                rows[table] = rows.get(table, 0) + 1
    for entry in manifest.tables:
        got = digests.get(entry.table, hashlib.sha256()).hexdigest()
        if got != entry.sha256:
            problems.append(f"table {entry.table}: checksum differs from the manifest")
        if manifest.format == "jsonl" and rows.get(entry.table, 0) != entry.rows:
            problems.append(f"table {entry.table}: {rows.get(entry.table, 0)} rows, the manifest says "
                            f"{entry.rows}")
    return problems
