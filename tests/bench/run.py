"""Run every benchmark here, each in its own process, and print one table of ratios.

    python tests/bench/run.py [NAME ...]     e.g.  python tests/bench/run.py startup probe
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(names: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if names:
        scripts = [s for s in scripts if any(name in s.stem for name in names)]
    rows: list[list[str]] = []
    failures = []
    for script in scripts:
        print(f"running {script.name} …", file=sys.stderr, flush=True)
        started = time.monotonic()
        completed = subprocess.run([sys.executable, str(script)], cwd=HERE, capture_output=True, text=True,
                                   check=False)
        for line in completed.stdout.splitlines():
            if line.startswith("RESULT\t"):
                rows.append(line.split("\t")[1:])
        if completed.returncode != 0:
            failures.append(f"{script.name} exited {completed.returncode}:\n{completed.stderr[-2000:]}")
        print(f"  {time.monotonic() - started:.0f} s", file=sys.stderr)
    header = ["benchmark", "measured", "baseline (same run)", "ratio", "target", ""]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)))
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
