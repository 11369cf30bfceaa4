"""Reading repositories: one script, one round trip per host, whatever the number of repositories.

The script (:func:`services.backups.scripts.read_script`) prints, per repository, the state of its
path, ``list increments --size`` (or the 2.0 command line's answer), every session_statistics file,
the newest error_log and the current_mirror markers. :func:`parse_read_output` turns that text into
:class:`Repository` objects and never raises: each problem becomes that repository's ``problem``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from services.backups import parsers
from services.backups.models import CliFlavour, Repository, Session, SessionStats, from_epoch, iso_utc
from services.backups.parsers import ListedPoint, Section
from services.backups.scripts import new_marker, read_script
from services.cancel import NEVER_CANCELLED, CancelToken
from services.errors import Cancelled, PanelError
from services.inventory import BackupSpec, ServerSpec
from services.runner import CommandRunner

LOCAL = "local"  # BackupSpec.via for a repository on this laptop

RunnerFor = Callable[[str], CommandRunner]


@dataclass(frozen=True)
class RepoTarget:
    """A repository to read: whose backup it is, and its spec from the config."""

    server: str
    spec: BackupSpec

    @property
    def host(self) -> str:
        """The host to run on: the server itself, another server (``via``), or ``"local"``."""
        return self.spec.via or self.server


def targets_of(servers: Sequence[ServerSpec]) -> list[RepoTarget]:
    return [RepoTarget(server.name, spec) for server in servers for spec in server.backups]


# --- reading ---------------------------------------------------------------------------------------


def read_repository(
    runner: CommandRunner,
    spec: BackupSpec,
    *,
    server: str,
    with_sizes: bool = True,
    now: datetime | None = None,
    cancel: CancelToken = NEVER_CANCELLED,
    timeout: float = 120.0,
) -> Repository:
    """Read one repository where ``runner`` runs. Problems end up in ``Repository.problem``."""
    return read_repositories(
        runner, [RepoTarget(server, spec)], with_sizes=with_sizes, now=now, cancel=cancel, timeout=timeout
    )[0]


def read_repositories(
    runner: CommandRunner,
    targets: Sequence[RepoTarget],
    *,
    with_sizes: bool = True,
    now: datetime | None = None,
    cancel: CancelToken = NEVER_CANCELLED,
    timeout: float = 120.0,
) -> list[Repository]:
    """Read several repositories on the same host in ONE round trip. Only Cancelled is raised.

    ``with_sizes=False`` skips ``--size``, which walks the whole mirror: on a large repository it is
    what takes time; sessions, statistics and errors come without it.
    """
    if not targets:
        return []
    marker = new_marker()
    script = read_script(marker, [target.spec.path for target in targets], with_sizes=with_sizes)
    try:
        result = runner.run_script(script, timeout=timeout, cancel=cancel)
    except Cancelled:
        raise
    except PanelError as exc:  # ConnectError, OperationTimeout, AuthError, HostKeyError ...
        problem = f"Could not read it on {runner.where}: {exc}"
        return [unreadable(target, runner.where, problem, now) for target in targets]
    text = result.text()
    if not parsers.split_sections(text, marker):  # the shell itself failed (no sh, a broken login)
        detail = parsers.first_line(result.error_text()) or f"exit status {result.exit_status}"
        problem = f"The reading script failed on {runner.where}: {detail}"
        return [unreadable(target, runner.where, problem, now) for target in targets]
    return parse_read_output(text, marker, targets, where=runner.where, now=now)


def read_backups(
    targets: Sequence[RepoTarget],
    runner_for: RunnerFor,
    *,
    with_sizes: bool = True,
    now: datetime | None = None,
    cancel: CancelToken = NEVER_CANCELLED,
    timeout: float = 120.0,
    parallel: int = 4,
) -> list[Repository]:
    """Read every target: one round trip per host, hosts in parallel. Results keep ``targets``' order.

    ``runner_for(host)`` gives the runner of a server name or of ``"local"`` (this laptop); if it
    raises a PanelError (host down, unknown host key ...), that host's repositories carry the message.
    """
    by_host: dict[str, list[int]] = {}
    for index, target in enumerate(targets):
        by_host.setdefault(target.host, []).append(index)
    results: list[Repository | None] = [None] * len(targets)

    def read_host(host: str, indexes: list[int]) -> None:
        host_targets = [targets[i] for i in indexes]
        try:
            runner = runner_for(host)
        except Cancelled:
            raise
        except PanelError as exc:
            where = "this laptop" if host == LOCAL else host
            repositories = [unreadable(t, where, f"Could not reach {where}: {exc}", now) for t in host_targets]
        else:
            repositories = read_repositories(
                runner, host_targets, with_sizes=with_sizes, now=now, cancel=cancel, timeout=timeout
            )
        for index, repository in zip(indexes, repositories, strict=True):
            results[index] = repository

    if len(by_host) <= 1 or parallel <= 1:
        for host, indexes in by_host.items():
            read_host(host, indexes)
    else:
        with ThreadPoolExecutor(max_workers=min(parallel, len(by_host)), thread_name_prefix="backups") as pool:
            for future in [pool.submit(read_host, host, indexes) for host, indexes in by_host.items()]:
                future.result()
    return [repository for repository in results if repository is not None]


def read_server_backups(
    server: ServerSpec,
    runner_for: RunnerFor,
    *,
    with_sizes: bool = True,
    now: datetime | None = None,
    cancel: CancelToken = NEVER_CANCELLED,
    timeout: float = 120.0,
) -> list[Repository]:
    return read_backups(
        targets_of([server]), runner_for, with_sizes=with_sizes, now=now, cancel=cancel, timeout=timeout
    )


def unreadable(target: RepoTarget, where: str, problem: str, now: datetime | None = None) -> Repository:
    return Repository(
        server=target.server,
        name=target.spec.name,
        where=where,
        path=target.spec.path,
        via=target.spec.via,
        max_age_hours=target.spec.max_age_hours,
        read_at=now or datetime.now(UTC),
        problem=problem,
    )


# --- parsing the script's output (pure) --------------------------------------------------------------


def parse_read_output(
    text: str, marker: str, targets: Sequence[RepoTarget], *, where: str, now: datetime | None = None
) -> list[Repository]:
    """The script's output, cut per repository. A repository missing from the output is unreadable."""
    read_at = now or datetime.now(UTC)
    per_repo: dict[int, list[Section]] = {}
    current: list[Section] | None = None
    for section in parsers.split_sections(text, marker):
        if section.name == "repo":
            index = int(section.arg) if section.arg.isdigit() else -1
            current = per_repo.setdefault(index, []) if 0 <= index < len(targets) else None
        elif current is not None:
            current.append(section)
    return [
        build_repository(targets[i], per_repo[i], where=where, read_at=read_at)
        if i in per_repo
        else unreadable(targets[i], where, f"The reading script said nothing about it on {where}.", read_at)
        for i in range(len(targets))
    ]


