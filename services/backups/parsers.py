"""Pure parsers for what rdiff-backup prints and stores: text in, plain values out.

None of them raises, whatever the text: a server can send anything (a truncated file, another
program's output, random bytes), and one bad repository must never stop the panel from showing
the others. What cannot be read is left out or set to None; callers turn that into a message.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml

from services.backups.models import ChangeKind, FileChange, SessionStats, from_epoch

try:  # libyaml's loader is ~10x faster on a 1,000-session listing; PyYAML's own one is the fallback
    _YamlLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _YamlLoader = yaml.SafeLoader

# Epoch seconds outside this range are not rdiff-backup times (and would overflow datetime).
_MIN_EPOCH = 0
_MAX_EPOCH = 253_402_300_799  # 9999-12-31T23:59:59Z


@dataclass(frozen=True)
class Section:
    name: str
    arg: str
    body: str


@dataclass(frozen=True)
class ListedPoint:
    """One entry of ``list increments [--size]``: a restore point (the last one is the mirror)."""

    time: int
    size: int | None = None
    total_size: int | None = None
    approximate: bool = False


@dataclass(frozen=True)
class StatsChange:
    """One line of a ``file_statistics`` file with Changed=1."""

    path: str
    existed_before: bool  # MirrorSize was not NA: the file was in the mirror before this run
    exists_after: bool  # SourceSize was not NA: the file was in the source during this run


def _valid_epoch(value: float) -> bool:
    return _MIN_EPOCH <= value <= _MAX_EPOCH


def _int_or_none(value: object) -> int | None:
    # bool is an int in Python, but "size: true" is not a size.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


# --- the delimited output of our own scripts ---------------------------------------------------------


def split_sections(text: str, marker: str) -> list[Section]:
    """Cut a script's output at lines ``<marker> <name> [<arg>]``.

    The scripts print each marker on a line of its own, preceded by an empty line so that a body
    without a final newline cannot swallow it; that one newline is not part of the body. The marker
    holds a random nonce, so a file's contents cannot fake a section.
    """
    if not marker:
        return []
    sections: list[Section] = []
    name: str | None = None
    arg = ""
    body: list[str] = []
    prefix = marker + " "
    for line in text.split("\n"):
        if line.startswith(prefix):
            if name is not None:
                sections.append(Section(name, arg, _strip_separator(body)))
            head = line[len(prefix):]
            name, _, arg = head.partition(" ")
            body = []
        elif name is not None:
            body.append(line)
    if name is not None:
        sections.append(Section(name, arg, _strip_separator(body)))
    return sections


def _strip_separator(lines: list[str]) -> str:
    if lines and lines[-1] == "":
        lines = lines[:-1]
    return "\n".join(lines)


# --- list increments -----------------------------------------------------------------------------


def _yaml_document(text: str) -> Any:
    """The YAML document that starts at the first ``---`` line (rdiff-backup may print NOTE lines
    about lock.yml on stdout before it). None if there is none or it does not parse."""
    match = re.search(r"(?m)^---[ \t]*$", text)
    if match is None:
        return None
    try:
        # the libyaml loader wants str without NUL; PyYAML rejects some control characters itself
        return yaml.load(text[match.start():].replace("\x00", ""), Loader=_YamlLoader)  # noqa: S506 - safe loader
    except (yaml.YAMLError, ValueError, RecursionError, OverflowError):
        return None


_SIMPLE_ITEM = re.compile(r"^(- |  )([a-z_]+): (\S*)$")


def _simple_listing(text: str) -> list[dict[str, Any]] | None:
    """The listing as rdiff-backup prints it (a flat list of "key: value" maps), read without a YAML
    parser: 10x faster on a 1,000-session repository. None if the text has any other shape."""
    start = re.search(r"(?m)^---[ \t]*$", text)
    if start is None:
        return None
    entries: list[dict[str, Any]] = []
    for line in text[start.end():].split("\n"):
        if not line or line == "...":
            if line == "...":
                return entries
            continue
        match = _SIMPLE_ITEM.match(line)
        if match is None:
            return None
        if match.group(1) == "- ":
            entries.append({})
        elif not entries:
            return None
        value: Any = match.group(3)
        if value.isdigit():  # ASCII digits only: str.isdigit() alone also accepts "²"
            value = int(value) if value.isascii() else value
        entries[-1][match.group(2)] = value
    return None  # no "..." end marker: truncated, let the YAML parser judge


def parse_increments_yaml(text: str) -> list[ListedPoint]:
    """``--api-version 201 --parsable-output list increments [--size]``, oldest first."""
    document: Any = _simple_listing(text)
    if document is None:
        document = _yaml_document(text)
    if not isinstance(document, list):
        return []
    points: dict[int, ListedPoint] = {}
    for entry in document:
        if not isinstance(entry, dict):
            continue
        when = _int_or_none(entry.get("time"))
        if when is None or not _valid_epoch(when):
            continue
        points[when] = ListedPoint(
            time=when, size=_int_or_none(entry.get("size")), total_size=_int_or_none(entry.get("total_size"))
        )
    return [points[t] for t in sorted(points)]


_LEGACY_LINE = re.compile(r"^\s*(\d{1,12})\s+(\w+)\s*$")


def parse_legacy_increments(text: str) -> list[int]:
    """``rdiff-backup --parsable-output -l REPO`` (2.0, or 2.2's old command line): "<epoch> <type>"."""
    times: set[int] = set()
    for line in text.splitlines():
        match = _LEGACY_LINE.match(line)
        if match and _valid_epoch(int(match.group(1))):
            times.add(int(match.group(1)))
    return sorted(times)


_BYTE_UNITS = {"byte": 1, "bytes": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_BYTES = r"-?\d+(?:\.\d+)?\s(?:bytes?|KB|MB|GB|TB)"
_SIZE_ROW = re.compile(
    rf"^\s*(?P<time>\w{{3}} \w{{3}}\s+\d{{1,2}} \d\d:\d\d:\d\d \d{{4}})\s+(?P<size>{_BYTES})\s+"
    rf"(?P<total>{_BYTES})\s*(?P<mirror>\(current mirror\))?\s*$"
)


def parse_byte_summary(text: str) -> int | None:
    """rdiff-backup's rounded sizes: "61 bytes", "1 byte", "16.1 KB", "2.00 GB"."""
    match = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s+(bytes?|KB|MB|GB|TB)\s*", text)
    if match is None:
        return None
    try:
        return round(float(match.group(1)) * _BYTE_UNITS[match.group(2)])
    except (ValueError, OverflowError):
        return None


def parse_legacy_sizes(text: str) -> list[ListedPoint]:
    """The ``--list-increment-sizes`` table, printed with TZ=UTC, oldest first.

    2.0 prints the mirror first and then newer to older; 2.2's old command line prints oldest first
    with the mirror last. Either way each row is a time in ``asctime`` form and two rounded sizes.
    """
    points: dict[int, ListedPoint] = {}
    for line in text.splitlines():
        match = _SIZE_ROW.match(line)
        if match is None:
            continue
        try:
            moment = datetime.strptime(" ".join(match.group("time").split()), "%a %b %d %H:%M:%S %Y")
        except ValueError:
            continue
        when = calendar.timegm(moment.timetuple())
        points[when] = ListedPoint(
            time=when,
            size=parse_byte_summary(match.group("size")),
            total_size=parse_byte_summary(match.group("total")),
            approximate=True,
        )
    return [points[t] for t in sorted(points)]


# --- session_statistics --------------------------------------------------------------------------

_STAT_FIELDS: dict[str, tuple[str, type]] = {
    "StartTime": ("start_time", datetime),
    "EndTime": ("end_time", datetime),
    "ElapsedTime": ("elapsed_seconds", float),
    "SourceFiles": ("source_files", int),
    "SourceFileSize": ("source_file_size", int),
    "MirrorFiles": ("mirror_files", int),
    "MirrorFileSize": ("mirror_file_size", int),
    "NewFiles": ("new_files", int),
    "NewFileSize": ("new_file_size", int),
    "DeletedFiles": ("deleted_files", int),
    "DeletedFileSize": ("deleted_file_size", int),
    "ChangedFiles": ("changed_files", int),
    "ChangedSourceSize": ("changed_source_size", int),
    "ChangedMirrorSize": ("changed_mirror_size", int),
    "IncrementFiles": ("increment_files", int),
    "IncrementFileSize": ("increment_file_size", int),
    "TotalDestinationSizeChange": ("total_destination_size_change", int),
    "Errors": ("errors", int),
}
# One pass over the whole text (1,000 sessions are 18,000 lines). A line is a name, a number and
# perhaps its "(readable form)"; a line cut inside that form does not match, so it counts as missing.
_STAT_LINE = re.compile(r"^[^\S\n]*(\w+) (-?\d+(?:\.\d+)?)(?: \([^\n]*\))?[^\S\n]*$", re.MULTILINE)


def parse_session_statistics(text: str) -> SessionStats:
    """``StartTime 1700000000.00 (Tue Nov 14 22:13:20 2023)`` ... ``Errors 0``.

    ``complete`` is True only if every field is there and its line is whole (a truncated file loses
    its last lines, or ends inside one: "Errors" without its newline still counts, "Err" does not).
    """
    values: dict[str, Any] = {}
    for name, number_text in _STAT_LINE.findall(text):
        field = _STAT_FIELDS.get(name)
        if field is None:
            continue
        attribute, kind = field
        try:
            number = float(number_text)
            if kind is datetime:
                if not _valid_epoch(number):
                    continue
                values[attribute] = from_epoch(number)
            elif kind is int:
                values[attribute] = int(number)
            else:
                values[attribute] = number
        except (ValueError, OverflowError):
            continue
    complete = len(values) == len(_STAT_FIELDS)
    return SessionStats(**values, complete=complete)


# --- time stamps in file names ---------------------------------------------------------------------

_STAMP = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)T(\d\d)[:-](\d\d)[:-](\d\d)(?:(Z)|([+-])(\d\d)[:-](\d\d))$"
)


