"""The host checks of one server: gathered by ONE remote script, judged against the config.

:func:`gather_host` runs the script and parses its output into a :class:`HostReport`;
:func:`evaluate_host` turns a report into :class:`CheckResult` values. The evaluation is pure (every
input is an argument), so thresholds can be tried on a saved report.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from services.cancel import NEVER_CANCELLED, CancelToken
from services.checks import ids
from services.checks.files import Baseline, WatchPlan, WatchScan, merge_scan, plan_for
from services.checks.model import (
    PAGE_ALERTS,
    PAGE_BACKUPS,
    PAGE_FLEET,
    PAGE_LOGS,
    PAGE_PROCESSES,
    PAGE_SERVICES,
    PAGE_TIMELINE,
    Action,
    CheckResult,
    Severity,
    cap_evidence,
)
from services.checks.parsers import (
    BootHistory,
    FirewallRules,
    Section,
    first_float,
    first_int,
    parse_aide,
    parse_apt_upgradable,
    parse_chrony_tracking,
    parse_df,
    parse_failed_units,
    parse_find_listing,
    parse_iptables_save,
    parse_key_values,
    parse_last,
    parse_list_boots,
    parse_nft_ruleset,
    parse_sha256sums,
    parse_ss,
    split_sections,
    syslog_time,
)
from services.checks.script import ScriptOptions, build_host_script, new_marker
from services.inventory import ServerSpec
from services.probe import DiskUse, HostFacts
from services.runner import CommandRunner

WEEK = dt.timedelta(days=7)


@dataclass(frozen=True)
class BootRecord:
    """What the panel last knew of a server's boot: kept in the store between sweeps."""

    boot_id: str
    first_seen: dt.datetime  # when the panel first saw this boot id
    last_seen: dt.datetime
    booted_at: dt.datetime | None = None  # the server's estimate (now - uptime)
    unexplained: bool = False  # the boot id changed with no audited reboot or unlock
    previous_boot_id: str | None = None
    note: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "boot_id": self.boot_id,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "booted_at": self.booted_at.isoformat() if self.booted_at else None,
            "unexplained": self.unexplained,
            "previous_boot_id": self.previous_boot_id,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> BootRecord | None:
        try:
            booted = data.get("booted_at")
            return cls(
                boot_id=str(data["boot_id"]),
                first_seen=dt.datetime.fromisoformat(str(data["first_seen"])),
                last_seen=dt.datetime.fromisoformat(str(data["last_seen"])),
                booted_at=dt.datetime.fromisoformat(str(booted)) if booted else None,
                unexplained=bool(data.get("unexplained", False)),
                previous_boot_id=str(data["previous_boot_id"]) if data.get("previous_boot_id") else None,
                note=str(data.get("note", "")),
            )
        except (KeyError, ValueError, TypeError):
            return None


@dataclass(frozen=True)
class AuditNote:
    """An audited action on a server that explains a reboot (an unlock, a reboot the operator asked for)."""

    at: dt.datetime
    action: str
    outcome: str = "ok"


def explains_reboot(action: str) -> bool:
    lowered = action.lower()
    return lowered.startswith("unlock") or "reboot" in lowered or "restart-server" in lowered


@dataclass(frozen=True)
class HostInputs:
    """Everything from the panel's store that judging one server needs."""

    baseline: Baseline | None = None
    boot: BootRecord | None = None
    audit: tuple[AuditNote, ...] = ()  # reboots and unlocks of this server since boot.last_seen


@dataclass(frozen=True)
class HostReport:
    """The parsed answer of one server's host script."""

    server: str
    sections: dict[str, Section]
    sent_at: float  # this laptop's clock around the command, for the clock check
    received_at: float
    plan: WatchPlan | None = None
    extra: dict[str, str] = field(default_factory=dict)  # sub-scripts' output, by name
    complete: bool = True  # the script ran to its end

    def section(self, name: str) -> Section | None:
        return self.sections.get(name)

    def body(self, name: str) -> str:
        section = self.sections.get(name)
        return section.body if section is not None else ""

    def has(self, name: str) -> bool:
        return name in self.sections

    def rc(self, name: str) -> int | None:
        section = self.sections.get(f"{name}.rc")
        return first_int(section.arg) if section is not None else None

    def err(self, name: str) -> str:
        return " ".join(self.body(f"{name}.err").split())[:500]

    @property
    def server_time(self) -> float | None:
        section = self.sections.get("time")
        return first_float(section.arg) if section is not None else None

    @property
    def uptime_seconds(self) -> float | None:
        return first_float(self.body("uptime"))

    @property
    def systemd(self) -> bool | None:
        section = self.sections.get("systemd")
        return None if section is None else section.arg.strip() == "yes"

    @property
    def user(self) -> str:
        section = self.sections.get("user")
        return section.arg.strip() if section is not None else ""

    @property
    def boot_id(self) -> str | None:
        words = self.body("bootid").split()
        return words[0] if words else None

    def facts(self) -> HostFacts:
        load = None
        parts = self.body("loadavg").split()
        try:
            load = (float(parts[0]), float(parts[1]), float(parts[2]))
        except (IndexError, ValueError):
            pass
        memory: dict[str, int] = {}
        for line in self.body("meminfo").splitlines():
            name, _, rest = line.partition(":")
            value = first_int(rest)
            if value is not None:
                memory[name.strip()] = value
        disks = tuple(DiskUse(u.mount, u.total, u.used, u.percent) for u in parse_df(self.body("df")))
        failed = len(parse_failed_units(self.body("units"))) if self.rc("units") == 0 else None
        reboot_words = self.body("reboot").split()
        return HostFacts(
            uptime_seconds=self.uptime_seconds,
            load=load,
            cores=first_int(self.body("nproc")),
            mem_total_kb=memory.get("MemTotal"),
            mem_available_kb=memory.get("MemAvailable"),
            disks=disks,
            failed_units=failed,
            kernel=_first_word(self.body("kernel")),
            debian=_first_word(self.body("debian")),
            reboot_required={"yes": True, "no": False}.get(reboot_words[0] if reboot_words else ""),
            boot_id=self.boot_id,
        )


