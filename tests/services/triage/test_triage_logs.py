"""Reading, filtering and following logs over a real sshd: plain log files for real (this machine has no
systemd journal), and the journal through journalctl's JSON (real-shaped lines; a stand-in journalctl)."""

from __future__ import annotations

import datetime as dt
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from panel.lab.sshd import SshdServer
from services.cancel import CancelToken
from services.errors import Cancelled
from services.ssh import SshEndpoint, SshPool, SshRunner, system_endpoint
from services.triage.logs import (
    LogEntry,
    LogQuery,
    detect_sources,
    follow_file,
    follow_journal,
    guess_priority,
    merge_by_time,
    parse_journal_line,
    parse_line_time,
    read_files,
    read_journal,
)
from tests.services.triage.conftest import spec_of
from tests.services.triage.triage_fakes import FakeBin, sample_journal

UTC = dt.UTC

# As journalctl 252 (Debian 12) prints them with -o json: one object per line, every value a string,
# binary values as arrays of bytes, a value over the size limit as null.
REAL_SHAPED = [
    '{"__CURSOR":"s=6f1e0c4d2b5a49e8a7c3d1f0e9b8a7c6;i=1a2b3c;b=8d5b0b1e0b6b4d3c9a1b2c3d4e5f6a7b;m=4c4b40;'
    't=60a1b2c3d4e5f;x=9f8e7d6c5b4a3921","__REALTIME_TIMESTAMP":"1704164645123456","__MONOTONIC_TIMESTAMP":'
    '"5000000","_BOOT_ID":"8d5b0b1e0b6b4d3c9a1b2c3d4e5f6a7b","_TRANSPORT":"stdout","PRIORITY":"3",'
    '"SYSLOG_FACILITY":"3","SYSLOG_IDENTIFIER":"nginx","_PID":"812","_UID":"0","_GID":"0","_COMM":"nginx",'
    '"_EXE":"/usr/sbin/nginx","_CMDLINE":"nginx: master process /usr/sbin/nginx -g daemon on; master_process on;",'
    '"_SYSTEMD_CGROUP":"/system.slice/nginx.service","_SYSTEMD_UNIT":"nginx.service","_SYSTEMD_SLICE":'
    '"system.slice","_MACHINE_ID":"4f6c1d2e3a4b5c6d7e8f90a1b2c3d4e5","_HOSTNAME":"app1",'
    '"MESSAGE":"2024/01/02 03:04:05 [emerg] 812#812: bind() to 0.0.0.0:443 failed (98: Address already in use)"}',
    '{"__CURSOR":"s=6f1e;i=1a2b3d;b=8d5b;m=4c4b41;t=60a1b2c3d4e60;x=1","__REALTIME_TIMESTAMP":"1704164645223456",'
    '"__MONOTONIC_TIMESTAMP":"5000100","_BOOT_ID":"8d5b0b1e0b6b4d3c9a1b2c3d4e5f6a7b","PRIORITY":"6",'
    '"SYSLOG_FACILITY":"3","SYSLOG_IDENTIFIER":"systemd","_TRANSPORT":"journal","_PID":"1","_UID":"0",'
    '"_COMM":"systemd","_SYSTEMD_CGROUP":"/init.scope","_SYSTEMD_UNIT":"init.scope","_SYSTEMD_SLICE":"-.slice",'
    '"CODE_FILE":"src/core/job.c","CODE_LINE":"768","CODE_FUNC":"job_emit_done_message","MESSAGE_ID":'
    '"39f53479d3a045ac8e11786248231fbf","JOB_TYPE":"start","JOB_RESULT":"done","UNIT":"nginx.service",'
    '"INVOCATION_ID":"0c1d","MESSAGE":"Started nginx.service - A high performance web server and a reverse proxy '
    'server."}',
    '{"__CURSOR":"s=6f1e;i=1a2b3e;b=8d5b;m=4c4b42;t=60a1b2c3d4e61;x=2","__REALTIME_TIMESTAMP":"1704164645323456",'
    '"__MONOTONIC_TIMESTAMP":"5000200","PRIORITY":"4","SYSLOG_IDENTIFIER":"saas-worker","_PID":"1400",'
    '"_SYSTEMD_UNIT":"saas-worker.service","_TRANSPORT":"stdout",'
    '"MESSAGE":[27,91,51,49,109,87,65,82,78,27,91,48,109,32,113,117,101,117,101,32,98,97,99,107,108,111,103]}',
    '{"__CURSOR":"s=6f1e;i=1a2b3f;b=8d5b;m=4c4b43;t=60a1b2c3d4e62;x=3","__REALTIME_TIMESTAMP":"1704164645423456",'
    '"__MONOTONIC_TIMESTAMP":"5000300","PRIORITY":"6","SYSLOG_IDENTIFIER":"app","_SYSTEMD_UNIT":"app.service",'
    '"_PID":"77","MESSAGE":null}',
    '{"__CURSOR":"s=6f1e;i=1a2b40;b=8d5b;m=4c4b44;t=60a1b2c3d4e63;x=4","__REALTIME_TIMESTAMP":"1704164645523456",'
    '"__MONOTONIC_TIMESTAMP":"5000400","_BOOT_ID":"8d5b","_SOURCE_MONOTONIC_TIMESTAMP":"5000399","_TRANSPORT":'
    '"kernel","PRIORITY":"3","SYSLOG_FACILITY":"0","SYSLOG_IDENTIFIER":"kernel","_HOSTNAME":"app1",'
    '"MESSAGE":"Out of memory: Killed process 1400 (python3) total-vm:912340kB, anon-rss:801220kB"}',
    '{"__CURSOR":"s=6f1e;i=1a2b41;x=5","__REALTIME_TIMESTAMP":"1704164645623456","PRIORITY":"6",'
    '"SYSLOG_IDENTIFIER":["cron","CRON"],"_PID":"2001","_SYSTEMD_UNIT":"cron.service",'
    '"MESSAGE":"(root) CMD (cd / && run-parts --report /etc/cron.hourly)"}',
]


