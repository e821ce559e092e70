"""``stream_table``: the one reader, rows as they are read (what load-base streams a city
mirror with); ``read_table`` is its rows kept, within the device's limits."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from app.core import textcheck
from app.core.tabular import STREAMED, TableError, read_lines, read_table, stream_table

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
    lines = read_lines(path)
    assert (lines.file, lines.headers, lines.header_row) == (
        table.file,
        table.headers,
        table.header_row,
    )
    assert [(n, lines.row(line)) for n, line in lines.rows] == table.rows


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


_CELL = st.one_of(
    st.sampled_from(["", " ", "张三", "'=1+1", "a,b", 'say "hi"', "two\nlines", "x"]),
    st.text(alphabet="王李 0123456789-'\"", max_size=6),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    header=st.lists(st.sampled_from(["姓名", "电话", "", "备注", "地址"]), min_size=1, max_size=5),
    lines=st.lists(st.lists(_CELL, max_size=7), max_size=30),
    bad=st.none() | st.sampled_from(["\x00", "x" * 10_001]),
    at=st.integers(0, 29),
)
def test_read_lines_holds_what_read_table_holds(
    tmp_path: Path, header: list[str], lines: list[list[str]], bad: str | None, at: int
) -> None:
    """``read_lines`` (the lines an import turns into columns) against ``read_table``: the
    same file name, headers, row numbers and cells by header (``Lines.row``, and by column
    through ``Lines.columns``), or the same error at the same row and column. Short, long,
    blank and unnamed-column lines, quotes and a bad cell anywhere included."""
    if bad is not None and lines:
        line = lines[at % len(lines)]
        line.append(bad)
    path = tmp_path / "t.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(lines)
    try:
        table = read_table(path)
    except TableError as exc:
        with pytest.raises(TableError) as same:
            read_lines(path)
        assert (same.value.code, same.value.row, same.value.column) == (
            exc.code,
            exc.row,
            exc.column,
        )
        return
    got = read_lines(path)
    assert (got.file, got.headers, got.header_row) == (table.file, table.headers, table.header_row)
    assert [(n, got.row(line)) for n, line in got.rows] == table.rows
    columns = got.columns(got.rows)
    assert {h: list(c) for h, c in columns.items()} == {
        h: [values[h] for _, values in table.rows] for h in table.headers
    }


def test_the_text_checks_read_many_lines_in_one_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cells' text checks run on a chunk of lines at once (one ``cells_ok`` per 256
    lines, not one per line); a bad cell inside a chunk is still named by its own row and
    column."""
    calls: list[int] = []
    cells_ok = textcheck.cells_ok

    def counted(cells: list[object]) -> bool:
        calls.append(len(cells))
        return cells_ok(cells)

    monkeypatch.setattr(textcheck, "cells_ok", counted)
    path = _csv(tmp_path / "t.csv", _rows(1_000))
    assert len(read_lines(path).rows) == 1_000
    assert len(calls) <= 1_000 // 256 + 1
    rows = _rows(1_000)
    rows[700][2] = "坏\x00"
    with pytest.raises(TableError) as bad:
        read_lines(_csv(tmp_path / "bad.csv", rows))
    assert (bad.value.row, bad.value.column) == (702, "备注")
