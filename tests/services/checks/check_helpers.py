"""Helpers shared by the checks' tests: server specs for real sshd servers, listeners, a PATH without a tool."""

from __future__ import annotations

import contextlib
import os
import pwd
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from panel.lab.procs import free_ports
from panel.lab.sshd import SshdServer
from services.cancel import NEVER_CANCELLED, CancelToken
from services.inventory import ChecksSpec, MysqlSpec, ServerSpec
from services.runner import CommandResult, CommandRunner
from services.ssh import SshPool, SshRunner, system_endpoint

USER = pwd.getpwuid(os.geteuid()).pw_name

LISTENER = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(5)
print("listening", flush=True)
sys.stdin.read()  # hold the port until the test closes our stdin (or kills us)
"""


def spec_for(server: SshdServer, key: Path, *, name: str = "app1", mysql: MysqlSpec | None = None,
             **checks: object) -> ServerSpec:
    """A ServerSpec for a test sshd, its host key pinned."""
    return ServerSpec(name=name, host=server.host, port=server.port, user=USER, identity=str(key),
                      host_key=server.host_key_line, mysql=mysql, checks=ChecksSpec(**checks))  # type: ignore[arg-type]


def runner_for(pool: SshPool, spec: ServerSpec, folder: Path) -> SshRunner:
    return SshRunner(pool, system_endpoint(spec, known_hosts=folder / "known_hosts",
                                           ssh_config=folder / "no-ssh-config",
                                           user_known_hosts=folder / "no-known-hosts"))


@contextlib.contextmanager
def listening(port: int, host: str = "0.0.0.0") -> Iterator[subprocess.Popen[bytes]]:
    """A program listening on ``host:port`` (a separate process, as a real service is)."""
    process = subprocess.Popen([sys.executable, "-c", LISTENER, host, str(port)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == b"listening", process.stderr.read() if process.stderr else b""
        yield process
    finally:
        process.kill()
        process.communicate(timeout=10)  # reaps it and closes its pipes
        wait_port_free(port)


def wait_port_free(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                pass
            else:
                return
        with contextlib.suppress(Exception):
            CancelToken().wait(0.05)
    raise AssertionError(f"port {port} stayed busy")


def free_port() -> int:
    return free_ports(1)[0]


def path_without(folder: Path, *missing: str) -> Path:
    """A folder of symlinks to every program on this machine's PATH but ``missing``: a PATH lacking them."""
    folder.mkdir(parents=True, exist_ok=True)
    for directory in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        base = Path(directory)
        if not base.is_dir():
            continue
        for program in base.iterdir():
            link = folder / program.name
            if program.name in missing or link.exists() or link.is_symlink():
                continue
            link.symlink_to(program)
    return folder


class PathRunner:
    """Runs through another runner with PATH set to one folder, as on a server where tools are missing."""

    def __init__(self, inner: CommandRunner, path: Path) -> None:
        self.inner = inner
        self.path = path

    @property
    def where(self) -> str:
        return self.inner.where

    def run(self, argv: list[str], *, stdin: bytes | None = None, timeout: float = 30.0,
            cancel: CancelToken = NEVER_CANCELLED) -> CommandResult:
        return self.inner.run(["env", f"PATH={self.path}", *argv], stdin=stdin, timeout=timeout, cancel=cancel)

    def run_script(self, script: str, *, stdin: bytes | None = None, timeout: float = 30.0,
                   cancel: CancelToken = NEVER_CANCELLED) -> CommandResult:
        return self.inner.run_script(f"PATH='{self.path}'; export PATH\n{script}", stdin=stdin, timeout=timeout,
                                     cancel=cancel)
