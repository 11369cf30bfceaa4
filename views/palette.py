"""The command palette (Ctrl+K) and the shortcut list (?).

The palette searches every :class:`~views.state.PaletteAction` that the pages registered in
``state.actions`` ("Unlock app1", "Restart nginx on app2", "Go to Logs" …) with the fuzzy matcher
of :mod:`services.triage.fuzzy`, and runs the chosen one. Actions that change something are shown
greyed out while read-only mode is on, and refused through ``state.allow_change``.

:func:`install_palette` wires both into the main window once its pages exist.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QItemSelectionModel, QObject, Qt, QTimer
from PySide6.QtGui import QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDialog,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from services.errors import PanelError
from services.triage.fuzzy import FuzzyIndex
from views.models.palette import PaletteModel
from views.state import PaletteAction, PanelState

if TYPE_CHECKING:
    from views.main_window import MainWindow

log = logging.getLogger(__name__)

PALETTE_KEYS = "Ctrl+K"
SHORTCUTS_KEY = "?"
MAX_RESULTS = 200
RECENT_BONUS = 30

# Window-wide keys that are not palette actions of their own.
GLOBAL_SHORTCUTS: tuple[tuple[str, str], ...] = (
    (PALETTE_KEYS, "Command palette: search servers, groups, alerts, pages and actions"),
    (SHORTCUTS_KEY, "This list of shortcuts"),
    ("Ctrl+1 … Ctrl+9", "Go to the 1st … 9th page of the sidebar"),
    ("F5", "Reload the page you are on (Fleet: refresh every server)"),
    ("Ctrl+F", "Search or filter on the page you are on"),
    ("Ctrl+L", "Logs: follow live / stop following"),
    ("Enter", "Palette: run the chosen action"),
    ("↑ ↓ PgUp PgDn", "Palette: choose"),
    ("Esc", "Close the palette, a dialog or this list"),
)


class CommandPalette(QDialog):
    """Type a few letters of what you want; Enter runs it. Esc closes."""

    def __init__(self, state: PanelState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.setWindowTitle("Command palette")
        self.setModal(True)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("Type a command, a server, a group, an alert or a page…  (Enter runs it)")
        self.edit.setClearButtonEnabled(True)
        self.model = PaletteModel(self)
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the keys stay in the search box
        self.view.verticalHeader().hide()
        self.view.horizontalHeader().hide()
        self.view.setShowGrid(False)
        self.view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.view.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.view.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.view.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.view.doubleClicked.connect(lambda index: self.trigger_row(index.row()))
        self.status = QLabel()
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.edit)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.status)
        self.edit.textChanged.connect(self._search)
        self.edit.installEventFilter(self)
        self._actions: list[PaletteAction] = []
        self._index = FuzzyIndex([])
        self._dirty = True
        self._recent: list[str] = []  # keys of the actions run lately, newest first
        self._refresh = QTimer(self)  # many actions registered at once refresh the open palette once
        self._refresh.setSingleShot(True)
        self._refresh.setInterval(0)
        self._refresh.timeout.connect(lambda: self._search(self.edit.text()) if self.isVisible() else None)
        state.actions_changed.connect(self._actions_changed)
        state.read_only_changed.connect(lambda _: self._search(self.edit.text()) if self.isVisible() else None)
        self.resize(720, 420)

    # --- opening and searching -----------------------------------------------------------------------

    def open_palette(self, text: str = "") -> None:
        parent = self.parentWidget()
        if parent is not None:
            width = max(520, min(900, int(parent.width() * 0.6)))
            self.resize(width, 420)
            top_left = parent.mapToGlobal(parent.rect().topLeft())
            self.move(top_left.x() + (parent.width() - width) // 2, top_left.y() + 60)
        self.status.clear()
        self.edit.setText(text)
        self._search(text)
        self.open()
        self.activateWindow()
        self.edit.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def _actions_changed(self) -> None:
        self._dirty = True
        if self.isVisible():
            self._refresh.start()

    def _rebuild(self) -> None:
        self._actions = sorted(self.state.actions.values(), key=lambda a: (a.page, a.title))
        self._index = FuzzyIndex([a.title for a in self._actions],
                                 [" ".join((*a.keywords, a.page)) for a in self._actions])
        self._dirty = False

    def results(self, query: str) -> list[PaletteAction]:
        """The actions matching ``query``, best first (recently used ones get a small lift)."""
        if self._dirty:
            self._rebuild()
        recent = {key: RECENT_BONUS - n for n, key in enumerate(self._recent[:RECENT_BONUS])}
        if not query.strip():
            order = sorted(range(len(self._actions)),
                           key=lambda i: (-recent.get(self._key(self._actions[i]), 0), i))
            return [self._actions[i] for i in order[:MAX_RESULTS]]
        found = self._index.search(query, MAX_RESULTS * 2)
        scored = sorted(((score + recent.get(self._key(self._actions[i]), 0), i) for score, i in found),
                        key=lambda pair: (-pair[0], pair[1]))
        return [self._actions[i] for _, i in scored[:MAX_RESULTS]]

    def _search(self, text: str) -> None:
        rows = self.results(text)
        self.model.set_rows(rows, self.state.read_only)
        if rows:
            self.view.selectRow(0)
            self.view.scrollToTop()
        if self.state.read_only and any(a.changes_something for a in rows):
            self.status.setText("Read-only mode is on: actions that change something are greyed out. "
                                "Toggle it with “Toggle read-only mode” or the status bar.")
        elif not rows:
            self.status.setText("Nothing matches. Try fewer letters, or a server's or page's name.")
        else:
            self.status.clear()

    @staticmethod
    def _key(action: PaletteAction) -> str:
        return action.key or action.title

    # --- choosing and running --------------------------------------------------------------------------

    def current_row(self) -> int:
        rows = self.view.selectionModel().selectedRows()
        return rows[0].row() if rows else (0 if self.model.rowCount() else -1)

    def _move(self, delta: int) -> None:
        count = self.model.rowCount()
        if not count:
            return
        row = max(0, min(count - 1, self.current_row() + delta))
        index = self.model.index(row, 0)
        self.view.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
        self.view.scrollTo(index)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.edit and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            key = event.key()
            page = max(1, self.view.viewport().height() // max(1, self.view.verticalHeader().defaultSectionSize()))
            moves = {Qt.Key.Key_Down: 1, Qt.Key.Key_Up: -1, Qt.Key.Key_PageDown: page, Qt.Key.Key_PageUp: -page}
            if key in moves:
                self._move(moves[Qt.Key(key)])
                return True
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self.trigger_row(self.current_row())
                return True
        return super().eventFilter(watched, event)

    def trigger_row(self, row: int) -> bool:
        action = self.model.action_at(row)
        return action is not None and self.trigger(action)

    def trigger(self, action: PaletteAction) -> bool:
        """Run ``action`` (after the palette has closed). Refused, with the reason, while read-only."""
        if action.changes_something and not self.state.allow_change(action.title):
            self.status.setText(f"Read-only mode is on: “{action.title}” changes something, so it is disabled. "
                                "Turn read-only mode off first (“Toggle read-only mode”).")
            return False
        key = self._key(action)
        self._recent = [key, *[k for k in self._recent if k != key]][:50]
        self.accept()
        QTimer.singleShot(0, lambda: run_action(self.state, action))
        return True

    def show_shortcuts(self) -> ShortcutsDialog:
        dialog = ShortcutsDialog(self.state, self.parentWidget())
        dialog.open()
        return dialog


def run_action(state: PanelState, action: PaletteAction) -> None:
    """Run a palette action; an error becomes a status-bar message, never a crash."""
    try:
        action.run()
    except PanelError as error:
        state.message.emit(f"{action.title}: {error}")
    except Exception as error:
        log.exception("palette action %s failed", action.title)
        state.message.emit(f"{action.title} failed unexpectedly: {error.__class__.__name__}: {error}")


class ShortcutsDialog(QDialog):
    """Every keyboard shortcut: the window's own, then the actions that have one."""

    def __init__(self, state: PanelState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        rows = list(shortcut_rows(state))
        self.table = QTableWidget(len(rows), 2)
        self.table.setHorizontalHeaderLabels(["Keys", "Does"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        for number, (keys, text) in enumerate(rows):
            self.table.setItem(number, 0, QTableWidgetItem(keys))
            self.table.setItem(number, 1, QTableWidgetItem(text))
        hint = QLabel("Everything else is in the command palette: press Ctrl+K and type a few letters.")
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(hint)
        self.resize(620, 460)
        QShortcut(QKeySequence(SHORTCUTS_KEY), self, self.close)


def shortcut_rows(state: PanelState) -> list[tuple[str, str]]:
    rows = list(GLOBAL_SHORTCUTS)
    seen = {keys for keys, _ in rows}
    for action in sorted(state.actions.values(), key=lambda a: (a.shortcut, a.title)):
        if action.shortcut and (action.shortcut, action.title) not in seen:
            rows.append((action.shortcut, action.title + (f" ({action.page})" if action.page else "")))
            seen.add((action.shortcut, action.title))  # type: ignore[arg-type]
    return rows


class _PaletteKeyFilter(QObject):
    """Ctrl+K opens the palette even from a text box, which would otherwise take it for
    "delete to the end of the line" and keep the shortcut from firing."""

    def __init__(self, window: QWidget, open_palette: Callable[[], None]) -> None:
        super().__init__(window)
        self._window = window
        self._open = open_palette
        self._sequence = QKeySequence(PALETTE_KEYS)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # Every event of the application passes here: reject all but key events with a cheap check first.
        if not isinstance(event, QKeyEvent) or event.type() != QEvent.Type.ShortcutOverride:
            return False
        if QKeySequence(event.keyCombination()) != self._sequence:
            return False
        if not isinstance(watched, QWidget) or watched.window() is not self._window:
            return False
        event.accept()
        QTimer.singleShot(0, self._open)
        return True


def install_palette(window: MainWindow) -> CommandPalette:
    """Give ``window`` (with its state and pages loaded) the palette, its shortcuts and the window's
    own palette actions: "Go to PAGE" for every page, "Toggle read-only mode", "Keyboard shortcuts".
    Safe to call again after the inventory was reloaded."""
    state = window.state
    old = getattr(window, "palette_dialog", None)
    if isinstance(old, CommandPalette):
        old.deleteLater()
    palette = CommandPalette(state, window)
    setattr(window, "palette_dialog", palette)  # noqa: B010 - the window's attribute, set from here

    def current() -> CommandPalette:
        found = getattr(window, "palette_dialog", palette)
        return found if isinstance(found, CommandPalette) else palette

    if not getattr(window, "_palette_installed", False):
        setattr(window, "_palette_installed", True)  # noqa: B010
        QShortcut(QKeySequence(PALETTE_KEYS), window, lambda: current().open_palette())
        QShortcut(QKeySequence(SHORTCUTS_KEY), window, lambda: current().show_shortcuts())
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(_PaletteKeyFilter(window, lambda: current().open_palette()))
    state.read_only_changed.connect(window.read_only_box.setChecked)

    for number, page in enumerate(window.pages, start=1):
        title = str(getattr(page, "title", ""))
        state.add_action(PaletteAction(
            f"Go to {title}", _go_to(window, title), keywords=("page", "show", "open", "navigate"),
            shortcut=f"Ctrl+{number}" if number <= 9 else "", page="Navigation", key=f"nav/{title}"))
    state.add_action(PaletteAction(
        "Toggle read-only mode", window.read_only_box.toggle,
        keywords=("read only", "readonly", "write", "lock", "safe", "changes", "allow"), page="Panel",
        key="panel/read-only"))
    state.add_action(PaletteAction(
        "Keyboard shortcuts", palette.show_shortcuts, keywords=("help", "keys", "shortcuts"), shortcut=SHORTCUTS_KEY,
        page="Panel", key="panel/shortcuts"))
    return palette


def _go_to(window: MainWindow, title: str) -> Callable[[], Any]:
    return lambda: window.show_page(title)
