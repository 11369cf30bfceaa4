"""Glue between the inventory, the API keys and the Cloudflare, Stripe and Mailgun clients.

What the window, the CLI and other features share:

- :func:`access` says whether a vendor is set up (its config section, and where its key comes
  from) without ever returning the key; :func:`open_client` builds the client.
- :func:`verify_key` checks a key before it is stored (Cloudflare ``/user/tokens/verify``,
  Stripe ``/v1/account``, Mailgun ``/v4/domains``); :func:`set_up_key` verifies, then stores it
  in the keyring, or, when no keyring works, keeps it in memory for this session and says so.
- :func:`call_patiently` waits out a vendor's 429 itself (saying so through a callback), so a
  page can show "rate limited, retrying in N s" instead of freezing or failing.
- :func:`billing_overview` and :func:`billing_for_group` read billing with as few requests as
  possible; :func:`check_record` flags DNS records that point outside the inventory.

Plain Python, no Qt, and no import of ``panel``: the context and the secret store are taken by
their shape (:class:`ContextLike`, :class:`SecretSource`). A key never appears in a message,
a repr or a log line written here.
"""

from __future__ import annotations

import ipaddress
import math
import os
import socket
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal, Protocol, TypeVar

from services.cancel import NEVER_CANCELLED, CancelToken
from services.cloudflare import CloudflareClient, DnsRecord, DnsRecordInput, ZoneSetting
from services.errors import Cancelled, PanelError, SecretUnavailable
from services.http import (
    DEFAULT_TIMEOUTS,
    MAX_PAGES,
    ApiAuthError,
    ApiRateLimited,
    ApiValidationError,
    RetryPolicy,
    Timeouts,
    VendorError,
    expect_dict,
    expect_list,
    stripe_list,
)
from services.inventory import CloudflareSpec, Inventory, MailgunSpec, StripeSpec
from services.mailgun import MailDomain, MailgunClient
from services.stripe import (
    DELINQUENT_STATUSES,
    MRR_STATUSES,
    PAGE_LIMIT,
    Account,
    Customer,
    DelinquentSubscription,
    Invoice,
    Mrr,
    PaymentFailure,
    StripeClient,
    Subscription,
)
from services.stripe import _customer as parse_customer
from services.stripe import _subscription as parse_subscription

Vendor = Literal["cloudflare", "stripe", "mailgun"]
VendorSpec = CloudflareSpec | StripeSpec | MailgunSpec
VendorClient = CloudflareClient | StripeClient | MailgunClient
KeySource = Literal["session", "environment", "keyring"]
T = TypeVar("T")

VENDORS: tuple[Vendor, ...] = ("cloudflare", "stripe", "mailgun")
LABELS = {"cloudflare": "Cloudflare", "stripe": "Stripe", "mailgun": "Mailgun"}
# The variables the vendors' own tools read (DESIGN.md, "Secrets"); the same as panel.secrets.
ENV_VARS = {"cloudflare": "CLOUDFLARE_API_TOKEN", "stripe": "STRIPE_API_KEY", "mailgun": "MAILGUN_API_KEY"}
KEY_KINDS = {
    "cloudflare": "an API token (My Profile → API Tokens) with Zone Read, DNS Edit, Zone Settings Edit, "
                  "Cache Purge and Analytics Read on the zone",
    "stripe": "a secret key (sk_live_… or sk_test_…) or a restricted key (rk_…) that may read customers, "
              "subscriptions, invoices and events, and pay invoices",
    "mailgun": "a private API key (Settings → API Security), not a sending key",
}
CONFIG_HINTS = {
    "cloudflare": '[cloudflare]\nzone = "example.com"',
    "stripe": "[stripe]\n# base_url = \"https://api.stripe.com\"",
    "mailgun": '[mailgun]\ndomain = "mg.example.com"\nbase_url = "https://api.eu.mailgun.net"  # US: api.mailgun.net',
}

# For the window: transient failures are retried inside the client, but a 429 that names its wait
# (Retry-After) comes back at once (retry_after_cap 0), so that call_patiently can say so and wait.
PAGE_RETRY = RetryPolicy(attempts=3, backoff_base=0.5, backoff_cap=4.0, retry_after_cap=0.0)
PAGE_TIMEOUTS = DEFAULT_TIMEOUTS
MAX_RATE_LIMIT_WAIT = 120.0  # a longer Retry-After is reported, not waited out
MAX_RATE_LIMIT_WAITS = 5


# -- the shapes this module needs from panel ------------------------------------------------------


class SecretSource(Protocol):
    """What :class:`panel.secrets.SecretStore` offers."""

    def api_key(self, vendor: str) -> str | None: ...

    def set(self, entry: str, value: str) -> None: ...


