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
    # Added by the backups feature: the folder this repository backs up, on the server itself, so the
    # panel can compare the live files with the newest backup ("what changed in /etc since the last backup").
    # None: "/", or the folder that holds the etc/ among the server's checks.watch_paths (panel.backups).
    source: str | None = None


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
    # Added by the alerts feature (services/checks); each has a sensible default.
    disk_inode_warning_percent: float = 85.0
    disk_inode_critical_percent: float = 95.0
    load_critical_per_core: float = 4.0
    memory_critical_percent: float = 97.0
    clock_skew_warning_seconds: float = 5.0  # the server's clock against this laptop's
    failed_logins_warning: float = 100.0  # failed SSH login lines in the last hour
    failed_logins_critical: float = 1000.0
    tls_warning_days: float = 20.0
    tls_critical_days: float = 3.0
    reboot_alert_hours: float = 24.0  # how long an unexplained reboot stays an alert
    apt_lists_max_age_days: float = 7.0  # older package lists can't tell about security updates
    aide_timeout_seconds: float = 0.0  # 0: only read AIDE's daily report; >0: run aide --check that long
    check_timeout_seconds: float = 90.0  # the whole host script of one server


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
