"""Code tables: ``forms/codes/*.yaml`` and ``*.csv`` (with a ``.meta.yaml`` sidecar), checked.

Long tables (region.csv has thousands of rows) are CSV, so the CSV path is a tight loop that
only looks closely at unusual rows.
"""

from __future__ import annotations

import csv
import operator
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

from app.core.forms.loader import FileProblems, LineDict, LineList, top_mapping, zh_en
from app.core.forms.model import Code, CodeTable, Problem, Text, did_you_mean

_TABLE_KEYS = ("table", "standard", "title", "codes")
_META_KEYS = ("table", "standard", "title")
_CODE_KEYS = ("code", "zh", "en", "parent", "historical")
_CSV_COLUMNS = ("code", "zh", "en", "parent", "historical")
_TRUE = frozenset({"1", "true", "yes", "y"})
_FALSE = frozenset({"", "0", "false", "no", "n"})


def _table_header(
    f: FileProblems, node: LineDict, stem: str, allowed: tuple[str, ...], what: str
) -> tuple[str, Text]:
    f.keys(node, allowed, ("table", "title"), what)
    table_id = node.get("table")
    if table_id is not None and table_id != stem:
        f.add(
            f.at(node, "table"),
            zh_en(
                f"table: {table_id!r} 须与文件名 {stem!r} 相同",
                f"table: {table_id!r} must equal the file name {stem!r}",
            ),
        )
    standard = node.get("standard", "")
    if not isinstance(standard, str):
        f.add(f.at(node, "standard"), zh_en("standard 须是字符串", "standard must be a string"))
        standard = str(standard)
    title = f.text(node, "title", "title") or Text("", "")
    return standard, title


def _yaml_code(f: FileProblems, codes: LineList, i: int, item: object) -> Code | None:
    if not isinstance(item, LineDict):
        f.add(
            f.item_line(codes, i),
            zh_en("每个代码须是映射 {code, zh, en}", "each code must be {code, zh, en}"),
        )
        return None
    f.keys(item, _CODE_KEYS, ("code", "zh", "en"), "code")
    code = item.get("code")
    if "code" in item and not isinstance(code, str):
        f.add(
            f.at(item, "code"),
            zh_en(
                f"代码 {code!r} 须加引号写成字符串（前导零有意义）",
                f"code {code!r} must be a quoted string (leading zeros matter)",
            ),
        )
        return None
    labels = {}
    for lang in ("zh", "en"):
        value = item.get(lang)
        if lang in item and (not isinstance(value, str) or not value.strip()):
            f.add(f.at(item, lang), zh_en(f"代码的 {lang} 标签为空", f"empty {lang} label"))
        labels[lang] = value.strip() if isinstance(value, str) else ""
    parent = item.get("parent")
    if parent is not None and not isinstance(parent, str):
        f.add(
            f.at(item, "parent"), zh_en("parent 须是带引号的代码", "parent must be a quoted code")
        )
        parent = str(parent)
    if code is None:
        return None
    return Code(code, labels["zh"], labels["en"], parent or None, f.boolean(item, "historical"))


def _check_parents(f: FileProblems, codes: dict[str, Code], lines: dict[str, int]) -> None:
    for code in codes.values():
        if code.parent is not None and code.parent not in codes:
            f.add(
                lines[code.code],
                zh_en(
                    f"代码 {code.code} 的上级 {code.parent!r} 不在表中",
                    f"code {code.code}: parent {code.parent!r} is not in the table",
                ),
            )


def _load_yaml_table(path: Path, sink: list[Problem]) -> CodeTable | None:
    f = FileProblems(path, sink)
    node = top_mapping(path, f, "code table")
    if node is None:
        return None
    standard, title = _table_header(f, node, path.stem, _TABLE_KEYS, "code table")
    codes: dict[str, Code] = {}
    lines: dict[str, int] = {}
    raw = node.get("codes")
    if "codes" in node and (not isinstance(raw, list) or not raw):
        f.add(f.at(node, "codes"), zh_en("codes 须是非空列表", "codes must be a non-empty list"))
        raw = []
    items = raw if isinstance(raw, LineList) else LineList()  # YAML sequences load as LineList
    for i, item in enumerate(items):
        code = _yaml_code(f, items, i, item)
        if code is None:
            continue
        line = f.at(item, "code")
        if code.code in codes:
            f.add(
                line,
                zh_en(
                    f"代码 {code.code!r} 重复（第 {lines[code.code]} 行已有）",
                    f"duplicate code {code.code!r} (first on line {lines[code.code]})",
                ),
            )
            continue
        codes[code.code] = code
        lines[code.code] = line
    _check_parents(f, codes, lines)
    return CodeTable(path.stem, standard, title, MappingProxyType(codes))


def _csv_flag(f: FileProblems, line: int, value: str) -> bool:
    flag = value.strip().lower()
    if flag in _TRUE:
        return True
    if flag not in _FALSE:
        f.add(line, zh_en(f"historical 列的值 {value!r} 无效", f"historical: bad value {value!r}"))
    return False


