"""Reading back printed PDFs: their text, their embedded fonts and their QR codes."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pypdfium2
import zxingcpp
from pypdf import PdfReader

CJK_FONT_NAMES = re.compile(r"Noto|WenQuanYi|WQY|CJK|SourceHan|YaHei|SimHei|PingFang|Hei", re.I)


def page_texts(path: Path) -> list[str]:
    """Each page's text, NFKC-folded (Qt maps a few glyphs to Kangxi radicals: ⾝ -> 身)."""
    return [unicodedata.normalize("NFKC", p.extract_text() or "") for p in PdfReader(path).pages]


def compact(text: str) -> str:
    """Text without whitespace (extraction inserts tabs and breaks between runs)."""
    return re.sub(r"\s+", "", text)


def embedded_fonts(path: Path) -> list[tuple[str, bool]]:
    """(BaseFont, has an embedded font program) for every font on every page."""
    found = []
    for page in PdfReader(path).pages:
        fonts = page.get("/Resources", {}).get("/Font", {})
        for ref in fonts.values():
            font = ref.get_object()
            descriptors = [
                d.get_object().get("/FontDescriptor") for d in font.get("/DescendantFonts", [])
            ]
            descriptors.append(font.get("/FontDescriptor"))
            embedded = any(
                d is not None
                and any(k in d.get_object() for k in ("/FontFile", "/FontFile2", "/FontFile3"))
                for d in descriptors
            )
            found.append((str(font.get("/BaseFont", "")), embedded))
    return found


def decode_pages(path: Path, dpi: int = 200) -> list[list[str]]:
    """The text of every QR code on each page, rasterised at ``dpi``."""
    document = pypdfium2.PdfDocument(str(path))
    try:
        pages = []
        for index in range(len(document)):
            image = document[index].render(scale=dpi / 72, grayscale=True).to_pil()
            codes = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
            pages.append([c.text for c in codes if c.valid])
        return pages
    finally:
        document.close()


def as_extracted(text: str) -> str:
    """``text`` as the PDF's text layer gives it back, NFKC-folded like ``page_texts``.

    ``app.printing.textlayer`` makes Qt's ToUnicode maps name the characters printed (Qt alone
    gave the first code point sharing a glyph: 户 -> ⼾, 页 -> ⻚), so this is NFKC only.
    """
    return unicodedata.normalize("NFKC", text)
