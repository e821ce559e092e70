"""A whole form file: sections, cross-field checks, keys and roles, assembled into a ``Form``."""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from pathlib import Path

from app.core.forms import conditions
from app.core.forms.field import RawField, check_id, parse_condition, parse_field
from app.core.forms.loader import FileProblems, LineDict, zh_en
from app.core.forms.model import (
    FIELD_TYPES,
    CodeTable,
    Field,
    Form,
    Problem,
    Roles,
    Section,
    Text,
    did_you_mean,
)

_FORM_ID_RE = re.compile(r"[a-z_]+\Z")
_FORM_KEYS = ("form", "version", "title", "title_template", "natural_keys", "roles", "sections")
_FORM_REQUIRED = ("form", "version", "title", "title_template", "sections")
_SECTION_KEYS = ("id", "title", "show_when", "fields")
_ROLE_LISTS = ("name", "id", "phone", "address", "household")
_ROLE_SINGLES = (
    "birth_date",
    "house",
    "grid",
    "building",
    "moved_out",
    "moved_out_reason",
    "moved_out_to",
    "region",
    "household_number",
    "head_id",
    "head_name",
    "head_phone",
    "gender",
)
_ROLE_TYPES: dict[str, frozenset[str]] = {
    "name": frozenset({"text"}),
    "id": frozenset({"text", "id_number", "credit_code"}),
    "phone": frozenset({"phone", "text"}),
    "address": frozenset({"text"}),
    "household": frozenset({"text", "choice"}),
    "birth_date": frozenset({"date"}),
    "house": frozenset({"reference"}),
    "grid": frozenset({"text", "choice"}),
    "building": frozenset({"text"}),
    "moved_out": frozenset({"date"}),
    "moved_out_reason": frozenset({"choice", "text"}),
    "moved_out_to": frozenset({"text"}),
    "region": frozenset({"choice"}),
    "household_number": frozenset({"text"}),
    "head_id": frozenset({"id_number", "text"}),
    "head_name": frozenset({"text"}),
    "head_phone": frozenset({"phone", "text"}),
    "gender": frozenset({"choice"}),
}

# --------------------------------------------------------------------------- cross-field checks


