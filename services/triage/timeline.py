"""One timeline of what happened across the fleet and the outside services, in time order.

Each source is a :class:`TimelineProvider`: a name and a function ``fetch(since, until, cancel)``
that returns :class:`TimelineEvent` lists. :func:`collect_timeline` runs them side by side and
merges them; a provider that fails gives one "source unavailable" event, never an exception.

Sources: reboots (``journalctl --list-boots``, else ``last -x``), unlocks and the operator's own
actions (the audit log), alerts raised and resolved and watched-file changes (the alerts store,
when that feature is installed), backups (rdiff-backup sessions, when ``services.backups`` is),
Cloudflare security-level changes and Stripe payment failures (``services.cloudflare`` /
``services.stripe``). The store and the keyring come in as plain callables: ``services`` imports
nothing from ``panel``.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from services.cancel import NEVER_CANCELLED, CancelToken
from services.errors import Cancelled, PanelError
from services.runner import CommandRunner
from services.triage.remote import q, script_head

UTC = dt.UTC
UNAVAILABLE = "source unavailable"


@dataclass(frozen=True, order=True)
class TimelineEvent:
    at: dt.datetime  # aware, UTC
    source: str  # "reboots", "unlocks", "audit", "alerts", "changes", "backups", "cloudflare", "stripe"
    server: str  # "" for the outside services and the fleet as a whole
    kind: str  # "reboot", "shutdown", "unlocked", "alert raised", "payment failed", UNAVAILABLE …
    summary: str
    severity: str = field(default="", compare=False)  # "CRITICAL", "WARNING", "INFO" or ""

    @property
    def unavailable(self) -> bool:
        return self.kind == UNAVAILABLE


Fetch = Callable[[dt.datetime, dt.datetime, CancelToken], list[TimelineEvent]]


@dataclass(frozen=True)
class TimelineProvider:
    source: str
    fetch: Fetch
    server: str = ""

    @property
    def label(self) -> str:
        return f"{self.source} of {self.server}" if self.server else self.source


@dataclass(frozen=True)
class Timeline:
    events: tuple[TimelineEvent, ...]  # oldest first
    sources: tuple[str, ...]  # the providers that were asked
    skipped: tuple[str, ...] = ()  # sources this installation doesn't have, with why

    @property
    def unavailable(self) -> list[TimelineEvent]:
        return [e for e in self.events if e.unavailable]


def unavailable_event(provider: TimelineProvider, error: BaseException, at: dt.datetime) -> TimelineEvent:
    reason = str(error) if isinstance(error, PanelError) else f"{error.__class__.__name__}: {error}"
    return TimelineEvent(at, provider.source, provider.server, UNAVAILABLE,
                         f"{provider.label} could not be read: {reason}", "WARNING")


def collect_timeline(
    providers: Sequence[TimelineProvider],
    *,
    since: dt.datetime,
    until: dt.datetime | None = None,
    skipped: Sequence[str] = (),
    max_workers: int = 8,
    cancel: CancelToken = NEVER_CANCELLED,
) -> Timeline:
    """Ask every provider at once; merge their events oldest first, keeping only those in [since, until]."""
    until = until or dt.datetime.now(UTC)
    if not providers:
        return Timeline((), (), tuple(skipped))

    def run(provider: TimelineProvider) -> list[TimelineEvent]:
        try:
            cancel.raise_if_cancelled("Reading the timeline")
            events = provider.fetch(since, until, cancel)
            return [e for e in events if since <= e.at <= until]
        except Cancelled:
            raise
        except Exception as error:  # one source failing never takes the timeline down
            return [unavailable_event(provider, error, until)]

    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(providers))),
                            thread_name_prefix="timeline") as pool:
        results = list(pool.map(run, providers))
    cancel.raise_if_cancelled("Reading the timeline")
    events = sorted(e for result in results for e in result)
    return Timeline(tuple(events), tuple(p.label for p in providers), tuple(skipped))


# --- reboots -----------------------------------------------------------------------------------------

_BOOT_LINE = re.compile(
    r"^\s*(-?\d+)\s+([0-9a-f]{32})\s+(?:\w{3}\s+)?(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\s+(\S+)"
    r"\s*(?:—|-|–)?\s*(?:\w{3}\s+)?(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)?"
)
_ISO_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:,\d+)?(?:[+-]\d\d:?\d\d|Z)?")
_CTIME = re.compile(r"\w{3} (\w{3})\s+(\d{1,2}) (\d\d):(\d\d):(\d\d) (\d{4})")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


@dataclass(frozen=True)
class Boot:
    index: int
    boot_id: str
    first: dt.datetime
    last: dt.datetime | None


def parse_list_boots(text: str) -> list[Boot]:
    """``journalctl --list-boots`` (run with TZ=UTC): JSON where supported (systemd 251+), else the table."""
    stripped = text.strip()
    boots: list[Boot] = []
    if stripped.startswith("["):
        try:
            raw = json.loads(stripped)
        except ValueError:
            raw = []
        for item in raw if isinstance(raw, list) else []:
            if not isinstance(item, dict) or not isinstance(item.get("first_entry"), int):
                continue
            last = item.get("last_entry")
            boots.append(Boot(int(item.get("index", 0)), str(item.get("boot_id", "")),
                              dt.datetime.fromtimestamp(item["first_entry"] / 1e6, UTC),
                              dt.datetime.fromtimestamp(last / 1e6, UTC) if isinstance(last, int) else None))
        return boots
    for line in stripped.splitlines():
        match = _BOOT_LINE.match(line)
        if not match:
            continue
        index, boot_id, first, _zone, last = match.groups()
        boots.append(Boot(int(index), boot_id, _utc(first),
                          _utc(last) if last else None))
    return boots


def _utc(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def _stamp(text: str) -> dt.datetime | None:
    if match := _ISO_STAMP.search(text):
        value = match.group(0).replace(",", ".")
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(UTC)
    if match := _CTIME.search(text):
        month, day, hour, minute, second, year = match.groups()
        if month.lower() in _MONTHS:
            return dt.datetime(int(year), _MONTHS.index(month.lower()) + 1, int(day), int(hour), int(minute),
                               int(second), tzinfo=UTC)
    return None


def parse_last(text: str) -> list[tuple[dt.datetime, str, str]]:
    """``last -x reboot shutdown`` (``--time-format iso`` or ``-F``, run with TZ=UTC):
    ``(at, "reboot"|"shutdown", kernel)`` for each record."""
    records = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4 or parts[0] not in ("reboot", "shutdown") or parts[1] != "system":
            continue
        at = _stamp(line)
        if at is None:
            continue
        records.append((at, parts[0], parts[3]))
    return records


def boot_events(
    runner: CommandRunner,
    server: str,
    *,
    path_prefix: str = "",
    wtmp: str | None = None,
    timeout: float = 30.0,
    cancel: CancelToken = NEVER_CANCELLED,
) -> list[TimelineEvent]:
    """Reboots and shutdowns of ``server``: the journal's boots, else wtmp's (``last -x``). One round trip."""
    marker = "@@panel-boots"
    wtmp_option = f"-f {q(wtmp)} " if wtmp else ""
    script = script_head(path_prefix) + f"""if command -v journalctl >/dev/null 2>&1; then
  journalctl --list-boots --no-pager -o json 2>/dev/null
