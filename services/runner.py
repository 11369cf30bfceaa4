"""Running a command somewhere: on this laptop or on a server over SSH.

Features that read a host (backups, checks, logs) take a :class:`CommandRunner`,
so the same code reads a repository on the laptop or on a server.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Protocol

from services.cancel import NEVER_CANCELLED, CancelToken
from services.errors import Cancelled, OperationTimeout


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")

    def error_text(self) -> str:
        return self.stderr.decode("utf-8", errors="replace")


class CommandRunner(Protocol):
    """Runs an argument list (quoted for the remote shell where there is one)."""

    @property
    def where(self) -> str:
        """Where commands run, for messages: "this laptop" or "app1"."""
        ...

    def run(
        self,
        argv: list[str],
        *,
        stdin: bytes | None = None,
        timeout: float = 30.0,
        cancel: CancelToken = NEVER_CANCELLED,
    ) -> CommandResult: ...

    def run_script(
        self,
        script: str,
        *,
        stdin: bytes | None = None,
        timeout: float = 30.0,
        cancel: CancelToken = NEVER_CANCELLED,
    ) -> CommandResult:
        """Run a POSIX sh script (one round trip). The script is fixed text; values go in quoted."""
        ...


class LocalRunner:
    """Runs commands on this machine, without a shell unless asked for a script."""

    where = "this laptop"

    def run(
        self,
        argv: list[str],
        *,
        stdin: bytes | None = None,
        timeout: float = 30.0,
        cancel: CancelToken = NEVER_CANCELLED,
    ) -> CommandResult:
        cancel.raise_if_cancelled()
        process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        unregister = cancel.on_cancel(process.kill)
        try:
            stdout, stderr = process.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise OperationTimeout(f"{argv[0]} did not finish within {timeout:g} s on {self.where}.") from None
        finally:
            unregister()
        if cancel.cancelled:
            raise Cancelled(f"{argv[0]} on {self.where}")
        return CommandResult(process.returncode, stdout, stderr)

    def run_script(
        self,
        script: str,
        *,
        stdin: bytes | None = None,
        timeout: float = 30.0,
        cancel: CancelToken = NEVER_CANCELLED,
    ) -> CommandResult:
        return self.run(["sh", "-c", script], stdin=stdin, timeout=timeout, cancel=cancel)
