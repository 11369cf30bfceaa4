"""Reading repositories written by the real rdiff-backup (see conftest.py), and every bad input."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.backups import Repository, RepoTarget, read_backups, read_repositories, read_repository
from services.cancel import CancelToken
from services.errors import Cancelled, ConnectError, OperationTimeout
from services.inventory import BackupSpec
from services.runner import CommandResult, CommandRunner, LocalRunner


def at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def read(runner: CommandRunner, path: Path | str, **kwargs: Any) -> Repository:
    return read_repository(runner, BackupSpec("local", str(path)), server="app1", **kwargs)


# --- a healthy repository ---------------------------------------------------------------------------------


def test_sessions_are_dated_sized_and_counted(repos: Any) -> None:
    repo = read(LocalRunner(), repos.main)
    assert repo.problem is None, repo.problem
    assert repo.cli == "api201"
    assert [s.time for s in repo.sessions] == [at(t) for t in repos.times]
    assert [s.is_mirror for s in repo.sessions] == [False, False, False, False, True]
    assert all(s.listed for s in repo.sessions)
    assert all(s.stats is not None and s.stats.complete for s in repo.sessions)
    assert repo.newest == at(repos.times[-1]) and repo.oldest == at(repos.times[0])
    # sizes from "list increments --size": cumulative sizes shrink toward the mirror
    cumulative = [s.cumulative_size for s in repo.sessions]
    assert all(isinstance(c, int) for c in cumulative)
    assert cumulative == sorted(cumulative, reverse=True)  # type: ignore[type-var]
    assert repo.total_size == cumulative[0]
    # statistics of s1: one new file beside etc/new.conf, etc/passwd changed
    s1 = repo.sessions[1].stats
    assert s1 is not None and s1.new_files == 2 and s1.start_time == at(repos.times[1])
    assert repo.sessions[2].stats is not None and repo.sessions[2].stats.deleted_files == 1
    assert repo.sessions[1].stamp == "2024-01-02T02:30:00Z"


def test_the_session_with_an_error_is_counted(repos: Any) -> None:
    if not repos.error_session_worked:
        pytest.skip("could not drop capabilities here, so no session has an error")
    repo = read(LocalRunner(), repos.main)
    assert [s.errors for s in repo.sessions] == [0, 0, 0, 1, 0]
    assert repo.last_errors == 0 and repo.error_lines == ()


def test_errors_of_the_last_session_come_with_their_lines(repos: Any) -> None:
    if not repos.error_session_worked:
        pytest.skip("could not drop capabilities here, so no session has an error")
    repo = read(LocalRunner(), repos.errors_last)
    assert repo.last_errors == 1
    assert repo.error_log_time == at(repos.times[3])  # the error_log is gzipped: read with zcat -f
    assert repo.error_lines_total == 1
    assert "secret.key" in repo.error_lines[0] and "Permission denied" in repo.error_lines[0]


def test_freshness_follows_max_age(repos: Any) -> None:
    newest = at(repos.times[-1])
    fresh = read(LocalRunner(), repos.main, now=newest + timedelta(hours=25))
    stale = read(LocalRunner(), repos.main, now=newest + timedelta(hours=27))
    assert fresh.freshness == "fresh" and stale.freshness == "stale"
    assert stale.age_hours == pytest.approx(27.0)


def test_to_json_writes_iso_utc_times(repos: Any) -> None:
    data = read(LocalRunner(), repos.main, now=at(repos.times[-1] + 3600)).to_json()
    text = json.dumps(data)
    assert data["newest"] == "2024-01-05T02:30:00Z"
    assert data["sessions"][0]["time"] == "2024-01-01T02:30:00Z"
    assert data["sessions"][0]["stats"]["start_time"] == "2024-01-01T02:30:00Z"
    assert data["freshness"] == "fresh" and data["session_count"] == 5
    assert "+00:00" not in text


def test_without_sizes_is_one_cheaper_listing(repos: Any) -> None:
    repo = read(LocalRunner(), repos.main, with_sizes=False)
    assert len(repo.sessions) == 5 and repo.problem is None
    assert all(s.size is None for s in repo.sessions)


def test_several_repositories_on_one_host_take_one_round_trip(repos: Any, counting_runner: Any) -> None:
    targets = [RepoTarget("app1", BackupSpec("local", str(repos.main))),
               RepoTarget("app2", BackupSpec("local", str(repos.errors_last)))]
    found = read_repositories(counting_runner, targets)
    assert counting_runner.calls == 1
    assert [len(r.sessions) for r in found] == [5, 4]
    assert [r.server for r in found] == ["app1", "app2"]


# --- broken repositories ----------------------------------------------------------------------------------


def test_a_broken_off_backup_needs_a_regress(repos: Any, broken_repo: Path) -> None:
    repo = read(LocalRunner(), broken_repo)
    assert repo.needs_regress is True
    assert repo.broken_session == at(repos.times[-1] + 86400)
    assert repo.problem is not None and "regress" in repo.problem
    assert len(repo.sessions) == 5  # still readable


def test_a_truncated_statistics_file_is_named_and_does_not_stop_the_rest(truncated_repo: Path) -> None:
    repo = read(LocalRunner(), truncated_repo)
    assert repo.problem is not None and "truncated" in repo.problem
    assert "2024-01-05T02:30:00Z" in repo.problem
    assert len(repo.sessions) == 5
    newest = repo.sessions[-1]
    assert newest.stats is not None and newest.stats.complete is False and newest.stats.errors is None
    assert newest.stats.start_time == newest.time  # what was there is kept
    assert repo.sessions[0].stats is not None and repo.sessions[0].stats.complete


# --- bad input: each gets its own message -------------------------------------------------------------------


def test_missing_path(tmp_path: Path) -> None:
    repo = read(LocalRunner(), tmp_path / "nothing-here")
    assert repo.problem == f"The path {tmp_path / 'nothing-here'} does not exist on this laptop."
    assert repo.sessions == () and repo.freshness == "unknown"


def test_a_folder_that_is_not_a_repository(tmp_path: Path) -> None:
    repo = read(LocalRunner(), tmp_path)
    assert repo.problem is not None and "not an rdiff-backup repository" in repo.problem


def test_a_file_is_not_a_repository(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    repo = read(LocalRunner(), tmp_path / "file")
    assert repo.problem is not None and "is a file" in repo.problem


def test_permission_denied_on_the_repository_data(repos: Any, public_repo: Path, nobody_runner: Any) -> None:
    target = public_repo / "repo"
    if not target.exists():
        shutil.copytree(repos.main, target, symlinks=True)
    assert (target / "rdiff-backup-data").stat().st_mode & 0o777 == 0o700  # as rdiff-backup makes it
    repo = read(nobody_runner, target)
    assert repo.problem is not None and repo.problem.startswith("Permission denied")
    assert "rdiff-backup-data readable by its owner only" in repo.problem
    assert repo.sessions == ()


def test_permission_denied_above_the_repository(repos: Any, nobody_runner: Any) -> None:
    # pytest's tmp folders are root-only: nobody cannot even see whether the path exists
    repo = read(nobody_runner, repos.main)
    assert repo.problem is not None and repo.problem.startswith("Permission denied")
    assert "cannot enter a folder above" in repo.problem


def test_rdiff_backup_not_installed_still_shows_the_statistics(repos: Any, no_rdiff_runner: Any) -> None:
    repo = read(no_rdiff_runner, repos.main)
    assert repo.problem is not None and "not installed on bare-host" in repo.problem
    assert [s.time for s in repo.sessions] == [at(t) for t in repos.times]
    assert all(s.listed is None and s.size is None for s in repo.sessions)
    assert repo.freshness in ("fresh", "stale")


def test_an_old_rdiff_backup_is_read_with_its_old_command_line(repos: Any, old_rdiff_runner: Any) -> None:
    repo = read(old_rdiff_runner, repos.main)
    assert repo.problem is None, repo.problem
    assert repo.cli == "legacy"
    assert any("older than 2.1" in note for note in repo.notes)
    assert [s.time for s in repo.sessions] == [at(t) for t in repos.times]
    assert all(s.sizes_approximate and s.cumulative_size for s in repo.sessions)
    exact = read(LocalRunner(), repos.main)
    for rough, right in zip(repo.sessions, exact.sessions, strict=True):
        assert rough.cumulative_size == pytest.approx(right.cumulative_size, rel=0.01)


def test_a_version_that_speaks_neither_command_line(repos: Any, ancient_rdiff_runner: Any) -> None:
    repo = read(ancient_rdiff_runner, repos.main)
    assert repo.problem is not None
    assert "does not speak API 201" in repo.problem and "old command line failed" in repo.problem
    assert len(repo.sessions) == 5  # the statistics files still tell when backups ran


def test_a_host_that_is_down(repos: Any, down_runner: Any) -> None:
    repo = read(down_runner, "/srv/rdiff/app1")
    assert repo.problem is not None and "Could not connect to app9" in repo.problem
    assert repo.where == "app9"


def test_one_bad_host_does_not_stop_the_others(repos: Any) -> None:
    targets = [
        RepoTarget("app1", BackupSpec("local", str(repos.main))),
        RepoTarget("app1", BackupSpec("offsite", "/srv/rdiff/app1", via="backup1")),
        RepoTarget("app1", BackupSpec("laptop", "/nowhere", via="local")),
    ]

    def runner_for(host: str) -> CommandRunner:
        if host == "backup1":
            raise ConnectError("Could not connect to backup1: no route to host.")
        return LocalRunner()

    local, offsite, laptop = read_backups(targets, runner_for)
    assert local.problem is None and len(local.sessions) == 5
    assert offsite.problem is not None and "no route to host" in offsite.problem and offsite.where == "backup1"
    assert laptop.problem is not None and "does not exist" in laptop.problem


class _TimingOut:
    where = "slow-host"

    def run(self, argv: list[str], **_: object) -> CommandResult:
        raise OperationTimeout("sh did not finish within 1 s on slow-host.")

    def run_script(self, script: str, **_: object) -> CommandResult:
        raise OperationTimeout("sh did not finish within 1 s on slow-host.")


def test_a_timeout_is_a_problem_not_a_crash() -> None:
    repo = read(_TimingOut(), "/srv/x")
    assert repo.problem is not None and "did not finish" in repo.problem


def test_cancelling_raises(repos: Any) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        read(LocalRunner(), repos.main, cancel=token)


def test_paths_with_quotes_and_spaces_are_quoted(tmp_path: Path, repos: Any) -> None:
    odd = tmp_path / "it's a $(touch pwned) `x` repo"
    shutil.copytree(repos.main, odd, symlinks=True)
    repo = read(LocalRunner(), odd)
    assert repo.problem is None and len(repo.sessions) == 5
    assert not (Path.cwd() / "pwned").exists() and not (tmp_path / "pwned").exists()


def test_a_repository_reached_through_a_symbolic_link(tmp_path: Path, repos: Any) -> None:
    # rdiff-backup itself refuses a repository path that is a symlink ("couldn't be identified as
    # being within an existing backup repository"); the scripts resolve it first
    link = tmp_path / "current"
    link.symlink_to(repos.main)
    repo = read(LocalRunner(), link)
    assert repo.problem is None and len(repo.sessions) == 5 and repo.path == str(link)


def test_the_read_script_can_be_embedded_in_a_host_script(repos: Any) -> None:
    """The checks run it inside their own host script: nothing of it may leak into that script."""
    from services.backups.reader import parse_read_output
    from services.backups.scripts import new_marker, read_script

    marker = new_marker()
    host_script = (
        "T=keep; M=mine; sep() { echo own-sep; }; trap 'echo outer-exit' EXIT\n"
        + read_script(marker, [str(repos.main)], with_sizes=False)
        + 'echo "after T=$T M=$M"; sep\n'
    )
    result = LocalRunner().run_script(host_script)
    text = result.text()
    assert "after T=keep M=mine" in text and "own-sep" in text and text.rstrip().endswith("outer-exit")
    (repo,) = parse_read_output(text, marker, [RepoTarget("app1", BackupSpec("local", str(repos.main)))],
                                where="app1")
    assert repo.problem is None and len(repo.sessions) == 5
