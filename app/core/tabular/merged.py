"""Merged cells of an XLSX sheet: refused where they would lose a record's value.

Excel keeps a merged range's value in its top-left cell only; the file has the other cells
empty. An office sheet with one building's address merged down its rows would read as that
address on the first row and "required" (or an optional value silently lost) on the others.
Filling the value in could give a row what was never meant for it, so the file is refused,
naming the range (``xlsxscan`` notes the ranges; openpyxl's read-only mode does not give them).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from app.core.tabular.errors import TableError
from app.core.xlsxscan import Merge

_Line = tuple[int, list[Any]]


def unmerged(
    name: str, headers: list[str], header_row: int, merges: Sequence[Merge], lines: Iterator[_Line]
) -> Iterator[_Line]:
    """The lines after the header, refused at the first merged range that holds a record's
    value. A range over the title and header lines only (a title across the table) or without
    a value (a template's unused rows) loses nothing; one reaching from the header into the
    records is refused before the first record."""
    for merge in merges:
        if merge.first_row <= header_row < merge.last_row:
            raise _refusal(name, headers, merge)
    below = sorted(
        (m for m in merges if m.first_row > header_row), key=lambda m: (m.first_row, m.first_column)
    )
    at = 0
    for number, line in lines:
        while at < len(below) and below[at].first_row <= number:
            merge = below[at]
            at += 1  # a range starting on a blank line (dropped by the reader) holds nothing
            column = merge.first_column - 1
            if merge.first_row == number and column < len(line) and _filled(line[column]):
                raise _refusal(name, headers, merge)
        yield number, line


def _filled(cell: object) -> bool:
    return cell is not None and str(cell).strip() != ""


def _refusal(name: str, headers: list[str], merge: Merge) -> TableError:
    """The refusal naming the range, its first row and its column's header (else letter)."""
    at = merge.first_column - 1
    letters = merge.ref.split(":")[0].rstrip("0123456789")
    column = headers[at] if at < len(headers) and headers[at] else letters
    return TableError("merged_cells", name, merge.ref, row=merge.first_row, column=column)
