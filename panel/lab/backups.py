"""The demo fleet's rdiff-backup repositories, written by the real rdiff-backup 2.2.

- app1 "local": ``servers/app1/var/backups/rdiff/app1``, 60 daily sessions at 02:30 UTC, the newest
  one the most recent 02:30 (so it is fresh: under 24 h old).
- app1 "offsite" on backup1: ``servers/backup1/srv/rdiff/app1``, the same repository as it was
  three days ago (what an rsync of the repository to the backup host leaves when that sync stops),
  so its newest session is 3 days old: stale.

The source is an ``etc/`` of config-like files (passwd, group, sshd_config, nginx, cron ...) and a
``var/www/app`` Django-like app with uploads and a growing log, changed from day to day. Session 41
ends with an error: a private key readable by nobody. As root that needs root without
CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH (``setpriv --bounding-set``); rdiff-backup then logs
"ListError ... Permission denied" to that session's error_log and counts it in its statistics. The
next session backs the key up. The live files end up in ``servers/app1`` (files the fleet already
wrote are kept), with one change made after the last backup (a line added to etc/passwd).

Speed: the repositories are built once per day into a template in ``~/.cache/panel/`` (keyed by
version, this file's hash and the date of the newest session: rdiff-backup keeps session times in
file names, so a template cannot be shifted in time) and copied with ``cp -a`` afterwards (0.1 to
2 s, with the disk). A build runs all sessions in ONE Python process by calling rdiff-backup's own
entry point (``rdiffbackup.run.main_run``, what /usr/bin/rdiff-backup calls) with Debian's
interpreter, which saves the ~0.2 s start-up of each run, and with --no-fsync: 4 to 7 s on 2 busy
cores, against ~20 s for 60 separate runs; the offsite repository is a copy made during the same build. Sessions
are dated with ``--current-time``; since rdiff-backup's EndTime is the real clock, the builder
rewrites EndTime and ElapsedTime of each session_statistics file to the start plus the run's
measured duration.

This file runs two ways: imported by the lab (standard library only at the top), and as a script
under the interpreter of rdiff-backup (``--build``), which does the building.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

VERSION = "lab-backups-v1"
SESSIONS = 60
OFFSITE_LAG_DAYS = 3
BACKUP_HOUR, BACKUP_MINUTE = 2, 30  # as the fleet's etc/cron.d/rdiff-backup says
ERROR_SESSION = 41  # index (0 = oldest) of the session that cannot read a file
MAX_AGE_HOURS = 26.0
SEED = 20240301
DAY = 86400


@dataclass(frozen=True)
class DemoRepo:
    server: str  # whose backup it is
    name: str  # the config's backup name
    path: Path  # where it is on this machine (the lab's servers share its filesystem)
    via: str | None  # None: read on the server itself; else the server that holds it
    max_age_hours: float


class DemoBackupError(RuntimeError):
    """The template could not be built (rdiff-backup missing or failing)."""


def newest_session_time(now: datetime | None = None) -> datetime:
    """The most recent 02:30 UTC at or before ``now``: the demo's newest local backup."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    today = now.replace(hour=BACKUP_HOUR, minute=BACKUP_MINUTE, second=0, microsecond=0)
    return today if today <= now else today - timedelta(days=1)


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "panel"


def make_demo_repositories(
    lab_dir: Path,
    servers_root: Path,
    *,
    now: datetime | None = None,
    cache_dir: Path | None = None,
) -> list[DemoRepo]:
    """Copy today's template repositories (building it first if needed) into the servers' roots."""
    started = time.monotonic()
    log = Path(lab_dir) / "logs" / "backups.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    newest = newest_session_time(now)
    template = ensure_template(newest, cache_dir or default_cache_dir(), log=log)

    local = Path(servers_root) / "app1" / "var" / "backups" / "rdiff" / "app1"
    offsite = Path(servers_root) / "backup1" / "srv" / "rdiff" / "app1"
    for source, target in ((template / "local", local), (template / "offsite", offsite)):
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        _cp_a(source, target)
    _install_live_files(template / "live", Path(servers_root) / "app1")
    with open(log, "a") as out:
        out.write(f"demo repositories ready in {time.monotonic() - started:.2f} s (template {template})\n")
    return [
        DemoRepo("app1", "local", local, None, MAX_AGE_HOURS),
        DemoRepo("app1", "offsite", offsite, "backup1", MAX_AGE_HOURS),
    ]


