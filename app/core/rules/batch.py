"""Coercing and checking whole batches of imported rows with a plan compiled once per form.

Why: importing 20 000 residents spent most of its time dispatching on field types per field
per row. A ``FormPlan`` resolves each field's coercion, default, derivation and condition
once, coerces column by column (each distinct text once: codes, dates and regions repeat
down a column) and runs the checks that read the value alone once per distinct value.

It is not a second rule book: every value still goes through ``coerce.coerce``,
``validate.check_value`` and ``coerce.derive_one``; only the dispatch and the repeats go.
``tests/core/test_rules_batch.py`` holds it against ``prepare_row`` + ``validate`` on random
rows, invalid values included.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

from app.core.forms import Field, Form, FormSet, conditions
from app.core.forms.conditions import compile_condition
from app.core.records import is_empty
from app.core.rules.coerce import coerce, derive_one
from app.core.rules.validate import RECORD_CHECKED_TYPES, Issue, check_value, is_required


def _strip_text(value: str) -> object:
    """``coerce`` of a text field for a string: stripped, None when blank."""
    return value.strip() or None


class FormPlan:
    """One form's coercion and checks, resolved once, applied to lists of rows."""

    def __init__(self, form: Form, formset: FormSet, today: date | None = None) -> None:
        # "today" once for the whole import, not a clock read per date and ID number checked
        # (39 000 of them for 20 000 residents); coercion and checks see the same day
        self.form, self.formset, self.today = form, formset, today or date.today()
        fields = list(form.fields.values())
        self._defaults = [(f.id, f.default) for f in fields if f.default is not None]
        self._deriving = [f for f in fields if f.type == "id_number" and f.derives]
        self._checks = [
            (f, compile_condition(f.show_when), json.dumps(f.show_when, sort_keys=True))
            for f in fields
        ]
        # checked a column at a time (``_check_column``): always shown, required always or
        # never, and a check that reads the value alone
        self._by_column = {
            f.id
            for f in fields
            if f.show_when is None
            and f.required_when is None
            and f.type not in RECORD_CHECKED_TYPES
        }

    # -- coercion ---------------------------------------------------------------------------

    def prepare(
        self, raws: Sequence[Mapping[str, Any]], mapping: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        """``transfer.prepare_row`` of every raw row (cells by header; ``mapping`` header ->
        field id, one header per field): coerced, defaults applied, birth/gender derived."""
        fields = self.form.fields
        targets = [(h, fields[f]) for h, f in mapping.items() if f in fields]
        ids = [fld.id for _, fld in targets]
        columns = [self._coerce_column(fld, [raw.get(h) for raw in raws]) for h, fld in targets]
        rows = [
            {k: v for k, v in zip(ids, values, strict=True) if v is not None}
            for values in zip(*columns, strict=True)
        ]
        if not targets:
            rows = [{} for _ in raws]
        for field_id, default in self._defaults:
            for row in rows:
                if is_empty(row.get(field_id)):
                    row[field_id] = default
        for fld in self._deriving:
            for row in rows:
                derive_one(fld, row, row, self.today)  # reads the ID, fills birth/gender
        return rows

    def _coerce_column(self, fld: Field, column: list[Any]) -> list[Any]:
        """``coerce`` of every cell; each distinct string is coerced once."""
        if not all(v is None or type(v) is str for v in column):
            return [coerce(fld, v, self.formset) for v in column]
        one: Callable[[str], object] = (
            _strip_text if fld.type == "text" else lambda v: coerce(fld, v, self.formset)
        )
        table: dict[str | None, object] = {None: None}
        for value in set(column):
            if value is not None:
                table[value] = one(value)
        return list(map(table.__getitem__, column))

    # -- checks -----------------------------------------------------------------------------

    def validate(self, rows: Sequence[Mapping[str, Any]]) -> list[list[Issue]]:
        """``validate.validate`` of every row (no reference lookups), in the same order."""
        found: list[list[Issue]] = [[] for _ in rows]
        masks: dict[str, list[bool]] = {}  # condition -> holds per row, shared by its fields
        present: set[str] = set().union(*rows)  # fields some row holds
        for fld, shown, key in self._checks:
            if fld.id in self._by_column and self._check_column(fld, rows, found, present):
                continue
            self._check_field(fld, self._todo(fld, shown, key, rows, masks), rows, found)
        return found

    def _check_column(
        self,
        fld: Field,
        rows: Sequence[Mapping[str, Any]],
        found: list[list[Issue]],
        present: set[str],
    ) -> bool:
        """``_check_field`` of a field always shown, whose check reads its value alone, as a
        pass over its column: each distinct value checked once, and only the rows holding a
        value with issues (or a blank, where the field is required) visited again. A file of
        good rows costs one read of the column. False (nothing done): the column holds other
        values than text (``True == 1``: a set would take them for one)."""
        field_id = fld.id
        if field_id not in present:  # no row holds it: every row is blank
            if fld.required:
                for issues in found:
                    issues.append(Issue(field_id, "required"))
            return True
        column = [row.get(field_id) for row in rows]
        if not all(v is None or type(v) is str for v in column):
            return False
        first: dict[str | None, int] = {}
        for i, value in enumerate(column):
            first.setdefault(value, i)
        verdicts: dict[str | None, list[Issue]] = {}
        for value, i in first.items():
            if value is None or not value.strip():  # blank: a problem only where required
                if fld.required:
                    verdicts[value] = [Issue(field_id, "required")]
                continue
            issues = check_value(fld, value, rows[i], self.formset, today=self.today)
            if issues:
                verdicts[value] = issues
        if verdicts:
            for i, value in enumerate(column):
                if value in verdicts:
                    found[i].extend(verdicts[value])
        return True

    @staticmethod
    def _todo(
        fld: Field,
        shown: Callable[[Mapping[str, Any]], bool],
        key: str,
        rows: Sequence[Mapping[str, Any]],
        masks: dict[str, list[bool]],
    ) -> Sequence[int]:
        """Rows whose value of ``fld`` must be looked at: shown ones, and only those holding
        a value when a blank is fine (the common case)."""
        field_id = fld.id
        optional = not fld.required and fld.required_when is None
        todo: Sequence[int] = (
            [i for i, row in enumerate(rows) if field_id in row] if optional else range(len(rows))
        )
        if fld.show_when is None:
            return todo
        mask = masks.get(key)
        if mask is None and len(todo) * 4 < len(rows):  # a few filled: ask just those rows
            return [i for i in todo if shown(rows[i])]
        if mask is None:
            mask = masks[key] = _mask(shown, conditions.fields_of(fld.show_when), rows)
        return [i for i in todo if mask[i]]

    def _check_field(
        self,
        fld: Field,
        todo: Sequence[int],
        rows: Sequence[Mapping[str, Any]],
        found: list[list[Issue]],
    ) -> None:
        """``validate``'s step for one field over the ``todo`` rows, issues into ``found``."""
        field_id, optional = fld.id, not fld.required and fld.required_when is None
        by_value = fld.type not in RECORD_CHECKED_TYPES
        seen: dict[str, list[Issue] | None] = {}  # None: a blank string
        for i in todo:
            row = rows[i]
            value = row.get(field_id)
            if by_value and type(value) is str and value in seen:
                issues = seen[value]
            elif (
                value is None
                or value == ""
                or value == []
                or (isinstance(value, str) and not value.strip())
            ):
                issues = None
            else:
                issues = check_value(fld, value, row, self.formset, today=self.today)
            if by_value and type(value) is str:
                seen[value] = issues
            if issues is None:  # blank: a problem only where the field is required
                if not optional and is_required(fld, row):
                    found[i].append(Issue(field_id, "required"))
            elif issues:
                found[i].extend(issues)


def _mask(
    shown: Callable[[Mapping[str, Any]], bool], reads: set[str], rows: Sequence[Mapping[str, Any]]
) -> list[bool]:
    """``shown`` of every row; a condition on one field is asked once per distinct text."""
    if len(reads) != 1:
        return [shown(row) for row in rows]
    (name,) = reads
    memo: dict[str | None, bool] = {}
    mask = []
    for row in rows:
        value = row.get(name)
        if value is None or type(value) is str:
            hit = memo.get(value)
            if hit is None:
                hit = memo[value] = shown(row)
        else:
            hit = shown(row)
        mask.append(hit)
    return mask
