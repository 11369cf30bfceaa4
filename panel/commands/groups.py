"""``python -m panel groups ...``: find, show, suspend, reactivate, export and move the SaaS's groups.

GROUP is a group's id (``42`` or ``#42``) or its exact name. Every change is confirmed (in a
terminal it asks; from a script it needs ``--yes``; without either it refuses) and written to the
audit log as ``group.move``, ``group.suspend``, ``group.reactivate`` or ``group.export`` on the
target ``SERVER/group:ID``.

Exit status: 0 done; 1 failed or declined (nothing changed); 2 usage; 3 the move was refused by
its plan (nothing changed); 4 the move stopped part way (the message says where the copies are;
running it again finishes it).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from services.cancel import CancelToken
from services.errors import Cancelled, PanelError

if TYPE_CHECKING:
    from panel.context import PanelContext
    from panel.mysql import MysqlAccess
    from services.groups import GroupDetail, GroupRow, MysqlEndpoint
    from services.inventory import GroupsSpec

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_PARTIAL = 4
PAGE = 1000
T = TypeVar("T")


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    groups = commands.add_parser(
        "groups", help="find, show, suspend, export and move the SaaS's groups",
        description="The SaaS's groups, read through an SSH tunnel to each server's MySQL. GROUP is an id "
                    "(42 or #42) or an exact name. Exit status: 0 done, 1 failed or declined, 2 usage, "
                    "3 move refused by its plan, 4 move stopped part way (run it again to finish).")
    sub = groups.add_subparsers(dest="groups_command", metavar="ACTION", required=True)

    listing = sub.add_parser("list", help="the groups of every server (or one), optionally found by a search")
    listing.add_argument("--server", action="append", metavar="SERVER", help="only this server (repeatable)")
    listing.add_argument("--search", metavar="TEXT",
                         help="an id, part of a name, the start of a member's email, or @domain")
    listing.add_argument("--sort", default="name", metavar="ORDER",
                         help="id, name, created, suspended, members or data_rows; prefix - for descending")
    listing.add_argument("--limit", type=int, metavar="N", help="at most N groups (default: all)")
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    listing.set_defaults(handler=cmd_list)

    show = sub.add_parser("show", help="one group: members, rows per table, state, history and billing")
    _group_arguments(show)
    show.add_argument("--json", action="store_true", help="print a JSON object")
    show.set_defaults(handler=cmd_show)

    move = sub.add_parser("move", help="move a group to another server without losing a row")
    _group_arguments(move)
    move.add_argument("--to", required=True, metavar="SERVER", help="the server to move it to")
    move.add_argument("--dry-run", action="store_true", help="only show the plan (tables, rows, time)")
    move.add_argument("--yes", action="store_true", help="move without asking (for scripts)")
    ending = move.add_mutually_exclusive_group()
    ending.add_argument("--activate", dest="activate", action="store_const", const=True,
                        help="end active on the target even if it was suspended")
    ending.add_argument("--keep-suspended", dest="activate", action="store_const", const=False,
                        help="end suspended on the target")
    move.set_defaults(handler=cmd_move, activate=None)

    for name, verb in (("suspend", "suspend a group: its members lose access until it is reactivated"),
                       ("reactivate", "reactivate a suspended group")):
        action = sub.add_parser(name, help=verb)
        _group_arguments(action)
        action.add_argument("--yes", action="store_true", help="without asking (for scripts)")
        action.set_defaults(handler=cmd_suspend if name == "suspend" else cmd_reactivate)

    export = sub.add_parser("export", help="write every row of a group to a file (GDPR), with a manifest")
    _group_arguments(export)
    export.add_argument("--out", required=True, type=Path, metavar="FILE", help="the file to write")
    export.add_argument("--format", choices=("jsonl", "sql"),
                        help="jsonl (default) or sql; a FILE ending in .sql chooses sql")
    export.add_argument("--yes", action="store_true", help="overwrite FILE without asking")
    export.set_defaults(handler=cmd_export)

    balance = sub.add_parser("balance", help="groups and rows per server, and which moves would even them out")
    balance.add_argument("--json", action="store_true", help="print a JSON object")
    balance.add_argument("--suggestions", type=int, default=10, metavar="N", help="at most N moves")
    balance.set_defaults(handler=cmd_balance)


def _group_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("group", metavar="GROUP", help="the group's id (42, #42) or its exact name")
    parser.add_argument("--server", metavar="SERVER", help="the server that holds it (default: look on all)")


# --- plumbing ------------------------------------------------------------------------------------------


@dataclass
class Session:
    context: PanelContext
    access: MysqlAccess
    spec: GroupsSpec
    cancel: CancelToken

    def endpoint(self, server: str, *, long: bool = False) -> MysqlEndpoint:
        from panel.mysql import DEFAULT_READ_TIMEOUT, LONG_READ_TIMEOUT

        timeout = LONG_READ_TIMEOUT if long else DEFAULT_READ_TIMEOUT
        return self.access.endpoint(server, self.cancel, read_timeout=timeout)

    def servers(self, only: Sequence[str] | None = None) -> list[str]:
        """The servers to work on (every one with a database by default), each with its password known."""
        known = self.access.servers()
        if not only:
            if not known:
                raise PanelError("No server has a database: add a [servers.NAME.mysql] section to the config.")
            chosen = known
        else:
            for name in only:
                self.access.mysql_spec(name)  # an unknown server, or one without [mysql], says so
            chosen = list(dict.fromkeys(only))
        for name in chosen:
            self._ensure_password(name)
        return chosen

    def _ensure_password(self, server: str) -> None:
        """In a terminal, ask for a password the keyring lacks (kept for this command only)."""
        from panel.mysql import MysqlPasswordMissing

        try:
            self.access.password(server)
        except MysqlPasswordMissing:
            if not sys.stdin.isatty():
                raise
            import getpass

            password = getpass.getpass(f"MySQL password for {server} (not kept): ")
            if not password:
                raise
            self.access.use_password(server, password)

    def close(self) -> None:
        self.context.close()


def _open(args: argparse.Namespace) -> Session:
    from panel.cli import open_context
    from panel.mysql import mysql_access

    context = open_context(args)
    return Session(context, mysql_access(context), context.inventory.groups, CancelToken())


def _in_background(session: Session, work: Callable[[], T]) -> T:
    """Run ``work`` on a thread so that Ctrl+C cancels it cleanly (through the session's token)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:  # handed to the main thread
            box["error"] = exc

    thread = threading.Thread(target=run, name="groups-command", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.2)
    except KeyboardInterrupt:
        print("Cancelling… (the move finishes by itself if its copy was already committed)", file=sys.stderr)
        session.cancel.cancel()
        thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _each(servers: Sequence[str], work: Callable[[str], T]) -> list[tuple[str, T | PanelError]]:
    """``work(server)`` on every server at once; a server's PanelError is returned in its place."""

    def guarded(server: str) -> T | PanelError:
        try:
            return work(server)
        except PanelError as error:
            return error

    with ThreadPoolExecutor(max_workers=max(1, min(8, len(servers)))) as pool:
        return list(zip(servers, pool.map(guarded, servers), strict=True))


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value else None


def group_target(server: str, group_id: int) -> str:
    """The audit log's target for a group: ``app1/group:42``."""
    return f"{server}/group:{group_id}"


def row_json(row: GroupRow) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "server": row.server, "members": row.members,
            "created": _iso(row.created), "suspended": _iso(row.suspended),
            "state": "suspended" if row.is_suspended else "active", "data_rows": row.data_rows}


