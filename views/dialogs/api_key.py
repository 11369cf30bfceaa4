"""Setting up a vendor's API key, and the frame the Cloudflare, Billing and Mail pages share.

- :class:`ApiKeyDialog`: paste a key; it is verified with the vendor on a worker, then stored in
  the keyring (``SecretStore.set``), or kept in memory for this session when no keyring works
  (and the dialog says so). The key never appears in a message, a log line or the audit log.
- :class:`SetUpPanel`: the empty state a vendor page shows instead of an error when its config
  section or its key is missing, or when the vendor refused the key (401).
- :class:`VendorPage`: runs a page's vendor calls on workers through the vendor's client,
  waits out a 429 while saying "rate limited, retrying in N s", turns a missing or refused
  key into the set-up state, and runs the page's confirmed, audited changes.
- :func:`audited`: one audit entry with the outcome of a change, whatever it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from services.errors import Cancelled, PanelError
from services.http import ApiPaymentError, ApiRateLimited, RetryPolicy
from services.vendors import (
    ENV_VARS,
    KEY_KINDS,
    LABELS,
    PAGE_RETRY,
    Access,
    KeySetUp,
    RateLimitWait,
    VendorClient,
    VendorNotSetUp,
    build_client,
    call_patiently,
    find_key,
    key_refused,
    set_up_key,
    vendor_spec,
)
from views.dialogs.messages import ask_to_confirm
from views.state import PanelState
from views.style import STATE_COLOURS
from views.workers import Job, JobContext

if TYPE_CHECKING:
    from panel.store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")


def audited(store: Store, action: str, target: str, what: str, change: Callable[[], tuple[T, str]]) -> T:
    """Run ``change`` (it returns its result and the detail for the log) and write one audit entry:
    "ok" with that detail, or "cancelled", "declined" (a refused payment) or "failed" with ``what``."""
    try:
        result, detail = change()
    except ApiPaymentError as error:
        store.audit(action, target, "declined",
                    f"{what}: {error.decline_code or error.code or 'declined'}: {error}"[:500])
        raise
    except Cancelled:
        store.audit(action, target, "cancelled", what)
        raise
    except PanelError as error:
        store.audit(action, target, "failed", f"{what}: {error}"[:500])
        raise
    store.audit(action, target, "ok", detail)
    return result


# -- the dialog --------------------------------------------------------------------------------------


class ApiKeyDialog(QDialog):
    """Verify a key with the vendor, then store it. ``key_saved`` carries the outcome's message."""

    key_saved = Signal(str)

    def __init__(self, state: PanelState, vendor: str, parent: QWidget | None = None, *,
                 retry: RetryPolicy = PAGE_RETRY) -> None:
        super().__init__(parent)
        self.state = state
        self.vendor = vendor
        self.retry = retry
        self.job: Job | None = None
        label = LABELS[vendor]
        self.setWindowTitle(f"Set up the {label} API key")
        self.setModal(True)
        self.setMinimumWidth(520)
        intro = QLabel(
            f"<p>Paste {KEY_KINDS[vendor]}.</p>"
            f"<p>The panel checks it with {label} first, then keeps it in the system keyring (service "
            f"<code>panel</code>, entry <code>{vendor}</code>) and nowhere else. Scripts can use "
            f"<code>${ENV_VARS[vendor]}</code> instead.</p>")
        intro.setWordWrap(True)
        intro.setTextFormat(Qt.TextFormat.RichText)
        self.key_edit = QLineEdit()
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText(f"{label} API key")
        self.key_edit.setClearButtonEnabled(True)
        self.show_box = QCheckBox("Show")
        self.show_box.toggled.connect(lambda on: self.key_edit.setEchoMode(
            QLineEdit.EchoMode.Normal if on else QLineEdit.EchoMode.Password))
        key_row = QHBoxLayout()
        key_row.addWidget(self.key_edit, 1)
        key_row.addWidget(self.show_box)
        self.result_label = QLabel()
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox()
        self.save_button = self.buttons.addButton("Verify and save", QDialogButtonBox.ButtonRole.AcceptRole)
        self.save_button.setEnabled(False)
        self.save_button.setDefault(True)
        self.key_edit.textChanged.connect(lambda text: self.save_button.setEnabled(bool(text.strip())))
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(key_row)
        layout.addWidget(self.result_label)
        layout.addWidget(self.buttons)

    def _say(self, text: str, severity: str = "") -> None:
        colour = STATE_COLOURS.get(severity)
        self.result_label.setStyleSheet(f"color: {colour};" if colour else "")
        self.result_label.setText(text)

    def submit(self) -> None:
        key = self.key_edit.text().strip()
        if not key or self.job is not None:
            return
        context = self.state.context
        vendor, retry = self.vendor, self.retry
        label = LABELS[vendor]

        def work(job: JobContext) -> KeySetUp:
            spec = vendor_spec(context.inventory, vendor)
            outcome = set_up_key(context.secrets, vendor, spec, key, cancel=job.cancel, retry=retry)
            if outcome.stored is not None:
                where = "the keyring" if outcome.stored == "keyring" else "memory, for this session only"
                context.store.audit("api-key.set", vendor, "ok", f"verified with {label}; kept in {where}")
            else:
                context.store.audit("api-key.set", vendor, "refused", f"{label} refused the key")
            return outcome

        self.save_button.setEnabled(False)
        self.key_edit.setEnabled(False)
        self._say(f"Checking the key with {label}…")
        self.job = self.state.runner.submit(f"Checking the {label} key", work, timeout=60,
                                            on_success=self._done, on_error=self._failed,
                                            on_finished=self._finished)

    def _finished(self) -> None:
        if not isValid(self):
            return
        self.job = None
        self.key_edit.setEnabled(True)

    def _done(self, outcome: KeySetUp) -> None:
        if not isValid(self):
            return
        if outcome.stored is None:
            self._say(outcome.message, "CRITICAL")
            self.key_edit.selectAll()
            self.key_edit.setFocus()
            return
        self.key_edit.clear()
        self._say(outcome.message, "WARNING" if outcome.stored == "session" else "OK")
        self.state.message.emit(outcome.message)
        if outcome.stored == "session":
            self.state.notify.emit("WARNING", f"{LABELS[self.vendor]} key kept for this session only",
                                   outcome.message)
        self.key_saved.emit(outcome.message)
        self.accept()

    def _failed(self, error: PanelError) -> None:
        if not isValid(self):
            return
        self._say(f"The key could not be checked: {error}", "CRITICAL")
        self.save_button.setEnabled(bool(self.key_edit.text().strip()))

    def reject(self) -> None:
        if self.job is not None:
            self.job.cancel.cancel()
        self.key_edit.clear()
        super().reject()


