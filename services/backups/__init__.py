"""Reading and acting on rdiff-backup repositories through a CommandRunner (local or over SSH).

Read with :func:`read_backups` (every repository of the inventory, one round trip per host) or
:func:`read_repository`; act with the functions of :mod:`services.backups.operations`.
"""

from services.backups.errors import RdiffBackupMissing, RepositoryError, UnsafePath
from services.backups.models import (
    FileChange,
    RemovalResult,
    Repository,
    RestoredCopy,
    Session,
    SessionStats,
    VerifyResult,
)
from services.backups.operations import (
    changed_in_last_backup,
    changed_since_last_backup,
    changes_between,
    cleanup_temp,
    plan_remove_older_than,
    regress,
    remove_older_than,
    restore_to_temp,
    verify,
)
from services.backups.reader import (
    RepoTarget,
    read_backups,
    read_repositories,
    read_repository,
    read_server_backups,
    targets_of,
)

__all__ = [
    "FileChange",
    "RdiffBackupMissing",
    "RemovalResult",
    "RepoTarget",
    "Repository",
    "RepositoryError",
    "RestoredCopy",
    "Session",
    "SessionStats",
    "UnsafePath",
    "VerifyResult",
    "changed_in_last_backup",
    "changed_since_last_backup",
    "changes_between",
    "cleanup_temp",
    "plan_remove_older_than",
    "read_backups",
    "read_repositories",
    "read_repository",
    "read_server_backups",
    "regress",
    "remove_older_than",
    "restore_to_temp",
    "targets_of",
    "verify",
]