def _first_word(text: str) -> str | None:
    words = text.split()
    return words[0] if words else None


# --- gathering --------------------------------------------------------------------------------------------


def is_absolute(path: str) -> bool:
    return path.startswith("/") and "\0" not in path


def script_options(spec: ServerSpec, baseline: Baseline | None,
                   extra: tuple[tuple[str, str], ...] = ()) -> ScriptOptions:
    paths = tuple(p for p in spec.checks.watch_paths if is_absolute(p))
    plan = plan_for(paths, baseline) if paths else None
    mysql = (spec.mysql.host, spec.mysql.port) if spec.mysql is not None else None
    return ScriptOptions(watch=plan, mysql=mysql, aide_timeout=int(spec.checks.aide_timeout_seconds), extra=extra)


def decode(data: bytes) -> str:
    """Output as text; bytes that are not UTF-8 become escapes, so a path stays one stable string."""
    return data.decode("utf-8", errors="backslashreplace")


def gather_host(
    runner: CommandRunner,
    spec: ServerSpec,
    *,
    baseline: Baseline | None = None,
    extra: tuple[tuple[str, str], ...] = (),
    cancel: CancelToken = NEVER_CANCELLED,
    timeout: float | None = None,
) -> HostReport:
    """Run the host script once (one round trip) and parse it. Connection errors propagate."""
    marker = new_marker()
    options = script_options(spec, baseline, extra)
    script = build_host_script(marker, options)
    sent = time.time()
    result = runner.run_script(script, timeout=timeout or spec.checks.check_timeout_seconds, cancel=cancel)
    received = time.time()
    text = decode(result.stdout)
    sections = split_sections(text, marker)
    extras = {name[len("extra:"):]: section.body for name, section in sections.items() if name.startswith("extra:")}
    return HostReport(spec.name, sections, sent, received, options.watch, extras, complete="end" in sections)


# --- judging ----------------------------------------------------------------------------------------------


Evaluator = Callable[["_Judge"], list[CheckResult]]


@dataclass
class _Judge:
    spec: ServerSpec
    report: HostReport
    inputs: HostInputs
    now: dt.datetime

    @property
    def server(self) -> str:
        return self.spec.name

    def result(self, check: str, severity: Severity, summary: str, *, subject: str = "",
               evidence: tuple[str, ...] | list[str] = (), action: Action | None = None,
               data: dict[str, object] | None = None) -> CheckResult:
        return CheckResult(self.server, check, severity, summary, subject, cap_evidence(evidence), action,
                           dict(data or {}))

    def unknown(self, check: str, why: str, *, evidence: tuple[str, ...] | list[str] = (),
                action: Action | None = None) -> CheckResult:
        return self.result(check, Severity.UNKNOWN, why, evidence=evidence, action=action)

    def cannot_run(self, check: str, name: str, what: str, action: Action | None = None) -> CheckResult | None:
        """UNKNOWN when section ``name``'s command is missing or failed; None when it ran fine."""
        missing = self.report.section(f"{name}.missing")
        if missing is not None:
            return self.unknown(check, f"{what} can't be checked on {self.server}: {missing.arg or name} is not "
                                       "installed there.", action=action)
        if not self.report.has(f"{name}.rc") and not self.report.has(name):
            return self.unknown(check, f"{what} can't be checked on {self.server}: the check did not run "
                                       "(the script stopped early).", action=action)
        rc = self.report.rc(name)
        if rc not in (0, None):
            reason = self.report.err(name) or f"exit status {rc}"
            return self.unknown(check, f"{what} can't be checked on {self.server}: {reason}",
                                evidence=[f"exit status {rc}", *self.report.body(f"{name}.err").splitlines()[:10]],
                                action=action)
        return None

    def action(self, title: str, page: str) -> Action:
        return Action(title, page, self.server)


