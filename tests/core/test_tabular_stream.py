"""``stream_table``: the one reader, rows as they are read (what load-base streams a city
mirror with); ``read_table`` is its rows kept, within the device's limits."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from openpyxl import Workbook

from app.core.tabular import STREAMED, TableError, read_table, stream_table

HEADERS = ["姓名", "公民身份号码", "备注"]


def _rows(count: int) -> list[list[str]]:
    return [[f"张{i}", f"{i:018d}", "" if i % 3 else "x"] for i in range(count)]


def _csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADERS)
        writer.writerows(rows)
    return path


def _xlsx(path: Path, rows: list[list[str]]) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["某社区实有人口登记表"])  # a title line above the headers
    sheet.append(HEADERS)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def _json(path: Path, rows: list[list[str]]) -> Path:
    path.write_text(json.dumps([dict(zip(HEADERS, r, strict=True)) for r in rows]), "utf-8")
    return path


@pytest.mark.parametrize("write", [_csv, _xlsx, _json])
def test_a_stream_gives_what_read_table_gives(tmp_path: Path, write: object) -> None:
    assert callable(write)
    path = write(tmp_path / f"t.{write.__name__[1:]}", _rows(50))
    table = read_table(path)
    stream = stream_table(path, STREAMED)
    assert (stream.file, stream.headers, stream.header_row) == (
        table.file,
        table.headers,
        table.header_row,
    )
    assert list(stream.rows) == table.rows


def test_rows_come_before_a_problem_further_down_is_read(tmp_path: Path) -> None:
    """Lazily: the first rows are there while a bad value 5,000 rows down is not read yet;
    reading on reaches it and names its row and column, as ``read_table`` does at once."""
    rows = _rows(5_000)
    rows[-1][0] = "张\x00三"
    path = _csv(tmp_path / "t.csv", rows)
    with pytest.raises(TableError) as whole:
        read_table(path)
    stream = stream_table(path, STREAMED)
    assert next(stream.rows) == (2, {"姓名": "张0", "公民身份号码": f"{0:018d}", "备注": "x"})
    with pytest.raises(TableError) as streamed:
        list(stream.rows)
    assert (
        (streamed.value.row, streamed.value.column) == (whole.value.row, "姓名") == (5_001, "姓名")
    )
