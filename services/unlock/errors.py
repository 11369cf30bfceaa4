"""Typed errors of the unlock procedure. Messages are for the operator and never hold a passphrase."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.errors import PanelError

if TYPE_CHECKING:
    from services.unlock.model import UnlockTimeline


class UnlockError(PanelError):
    """The unlock stopped. Carries what was done before it stopped, for the report and the audit log."""

    def __init__(self, message: str, *, server: str = "", volumes_unlocked: tuple[str, ...] = (),
                 timeline: UnlockTimeline | None = None) -> None:
        super().__init__(message)
        self.server = server
        self.volumes_unlocked = volumes_unlocked
        self.timeline = timeline


def _what(volume: str | None) -> str:
    return f"volume {volume}" if volume else "the disk"


class WrongPassphrase(UnlockError):
    """cryptsetup refused the passphrase. Never retried by the panel: each try counts on the server."""

    def __init__(self, server: str, volume: str | None, *, volumes_unlocked: tuple[str, ...] = (),
                 timeline: UnlockTimeline | None = None) -> None:
        super().__init__(
            f"The passphrase for {_what(volume)} of {server} is wrong (cryptsetup: bad password). It was "
            "tried once and not again, so that no more tries are used up. Check the keyring entry or type "
            "it, then unlock again.",
            server=server, volumes_unlocked=volumes_unlocked, timeline=timeline,
        )
        self.volume = volume


class TooManyTries(UnlockError):
    """The initramfs has given up on this volume (cryptsetup's maximum number of tries)."""

    def __init__(self, server: str, volume: str | None, *, volumes_unlocked: tuple[str, ...] = (),
                 timeline: UnlockTimeline | None = None) -> None:
        super().__init__(
            f"{server}: the maximum number of tries is exceeded for {_what(volume)}. The initramfs takes "
            "no more passphrases until the server is restarted (from the provider's console), so the "
            "panel stopped.",
            server=server, volumes_unlocked=volumes_unlocked, timeline=timeline,
        )
        self.volume = volume


class UnlockTimeout(UnlockError):
    """The wait ran out: still locked, or unlocked but the system's sshd does not answer yet."""

    def __init__(self, message: str, *, phase: str, server: str = "", volumes_unlocked: tuple[str, ...] = (),
                 timeline: UnlockTimeline | None = None) -> None:
        super().__init__(message, server=server, volumes_unlocked=volumes_unlocked, timeline=timeline)
        self.phase = phase  # "initramfs" (never seen, or still locked) or "boot" (unlocked, not up yet)
