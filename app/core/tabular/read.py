"""Reading CSV, XLSX and JSON files of records into a ``Table`` within the limits, with the
server's text checks on every header and value (named by row and column).

``stream_table`` is the one reader: its rows come lazily (CSV and XLSX; JSON is parsed whole),
so the platform's base-data load holds a chunk, not a city; ``read_table`` keeps them all,
within the device's limits."""

from __future__ import annotations

import csv
import io
import itertools
import json
import zipfile
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError
from xml.parsers.expat import ExpatError

from app.core import textcheck, xlsxscan
from app.core.tabular.encoding import BOM_CHAR, decode, encoding_of, file_chunks
from app.core.tabular.errors import TableError
from app.core.tabular.formula import QUOTE, restore
from app.core.tabular.limits import (
    DELIMITERS,
    MAX_CELL_CHARS,
    MAX_COLUMNS,
    MAX_FILE_BYTES,
    MAX_RECORDS,
    MAX_ROW_NUMBER,
)
from app.core.tabular.merged import unmerged

_Row = tuple[int, Any]


@dataclass(frozen=True)
class Table:
    """Headers and rows as read; ``rows`` holds (spreadsheet row number, values by header).

    ``header_row`` is where a column problem is reported: 1 in a spreadsheet, 0 in JSON (which
    has no header line; its records are numbered from 1).
    """

    file: str
    headers: list[str]
    rows: list[tuple[int, dict[str, Any]]]
    header_row: int = 1


@dataclass(frozen=True)
class Limits:
    """How far a file may go (``None``: no limit). The device's ``validate``/``import`` hold
    what they read in memory (``FILE_LIMITS``); a streamed read holds one row at a time, so
    only cells and columns stay limited (``STREAMED``). JSON is parsed whole: always
    ``FILE_LIMITS``."""

    max_row_number: int | None = MAX_ROW_NUMBER
    max_file_bytes: int | None = MAX_FILE_BYTES


FILE_LIMITS = Limits()
STREAMED = Limits(None, None)
EXCEL_ROWS = 1_048_576  # the most rows a sheet can have


@dataclass(frozen=True)
class TableStream:
    """Like ``Table``, but ``rows`` come as the file is read: a problem further down raises
    ``TableError`` when the reader gets there."""

    file: str
    headers: list[str]
    rows: Iterator[tuple[int, dict[str, Any]]]
    header_row: int = 1


@dataclass(frozen=True)
class Lines:
    """Like ``Table``, but each row's cells as a list in the file's column order, no dict per
    row: what an import reads its columns from. ``positions``: where each of ``headers`` is
    in a line; a line may be shorter than the header (its trailing blank cells dropped)."""

    file: str
    headers: list[str]
    positions: dict[str, int]
    rows: list[tuple[int, list[Any]]]
    header_row: int = 1

    def columns(self, rows: Sequence[tuple[int, list[Any]]]) -> dict[str, Sequence[Any]]:
        """Header -> its cells in ``rows`` (some of ``self.rows``), None where a line ends
        before it (as ``Table`` rows have it): the lines turned into columns in one go."""
        width = max(self.positions.values(), default=-1) + 1
        lines = [line if len(line) >= width else _padded(line, width) for _, line in rows]
        if not lines:
            return {h: [] for h in self.headers}
        # a line longer than ``width`` goes on in unnamed (empty) cells: cut off
        turned = list(zip(*lines, strict=False))
        return {h: turned[at] for h, at in self.positions.items()}

    def row(self, line: list[Any]) -> dict[str, Any]:
        """A line as ``Table`` holds it: values by header (None past its end)."""
        return {h: (line[at] if at < len(line) else None) for h, at in self.positions.items()}


def _padded(line: list[Any], width: int) -> list[Any]:
    return line + [None] * (width - len(line))


@dataclass(frozen=True)
class _Opened:
    """A file opened by its reader: the header line as read (unnamed columns included), and
    its checked lines (CSV, XLSX) or its records as dicts (JSON)."""

    file: str
    header_line: list[str]
    lines: Iterator[tuple[int, list[Any]]] | None
    records: Iterator[tuple[int, dict[str, Any]]] | None = None
    header_row: int = 1

    @property
    def headers(self) -> list[str]:
        return [h for h in self.header_line if h]


def read_table(path: str | Path) -> Table:
    """Read a CSV, XLSX or JSON file of records; raises TableError when unusable.

    Memory is bounded by the limits above whatever the file claims: the size is checked before
    reading, an XLSX is scanned in constant memory first (``xlsxscan``), rows are counted as
    they stream."""
    stream = stream_table(path, FILE_LIMITS)
    return Table(stream.file, stream.headers, list(stream.rows), stream.header_row)


