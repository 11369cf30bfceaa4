"""``lab up|reboot|down``: the command-line face of :mod:`panel.lab.fleet`.

The main CLI (``panel/cli.py``) calls :func:`add_lab_commands` on its subparsers; each command
sets ``handler`` to a function that takes the parsed arguments and returns the exit status. It also
runs on its own: ``python -m panel.lab.cli up --dir /tmp/lab``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import platformdirs

from panel.lab.fleet import ALL_PARTS, Lab, LabInfo
from panel.lab.procs import LabError


def default_directory() -> Path:
    return platformdirs.user_state_path("panel") / "lab"


def add_lab_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``lab`` with its ``up``, ``reboot`` and ``down`` commands to an argparse subparsers object."""
    lab = subparsers.add_parser("lab", help="start, reboot or stop the local demo fleet")
    commands = lab.add_subparsers(dest="lab_command", metavar="COMMAND", required=True)

    def with_dir(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser.add_argument(
            "--dir", type=Path, default=None, metavar="DIR", help=f"lab folder (default: {default_directory()})"
        )
        return parser

    up = with_dir(commands.add_parser("up", help="start the fleet and write DIR/panel.toml"))
    up.add_argument("--latency-ms", type=float, default=0.0, metavar="N", help="delay each direction by N ms")
    up.add_argument("--boot-delay", type=float, default=2.0, metavar="S", help="seconds from unlock to sshd")
    up.add_argument(
        "--initramfs-delay",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds before the initramfs takes a passphrase",
    )
    up.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=sorted(ALL_PARTS),
        help="leave out an optional part (repeatable); for quick runs",
    )
    up.set_defaults(handler=run_up)

    reboot = with_dir(commands.add_parser("reboot", help="put a server back into its locked initramfs"))
    reboot.add_argument("server", metavar="SERVER")
    reboot.set_defaults(handler=run_reboot)

    down = with_dir(commands.add_parser("down", help="stop everything the lab started"))
    down.set_defaults(handler=run_down)
    return lab


def _lab(args: argparse.Namespace, **options: Any) -> Lab:
    return Lab(args.dir or default_directory(), **options)


def run_up(args: argparse.Namespace) -> int:
    lab = _lab(
        args,
        latency_ms=args.latency_ms,
        boot_delay=args.boot_delay,
        initramfs_delay=args.initramfs_delay,
        parts=frozenset(ALL_PARTS - set(args.skip)),
    )
    try:
        info = lab.up()
    except LabError as error:
        print(f"lab up failed: {error}", file=sys.stderr)
        return 1
    print(describe(info))
    return 0


def run_reboot(args: argparse.Namespace) -> int:
    lab = _lab(args)
    try:
        lab.reboot(args.server)
        info = lab.info()
    except LabError as error:
        print(f"lab reboot failed: {error}", file=sys.stderr)
        return 1
    server = info.servers[args.server]
    if server.encrypted:
        print(
            f"{server.name} is in its initramfs: dropbear waits on port {server.unlock_port} for the "
            f"passphrase of {', '.join(server.volumes)}."
        )
    else:
        print(f"{server.name} restarted its sshd on port {server.port}.")
    return 0


def run_down(args: argparse.Namespace) -> int:
    lab = _lab(args)
    try:
        lab.down()
    except LabError as error:
        print(f"lab down failed: {error}", file=sys.stderr)
        return 1
    print(f"The lab in {lab.directory} is stopped.")
    return 0


def describe(info: LabInfo) -> str:
    """What ``lab up`` started, for a person. The passphrase shown is public demo data."""
    lines = [f"The lab runs in {info.directory} (started in {info.started_in:.1f} s)."]
    for server in info.servers.values():
        line = f"  {server.name}: sshd on {server.host}:{server.port}"
        if server.encrypted:
            line += f", unlock (dropbear) on port {server.unlock_port}, volumes {', '.join(server.volumes)}"
        if server.mysql_port:
            line += f", MariaDB on port {server.mysql_port}"
        lines.append(line)
    vendors = (("Cloudflare", info.cloudflare_url), ("Stripe", info.stripe_url), ("Mailgun", info.mailgun_url))
    for vendor, url in vendors:
        if url:
            lines.append(f"  {vendor} stand-in: {url}")
    if info.latency_ms:
        lines.append(f"  latency: {info.latency_ms:g} ms each way")
    if info.skipped:
        lines.append(f"  not started (not available yet): {', '.join(info.skipped)}")
    lines += [
        f"Config: {info.config_path}",
        f"Demo LUKS passphrase (public demo data): {info.luks_passphrase}",
        "Demo secrets for the CLI: PYTHON_KEYRING_BACKEND=panel.lab.secrets.DemoKeyring",
    ]
    return "\n".join(lines)


def run_demo_fleet(directory: Path | None = None) -> Path:
    """Start (or find) the demo fleet for ``python -m panel demo``; returns its config path."""
    return Lab(directory or default_directory()).up().config_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m panel.lab.cli")
    add_lab_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["lab", *(argv if argv is not None else sys.argv[1:])])
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