class ContextLike(Protocol):
    """What :class:`panel.context.PanelContext` offers."""

    @property
    def inventory(self) -> Inventory: ...

    @property
    def secrets(self) -> SecretSource: ...


# -- errors ----------------------------------------------------------------------------------------


class VendorNotSetUp(PanelError):
    """The vendor's config section is missing, or no key was found. Not a failure: a state to show."""

    def __init__(self, vendor: str, reason: Literal["no-config", "no-key"], message: str) -> None:
        super().__init__(message)
        self.vendor = vendor
        self.reason = reason


def key_refused(error: BaseException) -> bool:
    """True when the vendor refused the key itself (401), or the key could not even be sent."""
    if isinstance(error, ApiAuthError) and error.status == 401:
        return True
    if isinstance(error, VendorError) and error.code == "bad_request":
        return True  # a key with a line break or a stray character: requests could not send it
    return isinstance(error, VendorError) and error.vendor == "cloudflare" and error.code == "6003"


# -- config and keys ---------------------------------------------------------------------------------


def _vendor(vendor: str) -> Vendor:
    if vendor not in VENDORS:
        raise ValueError(f"unknown vendor {vendor!r}; use one of {', '.join(VENDORS)}")
    return vendor


def vendor_spec(inventory: Inventory, vendor: str) -> VendorSpec | None:
    """The vendor's section of the config, or None when the section is missing."""
    spec: VendorSpec | None = getattr(inventory, _vendor(vendor))
    return spec


def default_spec(vendor: str) -> VendorSpec:
    """The vendor's public API, for checking a key before the config names a zone or domain."""
    vendor = _vendor(vendor)
    if vendor == "cloudflare":
        return CloudflareSpec(zone="")
    if vendor == "stripe":
        return StripeSpec()
    return MailgunSpec(domain="")


class _SessionKeys:
    """Keys set up in this session (kept in memory only). Thread-safe; never printed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, str] = {}

    def get(self, vendor: str) -> str | None:
        with self._lock:
            return self._keys.get(vendor)

    def put(self, vendor: str, key: str) -> None:
        with self._lock:
            self._keys[vendor] = key

    def drop(self, vendor: str) -> None:
        with self._lock:
            self._keys.pop(vendor, None)

    def __repr__(self) -> str:
        with self._lock:
            return f"_SessionKeys(vendors={sorted(self._keys)})"


# One memory per secret store (so per context, and per test); it goes when the store goes.
_SESSIONS: weakref.WeakKeyDictionary[Any, _SessionKeys] = weakref.WeakKeyDictionary()
_SESSIONS_LOCK = threading.Lock()


def _session(secrets: SecretSource) -> _SessionKeys:
    with _SESSIONS_LOCK:
        keys = _SESSIONS.get(secrets)
        if keys is None:
            keys = _SESSIONS[secrets] = _SessionKeys()
        return keys


def remember_for_session(secrets: SecretSource, vendor: str, key: str) -> None:
    """Keep a key in memory for this session: it wins over the environment and the keyring."""
    _session(secrets).put(_vendor(vendor), key.strip())


def forget_session_key(secrets: SecretSource, vendor: str) -> None:
    _session(secrets).drop(_vendor(vendor))


def find_key(secrets: SecretSource, vendor: str) -> tuple[str, KeySource] | None:
    """The key and where it came from: a key set up in this session first, then the vendor's
    environment variable, then the keyring (through ``SecretStore.api_key``). Reads the keyring:
    call it off the GUI thread."""
    vendor = _vendor(vendor)
    remembered = _session(secrets).get(vendor)
    if remembered:
        return remembered, "session"
    key = secrets.api_key(vendor)
    if not key or not key.strip():
        return None
    from_env = os.environ.get(ENV_VARS[vendor])
    return key, "environment" if from_env and from_env == key else "keyring"


@dataclass(frozen=True)
class Access:
    """Whether a vendor can be used, and why not. Holds no key."""

    vendor: str
    spec: VendorSpec | None
    key_source: KeySource | None

    @property
    def label(self) -> str:
        return LABELS[self.vendor]

    @property
    def configured(self) -> bool:
        return self.spec is not None

    @property
    def ready(self) -> bool:
        return self.spec is not None and self.key_source is not None

    @property
    def reason(self) -> Literal["no-config", "no-key"] | None:
        if self.spec is None:
            return "no-config"
        return "no-key" if self.key_source is None else None

    @property
    def problem(self) -> str:
        """What the operator should do, in a sentence or two; empty when ready."""
        if self.spec is None:
            return (f"{self.label} is not in the config yet. Add a [{self.vendor}] section to the config file "
                    f"(for example:\n{CONFIG_HINTS[self.vendor]}\n) and reload, then set up its API key.")
        if self.key_source is None:
            return (f"No {self.label} API key was found: not in the keyring (entry '{self.vendor}' of service "
                    f"'panel') nor in ${ENV_VARS[self.vendor]}. Set one up to use this page.")
        return ""

    @property
    def source_text(self) -> str:
        return {"session": "kept in memory for this session", "environment": f"from ${ENV_VARS[self.vendor]}",
                "keyring": "from the keyring", None: "none"}[self.key_source]

    def not_set_up(self) -> VendorNotSetUp:
        assert self.reason is not None
        return VendorNotSetUp(self.vendor, self.reason, self.problem)


def access(context: ContextLike, vendor: str) -> Access:
    """Is the vendor configured, and is there a key? Reads the keyring: off the GUI thread."""
    vendor = _vendor(vendor)
    spec = vendor_spec(context.inventory, vendor)
    found = find_key(context.secrets, vendor)
    return Access(vendor, spec, found[1] if found else None)


# -- clients -----------------------------------------------------------------------------------------


def build_client(vendor: str, spec: VendorSpec, key: str, *, retry: RetryPolicy = PAGE_RETRY,
                 timeouts: Timeouts = PAGE_TIMEOUTS) -> VendorClient:
    vendor = _vendor(vendor)
    if vendor == "cloudflare":
        assert isinstance(spec, CloudflareSpec)
        return CloudflareClient(spec, key, retry=retry, timeouts=timeouts)
    if vendor == "stripe":
        assert isinstance(spec, StripeSpec)
        return StripeClient(spec, key, retry=retry, timeouts=timeouts)
    assert isinstance(spec, MailgunSpec)
    return MailgunClient(spec, key, retry=retry, timeouts=timeouts)


def _open(context: ContextLike, vendor: str, retry: RetryPolicy, timeouts: Timeouts) -> VendorClient:
    spec = vendor_spec(context.inventory, vendor)
    found = find_key(context.secrets, vendor)
    if spec is None or found is None:
        raise Access(vendor, spec, found[1] if found else None).not_set_up()
    return build_client(vendor, spec, found[0], retry=retry, timeouts=timeouts)


def cloudflare_client(context: ContextLike, *, retry: RetryPolicy = PAGE_RETRY,
                      timeouts: Timeouts = PAGE_TIMEOUTS) -> CloudflareClient:
    """The configured zone's client. Raises VendorNotSetUp. Close it (``with``) when done."""
    client = _open(context, "cloudflare", retry, timeouts)
    assert isinstance(client, CloudflareClient)
    return client


