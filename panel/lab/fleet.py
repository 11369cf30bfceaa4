"""The local demo fleet: three servers on loopback, with everything the panel manages on them.

- ``app1``: one encrypted volume ("root"), a MariaDB with 3,000 groups.
- ``app2``: two encrypted volumes ("root", "data"), a MariaDB with 2,000 groups.
- ``backup1``: no encryption; holds the off-site rdiff-backup repositories.

Each server is a real sshd with its own host key; an encrypted one also has a real dropbear with a
different key, which only runs while the server "sits in its initramfs" (after :meth:`Lab.reboot`).
Each has a "filesystem root" ``DIR/servers/NAME/`` (with an ``etc/``) that the config's paths
point into. Everything runs detached and is recorded (pid and start time) in ``DIR/lab.json`` and
the servers' state files, so ``lab down`` from another process stops it all. ``up()`` writes
``DIR/panel.toml`` for the panel.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from panel.lab import cryptroot_unlock as emulator
from panel.lab import dropbear, latency, procs, sshd
from panel.lab.procs import LabError, ProcessRecord
from panel.lab.secrets import LUKS_PASSPHRASE

HOST = "127.0.0.1"
VOLUMES: dict[str, tuple[str, ...]] = {"app1": ("root",), "app2": ("root", "data"), "backup1": ()}
# (group_offset, groups) of each server's SaaS database; app2's ids start at 1,000,001.
MYSQL_GROUPS: dict[str, tuple[int, int]] = {"app1": (0, 3000), "app2": (1_000_000, 2000)}
MYSQL_SEED = 1
ALL_PARTS = frozenset({"mariadb", "backups", "standins"})
LAB_FORMAT = 1


@dataclass(frozen=True)
class ServerInfo:
    """One lab server, as the panel sees it (``port``, ``unlock_port``) and as it really runs."""

    name: str
    host: str
    port: int  # in the config: the latency proxy's port when there is one, else sshd's
    sshd_port: int
    host_key: str
    root: Path  # the server's "filesystem root" (DIR/servers/NAME)
    state_file: Path  # the emulator's state: phase, volumes, and the pids of sshd and dropbear
    volumes: tuple[str, ...] = ()
    unlock_port: int | None = None  # in the config (proxy or dropbear)
    dropbear_port: int | None = None
    unlock_host_key: str | None = None
    mysql_port: int | None = None

    @property
    def encrypted(self) -> bool:
        return bool(self.volumes)


@dataclass(frozen=True)
class LabInfo:
    """What ``Lab.up()`` started and where: everything a test or the demo needs to reach it."""

    directory: Path
    config_path: Path
    client_key: Path
    user: str
    servers: dict[str, ServerInfo]
    latency_ms: float
    boot_delay: float
    initramfs_delay: float
    received_log: Path  # every passphrase attempt the emulated initramfs received (test instrumentation)
    started_in: float  # seconds that up() took
    luks_passphrase: str = LUKS_PASSPHRASE  # public demo data
    cloudflare_url: str | None = None
    stripe_url: str | None = None
    mailgun_url: str | None = None
    mailgun_eu_url: str | None = None  # the same stand-in on a second port, as Mailgun's EU region
    backups: tuple[dict[str, Any], ...] = ()
    skipped: tuple[str, ...] = ()  # parts that were asked for but whose module is not there
    extras: dict[str, Any] = field(default_factory=dict)

    def server(self, name: str) -> ServerInfo:
        return self.servers[name]

    def known_hosts(self) -> str:
        """known_hosts lines for every server's system and initramfs keys, as the config names them."""
        lines = []
        for server in self.servers.values():
            lines.append(sshd.known_hosts_line(server.host, server.port, server.host_key))
            if server.unlock_port and server.unlock_host_key:
                lines.append(sshd.known_hosts_line(server.host, server.unlock_port, server.unlock_host_key))
        return "\n".join(lines) + "\n"


