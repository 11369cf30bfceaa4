"""services/vendors.py against the stand-ins: where a key comes from, checking and storing one,
waiting out a 429, and the DNS record checks the Cloudflare page uses."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from panel.lab import secrets
from panel.lab.standins import StandinServers
from panel.secrets import SecretStore
from services.cloudflare import DnsRecord, DnsRecordInput
from services.errors import Cancelled
from services.http import ApiRateLimited
from services.inventory import CloudflareSpec, Inventory, MailgunSpec, ServerSpec, StripeSpec
from services.vendors import (
    Access,
    RateLimitWait,
    VendorNotSetUp,
    access,
    call_patiently,
    check_record,
    cloudflare_client,
    find_key,
    forget_session_key,
    inventory_addresses,
    record_changes,
    remember_for_session,
    set_up_key,
    verify_key,
)
from tests.keyrings import LockedKeyring, MemoryKeyring
from tests.views.vendors.conftest import FAST_RETRY, WRONG_KEYS, Panel


def test_where_a_key_comes_from(make_panel: Callable[..., Panel], monkeypatch: pytest.MonkeyPatch) -> None:
    panel = make_panel()
    store = panel.context.secrets
    assert find_key(store, "stripe") == (secrets.STRIPE_KEY, "keyring")
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_from_the_environment")
    assert find_key(store, "stripe") == ("sk_test_from_the_environment", "environment")
    remember_for_session(store, "stripe", " sk_test_set_up_now\n")
    assert find_key(store, "stripe") == ("sk_test_set_up_now", "session")
    assert find_key(SecretStore(MemoryKeyring()), "stripe") == ("sk_test_from_the_environment", "environment")
    forget_session_key(store, "stripe")
    monkeypatch.delenv("STRIPE_API_KEY")
    panel.set_key("stripe", None)
    state = access(panel.context, "stripe")
    assert not state.ready and state.reason == "no-key" and "STRIPE_API_KEY" in state.problem
    assert secrets.STRIPE_KEY not in repr(state)
    error = state.not_set_up()
    assert isinstance(error, VendorNotSetUp) and error.reason == "no-key"
    missing = make_panel(vendors=("stripe",))
    assert access(missing.context, "cloudflare").reason == "no-config"
    with pytest.raises(VendorNotSetUp) as caught:
        cloudflare_client(missing.context)
    assert "[cloudflare]" in str(caught.value)
    assert Access("mailgun", MailgunSpec("mg.example.com"), "environment").source_text == "from $MAILGUN_API_KEY"


def test_verify_key_for_each_vendor(standins: StandinServers) -> None:
    ok = verify_key("cloudflare", CloudflareSpec("example.com", standins.cloudflare_url), secrets.CLOUDFLARE_TOKEN,
                    retry=FAST_RETRY)
    assert ok.ok and "active" in ok.message
    refused = verify_key("cloudflare", CloudflareSpec("example.com", standins.cloudflare_url),
                         WRONG_KEYS["cloudflare"], retry=FAST_RETRY)
    assert not refused.ok and "Invalid API Token" in refused.message
    stripe = verify_key("stripe", StripeSpec(standins.stripe_url), secrets.STRIPE_KEY, retry=FAST_RETRY)
    assert stripe.ok and stripe.test_mode and "Example SaaS" in stripe.message
    bad = verify_key("stripe", StripeSpec(standins.stripe_url), WRONG_KEYS["stripe"], retry=FAST_RETRY)
    assert not bad.ok and WRONG_KEYS["stripe"][-4:] not in bad.message
    standins.mailgun.strict_regions = True
    wrong_region = verify_key("mailgun", MailgunSpec("mg.example.com", standins.mailgun_url), secrets.MAILGUN_KEY,
                              retry=FAST_RETRY)
    assert wrong_region.ok and "not among" in wrong_region.warning
    right_region = verify_key("mailgun", MailgunSpec("mg.example.com", standins.mailgun_eu_url), secrets.MAILGUN_KEY,
                              retry=FAST_RETRY)
    assert right_region.ok and not right_region.warning
    assert not verify_key("mailgun", None, "two words").ok


def test_set_up_key_stores_or_keeps_it_for_the_session(standins: StandinServers) -> None:
    spec = StripeSpec(standins.stripe_url)
    keyring = MemoryKeyring()
    working = SecretStore(keyring)
    stored = set_up_key(working, "stripe", spec, secrets.STRIPE_KEY + "\n", retry=FAST_RETRY)
    assert stored.stored == "keyring" and keyring.entries[("panel", "stripe")] == secrets.STRIPE_KEY
    assert "Stored in the keyring" in stored.message and secrets.STRIPE_KEY not in stored.message
    locked = SecretStore(LockedKeyring())
    kept = set_up_key(locked, "stripe", spec, secrets.STRIPE_KEY, retry=FAST_RETRY)
    assert kept.stored == "session" and "for this session only" in kept.message
    assert find_key(locked, "stripe") == (secrets.STRIPE_KEY, "session")
    refused = set_up_key(SecretStore(MemoryKeyring()), "stripe", spec, WRONG_KEYS["stripe"], retry=FAST_RETRY)
    assert refused.stored is None and "refused" in refused.message


def test_call_patiently_waits_out_a_429_and_can_be_cancelled(standins: StandinServers) -> None:
    from services.cancel import CancelToken
    from services.stripe import StripeClient

    waits: list[RateLimitWait] = []
    with StripeClient(StripeSpec(standins.stripe_url), secrets.STRIPE_KEY, retry=FAST_RETRY) as client:
        standins.stripe.faults.throttle_next(2, retry_after=0.2)
        account = call_patiently(lambda: client.verify_key(), on_wait=waits.append)
        assert account.name == "Example SaaS"
        assert [w.seconds for w in waits] == [0.2, 0.2] and waits[0].message == "Stripe rate limited, retrying in 1 s"
        standins.stripe.faults.throttle_next(1, retry_after=200)
        with pytest.raises(ApiRateLimited):
            call_patiently(lambda: client.verify_key(), max_wait=60)
        token = CancelToken()
        standins.stripe.faults.throttle_next(1, retry_after=30)
        with pytest.raises(Cancelled):
            call_patiently(lambda: client.verify_key(), cancel=token, on_wait=lambda _: token.cancel())


def _record(record_type: str, content: str, name: str = "x.example.com") -> DnsRecord:
    return DnsRecord("id", record_type, name, content, 1, False, True)


def test_records_are_checked_against_the_inventory() -> None:
    inventory = Inventory(servers={"app1": ServerSpec("app1", "203.0.113.10"),
                                   "v6": ServerSpec("v6", "2001:db8::0010"),
                                   "named": ServerSpec("named", "localhost")})
    addresses = inventory_addresses(inventory)
    assert addresses["203.0.113.10"] == ("app1",) and addresses["2001:db8::10"] == ("v6",)
    assert "named" in addresses.get("127.0.0.1", ()) or "named" in addresses.get("::1", ())
    assert check_record(_record("A", "203.0.113.10"), addresses).servers == ("app1",)
    assert check_record(_record("AAAA", "2001:db8:0::10"), addresses).text == "v6"
    stray = check_record(_record("A", "198.51.100.7"), addresses)
    assert stray.stray and stray.text == "not in inventory"
    assert not check_record(_record("CNAME", "app1.example.com"), addresses).applies
    before = DnsRecord("id", "A", "www.example.com", "203.0.113.5", 1, True, True, comment="web")
    after = DnsRecordInput("A", "www", "203.0.113.6", ttl=300, proxied=True, comment="web")
    assert record_changes(before, after, "example.com") == ["content: 203.0.113.5 -> 203.0.113.6",
                                                            "ttl: auto -> 300 s"]
