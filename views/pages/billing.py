"""Billing (Stripe): customers joined to the SaaS's groups (metadata.group_id), subscription states,
MRR, the past_due and unpaid subscriptions with their failed invoices and attempt counts, recent
``invoice.payment_failed`` events, and retrying an open invoice's payment.

Customers load in pages of 100 on a worker and appear as each page arrives, so a Stripe account
with tens of thousands of customers never stalls the window. A payment retry carries one
idempotency key per confirmed click, reused by every retry of that click, so it charges at most
once; it is confirmed and written to the audit log (``stripe.invoice.pay``).
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSplitter,
    QTabWidget,
    QWidget,
)

from services.errors import PanelError
from services.http import ApiPaymentError
from services.stripe import Customer, Invoice, StripeClient, new_idempotency_key
from services.vendors import (
    BillingOverview,
    billing_overview,
    customer_pages,
    money,
    pay_invoice,
    stripe_dashboard_url,
)
from views.dialogs.api_key import VendorPage, audited
from views.models.billing import (
    CustomersModel,
    DelinquentModel,
    DelinquentRow,
    PaymentFailuresModel,
    Row,
    customer_row,
)
from views.models.cloudflare import SortingProxy
from views.pages.vendor_widgets import button_row, column, push_button, row, select_row, selected
from views.state import PaletteAction, PanelState
from views.style import STATE_COLOURS
from views.tables import row_table
from views.workers import Job, JobContext

ACTION_PREFIX = "billing/"
FAILURES_DAYS = 7
CUSTOMER_WIDTHS = (160, 180, 240, 80, 60, 100, 90)
PAINT_INTERVAL_MS = 200  # while customers stream in, the table takes new pages (and repaints) this often




class CustomerPage:
    """One page of customers as it arrives from the worker, already as the model's plain rows."""

    __slots__ = ("generation", "requests", "rows")

    def __init__(self, generation: int, rows: list[Row], requests: int) -> None:
        self.generation = generation
        self.rows = rows
        self.requests = requests


