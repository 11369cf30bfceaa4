"""Where and how to reach one SSH endpoint: the booted system, or its initramfs (dropbear)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path

import paramiko

from services.hostkeys import TrustSources
from services.inventory import ServerSpec


def user_ssh_file(name: str) -> Path:
    """A file of the user's ~/.ssh, read at call time (tests point HOME elsewhere)."""
    return Path("~/.ssh").expanduser() / name


@dataclass(frozen=True)
class SshEndpoint:
    name: str  # for messages: "app1" or "app1 (initramfs)"
    host: str
    port: int
    user: str
    trust: TrustSources
    identities: tuple[str, ...] = ()  # private key files to offer, in order, before the agent's keys
    use_agent: bool = True
    jump: SshEndpoint | None = None  # ProxyJump
    connect_timeout: float = 10.0
    banner_timeout: float = 15.0
    auth_timeout: float = 15.0
    keepalive_seconds: int = 15
    role: str = "system"  # or "initramfs": pooled apart, so the two never share a connection
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def pool_key(self) -> tuple[str, str, int, str]:
        return (self.role, self.host, self.port, self.user)


def quote_argv(argv: list[str]) -> str:
    """One command line for the remote shell, every argument quoted."""
    return " ".join(shlex.quote(arg) for arg in argv)


def _ssh_config(host: str, path: Path) -> dict[str, object]:
    if not path.is_file():
        return {}
    try:
        return dict(paramiko.SSHConfig.from_path(str(path)).lookup(host))
    except (OSError, paramiko.SSHException, ValueError):
        return {}


def system_endpoint(
    spec: ServerSpec,
    *,
    known_hosts: Path | None,
    ssh_config: Path | None = None,
    user_known_hosts: Path | None = None,
) -> SshEndpoint:
    """The booted system's sshd. ``~/.ssh/config`` adds HostName, IdentityFile and ProxyJump."""
    ssh_config = ssh_config or user_ssh_file("config")
    user_known_hosts = user_known_hosts or user_ssh_file("known_hosts")
    options = _ssh_config(spec.host, ssh_config)
    hostname = str(options.get("hostname", spec.host))
    identities: list[str] = []
    if spec.identity:
        identities.append(str(Path(spec.identity).expanduser()))
    config_files = options.get("identityfile", [])
    if isinstance(config_files, list):
        identities += [str(Path(str(p)).expanduser()) for p in config_files]
    jump = None
    proxy_jump = options.get("proxyjump")
    if isinstance(proxy_jump, str) and proxy_jump.lower() != "none":
        jump = _jump_endpoint(proxy_jump.split(",")[0], known_hosts, user_known_hosts, ssh_config)
        # The jump host also gets the target's keys to try: one key usually opens both.
        jump = replace(jump, identities=tuple(dict.fromkeys((*jump.identities, *identities))))
    return SshEndpoint(
        name=spec.name,
        host=hostname,
        port=spec.port,
        user=spec.user,
        trust=TrustSources(spec.host_key, known_hosts, (user_known_hosts,)),
        identities=tuple(dict.fromkeys(identities)),
        jump=jump,
    )


def _jump_endpoint(target: str, known_hosts: Path | None, user_known_hosts: Path, ssh_config: Path) -> SshEndpoint:
    user, _, hostport = target.rpartition("@")
    host, _, port = hostport.partition(":")
    options = _ssh_config(host, ssh_config)
    files = options.get("identityfile", [])
    return SshEndpoint(
        name=f"jump host {host}",
        host=str(options.get("hostname", host)),
        port=int(port or str(options.get("port", 22))),
        user=user or str(options.get("user", "root")),
        trust=TrustSources(None, known_hosts, (user_known_hosts,)),
        identities=tuple(str(Path(str(p)).expanduser()) for p in files) if isinstance(files, list) else (),
    )


def initramfs_endpoint(spec: ServerSpec, *, known_hosts: Path | None, system: SshEndpoint) -> SshEndpoint:
    """Dropbear in the initramfs: its own port and its own pins, never the system's."""
    if spec.unlock_port is None:
        raise ValueError(f"{spec.name} has no unlock_port")
    return replace(
        system,
        name=f"{spec.name} (initramfs)",
        port=spec.unlock_port,
        user="root",  # dropbear-initramfs only knows root
        trust=TrustSources(spec.unlock_host_key, known_hosts, ()),
        role="initramfs",
        keepalive_seconds=0,  # one connection per volume; nothing to keep alive
    )
