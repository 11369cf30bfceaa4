"""The Stripe client against its stand-in: customers, groups, subscriptions, failed payments, MRR,
and an idempotent payment retry that never charges twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest

from panel.lab import secrets
from panel.lab.standins import StandinServers
from services.http import ApiAuthError, ApiNotFound, ApiPaymentError, ApiValidationError, RetryPolicy
from services.inventory import StripeSpec
from services.stripe import STRIPE_VERSION, StripeClient, billing_check, new_idempotency_key


def _group_invoice(lab: StandinServers, group_id: int) -> dict[str, Any]:
    customer = next(c for c in lab.stripe.customers.values() if c["metadata"].get("group_id") == str(group_id))
    return next(i for i in lab.stripe.invoices.values() if i["customer"] == customer["id"] and i["status"] == "open")


def test_verify_key_and_version_headers(stripe: StripeClient) -> None:
    account = stripe.verify_key()
    assert account.name == "Example SaaS" and account.test_mode
    answer = stripe.http.request("GET", "/account")
    assert answer.headers["Stripe-Version"] == STRIPE_VERSION
    assert answer.request_id and answer.request_id.startswith("req_")


def test_wrong_key(standins: StandinServers) -> None:
    with StripeClient(StripeSpec(standins.stripe_url), "sk_test_wrong0000000000") as client, \
            pytest.raises(ApiAuthError) as caught:
        client.verify_key()
    assert caught.value.status == 401 and "keyring" in str(caught.value)
    assert "0000" not in str(caught.value)  # not even the masked key Stripe echoes


def test_customers_by_group(stripe: StripeClient) -> None:
    acme = stripe.customers_for_group(1)
    assert len(acme) == 2 and {c.group_id for c in acme} == {1}
    assert acme[0].email == "wile.coyote@acme.example"
    globex = stripe.customers_for_group(1_000_001)
    assert len(globex) == 1 and globex[0].delinquent
    assert stripe.customers_for_group(999_999) == []
    assert stripe.http.stats.requests == 3  # one search each
    assert stripe.customer(globex[0].id).group_id == 1_000_001
    with pytest.raises(ApiNotFound) as caught:
        stripe.customer("cus_nope")
    assert caught.value.code == "resource_missing" and "No such customer" in str(caught.value)


def test_subscriptions_read_period_end_from_items(standins: StandinServers, stripe: StripeClient) -> None:
    customer = stripe.customers_for_group(1)[0]
    (subscription,) = stripe.subscriptions(customer_id=customer.id)
    raw = standins.stripe.subscriptions[subscription.id]
    assert subscription.status == "active"
    assert subscription.current_period_end == datetime.fromtimestamp(
        raw["items"]["data"][0]["current_period_end"], UTC)
    assert subscription.monthly_amount > 0 and subscription.group_id == 1


def test_older_api_version_shapes_are_read_too(standins: StandinServers) -> None:
    with StripeClient(StripeSpec(standins.stripe_url), secrets.STRIPE_KEY, api_version="2024-06-20") as old, \
            StripeClient(StripeSpec(standins.stripe_url), secrets.STRIPE_KEY) as new:
        assert "current_period_end" in old.http.get("/subscriptions", params={"limit": 1})["data"][0]
        assert [s.current_period_end for s in old.subscriptions(status="past_due")] == \
            [s.current_period_end for s in new.subscriptions(status="past_due")]
        assert [i.subscription_id for i in old.invoices(status="open")] == \
            [i.subscription_id for i in new.invoices(status="open")]


def test_delinquent_subscriptions_with_attempts(stripe: StripeClient) -> None:
    delinquent = stripe.delinquent_subscriptions()
    assert stripe.http.stats.requests <= 8  # not one request per subscription
    by_group = {d.subscription.group_id: d for d in delinquent}
    globex, initech = by_group[1_000_001], by_group[5]
    assert globex.subscription.status == "past_due" and 1 <= globex.attempt_count <= 3
    assert globex.next_payment_attempt is not None and globex.amount_due > 0
    assert initech.subscription.status == "unpaid" and initech.attempt_count == 4
    assert initech.next_payment_attempt is None
    assert all(d.failed_invoices for d in delinquent)


def test_recent_payment_failures(stripe: StripeClient) -> None:
    since = datetime.now(UTC) - timedelta(days=3)
    failures = stripe.payment_failures(since=since)
    assert failures and all(f.occurred_at and f.occurred_at >= since - timedelta(seconds=1) for f in failures)
    assert all(f.invoice_id.startswith("in_") and f.amount_due > 0 for f in failures)


def test_mrr_matches_the_data(standins: StandinServers, stripe: StripeClient) -> None:
    mrr = stripe.mrr()
    expected: dict[str, float] = {}
    for sub in standins.stripe.subscriptions.values():
        if sub["status"] in ("active", "past_due"):
            item = sub["items"]["data"][0]
            price = item["price"]
            months = {"month": 1, "year": 12}[price["recurring"]["interval"]] * price["recurring"]["interval_count"]
            expected[price["currency"]] = expected.get(price["currency"], 0) + \
                price["unit_amount"] * item["quantity"] / months
    assert set(mrr.by_currency) == {"usd", "eur"} and mrr.currency == "usd"
    for currency, amount in expected.items():
        assert mrr.by_currency[currency] == pytest.approx(amount, abs=len(standins.stripe.subscriptions))


def test_retry_payment_succeeds_and_settles(standins: StandinServers, stripe: StripeClient) -> None:
    invoice = _group_invoice(standins, 1_000_001)
    paid = stripe.retry_invoice_payment(invoice["id"])
    assert paid.status == "paid" and paid.amount_remaining == 0
    assert standins.stripe.charges[invoice["id"]] == 1
    sub_id = invoice["parent"]["subscription_details"]["subscription"]
    assert standins.stripe.subscriptions[sub_id]["status"] == "active"
    with pytest.raises(ApiValidationError) as again:
        stripe.retry_invoice_payment(invoice["id"])  # a new operation: a new key, and it is paid already
    assert "already paid" in str(again.value)


def test_a_declined_card(standins: StandinServers, stripe: StripeClient) -> None:
    invoice = _group_invoice(standins, 5)
    with pytest.raises(ApiPaymentError) as caught:
        stripe.retry_invoice_payment(invoice["id"])
    assert caught.value.status == 402 and caught.value.code == "card_declined"
    assert caught.value.decline_code == "insufficient_funds"
    assert stripe.invoice(invoice["id"]).attempt_count == 5


@pytest.mark.parametrize("mode", ["error", "close"])
def test_a_lost_answer_is_retried_without_charging_twice(standins: StandinServers, stripe: StripeClient,
                                                         mode: Literal["error", "close"]) -> None:
    invoice = _group_invoice(standins, 1_000_001)
    standins.stripe.faults.drop_next(1, mode=mode)  # Stripe charged, but the answer never came back
    paid = stripe.retry_invoice_payment(invoice["id"])
    assert paid.status == "paid"
    assert stripe.http.stats.requests == 2
    assert standins.stripe.charges[invoice["id"]] == 1
    replays = [k for k, v in standins.stripe.idempotency.items() if v["fingerprint"][0].endswith("/pay")]
    assert len(replays) == 1  # one key for both tries


def test_a_key_reused_with_other_parameters_is_refused(standins: StandinServers, stripe: StripeClient) -> None:
    key = new_idempotency_key()
    stripe.http.request("POST", "/customers", data={"email": "a@example.org"}, idempotency_key=key)
    replay = stripe.http.request("POST", "/customers", data={"email": "a@example.org"}, idempotency_key=key)
    assert replay.headers["Idempotent-Replayed"] == "true"
    with pytest.raises(ApiValidationError) as caught:
        stripe.http.request("POST", "/customers", data={"email": "b@example.org"}, idempotency_key=key)
    assert caught.value.code == "idempotency_error" and caught.value.attempts == 1
    assert sum(1 for c in standins.stripe.customers.values() if c["email"] == "a@example.org") == 1


def test_429_honours_should_retry(standins: StandinServers, stripe: StripeClient) -> None:
    standins.stripe.faults.throttle_next(2, retry_after=0.05)
    assert stripe.customers_for_group(1)
    assert stripe.http.stats.by_status[429] == 2


def test_dashboard_url(standins: StandinServers, stripe: StripeClient) -> None:
    assert stripe.dashboard_url("cus_123") == "https://dashboard.stripe.com/test/customers/cus_123"
    with StripeClient(StripeSpec(standins.stripe_url), "sk_live_x", retry=RetryPolicy(attempts=1)) as live:
        assert live.dashboard_url("cus_123") == "https://dashboard.stripe.com/customers/cus_123"


def test_billing_check(stripe: StripeClient) -> None:
    found = billing_check(stripe, hours=24 * 30)
    assert found.past_due > 0 and found.unpaid > 0 and found.failed_payments > 0
    assert set(found.amount_at_risk) <= {"usd", "eur"} and sum(found.amount_at_risk.values()) > 0
    assert len(found.problems) == 3 and not found.ok