fi
echo {marker}
if command -v last >/dev/null 2>&1; then
  last -x --time-format iso {wtmp_option}reboot shutdown 2>/dev/null \\
    || last -x -F {wtmp_option}reboot shutdown 2>/dev/null
fi
"""
    result = runner.run_script(script, timeout=timeout, cancel=cancel)
    journal_text, _, last_text = result.text().partition(marker)
    boots = parse_list_boots(journal_text)
    events: list[TimelineEvent] = []
    if boots:
        ordered = sorted(boots, key=lambda b: b.first)
        for number, boot in enumerate(ordered):
            if number > 0 and ordered[number - 1].last is not None:
                previous = ordered[number - 1]
                assert previous.last is not None
                events.append(TimelineEvent(previous.last, "reboots", server, "shutdown",
                                            f"{server}: last log entry of boot {previous.boot_id[:8]} "
                                            "(shut down or crashed)", "INFO"))
            events.append(TimelineEvent(boot.first, "reboots", server, "reboot",
                                        f"{server} booted (boot {boot.boot_id[:8]})", "WARNING"))
        return events
    for at, kind, kernel in parse_last(last_text):
        summary = f"{server} booted ({kernel})" if kind == "reboot" else f"{server} shut down"
        events.append(TimelineEvent(at, "reboots", server, kind, summary, "WARNING" if kind == "reboot" else "INFO"))
    return sorted(events)


def boots_provider(runner_for: Callable[[str], CommandRunner], server: str, *, path_prefix: str = "",
                   wtmp: str | None = None) -> TimelineProvider:
    def fetch(since: dt.datetime, until: dt.datetime, cancel: CancelToken) -> list[TimelineEvent]:
        return boot_events(runner_for(server), server, path_prefix=path_prefix, wtmp=wtmp, cancel=cancel)

    return TimelineProvider("reboots", fetch, server)


# --- the audit log (unlocks and the operator's actions) ------------------------------------------------------


class AuditLike(Protocol):
    """What ``panel.store.AuditEntry`` has (services never imports panel)."""

    @property
    def at(self) -> dt.datetime: ...
    @property
    def action(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def detail(self) -> str: ...


def audit_events(entries: Iterable[AuditLike], servers: Iterable[str] = ()) -> list[TimelineEvent]:
    """Audit entries as events: unlocks on their own ("unlocks"), every other action as "audit"."""
    known = set(servers)
    events = []
    for entry in entries:
        server = entry.target.split("/", 1)[0]
        if known and server not in known:
            server = ""
        at = entry.at if entry.at.tzinfo else entry.at.replace(tzinfo=UTC)
        failed = entry.outcome not in ("ok", "nothing-to-do", "")
        detail = f" ({entry.detail})" if entry.detail else ""
        if entry.action == "unlock":  # the unlock feature's audit entry for each unlock attempt
            kind = {"ok": "unlocked", "nothing-to-do": "already unlocked"}.get(entry.outcome,
                                                                                f"unlock {entry.outcome}")
            events.append(TimelineEvent(at.astimezone(UTC), "unlocks", server, kind,
                                        f"Unlock of {entry.target}: {entry.outcome}{detail}",
                                        "WARNING" if failed else "INFO"))
        else:
            events.append(TimelineEvent(at.astimezone(UTC), "audit", server, entry.action,
                                        f"{entry.action} {entry.target}: {entry.outcome}{detail}",
                                        "WARNING" if failed else "INFO"))
    return events


def audit_provider(read_entries: Callable[[], Iterable[AuditLike]], servers: Iterable[str] = ()) -> TimelineProvider:
    names = tuple(servers)

    def fetch(since: dt.datetime, until: dt.datetime, cancel: CancelToken) -> list[TimelineEvent]:
        return audit_events(read_entries(), names)

    return TimelineProvider("audit", fetch)


# --- the alerts store (when the alerts feature is installed) ----------------------------------------------------

# The alerts feature (panel/alerts.py) keeps each alert in ``alerts`` and every step of its life in
# ``alert_events``; accepted baselines of the watched paths are in ``watch_baselines``.
ALERT_KINDS = {"opened": "alert raised", "escalated": "alert escalated", "resolved": "alert resolved"}
FILE_CHECKS = ("files.changed", "files.aide")


class StoreLike(Protocol):
    def query(self, sql: str, parameters: tuple[object, ...] = ()) -> list[tuple[object, ...]]: ...


def store_tables(store: StoreLike) -> set[str]:
    return {str(r[0]) for r in store.query("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _moment(value: object) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(float(value), UTC)
    try:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(UTC)


def _evidence(text: object, limit: int = 3) -> str:
    try:
        lines = json.loads(str(text or "[]"))
    except ValueError:
        return ""
    if not isinstance(lines, list) or not lines:
        return ""
    shown = "; ".join(str(line) for line in lines[:limit])
    return shown + (f" (+{len(lines) - limit} more)" if len(lines) > limit else "")


def alert_events(store: StoreLike, since: dt.datetime, *, files: bool = False) -> list[TimelineEvent] | None:
    """Alerts raised, escalated and resolved since ``since`` (``files``: only the watched-file checks,
    as deploy-like changes; otherwise every other check). None when the store has no alert history."""
    tables = store_tables(store)
    if "alerts" not in tables or "alert_events" not in tables:
        return None
    rows = store.query(
        "SELECT e.at, e.kind, e.detail, a.server, a.check_id, a.subject, a.severity, a.summary, a.evidence, "
        "a.resolution FROM alert_events e JOIN alerts a ON a.id = e.alert_id "
        "WHERE e.at >= ? AND e.kind IN ('opened', 'escalated', 'resolved') ORDER BY e.id LIMIT 50000",
        (since.astimezone(UTC).isoformat(timespec="seconds"),))
    rows = [row for row in rows if (str(row[4]) in FILE_CHECKS) == files]
    events = []
    for at_text, kind, detail, server, check, subject, severity, summary, evidence, resolution in rows:
        at = _moment(at_text)
        if at is None:
            continue
        label = ALERT_KINDS.get(str(kind), str(kind))
        text = str(summary) + (f" [{check}{': ' + str(subject) if subject else ''}]" if check else "")
        if kind == "resolved":
            text += f" — {resolution or detail or 'resolved'}"
            level = "OK"
        else:
            level = str(severity or "WARNING").upper()
        if files:
            label = {"alert raised": "files changed", "alert resolved": "changes accepted"}.get(label, label)
            if kind != "resolved" and (shown := _evidence(evidence)):
                text += f": {shown}"
        events.append(TimelineEvent(at, "changes" if files else "alerts", str(server or ""), label, text, level))
    if files and "watch_baselines" in tables:
        for server, recorded, origin, paths in store.query(
                "SELECT server, recorded_at, origin, paths FROM watch_baselines WHERE recorded_at >= ?",
                (since.astimezone(UTC).isoformat(timespec="seconds"),)):
            at = _moment(recorded)
            if at is None:
                continue
            what = "baseline accepted" if origin == "accepted" else "baseline recorded"
            events.append(TimelineEvent(at, "changes", str(server), what,
                                        f"Watched paths of {server} recorded as the baseline ({origin}): "
                                        f"{', '.join(json.loads(str(paths or '[]'))[:5])}", "INFO"))
    return events


def store_provider(source: str, read: Callable[[dt.datetime], list[TimelineEvent] | None]) -> TimelineProvider:
    def fetch(since: dt.datetime, until: dt.datetime, cancel: CancelToken) -> list[TimelineEvent]:
        events = read(since)
        if events is None:
            raise PanelError(f"the store has no {source} history")
        return events

    return TimelineProvider(source, fetch)


# --- backups (services.backups, when installed) ----------------------------------------------------------------------


def backup_events(repositories: Iterable[Any]) -> list[TimelineEvent]:
    """rdiff-backup sessions (``services.backups.Repository``) as "backup finished" / "backup failed".

    A run with errors, and a run that broke off (the repository needs a regress), are failures; a
    repository that could not be read at all becomes one "source unavailable" event.
    """
    events = []
    now = dt.datetime.now(UTC)
    for repository in repositories:
        server = str(getattr(repository, "server", ""))
        name = f"{getattr(repository, 'name', 'backup')} ({getattr(repository, 'where', '?')})"
        sessions = list(getattr(repository, "sessions", ()) or ())
        problem = getattr(repository, "problem", None)
        if problem and not sessions:
            events.append(TimelineEvent(now, "backups", server, UNAVAILABLE, f"Backup {name}: {problem}", "WARNING"))
            continue
        for session in sessions:
            stats = getattr(session, "stats", None)
            end = getattr(stats, "end_time", None) if stats is not None else None
            at = end if isinstance(end, dt.datetime) else getattr(session, "time", None)
            if not isinstance(at, dt.datetime):
                continue
            at = at.replace(tzinfo=at.tzinfo or UTC).astimezone(UTC)
            errors = getattr(session, "errors", None) or 0
            if errors:
                events.append(TimelineEvent(at, "backups", server, "backup failed",
                                            f"Backup {name} of {server} finished with {errors} file error(s)",
                                            "CRITICAL"))
            else:
                events.append(TimelineEvent(at, "backups", server, "backup finished",
                                            f"Backup {name} of {server} finished", "INFO"))
        broken = getattr(repository, "broken_session", None)
        if getattr(repository, "needs_regress", False) and isinstance(broken, dt.datetime):
            events.append(TimelineEvent(broken.astimezone(UTC), "backups", server, "backup failed",
                                        f"Backup {name} of {server} broke off (the repository needs a regress)",
                                        "CRITICAL"))
    return events


def backups_provider(servers: Sequence[Any], runner_for: Callable[[str], CommandRunner]) -> TimelineProvider | None:
    """Every configured rdiff-backup repository, read with ``services.backups`` (None if not installed)."""
    module = optional_module("services.backups")
    if module is None or not hasattr(module, "read_backups"):
        return None

    def fetch(since: dt.datetime, until: dt.datetime, cancel: CancelToken) -> list[TimelineEvent]:
        targets = module.targets_of(list(servers))
        return backup_events(module.read_backups(targets, runner_for, with_sizes=False, cancel=cancel))

    return TimelineProvider("backups", fetch)


# --- Cloudflare and Stripe (services.cloudflare / services.stripe, when installed) ----------------------------


def optional_module(name: str) -> Any | None:
    """A feature module another part of the panel provides, or None if this installation doesn't have it."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name == name:
            return None
        raise


