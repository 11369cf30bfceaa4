"""Setting up remote unlock, read and fixed through the running system's verified session.

- Which initramfs host keys the server has (``dropbearkey -y`` on each ``dropbear_*_host_key``), so
  the panel can pin the initramfs key while the server is up and trusted: no first-use trust at boot.
- Whether dropbear-initramfs is installed, whether its ``authorized_keys`` holds the panel's key
  with the recommended restrictions, and whether the initramfs key is pinned.
- A fix for what is missing, as one shell script the operator sees before it runs.

The paths are parameters with Debian's defaults (bookworm's ``/etc/dropbear/initramfs`` and the
older ``/etc/dropbear-initramfs``); ``root`` prefixes them (the lab keeps each server's files in a
folder of its own).
"""

from __future__ import annotations

import posixpath
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from services.cancel import NEVER_CANCELLED, CancelToken
from services.errors import PanelError, RemoteCommandError
from services.hostkeys import PublicKey, trusted_keys
from services.probe import split_sections
from services.runner import CommandRunner
from services.ssh.endpoint import SshEndpoint

RECOMMENDED_OPTIONS: tuple[str, ...] = (
    "no-port-forwarding",
    "no-agent-forwarding",
    "no-X11-forwarding",
    'command="/usr/bin/cryptroot-unlock"',
)
DEFAULT_INSTALL_COMMAND = "DEBIAN_FRONTEND=noninteractive apt-get install -y dropbear-initramfs"
DEFAULT_UPDATE_COMMAND = "update-initramfs -u"
_KEY_PREFERENCE = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")


@dataclass(frozen=True)
class InitramfsPaths:
    root: str = "/"
    config_dirs: tuple[str, ...] = ("/etc/dropbear/initramfs", "/etc/dropbear-initramfs")
    package: str = "dropbear-initramfs"

    def dirs(self) -> list[str]:
        return [posixpath.join(self.root, folder.lstrip("/")) for folder in self.config_dirs]


@dataclass(frozen=True)
class InitramfsKey:
    path: str  # the private key file on the server (only its public half is ever read out)
    key: PublicKey

    def line(self) -> str:
        return self.key.line()


def _keys_script(dirs: list[str]) -> str:
    lines = []
    for folder in dirs:
        lines.append(f'for f in {shlex.quote(folder)}/dropbear_*_host_key; do [ -f "$f" ] || continue; '
                     'echo "key-file $f"; dropbearkey -y -f "$f" 2>/dev/null | grep "^ssh-\\|^ecdsa-"; done')
    return "\n".join(lines) + "\n"


def _parse_keys(lines: list[str]) -> list[InitramfsKey]:
    keys: list[InitramfsKey] = []
    current: str | None = None
    for line in lines:
        if line.startswith("key-file "):
            current = line[len("key-file "):].strip()
        elif current is not None and line.strip():
            try:
                keys.append(InitramfsKey(current, PublicKey.parse(line)))
            except PanelError:
                continue
    return keys


def read_initramfs_host_keys(
    runner: CommandRunner,
    paths: InitramfsPaths = InitramfsPaths(),
    *,
    timeout: float = 30.0,
    cancel: CancelToken = NEVER_CANCELLED,
) -> list[InitramfsKey]:
    """The public halves of the initramfs host keys, derived on the server (one round trip)."""
    result = runner.run_script(_keys_script(paths.dirs()), timeout=timeout, cancel=cancel)
    return _parse_keys(result.text().splitlines())


def preferred_key(keys: list[InitramfsKey]) -> InitramfsKey | None:
    """The key to pin: ed25519 first, as the panel's SSH layer prefers it."""
    ranked = sorted(keys, key=lambda k: _KEY_PREFERENCE.index(k.key.key_type)
                    if k.key.key_type in _KEY_PREFERENCE else len(_KEY_PREFERENCE))
    return ranked[0] if ranked else None


# --- the panel's own key -------------------------------------------------------------------------------


def panel_public_key(endpoint: SshEndpoint) -> PublicKey | None:
    """The public key the panel logs in with: the first identity file's (its .pub, or derived), else
    the agent's first key."""
    for path in endpoint.identities:
        public = Path(f"{path}.pub")
        try:
            return PublicKey.parse(public.read_text(encoding="utf-8"))
        except (OSError, PanelError):
            pass
        try:
            key = paramiko.PKey.from_path(path)
        except (OSError, paramiko.SSHException, ValueError):
            continue
        return PublicKey(key.get_name(), key.asbytes())
    if endpoint.use_agent:
        try:
            agent_keys = paramiko.Agent().get_keys()
        except paramiko.SSHException:
            agent_keys = ()
        if agent_keys:
            return PublicKey(agent_keys[0].get_name(), agent_keys[0].asbytes())
    return None


# --- authorized_keys ---------------------------------------------------------------------------------


