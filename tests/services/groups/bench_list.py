"""Benchmark: one page of ``list_groups`` on a server with 100,000 groups.

Not collected by pytest. Run it by hand::

    python tests/services/groups/bench_list.py [--groups 100000] [--delay-ms 0]

It starts one lab server, adds ``--groups`` groups with members, users and some rows (built by
the server from sequences, so set-up takes seconds), then times pages: the first page by name,
deep pages, searches by name, id and member email, and the slow orders (members, data rows).
"""

# ruff: noqa: S608 - fixed benchmark SQL

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from panel.lab import procs  # noqa: E402
from panel.lab.latency import start_proxy_process  # noqa: E402
from panel.lab.mariadb import start_mariadb  # noqa: E402
from services.groups import list_groups  # noqa: E402
from services.inventory import GroupsSpec  # noqa: E402

FIRST = 10_000_000  # ids of the benchmark's groups, far from the demo's


def populate(handle: object, groups: int) -> None:
    from panel.lab.mariadb import MariaDBHandle

    assert isinstance(handle, MariaDBHandle)
    users = groups * 3
    statements = [
        "SET foreign_key_checks = 0, unique_checks = 0",
        f"INSERT INTO `groups` (id, name, created_at, suspended_at) SELECT {FIRST} + seq, "
        f"CONCAT(ELT(1 + seq % 8, 'blue', 'quiet', 'bright', 'north', 'silver', 'rapid', 'green', 'iron'), '-', "
        f"ELT(1 + seq % 7, 'harbor', 'falcon', 'maple', 'river', 'forge', 'orbit', 'pixel'), '-', seq), "
        f"'2020-01-01' + INTERVAL seq MINUTE, IF(seq % 97 = 0, '2024-01-01', NULL) FROM seq_1_to_{groups}",
        f"INSERT INTO users (id, email, name, date_joined) SELECT {FIRST} + seq, "
        f"CONCAT('person', seq, '@bench.example'), CONCAT('Person ', seq), '2020-01-01' FROM seq_1_to_{users}",
        f"INSERT INTO memberships (id, group_id, user_id, role, created_at) SELECT {FIRST} + seq, "
        f"{FIRST} + 1 + (seq - 1) % {groups}, {FIRST} + seq, 'member', '2020-01-02' FROM seq_1_to_{users}",
        f"INSERT INTO projects (id, group_id, name, created_at) SELECT {FIRST} + seq, {FIRST} + seq, "
        f"'Website', '2020-01-03' FROM seq_1_to_{groups}",
        f"INSERT INTO activity (id, group_id, user_id, verb, at) SELECT {FIRST} + seq, "
        f"{FIRST} + 1 + (seq - 1) % {groups}, NULL, 'login', '2021-01-01' FROM seq_1_to_{groups * 4}",
        "SET foreign_key_checks = 1, unique_checks = 1",
        "ANALYZE TABLE `groups`, users, memberships, projects, activity",
    ]
    conn = handle.admin_connection()
    try:
        with conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
                cursor.fetchall()
        conn.commit()
    finally:
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--groups", type=int, default=100_000)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-list-"))
    handle = start_mariadb(folder, server="app1", group_offset=0, groups=3000, seed=1)
    proxy = None
    try:
        started = time.monotonic()
        populate(handle, args.groups)
        print(f"{args.groups} more groups built in {time.monotonic() - started:.1f} s")
        endpoint = handle.endpoint()
        if args.delay_ms:
            port = procs.free_ports(1)[0]
            proxy = start_proxy_process([(port, handle.port)], args.delay_ms, log=folder / "latency.log")
            endpoint = type(endpoint)(endpoint.host, port, endpoint.user, endpoint.password, endpoint.database,
                                      server="app1-far")
        spec = GroupsSpec()
        cases = [
            ("first page by name", {}),
            ("page 1000 by name", {"offset": 50_000}),
            ("by id, descending", {"order_by": "-id"}),
            ("newest first", {"order_by": "-created"}),
            ("search a name", {"search": "falcon-4242"}),
            ("search an id", {"search": str(FIRST + 77_777)}),
            ("search an email", {"search": "person123456@bench"}),
            ("search an email domain", {"search": "@acme.example"}),
            ("most members first", {"order_by": "-members"}),
            ("most rows first", {"order_by": "-data_rows"}),
        ]
        list_groups(endpoint, spec, limit=1)  # connect and cache the schema
        for label, kwargs in cases:
            times = []
            for _ in range(3):
                t = time.monotonic()
                page = list_groups(endpoint, spec, limit=50, **kwargs)  # type: ignore[arg-type]
                times.append(time.monotonic() - t)
            print(f"{label:<24} {statistics.median(times) * 1000:8.1f} ms  ({page.total} matching)")
    finally:
        if proxy is not None:
            procs.stop(proxy)
        handle.stop(remove_data=True)
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