def parse_stamp(stamp: str) -> int | None:
    """``2026-03-01T02:30:00Z``, ``...+01:00``, or the compatible form ``2026-03-01T02-30-00+01-00``."""
    match = _STAMP.match(stamp)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None
    seconds = calendar.timegm(moment.timetuple())
    if match.group(8):
        offset = int(match.group(9)) * 3600 + int(match.group(10)) * 60
        seconds -= offset if match.group(8) == "+" else -offset
    return seconds if _valid_epoch(seconds) else None


def stamp_of(filename: str, prefix: str) -> str | None:
    """The time stamp in ``<prefix>.<stamp>.<ext...>`` ("session_statistics.2026-...Z.data")."""
    if not filename.startswith(prefix + "."):
        return None
    rest = filename[len(prefix) + 1:]
    stamp = rest.split(".", 1)[0]
    return stamp if parse_stamp(stamp) is not None else None


# --- changes ---------------------------------------------------------------------------------------

_CHANGE_WORDS: dict[str, ChangeKind] = {"new": "added", "deleted": "removed", "changed": "changed"}
_CHANGED_SINCE_LINE = re.compile(r"^(new|deleted|changed)\s+(.+)$")


def parse_changed_files(text: str) -> list[FileChange]:
    """``list files --changed-since`` (and 2.0's ``--list-changed-since``): "changed etc/passwd"."""
    changes: list[FileChange] = []
    for line in text.split("\n"):
        match = _CHANGED_SINCE_LINE.match(line)
        # rdiff-backup pads the word to 7 characters and a space; a path may itself begin with spaces
        if match:
            path = line[8:] if len(line) > 8 and line[7] == " " else match.group(2)
            changes.append(FileChange(path=path, kind=_CHANGE_WORDS[match.group(1)]))
    return changes


