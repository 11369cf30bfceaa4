"""``python -m panel unlock`` and ``unlock-setup``, run as a user would, against the lab's real dropbear.

Every run gets its own PANEL_DATA_DIR; afterwards its log and store (and the command's output) are
searched for the passphrases that were sent: none may hold one.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from panel.config import load_config, save_server, set_server_key
from panel.lab.fleet import Lab, LabInfo
from panel.store import Store
from services.hostkeys import PublicKey
from tests.services.unlock.unlock_helpers import PrivateServer, entries_for, start_private_server

pytestmark = pytest.mark.lab

REPOSITORY = Path(__file__).resolve().parents[3]
NO_KEYRING = "keyring.backends.fail.Keyring"
DEMO_KEYRING = "panel.lab.secrets.DemoKeyring"


class Cli:
    """Runs the panel's CLI in a fresh process with its own data folder and HOME."""

    def __init__(self, tmp_path: Path) -> None:
        self.data = tmp_path / "data"
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.outputs: list[bytes] = []

    def __call__(self, config: Path, *args: str, stdin: bytes = b"", keyring: str = NO_KEYRING,
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PANEL_DATA_DIR": str(self.data), "HOME": str(self.home),
               "PYTHON_KEYRING_BACKEND": keyring}
        env.pop("SSH_AUTH_SOCK", None)
        done = subprocess.run([sys.executable, "-m", "panel", "--config", str(config), *args], input=stdin,
                              capture_output=True, cwd=REPOSITORY, env=env, timeout=timeout, check=False)
        self.outputs += [done.stdout, done.stderr]
        return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(errors="replace"),
                                           done.stderr.decode(errors="replace"))

    def store(self) -> Store:
        return Store(self.data / "panel.sqlite3")

    def assert_no_secret(self, *passphrases: str | bytes) -> None:
        """Neither the log, the store (with its WAL), known_hosts, nor the output holds a passphrase."""
        files = [path for path in self.data.rglob("*") if path.is_file()]
        assert any(path.name.startswith("panel.log") and path.stat().st_size for path in files), \
            "the panel wrote no log, so this check would prove nothing"
        assert any(path.name.startswith("panel.sqlite3") for path in files)
        for passphrase in passphrases:
            needle = passphrase.encode() if isinstance(passphrase, str) else passphrase
            for path in files:
                assert needle not in path.read_bytes(), f"{path.name} holds a passphrase"
            for output in self.outputs:
                assert needle not in output, "the command printed a passphrase"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def rebooted(lab_control: Lab) -> Iterator[Callable[[str], None]]:
    touched: list[str] = []

    def reboot(server: str) -> None:
        touched.append(server)
        lab_control.reboot(server)

    yield reboot
    for server in touched:
        lab_control.ensure_up(server)


@pytest.fixture
def private(tmp_path: Path, lab_client_key: Path) -> Iterator[Callable[..., tuple[PrivateServer, Path]]]:
    """A server of the test's own, and a config file that names it."""
    started: list[PrivateServer] = []

    def make(passphrase: str, **options: object) -> tuple[PrivateServer, Path]:
        folder = tmp_path / f"private{len(started)}"
        server = start_private_server(folder, lab_client_key, passphrase=passphrase, **options)  # type: ignore[arg-type]
        started.append(server)
        config = folder / "panel.toml"
        save_server(config, server.spec)
        return server, config

    yield make
    for server in started:
        server.dropbear.stop()


def test_the_right_passphrase_on_stdin_unlocks_exit_0(
    cli: Cli, lab: LabInfo, lab_control: Lab, rebooted: Callable[[str], None]
) -> None:
    rebooted("app1")
    before = len(entries_for(lab.received_log, "app1"))
    done = cli(lab.config_path, "unlock", "app1", "--passphrase-stdin", "--wait", "60",
               stdin=lab.luks_passphrase.encode() + b"\n")
    assert done.returncode == 0, done.stderr
    assert "unlocked root and the system is up" in done.stdout
    assert "system up" in done.stdout and "initramfs seen" in done.stdout  # the timeline
    assert lab_control.phase("app1") == "up"
    # `echo`'s newline was stripped: exactly the passphrase arrived.
    assert entries_for(lab.received_log, "app1")[before:] == [lab.luks_passphrase.encode()]
    entry = cli.store().audit_entries(action_prefix="unlock")[0]
    assert (entry.action, entry.target, entry.outcome) == ("unlock", "app1", "ok")
    cli.assert_no_secret(lab.luks_passphrase)


def test_at_most_one_trailing_newline_is_stripped(cli: Cli, private: Callable[..., tuple[PrivateServer, Path]]) -> None:
    passphrase = f"ends with a newline {secrets.token_hex(6)}\n"  # the newline IS part of this passphrase
    server, config = private(passphrase)
    done = cli(config, "unlock", "priv", "--passphrase-stdin", "--wait", "30", stdin=passphrase.encode() + b"\n")
    assert done.returncode == 0, done.stderr
    assert server.received() == [passphrase.encode()]
    cli.assert_no_secret(passphrase.strip())


def test_a_wrong_passphrase_is_tried_once_exit_4(
    cli: Cli, lab: LabInfo, lab_control: Lab, rebooted: Callable[[str], None]
) -> None:
    rebooted("app1")
    wrong = f"wrong {secrets.token_hex(8)}"
    before = len(entries_for(lab.received_log, "app1"))
    done = cli(lab.config_path, "unlock", "app1", "--passphrase-stdin", "--wait", "60", stdin=wrong.encode())
    assert done.returncode == 4, done.stderr
    assert "wrong" in done.stderr and "not again" in done.stderr
    assert entries_for(lab.received_log, "app1")[before:] == [wrong.encode()]  # once, never retried
    assert lab_control.phase("app1") == "locked"
    assert cli.store().audit_entries(action_prefix="unlock")[0].outcome == "failed"
    cli.assert_no_secret(wrong)


