"""Stand-ins for ``systemctl`` and ``journalctl`` of other systemd versions, for a machine without systemd.

:func:`make_fake_bin` writes both into a folder that the triage calls put first on the remote PATH
(their ``path_prefix``). Their state lives beside them: ``units.json`` (the units and their states),
``journal.jsonl`` (one ``journalctl -o json`` entry per line; missing = no journal), ``boots.json``,
``mode`` (``new``: systemd 252 with JSON output; ``old``: systemd 241, which has no JSON table and
prints the legend) and ``calls.log`` (every changing command's argv, one JSON list per line).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BOOT_ID = "8d5b0b1e0b6b4d3c9a1b2c3d4e5f6a7b"
MACHINE_ID = "4f6c1d2e3a4b5c6d7e8f90a1b2c3d4e5"

DEFAULT_UNITS: list[dict[str, str]] = [
    {"unit": "nginx.service", "load": "loaded", "active": "active", "sub": "running",
     "description": "A high performance web server and a reverse proxy server"},
    {"unit": "mariadb.service", "load": "loaded", "active": "active", "sub": "running",
     "description": "MariaDB 10.11.6 database server"},
    {"unit": "saas-worker.service", "load": "loaded", "active": "failed", "sub": "failed",
     "description": "SaaS background worker"},
    {"unit": "cron.service", "load": "loaded", "active": "inactive", "sub": "dead",
     "description": "Regular background program processing daemon"},
    {"unit": "broken.service", "load": "loaded", "active": "active", "sub": "running",
     "description": "A unit whose restart fails"},
    {"unit": "ssh.socket", "load": "loaded", "active": "active", "sub": "listening",
     "description": "OpenBSD Secure Shell server socket"},
    {"unit": "apt-daily.timer", "load": "loaded", "active": "active", "sub": "waiting",
     "description": "Daily apt download activities"},
]

SYSTEMCTL = r'''#!/usr/bin/python3
"""A stand-in systemctl (see tests/services/triage/triage_fakes.py)."""
import json, os, sys
HERE = os.path.dirname(os.path.realpath(__file__))
def read(name, default):
    try:
        with open(os.path.join(HERE, name)) as f:
            return f.read()
    except FileNotFoundError:
        return default
MODE = read("mode", "new").strip()
UNITS = json.loads(read("units.json", "[]"))
args = sys.argv[1:]
options = [a for a in args if a.startswith("-") and a != "--"]
words = [a for a in args if not a.startswith("-")]
verb = words[0] if words else "list-units"
def save():
    with open(os.path.join(HERE, "units.json"), "w") as f:
        json.dump(UNITS, f)
def find(name):
    for unit in UNITS:
        if unit["unit"] in (name, name + ".service"):
            return unit
    return None
def record():
    with open(os.path.join(HERE, "calls.log"), "a") as f:
        f.write(json.dumps(["systemctl", *args]) + "\n")
def option(name):
    for a in options:
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None
if verb == "list-units":
    types = (option("--type") or "").split(",")
    units = [u for u in UNITS if not types[0] or u["unit"].rsplit(".", 1)[-1] in types]
    if option("--output") == "json" and MODE == "new":
        print(json.dumps(units, separators=(",", ":")))
        sys.exit(0)
    legend = "--no-legend" not in options
    plain = "--plain" in options
    width = max([len(u["unit"]) for u in units] + [4]) + 2
    if legend:
        print("  " + "UNIT".ljust(width) + "LOAD   ACTIVE   SUB     DESCRIPTION")
    for u in units:
        mark = "\u25cf " if (u["active"] == "failed" and not plain) else "  "
        print(f"{mark}{u['unit'].ljust(width)}{u['load'].ljust(7)}{u['active'].ljust(9)}{u['sub'].ljust(8)}"
              f"{u['description']}")
    if legend:
        print("\nLOAD   = Reflects whether the unit definition was properly loaded.")
        print("ACTIVE = The high-level unit activation state, i.e. generalization of SUB.")
        print("SUB    = The low-level unit activation state, values depend on unit type.")
        print(f"\n{len(units)} loaded units listed.")
    sys.exit(0)
if verb == "status":
    unit = find(words[-1]) if len(words) > 1 else None
    if unit is None:
        print(f"Unit {words[-1] if len(words) > 1 else '?'}.service could not be found.", file=sys.stderr)
        sys.exit(4)
    running = unit["active"] == "active"
    mark = "\u25cf" if unit["active"] != "failed" else "\u00d7"
    print(f"{mark} {unit['unit']} - {unit['description']}")
    print(f"     Loaded: loaded (/lib/systemd/system/{unit['unit']}; enabled; preset: enabled)")
    since = "since Tue 2024-01-02 03:04:05 UTC; 2h 3min ago"
    print(f"     Active: {unit['active']} ({unit['sub']}) {since}")
    if running:
        print("   Main PID: 812 (" + unit["unit"].split(".")[0] + ")")
        print("      Tasks: 3 (limit: 4644)")
        print("     Memory: 5.1M")
        print(f"     CGroup: /system.slice/{unit['unit']}")
    sys.exit(0 if running else 3)
if verb == "is-active":
    unit = find(words[-1])
    state = unit["active"] if unit else "inactive"
    print(state)
    sys.exit(0 if state == "active" else 3)
if verb in ("restart", "stop", "start", "reload"):
    record()
    unit = find(words[-1])
    if unit is None:
        print(f"Failed to {verb} {words[-1]}: Unit {words[-1]} not found.", file=sys.stderr)
        sys.exit(5)
    if unit["unit"] == "broken.service" and verb in ("restart", "start"):
        unit["active"], unit["sub"] = "failed", "failed"
        save()
        print("Job for broken.service failed because the control process exited with error code.\n"
              "See \"systemctl status broken.service\" and \"journalctl -xeu broken.service\" for details.",
              file=sys.stderr)
        sys.exit(1)
    if verb == "stop":
        unit["active"], unit["sub"] = "inactive", "dead"
    else:
        unit["active"], unit["sub"] = "active", "running"
    save()
    sys.exit(0)
print(f"Unknown command verb {verb}.", file=sys.stderr)
sys.exit(1)
'''

JOURNALCTL = r'''#!/usr/bin/python3
"""A stand-in journalctl over journal.jsonl (see tests/services/triage/triage_fakes.py)."""
import datetime, json, os, re, signal, subprocess, sys
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
HERE = os.path.dirname(os.path.realpath(__file__))
JOURNAL = os.path.join(HERE, "journal.jsonl")
def read(name, default):
    try:
        with open(os.path.join(HERE, name)) as f:
            return f.read()
    except FileNotFoundError:
        return default
MODE = read("mode", "new").strip()
args = sys.argv[1:]
opts = {"units": [], "lines": None, "follow": False, "no_tail": False}
i = 0
def value(a):
    global i
    if "=" in a:
        return a.split("=", 1)[1]
    i += 1
    return args[i]
while i < len(args):
    a = args[i]
    if a in ("-n", "--lines") or a.startswith("--lines="):
        opts["lines"] = int(value(a))
    elif a in ("-u", "--unit") or a.startswith("--unit="):
        opts["units"].append(value(a))
    elif a in ("-p", "--priority") or a.startswith("--priority="):
        opts["priority"] = int(value(a))
    elif a.startswith("--since"):
        opts["since"] = float(value(a).lstrip("@"))
    elif a.startswith("--until"):
        opts["until"] = float(value(a).lstrip("@"))
    elif a.startswith("--grep") or a == "-g":
        opts["grep"] = value(a)
    elif a.startswith("--after-cursor"):
        opts["after"] = value(a)
    elif a in ("-f", "--follow"):
        opts["follow"] = True
    elif a == "--no-tail":
        opts["no_tail"] = True
    elif a == "--list-boots":
        opts["boots"] = True
    elif a in ("-o", "--output") or a.startswith("--output="):
        opts["output"] = value(a)
    elif a.startswith("--output-fields="):
        opts["fields"] = a.split("=", 1)[1].split(",")
    i += 1
if opts.get("boots"):
    boots = json.loads(read("boots.json", "[]"))
    if opts.get("output") == "json" and MODE == "new":
        print(json.dumps(boots))
    else:
        if MODE == "new":
            print("IDX BOOT ID                          FIRST ENTRY                 LAST ENTRY")
        for b in boots:
            first = datetime.datetime.fromtimestamp(b["first_entry"] / 1e6, datetime.timezone.utc)
            last = datetime.datetime.fromtimestamp(b["last_entry"] / 1e6, datetime.timezone.utc)
            fmt = "%a %Y-%m-%d %H:%M:%S UTC"
            sep = " " if MODE == "new" else "\u2014"
            print(f"{b['index']:>3} {b['boot_id']} {first.strftime(fmt)}{sep}{last.strftime(fmt)}")
    sys.exit(0)
if not os.path.exists(JOURNAL):
    print("No journal files were found.", file=sys.stderr)
    sys.exit(0)
pattern = None
if "grep" in opts:
    text = opts["grep"]
    pattern = re.compile(text, 0 if any(c.isupper() for c in text) else re.I)
def matches(e):
    unit = e.get("_SYSTEMD_UNIT", "")
    if unit == "init.scope":
        unit = e.get("UNIT", unit)
    if opts["units"] and not any(unit in (u, u + ".service") for u in opts["units"]):
        return False
    if "priority" in opts and int(e.get("PRIORITY", 6)) > opts["priority"]:
        return False
    at = int(e["__REALTIME_TIMESTAMP"]) / 1e6
    if "since" in opts and at < opts["since"]:
        return False
    if "until" in opts and at > opts["until"]:
        return False
    if pattern is not None and not pattern.search(e.get("MESSAGE") if isinstance(e.get("MESSAGE"), str) else ""):
        return False
    return True
def show(e):
    if "fields" in opts:
        keep = set(opts["fields"])
        e = {k: v for k, v in e.items() if k.startswith("__") or k in keep}
    sys.stdout.write(json.dumps(e) + "\n")
position = 0
def read_new():
    global position
    with open(JOURNAL) as f:
        f.seek(position)
        chunk = f.read()
        end = chunk.rfind("\n")
        if end < 0:
            return []
        position += len(chunk[: end + 1].encode())
        return [json.loads(l) for l in chunk[: end + 1].splitlines() if l.strip()]
entries = read_new()
if "after" in opts:
    cursors = [e["__CURSOR"] for e in entries]
    entries = entries[cursors.index(opts["after"]) + 1:] if opts["after"] in cursors else entries
chosen = [e for e in entries if matches(e)]
lines = opts["lines"]
if opts["follow"] and lines is None and not opts["no_tail"] and "after" not in opts:
    lines = 10
if lines is not None and not opts["no_tail"]:
    chosen = chosen[-lines:] if lines > 0 else []
for e in chosen:
    show(e)
sys.stdout.flush()
if pattern is not None and not chosen and not opts["follow"]:
    sys.exit(1)
if opts["follow"]:
    # tail waits for the journal to grow (inotify) and ends when this process does (--pid)
    follower = subprocess.Popen(["tail", f"--pid={os.getpid()}", "-F", "-c", f"+{position + 1}", JOURNAL],
                                stdout=subprocess.PIPE, text=True)
    for line in follower.stdout:
        if line.strip() and matches(e := json.loads(line)):
            show(e)
            sys.stdout.flush()
'''


def _install(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def journal_entry(
    message: str | list[int] | None,
    *,
    at: dt.datetime,
    sequence: int,
    unit: str = "nginx.service",
    priority: int = 6,
    identifier: str = "nginx",
    pid: int = 812,
    hostname: str = "app1",
) -> dict[str, Any]:
    """One entry shaped as ``journalctl -o json`` prints it on Debian 12 (every value a string)."""
    realtime = int(at.timestamp() * 1_000_000)
    monotonic = 5_000_000 + sequence * 1000
    seqnum = 0x1A2B00 + sequence
    cursor = (f"s=6f1e0c4d2b5a49e8a7c3d1f0e9b8a7c6;i={seqnum:x};b={BOOT_ID};m={monotonic:x};"
              f"t={realtime:x};x={hashlib.sha256(str(sequence).encode()).hexdigest()[:16]}")
    entry: dict[str, Any] = {
        "__CURSOR": cursor,
        "__REALTIME_TIMESTAMP": str(realtime),
        "__MONOTONIC_TIMESTAMP": str(monotonic),
        "_BOOT_ID": BOOT_ID,
        "_MACHINE_ID": MACHINE_ID,
        "_HOSTNAME": hostname,
        "PRIORITY": str(priority),
        "SYSLOG_FACILITY": "3",
        "_UID": "0",
        "_GID": "0",
        "_CAP_EFFECTIVE": "1ffffffffff",
        "_SELINUX_CONTEXT": "unconfined\n",
        "_TRANSPORT": "stdout",
        "_STREAM_ID": hashlib.md5(unit.encode()).hexdigest(),  # noqa: S324 - a made-up id
        "SYSLOG_IDENTIFIER": identifier,
        "_PID": str(pid),
        "_COMM": identifier,
        "_EXE": f"/usr/sbin/{identifier}",
        "_CMDLINE": f"{identifier}: master process /usr/sbin/{identifier}",
        "_SYSTEMD_CGROUP": f"/system.slice/{unit}",
        "_SYSTEMD_UNIT": unit,
        "_SYSTEMD_SLICE": "system.slice",
        "_SYSTEMD_INVOCATION_ID": hashlib.md5(f"{unit}inv".encode()).hexdigest(),  # noqa: S324
        "MESSAGE": message,
    }
    return entry


@dataclass
class FakeBin:
    folder: Path

    @property
    def prefix(self) -> str:
        return str(self.folder)

    def set_mode(self, mode: str) -> None:
        (self.folder / "mode").write_text(mode)

    def set_units(self, units: list[dict[str, str]]) -> None:
        (self.folder / "units.json").write_text(json.dumps(units))

    def units(self) -> list[dict[str, str]]:
        return list(json.loads((self.folder / "units.json").read_text()))

    def unit(self, name: str) -> dict[str, str]:
        return next(u for u in self.units() if u["unit"] == name)

    def calls(self) -> list[list[str]]:
        path = self.folder / "calls.log"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def append_journal(self, entries: list[dict[str, Any]]) -> None:
        with (self.folder / "journal.jsonl").open("a") as handle:
            handle.write("".join(json.dumps(e) + "\n" for e in entries))
            handle.flush()

    def remove_journal(self) -> None:
        (self.folder / "journal.jsonl").unlink(missing_ok=True)

    def set_boots(self, boots: list[dict[str, Any]]) -> None:
        (self.folder / "boots.json").write_text(json.dumps(boots))


def make_fake_bin(folder: Path, *, units: list[dict[str, str]] | None = None, mode: str = "new",
                  journal: list[dict[str, Any]] | None = None) -> FakeBin:
    """A folder holding stand-in ``systemctl`` and ``journalctl`` (pass ``fake.prefix`` as ``path_prefix``)."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    _install(folder / "systemctl", SYSTEMCTL)
    _install(folder / "journalctl", JOURNALCTL)
    fake = FakeBin(folder)
    fake.set_mode(mode)
    fake.set_units(units if units is not None else DEFAULT_UNITS)
    if journal is not None:
        fake.append_journal(journal)
    return fake


def sample_journal(start: dt.datetime, count: int = 40) -> list[dict[str, Any]]:
    """A morning on app1: nginx, mariadb, the worker failing, systemd restarting it, the kernel."""
    entries = []
    for n in range(count):
        at = start + dt.timedelta(seconds=n)
        if n % 10 == 3:
            entries.append(journal_entry(f"saas-worker: Traceback (most recent call last): job {n} failed",
                                         at=at, sequence=n, unit="saas-worker.service", priority=3,
                                         identifier="saas-worker", pid=1400))
        elif n % 10 == 7:
            entries.append(journal_entry(f"[warn] 1#1: upstream response is buffered to a temporary file {n}",
                                         at=at, sequence=n, unit="nginx.service", priority=4))
        elif n % 2:
            entries.append(journal_entry(f"mariadbd: Aborted connection {n} to db: 'saas' user: 'panel'",
                                         at=at, sequence=n, unit="mariadb.service", priority=5,
                                         identifier="mariadbd", pid=990))
        else:
            entries.append(journal_entry(f'203.0.113.{n} - - "GET /health HTTP/1.1" 200 2 request {n}',
                                         at=at, sequence=n))
    return entries
