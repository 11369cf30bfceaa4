"""Unlock: every encrypted server with its lock state and volumes, and the way back after a reboot.

- Unlock one server or several at once (one progress row each), with live progress through the
  procedure's steps (detect, verify, passphrase, send, unlocked, boot, up) and a timeline after.
- Reboot and unlock, in one flow (confirmation, audit).
- Check setup (dropbear-initramfs, authorized_keys, the pin) and fix it with a preview; pin the
  initramfs key from the running system.
- Watch: a server the fleet poller finds locked raises a notification with "Unlock" one click away;
  auto-unlock on sight is an opt-in per server (store kv), off by default.

The passphrase comes from the keyring, or from :class:`PassphraseDialog`, asked for from the worker
thread through :class:`PassphraseBroker`. It is never logged, audited, or kept after the unlock.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QItemSelection, QObject, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from panel.commands.unlock import (
    audit_unlock,
    auto_unlock_enabled,
    keyring_passphrase,
    pin_initramfs_key,
    set_auto_unlock,
    unlock_options,
    unlock_request,
)
from panel.secrets import SecretStore, luks_entry
from services.cancel import CancelToken
from services.errors import Cancelled, HostKeyError, PanelError, SecretUnavailable
from services.probe import ServerState, ServerStatus
from services.unlock import (
    DEFAULT_INSTALL_COMMAND,
    DEFAULT_UPDATE_COMMAND,
    InitramfsKey,
    InitramfsPaths,
    SetupFix,
    SetupReport,
    Step,
    TooManyTries,
    UnlockProgress,
    UnlockResult,
    WrongPassphrase,
    apply_setup_fix,
    check_setup,
    panel_public_key,
    plan_setup_fix,
    preferred_key,
    read_initramfs_host_keys,
    reboot_and_unlock,
    unlock_server,
)
from views.dialogs.messages import show_error
from views.dialogs.passphrase import PassphraseDialog
from views.models.unlock import UnlockModel
from views.state import PaletteAction, PanelState
from views.style import monospace
from views.tables import row_table
from views.workers import JobContext

_ALL_VOLUMES = "\0all"  # key of a passphrase typed for every volume of a server


# --- asking for the passphrase from a worker thread ---------------------------------------------------


@dataclass
class PassphraseQuestion:
    server: str
    volume: str | None
    can_remember: bool
    keyring_message: str
    several_volumes: bool
    answered: threading.Event = field(default_factory=threading.Event)
    value: str | None = None
    remember: bool = False
    all_volumes: bool = True


class PassphraseBroker(QObject):
    """Lets a worker ask the operator: the question crosses to the GUI thread as a queued signal,
    the worker waits (cancellably) for the dialog's answer."""

    asked = Signal(object)  # a PassphraseQuestion, shown on the GUI thread

    def __init__(self, parent_widget: QWidget) -> None:
        super().__init__(parent_widget)
        self._parent_widget = parent_widget
        self.dialog: PassphraseDialog | None = None
        self.asked.connect(self._show)

    def ask(self, question: PassphraseQuestion, cancel: CancelToken) -> None:
        """Called on a worker thread. Returns when the operator answered; raises Cancelled."""
        self.asked.emit(question)
        while not question.answered.wait(0.2):
            cancel.raise_if_cancelled(f"Unlocking {question.server}")

    def _show(self, question: PassphraseQuestion) -> None:
        dialog = PassphraseDialog(question.server, question.volume, can_remember=question.can_remember,
                                  keyring_message=question.keyring_message,
                                  several_volumes=question.several_volumes, parent=self._parent_widget)
        self.dialog = dialog

        def accepted() -> None:
            question.value = dialog.take_secret()
            question.remember = dialog.remember
            question.all_volumes = dialog.all_volumes
            question.answered.set()

        def rejected() -> None:
            question.value = None
            question.answered.set()

        dialog.accepted.connect(accepted)
        dialog.rejected.connect(rejected)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()


