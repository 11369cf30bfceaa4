"""Changes, verify, restore and removal on repositories written by the real rdiff-backup."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.backups import (
    FileChange,
    RdiffBackupMissing,
    RepositoryError,
    UnsafePath,
    changed_in_last_backup,
    changed_since_last_backup,
    changes_between,
    cleanup_temp,
    plan_remove_older_than,
    read_repository,
    regress,
    remove_older_than,
    restore_to_temp,
    verify,
)
from services.cancel import CancelToken
from services.errors import Cancelled
from services.inventory import BackupSpec
from services.runner import LocalRunner


def at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def kinds(changes: list[FileChange]) -> dict[str, str]:
    return {c.path: c.kind for c in changes}


# --- changes ----------------------------------------------------------------------------------------------


def test_changes_since_a_session_up_to_the_newest(repos: Any) -> None:
    changes = kinds(changes_between(LocalRunner(), str(repos.main), at(repos.times[0])))
    assert changes["etc/passwd"] == "changed"
    assert changes["etc/new.conf"] == "added"
    assert changes["etc/hosts"] == "changed"
    assert changes["var/www/old.txt"] == "removed"
    assert changes["var/www/a file with spaces.txt"] == "added"
    assert changes["var/www/index.html"] == "changed"
    assert "etc/nginx/nginx.conf" not in changes


def test_changes_between_two_older_sessions(repos: Any) -> None:
    repo = read_repository(LocalRunner(), BackupSpec("local", str(repos.main)), server="app1")
    t = [at(x) for x in repos.times]
    assert kinds(changes_between(LocalRunner(), repo, t[0], t[1])) == {
        "etc": "changed",  # a folder whose entries changed has changed too
        "etc/passwd": "changed",
        "etc/new.conf": "added",
        "var/www": "changed",
        "var/www/a file with spaces.txt": "added",
    }
    assert kinds(changes_between(LocalRunner(), repo, t[1], t[2])) == {
        "var/www": "changed",
        "var/www/old.txt": "removed",
        "var/www/index.html": "changed",
    }
    # across several sessions, folded: added in s1, still there in s2
    between = kinds(changes_between(LocalRunner(), repo, t[0], t[2]))
    assert between["etc/new.conf"] == "added" and between["var/www/old.txt"] == "removed"
    assert changes_between(LocalRunner(), repo, t[2], t[1]) == []


def test_naive_times_are_utc(repos: Any) -> None:
    naive = [datetime.fromtimestamp(x, UTC).replace(tzinfo=None) for x in repos.times]
    assert kinds(changes_between(LocalRunner(), str(repos.main), naive[1], naive[2], prefix="var")) == {
        "var/www": "changed", "var/www/old.txt": "removed", "var/www/index.html": "changed"
    }


def test_changes_filtered_by_prefix(repos: Any) -> None:
    t = [at(x) for x in repos.times]
    up_to_now = changes_between(LocalRunner(), str(repos.main), t[0], prefix="/etc/")
    assert up_to_now and all(c.path == "etc" or c.path.startswith("etc/") for c in up_to_now)
    older = kinds(changes_between(LocalRunner(), str(repos.main), t[1], t[2], prefix="var/www"))
    assert older == {"var/www": "changed", "var/www/old.txt": "removed", "var/www/index.html": "changed"}
    assert changes_between(LocalRunner(), str(repos.main), t[0], t[1], prefix="var/www/index.html") == []


def test_without_file_statistics_it_restores_and_compares(repos: Any, no_file_stats_repo: Path) -> None:
    t = [at(x) for x in repos.times]
    var = kinds(changes_between(LocalRunner(), str(no_file_stats_repo), t[1], t[2], prefix="var"))
    assert var == {"var/www": "changed", "var/www/old.txt": "removed", "var/www/index.html": "changed"}
    etc = kinds(changes_between(LocalRunner(), str(no_file_stats_repo), t[0], t[1], prefix="etc"))
    assert etc["etc/passwd"] == "changed" and etc["etc/new.conf"] == "added"


def test_changed_in_last_backup(repos: Any) -> None:
    repo = read_repository(LocalRunner(), BackupSpec("local", str(repos.main)), server="app1")
    changes = kinds(changed_in_last_backup(LocalRunner(), repo, "etc"))
    assert changes["etc/hosts"] == "changed"
    assert "var/www/index.html" not in changes


def test_changed_since_last_backup_compares_the_live_files(repos: Any, tmp_path: Path) -> None:
    live = tmp_path / "live"
    shutil.copytree(repos.source, live)  # copytree keeps the dates: as the last backup saw it
    assert changed_since_last_backup(LocalRunner(), str(repos.main), "etc", source_root=str(live)) == []
    with open(live / "etc/passwd", "a") as passwd:
        passwd.write("mallory:x:0:0::/root:/bin/bash\n")
    (live / "etc/rogue.conf").write_text("x\n")
    changes = kinds(changed_since_last_backup(LocalRunner(), str(repos.main), "etc", source_root=str(live)))
    assert changes["etc/passwd"] == "changed" and changes["etc/rogue.conf"] == "added"


def test_live_files_are_not_on_the_backup_host(repos: Any) -> None:
    spec = BackupSpec("offsite", str(repos.main), via="backup1")
    with pytest.raises(RepositoryError, match="live files"):
        changed_since_last_backup(LocalRunner(), spec)


# --- verify -----------------------------------------------------------------------------------------------


def test_verify_a_healthy_repository(repos: Any) -> None:
    heard: list[str] = []
    result = verify(LocalRunner(), str(repos.main), progress=heard.append)
    assert result.ok and result.problems == () and result.cli == "api201"
    assert heard[0].startswith("Verifying") and heard[-1] == "All files verified."
    assert verify(LocalRunner(), str(repos.main), at(repos.times[1])).ok


def test_verify_finds_a_damaged_file(repo_copy: Path) -> None:
    (repo_copy / "etc/passwd").write_text("tampered\n")
    result = verify(LocalRunner(), str(repo_copy))
    assert not result.ok
    assert any("etc/passwd" in problem and "digest" in problem for problem in result.problems)


def test_verify_on_a_folder_that_is_not_a_repository_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match="Verifying"):
        verify(LocalRunner(), str(tmp_path))


# --- restore ----------------------------------------------------------------------------------------------


def test_restore_a_file_as_it_was(repos: Any) -> None:
    runner = LocalRunner()
    copy = restore_to_temp(runner, str(repos.main), "/etc/passwd", at(repos.times[0]))
    try:
        assert copy.local and copy.source_path == "etc/passwd"
        assert Path(copy.temp_dir).name.startswith("panel-restore.")
        assert Path(copy.target).read_text() == "root:x:0:0:root:/root:/bin/bash\n"
    finally:
        cleanup_temp(runner, copy)
    assert not Path(copy.temp_dir).exists()


def test_restore_a_folder_at_the_newest_backup(repos: Any, tmp_path: Path) -> None:
    runner = LocalRunner()
    copy = restore_to_temp(runner, str(repos.main), "var/www", temp_parent=str(tmp_path))
    try:
        assert Path(copy.temp_dir).parent == tmp_path
        assert sorted(p.name for p in Path(copy.target).iterdir()) == ["a file with spaces.txt", "index.html"]
    finally:
        cleanup_temp(runner, copy.temp_dir)


def test_restore_of_a_path_that_did_not_exist_then_fails_and_leaves_nothing(repos: Any, tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match=r"etc/new\.conf .* not in the backup of 2024-01-01T02:30:00Z"):
        restore_to_temp(LocalRunner(), str(repos.main), "etc/new.conf", at(repos.times[0]), temp_parent=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", ["../etc/passwd", "etc/../../x", "rdiff-backup-data/backup.log"])
def test_restore_refuses_paths_outside_the_backup(repos: Any, path: str) -> None:
    with pytest.raises(UnsafePath):
        restore_to_temp(LocalRunner(), str(repos.main), path)


@pytest.mark.parametrize("path", ["/etc", "/tmp/other", "relative/panel-restore.x", "/tmp/panel-restore.x/../etc"])
def test_cleanup_deletes_only_restore_folders(path: str) -> None:
    with pytest.raises(UnsafePath):
        cleanup_temp(LocalRunner(), path)


# --- remove -----------------------------------------------------------------------------------------------


def test_plan_lists_what_would_go(repos: Any) -> None:
    plan = plan_remove_older_than(LocalRunner(), str(repos.main), at(repos.times[2]))
    assert [s.time for s in plan] == [at(repos.times[0]), at(repos.times[1])]
    # the mirror always stays, however late the limit
    everything = plan_remove_older_than(LocalRunner(), str(repos.main), at(repos.times[-1] + 10**6))
    assert len(everything) == 4 and not any(s.is_mirror for s in everything)


def test_remove_several_increments_uses_force(repos: Any, repo_copy: Path) -> None:
    result = remove_older_than(LocalRunner(), str(repo_copy), at(repos.times[2]))
    assert result.forced and [s.time for s in result.removed] == [at(repos.times[0]), at(repos.times[1])]
    after = read_repository(LocalRunner(), BackupSpec("local", str(repo_copy)), server="app1")
    assert [s.time for s in after.sessions] == [at(t) for t in repos.times[2:]]
    assert verify(LocalRunner(), str(repo_copy)).ok


def test_remove_one_increment_goes_without_force(repos: Any, repo_copy: Path) -> None:
    runner = LocalRunner()
    plan = plan_remove_older_than(runner, str(repo_copy), at(repos.times[1]))
    result = remove_older_than(runner, str(repo_copy), at(repos.times[1]), plan=plan)
    assert not result.forced and len(result.removed) == 1
    assert remove_older_than(runner, str(repo_copy), at(repos.times[0])).removed == ()  # nothing older


# --- other hosts ------------------------------------------------------------------------------------------


def test_operations_on_an_old_rdiff_backup(repos: Any, repo_copy: Path, old_rdiff_runner: Any) -> None:
    t = [at(x) for x in repos.times]
    changes = kinds(changes_between(old_rdiff_runner, str(repos.main), t[0]))
    assert changes["etc/new.conf"] == "added"
    assert verify(old_rdiff_runner, str(repos.main)).cli == "legacy"
    copy = restore_to_temp(old_rdiff_runner, str(repos.main), "etc/passwd", t[0])
    try:
        assert Path(copy.target).read_text() == "root:x:0:0:root:/root:/bin/bash\n"
    finally:
        cleanup_temp(old_rdiff_runner, copy)
    removed = remove_older_than(old_rdiff_runner, str(repo_copy), t[2])
    assert removed.cli == "legacy" and removed.forced and len(removed.removed) == 2


def test_operations_without_rdiff_backup(repos: Any, no_rdiff_runner: Any) -> None:
    with pytest.raises(RdiffBackupMissing, match="not installed on bare-host"):
        verify(no_rdiff_runner, str(repos.main))
    with pytest.raises(RdiffBackupMissing):
        changes_between(no_rdiff_runner, str(repos.main), at(repos.times[0]))


def test_regress_a_broken_off_backup(broken_repo: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(broken_repo, repo, symlinks=True)
    assert read_repository(LocalRunner(), BackupSpec("l", str(repo)), server="a").needs_regress
    assert regress(LocalRunner(), str(repo)) == "api201"
    after = read_repository(LocalRunner(), BackupSpec("l", str(repo)), server="a")
    assert not after.needs_regress and after.problem is None and len(after.sessions) == 5


def test_operations_can_be_cancelled(repos: Any) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        verify(LocalRunner(), str(repos.main), cancel=token)
