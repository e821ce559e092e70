"""The form set: form files and code tables loaded from ``forms/`` and checked.

Forms are data (``forms/FORMAT.md``): code knows field *types*, never field *names*. This module
turns the YAML/CSV files into frozen objects and refuses a form set with any problem, naming the
file and line of every one, so a mistake in a form file is caught by ``gridcollect check-forms``
and by CI instead of surfacing as a confusing widget or a wrong export in the field.

Parsing uses libyaml (``yaml.CSafeLoader``) when available: the C parser still yields nodes with
marks, and the (Python) constructor below attaches the line of every mapping key and list item.
"""

from __future__ import annotations

import csv
import datetime as _dt
import difflib
import functools
import operator
import re
import string
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType

import yaml

from app.core import conditions

__all__ = [
    "Text",
    "Field",
    "Section",
    "Code",
    "CodeTable",
    "Roles",
    "Form",
    "FormSet",
    "Problem",
    "FormFileError",
    "UnknownFormError",
    "FIELD_TYPES",
    "default_forms_dir",
    "check_formset",
    "load_formset",
]

FIELD_TYPES = (
    "text",
    "integer",
    "decimal",
    "date",
    "choice",
    "multi_choice",
    "boolean",
    "phone",
    "postcode",
    "id_number",
    "credit_code",
    "coordinates",
    "reference",
    "photo",
)
_STRING_TYPES = frozenset(
    {
        "text",
        "date",
        "choice",
        "phone",
        "postcode",
        "id_number",
        "credit_code",
        "reference",
        "photo",
    }
)
_LENGTH_TYPES = frozenset({"text", "phone", "postcode", "id_number", "credit_code"})
_CHECKS_BY_TYPE: dict[str, frozenset[str]] = {
    **{t: frozenset() for t in FIELD_TYPES},
    **{
        t: frozenset({"min_length", "max_length", "pattern", "pattern_message"})
        for t in _LENGTH_TYPES
    },
    "integer": frozenset({"min", "max"}),
    "decimal": frozenset({"min", "max", "scale"}),
    "date": frozenset({"min", "max", "not_future"}),
}
_ALL_CHECKS = frozenset().union(*_CHECKS_BY_TYPE.values())
DEFAULT_TEXT_MAX_LENGTH = 200
DERIVE_KINDS = ("birth_date", "gender")
_ID_RE = re.compile(r"[a-z][a-z0-9_]*\Z")
_FORM_ID_RE = re.compile(r"[a-z_]+\Z")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")

_FORM_KEYS = ("form", "version", "title", "title_template", "natural_keys", "roles", "sections")
_FORM_REQUIRED = ("form", "version", "title", "title_template", "sections")
_SECTION_KEYS = ("id", "title", "show_when", "fields")
_FIELD_KEYS = (
    "id",
    "label",
    "type",
    "required",
    "required_when",
    "show_when",
    "sensitive",
    "help",
    "default",
    "checks",
    "codes",
    "codes_filter",
    "target",
    "id_type_field",
    "gb11643_types",
    "derives",
)
_ROLE_LISTS = ("name", "id", "phone", "address")
_ROLE_SINGLES = ("birth_date", "house", "grid")
_ROLE_TYPES: dict[str, frozenset[str]] = {
    "name": frozenset({"text"}),
    "id": frozenset({"text", "id_number", "credit_code"}),
    "phone": frozenset({"phone", "text"}),
    "address": frozenset({"text"}),
    "birth_date": frozenset({"date"}),
    "house": frozenset({"reference"}),
    "grid": frozenset({"text", "choice"}),
}
_TABLE_KEYS = ("table", "standard", "title", "codes")
_META_KEYS = ("table", "standard", "title")
_CODE_KEYS = ("code", "zh", "en", "parent", "historical")
_CSV_COLUMNS = ("code", "zh", "en", "parent", "historical")
_TRUE = frozenset({"1", "true", "yes", "y"})
_FALSE = frozenset({"", "0", "false", "no", "n"})


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Text:
    """A bilingual string; Chinese first, English always present."""

    zh: str
    en: str

    def get(self, lang: str = "zh") -> str:
        """The text in ``lang`` ("zh" or "en"; anything starting with "en" is English)."""
        return self.en if lang.lower().startswith("en") else self.zh

    def __str__(self) -> str:
        return self.zh


def _empty_mapping() -> Mapping:
    return MappingProxyType({})


@dataclass(frozen=True)
class Field:
    """One field of a form; ``show_when`` already includes its section's condition."""

    id: str
    label: Text
    type: str
    required: bool = False
    required_when: dict | None = None
    show_when: dict | None = None
    sensitive: bool = False
    help: Text | None = None
    default: object = None
    checks: Mapping[str, object] = field(default_factory=_empty_mapping)
    codes: str | None = None
    codes_filter: tuple[str, ...] | None = None
    target: str | None = None
    id_type_field: str | None = None
    gb11643_types: tuple[str, ...] = ()
    derives: Mapping[str, str] = field(default_factory=_empty_mapping)
    section: str = ""

    def __hash__(self) -> int:  # conditions are dicts, so hash what names the field
        return hash((self.section, self.id, self.type))


@dataclass(frozen=True)
class Section:
    id: str
    title: Text
    show_when: dict | None
    fields: tuple[Field, ...]

    def __hash__(self) -> int:
        return hash(self.id)


@dataclass(frozen=True)
class Code:
    code: str
    zh: str
    en: str
    parent: str | None = None
    historical: bool = False

    def label(self, lang: str = "zh") -> str:
        return self.en if lang.lower().startswith("en") else self.zh


@dataclass(frozen=True)
class CodeTable:
    """A code table; ``codes`` keeps file order."""

    id: str
    standard: str
    title: Text
    codes: Mapping[str, Code]
    _children: Mapping[str | None, tuple[Code, ...]] = field(
        init=False, repr=False, compare=False, default_factory=_empty_mapping
    )

    def __post_init__(self) -> None:
        index: dict[str | None, list[Code]] = {}
        for code in self.codes.values():
            index.setdefault(code.parent, []).append(code)
        frozen = {parent: tuple(items) for parent, items in index.items()}
        object.__setattr__(self, "_children", MappingProxyType(frozen))

    def __hash__(self) -> int:
        return hash((self.id, len(self.codes)))

    def __contains__(self, code: object) -> bool:
        return code in self.codes

    def __len__(self) -> int:
        return len(self.codes)

    def label(self, code: str, lang: str = "zh") -> str:
        """The code's label, or the code itself when the table does not know it."""
        known = self.codes.get(code)
        return known.label(lang) if known is not None else code

    def children(self, parent: str | None) -> list[Code]:
        """Codes whose parent is ``parent`` (``None``: the top level), in file order."""
        return list(self._children.get(parent, ()))


