"""Reading what Debian's ``cryptroot-unlock`` says, into a verdict the procedure can act on."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

_PROMPT = re.compile(r"Please unlock disk ([^\s:]+)")
_OPENED = re.compile(r"(?:cryptsetup: )?([^\s:]+):? set up successfully")
_TOO_MANY = re.compile(r"maximum number of tries exceeded(?: for ([^\s:]+))?")


class Verdict(enum.Enum):
    UNLOCKED = "unlocked"  # cryptsetup opened the volume
    WRONG = "wrong"  # cryptsetup failed, bad password (never retried)
    TOO_MANY = "too-many"  # maximum number of tries exceeded
    LATER = "later"  # "Try again later": no askpass waiting yet
    NOTHING = "nothing"  # nothing is waiting for a passphrase: every volume is set up, the system boots
    DROPPED = "dropped"  # the connection or channel ended without a verdict
    UNKNOWN = "unknown"  # anything else (output kept for the message)


@dataclass(frozen=True)
class Reading:
    verdict: Verdict
    volume: str | None  # the volume that cryptroot-unlock named, if it did
    text: str


def prompted_volume(text: str) -> str | None:
    match = _PROMPT.search(text)
    return match.group(1) if match else None


def read_output(text: str, exit_status: int | None) -> Reading:
    """Judge one run's output (stdout and stderr together). The order of the checks matters: the
    "too many" line follows a "bad password" line, and "already set up" must not read as success."""
    volume = prompted_volume(text)
    lower = text.lower()
    too_many = _TOO_MANY.search(text)
    if too_many:
        return Reading(Verdict.TOO_MANY, too_many.group(1) or volume, text)
    if "bad password" in lower:
        return Reading(Verdict.WRONG, volume, text)
    opened = _OPENED.search(text)
    if opened and exit_status == 0:
        return Reading(Verdict.UNLOCKED, volume or opened.group(1), text)
    if "try again later" in lower:
        return Reading(Verdict.LATER, volume, text)
    if exit_status is None:
        return Reading(Verdict.DROPPED, volume, text)
    if volume is None and any(phrase in lower for phrase in (
            "already set up", "nothing to do", "is booting", "timeout reached while waiting for askpass")):
        return Reading(Verdict.NOTHING, None, text)
    if volume is None and exit_status == 0 and not text.strip():
        return Reading(Verdict.NOTHING, None, text)
    return Reading(Verdict.UNKNOWN, volume, text)
