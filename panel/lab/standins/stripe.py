"""Stripe stand-in: bracket forms, list and search pagination, API versions (2025-03-31.basil moved
``current_period_*`` to the items and ``invoice.subscription`` under ``parent``), idempotent POSTs,
and Stripe's error objects. Holds 10,500 customers, about half of them tied to demo groups."""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from panel.lab import secrets
from panel.lab.standins import demo
from panel.lab.standins.server import Request, Response, VendorApp, format_seconds, json_response, route

LATEST_VERSION = "2025-03-31.basil"
ACCOUNT_DEFAULT_VERSION = "2024-06-20"  # what a request without Stripe-Version gets, as on a real account
CUSTOMER_COUNT = 10_500
DAY = 86400
PRICES: dict[str, dict[str, Any]] = {
    "price_starter_monthly": {"unit_amount": 1900, "currency": "usd", "interval": "month", "count": 1,
                              "product": "prod_Starter", "nickname": "Starter"},
    "price_pro_monthly": {"unit_amount": 4900, "currency": "usd", "interval": "month", "count": 1,
                          "product": "prod_Pro", "nickname": "Pro"},
    "price_business_yearly": {"unit_amount": 49000, "currency": "usd", "interval": "year", "count": 1,
                              "product": "prod_Business", "nickname": "Business (yearly)"},
    "price_pro_quarterly_eur": {"unit_amount": 12900, "currency": "eur", "interval": "month", "count": 3,
                                "product": "prod_Pro", "nickname": "Pro EU (quarterly)"},
}
VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.\w+)?$")


class StripeError(Exception):
    """Raised inside a route to answer with Stripe's error object."""

    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.type, self.code, self.param, self.extra = status, type_, code, param, extra or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": str(self), "type": self.type, **self.extra}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = "https://stripe.com/docs/error-codes/" + self.code.replace("_", "-")
        if self.param:
            error["param"] = self.param
        return {"error": error}


