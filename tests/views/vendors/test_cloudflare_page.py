"""The Cloudflare page against the Cloudflare stand-in, through the real client: the zone, DNS
records with the ones outside the inventory flagged, create/edit/delete with their audit entries,
Under Attack and back, purges, read-only mode, a refused key and a 429."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt

from panel.lab.standins import StandinServers
from tests.views.vendors.conftest import WRONG_KEYS, Panel, accept, box_text, some
from tests.views.vendors.pages import messages_of, open_after_a_429, open_with_a_wrong_key, show_page, wait_for_set_up
from views.dialogs.dns_record import DnsRecordDialog
from views.pages.cloudflare import CloudflarePage


def open_page(qtbot: Any, panel: Panel, *, wait: bool = True) -> CloudflarePage:
    return show_page(qtbot, CloudflarePage(panel.state), wait=wait, timeout=15000)


def record_row(page: CloudflarePage, name: str, record_type: str = "A") -> int:
    for row in range(page.dns_model.rowCount()):
        found = page.dns_model.row_at(row)
        if found.name == name and found.record.type == record_type:
            return int(row)
    return -1


def select(page: CloudflarePage, name: str, record_type: str = "A") -> None:
    row = record_row(page, name, record_type)
    assert row >= 0, f"no {record_type} {name}"
    assert page.select_record(some(page.dns_model.record_at(row)).id)


def fill(dialog: DnsRecordDialog, *, record_type: str | None = None, name: str | None = None,
         content: str | None = None) -> None:
    if record_type is not None:
        dialog.type_box.setCurrentText(record_type)
    if name is not None:
        dialog.name_edit.setText(name)
    if content is not None:
        dialog.content_edit.setText(content)


def audit(panel: Panel, action: str) -> list[Any]:
    return panel.context.store.audit_entries(action_prefix=action)


def test_the_page_shows_the_zone_its_records_traffic_and_firewall_events(
        qtbot: Any, qtmodeltester: Any, make_panel: Callable[..., Panel], standins: StandinServers,
        leak_check: Callable[[Panel], None]) -> None:
    panel = make_panel()
    page = open_page(qtbot, panel)
    text = page.zone_label.text()
    assert "example.com" in text and "active" in text and "Pro Website" in text
    assert "medium" in page.level_label.text()
    assert page.dns_model.rowCount() == len(standins.cloudflare.records)
    # The lab's servers are on 127.0.0.1; legacy points at an address no server has: flagged.
    legacy = page.dns_model.row_at(record_row(page, "legacy"))
    assert legacy.check.stray and page.dns_model.data(page.dns_model.index(record_row(page, "legacy"), 5)) == \
        "not in inventory"
    assert page.dns_model.data(page.dns_model.index(record_row(page, "legacy"), 5),
                               Qt.ItemDataRole.BackgroundRole) is not None
    app1 = page.dns_model.row_at(record_row(page, "app1"))
    assert not app1.check.stray and app1.check.servers == ("app1", "app2")
    assert page.dns_model.stray_count == 2  # legacy, and ipv6's 2001:db8::10
    assert "2 outside the inventory" in page.status_label.text()
    page.stray_box.setChecked(True)
    assert page.dns_filter.rowCount() == 2
    page.stray_box.setChecked(False)
    page.dns_search.setText("mailgun")
    assert 0 < page.dns_filter.rowCount() < page.dns_model.rowCount()
    qtbot.waitUntil(lambda: bool(page.traffic_label.text()), timeout=10000)
    assert "requests" in page.traffic_label.text()
    assert [s.name for s in page.chart.series_data] == ["Requests", "Cached", "Threats"]
    assert len(page.chart.series_data[0].points) == 24
    page.period_box.setCurrentIndex(1)
    qtbot.waitUntil(lambda: len(page.chart.series_data[0].points) == 7, timeout=10000)
    qtbot.waitUntil(lambda: "firewall events" in page.firewall_label.text(), timeout=10000)
    qtmodeltester.check(page.dns_model)
    qtmodeltester.check(page.dns_filter)
    qtmodeltester.check(page.firewall_model)
    leak_check(panel)


def test_firewall_events_of_an_attack_are_listed(qtbot: Any, qtmodeltester: Any, make_panel: Callable[..., Panel],
                                                 standins: StandinServers) -> None:
    standins.cloudflare.attack = True
    page = open_page(qtbot, make_panel())
    qtbot.waitUntil(lambda: page.firewall_model.rowCount() > 100, timeout=10000)
    qtmodeltester.check(page.firewall_model)
    page.focus_item("firewall")
    assert page.tabs.currentIndex() == 2
    assert "blocked" in page.firewall_label.text()


def test_create_edit_and_delete_a_record_each_confirmed_and_audited(
        qtbot: Any, make_panel: Callable[..., Panel], standins: StandinServers,
        leak_check: Callable[[Panel], None]) -> None:
    panel = make_panel()
    page = open_page(qtbot, panel)
    records = standins.cloudflare.records

    # create: a mistake is caught in the dialog, which stays open
    page.add_button.click()
    dialog = page.dns_dialog
    assert dialog is not None and dialog.isVisible()
    fill(dialog, record_type="A", name="api", content="203.0.113.300")
    dialog.ok_button.click()
    assert "IPv4" in dialog.error_label.text() and dialog.isVisible()
    fill(dialog, content="203.0.113.5")
    dialog.ok_button.click()
    assert not dialog.isVisible()
    assert page.confirm_box is not None and "A api -> 203.0.113.5" in box_text(page.confirm_box)
    accept(page.confirm_box)
    qtbot.waitUntil(lambda: any(r["name"] == "api.example.com" for r in records.values()), timeout=10000)
    qtbot.waitUntil(lambda: record_row(page, "api") >= 0, timeout=10000)
    (created,) = audit(panel, "cloudflare.dns.create")
    assert (created.target, created.outcome, created.detail) == ("cloudflare/example.com", "ok", "A api -> 203.0.113.5")
    assert page.dns_model.row_at(record_row(page, "api")).check.stray  # 203.0.113.5 is no server of ours

    # edit: the confirmation shows what changes
    qtbot.waitUntil(lambda: getattr(page.selected_record(), "name", None) == "api.example.com",
                    timeout=5000)
    page.edit_button.click()
    dialog = page.dns_dialog
    assert dialog is not None and dialog.content_edit.text() == "203.0.113.5"
    fill(dialog, content="127.0.0.1")
    dialog.ok_button.click()
    assert "content: 203.0.113.5 -> 127.0.0.1" in box_text(page.confirm_box)
    accept(page.confirm_box)
    qtbot.waitUntil(lambda: any(r["name"] == "api.example.com" and r["content"] == "127.0.0.1"
                                for r in records.values()), timeout=10000)
    (updated,) = audit(panel, "cloudflare.dns.update")
    assert updated.outcome == "ok" and updated.detail == "A api: content: 203.0.113.5 -> 127.0.0.1"
    qtbot.waitUntil(lambda: record_row(page, "api") >= 0 and
                    not page.dns_model.row_at(record_row(page, "api")).check.stray, timeout=10000)

    # delete
    select(page, "api")
    page.delete_button.click()
    assert "A api -> 127.0.0.1" in box_text(page.confirm_box) and "app1, app2" in box_text(page.confirm_box)
    accept(page.confirm_box)
    qtbot.waitUntil(lambda: not any(r["name"] == "api.example.com" for r in records.values()), timeout=10000)
    qtbot.waitUntil(lambda: record_row(page, "api") < 0, timeout=10000)
    (deleted,) = audit(panel, "cloudflare.dns.delete")
    assert deleted.outcome == "ok" and deleted.detail == "A api -> 127.0.0.1"
    leak_check(panel)


def test_a_refused_change_is_audited_as_failed(qtbot: Any, make_panel: Callable[..., Panel],
                                               standins: StandinServers) -> None:
    panel = make_panel()
    page = open_page(qtbot, panel)
    page.add_button.click()
    dialog = some(page.dns_dialog)
    fill(dialog, record_type="A", name="www", content="203.0.113.9")  # www is a CNAME already
    dialog.ok_button.click()
    accept(page.confirm_box)
    qtbot.waitUntil(lambda: bool(audit(panel, "cloudflare.dns.create")), timeout=10000)
    (entry,) = audit(panel, "cloudflare.dns.create")
    assert entry.outcome == "failed" and "already exists" in entry.detail
    qtbot.waitUntil(lambda: "already exists" in page.status_label.text(), timeout=5000)


def test_under_attack_on_and_back_off(qtbot: Any, make_panel: Callable[..., Panel], standins: StandinServers) -> None:
    panel = make_panel()
    page = open_page(qtbot, panel)
    standins.cloudflare.security_level = "high"
    page.reload()
    qtbot.waitUntil(lambda: page.zone is not None and page.zone.security.value == "high", timeout=10000)

    # from the palette, as in an incident
    panel.state.actions["cloudflare/under-attack-on"].run()
    assert "Under Attack" in box_text(page.confirm_box)
    accept(page.confirm_box)
    qtbot.waitUntil(lambda: standins.cloudflare.security_level == "under_attack", timeout=10000)
    qtbot.waitUntil(lambda: "ON" in page.attack_button.text(), timeout=10000)
    assert "back to high" in page.attack_button.text()
    (on,) = audit(panel, "cloudflare.under_attack")
    assert on.outcome == "ok" and on.detail == "on: security level high -> under_attack"

    # and back, with the button
    qtbot.waitUntil(page.attack_button.isEnabled, timeout=5000)
    page.attack_button.click()
    assert "back to high" in box_text(page.confirm_box)
    accept(page.confirm_box)
    qtbot.waitUntil(lambda: standins.cloudflare.security_level == "high", timeout=10000)
    qtbot.waitUntil(lambda: "turn on" in page.attack_button.text(), timeout=10000)
    off = audit(panel, "cloudflare.under_attack")[0]
    assert off.detail == "off: security level under_attack -> high"


def test_development_mode_and_cache_purges(qtbot: Any, make_panel: Callable[..., Panel],
                                           standins: StandinServers) -> None:
    panel = make_panel()
    page = open_page(qtbot, panel)
    page.dev_button.click()
    accept(page.confirm_box)
    qtbot.waitUntil(lambda: "Development mode: on" in page.dev_button.text(), timeout=10000)
    assert audit(panel, "cloudflare.development_mode")[0].detail == "on"

    qtbot.waitUntil(page.purge_button.isEnabled, timeout=5000)
    panel.state.actions["cloudflare/purge"].run()
    accept(page.confirm_box)
    qtbot.waitUntil(lambda: len(standins.cloudflare.purges) == 1, timeout=10000)
    assert standins.cloudflare.purges[0].get("purge_everything") is True
    qtbot.waitUntil(lambda: bool(audit(panel, "cloudflare.purge")), timeout=5000)
    assert audit(panel, "cloudflare.purge")[0].detail == "everything"

    qtbot.waitUntil(page.purge_button.isEnabled, timeout=5000)
    urls = [f"https://example.com/static/{n}.css" for n in range(35)]
    page.purge_urls(urls)
    assert "35 URL(s)" in box_text(page.confirm_box)
    accept(page.confirm_box)
    qtbot.waitUntil(lambda: len(standins.cloudflare.purges) == 3, timeout=10000)  # batches of 30
    qtbot.waitUntil(lambda: len(audit(panel, "cloudflare.purge")) == 2, timeout=5000)
    assert audit(panel, "cloudflare.purge")[0].detail.startswith("35 URL(s): https://example.com/static/0.css")


def test_read_only_mode_disables_every_change(qtbot: Any, make_panel: Callable[..., Panel],
                                              standins: StandinServers) -> None:
    panel = make_panel()
    page = open_page(qtbot, panel)
    select(page, "legacy")
    assert page.delete_button.isEnabled() and page.attack_button.isEnabled()
    messages = messages_of(panel)
    panel.state.set_read_only(True, remember=False)
    for button in (page.add_button, page.edit_button, page.delete_button, page.attack_button, page.dev_button,
                   page.purge_button, page.level_button):
        assert not button.isEnabled()
    before = len(standins.cloudflare.request_log)
    page.confirm_box = None
    panel.state.actions["cloudflare/under-attack-on"].run()
    page.delete_record()
    assert page.confirm_box is None
    assert any("Read-only mode is on" in m for m in messages)
    assert all(method == "GET" for _, method, _ in standins.cloudflare.request_log[before:])
    assert panel.state.actions["cloudflare/under-attack-on"].changes_something
    assert not panel.state.actions["cloudflare/dns"].changes_something
    panel.state.set_read_only(False, remember=False)
    assert page.delete_button.isEnabled()
    page.tabs.setCurrentIndex(2)
    panel.state.actions["cloudflare/dns"].run()  # reading is fine in read-only mode too
    assert page.tabs.currentIndex() == 0


def test_a_refused_token_shows_the_set_up_state_and_a_new_key_fixes_it(
        qtbot: Any, make_panel: Callable[..., Panel], standins: StandinServers,
        leak_check: Callable[[Panel], None]) -> None:
    panel, page = open_with_a_wrong_key(qtbot, make_panel, "cloudflare", open_page)
    assert page.stack.currentWidget() is page.set_up_panel
    assert "The key was refused" in page.set_up_panel.text.text()
    assert page.set_up_panel.set_up_button.isVisible()

    page.set_up_panel.set_up_button.click()
    dialog = page.key_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.key_edit.setText(WRONG_KEYS["cloudflare"] + "2")
    dialog.save_button.click()
    qtbot.waitUntil(lambda: "Invalid API Token" in dialog.result_label.text(), timeout=10000)
    assert dialog.isVisible()
    from panel.lab import secrets

    dialog.key_edit.setText(secrets.CLOUDFLARE_TOKEN)
    with qtbot.waitSignal(page.loaded, timeout=15000):
        dialog.save_button.click()
    assert not page.needs_set_up and page.dns_model.rowCount() > 0
    assert panel.keyring.entries[("panel", "cloudflare")] == secrets.CLOUDFLARE_TOKEN
    entries = audit(panel, "api-key.set")
    assert [e.outcome for e in entries] == ["ok", "refused"]
    leak_check(panel)


def test_missing_section_or_key_shows_the_set_up_state(qtbot: Any, make_panel: Callable[..., Panel],
                                                       standins: StandinServers) -> None:
    page = open_page(qtbot, make_panel(vendors=("stripe",)), wait=False)
    wait_for_set_up(qtbot, page)
    assert "not set up" in page.set_up_panel.heading.text()
    assert "[cloudflare]" in page.set_up_panel.text.text()
    assert not page.attack_button.isEnabled()

    page = open_page(qtbot, make_panel(keys={}), wait=False)
    wait_for_set_up(qtbot, page)
    assert "No Cloudflare API key" in page.set_up_panel.heading.text()
    assert "CLOUDFLARE_API_TOKEN" in page.set_up_panel.text.text()
    assert not standins.cloudflare.request_log  # nothing was sent without a key


def test_a_429_says_it_waits_then_loads(qtbot: Any, make_panel: Callable[..., Panel],
                                        standins: StandinServers) -> None:
    page = open_after_a_429(qtbot, make_panel(), standins.cloudflare, open_page,
                            "Cloudflare rate limited, retrying in 1 s")
    qtbot.waitUntil(lambda: bool(page.traffic_label.text()) and page.firewall_model.rowCount() >= 0, timeout=10000)
    assert not page.needs_set_up and page.dns_model.rowCount() > 0
