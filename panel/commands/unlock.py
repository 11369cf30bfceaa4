"""``unlock`` and ``unlock-setup``: the command-line face of :mod:`services.unlock`.

    python -m panel unlock SERVER [--passphrase-stdin] [--wait SECONDS] [--reboot [--yes]]
    python -m panel unlock-setup SERVER [--pin] [--fix] [--yes] [--root DIR]

Exit statuses of ``unlock`` (DESIGN.md): 0 unlocked and up (or already up), 3 host key refused
(the offered fingerprint is printed), 4 wrong passphrase (or no tries left), 5 timed out; 1 for
anything else. The helpers below (passphrases from the keyring, requests, audit, pinning, the
auto-unlock preference) are shared with the window.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import sys
import time
from collections.abc import Callable

from panel.config import set_server_key
from panel.context import PanelContext
from panel.secrets import SecretStore, luks_entry
from panel.store import Store
from services.errors import Cancelled, HostKeyError, HostKeyMismatch, PanelError, SecretUnavailable
from services.hostkeys import PublicKey, trusted_keys
from services.unlock import (
    DEFAULT_INSTALL_COMMAND,
    DEFAULT_UPDATE_COMMAND,
    InitramfsKey,
    InitramfsPaths,
    Outcome,
    PassphraseProvider,
    SetupReport,
    TooManyTries,
    UnlockOptions,
    UnlockProgress,
    UnlockRequest,
    UnlockResult,
    UnlockTimeout,
    WrongPassphrase,
    apply_setup_fix,
    check_setup,
    panel_public_key,
    plan_setup_fix,
    preferred_key,
    read_initramfs_host_keys,
    reboot_and_unlock,
    unlock_server,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_HOST_KEY = 3
EXIT_WRONG_PASSPHRASE = 4
EXIT_TIMEOUT = 5

DEFAULT_WAIT = 300.0
AUTO_UNLOCK_KEY = "unlock.auto.{server}"


# --- shared with the window ------------------------------------------------------------------------


def keyring_passphrase(secrets: SecretStore, server: str, volume: str | None) -> str | None:
    """``SERVER/luks/VOLUME`` first (when the volume is named), then ``SERVER/luks``."""
    if volume:
        value = secrets.get(luks_entry(server, volume))
        if value:
            return value
    value = secrets.get(luks_entry(server))
    return value or None


def has_keyring_passphrase(secrets: SecretStore, server: str, volumes: tuple[str, ...]) -> bool:
    return all(keyring_passphrase(secrets, server, volume) is not None for volume in (volumes or (None,)))


def volumes_differ(secrets: SecretStore, server: str, volumes: tuple[str, ...]) -> bool:
    """True when the keyring holds different passphrases for this server's volumes. The procedure then
    waits for cryptroot-unlock to name the disk before sending, so a volume never gets another's."""
    if len(volumes) < 2:
        return False
    values = {keyring_passphrase(secrets, server, volume) for volume in volumes}
    values.discard(None)
    differ = len(values) > 1
    values.clear()
    return differ


def unlock_options(context: PanelContext, server: str, *, wait: float = DEFAULT_WAIT,
                   reboot_command: str = UnlockOptions.reboot_command) -> UnlockOptions:
    """Options for one server: the passphrase goes with the command unless its volumes' differ."""
    spec = context.spec(server)
    send_first = not volumes_differ(context.secrets, server, spec.unlock_volumes)
    return UnlockOptions(wait_seconds=wait, send_before_prompt=send_first, reboot_command=reboot_command)


def unlock_request(context: PanelContext, server: str, passphrase: PassphraseProvider, *,
                   went_down_at: dt.datetime | None = None) -> UnlockRequest:
    spec = context.spec(server)
    initramfs = context.initramfs_endpoint(server)
    if initramfs is None:
        raise PanelError(f"{server} has no unlock_port in {context.config_path}: its disk is not encrypted, "
                         "or the unlock port is not configured.")
    return UnlockRequest(spec, context.system_endpoint(server), initramfs, passphrase, went_down_at)


def outcome_of(error: BaseException) -> str:
    if isinstance(error, HostKeyError):
        return "refused"
    if isinstance(error, Cancelled):
        return "cancelled"
    if isinstance(error, UnlockTimeout):
        return "timeout"
    return "failed"