def _missing(kind: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


class StripeApp(VendorApp):
    vendor = "stripe"

    def __init__(self, key: str = secrets.STRIPE_KEY, clock: Callable[[], float] = time.time,
                 customer_count: int = CUSTOMER_COUNT) -> None:
        super().__init__()
        self.key = key
        self.clock = clock
        self.customer_count = customer_count
        self.reset_state()

    # -- demo data --------------------------------------------------------------------------------

    STATE = ("now_at_start", "customers", "subscriptions", "invoices", "events", "card_ok", "customer_order",
             "_serial")

    def snapshot_key(self) -> tuple[object, ...]:
        return ("stripe", self.customer_count)

    def reset_state(self) -> None:
        self.charges: dict[str, int] = {}  # invoice id -> successful charges, to prove no double effect
        self.idempotency: dict[str, dict[str, Any]] = {}
        if self.restore_snapshot(self.STATE):
            return
        self._generate()
        self.save_snapshot(self.STATE)

    def _generate(self) -> None:
        now = int(self.clock())
        self.now_at_start = now
        self.customers: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []  # newest first
        self.card_ok: dict[str, bool] = {}  # customer id -> whether a payment retry succeeds
        self._serial = 0
        pick = demo.rng("stripe-demo")
        groups = [*demo.APP1_GROUPS, *demo.APP2_GROUPS]
        for index in range(self.customer_count):
            group_id = groups[index] if index < len(groups) else None
            created = now - (self.customer_count - index) * 1800
            if index == self.customer_count - 100:
                group_id = 1  # acme also has an old, canceled customer: a group can map to several
                created = now - 1100 * DAY
            customer = self._make_customer(index, group_id, created)
            self.customers[customer["id"]] = customer
            self.card_ok[customer["id"]] = pick.random() < 0.5
            if group_id is not None:
                status = self._demo_status(group_id, index == self.customer_count - 100, pick)
                self._make_subscription(customer, status, pick, created)
        self.customer_order = sorted(self.customers, key=lambda c: (-self.customers[c]["created"], c))
        self.card_ok[self._customer_of_group(1_000_001)] = True  # globex: a retry succeeds
        self.card_ok[self._customer_of_group(5)] = False  # initech: a retry is declined
        self.events.sort(key=lambda e: (-e["created"], e["id"]))

    def _customer_of_group(self, group_id: int) -> str:
        return next(c["id"] for c in self.customers.values() if c["metadata"].get("group_id") == str(group_id))

    @staticmethod
    def _demo_status(group_id: int, old_customer: bool, pick: Any) -> str:
        if old_customer:
            return "canceled"
        # acme pays; initech (suspended) is unpaid; globex is past due; globex-research is on trial.
        fixed = {1: "active", 5: "unpaid", 1_000_001: "past_due", 1_000_002: "trialing"}
        if group_id in fixed:
            return fixed[group_id]
        roll = pick.random()
        for status, share in (("active", 0.80), ("trialing", 0.05), ("past_due", 0.03), ("unpaid", 0.01),
                              ("canceled", 0.09), ("incomplete", 0.01)):
            if roll < share:
                return status
            roll -= share
        return "paused"

    def _make_customer(self, index: int, group_id: int | None, created: int) -> dict[str, Any]:
        if group_id is not None:
            group = demo.group(group_id)
            email, name = group.billing_email, group.display_name
            metadata = {"group_id": str(group_id), "server": group.server}
        else:
            email, name, metadata = f"customer{index}@mail.example", f"Customer {index}", {"source": "legacy"}
        return {
            "id": demo.stable_id("cus_", "customer", index, length=14), "object": "customer",
            "address": None, "balance": 0, "created": created, "currency": "usd", "default_source": None,
            "delinquent": False, "description": None, "discount": None, "email": email,
            "invoice_prefix": demo.stable_id("", "prefix", index, length=8).upper(),
            "invoice_settings": {"custom_fields": None, "default_payment_method": None, "footer": None,
                                 "rendering_options": None},
            "livemode": False, "metadata": metadata, "name": name, "phone": None,
            "preferred_locales": [], "shipping": None, "tax_exempt": "none", "test_clock": None,
        }

    def _price(self, price_id: str) -> dict[str, Any]:
        spec = PRICES[price_id]
        return {"id": price_id, "object": "price", "active": True, "billing_scheme": "per_unit",
                "created": self.now_at_start - 400 * DAY, "currency": spec["currency"], "livemode": False,
                "lookup_key": None, "metadata": {}, "nickname": spec["nickname"], "product": spec["product"],
                "recurring": {"interval": spec["interval"], "interval_count": spec["count"],
                              "meter": None, "usage_type": "licensed"},
                "tax_behavior": "unspecified", "type": "recurring", "unit_amount": spec["unit_amount"],
                "unit_amount_decimal": str(spec["unit_amount"])}

    def _make_subscription(self, customer: dict[str, Any], status: str, pick: Any, created: int) -> None:
        now = self.now_at_start
        price_id = pick.choices(list(PRICES), weights=[50, 35, 10, 5])[0]
        price = self._price(price_id)
        quantity = pick.randint(1, 12) if price_id != "price_business_yearly" else 1
        period_days = 365 if price["recurring"]["interval"] == "year" else 30 * price["recurring"]["interval_count"]
        period_start = now - pick.randint(1, period_days - 1) * DAY
        if status == "past_due":
            period_start = now - pick.randint(1, 9) * DAY
        if status == "unpaid":
            period_start = now - pick.randint(20, 28) * DAY
        sub_id = demo.stable_id("sub_", "sub", customer["id"], length=14)
        item = {"id": demo.stable_id("si_", "si", sub_id, length=14), "object": "subscription_item",
                "created": created, "metadata": {}, "price": price, "quantity": quantity, "subscription": sub_id,
                "current_period_start": period_start, "current_period_end": period_start + period_days * DAY,
                "tax_rates": [], "discounts": []}
        subscription = {
            "id": sub_id, "object": "subscription", "application": None, "billing_cycle_anchor": period_start,
            "cancel_at": None, "cancel_at_period_end": False,
            "canceled_at": now - 40 * DAY if status == "canceled" else None,
            "collection_method": "charge_automatically", "created": created, "currency": price["currency"],
            "customer": customer["id"], "days_until_due": None, "default_payment_method": None,
            "description": None, "discounts": [], "ended_at": now - 40 * DAY if status == "canceled" else None,
            "items": {"object": "list", "data": [item], "has_more": False,
                      "url": f"/v1/subscription_items?subscription={sub_id}"},
            "latest_invoice": None, "livemode": False, "metadata": dict(customer["metadata"]),
            "start_date": created, "status": status,
            "trial_end": period_start + 14 * DAY if status == "trialing" else None,
            "trial_start": period_start if status == "trialing" else None,
        }
        self.subscriptions[sub_id] = subscription
        amount = 0 if status == "trialing" else price["unit_amount"] * quantity
        invoice_status = {"past_due": "open", "unpaid": "open", "incomplete": "open",
                          "canceled": "void" if pick.random() < 0.3 else "paid"}.get(status, "paid")
        invoice = self._make_invoice(subscription, amount, invoice_status, period_start)
        if invoice_status == "open":
            customer["delinquent"] = status != "incomplete"
            attempts = 1 if status == "incomplete" else pick.randint(1, 3) if status == "past_due" else 4
            invoice["attempt_count"] = attempts
            invoice["attempted"] = True
            invoice["next_payment_attempt"] = (now + pick.randint(1, 3) * DAY if status == "past_due" else None)
            for attempt in range(attempts):
                moment = min(period_start + attempt * 3 * DAY + 3600, now - 60)
                self._event("invoice.payment_failed", invoice, moment)
        elif invoice_status == "paid" and now - period_start < 3 * DAY:
            self._event("invoice.paid", invoice, period_start + 3600)
        subscription["latest_invoice"] = invoice["id"]

    def _make_invoice(self, subscription: dict[str, Any], amount: int, status: str, created: int) -> dict[str, Any]:
        invoice_id = demo.stable_id("in_", "invoice", subscription["id"], created, length=14)
        paid = status == "paid"
        invoice = {
            "id": invoice_id, "object": "invoice", "account_country": "US", "account_name": "Example SaaS",
            "amount_due": amount, "amount_paid": amount if paid else 0, "amount_remaining": 0 if paid else amount,
            "attempt_count": 1 if paid and amount else 0, "attempted": paid and amount > 0,
            "auto_advance": status == "open", "billing_reason": "subscription_cycle",
            "collection_method": "charge_automatically", "created": created,
            "currency": subscription["currency"], "customer": subscription["customer"],
            "customer_email": self.customers[subscription["customer"]]["email"],
            "hosted_invoice_url": f"https://invoice.stripe.com/i/acct_demo/test_{invoice_id}",
            "livemode": False, "metadata": {}, "next_payment_attempt": None,
            "number": f"{self.customers[subscription['customer']]['invoice_prefix']}-0001",
            "parent": {"type": "subscription_details", "quote_details": None,
                       "subscription_details": {"metadata": dict(subscription["metadata"]),
                                                "subscription": subscription["id"]}},
            "period_start": created, "period_end": created, "status": status,
            "status_transitions": {"finalized_at": created, "paid_at": created + 60 if paid else None,
                                   "marked_uncollectible_at": None, "voided_at": None},
            "subtotal": amount, "total": amount,
        }
        self.invoices[invoice_id] = invoice
        return invoice

    def _event(self, event_type: str, invoice: dict[str, Any], moment: int) -> None:
        self._serial += 1
        self.events.append({
            "id": demo.stable_id("evt_", "event", invoice["id"], event_type, moment, self._serial, length=24),
            "object": "event", "api_version": LATEST_VERSION, "created": int(moment),
            "data": {"object": json.loads(json.dumps(invoice))}, "livemode": False, "pending_webhooks": 0,
            "request": {"id": None, "idempotency_key": None}, "type": event_type,
        })

    # -- vendor hooks -----------------------------------------------------------------------------

    def check_auth(self, request: Request) -> Response | None:
        header = str(request.headers.get("Authorization") or "")
        scheme, _, credentials = header.partition(" ")
        key = ""
        if scheme == "Bearer":
            key = credentials.strip()
        elif scheme == "Basic":
            try:
                key = base64.b64decode(credentials).decode().partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                key = ""
        if not key:
            return self._error(StripeError(
                401, "You did not provide an API key. You need to provide your API key in the Authorization "
                "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."))
        if key != self.key:
            # Like the real API, it echoes a masked key; clients must not pass even that on.
            masked = key[:8] + "*" * (len(key) - 12) + key[-4:] if len(key) > 12 else "*" * len(key)
            return self._error(StripeError(401, f"Invalid API Key provided: {masked}"))
        return None

    def _error(self, error: StripeError, headers: list[tuple[str, str]] | None = None) -> Response:
        return json_response(error.status, error.body(), headers or [])

    def rate_limited(self, retry_after: float) -> Response:
        error = StripeError(429, "Request rate limit exceeded. You can learn more about rate limits here "
                            "https://stripe.com/docs/rate-limits.", code="rate_limit")
        return self._error(error, [("Retry-After", format_seconds(retry_after)), ("Stripe-Should-Retry", "true")])

    def server_error(self, status: int) -> Response:
        return self._error(StripeError(status, "An unknown error occurred", type_="api_error"),
                           [("Stripe-Should-Retry", "true")])

    def not_found(self, request: Request) -> Response:
        return self._error(StripeError(404, f"Unrecognized request URL ({request.method}: {request.path}). "
                                       "Please see https://stripe.com/docs or we can help at "
                                       "https://support.stripe.com/."))

    def method_not_allowed(self, request: Request) -> Response:
        return self.not_found(request)

    def decorate(self, request: Request, response: Response) -> Response:
        names = {name.lower() for name, _ in response.headers}
        if "request-id" not in names:
            response.headers.append(("Request-Id", "req_" + uuid.uuid4().hex[:14]))
        response.headers.append(("Stripe-Version", self._version(request)))
        return response

    @staticmethod
    def _version(request: Request) -> str:
        version = request.headers.get("Stripe-Version")
        return str(version) if version else ACCOUNT_DEFAULT_VERSION

    def dispatch(self, request: Request) -> Response:
        version = request.headers.get("Stripe-Version")
        if version and not VERSION.match(str(version)):
            return self._error(StripeError(400, f"Invalid Stripe API version: {version}"))
        if request.method == "POST":
            return self._idempotent(request)
        return self._run(request)

    def _run(self, request: Request) -> Response:
        try:
            return super().dispatch(request)
        except StripeError as error:
            return self._error(error)

    def _idempotent(self, request: Request) -> Response:
        """Replay a saved answer for a known key; refuse a key reused with other parameters."""
        key = request.headers.get("Idempotency-Key")
        if not key:
            return self._run(request)
        key = str(key)
        if len(key) > 255:
            return self._error(StripeError(400, "Idempotency keys may be at most 255 characters long.",
                                           type_="idempotency_error"))
        fingerprint = [request.path, sorted(request.form_pairs())]
        saved = self.idempotency.get(key)
        if saved is not None:
            if saved["fingerprint"] != fingerprint:
                return self._error(StripeError(
                    400, "Keys for idempotent requests can only be used with the same parameters they were first "
                    f"used with. Try using a key other than '{key}' if you meant to execute a different request.",
                    type_="idempotency_error"))
            if saved["response"] is None:
                return self._error(StripeError(409, "There is currently another in-progress request using this "
                                               "Idempotent Key.", code="idempotency_key_in_use"))
            original: Response = saved["response"]
            return Response(original.status, original.body, original.content_type,
                            [*original.headers, ("Idempotent-Replayed", "true"),
                             ("Original-Request", saved["request_id"])])
        self.idempotency[key] = {"fingerprint": fingerprint, "response": None, "request_id": ""}
        response = self._run(request)
        # Stripe saves a result only once the endpoint ran: not for a validation error before it.
        if response.status < 400 or response.status == 402:
            request_id = "req_" + uuid.uuid4().hex[:14]
            response.headers.append(("Request-Id", request_id))
            self.idempotency[key] = {"fingerprint": fingerprint, "response": response, "request_id": request_id}
        else:
            del self.idempotency[key]
        return response

    # -- rendering --------------------------------------------------------------------------------

    def _render(self, obj: dict[str, Any], request: Request, expand: list[str], prefix: str = "") -> dict[str, Any]:
        """Copy an object in the shape of the request's API version, with requested fields expanded."""
        out = json.loads(json.dumps(obj))
        if self._version(request) < "2025-03-31":
            # Before basil: periods on the subscription, and invoice.subscription at the top.
            if out.get("object") == "subscription" and out["items"]["data"]:
                out["current_period_start"] = out["items"]["data"][0]["current_period_start"]
                out["current_period_end"] = out["items"]["data"][0]["current_period_end"]
                for item in out["items"]["data"]:
                    item.pop("current_period_start", None)
                    item.pop("current_period_end", None)
            if out.get("object") == "invoice":
                parent = out.pop("parent", None) or {}
                out["subscription"] = (parent.get("subscription_details") or {}).get("subscription")
        for path in expand:
            if prefix and not path.startswith(prefix):
                continue
            field = path[len(prefix):]
            if "." in field:
                continue
            value = out.get(field)
            table = {"customer": self.customers, "latest_invoice": self.invoices,
                     "subscription": self.subscriptions, "default_payment_method": {}}.get(field)
            if table is None:
                raise StripeError(400, f"This property cannot be expanded ({path}).", param="expand")
            if isinstance(value, str) and value in table:
                out[field] = self._render(table[value], request, [], "")
        return out

    def _list(self, request: Request, url: str, items: list[dict[str, Any]], params: dict[str, Any]) -> Response:
        limit = self._limit(params)
        position = 0
        ids = [item["id"] for item in items]
        if params.get("starting_after"):
            after = str(params["starting_after"])
            if after not in ids:
                raise _missing(url.rsplit("/", 1)[-1].rstrip("s"), after, "starting_after")
            position = ids.index(after) + 1
            chunk = items[position:position + limit]
            has_more = position + limit < len(items)
        elif params.get("ending_before"):
            before = str(params["ending_before"])
            if before not in ids:
                raise _missing(url.rsplit("/", 1)[-1].rstrip("s"), before, "ending_before")
            end = ids.index(before)
            chunk = items[max(0, end - limit):end]
            has_more = end - limit > 0
        else:
            chunk = items[:limit]
            has_more = len(items) > limit
        expand = self._expand_list(params)
        data = [self._render(item, request, expand, "data.") for item in chunk]
        return json_response(200, {"object": "list", "url": url, "has_more": has_more, "data": data})

    @staticmethod
    def _limit(params: dict[str, Any]) -> int:
        raw = params.get("limit", "10")
        try:
            limit = int(raw)
        except (TypeError, ValueError):
            raise StripeError(400, f"Invalid integer: {raw}", param="limit") from None
        if not 1 <= limit <= 100:
            raise StripeError(400, "Invalid limit: must be between 1 and 100", param="limit")
        return limit

    @staticmethod
    def _expand_list(params: dict[str, Any]) -> list[str]:
        expand = params.get("expand", [])
        return [str(e) for e in (expand if isinstance(expand, list) else [expand])]

    def _created_filter(self, items: list[dict[str, Any]], created: Any) -> list[dict[str, Any]]:
        if not isinstance(created, dict):
            return items if created is None else [i for i in items if i["created"] == int(created)]
        checks = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b,
                  "lte": lambda a, b: a <= b}
        for operator, bound in created.items():
            if operator not in checks:
                raise StripeError(400, f"Received unknown parameter: created[{operator}]", param="created")
            items = [i for i in items if checks[operator](i["created"], int(bound))]
        return items

    # -- routes -----------------------------------------------------------------------------------

    @route("GET", "/v1/account")
    def account(self, request: Request) -> Response:
        return json_response(200, {
            "id": "acct_1DemoAccount00", "object": "account", "country": "US", "default_currency": "usd",
            "email": "founder@example.com", "type": "standard", "charges_enabled": True, "payouts_enabled": True,
            "business_profile": {"name": "Example SaaS", "url": "https://example.com"},
            "settings": {"dashboard": {"display_name": "Example SaaS", "timezone": "Etc/UTC"}},
        })

    @route("GET", "/v1/customers")
    def list_customers(self, request: Request) -> Response:
        params = request.nested_params()
        items = [self.customers[c] for c in self.customer_order]
        if params.get("email"):
            items = [c for c in items if c["email"] == params["email"]]
        items = self._created_filter(items, params.get("created"))
        return self._list(request, "/v1/customers", items, params)

    @route("POST", "/v1/customers")
    def create_customer(self, request: Request) -> Response:
        params = request.nested_params()
        index = len(self.customers)
        customer = self._make_customer(index, None, int(self.clock()))
        customer.update({"email": params.get("email"), "name": params.get("name"),
                         "metadata": dict(params.get("metadata") or {})})
        self.customers[customer["id"]] = customer
        self.customer_order.insert(0, customer["id"])
        self.card_ok[customer["id"]] = True
        return json_response(200, self._render(customer, request, []))

    @route("GET", "/v1/customers/search")
    def search_customers(self, request: Request) -> Response:
        params = request.nested_params()
        query = str(params.get("query") or "")
        if not query:
            raise StripeError(400, "Missing required param: query.", param="query")
        matcher = SearchQuery(query)
        limit = self._limit(params)
        items = [self.customers[c] for c in self.customer_order if matcher.matches(self.customers[c])]
        start = 0
        if params.get("page"):
            try:
                start = int(base64.urlsafe_b64decode(str(params["page"]).encode()).decode().removeprefix("offset:"))
            except (ValueError, binascii.Error):
                raise StripeError(400, "Invalid page token.", param="page") from None
        chunk = items[start:start + limit]
        has_more = start + limit < len(items)
        next_page = base64.urlsafe_b64encode(f"offset:{start + limit}".encode()).decode() if has_more else None
        body: dict[str, Any] = {"object": "search_result", "url": "/v1/customers/search", "has_more": has_more,
                                "data": [self._render(c, request, self._expand_list(params), "data.")
                                         for c in chunk], "next_page": next_page}
        if "total_count" in self._expand_list(params):
            body["total_count"] = len(items)
        return json_response(200, body)

    @route("GET", "/v1/customers/{id}")
    def get_customer(self, request: Request) -> Response:
        customer = self.customers.get(request.params["id"])
        if customer is None:
            raise _missing("customer", request.params["id"])
        return json_response(200, self._render(customer, request, self._expand_list(request.nested_params())))

    @route("GET", "/v1/subscriptions")
    def list_subscriptions(self, request: Request) -> Response:
        params = request.nested_params()
        status = params.get("status")
        valid = {"active", "all", "canceled", "ended", "incomplete", "incomplete_expired", "past_due", "paused",
                 "trialing", "unpaid"}
        if status is not None and status not in valid:
            raise StripeError(400, f"Invalid status: must be one of {', '.join(sorted(valid))}", param="status")
        items = sorted(self.subscriptions.values(), key=lambda s: (-s["created"], s["id"]))
        if status is None:
            items = [s for s in items if s["status"] != "canceled"]  # Stripe's default
        elif status == "ended":
            items = [s for s in items if s["status"] in ("canceled", "incomplete_expired")]
        elif status != "all":
            items = [s for s in items if s["status"] == status]
        if params.get("customer"):
            items = [s for s in items if s["customer"] == params["customer"]]
        if params.get("price"):
            items = [s for s in items if s["items"]["data"][0]["price"]["id"] == params["price"]]
        return self._list(request, "/v1/subscriptions", items, params)

    @route("GET", "/v1/subscriptions/{id}")
    def get_subscription(self, request: Request) -> Response:
        subscription = self.subscriptions.get(request.params["id"])
        if subscription is None:
            raise _missing("subscription", request.params["id"])
        return json_response(200, self._render(subscription, request,
                                               self._expand_list(request.nested_params())))

    @route("GET", "/v1/invoices")
    def list_invoices(self, request: Request) -> Response:
        params = request.nested_params()
        items = sorted(self.invoices.values(), key=lambda i: (-i["created"], i["id"]))
        if params.get("status"):
            if params["status"] not in ("draft", "open", "paid", "uncollectible", "void"):
                raise StripeError(400, "Invalid status", param="status")
            items = [i for i in items if i["status"] == params["status"]]
        if params.get("customer"):
            items = [i for i in items if i["customer"] == params["customer"]]
        if params.get("subscription"):
            items = [i for i in items if i["parent"]["subscription_details"]["subscription"] == params["subscription"]]
        items = self._created_filter(items, params.get("created"))
        return self._list(request, "/v1/invoices", items, params)

    @route("GET", "/v1/invoices/{id}")
    def get_invoice(self, request: Request) -> Response:
        invoice = self.invoices.get(request.params["id"])
        if invoice is None:
            raise _missing("invoice", request.params["id"])
        return json_response(200, self._render(invoice, request, self._expand_list(request.nested_params())))

    @route("POST", "/v1/invoices/{id}/pay")
    def pay_invoice(self, request: Request) -> Response:
        invoice = self.invoices.get(request.params["id"])
        if invoice is None:
            raise _missing("invoice", request.params["id"])
        if invoice["status"] == "paid":
            raise StripeError(400, "Invoice is already paid")
        if invoice["status"] != "open":
            raise StripeError(400, f"You can only pay open invoices. This invoice is {invoice['status']}.")
        params = request.nested_params()
        now = int(self.clock())
        out_of_band = params.get("paid_out_of_band") == "true"
        if not out_of_band:
            invoice["attempt_count"] += 1
            invoice["attempted"] = True
        if out_of_band or self.card_ok.get(invoice["customer"], False):
            self.charges[invoice["id"]] = self.charges.get(invoice["id"], 0) + (0 if out_of_band else 1)
            invoice.update({"status": "paid", "amount_paid": invoice["amount_due"], "amount_remaining": 0,
                            "next_payment_attempt": None, "paid_out_of_band": out_of_band})
            invoice["status_transitions"]["paid_at"] = now
            self._settle(invoice)
            self._event("invoice.paid", invoice, now)
            self.events.sort(key=lambda e: (-e["created"], e["id"]))
            return json_response(200, self._render(invoice, request, self._expand_list(params)))
        self._event("invoice.payment_failed", invoice, now)
        self.events.sort(key=lambda e: (-e["created"], e["id"]))
        raise StripeError(402, "Your card has insufficient funds.", type_="card_error", code="card_declined",
                          extra={"decline_code": "insufficient_funds",
                                 "charge": demo.stable_id("ch_", invoice["id"], invoice["attempt_count"], length=14)})

    def _settle(self, invoice: dict[str, Any]) -> None:
        """A paid invoice brings its subscription back to active when nothing else is owed."""
        sub_id = invoice["parent"]["subscription_details"]["subscription"]
        subscription = self.subscriptions.get(sub_id)
        still_open = any(i["status"] == "open" and i["customer"] == invoice["customer"] for i in self.invoices.values())
        if subscription and subscription["status"] in ("past_due", "unpaid") and not still_open:
            subscription["status"] = "active"
        if not still_open:
            self.customers[invoice["customer"]]["delinquent"] = False

    @route("GET", "/v1/events")
    def list_events(self, request: Request) -> Response:
        params = request.nested_params()
        items = self.events
        horizon = int(self.clock()) - 30 * DAY  # events are kept 30 days
        items = [e for e in items if e["created"] >= horizon]
        types: list[str] = []
        if params.get("type"):
            types = [str(params["type"])]
        elif params.get("types"):
            types = [str(t) for t in params["types"]] if isinstance(params["types"], list) else [str(params["types"])]
        if types:
            items = [e for e in items if any(
                e["type"] == t or (t.endswith(".*") and e["type"].startswith(t[:-1])) for t in types)]
        items = self._created_filter(items, params.get("created"))
        return self._list(request, "/v1/events", items, params)

    @route("GET", "/v1/events/{id}")
    def get_event(self, request: Request) -> Response:
        for event in self.events:
            if event["id"] == request.params["id"]:
                return json_response(200, event)
        raise _missing("event", request.params["id"])


