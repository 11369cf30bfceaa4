"""The dataclasses of the unlock procedure: what to unlock, how, what happened."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from services.inventory import ServerSpec
from services.ssh.endpoint import SshEndpoint

PassphraseProvider = Callable[[str | None], "str | bytes"]
"""``provider(volume)`` returns the passphrase of ``volume`` (None: the server's only or unnamed volume).

Called on the procedure's thread, only after the initramfs host key was verified, once per send. It
may look in the keyring or ask the operator; it raises a ``PanelError`` (e.g. ``SecretUnavailable``)
to stop.
"""


class Step(enum.StrEnum):
    REBOOT = "reboot"  # the reboot command is sent
    DOWN = "down"  # following the server down
    DETECT = "detect"  # looking for the initramfs (dropbear) on the unlock port
    VERIFY = "verify"  # the initramfs host key was checked against its pin
    PASSPHRASE = "passphrase"  # noqa: S105 - a step name: the passphrase is fetched or asked for
    SEND = "send"  # sent to cryptroot-unlock; its messages
    RETRY = "retry"  # a retry after "Try again later" or a lost connection
    UNLOCKED = "unlocked"  # one volume opened
    BOOT = "boot"  # every volume open; waiting for the system's sshd
    UP = "up"  # the system answers with its pinned key
    FAILED = "failed"


STEP_ORDER: tuple[Step, ...] = (Step.REBOOT, Step.DOWN, Step.DETECT, Step.VERIFY, Step.PASSPHRASE, Step.SEND,
                                Step.UNLOCKED, Step.BOOT, Step.UP)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class UnlockProgress:
    step: Step
    volume: str | None
    message: str
    at: dt.datetime = field(default_factory=utc_now)

    def line(self, started: dt.datetime | None = None) -> str:
        offset = f"+{(self.at - started).total_seconds():6.2f}s " if started else ""
        volume = f" [{self.volume}]" if self.volume else ""
        return f"{offset}{self.step:<10}{volume} {self.message}"


ProgressCallback = Callable[[UnlockProgress], object]


@dataclass(frozen=True)
class UnlockOptions:
    wait_seconds: float = 300.0  # from the start until unlocked AND up
    backoff_initial: float = 0.2  # first pause before a retry, doubled each time ...
    backoff_max: float = 2.0  # ... up to this
    poll_connect_timeout: float = 4.0  # TCP connect and banner limits while polling a booting server
    command: str = "cryptroot-unlock"
    attempt_timeout: float = 60.0  # one cryptroot-unlock run, passphrase check included
    send_before_prompt: bool = True  # send with the command (fast); False: wait for its prompt first
    max_drops_after_send: int = 1  # retries after a connection lost once the passphrase was sent
    extra_volume_check_after: float = 4.0  # unlocked, not up yet, dropbear still there: look again
    follow_boot: bool = True  # False: return as soon as every volume is unlocked
    reboot_command: str = "systemctl reboot"
    down_timeout: float = 120.0  # for reboot_and_unlock: how long the server may take to go down


@dataclass(frozen=True)
class UnlockRequest:
    spec: ServerSpec
    system: SshEndpoint
    initramfs: SshEndpoint
    passphrase: PassphraseProvider
    went_down_at: dt.datetime | None = None  # when known (the fleet poller, or a reboot we sent)

    @property
    def server(self) -> str:
        return self.spec.name

    @property
    def volumes(self) -> tuple[str, ...]:
        return self.spec.unlock_volumes


@dataclass(frozen=True)
class UnlockTimeline:
    went_down: dt.datetime | None = None
    initramfs_seen: dt.datetime | None = None
    unlocked: dt.datetime | None = None  # the last volume
    system_up: dt.datetime | None = None
    volumes: tuple[tuple[str, dt.datetime], ...] = ()  # each volume as it opened

    def lines(self) -> list[str]:
        def clock(moment: dt.datetime | None) -> str:
            return moment.astimezone().strftime("%H:%M:%S.%f")[:-3] if moment else "—"

        rows = [("went down", self.went_down), ("initramfs seen", self.initramfs_seen),
                ("unlocked", self.unlocked), ("system up", self.system_up)]
        lines = [f"{name:<15} {clock(moment)}" for name, moment in rows]
        lines += [f"  volume {name:<7} {clock(moment)}" for name, moment in self.volumes]
        if self.unlocked and self.system_up:
            lines.append(f"boot took {(self.system_up - self.unlocked).total_seconds():.1f} s after the unlock")
        return lines

    def summary(self) -> str:
        """One line for the audit log."""
        parts = []
        for name, moment in (("down", self.went_down), ("initramfs", self.initramfs_seen),
                             ("unlocked", self.unlocked), ("up", self.system_up)):
            if moment:
                parts.append(f"{name} {moment.isoformat(timespec='seconds')}")
        return ", ".join(parts)


class Outcome(enum.StrEnum):
    UNLOCKED = "unlocked"  # we sent the passphrase(s); every volume opened
    ALREADY_UP = "already-up"  # the system already answered; nothing was sent
    BOOTING = "booting"  # unlocked, follow_boot=False: not waited for the system


@dataclass(frozen=True)
class UnlockResult:
    server: str
    outcome: Outcome
    volumes_unlocked: tuple[str, ...]
    timeline: UnlockTimeline
    attempts: int  # connections that ran cryptroot-unlock

    def summary(self) -> str:
        if self.outcome is Outcome.ALREADY_UP:
            return f"{self.server} was already up; nothing was sent."
        volumes = ", ".join(self.volumes_unlocked) or "the disk"
        text = f"{self.server}: unlocked {volumes}"
        if self.outcome is Outcome.UNLOCKED and self.timeline.system_up:
            text += " and the system is up"
        return text + "."
