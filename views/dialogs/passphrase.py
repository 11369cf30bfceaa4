"""Asking for a disk passphrase: masked, never logged, cleared from the widget once taken."""

from __future__ import annotations

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


class PassphraseDialog(QDialog):
    """Open it with ``open()`` (non-blocking); read it with :meth:`take_passphrase` once accepted."""

    def __init__(
        self,
        server: str,
        volume: str | None,
        *,
        can_remember: bool,
        keyring_message: str = "",
        several_volumes: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        what = f"volume <b>{volume}</b> of <b>{server}</b>" if volume else f"the disk of <b>{server}</b>"
        self.setWindowTitle(f"Unlock {server}")
        intro = QLabel(f"<p>The passphrase for {what}.</p><p>The initramfs key was verified; the passphrase "
                       "goes only to it, and the panel keeps it no longer than the unlock.</p>")
        intro.setWordWrap(True)
        self.edit = QLineEdit()
        self.edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.edit.setPlaceholderText("passphrase")
        self.remember_box = QCheckBox("Remember in keyring")
        self.remember_box.setEnabled(can_remember)
        self.remember_box.setToolTip(
            "Stored once the unlock succeeds, as a keyring entry of the service 'panel'." if can_remember
            else (keyring_message or "No keyring works on this system, so the panel will ask each time."))
        self.all_volumes_box = QCheckBox("Use it for every volume of this server")
        self.all_volumes_box.setChecked(True)
        self.all_volumes_box.setVisible(several_volumes)
        self._several_volumes = several_volumes
        buttons = QDialogButtonBox()
        self.unlock_button: QPushButton = buttons.addButton("Unlock", QDialogButtonBox.ButtonRole.AcceptRole)
        self.unlock_button.setDefault(True)
        self.unlock_button.setEnabled(False)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.edit.textChanged.connect(lambda text: self.unlock_button.setEnabled(bool(text)))
        self.rejected.connect(self.edit.clear)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.edit)
        layout.addWidget(self.remember_box)
        layout.addWidget(self.all_volumes_box)
        layout.addWidget(buttons)
        self.edit.setFocus()

    @property
    def remember(self) -> bool:
        return self.remember_box.isEnabled() and self.remember_box.isChecked()

    @property
    def all_volumes(self) -> bool:
        """With one volume, trivially; with several, as the operator chose."""
        return not self._several_volumes or self.all_volumes_box.isChecked()

    def take_passphrase(self) -> str:
        """The typed passphrase; the widget forgets it."""
        value = self.edit.text()
        self.edit.clear()
        return value