def wait_for(condition: Callable[[], bool], timeout: float = 15.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        threading.Event().wait(0.02)


class Collector:
    """Collects follow batches (from the follow's thread)."""

    def __init__(self) -> None:
        self.entries: list[LogEntry] = []
        self.batches = 0
        self.lock = threading.Lock()

    def __call__(self, batch: list[LogEntry]) -> None:
        with self.lock:
            self.entries.extend(batch)
            self.batches += 1

    def messages(self) -> list[str]:
        with self.lock:
            return [e.message for e in self.entries]


def start_follow(target: Callable[[CancelToken], None]) -> tuple[CancelToken, threading.Thread, list[BaseException]]:
    cancel = CancelToken()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target(cancel)
        except BaseException as error:  # the follow ends with Cancelled
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return cancel, thread, errors


def remote_processes(pattern: str) -> list[str]:
    """Processes on the (loopback) server whose command line holds ``pattern``."""
    result = subprocess.run(["pgrep", "-af", pattern], capture_output=True, text=True, check=False)
    return [line for line in result.stdout.splitlines() if "pgrep" not in line]


# --- the journal's JSON --------------------------------------------------------------------------------


def test_the_journal_parser_reads_real_journalctl_json_lines() -> None:
    parsed = [parse_journal_line(line, "app1") for line in REAL_SHAPED]
    entries = [e for e in parsed if e is not None]
    assert len(entries) == len(REAL_SHAPED)
    nginx, started, binary, too_large, kernel, cron = entries
    assert nginx.at == dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert (nginx.unit, nginx.identifier, nginx.pid, nginx.priority) == ("nginx.service", "nginx", 812, 3)
    assert nginx.is_error and nginx.priority_name == "err"
    assert nginx.cursor.startswith("s=6f1e0c4d")
    assert "bind() to 0.0.0.0:443 failed" in nginx.message
    # systemd's own line about a unit belongs to that unit, not to init.scope
    assert started.unit == "nginx.service" and started.message.startswith("Started nginx.service")
    # a message with control characters arrives as bytes
    assert binary.message == "\x1b[31mWARN\x1b[0m queue backlog" and binary.is_warning
    assert "too large" in too_large.message
    assert kernel.unit == "" and kernel.identifier == "kernel" and kernel.pid is None and kernel.is_error
    assert cron.identifier == "cron"  # a field set twice comes as a list
    assert parse_journal_line("-- No entries --", "app1") is None
    assert parse_journal_line('{"MESSAGE":"no timestamp"}', "app1") is None


def test_plain_line_times_and_levels() -> None:
    now = dt.datetime(2024, 1, 2, 12, 0, tzinfo=UTC)
    plus_one = dt.timezone(dt.timedelta(hours=1))
    assert parse_line_time("2024/01/02 03:04:05 [error] 812#812: *1 connect() failed", local=plus_one) == \
        dt.datetime(2024, 1, 2, 2, 4, 5, tzinfo=UTC)
    assert parse_line_time('203.0.113.9 - - [02/Jan/2024:03:04:05 +0000] "GET / HTTP/1.1" 502 166') == \
        dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_line_time("2024-01-02T03:04:05.250Z app started") == \
        dt.datetime(2024, 1, 2, 3, 4, 5, 250000, tzinfo=UTC)
    assert parse_line_time("2024-01-02 03:04:05,123 ERROR django.request: Internal Server Error") == \
        dt.datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)
    assert parse_line_time("Jan  2 03:04:05 app1 sshd[1234]: Accepted publickey", now=now) == \
        dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    # December's syslog lines read in January belong to last year
    assert parse_line_time("Dec 31 23:59:59 app1 CRON[1]: x", now=now) == dt.datetime(2023, 12, 31, 23, 59, 59,
                                                                                         tzinfo=UTC)
    assert parse_line_time('  File "/srv/app/views.py", line 10, in get') is None
    assert guess_priority("2024/01/02 03:04:05 [error] 812#812: upstream timed out") == 3
    assert guess_priority("2024-01-02 03:04:05,123 WARNING django.security: suspicious") == 4
    assert guess_priority("[crit] SSL_do_handshake() failed") == 2
    assert guess_priority("GET /health 200") is None


