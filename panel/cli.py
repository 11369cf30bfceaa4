"""The command line: a thin face over ``services`` (DESIGN.md, "Entry points")."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from services.errors import ConfigError, PanelError

if TYPE_CHECKING:
    from panel.context import PanelContext
    from services.probe import ServerStatus

# Heavy modules (paramiko, keyring) are imported by the commands that need them, so that the
# window, which loads them on a worker, paints its first frame quickly.

Handler = Callable[[argparse.Namespace], int]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="panel", description="Operator panel for a small Debian fleet.")
    parser.add_argument("--config", type=Path, help="the inventory (TOML); default: $PANEL_CONFIG or the "
                        "user's config folder")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    status = commands.add_parser("status", help="probe every server once")
    status.add_argument("--json", action="store_true", help="print a JSON list")
    status.set_defaults(handler=cmd_status)

    hostkey = commands.add_parser("hostkey", help="trust an unknown host key after checking its fingerprint")
    hostkey.add_argument("server")
    hostkey.add_argument("--initramfs", action="store_true", help="the key of the initramfs (dropbear)")
    hostkey.add_argument("--fingerprint", help="the SHA256 fingerprint you checked out of band; "
                         "required without a terminal")
    hostkey.set_defaults(handler=cmd_hostkey)

    demo = commands.add_parser("demo", help="start the local demo fleet and open the window on it")
    demo.add_argument("--dir", type=Path, help="where the fleet lives")
    demo.add_argument("--keep", action="store_true", help="leave the fleet running when the window closes")
    demo.set_defaults(handler=cmd_demo)

    _add_optional(commands, "panel.lab.cli", "add_lab_commands")
    for module in ("panel.commands.unlock", "panel.commands.backups", "panel.commands.groups",
                   "panel.commands.check", "panel.commands.vendors"):
        _add_optional(commands, module, "add_commands")
    return parser


def _add_optional(commands: argparse._SubParsersAction[argparse.ArgumentParser], module: str, name: str) -> None:
    """Feature commands register themselves; a feature that is not there yet adds nothing."""
    import importlib

    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name is not None and module.startswith(error.name):
            return
        raise
    getattr(loaded, name)(commands)


def open_context(args: argparse.Namespace) -> PanelContext:
    from panel.config import default_config_path
    from panel.context import PanelContext

    return PanelContext.open(args.config or default_config_path())


def confirm(question: str, *, assume_yes: bool) -> bool:
    """Ask in a terminal; with --yes go ahead; without either, refuse (DESIGN.md)."""
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        print(f"{question}\nRefusing: not a terminal. Pass --yes to do this from a script.", file=sys.stderr)
        return False
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")


def _format_uptime(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    return f"{days}d {hours}h" if days else f"{hours}h {rest // 60}m"


def format_status_line(status: ServerStatus) -> str:
    facts = status.facts
    uptime = _format_uptime(facts.uptime_seconds) if facts else "-"
    load = f"{facts.load[0]:.2f}" if facts and facts.load else "-"
    disk = facts.fullest_disk if facts else None
    disk_text = f"{disk.percent}% {disk.mount}" if disk else "-"
    detail = status.detail
    if status.fingerprint:
        detail = f"offered {status.fingerprint}. {detail}"
    return f"{status.server:<14} {status.state:<18} {uptime:>8} {load:>6}  {disk_text:<16} {detail}"


def cmd_status(args: argparse.Namespace) -> int:
    context = open_context(args)
    try:
        statuses = context.probe_all()
    finally:
        context.close()
    if args.json:
        print(json.dumps([s.to_json() for s in statuses], indent=2))
    else:
        print(f"{'SERVER':<14} {'STATE':<18} {'UPTIME':>8} {'LOAD':>6}  {'FULLEST DISK':<16} DETAIL")
        for status in statuses:
            print(format_status_line(status))
    return EXIT_OK


def cmd_hostkey(args: argparse.Namespace) -> int:
    from services.probe import ServerState

    context = open_context(args)
    try:
        status = context.probe(args.server)
        endpoint = "initramfs" if args.initramfs else "system"
        if status.state is not ServerState.UNKNOWN_HOST_KEY or status.endpoint != endpoint:
            print(f"{args.server}: nothing to trust ({status.state}: {status.detail})", file=sys.stderr)
            return EXIT_FAILED
        print(f"{args.server} ({endpoint}) offers {status.fingerprint}")
        if args.fingerprint:
            if args.fingerprint != status.fingerprint:
                print("That is NOT the fingerprint you gave. Nothing was trusted.", file=sys.stderr)
                context.store.audit("host-key.trust", args.server, "refused", f"{endpoint} fingerprint differs")
                return EXIT_FAILED
        elif not confirm("Trust this key (compare it with your provider's console first)?", assume_yes=False):
            return EXIT_FAILED
        assert status.public_key is not None
        context.trust_host_key(args.server, endpoint, status.public_key)
        print("Trusted and pinned.")
        return EXIT_OK
    finally:
        context.close()


def cmd_demo(args: argparse.Namespace) -> int:
    """Start the demo fleet, open the window on it, and stop the fleet again if we started it."""
    import os

    import keyring

    from panel.lab.cli import default_directory
    from panel.lab.fleet import Lab
    from panel.lab.secrets import DemoKeyring

    lab = Lab(args.dir or default_directory())
    already_running = lab.is_running()
    print("Starting the demo fleet (real sshd, dropbear, MariaDB, rdiff-backup on loopback)…", flush=True)
    info = lab.up()
    print(f"Demo fleet in {lab.directory}. Demo LUKS passphrase: {info.luks_passphrase!r} (public demo data).")
    # The demo's secrets live in memory for this session only, and its store and known_hosts
    # stay beside the fleet, so the user's own panel data is untouched.
    keyring.set_keyring(DemoKeyring())
    os.environ.setdefault("PANEL_DATA_DIR", str(lab.directory / "panel-data"))
    from views.app import run_window

    try:
        return run_window(info.config_path, demo=True)
    finally:
        if not already_running and not args.keep:
            print("Stopping the demo fleet…", flush=True)
            lab.down()


def _window_config(argv: Sequence[str]) -> tuple[bool, Path | None]:
    """Whether argv asks for the window (no command), and its --config. Parsed without the full parser,
    so the window starts without importing every feature's command module."""
    light = argparse.ArgumentParser(add_help=False)
    light.add_argument("--config", type=Path)
    known, rest = light.parse_known_args(list(argv))
    return not rest, known.config


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    wants_window, config = _window_config(argv)
    if wants_window:
        from views.app import run_window

        return run_window(config)
    from panel.logs import setup_logging

    setup_logging()
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as error:
        print(f"panel: config error: {error}", file=sys.stderr)
        return getattr(args, "config_error_exit", EXIT_USAGE)
    except PanelError as error:
        print(f"panel: {error}", file=sys.stderr)
        return getattr(args, "error_exit", EXIT_FAILED)
    except KeyboardInterrupt:
        print("panel: interrupted", file=sys.stderr)
        return 130
