"""Unlocking a server that waits in its initramfs, and following it until its system answers.

The procedure (issue "Remote disk unlock after a reboot"):

1. Detect: the unlock port answers with a dropbear banner. The same connection is used for the
   unlock, so detecting costs no round trip of its own.
2. Verify: the initramfs host key is checked against its own pin during the key exchange, before
   anything is sent (``services.ssh.connect``). A mismatch raises ``HostKeyMismatch``.
3. Passphrase: asked of the request's provider (keyring, or the operator), only now.
4. Send: on the channel's standard input, with no trailing newline, then EOF, as Debian's
   ``cryptroot-unlock`` expects without a terminal. One connection unlocks one volume; repeat.
5. Don't burn tries: a wrong passphrase or "maximum number of tries" stops at once. "Try again
   later" and lost connections are retried with backoff; a connection lost AFTER the passphrase was
   sent is retried at most ``max_drops_after_send`` times, since that try may have counted.
6. Follow the boot: wait until dropbear is gone and the system's sshd answers with ITS pinned key.
"""

from __future__ import annotations

import datetime as dt
import logging
import select
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import paramiko

from services.cancel import NEVER_CANCELLED, CancelToken
from services.errors import (
    AuthError,
    Cancelled,
    ConnectError,
    HostKeyError,
    OperationTimeout,
    PanelError,
    RemoteCommandError,
)
from services.hostkeys import PublicKey
from services.ssh.endpoint import SshEndpoint
from services.ssh.pool import SshPool
from services.unlock.errors import TooManyTries, UnlockError, UnlockTimeout, WrongPassphrase
from services.unlock.model import (
    Outcome,
    ProgressCallback,
    Step,
    UnlockOptions,
    UnlockProgress,
    UnlockRequest,
    UnlockResult,
    UnlockTimeline,
    utc_now,
)
from services.unlock.output import Reading, Verdict, prompted_volume, read_output

log = logging.getLogger(__name__)

_READ_SIZE = 65536
_UNNAMED = "(unnamed)"  # internal stand-in for "the only volume", never shown
_REDACTED = b"[passphrase]"
_BOOT_POLL_MAX = 0.5  # seconds between looks at a booting system (a refused connect costs nothing)


class _Backoff:
    def __init__(self, options: UnlockOptions) -> None:
        self._initial = options.backoff_initial
        self._max = max(options.backoff_max, options.backoff_initial)
        self._current = self._initial

    def next(self) -> float:
        delay = self._current
        self._current = min(self._current * 2, self._max)
        return delay

    def reset(self) -> None:
        self._current = self._initial


def _polling(endpoint: SshEndpoint, options: UnlockOptions) -> SshEndpoint:
    """The endpoint with short connect limits, for polling a server that may be half way through a boot."""
    return replace(endpoint, connect_timeout=min(endpoint.connect_timeout, options.poll_connect_timeout),
                   banner_timeout=min(endpoint.banner_timeout, options.poll_connect_timeout))


