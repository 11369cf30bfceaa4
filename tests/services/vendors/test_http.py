"""The shared HTTP layer against the real stand-ins: retries, Retry-After, cancellation, malformed
bodies, pagination, request counting, and that no key ever shows up in an error or a log record."""

from __future__ import annotations

import base64
import logging
import math
import random
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from panel.lab import secrets
from panel.lab.standins import StandinServers
from services.cancel import CancelToken
from services.cloudflare import CloudflareClient
from services.errors import ApiError, Cancelled
from services.http import (
    ApiAuthError,
    ApiBadResponse,
    ApiConnectionError,
    ApiRateLimited,
    ApiServerError,
    ApiTimeout,
    BasicAuth,
    HttpClient,
    RetryPolicy,
    Secret,
    Timeouts,
    cloudflare_pages,
    mailgun_pages,
    parse_retry_after,
    stripe_list,
    stripe_search,
)
from services.inventory import CloudflareSpec, MailgunSpec, StripeSpec
from services.mailgun import MailgunClient
from services.stripe import StripeClient
from tests.services.vendors.conftest import FAST_RETRY


def test_retry_after_takes_seconds_and_http_dates() -> None:
    now = time.time()
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 0.25 ") == 0.25
    future = format_datetime(datetime.fromtimestamp(now, UTC) + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(future, now=now) == pytest.approx(30, abs=1)
    past = format_datetime(datetime.fromtimestamp(now, UTC) - timedelta(minutes=5), usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-3") == 0.0


def test_backoff_grows_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_cap=4.0)
    rng = random.Random(1)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (8, 4.0)]:
        delays = [policy.backoff(attempt, rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1  # jittered


def test_429_with_retry_after_then_success(standins: StandinServers, stripe: StripeClient) -> None:
    standins.stripe.faults.throttle_next(1, retry_after=0.2)
    started = time.monotonic()
    account = stripe.verify_key()
    assert account.id.startswith("acct_")
    assert time.monotonic() - started >= 0.2  # waited as asked
    assert stripe.http.stats.requests == 2
    assert stripe.http.stats.by_status[429] == 1


def test_a_rate_limit_window_is_waited_out(standins: StandinServers, cloudflare: CloudflareClient) -> None:
    cloudflare.zone()
    standins.cloudflare.faults.set_rate_limit(2, per_seconds=0.3)
    for _ in range(4):
        assert cloudflare.security_level().value == "medium"
    assert cloudflare.http.stats.by_status[429] >= 1
    assert cloudflare.http.stats.by_status[200] == 5


def test_5xx_then_success(standins: StandinServers, mailgun: MailgunClient) -> None:
    standins.mailgun.faults.fail_next(2, status=503)
    assert mailgun.domain().name == "mg.example.com"
    assert mailgun.http.stats.requests == 3
    assert mailgun.http.stats.retries == 2


def test_5xx_that_lasts_gives_a_server_error(standins: StandinServers, cloudflare: CloudflareClient) -> None:
    standins.cloudflare.faults.fail_next(10, status=502)
    with pytest.raises(ApiServerError) as caught:
        cloudflare.verify_token()
    assert caught.value.status == 502
    assert caught.value.attempts == FAST_RETRY.attempts
    assert "Cloudflare had an internal error" in str(caught.value)


def test_retry_after_beyond_the_cap_fails_at_once(standins: StandinServers, stripe: StripeClient) -> None:
    standins.stripe.faults.throttle_next(1, retry_after=300)
    with pytest.raises(ApiRateLimited) as caught:
        stripe.verify_key()
    assert stripe.http.stats.requests == 1
    assert caught.value.retry_after == 300
    assert "wait 300 s" in str(caught.value)


def test_a_post_without_idempotency_key_is_not_repeated_after_a_5xx(standins: StandinServers,
                                                                    mailgun: MailgunClient) -> None:
    standins.mailgun.faults.drop_next(1)  # sent and applied, but the answer is lost
    with pytest.raises(ApiServerError):
        mailgun.send_test_message("drop@example.org")
    assert mailgun.http.stats.requests == 1
    assert [s["fields"] for s in standins.mailgun.sent].count(standins.mailgun.sent[-1]["fields"]) == 1


def test_a_post_is_repeated_after_a_429(standins: StandinServers, mailgun: MailgunClient) -> None:
    standins.mailgun.faults.throttle_next(1, retry_after=0.05)  # refused before acting: safe to send again
    sent_before = len(standins.mailgun.sent)
    assert mailgun.send_test_message("again@example.org").message == "Queued. Thank you."
    assert len(standins.mailgun.sent) == sent_before + 1
    assert mailgun.http.stats.requests == 2


def test_a_dropped_connection_on_a_get_is_retried(standins: StandinServers, cloudflare: CloudflareClient) -> None:
    standins.cloudflare.faults.drop_next(1, mode="close")
    assert cloudflare.verify_token().active
    assert cloudflare.http.stats.requests == 2


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_refused_connection_is_retried_then_explained() -> None:
    spec = MailgunSpec("mg.example.com", f"http://127.0.0.1:{_free_port()}")
    with MailgunClient(spec, secrets.MAILGUN_KEY, retry=FAST_RETRY) as client, \
            pytest.raises(ApiConnectionError) as caught:
        client.send_test_message("x@example.org")  # even a POST: it never reached the server
    assert caught.value.attempts == FAST_RETRY.attempts
    assert "cannot connect to Mailgun" in str(caught.value)


def test_a_slow_answer_times_out(standins: StandinServers) -> None:
    standins.mailgun.faults.set_delay(400)
    spec = MailgunSpec("mg.example.com", standins.mailgun_url)
    with MailgunClient(spec, secrets.MAILGUN_KEY, timeouts=Timeouts(connect=1, read=0.1),
                       retry=RetryPolicy(attempts=2, backoff_base=0.01)) as client, pytest.raises(ApiTimeout) as caught:
        client.domains()
    assert "did not answer within 0.1 s" in str(caught.value)


def test_cancel_ends_a_blocked_read(standins: StandinServers, mailgun: MailgunClient) -> None:
    standins.mailgun.faults.set_delay(3000)
    token = CancelToken()
    threading.Timer(0.2, token.cancel).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        mailgun.domains(cancel=token)
    assert time.monotonic() - started < 1.5


def test_cancel_ends_a_backoff_wait(standins: StandinServers, stripe: StripeClient) -> None:
    standins.stripe.faults.throttle_next(3, retry_after=4)
    token = CancelToken()
    threading.Timer(0.2, token.cancel).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        stripe.verify_key(cancel=token)
    assert time.monotonic() - started < 1.5
    assert stripe.http.stats.requests == 1


def test_malformed_json_is_a_clear_error_for_each_vendor(standins: StandinServers, cloudflare: CloudflareClient,
                                                         stripe: StripeClient, mailgun: MailgunClient) -> None:
    for app, call in [(standins.cloudflare, cloudflare.verify_token), (standins.stripe, stripe.verify_key),
                      (standins.mailgun, mailgun.domains)]:
        app.faults.malformed_next(1)
        with pytest.raises(ApiBadResponse) as caught:
            call()
        assert "not valid JSON" in str(caught.value)
        assert caught.value.__suppress_context__  # no JSONDecodeError chained behind it


def test_a_plain_text_error_body_is_mapped_too(standins: StandinServers) -> None:
    spec = StripeSpec(standins.mailgun_url)  # a wrong base URL: Mailgun answers "Forbidden" in plain text
    with StripeClient(spec, secrets.STRIPE_KEY, retry=FAST_RETRY) as client, pytest.raises(ApiAuthError) as caught:
        client.verify_key()
    assert caught.value.status == 401 and "Stripe refused the API key" in str(caught.value)


def test_paging_urls_stay_on_the_configured_origin() -> None:
    secret = Secret("k")
    with HttpClient(vendor="mailgun", base_url="http://127.0.0.1:9/proxy", auth=BasicAuth("api", secret),
                    secret=secret) as client:
        assert client.url("/v3/x/events") == "http://127.0.0.1:9/proxy/v3/x/events"
        assert client.url("https://api.eu.mailgun.net/v3/x/events/abc?limit=3") == \
            "http://127.0.0.1:9/proxy/v3/x/events/abc?limit=3"
        assert client.url("http://127.0.0.1:9/proxy/v3/x/events/abc") == "http://127.0.0.1:9/proxy/v3/x/events/abc"


# -- pagination ------------------------------------------------------------------------------------


def test_cloudflare_pages_follow_result_info(cloudflare: CloudflareClient) -> None:
    path = f"/zones/{cloudflare.zone().id}/dns_records"
    before = cloudflare.http.stats.requests
    pages = list(cloudflare_pages(cloudflare.http, path, per_page=10))
    total = sum(len(p) for p in pages)
    assert total >= 100
    assert len(pages) == math.ceil(total / 10)
    assert cloudflare.http.stats.requests - before == len(pages)


def test_stripe_list_loads_10000_customers_in_few_requests(stripe: StripeClient) -> None:
    customers = stripe.customers()
    assert len(customers) >= 10_000
    assert len({c.id for c in customers}) == len(customers)
    assert stripe.http.stats.requests == math.ceil(len(customers) / 100)


def test_stripe_list_and_search_pages(stripe: StripeClient) -> None:
    events = list(stripe_list(stripe.http, "/events", {"type": "invoice.payment_failed"}, limit=7))
    assert len(events) > 20 and all(e["type"] == "invoice.payment_failed" for e in events)
    found = list(stripe_search(stripe.http, "/customers/search", "email~'acme.example'", limit=2))
    assert len(found) >= 5  # acme's owner pays for several groups
    assert stripe.http.stats.requests == math.ceil(len(events) / 7) + math.ceil(len(found) / 2)


def test_mailgun_pages_stop_at_the_empty_page(mailgun: MailgunClient) -> None:
    pages = list(mailgun_pages(mailgun.http, "/v3/mg.example.com/bounces", {"limit": 100}))
    assert sum(len(p) for p in pages) == 265
    assert mailgun.http.stats.requests == len(pages) + 1  # the empty page ends it


# -- the key never leaks ---------------------------------------------------------------------------


WRONG_KEYS = {"cloudflare": "wrong-cloudflare-token-XYZ987654321", "stripe": "sk_test_WRONGwrongWRONG98765",
              "mailgun": "key-WRONGwrong-987654321"}


def _forms(key: str) -> list[str]:
    return [key, key[-12:], base64.b64encode(f"api:{key}".encode()).decode(),
            base64.b64encode(f"{key}:".encode()).decode()]


def test_no_key_in_errors_reprs_or_log_records(standins: StandinServers,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    cases: list[tuple[str, str, Any, Callable[[str], Any], Callable[[Any], object]]] = [
        (secrets.CLOUDFLARE_TOKEN, WRONG_KEYS["cloudflare"], standins.cloudflare,
         lambda key: CloudflareClient(CloudflareSpec("example.com", standins.cloudflare_url), key, retry=FAST_RETRY),
         lambda client: client.verify_token()),
        (secrets.STRIPE_KEY, WRONG_KEYS["stripe"], standins.stripe,
         lambda key: StripeClient(StripeSpec(standins.stripe_url), key, retry=FAST_RETRY),
         lambda client: client.customers_for_group(1)),
        (secrets.MAILGUN_KEY, WRONG_KEYS["mailgun"], standins.mailgun,
         lambda key: MailgunClient(MailgunSpec("mg.example.com", standins.mailgun_url), key, retry=FAST_RETRY),
         lambda client: client.domain()),
    ]
    for good, wrong, app, make, call in cases:
        for key in (good, wrong):
            client = make(key)
            texts += [repr(client), str(client), repr(client.http)]
            app.faults.fail_next(1)  # a retry, so a warning is logged
            app.faults.malformed_next(1) if key == good else None
            try:
                call(client)
            except ApiError as error:
                texts += [str(error), repr(error), str(error.args), str(vars(error))]
                if key == wrong:
                    assert isinstance(error, ApiAuthError)
            finally:
                client.close()
    texts += [r.getMessage() for r in caplog.records] + [r.exc_text or "" for r in caplog.records]
    assert any("try 2 of" in r.getMessage() for r in caplog.records)
    haystack = "\n".join(texts)
    for key in [secrets.CLOUDFLARE_TOKEN, secrets.STRIPE_KEY, secrets.MAILGUN_KEY, *WRONG_KEYS.values()]:
        for form in _forms(key):
            assert form not in haystack


def test_a_key_with_a_line_break_is_not_echoed(standins: StandinServers) -> None:
    key = "token-line\nbreak-SECRET123"  # sent as is in a Bearer header (Basic would encode it)
    spec = CloudflareSpec("example.com", standins.cloudflare_url)
    with CloudflareClient(spec, key, retry=FAST_RETRY) as client, pytest.raises(ApiError) as caught:
        client.verify_token()
    assert "SECRET123" not in str(caught.value) + repr(caught.value)
    assert "stray spaces or line breaks" in str(caught.value)
    assert client.http.stats.requests == 0


def test_secret_hides_itself() -> None:
    secret = Secret("sk_test_abc")
    assert "sk_test_abc" not in repr(secret) + str(secret) + f"{secret}"
    assert secret.reveal() == "sk_test_abc"
    assert Secret(" sk_test_abc\n").reveal() == "sk_test_abc"
    with pytest.raises(ValueError):
        Secret("\n")
