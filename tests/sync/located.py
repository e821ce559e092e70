"""Houses, units and addresses with a location, made as the editor and an import make them:
through ``rules.coerce_record``, so the location is stored the way a device stores it (lon/lat
plus its Gauss-Krüger projection). Shared by the sync tests that carry located records."""

from __future__ import annotations

from typing import Any

from app.core import rules
from app.core.forms import FormSet
from tests.factories import credit_code, id_number

LOCATED_FORMS = ("house", "unit", "address")
GRID = "330106001001-01"


def where(i: int) -> str:
    """A point in Hangzhou (GK zone 40), different for every ``i``, as a person types it."""
    return f"{120.1 + (i % 997) * 0.0001:.7f}, {30.2 + (i % 991) * 0.0001:.7f}"


def raw_located(form: str, i: int, grid: str = GRID, place: int | None = None) -> dict[str, Any]:
    """The raw values of a complete located record, keyed by ``i`` (its natural key), at
    ``where(place)`` (default: ``where(i)``)."""
    common = {"grid": grid, "location": where(i if place is None else place)}
    if form == "house":
        return {
            **common,
            "house_code": f"H-{i:05d}",
            "address_text": f"幸福路{i}号",
            "is_rental": "否",
            "owner_id_type": "111",
            "owner_id_number": id_number(seq=(2 * i + 1) % 1000),
            "owner_name": "张三",
            "owner_phone": "13800138000",
        }
    if form == "unit":
        return {
            **common,
            "credit_code": credit_code(body=f"MA{i:07d}"),
            "name": f"幸福超市{i}",
            "unit_kind": "1",
            "address_text": f"幸福路{i}号",
        }
    if form == "address":
        return {
            **common,
            "address_code": f"A-{i:05d}",
            "element_type": "10",
            "full_address": f"幸福路{i}号",
            "region": "330106",
        }
    raise ValueError(form)


def located(
    formset: FormSet, form: str, i: int, grid: str = GRID, place: int | None = None
) -> dict[str, Any]:
    """``raw_located`` as stored: coerced like the editor and an import do."""
    return rules.coerce_record(formset.form(form), raw_located(form, i, grid, place), formset)


def location(formset: FormSet, place: int) -> dict[str, Any]:
    """The stored value of ``where(place)``: lon/lat and its Gauss-Krüger projection."""
    value = rules.coerce(formset.form("house").field("location"), where(place), formset)
    assert isinstance(value, dict) and "gk3" in value
    return value
