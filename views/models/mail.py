"""Mail tables: Mailgun domains and their DNS verification records, delivery failures with their
reasons, and the suppression lists (bounces, complaints, unsubscribes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QModelIndex
from PySide6.QtGui import QColor

from services.mailgun import DnsRecordStatus, MailDomain, MailEvent, Suppression
from views.models.cloudflare import Column, RowsModel, stamp, when
from views.style import STATE_COLOURS

DOMAIN_STATE_COLOURS = {"active": STATE_COLOURS["OK"], "unverified": STATE_COLOURS["WARNING"],
                        "disabled": STATE_COLOURS["CRITICAL"]}
VALID_COLOURS = {"valid": STATE_COLOURS["OK"], "invalid": STATE_COLOURS["CRITICAL"],
                 "unknown": STATE_COLOURS["WARNING"]}


def _records_summary(domain: MailDomain) -> str:
    records = domain.sending_records + domain.receiving_records
    if not records:
        return ""
    good = sum(1 for r in records if r.valid == "valid")
    return f"{good} of {len(records)} valid"


DOMAIN_COLUMNS = (
    Column("Domain", lambda d: d.name),
    Column("State", lambda d: d.state),
    Column("DNS records", _records_summary),
    Column("Type", lambda d: d.type),
    Column("Created", lambda d: when(d.created_at), sort_key=lambda d: stamp(d.created_at)),
)


class DomainsModel(RowsModel):
    columns = DOMAIN_COLUMNS

    def set_domains(self, domains: Sequence[MailDomain]) -> None:
        self.set_rows(domains)

    def domain_at(self, row: int) -> MailDomain | None:
        found = self.row_at(row)
        return found if isinstance(found, MailDomain) else None

    def row_of(self, name: str) -> int:
        return next((n for n, d in enumerate(self._rows) if d.name == name), -1)

    def foreground(self, row: MailDomain, column: int) -> QColor | None:
        if column == 1 and row.state in DOMAIN_STATE_COLOURS:
            return QColor(DOMAIN_STATE_COLOURS[row.state])
        if column == 2 and any(r.valid != "valid" for r in row.sending_records + row.receiving_records):
            return QColor(STATE_COLOURS["WARNING"])
        return None


@dataclass(frozen=True)
class RecordRow:
    purpose: str  # sending | receiving
    record: DnsRecordStatus


RECORD_COLUMNS = (
    Column("Purpose", lambda r: r.purpose),
    Column("Type", lambda r: r.record.record_type),
    Column("Name", lambda r: r.record.name),
    Column("Value", lambda r: r.record.value, tooltip=lambda r: r.record.value),
    Column("Valid", lambda r: r.record.valid),
)


class DomainRecordsModel(RowsModel):
    """The DNS records Mailgun wants published for one domain, and whether it found each."""

    columns = RECORD_COLUMNS

    def set_domain(self, domain: MailDomain | None) -> None:
        if domain is None:
            self.set_rows([])
            return
        self.set_rows([RecordRow("sending", r) for r in domain.sending_records]
                      + [RecordRow("receiving", r) for r in domain.receiving_records])

    def foreground(self, row: RecordRow, column: int) -> QColor | None:
        if column == 4:
            return QColor(VALID_COLOURS.get(row.record.valid, STATE_COLOURS["UNKNOWN"]))
        return None


FAILURE_COLUMNS = (
    Column("When", lambda e: when(e.timestamp, seconds=True), sort_key=lambda e: stamp(e.timestamp)),
    Column("Recipient", lambda e: e.recipient),
    Column("Severity", lambda e: e.severity or ""),
    Column("Reason", lambda e: e.reason or ""),
    Column("Code", lambda e: str(e.code) if e.code is not None else "", sort_key=lambda e: e.code or 0, right=True),
    Column("Message", lambda e: e.message, tooltip=lambda e: e.description or e.message),
    Column("Group", lambda e: str(e.group_id) if e.group_id is not None else "",
           sort_key=lambda e: e.group_id if e.group_id is not None else -1, right=True),
    Column("Subject", lambda e: e.subject or ""),
)


class MailFailuresModel(RowsModel):
    columns = FAILURE_COLUMNS

    def set_events(self, events: Sequence[MailEvent]) -> None:
        self.set_rows(events)

    def foreground(self, row: MailEvent, column: int) -> QColor | None:
        if column == 2:
            return QColor(STATE_COLOURS["CRITICAL" if row.severity == "permanent" else "WARNING"])
        return None


def _suppression_detail(s: Suppression) -> str:
    if s.kind == "bounces":
        return f"{s.code or ''} {s.error or ''}".strip()
    if s.kind == "unsubscribes":
        return "tags: " + ", ".join(s.tags) if s.tags else ""
    return ""


SUPPRESSION_COLUMNS = (
    Column("Address", lambda s: s.address),
    Column("Since", lambda s: when(s.created_at), sort_key=lambda s: stamp(s.created_at)),
    Column("Detail", _suppression_detail, tooltip=_suppression_detail),
)


class SuppressionsModel(RowsModel):
    columns = SUPPRESSION_COLUMNS

    def set_suppressions(self, suppressions: Sequence[Suppression]) -> None:
        self.set_rows(suppressions)

    def suppression_at(self, row: int) -> Suppression | None:
        found = self.row_at(row)
        return found if isinstance(found, Suppression) else None

    def row_of(self, address: str) -> int:
        return next((n for n, s in enumerate(self._rows) if s.address == address), -1)

    def remove(self, address: str) -> None:
        row = self.row_of(address)
        if row >= 0:
            self.beginRemoveRows(QModelIndex(), row, row)
            del self._rows[row]
            self.endRemoveRows()
