"""The worker layer: results and errors arrive on the GUI thread; timeouts, cancel and queues hold."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QThread

from services.errors import Cancelled, OperationTimeout, PanelError
from views.workers import JobContext, JobRunner


def dispose(runner: JobRunner) -> None:
    """Delete the runner and its thread pool now, on the GUI thread, rather than whenever its
    wrapper happens to be freed."""
    runner.shutdown()
    runner.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


@pytest.fixture
def runner(qtbot):  # type: ignore[no-untyped-def]
    runner = JobRunner()
    yield runner
    dispose(runner)


def test_a_result_arrives_on_the_gui_thread(qtbot, runner: JobRunner) -> None:
    gui_thread = QThread.currentThread()
    seen: dict[str, object] = {}

    def work(job: JobContext) -> str:
        seen["worker_is_gui"] = QThread.currentThread() == gui_thread
        return "done"

    def delivered(value: str) -> None:
        seen["value"] = value
        seen["delivered_on_gui"] = QThread.currentThread() == gui_thread

    finished: list[bool] = []
    runner.submit("work", work, on_success=delivered, on_finished=lambda: finished.append(True))
    qtbot.waitUntil(lambda: finished == [True], timeout=5000)
    assert seen == {"worker_is_gui": False, "value": "done", "delivered_on_gui": True}


def test_an_unexpected_exception_becomes_an_operator_message(qtbot, runner: JobRunner) -> None:
    errors: list[PanelError] = []

    def broken(job: JobContext) -> None:
        raise ZeroDivisionError("boom")

    runner.submit("Reading app1", broken, on_error=errors.append)
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=5000)
    assert "Reading app1 failed unexpectedly" in str(errors[0])


def test_a_job_past_its_timeout_is_cancelled_and_reported(qtbot, runner: JobRunner) -> None:
    errors: list[PanelError] = []

    def slow(job: JobContext) -> None:
        job.cancel.wait(30)  # a well-behaved service call waits on its token

    runner.submit("Slow probe", slow, timeout=0.2, on_error=errors.append)
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=5000)
    assert isinstance(errors[0], OperationTimeout)
    assert "did not finish within 0.2 s" in str(errors[0])


def test_cancel_all_stops_running_jobs(qtbot, runner: JobRunner) -> None:
    errors: list[PanelError] = []
    started = threading.Event()

    def waits(job: JobContext) -> None:
        started.set()
        job.cancel.wait(30)

    runner.submit("Waiting", waits, on_error=errors.append)
    qtbot.waitUntil(started.is_set, timeout=5000)
    runner.cancel_all()
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=5000)
    assert isinstance(errors[0], Cancelled)


def test_jobs_of_one_queue_run_one_after_another(qtbot, runner: JobRunner) -> None:
    order: list[str] = []
    lock = threading.Lock()
    running = [0]
    overlap = [False]

    def step(name: str):  # type: ignore[no-untyped-def]
        def work(job: JobContext) -> None:
            with lock:
                running[0] += 1
                overlap[0] |= running[0] > 1
            job.cancel.wait(0.05)
            with lock:
                running[0] -= 1
                order.append(name)
        return work

    jobs = [runner.submit(f"step {n}", step(str(n)), queue="app1") for n in range(4)]
    qtbot.waitUntil(lambda: len(order) == 4, timeout=5000)
    assert order == ["0", "1", "2", "3"]
    assert not overlap[0]
    assert all(not job.cancel.cancelled for job in jobs)


def test_shutdown_cancels_and_drains_the_pool(qtbot) -> None:
    runner = JobRunner()
    started = threading.Event()
    saw_cancel: list[bool] = []

    def waits(job: JobContext) -> None:
        started.set()
        saw_cancel.append(job.cancel.wait(30))

    runner.submit("Waiting", waits, queue="x")
    runner.submit("Queued behind", waits, queue="x")
    qtbot.waitUntil(started.is_set, timeout=5000)
    runner.shutdown(wait_ms=5000)
    assert saw_cancel == [True]  # the running job was told to stop; the queued one never started
    assert runner.pool.activeThreadCount() == 0
    dispose(runner)


def test_a_result_for_a_deleted_widget_is_dropped(qtbot, runner: JobRunner) -> None:
    from PySide6.QtWidgets import QLabel

    label = QLabel()
    release = threading.Event()
    finished: list[bool] = []

    def work(job: JobContext) -> str:
        release.wait(5)
        return "late"

    runner.submit("Late result", work, on_success=label.setText, on_finished=lambda: finished.append(True))
    label.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    release.set()
    qtbot.waitUntil(lambda: finished == [True], timeout=5000)  # no "already deleted" error escaped