def _state_text(suspended: datetime | None) -> str:
    return f"suspended since {_when(suspended)}" if suspended else "active"


# --- finding a group --------------------------------------------------------------------------------------


def find_group(session: Session, text: str, servers: Sequence[str]) -> list[GroupRow]:
    """Every copy of the group named by ``text`` (an id, #id, or an exact name) on ``servers``."""
    from services.groups import list_groups

    text = text.strip()
    digits = text[1:] if text.startswith("#") else text
    by_id = digits.isascii() and digits.isdigit()

    def look(server: str) -> list[GroupRow]:
        endpoint = session.endpoint(server)
        if by_id:
            return list(list_groups(endpoint, session.spec, search=f"#{int(digits)}", limit=10).rows)
        found: list[GroupRow] = []
        offset = 0
        while True:
            page = list_groups(endpoint, session.spec, search=text, limit=PAGE, offset=offset)
            found += [r for r in page.rows if r.name.casefold() == text.casefold()]
            offset += len(page.rows)
            if not page.has_more or not page.rows or offset >= 20 * PAGE:
                return found

    rows: list[GroupRow] = []
    errors: list[str] = []
    for server, result in _each(servers, look):
        if isinstance(result, PanelError):
            errors.append(f"{server}: {result}")
        else:
            rows += result
    if not by_id:
        exact = [r for r in rows if r.name == text]
        rows = exact or rows
    if not rows and errors:
        raise PanelError("Could not look for the group on every server:\n" + "\n".join(errors))
    for error in errors:
        print(f"panel: warning: {error}", file=sys.stderr)
    return rows