def split_authorized_line(line: str) -> tuple[tuple[str, ...], str] | None:
    """``(options, "type base64")`` of one authorized_keys line, or None for blanks and comments."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    options_text = ""
    rest = text
    if not text.startswith(("ssh-", "ecdsa-", "sk-")):
        # Options: up to the first space outside double quotes.
        quoted = False
        for position, char in enumerate(text):
            if char == '"' and (position == 0 or text[position - 1] != "\\"):
                quoted = not quoted
            elif char in " \t" and not quoted:
                options_text, rest = text[:position], text[position:].strip()
                break
        else:
            return None
    options: list[str] = []
    current = ""
    quoted = False
    for char in options_text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            options.append(current)
            current = ""
        else:
            current += char
    if current:
        options.append(current)
    parts = rest.split()
    if len(parts) < 2:
        return None
    return tuple(options), f"{parts[0]} {parts[1]}"


@dataclass(frozen=True)
class AuthorizedEntry:
    options: tuple[str, ...]
    key: PublicKey

    @property
    def missing_options(self) -> tuple[str, ...]:
        have = {option.strip().lower() for option in self.options}
        return tuple(option for option in RECOMMENDED_OPTIONS if option.lower() not in have)


def find_authorized(text: str, key: PublicKey) -> AuthorizedEntry | None:
    for line in text.splitlines():
        parsed = split_authorized_line(line)
        if parsed is None:
            continue
        options, key_text = parsed
        try:
            found = PublicKey.parse(key_text)
        except PanelError:
            continue
        if found == key:
            return AuthorizedEntry(options, found)
    return None


def authorized_line(key: PublicKey) -> str:
    return f"{','.join(RECOMMENDED_OPTIONS)} {key.line()} operator-panel"


# --- the check -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetupItem:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class SetupReport:
    server: str
    package: str
    package_installed: bool
    config_dir: str  # where authorized_keys lives (or would): the first folder that exists
    config_dir_exists: bool
    panel_key: PublicKey | None
    authorized: AuthorizedEntry | None
    host_keys: tuple[InitramfsKey, ...]
    pinned: tuple[PublicKey, ...]  # the keys trusted for the initramfs (config pin or known_hosts)
    paths: InitramfsPaths = field(default_factory=InitramfsPaths)

    @property
    def key_pinned(self) -> bool:
        return bool(self.pinned)

    @property
    def pin_matches(self) -> bool | None:
        """Does a key on disk match the pin? None when there is nothing to compare."""
        if not self.pinned or not self.host_keys:
            return None
        return any(k.key in self.pinned for k in self.host_keys)

    @property
    def authorized_ok(self) -> bool:
        return self.authorized is not None and not self.authorized.missing_options

    def items(self) -> list[SetupItem]:
        package = SetupItem(
            f"{self.package} installed", self.package_installed,
            "installed" if self.package_installed else f"{self.package} is not installed.")
        if self.panel_key is None:
            keys = SetupItem("authorized_keys holds the panel's key", False,
                             "The panel has no public key to look for (no identity file, no ssh-agent key).")
        elif self.authorized is None:
            keys = SetupItem("authorized_keys holds the panel's key", False,
                             f"{posixpath.join(self.config_dir, 'authorized_keys')} does not hold the panel's key "
                             f"({self.panel_key.fingerprint}).")
        elif self.authorized.missing_options:
            keys = SetupItem("authorized_keys holds the panel's key", False,
                             "The panel's key is there, but without " + ",".join(self.authorized.missing_options))
        else:
            keys = SetupItem("authorized_keys holds the panel's key", True,
                             "with " + ",".join(RECOMMENDED_OPTIONS))
        if not self.pinned:
            detail = "No initramfs key is pinned"
            detail += (": pin it from the running system." if self.host_keys
                       else ", and no initramfs host key was found on the server.")
            pin = SetupItem("initramfs key pinned", False, detail)
        elif self.pin_matches is False:
            on_disk = ", ".join(f"{k.key.key_type} {k.key.fingerprint}" for k in self.host_keys)
            pin = SetupItem("initramfs key pinned", False,
                            f"The pin ({', '.join(k.fingerprint for k in self.pinned)}) matches no key on the "
                            f"server ({on_disk}). If you changed the key on purpose, replace the pin in Settings.")
        else:
            pin = SetupItem("initramfs key pinned", True, ", ".join(f"{k.key_type} {k.fingerprint}"
                                                                    for k in self.pinned))
        return [package, keys, pin]

    @property
    def ok(self) -> bool:
        return all(item.ok for item in self.items())


def _check_script(paths: InitramfsPaths) -> str:
    lines = [f"echo @@package; dpkg-query -W -f='${{Status}}\\n' {shlex.quote(paths.package)} 2>/dev/null || true"]
    for number, folder in enumerate(paths.dirs()):
        quoted = shlex.quote(folder)
        lines.append(f"echo @@dir{number}; if [ -d {quoted} ]; then echo yes; else echo no; fi")
        lines.append(f"echo @@authorized{number}; cat {quoted}/authorized_keys 2>/dev/null || true")
    lines.append("echo @@keys")
    lines.append(_keys_script(paths.dirs()))
    return "\n".join(lines) + "\n"


def check_setup(
    runner: CommandRunner,
    initramfs: SshEndpoint,
    *,
    panel_key: PublicKey | None,
    paths: InitramfsPaths = InitramfsPaths(),
    timeout: float = 30.0,
    cancel: CancelToken = NEVER_CANCELLED,
) -> SetupReport:
    """Read the setup in one round trip over the running system's (verified) session."""
    result = runner.run_script(_check_script(paths), timeout=timeout, cancel=cancel)
    sections = split_sections(result.text())
    installed = any("install ok installed" in line for line in sections.get("package", []))
    dirs = paths.dirs()
    exists = [sections.get(f"dir{n}", ["no"])[:1] == ["yes"] for n in range(len(dirs))]
    chosen = next((n for n, there in enumerate(exists) if there), 0)
    authorized = None
    if panel_key is not None:
        for number in [chosen] + [n for n in range(len(dirs)) if n != chosen]:
            authorized = find_authorized("\n".join(sections.get(f"authorized{number}", [])), panel_key)
            if authorized is not None:
                chosen = number
                break
    return SetupReport(
        server=initramfs.name.replace(" (initramfs)", ""),
        package=paths.package,
        package_installed=installed,
        config_dir=dirs[chosen],
        config_dir_exists=exists[chosen],
        panel_key=panel_key,
        authorized=authorized,
        host_keys=tuple(_parse_keys(sections.get("keys", []))),
        pinned=tuple(trusted_keys(initramfs.trust, initramfs.host, initramfs.port)),
        paths=paths,
    )