# --- plain files, for real ---------------------------------------------------------------------------------


def write_lines(path: Path, lines: list[str], mode: str = "a") -> None:
    with path.open(mode) as handle:
        handle.write("".join(line + "\n" for line in lines))
        handle.flush()


def nginx_lines(start: int, count: int, base: dt.datetime) -> list[str]:
    lines = []
    for n in range(start, start + count):
        at = base + dt.timedelta(seconds=n)
        level = "error" if n % 5 == 0 else "warn" if n % 5 == 1 else "notice"
        lines.append(f"{at:%Y/%m/%d %H:%M:%S} [{level}] 812#812: *{n} line {n} client: 203.0.113.{n % 250}")
    return lines


def test_without_a_journal_the_logs_are_read_from_the_configured_files(runner: SshRunner, tmp_path: Path) -> None:
    error_log = tmp_path / "nginx-error.log"
    write_lines(error_log, nginx_lines(0, 20, dt.datetime(2024, 1, 2, 3, 0, tzinfo=UTC)), "w")
    missing = str(tmp_path / "app-error.log")
    sources = detect_sources(runner, "app1", [str(error_log), missing])
    if sources.journal:
        pytest.skip("This machine has a systemd journal with entries, so the fallback does not apply here; "
                    "the stand-in journalctl tests below cover it.")
    assert sources.files == (str(error_log),)
    assert sources.unreadable == (missing,)
    assert "journal" in sources.note
    page = read_files(runner, "app1", sources.files, LogQuery(lines=10))
    assert [e.message.split(" line ")[1].split()[0] for e in page.entries] == [str(n) for n in range(10, 20)]
    assert page.entries[0].at == dt.datetime(2024, 1, 2, 3, 0, 10, tzinfo=UTC)  # the server's zone is UTC here
    assert page.entries[0].is_error and page.entries[1].is_warning
    assert page.file_sizes[str(error_log)] == error_log.stat().st_size


def test_the_real_journal_is_read_where_the_machine_has_one(runner: SshRunner) -> None:
    sources = detect_sources(runner, "app1", [])
    if not sources.journal:
        pytest.skip("No systemd journal on this machine (no systemd-journald runs in this container: "
                    f"{sources.note!r}); the journal is tested with real-shaped JSON lines and a stand-in journalctl.")
    page = read_journal(runner, "app1", LogQuery(lines=20))
    assert page.entries and all(e.cursor for e in page.entries)


def test_file_pages_go_back_without_overlap_and_filter(runner: SshRunner, tmp_path: Path) -> None:
    log = tmp_path / "error.log"
    base = dt.datetime(2024, 1, 2, 3, 0, tzinfo=UTC)
    write_lines(log, nginx_lines(0, 1200, base), "w")
    first = read_files(runner, "app1", [str(log)], LogQuery(lines=500))
    second = read_files(runner, "app1", [str(log)], LogQuery(lines=500), skip=first.file_lines)
    third = read_files(runner, "app1", [str(log)], LogQuery(lines=500), skip=second.file_lines)
    numbers = [int(e.message.split(" line ")[1].split()[0]) for page in (third, second, first) for e in page.entries]
    assert numbers == list(range(1200))
    assert not first.complete and third.complete

    errors = read_files(runner, "app1", [str(log)], LogQuery(lines=100, priority=3))
    assert errors.entries and all(e.is_error for e in errors.entries)
    searched = read_files(runner, "app1", [str(log)], LogQuery(lines=50, grep="LINE 777 "))
    assert [e.message.split(" line ")[1].split()[0] for e in searched.entries] == ["777"]
    recent = read_files(runner, "app1", [str(log)],
                        LogQuery(lines=1000, since=base + dt.timedelta(seconds=1190)))
    assert len(recent.entries) == 10


