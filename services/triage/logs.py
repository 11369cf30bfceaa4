"""Reading a server's logs: the systemd journal (``journalctl -o json``) or, where there is none,
plain log files (``tail``). Paged, filtered, and followed live.

>>> sources = detect_sources(runner, spec.checks.log_files)
>>> page = read_journal(runner, "app1", LogQuery(units=("nginx",), priority=3))
>>> follow_journal(pool, endpoint, "app1", LogQuery(), on_entries, after_cursor=page.last_cursor, cancel=token)

Times are aware datetimes in UTC. A follow is one long-running remote command whose output is
streamed through ``on_output``; it is restarted every ``batch_lines`` lines (resuming at the
journal cursor or the file's byte offset), so a follow of hours never piles up output in memory.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from services.cancel import NEVER_CANCELLED, CancelToken
from services.errors import (
    AuthError,
    Cancelled,
    ConnectError,
    HostKeyError,
    OperationTimeout,
    RemoteCommandError,
)
from services.runner import CommandRunner
from services.ssh.endpoint import SshEndpoint
from services.ssh.pool import SshPool
from services.triage.remote import check_path, check_unit_name, command_line, q, script_head

UTC = dt.UTC
PRIORITY_NAMES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
JOURNAL_FIELDS = ("MESSAGE", "PRIORITY", "_SYSTEMD_UNIT", "UNIT", "USER_UNIT", "SYSLOG_IDENTIFIER", "_COMM", "_PID")
DEFAULT_LINES = 500
FOLLOW_BATCH_LINES = 20_000  # a follow's remote command is restarted after this many lines
FOLLOW_RUN_SECONDS = 3600.0  # ... or after this long


@dataclass(frozen=True)
class LogEntry:
    at: dt.datetime  # aware, UTC
    server: str
    message: str
    priority: int | None = None  # 0 emerg … 7 debug; None when a plain line doesn't say
    unit: str = ""  # the systemd unit, or the file's base name
    identifier: str = ""  # SYSLOG_IDENTIFIER or the command name
    pid: int | None = None
    source: str = "journal"  # "journal" or the file's path
    cursor: str = ""  # the journal cursor, for paging and resuming a follow
    exact_time: bool = True  # False when a plain line had no time of its own

    @property
    def is_error(self) -> bool:
        return self.priority is not None and self.priority <= 3

    @property
    def is_warning(self) -> bool:
        return self.priority == 4

    @property
    def priority_name(self) -> str:
        return PRIORITY_NAMES[self.priority] if self.priority is not None and 0 <= self.priority < 8 else ""


@dataclass(frozen=True)
class LogQuery:
    """What to show. Empty fields don't filter."""

    units: tuple[str, ...] = ()
    priority: int | None = None  # this priority and more urgent, as ``journalctl -p``
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    grep: str = ""  # case-insensitive text, searched on the server
    lines: int = DEFAULT_LINES

    def accepts(self, entry: LogEntry, *, check_units: bool = True) -> bool:
        """The same filter, applied here (plain files, and journals that can't grep)."""
        if self.priority is not None and (entry.priority if entry.priority is not None else 6) > self.priority:
            return False
        if self.since is not None and entry.at < self.since:
            return False
        if self.until is not None and entry.at > self.until:
            return False
        if check_units and self.units and not any(_unit_matches(u, entry.unit) for u in self.units):
            return False
        return not (self.grep and self.grep.lower() not in entry.message.lower())


@dataclass(frozen=True)
class LogSources:
    """What a server can be read from."""

    server: str
    journal: bool  # the journal exists and has entries
    files: tuple[str, ...] = ()  # configured log files that are readable
    unreadable: tuple[str, ...] = ()  # configured log files that are missing or not readable
    note: str = ""  # why there's no journal, for the operator

    @property
    def usable(self) -> bool:
        return self.journal or bool(self.files)


