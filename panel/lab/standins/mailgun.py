"""Mailgun stand-in: Basic ``api:KEY`` auth (401 is plain text ``Forbidden``), /v4 domains with DNS
records, /v3 events with cursor URLs that always carry ``paging.next`` and end on an empty page,
stats, suppressions and sending. One state answers both the US and the EU listener."""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlencode

from panel.lab import secrets
from panel.lab.standins import demo
from panel.lab.standins.server import Request, Response, VendorApp, format_seconds, json_response, route

DOMAIN = "mg.example.com"
HOUR = 3600
BOUNCE_REASONS = [
    (550, "5.1.1 The email account that you tried to reach does not exist.", "bounce"),
    (550, "5.2.1 The email account that you tried to reach is disabled.", "bounce"),
    (552, "5.2.2 The recipient's mailbox is full.", "bounce"),
    (605, "Not delivering to previously bounced address", "suppress-bounce"),
]


def rfc2822(moment: float) -> str:
    return format_datetime(datetime.fromtimestamp(moment, UTC), usegmt=True)


def _stats_time(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%a, %d %b %Y %H:%M:%S UTC")


class MailgunError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _parse_moment(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError):
        raise MailgunError(400, f"'{name}' parameter is not valid: {text!r}") from None


def _expression(text: str | None) -> Callable[[str | None], bool]:
    """Mailgun's filter expressions, the simple part: ``a``, ``a OR b``, ``NOT a``."""
    if not text:
        return lambda value: True
    if text.startswith("NOT "):
        excluded = {t.strip() for t in text[4:].split(" OR ")}
        return lambda value: value not in excluded
    wanted = {t.strip() for t in text.split(" OR ")}
    return lambda value: value in wanted


class MailgunApp(VendorApp):
    vendor = "mailgun"

    def __init__(self, key: str = secrets.MAILGUN_KEY, clock: Callable[[], float] = time.time,
                 days: int = 7) -> None:
        super().__init__()
        self.key = key
        self.clock = clock
        self.days = days
        self.strict_regions = False  # when True, a domain answers only on its own region's listener
        self.reset_state()

    # -- demo data --------------------------------------------------------------------------------

    STATE = ("domains", "events", "suppressions", "_serial")

    def snapshot_key(self) -> tuple[object, ...]:
        return ("mailgun", self.days)

    def reset_state(self) -> None:
        self.dns_fixed: set[str] = set()  # domains whose records the lab has "published"
        self.sent: list[dict[str, Any]] = []
        if self.restore_snapshot(self.STATE):
            return
        self._generate_all()
        self.save_snapshot(self.STATE)

    def _generate_all(self) -> None:
        now = self.clock()
        self.domains: dict[str, dict[str, Any]] = {}
        self._add_domain(DOMAIN, "eu", "active", now - 500 * 86400)
        self._add_domain("news.example.com", "eu", "unverified", now - 3 * 86400)
        self._add_domain("mg.example.net", "us", "active", now - 300 * 86400)
        self._add_domain("old.example.com", "us", "disabled", now - 900 * 86400)
        self.events: list[dict[str, Any]] = []  # ascending by timestamp
        self.suppressions: dict[str, dict[str, dict[str, Any]]] = {"bounces": {}, "complaints": {},
                                                                    "unsubscribes": {}}
        self._serial = 0
        self._generate(now)

    def _add_domain(self, name: str, region: str, state: str, created: float) -> None:
        self.domains[name] = {
            "region": region,
            "record": {"created_at": rfc2822(created), "id": demo.stable_id("", "mgdomain", name, length=24),
                       "is_disabled": state == "disabled", "name": name, "require_tls": False,
                       "skip_verification": False, "smtp_login": f"postmaster@{name}", "spam_action": "disabled",
                       "state": state, "type": "custom", "web_prefix": "email", "web_scheme": "https",
                       "wildcard": False, "use_automatic_sender_security": True},
        }

    def _dns(self, name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        state = self.domains[name]["record"]["state"]
        ok = "valid" if state == "active" or name in self.dns_fixed else "unknown"
        host = "eu.mailgun.org" if self.domains[name]["region"] == "eu" else "mailgun.org"
        sending = [
            {"cached": [], "is_active": True, "name": name, "record_type": "TXT", "valid": ok,
             "value": "v=spf1 include:mailgun.org ~all"},
            {"cached": [], "is_active": True, "name": f"pic._domainkey.{name}", "record_type": "TXT",
             "valid": ok if ok == "valid" else "invalid",
             "value": "k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDdemo"},
            {"cached": [], "is_active": True, "name": f"email.{name}", "record_type": "CNAME", "valid": ok,
             "value": host},
        ]
        receiving = [
            {"cached": [], "is_active": True, "name": name, "priority": "10", "record_type": "MX", "valid": ok,
             "value": f"mxa.{host}"},
            {"cached": [], "is_active": True, "name": name, "priority": "10", "record_type": "MX", "valid": ok,
             "value": f"mxb.{host}"},
        ]
        return sending, receiving

    def _generate(self, now: float) -> None:
        """A week of mail: about 40 messages an hour, 2% bouncing for good, some delayed once."""
        pick = demo.rng("mailgun-demo")
        # Addresses that bounce, most of them members of demo groups (address -> group id).
        bouncers: dict[str, int | None] = {demo.group(gid).member_email(n): gid for gid, n in
                                           [(1, 7), (1_000_001, 3), (17, 1), (250, 2), (1_000_500, 1)]}
        for _ in range(240):
            gid = pick.choice([*range(1, 3001), *range(1_000_001, 1_002_001)])
            bouncers[demo.group(gid).member_email(pick.randint(1, 9))] = gid
        bouncers.update({f"nobody{n}@mail.example": None for n in range(20)})
        bouncer_list = list(bouncers)
        for address in bouncer_list:
            code, error, _ = BOUNCE_REASONS[pick.randint(0, 2)]
            self.suppressions["bounces"][address] = {
                "address": address, "code": str(code), "error": error,
                "created_at": rfc2822(now - pick.uniform(0, 60) * 86400)}
        for _ in range(15):
            address = demo.group(pick.randint(1, 3000)).member_email(pick.randint(1, 9))
            self.suppressions["complaints"][address] = {"address": address,
                                                        "created_at": rfc2822(now - pick.uniform(0, 90) * 86400)}
        for _ in range(40):
            address = demo.group(pick.randint(1_000_001, 1_002_000)).member_email(pick.randint(1, 9))
            self.suppressions["unsubscribes"][address] = {
                "address": address, "tags": ["*"], "created_at": rfc2822(now - pick.uniform(0, 90) * 86400)}
        subjects = ["Your invoice", "Password reset", "Welcome to the group", "Weekly digest", "New comment"]
        first_hour = int(now // HOUR) - self.days * 24
        for hour in range(first_hour, int(now // HOUR) + 1):
            for _ in range(pick.randint(25, 55)):
                moment = hour * HOUR + pick.uniform(0, HOUR)
                if moment > now - 120:
                    continue
                bounce = pick.random() < 0.02
                group_id: int | None = pick.choice([*range(1, 200), *range(1_000_001, 1_000_050)])
                if bounce:
                    recipient = pick.choice(bouncer_list)
                    group_id = bouncers[recipient]
                else:
                    recipient = demo.group(group_id or 1).member_email(pick.randint(0, 9))
                self._message(moment, recipient, pick.choice(subjects), group_id, pick,
                              outcome="bounce" if bounce else "delay" if pick.random() < 0.03 else "ok")
        self.events.sort(key=lambda e: (e["timestamp"], e["id"]))

    def _message(self, moment: float, recipient: str, subject: str, group_id: int | None, pick: Any,
                 outcome: str, test_mode: bool = False, live: bool = False) -> str:
        """One message's events. History spreads delivery over seconds; a ``live`` send (through the
        API, now) gets its outcome at once, so that a query right after it already sees it."""
        self._serial += 1
        message_id = f"{int(moment)}.{self._serial}@{DOMAIN}"
        headers = {"to": recipient, "message-id": message_id, "from": f"Example <noreply@{DOMAIN}>",
                   "subject": subject}
        variables = {"group_id": str(group_id)} if group_id else {}
        self._event("accepted", moment, recipient, headers, variables, test_mode=test_mode)
        if test_mode:
            return message_id
        if outcome == "delay":
            self._event("failed", moment + 5, recipient, headers, variables, severity="temporary", reason="generic",
                        status=(421, "4.7.0 Try again later", "greylisted"))
            self._event("delivered", moment + 600, recipient, headers, variables)
        elif outcome in ("bounce", "suppressed"):
            choice = len(BOUNCE_REASONS) - 1 if outcome == "suppressed" else pick.randint(0, len(BOUNCE_REASONS) - 1)
            code, error, reason = BOUNCE_REASONS[choice]
            self._event("failed", moment + (0.0 if live else pick.uniform(1, 30)), recipient, headers, variables,
                        severity="permanent", reason=reason, status=(code, error, ""))
        else:
            self._event("delivered", moment + (0.0 if live else pick.uniform(1, 30)), recipient, headers, variables)
        return message_id

    def _event(self, kind: str, moment: float, recipient: str, headers: dict[str, str], variables: dict[str, str],
               *, severity: str | None = None, reason: str | None = None,
               status: tuple[int, str, str] | None = None, test_mode: bool = False) -> None:
        event: dict[str, Any] = {
            "event": kind, "id": demo.stable_id("", "mgevent", kind, moment, recipient, self._serial, length=22),
            "timestamp": round(moment, 6), "log-level": {"accepted": "info", "delivered": "info"}.get(kind, "error"),
            "recipient": recipient, "recipient-domain": recipient.rpartition("@")[2],
            "envelope": {"sender": f"noreply@{DOMAIN}", "targets": recipient, "transport": "smtp"},
            "message": {"headers": headers, "attachments": [], "size": 4096},
            "flags": {"is-authenticated": True, "is-routed": False, "is-test-mode": test_mode},
            "tags": [], "user-variables": variables, "storage": {"key": "demo", "url": "https://storage.example"},
        }
        if kind == "failed":
            event["severity"], event["reason"] = severity, reason
        if status is not None:
            code, message, description = status
            event["delivery-status"] = {"code": code, "message": message, "description": description,
                                        "attempt-no": 1, "session-seconds": 0.4}
            if kind == "failed" and severity == "permanent" and reason == "bounce":
                self.suppressions["bounces"].setdefault(recipient, {
                    "address": recipient, "code": str(code), "error": message, "created_at": rfc2822(moment)})
        elif kind == "delivered":
            event["delivery-status"] = {"code": 250, "message": "OK", "description": "", "attempt-no": 1,
                                        "session-seconds": 0.3}
        self.events.append(event)

    def inject_bounces(self, count: int, minutes_ago: float = 10.0) -> None:
        """Add ``count`` permanent failures a few minutes ago: a bounce storm for alert tests."""
        with self.lock:
            pick = demo.rng(f"storm-{len(self.events)}")
            for n in range(count):
                moment = self.clock() - minutes_ago * 60 + n * 0.01
                self._message(moment, f"ghost{n}@bounce.example", "Weekly digest", None, pick, outcome="bounce")
            self.events.sort(key=lambda e: (e["timestamp"], e["id"]))

    # -- vendor hooks -----------------------------------------------------------------------------

    def check_auth(self, request: Request) -> Response | None:
        scheme, _, encoded = str(request.headers.get("Authorization") or "").partition(" ")
        try:
            user, _, key = base64.b64decode(encoded).decode().partition(":") if scheme == "Basic" else ("", "", "")
        except (binascii.Error, UnicodeDecodeError):
            user, key = "", ""
        if user != "api" or key != self.key:
            return Response(401, b"Forbidden", "text/plain; charset=utf-8")
        return None

    def rate_limited(self, retry_after: float) -> Response:
        return json_response(429, {"message": "Too many requests"}, [("Retry-After", format_seconds(retry_after))])

    def server_error(self, status: int) -> Response:
        return json_response(status, {"message": "Internal Server Error"})

    def not_found(self, request: Request) -> Response:
        return json_response(404, {"message": "Not Found"})

    def dispatch(self, request: Request) -> Response:
        try:
            return super().dispatch(request)
        except MailgunError as error:
            return json_response(error.status, {"message": str(error)})

    # -- helpers ----------------------------------------------------------------------------------

    def _origin(self, request: Request) -> str:
        return "http://" + str(request.headers.get("Host") or "127.0.0.1")

    def _region(self, request: Request) -> str:
        return "eu" if request.listener.endswith("-eu") else "us"

    def _domain(self, request: Request, name: str) -> dict[str, Any]:
        domain = self.domains.get(name)
        if domain is None or (self.strict_regions and domain["region"] != self._region(request)):
            raise MailgunError(404, "Domain not found")
        return domain

    # -- routes: domains --------------------------------------------------------------------------

    @route("GET", "/v4/domains")
    def list_domains(self, request: Request) -> Response:
        try:
            limit = int(request.query("limit") or 100)
            skip = int(request.query("skip") or 0)
        except ValueError:
            raise MailgunError(400, "limit and skip must be integers") from None
        if not 1 <= limit <= 1000:
            raise MailgunError(400, "limit must be between 1 and 1000")
        domains = [d for d in self.domains.values()
                   if not self.strict_regions or d["region"] == self._region(request)]
        if state := request.query("state"):
            domains = [d for d in domains if d["record"]["state"] == state]
        return json_response(200, {"items": [d["record"] for d in domains[skip:skip + limit]],
                                   "total_count": len(domains)})

    def _domain_body(self, name: str) -> dict[str, Any]:
        sending, receiving = self._dns(name)
        return {"domain": self.domains[name]["record"], "receiving_dns_records": receiving,
                "sending_dns_records": sending}

    @route("GET", "/v4/domains/{domain}")
    def get_domain(self, request: Request) -> Response:
        self._domain(request, request.params["domain"])
        return json_response(200, self._domain_body(request.params["domain"]))

    @route("PUT", "/v4/domains/{domain}/verify")
    def verify_domain(self, request: Request) -> Response:
        name = request.params["domain"]
        domain = self._domain(request, name)
        if domain["record"]["state"] == "unverified" and name in self.dns_fixed:
            domain["record"]["state"] = "active"
        return json_response(200, {**self._domain_body(name), "message": "Domain DNS records have been updated"})

    # -- routes: events ---------------------------------------------------------------------------

    @route("GET", "/v3/{domain}/events")
    def list_events(self, request: Request) -> Response:
        domain = request.params["domain"]
        self._domain(request, domain)
        now = self.clock()
        begin = _parse_moment(request.query("begin") or "", "begin") if request.query("begin") else None
        end = _parse_moment(request.query("end") or "", "end") if request.query("end") else None
        ascending = request.query("ascending")
        if ascending not in (None, "yes", "no"):
            raise MailgunError(400, "'ascending' parameter must be 'yes' or 'no'")
        descending = ascending != "yes"
        if begin is not None and end is not None and begin > end:
            begin, end, descending = end, begin, True  # Mailgun reads begin > end as newest first
        elif begin is not None and end is None and ascending is None:
            descending = False
        try:
            limit = int(request.query("limit") or 100)
        except ValueError:
            raise MailgunError(400, "'limit' parameter must be an integer") from None
        if not 1 <= limit <= 300:
            raise MailgunError(400, "'limit' parameter must be between 1 and 300")
        cursor = {"domain": domain, "begin": begin if begin is not None else now - 30 * 86400,
                  "end": end if end is not None else now + 1, "desc": descending, "limit": limit,
                  "event": request.query("event"), "severity": request.query("severity"),
                  "recipient": request.query("recipient"), "after": None}
        return self._event_page(request, cursor)

    @route("GET", "/v3/{domain}/events/{token}")
    def events_page(self, request: Request) -> Response:
        self._domain(request, request.params["domain"])
        try:
            cursor = json.loads(base64.urlsafe_b64decode(request.params["token"].encode() + b"=="))
            if cursor.get("domain") != request.params["domain"]:
                raise ValueError("another domain's cursor")
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise MailgunError(400, "Invalid page token") from None
        return self._event_page(request, cursor)

    def _event_page(self, request: Request, cursor: dict[str, Any]) -> Response:
        event_ok = _expression(cursor["event"])
        severity_ok = _expression(cursor["severity"])
        chosen = [e for e in self.events
                  if cursor["begin"] <= e["timestamp"] < cursor["end"] and event_ok(e["event"])
                  and (cursor["severity"] is None or severity_ok(e.get("severity")))
                  and (cursor["recipient"] is None or e["recipient"] == cursor["recipient"])]
        if cursor["desc"]:
            chosen.reverse()
        after = cursor.get("after")
        if after is not None:
            position = tuple(after)
            if cursor["desc"]:
                chosen = [e for e in chosen if (e["timestamp"], e["id"]) < position]
            else:
                chosen = [e for e in chosen if (e["timestamp"], e["id"]) > position]
        page = chosen[:cursor["limit"]]
        base = f"{self._origin(request)}/v3/{cursor['domain']}/events/"

        def link(changes: dict[str, Any]) -> str:
            token = base64.urlsafe_b64encode(json.dumps({**cursor, **changes}).encode()).decode().rstrip("=")
            return base + token

        last = (page[-1]["timestamp"], page[-1]["id"]) if page else after
        return json_response(200, {"items": page, "paging": {
            "first": link({"after": None}), "last": link({"after": None, "desc": not cursor["desc"]}),
            "next": link({"after": last}), "previous": link({"after": after}),
        }})

    # -- routes: stats ----------------------------------------------------------------------------

    @route("GET", "/v3/{domain}/stats/total")
    def stats(self, request: Request) -> Response:
        self._domain(request, request.params["domain"])
        kinds = request.query_all("event")
        if not kinds:
            raise MailgunError(400, "'event' parameter is required")
        for kind in kinds:
            if kind not in ("accepted", "delivered", "failed", "opened", "clicked", "unsubscribed",
                            "complained", "stored"):
                raise MailgunError(400, f"'event' parameter is not valid: {kind}")
        resolution = request.query("resolution") or "day"
        if resolution not in ("hour", "day", "month"):
            raise MailgunError(400, "'resolution' parameter must be hour, day or month")
        step = {"hour": HOUR, "day": 86400, "month": 86400 * 30}[resolution]
        end = _parse_moment(request.query("end") or "", "end") if request.query("end") else self.clock()
        if duration := request.query("duration"):
            units = {"h": HOUR, "d": 86400, "m": 86400 * 30}
            try:
                start = end - int(duration[:-1]) * units[duration[-1]]
            except (ValueError, KeyError):
                raise MailgunError(400, "'duration' parameter is not valid") from None
        elif request.query("start"):
            start = _parse_moment(request.query("start") or "", "start")
        else:
            start = end - 7 * 86400
        first = int(start // step) * step
        buckets: dict[int, dict[str, Any]] = {}
        bucket = first
        while bucket <= end:
            buckets[bucket] = self._empty_bucket(bucket, kinds)
            bucket += step
        for event in self.events:
            if not first <= event["timestamp"] <= end or event["event"] not in kinds:
                continue
            row = buckets.get(int(event["timestamp"] // step) * step)
            if row is None:
                continue
            if event["event"] == "accepted":
                row["accepted"]["outgoing"] += 1
                row["accepted"]["total"] += 1
            elif event["event"] == "delivered":
                row["delivered"]["smtp"] += 1
                row["delivered"]["total"] += 1
            elif event["event"] == "failed":
                severity = event.get("severity", "permanent")
                part = row["failed"][severity]
                if severity == "permanent":
                    part[event.get("reason") or "bounce"] = part.get(event.get("reason") or "bounce", 0) + 1
                else:
                    part["espblock"] += 0
                part["total"] += 1
        return json_response(200, {"description": "Domain stats", "start": _stats_time(first),
                                   "end": _stats_time(end), "resolution": resolution,
                                   "stats": list(buckets.values())})

    @staticmethod
    def _empty_bucket(moment: int, kinds: list[str]) -> dict[str, Any]:
        row: dict[str, Any] = {"time": _stats_time(moment)}
        if "accepted" in kinds:
            row["accepted"] = {"incoming": 0, "outgoing": 0, "total": 0}
        if "delivered" in kinds:
            row["delivered"] = {"smtp": 0, "http": 0, "optimized": 0, "total": 0}
        if "failed" in kinds:
            row["failed"] = {"temporary": {"espblock": 0, "total": 0},
                             "permanent": {"suppress-bounce": 0, "suppress-unsubscribe": 0, "suppress-complaint": 0,
                                           "bounce": 0, "delayed-bounce": 0, "webhook": 0, "optimized": 0,
                                           "total": 0}}
        for kind in kinds:
            row.setdefault(kind, {"total": 0})
        return row

    # -- routes: suppressions ---------------------------------------------------------------------

    @route("GET", "/v3/{domain}/{kind}")
    def list_suppressions(self, request: Request) -> Response:
        domain, kind = request.params["domain"], request.params["kind"]
        if kind not in self.suppressions:
            return self.not_found(request)
        self._domain(request, domain)
        try:
            limit = int(request.query("limit") or 100)
        except ValueError:
            raise MailgunError(400, "'limit' parameter must be an integer") from None
        if not 1 <= limit <= 1000:
            raise MailgunError(400, "'limit' parameter must be between 1 and 1000")
        addresses = sorted(self.suppressions[kind])
        if term := request.query("term"):
            addresses = [a for a in addresses if a.startswith(term)]
        page, address = request.query("page"), request.query("address")
        if page == "next" and address:
            chosen = [a for a in addresses if a > address][:limit]
        elif page == "previous" and address:
            chosen = [a for a in addresses if a < address][-limit:]
        elif page == "last":
            chosen = addresses[-limit:]
        else:
            chosen = addresses[:limit]
        url = f"{self._origin(request)}/v3/{domain}/{kind}"

        def link(**params: str) -> str:
            return url + "?" + urlencode({**params, "limit": str(limit)}, quote_via=quote)

        return json_response(200, {"items": [self.suppressions[kind][a] for a in chosen], "paging": {
            "first": link(page="first"), "last": link(page="last"),
            "next": link(page="next", address=chosen[-1] if chosen else (address or "")),
            "previous": link(page="previous", address=chosen[0] if chosen else (address or "")),
        }})

    @route("GET", "/v3/{domain}/{kind}/{address}")
    def get_suppression(self, request: Request) -> Response:
        domain, kind, address = request.params["domain"], request.params["kind"], request.params["address"]
        if kind not in self.suppressions:
            return self.not_found(request)
        self._domain(request, domain)
        found = self.suppressions[kind].get(address.lower())
        if found is None:
            raise MailgunError(404, f"Address not found in {kind} table")
        return json_response(200, found)

    @route("DELETE", "/v3/{domain}/{kind}/{address}")
    def delete_suppression(self, request: Request) -> Response:
        domain, kind, address = request.params["domain"], request.params["kind"], request.params["address"]
        if kind not in self.suppressions:
            return self.not_found(request)
        self._domain(request, domain)
        if self.suppressions[kind].pop(address.lower(), None) is None:
            raise MailgunError(404, f"Address not found in {kind} table")
        message = {"bounces": "Bounced address has been removed", "complaints": "Spam complaint has been removed",
                   "unsubscribes": "Unsubscribe event has been removed"}[kind]
        return json_response(200, {"message": message, "address": address})

    # -- routes: sending --------------------------------------------------------------------------

    @route("POST", "/v3/{domain}/messages")
    def send(self, request: Request) -> Response:
        domain = request.params["domain"]
        record = self._domain(request, domain)["record"]
        fields = request.form_pairs()
        values: dict[str, list[str]] = {}
        for name, value in fields:
            if value.strip():
                values.setdefault(name, []).append(value)
        if not values.get("from"):
            raise MailgunError(400, "from parameter is missing")
        if not values.get("to"):
            raise MailgunError(400, "to parameter is missing")
        if not (values.get("text") or values.get("html") or values.get("template")):
            raise MailgunError(400, "Need at least one of 'text', 'html' or 'template' parameters specified")
        if record["state"] != "active":
            raise MailgunError(403, f"Domain {domain} is not allowed to send: it is {record['state']}")
        test_mode = (values.get("o:testmode") or ["no"])[0].lower() in ("yes", "true")
        subject = (values.get("subject") or [""])[0]
        message_id = ""
        pick = demo.rng(f"send-{len(self.sent)}")
        for recipient in (r.strip() for to in values["to"] for r in to.split(",")):
            # Mailgun does not even try an address on the bounce list: it fails it as suppress-bounce.
            outcome = "suppressed" if recipient.lower() in self.suppressions["bounces"] else "ok"
            message_id = self._message(self.clock(), recipient, subject, None, pick, outcome, test_mode, live=True)
        self.sent.append({"domain": domain, "fields": fields, "test_mode": test_mode, "id": message_id})
        self.events.sort(key=lambda e: (e["timestamp"], e["id"]))
        return json_response(200, {"id": f"<{message_id}>", "message": "Queued. Thank you."})