def stripe_client(context: ContextLike, *, retry: RetryPolicy = PAGE_RETRY,
                  timeouts: Timeouts = PAGE_TIMEOUTS) -> StripeClient:
    client = _open(context, "stripe", retry, timeouts)
    assert isinstance(client, StripeClient)
    return client


def mailgun_client(context: ContextLike, *, retry: RetryPolicy = PAGE_RETRY,
                   timeouts: Timeouts = PAGE_TIMEOUTS) -> MailgunClient:
    client = _open(context, "mailgun", retry, timeouts)
    assert isinstance(client, MailgunClient)
    return client


# -- verifying and storing a key ---------------------------------------------------------------------


@dataclass(frozen=True)
class KeyCheck:
    """The outcome of checking a key with the vendor. ``ok`` False: the vendor refused it."""

    vendor: str
    ok: bool
    message: str
    warning: str = ""
    account: str = ""  # the account or token the key belongs to, as the vendor names it
    test_mode: bool = False


def verify_key(vendor: str, spec: VendorSpec | None, key: str, *, cancel: CancelToken = NEVER_CANCELLED,
               retry: RetryPolicy = PAGE_RETRY, timeouts: Timeouts = PAGE_TIMEOUTS) -> KeyCheck:
    """Ask the vendor whether the key works. A refused key gives ``ok=False`` with a message; a
    vendor that cannot be reached (or throttles) raises its VendorError, whose message never holds
    the key."""
    vendor = _vendor(vendor)
    label = LABELS[vendor]
    key = key.strip()
    if not key:
        return KeyCheck(vendor, False, f"The {label} key is empty.")
    if any(ch.isspace() for ch in key):
        return KeyCheck(vendor, False, f"The {label} key has spaces or line breaks inside it; paste the key "
                                       "alone.")
    spec = spec or default_spec(vendor)
    try:
        with build_client(vendor, spec, key, retry=retry, timeouts=timeouts) as client:
            if isinstance(client, CloudflareClient):
                token = client.verify_token(cancel=cancel)
                if not token.active:
                    return KeyCheck(vendor, False, f"Cloudflare knows this token, but it is {token.status}. "
                                                   "Create or roll a token in the Cloudflare dashboard.")
                expires = f", expires {token.expires_on:%Y-%m-%d}" if token.expires_on else ""
                return KeyCheck(vendor, True, f"Cloudflare accepted the token (active{expires}).",
                                account=f"token {token.id}")
            if isinstance(client, StripeClient):
                account: Account = client.verify_key(cancel=cancel)
                mode = "test mode" if account.test_mode else "LIVE mode"
                return KeyCheck(vendor, True, f"Stripe accepted the key: account {account.name} ({mode}).",
                                account=account.name, test_mode=account.test_mode)
            domains = client.domains(cancel=cancel)
            names = [d.name for d in domains]
            warning = ""
            wanted = spec.domain if isinstance(spec, MailgunSpec) else ""
            if wanted and wanted not in names:
                region = "EU" if ".eu." in spec.base_url else "US"
                warning = (f"The key works, but {wanted} is not among the {len(names)} domain(s) this key sees in "
                           f"the {region} region. If the domain lives in the other region, change [mailgun] "
                           "base_url (https://api.eu.mailgun.net for the EU, https://api.mailgun.net for the US).")
            return KeyCheck(vendor, True, f"Mailgun accepted the key ({len(names)} domain(s)).", warning=warning)
    except VendorError as error:
        if key_refused(error):
            return KeyCheck(vendor, False, error.message)
        raise


