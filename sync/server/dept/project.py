"""A grant's forms compiled once per taking into row projectors: what each granted field of a
record becomes in the API (codes as stored, masks applied, the fields that would give a masked
ID number back reduced) and in a download (labels, masks, formula-safe cells).

Why: a full export hands over every resident of a street office (~856 k rows). Looking up, per
row and per field, the form's field, its type, whether it is sensitive and granted in full, its
code table and its labels, and parsing the record with the standard JSON module, took most of
the time (issue 14: 144 s for the CSV). Here each field's work is chosen once; a coded value's
label is worked out once per distinct value. ``Shaper.values`` and ``Shaper.labels`` stay the
plain meaning this is property-tested against (tests/sync/test_dept_project.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson

from app.core.display import display_value, masked_part
from app.core.forms import Field, FormSet
from app.core.masking import MASK, mask_part, mask_value
from app.core.tabular.formula import MAY_START_FORMULA, neutralise

ValueFn = Callable[[Any], Any]
CellFn = Callable[[Any], str]
HUGE = 2.0**63  # floats from here on may be integers orjson could not hold
_PLAIN_TEXT = frozenset({"choice", "multi_choice", "boolean", "coordinates", "photo"})  # not str()


def parse(text: str | None) -> dict[str, Any]:
    """A record's stored JSON (orjson: about twice the standard module's speed). orjson reads
    an integer past 64 bits as a float and refuses NaN: a record holding such a float, or that
    orjson refuses, is read by the standard module as before."""
    if not text:
        return {}
    try:
        found = orjson.loads(text)
    except orjson.JSONDecodeError:
        found = json.loads(text)
    else:
        if _huge(found):
            found = json.loads(text)
    return found if isinstance(found, dict) else {}


def _huge(value: Any) -> bool:
    """Does a parsed value hold a float as large as a 64-bit integer (maybe one orjson read
    from an integer it could not hold)? The types are looked at in one pass of C first: most
    records hold only text."""
    items = value.values() if type(value) is dict else value
    kinds = set(map(type, items))
    if float in kinds and any(type(v) is float and not -HUGE < v < HUGE for v in items):
        return True
    if list in kinds or dict in kinds:
        return any(type(v) in (list, dict) and _huge(v) for v in items)
    return False


def empty(value: Any) -> bool:
    """``app.core.records.is_empty`` without the calls for the common types."""
    if value is None:
        return True
    kind = type(value)
    if kind is str:
        return not value.strip()
    if kind is list or kind is dict:
        return not value
    return False


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Projector:
    """One form under one grant: the granted fields (form order), their value functions and
    whether each applies (a mask, or a reduction beside a masked ID number)."""

    names: tuple[str, ...]
    value_fns: tuple[ValueFn, ...]
    masked: tuple[bool, ...]

    def values(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """As ``Shaper.values``: the filled granted fields, sensitive ones masked, revealing
        ones reduced."""
        out: dict[str, Any] = {}
        get = data.get
        for name, fn, masked in zip(self.names, self.value_fns, self.masked, strict=True):
            value = get(name)
            if value is None:
                continue
            if type(value) is str:
                if not value.strip():
                    continue
            elif empty(value):
                continue
            out[name] = fn(value) if masked else value
        return out


def _masker(fld: Field) -> Callable[[Any], str]:
    """``mask_value`` for a filled value of ``fld``, its type's branch chosen once."""
    if fld.type in ("id_number", "credit_code"):
        head, tail, longer = 3, 2, 10
    elif fld.type == "phone":
        head, tail, longer = 3, 4, 7
    else:
        return partial(mask_value, fld)

    def keep(value: Any) -> str:
        text = value if type(value) is str else str(value)
        n = len(text)
        if n > longer:
            return text[:head] + MASK * (n - head - tail) + text[-tail:]
        return MASK * n

    return keep


