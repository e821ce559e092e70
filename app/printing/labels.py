"""Door-plate labels: a QR code and the address per house, many to an A4 sheet of label stock.

Stock presets follow common pre-cut A4 label sheets (no gaps between labels, so the grid
starts at the sheet's edge or is centred vertically). Content keeps ``padding_mm`` inside each
label, which is also the printer's unprintable edge on full-bleed stock. The address's
distinguishing end ("1栋1单元101室", ``app.core.addresstext``) is set as large as fits, the
rest small above it; lines break between address words only, never inside a name or number.
The QR keeps a 2-module quiet zone of its own, and the padding and the gap to the text add
the rest.

``skip`` leaves the first labels of the first sheet empty, to use up a partly used sheet.
``with_qr=False`` draws the same labels without codes: the benchmark's baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPagedPaintDevice, QPainter

from app.core import qrpayload, scan
from app.core.addresstext import address_words, split_address
from app.core.messages import lang_of
from app.core.store import Store
from app.printing.fonts import cjk_font
from app.printing.page import (
    A4_HEIGHT_MM,
    A4_WIDTH_MM,
    Cancel,
    Progress,
    Units,
    check_cancel,
    pdf_writer,
    prepare_device,
)
from app.printing.qr import draw_qr
from app.printing.select import HOUSE_FORM
from app.printing.textlayer import fix_text_layer

LABEL_QUIET_MODULES = 2
_MIN_PT, _MAX_PT = 5.0, 16.0
_GREY = QColor(80, 80, 80)


@dataclass(frozen=True)
class LabelStock:
    """A sheet of labels: ``cols`` x ``rows`` labels of ``width_mm`` x ``height_mm``."""

    id: str
    cols: int
    rows: int
    width_mm: float
    height_mm: float
    padding_mm: float
    gap_x_mm: float = 0.0
    gap_y_mm: float = 0.0

    @property
    def per_page(self) -> int:
        return self.cols * self.rows

    @property
    def left_mm(self) -> float:
        used = self.cols * self.width_mm + (self.cols - 1) * self.gap_x_mm
        return max((A4_WIDTH_MM - used) / 2, 0.0)

    @property
    def top_mm(self) -> float:
        used = self.rows * self.height_mm + (self.rows - 1) * self.gap_y_mm
        return max((A4_HEIGHT_MM - used) / 2, 0.0)

    def describe(self, lang: str = "zh") -> str:
        size = f"{self.width_mm:g}×{self.height_mm:g} mm"
        if lang_of(lang) == "en":
            return f"{self.id}: {self.per_page} labels a sheet ({self.cols}×{self.rows}), {size}"
        return f"{self.id}：每张 {self.per_page} 枚（{self.cols}×{self.rows}），{size}"

    def cell(self, index: int) -> tuple[float, float]:
        """Top-left corner (mm) of the ``index``-th label on a sheet, row by row."""
        row, col = divmod(index, self.cols)
        return (
            self.left_mm + col * (self.width_mm + self.gap_x_mm),
            self.top_mm + row * (self.height_mm + self.gap_y_mm),
        )


STOCKS: dict[str, LabelStock] = {
    s.id: s
    for s in (
        LabelStock("A4-10", 2, 5, 105.0, 57.0, 4.0),
        LabelStock("A4-21", 3, 7, 70.0, 42.3, 3.0),
        LabelStock("A4-24", 3, 8, 70.0, 37.0, 3.0),
        LabelStock("A4-40", 4, 10, 52.5, 29.7, 2.5),
    )
}
DEFAULT_STOCK = "A4-24"


class UnknownStockError(ValueError):
    """A stock id that is not a preset; the message lists the presets."""

    def __init__(self, stock_id: str) -> None:
        super().__init__("print.unknown_stock")
        self.stock_id = stock_id

    def message(self, lang: str = "zh") -> str:
        choices = ", ".join(STOCKS)
        if lang_of(lang) == "en":
            return f"Unknown label stock {self.stock_id!r}; choose one of: {choices}."
        return f"没有“{self.stock_id}”这种标签纸，请选择：{choices}。"


def stock(stock_id: str) -> LabelStock:
    """The preset called ``stock_id`` (case-insensitive)."""
    found = STOCKS.get(stock_id.upper())
    if found is None:
        raise UnknownStockError(stock_id)
    return found


# -- content -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Label:
    """What one door plate shows. No personal data: the house's address and codes only."""

    record_id: str
    qr_text: str
    address: str
    caption: str


