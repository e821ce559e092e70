"""Issue 15: a masked export must not leave an ID number guessable.

The attacker here is the test's own: it reads a masked CSV and counts the ID numbers that fit
every column of a row (GB 11643 check character included). It assumes the worst for the area
code (known exactly, e.g. from the free-text address) and uses what the row shows of the
birth date. With the birth date in clear (before the fix) about 9 numbers fit; now thousands.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from statistics import median

from app.core.forms import FormSet
from app.core.masking import AREA, BIRTH, looks_masked, mask_record, revealing
from app.core.store import Store
from app.core.transfer import export_file
from tests.factories import id_number, resident

WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CHECK = "10X98765432"


def candidates(masked_id: str, birth_shown: str, area: str) -> int:
    """How many valid ID numbers fit a masked one, a shown birth date and a known area."""
    head, tail = masked_id[:3], masked_id[-2:]
    if not area.startswith(head):
        return 0
    d17, check = tail[0], tail[1]
    if "*" in birth_shown:  # only the year is shown
        year = int(birth_shown[:4])
        start = dt.date(year, 1, 1)
        days = [start + dt.timedelta(n) for n in range((dt.date(year + 1, 1, 1) - start).days)]
    else:
        days = [dt.date.fromisoformat(birth_shown)]
    count = 0
    for day in days:
        for d15 in range(10):
            for d16 in range(10):
                first17 = f"{area}{day:%Y%m%d}{d15}{d16}{d17}"
                total = sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
                count += CHECK[total % 11] == check
    return count


def exported_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def people(store: Store, n: int = 12) -> list[dict[str, str]]:
    made = []
    for i in range(n):
        born = dt.date(1950, 1, 1) + dt.timedelta(days=1733 * i + 17)
        data = resident(birth=born, seq=100 + 37 * i)
        store.save("resident", data)
        made.append(data)
    return made


def test_a_masked_export_leaves_thousands_of_candidates(
    tmp_path: Path, store: Store, formset: FormSet
) -> None:
    made = people(store)
    out = tmp_path / "masked.csv"
    export_file(out, formset.form("resident"), store, header="id")
    rows = exported_rows(out)
    assert len(rows) == len(made)
    by_key = {(d["id_number"][-2:], d["birth_date"][:4]): d for d in made}
    assert len(by_key) == len(made)  # the test's people are told apart by what stays shown
    counts = []
    for row in rows:
        data = by_key[(row["id_number"][-2:], row["birth_date"][:4])]
        assert data["id_number"] not in row.values()
        assert row["birth_date"].endswith("-**-**") and row["birth_date"] != data["birth_date"]
        assert row["hukou_region"] == "33****" and row["residence_region"] == "33****"
        counts.append(candidates(row["id_number"], row["birth_date"], data["hukou_region"]))
    assert min(counts) >= 1000, counts
    # The same attacker against the old masking (birth date in clear) finds ~9: it works.
    for data in made[:3]:
        old = candidates(
            data["id_number"][:3] + "*" * 13 + data["id_number"][-2:],
            data["birth_date"],
            data["hukou_region"],
        )
        assert 1 <= old <= 12
    assert median(counts) > 3000


def test_the_unmasked_export_keeps_every_value(
    tmp_path: Path, store: Store, formset: FormSet
) -> None:
    made = people(store, 2)
    out = tmp_path / "full.csv"
    export_file(out, formset.form("resident"), store, header="id", unmasked=True)
    rows = {r["id_number"]: r for r in exported_rows(out)}
    for data in made:
        row = rows[data["id_number"]]
        assert (row["birth_date"], row["hukou_region"]) == (data["birth_date"], "330106")


def test_revealing_fields_come_from_types_roles_and_code_standards(formset: FormSet) -> None:
    found = revealing(formset.form("resident"), formset)
    assert found["birth_date"] == BIRTH
    assert {k for k, v in found.items() if v == AREA} >= {"hukou_region", "residence_region"}
    data = resident(birth=dt.date(1990, 5, 17))
    shown = mask_record(formset.form("resident"), formset, data)
    assert shown["birth_date"] == "1990-**-**" and shown["hukou_region"] == "33****"
    assert (
        shown["id_number"]
        == id_number(dt.date(1990, 5, 17))[:3] + "*" * 13 + data["id_number"][-2:]
    )
    assert shown["name"] == data["name"]  # not sensitive, not revealing: unchanged


def test_every_mask_an_export_writes_is_recognised_and_real_values_are_not(
    formset: FormSet,
) -> None:
    """``looks_masked`` (what an import refuses) knows every mask ``mask_record`` writes."""
    samples = {
        "id_number": ["330106198506151233", "E12345678", "X1"],
        "credit_code": ["91330106MA2B3C4D5D"],
        "phone": ["13800138000", "0571-87654321", "110"],
        "text": ["JZZ330106001", "张三", "a"],
        "choice": ["01"],
        "multi_choice": [["01", "03"]],
        "boolean": [True],
    }
    seen = 0
    for form in formset.forms.values():
        parts = revealing(form, formset)
        for fld in form.fields.values():
            kind = parts.get(fld.id)
            if not fld.sensitive and kind is None:
                continue
            by_kind = {BIRTH: ["1985-06-15"], AREA: ["330106"]}
            values = by_kind[kind] if kind else samples[fld.type]
            for value in values:
                shown = mask_record(form, formset, {fld.id: value})[fld.id]
                shown = ";".join(shown) if isinstance(shown, list) else str(shown)
                assert looks_masked(fld, kind, shown), (form.id, fld.id, shown)
                assert not looks_masked(fld, kind, str(value)), (form.id, fld.id, value)
                seen += 1
    assert seen > 20
    (permit,) = [f for f in formset.form("resident").fields.values() if f.id == "permit_number"]
    assert not looks_masked(permit, None, "A*B")  # a star inside a value is not a mask