@dataclass(frozen=True)
class Roles:
    """What fields mean to the search index and the duplicate guard."""

    name: tuple[str, ...] = ()
    id: tuple[str, ...] = ()
    phone: tuple[str, ...] = ()
    address: tuple[str, ...] = ()
    birth_date: str | None = None
    house: str | None = None
    grid: str | None = None


@dataclass(frozen=True)
class Form:
    id: str
    version: int
    title: Text
    title_template: str
    natural_keys: tuple[tuple[str, ...], ...]
    roles: Roles
    sections: tuple[Section, ...]
    fields: Mapping[str, Field] = None  # type: ignore[assignment]  # filled from sections

    def __post_init__(self) -> None:
        if self.fields is None:
            ordered = {f.id: f for s in self.sections for f in s.fields}
            object.__setattr__(self, "fields", MappingProxyType(ordered))

    def __hash__(self) -> int:
        return hash((self.id, self.version))

    def field(self, field_id: str) -> Field:
        """The field with this id; ``KeyError`` if the form has none."""
        try:
            return self.fields[field_id]
        except KeyError:
            raise KeyError(
                f"表单 {self.id} 没有字段 {field_id!r} / form {self.id} has no field {field_id!r}"
            ) from None

    def title_of(self, data: Mapping[str, object]) -> str:
        """Name a record as in lists: ``title_template`` with missing values left empty."""
        parts: list[str] = []
        for literal, name, _spec, _conv in string.Formatter().parse(self.title_template):
            parts.append(literal)
            if name:
                value = data.get(name)
                parts.append("" if value is None else str(value))
        return "".join(parts).strip()


@dataclass(frozen=True)
class FormSet:
    directory: Path
    forms: Mapping[str, Form]
    tables: Mapping[str, CodeTable]

    def __hash__(self) -> int:
        return hash(self.directory)

    def form(self, form_id: str) -> Form:
        try:
            return self.forms[form_id]
        except KeyError:
            raise UnknownFormError(form_id, known=list(self.forms)) from None

    def table(self, table_id: str) -> CodeTable:
        try:
            return self.tables[table_id]
        except KeyError:
            raise KeyError(
                f"没有代码表 {table_id!r} / no code table {table_id!r}"
                + _did_you_mean(table_id, self.tables)
            ) from None


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class FormFileError(Exception):
    """The form set has problems; ``problems`` lists every one with its file and line."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        head = (
            f"表单文件有 {len(self.problems)} 处问题 / "
            f"the form files have {len(self.problems)} problem(s):"
        )
        super().__init__("\n".join([head, *(str(p) for p in self.problems)]))


class UnknownFormError(KeyError):
    """Asked for a form the set does not have; the message lists the forms that exist."""

    def __init__(self, form_id: str, known: Iterable[str] = ()) -> None:
        self.form_id = form_id
        self.known = sorted(known)
        names = ", ".join(self.known) or "-"
        self.message = (
            f"没有表单 {form_id!r}，现有表单：{names} / "
            f"unknown form {form_id!r}; the forms are: {names}"
        )
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


# --------------------------------------------------------------------------- YAML with lines


class _LineDict(dict):
    """A mapping from YAML that remembers its own line and the line of each key."""

    __slots__ = ("line", "key_lines")


class _LineList(list):
    """A sequence from YAML that remembers its own line and the line of each item."""

    __slots__ = ("line", "item_lines")


_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicate_keys: list[tuple[int, object]] = []


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> _LineDict:
    loader.flatten_mapping(node)
    result = _LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if isinstance(key, list | dict):
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            )
        if key in result:
            loader.duplicate_keys.append((line, key))
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
    return result


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> _LineList:
    result = _LineList(loader.construct_object(item, deep=True) for item in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [item.start_mark.line + 1 for item in node.value]
    return result


def _construct_plain_string(loader: _Loader, node: yaml.ScalarNode) -> str:
    # Dates stay "YYYY-MM-DD" strings, as they are stored; the checker validates them.
    return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_plain_string)


def _plain(value: object) -> object:
    """Strip line bookkeeping: what the model keeps are ordinary dicts and lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# --------------------------------------------------------------------------- problem collection


def _r(zh: str, en: str) -> str:
    return f"{zh} / {en}"


_ZH_NAMES = {
    "form": "表单",
    "section": "分节",
    "field": "字段",
    "code table": "代码表",
    "sidecar": "说明文件",
    "code": "代码",
    "label": "标签 label",
    "title": "标题 title",
    "help": "帮助 help",
}


def _zh(what: str) -> str:
    """The Chinese name of a part of a file, for the Chinese half of a message."""
    return _ZH_NAMES.get(what, what)


def _did_you_mean(word: object, choices: Iterable[object]) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"（是否想写 {close[0]!r}？/ did you mean {close[0]!r}?）" if close else ""


