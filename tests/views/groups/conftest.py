"""Fixtures for the Groups window tests.

- ``make_panel(config, backend=...)``: a PanelContext on a config (a Store in tmp_path, a SecretStore
  over an in-memory keyring), a JobRunner and a PanelState with read-only mode off.
- ``big_pair`` (session): two private MariaDB servers of this folder (not the shared lab's): "app1"
  with the demo groups plus 100,000 more (tests/services/groups/bench_list.py) and one group of
  ~45,000 rows (id 2500, tests/services/groups/bench_move.py), and "app2" with the demo groups.
- ``runner``: a JobRunner, shut down after the test once its jobs delivered their last signals.
- ``big_config``: a config whose app1 and app2 are the lab's sshd servers, with their database port
  pointing at ``big_pair``: the panel reaches the private servers through the same SSH tunnels.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import keyring.backend
import pytest

from panel.config import load_config
from panel.context import PanelContext
from panel.lab.fleet import LabInfo
from panel.lab.mariadb import MariaDBHandle, start_mariadb
from panel.lab.secrets import DemoKeyring
from panel.secrets import SecretStore
from panel.store import Store
from services.groups.endpoint import POOL
from services.groups.schema import forget_schemas
from tests.services.groups.bench_list import populate
from tests.services.groups.bench_move import make_big_group
from tests.views.groups.groups_testlib import BIG_GROUPS, BIG_ROWS, Panel
from views.state import PanelState
from views.workers import JobRunner


@pytest.fixture
def make_panel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, qtbot: Any) -> Iterator[Callable[..., Panel]]:
    monkeypatch.setenv("PANEL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    made: list[Panel] = []

    def make(config: Path, backend: keyring.backend.KeyringBackend | None = None) -> Panel:
        store_path = tmp_path / f"store{len(made)}.sqlite3"
        context = PanelContext(config, load_config(config), Store(store_path),
                               SecretStore(backend if backend is not None else DemoKeyring()))
        runner = JobRunner()
        state = PanelState(context, runner)
        state.poll_timer.stop()
        state.read_only = False
        panel = Panel(context, runner, state, store_path)
        made.append(panel)
        return panel

    yield make
    for panel in made:
        panel.runner.shutdown()
        qtbot.waitUntil(lambda p=panel: not p.runner.active_jobs, timeout=30000)
        panel.context.close()
        panel.context.store.close()


@pytest.fixture
def runner(qtbot: Any) -> Iterator[JobRunner]:
    """A JobRunner, shut down after the test once every job has delivered its last signal."""
    jobs = JobRunner()
    yield jobs
    jobs.shutdown()
    qtbot.waitUntil(lambda: not jobs.active_jobs, timeout=30000)


@pytest.fixture(scope="session")
def big_pair(reap_servers: Callable[[Path], None]) -> Iterator[tuple[MariaDBHandle, MariaDBHandle]]:
    folder = Path(tempfile.mkdtemp(prefix="groups-views-"))
    reap_servers(folder)
    handles: list[MariaDBHandle] = []
    try:
        with ThreadPoolExecutor(2) as pool:
            one = pool.submit(start_mariadb, folder, server="app1", group_offset=0, groups=3000, seed=1)
            two = pool.submit(start_mariadb, folder, server="app2", group_offset=1_000_000, groups=2000, seed=1)
            for future in (one, two):
                handles.append(future.result())
        populate(handles[0], BIG_GROUPS)
        make_big_group(handles[0], BIG_ROWS)
        yield handles[0], handles[1]
    finally:
        POOL.clear()
        forget_schemas()
        for handle in handles:
            handle.stop(remove_data=True)
        shutil.rmtree(folder, ignore_errors=True)


def _server_table(lab: LabInfo, name: str, mysql_port: int) -> str:
    server = lab.server(name)
    return (f'[servers.{name}]\nhost = "{server.host}"\nport = {server.port}\nuser = "{lab.user}"\n'
            f'identity = "{lab.client_key}"\nhost_key = "{server.host_key}"\n\n'
            f'[servers.{name}.mysql]\ndatabase = "saas"\nuser = "panel"\nport = {mysql_port}\n\n')


@pytest.fixture
def big_config(lab: LabInfo, big_pair: tuple[MariaDBHandle, MariaDBHandle], tmp_path: Path) -> Path:
    config = tmp_path / "big.toml"
    config.write_text(_server_table(lab, "app1", big_pair[0].port) + _server_table(lab, "app2", big_pair[1].port))
    return config

