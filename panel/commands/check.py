"""``python -m panel check [--json] [--accept SERVER]``: every check once, as a monitoring plugin.

Exit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (a config error exits 3 too). Silenced
alerts are printed but do not count towards the exit status.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from services.checks.model import CheckResult, Severity

EXIT_UNKNOWN = 3
EVIDENCE_LINES = 12


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = commands.add_parser(
        "check", help="run every check once and print the alerts (exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)",
        description="Run every host, backup, certificate and vendor check once, record the alerts, and print "
                    "them. Exit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.")
    check.add_argument("--json", action="store_true", help="print a JSON list of the alerts")
    check.add_argument("--accept", metavar="SERVER",
                       help="first accept the reviewed file changes under SERVER's watch_paths as the new baseline "
                            "(written to the audit log)")
    check.add_argument("--server", action="append", metavar="SERVER", help="check only this server (repeatable)")
    check.add_argument("--yes", action="store_true", help="accept without asking, in a terminal too")
    check.set_defaults(handler=cmd_check, config_error_exit=EXIT_UNKNOWN, error_exit=EXIT_UNKNOWN)


def _say(text: str, *, to_stderr: bool) -> None:
    print(text, file=sys.stderr if to_stderr else sys.stdout)


def _accept(context: Any, book: Any, server: str, *, assume_yes: bool, quiet: bool) -> bool:
    """Accept ``server``'s pending file changes. False (and says why) when there is nothing to accept."""
    from panel.cli import confirm
    from services.errors import PanelError

    context.spec(server)  # an unknown server is a PanelError naming the known ones
    pending = book.pending(server)
    if pending is None:
        _say(f"Nothing to accept on {server}: no file changes are waiting.", to_stderr=True)
        return False
    if sys.stdin.isatty() and not assume_yes:
        print(f"{len(pending.lines)} change(s) under the watched paths of {server}:", file=sys.stderr)
        for line in pending.lines[:50]:
            print(f"  {line}", file=sys.stderr)
        if len(pending.lines) > 50:
            print(f"  … and {len(pending.lines) - 50} more", file=sys.stderr)
        if not confirm(f"Accept this state of {server} as the new baseline?", assume_yes=False):
            raise PanelError("Nothing was accepted.")
    result = book.accept(server, scan_id=pending.scan_id)
    counts = result.counts
    _say(f"Accepted {result.accepted} change(s) on {server} ({counts['added']} added, {counts['removed']} removed, "
         f"{counts['changed']} changed) as the new baseline; written to the audit log.", to_stderr=quiet)
    return True


def _status_of(result: CheckResult, run: Any) -> tuple[str, int | None]:
    by_key = {alert.key: alert for alert in run.recorded.current}
    alert = by_key.get(result.key)
    if run.is_silenced(result):
        return "silenced", alert.id if alert else None
    return (alert.status if alert else "new"), (alert.id if alert else None)


def alert_json(result: CheckResult, run: Any) -> dict[str, Any]:
    data = result.to_json()
    status, alert_id = _status_of(result, run)
    data["status"] = status
    data["id"] = alert_id
    return data


def format_text(run: Any) -> list[str]:
    alerts = run.alerts
    lines = []
    if alerts:
        lines.append(f"{'SEVERITY':<9} {'SERVER':<12} {'CHECK':<22} SUMMARY")
    for result in alerts:
        status, _ = _status_of(result, run)
        flags = "" if status == "new" else f" [{status}]"
        action = f"  → {result.action.title} ({result.action.page})" if result.action else ""
        lines.append(f"{result.severity!s:<9} {result.server or '-':<12} {result.check:<22} {result.summary}{flags}"
                     f"{action}")
        for evidence in result.evidence[:EVIDENCE_LINES]:
            lines.append(f"{'':<9} {'':<12} {'':<22}   {evidence}")
        if len(result.evidence) > EVIDENCE_LINES:
            lines.append(f"{'':<9} {'':<12} {'':<22}   … {len(result.evidence) - EVIDENCE_LINES} more line(s); "
                         "--json shows them all")
    counts: dict[Severity, int] = {}
    for result in alerts:
        if not run.is_silenced(result):
            counts[result.severity] = counts.get(result.severity, 0) + 1
    sweep = run.sweep
    where = f"{len(sweep.servers)} server(s) in {sweep.elapsed:.1f} s"
    if not alerts:
        lines.append(f"All checks OK ({where}).")
    else:
        parts = [f"{counts[s]} {s}" for s in (Severity.CRITICAL, Severity.WARNING, Severity.UNKNOWN) if counts.get(s)]
        silenced = sum(1 for r in alerts if run.is_silenced(r))
        if silenced:
            parts.append(f"{silenced} silenced")
        lines.append(f"{len(alerts)} alert(s): {', '.join(parts)} ({where}).")
    return lines


def cmd_check(args: argparse.Namespace) -> int:
    from panel.alerts import AlertBook, run_checks
    from panel.cli import open_context

    context = open_context(args)
    try:
        book = AlertBook(context.store)
        if args.accept:
            _accept(context, book, args.accept, assume_yes=args.yes, quiet=args.json)
        servers = args.server or None
        if servers:
            for name in servers:
                context.spec(name)
        run = run_checks(context, servers=servers, book=book)
    finally:
        context.close()
    if args.json:
        print(json.dumps([alert_json(r, run) for r in run.alerts], indent=2))
    else:
        print("\n".join(format_text(run)))
    return int(run.exit_code)
