"""``python -m panel backups``: the rdiff-backup repositories, and verify, restore and remove.

    backups [SERVER] [--json]                       every repository with its sessions (exit 0)
    backups verify SERVER REPO [--at TIME]          exit 0 all files match, 1 problems found
    backups restore SERVER REPO PATH --to DIR [--at TIME] [--overwrite | --keep-existing]
    backups remove-older-than SERVER REPO TIME [--yes]

REPO is the backup's name in the config ("local", "offsite"). TIME is ISO 8601 (no zone means UTC),
a date, epoch seconds, or an age as rdiff-backup spells it (90D, 4W, 6M, 1Y). Times are printed
in ISO 8601 UTC. Listing never fails as a whole: a repository that cannot be read (its host down,
a missing path, no rdiff-backup ...) shows its problem, and the others still print.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from panel.backups import PreparedRestore, RestoreProgress
    from services.backups import Repository

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
ACTIONS = ("verify", "restore", "remove-older-than")

USAGE = """panel backups [SERVER] [--json]
       panel backups verify SERVER REPO [--at TIME] [--json]
       panel backups restore SERVER REPO PATH --to DIR [--at TIME] [--overwrite | --keep-existing]
       panel backups remove-older-than SERVER REPO TIME [--yes]"""


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "backups", usage=USAGE, help="the rdiff-backup repositories and their sessions; verify, restore, remove",
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
        epilog="REPO is the backup's name in the config. TIME: ISO 8601 (no zone means UTC), a date, epoch seconds, "
               "or an age such as 90D, 4W, 6M, 1Y. Times are printed in ISO 8601 UTC.",
    )
    parser.add_argument("words", nargs="*", metavar="ARG",
                        help="[SERVER], or verify|restore|remove-older-than and their arguments")
    parser.add_argument("--json", action="store_true", help="print JSON (listing and verify)")
    parser.add_argument("--at", metavar="TIME", help="the session to verify or restore (default: the newest)")
    parser.add_argument("--to", type=Path, metavar="DIR", help="restore: the local folder to restore into")
    conflict = parser.add_mutually_exclusive_group()
    conflict.add_argument("--overwrite", action="store_true",
                          help="restore: replace local files that are in the way")
    conflict.add_argument("--keep-existing", action="store_true",
                          help="restore: keep local files that are in the way, restore the rest")
    parser.add_argument("--yes", action="store_true", help="remove-older-than: go ahead without asking")
    parser.add_argument("--no-sizes", action="store_true",
                        help="listing: skip rdiff-backup's --size walk of the mirror (faster on big repositories)")
    parser.set_defaults(handler=cmd_backups)


def _usage_error(message: str) -> int:
    print(f"usage: {USAGE}\npanel backups: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def cmd_backups(args: argparse.Namespace) -> int:
    words: list[str] = list(args.words)
    action = words[0] if words and words[0] in ACTIONS else "list"
    rest = words[1:] if action != "list" else words
    wrong = [flag for flag, given, allowed in (
        ("--at", args.at is not None, ("verify", "restore")),
        ("--to", args.to is not None, ("restore",)),
        ("--overwrite", args.overwrite, ("restore",)),
        ("--keep-existing", args.keep_existing, ("restore",)),
        ("--yes", args.yes, ("remove-older-than",)),
        ("--json", args.json, ("list", "verify")),
        ("--no-sizes", args.no_sizes, ("list",)),
    ) if given and action not in allowed]
    if wrong:
        return _usage_error(f"{', '.join(wrong)} does not go with {'listing' if action == 'list' else action}")
    expected = {"list": (0, 1), "verify": (2, 2), "restore": (3, 3), "remove-older-than": (3, 3)}[action]
    if not expected[0] <= len(rest) <= expected[1]:
        return _usage_error(f"wrong number of arguments for {'listing' if action == 'list' else action}")
    if action == "restore" and args.to is None:
        return _usage_error("restore needs --to DIR (a folder on this laptop)")

    from panel.cli import open_context

    context = open_context(args)
    try:
        if action == "list":
            return _list(context, rest[0] if rest else None, as_json=args.json, with_sizes=not args.no_sizes)
        if action == "verify":
            return _verify(context, rest[0], rest[1], args.at, as_json=args.json)
        if action == "restore":
            return _restore(context, rest[0], rest[1], rest[2], args.to, args.at, overwrite=args.overwrite,
                            keep=args.keep_existing)
        return _remove(context, rest[0], rest[1], rest[2], assume_yes=args.yes)
    finally:
        context.close()


# --- listing -----------------------------------------------------------------------------------------------


def _list(context: Any, server: str | None, *, as_json: bool, with_sizes: bool) -> int:
    from panel.backups import read_all

    repositories = read_all(context, server, with_sizes=with_sizes)
    if as_json:
        print(json.dumps([repository.to_json() for repository in repositories], indent=2))
    else:
        if not repositories:
            where = f"{server} has" if server else "The config has"
            print(f"{where} no backups configured ([[servers.NAME.backups]] in the config).")
        print("\n".join(line for repository in repositories for line in format_repository(repository)))
    return EXIT_OK


def format_repository(repository: Repository) -> list[str]:
    """A repository as text: a heading, its state, its problem and notes, and a table of its sessions."""
    from panel.backups import human_age, human_size, label
    from services.backups.models import iso_utc

    state = {"fresh": "fresh", "stale": "STALE", "unknown": "UNREADABLE"}[repository.freshness]
    if repository.needs_regress:
        state += ", NEEDS REGRESS"
    lines = [f"{label(repository)}  [{state}]  {repository.path} on {repository.where}"]
    if repository.sessions:
        newest, oldest = repository.newest, repository.oldest
        assert newest is not None and oldest is not None
        errors = repository.last_errors
        lines.append(
            f"  {len(repository.sessions)} session(s) from {iso_utc(oldest)} to {iso_utc(newest)}; newest "
            f"{human_age(repository.age_hours)} old (max {repository.max_age_hours:g} h); "
            f"{human_size(repository.total_size)} in all; last session: "
            f"{'?' if errors is None else errors} error(s)"
        )
    if repository.problem:
        lines.append(f"  problem: {repository.problem}")
    for note in repository.notes:
        lines.append(f"  note: {note}")
    if repository.error_lines:
        when = iso_utc(repository.error_log_time) if repository.error_log_time else "?"
        lines.append(f"  error log of {when} ({repository.error_lines_total} line(s)):")
        lines += [f"    {line}" for line in repository.error_lines[:10]]
        if repository.error_lines_total > 10:
            lines.append(f"    … {repository.error_lines_total - 10} more line(s); --json shows the first "
                         f"{len(repository.error_lines)}")
    if repository.sessions:
        lines.append(f"  {'TIME (UTC)':<22} {'KIND':<11} {'SIZE':>10} {'TO RESTORE':>11} {'INCREMENT':>10} "
                     f"{'ERRORS':>6}")
        for session in repository.sessions:
            kind = "mirror" if session.is_mirror else "increment" if session.listed is not False else "no changes"
            approx = "~" if session.sizes_approximate else ""
            lines.append(
                f"  {iso_utc(session.time):<22} {kind:<11} {approx + human_size(session.size) if session.size is not None else '':>10} "  # noqa: E501
                f"{human_size(session.cumulative_size) if session.cumulative_size is not None else '':>11} "
                f"{human_size(session.increment_size) if session.increment_size is not None else '':>10} "
                f"{'' if session.errors is None else session.errors:>6}"
            )
    lines.append("")
    return lines


# --- verify ------------------------------------------------------------------------------------------------


def _verify(context: Any, server: str, name: str, at_text: str | None, *, as_json: bool) -> int:
    from panel.backups import find_target, label, parse_time, verify_repository
    from services.backups.models import iso_utc, jsonable

    target = find_target(context, server, name)
    at = parse_time(at_text) if at_text else None
    result = verify_repository(context, target, at, progress=lambda text: print(text, file=sys.stderr))
    if as_json:
        print(json.dumps({"repository": label(target), **jsonable(result)}, indent=2))
    else:
        when = "the newest backup" if at is None else iso_utc(at)
        if result.ok:
            print(f"{label(target)}: every file of {when} matches its recorded checksum.")
        else:
            print(f"{label(target)}: verifying {when} found {len(result.problems)} problem(s):")
            for problem in result.problems:
                print(f"  {problem}")
    print("The result is in the audit log.", file=sys.stderr)
    return EXIT_OK if result.ok else EXIT_FAILED


# --- restore -----------------------------------------------------------------------------------------------


class _TerminalProgress:
    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.shown = False

    def __call__(self, progress: RestoreProgress) -> None:
        if not self.tty:
            return
        from panel.backups import human_size

        sys.stderr.write(f"\r  {human_size(progress.done_bytes)} of {human_size(progress.total_bytes)} "
                         f"({progress.files_done}/{progress.files_total} files) {progress.fraction * 100:3.0f}%  ")
        sys.stderr.flush()
        self.shown = True

    def end(self) -> None:
        if self.shown:
            sys.stderr.write("\n")


def _restore(context: Any, server: str, name: str, path: str, to: Path, at_text: str | None, *, overwrite: bool,
             keep: bool) -> int:
    from panel.backups import discard_restore, find_target, finish_restore, human_size, parse_time, prepare_restore
    from panel.cli import confirm

    target = find_target(context, server, name)
    at = parse_time(at_text) if at_text else None
    print(f"Restoring /{path.strip('/')} from {server}/{name} on {target.host} …", file=sys.stderr)
    prepared = prepare_restore(context, target, path, at, to)
    choice = "overwrite" if overwrite else "skip" if keep else "refuse"
    if prepared.conflicts and choice == "refuse":
        _show_conflicts(prepared)
        if sys.stdin.isatty() and confirm("Overwrite these local files?", assume_yes=False):
            choice = "overwrite"
        else:
            discard_restore(context, prepared)
            print("Nothing was restored. Pass --overwrite to replace them, --keep-existing to keep them and "
                  "restore the rest, or choose another --to folder.", file=sys.stderr)
            return EXIT_FAILED
    progress = _TerminalProgress()
    try:
        outcome = finish_restore(context, prepared, on_conflict=choice, progress=progress)  # type: ignore[arg-type]
    finally:
        progress.end()
    kept = f"; kept {len(outcome.kept)} existing local file(s)" if outcome.kept else ""
    print(f"Restored to {outcome.local_root}: {len(outcome.written)} file(s), {human_size(outcome.bytes)}{kept}.")
    for note in outcome.notes:
        print(f"  note: {note}", file=sys.stderr)
    return EXIT_OK


def _show_conflicts(prepared: PreparedRestore) -> None:
    print(f"{len(prepared.conflicts)} local file(s) are in the way:", file=sys.stderr)
    for path in prepared.conflicts[:30]:
        print(f"  {path}", file=sys.stderr)
    if len(prepared.conflicts) > 30:
        print(f"  … and {len(prepared.conflicts) - 30} more", file=sys.stderr)


# --- remove ------------------------------------------------------------------------------------------------


def _remove(context: Any, server: str, name: str, time_text: str, *, assume_yes: bool) -> int:
    from panel.backups import find_target, label, parse_time, plan_removal, remove_sessions, session_line
    from panel.cli import confirm
    from services.backups.models import iso_utc

    target = find_target(context, server, name)
    older_than = parse_time(time_text)
    plan = plan_removal(context, target, older_than)
    if not plan:
        print(f"{label(target)}: no session is older than {iso_utc(older_than)}; nothing to remove.")
        return EXIT_OK
    print(f"{label(target)}: these {len(plan)} session(s) are older than {iso_utc(older_than)} and would be "
          "removed (the newer ones and the mirror stay):")
    for session in plan:
        print(f"  {session_line(session)}")
    if not confirm(f"Remove these {len(plan)} session(s) from {label(target)}? This cannot be undone.",
                   assume_yes=assume_yes):
        print("Nothing was removed.", file=sys.stderr)
        return EXIT_FAILED
    result = remove_sessions(context, target, older_than, plan)
    print(f"Removed {len(result.removed)} session(s) from {label(target)}; written to the audit log.")
    return EXIT_OK
