"""The keyring wrapper in each state: working, missing and locked, with keyring's own backend API."""

from __future__ import annotations

import keyring.backends.fail
import pytest

from panel.secrets import KeyringState, SecretStore, luks_entry, mysql_entry
from services.errors import SecretUnavailable
from tests.keyrings import LockedKeyring, MemoryKeyring


def test_entry_names_follow_the_design() -> None:
    assert luks_entry("app1") == "app1/luks"
    assert luks_entry("app2", "data") == "app2/luks/data"
    assert mysql_entry("app1") == "app1/mysql"


def test_a_working_keyring_remembers() -> None:
    backend = MemoryKeyring()
    store = SecretStore(backend)
    assert store.status().state is KeyringState.WORKING
    store.set("app1/luks", "s3cret")
    assert backend.entries[("panel", "app1/luks")] == "s3cret"
    assert store.get("app1/luks") == "s3cret"
    store.delete("app1/luks")
    assert store.get("app1/luks") is None


def test_no_keyring_says_so_and_never_writes_a_file(tmp_path: pytest.TempPathFactory) -> None:
    store = SecretStore(keyring.backends.fail.Keyring())
    status = store.status()
    assert status.state is KeyringState.MISSING
    assert not status.can_remember
    assert "No usable keyring" in status.message
    assert store.get("app1/luks") is None
    with pytest.raises(SecretUnavailable):
        store.set("app1/luks", "s3cret")


def test_a_locked_keyring_says_so_and_keeps_the_secret_out_of_errors() -> None:
    store = SecretStore(LockedKeyring())
    status = store.status()
    assert status.state is KeyringState.LOCKED
    assert "locked" in status.message
    assert store.get("app1/luks") is None
    with pytest.raises(SecretUnavailable) as caught:
        store.set("app1/luks", "s3cret-value")
    assert "s3cret-value" not in str(caught.value)


def test_the_vendors_environment_variable_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = MemoryKeyring()
    backend.set_password("panel", "stripe", "sk_from_keyring")
    store = SecretStore(backend)
    assert store.api_key("stripe") == "sk_from_keyring"
    monkeypatch.setenv("STRIPE_API_KEY", "sk_from_env")
    assert store.api_key("stripe") == "sk_from_env"


def test_the_demo_keyring_is_never_picked_on_its_own() -> None:
    """Importing the lab must not make the demo's secrets the keyring of a machine without one."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHON_KEYRING_BACKEND"}
    code = "import panel.cli, panel.lab.secrets, keyring; print(type(keyring.get_keyring()).__name__)"
    chosen = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert chosen.stdout.strip() != "DemoKeyring"
    explicit = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**env, "PYTHON_KEYRING_BACKEND": "panel.lab.secrets.DemoKeyring"})
    assert explicit.stdout.strip() == "DemoKeyring"
