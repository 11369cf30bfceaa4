"""The main window: a sidebar of pages, a status bar of running jobs, geometry remembered."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, Qt, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from services.errors import ConfigError, PanelError
from views.dialogs.messages import show_error
from views.garbage import freeze_startup_objects
from views.notify import Banner, Notifier
from views.workers import JobContext, JobRunner

log = logging.getLogger(__name__)


class MessagePage(QWidget):
    """Shown while loading, and when the inventory can't be used: says why and what to do."""

    def __init__(self, title: str, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        heading = QLabel(f"<h2>{title}</h2>")
        body = QLabel(text)
        body.setWordWrap(True)
        body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(heading, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(body, 0, Qt.AlignmentFlag.AlignHCenter)
        self.buttons = QHBoxLayout()
        layout.addLayout(self.buttons)
        layout.addStretch(2)


class MainWindow(QMainWindow):
    pages_ready = Signal()

    def __init__(self, config_path: Path | None, *, settings: QSettings | None = None) -> None:
        super().__init__()
        self.config_path = config_path
        self.settings = settings or QSettings("panel", "panel")
        self.setWindowTitle("Operator panel")
        self.runner = JobRunner(self)
        self.state: Any = None  # views.state.PanelState once the inventory is loaded
        self.pages: list[QWidget] = []

        self.sidebar = QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setFixedWidth(180)
        self.sidebar.currentRowChanged.connect(self._show_page)
        self.stack = QStackedWidget()
        self.banner = Banner()
        self.notifier = Notifier(self.banner, self)
        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        outer.addWidget(self.banner)
        body = QHBoxLayout()
        body.setContentsMargins(4, 4, 4, 4)
        body.addWidget(self.sidebar)
        body.addWidget(self.stack, 1)
        outer.addLayout(body, 1)
        self.setCentralWidget(central)
        self.read_only_box = QCheckBox("Read-only")
        self.read_only_box.setToolTip("While on, every action that changes something is disabled.")
        self.read_only_box.setChecked(True)
        self.read_only_box.setEnabled(False)
        self.read_only_box.toggled.connect(self._read_only_toggled)
        self.sidebar.hide()
        self.stack.addWidget(MessagePage("Loading the inventory…", str(config_path or "")))

        self.jobs_label = QLabel()
        self.cancel_button = QPushButton("Cancel all")
        self.cancel_button.setFlat(True)
        self.cancel_button.clicked.connect(self.runner.cancel_all)
        self.cancel_button.hide()
        self.statusBar().addPermanentWidget(self.read_only_box)
        self.statusBar().addPermanentWidget(self.jobs_label)
        self.statusBar().addPermanentWidget(self.cancel_button)
        self.runner.jobs_changed.connect(self._jobs_changed)
        for number in range(1, 10):
            QShortcut(QKeySequence(f"Ctrl+{number}"), self, lambda n=number: self.sidebar.setCurrentRow(n - 1))

        geometry = self.settings.value("geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        else:
            self.resize(1200, 760)

    # --- loading -------------------------------------------------------------------------------------

    def load(self) -> None:
        """Open the inventory, store and keyring, and import the pages, on a worker."""
        path = self.config_path

        def open_core(job: JobContext) -> tuple[Any, list[type], bool]:
            from panel.config import default_config_path
            from panel.context import PanelContext
            from panel.logs import setup_logging
            from views.pages.registry import available_pages
            from views.state import READ_ONLY_KEY

            setup_logging()
            context = PanelContext.open(path or default_config_path())
            read_only = context.store.get_value(READ_ONLY_KEY) != "0"
            return context, available_pages(), read_only

        self.runner.submit("Loading the inventory", open_core, timeout=30,
                           on_success=self._core_ready, on_error=self._core_failed)

    def _core_ready(self, loaded: tuple[Any, list[type], bool]) -> None:
        from views.state import PanelState

        context, page_classes, read_only = loaded
        self.config_path = context.config_path
        self.state = PanelState(context, self.runner, self)
        self.state.read_only = read_only
        self.read_only_box.setChecked(read_only)
        self.read_only_box.setEnabled(True)
        self.state.message.connect(lambda text: self.statusBar().showMessage(text, 15000))
        self.state.notify.connect(lambda severity, title, text: self.notifier.notify(severity, title, text))
        self.state.notify_action.connect(
            lambda severity, title, text, action_title, action: self.notifier.notify(
                severity, title, text, action_title=action_title, action=action))
        self.state.navigate.connect(self.navigate)
        self.state.alerts_summary.connect(self.notifier.set_tray_state)
        self._clear_stack()
        self.sidebar.clear()
        for page_class in page_classes:
            page = page_class(self.state)
            self.pages.append(page)
            self.stack.addWidget(page)
            QListWidgetItem(page.title, self.sidebar)
        from views.palette import install_palette  # Ctrl+K, "?", "Go to PAGE" and "Toggle read-only mode"

        install_palette(self)
        self.sidebar.show()
        self.sidebar.setCurrentRow(0)
        self.setWindowTitle(f"Operator panel — {context.config_path}")
        self.state.refresh_all()
        freeze_startup_objects()
        self.pages_ready.emit()

    def _core_failed(self, error: PanelError) -> None:
        self._clear_stack()
        if isinstance(error, ConfigError) and error.line is None and "does not exist" in error.detail:
            page = MessagePage(
                "No inventory yet",
                f"The panel reads its servers from {error.path}, which does not exist yet.\n\n"
                "Try it on the local demo fleet first:  python -m panel demo\n"
                "or write the file as described in the README (servers, backups, groups, vendors), "
                "then reload.",
            )
        else:
            page = MessagePage("The inventory has a problem", str(error))
            show_error(self, "The inventory can't be used", error)
        retry = QPushButton("Reload")
        retry.clicked.connect(self.load)
        page.buttons.addStretch(1)
        page.buttons.addWidget(retry)
        page.buttons.addStretch(1)
        self.stack.addWidget(page)

    def _clear_stack(self) -> None:
        while (widget := self.stack.widget(0)) is not None:
            self.stack.removeWidget(widget)
            widget.deleteLater()
        self.pages.clear()

    # --- navigation and status -------------------------------------------------------------------------

    def page(self, title: str) -> QWidget | None:
        return next((p for p in self.pages if getattr(p, "title", "") == title), None)

    def show_page(self, title: str) -> QWidget | None:
        for number, page in enumerate(self.pages):
            if getattr(page, "title", "") == title:
                self.sidebar.setCurrentRow(number)
                return page
        return None

    def navigate(self, title: str, argument: object = None) -> None:
        """Show a page, and let it focus on an item (a server, an alert) if it knows how."""
        page = self.show_page(title)
        focus = getattr(page, "focus_item", None)
        if argument is not None and callable(focus):
            focus(argument)

    def _read_only_toggled(self, checked: bool) -> None:
        if self.state is not None:
            self.state.set_read_only(checked)

    def _show_page(self, row: int) -> None:
        if 0 <= row < len(self.pages):
            page = self.pages[row]
            self.stack.setCurrentWidget(page)
            activate = getattr(page, "activate", None)
            if callable(activate):
                activate()

    def _jobs_changed(self, count: int) -> None:
        titles = [job.title for job in self.runner.active_jobs]
        self.jobs_label.setText(f"{count} running: {titles[0]}{'…' if count > 1 else ''}" if count else "")
        self.jobs_label.setToolTip("\n".join(titles))
        self.cancel_button.setVisible(count > 0)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.settings.setValue("geometry", self.saveGeometry())
        if self.state is not None:
            self.state.poll_timer.stop()
        self.runner.shutdown()
        if self.state is not None:
            self.state.context.close()
        super().closeEvent(event)