class Lab:
    """Starts, reboots and stops the demo fleet in ``directory``. Safe to use from several processes."""

    def __init__(
        self,
        directory: Path,
        *,
        latency_ms: float = 0.0,
        boot_delay: float = 2.0,
        initramfs_delay: float = 0.0,
        parts: frozenset[str] = ALL_PARTS,
    ) -> None:
        """``parts`` chooses the optional parts (MariaDB, backups, stand-ins); the servers always run."""
        unknown = set(parts) - ALL_PARTS
        if unknown:
            raise LabError(f"Unknown lab parts: {', '.join(sorted(unknown))} (known: {', '.join(sorted(ALL_PARTS))}).")
        self.directory = Path(directory).expanduser().resolve()
        self.latency_ms = latency_ms
        self.boot_delay = boot_delay
        self.initramfs_delay = initramfs_delay
        self.parts = frozenset(parts)

    # --- paths and the record --------------------------------------------------------------------

    @property
    def lab_json(self) -> Path:
        return self.directory / "lab.json"

    @property
    def config_path(self) -> Path:
        return self.directory / "panel.toml"

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One up/down/reboot at a time per lab folder, across processes."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / "lab.lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _load(self) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self.lab_json.read_text()))
        except (FileNotFoundError, ValueError):
            return None

    def _save(self, record: dict[str, Any]) -> None:
        temporary = self.lab_json.with_suffix(".tmp")
        temporary.write_text(json.dumps(record, indent=2, sort_keys=True))
        os.replace(temporary, self.lab_json)

    # --- queries -----------------------------------------------------------------------------------

    def info(self) -> LabInfo:
        record = self._load()
        if record is None or record.get("status") != "up":
            raise LabError(f"The lab in {self.directory} is not running (start it with `lab up`).")
        return _info_from_record(record)

    def is_running(self) -> bool:
        record = self._load()
        return record is not None and record.get("status") == "up" and self._all_alive(record)

    def phase(self, server: str) -> str:
        """``up`` (sshd answers), ``locked`` (dropbear waits for the passphrase) or ``booting``."""
        return str(emulator.load_state(self._server_record(server)["state_file_path"])["phase"])

    def wait_up(self, server: str, timeout: float = 30.0) -> None:
        """Wait until ``server`` has booted and its sshd answers with a banner."""
        entry = self._server_record(server)

        def booted() -> bool:
            return self.phase(server) == "up" and procs.read_banner(HOST, entry["sshd_port"], 0.5) is not None

        if not procs.wait_until(booted, timeout, interval=0.05):
            raise LabError(f"{server} did not come up within {timeout:g} s (phase {self.phase(server)}).")

    # --- up -----------------------------------------------------------------------------------------

    def up(self) -> LabInfo:
        """Start the fleet, or report the one already running in this folder. Idempotent: a running
        fleet is reported as it is (its latency and delays are kept, whatever this Lab was given);
        a half-dead one is stopped and started afresh."""
        started = time.monotonic()
        with self._exclusive():
            previous = self._load()
            if previous is not None and previous.get("status") == "up":
                if self._all_alive(previous):
                    return _info_from_record(previous)
                self._stop_everything(previous)  # half dead: start over cleanly
            record = self._start(previous, started)
        return _info_from_record(record)

    def _start(self, previous: dict[str, Any] | None, started: float) -> dict[str, Any]:
        self.directory.mkdir(parents=True, exist_ok=True)
        client_key = sshd.ensure_client_key(self.directory)
        user = pwd.getpwuid(os.geteuid()).pw_name
        ports = self._pick_ports(previous)
        record: dict[str, Any] = {
            "format": LAB_FORMAT,
            "status": "starting",  # so that down() can clean up after a failed start
            "directory": str(self.directory),
            "config": str(self.config_path),
            "client_key": str(client_key),
            "user": user,
            "latency_ms": self.latency_ms,
            "boot_delay": self.boot_delay,
            "initramfs_delay": self.initramfs_delay,
            "received_log": str(self.directory / "received.log"),
            "ports": ports,
            "servers": {},
            "processes": [],
            "mariadb": {},
            "standins": {},
            "backups": [],
            "skipped": [],
        }
        self._save(record)
        try:
            for name in VOLUMES:
                _write_filesystem_root(self.directory / "servers" / name, name)
            with ThreadPoolExecutor(max_workers=8, thread_name_prefix="lab-up") as pool:
                servers = {
                    name: pool.submit(self._start_server, name, ports, client_key, record) for name in VOLUMES
                }
                optional = self._submit_optional_parts(pool, record)
                # Take every result, even after a failure, so that all that started gets recorded
                # (and so stopped below); then report the first failure.
                errors: list[BaseException] = []
                for name, future in servers.items():
                    try:
                        record["servers"][name] = future.result()
                    except BaseException as error:
                        errors.append(error)
                for part, future in optional.items():
                    try:
                        self._take_optional_result(part, future, record)
                    except BaseException as error:
                        errors.append(error)
                if errors:
                    raise errors[0]
            if self.latency_ms > 0:
                pairs = [(ports[f"{name}.proxy"], ports[f"{name}.sshd"]) for name in VOLUMES] + [
                    (ports[f"{name}.unlock_proxy"], ports[f"{name}.dropbear"]) for name in VOLUMES if VOLUMES[name]
                ]
                proxy = latency.start_proxy_process(
                    pairs, self.latency_ms, log=self.directory / "logs" / "latency.log"
                )
                record["processes"].append(proxy.to_json())
            record["started_in"] = round(time.monotonic() - started, 3)
            record["status"] = "up"
            self._save(record)
            write_config(self.config_path, _info_from_record(record))
        except BaseException:
            self._save(record)
            self._stop_everything(record)
            raise
        return record

    def _pick_ports(self, previous: dict[str, Any] | None) -> dict[str, int]:
        """Name every port the fleet needs. Reuses the last run's ports when they are all free."""
        names = [f"{name}.sshd" for name in VOLUMES] + [f"{name}.dropbear" for name in VOLUMES if VOLUMES[name]]
        if self.latency_ms > 0:
            names += [f"{name}.proxy" for name in VOLUMES]
            names += [f"{name}.unlock_proxy" for name in VOLUMES if VOLUMES[name]]
        old = dict(previous.get("ports", {})) if previous else {}
        if all(name in old for name in names) and all(procs.port_is_free(old[name]) for name in names):
            return {name: int(old[name]) for name in names}
        return dict(zip(names, procs.free_ports(len(names)), strict=True))

    def _start_server(
        self, name: str, ports: dict[str, int], client_key: Path, record: dict[str, Any]
    ) -> dict[str, Any]:
        run = self.directory / "run" / name
        volumes = VOLUMES[name]
        server = sshd.start_sshd(run / "sshd", client_key=client_key, port=ports[f"{name}.sshd"], name=name)
        state_file = dropbear.prepare_unlock_state(
            run,
            server=name,
            volumes=volumes,
            received_log=Path(record["received_log"]),
            initramfs_delay=self.initramfs_delay,
            boot_delay=self.boot_delay,
            sshd_argv=server.argv,
            sshd_log=server.log_path,
        )
        with emulator.locked(state_file):  # booted: the system's sshd runs, the initramfs does not
            state = emulator.load_state(state_file)
            state["unlocked"] = list(volumes)
            state["phase"] = "up"
            state["sshd"] = server.record.to_json()
            emulator.save_state(state_file, state)
        entry: dict[str, Any] = {
            "name": name,
            "root": str(self.directory / "servers" / name),
            "state_file": str(state_file),
            "sshd_port": server.port,
            "port": ports.get(f"{name}.proxy", server.port),
            "host_key": server.host_key_line,
            "volumes": list(volumes),
        }
        if volumes:
            _, unlock_key = dropbear.ensure_dropbear_key(run / "dropbear")
            entry["dropbear_port"] = ports[f"{name}.dropbear"]
            entry["unlock_port"] = ports.get(f"{name}.unlock_proxy", ports[f"{name}.dropbear"])
            entry["unlock_host_key"] = unlock_key
        return entry

    # --- the other engineers' parts (each optional; imported lazily) ----------------------------

    def _submit_optional_parts(self, pool: ThreadPoolExecutor, record: dict[str, Any]) -> dict[str, Future[Any]]:
        futures: dict[str, Future[Any]] = {}
        if "mariadb" in self.parts:
            start_mariadb = _optional_import("panel.lab.mariadb", "start_mariadb", record)
            if start_mariadb is not None:
                for name, (offset, groups) in MYSQL_GROUPS.items():
                    futures[f"mariadb:{name}"] = pool.submit(
                        start_mariadb,
                        self.directory / "mysql",
                        server=name,
                        group_offset=offset,
                        groups=groups,
                        seed=MYSQL_SEED,
                    )
        if "backups" in self.parts:
            make_repositories = _optional_import("panel.lab.backups", "make_demo_repositories", record)
            if make_repositories is not None:
                futures["backups"] = pool.submit(make_repositories, self.directory, self.directory / "servers")
        if "standins" in self.parts:
            start_standins = _optional_import("panel.lab.standins", "start_standins", record)
            if start_standins is not None:
                futures["standins"] = pool.submit(_quietly, start_standins, self.directory / "standins")
        return futures

    def _take_optional_result(self, part: str, future: Future[Any], record: dict[str, Any]) -> None:
        result = future.result()
        if part.startswith("mariadb:"):
            server = part.split(":", 1)[1]
            record["mariadb"][server] = {"port": int(result.port), "pid": int(result.pid)}
            process = procs.record_for(int(result.pid), f"MariaDB of {server}")
            if process is not None:
                record["processes"].append(process.to_json())
        elif part == "backups":
            record["backups"] = [
                {
                    "server": repo.server,
                    "name": repo.name,
                    "path": str(repo.path),
                    "via": repo.via,
                    "max_age_hours": float(repo.max_age_hours),
                }
                for repo in result
            ]
        elif part == "standins":
            record["standins"] = {
                "cloudflare_url": result.cloudflare_url,
                "stripe_url": result.stripe_url,
                "mailgun_url": result.mailgun_url,
                "mailgun_eu_url": result.mailgun_eu_url,
            }
            pids = list(getattr(result, "pids", None) or [])
            if getattr(result, "pid", None):
                pids.append(result.pid)
            for pid in pids:
                process = procs.record_for(int(pid), "vendor API stand-ins")
                if process is not None:
                    record["processes"].append(process.to_json())
            if not pids:
                record["skipped"].append("standins-stop (the stand-ins handle gave no pid; stop them yourself)")
        self._save(record)

    # --- reboot -------------------------------------------------------------------------------------

    def reboot(self, server: str) -> None:
        """Put ``server`` back into its locked initramfs: sshd stops (its connections drop), dropbear
        starts on the same unlock port with the same key, every volume locked. A server without
        encryption just restarts its sshd."""
        with self._exclusive():
            entry = self._server_record(server)
            state_file = entry["state_file_path"]
            info = self.info()
            if not entry["volumes"]:
                self._restart_sshd(state_file)
                return
            dropbear.boot_initramfs(state_file, client_key=info.client_key, port=entry["dropbear_port"])

    def ensure_up(self, server: str) -> None:
        """Bring ``server`` up at once, without a passphrase (for test hygiene after a reboot test)."""
        with self._exclusive():
            state_file = self._server_record(server)["state_file_path"]
            with emulator.locked(state_file):
                state = emulator.load_state(state_file)
                if state["phase"] == "up" and procs.is_alive_json(state.get("sshd")):
                    return
            self._restart_sshd(state_file)
        self.wait_up(server)

    def _restart_sshd(self, state_file: Path) -> None:
        with emulator.locked(state_file):
            state = emulator.load_state(state_file)
            for key in ("finisher", "dropbear", "sshd"):
                procs.stop(emulator.record_of(state, key))
                state[key] = None
            config = Path(state["sshd_argv"][-1])
            sshd_log = Path(state["sshd_log"] or state_file.with_name("sshd.log"))
            record = procs.start_detached(state["sshd_argv"], what=f"sshd of {state['server']}", log=sshd_log)
            port = _listen_port(config)
            procs.wait_for_banner(HOST, port, timeout=sshd.START_TIMEOUT, record=record, log=sshd_log)
            state["sshd"] = record.to_json()
            state["unlocked"] = [volume["name"] for volume in state["volumes"]]
            state["phase"] = "up"
            emulator.save_state(state_file, state)

    # --- down ---------------------------------------------------------------------------------------

    def down(self) -> None:
        """Stop everything the lab started in this folder, by the pids it recorded. Idempotent."""
        with self._exclusive():
            record = self._load()
            if record is None:
                return
            self._stop_everything(record)
            record["status"] = "down"
            self._save(record)

    def _stop_everything(self, record: dict[str, Any]) -> None:
        for entry in record.get("servers", {}).values():
            state_file = Path(entry["state_file"])
            if state_file.exists():
                dropbear.stop_server_processes(state_file)
        # Servers whose start failed half-way have a state file but no entry yet.
        for state_file in sorted((self.directory / "run").glob(f"*/{dropbear.STATE_NAME}")):
            dropbear.stop_server_processes(state_file)
        if record.get("mariadb"):
            stop_mariadb = _optional_import("panel.lab.mariadb", "stop_mariadb", None)
            for server in record["mariadb"]:
                if stop_mariadb is not None:
                    stop_mariadb(self.directory / "mysql", server)  # a clean shutdown keeps its data dir sane
        for process in record.get("processes", []):
            procs.stop(ProcessRecord.from_json(process))
        # Last, a sweep: anything of ours still running with this folder on its command line (say, a
        # process whose start was interrupted before it was recorded).
        for pid in procs.processes_mentioning(str(self.directory) + "/"):
            if _is_lab_process(pid):
                found = procs.record_for(pid, f"leftover lab process {pid}")
                procs.stop(found)
        procs.reap_finished()

    # --- helpers ------------------------------------------------------------------------------------

    def _server_record(self, server: str) -> dict[str, Any]:
        record = self._load()
        if record is None or record.get("status") != "up":
            raise LabError(f"The lab in {self.directory} is not running (start it with `lab up`).")
        if server not in record["servers"]:
            known = ", ".join(sorted(record["servers"]))
            raise LabError(f"The lab has no server named {server!r} (known: {known}).")
        entry = dict(record["servers"][server])
        entry["state_file_path"] = Path(entry["state_file"])
        return entry

    def _all_alive(self, record: dict[str, Any]) -> bool:
        """True if every recorded process runs and every server runs its sshd or its dropbear."""
        for process in record.get("processes", []):
            if not procs.is_alive(ProcessRecord.from_json(process)):
                return False
        for entry in record.get("servers", {}).values():
            try:
                state = emulator.load_state(Path(entry["state_file"]))
            except (FileNotFoundError, ValueError):
                return False
            running = [procs.is_alive_json(state.get(key)) for key in ("sshd", "dropbear", "finisher")]
            if not any(running):
                return False
        return bool(record.get("servers"))


