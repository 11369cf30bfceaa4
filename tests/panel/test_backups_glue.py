"""panel.backups: the glue the CLI and the window share, on the lab's real servers and repositories
(real sshd, real rdiff-backup 2.2, restores streamed back over SFTP)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from panel import backups
from panel.context import PanelContext
from panel.lab.fleet import LabInfo
from services.backups import Repository, RepoTarget
from services.cancel import CancelToken
from services.errors import Cancelled, PanelError
from services.inventory import BackupSpec
from services.runner import LocalRunner
from services.ssh import SshRunner
from tests.views.backups.backup_helpers import (
    backup_toml,
    copy_lab_repo,
    down_server_toml,
    lab_config,
    lab_repo,
    open_context,
)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(shutil.which("rdiff-backup") is None, reason="rdiff-backup is not installed"),
]


@pytest.fixture
def make_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv("PANEL_DATA_DIR", str(tmp_path / "data"))
    made: list[PanelContext] = []

    def make(config: Path) -> PanelContext:
        context = open_context(config, tmp_path)
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()
        context.store.close()


def audit(context: PanelContext, action: str) -> list[tuple[str, str, str]]:
    return [(e.target, e.outcome, e.detail) for e in context.store.audit_entries(action_prefix=action)]


def test_runner_for_picks_this_laptop_or_the_server(lab: LabInfo, tmp_path: Path, make_context) -> None:
    context = make_context(lab_config(lab, tmp_path / "cfg"))
    assert isinstance(backups.runner_for(context, "local"), LocalRunner)
    runner = backups.runner_for(context, "backup1")
    assert isinstance(runner, SshRunner) and runner.where == "backup1"
    local, offsite = backups.targets(context)
    assert backups.repo_runner(context, local).where == "app1"
    assert backups.repo_runner(context, offsite).where == "backup1"  # via = "backup1"
    with pytest.raises(PanelError, match="no backup named 'nope'"):
        backups.find_target(context, "app1", "nope")


def test_parse_time_takes_what_an_operator_types() -> None:
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    assert backups.parse_time("2026-03-01T02:30:00Z") == datetime(2026, 3, 1, 2, 30, tzinfo=UTC)
    assert backups.parse_time("2026-03-01T03:30:00+01:00") == datetime(2026, 3, 1, 2, 30, tzinfo=UTC)
    assert backups.parse_time("2026-03-01 02:30") == datetime(2026, 3, 1, 2, 30, tzinfo=UTC)  # no zone: UTC
    assert backups.parse_time("2026-03-01") == datetime(2026, 3, 1, tzinfo=UTC)
    assert backups.parse_time("1772332200") == datetime(2026, 3, 1, 2, 30, tzinfo=UTC)
    assert backups.parse_time("90D", now=now) == now - timedelta(days=90)
    assert backups.parse_time("2W", now=now) == now - timedelta(days=14)
    assert backups.parse_time("12h", now=now) == now - timedelta(hours=12)
    assert backups.parse_time("30m", now=now) == now - timedelta(minutes=30)
    assert backups.parse_time("6M", now=now) == now - timedelta(days=180)
    with pytest.raises(PanelError, match="not a time"):
        backups.parse_time("last tuesday")


def test_read_all_reads_each_host_once_in_parallel_and_a_down_host_only_hides_its_own(
        lab: LabInfo, tmp_path: Path, make_context) -> None:
    extra = down_server_toml("app9", lab.client_key) + backup_toml("app9", "local", "/var/backups/rdiff/app9")
    context = make_context(lab_config(lab, tmp_path / "cfg", extra=extra))
    heard: list[tuple[str, list[str]]] = []
    repositories = backups.read_all(context, on_host=lambda host, found: heard.append((host, [r.name for r in found])))
    assert [backups.label(r) for r in repositories] == ["app1/local", "app1/offsite", "app9/local"]
    assert sorted(heard) == [("app1", ["local"]), ("app9", ["local"]), ("backup1", ["offsite"])]
    local, offsite, down = repositories
    assert local.problem is None and len(local.sessions) == 60 and local.freshness == "fresh"
    assert offsite.where == "backup1" and offsite.freshness == "stale" and len(offsite.sessions) == 57
    assert not down.readable and down.problem is not None and "app9" in down.problem
    only = backups.read_all(context, "app9")
    assert [r.server for r in only] == ["app9"]
    with pytest.raises(PanelError, match="no server named 'nope'"):
        backups.read_all(context, "nope")


def test_restore_streams_a_folder_back_over_sftp_with_progress(lab: LabInfo, tmp_path: Path, make_context) -> None:
    context = make_context(lab_config(lab, tmp_path / "cfg"))
    offsite = backups.find_target(context, "app1", "offsite")  # on backup1: remote, copied over SFTP
    destination = tmp_path / "restored"
    destination.mkdir()
    prepared = backups.prepare_restore(context, offsite, "/etc", None, destination)
    assert not prepared.copy.local and prepared.copy.where == "backup1"
    assert prepared.conflicts == () and prepared.file_count >= 10 and prepared.total_bytes > 0
    reports: list[backups.RestoreProgress] = []
    outcome = backups.finish_restore(context, prepared, progress=reports.append)
    root = destination / "etc"
    assert outcome.local_root == root
    assert (root / "hostname").read_text() == "app1\n"
    assert "root:x:0:0" in (root / "passwd").read_text()
    assert "mallory" not in (root / "passwd").read_text()  # added on app1 after the last backup
    assert (root / "nginx" / "nginx.conf").is_file()
    assert outcome.bytes == prepared.total_bytes == sum(p.stat().st_size for p in outcome.written if p.is_file())
    done = [r.done_bytes for r in reports]
    assert done == sorted(done) and reports[-1].done_bytes == reports[-1].total_bytes == prepared.total_bytes
    assert reports[-1].files_done == prepared.file_count
    assert not Path(prepared.copy.temp_dir).exists()  # the temporary copy on backup1 is gone (same machine)
    assert audit(context, "backup.restore")[0][:2] == ("app1/offsite", "ok")


def test_a_local_file_is_never_overwritten_without_a_choice(lab: LabInfo, tmp_path: Path, make_context) -> None:
    context = make_context(lab_config(lab, tmp_path / "cfg"))
    offsite = backups.find_target(context, "app1", "offsite")
    destination = tmp_path / "restored"
    (destination / "etc").mkdir(parents=True)
    mine = destination / "etc" / "hostname"
    mine.write_text("my own notes\n")

    prepared = backups.prepare_restore(context, offsite, "etc", None, destination)
    assert prepared.conflicts == (mine,)
    with pytest.raises(backups.RestoreConflict) as refused:
        backups.finish_restore(context, prepared)  # no choice given: nothing is written
    assert refused.value.conflicts == (mine,)
    assert mine.read_text() == "my own notes\n" and not (destination / "etc" / "passwd").exists()
    assert not Path(prepared.copy.temp_dir).exists()

    kept = backups.restore(context, offsite, "etc", None, destination, on_conflict="skip")
    assert kept.kept == (mine,) and mine.read_text() == "my own notes\n"
    assert (destination / "etc" / "passwd").exists()

    with pytest.raises(backups.RestoreConflict):
        backups.restore(context, offsite, "etc", None, destination)  # now everything is in the way
    replaced = backups.restore(context, offsite, "etc/hostname", None, destination / "etc", on_conflict="overwrite")
    assert replaced.written == (mine,) and mine.read_text() == "app1\n"
    assert not list(destination.rglob(".*panel-part*"))


def test_a_local_symlink_in_the_way_is_a_conflict_never_followed(lab: LabInfo, tmp_path: Path,
                                                                 make_context) -> None:
    context = make_context(lab_config(lab, tmp_path / "cfg"))
    offsite = backups.find_target(context, "app1", "offsite")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    destination = tmp_path / "restored"
    destination.mkdir()
    (destination / "etc").symlink_to(elsewhere)
    prepared = backups.prepare_restore(context, offsite, "etc", None, destination)
    assert prepared.conflicts == (destination / "etc",)
    outcome = backups.finish_restore(context, prepared, on_conflict="skip")
    assert outcome.written == () and list(elsewhere.iterdir()) == []
    outcome = backups.restore(context, offsite, "etc", None, destination, on_conflict="overwrite")
    assert (destination / "etc").is_dir() and not (destination / "etc").is_symlink()
    assert list(elsewhere.iterdir()) == []  # the link itself was replaced, never written through
    assert (destination / "etc" / "hostname").read_text() == "app1\n"


def test_cancelling_a_restore_leaves_no_half_file_and_no_temporary_copy(lab: LabInfo, tmp_path: Path,
                                                                        make_context) -> None:
    context = make_context(lab_config(lab, tmp_path / "cfg"))
    offsite = backups.find_target(context, "app1", "offsite")
    destination = tmp_path / "restored"
    destination.mkdir()
    prepared = backups.prepare_restore(context, offsite, "etc", None, destination)
    token = CancelToken()

    def progress(report: backups.RestoreProgress) -> None:
        if report.files_done >= 2:
            token.cancel()

    with pytest.raises(Cancelled):
        backups.finish_restore(context, prepared, progress=progress, cancel=token, channels=1)
    assert len([p for p in destination.rglob("*") if p.is_file()]) < prepared.file_count
    assert not list(destination.rglob(".*panel-part*"))
    assert not Path(prepared.copy.temp_dir).exists()
    assert audit(context, "backup.restore")[0][:2] == ("app1/offsite", "cancelled")


def test_a_repository_on_this_laptop_is_copied_locally(lab: LabInfo, tmp_path: Path, make_context) -> None:
    path = copy_lab_repo(lab, "local", tmp_path / "laptop-repo")
    config = lab_config(lab, tmp_path / "cfg", backups=backup_toml("app1", "laptop", path, via="local"))
    context = make_context(config)
    (repository,) = backups.read_all(context)
    assert repository.where == "this laptop" and len(repository.sessions) == 60
    destination = tmp_path / "restored"
    destination.mkdir()
    oldest = repository.sessions[0].time
    outcome = backups.restore(context, repository, "etc/ssh/sshd_config", oldest, destination)
    assert (destination / "sshd_config").read_text() == "PermitRootLogin yes\nPasswordAuthentication yes\n"
    assert outcome.written == (destination / "sshd_config",)


def test_verify_remove_and_regress_are_audited(lab: LabInfo, tmp_path: Path, make_context) -> None:
    path = copy_lab_repo(lab, "local", tmp_path / "copy")
    config = lab_config(lab, tmp_path / "cfg", backups=backup_toml("app1", "copy", path))
    context = make_context(config)
    target = backups.find_target(context, "app1", "copy")
    result = backups.verify_repository(context, target)
    assert result.ok and audit(context, "backup.verify")[0][:2] == ("app1/copy", "ok")

    repository: Repository = backups.read_one(context, target, with_sizes=False)
    older_than = repository.sessions[5].time
    plan = backups.plan_removal(context, target, older_than)
    assert [s.time for s in plan] == [s.time for s in repository.sessions[:5]]
    removed = backups.remove_sessions(context, target, older_than, plan)
    assert len(removed.removed) == 5
    after = backups.read_one(context, target, with_sizes=False)
    assert len(after.sessions) == 55 and after.oldest == older_than
    (entry,) = audit(context, "backup.remove-older-than")
    assert entry[:2] == ("app1/copy", "ok") and "removed 5 session(s)" in entry[2]

    with pytest.raises(PanelError):
        backups.regress_repository(context, RepoTarget("app1", BackupSpec("gone", str(tmp_path / "nothing-here"))))
    assert audit(context, "backup.regress")[0][1] == "failed"


def test_the_etc_check_compares_the_live_files_or_says_what_the_last_backup_changed(
        lab: LabInfo, tmp_path: Path, make_context) -> None:
    context = make_context(lab_config(lab, tmp_path / "cfg"))
    local, offsite = backups.read_all(context, with_sizes=False)
    live = backups.etc_changes(context, local)
    assert [(c.path, c.kind) for c in live.changes] == [("etc/passwd", "changed")]  # mallory, after the backup
    assert "against the last backup" in live.title
    away = backups.etc_changes(context, offsite)
    assert "backup1" in away.title and "newest backup changed" in away.title
    assert lab_repo(lab, "offsite")["via"] == "backup1"


def test_live_root_is_the_source_or_where_the_servers_watched_etc_lives(lab: LabInfo, tmp_path: Path,
                                                                       make_context) -> None:
    demo = make_context(lab.config_path)  # the lab's own config: no source, watch_paths under servers/app1
    local = backups.find_target(demo, "app1", "local")
    assert backups.live_root(demo, local) == str(lab.servers["app1"].root)
    (repository,) = [r for r in backups.read_all(demo, with_sizes=False) if r.name == "local"]
    assert [c.path for c in backups.etc_changes(demo, repository).changes] == ["etc/passwd"]
    explicit = make_context(lab_config(lab, tmp_path / "cfg", backups=backup_toml("app1", "x", "/r", source="/srv")))
    assert backups.live_root(explicit, backups.find_target(explicit, "app1", "x")) == "/srv"
    plain = make_context(lab_config(lab, tmp_path / "cfg2", backups=backup_toml("app1", "x", "/r")))
    assert backups.live_root(plain, backups.find_target(plain, "app1", "x")) == "/"
