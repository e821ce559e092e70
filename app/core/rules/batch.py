"""Coercing and checking whole batches of imported rows with a plan compiled once per form.

Why: importing 20 000 residents spent most of its time dispatching on field types per field
per row. A ``FormPlan`` resolves each field's coercion, default, derivation and conditions
once and works on columns (field id -> the batch's values), not rows: each column is coerced
and checked one distinct value at a time (codes, dates and regions repeat down a column), and
only the rows holding a value with issues (or a blank where one may be required) are visited
again, to ask their conditions. A batch of good rows costs a pass over each column; no row is
made into a dict until someone asks for it (``Batch.clean_rows``: the import's good rows).

It is not a second rule book: every value still goes through the rules' own functions
(``coerce.coercer`` of its type, ``validate.check_values``, which is ``check_value`` per
distinct value, ``validate.is_blank``, ``records.is_empty``, ``coerce.derive_one``), every
condition through ``conditions.compile_condition``; only the dispatch and the repeats go. An
ID number, whose check reads its id type, birth date and gender, is checked as a column by
``validate.id_number_issues``, which ``check_value`` calls with a batch of one.
``tests/core/test_rules_batch.py`` holds the plan against ``prepare_row`` + ``validate`` row by
row, on random rows and random files, invalid values included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from app.core.forms import Field, Form, FormSet, conditions
from app.core.forms.conditions import compile_condition
from app.core.records import is_empty
from app.core.rules.coerce import coerce, coercer, derive_one
from app.core.rules.validate import (
    RECORD_CHECKED_TYPES,
    IdRows,
    Issue,
    check_value,
    check_values,
    declared_checks,
    declares_checks,
    id_number_issues,
    is_blank,
)

Columns = dict[str, list[Any]]  # field id -> one value per row of the batch (None: blank)
_SCALAR = frozenset({str, type(None)})  # columns a set can hold without True == 1 == 1.0


def _strip_text(value: str) -> object:
    """``coerce`` of a text field for a string: stripped, None when blank."""
    return value.strip() or None


def _hashable_text(column: Sequence[Any]) -> bool:
    """Every value is a string or None: distinct values can be told apart by a dict."""
    return _SCALAR.issuperset(map(type, column))


@dataclass(frozen=True)
class _Check:
    """One field's check, resolved once: its conditions compiled with the fields they read."""

    field: Field
    optional: bool  # never required: a blank is fine whatever the row holds
    by_value: bool  # the check reads the value alone
    shown: Callable[[Mapping[str, Any]], bool] | None
    shown_reads: tuple[str, ...]
    required: Callable[[Mapping[str, Any]], bool] | None  # ``required_when``
    required_reads: tuple[str, ...]
    row_reads: tuple[str, ...]  # what a check of the whole row reads (an ID number's)


def _compiled(fld: Field) -> _Check:
    shown = compile_condition(fld.show_when) if fld.show_when is not None else None
    required = compile_condition(fld.required_when) if fld.required_when is not None else None
    by_value = fld.type not in RECORD_CHECKED_TYPES
    reads = () if by_value else (fld.id_type_field or "", *fld.derives.values())
    return _Check(
        fld,
        not fld.required and fld.required_when is None,
        by_value,
        shown,
        tuple(sorted(conditions.fields_of(fld.show_when))),
        required,
        tuple(sorted(conditions.fields_of(fld.required_when))),
        tuple(name for name in reads if name),
    )


def _row(columns: Columns, names: Iterable[str], i: int) -> dict[str, Any]:
    """Row ``i`` as far as ``names`` go (a condition's or a check's reads), blanks left out."""
    row = {}
    for name in names:
        column = columns.get(name)
        if column is not None and column[i] is not None:
            row[name] = column[i]
    return row


