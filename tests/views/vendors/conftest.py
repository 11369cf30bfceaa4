"""Fixtures for the vendor pages: the three stand-ins in this process (real HTTP on loopback, the
real clients, never a mock), a config pointing at them, and a panel (context, runner, state)
over an in-memory keyring and a store in tmp_path."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from panel.config import load_config
from panel.context import PanelContext
from panel.lab import secrets as demo_secrets
from panel.lab.standins import StandinServers
from panel.secrets import SecretStore
from panel.store import Store
from services.http import RetryPolicy
from tests.keyrings import MemoryKeyring
from tests.vendor_standins import clean_standins
from views.state import PanelState
from views.workers import JobRunner

# Fast backoff, and (as in the window) a 429 that names its wait comes back to call_patiently.
FAST_RETRY = RetryPolicy(attempts=3, backoff_base=0.01, backoff_cap=0.05, retry_after_cap=0.0)
DEMO_KEYS = {"cloudflare": demo_secrets.CLOUDFLARE_TOKEN, "stripe": demo_secrets.STRIPE_KEY,
             "mailgun": demo_secrets.MAILGUN_KEY}
WRONG_KEYS = {"cloudflare": "wrong-cloudflare-token-5b7e1d", "stripe": "sk_test_wrongkey5b7e1d9c3a",
              "mailgun": "key-wrong5b7e1d9c3a"}
SERVERS = """
[servers.app1]
host = "127.0.0.1"
port = 2201

[servers.app2]
host = "127.0.0.1"
port = 2202

[servers.db1]
host = "203.0.113.20"
port = 22
"""


@pytest.fixture(scope="session")
def vendor_lab() -> Iterator[StandinServers]:
    with StandinServers() as lab:
        yield lab


@pytest.fixture
def standins(vendor_lab: StandinServers) -> Iterator[StandinServers]:
    """The stand-ins with faults off; whatever a test changed is put back afterwards."""
    with clean_standins(vendor_lab) as lab:
        yield lab


def config_text(lab: StandinServers, vendors: tuple[str, ...] = ("cloudflare", "stripe", "mailgun"), *,
                mailgun_url: str | None = None) -> str:
    text = SERVERS
    if "cloudflare" in vendors:
        text += f'\n[cloudflare]\nzone = "example.com"\nbase_url = "{lab.cloudflare_url}"\n'
    if "stripe" in vendors:
        text += f'\n[stripe]\nbase_url = "{lab.stripe_url}"\n'
    if "mailgun" in vendors:
        text += f'\n[mailgun]\ndomain = "mg.example.com"\nbase_url = "{mailgun_url or lab.mailgun_eu_url}"\n'
    return text


@dataclass
class Panel:
    context: PanelContext
    runner: JobRunner
    state: PanelState
    keyring: MemoryKeyring
    store_path: Path

    def set_key(self, vendor: str, key: str | None) -> None:
        entry = ("panel", vendor)
        if key is None:
            self.keyring.entries.pop(entry, None)
        else:
            self.keyring.entries[entry] = key


@pytest.fixture
def make_panel(tmp_path: Path, standins: StandinServers, monkeypatch: pytest.MonkeyPatch, qtbot: Any
               ) -> Iterator[Callable[..., Panel]]:
    """``make_panel(vendors=..., keys=...)``: a panel on a config naming those vendors' stand-ins."""
    for variable in ("CLOUDFLARE_API_TOKEN", "STRIPE_API_KEY", "MAILGUN_API_KEY", "PYTHON_KEYRING_BACKEND"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PANEL_DATA_DIR", str(tmp_path / "data"))
    made: list[Panel] = []

    def make(vendors: tuple[str, ...] = ("cloudflare", "stripe", "mailgun"), *,
             keys: dict[str, str] | None = None, mailgun_url: str | None = None,
             backend: MemoryKeyring | None = None) -> Panel:
        config = tmp_path / f"panel{len(made)}.toml"
        config.write_text(config_text(standins, vendors, mailgun_url=mailgun_url))
        keyring = backend if backend is not None else MemoryKeyring()
        for vendor, key in (DEMO_KEYS if keys is None else keys).items():
            keyring.entries[("panel", vendor)] = key
        store_path = tmp_path / f"store{len(made)}.sqlite"
        context = PanelContext(config, load_config(config), Store(store_path), SecretStore(keyring))
        runner = JobRunner()
        state = PanelState(context, runner)
        state.poll_timer.stop()
        state.read_only = False
        panel = Panel(context, runner, state, keyring, store_path)
        made.append(panel)
        return panel

    yield make
    for panel in made:
        panel.runner.shutdown()
        qtbot.waitUntil(lambda p=panel: not p.runner.active_jobs, timeout=10000)
        panel.context.store.close()
        panel.context.close()


@pytest.fixture
def leak_check(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[Panel], None]]:
    """Call it with a panel at the end of a test: no demo or wrong key in the log or the store file."""
    caplog.set_level(logging.DEBUG)

    def check(panel: Panel) -> None:
        secrets = list(DEMO_KEYS.values()) + list(WRONG_KEYS.values())
        logged = caplog.text
        stored = b""
        for path in panel.store_path.parent.glob(panel.store_path.name + "*"):  # the file, its -wal and -shm
            stored += path.read_bytes()
        for secret in secrets:
            assert secret not in logged
            assert secret.encode() not in stored
            assert secret[-10:] not in logged  # nor the tail the vendors echo in a masked key
            assert secret[-10:].encode() not in stored
        for entry in panel.context.store.audit_entries():
            assert not any(s in entry.detail or s[-10:] in entry.detail for s in secrets)

    yield check


def box_text(box: Any) -> str:
    """The text of a confirmation the page opened."""
    assert box is not None
    return str(box.text())


def some(value: Any) -> Any:
    """The value, which must be there (for a type checker's sake too)."""
    assert value is not None
    return value


def accept(box: Any) -> None:
    """Click the confirmation's yes button (the accept role)."""
    from PySide6.QtWidgets import QMessageBox

    assert box is not None and box.isVisible()
    yes = next(b for b in box.buttons() if box.buttonRole(b) == QMessageBox.ButtonRole.AcceptRole)
    yes.click()