@dataclass(frozen=True)
class LogPage:
    server: str
    source: str  # "journal" or "files"
    entries: tuple[LogEntry, ...]  # oldest first
    complete: bool = False  # True: there is nothing older to page to
    file_sizes: dict[str, int] = field(default_factory=dict)  # byte size of each file when read (follow starts there)
    file_lines: dict[str, int] = field(default_factory=dict)  # lines read from each file (the next page skips them)
    note: str = ""  # e.g. "this journalctl can't search; filtered here"

    @property
    def first(self) -> LogEntry | None:
        return self.entries[0] if self.entries else None

    @property
    def last_cursor(self) -> str:
        for entry in reversed(self.entries):
            if entry.cursor:
                return entry.cursor
        return ""


def _unit_matches(wanted: str, unit: str) -> bool:
    if not unit:
        return False
    return unit == wanted or unit == f"{wanted}.service" or unit.split(".")[0] == wanted


def _marker() -> str:
    return f"@@panel-{secrets.token_hex(4)}"


# --- the journal -------------------------------------------------------------------------------------


def _field(raw: dict[str, Any], name: str) -> str:
    """A journal field as text. JSON gives a string, an array of bytes (binary or invalid UTF-8),
    a list of values (a field set several times), or null (a value too large to show)."""
    value = raw.get(name)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        if value and all(isinstance(b, int) for b in value):
            try:
                return bytes(value).decode("utf-8", errors="replace")
            except ValueError:
                return ""
        first = value[0] if value else ""
        if isinstance(first, list):
            return _field({"v": first}, "v")
        return str(first)
    return str(value)


def parse_journal_line(line: str | bytes, server: str) -> LogEntry | None:
    """One line of ``journalctl -o json``; None if it isn't a journal entry."""
    try:
        raw = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(raw, dict):
        return None
    stamp = _field(raw, "__REALTIME_TIMESTAMP")
    if not stamp.isdigit():
        return None
    at = dt.datetime.fromtimestamp(int(stamp) / 1_000_000, UTC)
    priority_text = _field(raw, "PRIORITY")
    priority = int(priority_text) if priority_text.isdigit() and int(priority_text) < 8 else None
    unit = _field(raw, "_SYSTEMD_UNIT")
    if not unit or unit == "init.scope":  # systemd's own messages about a unit name it in UNIT
        unit = _field(raw, "UNIT") or _field(raw, "USER_UNIT") or unit
    pid_text = _field(raw, "_PID")
    message = _field(raw, "MESSAGE")
    if raw.get("MESSAGE", "") is None:
        message = "(message too large to show; read it with journalctl on the server)"
    return LogEntry(
        at=at,
        server=server,
        message=message.rstrip("\n"),
        priority=priority,
        unit=unit,
        identifier=_field(raw, "SYSLOG_IDENTIFIER") or _field(raw, "_COMM"),
        pid=int(pid_text) if pid_text.isdigit() else None,
        source="journal",
        cursor=_field(raw, "__CURSOR"),
    )


def _epoch(moment: dt.datetime) -> str:
    return f"@{moment.timestamp():.6f}"


def journal_argv(
    query: LogQuery,
    *,
    follow: bool = False,
    after_cursor: str = "",
    before: LogEntry | None = None,
    grep_on_server: bool = True,
    lines: int | None = None,
) -> list[str]:
    """The ``journalctl`` command for a page (newest ``query.lines`` entries, or those before ``before``)
    or a follow (``-f``, from ``after_cursor`` or from now)."""
    argv = ["journalctl", "--no-pager", "-q", "-o", "json", "--output-fields=" + ",".join(JOURNAL_FIELDS)]
    if follow:
        argv.append("-f")
        argv += ["--no-tail", f"--after-cursor={after_cursor}"] if after_cursor else ["-n", "0"]
    else:
        argv += ["-n", str(lines if lines is not None else query.lines)]
    for unit in query.units:
        argv += ["-u", check_unit_name(unit)]
    if query.priority is not None:
        argv += ["-p", str(int(query.priority))]
    if query.since is not None and not (follow and after_cursor):
        argv.append(f"--since={_epoch(query.since)}")
    until = query.until
    if before is not None:
        until = before.at if until is None else min(until, before.at)
    if until is not None and not follow:
        argv.append(f"--until={_epoch(until)}")
    if query.grep and grep_on_server:
        # Lower case turns on journalctl's case-insensitive ("smart case") matching.
        argv.append("--grep=" + re.escape(query.grep.lower()))
    return argv


