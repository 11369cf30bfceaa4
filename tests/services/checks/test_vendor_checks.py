"""Stripe, Mailgun and Cloudflare checks against the lab's stand-ins, through their 401, 429 and 5xx
answers. A key is never echoed: not in a result, not in a log line."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from panel.lab import secrets
from panel.lab.standins import StandinServers
from services.checks import ids
from services.checks.model import CheckResult, Severity
from services.checks.vendors import VendorKeys, cloudflare_checks, mailgun_checks, stripe_checks, vendor_jobs
from services.inventory import CloudflareSpec, Inventory, MailgunSpec, StripeSpec

WRONG_KEY = "sk_test_wrong_key_that_must_never_show_4242"


@pytest.fixture(scope="module")
def standins_module() -> Iterator[StandinServers]:
    with StandinServers() as lab:
        yield lab


@pytest.fixture
def standins(standins_module: StandinServers) -> Iterator[StandinServers]:
    standins_module.reset()
    yield standins_module
    standins_module.reset()
    standins_module.cloudflare.attack = False


def keys(**given: str) -> VendorKeys:
    return VendorKeys(**given)


def by_check(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.check: r for r in results if r.is_alert or r.check not in {x.check for x in results if x.is_alert}}


def text_of(results: list[CheckResult]) -> str:
    return "\n".join(f"{r!r} {r.summary} {' '.join(r.evidence)}" for r in results)


def assert_no_key(results: list[CheckResult], caplog: pytest.LogCaptureFixture, *secret: str) -> None:
    everything = text_of(results) + "\n" + caplog.text
    for value in secret:
        assert value not in everything


def test_stripe_failed_payments_and_past_due(standins: StandinServers, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    spec = StripeSpec(standins.stripe_url)
    results = stripe_checks(spec, secrets.STRIPE_KEY, keys=keys(stripe=secrets.STRIPE_KEY))
    found = by_check(results)
    assert found[ids.STRIPE_FAILED].severity is Severity.WARNING
    assert "failed in the last 24 h" in found[ids.STRIPE_FAILED].summary
    assert found[ids.STRIPE_PAST_DUE].severity is Severity.WARNING and "past due" in found[ids.STRIPE_PAST_DUE].summary
    assert found[ids.STRIPE_API].severity is Severity.OK
    action = found[ids.STRIPE_PAST_DUE].action
    assert action is not None and action.page == "Billing"
    assert_no_key(results, caplog, secrets.STRIPE_KEY)


def test_stripe_refusing_the_key_is_unknown_and_never_echoes_it(standins: StandinServers,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    results = stripe_checks(StripeSpec(standins.stripe_url), WRONG_KEY, keys=keys(stripe=WRONG_KEY))
    assert [r.check for r in results] == [ids.STRIPE_API]
    assert results[0].severity is Severity.UNKNOWN and "HTTP 401" in results[0].evidence
    assert_no_key(results, caplog, WRONG_KEY, WRONG_KEY[8:])


def test_stripe_throttling_and_server_errors(standins: StandinServers, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    spec = StripeSpec(standins.stripe_url)
    given = keys(stripe=secrets.STRIPE_KEY)
    standins.stripe.faults.throttle_next(1, retry_after=0.05)  # one 429, then the retry goes through
    assert by_check(stripe_checks(spec, secrets.STRIPE_KEY, keys=given))[ids.STRIPE_API].severity is Severity.OK
    standins.stripe.faults.throttle_next(50, retry_after=0.05)  # it keeps refusing: unknown, with the reason
    throttled = stripe_checks(spec, secrets.STRIPE_KEY, keys=given)
    assert [r.severity for r in throttled] == [Severity.UNKNOWN] and "HTTP 429" in throttled[0].evidence
    standins.stripe.faults.reset()
    standins.stripe.faults.fail_next(50, status=503)
    failing = stripe_checks(spec, secrets.STRIPE_KEY, keys=given)
    assert [r.severity for r in failing] == [Severity.UNKNOWN] and "HTTP 503" in failing[0].evidence
    assert_no_key(throttled + failing, caplog, secrets.STRIPE_KEY)


def test_mailgun_unverified_domain_and_failure_rate(standins: StandinServers,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    spec = MailgunSpec("mg.example.com", standins.mailgun_url)
    given = keys(mailgun=secrets.MAILGUN_KEY)
    results = mailgun_checks(spec, secrets.MAILGUN_KEY, keys=given)
    unverified = [r for r in results if r.check == ids.MAILGUN_UNVERIFIED and r.is_alert]
    assert unverified and all(r.severity is Severity.WARNING for r in unverified)
    rate = next(r for r in results if r.check == ids.MAILGUN_FAILURES)
    share = float(rate.data["rate"])
    assert rate.severity is (Severity.WARNING if share >= 0.05 else Severity.OK)
    # the threshold moves the severity
    strict = mailgun_checks(spec, secrets.MAILGUN_KEY, keys=given, warn_rate=share / 2)
    assert next(r for r in strict if r.check == ids.MAILGUN_FAILURES).severity is Severity.WARNING
    loose = mailgun_checks(spec, secrets.MAILGUN_KEY, keys=given, warn_rate=min(1.0, share * 2 + 0.01))
    assert next(r for r in loose if r.check == ids.MAILGUN_FAILURES).severity is Severity.OK
    refused = mailgun_checks(spec, "key-wrong-0000", keys=keys(mailgun="key-wrong-0000"))
    assert [r.check for r in refused] == [ids.MAILGUN_API] and refused[0].severity is Severity.UNKNOWN
    assert "HTTP 401" in refused[0].evidence
    standins.mailgun.faults.fail_next(50, status=500)
    failing = mailgun_checks(spec, secrets.MAILGUN_KEY, keys=given)
    assert [r.severity for r in failing] == [Severity.UNKNOWN]
    standins.mailgun.faults.reset()
    standins.mailgun.faults.throttle_next(50, retry_after=0.05)
    throttled = mailgun_checks(spec, secrets.MAILGUN_KEY, keys=given)
    assert [r.severity for r in throttled] == [Severity.UNKNOWN] and "HTTP 429" in throttled[0].evidence
    assert_no_key(results + refused + failing + throttled, caplog, secrets.MAILGUN_KEY, "key-wrong-0000")


def test_cloudflare_zone_attack_and_errors(standins: StandinServers, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    given = keys(cloudflare=secrets.CLOUDFLARE_TOKEN)
    spec = CloudflareSpec("example.com", standins.cloudflare_url)
    calm = by_check(cloudflare_checks(spec, secrets.CLOUDFLARE_TOKEN, keys=given))
    assert calm[ids.CLOUDFLARE_ZONE].severity is Severity.OK
    assert calm[ids.CLOUDFLARE_ATTACK].severity is Severity.OK
    standins.cloudflare.attack = True
    attacked = by_check(cloudflare_checks(spec, secrets.CLOUDFLARE_TOKEN, keys=given))
    assert attacked[ids.CLOUDFLARE_ATTACK].severity is Severity.CRITICAL
    assert "under attack" in attacked[ids.CLOUDFLARE_ATTACK].summary
    standins.cloudflare.attack = False
    pending = by_check(cloudflare_checks(CloudflareSpec("example.net", standins.cloudflare_url),
                                         secrets.CLOUDFLARE_TOKEN, keys=given))
    assert pending[ids.CLOUDFLARE_ZONE].severity is Severity.CRITICAL and "not active" in \
        pending[ids.CLOUDFLARE_ZONE].summary
    refused = cloudflare_checks(spec, "wrong-token-123456789", keys=keys(cloudflare="wrong-token-123456789"))
    assert [r.check for r in refused] == [ids.CLOUDFLARE_API] and "HTTP 401" in refused[0].evidence
    standins.cloudflare.faults.fail_next(50, status=502)
    failing = cloudflare_checks(spec, secrets.CLOUDFLARE_TOKEN, keys=given)
    assert [r.severity for r in failing] == [Severity.UNKNOWN] and "HTTP 502" in failing[0].evidence
    standins.cloudflare.faults.reset()
    standins.cloudflare.faults.throttle_next(50, retry_after=0.05)
    throttled = cloudflare_checks(spec, secrets.CLOUDFLARE_TOKEN, keys=given)
    assert [r.severity for r in throttled] == [Severity.UNKNOWN]
    assert_no_key(refused + failing + throttled, caplog, secrets.CLOUDFLARE_TOKEN, "wrong-token-123456789")


def test_vendor_checks_run_only_when_their_key_is_there(standins: StandinServers) -> None:
    inventory = Inventory(servers={}, cloudflare=CloudflareSpec("example.com", standins.cloudflare_url),
                          stripe=StripeSpec(standins.stripe_url),
                          mailgun=MailgunSpec("mg.example.com", standins.mailgun_url))
    assert vendor_jobs(inventory, VendorKeys()) == []
    assert len(vendor_jobs(inventory, keys(stripe=secrets.STRIPE_KEY))) == 1
    assert len(vendor_jobs(inventory, keys(stripe="a", mailgun="b", cloudflare="c"))) == 3
    assert "sk_test" not in repr(keys(stripe=secrets.STRIPE_KEY))
