"""The command palette, driven with the keyboard only; the shortcut list; read-only mode refusing every
action that changes something."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialog, QLineEdit, QMessageBox, QWidget

from panel.lab.procs import free_ports
from services.triage.fuzzy import FuzzyIndex, fuzzy_score, rank
from tests.services.triage.triage_fakes import FakeBin
from views.main_window import MainWindow
from views.palette import CommandPalette, ShortcutsDialog
from views.state import PaletteAction

TITLES = [
    "Unlock app1", "Unlock app2", "Reboot and unlock app1", "Go to Unlock", "Restart nginx on app1",
    "Restart nginx on app2", "Stop nginx on app2", "Status of nginx on app2", "Group acme (app1)",
    "Group acme-labs (app2)", "Cloudflare: I'm under attack mode on", "Cloudflare: I'm under attack mode off",
    "Toggle read-only mode", "Go to Logs", "Logs of app1", "Follow logs of app2", "Open terminal on app1",
    "Refresh app2", "Run all checks", "Processes on app1",
]


def best(query: str) -> str:
    return TITLES[rank(query, TITLES)[0][1]]


def test_the_fuzzy_matcher_finds_what_the_operator_means() -> None:
    assert best("unl app1") == "Unlock app1"
    assert best("app1 unl") == "Unlock app1"
    assert best("restart nginx on app2") == "Restart nginx on app2"
    assert best("rs ngx app2") == "Restart nginx on app2"
    assert best("group acme") == "Group acme (app1)"
    assert best("under attack on") == "Cloudflare: I'm under attack mode on"
    assert best("term app1") == "Open terminal on app1"
    assert best("ro mode") == "Toggle read-only mode"
    assert rank("zzz", TITLES) == []
    assert fuzzy_score("nginx", "Restart nginx on app2") > fuzzy_score("ngx", "Restart nginx on app2")  # type: ignore[operator]
    assert fuzzy_score("", "anything") == 0 and fuzzy_score("qq", "anything") is None
    assert fuzzy_score("luks", "Unlock app1", "unlock luks passphrase") is not None  # found in its keywords


def test_the_matcher_is_fast_for_ten_thousand_entries() -> None:
    generator = random.Random(7)
    words = ["restart", "stop", "nginx", "mariadb", "group", "acme", "unlock", "backup", "alert", "app", "logs",
             "status", "of", "on", "verify", "restore", "suspend", "export", "cron", "php-fpm"]
    titles = [" ".join(generator.choice(words) for _ in range(4)) + f" app{n % 7} #{n}" for n in range(10_000)]
    titles[4242] = "Unlock app1"
    index = FuzzyIndex(titles, ["keywords here"] * len(titles))
    slowest = 0.0
    for typed in ("u", "un", "unl", "unl ", "unl a", "unl ap", "unl app", "unl app1"):
        started = time.perf_counter()
        found = index.search(typed)
        slowest = max(slowest, time.perf_counter() - started)
    assert titles[found[0][1]] == "Unlock app1"
    started = time.perf_counter()
    index.search("restart nginx on app2")  # typed at once
    slowest = max(slowest, time.perf_counter() - started)
    print(f"palette search over 10,000 entries: slowest keystroke {slowest * 1000:.1f} ms")
    assert slowest < 0.25  # generous for a shared CPU; typically well under 50 ms


def activate(qtbot, window: QWidget) -> None:
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)


def focused() -> QWidget:
    widget = QApplication.focusWidget()
    assert widget is not None
    return widget


def palette_of(window: MainWindow) -> CommandPalette:
    palette = getattr(window, "palette_dialog", None)
    assert isinstance(palette, CommandPalette)
    return palette


def press_ctrl_k(qtbot, window: MainWindow) -> CommandPalette:
    qtbot.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    palette = palette_of(window)
    qtbot.waitUntil(palette.isVisible, timeout=3000)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is palette.edit, timeout=3000)
    return palette


def test_the_palette_runs_an_action_from_the_keyboard_alone(
    qtbot, open_window: Callable[[Path], MainWindow], config: Path
) -> None:
    window = open_window(config)
    activate(qtbot, window)
    ran: list[str] = []
    window.state.add_action(PaletteAction("Unlock app1", lambda: ran.append("unlock app1"), changes_something=True,
                                          keywords=("luks",), page="Unlock", key="test:unlock:app1"))
    window.state.add_action(PaletteAction("Unlock app2", lambda: ran.append("unlock app2"), changes_something=True,
                                          page="Unlock", key="test:unlock:app2"))
    assert window.state.read_only  # a new install starts read-only

    # read-only on: the action is shown disabled and Enter refuses it
    palette = press_ctrl_k(qtbot, window)
    qtbot.keyClicks(focused(), "unl app1")
    assert palette.model.action_at(0) is not None and palette.model.action_at(0).title == "Unlock app1"  # type: ignore[union-attr]
    assert "read-only" in palette.model.data(palette.model.index(0, 0))
    qtbot.keyClick(focused(), Qt.Key.Key_Return)
    assert ran == [] and palette.isVisible() and "Read-only mode is on" in palette.status.text()
    qtbot.keyClick(focused(), Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not palette.isVisible(), timeout=3000)

    # turn read-only off, from the palette too
    palette = press_ctrl_k(qtbot, window)
    qtbot.keyClicks(focused(), "toggle read")
    qtbot.keyClick(focused(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not window.state.read_only, timeout=3000)
    assert not window.read_only_box.isChecked()

    palette = press_ctrl_k(qtbot, window)
    qtbot.keyClicks(focused(), "unl app1")
    qtbot.keyClick(focused(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: ran == ["unlock app1"], timeout=3000)
    assert not palette.isVisible()

    # arrows choose another line; the last choice comes first on an empty query
    palette = press_ctrl_k(qtbot, window)
    qtbot.keyClicks(focused(), "unl")
    titles = [palette.model.action_at(r).title for r in range(2)]  # type: ignore[union-attr]
    qtbot.keyClick(focused(), Qt.Key.Key_Down)
    qtbot.keyClick(focused(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(ran) == 2, timeout=3000)
    assert ran[1] == titles[1].lower()
    palette = press_ctrl_k(qtbot, window)
    assert palette.model.action_at(0).title == titles[1]  # type: ignore[union-attr]
    qtbot.keyClick(focused(), Qt.Key.Key_Escape)


def test_every_page_is_reachable_from_the_palette_and_ctrl_k_works_in_a_text_box(
    qtbot, open_window: Callable[[Path], MainWindow], config: Path
) -> None:
    window = open_window(config)
    activate(qtbot, window)
    titles = [str(getattr(page, "title", "")) for page in window.pages]
    assert {"Logs", "Services", "Processes", "Timeline"} <= set(titles)
    for title in titles:
        assert f"Go to {title}" in {a.title for a in window.state.actions.values()}
    window.show_page("Logs")
    logs = window.page("Logs")
    search = logs.search_edit  # type: ignore[union-attr]
    search.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is search, timeout=3000)
    qtbot.keyClicks(search, "abc")
    palette = press_ctrl_k(qtbot, window)  # from inside the search box, which would take Ctrl+K otherwise
    assert search.text() == "abc"
    qtbot.keyClicks(focused(), "go time")
    qtbot.keyClick(focused(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.page("Timeline"), timeout=3000)
    assert not palette.isVisible()


def test_question_mark_lists_the_shortcuts(
    qtbot, open_window: Callable[[Path], MainWindow], config: Path
) -> None:
    window = open_window(config)
    activate(qtbot, window)
    window.sidebar.setFocus()
    qtbot.keyClick(window.sidebar, Qt.Key.Key_Question)
    qtbot.waitUntil(lambda: any(isinstance(w, ShortcutsDialog) and w.isVisible()
                                for w in QApplication.topLevelWidgets()), timeout=3000)
    dialog = next(w for w in QApplication.topLevelWidgets() if isinstance(w, ShortcutsDialog) and w.isVisible())
    def text(row: int, column: int) -> str:
        item = dialog.table.item(row, column)
        return item.text() if item is not None else ""

    rows = {(text(r, 0), text(r, 1)) for r in range(dialog.table.rowCount())}
    keys = {k for k, _ in rows}
    assert {"Ctrl+K", "?", "Ctrl+L"} <= keys
    assert ("Ctrl+1", "Go to Fleet (Navigation)") in rows
    dialog.close()
    # typed into a text box, "?" is just a character
    window.show_page("Logs")
    search = window.page("Logs").search_edit  # type: ignore[union-attr]
    search.setFocus()
    qtbot.keyClicks(search, "why?")
    assert search.text() == "why?"


def test_read_only_mode_refuses_every_action_that_changes_something(
    qtbot, open_window: Callable[[Path], MainWindow], config: Path, fake_bin: FakeBin
) -> None:
    closed = f"http://127.0.0.1:{free_ports(1)[0]}"
    full = config.with_name("full.toml")
    full.write_text(config.read_text().replace("[servers.app2.checks]", f"unlock_port = {free_ports(1)[0]}\n\n"
                                               "[servers.app2.checks]")
                    + f'[cloudflare]\nzone = "example.com"\nbase_url = "{closed}/client/v4"\n\n'
                    f'[stripe]\nbase_url = "{closed}"\n\n[mailgun]\ndomain = "mg.example.com"\nbase_url = "{closed}"\n')
    window = open_window(full)
    state = window.state
    services = window.page("Services")
    services.path_prefix = fake_bin.prefix  # type: ignore[union-attr]
    for server in ("app1", "app2"):
        services.list_server(server)  # type: ignore[union-attr]
    qtbot.waitUntil(lambda: "units/app2/nginx.service/restart" in state.actions, timeout=20000)
    processes = window.page("Processes")
    processes.refresh()  # type: ignore[union-attr]
    qtbot.waitUntil(lambda: processes.model.rowCount() > 0, timeout=20000)  # type: ignore[union-attr]
    processes.table.selectRow(0)  # type: ignore[union-attr]
    qtbot.waitUntil(lambda: not window.runner.active_jobs, timeout=20000)
    assert state.read_only

    asked: list[tuple[str, bool]] = []
    allow = state.allow_change

    def recording_allow(what: str) -> bool:
        answer = allow(what)
        asked.append((what, answer))
        return answer

    state.allow_change = recording_allow
    changing = [a for a in state.actions.values() if a.changes_something]
    assert {"Restart nginx on app2", "Stop nginx on app1", "Terminate the chosen process"} <= \
        {a.title for a in changing}
    palette = palette_of(window)
    store = state.context.store
    audited = len(store.audit_entries())
    before = {id(w) for w in QApplication.topLevelWidgets() if w.isVisible()}
    not_asking: list[str] = []
    submitted: list[str] = []
    submit = window.runner.submit

    def recording_submit(title: str, *args: Any, **kwargs: Any) -> Any:
        submitted.append(title)
        return submit(title, *args, **kwargs)

    window.runner.submit = recording_submit  # type: ignore[method-assign]
    for action in changing:
        asked.clear()
        submitted.clear()
        action.run()
        refused = bool(asked) and asked[0][1] is False
        mine = (action.key or "").startswith(("units/", "processes/", "logs/", "services/", "timeline/", "fleet/"))
        if mine:
            assert refused, f"{action.title} did not ask allow_change first"
        elif not refused:
            not_asking.append(action.title)
        # whatever it asked, nothing may have happened
        assert submitted == [], f"{action.title} started {submitted} in read-only mode"
        assert not palette.trigger(action), f"the palette ran {action.title} in read-only mode"
    opened = [w for w in QApplication.topLevelWidgets()
              if w.isVisible() and id(w) not in before and isinstance(w, QDialog | QMessageBox)]
    assert opened == [], f"dialogs opened in read-only mode: {[w.windowTitle() for w in opened]}"
    assert len(store.audit_entries()) == audited and fake_bin.calls() == []
    print(f"{len(changing)} changing actions, each refused in read-only mode; "
          f"these did nothing here without asking allow_change (nothing was chosen): {not_asking}")


def test_the_read_only_box_follows_the_mode(
    qtbot, open_window: Callable[[Path], MainWindow], config: Path
) -> None:
    window = open_window(config)
    window.state.set_read_only(False)
    assert not window.read_only_box.isChecked()
    window.state.set_read_only(True)
    assert window.read_only_box.isChecked()
    assert isinstance(palette_of(window).edit, QLineEdit)