_NO_GREP = ("pattern matching", "Compiled without", "unrecognized option '--grep")


def read_journal(
    runner: CommandRunner,
    server: str,
    query: LogQuery,
    *,
    before: LogEntry | None = None,
    path_prefix: str = "",
    timeout: float = 30.0,
    cancel: CancelToken = NEVER_CANCELLED,
) -> LogPage:
    """The newest ``query.lines`` matching entries (or those just before ``before``), oldest first."""
    note = ""
    argv = journal_argv(query, before=before, lines=query.lines + (1 if before is not None else 0))
    result = runner.run_script(script_head(path_prefix) + " ".join(q(a) for a in argv), timeout=timeout,
                               cancel=cancel)
    grep_here = False
    if not result.ok and query.grep and any(s in result.error_text() for s in _NO_GREP):
        # An older journalctl, or one built without PCRE2: read more and search here.
        grep_here = True
        note = f"journalctl on {server} can't search text; the newest entries were searched here."
        argv = journal_argv(query, before=before, grep_on_server=False, lines=max(query.lines * 10, 5000))
        result = runner.run_script(script_head(path_prefix) + " ".join(q(a) for a in argv), timeout=timeout,
                                   cancel=cancel)
    if not result.ok:
        if result.exit_status == 1 and not result.stdout and query.grep:
            return LogPage(server, "journal", (), complete=True)  # journalctl --grep with no match
        raise RemoteCommandError(
            f"journalctl failed on {server}: {result.error_text().strip()[:300] or f'status {result.exit_status}'}",
            exit_status=result.exit_status, stderr=result.error_text())
    entries = [e for e in (parse_journal_line(line, server) for line in result.stdout.splitlines()) if e]
    if before is not None:
        entries = [e for e in entries if e.cursor != before.cursor and e.at <= before.at]
    if grep_here:
        entries = [e for e in entries if query.accepts(e, check_units=False)][-query.lines:]
    complete = len(entries) < query.lines
    return LogPage(server, "journal", tuple(entries[-query.lines:]), complete=complete, note=note)


def detect_sources(
    runner: CommandRunner,
    server: str,
    log_files: Sequence[str] = (),
    *,
    path_prefix: str = "",
    timeout: float = 20.0,
    cancel: CancelToken = NEVER_CANCELLED,
) -> LogSources:
    """Does the server have a journal with entries, and which configured log files can be read? One round trip."""
    marker = _marker()
    files = [check_path(f) for f in log_files]
    script = script_head(path_prefix) + f"""M={q(marker)}
if command -v journalctl >/dev/null 2>&1; then
  if journalctl --no-pager -q -n 1 -o json 2>/dev/null | grep -q .; then echo "$M journal yes"
  else echo "$M journal empty"; fi
else echo "$M journal missing"; fi
for f in {" ".join(q(f) for f in files) or '""'}; do
  [ -n "$f" ] || continue
  if [ -f "$f" ] && [ -r "$f" ]; then printf '%s file %s\\n' "$M" "$f"; else printf '%s nofile %s\\n' "$M" "$f"; fi
done
"""
    result = runner.run_script(script, timeout=timeout, cancel=cancel)
    journal = "missing"
    readable: list[str] = []
    unreadable: list[str] = []
    for line in result.text().splitlines():
        if not line.startswith(marker + " "):
            continue
        kind, _, value = line[len(marker) + 1:].partition(" ")
        if kind == "journal":
            journal = value.strip()
        elif kind == "file":
            readable.append(value)
        elif kind == "nofile":
            unreadable.append(value)
    note = {
        "yes": "",
        "empty": f"{server} has journalctl but no journal entries (no systemd-journald, or a volatile journal).",
        "missing": f"{server} has no journalctl.",
    }.get(journal, "")
    return LogSources(server, journal == "yes", tuple(readable), tuple(unreadable), note)


# --- plain log files -----------------------------------------------------------------------------------