def evaluate_host(
    spec: ServerSpec, report: HostReport, inputs: HostInputs = HostInputs(), *, now: dt.datetime | None = None
) -> tuple[list[CheckResult], WatchScan | None, BootRecord | None]:
    """Judge one report: the results, the watched-file scan (to store), and the boot record (to store)."""
    judge = _Judge(spec, report, inputs, now or dt.datetime.now(dt.UTC))
    results: list[CheckResult] = []
    for evaluator in (_ports, _units, _disks, _inodes, _memory, _load, _clock, _security_updates, _reboot_required,
                      _failed_logins, _firewall, _mysql, _downtime, _aide):
        try:
            results += evaluator(judge)
        except Exception as error:  # a bug in one check must not hide the others
            results.append(judge.unknown(_check_of(evaluator), f"The check failed on {spec.name}: "
                                         f"{error.__class__.__name__}: {error}"))
    scan = None
    try:
        file_results, scan = _files(judge)
        results += file_results
    except Exception as error:
        results.append(judge.unknown(ids.FILES, f"The watched-files check failed on {spec.name}: "
                                     f"{error.__class__.__name__}: {error}"))
    boot_results, boot = _reboot(judge)
    results += boot_results
    if not report.complete:
        results.append(judge.unknown(ids.CHECKS, f"The checks script on {spec.name} stopped before its end; "
                                     "some checks are missing.", evidence=report.body("end").splitlines()[:5]))
    else:
        results.append(judge.result(ids.CHECKS, Severity.OK, f"The checks ran on {spec.name}."))
    return results, scan, boot


def _check_of(evaluator: Evaluator) -> str:
    names: dict[Evaluator, str] = {
        _ports: ids.PORTS, _units: ids.UNITS, _disks: ids.DISK, _inodes: ids.INODES, _memory: ids.MEMORY,
        _load: ids.LOAD, _clock: ids.CLOCK, _security_updates: ids.SECURITY_UPDATES,
        _reboot_required: ids.REBOOT_REQUIRED, _failed_logins: ids.SSH_LOGINS, _firewall: ids.FIREWALL,
        _mysql: ids.MYSQL, _downtime: ids.DOWNTIME, _aide: ids.AIDE,
    }
    return names.get(evaluator, ids.CHECKS)


# --- listening ports --------------------------------------------------------------------------------------


def _ports(judge: _Judge) -> list[CheckResult]:
    action = judge.action("Show processes", PAGE_PROCESSES)
    problem = judge.cannot_run(ids.PORTS, "ss", "Listening ports", action)
    if problem is not None:
        return [problem]
    listeners = parse_ss(judge.report.body("ss"))
    expected = set(judge.spec.checks.expected_ports)
    hidden = judge.report.user not in ("", "root") and not any(item.processes for item in listeners)
    results = []
    for listener in sorted(listeners, key=lambda item: (item.port, item.protocol, item.address)):
        if listener.port in expected:
            continue
        who = listener.programs or ("a process only root can see" if hidden else "an unknown process")
        results.append(judge.result(
            ids.PORTS, Severity.WARNING,
            f"{listener.subject} is listening on {judge.server} ({who}), but port {listener.port} is not in "
            "expected_ports.",
            subject=listener.subject, evidence=list(listener.lines), action=action,
            data={"protocol": listener.protocol, "address": listener.address, "port": listener.port,
                  "programs": listener.programs}))
    if not results:
        results.append(judge.result(ids.PORTS, Severity.OK,
                                    f"{len(listeners)} listening sockets on {judge.server}, all on expected ports."))
    return results


# --- failed units -----------------------------------------------------------------------------------------


def _units(judge: _Judge) -> list[CheckResult]:
    action = judge.action("Show services", PAGE_SERVICES)
    problem = judge.cannot_run(ids.UNITS, "units", "Failed systemd units", action)
    if problem is not None:
        if judge.report.systemd is False:
            problem = judge.unknown(ids.UNITS, f"Failed systemd units can't be checked on {judge.server}: it was "
                                    "not booted with systemd (there is no /run/systemd/system).",
                                    evidence=judge.report.body("units.err").splitlines()[:5], action=action)
        return [problem]
    units = parse_failed_units(judge.report.body("units"))
    if not units:
        return [judge.result(ids.UNITS, Severity.OK, f"No failed systemd units on {judge.server}.")]
    return [judge.result(ids.UNITS, Severity.WARNING, f"{unit.unit} has failed on {judge.server}"
                         + (f" ({unit.description})." if unit.description else "."),
                         subject=unit.unit, evidence=[line for line in judge.report.body("units").splitlines()
                                                      if unit.unit in line][:5], action=action)
            for unit in units]


# --- disks ------------------------------------------------------------------------------------------------


def _usage(judge: _Judge, check: str, name: str, what: str, warning: float, critical: float) -> list[CheckResult]:
    action = judge.action("Show the server", PAGE_FLEET)
    problem = judge.cannot_run(check, name, what.capitalize(), action)
    if problem is not None:
        return [problem]
    rows = parse_df(judge.report.body(name))
    if not rows:
        return [judge.unknown(check, f"df printed no {what} figures on {judge.server}.",
                              evidence=judge.report.body(name).splitlines()[:5], action=action)]
    results = []
    for row in sorted(rows, key=lambda r: -r.percent):
        severity = Severity.CRITICAL if row.percent >= critical else \
            Severity.WARNING if row.percent >= warning else Severity.OK
        if severity is Severity.OK:
            continue
        limit = critical if severity is Severity.CRITICAL else warning
        results.append(judge.result(
            check, severity, f"{row.mount} on {judge.server} is {row.percent}% full ({what}; limit {limit:g}%).",
            subject=row.mount, evidence=[f"{row.filesystem} {row.used} of {row.total} used, {row.percent}% "
                                         f"{row.mount}"], action=action, data={"percent": row.percent}))
    if not results:
        fullest = max(rows, key=lambda r: r.percent)
        results.append(judge.result(check, Severity.OK, f"Fullest {what} on {judge.server}: {fullest.percent}% "
                                    f"{fullest.mount}."))
    return results


