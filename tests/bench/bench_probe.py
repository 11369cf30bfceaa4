"""Probing many servers at once, locally and "across an ocean" (120 ms round trip).

Issue "The panel's foundation": the time to probe 20 servers in parallel, against probing one.
Issue "The local demo fleet": at 120 ms, the panel's sweep of 23 servers against OpenSSH's `ssh`
client doing the same probe one server after another. Targets: a cold sweep within 1.3x the slowest
single server's handshake plus probe; a warm sweep (pooled connections) within 2 round trips plus
server time.

"Server time" is the same warm sweep against the same sshd servers without the latency proxy: it
holds what the servers spend per command (sshd's session set-up and the shell), which 23 servers
sharing this machine's 2 cores pay together, unlike 23 real servers.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchlib import BenchServer, result, sshd_fleet

from services.hostkeys import PublicKey, add_known_host
from services.inventory import ServerSpec
from services.probe import FACTS_SCRIPT, ServerState, probe_many, probe_server
from services.ssh import SshPool, quote_argv, system_endpoint

RTT = 0.120


def endpoints(servers: list[BenchServer], key: Path, known_hosts: Path) -> list:  # type: ignore[type-arg]
    return [system_endpoint(ServerSpec(name=s.name, host="127.0.0.1", port=s.port, user="root", identity=str(key),
                                       host_key=s.host_key_line), known_hosts=known_hosts) for s in servers]


def cold_single(endpoint) -> float:  # type: ignore[no-untyped-def]
    pool = SshPool()
    started = time.perf_counter()
    status = probe_server(pool, endpoint)
    elapsed = time.perf_counter() - started
    pool.close_all()
    assert status.state is ServerState.UP, status.detail
    return elapsed


def sweep(pool: SshPool, targets: list) -> float:  # type: ignore[type-arg]
    started = time.perf_counter()
    statuses = probe_many(pool, [(e, None) for e in targets])
    elapsed = time.perf_counter() - started
    assert all(s.state is ServerState.UP for s in statuses), [s.detail for s in statuses if s.detail]
    return elapsed


def openssh_one_by_one(servers: list[BenchServer], key: Path, known_hosts: Path) -> float:
    started = time.perf_counter()
    for server in servers:
        subprocess.run(
            ["ssh", "-q", "-i", str(key), "-p", str(server.port), "-o", f"UserKnownHostsFile={known_hosts}",
             "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ControlMaster=no",
             "root@127.0.0.1", quote_argv(["sh", "-c", FACTS_SCRIPT])],
            check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=60,
        )
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        os.environ["HOME"] = str(folder)  # the user's ~/.ssh plays no part
        # Locally: 20 servers at once against one.
        with sshd_fleet(folder / "local", 20) as (key, servers):
            targets = endpoints(servers, key, folder / "kh")
            one = statistics.median(cold_single(targets[0]) for _ in range(5))
            twenty = statistics.median(sweep(SshPool(), targets) for _ in range(3))
            # No numeric target in the issue: 20 sequential probes would be a ratio of 20; what is left
            # here is the servers' own CPU (20 sshd sessions on this machine's 2 cores).
            result("probe_20_vs_1_cold_local", twenty, one, "information (20 = one by one)")

        # Across the ocean: 23 servers (a fleet of 3 plus 20 extra) behind a 120 ms round trip.
        with sshd_fleet(folder / "ocean", 23, latency_ms=RTT * 1000) as (key, servers):
            known_hosts = folder / "known_hosts"
            for server in servers:
                add_known_host(known_hosts, "127.0.0.1", server.port, PublicKey.parse(server.host_key_line))
            targets = endpoints(servers, key, folder / "kh2")
            slowest_single = max(cold_single(target) for target in targets)
            pool = SshPool()
            cold = sweep(pool, targets)
            warm = statistics.median(sweep(pool, targets) for _ in range(3))
            pool.close_all()
            direct = [BenchServer(s.name, s.direct_port, s.host_key_line) for s in servers]
            direct_pool = SshPool()
            direct_targets = endpoints(direct, key, folder / "kh3")
            direct_cold = sweep(direct_pool, direct_targets)
            server_time = statistics.median(sweep(direct_pool, direct_targets) for _ in range(3))
            direct_pool.close_all()
            by_hand = openssh_one_by_one(servers, key, known_hosts)
            result("sweep_23_cold_120ms_vs_slowest_single", cold, slowest_single, "<=1.3x",
                   ok=cold <= 1.3 * slowest_single)
            result("sweep_23_cold_latency_cost_vs_slowest_single", cold - direct_cold, slowest_single, "<=1.3x",
                   ok=cold - direct_cold <= 1.3 * slowest_single)
            result("sweep_23_warm_120ms_vs_2rtt_plus_server", warm, 2 * RTT + server_time, "<=1.0x",
                   ok=warm <= 2 * RTT + server_time)
            result("sweep_23_cold_120ms_vs_openssh_serial", cold, by_hand, "faster (<1x)", ok=cold < by_hand)


if __name__ == "__main__":
    main()
