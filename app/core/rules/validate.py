"""Checking a record against its form: ``validate`` lists what must be fixed before the record
can be marked complete, by field type and by the checks the form file declares."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from app.core import messages
from app.core.creditcode import CreditCodeError, parse_credit_code
from app.core.forms import Field, Form, FormSet, conditions
from app.core.idnumber import IdInfo, IdNumberError
from app.core.messages import lang_of
from app.core.phone import PhoneError, PostcodeError, parse_phone, parse_postcode
from app.core.rules.coerce import gb11643_applies, parse_date, parse_id
from app.core.textcheck import TEXT_ONLY

DEFAULT_TEXT_MAX = 200


@dataclass(frozen=True)
class Issue:
    """One thing to fix in one field. ``severity`` is "error" (blocks complete) or "warning"."""

    field: str
    code: str
    params: Mapping[str, Any] = dataclasses.field(
        default_factory=dict
    )  # Issue.field shadows field()
    severity: str = "error"

    def message(self, form: Form, lang: str = "zh") -> str:
        """The message that names the field and says what to fix."""
        label = form.fields[self.field].label.get(lang) if self.field in form.fields else self.field
        custom = self.params.get("custom_en" if lang_of(lang) == "en" else "custom_zh")
        if custom:  # the form file's own words for a pattern it declares
            return f"{label}: {custom}" if lang_of(lang) == "en" else f"{label}：{custom}"
        return messages.message(self.code, lang, label=label, **self.params)


def is_visible(fld: Field, data: Mapping[str, Any]) -> bool:
    """A field is shown (and checked) when its condition, and its section's, hold."""
    return conditions.evaluate(fld.show_when, data)


def is_required(fld: Field, data: Mapping[str, Any]) -> bool:
    """Required always, or when its ``required_when`` condition holds."""
    return fld.required or (
        fld.required_when is not None and conditions.evaluate(fld.required_when, data)
    )


def is_blank(value: object) -> bool:
    """Not filled, as far as ``validate`` goes: "", blank text or an empty list (None too)."""
    return (
        value is None
        or value == ""
        or value == []
        or (isinstance(value, str) and not value.strip())
    )


def validate(
    form: Form,
    data: Mapping[str, Any],
    formset: FormSet,
    *,
    today: date | None = None,
    exists: Callable[[str, str], bool] | None = None,
) -> list[Issue]:
    """Everything that stops ``data`` from being a complete record (empty list: it is clean).

    ``exists(form_id, record_id)`` checks references when given.
    """
    issues: list[Issue] = []
    for fld in form.fields.values():
        value = data.get(fld.id)
        empty = value is None or is_blank(value)
        if empty and not fld.required and fld.required_when is None:
            continue  # the common case: an optional field left blank
        if fld.show_when is not None and not conditions.evaluate(fld.show_when, data):
            continue
        if empty:
            if is_required(fld, data):
                issues.append(Issue(fld.id, "required"))
            continue
        issues.extend(check_value(fld, value, data, formset, today=today, exists=exists))
    return issues


def check_value(
    fld: Field,
    value: object,
    data: Mapping[str, Any],
    formset: FormSet,
    *,
    today: date | None = None,
    exists: Callable[[str, str], bool] | None = None,
) -> list[Issue]:
    """Issues with one filled value: its type, then the checks the form declares."""
    checker = _TYPE_CHECKS.get(fld.type)
    type_issues = checker(fld, value, data, formset, today) if checker else []
    if type_issues:
        return type_issues
    issues = declared_checks(fld, value, today)
    if (
        fld.type == "reference"
        and exists is not None
        and fld.target
        and not exists(fld.target, str(value))
    ):
        issues.append(Issue(fld.id, "reference.missing"))
    return issues


