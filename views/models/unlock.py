"""The Unlock table: one row per encrypted server, its lock state, volumes, and live unlock progress."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import Qt

from services.probe import ServerStatus
from services.unlock import Step, UnlockProgress
from views.models.table import ListTableModel
from views.style import STATE_COLOURS, dot_icon, state_icon

COLUMNS = ("Server", "Lock state", "Volumes", "Progress", "Last result", "Auto-unlock")
PROGRESS_STEPS: tuple[Step, ...] = (Step.DETECT, Step.VERIFY, Step.PASSPHRASE, Step.SEND, Step.UNLOCKED, Step.BOOT,
                                    Step.UP)
FRACTION_ROLE = Qt.ItemDataRole.UserRole + 1  # progress as 0.0 .. 1.0, for a delegate or a test


@dataclass
class UnlockRow:
    server: str
    address: str
    volumes: tuple[str, ...]
    status: ServerStatus | None = None
    busy: bool = False
    step: Step | None = None
    step_message: str = ""
    result: str = ""
    result_ok: bool | None = None
    auto: bool = False
    events: list[UnlockProgress] = field(default_factory=list)

    @property
    def state_text(self) -> str:
        if self.busy:
            return "unlocking…"
        if self.status is None:
            return "not checked"
        return str(self.status.state)

    @property
    def volumes_text(self) -> str:
        return ", ".join(self.volumes) if self.volumes else "one volume"

    @property
    def fraction(self) -> float:
        if self.step is None:
            return 0.0
        if self.step is Step.FAILED:
            return 1.0
        if self.step in PROGRESS_STEPS:
            return (PROGRESS_STEPS.index(self.step) + 1) / len(PROGRESS_STEPS)
        return 0.0

    @property
    def progress_text(self) -> str:
        if self.step is None:
            return ""
        if self.step in PROGRESS_STEPS:
            number = PROGRESS_STEPS.index(self.step) + 1
            return f"{number}/{len(PROGRESS_STEPS)} {self.step}: {self.step_message}"
        return f"{self.step}: {self.step_message}"


class UnlockModel(ListTableModel[UnlockRow]):
    columns = COLUMNS

    # --- updates ------------------------------------------------------------------------------------

    def set_servers(self, servers: list[tuple[str, str, tuple[str, ...]]], statuses: dict[str, ServerStatus]) -> None:
        """Keep the progress and results of servers that stay; drop the others."""
        previous = {row.server: row for row in self._rows}
        self.beginResetModel()
        rows = []
        for name, address, volumes in servers:
            row = previous.get(name) or UnlockRow(name, address, volumes)
            row.address, row.volumes = address, volumes
            row.status = statuses.get(name, row.status)
            rows.append(row)
        self._rows = rows
        self.endResetModel()

    def row_of(self, server: str) -> int:
        return self._find(lambda row: row.server == server)

    def server_at(self, row: int) -> UnlockRow | None:
        return self.row_at(row)

    def row_for(self, server: str) -> UnlockRow | None:
        number = self.row_of(server)
        return self._rows[number] if number >= 0 else None

    @property
    def servers(self) -> list[str]:
        return [row.server for row in self._rows]

    def _changed(self, server: str) -> None:
        number = self.row_of(server)
        if number >= 0:
            self._row_changed(number)

    def update_status(self, status: ServerStatus) -> None:
        row = self.row_for(status.server)
        if row is not None:
            row.status = status
            self._changed(status.server)

    def start(self, server: str, first_message: str) -> None:
        row = self.row_for(server)
        if row is not None:
            row.busy = True
            row.events = []
            row.step, row.step_message = Step.DETECT, first_message
            row.result, row.result_ok = "", None
            self._changed(server)

    def progress(self, server: str, event: UnlockProgress) -> None:
        row = self.row_for(server)
        if row is None:
            return
        row.events.append(event)
        row.step, row.step_message = event.step, event.message
        self._changed(server)

    def finish(self, server: str, text: str, ok: bool) -> None:
        row = self.row_for(server)
        if row is not None:
            row.busy = False
            row.result, row.result_ok = text, ok
            if not ok:
                row.step = Step.FAILED
            self._changed(server)

    def set_auto(self, server: str, enabled: bool) -> None:
        row = self.row_for(server)
        if row is not None:
            row.auto = enabled
            self._changed(server)

    # --- Qt -------------------------------------------------------------------------------------------

    def cell(self, row: UnlockRow, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, column)
        if role == Qt.ItemDataRole.DecorationRole:
            if column == 1:
                return state_icon("refreshing" if row.busy or row.status is None else row.state_text)
            if column == 4 and row.result_ok is not None:
                return dot_icon(STATE_COLOURS["OK" if row.result_ok else "CRITICAL"])
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == 1 and row.status is not None and row.status.detail:
                return row.status.detail
            if column == 3 and row.step_message:
                return row.step_message
            if column == 4 and row.result:
                return row.result
            return row.address
        if role == Qt.ItemDataRole.UserRole:
            return row.server
        if role == FRACTION_ROLE:
            return row.fraction
        return None

    def _display(self, row: UnlockRow, column: int) -> str:
        if column == 0:
            return row.server
        if column == 1:
            return row.state_text
        if column == 2:
            return row.volumes_text
        if column == 3:
            return row.progress_text
        if column == 4:
            return row.result.splitlines()[0] if row.result else ""  # the timeline is in the tooltip and log
        if column == 5:
            return "on" if row.auto else "off"
        return ""