def one_group(session: Session, text: str, server: str | None, *, exclude: str | None = None) -> GroupRow:
    servers = session.servers([server] if server else None)
    rows = find_group(session, text, servers)
    candidates = [r for r in rows if r.server != exclude]
    if not rows:
        where = server or ", ".join(servers)
        raise PanelError(f"No group {text!r} on {where} (GROUP is an id or an exact name; "
                         "`groups list --search TEXT` finds one).")
    if not candidates:
        raise PanelError(f"Group {text!r} is only on {exclude} already.")
    if len(candidates) > 1:
        listed = ", ".join(f"{r.id} on {r.server}" for r in candidates)
        if len({r.id for r in candidates}) == 1:
            raise PanelError(f"Group {candidates[0].id} ({candidates[0].name}) is on several servers ({listed}), "
                             "as after an interrupted move. Say which with --server.")
        raise PanelError(f"Several groups are named {text!r}: {listed}. Use the id.")
    return candidates[0]


# --- list ------------------------------------------------------------------------------------------------


def sort_key(order: str) -> tuple[Callable[[GroupRow], Any], bool]:
    from services.groups.sql import parse_order

    parsed = parse_order(order)
    keys: dict[str, Callable[[GroupRow], Any]] = {
        "id": lambda r: r.id,
        "name": lambda r: (r.name.casefold(), r.id),
        "created": lambda r: (r.created or datetime.min, r.id),
        "suspended": lambda r: (r.suspended is not None, r.suspended or datetime.min, r.id),
        "members": lambda r: (r.members, r.id),
        "data_rows": lambda r: (r.data_rows, r.id),
    }
    return keys[parsed.key], parsed.descending


