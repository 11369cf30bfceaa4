"""systemd units: list them with their state, show one's status and last log lines, restart or stop one.

``systemctl list-units --output=json`` where systemd has it; otherwise the plain table of older
versions, parsed. Reads are one round trip each. Changing calls (:func:`control_unit`) don't ask
or audit: the caller confirms with the operator and writes the audit entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from services.cancel import NEVER_CANCELLED, CancelToken
from services.errors import PanelError, RemoteCommandError
from services.runner import CommandRunner
from services.triage.logs import JOURNAL_FIELDS, LogEntry, parse_journal_line
from services.triage.remote import check_unit_name, q, script_head

UNIT_TYPES = ("service", "socket", "timer", "mount", "path", "target")
VERBS = ("restart", "stop", "start", "reload")
LIST_TYPES = "service,socket,timer"


@dataclass(frozen=True)
class Unit:
    name: str  # "nginx.service"
    load: str  # loaded, not-found, masked, error
    active: str  # active, inactive, failed, activating, deactivating, reloading
    sub: str  # running, exited, dead, failed, listening, waiting …
    description: str = ""

    @property
    def short_name(self) -> str:
        """``nginx`` for ``nginx.service``; other types keep their suffix."""
        return self.name[: -len(".service")] if self.name.endswith(".service") else self.name

    @property
    def kind(self) -> str:
        return self.name.rsplit(".", 1)[-1] if "." in self.name else ""

    @property
    def failed(self) -> bool:
        return self.active == "failed" or self.sub == "failed"

    @property
    def running(self) -> bool:
        return self.active == "active"


@dataclass(frozen=True)
class UnitList:
    server: str
    units: tuple[Unit, ...]
    format: str  # "json" or "plain": how this systemd answered

    def find(self, name: str) -> Unit | None:
        for unit in self.units:
            if unit.name == name or unit.short_name == name:
                return unit
        return None


@dataclass(frozen=True)
class UnitStatus:
    server: str
    unit: str
    status_text: str  # ``systemctl status`` as the operator knows it
    exit_status: int  # 0 active, 3 inactive, 4 no such unit …
    log: tuple[LogEntry, ...]  # its last journal lines, oldest first
    log_note: str = ""  # why there are no log lines


def parse_units_json(text: str) -> list[Unit]:
    """``systemctl list-units --output=json``: a list of {unit, load, active, sub, description}."""
    raw = json.loads(text)
    if not isinstance(raw, list):
        raise ValueError("not a list")
    units = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("unit"), str):
            continue
        units.append(Unit(name=item["unit"], load=str(item.get("load", "")), active=str(item.get("active", "")),
                          sub=str(item.get("sub", "")), description=str(item.get("description", ""))))
    return units


def parse_units_plain(text: str) -> list[Unit]:
    """The plain table (``--no-legend --plain``, or older versions' default with the ``●`` mark and a legend)."""
    units = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line[0] in "●*×":  # a failed or not-found unit's mark
            line = line[1:].strip()
        parts = line.split(None, 4)
        if len(parts) < 4:
            continue
        name, load, active, sub = parts[:4]
        if name == "UNIT" or "." not in name or name.startswith("LOAD"):
            continue  # the header, or the legend below the table
        units.append(Unit(name=name, load=load, active=active, sub=sub, description=parts[4] if len(parts) > 4 else ""))
    return units


def list_units(
    runner: CommandRunner,
    server: str,
    *,
    types: str = LIST_TYPES,
    path_prefix: str = "",
    timeout: float = 30.0,
    cancel: CancelToken = NEVER_CANCELLED,
) -> UnitList:
    """Every unit of ``types`` (loaded, active or not), with its state. One round trip."""
    script = script_head(path_prefix) + f"""if out=$(systemctl list-units --type={q(types)} --all --no-pager \\
       --output=json 2>/dev/null) && [ "${{out#\\[}}" != "$out" ]; then
  echo json; printf '%s\\n' "$out"
else
  echo plain; systemctl list-units --type={q(types)} --all --no-pager --no-legend --plain
fi
"""
    result = runner.run_script(script, timeout=timeout, cancel=cancel)
    text = result.text()
    kind, _, body = text.partition("\n")
    if not result.ok or kind.strip() not in ("json", "plain"):
        message = result.error_text().strip()
        if "not been booted with systemd" in message or "Failed to connect to bus" in message:
            raise RemoteCommandError(f"{server} does not run systemd (or its bus can't be reached): {message[:200]}",
                                     exit_status=result.exit_status, stderr=message)
        raise RemoteCommandError(f"systemctl list-units failed on {server}: {message[:300] or result.exit_status}",
                                 exit_status=result.exit_status, stderr=message)
    if kind.strip() == "json":
        try:
            return UnitList(server, tuple(parse_units_json(body)), "json")
        except ValueError:
            pass
    return UnitList(server, tuple(parse_units_plain(body)), "plain")


def unit_status(
    runner: CommandRunner,
    server: str,
    unit: str,
    *,
    lines: int = 50,
    path_prefix: str = "",
    timeout: float = 30.0,
    cancel: CancelToken = NEVER_CANCELLED,
) -> UnitStatus:
    """``systemctl status UNIT`` and its last ``lines`` journal entries, side by side. One round trip."""
    check_unit_name(unit)
    marker = "@@panel-unit-log"
    fields = ",".join(JOURNAL_FIELDS)
    script = script_head(path_prefix) + f"""systemctl status --no-pager --full --lines=0 -- {q(unit)} 2>&1
echo "{marker} $?"
if command -v journalctl >/dev/null 2>&1; then
  journalctl --no-pager -q -o json --output-fields={fields} -n {int(lines)} -u {q(unit)} 2>&1
else echo "journalctl is not installed"; fi
"""
    result = runner.run_script(script, timeout=timeout, cancel=cancel)
    text = result.text()
    status_part, found, log_part = text.partition(f"\n{marker} ")
    if not found:
        raise RemoteCommandError(f"systemctl status {unit} gave no answer on {server}.",
                                 exit_status=result.exit_status, stderr=result.error_text())
    code_text, _, log_text = log_part.partition("\n")
    entries = []
    other = []
    for line in log_text.splitlines():
        entry = parse_journal_line(line, server)
        if entry is not None:
            entries.append(entry)
        elif line.strip():
            other.append(line.strip())
    note = ""
    if not entries:
        note = "; ".join(other) or "No journal lines for this unit."
    return UnitStatus(server, unit, status_part.rstrip("\n"), int(code_text) if code_text.strip().isdigit() else -1,
                      tuple(entries), note)


def control_unit(
    runner: CommandRunner,
    server: str,
    unit: str,
    verb: str,
    *,
    path_prefix: str = "",
    timeout: float = 90.0,
    cancel: CancelToken = NEVER_CANCELLED,
) -> str:
    """``systemctl VERB UNIT`` (restart, stop, start, reload). Returns the unit's state after it.

    Raises :class:`RemoteCommandError` with systemd's message when it fails. The caller confirms
    first and audits.
    """
    if verb not in VERBS:
        raise PanelError(f"{verb!r} is not something the panel does to a unit ({', '.join(VERBS)}).")
    check_unit_name(unit)
    script = script_head(path_prefix) + f"""systemctl {verb} -- {q(unit)} || exit $?
systemctl is-active -- {q(unit)} || true
"""
    result = runner.run_script(script, timeout=timeout, cancel=cancel)
    if not result.ok:
        message = (result.error_text().strip() or result.text().strip())[:400]
        raise RemoteCommandError(
            f"systemctl {verb} {unit} failed on {server}: {message or f'status {result.exit_status}'}",
            exit_status=result.exit_status, stderr=result.error_text())
    return result.text().strip().splitlines()[-1] if result.text().strip() else "unknown"
