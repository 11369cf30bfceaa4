"""Timeline: what happened, in time order, across the fleet and the outside services: reboots,
unlocks, alerts raised and resolved, watched-file changes, backups, Cloudflare's security level,
Stripe's failed payments and the operator's own audited actions.

A source that can't be read shows as one "source unavailable" line; a source this installation
doesn't have (no alert history yet, no Cloudflare zone configured) is named under the table.
"""

from __future__ import annotations

import datetime as dt
from functools import partial

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from panel.context import PanelContext
from services.errors import PanelError
from services.runner import CommandRunner, LocalRunner
from services.triage.timeline import (
    Timeline,
    TimelineProvider,
    alert_events,
    audit_provider,
    backups_provider,
    boots_provider,
    cloudflare_provider,
    collect_timeline,
    optional_module,
    store_provider,
    store_tables,
    stripe_provider,
)
from views.models.timeline import TimelineModel
from views.server_box import refill_servers
from views.state import PaletteAction, PanelState
from views.tables import row_table
from views.workers import JobContext

RANGES: tuple[tuple[str, dt.timedelta], ...] = (
    ("Last 24 hours", dt.timedelta(days=1)), ("Last 3 days", dt.timedelta(days=3)),
    ("Last 7 days", dt.timedelta(days=7)), ("Last 30 days", dt.timedelta(days=30)),
    ("Last hour", dt.timedelta(hours=1)),
)


def timeline_providers(context: PanelContext, *, path_prefix: str = "") -> tuple[list[TimelineProvider], list[str]]:
    """Every source this installation has, and why each missing one is missing. Reads the store: call it
    on a worker."""
    inventory = context.inventory
    servers = list(inventory.servers)
    providers = [boots_provider(context.runner, server, path_prefix=path_prefix) for server in servers]
    store = context.store
    providers.append(audit_provider(lambda: store.audit_entries(limit=20000), servers))
    skipped: list[str] = []
    tables = store_tables(store)
    if {"alerts", "alert_events"} <= tables:
        providers.append(store_provider("alerts", partial(alert_events, store)))
        providers.append(store_provider("changes", partial(alert_events, store, files=True)))
    else:
        skipped.append("alerts and watched-file changes (this panel has no alert history)")

    specs = [inventory.servers[name] for name in servers]
    if not any(spec.backups for spec in specs):
        skipped.append("backups (none configured)")
    else:
        def runner_for(host: str) -> CommandRunner:
            return LocalRunner() if host == "local" else context.runner(host)

        backups = backups_provider(specs, runner_for)
        if backups is None:
            skipped.append("backups (the backups reader is not installed)")
        else:
            providers.append(backups)

    secrets = context.secrets
    if inventory.cloudflare is None:
        skipped.append("Cloudflare (no [cloudflare] zone in the config)")
    elif optional_module("services.cloudflare") is None:
        skipped.append("Cloudflare (its client is not installed)")
    else:
        providers.append(cloudflare_provider(inventory.cloudflare, lambda: secrets.api_key("cloudflare")))
    if inventory.stripe is None:
        skipped.append("Stripe (no [stripe] section in the config)")
    elif optional_module("services.stripe") is None:
        skipped.append("Stripe (its client is not installed)")
    else:
        providers.append(stripe_provider(inventory.stripe, lambda: secrets.api_key("stripe")))
    return providers, skipped