class _Unlock:
    """One run of the procedure for one server. Not shared between threads."""

    def __init__(self, pool: SshPool, request: UnlockRequest, options: UnlockOptions,
                 progress: ProgressCallback | None, cancel: CancelToken) -> None:
        self.pool = pool
        self.request = request
        self.options = options
        self.progress = progress
        self.cancel = cancel
        self.server = request.server
        self.initramfs = _polling(request.initramfs, options)
        self.system = _polling(request.system, options)
        self.started = time.monotonic()
        self.deadline = self.started + options.wait_seconds
        self.went_down = request.went_down_at
        self.initramfs_seen: dt.datetime | None = None
        self.unlocked_at: dt.datetime | None = None
        self.system_up: dt.datetime | None = None
        self.opened: list[tuple[str, dt.datetime]] = []
        self.attempts = 0
        self.said_waiting = False

    # --- reporting ---------------------------------------------------------------------------------

    def emit(self, step: Step, message: str, volume: str | None = None) -> None:
        event = UnlockProgress(step, None if volume == _UNNAMED else volume, message)
        log.info("unlock %s: %s %s", self.server, step, message)
        if self.progress is not None:
            self.progress(event)

    def timeline(self) -> UnlockTimeline:
        return UnlockTimeline(self.went_down, self.initramfs_seen, self.unlocked_at, self.system_up,
                              tuple(self.opened))

    @property
    def volumes_unlocked(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.opened)

    def result(self, outcome: Outcome) -> UnlockResult:
        return UnlockResult(self.server, outcome, self.volumes_unlocked, self.timeline(), self.attempts)

    def fail(self, error: UnlockError) -> UnlockError:
        error.server = self.server
        error.volumes_unlocked = self.volumes_unlocked
        error.timeline = self.timeline()
        self.emit(Step.FAILED, error.message)
        return error

    # --- waiting -------------------------------------------------------------------------------------

    def pause(self, seconds: float) -> None:
        remaining = self.deadline - time.monotonic()
        if self.cancel.wait(max(0.0, min(seconds, remaining))):
            raise Cancelled(f"Unlocking {self.server}")

    def check_deadline(self, remaining_volumes: Sequence[str]) -> None:
        if time.monotonic() < self.deadline:
            return
        wait = self.options.wait_seconds
        if remaining_volumes and self.initramfs_seen is None:
            error = UnlockTimeout(f"{self.server}: its initramfs did not answer on port "
                                  f"{self.request.initramfs.port} within {wait:g} s, and its system is not up.",
                                  phase="initramfs")
        elif remaining_volumes:
            names = ", ".join(v for v in remaining_volumes if v != _UNNAMED) or "its disk"
            error = UnlockTimeout(f"{self.server} is still locked after {wait:g} s ({names}).", phase="initramfs")
        else:
            error = UnlockTimeout(f"{self.server} is unlocked, but its system's sshd did not answer with its "
                                  f"pinned key within {wait:g} s. It may still be booting; check the console.",
                                  phase="boot")
        raise self.fail(error)

    # --- the two endpoints ---------------------------------------------------------------------------

    def connect_initramfs(self) -> paramiko.Transport | None:
        """A verified, logged-in connection to dropbear, or None when the unlock port does not answer."""
        try:
            transport = self.pool.transport(self.initramfs, self.cancel)
        except HostKeyError as error:
            self.emit(Step.FAILED, f"Initramfs host key refused: {error}")
            raise
        except AuthError as error:
            raise self.fail(UnlockError(
                f"The initramfs of {self.server} refused the panel's key ({error}). Add the panel's public "
                "key to dropbear-initramfs' authorized_keys (Unlock page → Check setup), then run "
                "update-initramfs -u.")) from None
        except (ConnectError, OperationTimeout):
            self.cancel.raise_if_cancelled(f"Unlocking {self.server}")
            return None
        version = transport.remote_version or ""
        if "dropbear" not in version.lower():
            self.pool.drop(self.initramfs)
            self.emit(Step.DETECT, f"The unlock port answers as {version!r}, not dropbear: not an initramfs.")
            return None
        if self.initramfs_seen is None:
            self.initramfs_seen = utc_now()
            key = transport.get_remote_server_key()
            self.emit(Step.DETECT, f"The initramfs answers ({version}).")
            offered = PublicKey(key.get_name(), key.asbytes())
            self.emit(Step.VERIFY, f"Its host key matches the pinned initramfs key: {offered.key_type} "
                                   f"{offered.fingerprint}.")
        return transport

    def system_answers(self) -> bool:
        """True when the booted system's sshd answers with its pinned key (a fresh connection)."""
        self.pool.drop(self.system)  # a connection from before a reboot can look alive for a while
        try:
            self.pool.transport(self.system, self.cancel)
        except HostKeyError as error:
            self.emit(Step.FAILED, f"The system answered with a key that is not its pin: {error}")
            raise
        except AuthError:
            return True  # its key was verified before the login; the login is another matter
        except (ConnectError, OperationTimeout):
            self.cancel.raise_if_cancelled(f"Unlocking {self.server}")
            return False
        return True

    # --- one cryptroot-unlock run ----------------------------------------------------------------------

    def fetch(self, volume: str) -> bytearray:
        name = None if volume == _UNNAMED else volume
        self.emit(Step.PASSPHRASE, "Getting the passphrase" + (f" of {name}" if name else "") + ".", volume)
        value = self.request.passphrase(name)
        secret = bytearray(value.encode("utf-8") if isinstance(value, str) else value)
        del value
        if not secret:
            raise self.fail(UnlockError(f"The passphrase for {self.server} is empty; nothing was sent."))
        return secret

    def attempt(self, transport: paramiko.Transport, volume: str | None) -> tuple[Reading, bool]:
        """Run cryptroot-unlock once. ``volume``: send its passphrase with the command (fast path);
        None: send only if cryptroot-unlock prompts for a disk. Returns the reading and whether the
        passphrase was sent."""
        self.attempts += 1
        secret = self.fetch(volume) if volume is not None else None
        output = bytearray()
        sent = False
        exit_status: int | None = None
        channel: paramiko.Channel | None = None
        unregister: Callable[[], None] = lambda: None  # noqa: E731
        try:
            channel = transport.open_session(timeout=self.initramfs.connect_timeout)
            unregister = self.cancel.on_cancel(channel.close)
            deadline = time.monotonic() + self.options.attempt_timeout
            channel.exec_command(self.options.command)
            if secret is None:
                self._read(channel, output, deadline, until_prompt=True, redact=None)
                prompt = prompted_volume(output.decode("utf-8", errors="replace"))
                if prompt is not None:
                    secret = self.fetch(prompt)
            if secret is not None:
                self.emit(Step.SEND, "Sending the passphrase to cryptroot-unlock (standard input, no newline).",
                          volume)
                channel.sendall(memoryview(secret))  # type: ignore[arg-type]  # no copies of the secret
                sent = True
            channel.shutdown_write()
            exit_status = self._read(channel, output, deadline, until_prompt=False, redact=secret)
        except (paramiko.SSHException, EOFError, OSError):
            exit_status = None
        finally:
            if secret is not None:
                # Should the far end echo what it got, the passphrase never reaches a message or the log.
                output[:] = output.replace(secret, _REDACTED)
                secret[:] = bytes(len(secret))  # best effort: the passphrase does not linger in this buffer
            unregister()
            if channel is not None:
                channel.close()
        self.cancel.raise_if_cancelled(f"Unlocking {self.server}")
        return read_output(output.decode("utf-8", errors="replace"), exit_status), sent

    def _read(self, channel: paramiko.Channel, output: bytearray, deadline: float, *, until_prompt: bool,
              redact: bytearray | None) -> int | None:
        """Read stdout and stderr, reporting each line (``redact`` blanked out). Returns the exit status
        (None: lost, or a prompt was seen with ``until_prompt``, or the attempt timed out)."""
        pending = b""

        def report(line: bytes) -> None:
            if redact:
                line = line.replace(redact, _REDACTED)
            text = line.decode("utf-8", errors="replace").strip()
            if text:
                self.emit(Step.SEND, f"initramfs: {text}")

        while True:
            self.cancel.raise_if_cancelled(f"Unlocking {self.server}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            select.select([channel], [], [], min(remaining, 0.5))
            chunk = b""
            while channel.recv_ready():
                chunk += channel.recv(_READ_SIZE)
            while channel.recv_stderr_ready():
                chunk += channel.recv_stderr(_READ_SIZE)
            if chunk:
                output += chunk
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    report(line)
                if until_prompt and prompted_volume(output.decode("utf-8", errors="replace")):
                    report(pending)  # a prompt without its newline ("Please unlock disk X: ")
                    return None
            if channel.exit_status_ready() and not channel.recv_ready() and not channel.recv_stderr_ready():
                report(pending)
                return channel.recv_exit_status()
            if channel.closed and not channel.recv_ready():
                return None

    # --- the whole procedure ---------------------------------------------------------------------------

    def run(self) -> UnlockResult:
        remaining: list[str] = list(self.request.volumes) or [_UNNAMED]
        backoff = _Backoff(self.options)
        drops_after_send = 0
        booting_confirmed = False
        last_unlock = 0.0
        self.emit(Step.DETECT, f"Looking for the initramfs of {self.server} on port {self.initramfs.port}.")
        while True:
            self.check_deadline(remaining)
            if not remaining:
                if not self.options.follow_boot:
                    return self.result(Outcome.BOOTING)
                if self.system_answers():
                    self.system_up = utc_now()
                    self.emit(Step.UP, f"{self.server}'s system answers with its pinned key: it is up.")
                    return self.result(Outcome.UNLOCKED)
                if not booting_confirmed and time.monotonic() - last_unlock >= self.options.extra_volume_check_after:
                    # Not up yet and the unlock port may still answer: is another volume waiting?
                    last_unlock = time.monotonic()
                    transport = self.connect_initramfs()
                    if transport is not None:
                        try:
                            reading, _ = self.attempt(transport, None)
                        finally:
                            self.pool.drop(self.initramfs)
                        if reading.verdict is Verdict.NOTHING:
                            booting_confirmed = True
                        elif reading.verdict is Verdict.UNLOCKED:
                            self.record_unlocked(reading.volume, [])
                        elif reading.verdict in (Verdict.WRONG, Verdict.TOO_MANY):
                            self.stop_on(reading)
                self.pause(min(backoff.next(), _BOOT_POLL_MAX))
                continue

            transport = self.connect_initramfs()
            if transport is None:
                if self.system_answers():
                    self.system_up = utc_now()
                    if self.attempts == 0:
                        self.emit(Step.UP, f"{self.server} is up: its system answers with its pinned key. "
                                           "Nothing to unlock.")
                        return self.result(Outcome.ALREADY_UP)
                    self.emit(Step.UP, f"{self.server}'s system answers with its pinned key: it is up.")
                    return self.result(Outcome.UNLOCKED)
                if not self.said_waiting:
                    self.said_waiting = True
                    self.emit(Step.DETECT, f"Neither the initramfs nor the system of {self.server} answers yet; "
                                           "waiting.")
                self.pause(backoff.next())
                continue

            try:
                reading, sent = self.attempt(transport, remaining[0] if self.options.send_before_prompt else None)
            finally:
                self.pool.drop(self.initramfs)  # one connection, one volume (dropbear may close it anyway)
            verdict = reading.verdict
            if verdict is Verdict.UNLOCKED:
                self.record_unlocked(reading.volume, remaining)
                drops_after_send = 0
                backoff.reset()
                if not remaining:
                    last_unlock = time.monotonic()
                    self.emit(Step.BOOT, f"Every volume is unlocked; waiting for {self.server}'s system to boot.")
                continue
            if verdict in (Verdict.WRONG, Verdict.TOO_MANY):
                self.stop_on(reading, remaining[0])
            if verdict is Verdict.NOTHING:
                remaining.clear()  # unlocked meanwhile (say, from the console)
                booting_confirmed = True
                last_unlock = time.monotonic()
                self.emit(Step.BOOT, "cryptroot-unlock says nothing waits for a passphrase: the system boots.")
                continue
            if verdict is Verdict.LATER:
                delay = backoff.next()
                self.emit(Step.RETRY, f"The initramfs is not ready for the passphrase yet (Try again later); "
                                      f"retrying in {delay:.1f} s.")
                self.pause(delay)
                continue
            if verdict is Verdict.DROPPED:
                if sent:
                    drops_after_send += 1
                    if drops_after_send > self.options.max_drops_after_send:
                        raise self.fail(UnlockError(
                            f"The connection to {self.server}'s initramfs was lost after the passphrase was sent, "
                            f"{drops_after_send} times. The panel stopped so as not to use up the tries; look at "
                            "the console, then unlock again."))
                delay = backoff.next()
                self.emit(Step.RETRY, "The connection was lost before cryptroot-unlock answered"
                                      + (" (after the passphrase was sent)" if sent else "")
                                      + f"; retrying in {delay:.1f} s.")
                self.pause(delay)
                continue
            last = " / ".join(line.strip() for line in reading.text.strip().splitlines()[-3:]) or "(nothing)"
            raise self.fail(UnlockError(f"cryptroot-unlock on {self.server} answered something the panel does not "
                                        f"know, so it stopped without retrying: {last}"))

    def record_unlocked(self, named: str | None, remaining: list[str]) -> None:
        """Note a volume as open. ``named``: what cryptroot-unlock called it, if it said."""
        if named is not None and named in remaining:
            remaining.remove(named)
            volume = named
        elif remaining:
            taken = remaining.pop(0)
            volume = named or taken
        else:
            volume = named or _UNNAMED
        now = utc_now()
        self.unlocked_at = now
        name = volume if volume != _UNNAMED else "disk"
        self.opened.append((name, now))
        self.emit(Step.UNLOCKED, f"{name} is unlocked.", volume)

    def stop_on(self, reading: Reading, expected: str | None = None) -> None:
        volume = reading.volume or (None if expected in (None, _UNNAMED) else expected)
        if reading.verdict is Verdict.TOO_MANY:
            raise self.fail(TooManyTries(self.server, volume))
        raise self.fail(WrongPassphrase(self.server, volume))


def unlock_server(
    pool: SshPool,
    request: UnlockRequest,
    options: UnlockOptions = UnlockOptions(),  # noqa: B008 - frozen dataclass
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken = NEVER_CANCELLED,
) -> UnlockResult:
    """Unlock every encrypted volume of one server and (unless ``follow_boot`` is off) wait until its
    system answers with its pinned key.

    Raises ``HostKeyMismatch``/``UnknownHostKey`` (nothing sent), ``WrongPassphrase``,
    ``TooManyTries``, ``UnlockTimeout``, ``UnlockError``, ``Cancelled``; a provider's own
    ``PanelError`` (e.g. ``SecretUnavailable``) passes through.
    """
    return _Unlock(pool, request, options, progress, cancel).run()


def reboot_and_unlock(
    pool: SshPool,
    request: UnlockRequest,
    options: UnlockOptions = UnlockOptions(),  # noqa: B008
    *,
    reboot: Callable[[], object] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken = NEVER_CANCELLED,
) -> UnlockResult:
    """Reboot a server (``options.reboot_command`` over its verified session, or ``reboot()``), follow it
    down, and unlock it as soon as its initramfs appears. The caller asks for confirmation and audits."""

    def emit(step: Step, message: str) -> None:
        if progress is not None:
            progress(UnlockProgress(step, None, message))

    system = _polling(request.system, options)
    pool.transport(request.system, cancel)  # up and trusted, or this raises before anything is sent
    if reboot is None:
        emit(Step.REBOOT, f"Rebooting {request.server}: {options.reboot_command}")
        try:
            result = pool.run(request.system, options.reboot_command, timeout=30, cancel=cancel)
        except (ConnectError, OperationTimeout):
            pass  # the connection going away is what a reboot does
        else:
            if not result.ok:
                raise RemoteCommandError(
                    f"The reboot command failed on {request.server} (status {result.exit_status}): "
                    f"{result.error_text().strip()[:300]}", exit_status=result.exit_status, stderr=result.error_text())
    else:
        emit(Step.REBOOT, f"Rebooting {request.server}.")
        reboot()
    pool.drop(request.system)
    emit(Step.DOWN, f"Waiting for {request.server} to go down.")
    deadline = time.monotonic() + options.down_timeout
    while True:
        pool.drop(system)
        try:
            pool.transport(system, cancel)
        except (ConnectError, OperationTimeout, AuthError):
            break
        if time.monotonic() > deadline:
            raise UnlockTimeout(f"{request.server} was asked to reboot but still answered after "
                                f"{options.down_timeout:g} s.", phase="down", server=request.server)
        if cancel.wait(0.25):
            raise Cancelled(f"Rebooting {request.server}")
    pool.drop(system)
    went_down = utc_now()
    emit(Step.DOWN, f"{request.server} went down.")
    return unlock_server(pool, replace(request, went_down_at=went_down), options, progress=progress, cancel=cancel)


def unlock_many(
    pool: SshPool,
    requests: Sequence[UnlockRequest],
    options: UnlockOptions = UnlockOptions(),  # noqa: B008
    *,
    progress: Callable[[str, UnlockProgress], object] | None = None,
    cancel: CancelToken = NEVER_CANCELLED,
    max_workers: int = 16,
) -> dict[str, UnlockResult | PanelError]:
    """Unlock several servers in parallel (after a provider-wide reboot). One failure stops no other."""
    if not requests:
        return {}

    def one(request: UnlockRequest) -> UnlockResult | PanelError:
        def report(event: UnlockProgress) -> None:
            if progress is not None:
                progress(request.server, event)

        try:
            return unlock_server(pool, request, options, progress=report, cancel=cancel)
        except PanelError as error:
            return error

    with ThreadPoolExecutor(max_workers=min(max_workers, len(requests)), thread_name_prefix="unlock") as executor:
        futures = {request.server: executor.submit(one, request) for request in requests}
        return {server: future.result() for server, future in futures.items()}
