"""Stripe: key check, customers (by group too), subscriptions, failed payments, MRR and retrying
an invoice's payment. Pinned to API version 2025-03-31.basil, with fallbacks for older shapes."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

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
    expect_dict,
    stripe_list,
    stripe_retry_hint,
    stripe_search,
)
from services.inventory import StripeSpec

STRIPE_VERSION = "2025-03-31.basil"
PAGE_LIMIT = 100  # Stripe's largest page
DELINQUENT_STATUSES = ("past_due", "unpaid")
MRR_STATUSES = ("active", "past_due")  # paying, or expected to pay; trials have not paid yet


def _time(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if isinstance(value, int | float) and value else None


def new_idempotency_key() -> str:
    """One per logical operation; every retry of that operation reuses it."""
    return f"panel-{uuid.uuid4()}"


# -- dataclasses -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    email: str | None
    country: str | None
    test_mode: bool  # the key is a test key (sk_test_/rk_test_)


@dataclass(frozen=True)
class Customer:
    id: str
    email: str | None
    name: str | None
    group_id: int | None  # metadata.group_id, when the SaaS set it
    created: datetime | None
    delinquent: bool
    metadata: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Price:
    id: str
    unit_amount: int  # in the currency's smallest unit (cents)
    currency: str
    interval: str  # day | week | month | year
    interval_count: int
    nickname: str | None = None

    def monthly(self, quantity: int = 1) -> float:
        """This price normalised to one month (a year is 12 months, a week 52/12 of a month)."""
        per_month = {"day": 365 / 12, "week": 52 / 12, "month": 1.0, "year": 1 / 12}.get(self.interval, 0.0)
        return self.unit_amount * quantity * per_month / max(1, self.interval_count)


@dataclass(frozen=True)
class SubscriptionItem:
    id: str
    price: Price | None
    quantity: int
    current_period_end: datetime | None


@dataclass(frozen=True)
class Subscription:
    id: str
    customer_id: str
    status: str  # incomplete | incomplete_expired | trialing | active | past_due | canceled | unpaid | paused
    items: tuple[SubscriptionItem, ...]
    current_period_end: datetime | None  # from the items (basil); the old top-level field otherwise
    cancel_at_period_end: bool
    created: datetime | None
    latest_invoice_id: str | None
    group_id: int | None = None

    @property
    def monthly_amount(self) -> float:
        """What this subscription brings in per month, in cents, before discounts and taxes."""
        return sum(item.price.monthly(item.quantity) for item in self.items if item.price)

    @property
    def currency(self) -> str | None:
        return next((item.price.currency for item in self.items if item.price), None)


@dataclass(frozen=True)
class Invoice:
    id: str
    customer_id: str
    subscription_id: str | None  # parent.subscription_details.subscription (basil) or .subscription
    status: str  # draft | open | paid | uncollectible | void
    amount_due: int
    amount_paid: int
    amount_remaining: int
    currency: str
    attempt_count: int
    next_payment_attempt: datetime | None
    hosted_invoice_url: str | None
    created: datetime | None


@dataclass(frozen=True)
class DelinquentSubscription:
    """A past_due or unpaid subscription with its open (failed) invoices."""

    subscription: Subscription
    failed_invoices: tuple[Invoice, ...]

    @property
    def attempt_count(self) -> int:
        return max((i.attempt_count for i in self.failed_invoices), default=0)

    @property
    def amount_due(self) -> int:
        return sum(i.amount_remaining for i in self.failed_invoices)

    @property
    def next_payment_attempt(self) -> datetime | None:
        moments = [i.next_payment_attempt for i in self.failed_invoices if i.next_payment_attempt]
        return min(moments) if moments else None


@dataclass(frozen=True)
class PaymentFailure:
    """One ``invoice.payment_failed`` event."""

    event_id: str
    occurred_at: datetime | None
    invoice_id: str
    customer_id: str
    subscription_id: str | None
    amount_due: int
    currency: str
    attempt_count: int
    next_payment_attempt: datetime | None


@dataclass(frozen=True)
class Mrr:
    """Monthly recurring revenue in the main currency's cents, and per currency."""

    amount: int
    currency: str
    by_currency: dict[str, int] = field(hash=False)
    subscriptions: int