def _disks(judge: _Judge) -> list[CheckResult]:
    checks = judge.spec.checks
    return _usage(judge, ids.DISK, "df", "disk space", checks.disk_warning_percent, checks.disk_critical_percent)


def _inodes(judge: _Judge) -> list[CheckResult]:
    checks = judge.spec.checks
    return _usage(judge, ids.INODES, "inodes", "inodes", checks.disk_inode_warning_percent,
                  checks.disk_inode_critical_percent)


# --- memory and load --------------------------------------------------------------------------------------


def _memory(judge: _Judge) -> list[CheckResult]:
    facts = judge.report.facts()
    used = facts.memory_used_percent
    action = judge.action("Show processes", PAGE_PROCESSES)
    if used is None:
        return [judge.unknown(ids.MEMORY, f"Memory use can't be read on {judge.server} (/proc/meminfo has no "
                              "MemTotal/MemAvailable).", action=action)]
    checks = judge.spec.checks
    severity = Severity.CRITICAL if used >= checks.memory_critical_percent else \
        Severity.WARNING if used >= checks.memory_warning_percent else Severity.OK
    evidence = [f"MemTotal {facts.mem_total_kb} kB, MemAvailable {facts.mem_available_kb} kB"]
    if severity is Severity.OK:
        return [judge.result(ids.MEMORY, Severity.OK, f"{used:.0f}% of memory in use on {judge.server}.",
                             evidence=evidence)]
    limit = checks.memory_critical_percent if severity is Severity.CRITICAL else checks.memory_warning_percent
    return [judge.result(ids.MEMORY, severity, f"{used:.0f}% of memory is in use on {judge.server} "
                         f"(limit {limit:g}%).", evidence=evidence, action=action, data={"percent": round(used, 1)})]


def _load(judge: _Judge) -> list[CheckResult]:
    facts = judge.report.facts()
    action = judge.action("Show processes", PAGE_PROCESSES)
    if facts.load is None or not facts.cores:
        return [judge.unknown(ids.LOAD, f"The load of {judge.server} can't be read (/proc/loadavg or nproc).",
                              action=action)]
    per_core = facts.load[1] / facts.cores  # the 5-minute average: steadier than the 1-minute one
    checks = judge.spec.checks
    severity = Severity.CRITICAL if per_core >= checks.load_critical_per_core else \
        Severity.WARNING if per_core >= checks.load_warning_per_core else Severity.OK
    evidence = [f"load average {facts.load[0]:.2f} {facts.load[1]:.2f} {facts.load[2]:.2f} on {facts.cores} cores"]
    if severity is Severity.OK:
        return [judge.result(ids.LOAD, Severity.OK, f"Load {per_core:.2f} per core on {judge.server}.",
                             evidence=evidence)]
    limit = checks.load_critical_per_core if severity is Severity.CRITICAL else checks.load_warning_per_core
    return [judge.result(ids.LOAD, severity, f"The 5-minute load of {judge.server} is {per_core:.2f} per core "
                         f"(limit {limit:g}).", evidence=evidence, action=action,
                         data={"per_core": round(per_core, 2)})]


# --- clock ------------------------------------------------------------------------------------------------


def _clock(judge: _Judge) -> list[CheckResult]:
    report = judge.report
    action = judge.action("Show services", PAGE_SERVICES)
    evidence: list[str] = []
    synced: bool | None = None
    reasons: list[str] = []
    if report.has("timedatectl"):
        if report.rc("timedatectl") == 0:
            values = parse_key_values(report.body("timedatectl"))
            flag = values.get("NTPSynchronized")
            evidence += [f"timedatectl: {k}={values[k]}" for k in ("NTP", "NTPSynchronized", "Timezone")
                         if k in values]
            if flag in ("yes", "no"):
                synced = flag == "yes"
        else:
            reasons.append(f"timedatectl: {report.err('timedatectl') or 'failed'}")
    if report.has("chrony"):
        if report.rc("chrony") == 0:
            tracking = parse_chrony_tracking(report.body("chrony"))
            if tracking.leap is not None:
                evidence.append(f"chronyc: leap status {tracking.leap}"
                                + (f", offset {tracking.offset_seconds:+.6f} s" if tracking.offset_seconds is not None
                                   else ""))
                synced = tracking.synchronised if synced is None else (synced or bool(tracking.synchronised))
        else:
            reasons.append(f"chronyc: {report.err('chrony') or 'failed'}")
    if not report.has("timedatectl") and not report.has("chrony"):
        reasons.append("neither timedatectl nor chronyc is installed")
    skew = None
    server_time = report.server_time
    if server_time is not None:
        if server_time < report.sent_at - 1:
            skew = server_time - (report.sent_at - 1)
        elif server_time > report.received_at + 1:
            skew = server_time - (report.received_at + 1)
        else:
            skew = 0.0
        evidence.append("the server's clock is within a second of this laptop's" if skew == 0 else
                        f"the server's clock is {abs(skew):.1f} s {'ahead of' if skew > 0 else 'behind'} this "
                        "laptop's")
    limit = judge.spec.checks.clock_skew_warning_seconds
    if skew is not None and abs(skew) > limit:
        return [judge.result(ids.CLOCK, Severity.WARNING,
                             f"The clock of {judge.server} is off by {abs(skew):.1f} s compared with this laptop "
                             f"(limit {limit:g} s).", evidence=evidence, action=action, data={"skew": skew})]
    if synced is False:
        return [judge.result(ids.CLOCK, Severity.WARNING, f"The clock of {judge.server} is not synchronised by NTP.",
                             evidence=evidence, action=action)]
    if synced is None:
        return [judge.unknown(ids.CLOCK, f"Whether the clock of {judge.server} is synchronised can't be told: "
                              + "; ".join(reasons or ["no NTP status"]) + ".", evidence=evidence, action=action)]
    return [judge.result(ids.CLOCK, Severity.OK, f"The clock of {judge.server} is synchronised.", evidence=evidence)]


