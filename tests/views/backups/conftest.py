"""A Backups page on a real PanelContext: a config on the lab's servers, a private store and keyring,
a JobRunner and a PanelState. The page does not start reading by itself (tests call refresh())."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from panel.context import PanelContext
from tests.views.backups.backup_helpers import open_context
from views.pages.backups import BackupsPage
from views.state import PanelState
from views.workers import JobRunner

MakePage = Callable[[Path], BackupsPage]


@pytest.fixture
def make_page(qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakePage]:
    monkeypatch.setenv("PANEL_DATA_DIR", str(tmp_path / "data"))
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    made: list[tuple[JobRunner, PanelState, PanelContext]] = []

    def make(config: Path) -> BackupsPage:
        context = open_context(config, tmp_path)
        runner = JobRunner()
        state = PanelState(context, runner)
        state.poll_timer.stop()
        page = BackupsPage(state, autostart=False)
        qtbot.addWidget(page)
        page.resize(1200, 800)
        made.append((runner, state, context))
        return page

    yield make
    for runner, state, context in made:
        state.poll_timer.stop()
        runner.shutdown()
        context.close()
        context.store.close()


def read(page: BackupsPage, qtbot: Any) -> None:
    """Read every repository and wait until the page shows them."""
    with qtbot.waitSignal(page.repositories_loaded, timeout=60000):
        page.refresh()
