"""Benchmark: a 1,000-session repository on a server at a 120 ms round trip (a real sshd behind
panel/lab/latency.py's proxy, 60 ms each way), read by the panel vs OpenSSH's ``ssh`` in the same run.

    /tmp/venv/bin/python tests/bench/bench_backups_ssh.py [--repeat 5]

The repository is the one tests/bench/bench_backups.py builds (and caches) with the real
rdiff-backup 2.2. Compared, median of --repeat runs each:

- the panel's reader (``services.backups.read_repository`` through ``SshRunner`` over the pooled
  connection, as the window reads) against ``ssh HOST rdiff-backup ... list increments --size``
  through an OpenSSH master connection (ControlMaster): both warm, one command over one link.
  The reader also reads every session_statistics file, the newest error_log and the markers.
- the same, cold: the panel connecting first, against a plain ``ssh`` (a new connection).
- the same two without ``--size`` (the window's reader can skip the walk of the mirror).

Target (issue "Backups"): the reader at most 1.2x the ``ssh`` listing.

Then, in the window (offscreen Qt): what showing that repository adds: setting the sessions model
with its 1,000 rows plus the first paint of the table (target under 100 ms), and the page's whole
update for the repository (rows, sessions, chart, details), as information.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchlib import ROOT, BenchServer, result, sshd_fleet

RTT_MS = 120.0
TARGET_RATIO = 1.2
PAINT_BUDGET = 0.100
LISTING = ["rdiff-backup", "--api-version", "201", "--parsable-output", "list", "increments"]


def timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def median(function: Callable[[], object], repeat: int) -> float:
    return statistics.median(timed(function) for _ in range(repeat))


def paired(first: Callable[[], object], second: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Medians of the two, run in turns, so that a busy moment of the machine hits both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        times[0].append(timed(first))
        times[1].append(timed(second))
    return statistics.median(times[0]), statistics.median(times[1])


def ssh_argv(server: BenchServer, key: Path, known_hosts: Path, *options: str) -> list[str]:
    return ["ssh", "-F", "/dev/null", "-q", "-i", str(key), "-p", str(server.port),
            "-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", *options,
            "root@127.0.0.1"]


def run_ssh(argv: list[str]) -> bytes:
    completed = subprocess.run(argv, capture_output=True, timeout=300, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"ssh failed ({completed.returncode}): {completed.stderr.decode()[-500:]}")
    return completed.stdout


def bench_link(repo: Path, repeat: int, folder: Path) -> object:
    from services.backups import read_repository
    from services.hostkeys import TrustSources
    from services.inventory import BackupSpec
    from services.ssh import SshPool, SshRunner
    from services.ssh.endpoint import SshEndpoint

    with sshd_fleet(folder / "fleet", 1, latency_ms=RTT_MS) as (key, servers):
        server = servers[0]
        known_hosts = folder / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{server.port} {server.host_key_line}\n")
        endpoint = SshEndpoint(name="bench", host="127.0.0.1", port=server.port, user="root",
                               trust=TrustSources(server.host_key_line, None), identities=(str(key),), use_agent=False)
        spec = BackupSpec("bench", str(repo))
        control = folder / "cm"
        master = ssh_argv(server, key, known_hosts, "-o", "ControlMaster=auto", "-o", f"ControlPath={control}",
                          "-o", "ControlPersist=120")
        plain = ssh_argv(server, key, known_hosts)

        def openssh(argv: list[str], sizes: bool) -> Callable[[], object]:
            command = [*LISTING, *(["--size"] if sizes else []), str(repo)]
            return lambda: run_ssh([*argv, *command])

        found = None
        pool = SshPool()
        try:
            runner = SshRunner(pool, endpoint)
            found = read_repository(runner, spec, server="bench", timeout=300)  # connects, warms the server's cache
            assert len(found.sessions) == 1000 and found.problem is None, (len(found.sessions), found.problem)
            listed = run_ssh([*master, *LISTING, str(repo)]).decode()  # also opens the master connection
            assert listed.count("time:") == 1000

            def reader(sizes: bool) -> Callable[[], object]:
                return lambda: read_repository(runner, spec, server="bench", with_sizes=sizes, timeout=300)

            def cold_reader(sizes: bool) -> Callable[[], object]:
                def read() -> None:
                    cold = SshPool()
                    try:
                        read_repository(SshRunner(cold, endpoint), spec, server="bench", with_sizes=sizes, timeout=300)
                    finally:
                        cold.close_all()
                return read

            rtt = median(lambda: runner.run(["true"]), repeat)
            figures = {
                "warm_sizes": paired(reader(True), openssh(master, True), repeat),
                "cold_sizes": paired(cold_reader(True), openssh(plain, True), repeat),
                "warm_plain": paired(reader(False), openssh(master, False), repeat),
                "cold_plain": paired(cold_reader(False), openssh(plain, False), repeat),
            }
        finally:
            pool.close_all()
            subprocess.run([*master[:-1], "-O", "exit", "root@127.0.0.1"], capture_output=True, check=False)

    print(f"1,000 sessions at a {RTT_MS:.0f} ms round trip (measured `true`: {rtt * 1000:.0f} ms), median of "
          f"{repeat}, {os.cpu_count()} cores:")
    names = {
        "warm_sizes": ("backups_1000_ssh_120ms_warm_reader_vs_openssh_master_list_size",
                       "panel reader (pooled) vs ssh ControlMaster `list increments --size`"),
        "cold_sizes": ("backups_1000_ssh_120ms_cold_reader_vs_openssh_list_size",
                       "panel reader (connecting) vs plain ssh `list increments --size`"),
        "warm_plain": ("backups_1000_ssh_120ms_warm_reader_nosize_vs_openssh_master_list",
                       "panel reader without sizes (pooled) vs ssh ControlMaster `list increments`"),
        "cold_plain": ("backups_1000_ssh_120ms_cold_reader_nosize_vs_openssh_list",
                       "panel reader without sizes (connecting) vs plain ssh `list increments`"),
    }
    for key_name, (panel, openssh_time) in figures.items():
        print(f"  {names[key_name][1]:<78} {panel * 1000:7.0f} ms vs {openssh_time * 1000:7.0f} ms")
    for key_name, (panel, openssh_time) in figures.items():
        result(names[key_name][0], panel, openssh_time, f"<={TARGET_RATIO}x",
               ok=panel <= TARGET_RATIO * openssh_time)
    return found


def bench_window(repository: object, repeat: int) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from panel.context import PanelContext
    from panel.secrets import SecretStore
    from panel.store import Store
    from services.backups import Repository
    from services.inventory import BackupSpec, Inventory, ServerSpec
    from tests.keyrings import MemoryKeyring
    from views.pages.backups import BackupsPage
    from views.state import PanelState
    from views.workers import JobRunner

    assert isinstance(repository, Repository)
    app = QApplication.instance() or QApplication([])
    folder = Path(tempfile.mkdtemp(prefix="bench-backups-window-"))
    os.environ["PANEL_DATA_DIR"] = str(folder / "data")
    try:
        spec = ServerSpec(name="bench", host="127.0.0.1", backups=(BackupSpec("bench", repository.path),))
        inventory = Inventory(servers={"bench": spec})
        context = PanelContext(folder / "panel.toml", inventory, Store(folder / "store.sqlite3"),
                               SecretStore(MemoryKeyring()))
        runner = JobRunner()
        state = PanelState(context, runner)
        state.poll_timer.stop()
        page = BackupsPage(state, autostart=False)
        page.resize(1280, 800)
        page.show()
        for _ in range(20):
            app.processEvents()
        sessions = list(repository.sessions)
        table = page.sessions_table

        def model_and_paint() -> None:
            page.sessions_model.set_sessions([])
            table.repaint()
            started = time.perf_counter()
            page.sessions_model.set_sessions(sessions)
            table.repaint()  # the first paint of the table with its rows
            timings.append(time.perf_counter() - started)

        def whole_page() -> None:
            page.model.update(repository)
            page._shown = (0, None)  # as if another repository had been on screen
            started = time.perf_counter()
            page._repository_selected()
            page.repaint()
            timings.append(time.perf_counter() - started)

        timings: list[float] = []
        for _ in range(repeat):
            model_and_paint()
        paint = statistics.median(timings)
        timings.clear()
        for _ in range(repeat):
            whole_page()
        whole = statistics.median(timings)
        assert page.sessions_model.rowCount() == 1000
        print(f"window: sessions model (1,000 rows) + first paint of the table {paint * 1000:.1f} ms; the page's "
              f"whole update (sessions, chart, details) {whole * 1000:.1f} ms")
        result("backups_window_1000_sessions_model_and_first_paint", paint, PAINT_BUDGET, "<100ms (budget)",
               ok=paint < PAINT_BUDGET)
        result("backups_window_1000_sessions_page_update_with_chart", whole, PAINT_BUDGET,
               "info: vs the 100ms budget", ok=None)
        page.close()
        runner.shutdown()
        context.store.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from bench_backups import cache_dir, ensure_repository

    repo = ensure_repository(cache_dir())
    folder = Path(tempfile.mkdtemp(prefix="bench-backups-ssh-"))
    old_home = os.environ.get("HOME")
    os.environ["HOME"] = str(folder)  # the user's ~/.ssh plays no part
    try:
        repository = bench_link(repo, args.repeat, folder)
    finally:
        if old_home is not None:
            os.environ["HOME"] = old_home
        shutil.rmtree(folder, ignore_errors=True)
    bench_window(repository, args.repeat)


if __name__ == "__main__":
    main()