# --- updates ----------------------------------------------------------------------------------------------


def _security_updates(judge: _Judge) -> list[CheckResult]:
    action = judge.action("Show the server", PAGE_FLEET)
    problem = judge.cannot_run(ids.SECURITY_UPDATES, "apt", "Pending security updates", action)
    if problem is not None:
        return [problem]
    newest = first_float(judge.report.body("aptlists"))
    if newest is None:
        return [judge.unknown(ids.SECURITY_UPDATES, f"The package lists of {judge.server} have never been "
                              "downloaded (run apt update), so pending security updates can't be told.",
                              action=action)]
    packages = parse_apt_upgradable(judge.report.body("apt"))
    security = [p for p in packages if p.security]
    server_time = judge.report.server_time or judge.now.timestamp()
    age_days = max(0.0, (server_time - newest) / 86400)
    evidence = [f"{p.package} {p.version} ({', '.join(p.suites)})" for p in security]
    evidence.append(f"package lists updated {age_days:.1f} days ago; {len(packages)} upgradable in all")
    if security:
        return [judge.result(ids.SECURITY_UPDATES, Severity.WARNING,
                             f"{len(security)} security update(s) are waiting on {judge.server}.",
                             evidence=evidence, action=action, data={"count": len(security)})]
    if age_days > judge.spec.checks.apt_lists_max_age_days:
        return [judge.unknown(ids.SECURITY_UPDATES, f"The package lists of {judge.server} are {age_days:.0f} days "
                              "old, too old to tell whether security updates are waiting (is unattended-upgrades "
                              "running?).", evidence=evidence, action=action)]
    return [judge.result(ids.SECURITY_UPDATES, Severity.OK, f"No security updates are waiting on {judge.server}.",
                         evidence=evidence)]


def _reboot_required(judge: _Judge) -> list[CheckResult]:
    lines = judge.report.body("reboot").splitlines()
    if not lines or lines[0].strip() not in ("yes", "no"):
        return [judge.unknown(ids.REBOOT_REQUIRED, f"Whether {judge.server} needs a reboot can't be read.")]
    if lines[0].strip() == "no":
        return [judge.result(ids.REBOOT_REQUIRED, Severity.OK, f"{judge.server} needs no reboot.")]
    packages = [line.strip() for line in lines[1:] if line.strip()]
    return [judge.result(ids.REBOOT_REQUIRED, Severity.WARNING,
                         f"{judge.server} needs a reboot to finish updates"
                         + (f" ({', '.join(packages[:5])}{'…' if len(packages) > 5 else ''})." if packages else "."),
                         evidence=["/var/run/reboot-required exists", *packages],
                         action=judge.action("Plan a reboot", PAGE_FLEET))]


# --- failed SSH logins ------------------------------------------------------------------------------------


def _failed_logins(judge: _Judge) -> list[CheckResult]:
    report = judge.report
    action = judge.action("Show the logs", PAGE_LOGS)
    count: int | None = None
    evidence: list[str] = []
    source = ""
    reasons: list[str] = []
    if report.has("journal.rc"):
        err = report.err("journal")
        if report.rc("journal") == 0 and "not seeing messages" not in err:
            count = first_int(report.body("journal.count")) or 0
            evidence = report.body("journal").splitlines()[-20:]
            source = "the journal"
        else:
            reasons.append(f"journalctl: {err or 'failed'}"
                           + (" (add the panel's user to the adm or systemd-journal group)"
                              if "not seeing messages" in err else ""))
    if count is None and report.has("authlog"):
        now = dt.datetime.fromtimestamp(report.server_time or judge.now.timestamp(), dt.UTC)
        recent = []
        for line in report.body("authlog").splitlines():
            moment = syslog_time(line, now)
            if moment is not None and now - dt.timedelta(hours=1) <= moment <= now + dt.timedelta(minutes=5):
                recent.append(line)
        count = len(recent)
        evidence = recent[-20:]
        source = "/var/log/auth.log"
    if count is None and report.has("authlog.denied"):
        reasons.append("/var/log/auth.log is not readable by the panel's user")
    if count is None:
        journal_files = report.section("journalfiles")
        if journal_files is not None and journal_files.arg.strip() == "no":
            reasons.append("there is no systemd journal")
        if not report.has("authlog") and not report.has("authlog.denied"):
            reasons.append("there is no /var/log/auth.log")
        return [judge.unknown(ids.SSH_LOGINS, f"Failed SSH logins can't be counted on {judge.server}: "
                              + "; ".join(reasons) + ".", action=action)]
    checks = judge.spec.checks
    severity = Severity.CRITICAL if count >= checks.failed_logins_critical else \
        Severity.WARNING if count >= checks.failed_logins_warning else Severity.OK
    if severity is Severity.OK:
        return [judge.result(ids.SSH_LOGINS, Severity.OK, f"{count} failed SSH login line(s) in the last hour on "
                             f"{judge.server} ({source}).", data={"count": count})]
    limit = checks.failed_logins_critical if severity is Severity.CRITICAL else checks.failed_logins_warning
    return [judge.result(ids.SSH_LOGINS, severity, f"{count} failed SSH login line(s) in the last hour on "
                         f"{judge.server} (limit {limit:g}; from {source}).", evidence=evidence, action=action,
                         data={"count": count})]


