"""One input widget per field *type*, built from a form file's ``Field``.

Every widget is a ``FieldWidget``: ``value()`` returns the raw value as typed (what
``rules.coerce`` accepts; wrong text is kept, never dropped), ``set_value`` shows a stored or
prefilled value, ``changed`` fires on every edit, ``committed`` when the person leaves the field
(or presses Enter), ``nextRequested`` when Enter should move on. The editor owns validation and
shows its messages through ``set_message``; widgets only normalise what was typed (dates,
identifiers, phone numbers) when the field is left.

Long code tables (民族, 国籍, 行政区划) get a searchable picker whose index (code, both names,
pinyin and initials, the full region path) and Qt model are built on first use and shared by
every editor in the process, so opening a form stays as cheap as a form of line edits.

This module is the public face and the factory; the widgets live in one module per concern
(``base``, ``code_index``, ``lines``, ``choices``, ``geo_ref``)
and are re-exported here so callers keep importing from ``app.ui.fields``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QWidget

from app.core.forms import CodeTable, Field, FormSet
from app.ui.fields.base import CODE_ROLE, SEARCH_ROLE, SHORT_TABLE_MAX, FieldWidget, guard_wheel
from app.ui.fields.choices import BooleanField, ChoiceField, CodePickerField, MultiChoiceField
from app.ui.fields.code_index import CodeEntry as CodeEntry  # public dataclass, kept importable
from app.ui.fields.code_index import (
    CodeIndex,
    _offered_codes,
    code_display,
    code_index,
    home_regions,
)
from app.ui.fields.code_index import _char_pinyin as _char_pinyin  # tests check the pinyin table
from app.ui.fields.geo_ref import CoordinatesField, ReferenceField
from app.ui.fields.lines import (
    CreditCodeField,
    DateField,
    IdNumberField,
    LineField,
    NumberField,
    PhotoField,
)
from app.ui.settings import META_GRIDS

__all__ = [
    "SHORT_TABLE_MAX",
    "CODE_ROLE",
    "SEARCH_ROLE",
    "CodeIndex",
    "code_index",
    "code_display",
    "FieldWidget",
    "LineField",
    "NumberField",
    "DateField",
    "IdNumberField",
    "CreditCodeField",
    "ChoiceField",
    "CodePickerField",
    "MultiChoiceField",
    "BooleanField",
    "CoordinatesField",
    "ReferenceField",
    "PhotoField",
    "make_field_widget",
]


# --------------------------------------------------------------------------- the factory

_LINE_TYPES: dict[str, type[LineField]] = {
    "text": LineField,
    "phone": LineField,
    "postcode": LineField,
    "integer": NumberField,
    "decimal": NumberField,
    "date": DateField,
    "id_number": IdNumberField,
    "credit_code": CreditCodeField,
    "photo": PhotoField,
}


def make_field_widget(
    field: Field,
    formset: FormSet,
    lang: str = "zh",
    store: Any = None,
    parent: QWidget | None = None,
) -> FieldWidget:
    """The widget for ``field``'s type (the form file decides; code never looks at field ids).

    Every widget made here takes the mouse wheel only while it has focus (``guard_wheel``)."""
    widget = _make(field, formset, lang, store, parent)
    guard_wheel(widget)
    return widget


def _home_of(store: Any, table: CodeTable) -> Callable[[], tuple[str, ...]] | None:
    """The worker's own regions for a hierarchical table (行政区划), read on first use from
    the grids the worker is assigned (else every grid on the device)."""
    if store is None or not table.is_tree:
        return None
    found: list[tuple[str, ...]] = []

    def home() -> tuple[str, ...]:
        if not found:
            assigned = json.loads(store.meta(META_GRIDS) or "[]")
            grids = assigned or [g.code for g in store.grids(boundaries=False)]
            found.append(home_regions(grids, table))
        return found[0]

    return home


def _make(
    field: Field, formset: FormSet, lang: str, store: Any, parent: QWidget | None
) -> FieldWidget:
    kind = field.type
    if kind in _LINE_TYPES:
        return _LINE_TYPES[kind](field, formset, lang, parent)
    if kind == "choice":
        table = formset.table(field.codes or "")
        short = len(_offered_codes(field, table)) <= SHORT_TABLE_MAX
        if short:
            return ChoiceField(field, formset, lang, parent)
        return CodePickerField(field, formset, lang, parent, home=_home_of(store, table))
    if kind == "multi_choice":
        return MultiChoiceField(field, formset, lang, parent)
    if kind == "boolean":
        return BooleanField(field, formset, lang, parent)
    if kind == "coordinates":
        return CoordinatesField(field, formset, lang, parent)
    if kind == "reference":
        return ReferenceField(field, formset, lang, parent, store=store)
    raise ValueError(f"no widget for field type {kind!r}")