def _optional_import(module: str, name: str, record: dict[str, Any] | None) -> Callable[..., Any] | None:
    """``module.name`` if that part of the lab exists yet; else None, noted in the record."""
    try:
        imported = __import__(module, fromlist=[name])
        function: Callable[..., Any] = getattr(imported, name)
    except (ImportError, AttributeError):
        if record is not None:
            record["skipped"].append(f"{module}.{name}")
        return None
    return function


def _quietly(function: Callable[..., Any], *args: Any) -> Any:
    """Call ``function`` without the ResourceWarning that a dropped Popen of a still-running daemon
    gives (the point of a detached child is that it keeps running), which pytest turns into an error.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="subprocess .* is still running", category=ResourceWarning)
        return function(*args)


def _is_lab_process(pid: int) -> bool:
    """A process of a kind the lab starts (by its name in /proc: sshd rewrites its argv)."""
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return name in {"sshd", "dropbear", "unshare", "mariadbd"} or (
        name.startswith("python") and (b"panel.lab" in cmdline or b"cryptroot_unlock" in cmdline)
    )


def _listen_port(sshd_config: Path) -> int:
    for line in sshd_config.read_text().splitlines():
        if line.startswith("ListenAddress "):
            return int(line.rsplit(":", 1)[1])
    raise LabError(f"{sshd_config} names no ListenAddress.")


def _info_from_record(record: dict[str, Any]) -> LabInfo:
    servers = {}
    for name, entry in record["servers"].items():
        servers[name] = ServerInfo(
            name=name,
            host=HOST,
            port=int(entry["port"]),
            sshd_port=int(entry["sshd_port"]),
            host_key=entry["host_key"],
            root=Path(entry["root"]),
            state_file=Path(entry["state_file"]),
            volumes=tuple(entry["volumes"]),
            unlock_port=entry.get("unlock_port"),
            dropbear_port=entry.get("dropbear_port"),
            unlock_host_key=entry.get("unlock_host_key"),
            mysql_port=record.get("mariadb", {}).get(name, {}).get("port"),
        )
    standins = record.get("standins", {})
    return LabInfo(
        directory=Path(record["directory"]),
        config_path=Path(record["config"]),
        client_key=Path(record["client_key"]),
        user=record["user"],
        servers=servers,
        latency_ms=float(record["latency_ms"]),
        boot_delay=float(record["boot_delay"]),
        initramfs_delay=float(record["initramfs_delay"]),
        received_log=Path(record["received_log"]),
        started_in=float(record.get("started_in", 0.0)),
        cloudflare_url=standins.get("cloudflare_url"),
        stripe_url=standins.get("stripe_url"),
        mailgun_url=standins.get("mailgun_url"),
        mailgun_eu_url=standins.get("mailgun_eu_url"),
        backups=tuple(record.get("backups", [])),
        skipped=tuple(record.get("skipped", [])),
    )


# --- the servers' filesystem roots ------------------------------------------------------------------


def _write_filesystem_root(root: Path, name: str) -> None:
    """A few small config-like files under ``root/etc``: what the panel's change checks watch."""
    files = {
        "hostname": f"{name}\n",
        "hosts": f"127.0.0.1\tlocalhost\n127.0.1.1\t{name}.example.com {name}\n",
        "os-release": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
        "ssh/sshd_config": "PermitRootLogin prohibit-password\nPasswordAuthentication no\n",
        "crontab": "SHELL=/bin/sh\n17 * * * * root cd / && run-parts --report /etc/cron.hourly\n",
        "cron.d/rdiff-backup": "30 2 * * * root rdiff-backup backup /srv /var/backups/rdiff\n",
    }
    if VOLUMES[name]:
        files["crypttab"] = "".join(
            f"{volume}_crypt UUID=lab-{name}-{volume} none luks,discard\n" for volume in VOLUMES[name]
        )
        files["dropbear/initramfs/dropbear.conf"] = 'DROPBEAR_OPTIONS="-I 600 -j -k -p 2222 -s -c cryptroot-unlock"\n'
    if name.startswith("app"):
        files["nginx/sites-enabled/saas.conf"] = (
            "server {\n    listen 443 ssl;\n    server_name example.com;\n"
            "    location / { proxy_pass http://127.0.0.1:8000; }\n}\n"
        )
        files["mysql/mariadb.conf.d/50-server.cnf"] = "[mysqld]\nbind-address = 127.0.0.1\n"
    for relative, text in files.items():
        path = root / "etc" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():  # never undo a change a demo made on purpose (a "tampered" file)
            path.write_text(text)
    _write_logs(root, name)


