"""Print that people keep: searchable Chinese text, grid names, a signature line, whole words."""

from __future__ import annotations

import re
from pathlib import Path

import pypdfium2
import pypdfium2.raw as pdfium_c
import pytest
from pypdf import PdfReader

from app.core import qrpayload
from app.core.addresstext import address_words, split_address
from app.core.store import Grid, Store
from app.printing.labels import write_labels_pdf
from app.printing.page import pdf_writer
from app.printing.sheets import Sheet, SheetRow, SheetSection, render_sheets, write_sheets_pdf
from tests.factories import resident
from tests.printing.pdfcheck import compact

GRID = "330106001001-01"
RADICALS = re.compile("[\u2e80-\u2fdf\uf900-\ufaff]")


@pytest.fixture(autouse=True)
def _app(qapp):  # noqa: ANN001, ANN202 - a QApplication before any font or PDF work
    return qapp


def _raw_text(path: Path) -> str:
    """The text layer exactly as a search or copy-paste sees it: no NFKC folding."""
    return "".join(page.extract_text() or "" for page in PdfReader(path).pages)


def _resident_sheet(store: Store, tmp_path: Path, lang: str = "zh") -> str:
    store.put_grid(Grid(GRID, "第一网格", "330106001001", "幸福社区"))
    data = resident(seq=31, name="王居民", education="21", hukou_consistency="01")
    rid = store.save("resident", data, status="complete", author="wang").id
    out = tmp_path / f"sheet-{lang}.pdf"
    write_sheets_pdf(store, [rid], out, lang=lang)
    return _raw_text(out)


def test_the_text_layer_is_unified_ideographs_not_radicals(store: Store, tmp_path: Path) -> None:
    """pdftotext gave ⼾籍, ⼈⼝, 居⺠: Qt's ToUnicode picked the radical sharing the glyph."""
    text = _resident_sheet(store, tmp_path)

    assert not RADICALS.findall(text), sorted(set(RADICALS.findall(text)))
    body = compact(text)
    for word in ("户籍人口", "实有人口", "王居民", "身份", "第1页/共1页"):
        assert word in body, word


def test_a_sheet_shows_code_labels_the_grid_name_and_a_signature_line(
    store: Store, tmp_path: Path
) -> None:
    body = compact(_resident_sheet(store, tmp_path))

    assert "大学本科毕业" in body and "大学本科教育" not in body
    assert "第一网格" in body and GRID not in body  # the grid by its name, never its code
    assert "核对签字" in body and "日期" in body


def test_an_english_sheet_signs_too(store: Store, tmp_path: Path) -> None:
    body = compact(_resident_sheet(store, tmp_path, lang="en"))

    assert "Signature:" in body and "Date:" in body and "第一网格" in body


def test_english_values_wrap_between_words_not_inside_them(tmp_path: Path) -> None:
    """TextWrapAnywhere cut "diploma" into "diplo" / "ma" in a half-width column."""
    words = " ".join(
        f"Bachelor's programme{i} completed without diploma at the municipal evening university"
        for i in range(4)
    )
    rows = (SheetRow("Education", words), SheetRow("Religion", "None"))
    payload = qrpayload.encode("0190c5e4-0000-7000-8000-000000000002", "resident", 1, None)
    sheet = Sheet(
        "0190c5e4-0000-7000-8000-000000000002",
        "Residents",
        "Long English values",
        (SheetSection("Basic", rows),),
        payload,
        1,
        "wang",
        "Draft",
        "2025-01-02 09:30",
        lang="en",
    )
    out = tmp_path / "en.pdf"
    writer = pdf_writer(out, "test")
    render_sheets(writer, [sheet])
    del writer

    text = _raw_text(out)
    value = text[text.index("Education") + len("Education") : text.index("Religion")]
    pieces = value.split()
    assert len(pieces) == len(words.split())
    assert [p for p in pieces if p not in set(words.split())] == []  # no "Ba" / "chelor's"


# -- door-plate labels --------------------------------------------------------------------------


def _chars(path: Path) -> list[tuple[str, float, float]]:
    """(character, bottom y, font size) of every printed character on the first page (pt)."""
    document = pypdfium2.PdfDocument(str(path))
    try:
        page = document[0].get_textpage()
        found = []
        for i in range(page.count_chars()):
            ch = page.get_text_range(i, 1)
            if ch.strip():
                _, bottom, _, _ = page.get_charbox(i)
                found.append((ch, bottom, pdfium_c.FPDFText_GetFontSize(page.raw, i)))
        return found
    finally:
        document.close()


def _occurrence(chars: list[tuple[str, float, float]], word: str) -> list[tuple[str, float, float]]:
    text = "".join(c for c, _, _ in chars)
    at = text.index(word)
    return chars[at : at + len(word)]


@pytest.mark.parametrize("stock_id", ["A4-24", "A4-40"])
def test_a_door_plate_prints_the_room_large_and_never_cuts_a_word(
    store: Store, tmp_path: Path, stock_id: str
) -> None:
    store.put_grid(Grid(GRID, "第一网格", "330106001001", "幸福社区"))
    address = "浙江省杭州市西湖区文澜街88号听涛雅苑1栋1单元101室"
    data = {"house_code": "H00001", "address_text": address, "grid": GRID, "building": "1栋"}
    house = store.save("house", data, status="complete", author="wang").id
    out = tmp_path / "plate.pdf"

    write_labels_pdf(store, [house], out, stock_id=stock_id)

    chars = _chars(out)
    assert "".join(c for c, _, _ in chars).startswith(address)  # the whole address, in order
    small = max(h for _, _, h in _occurrence(chars, "浙江省杭州市"))
    large = min(h for _, _, h in _occurrence(chars, "1栋1单元101室"))
    assert large > 1.6 * small, (large, small)
    for word in (
        "浙江省",
        "杭州市",
        "文澜街",
        "88号",
        "听涛雅苑",
        "1栋",
        "1单元",
        "101室",
        "H00001",
    ):
        bottoms = [y for _, y, _ in _occurrence(chars, word)]
        assert max(bottoms) - min(bottoms) < 2, f"{word} is broken across lines"


def test_address_words_split_at_suffixes_and_keep_numbers_whole() -> None:
    head, tail = split_address("浙江省杭州市西湖区文澜街88号听涛雅苑1栋1单元101室")
    assert (head, tail) == ("浙江省杭州市西湖区文澜街88号听涛雅苑", "1栋1单元101室")
    assert address_words(tail) == ["1栋", "1单元", "101室"]
    assert address_words(head)[-2:] == ["88号", "听涛雅苑"]
    assert split_address("幸福路5号") == ("", "幸福路5号")  # no building part: all of it large
