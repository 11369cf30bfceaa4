"""The demo SaaS's database: its schema and its deterministic, quickly loaded data.

The SaaS is a Django-like monolith where each customer is a *group* and groups never
share data. Every tenant table carries ``group_id`` with a real InnoDB foreign key to
``groups``, so rows must be inserted parents first (see :data:`TABLE_ORDER`).

Ids never collide between servers: a server's groups are ``group_offset + 1 ..
group_offset + groups`` and every other table's ids start at ``row_base(group_offset) + 1``
(``group_offset * 1000``), so app1 (offset 0) uses small ids and app2 (offset 1,000,000)
uses ids from 1,000,000,001 on.

Users are per server: ``users`` holds the people who belong to that server's groups. A
person may belong to several groups on one server. Each server draws emails from its own
domains, so no email exists on two servers. Moving a group copies the group's users that are
missing on the target (same id), reuses identical ones, refuses the move when an id or an
email on the target belongs to someone else, and removes a user from the source only when no
other row there still refers to it (see ``services.groups``).

Known names for demos: on app1, the group ``acme`` (id 1) whose owner
``wile.coyote@acme.example`` also belongs to ``acme-labs``, ``acme-europe`` and
``desert-ops``; ``initech`` is suspended. On app2, ``globex`` (id 1,000,001) whose owner
``hank.scorpio@globex.example`` belongs to several groups; ``umbrella`` is suspended.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

SCHEMA_VERSION = 1
DATA_VERSION = 3  # bump whenever the generated rows change, so cached datadirs are rebuilt

TABLE_ORDER: tuple[str, ...] = (
    "groups",
    "users",
    "memberships",
    "projects",
    "documents",
    "invoices",
    "activity",
)
"""Every table, parents before children (the order rows can be inserted in)."""

TENANT_TABLES: tuple[str, ...] = ("memberships", "projects", "documents", "invoices", "activity")

SCHEMA: tuple[str, ...] = (
    """CREATE TABLE `groups` (
        `id` BIGINT NOT NULL AUTO_INCREMENT,
        `name` VARCHAR(150) NOT NULL,
        `created_at` DATETIME(6) NOT NULL,
        `suspended_at` DATETIME(6) NULL,
        PRIMARY KEY (`id`),
        KEY `groups_name_idx` (`name`)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
    """CREATE TABLE `users` (
        `id` BIGINT NOT NULL AUTO_INCREMENT,
        `email` VARCHAR(254) NOT NULL,
        `name` VARCHAR(150) NOT NULL,
        `date_joined` DATETIME(6) NOT NULL,
        PRIMARY KEY (`id`),
        UNIQUE KEY `users_email_uniq` (`email`)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
    """CREATE TABLE `memberships` (
        `id` BIGINT NOT NULL AUTO_INCREMENT,
        `group_id` BIGINT NOT NULL,
        `user_id` BIGINT NOT NULL,
        `role` VARCHAR(20) NOT NULL,
        `created_at` DATETIME(6) NOT NULL,
        PRIMARY KEY (`id`),
        UNIQUE KEY `memberships_group_user_uniq` (`group_id`, `user_id`),
        KEY `memberships_user_idx` (`user_id`),
        CONSTRAINT `memberships_group_fk` FOREIGN KEY (`group_id`) REFERENCES `groups` (`id`),
        CONSTRAINT `memberships_user_fk` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
    """CREATE TABLE `projects` (
        `id` BIGINT NOT NULL AUTO_INCREMENT,
        `group_id` BIGINT NOT NULL,
        `name` VARCHAR(200) NOT NULL,
        `created_at` DATETIME(6) NOT NULL,
        PRIMARY KEY (`id`),
        KEY `projects_group_idx` (`group_id`),
        CONSTRAINT `projects_group_fk` FOREIGN KEY (`group_id`) REFERENCES `groups` (`id`)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
    """CREATE TABLE `documents` (
        `id` BIGINT NOT NULL AUTO_INCREMENT,
        `group_id` BIGINT NOT NULL,
        `project_id` BIGINT NOT NULL,
        `title` VARCHAR(255) NOT NULL,
        `body` TEXT NOT NULL,
        `updated_at` DATETIME(6) NOT NULL,
        PRIMARY KEY (`id`),
        KEY `documents_group_idx` (`group_id`),
        KEY `documents_project_idx` (`project_id`),
        CONSTRAINT `documents_group_fk` FOREIGN KEY (`group_id`) REFERENCES `groups` (`id`),
        CONSTRAINT `documents_project_fk` FOREIGN KEY (`project_id`) REFERENCES `projects` (`id`)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
    """CREATE TABLE `invoices` (
        `id` BIGINT NOT NULL AUTO_INCREMENT,
        `group_id` BIGINT NOT NULL,
        `number` VARCHAR(32) NOT NULL,
        `amount_cents` INT NOT NULL,
        `status` VARCHAR(16) NOT NULL,
        `issued_at` DATETIME(6) NOT NULL,
        PRIMARY KEY (`id`),
        UNIQUE KEY `invoices_group_number_uniq` (`group_id`, `number`),
        CONSTRAINT `invoices_group_fk` FOREIGN KEY (`group_id`) REFERENCES `groups` (`id`)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
    """CREATE TABLE `activity` (
        `id` BIGINT NOT NULL AUTO_INCREMENT,
        `group_id` BIGINT NOT NULL,
        `user_id` BIGINT NULL,
        `verb` VARCHAR(64) NOT NULL,
        `at` DATETIME(6) NOT NULL,
        PRIMARY KEY (`id`),
        KEY `activity_group_at_idx` (`group_id`, `at`),
        KEY `activity_user_idx` (`user_id`),
        CONSTRAINT `activity_group_fk` FOREIGN KEY (`group_id`) REFERENCES `groups` (`id`),
        CONSTRAINT `activity_user_fk` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
)

COLUMNS: dict[str, tuple[str, ...]] = {
    "groups": ("id", "name", "created_at", "suspended_at"),
    "users": ("id", "email", "name", "date_joined"),
    "memberships": ("id", "group_id", "user_id", "role", "created_at"),
    "projects": ("id", "group_id", "name", "created_at"),
    "documents": ("id", "group_id", "project_id", "title", "body", "updated_at"),
    "invoices": ("id", "group_id", "number", "amount_cents", "status", "issued_at"),
    "activity": ("id", "group_id", "user_id", "verb", "at"),
}

# Known demo data: (name, suspended, extra members by email) per server name.
DEMO_OWNERS: dict[str, tuple[str, str]] = {
    "app1": ("wile.coyote@acme.example", "Wile E. Coyote"),
    "app2": ("hank.scorpio@globex.example", "Hank Scorpio"),
}
DEMO_GROUPS: dict[str, tuple[str, ...]] = {
    # The first name is the server's flagship group (the first id); the owner belongs to all of these.
    "app1": ("acme", "acme-labs", "acme-europe", "desert-ops"),
    "app2": ("globex", "globex-research", "cypress-creek", "volcano-lair"),
}
DEMO_SUSPENDED: dict[str, str] = {"app1": "initech", "app2": "umbrella"}

_EPOCH = 1546300800  # 2019-01-01 00:00:00 UTC
_END = 1751241600  # 2025-06-30 00:00:00 UTC

_FIRST = (
    "maria", "james", "aiko", "lars", "fatima", "chen", "olga", "pedro", "amara", "noah", "sofia",
    "liam", "yuki", "ines", "omar", "nora", "ivan", "zoe", "ravi", "elena", "tomas", "mia", "kwame",
    "lea", "arjun", "hana", "felix", "sara", "mateo", "ana", "jonas", "leila", "paul", "emma", "diego",
    "ingrid", "kofi", "julia", "hugo", "priya",
)
_LAST = (
    "garcia", "smith", "tanaka", "nielsen", "haddad", "wang", "petrova", "silva", "okafor", "muller",
    "rossi", "brown", "sato", "moreau", "khan", "berg", "novak", "lee", "patel", "popescu", "horvat",
    "jensen", "mensah", "dubois", "gupta", "kim", "weber", "cohen", "lopez", "santos", "fischer",
    "ali", "martin", "eriksen", "osei", "schmidt", "romano", "ivanova", "costa", "nakamura",
)
# Each server draws emails from its own domains, so no two servers share an email and every demo
# group can move anywhere (a shared email with different ids refuses a move, on purpose).
_MAIL_SETS = (
    ("example.com", "example.org", "mail.example"),
    ("example.net", "corp.example", "post.example"),
    ("inbox.example", "web.example", "home.example"),
    ("team.example", "work.example", "biz.example"),
)
_ADJ = (
    "blue", "quiet", "bright", "north", "silver", "rapid", "green", "golden", "hidden", "lucky",
    "clever", "brave", "red", "misty", "urban", "solar", "iron", "crystal", "wild", "happy",
)
_NOUN = (
    "harbor", "falcon", "maple", "river", "summit", "forge", "lantern", "meadow", "orbit", "pixel",
    "anchor", "beacon", "canyon", "delta", "ember", "grove", "harvest", "island", "jetty", "kite",
)
_SUFFIX = ("", "", "", "-studio", "-labs", "-co", "-team", "-works", "-digital", "-partners")
_WORDS = (
    "quarterly", "report", "roadmap", "customer", "feedback", "draft", "budget", "meeting", "notes",
    "launch", "plan", "review", "design", "contract", "invoice", "support", "ticket", "release",
    "marketing", "sales", "pipeline", "hiring", "onboarding", "policy", "security", "audit", "summary",
    "proposal", "research", "analysis", "metrics", "growth", "retention", "pricing", "partner",
    "integration", "migration", "backlog", "sprint", "retro", "the", "and", "for", "with", "next",
    "week", "team", "goals", "risks", "decision", "owner", "status", "update", "follow-up", "action",
)
_PROJECT = ("Website", "Mobile app", "Onboarding", "Q3 campaign", "Internal tools", "Billing",
            "Research", "Support", "Hiring", "Brand refresh", "Data platform", "Partnerships")
_ROLES = ("member", "member", "member", "admin", "viewer")
_VERBS = ("login", "document.create", "document.update", "document.view", "invoice.pay",
          "project.create", "member.invite", "settings.update", "export.download", "comment.add")
_STATUS = ("paid", "paid", "paid", "paid", "open", "void", "uncollectible")


def row_base(group_offset: int) -> int:
    """Where a server's non-group ids start: ``group_offset * 1000``."""
    return group_offset * 1000


@dataclass(frozen=True)
class SeedSpec:
    server: str
    group_offset: int
    groups: int
    seed: int

    def key(self) -> str:
        return (f"s{SCHEMA_VERSION}d{DATA_VERSION}-{self.server}-o{self.group_offset}"
                f"-g{self.groups}-r{self.seed}")


@dataclass
class Dataset:
    """Rows per table, each a tuple of strings (or None) in :data:`COLUMNS` order."""

    tables: dict[str, list[tuple[str | None, ...]]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in self.tables.items()}

    @property
    def total_rows(self) -> int:
        return sum(len(rows) for rows in self.tables.values())


def _ts(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


class _Generator:
    def __init__(self, spec: SeedSpec) -> None:
        self.spec = spec
        self.rng = random.Random(f"panel-lab:{spec.seed}:{spec.server}:{spec.group_offset}:{spec.groups}")
        base = row_base(spec.group_offset)
        self.next_id = {name: base for name in TABLE_ORDER if name != "groups"}
        self.data = Dataset({name: [] for name in TABLE_ORDER})
        self.emails: set[str] = set()
        self.user_ids: list[int] = []
        self.user_joined: dict[int, float] = {}
        self.names: set[str] = set()
        self.mail = _MAIL_SETS[(spec.group_offset // 1_000_000) % len(_MAIL_SETS)]
        self._group_users: list[int] = []

    def _id(self, table: str) -> int:
        self.next_id[table] += 1
        return self.next_id[table]

    def _user(self, email: str | None, name: str | None, joined: float) -> int:
        rng = self.rng
        if email is None or name is None:
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            name = f"{first.title()} {last.title()}"
            email = f"{first}.{last}@{rng.choice(self.mail)}"
            n = 1
            while email in self.emails:
                n += 1
                email = f"{first}.{last}{n}@{rng.choice(self.mail)}"
        self.emails.add(email)
        uid = self._id("users")
        self.data.tables["users"].append((str(uid), email, name, _ts(joined)))
        self.user_ids.append(uid)
        self.user_joined[uid] = joined
        return uid

    def _group_name(self) -> str:
        rng = self.rng
        name = f"{rng.choice(_ADJ)}-{rng.choice(_NOUN)}{rng.choice(_SUFFIX)}"
        n = 1
        candidate = name
        while candidate in self.names:
            n += 1
            candidate = f"{name}-{n}"
        return candidate

    def run(self) -> Dataset:
        spec, rng, t = self.spec, self.rng, self.data.tables
        demo = DEMO_GROUPS.get(spec.server, ())
        suspended_name = DEMO_SUSPENDED.get(spec.server)
        owner = DEMO_OWNERS.get(spec.server)
        names = list(demo)
        if suspended_name and spec.groups > len(names):
            names.append(suspended_name)
        self.names.update(names)
        while len(names) < spec.groups:
            name = self._group_name()
            self.names.add(name)
            names.append(name)
        names = names[: spec.groups]
        owner_id: int | None = None
        if owner and demo and spec.groups:
            owner_id = self._user(owner[0], owner[1], _EPOCH + 86400)
        for index, name in enumerate(names):
            gid = spec.group_offset + index + 1
            created = _EPOCH + rng.random() * (_END - _EPOCH) * 0.8
            flagship = index == 0 and bool(demo)
            suspended: str | None = None
            if name == suspended_name or (index >= len(demo) + 1 and rng.random() < 0.012):
                suspended = _ts(created + rng.random() * (_END - created))
            t["groups"].append((str(gid), name, _ts(created), suspended))
            factor = 8.0 if flagship else min(12.0, rng.paretovariate(2.2))
            self._members(gid, created, factor, owner_id if name in demo else None, flagship)
            self._content(gid, created, factor, flagship)
        return self.data

    def _members(self, gid: int, created: float, factor: float, owner_id: int | None, flagship: bool) -> None:
        rng, t = self.rng, self.data.tables
        count = max(12 if flagship else 1, int(rng.expovariate(1 / 3.0) * factor) + 1)
        chosen: list[int] = []
        if owner_id is not None:
            chosen.append(owner_id)
        for _ in range(count):
            if self.user_ids and rng.random() < 0.15:
                uid = rng.choice(self.user_ids)
            else:
                uid = self._user(None, None, created + rng.random() * 86400 * 30)
            if uid not in chosen:
                chosen.append(uid)
        for position, uid in enumerate(chosen):
            role = "owner" if position == 0 else rng.choice(_ROLES)
            joined = max(created, self.user_joined[uid]) + rng.random() * 86400 * 90
            t["memberships"].append((str(self._id("memberships")), str(gid), str(uid), role, _ts(joined)))
        self._group_users = chosen

    def _content(self, gid: int, created: float, factor: float, flagship: bool) -> None:
        rng, t = self.rng, self.data.tables
        users = self._group_users
        span = _END - created
        projects: list[tuple[int, float]] = []
        for _ in range(max(8 if flagship else 1, int(rng.random() * 3 * factor) + 1)):
            pid = self._id("projects")
            pcreated = created + rng.random() * span * 0.5
            name = f"{rng.choice(_PROJECT)} {rng.randint(2019, 2025)}"
            t["projects"].append((str(pid), str(gid), name, _ts(pcreated)))
            projects.append((pid, pcreated))
        words = _WORDS
        for _ in range(max(150 if flagship else 0, int(rng.random() * 16 * factor))):
            pid, pcreated = rng.choice(projects)
            title = " ".join(rng.choices(words, k=rng.randint(2, 6))).capitalize()
            body = "\n\n".join(
                " ".join(rng.choices(words, k=rng.randint(8, 30))).capitalize() + "."
                for _ in range(rng.randint(1, 4))
            )
            updated = pcreated + rng.random() * (_END - pcreated)
            t["documents"].append(
                (str(self._id("documents")), str(gid), str(pid), title, body, _ts(updated)))
        months = 60 if flagship else int(rng.random() * 24 * min(factor, 2.5))
        for month in range(months):
            issued = created + (month + 1) * 30.4 * 86400
            if issued > _END:
                break
            amount = rng.choice((900, 1900, 4900, 9900, 19900)) * max(1, len(users) // 3)
            t["invoices"].append((str(self._id("invoices")), str(gid), f"INV-{gid}-{month + 1:04d}",
                                  str(amount), rng.choice(_STATUS), _ts(issued)))
        for _ in range(max(1500 if flagship else 0, int(rng.expovariate(1 / 30.0) * factor))):
            uid: str | None = str(rng.choice(users)) if rng.random() < 0.95 else None
            at = created + rng.random() * span
            t["activity"].append((str(self._id("activity")), str(gid), uid, rng.choice(_VERBS), _ts(at)))


def generate(spec: SeedSpec) -> Dataset:
    """The rows for one server. Deterministic: the same spec always yields the same rows."""
    return _Generator(spec).run()


def _tsv_field(value: str | None) -> str:
    if value is None:
        return "\\N"
    if "\\" in value or "\t" in value or "\n" in value:
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    return value


def write_tsv(dataset: Dataset, folder: Path) -> dict[str, Path]:
    """Write one LOAD DATA file per table (tab-separated, backslash escapes, ``\\N`` for NULL)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, rows in dataset.tables.items():
        path = folder / f"{name}.tsv"
        with path.open("w", encoding="utf-8", newline="\n") as out:
            out.writelines("\t".join(map(_tsv_field, row)) + "\n" for row in rows)
        paths[name] = path
    return paths


class _Cursor(Protocol):
    def execute(self, query: str, args: Any = None) -> int: ...


class _Connection(Protocol):
    def cursor(self) -> Any: ...

    def commit(self) -> None: ...


def create_schema(cursor: _Cursor, statements: Iterable[str] = SCHEMA) -> None:
    for statement in statements:
        cursor.execute(statement)


@dataclass(frozen=True)
class SeedStats:
    rows: dict[str, int]
    generate_seconds: float
    load_seconds: float

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def load_files(conn: _Connection, folder: Path, tables: Sequence[str] = TABLE_ORDER) -> float:
    """Load the LOAD DATA files in ``folder`` (the connection needs ``local_infile=True``), then delete them.

    Checks are off while loading: the generated rows are consistent by construction.
    """
    started = time.monotonic()
    with conn.cursor() as cursor:
        cursor.execute("SET SESSION foreign_key_checks = 0, unique_checks = 0")
        for name in tables:
            columns = ", ".join(f"`{c}`" for c in COLUMNS[name])
            cursor.execute(
                f"LOAD DATA LOCAL INFILE %s INTO TABLE `{name}` CHARACTER SET utf8mb4 "
                "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
                f"({columns})",
                (str(folder / f"{name}.tsv"),),
            )
        cursor.execute("SET SESSION foreign_key_checks = 1, unique_checks = 1")
    conn.commit()
    for name in tables:
        (folder / f"{name}.tsv").unlink(missing_ok=True)
    return time.monotonic() - started


def seed(conn: _Connection, spec: SeedSpec, workdir: Path) -> SeedStats:
    """Create the schema in the connection's current database and load the demo rows (in process)."""
    started = time.monotonic()
    counts = write_dataset(spec, workdir)
    generated = time.monotonic() - started
    with conn.cursor() as cursor:
        create_schema(cursor)
    loaded = load_files(conn, workdir)
    return SeedStats(rows=counts, generate_seconds=generated, load_seconds=loaded)

def write_dataset(spec: SeedSpec, folder: Path) -> dict[str, int]:
    """Generate the rows of ``spec`` into LOAD DATA files in ``folder``; returns the row counts."""
    dataset = generate(spec)
    write_tsv(dataset, folder)
    counts = dataset.counts()
    (folder / "counts.json").write_text(json.dumps(counts))
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m panel.lab.saas_data --server app1 --group-offset 0 --groups 3000 --seed 1 --out DIR``.

    The lab runs the generator as a process of its own, so that it uses another core while the
    server initialises (and so that two servers' data are generated in parallel, GIL or not).
    """
    parser = argparse.ArgumentParser(prog="python -m panel.lab.saas_data")
    parser.add_argument("--server", required=True)
    parser.add_argument("--group-offset", type=int, required=True)
    parser.add_argument("--groups", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    write_dataset(SeedSpec(args.server, args.group_offset, args.groups, args.seed), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