def read_lines(path: str | Path) -> Lines:
    """``read_table`` with each row's cells as a list (``Lines``): the same checks, limits
    and errors, without a dict per row."""
    opened = _open(path, FILE_LIMITS)
    headers = opened.headers
    if opened.records is not None:  # JSON: its records' values in the order of the headers
        records = list(_guarded(opened.file, opened.records))
        rows = [(number, [r.get(h) for h in headers]) for number, r in records]
        positions = {h: i for i, h in enumerate(headers)}
    else:
        assert opened.lines is not None
        rows = list(_guarded(opened.file, opened.lines))
        positions = {h: i for i, h in enumerate(opened.header_line) if h}
    return Lines(opened.file, headers, positions, rows, opened.header_row)


def stream_table(path: str | Path, limits: Limits = FILE_LIMITS) -> TableStream:
    """Open a CSV, XLSX or JSON file of records: headers now, rows lazily (module doc).

    The encoding, an XLSX's scan and the headers are checked before this returns; each row
    gets the same checks as ``read_table`` gives it, when it is read."""
    opened = _open(path, limits)
    rows = opened.records
    if rows is None:
        assert opened.lines is not None
        rows = _as_dicts(opened.header_line, opened.lines)
    return TableStream(opened.file, opened.headers, _guarded(opened.file, rows), opened.header_row)


def _open(path: str | Path, limits: Limits) -> _Opened:
    """The file's reader, once the name, suffix and size allow it."""
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise TableError("missing", name)
    suffix = path.suffix.lower()
    readers: dict[str, Callable[[Path, Limits], _Opened]] = {
        ".csv": _read_csv,
        ".xlsx": _read_xlsx,
        ".json": _read_json,
    }
    if suffix not in readers:
        raise TableError("suffix", name, suffix or "(none)")
    if suffix == ".json":
        limits = FILE_LIMITS
    try:
        size = path.stat().st_size
        if limits.max_file_bytes is not None and size > limits.max_file_bytes:
            raise TableError("too_big", name, f"{size / 2**20:.0f} MB")
        return readers[suffix](path, limits)
    except OSError as exc:  # permissions, a file locked by Excel, a vanished network share
        raise TableError("unreadable", name, type(exc).__name__) from None


def _guarded(name: str, rows: Iterator[_Row]) -> Iterator[_Row]:
    """A read error while the rows stream is the file's problem, as it is before."""
    try:
        yield from rows
    except OSError as exc:
        raise TableError("unreadable", name, type(exc).__name__) from None


