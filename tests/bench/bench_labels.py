"""Printing speed: 1,000 door-plate labels and a 200-record sheet batch, to PDF.

Baseline, measured in the same run: the same 1,000 labels painted without QR codes (address
and caption only, same layout, same PDF writer), so the ratio shows what the codes cost.
Times cover building the labels/sheets from the store (reads, QR payloads) and writing the
PDF. Usage: python tests/bench/bench_labels.py [--labels 1000] [--sheets 200] [--stock A4-24]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from app.core.forms import load_formset  # noqa: E402
from app.core.store import Store  # noqa: E402
from app.printing.fonts import cjk_family, ensure_gui_app  # noqa: E402
from app.printing.labels import build_labels, render_labels, stock, write_labels_pdf  # noqa: E402
from app.printing.page import pdf_writer  # noqa: E402
from app.printing.sheets import write_sheets_pdf  # noqa: E402
from tests.bench.common import (  # noqa: E402
    HEADERS,  # noqa: E402
    resident_rows,
    timed,
)

GRID = "330106001001-01"


def _houses(store: Store, count: int) -> list[str]:
    rows = [
        (
            None,
            {
                "house_code": f"H{i:06d}",
                "address_text": f"浙江省杭州市西湖区幸福路{i % 80 + 1}号{i % 12 + 1}栋"
                f"{i % 4 + 1}单元{i % 30 + 101}室",
                "grid": GRID,
                "building": f"{i % 12 + 1}栋",
            },
            "complete",
        )
        for i in range(count)
    ]
    return store.insert_many("house", rows, author="bench")


def _residents(store: Store, houses: list[str], count: int) -> list[str]:
    ids = {"证件类型": "id_type", "公民身份号码": "id_number", "姓名": "name", "性别": "gender",
           "出生日期": "birth_date", "民族": "ethnicity", "人口类型": "population_type",
           "户籍地": "hukou_region", "户籍详址": "hukou_address", "现住地": "residence_region",
           "现住详址": "residence_address", "人户一致标识": "hukou_consistency",
           "所属网格": "grid", "联系方式": "phone"}  # fmt: skip
    rows = []
    for i, cells in enumerate(resident_rows(count)):
        data = {ids[h]: v for h, v in zip(HEADERS, cells, strict=True)}
        data["house_ref"] = houses[i % len(houses)]
        rows.append((None, data, "complete"))
    return store.insert_many("resident", rows, author="bench")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--labels", type=int, default=1000)
    parser.add_argument("--sheets", type=int, default=200)
    parser.add_argument("--stock", default="A4-24")
    args = parser.parse_args()
    ensure_gui_app()
    print(f"font                            {cjk_family()}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        store = Store(out / "bench.sqlite", load_formset())
        houses = _houses(store, args.labels)
        residents = _residents(store, houses, args.sheets)
        st = stock(args.stock)
        write_labels_pdf(store, houses[: st.per_page], out / "warm.pdf", stock_id=st.id)

        def plain() -> None:
            labels = build_labels(store, houses)
            writer = pdf_writer(out / "plain.pdf", "bench")
            render_labels(writer, labels, st, with_qr=False)
            del writer

        base_s = timed(plain)
        label_s = timed(lambda: write_labels_pdf(store, houses, out / "labels.pdf", stock_id=st.id))
        sheet_pages: list[int] = []
        sheet_s = timed(
            lambda: sheet_pages.append(write_sheets_pdf(store, residents, out / "sheets.pdf"))
        )
        n, m = args.labels, args.sheets
        size = (out / "labels.pdf").stat().st_size / 1e6
        print(f"labels ({st.id})                  {n}")
        print(f"plain-text labels (baseline)    {base_s:8.2f} s  {n / base_s:10,.0f} labels/s")
        print(f"QR door-plate labels            {label_s:8.2f} s  {n / label_s:10,.0f} labels/s")
        print(f"ratio labels/baseline time      {label_s / base_s:.2f}   ({size:.1f} MB PDF)")
        print(
            f"record sheets                   {sheet_s:8.2f} s  {m / sheet_s:10,.1f} sheets/s"
            f"  ({sheet_pages[0]} pages)"
        )
        store.close()


if __name__ == "__main__":
    main()
