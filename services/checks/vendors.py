"""Checks of the outside services: Stripe (failed payments, past_due), Mailgun (permanent failures,
unverified domains) and Cloudflare (zone not active, under attack).

Each runs only when its API key is there, through the small clients in ``services``. A vendor
that refuses the key, throttles or fails gives an UNKNOWN with the client's message, which
never holds the key (and is scrubbed once more here, to be sure).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.cancel import NEVER_CANCELLED, CancelToken
from services.checks import ids
from services.checks.model import PAGE_BILLING, PAGE_CLOUDFLARE, PAGE_MAIL, Action, CheckResult, Severity
from services.errors import Cancelled, PanelError
from services.inventory import CloudflareSpec, Inventory, MailgunSpec, StripeSpec

FAILURE_RATE_WARNING = 0.05  # used when services.mailgun does not say


@dataclass(frozen=True)
class VendorKeys:
    """The API keys that were found (keyring or the vendors' environment variables). Never printed."""

    stripe: str | None = field(default=None, repr=False)
    mailgun: str | None = field(default=None, repr=False)
    cloudflare: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        present = [name for name in ("stripe", "mailgun", "cloudflare") if getattr(self, name)]
        return f"VendorKeys(present={present})"

    def scrub(self, text: str) -> str:
        for key in (self.stripe, self.mailgun, self.cloudflare):
            if key:
                text = text.replace(key, "***")
        return text


def _module(name: str) -> Any:
    """services.stripe etc. — written by another part of the panel; a missing one gives an UNKNOWN."""
    return importlib.import_module(name)


def _retry_policy() -> Any:
    """Shorter than the clients' default: a sweep would rather report UNKNOWN than wait a minute."""
    from services.http import RetryPolicy

    return RetryPolicy(attempts=3, backoff_base=0.5, backoff_cap=4.0, retry_after_cap=10.0)


def _api_problem(check: str, vendor: str, error: BaseException, keys: VendorKeys, page: str) -> CheckResult:
    text = keys.scrub(str(error))
    status = getattr(error, "status", None)
    evidence = [f"HTTP {status}" if status else error.__class__.__name__]
    return CheckResult("", check, Severity.UNKNOWN, f"The {vendor} checks could not run: {text}", "",
                       tuple(keys.scrub(e) for e in evidence), Action(f"Show {vendor}", page))


def _guard(check: str, vendor: str, page: str, keys: VendorKeys,
           body: Callable[[], list[CheckResult]]) -> list[CheckResult]:
    try:
        results = body()
    except Cancelled:
        raise
    except ModuleNotFoundError as error:
        return [CheckResult("", check, Severity.UNKNOWN, f"The {vendor} checks are not available in this build "
                            f"({error.name} is missing).", "", (), Action(f"Show {vendor}", page))]
    except PanelError as error:
        return [_api_problem(check, vendor, error, keys, page)]
    except Exception as error:  # an answer of an unexpected shape: say so, never crash the sweep
        return [CheckResult("", check, Severity.UNKNOWN, f"The {vendor} checks failed: "
                            f"{error.__class__.__name__}: {keys.scrub(str(error))}", "", (),
                            Action(f"Show {vendor}", page))]
    # Every message that came back from a vendor is scrubbed once more.
    return [CheckResult(r.server, r.check, r.severity, keys.scrub(r.summary), r.subject,
                        tuple(keys.scrub(e) for e in r.evidence), r.action, r.data) for r in results] + \
        [CheckResult("", check, Severity.OK, f"The {vendor} API answered.")]


def _money(amounts: dict[str, int]) -> str:
    return ", ".join(f"{cents / 100:,.2f} {currency.upper()}" for currency, cents in sorted(amounts.items())) or "0"


def stripe_checks(spec: StripeSpec, key: str, *, keys: VendorKeys, hours: int = 24,
                  cancel: CancelToken = NEVER_CANCELLED) -> list[CheckResult]:
    def body() -> list[CheckResult]:
        stripe = _module("services.stripe")
        action = Action("Show billing", PAGE_BILLING)
        with stripe.StripeClient(spec, key, retry=_retry_policy()) as client:
            facts = stripe.billing_check(client, hours=hours, cancel=cancel)
        results = []
        delinquent = list(getattr(facts, "delinquent", ()))
        evidence = []
        for entry in delinquent[:50]:
            subscription = entry.subscription
            evidence.append(f"{subscription.id} ({subscription.status}) customer {subscription.customer_id}: "
                            f"{entry.amount_due / 100:,.2f} due after {entry.attempt_count} attempt(s)")
        if facts.failed_payments:
            results.append(CheckResult("", ids.STRIPE_FAILED, Severity.WARNING,
                                       f"{facts.failed_payments} Stripe payment(s) failed in the last {hours} h.",
                                       "", tuple(evidence), action, {"count": facts.failed_payments}))
        else:
            results.append(CheckResult("", ids.STRIPE_FAILED, Severity.OK, f"No failed Stripe payments in the last "
                                       f"{hours} h."))
        at_risk = _money(dict(getattr(facts, "amount_at_risk", {}) or {}))
        if facts.past_due or facts.unpaid:
            results.append(CheckResult("", ids.STRIPE_PAST_DUE, Severity.WARNING,
                                       f"{facts.past_due} subscription(s) past due and {facts.unpaid} unpaid on "
                                       f"Stripe ({at_risk} at risk).", "", tuple(evidence), action,
                                       {"past_due": facts.past_due, "unpaid": facts.unpaid}))
        else:
            results.append(CheckResult("", ids.STRIPE_PAST_DUE, Severity.OK, "No Stripe subscription is past due."))
        return results

    return _guard(ids.STRIPE_API, "Stripe", PAGE_BILLING, keys, body)


def mailgun_checks(spec: MailgunSpec, key: str, *, keys: VendorKeys, hours: int = 24,
                   warn_rate: float | None = None, cancel: CancelToken = NEVER_CANCELLED) -> list[CheckResult]:
    def body() -> list[CheckResult]:
        mailgun = _module("services.mailgun")
        limit = warn_rate if warn_rate is not None else getattr(mailgun, "FAILURE_RATE_WARNING", FAILURE_RATE_WARNING)
        action = Action("Show mail", PAGE_MAIL)
        with mailgun.MailgunClient(spec, key, retry=_retry_policy()) as client:
            facts = mailgun.mail_check(client, hours=hours, warn_rate=limit, cancel=cancel)
        rate = facts.failure_rate
        finished = rate.delivered + rate.failed_permanent
        evidence = (f"accepted {rate.accepted}, delivered {rate.delivered}, failed for good {rate.failed_permanent} "
                    f"in the last {rate.hours} h",)
        results = []
        if finished and rate.rate >= limit:
            results.append(CheckResult("", ids.MAILGUN_FAILURES, Severity.WARNING,
                                       f"{rate.rate:.1%} of deliveries from {spec.domain} failed for good in the "
                                       f"last {rate.hours} h (limit {limit:.0%}).", spec.domain, evidence, action,
                                       {"rate": round(rate.rate, 4)}))
        else:
            results.append(CheckResult("", ids.MAILGUN_FAILURES, Severity.OK,
                                       f"{rate.rate:.1%} permanent failures from {spec.domain} in the last "
                                       f"{rate.hours} h.", spec.domain, evidence, None, {"rate": round(rate.rate, 4)}))
        for domain in facts.unverified_domains:
            results.append(CheckResult("", ids.MAILGUN_UNVERIFIED, Severity.WARNING,
                                       f"The Mailgun domain {domain} is not verified: mail from it may be refused. "
                                       "Publish its DNS records and verify it again.", domain, (), action))
        if not facts.unverified_domains:
            results.append(CheckResult("", ids.MAILGUN_UNVERIFIED, Severity.OK, "Every Mailgun domain is verified."))
        return results

    return _guard(ids.MAILGUN_API, "Mailgun", PAGE_MAIL, keys, body)


def cloudflare_checks(spec: CloudflareSpec, key: str, *, keys: VendorKeys,
                      cancel: CancelToken = NEVER_CANCELLED) -> list[CheckResult]:
    def body() -> list[CheckResult]:
        cloudflare = _module("services.cloudflare")
        action = Action("Show Cloudflare", PAGE_CLOUDFLARE)
        with cloudflare.CloudflareClient(spec, key, retry=_retry_policy()) as client:
            facts = cloudflare.check_zone(client, cancel=cancel)
        results = []
        zone = facts.zone
        if not facts.active:
            results.append(CheckResult("", ids.CLOUDFLARE_ZONE, Severity.CRITICAL,
                                       f"The Cloudflare zone {zone} is {facts.status}, not active: Cloudflare is not "
                                       "serving it.", zone, tuple(facts.problems), action))
        else:
            results.append(CheckResult("", ids.CLOUDFLARE_ZONE, Severity.OK, f"The Cloudflare zone {zone} is active.",
                                       zone))
        evidence = (f"last hour: {facts.requests_last_hour} requests, {facts.threats_last_hour} threats, "
                    f"{facts.firewall_events_last_hour} firewall events; security level {facts.security_level}",)
        if facts.attack_suspected:
            results.append(CheckResult("", ids.CLOUDFLARE_ATTACK, Severity.CRITICAL,
                                       f"The Cloudflare zone {zone} looks under attack.", zone,
                                       evidence + tuple(facts.problems), action))
        elif facts.under_attack_mode:
            results.append(CheckResult("", ids.CLOUDFLARE_ATTACK, Severity.WARNING,
                                       f"\"I'm Under Attack\" mode is on for {zone}: every visitor is challenged.",
                                       zone, evidence, action))
        else:
            results.append(CheckResult("", ids.CLOUDFLARE_ATTACK, Severity.OK, f"No attack on {zone}.", zone,
                                       evidence))
        return results

    return _guard(ids.CLOUDFLARE_API, "Cloudflare", PAGE_CLOUDFLARE, keys, body)


def vendor_jobs(inventory: Inventory, keys: VendorKeys, *,
                cancel: CancelToken = NEVER_CANCELLED) -> list[Callable[[], list[CheckResult]]]:
    """One callable per vendor whose key is there (run them in parallel)."""
    jobs: list[Callable[[], list[CheckResult]]] = []
    if keys.stripe:
        stripe_spec = inventory.stripe or StripeSpec()
        stripe_key = keys.stripe
        jobs.append(lambda: stripe_checks(stripe_spec, stripe_key, keys=keys, cancel=cancel))
    if keys.mailgun and inventory.mailgun is not None:
        mailgun_spec, mailgun_key = inventory.mailgun, keys.mailgun
        jobs.append(lambda: mailgun_checks(mailgun_spec, mailgun_key, keys=keys, cancel=cancel))
    if keys.cloudflare and inventory.cloudflare is not None:
        cloudflare_spec, cloudflare_key = inventory.cloudflare, keys.cloudflare
        jobs.append(lambda: cloudflare_checks(cloudflare_spec, cloudflare_key, keys=keys, cancel=cancel))
    return jobs
