"""One field of a form file: its keys parsed and checked on their own.

Checks that need the rest of the form (references to other fields, cycles) are in
``formcheck``; ``RawField`` keeps the YAML node so those can report the right line.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from app.core.forms import conditions
from app.core.forms.loader import FileProblems, LineDict, plain, zh_en
from app.core.forms.model import FIELD_TYPES, CodeTable, Field, Section, Text, did_you_mean

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
DERIVE_KINDS = ("birth_date", "gender", "region")  # region: the area code's (户籍地)
ID_RE = re.compile(r"[a-z][a-z0-9_]*\Z")


def check_id(f: FileProblems, node: LineDict, what_zh: str, what_en: str) -> bool:
    """A field or section id must be ``[a-z][a-z0-9_]*`` (it is used as a key everywhere);
    True when a problem was reported."""
    value = node.get("id")
    bad = "id" in node and (not isinstance(value, str) or not ID_RE.match(value))
    if bad:
        f.add(
            f.at(node, "id"),
            zh_en(
                f"{what_zh} id {value!r} 须匹配 [a-z][a-z0-9_]*",
                f"{what_en} id {value!r} must match [a-z][a-z0-9_]*",
            ),
        )
    return bad


_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
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


@dataclass
class RawField:
    """A field as parsed, with the YAML node kept for line numbers in cross-checks."""

    field: Field
    node: LineDict
    section_show_line: int = 0  # line of the section's show_when, if it has one

    def show_line(self) -> int:
        """Where a visibility problem of this field is best reported."""
        own = self.node.key_lines.get("show_when")
        return own or self.section_show_line or self.node.line


def _field_type(f: FileProblems, node: LineDict) -> str:
    ftype = node.get("type")
    if "type" not in node:
        return ""
    if ftype not in FIELD_TYPES:
        f.add(
            f.at(node, "type"),
            zh_en(f"未知字段类型 {ftype!r}", f"unknown field type {ftype!r}")
            + did_you_mean(ftype, FIELD_TYPES)
            + f" ({', '.join(FIELD_TYPES)})",
        )
    return str(ftype)


def _only_for(
    f: FileProblems, node: LineDict, ftype: str, keys: Iterable[str], types: Iterable[str]
) -> None:
    types = tuple(types)
    if ftype not in FIELD_TYPES:
        return
    for key in keys:
        if key in node and ftype not in types:
            f.add(
                f.at(node, key),
                zh_en(
                    f"{key} 只用于 {'/'.join(types)} 类型的字段",
                    f"{key} applies only to fields of type {'/'.join(types)}",
                ),
            )


def _codes_of(
    f: FileProblems, node: LineDict, ftype: str, tables: Mapping[str, CodeTable]
) -> str | None:
    codes = f.string(node, "codes", "codes")
    if ftype in ("choice", "multi_choice"):
        if "codes" not in node:
            f.add(
                f.at(node),
                zh_en(
                    f"{ftype} 字段缺少 codes（代码表）", f"{ftype} field: missing codes (table id)"
                ),
            )
        elif codes is not None and codes not in tables:
            f.add(
                f.at(node, "codes"),
                zh_en(f"未知代码表 {codes!r}", f"unknown code table {codes!r}")
                + did_you_mean(codes, tables),
            )
    return codes


def _codes_filter(
    f: FileProblems, node: LineDict, table: CodeTable | None
) -> tuple[str, ...] | None:
    codes = f.strings(node, "codes_filter", "codes_filter")
    if codes is None or table is None:
        return codes
    seq = node["codes_filter"]
    for i, code in enumerate(seq):
        if isinstance(code, str) and code not in table:
            f.add(
                f.item_line(seq, i),
                zh_en(
                    f"代码 {code!r} 不在代码表 {table.id} 中",
                    f"code {code!r} is not in table {table.id}",
                ),
            )
    return codes


def _check_number(f: FileProblems, node: LineDict, key: str, ftype: str) -> None:
    value = node[key]
    if ftype == "date":
        if not isinstance(value, str) or _parse_date(value) is None:
            f.add(
                f.at(node, key),
                zh_en(f'{key} 须是日期 "YYYY-MM-DD"', f'{key} must be a date "YYYY-MM-DD"'),
            )
    elif isinstance(value, bool) or not isinstance(value, int | float):
        f.add(f.at(node, key), zh_en(f"{key} 须是数字", f"{key} must be a number"))


def _check_count(f: FileProblems, node: LineDict, key: str) -> None:
    value = node[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        f.add(
            f.at(node, key), zh_en(f"{key} 须是非负整数", f"{key} must be a non-negative integer")
        )


def _checks(f: FileProblems, node: LineDict, ftype: str) -> Mapping[str, object]:
    checks = f.mapping(node, "checks", "checks")
    result: dict[str, object] = {}
    if checks is not None:
        allowed = _CHECKS_BY_TYPE.get(ftype, _ALL_CHECKS)
        for key in checks:
            if key not in allowed:
                hint = did_you_mean(key, _ALL_CHECKS) if key not in _ALL_CHECKS else ""
                f.add(
                    checks.key_lines[key],
                    zh_en(
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
            result[key] = plain(checks[key])
        _check_ranges(f, checks)
        if "pattern_message" in checks and "pattern" not in checks:
            f.add(
                checks.key_lines["pattern_message"],
                zh_en("有 pattern_message 却无 pattern", "pattern_message without pattern"),
            )
    if ftype == "text":
        result.setdefault("max_length", DEFAULT_TEXT_MAX_LENGTH)
    return MappingProxyType(result)


def _check_pattern(f: FileProblems, checks: LineDict) -> None:
    pattern = checks["pattern"]
    if not isinstance(pattern, str):
        f.add(checks.key_lines["pattern"], zh_en("pattern 须是字符串", "pattern must be a string"))
        return
    try:
        re.compile(pattern)
    except re.error as exc:
        f.add(
            checks.key_lines["pattern"],
            zh_en(
                f"pattern 不是有效的正则表达式：{exc}",
                f"pattern is not a valid regular expression: {exc}",
            ),
        )


def _check_ranges(f: FileProblems, checks: LineDict) -> None:
    for low, high in (("min_length", "max_length"), ("min", "max")):
        a, b = checks.get(low), checks.get(high)
        same_kind = (isinstance(a, str) and isinstance(b, str)) or (
            isinstance(a, int | float) and isinstance(b, int | float)
        )
        if same_kind and a > b:  # type: ignore[operator]
            f.add(
                checks.key_lines[high], zh_en(f"{low} 大于 {high}", f"{low} is greater than {high}")
            )


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


def _default(f: FileProblems, node: LineDict, ftype: str, table: CodeTable | None) -> object:
    if "default" not in node or ftype not in FIELD_TYPES:
        return None
    value = node["default"]
    if not _default_ok(value, ftype, table):
        f.add(
            f.at(node, "default"),
            zh_en(
                f"默认值 {value!r} 不适合 {ftype} 字段",
                f"default {value!r} does not suit a {ftype} field",
            ),
        )
    return plain(value)


def parse_condition(f: FileProblems, node: LineDict, key: str) -> dict | None:
    if key not in node:
        return None
    cond = node[key]
    problems = conditions.condition_problems(cond)
    for bad, reason in problems:
        f.add(getattr(bad, "line", f.at(node, key)), f"{key}: {reason}")
    return None if problems else plain(cond)  # type: ignore[return-value]


def _combine(section_cond: dict | None, field_cond: dict | None) -> dict | None:
    if section_cond is None:
        return field_cond
    if field_cond is None:
        return section_cond
    return {"all": [section_cond, field_cond]}


def _id_number_keys(
    f: FileProblems, node: LineDict, ftype: str
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
                    zh_en(f"derives 的未知项 {kind!r}", f"derives: unknown item {kind!r}")
                    + did_you_mean(kind, DERIVE_KINDS)
                    + f" ({', '.join(DERIVE_KINDS)})",
                )
            elif not isinstance(target, str) or not target:
                f.add(
                    raw.key_lines[kind],
                    zh_en("derives 的值须是字段 id", "derives values must be field ids"),
                )
            else:
                derives[kind] = target
    return id_type_field, gb_types, MappingProxyType(derives)


def parse_field(
    f: FileProblems,
    node: object,
    line: int,
    section: Section,
    tables: Mapping[str, CodeTable],
    form_ids: Iterable[str],
) -> RawField | None:
    if not isinstance(node, LineDict):
        f.add(line, zh_en("字段须是映射", "a field must be a mapping"))
        return None
    f.keys(node, _FIELD_KEYS, ("id", "label", "type"), "field")
    field_id = node.get("id")
    check_id(f, node, "字段", "field")
    ftype = _field_type(f, node)
    _only_for(f, node, ftype, ("codes", "codes_filter"), ("choice", "multi_choice"))
    _only_for(f, node, ftype, ("target",), ("reference",))
    codes = _codes_of(f, node, ftype, tables)
    table = tables.get(codes) if codes else None
    target = _target(f, node, ftype, form_ids)
    id_type_field, gb_types, derives = _id_number_keys(f, node, ftype)
    own_show = parse_condition(f, node, "show_when")
    required = f.boolean(node, "required")
    required_when = parse_condition(f, node, "required_when")
    if required and "required_when" in node:
        f.add(
            f.at(node, "required_when"),
            zh_en(
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
    return RawField(fld, node)


def _target(f: FileProblems, node: LineDict, ftype: str, form_ids: Iterable[str]) -> str | None:
    target = f.string(node, "target", "target")
    if ftype != "reference":
        return target
    form_ids = tuple(form_ids)
    if "target" not in node:
        f.add(
            f.at(node),
            zh_en(
                "reference 字段缺少 target（所指表单）",
                "reference field: missing target (the form it points to)",
            ),
        )
    elif target is not None and target not in form_ids:
        f.add(
            f.at(node, "target"),
            zh_en(f"target 指向未知表单 {target!r}", f"target: unknown form {target!r}")
            + did_you_mean(target, form_ids),
        )
    return target
