"""The lab's real sshd, its rogue twin and the stalling server."""

from __future__ import annotations

import base64
import os
import pwd
import socket
import threading
import time
from pathlib import Path

import paramiko
import pytest

from panel.lab import procs
from panel.lab.sshd import SshdServer, public_key_line, start_rogue_sshd, start_sshd, start_stall_server

pytestmark = pytest.mark.lab
USER = pwd.getpwuid(os.geteuid()).pw_name


def pinned_client(server: SshdServer, key: Path) -> paramiko.SSHClient:
    """A paramiko client that trusts exactly the server's key (RejectPolicy for anything else)."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    kind, blob = server.host_key_line.split()
    client.get_host_keys().add(
        f"[127.0.0.1]:{server.port}", kind, paramiko.PKey.from_type_string(kind, base64.b64decode(blob))
    )
    client.connect(
        "127.0.0.1", port=server.port, username=USER, key_filename=str(key), look_for_keys=False, allow_agent=False
    )
    return client


def test_sshd_runs_commands_for_the_lab_key_with_its_pinned_host_key(sshd_server: SshdServer, ssh_run) -> None:
    banner = procs.read_banner("127.0.0.1", sshd_server.port)
    assert banner is not None and banner.startswith(b"SSH-2.0-OpenSSH")
    assert sshd_server.host_key_line.startswith("ssh-ed25519 AAAA")
    assert len(sshd_server.host_key_line.split()) == 2  # no comment: it is a pin

    result = ssh_run(sshd_server.port, sshd_server.host_key_line, "echo", "hello from the lab")

    assert result.returncode == 0, result.stderr
    assert result.stdout == b"hello from the lab\n"


def test_sshd_keeps_everything_in_its_folder(sshd_server: SshdServer, lab_client_key: Path) -> None:
    config = sshd_server.config_path.read_text()
    folder = str(sshd_server.folder)
    assert f"AuthorizedKeysFile {folder}/authorized_keys" in config
    assert f"PidFile {folder}/sshd.pid" in config
    for setting in ("StrictModes no", "PasswordAuthentication no", "UsePAM no", "AllowTcpForwarding yes",
                    "Subsystem sftp internal-sftp", "LoginGraceTime 20"):
        assert setting in config
    assert int((sshd_server.folder / "sshd.pid").read_text()) == sshd_server.pid
    # The real user's ~/.ssh never learns about the lab key.
    real_keys = Path.home() / ".ssh" / "authorized_keys"
    assert not real_keys.exists() or public_key_line(lab_client_key) not in real_keys.read_text()


def test_sshd_forwards_tcp_and_serves_sftp(sshd_server: SshdServer, lab_client_key: Path) -> None:
    echo = socket.create_server(("127.0.0.1", 0))
    served = threading.Event()

    def serve_once() -> None:
        conn, _ = echo.accept()
        with conn:
            conn.sendall(conn.recv(100).upper())
        served.set()

    threading.Thread(target=serve_once, daemon=True).start()
    client = pinned_client(sshd_server, lab_client_key)
    try:
        transport = client.get_transport()
        assert transport is not None
        channel = transport.open_channel("direct-tcpip", ("127.0.0.1", echo.getsockname()[1]), ("127.0.0.1", 0))
        channel.sendall(b"tunnelled")
        assert channel.recv(100) == b"TUNNELLED"
        channel.close()
        assert served.wait(10)

        sftp = client.open_sftp()
        assert "sshd_config" in sftp.listdir(str(sshd_server.folder))
        sftp.close()
    finally:
        client.close()
        echo.close()


def test_a_rogue_sshd_on_the_same_port_is_refused(
    sshd_server: SshdServer, tmp_path: Path, lab_client_key: Path, ssh_run
) -> None:
    original_key, port = sshd_server.host_key_line, sshd_server.port
    sshd_server.stop()
    rogue = start_rogue_sshd(tmp_path / "rogue", port=port, client_key=lab_client_key)
    try:
        assert rogue.port == port
        assert rogue.host_key_line != original_key

        result = ssh_run(port, original_key, "echo", "should not run")

        assert result.returncode == 255
        assert b"REMOTE HOST IDENTIFICATION HAS CHANGED" in result.stderr
        assert b"should not run" not in result.stdout
    finally:
        rogue.stop()


def test_sshd_drops_a_client_that_does_not_log_in_within_the_grace_time(
    tmp_path: Path, lab_client_key: Path
) -> None:
    server = start_sshd(tmp_path / "grace", client_key=lab_client_key, login_grace_time=1)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
            assert conn.recv(100).startswith(b"SSH-2.0-")
            conn.sendall(b"SSH-2.0-SlowClient\r\n")
            started = time.monotonic()
            # Say nothing more; sshd must close the connection after about a second.
            while conn.recv(4096):
                pass
            assert time.monotonic() - started < 8
    finally:
        server.stop()


def test_stopping_sshd_leaves_no_process_and_frees_the_port(tmp_path: Path, lab_client_key: Path) -> None:
    server = start_sshd(tmp_path / "short", client_key=lab_client_key)
    server.stop()
    assert not procs.is_alive(server.record)
    assert procs.port_is_free(server.port)
    assert procs.processes_mentioning(str(tmp_path / "short")) == []


def test_the_stall_server_sends_its_banner_only_after_the_delay() -> None:
    stall = start_stall_server(0.6)
    try:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", stall.port), timeout=5) as conn:
            conn.settimeout(0.2)
            with pytest.raises(TimeoutError):
                conn.recv(100)  # nothing yet: the client must not block the window meanwhile
            conn.settimeout(5)
            assert conn.recv(100).startswith(b"SSH-2.0-")
        assert time.monotonic() - started >= 0.6
    finally:
        stall.stop()


def test_a_silent_stall_server_never_answers_and_stops_at_once() -> None:
    stall = start_stall_server(None)
    conn = socket.create_connection(("127.0.0.1", stall.port), timeout=5)
    try:
        conn.settimeout(0.3)
        with pytest.raises(TimeoutError):
            conn.recv(100)
        started = time.monotonic()
        stall.stop()
        assert time.monotonic() - started < 2
        conn.settimeout(2)
        assert conn.recv(100) == b""  # closed by stop()
    finally:
        conn.close()
