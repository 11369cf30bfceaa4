"""Colours and small painted icons that read well in light and dark palettes."""

from __future__ import annotations

from functools import cache

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QFontDatabase, QIcon, QPainter, QPixmap

STATE_COLOURS = {
    "up": "#2e9d4f",
    "locked": "#d98e04",
    "down": "#d0342c",
    "unknown-host-key": "#8e44ad",
    "host-key-mismatch": "#d0342c",
    "refreshing": "#7f8c8d",
    "CRITICAL": "#d0342c",
    "WARNING": "#d98e04",
    "UNKNOWN": "#8e44ad",
    "OK": "#2e9d4f",
}


def monospace() -> QFont:
    """The system's fixed-width font, for command output, logs, paths and fingerprints."""
    return QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)


@cache
def dot_icon(colour: str, size: int = 12) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(QColor(colour))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawEllipse(1, 1, size - 2, size - 2)
    painter.end()
    return QIcon(pixmap)


def state_icon(state: str) -> QIcon:
    return dot_icon(STATE_COLOURS.get(state, "#7f8c8d"))
