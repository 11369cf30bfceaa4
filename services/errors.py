"""Typed errors. Each message is written for the operator and never holds a secret."""

from __future__ import annotations


class PanelError(Exception):
    """Base of every error the panel expects and can explain."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class Cancelled(PanelError):
    def __init__(self, what: str = "The operation") -> None:
        super().__init__(f"{what} was cancelled.")


class OperationTimeout(PanelError):
    """A remote call did not finish within its time limit."""


class ConnectError(PanelError):
    """The host could not be reached (refused, unreachable, no route, DNS)."""


class AuthError(PanelError):
    """The server refused every key we offered."""


class HostKeyError(PanelError):
    """Base of host key trust failures. Nothing was sent to the host."""

    def __init__(self, message: str, *, host: str, port: int, key_type: str, fingerprint: str) -> None:
        super().__init__(message)
        self.host = host
        self.port = port
        self.key_type = key_type
        self.fingerprint = fingerprint


class UnknownHostKey(HostKeyError):
    """The host offered a key we have never trusted. Carries the offered key."""

    def __init__(self, *, host: str, port: int, key_type: str, fingerprint: str, public_key: str) -> None:
        super().__init__(
            f"The host key of {host}:{port} is not known. It offered {key_type} {fingerprint}. "
            "Check this fingerprint with your provider's console before trusting it.",
            host=host,
            port=port,
            key_type=key_type,
            fingerprint=fingerprint,
        )
        self.public_key = public_key


class HostKeyMismatch(HostKeyError):
    """The host offered a key that differs from the pinned one. Possible man-in-the-middle."""

    def __init__(
        self, *, host: str, port: int, key_type: str, fingerprint: str, expected_fingerprints: list[str]
    ) -> None:
        expected = ", ".join(expected_fingerprints) or "(none)"
        super().__init__(
            f"HOST KEY MISMATCH for {host}:{port}: it offered {key_type} {fingerprint}, "
            f"but the pinned key is {expected}. Nothing was sent. This is how a man-in-the-middle "
            "would look; replace the pin in Settings only if you know why the key changed.",
            host=host,
            port=port,
            key_type=key_type,
            fingerprint=fingerprint,
        )
        self.expected_fingerprints = expected_fingerprints


class RemoteCommandError(PanelError):
    """A remote command ran but failed in a way the caller did not expect."""

    def __init__(self, message: str, *, exit_status: int | None = None, stderr: str = "") -> None:
        super().__init__(message)
        self.exit_status = exit_status
        self.stderr = stderr


class ConfigError(PanelError):
    """The config file is malformed. Names the file, line and key."""

    def __init__(self, message: str, *, path: str, line: int | None = None, key: str | None = None) -> None:
        where = path if line is None else f"{path}:{line}"
        full = f"{where}: {key}: {message}" if key else f"{where}: {message}"
        super().__init__(full)
        self.path = path
        self.line = line
        self.key = key
        self.detail = message


class SecretUnavailable(PanelError):
    """No secret could be had: no keyring, a locked keyring, or the operator declined."""


class ApiError(PanelError):
    """A vendor API answered with an error. The message never holds the key."""

    def __init__(self, message: str, *, vendor: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.vendor = vendor
        self.status = status
        self.code = code