class _File:
    """Problems found in one file, each with the line of the offending node."""

    def __init__(self, path: Path, sink: list[Problem]) -> None:
        self.path = str(path)
        self.sink = sink

    def add(self, line: int, reason: str) -> None:
        self.sink.append(Problem(self.path, max(line, 1), reason))

    def at(self, node: object, key: object = None) -> int:
        """Line of ``node[key]`` (or of the node itself)."""
        if key is not None and isinstance(node, _LineDict):
            return node.key_lines.get(key, node.line)
        return getattr(node, "line", 1)

    def item_line(self, seq: object, index: int) -> int:
        if isinstance(seq, _LineList) and index < len(seq.item_lines):
            return seq.item_lines[index]
        return getattr(seq, "line", 1)

    def keys(
        self, node: _LineDict, allowed: Iterable[str], required: Iterable[str], what: str
    ) -> None:
        allowed = tuple(allowed)
        for key in node:
            if key not in allowed:
                self.add(
                    self.at(node, key),
                    _r(f"{_zh(what)}有未知的键 {key!r}", f"unknown key {key!r} in {what}")
                    + _did_you_mean(key, allowed),
                )
        for key in required:
            if key not in node:
                self.add(
                    self.at(node), _r(f"{_zh(what)}缺少键 {key!r}", f"{what}: missing key {key!r}")
                )

    def mapping(self, node: object, key: object, what: str) -> _LineDict | None:
        value = node.get(key) if isinstance(node, dict) else None
        if isinstance(value, _LineDict):
            return value
        if value is not None or (isinstance(node, dict) and key in node):
            self.add(self.at(node, key), _r(f"{what}须是映射", f"{what} must be a mapping"))
        return None

    def text(self, node: _LineDict, key: str, what: str) -> Text | None:
        """A ``{zh, en}`` label; both must be non-empty strings."""
        if key not in node:
            return None
        value = node[key]
        if not isinstance(value, _LineDict):
            self.add(
                self.at(node, key),
                _r(
                    f"{_zh(what)}须写成 {{zh: ..., en: ...}}",
                    f"{what} must be {{zh: ..., en: ...}}",
                ),
            )
            return Text("", "")
        self.keys(value, ("zh", "en"), (), what)
        parts = {}
        for lang, name in (("zh", "中文"), ("en", "English")):
            text = value.get(lang)
            if not isinstance(text, str) or not text.strip():
                self.add(
                    self.at(value, lang),
                    _r(f"{_zh(what)}缺少{name}（{lang}）", f"{what} is missing its {lang} text"),
                )
                text = ""
            parts[lang] = text.strip()
        return Text(parts["zh"], parts["en"])

    def boolean(self, node: _LineDict, key: str, default: bool = False) -> bool:
        value = node.get(key, default)
        if isinstance(value, bool):
            return value
        self.add(
            self.at(node, key), _r(f"{key} 须是 true 或 false", f"{key} must be true or false")
        )
        return default

    def string(self, node: _LineDict, key: str, what: str) -> str | None:
        value = node.get(key)
        if value is None and key not in node:
            return None
        if isinstance(value, str) and value:
            return value
        self.add(
            self.at(node, key), _r(f"{what}须是非空字符串", f"{what} must be a non-empty string")
        )
        return None

    def strings(self, node: _LineDict, key: str, what: str) -> tuple[str, ...] | None:
        value = node.get(key)
        if value is None and key not in node:
            return None
        if not isinstance(value, list):
            self.add(self.at(node, key), _r(f"{what}须是列表", f"{what} must be a list"))
            return None
        good = []
        for i, item in enumerate(value):
            if isinstance(item, str) and item:
                good.append(item)
            else:
                self.add(
                    self.item_line(value, i),
                    _r(
                        f'{what}的每一项须是带引号的字符串（如 "01"）',
                        f'each item of {what} must be a quoted string (e.g. "01")',
                    ),
                )
        return tuple(good)


# --------------------------------------------------------------------------- reading files


def _read_yaml(path: Path, f: _File) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        f.add(1, _r(f"不是 UTF-8 编码：{exc.reason}", f"not UTF-8: {exc.reason}"))
        return None
    except OSError as exc:
        f.add(1, _r(f"无法读取：{exc.strerror}", f"cannot read: {exc.strerror}"))
        return None
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        detail = exc.problem or exc.context or "?"
        f.add(line, _r(f"YAML 语法错误：{detail}", f"YAML syntax error: {detail}"))
        return None
    except yaml.YAMLError as exc:
        f.add(1, _r(f"YAML 错误：{exc}", f"YAML error: {exc}"))
        return None
    finally:
        loader.dispose()
    for line, key in loader.duplicate_keys:
        f.add(line, _r(f"键 {key!r} 重复", f"duplicate key {key!r}"))
    if data is None:
        f.add(1, _r("文件是空的", "the file is empty"))
    return data


def _top_mapping(path: Path, f: _File, what: str) -> _LineDict | None:
    data = _read_yaml(path, f)
    if data is None:
        return None
    if not isinstance(data, _LineDict):
        f.add(
            getattr(data, "line", 1),
            _r(f"{_zh(what)}文件的顶层须是映射", f"the top of a {what} file must be a mapping"),
        )
        return None
    return data


# --------------------------------------------------------------------------- code tables


def _table_header(
    f: _File, node: _LineDict, stem: str, allowed: tuple[str, ...], what: str
) -> tuple[str, Text]:
    f.keys(node, allowed, ("table", "title"), what)
    table_id = node.get("table")
    if table_id is not None and table_id != stem:
        f.add(
            f.at(node, "table"),
            _r(
                f"table: {table_id!r} 须与文件名 {stem!r} 相同",
                f"table: {table_id!r} must equal the file name {stem!r}",
            ),
        )
    standard = node.get("standard", "")
    if not isinstance(standard, str):
        f.add(f.at(node, "standard"), _r("standard 须是字符串", "standard must be a string"))
        standard = str(standard)
    title = f.text(node, "title", "title") or Text("", "")
    return standard, title


def _yaml_code(f: _File, codes: _LineList, i: int, item: object) -> Code | None:
    if not isinstance(item, _LineDict):
        f.add(
            f.item_line(codes, i),
            _r("每个代码须是映射 {code, zh, en}", "each code must be {code, zh, en}"),
        )
        return None
    f.keys(item, _CODE_KEYS, ("code", "zh", "en"), "code")
    code = item.get("code")
    if "code" in item and not isinstance(code, str):
        f.add(
            f.at(item, "code"),
            _r(
                f"代码 {code!r} 须加引号写成字符串（前导零有意义）",
                f"code {code!r} must be a quoted string (leading zeros matter)",
            ),
        )
        return None
    labels = {}
    for lang in ("zh", "en"):
        value = item.get(lang)
        if lang in item and (not isinstance(value, str) or not value.strip()):
            f.add(f.at(item, lang), _r(f"代码的 {lang} 标签为空", f"empty {lang} label"))
        labels[lang] = value.strip() if isinstance(value, str) else ""
    parent = item.get("parent")
    if parent is not None and not isinstance(parent, str):
        f.add(f.at(item, "parent"), _r("parent 须是带引号的代码", "parent must be a quoted code"))
        parent = str(parent)
    if code is None:
        return None
    return Code(code, labels["zh"], labels["en"], parent or None, f.boolean(item, "historical"))


