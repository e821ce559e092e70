"""A4 record sheets: every filled field by section, sensitive values masked, and a QR code.

Two steps, so that what is printed can be checked without Qt:

* ``app.printing.sheet_content.build_sheet`` turns a record into a ``Sheet`` of display
  strings (Qt-free, masked; re-exported here).
* ``render_sheets`` lays the sheets out (measure first, to know the page count for
  "第 n 页 / 共 m 页"), then paints on any paged device: a ``QPdfWriter`` or a ``QPrinter``
  from the print dialogs. Short fields go two to a line, long ones across the page, so a
  full resident fits one A4 page. Every record starts on a new page; a record that runs over
  repeats its header with "（续）" and its QR on the next page, so any page scans back to it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPagedPaintDevice, QPainter, QPen

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
from app.printing.sheet_content import (
    Sheet,
    SheetRow,
    SheetSection,
    build_sheet,
    build_sheets,
    masked_data,
    text,
)
from app.printing.textbox import draw_text, text_height
from app.printing.textlayer import fix_text_layer

# -- layout ----------------------------------------------------------------------------------

MARGIN_X, MARGIN_TOP, MARGIN_BOTTOM = 15.0, 14.0, 18.0
QR_MM = 32.0
FULL_MM = A4_WIDTH_MM - 2 * MARGIN_X
HALF_MM = (FULL_MM - 4) / 2  # two short fields side by side, 4 mm apart
LABEL_MM = HALF_LABEL_MM = 30.0  # one label column, so values line up
ROW_PAD_MM = 1.1
SECTION_GAP_MM = 4.0
SIGN_GAP_MM = 8.0  # above the resident's 核对签字 / 日期 line
_GREY = QColor(90, 90, 90)
_RULE = QColor(190, 190, 190)


@dataclass
class _Fonts:
    title: QFont
    form: QFont
    meta: QFont
    section: QFont
    label: QFont
    value: QFont
    footer: QFont

    @classmethod
    def make(cls) -> _Fonts:
        return cls(
            title=cjk_font(15, bold=True),
            form=cjk_font(10),
            meta=cjk_font(8.5),
            section=cjk_font(11, bold=True),
            label=cjk_font(9),
            value=cjk_font(10),
            footer=cjk_font(8),
        )


@dataclass
class _Item:
    kind: str  # "section" | "row" (across the page) | "pair" (side by side) | "sign"
    y: float  # mm from the page top
    height: float
    section: SheetSection | None = None
    row: SheetRow | None = None
    other: SheetRow | None = None


@dataclass
class _Page:
    sheet: Sheet
    continued: bool
    body_top: float
    items: list[_Item] = field(default_factory=list)


class _Measure:
    """Text heights in mm on the target device (fonts scale with its resolution)."""

    def __init__(self, device: QPagedPaintDevice, units: Units) -> None:
        self.device, self.units = device, units
        self._known: dict[tuple[str, float, str], float] = {}  # labels repeat on every sheet

    def height(self, font: QFont, width_mm: float, content: str) -> float:
        key = (font.key(), width_mm, content)
        if key not in self._known:
            pixels = text_height(font, self.device, self.units.mm(width_mm), content)
            self._known[key] = pixels / self.units.per_mm
        return self._known[key]


def _meta_lines(sheet: Sheet) -> list[str]:
    lang = sheet.lang
    sep = "　" if lang_of(lang) == "zh" else "   "
    colon = "：" if lang_of(lang) == "zh" else ": "
    return [
        sep.join(
            (
                f"{text('version', lang)}{colon}{sheet.version}",
                f"{text('worker', lang)}{colon}{sheet.worker}",
                f"{text('status', lang)}{colon}{sheet.status}",
            )
        ),
        *([f"{text('grid', lang)}{colon}{sheet.grid}"] if sheet.grid else []),
        f"{text('printed', lang)}{colon}{sheet.printed_at}",
        f"{text('record', lang)}{colon}{sheet.record_id}",
    ]


def _header_height(m: _Measure, fonts: _Fonts, sheet: Sheet, continued: bool) -> float:
    width = A4_WIDTH_MM - 2 * MARGIN_X - QR_MM - 6
    title = sheet.title + (text("continued", sheet.lang) if continued else "")
    h = m.height(fonts.form, width, sheet.form_title) + 1
    h += m.height(fonts.title, width, title) + 2
    h += sum(m.height(fonts.meta, width, line) for line in _meta_lines(sheet))
    return max(h, QR_MM + 4) + 4


def _cells(m: _Measure, fonts: _Fonts, section: SheetSection) -> list[_Item]:
    """Rows of a section: two short fields side by side, long ones across the page.

    ``y`` is left at 0 here; ``_layout`` places the items.
    """
    half_value_w = HALF_MM - HALF_LABEL_MM - 2
    line = m.height(fonts.value, 1000, "国")

    def short(row: SheetRow) -> bool:
        return (
            m.height(fonts.value, half_value_w, row.value) <= line * 1.2
            and m.height(fonts.label, HALF_LABEL_MM - 2, row.label) <= line * 1.2
        )

    def height(rows: Sequence[SheetRow], label_w: float, value_w: float) -> float:
        tallest = max(
            max(
                m.height(fonts.label, label_w - 2, r.label), m.height(fonts.value, value_w, r.value)
            )
            for r in rows
        )
        return tallest + 2 * ROW_PAD_MM

    items, pending = [], list(section.rows)
    while pending:
        row = pending.pop(0)
        if pending and short(row) and short(pending[0]):
            pair = (row, pending.pop(0))
            h = height(pair, HALF_LABEL_MM, half_value_w)
            items.append(_Item("pair", 0.0, h, row=pair[0], other=pair[1]))
        else:
            h = height([row], LABEL_MM, FULL_MM - LABEL_MM)
            items.append(_Item("row", 0.0, h, row=row))
    return items


def _layout(sheets: Sequence[Sheet], m: _Measure, fonts: _Fonts) -> list[_Page]:
    pages: list[_Page] = []
    bottom = A4_HEIGHT_MM - MARGIN_BOTTOM
    for sheet in sheets:
        header = {c: _header_height(m, fonts, sheet, c) for c in (False, True)}
        page = _Page(sheet, False, MARGIN_TOP + header[False])
        pages.append(page)
        y = page.body_top
        for section in sheet.sections:
            heading = m.height(fonts.section, FULL_MM, section.title) + 1.5
            cells = _cells(m, fonts, section)
            if y + heading + cells[0].height > bottom and page.items:
                page = _Page(sheet, True, MARGIN_TOP + header[True])
                pages.append(page)
                y = page.body_top
            page.items.append(_Item("section", y, heading, section=section))
            y += heading
            for cell in cells:
                if y + cell.height > bottom:
                    page = _Page(sheet, True, MARGIN_TOP + header[True])
                    pages.append(page)
                    y = page.body_top
                cell.y = y
                page.items.append(cell)
                y += cell.height
            y += SECTION_GAP_MM
        sign = SIGN_GAP_MM + m.height(fonts.value, FULL_MM, text("sign", sheet.lang))
        if y + sign > bottom:
            page = _Page(sheet, True, MARGIN_TOP + header[True])
            pages.append(page)
            y = page.body_top
        page.items.append(_Item("sign", y, sign))
    return pages


# -- painting --------------------------------------------------------------------------------


def _draw_text(
    p: QPainter, u: Units, font: QFont, rect: QRectF, content: str, flags: int | None = None
) -> float:
    """Wrapped between words (see ``textbox``), or one aligned line with ``flags``."""
    if flags is None:
        return draw_text(p, font, rect, content) / u.per_mm
    p.setFont(font)
    bound = p.boundingRect(rect, flags, content)
    p.drawText(rect, flags, content)
    return bound.height() / u.per_mm


def _hline(p: QPainter, u: Units, x1: float, x2: float, y: float) -> None:
    p.drawLine(QPointF(u.mm(x1), u.mm(y)), QPointF(u.mm(x2), u.mm(y)))


def _paint_header(p: QPainter, u: Units, fonts: _Fonts, page: _Page) -> None:
    sheet, lang = page.sheet, page.sheet.lang
    left, width = MARGIN_X, A4_WIDTH_MM - 2 * MARGIN_X - QR_MM - 6
    y = MARGIN_TOP
    p.setPen(_GREY)
    y += _draw_text(p, u, fonts.form, u.rect(left, y, width, 20), sheet.form_title) + 1
    p.setPen(Qt.GlobalColor.black)
    title = sheet.title + (text("continued", lang) if page.continued else "")
    y += _draw_text(p, u, fonts.title, u.rect(left, y, width, 40), title) + 2
    p.setPen(_GREY)
    for line in _meta_lines(sheet):
        y += _draw_text(p, u, fonts.meta, u.rect(left, y, width, 20), line)
    qr_left = A4_WIDTH_MM - MARGIN_X - QR_MM
    draw_qr(p, u.rect(qr_left, MARGIN_TOP - 2, QR_MM, QR_MM), sheet.qr_text)
    centre = int(Qt.AlignmentFlag.AlignHCenter)
    _draw_text(
        p,
        u,
        fonts.footer,
        u.rect(qr_left, MARGIN_TOP - 2 + QR_MM, QR_MM, 5),
        text("scan_hint", lang),
        centre,
    )
    rule_y = page.body_top - 3
    p.setPen(QPen(Qt.GlobalColor.black, u.mm(0.4)))
    _hline(p, u, MARGIN_X, A4_WIDTH_MM - MARGIN_X, rule_y)


def _paint_field(
    p: QPainter,
    u: Units,
    fonts: _Fonts,
    item: _Item,
    row: SheetRow,
    x: float,
    label_w: float,
    value_w: float,
) -> None:
    top = item.y + ROW_PAD_MM
    p.setPen(_GREY)
    _draw_text(p, u, fonts.label, u.rect(x, top, label_w - 2, item.height), row.label)
    p.setPen(Qt.GlobalColor.black)
    _draw_text(p, u, fonts.value, u.rect(x + label_w, top, value_w, item.height), row.value)


def _paint_items(p: QPainter, u: Units, fonts: _Fonts, page: _Page) -> None:
    for item in page.items:
        if item.kind == "sign":  # room above the line for a hand-written signature
            p.setPen(Qt.GlobalColor.black)
            rect = u.rect(MARGIN_X, item.y + SIGN_GAP_MM, FULL_MM, item.height)
            _draw_text(p, u, fonts.value, rect, text("sign", page.sheet.lang))
            continue
        if item.kind == "section" and item.section is not None:
            p.setPen(Qt.GlobalColor.black)
            rect = u.rect(MARGIN_X, item.y, FULL_MM, item.height)
            _draw_text(p, u, fonts.section, rect, item.section.title)
            continue
        if item.row is None:
            continue
        if item.kind == "pair" and item.other is not None:
            value_w = HALF_MM - HALF_LABEL_MM - 2
            _paint_field(p, u, fonts, item, item.row, MARGIN_X, HALF_LABEL_MM, value_w)
            right = MARGIN_X + HALF_MM + 2
            _paint_field(p, u, fonts, item, item.other, right, HALF_LABEL_MM, value_w)
        else:
            _paint_field(p, u, fonts, item, item.row, MARGIN_X, LABEL_MM, FULL_MM - LABEL_MM)
        p.setPen(QPen(_RULE, u.mm(0.15)))
        _hline(p, u, MARGIN_X, MARGIN_X + FULL_MM, item.y + item.height)


def _paint_footer(p: QPainter, u: Units, fonts: _Fonts, page: _Page, n: int, total: int) -> None:
    lang = page.sheet.lang
    y = A4_HEIGHT_MM - MARGIN_BOTTOM + 6
    width = A4_WIDTH_MM - 2 * MARGIN_X
    p.setPen(_GREY)
    left = f"{text('footer', lang)} · {page.sheet.form_title}"
    _draw_text(
        p, u, fonts.footer, u.rect(MARGIN_X, y, width, 6), left, int(Qt.AlignmentFlag.AlignLeft)
    )
    right = int(Qt.AlignmentFlag.AlignRight)
    _draw_text(
        p, u, fonts.footer, u.rect(MARGIN_X, y, width, 6), text("page", lang, n=n, m=total), right
    )


def render_sheets(
    device: QPagedPaintDevice,
    sheets: Sequence[Sheet],
    *,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> int:
    """Paint the sheets on ``device`` (A4, set here); returns the number of pages."""
    if not sheets:
        return 0
    prepare_device(device)
    units, fonts = Units(device), _Fonts.make()
    pages = _layout(sheets, _Measure(device, units), fonts)
    painter = QPainter(device)
    if not painter.isActive():  # the file or printer could not be opened
        raise OSError("cannot open the output for painting")
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        done, last = 0, None
        for n, page in enumerate(pages, start=1):
            check_cancel(cancel)
            if n > 1:
                device.newPage()
            _paint_header(painter, units, fonts, page)
            _paint_items(painter, units, fonts, page)
            _paint_footer(painter, units, fonts, page, n, len(pages))
            if page.sheet is not last:
                done, last = done + 1, page.sheet
                if progress:
                    progress(done, len(sheets))
    finally:
        painter.end()
    return len(pages)


def write_sheets_pdf(
    store: Store,
    record_ids: Sequence[str],
    out: str | Path,
    *,
    lang: str = "zh",
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    printed_at: dt.datetime | None = None,
) -> int:
    """One PDF with the sheets of ``record_ids``; returns the page count.

    A cancelled or failed job leaves no partial file behind.
    """
    sheets = build_sheets(store, record_ids, lang=lang, printed_at=printed_at)
    path = Path(out)
    writer = pdf_writer(path, text("sheets_title", lang))
    try:
        pages = render_sheets(writer, sheets, progress=progress, cancel=cancel)
    except BaseException:
        del writer
        path.unlink(missing_ok=True)
        raise
    del writer  # closes the file
    fix_text_layer(path)
    return pages


__all__ = [
    "Sheet",
    "SheetRow",
    "SheetSection",
    "build_sheet",
    "build_sheets",
    "masked_data",
    "render_sheets",
    "text",
    "write_sheets_pdf",
]
