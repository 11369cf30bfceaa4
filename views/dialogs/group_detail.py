"""The detail of one group, beside the Groups table: who is in it, what it holds, what happened to it.

Its members (email, name, role), its rows per tenant table, whether it is suspended, the audit
history of the group (every ``SERVER/group:ID`` entry, so a moved group keeps its history) and its
billing state once Stripe is connected. The buttons only emit signals; the page does the work.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from services.groups import GroupDetail, GroupRow
from views.models.groups import RecordsModel
from views.style import STATE_COLOURS
from views.tables import row_table

PLACEHOLDER = "Choose a group to see its members, its data and its history."


def small_table(model: RecordsModel) -> QTableView:
    """A short table of text: rows may be selected together (to copy them)."""
    return row_table(model, multi_select=True, tight_rows=True)


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


class GroupDetailPanel(QWidget):
    suspend_clicked = Signal()
    reactivate_clicked = Signal()
    export_clicked = Signal()
    move_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.row: GroupRow | None = None
        self.detail: GroupDetail | None = None
        self.read_only = True
        self.busy = False
        self.title_label = QLabel()
        self.title_label.setTextFormat(Qt.TextFormat.RichText)
        self.title_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.facts_label = QLabel(PLACEHOLDER)
        self.facts_label.setTextFormat(Qt.TextFormat.RichText)
        self.facts_label.setWordWrap(True)
        self.billing_label = QLabel()
        self.billing_label.setWordWrap(True)
        self.billing_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(f"color: {STATE_COLOURS['CRITICAL']};")
        self.error_label.hide()

        self.suspend_button = QPushButton("Suspend…")
        self.suspend_button.setToolTip("Suspend the group: its members lose access until it is reactivated")
        self.suspend_button.clicked.connect(self.suspend_clicked)
        self.reactivate_button = QPushButton("Reactivate…")
        self.reactivate_button.clicked.connect(self.reactivate_clicked)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Write every row of the group to a file (GDPR), with a manifest of checksums")
        self.export_button.clicked.connect(self.export_clicked)
        self.move_button = QPushButton("Move…")
        self.move_button.setToolTip("Move the group to another server, without losing a row")
        self.move_button.clicked.connect(self.move_clicked)
        self._tips = {b: b.toolTip() for b in (self.suspend_button, self.reactivate_button, self.move_button)}
        buttons = QHBoxLayout()
        for button in (self.suspend_button, self.reactivate_button, self.export_button, self.move_button):
            buttons.addWidget(button)
        buttons.addStretch(1)

        self.members_model = RecordsModel(("Email", "Name", "Role", "Joined"), self)
        self.tables_model = RecordsModel(("Table", "Rows"), self, right_aligned=(1,))
        self.history_model = RecordsModel(("When", "Action", "Outcome", "Detail"), self)
        self.members_table = small_table(self.members_model)
        self.tables_table = small_table(self.tables_model)
        self.history_table = small_table(self.history_model)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.members_table, "Members")
        self.tabs.addTab(self.tables_table, "Data")
        self.tabs.addTab(self.history_table, "History")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 0, 0, 0)
        layout.addWidget(self.title_label)
        layout.addWidget(self.facts_label)
        layout.addWidget(self.billing_label)
        layout.addWidget(self.error_label)
        layout.addLayout(buttons)
        layout.addWidget(self.tabs, 1)
        self.clear()

    # --- what it shows ------------------------------------------------------------------------------------

    def clear(self, text: str = PLACEHOLDER) -> None:
        self.row = None
        self.detail = None
        self.title_label.setText("<h3>Group</h3>")
        self.facts_label.setText(html.escape(text))
        self.billing_label.clear()
        self.error_label.hide()
        for model in (self.members_model, self.tables_model, self.history_model):
            model.set_rows([])
        self._update_buttons()

    def show_row(self, row: GroupRow) -> None:
        """What the table already knows, at once; the rest follows from :meth:`show_detail`."""
        same = self.row is not None and (self.row.server, self.row.id) == (row.server, row.id)
        self.row = row
        if not same:
            self.detail = None
            for model in (self.members_model, self.tables_model, self.history_model):
                model.set_rows([])
            self.billing_label.setText("Billing: …")
        self.error_label.hide()
        self._show_head(row.name, row.id, row.server, row.created, row.suspended, row.members, row.data_rows,
                        loading=not same)
        self._update_buttons()

    def show_detail(self, detail: GroupDetail) -> None:
        self.detail = detail
        self._show_head(detail.name, detail.id, detail.server, detail.created, detail.suspended,
                        len(detail.members), detail.data_rows, loading=False)
        self.members_model.set_rows([(m.email, m.name, m.role, _when(m.joined)) for m in detail.members])
        self.tables_model.set_rows([(t.table, f"{t.rows:,}") for t in detail.tables]
                                   + [("total", f"{detail.data_rows:,}")])
        self.tabs.setTabText(0, f"Members ({len(detail.members)})")
        self.tabs.setTabText(1, f"Data ({detail.data_rows:,} rows)")
        self._update_buttons()

    def _show_head(self, name: str, group_id: int, server: str, created: Any, suspended: Any, members: int,
                   rows: int, *, loading: bool) -> None:
        self.title_label.setText(f"<h3>{html.escape(name)}</h3>")
        if suspended is not None:
            state = (f"<b style='color:{STATE_COLOURS['CRITICAL']}'>suspended</b> since "
                     f"{_when(suspended)} UTC")
        else:
            state = f"<b style='color:{STATE_COLOURS['OK']}'>active</b>"
        parts = [f"id <b>{group_id}</b> on <b>{html.escape(server)}</b>", state,
                 f"created {_when(created)} UTC" if created else "",
                 f"{members:,} members, {rows:,} rows"]
        text = " · ".join(p for p in parts if p)
        self.facts_label.setText(text + (" · <i>loading…</i>" if loading else ""))

    def show_billing(self, text: str) -> None:
        self.billing_label.setText(f"Billing: {text}")

    def show_history(self, entries: Sequence[Any]) -> None:
        self.history_model.set_rows(
            [(e.at.astimezone().strftime("%Y-%m-%d %H:%M"), e.action, e.outcome,
              e.detail.splitlines()[0] if e.detail else "") for e in entries],
            tips=[e.detail for e in entries])
        self.tabs.setTabText(2, f"History ({len(entries)})")

    def show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.show()
        if self.row is not None:
            self._show_head(self.row.name, self.row.id, self.row.server, self.row.created, self.row.suspended,
                            self.row.members, self.row.data_rows, loading=False)

    def set_read_only(self, read_only: bool) -> None:
        self.read_only = read_only
        self._update_buttons()

    def set_busy(self, busy: bool) -> None:
        """While a change of this group runs, its buttons wait."""
        self.busy = busy
        self._update_buttons()

    def _update_buttons(self) -> None:
        chosen = self.row is not None and not self.busy
        suspended = self.row is not None and self.row.suspended is not None
        change_tip = "Read-only mode is on: turn it off in the status bar to act." if self.read_only else ""
        self.suspend_button.setEnabled(chosen and not suspended and not self.read_only)
        self.reactivate_button.setEnabled(chosen and suspended and not self.read_only)
        self.move_button.setEnabled(chosen and not self.read_only)
        self.export_button.setEnabled(chosen)  # reads only: allowed in read-only mode
        for button, tip in self._tips.items():
            button.setToolTip(change_tip or tip)
        self.suspend_button.setVisible(not suspended)
        self.reactivate_button.setVisible(suspended)
