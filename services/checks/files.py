"""Watched paths: compare what is on the server with the accepted baseline (as ``aide --check`` does).

The first scan of a path is its baseline (``aide --init``). Every later scan lists every entry
(type, mode, owner, group, size, times, link target) and hashes only the regular files whose
ctime is newer than the baseline: any change of content, mode, owner or name sets the ctime, and
user space cannot set it back, so an unchanged ctime means unchanged content.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from services.checks.parsers import FileEntry

KIND_NAMES = {"f": "file", "d": "folder", "l": "symlink", "p": "fifo", "s": "socket", "c": "char device",
              "b": "block device"}


@dataclass(frozen=True)
class Baseline:
    """The accepted state of a server's watched paths. ``server_time`` is the server's clock when it
    was scanned: files whose ctime is older cannot have changed since."""

    paths: tuple[str, ...]
    entries: dict[str, FileEntry]
    server_time: float
    scan_id: str = ""


@dataclass(frozen=True)
class WatchPlan:
    """What the host script must do for the watched paths."""

    paths: tuple[str, ...]  # every watched path
    full: tuple[str, ...]  # paths with no baseline yet: hash every file
    since: float | None  # hash files under the other paths whose ctime is newer than this


def plan_for(paths: Iterable[str], baseline: Baseline | None) -> WatchPlan:
    wanted = tuple(dict.fromkeys(p for p in paths if p))
    if baseline is None:
        return WatchPlan(wanted, wanted, None)
    known = set(baseline.paths)
    full = tuple(p for p in wanted if p not in known)
    # one second of slack: a change in the same second as the scan still counts
    return WatchPlan(wanted, full, baseline.server_time - 1.0)


@dataclass(frozen=True)
class FileChange:
    path: str
    kind: str  # added, removed, changed
    details: tuple[str, ...] = ()
    before: FileEntry | None = None
    after: FileEntry | None = None

    def line(self) -> str:
        if self.kind == "added" and self.after is not None:
            return f"added   {self.path} ({describe(self.after)})"
        if self.kind == "removed" and self.before is not None:
            return f"removed {self.path} (was {describe(self.before)})"
        return f"changed {self.path}: {', '.join(self.details)}"


def describe(entry: FileEntry) -> str:
    kind = KIND_NAMES.get(entry.kind, entry.kind)
    text = f"{kind} {entry.mode} {entry.owner}:{entry.group}"
    if entry.kind == "f":
        text += f", {entry.size} bytes"
        if entry.sha256:
            text += f", sha256 {entry.sha256[:12]}…"
    if entry.kind == "l":
        text += f" -> {entry.link}"
    return text


def under(path: str, root: str) -> bool:
    root = root.rstrip("/") or "/"
    return path == root or path.startswith(root if root == "/" else root + "/")


def compare(before: FileEntry, after: FileEntry) -> tuple[str, ...]:
    details = []
    if before.kind != after.kind:
        details.append(f"type {KIND_NAMES.get(before.kind, before.kind)} → {KIND_NAMES.get(after.kind, after.kind)}")
    if after.kind == "f" and before.kind == "f":
        if before.sha256 and after.sha256 and before.sha256 != after.sha256:
            details.append(f"content (sha256 {before.sha256[:12]}… → {after.sha256[:12]}…, "
                           f"{before.size} → {after.size} bytes)")
        elif before.size != after.size:
            details.append(f"content ({before.size} → {after.size} bytes)")
    if before.mode != after.mode:
        details.append(f"mode {before.mode} → {after.mode}")
    if before.owner != after.owner:
        details.append(f"owner {before.owner} → {after.owner}")
    if before.group != after.group:
        details.append(f"group {before.group} → {after.group}")
    if before.link != after.link:
        details.append(f"target {before.link or '(none)'} → {after.link or '(none)'}")
    return tuple(details)


@dataclass(frozen=True)
class WatchScan:
    """One scan compared with the baseline. ``entries`` is the complete current state (every regular
    file with a hash where it could be read): accepting the scan makes it the new baseline."""

    paths: tuple[str, ...]
    entries: dict[str, FileEntry]
    server_time: float
    changes: tuple[FileChange, ...] = ()
    adopted: tuple[str, ...] = ()  # paths that had no baseline: recorded now, not reported
    initial: bool = False  # there was no baseline at all: this scan is the baseline
    unreadable: tuple[str, ...] = ()  # files that could not be hashed
    errors: tuple[str, ...] = ()  # find's complaints (permission denied, missing paths)
    scan_id: str = field(default="", compare=False)

    @property
    def counts(self) -> dict[str, int]:
        counts = {"added": 0, "removed": 0, "changed": 0}
        for change in self.changes:
            counts[change.kind] = counts.get(change.kind, 0) + 1
        return counts


def merge_scan(
    plan: WatchPlan,
    baseline: Baseline | None,
    listed: dict[str, FileEntry],
    sums: dict[str, str],
    server_time: float,
    *,
    errors: tuple[str, ...] = (),
    scan_id: str = "",
) -> WatchScan:
    """Give every listed file its hash (new from this scan, else the baseline's) and compare."""
    known = baseline.entries if baseline is not None else {}
    entries: dict[str, FileEntry] = {}
    unreadable: list[str] = []
    full_roots = plan.full
    for path, entry in listed.items():
        if entry.kind == "f":
            digest = sums.get(path)
            if digest is None:
                old = known.get(path)
                fresh = plan.since is None or any(under(path, root) for root in full_roots) or \
                    entry.ctime > plan.since
                if not fresh and old is not None and old.kind == "f":
                    digest = old.sha256
                else:
                    unreadable.append(path)
            entry = replace(entry, sha256=digest)
        entries[path] = entry
    if baseline is None:
        return WatchScan(plan.paths, entries, server_time, (), plan.paths, True, tuple(sorted(unreadable)), errors,
                         scan_id)
    adopted = tuple(plan.full)
    compared_roots = [p for p in plan.paths if p not in adopted]
    changes: list[FileChange] = []

    def watched(path: str) -> bool:
        return any(under(path, root) for root in compared_roots)

    for path, entry in entries.items():
        if not watched(path):
            continue
        old = known.get(path)
        if old is None:
            changes.append(FileChange(path, "added", (), None, entry))
            continue
        details = compare(old, entry)
        if details:
            changes.append(FileChange(path, "changed", details, old, entry))
    for path, old in known.items():
        if path not in entries and watched(path):
            changes.append(FileChange(path, "removed", (), old, None))
    changes.sort(key=lambda c: (c.path, c.kind))
    return WatchScan(plan.paths, entries, server_time, tuple(changes), adopted, False, tuple(sorted(unreadable)),
                     errors, scan_id)


def accepted(scan: WatchScan) -> Baseline:
    """The baseline that accepting ``scan`` makes."""
    return Baseline(scan.paths, dict(scan.entries), scan.server_time, scan.scan_id)
