"""The validation engine: coercion keeps what was typed, validation gates only "complete"."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core import rules
from app.core.forms import FormSet
from tests.factories import credit_code, id_number, resident

TODAY = dt.date(2026, 11, 23)


def codes(formset: FormSet, form: str, data: dict) -> set[tuple[str, str]]:
    return {
        (i.field, i.code) for i in rules.validate(formset.form(form), data, formset, today=TODAY)
    }


def test_complete_resident_is_clean(formset: FormSet) -> None:
    assert codes(formset, "resident", resident()) == set()


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (id_number()[:-1] + ("0" if id_number()[-1] != "0" else "1"), "id.check_digit"),
        ("33010619850230123" + "0", None),  # 30 February: some reason about the date or check digit
        (id_number(dt.date(2030, 1, 1)), "id.future"),
        (id_number()[:10], "id.length"),
    ],
)
def test_bad_id_numbers_block_complete(formset: FormSet, value: str, code: str | None) -> None:
    found = codes(formset, "resident", resident(id_number=value))
    assert any(f == "id_number" for f, _ in found)
    if code:
        assert ("id_number", code) in found


def test_30_february_is_a_birth_date_error(formset: FormSet) -> None:
    from app.core import idnumber

    first17 = "33010619850230123"
    value = first17 + idnumber.check_char(first17)
    assert ("id_number", "id.birth_date") in codes(formset, "resident", resident(id_number=value))


def test_birth_date_and_gender_must_agree_with_id(formset: FormSet) -> None:
    found = codes(formset, "resident", resident(birth_date="1985-06-16", gender="2"))
    assert ("birth_date", "id.birth_mismatch") in found and (
        "gender",
        "id.gender_mismatch",
    ) in found


def test_derive_fills_birth_and_gender_only_when_empty(formset: FormSet) -> None:
    form = formset.form("resident")
    data = rules.derive_from_id(form, {"id_type": "111", "id_number": id_number(seq=124)})
    assert data["birth_date"] == "1985-06-15" and data["gender"] == "2"
    kept = rules.derive_from_id(form, {"id_type": "111", "id_number": id_number(), "gender": "2"})
    assert kept["gender"] == "2"


def test_passport_numbers_skip_gb11643(formset: FormSet) -> None:
    data = resident(population_type="3", id_type="414", id_number="E12345678", nationality="USA")
    assert not any(f == "id_number" for f, _ in codes(formset, "resident", data))


def test_legacy_15_digit_number_is_upgraded(formset: FormSet) -> None:
    full = id_number(dt.date(1965, 3, 4))
    legacy = full[:6] + full[8:17]
    form = formset.form("resident")
    assert rules.coerce(form.field("id_number"), legacy, formset) == full


def test_coercion_keeps_wrong_input(formset: FormSet) -> None:
    form = formset.form("resident")
    assert rules.coerce(form.field("birth_date"), "1985/6/5", formset) == "1985-06-05"
    assert rules.coerce(form.field("birth_date"), "1985年6月5日", formset) == "1985-06-05"
    assert rules.coerce(form.field("birth_date"), "not a date", formset) == "not a date"
    assert rules.coerce(form.field("ethnicity"), "汉族", formset) == "01"
    assert rules.coerce(form.field("ethnicity"), 1, formset) == "01"  # Excel ate the zero
    assert rules.coerce(form.field("ethnicity"), "01 汉族", formset) == "01"
    assert ("ethnicity", "code.unknown") in codes(formset, "resident", resident(ethnicity="77"))
    assert ("birth_date", "date.invalid") in codes(
        formset, "resident", resident(birth_date="not a date")
    )


def test_conditional_blocks(formset: FormSet) -> None:
    migrant = resident(population_type="2")
    migrant.pop("hukou_consistency")
    found = codes(formset, "resident", migrant)
    assert not any(f == "hukou_consistency" for f, _ in found)  # hidden block not required
    assert any(code == "required" for _, code in found)  # the 流动 block asks its own questions
    assert ("hukou_consistency", "required") in codes(
        formset, "resident", {**migrant, "population_type": "1"}
    )


def test_required_message_names_the_field(formset: FormSet) -> None:
    form = formset.form("resident")
    data = resident()
    del data["name"]
    issue = next(i for i in rules.validate(form, data, formset, today=TODAY) if i.field == "name")
    assert "姓名" in issue.message(form, "zh") and "Name" in issue.message(form, "en").title()


def test_credit_codes_with_every_prefix(formset: FormSet) -> None:
    for dept, cat in (("9", "1"), ("5", "1"), ("A", "1"), ("N", "2"), ("Y", "1"), ("1", "2")):
        data = {"credit_code": credit_code(dept, cat), "name": "某单位", "unit_kind": "1"}
        assert not any(f == "credit_code" for f, _ in codes(formset, "unit", data)), dept
    bad = credit_code()[:-1] + ("0" if credit_code()[-1] != "0" else "1")
    assert ("credit_code", "credit.check_digit") in codes(formset, "unit", {"credit_code": bad})


def test_phone_and_coordinates(formset: FormSet) -> None:
    assert any(f == "phone" for f, _ in codes(formset, "resident", resident(phone="12345")))
    assert not any(
        f == "phone" for f, _ in codes(formset, "resident", resident(phone="0571-87654321"))
    )


@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2026, 11, 1)), st.integers(0, 999))
def test_any_valid_id_validates_and_derives(birth: dt.date, seq: int) -> None:
    from app.core.forms import load_formset

    fs = load_formset()
    form = fs.form("resident")
    data = rules.derive_from_id(
        form, {"id_type": "111", "id_number": id_number(birth, seq)}, today=TODAY
    )
    assert data["birth_date"] == birth.isoformat() and data["gender"] == ("1" if seq % 2 else "2")
    issues = rules.validate(form, {**resident(), **data}, fs, today=TODAY)
    assert not [i for i in issues if i.field in ("id_number", "birth_date", "gender")]


@given(st.text(max_size=20))
def test_coerce_never_raises(text: str) -> None:
    from app.core.forms import load_formset

    fs = load_formset()
    for fld in fs.form("resident").fields.values():
        rules.coerce(fld, text, fs)


def test_coordinates_are_stored_with_their_gauss_kruger_projection(formset: FormSet) -> None:
    import pyproj

    fld = formset.form("house").field("location")
    stored = rules.coerce(fld, "116.397128, 39.916527", formset)
    assert stored["lon"] == 116.397128 and stored["gk3"]["epsg"] == 4527
    x, y = pyproj.Transformer.from_crs(4490, 4527, always_xy=True).transform(116.397128, 39.916527)
    assert abs(stored["gk3"]["x"] - x) < 0.01 and abs(stored["gk3"]["y"] - y) < 0.01
    assert rules.coerce(fld, "not a place", formset) == "not a place"  # kept for the draft


class _Asked(dict[str, list[tuple[float, float]]]):
    """Grid boundaries that note every grid asked for."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.asked: list[object] = []

    def get(self, key: object, default: object = None) -> object:
        self.asked.append(key)
        return super().get(key, default)


def test_the_location_warning_reads_a_boundary_only_for_a_point(formset: FormSet) -> None:
    """A record with a grid but no point (every resident, most houses) asks for no boundary:
    the editor reads it from the store when asked. With a point, the warning is as before."""
    square = [(120.0, 30.0), (120.01, 30.0), (120.01, 30.01), (120.0, 30.01)]
    house = formset.form("house")
    boundaries = _Asked({"G-SQ": square})
    assert rules.location_warnings(house, {"grid": "G-SQ"}, boundaries) == []
    assert rules.location_warnings(formset.form("resident"), resident(), boundaries) == []
    assert boundaries.asked == []
    outside = {"grid": "G-SQ", "location": {"lon": 120.05, "lat": 30.05}}
    [warning] = rules.location_warnings(house, outside, boundaries)
    assert warning.field == "location" and warning.severity == "warning"
    inside = {"grid": "G-SQ", "location": {"lon": 120.005, "lat": 30.005}}
    assert rules.location_warnings(house, inside, boundaries) == []
    assert boundaries.asked == ["G-SQ", "G-SQ"]
