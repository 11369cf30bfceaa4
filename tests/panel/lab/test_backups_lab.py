"""The demo fleet's repositories: written by the real rdiff-backup, read back by services.backups."""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from panel.lab.backups import (
    ERROR_SESSION,
    OFFSITE_LAG_DAYS,
    SESSIONS,
    DemoRepo,
    make_demo_repositories,
    newest_session_time,
)
from services.backups import changed_since_last_backup, changes_between, read_repository, verify
from services.inventory import BackupSpec
from services.runner import LocalRunner

pytestmark = [
    pytest.mark.skipif(shutil.which("rdiff-backup") is None, reason="rdiff-backup is not installed"),
    pytest.mark.slow,  # builds the template in a private cache: 4-10 s
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[DemoRepo], float]:
    base = tmp_path_factory.mktemp("lab-backups")
    started = time.monotonic()
    repos = make_demo_repositories(base / "lab", base / "lab" / "servers", cache_dir=base / "cache")
    return base, repos, time.monotonic() - started


def spec(repo: DemoRepo) -> BackupSpec:
    return BackupSpec(repo.name, str(repo.path), repo.via, repo.max_age_hours)


def test_newest_session_is_the_last_0230() -> None:
    assert newest_session_time(datetime(2026, 3, 1, 9, 0, tzinfo=UTC)) == datetime(2026, 3, 1, 2, 30, tzinfo=UTC)
    assert newest_session_time(datetime(2026, 3, 1, 1, 0, tzinfo=UTC)) == datetime(2026, 2, 28, 2, 30, tzinfo=UTC)


def test_what_the_lab_gets(demo: tuple[Path, list[DemoRepo], float]) -> None:
    base, repos, seconds = demo
    assert seconds < 30, f"building the demo backups took {seconds:.1f} s"
    local, offsite = repos
    assert (local.server, local.name, local.via) == ("app1", "local", None)
    assert (offsite.server, offsite.name, offsite.via) == ("app1", "offsite", "backup1")
    assert local.path == base / "lab/servers/app1/var/backups/rdiff/app1"
    assert offsite.path == base / "lab/servers/backup1/srv/rdiff/app1"


def test_local_is_fresh_and_offsite_is_stale(demo: tuple[Path, list[DemoRepo], float]) -> None:
    _, (local, offsite), _ = demo
    runner = LocalRunner()
    mine = read_repository(runner, spec(local), server="app1")
    theirs = read_repository(runner, spec(offsite), server="app1")
    assert mine.problem is None and theirs.problem is None
    assert len(mine.sessions) == SESSIONS and len(theirs.sessions) == SESSIONS - OFFSITE_LAG_DAYS
    assert mine.freshness == "fresh" and theirs.freshness == "stale"
    assert mine.newest == newest_session_time()
    assert theirs.newest == newest_session_time() - timedelta(days=OFFSITE_LAG_DAYS)
    assert all(s.listed for s in mine.sessions)  # every day changed something
    gaps = {b.time - a.time for a, b in zip(mine.sessions, mine.sessions[1:], strict=False)}
    assert gaps == {timedelta(days=1)}
    # the run that could not read the key
    assert [i for i, s in enumerate(mine.sessions) if s.errors] == [ERROR_SESSION]
    # statistics read like real runs, not like the faked clock
    assert all(s.stats and s.stats.elapsed_seconds and s.stats.elapsed_seconds < 60 for s in mine.sessions)


def test_config_files_change_between_sessions(demo: tuple[Path, list[DemoRepo], float]) -> None:
    _, (local, _), _ = demo
    runner = LocalRunner()
    repo = read_repository(runner, spec(local), server="app1", with_sizes=False)
    changes = {c.path: c.kind for c in changes_between(runner, repo, repo.sessions[0].time, prefix="etc")}
    for path in ("etc/passwd", "etc/group", "etc/ssh/sshd_config", "etc/nginx/sites-enabled/saas.conf"):
        assert changes.get(path) == "changed", path
    assert changes.get("etc/ssl/private/app1.key") == "added"
    assert verify(runner, str(local.path)).ok


def test_live_files_differ_from_the_last_backup_by_one_change(demo: tuple[Path, list[DemoRepo], float]) -> None:
    base, (local, _), _ = demo
    changes = changed_since_last_backup(
        LocalRunner(), str(local.path), "etc", source_root=str(base / "lab/servers/app1")
    )
    assert [(c.path, c.kind) for c in changes] == [("etc/passwd", "changed")]


def test_a_second_lab_copies_the_cached_template(demo: tuple[Path, list[DemoRepo], float]) -> None:
    base, _, _ = demo
    started = time.monotonic()
    again = make_demo_repositories(base / "lab2", base / "lab2" / "servers", cache_dir=base / "cache")
    assert time.monotonic() - started < 10  # a copy (~0.1-1 s), not a build
    assert len(read_repository(LocalRunner(), spec(again[0]), server="app1").sessions) == SESSIONS
