"""Merged cells in an office spreadsheet: the same address merged down the rows of a building.

Excel keeps a merged range's value in its top-left cell only; the other cells of the range are
empty in the file. Read as it is, the first row got the address and the rows below it were told
"required" (or, for an optional column, silently lost the value). Filling the value down could
give a row a value it was never meant to have, so the file is refused whole, naming the range,
and nothing is stored. A title merged across the top of the sheet is no record's value: kept.
The real ``gridcollect`` command on workbooks made with openpyxl.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from openpyxl import Workbook
from openpyxl.utils import get_column_letter

from tests.e2e.test_cli import HEADERS, citizen, gridcollect, output, people, store_digest

ADDRESS = get_column_letter(HEADERS.index("现住详址") + 1)
NAME = get_column_letter(HEADERS.index("姓名") + 1)
LAST = get_column_letter(len(HEADERS))


def office_book(path: Path, merge: str | None) -> Path:
    """A title merged over the table (row 1), the header (row 2), six residents (rows 3–8) of
    one building; ``merge``: a range merged below the header, as offices do."""
    book = Workbook()
    sheet = book.active
    sheet.append(["幸福社区实有人口登记表"])
    sheet.merge_cells(f"A1:{LAST}1")
    sheet.append(HEADERS)
    for n in range(60, 66):
        sheet.append([citizen(n, 现住详址="文三路8号").get(h, "") for h in HEADERS])
    if merge:
        sheet.merge_cells(merge)  # openpyxl empties every cell of the range but the first
    book.save(path)
    return path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.mark.parametrize(
    ("merge", "column"),
    [
        (f"{ADDRESS}4:{ADDRESS}6", "现住详址"),  # one building's address down three rows
        (f"{NAME}5:{get_column_letter(4)}5", "姓名"),  # across two columns of one record
        (f"{ADDRESS}2:{ADDRESS}3", "现住详址"),  # a header cell merged into the first record
    ],
)
def test_a_file_with_merged_record_cells_is_refused_whole_naming_the_range(
    data: Path, tmp_path: Path, merge: str, column: str
) -> None:
    path = office_book(tmp_path / "p.xlsx", merge)
    first_row = merge.split(":")[0].lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    seeded = gridcollect(
        data, "import", "--form", "resident", office_book(tmp_path / "s.xlsx", None)
    )
    assert seeded.returncode == 0, output(seeded)
    before = store_digest(data)
    for command in ("validate", "import"):
        result = gridcollect(data, command, "--form", "resident", path)
        assert result.returncode == 2, output(result)
        assert "Traceback" not in output(result) and "必填" not in output(result)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, output(result)
        assert f"p.xlsx 第{first_row}行 [{column}]" in lines[0], lines
        assert f"{merge} 是合并单元格" in lines[0] and "取消合并" in lines[0], lines
    assert store_digest(data) == before
    english = gridcollect(data, "import", "--form", "resident", path, lang="en")
    assert english.returncode == 2, output(english)
    assert f"p.xlsx, row {first_row} [{column}]" in english.stderr
    assert f"{merge} are merged cells" in english.stderr and "Unmerge them" in english.stderr


def test_a_merged_title_and_empty_merged_cells_are_no_record_value(
    data: Path, tmp_path: Path
) -> None:
    """The title merged across row 1 and an empty range merged below the records (a template's
    unused rows) hold nothing a record would lose: the file imports."""
    path = office_book(tmp_path / "p.xlsx", f"{ADDRESS}12:{ADDRESS}20")
    result = gridcollect(data, "import", "--form", "resident", path)
    assert result.returncode == 0, output(result)
    stored = people(data)
    assert len(stored) == 6 and {p["residence_address"] for p in stored.values()} == {"文三路8号"}


def test_load_base_refuses_merged_record_cells_and_leaves_the_platform_as_it_was(
    tmp_path: Path,
) -> None:
    """``server-admin load-base`` reads a city mirror through the same reader."""
    db = tmp_path / "platform.db"
    url = f"sqlite:///{db}"
    assert gridcollect(tmp_path / "d", "server-admin", "--db", url, "init").returncode == 0
    before = "\n".join(sqlite3.connect(db).iterdump())
    path = office_book(tmp_path / "p.xlsx", f"{ADDRESS}4:{ADDRESS}6")
    result = gridcollect(tmp_path / "d", "server-admin", "--db", url, "load-base", path)
    assert result.returncode == 2, output(result)
    assert f"p.xlsx 第4行 [现住详址]：{ADDRESS}4:{ADDRESS}6 是合并单元格" in result.stderr
    assert "\n".join(sqlite3.connect(db).iterdump()) == before
