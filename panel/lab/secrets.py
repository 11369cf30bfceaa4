"""The demo fleet's secrets. These are public demo data (printed by ``lab up`` and in the README),
never real secrets. The demo installs them in an in-memory keyring for its own session only."""

from __future__ import annotations

import keyring.backend
import keyring.errors

SERVICE = "panel"

LUKS_PASSPHRASE = "demo unlock passphrase"
MYSQL_PASSWORD = "demo-mysql-password"
CLOUDFLARE_TOKEN = "demo-cloudflare-token-0123456789"
STRIPE_KEY = "sk_test_demo0123456789"
MAILGUN_KEY = "key-demo0123456789"


def demo_entries(servers: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Keyring entries for the demo. ``servers`` maps a server name to its encrypted volume names."""
    entries = {"cloudflare": CLOUDFLARE_TOKEN, "stripe": STRIPE_KEY, "mailgun": MAILGUN_KEY}
    for name, volumes in servers.items():
        entries[f"{name}/mysql"] = MYSQL_PASSWORD
        if len(volumes) == 1:
            entries[f"{name}/luks"] = LUKS_PASSPHRASE
        for volume in volumes:
            entries[f"{name}/luks/{volume}"] = LUKS_PASSPHRASE
    return entries


class DemoKeyring(keyring.backend.KeyringBackend):
    """An in-memory keyring, preloaded with the demo fleet's entries. Nothing reaches the disk.

    Select it for a CLI session against the lab with
    ``PYTHON_KEYRING_BACKEND=panel.lab.secrets.DemoKeyring``.
    """

    # Below keyring's own "no keyring" backend (priority 0): keyring never picks this on its own, even
    # on a machine without a real keyring; it is used only when chosen explicitly (set_keyring or
    # PYTHON_KEYRING_BACKEND).
    priority = -1

    def __init__(self) -> None:
        super().__init__()
        self._entries: dict[tuple[str, str], str] = {
            (SERVICE, user): value
            for user, value in demo_entries(
                {"app1": ("root",), "app2": ("root", "data"), "backup1": ()}
            ).items()
        }

    def get_password(self, service: str, username: str) -> str | None:
        return self._entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self._entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self._entries[(service, username)]
        except KeyError:
            raise keyring.errors.PasswordDeleteError(username) from None