def test_a_rogue_initramfs_key_exits_3_and_the_emulator_receives_nothing(
    cli: Cli, lab: LabInfo, private: Callable[..., tuple[PrivateServer, Path]], tmp_path: Path
) -> None:
    rogue, _ = private("rogue")
    config = tmp_path / "panel.toml"
    shutil.copy2(lab.config_path, config)
    set_server_key(config, "app1", "unlock_port", rogue.dropbear.port)  # app1's pin, a rogue answering
    done = cli(config, "unlock", "app1", "--passphrase-stdin", "--wait", "20", stdin=lab.luks_passphrase.encode())
    assert done.returncode == 3, done.stderr
    offered = PublicKey.parse(rogue.spec.unlock_host_key or "").fingerprint
    expected = PublicKey.parse(lab.server("app1").unlock_host_key or "").fingerprint
    assert f"offered: ssh-ed25519 {offered}" in done.stdout
    assert expected in done.stdout and "Nothing was sent." in done.stdout
    assert rogue.received() == []
    assert cli.store().audit_entries(action_prefix="unlock")[0].outcome == "refused"
    cli.assert_no_secret(lab.luks_passphrase)


def test_still_locked_when_the_wait_runs_out_exits_5(
    cli: Cli, private: Callable[..., tuple[PrivateServer, Path]]
) -> None:
    passphrase = f"later {secrets.token_hex(6)}"
    server, config = private(passphrase, initramfs_delay=120.0)  # "Try again later" for two minutes
    done = cli(config, "unlock", "priv", "--passphrase-stdin", "--wait", "2", stdin=passphrase.encode())
    assert done.returncode == 5, done.stderr
    assert "still locked" in done.stderr
    assert "Try again later" in done.stderr  # the progress, on stderr
    assert server.received() == []
    cli.assert_no_secret(passphrase)


def test_the_keyring_supplies_each_volume(
    cli: Cli, lab: LabInfo, lab_control: Lab, rebooted: Callable[[str], None]
) -> None:
    rebooted("app2")
    before = len(entries_for(lab.received_log, "app2"))
    done = cli(lab.config_path, "unlock", "app2", "--wait", "60", keyring=DEMO_KEYRING)
    assert done.returncode == 0, done.stderr
    assert "unlocked root, data" in done.stdout
    assert len(entries_for(lab.received_log, "app2")[before:]) == 2
    assert lab_control.phase("app2") == "up"
    cli.assert_no_secret(lab.luks_passphrase)


def test_without_keyring_or_terminal_it_refuses_before_connecting(
    cli: Cli, lab: LabInfo, rebooted: Callable[[str], None]
) -> None:
    rebooted("app1")
    before = len(entries_for(lab.received_log, "app1"))
    done = cli(lab.config_path, "unlock", "app1", "--wait", "10")
    assert done.returncode == 1
    assert "--passphrase-stdin" in done.stderr and "app1/luks" in done.stderr
    assert len(entries_for(lab.received_log, "app1")) == before


def test_reboot_asks_and_refuses_without_a_terminal(cli: Cli, lab: LabInfo, lab_control: Lab) -> None:
    done = cli(lab.config_path, "unlock", "app1", "--reboot", "--reboot-command", "true",
               stdin=lab.luks_passphrase.encode(), keyring=DEMO_KEYRING)
    assert done.returncode == 1
    assert "Pass --yes" in done.stderr
    assert lab_control.phase("app1") == "up"
    assert cli.store().audit_entries(action_prefix="reboot")[0].outcome == "refused"


def test_reboot_and_unlock_from_the_command_line(
    cli: Cli, lab: LabInfo, lab_control: Lab, rebooted: Callable[[str], None]
) -> None:
    rebooted("app1")  # registers the clean-up; then bring it up again to reboot it for real below
    lab_control.ensure_up("app1")
    # The "reboot command" runs on the server (this machine): it asks the lab to reboot app1, detached,
    # as `systemctl reboot` would return before the machine goes down.
    command = (f"setsid -f {sys.executable} -m panel.lab.cli reboot app1 --dir {lab.directory} "
               ">/dev/null 2>&1 </dev/null")
    done = cli(lab.config_path, "unlock", "app1", "--reboot", "--yes", "--reboot-command", f"cd {REPOSITORY} && "
               f"{command}", "--wait", "90", keyring=DEMO_KEYRING)
    assert done.returncode == 0, done.stderr
    assert "went down" in done.stdout and "system up" in done.stdout
    assert lab_control.phase("app1") == "up"
    actions = [(e.action, e.outcome) for e in cli.store().audit_entries()]
    assert ("reboot", "ok") in actions and ("unlock", "ok") in actions


def test_the_initramfs_key_is_pinned_from_the_command_line(cli: Cli, lab: LabInfo, tmp_path: Path) -> None:
    config = tmp_path / "panel.toml"
    shutil.copy2(lab.config_path, config)
    set_server_key(config, "app1", "unlock_host_key", None)
    root = tmp_path / "root"
    (root / "etc/dropbear/initramfs").mkdir(parents=True)
    shutil.copy2(lab.directory / "run/app1/dropbear/dropbear_ed25519_host_key",
                 root / "etc/dropbear/initramfs/dropbear_ed25519_host_key")
    done = cli(config, "unlock-setup", "app1", "--pin", "--yes", "--root", str(root))
    assert done.returncode == 0, done.stderr
    assert "Pinned." in done.stdout
    assert load_config(config).server("app1").unlock_host_key == lab.server("app1").unlock_host_key
    assert cli.store().audit_entries(action_prefix="unlock.pin")[0].outcome == "ok"