# -- the empty state ---------------------------------------------------------------------------------


class SetUpPanel(QWidget):
    """What a vendor page shows when it cannot talk to the vendor yet: why, and the way out."""

    set_up_requested = Signal()

    def __init__(self, vendor: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.vendor = vendor
        self.heading = QLabel()
        self.heading.setTextFormat(Qt.TextFormat.PlainText)
        font = self.heading.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        self.heading.setFont(font)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.PlainText)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setFixedWidth(600)  # a wrapping label in a centred layout needs a width to wrap at
        self.text.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.set_up_button = QPushButton("Set up API key…")
        self.set_up_button.clicked.connect(self.set_up_requested)
        self.retry_button = QPushButton("Try again")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.set_up_button)
        buttons.addWidget(self.retry_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(self.heading, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.text, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addSpacing(8)
        layout.addLayout(buttons)
        layout.addStretch(2)

    def show_state(self, heading: str, text: str) -> None:
        self.heading.setText(heading)
        self.text.setText(text)
        # A wrapping label in a centred layout is not asked for its height at its width: say it.
        self.text.setFixedHeight(self.text.heightForWidth(self.text.width()))


# -- the page frame ----------------------------------------------------------------------------------


class VendorPage(QWidget):
    """The frame of a vendor page: the content (``self.content``, filled by the subclass) or the
    set-up state, and a status line. ``run`` does a vendor call on a worker, ``change`` a change.
    F5 (and ``reload_button``, for the subclass to place) reloads; Ctrl+F goes to the page's filter."""

    title = ""
    vendor = ""
    change_timeout = 120.0  # seconds a change may take on its worker
    loaded = Signal()  # after a full load succeeded (tests and other pages listen)

    def __init__(self, state: PanelState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.retry = PAGE_RETRY
        self.loaded_once = False
        self.needs_set_up = False
        self.confirm_box: QMessageBox | None = None
        self.key_dialog: ApiKeyDialog | None = None
        self._busy: set[str] = set()
        self.stack = QStackedWidget()
        self.content = QWidget()
        self.set_up_panel = SetUpPanel(self.vendor)
        self.set_up_panel.set_up_requested.connect(self.open_key_dialog)
        self.set_up_panel.retry_button.clicked.connect(self.reload)
        self.stack.addWidget(self.content)
        self.stack.addWidget(self.set_up_panel)
        self.status_label = QLabel()
        self.status_label.setContentsMargins(10, 2, 10, 4)
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.status_label)
        self.reload_button = QPushButton("Reload (F5)")
        self.reload_button.clicked.connect(self.reload)
        context = Qt.ShortcutContext.WidgetWithChildrenShortcut
        QShortcut(QKeySequence(Qt.Key.Key_F5), self, self.reload, context=context)
        QShortcut(QKeySequence("Ctrl+F"), self, self.focus_search, context=context)
        state.read_only_changed.connect(lambda _: self.update_buttons())

    @property
    def label(self) -> str:
        return LABELS[self.vendor]

    # -- to be filled in by the page --------------------------------------------------------------

    def reload(self) -> None:
        """Read everything the page shows (on workers)."""

    def update_buttons(self) -> None:
        """Enable or disable the changing buttons (read-only mode, selection, work under way)."""

    def focus_search(self) -> None:
        """Ctrl+F: put the focus in the page's filter."""

    @property
    def target(self) -> str:
        """What ``change`` writes in the audit log as the target of the page's changes."""
        raise NotImplementedError

    # -- life cycle -------------------------------------------------------------------------------

    def activate(self) -> None:
        if not self.loaded_once and not self._busy:
            self.reload()

    def show_content(self) -> None:
        self.needs_set_up = False
        self.stack.setCurrentWidget(self.content)

    def show_set_up(self, heading: str, text: str) -> None:
        self.needs_set_up = True
        self.set_up_panel.show_state(heading, text)
        self.stack.setCurrentWidget(self.set_up_panel)
        self.update_buttons()

    def set_status(self, text: str, severity: str = "") -> None:
        colour = STATE_COLOURS.get(severity)
        self.status_label.setStyleSheet(f"color: {colour};" if colour else "")
        self.status_label.setText(text)

    def open_key_dialog(self) -> ApiKeyDialog:
        dialog = ApiKeyDialog(self.state, self.vendor, self, retry=self.retry)
        dialog.key_saved.connect(self._key_saved)
        self.key_dialog = dialog
        dialog.open()
        return dialog

    def _key_saved(self, message: str) -> None:
        self.set_status(message, "OK")
        self.reload()

    # -- running vendor calls ---------------------------------------------------------------------

    def busy(self, what: str) -> bool:
        return what in self._busy

    def run(self, title: str, work: Callable[[Any, JobContext], T], on_success: Callable[[T], object], *,
            key: str | None = None, timeout: float = 120.0, on_error: Callable[[PanelError], object] | None = None,
            on_progress: Callable[[Any], object] | None = None, patient: bool = True) -> Job | None:
        """Run ``work(client, job)`` on a worker with a fresh client (closed after). A 429 is waited out
        (``patient``: the whole ``work`` runs again, so it must be safe to repeat) while the status line
        says so. ``key`` names the work so it is not started twice at once."""
        key = key or title
        if key in self._busy:
            return None
        self._busy.add(key)
        context = self.state.context
        vendor, retry = self.vendor, self.retry

        def job(job_context: JobContext) -> T:
            found = find_key(context.secrets, vendor)
            spec = vendor_spec(context.inventory, vendor)
            if spec is None or found is None:
                raise Access(vendor, spec, found[1] if found else None).not_set_up()
            client: VendorClient = build_client(vendor, spec, found[0], retry=retry)
            with client:
                if not patient:
                    return work(client, job_context)
                return call_patiently(lambda: work(client, job_context), cancel=job_context.cancel,
                                      on_wait=job_context.report)

        def progress(report: Any) -> None:
            if not isValid(self):
                return
            if isinstance(report, RateLimitWait):
                self.set_status(report.message + "…", "WARNING")
                self.state.message.emit(report.message)
            elif on_progress is not None:
                on_progress(report)

        def succeeded(result: Any) -> None:
            if isValid(self):
                on_success(result)

        def failed(error: PanelError) -> None:
            if isValid(self) and not self.handle_error(error) and on_error is not None:
                on_error(error)

        def finished() -> None:
            if isValid(self):
                self._busy.discard(key)
                self.update_buttons()

        # The page may be gone when a job ends (the window closing): every callback checks first.
        submitted = self.state.runner.submit(title, job, timeout=timeout, on_success=succeeded, on_error=failed,
                                             on_progress=progress, on_finished=finished)
        self.update_buttons()
        return submitted

    def handle_error(self, error: PanelError) -> bool:
        """Show a missing or refused key as the set-up state (True: handled); otherwise say it in the
        status line, and let the caller add to it (False)."""
        if isinstance(error, VendorNotSetUp):
            heading = f"{self.label} is not set up" if error.reason == "no-config" else \
                f"No {self.label} API key yet"
            self.show_set_up(heading, error.message)
            self.set_status("")
            return True
        if key_refused(error):
            self.show_set_up(f"{self.label} refused the API key",
                             f"The key was refused: {error}\n\nSet up a new key (it replaces the old one).")
            self.set_status(f"{self.label}: the key was refused.", "CRITICAL")
            return True
        if isinstance(error, Cancelled):
            self.set_status(str(error))
            return False
        if isinstance(error, ApiRateLimited):
            self.set_status(f"{self.label} rate limited: {error}", "WARNING")
        else:
            self.set_status(str(error), "CRITICAL")
        self.state.message.emit(f"{self.label}: {error}")
        return False

    # -- changing ---------------------------------------------------------------------------------

    def ask(self, title: str, text: str, yes: str, then: Callable[[], object], *, destructive: bool = True) -> None:
        self.confirm_box = ask_to_confirm(self, title, text, yes, then, destructive=destructive)

    def change(self, title: str, action: str, work: Callable[[Any, JobContext], tuple[Any, str]],
               on_done: Callable[[Any], object], *, what: str) -> None:
        """Run a change on a worker: refused in read-only mode, waits out a 429 (the vendor did not act),
        and writes one audit entry with the outcome. ``work`` returns (result, audit detail)."""
        if not self.state.allow_change(what):
            return
        store, target = self.state.context.store, self.target

        def job(client: Any, job_context: JobContext) -> Any:
            # Patience inside the audit: the entry tells how the change ended, not each 429 on the way.
            return audited(store, action, target, what, lambda: call_patiently(
                lambda: work(client, job_context), cancel=job_context.cancel, on_wait=job_context.report))

        def failed(error: PanelError) -> None:
            self.state.notify.emit("WARNING", f"{self.label}: {what} failed", str(error))

        self.set_status(f"{title}…")
        self.run(title, job, on_done, key=f"change:{action}", patient=False, on_error=failed,
                 timeout=self.change_timeout)
