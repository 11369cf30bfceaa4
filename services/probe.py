"""Probing a server: is it up, locked in its initramfs, down, or is its key not trusted?

When it is up, ONE remote command gathers its health facts. Output that can't be read becomes
``None`` ("unknown"), never a crash.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from services.cancel import NEVER_CANCELLED, CancelToken
from services.errors import (
    AuthError,
    Cancelled,
    ConnectError,
    HostKeyMismatch,
    OperationTimeout,
    PanelError,
    UnknownHostKey,
)
from services.ssh.connect import open_socket, start_transport
from services.ssh.endpoint import SshEndpoint
from services.ssh.pool import SshPool


class ServerState(enum.StrEnum):
    UP = "up"
    LOCKED = "locked"
    DOWN = "down"
    UNKNOWN_HOST_KEY = "unknown-host-key"
    HOST_KEY_MISMATCH = "host-key-mismatch"


@dataclass(frozen=True)
class DiskUse:
    mount: str
    size_kb: int
    used_kb: int
    percent: int


@dataclass(frozen=True)
class HostFacts:
    uptime_seconds: float | None = None
    load: tuple[float, float, float] | None = None
    cores: int | None = None
    mem_total_kb: int | None = None
    mem_available_kb: int | None = None
    disks: tuple[DiskUse, ...] = ()
    failed_units: int | None = None
    kernel: str | None = None
    debian: str | None = None
    reboot_required: bool | None = None
    boot_id: str | None = None

    @property
    def fullest_disk(self) -> DiskUse | None:
        return max(self.disks, key=lambda d: d.percent, default=None)

    @property
    def memory_used_percent(self) -> float | None:
        if not self.mem_total_kb or self.mem_available_kb is None:
            return None
        return 100.0 * (self.mem_total_kb - self.mem_available_kb) / self.mem_total_kb


@dataclass(frozen=True)
class ServerStatus:
    server: str
    state: ServerState
    detail: str = ""
    endpoint: str = "system"  # which endpoint the state is about: "system" or "initramfs"
    fingerprint: str | None = None  # offered key, for unknown and mismatched keys
    public_key: str | None = None  # offered key line, for the trust dialog
    expected: tuple[str, ...] = ()
    facts: HostFacts | None = None
    checked_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    elapsed_ms: float = 0.0

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "server": self.server,
            "state": str(self.state),
            "detail": self.detail,
            "endpoint": self.endpoint,
            "checked_at": self.checked_at.isoformat(timespec="seconds"),
        }
        if self.fingerprint:
            data["fingerprint"] = self.fingerprint
        if self.expected:
            data["expected"] = list(self.expected)
        if self.facts is not None:
            data["facts"] = asdict(self.facts)
        return data


# Shell builtins (read, case, test) where they do, so the probe forks few processes on the server.
FACTS_SCRIPT = r"""
echo @@uptime; read -r line < /proc/uptime && echo "$line"
echo @@loadavg; read -r line < /proc/loadavg && echo "$line"
echo @@nproc; nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null
echo @@meminfo
while read -r key value _; do case $key in MemTotal:|MemAvailable:) echo "$key $value";; esac; done < /proc/meminfo
echo @@df; df -P -k -x tmpfs -x devtmpfs -x squashfs 2>/dev/null
echo @@failed
if out=$(systemctl list-units --state=failed --no-legend --plain 2>/dev/null); then
  printf '%s\n' "$out" | grep -c . ; else echo unknown; fi
