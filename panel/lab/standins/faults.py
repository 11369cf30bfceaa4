"""Switches that make a stand-in misbehave on purpose, so tests can see the clients cope.

Every switch is a counter or a setting guarded by one lock, read once per request by
:meth:`Faults.decide`. Tests flip them through the Python API (in-process servers) or
through ``POST /__lab__/faults`` (the child process started by ``start_standins``).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

DropMode = Literal["error", "close"]
Action = Literal["ok", "throttle", "fail", "drop", "malformed"]


@dataclass(frozen=True)
class Decision:
    """What to do with one request, decided before it is routed."""

    action: Action = "ok"
    delay_s: float = 0.0
    status: int = 500  # for "fail"
    retry_after: float = 1.0  # for "throttle"
    drop_mode: DropMode = "error"  # for "drop"


class Faults:
    """Thread-safe fault switches for one stand-in."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._fail_next = 0
        self._fail_status = 500
        self._drop_next = 0
        self._drop_mode: DropMode = "error"
        self._malformed_next = 0
        self._throttle_next = 0
        self._retry_after = 1.0
        self._delay_ms = 0
        self._rate_limit: int | None = None
        self._rate_window = 60.0
        self._hits: deque[float] = deque()
        self.requests_seen = 0  # every request but the /__lab__ ones, for benches and tests

    # -- switches -------------------------------------------------------------------------------

    def fail_next(self, count: int = 1, status: int = 500) -> None:
        """Answer the next ``count`` requests with ``status`` without applying them."""
        with self._lock:
            self._fail_next, self._fail_status = count, status

    def drop_next(self, count: int = 1, mode: DropMode = "error") -> None:
        """Apply the next ``count`` requests, then lose the answer: a 500 ("error") or a closed
        connection ("close"). This is the dropped-response case that idempotency keys exist for."""
        with self._lock:
            self._drop_next, self._drop_mode = count, mode

    def malformed_next(self, count: int = 1) -> None:
        """Apply the next ``count`` requests and answer with a truncated (invalid) JSON body."""
        with self._lock:
            self._malformed_next = count

    def throttle_next(self, count: int = 1, retry_after: float | None = None) -> None:
        """Answer the next ``count`` requests with the vendor's 429."""
        with self._lock:
            self._throttle_next = count
            if retry_after is not None:
                self._retry_after = retry_after

    def set_rate_limit(self, max_requests: int | None, per_seconds: float = 60.0) -> None:
        """A sliding-window limit like the vendors' (Cloudflare: 1200 per 5 min). None turns it off.
        A refused request is told, in Retry-After, when the oldest hit leaves the window."""
        with self._lock:
            self._rate_limit, self._rate_window = max_requests, per_seconds
            self._hits.clear()

    def set_delay(self, milliseconds: int) -> None:
        """Answer every request this much later (a slow vendor)."""
        with self._lock:
            self._delay_ms = milliseconds

    def reset(self) -> None:
        with self._lock:
            self._fail_next = self._drop_next = self._malformed_next = self._throttle_next = 0
            self._fail_status, self._drop_mode, self._retry_after = 500, "error", 1.0
            self._delay_ms, self._rate_limit, self._rate_window = 0, None, 60.0
            self._hits.clear()

    # -- the control endpoint ---------------------------------------------------------------------

    def configure(self, settings: Mapping[str, Any]) -> None:
        """Apply a JSON object from ``POST /__lab__/faults``. Unknown keys raise ValueError."""
        known = {"reset", "fail_next", "status", "drop_next", "drop_mode", "malformed_next",
                 "throttle_next", "retry_after", "delay_ms", "rate_limit", "rate_window"}
        unknown = set(settings) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        if settings.get("reset"):
            self.reset()
        retry_after = settings.get("retry_after")
        if "fail_next" in settings:
            self.fail_next(int(settings["fail_next"]), int(settings.get("status", 500)))
        if "drop_next" in settings:
            mode = settings.get("drop_mode", "error")
            if mode not in ("error", "close"):
                raise ValueError("drop_mode must be 'error' or 'close'")
            self.drop_next(int(settings["drop_next"]), mode)
        if "malformed_next" in settings:
            self.malformed_next(int(settings["malformed_next"]))
        if "throttle_next" in settings:
            self.throttle_next(int(settings["throttle_next"]), retry_after)
        if "rate_limit" in settings:
            limit = settings["rate_limit"]
            self.set_rate_limit(None if limit is None else int(limit), float(settings.get("rate_window", 60.0)))
        if retry_after is not None and "throttle_next" not in settings:
            with self._lock:
                self._retry_after = float(retry_after)
        if "delay_ms" in settings:
            self.set_delay(int(settings["delay_ms"]))

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "fail_next": self._fail_next, "status": self._fail_status,
                "drop_next": self._drop_next, "drop_mode": self._drop_mode,
                "malformed_next": self._malformed_next, "throttle_next": self._throttle_next,
                "retry_after": self._retry_after, "delay_ms": self._delay_ms,
                "rate_limit": self._rate_limit, "rate_window": self._rate_window,
                "requests_seen": self.requests_seen,
            }

    # -- per request ------------------------------------------------------------------------------

    def decide(self) -> Decision:
        """Count one request and pick its fate. Refusals (429, 5xx) win over mangled answers."""
        with self._lock:
            self.requests_seen += 1
            delay = self._delay_ms / 1000.0
            if self._throttle_next > 0:
                self._throttle_next -= 1
                return Decision("throttle", delay, retry_after=self._retry_after)
            if self._rate_limit is not None:
                now = self._clock()
                while self._hits and self._hits[0] <= now - self._rate_window:
                    self._hits.popleft()
                if len(self._hits) >= self._rate_limit:
                    # The honest wait: when the oldest hit in the window expires.
                    wait = self._hits[0] + self._rate_window - now
                    return Decision("throttle", delay, retry_after=max(wait, 0.01))
                self._hits.append(now)
            if self._fail_next > 0:
                self._fail_next -= 1
                return Decision("fail", delay, status=self._fail_status)
            if self._drop_next > 0:
                self._drop_next -= 1
                return Decision("drop", delay, drop_mode=self._drop_mode)
            if self._malformed_next > 0:
                self._malformed_next -= 1
                return Decision("malformed", delay)
            return Decision("ok", delay)
