"""Cloudflare: token check, zone, DNS records, cache purge, security level, development mode,
traffic analytics (GraphQL) and firewall events, as typed calls returning dataclasses."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from services.cancel import NEVER_CANCELLED, CancelToken
from services.http import (
    DEFAULT_RETRY,
    DEFAULT_TIMEOUTS,
    ApiBadResponse,
    ApiClient,
    ApiNotFound,
    ApiValidationError,
    BearerAuth,
    HttpClient,
    RetryPolicy,
    Secret,
    Timeouts,
    cloudflare_pages,
    expect_dict,
    expect_list,
)
from services.inventory import CloudflareSpec

SECURITY_LEVELS = ("off", "essentially_off", "low", "medium", "high", "under_attack")
SecurityLevel = Literal["off", "essentially_off", "low", "medium", "high", "under_attack"]
PROXIABLE_TYPES = frozenset({"A", "AAAA", "CNAME"})
RECORD_TYPES = frozenset({"A", "AAAA", "CNAME", "MX", "TXT", "NS", "SRV", "CAA"})
PURGE_BATCH = 30  # files per purge request, the API's limit
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
HOSTNAME = re.compile(rf"^(?=.{{1,253}}\.?$)(\*\.)?({_LABEL}\.)*{_LABEL}\.?$")


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- dataclasses -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenStatus:
    id: str
    status: str  # active | disabled | expired
    expires_on: datetime | None
    not_before: datetime | None

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass(frozen=True)
class Zone:
    id: str
    name: str
    status: str  # active | pending | initializing | moved | deleted | deactivated
    plan: str  # "Pro Website"
    paused: bool
    name_servers: tuple[str, ...]

    @property
    def active(self) -> bool:
        return self.status == "active" and not self.paused


@dataclass(frozen=True)
class DnsRecord:
    id: str
    type: str
    name: str
    content: str
    ttl: int  # 1 means automatic
    proxied: bool
    proxiable: bool
    comment: str | None = None
    priority: int | None = None
    tags: tuple[str, ...] = ()
    modified_on: datetime | None = None


@dataclass(frozen=True)
class DnsRecordInput:
    """What the operator asks for. ``name`` may be relative ("www"), "@" or a full name."""

    type: str
    name: str
    content: str
    ttl: int = 1
    proxied: bool = False
    comment: str | None = None
    priority: int | None = None  # MX only

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type.upper(), "name": self.name, "content": self.content,
                                "ttl": self.ttl, "proxied": self.proxied}
        if self.comment is not None:
            body["comment"] = self.comment
        if self.priority is not None:
            body["priority"] = self.priority
        return body


@dataclass(frozen=True)
class ZoneSetting:
    id: str
    value: str
    editable: bool
    modified_on: datetime | None
    time_remaining: int | None = None  # development_mode: seconds until it turns itself off


@dataclass(frozen=True)
class TrafficPoint:
    start: datetime  # the hour or day this row counts
    requests: int
    cached_requests: int
    threats: int
    bytes: int


@dataclass(frozen=True)
class TrafficSeries:
    zone_id: str
    resolution: Literal["hour", "day"]
    points: tuple[TrafficPoint, ...]

    @property
    def requests(self) -> int:
        return sum(p.requests for p in self.points)

    @property
    def threats(self) -> int:
        return sum(p.threats for p in self.points)

    @property
    def cached_share(self) -> float:
        return sum(p.cached_requests for p in self.points) / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class FirewallEvent:
    occurred_at: datetime
    action: str  # block | managed_challenge | jschallenge | log | ...
    source: str  # securitylevel | waf | firewallCustom | ratelimit | ...
    client_ip: str
    country: str
    method: str
    path: str
    ray_id: str
    rule_id: str
    user_agent: str


@dataclass(frozen=True)
class ZoneCheck:
    """Facts for the alerts: is the zone serving, and does it look (or is it set) under attack."""

    zone: str
    status: str
    active: bool
    security_level: str
    under_attack_mode: bool  # the operator switched on "I'm Under Attack"
    requests_last_hour: int
    threats_last_hour: int
    firewall_events_last_hour: int
    attack_suspected: bool
    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems


# -- validation --------------------------------------------------------------------------------------


def _invalid(message: str) -> ApiValidationError:
    return ApiValidationError(message, vendor="cloudflare", code="invalid_record")


def validate_record(record: DnsRecordInput) -> DnsRecordInput:
    """Check a record as Cloudflare would, before sending it, and return it normalised (type in
    upper case, canonical IP). Raises ApiValidationError with a message for the operator."""
    record_type = record.type.upper()
    if record_type not in RECORD_TYPES:
        raise _invalid(f"Unsupported record type {record.type!r}; use one of {', '.join(sorted(RECORD_TYPES))}.")
    name = record.name.strip()
    if not name or (name != "@" and not HOSTNAME.match(name)):
        raise _invalid(f"{record.name!r} is not a valid record name.")
    content = record.content.strip()
    if record_type == "A":
        try:
            content = str(ipaddress.IPv4Address(content))
        except ValueError:
            raise _invalid(f"An A record needs an IPv4 address, not {record.content!r}.") from None
    elif record_type == "AAAA":
        try:
            content = str(ipaddress.IPv6Address(content))
        except ValueError:
            raise _invalid(f"An AAAA record needs an IPv6 address, not {record.content!r}.") from None
    elif record_type in ("CNAME", "MX", "NS"):
        if not HOSTNAME.match(content) or _is_ip(content):
            raise _invalid(f"A {record_type} record needs a host name, not {record.content!r}.")
    elif not content:
        raise _invalid(f"A {record_type} record needs content.")
    if record_type == "TXT" and len(content) > 2048:
        raise _invalid("A TXT record may hold at most 2048 characters.")
    if isinstance(record.ttl, bool) or not (record.ttl == 1 or 60 <= record.ttl <= 86400):
        raise _invalid(f"TTL must be 1 (automatic) or between 60 and 86400 seconds, not {record.ttl}.")
    if record.proxied and record_type not in PROXIABLE_TYPES:
        raise _invalid(f"A {record_type} record cannot be proxied; only A, AAAA and CNAME can.")
    if record_type == "MX" and (record.priority is None or not 0 <= record.priority <= 65535):
        raise _invalid("An MX record needs a priority between 0 and 65535.")
    if record.comment is not None and len(record.comment) > 100:
        raise _invalid("A comment may hold at most 100 characters.")
    return replace(record, type=record_type, name=name, content=content)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


# -- parsing -----------------------------------------------------------------------------------------


def _record(raw: Any) -> DnsRecord:
    item = expect_dict(raw, "cloudflare", "a DNS record")
    try:
        return DnsRecord(
            id=str(item["id"]), type=str(item["type"]), name=str(item["name"]), content=str(item["content"]),
            ttl=int(item.get("ttl", 1)), proxied=bool(item.get("proxied", False)),
            proxiable=bool(item.get("proxiable", False)), comment=item.get("comment"),
            priority=int(item["priority"]) if item.get("priority") is not None else None,
            tags=tuple(str(t) for t in item.get("tags") or ()), modified_on=_time(item.get("modified_on")))
    except (KeyError, TypeError, ValueError) as error:
        raise ApiBadResponse(f"Cloudflare sent a DNS record without {error}.", vendor="cloudflare",
                             code="bad_shape") from None


def _setting(raw: Any) -> ZoneSetting:
    item = expect_dict(raw, "cloudflare", "a zone setting")
    remaining = item.get("time_remaining")
    return ZoneSetting(id=str(item.get("id")), value=str(item.get("value")), editable=bool(item.get("editable")),
                       modified_on=_time(item.get("modified_on")),
                       time_remaining=int(remaining) if isinstance(remaining, int | float) else None)


# -- the client --------------------------------------------------------------------------------------

TRAFFIC_HOURLY = """query Traffic($zoneTag: string, $since: Time, $until: Time) {
  viewer { zones(filter: {zoneTag: $zoneTag}) {
    series: httpRequests1hGroups(limit: 200, filter: {datetime_geq: $since, datetime_lt: $until},
                                 orderBy: [datetime_ASC]) {
      dimensions { datetime } sum { requests cachedRequests threats bytes }
    } } } }"""

TRAFFIC_DAILY = """query Traffic($zoneTag: string, $since: Date, $until: Date) {
  viewer { zones(filter: {zoneTag: $zoneTag}) {
    series: httpRequests1dGroups(limit: 60, filter: {date_geq: $since, date_leq: $until}, orderBy: [date_ASC]) {
      dimensions { date } sum { requests cachedRequests threats bytes }
    } } } }"""

FIREWALL_EVENTS = """query Firewall($zoneTag: string, $since: Time, $until: Time, $limit: Int) {
  viewer { zones(filter: {zoneTag: $zoneTag}) {
    events: firewallEventsAdaptive(limit: $limit, filter: {datetime_geq: $since, datetime_lt: $until},
                                   orderBy: [datetime_DESC]) {
      action source clientIP clientCountryName clientRequestHTTPMethodName clientRequestPath
      datetime rayName ruleId userAgent
    } } } }"""


class CloudflareClient(ApiClient):
    """The zone named in the config, through a token from the keyring."""

    def __init__(self, spec: CloudflareSpec, token: str, *, timeouts: Timeouts = DEFAULT_TIMEOUTS,
                 retry: RetryPolicy = DEFAULT_RETRY) -> None:
        self.spec = spec
        secret = Secret(token)
        self.http = HttpClient(vendor="cloudflare", base_url=spec.base_url, auth=BearerAuth(secret), secret=secret,
                               timeouts=timeouts, retry=retry)
        self._zone: Zone | None = None

    def __repr__(self) -> str:
        return f"CloudflareClient(zone={self.spec.zone!r}, base_url={self.spec.base_url!r})"

    def _result(self, method: str, path: str, *, cancel: CancelToken, json_body: Any = None,
                params: Any = None) -> Any:
        body = expect_dict(self.http.request(method, path, json_body=json_body, params=params, cancel=cancel).data,
                           "cloudflare", path)
        if body.get("success") is False:
            raise ApiBadResponse(f"Cloudflare answered success=false with HTTP 200 for {path}.",
                                 vendor="cloudflare", code="unsuccessful")
        return body.get("result")

    # -- token and zone ---------------------------------------------------------------------------

    def verify_token(self, *, cancel: CancelToken = NEVER_CANCELLED) -> TokenStatus:
        result = expect_dict(self._result("GET", "/user/tokens/verify", cancel=cancel), "cloudflare", "verify")
        return TokenStatus(id=str(result.get("id")), status=str(result.get("status")),
                           expires_on=_time(result.get("expires_on")), not_before=_time(result.get("not_before")))

    def zone(self, *, refresh: bool = False, cancel: CancelToken = NEVER_CANCELLED) -> Zone:
        """The configured zone (looked up by name once, then cached for its id)."""
        if self._zone is not None and not refresh:
            return self._zone
        zones = expect_list(self._result("GET", "/zones", params={"name": self.spec.zone}, cancel=cancel),
                            "cloudflare", "zones")
        if not zones:
            raise ApiNotFound(f"Cloudflare has no zone named {self.spec.zone!r} that this token can see. Check "
                              "[cloudflare] zone in the config and the token's zone resources.",
                              vendor="cloudflare", status=200, code="zone_not_found")
        raw = expect_dict(zones[0], "cloudflare", "a zone")
        plan = raw.get("plan") if isinstance(raw.get("plan"), dict) else {}
        self._zone = Zone(id=str(raw["id"]), name=str(raw["name"]), status=str(raw.get("status")),
                          plan=str((plan or {}).get("name") or "unknown"), paused=bool(raw.get("paused")),
                          name_servers=tuple(str(n) for n in raw.get("name_servers") or ()))
        return self._zone

    def _zone_path(self, cancel: CancelToken) -> str:
        return f"/zones/{self.zone(cancel=cancel).id}"

    # -- DNS --------------------------------------------------------------------------------------

    def dns_records(self, *, type: str | None = None, name: str | None = None, per_page: int = 100,
                    cancel: CancelToken = NEVER_CANCELLED) -> list[DnsRecord]:
        """Every record of the zone (all pages), optionally only one type or one full name."""
        params: dict[str, Any] = {}
        if type:
            params["type"] = type.upper()
        if name:
            params["name"] = self.full_name(name)
        path = self._zone_path(cancel) + "/dns_records"
        return [_record(raw) for page in cloudflare_pages(self.http, path, params, per_page=per_page, cancel=cancel)
                for raw in page]

    def full_name(self, name: str) -> str:
        """"www" -> "www.example.com"; "@" -> the zone itself."""
        zone = self.spec.zone
        name = name.strip().rstrip(".").lower()
        if name in ("@", "", zone):
            return zone
        return name if name.endswith("." + zone) else f"{name}.{zone}"

    def create_dns_record(self, record: DnsRecordInput, *, cancel: CancelToken = NEVER_CANCELLED) -> DnsRecord:
        record = validate_record(record)
        path = self._zone_path(cancel) + "/dns_records"
        return _record(self._result("POST", path, json_body=record.body(), cancel=cancel))

    def update_dns_record(self, record_id: str, record: DnsRecordInput, *,
                          cancel: CancelToken = NEVER_CANCELLED) -> DnsRecord:
        """Replace a record as a whole (PUT): what the edit dialog sends."""
        record = validate_record(record)
        path = f"{self._zone_path(cancel)}/dns_records/{record_id}"
        return _record(self._result("PUT", path, json_body=record.body(), cancel=cancel))

    def patch_dns_record(self, record_id: str, *, content: str | None = None, ttl: int | None = None,
                         proxied: bool | None = None, comment: str | None = None,
                         cancel: CancelToken = NEVER_CANCELLED) -> DnsRecord:
        """Change some fields only (PATCH), e.g. the orange cloud."""
        changes: dict[str, Any] = {k: v for k, v in
                                   {"content": content, "ttl": ttl, "proxied": proxied, "comment": comment}.items()
                                   if v is not None}
        if not changes:
            raise _invalid("Nothing to change.")
        if ttl is not None and not (ttl == 1 or 60 <= ttl <= 86400):
            raise _invalid(f"TTL must be 1 (automatic) or between 60 and 86400 seconds, not {ttl}.")
        path = f"{self._zone_path(cancel)}/dns_records/{record_id}"
        return _record(self._result("PATCH", path, json_body=changes, cancel=cancel))

    def delete_dns_record(self, record_id: str, *, cancel: CancelToken = NEVER_CANCELLED) -> None:
        path = f"{self._zone_path(cancel)}/dns_records/{record_id}"
        try:
            self._result("DELETE", path, cancel=cancel)
        except ApiNotFound as error:
            # A DELETE retried after its answer was lost finds nothing left: that is success.
            if error.code == "81044" and error.attempts > 1:
                return
            raise

    # -- cache ------------------------------------------------------------------------------------

    def purge_everything(self, *, cancel: CancelToken = NEVER_CANCELLED) -> None:
        self._result("POST", self._zone_path(cancel) + "/purge_cache", json_body={"purge_everything": True},
                     cancel=cancel)

    def purge_files(self, urls: Iterable[str], *, cancel: CancelToken = NEVER_CANCELLED) -> int:
        """Purge these URLs (in batches of 30, the API's limit). Returns how many were sent."""
        files = [u for u in urls if u.strip()]
        if not files:
            raise ApiValidationError("No URL to purge.", vendor="cloudflare", code="nothing_to_purge")
        path = self._zone_path(cancel) + "/purge_cache"
        for start in range(0, len(files), PURGE_BATCH):
            self._result("POST", path, json_body={"files": files[start:start + PURGE_BATCH]}, cancel=cancel)
        return len(files)

    # -- settings ---------------------------------------------------------------------------------

    def security_level(self, *, cancel: CancelToken = NEVER_CANCELLED) -> ZoneSetting:
        return _setting(self._result("GET", self._zone_path(cancel) + "/settings/security_level", cancel=cancel))

    def set_security_level(self, value: SecurityLevel | str, *,
                           cancel: CancelToken = NEVER_CANCELLED) -> ZoneSetting:
        """"under_attack" is "I'm Under Attack" mode: every visitor gets a challenge first."""
        if value not in SECURITY_LEVELS:
            raise ApiValidationError(f"Unknown security level {value!r}; use one of {', '.join(SECURITY_LEVELS)}.",
                                     vendor="cloudflare", code="invalid_setting")
        return _setting(self._result("PATCH", self._zone_path(cancel) + "/settings/security_level",
                                     json_body={"value": value}, cancel=cancel))

    def development_mode(self, *, cancel: CancelToken = NEVER_CANCELLED) -> ZoneSetting:
        return _setting(self._result("GET", self._zone_path(cancel) + "/settings/development_mode", cancel=cancel))

    def set_development_mode(self, on: bool, *, cancel: CancelToken = NEVER_CANCELLED) -> ZoneSetting:
        """On bypasses the cache for 3 hours, then Cloudflare turns it off by itself."""
        return _setting(self._result("PATCH", self._zone_path(cancel) + "/settings/development_mode",
                                     json_body={"value": "on" if on else "off"}, cancel=cancel))

    # -- analytics --------------------------------------------------------------------------------

    def _graphql(self, query: str, variables: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        body = expect_dict(self.http.request("POST", "/graphql", json_body={"query": query, "variables": variables},
                                             cancel=cancel).data, "cloudflare", "analytics")
        # GraphQL reports its errors with HTTP 200, in the body.
        errors = body.get("errors")
        if errors:
            said = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict)) or str(errors)
            raise ApiValidationError(f"Cloudflare analytics refused the query: {said}", vendor="cloudflare",
                                     status=200, code="graphql")
        data = expect_dict(body.get("data"), "cloudflare", "analytics")
        zones = expect_list(expect_dict(data.get("viewer"), "cloudflare", "analytics").get("zones"),
                            "cloudflare", "analytics")
        if not zones:
            raise ApiNotFound("Cloudflare analytics returned no data for the zone.", vendor="cloudflare")
        return expect_dict(zones[0], "cloudflare", "analytics")

    def traffic(self, period: Literal["24h", "7d"] = "24h", *, now: datetime | None = None,
                cancel: CancelToken = NEVER_CANCELLED) -> TrafficSeries:
        """Requests, cached requests, threats and bytes: per hour over 24 h, or per day over 7 days."""
        zone_id = self.zone(cancel=cancel).id
        now = (now or datetime.now(UTC)).astimezone(UTC)
        if period == "24h":
            since = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
            variables = {"zoneTag": zone_id, "since": _iso(since), "until": _iso(now)}
            rows = self._graphql(TRAFFIC_HOURLY, variables, cancel).get("series")
        elif period == "7d":
            today = now.date()
            variables = {"zoneTag": zone_id, "since": (today - timedelta(days=6)).isoformat(),
                         "until": today.isoformat()}
            rows = self._graphql(TRAFFIC_DAILY, variables, cancel).get("series")
        else:
            raise ValueError(f"period must be '24h' or '7d', not {period!r}")
        points = []
        for raw in expect_list(rows, "cloudflare", "traffic"):
            row = expect_dict(raw, "cloudflare", "traffic")
            dimensions, sums = row.get("dimensions") or {}, row.get("sum") or {}
            if "datetime" in dimensions:
                start = _time(dimensions["datetime"])
            else:
                day = date.fromisoformat(str(dimensions.get("date")))
                start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            if start is None:
                raise ApiBadResponse("Cloudflare sent a traffic row without a time.", vendor="cloudflare")
            points.append(TrafficPoint(start, int(sums.get("requests", 0)), int(sums.get("cachedRequests", 0)),
                                       int(sums.get("threats", 0)), int(sums.get("bytes", 0))))
        return TrafficSeries(zone_id, "hour" if period == "24h" else "day", tuple(points))

    def firewall_events(self, *, since: datetime | None = None, until: datetime | None = None, limit: int = 100,
                        cancel: CancelToken = NEVER_CANCELLED) -> list[FirewallEvent]:
        """Recent firewall actions (challenges, blocks), newest first; the last hour by default."""
        until = (until or datetime.now(UTC)).astimezone(UTC)
        since = (since or until - timedelta(hours=1)).astimezone(UTC)
        variables = {"zoneTag": self.zone(cancel=cancel).id, "since": _iso(since), "until": _iso(until),
                     "limit": limit}
        events = []
        for raw in expect_list(self._graphql(FIREWALL_EVENTS, variables, cancel).get("events"), "cloudflare",
                               "firewall events"):
            item = expect_dict(raw, "cloudflare", "firewall event")
            events.append(FirewallEvent(
                occurred_at=_time(item.get("datetime")) or until, action=str(item.get("action", "")),
                source=str(item.get("source", "")), client_ip=str(item.get("clientIP", "")),
                country=str(item.get("clientCountryName", "")), method=str(item.get("clientRequestHTTPMethodName", "")),
                path=str(item.get("clientRequestPath", "")), ray_id=str(item.get("rayName", "")),
                rule_id=str(item.get("ruleId", "")), user_agent=str(item.get("userAgent", ""))))
        return events


