"""Run ``services`` calls on a thread pool and deliver their results as signals on the GUI thread.

Every job has a timeout and a cancel token. Jobs that share a ``queue`` key (a server's name)
run one after another; different keys run in parallel. An error never escapes as a crash: it
arrives as a ``PanelError`` the page can show.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal, Slot

from services.cancel import CancelToken
from services.errors import Cancelled, OperationTimeout, PanelError

log = logging.getLogger(__name__)


@dataclass
class JobContext:
    """What a job's function receives: its cancel token and a way to report progress."""

    cancel: CancelToken
    report: Callable[[object], None]


class JobSignals(QObject):
    """Made on the GUI thread, so its signals arrive there (queued) whatever thread emits them."""

    progress = Signal(object)
    succeeded = Signal(object)
    failed = Signal(object)  # a PanelError
    finished = Signal()  # always, last


class _Runnable(QRunnable):
    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job: Job | None = job
        self.setAutoDelete(True)

    def run(self) -> None:
        job, self.job = self.job, None
        assert job is not None, "a job runs once"
        signals = job.signals
        try:
            self._run(job)
        finally:
            # The job's function may hold the last reference to a widget (a page's method). Drop this
            # thread's references before "finished" lets the GUI thread drop its own, so the last one
            # goes there: a Qt object freed on a worker thread crashes the process.
            del job
            signals.finished.emit()
            # Posted after "finished", so the GUI thread handles that event before deleting the
            # object; the worker never touches it again.
            signals.deleteLater()

    @staticmethod
    def _run(job: Job) -> None:
        context = JobContext(job.cancel, job.signals.progress.emit)
        try:
            job.cancel.raise_if_cancelled(job.title)
            result = job.function(context)
        except PanelError as error:
            job.signals.failed.emit(job.timeout_error() or error)
        except Exception as error:
            log.exception("job %s failed unexpectedly", job.title)
            job.signals.failed.emit(PanelError(f"{job.title} failed unexpectedly: {error.__class__.__name__}: "
                                               f"{error}. The details are in the panel's log."))
        else:
            if job.cancel.cancelled:
                job.signals.failed.emit(job.timeout_error() or Cancelled(job.title))
            else:
                job.signals.succeeded.emit(result)


@dataclass(eq=False)
class Job:
    title: str
    function: Callable[[JobContext], Any]
    timeout: float
    queue: str | None
    signals: JobSignals
    cancel: CancelToken = field(default_factory=CancelToken)
    timed_out: bool = False
    started: bool = False

    def timeout_error(self) -> PanelError | None:
        if self.timed_out:
            return OperationTimeout(f"{self.title} did not finish within {self.timeout:g} s and was stopped.")
        return None


class JobRunner(QObject):
    """Owns the thread pool and every running job. Lives on the GUI thread."""

    jobs_changed = Signal(int)  # how many jobs are queued or running

    def __init__(self, parent: QObject | None = None, *, max_threads: int = 16) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self._jobs: list[Job] = []
        self._queues: dict[str, deque[Job]] = {}
        self._busy_queues: set[str] = set()
        self._closing = False

    @property
    def active_jobs(self) -> list[Job]:
        return list(self._jobs)

    def submit(
        self,
        title: str,
        function: Callable[[JobContext], Any],
        *,
        timeout: float = 60.0,
        queue: str | None = None,
        on_success: Callable[[Any], object] | None = None,
        on_error: Callable[[PanelError], object] | None = None,
        on_progress: Callable[[Any], object] | None = None,
        on_finished: Callable[[], object] | None = None,
    ) -> Job:
        signals = JobSignals(self)
        job = Job(title, function, timeout, queue, signals)
        if on_success is not None:
            signals.succeeded.connect(self._deliver(on_success))
        if on_error is not None:
            signals.failed.connect(self._deliver(on_error))
        if on_progress is not None:
            signals.progress.connect(self._deliver(on_progress))
        if on_finished is not None:
            signals.finished.connect(self._deliver(on_finished))
        signals.finished.connect(lambda: self._finished(job))
        self._jobs.append(job)
        if self._closing:
            job.cancel.cancel()
        if queue is None or queue not in self._busy_queues:
            self._start(job)
        else:
            self._queues.setdefault(queue, deque()).append(job)
        self.jobs_changed.emit(len(self._jobs))
        return job

    def _deliver(self, callback: Callable[..., object]) -> Callable[..., None]:
        """Results arrive after the window may have started closing, or after the page that asked
        was deleted (a reload, a closed dialog): those results have no one to show them, so they
        are dropped instead of touching a deleted widget."""

        def deliver(*args: object) -> None:
            if self._closing:
                return
            try:
                callback(*args)
            except RuntimeError as error:
                if "already deleted" not in str(error):
                    raise
                log.debug("dropped a job result: its widget is gone (%s)", error)

        return deliver

    def _start(self, job: Job) -> None:
        job.started = True
        if job.queue is not None:
            self._busy_queues.add(job.queue)
        timer = QTimer(job.signals)
        timer.setSingleShot(True)
        timer.timeout.connect(lambda: self._time_out(job))
        timer.start(int(job.timeout * 1000))
        self.pool.start(_Runnable(job))

    def _time_out(self, job: Job) -> None:
        if job in self._jobs:
            job.timed_out = True
            job.cancel.cancel()

    @Slot()
    def _finished(self, job: Job) -> None:
        if job in self._jobs:
            self._jobs.remove(job)
        if job.queue is not None:
            self._busy_queues.discard(job.queue)
            pending = self._queues.get(job.queue)
            while pending:
                following = pending.popleft()
                self._start(following)
                break
        self.jobs_changed.emit(len(self._jobs))

    def cancel_all(self) -> None:
        for job in list(self._jobs):
            job.cancel.cancel()

    def shutdown(self, wait_ms: int = 5000) -> None:
        """Cancel everything and drain the pool (window close)."""
        self._closing = True
        for pending in self._queues.values():
            for job in pending:
                job.cancel.cancel()
        self.cancel_all()
        self.pool.waitForDone(wait_ms)