def test_several_servers_are_merged_by_time(pool: SshPool, triage_sshd: SshdServer, triage_key: Path,
                                            tmp_path: Path) -> None:
    base = dt.datetime(2024, 1, 2, 3, 0, tzinfo=UTC)
    one, two = tmp_path / "one.log", tmp_path / "two.log"
    write_lines(one, [f"{base + dt.timedelta(seconds=2 * n):%Y-%m-%dT%H:%M:%S}Z app1 line {n}" for n in range(5)], "w")
    write_lines(two, [f"{base + dt.timedelta(seconds=2 * n + 1):%Y-%m-%dT%H:%M:%S}Z app2 line {n}" for n in range(5)],
                "w")
    pages = []
    for name, path in (("app1", one), ("app2", two)):
        runner = SshRunner(pool, system_endpoint(spec_of(triage_sshd, triage_key, name), known_hosts=None))
        pages.append(read_files(runner, name, [str(path)], LogQuery()).entries)
    merged = merge_by_time(pages)
    assert [e.server for e in merged] == ["app1", "app2"] * 5
    assert merged == sorted(merged, key=lambda e: e.at)


def test_following_a_file_streams_new_lines_across_restarts_and_leaves_nothing_behind(
    pool: SshPool, endpoint: SshEndpoint, runner: SshRunner, tmp_path: Path
) -> None:
    log = tmp_path / "follow-me.log"
    base = dt.datetime(2024, 1, 2, 3, 0, tzinfo=UTC)
    write_lines(log, nginx_lines(0, 30, base), "w")
    page = read_files(runner, "app1", [str(log)], LogQuery(lines=10))
    collected = Collector()
    cancel, thread, errors = start_follow(lambda token: follow_file(
        pool, endpoint, "app1", str(log), collected, offset=page.file_sizes[str(log)], batch_lines=7, cancel=token))
    for burst in range(5):  # 50 lines in bursts; every 7 lines the follow restarts where it stopped
        write_lines(log, nginx_lines(30 + burst * 10, 10, base))
    wait_for(lambda: len(collected.messages()) >= 50, what="50 followed lines")
    numbers = [int(m.split(" line ")[1].split()[0]) for m in collected.messages()]
    assert numbers == list(range(30, 80))  # in order, none lost, none twice

    # logrotate's copytruncate: the file starts again from nothing
    log.write_text("")
    wait_for(lambda: True)
    write_lines(log, ["2024/01/02 04:00:00 [error] after the rotation"])
    wait_for(lambda: any("after the rotation" in m for m in collected.messages()), what="the line after rotation")

    cancel.cancel()
    thread.join(10)
    assert not thread.is_alive() and isinstance(errors[0], Cancelled)
    # the remote tail stops once the channel is gone (its watchdog notices within 2 s)
    wait_for(lambda: not remote_processes(f"tail -c .* -F -- {log}"), timeout=8, what="the remote tail to end")


def test_a_quiet_log_delivers_its_last_line_at_once(pool: SshPool, endpoint: SshEndpoint, tmp_path: Path) -> None:
    """No line waits in a buffer for the next one: a single line shows up while the log stays quiet."""
    log = tmp_path / "quiet.log"
    log.write_text("")
    collected = Collector()
    cancel, thread, _ = start_follow(lambda token: follow_file(pool, endpoint, "app1", str(log), collected,
                                                               offset=0, cancel=token))
    write_lines(log, ["2024/01/02 04:00:00 [error] the only line"])
    wait_for(lambda: collected.messages() == ["2024/01/02 04:00:00 [error] the only line"], timeout=5,
             what="the single line")
    cancel.cancel()
    thread.join(10)


# --- the journal, through a stand-in journalctl -------------------------------------------------------------


def test_sources_find_a_journal_when_journalctl_has_entries(runner: SshRunner, fake_bin: FakeBin) -> None:
    fake_bin.append_journal(sample_journal(dt.datetime(2024, 1, 2, 3, 0, tzinfo=UTC), 3))
    assert detect_sources(runner, "app1", [], path_prefix=fake_bin.prefix).journal
    fake_bin.remove_journal()
    missing = detect_sources(runner, "app1", [], path_prefix=fake_bin.prefix)
    assert not missing.journal and "no journal entries" in missing.note


