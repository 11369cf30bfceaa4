"""The whole demo fleet: up, reboot, unlock, down, the written config, and the CLI."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from panel.lab import cryptroot_unlock, procs
from panel.lab.fleet import Lab, LabInfo
from panel.lab.luks import passphrase_opens
from panel.lab.secrets import LUKS_PASSPHRASE
from panel.lab.standins.runner import PORT_FILE

pytestmark = pytest.mark.lab

REPOSITORY = Path(__file__).resolve().parents[3]
PASSPHRASE = LUKS_PASSPHRASE.encode()
NO_OPTIONAL_PARTS: frozenset[str] = frozenset()


def lab_pids(directory: Path) -> list[int]:
    return procs.processes_mentioning(str(directory))


def test_up_reboot_unlock_down_with_latency_leaves_nothing_running(tmp_path: Path, ssh_run) -> None:
    lab = Lab(tmp_path / "lab", latency_ms=25, boot_delay=0.2, parts=NO_OPTIONAL_PARTS)
    try:
        info = lab.up()
        assert lab.is_running()
        app2 = info.servers["app2"]
        # The config points at the proxies, which add the delay; the servers sit behind them.
        assert app2.port != app2.sshd_port and app2.unlock_port != app2.dropbear_port
        started = time.monotonic()
        assert procs.read_banner("127.0.0.1", app2.port, timeout=5) is not None
        assert time.monotonic() - started >= 0.025

        pids_before = lab_pids(lab.directory)
        assert lab.up() == info  # idempotent: the same fleet, nothing new started
        assert lab_pids(lab.directory) == pids_before

        lab.reboot("app2")
        assert lab.phase("app2") == "locked"
        assert procs.read_banner("127.0.0.1", app2.sshd_port, timeout=0.3) is None
        for volume in ("root", "data"):
            result = ssh_run(app2.unlock_port, app2.unlock_host_key, stdin=PASSPHRASE, key=info.client_key)
            assert result.returncode == 0, result.stdout + result.stderr
            assert f"cryptsetup: {volume} set up successfully".encode() in result.stdout
        lab.wait_up("app2", timeout=20)
        result = ssh_run(app2.port, app2.host_key, "echo", "app2 is back", key=info.client_key)
        assert result.stdout == b"app2 is back\n"

        # A second reboot keeps the ports and both keys.
        lab.reboot("app2")
        assert lab.info().servers["app2"] == app2
        assert ssh_run(app2.unlock_port, app2.unlock_host_key, stdin=b"wrong", key=info.client_key).returncode != 0
    finally:
        lab.down()
    assert lab_pids(lab.directory) == []
    assert not lab.is_running()
    for server in info.servers.values():
        for port in (server.port, server.sshd_port, server.unlock_port, server.dropbear_port):
            assert port is None or procs.port_is_free(port)


def test_down_stops_an_sshd_started_by_the_boot_finisher(tmp_path: Path, ssh_run) -> None:
    lab = Lab(tmp_path / "lab", boot_delay=0.1, parts=NO_OPTIONAL_PARTS)
    try:
        info = lab.up()
        app1 = info.servers["app1"]
        lab.reboot("app1")
        assert ssh_run(app1.unlock_port, app1.unlock_host_key, stdin=PASSPHRASE, key=info.client_key).returncode == 0
        lab.wait_up("app1")
        state = cryptroot_unlock.load_state(app1.state_file)
        assert procs.is_alive_json(state["sshd"])
    finally:
        lab.down()
    assert lab_pids(lab.directory) == []


def test_ensure_up_boots_a_locked_server_without_its_passphrase(tmp_path: Path, ssh_run) -> None:
    lab = Lab(tmp_path / "lab", parts=NO_OPTIONAL_PARTS)
    try:
        info = lab.up()
        lab.reboot("app1")
        lab.ensure_up("app1")
        assert lab.phase("app1") == "up"
        app1 = info.servers["app1"]
        assert ssh_run(app1.port, app1.host_key, "true", key=info.client_key).returncode == 0
        assert procs.read_banner("127.0.0.1", app1.unlock_port or 0, timeout=0.3) is None
    finally:
        lab.down()


def test_the_cli_leaves_the_fleet_running_after_it_exits(tmp_path: Path) -> None:
    directory = tmp_path / "cli-lab"
    skip = ["--skip", "mariadb", "--skip", "backups", "--skip", "standins"]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "panel", "lab", *args, "--dir", str(directory)],
            cwd=REPOSITORY,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    try:
        up = cli("up", *skip)
        assert up.returncode == 0, up.stderr
        assert LUKS_PASSPHRASE in up.stdout
        assert str(directory / "panel.toml") in up.stdout
        assert Lab(directory).is_running()  # the `lab up` process is gone; its servers are not

        reboot = cli("reboot", "app1")
        assert reboot.returncode == 0, reboot.stderr
        assert Lab(directory).phase("app1") == "locked"
        assert Lab(directory).is_running()  # the dropbear that `lab reboot` started outlived it too
        assert cli("reboot", "nosuchserver").returncode == 1
    finally:
        down = cli("down")
    assert down.returncode == 0, down.stderr
    assert lab_pids(directory) == []


def test_the_session_lab_config_follows_the_design(lab: LabInfo) -> None:
    config = tomllib.loads(lab.config_path.read_text())
    user = pwd.getpwuid(os.geteuid()).pw_name
    standin_ports = json.loads((lab.directory / "standins" / PORT_FILE).read_text())["ports"].values()
    assert len(standin_ports) == 4
    assert set(config["servers"]) == {"app1", "app2", "backup1"}
    for name, server in config["servers"].items():
        info = lab.servers[name]
        assert server["host"] == "127.0.0.1"
        assert server["port"] == info.port
        assert server["user"] == user
        assert Path(server["identity"]) == lab.client_key
        assert server["host_key"] == info.host_key
        assert server["checks"]["watch_paths"] == [str(lab.directory / "servers" / name / "etc")]
        assert info.port in server["checks"]["expected_ports"]
        # every port of the vendor stand-ins (the EU Mailgun one too), as the stand-in process wrote
        # them: the servers share this machine, so a port left out raises a false alert on each
        assert set(standin_ports) <= set(server["checks"]["expected_ports"])
        assert (info.root / "etc" / "hostname").read_text() == f"{name}\n"
    assert config["servers"]["app1"]["unlock_port"] == lab.servers["app1"].unlock_port
    assert config["servers"]["app1"]["unlock_host_key"] == lab.servers["app1"].unlock_host_key
    assert config["servers"]["app1"]["unlock_host_key"] != config["servers"]["app1"]["host_key"]
    assert config["servers"]["app2"]["unlock_volumes"] == ["root", "data"]
    assert "unlock_port" not in config["servers"]["backup1"]
    assert config["groups"] == {
        "table": "groups", "key": "id", "name": "name", "suspended": "suspended_at", "fk": "group_id"
    }  # fmt: skip
    if "panel.lab.mariadb.start_mariadb" not in lab.skipped:
        for name in ("app1", "app2"):
            assert config["servers"][name]["mysql"] == {
                "database": "saas", "user": "panel", "port": lab.servers[name].mysql_port
            }  # fmt: skip
    if lab.cloudflare_url:
        assert config["cloudflare"] == {"zone": "example.com", "base_url": lab.cloudflare_url}
        assert config["stripe"] == {"base_url": lab.stripe_url}
        assert config["mailgun"] == {"domain": "mg.example.com", "base_url": lab.mailgun_url}


def test_the_session_lab_volumes_open_with_the_demo_passphrase(lab: LabInfo) -> None:
    for name in ("app1", "app2"):
        state = cryptroot_unlock.load_state(lab.servers[name].state_file)
        assert [volume["name"] for volume in state["volumes"]] == list(lab.servers[name].volumes)
        for volume in state["volumes"]:
            assert passphrase_opens(Path(volume["header"]), PASSPHRASE)


def test_down_also_sweeps_lab_processes_whose_record_was_lost(tmp_path: Path) -> None:
    lab = Lab(tmp_path / "lab", parts=NO_OPTIONAL_PARTS)
    try:
        info = lab.up()
        state_file = info.servers["backup1"].state_file
        with cryptroot_unlock.locked(state_file):  # as if a crash lost the pid of backup1's sshd
            state = cryptroot_unlock.load_state(state_file)
            state["sshd"] = None
            cryptroot_unlock.save_state(state_file, state)
        assert not lab.is_running()
        assert procs.read_banner("127.0.0.1", info.servers["backup1"].sshd_port) is not None
    finally:
        lab.down()
    assert lab_pids(lab.directory) == []
