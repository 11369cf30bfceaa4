"""Streaming a group's rows from the source into INSERT batches, on a thread of its own.

The reader runs one streaming query per table on the source (inside the caller's consistent
snapshot) and hands VALUES tuples, already rendered as SQL literals by the source server, to the
writer in batches of about ``batch_bytes``. Reading and writing overlap, and each batch costs the
writer one round trip, so a move over a slow tunnel is bounded by bandwidth, not latency.
"""

# SQL text is built from identifiers only (information_schema names and the config, quoted by
# sql.ident); every value goes in as a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pymysql.cursors

from services.groups.checks import Checksum
from services.groups.plan import Side
from services.groups.selection import Part
from services.groups.sql import ident, tuple_expr

FETCH = 2000


@dataclass(frozen=True)
class Item:
    kind: Literal["rows", "end", "sums", "error"]
    index: int = -1
    rows: tuple[str, ...] = ()
    sums: dict[str, Checksum] | None = None
    error: BaseException | None = None


class _Stopped(Exception):
    pass


def insert_prefix(part: Part) -> str:
    columns = ", ".join(ident(c.name) for c in part.table.stored_columns)
    return f"INSERT INTO {ident(part.name)} ({columns}) VALUES "


def select_tuples(part: Part) -> str:
    stored = part.table.stored_columns
    order = ", ".join(ident(c) for c in part.table.order_by)
    return (f"SELECT {tuple_expr([(c.name, c.data_type) for c in stored])} FROM {ident(part.name)} "
            f"WHERE {part.where} ORDER BY {order}")


class Reader(threading.Thread):
    """Streams ``parts`` from ``side``, then the checksums of ``checksum_parts`` (same snapshot)."""

    def __init__(self, side: Side, parts: Sequence[Part], checksum_parts: Sequence[Part], batch_bytes: int) -> None:
        super().__init__(name="groups-move-reader", daemon=True)
        self.side = side
        self.parts = list(parts)
        self.checksum_parts = list(checksum_parts)
        self.batch_bytes = batch_bytes
        self.items: queue.Queue[Item] = queue.Queue(maxsize=4)
        self.stopping = threading.Event()

    def stop(self) -> None:
        self.stopping.set()

    def _put(self, item: Item) -> None:
        while not self.stopping.is_set():
            try:
                self.items.put(item, timeout=0.2)
                return
            except queue.Full:
                continue
        raise _Stopped

    def run(self) -> None:
        try:
            for index, part in enumerate(self.parts):
                self._read(index, part)
                self._put(Item("end", index))
            self._put(Item("sums", sums=self.side.checksums(self.checksum_parts)))
        except _Stopped:
            return
        except BaseException as exc:  # handed to the writer, which owns the error handling
            if not self.stopping.is_set():
                try:
                    self._put(Item("error", error=exc))
                except _Stopped:
                    return

    def _read(self, index: int, part: Part) -> None:
        batch: list[str] = []
        size = 0
        limit = self.batch_bytes
        with self.side.guard(), self.side.db().cursor(pymysql.cursors.SSCursor) as cursor:
            cursor.execute(select_tuples(part), part.args)
            while True:
                rows = cursor.fetchmany(FETCH)
                if not rows:
                    break
                if self.stopping.is_set():
                    raise _Stopped
                for (value,) in rows:
                    text = str(value)
                    n = len(text.encode()) + 1
                    if batch and size + n > limit:
                        self._put(Item("rows", index, tuple(batch)))
                        batch, size = [], 0
                    batch.append(text)
                    size += n
        if batch:
            self._put(Item("rows", index, tuple(batch)))

    def next_item(self, *, poll: float = 0.5) -> Item:
        """The next item; an error item if the thread died without saying why."""
        while True:
            try:
                return self.items.get(timeout=poll)
            except queue.Empty:
                if not self.is_alive() and self.items.empty():
                    return Item("error", error=RuntimeError("the source reader stopped unexpectedly"))
