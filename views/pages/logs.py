"""Logs: a server's journal (or its plain log files where there is no journal), several servers
merged by time, filtered by unit, level, time and text, paged back, and followed live.

A follow streams lines from a worker; they are buffered here and added to the table at most every
50 ms, in one chunk, and the table keeps at most ``LogModel.max_rows`` lines, so a log writing
1,000 lines a second never stalls the window.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from operator import attrgetter

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from services.errors import Cancelled, PanelError
from services.triage.logs import (
    LogEntry,
    LogPage,
    LogQuery,
    LogSources,
    detect_sources,
    follow_file,
    follow_journal,
    merge_by_time,
    read_files,
    read_journal,
)
from views.models.logs import LogModel
from views.state import PaletteAction, PanelState
from views.tables import row_table
from views.workers import Job, JobContext

FLUSH_MS = 50  # at most this often, buffered lines go into the table
MAX_LINES_PER_FLUSH = 5000
FOLLOW_TIMEOUT = 24 * 3600.0
DESCRIBE_EVERY = 0.5  # seconds between status-line updates while following
# The starting column widths, as wide as these texts: Time, Server, Unit, Level (the message takes the rest).
COLUMN_SAMPLES = ("00-00 00:00:00.000  ", "backup1-xx  ", "nginx.service-xxxx  ", "warning  ")

PRIORITIES: tuple[tuple[str, int | None], ...] = (
    ("Any level", None), ("Errors and worse", 3), ("Warnings and worse", 4), ("Notices and worse", 5),
    ("Info and worse", 6), ("Critical and worse", 2),
)
RANGES: tuple[tuple[str, dt.timedelta | None], ...] = (
    ("Newest lines", None), ("Last 15 minutes", dt.timedelta(minutes=15)), ("Last hour", dt.timedelta(hours=1)),
    ("Last 6 hours", dt.timedelta(hours=6)), ("Last 24 hours", dt.timedelta(days=1)),
    ("Last 7 days", dt.timedelta(days=7)),
)
SOURCES = (("Journal, else log files", "auto"), ("Journal", "journal"), ("Log files", "files"))


@dataclass
class ServerLog:
    """What was read from one server: where from, and where paging back and following go on."""

    server: str
    sources: LogSources
    source: str  # "journal" or "files"
    oldest: LogEntry | None = None
    last_cursor: str = ""
    file_sizes: dict[str, int] = field(default_factory=dict)
    file_lines: dict[str, int] = field(default_factory=dict)
    complete: bool = False


class LogsPage(QWidget):
    title = "Logs"

    def __init__(self, state: PanelState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.path_prefix = ""  # folders put first on the servers' PATH for these commands
        self.model = LogModel(self)
        self._generation = 0
        self._logs: dict[str, ServerLog] = {}
        self._sources: dict[str, LogSources] = {}
        self._follows: list[Job] = []
        self._inboxes: list[Inbox] = []
        self._described_at = 0.0
        self._server_grep = ""
        self._reading = 0
        self.selected: list[str] = []

        self.server_button = QToolButton()
        self.server_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.server_menu = QMenu(self)
        self.server_button.setMenu(self.server_menu)
        self.source_box = QComboBox()
        for label, source in SOURCES:
            self.source_box.addItem(label, source)
        self.units_edit = QLineEdit()
        self.units_edit.setPlaceholderText("Units (nginx, mariadb…)")
        self.units_edit.setClearButtonEnabled(True)
        self.priority_box = QComboBox()
        for label, priority in PRIORITIES:
            self.priority_box.addItem(label, priority)
        self.range_box = QComboBox()
        for label, _ in RANGES:
            self.range_box.addItem(label)
        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Search (Ctrl+F): filters as you type; Enter also searches the server")
        self.search_edit.setClearButtonEnabled(True)
        self.errors_box = QCheckBox("Errors only")
        self.reload_button = QPushButton("Reload (F5)")
        self.older_button = QPushButton("Load older")
        self.follow_button = QPushButton("Follow (Ctrl+L)")
        self.follow_button.setCheckable(True)
        self.status = QLabel()
        self.status.setWordWrap(True)

        filters = QHBoxLayout()
        filters.addWidget(self.server_button)
        filters.addWidget(self.source_box)
        filters.addWidget(self.units_edit, 1)
        filters.addWidget(self.priority_box)
        filters.addWidget(self.range_box)
        search = QHBoxLayout()
        search.addWidget(self.search_edit, 1)
        search.addWidget(self.errors_box)
        search.addWidget(self.reload_button)
        search.addWidget(self.older_button)
        search.addWidget(self.follow_button)

        width = self.fontMetrics().horizontalAdvance
        self.table = row_table(self.model, [width(sample) for sample in COLUMN_SAMPLES], multi_select=True)
        vertical = self.table.verticalHeader()
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)  # no per-row measuring, however many rows
        vertical.setDefaultSectionSize(self.fontMetrics().height() + 4)

        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addLayout(search)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)

        self.flush_timer = QTimer(self)
        self.flush_timer.setInterval(FLUSH_MS)
        self.flush_timer.timeout.connect(self.flush)
        self._filter_timer = QTimer(self)
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(120)
        self._filter_timer.timeout.connect(self._apply_local_filter)

        self.reload_button.clicked.connect(lambda: self.reload(redetect=True))
        self.older_button.clicked.connect(self.load_older)
        self.follow_button.toggled.connect(self._follow_toggled)
        self.search_edit.textChanged.connect(lambda _: self._filter_timer.start())
        self.search_edit.returnPressed.connect(self._search_server)
        self.errors_box.toggled.connect(lambda _: self._apply_local_filter())
        self.units_edit.returnPressed.connect(self.reload)
        for box in (self.source_box, self.priority_box, self.range_box):
            box.currentIndexChanged.connect(lambda _: self.reload())
        shortcut = Qt.ShortcutContext.WidgetWithChildrenShortcut
        QShortcut(QKeySequence(Qt.Key.Key_F5), self, lambda: self.reload(redetect=True), context=shortcut)
        QShortcut(QKeySequence("Ctrl+F"), self, self._focus_search, context=shortcut)
        QShortcut(QKeySequence("Ctrl+L"), self, self.follow_button.toggle, context=shortcut)

        state.inventory_changed.connect(self._inventory_changed)
        self._inventory_changed()

    # --- servers and palette actions -----------------------------------------------------------------

    def _servers(self) -> list[str]:
        return list(self.state.context.inventory.servers)

    def _inventory_changed(self) -> None:
        servers = self._servers()
        self._sources = {k: v for k, v in self._sources.items() if k in servers}
        self.selected = [s for s in self.selected if s in servers] or servers[:1]
        self._build_server_menu()
        self.state.remove_actions("logs/")
        for server in servers:
            self.state.add_action(PaletteAction(
                f"Logs of {server}", partial(self.show_server, server),
                keywords=("journal", "journalctl", "tail", "log"), page=self.title, key=f"logs/{server}/show"))
            self.state.add_action(PaletteAction(
                f"Follow logs of {server}", partial(self.show_server, server, follow=True),
                keywords=("live", "tail -f", "journalctl -f", "stream"), page=self.title, key=f"logs/{server}/follow"))
        if len(servers) > 1:
            self.state.add_action(PaletteAction(
                "Logs of every server, merged", lambda: self.show_servers(self._servers()),
                keywords=("all", "fleet", "journal"), page=self.title, key="logs/all"))
        self.state.add_action(PaletteAction(
            "Follow logs / stop following", self._toggle_follow_from_palette, keywords=("live", "tail"),
            shortcut="Ctrl+L", page=self.title, key="logs/toggle-follow"))

    def _build_server_menu(self) -> None:
        self.server_menu.clear()
        for server in self._servers():
            action = QAction(server, self.server_menu)
            action.setCheckable(True)
            action.setChecked(server in self.selected)
            action.toggled.connect(partial(self._server_toggled, server))
            self.server_menu.addAction(action)
        self.server_menu.addSeparator()
        every = self.server_menu.addAction("All servers")
        every.triggered.connect(lambda: self.show_servers(self._servers()))
        self._update_server_button()

    def _update_server_button(self) -> None:
        names = self.selected
        label = ", ".join(names) if len(names) <= 3 else f"{len(names)} servers"
        self.server_button.setText(f"Servers: {label or 'none'}")

    def _server_toggled(self, server: str, checked: bool) -> None:
        if checked and server not in self.selected:
            self.selected.append(server)
        elif not checked and server in self.selected:
            self.selected.remove(server)
        self._update_server_button()
        self.reload()

    def show_servers(self, servers: list[str], *, follow: bool | None = None) -> None:
        self.selected = [s for s in servers if s in self.state.context.inventory.servers]
        self._build_server_menu()
        if follow is not None and follow != self.follow_button.isChecked():
            self.follow_button.blockSignals(True)
            self.follow_button.setChecked(follow)
            self.follow_button.blockSignals(False)
        self.reload()

    def show_server(self, server: str, *, follow: bool | None = None) -> None:
        self.state.navigate.emit(self.title, None)
        self.show_servers([server], follow=follow)

    def focus_item(self, argument: object) -> None:
        """``"app1"``: that server's logs; ``("app1", "nginx.service")``: that unit's."""
        server, unit = argument if isinstance(argument, tuple) else (argument, None)
        if isinstance(server, str) and server in self.state.context.inventory.servers:
            if isinstance(unit, str):
                self.units_edit.setText(unit)
            self.show_servers([server])

    def activate(self) -> None:
        if not self._logs and not self._reading:
            self.reload()

    def _toggle_follow_from_palette(self) -> None:
        self.state.navigate.emit(self.title, None)
        self.follow_button.toggle()

    def _focus_search(self) -> None:
        self.search_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search_edit.selectAll()

    # --- reading -------------------------------------------------------------------------------------------

    def query(self) -> LogQuery:
        units = tuple(u for u in self.units_edit.text().replace(",", " ").split() if u)
        delta = RANGES[max(0, self.range_box.currentIndex())][1]
        since = dt.datetime.now(dt.UTC) - delta if delta is not None else None
        return LogQuery(units=units, priority=self.priority_box.currentData(), since=since, grep=self._server_grep)

    def reload(self, *, redetect: bool = False) -> None:
        """Read the newest lines of every selected server again (then follow, if Follow is on)."""
        self._stop_follows()
        self._generation += 1
        generation = self._generation
        self._logs = {}
        if redetect:
            self._sources.clear()
        servers = list(self.selected)
        if not servers:
            self.model.clear()
            self.status.setText("Choose a server.")
            return
        try:
            query = self.query()
        except PanelError as error:
            self.status.setText(str(error))
            return
        mode = str(self.source_box.currentData())
        pages: dict[str, LogPage] = {}
        errors: list[str] = []
        self._reading = len(servers)
        self.status.setText(f"Reading the logs of {', '.join(servers)}…")
        for server in servers:
            self._submit_read(server, query, mode, generation, pages, errors)

    def _submit_read(self, server: str, query: LogQuery, mode: str, generation: int,
                     pages: dict[str, LogPage], errors: list[str]) -> None:
        context = self.state.context
        spec = context.spec(server)
        known = self._sources.get(server)
        prefix = self.path_prefix

        def read(job: JobContext) -> tuple[LogSources, LogPage]:
            runner = context.runner(server)
            sources = known or detect_sources(runner, server, spec.checks.log_files, path_prefix=prefix,
                                              cancel=job.cancel)
            source = choose_source(sources, mode)
            if source == "journal":
                return sources, read_journal(runner, server, query, path_prefix=prefix, cancel=job.cancel)
            return sources, read_files(runner, server, sources.files, query, path_prefix=prefix, cancel=job.cancel)

        def done(result: tuple[LogSources, LogPage]) -> None:
            if generation != self._generation:
                return
            sources, page = result
            self._sources[server] = sources
            pages[server] = page
            self._logs[server] = ServerLog(server, sources, page.source, page.first, page.last_cursor,
                                           dict(page.file_sizes), dict(page.file_lines), page.complete)

        def failed(error: PanelError) -> None:
            if generation == self._generation:
                errors.append(f"{server}: {error}")

        def finished() -> None:
            if generation != self._generation:
                return
            self._reading -= 1
            if self._reading == 0:
                self._show_pages(pages, errors)

        self.state.runner.submit(f"Reading the logs of {server}", read, timeout=60, on_success=done,
                                 on_error=failed, on_finished=finished)

    def _show_pages(self, pages: dict[str, LogPage], errors: list[str]) -> None:
        entries = merge_by_time(page.entries for page in pages.values())
        self.model.set_entries(entries)
        self.table.scrollToBottom()
        notes = [page.note for page in pages.values() if page.note]
        notes += [log.sources.note for log in self._logs.values() if log.source == "files" and log.sources.note]
        self._describe(errors + notes)
        if self.follow_button.isChecked():
            self._start_follows()

    def _describe(self, notes: list[str] | None = None) -> None:
        parts = [f"{self.model.rowCount():,} of {self.model.total:,} lines"]
        for log in self._logs.values():
            where = "journal" if log.source == "journal" else ", ".join(log.sources.files) or "no log files"
            parts.append(f"{log.server}: {where}")
        if self._server_grep:
            parts.append(f"searched on the server for “{self._server_grep}”")
        if self._follows:
            parts.append("following live")
        if self.model.dropped:
            parts.append(f"showing the newest {self.model.max_rows:,}")
        text = " · ".join(parts)
        if notes:
            text += "\n" + "\n".join(dict.fromkeys(notes))
        self.status.setText(text)

    def load_older(self) -> None:
        """The page before the oldest line shown, for every server that has one, merged by time."""
        query = self.query()
        generation = self._generation
        context = self.state.context
        prefix = self.path_prefix
        waiting = [log for log in self._logs.values() if not log.complete]
        pages: list[LogPage] = []
        errors: list[str] = []
        remaining = [len(waiting)]

        def finished() -> None:
            remaining[0] -= 1
            if remaining[0] or generation != self._generation:
                return
            self.model.prepend(merge_by_time(page.entries for page in pages))
            self._describe(errors)

        for log in waiting:
            def read(job: JobContext, log: ServerLog = log) -> LogPage:
                runner = context.runner(log.server)
                if log.source == "journal":
                    return read_journal(runner, log.server, query, before=log.oldest, path_prefix=prefix,
                                        cancel=job.cancel)
                return read_files(runner, log.server, log.sources.files, query, skip=log.file_lines,
                                  path_prefix=prefix, cancel=job.cancel)

            def done(page: LogPage, log: ServerLog = log) -> None:
                if generation != self._generation:
                    return
                log.complete = page.complete
                if page.first is not None:
                    log.oldest = page.first
                log.file_lines.update(page.file_lines)
                pages.append(page)

            def failed(error: PanelError, log: ServerLog = log) -> None:
                errors.append(f"{log.server}: {error}")

            self.state.runner.submit(f"Reading older logs of {log.server}", read, timeout=60, on_success=done,
                                     on_error=failed, on_finished=finished)
        if not waiting:
            self.status.setText(self.status.text().split("\n")[0] + "\nNothing older to read.")

    def _search_server(self) -> None:
        text = self.search_edit.text().strip()
        if text != self._server_grep:
            self._server_grep = text
            self.reload()

    def _apply_local_filter(self) -> None:
        text = self.search_edit.text()
        if not text.strip() and self._server_grep:
            self._server_grep = ""
            self.reload()
        self.model.set_filter(text, errors_only=self.errors_box.isChecked())
        self.table.scrollToBottom()
        self._describe()

    # --- following -----------------------------------------------------------------------------------------

    def _follow_toggled(self, on: bool) -> None:
        if on:
            if self._logs:
                self._start_follows()
            else:
                self.reload()
        else:
            self._stop_follows()
            self._describe()

    @property
    def following(self) -> bool:
        return bool(self._follows)

    def _start_follows(self) -> None:
        self._stop_follows()
        query = self.query()
        for log in self._logs.values():
            if log.source == "journal":
                self._start_follow(log, "", query)
            else:
                for path in log.sources.files:
                    self._start_follow(log, path, query)
        if self._follows:
            self.flush_timer.start()
        self._describe()

    def _start_follow(self, log: ServerLog, path: str, query: LogQuery) -> None:
        """One follow job: the journal of ``log.server`` (``path`` empty) or one of its log files.

        Its lines go into an :class:`Inbox` on the worker thread and the flush timer drains it, so a
        busy log costs no signal per chunk; only notes ("reconnecting…") come as job progress.
        """
        context = self.state.context
        pool = context.pool
        prefix = self.path_prefix
        generation = self._generation
        inbox = Inbox()
        self._inboxes.append(inbox)

        def follow(job: JobContext) -> None:
            endpoint = context.system_endpoint(log.server)  # reads ~/.ssh/config: here, not on the GUI thread
            if not path:
                follow_journal(pool, endpoint, log.server, query, inbox.put, after_cursor=log.last_cursor,
                               path_prefix=prefix, on_note=job.report, cancel=job.cancel)
            else:
                follow_file(pool, endpoint, log.server, path, inbox.put, query=query,
                            offset=log.file_sizes.get(path), path_prefix=prefix, on_note=job.report,
                            cancel=job.cancel)

        def note(payload: object) -> None:
            if generation == self._generation and isinstance(payload, str):
                self._describe([payload])

        def failed(error: PanelError) -> None:
            if generation == self._generation and not isinstance(error, Cancelled):
                self._describe([f"The follow stopped: {error}"])

        title = f"Following the logs of {log.server}" + (f" ({path})" if path else "")
        self._follows.append(self.state.runner.submit(title, follow, timeout=FOLLOW_TIMEOUT, on_progress=note,
                                                      on_error=failed))

    def _stop_follows(self) -> None:
        follows, self._follows = self._follows, []
        for job in follows:
            job.cancel.cancel()
        for inbox in self._inboxes:
            inbox.close()
        if follows:
            self.flush()  # what had already arrived
            self.flush_timer.stop()
        self._inboxes = []

    def stop_following(self) -> None:
        self.follow_button.setChecked(False)

    def flush(self) -> None:
        """Move the followed lines into the table: one insert per tick, never more than MAX_LINES_PER_FLUSH."""
        chunk: list[LogEntry] = []
        for inbox in self._inboxes:
            inbox.drain(chunk, MAX_LINES_PER_FLUSH)
        if not chunk:
            return
        if len(self._inboxes) > 1:
            chunk.sort(key=attrgetter("at"))  # several servers or files: in time order within the tick
        if len(chunk) > self.model.max_rows:
            chunk = chunk[-self.model.max_rows:]
        bar = self.table.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 2
        self.model.append(chunk)
        if at_bottom:
            self.table.scrollToBottom()
        now = time.monotonic()
        if now - self._described_at >= DESCRIBE_EVERY:
            self._described_at = now
            self._describe()


class Inbox:
    """Lines handed from a follow's worker thread to the window. ``deque.extend`` and ``popleft`` are
    thread-safe, so the worker appends and the GUI thread drains without a lock or a signal."""

    def __init__(self) -> None:
        self.lines: deque[LogEntry] = deque()
        self._open = True

    def put(self, entries: list[LogEntry]) -> None:
        if self._open:
            self.lines.extend(entries)

    def close(self) -> None:
        self._open = False

    def drain(self, into: list[LogEntry], limit: int) -> None:
        lines = self.lines
        while lines and len(into) < limit:
            into.append(lines.popleft())


def choose_source(sources: LogSources, mode: str) -> str:
    """``journal`` or ``files`` for this server; raises when the chosen source isn't there."""
    if mode in ("auto", "journal") and sources.journal:
        return "journal"
    if mode == "journal":
        raise PanelError(sources.note or f"{sources.server} has no journal.")
    if sources.files:
        return "files"
    configured = ", ".join(sources.unreadable)
    raise PanelError(
        (sources.note + " " if sources.note and not sources.journal else "")
        + (f"None of its log files can be read ({configured})." if configured else
           "No log files are configured for it: add them as checks.log_files in the config.")
    )
