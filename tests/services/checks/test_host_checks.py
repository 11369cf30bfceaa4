"""The host checks against a real sshd: one remote command gathers everything, and what an operator
would see (a rogue listener, a restarted service, a missing tool, a changed threshold) is right."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from panel.lab.sshd import SshdServer
from services.checks import ids
from services.checks.files import accepted
from services.checks.host import HostInputs, evaluate_host, gather_host
from services.checks.model import CheckResult, Severity
from services.checks.parsers import parse_df
from services.inventory import MysqlSpec
from services.ssh import SshPool, SshRunner
from tests.services.checks.check_helpers import (
    PathRunner,
    free_port,
    listening,
    path_without,
    runner_for,
    spec_for,
)


def by_check(results: list[CheckResult], check: str) -> list[CheckResult]:
    return [r for r in results if r.check == check]


def one(results: list[CheckResult], check: str) -> CheckResult:
    found = by_check(results, check)
    assert len(found) == 1, found
    return found[0]


class CountingRunner:
    """Counts the remote commands a check makes (wraps the real SSH runner)."""

    def __init__(self, inner: SshRunner) -> None:
        self.inner = inner
        self.calls = 0

    @property
    def where(self) -> str:
        return str(self.inner.where)

    def run(self, argv, **kwargs):
        self.calls += 1
        return self.inner.run(argv, **kwargs)

    def run_script(self, script, **kwargs):
        self.calls += 1
        return self.inner.run_script(script, **kwargs)


def test_every_host_check_runs_in_one_remote_command(target: SshdServer, lab_client_key: Path, pool: SshPool,
                                                     tmp_path: Path) -> None:
    watched = tmp_path / "etc"
    watched.mkdir()
    (watched / "hostname").write_text("app1\n")
    spec = spec_for(target, lab_client_key, watch_paths=(str(watched),))
    runner = CountingRunner(runner_for(pool, spec, tmp_path))
    report = gather_host(runner, spec)
    results, scan, boot = evaluate_host(spec, report)
    assert runner.calls == 1
    checks = {r.check for r in results}
    for check in (ids.PORTS, ids.UNITS, ids.DISK, ids.INODES, ids.MEMORY, ids.LOAD, ids.CLOCK, ids.SECURITY_UPDATES,
                  ids.REBOOT_REQUIRED, ids.SSH_LOGINS, ids.FIREWALL, ids.DOWNTIME, ids.FILES, ids.REBOOT, ids.CHECKS):
        assert check in checks, check
    assert scan is not None and scan.initial and str(watched / "hostname") in scan.entries
    assert boot is not None and boot.boot_id
    # Every result names the server and says what it found; an UNKNOWN gives its reason, never a crash.
    for result in results:
        assert "app1" in result.summary
        if result.severity is Severity.UNKNOWN:
            assert len(result.summary) > 40 and "failed unexpectedly" not in result.summary


def test_an_unexpected_listener_is_reported_with_its_program(target: SshdServer, lab_client_key: Path,
                                                             pool: SshPool, tmp_path: Path) -> None:
    port = free_port()
    spec = spec_for(target, lab_client_key, expected_ports=(target.port,))
    runner = runner_for(pool, spec, tmp_path)
    with listening(port) as process:
        results, _, _ = evaluate_host(spec, gather_host(runner, spec))
    ports = {r.subject: r for r in by_check(results, ids.PORTS)}
    subject = f"tcp 0.0.0.0:{port}"
    assert subject in ports
    alert = ports[subject]
    assert alert.severity is Severity.WARNING
    assert f"pid {process.pid}" in alert.summary  # the process, where visible
    assert any(f":{port}" in line for line in alert.evidence)
    assert f"tcp 127.0.0.1:{target.port}" not in ports  # sshd's own port is expected


def test_a_restarted_expected_service_is_not_an_alert_and_keeps_its_subject(
    target: SshdServer, lab_client_key: Path, pool: SshPool, tmp_path: Path
) -> None:
    expected, unexpected = free_port(), free_port()
    spec = spec_for(target, lab_client_key, expected_ports=(target.port, expected))
    runner = runner_for(pool, spec, tmp_path)
    subjects = []
    pids = []
    for _ in range(2):  # the service, then the same service restarted (a new pid)
        with listening(expected), listening(unexpected) as rogue:
            results, _, _ = evaluate_host(spec, gather_host(runner, spec))
            pids.append(rogue.pid)
        ports = by_check(results, ids.PORTS)
        assert not any(f":{expected}" in r.subject for r in ports)
        subjects.append({r.key for r in ports if f":{unexpected}" in r.subject})
    assert pids[0] != pids[1]
    assert subjects[0] == subjects[1] == {("app1", ids.PORTS, f"tcp 0.0.0.0:{unexpected}")}


def test_a_missing_command_gives_unknown_with_the_reason(target: SshdServer, lab_client_key: Path, pool: SshPool,
                                                         tmp_path: Path) -> None:
    spec = spec_for(target, lab_client_key)
    runner = PathRunner(runner_for(pool, spec, tmp_path), path_without(tmp_path / "bin", "ss"))
    results, _, _ = evaluate_host(spec, gather_host(runner, spec))
    ports = one(results, ids.PORTS)
    assert ports.severity is Severity.UNKNOWN
    assert "ss is not installed" in ports.summary
    # the other checks still ran
    assert one(results, ids.CHECKS).severity is Severity.OK
    assert by_check(results, ids.DISK)[0].severity is not Severity.UNKNOWN


def test_thresholds_from_the_config_move_the_severities(target: SshdServer, lab_client_key: Path, pool: SshPool,
                                                        tmp_path: Path) -> None:
    base = spec_for(target, lab_client_key)
    report = gather_host(runner_for(pool, base, tmp_path), base)
    fullest = max(row.percent for row in parse_df(report.body("df")))
    disk_levels: list[tuple[dict[str, Any], Severity]] = [
        (dict(disk_warning_percent=101.0, disk_critical_percent=101.0), Severity.OK),
        (dict(disk_warning_percent=float(fullest), disk_critical_percent=101.0), Severity.WARNING),
        (dict(disk_warning_percent=float(fullest), disk_critical_percent=float(fullest)), Severity.CRITICAL),
    ]
    for thresholds, severity in disk_levels:
        spec = spec_for(target, lab_client_key, **thresholds)
        disk = by_check(evaluate_host(spec, report)[0], ids.DISK)
        assert max((r.severity for r in disk), key=lambda s: s.rank) is severity, thresholds
    memory_levels: dict[Severity, dict[str, Any]] = {
        Severity.OK: dict(memory_warning_percent=101.0, memory_critical_percent=101.0),
        Severity.WARNING: dict(memory_warning_percent=0.0, memory_critical_percent=101.0),
        Severity.CRITICAL: dict(memory_warning_percent=0.0, memory_critical_percent=0.0),
    }
    for severity, thresholds in memory_levels.items():
        spec = spec_for(target, lab_client_key, **thresholds)
        assert one(evaluate_host(spec, report)[0], ids.MEMORY).severity is severity
    busy = spec_for(target, lab_client_key, load_warning_per_core=0.0, load_critical_per_core=1000.0)
    assert one(evaluate_host(busy, report)[0], ids.LOAD).severity is Severity.WARNING
    quiet = spec_for(target, lab_client_key, load_warning_per_core=1000.0, load_critical_per_core=1000.0)
    assert one(evaluate_host(quiet, report)[0], ids.LOAD).severity is Severity.OK


def test_watched_files_added_removed_and_changed_are_each_reported(target: SshdServer, lab_client_key: Path,
                                                                   pool: SshPool, tmp_path: Path) -> None:
    watched = tmp_path / "srv-etc"
    (watched / "cron.d").mkdir(parents=True)
    (watched / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (watched / "crontab").write_text("17 * * * * root run-parts /etc/cron.hourly\n")
    (watched / "motd").write_text("hello\n")
    spec = spec_for(target, lab_client_key, watch_paths=(str(watched),))
    runner = runner_for(pool, spec, tmp_path)
    first, scan, _ = evaluate_host(spec, gather_host(runner, spec))
    assert one(first, ids.FILES).severity is Severity.OK and scan is not None and scan.initial
    baseline = accepted(scan)
    (watched / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\nevil:x:0:0::/:/bin/sh\n")
    (watched / "cron.d" / "backdoor").write_text("* * * * * root nc -l 4444\n")
    (watched / "crontab").unlink()
    (watched / "motd").chmod(0o666)
    results, changed, _ = evaluate_host(spec, gather_host(runner, spec, baseline=baseline),
                                        HostInputs(baseline=baseline))
    files = one(results, ids.FILES)
    assert files.severity is Severity.WARNING
    lines = "\n".join(files.evidence)
    assert f"added   {watched / 'cron.d' / 'backdoor'}" in lines
    assert f"removed {watched / 'crontab'}" in lines
    assert f"changed {watched / 'passwd'}: content" in lines
    assert f"changed {watched / 'motd'}: mode 644 → 666" in lines
    assert "1 added, 1 removed, 2 changed" in files.summary
    assert changed is not None
    # Accepted, the same state is no longer a change.
    after, _, _ = evaluate_host(spec, gather_host(runner, spec, baseline=accepted(changed)),
                                HostInputs(baseline=accepted(changed)))
    assert one(after, ids.FILES).severity is Severity.OK


def test_mysql_reachability_is_checked_from_the_server(target: SshdServer, lab_client_key: Path, pool: SshPool,
                                                       tmp_path: Path) -> None:
    port = free_port()
    spec = spec_for(target, lab_client_key, mysql=MysqlSpec("saas", "panel", port))
    runner = runner_for(pool, spec, tmp_path)
    refused = one(evaluate_host(spec, gather_host(runner, spec))[0], ids.MYSQL)
    assert refused.severity is Severity.CRITICAL and "not reachable" in refused.summary
    assert f"127.0.0.1:{port}" in refused.summary


@pytest.fixture
def fake_mysql() -> Iterator[int]:
    """A TCP server that greets like MariaDB (protocol 10), as the real one does on connect."""
    greeting = b"\x0a5.5.5-10.11.6-MariaDB-0+deb12u1\x00" + bytes(40)
    packet = len(greeting).to_bytes(3, "little") + b"\x00" + greeting
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.sendall(packet)
                stop.wait(0.5)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    try:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the accept()
    except OSError:
        pass
    listener.close()
    thread.join(5)


def test_a_mysql_that_greets_is_reachable(target: SshdServer, lab_client_key: Path, pool: SshPool, tmp_path: Path,
                                          fake_mysql: int) -> None:
    spec = spec_for(target, lab_client_key, mysql=MysqlSpec("saas", "panel", fake_mysql))
    result = one(evaluate_host(spec, gather_host(runner_for(pool, spec, tmp_path), spec))[0], ids.MYSQL)
    assert result.severity is Severity.OK
    assert "10.11.6-MariaDB" in result.summary
