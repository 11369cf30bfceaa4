"""Asking for a database password: masked, never logged, cleared from the widget once taken.

"Remember in keyring" is offered only when the keyring works; otherwise the panel keeps the
password in memory for this session and asks again next time (DESIGN.md, "Secrets").
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

from views.dialogs.secret import SecretDialog
from views.style import STATE_COLOURS


class PasswordDialog(SecretDialog):
    """Open it with ``open()`` (non-blocking); read it with ``take_secret()`` once accepted."""

    def __init__(self, title: str, text: str, entry: str, *, can_remember: bool, keyring_message: str = "",
                 problem: str = "", parent: QWidget | None = None) -> None:
        super().__init__(title, accept_label="Connect", placeholder="password", parent=parent)
        self.setMinimumWidth(460)
        intro = QLabel(text)
        intro.setWordWrap(True)
        intro.setTextFormat(Qt.TextFormat.RichText)
        self.problem_label = QLabel(problem)
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet(f"color: {STATE_COLOURS['CRITICAL']};")
        self.problem_label.setVisible(bool(problem))
        self.remember_box.setChecked(can_remember)
        self.remember_box.setEnabled(can_remember)
        self.remember_box.setVisible(can_remember)
        self.remember_box.setToolTip(f"Kept as the keyring entry {entry!r} of the service 'panel'.")
        self.no_keyring_label = QLabel(keyring_message or "No keyring works on this system, so the panel keeps "
                                       "the password for this session only and asks again next time.")
        self.no_keyring_label.setWordWrap(True)
        self.no_keyring_label.setVisible(not can_remember)
        self.lay_out([intro, self.problem_label], [self.no_keyring_label])
