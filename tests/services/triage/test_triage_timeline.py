"""The timeline: every source on its own (reboots, unlocks and audited actions, alerts, watched-file
changes, backups, Cloudflare, Stripe) and merged; a failing source is one "source unavailable" event."""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from panel.lab.procs import free_ports
from panel.lab.secrets import CLOUDFLARE_TOKEN, STRIPE_KEY
from panel.lab.standins.runner import StandinServers
from panel.store import Store
from services.cancel import CancelToken
from services.inventory import CloudflareSpec, ServerSpec, StripeSpec
from services.ssh import SshPool, SshRunner, system_endpoint
from services.triage.timeline import (
    UNAVAILABLE,
    TimelineEvent,
    TimelineProvider,
    alert_events,
    audit_provider,
    backup_events,
    boot_events,
    boots_provider,
    cloudflare_provider,
    collect_timeline,
    parse_last,
    parse_list_boots,
    store_provider,
    stripe_provider,
)
from tests.services.triage.triage_fakes import FakeBin

UTC = dt.UTC
NOW = dt.datetime.now(UTC).replace(microsecond=0)
WEEK_AGO = NOW - dt.timedelta(days=7)


# --- reboots -----------------------------------------------------------------------------------------------


def boots(now: dt.datetime) -> list[dict[str, object]]:
    def us(moment: dt.datetime) -> int:
        return int(moment.timestamp() * 1_000_000)

    return [
        {"index": -1, "boot_id": "e1b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5",
         "first_entry": us(now - dt.timedelta(days=2)), "last_entry": us(now - dt.timedelta(days=1, hours=1))},
        {"index": 0, "boot_id": "5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d",
         "first_entry": us(now - dt.timedelta(days=1)), "last_entry": us(now - dt.timedelta(minutes=1))},
    ]


def test_list_boots_is_read_as_json_and_as_both_tables() -> None:
    json_text = ('[{"index":-1,"boot_id":"e1b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5","first_entry":1704164645000000,'
                 '"last_entry":1704168245000000},{"index":0,"boot_id":"5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d",'
                 '"first_entry":1704200000000000,"last_entry":1704210000000000}]')
    table_252 = ("IDX BOOT ID                          FIRST ENTRY                 LAST ENTRY\n"
                 " -1 e1b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5 Tue 2024-01-02 03:04:05 UTC Tue 2024-01-02 04:04:05 UTC\n"
                 "  0 5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d Tue 2024-01-02 12:53:20 UTC Tue 2024-01-02 15:40:00 UTC\n")
    table_241 = ("-1 e1b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5 Tue 2024-01-02 03:04:05 UTC—Tue 2024-01-02 04:04:05 UTC\n"
                 " 0 5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d Tue 2024-01-02 12:53:20 UTC—Tue 2024-01-02 15:40:00 UTC\n")
    for text in (json_text, table_252, table_241):
        parsed = parse_list_boots(text)
        assert [b.index for b in parsed] == [-1, 0]
        assert parsed[0].first == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
        assert parsed[0].last == dt.datetime(2024, 1, 2, 4, 4, 5, tzinfo=UTC)


def test_last_is_read_in_iso_and_full_formats() -> None:
    iso = ("reboot   system boot  6.1.0-13-amd64   2024-01-02T03:04:05+00:00   still running\n"
           "shutdown system down  6.1.0-13-amd64   2024-01-02T03:00:00+00:00 - 2024-01-02T03:04:05+00:00 (00:04)\n"
           "root     pts/0        203.0.113.9      2024-01-02T03:10:00+00:00   still logged in\n")
    full = "reboot   system boot  6.1.0-13-amd64   Tue Jan  2 03:04:05 2024   still running\n"
    assert parse_last(iso) == [(dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "reboot", "6.1.0-13-amd64"),
                               (dt.datetime(2024, 1, 2, 3, 0, tzinfo=UTC), "shutdown", "6.1.0-13-amd64")]
    assert parse_last(full) == [(dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "reboot", "6.1.0-13-amd64")]


@pytest.mark.parametrize("mode", ["new", "old"])
def test_reboots_come_from_the_journals_boot_list(runner: SshRunner, fake_bin: FakeBin, mode: str) -> None:
    fake_bin.set_mode(mode)
    fake_bin.set_boots(boots(NOW))
    events = boot_events(runner, "app1", path_prefix=fake_bin.prefix)
    assert [(e.kind, e.source, e.server) for e in events] == [
        ("reboot", "reboots", "app1"), ("shutdown", "reboots", "app1"), ("reboot", "reboots", "app1")]
    assert events[-1].at == NOW - dt.timedelta(days=1) and "5a6b7c8d" in events[-1].summary


def utmp_record(kind: int, user: str, line: str, host: str, at: dt.datetime) -> bytes:
    """One glibc x86-64 utmp record (what /var/log/wtmp holds)."""
    return struct.pack("<hxxi32s4s32s256shhiii4i20x", kind, 0, line.encode(), b"~~\0\0", user.encode(),
                       host.encode(), 0, 0, 0, int(at.timestamp()), 0, 0, 0, 0, 0)


