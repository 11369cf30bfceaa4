"""Non-blocking message boxes: the event loop keeps running while the operator reads."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from services.errors import PanelError


def show_error(parent: QWidget | None, title: str, error: PanelError | str) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Warning, title, str(error), QMessageBox.StandardButton.Ok, parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.open()
    return box


def ask_to_confirm(parent: QWidget, title: str, text: str, yes_label: str, on_yes: Callable[[], object], *,
                   destructive: bool = True) -> QMessageBox:
    """The non-blocking confirmation every changing action goes through; the window keeps running
    while the operator reads. For a destructive change (the default) Enter and Escape cancel."""
    box = QMessageBox(QMessageBox.Icon.Warning if destructive else QMessageBox.Icon.Question, title, text,
                      QMessageBox.StandardButton.NoButton, parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    yes = box.addButton(yes_label, QMessageBox.ButtonRole.AcceptRole)
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(cancel if destructive else yes)
    box.setEscapeButton(cancel)
    box.buttonClicked.connect(lambda button: on_yes() if button is yes else None)
    box.open()
    return box
