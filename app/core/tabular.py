"""Reading and writing the spreadsheets departments and building heads send (CSV, XLSX, JSON).

CSV arrives as UTF-8 (with or without BOM) or GBK/GB18030 from Excel on Chinese Windows; the
encoding is detected, never guessed silently. Rows are numbered as a spreadsheet shows them
(header = row 1), so a message can say "row 7, column 公民身份号码".
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import os
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError
from xml.parsers.expat import ExpatError

SUFFIXES = (".csv", ".xlsx", ".json")
DELIMITERS = ",\t;"
# Byte-order marks that name their encoding; Excel's "Unicode text" export is UTF-16 with a BOM.
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Control characters an XLSX cell cannot hold (openpyxl refuses them).
_XLSX_ILLEGAL = dict.fromkeys([*range(0, 9), 11, 12, *range(14, 32)])


class TableError(Exception):
    """The file cannot be used at all (exit 2). ``code`` selects the message; no personal data."""

    def __init__(self, code: str, file: str, detail: str = "", row: int | None = None) -> None:
        self.code, self.file, self.detail, self.row = code, file, detail, row
        super().__init__(self.message("en"))

    def message(self, lang: str = "zh") -> str:
        """What is wrong with the file and what to do."""
        zh, en = _TABLE_ERRORS[self.code]
        where = f"{self.file}" + (f" 第{self.row}行" if self.row and lang != "en" else "")
        where_en = f"{self.file}" + (f", row {self.row}" if self.row else "")
        text = zh.format(detail=self.detail) if lang != "en" else en.format(detail=self.detail)
        return f"{where}：{text}" if lang != "en" else f"{where_en}: {text}"


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
        "无法识别文件编码（不是 UTF-8、GBK 或带 BOM 的 UTF-16）。请在 Excel 中另存为“CSV UTF-8”。",
        'the encoding is not UTF-8, GBK or UTF-16 with a BOM; save it from Excel as "CSV UTF-8".',
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
    """Read a CSV, XLSX or JSON file of records; raises TableError when unusable."""
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise TableError("missing", name)
    suffix = path.suffix.lower()
    readers = {".csv": _read_csv, ".xlsx": _read_xlsx, ".json": _read_json}
    if suffix not in readers:
        raise TableError("suffix", name, suffix or "(none)")
    try:
        return readers[suffix](path)
    except OSError as exc:  # permissions, a file locked by Excel, a vanished network share
        raise TableError("unreadable", name, type(exc).__name__) from None


def decode(raw: bytes, name: str) -> str:
    """Text of a CSV/JSON file: a BOM decides; else strict UTF-8, else GB18030 (a superset of GBK).

    GB18030 accepts most byte strings, so NUL bytes (UTF-16 without a BOM, binary files) are
    refused first: a wrong guess would turn every header into an "unknown column".
    """
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError:
                raise TableError("encoding", name) from None
    if b"\x00" in raw:
        raise TableError("encoding", name)
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise TableError("encoding", name)


def _delimiter(text: str) -> str:
    """The separator used in the header line (Excel writes ";" in some locales, tabs as .txt)."""
    first = text.split("\n", 1)[0]
    counts = {d: first.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _read_csv(path: Path) -> Table:
    text = decode(path.read_bytes(), path.name)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True)
    lines: list[list[str]] = []
    try:
        for line in reader:
            lines.append(line)
    except csv.Error as exc:  # reported at the record where it started, as a spreadsheet counts
        raise TableError("csv", path.name, str(exc), row=len(lines) + 1) from None
    return _from_rows(path.name, lines, [i + 1 for i in range(len(lines))])


def _filled(cell: object) -> bool:
    return cell is not None and str(cell).strip() != ""


def _header_index(lines: Sequence[Sequence[Any]]) -> int | None:
    """Index of the header line: the first non-blank one, skipping a title line above it.

    Sheets from offices often start with a one-cell title ("XX社区实有人口登记表") over the table.
    """
    filled = [sum(map(_filled, line)) for line in lines]
    candidates = [i for i, n in enumerate(filled) if n]
    if not candidates:
        return None
    first = candidates[0]
    if filled[first] == 1 and len(candidates) > 1 and filled[candidates[1]] > 1:
        return candidates[1]
    return first


def _from_rows(name: str, lines: Sequence[Sequence[Any]], numbers: Sequence[int]) -> Table:
    start = _header_index(lines)
    if start is None:
        raise TableError("empty", name)
    headers = [str(h).strip() if h is not None else "" for h in lines[start]]
    _check_headers(name, headers)
    rows = []
    for number, line in zip(numbers[start + 1 :], lines[start + 1 :], strict=True):
        if not any(map(_filled, line)):
            continue  # blank lines are not records
        for i, cell in enumerate(line):
            if _filled(cell) and (i >= len(headers) or not headers[i]):
                raise TableError("unnamed_cell", name, str(i + 1), row=number)
        values = {h: (line[i] if i < len(line) else None) for i, h in enumerate(headers) if h}
        rows.append((number, values))
    return Table(name, [h for h in headers if h], rows)


def _check_headers(name: str, headers: list[str]) -> None:
    seen: set[str] = set()
    for header in headers:
        if header and header in seen:
            raise TableError("duplicate_header", name, header)
        seen.add(header)


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
    )
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except broken as exc:
        raise TableError("xlsx", path.name, type(exc).__name__) from None
    try:  # read-only workbooks parse lazily: a damaged sheet fails here, not in load_workbook
        sheet = book.worksheets[0]
        lines = [list(row) for row in sheet.iter_rows(values_only=True)]
    except broken as exc:
        raise TableError("xlsx", path.name, type(exc).__name__) from None
    finally:
        book.close()
    return _from_rows(path.name, lines, list(range(1, len(lines) + 1)))


def _read_json(path: Path) -> Table:
    try:
        data = json.loads(decode(path.read_bytes(), path.name))
    except json.JSONDecodeError as exc:
        raise TableError("json", path.name, f"line {exc.lineno}: {exc.msg}") from None
    except RecursionError:
        raise TableError("json", path.name, "nested too deeply") from None
    if isinstance(data, dict) and isinstance(data.get("records"), list):
        data = data["records"]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise TableError("json", path.name, "not a list of objects")
    headers = [str(h) for h in dict.fromkeys(k for r in data for k in r)]
    rows = [(i + 1, {str(k): v for k, v in r.items()}) for i, r in enumerate(data)]
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
