"""The pieces the Cloudflare, Billing and Mail pages are built from, so that the three look and
behave alike: what is selected in their tables, buttons, rows of controls and tabs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from PySide6.QtCore import QAbstractProxyModel
from PySide6.QtWidgets import (
    QBoxLayout,
    QHBoxLayout,
    QLayout,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

T = TypeVar("T")


def selected(table: QTableView, row_at: Callable[[int], T]) -> T | None:
    """What the table's selected row shows: ``row_at`` of that row's number in the source model
    (behind the table's proxy, if it has one). None when nothing is selected."""
    rows = table.selectionModel().selectedRows()
    if not rows:
        return None
    model = table.model()
    index = model.mapToSource(rows[0]) if isinstance(model, QAbstractProxyModel) else rows[0]
    return row_at(index.row())


def select_row(table: QTableView, source_row: int) -> bool:
    """Select, and scroll to, the row with this number in the source model. False when there is no
    such row, or the table's filter hides it."""
    if source_row < 0:
        return False
    model = table.model()
    if isinstance(model, QAbstractProxyModel):
        index = model.mapFromSource(model.sourceModel().index(source_row, 0))
    else:
        index = model.index(source_row, 0)
    if not index.isValid():
        return False
    table.selectRow(index.row())
    table.scrollTo(index)
    return True


def push_button(text: str, on_click: Callable[[], object], *, tip: str = "") -> QPushButton:
    widget = QPushButton(text)
    if tip:
        widget.setToolTip(tip)
    widget.clicked.connect(on_click)
    return widget


def _fill(layout: QBoxLayout, parts: Sequence[QWidget | QLayout], grow: QWidget | None) -> None:
    for part in parts:
        if isinstance(part, QLayout):
            layout.addLayout(part)
        else:
            layout.addWidget(part, 1 if part is grow else 0)


def row(*parts: QWidget | QLayout, grow: QWidget | None = None) -> QHBoxLayout:
    """``parts`` side by side; ``grow`` takes the width left over."""
    layout = QHBoxLayout()
    _fill(layout, parts, grow)
    return layout


def button_row(*buttons: QWidget) -> QHBoxLayout:
    """Buttons from the left; the width left over stays at the right."""
    layout = row(*buttons)
    layout.addStretch(1)
    return layout


def column(*parts: QWidget | QLayout, grow: QWidget, margins: bool = True, into: QWidget | None = None) -> QWidget:
    """``parts`` from top to bottom, ``grow`` taking the height left over, in ``into`` or else in a new
    widget: a tab's page, or without ``margins`` a box in a splitter."""
    widget = into if into is not None else QWidget()
    layout = QVBoxLayout(widget)
    if not margins:
        layout.setContentsMargins(0, 0, 0, 0)
    _fill(layout, parts, grow)
    return widget
