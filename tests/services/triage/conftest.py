"""One real sshd for the triage tests (started once per module), and stand-in systemctl/journalctl."""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator
from pathlib import Path

import pytest

from panel.lab.sshd import SshdServer, ensure_client_key, start_sshd
from services.inventory import ChecksSpec, ServerSpec
from services.ssh import SshEndpoint, SshPool, SshRunner, system_endpoint
from tests.services.triage.triage_fakes import FakeBin, make_fake_bin

USER = pwd.getpwuid(os.geteuid()).pw_name


@pytest.fixture(scope="module")
def triage_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_client_key(tmp_path_factory.mktemp("triage-keys"))


@pytest.fixture(scope="module")
def triage_sshd(tmp_path_factory: pytest.TempPathFactory, triage_key: Path) -> Iterator[SshdServer]:
    server = start_sshd(tmp_path_factory.mktemp("triage-sshd"), client_key=triage_key, name="app1")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No ~/.ssh of the real user plays a part, and no agent."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return home


def spec_of(server: SshdServer, key: Path, name: str = "app1", log_files: tuple[str, ...] = ()) -> ServerSpec:
    return ServerSpec(name=name, host=server.host, port=server.port, user=USER, identity=str(key),
                      host_key=server.host_key_line, checks=ChecksSpec(log_files=log_files))


@pytest.fixture
def spec(triage_sshd: SshdServer, triage_key: Path) -> ServerSpec:
    return spec_of(triage_sshd, triage_key)


@pytest.fixture
def pool() -> Iterator[SshPool]:
    pool = SshPool()
    yield pool
    pool.close_all()


@pytest.fixture
def endpoint(spec: ServerSpec) -> SshEndpoint:
    return system_endpoint(spec, known_hosts=None)


@pytest.fixture
def runner(pool: SshPool, endpoint: SshEndpoint) -> SshRunner:
    return SshRunner(pool, endpoint)


@pytest.fixture
def fake_bin(tmp_path: Path) -> FakeBin:
    return make_fake_bin(tmp_path / "fake-bin")
