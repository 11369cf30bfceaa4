"""Pure parsers for what the host checks' commands print: text in, plain values out.

None of them raises, whatever the text: a server can print anything (another version's format,
a truncated answer, random bytes). What cannot be read is left out or set to None, and the
evaluation turns that into an UNKNOWN with the reason.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field

# --- the delimited output of the host script -------------------------------------------------------


@dataclass(frozen=True)
class Section:
    name: str
    arg: str
    body: str


def split_sections(text: str, marker: str) -> dict[str, Section]:
    """Cut the host script's output at lines ``<marker> <name> [<arg>]``.

    The script prints each marker on a line of its own after a newline, so a body without a final
    newline cannot swallow it; that newline is not part of the body. The marker holds a random
    nonce, so no file name or log line can fake a section. A repeated name keeps the first one.
    """
    sections: dict[str, Section] = {}
    if not marker:
        return sections
    prefix = marker + " "
    name: str | None = None
    arg = ""
    body: list[str] = []

    def close() -> None:
        if name is not None and name not in sections:
            lines = body[:-1] if body and body[-1] == "" else body
            sections[name] = Section(name, arg, "\n".join(lines))

    for line in text.split("\n"):
        if line.startswith(prefix):
            close()
            head = line[len(prefix):]
            name, _, arg = head.partition(" ")
            body = []
        elif name is not None:
            body.append(line)
    close()
    return sections


def first_int(text: str) -> int | None:
    match = re.match(r"\s*(-?\d+)", text)
    return int(match.group(1)) if match else None


def first_float(text: str) -> float | None:
    match = re.match(r"\s*(-?\d+(?:\.\d+)?)", text)
    if not match:
        return None
    try:
        return float(match.group(1))
    except ValueError:
        return None


# --- ss ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listener:
    """One listening socket. ``subject`` ("tcp 0.0.0.0:8081") never holds a pid: a restart is not a change."""

    protocol: str  # tcp, udp (tcp6 and udp6 are folded into tcp and udp; the address tells them apart)
    address: str  # as ss prints it, without brackets: 0.0.0.0, ::, *, 127.0.0.53%lo
    port: int
    processes: tuple[tuple[str, int | None], ...] = ()  # (program, pid) where visible
    lines: tuple[str, ...] = field(default=(), compare=False)  # what ss printed for it

    @property
    def subject(self) -> str:
        address = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.protocol} {address}:{self.port}"

    @property
    def programs(self) -> str:
        names = []
        for name, pid in self.processes:
            names.append(f"{name} (pid {pid})" if pid is not None else name)
        return ", ".join(dict.fromkeys(names))

    @property
    def loopback(self) -> bool:
        bare = self.address.split("%", 1)[0]
        return bare.startswith("127.") or bare in ("::1", "localhost") or bare.startswith("::ffff:127.")


_SS_PROCESS = re.compile(r'\("((?:[^"\\]|\\.)*)",pid=(\d+)')


def parse_ss(text: str) -> list[Listener]:
    """``ss -Htlnup`` (no header): one line per socket. Lines that don't fit are skipped."""
    found: dict[tuple[str, str, int], Listener] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 5:
            continue
        protocol = parts[0].lower()
        if protocol not in ("tcp", "udp", "tcp6", "udp6"):
            continue
        protocol = protocol.rstrip("6")
        # Netid State Recv-Q Send-Q Local:Port Peer:Port [Process]
        local = parts[4] if len(parts) >= 6 and parts[2].isdigit() and parts[3].isdigit() else None
        if local is None:
            # Some versions leave out State for UDP: Netid Recv-Q Send-Q Local Peer
            candidates = [p for p in parts[1:] if ":" in p and not p.startswith("users:")]
            if not candidates:
                continue
            local = candidates[0]
        address, sep, port_text = local.rpartition(":")
        if not sep or not port_text.isdigit():
            continue
        port = int(port_text)
        if not 0 < port < 65536:
            continue
        address = address.replace("[", "").replace("]", "") or "*"
        rest = " ".join(parts[5:])
        processes = tuple(
            (name.replace('\\"', '"'), int(pid)) for name, pid in _SS_PROCESS.findall(rest)
        )
        key = (protocol, address, port)
        lines: tuple[str, ...] = (" ".join(parts),)
        previous = found.get(key)
        if previous is not None:
            processes = tuple(dict.fromkeys(previous.processes + processes))
            lines = previous.lines + lines
        found[key] = Listener(protocol, address, port, processes, lines)
    return list(found.values())


# --- df ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """One line of ``df -P`` (blocks or inodes): the mount point, its size, how much is used, the percent."""

    mount: str
    filesystem: str
    total: int
    used: int
    percent: int


