"""Creating the QApplication and the window. Kept light so the first paint comes quickly."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication

from views.garbage import collect_garbage_on_gui_thread

# Workers parse API pages and build table rows in Python while the window runs. A busy thread keeps
# the GIL for up to this long each time the GUI thread asks for it; Python's default (5 ms) let
# two busy workers delay a repaint by tens of milliseconds. 1 ms costs the workers little.
GIL_SWITCH_SECONDS = 0.001


def make_application() -> QApplication:
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    app = QApplication(sys.argv[:1])
    app.setApplicationName("panel")
    app.setOrganizationName("panel")
    app.setApplicationDisplayName("Operator panel")
    collect_garbage_on_gui_thread(app)
    app.setStyle("Fusion")  # Fusion follows the system's light or dark colour scheme
    style_sheet = Path(__file__).resolve().parents[1] / "resources" / "panel.qss"
    if style_sheet.is_file():
        app.setStyleSheet(style_sheet.read_text(encoding="utf-8"))
    return app


class _AfterFirstPaint(QObject):
    """Starts loading once the first frame is on screen, so the import of the SSH and keyring
    libraries on the loading worker doesn't compete with it. The startup benchmark sets
    PANEL_EXIT_AFTER_FIRST_PAINT to print the time of that frame and quit."""

    def __init__(self, window: QObject, then: Callable[[], None]) -> None:
        super().__init__(window)
        self._then = then
        self._report = bool(os.environ.get("PANEL_EXIT_AFTER_FIRST_PAINT"))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            watched.removeEventFilter(self)
            if self._report:
                print(f"first-paint {time.monotonic():.6f}", flush=True)
                QTimer.singleShot(0, QApplication.quit)
            else:
                QTimer.singleShot(0, self._then)
        return False


def _quit_on_signals(app: QApplication) -> None:
    """SIGINT and SIGTERM close the window like the operator would, so cleanup (the demo fleet's
    shutdown, the pool's connections) runs. A timer lets Python see the signal while Qt waits."""
    signal.signal(signal.SIGINT, lambda *_: app.quit())
    signal.signal(signal.SIGTERM, lambda *_: app.quit())
    wake = QTimer(app)
    wake.timeout.connect(lambda: None)
    wake.start(250)


def run_window(config_path: Path | None, *, demo: bool = False) -> int:
    """``config_path`` None: $PANEL_CONFIG or the user's config folder, resolved on the loading worker."""
    app = make_application()
    _quit_on_signals(app)
    from views.main_window import MainWindow

    window = MainWindow(config_path)
    if demo:
        window.setWindowTitle("Operator panel — demo fleet")
    window.installEventFilter(_AfterFirstPaint(window, window.load))
    window.show()
    code = app.exec()
    window.close()  # cancels the jobs and closes the connections, also after a signal
    return code
