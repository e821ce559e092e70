"""The label beside a field: plain text, with a red * painted while the field is required."""

from __future__ import annotations

import functools

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QLabel, QLineEdit, QSizePolicy, QWidget

__all__ = ["REQUIRED_COLOR", "FieldLabel", "make_field_label"]

REQUIRED_COLOR = "#c62828"
_LABEL_ALIGN = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
_LABEL_POLICY_H, _LABEL_POLICY_V = QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed


class FieldLabel(QLabel):
    """A plain-text label that paints a red * after the text while its field is required.

    Rich-text labels ('<span style=color:red>*</span>') cost about ten times a plain one to
    build and lay out; with dozens per form that was the largest part of opening it."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._required = False

    def set_label(self, text: str, required: bool) -> None:
        """Show ``text``, with the * when ``required``."""
        self._required = required
        self.setText(f"{text} *" if required else text)  # the * keeps its room in sizeHint

    def is_required(self) -> bool:
        return self._required

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt API)
        if not self._required:
            super().paintEvent(event)
            return
        painter = QPainter(self)
        metrics = self.fontMetrics()
        full = self.text()
        base = full[:-1]
        style = self.style()
        rect = style.itemTextRect(metrics, self.contentsRect(), self.alignment(), True, full)
        left = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        style.drawItemText(
            painter,
            rect,
            left,
            self.palette(),
            self.isEnabled(),
            base,
            QPalette.ColorRole.WindowText,
        )
        star = rect.adjusted(metrics.horizontalAdvance(base), 0, 0, 0)
        painter.setPen(QColor(REQUIRED_COLOR))
        painter.drawText(star, left, "*")
        painter.end()


def make_field_label(parent: QWidget, can_be_required: bool) -> QLabel:
    """A label as tall as an input; a ``FieldLabel`` only where the field can be required
    (a plain ``QLabel`` is cheaper to build)."""
    label = FieldLabel(parent) if can_be_required else QLabel(parent)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setObjectName("fieldLabel")
    label.setMinimumHeight(input_height())
    label.setSizePolicy(_LABEL_POLICY_H, _LABEL_POLICY_V)
    label.setAlignment(_LABEL_ALIGN)
    return label


def set_label_text(label: QLabel, text: str, required: bool) -> None:
    """Show a field's label text, with the * when required (plain labels never are)."""
    if isinstance(label, FieldLabel):
        label.set_label(text, required)
    else:
        label.setText(text)


@functools.cache
def input_height() -> int:
    """The height of a line edit in the current style (labels are made as tall)."""
    probe = QLineEdit()
    height = probe.sizeHint().height()
    probe.deleteLater()
    return height
