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

# The alerts feature (panel/alerts.py): alert history with its lifecycle (new -> acknowledged ->
# resolved), silences that outlive a resolution, one row per sweep, and the accepted baselines of
# the watched paths (as `aide --init` records them) with the changes waiting for acceptance.
_V3_ALERTS = """
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            server TEXT NOT NULL,            -- '' for checks of the business (Stripe, Mailgun, Cloudflare)
            check_id TEXT NOT NULL,          -- e.g. ports.unexpected, files.changed
            subject TEXT NOT NULL DEFAULT '',-- e.g. 'tcp 0.0.0.0:8081', a mount point, a unit
            severity TEXT NOT NULL,          -- WARNING, CRITICAL, UNKNOWN
            summary TEXT NOT NULL,
            evidence TEXT NOT NULL DEFAULT '[]',  -- JSON list of the lines the check saw
            action TEXT,                     -- JSON {title, page, argument}: the suggested next step
            status TEXT NOT NULL DEFAULT 'new',   -- new, acknowledged, resolved
            first_seen TEXT NOT NULL,        -- ISO 8601, UTC
            last_seen TEXT NOT NULL,
            changed_at TEXT NOT NULL,        -- last change the operator should notice
            acknowledged_at TEXT,
            resolved_at TEXT,
            resolution TEXT NOT NULL DEFAULT '',  -- 'cleared' (the check passed), 'accepted', ...
            occurrences INTEGER NOT NULL DEFAULT 1
        );
        CREATE UNIQUE INDEX alerts_open_key ON alerts(server, check_id, subject) WHERE status != 'resolved';
        CREATE INDEX alerts_status ON alerts(status);
        CREATE INDEX alerts_seen ON alerts(last_seen);
        CREATE TABLE alert_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            alert_id INTEGER NOT NULL REFERENCES alerts(id),
            at TEXT NOT NULL,
            kind TEXT NOT NULL,              -- opened, escalated, eased, changed, acknowledged, silenced,
                                             -- unsilenced, resolved
            detail TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX alert_events_alert ON alert_events(alert_id);
        CREATE TABLE alert_silences (
            server TEXT NOT NULL,
            check_id TEXT NOT NULL,
            subject TEXT NOT NULL,
            until TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            PRIMARY KEY (server, check_id, subject)
        );
        CREATE TABLE check_runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            started_at TEXT NOT NULL,
            finished_at TEXT NOT NULL,
            servers TEXT NOT NULL,           -- JSON list of the servers swept
            worst TEXT NOT NULL,
            alerts INTEGER NOT NULL,
            opened INTEGER NOT NULL,
            resolved INTEGER NOT NULL
        );
        CREATE TABLE watch_baselines (
            server TEXT PRIMARY KEY,
            paths TEXT NOT NULL,             -- JSON list of the watched paths the baseline covers
            server_time REAL NOT NULL,       -- the server's clock at the scan (files with older ctime are unchanged)
            recorded_at TEXT NOT NULL,
            scan_id TEXT NOT NULL DEFAULT '',
            origin TEXT NOT NULL DEFAULT 'initial'   -- initial, accepted
        );
        CREATE TABLE watch_files (
            server TEXT NOT NULL,
            path TEXT NOT NULL,
            kind TEXT NOT NULL,              -- find's %y: f, d, l, ...
            mode TEXT NOT NULL,
            owner TEXT NOT NULL,
            grp TEXT NOT NULL,
            size INTEGER NOT NULL,
            sha256 TEXT,
            link TEXT NOT NULL DEFAULT '',
            mtime REAL NOT NULL DEFAULT 0,
            ctime REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (server, path)
        ) WITHOUT ROWID;
        CREATE TABLE watch_pending (
            server TEXT PRIMARY KEY,
            scan_id TEXT NOT NULL,
            scanned_at TEXT NOT NULL,
            server_time REAL NOT NULL,
            paths TEXT NOT NULL,             -- JSON list
            changes TEXT NOT NULL,           -- JSON list of {path, kind, details, line}
            entries TEXT NOT NULL            -- JSON: the new state of every added or changed entry
        );
"""

# Features append their migrations (SQL scripts) here; a migration is never edited once released.
MIGRATIONS: list[str] = [_V1_AUDIT, _V2_KV, _V3_ALERTS]


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
