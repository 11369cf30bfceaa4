"""The server chooser several pages put above their table."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtWidgets import QComboBox


def refill_servers(box: QComboBox, servers: Sequence[str], *, all_label: str | None = None) -> None:
    """Put ``servers`` in ``box`` (each with its name as data), after an ``all_label`` entry (data "")
    when one is given. The chosen server stays chosen while it is still there, and the refill emits
    no change: the inventory changed, not the operator's choice."""
    current = box.currentData()
    box.blockSignals(True)
    box.clear()
    if all_label is not None:
        box.addItem(all_label, "")
    for server in servers:
        box.addItem(server, server)
    box.setCurrentIndex(max(0, box.findData(current)))
    box.blockSignals(False)