def cmd_list(args: argparse.Namespace) -> int:
    from services.groups import list_groups

    if args.limit is not None and args.limit < 1:
        print("panel: --limit must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        key, descending = sort_key(args.sort)
    except ValueError as error:
        print(f"panel: {error}", file=sys.stderr)
        return EXIT_USAGE
    session = _open(args)
    try:
        servers = session.servers(args.server)

        def fetch(server: str) -> tuple[list[GroupRow], int]:
            endpoint = session.endpoint(server)
            rows: list[GroupRow] = []
            offset, total = 0, 0
            while args.limit is None or len(rows) < args.limit:
                want = PAGE if args.limit is None else min(PAGE, args.limit - len(rows))
                page = list_groups(endpoint, session.spec, search=args.search, limit=want, offset=offset,
                                   order_by=args.sort)
                rows += page.rows
                total = page.total
                offset += len(page.rows)
                if not page.has_more or not page.rows:
                    break
            return rows, total

        results = _in_background(session, lambda: _each(servers, fetch))
    finally:
        session.close()
    rows: list[GroupRow] = []
    total = 0
    failed = False
    for server, result in results:
        if isinstance(result, PanelError):
            print(f"panel: {server}: {result}", file=sys.stderr)
            failed = True
            continue
        rows += result[0]
        total += result[1]
    rows.sort(key=key, reverse=descending)
    if args.limit is not None:
        rows = rows[: args.limit]
    if args.json:
        print(json.dumps([row_json(r) for r in rows], indent=2))
    else:
        _print_rows(rows)
        found = f"matching {args.search!r}" if args.search else "in all"
        print(f"{len(rows)} of {total} groups {found} on {', '.join(servers)}.", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def _print_rows(rows: Sequence[GroupRow]) -> None:
    if not rows:
        return
    width = max(12, *(len(r.name) for r in rows[:2000]))
    width = min(width, 40)
    print(f"{'ID':>10}  {'NAME':<{width}}  {'SERVER':<10} {'MEMBERS':>7}  {'CREATED':<16}  {'ROWS':>9}  STATE")
    for r in rows:
        print(f"{r.id:>10}  {r.name[:width]:<{width}}  {r.server:<10} {r.members:>7}  {_when(r.created):<16}  "
              f"{r.data_rows:>9}  {_state_text(r.suspended)}")


# --- show ------------------------------------------------------------------------------------------------


def billing_line(context: PanelContext, group_id: int, cancel: CancelToken) -> str:
    """One line about the group's billing; "Stripe not connected" when Stripe is not set up."""
    try:
        from services import vendors
    except ImportError:
        return "Stripe not connected"
    billing_for_group = getattr(vendors, "billing_for_group", None)
    if billing_for_group is None:
        return "Stripe not connected"
    try:
        billing = billing_for_group(context, group_id, cancel=cancel)
    except PanelError as error:
        if type(error).__name__ == "VendorNotSetUp":
            return "Stripe not connected"
        return f"Stripe: {error}"
    return str(billing.summary)


def history(context: PanelContext, group_id: int, servers: Sequence[str], limit: int = 50) -> list[Any]:
    """The audit entries of the group on every server (a moved group keeps its history), newest first."""
    entries = []
    for server in servers:
        entries += context.store.audit_entries(target=group_target(server, group_id), limit=limit)
    entries.sort(key=lambda e: e.id, reverse=True)
    return entries[:limit]


def detail_json(detail: GroupDetail, billing: str, entries: Sequence[Any]) -> dict[str, Any]:
    return {
        "id": detail.id, "name": detail.name, "server": detail.server, "created": _iso(detail.created),
        "suspended": _iso(detail.suspended), "state": "suspended" if detail.is_suspended else "active",
        "members": [{"user_id": m.user_id, "email": m.email, "name": m.name, "role": m.role,
                     "joined": _iso(m.joined)} for m in detail.members],
        "tables": {t.table: t.rows for t in detail.tables}, "data_rows": detail.data_rows,
        "billing": billing,
        "history": [{"at": e.at.isoformat(), "action": e.action, "target": e.target, "outcome": e.outcome,
                     "detail": e.detail} for e in entries],
    }


def cmd_show(args: argparse.Namespace) -> int:
    from services.groups import group_detail

    session = _open(args)
    try:
        def work() -> tuple[GroupDetail, str, list[Any]]:
            row = one_group(session, args.group, args.server)
            detail = group_detail(session.endpoint(row.server), session.spec, row.id)
            billing = billing_line(session.context, row.id, session.cancel)
            return detail, billing, history(session.context, row.id, session.access.servers())

        detail, billing, entries = _in_background(session, work)
    finally:
        session.close()
    if args.json:
        print(json.dumps(detail_json(detail, billing, entries), indent=2))
        return EXIT_OK
    print(f"Group {detail.id} ({detail.name}) on {detail.server}")
    print(f"  created   {_when(detail.created)} UTC")
    print(f"  state     {_state_text(detail.suspended)}")
    print(f"  billing   {billing}")
    print(f"  members   {len(detail.members)}")
    for m in detail.members:
        print(f"    {m.email:<36} {m.name or '':<24} {m.role or '':<8} {_when(m.joined)}")
    print(f"  rows      {detail.data_rows} in {len(detail.tables)} tables")
    for t in detail.tables:
        print(f"    {t.table:<24} {t.rows:>10}")
    print(f"  history   {len(entries) or 'nothing recorded by this panel'}")
    for e in entries:
        print(f"    {e.at:%Y-%m-%d %H:%M} {e.action:<17} {e.outcome:<9} {e.detail.splitlines()[0] if e.detail else ''}")
    return EXIT_OK


# --- suspend and reactivate ----------------------------------------------------------------------------------


def _set_suspended(args: argparse.Namespace, suspend: bool) -> int:
    from panel.cli import confirm
    from services.groups import reactivate
    from services.groups import suspend as suspend_group

    verb = "suspend" if suspend else "reactivate"
    session = _open(args)
    try:
        row = _in_background(session, lambda: one_group(session, args.group, args.server))
        consequence = ("Its members lose access until it is reactivated." if suspend
                       else "Its members get their access back.")
        question = (f"{verb.capitalize()} group {row.id} ({row.name}) on {row.server}? It is now "
                    f"{_state_text(row.suspended)}. {consequence}")
        if not confirm(question, assume_yes=args.yes):
            print("Nothing was changed.", file=sys.stderr)
            return EXIT_FAILED
        target = group_target(row.server, row.id)
        store = session.context.store
        try:
            function = suspend_group if suspend else reactivate
            state = _in_background(session, lambda: function(session.endpoint(row.server), session.spec, row.id))
        except PanelError as error:
            store.audit(f"group.{verb}", target, "failed", str(error))
            raise
        outcome = "ok" if state.changed else "unchanged"
        text = (f"Group {state.id} ({state.name}) on {state.server} is {_state_text(state.suspended)}"
                + ("." if state.changed else " (it already was; nothing changed)."))
        store.audit(f"group.{verb}", target, outcome, text)
        print(text)
        return EXIT_OK
    finally:
        session.close()


def cmd_suspend(args: argparse.Namespace) -> int:
    return _set_suspended(args, True)


def cmd_reactivate(args: argparse.Namespace) -> int:
    return _set_suspended(args, False)


# --- move ------------------------------------------------------------------------------------------------


class _Progress:
    """Move progress on stderr: one line per step, per table copied and per table removed from the source."""

    def __init__(self) -> None:
        self.printed: set[str] = set()

    def __call__(self, label: str, done: int, total: int) -> None:
        step, _, table = label.partition(" ")
        if not table:  # plan, freeze, copy, verify, switch
            if done == 0:
                print(f"  {step}…", file=sys.stderr, flush=True)
            return
        if label in self.printed or done < total:
            return
        self.printed.add(label)
        if step == "copy":
            print(f"  copied {table}: {done} rows", file=sys.stderr, flush=True)
        else:
            print(f"  removed {table} from the source ({done}/{total} tables)", file=sys.stderr, flush=True)


def move_detail(result: Any) -> str:
    """The audit detail of a finished move: where, what and how long, without any secret."""
    lines = result.summary().splitlines()
    return " ".join(lines[:2])


def cmd_move(args: argparse.Namespace) -> int:
    from panel.cli import confirm
    from services.groups import MoveCancelled, MoveFailed, MoveRefused, move_group, plan_move

    session = _open(args)
    try:
        session.servers([args.to])
        if args.server == args.to:
            print(f"panel: the group cannot move from {args.to} to itself", file=sys.stderr)
            return EXIT_USAGE
        row = _in_background(session, lambda: one_group(session, args.group, args.server, exclude=args.to))
        target = group_target(row.server, row.id)
        store = session.context.store
        source_endpoint = session.endpoint(row.server, long=True)
        target_endpoint = session.endpoint(args.to, long=True)
        try:
            plan = _in_background(session, lambda: plan_move(source_endpoint, target_endpoint, session.spec, row.id))
        except MoveRefused as refused:
            print(str(refused), file=sys.stderr)
            if not args.dry_run:
                store.audit("group.move", target, "refused", f"{row.server} -> {args.to}: {refused}")
            return EXIT_REFUSED
        print(plan.describe())
        if args.dry_run:
            print("Dry run: nothing was changed.", file=sys.stderr)
            return EXIT_OK
        if plan.mode == "done":
            return EXIT_OK
        question = (f"Move group {row.id} ({row.name}) from {row.server} to {args.to}? It is suspended on "
                    f"{row.server} while it is copied (about {plan.estimated_seconds:.0f} s).")
        if not confirm(question, assume_yes=args.yes):
            print("Nothing was changed.", file=sys.stderr)
            return EXIT_FAILED
        progress = _Progress()
        try:
            result = _in_background(session, lambda: move_group(
                source_endpoint, target_endpoint, session.spec, row.id, progress=progress,
                cancel=session.cancel, activate=args.activate))
        except MoveRefused as refused:
            store.audit("group.move", target, "refused", f"{row.server} -> {args.to}: {refused}")
            print(str(refused), file=sys.stderr)
            return EXIT_REFUSED
        except MoveCancelled as cancelled:
            store.audit("group.move", target, "cancelled", f"{row.server} -> {args.to}: {cancelled}")
            print(f"panel: {cancelled}", file=sys.stderr)
            return EXIT_PARTIAL if cancelled.both_copies else EXIT_FAILED
        except MoveFailed as failed:
            store.audit("group.move", target, "failed", f"{row.server} -> {args.to}: {failed}")
            print(f"panel: {failed}", file=sys.stderr)
            return EXIT_PARTIAL
        except Cancelled as cancelled:
            store.audit("group.move", target, "cancelled", f"{row.server} -> {args.to}: {cancelled}")
            print(f"panel: {cancelled}", file=sys.stderr)
            return EXIT_FAILED
        except PanelError as error:
            store.audit("group.move", target, "failed", f"{row.server} -> {args.to}: {error}")
            raise
        store.audit("group.move", target, "ok", move_detail(result))
        print(result.summary())
        return EXIT_OK
    finally:
        session.close()


# --- export ----------------------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    from panel.cli import confirm
    from services.groups import export_group

    out: Path = args.out.expanduser()
    fmt = args.format or ("sql" if out.suffix.lower() == ".sql" else "jsonl")
    if not out.parent.is_dir():
        print(f"panel: the folder {out.parent} does not exist", file=sys.stderr)
        return EXIT_USAGE
    session = _open(args)
    try:
        row = _in_background(session, lambda: one_group(session, args.group, args.server))
        if out.exists() and not confirm(f"{out} exists. Replace it?", assume_yes=args.yes):
            print("Nothing was written.", file=sys.stderr)
            return EXIT_FAILED
        target = group_target(row.server, row.id)
        store = session.context.store
        seen: set[str] = set()

        def progress(table: str, done: int, total: int) -> None:
            if done >= total and table not in seen:
                seen.add(table)
                print(f"  {table}: {done} rows", file=sys.stderr, flush=True)

        try:
            manifest = _in_background(session, lambda: export_group(
                session.endpoint(row.server, long=True), session.spec, row.id, out, format=fmt,  # type: ignore[arg-type]
                progress=progress, cancel=session.cancel))
        except PanelError as error:
            store.audit("group.export", target, "cancelled" if isinstance(error, Cancelled) else "failed",
                        f"to {out}: {error}")
            raise
        text = (f"Exported group {row.id} ({row.name}) from {row.server}: {manifest.total_rows} rows in "
                f"{len(manifest.tables)} tables to {out} ({manifest.file_bytes} bytes, sha256 {manifest.file_sha256}); "
                f"manifest {manifest.manifest_path}.")
        store.audit("group.export", target, "ok", text)
        print(text)
        return EXIT_OK
    finally:
        session.close()


# --- balance ---------------------------------------------------------------------------------------------


def cmd_balance(args: argparse.Namespace) -> int:
    from services.groups import balance

    session = _open(args)
    try:
        servers = session.servers()
        endpoints = [session.endpoint(s) for s in servers]
        report = _in_background(session, lambda: balance(endpoints, session.spec,
                                                         max_suggestions=args.suggestions))
    finally:
        session.close()
    if args.json:
        print(json.dumps({
            "servers": [{"server": s.server, "groups": s.groups, "suspended": s.suspended, "data_rows": s.data_rows}
                        for s in report.servers],
            "suggestions": [{"group_id": m.group_id, "name": m.name, "from": m.source, "to": m.target,
                             "data_rows": m.data_rows} for m in report.suggestions],
            "projected": dict(report.projected),
        }, indent=2))
        return EXIT_OK
    print(f"{'SERVER':<12} {'GROUPS':>8} {'SUSPENDED':>10} {'DATA ROWS':>12}")
    for s in report.servers:
        print(f"{s.server:<12} {s.groups:>8} {s.suspended:>10} {s.data_rows:>12}")
    if not report.suggestions:
        print("The servers are as even as single moves can make them.")
        return EXIT_OK
    print(f"Suggested moves (the spread of rows goes from {report.spread_before} to {report.spread_after}):")
    for m in report.suggestions:
        print(f"  groups move {m.group_id} --to {m.target}    # {m.name}, {m.data_rows} rows, from {m.source}")
    return EXIT_OK
