"""Groups: every tenant group of every server in one table; find, inspect, suspend, export and move them.

The table fetches pages as it scrolls (``views.models.groups``), so 100,000 groups cost no more
than the screenful shown. Typing in the search box searches every server by id, name or a
member's email once typing pauses (150 ms); the previous search is cancelled. The detail beside
the table shows the chosen group's members, rows per table, history and billing.

Every database call runs on a worker through the server's SSH tunnel (``panel.mysql``). A missing
MySQL password is asked for in a dialog that offers to remember it only when the keyring works.
Suspend, reactivate and move respect read-only mode, are confirmed and audited; export only reads
(allowed in read-only mode) and is audited too.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from panel.commands.groups import billing_line, group_target, history
from panel.mysql import LONG_READ_TIMEOUT, MysqlPasswordMissing, mysql_access, mysql_servers
from panel.secrets import mysql_entry
from services.cancel import CancelToken
from services.errors import Cancelled, PanelError
from services.groups import (
    ExportManifest,
    GroupDetail,
    GroupPage,
    GroupRow,
    GroupState,
    MoveResult,
    MysqlAuthError,
    export_group,
    group_detail,
    list_groups,
    reactivate,
    suspend,
)
from views.dialogs.group_balance import BalanceDialog
from views.dialogs.group_detail import GroupDetailPanel
from views.dialogs.messages import ask_to_confirm, show_error
from views.dialogs.move_group import MoveGroupDialog
from views.dialogs.password import PasswordDialog
from views.models.groups import COLUMNS, NAME, FetchPage, GroupsModel
from views.server_box import refill_servers
from views.state import PaletteAction, PanelState
from views.style import STATE_COLOURS
from views.tables import row_table
from views.workers import Job, JobContext

if TYPE_CHECKING:
    from panel.context import PanelContext

ACTION_PREFIX = "groups/"
SEARCH_DELAY_MS = 150
DETAIL_DELAY_MS = 120
COLUMN_WIDTHS = (70, 170, 55, 70, 85, 95, 80)
ALL_SERVERS = "All servers"


def page_fetcher(context: PanelContext) -> FetchPage:
    """What the table's model calls on a worker: one page of one server, through its tunnel.

    It holds the context, not the page, so a job never touches a widget from its thread."""
    access = mysql_access(context)

    def fetch(server: str, search: str | None, offset: int, limit: int, order: str,
              cancel: CancelToken) -> GroupPage:
        endpoint = access.endpoint(server, cancel)
        cancel.raise_if_cancelled(f"Listing the groups of {server}")
        return list_groups(endpoint, context.inventory.groups, search=search, limit=limit, offset=offset,
                           order_by=order)

    return fetch


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "group"


class GroupsPage(QWidget):
    title = "Groups"
    detail_loaded = Signal(object)  # GroupDetail
    group_changed = Signal(str, object)  # "suspend" / "reactivate" / "export" / "move", and its result
    focused = Signal(object)  # the GroupRow that focus_item found, or None

    def __init__(self, state: PanelState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.access = mysql_access(state.context)
        self.detail_job: Job | None = None
        self.billing_job: Job | None = None
        self.export_job: Job | None = None
        self.export_progress: QProgressDialog | None = None
        self.file_dialog: QFileDialog | None = None
        self.confirm_box: QMessageBox | None = None
        self.move_dialog: MoveGroupDialog | None = None
        self.balance_dialog: BalanceDialog | None = None
        self.password_dialog: PasswordDialog | None = None
        self._asked_passwords: set[str] = set()
        self._password_queue: list[tuple[str, bool, str, str]] = []
        self._password_server = ""
        self._pending_focus: tuple[str, Any] | None = None
        self._busy: set[tuple[str, int]] = set()

        self.search = QLineEdit()
        self.search.setPlaceholderText("Find a group: id, name or a member's email (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._search_edited)
        self.search.returnPressed.connect(self._search_entered)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self._apply_search)
        self.server_box = QComboBox()
        self.server_box.setToolTip("Show the groups of every server, or of one")
        self.server_box.currentIndexChanged.connect(lambda _: self._servers_chosen())
        self.reload_button = QPushButton("Reload (F5)")
        self.reload_button.clicked.connect(self.reload)
        self.balance_button = QPushButton("Balance…")
        self.balance_button.setToolTip("Groups and rows per server, and which moves would even them out")
        self.balance_button.clicked.connect(self.show_balance)
        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.server_box)
        top.addWidget(self.reload_button)
        top.addWidget(self.balance_button)

        self.banner = QFrame()
        self.banner.setFrameShape(QFrame.Shape.StyledPanel)
        self.banner_label = QLabel()
        self.banner_label.setWordWrap(True)
        self.banner_label.setStyleSheet(f"color: {STATE_COLOURS['CRITICAL']};")
        self.password_button = QPushButton("Enter password…")
        self.password_button.clicked.connect(self._password_button_clicked)
        self.retry_button = QPushButton("Retry")
        self.retry_button.clicked.connect(self.reload)
        banner = QHBoxLayout(self.banner)
        banner.setContentsMargins(6, 4, 6, 4)
        banner.addWidget(self.banner_label, 1)
        banner.addWidget(self.password_button)
        banner.addWidget(self.retry_button)
        self.banner.hide()

        self.model = GroupsModel(state.runner, page_fetcher(state.context), self._chosen_servers(), self)
        self.model.progress.connect(self._update_count)
        self.model.server_failed.connect(self._server_failed)
        self.model.modelReset.connect(self._model_reset)
        self.model.generation_loaded.connect(lambda _: self._resolve_focus(final=True))
        self.model.rowsInserted.connect(lambda *_: self._resolve_focus(final=False))
        self.table = row_table(self.model, COLUMN_WIDTHS, tight_rows=True)
        self.table.horizontalHeader().setSortIndicator(NAME, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)  # the model sorts on the servers, page by page
        self.table.selectionModel().currentRowChanged.connect(lambda current, _: self._row_chosen(current))
        self.count_label = QLabel()
        self.count_label.setTextFormat(Qt.TextFormat.RichText)

        self.detail = GroupDetailPanel()
        self.detail.set_read_only(state.read_only)
        self.detail.suspend_clicked.connect(self.suspend_chosen)
        self.detail.reactivate_clicked.connect(self.reactivate_chosen)
        self.detail.export_clicked.connect(self.export_chosen)
        self.detail.move_clicked.connect(self.move_chosen)
        self._detail_timer = QTimer(self)
        self._detail_timer.setSingleShot(True)
        self._detail_timer.setInterval(DETAIL_DELAY_MS)
        self._detail_timer.timeout.connect(self.load_detail)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.table, 1)
        left_layout.addWidget(self.count_label)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setSizes([660, 420])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.banner)
        layout.addWidget(self.splitter, 1)

        find = QShortcut(QKeySequence("Ctrl+F"), self, self.focus_search)
        find.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        refresh = QShortcut(QKeySequence("F5"), self, self.reload)
        refresh.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        state.read_only_changed.connect(self.detail.set_read_only)
        state.inventory_changed.connect(self._inventory_changed)
        self._fill_server_box()
        self._register_actions()
        self._update_count()

    # --- the palette -----------------------------------------------------------------------------------------

    def _register_actions(self) -> None:
        add = self.state.add_action
        add(PaletteAction("Find group…", self.find_group, keywords=("search", "tenant", "customer", "email"),
                          shortcut="Ctrl+F", page=self.title, key=ACTION_PREFIX + "find"))
        add(PaletteAction("Groups: reload", lambda: self._go(self.reload), keywords=("refresh", "tenant"),
                          page=self.title, key=ACTION_PREFIX + "reload"))
        add(PaletteAction("Groups: balance the servers…", lambda: self._go(self.show_balance),
                          keywords=("move", "spread", "load", "rows"), page=self.title, key=ACTION_PREFIX + "balance"))
        add(PaletteAction("Move the chosen group…", lambda: self._go(self.move_chosen), changes_something=True,
                          keywords=("migrate", "server", "tenant"), page=self.title, key=ACTION_PREFIX + "move"))
        add(PaletteAction("Suspend the chosen group…", lambda: self._go(self.suspend_chosen), changes_something=True,
                          keywords=("block", "disable", "tenant"), page=self.title, key=ACTION_PREFIX + "suspend"))
        add(PaletteAction("Reactivate the chosen group…", lambda: self._go(self.reactivate_chosen),
                          changes_something=True, keywords=("unsuspend", "enable", "tenant"), page=self.title,
                          key=ACTION_PREFIX + "reactivate"))
        add(PaletteAction("Export the chosen group (GDPR)…", lambda: self._go(self.export_chosen),
                          keywords=("gdpr", "dump", "download", "tenant"), page=self.title,
                          key=ACTION_PREFIX + "export"))

    def _go(self, then: Any) -> None:
        self.state.navigate.emit(self.title, None)
        then()

    def find_group(self) -> None:
        self.state.navigate.emit(self.title, None)
        self.focus_search()

    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    # --- showing the page ------------------------------------------------------------------------------------

    def activate(self) -> None:
        """Shown: the first time, fetch the first pages."""
        self.model.start()

    def reload(self) -> None:
        if self.model.started:
            self.model.reload()
        else:
            self.model.start()
        if self.detail.row is not None:
            self.load_detail()

    def focus_item(self, argument: object) -> None:
        """``state.navigate("Groups", "acme")`` (or an id): search for it and choose it."""
        if argument is None:
            return
        text = str(argument).strip()
        digits = text[1:] if text.startswith("#") else text
        if isinstance(argument, int) or (digits.isascii() and digits.isdigit()):
            self._pending_focus = ("id", int(digits))
            search = f"#{int(digits)}"
        else:
            self._pending_focus = ("name", text)
            search = text
        self.model.start()
        self.search.blockSignals(True)
        self.search.setText(search)
        self.search.blockSignals(False)
        self._search_timer.stop()
        self._apply_search()
        self._resolve_focus(final=False)

    def _resolve_focus(self, *, final: bool) -> None:
        pending = self._pending_focus
        if pending is None or (self.model.is_loading and not final):
            return
        kind, value = pending
        rows = self.model.rows()
        found = -1
        if kind == "id":
            found = next((n for n, r in enumerate(rows) if r.id == value), -1)
        else:
            found = next((n for n, r in enumerate(rows) if r.name == value), -1)
            if found < 0:
                found = next((n for n, r in enumerate(rows) if r.name.casefold() == str(value).casefold()), -1)
            if found < 0 and len(rows) == 1:
                found = 0
        if found < 0 and not final:
            return
        self._pending_focus = None
        if found < 0:
            self.state.message.emit(f"No group {value!r} was found on {', '.join(self.model.servers)}.")
            self.focused.emit(None)
            return
        self.select_row(found)
        self.table.setFocus(Qt.FocusReason.OtherFocusReason)
        self.focused.emit(rows[found])

    def select_row(self, number: int) -> None:
        index = self.model.index(number, 0)
        self.table.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
        self.table.scrollTo(index)

    # --- servers ---------------------------------------------------------------------------------------------

    def _all_servers(self) -> list[str]:
        return mysql_servers(self.state.context.inventory)

    def _chosen_servers(self) -> list[str]:
        chosen = self.server_box.currentText()
        servers = self._all_servers()
        return [chosen] if chosen in servers else servers

    def _fill_server_box(self) -> None:
        refill_servers(self.server_box, self._all_servers(), all_label=ALL_SERVERS)

    def _servers_chosen(self) -> None:
        self.model.set_servers(self._chosen_servers())

    def _inventory_changed(self) -> None:
        self._fill_server_box()
        self.model.set_servers(self._chosen_servers())

    # --- searching -------------------------------------------------------------------------------------------

    def _search_edited(self, _text: str) -> None:
        self._pending_focus = None
        self._search_timer.start()

    def _search_entered(self) -> None:
        if self._search_timer.isActive():
            self._search_timer.stop()
            self._apply_search()
        if self.model.rowCount() > 0:
            self.select_row(0)
            self.table.setFocus(Qt.FocusReason.OtherFocusReason)

    def _apply_search(self) -> None:
        self.model.start()
        self.model.set_search(self.search.text())


    def _model_reset(self) -> None:
        self._hide_banner_unless_errors()
        self._update_count()

    def _update_count(self) -> None:
        model = self.model
        if not model.servers:
            self.count_label.setText("No server has a database in the config: add a <code>[servers.NAME.mysql]</code> "
                                     "section (database, user, port) to see its groups here.")
            return
        if not model.started:
            self.count_label.setText("")
            return
        searched = f" matching “{model.search}”" if model.search else ""
        if model.is_loading and model.loaded == 0:
            self.count_label.setText(f"<i>Searching{searched}…</i>" if searched else "<i>Loading…</i>")
            return
        total = model.total
        if total == 0 and not model.errors:
            self.count_label.setText(f"No group{searched}." if searched else "No groups.")
            return
        more = " · scroll for more" if model.loaded < total else ""
        loading = " · <i>loading…</i>" if model.is_loading else ""
        self.count_label.setText(f"{model.loaded:,} of {total:,} groups{searched}{more}{loading}")

    # --- errors and passwords --------------------------------------------------------------------------------

    def _server_failed(self, server: str, error: PanelError) -> None:
        self._show_banner()
        if isinstance(error, MysqlPasswordMissing) and server not in self._asked_passwords and self.isVisible():
            self._asked_passwords.add(server)  # asked once by itself; the banner's button asks again
            self.ask_password(server, can_remember=error.can_remember, keyring_message=error.keyring_message)

    def _show_banner(self) -> None:
        errors = self.model.errors
        if not errors:
            self.banner.hide()
            return
        self.banner_label.setText("\n".join(f"{server}: {error}" for server, error in errors.items()))
        self.password_button.setVisible(any(isinstance(e, MysqlPasswordMissing | MysqlAuthError)
                                            for e in errors.values()))
        self.banner.show()

    def _hide_banner_unless_errors(self) -> None:
        if not self.model.errors:
            self.banner.hide()

    def _password_button_clicked(self) -> None:
        for server, error in self.model.errors.items():
            if isinstance(error, MysqlPasswordMissing):
                self.ask_password(server, can_remember=error.can_remember, keyring_message=error.keyring_message)
                return
            if isinstance(error, MysqlAuthError):
                self._ask_password_checking_keyring(server, problem=str(error))
                return

    def _ask_password_checking_keyring(self, server: str, problem: str = "") -> None:
        """Whether the keyring works is keyring I/O: ask on a worker, then open the dialog."""
        secrets = self.state.context.secrets
        self.state.runner.submit("Checking the keyring", lambda job: secrets.status(), timeout=20,
                                 on_success=lambda status: self.ask_password(
                                     server, can_remember=status.can_remember,
                                     keyring_message="" if status.can_remember else status.message, problem=problem))

    def ask_password(self, server: str, *, can_remember: bool, keyring_message: str = "", problem: str = "",
                     first: bool = False) -> None:
        """Ask for ``server``'s MySQL password. One dialog at a time: the others wait their turn
        (``first``: at the head of the line, for a password that was just refused)."""
        request = (server, can_remember, keyring_message, problem)
        showing = self.password_dialog is not None and self.password_dialog.isVisible()
        if showing and self._password_server == server:
            return
        if showing:
            waiting = [r for r in self._password_queue if r[0] != server]
            self._password_queue = [request, *waiting] if first else [*waiting, request]
            return
        self._open_password_dialog(*request)

    def _open_password_dialog(self, server: str, can_remember: bool, keyring_message: str, problem: str) -> None:
        mysql = self.access.mysql_spec(server)
        dialog = PasswordDialog(
            f"MySQL password for {server}",
            f"<p>The password of the MySQL user <b>{mysql.user}</b> of the database <b>{mysql.database}</b> on "
            f"<b>{server}</b>. It goes only through the SSH tunnel to that server.</p>",
            mysql_entry(server), can_remember=can_remember, keyring_message=keyring_message, problem=problem,
            parent=self)
        dialog.accepted.connect(lambda: self._password_given(server, dialog.take_secret(), dialog.remember,
                                                             can_remember, keyring_message))
        dialog.finished.connect(lambda _: QTimer.singleShot(0, self._next_password))
        self.password_dialog = dialog
        self._password_server = server
        dialog.open()

    def _next_password(self) -> None:
        if self.password_dialog is not None and self.password_dialog.isVisible():
            return
        if self._password_queue:
            self._open_password_dialog(*self._password_queue.pop(0))

    def _password_given(self, server: str, password: str, remember: bool, can_remember: bool,
                        keyring_message: str) -> None:
        access, spec, secrets = self.access, self.state.context.inventory.groups, self.state.context.secrets

        def work(job: JobContext) -> bool:
            access.use_password(server, password)
            try:
                list_groups(access.endpoint(server, job.cancel), spec, limit=1)
            except MysqlAuthError:
                access.forget_password(server)
                raise
            if remember:
                secrets.set(mysql_entry(server), password)
            return remember

        def failed(error: PanelError) -> None:
            if isinstance(error, MysqlAuthError):
                self.ask_password(server, can_remember=can_remember, keyring_message=keyring_message,
                                  problem=str(error), first=True)
            else:
                show_error(self, f"The database of {server}", error)

        def done(remembered: bool) -> None:
            kept = "kept in the keyring" if remembered else "kept for this session"
            self.state.message.emit(f"Connected to the database of {server}; the password is {kept}.")
            self.model.reload()

        self.state.runner.submit(f"Checking the MySQL password of {server}", work, timeout=60,
                                 on_success=done, on_error=failed)

    # --- the detail ------------------------------------------------------------------------------------------

    def chosen_row(self) -> GroupRow | None:
        return self.detail.row

    def _row_chosen(self, current: QModelIndex) -> None:
        row = self.model.row_at(current.row()) if current.isValid() else None
        if row is None:
            return
        self.detail.show_row(row)
        self.detail.set_busy((row.server, row.id) in self._busy)
        self._detail_timer.start()

    def load_detail(self) -> None:
        row = self.detail.row
        if row is None:
            return
        if self.detail_job is not None:
            self.detail_job.cancel.cancel()
        access, context = self.access, self.state.context
        servers = self._all_servers()

        def work(job: JobContext) -> tuple[GroupDetail, list[Any]]:
            endpoint = access.endpoint(row.server, job.cancel)
            detail = group_detail(endpoint, context.inventory.groups, row.id)
            return detail, history(context, row.id, servers)

        self.detail_job = job = self.state.runner.submit(
            f"Reading group {row.name} on {row.server}", work, timeout=60,
            on_success=lambda result: self._detail_arrived(job, result),
            on_error=lambda error: self._detail_failed(job, error))
        self._load_billing(row)

    def _detail_arrived(self, job: Job, result: tuple[GroupDetail, list[Any]]) -> None:
        if job is not self.detail_job:
            return
        self.detail_job = None
        detail, entries = result
        row = self.detail.row
        if row is None or (row.server, row.id) != (detail.server, detail.id):
            return
        self.detail.show_detail(detail)
        self.detail.show_history(entries)
        self.detail_loaded.emit(detail)

    def _detail_failed(self, job: Job, error: PanelError) -> None:
        if job is not self.detail_job:
            return
        self.detail_job = None
        if not isinstance(error, Cancelled):
            self.detail.show_error(str(error))

    def _load_billing(self, row: GroupRow) -> None:
        if self.billing_job is not None:
            self.billing_job.cancel.cancel()
        context = self.state.context
        if context.inventory.stripe is None:
            self.detail.show_billing("Stripe not connected")
            return

        def work(job: JobContext) -> str:
            return billing_line(context, row.id, job.cancel)

        def arrived(text: str) -> None:
            chosen = self.detail.row
            if chosen is not None and chosen.id == row.id:
                self.detail.show_billing(text)

        def failed(error: PanelError) -> None:
            chosen = self.detail.row
            if chosen is not None and chosen.id == row.id and not isinstance(error, Cancelled):
                self.detail.show_billing(f"Stripe: {error}")

        self.billing_job = self.state.runner.submit(f"Reading the billing of group {row.name}", work, timeout=60,
                                                    on_success=arrived, on_error=failed)

    # --- suspend and reactivate ------------------------------------------------------------------------------

    def suspend_chosen(self) -> None:
        self._confirm_suspended(True)

    def reactivate_chosen(self) -> None:
        self._confirm_suspended(False)

    def _confirm_suspended(self, suspended: bool) -> None:
        row = self.chosen_row()
        if row is None:
            self.state.message.emit("Choose a group first.")
            return
        verb = "suspend" if suspended else "reactivate"
        if not self.state.allow_change(f"{'suspending' if suspended else 'reactivating'} group {row.name}"):
            return
        if suspended:
            text = (f"Suspend group {row.name} (id {row.id}) on {row.server}?\n\n"
                    f"Its {row.members} members lose access until it is reactivated. Nothing is deleted.")
        else:
            text = f"Reactivate group {row.name} (id {row.id}) on {row.server}?\n\nIts members get their access back."
        self.confirm_box = ask_to_confirm(self, f"{verb.capitalize()} {row.name}", text, verb.capitalize(),
                                          lambda: self.set_suspended(row, suspended), destructive=suspended)

    def set_suspended(self, row: GroupRow, suspended: bool) -> Job:
        """Suspend or reactivate (already confirmed), on a worker; audited there."""
        verb = "suspend" if suspended else "reactivate"
        access, context = self.access, self.state.context
        target = group_target(row.server, row.id)
        key = (row.server, row.id)
        completed: list[GroupState] = []

        def work(job: JobContext) -> GroupState:
            endpoint = access.endpoint(row.server, job.cancel)
            try:
                result = (suspend if suspended else reactivate)(endpoint, context.inventory.groups, row.id)
            except PanelError as error:
                context.store.audit(f"group.{verb}", target, "failed", str(error))
                raise
            state_text = f"suspended since {result.suspended:%Y-%m-%d %H:%M} UTC" if result.suspended else "active"
            context.store.audit(f"group.{verb}", target, "ok" if result.changed else "unchanged",
                                f"Group {result.id} ({result.name}) on {result.server} is {state_text}"
                                + ("." if result.changed else " (it already was)."))
            completed.append(result)
            return result

        def done(result: GroupState) -> None:
            updated = self.model.update_row(row.server, row.id, suspended=result.suspended)
            chosen = self.detail.row
            if chosen is not None and (chosen.server, chosen.id) == key:
                self.detail.show_row(updated or dataclasses.replace(chosen, suspended=result.suspended))
                self.load_detail()
            word = "suspended" if result.suspended else "active"
            self.state.message.emit(f"Group {result.name} on {result.server} is {word}"
                                    + ("." if result.changed else " (it already was)."))
            self.group_changed.emit(verb, result)

        def failed(error: PanelError) -> None:
            if isinstance(error, Cancelled) and completed:  # it was done before the cancel came
                done(completed[0])
                return
            show_error(self, f"Could not {verb} {row.name}", error)

        def finished() -> None:
            self._busy.discard(key)
            self.model.set_note(row.server, row.id, None)
            chosen = self.detail.row
            if chosen is not None and (chosen.server, chosen.id) == key:
                self.detail.set_busy(False)

        self._busy.add(key)
        self.detail.set_busy(True)
        self.model.set_note(row.server, row.id, "suspending…" if suspended else "reactivating…")
        return self.state.runner.submit(f"{verb.capitalize()} group {row.name} on {row.server}", work, timeout=60,
                                        queue=f"group:{row.server}:{row.id}", on_success=done, on_error=failed,
                                        on_finished=finished)

    # --- export ----------------------------------------------------------------------------------------------

    def export_chosen(self) -> None:
        row = self.chosen_row()
        if row is None:
            self.state.message.emit("Choose a group first.")
            return
        suggested = str(Path.home() / f"group-{row.id}-{_safe_name(row.name)}.jsonl")
        dialog = QFileDialog(self, f"Export group {row.name} (GDPR)", suggested,
                             "JSON lines (*.jsonl);;SQL statements (*.sql)")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setFileMode(QFileDialog.FileMode.AnyFile)
        dialog.setDefaultSuffix("jsonl")
        dialog.fileSelected.connect(lambda path: self.start_export(row, Path(path)))
        self.file_dialog = dialog
        dialog.open()

    def start_export(self, row: GroupRow, path: Path) -> Job:
        """Export (the file was chosen), with a progress dialog whose Cancel stops it; audited."""
        fmt = "sql" if path.suffix.lower() == ".sql" else "jsonl"
        access, context = self.access, self.state.context
        target = group_target(row.server, row.id)
        finished: list[ExportManifest] = []  # set once the file is complete, even if Cancel came too late

        def work(job: JobContext) -> ExportManifest:
            endpoint = access.endpoint(row.server, job.cancel, read_timeout=LONG_READ_TIMEOUT)
            try:
                manifest = export_group(endpoint, context.inventory.groups, row.id, path, format=fmt,  # type: ignore[arg-type]
                                        progress=lambda table, done, total: job.report((table, done, total)),
                                        cancel=job.cancel)
            except PanelError as error:
                outcome = "cancelled" if isinstance(error, Cancelled) else "failed"
                context.store.audit("group.export", target, outcome, f"to {path}: {error}")
                raise
            context.store.audit("group.export", target, "ok",
                                f"Exported group {row.id} ({row.name}) from {row.server}: {manifest.total_rows} rows "
                                f"in {len(manifest.tables)} tables to {path} ({manifest.file_bytes} bytes, "
                                f"sha256 {manifest.file_sha256}).")
            finished.append(manifest)
            return manifest

        progress = QProgressDialog(f"Exporting group {row.name}…", "Cancel", 0, 0, self)
        progress.setWindowTitle(f"Export {row.name}")
        progress.setMinimumDuration(0)
        progress.setAutoClose(False)
        progress.setAutoReset(False)
        progress.setMinimumWidth(420)
        self.export_progress = progress

        def report(value: tuple[str, int, int]) -> None:
            table, done, total = value
            progress.setLabelText(f"Exporting group {row.name}: {table}, {done:,} of {total:,} rows")
            progress.setMaximum(max(1, total))
            progress.setValue(min(done, max(1, total)))

        def done(manifest: ExportManifest) -> None:
            progress.close()
            self.state.message.emit(f"Exported {manifest.total_rows:,} rows of {row.name} to {path} "
                                    f"(manifest {manifest.manifest_path.name}).")
            self.group_changed.emit("export", manifest)

        def failed(error: PanelError) -> None:
            if isinstance(error, Cancelled) and finished:  # cancelled after the file was complete: it is there
                done(finished[0])
                return
            progress.close()
            if isinstance(error, Cancelled):
                self.state.message.emit(f"The export of {row.name} was cancelled; no file was left behind.")
            else:
                show_error(self, f"Could not export {row.name}", error)
            self.group_changed.emit("export", error)

        job = self.state.runner.submit(f"Exporting group {row.name}", work, timeout=3600, on_success=done,
                                       on_error=failed, on_progress=report)
        progress.canceled.connect(job.cancel.cancel)
        progress.open()
        self.export_job = job
        return job

    # --- move and balance ------------------------------------------------------------------------------------

    def move_chosen(self, target: str | None = None) -> None:
        row = self.chosen_row()
        if row is None:
            self.state.message.emit("Choose a group first.")
            return
        self.open_move(row, target)

    def open_move(self, row: GroupRow, target: str | None = None) -> MoveGroupDialog | None:
        if not self.state.allow_change(f"moving group {row.name}"):
            return None
        over = self.balance_dialog if self.balance_dialog is not None and self.balance_dialog.isVisible() else self
        dialog = MoveGroupDialog(self.state, self.access, self.state.context.inventory.groups, row,
                                 self._all_servers(), target=target, parent=over)
        dialog.moved.connect(lambda result: self._moved(row, result))
        self.move_dialog = dialog
        dialog.open()
        return dialog

    def _moved(self, row: GroupRow, result: MoveResult) -> None:
        changes: dict[str, Any] = {"server": result.target}
        if result.active_on_target:
            changes["suspended"] = None
        updated = self.model.update_row(row.server, row.id, **changes)
        chosen = self.detail.row
        if chosen is not None and (chosen.server, chosen.id) == (row.server, row.id) and updated is not None:
            self.detail.show_row(updated)
            self.load_detail()
        self.group_changed.emit("move", result)

    def show_balance(self) -> None:
        dialog = BalanceDialog(self.state, self.access, self.state.context.inventory.groups, self._all_servers(),
                               parent=self)
        dialog.move_requested.connect(self._balance_move)
        self.balance_dialog = dialog
        dialog.open()

    def _balance_move(self, group_id: int, name: str, source: str, target: str, rows: int) -> None:
        row = GroupRow(id=group_id, name=name, server=source, members=0, created=None, suspended=None,
                       data_rows=rows)
        self.open_move(row, target)


__all__ = ["COLUMNS", "GroupsPage"]