_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                       "dec"), start=1)}
_ISO = re.compile(r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?\s?(Z|[+-]\d\d:?\d\d)?")
_SLASHED = re.compile(r"(\d{4})/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d)")  # nginx's error log
_CLF = re.compile(r"\[(\d\d)/([A-Za-z]{3})/(\d{4}):(\d\d):(\d\d):(\d\d) ([+-]\d{4})\]")  # access logs
_SYSLOG = re.compile(r"^([A-Za-z]{3}) ([ \d]\d) (\d\d):(\d\d):(\d\d)\b")
_LEVEL = re.compile(r"\b(emerg|emergency|alert|crit|critical|fatal|panic|err|error|warn|warning|notice|info|debug)\b",
                    re.IGNORECASE)
_LEVELS = {"emerg": 0, "emergency": 0, "panic": 0, "alert": 1, "crit": 2, "critical": 2, "fatal": 2, "err": 3,
           "error": 3, "warn": 4, "warning": 4, "notice": 5, "info": 6, "debug": 7}


def _zone(text: str | None, default: dt.tzinfo) -> dt.tzinfo:
    if not text:
        return default
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4])))


def parse_line_time(line: str, *, local: dt.tzinfo = UTC, now: dt.datetime | None = None) -> dt.datetime | None:
    """The time a plain log line starts with (ISO 8601, nginx, access-log, syslog), in UTC; None if none.

    ``local`` is the server's zone, for times that don't name theirs; ``now`` gives syslog's missing year.
    """
    head = line[:64]
    try:
        if match := _ISO.search(head):
            y, mo, d, h, mi, s, frac, zone = match.groups()
            micro = int((frac or "0")[:6].ljust(6, "0"))
            moment = dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), micro, _zone(zone, local))
            return moment.astimezone(UTC)
        if match := _SLASHED.search(head):
            y, mo, d, h, mi, s = (int(g) for g in match.groups())
            return dt.datetime(y, mo, d, h, mi, s, tzinfo=local).astimezone(UTC)
        if match := _CLF.search(line[:200]):
            d, mon, y, h, mi, s, zone = match.groups()
            month = _MONTHS.get(mon.lower())
            if month is None:
                return None
            moment = dt.datetime(int(y), month, int(d), int(h), int(mi), int(s), tzinfo=_zone(zone, local))
            return moment.astimezone(UTC)
        if match := _SYSLOG.match(head):
            mon, d, h, mi, s = match.groups()
            month = _MONTHS.get(mon.lower())
            if month is None:
                return None
            reference = (now or dt.datetime.now(UTC)).astimezone(local)
            moment = dt.datetime(reference.year, month, int(d), int(h), int(mi), int(s), tzinfo=local)
            if moment - reference > dt.timedelta(days=2):  # December's lines read in January
                moment = moment.replace(year=reference.year - 1)
            return moment.astimezone(UTC)
    except ValueError:
        return None
    return None


def guess_priority(line: str) -> int | None:
    """The level a plain line names near its start (``[error]``, ``ERROR``, ``warn``), as a syslog priority."""
    match = _LEVEL.search(line[:120])
    return _LEVELS[match.group(1).lower()] if match else None


def parse_file_lines(
    lines: Iterable[str],
    *,
    server: str,
    path: str,
    local: dt.tzinfo = UTC,
    now: dt.datetime | None = None,
    previous: dt.datetime | None = None,
) -> list[LogEntry]:
    """Plain lines to entries. A line without a time of its own (a traceback's) takes the one before it."""
    now = now or dt.datetime.now(UTC)
    unit = path.rsplit("/", 1)[-1]
    entries = []
    last = previous
    for line in lines:
        if not line:
            continue
        at = parse_line_time(line, local=local, now=now)
        exact = at is not None
        if at is None:
            at = last or now
        last = at
        entries.append(LogEntry(at=at, server=server, message=line, priority=guess_priority(line), unit=unit,
                                source=path, exact_time=exact))
    return entries


def _fixed_zone(offset: str) -> dt.tzinfo:
    """``date +%z`` output (``+0100``) as a zone."""
    try:
        return _zone(offset.strip(), UTC) if re.fullmatch(r"[+-]\d{4}", offset.strip()) else UTC
    except ValueError:
        return UTC