def _read_csv_codes(path: Path, f: FileProblems) -> dict[str, Code] | None:
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        f.add(1, zh_en(f"无法读取：{exc.strerror}", f"cannot read: {exc.strerror}"))
        return None
    codes: dict[str, Code] = {}
    lines: dict[str, int] = {}
    with handle:
        try:
            reader = csv.reader(handle)
            header = [h.strip() for h in next(reader, [])]
            if not {"code", "zh", "en"} <= set(header):
                f.add(
                    1,
                    zh_en(
                        "缺少表头 code,zh,en[,parent]（首行）",
                        "missing header code,zh,en[,parent] (first line)",
                    ),
                )
                return None
            for name in header:
                if name not in _CSV_COLUMNS:
                    f.add(
                        1,
                        zh_en(f"未知列 {name!r}", f"unknown column {name!r}")
                        + did_you_mean(name, _CSV_COLUMNS),
                    )
            _csv_rows(f, reader, header, codes, lines)
        except UnicodeDecodeError as exc:
            f.add(1, zh_en(f"不是 UTF-8 编码：{exc.reason}", f"not UTF-8: {exc.reason}"))
            return None
        except csv.Error as exc:
            f.add(reader.line_num, zh_en(f"CSV 格式错误：{exc}", f"CSV error: {exc}"))
            return None
    _check_parents(f, codes, lines)
    return codes


def _csv_rows(
    f: FileProblems,
    reader: Iterator[list[str]],
    header: list[str],
    codes: dict[str, Code],
    lines: dict[str, int],
) -> None:
    """Read the data rows; one tight loop because region.csv has thousands of them."""
    width = len(header)
    # Missing optional columns read from an extra empty cell at index ``width``.
    pick = operator.itemgetter(*(header.index(n) if n in header else width for n in _CSV_COLUMNS))
    pad = [""] * (width + 1)
    for row in reader:
        if not row:
            continue  # blank line
        row = row + [""] if len(row) == width else (row + pad)[: width + 1]
        code, zh, en, parent, flag = (cell.strip() for cell in pick(row))
        line = reader.line_num  # type: ignore[attr-defined]
        unusual = not code or not zh or not en or code in codes
        if unusual and not _csv_row_ok(f, line, code, zh, en, codes, lines):
            continue
        codes[code] = Code(code, zh, en, parent or None, bool(flag) and _csv_flag(f, line, flag))
        lines[code] = line


def _csv_row_ok(
    f: FileProblems,
    line: int,
    code: str,
    zh: str,
    en: str,
    codes: dict[str, Code],
    lines: dict[str, int],
) -> bool:
    """Report what is wrong with an unusual row; False when the row must be skipped."""
    if not code:
        if zh or en:
            f.add(line, zh_en("代码为空", "empty code"))
        return False
    for lang, label in (("zh", zh), ("en", en)):
        if not label:
            f.add(
                line, zh_en(f"代码 {code} 的 {lang} 标签为空", f"code {code}: empty {lang} label")
            )
    if code in codes:
        f.add(
            line,
            zh_en(
                f"代码 {code!r} 重复（第 {lines[code]} 行已有）",
                f"duplicate code {code!r} (first on line {lines[code]})",
            ),
        )
        return False
    return True


def _load_csv_table(path: Path, sink: list[Problem]) -> CodeTable | None:
    f = FileProblems(path, sink)
    meta_path = path.with_name(f"{path.stem}.meta.yaml")
    standard, title = "", Text("", "")
    if not meta_path.exists():
        f.add(
            1,
            zh_en(
                f"缺少说明文件 {meta_path.name}（table、standard、title）",
                f"missing sidecar {meta_path.name} (table, standard, title)",
            ),
        )
    else:
        mf = FileProblems(meta_path, sink)
        meta = top_mapping(meta_path, mf, "sidecar")
        if meta is not None:
            standard, title = _table_header(mf, meta, path.stem, _META_KEYS, "sidecar")
    codes = _read_csv_codes(path, f)
    if codes is None:
        return None
    if not codes:
        f.add(1, zh_en("代码表没有代码", "the code table has no codes"))
    return CodeTable(path.stem, standard, title, MappingProxyType(codes))


def load_tables(codes_dir: Path, sink: list[Problem]) -> dict[str, CodeTable]:
    tables: dict[str, CodeTable] = {}
    if not codes_dir.is_dir():
        return tables
    for path in sorted(codes_dir.iterdir()):
        name = path.name
        if name.endswith(".meta.yaml"):
            if not path.with_name(name[: -len(".meta.yaml")] + ".csv").exists():
                FileProblems(path, sink).add(
                    1, zh_en("说明文件没有对应的 CSV", "sidecar without a matching .csv file")
                )
            continue
        if path.suffix == ".yaml":
            table = _load_yaml_table(path, sink)
        elif path.suffix == ".csv":
            table = _load_csv_table(path, sink)
        else:
            continue
        if path.stem in tables:
            FileProblems(path, sink).add(
                1,
                zh_en(
                    f"代码表 {path.stem} 同时有 .yaml 和 .csv",
                    f"table {path.stem} exists as .yaml and .csv",
                ),
            )
        elif table is not None:
            tables[path.stem] = table
    return tables
