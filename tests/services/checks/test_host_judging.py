"""Judging a server's report: reboots against the audit log, the downtime budget, backups, thresholds.

These build the script's output by hand (as a server would print it), so each case is exact.
"""

from __future__ import annotations

import datetime as dt

import pytest

from services.backups.models import Repository, Session
from services.checks import ids
from services.checks.backups import judge_repository
from services.checks.files import Baseline, merge_scan, plan_for
from services.checks.host import AuditNote, BootRecord, HostInputs, HostReport, evaluate_host
from services.checks.model import CheckResult, Severity, exit_code, worst
from services.checks.parsers import FileEntry, split_sections
from services.inventory import ChecksSpec, ServerSpec

NOW = dt.datetime(2024, 3, 5, 12, 0, tzinfo=dt.UTC)
M = "@@chk-test"


def report(**sections: str) -> HostReport:
    """A report as the host script would print it; ``name=body`` (``name__arg`` for a section argument)."""
    parts = [f"\n{M} time {int(NOW.timestamp())}"]
    for key, body in sections.items():
        name, _, arg = key.replace("_dot_", ".").partition("__")
        parts.append(f"\n{M} {name}{(' ' + arg) if arg else ''}\n{body}")
    parts.append(f"\n{M} end\n")
    text = "".join(parts)
    return HostReport("app1", split_sections(text, M), NOW.timestamp() - 0.1, NOW.timestamp() + 0.1)


def spec(**checks: object) -> ServerSpec:
    return ServerSpec("app1", "203.0.113.10", checks=ChecksSpec(**checks))  # type: ignore[arg-type]


def find(results: list[CheckResult], check: str) -> CheckResult:
    found = [r for r in results if r.check == check]
    assert len(found) == 1, found
    return found[0]


BOOT_A = "11111111-2222-3333-4444-555555555555"
BOOT_B = "66666666-7777-8888-9999-000000000000"


def test_a_reboot_nobody_asked_for_is_a_warning_until_it_is_old() -> None:
    seen = BootRecord(BOOT_A, NOW - dt.timedelta(days=3), NOW - dt.timedelta(minutes=10))
    fresh = report(bootid=BOOT_B, uptime="300.0 100.0")
    results, _, record = evaluate_host(spec(), fresh, HostInputs(boot=seen), now=NOW)
    reboot = find(results, ids.REBOOT)
    assert reboot.severity is Severity.WARNING and "without anyone asking" in reboot.summary
    assert record is not None and record.unexplained and record.previous_boot_id == BOOT_A
    # the next sweep still says so (same boot id), until reboot_alert_hours have passed
    again, _, _ = evaluate_host(spec(), fresh, HostInputs(boot=record), now=NOW)
    assert find(again, ids.REBOOT).severity is Severity.WARNING
    old = report(bootid=BOOT_B, uptime=f"{25 * 3600}.0 1.0")
    later, _, _ = evaluate_host(spec(reboot_alert_hours=24.0), old, HostInputs(boot=record), now=NOW)
    assert find(later, ids.REBOOT).severity is Severity.OK


def test_an_audited_unlock_or_reboot_explains_a_new_boot_id() -> None:
    seen = BootRecord(BOOT_A, NOW - dt.timedelta(days=3), NOW - dt.timedelta(minutes=10))
    fresh = report(bootid=BOOT_B, uptime="300.0 100.0")
    for action in ("unlock", "server.reboot"):
        audit = (AuditNote(NOW - dt.timedelta(minutes=3), action),)
        results, _, record = evaluate_host(spec(), fresh, HostInputs(boot=seen, audit=audit), now=NOW)
        assert find(results, ids.REBOOT).severity is Severity.OK
        assert record is not None and not record.unexplained and action in record.note
    # an unlock long before the previous sighting explains nothing
    stale = (AuditNote(NOW - dt.timedelta(days=2), "unlock"),)
    results, _, _ = evaluate_host(spec(), fresh, HostInputs(boot=seen, audit=stale), now=NOW)
    assert find(results, ids.REBOOT).severity is Severity.WARNING


