"""Asking for a database password: masked, never logged, cleared from the widget once taken.

"Remember in keyring" is offered only when the keyring works; otherwise the panel keeps the
password in memory for this session and asks again next time (DESIGN.md, "Secrets").
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


class PasswordDialog(QDialog):
    """Open it with ``open()`` (non-blocking); read it with :meth:`take_password` once accepted."""

    def __init__(self, title: str, text: str, entry: str, *, can_remember: bool, keyring_message: str = "",
                 problem: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setMinimumWidth(460)
        intro = QLabel(text)
        intro.setWordWrap(True)
        intro.setTextFormat(Qt.TextFormat.RichText)
        self.problem_label = QLabel(problem)
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet("color: #d0342c;")
        self.problem_label.setVisible(bool(problem))
        self.edit = QLineEdit()
        self.edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.edit.setPlaceholderText("password")
        self.remember_box = QCheckBox("Remember in keyring")
        self.remember_box.setChecked(can_remember)
        self.remember_box.setEnabled(can_remember)
        self.remember_box.setVisible(can_remember)
        self.remember_box.setToolTip(f"Kept as the keyring entry {entry!r} of the service 'panel'.")
        self.no_keyring_label = QLabel(keyring_message or "No keyring works on this system, so the panel keeps "
                                       "the password for this session only and asks again next time.")
        self.no_keyring_label.setWordWrap(True)
        self.no_keyring_label.setVisible(not can_remember)
        buttons = QDialogButtonBox()
        self.ok_button: QPushButton = buttons.addButton("Connect", QDialogButtonBox.ButtonRole.AcceptRole)
        self.ok_button.setDefault(True)
        self.ok_button.setEnabled(False)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.edit.textChanged.connect(lambda value: self.ok_button.setEnabled(bool(value)))
        self.rejected.connect(self.edit.clear)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.problem_label)
        layout.addWidget(self.edit)
        layout.addWidget(self.remember_box)
        layout.addWidget(self.no_keyring_label)
        layout.addWidget(buttons)
        self.edit.setFocus()

    @property
    def remember(self) -> bool:
        return self.remember_box.isEnabled() and self.remember_box.isChecked()

    def take_password(self) -> str:
        """The typed password; the widget forgets it."""
        value = self.edit.text()
        self.edit.clear()
        return value
