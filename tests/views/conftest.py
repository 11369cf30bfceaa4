"""What every window test must leave behind: no widget of its own.

A widget a test leaves open (a dialog never closed, a page nobody owns) keeps its timers and its
jobs' callbacks alive into the next tests, which is where the crashes of leaked Qt objects come
from. Each test's top-level widgets must be gone once it and its fixtures end.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
import shiboken6
from PySide6.QtCore import QCoreApplication, QEvent
from PySide6.QtWidgets import QApplication, QWidget


def _address(widget: QWidget) -> int:
    return int(shiboken6.getCppPointer(widget)[0])


@pytest.fixture(autouse=True)
def _no_leaked_widgets(qapp: QApplication) -> Iterator[None]:
    before = {_address(widget) for widget in QApplication.topLevelWidgets()}
    yield
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    leaked = [widget for widget in QApplication.topLevelWidgets() if _address(widget) not in before]
    assert not leaked, "the test left these widgets behind: " + ", ".join(
        f"{type(widget).__name__} {widget.objectName() or widget.windowTitle()!r}" for widget in leaked)
