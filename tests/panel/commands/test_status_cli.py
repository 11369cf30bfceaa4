"""`python -m panel --config FILE status --json` follows DESIGN.md exactly, on real servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from panel.lab.dropbear import start_dropbear
from panel.lab.procs import free_ports
from panel.lab.sshd import ensure_client_key, start_sshd
from services.hostkeys import PublicKey

STATES = {"up", "locked", "down", "unknown-host-key", "host-key-mismatch"}
OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"


def run_panel(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PANEL_DATA_DIR": str(tmp_path / "data"), "HOME": str(tmp_path / "home"),
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    env.pop("SSH_AUTH_SOCK", None)
    return subprocess.run([sys.executable, "-m", "panel", *args], capture_output=True, text=True, env=env,
                          input=stdin, timeout=120, check=False, cwd=Path(__file__).resolve().parents[3])


@pytest.fixture
def fleet(tmp_path: Path):  # type: ignore[no-untyped-def]
    key = ensure_client_key(tmp_path / "keys")
    pinned = start_sshd(tmp_path / "pinned", client_key=key, name="pinned")
    unknown = start_sshd(tmp_path / "unknown", client_key=key, name="unknown")
    rogue = start_sshd(tmp_path / "rogue", client_key=key, name="rogue")
    initramfs = start_dropbear(tmp_path / "initramfs", client_key=key, forced_command=["true"], name="locked")
    down_port, locked_port = free_ports(2)
    config = tmp_path / "panel.toml"
    config.write_text(
        f'[servers.pinned]\nhost = "127.0.0.1"\nport = {pinned.port}\nidentity = "{key}"\n'
        f'host_key = "{pinned.host_key_line}"\n\n'
        f'[servers.unknown]\nhost = "127.0.0.1"\nport = {unknown.port}\nidentity = "{key}"\n\n'
        f'[servers.rogue]\nhost = "127.0.0.1"\nport = {rogue.port}\nidentity = "{key}"\nhost_key = "{OTHER_KEY}"\n\n'
        f'[servers.locked]\nhost = "127.0.0.1"\nport = {locked_port}\nidentity = "{key}"\n'
        f'unlock_port = {initramfs.port}\nunlock_host_key = "{initramfs.host_key_line}"\n\n'
        f'[servers.down]\nhost = "127.0.0.1"\nport = {down_port}\nidentity = "{key}"\n'
    )
    (tmp_path / "home").mkdir()
    yield config, unknown
    for server in (pinned, unknown, rogue, initramfs):
        server.stop()


def test_status_json_reports_each_state(tmp_path: Path, fleet) -> None:  # type: ignore[no-untyped-def]
    config, unknown = fleet
    result = run_panel(tmp_path, "--config", str(config), "status", "--json")
    assert result.returncode == 0, result.stderr
    statuses = {item["server"]: item for item in json.loads(result.stdout)}
    assert all(item["state"] in STATES for item in statuses.values())
    assert {name: item["state"] for name, item in statuses.items()} == {
        "pinned": "up",
        "unknown": "unknown-host-key",
        "rogue": "host-key-mismatch",
        "locked": "locked",
        "down": "down",
    }
    assert statuses["unknown"]["fingerprint"] == PublicKey.parse(unknown.host_key_line).fingerprint
    assert statuses["rogue"]["expected"] == [f"ssh-ed25519 {PublicKey.parse(OTHER_KEY).fingerprint}"]
    assert statuses["pinned"]["facts"]["uptime_seconds"] > 0


def test_the_cli_refuses_an_unknown_key_and_prints_its_fingerprint(tmp_path: Path, fleet) -> None:  # type: ignore[no-untyped-def]
    config, unknown = fleet
    fingerprint = PublicKey.parse(unknown.host_key_line).fingerprint
    refused = run_panel(tmp_path, "--config", str(config), "hostkey", "unknown")
    assert refused.returncode == 1
    assert fingerprint in refused.stdout
    assert "Refusing: not a terminal" in refused.stderr
    assert not (tmp_path / "data" / "known_hosts").exists()

    wrong = run_panel(tmp_path, "--config", str(config), "hostkey", "unknown", "--fingerprint", "SHA256:nope")
    assert wrong.returncode == 1 and "NOT the fingerprint" in wrong.stderr

    trusted = run_panel(tmp_path, "--config", str(config), "hostkey", "unknown", "--fingerprint", fingerprint)
    assert trusted.returncode == 0, trusted.stderr
    after = run_panel(tmp_path, "--config", str(config), "status", "--json")
    assert {i["server"]: i["state"] for i in json.loads(after.stdout)}["unknown"] == "up"


def test_a_config_error_names_file_line_and_key(tmp_path: Path) -> None:
    config = tmp_path / "panel.toml"
    config.write_text('[servers.app1]\nhost = "127.0.0.1"\nport = "twenty-two"\n')
    result = run_panel(tmp_path, "--config", str(config), "status")
    assert result.returncode == 2
    assert f"{config}:3: servers.app1.port: must be a whole number" in result.stderr