@dataclass(frozen=True)
class KeySetUp:
    """What :func:`set_up_key` did. ``stored`` is where the key now lives: "keyring" or "session"
    (memory only, because no keyring works); None when the vendor refused it."""

    check: KeyCheck
    stored: Literal["keyring", "session"] | None
    message: str


def set_up_key(secrets: SecretSource, vendor: str, spec: VendorSpec | None, key: str, *,
               cancel: CancelToken = NEVER_CANCELLED, retry: RetryPolicy = PAGE_RETRY,
               timeouts: Timeouts = PAGE_TIMEOUTS) -> KeySetUp:
    """Verify the key, then store it in the keyring under the vendor's entry. When no keyring
    works, keep it in memory for this session and say so. Either way this session uses it from
    now on (over an environment variable). Reads and writes the keyring: off the GUI thread."""
    vendor = _vendor(vendor)
    key = key.strip()
    check = verify_key(vendor, spec, key, cancel=cancel, retry=retry, timeouts=timeouts)
    if not check.ok:
        return KeySetUp(check, None, check.message)
    cancel.raise_if_cancelled(f"Setting up the {LABELS[vendor]} key")
    remember_for_session(secrets, vendor, key)
    try:
        secrets.set(vendor, key)
    except SecretUnavailable as error:
        message = (f"{check.message} No keyring works here ({error}), so the key is kept in memory for this "
                   "session only; you will be asked for it again next time.")
        return KeySetUp(check, "session", message)
    message = f"{check.message} Stored in the keyring (service 'panel', entry '{vendor}')."
    if os.environ.get(ENV_VARS[vendor]):
        message += (f" ${ENV_VARS[vendor]} is also set: this session uses the new key, but the next start "
                    "will use the environment's again.")
    return KeySetUp(check, "keyring", message)


# -- waiting out a 429 -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateLimitWait:
    """Reported while :func:`call_patiently` waits for the vendor to take requests again."""

    vendor: str
    seconds: float
    attempt: int

    @property
    def whole_seconds(self) -> int:
        return max(1, math.ceil(self.seconds))

    @property
    def message(self) -> str:
        return f"{LABELS.get(self.vendor, self.vendor)} rate limited, retrying in {self.whole_seconds} s"


def call_patiently(operation: Callable[[], T], *, cancel: CancelToken = NEVER_CANCELLED,
                   on_wait: Callable[[RateLimitWait], object] | None = None,
                   max_wait: float = MAX_RATE_LIMIT_WAIT, max_waits: int = MAX_RATE_LIMIT_WAITS) -> T:
    """Run ``operation``; when the vendor answers 429 with a Retry-After we can afford, tell
    ``on_wait``, wait (cancellably) and run it again. A 429 means the vendor did not act, so this is
    safe for changes too; Stripe payments also carry one idempotency key across these tries."""
    waits = 0
    while True:
        try:
            return operation()
        except ApiRateLimited as error:
            waits += 1
            seconds = error.retry_after
            if seconds is None or seconds > max_wait or waits > max_waits:
                raise
            if on_wait is not None:
                on_wait(RateLimitWait(error.vendor, seconds, waits))
            if cancel.wait(seconds):
                raise Cancelled(f"Waiting for {LABELS.get(error.vendor, error.vendor)}") from None


