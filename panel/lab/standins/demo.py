"""Demo data tied to the SaaS's groups, shared by the three stand-ins.

Groups are ids 1..3000 on app1 ("acme" is group 1) and 1_000_001..1_002_000 on app2 ("globex"
is 1_000_001). Each group has a slug and a few member emails, so that a Stripe customer, a
Mailgun bounce or a Cloudflare subdomain can be traced back to a group in the panel.
"""

from __future__ import annotations

import base64
import hashlib
import random
from dataclasses import dataclass

from panel.lab.saas_data import DEMO_GROUPS, DEMO_OWNERS, DEMO_SUSPENDED

APP1_GROUPS = range(1, 3001)
APP2_GROUPS = range(1_000_001, 1_002_001)
SERVER_OFFSETS = {"app1": 0, "app2": 1_000_000}


def _named_groups() -> dict[int, str]:
    """The groups the SaaS data names for demos: each server's flagship groups, then its suspended one
    (ids in that order, as ``panel.lab.saas_data`` assigns them). The rest get a neutral slug here."""
    named: dict[int, str] = {}
    for server, offset in SERVER_OFFSETS.items():
        names = [*DEMO_GROUPS.get(server, ()), *filter(None, [DEMO_SUSPENDED.get(server)])]
        named.update({offset + index + 1: name for index, name in enumerate(names)})
    return named


NAMED_GROUPS = _named_groups()

# The lab servers all listen on loopback, so the inventory's hosts resolve to 127.0.0.1.
INVENTORY_HOST_IP = "127.0.0.1"
STRAY_HOST_IP = "198.51.100.7"  # a documentation address that no inventory server has


@dataclass(frozen=True)
class DemoGroup:
    id: int
    slug: str
    server: str

    @property
    def owner_email(self) -> str | None:
        """The demo owner's real address when the SaaS data names one for this group."""
        if self.slug in DEMO_GROUPS.get(self.server, ()):
            return DEMO_OWNERS[self.server][0]
        return None

    @property
    def billing_email(self) -> str:
        return self.owner_email or f"billing@{self.slug}.example"

    def member_email(self, index: int) -> str:
        return f"owner@{self.slug}.example" if index == 0 else f"user{index}@{self.slug}.example"

    @property
    def display_name(self) -> str:
        return self.slug.replace("-", " ").title()


def group(group_id: int) -> DemoGroup:
    if group_id in APP1_GROUPS:
        server = "app1"
    elif group_id in APP2_GROUPS:
        server = "app2"
    else:
        raise KeyError(group_id)
    return DemoGroup(group_id, NAMED_GROUPS.get(group_id, f"group-{group_id}"), server)


def all_group_ids() -> list[int]:
    return [*APP1_GROUPS, *APP2_GROUPS]


def rng(name: str) -> random.Random:
    """A generator seeded by name, so each data set is the same on every run."""
    return random.Random(int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big"))


def stable_id(prefix: str, *parts: object, length: int = 24) -> str:
    """An id that looks like the vendor's (letters and digits) and is the same on every run."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    if prefix:
        return prefix + base64.b64encode(digest).decode().translate(_ALPHANUMERIC)[:length]
    return digest.hex()[:length]


_ALPHANUMERIC = str.maketrans({"+": "x", "/": "Q", "=": "7"})