def parse_df(text: str) -> list[Usage]:
    """``df -P -k`` or ``df -P -i`` output. The header, and rows without a percent ("-"), are skipped.

    A mount point with spaces keeps them. The first row for a mount point wins (bind mounts repeat).
    """
    rows: dict[str, Usage] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 6 or not parts[4].endswith("%"):
            continue
        try:
            total, used, percent = int(parts[1]), int(parts[2]), int(parts[4][:-1])
        except ValueError:
            continue
        if total < 0 or used < 0 or not 0 <= percent <= 100 * 1000:
            continue
        mount = " ".join(parts[5:])
        if not mount.startswith("/"):
            continue
        rows.setdefault(mount, Usage(mount, parts[0], total, used, percent))
    return list(rows.values())


# --- systemctl -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailedUnit:
    unit: str
    description: str = ""


_UNIT_NAME = re.compile(r"^[\w@:.\\\-]+\.(service|socket|timer|mount|automount|swap|target|path|slice|scope|device)$")


def parse_failed_units(text: str) -> list[FailedUnit]:
    """``systemctl list-units --state=failed --no-legend --plain``: "UNIT LOAD ACTIVE SUB DESCRIPTION".

    A leading "●" (when --plain is not honoured) is dropped; lines that don't start with a unit name
    (hints, "0 loaded units listed.") are skipped.
    """
    units: dict[str, FailedUnit] = {}
    for line in text.splitlines():
        parts = line.replace("●", " ").replace("*", " ", 1).split(None, 4)
        if not parts or not _UNIT_NAME.match(parts[0]):
            continue
        description = parts[4] if len(parts) >= 5 else ""
        units.setdefault(parts[0], FailedUnit(parts[0], description.strip()))
    return list(units.values())


# --- AIDE -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AideReport:
    """What ``aide --check`` said. ``clean`` is None when the text is not an AIDE report at all."""

    clean: bool | None
    added: int | None = None
    removed: int | None = None
    changed: int | None = None
    entries: tuple[str, ...] = ()  # "added /etc/foo", "changed /etc/passwd"
    errors: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return (self.added or 0) + (self.removed or 0) + (self.changed or 0)


_AIDE_COUNT = re.compile(r"^\s*(Added|Removed|Changed) entries:\s*(\d+)\s*$")
_AIDE_ENTRY = re.compile(r"^([a-zA-Z!])[^:]{0,40}:\s+(/.*)$")
_AIDE_HEADINGS = {"added entries:": "added", "removed entries:": "removed", "changed entries:": "changed"}


def parse_aide(text: str) -> AideReport:
    """The output of ``aide --check`` (AIDE 0.16 to 0.18), or the daily report in /var/log/aide/aide.log.

    Only the last report in the text counts (a log may hold several runs).
    """
    start = max(text.rfind("Start timestamp:"), text.rfind("AIDE found"), text.rfind("All files match"))
    if start > 0:
        # back up to the start of that run's report
        earlier = text.rfind("Start timestamp:", 0, start)
        start = earlier if earlier >= 0 and start - earlier < 400 else start
        text = text[start:]
    lower = text.lower()
    if "all files match aide database" in lower:
        return AideReport(clean=True, added=0, removed=0, changed=0)
    counts: dict[str, int] = {}
    entries: list[str] = []
    errors: list[str] = []
    heading: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        match = _AIDE_COUNT.match(line)
        if match:
            counts.setdefault(match.group(1).lower(), int(match.group(2)))
            continue
        if stripped.lower() in _AIDE_HEADINGS:
            heading = _AIDE_HEADINGS[stripped.lower()]
            continue
        if stripped.lower().startswith(("detailed information", "the attributes of the", "database attributes")):
            heading = None
            continue
        if stripped.lower().startswith(("error", "warning")) or "couldn't open" in stripped.lower():
            errors.append(stripped[:300])
            continue
        if heading is not None:
            entry = _AIDE_ENTRY.match(stripped)
            if entry:
                entries.append(f"{heading} {entry.group(2).strip()}")
    found = "aide found differences" in lower or bool(counts) or bool(entries)
    if not found:
        return AideReport(clean=None, errors=tuple(errors))
    return AideReport(
        clean=False,
        added=counts.get("added"),
        removed=counts.get("removed"),
        changed=counts.get("changed"),
        entries=tuple(entries),
        errors=tuple(errors),
    )


# --- apt -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upgradable:
    package: str
    suites: tuple[str, ...]
    version: str

    @property
    def security(self) -> bool:
        return any(suite.endswith("-security") or suite == "security" for suite in self.suites)


def parse_apt_upgradable(text: str) -> list[Upgradable]:
    """``apt list --upgradable``: "name/suite[,suite] version arch [upgradable from: old]"."""
    found = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 2 or "/" not in parts[0] or "upgradable" not in line:
            continue
        package, _, suites = parts[0].partition("/")
        if not package:
            continue
        found.append(Upgradable(package, tuple(s for s in suites.split(",") if s), parts[1]))
    return found


