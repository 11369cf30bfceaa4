"""The base of the dialogs that ask for a secret (a disk passphrase, a database password): the text
is masked, never logged, and cleared from the widget once taken or when the dialog is cancelled."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtWidgets import QCheckBox, QDialog, QDialogButtonBox, QLineEdit, QPushButton, QVBoxLayout, QWidget


class SecretDialog(QDialog):
    """Open it with ``open()`` (non-blocking); read it with :meth:`take_secret` once accepted.
    The accept button is enabled once something is typed."""

    def __init__(self, title: str, *, accept_label: str, placeholder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.edit = QLineEdit()
        self.edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.edit.setPlaceholderText(placeholder)
        self.remember_box = QCheckBox("Remember in keyring")
        self._buttons = QDialogButtonBox()
        self.accept_button: QPushButton = self._buttons.addButton(accept_label, QDialogButtonBox.ButtonRole.AcceptRole)
        self.accept_button.setDefault(True)
        self.accept_button.setEnabled(False)
        self._buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self._buttons.accepted.connect(self.accept)
        self._buttons.rejected.connect(self.reject)
        self.edit.textChanged.connect(lambda text: self.accept_button.setEnabled(bool(text)))
        self.rejected.connect(self.edit.clear)

    def lay_out(self, above: Sequence[QWidget], below: Sequence[QWidget]) -> None:
        """Stack ``above``, the secret field, "Remember in keyring", ``below`` and the buttons."""
        layout = QVBoxLayout(self)
        for widget in (*above, self.edit, self.remember_box, *below, self._buttons):
            layout.addWidget(widget)
        self.edit.setFocus()

    @property
    def remember(self) -> bool:
        return self.remember_box.isEnabled() and self.remember_box.isChecked()

    def take_secret(self) -> str:
        """The typed secret; the widget forgets it."""
        value = self.edit.text()
        self.edit.clear()
        return value