# -- Cloudflare --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordCheck:
    """Where an address record points. ``stray``: an address no server of the inventory has."""

    servers: tuple[str, ...] = ()
    stray: bool = False
    applies: bool = False  # only A and AAAA records are checked

    @property
    def text(self) -> str:
        if not self.applies:
            return ""
        return ", ".join(self.servers) if self.servers else "not in inventory"


def inventory_addresses(inventory: Inventory, *, resolve: bool = True) -> dict[str, tuple[str, ...]]:
    """Every address of the inventory's servers -> the servers with that address. Host names are
    resolved when ``resolve`` (a DNS lookup: off the GUI thread); one that does not resolve is skipped."""
    found: dict[str, list[str]] = {}

    def add(address: str, server: str) -> None:
        try:
            canonical = str(ipaddress.ip_address(address.split("%", 1)[0]))
        except ValueError:
            return
        names = found.setdefault(canonical, [])
        if server not in names:
            names.append(server)

    for name, spec in inventory.servers.items():
        host = spec.host.strip("[]")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not resolve:
                continue
            try:
                infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
            except (OSError, UnicodeError):
                continue
            for info in infos:
                add(str(info[4][0]), name)
        else:
            add(host, name)
    return {address: tuple(servers) for address, servers in found.items()}


def check_record(record: DnsRecord, addresses: dict[str, tuple[str, ...]]) -> RecordCheck:
    if record.type not in ("A", "AAAA"):
        return RecordCheck()
    try:
        address = str(ipaddress.ip_address(record.content))
    except ValueError:
        return RecordCheck(stray=True, applies=True)
    servers = addresses.get(address, ())
    return RecordCheck(servers=servers, stray=not servers, applies=True)


def relative_name(name: str, zone: str) -> str:
    """"www.example.com" -> "www"; the zone itself -> "@"."""
    name = name.rstrip(".")
    if name == zone:
        return "@"
    return name[: -len(zone) - 1] if zone and name.endswith("." + zone) else name


def describe_record(record: DnsRecord | DnsRecordInput, zone: str) -> str:
    """"A www -> 203.0.113.5" (the audit's words)."""
    priority = f"{record.priority} " if record.type == "MX" and record.priority is not None else ""
    return f"{record.type} {relative_name(record.name, zone)} -> {priority}{record.content}"


def ttl_text(ttl: int) -> str:
    return "auto" if ttl == 1 else f"{ttl} s"


def record_changes(before: DnsRecord, after: DnsRecordInput, zone: str) -> list[str]:
    """What an edit changes, one line per field ("content: 203.0.113.5 -> 203.0.113.6")."""
    changes = []
    pairs: list[tuple[str, object, object]] = [
        ("type", before.type, after.type.upper()),
        ("name", relative_name(before.name, zone), relative_name(full_record_name(after.name, zone), zone)),
        ("content", before.content, after.content),
        ("ttl", ttl_text(before.ttl), ttl_text(after.ttl)),
        ("proxied", "yes" if before.proxied else "no", "yes" if after.proxied else "no"),
        ("priority", before.priority, after.priority),
        ("comment", before.comment or "", after.comment or ""),
    ]
    for label, old, new in pairs:
        if old != new and not (label == "priority" and before.type != "MX" and after.type.upper() != "MX"):
            changes.append(f"{label}: {old if old not in (None, '') else '(none)'} -> "
                           f"{new if new not in (None, '') else '(none)'}")
    return changes


def full_record_name(name: str, zone: str) -> str:
    """"www" -> "www.example.com"; "@" -> the zone (as Cloudflare stores a record's name)."""
    name = name.strip().rstrip(".").lower()
    if name in ("@", "", zone):
        return zone
    return name if name.endswith("." + zone) else f"{name}.{zone}"


@dataclass(frozen=True)
class ZoneState:
    """The Cloudflare page's top: the zone, its security level and development mode."""

    zone_name: str
    status: str
    plan: str
    paused: bool
    name_servers: tuple[str, ...]
    security: ZoneSetting
    development_mode: ZoneSetting

    @property
    def under_attack(self) -> bool:
        return self.security.value == "under_attack"


def zone_state(client: CloudflareClient, *, cancel: CancelToken = NEVER_CANCELLED) -> ZoneState:
    zone = client.zone(refresh=True, cancel=cancel)
    return ZoneState(zone.name, zone.status, zone.plan, zone.paused, zone.name_servers,
                     client.security_level(cancel=cancel), client.development_mode(cancel=cancel))