def build_labels(
    store: Store, house_ids: Sequence[str], *, key: bytes | None = None
) -> list[Label]:
    """Labels for existing live houses, in the given order.

    ``key`` defaults to the deployment key, created on first use.
    """
    key = key if key is not None else scan.deployment_key(store, create=True)
    form = store.formset.form(HOUSE_FORM)
    address_fields = form.roles.address
    code_field = form.natural_keys[0][0] if form.natural_keys else None
    grid_names = {g.code: g.name for g in store.grids()}
    labels = []
    for house_id in house_ids:
        record = store.get(house_id)
        if record is None or record.deleted or record.form != HOUSE_FORM:
            continue
        address = next(
            (str(record.data[f]) for f in address_fields if record.data.get(f)), record.title
        )
        caption = " · ".join(
            part
            for part in (
                str(record.data.get(code_field, "")) if code_field else "",
                grid_names.get(record.grid or "", record.grid or ""),
            )
            if part
        )
        version = scan.record_version(store, record)
        labels.append(
            Label(
                record.id, qrpayload.encode(record.id, HOUSE_FORM, version, key), address, caption
            )
        )
    return labels


# -- painting ----------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _font(point_size: float, bold: bool) -> QFont:
    return cjk_font(point_size, bold=bold)


class _Fitter:
    """Lines of whole words at the largest size that fits, measured on the target device."""

    def __init__(self, device: QPagedPaintDevice, units: Units) -> None:
        self.device, self.units = device, units

    def line_mm(self, font: QFont) -> float:
        return QFontMetricsF(font, self.device).lineSpacing() / self.units.per_mm

    def pack(self, words: Sequence[str], font: QFont, width: float) -> list[str] | None:
        """Words packed into lines ``width`` mm wide; None when one word alone is wider."""
        metrics, limit = QFontMetricsF(font, self.device), self.units.mm(width)
        lines: list[str] = []
        for word in words:
            if metrics.horizontalAdvance(word.strip()) > limit:
                return None
            if lines and metrics.horizontalAdvance((lines[-1] + word).strip()) <= limit:
                lines[-1] += word
            else:
                lines.append(word)
        return [line.strip() for line in lines]

    def fit(
        self, words: Sequence[str], width: float, height: float, start: float, bold: bool
    ) -> tuple[QFont, list[str]]:
        """The largest size from ``start`` down whose lines fit; at the smallest size a word
        longer than the line is cut as a last resort (a label never runs off its edge)."""
        size = start
        while size > _MIN_PT:
            font = _font(size, bold)
            lines = self.pack(words, font, width)
            if lines is not None and len(lines) * self.line_mm(font) <= height:
                return font, lines
            size = max(size - 0.5, _MIN_PT)
        font = _font(_MIN_PT, bold)
        chars = [ch for word in words for ch in word]
        return font, self.pack(words, font, width) or self.pack(chars, font, width) or []


def _draw_lines(
    p: QPainter, u: Units, fitter: _Fitter, font: QFont, lines: Sequence[str], x: float, y: float
) -> float:
    """One line each, never wrapped by Qt; returns the height used (mm)."""
    p.setFont(font)
    ascent = QFontMetricsF(font, fitter.device).ascent() / u.per_mm
    step = fitter.line_mm(font)
    for n, line in enumerate(lines):
        p.drawText(QPointF(u.mm(x), u.mm(y + n * step + ascent)), line)
    return len(lines) * step


