""""Open a terminal here": the operator's own terminal emulator running ``ssh`` to the same server,
with the same port, user, identity and pinned host key that the panel trusts.

The argument lists are pure functions (:func:`ssh_argv`, :func:`terminal_argv`, :func:`find_terminal`);
:func:`prepare_terminal` also writes the one-line known_hosts file that ssh is told to trust, and is
called on a worker. The window launches the result with ``QProcess.startDetached``.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from services.errors import PanelError
from services.hostkeys import PublicKey, trusted_keys
from services.inventory import ServerSpec
from services.ssh.endpoint import SshEndpoint

TERMINALS = ("x-terminal-emulator", "gnome-terminal", "konsole", "xterm")

# How each emulator takes a command and its arguments; the rest take ``-e CMD ARGS…`` (xterm, konsole,
# Debian's x-terminal-emulator alternative, alacritty, urxvt, st).
_AFTER_DASHES = {"gnome-terminal", "kgx", "ptyxis", "gnome-console"}
_BARE = {"kitty", "foot", "footclient", "ghostty"}
_DASH_X = {"xfce4-terminal", "mate-terminal", "terminator"}
_ONE_STRING = {"tilix", "lxterminal", "qterminal"}

Which = Callable[[str], "str | None"]


@dataclass(frozen=True)
class TerminalLaunch:
    program: str
    arguments: tuple[str, ...]
    known_hosts: Path  # the file ssh trusts for this server (written by prepare_terminal)

    @property
    def argv(self) -> list[str]:
        return [self.program, *self.arguments]


def host_key_alias(server: str) -> str:
    """The name ssh looks the key up under, whatever HostName or port ~/.ssh/config gives the host."""
    return f"panel-{server}"


def ssh_argv(spec: ServerSpec, known_hosts: Path | str, *, alias: str | None = None) -> list[str]:
    """``ssh`` to ``spec`` that trusts exactly the keys in ``known_hosts`` (and asks nothing about them)."""
    argv = [
        "ssh",
        "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "UpdateHostKeys=no",
    ]  # fmt: skip
    if alias:
        argv += ["-o", f"HostKeyAlias={alias}"]
    if spec.identity:
        argv += ["-i", str(Path(spec.identity).expanduser())]
    argv += ["-p", str(spec.port), "--", f"{spec.user}@{spec.host}"]
    return argv


def known_hosts_text(name: str, keys: Sequence[PublicKey]) -> str:
    return "".join(f"{name} {key.line()}\n" for key in keys)


def find_terminal(environ: Mapping[str, str] | None = None, which: Which = shutil.which) -> list[str] | None:
    """The operator's terminal: ``$TERMINAL`` (may hold options), then x-terminal-emulator, gnome-terminal,
    konsole, xterm: the first one found on PATH, as an argument list. None if there's none."""
    environ = os.environ if environ is None else environ
    chosen = environ.get("TERMINAL", "").strip()
    if chosen:
        try:
            parts = shlex.split(chosen)
        except ValueError:
            parts = []
        if parts:
            found = which(parts[0])
            if found:
                return [found, *parts[1:]]
    for name in TERMINALS:
        found = which(name)
        if found:
            return [found]
    return None


def terminal_argv(terminal: Sequence[str], command: Sequence[str]) -> list[str]:
    """``terminal`` (from :func:`find_terminal`) running ``command``, in the form that emulator takes."""
    name = Path(terminal[0]).name
    if name in _AFTER_DASHES:
        return [*terminal, "--", *command]
    if name in _BARE:
        return [*terminal, *command]
    if name == "wezterm":
        return [*terminal, "start", "--", *command]
    if name in _DASH_X:
        return [*terminal, "-x", *command]
    if name in _ONE_STRING:
        return [*terminal, "-e", shlex.join(command)]
    return [*terminal, "-e", *command]


def prepare_terminal(
    spec: ServerSpec,
    endpoint: SshEndpoint,
    folder: Path,
    *,
    environ: Mapping[str, str] | None = None,
    which: Which = shutil.which,
) -> TerminalLaunch:
    """Write ``folder/known_hosts.SERVER`` with the keys the panel trusts for this server, and return the
    terminal command. Raises :class:`PanelError` when no key is trusted yet or no terminal is installed."""
    keys = trusted_keys(endpoint.trust, endpoint.host, endpoint.port)
    if not keys:
        raise PanelError(f"The panel does not trust a host key for {spec.name} yet. Check and trust it on the "
                         "Fleet page first; a terminal never accepts an unknown key.")
    terminal = find_terminal(environ, which)
    if terminal is None:
        raise PanelError("No terminal emulator was found. Set $TERMINAL, or install one of: " + ", ".join(TERMINALS)
                         + ".")
    alias = host_key_alias(spec.name)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"known_hosts.{spec.name}"
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(known_hosts_text(alias, keys), encoding="utf-8")
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)
    argv = terminal_argv(terminal, ssh_argv(spec, path, alias=alias))
    return TerminalLaunch(argv[0], tuple(argv[1:]), path)