def test_without_a_journal_reboots_come_from_wtmp_with_the_real_last(runner: SshRunner, tmp_path: Path) -> None:
    boot_time, run_level = 2, 1
    wtmp = tmp_path / "wtmp"
    first = NOW - dt.timedelta(days=3)
    wtmp.write_bytes(
        utmp_record(boot_time, "reboot", "~", "6.1.0-13-amd64", first)
        + utmp_record(run_level, "shutdown", "~", "6.1.0-13-amd64", NOW - dt.timedelta(hours=5))
        + utmp_record(boot_time, "reboot", "~", "6.1.0-15-amd64", NOW - dt.timedelta(hours=4, minutes=58)))
    events = boot_events(runner, "app1", wtmp=str(wtmp))  # the real journalctl of this machine has no boots
    assert [(e.kind, e.at) for e in events] == [
        ("reboot", first), ("shutdown", NOW - dt.timedelta(hours=5)),
        ("reboot", NOW - dt.timedelta(hours=4, minutes=58))]
    assert "6.1.0-15-amd64" in events[-1].summary


# --- the store: audit, alerts, watched files ------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "panel.sqlite3")
    yield store
    store.close()


def test_unlocks_and_the_operators_actions_come_from_the_audit_log(store: Store) -> None:
    store.audit("unlock", "app1", "ok", "volume root unlocked in 4.2 s")
    store.audit("unlock", "app2", "failed", "WrongPassphrase: the passphrase was refused")
    store.audit("unit.restart", "app2/nginx.service", "ok", "now active")
    store.audit("process.kill", "app1/pid:1400", "ok", "TERM to python3 (user www-data)")
    timeline = collect_timeline([audit_provider(lambda: store.audit_entries(), ["app1", "app2"])], since=WEEK_AGO)
    by_kind = {(e.source, e.kind): e for e in timeline.events}
    assert by_kind[("unlocks", "unlocked")].server == "app1"
    assert by_kind[("unlocks", "unlock failed")].severity == "WARNING"
    assert by_kind[("audit", "unit.restart")].server == "app2"
    assert "nginx.service" in by_kind[("audit", "unit.restart")].summary
    assert ("audit", "process.kill") in by_kind


def test_alerts_raised_and_resolved_and_watched_file_changes_come_from_the_alerts_store(store: Store) -> None:
    alerts = pytest.importorskip("panel.alerts", reason="the alerts feature (panel/alerts.py) is not installed")
    model = pytest.importorskip("services.checks.model")
    book = alerts.AlertBook(store)
    check = model.CheckResult
    severity = model.Severity
    raised_at = NOW - dt.timedelta(hours=3)
    book.record([check("app1", "ports.unexpected", severity.CRITICAL, "Unexpected listening port tcp 0.0.0.0:8081",
                       subject="tcp 0.0.0.0:8081"),
                 check("app1", "files.changed", severity.WARNING, "3 watched files changed",
                       evidence=("changed /etc/nginx/sites-enabled/saas.conf", "added /usr/bin/evil",
                                 "changed /etc/hosts", "removed /etc/cron.d/backup"))], now=raised_at)
    book.record([check("app1", "ports.unexpected", severity.OK, "no unexpected ports")],
                now=NOW - dt.timedelta(hours=1))
    alert_list = alert_events(store, WEEK_AGO)
    changes = alert_events(store, WEEK_AGO, files=True)
    assert alert_list is not None and changes is not None
    assert [(e.kind, e.severity, e.at) for e in alert_list] == [
        ("alert raised", "CRITICAL", raised_at), ("alert resolved", "OK", NOW - dt.timedelta(hours=1))]
    assert "8081" in alert_list[0].summary
    assert [(e.source, e.kind) for e in changes] == [("changes", "files changed")]
    assert "/usr/bin/evil" in changes[0].summary and "(+1 more)" in changes[0].summary