UNDER_ATTACK = "under_attack"
CALM_LEVEL = "medium"  # where "Under Attack off" goes when nothing was remembered
LEVEL_BEFORE_ATTACK_KEY = "cloudflare.level_before_under_attack"  # in the store's key-value table


class ValueMemory(Protocol):
    """What :class:`panel.store.Store` offers for small values."""

    def get_value(self, key: str) -> str | None: ...

    def set_value(self, key: str, value: str) -> None: ...


@dataclass(frozen=True)
class AttackSwitch:
    """The outcome of :func:`switch_under_attack`: the zone now, and the levels before and after."""

    zone: ZoneState
    before: str
    after: str
    back_to: str  # where "off" goes next time

    @property
    def detail(self) -> str:
        return f"{'on' if self.after == UNDER_ATTACK else 'off'}: security level {self.before} -> {self.after}"


def switch_under_attack(client: CloudflareClient, on: bool, memory: ValueMemory, *,
                        cancel: CancelToken = NEVER_CANCELLED) -> AttackSwitch:
    """"I'm Under Attack" on (remembering the level it had), or off (back to that level, else
    medium). The window's button, the palette and ``python -m panel cloudflare under-attack`` share
    this, so "off" finds the level whichever of them turned it on."""
    before = client.security_level(cancel=cancel).value
    if on:
        if before != UNDER_ATTACK:
            memory.set_value(LEVEL_BEFORE_ATTACK_KEY, before)
        target = UNDER_ATTACK
    else:
        target = memory.get_value(LEVEL_BEFORE_ATTACK_KEY) or CALM_LEVEL
        if target == UNDER_ATTACK:
            target = CALM_LEVEL
    client.set_security_level(target, cancel=cancel)
    back_to = memory.get_value(LEVEL_BEFORE_ATTACK_KEY) or CALM_LEVEL
    return AttackSwitch(zone_state(client, cancel=cancel), before, target, back_to)


# -- Stripe ------------------------------------------------------------------------------------------

# The most urgent first: what a customer's row shows when it has several subscriptions.
STATUS_URGENCY = ("unpaid", "past_due", "incomplete", "active", "trialing", "paused", "incomplete_expired",
                  "canceled")


def most_urgent(statuses: Iterable[str]) -> str:
    ranked = sorted(set(statuses), key=lambda s: STATUS_URGENCY.index(s) if s in STATUS_URGENCY else 99)
    return ranked[0] if ranked else ""


def stripe_dashboard_url(spec: StripeSpec, object_id: str, *, test_mode: bool) -> str:
    """The object's page in Stripe's dashboard (customers cus_…, invoices in_…, subscriptions sub_…)."""
    kinds = {"cus": "customers/", "in": "invoices/", "sub": "subscriptions/"}
    kind = kinds.get(object_id.split("_", 1)[0], "search?query=")
    test = "/test" if test_mode else ""
    return f"{spec.dashboard_url.rstrip('/')}{test}/{kind}{object_id}"


def money(cents: int, currency: str) -> str:
    return f"{cents / 100:,.2f} {currency.upper()}"


def customer_pages(client: StripeClient, *, cancel: CancelToken = NEVER_CANCELLED,
                   on_wait: Callable[[RateLimitWait], object] | None = None,
                   page_size: int = PAGE_LIMIT) -> Iterator[list[Customer]]:
    """Every customer, newest first, one list per request (``page_size``, Stripe's 100 at most), so
    a window can show each page as it arrives. A 429 is waited out for that one request (see
    :func:`call_patiently`), never by reading everything again."""
    starting_after: str | None = None
    for _ in range(MAX_PAGES):
        params: dict[str, Any] = {"limit": page_size}
        if starting_after:
            params["starting_after"] = starting_after
        body = expect_dict(call_patiently(partial(client.http.get, "/customers", params=params, cancel=cancel),
                                          cancel=cancel, on_wait=on_wait), "stripe", "/customers")
        items = expect_list(body.get("data"), "stripe", "/customers")
        if items:
            yield [parse_customer(raw) for raw in items]
        if not body.get("has_more") or not items:
            return
        starting_after = str(expect_dict(items[-1], "stripe", "/customers").get("id"))


@dataclass(frozen=True)
class BillingOverview:
    """Everything the Billing page shows besides the customers, from one pass over the subscriptions."""

    account: Account
    status_counts: dict[str, int] = field(hash=False)
    customer_status: dict[str, str] = field(hash=False, repr=False)  # customer id -> most urgent status
    subscription_groups: dict[str, int] = field(hash=False, repr=False)  # subscription id -> metadata.group_id
    mrr: Mrr
    delinquent: tuple[DelinquentSubscription, ...]
    failures: tuple[PaymentFailure, ...]
    failures_since: datetime
    requests: int = 0

    @property
    def amount_at_risk(self) -> dict[str, int]:
        owed: Counter[str] = Counter()
        for entry in self.delinquent:
            for invoice in entry.failed_invoices:
                owed[invoice.currency] += invoice.amount_remaining
        return dict(owed)


