"""Typed errors of the backup operations (all are :class:`services.errors.RemoteCommandError`)."""

from __future__ import annotations

from services.errors import PanelError, RemoteCommandError


class RdiffBackupMissing(RemoteCommandError):
    """rdiff-backup is not installed (not on PATH) on the host that holds the repository."""

    def __init__(self, where: str) -> None:
        super().__init__(
            f"rdiff-backup is not installed on {where} (command not found). Install it there "
            "(apt install rdiff-backup) to read, verify or restore this repository.",
            exit_status=127,
        )


class RepositoryError(RemoteCommandError):
    """rdiff-backup ran but refused or failed (not a repository, permission denied, bad time...)."""


class UnsafePath(PanelError):
    """A path given to restore or clean up would leave the repository or the panel's temp folder."""
