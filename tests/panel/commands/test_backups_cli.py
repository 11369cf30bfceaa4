"""`python -m panel backups ...` on the lab (real sshd, real rdiff-backup 2.2): the listing contract
(every repository, ISO 8601 UTC times, freshness, problems, exit 0), verify, restore without
overwriting, and remove-older-than that lists, asks and audits."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from panel.lab.fleet import LabInfo
from panel.store import Store
from tests.views.backups.backup_helpers import (
    ISO_UTC,
    backup_toml,
    copy_lab_repo,
    down_server_toml,
    lab_config,
)

ROOT = Path(__file__).resolve().parents[3]

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(shutil.which("rdiff-backup") is None, reason="rdiff-backup is not installed"),
]


def run_panel(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PANEL_DATA_DIR": str(tmp_path / "data"), "HOME": str(tmp_path / "home"),
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    env.pop("SSH_AUTH_SOCK", None)
    (tmp_path / "home").mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "panel", *args], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=300, check=False, cwd=ROOT)


def audit(tmp_path: Path, action: str) -> list[tuple[str, str, str]]:
    store = Store(tmp_path / "data" / "panel.sqlite3")
    try:
        return [(e.target, e.outcome, e.detail) for e in store.audit_entries(action_prefix=action)]
    finally:
        store.close()


def test_backups_json_on_the_lab_lists_both_repositories(lab: LabInfo, tmp_path: Path) -> None:
    result = run_panel(tmp_path, "--config", str(lab.config_path), "backups", "--json")
    assert result.returncode == 0, result.stderr
    repositories = {f"{r['server']}/{r['name']}": r for r in json.loads(result.stdout)}
    assert set(repositories) == {"app1/local", "app1/offsite"}
    local, offsite = repositories["app1/local"], repositories["app1/offsite"]
    assert local["freshness"] == "fresh" and offsite["freshness"] == "stale"
    assert offsite["where"] == "backup1" and offsite["via"] == "backup1"
    assert local["session_count"] == len(local["sessions"]) == 60 and offsite["session_count"] == 57
    for repository in (local, offsite):
        assert repository["problem"] is None
        assert re.match(ISO_UTC, repository["newest"]) and re.match(ISO_UTC, repository["oldest"])
        assert re.match(ISO_UTC, repository["read_at"])
        assert all(re.match(ISO_UTC, s["time"]) for s in repository["sessions"])
        assert repository["total_size"] > 0 and repository["last_errors"] == 0
        assert repository["needs_regress"] is False
    assert offsite["age_hours"] > 26 >= local["age_hours"]
    assert sum(1 for s in local["sessions"] if s["errors"]) == 1  # the run that could not read the key


def test_one_failing_host_shows_its_problem_and_the_others_still_print(lab: LabInfo, tmp_path: Path) -> None:
    extra = down_server_toml("app9", lab.client_key) + backup_toml("app9", "local", "/var/backups/rdiff/app9")
    config = lab_config(lab, tmp_path / "cfg", extra=extra)
    listed = run_panel(tmp_path, "--config", str(config), "backups", "--json")
    assert listed.returncode == 0, listed.stderr
    by_label = {f"{r['server']}/{r['name']}": r for r in json.loads(listed.stdout)}
    assert by_label["app9/local"]["freshness"] == "unknown" and "app9" in by_label["app9/local"]["problem"]
    assert by_label["app1/local"]["session_count"] == 60 and by_label["app1/offsite"]["session_count"] == 57
    text = run_panel(tmp_path, "--config", str(config), "backups")
    assert text.returncode == 0, text.stderr
    assert "app9/local  [UNREADABLE]" in text.stdout and "problem: Could not" in text.stdout
    assert "app1/local  [fresh]" in text.stdout and "app1/offsite  [STALE]" in text.stdout
    assert re.search(r"^  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +mirror ", text.stdout, re.MULTILINE)
    one = run_panel(tmp_path, "--config", str(config), "backups", "app9", "--json")
    assert one.returncode == 0 and [r["server"] for r in json.loads(one.stdout)] == ["app9"]


def test_verify_prints_the_result_and_audits_it(lab: LabInfo, tmp_path: Path) -> None:
    config = lab_config(lab, tmp_path / "cfg")
    result = run_panel(tmp_path, "--config", str(config), "backups", "verify", "app1", "offsite", "--at", "20D")
    assert result.returncode == 0, result.stderr
    assert "app1/offsite: every file of" in result.stdout
    assert audit(tmp_path, "backup.verify")[0][:2] == ("app1/offsite", "ok")
    usage = run_panel(tmp_path, "--config", str(config), "backups", "verify", "app1")
    assert usage.returncode == 2 and "wrong number of arguments" in usage.stderr
    unknown = run_panel(tmp_path, "--config", str(config), "backups", "verify", "app1", "nope")
    assert unknown.returncode == 1 and "no backup named 'nope'" in unknown.stderr


def test_restore_to_a_local_folder_never_overwrites_without_a_flag(lab: LabInfo, tmp_path: Path) -> None:
    config = lab_config(lab, tmp_path / "cfg")
    target = tmp_path / "laptop"
    target.mkdir()
    args = ("--config", str(config), "backups", "restore", "app1", "offsite", "etc", "--to", str(target))
    first = run_panel(tmp_path, *args)
    assert first.returncode == 0, first.stderr
    assert (target / "etc" / "hostname").read_text() == "app1\n" and "Restored to" in first.stdout
    mine = target / "etc" / "hostname"
    mine.write_text("mine\n")
    refused = run_panel(tmp_path, *args)  # no terminal, no flag: refuse, list the conflicts
    assert refused.returncode == 1 and str(mine) in refused.stderr and "Nothing was restored" in refused.stderr
    assert mine.read_text() == "mine\n"
    kept = run_panel(tmp_path, *args, "--keep-existing")
    assert kept.returncode == 0 and mine.read_text() == "mine\n" and "kept" in kept.stdout
    replaced = run_panel(tmp_path, *args, "--overwrite")
    assert replaced.returncode == 0 and mine.read_text() == "app1\n"
    missing = run_panel(tmp_path, "--config", str(config), "backups", "restore", "app1", "offsite", "etc/no-such-file",
                        "--to", str(tmp_path), "--at", "20D")
    assert missing.returncode == 1 and "not in the backup" in missing.stderr
    missing_to = run_panel(tmp_path, "--config", str(config), "backups", "restore", "app1", "offsite", "etc")
    assert missing_to.returncode == 2 and "--to" in missing_to.stderr


def test_remove_older_than_lists_asks_and_audits(lab: LabInfo, tmp_path: Path) -> None:
    copy = copy_lab_repo(lab, "local", tmp_path / "copy")
    config = lab_config(lab, tmp_path / "cfg", backups=backup_toml("app1", "copy", copy))
    listed = json.loads(run_panel(tmp_path, "--config", str(config), "backups", "--json").stdout)
    times = [s["time"] for s in listed[0]["sessions"]]
    args = ("--config", str(config), "backups", "remove-older-than", "app1", "copy", times[3])
    refused = run_panel(tmp_path, *args)  # not a terminal and no --yes: lists, then refuses
    assert refused.returncode == 1, refused.stderr
    assert [line.split()[0] for line in refused.stdout.splitlines()[1:]] == times[:3]
    assert "Refusing: not a terminal" in refused.stderr
    assert audit(tmp_path, "backup.remove-older-than") == []
    removed = run_panel(tmp_path, *args, "--yes")
    assert removed.returncode == 0, removed.stderr
    assert "Removed 3 session(s) from app1/copy" in removed.stdout
    after = json.loads(run_panel(tmp_path, "--config", str(config), "backups", "--json").stdout)
    assert [s["time"] for s in after[0]["sessions"]] == times[3:]
    (entry,) = audit(tmp_path, "backup.remove-older-than")
    assert entry[:2] == ("app1/copy", "ok") and times[0] in entry[2]
    nothing = run_panel(tmp_path, *args, "--yes")
    assert nothing.returncode == 0 and "nothing to remove" in nothing.stdout
