"""Turning typed or imported values into stored values: ``coerce`` never refuses a value (what
a person typed is kept even when it is wrong, so a draft always saves); ``validate`` says what
must be fixed."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from app.core.forms import Field, Form, FormSet
from app.core.idnumber import IdInfo, IdNumberError, key_form, parse_id_number
from app.core.phone import PhoneError, PostcodeError, parse_phone, parse_postcode
from app.core.records import is_empty
from app.core.textnorm import normalize_key

_DATE_FORMS = (
    re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日?$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
)
_TRUE = {"true", "1", "y", "yes", "是", "有", "√", "✓", "t"}
_FALSE = {"false", "0", "n", "no", "否", "无", "×", "✗", "f"}
_LIST_SPLIT = re.compile(r"[,，;；、|/\s]+")


@lru_cache(maxsize=4096)
def parse_id(value: str, today: date | None) -> IdInfo | IdNumberError:
    """parse_id_number, memoised: an import derives from and then validates the same number."""
    try:
        return parse_id_number(value, today=today)
    except IdNumberError as exc:
        return exc


def parse_date(raw: object) -> str | None:
    """ISO date from the forms people use (2024-03-05, 2024/3/5, 20240305, 2024年3月5日)."""
    if type(raw) is str:  # nearly every value: text (an import checks each date twice)
        return _parse_date_text(raw)
    if isinstance(raw, datetime):
        return raw.date().isoformat()
    if isinstance(raw, date):
        return raw.isoformat()
    return _parse_date_text(str(raw))


@lru_cache(maxsize=8192)  # an import coerces, then checks, then compares each birth date
def _parse_date_text(raw: str) -> str | None:
    text = raw.strip()
    if len(text) == 10 and text.isascii() and text[4] == text[7] == "-":  # 2024-03-05
        try:  # the first form's match, read in C (digits checked: fromisoformat takes 2024-W10)
            if text[:4].isdigit() and text[5:7].isdigit() and text[8:].isdigit():
                return date.fromisoformat(text).isoformat()
        except ValueError:
            return None
    if " " in text:  # spreadsheets export "2024-03-05 00:00:00"
        text = text.split(" ", 1)[0]
    for pattern in _DATE_FORMS:
        m = pattern.match(text)
        if m:
            try:
                return date(int(m[1]), int(m[2]), int(m[3])).isoformat()
            except ValueError:
                return None
    return None


def _coerce_choice(fld: Field, raw: object, formset: FormSet) -> object:
    """A code from what people type or spreadsheets hold: the code, "01 汉族", the label,
    a unique label prefix ("汉" -> 汉族, "男" -> 男性), or a code Excel stripped of its zeros."""
    table = formset.table(fld.codes) if fld.codes else None
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    text = unicodedata.normalize("NFKC", str(raw)).strip()
    if table is None or text in table:
        return text
    head = text.split()[0] if text.split() else text
    if head in table:  # "01 汉族"
        return head
    lowered = text.lower()
    for code in table.codes.values():
        if text == code.zh or lowered == code.en.lower():
            return code.code
    prefixed = [c.code for c in table.codes.values() if c.zh.startswith(text) and not c.historical]
    if len(prefixed) == 1:
        return prefixed[0]
    width = len(next(iter(table.codes), ""))
    if text.isdigit() and len(text) < width:  # Excel dropped the leading zero
        padded = text.zfill(width)
        if padded in table:
            return padded
    return text


def coerce(fld: Field, raw: object, formset: FormSet) -> object:
    """The stored form of a raw value; a value that cannot be converted is kept as text."""
    if is_empty(raw):
        return None
    return coercer(fld.type)(fld, raw, formset)


Coercer = Callable[[Field, object, FormSet], object]


def coercer(kind: str) -> Coercer:
    """``coerce`` of a filled value of a field of type ``kind``: resolved once, a column of
    an import calls it for each distinct value without asking for the type again."""
    return _COERCERS.get(kind, _coerce_text)


def _coerce_number(fld: Field, raw: object, formset: FormSet) -> object:
    try:
        number = Decimal(str(raw).strip().replace(",", ""))
        if fld.type == "decimal":
            return float(number)
        return int(number) if number == number.to_integral_value() else str(raw).strip()
    except InvalidOperation:
        return str(raw).strip()


def _coerce_date(fld: Field, raw: object, formset: FormSet) -> object:
    return parse_date(raw) or str(raw).strip()


def _coerce_multi(fld: Field, raw: object, formset: FormSet) -> object:
    items = raw if isinstance(raw, list) else [p for p in _LIST_SPLIT.split(str(raw)) if p]
    return [_coerce_choice(fld, item, formset) for item in items]


def _coerce_text(fld: Field, raw: object, formset: FormSet) -> object:
    return str(raw).strip()


def _coerce_bool(raw: object) -> object:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return str(raw).strip()


def _coerce_identifier(fld: Field, raw: object) -> str:
    if fld.type == "id_number":
        return key_form(str(raw))  # the stored form is the key's form (15 digits upgraded)
    return normalize_key(str(raw))


def _coerce_coordinates(raw: object) -> object:
    """WGS84 lon/lat, plus the CGCS2000 3-degree Gauss-Krüger projection (zone from the
    longitude) that survey-based systems expect next to it.

    The projection is computed from the *stored* (rounded) lon/lat, so a stored value is a
    fixed point of this function and ``coordinates_ok`` can recompute it exactly."""
    from app.core import geo  # geo pulls in pyproj: load it only when coordinates appear

    try:
        if isinstance(raw, Mapping) and "lon" in raw and "lat" in raw:
            point = geo.LonLat(float(raw["lon"]), float(raw["lat"]))
        else:
            point = geo.parse_coordinates(str(raw))
    except (TypeError, ValueError, geo.GeoError):
        return raw if isinstance(raw, Mapping) else str(raw).strip()
    stored: dict[str, Any] = dict(geo.to_storage(point))
    gk3 = _gk3_of(stored["lon"], stored["lat"])
    if gk3 is not None:  # None outside China: validate() says so; no projection to offer
        stored["gk3"] = gk3
    return stored


_COERCERS: dict[str, Coercer] = {
    "integer": _coerce_number,
    "decimal": _coerce_number,
    "date": _coerce_date,
    "boolean": lambda fld, raw, formset: _coerce_bool(raw),
    "choice": _coerce_choice,
    "multi_choice": _coerce_multi,
    "id_number": lambda fld, raw, formset: _coerce_identifier(fld, raw),
    "credit_code": lambda fld, raw, formset: _coerce_identifier(fld, raw),
    "phone": lambda fld, raw, formset: _try(parse_phone, raw, PhoneError),
    "postcode": lambda fld, raw, formset: _try(parse_postcode, raw, PostcodeError),
    "coordinates": lambda fld, raw, formset: _coerce_coordinates(raw),
}
GK3_KEYS = frozenset({"epsg", "x", "y"})
GK3_TOLERANCE_M = 0.01  # PROJ versions differ in the last digits; a moved point moves metres


def _gk3_of(lon: float, lat: float) -> dict[str, Any] | None:
    """The stored projection of a stored point, or None when it has none (outside China)."""
    from app.core import geo

    try:
        gk = geo.to_gk3(geo.LonLat(lon, lat))
    except geo.GeoError:
        return None
    return {"epsg": gk.epsg, "x": round(gk.easting, 3), "y": round(gk.northing, 3)}


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def coordinates_ok(value: Mapping[str, Any]) -> bool:
    """Whether an object is a coordinates value as the store keeps it and the wire carries it
    (PROTOCOL.md §5.2): numbers ``lon`` and ``lat``, and optionally ``gk3`` =
    ``{"epsg", "x", "y"}``, which must then be the projection of that lon/lat.

    lon/lat is the one source of truth; ``gk3`` is a copy derived from it by
    ``_coerce_coordinates``. Checking the copy (instead of trusting or stripping it) keeps
    device and platform holding byte-equal values that can never contradict each other.
    A value without ``gk3`` (outside China, or typed by an older app) is fine."""
    if not {"lon", "lat"} <= set(value) <= {"lon", "lat", "gk3"}:
        return False
    lon, lat = value["lon"], value["lat"]
    if not (_is_number(lon) and _is_number(lat)):
        return False
    if "gk3" not in value:
        return True
    gk3 = value["gk3"]
    if not isinstance(gk3, Mapping) or set(gk3) != GK3_KEYS:
        return False
    epsg, x, y = gk3["epsg"], gk3["x"], gk3["y"]
    if not (
        isinstance(epsg, int) and not isinstance(epsg, bool) and _is_number(x) and _is_number(y)
    ):
        return False
    expected = _gk3_of(float(lon), float(lat))
    return (
        expected is not None
        and expected["epsg"] == epsg
        and abs(expected["x"] - x) <= GK3_TOLERANCE_M
        and abs(expected["y"] - y) <= GK3_TOLERANCE_M
    )


def _try(parse: Callable[[str], str], raw: object, error: type[Exception]) -> str:
    try:
        return parse(str(raw))
    except error:
        return str(raw).strip()


def coerce_record(form: Form, raw: Mapping[str, Any], formset: FormSet) -> dict[str, Any]:
    """Coerce every known field; unknown keys are dropped (the caller reports them)."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        fld = form.fields.get(key)
        if fld is not None:
            coerced = coerce(fld, value, formset)
            if coerced is not None:
                out[key] = coerced
    return out


