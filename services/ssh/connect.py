"""Opening one verified, authenticated paramiko transport. Nothing is sent before the key is checked."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import paramiko

from services.cancel import NEVER_CANCELLED, CancelToken
from services.errors import AuthError, Cancelled, ConnectError, HostKeyError, OperationTimeout
from services.hostkeys import PublicKey, preferred_key_types, verify_host_key
from services.ssh.endpoint import SshEndpoint

DEFAULT_IDENTITIES = ("~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa")


def open_socket(endpoint: SshEndpoint, cancel: CancelToken) -> socket.socket:
    cancel.raise_if_cancelled(f"Connecting to {endpoint.name}")
    try:
        sock = socket.create_connection((endpoint.host, endpoint.port), timeout=endpoint.connect_timeout)
    except TimeoutError:
        raise OperationTimeout(
            f"{endpoint.name} ({endpoint.host}:{endpoint.port}) did not answer within "
            f"{endpoint.connect_timeout:g} s."
        ) from None
    except ConnectionRefusedError:
        raise ConnectError(f"{endpoint.name} refused the connection on port {endpoint.port}.") from None
    except OSError as exc:
        raise ConnectError(f"{endpoint.name} ({endpoint.host}:{endpoint.port}) cannot be reached: "
                           f"{exc.strerror or exc}.") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def start_transport(
    endpoint: SshEndpoint, sock: socket.socket | paramiko.Channel, cancel: CancelToken = NEVER_CANCELLED
) -> tuple[paramiko.Transport, PublicKey]:
    """Key exchange and host key check, without authenticating. Used by probes too."""
    transport = paramiko.Transport(sock)
    unregister = cancel.on_cancel(transport.close)
    try:
        transport.banner_timeout = endpoint.banner_timeout
        transport.handshake_timeout = endpoint.banner_timeout
        options = transport.get_security_options()
        wanted = preferred_key_types(endpoint.trust, endpoint.host, endpoint.port)
        options.key_types = tuple(wanted + [t for t in options.key_types if t not in wanted])
        try:
            transport.start_client(timeout=endpoint.connect_timeout + endpoint.banner_timeout)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            cancel.raise_if_cancelled(f"Connecting to {endpoint.name}")
            raise _handshake_error(endpoint, exc) from None
        remote = transport.get_remote_server_key()
        offered = PublicKey(remote.get_name(), remote.asbytes())
        verify_host_key(endpoint.trust, endpoint.host, endpoint.port, offered)
        return transport, offered
    except BaseException:
        transport.close()
        raise
    finally:
        unregister()


def offered_host_key(endpoint: SshEndpoint, cancel: CancelToken = NEVER_CANCELLED) -> PublicKey:
    """The key a host offers, read by key exchange alone: no login, nothing sent, nothing trusted."""
    sock = open_socket(endpoint, cancel)
    transport = paramiko.Transport(sock)
    unregister = cancel.on_cancel(transport.close)
    try:
        transport.banner_timeout = endpoint.banner_timeout
        options = transport.get_security_options()
        wanted = [t for t in ("ssh-ed25519",) if t in options.key_types]
        options.key_types = tuple(wanted + [t for t in options.key_types if t not in wanted])
        try:
            transport.start_client(timeout=endpoint.connect_timeout + endpoint.banner_timeout)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise _handshake_error(endpoint, exc) from None
        remote = transport.get_remote_server_key()
        return PublicKey(remote.get_name(), remote.asbytes())
    finally:
        unregister()
        transport.close()


def _handshake_error(endpoint: SshEndpoint, exc: BaseException) -> Exception:
    text = str(exc)
    if "banner" in text.lower() or isinstance(exc, TimeoutError | socket.timeout):
        return OperationTimeout(f"{endpoint.name} accepted the connection but sent no SSH banner within "
                                f"{endpoint.banner_timeout:g} s.")
    return ConnectError(f"The SSH handshake with {endpoint.name} failed: {text or exc.__class__.__name__}.")


def _candidate_keys(endpoint: SshEndpoint) -> list[tuple[str, paramiko.PKey]]:
    keys: list[tuple[str, paramiko.PKey]] = []
    files = list(endpoint.identities) or [str(Path(p).expanduser()) for p in DEFAULT_IDENTITIES]
    for path in files:
        if not Path(path).is_file():
            continue
        try:
            keys.append((path, paramiko.PKey.from_path(path)))
        except paramiko.PasswordRequiredException:
            continue  # an encrypted key belongs in ssh-agent, which is tried next
        except (paramiko.SSHException, OSError, ValueError):
            continue
    if endpoint.use_agent:
        with contextlib.suppress(paramiko.SSHException):
            keys += [("ssh-agent", key) for key in paramiko.Agent().get_keys()]
    return keys


def authenticate(transport: paramiko.Transport, endpoint: SshEndpoint) -> None:
    transport.auth_timeout = endpoint.auth_timeout
    tried = []
    for source, key in _candidate_keys(endpoint):
        tried.append(source)
        try:
            transport.auth_publickey(endpoint.user, key)
        except paramiko.BadAuthenticationType:
            raise AuthError(f"{endpoint.name} does not accept public keys for {endpoint.user}.") from None
        except paramiko.AuthenticationException:
            continue
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise ConnectError(f"{endpoint.name} closed the connection during login: {exc}.") from None
        if transport.is_authenticated():
            return
    offered = ", ".join(tried) or "no key (no identity file and no ssh-agent)"
    raise AuthError(f"{endpoint.name} refused the login as {endpoint.user}; offered: {offered}.")


def connect(
    endpoint: SshEndpoint,
    cancel: CancelToken = NEVER_CANCELLED,
    *,
    via: paramiko.Transport | None = None,
) -> paramiko.Transport:
    """A verified and authenticated transport. ``via`` is an open transport to the jump host."""
    if via is not None:
        try:
            sock: socket.socket | paramiko.Channel = via.open_channel(
                "direct-tcpip", (endpoint.host, endpoint.port), ("127.0.0.1", 0), timeout=endpoint.connect_timeout
            )
        except (paramiko.SSHException, OSError) as exc:
            raise ConnectError(f"The jump host could not reach {endpoint.name}: {exc}.") from None
    else:
        sock = open_socket(endpoint, cancel)
    try:
        transport, _ = start_transport(endpoint, sock, cancel)
    except (HostKeyError, ConnectError, OperationTimeout, Cancelled):
        sock.close()
        raise
    try:
        authenticate(transport, endpoint)
    except BaseException:
        transport.close()
        raise
    if endpoint.keepalive_seconds:
        transport.set_keepalive(endpoint.keepalive_seconds)
    return transport