_COMPARE_LINE = re.compile(r"^(new|deleted|changed): (.+)$")


def parse_compare_output(text: str) -> list[FileChange]:
    """``compare`` output: YAML (``--parsable-output``: path/reason) or "reason: path" lines.

    rdiff-backup compares a folder (here: the newer state) with the repository at a time (the
    older state), so "new" means added since, and "deleted" means removed since.
    """
    document = _yaml_document(text)
    changes: list[FileChange] = []
    if isinstance(document, list):
        for entry in document:
            if not isinstance(entry, dict):
                continue
            reason, path = entry.get("reason"), entry.get("path")
            if isinstance(reason, str) and isinstance(path, str) and reason in _CHANGE_WORDS:
                changes.append(FileChange(path=path, kind=_CHANGE_WORDS[reason]))
        return changes
    for line in text.split("\n"):
        match = _COMPARE_LINE.match(line)
        if match:
            changes.append(FileChange(path=match.group(2), kind=_CHANGE_WORDS[match.group(1)]))
    return changes


_FILE_STATS_LINE = re.compile(r"^(.*) ([01]) (\d+|NA) (\d+|NA) (\d+|NA)$")


def parse_file_statistics_changes(text: str) -> list[StatsChange]:
    """Lines of ``file_statistics.<time>.data.gz``: "Filename Changed SourceSize MirrorSize IncrementSize".

    Only lines with Changed=1 count. The file name comes first and may hold spaces, so the four
    numbers are taken from the end of the line.
    """
    changes: list[StatsChange] = []
    for line in text.split("\n"):
        if line.startswith("#"):
            continue
        match = _FILE_STATS_LINE.match(line)
        if match is None or match.group(2) != "1" or not match.group(1):
            continue
        changes.append(
            StatsChange(path=match.group(1), existed_before=match.group(4) != "NA", exists_after=match.group(3) != "NA")
        )
    return changes


