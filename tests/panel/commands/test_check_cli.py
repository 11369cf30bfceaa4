"""`python -m panel check [--json] [--accept SERVER]` on real servers: the exit status follows the
monitoring-plugin convention (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; a config error is 3 too)."""

from __future__ import annotations

import datetime as dt
import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

from panel.alerts import AlertBook
from panel.lab.sshd import SshdServer
from panel.store import Store
from tests.services.checks.check_helpers import free_port

USER = pwd.getpwuid(os.geteuid()).pw_name
ROOT = Path(__file__).resolve().parents[3]
EXIT = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}
# Thresholds that this shared test machine cannot cross, and every port expected, so that only what
# a test does on purpose (or what it silenced) decides the exit status.
CALM = ("expected_ports = [{ports}]\ndisk_warning_percent = 101\ndisk_critical_percent = 101\n"
        "disk_inode_warning_percent = 101\ndisk_inode_critical_percent = 101\nmemory_warning_percent = 101\n"
        "memory_critical_percent = 101\nload_warning_per_core = 1000\nload_critical_per_core = 1000\n")


def run_panel(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PANEL_DATA_DIR": str(tmp_path / "data"), "HOME": str(tmp_path / "home"),
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    for name in ("SSH_AUTH_SOCK", "STRIPE_API_KEY", "MAILGUN_API_KEY", "CLOUDFLARE_API_TOKEN"):
        env.pop(name, None)
    (tmp_path / "home").mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "panel", *args], capture_output=True, text=True, env=env,
                          timeout=180, check=False, cwd=ROOT)


def server_toml(server: SshdServer, key: Path, checks: str, name: str = "app1") -> str:
    return (f'[servers.{name}]\nhost = "127.0.0.1"\nport = {server.port}\nuser = "{USER}"\nidentity = "{key}"\n'
            f'host_key = "{server.host_key_line}"\n\n[servers.{name}.checks]\n{checks}\n')


def silence_everything(tmp_path: Path) -> int:
    store = Store(tmp_path / "data" / "panel.sqlite3")
    try:
        book = AlertBook(store)
        alerts = book.open_alerts()
        for alert in alerts:
            book.silence(alert.id, dt.datetime.now(dt.UTC) + dt.timedelta(hours=1), reason="test")
        return len(alerts)
    finally:
        store.close()


def test_a_config_error_exits_unknown(tmp_path: Path) -> None:
    config = tmp_path / "panel.toml"
    config.write_text('[servers.app1]\nhost = "127.0.0.1"\nport = "twenty-two"\n')
    result = run_panel(tmp_path, "--config", str(config), "check")
    assert result.returncode == 3
    assert str(config) in result.stderr and "port" in result.stderr
    missing = run_panel(tmp_path, "--config", str(tmp_path / "nowhere.toml"), "check")
    assert missing.returncode == 3


def test_a_down_server_is_critical_and_the_json_lists_each_alert(tmp_path: Path, lab_client_key: Path) -> None:
    config = tmp_path / "panel.toml"
    config.write_text(f'[servers.db1]\nhost = "127.0.0.1"\nport = {free_port()}\nidentity = "{lab_client_key}"\n')
    result = run_panel(tmp_path, "--config", str(config), "check", "--json")
    assert result.returncode == 2, result.stderr
    alerts = json.loads(result.stdout)
    down = next(a for a in alerts if a["check"] == "server.state")
    assert down["server"] == "db1" and down["severity"] == "CRITICAL" and "down" in down["summary"]
    assert isinstance(down["evidence"], list) and down["evidence"]
    assert down["action"]["page"] == "Fleet"
    for alert in alerts:
        assert {"server", "check", "severity", "summary", "evidence"} <= set(alert)


def test_exit_statuses_follow_what_the_operator_would_see(tmp_path: Path, sshd_server: SshdServer,
                                                          lab_client_key: Path) -> None:
    watched = tmp_path / "etc"
    watched.mkdir()
    (watched / "hosts").write_text("127.0.0.1 localhost\n")
    checks = CALM.format(ports=", ".join(str(p) for p in range(1, 65536))) + f'watch_paths = ["{watched}"]\n'
    config = tmp_path / "panel.toml"
    config.write_text(server_toml(sshd_server, lab_client_key, checks))

    first = run_panel(tmp_path, "--config", str(config), "check", "--json")
    alerts = json.loads(first.stdout)
    worst = max((a["severity"] for a in alerts), key=lambda s: {"OK": 0, "UNKNOWN": 1, "WARNING": 2,
                                                                 "CRITICAL": 3}[s], default="OK")
    assert first.returncode == EXIT[worst], first.stderr
    assert not any(a["check"] in ("ports.unexpected", "disk.space", "memory", "load") for a in alerts)

    # Everything this machine reports is silenced: nothing counts, so OK.
    silence_everything(tmp_path)
    calm = run_panel(tmp_path, "--config", str(config), "check")
    assert calm.returncode == 0, calm.stdout + calm.stderr
    if alerts:
        assert "silenced" in calm.stdout

    # A watched file changes: WARNING, with the change in the evidence.
    (watched / "hosts").write_text("127.0.0.1 localhost\n203.0.113.66 bank.example\n")
    changed = run_panel(tmp_path, "--config", str(config), "check", "--json")
    assert changed.returncode == 1, changed.stdout + changed.stderr
    files = next(a for a in json.loads(changed.stdout) if a["check"] == "files.changed")
    assert files["severity"] == "WARNING" and any("changed" in line and "hosts" in line for line in files["evidence"])

    # Accepted (audited), it is OK again.
    accepted = run_panel(tmp_path, "--config", str(config), "check", "--accept", "app1")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "Accepted 1 change(s) on app1" in accepted.stdout
    store = Store(tmp_path / "data" / "panel.sqlite3")
    try:
        entry = store.audit_entries(action_prefix="checks.accept")[0]
        assert entry.target == "app1" and entry.outcome == "ok"
    finally:
        store.close()

    # A check that cannot run (a watched path that is not absolute) is UNKNOWN: 3.
    config.write_text(server_toml(sshd_server, lab_client_key, checks.replace("watch_paths = [",
                                                                             'watch_paths = ["etc", ')))
    unknown = run_panel(tmp_path, "--config", str(config), "check")
    assert unknown.returncode == 3, unknown.stdout + unknown.stderr
    assert "must be absolute" in unknown.stdout

    # An unknown server for --accept is an error that names the known ones.
    wrong = run_panel(tmp_path, "--config", str(config), "check", "--accept", "app9")
    assert wrong.returncode == 3 and "app1" in wrong.stderr