def test_downtime_against_the_budget() -> None:
    last = ("reboot   system boot  6.1.0   2024-03-05T10:01:30+00:00   still running\n"
            "shutdown system down  6.1.0   2024-03-05T10:00:00+00:00 - 2024-03-05T10:01:30+00:00  (00:01)\n"
            "reboot   system boot  6.1.0   2024-02-01T09:00:00+00:00 - 2024-03-05T10:00:00+00:00 (33+01:00)\n")
    data = report(last=last, last_dot_rc__0="", uptime="7000.0 1.0")
    over = find(evaluate_host(spec(), data, now=NOW)[0], ids.DOWNTIME)
    assert over.severity is Severity.WARNING and "1 min 30 s" in over.summary
    assert any("down 2024-03-05 10:00:00" in line for line in over.evidence)
    within = find(evaluate_host(spec(downtime_budget_minutes=2.0), data, now=NOW)[0], ids.DOWNTIME)
    assert within.severity is Severity.OK
    # a week of uptime needs no history at all
    up = find(evaluate_host(spec(), report(uptime=f"{8 * 86400}.0 1.0"), now=NOW)[0], ids.DOWNTIME)
    assert up.severity is Severity.OK
    # no history and a recent boot: unknown, with the reason
    unknown = find(evaluate_host(spec(), report(uptime="7000.0 1.0"), now=NOW)[0], ids.DOWNTIME)
    assert unknown.severity is Severity.UNKNOWN and "can't be measured" in unknown.summary


def test_no_systemd_means_unknown_units_not_a_crash() -> None:
    data = report(systemd__no="", units_dot_rc__1="", units="", units_dot_err="System has not been booted with "
                  "systemd as init system (PID 1). Can't operate.")
    units = find(evaluate_host(spec(), data, now=NOW)[0], ids.UNITS)
    assert units.severity is Severity.UNKNOWN and "not booted with systemd" in units.summary
    failed = report(units_dot_rc__0="", units="nginx.service loaded failed failed nginx\n")
    found = [r for r in evaluate_host(spec(), failed, now=NOW)[0] if r.check == ids.UNITS]
    assert [(r.subject, r.severity) for r in found] == [("nginx.service", Severity.WARNING)]


def test_security_updates_and_reboot_required() -> None:
    lists = str(NOW.timestamp() - 3600)
    data = report(apt_dot_rc__0="", apt="Listing...\nopenssl/bookworm-security 3.0.13 amd64 [upgradable from: 3.0]\n",
                  aptlists=lists, reboot="yes\nlinux-image-6.1.0-18-amd64\n")
    results = evaluate_host(spec(), data, now=NOW)[0]
    assert find(results, ids.SECURITY_UPDATES).severity is Severity.WARNING
    required = find(results, ids.REBOOT_REQUIRED)
    assert required.severity is Severity.WARNING and "linux-image" in required.summary
    never = report(apt_dot_rc__0="", apt="Listing...\n", aptlists="")
    assert find(evaluate_host(spec(), never, now=NOW)[0], ids.SECURITY_UPDATES).severity is Severity.UNKNOWN


def test_failed_logins_thresholds() -> None:
    data = report(journalfiles__yes="", journal_dot_rc__0="", journal_dot_err="", journal_dot_count="150",
                  journal="1709640000.0 app1 sshd[9]: Invalid user admin from 198.51.100.7\n")
    assert find(evaluate_host(spec(), data, now=NOW)[0], ids.SSH_LOGINS).severity is Severity.WARNING
    assert find(evaluate_host(spec(failed_logins_warning=200.0), data, now=NOW)[0],
                ids.SSH_LOGINS).severity is Severity.OK
    assert find(evaluate_host(spec(failed_logins_critical=100.0), data, now=NOW)[0],
                ids.SSH_LOGINS).severity is Severity.CRITICAL
    # from auth.log, only the last hour counts
    auth = report(authlog="Mar  5 11:30:00 app1 sshd[1]: Failed password for root from 198.51.100.7\n"
                          "Mar  5 09:00:00 app1 sshd[1]: Failed password for root from 198.51.100.7\n")
    result = find(evaluate_host(spec(failed_logins_warning=1.0), auth, now=NOW)[0], ids.SSH_LOGINS)
    assert result.data["count"] == 1 and result.severity is Severity.WARNING