echo @@kernel; read -r line < /proc/sys/kernel/osrelease && echo "$line"
echo @@debian; read -r line < /etc/debian_version && echo "$line"
echo @@reboot; if [ -e /var/run/reboot-required ]; then echo yes; else echo no; fi
echo @@bootid; read -r line < /proc/sys/kernel/random/boot_id && echo "$line"
"""


def split_sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("@@"):
            current = sections.setdefault(line[2:].strip(), [])
        elif current is not None:
            current.append(line)
    return sections


def _first_int(lines: list[str]) -> int | None:
    try:
        return int(lines[0].split()[0])
    except (IndexError, ValueError):
        return None


def _first_word(lines: list[str]) -> str | None:
    words = lines[0].split() if lines else []
    return words[0] if words else None


def parse_facts(text: str) -> HostFacts:
    sections = split_sections(text)
    uptime = None
    with contextlib.suppress(IndexError, ValueError):
        uptime = float(sections.get("uptime", [""])[0].split()[0])
    load = None
    try:
        parts = sections.get("loadavg", [""])[0].split()
        load = (float(parts[0]), float(parts[1]), float(parts[2]))
    except (IndexError, ValueError):
        pass
    memory: dict[str, int] = {}
    for line in sections.get("meminfo", []):
        name, _, rest = line.partition(":")
        value = _first_int([rest]) if rest.strip() else None
        if value is not None:
            memory[name.strip()] = value
    reboot_word = _first_word(sections.get("reboot", []))
    return HostFacts(
        uptime_seconds=uptime,
        load=load,
        cores=_first_int(sections.get("nproc", [])),
        mem_total_kb=memory.get("MemTotal"),
        mem_available_kb=memory.get("MemAvailable"),
        disks=parse_df(sections.get("df", [])),
        failed_units=_first_int(sections.get("failed", [])),
        kernel=_first_word(sections.get("kernel", [])),
        debian=_first_word(sections.get("debian", [])),
        reboot_required={"yes": True, "no": False}.get(reboot_word or ""),
        boot_id=_first_word(sections.get("bootid", [])),
    )


def parse_df(lines: list[str]) -> tuple[DiskUse, ...]:
    """``df -P -k`` lines (header skipped). Mount points with spaces keep them."""
    disks: dict[str, DiskUse] = {}
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or not parts[4].endswith("%"):
            continue
        try:
            size, used, percent = int(parts[1]), int(parts[2]), int(parts[4].rstrip("%"))
        except ValueError:
            continue
        mount = " ".join(parts[5:])
        disks.setdefault(mount, DiskUse(mount, size, used, percent))
    return tuple(disks.values())


def _key_error_status(server: str, error: UnknownHostKey | HostKeyMismatch, endpoint: str) -> ServerStatus:
    if isinstance(error, UnknownHostKey):
        return ServerStatus(server, ServerState.UNKNOWN_HOST_KEY, error.message, endpoint,
                            error.fingerprint, error.public_key)
    return ServerStatus(server, ServerState.HOST_KEY_MISMATCH, error.message, endpoint,
                        error.fingerprint, None, tuple(error.expected_fingerprints))


def _probe_initramfs(server: str, endpoint: SshEndpoint, why_down: str, cancel: CancelToken) -> ServerStatus:
    """Key exchange only: is dropbear answering, and with the pinned initramfs key? Nothing is sent."""
    try:
        sock = open_socket(endpoint, cancel)
    except (ConnectError, OperationTimeout):
        return ServerStatus(server, ServerState.DOWN, why_down)
    try:
        transport, _ = start_transport(endpoint, sock, cancel)
    except (UnknownHostKey, HostKeyMismatch) as error:
        return _key_error_status(server, error, "initramfs")
    except (ConnectError, OperationTimeout) as error:
        sock.close()
        return ServerStatus(server, ServerState.DOWN, f"{why_down} Its unlock port answers, but: {error}")
    version = transport.remote_version
    transport.close()
    if "dropbear" not in version.lower():
        return ServerStatus(server, ServerState.DOWN,
                            f"{why_down} Its unlock port answers as {version!r}, not dropbear.")
    return ServerStatus(server, ServerState.LOCKED,
                        "Waiting in its initramfs for the disk passphrase.", "initramfs")


def probe_server(
    pool: SshPool,
    system: SshEndpoint,
    initramfs: SshEndpoint | None = None,
    *,
    command_timeout: float = 20.0,
    cancel: CancelToken = NEVER_CANCELLED,
) -> ServerStatus:
    """One probe. A pooled connection makes it a single round trip."""
    server = system.name
    started = time.monotonic()
    try:
        result = pool.run(system, FACTS_SCRIPT, timeout=command_timeout, cancel=cancel)
    except (UnknownHostKey, HostKeyMismatch) as error:
        status = _key_error_status(server, error, "system")
    except AuthError as error:
        status = ServerStatus(server, ServerState.UP, f"Up, but the login failed: {error}")
    except (ConnectError, OperationTimeout) as error:
        if initramfs is None:
            status = ServerStatus(server, ServerState.DOWN, str(error))
        else:
            status = _probe_initramfs(server, initramfs, str(error), cancel)
    except Cancelled:
        raise
    except PanelError as error:
        status = ServerStatus(server, ServerState.DOWN, str(error))
    else:
        facts = parse_facts(result.text())
        status = ServerStatus(server, ServerState.UP, "", facts=facts)
    elapsed = (time.monotonic() - started) * 1000
    return ServerStatus(**{**status.__dict__, "elapsed_ms": elapsed})


def probe_many(
    pool: SshPool,
    endpoints: list[tuple[SshEndpoint, SshEndpoint | None]],
    *,
    cancel: CancelToken = NEVER_CANCELLED,
    max_workers: int = 32,
) -> list[ServerStatus]:
    """Probe every server at once; the slowest server sets the pace, not the sum."""
    if not endpoints:
        return []
    with ThreadPoolExecutor(max_workers=min(max_workers, len(endpoints))) as executor:
        futures = [executor.submit(probe_server, pool, system, initramfs, cancel=cancel)
                   for system, initramfs in endpoints]
        return [future.result() for future in futures]
