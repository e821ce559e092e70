"""Validate, import and export files of records against a form.

Import is one transaction: a crash or a kill mid-way leaves the store exactly as it was.
A row whose natural key is already in the store (or earlier in the same file) updates that
record instead of creating a second person. Rows with errors are rejected and reported with
row, column and reason; ``strict`` turns any rejected row into "import nothing".
"""

from __future__ import annotations

import gc
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import date
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.core import import_worker, rules
from app.core.forms import Field, Form, FormSet
from app.core.masking import MASK, looks_masked, mask_part, mask_value, revealing
from app.core.messages import lang_of
from app.core.records import RecordStatus, clean, diff
from app.core.tabular import Lines, read_lines, write_table

if TYPE_CHECKING:  # the store pulls in the pinyin dictionary; ``validate`` never needs it
    from app.core.store import Store
    from app.core.store.derive import Derived

IGNORED_HEADERS = {"序号", "编号", "no", "no.", "#", "备注", "remark", "remarks", "id"}
_HEADER_NOISE = re.compile(r"[\s★*＊:：]|（必填）|\(必填\)|\(required\)")
# "证件号码[permit_number]": a label made unique with its field id (exports write these when two
# fields share a label); matched after NFKC, so full-width brackets work too.
_TAGGED_HEADER = re.compile(r".*[\[(]([a-z][a-z0-9_]*)[\])]")
# Column names departments use for a citizen ID or a phone, whatever the form's label says.
# Keyed by field *type*: they map to the form's first ``roles`` field of that type.
_TYPE_ALIASES: dict[str, tuple[str, ...]] = {
    "id_number": ("公民身份号码", "身份证号码", "身份证号", "居民身份证号码", "身份证"),
    "phone": ("联系电话", "电话", "电话号码", "手机", "手机号", "手机号码"),
}
BATCH = 2000  # rows per insert, per duplicate lookup and per coerce-and-check pass
# The page cache an import writes with (KiB; restored afterwards), as a pull's: the store's
# indexes (keys, titles, people, full text) take inserts at random places, and on a populated
# device (the 1.63 M demo) the default 8 MB cache re-read their pages all through an import.
IMPORT_CACHE_KIB = 65536
IMPORT_CHECKPOINT_PAGES = 20000
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RowError:
    """One problem in one cell, or in the header (``code`` "column.*": a column problem)."""

    row: int
    field: str
    code: str
    message: str
    column: str = ""

    @property
    def is_column(self) -> bool:
        """A problem with a column of the file, not with one row."""
        return self.code.startswith("column.")

    def as_json(self) -> dict[str, Any]:
        """The shape ``validate --json`` prints."""
        return {"row": self.row, "field": self.field, "code": self.code, "message": self.message}


@dataclass
class Report:
    """What a validation or import found and did."""

    file: str
    rows: int = 0
    errors: list[RowError] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected_rows: list[int] = field(default_factory=list)
    imported: bool = False

    @property
    def ok(self) -> bool:
        """True when no row and no column has an error."""
        return not self.errors

    @property
    def column_problems(self) -> bool:
        """True when a column is unknown, missing or doubled: the file does not fit the form."""
        return any(e.is_column for e in self.errors)


def _norm_header(text: str) -> str:
    return _HEADER_NOISE.sub("", unicodedata.normalize("NFKC", text).lower())


def _header_lookup(form: Form) -> dict[str, str]:
    """Normalised header -> field id: ids and labels first, then the type aliases."""
    lookup: dict[str, str] = {}
    for fld in form.fields.values():
        for name in (fld.id, fld.label.zh, fld.label.en):
            lookup.setdefault(_norm_header(name), fld.id)
    roles = form.roles
    for kind, role_fields in (("id_number", roles.id), ("phone", roles.phone)):
        target = next(
            (f for f in role_fields if f in form.fields and form.fields[f].type == kind), None
        )
        if target:
            for alias in _TYPE_ALIASES[kind]:
                lookup.setdefault(_norm_header(alias), target)
    return lookup