def build_repository(target: RepoTarget, sections: list[Section], *, where: str, read_at: datetime) -> Repository:
    """One repository from its sections. Never raises."""
    path = target.spec.path
    by_name: dict[str, Section] = {}
    stats_sections: list[Section] = []
    for section in sections:
        if section.name == "stats":
            stats_sections.append(section)
        else:
            by_name.setdefault(section.name, section)

    def base(**fields: object) -> Repository:
        return Repository(
            server=target.server,
            name=target.spec.name,
            where=where,
            path=path,
            via=target.spec.via,
            max_age_hours=target.spec.max_age_hours,
            read_at=read_at,
            **fields,  # type: ignore[arg-type]
        )

    path_state = by_name["path"].arg if "path" in by_name else ""
    path_problem = _path_problem(path_state, path, where)
    if path_problem is not None:
        return base(problem=path_problem)

    problems: list[str] = []
    notes: list[str] = []
    if "mirrors" not in by_name:  # the last section of each repository: without it, the answer was cut
        problems.append(f"The answer from {where} was cut off before its end; only what arrived is shown.")
    have_rdiff = by_name.get("rdiff-backup", Section("", "", "")).arg == "yes"
    points: list[ListedPoint] = []
    cli: CliFlavour | None = None
    if "rdiff-backup" not in by_name:
        pass  # cut off: said above
    elif have_rdiff:
        points, cli, list_problem, list_notes = _listing(by_name, path, where, cut_off="mirrors" not in by_name)
        notes += list_notes
        if list_problem:
            problems.append(list_problem)
    else:
        problems.append(
            f"rdiff-backup is not installed on {where} (command not found): the sessions below come "
            "from the repository's statistics files only, without sizes."
        )

    stats, stamps, stats_notes = _statistics(stats_sections)
    mirrors = sorted(
        t for t in (parsers.parse_stamp(s) for s in _stamps(by_name.get("mirrors"), "current_mirror")) if t is not None
    )
    needs_regress = len(mirrors) >= 2
    broken = from_epoch(mirrors[-1]) if needs_regress else None
    if needs_regress and broken is not None:
        # the run that broke off may have left statistics; it is not a backup that can be restored
        stats = {t: s for t, s in stats.items() if t < mirrors[-1]}
        problems.append(
            f"The backup that started {iso_utc(broken)} broke off: the repository needs "
            "`rdiff-backup regress` before the next backup can run."
        )
    if stats_notes:
        problems.append(stats_notes[0])
        notes += stats_notes[1:]

    sessions = _sessions(points, stats, stamps, mirrors, listing_known=have_rdiff and cli is not None)
    if not sessions and not problems:
        problems.append(f"{path} on {where} is an rdiff-backup repository without any backup yet.")

    error_log_time, error_lines, error_total = _error_log(by_name)
    return base(
        sessions=tuple(sessions),
        cli=cli,
        needs_regress=needs_regress,
        broken_session=broken,
        error_log_time=error_log_time,
        error_lines=error_lines,
        error_lines_total=error_total,
        problem=problems[0] if problems else None,
        notes=tuple(problems[1:] + notes),
    )


