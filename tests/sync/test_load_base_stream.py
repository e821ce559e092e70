"""``server-admin load-base`` streams a city mirror (issue 17): it is not held to the device's
100 000-record limit, it reads at most a chunk ahead of what it has stored, and a file refused
below the first chunk still stores nothing. Real platform (SQLite and PostgreSQL), real files.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from app.core.tabular import MAX_ROW_NUMBER, TableError, read_table
from app.core.transfer import map_headers
from sync.server import admin, baseload, db
from tests.bench.common import HEADERS, resident_rows, write_csv
from tests.sync.conftest import Platform

CHUNK = 10


def _stored(platform: Platform) -> int:
    with platform.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(db.records)).scalar_one())


def test_a_mirror_past_the_device_limit_loads(platform: Platform, tmp_path: Path) -> None:
    """Rows numbered past the device's limit (blank lines count as the spreadsheet numbers
    them): the device's reader refuses the file, load-base loads it."""
    path = tmp_path / "mirror.csv"
    rows = resident_rows(3, seed=11)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADERS)
        fh.write("\r\n" * MAX_ROW_NUMBER)
        writer.writerows(rows)
    with pytest.raises(TableError) as refused:
        read_table(path)
    assert refused.value.code == "too_many_rows"
    report = admin.load_base(platform.service, "resident", path)
    assert (report.rows, report.created, report.drafts, report.rejected) == (3, 3, 0, 0)
    assert _stored(platform) == 3


def test_the_loader_reads_at_most_a_chunk_ahead_of_what_it_stored(
    platform: Platform, formset: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows come from a generator that refuses to be read more than a chunk ahead of the
    records committed: memory holds a chunk, not the file."""
    monkeypatch.setattr(baseload, "BATCH", CHUNK)
    form = formset.form("resident")
    mapping, unknown = map_headers(form, HEADERS)
    assert not unknown
    cells = resident_rows(3 * CHUNK + 5, seed=12)
    read: list[int] = []

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        for number, line in enumerate(cells, 2):
            ahead = len(read) - _stored(platform)
            if ahead >= CHUNK:
                raise AssertionError(f"read {ahead} rows ahead of the stored ones")
            read.append(number)
            yield number, dict(zip(HEADERS, line, strict=True))

    report = baseload.LoadReport(rows=len(cells))
    baseload.load_rows(platform.service, form, mapping, rows(), report)
    assert report.created == len(cells) == len(read) == _stored(platform)


def test_a_file_refused_below_the_first_chunk_stores_nothing(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first reading checks the whole file: a bad value three chunks down is reported
    with its row and column and nothing is stored (README: files refused whole)."""
    monkeypatch.setattr(baseload, "BATCH", CHUNK)
    rows = resident_rows(3 * CHUNK, seed=13)
    rows[-1][2] = "张\x00三"  # 姓名 with a NUL: the server's text checks refuse it
    path = write_csv(tmp_path / "mirror.csv", rows)
    before = platform.dump()
    with pytest.raises(TableError) as refused:
        admin.load_base(platform.service, "resident", path)
    assert refused.value.row == 3 * CHUNK + 1
    assert platform.dump() == before


def test_problems_go_out_as_they_come_instead_of_piling_up(
    platform: Platform, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mirror with a problem on every row: each is handed on (the CLI prints it) and none
    is kept in the report."""
    rows = resident_rows(5, seed=14)
    for row in rows:
        row[HEADERS.index("联系方式")] = "12"  # not a phone number: a draft
    path = write_csv(tmp_path / "mirror.csv", rows)
    seen: list[tuple[int, str]] = []
    report = admin.load_base(
        platform.service, "resident", path, on_problem=lambda row, text: seen.append((row, text))
    )
    assert (report.drafts, report.problems) == (5, [])
    assert [row for row, _ in seen] == [2, 3, 4, 5, 6]
    assert all("联系方式" in text and "12" not in text for _, text in seen)


class _Stop(Exception):
    """The operator's Ctrl+C, half-way through a load."""


def test_a_stopped_load_is_finished_by_running_it_again(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each chunk is committed on its own; the second run recognises the rows already
    loaded (content-hash op ids) and loads the rest, no person twice."""
    monkeypatch.setattr(baseload, "BATCH", CHUNK)
    path = write_csv(tmp_path / "mirror.csv", resident_rows(2 * CHUNK + 5, seed=15))

    def stop_after_first_chunk(done: int, total: int) -> None:
        raise _Stop

    with pytest.raises(_Stop):
        admin.load_base(platform.service, "resident", path, progress=stop_after_first_chunk)
    assert _stored(platform) == CHUNK
    report = admin.load_base(platform.service, "resident", path)
    assert (report.unchanged, report.created) == (CHUNK, CHUNK + 5)
    assert _stored(platform) == 2 * CHUNK + 5
