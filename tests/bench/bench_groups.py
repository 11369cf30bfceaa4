"""Benchmark: the Groups feature across an ocean (a 120 ms round trip), through the SSH tunnels.

    python tests/bench/bench_groups.py [--groups 100000] [--rows 100000] [--rtt-ms 120] [--runs 3]

Two private MariaDB servers ("app1" with the demo groups plus ``--groups`` more and one group of
about ``--rows`` rows, built by tests/services/groups/bench_list.py and bench_move.py; "app2" with
the demo groups), each behind a real sshd with a latency proxy in front (panel.lab.latency, in its
own process). The panel reaches them exactly as the window does: panel.mysql's tunnels over the
pooled SSH connection.

1. Search as you type: the Groups model (views.models.groups) searching both servers and merging
   the first pages, against the same SQL run by the ``mariadb`` client through the same tunnels
   (one warm session per server, both servers at once). Target: at most 1.5x.
2. Moving the big group app1 -> app2 with ``move_group`` (plan, freeze, copy, verify row by row,
   switch, delete) against ``mysqldump --where | mariadb`` of the same rows over the same tunnels
   (tenant tables and the group row only: strictly less work). Target: at least as fast (<= 1.0x).
"""

# ruff: noqa: S608 - fixed benchmark SQL

from __future__ import annotations

import argparse
import getpass
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from benchlib import result, sshd_fleet  # noqa: E402

from panel.lab.mariadb import MariaDBHandle, start_mariadb  # noqa: E402
from panel.lab.secrets import MYSQL_PASSWORD, DemoKeyring  # noqa: E402
from tests.services.groups.bench_list import populate  # noqa: E402
from tests.services.groups.bench_move import BIG, TENANT, dump_and_load, make_big_group  # noqa: E402

RTT = "120 ms RTT"  # set from --rtt-ms in main()
SEARCHES = ("wile.coy", "falcon-4242", "person12345@bench", "10077777", "silver-r", "acme")
_DONE = re.compile(r"^(\d+ rows? in set|Empty set)")