def _check_parents(f: _File, codes: dict[str, Code], lines: dict[str, int]) -> None:
    for code in codes.values():
        if code.parent is not None and code.parent not in codes:
            f.add(
                lines[code.code],
                _r(
                    f"代码 {code.code} 的上级 {code.parent!r} 不在表中",
                    f"code {code.code}: parent {code.parent!r} is not in the table",
                ),
            )


def _load_yaml_table(path: Path, sink: list[Problem]) -> CodeTable | None:
    f = _File(path, sink)
    node = _top_mapping(path, f, "code table")
    if node is None:
        return None
    standard, title = _table_header(f, node, path.stem, _TABLE_KEYS, "code table")
    codes: dict[str, Code] = {}
    lines: dict[str, int] = {}
    raw = node.get("codes")
    if "codes" in node and (not isinstance(raw, list) or not raw):
        f.add(f.at(node, "codes"), _r("codes 须是非空列表", "codes must be a non-empty list"))
        raw = []
    for i, item in enumerate(raw or ()):
        code = _yaml_code(f, raw, i, item)
        if code is None:
            continue
        line = f.at(item, "code")
        if code.code in codes:
            f.add(
                line,
                _r(
                    f"代码 {code.code!r} 重复（第 {lines[code.code]} 行已有）",
                    f"duplicate code {code.code!r} (first on line {lines[code.code]})",
                ),
            )
            continue
        codes[code.code] = code
        lines[code.code] = line
    _check_parents(f, codes, lines)
    return CodeTable(path.stem, standard, title, MappingProxyType(codes))


def _csv_flag(f: _File, line: int, value: str) -> bool:
    flag = value.strip().lower()
    if flag in _TRUE:
        return True
    if flag not in _FALSE:
        f.add(line, _r(f"historical 列的值 {value!r} 无效", f"historical: bad value {value!r}"))
    return False


def _read_csv_codes(path: Path, f: _File) -> dict[str, Code] | None:
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        f.add(1, _r(f"无法读取：{exc.strerror}", f"cannot read: {exc.strerror}"))
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
                    _r(
                        "缺少表头 code,zh,en[,parent]（首行）",
                        "missing header code,zh,en[,parent] (first line)",
                    ),
                )
                return None
            for name in header:
                if name not in _CSV_COLUMNS:
                    f.add(
                        1,
                        _r(f"未知列 {name!r}", f"unknown column {name!r}")
                        + _did_you_mean(name, _CSV_COLUMNS),
                    )
            _csv_rows(f, reader, header, codes, lines)
        except UnicodeDecodeError as exc:
            f.add(1, _r(f"不是 UTF-8 编码：{exc.reason}", f"not UTF-8: {exc.reason}"))
            return None
        except csv.Error as exc:
            f.add(reader.line_num, _r(f"CSV 格式错误：{exc}", f"CSV error: {exc}"))
            return None
    _check_parents(f, codes, lines)
    return codes


def _csv_rows(
    f: _File,
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
    f: _File, line: int, code: str, zh: str, en: str, codes: dict[str, Code], lines: dict[str, int]
) -> bool:
    """Report what is wrong with an unusual row; False when the row must be skipped."""
    if not code:
        if zh or en:
            f.add(line, _r("代码为空", "empty code"))
        return False
    for lang, label in (("zh", zh), ("en", en)):
        if not label:
            f.add(line, _r(f"代码 {code} 的 {lang} 标签为空", f"code {code}: empty {lang} label"))
    if code in codes:
        f.add(
            line,
            _r(
                f"代码 {code!r} 重复（第 {lines[code]} 行已有）",
                f"duplicate code {code!r} (first on line {lines[code]})",
            ),
        )
        return False
    return True


def _load_csv_table(path: Path, sink: list[Problem]) -> CodeTable | None:
    f = _File(path, sink)
    meta_path = path.with_name(f"{path.stem}.meta.yaml")
    standard, title = "", Text("", "")
    if not meta_path.exists():
        f.add(
            1,
            _r(
                f"缺少说明文件 {meta_path.name}（table、standard、title）",
                f"missing sidecar {meta_path.name} (table, standard, title)",
            ),
        )
    else:
        mf = _File(meta_path, sink)
        meta = _top_mapping(meta_path, mf, "sidecar")
        if meta is not None:
            standard, title = _table_header(mf, meta, path.stem, _META_KEYS, "sidecar")
    codes = _read_csv_codes(path, f)
    if codes is None:
        return None
    if not codes:
        f.add(1, _r("代码表没有代码", "the code table has no codes"))
    return CodeTable(path.stem, standard, title, MappingProxyType(codes))


def _load_tables(codes_dir: Path, sink: list[Problem]) -> dict[str, CodeTable]:
    tables: dict[str, CodeTable] = {}
    if not codes_dir.is_dir():
        return tables
    for path in sorted(codes_dir.iterdir()):
        name = path.name
        if name.endswith(".meta.yaml"):
            if not path.with_name(name[: -len(".meta.yaml")] + ".csv").exists():
                _File(path, sink).add(
                    1, _r("说明文件没有对应的 CSV", "sidecar without a matching .csv file")
                )
            continue
        if path.suffix == ".yaml":
            table = _load_yaml_table(path, sink)
        elif path.suffix == ".csv":
            table = _load_csv_table(path, sink)
        else:
            continue
        if path.stem in tables:
            _File(path, sink).add(
                1,
                _r(
                    f"代码表 {path.stem} 同时有 .yaml 和 .csv",
                    f"table {path.stem} exists as .yaml and .csv",
                ),
            )
        elif table is not None:
            tables[path.stem] = table
    return tables


# --------------------------------------------------------------------------- forms: fields


@dataclass
class _RawField:
    """A field as parsed, with the YAML node kept for line numbers in cross-checks."""

    field: Field
    node: _LineDict
    section_show_line: int = 0  # line of the section's show_when, if it has one

    def show_line(self) -> int:
        """Where a visibility problem of this field is best reported."""
        own = self.node.key_lines.get("show_when")
        return own or self.section_show_line or self.node.line


def _field_type(f: _File, node: _LineDict) -> str:
    ftype = node.get("type")
    if "type" not in node:
        return ""
    if ftype not in FIELD_TYPES:
        f.add(
            f.at(node, "type"),
            _r(f"未知字段类型 {ftype!r}", f"unknown field type {ftype!r}")
            + _did_you_mean(ftype, FIELD_TYPES)
            + f" ({', '.join(FIELD_TYPES)})",
        )
    return str(ftype)


