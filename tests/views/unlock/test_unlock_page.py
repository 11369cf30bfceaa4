"""The Unlock page, clicked through against the lab: unlock, ask for the passphrase, reboot and unlock,
the notification of a locked server, auto-unlock, the setup check, read-only mode."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from panel.commands.unlock import AUTO_UNLOCK_KEY
from panel.config import load_config, set_server_key
from panel.context import PanelContext
from panel.lab.fleet import Lab, LabInfo
from panel.lab.secrets import DemoKeyring
from panel.secrets import SecretStore
from panel.store import Store
from services.unlock import InitramfsPaths, Step, UnlockProgress
from views.models.unlock import UnlockModel, UnlockRow
from views.notify import Banner, Notifier
from views.pages.unlock import UnlockPage
from views.state import PanelState
from views.workers import JobRunner

pytestmark = pytest.mark.lab


@dataclass
class Window:
    state: PanelState
    page: UnlockPage
    context: PanelContext
    keyring: DemoKeyring
    data: Path
    host: QWidget

    def row(self, server: str) -> UnlockRow:
        row = self.page.model.row_for(server)
        assert row is not None
        return row


@pytest.fixture
def rebooted(lab_control: Lab) -> Iterator[Callable[[str], None]]:
    touched: list[str] = []

    def reboot(server: str) -> None:
        touched.append(server)
        lab_control.reboot(server)

    yield reboot
    for server in touched:
        lab_control.ensure_up(server)


@pytest.fixture
def make_window(qtbot, lab: LabInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                ) -> Iterator[Callable[..., Window]]:
    """The page in a host widget that, like the main window, has a Notifier with its banner."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    data = tmp_path / "data"
    data.mkdir()
    log_handler = logging.FileHandler(data / "panel.log", encoding="utf-8")  # what the panel's log would hold
    log_handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(log_handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    made: list[Window] = []

    def make(*, config: Path | None = None, keyring: DemoKeyring | None = None,
             before: Callable[[Store], None] | None = None) -> Window:
        path = config or lab.config_path
        keyring = keyring or DemoKeyring()
        store = Store(data / "panel.sqlite3")
        if before is not None:
            before(store)
        context = PanelContext(path, load_config(path), store, SecretStore(keyring),
                               known_hosts=data / "known_hosts", initramfs_known_hosts=data / "known_hosts.initramfs")
        runner = JobRunner()
        state = PanelState(context, runner)
        state.poll_timer.stop()  # the test drives the refreshes
        host = QWidget()
        host.notifier = Notifier(Banner(host), host)  # type: ignore[attr-defined]
        state.notify.connect(lambda severity, title, text: host.notifier.notify(severity, title, text))  # type: ignore[attr-defined]
        page = UnlockPage(state, host)
        qtbot.addWidget(host)
        window = Window(state, page, context, keyring, data, host)
        made.append(window)
        return window

    yield make
    for window in made:
        window.state.runner.shutdown()
        window.context.close()
        window.context.store.close()
    root.removeHandler(log_handler)
    root.setLevel(old_level)
    log_handler.close()


def assert_no_secret(data: Path, *passphrases: str) -> None:
    files = [path for path in data.rglob("*") if path.is_file()]
    assert any(path.name == "panel.log" and path.stat().st_size for path in files)
    for passphrase in passphrases:
        for path in files:
            assert passphrase.encode() not in path.read_bytes(), f"{path.name} holds the passphrase"


def wait_locked(qtbot: QtBot, window: Window, server: str) -> None:
    window.state.refresh(server)
    qtbot.waitUntil(lambda: window.row(server).state_text == "locked", timeout=20000)


def test_clicking_unlock_brings_a_locked_server_back(
    qtbot, make_window: Callable[..., Window], lab: LabInfo, lab_control: Lab, rebooted: Callable[[str], None]
) -> None:
    window = make_window()
    window.state.read_only = False
    window.state.read_only_changed.emit(False)
    rebooted("app1")
    wait_locked(qtbot, window, "app1")
    window.page.focus_item("app1")
    assert window.page.unlock_button.isEnabled()
    qtbot.mouseClick(window.page.unlock_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.row("app1").result_ok is not None, timeout=90000)
    row = window.row("app1")
    assert row.result_ok, row.result
    assert "unlocked root and the system is up" in row.result
    assert row.progress_text.startswith("7/7 up")
    log_text = window.page.log_view.toPlainText()
    for step in ("detect", "verify", "passphrase", "send", "unlocked", "boot", "up"):
        assert step in log_text
    assert "system up" in log_text  # the timeline
    assert lab_control.phase("app1") == "up"
    qtbot.waitUntil(lambda: window.row("app1").state_text == "up", timeout=20000)  # refreshed after
    entry = window.context.store.audit_entries(action_prefix="unlock")[0]
    assert (entry.action, entry.target, entry.outcome) == ("unlock", "app1", "ok") and "(window)" in entry.detail
    assert_no_secret(window.data, lab.luks_passphrase)


def test_without_a_keyring_entry_it_asks_and_can_remember(
    qtbot, make_window: Callable[..., Window], lab: LabInfo, lab_control: Lab, rebooted: Callable[[str], None]
) -> None:
    keyring = DemoKeyring()
    for entry in ("app1/luks", "app1/luks/root"):
        keyring.delete_password("panel", entry)
    window = make_window(keyring=keyring)
    window.state.read_only = False
    rebooted("app1")
    wait_locked(qtbot, window, "app1")
    window.page.unlock(["app1"])
    qtbot.waitUntil(lambda: window.page.broker.dialog is not None and window.page.broker.dialog.isVisible(),
                    timeout=20000)
    dialog = window.page.broker.dialog
    assert dialog is not None
    assert not dialog.accept_button.isEnabled()
    qtbot.keyClicks(dialog.edit, lab.luks_passphrase)
    assert dialog.remember_box.isEnabled()
    dialog.remember_box.setChecked(True)
    qtbot.mouseClick(dialog.accept_button, Qt.MouseButton.LeftButton)
    assert dialog.edit.text() == ""  # the widget forgot it
    qtbot.waitUntil(lambda: window.row("app1").result_ok is not None, timeout=90000)
    assert window.row("app1").result_ok, window.row("app1").result
    assert keyring.get_password("panel", "app1/luks") == lab.luks_passphrase
    assert ("secret.store", "ok") in [(e.action, e.outcome) for e in window.context.store.audit_entries()]
    assert lab_control.phase("app1") == "up"
    assert_no_secret(window.data, lab.luks_passphrase)


def test_a_locked_server_raises_a_notification_with_unlock_one_click_away(
    qtbot, make_window: Callable[..., Window], lab_control: Lab, rebooted: Callable[[str], None]
) -> None:
    window = make_window()
    window.state.read_only = False
    rebooted("app2")
    with qtbot.waitSignal(window.state.notify, timeout=20000) as blocker:
        window.state.refresh("app2")
    severity, title, text = blocker.args
    assert severity == "CRITICAL" and title == "app2 is locked" and "initramfs" in text
    banner = window.host.notifier.banner  # type: ignore[attr-defined]
    assert not banner.isHidden() and "app2 is locked" in banner.label.text()
    assert banner.action_button.text() == "Unlock app2" and not banner.action_button.isHidden()
    qtbot.mouseClick(banner.action_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.row("app2").result_ok is not None, timeout=90000)
    assert window.row("app2").result_ok, window.row("app2").result
    assert "unlocked root, data" in window.row("app2").result
    assert lab_control.phase("app2") == "up"


def test_auto_unlock_on_sight_is_opt_in(
    qtbot, make_window: Callable[..., Window], lab_control: Lab, rebooted: Callable[[str], None]
) -> None:
    window = make_window(before=lambda store: store.set_value(AUTO_UNLOCK_KEY.format(server="app1"), "1"))
    qtbot.waitUntil(lambda: window.row("app1").auto, timeout=10000)
    assert not window.row("app2").auto  # off by default
    window.state.read_only = False
    rebooted("app1")
    with qtbot.waitSignal(window.state.notify, timeout=20000) as blocker:
        window.state.refresh("app1")
    assert "Auto-unlock is on" in blocker.args[2]
    qtbot.waitUntil(lambda: window.row("app1").result_ok is not None, timeout=90000)
    assert window.row("app1").result_ok, window.row("app1").result
    entry = window.context.store.audit_entries(action_prefix="unlock")[0]
    assert entry.outcome == "ok" and "(auto-unlock)" in entry.detail
    assert lab_control.phase("app1") == "up"


def test_reboot_and_unlock_from_the_window(
    qtbot, make_window: Callable[..., Window], lab_control: Lab, rebooted: Callable[[str], None]
) -> None:
    window = make_window()
    window.state.read_only = False
    window.state.read_only_changed.emit(False)
    # The lab can't reboot a machine: the reboot's effect is the lab's reboot of the server.
    window.page.reboot_action = lambda server: (lambda: rebooted(server))
    window.page.focus_item("app1")
    qtbot.mouseClick(window.page.reboot_button, Qt.MouseButton.LeftButton)
    box = window.page.last_box
    assert box is not None and "Reboot app1" in box.windowTitle()
    qtbot.mouseClick(box.button(QMessageBox.StandardButton.Yes), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.row("app1").result_ok is not None, timeout=90000)
    row = window.row("app1")
    assert row.result_ok, row.result
    assert "went down" in row.result and "system up" in row.result
    assert [e.step for e in row.events][:2] == [Step.REBOOT, Step.DOWN]
    actions = [(e.action, e.outcome) for e in window.context.store.audit_entries()]
    assert ("reboot", "ok") in actions and ("unlock", "ok") in actions
    assert lab_control.phase("app1") == "up"


def test_read_only_mode_disables_unlocking(qtbot, make_window: Callable[..., Window]) -> None:
    window = make_window()
    messages: list[str] = []
    window.state.message.connect(messages.append)
    window.page.focus_item("app1")
    assert window.state.read_only
    assert not window.page.unlock_button.isEnabled() and not window.page.reboot_button.isEnabled()
    window.page.unlock(["app1"])  # the palette's way in
    assert not window.row("app1").busy
    assert any("Read-only" in message for message in messages)
    actions = window.state.actions
    assert actions["unlock:app1"].title == "Unlock app1" and actions["unlock:app1"].changes_something
    assert "unlock:app2" in actions and "unlock:backup1" not in actions
    assert [window.page.model.server_at(n).server for n in range(window.page.model.rowCount())] == ["app1", "app2"]  # type: ignore[union-attr]


def test_the_setup_check_previews_its_fix(
    qtbot, make_window: Callable[..., Window], lab: LabInfo, tmp_path: Path
) -> None:
    config = tmp_path / "panel.toml"
    shutil.copy2(lab.config_path, config)
    set_server_key(config, "app1", "unlock_host_key", None)
    root = tmp_path / "root"
    folder = root / "etc/dropbear/initramfs"
    folder.mkdir(parents=True)
    shutil.copy2(lab.directory / "run/app1/dropbear/dropbear_ed25519_host_key", folder)
    window = make_window(config=config)
    window.state.read_only = False
    window.state.read_only_changed.emit(False)
    page = window.page
    page.paths_for = lambda server: InitramfsPaths(root=str(root))
    page.install_command = f"touch {tmp_path}/installed"
    page.update_command = f"touch {tmp_path}/update-initramfs-u"
    page.focus_item("app1")
    qtbot.mouseClick(page.setup_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.setup_dialog is not None and page.setup_dialog.isVisible(), timeout=20000)
    dialog = page.setup_dialog
    assert dialog is not None and dialog.fix is not None
    preview = dialog.preview.toPlainText()
    assert "update-initramfs-u" in preview and 'command="/usr/bin/cryptroot-unlock"' in preview
    assert not (folder / "authorized_keys").exists()  # nothing ran yet
    qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: (tmp_path / "update-initramfs-u").exists() and
                    load_config(config).server("app1").unlock_host_key is not None, timeout=30000)
    assert "no-port-forwarding" in (folder / "authorized_keys").read_text()
    assert load_config(config).server("app1").unlock_host_key == lab.server("app1").unlock_host_key

    def audited() -> bool:
        actions = [(e.action, e.outcome) for e in window.context.store.audit_entries()]
        return ("unlock.setup", "ok") in actions and ("unlock.pin", "ok") in actions

    qtbot.waitUntil(audited, timeout=10000)


def test_the_unlock_model_is_a_sound_item_model(qtmodeltester) -> None:
    model = UnlockModel()
    model.set_servers([("app1", "127.0.0.1:2222", ()), ("app2", "127.0.0.1:2223", ("root", "data"))], {})
    model.start("app1", "Looking for the initramfs…")
    model.progress("app1", UnlockProgress(Step.VERIFY, None, "matches"))
    model.finish("app2", "failed", False)
    qtmodeltester.check(model)
    assert model.row_for("app2").volumes_text == "root, data"  # type: ignore[union-attr]