def log_files(root: Path, name: str) -> list[Path]:
    """The plain log files of a lab server, which the Logs page reads (the lab has no journal)."""
    names = ["var/log/nginx/error.log", "var/log/saas/app.log"] if name.startswith("app") else []
    return [root / relative for relative in [*names, "var/log/syslog"]]


def _write_logs(root: Path, name: str) -> None:
    """A few hours of plausible lines, errors among them, with timestamps ending now."""
    now = time.time()
    lines = {
        "var/log/syslog": [
            "systemd[1]: Started Daily apt download activities.",
            "CRON[{pid}]: (root) CMD (rdiff-backup backup /srv /var/backups/rdiff)",
            "sshd[{pid}]: Accepted publickey for root from 203.0.113.50 port 51234 ssh2: ED25519",
            "kernel: [UFW BLOCK] IN=eth0 SRC=198.51.100.23 DST=203.0.113.10 PROTO=TCP DPT=3306",
            "sshd[{pid}]: error: maximum authentication attempts exceeded for invalid user admin",
        ],
        "var/log/nginx/error.log": [
            "[warn] {pid}#0: *1{pid} upstream response is buffered to a temporary file",
            "[error] {pid}#0: *2{pid} connect() failed (111: Connection refused) while connecting to upstream",
        ],
        "var/log/saas/app.log": [
            "INFO saas.billing: invoice paid group=1",
            "WARNING saas.mail: bounce for user17@group-17.example",
            "ERROR saas.export: group 42 export failed: lock wait timeout exceeded",
            "INFO saas.web: GET /api/groups/1/documents 200 38ms",
        ],
    }
    for path in log_files(root, name):
        if path.exists():
            continue
        relative = str(path.relative_to(root))
        templates = lines[relative]
        path.parent.mkdir(parents=True, exist_ok=True)
        out = []
        for number in range(240):  # one line a minute for the last four hours
            at = time.localtime(now - (240 - number) * 60)
            message = templates[(number * 7 + len(name)) % len(templates)].format(pid=1000 + number)
            if relative == "var/log/syslog":
                out.append(time.strftime("%b %d %H:%M:%S", at) + f" {name} {message}")
            else:
                out.append(time.strftime("%Y/%m/%d %H:%M:%S", at) + f" {message}")
        path.write_text("\n".join(out) + "\n")


