"""Small helpers shared by the triage readers: one script per round trip, an optional PATH prefix.

Every remote read is a fixed POSIX ``sh`` script; values go in through :func:`shlex.quote`. The
optional ``path_prefix`` puts folders first on the remote ``PATH`` (a server whose tools live in
``/usr/local/sbin``, or a test's stand-in ``systemctl``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

from services.errors import PanelError

# A marker line that the readers print between sections; no log line starts with it by chance.
MARK = "@@panel-triage"


def q(value: object) -> str:
    return shlex.quote(str(value))


def script_head(path_prefix: str = "") -> str:
    """The start of every triage script: UTC times, no colours or pagers, the PATH prefix."""
    lines = ["TZ=UTC0; export TZ", "SYSTEMD_COLORS=0; SYSTEMD_PAGER=cat; LC_ALL=C",
             "export SYSTEMD_COLORS SYSTEMD_PAGER LC_ALL"]
    if path_prefix:
        lines.append(f'PATH={q(path_prefix)}:"$PATH"; export PATH')
    return "\n".join(lines) + "\n"


def command_line(script: str) -> str:
    """``sh -c SCRIPT`` quoted for the remote login shell (what SshRunner.run_script sends)."""
    return " ".join(shlex.quote(part) for part in ("sh", "-c", script))


def sections(text: str) -> dict[str, list[str]]:
    """Split output on ``MARK name`` lines into ``{name: lines}``; lines before the first marker go to ``""``."""
    result: dict[str, list[str]] = {"": []}
    current = ""
    for line in text.splitlines():
        if line.startswith(MARK + " "):
            current = line[len(MARK) + 1:].strip()
            result.setdefault(current, [])
            continue
        result[current].append(line)
    return result


_UNIT_NAME = re.compile(r"^[A-Za-z0-9:_.@\\-]+$")


def check_unit_name(name: str) -> str:
    """A systemd unit name, refused if it could be read as an option or holds shell characters."""
    if not name or name.startswith("-") or not _UNIT_NAME.match(name) or len(name) > 256:
        raise PanelError(f"{name[:60]!r} is not a systemd unit name.")
    return name


def check_path(path: str) -> str:
    if not path.startswith("/") or "\n" in path or "\0" in path:
        raise PanelError(f"{path[:80]!r} is not an absolute file path.")
    return path


def join_quoted(values: Iterable[str]) -> str:
    return " ".join(q(value) for value in values)
