"""What every page shares: the core context, the job runner, and the latest probe of each server."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal

from services.errors import PanelError
from views.workers import JobContext, JobRunner

if TYPE_CHECKING:
    from panel.context import PanelContext
    from services.probe import ServerStatus

DEFAULT_REFRESH_SECONDS = 30
READ_ONLY_KEY = "ui.read_only"


@dataclass(frozen=True)
class PaletteAction:
    """Something the operator can do, reachable from the command palette (Ctrl+K)."""

    title: str  # "Unlock app1", "Restart nginx on app2"
    run: Callable[[], object]
    changes_something: bool = False  # disabled in read-only mode
    keywords: tuple[str, ...] = ()
    shortcut: str = ""  # shown in the shortcut list (press ?)
    page: str = ""  # the page it belongs to, for grouping
    key: str = field(default="", compare=False)  # stable id, so a page can replace its actions


class PanelState(QObject):
    status_changed = Signal(object)  # one ServerStatus
    refresh_started = Signal(str)  # server name
    message = Signal(str)  # a line for the status bar
    inventory_changed = Signal()
    read_only_changed = Signal(bool)
    actions_changed = Signal()
    notify = Signal(str, str, str)  # severity ("CRITICAL", "WARNING", "INFO"), title, text
    notify_action = Signal(str, str, str, str, object)  # the same, plus a button title and its callable
    navigate = Signal(str, object)  # page title, an optional argument (e.g. a server name)
    alerts_summary = Signal(str, int)  # worst severity of the open alerts and their count (for the tray)

    def __init__(self, context: PanelContext, runner: JobRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.runner = runner
        self.statuses: dict[str, ServerStatus] = {}
        self.read_only = True  # until the stored choice is known: new installs start read-only
        self.actions: dict[str, PaletteAction] = {}
        self._refreshing: set[str] = set()
        self.poll_timer = QTimer(self)
        self.poll_timer.timeout.connect(self.refresh_all)
        self.set_refresh_interval(DEFAULT_REFRESH_SECONDS)

    # --- read-only mode and actions -------------------------------------------------------------------

    def set_read_only(self, read_only: bool, *, remember: bool = True) -> None:
        if read_only == self.read_only:
            return
        self.read_only = read_only
        self.read_only_changed.emit(read_only)
        if remember:
            store = self.context.store
            self.runner.submit("Saving read-only mode",
                               lambda job: store.set_value(READ_ONLY_KEY, "1" if read_only else "0"), timeout=10)

    def allow_change(self, what: str) -> bool:
        """Every action that changes something asks this first. False (and says why) in read-only mode."""
        if self.read_only:
            self.message.emit(f"Read-only mode is on: {what} is disabled. Turn it off in the toolbar to act.")
            return False
        return True

    def notify_with_action(self, severity: str, title: str, text: str, action_title: str,
                           action: Callable[[], object]) -> None:
        """A notification whose button (in the banner, or a click on the tray message) does the next step."""
        self.notify_action.emit(severity, title, text, action_title, action)

    def add_action(self, action: PaletteAction) -> None:
        self.actions[action.key or action.title] = action
        self.actions_changed.emit()

    def remove_actions(self, key_prefix: str) -> None:
        for key in [k for k in self.actions if k.startswith(key_prefix)]:
            del self.actions[key]
        self.actions_changed.emit()

    def set_refresh_interval(self, seconds: int) -> None:
        self.poll_timer.start(max(5, seconds) * 1000)

    def is_refreshing(self, server: str) -> bool:
        return server in self._refreshing

    def refresh_all(self) -> None:
        for name in self.context.inventory.servers:
            self.refresh(name)

    def refresh(self, server: str) -> None:
        """Probe one server on its own serial queue; a refresh already under way is not doubled."""
        if server in self._refreshing:
            return
        self._refreshing.add(server)
        self.refresh_started.emit(server)
        context = self.context

        def probe(job: JobContext) -> ServerStatus:
            return context.probe(server, cancel=job.cancel)

        self.runner.submit(
            f"Refreshing {server}", probe, timeout=45, queue=server,
            on_success=self._store_status,
            on_error=lambda error: self._probe_failed(server, error),
            on_finished=lambda: self._refreshing.discard(server),
        )

    def _store_status(self, status: ServerStatus) -> None:
        self.statuses[status.server] = status
        self.status_changed.emit(status)

    def _probe_failed(self, server: str, error: PanelError) -> None:
        self.message.emit(f"{server}: {error}")

    def reload_inventory(self) -> None:
        """Re-read the config off the GUI thread, then tell the pages."""
        def reload(job: JobContext) -> None:
            self.context.reload()

        def done(_: object) -> None:
            for gone in set(self.statuses) - set(self.context.inventory.servers):
                del self.statuses[gone]
            self.inventory_changed.emit()
            self.refresh_all()

        self.runner.submit("Reloading the inventory", reload, timeout=10, on_success=done,
                           on_error=lambda error: self.message.emit(str(error)))