def check_values(
    fld: Field, values: Iterable[str], fs: FormSet, today: date | None
) -> dict[str, list[Issue]]:
    """``check_value`` of distinct filled texts of a field whose check reads the value alone
    (not an ID number): the texts with issues and their issues. A text field that declares
    nothing but its length is asked only about the texts longer than it, the one thing its
    check looks at (20 000 names: one ``len`` each, not 20 000 checks)."""
    declares = declares_checks(fld)
    if fld.type == "text" and not declares:
        limit = _text_limit(fld)
        values = [v for v in values if len(v) > limit]
    checker = _TYPE_CHECKS.get(fld.type)
    found = {}
    for value in values:
        # ``check_value`` without its reference look-up (none asked): the type, then the
        # declared checks where the form declares some
        issues = checker(fld, value, _NO_ROW, fs, today) if checker else []
        if not issues and declares:
            issues = declared_checks(fld, value, today)
        if issues:
            found[value] = issues
    return found


def declares_checks(fld: Field) -> bool:
    """The form file declares checks for the field beyond its length (``declared_checks``
    has something to do)."""
    return not _DECLARED.isdisjoint(fld.checks)


_NO_ROW: Mapping[str, Any] = MappingProxyType({})  # the row of a check that reads none of it


def _text_limit(fld: Field) -> int:
    return int(fld.checks.get("max_length", DEFAULT_TEXT_MAX))  # type: ignore[call-overload]


def _check_text(
    fld: Field, value: object, data: Mapping[str, Any], fs: FormSet, today: date | None
) -> list[Issue]:
    limit = _text_limit(fld)
    text = str(value)
    if len(text) > limit:
        return [Issue(fld.id, "max_length", {"max": limit, "value_len": len(text)})]
    return []


def _check_integer(fld: Field, value: object, *_: Any) -> list[Issue]:
    return (
        []
        if isinstance(value, int) and not isinstance(value, bool)
        else [Issue(fld.id, "not_integer")]
    )


def _check_decimal(fld: Field, value: object, *_: Any) -> list[Issue]:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return [] if ok else [Issue(fld.id, "not_number")]


def _check_date(
    fld: Field, value: object, data: Mapping[str, Any], fs: FormSet, today: date | None
) -> list[Issue]:
    if not isinstance(value, str) or parse_date(value) != value:
        return [Issue(fld.id, "date.invalid")]
    return []


def _check_choice(
    fld: Field, value: object, data: Mapping[str, Any], fs: FormSet, today: date | None
) -> list[Issue]:
    values = value if isinstance(value, list) else [value]
    table = fs.table(fld.codes) if fld.codes else None
    allowed = _allowed(fld.codes_filter) if fld.codes_filter else None
    for item in values:
        if (table is not None and str(item) not in table) or (
            allowed is not None and item not in allowed
        ):
            return [Issue(fld.id, "code.unknown", {"value": str(item)})]
    return []


@lru_cache(maxsize=256)
def _allowed(codes_filter: tuple[str, ...]) -> frozenset[str]:
    """A field's allowed codes as a set, made once (not once per value checked)."""
    return frozenset(codes_filter)


def _check_boolean(fld: Field, value: object, *_: Any) -> list[Issue]:
    return [] if isinstance(value, bool) else [Issue(fld.id, "boolean.invalid")]


def _check_phone(fld: Field, value: object, *_: Any) -> list[Issue]:
    try:
        parse_phone(str(value))
    except PhoneError as exc:
        return [Issue(fld.id, exc.code if hasattr(exc, "code") else "phone.invalid")]
    return []


def _check_postcode(fld: Field, value: object, *_: Any) -> list[Issue]:
    try:
        parse_postcode(str(value))
    except PostcodeError:
        return [Issue(fld.id, "postcode.invalid")]
    return []


def _check_id_number(
    fld: Field, value: object, data: Mapping[str, Any], fs: FormSet, today: date | None
) -> list[Issue]:
    """``id_number_issues`` with a batch of one (the record's own id type, birth, gender)."""
    return id_number_issues(fld, [value], IdRows.of(fld, [data]), fs, today)[0]


