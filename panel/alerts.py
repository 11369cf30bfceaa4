"""The alert lifecycle over the local store, and one sweep of every check for the CLI and the window.

An alert is keyed by server + check id + subject ("tcp 0.0.0.0:8081"), so a repeat updates the open
alert instead of making a new one. It is *new*, then *acknowledged* by the operator, then *resolved*
when the check passes again (or, for watched files, when the operator accepts the changes). It can
be silenced for a while; a silence belongs to the key, so it outlives a resolution. Every step is
kept (``alert_events``), and the store keeps the accepted baselines of the watched paths.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from panel.store import Store, utc_now
from services.cancel import NEVER_CANCELLED, CancelToken
from services.checks import ids
from services.checks.files import Baseline, WatchScan
from services.checks.host import AuditNote, BootRecord, HostInputs
from services.checks.model import Action, CheckResult, Severity, worst
from services.checks.parsers import FileEntry
from services.checks.sweep import ServerTarget, SweepRequest, SweepResult, run_sweep
from services.checks.vendors import VendorKeys
from services.errors import PanelError

if TYPE_CHECKING:
    from panel.context import PanelContext
    from panel.secrets import SecretStore

NEW = "new"
ACKNOWLEDGED = "acknowledged"
RESOLVED = "resolved"
LAST_LOOKED_KEY = "alerts.last_looked"
INTERVAL_KEY = "alerts.interval_seconds"
DEFAULT_INTERVAL_SECONDS = 300
BOOT_KEY = "checks.boot."
# Checks whose evidence is the news itself: a new line there re-opens an acknowledged alert.
EVIDENCE_MATTERS = frozenset({ids.FILES, ids.AIDE})


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def _time(text: object) -> dt.datetime | None:
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Alert:
    id: int
    server: str
    check: str
    subject: str
    severity: Severity
    summary: str
    evidence: tuple[str, ...]
    action: Action | None
    status: str
    first_seen: dt.datetime
    last_seen: dt.datetime
    changed_at: dt.datetime
    acknowledged_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    resolution: str = ""
    occurrences: int = 1
    silenced_until: dt.datetime | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.server, self.check, self.subject)

    @property
    def is_open(self) -> bool:
        return self.status != RESOLVED

    def silenced(self, now: dt.datetime | None = None) -> bool:
        return self.silenced_until is not None and self.silenced_until > (now or utc_now())

    @property
    def display_status(self) -> str:
        if self.status != RESOLVED and self.silenced():
            return "silenced"
        return self.status

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "server": self.server or None,
            "check": self.check,
            "subject": self.subject,
            "severity": str(self.severity),
            "summary": self.summary,
            "evidence": list(self.evidence),
            "action": self.action.to_json() if self.action else None,
            "status": self.display_status,
            "first_seen": _iso(self.first_seen),
            "last_seen": _iso(self.last_seen),
            "silenced_until": _iso(self.silenced_until) if self.silenced_until else None,
        }


@dataclass
class Recorded:
    """What one sweep did to the alert history."""

    opened: list[Alert] = field(default_factory=list)
    escalated: list[Alert] = field(default_factory=list)  # severity went up (or new evidence): back to "new"
    resolved: list[Alert] = field(default_factory=list)
    current: list[Alert] = field(default_factory=list)  # every alert this sweep reported

    def needs_notice(self, now: dt.datetime | None = None) -> list[Alert]:
        """New or escalated CRITICAL alerts that are not silenced: worth a desktop notification."""
        return [a for a in self.opened + self.escalated if a.severity is Severity.CRITICAL and not a.silenced(now)]


@dataclass(frozen=True)
class LookBack:
    """What changed since the operator last looked at the Alerts page."""

    since: dt.datetime | None
    opened: tuple[Alert, ...] = ()
    changed: tuple[Alert, ...] = ()
    resolved: tuple[Alert, ...] = ()

    def text(self) -> str:
        if self.since is None:
            return "First look: every open alert is new to you."
        when = self.since.astimezone().strftime("%Y-%m-%d %H:%M")
        if not (self.opened or self.changed or self.resolved):
            return f"Nothing changed since you last looked ({when})."
        parts = []
        if self.opened:
            parts.append(f"{len(self.opened)} new")
        if self.changed:
            parts.append(f"{len(self.changed)} changed")
        if self.resolved:
            parts.append(f"{len(self.resolved)} resolved")
        return f"Since you last looked ({when}): " + ", ".join(parts) + "."


@dataclass(frozen=True)
class PendingChanges:
    """Changes under a server's watched paths that wait for the operator's acceptance."""

    server: str
    scan_id: str
    scanned_at: dt.datetime
    server_time: float
    paths: tuple[str, ...]
    lines: tuple[str, ...]
    counts: dict[str, int]


@dataclass(frozen=True)
class AcceptResult:
    server: str
    accepted: int
    counts: dict[str, int]
    scan_id: str


_ALERT_COLUMNS = ("id, server, check_id, subject, severity, summary, evidence, action, status, first_seen, "
                  "last_seen, changed_at, acknowledged_at, resolved_at, resolution, occurrences")


def _action_json(action: Action | None) -> str | None:
    return json.dumps(action.to_json()) if action else None


def _action_from(text: object) -> Action | None:
    if not text:
        return None
    try:
        data = json.loads(str(text))
        return Action(str(data["title"]), str(data["page"]), data.get("argument"))
    except (ValueError, KeyError, TypeError):
        return None


class AlertBook:
    """The alert history and the baselines, over a :class:`Store`. Thread-safe (the store is)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- reading --------------------------------------------------------------------------------------

    def _silences(self, now: dt.datetime) -> dict[tuple[str, str, str], dt.datetime]:
        rows = self.store.query("SELECT server, check_id, subject, until FROM alert_silences WHERE until > ?",
                                (_iso(now),))
        result = {}
        for server, check, subject, until in rows:
            moment = _time(until)
            if moment is not None:
                result[(str(server), str(check), str(subject))] = moment
        return result

    def _alert(self, row: Sequence[object], silences: dict[tuple[str, str, str], dt.datetime]) -> Alert:
        (alert_id, server, check, subject, severity, summary, evidence, action, status, first_seen, last_seen,
         changed_at, acknowledged_at, resolved_at, resolution, occurrences) = row
        try:
            lines = tuple(str(line) for line in json.loads(str(evidence)))
        except ValueError:
            lines = ()
        key = (str(server), str(check), str(subject))
        first = _time(first_seen) or utc_now()
        return Alert(
            id=int(str(alert_id)), server=key[0], check=key[1], subject=key[2],
            severity=Severity.parse(str(severity)), summary=str(summary), evidence=lines,
            action=_action_from(action), status=str(status), first_seen=first,
            last_seen=_time(last_seen) or first, changed_at=_time(changed_at) or first,
            acknowledged_at=_time(acknowledged_at), resolved_at=_time(resolved_at), resolution=str(resolution),
            occurrences=int(str(occurrences)), silenced_until=silences.get(key),
        )

    def alerts(self, *, include_resolved: bool = False, limit: int = 2000, now: dt.datetime | None = None
               ) -> list[Alert]:
        """Open alerts (and with ``include_resolved`` the history too), newest first."""
        where = "" if include_resolved else "WHERE status != 'resolved'"
        rows = self.store.query(f"SELECT {_ALERT_COLUMNS} FROM alerts {where} ORDER BY id DESC LIMIT ?",  # noqa: S608
                                (limit,))
        silences = self._silences(now or utc_now())
        return [self._alert(row, silences) for row in rows]

    def open_alerts(self, now: dt.datetime | None = None) -> list[Alert]:
        return self.alerts(now=now)

    def get(self, alert_id: int) -> Alert | None:
        rows = self.store.query(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE id = ?", (alert_id,))  # noqa: S608
        return self._alert(rows[0], self._silences(utc_now())) if rows else None

    def events(self, alert_id: int) -> list[tuple[dt.datetime, str, str]]:
        rows = self.store.query("SELECT at, kind, detail FROM alert_events WHERE alert_id = ? ORDER BY id",
                                (alert_id,))
        return [(_time(at) or utc_now(), str(kind), str(detail)) for at, kind, detail in rows]

    def summary(self, now: dt.datetime | None = None) -> tuple[Severity, int]:
        """The worst severity and the count of open alerts that are not silenced (for the tray)."""
        live = [a for a in self.open_alerts(now) if not a.silenced(now)]
        return worst(a.severity for a in live), len(live)

    # --- recording a sweep ----------------------------------------------------------------------------

    def record(self, results: Iterable[CheckResult], *, now: dt.datetime | None = None) -> Recorded:
        """Fold one sweep's results into the history: open, update, escalate and resolve alerts.

        A (server, check) that reported anything and did not fail outright (an UNKNOWN without a
        subject) is "covered": its open alerts that it no longer reports are resolved. Alerts of a
        check that could not run stay open as they were.
        """
        now = now or utc_now()
        stamp = _iso(now)
        results = list(results)
        alerts: dict[tuple[str, str, str], CheckResult] = {}
        for result in results:
            if result.is_alert:
                previous = alerts.get(result.key)
                if previous is None or result.severity.rank > previous.severity.rank:
                    alerts[result.key] = result
        covered = {(r.server, r.check) for r in results}
        blocked = {(r.server, r.check) for r in results if r.severity is Severity.UNKNOWN and not r.subject}
        opened_ids: list[int] = []
        escalated_ids: list[int] = []
        resolved_ids: list[int] = []
        current_ids: list[int] = []
        with self.store.transaction() as db:
            rows = db.execute(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE status != 'resolved'").fetchall()  # noqa: S608
            existing = {(str(r[1]), str(r[2]), str(r[3])): r for r in rows}
            for key, result in alerts.items():
                evidence = json.dumps(list(result.evidence))
                row = existing.get(key)
                if row is None:
                    cursor = db.execute(
                        "INSERT INTO alerts (server, check_id, subject, severity, summary, evidence, action, status, "
                        "first_seen, last_seen, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'new', ?, ?, ?)",
                        (*key, str(result.severity), result.summary, evidence, _action_json(result.action), stamp,
                         stamp, stamp))
                    alert_id = int(cursor.lastrowid or 0)
                    db.execute("INSERT INTO alert_events (alert_id, at, kind, detail) VALUES (?, ?, 'opened', ?)",
                               (alert_id, stamp, f"{result.severity}: {result.summary}"))
                    opened_ids.append(alert_id)
                    current_ids.append(alert_id)
                    continue
                alert_id = int(str(row[0]))
                old_severity = Severity.parse(str(row[4]))
                status = str(row[8])
                changed_at = str(row[11])
                kind = ""
                if result.severity.rank > old_severity.rank:
                    kind = "escalated"
                elif result.severity.rank < old_severity.rank:
                    kind = "eased"
                elif result.check in EVIDENCE_MATTERS and evidence != str(row[6]):
                    kind = "changed"
                if kind:
                    changed_at = stamp
                    db.execute("INSERT INTO alert_events (alert_id, at, kind, detail) VALUES (?, ?, ?, ?)",
                               (alert_id, stamp, kind, f"{old_severity} → {result.severity}: {result.summary}"))
                    if kind in ("escalated", "changed"):
                        status = NEW
                        escalated_ids.append(alert_id)
                db.execute(
                    "UPDATE alerts SET severity = ?, summary = ?, evidence = ?, action = ?, status = ?, last_seen = ?, "
                    "changed_at = ?, occurrences = occurrences + 1 WHERE id = ?",
                    (str(result.severity), result.summary, evidence, _action_json(result.action), status, stamp,
                     changed_at, alert_id))
                current_ids.append(alert_id)
            for key, row in existing.items():
                pair = (key[0], key[1])
                if key in alerts or pair not in covered or pair in blocked:
                    continue
                alert_id = int(str(row[0]))
                db.execute("UPDATE alerts SET status = 'resolved', resolved_at = ?, changed_at = ?, "
                           "resolution = 'cleared' WHERE id = ?", (stamp, stamp, alert_id))
                db.execute("INSERT INTO alert_events (alert_id, at, kind, detail) VALUES (?, ?, 'resolved', ?)",
                           (alert_id, stamp, "the check passed"))
                resolved_ids.append(alert_id)
        by_id = {a.id: a for a in self.alerts(include_resolved=True, limit=100000, now=now)
                 if a.id in set(opened_ids + escalated_ids + resolved_ids + current_ids)}
        return Recorded(
            opened=[by_id[i] for i in opened_ids if i in by_id],
            escalated=[by_id[i] for i in escalated_ids if i in by_id],
            resolved=[by_id[i] for i in resolved_ids if i in by_id],
            current=[by_id[i] for i in current_ids if i in by_id],
        )

    def resolve_gone_servers(self, servers: Iterable[str], *, now: dt.datetime | None = None) -> list[int]:
        """Resolve the open alerts of servers that are no longer in the inventory."""
        known = set(servers)
        stamp = _iso(now or utc_now())
        gone = []
        with self.store.transaction() as db:
            for alert_id, server in db.execute("SELECT id, server FROM alerts WHERE status != 'resolved' AND "
                                               "server != ''").fetchall():
                if str(server) in known:
                    continue
                db.execute("UPDATE alerts SET status = 'resolved', resolved_at = ?, changed_at = ?, "
                           "resolution = 'server removed' WHERE id = ?", (stamp, stamp, alert_id))
                self._event(db, int(alert_id), "resolved", f"{server} is no longer in the inventory", stamp)
                gone.append(int(alert_id))
        return gone

    def record_run(self, sweep: SweepResult, recorded: Recorded) -> None:
        self.store.execute(
            "INSERT INTO check_runs (started_at, finished_at, servers, worst, alerts, opened, resolved) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (_iso(sweep.started_at), _iso(sweep.finished_at), json.dumps(sorted(sweep.servers)), str(sweep.worst),
             len(sweep.alerts), len(recorded.opened), len(recorded.resolved)))

    def last_run(self) -> dt.datetime | None:
        rows = self.store.query("SELECT finished_at FROM check_runs ORDER BY id DESC LIMIT 1")
        return _time(rows[0][0]) if rows else None

    # --- the operator's steps -------------------------------------------------------------------------

    def _event(self, db: Any, alert_id: int, kind: str, detail: str, stamp: str) -> None:
        db.execute("INSERT INTO alert_events (alert_id, at, kind, detail) VALUES (?, ?, ?, ?)",
                   (alert_id, stamp, kind, detail))

    def acknowledge(self, alert_id: int, *, now: dt.datetime | None = None) -> Alert:
        """"I have seen it": the alert stays open (and in the count) until its check passes."""
        stamp = _iso(now or utc_now())
        alert = self.get(alert_id)
        if alert is None:
            raise PanelError(f"There is no alert number {alert_id}.")
        if alert.status == NEW:
            with self.store.transaction() as db:
                db.execute("UPDATE alerts SET status = 'acknowledged', acknowledged_at = ? WHERE id = ?",
                           (stamp, alert_id))
                self._event(db, alert_id, "acknowledged", "by the operator", stamp)
            self.store.audit("alert.acknowledge", alert.server or "-", "ok", f"{alert.check} {alert.subject}".strip())
        return self.get(alert_id) or alert

    def silence(self, alert_id: int, until: dt.datetime, *, reason: str = "", now: dt.datetime | None = None
                ) -> Alert:
        """Hide the alert (and its repeats, by key) from the tray, notifications and the exit status until
        ``until``. It stays in the history."""
        now = now or utc_now()
        alert = self.get(alert_id)
        if alert is None:
            raise PanelError(f"There is no alert number {alert_id}.")
        if until <= now:
            raise PanelError("A silence must end in the future.")
        stamp = _iso(now)
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO alert_silences (server, check_id, subject, until, reason, created_at) VALUES "
                "(?, ?, ?, ?, ?, ?) ON CONFLICT(server, check_id, subject) DO UPDATE SET until = excluded.until, "
                "reason = excluded.reason, created_at = excluded.created_at",
                (*alert.key, _iso(until), reason, stamp))
            self._event(db, alert_id, "silenced", f"until {_iso(until)}" + (f": {reason}" if reason else ""), stamp)
        self.store.audit("alert.silence", alert.server or "-", "ok",
                         f"{alert.check} {alert.subject} until {_iso(until)}".strip())
        return self.get(alert_id) or alert

    def unsilence(self, alert_id: int, *, now: dt.datetime | None = None) -> Alert:
        alert = self.get(alert_id)
        if alert is None:
            raise PanelError(f"There is no alert number {alert_id}.")
        stamp = _iso(now or utc_now())
        with self.store.transaction() as db:
            db.execute("DELETE FROM alert_silences WHERE server = ? AND check_id = ? AND subject = ?", alert.key)
            self._event(db, alert_id, "unsilenced", "by the operator", stamp)
        return self.get(alert_id) or alert

    def silenced_keys(self, now: dt.datetime | None = None) -> set[tuple[str, str, str]]:
        return set(self._silences(now or utc_now()))

    # --- what changed since the operator last looked --------------------------------------------------

    def last_looked(self) -> dt.datetime | None:
        return _time(self.store.get_value(LAST_LOOKED_KEY))

    def mark_looked(self, now: dt.datetime | None = None) -> None:
        self.store.set_value(LAST_LOOKED_KEY, _iso(now or utc_now()))

    def changes_since(self, since: dt.datetime | None) -> LookBack:
        if since is None:
            return LookBack(None, tuple(self.open_alerts()))
        stamp = _iso(since)
        rows = self.store.query(
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE first_seen > ? OR changed_at > ? OR resolved_at > ? "  # noqa: S608
            "ORDER BY id DESC LIMIT 2000", (stamp, stamp, stamp))
        silences = self._silences(utc_now())
        alerts = [self._alert(row, silences) for row in rows]
        opened = tuple(a for a in alerts if a.first_seen > since and a.is_open)
        resolved = tuple(a for a in alerts if a.resolved_at is not None and a.resolved_at > since)
        changed = tuple(a for a in alerts if a.is_open and a.first_seen <= since and a.changed_at > since)
        return LookBack(since, opened, changed, resolved)

    # --- the interval of the background sweep ----------------------------------------------------------

    def interval_seconds(self) -> int:
        value = self.store.get_value(INTERVAL_KEY)
        try:
            return max(30, int(value)) if value else DEFAULT_INTERVAL_SECONDS
        except ValueError:
            return DEFAULT_INTERVAL_SECONDS

    def set_interval_seconds(self, seconds: int) -> None:
        self.store.set_value(INTERVAL_KEY, str(max(30, int(seconds))))

    # --- boots -----------------------------------------------------------------------------------------

    def boot_record(self, server: str) -> BootRecord | None:
        text = self.store.get_value(BOOT_KEY + server)
        if not text:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return None
        return BootRecord.from_json(data) if isinstance(data, dict) else None

    def save_boot_record(self, server: str, record: BootRecord) -> None:
        self.store.set_value(BOOT_KEY + server, json.dumps(record.to_json()))

    def reboot_audit(self, server: str, since: dt.datetime) -> tuple[AuditNote, ...]:
        """Audited unlocks and reboots of ``server`` since ``since``: what explains a new boot id."""
        rows = self.store.query(
            "SELECT at, action, outcome FROM audit WHERE (target = ? OR target LIKE ?) AND at >= ? "
            "AND (action LIKE 'unlock%' OR action LIKE '%reboot%') ORDER BY id",
            (server, f"{server}/%", _iso(since - dt.timedelta(minutes=10))))
        notes = []
        for at, action, outcome in rows:
            moment = _time(at)
            if moment is not None:
                notes.append(AuditNote(moment, str(action), str(outcome)))
        return tuple(notes)

    # --- baselines of the watched paths ------------------------------------------------------------------

    def baseline(self, server: str) -> Baseline | None:
        rows = self.store.query("SELECT paths, server_time, scan_id FROM watch_baselines WHERE server = ?", (server,))
        if not rows:
            return None
        paths, server_time, scan_id = rows[0]
        entries = {}
        for path, kind, mode, owner, group, size, sha, link, mtime, ctime in self.store.query(
                "SELECT path, kind, mode, owner, grp, size, sha256, link, mtime, ctime FROM watch_files "
                "WHERE server = ?", (server,)):
            entries[str(path)] = FileEntry(str(path), str(kind), str(mode), str(owner), str(group), int(str(size)),
                                           str(sha) if sha else None, str(link), float(str(mtime)),
                                           float(str(ctime)))
        return Baseline(tuple(json.loads(str(paths))), entries, float(str(server_time)), str(scan_id))

    def pending(self, server: str) -> PendingChanges | None:
        rows = self.store.query("SELECT scan_id, scanned_at, server_time, paths, changes FROM watch_pending "
                                "WHERE server = ?", (server,))
        if not rows:
            return None
        scan_id, scanned_at, server_time, paths, changes = rows[0]
        items = json.loads(str(changes))
        counts = {"added": 0, "removed": 0, "changed": 0}
        for item in items:
            counts[item["kind"]] = counts.get(item["kind"], 0) + 1
        return PendingChanges(server, str(scan_id), _time(scanned_at) or utc_now(), float(str(server_time)),
                              tuple(json.loads(str(paths))), tuple(str(i["line"]) for i in items), counts)

    @staticmethod
    def _file_row(server: str, entry: FileEntry) -> tuple[object, ...]:
        return (server, entry.path, entry.kind, entry.mode, entry.owner, entry.group, entry.size, entry.sha256,
                entry.link, entry.mtime, entry.ctime)

    def save_scan(self, server: str, scan: WatchScan, *, now: dt.datetime | None = None) -> str:
        """Store one scan: the first one becomes the baseline; newly watched paths join it at once; the
        changes of the others wait for acceptance. Returns the scan id."""
        stamp = _iso(now or utc_now())
        scan_id = scan.scan_id or uuid.uuid4().hex[:12]
        insert = ("INSERT OR REPLACE INTO watch_files (server, path, kind, mode, owner, grp, size, sha256, link, "
                  "mtime, ctime) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        with self.store.transaction() as db:
            if scan.initial:
                db.execute("DELETE FROM watch_files WHERE server = ?", (server,))
                db.executemany(insert, [self._file_row(server, e) for e in scan.entries.values()])
                db.execute("INSERT OR REPLACE INTO watch_baselines (server, paths, server_time, recorded_at, scan_id, "
                           "origin) VALUES (?, ?, ?, ?, ?, 'initial')",
                           (server, json.dumps(list(scan.paths)), scan.server_time, stamp, scan_id))
                db.execute("DELETE FROM watch_pending WHERE server = ?", (server,))
                return scan_id
            from services.checks.files import under

            row = db.execute("SELECT paths FROM watch_baselines WHERE server = ?", (server,)).fetchone()
            old_paths = tuple(json.loads(str(row[0]))) if row else ()
            if scan.adopted or set(old_paths) != set(scan.paths):
                # paths no longer watched leave the baseline; newly watched ones join it as they are now
                for gone in set(old_paths) - set(scan.paths):
                    prefix = gone.rstrip("/") + "/"
                    db.execute("DELETE FROM watch_files WHERE server = ? AND (path = ? OR substr(path, 1, ?) = ?)",
                               (server, gone, len(prefix), prefix))
                adopted = [e for e in scan.entries.values() if any(under(e.path, p) for p in scan.adopted)]
                db.executemany(insert, [self._file_row(server, e) for e in adopted])
                db.execute("UPDATE watch_baselines SET paths = ? WHERE server = ?",
                           (json.dumps(list(scan.paths)), server))
            if scan.changes:
                changes = [{"path": c.path, "kind": c.kind, "details": list(c.details), "line": c.line()}
                           for c in scan.changes]
                entries = {c.path: (list(self._file_row(server, c.after))[1:] if c.after else None)
                           for c in scan.changes}
                db.execute("INSERT OR REPLACE INTO watch_pending (server, scan_id, scanned_at, server_time, paths, "
                           "changes, entries) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (server, scan_id, stamp, scan.server_time, json.dumps(list(scan.paths)),
                            json.dumps(changes), json.dumps(entries)))
            else:
                db.execute("DELETE FROM watch_pending WHERE server = ?", (server,))
        return scan_id

    def accept(self, server: str, *, scan_id: str | None = None, now: dt.datetime | None = None) -> AcceptResult:
        """Make the last scan's state of ``server``'s watched paths the accepted baseline. Audited.

        With ``scan_id`` (what the operator reviewed), a newer scan with other changes is refused.
        """
        stamp = _iso(now or utc_now())
        with self.store.transaction() as db:
            row = db.execute("SELECT scan_id, server_time, paths, changes, entries FROM watch_pending "
                             "WHERE server = ?", (server,)).fetchone()
            if row is not None:
                pending_id, server_time, paths, changes, entries = row
                if scan_id is not None and scan_id != pending_id:
                    raise PanelError(f"New changes arrived on {server} since you reviewed them; review them again "
                                     "before accepting.")
                items = json.loads(str(changes))
                self._apply(db, server, json.loads(str(entries)))
                db.execute("UPDATE watch_baselines SET server_time = ?, recorded_at = ?, scan_id = ?, paths = ?, "
                           "origin = 'accepted' WHERE server = ?", (server_time, stamp, pending_id, paths, server))
                db.execute("DELETE FROM watch_pending WHERE server = ?", (server,))
                open_rows = db.execute("SELECT id FROM alerts WHERE server = ? AND check_id = ? AND "
                                       "status != 'resolved'", (server, ids.FILES)).fetchall()
                for (alert_id,) in open_rows:
                    db.execute("UPDATE alerts SET status = 'resolved', resolved_at = ?, changed_at = ?, "
                               "resolution = 'accepted' WHERE id = ?", (stamp, stamp, alert_id))
                    self._event(db, int(alert_id), "resolved", "the operator accepted the changes", stamp)
        if row is None:
            self.store.audit("checks.accept", server, "refused", "no changes waiting for acceptance")
            raise PanelError(f"There are no file changes waiting for acceptance on {server}. Run the checks first.")
        counts = {"added": 0, "removed": 0, "changed": 0}
        for item in items:
            counts[item["kind"]] = counts.get(item["kind"], 0) + 1
        detail = (f"accepted {len(items)} change(s) under watched paths: {counts['added']} added, "
                  f"{counts['removed']} removed, {counts['changed']} changed (scan {pending_id})")
        self.store.audit("checks.accept", server, "ok", detail)
        return AcceptResult(server, len(items), counts, str(pending_id))

    @staticmethod
    def _apply(db: Any, server: str, entries: dict[str, Any]) -> None:
        for path, values in entries.items():
            if values is None:
                db.execute("DELETE FROM watch_files WHERE server = ? AND path = ?", (server, path))
            else:
                db.execute("INSERT OR REPLACE INTO watch_files (server, path, kind, mode, owner, grp, size, sha256, "
                           "link, mtime, ctime) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (server, *values))

    # --- after a sweep -----------------------------------------------------------------------------------

    def store_outcomes(self, sweep: SweepResult, *, now: dt.datetime | None = None) -> None:
        """Keep each server's watched-file scan and boot record."""
        for name, outcome in sweep.servers.items():
            if outcome.scan is not None:
                self.save_scan(name, outcome.scan, now=now)
            if outcome.boot is not None:
                self.save_boot_record(name, outcome.boot)


# --- one sweep, for the CLI and the window ---------------------------------------------------------------


def vendor_keys(secrets: SecretStore) -> VendorKeys:
    """The API keys present (the vendor's environment variable wins, else the keyring)."""
    return VendorKeys(stripe=secrets.api_key("stripe"), mailgun=secrets.api_key("mailgun"),
                      cloudflare=secrets.api_key("cloudflare"))


def build_request(context: PanelContext, book: AlertBook, *, servers: Sequence[str] | None = None,
                  keys: VendorKeys | None = None, vendors: bool = True, tls: bool = True) -> SweepRequest:
    names = list(servers) if servers is not None else list(context.inventory.servers)
    targets = []
    for name in names:
        spec = context.spec(name)
        boot = book.boot_record(name)
        audit = book.reboot_audit(name, boot.last_seen) if boot is not None else ()
        inputs = HostInputs(baseline=book.baseline(name), boot=boot, audit=audit)

        def probe(cancel: CancelToken, name: str = name) -> Any:
            return context.probe(name, cancel=cancel)

        targets.append(ServerTarget(spec, context.runner(name), inputs, probe))
    return SweepRequest(
        inventory=context.inventory,
        servers=tuple(targets),
        keys=keys if keys is not None else (vendor_keys(context.secrets) if vendors else VendorKeys()),
        runner_for=context.runner,
        vendors=vendors,
        tls=tls,
    )


@dataclass
class CheckRun:
    """A sweep and what it did to the history."""

    sweep: SweepResult
    recorded: Recorded
    silenced: set[tuple[str, str, str]]

    @property
    def alerts(self) -> list[CheckResult]:
        return sorted(self.sweep.alerts, key=lambda r: (-r.severity.rank, r.server, r.check, r.subject))

    def is_silenced(self, result: CheckResult) -> bool:
        return result.key in self.silenced

    @property
    def exit_code(self) -> int:
        """0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN: the worst alert that is not silenced."""
        return worst(r.severity for r in self.sweep.alerts if not self.is_silenced(r)).exit_code


def run_checks(context: PanelContext, *, servers: Sequence[str] | None = None, keys: VendorKeys | None = None,
               vendors: bool = True, tls: bool = True, book: AlertBook | None = None,
               cancel: CancelToken = NEVER_CANCELLED) -> CheckRun:
    """Run every check once and record it: the one entry point of ``panel check`` and the window's poll."""
    book = book or AlertBook(context.store)
    request = build_request(context, book, servers=servers, keys=keys, vendors=vendors, tls=tls)
    sweep = run_sweep(request, cancel=cancel)
    book.store_outcomes(sweep)
    recorded = book.record(sweep.results, now=sweep.finished_at)
    if servers is None:
        book.resolve_gone_servers(context.inventory.servers, now=sweep.finished_at)
    book.record_run(sweep, recorded)
    return CheckRun(sweep, recorded, book.silenced_keys())