class WindowPassphrases:
    """The passphrase provider of one unlock in the window: keyring first, else ask (unless auto)."""

    def __init__(self, secrets: SecretStore, server: str, volumes: tuple[str, ...], broker: PassphraseBroker | None,
                 cancel: CancelToken) -> None:
        self.secrets = secrets
        self.server = server
        self.volumes = volumes
        self.broker = broker  # None: never ask (auto-unlock)
        self.cancel = cancel
        self._typed: dict[str | None, str] = {}
        self._remember: set[str | None] = set()

    def __call__(self, volume: str | None) -> str:
        value = keyring_passphrase(self.secrets, self.server, volume)
        if value is not None:
            return value
        for key in (volume, _ALL_VOLUMES):
            if key in self._typed:
                return self._typed[key]
        if self.broker is None:
            raise SecretUnavailable(f"Auto-unlock of {self.server} needs its passphrase in the keyring "
                                    f"({luks_entry(self.server)}); it never asks. Nothing was sent.")
        status = self.secrets.status()
        question = PassphraseQuestion(self.server, volume, status.can_remember, status.message,
                                      len(self.volumes) > 1)
        self.broker.ask(question, self.cancel)
        if not question.value:
            raise Cancelled(f"Unlocking {self.server} (no passphrase given)")
        key = _ALL_VOLUMES if question.all_volumes or volume is None else volume
        self._typed[key] = question.value
        if question.remember:
            self._remember.add(key)
        return question.value

    def store_remembered(self) -> list[str]:
        """After a successful unlock: keep what the operator asked to remember. Returns the entry names."""
        stored = []
        for key in self._remember:
            entry = luks_entry(self.server) if key in (None, _ALL_VOLUMES) else luks_entry(self.server, key)
            self.secrets.set(entry, self._typed[key])
            stored.append(entry)
        return stored

    def forget(self) -> None:
        self._typed.clear()
        self._remember.clear()


# --- the setup dialog ---------------------------------------------------------------------------------


