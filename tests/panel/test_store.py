"""The local store: schema version, migrations and an append-only audit log."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from panel.store import MIGRATIONS, Store


def test_a_new_store_is_migrated_to_the_latest_schema(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite3")
    assert store.schema_version == len(MIGRATIONS)
    store.close()
    reopened = Store(tmp_path / "s.sqlite3")
    assert reopened.schema_version == len(MIGRATIONS)


def test_a_store_from_a_newer_panel_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    db.close()
    with pytest.raises(RuntimeError, match="newer panel"):
        Store(path)


def test_the_audit_log_is_append_only_and_filterable(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite3")
    store.audit("unlock", "app1", "ok", "volume root")
    store.audit("group.suspend", "app2/group:7", "ok")
    store.audit("unlock", "app2", "failed", "wrong passphrase")
    assert [e.target for e in store.audit_entries()] == ["app2", "app2/group:7", "app1"]
    assert [e.outcome for e in store.audit_entries(text="unlock")] == ["failed", "ok"]
    assert [e.action for e in store.audit_entries(target="app2")] == ["unlock", "group.suspend"]
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.execute("UPDATE audit SET outcome = 'ok'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.execute("DELETE FROM audit")
    assert len(store.audit_entries()) == 3
