"""A streaming look at an .xlsx before openpyxl reads it: sizes, rows, columns, cell lengths.

openpyxl's read-only mode streams the sheet, but it loads the shared-string table and every
small part whole, trusts the declared ``<dimension>`` (a 5 KB file declaring A1:XFD1048576
padded a million rows to 16 384 cells) and keeps one row's cells in memory whatever their
number. This pass uses expat with constant memory and refuses, before openpyxl starts:
XML parts whose declared unzipped size is over a limit (zipfile never inflates a member past
its declared size, so a zip bomb is refused by the directory alone), a value beyond row
``max_rows`` or column ``max_columns``, a row with more cells than Excel allows, a cell or
shared string with more text than ``max_chars`` could need, and DTDs (entity expansion).
It also notes each sheet's merged ranges (``<mergeCell>``, after the cells), which openpyxl's
read-only mode does not give: the reader refuses the ones that would lose a record's value.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from xml.parsers import expat

MIB = 1024 * 1024
MAX_SHEET_BYTES = 512 * MIB  # one worksheet's XML, unzipped (streamed)
MAX_SHARED_BYTES = 100 * MIB  # the shared-string table, unzipped (openpyxl loads it whole)
MAX_PART_BYTES = 16 * MIB  # any other XML part (styles, workbook, ...), loaded whole
EXCEL_ROWS, EXCEL_COLUMNS = 1_048_576, 16_384  # what Excel itself can hold
# "_x0000_" is how XLSX escapes one control character: the most raw text a value can need.
_RAW_PER_CHAR = 7
_CHUNK = 1 << 20
MAX_MERGES = 100_000  # merged ranges noted per sheet (one per record); more: the file is refused


class SheetProblem(Exception):
    """Why the workbook is refused: ``code`` (a tabular error code), detail, row, column."""

    def __init__(self, code: str, detail: str = "", row: int | None = None, column: int = 0):
        self.code, self.detail, self.row, self.column = code, detail, row, column
        super().__init__(code, detail, row, column)


@dataclass(frozen=True, slots=True)
class Merge:
    """A merged range (``ref`` as Excel names it, "B3:B7"): only its top-left cell holds the
    value Excel shows over the whole range; the file has the others empty."""

    ref: str
    first_row: int
    first_column: int
    last_row: int


@dataclass(frozen=True)
class Limits:
    """What a sheet may hold; rows and columns count as a spreadsheet shows them (from 1)."""

    max_rows: int
    max_columns: int
    max_chars: int


def scan(path: str, limits: Limits) -> dict[str, list[Merge]]:
    """Raise ``SheetProblem`` when the workbook exceeds ``limits``; read it in constant memory
    (but for at most ``MAX_MERGES`` merged ranges a sheet). Returns each sheet's merged ranges
    by part name ("xl/worksheets/sheet1.xml"), in the file's order; sheets without any left out.
    """
    merges: dict[str, list[Merge]] = {}
    with zipfile.ZipFile(path) as book:
        infos = book.infolist()
        for info in infos:
            _check_size(info)
        for info in infos:
            kind = _kind(info.filename)
            if kind != "other":
                scanner = _Scanner(limits, cells=kind == "sheet")
                with book.open(info) as stream:
                    scanner.feed(stream)
                if scanner.merges:
                    merges[info.filename] = scanner.merges
    return merges


def _kind(name: str) -> str:
    lower = name.lower()
    if lower.startswith("xl/worksheets/") and lower.endswith(".xml"):
        return "sheet"
    if lower.endswith("sharedstrings.xml"):
        return "strings"
    return "other"


def _check_size(info: zipfile.ZipInfo) -> None:
    """Declared unzipped size within the limit of its kind (non-XML parts are never read)."""
    if not info.filename.lower().endswith((".xml", ".rels")):
        return
    limit = {"sheet": MAX_SHEET_BYTES, "strings": MAX_SHARED_BYTES}.get(
        _kind(info.filename), MAX_PART_BYTES
    )
    if info.file_size > limit:
        detail = f"{info.filename} {info.file_size // MIB} MB > {limit // MIB} MB"
        raise SheetProblem("xlsx_unzipped", detail)


def _merge(ref: str) -> Merge | None:
    """A ``<mergeCell ref>`` read; None for a single cell or a reference that is not A1:B2."""
    first, colon, last = ref.upper().partition(":")
    columns = [_column_number(cell) for cell in (first, last)]
    rows = [cell.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for cell in (first, last)]
    if not colon or first == last or not all(columns) or not all(r.isdigit() for r in rows):
        return None
    return Merge(ref.upper(), min(map(int, rows)), min(columns), max(map(int, rows)))


def _column_number(ref: str) -> int:
    """1 for "A7", 28 for "AB7"; 0 when the reference has no letters."""
    number = 0
    for char in ref:
        if not ("A" <= char <= "Z"):
            break
        number = number * 26 + ord(char) - 64
    return number


class _Scanner:
    """Counts while expat streams one part; raises ``SheetProblem`` at the first excess."""

    def __init__(self, limits: Limits, *, cells: bool) -> None:
        self.limits, self.cells = limits, cells
        self.rows = self.row = self.column = self.in_row = self.text = 0
        self.has_value = self.in_text = False
        self.merges: list[Merge] = []
        self.parser = expat.ParserCreate()
        self.parser.buffer_text = True
        self.parser.StartElementHandler = self.start
        self.parser.EndElementHandler = self.end
        self.parser.CharacterDataHandler = self.chars
        self.parser.StartDoctypeDeclHandler = self.doctype

    def feed(self, stream) -> None:  # noqa: ANN001 - a zipfile member opened for reading
        try:
            while chunk := stream.read(_CHUNK):
                self.parser.Parse(chunk, False)
            self.parser.Parse(b"", True)
        except expat.ExpatError as exc:
            raise SheetProblem("xlsx", f"XML: {expat.ErrorString(exc.code)}") from None

    def doctype(self, *_: object) -> None:
        raise SheetProblem("xlsx", "DTD")

    def start(self, name: str, attrs: dict[str, str]) -> None:
        tag = name.rpartition(":")[2]
        if tag == "row" and self.cells:
            self._start_row(attrs.get("r", ""))
        elif tag == "c" and self.cells:
            self._start_cell(attrs.get("r", ""))
        elif tag == "si" and not self.cells:
            self.text, self.in_text = 0, True
        elif tag in ("v", "is") and self.cells:
            self.has_value = True
        elif tag == "mergeCell" and self.cells:
            self._note_merge(attrs.get("ref", ""))

    def _note_merge(self, ref: str) -> None:
        merge = _merge(ref)
        if merge is None:
            return
        if len(self.merges) >= MAX_MERGES:  # more than one a record: refused, memory bounded
            raise SheetProblem("merged_cells", merge.ref, merge.first_row, merge.first_column)
        self.merges.append(merge)

    def _start_row(self, ref: str) -> None:
        self.rows += 1
        if self.rows > EXCEL_ROWS:
            raise SheetProblem("xlsx", f"more than {EXCEL_ROWS} rows")
        self.row = int(ref) if ref.isdigit() else self.row + 1
        self.column = self.in_row = 0

    def _start_cell(self, ref: str) -> None:
        self.in_row += 1
        column = _column_number(ref)
        self.column = column if column else self.column + 1
        if self.in_row > EXCEL_COLUMNS or self.column > EXCEL_COLUMNS:
            raise SheetProblem("xlsx", f"more than {EXCEL_COLUMNS} cells in a row", self.row)
        self.text, self.in_text, self.has_value = 0, True, False

    def end(self, name: str) -> None:
        tag = name.rpartition(":")[2]
        if tag == "c" and self.cells:
            self.in_text = False
            if self.has_value:
                self._check_place()
        elif tag == "si":
            self.in_text = False

    def _check_place(self) -> None:
        if self.row > self.limits.max_rows:
            raise SheetProblem("too_many_rows", "", self.row)
        if self.column > self.limits.max_columns:
            raise SheetProblem("too_many_columns", str(self.column), self.row, self.column)

    def chars(self, data: str) -> None:
        if not self.in_text:
            return
        self.text += len(data)
        if self.text > self.limits.max_chars * _RAW_PER_CHAR:
            row = self.row if self.cells else None
            raise SheetProblem("too_long", str(self.text), row, self.column if self.cells else 0)