# --- firewall ---------------------------------------------------------------------------------------------


def _firewall(judge: _Judge) -> list[CheckResult]:
    report = judge.report
    action = judge.action("Show services", PAGE_SERVICES)
    rulesets: list[FirewallRules] = []
    reasons: list[str] = []
    for name, parse, label in (("nft", parse_nft_ruleset, "nft"), ("iptables", parse_iptables_save, "iptables-save")):
        if not report.has(f"{name}.rc"):
            continue
        if report.rc(name) == 0:
            rulesets.append(parse(report.body(name)))
        else:
            reasons.append(f"{label}: {report.err(name) or 'failed'}")
    if not rulesets:
        if not reasons:
            reasons.append("neither nft nor iptables-save is installed")
        return [judge.unknown(ids.FIREWALL, f"The firewall of {judge.server} can't be read: " + "; ".join(reasons)
                              + ".", action=action)]
    evidence = [f"{r.source}: {r.rules} rule(s), {r.dropping_policies} chain(s) dropping by default"
                for r in rulesets]
    if all(r.empty for r in rulesets):
        return [judge.result(ids.FIREWALL, Severity.WARNING, f"The firewall ruleset of {judge.server} is empty: "
                             "every port is open to the internet.", evidence=evidence, action=action)]
    return [judge.result(ids.FIREWALL, Severity.OK, f"{judge.server} has a firewall ruleset.", evidence=evidence)]


# --- MySQL ------------------------------------------------------------------------------------------------


def _mysql(judge: _Judge) -> list[CheckResult]:
    mysql = judge.spec.mysql
    if mysql is None:
        return []
    report = judge.report
    action = judge.action("Show services", PAGE_SERVICES)
    address = f"{mysql.host}:{mysql.port}"
    missing = report.section("mysql.missing")
    if missing is not None:
        return [judge.unknown(ids.MYSQL, f"MySQL on {judge.server} can't be checked: {missing.arg} is not "
                              "installed there.", action=action)]
    rc = report.rc("mysql")
    if rc is None:
        return [judge.unknown(ids.MYSQL, f"MySQL on {judge.server} was not checked (the script stopped early).")]
    greeting = report.body("mysql").strip()
    version = re.search(r"(\d+\.\d+\.\d+[\w.+~-]*)", greeting)
    if rc == 0 and greeting:
        return [judge.result(ids.MYSQL, Severity.OK, f"MySQL answers at {address} on {judge.server}"
                             + (f" ({version.group(1)})." if version else "."),
                             evidence=[greeting[:120]])]
    if rc == 124:
        why = "no answer within 5 s"
    elif rc == 0:
        why = "it accepted the connection but sent no greeting"
    else:
        err = report.err("mysql")
        known = re.search(r"(Connection refused|No route to host|Network is unreachable|Connection timed out|"
                          r"Name or service not known|Temporary failure in name resolution)", err)
        why = known.group(1).lower() if known else (err or f"exit status {rc}")
    return [judge.result(ids.MYSQL, Severity.CRITICAL, f"MySQL is not reachable at {address} from {judge.server}: "
                         f"{why}.", evidence=[f"tcp connect to {address}: {why}"], action=action)]


# --- downtime this week -----------------------------------------------------------------------------------


