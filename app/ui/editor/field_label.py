"""The label beside a field: a plain ``QLabel``. The red * of a required field is painted by
its section's box, in the margin before the label (``SectionBox``): no Python class per label."""

from __future__ import annotations

import functools

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLineEdit, QSizePolicy, QWidget

__all__ = ["REQUIRED_COLOR", "REQUIRED_MARK", "make_field_label"]

REQUIRED_COLOR = "#c62828"
REQUIRED_MARK = "*"
_LABEL_ALIGN = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
_LABEL_POLICY_H, _LABEL_POLICY_V = QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed


def make_field_label(parent: QWidget) -> QLabel:
    """A plain-text label as tall as an input.

    Plain: a Python subclass painting its own * cost a call into Python per paint and per
    virtual Qt asks it; rich text ('<span style=color:red>*</span>') about ten times a plain
    label to build and lay out."""
    label = QLabel(parent)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setObjectName("fieldLabel")
    label.setMinimumHeight(input_height())
    label.setSizePolicy(_LABEL_POLICY_H, _LABEL_POLICY_V)
    label.setAlignment(_LABEL_ALIGN)
    return label


@functools.cache
def input_height() -> int:
    """The height of a line edit in the current style (labels are made as tall)."""
    probe = QLineEdit()
    height = probe.sizeHint().height()
    probe.deleteLater()
    return height