# --- panel.toml -----------------------------------------------------------------------------------


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(ch if ch >= " " or ch == "\t" else f"\\u{ord(ch):04x}" for ch in escaped) + '"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return _toml_string(str(value))
    if isinstance(value, Sequence):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def _table(header: str, values: dict[str, Any]) -> list[str]:
    return [header] + [f"{key} = {_toml_value(value)}" for key, value in values.items() if value is not None] + [""]


def lab_ports(info: LabInfo) -> list[int]:
    """Every port the lab listens on (all servers share this machine, so each may see them all)."""
    ports: set[int] = set()
    for server in info.servers.values():
        ports.update(p for p in (server.port, server.sshd_port, server.unlock_port, server.dropbear_port) if p)
        if server.mysql_port:
            ports.add(server.mysql_port)
    for url in (info.cloudflare_url, info.stripe_url, info.mailgun_url, info.mailgun_eu_url):
        if url and urlsplit(url).port:
            ports.add(int(urlsplit(url).port or 0))
    return sorted(ports)


def write_config(path: Path, info: LabInfo) -> Path:
    """Write the panel's config for the lab, in the DESIGN.md format, every key filled in."""
    lines = [
        "# The local demo fleet, written by `lab up` (panel.lab.fleet). Every server runs on this",
        "# machine; see lab.json beside this file. Secrets are not here: the demo keyring holds them",
        "# (PYTHON_KEYRING_BACKEND=panel.lab.secrets.DemoKeyring).",
        "",
    ]
    expected_ports = lab_ports(info)
    for server in info.servers.values():
        lines += _table(
            f"[servers.{server.name}]",
            {
                "host": server.host,
                "port": server.port,
                "user": info.user,
                "identity": info.client_key,
                "host_key": server.host_key,
                "unlock_port": server.unlock_port,
                "unlock_host_key": server.unlock_host_key,
                "unlock_volumes": list(server.volumes) if len(server.volumes) > 1 else None,
            },
        )
        if server.mysql_port:
            lines += _table(
                f"[servers.{server.name}.mysql]", {"database": "saas", "user": "panel", "port": server.mysql_port}
            )
        for repo in info.backups:
            if repo["server"] == server.name:
                lines += _table(
                    f"[[servers.{server.name}.backups]]",
                    {
                        "name": repo["name"],
                        "via": repo.get("via"),
                        "path": repo["path"],
                        "max_age_hours": repo["max_age_hours"],
                    },
                )
        lines += _table(
            f"[servers.{server.name}.checks]",
            {
                "expected_ports": expected_ports,
                "watch_paths": [str(server.root / "etc")],
                "log_files": [str(path) for path in log_files(server.root, server.name)],
            },
        )
    lines += _table(
        "[groups]",
        {"table": "groups", "key": "id", "name": "name", "suspended": "suspended_at", "fk": "group_id"},
    )
    if info.cloudflare_url:
        lines += _table("[cloudflare]", {"zone": "example.com", "base_url": info.cloudflare_url})
    if info.stripe_url:
        lines += _table("[stripe]", {"base_url": info.stripe_url})
    if info.mailgun_url:
        lines += _table("[mailgun]", {"domain": "mg.example.com", "base_url": info.mailgun_url})
    temporary = path.with_suffix(".tmp")
    temporary.write_text("\n".join(lines))
    os.replace(temporary, path)
    return path