class Client:
    """One warm ``mariadb`` session; ``-vvv --unbuffered`` ends each answer with "N rows in set"."""

    def __init__(self, options: Path, port: int) -> None:
        self.proc = subprocess.Popen(
            ["mariadb", f"--defaults-extra-file={options}", "--host=127.0.0.1", "--protocol=tcp", f"--port={port}",
             "--batch", "--unbuffered", "-vvv", "saas"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def send(self, sql: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(sql.replace("\n", " ") + ";\n")
        self.proc.stdin.flush()

    def wait(self) -> int:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise SystemExit(f"the mariadb client stopped: {self.proc.stderr.read() if self.proc.stderr else ''}")
            match = _DONE.match(line)
            if match:
                return 0 if line.startswith("Empty") else int(line.split()[0])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _config(folder: Path, key: Path, servers: list[Any], handles: tuple[MariaDBHandle, MariaDBHandle]) -> Path:
    text = ""
    for name, server, handle in zip(("app1", "app2"), servers, handles, strict=True):
        text += (f'[servers.{name}]\nhost = "127.0.0.1"\nport = {server.port}\nuser = "{getpass.getuser()}"\n'
                 f'identity = "{key}"\nhost_key = "{server.host_key_line}"\n\n'
                 f'[servers.{name}.mysql]\ndatabase = "saas"\nuser = "panel"\nport = {handle.port}\n\n')
    path = folder / "panel.toml"
    path.write_text(text)
    return path


def _options(folder: Path) -> Path:
    options = folder / "client.cnf"
    options.write_text(f"[client]\nuser=panel\npassword={MYSQL_PASSWORD}\n")
    options.chmod(0o600)
    return options


def _page_sql(endpoint: Any, spec: Any, text: str | None, limit: int) -> str:
    """The exact statement ``list_groups`` sends for the model's first page, values inlined."""
    from services.groups.endpoint import close_quietly, connect
    from services.groups.listing import _page_sql as page_sql
    from services.groups.schema import discover
    from services.groups.sql import parse_order

    conn = connect(endpoint)
    try:
        schema = discover(conn, endpoint, spec)
        sql, args = page_sql(schema, text, parse_order("name"))
        with conn.cursor() as cursor:
            return str(cursor.mogrify(sql, [*args, limit, 0]))
    finally:
        close_quietly(conn)


def bench_search(context: Any, runs: int) -> None:
    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication

    from panel.mysql import mysql_access
    from views.models.groups import FIRST_PAGE, GroupsModel
    from views.pages.groups import page_fetcher
    from views.workers import JobRunner

    app = QApplication.instance() or QApplication([])
    access = mysql_access(context)
    spec = context.inventory.groups

    runner = JobRunner()
    model = GroupsModel(runner, page_fetcher(context), ["app1", "app2"])  # what the Groups page uses

    def settle() -> None:
        while not (not model.is_loading and model.totals_known):
            app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)

    model.start()
    settle()
    everything = model.total
    print(f"first pages: {model.loaded} of {everything:,} groups")
    options = _options(Path(context.config_path).parent)
    tunnels = [access.tunnel(s) for s in ("app1", "app2")]
    clients = [Client(options, t.local_port) for t in tunnels]
    for client in clients:
        client.send("SELECT 1")
        client.wait()
    endpoints = [access.endpoint(s) for s in ("app1", "app2")]
    panel_times: list[float] = []
    client_times: list[float] = []
    try:
        for text in SEARCHES:
            statements = [_page_sql(e, spec, text, FIRST_PAGE) for e in endpoints]
            ours, theirs = [], []
            for _ in range(runs):
                model.set_search(None)
                settle()
                started = time.perf_counter()
                model.set_search(text)  # what the 150 ms pause after typing does
                settle()
                ours.append(time.perf_counter() - started)
                shown = model.loaded

                started = time.perf_counter()
                for client, statement in zip(clients, statements, strict=True):
                    client.send(statement)
                got = sum(client.wait() for client in clients)
                theirs.append(time.perf_counter() - started)
            assert got >= shown, f"{text!r}: the client got {got} rows, the model showed {shown}"
            mine, base = statistics.median(ours), statistics.median(theirs)
            panel_times.append(mine)
            client_times.append(base)
            print(f"search {text!r:<22} {shown:>4} rows: panel {mine * 1000:7.1f} ms, mariadb client "
                  f"{base * 1000:7.1f} ms ({mine / base:.2f}x)", flush=True)
            result(f"groups: search {text!r} over {everything:,} groups, {RTT}", mine, base,
                   "<= 1.5x vs mariadb client", ok=mine <= 1.5 * base)
        mine, base = statistics.median(panel_times), statistics.median(client_times)
        result("groups: search as you type (median of searches)", mine, base, "<= 1.5x vs mariadb client",
               ok=mine <= 1.5 * base)
    finally:
        for client in clients:
            client.close()
        runner.shutdown()


def _warm(handle: MariaDBHandle) -> None:
    """Read the big group once on the source, locally, so neither side of the comparison starts cold."""
    conn = handle.admin_connection()
    try:
        with conn.cursor() as cursor:
            for table in TENANT:
                cursor.execute(f"SELECT * FROM {table} WHERE group_id = %s", (BIG,))
                cursor.fetchall()
    finally:
        conn.close()


def bench_move(context: Any, handles: tuple[MariaDBHandle, MariaDBHandle]) -> None:
    from panel.mysql import LONG_READ_TIMEOUT, mysql_access
    from services.groups import move_group, plan_move

    access = mysql_access(context)
    spec = context.inventory.groups
    source = access.endpoint("app1", read_timeout=LONG_READ_TIMEOUT)
    target = access.endpoint("app2", read_timeout=LONG_READ_TIMEOUT)
    _warm(handles[0])
    plan = plan_move(source, target, spec, BIG)
    print(plan.describe())
    moved = move_group(source, target, spec, BIG)
    print(f"move_group over the tunnels: {moved.seconds:.2f} s, {moved.rows_copied:,} rows; "
          + ", ".join(f"{s.name} {s.seconds:.2f}" for s in moved.steps), flush=True)

    # The same rows back the classic way, over the same tunnels: app2 now holds the group, warm.
    options = _options(Path(context.config_path).parent)
    ports = [access.tunnel(s).local_port for s in ("app2", "app1")]
    dumped = dump_and_load(options, ports[0], ports[1])
    print(f"mysqldump --where | mariadb over the same tunnels: {dumped:.2f} s (no users, no verification, "
          "no deletion)", flush=True)
    result(f"groups: move a {moved.rows_copied:,}-row group, {RTT}", moved.seconds, dumped,
           "<= 1.0x vs mysqldump | mariadb", ok=moved.seconds <= dumped)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--groups", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rtt-ms", type=float, default=120.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    global RTT
    RTT = f"{args.rtt_ms:g} ms RTT"
    folder = Path(tempfile.mkdtemp(prefix="bench-groups-"))
    os.environ["PANEL_DATA_DIR"] = str(folder / "data")
    handles: list[MariaDBHandle] = []
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(2) as pool:
            one = pool.submit(start_mariadb, folder, server="app1", group_offset=0, groups=3000, seed=1)
            two = pool.submit(start_mariadb, folder, server="app2", group_offset=1_000_000, groups=2000, seed=1)
            handles += [one.result(), two.result()]
        populate(handles[0], args.groups)
        # make_big_group(n) builds about 0.91 n + 51 rows (documents, activity, invoices, projects, members).
        rows = make_big_group(handles[0], math.ceil((args.rows - 51) / 0.91))
        print(f"two servers, {args.groups:,} more groups and a {rows:,}-row group in "
              f"{time.monotonic() - started:.1f} s", flush=True)
        with sshd_fleet(folder / "sshd", 2, latency_ms=args.rtt_ms) as (key, servers):
            from panel.config import load_config
            from panel.context import PanelContext
            from panel.secrets import SecretStore
            from panel.store import Store

            config = _config(folder, key, servers, (handles[0], handles[1]))
            context = PanelContext(config, load_config(config), Store(folder / "store.sqlite3"),
                                   SecretStore(DemoKeyring()))
            try:
                bench_search(context, args.runs)
                bench_move(context, (handles[0], handles[1]))
            finally:
                context.close()
                context.store.close()
    finally:
        for handle in handles:
            handle.stop(remove_data=True)
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