class _FormCheck:
    """Checks that need the whole form: references between fields, keys, roles, conditions."""

    def __init__(
        self, f: FileProblems, fields: dict[str, RawField], tables: Mapping[str, CodeTable]
    ):
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
                zh_en(
                    f"{what}引用了未知字段 {field_id!r}",
                    f"{what} refers to unknown field {field_id!r}",
                )
                + did_you_mean(field_id, self.fields),
            )
            return
        types = tuple(types or ())
        if types and raw.field.type in FIELD_TYPES and raw.field.type not in types:
            self.f.add(
                line,
                zh_en(
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
                    zh_en(
                        f"{what}：{value!r} 不是字段 {target.id} 可取的值",
                        f"{what}: {value!r} is not a value field {target.id} can hold",
                    ),
                )

    def field_refs(self, raw: RawField) -> None:
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

    def _gb_types(self, raw: RawField) -> None:
        id_type = self.fields.get(raw.field.id_type_field or "")
        table = self.tables.get(id_type.field.codes or "") if id_type else None
        seq = raw.node.get("gb11643_types")
        if table is None or not isinstance(seq, list):
            return
        for i, code in enumerate(seq):
            if isinstance(code, str) and code not in table:
                self.f.add(
                    self.f.item_line(seq, i),
                    zh_en(
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
                            zh_en(
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


# --------------------------------------------------------------------------- the form


def _natural_keys(
    f: FileProblems, node: LineDict, check: _FormCheck
) -> tuple[tuple[str, ...], ...]:
    raw = node.get("natural_keys")
    if raw is None:
        if "natural_keys" in node:
            f.add(
                f.at(node, "natural_keys"),
                zh_en("natural_keys 须是列表", "natural_keys must be a list"),
            )
        return ()
    if not isinstance(raw, list):
        f.add(
            f.at(node, "natural_keys"),
            zh_en("natural_keys 须是字段列表的列表", "natural_keys must be a list of field lists"),
        )
        return ()
    keys: list[tuple[str, ...]] = []
    for i, entry in enumerate(raw):
        line = f.item_line(raw, i)
        if not isinstance(entry, list) or not entry:
            f.add(
                line,
                zh_en(
                    "每个 natural_keys 项须是字段 id 列表，如 [id_type, id_number]",
                    "each natural key is a list of field ids, e.g. [id_type, id_number]",
                ),
            )
            continue
        for j, fid in enumerate(entry):
            check.ref(fid, f.item_line(entry, j), "natural_keys")
        keys.append(tuple(str(x) for x in entry))
    return tuple(keys)


def _roles(f: FileProblems, node: LineDict, check: _FormCheck) -> Roles:
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
        single = f.string(raw, role, f"roles.{role}")
        if single is not None:
            check.ref(single, raw.key_lines[role], f"roles.{role}", _ROLE_TYPES[role])
            values[role] = single
    return Roles(**values)  # type: ignore[arg-type]


def _title_template(f: FileProblems, node: LineDict, check: _FormCheck) -> str:
    template = node.get("title_template")
    if template is None:
        return ""
    line = f.at(node, "title_template")
    if not isinstance(template, str):
        f.add(line, zh_en("title_template 须是字符串", "title_template must be a string"))
        return ""
    try:
        names = [name for _lit, name, _spec, _conv in string.Formatter().parse(template) if name]
    except ValueError as exc:
        f.add(line, zh_en(f"title_template 格式错误：{exc}", f"title_template is malformed: {exc}"))
        return ""
    for name in names:
        check.ref(name, line, "title_template")
    return template


def _version(f: FileProblems, node: LineDict) -> int:
    version = node.get("version")
    if "version" in node and (
        isinstance(version, bool) or not isinstance(version, int) or version < 1
    ):
        f.add(
            f.at(node, "version"),
            zh_en(
                f"version 须是正整数（现为 {version!r}）",
                f"version must be a positive integer, got {version!r}",
            ),
        )
        return 0
    return version or 0


def _form_id(f: FileProblems, node: LineDict, stem: str) -> str:
    form_id = node.get("form")
    if "form" in node and form_id != stem:
        f.add(
            f.at(node, "form"),
            zh_en(
                f"form: {form_id!r} 须与文件名 {stem!r} 相同",
                f"form: {form_id!r} must equal the file name {stem!r}",
            ),
        )
    if not _FORM_ID_RE.match(stem):
        f.add(1, zh_en(f"表单 id {stem!r} 须匹配 [a-z_]+", f"form id {stem!r} must match [a-z_]+"))
    return stem


def _sections(
    f: FileProblems, node: LineDict, tables: Mapping[str, CodeTable], form_ids: tuple[str, ...]
) -> tuple[list[Section], dict[str, RawField]]:
    raw = node.get("sections")
    sections: list[Section] = []
    fields: dict[str, RawField] = {}
    if "sections" in node and (not isinstance(raw, list) or not raw):
        f.add(
            f.at(node, "sections"),
            zh_en("sections 须是非空列表", "sections must be a non-empty list"),
        )
        return sections, fields
    seen_sections: dict[str, int] = {}
    for i, snode in enumerate(raw or ()):
        if not isinstance(snode, LineDict):
            f.add(f.item_line(raw, i), zh_en("分节须是映射", "a section must be a mapping"))
            continue
        f.keys(snode, _SECTION_KEYS, ("id", "title", "fields"), "section")
        sid = snode.get("id")
        if check_id(f, snode, "分节", "section"):
            pass  # reported; a malformed id takes no part in the duplicate check
        elif isinstance(sid, str) and sid in seen_sections:
            f.add(
                f.at(snode, "id"),
                zh_en(
                    f"分节 id {sid!r} 重复（第 {seen_sections[sid]} 行）",
                    f"duplicate section id {sid!r} (line {seen_sections[sid]})",
                ),
            )
        elif isinstance(sid, str):
            seen_sections[sid] = f.at(snode, "id")
        shell = Section(
            str(sid or ""),
            f.text(snode, "title", "title") or Text("", ""),
            parse_condition(f, snode, "show_when"),
            (),
        )
        section_fields = _section_fields(f, snode, shell, tables, form_ids, fields)
        sections.append(Section(shell.id, shell.title, shell.show_when, tuple(section_fields)))
    return sections, fields


def _section_fields(
    f: FileProblems,
    snode: LineDict,
    shell: Section,
    tables: Mapping[str, CodeTable],
    form_ids: tuple[str, ...],
    fields: dict[str, RawField],
) -> list[Field]:
    raw = snode.get("fields")
    if "fields" in snode and (not isinstance(raw, list) or not raw):
        f.add(
            f.at(snode, "fields"), zh_en("fields 须是非空列表", "fields must be a non-empty list")
        )
        return []
    result: list[Field] = []
    for j, fnode in enumerate(raw or ()):
        parsed = parse_field(f, fnode, f.item_line(raw, j), shell, tables, form_ids)
        if parsed is None:
            continue
        parsed.section_show_line = snode.key_lines.get("show_when", 0)
        fid = parsed.field.id
        if fid in fields:
            first = fields[fid].node.key_lines.get("id", fields[fid].node.line)
            f.add(
                f.at(fnode, "id"),
                zh_en(
                    f"字段 id {fid!r} 重复（第 {first} 行已有）",
                    f"duplicate field id {fid!r} (first on line {first})",
                ),
            )
            continue
        if fid:
            fields[fid] = parsed
        result.append(parsed.field)
    return result


def parse_form(
    path: Path,
    node: LineDict,
    tables: Mapping[str, CodeTable],
    form_ids: tuple[str, ...],
    sink: list[Problem],
) -> Form:
    f = FileProblems(path, sink)
    f.keys(node, _FORM_KEYS, _FORM_REQUIRED, "form")
    form_id = _form_id(f, node, path.stem)
    sections, fields = _sections(f, node, tables, form_ids)
    check = _FormCheck(f, fields, tables)
    for raw in fields.values():
        check.field_refs(raw)
    for snode in node.get("sections") or ():
        if isinstance(snode, LineDict) and "show_when" in snode:
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
