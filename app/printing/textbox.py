"""Wrapped text that breaks between words, and inside one only when the word cannot fit.

Why: ``Qt.TextWrapAnywhere`` (what ``drawText`` flags offer) cuts English mid-word
("Educat|ion") and numbers mid-number; ``Qt.TextWordWrap`` lets a word longer than the line
run off the paper. ``QTextOption.WrapAtWordBoundaryOrAnywhere`` does what a person expects,
but only through ``QTextLayout``; measuring and painting both go through it here, so what was
measured is what is painted.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QFont, QPaintDevice, QPainter, QTextLayout, QTextOption

_WRAP = QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere


def _layout(font: QFont, device: QPaintDevice, width: float, content: str) -> QTextLayout:
    layout = QTextLayout(content, font, device)
    option = QTextOption()
    option.setWrapMode(_WRAP)
    layout.setTextOption(option)
    layout.beginLayout()
    y = 0.0
    while True:
        line = layout.createLine()
        if not line.isValid():
            break
        line.setLineWidth(width)
        line.setPosition(QPointF(0, y))
        y += line.height()
    layout.endLayout()
    return layout


def text_height(font: QFont, device: QPaintDevice, width: float, content: str) -> float:
    """Height (device pixels) of ``content`` wrapped to ``width`` pixels."""
    lines = content.split("\n")
    return sum(_layout(font, device, width, line).boundingRect().height() for line in lines)


def draw_text(p: QPainter, font: QFont, rect: QRectF, content: str) -> float:
    """Paint ``content`` wrapped inside ``rect``; returns the height used (pixels)."""
    device = p.device()
    y = rect.top()
    for part in content.split("\n"):
        layout = _layout(font, device, rect.width(), part)
        layout.draw(p, QPointF(rect.left(), y))
        y += layout.boundingRect().height()
    return y - rect.top()


__all__ = ["draw_text", "text_height"]