class BillingPage(VendorPage):
    title = "Billing"
    vendor = "stripe"
    customers_loaded = Signal(int)  # how many, once every page arrived

    def __init__(self, state: PanelState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.overview: BillingOverview | None = None
        self.generation = 0
        self.customers_job: Job | None = None
        self.customers_done = False
        self.customer_requests = 0  # requests the last customers load took (for the status and the bench)
        self.customers_seconds = 0.0
        self._customers_started = 0.0
        self.last_idempotency_key = ""  # the key of the last payment retry (tests check it is reused)
        self._pending_pages: list[CustomerPage] = []
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(PAINT_INTERVAL_MS)
        self._flush_timer.timeout.connect(self._flush_pages)

        self.account_label = QLabel("Stripe")
        self.account_label.setTextFormat(Qt.TextFormat.RichText)
        top = row(self.account_label, self.reload_button, grow=self.account_label)
        self.mrr_label = QLabel("MRR …")
        font = self.mrr_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        self.mrr_label.setFont(font)
        self.states_label = QLabel()
        self.states_label.setTextFormat(Qt.TextFormat.RichText)
        self.states_label.setWordWrap(True)
        summary = QHBoxLayout()
        summary.addWidget(self.mrr_label)
        summary.addSpacing(16)
        summary.addWidget(self.states_label, 1)

        # customers
        self.customers_model = CustomersModel(self)
        self.customers_table = row_table(self.customers_model, CUSTOMER_WIDTHS, tight_rows=True)
        # Stripe's order (newest first) until the operator clicks a column: no sort indicator yet.
        self.customers_table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.customers_table.setSortingEnabled(True)
        self.customers_table.doubleClicked.connect(self._customer_double_clicked)
        self.customers_table.selectionModel().selectionChanged.connect(lambda *_: self.update_buttons())
        self.search = QLineEdit()
        self.search.setPlaceholderText("Filter customers: name, email, group id, customer id… (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(lambda _: self._filter_changed())
        self.problems_box = QCheckBox("Only delinquent, past due or unpaid")
        self.problems_box.toggled.connect(lambda _: self._filter_changed())
        self.customers_label = QLabel()
        filters = row(self.search, self.problems_box, self.customers_label, grow=self.search)
        self.open_customer_button = push_button("Open in Stripe", self.open_selected_customer)
        self.show_group_button = push_button("Show group", self.show_selected_group)
        customers_tab = column(filters, self.customers_table,
                               button_row(self.open_customer_button, self.show_group_button),
                               grow=self.customers_table)

        # failed payments
        self.delinquent_model = DelinquentModel(self)
        self.delinquent_proxy = SortingProxy(self)
        self.delinquent_proxy.setSourceModel(self.delinquent_model)
        self.delinquent_table = row_table(self.delinquent_proxy, (80, 150, 150, 80, 150, 100, 70),
                                          sort_by=(0, Qt.SortOrder.AscendingOrder), tight_rows=True)
        self.delinquent_table.selectionModel().selectionChanged.connect(lambda *_: self.update_buttons())
        self.delinquent_label = QLabel("Past due and unpaid subscriptions")
        self.retry_button = push_button(
            "Retry payment…", self.retry_selected_payment,
            tip="Charge the open invoice now with the customer's default payment method.")
        self.open_invoice_button = push_button("Open invoice in Stripe", self.open_selected_invoice)
        self.open_delinquent_customer_button = push_button("Open customer in Stripe",
                                                           self.open_selected_delinquent_customer)
        delinquent_box = column(self.delinquent_label, self.delinquent_table,
                                button_row(self.retry_button, self.open_invoice_button,
                                           self.open_delinquent_customer_button),
                                grow=self.delinquent_table, margins=False)
        self.failures_model = PaymentFailuresModel(self)
        self.failures_proxy = SortingProxy(self)
        self.failures_proxy.setSourceModel(self.failures_model)
        self.failures_table = row_table(self.failures_proxy, (130, 150, 150, 80, 100, 70),
                                        sort_by=(0, Qt.SortOrder.DescendingOrder), tight_rows=True)
        self.failures_label = QLabel(f"Failed payments (invoice.payment_failed), last {FAILURES_DAYS} days")
        failures_box = column(self.failures_label, self.failures_table, grow=self.failures_table, margins=False)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(delinquent_box)
        splitter.addWidget(failures_box)

        self.tabs = QTabWidget()
        self.tabs.addTab(customers_tab, "Customers")
        self.tabs.addTab(splitter, "Failed payments")
        column(top, summary, self.tabs, grow=self.tabs, into=self.content)

        self.state.remove_actions(ACTION_PREFIX)
        self.state.add_action(PaletteAction("Billing: failed payments", lambda: self.focus_item("failed"),
                                            keywords=("stripe", "past due", "unpaid", "invoice", "dunning"),
                                            page=self.title, key=ACTION_PREFIX + "failed"))
        self.state.add_action(PaletteAction("Billing: customers", lambda: self.focus_item("customers"),
                                            keywords=("stripe", "customer", "group"), page=self.title,
                                            key=ACTION_PREFIX + "customers"))
        self.update_buttons()

    # -- navigation -------------------------------------------------------------------------------

    def focus_item(self, argument: object) -> None:
        """"failed", "customers", a group id (its customers) or a customer id."""
        self.state.navigate.emit(self.title, None)
        if argument in ("failed", "payments"):
            self.tabs.setCurrentIndex(1)
            return
        self.tabs.setCurrentIndex(0)
        if isinstance(argument, int | str) and argument != "customers":
            self.search.setText(str(argument))

    def focus_search(self) -> None:
        self.tabs.setCurrentIndex(0)
        self.search.setFocus()
        self.search.selectAll()

    # -- loading ----------------------------------------------------------------------------------

    def reload(self) -> None:
        self.load_customers()
        self.load_overview()

    def load_customers(self) -> None:
        if self.customers_job is not None:
            self.customers_job.cancel.cancel()
        self.generation += 1
        generation = self.generation
        self.customers_done = False
        self.customer_requests = 0
        self._flush_timer.stop()
        self._pending_pages = []
        self.customers_model.clear()
        self.customers_model.set_statuses(self.overview.customer_status if self.overview else {})
        self._customers_started = time.monotonic()
        self.customers_label.setText("loading…")

        def work(client: StripeClient, job: JobContext) -> int:
            count = 0
            for page in customer_pages(client, cancel=job.cancel, on_wait=job.report):
                count += len(page)
                rows = [customer_row(customer, 0) for customer in page]
                del page  # the Customer objects go now, on this thread, not after a trip through the queue
                job.report(CustomerPage(generation, rows, client.http.stats.requests))
            return client.http.stats.requests

        self.customers_job = self.run("Reading Stripe customers", work,
                                      lambda requests: self._customers_finished(generation, requests),
                                      key=f"customers-{generation}", timeout=600, patient=False,
                                      on_progress=self._customers_arrived)

    def _customers_arrived(self, page: object) -> None:
        """A page of 100 arrived. The first is shown at once; later ones are appended (a page at a time)
        in the next flush, at most every PAINT_INTERVAL_MS: each append repaints the table, and with
        pages coming every few milliseconds that painting would crowd out everything else."""
        if not isinstance(page, CustomerPage) or page.generation != self.generation:
            return
        self._pending_pages.append(page)
        if self.customers_model.total == 0:
            self._flush_pages()
        elif not self._flush_timer.isActive():
            self._flush_timer.start()

    def _flush_pages(self) -> None:
        self._flush_timer.stop()
        pages, self._pending_pages = self._pending_pages, []
        pages = [p for p in pages if p.generation == self.generation]
        if not pages:
            return
        self.show_content()
        for page in pages:
            self.customers_model.append_rows(page.rows)
        self.customer_requests = pages[-1].requests
        self._count_customers()

    def _customers_finished(self, generation: int, requests: int) -> None:
        if generation != self.generation:
            return
        self._flush_pages()
        self.customers_job = None
        self.customers_done = True
        self.customer_requests = requests
        self.customers_seconds = time.monotonic() - self._customers_started
        self._count_customers()
        self.customers_loaded.emit(self.customers_model.total)
        self._maybe_loaded()

    def _count_customers(self) -> None:
        model = self.customers_model
        shown = f"{model.rowCount():,} of " if model.rowCount() != model.total else ""
        if self.customers_done:
            self.customers_label.setText(f"{shown}{model.total:,} customers ({self.customer_requests} requests, "
                                         f"{self.customers_seconds:.1f} s)")
        else:
            self.customers_label.setText(f"{shown}{model.total:,} customers so far, loading…")

    def _filter_changed(self) -> None:
        self.customers_model.set_filter(self.search.text(), self.problems_box.isChecked())
        self._count_customers()

    def load_overview(self, *, quiet: bool = False) -> None:
        """``quiet``: leave the status line alone (it says how a payment retry went)."""
        def work(client: StripeClient, job: JobContext) -> BillingOverview:
            return billing_overview(client, failures_days=FAILURES_DAYS, cancel=job.cancel)

        if not quiet:
            self.set_status("Reading Stripe subscriptions, failed invoices and payments…")
        self.run("Reading Stripe subscriptions", work, lambda overview: self._overview_loaded(overview, quiet=quiet),
                 key="overview", timeout=300)

    def _overview_loaded(self, overview: BillingOverview, *, quiet: bool = False) -> None:
        self.overview = overview
        self.show_content()
        account = overview.account
        warning = STATE_COLOURS["WARNING"]
        mode = f"<span style='color:{warning}'>test mode</span>" if account.test_mode else "<b>live</b>"
        self.account_label.setText(f"<b>{account.name}</b> ({account.id}) · {mode}")
        mrr = overview.mrr
        others = [money(c, cur) for cur, c in sorted(mrr.by_currency.items()) if cur != mrr.currency]
        self.mrr_label.setText(f"MRR {money(mrr.amount, mrr.currency)}" + (f" + {', '.join(others)}" if others else ""))
        self.mrr_label.setToolTip(f"List-price MRR of {mrr.subscriptions} active and past_due subscriptions "
                                  "(a year is 12 months; discounts, taxes and metered usage left out).")
        counts = overview.status_counts
        order = ("active", "trialing", "past_due", "unpaid", "incomplete", "paused", "canceled")
        parts = []
        for status in (*order, *sorted(set(counts) - set(order))):
            if counts.get(status):
                colour = {"past_due": STATE_COLOURS["WARNING"], "unpaid": STATE_COLOURS["CRITICAL"]}.get(status)
                text = f"{counts[status]:,} {status}"
                parts.append(f"<span style='color:{colour}'><b>{text}</b></span>" if colour else text)
        at_risk = ", ".join(money(c, cur) for cur, c in sorted(overview.amount_at_risk.items()))
        self.states_label.setText("Subscriptions: " + " · ".join(parts) + (f"<br>At risk: <b>{at_risk}</b> "
                                                                         "on open invoices" if at_risk else ""))
        self.customers_model.set_statuses(overview.customer_status)
        self._count_customers()
        self.delinquent_model.set_entries(overview.delinquent)
        past_due = sum(1 for d in overview.delinquent if d.subscription.status == "past_due")
        unpaid = len(overview.delinquent) - past_due
        self.delinquent_label.setText(f"{past_due} past due and {unpaid} unpaid subscriptions, "
                                      f"{self.delinquent_model.rowCount()} failed invoice row(s)")
        self.failures_model.set_failures(overview.failures, overview.subscription_groups)
        self.failures_label.setText(f"{len(overview.failures)} failed payments (invoice.payment_failed) in the last "
                                    f"{FAILURES_DAYS} days")
        self.tabs.setTabText(1, f"Failed payments ({len(overview.delinquent)})")
        if not quiet:
            self.set_status(f"Stripe: {sum(counts.values()):,} subscriptions read in {overview.requests} requests.")
        self.update_buttons()
        self._maybe_loaded()

    def _maybe_loaded(self) -> None:
        if self.customers_done and self.overview is not None:
            self.loaded_once = True
            self.loaded.emit()

    # -- selections -------------------------------------------------------------------------------

    def selected_customer(self) -> Customer | None:
        return selected(self.customers_table, self.customers_model.customer_at)

    def selected_delinquent(self) -> DelinquentRow | None:
        found = selected(self.delinquent_table, self.delinquent_model.row_at)
        return found if isinstance(found, DelinquentRow) else None

    def select_invoice(self, invoice_id: str) -> bool:
        return select_row(self.delinquent_table, self.delinquent_model.row_of_invoice(invoice_id))

    def update_buttons(self) -> None:
        customer = self.selected_customer()
        has_dashboard = self.overview is not None and self.state.context.inventory.stripe is not None
        self.open_customer_button.setEnabled(customer is not None and has_dashboard)
        self.show_group_button.setEnabled(customer is not None and customer.group_id is not None)
        row = self.selected_delinquent()
        paying = self.busy("change:pay")
        self.retry_button.setEnabled(row is not None and row.invoice is not None and not self.state.read_only
                                     and not paying and not self.needs_set_up)
        self.retry_button.setToolTip("Read-only mode is on." if self.state.read_only else
                                     "Charge the open invoice now with the customer's default payment method.")
        self.open_invoice_button.setEnabled(row is not None and row.invoice is not None and has_dashboard)
        self.open_delinquent_customer_button.setEnabled(row is not None and has_dashboard)
        self.reload_button.setEnabled(not self.busy("overview"))

    # -- opening things ---------------------------------------------------------------------------

    def dashboard_url(self, object_id: str) -> QUrl | None:
        spec = self.state.context.inventory.stripe
        if spec is None or self.overview is None:
            return None
        return QUrl(stripe_dashboard_url(spec, object_id, test_mode=self.overview.account.test_mode))

    def _open(self, object_id: str) -> None:
        url = self.dashboard_url(object_id)
        if url is not None:
            QDesktopServices.openUrl(url)
            self.set_status(f"Opened {url.toString()}")

    def open_selected_customer(self) -> None:
        customer = self.selected_customer()
        if customer is not None:
            self._open(customer.id)

    def open_selected_invoice(self) -> None:
        row = self.selected_delinquent()
        if row is not None and row.invoice is not None:
            self._open(row.invoice.id)

    def open_selected_delinquent_customer(self) -> None:
        row = self.selected_delinquent()
        if row is not None:
            self._open(row.entry.subscription.customer_id)

    def show_selected_group(self) -> None:
        customer = self.selected_customer()
        if customer is not None and customer.group_id is not None:
            self.state.navigate.emit("Groups", customer.group_id)

    def _customer_double_clicked(self, index: Any) -> None:
        if index.column() == 3:
            self.show_selected_group()
        else:
            self.open_selected_customer()

    # -- retrying a payment -----------------------------------------------------------------------

    def retry_selected_payment(self) -> None:
        row = self.selected_delinquent()
        if row is None or row.invoice is None:
            return
        self.retry_payment(row.invoice, row.group_id)

    def retry_payment(self, invoice: Invoice, group_id: int | None = None) -> None:
        what = f"retrying the payment of invoice {invoice.id}"
        if not self.state.allow_change(what):
            return
        group = f" (group {group_id})" if group_id is not None else ""
        text = (f"Charge {money(invoice.amount_remaining, invoice.currency)} for invoice {invoice.id} of customer "
                f"{invoice.customer_id}{group} now?\n\nStripe charges the customer's default payment method. This "
                f"is attempt {invoice.attempt_count + 1}; a decline counts as another failed attempt.")
        self.ask("Retry the payment?", text, f"Charge {money(invoice.amount_remaining, invoice.currency)}",
                 lambda: self._pay(invoice, group_id))

    def _pay(self, invoice: Invoice, group_id: int | None) -> None:
        if not self.state.allow_change(f"retrying the payment of invoice {invoice.id}"):
            return
        # One key for this click: the client resends it after a lost answer, and so does every wait
        # out of a 429, so Stripe charges once however many tries it takes.
        idempotency_key = new_idempotency_key()
        self.last_idempotency_key = idempotency_key
        store = self.state.context.store
        target = f"stripe/{invoice.customer_id}/{invoice.id}"
        amount = money(invoice.amount_remaining, invoice.currency)
        group = f", group {group_id}" if group_id is not None else ""

        def work(client: StripeClient, job: JobContext) -> Invoice:
            def pay() -> tuple[Invoice, str]:
                paid = pay_invoice(client, invoice.id, idempotency_key, cancel=job.cancel, on_wait=job.report)
                return paid, (f"{paid.status}: {money(paid.amount_paid, paid.currency)} paid{group}, "
                              f"attempt {paid.attempt_count}")

            return audited(store, "stripe.invoice.pay", target, f"{amount}{group}", pay)

        def done(paid: Invoice) -> None:
            self.set_status(f"Invoice {paid.id} is {paid.status}: {money(paid.amount_paid, paid.currency)} paid.",
                            "OK")
            self.state.message.emit(f"Stripe: invoice {paid.id} {paid.status}")
            self.load_overview(quiet=True)

        def failed(error: PanelError) -> None:
            if isinstance(error, ApiPaymentError):
                self.set_status(f"Invoice {invoice.id}: {error}", "CRITICAL")
                self.load_overview(quiet=True)
            self.state.notify.emit("WARNING", f"Retrying the payment of {invoice.id} failed", str(error))

        self.set_status(f"Charging {amount} for invoice {invoice.id}…")
        self.run(f"Retrying the payment of {invoice.id}", work, done, key="change:pay", patient=False,
                 on_error=failed, timeout=120)