class SearchQuery:
    """Stripe's search language, the part the panel uses: ``field:'value'`` (exact), ``field~'value'``
    (substring), ``-`` to negate, clauses joined by AND or by OR (not both), fields email, name,
    ``metadata['key']`` and ``created`` with > >= < <=."""

    CLAUSE = re.compile(r"""^(-?)(email|name|phone|metadata\[(?:'[^']+'|"[^"]+")\]|created)\s*"""
                        r"""(:|~|>=|<=|>|<)\s*(?:'([^']*)'|"([^"]*)"|(\d+))$""")

    def __init__(self, query: str) -> None:
        has_and, has_or = " AND " in query, " OR " in query
        if has_and and has_or:
            raise StripeError(400, "Search queries cannot mix AND and OR.", param="query")
        self.any = has_or
        self.clauses = []
        for text in re.split(r" AND | OR ", query.strip()):
            match = self.CLAUSE.match(text.strip())
            if not match:
                raise StripeError(400, "We were unable to parse your search query. Try using the format "
                                  "`metadata['key']:'value'` to query for metadata or `key:'value'` to query "
                                  "for other fields.", param="query")
            negate, field, operator = match.group(1), match.group(2), match.group(3)
            value = next(v for v in match.groups()[3:] if v is not None)
            if operator == "~" and len(value) < 3:
                raise StripeError(400, "Substring search needs at least 3 characters.", param="query")
            self.clauses.append((negate == "-", field, operator, value))

    def _one(self, customer: dict[str, Any], field: str, operator: str, value: str) -> bool:
        actual = customer["metadata"].get(field[10:-2]) if field.startswith("metadata[") else customer.get(field)
        if field == "created":
            number = int(value)
            if actual is None:
                return False
            return {"": False, ">": actual > number, ">=": actual >= number, "<": actual < number,
                    "<=": actual <= number, ":": actual == number}.get(operator, False)
        if actual is None:
            return False
        if operator == "~":
            return value.lower() in str(actual).lower()
        return operator == ":" and str(actual).lower() == value.lower()

    def matches(self, customer: dict[str, Any]) -> bool:
        results = (self._one(customer, f, o, v) != negate for negate, f, o, v in self.clauses)
        return any(results) if self.any else all(results)
