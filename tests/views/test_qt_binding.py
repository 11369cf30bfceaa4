"""Guards against a Qt binding that leaks references to None/True/False.

PySide6 6.12.0 on Python 3.11 dropped one reference per call, so a long session (log follow,
pollers) ended in "Fatal Python error: bool_dealloc". pyproject.toml pins below it; this test
fails loudly if a future binding brings the bug back.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, QTimer, Signal


class _Emitter(QObject):
    fired = Signal()


def test_calls_and_emits_keep_none_and_bools_alive(qtbot) -> None:
    emitter = _Emitter()
    timer = QTimer()
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(200):
        timer.stop()
        emitter.fired.emit()
    assert sys.getrefcount(None) >= none_before - 20
    assert sys.getrefcount(True) >= true_before - 20
