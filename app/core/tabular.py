"""Reading and writing the spreadsheets departments and building heads send (CSV, XLSX, JSON).

CSV arrives as UTF-8 (with or without BOM) or GBK/GB18030 from Excel on Chinese Windows; the
encoding is detected, never guessed silently. Rows are numbered as a spreadsheet shows them
(header = row 1), so a message can say "row 7, column 公民身份号码".
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUFFIXES = (".csv", ".xlsx", ".json")


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
    "suffix": ("不支持的文件类型{detail}，请使用 .csv、.xlsx 或 .json。",
               "unsupported file type {detail}; use .csv, .xlsx or .json."),
    "encoding": ("无法识别文件编码（既不是 UTF-8 也不是 GBK）。请在 Excel 中另存为“CSV UTF-8”。",
                 "the encoding is neither UTF-8 nor GBK; save it from Excel as \"CSV UTF-8\"."),
    "empty": ("文件是空的或没有表头行。第一行应为字段名。", "the file is empty or has no header row; "
              "the first row must name the fields."),
    "csv": ("CSV 格式错误：{detail}。请检查引号和分隔符。", "malformed CSV: {detail}; check quotes and "
            "separators."),
    "xlsx": ("不是有效的 Excel (.xlsx) 文件：{detail}。请用 Excel 重新保存。",
             "not a valid Excel (.xlsx) file: {detail}; save it again from Excel."),
    "json": ("JSON 格式错误：{detail}。应为对象数组。", "malformed JSON: {detail}; expected a list of objects."),
    "duplicate_header": ("表头“{detail}”出现了两次。请删除或重命名其中一列。",
                         "the header \"{detail}\" appears twice; remove or rename one column."),
}


@dataclass(frozen=True)
class Table:
    """Headers and rows as read; ``rows`` holds (spreadsheet row number, values by header)."""

    file: str
    headers: list[str]
    rows: list[tuple[int, dict[str, Any]]]


def read_table(path: str | Path) -> Table:
    """Read a CSV, XLSX or JSON file of records; raises TableError when unusable."""
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise TableError("missing", name)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix == ".xlsx":
        return _read_xlsx(path)
    if suffix == ".json":
        return _read_json(path)
    raise TableError("suffix", name, suffix or "(none)")


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise TableError("encoding", path.name)


def _read_csv(path: Path) -> Table:
    text = _decode(path)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect, strict=True)
    try:
        lines = list(reader)
    except csv.Error as exc:
        raise TableError("csv", path.name, str(exc), row=reader.line_num) from None
    return _from_rows(path.name, lines, [i + 1 for i in range(len(lines))])


def _from_rows(name: str, lines: Sequence[Sequence[Any]], numbers: Sequence[int]) -> Table:
    if not lines or not any(str(c).strip() for c in lines[0] if c is not None):
        raise TableError("empty", name)
    headers = [str(h).strip() if h is not None else "" for h in lines[0]]
    _check_headers(name, headers)
    rows = []
    for number, line in zip(numbers[1:], lines[1:], strict=True):
        if not any(c not in (None, "") and str(c).strip() for c in line):
            continue  # blank lines are not records
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

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError) as exc:
        raise TableError("xlsx", path.name, type(exc).__name__) from None
    try:
        sheet = book.worksheets[0]
        lines = [list(row) for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()
    return _from_rows(path.name, lines, list(range(1, len(lines) + 1)))


def _read_json(path: Path) -> Table:
    try:
        data = json.loads(_decode(path))
    except json.JSONDecodeError as exc:
        raise TableError("json", path.name, f"line {exc.lineno}: {exc.msg}") from None
    if isinstance(data, dict) and isinstance(data.get("records"), list):
        data = data["records"]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise TableError("json", path.name, "not a list of objects")
    headers = list(dict.fromkeys(k for r in data for k in r))
    return Table(path.name, headers, [(i + 1, dict(r)) for i, r in enumerate(data)])


def write_table(path: str | Path, headers: Sequence[str], rows: Iterator[Sequence[Any]]) -> int:
    """Write CSV (UTF-8 with BOM, so Excel opens Chinese correctly) or XLSX; returns row count."""
    path = Path(path)
    suffix = path.suffix.lower()
    count = 0
    if suffix == ".csv":
        with path.open("w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(headers)
            for row in rows:
                writer.writerow(["" if v is None else v for v in row])
                count += 1
        return count
    if suffix == ".xlsx":
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet()
        sheet.append(list(headers))
        for row in rows:
            sheet.append(["" if v is None else str(v) for v in row])  # text keeps leading zeros
            count += 1
        book.save(path)
        return count
    raise TableError("suffix", path.name, suffix or "(none)")
