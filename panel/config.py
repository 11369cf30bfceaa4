"""Reading, validating and editing the TOML inventory (DESIGN.md, "Config file").

Every problem is one ``ConfigError`` naming the file, the line and the key. The file
never holds a secret; editing goes through tomlkit so the user's comments survive.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs

from services.errors import ConfigError
from services.inventory import (
    BackupSpec,
    ChecksSpec,
    CloudflareSpec,
    GroupsSpec,
    Inventory,
    MailgunSpec,
    MysqlSpec,
    ServerSpec,
    StripeSpec,
)

if TYPE_CHECKING:
    import tomlkit

CONFIG_ENV = "PANEL_CONFIG"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def default_config_path() -> Path:
    """``$PANEL_CONFIG`` if set, else ``panel.toml`` in the user's config folder."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    return platformdirs.user_config_path("panel") / "panel.toml"


@dataclass(frozen=True)
class _Field:
    kind: type | tuple[type, ...]
    required: bool = False


_SERVER_FIELDS = {
    "host": _Field(str, required=True),
    "port": _Field(int),
    "user": _Field(str),
    "identity": _Field(str),
    "host_key": _Field(str),
    "unlock_port": _Field(int),
    "unlock_host_key": _Field(str),
    "unlock_volumes": _Field(list),
    "mysql": _Field(dict),
    "backups": _Field(list),
    "checks": _Field(dict),
}
_MYSQL_FIELDS = {
    "database": _Field(str, required=True),
    "user": _Field(str, required=True),
    "port": _Field(int),
    "host": _Field(str),
}
_BACKUP_FIELDS = {
    "name": _Field(str, required=True),
    "path": _Field(str, required=True),
    "via": _Field(str),
    "max_age_hours": _Field((int, float)),
    "source": _Field(str),
}
_CHECKS_FIELDS = {
    "expected_ports": _Field(list),
    "watch_paths": _Field(list),
    "disk_warning_percent": _Field((int, float)),
    "disk_critical_percent": _Field((int, float)),
    "load_warning_per_core": _Field((int, float)),
    "memory_warning_percent": _Field((int, float)),
    "downtime_budget_minutes": _Field((int, float)),
    "tls_domains": _Field(list),
    "log_files": _Field(list),
    "disk_inode_warning_percent": _Field((int, float)),
    "disk_inode_critical_percent": _Field((int, float)),
    "load_critical_per_core": _Field((int, float)),
    "memory_critical_percent": _Field((int, float)),
    "clock_skew_warning_seconds": _Field((int, float)),
    "failed_logins_warning": _Field((int, float)),
    "failed_logins_critical": _Field((int, float)),
    "tls_warning_days": _Field((int, float)),
    "tls_critical_days": _Field((int, float)),
    "reboot_alert_hours": _Field((int, float)),
    "apt_lists_max_age_days": _Field((int, float)),
    "aide_timeout_seconds": _Field((int, float)),
    "check_timeout_seconds": _Field((int, float)),
}
_GROUPS_FIELDS = {
    name: _Field(str)
    for name in (
        "table", "key", "name", "suspended", "fk", "created",
        "members_table", "users_table", "user_key", "email",
    )
}
_CLOUDFLARE_FIELDS = {"zone": _Field(str, required=True), "base_url": _Field(str)}
_STRIPE_FIELDS = {"base_url": _Field(str), "dashboard_url": _Field(str)}
_MAILGUN_FIELDS = {"domain": _Field(str, required=True), "base_url": _Field(str)}
_TOP_LEVEL = {"servers", "groups", "cloudflare", "stripe", "mailgun"}


