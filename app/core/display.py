"""How a stored value reads to a person: the one formatter behind sheets, scans, history, conflicts.

A value is shown by its field's type, never by the field's name: codes as their labels, booleans
as 是/否, references as the linked record's title, positions as longitude/latitude. Sensitive
values are masked unless the caller says the person must see them (choosing between two ID
numbers in a conflict needs both). The pseudo-fields a record's state holds besides its fields
(``_status``, ``_deleted``) read as words too.

A code reads as its own label ("大学本科毕业", not "大学本科教育大学本科毕业"): a child's label
already names it. Only a table whose labels repeat (the region table has a 西湖区 in 杭州 and in
南昌) needs the path from the top to say which code is meant ("浙江省杭州市西湖区").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from app.core import geo
from app.core.forms import Code, CodeTable, Field, FormSet
from app.core.masking import AREA, BIRTH, MASK, mask_part, mask_value
from app.core.messages import COMMON, lang_of
from app.core.records import DELETED_KEY, STATUS_KEY, RecordStatus, is_empty

RefTitle = Callable[[str], str | None]


def status_text(status: object, lang: str = "zh") -> str:
    """A record status in words ("草稿", "Complete"); an unknown one as stored."""
    if status in tuple(RecordStatus):
        return COMMON.text(f"status_{status}", lang)
    return str(status)


def field_label(fld: Field | None, name: str, lang: str = "zh") -> str:
    """A field's label; the pseudo-fields (``_status``, ``_deleted``) and fields a form no
    longer has by name."""
    if f"field.{name}" in COMMON:
        return COMMON.text(f"field.{name}", lang)
    return fld.label.get(lang) if fld is not None else name


def yes_no(value: object, lang: str = "zh") -> str:
    return COMMON.text("yes" if value else "no", lang)


@lru_cache(maxsize=256)
def _labels_repeat(table: CodeTable) -> bool:
    """True when two codes of the table share a Chinese label, so a label alone is ambiguous."""
    labels = [code.zh for code in table.codes.values()]
    return len(set(labels)) < len(labels)


def code_label(table: CodeTable, code: str, lang: str = "zh") -> str:
    """A code as a person reads it: its label, with its parents only when the label alone could
    mean several codes ("浙江省杭州市西湖区"); an unknown code as stored."""
    known = table.codes.get(code)
    if known is None:
        return code
    if not _labels_repeat(table):
        return known.label(lang)
    parts, seen = [], set()
    current: Code | None = known
    while current is not None and current.code not in seen:
        seen.add(current.code)
        parts.append(current.label(lang))
        current = table.codes.get(current.parent) if current.parent else None
    return "".join(reversed(parts)) if lang_of(lang) == "zh" else ", ".join(parts)


def coordinates_text(value: Mapping[str, Any], survey: bool = False) -> str:
    """WGS84 as stored; with ``survey`` also the CGCS2000 3-degree Gauss-Krüger figures
    surveyors use (printed sheets)."""
    if not survey:
        return f"{value.get('lon')}, {value.get('lat')}"
    try:
        point = geo.from_storage(value)
        gk = geo.to_gk3(point)
    except geo.GeoError:
        return f"{value.get('lon')}, {value.get('lat')}"
    return (
        f"{point.lon:.7f}, {point.lat:.7f} (WGS84)\n"
        f"CGCS2000 EPSG:{gk.epsg}  E {gk.easting:.2f}  N {gk.northing:.2f}"
    )


def display_value(
    formset: FormSet,
    fld: Field | None,
    value: Any,
    lang: str = "zh",
    *,
    field_id: str = "",
    masked: bool = True,
    ref_title: RefTitle | None = None,
    survey: bool = False,
) -> str:
    """A stored value as a person reads it; "" for an empty one (the caller says "（空）").

    ``fld`` is None for a pseudo-field or a field the form no longer has (``field_id`` names
    it). ``masked`` masks sensitive fields before anything else. ``ref_title`` gives a linked
    record's title (None: not on this device); without it a reference shows its id.
    ``survey`` adds the CGCS2000 figures to a position.
    """
    if is_empty(value):
        return ""
    if field_id == STATUS_KEY:
        return status_text(value, lang)
    if field_id == DELETED_KEY:
        return yes_no(value, lang)
    if fld is None:
        return yes_no(value, lang) if isinstance(value, bool) else str(value)
    if masked and fld.sensitive:
        return mask_value(fld, value)
    if fld.type in ("choice", "multi_choice") and fld.codes:
        table = formset.table(fld.codes)
        items = value if isinstance(value, list) else [value]
        sep = "、" if lang_of(lang) == "zh" else ", "
        return sep.join(code_label(table, str(v), lang) for v in items)
    if fld.type == "boolean" and isinstance(value, bool):
        return yes_no(value, lang)
    if fld.type == "coordinates" and isinstance(value, Mapping):
        return coordinates_text(value, survey)
    if fld.type == "reference":
        if ref_title is None:
            return str(value)
        return ref_title(str(value)) or COMMON.text("missing_ref", lang)
    if fld.type == "photo":
        return COMMON.text("photos", lang)
    return str(value)


__all__ = [
    "RefTitle",
    "code_label",
    "coordinates_text",
    "display_value",
    "field_label",
    "local_time",
    "status_text",
    "yes_no",
]


def masked_part(formset: FormSet, fld: Field, kind: str, value: Any, lang: str = "zh") -> str:
    """A value that would give a masked ID number back (``masking.revealing``), as every
    masked view shows it: a birth date's year, an area's province followed by ``****``."""
    if kind == BIRTH:
        return str(mask_part(BIRTH, value))
    if kind == AREA and fld.codes and fld.codes in formset.tables:
        table = formset.table(fld.codes)
        items = value if isinstance(value, list) else [value]
        provinces = [str(v)[:2] + "0000" for v in items]
        return "、".join(
            f"{code_label(table, p, lang) if p in table else p[:2]}{MASK * 4}" for p in provinces
        )
    return str(mask_part(kind, value))


def local_time(iso: str, *, seconds: bool = True) -> str:
    """A stored time (UTC, ISO 8601) in this machine's zone, as people read it; text that is
    no time, as it is. One rule for the history panel and the review view."""
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