@dataclass(frozen=True)
class IdRows:
    """What an ID number's check reads of its rows besides the number, by row: the id type
    (None: the field has no id-type field) and the typed birth date and gender."""

    types: Sequence[Any]
    births: Sequence[Any]
    genders: Sequence[Any]

    @classmethod
    def of(cls, fld: Field, rows: Sequence[Mapping[str, Any]]) -> IdRows:
        """Read from whole rows."""
        birth, gender, kind = (
            fld.derives.get("birth_date"),
            fld.derives.get("gender"),
            fld.id_type_field,
        )
        return cls(
            [row.get(kind) for row in rows] if kind else [None] * len(rows),
            [row.get(birth) for row in rows] if birth else [None] * len(rows),
            [row.get(gender) for row in rows] if gender else [None] * len(rows),
        )


def id_number_issues(
    fld: Field, numbers: Sequence[object], rows: IdRows, fs: FormSet, today: date | None
) -> list[list[Issue]]:
    """The type check of an ID-number field for many filled values at once: GB 11643 where
    the row's id type says so (else the text check), then the typed birth date and gender
    against what the number says. Each distinct number is parsed once and each id type
    asked once; a row whose typed birth date and gender are the ones its number says (or
    blank) is done with a comparison."""
    holds = _gb11643_rows(fld, rows.types)
    texts = numbers if TEXT_ONLY.issuperset(map(type, numbers)) else [str(v) for v in numbers]
    parsed = {t: parse_id(t, today) for t in {t for t, h in zip(texts, holds, strict=True) if h}}
    found: list[list[Issue]] = []
    for text, hold, birth, gender in zip(texts, holds, rows.births, rows.genders, strict=True):
        if not hold:
            found.append(_check_text(fld, text, _NO_ROW, fs, today))
            continue
        info = parsed[text]
        if isinstance(info, IdNumberError):
            found.append([Issue(fld.id, info.code, dict(info.params))])
        elif (birth is None or birth == info.birth_date.isoformat()) and (
            gender is None or gender == info.gender
        ):
            found.append([])  # what the number says, or nothing typed: no mismatch
        else:
            found.append(_id_mismatches(fld, info, birth, gender, fs))
    return found


def _gb11643_rows(fld: Field, types: Sequence[Any]) -> list[bool]:
    """``gb11643_applies`` of each row's id type, asked once per distinct type."""
    if not fld.id_type_field:
        return [True] * len(types)
    field = fld.id_type_field
    if not {str, type(None)}.issuperset(map(type, types)):  # True == 1: row by row
        return [gb11643_applies(fld, {field: kind}) for kind in types]
    holds = {kind: gb11643_applies(fld, {field: kind}) for kind in set(types)}
    return [holds[kind] for kind in types]


def _id_mismatches(
    fld: Field, info: IdInfo, typed_birth: object, typed_gender: object, fs: FormSet
) -> list[Issue]:
    """A typed birth date or gender that is not what a valid ID number says."""
    issues: list[Issue] = []
    birth_field = fld.derives.get("birth_date")
    if (
        birth_field
        and isinstance(typed_birth, str)
        and parse_date(typed_birth) == typed_birth  # a non-date gets date.invalid only
        and typed_birth != info.birth_iso
    ):
        issues.append(Issue(birth_field, "id.birth_mismatch"))  # no birth date in params: logs
    gender_field = fld.derives.get("gender")
    if gender_field and str(typed_gender or "") in ("1", "2") and typed_gender != info.gender:
        expected = fs.table("gender").label(info.gender) if "gender" in fs.tables else info.gender
        issues.append(Issue(gender_field, "id.gender_mismatch", {"expected": expected}))
    return issues


def _check_credit_code(fld: Field, value: object, *_: Any) -> list[Issue]:
    try:
        parse_credit_code(str(value))
    except CreditCodeError as exc:
        return [Issue(fld.id, exc.code, dict(exc.params))]
    return []