# -- checks for the alerts ---------------------------------------------------------------------------

ATTACK_THREAT_SHARE = 0.2  # a fifth of all requests flagged as threats
ATTACK_MIN_REQUESTS = 500
ATTACK_FIREWALL_EVENTS = 100  # firewall actions in the last hour


def check_zone(client: CloudflareClient, *, now: datetime | None = None,
               cancel: CancelToken = NEVER_CANCELLED) -> ZoneCheck:
    """Is the zone active, is "I'm Under Attack" on, and does the last hour look like an attack?"""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    zone = client.zone(refresh=True, cancel=cancel)
    level = client.security_level(cancel=cancel).value
    series = client.traffic("24h", now=now, cancel=cancel)
    last_hour = [p for p in series.points if p.start >= now - timedelta(hours=1)]
    requests = sum(p.requests for p in last_hour)
    threats = sum(p.threats for p in last_hour)
    events = len(client.firewall_events(since=now - timedelta(hours=1), until=now, limit=1000, cancel=cancel))
    suspected = (requests >= ATTACK_MIN_REQUESTS and threats / requests >= ATTACK_THREAT_SHARE) or \
        events >= ATTACK_FIREWALL_EVENTS
    problems = []
    if not zone.active:
        problems.append(f"Zone {zone.name} is {zone.status}{' (paused)' if zone.paused else ''}, not active: "
                        "Cloudflare is not serving it.")
    if suspected:
        problems.append(f"Zone {zone.name} looks under attack: {threats} of {requests} requests were threats and "
                        f"{events} firewall actions in the last hour.")
    if level == "under_attack":
        problems.append(f"\"I'm Under Attack\" mode is on for {zone.name}: every visitor is challenged. "
                        "Turn it back to medium when the attack is over.")
    return ZoneCheck(zone=zone.name, status=zone.status, active=zone.active, security_level=level,
                     under_attack_mode=level == "under_attack", requests_last_hour=requests,
                     threats_last_hour=threats, firewall_events_last_hour=events, attack_suspected=suspected,
                     problems=tuple(problems))
