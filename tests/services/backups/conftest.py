"""Repositories written by the real rdiff-backup 2.2 for the backup tests, and runners that stand in
for other hosts (an old rdiff-backup, none at all, an unprivileged user, a host that is down).

The source changes between five daily sessions (dated with --current-time):

- s0 2024-01-01: etc/passwd, etc/hosts, etc/nginx/nginx.conf, var/www/index.html, var/www/old.txt
- s1 2024-01-02: etc/passwd changed; etc/new.conf and "var/www/a file with spaces.txt" added
- s2 2024-01-03: var/www/old.txt removed; var/www/index.html changed
- s3 2024-01-04: etc/secret.key added, readable by nobody, and the run made by root WITHOUT the
  capabilities that bypass file permissions: rdiff-backup cannot read it and logs the error
  (as root, a plain mode-000 file would be read; see panel/lab/backups.py)
- s4 2024-01-05: the key is readable again; etc/hosts changed
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.cancel import NEVER_CANCELLED, CancelToken
from services.errors import ConnectError
from services.runner import CommandResult, LocalRunner

DAY = 86400
T0 = int(datetime(2024, 1, 1, 2, 30, tzinfo=UTC).timestamp())
TIMES = [T0 + i * DAY for i in range(5)]
ERROR_SESSION = 3
NOBODY = 65534
# the tools the scripts use, for a PATH that has everything but rdiff-backup
SCRIPT_TOOLS = ("sh", "env", "mktemp", "rm", "grep", "cat", "awk", "ls", "sort", "tail", "head", "zcat", "gzip",
                "dirname", "wc", "sed", "tr")


@dataclass(frozen=True)
class Repos:
    main: Path  # the five sessions
    errors_last: Path  # as it was after s3: the newest session has an error
    source: Path  # the live source, as of s4
    times: tuple[int, ...]
    error_session_worked: bool  # the capability trick produced an error (always, as root with setpriv)


def _rdiff(*argv: str) -> None:
    subprocess.run(["rdiff-backup", "--no-fsync", *argv], check=True, capture_output=True)


def _write(root: Path, relative: str, text: str, when: int, mode: int = 0o644) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    os.utime(path, (when - 600, when - 600))


def _date_folders(root: Path, when: int, *folders: str) -> None:
    """Folders whose entries changed get the session's date, not the real clock (whether two quick
    sessions fall in the same second must not decide what changed)."""
    for folder in folders:
        os.utime(root / folder, (when - 600, when - 600))


def _without_dac(argv: list[str]) -> list[str]:
    if os.geteuid() == 0 and shutil.which("setpriv"):
        return ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", "--", *argv]
    return argv


@pytest.fixture(scope="session")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Repos:
    if shutil.which("rdiff-backup") is None:
        pytest.skip("rdiff-backup is not installed")
    base = tmp_path_factory.mktemp("rdiff")
    src, repo = base / "src", base / "repo"
    t = TIMES
    _write(src, "etc/passwd", "root:x:0:0:root:/root:/bin/bash\n", t[0])
    _write(src, "etc/hosts", "127.0.0.1 localhost\n", t[0])
    _write(src, "etc/nginx/nginx.conf", "worker_processes 2;\n", t[0])
    _write(src, "var/www/index.html", "<h1>v1</h1>\n", t[0])
    _write(src, "var/www/old.txt", "old\n", t[0])
    _date_folders(src, t[0], "etc/nginx", "etc", "var/www", "var", ".")
    _rdiff("--current-time", str(t[0]), "backup", str(src), str(repo))

    _write(src, "etc/passwd", "root:x:0:0:root:/root:/bin/bash\ndeploy:x:1000:1000::/home/deploy:/bin/sh\n", t[1])
    _write(src, "etc/new.conf", "new = 1\n", t[1])
    _write(src, "var/www/a file with spaces.txt", "spaces\n", t[1])
    _date_folders(src, t[1], "etc", "var/www")
    _rdiff("--current-time", str(t[1]), "backup", str(src), str(repo))

    (src / "var/www/old.txt").unlink()
    _write(src, "var/www/index.html", "<h1>v2</h1>\n", t[2])
    _date_folders(src, t[2], "var/www")
    _rdiff("--current-time", str(t[2]), "backup", str(src), str(repo))

    _write(src, "etc/secret.key", "secret\n", t[3], mode=0o000)
    _date_folders(src, t[3], "etc")
    subprocess.run(
        _without_dac(["rdiff-backup", "--no-fsync", "--current-time", str(t[3]), "backup", str(src), str(repo)]),
        check=True,
        capture_output=True,
    )
    errors_last = base / "errors-last"
    shutil.copytree(repo, errors_last, symlinks=True)
    stats = (repo / "rdiff-backup-data").glob("session_statistics.2024-01-04*")
    worked = any("Errors 1" in p.read_text() for p in stats)

    (src / "etc/secret.key").chmod(0o600)
    _write(src, "etc/hosts", "127.0.0.1 localhost\n10.0.0.2 db\n", t[4])
    _rdiff("--current-time", str(t[4]), "backup", str(src), str(repo))
    return Repos(main=repo, errors_last=errors_last, source=src, times=tuple(TIMES), error_session_worked=worked)


def copy_repo(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True)
    return target


@pytest.fixture
def repo_copy(repos: Repos, tmp_path: Path) -> Path:
    """A private copy of the main repository, for tests that change it."""
    return copy_repo(repos.main, tmp_path / "repo")


@pytest.fixture(scope="session")
def broken_repo(repos: Repos, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The last backup broke off: rdiff-backup had written its new current_mirror marker (it does
    so first) and died before removing the old one. Two markers is exactly what rdiff-backup checks."""
    repo = copy_repo(repos.main, tmp_path_factory.mktemp("broken") / "repo")
    later = datetime.fromtimestamp(repos.times[-1] + DAY, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    (repo / "rdiff-backup-data" / f"current_mirror.{later}.data").write_text("PID 999999\n")
    return repo


@pytest.fixture(scope="session")
def truncated_repo(repos: Repos, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The newest session_statistics file cut in the middle (a full disk, a crash while writing)."""
    repo = copy_repo(repos.main, tmp_path_factory.mktemp("truncated") / "repo")
    newest = sorted((repo / "rdiff-backup-data").glob("session_statistics.*.data"))[-1]
    newest.write_bytes(newest.read_bytes()[:150])
    return repo


@pytest.fixture(scope="session")
def no_file_stats_repo(repos: Repos, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """As if written with --no-file-statistics: changes_between must compare instead."""
    repo = copy_repo(repos.main, tmp_path_factory.mktemp("nofilestats") / "repo")
    for path in (repo / "rdiff-backup-data").glob("file_statistics.*"):
        path.unlink()
    return repo


@pytest.fixture(scope="session")
def public_repo() -> Iterator[Path]:
    """A copy under a folder everyone may enter (pytest's own tmp folders are root-only), so that an
    unprivileged reader gets as far as the repository and is stopped by rdiff-backup-data (mode 700)."""
    folder = Path(tempfile.mkdtemp(prefix="panel-public-"))
    try:
        folder.chmod(0o755)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- runners that stand in for other hosts --------------------------------------------------------------


class PrefixRunner(LocalRunner):
    """A LocalRunner whose commands run under a prefix (``env PATH=...``, ``setpriv --reuid ...``)."""

    def __init__(self, prefix: list[str], where: str) -> None:
        self.prefix = prefix
        self.where = where

    def run(
        self,
        argv: list[str],
        *,
        stdin: bytes | None = None,
        timeout: float = 30.0,
        cancel: CancelToken = NEVER_CANCELLED,
    ) -> CommandResult:
        return super().run([*self.prefix, *argv], stdin=stdin, timeout=timeout, cancel=cancel)


class DownRunner:
    """A host that cannot be reached: what the SSH runner raises then."""

    where = "app9"

    def run(self, argv: list[str], **_: object) -> CommandResult:
        raise ConnectError("Could not connect to app9 (203.0.113.9:22): connection refused.")

    def run_script(self, script: str, **_: object) -> CommandResult:
        raise ConnectError("Could not connect to app9 (203.0.113.9:22): connection refused.")


class CountingRunner(LocalRunner):
    """Counts round trips."""

    def __init__(self) -> None:
        self.calls = 0

    def run(
        self,
        argv: list[str],
        *,
        stdin: bytes | None = None,
        timeout: float = 30.0,
        cancel: CancelToken = NEVER_CANCELLED,
    ) -> CommandResult:
        self.calls += 1
        return super().run(argv, stdin=stdin, timeout=timeout, cancel=cancel)


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture(scope="session")
def old_rdiff_runner(tmp_path_factory: pytest.TempPathFactory) -> PrefixRunner:
    """rdiff-backup 2.0 (Debian bullseye): rejects --api-version as 2.0's getopt does, and answers
    the old command line (the real 2.2 still speaks it)."""
    folder = tmp_path_factory.mktemp("old-rdiff")
    _executable(
        folder / "rdiff-backup",
        "#!/bin/sh\n"
        'for a in "$@"; do\n'
        '  if [ "$a" = --api-version ]; then\n'
        '    echo "Fatal Error: Bad commandline options: option --api-version not recognized" >&2\n'
        '    echo "See the rdiff-backup manual page for more information." >&2\n'
        "    exit 1\n"
        "  fi\n"
        "done\n"
        f'exec {shutil.which("rdiff-backup")} "$@"\n',
    )
    return PrefixRunner(["env", f"PATH={folder}:{os.environ['PATH']}"], "old-host")


@pytest.fixture(scope="session")
def ancient_rdiff_runner(tmp_path_factory: pytest.TempPathFactory) -> PrefixRunner:
    """An rdiff-backup that understands neither command line."""
    folder = tmp_path_factory.mktemp("ancient-rdiff")
    _executable(
        folder / "rdiff-backup",
        '#!/bin/sh\necho "Fatal Error: Bad commandline options: option $1 not recognized" >&2\nexit 1\n',
    )
    return PrefixRunner(["env", f"PATH={folder}:{os.environ['PATH']}"], "ancient-host")


@pytest.fixture(scope="session")
def no_rdiff_runner(tmp_path_factory: pytest.TempPathFactory) -> PrefixRunner:
    """A host with a shell and the usual tools but no rdiff-backup on PATH."""
    folder = tmp_path_factory.mktemp("no-rdiff-bin")
    for tool in SCRIPT_TOOLS:
        found = shutil.which(tool)
        if found:
            (folder / tool).symlink_to(found)
    return PrefixRunner([shutil.which("env") or "/usr/bin/env", f"PATH={folder}"], "bare-host")


@pytest.fixture(scope="session")
def nobody_runner() -> PrefixRunner:
    """Reads as the unprivileged user nobody (we run as root, which no permission stops)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to switch to an unprivileged user")
    return PrefixRunner(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"], "app1 (as nobody)"
    )


@pytest.fixture
def down_runner() -> DownRunner:
    return DownRunner()


@pytest.fixture
def counting_runner() -> CountingRunner:
    return CountingRunner()
