"""What a record sheet says, without Qt: display strings by section, masked, and the QR text.

``build_sheet`` turns a record into a ``Sheet``: visible, filled fields only, each value
through ``app.core.display`` (codes as their labels, references as the linked record's title,
positions with their CGCS2000 figures); sensitive values masked there, so the full values never
reach the painter, the PDF or its metadata. The QR carries only
``qrpayload.encode(id, form, version, key)``. ``app.printing.sheets`` lays these out and paints.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.core import qrpayload, rules, scan
from app.core.display import display_value, masked_part, status_text
from app.core.forms import Field, Form
from app.core.masking import mask_value, revealing
from app.core.messages import Catalog
from app.core.records import Record, RecordStatus, is_empty
from app.core.store import Store, browse

_TEXT = Catalog(
    {
        "version": ("记录版本", "Version"),
        "worker": ("采集员", "Worker"),
        "status": ("状态", "Status"),
        "printed": ("打印时间", "Printed"),
        "record": ("记录编号", "Record"),
        "continued": ("（续）", " (continued)"),
        "page": ("第 {n} 页 / 共 {m} 页", "Page {n} of {m}"),
        "untitled": ("（无标题）", "(untitled)"),
        "scan_hint": ("扫码打开记录", "Scan to open"),
        "footer": ("网格采集 GridCollect", "GridCollect"),
        "sheets_title": ("记录表", "Record sheets"),
        "grid": ("所属网格", "Grid"),
        "sign": (
            "以上信息经本人核对无误。核对签字：＿＿＿＿＿＿＿＿　　日期：＿＿＿＿年＿＿月＿＿日",
            "I have checked the above.   Signature: ____________________   Date: ____________",
        ),
    }
)


text = _TEXT.text


@dataclass(frozen=True)
class SheetRow:
    label: str
    value: str


@dataclass(frozen=True)
class SheetSection:
    title: str
    rows: tuple[SheetRow, ...]


@dataclass(frozen=True)
class Sheet:
    """One record as printed: display strings only (sensitive values already masked)."""

    record_id: str
    form_title: str
    title: str
    sections: tuple[SheetSection, ...]
    qr_text: str
    version: int
    worker: str
    status: str
    printed_at: str
    lang: str = "zh"
    grid: str = ""  # the grid's name (its code only when this device does not know it)


def masked_data(form: Form, data: Mapping[str, Any]) -> dict[str, Any]:
    """The record's values with every sensitive one replaced by its mask."""
    return {
        k: (mask_value(form.fields[k], v) if k in form.fields and form.fields[k].sensitive else v)
        for k, v in data.items()
    }


def build_sheet(
    store: Store,
    record: Record,
    *,
    key: bytes | None,
    lang: str = "zh",
    printed_at: dt.datetime | None = None,
) -> Sheet:
    """The display strings and QR payload for one record."""
    formset = store.formset
    form = formset.form(record.form)

    def ref_title(record_id: str) -> str | None:
        target = store.get(record_id)
        return target.title or text("untitled", lang) if target is not None else None

    grid_names = browse.grid_names(store)
    parts = revealing(form, formset)  # reduced to a year or a province (``masking.revealing``)
    grid = grid_names.get(record.grid or "", record.grid or "")

    def shown(f: Field) -> str:
        if f.id == form.roles.grid:  # a grid is read by its name, never its raw code
            code = str(record.data[f.id])
            return grid_names.get(code, code)
        value = record.data[f.id]
        if f.id in parts:  # a birth date or area code that would give the masked ID back
            return masked_part(formset, f, parts[f.id], value, lang)
        return display_value(formset, f, value, lang, ref_title=ref_title, survey=True)

    sections = []
    for section in form.sections:
        rows = tuple(
            SheetRow(f.label.get(lang), shown(f))
            for f in section.fields
            if not is_empty(record.data.get(f.id)) and rules.is_visible(f, record.data)
        )
        if rows:
            sections.append(SheetSection(section.title.get(lang), rows))
    version = scan.record_version(store, record)
    when = (printed_at or dt.datetime.now().astimezone()).strftime("%Y-%m-%d %H:%M")
    return Sheet(
        record_id=record.id,
        form_title=form.title.get(lang),
        title=form.title_of(masked_data(form, record.data)) or text("untitled", lang),
        sections=tuple(sections),
        qr_text=qrpayload.encode(record.id, record.form, version, key),
        version=version,
        worker=record.updated_by or record.created_by or "—",
        status=status_text(
            record.status if record.status in tuple(RecordStatus) else RecordStatus.DRAFT, lang
        ),
        printed_at=when,
        lang=lang,
        grid=grid,
    )


def build_sheets(
    store: Store,
    record_ids: Sequence[str],
    *,
    lang: str = "zh",
    key: bytes | None = None,
    printed_at: dt.datetime | None = None,
) -> list[Sheet]:
    """Sheets for existing records, in the given order (missing ids are skipped).

    ``key`` defaults to the deployment key, created on first use.
    """
    key = key if key is not None else scan.deployment_key(store, create=True)
    when = printed_at or dt.datetime.now().astimezone()
    records = (store.get(i) for i in record_ids)
    return [
        build_sheet(store, r, key=key, lang=lang, printed_at=when)
        for r in records
        if r is not None and not r.deleted
    ]


__all__ = [
    "Sheet",
    "SheetRow",
    "SheetSection",
    "build_sheet",
    "build_sheets",
    "masked_data",
    "text",
]
