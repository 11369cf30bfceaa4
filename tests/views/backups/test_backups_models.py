"""The Backups page's item models under pytest-qt's model tester, with 1,000+ sessions built from
dataclasses, and what their cells tell the operator (colours, kinds, sizes)."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from PySide6.QtCore import QPersistentModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QBrush
from PySide6.QtWidgets import QHeaderView, QTableView

from services.backups import FileChange, Repository, RepoTarget
from services.inventory import BackupSpec
from tests.views.backups.backup_helpers import fake_sessions
from views.models.backups import (
    AMBER,
    GREEN,
    R_AGE,
    R_ERRORS,
    R_NAME,
    R_PROBLEM,
    R_REGRESS,
    R_SESSIONS,
    RED,
    S_ERRORS,
    S_KIND,
    S_SIZE,
    S_TIME,
    ChangesModel,
    RepositoriesModel,
    SessionsModel,
)
from views.pages.backups import CHART_POINTS, size_series

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def repository(name: str, *, age_hours: float | None, **fields: object) -> Repository:
    sessions = fake_sessions(3, start=NOW - timedelta(hours=age_hours) - timedelta(days=2)) if age_hours is not None \
        else []
    return Repository(server="app1", name=name, where="app1", path=f"/srv/{name}", read_at=NOW,
                      sessions=tuple(sessions), **fields)  # type: ignore[arg-type]


def foreground(model: Any, row: int, column: int) -> str | None:
    brush = model.index(row, column).data(Qt.ItemDataRole.ForegroundRole)
    return brush.color().name() if isinstance(brush, QBrush) else None


def test_sessions_model_passes_the_model_tester_with_1200_sessions_and_sorts_in_place(qtbot, qtmodeltester) -> None:
    model = SessionsModel()
    qtmodeltester.check(model)  # empty
    sessions = fake_sessions(1200)
    started = time.perf_counter()
    model.set_sessions(sessions)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"setting 1,200 sessions took {elapsed:.3f} s"
    qtmodeltester.check(model)
    assert model.rowCount() == 1200
    # newest first, the mirror on top
    assert model.index(0, S_KIND).data() == "mirror (newest)"
    assert model.index(0, S_TIME).data() == sessions[-1].time.strftime("%Y-%m-%d %H:%M UTC")
    assert model.index(0, S_TIME).data(Qt.ItemDataRole.ToolTipRole).endswith("Z")
    assert model.index(1199, S_TIME).data(Qt.ItemDataRole.UserRole) == sessions[0]
    # sorting keeps persistent indexes on their sessions (selection follows the session, not the row)
    marked = model.index(5, 0)
    kept = QPersistentModelIndex(marked)
    session = marked.data(Qt.ItemDataRole.UserRole)
    model.sort(S_SIZE, Qt.SortOrder.AscendingOrder)
    sizes = [s.size or 0 for s in model.sessions()]
    assert sizes == sorted(sizes)
    assert kept.data(Qt.ItemDataRole.UserRole) == session
    model.sort(S_ERRORS, Qt.SortOrder.DescendingOrder)
    assert model.index(0, S_ERRORS).data() == "1"
    assert foreground(model, 0, S_ERRORS) == AMBER
    qtmodeltester.check(model)
    kinds = {model.index(r, S_KIND).data() for r in range(model.rowCount())}
    assert kinds == {"mirror (newest)", "increment", "no changes"}


def test_the_sessions_table_shows_1000_rows_at_once(qtbot) -> None:
    model = SessionsModel()
    table = QTableView()
    table.setModel(model)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    table.resize(900, 600)
    qtbot.addWidget(table)
    table.show()
    qtbot.waitExposed(table)
    started = time.perf_counter()
    model.set_sessions(fake_sessions(1000))
    table.repaint()
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"1,000 sessions took {elapsed:.3f} s to show"
    assert table.rowAt(0) == 0 and table.indexAt(table.viewport().rect().topLeft()).data()


def test_repositories_model_colours_age_errors_regress_and_problems(qtbot, qtmodeltester) -> None:
    spec = BackupSpec("local", "/srv/local")
    targets = [RepoTarget("app1", replace(spec, name=name)) for name in ("fresh", "stale", "old", "broken", "gone")]
    model = RepositoriesModel()
    model.set_targets(targets)
    qtmodeltester.check(model)
    assert [model.index(r, R_PROBLEM).data() for r in range(5)] == ["not read yet"] * 5
    model.set_reading(["app1/fresh"])
    assert model.index(0, R_PROBLEM).data() == "reading…"
    model.update(repository("fresh", age_hours=3))
    model.update(repository("stale", age_hours=30))
    model.update(repository("old", age_hours=80))
    model.update(repository("broken", age_hours=5, needs_regress=True, problem="The backup that started … broke off"))
    model.update(repository("gone", age_hours=None, problem="The path /srv/gone does not exist on app1."))
    qtmodeltester.check(model)
    assert [foreground(model, r, R_AGE) for r in range(4)] == [GREEN, AMBER, RED, GREEN]
    assert model.index(0, R_AGE).data() == "3.0 h / 26 h"
    assert model.index(2, R_AGE).data() == "3.3 days / 26 h"
    assert model.index(0, R_SESSIONS).data() == "3"
    assert model.index(3, R_REGRESS).data() == "NEEDED" and foreground(model, 3, R_REGRESS) == RED
    assert model.index(0, R_REGRESS).data() == "no"
    assert model.index(4, R_PROBLEM).data() == "The path /srv/gone does not exist on app1."
    assert foreground(model, 4, R_PROBLEM) == RED
    assert model.index(4, R_SESSIONS).data() == "—"
    assert model.index(0, R_ERRORS).data() == "0"
    assert model.index(0, R_NAME).data(Qt.ItemDataRole.DecorationRole) is not None
    # the config changes: rows follow it, what was read for a kept row stays
    model.set_targets(targets[:2])
    assert model.rowCount() == 2 and model.index(0, R_AGE).data() == "3.0 h / 26 h"


def test_changes_model_filters_by_path(qtbot, qtmodeltester) -> None:
    model = ChangesModel()
    model.set_changes([FileChange("etc/passwd", "changed"), FileChange("etc/ssl/private/app1.key", "added"),
                       FileChange("var/www/old.txt", "removed")])
    qtmodeltester.check(model)
    proxy = QSortFilterProxyModel()
    proxy.setSourceModel(model)
    proxy.setFilterKeyColumn(0)
    proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
    qtmodeltester.check(proxy)
    assert model.counts() == {"added": 1, "removed": 1, "changed": 1}
    proxy.setFilterFixedString("ETC/")
    assert [proxy.index(r, 0).data() for r in range(proxy.rowCount())] == ["/etc/passwd", "/etc/ssl/private/app1.key"]
    assert foreground(model, 2, 1) == RED


def test_the_size_chart_thins_1000_sessions_but_keeps_the_ends_and_the_peaks() -> None:
    sessions = fake_sessions(1000)
    big = replace(sessions[500], increment_size=10_000_000)
    sessions[500] = big
    repo = Repository(server="app1", name="big", where="app1", path="/srv/big", read_at=NOW,
                      sessions=tuple(sessions))
    data, increments = size_series(repo)
    assert 2 <= len(data.points) <= CHART_POINTS and len(increments.points) <= CHART_POINTS
    assert data.points[0][0] == sessions[0].time and data.points[-1][0] == sessions[-1].time
    assert data.name == "Data (MiB)" and increments.name == "Increment (KiB)"
    assert max(v for _, v in increments.points) == 10_000_000 / 1024  # the big run stays visible
    assert (big.time, 10_000_000 / 1024) in increments.points
