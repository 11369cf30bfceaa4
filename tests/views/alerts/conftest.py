"""An Alerts page on a real PanelContext: a config in tmp_path, a private store and keyring, a JobRunner."""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from panel.context import PanelContext
from panel.lab.sshd import SshdServer
from panel.secrets import SecretStore
from panel.store import Store
from tests.keyrings import MemoryKeyring
from views.pages.alerts import AlertsPage
from views.state import PanelState
from views.workers import JobRunner

USER = pwd.getpwuid(os.geteuid()).pw_name
MakePage = Callable[[str], AlertsPage]


def server_toml(name: str, port: int, key: Path, pin: str | None = None, checks: str = "") -> str:
    text = f'[servers.{name}]\nhost = "127.0.0.1"\nport = {port}\nuser = "{USER}"\nidentity = "{key}"\n'
    if pin:
        text += f'host_key = "{pin}"\n'
    if checks:
        text += f"\n[servers.{name}.checks]\n{checks}\n"
    return text + "\n"


def sshd_toml(name: str, server: SshdServer, key: Path, checks: str = "") -> str:
    return server_toml(name, server.port, key, server.host_key_line, checks)


@pytest.fixture
def make_page(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakePage]:
    """``make_page(config_text)``: the page, not polling by itself (tests run the checks when they want)."""
    monkeypatch.setenv("PANEL_DATA_DIR", str(tmp_path / "data"))
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("SSH_AUTH_SOCK", "STRIPE_API_KEY", "MAILGUN_API_KEY", "CLOUDFLARE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    made: list[tuple[JobRunner, PanelState, PanelContext]] = []

    def make(config_text: str) -> AlertsPage:
        config = tmp_path / "panel.toml"
        config.write_text(config_text)
        context = PanelContext.open(config, store=Store(tmp_path / "store.sqlite3"),
                                    secrets=SecretStore(MemoryKeyring()))
        runner = JobRunner()
        state = PanelState(context, runner)
        state.poll_timer.stop()
        page = AlertsPage(state, autostart=False)
        qtbot.addWidget(page)
        made.append((runner, state, context))
        return page

    yield make
    for runner, state, context in made:
        state.poll_timer.stop()
        runner.shutdown()
        context.close()
        context.store.close()