def read_files(
    runner: CommandRunner,
    server: str,
    files: Sequence[str],
    query: LogQuery,
    *,
    skip: dict[str, int] | None = None,
    path_prefix: str = "",
    timeout: float = 30.0,
    cancel: CancelToken = NEVER_CANCELLED,
) -> LogPage:
    """The last ``query.lines`` lines of each file (``tail -n``), before the ``skip[path]`` lines already read.

    ``query.grep`` is searched on the server (``grep -iF``); time and priority filter here. One round trip.
    """
    marker = _marker()
    skip = skip or {}
    clock = 'printf \'%s clock %s %s\\n\' "$M" "$(date +%s)" "$(date +%z)"'
    parts = [script_head(path_prefix), f"M={q(marker)}", clock]
    for path in files:
        check_path(path)
        total = query.lines + skip.get(path, 0)
        cut = f" | head -n -{skip[path]}" if skip.get(path) else ""
        source = (f"grep -a -i -F -e {q(query.grep)} -- \"$f\" | tail -n {total}" if query.grep
                  else f"tail -n {total} -- \"$f\"")
        parts.append(f"""f={q(path)}
printf '%s file %s\\n' "$M" "$f"
if [ -r "$f" ]; then
  printf '%s size %s\\n' "$M" "$(wc -c < "$f")"
  {source}{cut}
else printf '%s unreadable\\n' "$M"; fi""")
    result = runner.run_script("\n".join(parts) + "\n", timeout=timeout, cancel=cancel)
    now = dt.datetime.now(UTC)
    local: dt.tzinfo = UTC
    per_file: dict[str, list[str]] = {}
    sizes: dict[str, int] = {}
    unreadable: list[str] = []
    current: str | None = None
    for line in result.stdout.decode("utf-8", errors="replace").splitlines():
        if line.startswith(marker + " "):
            kind, _, value = line[len(marker) + 1:].partition(" ")
            if kind == "clock":
                stamp, _, offset = value.partition(" ")
                if stamp.isdigit():
                    now = dt.datetime.fromtimestamp(int(stamp), UTC)
                local = _fixed_zone(offset)
            elif kind == "file":
                current = value
                per_file[current] = []
            elif kind == "size" and current is not None and value.strip().isdigit():
                sizes[current] = int(value.strip())
            elif kind == "unreadable" and current is not None:
                unreadable.append(current)
            continue
        if current is not None:
            per_file[current].append(line)
    lists = []
    complete = True
    counts: dict[str, int] = {}
    for path, lines in per_file.items():
        counts[path] = skip.get(path, 0) + len(lines)
        if len(lines) >= query.lines:
            complete = False
        parsed = parse_file_lines(lines, server=server, path=path, local=local, now=now)
        lists.append([e for e in parsed if query.accepts(e, check_units=False)])
    note = ""
    if unreadable:
        note = f"Not readable on {server}: {', '.join(unreadable)}."
    return LogPage(server, "files", tuple(merge_by_time(lists)), complete=complete, file_sizes=sizes,
                   file_lines=counts, note=note)


def merge_by_time(lists: Iterable[Sequence[LogEntry]]) -> list[LogEntry]:
    """Several servers' (or files') entries, each oldest first, merged into one list by time."""
    return list(heapq.merge(*lists, key=lambda entry: entry.at))


# --- following ------------------------------------------------------------------------------------------