def map_headers(form: Form, headers: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Header -> field id, by field id, zh/en label or "label[id]"; returns (mapping, unknown).

    Spaces, ★/* required marks, colons, "（必填）" and full-width forms are ignored; headers such
    as 序号 or 备注 are skipped without complaint.
    """
    lookup = _header_lookup(form)
    mapping, unknown = {}, []
    for header in headers:
        key = _norm_header(header)
        tagged = _TAGGED_HEADER.fullmatch(key)
        if key in lookup:
            mapping[header] = lookup[key]
        elif tagged and tagged[1] in form.fields:
            mapping[header] = tagged[1]
        elif key not in IGNORED_HEADERS:
            unknown.append(header)
    return mapping, unknown


def _derived_fields(form: Form, mapped: set[str]) -> set[str]:
    """Fields an ID-number column fills in (birth date, gender): their columns are optional."""
    return {
        target
        for fld in form.fields.values()
        if fld.type == "id_number" and fld.id in mapped
        for target in fld.derives.values()
    }


def _header_errors(
    form: Form, table: Lines, mapping: dict[str, str], unknown: list[str], lang: str
) -> list[RowError]:
    row, errors = table.header_row, []
    for header in unknown:
        msg = (
            f"未知的列“{header}”：请改为表单“{form.title.zh}”的字段名或字段编号，或删除该列。"
            if lang_of(lang) != "en"
            else f'unknown column "{header}": rename it to a field label or id of form '
            f'"{form.id}", or remove it.'
        )
        errors.append(RowError(row, "", "column.unknown", msg, header))
    by_field: dict[str, list[str]] = {}
    for header, field_id in mapping.items():
        by_field.setdefault(field_id, []).append(header)
    for field_id, headers in by_field.items():
        if len(headers) > 1:
            names = (
                "、".join(f"“{h}”" for h in headers)
                if lang_of(lang) != "en"
                else ", ".join(headers)
            )
            label = form.fields[field_id].label.get(lang)
            msg = (
                f"列{names}都对应字段“{label}”（{field_id}）。请只保留一列。"
                if lang_of(lang) != "en"
                else f'columns {names} all mean the field "{label}" ({field_id}); keep one.'
            )
            errors.append(RowError(row, field_id, "column.duplicate", msg, headers[-1]))
    columns = _columns(mapping)
    for fld in form.fields.values():
        if _column_missing(form, fld.id, columns):
            label = fld.label.get(lang)
            msg = (
                f"缺少必填列“{label}”（{fld.id}）。请在表头加上这一列。"
                if lang_of(lang) != "en"
                else f'missing required column "{label}" ({fld.id}); add it to the header row.'
            )
            errors.append(RowError(row, fld.id, "column.missing", msg, label))
    return errors


def prepare_row(
    form: Form,
    formset: FormSet,
    raw: Mapping[str, Any],
    mapping: Mapping[str, str],
    today: date | None = None,
) -> dict[str, Any]:
    """Raw cells -> stored values: mapped, coerced, defaults applied, birth/gender derived."""
    values = {mapping[h]: v for h, v in raw.items() if h in mapping}
    data = rules.coerce_record(form, values, formset)
    data = rules.apply_defaults(form, data)
    return rules.derive_from_id(form, data, today=today)


def _row_errors(
    form: Form, number: int, issues: list[rules.Issue], lang: str, columns: Mapping[str, str]
) -> list[RowError]:
    """Errors of one row; ``columns`` (field id -> header in the file) names the cell.

    A required field without a column was reported once at the header, not again per row.
    """
    errors = [
        i
        for i in issues
        if i.severity == "error"
        and not (i.code == "required" and _column_missing(form, i.field, columns))
    ]
    # A blank birth date or gender that the ID number would have filled in is missing only
    # because the ID number is wrong: the ID error alone says what to fix.
    bad_ids = [form.fields[i.field] for i in errors if i.field in form.fields]
    unfillable = {t for f in bad_ids if f.type == "id_number" for t in f.derives.values()}
    return [
        RowError(
            number,
            i.field,
            i.code,
            i.message(form, lang),
            _column_name(form, i.field, lang, columns),
        )
        for i in errors
        if not (i.code == "required" and i.field in unfillable)
    ]


def _column_missing(form: Form, field_id: str, columns: Mapping[str, str]) -> bool:
    """A field every row needs has no column (and no ID-number column fills it in)."""
    fld = form.fields.get(field_id)
    return (
        fld is not None
        and field_id not in columns
        and fld.required
        and fld.show_when is None
        and fld.default is None
        and field_id not in _derived_fields(form, set(columns))
    )


def _column_name(form: Form, field_id: str, lang: str, columns: Mapping[str, str]) -> str:
    """The header as the file spells it, else the field's label (a derived or absent column)."""
    if field_id in columns:
        return columns[field_id]
    fld = form.fields.get(field_id)
    return fld.label.get(lang) if fld else field_id


def _columns(mapping: Mapping[str, str]) -> dict[str, str]:
    return {field_id: header for header, field_id in mapping.items()}


def validate_file(
    path: str | Path, form: Form, formset: FormSet, *, lang: str = "zh", today: date | None = None
) -> Report:
    """Check every row and column of a file; the store is not touched."""
    with gc_paused():  # a file's rows are not cycles (``gc_paused``)
        return _validate(path, form, formset, lang, today)


def _validate(
    path: str | Path, form: Form, formset: FormSet, lang: str, today: date | None
) -> Report:
    table = read_lines(path)
    mapping, unknown = map_headers(form, table.headers)
    report = Report(table.file, rows=len(table.rows))
    report.errors.extend(_header_errors(form, table, mapping, unknown, lang))
    columns = _columns(mapping)
    for numbers, checked in _checked_batches(form, formset, table, mapping, today):
        for number, issues in zip(numbers, checked.issues, strict=True):
            if issues:
                report.errors.extend(_row_errors(form, number, issues, lang, columns))
    report.rejected_rows = sorted({e.row for e in report.errors if not e.is_column})
    return report


def import_file(
    path: str | Path,
    form: Form,
    store: Store,
    *,
    author: str = "",
    strict: bool = False,
    lang: str = "zh",
    today: date | None = None,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    worker: bool | None = None,
) -> Report:
    """Import valid rows (updating records whose natural key exists) in one transaction.

    Column problems import nothing. With ``strict`` any rejected row imports nothing.
    Cancel or any exception rolls everything back. ``worker``: read and check the file in a
    second process while this one writes (``import_worker``; None: when the file is big enough
    for that to pay). Either way the same ``checked_stream`` feeds the same writes.
    """
    if worker is None:
        worker = import_worker.pays(path, store.formset, form)
    source: AbstractContextManager[Iterator[Head | Checked]]
    if worker:
        source = import_worker.checked_in_worker(path, form, store.formset, lang, today, BATCH)
    else:
        source = nullcontext(checked_stream(path, form, store.formset, lang, today, BATCH))
    with gc_paused(), source as messages:
        return _import(form, store, messages, author, strict, progress, cancel)


@contextmanager
def gc_paused() -> Iterator[None]:
    """No automatic garbage collection meanwhile: an import's rows are not cycles, yet each
    full collection walked every object of the process (a fifth of the writer's Python in a
    20 000-row import, more in the app). Cycles made meanwhile go at the next collection."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


Good = tuple[int, dict[str, Any]]


@dataclass(frozen=True)
class Head:
    """The first message of ``checked_stream``: the file's name, rows and column problems."""

    file: str
    rows: int
    errors: list[RowError]


@dataclass(frozen=True)
class Checked:
    """One batch of the file's rows, checked: the good ones as (position in the file, clean
    values), the errors of the others and their row numbers."""

    good: list[Good]
    errors: list[RowError]
    rejected: list[int]


def checked_stream(
    path: str | Path,
    form: Form,
    formset: FormSet,
    lang: str,
    today: date | None,
    batch_size: int,
) -> Iterator[Head | Checked]:
    """The file read and checked, a ``Head`` then a ``Checked`` per ``batch`` rows: what an
    import writes from, in this process or streamed from a second one (``import_worker``).
    The writer derives (``Store.derive``): deriving here too was measured slower, as the
    child starts with cold caches and loads the pinyin dictionary (README, import section).

    Nothing follows a head with errors: a file whose columns do not fit imports nothing."""
    table = read_lines(path)
    mapping, unknown = map_headers(form, table.headers)
    head = Head(table.file, len(table.rows), _header_errors(form, table, mapping, unknown, lang))
    yield head
    if head.errors:
        return
    columns = _columns(mapping)
    position = 0
    for numbers, batch in _checked_batches(form, formset, table, mapping, today, batch_size):
        checked, good = Checked([], [], []), []
        for i, (number, issues) in enumerate(zip(numbers, batch.issues, strict=True)):
            errors = _row_errors(form, number, issues, lang, columns) if issues else []
            if errors:
                checked.errors.extend(errors)
                checked.rejected.append(number)
            else:
                good.append(i)
        rows = batch.clean_rows(good)
        checked.good.extend((position + i + 1, data) for i, data in zip(good, rows, strict=True))
        position += batch.count
        if checked.good or checked.errors:
            yield checked


class _Rejected(Exception):
    """A strict import met a rejected row: what it wrote so far is rolled back."""


def _import(
    form: Form,
    store: Store,
    messages: Iterator[Head | Checked],
    author: str,
    strict: bool,
    progress: Progress | None,
    cancel: Callable[[], bool] | None,
) -> Report:
    """Write the good rows of a ``checked_stream`` as they come, in one transaction.

    Rows are written while later ones are still being checked, so a strict import that meets
    a rejected row rolls back what it wrote (and reports every error of the file, as ever)."""
    head = next(messages)
    assert isinstance(head, Head)
    report = Report(head.file, rows=head.rows, errors=list(head.errors))
    if report.errors:
        return report
    good = _good_rows(messages, report, strict)
    bulk = store.replica.bulk_writes(IMPORT_CACHE_KIB, IMPORT_CHECKPOINT_PAGES)
    try:
        with bulk, store.transaction():
            _apply(form, store, good, head.rows, report, author, progress, cancel)
    except _Rejected:
        report.created = report.updated = report.unchanged = 0
        return report
    report.imported = True
    return report


def _good_rows(messages: Iterable[Head | Checked], report: Report, strict: bool) -> Iterator[Good]:
    """The good rows of the checked batches; their errors go to ``report`` on the way.

    ``strict``: after the first rejected row no more rows are written; the rest of the file
    is still checked (its errors are reported), then ``_Rejected`` rolls the import back."""
    for checked in messages:
        assert isinstance(checked, Checked)
        report.errors.extend(checked.errors)
        report.rejected_rows.extend(checked.rejected)
        if not (strict and report.errors):
            yield from checked.good
    if strict and report.errors:
        raise _Rejected


def _checked_batches(
    form: Form,
    formset: FormSet,
    table: Lines,
    mapping: dict[str, str],
    today: date | None,
    batch: int = BATCH,
) -> Iterator[tuple[list[int], rules.Batch]]:
    """(row numbers, coerced and checked rows) of every ``batch`` rows: ``prepare_row`` and
    ``validate`` through the form's compiled plan (``rules.FormPlan``), column by column."""
    plan = rules.FormPlan(form, formset, today)
    doubled = len(set(mapping.values())) < len(mapping)
    masks = _maskable(form, formset, mapping)
    for start in range(0, len(table.rows), batch):
        part = table.rows[start : start + batch]
        numbers = [number for number, _ in part]
        columns = table.columns(part)
        if doubled:  # a column named twice: row by row, as ever (the later column wins)
            rows = [prepare_row(form, formset, table.row(line), mapping, today) for _, line in part]
            issues = [rules.validate(form, data, formset, today=today) for data in rows]
            checked = rules.Batch.of_rows(rows, issues)
        else:
            checked = plan.run({f: columns[h] for h, f in mapping.items()}, len(part))
        _refuse_masks(masks, columns, checked.issues)
        yield numbers, checked


def _maskable(
    form: Form, formset: FormSet, mapping: Mapping[str, str]
) -> dict[str, tuple[Field, str | None]]:
    """Header -> (field, ``revealing`` kind) of the columns a masked export masks."""
    parts = revealing(form, formset)
    found = {}
    for header, field_id in mapping.items():
        fld = form.fields[field_id]
        if fld.sensitive or field_id in parts:
            found[header] = (fld, None if fld.sensitive else parts[field_id])
    return found


def _refuse_masks(
    masks: Mapping[str, tuple[Field, str | None]],
    columns: Mapping[str, Sequence[Any]],
    issues: list[list[rules.Issue]],
) -> None:
    """A cell a masked export wrote (``looks_masked``) is an error of its row, in place of
    what the field's own checks said of it: a passport number or a permit number has no check
    a mask fails, and the row would have written "*********" over the real value. A mask that
    did fail a check ("330***...12": "character 4 is wrong") is told what it is."""
    for header, (fld, kind) in masks.items():
        column = columns[header]
        if MASK not in "\n".join(map(str, column)):  # the usual column, at C speed
            continue
        for i, value in enumerate(column):
            if looks_masked(fld, kind, value):
                kept = [issue for issue in issues[i] if issue.field != fld.id]
                issues[i] = [*kept, rules.Issue(fld.id, "masked")]


class Cancelled(Exception):
    """The person cancelled a long operation; everything it did was rolled back."""


def _apply(
    form: Form,
    store: Store,
    rows: Iterable[Good],
    total: int,
    report: Report,
    author: str,
    progress: Progress | None,
    cancel: Callable[[], bool] | None,
) -> None:
    """Clean rows (position in the file, values) into the store a batch at a time: the
    batch's natural keys are looked up in one go, new people are inserted together, known
    ones merged into their records. Progress counts the file's rows (``total``): after each
    batch, the rows up to its last one.

    Each row is derived once (``Store.derive``): its keys find duplicates and the same
    ``Derived`` goes into the insert, which would otherwise derive it again."""
    it, done = iter(rows), 0
    while chunk := list(islice(it, BATCH)):
        batch = [(values, store.derive(form, values)) for _, values in chunk]
        known = _Known(store.records_by_keys(form.id, (k for _, d in batch for k in d.keys)))
        pending: list[tuple[dict[str, Any], Derived | None]] = []  # None: derive at the flush
        pending_keys: dict[str, int] = {}
        for data, derived in batch:
            keys = derived.keys
            in_batch = next((pending_keys[k] for k in keys if k in pending_keys), None)
            existing = known.first(keys) if in_batch is None else None
            if in_batch is not None:  # repeated inside the current batch: merge into that row
                pending[in_batch] = (clean({**pending[in_batch][0], **data}), None)
                report.updated += 1
            elif existing:
                merged = _update(form, store, existing, data, report, author)
                known.moved(existing, _keys(form, store, merged))
            else:
                pending_keys.update({k: len(pending) for k in keys})
                pending.append((data, derived))
        _flush(form, store, pending, report, author)
        if cancel and cancel():
            raise Cancelled
        done = chunk[-1][0]
        if progress:
            progress(done, total)
    if progress and 0 < done < total:  # the file ended in rejected rows
        progress(total, total)


def _keys(form: Form, store: Store, data: Mapping[str, Any]) -> list[str]:
    return [k for k in (store.natural_key(form, data, f) for f in form.natural_keys) if k]


class _Known:
    """The store's natural keys of one batch (key -> record ids), kept as the store's
    ``find_by_key`` would answer while the batch updates records."""

    def __init__(self, by_key: dict[str, list[str]]) -> None:
        self._by_key = {key: sorted(ids) for key, ids in by_key.items()}
        self._of: dict[str, set[str]] = {}
        for key, ids in by_key.items():
            for record_id in ids:
                self._of.setdefault(record_id, set()).add(key)

    def first(self, keys: Iterable[str]) -> str | None:
        """The record ``find_by_key`` puts first: the lowest id under the lowest key."""
        for key in sorted(keys):
            ids = self._by_key.get(key)
            if ids:
                return ids[0]
        return None

    def moved(self, record_id: str, keys: Iterable[str]) -> None:
        """``record_id`` now holds exactly ``keys`` (it was merged with a row)."""
        kept, held = set(keys), self._of.setdefault(record_id, set())
        for key in held - kept:
            self._by_key[key].remove(record_id)
        for key in kept - held:
            ids = self._by_key.setdefault(key, [])
            ids.append(record_id)
            ids.sort()
        held.clear()
        held.update(kept)


def _update(
    form: Form, store: Store, record_id: str, data: dict[str, Any], report: Report, author: str
) -> dict[str, Any]:
    """Merge a row into the record with its natural key; blank cells keep the stored values.

    Returns the record's values after the merge."""
    old = store.get(record_id)
    merged = clean({**(old.data if old else {}), **data})
    if old is not None and old.status == RecordStatus.COMPLETE and not diff(old.data, merged):
        report.unchanged += 1  # the same person sent again: no history, no outbox op
        return merged
    store.save(form.id, merged, record_id=record_id, status="complete", author=author)
    report.updated += 1
    return merged


def _flush(
    form: Form,
    store: Store,
    pending: list[tuple[dict[str, Any], Derived | None]],
    report: Report,
    author: str,
) -> None:
    """Insert a batch's new records with the values each was derived from (a row that took
    a later row of the file in is derived again)."""
    if not pending:
        return
    rows = [(None, data, "complete") for data, _ in pending]
    derived = [d if d is not None else store.derive(form, data) for data, d in pending]
    report.created += len(store.insert_many(form.id, rows, author=author, derived=derived))


def export_rows(
    form: Form, store: Store, *, unmasked: bool = False, lang: str = "zh", header: str = "label"
) -> tuple[list[str], Iterator[list[Any]]]:
    """Headers and rows of every live record of a form, sensitive columns masked by default
    (and, then, the birth date and area codes a masked ID number would be rebuilt from:
    ``masking.revealing``)."""
    fields = list(form.fields.values())
    headers = export_headers(form, lang=lang, header=header)
    parts = {} if unmasked else revealing(form, store.formset)

    def rows() -> Iterator[list[Any]]:
        for record in store.iter_records(form.id):
            yield [_cell(f, _part(parts, f, record.data.get(f.id)), unmasked) for f in fields]

    return headers, rows()


def export_headers(form: Form, *, lang: str = "zh", header: str = "label") -> list[str]:
    """Column headers that map back to the same fields on import.

    When two fields share a label (证件号码 of the person and of the residence permit), the first
    keeps it (``map_headers`` maps a plain label to the first field that has it) and the others
    are written as "label[field id]", which ``map_headers`` reads back.
    """
    fields = list(form.fields.values())
    if header != "label":
        return [f.id for f in fields]
    seen: set[str] = set()
    headers = []
    for fld in fields:
        label = fld.label.get(lang)
        key = _norm_header(label)
        headers.append(f"{label}[{fld.id}]" if key in seen else label)
        seen.add(key)
    return headers


def _part(parts: dict[str, str], fld: Field, value: object) -> object:
    return mask_part(parts[fld.id], value) if fld.id in parts else value


def _cell(fld: Field, value: object, unmasked: bool) -> object:
    if fld.sensitive and not unmasked:
        return mask_value(fld, value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    if isinstance(value, dict) and {"lon", "lat"} <= set(value):
        return f"{value['lon']},{value['lat']}"
    return value


def export_file(
    path: str | Path,
    form: Form,
    store: Store,
    *,
    unmasked: bool = False,
    lang: str = "zh",
    header: str = "label",
) -> int:
    """Write a CSV or XLSX of a form's records; returns the number of rows written."""
    headers, rows = export_rows(form, store, unmasked=unmasked, lang=lang, header=header)
    return write_table(path, headers, rows)