def downtime_this_week(history: BootHistory, now: dt.datetime) -> tuple[float, list[str]]:
    """Seconds off within the last 7 days, and one evidence line per period."""
    start = now - WEEK
    total = 0.0
    lines = []
    for down, up in history.down:
        clipped_down, clipped_up = max(down, start), min(up, now)
        if clipped_up <= clipped_down:
            continue
        seconds = (clipped_up - clipped_down).total_seconds()
        total += seconds
        lines.append(f"down {down:%Y-%m-%d %H:%M:%S} → up {up:%Y-%m-%d %H:%M:%S} UTC: {_duration(seconds)}")
    return total, lines


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 120:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _downtime(judge: _Judge) -> list[CheckResult]:
    report = judge.report
    action = judge.action("Show the timeline", PAGE_TIMELINE)
    now = dt.datetime.fromtimestamp(report.server_time, dt.UTC) if report.server_time else judge.now
    budget = judge.spec.checks.downtime_budget_minutes * 60
    uptime = report.uptime_seconds
    if uptime is not None and uptime >= WEEK.total_seconds():
        return [judge.result(ids.DOWNTIME, Severity.OK, f"{judge.server} has been up for the whole week "
                             f"({_duration(uptime)}).", data={"seconds": 0})]
    histories = []
    if report.has("last") and report.rc("last") == 0:
        histories.append(parse_last(report.body("last")))
    if report.has("boots") and report.rc("boots") == 0:
        histories.append(parse_list_boots(report.body("boots")))
    history = next((h for h in histories if h.boots), None)
    booted_at = now - dt.timedelta(seconds=uptime) if uptime is not None else None
    if history is None:
        sources = "wtmp (last) and the journal have no boot records" if histories else \
            "neither last nor journalctl can read a boot history"
        when = f" It booted {booted_at:%Y-%m-%d %H:%M} UTC." if booted_at else ""
        return [judge.unknown(ids.DOWNTIME, f"The downtime of {judge.server} this week can't be measured: {sources}."
                              + when, action=action)]
    total, lines = downtime_this_week(history, now)
    crashes = [c for c in history.crashes if c >= now - WEEK - dt.timedelta(days=30)]
    evidence = lines + [f"a boot at {c:%Y-%m-%d %H:%M} UTC ended in a crash: that downtime is not in the record"
                        for c in crashes]
    if history.begins and history.begins > now - WEEK:
        evidence.append(f"the record ({history.source}) only begins {history.begins:%Y-%m-%d %H:%M} UTC")
    minutes = total / 60
    if total > budget:
        return [judge.result(ids.DOWNTIME, Severity.WARNING,
                             f"{judge.server} was down {_duration(total)} this week, over the budget of "
                             f"{judge.spec.checks.downtime_budget_minutes:g} min.", evidence=evidence, action=action,
                             data={"seconds": round(total, 1), "minutes": round(minutes, 2)})]
    if crashes:
        return [judge.result(ids.DOWNTIME, Severity.WARNING, f"{judge.server} crashed this week; the downtime of a "
                             "crash is not recorded, so the budget may be exceeded.", evidence=evidence,
                             action=action, data={"seconds": round(total, 1)})]
    return [judge.result(ids.DOWNTIME, Severity.OK, f"{judge.server} was down {_duration(total)} this week "
                         f"(budget {judge.spec.checks.downtime_budget_minutes:g} min).", evidence=evidence,
                         data={"seconds": round(total, 1)})]


# --- watched files ----------------------------------------------------------------------------------------


def _files(judge: _Judge) -> tuple[list[CheckResult], WatchScan | None]:
    report = judge.report
    plan = report.plan
    action = Action("Review and accept", PAGE_ALERTS, judge.server)
    bad = [p for p in judge.spec.checks.watch_paths if not is_absolute(p)]
    results: list[CheckResult] = []
    if bad:
        results.append(judge.unknown(ids.FILES, f"watch_paths of {judge.server} must be absolute paths: "
                                     + ", ".join(bad) + "."))
    if plan is None:
        return results, None
    missing = report.section("watch.missing")
    if missing is not None:
        return [*results, judge.unknown(ids.FILES, f"Watched files can't be checked on {judge.server}: "
                                          f"{missing.arg} is not installed there.")], None
    if not report.has("watch.list"):
        return [*results, judge.unknown(ids.FILES, f"Watched files were not listed on {judge.server} "
                                          "(the script stopped early).")], None
    listing = parse_find_listing(report.body("watch.list"))
    errors = tuple(line.strip() for line in report.body("watch.err").splitlines() if line.strip())
    if report.rc("watch") not in (0, None) and not listing.entries:
        return [*results, judge.unknown(ids.FILES, f"find failed on {judge.server}: "
                                          f"{report.err('watch') or 'no output'}", evidence=list(errors))], None
    hash_missing = report.section("watch.hash.missing")
    sums = parse_sha256sums(report.body("watch.hash"))
    server_time = report.server_time or judge.now.timestamp()
    scan = merge_scan(plan, judge.inputs.baseline, listing.entries, sums, server_time, errors=errors)
    denied = [e for e in errors if "Permission denied" in e]
    notes = []
    if hash_missing is not None:
        notes.append(f"content not compared: {hash_missing.arg} is not installed")
    if denied:
        notes.append(f"{len(denied)} place(s) could not be read (permission denied)")
    if scan.unreadable:
        notes.append(f"{len(scan.unreadable)} file(s) could not be hashed")
    vanished = [e for e in errors if "No such file" in e]
    if vanished:
        notes.append("; ".join(vanished[:3]))
    if scan.initial:
        results.append(judge.result(ids.FILES, Severity.OK,
                                    f"Recorded the baseline of {len(scan.entries)} entries under "
                                    f"{', '.join(plan.paths)} on {judge.server}.", evidence=notes))
        return results, scan
    if scan.changes:
        counts = scan.counts
        summary = (f"{len(scan.changes)} change(s) under watched paths on {judge.server} since the accepted "
                   f"baseline: {counts['added']} added, {counts['removed']} removed, {counts['changed']} changed.")
        results.append(judge.result(ids.FILES, Severity.WARNING, summary,
                                    evidence=[c.line() for c in scan.changes] + notes, action=action,
                                    data={"counts": counts, "scan_time": scan.server_time}))
        return results, scan
    if denied and not listing.entries:
        results.append(judge.unknown(ids.FILES, f"Watched paths on {judge.server} could not be read: "
                                     + "; ".join(denied[:3]), evidence=notes))
        return results, scan
    adopted = f" (baseline recorded for {', '.join(scan.adopted)})" if scan.adopted else ""
    results.append(judge.result(ids.FILES, Severity.OK, f"No changes under watched paths on {judge.server} "
                                f"({len(scan.entries)} entries){adopted}.", evidence=notes))
    return results, scan


