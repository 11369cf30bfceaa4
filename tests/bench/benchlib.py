"""Shared pieces of the benchmarks: result lines, medians, and fleets of real sshd servers."""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def result(name: str, measured: float, baseline: float, target: str, unit: str = "s",
           ok: bool | None = None) -> None:
    """One line that tests/bench/run.py collects: name, measured, baseline, ratio, target."""
    ratio = measured / baseline if baseline else float("inf")
    verdict = "" if ok is None else ("met" if ok else "MISSED")
    print(f"RESULT\t{name}\t{measured:.4f}{unit}\t{baseline:.4f}{unit}\t{ratio:.2f}\t{target}\t{verdict}",
          flush=True)


def median_time(function: Callable[[], object], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@dataclass
class BenchServer:
    name: str
    port: int  # what the client dials (the latency proxy's port when there is one)
    host_key_line: str
    direct_port: int = 0  # the sshd itself, without the proxy: for baselines of server time


@contextlib.contextmanager
def sshd_fleet(folder: Path, count: int, *, latency_ms: float = 0.0) -> Iterator[tuple[Path, list[BenchServer]]]:
    """``count`` real sshd servers, each behind a proxy delaying each direction by latency_ms / 2."""
    from panel.lab import procs
    from panel.lab.latency import start_proxy_process
    from panel.lab.sshd import ensure_client_key, start_sshd

    key = ensure_client_key(folder / "keys")
    servers = []
    stoppers: list[Callable[[], None]] = []
    try:
        sshds = []
        for number in range(count):
            sshd = start_sshd(folder / f"sshd{number}", client_key=key, name=f"bench{number}")
            stoppers.append(sshd.stop)
            sshds.append(sshd)
        ports = [s.port for s in sshds]
        if latency_ms:
            # The proxies run in their own process, so they don't compete with the client for the GIL.
            ports = procs.free_ports(count)
            record = start_proxy_process(list(zip(ports, [s.port for s in sshds], strict=True)), latency_ms / 2,
                                         log=folder / "latency.log")
            stoppers.append(lambda: procs.stop(record))
        for number, (sshd, port) in enumerate(zip(sshds, ports, strict=True)):
            servers.append(BenchServer(f"bench{number}", port, sshd.host_key_line, sshd.port))
        yield key, servers
    finally:
        for stop in reversed(stoppers):
            stop()