class LineSplitter:
    """Cuts a byte stream into complete lines; counts the bytes of the lines it gave out."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.consumed = 0

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buffer += chunk
        end = self._buffer.rfind(b"\n")
        if end < 0:
            return []
        complete = bytes(self._buffer[: end + 1])
        del self._buffer[: end + 1]
        self.consumed += len(complete)
        return complete.split(b"\n")[:-1]


OnEntries = Callable[[list[LogEntry]], object]
OnNote = Callable[[str], object]


class _Follow(Protocol):
    lines: int  # lines received in the current run

    def command(self) -> str: ...
    def on_output(self, chunk: bytes) -> None: ...
    def before_run(self) -> None: ...
    def after_run(self) -> None: ...


def _follow_loop(
    pool: SshPool,
    endpoint: SshEndpoint,
    follow: _Follow,
    *,
    batch_lines: int,
    run_seconds: float,
    on_note: OnNote | None,
    cancel: CancelToken,
) -> None:
    """Run the follow's command again and again until ``cancel``.

    A run ends when it has given ``batch_lines`` lines (the panel closes its channel), after
    ``run_seconds``, or when the connection drops; the next run resumes where it stopped.
    """
    what = f"Following the logs of {endpoint.name}"
    failures = 0
    while True:
        cancel.raise_if_cancelled(what)
        run_cancel = CancelToken()
        unlink = cancel.on_cancel(run_cancel.cancel)
        follow.before_run()

        def on_output(chunk: bytes, run_cancel: CancelToken = run_cancel) -> None:
            follow.on_output(chunk)
            if follow.lines >= batch_lines:
                run_cancel.cancel()  # enough for this run: close the channel, resume in a new one

        result = None
        try:
            result = pool.run(endpoint, follow.command(), timeout=run_seconds, cancel=run_cancel, on_output=on_output)
        except (Cancelled, OperationTimeout):
            cancel.raise_if_cancelled(what)
        except (AuthError, HostKeyError):
            raise
        except ConnectError as error:
            follow.after_run()
            failures = 0 if follow.lines else failures + 1
            if on_note is not None:
                on_note(f"{endpoint.name}: {error} Reconnecting…")
            if cancel.wait(min(30.0, 2.0 ** min(failures, 5))):
                cancel.raise_if_cancelled(what)
            continue
        finally:
            unlink()
        follow.after_run()
        if result is not None and not follow.lines:
            # The follow command ended by itself without a line: it can't follow here.
            failures += 1
            if failures >= 3:
                raise RemoteCommandError(
                    f"{what} failed: {result.error_text().strip(' .')[:300] or f'status {result.exit_status}'}",
                    exit_status=result.exit_status, stderr=result.error_text())
            if cancel.wait(1.0 * failures):
                cancel.raise_if_cancelled(what)
        else:
            failures = 0


def follow_script(path_prefix: str, prelude: str, source: str) -> str:
    """Run ``source`` (a follow that never ends by itself) so that it stops when the panel goes away.

    Its output goes straight to the channel. A watchdog writes a byte to stderr every 2 s: once the
    panel closes the channel (cancel, restart, lost connection) that write fails and the source is
    stopped, even on a quiet log where the source itself would never write again.
    """
    return script_head(path_prefix) + prelude + f"""
{source} 2>/dev/null </dev/null &
t=$!
( trap '' PIPE; while sleep 2 2>/dev/null; do printf . >&2 || break; done; kill $t 2>/dev/null ) </dev/null >/dev/null &
w=$!
trap 'kill $t $w 2>/dev/null; exit 143' TERM HUP INT
wait $t
status=$?
kill $w 2>/dev/null
exit $status
"""


class _JournalFollow:
    def __init__(self, server: str, query: LogQuery, after_cursor: str, path_prefix: str,
                 on_entries: OnEntries) -> None:
        self.server = server
        self.query = query
        self.cursor = after_cursor
        self.path_prefix = path_prefix
        self.on_entries = on_entries
        self.splitter = LineSplitter()
        self.lines = 0

    def command(self) -> str:
        argv = journal_argv(self.query, follow=True, after_cursor=self.cursor)
        return command_line(follow_script(self.path_prefix, "", " ".join(q(a) for a in argv)))

    def on_output(self, chunk: bytes) -> None:
        entries = []
        for line in self.splitter.feed(chunk):
            entry = parse_journal_line(line, self.server)
            if entry is not None:
                entries.append(entry)
        if entries:
            self.cursor = entries[-1].cursor or self.cursor
            self.lines += len(entries)
            self.on_entries(entries)

    def before_run(self) -> None:
        self.splitter = LineSplitter()
        self.lines = 0

    def after_run(self) -> None:
        pass


def follow_journal(
    pool: SshPool,
    endpoint: SshEndpoint,
    server: str,
    query: LogQuery,
    on_entries: OnEntries,
    *,
    after_cursor: str = "",
    path_prefix: str = "",
    batch_lines: int = FOLLOW_BATCH_LINES,
    run_seconds: float = FOLLOW_RUN_SECONDS,
    on_note: OnNote | None = None,
    cancel: CancelToken = NEVER_CANCELLED,
) -> None:
    """Stream new journal entries (``journalctl -f -o json``) to ``on_entries``, one list per received chunk,
    until ``cancel``; then raise :class:`Cancelled`. Resumes at the last cursor after a restart or a drop."""
    follow = _JournalFollow(server, query, after_cursor, path_prefix, on_entries)
    _follow_loop(pool, endpoint, follow, batch_lines=batch_lines, run_seconds=run_seconds, on_note=on_note,
                 cancel=cancel)


class _FileFollow:
    def __init__(self, server: str, path: str, query: LogQuery | None, offset: int | None, path_prefix: str,
                 on_entries: OnEntries) -> None:
        self.server = server
        self.path = check_path(path)
        self.query = query
        self.offset = -1 if offset is None else offset  # -1: from the end
        self.path_prefix = path_prefix
        self.on_entries = on_entries
        self.marker = _marker()
        self.splitter = LineSplitter()
        self.start: int | None = None  # the byte this run started at, as the server chose it
        self.marker_bytes = 0
        self.zone: dt.tzinfo = UTC
        self.previous: dt.datetime | None = None
        self.lines = 0

    def command(self) -> str:
        prelude = f"""M={q(self.marker)}; f={q(self.path)}; off={int(self.offset)}