def _only_for(
    f: _File, node: _LineDict, ftype: str, keys: Iterable[str], types: Iterable[str]
) -> None:
    types = tuple(types)
    if ftype not in FIELD_TYPES:
        return
    for key in keys:
        if key in node and ftype not in types:
            f.add(
                f.at(node, key),
                _r(
                    f"{key} 只用于 {'/'.join(types)} 类型的字段",
                    f"{key} applies only to fields of type {'/'.join(types)}",
                ),
            )


def _codes_of(f: _File, node: _LineDict, ftype: str, tables: Mapping[str, CodeTable]) -> str | None:
    codes = f.string(node, "codes", "codes")
    if ftype in ("choice", "multi_choice"):
        if "codes" not in node:
            f.add(
                f.at(node),
                _r(f"{ftype} 字段缺少 codes（代码表）", f"{ftype} field: missing codes (table id)"),
            )
        elif codes is not None and codes not in tables:
            f.add(
                f.at(node, "codes"),
                _r(f"未知代码表 {codes!r}", f"unknown code table {codes!r}")
                + _did_you_mean(codes, tables),
            )
    return codes


def _codes_filter(f: _File, node: _LineDict, table: CodeTable | None) -> tuple[str, ...] | None:
    codes = f.strings(node, "codes_filter", "codes_filter")
    if codes is None or table is None:
        return codes
    seq = node["codes_filter"]
    for i, code in enumerate(seq):
        if isinstance(code, str) and code not in table:
            f.add(
                f.item_line(seq, i),
                _r(
                    f"代码 {code!r} 不在代码表 {table.id} 中",
                    f"code {code!r} is not in table {table.id}",
                ),
            )
    return codes


def _check_number(f: _File, node: _LineDict, key: str, ftype: str) -> None:
    value = node[key]
    if ftype == "date":
        if not isinstance(value, str) or _parse_date(value) is None:
            f.add(
                f.at(node, key),
                _r(f'{key} 须是日期 "YYYY-MM-DD"', f'{key} must be a date "YYYY-MM-DD"'),
            )
    elif isinstance(value, bool) or not isinstance(value, int | float):
        f.add(f.at(node, key), _r(f"{key} 须是数字", f"{key} must be a number"))


