"""Creating the QApplication and the window. Kept light so the first paint comes quickly."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication


def make_application() -> QApplication:
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    app = QApplication(sys.argv[:1])
    app.setApplicationName("panel")
    app.setOrganizationName("panel")
    app.setApplicationDisplayName("Operator panel")
    app.setStyle("Fusion")  # Fusion follows the system's light or dark colour scheme
    return app


def run_window(config_path: Path, *, demo: bool = False) -> int:
    app = make_application()
    from views.main_window import MainWindow

    window = MainWindow(config_path)
    if demo:
        window.setWindowTitle("Operator panel — demo fleet")
    window.show()
    window.load()
    return app.exec()
