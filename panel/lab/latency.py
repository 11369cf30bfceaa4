"""A TCP proxy that delays each direction by a fixed time: the lab's fleet "across an ocean".

Every chunk read from one side is released to the other ``delay_ms`` after it arrived, in order
(one queue per direction, each entry stamped with its release time), so the round trip grows by
twice the delay while throughput is unchanged, as on a long but fat link. Half-closes (EOF) are
delayed and passed on too, so protocols that shut down one direction keep working.

Run as a process (so it outlives ``lab up``)::

    python -m panel.lab.latency --delay-ms 60 --pair LISTEN_PORT:TARGET_PORT [--pair ...]
"""

from __future__ import annotations

import argparse
import contextlib
import queue
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from panel.lab import procs

HOST = "127.0.0.1"
CHUNK = 65536
_EOF = b""


@dataclass
class LatencyProxy:
    """Listens on ``host:port`` and forwards each connection to ``target_host:target_port``."""

    port: int
    target_port: int
    delay_ms: float
    host: str = HOST
    target_host: str = HOST
    _listener: socket.socket | None = None
    _stopped: threading.Event = field(default_factory=threading.Event)
    _sockets: set[socket.socket] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _acceptor: threading.Thread | None = None

    def start(self) -> LatencyProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"latency-{self.port}", daemon=True)
        self._acceptor.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        with self._lock:
            open_sockets = list(self._sockets)
        for sock in open_sockets:
            _close(sock)
        if self._acceptor is not None:
            self._acceptor.join(timeout=2)

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection((self.target_host, self.target_port), timeout=10)
        except OSError:
            _close(client)  # the server behind is down: the client sees the connection close
            return
        upstream.settimeout(None)
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            if self._stopped.is_set():
                _close(client)
                _close(upstream)
                return
            self._sockets.update((client, upstream))
        done = threading.Barrier(2, action=lambda: self._forget(client, upstream))
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(source, sink, done), daemon=True).start()

    def _forget(self, *sockets: socket.socket) -> None:
        with self._lock:
            for sock in sockets:
                self._sockets.discard(sock)
                _close(sock)

    def _pipe(self, source: socket.socket, sink: socket.socket, done: threading.Barrier) -> None:
        """Read ``source`` at once; a writer thread releases each chunk to ``sink`` when it is due."""
        delay = self.delay_ms / 1000.0
        pending: queue.Queue[tuple[float, bytes]] = queue.Queue()
        writer = threading.Thread(target=self._release, args=(pending, sink, source), daemon=True)
        writer.start()
        while True:
            try:
                data = source.recv(CHUNK)
            except OSError:
                data = _EOF
            pending.put((time.monotonic() + delay, data))
            if not data:
                break
        writer.join()
        with contextlib.suppress(threading.BrokenBarrierError):
            done.wait()

    def _release(self, pending: queue.Queue[tuple[float, bytes]], sink: socket.socket, source: socket.socket) -> None:
        while True:
            due, data = pending.get()
            wait = due - time.monotonic()
            # Waiting on the stop event (not a sleep) lets stop() end every connection at once.
            if wait > 0 and self._stopped.wait(wait):
                return
            try:
                if data:
                    sink.sendall(data)
                else:
                    sink.shutdown(socket.SHUT_WR)
                    return
            except OSError:
                # The far side is gone: stop reading from the near side too.
                with contextlib.suppress(OSError):
                    source.shutdown(socket.SHUT_RDWR)
                return


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def start_proxy(target_port: int, delay_ms: float, *, port: int = 0, host: str = HOST) -> LatencyProxy:
    """A proxy in a thread of this process (for tests). ``port`` 0 picks a free one."""
    return LatencyProxy(port=port, target_port=target_port, delay_ms=delay_ms, host=host).start()


def start_proxy_process(pairs: Sequence[tuple[int, int]], delay_ms: float, *, log: Path) -> procs.ProcessRecord:
    """One background process serving every ``(listen_port, target_port)`` pair; waits until they listen."""
    argv = [sys.executable, "-m", "panel.lab.latency", "--delay-ms", str(delay_ms)]
    for listen, target in pairs:
        argv += ["--pair", f"{listen}:{target}"]
    repository = Path(__file__).resolve().parents[2]
    record = procs.start_detached(argv, what="latency proxies", log=log, cwd=repository)
    for listen, _ in pairs:
        _wait_listening(listen, record)
    return record


def _wait_listening(port: int, record: procs.ProcessRecord) -> None:
    """Wait until ``port`` is taken. Binding (not connecting) tells, so no connection reaches the server."""

    def taken() -> bool:
        if not procs.is_alive(record):
            raise procs.LabError(f"{record.what} exited before listening on port {port}.")
        return not procs.port_is_free(port)

    if not procs.wait_until(taken, 10.0):
        raise procs.LabError(f"{record.what} did not listen on port {port} within 10 s.")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m panel.lab.latency", description=__doc__.split("\n")[0])
    parser.add_argument("--delay-ms", type=float, required=True, help="delay added to each direction")
    parser.add_argument("--pair", action="append", required=True, metavar="LISTEN:TARGET")
    args = parser.parse_args(argv)
    proxies = []
    for pair in args.pair:
        listen, target = (int(part) for part in pair.split(":"))
        proxies.append(start_proxy(target, args.delay_ms, port=listen))
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    stopped.wait()
    for proxy in proxies:
        proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