@dataclass(frozen=True)
class BillingCheck:
    """Facts for the alerts: failed payments and subscriptions at risk."""

    past_due: int
    unpaid: int
    failed_payments: int  # invoice.payment_failed events in the window
    window_hours: int
    amount_at_risk: dict[str, int] = field(hash=False)  # currency -> cents still owed
    delinquent: tuple[DelinquentSubscription, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


# -- parsing -----------------------------------------------------------------------------------------


def _group_id(metadata: Any) -> int | None:
    value = metadata.get("group_id") if isinstance(metadata, dict) else None
    return int(value) if isinstance(value, str) and value.strip().isdigit() else None


def _customer(raw: Any) -> Customer:
    item = expect_dict(raw, "stripe", "a customer")
    metadata = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
    return Customer(id=str(item.get("id")), email=item.get("email"), name=item.get("name"),
                    group_id=_group_id(metadata), created=_time(item.get("created")),
                    delinquent=bool(item.get("delinquent")), metadata=dict(metadata or {}))


def _price(raw: Any) -> Price | None:
    if not isinstance(raw, dict):
        return None
    recurring = raw.get("recurring") if isinstance(raw.get("recurring"), dict) else {}
    return Price(id=str(raw.get("id")), unit_amount=int(raw.get("unit_amount") or 0),
                 currency=str(raw.get("currency") or "usd"), interval=str((recurring or {}).get("interval") or ""),
                 interval_count=int((recurring or {}).get("interval_count") or 1), nickname=raw.get("nickname"))


def _subscription(raw: Any) -> Subscription:
    item = expect_dict(raw, "stripe", "a subscription")
    items_list = item.get("items") if isinstance(item.get("items"), dict) else {}
    items = []
    for entry in (items_list or {}).get("data") or []:
        if isinstance(entry, dict):
            items.append(SubscriptionItem(id=str(entry.get("id")), price=_price(entry.get("price")),
                                          quantity=int(entry.get("quantity") or 1),
                                          current_period_end=_time(entry.get("current_period_end"))))
    # Since 2025-03-31.basil the period lives on each item; before, on the subscription.
    ends = [i.current_period_end for i in items if i.current_period_end]
    period_end = min(ends) if ends else _time(item.get("current_period_end"))
    customer = item.get("customer")
    customer_id = customer.get("id") if isinstance(customer, dict) else customer
    latest = item.get("latest_invoice")
    return Subscription(id=str(item.get("id")), customer_id=str(customer_id), status=str(item.get("status")),
                        items=tuple(items), current_period_end=period_end,
                        cancel_at_period_end=bool(item.get("cancel_at_period_end")),
                        created=_time(item.get("created")),
                        latest_invoice_id=latest.get("id") if isinstance(latest, dict) else latest,
                        group_id=_group_id(item.get("metadata")))


def _invoice(raw: Any) -> Invoice:
    item = expect_dict(raw, "stripe", "an invoice")
    parent = item.get("parent") if isinstance(item.get("parent"), dict) else {}
    details = (parent or {}).get("subscription_details") or {}
    subscription = details.get("subscription") if isinstance(details, dict) else None
    subscription = subscription or item.get("subscription")  # before basil
    if isinstance(subscription, dict):
        subscription = subscription.get("id")
    customer = item.get("customer")
    return Invoice(id=str(item.get("id")), customer_id=str(customer.get("id") if isinstance(customer, dict)
                                                         else customer),
                   subscription_id=subscription, status=str(item.get("status")),
                   amount_due=int(item.get("amount_due") or 0), amount_paid=int(item.get("amount_paid") or 0),
                   amount_remaining=int(item.get("amount_remaining") or 0),
                   currency=str(item.get("currency") or "usd"), attempt_count=int(item.get("attempt_count") or 0),
                   next_payment_attempt=_time(item.get("next_payment_attempt")),
                   hosted_invoice_url=item.get("hosted_invoice_url"), created=_time(item.get("created")))


# -- the client --------------------------------------------------------------------------------------


class StripeClient(ApiClient):
    def __init__(self, spec: StripeSpec, key: str, *, timeouts: Timeouts = DEFAULT_TIMEOUTS,
                 retry: RetryPolicy = DEFAULT_RETRY, api_version: str = STRIPE_VERSION) -> None:
        """``api_version`` stays pinned to what this module parses; the parser also reads the
        older shapes, so an account on an older default version still works."""
        self.spec = spec
        secret = Secret(key)
        self.test_mode = key.startswith(("sk_test_", "rk_test_"))
        self.http = HttpClient(vendor="stripe", base_url=spec.base_url.rstrip("/") + "/v1", auth=BearerAuth(secret),
                               secret=secret, headers={"Stripe-Version": api_version},
                               retry_hint=stripe_retry_hint, timeouts=timeouts, retry=retry)

    def __repr__(self) -> str:
        return f"StripeClient(base_url={self.spec.base_url!r}, test_mode={self.test_mode})"

    def _post(self, path: str, data: dict[str, Any], *, idempotency_key: str | None,
              cancel: CancelToken) -> dict[str, Any]:
        """Every POST carries an Idempotency-Key, made once here, so retries cannot act twice."""
        key = idempotency_key or new_idempotency_key()
        return expect_dict(self.http.request("POST", path, data=data, idempotency_key=key, cancel=cancel).data,
                           "stripe", path)

    # -- account and customers --------------------------------------------------------------------

    def verify_key(self, *, cancel: CancelToken = NEVER_CANCELLED) -> Account:
        raw = expect_dict(self.http.get("/account", cancel=cancel), "stripe", "account")
        profile = raw.get("business_profile") if isinstance(raw.get("business_profile"), dict) else {}
        settings = raw.get("settings") if isinstance(raw.get("settings"), dict) else {}
        dashboard = (settings or {}).get("dashboard") or {}
        name = (profile or {}).get("name") or dashboard.get("display_name") or raw.get("id")
        return Account(id=str(raw.get("id")), name=str(name), email=raw.get("email"), country=raw.get("country"),
                       test_mode=self.test_mode)

    def iter_customers(self, *, cancel: CancelToken = NEVER_CANCELLED) -> Iterator[Customer]:
        """Every customer, newest first, 100 per request."""
        for raw in stripe_list(self.http, "/customers", limit=PAGE_LIMIT, cancel=cancel):
            yield _customer(raw)

    def customers(self, *, cancel: CancelToken = NEVER_CANCELLED) -> list[Customer]:
        return list(self.iter_customers(cancel=cancel))

    def customer(self, customer_id: str, *, cancel: CancelToken = NEVER_CANCELLED) -> Customer:
        return _customer(self.http.get(f"/customers/{customer_id}", cancel=cancel))

    def customers_for_group(self, group_id: int, *, cancel: CancelToken = NEVER_CANCELLED) -> list[Customer]:
        """The customers whose metadata.group_id is this group. Uses search, one request; where search
        is not offered (some regions) it falls back to reading every customer."""
        query = f"metadata['group_id']:'{int(group_id)}'"
        try:
            found = [_customer(raw) for raw in stripe_search(self.http, "/customers/search", query,
                                                              limit=PAGE_LIMIT, cancel=cancel)]
        except (ApiNotFound, ApiValidationError) as error:
            if error.param == "query":
                raise
            found = [c for c in self.iter_customers(cancel=cancel) if c.group_id == group_id]
        return found

    def dashboard_url(self, customer_id: str) -> str:
        test = "/test" if self.test_mode else ""
        return f"{self.spec.dashboard_url.rstrip('/')}{test}/customers/{customer_id}"

    # -- subscriptions and invoices ---------------------------------------------------------------

    def subscriptions(self, *, status: str = "all", customer_id: str | None = None,
                      cancel: CancelToken = NEVER_CANCELLED) -> list[Subscription]:
        """Subscriptions with one status ("all" includes canceled ones, unlike Stripe's default)."""
        params: dict[str, Any] = {"status": status}
        if customer_id:
            params["customer"] = customer_id
        return [_subscription(raw) for raw in stripe_list(self.http, "/subscriptions", params, limit=PAGE_LIMIT,
                                                         cancel=cancel)]

    def invoices(self, *, status: str | None = None, customer_id: str | None = None,
                 subscription_id: str | None = None, cancel: CancelToken = NEVER_CANCELLED) -> list[Invoice]:
        params = {k: v for k, v in {"status": status, "customer": customer_id,
                                    "subscription": subscription_id}.items() if v}
        return [_invoice(raw) for raw in stripe_list(self.http, "/invoices", params, limit=PAGE_LIMIT, cancel=cancel)]

    def invoice(self, invoice_id: str, *, cancel: CancelToken = NEVER_CANCELLED) -> Invoice:
        return _invoice(self.http.get(f"/invoices/{invoice_id}", cancel=cancel))

    def delinquent_subscriptions(self, *, cancel: CancelToken = NEVER_CANCELLED) -> list[DelinquentSubscription]:
        """past_due and unpaid subscriptions, each with its open invoices and their attempt counts.
        Open invoices are read once for all, not once per subscription: a few requests in all."""
        subscriptions = [s for status in DELINQUENT_STATUSES
                         for s in self.subscriptions(status=status, cancel=cancel)]
        by_subscription: dict[str, list[Invoice]] = {}
        for invoice in self.invoices(status="open", cancel=cancel):
            if invoice.subscription_id:
                by_subscription.setdefault(invoice.subscription_id, []).append(invoice)
        return [DelinquentSubscription(s, tuple(by_subscription.get(s.id, ()))) for s in subscriptions]

    def payment_failures(self, *, since: datetime | None = None,
                         cancel: CancelToken = NEVER_CANCELLED) -> list[PaymentFailure]:
        """``invoice.payment_failed`` events, newest first (Stripe keeps events 30 days)."""
        params: dict[str, Any] = {"type": "invoice.payment_failed"}
        if since is not None:
            params["created[gte]"] = int(since.timestamp())
        failures = []
        for raw in stripe_list(self.http, "/events", params, limit=PAGE_LIMIT, cancel=cancel):
            event = expect_dict(raw, "stripe", "an event")
            data = event.get("data") if isinstance(event.get("data"), dict) else {}
            invoice = _invoice((data or {}).get("object"))
            failures.append(PaymentFailure(
                event_id=str(event.get("id")), occurred_at=_time(event.get("created")), invoice_id=invoice.id,
                customer_id=invoice.customer_id, subscription_id=invoice.subscription_id,
                amount_due=invoice.amount_due, currency=invoice.currency, attempt_count=invoice.attempt_count,
                next_payment_attempt=invoice.next_payment_attempt))
        return failures

    def mrr(self, *, cancel: CancelToken = NEVER_CANCELLED) -> Mrr:
        """Monthly recurring revenue over active and past_due subscriptions, each price normalised to
        a month. Discounts, taxes and metered usage are left out: this is the list-price MRR."""
        by_currency: Counter[str] = Counter()
        counted = 0
        for status in MRR_STATUSES:
            for subscription in self.subscriptions(status=status, cancel=cancel):
                counted += 1
                for item in subscription.items:
                    if item.price:
                        by_currency[item.price.currency] += round(item.price.monthly(item.quantity))
        currency, amount = by_currency.most_common(1)[0] if by_currency else ("usd", 0)
        return Mrr(amount=amount, currency=currency, by_currency=dict(by_currency), subscriptions=counted)

    def retry_invoice_payment(self, invoice_id: str, *, idempotency_key: str | None = None,
                              cancel: CancelToken = NEVER_CANCELLED) -> Invoice:
        """Charge an open invoice now (``POST /v1/invoices/{id}/pay``). A declined card raises
        ApiPaymentError. Pass the same ``idempotency_key`` to repeat a click safely."""
        if not invoice_id.startswith("in_"):
            raise ApiValidationError(f"{invoice_id!r} is not an invoice id (in_...).", vendor="stripe",
                                     code="bad_id")
        raw = self._post(f"/invoices/{invoice_id}/pay", {}, idempotency_key=idempotency_key, cancel=cancel)
        invoice = _invoice(raw)
        if invoice.status not in ("paid", "open"):
            raise ApiBadResponse(f"Stripe answered the payment of {invoice_id} with status {invoice.status}.",
                                 vendor="stripe")
        return invoice


# -- checks for the alerts ---------------------------------------------------------------------------


def billing_check(client: StripeClient, *, hours: int = 24, now: datetime | None = None,
                  cancel: CancelToken = NEVER_CANCELLED) -> BillingCheck:
    """Failed payments in the last ``hours`` and the subscriptions that are past due or unpaid."""
    now = now or datetime.now(UTC)
    delinquent = client.delinquent_subscriptions(cancel=cancel)
    failures = client.payment_failures(since=now - timedelta(hours=hours), cancel=cancel)
    at_risk: Counter[str] = Counter()
    for entry in delinquent:
        for invoice in entry.failed_invoices:
            at_risk[invoice.currency] += invoice.amount_remaining
    past_due = sum(1 for d in delinquent if d.subscription.status == "past_due")
    unpaid = sum(1 for d in delinquent if d.subscription.status == "unpaid")
    problems = []
    if failures:
        problems.append(f"{len(failures)} payment(s) failed in the last {hours} h.")
    if past_due:
        problems.append(f"{past_due} subscription(s) are past due; Stripe is still retrying them.")
    if unpaid:
        problems.append(f"{unpaid} subscription(s) are unpaid: Stripe gave up retrying.")
    return BillingCheck(past_due=past_due, unpaid=unpaid, failed_payments=len(failures), window_hours=hours,
                        amount_at_risk=dict(at_risk), delinquent=tuple(delinquent), problems=tuple(problems))
