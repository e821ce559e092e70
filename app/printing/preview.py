"""Print preview, printing and "save as PDF" from the app, for any render function.

A render function paints whole jobs on a paged device: ``render_fn(device)``; the device is a
``QPrinter`` here and a ``QPdfWriter`` for files, and ``render_sheets`` / ``render_labels``
set it to A4 themselves. ``sheets_render_fn`` and ``labels_render_fn`` build the content once
(store reads, QR keys) so that the preview's repaints (zoom, page setup) only paint.

Each entry point checks for a Chinese font first and says so in a message box instead of
previewing boxes. Painting runs on the calling (UI) thread: about a second per 250 labels or
50 sheets; for bigger batches write the PDF in a background task with ``write_sheets_pdf`` /
``write_labels_pdf`` (each thread with its own ``Store``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtGui import QPagedPaintDevice, QPdfWriter
from PySide6.QtPrintSupport import QPrintDialog, QPrinter, QPrintPreviewDialog
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox, QWidget

from app.core.messages import Catalog
from app.core.store import Store
from app.printing.fonts import NoCjkFontError, cjk_family
from app.printing.labels import DEFAULT_STOCK, build_labels, render_labels, stock
from app.printing.page import PDF_DPI, prepare_device
from app.printing.sheets import build_sheets, render_sheets
from app.printing.textlayer import fix_text_layer

RenderFn = Callable[[QPagedPaintDevice], object]

_TEXT = {
    "preview": ("打印预览", "Print preview"),
    "print": ("打印", "Print"),
    "save": ("保存为 PDF", "Save as PDF"),
    "pdf_filter": ("PDF 文件 (*.pdf)", "PDF files (*.pdf)"),
    "no_font": ("无法打印", "Cannot print"),
    "write_failed": ("无法写入文件：{path}", "Cannot write the file: {path}"),
}


_T = Catalog(_TEXT)


def sheets_render_fn(store: Store, record_ids: Sequence[str], lang: str = "zh") -> RenderFn:
    """Record sheets of ``record_ids`` (built now, painted on each call)."""
    sheets = build_sheets(store, record_ids, lang=lang)
    return lambda device: render_sheets(device, sheets)


def labels_render_fn(
    store: Store, house_ids: Sequence[str], stock_id: str = DEFAULT_STOCK, skip: int = 0
) -> RenderFn:
    """Door-plate labels of ``house_ids`` on a label stock (built now, painted on each call)."""
    chosen, labels = stock(stock_id), build_labels(store, house_ids)
    return lambda device: render_labels(device, labels, chosen, skip=skip)


def fonts_ok(parent: QWidget | None, lang: str = "zh") -> bool:
    """True when a Chinese font exists; otherwise tell the person what to install."""
    try:
        cjk_family()
    except NoCjkFontError as exc:
        QMessageBox.warning(parent, _T.text("no_font", lang), exc.message(lang))
        return False
    return True


def make_printer() -> QPrinter:
    """A high-resolution A4 printer in full-page mode (our layouts place everything)."""
    printer = QPrinter(QPrinter.PrinterMode.HighResolution)
    prepare_device(printer)
    return printer


def _busy(render_fn: RenderFn, device: QPagedPaintDevice) -> None:
    from PySide6.QtCore import Qt

    QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
    try:
        render_fn(device)
    finally:
        QApplication.restoreOverrideCursor()


def show_print_preview(parent: QWidget | None, render_fn: RenderFn, lang: str = "zh") -> bool:
    """A print preview (with its own print button); True when the person printed."""
    if not fonts_ok(parent, lang):
        return False
    printer = make_printer()
    dialog = QPrintPreviewDialog(printer, parent)
    dialog.setWindowTitle(_T.text("preview", lang))
    dialog.paintRequested.connect(lambda device: _busy(render_fn, device))
    return dialog.exec() == QPrintPreviewDialog.DialogCode.Accepted


def print_with_dialog(parent: QWidget | None, render_fn: RenderFn, lang: str = "zh") -> bool:
    """The system print dialog, then print; True when printed."""
    if not fonts_ok(parent, lang):
        return False
    printer = make_printer()
    dialog = QPrintDialog(printer, parent)
    dialog.setWindowTitle(_T.text("print", lang))
    if dialog.exec() != QPrintDialog.DialogCode.Accepted:
        return False
    _busy(render_fn, printer)
    return True


def save_pdf_with_dialog(
    parent: QWidget | None, render_fn: RenderFn, suggested: str, lang: str = "zh"
) -> str | None:
    """Ask for a file name and write the PDF; the path written, or None."""
    if not fonts_ok(parent, lang):
        return None
    path, _ = QFileDialog.getSaveFileName(
        parent, _T.text("save", lang), suggested, _T.text("pdf_filter", lang)
    )
    if not path:
        return None
    if not path.lower().endswith(".pdf"):
        path += ".pdf"
    writer = QPdfWriter(path)
    writer.setResolution(PDF_DPI)
    writer.setCreator("GridCollect 网格采集")
    try:
        _busy(render_fn, writer)
    except OSError:
        QMessageBox.warning(parent, _T.text("save", lang), _T.text("write_failed", lang, path=path))
        return None
    finally:
        del writer
    fix_text_layer(path)
    return path


__all__ = [
    "RenderFn",
    "fonts_ok",
    "labels_render_fn",
    "make_printer",
    "print_with_dialog",
    "save_pdf_with_dialog",
    "sheets_render_fn",
    "show_print_preview",
]
