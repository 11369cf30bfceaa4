"""Timeouts, cancellation and tunnels of the SSH layer, against real servers."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from panel.lab.sshd import SshdServer, start_stall_server
from services.cancel import CancelToken
from services.errors import Cancelled, OperationTimeout
from services.inventory import ServerSpec
from services.probe import ServerState, probe_server
from services.ssh import SshPool, system_endpoint
from tests.services.ssh.ssh_helpers import spec_for

pytestmark = pytest.mark.usefixtures("isolated_home")


def test_a_server_that_never_sends_its_banner_times_out(tmp_path: Path) -> None:
    stall = start_stall_server(None)
    try:
        spec = ServerSpec(name="slow", host="127.0.0.1", port=stall.port)
        endpoint = system_endpoint(spec, known_hosts=tmp_path / "kh")
        endpoint = replace(endpoint, banner_timeout=0.5, connect_timeout=0.5)
        started = time.monotonic()
        status = probe_server(SshPool(), endpoint)
        assert time.monotonic() - started < 5
        assert status.state is ServerState.DOWN
        assert "banner" in status.detail
    finally:
        stall.stop()


def test_a_long_command_times_out_and_the_next_one_works(sshd: SshdServer, client_key: Path, tmp_path: Path) -> None:
    endpoint = system_endpoint(spec_for(sshd, client_key, pin=sshd.host_key_line), known_hosts=tmp_path / "kh")
    pool = SshPool()
    try:
        with pytest.raises(OperationTimeout):
            pool.run(endpoint, "sleep 30", timeout=0.5)
        assert pool.run(endpoint, "echo still here").text() == "still here\n"
    finally:
        pool.close_all()


def test_cancel_closes_the_channel_promptly(sshd: SshdServer, client_key: Path, tmp_path: Path) -> None:
    endpoint = system_endpoint(spec_for(sshd, client_key, pin=sshd.host_key_line), known_hosts=tmp_path / "kh")
    pool = SshPool()
    token = CancelToken()
    try:
        pool.run(endpoint, "true")
        timer = threading.Timer(0.3, token.cancel)
        timer.start()
        begun = time.monotonic()
        with pytest.raises(Cancelled):
            pool.run(endpoint, "sleep 30", timeout=60, cancel=token)
        assert time.monotonic() - begun < 3
    finally:
        pool.close_all()


def test_stdin_reaches_the_command_byte_for_byte(sshd: SshdServer, client_key: Path, tmp_path: Path) -> None:
    endpoint = system_endpoint(spec_for(sshd, client_key, pin=sshd.host_key_line), known_hosts=tmp_path / "kh")
    pool = SshPool()
    payload = b"no newline at the end \x00\xff"
    try:
        assert pool.run(endpoint, "od -An -tx1 -v", stdin=payload).text().split() == [f"{b:02x}" for b in payload]
    finally:
        pool.close_all()


def test_output_sent_after_the_exit_status_is_read_to_the_end(sshd: SshdServer, client_key: Path,
                                                               tmp_path: Path) -> None:
    """OpenSSH sends the exit status as soon as the command exits, and the rest of its output after
    it, as the window allows. A command that prints a lot and exits at once must still arrive whole
    (a 73 kB log tail once arrived cut at 64 kB)."""
    endpoint = system_endpoint(spec_for(sshd, client_key, pin=sshd.host_key_line), known_hosts=tmp_path / "kh")
    big = tmp_path / "big.log"
    big.write_bytes(b"".join(b"%07d a log line of some length to fill the window\n" % n for n in range(20_000)))
    pool = SshPool()
    try:
        for _ in range(20):
            assert pool.run(endpoint, f"cat {big}").stdout == big.read_bytes()
    finally:
        pool.close_all()


def test_a_tunnel_forwards_to_a_port_on_the_server(sshd: SshdServer, client_key: Path, tmp_path: Path) -> None:
    echo = socket.socket()
    echo.bind(("127.0.0.1", 0))
    echo.listen(1)

    def serve() -> None:
        connection, _ = echo.accept()
        with connection:
            connection.sendall(connection.recv(100).upper())

    threading.Thread(target=serve, daemon=True).start()
    endpoint = system_endpoint(spec_for(sshd, client_key, pin=sshd.host_key_line), known_hosts=tmp_path / "kh")
    pool = SshPool()
    try:
        with (
            pool.open_tunnel(endpoint, "127.0.0.1", echo.getsockname()[1]) as tunnel,
            socket.create_connection(("127.0.0.1", tunnel.local_port), timeout=5) as client,
        ):
            client.sendall(b"through the tunnel")
            assert client.recv(100) == b"THROUGH THE TUNNEL"
    finally:
        pool.close_all()
        echo.close()
