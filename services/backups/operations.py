"""What the panel does with a repository besides reading it: changes, verify, restore, remove.

Each call is one round trip (a script that tries rdiff-backup's API 201 command line and, if the
host's rdiff-backup is 2.0, its old one), takes a CancelToken and a timeout, and raises typed errors
(:mod:`services.backups.errors`, :mod:`services.errors`).

A repository is given as a :class:`Repository` (as read), a :class:`BackupSpec`, or its path.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from services.backups import parsers
from services.backups.errors import RdiffBackupMissing, RepositoryError, UnsafePath
from services.backups.models import (
    CliFlavour,
    FileChange,
    RemovalResult,
    Repository,
    RestoredCopy,
    Session,
    VerifyResult,
    as_utc,
    iso_utc,
    to_epoch,
)
from services.backups.parsers import Section
from services.backups.reader import read_repository
from services.backups.scripts import (
    RESTORE_PREFIX,
    Raw,
    new_marker,
    rdiff_script,
    script_head,
    sh_command,
    sh_path,
)
from services.cancel import NEVER_CANCELLED, CancelToken
from services.inventory import BackupSpec
from services.runner import CommandRunner, LocalRunner

RepoRef = Repository | BackupSpec | str
Progress = Callable[[str], None]


def _path_of(repo: RepoRef) -> str:
    return repo if isinstance(repo, str) else repo.path


def _spec_of(repo: RepoRef) -> BackupSpec:
    if isinstance(repo, Repository):
        return BackupSpec(name=repo.name, path=repo.path, via=repo.via, max_age_hours=repo.max_age_hours)
    if isinstance(repo, BackupSpec):
        return repo
    return BackupSpec(name=posixpath.basename(repo.rstrip("/")) or repo, path=repo)


def _at(moment: datetime | None) -> str:
    return "now" if moment is None else str(to_epoch(moment))


def inside_repository(path: str) -> str:
    """A path inside the repository, relative to its root ("" for the root itself).

    Leading slashes are dropped (the operator thinks of "/etc/passwd"); ".." and rdiff-backup's own
    data folder are refused.
    """
    cleaned = posixpath.normpath("/" + path.strip()).lstrip("/")
    if cleaned in ("", "."):
        return ""
    if any(part == ".." for part in path.split("/")):
        raise UnsafePath(f"{path!r} leaves the repository.")
    if cleaned.split("/")[0] == "rdiff-backup-data":
        raise UnsafePath("rdiff-backup-data is rdiff-backup's own folder, not part of the backup.")
    return cleaned


@dataclass(frozen=True)
class _Run:
    where: str
    sections: dict[str, Section]
    name: str

    def section(self, name: str) -> Section:
        return self.sections.get(name, Section(name, "", ""))

    @property
    def rc(self) -> int | None:
        text = self.section(f"{self.name}-rc").arg.split(" ")[0]
        return int(text) if text.isdigit() else None

    @property
    def ok(self) -> bool:
        """rdiff-backup 2.1+ exits with bit flags: 1 error, 2 warning, 4 file error, 8 file warning;
        only the error bit means the action failed (2.0 exits 0 or 1)."""
        return self.rc is not None and not self.rc & 1

    @property
    def cli(self) -> CliFlavour | None:
        parts = self.section(f"{self.name}-rc").arg.split(" ")
        flavour = parts[1] if len(parts) > 1 else ""
        return "legacy" if flavour == "legacy" else "api201" if flavour == "api201" else None

    @property
    def out(self) -> str:
        return self.section(f"{self.name}-out").body

    @property
    def err(self) -> str:
        return self.section(f"{self.name}-err").body

    def failure(self, what: str) -> RepositoryError:
        messages = parsers.parse_log_messages(self.err or self.out, ("ERROR", "Fatal Error"))
        detail = " ".join(messages[:3]) or parsers.first_line(self.err or self.out) or f"exit status {self.rc}"
        return RepositoryError(f"{what} failed on {self.where}: {detail}", exit_status=self.rc, stderr=self.err)


def _run(
    runner: CommandRunner,
    name: str,
    new: str,
    old: str | None,
    *,
    before: str = "",
    after: str = "",
    timeout: float,
    cancel: CancelToken,
) -> _Run:
    marker = new_marker()
    script = rdiff_script(marker, name, new, old, before=before, after=after)
    result = runner.run_script(script, timeout=timeout, cancel=cancel)
    sections: dict[str, Section] = {}
    for section in parsers.split_sections(result.text(), marker):
        sections.setdefault(section.name, section)
    if "missing" in sections:
        raise RdiffBackupMissing(runner.where)
    if f"{name}-rc" not in sections and "mktemp-failed" not in sections:
        detail = parsers.first_line(result.error_text()) or f"exit status {result.exit_status}"
        raise RepositoryError(f"The script failed on {runner.where}: {detail}", exit_status=result.exit_status,
                              stderr=result.error_text())
    return _Run(runner.where, sections, name)


_REPO = Raw('"$R"')
# Debian's rdiff-backup 2.2.2 crashes restoring with API 201 (TypeError in map_rpath_owner: the
# owner maps are never set up), so restores use API 200, which 2.1 and later speak as well; 2.0
# still rejects --api-version and gets its old command line.
_RESTORE_NEW = ("rdiff-backup", "--api-version", "200", "restore")


def _set_repo(repo: RepoRef, subpath: str = "") -> str:
    """Shell lines that set R (the repository, or a path inside it) and D (its rdiff-backup-data)."""
    root = sh_path(_path_of(repo))
    # rdiff-backup 2.2 does not accept a repository path that is itself a symbolic link
    lines = f'R={root}\nR=$(cd -- "$R" 2>/dev/null && pwd -P) || R={root}\nD="$R"/rdiff-backup-data\n'
    if subpath:
        lines += f'R="$R"/{sh_path(subpath)}\n'
    return lines


# --- changes -----------------------------------------------------------------------------------------


def changes_between(
    runner: CommandRunner,
    repo: RepoRef,
    since: datetime,
    until: datetime | None = None,
    *,
    prefix: str | None = None,
    cancel: CancelToken = NEVER_CANCELLED,
    timeout: float = 300.0,
) -> list[FileChange]:
    """What was added, removed or changed between the backup state at ``since`` and at ``until``
    (None: the newest backup), optionally only under ``prefix`` ("etc").

    Up to the newest backup, rdiff-backup's ``list files --changed-since`` answers. Between two older
    points, the sessions' own ``file_statistics`` files are folded together (one round trip, no
    restore); if a session lacks them, the older state is restored to a temporary folder and compared.
    """
    wanted = inside_repository(prefix) if prefix else ""
    since = as_utc(since)
    until = as_utc(until) if until is not None else None
    if until is None:
        changes = _changed_since(runner, repo, since, timeout=timeout, cancel=cancel)
    else:
        if until <= since:
            return []
        repository = repo if isinstance(repo, Repository) and repo.sessions else read_repository(
            runner, _spec_of(repo), server="", with_sizes=False, cancel=cancel, timeout=timeout
        )
        window = [s for s in repository.sessions if since < s.time <= until]
        if not window:
            return []
        stamps = [s.stamp for s in window]
        from_stats = None
        if all(stamps):
            from_stats = _changes_from_file_statistics(
                runner, repo, [s for s in stamps if s], wanted, timeout=timeout, cancel=cancel
            )
        changes = from_stats if from_stats is not None else _changes_by_compare(
            runner, repo, since, until, wanted, timeout=timeout, cancel=cancel
        )
    return [c for c in changes if parsers.under_prefix(c.path, wanted)]


def _changed_since(
    runner: CommandRunner, repo: RepoRef, since: datetime, *, timeout: float, cancel: CancelToken
) -> list[FileChange]:
    at = _at(since)
    run = _run(
        runner,
        "changes",
        sh_command("rdiff-backup", "--api-version", "201", "list", "files", "--changed-since", at, _REPO),
        sh_command("rdiff-backup", "--list-changed-since", at, _REPO),
        before=_set_repo(repo),
        timeout=timeout,
        cancel=cancel,
    )
    if not run.ok:
        raise run.failure(f"Listing changes of {_path_of(repo)}")
    return parsers.parse_changed_files(run.out)


# Prints each wanted session's file_statistics, keeping only lines with Changed=1 under the prefix
# (the file name is first and may hold spaces, so Changed is the 4th field from the end).
_FILE_STATS = r"""
for s in $STAMPS; do
  f=$D/file_statistics.$s.data.gz
  [ -f "$f" ] || f=$D/file_statistics.$s.data
  if [ -f "$f" ]; then
    sep fstats "$s"
    zcat -f -- "$f" | awk -v p="$P" '$(NF-3) == "1" && (p == "" || index($0, p "/") == 1 || index($0, p " ") == 1)'
  else
    sep fstats-missing "$s"
  fi
