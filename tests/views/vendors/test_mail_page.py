"""The Mail page against the Mailgun stand-in (US and EU listeners), through the real client:
domains and their DNS records, the delivery chart, failures with reasons, suppression removal,
a test message, the region, read-only mode, a refused key and a 429."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from panel.lab.standins import StandinServers
from tests.views.vendors.conftest import Panel, accept, box_text, some
from tests.views.vendors.pages import messages_of, open_after_a_429, open_with_a_wrong_key, show_page, wait_for_set_up
from views.pages.mail import MailPage


def open_page(qtbot: Any, panel: Panel, *, wait: bool = True) -> MailPage:
    page = show_page(qtbot, MailPage(panel.state), wait=wait, timeout=20000)
    if wait:
        qtbot.waitUntil(lambda: bool(page.suppressions) and page.failures_model.rowCount() > 0, timeout=20000)
    return page


def test_domains_delivery_failures_and_suppressions(qtbot: Any, qtmodeltester: Any, make_panel: Callable[..., Panel],
                                                    standins: StandinServers,
                                                    leak_check: Callable[[Panel], None]) -> None:
    panel = make_panel()
    page = open_page(qtbot, panel)
    label = page.domain_label.text()
    assert "mg.example.com" in label and "EU domain" in label and "active" in label
    names = [some(page.domains_model.domain_at(r)).name for r in range(page.domains_model.rowCount())]
    assert names[0] == "mg.example.com" and "news.example.com" in names
    assert "1 not active" in page.tabs.tabText(3) or "2 not active" in page.tabs.tabText(3)
    # the unverified domain's records say what is missing
    row = page.domains_model.row_of("news.example.com")
    page.domains_table.selectRow(page.domains_proxy.mapFromSource(page.domains_model.index(row, 0)).row())
    valid = [page.records_model.data(page.records_model.index(r, 4)) for r in range(page.records_model.rowCount())]
    assert len(valid) == 5 and "valid" not in valid
    assert page.domains_model.data(page.domains_model.index(row, 1)) == "unverified"

    series = {s.name: s for s in page.chart.series_data}
    assert set(series) == {"Accepted", "Delivered", "Failed for good", "Failed, retrying"}
    assert len(series["Accepted"].points) >= 24 and series["Accepted"].total > 0
    assert "accepted" in page.delivery_label.text() and "failed for good" in page.delivery_label.text()
    page.period_box.setCurrentIndex(1)
    qtbot.waitUntil(lambda: len(page.chart.series_data[0].points) in (7, 8), timeout=10000)

    assert all(page.failures_model.row_at(r).severity == "permanent" for r in range(page.failures_model.rowCount()))
    assert "permanent" in page.failures_label.text() and "bounce" in page.failures_label.text()
    page.failure_window_box.setCurrentIndex(1)
    qtbot.waitUntil(lambda: any(page.failures_model.row_at(r).severity == "temporary"
                                for r in range(page.failures_model.rowCount())), timeout=10000)

    assert page.kind_box.itemText(0) == f"Bounces ({len(standins.mailgun.suppressions['bounces'])})"
    assert page.suppressions_model.rowCount() == len(standins.mailgun.suppressions["bounces"])
    page.kind_box.setCurrentIndex(2)
    assert page.suppressions_model.rowCount() == len(standins.mailgun.suppressions["unsubscribes"])
    for model in (page.domains_model, page.records_model, page.failures_model, page.suppressions_model,
                  page.suppressions_proxy):
        qtmodeltester.check(model)
    leak_check(panel)


def test_remove_a_bounce_confirmed_and_audited(qtbot: Any, qtmodeltester: Any, make_panel: Callable[..., Panel],
                                               standins: StandinServers,
                                               leak_check: Callable[[Panel], None]) -> None:
    panel = make_panel()
    page = open_page(qtbot, panel)
    qtmodeltester.check(page.suppressions_model)
    address = "nobody3@mail.example"
    assert address in standins.mailgun.suppressions["bounces"]
    before = page.suppressions_model.rowCount()
    page.focus_item(address)
    assert page.tabs.currentIndex() == 2 and page.suppressions_proxy.rowCount() == 1
    assert page.select_address(address)
    page.remove_button.click()
    assert address in box_text(page.confirm_box) and "bounces" in box_text(page.confirm_box)
    accept(page.confirm_box)
    qtbot.waitUntil(lambda: address not in standins.mailgun.suppressions["bounces"], timeout=10000)
    qtbot.waitUntil(lambda: page.suppressions_model.row_of(address) < 0, timeout=10000)
    assert page.suppressions_model.rowCount() == before - 1
    assert page.kind_box.itemText(0) == f"Bounces ({before - 1})"
    (entry,) = panel.context.store.audit_entries(action_prefix="mailgun.suppression.remove")
    assert (entry.target, entry.outcome, entry.detail) == ("mailgun/mg.example.com", "ok", f"bounces: {address}")
    leak_check(panel)


def test_send_a_test_message_in_test_mode(qtbot: Any, make_panel: Callable[..., Panel],
                                          standins: StandinServers) -> None:
    panel = make_panel()
    page = open_page(qtbot, panel)
    page.send_button.click()
    dialog = page.test_dialog
    assert dialog is not None and dialog.test_mode_box.isChecked()
    dialog.to_edit.setText("not an address")
    dialog.ok_button.click()
    assert dialog.isVisible() and "recipient" in dialog.error_label.text()
    dialog.to_edit.setText("founder@example.com")
    dialog.ok_button.click()
    assert "test mode" in box_text(page.confirm_box)
    accept(page.confirm_box)
    qtbot.waitUntil(lambda: page.last_send is not None, timeout=10000)
    (sent,) = standins.mailgun.sent
    assert sent["test_mode"] and dict(sent["fields"])["to"] == "founder@example.com"
    (entry,) = panel.context.store.audit_entries(action_prefix="mailgun.send_test")
    assert entry.outcome == "ok" and "to founder@example.com, test mode" in entry.detail
    assert "Queued" in page.status_label.text()


def test_read_only_mode_disables_removal_and_sending(qtbot: Any, make_panel: Callable[..., Panel],
                                                     standins: StandinServers) -> None:
    panel = make_panel()
    page = open_page(qtbot, panel)
    page.tabs.setCurrentIndex(2)
    page.suppressions_table.selectRow(0)
    assert page.remove_button.isEnabled() and page.send_button.isEnabled()
    panel.state.set_read_only(True, remember=False)
    assert not page.remove_button.isEnabled() and not page.send_button.isEnabled()
    page.confirm_box = None
    page.remove_selected_suppression()
    panel.state.actions["mail/send-test"].run()
    assert page.confirm_box is None and page.test_dialog is None
    assert all(method == "GET" for _, method, _ in standins.mailgun.request_log)


def test_the_region_is_the_config_base_url(qtbot: Any, make_panel: Callable[..., Panel],
                                           standins: StandinServers) -> None:
    standins.mailgun.strict_regions = True  # a domain answers on its own region's API only
    panel = make_panel(mailgun_url=standins.mailgun_url)  # the US API, for an EU domain
    messages = messages_of(panel)
    page = open_page(qtbot, panel, wait=False)
    page.activate()
    qtbot.waitUntil(lambda: "not found in this region" in page.domain_label.text(), timeout=10000)
    names = [some(page.domains_model.domain_at(r)).name for r in range(page.domains_model.rowCount())]
    assert "mg.example.com" not in names and "mg.example.net" in names
    qtbot.waitUntil(lambda: any("api.eu.mailgun.net" in m for m in messages), timeout=10000)  # the stats said why
    listeners = {listener for listener, _, _ in standins.mailgun.request_log}
    assert listeners == {"mailgun"}

    page = open_page(qtbot, make_panel(mailgun_url=standins.mailgun_eu_url))
    assert "EU domain" in page.domain_label.text() and "not found" not in page.domain_label.text()
    assert "mailgun-eu" in {listener for listener, _, _ in standins.mailgun.request_log}


def test_a_refused_key_shows_the_set_up_state(qtbot: Any, make_panel: Callable[..., Panel],
                                              standins: StandinServers, leak_check: Callable[[Panel], None]) -> None:
    panel, page = open_with_a_wrong_key(qtbot, make_panel, "mailgun", open_page)
    assert "private API key" in page.set_up_panel.text.text()
    assert not page.send_button.isEnabled()
    leak_check(panel)


def test_a_key_kept_for_the_session_when_no_keyring_works(qtbot: Any, make_panel: Callable[..., Panel],
                                                          standins: StandinServers,
                                                          leak_check: Callable[[Panel], None]) -> None:
    from panel.lab import secrets
    from tests.keyrings import LockedKeyring

    panel = make_panel(keys={}, backend=LockedKeyring())
    page = open_page(qtbot, panel, wait=False)
    wait_for_set_up(qtbot, page)
    assert "No Mailgun API key" in page.set_up_panel.heading.text()
    page.set_up_panel.set_up_button.click()
    dialog = page.key_dialog
    assert dialog is not None
    dialog.key_edit.setText(secrets.MAILGUN_KEY)
    messages = messages_of(panel)
    with qtbot.waitSignal(page.loaded, timeout=20000):
        dialog.save_button.click()
    assert any("kept in memory for this session only" in m for m in messages)
    assert not page.needs_set_up
    (entry,) = panel.context.store.audit_entries(action_prefix="api-key.set")
    assert entry.outcome == "ok" and "for this session only" in entry.detail
    leak_check(panel)


def test_a_429_says_it_waits_then_loads(qtbot: Any, make_panel: Callable[..., Panel],
                                        standins: StandinServers) -> None:
    page = open_after_a_429(qtbot, make_panel(), standins.mailgun, open_page, "Mailgun rate limited, retrying in 1 s")
    assert page.domains_model.rowCount() == 4
