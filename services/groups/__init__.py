"""Groups of the SaaS: find, show, suspend, export and move them (issue "Groups").

Plain Python over pymysql. Every call takes a :class:`MysqlEndpoint` (the caller opens the SSH
tunnel and passes its local end) and the ``[groups]`` config (:class:`~services.inventory.GroupsSpec`).

Users are per server and shared by that server's groups. A move copies the users that the
group's rows refer to and that the target lacks (matched by id; an id or unique email that the
target uses for someone else refuses the move), and removes a user from the source only when no
other row there still refers to it.
"""

from services.groups.balance import BalanceReport, MoveSuggestion, ServerLoad, balance, suggest_moves
from services.groups.endpoint import MysqlEndpoint
from services.groups.errors import (
    ConnectionLost,
    GroupNotFound,
    GroupsError,
    MoveCancelled,
    MoveFailed,
    MoveRefused,
    MysqlAuthError,
    MysqlConnectError,
    QueryError,
    SchemaError,
)
from services.groups.export import ExportManifest, TableExport, export_group, verify_export
from services.groups.listing import group_detail, list_groups, reactivate, suspend
from services.groups.models import GroupDetail, GroupPage, GroupRow, GroupState, Member, TableCount
from services.groups.move import MoveResult, StepReport, move_group
from services.groups.plan import MovePlan, TablePlan, plan_move
from services.groups.schema import GroupSchema, discover, forget_schemas

__all__ = [
    "BalanceReport",
    "ConnectionLost",
    "ExportManifest",
    "GroupDetail",
    "GroupNotFound",
    "GroupPage",
    "GroupRow",
    "GroupSchema",
    "GroupState",
    "GroupsError",
    "Member",
    "MoveCancelled",
    "MoveFailed",
    "MovePlan",
    "MoveRefused",
    "MoveResult",
    "MoveSuggestion",
    "MysqlAuthError",
    "MysqlConnectError",
    "MysqlEndpoint",
    "QueryError",
    "SchemaError",
    "ServerLoad",
    "StepReport",
    "TableCount",
    "TableExport",
    "TablePlan",
    "balance",
    "discover",
    "export_group",
    "forget_schemas",
    "group_detail",
    "list_groups",
    "move_group",
    "plan_move",
    "reactivate",
    "suggest_moves",
    "suspend",
    "verify_export",
]
