"""What a check says: a severity, a stable subject, the evidence it saw, and the next step.

Plain frozen dataclasses, shared by the window and the CLI. Nothing here holds a secret.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


class Severity(enum.StrEnum):
    OK = "OK"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"
    UNKNOWN = "UNKNOWN"

    @property
    def rank(self) -> int:
        """For sorting and "the worst": CRITICAL > WARNING > UNKNOWN > OK."""
        return _RANK[self]

    @property
    def exit_code(self) -> int:
        """The monitoring-plugin convention: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."""
        return _EXIT[self]

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls(str(text).upper())
        except ValueError:
            return cls.UNKNOWN


_RANK = {Severity.CRITICAL: 3, Severity.WARNING: 2, Severity.UNKNOWN: 1, Severity.OK: 0}
_EXIT = {Severity.OK: 0, Severity.WARNING: 1, Severity.CRITICAL: 2, Severity.UNKNOWN: 3}


def worst(severities: Iterable[Severity]) -> Severity:
    """The most urgent severity (CRITICAL, then WARNING, then UNKNOWN); OK for none."""
    return max(severities, key=lambda s: s.rank, default=Severity.OK)


def exit_code(severities: Iterable[Severity]) -> int:
    return worst(severities).exit_code


# The pages an alert's action button leads to (views' page titles).
PAGE_FLEET = "Fleet"
PAGE_UNLOCK = "Unlock"
PAGE_ALERTS = "Alerts"
PAGE_BACKUPS = "Backups"
PAGE_LOGS = "Logs"
PAGE_SERVICES = "Services"
PAGE_PROCESSES = "Processes"
PAGE_TIMELINE = "Timeline"
PAGE_CLOUDFLARE = "Cloudflare"
PAGE_BILLING = "Billing"
PAGE_MAIL = "Mail"
PAGE_AUDIT = "Audit"
PAGE_SETTINGS = "Settings"


@dataclass(frozen=True)
class Action:
    """The suggested next step: a label, and the page (with an argument, usually the server) to open."""

    title: str
    page: str
    argument: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "page": self.page, "argument": self.argument}


@dataclass(frozen=True)
class CheckResult:
    """One finding of one check about one subject.

    ``server`` is "" for checks about the whole business (Stripe, Mailgun, Cloudflare). ``subject``
    tells findings of the same check apart ("tcp 0.0.0.0:8081", a mount point, a unit) and, with
    the server and check id, is the key that de-duplicates repeats. An OK result carries no alert;
    it tells the alert history that the check ran and found nothing (so open alerts resolve).
    """

    server: str
    check: str
    severity: Severity
    summary: str
    subject: str = ""
    evidence: tuple[str, ...] = ()
    action: Action | None = None
    data: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)  # check-specific facts

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.server, self.check, self.subject)

    @property
    def is_alert(self) -> bool:
        return self.severity is not Severity.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "server": self.server or None,
            "check": self.check,
            "subject": self.subject,
            "severity": str(self.severity),
            "summary": self.summary,
            "evidence": list(self.evidence),
            "action": self.action.to_json() if self.action else None,
        }


def cap_evidence(lines: Iterable[str], limit: int = 200, width: int = 400) -> tuple[str, ...]:
    """At most ``limit`` lines of at most ``width`` characters, with a note of what was left out."""
    kept: list[str] = []
    extra = 0
    for line in lines:
        if len(kept) < limit:
            text = line if len(line) <= width else line[: width - 1] + "…"
            kept.append(text)
        else:
            extra += 1
    if extra:
        kept.append(f"… and {extra} more")
    return tuple(kept)
