"""The Billing page against the Stripe stand-in (10,500 customers), through the real client:
customers arriving page by page, subscription states, MRR, failed payments, a payment retry
that charges once although its answer is lost, a decline, read-only mode, a 401 and a 429."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices

from panel.lab.standins import StandinServers
from services.vendors import billing_for_group, stripe_client
from tests.views.vendors.conftest import Panel, accept, box_text, some
from tests.views.vendors.pages import open_after_a_429, open_with_a_wrong_key, show_page
from views.models.billing import CustomersModel
from views.pages.billing import BillingPage


def open_page(qtbot: Any, panel: Panel, *, wait: bool = True) -> BillingPage:
    return show_page(qtbot, BillingPage(panel.state), wait=wait, timeout=60000)


def group_invoice(lab: StandinServers, group_id: int) -> dict[str, Any]:
    customer = next(c for c in lab.stripe.customers.values() if c["metadata"].get("group_id") == str(group_id))
    return next(i for i in lab.stripe.invoices.values() if i["customer"] == customer["id"] and i["status"] == "open")


class UrlCatcher(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    @Slot(QUrl)
    def catch(self, url: QUrl) -> None:
        self.urls.append(url.toString())


def test_customers_arrive_page_by_page_with_their_groups_and_states(
        qtbot: Any, make_panel: Callable[..., Panel], standins: StandinServers,
        leak_check: Callable[[Panel], None]) -> None:
    panel = make_panel()
    page = open_page(qtbot, panel, wait=False)
    inserts: list[int] = []
    page.customers_model.rowsInserted.connect(lambda _, first, last: inserts.append(last - first + 1))
    with qtbot.waitSignal(page.loaded, timeout=60000):
        page.activate()
    total = len(standins.stripe.customers)
    assert total >= 10_000
    assert page.customers_model.total == total == page.customers_model.rowCount()
    assert len(inserts) >= total // 100 and max(inserts) <= 100  # a page at a time, not all at the end
    customer_gets = [p for _, m, p in standins.stripe.request_log if m == "GET" and p == "/v1/customers"]
    assert len(customer_gets) == -(-total // 100) == page.customer_requests
    assert f"{total:,} customers ({page.customer_requests} requests" in page.customers_label.text()

    # groups joined by metadata.group_id, and each customer's subscription state
    page.search.setText("1000001")
    assert page.customers_model.rowCount() == 1
    globex = page.customers_model.customer_at(0)
    assert globex is not None and globex.group_id == 1_000_001
    assert page.customers_model.data(page.customers_model.index(0, 5)) == "past_due"
    page.search.setText("")
    page.problems_box.setChecked(True)
    delinquent = page.customers_model.rowCount()
    assert 0 < delinquent < total
    page.problems_box.setChecked(False)

    assert page.mrr_label.text().startswith("MRR ") and "USD" in page.mrr_label.text()
    states = page.states_label.text()
    assert "active" in states and "past_due" in states and "unpaid" in states and "At risk" in states
    assert "test mode" in page.account_label.text()
    leak_check(panel)


def test_the_customers_model_sorts_filters_and_appends(qtbot: Any, qtmodeltester: Any,
                                                       make_panel: Callable[..., Panel]) -> None:
    panel = make_panel()
    with stripe_client(panel.context) as client:
        customers = [c for _, c in zip(range(160), client.iter_customers(), strict=False)]
    model = CustomersModel()
    qtmodeltester.check(model)  # stays attached: every change below is checked too
    model.append(customers[:60])
    model.sort(3, Qt.SortOrder.DescendingOrder)
    model.append(customers[60:110])
    groups = [some(model.customer_at(row)).group_id or -1 for row in range(model.rowCount())]
    assert groups == sorted(groups, reverse=True)
    model.sort(1, Qt.SortOrder.AscendingOrder)
    model.append(customers[110:])
    names = [(some(model.customer_at(row)).name or "").lower() for row in range(model.rowCount())]
    assert names == sorted(names) and model.rowCount() == 160
    model.append(customers[:10])  # a page read twice adds nothing
    assert model.total == 160
    model.set_statuses({customers[0].id: "unpaid", customers[1].id: "past_due"})
    model.set_filter("", only_problems=True)
    assert {some(model.customer_at(r)).id for r in range(model.rowCount())} >= {customers[0].id, customers[1].id}
    model.set_filter(customers[5].email or "", only_problems=False)
    assert model.rowCount() >= 1 and some(model.customer_at(0)).id == customers[5].id
    model.set_filter("", only_problems=False)
    model.sort(5, Qt.SortOrder.AscendingOrder)
    assert model.data(model.index(0, 5)) == "unpaid"
    qtmodeltester.check(model)


def test_failed_payments_and_a_retry_that_charges_once_although_its_answer_is_lost(
        qtbot: Any, qtmodeltester: Any, make_panel: Callable[..., Panel], standins: StandinServers,
        leak_check: Callable[[Panel], None]) -> None:
    panel = make_panel()
    page = open_page(qtbot, panel)
    qtmodeltester.check(page.delinquent_model)
    qtmodeltester.check(page.failures_model)
    qtmodeltester.check(page.delinquent_proxy)
    assert page.delinquent_model.rowCount() > 0 and page.failures_model.rowCount() > 0
    invoice = group_invoice(standins, 1_000_001)  # globex: past due, and a retry succeeds
    page.focus_item("failed")
    assert page.tabs.currentIndex() == 1
    assert page.select_invoice(invoice["id"])
    row = page.selected_delinquent()
    assert row is not None and row.status == "past_due" and row.group_id == 1_000_001
    assert row.invoice is not None and row.invoice.attempt_count == invoice["attempt_count"]
    attempts_before = invoice["attempt_count"]

    standins.stripe.faults.drop_next(1)  # the charge happens, its answer is lost (a 500)
    page.retry_button.click()
    assert "Charge" in box_text(page.confirm_box) and invoice["id"] in box_text(page.confirm_box)
    accept(page.confirm_box)
    qtbot.waitUntil(lambda: bool(panel.context.store.audit_entries(action_prefix="stripe.invoice.pay")),
                    timeout=15000)
    (entry,) = panel.context.store.audit_entries(action_prefix="stripe.invoice.pay")
    assert entry.outcome == "ok" and entry.target == f"stripe/{invoice['customer']}/{invoice['id']}"
    assert "paid" in entry.detail and "group 1000001" in entry.detail
    assert standins.stripe.charges[invoice["id"]] == 1  # one charge, not two
    assert invoice["status"] == "paid" and invoice["attempt_count"] == attempts_before + 1
    pays = [p for _, m, p in standins.stripe.request_log if m == "POST" and p.endswith("/pay")]
    assert len(pays) == 2  # the lost answer was retried ...
    saved = standins.stripe.idempotency[page.last_idempotency_key]  # ... with the same idempotency key
    assert saved["response"].status == 200
    qtbot.waitUntil(lambda: page.delinquent_model.row_of_invoice(invoice["id"]) < 0, timeout=15000)
    leak_check(panel)


def test_a_declined_retry_is_audited_and_shown(qtbot: Any, make_panel: Callable[..., Panel],
                                               standins: StandinServers) -> None:
    panel = make_panel()
    page = open_page(qtbot, panel)
    invoice = group_invoice(standins, 5)  # initech: unpaid, and its card is declined
    page.focus_item("failed")
    assert page.select_invoice(invoice["id"])
    page.retry_button.click()
    accept(page.confirm_box)
    qtbot.waitUntil(lambda: "insufficient funds" in page.status_label.text(), timeout=15000)
    (entry,) = panel.context.store.audit_entries(action_prefix="stripe.invoice.pay")
    assert entry.outcome == "declined" and "insufficient_funds" in entry.detail
    assert standins.stripe.charges.get(invoice["id"], 0) == 0


def test_read_only_mode_disables_the_retry(qtbot: Any, make_panel: Callable[..., Panel],
                                           standins: StandinServers) -> None:
    panel = make_panel()
    page = open_page(qtbot, panel)
    page.focus_item("failed")
    assert page.select_invoice(group_invoice(standins, 1_000_001)["id"])
    assert page.retry_button.isEnabled()
    panel.state.set_read_only(True, remember=False)
    assert not page.retry_button.isEnabled()
    page.confirm_box = None
    page.retry_selected_payment()
    assert page.confirm_box is None
    assert not any(m == "POST" for _, m, _ in standins.stripe.request_log)


def test_open_a_customer_in_stripe_and_show_its_group(qtbot: Any, make_panel: Callable[..., Panel],
                                                      standins: StandinServers) -> None:
    panel = make_panel()
    page = open_page(qtbot, panel)
    acme = next(c["id"] for c in standins.stripe.customers.values() if c["metadata"].get("group_id") == "1")
    catcher = UrlCatcher()
    QDesktopServices.setUrlHandler("https", catcher, "catch")  # type: ignore[arg-type]
    try:
        page.search.setText(acme)
        assert page.customers_model.rowCount() == 1
        page.customers_table.selectRow(0)
        customer = page.selected_customer()
        assert customer is not None and customer.group_id == 1
        page.open_customer_button.click()
        assert catcher.urls == [f"https://dashboard.stripe.com/test/customers/{customer.id}"]
    finally:
        QDesktopServices.unsetUrlHandler("https")
    with qtbot.waitSignal(panel.state.navigate) as navigated:
        page.show_group_button.click()
    assert navigated.args == ["Groups", 1]


def test_a_refused_key_shows_the_set_up_state(qtbot: Any, make_panel: Callable[..., Panel],
                                              standins: StandinServers, leak_check: Callable[[Panel], None]) -> None:
    panel, page = open_with_a_wrong_key(qtbot, make_panel, "stripe", open_page, timeout=15000)
    assert page.set_up_panel.set_up_button.isVisible()
    assert "Invalid API Key" not in page.set_up_panel.text.text()  # Stripe's echo of the key is never shown
    assert "the key was refused" in page.status_label.text()
    leak_check(panel)


def test_a_429_says_it_waits_then_loads(qtbot: Any, make_panel: Callable[..., Panel],
                                        standins: StandinServers) -> None:
    page = open_after_a_429(qtbot, make_panel(), standins.stripe, open_page, "Stripe rate limited, retrying in 1 s")
    assert page.customers_model.total == len(standins.stripe.customers)
    assert page.overview is not None


def test_billing_for_group_for_the_groups_page(make_panel: Callable[..., Panel], standins: StandinServers) -> None:
    panel = make_panel()
    acme = billing_for_group(panel.context, 1)
    assert len(acme.customers) == 2 and acme.status == "active" and not acme.delinquent
    assert acme.monthly and "USD/month" in acme.summary
    globex = billing_for_group(panel.context, 1_000_001)
    assert globex.status == "past_due" and globex.delinquent and globex.attempt_count >= 1
    assert "owed after" in globex.summary
    assert globex.dashboard_urls[globex.customers[0].id].startswith("https://dashboard.stripe.com/test/customers/")
    from panel.lab import secrets
    from services.inventory import StripeSpec

    nobody = billing_for_group((StripeSpec(standins.stripe_url), secrets.STRIPE_KEY), 999_999)
    assert nobody.status == "no customer" and "No Stripe customer" in nobody.summary
