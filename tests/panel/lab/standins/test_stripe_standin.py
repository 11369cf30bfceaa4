"""The Stripe stand-in's contract, checked with plain HTTP: auth, lists, search, versions,
idempotency, events and errors."""

from __future__ import annotations

import requests

from panel.lab import secrets
from panel.lab.standins import StandinServers

BEARER = {"Authorization": f"Bearer {secrets.STRIPE_KEY}", "Stripe-Version": "2025-03-31.basil"}


def test_auth_bearer_basic_and_refusals(standins: StandinServers, http: requests.Session) -> None:
    url = standins.stripe_url + "/v1/account"
    assert http.get(url, headers=BEARER).status_code == 200
    assert http.get(url, auth=(secrets.STRIPE_KEY, "")).status_code == 200
    wrong = http.get(url, headers={"Authorization": "Bearer sk_test_abcdefgh12345678"})
    assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "invalid_request_error"
    assert "sk_test_" in wrong.json()["error"]["message"] and "12345678" not in wrong.json()["error"]["message"]
    assert "did not provide an API key" in http.get(url).json()["error"]["message"]


def test_headers(standins: StandinServers, http: requests.Session) -> None:
    answer = http.get(standins.stripe_url + "/v1/account", headers=BEARER)
    assert answer.headers["Stripe-Version"] == "2025-03-31.basil"
    assert answer.headers["Request-Id"].startswith("req_")
    default = http.get(standins.stripe_url + "/v1/account", auth=(secrets.STRIPE_KEY, ""))
    assert default.headers["Stripe-Version"] == "2024-06-20"  # the account's own version


def test_list_paging_both_ways(standins: StandinServers, http: requests.Session) -> None:
    url = standins.stripe_url + "/v1/customers"
    first = http.get(url, headers=BEARER).json()
    assert (first["object"], first["url"], first["has_more"], len(first["data"])) == ("list", "/v1/customers", True, 10)
    second = http.get(url, params={"limit": 3, "starting_after": first["data"][-1]["id"]}, headers=BEARER).json()
    back = http.get(url, params={"limit": 3, "ending_before": second["data"][0]["id"]}, headers=BEARER).json()
    assert [c["id"] for c in back["data"]] == [c["id"] for c in first["data"][-3:]]
    bad = http.get(url, params={"limit": 101}, headers=BEARER)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "limit"
    missing = http.get(url, params={"starting_after": "cus_nope"}, headers=BEARER).json()["error"]
    assert missing["code"] == "resource_missing" and missing["param"] == "starting_after"


def test_search(standins: StandinServers, http: requests.Session) -> None:
    url = standins.stripe_url + "/v1/customers/search"
    body = http.get(url, params={"query": "metadata['group_id']:'1'"}, headers=BEARER).json()
    assert body["object"] == "search_result" and body["has_more"] is False and body["next_page"] is None
    assert {c["metadata"]["group_id"] for c in body["data"]} == {"1"} and len(body["data"]) == 2
    page = http.get(url, params={"query": "email~'acme.example'", "limit": "2"}, headers=BEARER).json()
    assert page["has_more"] and page["next_page"]
    rest = http.get(url, params={"query": "email~'acme.example'", "limit": 2, "page": page["next_page"]},
                    headers=BEARER).json()
    assert not {c["id"] for c in rest["data"]} & {c["id"] for c in page["data"]}
    bad = http.get(url, params={"query": "group is 1"}, headers=BEARER)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "query"


def test_basil_and_older_shapes(standins: StandinServers, http: requests.Session) -> None:
    url = standins.stripe_url + "/v1/subscriptions"
    new = http.get(url, params={"limit": "1", "status": "past_due"}, headers=BEARER).json()["data"][0]
    old = http.get(url, params={"limit": "1", "status": "past_due"},
                   headers={**BEARER, "Stripe-Version": "2024-06-20"}).json()["data"][0]
    assert "current_period_end" not in new and "current_period_end" in new["items"]["data"][0]
    assert old["current_period_end"] == new["items"]["data"][0]["current_period_end"]
    assert new["items"]["data"][0]["price"]["recurring"]["interval"] in ("month", "year")
    invoice = http.get(standins.stripe_url + "/v1/invoices/" + new["latest_invoice"], headers=BEARER).json()
    assert invoice["parent"]["subscription_details"]["subscription"] == new["id"] and "subscription" not in invoice
    expanded = http.get(url, params={"limit": "1", "expand[]": "data.customer"}, headers=BEARER).json()["data"][0]
    assert expanded["customer"]["object"] == "customer"
    default = http.get(url, params={"limit": 100}, headers=BEARER).json()["data"]
    assert "canceled" not in {s["status"] for s in default}


def test_idempotency(standins: StandinServers, http: requests.Session) -> None:
    url = standins.stripe_url + "/v1/customers"
    headers = {**BEARER, "Idempotency-Key": "k-1"}
    first = http.post(url, data={"email": "x@example.org", "metadata[group_id]": "42"}, headers=headers)
    assert first.status_code == 200 and first.json()["metadata"] == {"group_id": "42"}
    replay = http.post(url, data={"email": "x@example.org", "metadata[group_id]": "42"}, headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.json()["id"] == first.json()["id"]
    other = http.post(url, data={"email": "y@example.org"}, headers=headers)
    assert other.status_code == 400 and other.json()["error"]["type"] == "idempotency_error"
    assert sum(1 for c in standins.stripe.customers.values() if c["email"] == "x@example.org") == 1


def test_events_filters(standins: StandinServers, http: requests.Session) -> None:
    url = standins.stripe_url + "/v1/events"
    failed = http.get(url, params={"type": "invoice.payment_failed", "limit": "100"}, headers=BEARER).json()
    assert failed["data"] and {e["type"] for e in failed["data"]} == {"invoice.payment_failed"}
    both = http.get(url, params=[("types[]", "invoice.paid"), ("types[]", "invoice.payment_failed"),
                                 ("limit", "100")], headers=BEARER).json()
    assert {e["type"] for e in both["data"]} <= {"invoice.paid", "invoice.payment_failed"}
    created = [e["created"] for e in failed["data"]]
    assert created == sorted(created, reverse=True)


def test_pay_and_errors(standins: StandinServers, http: requests.Session) -> None:
    assert http.get(standins.stripe_url + "/v1/nothing", headers=BEARER).json()["error"]["message"].startswith(
        "Unrecognized request URL")
    missing = http.post(standins.stripe_url + "/v1/invoices/in_nope/pay", headers=BEARER)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "resource_missing"
    standins.stripe.faults.throttle_next(1, retry_after=3)
    limited = http.get(standins.stripe_url + "/v1/account", headers=BEARER)
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limit"
    assert limited.headers["Stripe-Should-Retry"] == "true" and limited.headers["Retry-After"] == "3"