def test_the_journal_is_read_filtered_and_paged(runner: SshRunner, fake_bin: FakeBin) -> None:
    base = dt.datetime(2024, 1, 2, 3, 0, tzinfo=UTC)
    fake_bin.append_journal(sample_journal(base, 40))
    prefix = fake_bin.prefix

    newest = read_journal(runner, "app1", LogQuery(lines=15), path_prefix=prefix)
    assert len(newest.entries) == 15 and newest.entries[-1].at == base + dt.timedelta(seconds=39)
    assert newest.entries == tuple(sorted(newest.entries, key=lambda e: e.at))

    older = read_journal(runner, "app1", LogQuery(lines=15), before=newest.first, path_prefix=prefix)
    oldest = read_journal(runner, "app1", LogQuery(lines=15), before=older.first, path_prefix=prefix)
    cursors = [e.cursor for page in (oldest, older, newest) for e in page.entries]
    assert len(cursors) == len(set(cursors)) == 40 and oldest.complete

    mariadb = read_journal(runner, "app1", LogQuery(units=("mariadb",)), path_prefix=prefix)
    assert mariadb.entries and {e.unit for e in mariadb.entries} == {"mariadb.service"}
    errors = read_journal(runner, "app1", LogQuery(priority=3), path_prefix=prefix)
    assert [e.unit for e in errors.entries] == ["saas-worker.service"] * 4
    recent = read_journal(runner, "app1", LogQuery(since=base + dt.timedelta(seconds=30)), path_prefix=prefix)
    assert len(recent.entries) == 10
    found = read_journal(runner, "app1", LogQuery(grep="Traceback (most"), path_prefix=prefix)
    assert len(found.entries) == 4 and all("Traceback" in e.message for e in found.entries)
    nothing = read_journal(runner, "app1", LogQuery(grep="no such text"), path_prefix=prefix)
    assert nothing.entries == () and nothing.complete


def test_following_the_journal_resumes_at_its_cursor(pool: SshPool, endpoint: SshEndpoint, runner: SshRunner,
                                                     fake_bin: FakeBin) -> None:
    base = dt.datetime(2024, 1, 2, 3, 0, tzinfo=UTC)
    everything = sample_journal(base, 60)
    fake_bin.append_journal(everything[:20])
    page = read_journal(runner, "app1", LogQuery(lines=20), path_prefix=fake_bin.prefix)
    collected = Collector()
    cancel, thread, errors = start_follow(lambda token: follow_journal(
        pool, endpoint, "app1", LogQuery(), collected, after_cursor=page.last_cursor, path_prefix=fake_bin.prefix,
        batch_lines=6, cancel=token))
    for start in range(20, 60, 8):
        fake_bin.append_journal(everything[start:start + 8])
    wait_for(lambda: len(collected.messages()) >= 40, what="40 followed journal entries")
    assert [e.cursor for e in collected.entries] == [e["__CURSOR"] for e in everything[20:]]
    cancel.cancel()
    thread.join(10)
    assert isinstance(errors[0], Cancelled)
    wait_for(lambda: not remote_processes(f"{fake_bin.prefix}/journalctl"), timeout=8,
             what="the remote journalctl to end")


def test_a_follow_filters_by_unit_and_level(pool: SshPool, endpoint: SshEndpoint, fake_bin: FakeBin) -> None:
    base = dt.datetime(2024, 1, 2, 3, 0, tzinfo=UTC)
    fake_bin.append_journal(sample_journal(base, 5))
    collected = Collector()
    cancel, thread, _ = start_follow(lambda token: follow_journal(
        pool, endpoint, "app1", LogQuery(units=("saas-worker",), priority=3), collected,
        path_prefix=fake_bin.prefix, cancel=token))
    # "-n 0" follows from now: lines written while journalctl starts may come before "now", so keep writing
    # (new entries each time) until the follow shows some
    deadline = time.monotonic() + 20
    batch = 1
    while len(collected.messages()) < 3 and time.monotonic() < deadline:
        entries = sample_journal(base + dt.timedelta(minutes=batch), 40)[5:]
        for entry in entries:
            entry["__CURSOR"] += f";batch={batch}"
        fake_bin.append_journal(entries)
        batch += 1
        threading.Event().wait(0.3)
    assert len(collected.messages()) >= 3, "the worker's errors did not arrive"
    assert {e.unit for e in collected.entries} == {"saas-worker.service"} and all(e.is_error for e in collected.entries)
    cancel.cancel()
    thread.join(10)