def audit_unlock(store: Store, server: str, result: UnlockResult | None = None, error: BaseException | None = None,
                 *, action: str = "unlock", via: str = "") -> None:
    """One audit entry per outcome. The detail names volumes, steps and times; never a passphrase."""
    suffix = f" ({via})" if via else ""
    if result is not None:
        outcome = "ok" if result.outcome is not Outcome.ALREADY_UP else "nothing-to-do"
        detail = result.summary()
        if result.timeline.summary():
            detail += f" Timeline: {result.timeline.summary()}."
        store.audit(action, server, outcome, detail + suffix)
        return
    assert error is not None
    detail = f"{error.__class__.__name__}: {error}"
    timeline = getattr(error, "timeline", None)
    if timeline is not None and timeline.summary():
        detail += f" Timeline: {timeline.summary()}."
    store.audit(action, server, outcome_of(error), detail + suffix)


def pin_initramfs_key(context: PanelContext, server: str, key: InitramfsKey) -> bool:
    """Pin an initramfs key read through the verified system session (config ``unlock_host_key``).
    Returns False if it was pinned already. A different existing pin is never replaced here."""
    initramfs = context.initramfs_endpoint(server)
    if initramfs is None:
        raise PanelError(f"{server} has no unlock_port, so it has no initramfs key to pin.")
    trusted = trusted_keys(initramfs.trust, initramfs.host, initramfs.port)
    spec = context.spec(server)
    if trusted and key.key not in trusted:
        context.store.audit("unlock.pin", server, "refused",
                            f"the server's initramfs key {key.key.fingerprint} differs from the trusted "
                            f"{', '.join(k.fingerprint for k in trusted)}")
        raise PanelError(
            f"{server}'s initramfs key on disk ({key.key.key_type} {key.key.fingerprint}, {key.path}) differs "
            f"from the one the panel trusts ({', '.join(k.fingerprint for k in trusted)}). Nothing was changed. "
            "If the key was changed on purpose (and update-initramfs -u has run), replace the pin in Settings.")
    if spec.unlock_host_key and PublicKey.parse(spec.unlock_host_key) == key.key:
        return False
    set_server_key(context.config_path, server, "unlock_host_key", key.line())
    context.reload()
    context.pool.drop(initramfs)
    context.store.audit("unlock.pin", server, "ok",
                        f"initramfs key {key.key.key_type} {key.key.fingerprint} pinned, read from {key.path} "
                        "through the verified system session")
    return True


def auto_unlock_enabled(store: Store, server: str) -> bool:
    return store.get_value(AUTO_UNLOCK_KEY.format(server=server)) == "1"


def set_auto_unlock(store: Store, server: str, enabled: bool) -> None:
    store.set_value(AUTO_UNLOCK_KEY.format(server=server), "1" if enabled else "0")
    store.audit("unlock.auto", server, "ok", "auto-unlock on sight turned " + ("on" if enabled else "off"))


# --- the commands ------------------------------------------------------------------------------------


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    unlock = commands.add_parser(
        "unlock", help="send the disk passphrase to a server waiting in its initramfs, and wait until it is up",
        description="Unlock a server's encrypted disk(s) over SSH and follow it until its system answers. "
                    "Exit: 0 unlocked and up, 3 host key refused, 4 wrong passphrase, 5 timed out, 1 other.")
    unlock.add_argument("server", metavar="SERVER")
    unlock.add_argument("--passphrase-stdin", action="store_true",
                        help="read the passphrase from standard input (at most one trailing newline is removed)")
    unlock.add_argument("--wait", type=float, default=DEFAULT_WAIT, metavar="SECONDS",
                        help=f"give up after this long, unlocked and up or not (default {DEFAULT_WAIT:g})")
    unlock.add_argument("--reboot", action="store_true",
                        help="reboot the server first, then unlock it as soon as its initramfs appears")
    unlock.add_argument("--reboot-command", default=UnlockOptions.reboot_command, metavar="COMMAND",
                        help="how to reboot (default: %(default)s)")
    unlock.add_argument("--yes", action="store_true", help="do not ask before rebooting (for scripts)")
    unlock.add_argument("--quiet", "-q", action="store_true", help="print only the result")
    unlock.set_defaults(handler=cmd_unlock)

    setup = commands.add_parser(
        "unlock-setup", help="check remote unlock on a running server; --fix repairs it, --pin pins its key")
    setup.add_argument("server", metavar="SERVER")
    setup.add_argument("--fix", action="store_true", help="fix what is missing (shows the change, then asks)")
    setup.add_argument("--pin", action="store_true",
                       help="pin the initramfs host key read from the running system (asks)")
    setup.add_argument("--yes", action="store_true", help="do not ask (for scripts)")
    setup.add_argument("--root", default="/", metavar="DIR",
                       help="prefix of the server's /etc/dropbear paths (default /; the lab uses DIR/servers/NAME)")
    setup.add_argument("--install-command", default=DEFAULT_INSTALL_COMMAND, help=argparse.SUPPRESS)
    setup.add_argument("--update-command", default=DEFAULT_UPDATE_COMMAND, help=argparse.SUPPRESS)
    setup.set_defaults(handler=cmd_unlock_setup)