def _paint_label(
    p: QPainter,
    u: Units,
    fitter: _Fitter,
    st: LabelStock,
    label: Label,
    x: float,
    y: float,
    with_qr: bool,
) -> None:
    """QR on the left; on the right the address's head small, its distinguishing end
    ("1栋1单元101室") as large as fits, the caption small at the bottom."""
    pad = st.padding_mm
    inner_w, inner_h = st.width_mm - 2 * pad, st.height_mm - 2 * pad
    qr_side = min(inner_h, inner_w * 0.5)
    text_x = x + pad + qr_side + 1.5
    text_w = inner_w - qr_side - 1.5
    if with_qr:
        draw_qr(p, u.rect(x + pad, y + pad, qr_side, qr_side), label.qr_text, LABEL_QUIET_MODULES)
    small = max(min(inner_h / 7, 8.0), _MIN_PT)
    caption_words = [w + " " for w in label.caption.split()]
    caption_font, caption = fitter.fit(caption_words, text_w, inner_h / 4, small, False)
    caption_h = len(caption) * fitter.line_mm(caption_font) if label.caption else 0.0
    head_text, tail_text = split_address(label.address)
    head_font, head = fitter.fit(address_words(head_text), text_w, inner_h / 3, small, False)
    head_h = len(head) * fitter.line_mm(head_font) if head_text else 0.0
    tail_h = inner_h - caption_h - head_h - (0.8 if caption_h else 0.0)
    start = min(_MAX_PT * 1.5 if head_text else _MAX_PT, max(inner_h / 2.5, _MIN_PT))
    tail_font, tail = fitter.fit(address_words(tail_text), text_w, tail_h, start, True)
    top = y + pad
    p.setPen(_GREY)
    if head_text:
        top += _draw_lines(p, u, fitter, head_font, head, text_x, top)
    p.setPen(Qt.GlobalColor.black)
    _draw_lines(p, u, fitter, tail_font, tail, text_x, top)
    if label.caption:
        p.setPen(_GREY)
        _draw_lines(p, u, fitter, caption_font, caption, text_x, y + pad + inner_h - caption_h)


def render_labels(
    device: QPagedPaintDevice,
    labels: Sequence[Label],
    st: LabelStock,
    *,
    skip: int = 0,
    with_qr: bool = True,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> int:
    """Paint the labels on ``device`` (A4, set here); returns the number of sheets."""
    if not labels:
        return 0
    skip = max(0, min(skip, st.per_page - 1))
    prepare_device(device)
    units = Units(device)
    fitter = _Fitter(device, units)
    painter = QPainter(device)
    if not painter.isActive():  # the file or printer could not be opened
        raise OSError("cannot open the output for painting")
    pages = 1
    try:
        for n, label in enumerate(labels):
            slot = (n + skip) % st.per_page
            if n and slot == 0:
                check_cancel(cancel)
                device.newPage()
                pages += 1
            x, y = st.cell(slot)
            _paint_label(painter, units, fitter, st, label, x, y, with_qr)
            if progress and (slot == st.per_page - 1 or n == len(labels) - 1):
                progress(n + 1, len(labels))
    finally:
        painter.end()
    return pages


def write_labels_pdf(
    store: Store,
    house_ids: Sequence[str],
    out: str | Path,
    *,
    stock_id: str = DEFAULT_STOCK,
    skip: int = 0,
    lang: str = "zh",
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> int:
    """One PDF of door-plate labels for ``house_ids``; returns the number of sheets.

    A cancelled or failed job leaves no partial file behind.
    """
    st = stock(stock_id)
    labels = build_labels(store, house_ids)
    path = Path(out)
    writer = pdf_writer(path, "门牌标签" if lang_of(lang) == "zh" else "Door-plate labels")
    try:
        pages = render_labels(writer, labels, st, skip=skip, progress=progress, cancel=cancel)
    except BaseException:
        del writer
        path.unlink(missing_ok=True)
        raise
    del writer
    fix_text_layer(path)
    return pages


__all__ = [
    "DEFAULT_STOCK",
    "STOCKS",
    "Label",
    "LabelStock",
    "UnknownStockError",
    "build_labels",
    "render_labels",
    "stock",
    "write_labels_pdf",
]