size=$(wc -c < "$f" 2>/dev/null) || size=0
if [ "$off" -lt 0 ]; then off=$size; elif [ "$off" -gt "$size" ]; then off=0; fi
printf '%s start %s %s\\n' "$M" "$off" "$(date +%z)"
"""
        script = follow_script(self.path_prefix, prelude, 'tail -c +$((off + 1)) -F -- "$f"')
        return command_line(script)

    def on_output(self, chunk: bytes) -> None:
        lines = self.splitter.feed(chunk)
        if self.start is None and lines:
            first = lines[0].decode("utf-8", errors="replace")
            prefix = self.marker + " start "
            if first.startswith(prefix):
                start, _, zone = first[len(prefix):].partition(" ")
                self.start = int(start) if start.isdigit() else 0
                self.zone = _fixed_zone(zone)
                self.marker_bytes = len(lines[0]) + 1
                lines = lines[1:]
        texts = [line.decode("utf-8", errors="replace") for line in lines]
        if not texts:
            return
        self.lines += len(texts)
        entries = parse_file_lines(texts, server=self.server, path=self.path, local=self.zone,
                                   previous=self.previous)
        if entries:
            self.previous = entries[-1].at
        if self.query is not None:
            entries = [e for e in entries if self.query.accepts(e, check_units=False)]
        if entries:
            self.on_entries(entries)

    def before_run(self) -> None:
        self.splitter = LineSplitter()
        self.start = None
        self.marker_bytes = 0
        self.lines = 0

    def after_run(self) -> None:
        if self.start is not None:
            self.offset = self.start + self.splitter.consumed - self.marker_bytes


def follow_file(
    pool: SshPool,
    endpoint: SshEndpoint,
    server: str,
    path: str,
    on_entries: OnEntries,
    *,
    query: LogQuery | None = None,
    offset: int | None = None,
    path_prefix: str = "",
    batch_lines: int = FOLLOW_BATCH_LINES,
    run_seconds: float = FOLLOW_RUN_SECONDS,
    on_note: OnNote | None = None,
    cancel: CancelToken = NEVER_CANCELLED,
) -> None:
    """Stream lines appended to ``path`` (``tail -F``) from byte ``offset`` (None: from its end).

    Resumes at the byte it stopped at; a file that shrank (truncated, replaced) is read from its start.
    ``query`` filters here (priority, text). Runs until ``cancel``, then raises :class:`Cancelled`.
    """
    follow = _FileFollow(server, path, query, offset, path_prefix, on_entries)
    _follow_loop(pool, endpoint, follow, batch_lines=batch_lines, run_seconds=run_seconds, on_note=on_note,
                 cancel=cancel)
