"""Writing CSV (UTF-8 with BOM, for Excel) and XLSX (every cell text) atomically.

CSV cells a spreadsheet would run as a formula are neutralised (``formula.neutralise``); the
reader restores them, so export → import gives the values back.
"""

from __future__ import annotations

import contextlib
import csv
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from app.core.tabular.errors import TableError
from app.core.tabular.formula import DANGEROUS_FIRST, QUOTE, neutralise

_SUSPECT = frozenset([*DANGEROUS_FIRST, QUOTE])
# Control characters an XLSX cell cannot hold (openpyxl refuses them).
_XLSX_ILLEGAL = dict.fromkeys([*range(0, 9), 11, 12, *range(14, 32)])


def write_table(path: str | Path, headers: Sequence[str], rows: Iterator[Sequence[Any]]) -> int:
    """Write CSV (UTF-8 with BOM, so Excel opens Chinese correctly) or XLSX; returns row count.

    Written to a temporary file beside the target and renamed at the end, so a failed export
    never leaves half a file where a previous good one was.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    writers = {".csv": _write_csv, ".xlsx": _write_xlsx}
    if suffix not in writers:
        raise TableError("suffix", path.name, suffix or "(none)")
    temp = path.with_name(f".{path.name}.part")
    try:
        count = writers[suffix](temp, headers, rows)
        os.replace(temp, path)
    except OSError as exc:
        raise TableError("write", path.name, type(exc).__name__) from None
    finally:
        temp.unlink(missing_ok=True)
    return count


def _write_csv(path: Path, headers: Sequence[str], rows: Iterator[Sequence[Any]]) -> int:
    count = 0

    def cells() -> Iterator[list[str]]:
        nonlocal count
        for row in rows:
            yield csv_cells(row)
            count += 1

    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(csv_cells(headers))
        writer.writerows(cells())
    return count


def csv_cells(values: Sequence[Any]) -> list[str]:
    """A row as every CSV the project writes holds it: text, formulas neutralised."""
    texts = [v if v.__class__ is str else "" if v is None else str(v) for v in values]
    # Only a cell starting with a quote or a formula character can need the prefix: the cheap
    # test inline (an export writes millions of cells).
    return [neutralise(t) if t[:1] in _SUSPECT else t for t in texts]


def _write_xlsx(path: Path, headers: Sequence[str], rows: Iterator[Sequence[Any]]) -> int:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.worksheet._writer import ALL_TEMP_FILES, WorksheetWriter

    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    # openpyxl streams the sheet's XML through a temporary file in the system temp dir (in
    # clear, and left there if the process is killed); keep it beside the target instead, the
    # one place the person chose to put these values.
    spool = path.with_name(f"{path.name}.sheet")
    ALL_TEMP_FILES.append(str(spool))  # openpyxl's own cleanup removes it from this list
    sheet._writer = WorksheetWriter(sheet, out=str(spool))
    sheet._writer.write_top()

    def text_cells(values: Sequence[Any]) -> list[WriteOnlyCell]:
        cells = []
        for value in values:
            cell = WriteOnlyCell(
                sheet, value="" if value is None else str(value).translate(_XLSX_ILLEGAL)
            )
            cell.data_type = "s"  # always text: keeps leading zeros, and "=..." is never a formula
            cells.append(cell)
        return cells

    try:
        return _fill_xlsx(book, sheet, path, headers, rows, text_cells)
    finally:
        spool.unlink(missing_ok=True)


def _fill_xlsx(
    book: Any,
    sheet: Any,
    path: Path,
    headers: Sequence[str],
    rows: Iterator[Sequence[Any]],
    text_cells: Any,
) -> int:
    count = 0
    try:
        sheet.append(text_cells(headers))
        for row in rows:
            sheet.append(text_cells(row))
            count += 1
    except BaseException:
        with contextlib.suppress(Exception):  # finish openpyxl's temporary sheet file cleanly
            sheet.close()
        raise
    book.save(path)
    return count