def _delimiter(first: str) -> str:
    """The separator used in the header line (Excel writes ";" in some locales, tabs as .txt)."""
    counts = {d: first.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _read_csv(path: Path, limits: Limits) -> _Opened:
    """Streamed: memory holds the rows kept, not the file (a 2 M-row file stops at the limit)."""
    encoding, skip = encoding_of(lambda: file_chunks(path), path.name)
    return _from_rows(path.name, _csv_file_lines(path, encoding, skip), limits)


def _csv_file_lines(path: Path, encoding: str, skip: int) -> Iterator[tuple[int, list[str]]]:
    """The file's records, read as they are asked for (the file stays open until the end)."""
    with path.open("rb") as raw:
        raw.seek(skip)
        text = io.TextIOWrapper(raw, encoding=encoding, newline="")
        first = text.readline().lstrip(BOM_CHAR)
        lines = itertools.chain([first], text)
        reader = csv.reader(lines, delimiter=_delimiter(first.split("\n", 1)[0]), strict=True)
        yield from _csv_lines(path.name, reader)


def _csv_lines(name: str, reader: Iterator[list[str]]) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells); a malformed record is reported where it started."""
    number = 0
    try:
        for number, line in enumerate(reader, 1):  # noqa: B007 - used after the loop
            # cells ``write_table`` neutralised start with a quote; a line without any quote
            # (nearly every line) needs no look at each cell (20 000 x 14 calls an import)
            yield number, [restore(cell) for cell in line] if QUOTE in "".join(line) else line
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise TableError("too_long", name, row=number + 1) from None
        raise TableError("csv", name, str(exc), row=number + 1) from None


def _filled(cell: object) -> bool:
    return cell is not None and str(cell).strip() != ""


def _header_index(lines: Sequence[Sequence[Any]]) -> int | None:
    """Index of the header line among non-blank lines, skipping a title line above it.

    Sheets from offices often start with a one-cell title ("XX社区实有人口登记表") over the table.
    """
    if not lines:
        return None
    filled = [sum(map(_filled, line)) for line in lines[:2]]
    return 1 if filled[0] == 1 and len(filled) > 1 and filled[1] > 1 else 0


def _kept_lines(
    name: str, numbered: Iterable[tuple[int, Sequence[Any]]], limits: Limits
) -> Iterator[tuple[int, list[Any]]]:
    """Non-blank lines without trailing empty cells, within the row and column limits.

    Blank lines are dropped as they stream by, so a sheet padded to a million empty rows
    costs time, not memory."""
    last = limits.max_row_number
    for number, line in numbered:
        end = line[-1] if line else None
        if type(line) is list and type(end) is str and end.strip():  # a CSV line, filled to its end
            cells = line
        else:
            cells = list(line)
            while cells and not _filled(cells[-1]):
                cells.pop()
            if not cells:
                continue
        if last is not None and number > last:
            raise TableError("too_many_rows", name, row=number)
        if len(cells) > MAX_COLUMNS:
            raise TableError("too_many_columns", name, str(len(cells)), row=number)
        yield number, cells


def _from_rows(
    name: str,
    numbered: Iterable[tuple[int, Sequence[Any]]],
    limits: Limits,
    merges: Sequence[xlsxscan.Merge] = (),
) -> _Opened:
    """Headers from the first kept lines (a title line above them skipped), lines lazily;
    ``merges``: the sheet's merged ranges, refused where they would lose a record's value."""
    lines = _kept_lines(name, numbered, limits)
    head = list(itertools.islice(lines, 2))
    start = _header_index([line for _, line in head])
    if start is None:
        raise TableError("empty", name)
    header_number, header_line = head[start]
    headers = [str(h).strip() if h is not None else "" for h in header_line]
    _check_headers(name, headers, header_number)
    rest: Iterator[tuple[int, list[Any]]] = itertools.chain(head[start + 1 :], lines)
    if merges:
        rest = unmerged(name, headers, header_number, merges, rest)
    return _Opened(name, headers, _checked_lines(name, headers, rest))


_CHUNK = 256  # lines checked together: one text scan for all their cells


def _checked_lines(
    name: str, headers: list[str], lines: Iterable[tuple[int, list[Any]]]
) -> Iterator[tuple[int, list[Any]]]:
    """Each line, every cell through the text checks: ``_CHUNK`` lines at a time in one
    scan (``textcheck.cells_ok``), a line at a time where that finds a problem, so the error
    names the first bad cell of the first bad line, and a reading error (``TableError``)
    comes after the lines read before it, as line by line."""
    all_named, width = all(headers), len(headers)
    it = iter(lines)
    while True:
        chunk: list[tuple[int, list[Any]]] = []
        failure: Exception | None = None
        try:
            for item in it:
                chunk.append(item)
                if len(chunk) == _CHUNK:
                    break
        except Exception as exc:  # noqa: BLE001 - raised again after the lines before it
            failure = exc
        if chunk:
            cells = list(itertools.chain.from_iterable(line for _, line in chunk))
            if (
                all_named
                and max(len(line) for _, line in chunk) <= width
                and textcheck.cells_ok(cells)
            ):
                yield from chunk
            else:
                for number, line in chunk:
                    if not (all_named and len(line) <= width and textcheck.cells_ok(line)):
                        _check_line(name, number, headers, line)  # names the first bad cell
                    yield number, line
        if failure is not None:
            raise failure
        if len(chunk) < _CHUNK:
            return


def _as_dicts(
    headers: list[str], lines: Iterable[tuple[int, list[Any]]]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, values by header) of each checked line."""
    all_named, width = all(headers), len(headers)
    for number, line in lines:
        if all_named and len(line) == width:
            values = dict(zip(headers, line, strict=True))
        else:
            values = {h: (line[i] if i < len(line) else None) for i, h in enumerate(headers) if h}
        yield number, values


def _check_line(name: str, number: int, headers: list[str], line: list[Any]) -> None:
    """Each cell of a line: a filled cell needs a header, a value passes the text checks."""
    for i, cell in enumerate(line):
        header = headers[i] if i < len(headers) else ""
        if _filled(cell) and not header:
            raise TableError("unnamed_cell", name, str(i + 1), row=number)
        _check_value(name, number, header or _column_letter(i + 1), cell)


def _check_headers(name: str, headers: list[str], row: int) -> None:
    """No header twice; each passes the text checks. A bad header is named by its column
    letter in a sheet, by its escaped text in JSON (whose keys have no letters)."""
    seen: set[str] = set()
    for i, header in enumerate(headers):
        problem = textcheck.text_problem(header)
        if problem:
            column = _column_letter(i + 1) if row else _printable(header)
            raise TableError(problem, name, row=row, column=column)
        if header and header in seen:
            raise TableError("duplicate_header", name, header)
        seen.add(header)


