"""Add or edit one server of the inventory (basic keys; the rest stays as written in the file)."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLineEdit, QSpinBox, QWidget

from services.inventory import ServerSpec


class ServerDialog(QDialog):
    def __init__(self, server: ServerSpec | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Edit server" if server else "Add server")
        self.name = QLineEdit(server.name if server else "")
        self.name.setEnabled(server is None)
        self.host = QLineEdit(server.host if server else "")
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(server.port if server else 22)
        self.user = QLineEdit(server.user if server else "root")
        self.identity = QLineEdit(server.identity or "" if server else "")
        self.identity.setPlaceholderText("optional; otherwise ssh-agent and ~/.ssh/config")
        self.unlock_port = QSpinBox()
        self.unlock_port.setRange(0, 65535)
        self.unlock_port.setSpecialValueText("not encrypted")
        self.unlock_port.setValue(server.unlock_port or 0 if server else 0)
        self._keep = server
        form = QFormLayout(self)
        form.addRow("Name", self.name)
        form.addRow("Host", self.host)
        form.addRow("SSH port", self.port)
        form.addRow("User", self.user)
        form.addRow("Identity file", self.identity)
        form.addRow("Unlock port (dropbear)", self.unlock_port)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def server(self) -> ServerSpec:
        keep = self._keep
        return ServerSpec(
            name=self.name.text().strip(),
            host=self.host.text().strip(),
            port=self.port.value(),
            user=self.user.text().strip() or "root",
            identity=self.identity.text().strip() or None,
            host_key=keep.host_key if keep else None,
            unlock_port=self.unlock_port.value() or None,
            unlock_host_key=keep.unlock_host_key if keep else None,
        )
