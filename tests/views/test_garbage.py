"""Python's cyclic garbage collector runs on the GUI thread only: a cycle holding a Qt object, left
behind by a closed dialog or a finished page, is never destroyed on a worker thread (which crashed
the test run in CI: a segmentation fault while a worker opened an SSH transport)."""

from __future__ import annotations

import gc
import threading
from typing import Any

from PySide6.QtCore import Qt, QTimer

from views.garbage import GuiThreadCollector, collect_garbage_on_gui_thread
from views.workers import JobContext, JobRunner


class _Holder:
    """Something a page keeps next to its Qt objects, referring to itself: a reference cycle."""

    def __init__(self) -> None:
        self.me = self
        self.timer = QTimer()
        self.timer.start(60_000)


def _leave_a_cycle_with_a_timer(destroyed_on: list[str]) -> None:
    holder = _Holder()
    holder.timer.destroyed.connect(lambda: destroyed_on.append(threading.current_thread().name),
                                   Qt.ConnectionType.DirectConnection)


def _allocate(job: JobContext) -> list[dict[str, Any]]:
    """What a worker parsing a vendor page does: many small containers, kept, far past gc's threshold
    (Python counts allocations net of frees: rows freed again would not trigger a pass)."""
    return [{"id": n, "tags": [n]} for n in range(200_000)]


def test_a_cycle_freed_while_a_worker_allocates_is_destroyed_on_the_gui_thread(qtbot: Any, qapp: Any) -> None:
    runner = JobRunner()
    destroyed_on: list[str] = []
    _leave_a_cycle_with_a_timer(destroyed_on)
    loaded: list[list[dict[str, Any]]] = []
    runner.submit("allocate", _allocate, on_success=loaded.append)
    qtbot.waitUntil(lambda: len(loaded) == 1, timeout=30_000)
    qtbot.waitUntil(lambda: destroyed_on != [], timeout=5_000)  # a tick of the collector
    assert destroyed_on == [threading.main_thread().name]
    runner.shutdown()


def test_automatic_collection_is_off_and_the_collector_runs_pythons_passes(qapp: Any) -> None:
    collector = collect_garbage_on_gui_thread(qapp)
    assert collect_garbage_on_gui_thread(qapp) is collector  # once per process
    assert not gc.isenabled()
    gc.collect()
    assert collector.collect_due() is None  # nothing allocated since: no pass
    young = gc.get_threshold()[0]
    kept = [[n] for n in range(young * 2)]
    assert collector.collect_due() == 0
    assert gc.get_count()[0] < young
    assert len(kept) == young * 2


def test_the_collector_is_a_child_of_the_application(qapp: Any) -> None:
    collector = collect_garbage_on_gui_thread(qapp)
    assert isinstance(collector, GuiThreadCollector) and collector.parent() is qapp


def test_a_qt_object_that_only_a_job_refers_to_is_destroyed_on_the_gui_thread(qtbot: Any) -> None:
    """A page's method submitted as a job: when the page is gone, the job holds its last reference. The
    worker must let go before the GUI thread does, whichever thread runs first once the job ends."""
    runner = JobRunner()
    destroyed_on: list[str] = []
    for _ in range(20):
        timer = QTimer()
        timer.destroyed.connect(lambda: destroyed_on.append(threading.current_thread().name),
                                Qt.ConnectionType.DirectConnection)
        runner.submit("refer", lambda job, timer=timer: timer.objectName())
        del timer
    qtbot.waitUntil(lambda: len(destroyed_on) == 20 and not runner.active_jobs, timeout=10_000)
    assert set(destroyed_on) == {threading.main_thread().name}
    runner.shutdown()