def ensure_template(newest: datetime, cache_dir: Path, *, log: Path) -> Path:
    """The template folder for ``newest`` (local/, offsite/, live/), built once; safe across processes."""
    root = Path(cache_dir) / VERSION
    root.mkdir(parents=True, exist_ok=True)
    # the builder's own text is part of the key: a changed scenario never reuses an old template
    scenario = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:10]
    final = root / f"{newest:%Y%m%dT%H%MZ}-{scenario}"
    if (final / "complete.json").exists():
        return final
    with open(root / ".lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second lab waits for the first one's build
        if (final / "complete.json").exists():
            return final
        building = root / f".build-{os.getpid()}"
        if building.exists():
            shutil.rmtree(building)
        building.mkdir()
        try:
            _run_builder(building, int(newest.timestamp()), log)
            building.rename(final)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        for old in root.iterdir():  # yesterday's template is of no use any more
            if old != final and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
    return final


def _run_builder(folder: Path, newest_epoch: int, log: Path) -> None:
    interpreter = rdiff_backup_interpreter()
    env = dict(os.environ, TZ="UTC", LC_ALL="C.UTF-8")
    env.pop("PYTHONPATH", None)  # the builder must see Debian's rdiffbackup, not our venv
    with open(log, "a") as out:
        out.write(f"building {folder} with {interpreter}\n")
        out.flush()
        result = subprocess.run(
            [interpreter, str(Path(__file__).resolve()), "--build", str(folder), str(newest_epoch)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            timeout=600,
            check=False,
        )
    if result.returncode != 0 or not (folder / "complete.json").exists():
        raise DemoBackupError(f"Building the demo backups failed (exit {result.returncode}); see {log}.")


def rdiff_backup_interpreter() -> str:
    """The Python that runs rdiff-backup (its shebang), so the builder can import rdiffbackup."""
    executable = shutil.which("rdiff-backup")
    if executable is None:
        raise DemoBackupError("rdiff-backup is not installed (apt install rdiff-backup).")
    with open(executable, "rb") as script:
        first = script.readline().decode(errors="replace").strip()
    match = re.match(r"#!\s*(\S+)(?:\s+(\S+))?", first)
    if match is None:
        return sys.executable
    if match.group(1).endswith("/env") and match.group(2):
        return shutil.which(match.group(2)) or sys.executable
    return match.group(1)


def _cp_a(source: Path, target: Path) -> None:
    subprocess.run(["cp", "-a", "--", str(source), str(target)], check=True)


def _install_live_files(live: Path, server_root: Path) -> None:
    """The source's final state as the server's live files, without replacing any that exist (the
    fleet writes some etc/ files itself, with the same text); then a change after the last backup."""
    folders = []
    for path in sorted(live.rglob("*")):
        target = server_root / path.relative_to(live)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            folders.append((path, target))
        elif not target.exists():
            shutil.copy2(path, target)
        elif target.is_file() and target.read_bytes() == path.read_bytes():
            shutil.copystat(path, target)  # same text as the fleet wrote: same dates as in the backup
    for path, target in reversed(folders):  # deepest first: a folder's date survives its children
        shutil.copystat(path, target)
    passwd = server_root / "etc" / "passwd"
    text = passwd.read_text()
    if "mallory" not in text:  # the "changed system file" that the panel should notice
        passwd.write_text(text + "mallory:x:0:0:mallory:/root:/bin/bash\n")


# =====================================================================================================
# The builder (runs under rdiff-backup's interpreter, with TZ=UTC)
# =====================================================================================================

# Text of the files that the fleet also writes (panel.lab.fleet._write_filesystem_root): the final
# state of the demo source matches it, so the live files equal the newest backup, bar the one change.
_FLEET_FILES = {
    "etc/hostname": "app1\n",
    "etc/hosts": "127.0.0.1\tlocalhost\n127.0.1.1\tapp1.example.com app1\n",
    "etc/os-release": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
    "etc/crontab": "SHELL=/bin/sh\n17 * * * * root cd / && run-parts --report /etc/cron.hourly\n",
    "etc/cron.d/rdiff-backup": "30 2 * * * root rdiff-backup backup /srv /var/backups/rdiff\n",
    "etc/crypttab": "root_crypt UUID=lab-app1-root none luks,discard\n",
    "etc/dropbear/initramfs/dropbear.conf": 'DROPBEAR_OPTIONS="-I 600 -j -k -p 2222 -s -c cryptroot-unlock"\n',
    "etc/mysql/mariadb.conf.d/50-server.cnf": "[mysqld]\nbind-address = 127.0.0.1\n",
}
_SSHD_FINAL = "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
_NGINX_SITE_FINAL = (
    "server {\n    listen 443 ssl;\n    server_name example.com;\n"
    "    location / { proxy_pass http://127.0.0.1:8000; }\n}\n"
)
_USERS = [
    "root:x:0:0:root:/root:/bin/bash",
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
    "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin",
    "sshd:x:100:65534::/run/sshd:/usr/sbin/nologin",
    "mysql:x:101:102:MySQL Server,,,:/nonexistent:/bin/false",
]


class _Source:
    """The demo source folder, changed day by day. Changed files get the day's time as mtime."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.random = random.Random(SEED)
        self.uploads: list[str] = []
        self.release = 1
        self.touched: set[Path] = set()

    def write(self, relative: str, data: str | bytes, when: int, mode: int = 0o644) -> None:
        path = self.root / relative
        if isinstance(data, str):
            data = data.encode()
        if path.exists() and path.read_bytes() == data:
            return
        if not path.exists():
            self._entries_changed(path)
        path.write_bytes(data)
        path.chmod(mode)
        os.utime(path, (when, when))

    def append(self, relative: str, data: str, when: int) -> None:
        path = self.root / relative
        old = path.read_text() if path.exists() else ""
        self.write(relative, old + data, when)

    def remove(self, relative: str) -> None:
        path = self.root / relative
        if path.exists():
            self._entries_changed(path)
            path.unlink()

    def _entries_changed(self, path: Path) -> None:
        """``path`` is about to appear or go: its folder (and any folder created for it) changes."""
        folder = path.parent
        missing = []
        while not folder.exists():
            missing.append(folder)
            folder = folder.parent
        self.touched.add(folder)
        self.touched.update(missing)
        path.parent.mkdir(parents=True, exist_ok=True)

    def date_folders(self, when: int) -> None:
        """Folders whose entries changed get the day's time too, not the real clock of the build."""
        for folder in sorted(self.touched, key=lambda p: len(p.parts), reverse=True):
            os.utime(folder, (when, when))
        self.touched.clear()

    def passwd(self, extra: list[str], when: int) -> None:
        self.write("etc/passwd", "\n".join(_USERS + extra) + "\n", when)
        groups = ["root:x:0:", "daemon:x:1:", "www-data:x:33:", "sudo:x:27:" + ",".join(
            line.split(":")[0] for line in extra if "deploy" in line
        )]
        self.write("etc/group", "\n".join(groups) + "\n", when)

    def day(self, index: int, when: int) -> None:
        """Bring the source to its state for session ``index`` (0 = oldest) at time ``when``."""
        changed = when - 3600 - self.random.randint(0, 1800)  # edits happen before the 02:30 run
        if index == 0:
            for relative, text in _FLEET_FILES.items():
                self.write(relative, text, changed)
            self.write("etc/fstab", "/dev/mapper/root_crypt / ext4 errors=remount-ro 0 1\n", changed)
            self.write("etc/ssh/sshd_config", "PermitRootLogin yes\nPasswordAuthentication yes\n", changed)
            self.write("etc/nginx/nginx.conf", "user www-data;\nworker_processes 2;\n", changed)
            self.write("etc/nginx/sites-enabled/saas.conf", _NGINX_SITE_FINAL.replace(" ssl", ""), changed)
            self.write("var/www/app/manage.py", "#!/usr/bin/env python3\nimport django\n", changed, 0o755)
            self.write("var/www/app/saas/urls.py", "urlpatterns = []\n", changed)
            self.passwd([], changed)
        if index in (0, 10, 25, 40):
            self.write("var/www/app/saas/settings.py", f"DEBUG = False\nSETTINGS_REVISION = {index}\n", changed)
        if index == 12:
            self.write("etc/ssh/sshd_config", "PermitRootLogin prohibit-password\nPasswordAuthentication yes\n",
                       changed)
        if index == 18:
            self.passwd(["deploy:x:1000:1000:deploy:/home/deploy:/bin/bash"], changed)
        if index == 20:
            self.write("etc/nginx/sites-enabled/saas.conf", _NGINX_SITE_FINAL, changed)
        if index == 30:
            self.write("etc/nginx/nginx.conf", "user www-data;\nworker_processes auto;\n", changed)
        if index == ERROR_SESSION:
            # readable by nobody: the run without DAC capabilities cannot read it (see the docstring)
            self.write("etc/ssl/private/app1.key", "-----BEGIN PRIVATE KEY-----\ndemo\n", changed, 0o000)
        if index == ERROR_SESSION + 1:
            (self.root / "etc/ssl/private/app1.key").chmod(0o600)
            os.utime(self.root / "etc/ssl/private/app1.key", (changed, changed))
        if index == 45:
            self.passwd(["deploy:x:1000:1000:deploy:/home/deploy:/bin/bash",
                         "contractor:x:1001:1001::/home/contractor:/bin/bash"], changed)
        if index == 50:
            self.write("etc/ssh/sshd_config", _SSHD_FINAL, changed)
        if index == 52:
            self.passwd(["deploy:x:1000:1000:deploy:/home/deploy:/bin/bash"], changed)
        if index % 7 == 3:  # a weekly release
            self.release += 1
            self.write("var/www/app/saas/version.txt", f"1.{self.release}.0\n", changed)
            self.write("var/www/app/static/app.js", f"// release {self.release}\n" + "x" * (2000 + 97 * index),
                       changed)
            self.write("var/www/app/static/app.css", f"/* release {self.release} */ body {{ margin: 0 }}\n",
                       changed)
        for _ in range(self.random.randint(1, 3)):  # users upload files every day
            name = f"var/www/app/media/uploads/{index:02d}-{self.random.randrange(16**6):06x}.bin"
            self.write(name, self.random.randbytes(self.random.randint(2_000, 30_000)), changed)
            self.uploads.append(name)
        if index == 33:  # a clean-up of old uploads
            for name in self.uploads[:5]:
                self.remove(name)
            self.uploads = self.uploads[5:]
        self.append("var/www/app/logs/access.log",
                    "".join(f"127.0.0.1 - - GET /groups/{self.random.randrange(3000)} 200\n" for _ in range(40)),
                    changed)
        self.date_folders(changed)


def _session_times(newest_epoch: int) -> list[int]:
    return [newest_epoch - (SESSIONS - 1 - index) * DAY for index in range(SESSIONS)]


def _fix_end_time(repo: Path, when: int, elapsed: float) -> None:
    """rdiff-backup writes the real clock as EndTime even with --current-time; make the demo's
    statistics read as a run that took ``elapsed`` seconds at ``when``."""
    stamp = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    stats = repo / "rdiff-backup-data" / f"session_statistics.{stamp}.data"
    if not stats.exists():
        return
    end = when + elapsed
    pretty = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(end))
    text = stats.read_text()
    text = re.sub(r"(?m)^EndTime .*$", f"EndTime {end:.2f} ({pretty})", text)
    text = re.sub(r"(?m)^ElapsedTime .*$", f"ElapsedTime {elapsed:.2f} ({elapsed:.2f} seconds)", text)
    stats.write_text(text)


def _backup_runner() -> Callable[[list[str]], int]:
    """rdiff-backup's own entry point in this process, or (if it cannot be imported) a subprocess."""
    try:
        from rdiffbackup import run  # Debian's, importable under its interpreter
    except ImportError:
        return lambda argv: subprocess.run(["rdiff-backup", *argv], check=False).returncode

    def in_process(argv: list[str]) -> int:
        try:
            return int(run.main_run(argv))
        except SystemExit as exit_:  # a fatal error exits
            return int(exit_.code or 1)

    return in_process


def _without_dac_capabilities(argv: list[str]) -> list[str]:
    """As root: root that cannot bypass file permissions, so a mode-000 file cannot be read."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return ["rdiff-backup", *argv]  # an ordinary user cannot read a mode-000 file anyway
    return ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", "--",
            "rdiff-backup", *argv]


def build(folder: Path, newest_epoch: int) -> None:
    """Write local/, offsite/ and live/ into ``folder``, then complete.json."""
    started = time.monotonic()
    time.tzset()  # TZ=UTC from the parent: time stamps in file names end in "Z"
    source = _Source(folder / "live")
    source.root.mkdir(parents=True)
    local = folder / "local"
    backup = _backup_runner()
    error_session_ok = False
    for index, when in enumerate(_session_times(newest_epoch)):
        source.day(index, when)
        argv = ["--no-fsync", "--current-time", str(when), "backup", str(source.root), str(local)]
        run_started = time.monotonic()
        if index == ERROR_SESSION:
            code = subprocess.run(_without_dac_capabilities(argv), check=False).returncode
        else:
            code = backup(argv)
        if code != 0:
            raise DemoBackupError(f"rdiff-backup failed on session {index} (exit {code})")
        # + the ~0.4 s start-up that a real rdiff-backup process has and an in-process run skips
        _fix_end_time(local, when, 0.4 + (time.monotonic() - run_started))
        if index == ERROR_SESSION:
            errors = re.search(r"(?m)^Errors (\d+)", _stats_text(local, when))
            error_session_ok = bool(errors and int(errors.group(1)) > 0)
        if index == SESSIONS - 1 - OFFSITE_LAG_DAYS:
            _cp_a(local, folder / "offsite")
    # the live files as the servers will have them: the key readable by its owner (it was fixed)
    info = {
        "version": VERSION,
        "newest": newest_epoch,
        "sessions": SESSIONS,
        "error_session": ERROR_SESSION if error_session_ok else None,
        "seconds": round(time.monotonic() - started, 2),
    }
    (folder / "complete.json").write_text(json.dumps(info) + "\n")
    print(f"built {folder} in {info['seconds']} s; error session: {info['error_session']}")


def _stats_text(repo: Path, when: int) -> str:
    stamp = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = repo / "rdiff-backup-data" / f"session_statistics.{stamp}.data"
    with contextlib.suppress(OSError):
        return path.read_text()
    return ""


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--build":
        build(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit(f"usage: {sys.argv[0]} --build FOLDER NEWEST_EPOCH")
