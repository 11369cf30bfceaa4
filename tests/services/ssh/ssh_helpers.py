"""Small helpers for the SSH tests."""

from __future__ import annotations

from pathlib import Path

from panel.lab.sshd import SshdServer
from services.hostkeys import PublicKey
from services.inventory import ServerSpec


def other_key_line() -> str:
    """A well-formed ed25519 public key that no test server holds."""
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes(range(32))
    return PublicKey("ssh-ed25519", blob).line()


def spec_for(server: SshdServer, client_key: Path, *, pin: str | None = None, unlock_port: int | None = None,
             unlock_pin: str | None = None) -> ServerSpec:
    return ServerSpec(name="app1", host=server.host, port=server.port, user="root", identity=str(client_key),
                      host_key=pin, unlock_port=unlock_port, unlock_host_key=unlock_pin)
