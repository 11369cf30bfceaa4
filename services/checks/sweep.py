"""One sweep: every check of every server, in parallel, each server in ONE remote command.

The per-server script also reads the rdiff-backup repositories that live on that host, so a
full sweep costs one round trip per server (plus the SSH handshake when the pooled connection
is not open yet). Certificates and the vendors' APIs are checked at the same time from here.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from services.cancel import NEVER_CANCELLED, CancelToken
from services.checks import backups as backup_checks
from services.checks import ids
from services.checks.files import WatchScan
from services.checks.host import BootRecord, HostInputs, HostReport, evaluate_host, gather_host
from services.checks.model import (
    PAGE_FLEET,
    PAGE_SETTINGS,
    PAGE_UNLOCK,
    Action,
    CheckResult,
    Severity,
    worst,
)
from services.checks.tls import check_tls
from services.checks.vendors import VendorKeys, vendor_jobs
from services.errors import (
    AuthError,
    Cancelled,
    ConnectError,
    HostKeyMismatch,
    OperationTimeout,
    PanelError,
    UnknownHostKey,
)
from services.inventory import Inventory, ServerSpec
from services.probe import ServerState, ServerStatus
from services.runner import CommandRunner

Probe = Callable[[CancelToken], ServerStatus]


@dataclass(frozen=True)
class ServerTarget:
    """A server to check: its spec, a runner on it, what the store knows, and how to probe it when
    the checks cannot connect (to tell a locked server from a down one)."""

    spec: ServerSpec
    runner: CommandRunner
    inputs: HostInputs = field(default_factory=HostInputs)
    probe: Probe | None = None

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class SweepRequest:
    inventory: Inventory
    servers: tuple[ServerTarget, ...]
    keys: VendorKeys = field(default_factory=VendorKeys)
    local_runner: CommandRunner | None = None  # for repositories with via = "local"
    runner_for: Callable[[str], CommandRunner] | None = None  # for via hosts that are not swept this time
    tls: bool = True
    vendors: bool = True
    tls_cafile: str | None = None
    tls_timeout: float = 10.0
    max_workers: int = 32


@dataclass
class ServerOutcome:
    server: str
    status: ServerStatus | None = None
    scan: WatchScan | None = None
    boot: BootRecord | None = None
    report: HostReport | None = None
    elapsed_ms: float = 0.0


@dataclass
class SweepResult:
    started_at: dt.datetime
    finished_at: dt.datetime
    results: list[CheckResult]
    servers: dict[str, ServerOutcome] = field(default_factory=dict)

    @property
    def alerts(self) -> list[CheckResult]:
        return [r for r in self.results if r.is_alert]

    @property
    def worst(self) -> Severity:
        return worst(r.severity for r in self.results)

    @property
    def elapsed(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


def state_result(status: ServerStatus) -> CheckResult:
    """The server-state check from a probe: down, locked (with the way to Unlock), or a host key problem."""
    server = status.server
    state = status.state
    if state is ServerState.UP:
        return CheckResult(server, ids.SERVER, Severity.OK, f"{server} is up.")
    if state is ServerState.LOCKED:
        return CheckResult(server, ids.SERVER, Severity.CRITICAL,
                           f"{server} is locked: it waits in its initramfs for the disk passphrase.", "",
                           (status.detail,) if status.detail else (), Action("Unlock", PAGE_UNLOCK, server),
                           {"state": str(state)})
    if state is ServerState.DOWN:
        return CheckResult(server, ids.SERVER, Severity.CRITICAL, f"{server} is down: {status.detail}", "",
                           (status.detail,), Action("Show the server", PAGE_FLEET, server), {"state": str(state)})
    if state is ServerState.UNKNOWN_HOST_KEY:
        return CheckResult(server, ids.SERVER, Severity.WARNING,
                           f"{server} offers a host key that is not trusted yet ({status.fingerprint}); nothing is "
                           "checked until you compare and trust it.", "", (status.detail,),
                           Action("Check and trust the key", PAGE_FLEET, server), {"state": str(state)})
    return CheckResult(server, ids.SERVER, Severity.CRITICAL,
                       f"{server} offered a DIFFERENT host key than the pinned one ({status.fingerprint}). Nothing "
                       "was sent to it.", "", (status.detail,), Action("Review the host key", PAGE_SETTINGS, server),
                       {"state": str(state)})


def _status_from_key_error(server: str, error: UnknownHostKey | HostKeyMismatch) -> ServerStatus:
    if isinstance(error, UnknownHostKey):
        return ServerStatus(server, ServerState.UNKNOWN_HOST_KEY, error.message, "system", error.fingerprint,
                            error.public_key)
    return ServerStatus(server, ServerState.HOST_KEY_MISMATCH, error.message, "system", error.fingerprint, None,
                        tuple(error.expected_fingerprints))


@dataclass(frozen=True)
class _Embedded:
    marker: str
    targets: tuple[Any, ...]


def check_server(
    target: ServerTarget, *, embedded: _Embedded | None = None, extra: tuple[tuple[str, str], ...] = (),
    cancel: CancelToken = NEVER_CANCELLED,
) -> tuple[ServerOutcome, list[CheckResult]]:
    """Every host check of one server (one remote command), and the backups read on it."""
    server = target.name
    started = time.monotonic()
    outcome = ServerOutcome(server)
    results: list[CheckResult] = []
    try:
        report = gather_host(target.runner, target.spec, baseline=target.inputs.baseline, extra=extra,
                             cancel=cancel)
    except Cancelled:
        raise
    except (UnknownHostKey, HostKeyMismatch) as error:
        outcome.status = _status_from_key_error(server, error)
        results.append(state_result(outcome.status))
        failure = str(error)
    except AuthError as error:
        outcome.status = ServerStatus(server, ServerState.UP, f"Up, but the login failed: {error}")
        results.append(CheckResult(server, ids.SERVER, Severity.UNKNOWN, f"{server} is up, but the panel can't log "
                                   f"in to check it: {error}", "", (), Action("Show the server", PAGE_FLEET, server)))
        failure = str(error)
    except (ConnectError, OperationTimeout) as error:
        failure = str(error)
        status = None
        if target.probe is not None:
            try:
                status = target.probe(cancel)
            except Cancelled:
                raise
            except PanelError as probe_error:
                status = ServerStatus(server, ServerState.DOWN, str(probe_error))
        if status is None:
            status = ServerStatus(server, ServerState.DOWN, failure)
        outcome.status = status
        if status.state is ServerState.UP:
            results.append(CheckResult(server, ids.SERVER, Severity.OK, f"{server} is up."))
            results.append(CheckResult(server, ids.CHECKS, Severity.UNKNOWN, f"The checks of {server} did not "
                                       f"finish: {error}", "", (), Action("Show the server", PAGE_FLEET, server)))
        else:
            results.append(state_result(status))
    except PanelError as error:
        failure = str(error)
        results.append(CheckResult(server, ids.CHECKS, Severity.UNKNOWN, f"The checks of {server} could not run: "
                                   f"{error}", "", (), Action("Show the server", PAGE_FLEET, server)))
    else:
        failure = ""
        outcome.report = report
        if not report.sections:
            results.append(CheckResult(server, ids.CHECKS, Severity.UNKNOWN, f"The checks script printed nothing "
                                       f"readable on {server} (is /bin/sh a POSIX shell?).", "", (),
                                       Action("Show the server", PAGE_FLEET, server)))
        else:
            host_results, outcome.scan, outcome.boot = evaluate_host(target.spec, report, target.inputs)
            results += host_results
        outcome.status = ServerStatus(server, ServerState.UP, "", facts=report.facts() if report.sections else None)
        results.append(CheckResult(server, ids.SERVER, Severity.OK, f"{server} is up."))
    if embedded is not None:
        if failure or outcome.report is None:
            results += backup_checks.unreadable_results(embedded.targets, f"{server} could not be reached: "
                                                        f"{failure or 'no answer'}")
        elif backup_checks.EXTRA_NAME not in outcome.report.extra:
            results += backup_checks.unreadable_results(embedded.targets, f"the reading script did not run on "
                                                        f"{server}.")
        else:
            repositories = backup_checks.parse_embedded(outcome.report.extra[backup_checks.EXTRA_NAME],
                                                        embedded.marker, embedded.targets, server)
            results += backup_checks.judge_all(repositories)
    outcome.elapsed_ms = (time.monotonic() - started) * 1000
    if outcome.status is not None:
        outcome.status = ServerStatus(**{**outcome.status.__dict__, "elapsed_ms": outcome.elapsed_ms})
    return outcome, results


def run_sweep(request: SweepRequest, *, cancel: CancelToken = NEVER_CANCELLED) -> SweepResult:
    """Run every check once. Never raises for a server, a vendor or a certificate: each problem is an
    UNKNOWN (or worse) result. Only Cancelled propagates."""
    started = dt.datetime.now(dt.UTC)
    owners = [t.spec for t in request.servers]
    results: list[CheckResult] = []
    outcomes: dict[str, ServerOutcome] = {}
    with_backups = any(spec.backups for spec in owners)
    have_reader = backup_checks.available() if with_backups else False
    if with_backups and not have_reader:
        results += backup_checks.missing_module_results(owners)
    # where each repository is read
    embedded: dict[str, _Embedded] = {}
    extras: dict[str, tuple[tuple[str, str], ...]] = {}
    other_hosts: dict[str, list[Any]] = {}
    if have_reader:
        hosts = {spec.via or owner.name for owner in owners for spec in owner.backups}
        swept = {t.name for t in request.servers}
        for host in hosts:
            targets = backup_checks.targets_on(owners, host)
            if host in swept:
                marker, script = backup_checks.read_script_for(targets)
                embedded[host] = _Embedded(marker, tuple(targets))
                extras[host] = ((backup_checks.EXTRA_NAME, script),)
            else:
                other_hosts[host] = targets

    workers = max(1, min(request.max_workers, len(request.servers) + len(other_hosts) + 8))
    futures: list[Future[Any]] = []
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="checks") as pool:
        server_futures = {
            target.name: pool.submit(check_server, target, embedded=embedded.get(target.name),
                                     extra=extras.get(target.name, ()), cancel=cancel)
            for target in request.servers
        }
        for host, targets in other_hosts.items():
            futures.append(pool.submit(_read_elsewhere, request, host, targets, cancel))
        if request.tls:
            for spec in owners:
                for domain in spec.checks.tls_domains:
                    futures.append(pool.submit(_tls, spec, domain, request, cancel))
        if request.vendors:
            for job in vendor_jobs(request.inventory, request.keys, cancel=cancel):
                futures.append(pool.submit(job))
        for name, future in server_futures.items():
            try:
                outcome, server_results = future.result()
            except Cancelled:
                raise
            except Exception as error:  # a bug must not cost the other servers their results
                outcome, server_results = ServerOutcome(name), [_crashed(name, error)]
            outcomes[name] = outcome
            results += server_results
        for pending in futures:
            try:
                results += pending.result()
            except Cancelled:
                raise
            except Exception as error:
                results.append(_crashed("", error))
    cancel.raise_if_cancelled("The checks")
    return SweepResult(started, dt.datetime.now(dt.UTC), results, outcomes)


def _crashed(server: str, error: BaseException) -> CheckResult:
    return CheckResult(server, ids.CHECKS, Severity.UNKNOWN, f"A check failed unexpectedly: "
                       f"{error.__class__.__name__}: {error}")


def _tls(spec: ServerSpec, domain: str, request: SweepRequest, cancel: CancelToken) -> list[CheckResult]:
    return [check_tls(spec.name, domain, warning_days=spec.checks.tls_warning_days,
                      critical_days=spec.checks.tls_critical_days, timeout=request.tls_timeout,
                      cafile=request.tls_cafile, cancel=cancel)]


def _read_elsewhere(request: SweepRequest, host: str, targets: list[Any], cancel: CancelToken) -> list[CheckResult]:
    if host == "local":
        runner = request.local_runner
        if runner is None:
            from services.runner import LocalRunner

            runner = LocalRunner()
    elif request.runner_for is not None:
        try:
            runner = request.runner_for(host)
        except PanelError as error:
            return backup_checks.unreadable_results(targets, f"{host} could not be reached: {error}")
    else:
        return backup_checks.unreadable_results(targets, f"{host} is not part of this sweep.")
    return backup_checks.judge_all(backup_checks.read_local(targets, runner, cancel=cancel))
