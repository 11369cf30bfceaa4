"""Strict host key trust. A key is never accepted on first sight.

Order of trust: the pin in the config, then the panel's own known_hosts file, then (for booted
systems only) the user's ``~/.ssh/known_hosts``, read only. An unknown key raises
``UnknownHostKey`` with the offered fingerprint; a different key raises ``HostKeyMismatch``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from services.errors import HostKeyMismatch, PanelError, UnknownHostKey

_write_lock = threading.Lock()


@dataclass(frozen=True)
class PublicKey:
    key_type: str  # e.g. "ssh-ed25519"
    blob: bytes

    @classmethod
    def parse(cls, line: str) -> PublicKey:
        """Parse ``"ssh-ed25519 AAAA... comment"``."""
        parts = line.split()
        if len(parts) < 2:
            raise PanelError(f"Not a public key line: {line[:40]!r}")
        try:
            blob = base64.b64decode(parts[1], validate=True)
        except (binascii.Error, ValueError):
            raise PanelError(f"The key {parts[0]} {parts[1][:16]}... is not valid base64.") from None
        return cls(parts[0], blob)

    @property
    def fingerprint(self) -> str:
        """SHA256 fingerprint, as OpenSSH prints it."""
        digest = hashlib.sha256(self.blob).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")

    def line(self) -> str:
        return f"{self.key_type} {base64.b64encode(self.blob).decode()}"


def host_pattern(host: str, port: int) -> str:
    """How OpenSSH's known_hosts names a host: plain for port 22, ``[host]:port`` otherwise."""
    return host if port == 22 else f"[{host}]:{port}"


@dataclass(frozen=True)
class TrustSources:
    """Where the trusted keys of one endpoint are looked up."""

    pinned: str | None  # the pin from the config, if any
    panel_known_hosts: Path | None  # the panel's own file (writable by trust and replace actions)
    readonly_known_hosts: tuple[Path, ...] = ()  # e.g. ~/.ssh/known_hosts, for booted systems only


def _read_known_hosts(path: Path, host: str, port: int) -> list[PublicKey]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    wanted = {host_pattern(host, port)}
    keys = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line.startswith("@"):
            continue
        parts = line.split()
        if len(parts) < 3:
            continue
        names = set(parts[0].split(","))
        if names & wanted or any(_hashed_match(name, wanted) for name in names if name.startswith("|1|")):
            try:
                keys.append(PublicKey.parse(f"{parts[1]} {parts[2]}"))
            except PanelError:
                continue
    return keys


def _hashed_match(entry: str, wanted: set[str]) -> bool:
    """OpenSSH's HashKnownHosts format: |1|salt|hmac-sha1(salt, host)."""
    import hmac

    try:
        _, _, salt_b64, digest_b64 = entry.split("|")
        salt = base64.b64decode(salt_b64)
        digest = base64.b64decode(digest_b64)
    except ValueError:
        return False
    return any(hmac.compare_digest(hmac.new(salt, name.encode(), "sha1").digest(), digest) for name in wanted)


def trusted_keys(sources: TrustSources, host: str, port: int) -> list[PublicKey]:
    """The keys trusted for this endpoint, by the first source that names any."""
    if sources.pinned:
        return [PublicKey.parse(sources.pinned)]
    for path in (sources.panel_known_hosts, *sources.readonly_known_hosts):
        if path is None:
            continue
        keys = _read_known_hosts(path, host, port)
        if keys:
            return keys
    return []


def verify_host_key(sources: TrustSources, host: str, port: int, offered: PublicKey) -> None:
    """Raise unless ``offered`` is trusted. Called after key exchange, before anything is sent."""
    trusted = trusted_keys(sources, host, port)
    if not trusted:
        raise UnknownHostKey(host=host, port=port, key_type=offered.key_type,
                             fingerprint=offered.fingerprint, public_key=offered.line())
    if offered not in trusted:
        raise HostKeyMismatch(host=host, port=port, key_type=offered.key_type, fingerprint=offered.fingerprint,
                              expected_fingerprints=[f"{k.key_type} {k.fingerprint}" for k in trusted])


def preferred_key_types(sources: TrustSources, host: str, port: int) -> list[str]:
    """Ask the server for the key type we trust, so a host with several keys is not a false mismatch."""
    return list(dict.fromkeys(k.key_type for k in trusted_keys(sources, host, port)))


def add_known_host(path: Path, host: str, port: int, key: PublicKey) -> None:
    """Trust a key that was unknown (after the operator compared its fingerprint)."""
    with _write_lock:
        existing = _read_known_hosts(path, host, port)
        if key in existing:
            return
        if existing:
            raise HostKeyMismatch(host=host, port=port, key_type=key.key_type, fingerprint=key.fingerprint,
                                  expected_fingerprints=[f"{k.key_type} {k.fingerprint}" for k in existing])
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            os.chmod(path, 0o600)
            handle.write(f"{host_pattern(host, port)} {key.line()}\n")


def replace_known_host(path: Path, host: str, port: int, key: PublicKey) -> list[PublicKey]:
    """The explicit "replace pinned key" action: drop this host's old keys, trust the new one.

    Returns the keys that were replaced, for the audit entry.
    """
    with _write_lock:
        pattern = host_pattern(host, port)
        old = _read_known_hosts(path, host, port)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            lines = []
        kept = [line for line in lines if not (line.split() and pattern in line.split()[0].split(","))]
        kept.append(f"{pattern} {key.line()}")
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text("\n".join(kept) + "\n", encoding="utf-8")
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
        return old