class _TerminalPassphrases:
    """The keyring's entry, else (in a terminal) getpass, once per volume and run."""

    def __init__(self, secrets: SecretStore, server: str, *, interactive: bool) -> None:
        self.secrets = secrets
        self.server = server
        self.interactive = interactive
        self._typed: dict[str | None, str] = {}

    def __call__(self, volume: str | None) -> str:
        value = keyring_passphrase(self.secrets, self.server, volume)
        if value is not None:
            return value
        if volume in self._typed:
            return self._typed[volume]
        if not self.interactive:
            raise SecretUnavailable(_no_passphrase_message(self.secrets, self.server, volume))
        what = f"{self.server}, volume {volume}" if volume else self.server
        typed = getpass.getpass(f"Disk passphrase for {what}: ")
        if not typed:
            raise SecretUnavailable("No passphrase was typed; nothing was sent.")
        self._typed[volume] = typed
        return typed

    def forget(self) -> None:
        self._typed.clear()


def _no_passphrase_message(secrets: SecretStore, server: str, volume: str | None) -> str:
    entry = luks_entry(server, volume) if volume else luks_entry(server)
    status = secrets.status()
    keyring_text = "" if status.can_remember else f" ({status.message})"
    return (f"No passphrase for {server}: the keyring has no entry {entry!r}{keyring_text}, and standard input "
            "is not a terminal to ask on. Pipe it in with --passphrase-stdin, or store it with "
            f"`keyring set panel {entry}`. Nothing was sent.")


def _read_stdin_passphrase() -> bytearray:
    data = bytearray(sys.stdin.buffer.read())
    if data.endswith(b"\n"):
        del data[-1:]  # at most one newline: the one `echo` or a here-string adds
    return data


def _printer(quiet: bool) -> Callable[[UnlockProgress], None]:
    started = time.monotonic()

    def show(event: UnlockProgress) -> None:
        if quiet:
            return
        volume = f" [{event.volume}]" if event.volume else ""
        print(f"{time.monotonic() - started:6.2f}s  {event.step:<10}{volume} {event.message}", file=sys.stderr,
              flush=True)

    return show


