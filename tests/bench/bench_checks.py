"""One full sweep of every check: the lab fleet plus 20 extra sshd servers, each behind a proxy that
adds 60 ms each way (a 120 ms round trip), against the same commands run one by one with OpenSSH's
``ssh`` client (a new connection per command, servers in parallel, as a shell loop would do it).

Targets (issue "Alerts: host checks ..."): a sweep costs at most one SSH handshake plus 2 round trips
per server, servers in parallel. Measured as: a few servers each swept alone through its proxy,
minus the same sweep with no added latency (what the server itself takes; fastest of 5 interleaved
runs, as this machine's 2 cores also run every server), against one handshake + 2 round trips timed
on the same link. Counted in the full parallel sweep: connections and remote commands per server.

Run: ``python tests/bench/bench_checks.py`` (BENCH_EXTRA=20, BENCH_RUNS=2).
"""

from __future__ import annotations

import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchlib import ROOT, result

RTT = 0.120
DELAY_EACH_WAY_MS = 60.0

# The commands the host script runs, one `ssh` each (what a shell loop over the same checks costs).
NAIVE_COMMANDS = [
    "date +%s", "cat /proc/uptime", "cat /proc/loadavg", "nproc", "grep -E '^(MemTotal|MemAvailable):' /proc/meminfo",
    "uname -r", "cat /etc/debian_version", "cat /proc/sys/kernel/random/boot_id",
    "test -e /var/run/reboot-required", "test -d /run/systemd/system", "id -un", "ss -Htlnup",
    "systemctl list-units --state=failed --no-legend --plain --no-pager --full",
    "df -P -k -l -x tmpfs -x devtmpfs -x squashfs -x overlay",
    "df -P -i -l -x tmpfs -x devtmpfs -x squashfs -x overlay",
    "timedatectl show", "chronyc -n tracking", "env LC_ALL=C apt list --upgradable",
    "find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -printf '%T@\\n'",
    "find /var/log/journal /run/log/journal -name '*.journal'",
    "journalctl -q --no-pager -o short-unix --since -1h -u ssh -u sshd", "tail -n 50000 /var/log/auth.log",
    "nft list ruleset", "iptables-save", "env TZ=UTC last -x --time-format iso reboot shutdown",
    "env TZ=UTC journalctl --list-boots --no-pager -q -o json", "test -r /var/log/aide/aide.log",
]


def _run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, capture_output=True, timeout=300, check=False, env=env)


class Fleet:
    """The lab (3 servers, proxied) and ``extra`` bare sshd servers, each reachable direct or proxied."""

    def __init__(self, folder: Path, extra: int) -> None:
        self.folder = folder
        self.extra = extra
        self.stoppers: list[Any] = []
        self.servers: list[dict[str, Any]] = []  # name, host_key, direct, proxied, checks
        self.lab_config = ""

    def __enter__(self) -> Fleet:
        from panel.lab import procs
        from panel.lab.fleet import Lab
        from panel.lab.latency import start_proxy_process
        from panel.lab.sshd import start_sshd

        lab = Lab(self.folder / "lab", latency_ms=DELAY_EACH_WAY_MS, boot_delay=0.5)
        self.stoppers.append(lab.down)
        info = lab.up()
        self.key = info.client_key
        self.lab_info = info
        self.lab_config = info.config_path.read_text()
        for server in info.servers.values():
            self.servers.append({"name": server.name, "host_key": server.host_key, "direct": server.sshd_port,
                                 "proxied": server.port, "lab": True})
        watched = self.folder / "watched"
        (watched / "cron.d").mkdir(parents=True)
        for number in range(30):
            (watched / f"file{number}.conf").write_text(f"setting = {number}\n")
        sshds = []
        for number in range(self.extra):
            sshd = start_sshd(self.folder / f"sshd{number}", client_key=self.key, name=f"extra{number}")
            self.stoppers.append(sshd.stop)
            sshds.append(sshd)
        ports = procs.free_ports(len(sshds))
        record = start_proxy_process(list(zip(ports, [s.port for s in sshds], strict=True)), DELAY_EACH_WAY_MS,
                                     log=self.folder / "latency.log")
        self.stoppers.append(lambda: procs.stop(record))
        for number, (sshd, port) in enumerate(zip(sshds, ports, strict=True)):
            self.servers.append({"name": f"extra{number}", "host_key": sshd.host_key_line, "direct": sshd.port,
                                 "proxied": port, "lab": False, "watch": str(watched)})
        return self

    def __exit__(self, *exc: object) -> None:
        for stop in reversed(self.stoppers):
            try:
                stop()
            except Exception as error:  # keep stopping the rest
                print(f"cleanup: {error}", file=sys.stderr)

    def config(self, *, proxied: bool) -> str:
        """The lab's own config (every check it configures) plus the extra servers."""
        text = self.lab_config
        if not proxied:
            for server in self.servers:
                if server["lab"]:
                    text = text.replace(f"port = {server['proxied']}\n", f"port = {server['direct']}\n")
        user = self.lab_info.user
        for server in self.servers:
            if server["lab"]:
                continue
            port = server["proxied"] if proxied else server["direct"]
            text += (f'\n[servers.{server["name"]}]\nhost = "127.0.0.1"\nport = {port}\nuser = "{user}"\n'
                     f'identity = "{self.key}"\nhost_key = "{server["host_key"]}"\n\n'
                     f'[servers.{server["name"]}.checks]\nwatch_paths = ["{server["watch"]}"]\n')
        return text


