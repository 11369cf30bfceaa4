"""The reaper stops what a test run left running once the run's pipe to it closes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from panel.lab import procs

SERVES_UNTIL_STOPPED = "import signal; signal.pause()"


def test_servers_of_a_run_that_died_are_stopped(tmp_path: Path) -> None:
    folder = tmp_path / "crashed-run"
    folder.mkdir()
    # a "server" whose command line names the folder, as sshd -f FOLDER/sshd_config does
    server = subprocess.Popen([sys.executable, "-c", SERVES_UNTIL_STOPPED, str(folder / "config")],
                              start_new_session=True)
    bystander = subprocess.Popen([sys.executable, "-c", SERVES_UNTIL_STOPPED, str(tmp_path / "other")],
                                 start_new_session=True)
    reaper = subprocess.Popen([sys.executable, str(Path(__file__).with_name("reaper.py"))], stdin=subprocess.PIPE,
                              text=True)
    try:
        assert reaper.stdin is not None
        reaper.stdin.write(f"{folder}\n")
        reaper.stdin.close()  # the run ended, however it ended
        assert reaper.wait(timeout=30) == 0
        assert server.wait(timeout=10) is not None
        assert bystander.poll() is None  # what does not run from a registered folder is left alone
        assert procs.processes_mentioning(str(folder) + "/") == []
    finally:
        for process in (server, bystander):
            process.kill()
            process.wait()
