"""One kept-alive connection per endpoint, shared by every feature and reopened when it drops."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable

import paramiko

from services.cancel import NEVER_CANCELLED, CancelToken
from services.errors import Cancelled, ConnectError, OperationTimeout
from services.runner import CommandResult
from services.ssh.connect import connect
from services.ssh.endpoint import SshEndpoint, quote_argv

_READ_SIZE = 65536


class SshPool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._transports: dict[tuple[str, str, int, str], paramiko.Transport] = {}
        self._connect_locks: dict[tuple[str, str, int, str], threading.Lock] = {}

    def transport(self, endpoint: SshEndpoint, cancel: CancelToken = NEVER_CANCELLED) -> paramiko.Transport:
        """The pooled transport, opened (or reopened after a drop) as needed. One connect at a time per key."""
        key = endpoint.pool_key
        with self._lock:
            connect_lock = self._connect_locks.setdefault(key, threading.Lock())
        with connect_lock:
            with self._lock:
                existing = self._transports.get(key)
            if existing is not None and existing.is_active() and existing.is_authenticated():
                return existing
            if existing is not None:
                existing.close()
            via = self.transport(endpoint.jump, cancel) if endpoint.jump is not None else None
            transport = connect(endpoint, cancel, via=via)
            with self._lock:
                self._transports[key] = transport
            return transport

    def is_connected(self, endpoint: SshEndpoint) -> bool:
        with self._lock:
            transport = self._transports.get(endpoint.pool_key)
        return transport is not None and transport.is_active()

    def drop(self, endpoint: SshEndpoint) -> None:
        with self._lock:
            transport = self._transports.pop(endpoint.pool_key, None)
        if transport is not None:
            transport.close()

    def close_all(self) -> None:
        with self._lock:
            transports, self._transports = list(self._transports.values()), {}
        for transport in transports:
            transport.close()

    def _open_session(self, endpoint: SshEndpoint, cancel: CancelToken, timeout: float) -> paramiko.Channel:
        """A new session channel. If the pooled connection died, reconnect once: nothing was sent yet."""
        for attempt in (1, 2):
            transport = self.transport(endpoint, cancel)
            try:
                return transport.open_session(timeout=timeout)
            except (paramiko.SSHException, EOFError, OSError):
                self.drop(endpoint)
                if attempt == 2:
                    raise ConnectError(
                        f"The connection to {endpoint.name} dropped and could not be reopened."
                    ) from None
        raise AssertionError("unreachable")

    def run(
        self,
        endpoint: SshEndpoint,
        command: str,
        *,
        stdin: bytes | None = None,
        timeout: float = 30.0,
        cancel: CancelToken = NEVER_CANCELLED,
        on_output: Callable[[bytes], None] | None = None,
    ) -> CommandResult:
        """Run ``command`` (already quoted) and collect its output. Cancel closes the channel."""
        deadline = time.monotonic() + timeout
        channel = self._open_session(endpoint, cancel, timeout=min(timeout, endpoint.connect_timeout))
        unregister = cancel.on_cancel(channel.close)
        try:
            _exec_pipelined(channel, command)
            if stdin:
                channel.sendall(stdin)
            channel.shutdown_write()
            return _collect(channel, endpoint, deadline, timeout, cancel, on_output)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            cancel.raise_if_cancelled(f"The command on {endpoint.name}")
            self.drop(endpoint)
            raise ConnectError(f"The connection to {endpoint.name} was lost during a command: {exc}.") from None
        finally:
            unregister()
            with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                channel.close()  # the SSH connection may already be gone

    def sftp(self, endpoint: SshEndpoint, cancel: CancelToken = NEVER_CANCELLED) -> paramiko.SFTPClient:
        transport = self.transport(endpoint, cancel)
        client = paramiko.SFTPClient.from_transport(transport)
        if client is None:
            raise ConnectError(f"{endpoint.name} refused the SFTP subsystem.")
        return client

    def open_tunnel(self, endpoint: SshEndpoint, remote_host: str, remote_port: int) -> Tunnel:
        return Tunnel(self, endpoint, remote_host, remote_port)


def _exec_pipelined(channel: paramiko.Channel, command: str) -> None:
    """Like ``channel.exec_command``, but without waiting for the server's reply to the request.

    Across an ocean that wait is a whole round trip per command. The output (or the channel's
    close, if the server refused) follows anyway, in order, and ``_collect`` reads it.
    """
    try:
        message = paramiko.Message()
        message.add_byte(paramiko.common.cMSG_CHANNEL_REQUEST)
        message.add_int(channel.remote_chanid)
        message.add_string("exec")
        message.add_boolean(False)  # want_reply: no
        message.add_string(command)
        channel.transport._send_user_message(message)  # type: ignore[union-attr]
    except AttributeError:  # a paramiko without these internals: take the extra round trip
        channel.exec_command(command)


_AFTER_EXIT_QUIET = 2.0  # seconds of silence after the exit status with no end of file


def _collect(
    channel: paramiko.Channel,
    endpoint: SshEndpoint,
    deadline: float,
    timeout: float,
    cancel: CancelToken,
    on_output: Callable[[bytes], None] | None,
) -> CommandResult:
    stdout = bytearray()
    stderr = bytearray()
    quiet_since = time.monotonic()  # the last output, for a command whose stdout stays open after it exits
    while True:
        if cancel.cancelled:
            raise Cancelled(f"The command on {endpoint.name}")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise OperationTimeout(f"A command on {endpoint.name} did not finish within {timeout:g} s.")
        # The channel's fileno becomes readable when stdout or stderr has data, or on close.
        select.select([channel], [], [], min(remaining, 0.5))
        while channel.recv_ready():
            chunk = channel.recv(_READ_SIZE)
            stdout += chunk
            quiet_since = time.monotonic()
            if on_output is not None:
                on_output(chunk)
        while channel.recv_stderr_ready():
            stderr += channel.recv_stderr(_READ_SIZE)
            quiet_since = time.monotonic()
        if cancel.cancelled:  # closing the channel also makes it look finished
            raise Cancelled(f"The command on {endpoint.name}")
        # OpenSSH sends the exit status when the command exits, and the rest of its output after it,
        # as the window allows: the output is whole at end of file (or close), not at the status.
        # A background process holding stdout open would keep that end away; its silence ends it.
        ended = channel.eof_received or channel.closed or time.monotonic() - quiet_since > _AFTER_EXIT_QUIET
        if channel.exit_status_ready() and ended and not channel.recv_ready() and not channel.recv_stderr_ready():
            return CommandResult(channel.recv_exit_status(), bytes(stdout), bytes(stderr))
        if channel.closed and not channel.recv_ready():
            raise ConnectError(f"{endpoint.name} closed the channel before the command finished.")


class SshRunner:
    """A CommandRunner on one server, over the pool."""

    def __init__(self, pool: SshPool, endpoint: SshEndpoint) -> None:
        self.pool = pool
        self.endpoint = endpoint

    @property
    def where(self) -> str:
        return self.endpoint.name

    def run(
        self,
        argv: list[str],
        *,
        stdin: bytes | None = None,
        timeout: float = 30.0,
        cancel: CancelToken = NEVER_CANCELLED,
    ) -> CommandResult:
        return self.pool.run(self.endpoint, quote_argv(argv), stdin=stdin, timeout=timeout, cancel=cancel)

    def run_script(
        self,
        script: str,
        *,
        stdin: bytes | None = None,
        timeout: float = 30.0,
        cancel: CancelToken = NEVER_CANCELLED,
    ) -> CommandResult:
        return self.pool.run(self.endpoint, quote_argv(["sh", "-c", script]), stdin=stdin, timeout=timeout,
                             cancel=cancel)


class Tunnel:
    """A local port on 127.0.0.1 that forwards, through the pooled connection, to a port on the server.

    Each accepted connection opens a direct-tcpip channel, so a dropped SSH connection is reopened
    for the next client.
    """

    def __init__(self, pool: SshPool, endpoint: SshEndpoint, remote_host: str, remote_port: int) -> None:
        self._pool = pool
        self._endpoint = endpoint
        self._remote = (remote_host, remote_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.local_port: int = self._listener.getsockname()[1]
        self._closed = threading.Event()
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        # Connect now so that trust and login errors surface to the caller, not in a thread.
        pool.transport(endpoint)
        self._thread = threading.Thread(target=self._accept, name=f"tunnel-{endpoint.name}", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with self._lock:
            self._connections.add(client)
        channel = None
        try:
            for attempt in (1, 2):
                try:
                    transport = self._pool.transport(self._endpoint)
                    channel = transport.open_channel("direct-tcpip", self._remote, client.getpeername(),
                                                     timeout=self._endpoint.connect_timeout)
                    break
                except (paramiko.SSHException, EOFError, OSError):
                    self._pool.drop(self._endpoint)
                    if attempt == 2:
                        return
                except Exception:
                    return
            if channel is None:
                return
            _pump(client, channel, self._closed)
        except (OSError, EOFError, paramiko.SSHException):
            return  # reset by the client, or the SSH connection closed under it: over either way
        finally:
            with self._lock:
                self._connections.discard(client)
            client.close()
            if channel is not None:
                with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                    channel.close()  # the SSH connection may already be gone

    def break_connections(self) -> None:
        """Cut every forwarded connection (the tunnel itself stays). Used to test lost connections."""
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed.set()
        # On Linux, closing a socket that a thread waits on in accept() leaves it listening;
        # shutting it down first wakes that thread, so the port refuses at once.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self.break_connections()

    def __enter__(self) -> Tunnel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pump(client: socket.socket, channel: paramiko.Channel, closed: threading.Event) -> None:
    while not closed.is_set():
        readable: list[object] = select.select([client, channel], [], [], 0.5)[0]  # type: ignore[type-var]
        if client in readable:
            data = client.recv(_READ_SIZE)
            if not data:
                return
            channel.sendall(data)
        if channel in readable:
            data = channel.recv(_READ_SIZE)
            if not data:
                return
            client.sendall(data)