def apply_defaults(form: Form, data: Mapping[str, Any]) -> dict[str, Any]:
    """Fill declared defaults for fields the record does not have yet."""
    out = dict(data)
    for fld in form.fields.values():
        if fld.default is not None and is_empty(out.get(fld.id)):
            out[fld.id] = fld.default
    return out


def gb11643_applies(fld: Field, data: Mapping[str, Any]) -> bool:
    """The field holds a GB 11643 ID number (its id-type field says so, or there is none)."""
    if not fld.id_type_field:
        return True
    id_type = data.get(fld.id_type_field)
    return id_type is None or str(id_type) in fld.gb11643_types


def derive_from_id(
    form: Form,
    data: Mapping[str, Any],
    today: date | None = None,
    formset: FormSet | None = None,
) -> dict[str, Any]:
    """Birth date, gender and (with the formset's code tables) 户籍地 filled from a valid ID
    number where the form declares ``derives``.

    Only empty fields are filled; a typed value that disagrees is left for ``validate`` to flag.
    """
    out = dict(data)
    for target, value in id_derivations(form, data, today, formset).items():
        if is_empty(out.get(target)):
            out[target] = value
    return out


def id_derivations(
    form: Form,
    data: Mapping[str, Any],
    today: date | None = None,
    formset: FormSet | None = None,
) -> dict[str, Any]:
    """What the valid ID numbers of ``data`` say for their ``derives`` targets (target field
    -> value), whatever those fields hold now. The area code counts only when it is a current
    region of the target's code table (needs ``formset``)."""
    out: dict[str, Any] = {}
    for fld in form.fields.values():
        if fld.type == "id_number" and fld.derives:
            out.update(_derived(fld, form, data, today, formset))
    return out


