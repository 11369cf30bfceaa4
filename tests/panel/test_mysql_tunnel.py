"""The SaaS's MySQL through the SSH tunnel (panel.mysql), on the lab: as the generated config says it is."""

from __future__ import annotations

import socket
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import keyring.backend
import pytest

from panel.config import load_config
from panel.context import PanelContext
from panel.lab.fleet import LabInfo
from panel.lab.secrets import MYSQL_PASSWORD, DemoKeyring
from panel.mysql import MysqlPasswordMissing, mysql_access, open_mysql
from panel.secrets import SecretStore
from panel.store import Store
from services.errors import PanelError
from services.groups import MysqlAuthError, list_groups
from tests.keyrings import LockedKeyring, MemoryKeyring

MakeContext = Callable[..., PanelContext]


@pytest.fixture
def make_context(lab: LabInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeContext]:
    monkeypatch.setenv("PANEL_DATA_DIR", str(tmp_path / "data"))
    made: list[PanelContext] = []

    def make(backend: keyring.backend.KeyringBackend | None = None) -> PanelContext:
        secrets = SecretStore(backend if backend is not None else DemoKeyring())
        context = PanelContext(lab.config_path, load_config(lab.config_path), Store(tmp_path / f"s{len(made)}.db"),
                               secrets)
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()
        context.store.close()


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return True
    return False


def test_mariadb_answers_through_the_tunnel_the_config_describes(lab: LabInfo, make_context: MakeContext) -> None:
    raw = tomllib.loads(lab.config_path.read_text())
    for server in ("app1", "app2"):
        # The config names the database port as seen from the server, and no host.
        assert "host" not in raw["servers"][server]["mysql"]
        assert raw["servers"][server]["mysql"]["port"] == lab.server(server).mysql_port
    context = make_context()
    spec = context.inventory.groups

    endpoint, tunnel = open_mysql(context, "app1")
    assert endpoint.host == "127.0.0.1" and endpoint.port == tunnel.local_port
    assert endpoint.port != lab.server("app1").mysql_port  # the local end of the tunnel, not the server's port
    assert endpoint.server == "app1" and endpoint.database == "saas" and endpoint.user == "panel"
    assert MYSQL_PASSWORD not in repr(endpoint)
    acme = list_groups(endpoint, spec, search="acme")
    assert [(r.id, r.name, r.server) for r in acme.rows][:1] == [(1, "acme", "app1")]

    found = list_groups(open_mysql(context, "app2")[0], spec, search="#1000001")
    assert [(r.id, r.name, r.server) for r in found.rows] == [(1_000_001, "globex", "app2")]
    assert list_groups(open_mysql(context, "app2")[0], spec, limit=1).total == 2000

    again, same_tunnel = open_mysql(context, "app1")
    assert same_tunnel is tunnel and again == endpoint  # one tunnel per server for the session

    context.close()  # closes the tunnels with the SSH pool
    assert _refused(tunnel.local_port)


def test_a_dropped_tunnel_connection_is_reopened_for_the_next_query(make_context: MakeContext) -> None:
    context = make_context()
    spec = context.inventory.groups
    endpoint, tunnel = open_mysql(context, "app1")
    assert list_groups(endpoint, spec, search="#1").rows[0].name == "acme"

    tunnel.break_connections()  # every forwarded connection is cut, as when the link drops
    assert list_groups(endpoint, spec, search="#2").rows[0].name == "acme-labs"

    context.pool.drop(context.system_endpoint("app1"))  # the SSH connection itself goes away
    tunnel.break_connections()
    assert list_groups(endpoint, spec, search="#3").rows[0].name == "acme-europe"
    assert open_mysql(context, "app1")[1] is tunnel


def test_without_a_password_the_error_says_which_keyring_entry_to_set(make_context: MakeContext) -> None:
    context = make_context(MemoryKeyring())
    with pytest.raises(MysqlPasswordMissing) as missing:
        open_mysql(context, "app1")
    assert missing.value.server == "app1" and missing.value.can_remember
    assert "app1/mysql" in str(missing.value) and "keyring set panel app1/mysql" in str(missing.value)

    mysql_access(context).use_password("app1", MYSQL_PASSWORD)  # typed in the window, for this session
    endpoint, _ = open_mysql(context, "app1")
    assert list_groups(endpoint, context.inventory.groups, search="#1").rows[0].name == "acme"


def test_a_locked_keyring_is_said_so_and_nothing_is_offered_to_remember(make_context: MakeContext) -> None:
    context = make_context(LockedKeyring())
    with pytest.raises(MysqlPasswordMissing) as missing:
        open_mysql(context, "app2")
    assert not missing.value.can_remember
    assert "locked" in str(missing.value)


def test_a_wrong_password_is_refused_without_showing_it(make_context: MakeContext) -> None:
    keyring = MemoryKeyring()
    wrong = "not-the-password-9d2f"
    keyring.entries[("panel", "app1/mysql")] = wrong
    context = make_context(keyring)
    endpoint, _ = open_mysql(context, "app1")
    with pytest.raises(MysqlAuthError) as refused:
        list_groups(endpoint, context.inventory.groups, limit=1)
    assert wrong not in str(refused.value) and "app1/mysql" in str(refused.value)


def test_a_server_without_a_database_is_named(make_context: MakeContext) -> None:
    context = make_context()
    with pytest.raises(PanelError, match=r"\[servers.backup1.mysql\]"):
        open_mysql(context, "backup1")
    assert mysql_access(context).servers() == ["app1", "app2"]
