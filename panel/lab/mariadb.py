"""A private MariaDB server for the lab and the tests, started in a folder of its own.

``start_mariadb`` gives a running ``mariadbd`` that listens on 127.0.0.1 (and a unix socket),
holds the demo SaaS database ``saas`` (see :mod:`panel.lab.saas_data`) and the account
``panel`` (at ``127.0.0.1`` and ``localhost``) whose password is
:data:`panel.lab.secrets.MYSQL_PASSWORD`. The server runs in its own session, so it outlives
the process that started it; ``MariaDBHandle.load`` finds it again and ``stop`` ends it.

Everything lives in ``FOLDER/mariadb-SERVER/``: the data dir, the log, the pid file, the
socket (or a short folder under /tmp when the path is too long for a unix socket) and
``state.json``. The data dir survives ``stop``, so a restarted server keeps its data
(a moved group stays moved); pass ``fresh=True`` to start over.

Speed: an initialised and seeded data dir is built once per (seed, sizes, schema and data
version, mariadbd version) and kept in a cache folder (``PANEL_LAB_CACHE``, or the user
cache folder); later starts copy it, which takes a fraction of a second.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs
import pymysql

from panel.lab import saas_data
from panel.lab.secrets import MYSQL_PASSWORD
from services.errors import PanelError

if TYPE_CHECKING:
    from services.groups import MysqlEndpoint

DATABASE = "saas"
USER = "panel"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; keep a margin

# Small and fast: a demo server, not a production one. Durability is relaxed on purpose.
SERVER_OPTIONS: tuple[str, ...] = (
    "--skip-name-resolve",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_unicode_ci",
    "--innodb-buffer-pool-size=64M",
    "--innodb-log-file-size=32M",
    "--innodb-log-buffer-size=8M",
    "--innodb-data-file-path=ibdata1:12M:autoextend",
    "--innodb-flush-log-at-trx-commit=2",
    "--innodb-doublewrite=0",
    "--innodb-buffer-pool-load-at-startup=0",
    "--innodb-buffer-pool-dump-at-shutdown=0",
    "--key-buffer-size=1M",
    "--aria-pagecache-buffer-size=2M",
    "--performance-schema=OFF",
    "--max-connections=200",
    "--local-infile=1",
    "--max-allowed-packet=64M",
)


class MariaDBError(PanelError):
    """The lab's MariaDB could not be set up, started or stopped."""


def _me() -> str:
    return "root" if os.geteuid() == 0 else getpass.getuser()


def _user_options() -> list[str]:
    # mariadbd refuses to run as root unless told to; as another user the option is only noise.
    return ["--user=root"] if os.geteuid() == 0 else []


def _mariadbd_version() -> str:
    out = subprocess.run(["mariadbd", "--version"], capture_output=True, text=True, check=False, timeout=30)
    return out.stdout.strip()


