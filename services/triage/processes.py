"""The processes of a server, by CPU and memory (``ps``), and killing one.

Killing checks first that the PID still belongs to the same command that started at the same
time, so a PID reused since the list was read is never hit.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.cancel import NEVER_CANCELLED, CancelToken
from services.errors import PanelError, RemoteCommandError
from services.runner import CommandRunner
from services.triage.remote import q, script_head

PS_ARGV = ["ps", "-ww", "-eo", "pid,user,pcpu,pmem,rss,etimes,comm,args", "--sort=-pcpu"]
SIGNALS = ("TERM", "KILL", "HUP", "INT")


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    user: str
    cpu_percent: float
    memory_percent: float
    rss_kb: int
    elapsed_seconds: int
    command: str  # the executable's name (comm), at most 15 characters
    args: str  # the full command line

    @property
    def kernel_thread(self) -> bool:
        return self.args.startswith("[") and self.args.endswith("]")


@dataclass(frozen=True)
class ProcessList:
    server: str
    processes: tuple[ProcessInfo, ...]  # by CPU, busiest first

    def by_memory(self) -> list[ProcessInfo]:
        return sorted(self.processes, key=lambda p: (-p.rss_kb, p.pid))


def parse_ps(text: str) -> list[ProcessInfo]:
    """The output of :data:`PS_ARGV`. ``comm`` may hold spaces: the header gives its column's width."""
    lines = text.splitlines()
    if not lines:
        return []
    header = lines[0]
    first = header.find("COMMAND")
    second = header.find("COMMAND", first + 1)
    width = second - first if first >= 0 and second > first else 16
    processes = []
    for line in lines[1:]:
        parts = line.split(None, 6)
        if len(parts) < 7:
            continue
        pid, user, cpu, memory, rss, elapsed, rest = parts
        try:
            info = ProcessInfo(
                pid=int(pid),
                user=user,
                cpu_percent=float(cpu),
                memory_percent=float(memory),
                rss_kb=int(rss),
                elapsed_seconds=int(elapsed),
                # comm is left-aligned and padded to its column; the arguments start after it.
                command=rest[: width - 1].rstrip(),
                args=rest[width:].strip() if len(rest) > width else rest[: width - 1].rstrip(),
            )
        except ValueError:
            continue
        processes.append(info)
    return processes


def list_processes(
    runner: CommandRunner,
    server: str,
    *,
    path_prefix: str = "",
    timeout: float = 20.0,
    cancel: CancelToken = NEVER_CANCELLED,
) -> ProcessList:
    """Every process, busiest first. One round trip."""
    script = script_head(path_prefix) + " ".join(q(a) for a in PS_ARGV) + "\n"
    result = runner.run_script(script, timeout=timeout, cancel=cancel)
    if not result.ok:
        raise RemoteCommandError(f"ps failed on {server}: {result.error_text().strip()[:300]}",
                                 exit_status=result.exit_status, stderr=result.error_text())
    return ProcessList(server, tuple(parse_ps(result.text())))


def kill_process(
    runner: CommandRunner,
    server: str,
    process: ProcessInfo,
    *,
    signal: str = "TERM",
    path_prefix: str = "",
    timeout: float = 20.0,
    cancel: CancelToken = NEVER_CANCELLED,
) -> str:
    """Send ``signal`` to ``process`` if its PID still runs the same command, started at the same time.

    Returns what happened ("sent TERM"). Raises :class:`PanelError` if the process is gone or its
    PID now belongs to something else, :class:`RemoteCommandError` if ``kill`` failed.
    """
    if signal not in SIGNALS:
        raise PanelError(f"{signal!r} is not a signal the panel sends ({', '.join(SIGNALS)}).")
    if process.pid <= 1:
        raise PanelError(f"The panel does not signal PID {process.pid}.")
    # etimes grows while we talk: allow a few seconds either way (a reused PID is far younger).
    script = script_head(path_prefix) + f"""pid={process.pid}
now=$(ps -o comm=,etimes= -p "$pid") || {{ echo gone; exit 0; }}
comm=$(printf '%s' "$now" | sed 's/ *[0-9][0-9]*$//')
elapsed=$(printf '%s' "$now" | awk '{{print $NF}}')
if [ "$comm" != {q(process.command)} ]; then echo "other $comm"; exit 0; fi
if [ "$elapsed" -lt {max(0, process.elapsed_seconds - 5)} ]; then echo "younger $elapsed"; exit 0; fi
kill -s {signal} "$pid" && echo sent
"""
    result = runner.run_script(script, timeout=timeout, cancel=cancel)
    answer = result.text().strip()
    if answer == "sent":
        return f"sent {signal}"
    if answer == "gone":
        raise PanelError(f"Process {process.pid} ({process.command}) on {server} has already ended.")
    if answer.startswith(("other", "younger")):
        raise PanelError(f"PID {process.pid} on {server} now belongs to another process; nothing was sent. "
                         "Refresh the list and try again.")
    raise RemoteCommandError(
        f"kill -{signal} {process.pid} failed on {server}: {result.error_text().strip()[:300] or answer}",
        exit_status=result.exit_status, stderr=result.error_text())