class SetupDialog(QDialog):
    """The setup check's findings and, when something is missing, the fix's exact preview."""

    def __init__(self, report: SetupReport, fix: SetupFix | None, *, read_only: bool,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Remote unlock setup of {report.server}")
        self.fix = fix
        rows = "".join(
            f"<tr><td>{'✔' if item.ok else '✘'}</td><td><b>{html.escape(item.name)}</b></td>"
            f"<td>{html.escape(item.detail)}</td></tr>" for item in report.items())
        summary = QLabel(f"<table cellspacing='4'>{rows}</table>")
        summary.setWordWrap(True)
        summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.addWidget(summary)
        self.preview = QPlainTextEdit()
        self.preview.setReadOnly(True)
        self.preview.setFont(monospace())
        buttons = QDialogButtonBox()
        self.apply_button = buttons.addButton("Apply this fix", QDialogButtonBox.ButtonRole.AcceptRole)
        close = buttons.addButton(QDialogButtonBox.StandardButton.Close)
        close.setDefault(True)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        if fix is None:
            layout.addWidget(QLabel("Nothing to fix."))
            self.apply_button.hide()
        else:
            layout.addWidget(QLabel("The fix (nothing runs until you apply it):"))
            self.preview.setPlainText(fix.preview())
            layout.addWidget(self.preview)
            self.apply_button.setEnabled(not read_only)
            if read_only:
                self.apply_button.setToolTip("Read-only mode is on.")
        layout.addWidget(buttons)
        self.resize(720, 480)


# --- the page ------------------------------------------------------------------------------------------


def _initramfs_defaults(server: str) -> InitramfsPaths:
    return InitramfsPaths()


class UnlockPage(QWidget):
    title = "Unlock"

    def __init__(self, state: PanelState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.broker = PassphraseBroker(self)
        self.model = UnlockModel(self)
        # Hooks with Debian's defaults; the lab and tests point them at a lab server.
        self.paths_for: Callable[[str], InitramfsPaths] = _initramfs_defaults
        self.reboot_action: Callable[[str], Callable[[], object] | None] = lambda server: None
        self.install_command = DEFAULT_INSTALL_COMMAND
        self.update_command = DEFAULT_UPDATE_COMMAND
        self.wait_seconds = 300.0
        self.last_box: QMessageBox | None = None  # the latest confirmation or error, for keyboard users and tests
        self.setup_dialog: SetupDialog | None = None
        self._last_state: dict[str, ServerState] = {}
        self._went_down: dict[str, dt.datetime] = {}
        self._busy: set[str] = set()

        self.table = row_table(self.model, multi_select=True)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.table.doubleClicked.connect(lambda _: self.unlock_selected())

        self.summary = QLabel()
        self.unlock_button = QPushButton("&Unlock selected")
        self.unlock_button.setToolTip("Send each selected server's passphrase (keyring, or asked) and follow it "
                                      "until its system is up. Several run in parallel.")
        self.unlock_button.clicked.connect(self.unlock_selected)
        self.reboot_button = QPushButton("Reboot and unlock…")
        self.reboot_button.clicked.connect(self.reboot_selected)
        self.setup_button = QPushButton("Check setup…")
        self.setup_button.clicked.connect(self.check_setup_selected)
        self.pin_button = QPushButton("Pin initramfs key…")
        self.pin_button.setToolTip("Read the initramfs host key from the running system (verified session) "
                                   "and pin it, so no first-use trust is needed at boot.")
        self.pin_button.clicked.connect(self.pin_selected)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        toolbar = QHBoxLayout()
        toolbar.addWidget(self.summary, 1)
        for button in (self.unlock_button, self.reboot_button, self.setup_button, self.pin_button,
                       self.refresh_button):
            toolbar.addWidget(button)

        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setFont(monospace())
        self.log_view.setPlaceholderText(
            "The steps of the selected server's last unlock appear here: the initramfs host key check, "
            "the passphrase sent, and each volume until the system is up.\n\nA server that rebooted and "
            "waits for its passphrase shows as 'locked' above; select it and press Unlock.")
        self.auto_box = QCheckBox("Auto-unlock this server when it is seen locked (passphrase from the keyring)")
        self.auto_box.clicked.connect(self._auto_clicked)
        detail = QWidget()
        detail_layout = QVBoxLayout(detail)
        detail_layout.setContentsMargins(0, 0, 0, 0)
        detail_layout.addWidget(self.log_view)
        detail_layout.addWidget(self.auto_box)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(detail)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.addLayout(toolbar)
        layout.addWidget(splitter)

        QShortcut(QKeySequence("Ctrl+U"), self, self.unlock_selected,
                  context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        state.status_changed.connect(self._status_changed)
        state.inventory_changed.connect(self.load_servers)
        state.read_only_changed.connect(lambda _: self._update_buttons())
        self.load_servers()

    # --- servers, selection, actions ---------------------------------------------------------------------

    def encrypted_servers(self) -> list[str]:
        return [name for name, spec in self.state.context.inventory.servers.items() if spec.unlock_port is not None]

    def load_servers(self) -> None:
        inventory = self.state.context.inventory
        rows = [(name, f"{inventory.servers[name].host}:{inventory.servers[name].unlock_port}",
                 inventory.servers[name].unlock_volumes) for name in self.encrypted_servers()]
        self.model.set_servers(rows, self.state.statuses)
        for name, status in self.state.statuses.items():
            self._last_state.setdefault(name, status.state)
        if rows and not self.selected_servers():
            self.table.selectRow(0)
        self._register_actions()
        self._load_auto_flags()
        self._update_summary()
        self._update_buttons()

    def _register_actions(self) -> None:
        self.state.remove_actions("unlock:")
        for name in self.encrypted_servers():
            self.state.add_action(PaletteAction(
                f"Unlock {name}", functools.partial(self.unlock, [name]), changes_something=True,
                keywords=("unlock", "luks", "passphrase", "initramfs", "dropbear", name), page=self.title,
                key=f"unlock:{name}"))
            self.state.add_action(PaletteAction(
                f"Reboot and unlock {name}", functools.partial(self.reboot_and_unlock, name),
                changes_something=True,
                keywords=("reboot", "restart", "unlock", name), page=self.title, key=f"unlock:reboot:{name}"))

    def _load_auto_flags(self) -> None:
        store = self.state.context.store
        names = self.encrypted_servers()

        def load(job: JobContext) -> dict[str, bool]:
            return {name: auto_unlock_enabled(store, name) for name in names}

        def loaded(flags: dict[str, bool]) -> None:
            for name, enabled in flags.items():
                self.model.set_auto(name, enabled)
            self._selection_changed()

        self.state.runner.submit("Reading the auto-unlock settings", load, timeout=10, on_success=loaded,
                                 on_error=lambda error: self.state.message.emit(str(error)))

    def selected_servers(self) -> list[str]:
        rows = sorted(index.row() for index in self.table.selectionModel().selectedRows())
        return [row.server for number in rows if (row := self.model.server_at(number)) is not None]

    def focus_item(self, argument: object) -> None:
        number = self.model.row_of(str(argument))
        if number >= 0:
            self.table.selectRow(number)
            self.table.setFocus()

    def activate(self) -> None:
        for name in self.encrypted_servers():
            if name not in self.state.statuses:
                self.state.refresh(name)

    def refresh(self) -> None:
        for name in self.encrypted_servers():
            self.state.refresh(name)

    def _update_summary(self) -> None:
        names = self.encrypted_servers()
        locked = [n for n in names if (s := self.state.statuses.get(n)) is not None and s.state is ServerState.LOCKED]
        text = f"{len(names)} encrypted server(s)"
        if locked:
            text += f" · locked: {', '.join(locked)}"
        if not names:
            text = "No server has an unlock_port: nothing here needs unlocking."
        self.summary.setText(text)

    def _update_buttons(self) -> None:
        selected = self.selected_servers()
        writable = not self.state.read_only
        tip = "" if writable else "Read-only mode is on."
        for button in (self.unlock_button, self.reboot_button, self.pin_button):
            button.setEnabled(writable and bool(selected))
            button.setToolTip(tip or button.toolTip())
        self.reboot_button.setEnabled(writable and len(selected) == 1)
        self.pin_button.setEnabled(writable and len(selected) == 1)
        self.setup_button.setEnabled(len(selected) == 1)
        self.auto_box.setEnabled(writable and len(selected) == 1)

    def _selection_changed(self, *_: QItemSelection) -> None:
        self._update_buttons()
        selected = self.selected_servers()
        row = self.model.row_for(selected[0]) if len(selected) == 1 else None
        self.auto_box.setChecked(bool(row and row.auto))
        self._show_log(row.server if row else None)

    def _show_log(self, server: str | None) -> None:
        row = self.model.row_for(server) if server else None
        if row is None:
            self.log_view.setPlainText("")
            return
        started = row.events[0].at if row.events else None
        lines = [event.line(started) for event in row.events]
        if row.result:
            lines += ["", row.result]
        self.log_view.setPlainText("\n".join(lines))
        self.log_view.verticalScrollBar().setValue(self.log_view.verticalScrollBar().maximum())

    # --- watching the fleet poller ---------------------------------------------------------------------

    def _status_changed(self, status: ServerStatus) -> None:
        server = status.server
        previous = self._last_state.get(server)
        self._last_state[server] = status.state
        self.model.update_status(status)
        self._update_summary()
        if status.state is not ServerState.UP and previous is ServerState.UP:
            self._went_down[server] = status.checked_at
        if status.state is ServerState.UP:
            self._went_down.pop(server, None)
        if status.state is ServerState.LOCKED and previous is not ServerState.LOCKED and server not in self._busy:
            self._became_locked(server)

    def _became_locked(self, server: str) -> None:
        row = self.model.row_for(server)
        if row is not None and row.auto:
            if self.state.read_only:
                self._notify("WARNING", f"{server} is locked",
                             "Auto-unlock is on, but read-only mode is on, so it did not run.", server)
            else:
                self._notify("INFO", f"{server} is locked", "Auto-unlock is on: unlocking it with the keyring's "
                                                              "passphrase.", server)
                self._start(server, reboot=False, auto=True)
            return
        self._notify("CRITICAL", f"{server} is locked",
                     "It waits in its initramfs for the disk passphrase.", server)

    def _notify(self, severity: str, title: str, text: str, server: str) -> None:
        self.state.notify.emit(severity, title, text)
        # The window's banner gets the action button (state.notify carries no action).
        notifier = getattr(self.window(), "notifier", None)
        banner = getattr(notifier, "banner", None)
        if banner is not None:
            banner.show_message(severity, f"{title}: {text}", f"Unlock {server}",
                                lambda: self._unlock_from_notification(server))

    def _unlock_from_notification(self, server: str) -> None:
        self.state.navigate.emit(self.title, server)
        self.unlock([server])

    # --- unlocking -------------------------------------------------------------------------------------

    def unlock_selected(self) -> None:
        self.unlock(self.selected_servers())

    def unlock(self, servers: list[str]) -> None:
        servers = [s for s in servers if s not in self._busy]
        if not servers or not self.state.allow_change(f"Unlocking {', '.join(servers)}"):
            return
        for server in servers:
            self._start(server, reboot=False, auto=False)

    def reboot_selected(self) -> None:
        selected = self.selected_servers()
        if len(selected) == 1:
            self.reboot_and_unlock(selected[0])

    def reboot_and_unlock(self, server: str) -> None:
        if server in self._busy or not self.state.allow_change(f"Rebooting {server}"):
            return
        box = QMessageBox(QMessageBox.Icon.Warning, f"Reboot {server}?",
                          f"Reboot {server} now? The panel follows it down, unlocks it with the keyring's passphrase "
                          "(or asks) as soon as its initramfs appears, and waits until its system is up.",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.button(QMessageBox.StandardButton.Yes).setText("Reboot and unlock")

        def answered(button: int) -> None:
            if button == QMessageBox.StandardButton.Yes:
                self._start(server, reboot=True, auto=False)
            else:
                store = self.state.context.store
                self.state.runner.submit(f"Auditing {server}", lambda job: store.audit(
                    "reboot", server, "refused", "not confirmed (window)"), timeout=10)

        box.finished.connect(answered)
        self.last_box = box
        box.open()

    def _start(self, server: str, *, reboot: bool, auto: bool) -> None:
        context = self.state.context
        broker = None if auto else self.broker
        reboot_effect = self.reboot_action(server) if reboot else None
        went_down = self._went_down.get(server)
        wait = self.wait_seconds
        via = "auto-unlock" if auto else "window"
        self._busy.add(server)
        self.model.start(server, "Rebooting…" if reboot else "Looking for the initramfs…")
        self._show_log_if_selected(server)

        def work(job: JobContext) -> UnlockResult:
            spec = context.spec(server)
            provider = WindowPassphrases(context.secrets, server, spec.unlock_volumes, broker, job.cancel)
            try:
                request = unlock_request(context, server, provider, went_down_at=went_down)
                options = unlock_options(context, server, wait=wait)
                if reboot:
                    how = options.reboot_command if reboot_effect is None else "the configured reboot action"
                    context.store.audit("reboot", server, "ok", f"{how}, then unlock ({via})")
                    result = reboot_and_unlock(context.pool, request, options, reboot=reboot_effect,
                                               progress=job.report, cancel=job.cancel)
                else:
                    result = unlock_server(context.pool, request, options, progress=job.report, cancel=job.cancel)
            except PanelError as error:
                audit_unlock(context.store, server, error=error, via=via)
                raise
            else:
                audit_unlock(context.store, server, result, via=via)
                try:
                    for entry in provider.store_remembered():
                        context.store.audit("secret.store", server, "ok", f"keyring entry {entry} (after unlock)")
                except PanelError as error:
                    job.report(UnlockProgress(Step.UP, None, f"The passphrase was not remembered: {error}"))
                return result
            finally:
                provider.forget()

        self.state.runner.submit(
            f"{'Rebooting and unlocking' if reboot else 'Unlocking'} {server}", work, timeout=wait + 60,
            queue=f"unlock/{server}",
            on_progress=lambda event: self._progress(server, event),
            on_success=lambda result: self._succeeded(server, result),
            on_error=lambda error: self._failed(server, error),
            on_finished=lambda: self._finished(server),
        )

    def _show_log_if_selected(self, server: str) -> None:
        if self.selected_servers() == [server]:
            self._show_log(server)

    def _progress(self, server: str, event: object) -> None:
        if isinstance(event, UnlockProgress):
            self.model.progress(server, event)
            self._show_log_if_selected(server)

    def _succeeded(self, server: str, result: UnlockResult) -> None:
        text = result.summary()
        if result.timeline.summary():
            text += "\n" + "\n".join(result.timeline.lines())
        self.model.finish(server, text, True)
        self.state.message.emit(result.summary())
        self._show_log_if_selected(server)

    def _failed(self, server: str, error: PanelError) -> None:
        self.model.finish(server, str(error), False)
        self.state.message.emit(f"{server}: {error}")
        self._show_log_if_selected(server)
        if isinstance(error, HostKeyError | WrongPassphrase | TooManyTries):
            self.last_box = show_error(self, f"{server} was not unlocked", error)

    def _finished(self, server: str) -> None:
        self._busy.discard(server)
        row = self.model.row_for(server)
        if row is not None and row.busy:  # cancelled before any result
            self.model.finish(server, "stopped", False)
        self.state.refresh(server)

    # --- auto-unlock, setup, pin -------------------------------------------------------------------------

    def _auto_clicked(self, checked: bool) -> None:
        selected = self.selected_servers()
        if len(selected) != 1:
            return
        server = selected[0]
        if not self.state.allow_change(f"Changing auto-unlock of {server}"):
            self.auto_box.setChecked(not checked)
            return
        store = self.state.context.store
        self.state.runner.submit(f"Auto-unlock of {server}", lambda job: set_auto_unlock(store, server, checked),
                                 timeout=10, on_success=lambda _: self.model.set_auto(server, checked),
                                 on_error=lambda error: self.state.message.emit(str(error)))

    def check_setup_selected(self) -> None:
        selected = self.selected_servers()
        if len(selected) == 1:
            self.check_setup(selected[0])

    def check_setup(self, server: str) -> None:
        context = self.state.context
        paths = self.paths_for(server)
        install, update = self.install_command, self.update_command

        def work(job: JobContext) -> tuple[SetupReport, SetupFix | None]:
            initramfs = context.initramfs_endpoint(server)
            if initramfs is None:
                raise PanelError(f"{server} has no unlock_port.")
            report = check_setup(context.runner(server), initramfs,
                                 panel_key=panel_public_key(context.system_endpoint(server)), paths=paths,
                                 cancel=job.cancel)
            return report, plan_setup_fix(report, install_command=install, update_command=update)

        self.state.runner.submit(f"Checking the unlock setup of {server}", work, timeout=60, queue=server,
                                 on_success=lambda found: self._show_setup(server, *found),
                                 on_error=lambda error: self._show_error(f"Setup check of {server} failed", error))

    def _show_setup(self, server: str, report: SetupReport, fix: SetupFix | None) -> None:
        dialog = SetupDialog(report, fix, read_only=self.state.read_only, parent=self)
        dialog.accepted.connect(lambda: self._apply_fix(server, fix) if fix is not None else None)
        dialog.finished.connect(dialog.deleteLater)
        self.setup_dialog = dialog
        dialog.open()

    def _apply_fix(self, server: str, fix: SetupFix) -> None:
        if not self.state.allow_change(f"Fixing the unlock setup of {server}"):
            return
        context = self.state.context
        paths = self.paths_for(server)

        def work(job: JobContext) -> bool:
            runner = context.runner(server)
            try:
                apply_setup_fix(runner, fix, cancel=job.cancel)
            except PanelError as error:
                context.store.audit("unlock.setup", server, "failed", f"{'; '.join(fix.steps)}: {error}")
                raise
            context.store.audit("unlock.setup", server, "ok", "; ".join(fix.steps) + " (window)")
            if fix.pin:
                key = preferred_key(read_initramfs_host_keys(runner, paths, cancel=job.cancel))
                if key is not None:
                    return pin_initramfs_key(context, server, key)
            return False

        def done(pinned: bool) -> None:
            self.state.message.emit(f"The unlock setup of {server} was fixed" + (" and its key pinned." if pinned
                                                                                 else "."))
            if pinned:
                self.state.reload_inventory()
            self.check_setup(server)

        self.state.runner.submit(f"Fixing the unlock setup of {server}", work, timeout=900, queue=server,
                                 on_success=done, on_error=lambda error: self._show_error("The fix failed", error))

    def pin_selected(self) -> None:
        selected = self.selected_servers()
        if len(selected) == 1:
            self.pin_key(selected[0])

    def pin_key(self, server: str) -> None:
        if not self.state.allow_change(f"Pinning the initramfs key of {server}"):
            return
        context = self.state.context
        paths = self.paths_for(server)

        def read(job: JobContext) -> InitramfsKey | None:
            return preferred_key(read_initramfs_host_keys(context.runner(server), paths, cancel=job.cancel))

        self.state.runner.submit(f"Reading the initramfs key of {server}", read, timeout=60, queue=server,
                                 on_success=lambda key: self._confirm_pin(server, key),
                                 on_error=lambda error: self._show_error("Could not read the key", error))

    def _confirm_pin(self, server: str, key: InitramfsKey | None) -> None:
        if key is None:
            self._show_error(f"No initramfs key on {server}",
                             f"No dropbear_*_host_key was found under {', '.join(self.paths_for(server).dirs())}. "
                             "Is dropbear-initramfs installed? (Check setup…)")
            return
        box = QMessageBox(QMessageBox.Icon.Question, f"Pin the initramfs key of {server}?",
                          f"Read through {server}'s verified system session from {key.path}:\n\n"
                          f"{key.key.key_type} {key.key.fingerprint}\n\nPin it as unlock_host_key, so the panel "
                          "checks the initramfs against it at boot?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.button(QMessageBox.StandardButton.Yes).setText("Pin this key")
        context = self.state.context

        def answered(button: int) -> None:
            if button != QMessageBox.StandardButton.Yes:
                return
            self.state.runner.submit(
                f"Pinning the initramfs key of {server}", lambda job: pin_initramfs_key(context, server, key),
                timeout=30, queue=server,
                on_success=lambda changed: self._pinned(server, bool(changed)),
                on_error=lambda error: self._show_error("The key was not pinned", error))

        box.finished.connect(answered)
        self.last_box = box
        box.open()

    def _pinned(self, server: str, changed: bool) -> None:
        self.state.message.emit(f"The initramfs key of {server} is pinned." if changed
                                else f"The initramfs key of {server} was pinned already.")
        if changed:
            self.state.reload_inventory()

    def _show_error(self, title: str, error: PanelError | str) -> None:
        self.last_box = show_error(self, title, error)
