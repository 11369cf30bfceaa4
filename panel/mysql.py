"""The SaaS's MySQL of each server, reached through an SSH tunnel over the pooled SSH connection.

``[servers.X.mysql]`` names the database, the user and the port as seen from the server (its
``host`` defaults to 127.0.0.1 there); the password is the keyring entry ``X/mysql``. One tunnel
per server is opened on first use and kept for the session (``context.close()`` closes them).

A tunnel forwards each new MySQL connection over a new channel of the pooled SSH connection,
so a dropped connection (of SSH or of MySQL) is reopened for the next query.

>>> endpoint, tunnel = open_mysql(context, "app1", cancel)
>>> services.groups.list_groups(endpoint, context.inventory.groups, search="acme")
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from panel.secrets import mysql_entry
from services.cancel import NEVER_CANCELLED, CancelToken
from services.errors import PanelError, SecretUnavailable
from services.groups import MysqlEndpoint
from services.inventory import Inventory, MysqlSpec
from services.ssh import Tunnel

if TYPE_CHECKING:
    from panel.context import PanelContext

RESOURCE_KEY = "mysql"
DEFAULT_READ_TIMEOUT = 60.0
LONG_READ_TIMEOUT = 600.0  # moves and exports: one statement may carry megabytes across an ocean


class MysqlPasswordMissing(SecretUnavailable):
    """No MySQL password for a server: not in the keyring, and none typed this session.

    ``can_remember`` says whether the keyring works (so a dialog can offer to remember it).
    """

    def __init__(self, server: str, *, can_remember: bool, keyring_message: str = "") -> None:
        entry = mysql_entry(server)
        if can_remember:
            text = (f"The keyring has no MySQL password for {server} (entry {entry!r} of the service 'panel'). "
                    f"Enter it in the window, or set it with: keyring set panel {entry}")
        else:
            text = (f"No MySQL password for {server}: {keyring_message or 'no keyring works on this system.'} "
                    "The panel asks for it each session.")
        super().__init__(text)
        self.server = server
        self.entry = entry
        self.can_remember = can_remember
        self.keyring_message = keyring_message


def mysql_servers(inventory: Inventory) -> list[str]:
    """The servers that have a ``[servers.X.mysql]`` section, in config order."""
    return [name for name, spec in inventory.servers.items() if spec.mysql is not None]


class MysqlAccess:
    """The tunnels and endpoints of one context's servers. Thread-safe; no I/O until asked."""

    def __init__(self, context: PanelContext) -> None:
        self._context = context
        self._lock = threading.Lock()
        self._server_locks: dict[str, threading.Lock] = {}
        self._tunnels: dict[str, tuple[tuple[object, ...], Tunnel]] = {}
        self._typed: dict[str, str] = {}  # passwords typed this session (kept in memory only)
        self._closed = False

    # --- the config -------------------------------------------------------------------------------

    def servers(self) -> list[str]:
        return mysql_servers(self._context.inventory)

    def mysql_spec(self, server: str) -> MysqlSpec:
        spec = self._context.spec(server)
        if spec.mysql is None:
            where = self._context.inventory.source or str(self._context.config_path)
            raise PanelError(f"{server} has no database: add a [servers.{server}.mysql] section "
                             f"(database, user, port) to {where}.")
        return spec.mysql

    # --- passwords ----------------------------------------------------------------------------------

    def use_password(self, server: str, password: str) -> None:
        """Use ``password`` for ``server`` for the rest of this session (before the keyring's)."""
        with self._lock:
            self._typed[server] = password

    def forget_password(self, server: str) -> None:
        with self._lock:
            self._typed.pop(server, None)

    def password(self, server: str) -> str:
        """The typed password, else the keyring's; raises :class:`MysqlPasswordMissing`. Keyring I/O."""
        with self._lock:
            typed = self._typed.get(server)
        if typed is not None:
            return typed
        secrets = self._context.secrets
        value = secrets.get(mysql_entry(server))
        if value:
            return value
        status = secrets.status()
        raise MysqlPasswordMissing(server, can_remember=status.can_remember,
                                   keyring_message="" if status.can_remember else status.message)

    # --- tunnels --------------------------------------------------------------------------------------

    def _server_lock(self, server: str) -> threading.Lock:
        with self._lock:
            return self._server_locks.setdefault(server, threading.Lock())

    def tunnel(self, server: str, cancel: CancelToken = NEVER_CANCELLED) -> Tunnel:
        """The server's tunnel, opened now if needed (or again if the config moved the server)."""
        mysql = self.mysql_spec(server)
        ssh = self._context.system_endpoint(server)
        key = (ssh.pool_key, mysql.host, mysql.port)
        with self._server_lock(server):
            with self._lock:
                if self._closed:
                    raise PanelError("The panel is closing; no new database connection is opened.")
                known = self._tunnels.get(server)
            if known is not None and known[0] == key:
                return known[1]
            if known is not None:
                known[1].close()
            cancel.raise_if_cancelled(f"Opening the tunnel to the database of {server}")
            # Connect (or reuse the pooled connection) with the cancel token; the tunnel then reuses it.
            self._context.pool.transport(ssh, cancel)
            tunnel = Tunnel(self._context.pool, ssh, mysql.host, mysql.port)
            with self._lock:
                closed = self._closed
                if not closed:
                    self._tunnels[server] = (key, tunnel)
            if closed:
                tunnel.close()
                raise PanelError("The panel is closing; no new database connection is opened.")
            return tunnel

    def endpoint(self, server: str, cancel: CancelToken = NEVER_CANCELLED, *,
                 read_timeout: float = DEFAULT_READ_TIMEOUT) -> MysqlEndpoint:
        return self.open(server, cancel, read_timeout=read_timeout)[0]

    def open(self, server: str, cancel: CancelToken = NEVER_CANCELLED, *,
             read_timeout: float = DEFAULT_READ_TIMEOUT) -> tuple[MysqlEndpoint, Tunnel]:
        """The endpoint to hand to ``services.groups`` (the tunnel's local end) and its tunnel."""
        mysql = self.mysql_spec(server)
        password = self.password(server)
        tunnel = self.tunnel(server, cancel)
        endpoint = MysqlEndpoint(host="127.0.0.1", port=tunnel.local_port, user=mysql.user, password=password,
                                 database=mysql.database, read_timeout=read_timeout, server=server)
        return endpoint, tunnel

    def reset(self, server: str) -> None:
        """Close the server's tunnel; the next call opens a new one."""
        with self._lock:
            known = self._tunnels.pop(server, None)
        if known is not None:
            known[1].close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            tunnels, self._tunnels = [t for _, t in self._tunnels.values()], {}
            self._typed.clear()
        for tunnel in tunnels:
            tunnel.close()


_CREATE_LOCK = threading.Lock()


def mysql_access(context: PanelContext) -> MysqlAccess:
    """The context's :class:`MysqlAccess`, made on first use and closed by ``context.close()``."""
    with _CREATE_LOCK:
        access = context.resources.get(RESOURCE_KEY)
        if not isinstance(access, MysqlAccess):
            access = MysqlAccess(context)
            context.resources[RESOURCE_KEY] = access
        return access


def open_mysql(context: PanelContext, server: str, cancel: CancelToken = NEVER_CANCELLED, *,
               read_timeout: float = DEFAULT_READ_TIMEOUT) -> tuple[MysqlEndpoint, Tunnel]:
    """Open (or reuse) the tunnel to ``server``'s MySQL and build its endpoint. Network and keyring I/O."""
    return mysql_access(context).open(server, cancel, read_timeout=read_timeout)