def cmd_unlock(args: argparse.Namespace) -> int:
    from panel.cli import confirm, open_context

    secret: bytearray | None = None
    if args.passphrase_stdin:
        secret = _read_stdin_passphrase()
        if not secret:
            print("panel: the passphrase on standard input is empty; nothing was sent.", file=sys.stderr)
            return EXIT_FAILED
    context = open_context(args)
    server = args.server
    terminal: _TerminalPassphrases | None = None
    try:
        spec = context.spec(server)
        provider: PassphraseProvider
        if secret is not None:
            stdin_secret = secret

            def from_stdin(volume: str | None) -> bytes:
                return bytes(stdin_secret)

            provider = from_stdin
        else:
            terminal = _TerminalPassphrases(context.secrets, server, interactive=sys.stdin.isatty())
            if not terminal.interactive and not has_keyring_passphrase(context.secrets, server, spec.unlock_volumes):
                missing = next((v for v in (spec.unlock_volumes or (None,))
                                if keyring_passphrase(context.secrets, server, v) is None), None)
                print(f"panel: {_no_passphrase_message(context.secrets, server, missing)}", file=sys.stderr)
                context.store.audit("unlock", server, "refused", "no passphrase: not in the keyring, no terminal")
                return EXIT_FAILED
            provider = terminal
        request = unlock_request(context, server, provider)
        options = unlock_options(context, server, wait=args.wait, reboot_command=args.reboot_command)
        if args.reboot:
            if not confirm(f"Reboot {server} now ({args.reboot_command}) and unlock it when its initramfs "
                           "appears?", assume_yes=args.yes):
                context.store.audit("reboot", server, "refused", "not confirmed")
                return EXIT_FAILED
            context.store.audit("reboot", server, "ok", f"{args.reboot_command}, then unlock (command line)")
        try:
            if args.reboot:
                result = reboot_and_unlock(context.pool, request, options, progress=_printer(args.quiet))
            else:
                result = unlock_server(context.pool, request, options, progress=_printer(args.quiet))
        except HostKeyError as error:
            audit_unlock(context.store, server, error=error, via="command line")
            print(f"panel: {error}", file=sys.stderr)
            print(f"offered: {error.key_type} {error.fingerprint}")
            if isinstance(error, HostKeyMismatch):
                print(f"expected: {', '.join(error.expected_fingerprints)}")
            print("Nothing was sent.")
            return EXIT_HOST_KEY
        except (WrongPassphrase, TooManyTries) as error:
            audit_unlock(context.store, server, error=error, via="command line")
            print(f"panel: {error}", file=sys.stderr)
            return EXIT_WRONG_PASSPHRASE
        except UnlockTimeout as error:
            audit_unlock(context.store, server, error=error, via="command line")
            print(f"panel: {error}", file=sys.stderr)
            return EXIT_TIMEOUT
        except (PanelError, KeyboardInterrupt) as error:
            audit_unlock(context.store, server, error=error if isinstance(error, PanelError) else Cancelled(),
                         via="command line")
            raise
        audit_unlock(context.store, server, result, via="command line")
        print(result.summary())
        if result.outcome is not Outcome.ALREADY_UP:
            print("\n".join(result.timeline.lines()))
        return EXIT_OK
    finally:
        if secret is not None:
            secret[:] = bytes(len(secret))
        if terminal is not None:
            terminal.forget()
        context.close()


def print_report(report: SetupReport) -> None:
    for item in report.items():
        print(f"  [{'ok' if item.ok else '!!'}] {item.name}: {item.detail}")


def cmd_unlock_setup(args: argparse.Namespace) -> int:
    from panel.cli import confirm, open_context

    context = open_context(args)
    server = args.server
    try:
        initramfs = context.initramfs_endpoint(server)
        if initramfs is None:
            print(f"panel: {server} has no unlock_port: its disk is not encrypted.", file=sys.stderr)
            return EXIT_FAILED
        runner = context.runner(server)
        paths = InitramfsPaths(root=args.root)
        if args.pin:
            key = preferred_key(read_initramfs_host_keys(runner, paths))
            if key is None:
                print(f"panel: no initramfs host key was found on {server} under {', '.join(paths.dirs())}.",
                      file=sys.stderr)
                return EXIT_FAILED
            print(f"{server}'s initramfs key, read through its verified session: {key.key.key_type} "
                  f"{key.key.fingerprint} ({key.path})")
            if not confirm("Pin it as unlock_host_key in the config?", assume_yes=args.yes):
                return EXIT_FAILED
            changed = pin_initramfs_key(context, server, key)
            print("Pinned." if changed else "It was pinned already.")
            return EXIT_OK
        report = check_setup(runner, initramfs, panel_key=panel_public_key(context.system_endpoint(server)),
                             paths=paths)
        print(f"Remote unlock setup of {server}:")
        print_report(report)
        if not args.fix:
            return EXIT_OK if report.ok else EXIT_FAILED
        fix = plan_setup_fix(report, install_command=args.install_command, update_command=args.update_command)
        if fix is None:
            print("Nothing to fix.")
            return EXIT_OK
        print("\nThe fix:\n" + fix.preview())
        if not confirm(f"Apply this to {server}?", assume_yes=args.yes):
            context.store.audit("unlock.setup", server, "refused", "not confirmed")
            return EXIT_FAILED
        try:
            apply_setup_fix(runner, fix)
        except PanelError as error:
            context.store.audit("unlock.setup", server, "failed", f"{'; '.join(fix.steps)}: {error}")
            raise
        context.store.audit("unlock.setup", server, "ok", "; ".join(fix.steps))
        if fix.pin:
            key = preferred_key(read_initramfs_host_keys(runner, paths))
            if key is not None:
                pin_initramfs_key(context, server, key)
        report = check_setup(runner, context.initramfs_endpoint(server) or initramfs,
                             panel_key=report.panel_key, paths=paths)
        print("\nAfter the fix:")
        print_report(report)
        return EXIT_OK if report.ok else EXIT_FAILED
    finally:
        context.close()
