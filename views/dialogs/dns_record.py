"""Add or edit one DNS record of the Cloudflare zone. The record is checked as Cloudflare would
(``services.cloudflare.validate_record``) before the dialog closes; the page then shows what
will change and asks once more before sending it."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from services.cloudflare import PROXIABLE_TYPES, RECORD_TYPES, DnsRecord, DnsRecordInput, validate_record
from services.http import ApiValidationError
from services.vendors import relative_name
from views.style import STATE_COLOURS

TYPE_ORDER = ("A", "AAAA", "CNAME", "MX", "TXT", "CAA", "NS", "SRV")
CONTENT_HINTS = {
    "A": "an IPv4 address, e.g. 203.0.113.5",
    "AAAA": "an IPv6 address, e.g. 2001:db8::5",
    "CNAME": "a host name, e.g. app1.example.com",
    "MX": "a mail server's host name, e.g. mxa.eu.mailgun.org",
    "TXT": 'text, e.g. "v=spf1 include:mailgun.org ~all"',
    "CAA": 'flags, tag and value, e.g. 0 issue "letsencrypt.org"',
    "NS": "a name server's host name",
    "SRV": "priority weight port target",
}


class DnsRecordDialog(QDialog):
    """``submitted`` carries the checked, normalised :class:`DnsRecordInput`."""

    submitted = Signal(object)

    def __init__(self, zone: str, record: DnsRecord | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.zone = zone
        self.record = record
        self.result_record: DnsRecordInput | None = None
        self.setWindowTitle(f"Edit {record.type} {relative_name(record.name, zone)}" if record else
                            f"Add a DNS record to {zone}")
        self.setModal(True)
        self.setMinimumWidth(480)

        self.type_box = QComboBox()
        self.type_box.addItems([t for t in TYPE_ORDER if t in RECORD_TYPES])
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText(f"www, @ for {zone} itself, or a full name")
        self.content_edit = QLineEdit()
        self.ttl_auto = QCheckBox("Automatic")
        self.ttl_auto.setChecked(True)
        self.ttl_box = QSpinBox()
        self.ttl_box.setRange(60, 86400)
        self.ttl_box.setValue(3600)
        self.ttl_box.setSuffix(" s")
        self.ttl_box.setEnabled(False)
        self.ttl_auto.toggled.connect(lambda on: self.ttl_box.setEnabled(not on))
        ttl_row = QHBoxLayout()
        ttl_row.addWidget(self.ttl_auto)
        ttl_row.addWidget(self.ttl_box, 1)
        self.proxied_box = QCheckBox("Proxied through Cloudflare (orange cloud)")
        self.priority_box = QSpinBox()
        self.priority_box.setRange(0, 65535)
        self.priority_box.setValue(10)
        self.comment_edit = QLineEdit()
        self.comment_edit.setMaxLength(100)
        self.comment_edit.setPlaceholderText("optional: why this record exists")
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(f"color: {STATE_COLOURS['CRITICAL']};")
        self.error_label.setTextFormat(Qt.TextFormat.PlainText)

        form = QFormLayout()
        form.addRow("Type", self.type_box)
        form.addRow("Name", self.name_edit)
        form.addRow("Content", self.content_edit)
        form.addRow("TTL", ttl_row)
        form.addRow("", self.proxied_box)
        self.priority_label = QLabel("Priority")
        form.addRow(self.priority_label, self.priority_box)
        form.addRow("Comment", self.comment_edit)
        self.buttons = QDialogButtonBox()
        self.ok_button = self.buttons.addButton("Review the change…" if record else "Review and add…",
                                                QDialogButtonBox.ButtonRole.AcceptRole)
        self.ok_button.setDefault(True)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)

        self.type_box.currentTextChanged.connect(self._type_changed)
        if record is not None:
            self.type_box.setCurrentText(record.type)
            self.name_edit.setText(relative_name(record.name, zone))
            self.content_edit.setText(record.content)
            self.ttl_auto.setChecked(record.ttl == 1)
            if record.ttl != 1:
                self.ttl_box.setValue(record.ttl)
            self.proxied_box.setChecked(record.proxied)
            if record.priority is not None:
                self.priority_box.setValue(record.priority)
            self.comment_edit.setText(record.comment or "")
        self._type_changed(self.type_box.currentText())

    def _type_changed(self, record_type: str) -> None:
        proxiable = record_type in PROXIABLE_TYPES
        self.proxied_box.setEnabled(proxiable)
        if not proxiable:
            self.proxied_box.setChecked(False)
        is_mx = record_type == "MX"
        self.priority_box.setVisible(is_mx)
        self.priority_label.setVisible(is_mx)
        self.content_edit.setPlaceholderText(CONTENT_HINTS.get(record_type, ""))

    def record_input(self) -> DnsRecordInput:
        record_type = self.type_box.currentText()
        return DnsRecordInput(
            type=record_type, name=self.name_edit.text().strip(), content=self.content_edit.text().strip(),
            ttl=1 if self.ttl_auto.isChecked() else self.ttl_box.value(),
            proxied=self.proxied_box.isChecked() and record_type in PROXIABLE_TYPES,
            comment=self.comment_edit.text().strip() or None,
            priority=self.priority_box.value() if record_type == "MX" else None)

    def submit(self) -> None:
        """Check the record; on a mistake say what is wrong and stay open."""
        try:
            record = validate_record(self.record_input())
        except ApiValidationError as error:
            self.error_label.setText(str(error))
            return
        self.error_label.clear()
        self.result_record = record
        self.submitted.emit(record)
        self.accept()