def _path_problem(state: str, path: str, where: str) -> str | None:
    if state == "ok":
        return None
    return {
        "missing": f"The path {path} does not exist on {where}.",
        "not-a-folder": f"{path} on {where} is a file, not a repository folder.",
        "not-a-repository": (
            f"{path} on {where} is a folder but not an rdiff-backup repository (it has no rdiff-backup-data folder)."
        ),
        "denied": (
            f"Permission denied: the account the panel uses on {where} cannot read {path} "
            "(rdiff-backup keeps rdiff-backup-data readable by its owner only; read it as that user or root)."
        ),
        "denied-above": (
            f"Permission denied: the account the panel uses on {where} cannot enter a folder above {path}, "
            "so it cannot even see whether the repository is there."
        ),
    }.get(state, f"The reading script gave no usable answer about {path} on {where}.")


def _listing(
    by_name: dict[str, Section], path: str, where: str, *, cut_off: bool
) -> tuple[list[ListedPoint], CliFlavour | None, str | None, list[str]]:
    """The listed restore points, which command line answered, a problem, and notes. ``cut_off``:
    the answer ended early, so the listing's last line may be a piece ("time: 17" of a time)."""
    rc_text, _, flavour = by_name.get("list-rc", Section("", "", "")).arg.partition(" ")
    out = by_name.get("list-out", Section("", "", "")).body
    if cut_off and "list-err" not in by_name:
        out = out.rpartition("\n")[0]
    err = by_name.get("list-err", Section("", "", "")).body
    rc = int(rc_text) if rc_text.isdigit() else None
    if flavour == "legacy":
        if rc != 0:
            detail = _error_summary(err) or f"exit status {rc_text}"
            return [], None, (
                f"rdiff-backup on {where} does not speak API 201 (it is older than 2.1), and its old "
                f"command line failed too: {detail}"
            ), []
        times = parsers.parse_legacy_increments(out)
        table = by_name.get("legacy-sizes-out", Section("", "", "")).body
        sizes = {p.time: p for p in parsers.parse_legacy_sizes(table)}
        points = [sizes.get(t, ListedPoint(time=t)) for t in times]
        note = f"rdiff-backup on {where} is older than 2.1 (no API 201); it was read with its old command line"
        note += ", so sizes are rounded." if sizes else "."
        return points, "legacy", None, [note]
    points = parsers.parse_increments_yaml(out)
    if rc == 0 and points:
        return points, "api201", None, []
    if rc is None and points:  # no temporary folder: stdout and stderr came mixed
        return points, "api201", None, []
    text = err or out
    if "Permission denied" in text or "PermissionError" in text:
        problem = f"Permission denied: rdiff-backup on {where} cannot read {path}."
    else:
        detail = _error_summary(text) or f"exit status {rc_text}"
        problem = f"rdiff-backup could not list {path} on {where}: {detail}"
    return [], None, problem, []


