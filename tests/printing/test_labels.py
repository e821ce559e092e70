"""Door-plate labels: every QR of a 1,000-label batch decodes to its house; stocks and CLI."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import zxingcpp

from app.core import paths, qrpayload, scan
from app.core.store import Grid, Store
from app.printing.cli import add_print_commands
from app.printing.labels import STOCKS, UnknownStockError, build_labels, stock, write_labels_pdf
from app.printing.page import A4_HEIGHT_MM, A4_WIDTH_MM
from app.printing.qr import qr_image, qr_matrix
from app.printing.select import select_houses
from tests.factories import id_number
from tests.printing.pdfcheck import as_extracted, compact, decode_pages, page_texts

GRID = "330106001001-01"


@pytest.fixture(autouse=True)
def _app(qapp):  # noqa: ANN001, ANN202 - a QApplication before any font or PDF work
    return qapp


def _houses(store: Store, count: int, grid: str = GRID, **extra: str) -> list[str]:
    rows = [
        (
            None,
            {
                "house_code": f"H{i:05d}",
                "address_text": f"浙江省杭州市西湖区幸福路{i % 50 + 1}号{i % 9 + 1}栋{i % 4 + 1}单元{i % 30 + 101}室",
                "grid": grid,
                "building": f"{i % 9 + 1}栋",
                **extra,
            },
            "complete",
        )
        for i in range(count)
    ]
    return store.insert_many("house", rows, author="wang")


def _record_ids(codes: list[str], key: bytes | None) -> list[str]:
    return [qrpayload.decode(c, key).record_id for c in codes]


def test_every_code_of_a_1000_label_batch_decodes_to_its_house(
    store: Store, tmp_path: Path
) -> None:
    ids = _houses(store, 1000)
    out = tmp_path / "labels.pdf"
    st = stock("A4-24")

    pages = write_labels_pdf(store, ids, out, stock_id=st.id)

    assert pages == -(-1000 // st.per_page)
    key = scan.deployment_key(store)
    decoded = decode_pages(out, dpi=200)
    assert len(decoded) == pages
    for n, codes in enumerate(decoded):
        expected = ids[n * st.per_page : (n + 1) * st.per_page]
        assert sorted(_record_ids(codes, key)) == sorted(expected), f"sheet {n + 1}"
    assert sum(len(c) for c in decoded) == 1000


@pytest.mark.parametrize("stock_id", sorted(STOCKS))
def test_each_stock_fits_a4_and_its_codes_decode(
    store: Store, tmp_path: Path, stock_id: str
) -> None:
    st = stock(stock_id)
    x, y = st.cell(st.per_page - 1)
    assert x + st.width_mm <= A4_WIDTH_MM + 1e-6 and y + st.height_mm <= A4_HEIGHT_MM + 1e-6
    ids = _houses(store, st.per_page + 1)
    out = tmp_path / f"{stock_id}.pdf"

    assert write_labels_pdf(store, ids, out, stock_id=stock_id) == 2

    key = scan.deployment_key(store)
    assert [sorted(_record_ids(c, key)) for c in decode_pages(out)] == [
        sorted(ids[:-1]),
        [ids[-1]],
    ]
    address = store.get(ids[0]).data["address_text"]
    assert compact(as_extracted(address)) in compact(page_texts(out)[0])


def test_skip_leaves_the_first_labels_of_the_first_sheet_empty(
    store: Store, tmp_path: Path
) -> None:
    st = stock("A4-10")
    ids = _houses(store, 8)
    out = tmp_path / "skip.pdf"
    assert write_labels_pdf(store, ids, out, stock_id=st.id, skip=3) == 2
    assert [len(c) for c in decode_pages(out)] == [7, 1]


def test_labels_carry_no_personal_data(store: Store, tmp_path: Path) -> None:
    owner_id = id_number()
    [house] = _houses(
        store, 1, owner_name="赵六", owner_id_number=owner_id, owner_phone="13700001111"
    )
    out = tmp_path / "private.pdf"
    write_labels_pdf(store, [house], out, stock_id="A4-10")
    text = compact(page_texts(out)[0])
    for personal in ("赵六", owner_id, "13700001111", owner_id[-4:]):
        assert compact(as_extracted(personal)) not in text
    [[code]] = decode_pages(out)
    assert all(p not in code for p in ("赵六", owner_id, "13700001111"))
    assert build_labels(store, [house])[0].qr_text == code


def test_unknown_stock_names_the_choices() -> None:
    with pytest.raises(UnknownStockError) as err:
        stock("A4-99")
    assert "A4-24" in err.value.message("zh") and "A4-99" in err.value.message("en")
    assert stock("a4-24").id == "A4-24"


@pytest.mark.parametrize("engine", ["zxing", "qrcode"])
def test_both_encoders_write_level_m_alphanumeric_codes(engine: str) -> None:
    payload = qrpayload.encode(
        "0190c5e4-1234-7abc-8def-0123456789ab", "resident", 2**32 - 1, b"k" * 32
    )
    assert len(payload) == 60
    matrix = qr_matrix(payload, engine)  # type: ignore[arg-type]
    [code] = zxingcpp.read_barcodes(qr_image(matrix, 4))
    assert code.text == payload and code.ec_level == "M"
    # 60 characters fit version 3 at level M only in alphanumeric mode (bytes: 42 at most).
    assert matrix.size == 29 and code.extra.get("Version") == "3"


def test_house_selection_by_grid_and_building(store: Store) -> None:
    store.put_grid(Grid(GRID, "第一网格", "330106001", "幸福社区"))
    here = _houses(store, 18)
    elsewhere = _houses(store, 3, grid="330106001002-01")
    assert sorted(select_houses(store, grid=GRID)) == sorted(here)
    in_3 = select_houses(store, building="3栋")
    assert sorted(in_3) == sorted(
        h for h in here + elsewhere if store.get(h).data["building"] == "3栋"
    )
    assert sorted(select_houses(store, everything=True)) == sorted(here + elsewhere)


def _cli(data: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir")
    parser.add_argument("--lang")
    add_print_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["--data-dir", str(data), *argv])
    return args.func(args)


def test_labels_command_reports_progress_and_exit_codes(
    tmp_path: Path,
    formset,
    capsys: pytest.CaptureFixture[str],  # noqa: ANN001
) -> None:
    data = tmp_path / "data"
    store = Store(paths.db_path(data), formset)
    ids = _houses(store, 60)
    store.close()
    out = tmp_path / "labels.pdf"

    assert _cli(data, "labels", "--grid", GRID, "--stock", "A4-40", "--out", str(out)) == 0
    captured = capsys.readouterr()
    assert "60" in captured.out and "60/60" in captured.err  # progress on stderr
    assert sum(len(c) for c in decode_pages(out)) == 60
    assert _cli(data, "labels", "--all", "--stock", "A4-99", "--out", str(out)) == 2
    assert "A4-24" in capsys.readouterr().err
    assert _cli(data, "labels", "--grid", "nope", "--out", str(tmp_path / "x.pdf")) == 2
    assert not (tmp_path / "x.pdf").exists()
    assert _cli(data, "labels", "--out", str(out)) == 2
    assert _cli(data, "--lang", "en", "labels", "--ids", ids[0], "--quiet", "--out", str(out)) == 0
    assert "1 labels" in capsys.readouterr().out


def test_labels_render_fn_paints_on_a_printer(store: Store, tmp_path: Path) -> None:
    from PySide6.QtPrintSupport import QPrinter

    from app.printing.preview import labels_render_fn, make_printer

    ids = _houses(store, 5)
    printer = make_printer()
    printer.setOutputFormat(QPrinter.OutputFormat.PdfFormat)
    out = tmp_path / "printer.pdf"
    printer.setOutputFileName(str(out))
    labels_render_fn(store, ids, "A4-10", skip=1)(printer)
    key = scan.deployment_key(store)
    assert [sorted(_record_ids(c, key)) for c in decode_pages(out)] == [sorted(ids)]
