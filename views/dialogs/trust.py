"""The trust dialog: an unknown host key is shown with its fingerprint and never accepted silently."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from views.style import monospace


class TrustDialog(QDialog):
    def __init__(self, server: str, endpoint: str, fingerprint: str, public_key: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Trust the host key of {server}?")
        self.public_key = public_key
        what = "its initramfs (dropbear, used to unlock the disk)" if endpoint == "initramfs" else "its system sshd"
        intro = QLabel(
            f"<p><b>{server}</b> offered a host key for {what} that the panel has never seen.</p>"
            "<p>Compare this fingerprint with the one your provider's console or a trusted session shows "
            "(<code>ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub</code>). Trust it only if they match.</p>"
        )
        intro.setWordWrap(True)
        key_type = public_key.split()[0] if public_key else ""
        self.fingerprint_label = QLabel(f"{key_type}\n{fingerprint}")
        self.fingerprint_label.setFont(monospace())
        self.fingerprint_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QDialogButtonBox()
        self.trust_button = buttons.addButton("Trust and pin this key", QDialogButtonBox.ButtonRole.AcceptRole)
        cancel = buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.setDefault(True)  # Enter must not trust a key by accident
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.fingerprint_label)
        layout.addWidget(buttons)