class CountingPool:
    """Counts SSH connections and remote commands per server (wraps the panel's own pool)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.connects: Counter[str] = Counter()
        self.commands: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def transport(self, endpoint: Any, cancel: Any = None) -> Any:
        fresh = not self.inner.is_connected(endpoint)
        transport = self.inner.transport(endpoint) if cancel is None else self.inner.transport(endpoint, cancel)
        if fresh:
            with self.lock:
                self.connects[endpoint.name] += 1
        return transport

    def run(self, endpoint: Any, command: str, **kwargs: Any) -> Any:
        with self.lock:
            self.commands[endpoint.name] += 1
        if not self.inner.is_connected(endpoint):
            with self.lock:
                self.connects[endpoint.name] += 1
        return self.inner.run(endpoint, command, **kwargs)


def open_context(config: Path, data: Path) -> Any:
    from panel.context import PanelContext
    from panel.secrets import SecretStore
    from panel.store import Store
    from tests.keyrings import MemoryKeyring

    return PanelContext.open(config, store=Store(data / "store.sqlite3"), secrets=SecretStore(MemoryKeyring()))


def sweep(context: Any, servers: list[str] | None = None) -> float:
    from panel.alerts import run_checks
    from services.checks.vendors import VendorKeys

    started = time.perf_counter()
    run = run_checks(context, servers=servers, keys=VendorKeys(), vendors=False, tls=False)
    elapsed = time.perf_counter() - started
    down = [name for name, outcome in run.sweep.servers.items()
            if outcome.status is None or str(outcome.status.state) != "up"]
    if down:
        raise SystemExit(f"servers not up during the bench: {down}")
    return elapsed


def naive(fleet: Fleet, folder: Path) -> float:
    """Every command of the checks as its own `ssh` call, one by one per server, servers in parallel."""
    known = folder / "known_hosts"
    known.write_text("".join(f"[127.0.0.1]:{s['proxied']} {s['host_key']}\n" for s in fleet.servers))
    user = fleet.lab_info.user

    def one_server(server: dict[str, Any]) -> None:
        commands = list(NAIVE_COMMANDS)
        if server["lab"]:
            for repo in fleet.lab_info.backups:
                if (repo.get("via") or repo["server"]) == server["name"]:
                    commands.append(f"rdiff-backup --api-version 201 --parsable-output list increments "
                                    f"{shlex.quote(repo['path'])}")
            root = fleet.lab_info.servers[server["name"]].root
            commands += [f"find {root / 'etc'} -xdev -printf '%y %m %u %g %s %p\\n'",
                         f"find {root / 'etc'} -xdev -type f -print0 | xargs -0r sha256sum -z"]
        else:
            commands += [f"find {server['watch']} -xdev -printf '%y %m %u %g %s %p\\n'",
                         f"find {server['watch']} -xdev -type f -print0 | xargs -0r sha256sum -z"]
        for command in commands:
            _run(["ssh", "-F", "/dev/null", "-i", str(fleet.key), "-o", f"UserKnownHostsFile={known}",
                  "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                  "-o", "IdentitiesOnly=yes", "-T", "-p", str(server["proxied"]), f"{user}@127.0.0.1", command])

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(fleet.servers)) as pool:
        list(pool.map(one_server, fleet.servers))
    return time.perf_counter() - started


def handshake_time(fleet: Fleet, config: Path) -> float:
    """One SSH connection (TCP, key exchange, host key check, login) on the 120 ms link, median of 3."""
    from services.ssh import SshPool

    times = []
    for _ in range(3):
        pool = SshPool()
        ctx = open_context(config, fleet.folder / "handshake")
        endpoint = ctx.system_endpoint(fleet.servers[-1]["name"])
        started = time.perf_counter()
        pool.transport(endpoint)
        times.append(time.perf_counter() - started)
        pool.close_all()
        ctx.close()
        ctx.store.close()
    return statistics.median(times)


def per_server(link: Any, direct: Any, names: list[str], runs: int) -> dict[str, dict[str, float]]:
    """Each server swept alone (so the servers' CPU is not shared), on the link and direct, interleaved so
    that a busy moment of this shared machine hits both; the fastest of ``runs`` counts (the least noise)."""
    times: dict[str, dict[str, list[float]]] = {}
    for name in names:
        entry = times.setdefault(name, {"link_cold": [], "link_warm": [], "direct_cold": [], "direct_warm": []})
        for _ in range(runs):
            for label, context in (("direct", direct), ("link", link)):
                context.pool.close_all()
                entry[f"{label}_cold"].append(sweep(context, [name]))
                entry[f"{label}_warm"].append(sweep(context, [name]))
    return {name: {key: min(values) for key, values in entry.items()} for name, entry in times.items()}


def main() -> None:
    extra = int(os.environ.get("BENCH_EXTRA", "20"))
    runs = int(os.environ.get("BENCH_RUNS", "2"))
    for name in ("STRIPE_API_KEY", "MAILGUN_API_KEY", "CLOUDFLARE_API_TOKEN", "SSH_AUTH_SOCK"):
        os.environ.pop(name, None)
    with tempfile.TemporaryDirectory(prefix="bench-checks-") as tmp:
        folder = Path(tmp)
        os.environ["HOME"] = str(folder)
        os.environ["PANEL_DATA_DIR"] = str(folder / "data")
        with Fleet(folder, extra) as fleet:
            servers = len(fleet.servers)
            proxied = folder / "proxied.toml"
            direct = folder / "direct.toml"
            proxied.write_text(fleet.config(proxied=True))
            direct.write_text(fleet.config(proxied=False))
            handshake = handshake_time(fleet, proxied)
            # Servers that own no backup read elsewhere: swept alone, they make exactly one connection.
            sample = ["backup1", *[s["name"] for s in fleet.servers if not s["lab"]][:3]]

            direct_context = open_context(direct, folder / "direct")
            direct_context.pool = CountingPool(direct_context.pool)
            sweep(direct_context)  # the first sweep records the baselines (hashes every watched file)
            context = open_context(proxied, folder / "proxied")
            counting = CountingPool(context.pool)
            context.pool = counting
            sweep(context)
            alone = per_server(context, direct_context, sample, max(runs, 5))
            direct_context.close()
            full = []
            for _ in range(runs):
                counting.inner.close_all()
                counting.connects.clear()
                counting.commands.clear()
                full.append(sweep(context))
                connects_cold = dict(counting.connects)
                commands_cold = dict(counting.commands)
            context.close()

            naive_time = naive(fleet, folder)

        t_full = statistics.median(full)
        cost_cold = statistics.median(alone[n]["link_cold"] - alone[n]["direct_cold"] for n in sample)
        cost_warm = statistics.median(alone[n]["link_warm"] - alone[n]["direct_warm"] for n in sample)
        budget_cold = handshake + 2 * RTT
        budget_warm = 2 * RTT
        print(f"# {servers} servers ({servers - extra} lab + {extra} extra), {RTT * 1000:.0f} ms round trip "
              f"(proxy, {DELAY_EACH_WAY_MS:g} ms each way), {runs} runs each")
        print(f"# one SSH handshake on this link: {handshake:.3f} s ({handshake / RTT:.1f} round trips)")
        for name in sample:
            best = alone[name]
            print(f"#   {name:<10} alone: cold {best['link_cold']:.3f} s on the link vs {best['direct_cold']:.3f} s "
                  f"direct; warm {best['link_warm']:.3f} s vs {best['direct_warm']:.3f} s")
        print(f"# full sweep of all {servers} servers on the link (cold, in parallel): {t_full:.3f} s; the same "
              f"commands one `ssh` at a time (servers in parallel): {naive_time:.3f} s")
        max_connects = max(connects_cold.values(), default=0)
        max_commands = max(commands_cold.values(), default=0)
        print(f"# per server in a cold full sweep: at most {max_connects} connection(s) and {max_commands} remote "
              f"command(s) ({len(commands_cold)} servers)")
        result("checks: full sweep vs `ssh` one command at a time", t_full, naive_time,
               "< 1 (one command per server instead of one connection per command)", ok=t_full < naive_time)
        result("checks: latency cost of a cold sweep vs 1 handshake + 2 round trips", cost_cold, budget_cold,
               "<= 1.0 (+10% for timing noise)", ok=cost_cold <= budget_cold * 1.1)
        result("checks: latency cost of a warm sweep vs 2 round trips", cost_warm, budget_warm,
               "<= 1.0, pooled (+10% for timing noise)", ok=cost_warm <= budget_warm * 1.1)
        result("checks: remote commands per server (full sweep)", float(max_commands), 1.0, "= 1", unit="",
               ok=max_commands == 1)
        result("checks: connections per server (cold full sweep)", float(max_connects), 1.0, "<= 1", unit="",
               ok=max_connects <= 1)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
