"""The Mailgun client against its stand-in: domains, events over many pages, stats, failure rate,
suppressions, a test send, the plain-text 401, and the US/EU base URLs."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from panel.lab import secrets
from panel.lab.standins import StandinServers
from services.http import ApiAuthError, ApiBadResponse, ApiNotFound, ApiValidationError, RetryPolicy
from services.inventory import MailgunSpec
from services.mailgun import MailgunClient, mail_check, unverified_domains


def _client(url: str, key: str = secrets.MAILGUN_KEY, domain: str = "mg.example.com") -> MailgunClient:
    return MailgunClient(MailgunSpec(domain, url), key, retry=RetryPolicy(attempts=2, backoff_base=0.01))


def test_domains_and_their_records(mailgun: MailgunClient) -> None:
    domains = {d.name: d for d in mailgun.domains()}
    assert domains["mg.example.com"].verified
    assert domains["news.example.com"].state == "unverified"
    assert domains["old.example.com"].is_disabled
    detail = mailgun.domain()
    assert {r.record_type for r in detail.sending_records} == {"TXT", "CNAME"}
    assert all(r.ok for r in detail.sending_records)
    assert [d.name for d in unverified_domains(mailgun)] == ["news.example.com"]


def test_verify_a_domain_once_its_records_are_published(standins: StandinServers, mailgun: MailgunClient) -> None:
    assert mailgun.verify_domain("news.example.com").state == "unverified"
    standins.mailgun.dns_fixed.add("news.example.com")
    verified = mailgun.verify_domain("news.example.com")
    assert verified.state == "active" and all(r.ok for r in verified.sending_records)


def test_us_and_eu_base_urls(standins: StandinServers) -> None:
    standins.mailgun.strict_regions = True  # as on the real service: a domain answers in its own region
    with _client(standins.mailgun_eu_url) as eu, _client(standins.mailgun_url) as us:
        assert eu.domain().name == "mg.example.com"
        with pytest.raises(ApiNotFound) as caught:
            us.domain()
        assert "api.eu.mailgun.net" in str(caught.value)
        assert {d.name for d in us.domains()} == {"mg.example.net", "old.example.com"}
    listeners = {label for label, _, path in standins.mailgun.request_log if path.endswith("mg.example.com")}
    assert listeners == {"mailgun", "mailgun-eu"}


def test_permanent_failures_over_many_pages(standins: StandinServers, mailgun: MailgunClient) -> None:
    now = datetime.now(UTC)
    failures = mailgun.failures(hours=24 * 7, now=now)
    assert len(failures) > 50
    assert all(f.event == "failed" and f.severity == "permanent" for f in failures)
    assert failures == sorted(failures, key=lambda f: f.timestamp, reverse=True)
    assert {f.reason for f in failures} <= {"bounce", "suppress-bounce"}
    assert any(f.group_id for f in failures) and all(f.code for f in failures)
    everything = mailgun.events(hours=24, now=now)
    pages = math.ceil(len(everything) / 300)
    assert len(everything) > 300
    assert mailgun.http.stats.requests == math.ceil(len(failures) / 300) + 1 + pages + 1  # each ends empty
    stored = [e for e in standins.mailgun.events if now.timestamp() - 86400 <= e["timestamp"] < now.timestamp()]
    assert len(everything) == len(stored)


def test_stats_per_hour_and_day(mailgun: MailgunClient) -> None:
    hours = mailgun.stats(duration="24h", resolution="hour")
    assert len(hours) in (24, 25)
    assert sum(b.accepted for b in hours) > 0
    assert all(b.delivered + b.failed_permanent <= b.accepted + 60 for b in hours)
    days = mailgun.stats(duration="7d", resolution="day")
    assert 7 <= len(days) <= 8 and days[0].start < days[-1].start


def test_failure_rate_and_the_check(standins: StandinServers, mailgun: MailgunClient) -> None:
    normal = mailgun.permanent_failure_rate(24)
    assert 0 < normal.rate < 0.05 and mailgun.http.stats.requests == 1
    assert not any("failed for good" in p for p in mail_check(mailgun).problems)
    standins.mailgun.inject_bounces(300)
    storm = mailgun.permanent_failure_rate(24)
    assert storm.failed_permanent == normal.failed_permanent + 300 and storm.rate > 0.1
    found = mail_check(mailgun)
    assert any("failed for good" in p for p in found.problems)
    assert found.unverified_domains == ("news.example.com",)


def test_suppressions_list_and_remove(mailgun: MailgunClient) -> None:
    bounces = mailgun.suppressions("bounces")
    assert len(bounces) == 265 and mailgun.http.stats.requests == 2  # one full page, one empty
    assert any(b.address.endswith("@acme.example") for b in bounces)
    assert all(b.code and b.error and b.created_at for b in bounces)
    assert len(mailgun.suppressions("complaints")) == 15
    assert {t for u in mailgun.suppressions("unsubscribes") for t in u.tags} == {"*"}
    target = bounces[0].address
    mailgun.remove_suppression("bounces", target)
    assert target not in {b.address for b in mailgun.suppressions("bounces")}
    with pytest.raises(ApiNotFound) as caught:
        mailgun.remove_suppression("bounces", target)
    assert "Address not found" in str(caught.value)
    with pytest.raises(ApiValidationError):
        mailgun.suppressions("spam")


def test_send_a_test_message(standins: StandinServers, mailgun: MailgunClient) -> None:
    result = mailgun.send_test_message("founder@example.com")
    assert result.message == "Queued. Thank you." and result.id.startswith("<") and result.test_mode
    sent = standins.mailgun.sent[-1]
    assert sent["test_mode"] and ("o:testmode", "yes") in sent["fields"]
    with pytest.raises(ApiValidationError) as caught:
        mailgun.send_test_message("")
    assert "needs a recipient" in str(caught.value)
    with pytest.raises(ApiValidationError) as refused:  # the server's own check, through the same mapping
        mailgun.http.request("POST", "/v3/mg.example.com/messages", data={"from": "a@example.com", "text": "x"})
    assert "to parameter is missing" in str(refused.value) and refused.value.status == 400


def test_sending_to_a_bounced_address_fails_for_good(standins: StandinServers, mailgun: MailgunClient) -> None:
    address = mailgun.suppressions("bounces")[0].address
    mailgun.send_test_message(address, test_mode=False)
    latest = mailgun.failures(hours=1)[0]
    assert (latest.recipient, latest.reason, latest.code) == (address, "suppress-bounce", 605)


def test_wrong_key_plain_text_forbidden(standins: StandinServers) -> None:
    with _client(standins.mailgun_url, key="key-wrong") as client, pytest.raises(ApiAuthError) as caught:
        client.domains()
    assert caught.value.status == 401 and "Forbidden" in str(caught.value)


def test_malformed_events_page(standins: StandinServers, mailgun: MailgunClient) -> None:
    standins.mailgun.faults.malformed_next(1)
    with pytest.raises(ApiBadResponse):
        mailgun.events(hours=1)


def test_events_of_one_recipient(mailgun: MailgunClient) -> None:
    some = mailgun.events(hours=24)[0]
    mine = mailgun.events(hours=24, recipient=some.recipient)
    assert mine and {e.recipient for e in mine} == {some.recipient}
    assert all(e.timestamp >= datetime.now(UTC) - timedelta(hours=24, minutes=1) for e in mine)
