"""The 迁出 question: when, why and where to, asked together so the history says all three.

Why: the household view asked only for a date, so a record that left the household said
nothing of whether the person moved away, died or was registered by mistake, nor where they
went; the platform's follow-up (transferring them to the grid they went to) had nothing to go on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QDate
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from app.ui.i18n import tr


@dataclass(frozen=True)
class MoveOut:
    """What a move-out records: when, why (a code of the reason field's table) and where to."""

    on: dt.date
    reason: str | None = None
    destination: str = ""


class MoveOutDialog(QDialog):
    """Ask for the move-out date (today by default, never in the future), the reason and the
    destination (去向). Without a reason or a destination it says what is missing and stays."""

    def __init__(
        self,
        name: str,
        lang: str,
        parent: QWidget | None = None,
        reasons: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(parent)
        self.lang = lang
        self.setWindowTitle(tr("hh.move_title", lang))
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(tr("hh.move_label", lang, name=name), self))
        self.date_edit = QDateEdit(QDate.currentDate(), self)
        self.date_edit.setCalendarPopup(True)
        self.date_edit.setDisplayFormat("yyyy-MM-dd")
        self.date_edit.setMaximumDate(QDate.currentDate())
        form = QFormLayout()
        form.addRow(tr("hh.move_date", lang), self.date_edit)
        self.reason = QComboBox(self)
        self.reason.addItem("", None)
        for code, label in reasons:
            self.reason.addItem(label, code)
        self.reason.setVisible(bool(reasons))
        if reasons:
            form.addRow(tr("hh.move_reason", lang), self.reason)
        self.destination = QLineEdit(self)
        self.destination.setPlaceholderText(tr("hh.move_to_hint", lang))
        form.addRow(tr("hh.move_to", lang), self.destination)
        layout.addLayout(form)
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.buttons = buttons
        layout.addWidget(buttons)

    def accept(self) -> None:
        if self.reason.isVisibleTo(self) and self.reason.currentData() is None:
            self.message.setText(tr("hh.move_need_reason", self.lang))
            return
        if not self.destination.text().strip():
            self.message.setText(tr("hh.move_need_to", self.lang))
            return
        super().accept()

    def date(self) -> dt.date:
        return self.date_edit.date().toPython()

    def move_out(self) -> MoveOut:
        return MoveOut(self.date(), self.reason.currentData(), self.destination.text().strip())


__all__ = ["MoveOut", "MoveOutDialog"]