def _holding(
    test: Callable[[Mapping[str, Any]], bool],
    reads: tuple[str, ...],
    columns: Columns,
    rows: Sequence[int],
) -> list[int]:
    """The ``rows`` where a condition holds, asked once per distinct combination of the
    values it reads (a condition on population type: once per type, not once per row)."""
    held = [(name, columns[name]) for name in reads if name in columns]
    if not held:  # every value it reads is blank: one answer for all rows
        return list(rows) if test({}) else []
    if len(held) == 1:  # the common condition: on one field (population type)
        name, column = held[0]
        values = column if rows == range(len(column)) else [column[i] for i in rows]
        if not _hashable_text(values):
            return [i for i in rows if test(_row(columns, reads, i))]
        truth = {v: test({} if v is None else {name: v}) for v in set(values)}
        return [i for i, v in zip(rows, values, strict=True) if truth[v]]
    keys = [tuple(column[i] for _, column in held) for i in rows]
    if not all(map(_SCALAR.issuperset, set(map(_types, keys)))):
        return [i for i in rows if test(_row(columns, reads, i))]  # True == 1: row by row
    names = [name for name, _ in held]
    truth = {
        key: test({n: v for n, v in zip(names, key, strict=True) if v is not None})
        for key in set(keys)
    }
    return [i for i, key in zip(rows, keys, strict=True) if truth[key]]


def _types(key: tuple[Any, ...]) -> tuple[type, ...]:
    return tuple(map(type, key))


@dataclass
class Batch:
    """A batch of rows coerced and checked: stored values by column, issues by row."""

    count: int
    columns: Columns
    issues: list[list[Issue]]

    def rows(self) -> list[dict[str, Any]]:
        """Every row's stored values as ``transfer.prepare_row`` makes them."""
        names = list(self.columns)
        return [
            {k: v for k, v in zip(names, values, strict=True) if v is not None}
            for values in self._values(names)
        ]

    def clean_rows(self, which: Iterable[int]) -> Iterator[dict[str, Any]]:
        """``records.clean`` of rows ``which`` (ascending): keys sorted, empty values gone."""
        names = sorted(self.columns)
        kept = [_kept(self.columns[name]) for name in names]
        wanted = iter(which)
        following = next(wanted, None)
        for i, values in enumerate(zip(*kept, strict=True) if kept else ((),) * self.count):
            if i == following:
                if None in values:
                    yield {k: v for k, v in zip(names, values, strict=True) if v is not None}
                else:  # every column filled (the usual row): made in C
                    yield dict(zip(names, values, strict=True))
                following = next(wanted, None)

    def _values(self, names: list[str]) -> Iterable[tuple[Any, ...]]:
        if not names:
            return [()] * self.count
        return zip(*(self.columns[name] for name in names), strict=True)

    @classmethod
    def of_rows(cls, rows: Sequence[Mapping[str, Any]], issues: list[list[Issue]]) -> Batch:
        """A batch of rows made one at a time (a file naming a field twice)."""
        names = list(dict.fromkeys(name for row in rows for name in row))
        return cls(len(rows), {n: [row.get(n) for row in rows] for n in names}, issues)


def _kept(column: list[Any]) -> list[Any]:
    """The column with what ``records.clean`` drops (``is_empty``) as None."""
    if _hashable_text(column):
        blank = _empty_texts(set(column)) - {None}
        return [None if v in blank else v for v in column] if blank else column
    return [None if is_empty(v) else v for v in column]