def projector(
    formset: FormSet, form: str, granted: list[tuple[str, str]], parts: Mapping[str, str]
) -> Projector:
    """``parts``: the granted fields given reduced (``Shaper.parts``), through ``mask_part``."""
    fields = formset.form(form).fields
    names: list[str] = []
    fns: list[ValueFn] = []
    masked: list[bool] = []
    for name, mode in granted:
        fld = fields[name]
        hide = fld.sensitive and mode != "full"
        names.append(name)
        if hide:
            fns.append(_masker(fld))
        else:
            fns.append(partial(mask_part, parts[name]) if name in parts else _same)
        masked.append(hide or name in parts)
    return Projector(tuple(names), tuple(fns), tuple(masked))


class _Cached:
    """A cell function that remembers the text of each distinct value (code tables, flags)."""

    def __init__(self, make: CellFn) -> None:
        self.make = make
        self.seen: dict[Any, str] = {}

    def __call__(self, value: Any) -> str:
        kind = type(value)  # True and 1 are equal keys but not the same text
        key = (kind, tuple(value) if kind is list else value)
        try:
            return self.seen[key]
        except KeyError:
            text = self.seen[key] = self.make(value)
            return text
        except TypeError:  # an unhashable value (a dict): not remembered
            return self.make(value)


PLAIN, CODED, OTHER = 0, 1, 2  # text shown as stored; a coded value (or flag…); masked or other


def _cell_plan(
    formset: FormSet, fld: Field, hide: bool, lang: str, part: str | None = None
) -> tuple[int, CellFn, dict[str, str]]:
    """How a filled value of ``fld`` becomes its safe cell (``display_value`` then
    ``neutralise``; ``masked_part`` for a field given reduced, ``part`` its kind): its kind,
    the function, and the texts of coded values seen so far."""
    if hide:
        mask = _masker(fld)
        return OTHER, lambda value: neutralise(mask(value)), {}
    if part is not None:

        def reduce(value: Any) -> str:
            return neutralise(masked_part(formset, fld, part, value, lang))

        # as coded values: a text per distinct date or code, looked up (few tens of thousands)
        return CODED, _Cached(reduce), {}
    if fld.type in _PLAIN_TEXT:
        cached = _Cached(
            lambda value: neutralise(display_value(formset, fld, value, lang, masked=False))
        )
        return CODED, cached, {}
    return PLAIN, lambda value: neutralise(str(value)), {}


@dataclass(frozen=True)
class RowWriter:
    """One form under one grant in a download: a record's cells, labels for codes."""

    plan: tuple[tuple[str, int, CellFn, dict[str, str]], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(step[0] for step in self.plan)

    def cells(self, data: Mapping[str, Any]) -> list[str]:
        """As ``[neutralise(c) for c in Shaper.labels(...)]``; text values (most) without a
        call: a plain one as it is unless its first character may start a formula, a coded
        one from the texts already worked out."""
        get = data.get
        out: list[str] = []
        add = out.append
        for name, kind, fn, texts in self.plan:
            value = get(name)
            if value is None:
                add("")
            elif type(value) is str:
                if kind == CODED:
                    text = texts.get(value)
                    if text is None:
                        text = texts[value] = "" if not value.strip() else fn(value)
                    add(text)
                elif not value.strip():
                    add("")
                elif kind == PLAIN and value[0] not in MAY_START_FORMULA:
                    add(value)
                else:
                    add(fn(value))
            else:
                add("" if empty(value) else fn(value))
        return out


def row_writer(
    formset: FormSet,
    form: str,
    granted: list[tuple[str, str]],
    lang: str,
    parts: Mapping[str, str],
) -> RowWriter:
    """``parts``: the granted fields given reduced (``Shaper.parts``)."""
    fields = formset.form(form).fields
    plan = [
        (
            name,
            *_cell_plan(
                formset,
                fields[name],
                fields[name].sensitive and mode != "full",
                lang,
                parts.get(name),
            ),
        )
        for name, mode in granted
    ]
    return RowWriter(tuple(plan))
