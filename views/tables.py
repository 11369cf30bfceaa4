"""The panel's tables look and behave alike: whole rows are selected, nothing is edited in place,
no row numbers, alternating row colours, no grid and no word wrap."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QAbstractItemModel, Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLayout, QSplitter, QTableView, QVBoxLayout, QWidget


def row_table(model: QAbstractItemModel, widths: Sequence[int] | None = None, *, multi_select: bool = False,
              sort_by: tuple[int, Qt.SortOrder] | None = None, tight_rows: bool = False) -> QTableView:
    """A table of ``model``. ``widths`` None: the columns fit their contents. Given (even empty): the
    columns start that wide and the operator may drag them, as a table of thousands of rows needs
    (fitting measures every row). ``sort_by``: (column, order), and a click on a header sorts.
    ``tight_rows``: rows one line of text high, for long lists."""
    table = QTableView()
    table.setModel(model)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection if multi_select
                           else QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().hide()
    if tight_rows:
        table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
    table.setAlternatingRowColors(True)
    table.setShowGrid(False)
    table.setWordWrap(False)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents if widths is None
                                else QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(True)
    for column, width in enumerate(widths or ()):
        table.setColumnWidth(column, width)
    if sort_by is not None:
        table.setSortingEnabled(True)
        table.sortByColumn(*sort_by)
    return table


def table_over(table: QWidget, *below: QWidget | QLayout) -> QSplitter:
    """``table`` over a box of ``below`` (details, buttons), split 3:2 and adjustable by the operator."""
    box = QWidget()
    box_layout = QVBoxLayout(box)
    box_layout.setContentsMargins(0, 0, 0, 0)
    for part in below:
        if isinstance(part, QLayout):
            box_layout.addLayout(part)
        else:
            box_layout.addWidget(part, 1)
    splitter = QSplitter(Qt.Orientation.Vertical)
    splitter.addWidget(table)
    splitter.addWidget(box)
    splitter.setStretchFactor(0, 3)
    splitter.setStretchFactor(1, 2)
    return splitter
