"""The Groups model over 100,000 groups: pages fetched on workers and merged, under Qt's model tester."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, Qt

from panel.lab.mariadb import MariaDBHandle
from services.cancel import CancelToken
from services.errors import ConnectError
from services.groups import GroupPage, list_groups
from services.inventory import GroupsSpec
from tests.views.groups.groups_testlib import BIG, BIG_GROUPS
from views.models.groups import FIRST_PAGE, NAME, STATE, GroupsModel, RecordsModel, merge_key
from views.workers import JobRunner

DEMO = 3000 + 2000  # the demo groups of app1 and app2


def _model(big_pair: tuple[MariaDBHandle, MariaDBHandle], runner: JobRunner, *, fail: str | None = None,
           calls: list[tuple[str, Any, int, int, str]] | None = None) -> GroupsModel:
    spec = GroupsSpec()
    endpoints = {"app1": big_pair[0].endpoint(server="app1"), "app2": big_pair[1].endpoint(server="app2")}

    def fetch(server: str, search: str | None, offset: int, limit: int, order: str, cancel: CancelToken) -> GroupPage:
        if calls is not None:
            calls.append((server, search, offset, limit, order))
        if server == fail:
            raise ConnectError(f"Cannot reach the database of {server} (test).")
        return list_groups(endpoints[server], spec, search=search, offset=offset, limit=limit, order_by=order)

    return GroupsModel(runner, fetch, ["app1", "app2"])


def _settle(qtbot: Any, model: GroupsModel, timeout: int = 60000) -> None:
    qtbot.waitUntil(lambda: model.started and not model.is_loading and model.totals_known, timeout=timeout)


def test_the_model_pages_through_100000_groups_under_the_model_tester(
        qtbot: Any, qtmodeltester: Any, big_pair: tuple[MariaDBHandle, MariaDBHandle], runner: JobRunner) -> None:
    model = _model(big_pair, runner)
    model.start()
    _settle(qtbot, model)
    assert model.total == BIG_GROUPS + DEMO
    assert 0 < model.loaded <= 2 * FIRST_PAGE  # only the first pages: never the whole list at once
    assert model.canFetchMore(QModelIndex())

    model.set_search("person12345@bench")  # a member's email, among 300,000 users
    _settle(qtbot, model)
    assert [r.id for r in model.rows()] == [10_000_000 + 1 + (12345 - 1) % BIG_GROUPS]

    model.sort(6, Qt.SortOrder.DescendingOrder)  # the "Data rows" header: the biggest first
    model.set_search(None)
    _settle(qtbot, model)
    assert model.order_by == "-data_rows"
    assert model.row_at(0) is not None and model.row_at(0).id == BIG  # type: ignore[union-attr]
    first = model.loaded
    model.fetchMore(QModelIndex())
    _settle(qtbot, model)
    assert model.loaded > first
    counts = [r.data_rows for r in model.rows()]
    assert counts == sorted(counts, reverse=True)

    model.sort(NAME, Qt.SortOrder.AscendingOrder)
    _settle(qtbot, model)
    while model.canFetchMore(QModelIndex()):  # what scrolling to the very end does
        model.fetchMore(QModelIndex())
        _settle(qtbot, model)
    assert model.loaded == model.total == BIG_GROUPS + DEMO
    rows = model.rows()
    assert len({(r.server, r.id) for r in rows}) == len(rows)
    key = merge_key("name")
    assert all(key(a) <= key(b) for a, b in itertools.pairwise(rows))  # one sorted list
    assert {r.server for r in rows[:50]} == {"app1", "app2"}  # the servers' pages are merged, not appended

    qtmodeltester.check(model)  # a full pass over all 105,000 rows, and again on every change below
    model.update_row(rows[7].server, rows[7].id, suspended=rows[7].created)
    assert "suspended" in model.data(model.index(7, STATE))
    model.set_search("wile.coyote")
    _settle(qtbot, model)
    assert sorted(r.name for r in model.rows()) == ["acme", "acme-europe", "acme-labs", "desert-ops"]


def test_a_server_that_fails_does_not_hold_back_the_others(
        qtbot: Any, qtmodeltester: Any, big_pair: tuple[MariaDBHandle, MariaDBHandle], runner: JobRunner) -> None:
    calls: list[tuple[str, Any, int, int, str]] = []
    model = _model(big_pair, runner, fail="app2", calls=calls)
    qtmodeltester.check(model)
    model.search = "wile.coyote"  # a few rows: the tester asks for more after every change
    with qtbot.waitSignal(model.server_failed, timeout=30000) as failed:
        model.start()
    assert failed.args[0] == "app2" and "Cannot reach" in str(failed.args[1])
    _settle(qtbot, model)
    assert model.loaded > 0 and {r.server for r in model.rows()} == {"app1"}
    assert set(model.errors) == {"app2"}
    assert sorted(model.data(model.index(n, NAME)) for n in range(model.rowCount())) == \
        ["acme", "acme-europe", "acme-labs", "desert-ops"]
    assert ("app1", "wile.coyote", 0) in [c[:3] for c in calls]


@pytest.mark.parametrize("order", ["id", "-created", "members", "-suspended"])
def test_every_order_merges_the_servers_like_one_query(
        qtbot: Any, big_pair: tuple[MariaDBHandle, MariaDBHandle], order: str, runner: JobRunner) -> None:
    """The demo groups only, in each order, merged in Python as the servers sort them."""
    model = _model(big_pair, runner)
    model.set_order(order.lstrip("-"), descending=order.startswith("-"))
    model.search = "lucky"  # demo names only (the 100,000 others use other words)
    model.start()
    _settle(qtbot, model)
    while model.canFetchMore(QModelIndex()):
        model.fetchMore(QModelIndex())
        _settle(qtbot, model)
    rows = model.rows()
    assert len(rows) == model.total > 100
    key = merge_key(order.lstrip("-"))
    keys = [key(r) for r in rows]
    assert keys == sorted(keys, reverse=order.startswith("-"))


def test_the_detail_tables_model_under_the_model_tester(qtmodeltester: Any) -> None:
    model = RecordsModel(("Email", "Name", "Role"), right_aligned=(2,))
    qtmodeltester.check(model)
    model.set_rows([("wile.coyote@acme.example", "Wile E. Coyote", "owner"), ("a@b.example", None, "member")],
                   tips=["the owner", ""])
    assert model.rowCount() == 2 and model.columnCount() == 3
    assert model.data(model.index(1, 1)) == "" and model.data(model.index(0, 0), Qt.ItemDataRole.ToolTipRole)
    assert model.headerData(2, Qt.Orientation.Horizontal) == "Role"
    right = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    assert model.data(model.index(0, 2), Qt.ItemDataRole.TextAlignmentRole) == right
    assert model.data(model.index(1, 0), Qt.ItemDataRole.ToolTipRole) is None  # an empty tip is no tip
    model.set_rows([])
    assert model.rowCount() == 0
