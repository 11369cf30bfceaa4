"""Typed errors of the groups feature. Messages are for the operator and never hold a password."""

from __future__ import annotations

from collections.abc import Sequence

from services.errors import AuthError, Cancelled, ConnectError, PanelError


class GroupsError(PanelError):
    """Base of the errors that come from a SaaS database."""


class MysqlConnectError(ConnectError):
    """The MySQL server could not be reached (tunnel down, wrong port, server stopped)."""


class MysqlAuthError(AuthError):
    """The MySQL server refused the user name or password."""


class ConnectionLost(GroupsError):
    """The connection broke during a call (network, tunnel, server restart, KILL, timeout)."""


class SchemaError(GroupsError):
    """A table or column the panel needs is missing or unusable."""

    def __init__(self, message: str, *, table: str | None = None, columns: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.table = table
        self.columns = tuple(columns)


class QueryError(GroupsError):
    """The server rejected a statement (a lock timeout, a duplicate key...)."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class GroupNotFound(GroupsError):
    def __init__(self, group_id: int, server: str) -> None:
        super().__init__(f"There is no group {group_id} on {server}.")
        self.group_id = group_id
        self.server = server


class MoveRefused(GroupsError):
    """A move was refused before anything changed. ``reasons`` lists every problem found."""

    def __init__(self, summary: str, reasons: Sequence[str] = ()) -> None:
        self.reasons = tuple(reasons)
        text = summary
        if self.reasons:
            text += "\n" + "\n".join(f"  - {r}" for r in self.reasons)
        super().__init__(text)
        self.summary = summary


class MoveFailed(GroupsError):
    """A move stopped part way. ``state`` says where every copy of the group stands now.

    ``was_suspended`` is whether the group was already suspended before this move froze it
    (None if unknown); pass ``activate=not was_suspended`` to a re-run to finish the same way.
    """

    def __init__(self, message: str, *, step: str, state: str, was_suspended: bool | None,
                 both_copies: bool, source_frozen: bool) -> None:
        PanelError.__init__(self, f"{message} {state}")
        self.step = step
        self.state = state
        self.was_suspended = was_suspended
        self.both_copies = both_copies
        self.source_frozen = source_frozen


class MoveCancelled(MoveFailed, Cancelled):
    """The operator cancelled a move; ``state`` says where the copies stand (as for MoveFailed)."""
