"""``python -m panel groups ...`` on the lab, as a script would run it (a subprocess, no terminal).

Every test leaves the lab's data as it found it: a moved group is moved back, a suspended one
reactivated. This file works on app1's groups 2 (acme-labs) and 3 (acme-europe) only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from panel.lab.fleet import LabInfo
from panel.lab.secrets import MYSQL_PASSWORD
from panel.store import Store
from services.groups import verify_export
from tests.views.groups.groups_testlib import count, group_rows, has_group, lab_port, suspended_at

ROOT = Path(__file__).resolve().parents[3]
MOVED = 2  # acme-labs: shares its owner (wile.coyote@acme.example) with acme and desert-ops
SUSPENDED = 3  # acme-europe

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "panel-data"


@pytest.fixture
def panel(lab: LabInfo, data_dir: Path) -> Run:
    def run(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, PYTHON_KEYRING_BACKEND="panel.lab.secrets.DemoKeyring", PANEL_DATA_DIR=str(data_dir))
        env.pop("STRIPE_API_KEY", None)
        result = subprocess.run([sys.executable, "-m", "panel", "--config", str(lab.config_path), "groups", *argv],
                                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=timeout, check=False)
        assert MYSQL_PASSWORD not in result.stdout + result.stderr
        return result

    return run


def _audit(data_dir: Path, target: str) -> list[tuple[str, str, str]]:
    store = Store(data_dir / "panel.sqlite3")
    try:
        return [(e.action, e.outcome, e.detail) for e in store.audit_entries(target=target)]
    finally:
        store.close()


def test_list_every_group_of_every_server_and_search_them(panel: Run, lab: LabInfo) -> None:
    listed = panel("list", "--json")
    assert listed.returncode == 0, listed.stderr
    groups = json.loads(listed.stdout)
    assert len(groups) == 5000  # 3,000 on app1 and 2,000 on app2
    by_id = {g["id"]: g for g in groups}
    assert by_id[1]["name"] == "acme" and by_id[1]["server"] == "app1" and by_id[1]["state"] == "active"
    assert by_id[1_000_001]["name"] == "globex" and by_id[1_000_001]["server"] == "app2"
    assert by_id[5]["name"] == "initech" and by_id[5]["state"] == "suspended" and by_id[5]["suspended"]
    assert by_id[1]["members"] == 10 and by_id[1]["data_rows"] > 1000
    names = [g["name"].casefold() for g in groups]
    assert names[:3] == ["acme", "acme-europe", "acme-labs"]

    by_email = json.loads(panel("list", "--search", "wile.coyote@acme", "--json").stdout)
    assert {g["name"] for g in by_email} == {"acme", "acme-labs", "acme-europe", "desert-ops"}
    one_server = json.loads(panel("list", "--server", "app2", "--search", "globex", "--json").stdout)
    assert one_server and {g["server"] for g in one_server} == {"app2"} and one_server[0]["name"] == "globex"
    text = panel("list", "--search", "1000001")
    assert text.returncode == 0 and "globex" in text.stdout and "app2" in text.stdout


def test_an_injection_attempt_finds_nothing_and_leaves_the_table_intact(panel: Run, lab: LabInfo) -> None:
    before = {s: count(lab_port(lab, s), "SELECT COUNT(*) FROM `groups`") for s in ("app1", "app2")}
    for attempt in ("'; DROP TABLE groups; --", "x%' OR '1'='1", "\\'; DELETE FROM groups; #"):
        found = panel("list", "--search", attempt, "--json")
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout) == []
    after = {s: count(lab_port(lab, s), "SELECT COUNT(*) FROM `groups`") for s in ("app1", "app2")}
    assert after == before == {"app1": 3000, "app2": 2000}


def test_show_a_group_by_name_and_by_id(panel: Run) -> None:
    shown = panel("show", "acme", "--json")
    assert shown.returncode == 0, shown.stderr
    acme = json.loads(shown.stdout)
    assert (acme["id"], acme["server"], acme["state"]) == (1, "app1", "active")
    assert "wile.coyote@acme.example" in [m["email"] for m in acme["members"]]
    assert set(acme["tables"]) == {"memberships", "projects", "documents", "invoices", "activity"}
    assert acme["data_rows"] == sum(acme["tables"].values())
    assert acme["billing"]  # the Stripe stand-in, or "Stripe not connected"

    text = panel("show", "1000001")
    assert text.returncode == 0, text.stderr
    assert "Group 1000001 (globex) on app2" in text.stdout and "hank.scorpio@globex.example" in text.stdout
    missing = panel("show", "no-such-group-anywhere")
    assert missing.returncode == 1 and "No group 'no-such-group-anywhere'" in missing.stderr


def test_a_dry_run_shows_the_plan_and_changes_nothing(panel: Run, lab: LabInfo) -> None:
    port1 = lab_port(lab, "app1")
    before = group_rows(port1, MOVED)
    dry = panel("move", "acme-labs", "--to", "app2", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Group 2 (acme-labs): app1 -> app2" in dry.stdout
    for table in ("memberships", "projects", "documents", "invoices", "activity"):
        assert table in dry.stdout
    assert "nothing was changed" in dry.stderr.lower()
    assert group_rows(port1, MOVED) == before and not has_group(lab_port(lab, "app2"), MOVED)


def test_a_move_without_yes_and_without_a_terminal_is_refused(panel: Run, lab: LabInfo, data_dir: Path) -> None:
    port1 = lab_port(lab, "app1")
    before = group_rows(port1, MOVED)
    refused = panel("move", str(MOVED), "--to", "app2")
    assert refused.returncode == 1
    assert "Refusing: not a terminal" in refused.stderr and "--yes" in refused.stderr
    assert group_rows(port1, MOVED) == before and suspended_at(port1, MOVED) is None
    assert not has_group(lab_port(lab, "app2"), MOVED)
    assert _audit(data_dir, f"app1/group:{MOVED}") == []


def test_a_move_with_yes_moves_every_row_and_moving_it_back_restores_it(panel: Run, lab: LabInfo,
                                                                      data_dir: Path) -> None:
    port1, port2 = lab_port(lab, "app1"), lab_port(lab, "app2")
    before = group_rows(port1, MOVED)
    assert before["memberships"] and before["users"]
    moved = panel("move", "acme-labs", "--to", "app2", "--yes")
    try:
        assert moved.returncode == 0, moved.stderr
        assert "moved from app1 to app2" in moved.stdout and "active on app2" in moved.stdout
        there = group_rows(port2, MOVED)
        assert there == before  # row by row, every table, the users its rows refer to included
        assert not has_group(port1, MOVED)
        assert count(port1, "SELECT COUNT(*) FROM memberships WHERE group_id = %s", (MOVED,)) == 0
        # Its owner still belongs to acme on app1: the user stayed there too.
        assert count(port1, "SELECT COUNT(*) FROM users WHERE email = 'wile.coyote@acme.example'") == 1
        entries = _audit(data_dir, f"app1/group:{MOVED}")
        assert entries[0][:2] == ("group.move", "ok") and "from app1 to app2" in entries[0][2]
        shown = json.loads(panel("show", "acme-labs", "--json").stdout)
        assert shown["server"] == "app2"
        assert shown["history"][0]["action"] == "group.move"
    finally:
        back = panel("move", str(MOVED), "--to", "app1", "--yes")
    assert back.returncode == 0, back.stderr
    assert group_rows(port1, MOVED) == before
    assert not has_group(port2, MOVED)
    assert count(port2, "SELECT COUNT(*) FROM users WHERE email = 'wile.coyote@acme.example'") == 0
    assert [e[:2] for e in _audit(data_dir, f"app2/group:{MOVED}")] == [("group.move", "ok")]


def test_suspend_and_reactivate_are_confirmed_and_audited(panel: Run, lab: LabInfo, data_dir: Path) -> None:
    port1 = lab_port(lab, "app1")
    assert suspended_at(port1, SUSPENDED) is None
    refused = panel("suspend", "acme-europe")
    assert refused.returncode == 1 and "Refusing" in refused.stderr
    assert suspended_at(port1, SUSPENDED) is None
    try:
        done = panel("suspend", "acme-europe", "--yes")
        assert done.returncode == 0, done.stderr
        assert suspended_at(port1, SUSPENDED) is not None and "suspended since" in done.stdout
    finally:
        back = panel("reactivate", str(SUSPENDED), "--yes")
    assert back.returncode == 0, back.stderr
    assert suspended_at(port1, SUSPENDED) is None
    actions = [e[:2] for e in _audit(data_dir, f"app1/group:{SUSPENDED}")]
    assert actions == [("group.reactivate", "ok"), ("group.suspend", "ok")]


def test_export_writes_every_row_with_a_manifest(panel: Run, lab: LabInfo, data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "acme-europe.jsonl"
    exported = panel("export", "acme-europe", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert verify_export(Path(str(out) + ".manifest.json")) == []
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    rows = group_rows(lab_port(lab, "app1"), SUSPENDED)
    assert sum(1 for line in lines if line["table"] == "documents") == len(rows["documents"])
    assert (e := _audit(data_dir, f"app1/group:{SUSPENDED}")) and e[0][:2] == ("group.export", "ok")
    again = panel("export", "acme-europe", "--out", str(out))
    assert again.returncode == 1 and "Replace it?" in again.stderr  # never overwritten without --yes
