"""Mailgun: domains and their DNS records, delivery events, stats, suppressions and a test send,
against the US or EU API (``[mailgun] base_url``; a domain lives in one region only)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, Literal
from urllib.parse import quote

from services.cancel import NEVER_CANCELLED, CancelToken
from services.http import (
    DEFAULT_RETRY,
    DEFAULT_TIMEOUTS,
    ApiClient,
    ApiValidationError,
    BasicAuth,
    HttpClient,
    RetryPolicy,
    Secret,
    Timeouts,
    expect_dict,
    expect_list,
    http_date,
    mailgun_pages,
)
from services.inventory import MailgunSpec

SuppressionKind = Literal["bounces", "complaints", "unsubscribes"]
SUPPRESSION_KINDS = ("bounces", "complaints", "unsubscribes")
EVENT_PAGE = 300  # Mailgun's largest events page
DOMAIN_PAGE = 1000
SUPPRESSION_PAGE = 1000
FAILURE_RATE_WARNING = 0.05  # 5 % of attempted deliveries failing for good is worth an alert


def _epoch(value: Any) -> datetime | None:
    return datetime.fromtimestamp(float(value), UTC) if isinstance(value, int | float) else None


# -- dataclasses -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DnsRecordStatus:
    record_type: str
    name: str
    value: str
    valid: str  # valid | invalid | unknown
    is_active: bool

    @property
    def ok(self) -> bool:
        return self.valid == "valid"


@dataclass(frozen=True)
class MailDomain:
    name: str
    state: str  # active | unverified | disabled
    type: str
    created_at: datetime | None
    is_disabled: bool
    sending_records: tuple[DnsRecordStatus, ...] = ()
    receiving_records: tuple[DnsRecordStatus, ...] = ()

    @property
    def verified(self) -> bool:
        return self.state == "active"


@dataclass(frozen=True)
class MailEvent:
    id: str
    event: str  # accepted | delivered | failed | opened | clicked | complained | unsubscribed
    timestamp: datetime
    recipient: str
    severity: str | None  # failed only: permanent | temporary
    reason: str | None  # failed only: bounce | suppress-bounce | generic | ...
    code: int | None  # SMTP code from delivery-status
    message: str  # the remote server's words
    description: str
    subject: str | None
    message_id: str | None
    group_id: int | None  # from the SaaS's user-variables, when it set them


@dataclass(frozen=True)
class StatsBucket:
    start: datetime
    accepted: int
    delivered: int
    failed_temporary: int
    failed_permanent: int


@dataclass(frozen=True)
class Suppression:
    kind: str
    address: str
    created_at: datetime | None
    code: str | None = None  # bounces: SMTP code
    error: str | None = None  # bounces: the remote server's words
    tags: tuple[str, ...] = ()  # unsubscribes


@dataclass(frozen=True)
class SendResult:
    id: str
    message: str
    test_mode: bool


@dataclass(frozen=True)
class FailureRate:
    hours: int
    accepted: int
    delivered: int
    failed_permanent: int

    @property
    def rate(self) -> float:
        """Permanent failures among finished delivery attempts (delivered or failed for good)."""
        finished = self.delivered + self.failed_permanent
        return self.failed_permanent / finished if finished else 0.0


@dataclass(frozen=True)
class MailCheck:
    domain: str
    failure_rate: FailureRate
    unverified_domains: tuple[str, ...]
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


# -- parsing -----------------------------------------------------------------------------------------


def _records(raw: Any) -> tuple[DnsRecordStatus, ...]:
    return tuple(DnsRecordStatus(record_type=str(r.get("record_type")), name=str(r.get("name")),
                                 value=str(r.get("value")), valid=str(r.get("valid") or "unknown"),
                                 is_active=bool(r.get("is_active", True)))
                 for r in (raw if isinstance(raw, list) else []) if isinstance(r, dict))


def _domain(raw: Any, sending: Any = None, receiving: Any = None) -> MailDomain:
    item = expect_dict(raw, "mailgun", "a domain")
    return MailDomain(name=str(item.get("name")), state=str(item.get("state")), type=str(item.get("type")),
                      created_at=http_date(item.get("created_at")), is_disabled=bool(item.get("is_disabled")),
                      sending_records=_records(sending), receiving_records=_records(receiving))


def _event(raw: Any) -> MailEvent:
    item = expect_dict(raw, "mailgun", "an event")
    status = item.get("delivery-status") if isinstance(item.get("delivery-status"), dict) else {}
    message = item.get("message") if isinstance(item.get("message"), dict) else {}
    headers = (message or {}).get("headers") or {}
    variables = item.get("user-variables") if isinstance(item.get("user-variables"), dict) else {}
    group = (variables or {}).get("group_id")
    code = (status or {}).get("code")
    return MailEvent(
        id=str(item.get("id")), event=str(item.get("event")),
        timestamp=_epoch(item.get("timestamp")) or datetime.fromtimestamp(0, UTC),
        recipient=str(item.get("recipient") or ""), severity=item.get("severity"), reason=item.get("reason"),
        code=int(code) if isinstance(code, int | str) and str(code).isdigit() else None,
        message=str((status or {}).get("message") or ""), description=str((status or {}).get("description") or ""),
        subject=headers.get("subject"), message_id=headers.get("message-id"),
        group_id=int(group) if isinstance(group, str) and group.isdigit() else None)


def _count(row: dict[str, Any], *path: str) -> int:
    node: Any = row
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return int(node) if isinstance(node, int | float) else 0


# -- the client --------------------------------------------------------------------------------------


class MailgunClient(ApiClient):
    """The sending domain of the config. ``base_url`` picks the region: api.mailgun.net (US) or
    api.eu.mailgun.net (EU)."""

    def __init__(self, spec: MailgunSpec, key: str, *, timeouts: Timeouts = DEFAULT_TIMEOUTS,
                 retry: RetryPolicy = DEFAULT_RETRY) -> None:
        self.spec = spec
        secret = Secret(key)
        self.http = HttpClient(vendor="mailgun", base_url=spec.base_url, auth=BasicAuth("api", secret),
                               secret=secret, timeouts=timeouts, retry=retry)

    def __repr__(self) -> str:
        return f"MailgunClient(domain={self.spec.domain!r}, base_url={self.spec.base_url!r})"

    # -- domains ----------------------------------------------------------------------------------

    def domains(self, *, cancel: CancelToken = NEVER_CANCELLED) -> list[MailDomain]:
        """Every domain of the account in this region (paged with skip/limit)."""
        found: list[MailDomain] = []
        while True:
            body = expect_dict(self.http.get("/v4/domains", params={"limit": DOMAIN_PAGE, "skip": len(found)},
                                             cancel=cancel), "mailgun", "domains")
            items = expect_list(body.get("items"), "mailgun", "domains")
            found += [_domain(item) for item in items]
            total = body.get("total_count")
            if not items or not isinstance(total, int) or len(found) >= total:
                return found

    def domain(self, name: str | None = None, *, cancel: CancelToken = NEVER_CANCELLED) -> MailDomain:
        """One domain with its sending and receiving DNS records and whether each checks out."""
        name = name or self.spec.domain
        body = expect_dict(self.http.get(f"/v4/domains/{quote(name)}", cancel=cancel), "mailgun", "domain")
        return _domain(body.get("domain"), body.get("sending_dns_records"), body.get("receiving_dns_records"))

    def verify_domain(self, name: str | None = None, *, cancel: CancelToken = NEVER_CANCELLED) -> MailDomain:
        """Ask Mailgun to check the domain's DNS records again now."""
        name = name or self.spec.domain
        body = expect_dict(self.http.request("PUT", f"/v4/domains/{quote(name)}/verify", cancel=cancel).data,
                           "mailgun", "verify")
        return _domain(body.get("domain"), body.get("sending_dns_records"), body.get("receiving_dns_records"))

    # -- events and stats -------------------------------------------------------------------------

    def iter_events(self, *, begin: datetime, end: datetime | None = None, event: str | None = None,
                    severity: str | None = None, recipient: str | None = None,
                    cancel: CancelToken = NEVER_CANCELLED) -> Iterator[MailEvent]:
        """Events from ``begin`` to ``end`` (now), oldest first, 300 a page until an empty page.
        ``event`` takes Mailgun's expressions: "failed", "failed OR delivered", "NOT accepted"."""
        params: dict[str, Any] = {"begin": format_datetime(begin.astimezone(UTC), usegmt=True),
                                  "ascending": "yes", "limit": EVENT_PAGE}
        if end is not None:
            # RFC 2822 has whole seconds: round the end up, or this second's events would be left out.
            whole = end.astimezone(UTC).replace(microsecond=0)
            params["end"] = format_datetime(whole + timedelta(seconds=1) if whole < end else whole, usegmt=True)
        params.update({k: v for k, v in {"event": event, "severity": severity, "recipient": recipient}.items() if v})
        for page in mailgun_pages(self.http, f"/v3/{quote(self.spec.domain)}/events", params, cancel=cancel):
            for raw in page:
                yield _event(raw)

    def events(self, *, hours: int = 24, event: str | None = None, severity: str | None = None,
               recipient: str | None = None, now: datetime | None = None,
               cancel: CancelToken = NEVER_CANCELLED) -> list[MailEvent]:
        now = now or datetime.now(UTC)
        return list(self.iter_events(begin=now - timedelta(hours=hours), end=now, event=event, severity=severity,
                                     recipient=recipient, cancel=cancel))

    def failures(self, *, hours: int = 24, permanent_only: bool = True, now: datetime | None = None,
                 cancel: CancelToken = NEVER_CANCELLED) -> list[MailEvent]:
        """Failed deliveries with their reasons (bounce, suppress-bounce, ...), newest first."""
        found = self.events(hours=hours, event="failed", severity="permanent" if permanent_only else None, now=now,
                            cancel=cancel)
        return sorted(found, key=lambda e: e.timestamp, reverse=True)

    def stats(self, *, duration: str = "24h", resolution: Literal["hour", "day", "month"] = "hour",
              cancel: CancelToken = NEVER_CANCELLED) -> list[StatsBucket]:
        """Accepted, delivered and failed counts per hour or day over ``duration`` ("24h", "7d", "1m")."""
        params = [("event", "accepted"), ("event", "delivered"), ("event", "failed"), ("duration", duration),
                  ("resolution", resolution)]
        body = expect_dict(self.http.get(f"/v3/{quote(self.spec.domain)}/stats/total", params=params, cancel=cancel),
                           "mailgun", "stats")
        buckets = []
        for raw in expect_list(body.get("stats"), "mailgun", "stats"):
            row = expect_dict(raw, "mailgun", "stats")
            buckets.append(StatsBucket(
                start=http_date(row.get("time")) or datetime.fromtimestamp(0, UTC),
                accepted=_count(row, "accepted", "total"), delivered=_count(row, "delivered", "total"),
                failed_temporary=_count(row, "failed", "temporary", "total"),
                failed_permanent=_count(row, "failed", "permanent", "total")))
        return buckets

    def permanent_failure_rate(self, hours: int = 24, *, cancel: CancelToken = NEVER_CANCELLED) -> FailureRate:
        """The share of deliveries that failed for good over the last ``hours`` (from the stats: one
        request, whatever the volume)."""
        buckets = self.stats(duration=f"{int(hours)}h", resolution="hour", cancel=cancel)
        return FailureRate(hours=hours, accepted=sum(b.accepted for b in buckets),
                           delivered=sum(b.delivered for b in buckets),
                           failed_permanent=sum(b.failed_permanent for b in buckets))

    # -- suppressions -----------------------------------------------------------------------------

    @staticmethod
    def _kind(kind: str) -> str:
        if kind not in SUPPRESSION_KINDS:
            raise ApiValidationError(f"Unknown suppression list {kind!r}; use one of {', '.join(SUPPRESSION_KINDS)}.",
                                     vendor="mailgun", code="bad_kind")
        return kind

    def suppressions(self, kind: SuppressionKind | str = "bounces", *,
                     cancel: CancelToken = NEVER_CANCELLED) -> list[Suppression]:
        """Every address on one suppression list (paged until an empty page)."""
        path = f"/v3/{quote(self.spec.domain)}/{self._kind(kind)}"
        found = []
        for page in mailgun_pages(self.http, path, {"limit": SUPPRESSION_PAGE}, cancel=cancel):
            for raw in page:
                item = expect_dict(raw, "mailgun", kind)
                found.append(Suppression(kind=kind, address=str(item.get("address")),
                                         created_at=http_date(item.get("created_at")),
                                         code=str(item["code"]) if item.get("code") is not None else None,
                                         error=item.get("error"), tags=tuple(item.get("tags") or ())))
        return found

    def remove_suppression(self, kind: SuppressionKind | str, address: str, *,
                           cancel: CancelToken = NEVER_CANCELLED) -> None:
        """Take an address off a list, so Mailgun tries to deliver to it again."""
        path = f"/v3/{quote(self.spec.domain)}/{self._kind(kind)}/{quote(address.strip(), safe='@')}"
        self.http.request("DELETE", path, cancel=cancel)

    # -- sending ----------------------------------------------------------------------------------

    def send_test_message(self, to: str, *, subject: str = "Operator panel test", text: str | None = None,
                          sender: str | None = None, test_mode: bool = True,
                          cancel: CancelToken = NEVER_CANCELLED) -> SendResult:
        """Send a short message through the domain. With ``test_mode`` Mailgun accepts it (checking
        the key, domain and fields) but does not deliver it. Never retried after it was sent: Mailgun
        has no idempotency key, and a second copy is worse than a clear error."""
        if "@" not in to:
            raise ApiValidationError(f"A test message needs a recipient address, not {to!r}.", vendor="mailgun",
                                     code="bad_recipient")
        data = {"from": sender or f"Operator panel <postmaster@{self.spec.domain}>", "to": to, "subject": subject,
                "text": text or "This is a test message sent from the operator panel.",
                "o:testmode": "yes" if test_mode else "no"}
        body = expect_dict(self.http.request("POST", f"/v3/{quote(self.spec.domain)}/messages", data=data,
                                             cancel=cancel).data, "mailgun", "send")
        return SendResult(id=str(body.get("id")), message=str(body.get("message")), test_mode=test_mode)


# -- checks for the alerts ---------------------------------------------------------------------------


def unverified_domains(client: MailgunClient, *, cancel: CancelToken = NEVER_CANCELLED) -> list[MailDomain]:
    return [d for d in client.domains(cancel=cancel) if d.state == "unverified"]


def mail_check(client: MailgunClient, *, hours: int = 24, warn_rate: float = FAILURE_RATE_WARNING,
               cancel: CancelToken = NEVER_CANCELLED) -> MailCheck:
    """The permanent-failure rate of the sending domain and any domain left unverified."""
    rate = client.permanent_failure_rate(hours, cancel=cancel)
    pending = tuple(d.name for d in unverified_domains(client, cancel=cancel))
    problems = []
    if rate.rate >= warn_rate:
        problems.append(f"{rate.failed_permanent} of {rate.delivered + rate.failed_permanent} deliveries "
                        f"({rate.rate:.1%}) from {client.spec.domain} failed for good in the last {hours} h.")
    if pending:
        problems.append(f"Mailgun domain(s) not verified: {', '.join(pending)}. Publish their DNS records "
                        "and verify them again.")
    return MailCheck(domain=client.spec.domain, failure_rate=rate, unverified_domains=pending,
                     problems=tuple(problems))