def test_a_store_without_alert_history_is_a_source_unavailable(tmp_path: Path) -> None:
    import sqlite3

    bare = tmp_path / "bare.sqlite3"
    sqlite3.connect(bare).close()

    class Bare:
        def query(self, sql: str, parameters: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
            with sqlite3.connect(bare) as db:
                return list(db.execute(sql, parameters).fetchall())

    assert alert_events(Bare(), WEEK_AGO) is None
    timeline = collect_timeline([store_provider("alerts", lambda since: alert_events(Bare(), since))],
                                since=WEEK_AGO)
    assert [(e.source, e.kind) for e in timeline.events] == [("alerts", UNAVAILABLE)]


# --- backups ------------------------------------------------------------------------------------------------


def test_backup_sessions_become_finished_and_failed_events() -> None:
    backups = pytest.importorskip("services.backups", reason="the backups reader (services/backups) is not installed")
    session = backups.Session
    repository = backups.Repository
    ok = session(time=NOW - dt.timedelta(hours=26), errors=0)
    failed = session(time=NOW - dt.timedelta(hours=2), errors=3)
    repos = [repository(server="app1", name="local", where="app1", path="/var/backups/rdiff/app1",
                        sessions=(ok, failed), needs_regress=True, broken_session=NOW - dt.timedelta(minutes=30)),
             repository(server="app2", name="offsite", where="backup1", path="/srv/rdiff/app2",
                        problem="Could not reach backup1: connection refused")]
    events = sorted(backup_events(repos))
    kinds = [(e.server, e.kind) for e in events]
    assert ("app1", "backup finished") in kinds and kinds.count(("app1", "backup failed")) == 2
    assert ("app2", UNAVAILABLE) in kinds
    assert any("3 file error(s)" in e.summary for e in events)


# --- Cloudflare and Stripe (their lab stand-ins) ----------------------------------------------------------------


@pytest.fixture(scope="module")
def vendors() -> Iterator[StandinServers]:
    with StandinServers() as servers:
        yield servers


def test_a_cloudflare_security_level_change_is_on_the_timeline(vendors: StandinServers) -> None:
    cloudflare = pytest.importorskip("services.cloudflare", reason="the Cloudflare client is not installed")
    spec = CloudflareSpec(zone="example.com", base_url=vendors.cloudflare_url)
    with cloudflare.CloudflareClient(spec, CLOUDFLARE_TOKEN) as client:
        client.set_security_level("under_attack")
    try:
        timeline = collect_timeline([cloudflare_provider(spec, lambda: CLOUDFLARE_TOKEN)],
                                    since=NOW - dt.timedelta(hours=1))
    finally:
        with cloudflare.CloudflareClient(spec, CLOUDFLARE_TOKEN) as client:
            client.set_security_level("medium")
    [event] = timeline.events
    assert (event.source, event.kind, event.severity) == ("cloudflare", "security level", "CRITICAL")
    assert "under_attack" in event.summary


def test_stripe_payment_failures_are_on_the_timeline(vendors: StandinServers) -> None:
    stripe = pytest.importorskip("services.stripe", reason="the Stripe client is not installed")
    spec = StripeSpec(base_url=vendors.stripe_url)
    since = NOW - dt.timedelta(days=30)
    with stripe.StripeClient(spec, STRIPE_KEY) as client:
        expected = client.payment_failures(since=since)
    timeline = collect_timeline([stripe_provider(spec, lambda: STRIPE_KEY)], since=since)
    assert expected, "the stand-in's demo data has failed payments"
    assert len(timeline.events) == len([f for f in expected if f.occurred_at is not None])
    assert all(e.kind == "payment failed" and e.source == "stripe" for e in timeline.events)
    assert expected[0].invoice_id in " ".join(e.summary for e in timeline.events)


def test_a_bad_key_is_one_unavailable_event_not_a_crash(vendors: StandinServers) -> None:
    spec = StripeSpec(base_url=vendors.stripe_url)
    timeline = collect_timeline([stripe_provider(spec, lambda: "sk_test_wrong"), stripe_provider(spec, lambda: None)],
                                since=WEEK_AGO)
    assert [(e.source, e.kind) for e in timeline.events] == [("stripe", UNAVAILABLE)] * 2
    assert any("STRIPE_API_KEY" in e.summary for e in timeline.events)
    assert not any("sk_test_wrong" in e.summary for e in timeline.events)


# --- merged -----------------------------------------------------------------------------------------------------


def test_sources_are_merged_in_time_order_and_a_down_server_is_one_event(
    pool: SshPool, runner: SshRunner, fake_bin: FakeBin, store: Store, spec: ServerSpec
) -> None:
    fake_bin.set_boots(boots(NOW))
    store.audit("unlock", "app1", "ok", "volume root")
    down = ServerSpec(name="gone", host="127.0.0.1", port=free_ports(1)[0], user=spec.user, identity=spec.identity,
                      host_key=spec.host_key)
    runners = {"app1": runner, "gone": SshRunner(pool, system_endpoint(down, known_hosts=None))}

    def exploding(since: dt.datetime, until: dt.datetime, cancel: CancelToken) -> list[TimelineEvent]:
        raise ValueError("a bug in a provider")

    providers = [
        boots_provider(runners.__getitem__, "app1", path_prefix=fake_bin.prefix),
        boots_provider(runners.__getitem__, "gone"),
        audit_provider(lambda: store.audit_entries(), ["app1", "gone"]),
        TimelineProvider("broken", exploding),
    ]
    timeline = collect_timeline(providers, since=WEEK_AGO)
    assert list(timeline.events) == sorted(timeline.events)
    sources = [(e.source, e.server, e.kind) for e in timeline.events]
    assert ("reboots", "app1", "reboot") in sources and ("unlocks", "app1", "unlocked") in sources
    unavailable = [e for e in timeline.events if e.unavailable]
    assert {(e.source, e.server) for e in unavailable} == {("reboots", "gone"), ("broken", "")}
    assert any("refused" in e.summary or "reach" in e.summary.lower() for e in unavailable if e.server == "gone")
    # only events in the window
    assert all(e.at >= WEEK_AGO for e in timeline.events)
    short = collect_timeline(providers[:1], since=NOW - dt.timedelta(hours=12))
    assert [e.kind for e in short.events] == []
