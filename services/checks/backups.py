"""Backups as checks: the newest session older than max_age_hours, errors in the last session, or a
regress needed. The repositories are read with ``services.backups`` (rdiff-backup), whose reading
script runs INSIDE the host script of the host that holds them, so it costs no extra round trip.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from services.cancel import NEVER_CANCELLED, CancelToken
from services.checks import ids
from services.checks.model import PAGE_BACKUPS, Action, CheckResult, Severity, cap_evidence
from services.errors import Cancelled
from services.inventory import ServerSpec
from services.runner import CommandRunner

EXTRA_NAME = "backups"


def available() -> bool:
    try:
        import services.backups.reader  # noqa: F401
    except ImportError:
        return False
    return True


def targets_on(servers: Sequence[ServerSpec], host: str) -> list[Any]:
    """The repositories (of any server) that are read on ``host`` (a server's name, or "local")."""
    from services.backups.reader import RepoTarget

    return [RepoTarget(server.name, spec) for server in servers for spec in server.backups
            if (spec.via or server.name) == host]


def read_script_for(targets: Sequence[Any]) -> tuple[str, str]:
    """(marker, script) reading ``targets`` in one go, to embed in the host script."""
    from services.backups.scripts import new_marker, read_script

    marker = new_marker()
    return marker, read_script(marker, [t.spec.path for t in targets], with_sizes=False)


def parse_embedded(text: str, marker: str, targets: Sequence[Any], where: str,
                   now: dt.datetime | None = None) -> list[Any]:
    from services.backups.reader import parse_read_output

    return list(parse_read_output(text, marker, targets, where=where, now=now))


def read_local(targets: Sequence[Any], runner: CommandRunner, *, cancel: CancelToken = NEVER_CANCELLED,
               now: dt.datetime | None = None) -> list[Any]:
    from services.backups.reader import read_repositories

    return list(read_repositories(runner, targets, with_sizes=False, now=now, cancel=cancel, timeout=120.0))


def unreadable_results(targets: Sequence[Any], why: str) -> list[CheckResult]:
    return [CheckResult(t.server, ids.BACKUP, Severity.UNKNOWN, f"The backup {t.spec.name!r} of {t.server} can't be "
                        f"checked: {why}", t.spec.name, (), Action("Show backups", PAGE_BACKUPS, t.server))
            for t in targets]


def missing_module_results(servers: Sequence[ServerSpec]) -> list[CheckResult]:
    return [CheckResult(server.name, ids.BACKUP, Severity.UNKNOWN, f"The backup {spec.name!r} of {server.name} can't "
                        "be checked: the rdiff-backup reader (services.backups) is not in this build.", spec.name, (),
                        Action("Show backups", PAGE_BACKUPS, server.name))
            for server in servers for spec in server.backups]


def _age(hours: float) -> str:
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def judge_repository(repository: Any) -> CheckResult:
    """One repository (a services.backups Repository) as a check result, subject = its name."""
    server, name = repository.server, repository.name
    action = Action("Show backups", PAGE_BACKUPS, server)
    where = f"{repository.path} on {repository.where}"
    if not repository.readable:
        why = repository.problem or "it has no backup sessions"
        return CheckResult(server, ids.BACKUP, Severity.UNKNOWN, f"The backup {name!r} of {server} can't be read "
                           f"({where}): {why}", name, cap_evidence(list(repository.notes)), action)
    problems: list[tuple[Severity, str]] = []
    age = repository.age_hours
    limit = repository.max_age_hours
    if repository.needs_regress:
        started = repository.broken_session
        when = f" (the run started {started:%Y-%m-%d %H:%M} UTC)" if started else ""
        problems.append((Severity.CRITICAL, f"the last backup broke off{when}: the repository needs a regress"))
    if age is not None and age > limit:
        severity = Severity.CRITICAL if age > 2 * limit else Severity.WARNING
        problems.append((severity, f"the newest session is {_age(age)} old (limit {limit:g} h)"))
    errors = repository.last_errors
    if errors:
        problems.append((Severity.WARNING, f"the last session had {errors} error(s)"))
    newest = repository.newest
    evidence = [f"newest session {newest:%Y-%m-%d %H:%M} UTC ({_age(age or 0)} ago)" if newest else "no session",
                f"{len(repository.sessions)} session(s) in {where}"]
    evidence += [f"error log: {line}" for line in repository.error_lines[:20]]
    if repository.problem and repository.readable:
        evidence.append(repository.problem)
    data = {"age_hours": round(age, 2) if age is not None else None, "errors": errors,
            "needs_regress": repository.needs_regress}
    if not problems:
        return CheckResult(server, ids.BACKUP, Severity.OK, f"The backup {name!r} of {server} is fresh "
                           f"({_age(age or 0)} old).", name, cap_evidence(evidence), None, data)
    severity = max((p[0] for p in problems), key=lambda s: s.rank)
    text = "; ".join(p[1] for p in problems)
    return CheckResult(server, ids.BACKUP, severity, f"The backup {name!r} of {server}: {text}.", name,
                       cap_evidence(evidence), action, data)


def judge_all(repositories: Sequence[Any]) -> list[CheckResult]:
    results = []
    for repository in repositories:
        try:
            results.append(judge_repository(repository))
        except Cancelled:
            raise
        except Exception as error:  # a surprise in one repository must not hide the others
            results.append(CheckResult(str(getattr(repository, "server", "")), ids.BACKUP, Severity.UNKNOWN,
                                       f"The backup check failed: {error.__class__.__name__}: {error}",
                                       str(getattr(repository, "name", ""))))
    return results
