"""Cloudflare: the zone's status and plan, its DNS records (with the ones that point outside the
inventory flagged), cache purges, the security level with a one-click "I'm Under Attack" for
incidents, development mode, traffic and threats over 24 h or 7 days, and recent firewall events.

Every change asks ``state.allow_change`` first, shows what will change, and is written to the
audit log (``cloudflare.*`` actions on ``cloudflare/ZONE``) whether it worked or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from services.cloudflare import (
    SECURITY_LEVELS,
    CloudflareClient,
    DnsRecord,
    DnsRecordInput,
    FirewallEvent,
    TrafficSeries,
)
from services.vendors import (
    CALM_LEVEL,
    LEVEL_BEFORE_ATTACK_KEY,
    RecordCheck,
    ZoneState,
    describe_record,
    full_record_name,
    inventory_addresses,
    record_changes,
    relative_name,
    switch_under_attack,
    ttl_text,
    zone_state,
)
from views.charts import Series, TimeSeriesChart
from views.dialogs.api_key import VendorPage
from views.dialogs.dns_record import DnsRecordDialog
from views.models.cloudflare import DnsFilter, DnsRecordsModel, FirewallEventsModel, SortingProxy
from views.pages.vendor_widgets import button_row, column, push_button, row, select_row, selected
from views.state import PaletteAction, PanelState
from views.style import STATE_COLOURS
from views.tables import row_table
from views.workers import JobContext

PERIODS = (("Last 24 hours", "24h"), ("Last 7 days", "7d"))
PERIOD_WORDS = {"24h": "last 24 hours", "7d": "last 7 days"}
ACTION_PREFIX = "cloudflare/"
DNS_WIDTHS = (60, 190, 280, 80, 70, 130)
FIREWALL_WIDTHS = (150, 130, 120, 120, 110, 70, 220)


@dataclass(frozen=True)
class ZoneLoad:
    zone: ZoneState
    level_before_attack: str


@dataclass(frozen=True)
class DnsLoad:
    records: list[DnsRecord]
    addresses: dict[str, tuple[str, ...]]


class PurgeUrlsDialog(QDialog):
    """A list of URLs to purge, one a line."""

    def __init__(self, zone: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Purge URLs from {zone}'s cache")
        self.setModal(True)
        self.edit = QPlainTextEdit()
        self.edit.setPlaceholderText(f"https://{zone}/static/app.css\nhttps://www.{zone}/\n…")
        buttons = QDialogButtonBox()
        self.ok_button = buttons.addButton("Review…", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("One URL a line (Cloudflare takes 30 per request; more are sent in batches):"))
        layout.addWidget(self.edit)
        layout.addWidget(buttons)

    def urls(self) -> list[str]:
        return [line.strip() for line in self.edit.toPlainText().splitlines() if line.strip()]


class CloudflarePage(VendorPage):
    title = "Cloudflare"
    vendor = "cloudflare"

    def __init__(self, state: PanelState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.zone: ZoneState | None = None
        self._awaiting: set[str] = set()  # this reload's answers still to come: "zone", "dns"
        self.level_before_attack = CALM_LEVEL
        self.traffic: dict[str, TrafficSeries] = {}
        self.dns_dialog: DnsRecordDialog | None = None
        self.purge_dialog: PurgeUrlsDialog | None = None

        # zone and security
        self.zone_label = QLabel("Cloudflare")
        self.zone_label.setTextFormat(Qt.TextFormat.RichText)
        top = row(self.zone_label, self.reload_button, grow=self.zone_label)

        self.level_label = QLabel("Security level: …")
        self.level_box = QComboBox()
        self.level_box.addItems(list(SECURITY_LEVELS))
        self.level_button = push_button("Set level…", lambda: self.set_security_level(self.level_box.currentText()))
        self.attack_button = push_button(
            "Under Attack: turn on…", lambda: self.set_under_attack(not (self.zone and self.zone.under_attack)),
            tip="\"I'm Under Attack\" mode: every visitor gets a challenge before the site. "
                "For incidents; turn it off when the attack is over.")
        self.dev_button = push_button(
            "Development mode…",
            lambda: self.set_development_mode(not (self.zone and self.zone.development_mode.value == "on")),
            tip="Development mode bypasses Cloudflare's cache for 3 hours, then turns itself off.")
        self.purge_button = QPushButton("Purge cache")
        purge_menu = QMenu(self.purge_button)
        purge_menu.addAction("Everything…", self.purge_everything)
        purge_menu.addAction("Some URLs…", self.open_purge_urls)
        self.purge_button.setMenu(purge_menu)
        security = QHBoxLayout()
        security.addWidget(self.level_label)
        security.addWidget(self.level_box)
        security.addWidget(self.level_button)
        security.addSpacing(12)
        security.addWidget(self.attack_button)
        security.addWidget(self.dev_button)
        security.addStretch(1)
        security.addWidget(self.purge_button)

        # DNS
        self.dns_model = DnsRecordsModel(self)
        self.dns_filter = DnsFilter(self)
        self.dns_filter.setSourceModel(self.dns_model)
        self.dns_table = row_table(self.dns_filter, DNS_WIDTHS, sort_by=(1, Qt.SortOrder.AscendingOrder))
        self.dns_table.doubleClicked.connect(lambda _: self.edit_record())
        self.dns_table.selectionModel().selectionChanged.connect(lambda *_: self.update_buttons())
        self.dns_search = QLineEdit()
        self.dns_search.setPlaceholderText("Filter records: name, content, comment… (Ctrl+F)")
        self.dns_search.setClearButtonEnabled(True)
        self.dns_search.textChanged.connect(self._dns_filter_changed)
        self.dns_type_box = QComboBox()
        self.dns_type_box.addItem("All types", "")
        for record_type in ("A", "AAAA", "CNAME", "MX", "TXT", "CAA", "NS", "SRV"):
            self.dns_type_box.addItem(record_type, record_type)
        self.dns_type_box.currentIndexChanged.connect(self._dns_type_changed)
        self.stray_box = QCheckBox("Only outside the inventory")
        self.stray_box.setToolTip("A and AAAA records whose address is not a server of the inventory.")
        self.stray_box.toggled.connect(self._stray_toggled)
        self.dns_count_label = QLabel()
        dns_filters = row(self.dns_search, self.dns_type_box, self.stray_box, self.dns_count_label,
                          grow=self.dns_search)
        self.add_button = push_button("Add record…", self.add_record)
        self.edit_button = push_button("Edit…", self.edit_record)
        self.delete_button = push_button("Delete…", self.delete_record)
        dns_tab = column(dns_filters, self.dns_table, button_row(self.add_button, self.edit_button, self.delete_button),
                         grow=self.dns_table)

        # traffic
        self.period_box = QComboBox()
        for label, value in PERIODS:
            self.period_box.addItem(label, value)
        self.period_box.currentIndexChanged.connect(lambda _: self.load_traffic())
        self.traffic_label = QLabel()
        self.chart = TimeSeriesChart("Requests and threats")
        traffic_tab = column(row(self.period_box, self.traffic_label, grow=self.traffic_label), self.chart,
                             grow=self.chart)

        # firewall
        self.firewall_model = FirewallEventsModel(self)
        self.firewall_proxy = SortingProxy(self)
        self.firewall_proxy.setSourceModel(self.firewall_model)
        self.firewall_table = row_table(self.firewall_proxy, FIREWALL_WIDTHS,
                                        sort_by=(0, Qt.SortOrder.DescendingOrder))
        self.firewall_label = QLabel()
        firewall_tab = column(self.firewall_label, self.firewall_table, grow=self.firewall_table)

        self.tabs = QTabWidget()
        self.tabs.addTab(dns_tab, "DNS records")
        self.tabs.addTab(traffic_tab, "Traffic and threats")
        self.tabs.addTab(firewall_tab, "Firewall events")
        column(top, security, self.tabs, grow=self.tabs, into=self.content)

        QShortcut(QKeySequence(Qt.Key.Key_Delete), self.dns_table, self.delete_record,
                  context=Qt.ShortcutContext.WidgetShortcut)
        self._register_actions()
        self.update_buttons()

    # -- palette ----------------------------------------------------------------------------------

    def _register_actions(self) -> None:
        words = ("cloudflare", "ddos", "attack", "security", "incident", "challenge")
        self.state.remove_actions(ACTION_PREFIX)
        self.state.add_action(PaletteAction("Under attack on", lambda: self.set_under_attack(True),
                                            changes_something=True, keywords=words, page=self.title,
                                            key=ACTION_PREFIX + "under-attack-on"))
        self.state.add_action(PaletteAction("Under attack off", lambda: self.set_under_attack(False),
                                            changes_something=True, keywords=words, page=self.title,
                                            key=ACTION_PREFIX + "under-attack-off"))
        self.state.add_action(PaletteAction("Purge Cloudflare cache", self.purge_everything, changes_something=True,
                                            keywords=("cloudflare", "cache", "purge", "cdn"), page=self.title,
                                            key=ACTION_PREFIX + "purge"))
        self.state.add_action(PaletteAction("Cloudflare: go to DNS", lambda: self.focus_item("dns"),
                                            keywords=("cloudflare", "dns", "records", "domain"), page=self.title,
                                            key=ACTION_PREFIX + "dns"))

    def focus_item(self, argument: object) -> None:
        """"dns", "traffic", "firewall", a server's name (its records) or a record name."""
        self.state.navigate.emit(self.title, None)
        if argument in ("traffic", "attack"):
            self.tabs.setCurrentIndex(1)
            return
        if argument == "firewall":
            self.tabs.setCurrentIndex(2)
            return
        self.tabs.setCurrentIndex(0)
        if isinstance(argument, str) and argument != "dns":
            spec = self.state.context.inventory.servers.get(argument)
            self.dns_search.setText(spec.host if spec else argument)
            self.dns_table.setFocus()

    def focus_search(self) -> None:
        self.tabs.setCurrentIndex(0)
        self.dns_search.setFocus()
        self.dns_search.selectAll()

    # -- state of the buttons ---------------------------------------------------------------------

    @property
    def zone_name(self) -> str:
        spec = self.state.context.inventory.cloudflare
        return spec.zone if spec else ""

    @property
    def target(self) -> str:
        return f"cloudflare/{self.zone_name}"

    def update_buttons(self) -> None:
        read_only = self.state.read_only
        ready = self.zone is not None and not self.needs_set_up
        changing = any(key.startswith("change:") for key in self._busy)
        for button in (self.level_button, self.attack_button, self.dev_button, self.purge_button, self.add_button):
            button.setEnabled(ready and not read_only and not changing)
        has_record = self.selected_record() is not None
        for button in (self.edit_button, self.delete_button):
            button.setEnabled(ready and has_record and not read_only and not changing)
        self.level_box.setEnabled(ready and not read_only)
        self.reload_button.setEnabled(not self.busy("zone") and not self.busy("dns"))
        self._show_zone()

    def _show_zone(self) -> None:
        zone = self.zone
        if zone is None:
            self.zone_label.setText(f"<b>{self.zone_name or 'Cloudflare'}</b>")
            return
        colour = STATE_COLOURS["OK"] if zone.status == "active" and not zone.paused else STATE_COLOURS["CRITICAL"]
        paused = " (paused)" if zone.paused else ""
        self.zone_label.setText(
            f"<b>{zone.zone_name}</b> — <span style='color:{colour}'>{zone.status}{paused}</span> · "
            f"{zone.plan} · name servers {', '.join(zone.name_servers)}")
        level = zone.security.value
        attack = zone.under_attack
        self.level_label.setText(f"Security level: <b style='color:{STATE_COLOURS['CRITICAL']}'>{level}</b>"
                                 if attack else f"Security level: <b>{level}</b>")
        self.level_box.blockSignals(True)
        self.level_box.setCurrentText(level)
        self.level_box.blockSignals(False)
        self.attack_button.setText(f"Under Attack: ON — turn off (back to {self.level_before_attack})…" if attack
                                   else "Under Attack: turn on…")
        self.attack_button.setStyleSheet(
            f"QPushButton:enabled {{ color: white; background: {STATE_COLOURS['CRITICAL']}; font-weight: bold; }}"
            if attack else "")
        dev = zone.development_mode
        if dev.value == "on":
            left = f", {dev.time_remaining // 3600} h {dev.time_remaining % 3600 // 60} min left" \
                if dev.time_remaining else ""
            self.dev_button.setText(f"Development mode: on{left} — turn off…")
        else:
            self.dev_button.setText("Development mode: off — turn on…")

    # -- loading ----------------------------------------------------------------------------------

    def reload(self) -> None:
        # "Loaded" once both of this reload's answers are here. Checking whether the other job is
        # still busy would race: its "finished" can arrive after this job's result.
        self._awaiting = {"zone", "dns"}
        self.load_zone()
        self.load_dns()
        self.load_traffic()
        self.load_firewall()

    def load_zone(self) -> None:
        store = self.state.context.store

        def work(client: CloudflareClient, job: JobContext) -> ZoneLoad:
            before = store.get_value(LEVEL_BEFORE_ATTACK_KEY) or CALM_LEVEL
            return ZoneLoad(zone_state(client, cancel=job.cancel), before)

        self.set_status(f"Reading the Cloudflare zone {self.zone_name}…")
        self.run("Reading the Cloudflare zone", work, self._zone_loaded, key="zone", timeout=60)

    def _zone_loaded(self, loaded: ZoneLoad) -> None:
        self.zone = loaded.zone
        self.level_before_attack = loaded.level_before_attack
        self.show_content()
        self.update_buttons()
        self._arrived("zone")

    def load_dns(self) -> None:
        inventory = self.state.context.inventory

        def work(client: CloudflareClient, job: JobContext) -> DnsLoad:
            records = client.dns_records(cancel=job.cancel)
            return DnsLoad(records, inventory_addresses(inventory))

        self.run("Reading the Cloudflare DNS records", work, self._dns_loaded, key="dns", timeout=120)

    def _dns_loaded(self, loaded: DnsLoad) -> None:
        selected = self.selected_record()
        self.dns_model.set_records(loaded.records, loaded.addresses, self.zone_name)
        if selected is not None:
            self.select_record(selected.id)
        self._dns_count()
        self.show_content()
        self.update_buttons()
        self._arrived("dns")

    def _arrived(self, part: str) -> None:
        self._awaiting.discard(part)
        if not self._awaiting and self.zone is not None:
            self._loaded()

    def _loaded(self) -> None:
        self.loaded_once = True
        stray = self.dns_model.stray_count
        note = f"; {stray} outside the inventory" if stray else ""
        self.set_status(f"{self.zone_name}: {self.dns_model.rowCount()} DNS records{note}.",
                        "WARNING" if stray else "")
        self.loaded.emit()

    def _dns_count(self) -> None:
        shown, total = self.dns_filter.rowCount(), self.dns_model.rowCount()
        stray = self.dns_model.stray_count
        self.dns_count_label.setText(f"{shown} of {total}" + (f" · {stray} outside the inventory" if stray else ""))

    def _dns_filter_changed(self, text: str) -> None:
        self.dns_filter.set_text(text)
        self._dns_count()

    def _dns_type_changed(self, _: int) -> None:
        self.dns_filter.set_type(str(self.dns_type_box.currentData() or ""))
        self._dns_count()

    def _stray_toggled(self, on: bool) -> None:
        self.dns_filter.set_only_stray(on)
        self._dns_count()

    def load_traffic(self) -> None:
        period: Literal["24h", "7d"] = "7d" if self.period_box.currentData() == "7d" else "24h"

        def work(client: CloudflareClient, job: JobContext) -> TrafficSeries:
            return client.traffic(period, cancel=job.cancel)

        self.run(f"Reading Cloudflare traffic ({period})", work, lambda series: self._traffic_loaded(period, series),
                 key=f"traffic-{period}", timeout=60)

    def _traffic_loaded(self, period: str, series: TrafficSeries) -> None:
        self.traffic[period] = series
        if self.period_box.currentData() != period:
            return
        points = series.points
        self.chart.set_series([
            Series("Requests", [(p.start, p.requests) for p in points], "blue"),
            Series("Cached", [(p.start, p.cached_requests) for p in points], "green"),
            Series("Threats", [(p.start, p.threats) for p in points], "red", right_axis=True),
        ], resolution=series.resolution, title=f"Requests and threats, {PERIOD_WORDS[period]}")
        share = series.threats / series.requests if series.requests else 0.0
        self.traffic_label.setText(f"{series.requests:,} requests, {series.cached_share:.0%} from the cache, "
                                   f"{series.threats:,} threats ({share:.1%})")
        self.traffic_label.setStyleSheet(f"color: {STATE_COLOURS['CRITICAL']};" if share >= 0.2 else "")

    def load_firewall(self) -> None:
        def work(client: CloudflareClient, job: JobContext) -> list[FirewallEvent]:
            now = datetime.now(UTC)
            return client.firewall_events(since=now - timedelta(hours=24), until=now, limit=200, cancel=job.cancel)

        self.run("Reading Cloudflare firewall events", work, self._firewall_loaded, key="firewall", timeout=60)

    def _firewall_loaded(self, events: list[FirewallEvent]) -> None:
        self.firewall_model.set_events(events)
        blocked = sum(1 for e in events if e.action == "block")
        more = " (the newest 200)" if len(events) >= 200 else ""
        self.firewall_label.setText(f"{len(events)} firewall events in the last 24 hours{more}, {blocked} blocked.")

    # -- the selected record ----------------------------------------------------------------------

    def selected_record(self) -> DnsRecord | None:
        return selected(self.dns_table, self.dns_model.record_at)

    def select_record(self, record_id: str) -> bool:
        return select_row(self.dns_table, self.dns_model.row_of(record_id))

    def record_check(self, record_id: str) -> RecordCheck | None:
        row = self.dns_model.row_of(record_id)
        found = self.dns_model.row_at(row)
        return found.check if found is not None else None

    # -- changing ---------------------------------------------------------------------------------

    # DNS

    def add_record(self) -> None:
        if not self.state.allow_change("adding a DNS record"):
            return
        self.tabs.setCurrentIndex(0)
        dialog = DnsRecordDialog(self.zone_name, None, self)
        dialog.submitted.connect(self._confirm_create)
        self.dns_dialog = dialog
        dialog.open()

    def _confirm_create(self, record: DnsRecordInput) -> None:
        proxied = "proxied" if record.proxied else "DNS only"
        text = (f"Create this record in {self.zone_name}?\n\n  {describe_record(record, self.zone_name)}\n"
                f"  TTL {ttl_text(record.ttl)}, {proxied}" + (f", comment: {record.comment}" if record.comment else ""))
        self.ask("Create a DNS record?", text, "Create record", lambda: self._create(record), destructive=False)

    def _create(self, record: DnsRecordInput) -> None:
        zone = self.zone_name
        detail = describe_record(record, zone)

        def work(client: CloudflareClient, job: JobContext) -> tuple[DnsRecord, str]:
            return client.create_dns_record(record, cancel=job.cancel), detail

        def done(created: DnsRecord) -> None:
            self.set_status(f"Created {describe_record(created, zone)}.", "OK")
            self.state.message.emit(f"Cloudflare: created {detail}")
            self.load_dns_then_select(created.id)

        self.change("Creating a DNS record", "cloudflare.dns.create", work, done, what=f"creating {detail}")

    def edit_record(self) -> None:
        record = self.selected_record()
        if record is None or not self.state.allow_change(f"editing {record.type} {record.name}"):
            return
        dialog = DnsRecordDialog(self.zone_name, record, self)
        dialog.submitted.connect(lambda changed: self._confirm_update(record, changed))
        self.dns_dialog = dialog
        dialog.open()

    def _confirm_update(self, before: DnsRecord, after: DnsRecordInput) -> None:
        changes = record_changes(before, after, self.zone_name)
        if not changes:
            self.set_status("Nothing changed.")
            return
        text = (f"Change {describe_record(before, self.zone_name)}?\n\n" + "\n".join(f"  {c}" for c in changes))
        self.ask("Change a DNS record?", text, "Change record", lambda: self._update(before, after, changes))

    def _update(self, before: DnsRecord, after: DnsRecordInput, changes: list[str]) -> None:
        zone = self.zone_name
        detail = f"{before.type} {relative_name(before.name, zone)}: " + "; ".join(changes)
        same_identity = before.type == after.type.upper() and before.priority == after.priority and \
            relative_name(before.name, zone) == relative_name(full_record_name(after.name, zone), zone)

        def work(client: CloudflareClient, job: JobContext) -> tuple[DnsRecord, str]:
            if same_identity:
                # PATCH keeps what the dialog does not show (tags); PUT replaces the record as a whole.
                updated = client.patch_dns_record(
                    before.id, content=after.content if after.content != before.content else None,
                    ttl=after.ttl if after.ttl != before.ttl else None,
                    proxied=after.proxied if after.proxied != before.proxied else None,
                    comment=(after.comment or "") if (after.comment or "") != (before.comment or "") else None,
                    cancel=job.cancel)
            else:
                updated = client.update_dns_record(before.id, after, cancel=job.cancel)
            return updated, detail

        def done(updated: DnsRecord) -> None:
            self.set_status(f"Changed {describe_record(updated, zone)}.", "OK")
            self.state.message.emit(f"Cloudflare: changed {detail}")
            self.load_dns_then_select(updated.id)

        self.change("Changing a DNS record", "cloudflare.dns.update", work, done,
                    what=f"changing {describe_record(before, zone)}")

    def delete_record(self) -> None:
        record = self.selected_record()
        if record is None or not self.state.allow_change(f"deleting {record.type} {record.name}"):
            return
        check = self.record_check(record.id)
        note = ""
        if check is not None and check.applies and not check.stray:
            note = f"\n\nIt points at {', '.join(check.servers)}: that name stops resolving once it is gone."
        text = (f"Delete this record from {self.zone_name}?\n\n  {describe_record(record, self.zone_name)}\n"
                f"  TTL {ttl_text(record.ttl)}, {'proxied' if record.proxied else 'DNS only'}" + note)
        self.ask("Delete a DNS record?", text, "Delete record", lambda: self._delete(record))

    def _delete(self, record: DnsRecord) -> None:
        zone = self.zone_name
        detail = describe_record(record, zone)

        def work(client: CloudflareClient, job: JobContext) -> tuple[str, str]:
            client.delete_dns_record(record.id, cancel=job.cancel)
            return record.id, detail

        def done(_: object) -> None:
            self.set_status(f"Deleted {detail}.", "OK")
            self.state.message.emit(f"Cloudflare: deleted {detail}")
            self.load_dns()

        self.change("Deleting a DNS record", "cloudflare.dns.delete", work, done, what=f"deleting {detail}")

    def load_dns_then_select(self, record_id: str) -> None:
        inventory = self.state.context.inventory

        def work(client: CloudflareClient, job: JobContext) -> DnsLoad:
            return DnsLoad(client.dns_records(cancel=job.cancel), inventory_addresses(inventory))

        def done(loaded: DnsLoad) -> None:
            self._dns_loaded(loaded)
            self.select_record(record_id)

        self.run("Reading the Cloudflare DNS records", work, done, key="dns", timeout=120)

    # cache

    def purge_everything(self) -> None:
        if not self.state.allow_change("purging the Cloudflare cache"):
            return
        self.state.navigate.emit(self.title, None)
        zone = self.zone_name
        text = (f"Purge everything from Cloudflare's cache for {zone}?\n\nEvery visitor's next request goes to the "
                "servers until the cache fills again: expect more load on them for a while.")

        def work(client: CloudflareClient, job: JobContext) -> tuple[None, str]:
            client.purge_everything(cancel=job.cancel)
            return None, "everything"

        def done(_: object) -> None:
            self.set_status(f"Purged everything from the cache of {zone}.", "OK")
            self.state.message.emit(f"Cloudflare: purged the cache of {zone}")

        self.ask("Purge the whole cache?", text, "Purge everything",
                  lambda: self.change("Purging the Cloudflare cache", "cloudflare.purge", work, done,
                                      what="purging the whole cache"))

    def open_purge_urls(self) -> None:
        if not self.state.allow_change("purging URLs from the Cloudflare cache"):
            return
        dialog = PurgeUrlsDialog(self.zone_name, self)
        dialog.accepted.connect(lambda: self.purge_urls(dialog.urls()))
        self.purge_dialog = dialog
        dialog.open()

    def purge_urls(self, urls: list[str]) -> None:
        if not urls:
            self.set_status("No URL to purge.")
            return
        if not self.state.allow_change("purging URLs from the Cloudflare cache"):
            return
        shown = "\n".join(f"  {u}" for u in urls[:15]) + (f"\n  … and {len(urls) - 15} more" if len(urls) > 15 else "")
        text = f"Purge these {len(urls)} URL(s) from Cloudflare's cache?\n\n{shown}"
        listed = ", ".join(urls[:10]) + (f", … ({len(urls)} in all)" if len(urls) > 10 else "")

        def work(client: CloudflareClient, job: JobContext) -> tuple[int, str]:
            return client.purge_files(urls, cancel=job.cancel), f"{len(urls)} URL(s): {listed}"

        def done(count: int) -> None:
            self.set_status(f"Purged {count} URL(s) from the cache.", "OK")

        self.ask("Purge URLs?", text, f"Purge {len(urls)} URL(s)",
                  lambda: self.change("Purging URLs from the Cloudflare cache", "cloudflare.purge", work, done,
                                      what=f"purging {len(urls)} URL(s)"), destructive=False)

    # security level, Under Attack, development mode

    def set_under_attack(self, on: bool) -> None:
        """The incident switch: "I'm Under Attack" on, or back to the level it had before."""
        what = "turning Under Attack mode on" if on else "turning Under Attack mode off"
        if not self.state.allow_change(what):
            return
        self.state.navigate.emit(self.title, None)
        zone = self.zone_name
        current = self.zone.security.value if self.zone else "unknown"
        store = self.state.context.store
        if on:
            text = (f"Turn on \"I'm Under Attack\" mode for {zone}?\n\nEvery visitor gets a challenge page for a "
                    f"few seconds before reaching the site; API clients without a browser may fail. Security level "
                    f"now: {current}. Turn it off again once the attack is over.")
        else:
            text = (f"Turn off \"I'm Under Attack\" mode for {zone}?\n\nThe security level goes back to "
                    f"{self.level_before_attack} (what it was before).")

        def work(client: CloudflareClient, job: JobContext) -> tuple[ZoneLoad, str]:
            switched = switch_under_attack(client, on, store, cancel=job.cancel)
            return ZoneLoad(switched.zone, switched.back_to), switched.detail

        def done(loaded: ZoneLoad) -> None:
            self._zone_loaded(loaded)
            now_on = loaded.zone.under_attack
            self.set_status(f"Under Attack mode is {'ON' if now_on else 'off'} for {zone} (security level "
                            f"{loaded.zone.security.value}).", "WARNING" if now_on else "OK")
            self.state.message.emit(f"Cloudflare: Under Attack mode {'on' if on else 'off'} for {zone}")

        self.ask("Turn Under Attack mode on?" if on else "Turn Under Attack mode off?", text,
                  "Turn on Under Attack" if on else "Turn off Under Attack",
                  lambda: self.change("Switching Under Attack mode", "cloudflare.under_attack", work, done, what=what),
                  destructive=on)

    def set_security_level(self, level: str) -> None:
        if level not in SECURITY_LEVELS:
            return
        what = f"setting the security level to {level}"
        if not self.state.allow_change(what):
            return
        zone = self.zone_name
        current = self.zone.security.value if self.zone else "unknown"
        if level == current:
            self.set_status(f"The security level is {level} already.")
            return

        def work(client: CloudflareClient, job: JobContext) -> tuple[ZoneState, str]:
            before = client.security_level(cancel=job.cancel).value
            client.set_security_level(level, cancel=job.cancel)
            return zone_state(client, cancel=job.cancel), f"security level {before} -> {level}"

        def done(state: ZoneState) -> None:
            self.zone = state
            self.set_status(f"Security level of {zone}: {state.security.value}.", "OK")
            self.update_buttons()

        self.ask("Change the security level?", f"Change the security level of {zone} from {current} to {level}?",
                  f"Set {level}", lambda: self.change("Setting the security level", "cloudflare.security_level", work,
                                                      done, what=what), destructive=level == "under_attack")

    def set_development_mode(self, on: bool) -> None:
        what = f"turning development mode {'on' if on else 'off'}"
        if not self.state.allow_change(what):
            return
        zone = self.zone_name
        text = (f"Turn on development mode for {zone}?\n\nCloudflare's cache is bypassed for 3 hours (then it turns "
                "itself off): every request reaches the servers." if on else
                f"Turn off development mode for {zone}? Cloudflare caches again.")

        def work(client: CloudflareClient, job: JobContext) -> tuple[ZoneState, str]:
            client.set_development_mode(on, cancel=job.cancel)
            return zone_state(client, cancel=job.cancel), "on" if on else "off"

        def done(state: ZoneState) -> None:
            self.zone = state
            self.set_status(f"Development mode is {state.development_mode.value} for {zone}.", "OK")
            self.update_buttons()

        self.ask("Development mode", text, "Turn on" if on else "Turn off",
                  lambda: self.change("Switching development mode", "cloudflare.development_mode", work, done,
                                      what=what), destructive=on)

