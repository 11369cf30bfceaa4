"""Settings: the inventory's servers, the keyring, host key pins and the refresh interval."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from panel.config import remove_server, save_server
from panel.secrets import KeyringStatus
from services.errors import PanelError
from services.hostkeys import PublicKey
from services.inventory import ServerSpec
from views.dialogs.messages import show_error
from views.dialogs.server import ServerDialog
from views.state import DEFAULT_REFRESH_SECONDS, PanelState
from views.workers import JobContext


class SettingsPage(QWidget):
    title = "Settings"

    def __init__(self, state: PanelState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        layout = QVBoxLayout(self)

        servers_box = QGroupBox("Servers")
        self.server_list = QListWidget()
        add = QPushButton("Add…")
        add.clicked.connect(self._add)
        self.edit_button = QPushButton("Edit…")
        self.edit_button.clicked.connect(self._edit)
        self.remove_button = QPushButton("Remove…")
        self.remove_button.clicked.connect(self._remove)
        buttons = QVBoxLayout()
        for button in (add, self.edit_button, self.remove_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.config_label = QLabel()
        self.config_label.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.server_list, 1)
        row.addLayout(buttons)
        servers_layout = QVBoxLayout(servers_box)
        servers_layout.addWidget(self.config_label)
        servers_layout.addLayout(row)

        keys_box = QGroupBox("Host keys")
        self.key_server = QComboBox()
        self.key_endpoint = QComboBox()
        self.key_endpoint.addItems(["system", "initramfs"])
        replace = QPushButton("Replace pinned key…")
        replace.clicked.connect(self._replace_key)
        keys_layout = QHBoxLayout(keys_box)
        keys_layout.addWidget(QLabel("Server"))
        keys_layout.addWidget(self.key_server, 1)
        keys_layout.addWidget(self.key_endpoint)
        keys_layout.addWidget(replace)

        general = QGroupBox("General")
        form = QFormLayout(general)
        self.keyring_label = QLabel("Checking the keyring…")
        self.keyring_label.setWordWrap(True)
        self.interval = QSpinBox()
        self.interval.setRange(5, 3600)
        self.interval.setSuffix(" s")
        self.interval.setValue(DEFAULT_REFRESH_SECONDS)
        self.interval.valueChanged.connect(state.set_refresh_interval)
        form.addRow("Keyring", self.keyring_label)
        form.addRow("Refresh every", self.interval)

        layout.addWidget(servers_box, 1)
        layout.addWidget(keys_box)
        layout.addWidget(general)
        state.inventory_changed.connect(self.load)
        self.load()

    def activate(self) -> None:
        secrets = self.state.context.secrets

        def check(job: JobContext) -> KeyringStatus:
            return secrets.status()

        self.state.runner.submit("Checking the keyring", check, timeout=15,
                                 on_success=lambda status: self.keyring_label.setText(status.message),
                                 on_error=lambda error: self.keyring_label.setText(str(error)))

    def load(self) -> None:
        inventory = self.state.context.inventory
        self.config_label.setText(f"Inventory: {self.state.context.config_path}")
        self.server_list.clear()
        self.key_server.clear()
        for name, spec in inventory.servers.items():
            encrypted = ", encrypted" if spec.encrypted else ""
            self.server_list.addItem(f"{name} — {spec.user}@{spec.host}:{spec.port}{encrypted}")
            self.key_server.addItem(name)

    def _selected(self) -> ServerSpec | None:
        row = self.server_list.currentRow()
        names = list(self.state.context.inventory.servers)
        return self.state.context.inventory.servers[names[row]] if 0 <= row < len(names) else None

    def _write(self, title: str, action: str | None, target: str, change: Callable[[], None]) -> None:
        """Run a change off the GUI thread, audit it (unless the change audits itself), then reload."""
        store = self.state.context.store

        def write(job: JobContext) -> None:
            try:
                change()
            except PanelError as error:
                if action:
                    store.audit(action, target, "failed", str(error))
                raise
            if action:
                store.audit(action, target, "ok")

        self.state.runner.submit(title, write, timeout=10, on_success=lambda _: self.state.reload_inventory(),
                                 on_error=lambda error: show_error(self, title, error))

    def _add(self) -> None:
        if not self.state.allow_change("adding a server"):
            return
        dialog = ServerDialog(None, self)
        path = self.state.context.config_path
        dialog.accepted.connect(lambda: self._write(
            "Adding a server", "config.server.add", dialog.server().name,
            lambda: save_server(path, dialog.server())))
        dialog.open()

    def _edit(self) -> None:
        spec = self._selected()
        if spec is None or not self.state.allow_change(f"editing {spec.name}"):
            return
        dialog = ServerDialog(spec, self)
        path = self.state.context.config_path
        dialog.accepted.connect(lambda: self._write(
            f"Saving {spec.name}", "config.server.edit", spec.name, lambda: save_server(path, dialog.server())))
        dialog.open()

    def _remove(self) -> None:
        spec = self._selected()
        if spec is None or not self.state.allow_change(f"removing {spec.name}"):
            return
        answer = QMessageBox.question(
            self, f"Remove {spec.name}?",
            f"Remove {spec.name} ({spec.host}) from the inventory file?\n\nThe server itself is not touched, "
            "and its keyring entries stay until you delete them.")
        if answer == QMessageBox.StandardButton.Yes:
            path = self.state.context.config_path
            self._write(f"Removing {spec.name}", "config.server.remove", spec.name,
                        lambda: remove_server(path, spec.name))

    def _replace_key(self) -> None:
        server = self.key_server.currentText()
        endpoint = self.key_endpoint.currentText()
        if not server or not self.state.allow_change(f"replacing the host key of {server}"):
            return
        context = self.state.context

        def fetch(job: JobContext) -> PublicKey:
            return context.offered_key(server, endpoint, job.cancel)

        self.state.runner.submit(f"Reading the {endpoint} key of {server}", fetch, timeout=30,
                                 on_success=lambda key: self._confirm_replace(server, endpoint, key),
                                 on_error=lambda error: show_error(self, "Replace pinned key", error))

    def _confirm_replace(self, server: str, endpoint: str, key: PublicKey) -> None:
        typed, ok = QInputDialog.getText(
            self, "Replace pinned key",
            f"{server} ({endpoint}) now offers:\n{key.key_type} {key.fingerprint}\n\n"
            "Replace the pinned key only if you know why it changed (a reinstall, a new initramfs).\n"
            f"Type the server name ({server}) to confirm:")
        if not ok or typed.strip() != server:
            return
        context = self.state.context
        self._write(f"Replacing the key of {server}", None, server,
                    lambda: context.replace_host_key(server, endpoint, key.line()))
