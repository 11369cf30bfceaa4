"""Finding, showing, suspending and reactivating groups on a real MariaDB."""

from __future__ import annotations

from typing import Any

import pymysql
import pytest

from services.groups import (
    GroupNotFound,
    MysqlEndpoint,
    balance,
    group_detail,
    list_groups,
    reactivate,
    suspend,
)
from services.inventory import GroupsSpec

GROUPS_1 = 80  # as started by conftest.py
GROUPS_2 = 40


def _count(admin: pymysql.connections.Connection[Any], sql: str) -> int:
    with admin.cursor() as cursor:
        cursor.execute(sql)
        return int(cursor.fetchone()[0])


def test_first_page_by_name(app1: MysqlEndpoint, spec: GroupsSpec) -> None:
    page = list_groups(app1, spec, limit=10)
    assert page.total >= GROUPS_1 - 5  # other tests move a few groups away
    assert len(page.rows) == 10 and page.has_more
    names = [row.name for row in page.rows]
    assert names == sorted(names)
    assert all(row.server == "app1" for row in page.rows)
    second = list_groups(app1, spec, limit=10, offset=10)
    assert not {r.id for r in page.rows} & {r.id for r in second.rows}


def test_search_by_name_id_and_member_email(app1: MysqlEndpoint, spec: GroupsSpec) -> None:
    by_name = list_groups(app1, spec, search="acme")
    assert "acme" in [r.name for r in by_name.rows]
    acme = next(r for r in by_name.rows if r.name == "acme")
    assert acme.id == 1 and acme.members >= 12 and acme.data_rows >= 1700
    # The demo owner belongs to four groups; her email finds all of them.
    by_email = list_groups(app1, spec, search="wile.coyote@acme.example")
    assert {r.name for r in by_email.rows} >= {"acme", "acme-labs", "acme-europe", "desert-ops"}
    assert {r.name for r in list_groups(app1, spec, search="wile.coy").rows} == {r.name for r in by_email.rows}
    by_domain = list_groups(app1, spec, search="@acme.example")
    assert {r.name for r in by_domain.rows} >= {"acme", "acme-labs", "acme-europe", "desert-ops"}
    by_id = list_groups(app1, spec, search="#5")
    assert [(r.id, r.name, r.is_suspended) for r in by_id.rows] == [(5, "initech", True)]


def test_search_is_data_not_sql(app1: MysqlEndpoint, spec: GroupsSpec, admin1: Any) -> None:
    before = _count(admin1, "SELECT COUNT(*) FROM `groups`")
    for attempt in ("'; DROP TABLE `groups`; --", "\" OR 1=1 --", "%", "_", "\\", "x' OR '1'='1"):
        page = list_groups(app1, spec, search=attempt)
        assert page.total == 0, attempt
    assert _count(admin1, "SELECT COUNT(*) FROM `groups`") == before
    assert _count(admin1, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'saas'") == 7


def test_wildcards_match_themselves(app2: MysqlEndpoint, spec: GroupsSpec, admin2: Any) -> None:
    with admin2.cursor() as cursor:
        cursor.execute("SELECT name FROM `groups` WHERE id = 1000040")
        (name,) = cursor.fetchone()
        cursor.execute("UPDATE `groups` SET name = '100%_off' WHERE id = 1000040")
    admin2.commit()
    try:
        assert [r.id for r in list_groups(app2, spec, search="%_").rows] == [1000040]
        assert [r.id for r in list_groups(app2, spec, search="0%_o").rows] == [1000040]
    finally:
        with admin2.cursor() as cursor:
            cursor.execute("UPDATE `groups` SET name = %s WHERE id = 1000040", (name,))
        admin2.commit()


@pytest.mark.parametrize("order", ["id", "-id", "name", "-created", "members", "-data_rows", "suspended"])
def test_orders(app2: MysqlEndpoint, spec: GroupsSpec, order: str) -> None:
    rows = list_groups(app2, spec, order_by=order, limit=GROUPS_2 + 10).rows
    key = order.lstrip("-")
    values: list[Any] = [getattr(r, {"created": "created", "members": "members", "data_rows": "data_rows",
                                      "suspended": "suspended", "id": "id", "name": "name"}[key]) for r in rows]
    if key == "suspended":
        return  # NULLs first, then dates: just check it runs
    expected = sorted(values, reverse=order.startswith("-"))
    assert values == expected


def test_bad_arguments(app1: MysqlEndpoint, spec: GroupsSpec) -> None:
    with pytest.raises(ValueError, match="sort groups by"):
        list_groups(app1, spec, order_by="name; DROP TABLE x")
    with pytest.raises(ValueError, match="limit"):
        list_groups(app1, spec, limit=0)


def test_detail(app1: MysqlEndpoint, spec: GroupsSpec) -> None:
    detail = group_detail(app1, spec, 1)
    assert detail.name == "acme" and not detail.is_suspended
    assert "wile.coyote@acme.example" in [m.email for m in detail.members]
    owner = next(m for m in detail.members if m.email == "wile.coyote@acme.example")
    assert owner.role == "owner" and owner.name == "Wile E. Coyote"
    counts = {t.table: t.rows for t in detail.tables}
    assert counts == {"memberships": 12, "projects": 19, "documents": 150, "invoices": 60, "activity": 1500}
    tables = [t.table for t in detail.tables]
    assert tables.index("projects") < tables.index("documents")  # parents first
    with pytest.raises(GroupNotFound, match="no group 999999 on app1"):
        group_detail(app1, spec, 999_999)


def test_suspend_and_reactivate(app1: MysqlEndpoint, spec: GroupsSpec) -> None:
    first = suspend(app1, spec, 10)
    assert first.changed and first.is_suspended
    again = suspend(app1, spec, 10)
    assert not again.changed and again.suspended == first.suspended
    assert list_groups(app1, spec, search="#10").rows[0].is_suspended
    back = reactivate(app1, spec, 10)
    assert back.changed and not back.is_suspended
    assert not reactivate(app1, spec, 10).changed
    assert not group_detail(app1, spec, 10).is_suspended
    with pytest.raises(GroupNotFound):
        suspend(app1, spec, 424242)


def test_balance(app1: MysqlEndpoint, app2: MysqlEndpoint, spec: GroupsSpec) -> None:
    report = balance([app1, app2], spec, max_suggestions=5)
    loads = {s.server: s for s in report.servers}
    assert set(loads) == {"app1", "app2"}
    assert loads["app1"].data_rows > loads["app2"].data_rows
    assert loads["app1"].suspended >= 1
    first = report.suggestions[0]
    assert (first.source, first.target) == ("app1", "app2")
    assert len({s.group_id for s in report.suggestions}) == len(report.suggestions)
    assert report.spread_after < report.spread_before
    assert sum(n for _, n in report.projected) == sum(s.data_rows for s in report.servers)
