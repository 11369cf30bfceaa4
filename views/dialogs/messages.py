"""Non-blocking message boxes: the event loop keeps running while the operator reads."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from services.errors import PanelError


def show_error(parent: QWidget | None, title: str, error: PanelError | str) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Warning, title, str(error), QMessageBox.StandardButton.Ok, parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.open()
    return box