# --- the fix -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetupFix:
    server: str
    steps: tuple[str, ...]  # what will change, in words
    script: str  # what runs on the server, exactly (empty: nothing to run there)
    pin: bool  # pin the initramfs key afterwards (read again, after an install made one)

    def preview(self) -> str:
        text = "\n".join(f"{number}. {step}" for number, step in enumerate(self.steps, start=1))
        if self.script:
            text += f"\n\nThis script runs on {self.server} as its SSH user:\n\n{self.script}"
        return text


def plan_setup_fix(
    report: SetupReport,
    *,
    install_command: str = DEFAULT_INSTALL_COMMAND,
    update_command: str = DEFAULT_UPDATE_COMMAND,
) -> SetupFix | None:
    """What to do about what the check found missing, or None if nothing is. A pin that differs from
    the key on disk is not replaced here: that is Settings' explicit "replace" action."""
    steps: list[str] = []
    script = ["set -e"]
    rebuild = False
    if not report.package_installed:
        steps.append(f"Install {report.package}.")
        script += [f"# install {report.package}", install_command]
        rebuild = True
    if report.panel_key is not None and not report.authorized_ok:
        keys_file = posixpath.join(report.config_dir, "authorized_keys")
        steps.append(f"Let the panel's key ({report.panel_key.fingerprint}) unlock, and do nothing else, in "
                     f"{keys_file}: {','.join(RECOMMENDED_OPTIONS)}.")
        folder = shlex.quote(report.config_dir)
        keys = shlex.quote(keys_file)
        backup = shlex.quote(keys_file + ".panel-backup")
        script += [
            "# the panel's key, restricted to cryptroot-unlock",
            f"mkdir -p {folder}",
            f"touch {keys}",
            f"cp -p {keys} {backup}",
            f"grep -v -F {shlex.quote(report.panel_key.line().split()[1])} {backup} > {keys} || true",
            f"printf '%s\\n' {shlex.quote(authorized_line(report.panel_key))} >> {keys}",
            f"chmod 600 {keys}",
        ]
        rebuild = True
    if rebuild:
        steps.append(f"Rebuild the initramfs so that the change is in it: {update_command}")
        script += ["# rebuild the initramfs", update_command]
    pin = not report.key_pinned and (bool(report.host_keys) or not report.package_installed)
    if pin:
        steps.append("Pin the initramfs host key in the panel's config (unlock_host_key), read from the "
                     "running system.")
    if not steps:
        return None
    return SetupFix(report.server, tuple(steps), "\n".join(script) + "\n" if len(script) > 1 else "", pin)


def apply_setup_fix(
    runner: CommandRunner,
    fix: SetupFix,
    *,
    timeout: float = 600.0,
    cancel: CancelToken = NEVER_CANCELLED,
) -> str:
    """Run the fix's script (the caller confirmed and audits). Returns its output."""
    if not fix.script:
        return ""
    result = runner.run_script(fix.script, timeout=timeout, cancel=cancel)
    if not result.ok:
        raise RemoteCommandError(
            f"The setup fix failed on {fix.server} (status {result.exit_status}): "
            f"{result.error_text().strip()[-500:]}", exit_status=result.exit_status, stderr=result.error_text())
    return result.text()