def mrr_of(subscriptions: Iterable[Subscription]) -> Mrr:
    """The list-price MRR over active and past_due subscriptions, as ``StripeClient.mrr`` counts it."""
    by_currency: Counter[str] = Counter()
    counted = 0
    for subscription in subscriptions:
        if subscription.status not in MRR_STATUSES:
            continue
        counted += 1
        for item in subscription.items:
            if item.price:
                by_currency[item.price.currency] += round(item.price.monthly(item.quantity))
    currency, amount = by_currency.most_common(1)[0] if by_currency else ("usd", 0)
    return Mrr(amount=amount, currency=currency, by_currency=dict(by_currency), subscriptions=counted)


def billing_overview(client: StripeClient, *, failures_days: int = 7, now: datetime | None = None,
                     cancel: CancelToken = NEVER_CANCELLED) -> BillingOverview:
    """Account, subscription states, MRR, past_due/unpaid subscriptions with their failed invoices,
    and the recent ``invoice.payment_failed`` events: every subscription is read once (100 per
    request), open invoices once, events once. The subscriptions are folded in as they arrive and
    only the delinquent ones are kept, so thousands of them leave little behind for the garbage
    collector (whose full passes hold the GIL, and so the window)."""
    started = client.http.stats.requests
    now = now or datetime.now(UTC)
    account = client.verify_key(cancel=cancel)
    counts: Counter[str] = Counter()
    urgent: dict[str, str] = {}
    groups: dict[str, int] = {}
    by_currency: Counter[str] = Counter()
    counted = 0
    kept: list[Subscription] = []
    for raw in stripe_list(client.http, "/subscriptions", {"status": "all"}, limit=PAGE_LIMIT, cancel=cancel):
        subscription = parse_subscription(raw)
        status = subscription.status
        counts[status] += 1
        customer = subscription.customer_id
        urgent[customer] = most_urgent((urgent[customer], status)) if customer in urgent else status
        if subscription.group_id is not None:
            groups[subscription.id] = subscription.group_id
        if status in MRR_STATUSES:
            counted += 1
            for item in subscription.items:
                if item.price:
                    by_currency[item.price.currency] += round(item.price.monthly(item.quantity))
        if status in DELINQUENT_STATUSES:
            kept.append(subscription)
    open_invoices: dict[str, list[Invoice]] = {}
    for invoice in client.invoices(status="open", cancel=cancel):
        if invoice.subscription_id:
            open_invoices.setdefault(invoice.subscription_id, []).append(invoice)
    delinquent = tuple(DelinquentSubscription(s, tuple(open_invoices.get(s.id, ()))) for s in kept)
    since = now - timedelta(days=failures_days)
    failures = tuple(client.payment_failures(since=since, cancel=cancel))
    currency, amount = by_currency.most_common(1)[0] if by_currency else ("usd", 0)
    mrr = Mrr(amount=amount, currency=currency, by_currency=dict(by_currency), subscriptions=counted)
    return BillingOverview(account=account, status_counts=dict(counts), customer_status=urgent,
                           subscription_groups=groups, mrr=mrr, delinquent=delinquent, failures=failures,
                           failures_since=since, requests=client.http.stats.requests - started)


@dataclass(frozen=True)
class GroupBilling:
    """One group's billing: its Stripe customers (metadata.group_id), their subscriptions and
    what they still owe. For the Groups page and ``python -m panel stripe group``."""

    group_id: int
    customers: tuple[Customer, ...]
    subscriptions: tuple[Subscription, ...]
    open_invoices: tuple[Invoice, ...]
    test_mode: bool
    dashboard_urls: dict[str, str] = field(hash=False)  # customer id -> its page in Stripe's dashboard

    @property
    def status(self) -> str:
        """The most urgent subscription status ("unpaid", "past_due", "active", ...), "none" when
        the group has no subscription, "no customer" when Stripe does not know the group."""
        if not self.customers:
            return "no customer"
        return most_urgent(s.status for s in self.subscriptions) or "none"

    @property
    def monthly(self) -> dict[str, int]:
        """What the group pays per month (active and past_due subscriptions), per currency, in cents."""
        return dict(mrr_of(self.subscriptions).by_currency)

    @property
    def amount_due(self) -> dict[str, int]:
        owed: Counter[str] = Counter()
        for invoice in self.open_invoices:
            owed[invoice.currency] += invoice.amount_remaining
        return dict(owed)

    @property
    def attempt_count(self) -> int:
        return max((i.attempt_count for i in self.open_invoices), default=0)

    @property
    def delinquent(self) -> bool:
        return self.status in DELINQUENT_STATUSES or any(c.delinquent for c in self.customers)

    @property
    def summary(self) -> str:
        """One line for a group's page: "past_due: 98.00 USD owed after 2 attempts; 49.00 USD/month"."""
        if not self.customers:
            return "No Stripe customer has this group's id (metadata.group_id)."
        parts = [self.status]
        if self.amount_due:
            owed = ", ".join(money(c, cur) for cur, c in sorted(self.amount_due.items()))
            parts.append(f"{owed} owed after {self.attempt_count} attempt(s)")
        if self.monthly:
            parts.append(", ".join(f"{money(c, cur)}/month" for cur, c in sorted(self.monthly.items())))
        return "; ".join(parts)