done
"""


def _changes_from_file_statistics(
    runner: CommandRunner, repo: RepoRef, stamps: list[str], prefix: str, *, timeout: float, cancel: CancelToken
) -> list[FileChange] | None:
    """None if some session has no file_statistics (rdiff-backup ran with --no-file-statistics)."""
    if any(parsers.parse_stamp(stamp) is None for stamp in stamps):
        return None  # stamps come from file names; never put anything else into the script
    marker = new_marker()
    script = (
        script_head(marker)
        + _set_repo(repo)
        + f"STAMPS={shlex.quote(' '.join(stamps))}\nP={shlex.quote(prefix)}\n"
        + _FILE_STATS
    )
    result = runner.run_script(script, timeout=timeout, cancel=cancel)
    sessions: dict[str, list[parsers.StatsChange]] = {}
    for section in parsers.split_sections(result.text(), marker):
        if section.name == "fstats-missing":
            return None
        if section.name == "fstats":
            sessions[section.arg] = parsers.parse_file_statistics_changes(section.body)
    if len(sessions) != len(stamps):
        return None
    return parsers.net_changes([sessions[stamp] for stamp in stamps])


def _changes_by_compare(
    runner: CommandRunner,
    repo: RepoRef,
    since: datetime,
    until: datetime,
    prefix: str,
    *,
    timeout: float,
    cancel: CancelToken,
) -> list[FileChange]:
    """Restore the newer state (under ``prefix``) to a temporary folder and compare it with the
    repository at ``since``: exact, but it copies data, so it is the fallback only."""
    before = _set_repo(repo, prefix) + (
        'C=$(mktemp -d "${TMPDIR:-/tmp}/panel-compare.XXXXXXXX") || { sep mktemp-failed; exit 0; }\n'
        'trap \'rm -rf "$C"; [ -n "$T" ] && rm -rf "$T"\' EXIT\n'
    )
    restore_new = sh_command(*_RESTORE_NEW, "--at", _at(until), _REPO, Raw('"$C"/state'))
    restore_old = sh_command("rdiff-backup", "-r", _at(until), _REPO, Raw('"$C"/state'))
    compare_new = sh_command(
        "rdiff-backup", "--api-version", "201", "--parsable-output", "compare", "--at", _at(since),
        Raw('"$C"/state'), _REPO,
    )
    compare_old = sh_command("rdiff-backup", "--compare-at-time", _at(since), Raw('"$C"/state'), _REPO)
    after = f'if [ "$rc" -eq 0 ]; then run_rdiff compare {shlex.quote(compare_new)} {shlex.quote(compare_old)}; fi\n'
    run = _run(runner, "restore", restore_new, restore_old, before=before, after=after, timeout=timeout,
               cancel=cancel)
    if "mktemp-failed" in run.sections:
        raise RepositoryError(f"Could not create a temporary folder on {run.where}.")
    if not run.ok:
        raise run.failure(f"Restoring {_path_of(repo)} at {until.isoformat()} to compare it")
    compare = _Run(run.where, run.sections, "compare")
    changes = parsers.parse_compare_output(compare.out)
    if not compare.ok and not changes:  # 2.0 exits 1 when it found differences
        raise compare.failure(f"Comparing {_path_of(repo)}")
    return [_under(prefix, c) for c in changes if c.path != "."]


def _under(prefix: str, change: FileChange) -> FileChange:
    return FileChange(posixpath.join(prefix, change.path) if prefix else change.path, change.kind)


def changed_in_last_backup(
    runner: CommandRunner,
    repo: Repository,
    subpath: str = "etc",
    *,
    cancel: CancelToken = NEVER_CANCELLED,
    timeout: float = 300.0,
) -> list[FileChange]:
    """What the newest backup recorded as changed under ``subpath``, against the backup before it."""
    listed = sorted(s.time for s in repo.sessions)
    if len(listed) < 2:
        return []
    return changes_between(runner, repo, listed[-2], None, prefix=subpath, cancel=cancel, timeout=timeout)


def changed_since_last_backup(
    runner: CommandRunner,
    repo: RepoRef,
    subpath: str = "etc",
    *,
    source_root: str = "/",
    cancel: CancelToken = NEVER_CANCELLED,
    timeout: float = 300.0,
) -> list[FileChange]:
    """What changed in the live ``source_root/subpath`` since the newest backup (``compare``).

    Runs where the live files are: only for a repository on the server itself (via None).
    """
    if isinstance(repo, Repository | BackupSpec) and repo.via is not None:
        raise RepositoryError(
            f"The live files of {getattr(repo, 'server', '') or 'this server'} are not where this repository is "
            f"({repo.via}); compare on the server's own repository."
        )
    sub = inside_repository(subpath)
    live = posixpath.join(source_root, sub) if sub else source_root
    before = _set_repo(repo, sub) + f"S={sh_path(live)}\n"
    run = _run(
        runner,
        "compare",
        sh_command("rdiff-backup", "--api-version", "201", "--parsable-output", "compare", Raw('"$S"'), _REPO),
        sh_command("rdiff-backup", "--compare", Raw('"$S"'), _REPO),
        before=before,
        timeout=timeout,
        cancel=cancel,
    )
    changes = parsers.parse_compare_output(run.out)
    if not run.ok and not changes:  # 2.0 exits 1 when it found differences
        raise run.failure(f"Comparing {live} with {_path_of(repo)}")
    return [_under(sub, c) for c in changes if c.path != "."]


# --- verify ------------------------------------------------------------------------------------------


def verify(
    runner: CommandRunner,
    repo: RepoRef,
    at: datetime | None = None,
    *,
    cancel: CancelToken = NEVER_CANCELLED,
    progress: Progress | None = None,
    timeout: float = 3600.0,
) -> VerifyResult:
    """Check every file of the backup at ``at`` (None: the newest) against its recorded SHA-1.

    ``progress`` hears when it starts and ends: a runner returns a command's output only once it has
    finished, so there is nothing finer to report (cancelling kills the remote rdiff-backup).
    """
    path = _path_of(repo)
    if progress:
        progress(f"Verifying {path} on {runner.where}…")
    run = _run(
        runner,
        "verify",
        sh_command("rdiff-backup", "--api-version", "201", "verify", "--at", _at(at), _REPO),
        sh_command("rdiff-backup", "--verify-at-time", _at(at), _REPO),
        before=_set_repo(repo),
        timeout=timeout,
        cancel=cancel,
    )
    text = run.err + "\n" + run.out
    if "digest" in text or "Verification found" in text or "failed on one or more files" in text:
        problems = parsers.parse_log_messages(text, ("ERROR",)) or [parsers.first_line(text)]
        result = VerifyResult(at=at, ok=False, problems=tuple(problems), cli=run.cli)
    elif run.ok:
        result = VerifyResult(at=at, ok=True, cli=run.cli)
    else:
        raise run.failure(f"Verifying {path}")
    if progress:
        progress("All files verified." if result.ok else f"{len(result.problems)} problem(s) found.")
    return result


# --- restore -----------------------------------------------------------------------------------------


def restore_to_temp(
    runner: CommandRunner,
    repo: RepoRef,
    path: str,
    at: datetime | None = None,
    *,
    temp_parent: str | None = None,
    cancel: CancelToken = NEVER_CANCELLED,
    timeout: float = 3600.0,
) -> RestoredCopy:
    """Restore ``path`` (inside the repository) as of ``at`` into a new ``mktemp -d`` folder where the
    repository is; never into a live path. Hand the result to :func:`cleanup_temp` when done.

    For a repository on this laptop (via="local", a LocalRunner), the folder is a local one and
    ``RestoredCopy.local`` is True: nothing needs copying.
    """
    inner = inside_repository(path)
    name = posixpath.basename(inner) if inner else "repository"
    parent = sh_path(temp_parent) if temp_parent else '"${TMPDIR:-/tmp}"'
    before = _set_repo(repo, inner) + (
        f"O=$(mktemp -d {parent}/{RESTORE_PREFIX}XXXXXXXX) || {{ sep mktemp-failed; exit 0; }}\n"
        'sep temp "$O"\n'
    )
    target = Raw('"$O"/' + sh_path(name))
    run = _run(
        runner,
        "restore",
        sh_command(*_RESTORE_NEW, "--at", _at(at), _REPO, target),
        sh_command("rdiff-backup", "-r", _at(at), _REPO, target),
        before=before,
        # nothing half-restored stays behind; and rdiff-backup exits 0 having restored nothing when
        # the path did not exist at that time, so look
        after=(
            'if [ "$rc" -ne 0 ] && [ $((rc % 2)) -eq 1 ]; then rm -rf -- "$O"; '
            f'elif [ ! -e "$O"/{sh_path(name)} ] && [ ! -L "$O"/{sh_path(name)} ]; then sep nothing; rm -rf -- "$O"; fi'
        ),
        timeout=timeout,
        cancel=cancel,
    )
    if "mktemp-failed" in run.sections:
        raise RepositoryError(f"Could not create a temporary folder on {run.where}.")
    if not run.ok:
        raise run.failure(f"Restoring {inner or '/'} from {_path_of(repo)}")
    if "nothing" in run.sections:
        when = "the newest backup" if at is None else iso_utc(at)
        raise RepositoryError(f"Restoring {inner or '/'} from {_path_of(repo)} failed on {run.where}: "
                              f"it is not in the backup of {when}.")
    temp_dir = run.section("temp").arg
    return RestoredCopy(
        where=run.where,
        temp_dir=temp_dir,
        target=posixpath.join(temp_dir, name),
        source_path=inner,
        at=at,
        local=isinstance(runner, LocalRunner),
    )


def cleanup_temp(
    runner: CommandRunner,
    restored: RestoredCopy | str,
    *,
    cancel: CancelToken = NEVER_CANCELLED,
    timeout: float = 300.0,
) -> None:
    """Delete a folder made by :func:`restore_to_temp`, and nothing else."""
    temp_dir = restored.temp_dir if isinstance(restored, RestoredCopy) else restored
    normal = posixpath.normpath(temp_dir)
    if (
        not temp_dir.startswith("/")
        or normal != temp_dir.rstrip("/")
        or not posixpath.basename(normal).startswith(RESTORE_PREFIX)
    ):
        raise UnsafePath(f"{temp_dir!r} is not a folder that restore_to_temp made; it is left alone.")
    result = runner.run(["rm", "-rf", "--", normal], timeout=timeout, cancel=cancel)
    if not result.ok:
        raise RepositoryError(
            f"Could not delete {normal} on {runner.where}: {parsers.first_line(result.error_text())}",
            exit_status=result.exit_status,
            stderr=result.error_text(),
        )


# --- remove ------------------------------------------------------------------------------------------


def plan_remove_older_than(
    runner: CommandRunner,
    repo: RepoRef,
    older_than: datetime,
    *,
    cancel: CancelToken = NEVER_CANCELLED,
    timeout: float = 120.0,
) -> list[Session]:
    """The sessions that ``remove_older_than`` would delete (read fresh; the mirror always stays)."""
    repository = read_repository(
        runner, _spec_of(repo), server=repo.server if isinstance(repo, Repository) else "", cancel=cancel,
        timeout=timeout,
    )
    if not repository.sessions:
        raise RepositoryError(repository.problem or f"{repository.path} has no sessions.")
    return _planned(repository, older_than)


def _planned(repository: Repository, older_than: datetime) -> list[Session]:
    limit = to_epoch(older_than)
    return [s for s in repository.sessions if not s.is_mirror and to_epoch(s.time) < limit]


def remove_older_than(
    runner: CommandRunner,
    repo: RepoRef,
    older_than: datetime,
    *,
    plan: list[Session] | None = None,
    cancel: CancelToken = NEVER_CANCELLED,
    timeout: float = 1800.0,
) -> RemovalResult:
    """Delete the increments older than ``older_than``. ``plan`` (from :func:`plan_remove_older_than`,
    as shown to the operator) saves a round trip; rdiff-backup wants ``--force`` when more than one
    increment goes, and gets it only then."""
    if plan is None:
        plan = plan_remove_older_than(runner, repo, older_than, cancel=cancel, timeout=min(timeout, 120.0))
    if not plan:
        return RemovalResult(removed=(), forced=False)
    increments = sum(1 for s in plan if s.listed is not False)
    force = ["--force"] if increments > 1 else []
    at = str(to_epoch(older_than))
    run = _run(
        runner,
        "remove",
        sh_command("rdiff-backup", "--api-version", "201", *force, "remove", "increments", "--older-than", at, _REPO),
        sh_command("rdiff-backup", *force, "--remove-older-than", at, _REPO),
        before=_set_repo(repo),
        timeout=timeout,
        cancel=cancel,
    )
    if not run.ok:
        raise run.failure(f"Removing increments older than {older_than.astimezone(UTC).isoformat()}")
    return RemovalResult(removed=tuple(plan), forced=bool(force), cli=run.cli, output=run.err)


def regress(
    runner: CommandRunner, repo: RepoRef, *, cancel: CancelToken = NEVER_CANCELLED, timeout: float = 3600.0
) -> CliFlavour | None:
    """Undo a backup that broke off (``Repository.needs_regress``), as rdiff-backup's own check does."""
    run = _run(
        runner,
        "regress",
        sh_command("rdiff-backup", "--api-version", "201", "regress", _REPO),
        sh_command("rdiff-backup", "--check-destination-dir", _REPO),
        before=_set_repo(repo),
        timeout=timeout,
        cancel=cancel,
    )
    if not run.ok:
        raise run.failure(f"Regressing {_path_of(repo)}")
    return run.cli
