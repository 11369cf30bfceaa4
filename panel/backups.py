"""Backups glue shared by the CLI and the window: which runner reads a repository, reading them all
(hosts in parallel, each host's answer as soon as it arrives), the audited actions (verify, remove,
regress), and restoring to this laptop.

Restoring is two steps, so that no local file is ever overwritten without the caller's explicit
choice:

1. :func:`prepare_restore` restores the path into a fresh temporary folder where the repository is
   (``services.backups.restore_to_temp``), lists that copy in one round trip, and returns a
   :class:`PreparedRestore` whose ``conflicts`` are the local paths that already exist.
2. :func:`finish_restore` copies the files (over SFTP from a server, several files at a time; with a
   plain copy from this laptop's temporary folder), with progress and cancellation, under the
   caller's ``on_conflict`` choice ("refuse", "skip" or "overwrite"), then deletes the temporary
   folder. :func:`discard_restore` deletes it when the operator changes their mind.

Each file is written to a hidden part file beside its place and renamed into place once complete,
so a cancelled or failed copy never leaves a half-written file; files completed before it stay.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from services.backups import (
    FileChange,
    RemovalResult,
    Repository,
    RepoTarget,
    RestoredCopy,
    Session,
    VerifyResult,
    changed_in_last_backup,
    changed_since_last_backup,
    changes_between,
    cleanup_temp,
    plan_remove_older_than,
    read_backups,
    regress,
    remove_older_than,
    restore_to_temp,
    targets_of,
    verify,
)
from services.backups.models import iso_utc
from services.cancel import NEVER_CANCELLED, CancelToken
from services.errors import Cancelled, PanelError
from services.inventory import BackupSpec
from services.runner import CommandRunner, LocalRunner

if TYPE_CHECKING:
    from panel.context import PanelContext

LOCAL = "local"  # BackupSpec.via of a repository on this laptop
ConflictChoice = Literal["refuse", "skip", "overwrite"]
RepoRef = Repository | RepoTarget

SFTP_CHANNELS = 4  # files copied at once from a server: each file costs ~3 round trips
CHUNK = 32768
PROGRESS_INTERVAL = 0.05  # seconds between two progress reports


# --- runners and targets ------------------------------------------------------------------------------


def runner_for(context: PanelContext, host: str) -> CommandRunner:
    """The runner of a server name, or of ``"local"`` (this laptop)."""
    if host == LOCAL:
        return LocalRunner()
    return context.runner(host)


def host_of(repo: RepoRef) -> str:
    """Where a repository is read: its ``via`` (another server, or "local"), else its own server."""
    if isinstance(repo, RepoTarget):
        return repo.host
    return repo.via or repo.server


def repo_runner(context: PanelContext, repo: RepoRef) -> CommandRunner:
    return runner_for(context, host_of(repo))


def label(repo: RepoRef) -> str:
    """``app1/local``: whose backup, and its name in the config."""
    if isinstance(repo, RepoTarget):
        return f"{repo.server}/{repo.spec.name}"
    return f"{repo.server}/{repo.name}"


def targets(context: PanelContext, server: str | None = None) -> list[RepoTarget]:
    """Every repository of the inventory, or of one server (an unknown name is a PanelError)."""
    inventory = context.inventory
    servers = [inventory.server(server)] if server else list(inventory.servers.values())
    return targets_of(servers)


def find_target(context: PanelContext, server: str, name: str) -> RepoTarget:
    spec = context.spec(server)
    for backup in spec.backups:
        if backup.name == name:
            return RepoTarget(server, backup)
    known = ", ".join(b.name for b in spec.backups) or "none"
    raise PanelError(f"{server} has no backup named {name!r} in the config (known: {known}).")


def spec_of(context: PanelContext, repo: RepoRef) -> BackupSpec:
    if isinstance(repo, RepoTarget):
        return repo.spec
    try:
        return find_target(context, repo.server, repo.name).spec
    except PanelError:  # the config changed since it was read: what the repository says is enough
        return BackupSpec(repo.name, repo.path, repo.via, repo.max_age_hours)


def live_root(context: PanelContext, repo: RepoRef) -> str:
    """Where the files this repository backs up live on its server: the backup's ``source`` if the
    config sets it; else the folder that holds the ``etc`` among the server's ``checks.watch_paths``
    (a server whose system lives under another root, as the demo's do); else ``/``."""
    spec = spec_of(context, repo)
    if spec.source:
        return spec.source
    try:
        watched = context.spec(repo.server).checks.watch_paths
    except PanelError:
        return "/"
    roots = [posixpath.dirname(path.rstrip("/")) or "/" for path in watched
             if posixpath.basename(path.rstrip("/")) == "etc" and path.startswith("/")]
    return min(roots, key=len) if roots else "/"


# --- reading ---------------------------------------------------------------------------------------------


def read_all(
    context: PanelContext,
    server: str | None = None,
    *,
    cancel: CancelToken = NEVER_CANCELLED,
    with_sizes: bool = True,
    now: datetime | None = None,
    timeout: float = 120.0,
    on_host: Callable[[str, list[Repository]], object] | None = None,
) -> list[Repository]:
    """Every repository (of ``server``, or of the whole inventory), in config order.

    One round trip per host, hosts in parallel. ``on_host(host, repositories)`` hears each host's
    answer as it arrives (on a worker thread), so a host that is down delays nobody else. A host
    that fails gives its repositories a ``problem``; only Cancelled (and an unknown ``server``) raise.
    """
    chosen = targets(context, server)
    by_host: dict[str, list[int]] = {}
    for index, target in enumerate(chosen):
        by_host.setdefault(target.host, []).append(index)
    results: list[Repository | None] = [None] * len(chosen)

    def read_host(host: str, indexes: list[int]) -> None:
        repositories = read_backups(
            [chosen[i] for i in indexes], lambda name: runner_for(context, name),
            with_sizes=with_sizes, now=now, cancel=cancel, timeout=timeout,
        )
        for index, repository in zip(indexes, repositories, strict=True):
            results[index] = repository
        if on_host is not None:
            on_host(host, repositories)

    if len(by_host) <= 1:
        for host, indexes in by_host.items():
            read_host(host, indexes)
    else:
        with ThreadPoolExecutor(max_workers=min(8, len(by_host)), thread_name_prefix="backups") as pool:
            futures = [pool.submit(read_host, host, indexes) for host, indexes in by_host.items()]
            for future in futures:
                future.result()
    return [repository for repository in results if repository is not None]


def read_one(
    context: PanelContext,
    repo: RepoRef,
    *,
    cancel: CancelToken = NEVER_CANCELLED,
    with_sizes: bool = True,
    timeout: float = 120.0,
) -> Repository:
    target = repo if isinstance(repo, RepoTarget) else RepoTarget(repo.server, spec_of(context, repo))
    return read_backups([target], lambda name: runner_for(context, name), with_sizes=with_sizes, cancel=cancel,
                        timeout=timeout)[0]


# --- times and sizes, as the CLI and the window write them ------------------------------------------------

_INTERVAL = re.compile(r"^(\d+)([smhDdWwMYy])$")
_INTERVAL_SECONDS = {"s": 1, "m": 60, "h": 3600, "D": 86400, "d": 86400, "W": 7 * 86400, "w": 7 * 86400,
                     "M": 30 * 86400, "Y": 365 * 86400, "y": 365 * 86400}


def parse_time(text: str, *, now: datetime | None = None) -> datetime:
    """A moment as the operator types it: ISO 8601 (``2026-03-01T02:30:00Z``; no zone means UTC, as
    the panel prints UTC), a date (``2026-03-01``, its midnight UTC), seconds since the epoch, or an
    age as rdiff-backup spells it (``90D``, ``4W``, ``6M``, ``1Y``, ``12h``; m is minutes, M months)."""
    value = text.strip()
    if not value:
        raise PanelError("No time given.")
    match = _INTERVAL.match(value)
    if match:
        moment = (now or datetime.now(UTC)) - timedelta(seconds=int(match.group(1)) * _INTERVAL_SECONDS[match.group(2)])
        return moment.replace(microsecond=0)
    if value.isdigit():
        return datetime.fromtimestamp(int(value), UTC)
    try:
        moment = datetime.fromisoformat(value.replace(" ", "T", 1) if len(value) > 10 else value)
    except ValueError:
        raise PanelError(
            f"{text!r} is not a time: give ISO 8601 (2026-03-01T02:30:00Z), a date (2026-03-01), seconds "
            "since the epoch, or an age such as 90D, 4W, 6M or 1Y."
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def human_size(size: int | float | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def human_age(hours: float | None) -> str:
    if hours is None:
        return "?"
    if hours < 1:
        return f"{max(0, hours * 60):.0f} min"
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def session_line(session: Session) -> str:
    """One line per session, as the removal confirmation lists them."""
    kind = "mirror" if session.is_mirror else "increment" if session.listed is not False else "no changes"
    parts = [iso_utc(session.time), kind]
    if session.size is not None:
        parts.append(human_size(session.size))
    if session.errors:
        parts.append(f"{session.errors} error(s)")
    return "  ".join(parts)


# --- audited actions ------------------------------------------------------------------------------------


def verify_repository(
    context: PanelContext,
    repo: RepoRef,
    at: datetime | None = None,
    *,
    cancel: CancelToken = NEVER_CANCELLED,
    progress: Callable[[str], None] | None = None,
    timeout: float = 3600.0,
) -> VerifyResult:
    """Verify the backup at ``at`` (None: the newest); the outcome goes to the audit log
    (ok, problems, failed or cancelled), and failures are raised after that."""
    when = "the newest backup" if at is None else iso_utc(at)
    try:
        result = verify(repo_runner(context, repo), spec_of(context, repo), at, cancel=cancel, progress=progress,
                        timeout=timeout)
    except Cancelled:
        context.store.audit("backup.verify", label(repo), "cancelled", f"{when}")
        raise
    except PanelError as error:
        context.store.audit("backup.verify", label(repo), "failed", f"{when}: {error}"[:2000])
        raise
    if result.ok:
        context.store.audit("backup.verify", label(repo), "ok", f"{when}: every file matches its checksum")
    else:
        detail = f"{when}: {len(result.problems)} problem(s): " + "; ".join(result.problems[:5])
        context.store.audit("backup.verify", label(repo), "problems", detail[:2000])
    return result


def plan_removal(context: PanelContext, repo: RepoRef, older_than: datetime, *,
                 cancel: CancelToken = NEVER_CANCELLED) -> list[Session]:
    """Exactly the sessions a removal would delete, read fresh (the mirror always stays)."""
    return plan_remove_older_than(repo_runner(context, repo), spec_of(context, repo), older_than, cancel=cancel)


def remove_sessions(
    context: PanelContext,
    repo: RepoRef,
    older_than: datetime,
    plan: Sequence[Session],
    *,
    cancel: CancelToken = NEVER_CANCELLED,
) -> RemovalResult:
    """Remove the increments older than ``older_than`` (``plan`` is what the operator confirmed). Audited."""
    what = f"older than {iso_utc(older_than)}"
    listed = list(plan)
    try:
        result = remove_older_than(repo_runner(context, repo), spec_of(context, repo), older_than, plan=listed,
                                   cancel=cancel)
    except PanelError as error:
        context.store.audit("backup.remove-older-than", label(repo), "failed", f"{what}: {error}"[:2000])
        raise
    removed = result.removed
    if removed:
        detail = (f"{what}: removed {len(removed)} session(s), {iso_utc(removed[0].time)} … "
                  f"{iso_utc(removed[-1].time)}")
    else:
        detail = f"{what}: nothing to remove"
    context.store.audit("backup.remove-older-than", label(repo), "ok", detail)
    return result


def regress_repository(context: PanelContext, repo: RepoRef, *, cancel: CancelToken = NEVER_CANCELLED) -> None:
    """Undo a backup that broke off. Audited."""
    try:
        regress(repo_runner(context, repo), spec_of(context, repo), cancel=cancel)
    except PanelError as error:
        context.store.audit("backup.regress", label(repo), "failed", str(error)[:2000])
        raise
    context.store.audit("backup.regress", label(repo), "ok", "the broken-off backup was undone")


# --- what changed -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeReport:
    title: str  # what was compared, for the operator
    changes: tuple[FileChange, ...]


def changes(
    context: PanelContext,
    repository: Repository,
    since: datetime,
    until: datetime | None = None,
    *,
    prefix: str | None = None,
    cancel: CancelToken = NEVER_CANCELLED,
) -> ChangeReport:
    """What was added, removed or changed between the backup at ``since`` and at ``until`` (None: the newest)."""
    newest = repository.newest
    if until is not None and newest is not None and until >= newest:
        until = None  # up to the newest backup rdiff-backup answers directly
    found = changes_between(repo_runner(context, repository), repository, since, until, prefix=prefix or None,
                            cancel=cancel)
    end = "the newest backup" if until is None else iso_utc(until)
    under = f" under /{prefix.strip('/')}" if prefix and prefix.strip("/") else ""
    return ChangeReport(f"{label(repository)}{under}: from {iso_utc(since)} to {end}", tuple(found))


def etc_changes(
    context: PanelContext, repository: Repository, subpath: str = "etc", *, cancel: CancelToken = NEVER_CANCELLED
) -> ChangeReport:
    """The quick intrusion check: what changed in /etc since the last backup.

    For a repository on the server itself, the live files (under the backup's ``source``) are compared
    with the newest backup. A repository elsewhere (``via``) cannot see the live files, so it says what
    the newest backup recorded as changed against the one before.
    """
    spec = spec_of(context, repository)
    runner = repo_runner(context, repository)
    if repository.via is None:
        found = changed_since_last_backup(runner, spec, subpath, source_root=live_root(context, repository),
                                          cancel=cancel)
        newest = repository.newest
        when = f" ({iso_utc(newest)})" if newest else ""
        title = f"{repository.server}: /{subpath} now, against the last backup{when}"
    else:
        if not repository.sessions:
            repository = read_one(context, repository, cancel=cancel, with_sizes=False)
        found = changed_in_last_backup(runner, repository, subpath, cancel=cancel)
        title = (f"{label(repository)} is on {repository.via}, away from the live files: what its newest backup "
                 f"changed in /{subpath}")
    return ChangeReport(title, tuple(found))


# --- restore ----------------------------------------------------------------------------------------------

EntryKind = Literal["file", "dir", "link"]


@dataclass(frozen=True)
class RestoreEntry:
    relative: str  # "" for the restored item itself, else "sub/dir/file" under it
    kind: EntryKind
    size: int = 0
    mode: int = 0o644
    mtime: float = 0.0
    link_target: str = ""


@dataclass(frozen=True)
class PreparedRestore:
    repo: RepoTarget
    copy: RestoredCopy
    host: str  # "local" or the server that holds the repository (and the temporary copy)
    entries: tuple[RestoreEntry, ...]
    destination: Path  # the local folder chosen by the operator
    conflicts: tuple[Path, ...]  # local paths that exist where a restored file or folder would go

    @property
    def name(self) -> str:
        return posixpath.basename(self.copy.target)

    @property
    def local_root(self) -> Path:
        """Where the restored file or folder will be: destination/<its name>."""
        return self.destination / self.name

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries if e.kind == "file")

    @property
    def file_count(self) -> int:
        return sum(1 for e in self.entries if e.kind != "dir")

    def local_path(self, entry: RestoreEntry) -> Path:
        return self.local_root / entry.relative if entry.relative else self.local_root


@dataclass(frozen=True)
class RestoreProgress:
    done_bytes: int
    total_bytes: int
    files_done: int
    files_total: int
    current: str = ""

    @property
    def fraction(self) -> float:
        if self.total_bytes:
            return min(1.0, self.done_bytes / self.total_bytes)
        return 1.0 if self.files_total == 0 else self.files_done / self.files_total


@dataclass(frozen=True)
class RestoreOutcome:
    local_root: Path
    written: tuple[Path, ...]
    kept: tuple[Path, ...]  # local files that existed and were kept ("skip")
    bytes: int
    notes: tuple[str, ...] = ()


class RestoreConflict(PanelError):
    """Local files exist where the restore would write, and the caller did not say what to do."""

    def __init__(self, conflicts: Sequence[Path]) -> None:
        shown = ", ".join(str(p) for p in list(conflicts)[:5])
        more = f" and {len(conflicts) - 5} more" if len(conflicts) > 5 else ""
        super().__init__(f"{len(conflicts)} local file(s) already exist: {shown}{more}. Nothing was overwritten; "
                         "choose to overwrite them or to keep them, or restore to another folder.")
        self.conflicts = tuple(conflicts)


_FIND_FORMAT = "%y %s %m %T@ %P\\0%l\\0"


def _list_tree(runner: CommandRunner, root: str, *, cancel: CancelToken) -> list[RestoreEntry]:
    """Every file, folder and link under ``root`` (itself included) in ONE command (GNU find)."""
    result = runner.run(["find", root, "-printf", _FIND_FORMAT], timeout=300, cancel=cancel)
    if not result.ok:
        raise PanelError(f"Could not list the restored copy {root} on {runner.where}: "
                         f"{result.error_text().strip()[:300]}")
    fields = result.stdout.split(b"\0")
    entries = []
    for number in range(0, len(fields) - 1, 2):
        head, link = fields[number], fields[number + 1]
        parts = head.split(b" ", 4)
        if len(parts) != 5:
            continue
        kind_code, size, mode, mtime, relative_bytes = parts
        kind: EntryKind | None = {b"f": "file", b"d": "dir", b"l": "link"}.get(kind_code)  # type: ignore[assignment]
        if kind is None:
            continue  # a socket, a fifo, a device: nothing to copy to a laptop
        relative = relative_bytes.decode("utf-8", errors="surrogateescape")
        if relative.startswith("/") or ".." in relative.split("/"):
            continue
        entries.append(RestoreEntry(relative, kind, int(size) if kind == "file" else 0, int(mode, 8) & 0o7777,
                                    float(mtime), link.decode("utf-8", errors="surrogateescape")))
    entries.sort(key=lambda e: (e.relative.count("/") if e.relative else -1, e.relative))
    if not entries:
        raise PanelError(f"The restored copy {root} on {runner.where} is empty or could not be read.")
    return entries


def _local_conflicts(local_root: Path, entries: Sequence[RestoreEntry]) -> list[Path]:
    conflicts = []
    for entry in entries:
        path = local_root / entry.relative if entry.relative else local_root
        if not os.path.lexists(path):
            continue
        if entry.kind == "dir" and path.is_dir() and not path.is_symlink():
            continue  # a real folder: the restored files go into it
        conflicts.append(path)
    return conflicts


def prepare_restore(
    context: PanelContext,
    repo: RepoRef,
    path: str,
    at: datetime | None,
    destination: Path,
    *,
    cancel: CancelToken = NEVER_CANCELLED,
) -> PreparedRestore:
    """Restore ``path`` as of ``at`` into a temporary folder where the repository is, list it, and
    find the local conflicts. Hand the result to :func:`finish_restore` or :func:`discard_restore`."""
    destination = Path(destination).expanduser()
    if not destination.is_dir():
        raise PanelError(f"{destination} is not a folder on this laptop.")
    target = repo if isinstance(repo, RepoTarget) else RepoTarget(repo.server, spec_of(context, repo))
    runner = repo_runner(context, target)
    copy = restore_to_temp(runner, target.spec, path, at, cancel=cancel)
    try:
        entries = tuple(_list_tree(runner, copy.target, cancel=cancel))
        prepared = PreparedRestore(target, copy, target.host, entries, destination, ())
        conflicts = tuple(_local_conflicts(prepared.local_root, entries))
    except BaseException:
        with contextlib.suppress(PanelError):
            cleanup_temp(runner, copy)
        raise
    return PreparedRestore(target, copy, target.host, entries, destination, conflicts)


def discard_restore(context: PanelContext, prepared: PreparedRestore) -> None:
    cleanup_temp(runner_for(context, prepared.host), prepared.copy)


class _Progress:
    """Adds up bytes from several threads and reports at most every PROGRESS_INTERVAL seconds."""

    def __init__(self, prepared: PreparedRestore, report: Callable[[RestoreProgress], object] | None) -> None:
        self.total = prepared.total_bytes
        self.files_total = prepared.file_count
        self.report = report
        self.done = 0
        self.files_done = 0
        self.lock = threading.Lock()
        self.last = 0.0

    def add(self, count: int, current: str, *, file_done: bool = False) -> None:
        with self.lock:
            self.done += count
            if file_done:
                self.files_done += 1
            now = time.monotonic()
            if self.report is None or (now - self.last < PROGRESS_INTERVAL and not file_done):
                return
            self.last = now
            snapshot = RestoreProgress(self.done, self.total, self.files_done, self.files_total, current)
        self.report(snapshot)

    def final(self) -> None:
        if self.report is not None:
            self.report(RestoreProgress(self.done, self.total, self.files_done, self.files_total, ""))


class _Source:
    """Opens files of the temporary copy: over SFTP (one client per copying thread), or locally."""

    def __init__(self, context: PanelContext, prepared: PreparedRestore, cancel: CancelToken) -> None:
        self.context = context
        self.remote = not prepared.copy.local
        self.root = prepared.copy.target
        self.cancel = cancel
        self.lock = threading.Lock()
        self.clients: list[Any] = []
        self.local = threading.local()
        self.endpoint = context.system_endpoint(prepared.host) if self.remote else None
        self.unregister = cancel.on_cancel(self.close)

    def path(self, entry: RestoreEntry) -> str:
        return posixpath.join(self.root, entry.relative) if entry.relative else self.root

    def _client(self) -> Any:
        client = getattr(self.local, "client", None)
        if client is None:
            self.cancel.raise_if_cancelled("The restore")
            client = self.context.pool.sftp(self.endpoint, self.cancel)  # type: ignore[arg-type]
            with self.lock:
                self.clients.append(client)
            self.local.client = client
        return client

    @contextlib.contextmanager
    def open(self, entry: RestoreEntry) -> Iterator[IO[bytes]]:
        if not self.remote:
            with open(self.path(entry), "rb") as local_file:
                yield local_file
            return
        remote = self._client().open(self.path(entry), "rb")
        try:
            if entry.size:
                remote.prefetch(entry.size)  # every read request at once: one round trip, not one per chunk
            yield remote
        finally:
            with contextlib.suppress(Exception):
                remote.close()

    def close(self) -> None:
        with self.lock:
            clients, self.clients = self.clients, []
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()

    def finish(self) -> None:
        self.unregister()
        self.close()


def _part_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.panel-part-{os.getpid()}-{threading.get_ident()}")


def _remove_existing(path: Path) -> None:
    """Make room for a restored file or link (only ever a file or link: a real folder is refused)."""
    if path.is_symlink() or path.is_file():
        path.unlink()


def _copy_file(source: _Source, entry: RestoreEntry, path: Path, progress: _Progress, cancel: CancelToken,
               on_conflict: ConflictChoice) -> int | None:
    """Copy one file into place through a part file. None: a local file appeared meanwhile and is kept."""
    part = _part_path(path)
    written = 0
    try:
        with source.open(entry) as remote, open(part, "wb") as local:
            while True:
                cancel.raise_if_cancelled("The restore")
                chunk = remote.read(CHUNK)
                if not chunk:
                    break
                local.write(chunk)
                written += len(chunk)
                progress.add(len(chunk), entry.relative or path.name)
        os.chmod(part, entry.mode & 0o777)
        os.utime(part, (entry.mtime, entry.mtime))
        if os.path.lexists(path):  # it was not there when the copy started
            if on_conflict == "skip":
                return None
            if on_conflict == "refuse":
                raise RestoreConflict([path])
            if path.is_dir() and not path.is_symlink():
                raise PanelError(f"{path} is a folder on this laptop; a restored file cannot replace it.")
        os.replace(part, path)  # replaces a file or a link itself, never what a link points to
    except PanelError:
        raise
    except Exception as error:  # OSError, EOFError, paramiko's SSHException when a cancel closes the channel
        if cancel.cancelled:
            raise Cancelled("The restore") from None
        raise PanelError(f"Copying {entry.relative or path.name} failed: {error}") from None
    finally:
        with contextlib.suppress(OSError):
            part.unlink()
    progress.add(0, entry.relative or path.name, file_done=True)
    return written


def finish_restore(
    context: PanelContext,
    prepared: PreparedRestore,
    *,
    on_conflict: ConflictChoice = "refuse",
    progress: Callable[[RestoreProgress], object] | None = None,
    cancel: CancelToken = NEVER_CANCELLED,
    channels: int = SFTP_CHANNELS,
) -> RestoreOutcome:
    """Copy the prepared restore into its local folder, then delete the temporary copy (always).

    ``on_conflict``: "refuse" raises :class:`RestoreConflict` before anything is written if a local
    file is in the way; "skip" keeps the local files; "overwrite" replaces files and links (never a
    folder). Audited as ``backup.restore``.
    """
    runner = runner_for(context, prepared.host)
    try:
        outcome = _copy_all(context, prepared, on_conflict, progress, cancel, max(1, channels))
    except BaseException as error:
        with contextlib.suppress(PanelError):
            cleanup_temp(runner, prepared.copy)
        if isinstance(error, PanelError) and not isinstance(error, RestoreConflict):
            outcome_word = "cancelled" if isinstance(error, Cancelled) else "failed"
            context.store.audit("backup.restore", label(prepared.repo), outcome_word,
                                f"{_restore_what(prepared)}: {error}"[:2000])
        raise
    cleanup_temp(runner, prepared.copy, cancel=NEVER_CANCELLED)
    detail = (f"{_restore_what(prepared)}: {len(outcome.written)} file(s), {human_size(outcome.bytes)} written"
              + (f", {len(outcome.kept)} existing file(s) kept" if outcome.kept else "")
              + (f", {sum(1 for p in prepared.conflicts if p in set(outcome.written))} overwritten"
                 if on_conflict == "overwrite" and prepared.conflicts else ""))
    context.store.audit("backup.restore", label(prepared.repo), "ok", detail[:2000])
    return outcome


def _restore_what(prepared: PreparedRestore) -> str:
    when = "the newest backup" if prepared.copy.at is None else iso_utc(prepared.copy.at)
    return f"/{prepared.copy.source_path} as of {when} to {prepared.local_root}"


def _copy_all(
    context: PanelContext,
    prepared: PreparedRestore,
    on_conflict: ConflictChoice,
    report: Callable[[RestoreProgress], object] | None,
    cancel: CancelToken,
    channels: int,
) -> RestoreOutcome:
    conflicts = _local_conflicts(prepared.local_root, prepared.entries)
    if conflicts and on_conflict == "refuse":
        raise RestoreConflict(conflicts)
    replace = on_conflict == "overwrite"
    progress = _Progress(prepared, report)
    progress.final()
    written: list[Path] = []
    kept: list[Path] = []
    notes: list[str] = []
    skipped_dirs: list[Path] = []
    files: list[tuple[RestoreEntry, Path]] = []
    folders: list[tuple[RestoreEntry, Path]] = []

    def under_skipped(path: Path) -> bool:
        return any(path.is_relative_to(folder) for folder in skipped_dirs)

    # folders and links first (on this thread, in order: parents before children), then the files
    for entry in prepared.entries:
        cancel.raise_if_cancelled("The restore")
        path = prepared.local_path(entry)
        if under_skipped(path):
            continue
        exists = os.path.lexists(path)
        if entry.kind == "dir":
            if exists and path.is_dir() and not path.is_symlink():
                folders.append((entry, path))
                continue
            if exists and not replace:
                kept.append(path)
                skipped_dirs.append(path)
                continue
            if exists:
                _remove_existing(path)
            path.mkdir()
            folders.append((entry, path))
        elif entry.kind == "link":
            if exists and not replace:
                kept.append(path)
                continue
            if exists and path.is_dir() and not path.is_symlink():
                notes.append(f"{path} is a folder here; the restored link was not put in its place.")
                continue
            part = _part_path(path)
            os.symlink(entry.link_target, part)
            os.replace(part, path)
            written.append(path)
            progress.add(0, entry.relative, file_done=True)
        else:
            if exists and not replace:
                kept.append(path)
                continue
            if exists and path.is_dir() and not path.is_symlink():
                notes.append(f"{path} is a folder here; the restored file was not put in its place.")
                continue
            files.append((entry, path))

    # the copying threads stop at the first failure: an inner token, cancelled by the caller's too
    inner = CancelToken()
    unlink = cancel.on_cancel(inner.cancel)
    source = _Source(context, prepared, inner)
    copied_bytes = 0

    def take(path: Path, count: int | None) -> None:
        nonlocal copied_bytes
        if count is None:
            kept.append(path)
        else:
            copied_bytes += count
            written.append(path)

    try:
        if len(files) <= 1 or channels == 1 or not source.remote:
            for entry, path in files:
                take(path, _copy_file(source, entry, path, progress, inner, on_conflict))
        else:
            with ThreadPoolExecutor(max_workers=min(channels, len(files)), thread_name_prefix="restore") as pool:
                futures = [(path, pool.submit(_copy_file, source, entry, path, progress, inner, on_conflict))
                           for entry, path in files]
                first_error: BaseException | None = None
                for path, future in futures:
                    try:
                        take(path, future.result())
                    except BaseException as error:
                        if first_error is None:
                            first_error = error
                            inner.cancel()
                if first_error is not None:
                    if cancel.cancelled:
                        raise Cancelled("The restore")
                    raise first_error
    finally:
        unlink()
        source.finish()
    # folders get their modes and dates last (copying into them changed their dates), deepest first
    for entry, path in reversed(folders):
        with contextlib.suppress(OSError):
            os.chmod(path, (entry.mode & 0o777) | stat.S_IRWXU)
            os.utime(path, (entry.mtime, entry.mtime))
    progress.final()
    return RestoreOutcome(prepared.local_root, tuple(written), tuple(kept), copied_bytes, tuple(notes))


def restore(
    context: PanelContext,
    repo: RepoRef,
    path: str,
    at: datetime | None,
    destination: Path,
    *,
    on_conflict: ConflictChoice = "refuse",
    progress: Callable[[RestoreProgress], object] | None = None,
    cancel: CancelToken = NEVER_CANCELLED,
) -> RestoreOutcome:
    """Both steps at once, for scripts: with "refuse", a conflict raises before anything is written."""
    prepared = prepare_restore(context, repo, path, at, destination, cancel=cancel)
    if prepared.conflicts and on_conflict == "refuse":
        with contextlib.suppress(PanelError):
            discard_restore(context, prepared)
        raise RestoreConflict(prepared.conflicts)
    return finish_restore(context, prepared, on_conflict=on_conflict, progress=progress, cancel=cancel)


__all__ = [
    "LOCAL",
    "ChangeReport",
    "PreparedRestore",
    "RestoreConflict",
    "RestoreEntry",
    "RestoreOutcome",
    "RestoreProgress",
    "changes",
    "discard_restore",
    "etc_changes",
    "find_target",
    "finish_restore",
    "host_of",
    "human_age",
    "human_size",
    "label",
    "live_root",
    "parse_time",
    "plan_removal",
    "prepare_restore",
    "read_all",
    "read_one",
    "regress_repository",
    "remove_sessions",
    "repo_runner",
    "restore",
    "runner_for",
    "session_line",
    "spec_of",
    "targets",
    "verify_repository",
]
