"""Reading and writing the spreadsheets departments and building heads send (CSV, XLSX, JSON).

CSV and JSON arrive as UTF-8 (with or without BOM), GB18030/GBK from Excel on Chinese Windows,
or UTF-16/UTF-32 with a BOM; the encoding is detected, never guessed silently. Rows are numbered
as a spreadsheet shows them (header = row 1), so a message can say "row 7, column 公民身份号码".

Every format goes through the same limits (rows, columns, file size, cell length) and the same
text checks as the server's push checks (``textcheck``): a file is refused, naming the row and
column, before anything is stored, instead of importing what the sync would refuse later.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import itertools
import json
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError
from xml.parsers.expat import ExpatError

from app.core import textcheck, xlsxscan
from app.core.messages import lang_of

SUFFIXES = (".csv", ".xlsx", ".json")
DELIMITERS = ",\t;"
# Limits of one file (README "The command line"). Records are counted by position, as the
# spreadsheet numbers rows: no value below row MAX_ROW_NUMBER (the records, the header and a
# title line above it), so the limit holds while the file streams. A column counts when any
# of its cells has a value.
MAX_RECORDS = 100_000
MAX_ROW_NUMBER = MAX_RECORDS + 2
MAX_COLUMNS = 200
MAX_CELL_CHARS = textcheck.MAX_VALUE_CHARS  # what the platform stores in one value
MAX_FILE_BYTES = 100 * 1024 * 1024
# Byte-order marks that name their encoding; Excel's "Unicode text" export is UTF-16 with a BOM.
# UTF-32's marks begin with UTF-16's, so they are tried first.
_BOMS = (
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
    (b"\x84\x31\x95\x33", "gb18030", "GB18030"),
)
_BOM_CHAR = "\ufeff"
_CHUNK = 1 << 20
# Control characters an XLSX cell cannot hold (openpyxl refuses them).
_XLSX_ILLEGAL = dict.fromkeys([*range(0, 9), 11, 12, *range(14, 32)])


class TableError(Exception):
    """The file cannot be used at all (exit 2). ``code`` selects the message; no personal data."""

    def __init__(
        self, code: str, file: str, detail: str = "", row: int | None = None, column: str = ""
    ) -> None:
        self.code, self.file, self.detail, self.row, self.column = code, file, detail, row, column
        super().__init__(self.message("en"))

    def message(self, lang: str = "zh") -> str:
        """What is wrong with the file and what to do, on one line."""
        zh, en = _TABLE_ERRORS[self.code]
        column = f" [{self.column}]" if self.column else ""
        where = f"{self.file}" + (f" 第{self.row}行" if self.row else "") + column
        where_en = f"{self.file}" + (f", row {self.row}" if self.row else "") + column
        text = (
            zh.format(detail=self.detail)
            if lang_of(lang) != "en"
            else en.format(detail=self.detail)
        )
        return f"{where}：{text}" if lang_of(lang) != "en" else f"{where_en}: {text}"


_TABLE_ERRORS = {
    "missing": ("文件不存在。请检查路径。", "file not found; check the path."),
    "unreadable": (
        "无法读取文件（{detail}）。请检查文件权限或是否被其他程序占用。",
        "cannot read the file ({detail}); check its permissions or whether another "
        "program holds it.",
    ),
    "write": (
        "无法写入文件（{detail}）。请检查目录是否存在、是否有写入权限。",
        "cannot write the file ({detail}); check that the folder exists and is writable.",
    ),
    "suffix": (
        "不支持的文件类型{detail}，请使用 .csv、.xlsx 或 .json。",
        "unsupported file type {detail}; use .csv, .xlsx or .json.",
    ),
    "encoding": (
        "无法识别文件编码（不是 UTF-8、GB18030/GBK，也不是带 BOM 的 UTF-16/UTF-32）。"
        "请在 Excel 中另存为“CSV UTF-8”。",
        "the encoding is not UTF-8, GB18030/GBK, or UTF-16/UTF-32 with a BOM; save it from "
        'Excel as "CSV UTF-8".',
    ),
    "encoding_nobom": (
        "无法可靠识别文件编码：文件含大量空字节，是不带 BOM 的 UTF-16/UTF-32，"
        "或不是文本文件（如改了扩展名的 .xls）。请在 Excel 中另存为“CSV UTF-8”。",
        "cannot tell the encoding: the file is full of NUL bytes (UTF-16/UTF-32 without a BOM, "
        "or not a text file (a "
        'renamed .xls?)); save it from Excel as "CSV UTF-8".',
    ),
    "encoding_bom": (
        "文件开头的 BOM 表明是 {detail} 编码，但内容不是有效的 {detail}（文件可能被截断或"
        "混合了编码）。请在 Excel 中另存为“CSV UTF-8”。",
        "the byte-order mark says {detail}, but the content is not valid {detail} (the file "
        'may be cut off or mix encodings); save it from Excel as "CSV UTF-8".',
    ),
    "too_big": (
        f"文件有 {{detail}}，超过上限 {MAX_FILE_BYTES // 2**20} MB。"
        f"请拆分为多个文件（每个不超过 {MAX_RECORDS} 条记录）后分别处理。",
        f"the file is {{detail}}, over the {MAX_FILE_BYTES // 2**20} MB limit; split it into "
        f"files of at most {MAX_RECORDS} records each.",
    ),
    "too_many_rows": (
        f"超过上限：最多 {MAX_RECORDS} 条记录（表格第 {MAX_ROW_NUMBER} 行以内，含表头和标题行）。"
        "请拆分为多个文件后分别处理。",
        f"over the limit of {MAX_RECORDS} records (rows up to {MAX_ROW_NUMBER}, header and "
        "title line included); split it into several files.",
    ),
    "too_many_columns": (
        f"第{{detail}}列有内容，超过上限 {MAX_COLUMNS} 列。请删除多余的列（或多余的内容）后再试。",
        f"column {{detail}} has a value, over the limit of {MAX_COLUMNS} columns; remove the "
        "extra columns (or stray values) and try again.",
    ),
    "nul_char": (
        "含有空字符（NUL，代码 0），平台不接受。常见原因是导出该文件的程序带入了控制字符。"
        "请删除该字符后重新保存文件。",
        "holds a NUL character (code 0), which the platform refuses (often left by the program "
        "that exported the file); delete it and save the file again.",
    ),
    "bad_text": (
        "含有无效的 Unicode 字符（孤立的代理项，不是有效文本）。"
        "请在原程序中重新输入该内容，或将文件另存为 UTF-8。",
        "holds an invalid Unicode character (a lone surrogate, not valid text); retype the "
        "value in the program that made the file, or save the file as UTF-8.",
    ),
    "too_long": (
        f"内容超过 {MAX_CELL_CHARS} 个字符的上限，平台不接受。请缩短该内容。",
        f"holds more than {MAX_CELL_CHARS} characters, the platform's limit; shorten the value.",
    ),
    "bad_value": (
        "数值无效（NaN 或无穷大）。请填写具体数字或留空。",
        "the number is not valid (NaN or infinity); write a real number or leave it empty.",
    ),
    "xlsx_unzipped": (
        "解压后的内容过大（{detail}），可能是损坏或恶意构造的文件。"
        "请用 Excel 打开后另存为新文件，或拆分为多个文件。",
        "the unzipped content is too large ({detail}); the file may be damaged or crafted. "
        "Open it in Excel and save it as a new file, or split it.",
    ),
    "empty": (
        "文件是空的或没有表头行。第一行应为字段名。",
        "the file is empty or has no header row; the first row must name the fields.",
    ),
    "csv": (
        "CSV 格式错误：{detail}。请检查引号和分隔符。",
        "malformed CSV: {detail}; check quotes and separators.",
    ),
    "xlsx": (
        "不是有效的 Excel (.xlsx) 文件：{detail}。请用 Excel 重新保存。",
        "not a valid Excel (.xlsx) file: {detail}; save it again from Excel.",
    ),
    "json": (
        "JSON 格式错误：{detail}。应为对象数组。",
        "malformed JSON: {detail}; expected a list of objects.",
    ),
    "unnamed_cell": (
        "第{detail}列有内容但没有表头（常见原因：地址等内容里的逗号没有加引号，使后面各列错位）。"
        "请补上表头，或修正这一行。",
        "column {detail} has a value but no header (often an unquoted comma in an address "
        "shifted the columns); add the header or fix this row.",
    ),
    "duplicate_header": (
        "表头“{detail}”出现了两次。请删除或重命名其中一列。",
        'the header "{detail}" appears twice; remove or rename one column.',
    ),
}


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


def read_table(path: str | Path) -> Table:
    """Read a CSV, XLSX or JSON file of records; raises TableError when unusable.

    Memory is bounded by the limits above whatever the file claims: the size is checked before
    reading, an XLSX is scanned in constant memory first (``xlsxscan``), rows are counted as
    they stream."""
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise TableError("missing", name)
    suffix = path.suffix.lower()
    readers = {".csv": _read_csv, ".xlsx": _read_xlsx, ".json": _read_json}
    if suffix not in readers:
        raise TableError("suffix", name, suffix or "(none)")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise TableError("too_big", name, f"{size / 2**20:.0f} MB")
        return readers[suffix](path)
    except OSError as exc:  # permissions, a file locked by Excel, a vanished network share
        raise TableError("unreadable", name, type(exc).__name__) from None


def decode(raw: bytes, name: str) -> str:
    """Text of a CSV/JSON file in memory (see ``encoding_of``); repeated BOMs are dropped."""
    encoding, skip = encoding_of(lambda: iter([raw]), name)
    return raw[skip:].decode(encoding).lstrip(_BOM_CHAR)


def encoding_of(chunks: Callable[[], Iterator[bytes]], name: str) -> tuple[str, int]:
    """(codec, BOM length) of a file given as a fresh iterator of its bytes on each call.

    A BOM decides (UTF-8, UTF-16/32 LE/BE, GB18030); else strict UTF-8, else GB18030 (a
    superset of GBK). GB18030 accepts most byte strings, so a file full of NUL bytes (UTF-16/32
    without a BOM, a renamed binary) is refused first: a wrong guess would turn every header
    into an "unknown column". A few NULs in a UTF-8 file are a value's problem, reported with
    its row and column. The file is decoded piece by piece and the text thrown away, so
    checking costs no memory."""
    head = next(chunks(), b"")
    for bom, encoding, label in _BOMS:
        if head.startswith(bom):
            if not _decodes(chunks(), encoding, len(bom)):
                raise TableError("encoding_bom", name, label)
            return encoding, len(bom)
    nuls = size = 0
    for chunk in chunks():
        nuls, size = nuls + chunk.count(b"\x00"), size + len(chunk)
    if nuls * 10 > size:
        raise TableError("encoding_nobom", name)
    for encoding in ("utf-8", "gb18030"):
        if _decodes(chunks(), encoding, 0):
            return encoding, 0
    raise TableError("encoding", name)


def _decodes(chunks: Iterator[bytes], encoding: str, skip: int) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        for i, chunk in enumerate(chunks):
            decoder.decode(chunk[skip:] if i == 0 else chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            yield chunk


def _delimiter(first: str) -> str:
    """The separator used in the header line (Excel writes ";" in some locales, tabs as .txt)."""
    counts = {d: first.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _read_csv(path: Path) -> Table:
    """Streamed: memory holds the rows kept, not the file (a 2 M-row file stops at the limit)."""
    encoding, skip = encoding_of(lambda: _file_chunks(path), path.name)
    with path.open("rb") as raw:
        raw.seek(skip)
        text = io.TextIOWrapper(raw, encoding=encoding, newline="")
        first = text.readline().lstrip(_BOM_CHAR)
        lines = itertools.chain([first], text)
        reader = csv.reader(lines, delimiter=_delimiter(first.split("\n", 1)[0]), strict=True)
        return _from_rows(path.name, _csv_lines(path.name, reader))


def _csv_lines(name: str, reader: Iterator[list[str]]) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells); a malformed record is reported where it started."""
    number = 0
    try:
        for number, line in enumerate(reader, 1):  # noqa: B007 - used after the loop
            yield number, line
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
    name: str, numbered: Iterable[tuple[int, Sequence[Any]]]
) -> list[tuple[int, list[Any]]]:
    """Non-blank lines without trailing empty cells, within the row and column limits.

    Blank lines are dropped as they stream by, so a sheet padded to a million empty rows
    costs time, not memory."""
    kept = []
    for number, line in numbered:
        cells = list(line)
        while cells and not _filled(cells[-1]):
            cells.pop()
        if not cells:
            continue
        if number > MAX_ROW_NUMBER:
            raise TableError("too_many_rows", name, row=number)
        if len(cells) > MAX_COLUMNS:
            raise TableError("too_many_columns", name, str(len(cells)), row=number)
        kept.append((number, cells))
    return kept


