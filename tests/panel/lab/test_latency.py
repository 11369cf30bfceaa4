"""The latency proxy: each direction delayed, order and half-closes kept."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from panel.lab import procs
from panel.lab.latency import start_proxy, start_proxy_process


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A TCP echo server; it closes its side once the client has closed (half-closed) its own."""
    listener = socket.create_server(("127.0.0.1", 0))
    stopped = threading.Event()

    def echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def serve() -> None:
        while not stopped.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stopped.set()
    listener.shutdown(socket.SHUT_RDWR)  # wakes the accept(); a bare close() would not
    listener.close()
    thread.join(timeout=5)


def round_trip(port: int, payload: bytes = b"ping") -> float:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        started = time.monotonic()
        conn.sendall(payload)
        received = b""
        while len(received) < len(payload):
            received += conn.recv(65536)
        elapsed = time.monotonic() - started
        assert received == payload
        return elapsed


def test_the_proxy_adds_the_delay_in_each_direction(echo_port: int) -> None:
    direct = round_trip(echo_port)
    proxy = start_proxy(echo_port, delay_ms=60)
    try:
        delayed = min(round_trip(proxy.port) for _ in range(3))
    finally:
        proxy.stop()
    assert delayed >= 0.120  # 60 ms out, 60 ms back
    assert delayed < 0.120 + direct + 0.5


def test_the_proxy_keeps_the_order_and_passes_half_closes_on(echo_port: int) -> None:
    proxy = start_proxy(echo_port, delay_ms=20)
    chunks = [f"chunk {index:04d};".encode() * (index % 7 + 1) for index in range(300)]
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as conn:
            for chunk in chunks:
                conn.sendall(chunk)
            conn.shutdown(socket.SHUT_WR)  # EOF travels through the proxy, then the echo server closes
            received = b""
            while data := conn.recv(65536):
                received += data
    finally:
        proxy.stop()
    assert received == b"".join(chunks)


def test_the_proxy_closes_a_client_when_the_server_behind_is_down() -> None:
    closed_port = procs.free_ports(1)[0]
    proxy = start_proxy(closed_port, delay_ms=10)
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as conn:
            assert conn.recv(100) == b""
    finally:
        proxy.stop()


def test_stopping_the_proxy_ends_its_open_connections(echo_port: int) -> None:
    proxy = start_proxy(echo_port, delay_ms=10)
    conn = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    try:
        conn.sendall(b"x")
        assert conn.recv(10) == b"x"
        proxy.stop()
        assert conn.recv(10) == b""
        assert procs.port_is_free(proxy.port)
    finally:
        conn.close()


def test_the_proxy_process_serves_several_pairs_and_stops_by_pid(echo_port: int, tmp_path: Path) -> None:
    first, second = procs.free_ports(2)
    record = start_proxy_process([(first, echo_port), (second, echo_port)], 40, log=tmp_path / "latency.log")
    try:
        assert round_trip(first) >= 0.080
        assert round_trip(second) >= 0.080
    finally:
        procs.stop(record)
    assert not procs.is_alive(record)
    assert procs.port_is_free(first) and procs.port_is_free(second)