def derive_one(
    fld: Field,
    data: Mapping[str, Any],
    out: dict[str, Any],
    today: date | None,
    form: Form | None = None,
    formset: FormSet | None = None,
) -> None:
    """``derive_from_id`` for one ID-number field with ``derives``: fills the empty ones of
    ``out`` in place (a batch of imported rows runs it only for the fields that derive)."""
    for target, value in _derived(fld, form, data, today, formset).items():
        if is_empty(out.get(target)):
            out[target] = value


def _derived(
    fld: Field,
    form: Form | None,
    data: Mapping[str, Any],
    today: date | None,
    formset: FormSet | None,
) -> dict[str, Any]:
    """What one valid ID number says of its ``derives`` targets: birth date, gender and (with
    the formset's code tables, its area code a current region) 户籍地."""
    if not gb11643_applies(fld, data):
        return {}
    info = parse_id(str(data.get(fld.id) or ""), today)
    if isinstance(info, IdNumberError):
        return {}
    derived = {"birth_date": info.birth_date.isoformat(), "gender": info.gender}
    region = fld.derives.get("region")
    if region and formset is not None and form is not None and region in form.fields:
        codes = formset.table(form.fields[region].codes or "").codes
        known = codes.get(info.area_code)
        if known is not None and not known.historical:
            derived["region"] = info.area_code
    return {target: derived[role] for role, target in fld.derives.items() if role in derived}