def _from_rows(name: str, numbered: Iterable[tuple[int, Sequence[Any]]]) -> Table:
    lines = _kept_lines(name, numbered)
    start = _header_index([line for _, line in lines])
    if start is None:
        raise TableError("empty", name)
    header_number, header_line = lines[start]
    headers = [str(h).strip() if h is not None else "" for h in header_line]
    _check_headers(name, headers, header_number)
    rows = []
    for number, line in lines[start + 1 :]:
        for i, cell in enumerate(line):
            header = headers[i] if i < len(headers) else ""
            if _filled(cell) and not header:
                raise TableError("unnamed_cell", name, str(i + 1), row=number)
            _check_value(name, number, header or _column_letter(i + 1), cell)
        values = {h: (line[i] if i < len(line) else None) for i, h in enumerate(headers) if h}
        rows.append((number, values))
    return Table(name, [h for h in headers if h], rows)


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


def _read_xlsx(path: Path) -> Table:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    broken = (
        zipfile.BadZipFile,
        InvalidFileException,
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
    limits = xlsxscan.Limits(MAX_ROW_NUMBER, MAX_COLUMNS, MAX_CELL_CHARS)
    try:
        xlsxscan.scan(str(path), limits)
        book = load_workbook(path, read_only=True, data_only=True)
    except xlsxscan.SheetProblem as exc:
        raise _sheet_error(path.name, exc) from None
    except broken as exc:
        raise TableError("xlsx", path.name, type(exc).__name__) from None
    try:  # read-only workbooks parse lazily: a damaged sheet fails here, not in load_workbook
        sheet = book.worksheets[0]
        sheet.reset_dimensions()  # the declared <dimension> pads rows; the scan checked the cells
        return _from_rows(path.name, enumerate(sheet.iter_rows(values_only=True), 1))
    except broken as exc:
        raise TableError("xlsx", path.name, type(exc).__name__) from None
    finally:
        book.close()


def _sheet_error(name: str, exc: xlsxscan.SheetProblem) -> TableError:
    column = _column_letter(exc.column) if exc.column else ""
    detail = _column_letter(exc.column) if exc.code == "too_many_columns" else exc.detail
    return TableError(exc.code, name, detail, row=exc.row, column=column)


def _read_json(path: Path) -> Table:
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
    return Table(path.name, headers, rows, header_row=0)


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
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(headers)
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])
            count += 1
    return count


def _write_xlsx(path: Path, headers: Sequence[str], rows: Iterator[Sequence[Any]]) -> int:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    sheet = book.create_sheet()

    def text_cells(values: Sequence[Any]) -> list[WriteOnlyCell]:
        cells = []
        for value in values:
            cell = WriteOnlyCell(
                sheet, value="" if value is None else str(value).translate(_XLSX_ILLEGAL)
            )
            cell.data_type = "s"  # always text: keeps leading zeros, and "=..." is never a formula
            cells.append(cell)
        return cells

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