def _poll(predicate: Callable[[], bool], *, timeout: float, interval: float = 0.02) -> bool:
    """Call ``predicate`` until it is true or ``timeout`` runs out (no fixed sleep: a short wait per try)."""
    deadline = time.monotonic() + timeout
    waiter = threading.Event()
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        waiter.wait(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(interval * 1.5, 0.2)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _pid_alive(pid: int, marker: str | None = None) -> bool:
    """True while ``pid`` runs (reaping it if it is our exited child) and, if given, has ``marker`` in argv."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    if marker is not None:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return marker.encode() in argv
    return True


def _tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def _spawn(argv: list[str], log: Path) -> int:
    """Start ``argv`` in a new session, detached from our terminal, with its output in ``log``."""
    env = dict(os.environ, TZ="UTC")
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    exe = shutil.which(argv[0])
    if exe is None:
        raise MariaDBError(f"{argv[0]} is not installed (Debian package mariadb-server).")
    return os.posix_spawn(exe, argv, env, file_actions=actions, setsid=True)


@dataclass
class _Paths:
    base: Path
    socket_dir: Path
    temp_socket_dir: bool

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def socket(self) -> Path:
        return self.socket_dir / "mysqld.sock"

    @property
    def pid_file(self) -> Path:
        return self.base / "mysqld.pid"

    @property
    def log(self) -> Path:
        return self.base / "mysqld.log"

    @property
    def tmpdir(self) -> Path:
        """The server's own temporary folder (not /tmp, which other programs clean)."""
        path = self.base / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def state(self) -> Path:
        return self.base / "state.json"

    @classmethod
    def for_base(cls, base: Path, socket_dir: Path | None = None) -> _Paths:
        if socket_dir is not None:
            return cls(base, socket_dir, socket_dir != base)
        if len(str(base / "mysqld.sock")) <= _SOCKET_PATH_MAX:
            return cls(base, base, False)
        return cls(base, Path(tempfile.mkdtemp(prefix="panel-mdb-")), True)


def _server_argv(paths: _Paths, port: int | None) -> list[str]:
    argv = ["mariadbd", "--no-defaults", *_user_options(), f"--datadir={paths.datadir}",
            f"--socket={paths.socket}", f"--pid-file={paths.pid_file}", f"--log-error={paths.log}",
            f"--tmpdir={paths.tmpdir}", *SERVER_OPTIONS]
    if port is None:
        argv.append("--skip-networking")
    else:
        argv += [f"--port={port}", "--bind-address=127.0.0.1"]
    return argv


def _connect_socket(path: Path, *, database: str | None = None, timeout: float = 5.0,
                    local_infile: bool = False) -> pymysql.connections.Connection[pymysql.cursors.Cursor]:
    return pymysql.connect(unix_socket=str(path), user=_me(), database=database, charset="utf8mb4",
                           connect_timeout=max(1, int(timeout)), local_infile=local_infile,
                           autocommit=True)


def _can_connect(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        _connect_socket(path, timeout=2).close()
    except pymysql.err.MySQLError:
        return False
    return True


@dataclass
class MariaDBHandle:
    """A running lab MariaDB. ``stop()`` ends it; the data dir stays unless asked otherwise."""

    server: str
    base: Path
    port: int
    pid: int
    socket: Path
    datadir: Path
    log: Path
    temp_socket_dir: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    # -- inspection ---------------------------------------------------------------------
    def alive(self) -> bool:
        return _pid_alive(self.pid, f"--datadir={self.datadir}")

    def endpoint(self, *, server: str | None = None, password: str = MYSQL_PASSWORD,
                 read_timeout: float = 60.0) -> MysqlEndpoint:
        """The ``panel`` account over TCP, as ``services.groups`` wants it."""
        from services.groups import MysqlEndpoint

        return MysqlEndpoint(host="127.0.0.1", port=self.port, user=USER, password=password,
                             database=DATABASE, read_timeout=read_timeout, server=server or self.server)

    def admin_connection(self, database: str | None = DATABASE
                         ) -> pymysql.connections.Connection[pymysql.cursors.Cursor]:
        """A superuser connection over the unix socket (socket authentication, no password)."""
        return _connect_socket(self.socket, database=database)

    # -- life cycle ------------------------------------------------------------------------
    def stop(self, *, timeout: float = STOP_TIMEOUT, remove_data: bool = False) -> None:
        """Shut the server down cleanly (SIGTERM, then SIGKILL after ``timeout``). Idempotent."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            if not _poll(lambda: not self.alive(), timeout=timeout):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                _poll(lambda: not self.alive(), timeout=10)
        if self.temp_socket_dir:
            shutil.rmtree(self.socket.parent, ignore_errors=True)
        state = self.base / "state.json"
        if remove_data:
            shutil.rmtree(self.base, ignore_errors=True)
        elif state.exists():
            data = json.loads(state.read_text())
            data["pid"] = 0
            state.write_text(json.dumps(data, indent=2))

    def _save(self) -> None:
        data = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}
        tmp = self.base / "state.json.tmp"
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.base / "state.json")

    @classmethod
    def load(cls, folder: Path, server: str) -> MariaDBHandle | None:
        """The handle recorded for ``server`` under ``folder``, running or not; None if never started."""
        state = Path(folder) / f"mariadb-{server}" / "state.json"
        try:
            data = json.loads(state.read_text())
        except (OSError, ValueError):
            return None
        return cls(server=data["server"], base=Path(data["base"]), port=int(data["port"]),
                   pid=int(data["pid"]), socket=Path(data["socket"]), datadir=Path(data["datadir"]),
                   log=Path(data["log"]), temp_socket_dir=bool(data.get("temp_socket_dir")),
                   timings=dict(data.get("timings", {})))


def stop_mariadb(folder: Path, server: str, *, remove_data: bool = False) -> bool:
    """Stop the lab MariaDB of ``server`` under ``folder`` if it runs. True if one was recorded."""
    handle = MariaDBHandle.load(folder, server)
    if handle is None:
        return False
    handle.stop(remove_data=remove_data)
    return True


# -- building the seeded template ----------------------------------------------------------------

def cache_root(cache_dir: Path | None = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("PANEL_LAB_CACHE")
    if env:
        return Path(env)
    return Path(platformdirs.user_cache_dir("operator-panel")) / "mariadb"


def template_key(spec: saas_data.SeedSpec) -> str:
    digest = hashlib.sha256("\n".join([_mariadbd_version(), *SERVER_OPTIONS]).encode()).hexdigest()[:12]
    return f"{spec.key()}-{digest}"


def _install_db(datadir: Path, log: Path, tmpdir: Path) -> None:
    argv = ["mariadb-install-db", "--no-defaults", *_user_options(), f"--datadir={datadir}", f"--tmpdir={tmpdir}",
            "--auth-root-authentication-method=socket", f"--auth-root-socket-user={_me()}",
            "--skip-test-db", "--skip-name-resolve",
            *[opt for opt in SERVER_OPTIONS if opt.startswith("--innodb")]]
    with log.open("ab") as out:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                check=False, timeout=300)
    if result.returncode != 0:
        raise MariaDBError(f"mariadb-install-db failed for {datadir} (exit {result.returncode}):\n"
                           f"{_tail(log)}")


def _wait_ready(pid: int, paths: _Paths, what: str, timeout: float = READY_TIMEOUT) -> None:
    def ready() -> bool:
        if not _pid_alive(pid):
            raise MariaDBError(f"{what} exited while starting:\n{_tail(paths.log)}")
        return _can_connect(paths.socket)

    if not _poll(ready, timeout=timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        raise MariaDBError(f"{what} did not answer within {timeout:.0f} s:\n{_tail(paths.log)}")


def _stop_pid(pid: int, timeout: float = STOP_TIMEOUT) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _poll(lambda: not _pid_alive(pid), timeout=timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _poll(lambda: not _pid_alive(pid), timeout=10)


def _setup_accounts(conn: pymysql.connections.Connection[pymysql.cursors.Cursor]) -> None:
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{DATABASE}` "
                       "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        for host in ("127.0.0.1", "localhost"):
            # The password travels through the socket as a bound parameter, never on argv.
            cursor.execute(f"CREATE USER IF NOT EXISTS '{USER}'@'{host}' IDENTIFIED BY %s", (MYSQL_PASSWORD,))
            cursor.execute(f"GRANT ALL PRIVILEGES ON `{DATABASE}`.* TO '{USER}'@'{host}'")
            # PROCESS lets the panel see (and KILL its own) sessions; RELOAD is not needed.
            cursor.execute(f"GRANT PROCESS ON *.* TO '{USER}'@'{host}'")


def _start_generator(spec: saas_data.SeedSpec, folder: Path, log: Path) -> subprocess.Popen[bytes]:
    """Generate the rows in a process of its own: it runs on the other core while the server initialises."""
    root = str(Path(saas_data.__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    argv = [sys.executable, "-m", "panel.lab.saas_data", "--server", spec.server,
            "--group-offset", str(spec.group_offset), "--groups", str(spec.groups), "--seed", str(spec.seed),
            "--out", str(folder)]
    with log.open("ab") as out:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env)


def _wait_generator(proc: subprocess.Popen[bytes], folder: Path, log: Path) -> dict[str, int]:
    try:
        code = proc.wait(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise MariaDBError("Generating the demo data took more than 300 s.") from None
    if code != 0:
        raise MariaDBError(f"Generating the demo data failed (exit {code}):\n{_tail(log)}")
    counts: dict[str, int] = json.loads((folder / "counts.json").read_text())
    return counts


def prune_cache(root: Path, *, now: float | None = None) -> list[Path]:
    """Remove templates of older schema or data versions, and builds abandoned over an hour ago."""
    current = f"s{saas_data.SCHEMA_VERSION}d{saas_data.DATA_VERSION}-"
    now = time.time() if now is None else now
    removed: list[Path] = []
    for entry in root.iterdir() if root.is_dir() else ():
        stale_version = entry.name[:1] == "s" and "-" in entry.name and not entry.name.startswith(current)
        try:
            abandoned = entry.name.startswith("building-") and now - entry.stat().st_mtime > 3600
        except OSError:
            continue
        if entry.is_dir() and (stale_version or abandoned):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def build_template(spec: saas_data.SeedSpec, *, cache_dir: Path | None = None) -> Path:
    """The cached, seeded data dir for ``spec`` (built now if missing). Safe to call concurrently."""
    root = cache_root(cache_dir)
    target = root / template_key(spec)
    if (target / "complete").exists():
        return target / "data"
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="building-", dir=root))
    try:
        timings: dict[str, float] = {}
        started = time.monotonic()
        paths = _Paths(work, Path(tempfile.mkdtemp(prefix="panel-mdb-")), True)
        generator = _start_generator(spec, work / "tsv", work / "generate.log")
        try:
            _install_db(paths.datadir, paths.log, paths.tmpdir)
            timings["install_db"] = time.monotonic() - started
            pid = _spawn(_server_argv(paths, None), paths.log)
            try:
                _wait_ready(pid, paths, f"MariaDB for {spec.server} (seeding)")
                timings["first_start"] = time.monotonic() - started - timings["install_db"]
                conn = _connect_socket(paths.socket, local_infile=True, timeout=30)
                try:
                    _setup_accounts(conn)
                    conn.select_db(DATABASE)
                    conn.autocommit(False)
                    with conn.cursor() as cursor:
                        saas_data.create_schema(cursor)
                    waited = time.monotonic()
                    rows = _wait_generator(generator, work / "tsv", work / "generate.log")
                    timings["wait_generator"] = time.monotonic() - waited
                    timings["load"] = saas_data.load_files(conn, work / "tsv")
                finally:
                    conn.close()
            finally:
                _stop_pid(pid)
        finally:
            if generator.poll() is None:
                generator.kill()
                generator.wait()
            shutil.rmtree(paths.socket_dir, ignore_errors=True)
        timings["total"] = time.monotonic() - started
        shutil.rmtree(work / "tsv", ignore_errors=True)
        (work / "timings.json").write_text(json.dumps({"timings": timings, "rows": rows}, indent=2))
        (work / "complete").write_text(spec.key() + "\n")
        try:
            work.rename(target)
        except OSError:
            if not (target / "complete").exists():  # a half-built leftover: replace it
                shutil.rmtree(target, ignore_errors=True)
                work.rename(target)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    prune_cache(root)
    return target / "data"


def _fill_datadir(spec: saas_data.SeedSpec, datadir: Path, cache_dir: Path | None, use_cache: bool) -> None:
    if use_cache:
        template = build_template(spec, cache_dir=cache_dir)
        shutil.copytree(template, datadir)
        return
    scratch = Path(tempfile.mkdtemp(prefix="panel-mdb-nocache-"))
    try:
        template = build_template(spec, cache_dir=scratch)
        shutil.move(str(template), str(datadir))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# -- the public entry point ----------------------------------------------------------------------

def start_mariadb(
    folder: Path,
    *,
    server: str,
    group_offset: int,
    groups: int,
    seed: int,
    port: int = 0,
    fresh: bool = False,
    cache_dir: Path | None = None,
    use_cache: bool = True,
) -> MariaDBHandle:
    """Start (or find running) the lab MariaDB for ``server`` under ``folder``.

    ``port=0`` picks a free port (the one used last time, if still free). With an existing
    data dir the server restarts on it, keeping its data; ``fresh=True`` replaces it.
    """
    started = time.monotonic()
    base = Path(folder).resolve() / f"mariadb-{server}"
    previous = MariaDBHandle.load(folder, server)
    if previous is not None and previous.pid and previous.alive():
        if fresh:
            previous.stop()
        elif port in (0, previous.port):
            return previous
        else:
            raise MariaDBError(f"The lab MariaDB of {server} already runs on port {previous.port}, "
                               f"not {port}. Stop it first.")
    if fresh and base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True, exist_ok=True)
    paths = _Paths.for_base(base)
    timings: dict[str, float] = {}
    spec = saas_data.SeedSpec(server=server, group_offset=group_offset, groups=groups, seed=seed)
    if not (paths.datadir / "mysql").is_dir():
        shutil.rmtree(paths.datadir, ignore_errors=True)
        _fill_datadir(spec, paths.datadir, cache_dir, use_cache)
        timings["datadir"] = time.monotonic() - started
    paths.log.unlink(missing_ok=True)
    candidates = [port] if port else ([previous.port] if previous is not None and previous.port else [])
    attempts = 0
    while True:
        attempts += 1
        chosen = candidates.pop(0) if candidates else _free_port()
        spawn_at = time.monotonic()
        pid = _spawn(_server_argv(paths, chosen), paths.log)
        try:
            _wait_ready(pid, paths, f"MariaDB for {server}")
        except MariaDBError as exc:
            in_use = "already in use" in _tail(paths.log, 50) or "Do you already have" in _tail(paths.log, 50)
            if in_use and not port and attempts < 5:
                paths.log.unlink(missing_ok=True)
                continue
            if paths.temp_socket_dir:
                shutil.rmtree(paths.socket_dir, ignore_errors=True)
            raise MariaDBError(f"The lab MariaDB of {server} could not start on port {chosen}. "
                               f"{exc.message}") from None
        break
    timings["start"] = time.monotonic() - spawn_at
    timings["total"] = time.monotonic() - started
    handle = MariaDBHandle(server=server, base=base, port=chosen, pid=pid, socket=paths.socket,
                           datadir=paths.datadir, log=paths.log, temp_socket_dir=paths.temp_socket_dir,
                           timings=timings)
    handle._save()
    return handle
