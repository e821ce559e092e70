"""The form-set data model: the frozen objects a form set is made of.

Kept apart from ``formset`` (which re-exports every name here) so the loader modules can build
these objects without importing the entry points that call them. Import from ``app.core.forms.formset``.
"""

from __future__ import annotations

import difflib
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from app.core.messages import lang_of

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

# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Text:
    """A bilingual string; Chinese first, English always present."""

    zh: str
    en: str

    def get(self, lang: str = "zh") -> str:
        """The text in ``lang`` ("zh" or "en"; anything starting with "en" is English)."""
        return self.en if lang_of(lang) == "en" else self.zh

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
        return self.en if lang_of(lang) == "en" else self.zh


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

    @property
    def is_tree(self) -> bool:
        """Whether some code has a parent (行政区划): read from the index, not a scan of the
        codes (a form opens several pickers, and each asked)."""
        return any(parent for parent in self._children)

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
    building: str | None = None  # the building (楼栋) a house or address is in: navigation
    moved_out: str | None = None  # the date a resident's residence ended: household views
    moved_out_reason: str | None = None  # why (迁出原因), asked with the date
    moved_out_to: str | None = None  # where to (去向), asked with the date
    # a new resident of a house inherits these (issue 16): the area lived in, the household
    # register's number and the head's ID number, name and phone as the member's form has them
    region: str | None = None  # the area (现住地) a person lives in: a region code
    household_number: str | None = None
    head_id: str | None = None
    head_name: str | None = None
    head_phone: str | None = None
    household: tuple[str, ...] = ()  # what one 户口簿 gives all its members (户籍地, 详址…)
    # lists tell records apart (issue 16): a person's gender
    gender: str | None = None


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
    reference_fields: tuple[str, ...] = field(init=False, default=())  # filled from fields
    # title_template parsed once: (literal, field id or "") pairs (a pull titles 100 000 records)
    _title_parts: tuple[tuple[str, str], ...] = field(
        init=False, default=(), repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.fields is None:
            ordered = {f.id: f for s in self.sections for f in s.fields}
            object.__setattr__(self, "fields", MappingProxyType(ordered))
        refs = tuple(f.id for f in self.fields.values() if f.type == "reference")
        object.__setattr__(self, "reference_fields", refs)
        parts = tuple(
            (literal, name or "")
            for literal, name, _spec, _conv in string.Formatter().parse(self.title_template)
        )
        object.__setattr__(self, "_title_parts", parts)

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
        for literal, name in self._title_parts:
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
                + did_you_mean(table_id, self.tables)
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


# --------------------------------------------------------------------------- messages


def did_you_mean(word: object, choices: Iterable[object]) -> str:
    """A hint naming the closest choice, for typos in ids and keys; empty when none is close."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"（是否想写 {close[0]!r}？/ did you mean {close[0]!r}?）" if close else ""
