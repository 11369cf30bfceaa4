"""The Cloudflare client against its stand-in: token, zone, DNS, settings, purge, analytics, checks."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from panel.lab import secrets
from panel.lab.standins import StandinServers
from panel.lab.standins.cloudflare import READONLY_TOKEN
from services.cloudflare import CloudflareClient, DnsRecordInput, check_zone, validate_record
from services.http import ApiAuthError, ApiNotFound, ApiRateLimited, ApiValidationError, RetryPolicy
from services.inventory import CloudflareSpec


def _client(lab: StandinServers, token: str, zone: str = "example.com",
            retry: RetryPolicy | None = None) -> CloudflareClient:
    return CloudflareClient(CloudflareSpec(zone, lab.cloudflare_url), token,
                            retry=retry or RetryPolicy(attempts=3, backoff_base=0.01))


def test_verify_token_and_zone(cloudflare: CloudflareClient) -> None:
    assert cloudflare.verify_token().active
    zone = cloudflare.zone()
    assert (zone.name, zone.status, zone.plan, zone.active) == ("example.com", "active", "Pro Website", True)
    assert cloudflare.zone() is zone  # cached: one lookup
    assert cloudflare.http.stats.requests == 2


def test_wrong_token_gets_the_right_401(standins: StandinServers) -> None:
    with _client(standins, "not-the-token") as client:
        with pytest.raises(ApiAuthError) as verify:
            client.verify_token()
        with pytest.raises(ApiAuthError) as other:
            client.zone()
    assert (verify.value.status, verify.value.code) == (401, "1000")
    assert (other.value.status, other.value.code) == (401, "9109")
    assert "Invalid API Token" in str(verify.value) and "keyring" in str(verify.value)


def test_a_read_only_token_may_not_write(standins: StandinServers) -> None:
    with _client(standins, READONLY_TOKEN) as client:
        assert client.security_level().value == "medium"
        with pytest.raises(ApiAuthError) as caught:
            client.set_security_level("high")
    assert (caught.value.status, caught.value.code) == (403, "10000")
    assert "permission" in str(caught.value)


def test_unknown_zone(standins: StandinServers) -> None:
    with _client(standins, secrets.CLOUDFLARE_TOKEN, zone="nope.example") as client, pytest.raises(ApiNotFound):
        client.zone()


def test_dns_records_over_many_pages(cloudflare: CloudflareClient) -> None:
    records = cloudflare.dns_records(per_page=20)
    assert len(records) > 100
    assert cloudflare.http.stats.requests == 1 + math.ceil(len(records) / 20)  # + the zone lookup
    by_name = {r.name: r for r in records}
    assert by_name["app1.example.com"].content == "127.0.0.1"
    assert by_name["legacy.example.com"].content == "198.51.100.7"
    assert by_name["acme.example.com"].type == "CNAME" and by_name["acme.example.com"].proxied
    assert [r.name for r in cloudflare.dns_records(type="a", name="app2")] == ["app2.example.com"]


def test_create_edit_delete_a_record(standins: StandinServers, cloudflare: CloudflareClient) -> None:
    created = cloudflare.create_dns_record(DnsRecordInput("A", "status", "192.0.2.10", ttl=300, comment="test"))
    assert (created.name, created.content, created.ttl, created.comment) == \
        ("status.example.com", "192.0.2.10", 300, "test")
    with pytest.raises(ApiValidationError) as identical:
        cloudflare.create_dns_record(DnsRecordInput("A", "status", "192.0.2.10"))
    assert identical.value.code == "81058"
    with pytest.raises(ApiValidationError) as conflict:
        cloudflare.create_dns_record(DnsRecordInput("CNAME", "status", "app1.example.com"))
    assert conflict.value.code == "81053"
    edited = cloudflare.update_dns_record(created.id, DnsRecordInput("A", "status", "192.0.2.11", proxied=True))
    assert (edited.content, edited.proxied, edited.ttl) == ("192.0.2.11", True, 1)
    patched = cloudflare.patch_dns_record(created.id, proxied=False, ttl=120)
    assert (patched.content, patched.proxied, patched.ttl) == ("192.0.2.11", False, 120)
    cloudflare.delete_dns_record(created.id)
    assert created.id not in standins.cloudflare.records
    with pytest.raises(ApiNotFound) as gone:
        cloudflare.delete_dns_record(created.id)
    assert gone.value.code == "81044"


def test_a_delete_whose_answer_was_lost_still_succeeds(standins: StandinServers, cloudflare: CloudflareClient) -> None:
    record = cloudflare.dns_records(name="legacy")[0]
    standins.cloudflare.faults.drop_next(1)  # applied, then a 500: the retry finds the record gone (81044)
    cloudflare.delete_dns_record(record.id)
    assert record.id not in standins.cloudflare.records


@pytest.mark.parametrize(("record", "words"), [
    (DnsRecordInput("A", "x", "not-an-ip"), "IPv4"),
    (DnsRecordInput("A", "x", "2001:db8::1"), "IPv4"),
    (DnsRecordInput("AAAA", "x", "192.0.2.1"), "IPv6"),
    (DnsRecordInput("CNAME", "x", "192.0.2.1"), "host name"),
    (DnsRecordInput("CNAME", "x", "bad host!"), "host name"),
    (DnsRecordInput("A", "x", "192.0.2.1", ttl=30), "TTL"),
    (DnsRecordInput("A", "x", "192.0.2.1", ttl=90000), "TTL"),
    (DnsRecordInput("TXT", "x", "hello", proxied=True), "cannot be proxied"),
    (DnsRecordInput("MX", "x", "mx.example.com"), "priority"),
    (DnsRecordInput("SPF", "x", "v=spf1"), "Unsupported"),
    (DnsRecordInput("A", "bad name!", "192.0.2.1"), "name"),
])
def test_client_side_validation_stops_bad_records_before_sending(cloudflare: CloudflareClient,
                                                                 record: DnsRecordInput, words: str) -> None:
    with pytest.raises(ApiValidationError) as caught:
        cloudflare.create_dns_record(record)
    assert words in str(caught.value)
    assert cloudflare.http.stats.requests == 0


def test_validation_normalises() -> None:
    record = validate_record(DnsRecordInput("aaaa", "@", "2001:DB8:0::1"))
    assert (record.type, record.content) == ("AAAA", "2001:db8::1")
    assert validate_record(DnsRecordInput("A", "x", "192.0.2.1", ttl=1)).ttl == 1


def test_under_attack_on_and_back(standins: StandinServers, cloudflare: CloudflareClient) -> None:
    assert cloudflare.security_level().value == "medium"
    assert cloudflare.set_security_level("under_attack").value == "under_attack"
    assert check_zone(cloudflare).under_attack_mode
    assert cloudflare.set_security_level("medium").value == "medium"
    assert standins.cloudflare.security_level == "medium"
    with pytest.raises(ApiValidationError):
        cloudflare.set_security_level("maximum")


def test_development_mode(cloudflare: CloudflareClient) -> None:
    assert cloudflare.development_mode().value == "off"
    on = cloudflare.set_development_mode(True)
    assert on.value == "on" and on.time_remaining and on.time_remaining > 3 * 3600 - 60
    assert cloudflare.set_development_mode(False).value == "off"


def test_purge(standins: StandinServers, cloudflare: CloudflareClient) -> None:
    cloudflare.purge_everything()
    before = cloudflare.http.stats.requests
    assert cloudflare.purge_files([f"https://example.com/static/{n}.css" for n in range(45)]) == 45
    assert cloudflare.http.stats.requests - before == 2  # 30 per request
    assert standins.cloudflare.purges[0] == {"purge_everything": True}
    assert [len(p["files"]) for p in standins.cloudflare.purges[1:]] == [30, 15]
    with pytest.raises(ApiValidationError):
        cloudflare.purge_files([])


def test_traffic_series(cloudflare: CloudflareClient) -> None:
    now = datetime.now(UTC)
    day = cloudflare.traffic("24h", now=now)
    assert day.resolution == "hour" and len(day.points) == 24
    assert [p.start for p in day.points] == sorted(p.start for p in day.points)
    assert day.requests > 0 and 0 < day.cached_share < 1 and day.threats < day.requests
    week = cloudflare.traffic("7d", now=now)
    assert week.resolution == "day" and len(week.points) == 7
    assert week.requests > day.requests


def test_attack_is_seen_and_reported(standins: StandinServers, cloudflare: CloudflareClient) -> None:
    quiet = check_zone(cloudflare)
    assert quiet.ok and not quiet.attack_suspected
    standins.cloudflare.attack = True
    loud = check_zone(cloudflare)
    assert loud.attack_suspected and loud.firewall_events_last_hour >= 100
    assert any("looks under attack" in p for p in loud.problems)
    events = cloudflare.firewall_events(limit=50)
    assert len(events) == 50 and events[0].occurred_at >= events[-1].occurred_at
    assert {e.action for e in events} & {"managed_challenge", "block"}


def test_a_zone_that_is_not_active_is_a_problem(standins: StandinServers) -> None:
    with _client(standins, secrets.CLOUDFLARE_TOKEN, zone="example.net") as client:
        found = check_zone(client)
    assert not found.active and any("pending, not active" in p for p in found.problems)


def test_graphql_errors_in_a_200_are_errors(cloudflare: CloudflareClient) -> None:
    now = datetime.now(UTC)
    with pytest.raises(ApiValidationError) as caught:
        cloudflare.firewall_events(since=now - timedelta(days=3), until=now)
    assert caught.value.code == "graphql" and "at most 1 day" in str(caught.value)


def test_429_code_971(standins: StandinServers, cloudflare: CloudflareClient) -> None:
    standins.cloudflare.faults.throttle_next(1, retry_after=0.05)
    assert cloudflare.verify_token().active
    standins.cloudflare.faults.throttle_next(10, retry_after=0.01)
    with pytest.raises(ApiRateLimited) as caught:
        cloudflare.verify_token()
    assert caught.value.code == "971"
