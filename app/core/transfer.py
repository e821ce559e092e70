"""Validate, import and export files of records against a form.

Import is one transaction: a crash or a kill mid-way leaves the store exactly as it was.
A row whose natural key is already in the store (or earlier in the same file) updates that
record instead of creating a second person. Rows with errors are rejected and reported with
row, column and reason; ``strict`` turns any rejected row into "import nothing".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from app.core import rules
from app.core.formset import Field, Form, FormSet
from app.core.masking import mask_value
from app.core.store import Store
from app.core.tabular import Table, read_table, write_table

IGNORED_HEADERS = {"序号", "编号", "no", "no.", "#", "备注", "remark", "remarks", "id"}
_HEADER_NOISE = re.compile(r"[\s★*＊:：]|（必填）|\(必填\)|\(required\)")
BATCH = 2000
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RowError:
    """One problem in one cell (or the header row, for column problems)."""

    row: int
    field: str
    code: str
    message: str
    column: str = ""

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
    rejected_rows: list[int] = field(default_factory=list)
    imported: bool = False

    @property
    def ok(self) -> bool:
        """True when no row and no column has an error."""
        return not self.errors


def _norm_header(text: str) -> str:
    return _HEADER_NOISE.sub("", unicodedata.normalize("NFKC", text)).lower()


def map_headers(form: Form, headers: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Header -> field id, by field id or zh/en label; returns (mapping, unknown headers)."""
    lookup: dict[str, str] = {}
    for fld in form.fields.values():
        for name in (fld.id, fld.label.zh, fld.label.en):
            lookup.setdefault(_norm_header(name), fld.id)
    mapping, unknown = {}, []
    for header in headers:
        key = _norm_header(header)
        if key in lookup:
            mapping[header] = lookup[key]
        elif key not in IGNORED_HEADERS:
            unknown.append(header)
    return mapping, unknown


def _header_errors(form: Form, table: Table, mapping: dict[str, str], unknown: list[str], lang: str) -> list[RowError]:
    errors = []
    for header in unknown:
        msg = (f"未知的列“{header}”：请改为表单“{form.title.zh}”的字段名或字段编号，或删除该列。"
               if lang != "en" else
               f"unknown column \"{header}\": rename it to a field label or id of form "
               f"\"{form.id}\", or remove it.")
        errors.append(RowError(1, "", "column.unknown", msg, header))
    mapped = set(mapping.values())
    for fld in form.fields.values():
        if fld.required and fld.show_when is None and fld.default is None and fld.id not in mapped:
            label = fld.label.get(lang)
            msg = (f"缺少必填列“{label}”（{fld.id}）。请在表头加上这一列。" if lang != "en"
                   else f"missing required column \"{label}\" ({fld.id}); add it to the header row.")
            errors.append(RowError(1, fld.id, "column.missing", msg, label))
    return errors


def prepare_row(form: Form, formset: FormSet, raw: Mapping[str, Any], mapping: Mapping[str, str],
                today: date | None = None) -> dict[str, Any]:
    """Raw cells -> stored values: mapped, coerced, defaults applied, birth/gender derived."""
    values = {mapping[h]: v for h, v in raw.items() if h in mapping}
    data = rules.coerce_record(form, values, formset)
    data = rules.apply_defaults(form, data)
    return rules.derive_from_id(form, data, today=today)


def _row_errors(form: Form, number: int, issues: list[rules.Issue], lang: str) -> list[RowError]:
    return [
        RowError(number, i.field, i.code, i.message(form, lang), form.fields[i.field].label.get(lang)
                 if i.field in form.fields else i.field)
        for i in issues if i.severity == "error"
    ]


