"""Stops what a test run started when the run dies before its fixtures are torn down (a crash, a
kill -9): the real servers would otherwise live on, a MariaDB with half a million rows among them.

tests/conftest.py starts this as a child of the run, in its own session (so a Ctrl-C reaches only
the run), with a pipe on its stdin, and writes to it each folder the fixtures start servers in, one
a line. When the pipe closes, which happens however the run ends, this stops every process whose
command line names one of those folders: TERM, then KILL. After a clean run it finds nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from panel.lab import procs


def main() -> None:
    folders = [line.strip() for line in sys.stdin if line.strip()]  # until the run closes the pipe
    for folder in folders:
        for pid in procs.processes_mentioning(folder.rstrip("/") + "/"):
            procs.stop(procs.record_for(pid, f"left over by a test run: {pid}"))


if __name__ == "__main__":
    main()
