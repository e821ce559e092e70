"""What sheets and labels share: A4 devices, millimetre units, progress and cancel hooks.

Layout is done in millimetres against the paper's top-left corner on any
``QPagedPaintDevice``: a ``QPdfWriter`` for files and the command line, a ``QPrinter`` from the
print and preview dialogs (set to full-page mode, so the same coordinates mean the same place).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QMarginsF, QRectF
from PySide6.QtGui import QPagedPaintDevice, QPageLayout, QPageSize, QPdfWriter

from app.printing.fonts import ensure_gui_app

A4_WIDTH_MM, A4_HEIGHT_MM = 210.0, 297.0
PDF_DPI = 600  # layout units only: text and QR codes are vectors

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]


class Cancelled(Exception):
    """The person cancelled a long print job; the partial file is removed."""


class Units:
    """Millimetres to the device's pixels."""

    def __init__(self, device: QPagedPaintDevice) -> None:
        resolution = getattr(device, "resolution", None)
        dpi = resolution() if callable(resolution) else device.logicalDpiX()
        self.per_mm = dpi / 25.4

    def mm(self, value: float) -> float:
        return value * self.per_mm

    def rect(self, x: float, y: float, w: float, h: float) -> QRectF:
        return QRectF(self.mm(x), self.mm(y), self.mm(w), self.mm(h))


def prepare_device(device: QPagedPaintDevice) -> None:
    """A4 portrait, no margins: our layout places everything itself."""
    device.setPageLayout(
        QPageLayout(
            QPageSize(QPageSize.PageSizeId.A4),
            QPageLayout.Orientation.Portrait,
            QMarginsF(0, 0, 0, 0),
            QPageLayout.Unit.Millimeter,
        )
    )
    set_full_page = getattr(device, "setFullPage", None)  # QPrinter only
    if callable(set_full_page):
        set_full_page(True)


def pdf_writer(path: str | Path, title: str) -> QPdfWriter:
    """A PDF file writer ready for ``prepare_device`` layouts. ``title`` must be impersonal."""
    ensure_gui_app()
    writer = QPdfWriter(str(path))
    writer.setResolution(PDF_DPI)
    writer.setCreator("GridCollect 网格采集")
    writer.setTitle(title)
    prepare_device(writer)
    return writer


def check_cancel(cancel: Cancel | None) -> None:
    if cancel is not None and cancel():
        raise Cancelled()


__all__ = [
    "A4_HEIGHT_MM",
    "A4_WIDTH_MM",
    "Cancel",
    "Cancelled",
    "PDF_DPI",
    "Progress",
    "Units",
    "check_cancel",
    "pdf_writer",
    "prepare_device",
]