class FormPlan:
    """One form's coercion and checks, resolved once, applied to columns of rows."""

    def __init__(self, form: Form, formset: FormSet, today: date | None = None) -> None:
        # "today" once for the whole import, not a clock read per date and ID number checked
        # (39 000 of them for 20 000 residents); coercion and checks see the same day
        self.form, self.formset, self.today = form, formset, today or date.today()
        fields = list(form.fields.values())
        self._defaults = [(f.id, f.default) for f in fields if f.default is not None]
        self._deriving = [f for f in fields if f.type == "id_number" and f.derives]
        self._checks = [_compiled(f) for f in fields]

    # -- the whole batch --------------------------------------------------------------------

    def run(self, cells: Mapping[str, Sequence[Any]], count: int) -> Batch:
        """``count`` rows given as raw cells by field id, coerced and checked."""
        columns = self.columns(cells, count)
        return Batch(count, columns, self.check(columns, count))

    def prepare(
        self, raws: Sequence[Mapping[str, Any]], mapping: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        """``transfer.prepare_row`` of every raw row (cells by header; ``mapping`` header ->
        field id, one header per field): coerced, defaults applied, birth/gender derived."""
        cells = {f: [raw.get(h) for raw in raws] for h, f in mapping.items()}
        return Batch(len(raws), self.columns(cells, len(raws)), []).rows()

    def validate(self, rows: Sequence[Mapping[str, Any]]) -> list[list[Issue]]:
        """``validate.validate`` of every row (no reference lookups), in the same order."""
        present: set[str] = set().union(*rows)  # fields some row holds
        return self.check({f: [row.get(f) for row in rows] for f in present}, len(rows))

    # -- coercion ---------------------------------------------------------------------------

    def columns(self, cells: Mapping[str, Sequence[Any]], count: int) -> Columns:
        """Stored values by field: coerced (each distinct text once), defaults applied,
        birth/gender derived from the ID number. Fields of no column and no default have no
        column; the form's unknown fields are dropped."""
        fields = self.form.fields
        columns = {
            f: self._coerce_column(fields[f], list(column))
            for f, column in cells.items()
            if f in fields
        }
        for field_id, default in self._defaults:
            column = columns.get(field_id)
            columns[field_id] = [default] * count if column is None else _fill(column, default)
        for fld in self._deriving:
            self._derive(fld, columns, count)
        return columns

    def _coerce_column(self, fld: Field, column: list[Any]) -> list[Any]:
        """``coerce`` of every cell; each distinct string is coerced once."""
        if not _hashable_text(column):
            return [coerce(fld, v, self.formset) for v in column]
        if fld.type == "text":
            table: dict[str | None, object] = {v: _strip_text(v) for v in set(column) if v}
        else:  # ``coerce`` of each filled text, its type resolved once
            one, formset = coercer(fld.type), self.formset
            distinct = set(column)
            distinct -= _empty_texts(distinct)
            table = {v: one(fld, v, formset) for v in distinct}
        table[None] = None
        return list(map(table.get, column))

    def _derive(self, fld: Field, columns: Columns, count: int) -> None:
        """``derive_one`` for the rows holding an ID number with a target left empty."""
        numbers = columns.get(fld.id)
        if numbers is None:
            return
        targets = list(dict.fromkeys(fld.derives.values()))
        todo: set[int] = set()
        for target in targets:
            column = columns.get(target)
            todo.update(range(count) if column is None else _empty_rows(column))
        reads = (fld.id, fld.id_type_field or "")
        for i in sorted(todo):
            if numbers[i] is None:
                continue
            out = _row(columns, targets, i)
            derive_one(fld, _row(columns, reads, i), out, self.today)
            for target, value in out.items():
                columns.setdefault(target, [None] * count)[i] = value

    # -- checks -----------------------------------------------------------------------------

    def check(self, columns: Columns, count: int) -> list[list[Issue]]:
        """``validate.validate`` of every row (no reference lookups): issues by row, each
        row's in the form's field order."""
        found: list[list[Issue]] = [[] for _ in range(count)]
        for check in self._checks:
            self._check_field(check, columns, count, found)
        return found

    def _check_field(
        self, check: _Check, columns: Columns, count: int, found: list[list[Issue]]
    ) -> None:
        """One field's step of ``validate`` over the batch, issues into ``found``."""
        fld = check.field
        column = columns.get(fld.id)
        if column is None:  # no row holds it: a problem only where it is required
            if not check.optional:
                self._visit(check, columns, range(count), None, None, found)
            return
        if not (check.by_value and _hashable_text(column)):
            self._visit(check, columns, range(count), column, None, found)
            return
        distinct = set(column)
        blank = _blank_texts(distinct)
        # each value's issues (None: a blank, which matters only where the field is required)
        verdicts: dict[str | None, list[Issue] | None] = {}
        if not check.optional:
            verdicts.update(dict.fromkeys(blank))
        verdicts.update(check_values(fld, distinct - blank, self.formset, self.today))
        if verdicts:  # only the rows holding a value with issues, or a blank, are visited
            rows = [i for i, value in enumerate(column) if value in verdicts]
            self._visit(check, columns, rows, column, verdicts, found)

    def _visit(
        self,
        check: _Check,
        columns: Columns,
        rows: Sequence[int],
        column: Sequence[Any] | None,
        verdicts: Mapping[Any, list[Issue] | None] | None,
        found: list[list[Issue]],
    ) -> None:
        """``validate``'s step for one field on ``rows``: shown ones only; a blank is an
        issue where the field is required. ``column`` None: blank in every row;
        ``verdicts``: each value's issues, known."""
        fld = check.field
        blank = [True] * len(found) if column is None else _blanks(column)
        if check.optional:
            rows = [i for i in rows if not blank[i]]
        if check.shown is not None:
            rows = _holding(check.shown, check.shown_reads, columns, rows)
        blanks = [i for i in rows if blank[i]]
        if blanks and not fld.required:
            assert check.required is not None
            blanks = _holding(check.required, check.required_reads, columns, blanks)
        for i in blanks:
            found[i].append(Issue(fld.id, "required"))
        filled = [i for i in rows if not blank[i]]
        if column is None or not filled:
            return
        if verdicts is not None:
            # a filled value's verdict is a list (None is a blank's)
            checked: Iterable[list[Issue] | None] = (verdicts[column[i]] for i in filled)
        elif fld.type == "id_number":
            checked = self._id_numbers(fld, column, filled, columns)
        else:  # a check of the whole row: given what it reads
            checked = (
                check_value(
                    fld,
                    column[i],
                    _row(columns, check.row_reads, i),
                    self.formset,
                    today=self.today,
                )
                for i in filled
            )
        for i, issues in zip(filled, checked, strict=True):
            if issues:
                found[i].extend(issues)

    def _id_numbers(
        self, fld: Field, column: Sequence[Any], rows: list[int], columns: Columns
    ) -> list[list[Issue]]:
        """``check_value`` of an ID-number field on ``rows``: its type check for all of them
        at once (``id_number_issues``), then the declared checks where that found nothing."""

        def read(name: str | None) -> list[Any]:
            held = columns.get(name) if name else None
            return [None] * len(rows) if held is None else [held[i] for i in rows]

        values = [column[i] for i in rows]
        reads = IdRows(
            read(fld.id_type_field),
            read(fld.derives.get("birth_date")),
            read(fld.derives.get("gender")),
        )
        typed = id_number_issues(fld, values, reads, self.formset, self.today)
        if not declares_checks(fld):  # ``declared_checks`` would find nothing
            return typed
        declared: dict[Any, list[Issue]] = {}
        out = []
        for value, issues in zip(values, typed, strict=True):
            if issues:
                out.append(issues)
            elif type(value) is not str:
                out.append(declared_checks(fld, value, self.today))
            else:
                known = declared.get(value)
                if known is None:
                    known = declared[value] = declared_checks(fld, value, self.today)
                out.append(known)
        return out


def _blanks(column: Sequence[Any]) -> list[bool]:
    """Per row: the value is blank (``is_blank``), asked once per distinct text."""
    if not _hashable_text(column):
        return [is_blank(v) for v in column]
    blank = _blank_texts(set(column))
    return [v in blank for v in column] if blank else [False] * len(column)


def _fill(column: list[Any], default: object) -> list[Any]:
    """``apply_defaults`` down a column: ``default`` where the value is empty."""
    if not _hashable_text(column):
        return [default if is_empty(v) else v for v in column]
    empty = _empty_texts(set(column))
    return [default if v in empty else v for v in column] if empty else column


def _empty_rows(column: list[Any]) -> list[int]:
    """Rows whose value is empty (``is_empty``)."""
    if not _hashable_text(column):
        return [i for i, v in enumerate(column) if is_empty(v)]
    empty = _empty_texts(set(column))
    return [i for i, v in enumerate(column) if v in empty] if empty else []


def _blank_texts(values: set[str | None]) -> set[str | None]:
    """The blank ones (``is_blank``) of distinct strings and None; ``is_blank`` is asked only
    of those that strip to nothing (a string with something left is filled)."""
    return {v for v in values if v is None or (not v.strip() and is_blank(v))}


def _empty_texts(values: set[str | None]) -> set[str | None]:
    """The empty ones (``is_empty``) of distinct strings and None, asked as ``_blank_texts``."""
    return {v for v in values if v is None or (not v.strip() and is_empty(v))}