class _Locator:
    """Finds the line of a key in the raw text, for messages. Best effort: tables and plain keys."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def line_of(self, table: str, key: str | None = None, index: int = 0) -> int | None:
        header_re = re.compile(r"^\s*\[\[?\s*" + re.escape(table) + r"\s*\]\]?\s*(#.*)?$")
        seen = -1
        start = None
        for number, line in enumerate(self.lines, start=1):
            if header_re.match(line):
                seen += 1
                if seen == index:
                    start = number
                    break
        if start is None:
            return None
        if key is None:
            return start
        key_re = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
        for number in range(start, len(self.lines)):
            line = self.lines[number]
            if line.lstrip().startswith("["):
                break
            if key_re.match(line):
                return number + 1
        return start


class _Reader:
    def __init__(self, path: Path, text: str) -> None:
        self.path = str(path)
        self.locator = _Locator(text)

    def error(self, message: str, table: str, key: str | None = None, index: int = 0) -> ConfigError:
        full_key = f"{table}.{key}" if key else table
        return ConfigError(message, path=self.path, line=self.locator.line_of(table, key, index), key=full_key)

    def check_table(
        self, data: Any, fields: dict[str, _Field], table: str, index: int = 0
    ) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.error("must be a table", table, index=index)
        for key, value in data.items():
            field = fields.get(key)
            if field is None:
                known = ", ".join(sorted(fields))
                raise self.error(f"unknown key (known keys here: {known})", table, key, index)
            if isinstance(value, bool) or not isinstance(value, field.kind):
                raise self.error(f"must be {_describe(field.kind)}, not {_describe(type(value))}",
                                 table, key, index)
        for key, field in fields.items():
            if field.required and key not in data:
                raise self.error("is required", table, key, index)
        return data

    def port(self, value: int, table: str, key: str) -> int:
        if not 1 <= value <= 65535:
            raise self.error(f"must be a TCP port from 1 to 65535, not {value}", table, key)
        return value

    def str_list(self, value: list[Any], table: str, key: str) -> tuple[str, ...]:
        if not all(isinstance(item, str) for item in value):
            raise self.error("must be a list of strings", table, key)
        return tuple(value)

    def port_list(self, value: list[Any], table: str, key: str) -> tuple[int, ...]:
        if not all(isinstance(item, int) and not isinstance(item, bool) for item in value):
            raise self.error("must be a list of port numbers", table, key)
        return tuple(self.port(item, table, key) for item in value)


def _describe(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "a whole number", float: "a number", list: "a list",
             dict: "a table", bool: "true or false"}
    if isinstance(kind, tuple):
        return " or ".join(names.get(k, k.__name__) for k in kind)
    return names.get(kind, kind.__name__)


def load_config(path: Path) -> Inventory:
    """Read and validate ``path``. Raises ConfigError naming the file, line and key."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("the config file does not exist", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot be read ({exc.__class__.__name__}: {exc})", path=str(path)) from None
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Inventory:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        line = int(match.group(1)) if match else None
        raise ConfigError(f"is not valid TOML: {exc}", path=str(path), line=line) from None
    reader = _Reader(path, text)
    for key in data:
        if key not in _TOP_LEVEL:
            raise ConfigError(
                f"unknown section (known: {', '.join(sorted(_TOP_LEVEL))})",
                path=str(path), line=reader.locator.line_of(key), key=key,
            )
    servers_data = data.get("servers", {})
    if not isinstance(servers_data, dict):
        raise reader.error("must be a table of servers", "servers")
    servers = {name: _read_server(reader, name, raw) for name, raw in servers_data.items()}
    _check_via(reader, servers)
    groups = GroupsSpec(**reader.check_table(data.get("groups", {}), _GROUPS_FIELDS, "groups"))
    cloudflare = stripe = mailgun = None
    if "cloudflare" in data:
        cloudflare = CloudflareSpec(**reader.check_table(data["cloudflare"], _CLOUDFLARE_FIELDS, "cloudflare"))
    if "stripe" in data:
        stripe = StripeSpec(**reader.check_table(data["stripe"], _STRIPE_FIELDS, "stripe"))
    if "mailgun" in data:
        mailgun = MailgunSpec(**reader.check_table(data["mailgun"], _MAILGUN_FIELDS, "mailgun"))
    return Inventory(servers=servers, groups=groups, cloudflare=cloudflare, stripe=stripe,
                     mailgun=mailgun, source=str(path))


