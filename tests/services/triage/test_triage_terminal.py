""""Open a terminal here": the ssh command line as arguments, the terminal chosen, the pinned key file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from panel.lab.sshd import SshdServer
from services.errors import PanelError
from services.hostkeys import PublicKey
from services.inventory import ServerSpec
from services.ssh import system_endpoint
from services.triage.terminal import (
    TERMINALS,
    find_terminal,
    host_key_alias,
    prepare_terminal,
    ssh_argv,
    terminal_argv,
)
from tests.services.triage.conftest import USER, spec_of


def which_of(*installed: str):
    return lambda name: f"/usr/bin/{name}" if name in installed else None


def test_the_ssh_command_pins_the_key_port_user_and_identity(tmp_path: Path) -> None:
    spec = ServerSpec(name="app1", host="203.0.113.10", port=2202, user="deploy", identity="~/.ssh/id_panel")
    argv = ssh_argv(spec, tmp_path / "known_hosts.app1", alias="panel-app1")
    assert argv[0] == "ssh"
    options = [argv[i + 1] for i, a in enumerate(argv) if a == "-o"]
    assert f"UserKnownHostsFile={tmp_path / 'known_hosts.app1'}" in options
    assert "StrictHostKeyChecking=yes" in options
    assert "HostKeyAlias=panel-app1" in options
    assert "GlobalKnownHostsFile=/dev/null" in options
    assert argv[argv.index("-i") + 1] == str(Path("~/.ssh/id_panel").expanduser())
    assert argv[argv.index("-p") + 1] == "2202"
    assert argv[-2:] == ["--", "deploy@203.0.113.10"]
    no_identity = ssh_argv(ServerSpec(name="b", host="b.example.com"), "/k")
    assert "-i" not in no_identity and no_identity[-1] == "root@b.example.com"
    assert not any(a.startswith("HostKeyAlias") for a in no_identity)


def test_the_terminal_is_the_users_own_first_then_debians_list() -> None:
    assert find_terminal({"TERMINAL": "alacritty --class panel"}, which_of("alacritty", "xterm")) == \
        ["/usr/bin/alacritty", "--class", "panel"]
    # $TERMINAL not installed: the usual ones, in order
    assert find_terminal({"TERMINAL": "nope"}, which_of("konsole", "xterm")) == ["/usr/bin/konsole"]
    assert find_terminal({}, which_of(*TERMINALS)) == ["/usr/bin/x-terminal-emulator"]
    assert find_terminal({}, which_of("gnome-terminal", "xterm")) == ["/usr/bin/gnome-terminal"]
    assert find_terminal({}, which_of()) is None


def test_each_terminal_gets_the_command_the_way_it_takes_one() -> None:
    command = ["ssh", "-p", "22", "--", "root@app1"]
    assert terminal_argv(["/usr/bin/gnome-terminal"], command) == ["/usr/bin/gnome-terminal", "--", *command]
    assert terminal_argv(["/usr/bin/xterm"], command) == ["/usr/bin/xterm", "-e", *command]
    assert terminal_argv(["/usr/bin/konsole"], command) == ["/usr/bin/konsole", "-e", *command]
    assert terminal_argv(["/usr/bin/x-terminal-emulator"], command) == ["/usr/bin/x-terminal-emulator", "-e", *command]
    assert terminal_argv(["/usr/bin/kitty"], command) == ["/usr/bin/kitty", *command]
    assert terminal_argv(["/usr/bin/xfce4-terminal"], command) == ["/usr/bin/xfce4-terminal", "-x", *command]
    assert terminal_argv(["/usr/bin/tilix"], command) == ["/usr/bin/tilix", "-e", "ssh -p 22 -- root@app1"]


def test_prepare_writes_the_pinned_key_and_builds_the_whole_command(triage_sshd: SshdServer, triage_key: Path,
                                                                    tmp_path: Path) -> None:
    spec = spec_of(triage_sshd, triage_key)
    endpoint = system_endpoint(spec, known_hosts=None)
    launch = prepare_terminal(spec, endpoint, tmp_path / "terminal", environ={"TERMINAL": "xterm"},
                              which=which_of("xterm"))
    assert launch.program == "/usr/bin/xterm" and launch.arguments[0] == "-e"
    ssh = list(launch.arguments[1:])
    assert ssh == ssh_argv(spec, launch.known_hosts, alias=host_key_alias("app1"))
    written = launch.known_hosts.read_text().split()
    assert written[0] == "panel-app1" and PublicKey.parse(" ".join(written[1:])) == PublicKey.parse(
        triage_sshd.host_key_line)
    assert launch.known_hosts.stat().st_mode & 0o077 == 0

    # The same command line logs in to the real server (run here without a terminal, in batch mode).
    probe = [*ssh[:-2], "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", *ssh[-2:], "echo", "terminal-ok"]
    result = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0 and result.stdout.strip() == "terminal-ok", result.stderr
    assert f"{USER}@{triage_sshd.host}" == ssh[-1]


def test_an_unknown_or_changed_key_is_never_accepted(triage_sshd: SshdServer, triage_key: Path,
                                                     tmp_path: Path) -> None:
    unpinned = ServerSpec(name="app1", host=triage_sshd.host, port=triage_sshd.port, user=USER,
                          identity=str(triage_key))
    with pytest.raises(PanelError, match="does not trust a host key"):
        prepare_terminal(unpinned, system_endpoint(unpinned, known_hosts=tmp_path / "none"), tmp_path / "t",
                         which=which_of("xterm"))
    other = "ssh-ed25519 " + "AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"
    wrong = ServerSpec(name="app1", host=triage_sshd.host, port=triage_sshd.port, user=USER,
                       identity=str(triage_key), host_key=other)
    launch = prepare_terminal(wrong, system_endpoint(wrong, known_hosts=None), tmp_path / "t",
                              which=which_of("xterm"))
    ssh = list(launch.arguments[1:])
    probe = [*ssh[:-2], "-o", "BatchMode=yes", *ssh[-2:], "true"]
    result = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 255 and "REMOTE HOST IDENTIFICATION HAS CHANGED" in result.stderr


def test_without_a_terminal_the_operator_is_told_which_to_install(triage_sshd: SshdServer, triage_key: Path,
                                                                  tmp_path: Path) -> None:
    spec = spec_of(triage_sshd, triage_key)
    with pytest.raises(PanelError, match="No terminal emulator"):
        prepare_terminal(spec, system_endpoint(spec, known_hosts=None), tmp_path / "t", environ={}, which=which_of())
