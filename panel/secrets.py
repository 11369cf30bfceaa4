"""Secrets live in the OS keyring only (DESIGN.md, "Secrets").

The entry names are fixed: service ``panel``, user names ``SERVER/luks``, ``SERVER/luks/VOLUME``,
``SERVER/mysql``, ``cloudflare``, ``stripe``, ``mailgun``. There is no plaintext fallback: when no
keyring works the panel says so and asks each time.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass

import keyring
import keyring.backend
import keyring.errors

from services.errors import SecretUnavailable

SERVICE = "panel"
API_KEY_ENV = {"cloudflare": "CLOUDFLARE_API_TOKEN", "stripe": "STRIPE_API_KEY", "mailgun": "MAILGUN_API_KEY"}


def luks_entry(server: str, volume: str | None = None) -> str:
    return f"{server}/luks" if volume is None else f"{server}/luks/{volume}"


def mysql_entry(server: str) -> str:
    return f"{server}/mysql"


class KeyringState(enum.Enum):
    WORKING = "working"
    MISSING = "missing"  # no usable backend on this system
    LOCKED = "locked"  # a backend exists but refuses until the user unlocks it


@dataclass(frozen=True)
class KeyringStatus:
    state: KeyringState
    backend: str
    message: str

    @property
    def can_remember(self) -> bool:
        return self.state is KeyringState.WORKING


_PLAINTEXT_MODULES = ("keyrings.alt.file", "keyring.backends.null")


def _user_chose_backend() -> bool:
    """True when the user named a backend through keyring's own settings."""
    if os.environ.get("PYTHON_KEYRING_BACKEND"):
        return True
    try:
        return keyring.core.load_config() is not None
    except Exception:
        return False


class SecretStore:
    """A thin wrapper over keyring with the panel's entry names and plain-words errors."""

    def __init__(self, backend: keyring.backend.KeyringBackend | None = None) -> None:
        self._backend = backend or keyring.get_keyring()

    @property
    def backend_name(self) -> str:
        return f"{type(self._backend).__module__}.{type(self._backend).__name__}"

    def status(self) -> KeyringStatus:
        name = self.backend_name
        if self._is_unusable():
            return KeyringStatus(
                KeyringState.MISSING, name,
                "No usable keyring was found on this system, so secrets cannot be remembered. "
                "The panel will ask for them each time. Install and unlock a Secret Service "
                "(GNOME Keyring, KWallet) or choose a backend with keyring's own settings.",
            )
        try:
            self._backend.get_password(SERVICE, "__probe__")
        except keyring.errors.KeyringLocked:
            return KeyringStatus(KeyringState.LOCKED, name,
                                 "The keyring is locked. Unlock it (for example by logging in to your desktop "
                                 "session) to use remembered secrets; until then the panel asks each time.")
        except keyring.errors.KeyringError as exc:
            return KeyringStatus(KeyringState.MISSING, name,
                                 f"The keyring does not answer ({exc.__class__.__name__}). "
                                 "The panel will ask for secrets each time.")
        return KeyringStatus(KeyringState.WORKING, name, f"Secrets are kept in the keyring ({name}).")

    def _is_unusable(self) -> bool:
        module = type(self._backend).__module__
        if module.startswith("keyring.backends.fail"):
            return True
        # Never a plaintext file unless the user chose it through keyring's own settings.
        return module.startswith(_PLAINTEXT_MODULES) and not _user_chose_backend()

    def get(self, entry: str) -> str | None:
        """The stored value, or None when there is none or no keyring works (the caller then asks)."""
        if self._is_unusable():
            return None
        try:
            return self._backend.get_password(SERVICE, entry)
        except keyring.errors.KeyringLocked:
            return None
        except keyring.errors.KeyringError:
            return None

    def set(self, entry: str, value: str) -> None:
        status = self.status()
        if not status.can_remember:
            raise SecretUnavailable(status.message)
        try:
            self._backend.set_password(SERVICE, entry, value)
        except keyring.errors.KeyringError as exc:
            # The exception text of some backends can echo arguments; never pass it on.
            raise SecretUnavailable(f"The keyring refused to store {entry} ({exc.__class__.__name__}).") from None

    def delete(self, entry: str) -> None:
        try:
            self._backend.delete_password(SERVICE, entry)
        except keyring.errors.PasswordDeleteError:
            return
        except keyring.errors.KeyringError as exc:
            raise SecretUnavailable(f"The keyring refused to forget {entry} ({exc.__class__.__name__}).") from None

    def api_key(self, vendor: str) -> str | None:
        """The vendor's own environment variable wins (for scripts and CI), else the keyring."""
        value = os.environ.get(API_KEY_ENV[vendor])
        return value if value else self.get(vendor)
