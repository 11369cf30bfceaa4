"""The local store: one SQLite file with a schema version and forward-only migrations.

It holds the audit log (append-only, enforced by triggers), and whatever features cache:
alert history, baselines, snapshots. It never holds a secret.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_V1_AUDIT = """
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,            -- ISO 8601, UTC
            action TEXT NOT NULL,        -- e.g. unlock, host-key.trust, group.move
            target TEXT NOT NULL,        -- e.g. app1, app1/group:42
            outcome TEXT NOT NULL,       -- ok, failed, refused, cancelled
            detail TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX audit_at ON audit(at);
        CREATE INDEX audit_target ON audit(target);
        CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""

# Small cached values: last probe results, per-server preferences such as auto-unlock.
_V2_KV = "CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL);"

# Features append their migrations (SQL scripts) here; a migration is never edited once released.
MIGRATIONS: list[str] = [_V1_AUDIT, _V2_KV]


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: dt.datetime
    action: str
    target: str
    outcome: str
    detail: str


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Store:
    """Thread-safe: workers write the audit log from the thread pool."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path) if path != ":memory:" else path
        if isinstance(self.path, Path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        with self._lock:
            version = self.schema_version
            if version > len(MIGRATIONS):
                raise RuntimeError(
                    f"The store {self.path} was written by a newer panel (schema {version}); "
                    "update the panel to open it."
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                # One script per migration, so the schema and its version change together or not at all.
                self._db.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, parameters: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            return list(self._db.execute(sql, parameters).fetchall())

    def execute(self, sql: str, parameters: tuple[object, ...] = ()) -> None:
        with self.transaction() as db:
            db.execute(sql, parameters)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- audit ------------------------------------------------------------------------------------

    def audit(self, action: str, target: str, outcome: str, detail: str = "") -> AuditEntry:
        """Append one entry. Callers pass no secret; the detail says what happened, not with what."""
        at = utc_now()
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO audit (at, action, target, outcome, detail) VALUES (?, ?, ?, ?, ?)",
                (at.isoformat(timespec="seconds"), action, target, outcome, detail),
            )
            entry_id = int(cursor.lastrowid or 0)
        return AuditEntry(entry_id, at, action, target, outcome, detail)

    def audit_entries(
        self, *, text: str = "", target: str | None = None, action_prefix: str = "", limit: int = 5000
    ) -> list[AuditEntry]:
        """Newest first. ``text`` matches action, target, outcome or detail."""
        sql = "SELECT id, at, action, target, outcome, detail FROM audit WHERE 1=1"
        parameters: list[object] = []
        if text:
            like = f"%{text}%"
            sql += " AND (action LIKE ? OR target LIKE ? OR outcome LIKE ? OR detail LIKE ?)"
            parameters += [like] * 4
        if target is not None:
            sql += " AND (target = ? OR target LIKE ?)"
            parameters += [target, f"{target}/%"]
        if action_prefix:
            sql += " AND action LIKE ?"
            parameters.append(f"{action_prefix}%")
        sql += " ORDER BY id DESC LIMIT ?"
        parameters.append(limit)
        return [
            AuditEntry(int(str(r[0])), dt.datetime.fromisoformat(str(r[1])), str(r[2]), str(r[3]), str(r[4]),
                       str(r[5]))
            for r in self.query(sql, tuple(parameters))
        ]

    # --- small values -----------------------------------------------------------------------------

    def get_value(self, key: str) -> str | None:
        rows = self.query("SELECT value FROM kv WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_value(self, key: str, value: str) -> None:
        self.execute(
            "INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (key, value, utc_now().isoformat(timespec="seconds")),
        )