# --- clock -----------------------------------------------------------------------------------------------


def parse_key_values(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines (timedatectl show)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and " " not in key.strip():
            values.setdefault(key.strip(), value.strip())
    return values


@dataclass(frozen=True)
class ChronyTracking:
    synchronised: bool | None
    offset_seconds: float | None
    leap: str | None


def parse_chrony_tracking(text: str) -> ChronyTracking:
    """``chronyc -n tracking``: "Leap status : Normal" means synchronised; "System time : 0.0001 seconds slow"."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    leap = fields.get("leap status")
    synchronised = None if leap is None else leap.lower() != "not synchronised"
    offset = None
    system_time = fields.get("system time", "")
    number = first_float(system_time)
    if number is not None:
        offset = -number if "slow" in system_time else number
    return ChronyTracking(synchronised, offset, leap)


# --- firewall --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FirewallRules:
    source: str  # "nft" or "iptables"
    rules: int  # rules that filter something
    dropping_policies: int  # chains whose policy is drop or reject

    @property
    def empty(self) -> bool:
        return self.rules == 0 and self.dropping_policies == 0


_NFT_NOT_RULES = re.compile(r"^(table|chain|set|map|flowtable|type|policy|elements|flags|counter|devices|hook|"
                            r"size|timeout|comment|\}|\{|#)")


def parse_nft_ruleset(text: str) -> FirewallRules:
    rules = 0
    dropping = 0
    depth = 0
    in_chain = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("chain ") and line.endswith("{"):
            in_chain = True
        if "policy drop" in line or "policy reject" in line:
            dropping += 1
        if in_chain and depth >= 2 and not _NFT_NOT_RULES.match(line) and not line.startswith("type "):
            rules += 1
        depth += line.count("{") - line.count("}")
        if depth < 2:
            in_chain = False
        depth = max(depth, 0)
    return FirewallRules("nft", rules, dropping)


def parse_iptables_save(text: str) -> FirewallRules:
    rules = 0
    dropping = 0
    table = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("*"):
            table = stripped[1:]
        elif stripped.startswith("-A ") and table in ("filter", "raw", "mangle", "security"):
            rules += 1
        elif stripped.startswith(":") and table == "filter":
            parts = stripped.split()
            if len(parts) >= 2 and parts[1].upper() in ("DROP", "REJECT"):
                dropping += 1
    return FirewallRules("iptables", rules, dropping)


# --- boot history ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BootHistory:
    """Periods the server was off (shutdown to next boot), and crashes whose length is unknown."""

    source: str
    down: tuple[tuple[dt.datetime, dt.datetime], ...] = ()
    crashes: tuple[dt.datetime, ...] = ()  # boots that ended in a crash (their start)
    boots: tuple[dt.datetime, ...] = ()  # every boot's start
    begins: dt.datetime | None = None  # where the record starts ("wtmp begins ...")


_ISO = r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:[+-]\d{2}:?\d{2}|Z)?)"
_LAST_LINE = re.compile(rf"^(reboot|shutdown)\s+system\s+(?:boot|down)\s+.*?{_ISO}\s*(?:-\s*(?:{_ISO}|(\w+)))?")
_LAST_BEGINS = re.compile(rf"wtmp begins\s+{_ISO}")


def _iso_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace(",", ".").replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def parse_last(text: str) -> BootHistory:
    """``last -x --time-format iso reboot shutdown`` (util-linux). A "shutdown" line gives a period off
    (from the shutdown to the next boot); a "reboot ... - crash" line is a boot that ended in a crash."""
    down: list[tuple[dt.datetime, dt.datetime]] = []
    crashes: list[dt.datetime] = []
    boots: list[dt.datetime] = []
    begins = None
    for line in text.splitlines():
        begin = _LAST_BEGINS.search(line)
        if begin:
            begins = _iso_time(begin.group(1))
            continue
        match = _LAST_LINE.match(line.strip())
        if not match:
            continue
        kind, start_text, end_text, word = match.groups()
        start = _iso_time(start_text)
        if start is None:
            continue
        end = _iso_time(end_text)
        if kind == "shutdown":
            if end is not None and end >= start:
                down.append((start, end))
        else:
            boots.append(start)
            if word and word.lower() == "crash":
                crashes.append(start)
    return BootHistory("last", tuple(sorted(down)), tuple(sorted(crashes)), tuple(sorted(boots)), begins)


_BOOT_STAMP = re.compile(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?: UTC)?")


def parse_list_boots(text: str) -> BootHistory:
    """``journalctl --list-boots`` as JSON (systemd 251+) or as text run with TZ=UTC.

    The gap between one boot's last entry and the next boot's first entry is a period off.
    """
    spans: list[tuple[dt.datetime, dt.datetime]] = []
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            data = json.loads(stripped)
        except ValueError:
            data = []
        for item in data if isinstance(data, list) else []:
            if not isinstance(item, dict):
                continue
            first, last = item.get("first_entry"), item.get("last_entry")
            if isinstance(first, int | float) and isinstance(last, int | float) and 0 < first <= last < 2**62:
                try:
                    spans.append((dt.datetime.fromtimestamp(first / 1e6, dt.UTC),
                                  dt.datetime.fromtimestamp(last / 1e6, dt.UTC)))
                except (OverflowError, OSError, ValueError):
                    continue
    else:
        for line in text.splitlines():
            stamps = _BOOT_STAMP.findall(line)
            if len(stamps) < 2:
                continue
            try:
                first = dt.datetime.strptime(stamps[0], "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
                last = dt.datetime.strptime(stamps[1], "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
            except ValueError:
                continue
            if first <= last:
                spans.append((first, last))
    spans.sort()
    down = tuple((spans[i][1], spans[i + 1][0]) for i in range(len(spans) - 1) if spans[i + 1][0] > spans[i][1])
    return BootHistory("journal", down, (), tuple(s[0] for s in spans), spans[0][0] if spans else None)


# --- auth.log ----------------------------------------------------------------------------------------------

_SYSLOG_TIME = re.compile(r"^([A-Z][a-z]{2})\s+(\d{1,2}) (\d{2}):(\d{2}):(\d{2})\s")
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                                        "Dec"), start=1)}


def syslog_time(line: str, now: dt.datetime) -> dt.datetime | None:
    """The time of an auth.log line: RFC 3339 (rsyslog on Debian 12) or "Nov 21 09:45:20" (this year,
    in the server's time as UTC when no zone is given)."""
    head = line.split(" ", 1)[0]
    if len(head) >= 19 and head[4] == "-" and head[10] == "T":
        return _iso_time(head)
    match = _SYSLOG_TIME.match(line)
    if not match:
        return None
    month = _MONTHS.get(match.group(1))
    if month is None:
        return None
    try:
        moment = dt.datetime(now.year, month, int(match.group(2)), int(match.group(3)), int(match.group(4)),
                             int(match.group(5)), tzinfo=dt.UTC)
    except ValueError:
        return None
    if moment - now > dt.timedelta(days=2):  # December's lines read in January
        moment = moment.replace(year=now.year - 1)
    return moment


# --- watched files -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileEntry:
    """One entry under a watched path, as find and sha256sum saw it."""

    path: str
    kind: str  # f (file), d (folder), l (symlink), or another find %y letter
    mode: str  # octal permission bits, e.g. "644"
    owner: str
    group: str
    size: int
    sha256: str | None = None  # regular files only; None when not hashed (or unreadable)
    link: str = ""  # a symlink's target
    mtime: float = 0.0
    ctime: float = 0.0


@dataclass(frozen=True)
class Listing:
    entries: dict[str, FileEntry] = field(default_factory=dict)
    malformed: int = 0


def parse_find_listing(data: str) -> Listing:
    """``find ... -printf '%y\\t%m\\t%u\\t%g\\t%s\\t%T@\\t%C@\\t%p\\0%l\\0'``: two NUL-ended fields per entry,
    so any file name (tabs and newlines included) reads back exactly."""
    fields = data.split("\0")
    entries: dict[str, FileEntry] = {}
    malformed = 0
    for index in range(0, len(fields) - 1, 2):
        head, link = fields[index], fields[index + 1]
        head = head.lstrip("\n") if index == 0 else head
        parts = head.split("\t", 7)
        if len(parts) != 8:
            malformed += 1
            continue
        kind, mode, owner, group, size_text, mtime_text, ctime_text, path = parts
        try:
            size = int(size_text)
            mtime = float(mtime_text)
            ctime = float(ctime_text)
        except ValueError:
            malformed += 1
            continue
        if not path or len(kind) != 1:
            malformed += 1
            continue
        entries[path] = FileEntry(path, kind, mode, owner, group, size, None, link if kind == "l" else "",
                                  mtime, ctime)
    return Listing(entries, malformed)


_SHA = re.compile(r"^\\?([0-9a-f]{64}) [ *](.+)$", re.DOTALL)


def parse_sha256sums(data: str) -> dict[str, str]:
    """``sha256sum -z`` output: "HASH  PATH" records, each ended by a NUL (names are not escaped)."""
    sums: dict[str, str] = {}
    for record in data.split("\0"):
        record = record.lstrip("\n")
        match = _SHA.match(record)
        if match:
            sums[match.group(2)] = match.group(1)
    return sums
