"""The inventory as plain dataclasses: what the config file describes, with no secrets.

``panel.config`` reads the TOML file into these; ``services`` only ever sees them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class MysqlSpec:
    database: str
    user: str
    port: int = 3306
    host: str = "127.0.0.1"  # as seen from the server, at the far end of the SSH tunnel


@dataclass(frozen=True)
class BackupSpec:
    name: str
    path: str
    via: str | None = None  # None: on the server itself; "local": this laptop; else another server's name
    max_age_hours: float = 26.0


@dataclass(frozen=True)
class ChecksSpec:
    expected_ports: tuple[int, ...] = ()
    watch_paths: tuple[str, ...] = ()
    disk_warning_percent: float = 85.0
    disk_critical_percent: float = 95.0
    load_warning_per_core: float = 2.0
    memory_warning_percent: float = 90.0
    downtime_budget_minutes: float = 1.0
    tls_domains: tuple[str, ...] = ()
    log_files: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServerSpec:
    name: str
    host: str
    port: int = 22
    user: str = "root"
    identity: str | None = None
    host_key: str | None = None  # "ssh-ed25519 AAAA..." pin for the booted system
    unlock_port: int | None = None  # dropbear in the initramfs; None if the disk is not encrypted
    unlock_host_key: str | None = None  # pin for the initramfs key, kept apart from host_key
    unlock_volumes: tuple[str, ...] = ()  # names of encrypted volumes, when there are several
    mysql: MysqlSpec | None = None
    backups: tuple[BackupSpec, ...] = ()
    checks: ChecksSpec = field(default_factory=ChecksSpec)

    @property
    def encrypted(self) -> bool:
        return self.unlock_port is not None


@dataclass(frozen=True)
class GroupsSpec:
    table: str = "groups"
    key: str = "id"
    name: str = "name"
    suspended: str = "suspended_at"
    fk: str = "group_id"
    created: str | None = "created_at"
    members_table: str = "memberships"
    users_table: str = "users"
    user_key: str = "user_id"
    email: str = "email"


@dataclass(frozen=True)
class CloudflareSpec:
    zone: str
    base_url: str = "https://api.cloudflare.com/client/v4"


@dataclass(frozen=True)
class StripeSpec:
    base_url: str = "https://api.stripe.com"
    dashboard_url: str = "https://dashboard.stripe.com"


@dataclass(frozen=True)
class MailgunSpec:
    domain: str
    base_url: str = "https://api.mailgun.net"


@dataclass(frozen=True)
class Inventory:
    servers: dict[str, ServerSpec]
    groups: GroupsSpec = field(default_factory=GroupsSpec)
    cloudflare: CloudflareSpec | None = None
    stripe: StripeSpec | None = None
    mailgun: MailgunSpec | None = None
    source: str = ""  # the file it was read from, for messages

    def server(self, name: str) -> ServerSpec:
        from services.errors import PanelError

        try:
            return self.servers[name]
        except KeyError:
            known = ", ".join(sorted(self.servers)) or "none"
            raise PanelError(f"There is no server named {name!r} in {self.source or 'the config'} "
                             f"(known: {known}).") from None
