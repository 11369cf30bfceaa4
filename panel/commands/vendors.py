"""The outside services from the command line.

- ``vendors verify [--json]``: check each configured vendor's key with the vendor (exit 0 when
  every configured vendor accepts its key, 1 otherwise).
- ``cloudflare under-attack on|off [--yes]``: the incident switch; ``off`` goes back to the level
  the zone had before (as the window's button does).
- ``cloudflare purge (--everything | URL...) [--yes]``.
- ``stripe group GROUP_ID [--json]``: one group's billing state.
- ``mailgun unsuppress bounces|complaints|unsubscribes ADDRESS [--yes]``.

Keys come from the vendors' environment variables (``CLOUDFLARE_API_TOKEN``, ``STRIPE_API_KEY``,
``MAILGUN_API_KEY``) or the keyring; they are never printed. Changes ask in a terminal, take
``--yes`` from a script, refuse otherwise, and are written to the audit log.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    vendors = commands.add_parser("vendors", help="check the Cloudflare, Stripe and Mailgun keys")
    vendors_commands = vendors.add_subparsers(dest="vendors_command", metavar="COMMAND", required=True)
    verify = vendors_commands.add_parser("verify", help="check each configured vendor's key with the vendor")
    verify.add_argument("--json", action="store_true", help="print a JSON list")
    verify.set_defaults(handler=cmd_verify)

    cloudflare = commands.add_parser("cloudflare", help="the Cloudflare zone: Under Attack mode, cache purges")
    cloudflare_commands = cloudflare.add_subparsers(dest="cloudflare_command", metavar="COMMAND", required=True)
    attack = cloudflare_commands.add_parser("under-attack", help="turn \"I'm Under Attack\" mode on, or off again")
    attack.add_argument("switch", choices=("on", "off"))
    attack.add_argument("--yes", action="store_true", help="do it without asking (for scripts)")
    attack.set_defaults(handler=cmd_under_attack)
    purge = cloudflare_commands.add_parser("purge", help="purge the whole cache, or some URLs")
    purge.add_argument("urls", nargs="*", metavar="URL")
    purge.add_argument("--everything", action="store_true", help="purge everything")
    purge.add_argument("--yes", action="store_true", help="do it without asking (for scripts)")
    purge.set_defaults(handler=cmd_purge)

    stripe = commands.add_parser("stripe", help="billing on Stripe")
    stripe_commands = stripe.add_subparsers(dest="stripe_command", metavar="COMMAND", required=True)
    group = stripe_commands.add_parser("group", help="a group's customers, subscriptions and what it owes")
    group.add_argument("group_id", type=int)
    group.add_argument("--json", action="store_true")
    group.set_defaults(handler=cmd_stripe_group)

    mailgun = commands.add_parser("mailgun", help="mail on Mailgun")
    mailgun_commands = mailgun.add_subparsers(dest="mailgun_command", metavar="COMMAND", required=True)
    unsuppress = mailgun_commands.add_parser("unsuppress", help="take an address off a suppression list")
    unsuppress.add_argument("kind", choices=("bounces", "complaints", "unsubscribes"))
    unsuppress.add_argument("address")
    unsuppress.add_argument("--yes", action="store_true", help="do it without asking (for scripts)")
    unsuppress.set_defaults(handler=cmd_unsuppress)


# -- vendors verify ----------------------------------------------------------------------------------


def cmd_verify(args: argparse.Namespace) -> int:
    from panel.cli import open_context
    from services.errors import PanelError
    from services.vendors import VENDORS, access, find_key, verify_key

    context = open_context(args)
    rows: list[dict[str, Any]] = []
    try:
        for vendor in VENDORS:
            state = access(context, vendor)
            row: dict[str, Any] = {"vendor": vendor, "configured": state.configured, "key": state.key_source,
                                   "ok": None, "message": ""}
            if not state.configured:
                row["message"] = "not in the config"
            elif state.key_source is None:
                row["ok"] = False
                row["message"] = state.problem
            else:
                found = find_key(context.secrets, vendor)
                assert found is not None
                try:
                    check = verify_key(vendor, state.spec, found[0])
                except PanelError as error:
                    row.update(ok=False, message=str(error))
                else:
                    row.update(ok=check.ok, message=" ".join(filter(None, [check.message, check.warning])))
            rows.append(row)
    finally:
        context.close()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            verdict = {True: "ok", False: "FAILED", None: "-"}[row["ok"]]
            source = f"(key {row['key']})" if row["key"] else ""
            print(f"{row['vendor']:<11} {verdict:<7} {source:<20} {row['message']}")
    return EXIT_OK if all(row["ok"] is not False for row in rows) else EXIT_FAILED


# -- Cloudflare --------------------------------------------------------------------------------------


def cmd_under_attack(args: argparse.Namespace) -> int:
    from panel.cli import confirm, open_context
    from services.errors import PanelError
    from services.vendors import CALM_LEVEL, LEVEL_BEFORE_ATTACK_KEY, cloudflare_client, switch_under_attack

    on = args.switch == "on"
    context = open_context(args)
    try:
        with cloudflare_client(context) as client:
            zone = client.spec.zone
            target = f"cloudflare/{zone}"
            current = client.security_level().value
            if on:
                question = (f"Turn on \"I'm Under Attack\" mode for {zone} (security level now {current})? Every "
                            "visitor gets a challenge first.")
            else:
                back_to = context.store.get_value(LEVEL_BEFORE_ATTACK_KEY) or CALM_LEVEL
                question = f"Turn off \"I'm Under Attack\" mode for {zone} (now {current}), back to {back_to}?"
            if not confirm(question, assume_yes=args.yes):
                return EXIT_FAILED
            try:
                switched = switch_under_attack(client, on, context.store)
            except PanelError as error:
                context.store.audit("cloudflare.under_attack", target, "failed",
                                    f"turning it {args.switch}: {error}"[:500])
                raise
            context.store.audit("cloudflare.under_attack", target, "ok", switched.detail)
            print(f"{zone}: security level {switched.before} -> {switched.after}.")
            return EXIT_OK
    finally:
        context.close()


def cmd_purge(args: argparse.Namespace) -> int:
    from panel.cli import EXIT_USAGE, confirm, open_context
    from services.errors import PanelError
    from services.vendors import cloudflare_client

    if args.everything == bool(args.urls):
        print("panel: give either --everything or some URLs.", file=sys.stderr)
        return EXIT_USAGE
    context = open_context(args)
    try:
        with cloudflare_client(context) as client:
            zone = client.spec.zone
            what = "everything" if args.everything else f"{len(args.urls)} URL(s): {', '.join(args.urls[:10])}"
            if not confirm(f"Purge {what} from Cloudflare's cache for {zone}?", assume_yes=args.yes):
                return EXIT_FAILED
            try:
                if args.everything:
                    client.purge_everything()
                else:
                    client.purge_files(args.urls)
            except PanelError as error:
                context.store.audit("cloudflare.purge", f"cloudflare/{zone}", "failed", f"{what}: {error}"[:500])
                raise
            context.store.audit("cloudflare.purge", f"cloudflare/{zone}", "ok", what[:500])
            print(f"Purged {what}.")
            return EXIT_OK
    finally:
        context.close()


# -- Stripe ------------------------------------------------------------------------------------------


def cmd_stripe_group(args: argparse.Namespace) -> int:
    from panel.cli import open_context
    from services.vendors import billing_for_group, money

    context = open_context(args)
    try:
        billing = billing_for_group(context, args.group_id)
    finally:
        context.close()
    if args.json:
        print(json.dumps({
            "group_id": billing.group_id, "status": billing.status, "delinquent": billing.delinquent,
            "monthly": billing.monthly, "amount_due": billing.amount_due, "attempt_count": billing.attempt_count,
            "customers": [{"id": c.id, "email": c.email, "name": c.name, "delinquent": c.delinquent,
                           "dashboard_url": billing.dashboard_urls.get(c.id)} for c in billing.customers],
            "subscriptions": [{"id": s.id, "customer": s.customer_id, "status": s.status}
                              for s in billing.subscriptions],
            "open_invoices": [{"id": i.id, "amount_remaining": i.amount_remaining, "currency": i.currency,
                               "attempt_count": i.attempt_count} for i in billing.open_invoices],
        }, indent=2))
        return EXIT_OK
    print(f"Group {billing.group_id}: {billing.summary}")
    for customer in billing.customers:
        print(f"  customer {customer.id} {customer.name or ''} <{customer.email or ''}>"
              f"{' (delinquent)' if customer.delinquent else ''}  {billing.dashboard_urls.get(customer.id, '')}")
    for subscription in billing.subscriptions:
        print(f"  subscription {subscription.id} {subscription.status}")
    for invoice in billing.open_invoices:
        print(f"  open invoice {invoice.id} {money(invoice.amount_remaining, invoice.currency)} after "
              f"{invoice.attempt_count} attempt(s)")
    return EXIT_OK


# -- Mailgun -----------------------------------------------------------------------------------------


def cmd_unsuppress(args: argparse.Namespace) -> int:
    from panel.cli import confirm, open_context
    from services.errors import PanelError
    from services.vendors import mailgun_client

    context = open_context(args)
    try:
        with mailgun_client(context) as client:
            domain = client.spec.domain
            if not confirm(f"Remove {args.address} from the {args.kind} list of {domain}? Mailgun will send to it "
                           "again.", assume_yes=args.yes):
                return EXIT_FAILED
            try:
                client.remove_suppression(args.kind, args.address)
            except PanelError as error:
                context.store.audit("mailgun.suppression.remove", f"mailgun/{domain}", "failed",
                                    f"{args.kind}: {args.address}: {error}"[:500])
                raise
            context.store.audit("mailgun.suppression.remove", f"mailgun/{domain}", "ok",
                                f"{args.kind}: {args.address}")
            print(f"Removed {args.address} from the {args.kind} list of {domain}.")
            return EXIT_OK
    finally:
        context.close()