def validate_file(path: str | Path, form: Form, formset: FormSet, *, lang: str = "zh",
                  today: date | None = None) -> Report:
    """Check every row and column of a file; the store is not touched."""
    table = read_table(path)
    mapping, unknown = map_headers(form, table.headers)
    report = Report(table.file, rows=len(table.rows))
    report.errors.extend(_header_errors(form, table, mapping, unknown, lang))
    for number, raw in table.rows:
        data = prepare_row(form, formset, raw, mapping, today)
        issues = rules.validate(form, data, formset, today=today)
        report.errors.extend(_row_errors(form, number, issues, lang))
    report.rejected_rows = sorted({e.row for e in report.errors if e.row > 1})
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
) -> Report:
    """Import valid rows (updating records whose natural key exists) in one transaction.

    Column problems import nothing. With ``strict`` any rejected row imports nothing.
    Cancel or any exception rolls everything back.
    """
    table = read_table(path)
    mapping, unknown = map_headers(form, table.headers)
    report = Report(table.file, rows=len(table.rows))
    report.errors.extend(_header_errors(form, table, mapping, unknown, lang))
    if report.errors:
        return report
    good = _prepare_rows(form, store.formset, table, mapping, report, lang, today)
    if strict and report.errors:
        return report
    with store.transaction():
        _apply(form, store, good, report, author, progress, cancel)
    report.imported = True
    return report


def _prepare_rows(form: Form, formset: FormSet, table: Table, mapping: dict[str, str], report: Report,
                  lang: str, today: date | None) -> list[tuple[int, dict[str, Any]]]:
    good = []
    for number, raw in table.rows:
        data = prepare_row(form, formset, raw, mapping, today)
        errors = _row_errors(form, number, rules.validate(form, data, formset, today=today), lang)
        if errors:
            report.errors.extend(errors)
            report.rejected_rows.append(number)
        else:
            good.append((number, data))
    return good


class Cancelled(Exception):
    """The person cancelled a long operation; everything it did was rolled back."""


def _apply(form: Form, store: Store, rows: list[tuple[int, dict[str, Any]]], report: Report, author: str,
           progress: Progress | None, cancel: Callable[[], bool] | None) -> None:
    pending: list[tuple[str | None, dict[str, Any], str]] = []
    pending_keys: dict[str, int] = {}
    for done, (_, data) in enumerate(rows, 1):
        keys = [k for k in (store.natural_key(form, data, f) for f in form.natural_keys) if k]
        existing = next(iter(store.find_by_key(form.id, data)), None)
        in_batch = next((pending_keys[k] for k in keys if k in pending_keys), None)
        if in_batch is not None:  # repeated inside the current batch: merge into that row
            rid, old, status = pending[in_batch]
            pending[in_batch] = (rid, {**old, **data}, status)
            report.updated += 1
        elif existing:
            old = store.get(existing)
            merged = {**(old.data if old else {}), **data}
            store.save(form.id, merged, record_id=existing, status="complete", author=author)
            report.updated += 1
        else:
            pending_keys.update({k: len(pending) for k in keys})
            pending.append((None, data, "complete"))
        if len(pending) >= BATCH or done == len(rows):
            _flush(form, store, pending, pending_keys, report, author)
            if cancel and cancel():
                raise Cancelled
            if progress:
                progress(done, len(rows))


def _flush(form: Form, store: Store, pending: list[tuple[str | None, dict[str, Any], str]],
           pending_keys: dict[str, int], report: Report, author: str) -> None:
    if not pending:
        return
    report.created += len(store.insert_many(form.id, pending, author=author))
    pending.clear()
    pending_keys.clear()


def export_rows(form: Form, store: Store, *, unmasked: bool = False, lang: str = "zh",
                header: str = "label") -> tuple[list[str], Iterator[list[Any]]]:
    """Headers and rows of every live record of a form, sensitive columns masked by default."""
    fields = list(form.fields.values())
    headers = [f.label.get(lang) if header == "label" else f.id for f in fields]

    def rows() -> Iterator[list[Any]]:
        for record in store.iter_records(form.id):
            yield [_cell(f, record.data.get(f.id), unmasked) for f in fields]

    return headers, rows()


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


def export_file(path: str | Path, form: Form, store: Store, *, unmasked: bool = False, lang: str = "zh",
                header: str = "label") -> int:
    """Write a CSV or XLSX of a form's records; returns the number of rows written."""
    headers, rows = export_rows(form, store, unmasked=unmasked, lang=lang, header=header)
    return write_table(path, headers, rows)