def _check_value(name: str, row: int, column: str, value: object) -> None:
    """The server's push checks on one value (``textcheck``), reported with row and column."""
    problem = textcheck.plain_problem(value)
    if problem:
        raise TableError(problem, name, row=row, column=column)


def _printable(text: str, limit: int = 40) -> str:
    """A header that failed the text checks, shown escaped and short (never a value)."""
    shown = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return shown if len(shown) <= limit else shown[:limit] + "…"


def _column_letter(number: int) -> str:
    """ "A" for 1, "AB" for 28: how a spreadsheet names a column whose header is unusable."""
    letters = ""
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


_XLSX_BROKEN = (
    zipfile.BadZipFile,
    KeyError,
    IndexError,
    ValueError,
    TypeError,
    ParseError,
    ExpatError,
    EOFError,
    NotImplementedError,  # zipfile: an unsupported compression method
    RuntimeError,  # zipfile: an encrypted member
)


def _read_xlsx(path: Path, limits: Limits) -> _Opened:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    broken = (*_XLSX_BROKEN, InvalidFileException)
    rows = limits.max_row_number if limits.max_row_number is not None else EXCEL_ROWS
    try:
        merges = xlsxscan.scan(str(path), xlsxscan.Limits(rows, MAX_COLUMNS, MAX_CELL_CHARS))
        book = load_workbook(path, read_only=True, data_only=True)
    except xlsxscan.SheetProblem as exc:
        raise _sheet_error(path.name, exc) from None
    except broken as exc:
        raise TableError("xlsx", path.name, type(exc).__name__) from None
    first = merges.get(_first_sheet_part(book), []) if merges else []
    lines = _xlsx_lines(path.name, book)
    try:
        return _from_rows(path.name, lines, limits, first)
    except BaseException:
        lines.close()  # closes the book
        raise


def _first_sheet_part(book: Any) -> str:
    """The zip part of the sheet read (the first), as the scan names parts. openpyxl's
    read-only sheet keeps it in ``_worksheet_path`` (3.1); without it, Excel's usual name."""
    try:
        sheet = book.worksheets[0]
    except IndexError:
        return ""
    return str(getattr(sheet, "_worksheet_path", "xl/worksheets/sheet1.xml")).lstrip("/")


def _xlsx_lines(name: str, book: Any) -> Generator[tuple[int, Sequence[Any]], None, None]:
    """The first sheet's lines as they are parsed; the book is closed when they end."""
    from openpyxl.utils.exceptions import InvalidFileException

    try:  # read-only workbooks parse lazily: a damaged sheet fails here, not in load_workbook
        sheet = book.worksheets[0]
        sheet.reset_dimensions()  # the declared <dimension> pads rows; the scan checked the cells
        yield from enumerate(sheet.iter_rows(values_only=True), 1)
    except (*_XLSX_BROKEN, InvalidFileException) as exc:
        raise TableError("xlsx", name, type(exc).__name__) from None
    finally:
        book.close()


def _sheet_error(name: str, exc: xlsxscan.SheetProblem) -> TableError:
    column = _column_letter(exc.column) if exc.column else ""
    detail = _column_letter(exc.column) if exc.code == "too_many_columns" else exc.detail
    return TableError(exc.code, name, detail, row=exc.row, column=column)


def _read_json(path: Path, _limits: Limits) -> _Opened:
    """Parsed whole (``FILE_LIMITS`` keep that small); the values checked before it returns."""
    try:
        data = json.loads(decode(path.read_bytes(), path.name))
    except json.JSONDecodeError as exc:
        raise TableError("json", path.name, f"line {exc.lineno}: {exc.msg}") from None
    except RecursionError:
        raise TableError("json", path.name, "nested too deeply") from None
    except ValueError:  # an integer of more than 4300 digits (int_max_str_digits)
        raise TableError("json", path.name, "a number with too many digits") from None
    if isinstance(data, dict) and isinstance(data.get("records"), list):
        data = data["records"]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise TableError("json", path.name, "not a list of objects")
    if len(data) > MAX_RECORDS:
        raise TableError("too_many_rows", path.name, row=MAX_RECORDS + 1)
    headers = [str(h) for h in dict.fromkeys(k for r in data for k in r)]
    if len(headers) > MAX_COLUMNS:
        raise TableError("too_many_columns", path.name, str(len(headers)))
    _check_headers(path.name, headers, 0)
    rows = [(i + 1, {str(k): v for k, v in r.items()}) for i, r in enumerate(data)]
    for number, values in rows:
        for header, value in values.items():
            _check_value(path.name, number, header, value)
    return _Opened(path.name, headers, None, iter(rows), header_row=0)