def net_changes(sessions: list[list[StatsChange]]) -> list[FileChange]:
    """Fold the changes of consecutive sessions (oldest first) into one change per path.

    A path that existed before the first of them and exists after the last is "changed"; one that
    appeared is "added"; one that went is "removed"; one that came and went in between is left out.
    """
    first_seen: dict[str, bool] = {}
    last_seen: dict[str, bool] = {}
    for changes in sessions:
        for change in changes:
            first_seen.setdefault(change.path, change.existed_before)
            last_seen[change.path] = change.exists_after
    result: list[FileChange] = []
    for path in sorted(first_seen):
        before, after = first_seen[path], last_seen[path]
        if before and after:
            result.append(FileChange(path, "changed"))
        elif after:
            result.append(FileChange(path, "added"))
        elif before:
            result.append(FileChange(path, "removed"))
    return result


def under_prefix(path: str, prefix: str | None) -> bool:
    """True if ``path`` is ``prefix`` or inside it ("etc" holds "etc/passwd", not "etcetera")."""
    if not prefix:
        return True
    prefix = prefix.strip("/")
    return not prefix or path == prefix or path.startswith(prefix + "/")


# --- rdiff-backup's log messages ---------------------------------------------------------------------

_LOG_START = re.compile(r"^(ERROR|WARNING|Fatal Error|NOTE|INFO|DEBUG):\s*(.*)$")


def parse_log_messages(text: str, levels: tuple[str, ...] = ("ERROR", "WARNING", "Fatal Error")) -> list[str]:
    """rdiff-backup's messages of the given levels, each joined from its indented continuation lines."""
    messages: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        match = _LOG_START.match(line)
        if match:
            messages.append((match.group(1), [match.group(2).strip()]))
        elif messages and line[:1].isspace() and line.strip():
            messages[-1][1].append(line.strip())
    return [f"{level}: {' '.join(parts)}".strip() for level, parts in messages if level in levels]


def first_line(text: str, limit: int = 300) -> str:
    """The first non-empty line, cut to ``limit`` characters: for one-line messages."""
    for line in text.splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""
