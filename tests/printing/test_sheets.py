"""Record sheets rendered to real PDFs, read back as text, fonts and decoded QR codes."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import pytest

from app.core import qrpayload, scan
from app.core.masking import mask_value
from app.core.store import Grid, Store
from app.printing import fonts
from app.printing.cli import add_print_commands
from app.printing.select import SelectionError, select_records
from app.printing.sheets import (
    Sheet,
    SheetRow,
    SheetSection,
    build_sheets,
    render_sheets,
    write_sheets_pdf,
)
from app.printing.textlayer import fix_text_layer
from tests.factories import id_number, resident
from tests.printing.pdfcheck import (
    CJK_FONT_NAMES,
    as_extracted,
    compact,
    decode_pages,
    embedded_fonts,
    page_texts,
)

GRID = "330106001001-01"


@pytest.fixture(autouse=True)
def _app(qapp):  # noqa: ANN001, ANN202 - a QApplication before any font or PDF work
    return qapp


def _house(store: Store, room: str, building: str = "3栋", grid: str = GRID) -> str:
    data = {
        "house_code": f"H-{building}-{room}",
        "address_text": f"幸福路12号{building}{room}室",
        "grid": grid,
        "building": building,
        "room": room,
    }
    return store.save("house", data, status="complete", author="wang").id


def _resident(store: Store, house: str, seq: int, **overrides: object) -> str:
    data = resident(seq=seq, house_ref=house, phone=f"1380013{seq:04d}", **overrides)
    return store.save("resident", data, status="complete", author="li").id


def _has(text: str, expected: str) -> bool:
    """``expected`` is in the extracted ``text`` (spacing and glyph twins aside)."""
    return compact(as_extracted(expected)) in compact(text)


def _page_has_number(text: str, n: int, m: int) -> bool:
    return _has(text, f"第 {n} 页 / 共 {m} 页")


def test_sheet_masks_sensitive_values_and_embeds_a_cjk_font(store: Store, tmp_path: Path) -> None:
    house = _house(store, "501")
    rid = _resident(store, house, 457, birth=dt.date(1979, 3, 8), name="李四海")
    record = store.get(rid)
    number = record.data["id_number"]
    assert number == id_number(dt.date(1979, 3, 8), 457)
    out = tmp_path / "sheet.pdf"

    pages = write_sheets_pdf(store, [rid], out)

    assert pages == 1
    text = page_texts(out)[0]
    form = store.formset.form("resident")
    for field, value in (("id_number", number), ("phone", record.data["phone"])):
        assert value not in compact(text)
        assert _has(text, mask_value(form.field(field), value))
    # Issue 15: the birth date would give the masked ID number back: only its year is printed,
    # and the registration area only to its province.
    assert "1979-03-08" not in compact(text) and _has(text, "1979-**-**")
    assert _has(text, "户籍地浙江省****") and _has(text, "现住地浙江省****")
    assert _has(text, "12号3栋501室")  # unmasked digits do extract: absence above means absent
    assert _has(text, "李四海") and _has(text, "实有人口")
    assert _has(text, "户籍人口")  # a code shown as its label
    assert _has(text, "幸福路12号3栋501室")  # the house reference shown as the house's title
    assert _has(text, f"记录版本：{scan.record_version(store, record)}")
    assert _has(text, "采集员：li")
    assert _page_has_number(text, 1, 1)
    cjk = [
        (name, embedded) for name, embedded in embedded_fonts(out) if CJK_FONT_NAMES.search(name)
    ]
    assert cjk and all(embedded for _, embedded in cjk)


def test_the_sheet_qr_is_the_payload_of_the_record_and_nothing_else(
    store: Store, tmp_path: Path
) -> None:
    rid = _resident(store, _house(store, "502"), 11)
    record = store.get(rid)
    out = tmp_path / "sheet.pdf"
    write_sheets_pdf(store, [rid], out)

    [[code]] = decode_pages(out)

    key = scan.deployment_key(store)
    assert key is not None  # printing created the deployment key
    assert code == qrpayload.encode(rid, "resident", scan.record_version(store, record), key)
    assert qrpayload.decode(code, key).record_id == rid
    for personal in (record.data["name"], record.data["id_number"], record.data["phone"]):
        assert personal not in code
    assert scan.resolve_scan(store, code).record_id == rid


def test_residents_of_a_house_in_one_pdf_with_page_numbers(store: Store, tmp_path: Path) -> None:
    house = _house(store, "601")
    residents = [_resident(store, house, seq) for seq in (21, 22, 23)]
    _resident(store, _house(store, "602"), 24)  # another house: not printed
    ids = select_records(store, "resident", house=house)
    assert sorted(ids) == sorted(residents)
    out = tmp_path / "house.pdf"

    pages = write_sheets_pdf(store, ids, out)

    assert pages == 3
    key = scan.deployment_key(store)
    for n, (text, codes) in enumerate(zip(page_texts(out), decode_pages(out), strict=True), 1):
        assert _page_has_number(text, n, 3)
        assert [qrpayload.decode(c, key).record_id for c in codes] == [ids[n - 1]]


def test_building_selection_takes_the_residents_of_its_houses(store: Store) -> None:
    store.put_grid(Grid(GRID, "第一网格", "330106001", "幸福社区"))
    in_building = [
        _resident(store, _house(store, r), seq) for r, seq in (("101", 31), ("1201", 32))
    ]
    other = _resident(store, _house(store, "101", building="4栋"), 33)

    chosen = select_records(store, "resident", building="3栋", grid=GRID)

    assert sorted(chosen) == sorted(in_building) and other not in chosen
    houses = select_records(store, "house", building="3栋", grid=GRID)
    assert [store.get(h).data["room"] for h in houses] == ["101", "1201"]  # natural order
    with pytest.raises(SelectionError) as err:
        select_records(store, "resident", building="9栋", grid=GRID)
    assert "没有符合条件的记录" in err.value.message("zh")


def test_a_long_record_continues_with_its_header_and_qr_on_every_page(tmp_path: Path) -> None:
    from app.printing.page import pdf_writer

    payload = qrpayload.encode("0190c5e4-0000-7000-8000-000000000001", "resident", 7, None)
    rows = tuple(SheetRow(f"字段{i}", f"第{i}行的值，" + "很长的内容" * (i % 7)) for i in range(90))
    sheet = Sheet(
        "0190c5e4-0000-7000-8000-000000000001",
        "实有人口",
        "测试长记录",
        (SheetSection("基本信息", rows[:45]), SheetSection("其他", rows[45:])),
        payload,
        7,
        "wang",
        "草稿",
        "2025-01-02 09:30",
    )
    out = tmp_path / "long.pdf"
    writer = pdf_writer(out, "test")
    pages = render_sheets(writer, [sheet])
    del writer
    fix_text_layer(out)  # what write_sheets_pdf does after painting

    assert pages >= 3
    texts, codes = page_texts(out), decode_pages(out)
    assert all(c == [payload] for c in codes)
    assert all(_has(t, "测试长记录（续）") for t in texts[1:])
    assert all(_page_has_number(t, n, pages) for n, t in enumerate(texts, 1))
    joined = "".join(texts)
    assert all(_has(joined, f"第{i}行的值") for i in range(90))  # no row lost at a page break


def test_printed_sheet_scanned_after_edits_lists_what_changed(store: Store, tmp_path: Path) -> None:
    rid = _resident(store, _house(store, "701"), 41, name="王五")
    out = tmp_path / "before.pdf"
    write_sheets_pdf(store, [rid], out)
    [[code]] = decode_pages(out)
    data = dict(store.get(rid).data, name="王小五", phone="13912345678")
    store.save("resident", data, record_id=rid, status="complete", author="li")

    result = scan.resolve_scan(store, code)

    assert result.record_id == rid and result.code == "scan.changed"
    changed = {c.field: (c.printed, c.now) for c in result.changed_fields}
    assert changed == {"name": ("王五", "王小五"), "phone": ("13800130041", "13912345678")}
    assert "姓名" in result.message_zh and "联系方式" in result.message_zh
    assert "13912345678" not in result.message_zh  # labels, never values


def test_qprinter_path_of_the_preview_dialogs(store: Store, tmp_path: Path) -> None:
    from PySide6.QtPrintSupport import QPrinter

    from app.printing.preview import make_printer, sheets_render_fn

    rid = _resident(store, _house(store, "801"), 51)
    printer = make_printer()
    printer.setOutputFormat(QPrinter.OutputFormat.PdfFormat)
    out = tmp_path / "printer.pdf"
    printer.setOutputFileName(str(out))

    sheets_render_fn(store, [rid])(printer)

    [[code]] = decode_pages(out)
    assert qrpayload.decode(code, scan.deployment_key(store)).record_id == rid


def test_no_cjk_font_is_refused_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (
        fonts.pick_family(["DejaVu Sans", "Noto Sans CJK SC"], lambda f: "CJK" in f)
        == "Noto Sans CJK SC"
    )
    assert not fonts.covers("DejaVu Sans") or "DejaVu Sans" not in fonts.QFontDatabase.families()
    monkeypatch.setattr(fonts, "_candidates", lambda: ["DejaVu Sans"])
    monkeypatch.setattr(fonts, "_font_files", lambda: [])
    fonts.cjk_family.cache_clear()
    try:
        with pytest.raises(fonts.NoCjkFontError) as err:
            fonts.cjk_family()
    finally:
        fonts.cjk_family.cache_clear()
    assert err.value.message("zh") == "没有可用的中文字体，打印会显示方框。请安装 fonts-noto-cjk。"
    assert "fonts-noto-cjk" in err.value.message("en")


def _cli(tmp_path: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir")
    parser.add_argument("--lang")
    add_print_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["--data-dir", str(tmp_path / "data"), *argv])
    return args.func(args)


def test_print_command_writes_a_pdf_and_refuses_bad_selections(
    tmp_path: Path,
    formset,
    capsys: pytest.CaptureFixture[str],  # noqa: ANN001
) -> None:
    from app.core import paths

    data = tmp_path / "data"
    store = Store(paths.db_path(data), formset)
    house = _house(store, "901")
    ids = [_resident(store, house, seq) for seq in (61, 62)]
    store.close()
    out = tmp_path / "out.pdf"

    assert _cli(tmp_path, "print", "--form", "resident", "--house", house, "--out", str(out)) == 0
    assert "2" in capsys.readouterr().out and len(decode_pages(out)) == 2
    assert _cli(tmp_path, "print", "--form", "resident", "--ids", ids[0], "--out", str(out)) == 0
    assert _cli(tmp_path, "print", "--form", "house", "--ids", ids[0], "--out", str(out)) == 2
    assert "不是" in capsys.readouterr().err
    missing = tmp_path / "none.pdf"
    assert (
        _cli(tmp_path, "print", "--form", "resident", "--building", "99栋", "--out", str(missing))
        == 2
    )
    assert "没有符合条件的记录" in capsys.readouterr().err and not missing.exists()
    assert _cli(tmp_path, "print", "--form", "resident", "--grid", GRID, "--out", str(out)) == 0
    assert len(decode_pages(out)) == 2
    assert _cli(tmp_path, "print", "--form", "resident", "--out", str(out)) == 2
    assert "--grid" in capsys.readouterr().err
    bad_dir = tmp_path / "no" / "such" / "dir.pdf"
    assert _cli(tmp_path, "print", "--form", "resident", "--all", "--out", str(bad_dir)) == 2


def test_build_sheets_skips_missing_and_keeps_order(store: Store) -> None:
    a = _resident(store, _house(store, "111"), 71)
    b = _resident(store, _house(store, "112"), 72)
    sheets = build_sheets(store, [b, "0190c5e4-0000-7000-8000-00000000dead", a], key=b"k" * 32)
    assert [s.record_id for s in sheets] == [b, a]


def test_a_house_sheet_shows_its_position_in_wgs84_and_cgcs2000(
    store: Store, tmp_path: Path
) -> None:
    from app.core import geo

    point = geo.LonLat(120.1551, 30.2741)
    data = {
        "house_code": "H-GEO",
        "address_text": "西湖区文三路8号",
        "grid": GRID,
        "is_rental": False,
        "location": geo.to_storage(point),
    }
    rid = store.save("house", data, author="wang").id
    out = tmp_path / "house.pdf"
    write_sheets_pdf(store, [rid], out)
    text = page_texts(out)[0]
    gk = geo.to_gk3(point)
    assert _has(text, f"{point.lon:.7f}, {point.lat:.7f} (WGS84)")
    assert _has(text, f"EPSG:{gk.epsg} E {gk.easting:.2f} N {gk.northing:.2f}")
    assert _has(text, "是否出租房否")  # booleans in words
