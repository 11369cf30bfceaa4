"""Python's cyclic garbage collector, run on the GUI thread only.

Left automatic, the collector runs in whichever thread allocates when a threshold is crossed, often
a worker parsing a vendor page or opening an SSH transport. If that pass frees a cycle that holds a
Qt object (a closed dialog, a finished page's timer), the object is destroyed on the worker thread,
and Qt objects destroyed off their own thread crash the process. So automatic collection is off,
and a timer on the GUI thread runs the passes Python would have run, with Python's own thresholds.
"""

from __future__ import annotations

import gc
import time

from PySide6.QtCore import QObject, QTimer

CHECK_INTERVAL_MS = 200  # cycles wait at most this long; the check itself costs microseconds
# A full pass scans every object the panel holds (10,000 loaded customers are ~100,000). Python
# itself skips most full passes while the heap grows (its "long-lived pending" rule, which Python
# code can't read); this floor bounds them the same way.
FULL_PASS_MIN_SECONDS = 10.0


class GuiThreadCollector(QObject):
    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        gc.disable()
        self._last_full_pass = time.monotonic()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.collect_due)
        self._timer.start(CHECK_INTERVAL_MS)

    def collect_due(self) -> int | None:
        """Collect the generation Python would collect now, if any, and return it."""
        young, middle, old = gc.get_threshold()
        allocated, young_passes, middle_passes = gc.get_count()
        if allocated <= young:
            return None
        generation = 0
        if young_passes > middle:
            generation = 1
            if middle_passes > old and time.monotonic() - self._last_full_pass >= FULL_PASS_MIN_SECONDS:
                generation = 2
                self._last_full_pass = time.monotonic()
        gc.collect(generation)
        return generation


_collector: GuiThreadCollector | None = None


def collect_garbage_on_gui_thread(app: QObject) -> GuiThreadCollector:
    """Once per process, on the GUI thread, with the application as ``app``."""
    global _collector
    if _collector is None:
        _collector = GuiThreadCollector(app)
    return _collector


def freeze_startup_objects() -> None:
    """Once per process, after the pages are built: move what startup made (modules, Qt wrappers,
    pages) out of the cyclic garbage collector's sight. A full collection scans every tracked object
    while holding the GIL, which stalled the window for 30-130 ms while thousands of rows loaded;
    after the freeze a pass scans only what was made since."""
    if not getattr(freeze_startup_objects, "done", False):
        gc.freeze()
        freeze_startup_objects.done = True  # type: ignore[attr-defined]
