"""Mail (Mailgun): the domains and the DNS records each must publish, accepted/delivered/failed over
time, the failures with their reasons and severity, the suppression lists (bounces, complaints,
unsubscribes) with removal, and a test message. The region (US or EU) is the config's base_url.

Removing a suppression and sending a message ask ``state.allow_change`` first, are confirmed, and
are written to the audit log (``mailgun.*`` actions on ``mailgun/DOMAIN``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from services.mailgun import (
    SUPPRESSION_KINDS,
    MailDomain,
    MailEvent,
    MailgunClient,
    SendResult,
    StatsBucket,
    Suppression,
)
from services.vendors import domain_region, mail_domains, region_of
from views.charts import Series, TimeSeriesChart
from views.dialogs.api_key import VendorPage
from views.models.cloudflare import SortingProxy
from views.models.mail import DomainRecordsModel, DomainsModel, MailFailuresModel, SuppressionsModel
from views.pages.vendor_widgets import button_row, column, push_button, row, select_row, selected
from views.state import PaletteAction, PanelState
from views.style import STATE_COLOURS
from views.tables import row_table
from views.workers import JobContext

ACTION_PREFIX = "mail/"
PERIODS = (("Last 24 hours, per hour", "24h"), ("Last 7 days, per day", "7d"))
FAILURE_WINDOWS = (("Permanent failures, last 24 hours", 24, True), ("All failures, last 24 hours", 24, False),
                   ("Permanent failures, last 7 days", 168, True))
KIND_LABELS = {"bounces": "Bounces", "complaints": "Complaints", "unsubscribes": "Unsubscribes"}


@dataclass(frozen=True)
class StatsLoad:
    period: str
    buckets: list[StatsBucket]


class SendTestDialog(QDialog):
    """To whom, which subject, and whether Mailgun should only pretend (o:testmode)."""

    def __init__(self, domain: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Send a test message through {domain}")
        self.setModal(True)
        self.setMinimumWidth(440)
        self.to_edit = QLineEdit()
        self.to_edit.setPlaceholderText("you@example.com")
        self.subject_edit = QLineEdit("Operator panel test")
        self.test_mode_box = QCheckBox("Test mode (o:testmode): Mailgun checks and accepts it, but does not deliver it")
        self.test_mode_box.setChecked(True)
        self.error_label = QLabel()
        self.error_label.setStyleSheet(f"color: {STATE_COLOURS['CRITICAL']};")
        form = QFormLayout()
        form.addRow("To", self.to_edit)
        form.addRow("Subject", self.subject_edit)
        form.addRow("", self.test_mode_box)
        buttons = QDialogButtonBox()
        self.ok_button = buttons.addButton("Review and send…", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._check)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)

    def _check(self) -> None:
        to = self.to_edit.text().strip()
        if "@" not in to or " " in to or to.startswith("@") or to.endswith("@"):
            self.error_label.setText("Give one recipient address, like you@example.com.")
            return
        self.accept()


class MailPage(VendorPage):
    title = "Mail"
    vendor = "mailgun"
    change_timeout = 60.0

    def __init__(self, state: PanelState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.domains: list[MailDomain] = []
        self.suppressions: dict[str, list[Suppression]] = {}
        self.test_dialog: SendTestDialog | None = None
        self.last_send: SendResult | None = None

        self.domain_label = QLabel("Mailgun")
        self.domain_label.setTextFormat(Qt.TextFormat.RichText)
        self.send_button = push_button("Send test message…", self.open_test_message)
        top = row(self.domain_label, self.send_button, self.reload_button, grow=self.domain_label)

        # delivery
        self.period_box = QComboBox()
        for label, value in PERIODS:
            self.period_box.addItem(label, value)
        self.period_box.currentIndexChanged.connect(lambda _: self.load_stats())
        self.delivery_label = QLabel()
        self.chart = TimeSeriesChart("Accepted, delivered and failed")
        delivery_tab = column(row(self.period_box, self.delivery_label, grow=self.delivery_label), self.chart,
                              grow=self.chart)

        # failures
        self.failures_model = MailFailuresModel(self)
        self.failures_proxy = SortingProxy(self)
        self.failures_proxy.setSourceModel(self.failures_model)
        self.failures_table = row_table(self.failures_proxy, (150, 230, 80, 110, 50, 330, 80),
                                        sort_by=(0, Qt.SortOrder.DescendingOrder))
        self.failure_window_box = QComboBox()
        for label, _, _ in FAILURE_WINDOWS:
            self.failure_window_box.addItem(label)
        self.failure_window_box.currentIndexChanged.connect(lambda _: self.load_failures())
        self.failures_search = QLineEdit()
        self.failures_search.setPlaceholderText("Filter: recipient, reason, message, group…")
        self.failures_search.setClearButtonEnabled(True)
        self.failures_search.textChanged.connect(self.failures_proxy.set_text)
        self.failures_label = QLabel()
        self.failures_label.setWordWrap(True)
        failures_tab = column(row(self.failure_window_box, self.failures_search, grow=self.failures_search),
                              self.failures_label, self.failures_table, grow=self.failures_table)

        # suppressions
        self.suppressions_model = SuppressionsModel(self)
        self.suppressions_proxy = SortingProxy(self)
        self.suppressions_proxy.setSourceModel(self.suppressions_model)
        self.suppressions_table = row_table(self.suppressions_proxy, (280, 130),
                                            sort_by=(1, Qt.SortOrder.DescendingOrder))
        self.suppressions_table.selectionModel().selectionChanged.connect(lambda *_: self.update_buttons())
        self.kind_box = QComboBox()
        for kind in SUPPRESSION_KINDS:
            self.kind_box.addItem(KIND_LABELS[kind], kind)
        self.kind_box.currentIndexChanged.connect(lambda _: self._show_suppressions())
        self.suppressions_search = QLineEdit()
        self.suppressions_search.setPlaceholderText("Filter addresses… (Ctrl+F)")
        self.suppressions_search.setClearButtonEnabled(True)
        self.suppressions_search.textChanged.connect(self._suppression_filter_changed)
        self.suppressions_label = QLabel()
        self.remove_button = push_button("Remove from the list…", self.remove_selected_suppression,
                                         tip="Mailgun tries to deliver to the address again.")
        suppressions_tab = column(
            row(self.kind_box, self.suppressions_search, self.suppressions_label, grow=self.suppressions_search),
            self.suppressions_table, button_row(self.remove_button), grow=self.suppressions_table)

        # domains
        self.domains_model = DomainsModel(self)
        self.domains_proxy = SortingProxy(self)
        self.domains_proxy.setSourceModel(self.domains_model)
        # Not sorted: the configured domain comes first.
        self.domains_table = row_table(self.domains_proxy, (200, 100, 130, 80))
        self.domains_table.selectionModel().selectionChanged.connect(lambda *_: self._show_records())
        self.records_model = DomainRecordsModel(self)
        # Not sorted: as Mailgun lists them.
        self.records_table = row_table(self.records_model, (90, 60, 240, 420))
        self.records_label = QLabel("DNS records Mailgun checks for the selected domain")
        self.verify_button = push_button("Check DNS again", self.verify_selected_domain,
                                         tip="Ask Mailgun to look up the domain's DNS records now.")
        records_box = column(row(self.records_label, self.verify_button, grow=self.records_label),
                             self.records_table, grow=self.records_table, margins=False)
        domains_tab = QSplitter(Qt.Orientation.Vertical)
        domains_tab.addWidget(self.domains_table)
        domains_tab.addWidget(records_box)

        self.tabs = QTabWidget()
        self.tabs.addTab(delivery_tab, "Delivery")
        self.tabs.addTab(failures_tab, "Failures")
        self.tabs.addTab(suppressions_tab, "Suppressions")
        self.tabs.addTab(domains_tab, "Domains and DNS")
        column(top, self.tabs, grow=self.tabs, into=self.content)

        self.state.remove_actions(ACTION_PREFIX)
        self.state.add_action(PaletteAction("Mail: failures", lambda: self.focus_item("failures"),
                                            keywords=("mailgun", "bounce", "email", "delivery"), page=self.title,
                                            key=ACTION_PREFIX + "failures"))
        self.state.add_action(PaletteAction("Mail: suppressions", lambda: self.focus_item("suppressions"),
                                            keywords=("mailgun", "bounces", "complaints", "unsubscribes"),
                                            page=self.title, key=ACTION_PREFIX + "suppressions"))
        self.state.add_action(PaletteAction("Send a test email", self.open_test_message, changes_something=True,
                                            keywords=("mailgun", "mail", "test", "send"), page=self.title,
                                            key=ACTION_PREFIX + "send-test"))
        self.update_buttons()

    # -- navigation -------------------------------------------------------------------------------

    @property
    def domain(self) -> str:
        spec = self.state.context.inventory.mailgun
        return spec.domain if spec else ""

    @property
    def target(self) -> str:
        return f"mailgun/{self.domain}"

    def focus_item(self, argument: object) -> None:
        """"delivery", "failures", "suppressions", "domains", or an address (its suppressions)."""
        self.state.navigate.emit(self.title, None)
        tabs = {"delivery": 0, "failures": 1, "suppressions": 2, "domains": 3}
        if isinstance(argument, str) and argument in tabs:
            self.tabs.setCurrentIndex(tabs[argument])
        elif isinstance(argument, str) and "@" in argument:
            self.tabs.setCurrentIndex(2)
            self.suppressions_search.setText(argument)

    def focus_search(self) -> None:
        if self.tabs.currentIndex() == 1:
            self.failures_search.setFocus()
        else:
            self.tabs.setCurrentIndex(2)
            self.suppressions_search.setFocus()

    # -- loading ----------------------------------------------------------------------------------

    def reload(self) -> None:
        self.load_domains()
        self.load_stats()
        self.load_failures()
        self.load_suppressions()

    def load_domains(self) -> None:
        def work(client: MailgunClient, job: JobContext) -> list[MailDomain]:
            return mail_domains(client, cancel=job.cancel)

        self.set_status(f"Reading the Mailgun domains from {self._region()}…")
        self.run("Reading Mailgun domains", work, self._domains_loaded, key="domains", timeout=60)

    def _region(self) -> str:
        spec = self.state.context.inventory.mailgun
        if spec is None:
            return "no region"
        region = region_of(spec)
        return f"the {region} API" if region != "custom" else f"the API at {spec.base_url}"

    def _domains_loaded(self, domains: list[MailDomain]) -> None:
        self.domains = domains
        self.show_content()
        chosen = self._selected_domain()
        self.domains_model.set_domains(domains)
        select_row(self.domains_table, self.domains_model.row_of(chosen.name if chosen else self.domain))
        ours = next((d for d in domains if d.name == self.domain), None)
        if ours is None:
            state_text = (f"<span style='color:{STATE_COLOURS['CRITICAL']}'>not found in this region</span> — if it "
                          "lives in the other region, change [mailgun] base_url")
        else:
            colour = {"active": STATE_COLOURS["OK"], "unverified": STATE_COLOURS["WARNING"]}.get(
                ours.state, STATE_COLOURS["CRITICAL"])
            bad = [r for r in ours.sending_records + ours.receiving_records if r.valid != "valid"]
            records = f", {len(bad)} DNS record(s) not valid" if bad else ", DNS records valid"
            region = domain_region(ours)
            state_text = (f"{region} domain · " if region else "") + \
                f"<span style='color:{colour}'>{ours.state}</span>{records}"
        self.domain_label.setText(f"<b>{self.domain}</b> · {state_text} · via {self._region()}")
        others = [d for d in domains if d.state != "active"]
        self.tabs.setTabText(3, "Domains and DNS" + (f" ({len(others)} not active)" if others else ""))
        self.set_status(f"{len(domains)} Mailgun domain(s) through {self._region()}.")
        self.update_buttons()
        self._maybe_loaded()

    def _selected_domain(self) -> MailDomain | None:
        return selected(self.domains_table, self.domains_model.domain_at)

    def _show_records(self) -> None:
        domain = self._selected_domain()
        self.records_model.set_domain(domain)
        if domain is not None:
            self.records_label.setText(f"DNS records Mailgun checks for {domain.name} ({domain.state})")
        self.update_buttons()

    def load_stats(self) -> None:
        period = "7d" if self.period_box.currentData() == "7d" else "24h"
        resolution: Literal["hour", "day"] = "day" if period == "7d" else "hour"

        def work(client: MailgunClient, job: JobContext) -> StatsLoad:
            return StatsLoad(period, client.stats(duration=period, resolution=resolution, cancel=job.cancel))

        self.run(f"Reading Mailgun stats ({period})", work, self._stats_loaded, key=f"stats-{period}", timeout=60)

    def _stats_loaded(self, loaded: StatsLoad) -> None:
        if self.period_box.currentData() != loaded.period:
            return
        buckets = loaded.buckets
        self.chart.set_series([
            Series("Accepted", [(b.start, b.accepted) for b in buckets], "blue"),
            Series("Delivered", [(b.start, b.delivered) for b in buckets], "green"),
            Series("Failed for good", [(b.start, b.failed_permanent) for b in buckets], "red", right_axis=True),
            Series("Failed, retrying", [(b.start, b.failed_temporary) for b in buckets], "amber", right_axis=True),
        ], resolution="day" if loaded.period == "7d" else "hour",
            title=f"{self.domain}: accepted, delivered and failed")
        accepted = sum(b.accepted for b in buckets)
        delivered = sum(b.delivered for b in buckets)
        permanent = sum(b.failed_permanent for b in buckets)
        finished = delivered + permanent
        rate = permanent / finished if finished else 0.0
        self.delivery_label.setText(f"{accepted:,} accepted, {delivered:,} delivered, {permanent:,} failed for good "
                                    f"({rate:.1%} of finished deliveries)")
        self.delivery_label.setStyleSheet(f"color: {STATE_COLOURS['WARNING']};" if rate >= 0.05 else "")
        self._maybe_loaded()

    def load_failures(self) -> None:
        _, hours, permanent = FAILURE_WINDOWS[max(0, self.failure_window_box.currentIndex())]

        def work(client: MailgunClient, job: JobContext) -> list[MailEvent]:
            return client.failures(hours=hours, permanent_only=permanent, cancel=job.cancel)

        self.run("Reading Mailgun failures", work, self._failures_loaded, key=f"failures-{hours}-{permanent}",
                 timeout=120)

    def _failures_loaded(self, events: list[MailEvent]) -> None:
        self.failures_model.set_events(events)
        reasons = Counter(e.reason or "unknown" for e in events)
        severities = Counter(e.severity or "unknown" for e in events)
        by_reason = ", ".join(f"{count} {reason}" for reason, count in reasons.most_common())
        by_severity = ", ".join(f"{count} {severity}" for severity, count in severities.most_common())
        self.failures_label.setText(f"{len(events)} failures ({by_severity}): {by_reason}" if events else
                                    "No failed delivery in this window.")
        self.tabs.setTabText(1, f"Failures ({len(events)})")

    def load_suppressions(self) -> None:
        def work(client: MailgunClient, job: JobContext) -> dict[str, list[Suppression]]:
            return {kind: client.suppressions(kind, cancel=job.cancel) for kind in SUPPRESSION_KINDS}

        self.run("Reading Mailgun suppressions", work, self._suppressions_loaded, key="suppressions", timeout=120)

    def _suppressions_loaded(self, lists: dict[str, list[Suppression]]) -> None:
        self.suppressions = lists
        self._update_kind_labels()
        self._show_suppressions()

    def _update_kind_labels(self) -> None:
        for index, kind in enumerate(SUPPRESSION_KINDS):
            self.kind_box.setItemText(index, f"{KIND_LABELS[kind]} ({len(self.suppressions.get(kind, []))})")

    @property
    def kind(self) -> str:
        return str(self.kind_box.currentData() or "bounces")

    def _show_suppressions(self) -> None:
        self.suppressions_model.set_suppressions(self.suppressions.get(self.kind, []))
        self._count_suppressions()
        self.update_buttons()

    def _suppression_filter_changed(self, text: str) -> None:
        self.suppressions_proxy.set_text(text)
        self._count_suppressions()

    def _count_suppressions(self) -> None:
        shown, total = self.suppressions_proxy.rowCount(), self.suppressions_model.rowCount()
        self.suppressions_label.setText(f"{shown} of {total}" if shown != total else f"{total} addresses")

    def _maybe_loaded(self) -> None:
        if self.domains and self.chart.series_data:
            self.loaded_once = True
            self.loaded.emit()

    # -- buttons ----------------------------------------------------------------------------------

    def selected_suppression(self) -> Suppression | None:
        return selected(self.suppressions_table, self.suppressions_model.suppression_at)

    def select_address(self, address: str) -> bool:
        return select_row(self.suppressions_table, self.suppressions_model.row_of(address))

    def update_buttons(self) -> None:
        read_only = self.state.read_only
        ready = not self.needs_set_up and bool(self.domain)
        self.remove_button.setEnabled(ready and not read_only and self.selected_suppression() is not None
                                      and not self.busy("change:mailgun.suppression.remove"))
        self.send_button.setEnabled(ready and not read_only and not self.busy("change:mailgun.send_test"))
        self.verify_button.setEnabled(ready and not read_only and self._selected_domain() is not None
                                      and not self.busy("change:mailgun.domain.verify"))
        for button in (self.remove_button, self.send_button, self.verify_button):
            button.setToolTip("Read-only mode is on." if read_only else "")

    # -- changing ---------------------------------------------------------------------------------

    def remove_selected_suppression(self) -> None:
        suppression = self.selected_suppression()
        if suppression is not None:
            self.remove_suppression(suppression)

    def remove_suppression(self, suppression: Suppression) -> None:
        kind, address = suppression.kind, suppression.address
        what = f"removing {address} from the {kind} list"
        if not self.state.allow_change(what):
            return
        since = f" since {suppression.created_at:%Y-%m-%d}" if suppression.created_at else ""
        detail = f" ({suppression.code} {suppression.error})" if suppression.error else ""
        warning = {"bounces": "Mailgun will try to deliver to it again; if the mailbox still does not exist, it "
                              "bounces again and hurts the domain's reputation.",
                   "complaints": "This person marked a message as spam. Mailgun will send to them again.",
                   "unsubscribes": "This person unsubscribed. Only remove it if they asked to receive mail again."}
        text = (f"Remove {address} from the {kind} list of {self.domain}?\n\nOn the list{since}{detail}.\n\n"
                f"{warning.get(kind, '')}")

        def work(client: MailgunClient, job: JobContext) -> tuple[Suppression, str]:
            client.remove_suppression(kind, address, cancel=job.cancel)
            return suppression, f"{kind}: {address}"

        def done(removed: Suppression) -> None:
            items = self.suppressions.get(removed.kind, [])
            self.suppressions[removed.kind] = [s for s in items if s.address != removed.address]
            if removed.kind == self.kind:
                self.suppressions_model.remove(removed.address)
            self._update_kind_labels()
            self._count_suppressions()
            self.set_status(f"Removed {removed.address} from the {removed.kind} list.", "OK")
            self.state.message.emit(f"Mailgun: removed {removed.address} from {removed.kind}")

        self.ask("Remove from the suppression list?", text, "Remove",
                 lambda: self.change(f"Removing {address} from {kind}", "mailgun.suppression.remove", work, done,
                                     what=what))

    def open_test_message(self) -> None:
        if not self.state.allow_change("sending a test message"):
            return
        self.state.navigate.emit(self.title, None)
        dialog = SendTestDialog(self.domain, self)
        dialog.accepted.connect(lambda: self.send_test_message(dialog.to_edit.text().strip(),
                                                               dialog.subject_edit.text().strip() or
                                                               "Operator panel test", dialog.test_mode_box.isChecked()))
        self.test_dialog = dialog
        dialog.open()

    def send_test_message(self, to: str, subject: str, test_mode: bool) -> None:
        what = f"sending a test message to {to}"
        if not self.state.allow_change(what):
            return
        mode = "in test mode (accepted, not delivered)" if test_mode else "FOR REAL (it will be delivered)"
        text = f"Send \"{subject}\" from {self.domain} to {to} {mode}?"

        def work(client: MailgunClient, job: JobContext) -> tuple[SendResult, str]:
            sent = client.send_test_message(to, subject=subject, test_mode=test_mode, cancel=job.cancel)
            return sent, f"to {to}, {'test mode' if test_mode else 'delivered'}, id {sent.id}"

        def done(sent: SendResult) -> None:
            self.last_send = sent
            self.set_status(f"Mailgun: {sent.message} (id {sent.id}{', test mode' if sent.test_mode else ''}).", "OK")
            self.state.message.emit(f"Mailgun accepted the test message to {to}")
            self.load_stats()

        self.ask("Send a test message?", text, "Send",
                 lambda: self.change("Sending a test message", "mailgun.send_test", work, done, what=what),
                 destructive=not test_mode)

    def verify_selected_domain(self) -> None:
        domain = self._selected_domain()
        if domain is None:
            return
        name = domain.name

        def work(client: MailgunClient, job: JobContext) -> tuple[MailDomain, str]:
            checked = client.verify_domain(name, cancel=job.cancel)
            return checked, f"{name}: {checked.state}"

        def done(checked: MailDomain) -> None:
            self.set_status(f"Mailgun checked the DNS of {checked.name}: {checked.state}.",
                            "OK" if checked.state == "active" else "WARNING")
            self.load_domains()

        self.change(f"Checking the DNS of {name}", "mailgun.domain.verify", work, done,
                    what=f"asking Mailgun to check the DNS of {name}")
