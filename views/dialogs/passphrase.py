"""Asking for a disk passphrase: masked, never logged, cleared from the widget once taken."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QLabel, QWidget

from views.dialogs.secret import SecretDialog


class PassphraseDialog(SecretDialog):
    """Open it with ``open()`` (non-blocking); read it with ``take_secret()`` once accepted."""

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
        super().__init__(f"Unlock {server}", accept_label="Unlock", placeholder="passphrase", parent=parent)
        what = f"volume <b>{volume}</b> of <b>{server}</b>" if volume else f"the disk of <b>{server}</b>"
        intro = QLabel(f"<p>The passphrase for {what}.</p><p>The initramfs key was verified; the passphrase "
                       "goes only to it, and the panel keeps it no longer than the unlock.</p>")
        intro.setWordWrap(True)
        self.remember_box.setEnabled(can_remember)
        self.remember_box.setToolTip(
            "Stored once the unlock succeeds, as a keyring entry of the service 'panel'." if can_remember
            else (keyring_message or "No keyring works on this system, so the panel will ask each time."))
        self.all_volumes_box = QCheckBox("Use it for every volume of this server")
        self.all_volumes_box.setChecked(True)
        self.all_volumes_box.setVisible(several_volumes)
        self._several_volumes = several_volumes
        self.lay_out([intro], [self.all_volumes_box])

    @property
    def all_volumes(self) -> bool:
        """With one volume, trivially; with several, as the operator chose."""
        return not self._several_volumes or self.all_volumes_box.isChecked()
