"""Shared by the backups tests (glue, CLI, window): configs on the lab's real servers, private copies
of the lab's repositories (written by the real rdiff-backup), and sessions built from dataclasses."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from panel.context import PanelContext
from panel.lab.fleet import LabInfo
from panel.lab.procs import free_ports
from panel.secrets import SecretStore
from panel.store import Store
from services.backups import Session, SessionStats
from tests.keyrings import MemoryKeyring

ISO_UTC = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"


def lab_repo(lab: LabInfo, name: str) -> dict[str, Any]:
    """The lab's own repository ``name`` ("local" or "offsite") as the lab wrote it in its config."""
    return next(dict(repo) for repo in lab.backups if repo["name"] == name)


def server_toml(lab: LabInfo, name: str) -> str:
    """One lab server's [servers.NAME] table: its sshd (pinned key), the lab's client key."""
    server = lab.servers[name]
    return (f'[servers.{name}]\nhost = "{server.host}"\nport = {server.port}\nuser = "{lab.user}"\n'
            f'identity = "{lab.client_key}"\nhost_key = "{server.host_key}"\n\n')


def backup_toml(server: str, name: str, path: str | Path, *, via: str | None = None, source: str | Path | None = None,
                max_age_hours: float = 26.0) -> str:
    text = f'[[servers.{server}.backups]]\nname = "{name}"\npath = "{path}"\nmax_age_hours = {max_age_hours}\n'
    if via:
        text += f'via = "{via}"\n'
    if source:
        text += f'source = "{source}"\n'
    return text + "\n"


def down_server_toml(name: str, key: Path) -> str:
    """A server nobody answers for: a loopback port that is closed."""
    (port,) = free_ports(1)
    return f'[servers.{name}]\nhost = "127.0.0.1"\nport = {port}\nuser = "root"\nidentity = "{key}"\n\n'


def lab_config(lab: LabInfo, folder: Path, *, backups: str | None = None, extra: str = "",
               servers: tuple[str, ...] = ("app1", "backup1")) -> Path:
    """A config with lab servers and ``backups`` tables (default: the lab's two repositories, the local
    one with its live files' root as ``source``)."""
    if backups is None:
        local, offsite = lab_repo(lab, "local"), lab_repo(lab, "offsite")
        backups = (backup_toml("app1", "local", local["path"], source=lab.servers["app1"].root)
                   + backup_toml("app1", "offsite", offsite["path"], via="backup1"))
    text = "".join(server_toml(lab, name) for name in servers) + backups + extra
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "panel.toml"
    config.write_text(text)
    return config


def copy_lab_repo(lab: LabInfo, name: str, target: Path) -> Path:
    """A private copy of a lab repository, for tests that change it."""
    shutil.copytree(lab_repo(lab, name)["path"], target, symlinks=True)
    return target


def open_context(config: Path, folder: Path) -> PanelContext:
    """A context on ``config`` with a store in ``folder`` and an in-memory keyring (set PANEL_DATA_DIR first)."""
    return PanelContext.open(config, store=Store(folder / "store.sqlite3"), secrets=SecretStore(MemoryKeyring()))


def fake_sessions(count: int, *, start: datetime | None = None) -> list[Session]:
    """``count`` daily sessions as the reader would build them, the last one the mirror."""
    first = start or datetime(2022, 1, 1, 2, 30, tzinfo=UTC)
    sessions = []
    for number in range(count):
        when = first + timedelta(days=number)
        stats = SessionStats(start_time=when, end_time=when + timedelta(seconds=3), elapsed_seconds=3.0 + number % 7,
                             source_files=1000 + number, source_file_size=10_000_000 + 1000 * number,
                             new_files=number % 3, deleted_files=number % 2, changed_files=number % 5,
                             increment_file_size=500 + number % 97, errors=1 if number % 250 == 7 else 0,
                             complete=True)
        sessions.append(Session(time=when, is_mirror=number == count - 1, listed=number % 10 != 3,
                                size=400 + number % 50, cumulative_size=20_000_000 - 100 * number,
                                increment_size=stats.increment_file_size, errors=stats.errors, stats=stats,
                                stamp=when.strftime("%Y-%m-%dT%H:%M:%SZ")))
    return sessions
