"""Opening a vendor page in a test: shown as the window shows it, loaded, or ending in its set-up
state, with the status bar's messages followed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from tests.views.vendors.conftest import FAST_RETRY, WRONG_KEYS, Panel
from views.dialogs.api_key import VendorPage

P = TypeVar("P", bound=VendorPage)


def show_page(qtbot: Any, page: P, *, wait: bool, timeout: int) -> P:
    """The page as the window shows it, but with fast retries; with ``wait``, once it has loaded."""
    page.retry = FAST_RETRY
    qtbot.addWidget(page)
    page.resize(1200, 800)
    page.show()
    if wait:
        with qtbot.waitSignal(page.loaded, timeout=timeout):
            page.activate()
    return page


def wait_for_set_up(qtbot: Any, page: VendorPage, timeout: int = 10000) -> None:
    """Load the page, which is to end in its set-up state."""
    page.activate()
    qtbot.waitUntil(lambda: page.needs_set_up, timeout=timeout)


def messages_of(panel: Panel) -> list[str]:
    """The status bar's messages from now on."""
    messages: list[str] = []
    panel.state.message.connect(messages.append)
    return messages


def open_with_a_wrong_key(qtbot: Any, make_panel: Callable[..., Panel], vendor: str, open_page: Callable[..., P],
                          timeout: int = 10000) -> tuple[Panel, P]:
    """A page whose vendor refuses the key: it shows the set-up state and says so."""
    panel = make_panel(keys={vendor: WRONG_KEYS[vendor]})
    page = open_page(qtbot, panel, wait=False)
    wait_for_set_up(qtbot, page, timeout)
    assert "refused" in page.set_up_panel.heading.text()
    return panel, page


def open_after_a_429(qtbot: Any, panel: Panel, app: Any, open_page: Callable[..., P], said: str) -> P:
    """A page whose vendor (the stand-in ``app``) answers a 429 first: it says so (``said``), waits,
    then loads."""
    messages = messages_of(panel)
    app.faults.throttle_next(1, retry_after=1)
    page = open_page(qtbot, panel)
    assert any(said in m for m in messages)
    return page
