"""Processes with the real ps over a real sshd; killing one only if its PID still is the same process."""

from __future__ import annotations

import dataclasses
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.errors import PanelError
from services.ssh import SshRunner
from services.triage.processes import ProcessInfo, kill_process, list_processes, parse_ps

PS_OUTPUT = """\
    PID USER     %CPU %MEM   RSS ELAPSED COMMAND         COMMAND
   1400 www-data 98.2 12.5 801220   3600 python3         /srv/app/venv/bin/python3 -m worker --queue default
    812 root      0.0  0.1  6400 864000 nginx           nginx: master process /usr/sbin/nginx -g daemon on;
   2001 root      0.0  0.0     0    120 kworker/0:1-eve [kworker/0:1-events]
   3100 mysql     2.5 20.1 1612000 86400 Web Content     /usr/lib/firefox/firefox -contentproc -childID 3
"""


def test_ps_output_is_parsed_including_names_with_spaces() -> None:
    processes = {p.pid: p for p in parse_ps(PS_OUTPUT)}
    worker = processes[1400]
    assert (worker.user, worker.cpu_percent, worker.memory_percent, worker.rss_kb, worker.elapsed_seconds) == \
        ("www-data", 98.2, 12.5, 801220, 3600)
    assert worker.command == "python3" and worker.args == "/srv/app/venv/bin/python3 -m worker --queue default"
    assert processes[2001].kernel_thread and processes[2001].command == "kworker/0:1-eve"
    assert processes[3100].command == "Web Content" and processes[3100].args.startswith("/usr/lib/firefox")


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A process on the (loopback) server that the tests look for and kill."""
    marker = f"triage-{uuid.uuid4().hex[:8]}"
    process = subprocess.Popen(["sh", "-c", f"exec sleep 300 # {marker}", marker], stdin=subprocess.DEVNULL)
    comm = Path(f"/proc/{process.pid}/comm")
    deadline = time.monotonic() + 10
    while comm.read_text().strip() != "sleep" and time.monotonic() < deadline:  # until sh has become sleep
        threading.Event().wait(0.01)
    yield process
    process.kill()
    process.wait()


def find(runner: SshRunner, pid: int) -> ProcessInfo | None:
    return next((p for p in list_processes(runner, "app1").processes if p.pid == pid), None)


def test_the_real_process_list_is_read_busiest_first(runner: SshRunner, sleeper: subprocess.Popen[bytes]) -> None:
    listed = list_processes(runner, "app1")
    assert len(listed.processes) > 3
    cpu = [p.cpu_percent for p in listed.processes]
    assert cpu == sorted(cpu, reverse=True)
    mine = next(p for p in listed.processes if p.pid == sleeper.pid)
    assert mine.command == "sleep" and mine.args == "sleep 300"
    assert listed.by_memory()[0].rss_kb == max(p.rss_kb for p in listed.processes)


def test_a_process_is_killed_only_when_its_pid_still_is_it(runner: SshRunner,
                                                           sleeper: subprocess.Popen[bytes]) -> None:
    process = find(runner, sleeper.pid)
    assert process is not None
    # the PID now runs something else (or something younger): nothing is sent
    with pytest.raises(PanelError, match="another process"):
        kill_process(runner, "app1", dataclasses.replace(process, command="nginx"))
    with pytest.raises(PanelError, match="another process"):
        kill_process(runner, "app1", dataclasses.replace(process, elapsed_seconds=process.elapsed_seconds + 3600))
    assert sleeper.poll() is None

    assert kill_process(runner, "app1", process, signal="TERM") == "sent TERM"
    assert sleeper.wait(10) == -15
    with pytest.raises(PanelError, match="already ended"):
        kill_process(runner, "app1", process)


def test_only_known_signals_and_never_init(runner: SshRunner, sleeper: subprocess.Popen[bytes]) -> None:
    process = find(runner, sleeper.pid)
    assert process is not None
    with pytest.raises(PanelError):
        kill_process(runner, "app1", process, signal="STOP; reboot")
    with pytest.raises(PanelError):
        kill_process(runner, "app1", dataclasses.replace(process, pid=1))
    assert sleeper.poll() is None
