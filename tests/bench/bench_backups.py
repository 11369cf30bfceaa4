"""Benchmark: reading a 1,000-session repository with services.backups vs `rdiff-backup list increments`.

    /tmp/venv/bin/python tests/bench/bench_backups.py [--repeat 5] [--cache DIR]

The repository is written once by the real rdiff-backup 2.2 (1,000 sessions dated a day apart with
--current-time, each changing one of 50 files) and kept in ~/.cache/panel/bench-backups-v1/.

Building it naively is quadratic: every rdiff-backup run lists all of rdiff-backup-data (7 files per
session), so run 1,000 alone takes ~0.6 s and the whole build ~3.5 minutes. The builder therefore
runs every session in one process (rdiff-backup's own entry point, under its own interpreter) and,
between sessions, moves the finished sessions' metadata files (statistics, error logs, old metadata
diffs) aside, putting them all back at the end: a backup only needs the newest ones. The result is
exactly what rdiff-backup wrote, and it is checked with the real `rdiff-backup list increments`
and `verify` before it is used.

Both sides run through the same LocalRunner; the reader also reads every session's statistics,
the newest error_log and the current_mirror markers (in the same single script). Over SSH both are
one round trip; the lead adds the 120 ms variant.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

SESSIONS = 1000
FILES = 50
T0 = 1_600_000_000  # 2020-09-13T12:26:40Z
DAY = 86400
VERSION = "bench-backups-v1"
_STAMP = re.compile(r"\.(\d{4}-\d\d-\d\dT\d\d[:-]\d\d[:-]\d\d(?:Z|[+-]\d\d[:-]\d\d))\.")


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "panel" / VERSION


# --- the builder (runs under rdiff-backup's interpreter) ---------------------------------------------------


def build(folder: Path) -> None:
    from rdiffbackup import run  # Debian's, importable under its interpreter

    time.tzset()
    source, repo, aside = folder / "src", folder / "repo", folder / "aside"
    (source / "etc").mkdir(parents=True)
    aside.mkdir()
    for index in range(FILES):
        (source / "etc" / f"file{index:02d}.conf").write_text(f"file {index}\n")
    started = time.monotonic()
    data = repo / "rdiff-backup-data"
    for session in range(SESSIONS):
        when = T0 + session * DAY
        changed = source / "etc" / f"file{session % FILES:02d}.conf"
        with open(changed, "a") as out:
            out.write(f"session {session}\n")
        os.utime(changed, (when - 60, when - 60))
        code = run.main_run(["--no-fsync", "--current-time", str(when), "backup", str(source), str(repo)])
        if code & 1:
            raise SystemExit(f"rdiff-backup failed on session {session} (exit {code})")
        # keep only what the next run needs: the newest session's files (here and for the folders'
        # own increment markers in increments/)
        for place, parked in ((data, aside), (data / "increments", aside / "increments")):
            parked.mkdir(exist_ok=True)
            names = os.listdir(place)
            stamps = sorted({m.group(1) for n in names if (m := _STAMP.search(n))})
            for name in names:
                match = _STAMP.search(name)
                if match and match.group(1) != stamps[-1]:
                    os.rename(place / name, parked / name)
        if session % 100 == 99:
            print(f"{session + 1} sessions in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    for place, parked in ((data / "increments", aside / "increments"), (data, aside)):
        for name in os.listdir(parked):
            if name != "increments":
                os.rename(parked / name, place / name)
    shutil.rmtree(aside)
    (folder / "complete.json").write_text(json.dumps({"sessions": SESSIONS, "seconds": time.monotonic() - started}))


def ensure_repository(root: Path) -> Path:
    """The cached repository, built (and checked with the real rdiff-backup) the first time."""
    if (root / "complete.json").exists():
        return root / "repo"
    from panel.lab.backups import rdiff_backup_interpreter

    building = root.with_name(root.name + f".build-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    print(f"building {SESSIONS} sessions once into {root} ...", flush=True)
    started = time.monotonic()
    env = dict(os.environ, TZ="UTC")
    env.pop("PYTHONPATH", None)
    subprocess.run([rdiff_backup_interpreter(), str(Path(__file__).resolve()), "--build", str(building)],
                   check=True, env=env, stdout=subprocess.DEVNULL)  # rdiff-backup's NOTEs go to stdout
    repo = building / "repo"
    listing = subprocess.run(["rdiff-backup", "--api-version", "201", "--parsable-output", "list", "increments",
                              str(repo)], capture_output=True, text=True, check=True).stdout
    count = listing.count("time:")
    verified = subprocess.run(["rdiff-backup", "--api-version", "201", "verify", "--at", str(T0 + 500 * DAY),
                               str(repo)], capture_output=True, check=False).returncode
    if count != SESSIONS or verified != 0:
        raise SystemExit(f"the built repository is wrong: {count} increments listed, verify exit {verified}")
    shutil.rmtree(root, ignore_errors=True)
    building.rename(root)
    print(f"built and checked in {time.monotonic() - started:.1f} s (rdiff-backup lists {count} increments)")
    return root / "repo"


# --- the benchmark -----------------------------------------------------------------------------------------


def _median_seconds(function: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench(repo: Path, repeat: int) -> None:
    from services.backups import read_repository
    from services.inventory import BackupSpec
    from services.runner import LocalRunner

    runner = LocalRunner()
    spec = BackupSpec("bench", str(repo))
    found = read_repository(runner, spec, server="bench")
    assert len(found.sessions) == SESSIONS and found.problem is None, (len(found.sessions), found.problem)
    listing = ["rdiff-backup", "--api-version", "201", "--parsable-output", "list", "increments"]

    def list_sizes() -> None:
        runner.run([*listing, "--size", str(repo)], timeout=300)

    def list_plain() -> None:
        runner.run([*listing, str(repo)], timeout=300)

    def read_sizes() -> None:
        read_repository(runner, spec, server="bench", timeout=300)

    def read_plain() -> None:
        read_repository(runner, spec, server="bench", with_sizes=False, timeout=300)

    results = {
        "rdiff-backup list increments --size": _median_seconds(list_sizes, repeat),
        "reader (with sizes)": _median_seconds(read_sizes, repeat),
        "rdiff-backup list increments": _median_seconds(list_plain, repeat),
        "reader (without sizes)": _median_seconds(read_plain, repeat),
    }
    print(f"{SESSIONS} sessions, median of {repeat} runs, LocalRunner, {os.cpu_count()} cores:")
    for name, seconds in results.items():
        print(f"  {name:<40} {seconds * 1000:8.0f} ms")
    print("  (the reader also reads all 1,000 session_statistics files, the newest error_log and the")
    print("   current_mirror markers, in the same one script: one round trip over SSH)")
    ratio = results["reader (with sizes)"] / results["rdiff-backup list increments --size"]
    ratio_plain = results["reader (without sizes)"] / results["rdiff-backup list increments"]
    print(f"ratio reader/list-increments: {ratio:.2f} (with sizes), {ratio_plain:.2f} (without sizes)")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--build":
        build(Path(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=cache_dir())
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for services/panel
    bench(ensure_repository(args.cache), args.repeat)


if __name__ == "__main__":
    main()
