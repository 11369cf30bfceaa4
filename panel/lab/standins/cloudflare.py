"""Cloudflare v4 stand-in: the envelope, page/per_page lists, DNS validation codes, zone settings,
cache purge and a GraphQL endpoint with plausible traffic and firewall data."""

from __future__ import annotations

import ipaddress
import math
import re
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from panel.lab import secrets
from panel.lab.standins import demo
from panel.lab.standins.server import Request, Response, VendorApp, format_seconds, json_response, route

ZONE_NAME = "example.com"
READONLY_TOKEN = "demo-cloudflare-readonly-token-42"  # valid, but may not change anything (403)
SECURITY_LEVELS = ("off", "essentially_off", "low", "medium", "high", "under_attack")
DEV_MODE_SECONDS = 3 * 3600
PROXIABLE = {"A", "AAAA", "CNAME"}
RECORD_TYPES = {"A", "AAAA", "CNAME", "MX", "TXT", "NS", "SRV", "CAA"}
HOSTNAME = re.compile(r"^(?=.{1,253}$)(\*\.)?([A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*"
                      r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$")


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _iso_seconds(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class CloudflareError(Exception):
    """Raised inside a route to answer with the failure envelope."""

    def __init__(self, status: int, code: int, message: str, chain: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.chain = status, code, chain


class CloudflareApp(VendorApp):
    vendor = "cloudflare"

    def __init__(self, token: str = secrets.CLOUDFLARE_TOKEN, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.token = token
        self.clock = clock
        self.reset_state()

    # -- state ------------------------------------------------------------------------------------

    def reset_state(self) -> None:
        self.started = self.clock()
        self.zones: list[dict[str, Any]] = [
            self._zone(ZONE_NAME, "active", "Pro Website"),
            self._zone("example.net", "pending", "Free Website"),
        ]
        self.zone_id = self.zones[0]["id"]
        self.records: dict[str, dict[str, Any]] = {}
        for spec in self._demo_records():
            record = self._new_record(self.zones[0], spec, self.started - 86400 * 200)
            self.records[record["id"]] = record
        self.security_level = "medium"
        self.security_modified = self.started - 86400 * 30
        self.dev_mode_until: float | None = None
        self.dev_mode_modified = self.started - 86400 * 30
        self.purges: list[dict[str, Any]] = []  # what was purged, for tests
        self.attack = False  # the lab's switch: traffic full of threats in the last hours
        self._record_serial = 0

    def _zone(self, name: str, status: str, plan: str) -> dict[str, Any]:
        zone_id = demo.stable_id("", "zone", name, length=32)
        return {
            "id": zone_id, "name": name, "status": status, "paused": False, "type": "full",
            "development_mode": 0, "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
            "original_name_servers": ["ns1.registrar.example", "ns2.registrar.example"],
            "modified_on": _iso(self.clock() - 86400 * 3), "created_on": _iso(self.clock() - 86400 * 900),
            "activated_on": _iso(self.clock() - 86400 * 899) if status == "active" else None,
            "account": {"id": demo.stable_id("", "account", length=32), "name": "Founder's account"},
            "permissions": ["#dns_records:edit", "#zone:read", "#zone_settings:edit", "#cache_purge:edit"],
            "plan": {"id": demo.stable_id("", "plan", plan, length=32), "name": plan, "price": 20 if "Pro" in plan
                     else 0, "currency": "USD", "frequency": "monthly", "is_subscribed": True,
                     "can_subscribe": False, "legacy_id": "pro" if "Pro" in plan else "free",
                     "legacy_discount": False, "externally_managed": False},
        }

    def _demo_records(self) -> list[dict[str, Any]]:
        z = ZONE_NAME
        ip = demo.INVENTORY_HOST_IP
        records: list[dict[str, Any]] = [
            {"type": "A", "name": z, "content": ip, "proxied": True, "ttl": 1},
            {"type": "CNAME", "name": f"www.{z}", "content": z, "proxied": True, "ttl": 1},
            {"type": "A", "name": f"app1.{z}", "content": ip, "proxied": False, "ttl": 300},
            {"type": "A", "name": f"app2.{z}", "content": ip, "proxied": False, "ttl": 300},
            {"type": "A", "name": f"backup1.{z}", "content": ip, "proxied": False, "ttl": 300},
            {"type": "A", "name": f"legacy.{z}", "content": demo.STRAY_HOST_IP, "proxied": False,
             "ttl": 3600, "comment": "old VPS, decommissioned?"},
            {"type": "AAAA", "name": f"ipv6.{z}", "content": "2001:db8::10", "proxied": False, "ttl": 1},
            {"type": "CNAME", "name": f"static.{z}", "content": f"app1.{z}", "proxied": True, "ttl": 1},
            {"type": "MX", "name": f"mg.{z}", "content": "mxa.eu.mailgun.org", "priority": 10, "ttl": 3600},
            {"type": "MX", "name": f"mg.{z}", "content": "mxb.eu.mailgun.org", "priority": 10, "ttl": 3600},
            {"type": "TXT", "name": f"mg.{z}", "content": "v=spf1 include:mailgun.org ~all", "ttl": 3600},
            {"type": "TXT", "name": f"pic._domainkey.mg.{z}",
             "content": "k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDdemo", "ttl": 3600},
            {"type": "CNAME", "name": f"email.mg.{z}", "content": "eu.mailgun.org", "ttl": 3600},
            {"type": "TXT", "name": z, "content": "v=spf1 include:mailgun.org -all", "ttl": 3600},
            {"type": "CAA", "name": z, "content": '0 issue "letsencrypt.org"', "ttl": 3600},
        ]
        # Each group's subdomain points at the server that holds the group.
        tenants = [*range(1, 101), *range(1_000_001, 1_000_021)]
        for group_id in tenants:
            group = demo.group(group_id)
            records.append({"type": "CNAME", "name": f"{group.slug}.{z}", "content": f"{group.server}.{z}",
                            "proxied": True, "ttl": 1, "comment": f"group {group_id}",
                            "tags": [f"group:{group_id}"]})
        return records

    def _new_record(self, zone: dict[str, Any], spec: dict[str, Any], created: float) -> dict[str, Any]:
        record_id = demo.stable_id("", "record", spec["type"], spec["name"], spec["content"], created, length=32)
        record = {
            "id": record_id, "zone_id": zone["id"], "zone_name": zone["name"], "name": spec["name"],
            "type": spec["type"], "content": spec["content"], "proxiable": spec["type"] in PROXIABLE,
            "proxied": bool(spec.get("proxied", False)), "ttl": int(spec.get("ttl", 1)), "locked": False,
            "settings": {}, "meta": {"auto_added": False, "managed_by_apps": False,
                                     "managed_by_argo_tunnel": False},
            "comment": spec.get("comment"), "tags": list(spec.get("tags", [])),
            "created_on": _iso(created), "modified_on": _iso(created),
        }
        if spec["type"] == "MX":
            record["priority"] = int(spec.get("priority", 10))
        return record

    # -- vendor hooks -----------------------------------------------------------------------------

    def envelope(self, result: Any, status: int = 200, result_info: dict[str, Any] | None = None,
                 messages: list[dict[str, Any]] | None = None) -> Response:
        payload: dict[str, Any] = {"success": True, "errors": [], "messages": messages or [], "result": result}
        if result_info is not None:
            payload["result_info"] = result_info
        return json_response(status, payload)

    def failure(self, status: int, code: int, message: str, chain: list[dict[str, Any]] | None = None,
                headers: list[tuple[str, str]] | None = None) -> Response:
        error: dict[str, Any] = {"code": code, "message": message}
        if chain:
            error["error_chain"] = chain
        return json_response(status, {"success": False, "errors": [error], "messages": [], "result": None},
                             headers or [])

    def check_auth(self, request: Request) -> Response | None:
        header = request.headers.get("Authorization")
        if header is None:
            return self.failure(400, 9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers")
        scheme, _, token = str(header).partition(" ")
        if scheme != "Bearer" or not token:
            return self.failure(400, 6003, "Invalid request headers",
                                [{"code": 6111, "message": "Invalid format for Authorization header"}])
        if token not in (self.token, READONLY_TOKEN):
            if request.path.endswith("/user/tokens/verify"):
                return self.failure(401, 1000, "Invalid API Token")
            return self.failure(401, 9109, "Invalid access token")
        if token == READONLY_TOKEN and request.method != "GET" and not request.path.endswith("/graphql"):
            return self.failure(403, 10000, "Authentication error")
        return None

    def rate_limited(self, retry_after: float) -> Response:
        return self.failure(429, 971, "Please wait and consider throttling your request speed",
                            headers=[("retry-after", format_seconds(retry_after))])

    def server_error(self, status: int) -> Response:
        return self.failure(status, 10013, "An unknown error has occurred")

    def not_found(self, request: Request) -> Response:
        return self.failure(404, 7003, "Could not route to " + request.path + ", perhaps your object "
                            "identifier is invalid?")

    def method_not_allowed(self, request: Request) -> Response:
        return self.failure(405, 10405, "Method not allowed")

    def dispatch(self, request: Request) -> Response:
        prefix = "/client/v4"
        if not request.path.startswith(prefix + "/"):
            return self.not_found(request)
        request.path = request.path[len(prefix):]
        try:
            return super().dispatch(request)
        except CloudflareError as error:
            return self.failure(error.status, error.code, str(error), error.chain)

    # -- helpers ----------------------------------------------------------------------------------

    def _zone_by_id(self, zone_id: str) -> dict[str, Any]:
        for zone in self.zones:
            if zone["id"] == zone_id:
                return zone
        raise CloudflareError(404, 7003, "Could not route to /zones/" + zone_id + ", perhaps your object "
                              "identifier is invalid?")

    def _record(self, zone_id: str, record_id: str) -> dict[str, Any]:
        self._zone_by_id(zone_id)
        record = self.records.get(record_id)
        if record is None or record["zone_id"] != zone_id:
            raise CloudflareError(404, 81044, "Record does not exist.")
        return record

    def _body(self, request: Request) -> dict[str, Any]:
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            raise CloudflareError(400, 9207, "Request body is invalid.") from None
        if not isinstance(body, dict):
            raise CloudflareError(400, 9207, "Request body is invalid.")
        return body

    @staticmethod
    def _paging(request: Request, default: int, low: int, high: int) -> tuple[int, int]:
        try:
            page = int(request.query("page") or 1)
            per_page = int(request.query("per_page") or default)
        except ValueError:
            raise CloudflareError(400, 1001, "Invalid page or per_page: must be integers") from None
        if page < 1:
            raise CloudflareError(400, 1001, "page must be at least 1")
        return page, min(max(per_page, low), high)

    @staticmethod
    def _slice(items: list[dict[str, Any]], page: int, per_page: int) -> tuple[list[dict[str, Any]],
                                                                                  dict[str, Any]]:
        total = len(items)
        chunk = items[(page - 1) * per_page: page * per_page]
        info = {"page": page, "per_page": per_page, "count": len(chunk), "total_count": total,
                "total_pages": max(1, math.ceil(total / per_page))}
        return chunk, info

    # -- routes: tokens and zones -----------------------------------------------------------------

    @route("GET", "/user/tokens/verify")
    def verify_token(self, request: Request) -> Response:
        token = str(request.headers.get("Authorization")).partition(" ")[2]
        token_id = demo.stable_id("", "token", token, length=32)
        return self.envelope({"id": token_id, "status": "active", "not_before": _iso_seconds(self.started - 86400 * 90),
                              "expires_on": _iso_seconds(self.started + 86400 * 275)},
                             messages=[{"code": 10000, "message": "This API Token is valid and active",
                                        "type": None}])

    @route("GET", "/zones")
    def list_zones(self, request: Request) -> Response:
        page, per_page = self._paging(request, 20, 5, 50)
        zones = self.zones
        if (name := request.query("name")) is not None:
            zones = [z for z in zones if z["name"] == name.lower()]
        if (status := request.query("status")) is not None:
            zones = [z for z in zones if z["status"] == status]
        chunk, info = self._slice(zones, page, per_page)
        return self.envelope(chunk, result_info=info)

    @route("GET", "/zones/{zone}")
    def get_zone(self, request: Request) -> Response:
        return self.envelope(self._zone_by_id(request.params["zone"]))

    # -- routes: DNS ------------------------------------------------------------------------------

    @route("GET", "/zones/{zone}/dns_records")
    def list_records(self, request: Request) -> Response:
        zone_id = request.params["zone"]
        self._zone_by_id(zone_id)
        page, per_page = self._paging(request, 100, 5, 5000)
        records = [r for r in self.records.values() if r["zone_id"] == zone_id]
        for field in ("type", "content"):
            if (wanted := request.query(field)) is not None:
                records = [r for r in records if r[field].lower() == wanted.lower()]
        if (name := request.query("name")) is not None:
            records = [r for r in records if r["name"] == name.lower().rstrip(".")]
        if (proxied := request.query("proxied")) is not None:
            records = [r for r in records if r["proxied"] == (proxied == "true")]
        order = request.query("order") or "type"
        if order not in ("type", "name", "content", "ttl", "proxied"):
            raise CloudflareError(400, 1001, f"Invalid order {order!r}")
        records.sort(key=lambda r: (r[order], r["name"], r["content"], r["id"]),
                     reverse=request.query("direction") == "desc")
        chunk, info = self._slice(records, page, per_page)
        return self.envelope(chunk, result_info=info)

    @route("POST", "/zones/{zone}/dns_records")
    def create_record(self, request: Request) -> Response:
        zone = self._zone_by_id(request.params["zone"])
        spec = self._validated(zone, self._body(request), current=None)
        self._record_serial += 1
        record = self._new_record(zone, spec, self.clock() + self._record_serial * 1e-6)
        self.records[record["id"]] = record
        return self.envelope(record)

    @route("GET", "/zones/{zone}/dns_records/{record}")
    def get_record(self, request: Request) -> Response:
        return self.envelope(self._record(request.params["zone"], request.params["record"]))

    @route("PATCH", "/zones/{zone}/dns_records/{record}")
    def patch_record(self, request: Request) -> Response:
        return self._update(request, merge=True)

    @route("PUT", "/zones/{zone}/dns_records/{record}")
    def put_record(self, request: Request) -> Response:
        return self._update(request, merge=False)

    def _update(self, request: Request, *, merge: bool) -> Response:
        zone = self._zone_by_id(request.params["zone"])
        record = self._record(zone["id"], request.params["record"])
        body = self._body(request)
        if merge:
            fields = ("type", "name", "content", "proxied", "ttl", "comment", "tags", "priority")
            body = {**{k: record[k] for k in fields if k in record}, **body}
        spec = self._validated(zone, body, current=record["id"])
        record.update({k: spec[k] for k in ("type", "name", "content") if k in spec})
        record["proxied"] = bool(spec.get("proxied", False))
        record["proxiable"] = record["type"] in PROXIABLE
        record["ttl"] = int(spec.get("ttl", 1))
        record["comment"] = spec.get("comment")
        record["tags"] = list(spec.get("tags") or [])
        if record["type"] == "MX":
            record["priority"] = int(spec.get("priority", 10))
        else:
            record.pop("priority", None)
        record["modified_on"] = _iso(self.clock())
        return self.envelope(record)

    @route("DELETE", "/zones/{zone}/dns_records/{record}")
    def delete_record(self, request: Request) -> Response:
        record = self._record(request.params["zone"], request.params["record"])
        del self.records[record["id"]]
        return self.envelope({"id": record["id"]})

    def _validated(self, zone: dict[str, Any], body: dict[str, Any], current: str | None) -> dict[str, Any]:
        """The API's own checks, with its error codes. Raises CloudflareError."""
        record_type = str(body.get("type") or "").upper()
        if record_type not in RECORD_TYPES:
            raise CloudflareError(400, 1004, "DNS Validation Error",
                                  [{"code": 9000, "message": f"Invalid or missing record type {record_type!r}."}])
        raw_name = str(body.get("name") or "").strip().lower().rstrip(".")
        if not raw_name:
            raise CloudflareError(400, 1004, "DNS Validation Error",
                                  [{"code": 9007, "message": "Record name is required."}])
        name = zone["name"] if raw_name == "@" else raw_name
        if name != zone["name"] and not name.endswith("." + zone["name"]):
            name = f"{name}.{zone['name']}"
        if not HOSTNAME.match(name):
            raise CloudflareError(400, 1004, "DNS Validation Error",
                                  [{"code": 9007, "message": "Record name is invalid."}])
        content = str(body.get("content") or "").strip()
        self._check_content(record_type, content)
        ttl = body.get("ttl", 1)
        if not isinstance(ttl, int) or isinstance(ttl, bool) or not (ttl == 1 or 60 <= ttl <= 86400):
            raise CloudflareError(400, 9021, "Invalid TTL. Must be between 60 and 86400 seconds, "
                                  "or 1 for Automatic.")
        proxied = body.get("proxied", False)
        if not isinstance(proxied, bool):
            raise CloudflareError(400, 9003, "Invalid 'proxied' value, must be a boolean")
        if proxied and record_type not in PROXIABLE:
            raise CloudflareError(400, 9004, "This record type cannot be proxied.")
        if record_type == "MX":
            priority = body.get("priority")
            if not isinstance(priority, int) or not 0 <= priority <= 65535:
                raise CloudflareError(400, 1004, "DNS Validation Error",
                                      [{"code": 9101, "message": "MX priority must be 0 to 65535."}])
        comment = body.get("comment")
        if comment is not None and (not isinstance(comment, str) or len(comment) > 100):
            raise CloudflareError(400, 9101, "Comment must be a string of at most 100 characters.")
        if record_type in ("A", "AAAA"):
            content = str(ipaddress.ip_address(content))  # the API stores the canonical form
        for other in self.records.values():
            if other["id"] == current or other["zone_id"] != zone["id"] or other["name"] != name:
                continue
            if other["type"] == record_type and other["content"].lower() == content.lower():
                raise CloudflareError(400, 81058, "An identical record already exists.")
            if "CNAME" in (record_type, other["type"]) and {record_type, other["type"]} & PROXIABLE:
                raise CloudflareError(400, 81053, "An A, AAAA, or CNAME record with that host already exists.")
        return {**body, "type": record_type, "name": name, "content": content, "ttl": ttl, "proxied": proxied}

    @staticmethod
    def _check_content(record_type: str, content: str) -> None:
        if not content:
            raise CloudflareError(400, 1004, "DNS Validation Error",
                                  [{"code": 9008, "message": "Record content is required."}])
        if record_type == "A":
            try:
                ipaddress.IPv4Address(content)
            except ValueError:
                raise CloudflareError(400, 9005, "Content for A record must be a valid IPv4 address.") from None
        elif record_type == "AAAA":
            try:
                ipaddress.IPv6Address(content)
            except ValueError:
                raise CloudflareError(400, 9006, "Content for AAAA record must be a valid IPv6 address.") from None
        elif record_type in ("CNAME", "MX", "NS") and not HOSTNAME.match(content):
            raise CloudflareError(400, 9007, f"Content for {record_type} record is invalid.")
        elif record_type == "TXT" and len(content) > 2048:
            raise CloudflareError(400, 9101, "Content for TXT record is too long (at most 2048 characters).")

    # -- routes: cache and settings ---------------------------------------------------------------

    @route("POST", "/zones/{zone}/purge_cache")
    def purge_cache(self, request: Request) -> Response:
        zone = self._zone_by_id(request.params["zone"])
        body = self._body(request)
        if body.get("purge_everything") is True:
            self.purges.append({"purge_everything": True})
        elif isinstance(body.get("files"), list) and body["files"]:
            if len(body["files"]) > 30:
                raise CloudflareError(400, 1002, "Only 30 files may be purged in one request.")
            self.purges.append({"files": list(body["files"])})
        else:
            raise CloudflareError(400, 1012, "Request must contain one of \"purge_everything\", \"files\", "
                                  "\"tags\", \"hosts\" or \"prefixes\"")
        return self.envelope({"id": zone["id"]})

    def _setting(self, setting: str) -> dict[str, Any]:
        if setting == "security_level":
            return {"id": setting, "value": self.security_level, "editable": True,
                    "modified_on": _iso(self.security_modified)}
        remaining = 0 if self.dev_mode_until is None else max(0, int(self.dev_mode_until - self.clock()))
        return {"id": setting, "value": "on" if remaining > 0 else "off", "editable": True,
                "modified_on": _iso(self.dev_mode_modified), "time_remaining": remaining}

    @route("GET", "/zones/{zone}/settings/{setting}")
    def get_setting(self, request: Request) -> Response:
        self._zone_by_id(request.params["zone"])
        setting = request.params["setting"]
        if setting not in ("security_level", "development_mode"):
            raise CloudflareError(404, 1003, f"Invalid or missing zone setting {setting!r}")
        return self.envelope(self._setting(setting))

    @route("PATCH", "/zones/{zone}/settings/{setting}")
    def patch_setting(self, request: Request) -> Response:
        self._zone_by_id(request.params["zone"])
        setting = request.params["setting"]
        value = self._body(request).get("value")
        if setting == "security_level":
            if value not in SECURITY_LEVELS:
                raise CloudflareError(400, 1007, "Invalid value for zone setting security_level")
            self.security_level = str(value)
            self.security_modified = self.clock()
        elif setting == "development_mode":
            if value not in ("on", "off"):
                raise CloudflareError(400, 1007, "Invalid value for zone setting development_mode")
            self.dev_mode_until = self.clock() + DEV_MODE_SECONDS if value == "on" else None
            self.dev_mode_modified = self.clock()
        else:
            raise CloudflareError(404, 1003, f"Invalid or missing zone setting {setting!r}")
        return self.envelope(self._setting(setting))

    # -- GraphQL analytics ------------------------------------------------------------------------

    @route("POST", "/graphql")
    def graphql(self, request: Request) -> Response:
        # GraphQL errors come back with HTTP 200 and an "errors" list, not the v4 envelope.
        try:
            body = request.json()
            query = str(body["query"])
            variables = body.get("variables") or {}
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return json_response(400, {"data": None, "errors": [{"message": "failed to parse the request body"}]})
        return json_response(200, GraphqlAnswer(self, query, variables).run())

    # Traffic model: a daily rhythm, some noise, and an attack switch for the last two hours.

    def hour_sample(self, hour_start: float) -> dict[str, int]:
        hour_index = int(hour_start // 3600)
        noise = demo.rng(f"cf-hour-{hour_index}")
        hour_of_day = (hour_index % 24)
        rhythm = 0.6 + 0.4 * math.sin(2 * math.pi * (hour_of_day - 8) / 24)
        requests = int(1800 * rhythm * noise.uniform(0.85, 1.15))
        threats = int(requests * noise.uniform(0.001, 0.01))
        if self.attack and hour_start >= self.clock() - 2 * 3600:
            requests *= 6
            threats = int(requests * 0.45)
        cached = int((requests - threats) * noise.uniform(0.55, 0.7))
        return {"requests": requests, "cachedRequests": cached, "threats": threats,
                "bytes": requests * noise.randint(28_000, 42_000), "pageViews": int(requests * 0.3)}

    def firewall_events(self, since: float, until: float, limit: int, descending: bool) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        first_hour = int(since // 3600)
        last_hour = int(min(until, self.clock()) // 3600)
        for hour_index in range(first_hour, last_hour + 1):
            hour_start = hour_index * 3600.0
            noise = demo.rng(f"cf-fw-{hour_index}")
            attacked = self.attack and hour_start >= self.clock() - 2 * 3600
            count = noise.randint(150, 250) if attacked else noise.randint(0, 4)
            for n in range(count):
                moment = hour_start + noise.uniform(0, 3600)
                if not since <= moment < until or moment > self.clock():
                    continue
                attacker = attacked and n % 5 != 0
                events.append({
                    "action": "managed_challenge" if attacker else noise.choice(["block", "managed_challenge", "log"]),
                    "source": "securitylevel" if attacker else noise.choice(["firewallCustom", "waf", "ratelimit"]),
                    "clientIP": f"203.0.113.{noise.randint(2, 40) if attacker else noise.randint(41, 254)}",
                    "clientCountryName": noise.choice(["US", "DE", "BR", "VN", "NL", "CN"]),
                    "clientRequestPath": noise.choice(["/login", "/wp-login.php", "/api/groups", "/", "/.env"]),
                    "clientRequestHTTPMethodName": noise.choice(["GET", "POST"]),
                    "datetime": _iso_seconds(moment),
                    "rayName": f"{noise.getrandbits(64):016x}",
                    "ruleId": "" if attacker else f"{noise.getrandbits(128):032x}",
                    "userAgent": noise.choice(["curl/8.5.0", "python-requests/2.31", "Mozilla/5.0"]),
                })
        events.sort(key=lambda e: e["datetime"], reverse=descending)
        return events[:limit]


class GraphqlAnswer:
    """Answers the few GraphQL shapes the panel asks for, reading filters from the query text and
    its variables. Not a GraphQL engine: it finds the dataset calls and their filter arguments."""

    DATASETS = ("httpRequests1hGroups", "httpRequests1dGroups", "firewallEventsAdaptive")

    def __init__(self, app: CloudflareApp, query: str, variables: dict[str, Any]) -> None:
        self.app, self.query, self.variables = app, query, variables

    def _value(self, token: str) -> Any:
        if token.startswith("$"):
            return self.variables.get(token[1:])
        if token.startswith('"'):
            return token[1:-1]
        return int(token)

    def _arguments(self, start: int) -> str:
        depth, index = 0, start
        while index < len(self.query):
            if self.query[index] == "(":
                depth += 1
            elif self.query[index] == ")":
                depth -= 1
                if depth == 0:
                    return self.query[start + 1:index]
            index += 1
        return self.query[start + 1:]

    def run(self) -> dict[str, Any]:
        if "viewer" not in self.query:
            return {"data": None, "errors": [{"message": "unknown field; only viewer is supported here"}]}
        tag_match = re.search(r"zoneTag\s*:\s*(\$\w+|\"[^\"]*\")", self.query)
        zone_tag = self._value(tag_match.group(1)) if tag_match else None
        if zone_tag not in [z["id"] for z in self.app.zones]:
            return {"data": None, "errors": [{
                "message": f"zone '{zone_tag}' does not exist or you do not have access to it",
                "path": ["viewer", "zones", "0"], "extensions": {"code": "authz", "timestamp": _iso(time.time())}}]}
        zone: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        pattern = r"(?:(\w+)\s*:\s*)?(" + "|".join(self.DATASETS) + r")\s*\("
        for match in re.finditer(pattern, self.query):
            alias, dataset = match.group(1) or match.group(2), match.group(2)
            arguments = self._arguments(match.end() - 1)
            filters = {key: self._value(value) for key, value in
                       re.findall(r"(\w+)\s*:\s*(\$\w+|\"[^\"]*\"|-?\d+)", arguments)}
            try:
                zone[alias] = self._dataset(dataset, filters, "_DESC" in arguments)
            except (ValueError, TypeError) as error:
                errors.append({"message": f"{dataset}: {error}", "path": ["viewer", "zones", "0", alias]})
        if not zone and not errors:
            errors.append({"message": "no known dataset in the query"})
        return {"data": {"viewer": {"zones": [zone]}}, "errors": errors or None}

    def _dataset(self, dataset: str, filters: dict[str, Any], descending: bool) -> list[dict[str, Any]]:
        limit = int(filters.get("limit", 100))
        if not 1 <= limit <= 10000:
            raise ValueError("limit must be between 1 and 10000")
        if dataset == "httpRequests1dGroups":
            first = date.fromisoformat(str(filters.get("date_geq") or filters.get("date_gt")))
            last = date.fromisoformat(str(filters.get("date_leq") or filters.get("date_lt")))
            rows: list[dict[str, Any]] = []
            day = first
            while day <= last and len(rows) < limit:
                start = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
                hours = [self.app.hour_sample(start + 3600 * h) for h in range(24)
                         if start + 3600 * h <= self.app.clock()]
                total = {key: sum(h[key] for h in hours) for key in ("requests", "cachedRequests", "threats",
                                                                       "bytes", "pageViews")}
                rows.append({"dimensions": {"date": day.isoformat()}, "sum": total})
                day += timedelta(days=1)
            return rows[::-1] if descending else rows
        since = _parse_time(str(filters.get("datetime_geq") or filters.get("datetime_gt")))
        until = _parse_time(str(filters.get("datetime_lt") or filters.get("datetime_leq") or
                                _iso(self.app.clock())))
        if dataset == "firewallEventsAdaptive":
            if until - since > 86400 + 1:
                raise ValueError("the time range may be at most 1 day for firewallEventsAdaptive")
            return self.app.firewall_events(since, until, limit, descending)
        if until - since > 7 * 86400 + 1:
            raise ValueError("the time range may be at most 7 days for httpRequests1hGroups")
        rows = []
        hour = math.floor(since / 3600) * 3600
        while hour < until and hour <= self.app.clock() and len(rows) < limit:
            rows.append({"dimensions": {"datetime": _iso_seconds(hour)}, "sum": self.app.hour_sample(hour)})
            hour += 3600
        return rows[::-1] if descending else rows
