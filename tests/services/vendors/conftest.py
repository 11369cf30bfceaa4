"""Fixtures for the vendor clients: the three stand-ins in this process, and a client for each.

The stand-ins start once per session; every test gets its faults switched off and the Stripe,
Cloudflare and Mailgun state it may have changed put back (only the apps a test touched are reset).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from panel.lab import secrets
from panel.lab.standins import StandinServers
from services.cloudflare import CloudflareClient
from services.http import RetryPolicy, Timeouts
from services.inventory import CloudflareSpec, MailgunSpec, StripeSpec
from services.mailgun import MailgunClient
from services.stripe import StripeClient
from tests.vendor_standins import clean_standins

# Fast retries so fault tests stay quick; Retry-After from the stand-ins is honoured as sent.
FAST_RETRY = RetryPolicy(attempts=4, backoff_base=0.01, backoff_cap=0.05, retry_after_cap=5.0)
FAST_TIMEOUTS = Timeouts(connect=2.0, read=5.0)


@pytest.fixture(scope="session")
def standins_session() -> Iterator[StandinServers]:
    with StandinServers() as lab:
        yield lab


@pytest.fixture
def standins(standins_session: StandinServers) -> Iterator[StandinServers]:
    with clean_standins(standins_session) as lab:
        yield lab


@pytest.fixture
def cloudflare(standins: StandinServers) -> Iterator[CloudflareClient]:
    with CloudflareClient(CloudflareSpec("example.com", standins.cloudflare_url), secrets.CLOUDFLARE_TOKEN,
                          retry=FAST_RETRY, timeouts=FAST_TIMEOUTS) as client:
        yield client


@pytest.fixture
def stripe(standins: StandinServers) -> Iterator[StripeClient]:
    with StripeClient(StripeSpec(standins.stripe_url), secrets.STRIPE_KEY, retry=FAST_RETRY,
                      timeouts=FAST_TIMEOUTS) as client:
        yield client


@pytest.fixture
def mailgun(standins: StandinServers) -> Iterator[MailgunClient]:
    with MailgunClient(MailgunSpec("mg.example.com", standins.mailgun_eu_url), secrets.MAILGUN_KEY,
                       retry=FAST_RETRY, timeouts=FAST_TIMEOUTS) as client:
        yield client