def _check_coordinates(fld: Field, value: object, *_: Any) -> list[Issue]:
    if not isinstance(value, Mapping) or not {"lon", "lat"} <= set(value):
        return [Issue(fld.id, "coordinates.invalid")]
    lon, lat = value["lon"], value["lat"]
    if not (isinstance(lon, int | float) and isinstance(lat, int | float)):
        return [Issue(fld.id, "coordinates.invalid")]
    if not (73 <= lon <= 136 and 3 <= lat <= 54):
        return [Issue(fld.id, "coordinates.range")]
    return []


_TYPE_CHECKS: dict[str, Callable[..., list[Issue]]] = {
    "text": _check_text,
    "integer": _check_integer,
    "decimal": _check_decimal,
    "date": _check_date,
    "choice": _check_choice,
    "multi_choice": _check_choice,
    "boolean": _check_boolean,
    "phone": _check_phone,
    "postcode": _check_postcode,
    "id_number": _check_id_number,
    "credit_code": _check_credit_code,
    "coordinates": _check_coordinates,
}


# Types whose check reads the value alone (with the field, the form's code tables and today),
# never the rest of the record: a batch checks each distinct value of such a field once
# (``rules.batch``, which never passes ``exists``). An ID number reads its id-type, birth-date
# and gender fields.
RECORD_CHECKED_TYPES = frozenset({"id_number"})


# what ``declared_checks`` reads (``max_length`` is the text check's)
_DECLARED = frozenset({"min_length", "pattern", "min", "max", "scale", "not_future"})


def declared_checks(fld: Field, value: object, today: date | None) -> list[Issue]:
    """The ``checks`` block of the form file, applied to a value of the right type."""
    checks = fld.checks
    if _DECLARED.isdisjoint(checks):  # most fields declare none, or a max_length only
        return []
    issues: list[Issue] = []
    if isinstance(value, str):
        if "min_length" in checks and len(value) < int(checks["min_length"]):  # type: ignore[call-overload]
            issues.append(
                Issue(fld.id, "min_length", {"min": checks["min_length"], "value_len": len(value)})
            )
        pattern = checks.get("pattern")
        if pattern and not re.fullmatch(str(pattern), value):
            issues.append(Issue(fld.id, "pattern", _pattern_params(checks)))
    issues.extend(_range_checks(fld, value, checks))
    if fld.type == "decimal" and "scale" in checks and isinstance(value, float):
        places = -Decimal(str(value)).normalize().as_tuple().exponent  # type: ignore[operator]
        if places > int(checks["scale"]):  # type: ignore[call-overload]
            issues.append(Issue(fld.id, "scale", {"scale": checks["scale"]}))
    if fld.type == "date" and checks.get("not_future") and _after_today(value, today):
        issues.append(Issue(fld.id, "date.future"))
    return issues


def _after_today(value: object, today: date | None) -> bool:
    return isinstance(value, str) and value > (today or date.today()).isoformat()


def _range_checks(fld: Field, value: object, checks: Mapping[str, object]) -> list[Issue]:
    comparable = fld.type in ("integer", "decimal", "date")
    if not comparable or isinstance(value, bool):
        return []
    issues = []
    low, high = checks.get("min"), checks.get("max")
    try:
        prefix = "date." if fld.type == "date" else ""
        if low is not None and value < low:  # type: ignore[operator]
            issues.append(Issue(fld.id, prefix + "min", {"min": low}))
        if high is not None and value > high:  # type: ignore[operator]
            issues.append(Issue(fld.id, prefix + "max", {"max": high}))
    except TypeError:
        pass
    return issues


def _pattern_params(checks: Mapping[str, object]) -> dict[str, Any]:
    custom = checks.get("pattern_message")
    if isinstance(custom, Mapping):
        return {"custom_zh": custom.get("zh", ""), "custom_en": custom.get("en", "")}
    return {}