def billing_for_group(source: ContextLike | tuple[StripeSpec, str], group_id: int, *,
                      cancel: CancelToken = NEVER_CANCELLED, retry: RetryPolicy = PAGE_RETRY,
                      timeouts: Timeouts = PAGE_TIMEOUTS) -> GroupBilling:
    """A group's billing state, from a context (its [stripe] section and key) or a (spec, key) pair.

    One search for the group's customers, then one request for each customer's subscriptions and
    one for its open invoices. Raises VendorNotSetUp when Stripe is not set up, else the client's
    typed errors. Does network I/O: call it on a worker."""
    if isinstance(source, tuple):
        spec, key = source
        client = StripeClient(spec, key, retry=retry, timeouts=timeouts)
    else:
        client = stripe_client(source, retry=retry, timeouts=timeouts)
    with client:
        customers = client.customers_for_group(int(group_id), cancel=cancel)
        subscriptions: list[Subscription] = []
        invoices: list[Invoice] = []
        for customer in customers:
            subscriptions += client.subscriptions(status="all", customer_id=customer.id, cancel=cancel)
            invoices += client.invoices(status="open", customer_id=customer.id, cancel=cancel)
        return GroupBilling(
            group_id=int(group_id), customers=tuple(customers), subscriptions=tuple(subscriptions),
            open_invoices=tuple(invoices), test_mode=client.test_mode,
            dashboard_urls={c.id: stripe_dashboard_url(client.spec, c.id, test_mode=client.test_mode)
                            for c in customers})


def pay_invoice(client: StripeClient, invoice_id: str, idempotency_key: str, *,
                cancel: CancelToken = NEVER_CANCELLED,
                on_wait: Callable[[RateLimitWait], object] | None = None) -> Invoice:
    """Retry an open invoice's payment with the caller's idempotency key (one per click). The client
    resends the same key when an answer is lost, and so does every wait out of a 429 here, so the
    customer is charged at most once."""
    if not idempotency_key:
        raise ApiValidationError("A payment retry needs an idempotency key.", vendor="stripe", code="no_key")
    return call_patiently(lambda: client.retry_invoice_payment(invoice_id, idempotency_key=idempotency_key,
                                                               cancel=cancel), cancel=cancel, on_wait=on_wait)


# -- Mailgun -----------------------------------------------------------------------------------------


def region_of(spec: MailgunSpec) -> str:
    """The API region the config's base_url names: "EU", "US", or "custom" (a proxy, a stand-in)."""
    host = spec.base_url.split("://", 1)[-1].split("/", 1)[0].lower()
    if host == "api.eu.mailgun.net":
        return "EU"
    if host == "api.mailgun.net":
        return "US"
    return "custom"


def domain_region(domain: MailDomain) -> str | None:
    """Where a domain lives, read from the DNS records Mailgun asks it to publish (EU records point
    at eu.mailgun.org); None when they do not say."""
    values = [r.value.lower() for r in domain.sending_records + domain.receiving_records]
    if any(v.endswith("eu.mailgun.org") for v in values):
        return "EU"
    if any(v.endswith("mailgun.org") for v in values):
        return "US"
    return None


def mail_domains(client: MailgunClient, *, limit: int = 25,
                 cancel: CancelToken = NEVER_CANCELLED) -> list[MailDomain]:
    """Every domain of the region with its DNS records (the configured domain first)."""
    names = [d.name for d in client.domains(cancel=cancel)]
    wanted = client.spec.domain
    ordered = ([wanted] if wanted in names else []) + [n for n in names if n != wanted]
    return [client.domain(name, cancel=cancel) for name in ordered[:limit]]