def cloudflare_events(setting: Any) -> list[TimelineEvent]:
    """The zone's security level and when it was last changed (``modified_on``)."""
    modified = getattr(setting, "modified_on", None)
    if not isinstance(modified, dt.datetime):
        return []
    value = str(getattr(setting, "value", "?"))
    severity = "CRITICAL" if value == "under_attack" else "INFO"
    return [TimelineEvent(modified.astimezone(UTC), "cloudflare", "", "security level",
                          f"Cloudflare security level set to {value}", severity)]


def cloudflare_provider(spec: Any, token: Callable[[], str | None]) -> TimelineProvider:
    def fetch(since: dt.datetime, until: dt.datetime, cancel: CancelToken) -> list[TimelineEvent]:
        module = optional_module("services.cloudflare")
        if module is None:
            raise PanelError("the Cloudflare client is not installed")
        secret = token()
        if not secret:
            raise PanelError("no Cloudflare API token (keyring entry 'cloudflare' or CLOUDFLARE_API_TOKEN)")
        with module.CloudflareClient(spec, secret) as client:
            return cloudflare_events(client.security_level(cancel=cancel))

    return TimelineProvider("cloudflare", fetch)


def stripe_events(failures: Iterable[Any]) -> list[TimelineEvent]:
    events = []
    for failure in failures:
        at = getattr(failure, "occurred_at", None)
        if not isinstance(at, dt.datetime):
            continue
        amount = getattr(failure, "amount_due", 0)
        currency = str(getattr(failure, "currency", "")).upper()
        attempts = getattr(failure, "attempt_count", 0)
        events.append(TimelineEvent(
            at.astimezone(UTC), "stripe", "", "payment failed",
            f"Stripe payment failed: invoice {getattr(failure, 'invoice_id', '?')} of customer "
            f"{getattr(failure, 'customer_id', '?')}, {int(amount) / 100:.2f} {currency}, attempt {attempts}",
            "WARNING"))
    return events


def stripe_provider(spec: Any, key: Callable[[], str | None]) -> TimelineProvider:
    def fetch(since: dt.datetime, until: dt.datetime, cancel: CancelToken) -> list[TimelineEvent]:
        module = optional_module("services.stripe")
        if module is None:
            raise PanelError("the Stripe client is not installed")
        secret = key()
        if not secret:
            raise PanelError("no Stripe API key (keyring entry 'stripe' or STRIPE_API_KEY)")
        with module.StripeClient(spec, secret) as client:
            return stripe_events(client.payment_failures(since=since, cancel=cancel))

    return TimelineProvider("stripe", fetch)