class TimelinePage(QWidget):
    title = "Timeline"

    def __init__(self, state: PanelState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.path_prefix = ""  # folders put first on the servers' PATH for these commands
        self.model = TimelineModel(self)
        self.timeline: Timeline | None = None
        self._generation = 0
        self._loading = False

        self.range_box = QComboBox()
        for label, _ in RANGES:
            self.range_box.addItem(label)
        self.source_box = QComboBox()
        self.source_box.addItem("All sources", "")
        self.server_box = QComboBox()
        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Search the timeline (Ctrl+F)…")
        self.search_edit.setClearButtonEnabled(True)
        self.reload_button = QPushButton("Reload (F5)")
        top = QHBoxLayout()
        top.addWidget(self.range_box)
        top.addWidget(self.source_box)
        top.addWidget(self.server_box)
        top.addWidget(self.search_edit, 1)
        top.addWidget(self.reload_button)
        self.table = row_table(self.model, multi_select=True)
        self.status = QLabel()
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(120)
        self._debounce.timeout.connect(self._apply_filter)
        self.reload_button.clicked.connect(self.reload)
        self.range_box.currentIndexChanged.connect(lambda _: self.reload())
        self.source_box.currentIndexChanged.connect(lambda _: self._apply_filter())
        self.server_box.currentIndexChanged.connect(lambda _: self._apply_filter())
        self.search_edit.textChanged.connect(lambda _: self._debounce.start())
        context = Qt.ShortcutContext.WidgetWithChildrenShortcut
        QShortcut(QKeySequence(Qt.Key.Key_F5), self, self.reload, context=context)
        QShortcut(QKeySequence("Ctrl+F"), self, lambda: self.search_edit.setFocus(), context=context)
        state.inventory_changed.connect(self._inventory_changed)
        self._inventory_changed()

    def _inventory_changed(self) -> None:
        servers = list(self.state.context.inventory.servers)
        refill_servers(self.server_box, servers, all_label="All servers")
        self.state.remove_actions("timeline/")
        self.state.add_action(PaletteAction(
            "Timeline of the last 24 hours", partial(self.show_timeline, "", 0),
            keywords=("history", "what happened", "events"), page=self.title, key="timeline/24h"))
        self.state.add_action(PaletteAction(
            "Timeline of the last 7 days", partial(self.show_timeline, "", 2), keywords=("history", "week"),
            page=self.title, key="timeline/7d"))
        for server in servers:
            self.state.add_action(PaletteAction(
                f"Timeline of {server}", partial(self.show_timeline, server, None),
                keywords=("history", "reboots", "events"), page=self.title, key=f"timeline/{server}"))

    def show_timeline(self, server: str = "", range_index: int | None = None) -> None:
        self.state.navigate.emit(self.title, None)
        self.server_box.setCurrentIndex(max(0, self.server_box.findData(server)))
        if range_index is not None and range_index != self.range_box.currentIndex():
            self.range_box.setCurrentIndex(range_index)  # reloads
        elif self.timeline is None and not self._loading:
            self.reload()

    def focus_item(self, argument: object) -> None:
        if isinstance(argument, str):
            self.server_box.setCurrentIndex(max(0, self.server_box.findData(argument)))

    def activate(self) -> None:
        if self.timeline is None and not self._loading:
            self.reload()

    def reload(self) -> None:
        self._generation += 1
        generation = self._generation
        self._loading = True
        context = self.state.context
        prefix = self.path_prefix
        since = dt.datetime.now(dt.UTC) - RANGES[max(0, self.range_box.currentIndex())][1]
        self.status.setText("Reading the timeline…")

        def read(job: JobContext) -> Timeline:
            providers, skipped = timeline_providers(context, path_prefix=prefix)
            return collect_timeline(providers, since=since, skipped=skipped, cancel=job.cancel)

        def done(timeline: Timeline) -> None:
            if generation == self._generation:
                self._show(timeline)

        def failed(error: PanelError) -> None:
            if generation == self._generation:
                self.status.setText(f"The timeline could not be read: {error}")

        def finished() -> None:
            if generation == self._generation:
                self._loading = False

        self.state.runner.submit("Reading the timeline", read, timeout=90, on_success=done, on_error=failed,
                                 on_finished=finished)

    def _show(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.model.set_events(timeline.events)
        chosen = self.source_box.currentData()
        self.source_box.blockSignals(True)
        self.source_box.clear()
        self.source_box.addItem("All sources", "")
        for source in self.model.sources():
            self.source_box.addItem(source, source)
        self.source_box.setCurrentIndex(max(0, self.source_box.findData(chosen)))
        self.source_box.blockSignals(False)
        self._apply_filter()

    def _apply_filter(self) -> None:
        self.model.set_filter(text=self.search_edit.text(), source=str(self.source_box.currentData() or ""),
                              server=str(self.server_box.currentData() or ""))
        timeline = self.timeline
        if timeline is None:
            return
        parts = [f"{self.model.rowCount()} of {self.model.total} events"]
        unavailable = [e.summary for e in timeline.unavailable]
        if unavailable:
            parts.append(f"{len(unavailable)} source(s) unavailable")
        text = " · ".join(parts)
        if timeline.skipped:
            text += "\nNot in this timeline: " + "; ".join(timeline.skipped) + "."
        self.status.setText(text)
