"""Where a SaaS database is reached, and the one place that opens connections and names errors.

The caller opens the SSH tunnel (``services.ssh``) and passes its local end: to this module an
endpoint is only a host and a port.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import pymysql
import pymysql.cursors
from pymysql.connections import Connection

from services.errors import PanelError
from services.groups.errors import (
    ConnectionLost,
    MysqlAuthError,
    MysqlConnectError,
    QueryError,
    SchemaError,
)

# Error numbers (MySQL and MariaDB share them).
_AUTH = {1044, 1045, 1698}
_PRIVILEGE = {1142, 1143, 1227}
_UNREACHABLE = {2002, 2003, 2005}
_LOST = {2006, 2013, 2055, 1927, 1053}
_SCHEMA = {1049, 1054, 1146, 1109}
_FATAL_SESSION = _LOST | _UNREACHABLE

SESSION_SETUP = (
    "SET SESSION time_zone = '+00:00', "
    "sql_mode = CONCAT_WS(',', REPLACE(@@sql_mode, 'NO_BACKSLASH_ESCAPES', ''), "
    "'NO_AUTO_VALUE_ON_ZERO', 'STRICT_ALL_TABLES')"
)

if TYPE_CHECKING:
    Conn: TypeAlias = Connection[pymysql.cursors.Cursor]
else:
    Conn = Connection
T = TypeVar("T")


@dataclass(frozen=True)
class MysqlEndpoint:
    """A MySQL server as reached from this machine (usually the local end of an SSH tunnel)."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    server: str = ""  # the inventory name, for messages and rows ("app1")

    @property
    def label(self) -> str:
        return self.server or f"{self.host}:{self.port}"


def describe(exc: BaseException, endpoint: MysqlEndpoint, doing: str) -> PanelError:
    """Turn a pymysql error into a typed, operator-readable one (the password is never included)."""
    where = endpoint.label
    if isinstance(exc, PanelError):
        return exc
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    detail = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    detail = detail.replace(endpoint.password, "***") if endpoint.password else detail
    if isinstance(exc, pymysql.err.InterfaceError) or (code in _LOST and code is not None):
        hint = " (no answer within the read timeout)" if "timed out" in detail else ""
        return ConnectionLost(f"The connection to the database of {where} was lost while {doing}{hint}. "
                              "Check the SSH tunnel and that MySQL runs, then try again.")
    if code in _UNREACHABLE:
        return MysqlConnectError(f"Cannot reach the database of {where} at {endpoint.host}:{endpoint.port} "
                                 f"while {doing}: {detail}. Is the SSH tunnel up and MySQL running?")
    if code in _PRIVILEGE:
        return MysqlAuthError(f"The database of {where} does not let user {endpoint.user!r} do this while "
                              f"{doing}: {detail}. Grant the missing privilege on {endpoint.database}.")
    if code in _AUTH:
        return MysqlAuthError(f"The database of {where} refused user {endpoint.user!r} while {doing}: "
                              f"{detail}. Check the password in the keyring ({where}/mysql) "
                              "and the user's grants.")
    if code in _SCHEMA:
        return SchemaError(f"The database of {where} lacks something the panel needs while {doing}: "
                           f"{detail}.")
    if isinstance(exc, OSError | EOFError | TimeoutError):
        return ConnectionLost(f"The connection to the database of {where} broke while {doing}: {exc}.")
    return QueryError(f"The database of {where} rejected a statement while {doing}: {detail}"
                      + (f" (error {code})." if code else "."), code=code)


@contextlib.contextmanager
def mysql_errors(endpoint: MysqlEndpoint, doing: str) -> Iterator[None]:
    """Translate every pymysql/socket error raised inside into a typed PanelError."""
    try:
        yield
    except PanelError:
        raise
    except (pymysql.err.MySQLError, OSError, EOFError) as exc:
        raise describe(exc, endpoint, doing) from None


def connect(endpoint: MysqlEndpoint, *, doing: str = "connecting", autocommit: bool = True) -> Conn:
    """Open a session: utf8mb4, UTC, strict, no multi-statements. Errors are typed."""
    with mysql_errors(endpoint, doing):
        conn: Conn = pymysql.connect(
            host=endpoint.host,
            port=endpoint.port,
            user=endpoint.user,
            password=endpoint.password,
            database=endpoint.database,
            charset="utf8mb4",
            connect_timeout=max(1, round(endpoint.connect_timeout)),
            read_timeout=endpoint.read_timeout,
            write_timeout=endpoint.read_timeout,
            autocommit=autocommit,
            init_command=SESSION_SETUP,
        )
    return conn


@contextlib.contextmanager
def session(endpoint: MysqlEndpoint, doing: str) -> Iterator[Conn]:
    """A connection for one call, closed afterwards; errors inside are typed."""
    conn = connect(endpoint, doing=doing)
    try:
        with mysql_errors(endpoint, doing):
            yield conn
    finally:
        close_quietly(conn)


def close_quietly(conn: Conn | None) -> None:
    if conn is None:
        return
    with contextlib.suppress(Exception):
        conn.close()


def query(conn: Conn, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
    with conn.cursor() as cursor:
        cursor.execute(sql, args)
        return list(cursor.fetchall())


def execute(conn: Conn, sql: str, args: Any = None) -> int:
    with conn.cursor() as cursor:
        return int(cursor.execute(sql, args))


def is_session_fatal(exc: BaseException) -> bool:
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    return isinstance(exc, ConnectionLost | pymysql.err.InterfaceError) or code in _FATAL_SESSION


class _Pool:
    """A few idle sessions per endpoint, so a listing page over a tunnel costs one round trip, not five."""

    IDLE_SECONDS = 120.0
    PER_ENDPOINT = 2

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[MysqlEndpoint, list[tuple[float, Conn]]] = {}

    def take(self, endpoint: MysqlEndpoint) -> Conn | None:
        now = time.monotonic()
        with self._lock:
            stash = self._idle.get(endpoint, [])
            while stash:
                used, conn = stash.pop()
                if now - used < self.IDLE_SECONDS and conn.open:
                    return conn
                close_quietly(conn)
        return None

    def give(self, endpoint: MysqlEndpoint, conn: Conn) -> None:
        if not conn.open:
            return
        with self._lock:
            stash = self._idle.setdefault(endpoint, [])
            if len(stash) < self.PER_ENDPOINT:
                stash.append((time.monotonic(), conn))
                return
        close_quietly(conn)

    def clear(self) -> None:
        with self._lock:
            stashes, self._idle = list(self._idle.values()), {}
        for stash in stashes:
            for _, conn in stash:
                close_quietly(conn)


POOL = _Pool()


def with_session(endpoint: MysqlEndpoint, doing: str, work: Callable[[Conn], T]) -> T:
    """Run ``work`` on a pooled session. ``work`` must be safe to run twice: when a reused idle
    session turns out to be dead, it is retried once on a fresh one."""
    conn = POOL.take(endpoint)
    reused = conn is not None
    if conn is None:
        conn = connect(endpoint, doing=doing)
    try:
        with mysql_errors(endpoint, doing):
            result = work(conn)
    except ConnectionLost:
        close_quietly(conn)
        if not reused:
            raise
        conn = connect(endpoint, doing=doing)
        try:
            with mysql_errors(endpoint, doing):
                result = work(conn)
        except BaseException:
            close_quietly(conn)
            raise
    except BaseException:
        close_quietly(conn)
        raise
    POOL.give(endpoint, conn)
    return result