def test_clock_skew_against_this_laptop() -> None:
    ahead = report(timedatectl_dot_rc__0="", timedatectl="NTP=yes\nNTPSynchronized=yes\n")
    ahead.sections["time"] = type(ahead.sections["time"])("time", str(int(NOW.timestamp()) + 60), "")
    result = find(evaluate_host(spec(), ahead, now=NOW)[0], ids.CLOCK)
    assert result.severity is Severity.WARNING and "off by" in result.summary
    synced = report(timedatectl_dot_rc__0="", timedatectl="NTP=yes\nNTPSynchronized=yes\n")
    assert find(evaluate_host(spec(), synced, now=NOW)[0], ids.CLOCK).severity is Severity.OK
    unsynced = report(timedatectl_dot_rc__0="", timedatectl="NTP=yes\nNTPSynchronized=no\n")
    assert find(evaluate_host(spec(), unsynced, now=NOW)[0], ids.CLOCK).severity is Severity.WARNING


def entry(path: str, sha: str | None = "a" * 64, mode: str = "644", kind: str = "f", ctime: float = 0.0) -> FileEntry:
    return FileEntry(path, kind, mode, "root", "root", 10, sha, "", 0.0, ctime)


def test_unchanged_files_keep_their_baseline_hash_without_rehashing() -> None:
    baseline = Baseline(("/etc",), {"/etc": entry("/etc", None, "755", "d"), "/etc/a": entry("/etc/a")}, 1000.0)
    plan = plan_for(("/etc",), baseline)
    assert plan.since == 999.0 and plan.full == ()
    listed = {"/etc": entry("/etc", None, "755", "d", 10.0), "/etc/a": entry("/etc/a", None, ctime=500.0)}
    scan = merge_scan(plan, baseline, listed, {}, 2000.0)
    assert scan.changes == () and scan.entries["/etc/a"].sha256 == "a" * 64
    # a newer ctime with a new hash is a content change
    listed["/etc/a"] = entry("/etc/a", None, ctime=1500.0)
    changed = merge_scan(plan, baseline, listed, {"/etc/a": "b" * 64}, 2000.0)
    assert [c.line().split(":")[0] for c in changed.changes] == ["changed /etc/a"]
    # a newly watched path is recorded, not reported
    plan2 = plan_for(("/etc", "/usr/bin"), baseline)
    assert plan2.full == ("/usr/bin",)
    listed["/usr/bin/sudo"] = entry("/usr/bin/sudo", None)
    adopted = merge_scan(plan2, baseline, listed, {"/etc/a": "a" * 64, "/usr/bin/sudo": "c" * 64}, 2000.0)
    assert adopted.adopted == ("/usr/bin",) and adopted.changes == ()


def repository(**fields: object) -> Repository:
    values: dict[str, object] = dict(server="app1", name="offsite", where="backup1", path="/srv/rdiff/app1",
                                     via="backup1", max_age_hours=26.0, read_at=NOW,
                                     sessions=(Session(NOW - dt.timedelta(hours=3), errors=0),))
    values.update(fields)
    return Repository(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("fields", "severity", "words"), [
    ({}, Severity.OK, "fresh"),
    ({"sessions": (Session(NOW - dt.timedelta(hours=30), errors=0),)}, Severity.WARNING, "old"),
    ({"sessions": (Session(NOW - dt.timedelta(hours=80), errors=0),)}, Severity.CRITICAL, "old"),
    ({"sessions": (Session(NOW - dt.timedelta(hours=3), errors=4),)}, Severity.WARNING, "4 error(s)"),
    ({"needs_regress": True}, Severity.CRITICAL, "regress"),
    ({"sessions": (), "problem": "rdiff-backup is not installed on backup1"}, Severity.UNKNOWN, "not installed"),
])
def test_backups_as_checks(fields: dict[str, object], severity: Severity, words: str) -> None:
    result = judge_repository(repository(**fields))
    assert result.severity is severity
    assert words in result.summary
    assert result.server == "app1" and result.subject == "offsite"


def test_the_worst_and_the_exit_status_follow_the_monitoring_plugin_convention() -> None:
    assert exit_code([]) == 0
    assert exit_code([Severity.OK, Severity.UNKNOWN]) == 3
    assert exit_code([Severity.UNKNOWN, Severity.WARNING]) == 1
    assert exit_code([Severity.WARNING, Severity.CRITICAL, Severity.UNKNOWN]) == 2
    assert worst([Severity.OK]) is Severity.OK