def _error_summary(text: str) -> str:
    messages = parsers.parse_log_messages(text, ("ERROR", "Fatal Error"))
    if messages:
        return " ".join(messages[:2])
    lines = [line for line in text.splitlines() if line.strip()]
    return parsers.first_line(lines[-1]) if lines else ""  # a traceback ends with its reason


def _stamps(section: Section | None, prefix: str) -> list[str]:
    if section is None:
        return []
    stamps = (parsers.stamp_of(line.strip(), prefix) for line in section.body.splitlines())
    return [s for s in stamps if s is not None]


def _statistics(sections: list[Section]) -> tuple[dict[int, SessionStats], dict[int, str], list[str]]:
    stats: dict[int, SessionStats] = {}
    stamps: dict[int, str] = {}
    truncated: list[str] = []
    for section in sections:
        stamp = parsers.stamp_of(section.arg, "session_statistics")
        parsed = parsers.parse_session_statistics(section.body)
        when = parsers.parse_stamp(stamp) if stamp else None
        if when is None and parsed.start_time is not None:
            when = int(parsed.start_time.timestamp())
        if when is None:
            continue
        stats[when] = parsed
        if stamp:
            stamps[when] = stamp
        if not parsed.complete:
            truncated.append(
                f"The statistics file of the session of {iso_utc(from_epoch(when))} ({section.arg}) is "
                "truncated or damaged; that session's figures are incomplete."
            )
    return stats, stamps, truncated


def _sessions(
    points: list[ListedPoint],
    stats: dict[int, SessionStats],
    stamps: dict[int, str],
    mirrors: list[int],
    *,
    listing_known: bool,
) -> list[Session]:
    listed = {p.time: p for p in points}
    if points:
        mirror_time: int | None = points[-1].time
    elif mirrors:
        mirror_time = mirrors[0]  # the complete one; a second, newer marker is the run that broke off
    else:
        mirror_time = max(stats, default=None)
    sessions: list[Session] = []
    for when in sorted(set(listed) | set(stats)):
        point = listed.get(when)
        stat = stats.get(when)
        sessions.append(
            Session(
                time=from_epoch(when),
                is_mirror=when == mirror_time,
                listed=(point is not None) if listing_known else None,
                size=point.size if point else None,
                cumulative_size=point.total_size if point else None,
                increment_size=stat.increment_file_size if stat else None,
                errors=stat.errors if stat else None,
                stats=stat,
                stamp=stamps.get(when),
                sizes_approximate=bool(point and point.approximate),
            )
        )
    return sessions


def _error_log(by_name: dict[str, Section]) -> tuple[datetime | None, tuple[str, ...], int]:
    section = by_name.get("errorlog")
    if section is None:
        return None, (), 0
    stamp = parsers.stamp_of(section.arg, "error_log")
    when = parsers.parse_stamp(stamp) if stamp else None
    lines = tuple(line for line in section.body.splitlines() if line.strip())
    count_text = by_name.get("errorlog-lines", Section("", "", "")).arg
    total = int(count_text) if count_text.isdigit() else len(lines)
    return (from_epoch(when) if when is not None else None), lines, total