def _check_count(f: _File, node: _LineDict, key: str) -> None:
    value = node[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        f.add(f.at(node, key), _r(f"{key} 须是非负整数", f"{key} must be a non-negative integer"))


def _checks(f: _File, node: _LineDict, ftype: str) -> Mapping[str, object]:
    checks = f.mapping(node, "checks", "checks")
    result: dict[str, object] = {}
    if checks is not None:
        allowed = _CHECKS_BY_TYPE.get(ftype, _ALL_CHECKS)
        for key in checks:
            if key not in allowed:
                hint = _did_you_mean(key, _ALL_CHECKS) if key not in _ALL_CHECKS else ""
                f.add(
                    checks.key_lines[key],
                    _r(
                        f"{ftype} 字段不能用检查 {key!r}",
                        f"check {key!r} does not apply to {ftype}",
                    )
                    + hint,
                )
                continue
            if key in ("min_length", "max_length", "scale"):
                _check_count(f, checks, key)
            elif key in ("min", "max"):
                _check_number(f, checks, key, ftype)
            elif key == "pattern":
                _check_pattern(f, checks)
            elif key == "pattern_message":
                # Kept as a plain {zh, en} mapping like every other check value.
                text = f.text(checks, key, "pattern_message")
                result[key] = {"zh": text.zh, "en": text.en} if text else None
                continue
            elif key == "not_future":
                f.boolean(checks, key)
            result[key] = _plain(checks[key])
        _check_ranges(f, checks)
        if "pattern_message" in checks and "pattern" not in checks:
            f.add(
                checks.key_lines["pattern_message"],
                _r("有 pattern_message 却无 pattern", "pattern_message without pattern"),
            )
    if ftype == "text":
        result.setdefault("max_length", DEFAULT_TEXT_MAX_LENGTH)
    return MappingProxyType(result)


def _check_pattern(f: _File, checks: _LineDict) -> None:
    pattern = checks["pattern"]
    if not isinstance(pattern, str):
        f.add(checks.key_lines["pattern"], _r("pattern 须是字符串", "pattern must be a string"))
        return
    try:
        re.compile(pattern)
    except re.error as exc:
        f.add(
            checks.key_lines["pattern"],
            _r(
                f"pattern 不是有效的正则表达式：{exc}",
                f"pattern is not a valid regular expression: {exc}",
            ),
        )


def _check_ranges(f: _File, checks: _LineDict) -> None:
    for low, high in (("min_length", "max_length"), ("min", "max")):
        a, b = checks.get(low), checks.get(high)
        same_kind = (isinstance(a, str) and isinstance(b, str)) or (
            isinstance(a, int | float) and isinstance(b, int | float)
        )
        if same_kind and a > b:  # type: ignore[operator]
            f.add(checks.key_lines[high], _r(f"{low} 大于 {high}", f"{low} is greater than {high}"))


def _parse_date(value: str) -> _dt.date | None:
    if not _DATE_RE.match(value):
        return None
    try:
        return _dt.date.fromisoformat(value)
    except ValueError:
        return None


def _default_ok(value: object, ftype: str, table: CodeTable | None) -> bool:
    if ftype == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if ftype == "integer":
        return isinstance(value, int)
    if ftype == "decimal":
        return isinstance(value, int | float)
    if ftype == "date":
        return isinstance(value, str) and _parse_date(value) is not None
    if ftype == "choice":
        return isinstance(value, str) and (table is None or value in table)
    if ftype == "multi_choice":
        return isinstance(value, list) and all(
            isinstance(v, str) and (table is None or v in table) for v in value
        )
    if ftype == "coordinates":
        return isinstance(value, dict) and set(value) == {"lon", "lat"}
    return isinstance(value, str)


def _default(f: _File, node: _LineDict, ftype: str, table: CodeTable | None) -> object:
    if "default" not in node or ftype not in FIELD_TYPES:
        return None
    value = node["default"]
    if not _default_ok(value, ftype, table):
        f.add(
            f.at(node, "default"),
            _r(
                f"默认值 {value!r} 不适合 {ftype} 字段",
                f"default {value!r} does not suit a {ftype} field",
            ),
        )
    return _plain(value)


def _condition(f: _File, node: _LineDict, key: str) -> dict | None:
    if key not in node:
        return None
    cond = node[key]
    problems = conditions.condition_problems(cond)
    for bad, reason in problems:
        f.add(getattr(bad, "line", f.at(node, key)), f"{key}: {reason}")
    return None if problems else _plain(cond)  # type: ignore[return-value]


def _combine(section_cond: dict | None, field_cond: dict | None) -> dict | None:
    if section_cond is None:
        return field_cond
    if field_cond is None:
        return section_cond
    return {"all": [section_cond, field_cond]}


def _id_number_keys(
    f: _File, node: _LineDict, ftype: str
) -> tuple[str | None, tuple[str, ...], Mapping[str, str]]:
    _only_for(f, node, ftype, ("id_type_field", "gb11643_types", "derives"), ("id_number",))
    id_type_field = f.string(node, "id_type_field", "id_type_field")
    gb_types = f.strings(node, "gb11643_types", "gb11643_types") or ()
    derives: dict[str, str] = {}
    raw = f.mapping(node, "derives", "derives")
    if raw is not None:
        for kind, target in raw.items():
            if kind not in DERIVE_KINDS:
                f.add(
                    raw.key_lines[kind],
                    _r(f"derives 的未知项 {kind!r}", f"derives: unknown item {kind!r}")
                    + _did_you_mean(kind, DERIVE_KINDS)
                    + f" ({', '.join(DERIVE_KINDS)})",
                )
            elif not isinstance(target, str) or not target:
                f.add(
                    raw.key_lines[kind],
                    _r("derives 的值须是字段 id", "derives values must be field ids"),
                )
            else:
                derives[kind] = target
    return id_type_field, gb_types, MappingProxyType(derives)


def _parse_field(
    f: _File,
    node: object,
    line: int,
    section: Section,
    tables: Mapping[str, CodeTable],
    form_ids: Iterable[str],
) -> _RawField | None:
    if not isinstance(node, _LineDict):
        f.add(line, _r("字段须是映射", "a field must be a mapping"))
        return None
    f.keys(node, _FIELD_KEYS, ("id", "label", "type"), "field")
    field_id = node.get("id")
    if "id" in node and (not isinstance(field_id, str) or not _ID_RE.match(field_id)):
        f.add(
            f.at(node, "id"),
            _r(
                f"字段 id {field_id!r} 须匹配 [a-z][a-z0-9_]*",
                f"field id {field_id!r} must match [a-z][a-z0-9_]*",
            ),
        )
    ftype = _field_type(f, node)
    _only_for(f, node, ftype, ("codes", "codes_filter"), ("choice", "multi_choice"))
    _only_for(f, node, ftype, ("target",), ("reference",))
    codes = _codes_of(f, node, ftype, tables)
    table = tables.get(codes) if codes else None
    target = _target(f, node, ftype, form_ids)
    id_type_field, gb_types, derives = _id_number_keys(f, node, ftype)
    own_show = _condition(f, node, "show_when")
    required = f.boolean(node, "required")
    required_when = _condition(f, node, "required_when")
    if required and "required_when" in node:
        f.add(
            f.at(node, "required_when"),
            _r(
                "已 required: true，不需 required_when",
                "required: true makes required_when pointless",
            ),
        )
    fld = Field(
        id=str(field_id or ""),
        label=f.text(node, "label", "label") or Text("", ""),
        type=ftype,
        required=required,
        required_when=required_when,
        show_when=_combine(section.show_when, own_show),
        sensitive=f.boolean(node, "sensitive"),
        help=f.text(node, "help", "help"),
        default=_default(f, node, ftype, table),
        checks=_checks(f, node, ftype),
        codes=codes,
        codes_filter=_codes_filter(f, node, table),
        target=target,
        id_type_field=id_type_field,
        gb11643_types=gb_types,
        derives=derives,
        section=section.id,
    )
    return _RawField(fld, node)


def _target(f: _File, node: _LineDict, ftype: str, form_ids: Iterable[str]) -> str | None:
    target = f.string(node, "target", "target")
    if ftype != "reference":
        return target
    form_ids = tuple(form_ids)
    if "target" not in node:
        f.add(
            f.at(node),
            _r(
                "reference 字段缺少 target（所指表单）",
                "reference field: missing target (the form it points to)",
            ),
        )
    elif target is not None and target not in form_ids:
        f.add(
            f.at(node, "target"),
            _r(f"target 指向未知表单 {target!r}", f"target: unknown form {target!r}")
            + _did_you_mean(target, form_ids),
        )
    return target


# --------------------------------------------------------------------------- forms: cross-checks


class _FormCheck:
    """Checks that need the whole form: references between fields, keys, roles, conditions."""

    def __init__(self, f: _File, fields: dict[str, _RawField], tables: Mapping[str, CodeTable]):
        self.f = f
        self.fields = fields
        self.tables = tables

    def ref(
        self, field_id: object, line: int, what: str, types: Iterable[str] | None = None
    ) -> None:
        raw = self.fields.get(field_id) if isinstance(field_id, str) else None
        if raw is None:
            self.f.add(
                line,
                _r(
                    f"{what}引用了未知字段 {field_id!r}",
                    f"{what} refers to unknown field {field_id!r}",
                )
                + _did_you_mean(field_id, self.fields),
            )
            return
        types = tuple(types or ())
        if types and raw.field.type in FIELD_TYPES and raw.field.type not in types:
            self.f.add(
                line,
                _r(
                    f"{what}的字段 {field_id} 须是 {'/'.join(types)} 类型",
                    f"{what}: field {field_id} must be of type {'/'.join(types)}",
                ),
            )

    def condition(self, cond: object, fallback: int, what: str) -> None:
        for leaf in conditions.leaves(cond):
            line = getattr(leaf, "line", fallback)
            name = leaf.get("field")
            if not isinstance(name, str):
                continue
            if name not in self.fields:
                self.ref(name, line, what)
                continue
            self._condition_values(leaf, self.fields[name].field, line, what)

    def _condition_values(self, leaf: Mapping, target: Field, line: int, what: str) -> None:
        """A value compared with a choice field must be one of its codes (catches "02" vs "2")."""
        values = [leaf["equals"]] if "equals" in leaf else list(leaf.get("in") or [])
        table = self.tables.get(target.codes) if target.codes else None
        for value in values:
            if not isinstance(value, str | int | float | bool):
                continue  # a structural problem, reported by the condition check
            if target.type == "boolean" and not isinstance(value, bool):
                bad = True
            elif table is not None and target.type in ("choice", "multi_choice"):
                bad = value not in table
            else:
                bad = False
            if bad:
                self.f.add(
                    line,
                    _r(
                        f"{what}：{value!r} 不是字段 {target.id} 可取的值",
                        f"{what}: {value!r} is not a value field {target.id} can hold",
                    ),
                )

    def field_refs(self, raw: _RawField) -> None:
        fld, node = raw.field, raw.node
        if fld.id_type_field is not None:
            self.ref(
                fld.id_type_field, node.key_lines["id_type_field"], "id_type_field", ("choice",)
            )
            self._gb_types(raw)
        for kind, target in fld.derives.items():
            self.ref(target, node["derives"].key_lines[kind], "derives", (_kind_type(kind),))
        for key in ("show_when", "required_when"):
            if key in node:
                self.condition(node[key], node.key_lines[key], key)

    def _gb_types(self, raw: _RawField) -> None:
        id_type = self.fields.get(raw.field.id_type_field or "")
        table = self.tables.get(id_type.field.codes or "") if id_type else None
        seq = raw.node.get("gb11643_types")
        if table is None or not isinstance(seq, list):
            return
        for i, code in enumerate(seq):
            if isinstance(code, str) and code not in table:
                self.f.add(
                    self.f.item_line(seq, i),
                    _r(
                        f"证件类型 {code!r} 不在代码表 {table.id} 中",
                        f"id type {code!r} is not in table {table.id}",
                    ),
                )

    def show_cycles(self) -> None:
        """A field shown only when itself (or a field that depends on it) is filled never shows."""
        graph = {fid: conditions.fields_of(raw.field.show_when) for fid, raw in self.fields.items()}
        state: dict[str, int] = {}  # 1 visiting, 2 done
        reported: set[str] = set()

        def visit(fid: str, path: list[str]) -> None:
            state[fid] = 1
            for dep in sorted(graph.get(fid, ())):
                if dep not in graph:
                    continue
                if state.get(dep) == 1:
                    cycle = path[path.index(dep) :] + [dep] if dep in path else [fid, dep]
                    if dep not in reported:
                        reported.add(dep)
                        raw = self.fields[dep]
                        chain = " → ".join(cycle)
                        self.f.add(
                            raw.show_line(),
                            _r(
                                f"show_when 循环依赖：{chain}",
                                f"show_when depends on itself: {chain}",
                            ),
                        )
                elif dep not in state:
                    visit(dep, [*path, dep])
            state[fid] = 2

        for fid in graph:
            if fid not in state:
                visit(fid, [fid])


def _kind_type(kind: str) -> str:
    """The field type a ``derives`` item fills: a birth date or a gender code."""
    return "date" if kind == "birth_date" else "choice"


def _natural_keys(f: _File, node: _LineDict, check: _FormCheck) -> tuple[tuple[str, ...], ...]:
    raw = node.get("natural_keys")
    if raw is None:
        if "natural_keys" in node:
            f.add(
                f.at(node, "natural_keys"),
                _r("natural_keys 须是列表", "natural_keys must be a list"),
            )
        return ()
    if not isinstance(raw, list):
        f.add(
            f.at(node, "natural_keys"),
            _r("natural_keys 须是字段列表的列表", "natural_keys must be a list of field lists"),
        )
        return ()
    keys: list[tuple[str, ...]] = []
    for i, entry in enumerate(raw):
        line = f.item_line(raw, i)
        if not isinstance(entry, list) or not entry:
            f.add(
                line,
                _r(
                    "每个 natural_keys 项须是字段 id 列表，如 [id_type, id_number]",
                    "each natural key is a list of field ids, e.g. [id_type, id_number]",
                ),
            )
            continue
        for j, fid in enumerate(entry):
            check.ref(fid, f.item_line(entry, j), "natural_keys")
        keys.append(tuple(str(x) for x in entry))
    return tuple(keys)


def _roles(f: _File, node: _LineDict, check: _FormCheck) -> Roles:
    raw = f.mapping(node, "roles", "roles")
    if raw is None:
        return Roles()
    f.keys(raw, _ROLE_LISTS + _ROLE_SINGLES, (), "roles")
    values: dict[str, object] = {}
    for role in _ROLE_LISTS:
        ids = f.strings(raw, role, f"roles.{role}")
        if ids is None:
            continue
        for j, fid in enumerate(ids):
            check.ref(fid, f.item_line(raw[role], j), f"roles.{role}", _ROLE_TYPES[role])
        values[role] = ids
    for role in _ROLE_SINGLES:
        fid = f.string(raw, role, f"roles.{role}")
        if fid is not None:
            check.ref(fid, raw.key_lines[role], f"roles.{role}", _ROLE_TYPES[role])
            values[role] = fid
    return Roles(**values)  # type: ignore[arg-type]


def _title_template(f: _File, node: _LineDict, check: _FormCheck) -> str:
    template = node.get("title_template")
    if template is None:
        return ""
    line = f.at(node, "title_template")
    if not isinstance(template, str):
        f.add(line, _r("title_template 须是字符串", "title_template must be a string"))
        return ""
    try:
        names = [name for _lit, name, _spec, _conv in string.Formatter().parse(template) if name]
    except ValueError as exc:
        f.add(line, _r(f"title_template 格式错误：{exc}", f"title_template is malformed: {exc}"))
        return ""
    for name in names:
        check.ref(name, line, "title_template")
    return template


def _version(f: _File, node: _LineDict) -> int:
    version = node.get("version")
    if "version" in node and (
        isinstance(version, bool) or not isinstance(version, int) or version < 1
    ):
        f.add(
            f.at(node, "version"),
            _r(
                f"version 须是正整数（现为 {version!r}）",
                f"version must be a positive integer, got {version!r}",
            ),
        )
        return 0
    return version or 0


def _form_id(f: _File, node: _LineDict, stem: str) -> str:
    form_id = node.get("form")
    if "form" in node and form_id != stem:
        f.add(
            f.at(node, "form"),
            _r(
                f"form: {form_id!r} 须与文件名 {stem!r} 相同",
                f"form: {form_id!r} must equal the file name {stem!r}",
            ),
        )
    if not _FORM_ID_RE.match(stem):
        f.add(1, _r(f"表单 id {stem!r} 须匹配 [a-z_]+", f"form id {stem!r} must match [a-z_]+"))
    return stem


def _sections(
    f: _File, node: _LineDict, tables: Mapping[str, CodeTable], form_ids: tuple[str, ...]
) -> tuple[list[Section], dict[str, _RawField]]:
    raw = node.get("sections")
    sections: list[Section] = []
    fields: dict[str, _RawField] = {}
    if "sections" in node and (not isinstance(raw, list) or not raw):
        f.add(
            f.at(node, "sections"), _r("sections 须是非空列表", "sections must be a non-empty list")
        )
        return sections, fields
    seen_sections: dict[str, int] = {}
    for i, snode in enumerate(raw or ()):
        if not isinstance(snode, _LineDict):
            f.add(f.item_line(raw, i), _r("分节须是映射", "a section must be a mapping"))
            continue
        f.keys(snode, _SECTION_KEYS, ("id", "title", "fields"), "section")
        sid = snode.get("id")
        if "id" in snode and (not isinstance(sid, str) or not _ID_RE.match(sid)):
            f.add(
                f.at(snode, "id"),
                _r(
                    f"分节 id {sid!r} 须匹配 [a-z][a-z0-9_]*",
                    f"section id {sid!r} must match [a-z][a-z0-9_]*",
                ),
            )
        elif isinstance(sid, str) and sid in seen_sections:
            f.add(
                f.at(snode, "id"),
                _r(
                    f"分节 id {sid!r} 重复（第 {seen_sections[sid]} 行）",
                    f"duplicate section id {sid!r} (line {seen_sections[sid]})",
                ),
            )
        elif isinstance(sid, str):
            seen_sections[sid] = f.at(snode, "id")
        shell = Section(
            str(sid or ""),
            f.text(snode, "title", "title") or Text("", ""),
            _condition(f, snode, "show_when"),
            (),
        )
        section_fields = _section_fields(f, snode, shell, tables, form_ids, fields)
        sections.append(Section(shell.id, shell.title, shell.show_when, tuple(section_fields)))
    return sections, fields


def _section_fields(
    f: _File,
    snode: _LineDict,
    shell: Section,
    tables: Mapping[str, CodeTable],
    form_ids: tuple[str, ...],
    fields: dict[str, _RawField],
) -> list[Field]:
    raw = snode.get("fields")
    if "fields" in snode and (not isinstance(raw, list) or not raw):
        f.add(f.at(snode, "fields"), _r("fields 须是非空列表", "fields must be a non-empty list"))
        return []
    result: list[Field] = []
    for j, fnode in enumerate(raw or ()):
        parsed = _parse_field(f, fnode, f.item_line(raw, j), shell, tables, form_ids)
        if parsed is None:
            continue
        parsed.section_show_line = snode.key_lines.get("show_when", 0)
        fid = parsed.field.id
        if fid in fields:
            first = fields[fid].node.key_lines.get("id", fields[fid].node.line)
            f.add(
                f.at(fnode, "id"),
                _r(
                    f"字段 id {fid!r} 重复（第 {first} 行已有）",
                    f"duplicate field id {fid!r} (first on line {first})",
                ),
            )
            continue
        if fid:
            fields[fid] = parsed
        result.append(parsed.field)
    return result


def _parse_form(
    path: Path,
    node: _LineDict,
    tables: Mapping[str, CodeTable],
    form_ids: tuple[str, ...],
    sink: list[Problem],
) -> Form:
    f = _File(path, sink)
    f.keys(node, _FORM_KEYS, _FORM_REQUIRED, "form")
    form_id = _form_id(f, node, path.stem)
    sections, fields = _sections(f, node, tables, form_ids)
    check = _FormCheck(f, fields, tables)
    for raw in fields.values():
        check.field_refs(raw)
    for snode in node.get("sections") or ():
        if isinstance(snode, _LineDict) and "show_when" in snode:
            check.condition(snode["show_when"], snode.key_lines["show_when"], "show_when")
    check.show_cycles()
    return Form(
        id=form_id,
        version=_version(f, node),
        title=f.text(node, "title", "title") or Text("", ""),
        title_template=_title_template(f, node, check),
        natural_keys=_natural_keys(f, node, check),
        roles=_roles(f, node, check),
        sections=tuple(sections),
    )


# --------------------------------------------------------------------------- entry points


def default_forms_dir() -> Path:
    """The packaged ``forms/`` directory (works from a checkout and from an installed wheel)."""
    root = resources.files("forms")
    if isinstance(root, Path):
        return root
    return Path(str(root))  # a namespace package's MultiplexedPath; zip installs are unsupported


def _build(directory: Path) -> tuple[FormSet, list[Problem]]:
    problems: list[Problem] = []
    directory = Path(directory)
    if not directory.is_dir():
        problems.append(Problem(str(directory), 1, _r("找不到表单目录", "no such form directory")))
        return FormSet(directory, MappingProxyType({}), MappingProxyType({})), problems
    tables = _load_tables(directory / "codes", problems)
    paths = sorted(directory.glob("*.yaml"))
    if not paths:
        problems.append(
            Problem(
                str(directory),
                1,
                _r("目录中没有表单文件（*.yaml）", "no form files (*.yaml) in the directory"),
            )
        )
    form_ids = tuple(p.stem for p in paths)
    forms: dict[str, Form] = {}
    for path in paths:
        node = _top_mapping(path, _File(path, problems), "form")
        if node is not None:
            forms[path.stem] = _parse_form(path, node, tables, form_ids, problems)
    problems.sort(key=lambda p: (p.file, p.line))
    return FormSet(directory, MappingProxyType(forms), MappingProxyType(tables)), problems


def check_formset(directory: Path | None = None) -> list[Problem]:
    """Every problem in a form set (empty: the set loads). Never raises for bad files."""
    return _build(directory if directory is not None else default_forms_dir())[1]


@functools.lru_cache(maxsize=1)
def _load_default() -> FormSet:
    return _load(default_forms_dir())


def _load(directory: Path) -> FormSet:
    formset, problems = _build(directory)
    if problems:
        raise FormFileError(problems)
    return formset


def load_formset(directory: Path | None = None) -> FormSet:
    """Load and check a form set; raises ``FormFileError`` listing every problem.

    The packaged set (``directory=None``) is loaded once per process and cached.
    """
    if directory is None:
        return _load_default()
    return _load(Path(directory))