def _read_server(reader: _Reader, name: str, raw: Any) -> ServerSpec:
    table = f"servers.{name}"
    if not _NAME_RE.match(name):
        raise reader.error("a server name may hold letters, digits, '.', '_' and '-' only", table)
    fields = reader.check_table(raw, _SERVER_FIELDS, table)
    port = reader.port(fields.get("port", 22), table, "port")
    unlock_port = fields.get("unlock_port")
    if unlock_port is not None:
        reader.port(unlock_port, table, "unlock_port")
    for key in ("host_key", "unlock_host_key"):
        if key in fields and len(fields[key].split()) < 2:
            raise reader.error('must look like "ssh-ed25519 AAAA..." (a key type and the key)', table, key)
    volumes = reader.str_list(fields.get("unlock_volumes", []), table, "unlock_volumes")
    if volumes and unlock_port is None:
        raise reader.error("needs unlock_port as well", table, "unlock_volumes")
    mysql = None
    if "mysql" in fields:
        mysql_fields = reader.check_table(fields["mysql"], _MYSQL_FIELDS, f"{table}.mysql")
        if "port" in mysql_fields:
            reader.port(mysql_fields["port"], f"{table}.mysql", "port")
        mysql = MysqlSpec(**mysql_fields)
    backups = []
    for index, raw_backup in enumerate(fields.get("backups", [])):
        backup = reader.check_table(raw_backup, _BACKUP_FIELDS, f"{table}.backups", index)
        backups.append(BackupSpec(**backup))
    names = [b.name for b in backups]
    for duplicate in {n for n in names if names.count(n) > 1}:
        raise reader.error(f"two backups are named {duplicate!r}", f"{table}.backups", "name")
    checks = ChecksSpec()
    if "checks" in fields:
        checks_table = f"{table}.checks"
        raw_checks = reader.check_table(fields["checks"], _CHECKS_FIELDS, checks_table)
        values: dict[str, Any] = {}
        for key, value in raw_checks.items():
            if key == "expected_ports":
                values[key] = reader.port_list(value, checks_table, key)
            elif isinstance(value, list):
                values[key] = reader.str_list(value, checks_table, key)
            else:
                values[key] = float(value)
        checks = ChecksSpec(**values)
    return ServerSpec(
        name=name,
        host=fields["host"],
        port=port,
        user=fields.get("user", "root"),
        identity=fields.get("identity"),
        host_key=fields.get("host_key"),
        unlock_port=unlock_port,
        unlock_host_key=fields.get("unlock_host_key"),
        unlock_volumes=volumes,
        mysql=mysql,
        backups=tuple(backups),
        checks=checks,
    )


def _check_via(reader: _Reader, servers: dict[str, ServerSpec]) -> None:
    for server in servers.values():
        for index, backup in enumerate(server.backups):
            if backup.via not in (None, "local") and backup.via not in servers:
                raise reader.error(
                    f"names server {backup.via!r}, which is not in [servers] "
                    '(use the name of a [servers.*] entry, or "local" for this laptop)',
                    f"servers.{server.name}.backups", "via", index,
                )


# --- editing, without losing the user's comments -------------------------------------------------

def save_server(path: Path, server: ServerSpec) -> None:
    """Add or update one server's basic keys, keeping the rest of the file (and comments) as it was."""
    import tomlkit

    document = _load_document(path)
    servers = document.setdefault("servers", tomlkit.table(is_super_table=True))
    entry = servers.get(server.name)
    if entry is None:
        entry = tomlkit.table()
        servers[server.name] = entry
    values: dict[str, Any] = {
        "host": server.host, "port": server.port, "user": server.user,
        "identity": server.identity, "host_key": server.host_key,
        "unlock_port": server.unlock_port, "unlock_host_key": server.unlock_host_key,
    }
    for key, value in values.items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    _write_validated(path, document)


def set_server_key(path: Path, server: str, key: str, value: str | int | None) -> None:
    """Set (or with None remove) one key of ``[servers.NAME]``, e.g. a host key pin."""
    document = _load_document(path)
    entry = document["servers"][server]
    if value is None:
        entry.pop(key, None)
    else:
        entry[key] = value
    _write_validated(path, document)


def remove_server(path: Path, name: str) -> None:
    document = _load_document(path)
    servers = document.get("servers")
    if servers is None or name not in servers:
        raise ConfigError(f"there is no server {name!r} to remove", path=str(path))
    del servers[name]
    _write_validated(path, document)


def _load_document(path: Path) -> tomlkit.TOMLDocument:
    import tomlkit

    if not path.exists():
        return tomlkit.document()
    return tomlkit.parse(path.read_text(encoding="utf-8"))


def _write_validated(path: Path, document: tomlkit.TOMLDocument) -> None:
    """Validate before writing, and replace the file atomically, so a bad edit never lands."""
    import tomlkit

    text = tomlkit.dumps(document)
    parse_config(text, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