def _aide(judge: _Judge) -> list[CheckResult]:
    report = judge.report
    action = judge.action("Show the logs", PAGE_LOGS)
    if report.has("aide.nolog"):
        return [judge.unknown(ids.AIDE, f"AIDE is installed on {judge.server} but has no readable report in "
                              "/var/log/aide/aide.log yet (its daily check writes it).", action=action)]
    log = report.section("aide.log")
    if log is not None:
        text = log.body
        stamp = first_float(log.arg)
        source = "AIDE's daily report"
        if stamp:
            source += f" of {dt.datetime.fromtimestamp(stamp, dt.UTC):%Y-%m-%d %H:%M} UTC"
    elif report.has("aide.rc"):
        text = report.body("aide")
        source = "aide --check"
        if report.rc("aide") == 124:
            return [judge.unknown(ids.AIDE, f"aide --check did not finish within "
                                  f"{judge.spec.checks.aide_timeout_seconds:g} s on {judge.server}.", action=action)]
    else:
        return []  # AIDE is not installed: the panel's own watch covers the files
    parsed = parse_aide(text)
    if parsed.clean is None:
        return [judge.unknown(ids.AIDE, f"{source} on {judge.server} could not be read.",
                              evidence=list(parsed.errors) or text.splitlines()[-5:], action=action)]
    if parsed.clean:
        return [judge.result(ids.AIDE, Severity.OK, f"{source} on {judge.server}: all files match its database.")]
    return [judge.result(ids.AIDE, Severity.WARNING,
                         f"{source} on {judge.server} found differences: {parsed.added or 0} added, "
                         f"{parsed.removed or 0} removed, {parsed.changed or 0} changed.",
                         evidence=list(parsed.entries) + list(parsed.errors), action=action)]


# --- reboots ----------------------------------------------------------------------------------------------


def _reboot(judge: _Judge) -> tuple[list[CheckResult], BootRecord | None]:
    report = judge.report
    now = judge.now
    action = judge.action("Show the timeline", PAGE_TIMELINE)
    boot_id = report.boot_id
    if boot_id is None:
        return [judge.unknown(ids.REBOOT, f"The boot id of {judge.server} can't be read.")], judge.inputs.boot
    uptime = report.uptime_seconds
    booted_at = now - dt.timedelta(seconds=uptime) if uptime is not None else None
    previous = judge.inputs.boot
    if previous is None:
        record = BootRecord(boot_id, now, now, booted_at)
    elif previous.boot_id == boot_id:
        record = BootRecord(boot_id, previous.first_seen, now, booted_at or previous.booted_at, previous.unexplained,
                            previous.previous_boot_id, previous.note)
    else:
        window_start = previous.last_seen - dt.timedelta(minutes=10)
        reasons = [n for n in judge.inputs.audit if n.at >= window_start and explains_reboot(n.action)]
        if reasons:
            note = "; ".join(f"{n.action} at {n.at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC ({n.outcome})"
                             for n in reasons[:3])
            record = BootRecord(boot_id, now, now, booted_at, False, previous.boot_id, f"explained by {note}")
        else:
            record = BootRecord(boot_id, now, now, booted_at, True, previous.boot_id,
                                f"no audited reboot or unlock since {previous.last_seen:%Y-%m-%d %H:%M} UTC")
    hours = judge.spec.checks.reboot_alert_hours
    recent = uptime is not None and uptime < hours * 3600
    if record.unexplained and recent:
        when = f"{booted_at:%Y-%m-%d %H:%M} UTC" if booted_at else "recently"
        return [judge.result(ids.REBOOT, Severity.WARNING,
                             f"{judge.server} rebooted at {when} without anyone asking: its boot id changed and "
                             "the audit log has no reboot or unlock for it.",
                             evidence=[f"boot id {record.previous_boot_id} → {record.boot_id}", record.note],
                             action=action)], record
    summary = f"{judge.server} booted {booted_at:%Y-%m-%d %H:%M} UTC." if booted_at else f"{judge.server} is up."
    if record.note and not record.unexplained:
        summary += f" Its last reboot is {record.note}."
    return [judge.result(ids.REBOOT, Severity.OK, summary)], record


# --- backups (results attached to the server whose backup it is) -----------------------------------------


def backup_action(server: str) -> Action:
    return Action("Show backups", PAGE_BACKUPS, server)
