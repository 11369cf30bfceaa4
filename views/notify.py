"""Desktop notifications: the tray where there is one, otherwise a banner inside the window."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSystemTrayIcon, QWidget

from views.style import STATE_COLOURS, dot_icon


class Banner(QWidget):
    """A dismissible strip at the top of the window, with one action button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)  # so the colour paints
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.action_button = QPushButton()
        self.close_button = QPushButton("Dismiss")
        self.close_button.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.action_button)
        layout.addWidget(self.close_button)
        self._action: Callable[[], object] | None = None
        self.action_button.clicked.connect(self._run_action)
        self.hide()

    def show_message(self, severity: str, text: str, action_title: str = "",
                     action: Callable[[], object] | None = None) -> None:
        colour = STATE_COLOURS.get(severity, "#2c6fbb")
        self.setStyleSheet(f"#banner {{ background: {colour}; }} #banner QLabel {{ color: white; }}")
        self.label.setText(f"<b>{severity}</b> — {text}")
        self._action = action
        self.action_button.setText(action_title)
        self.action_button.setVisible(action is not None)
        self.show()

    def _run_action(self) -> None:
        if self._action is not None:
            self._action()
        self.hide()


class Notifier(QObject):
    """Shows a notification in the tray (if the desktop has one) or in the window's banner."""

    shown = Signal(str, str)  # severity, text: lets tests and the timeline see what was shown

    def __init__(self, banner: Banner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.banner = banner
        self.tray: QSystemTrayIcon | None = None
        self._tray_action: Callable[[], object] | None = None  # what a click on the latest message does
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.tray = QSystemTrayIcon(dot_icon(STATE_COLOURS["OK"], 32), self)
            self.tray.setToolTip("Operator panel")
            self.tray.messageClicked.connect(self._tray_message_clicked)
            self.tray.show()

    @property
    def uses_tray(self) -> bool:
        return self.tray is not None

    def set_tray_state(self, severity: str, count: int) -> None:
        """The tray icon shows the worst severity and a count of open alerts."""
        if self.tray is None:
            return
        self.tray.setIcon(dot_icon(STATE_COLOURS.get(severity, STATE_COLOURS["OK"]), 32))
        self.tray.setToolTip(f"Operator panel: {count} open alert(s), worst {severity}" if count
                             else "Operator panel: all clear")

    def notify(self, severity: str, title: str, text: str, *, action_title: str = "",
               action: Callable[[], object] | None = None) -> None:
        if self.tray is not None:
            icon = {"CRITICAL": QSystemTrayIcon.MessageIcon.Critical,
                    "WARNING": QSystemTrayIcon.MessageIcon.Warning}.get(severity,
                                                                        QSystemTrayIcon.MessageIcon.Information)
            self._tray_action = action
            self.tray.showMessage(title, text, icon, 15000)
        # The banner shows too: a tray message is gone in seconds, the banner waits for the operator.
        self.banner.show_message(severity, f"{title}: {text}", action_title, action)
        self.shown.emit(severity, f"{title}: {text}")


    def _tray_message_clicked(self) -> None:
        if self._tray_action is not None:
            self._tray_action()


def app_icon() -> QIcon:
    return dot_icon(STATE_COLOURS["OK"], 64)
