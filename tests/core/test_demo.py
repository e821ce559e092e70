"""The demo community: deterministic, valid, plausible, sized as asked, cancellable."""

from __future__ import annotations

import itertools
import json
import tempfile
import uuid
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core import demo, rules
from app.core.creditcode import parse_credit_code
from app.core.forms import FormSet
from app.core.geo import LonLat, point_in_polygon
from app.core.idnumber import parse_id_number
from app.core.store import Store

TODAY = demo.AS_OF
Rec = tuple[str, str, str, dict[str, Any]]  # (id, form, status, data)


def _records(store: Store) -> list[Rec]:
    rows = store.conn.execute("SELECT id, form, status, data FROM records ORDER BY id")
    return [(rid, form, status, json.loads(data)) for rid, form, status, data in rows]


def _build(
    path: Path, formset: FormSet, size: int, seed: int
) -> tuple[demo.DemoSummary, list[Rec], list]:
    store = Store(path, formset)
    try:
        summary = demo.generate(store, size=size, seed=seed)
        return summary, _records(store), store.grids()
    finally:
        store.close()


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory, formset: FormSet) -> Any:
    """One mid-sized demo (about 3000 records) shared by the read-only checks."""
    store = Store(tmp_path_factory.mktemp("demo") / "demo.sqlite", formset)
    summary = demo.generate(store, size=3000, seed=11)
    yield store, summary, _records(store)
    store.close()


def _by_form(recs: list[Rec], form: str) -> list[Rec]:
    return [r for r in recs if r[1] == form]


def _age(data: dict[str, Any]) -> float:
    return (TODAY - date.fromisoformat(data["birth_date"])).days / 365.25


# -- determinism -----------------------------------------------------------------------------


def test_same_seed_gives_the_same_records_ids_and_grids(tmp_path: Path, formset: FormSet) -> None:
    first = _build(tmp_path / "a.sqlite", formset, 400, 7)
    second = _build(tmp_path / "b.sqlite", formset, 400, 7)
    assert first[1] == second[1]  # ids, forms, statuses and data
    assert first[2] == second[2]  # grid polygons, names and workers
    assert first[0] == second[0]
    assert all(uuid.UUID(rid).version == 7 for rid, *_ in first[1])


def test_another_seed_gives_other_people(tmp_path: Path, formset: FormSet) -> None:
    _, seven, _ = _build(tmp_path / "a.sqlite", formset, 400, 7)
    _, eight, _ = _build(tmp_path / "b.sqlite", formset, 400, 8)
    numbers = [{r[3]["id_number"] for r in _by_form(recs, "resident")} for recs in (seven, eight)]
    assert len(numbers[0] & numbers[1]) < 0.05 * len(numbers[0])
    assert {r[0] for r in seven}.isdisjoint(r[0] for r in eight)


# -- size ------------------------------------------------------------------------------------


@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32 - 1), size=st.sampled_from([400, 900, 1500]))
def test_size_is_met_within_15_percent(formset: FormSet, seed: int, size: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        summary, recs, grids = _build(Path(tmp) / "demo.sqlite", formset, size, seed)
    assert abs(summary.total - size) <= 0.15 * size
    assert summary.total == len(recs)
    assert Counter(r[1] for r in recs) == Counter({k: v for k, v in summary.counts.items() if v})
    assert summary.grids == [g.code for g in grids]


def test_counts_match_the_store(town: Any) -> None:
    store, summary, recs = town
    assert abs(summary.total - 3000) <= 450
    for form, count in summary.counts.items():
        assert store.count(form) == count > 0
    assert summary.drafts == sum(1 for r in recs if r[2] == "draft")
    assert 0 < summary.drafts < 0.08 * summary.total


# -- validity --------------------------------------------------------------------------------


def test_every_complete_record_validates_clean(town: Any, formset: FormSet) -> None:
    _, _, recs = town
    ids = {rid: form for rid, form, *_ in recs}

    def exists(form: str, rid: str) -> bool:
        return ids.get(rid) == form

    problems = []
    for _, form, status, data in recs:
        if status == "complete":
            issues = rules.validate(formset.form(form), data, formset, today=TODAY, exists=exists)
            problems += [(form, i.field, i.code) for i in issues]
    assert problems == []
    assert {status for _, _, status, _ in recs} == {"complete", "draft"}


def test_every_id_number_is_valid_and_agrees_with_birth_date_and_gender(town: Any) -> None:
    _, _, recs = town
    checked = 0
    for _, form, _, data in recs:
        for prefix in ("", "owner_", "legal_rep_", "head_"):
            number = data.get(f"{prefix}id_number")
            if number is None or data.get(f"{prefix}id_type", "111") != "111":
                continue
            info = parse_id_number(number, today=TODAY)
            checked += 1
            if form == "resident" and not prefix:
                assert info.birth_date.isoformat() == data["birth_date"]
                assert info.gender == data["gender"]
    assert checked > 1500
    residents = [r[3]["id_number"] for r in _by_form(recs, "resident")]
    assert len(set(residents)) == len(residents)


def test_every_credit_code_is_valid_and_every_kind_is_there(town: Any) -> None:
    _, _, recs = town
    units = [r[3] for r in _by_form(recs, "unit")]
    kinds = Counter()
    for unit in units:
        info = parse_credit_code(unit["credit_code"])
        kinds[info.department + info.category] += 1
        assert (unit["unit_kind"] == "3") == (info.department == "5")
    assert {"91", "92", "93", "51", "52", "N2", "Y1"} <= set(kinds)
    assert kinds["92"] > kinds["51"]
    assert len({u["credit_code"] for u in units}) == len(units)


# -- plausibility ----------------------------------------------------------------------------


_MALE = {"11", "21", "22", "23", "24", "25", "51", "41"}
_FEMALE = {"12", "31", "32", "33", "34", "35", "38", "52", "42"}


def test_households_have_one_head_and_plausible_relations(town: Any) -> None:
    _, _, recs = town
    houses = {r[0]: r[3] for r in _by_form(recs, "house")}
    households: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _, _, _, p in _by_form(recs, "resident"):
        if p["population_type"] == "1":
            households[p["house_ref"]].append(p)
    assert len(households) > 100
    for house_id, members in households.items():
        heads = [p for p in members if p["household_relation"] == "02"]
        assert len(heads) == 1
        head = heads[0]
        assert {(p["head_id_number"], p["head_name"]) for p in members} == {
            (head["id_number"], head["name"])
        }
        assert len({p["household_number"] for p in members}) == 1
        if not houses[house_id]["is_rental"]:
            assert houses[house_id]["owner_id_number"] == head["id_number"]
        for p in members:
            rel, gap = p["household_relation"], _age(head) - _age(p)
            assert p["gender"] == ("1" if rel in _MALE else "2" if rel in _FEMALE else p["gender"])
            if rel == "10":
                assert p["gender"] != head["gender"] and abs(gap) <= 8
            elif rel[0] in "23" and rel != "38":
                assert gap >= 20
            elif rel[0] == "4":
                assert gap >= 40
            elif rel[0] == "5":
                assert gap <= -20


def test_population_mix(town: Any) -> None:
    _, _, recs = town
    houses = {r[0]: r[3] for r in _by_form(recs, "house")}
    people = [r[3] for r in _by_form(recs, "resident")]
    kinds = Counter(p["population_type"] for p in people)
    assert 0.15 <= kinds["2"] / len(people) <= 0.25
    assert kinds["1"] > 0.6 * len(people)
    assert 0 < kinds["3"] < 0.03 * len(people) and 0 < kinds["4"] < 0.03 * len(people)
    for p in people:
        if p["population_type"] == "2":  # migrants rent, and come from outside Zhejiang
            assert houses[p["house_ref"]]["is_rental"] and p["residence_type"] == "02"
            assert p["id_number"][:6] == p["hukou_region"] and not p["hukou_region"].startswith(
                "33"
            )
        elif p["population_type"] == "3":
            assert p["id_type"] == "414" and p["nationality"] and p["foreign_surname"].isupper()
        elif p["population_type"] == "4":
            assert p["id_type"] == "117" and _age(p) < 8
    with_phone = sum(1 for p in people if p.get("phone"))
    assert 0.5 * len(people) < with_phone < len(people)


def test_references_resolve_and_grids_agree(town: Any) -> None:
    store, summary, recs = town
    by_id = {rid: (form, data) for rid, form, _, data in recs}
    grid_codes = {g.code for g in store.grids()}
    assert grid_codes == set(summary.grids)
    for _, form, _, data in recs:
        assert data["grid"] in grid_codes
        if form in ("resident", "unit"):
            house_form, house = by_id[data["house_ref"]]
            assert house_form == "house" and house["grid"] == data["grid"]
        if form == "house":
            address_form, address = by_id[data["address_ref"]]
            assert address_form == "address" and address["full_address"] == data["address_text"]
            assert address["element_type"] == "62"
    for form, key in (("address", "address_code"), ("house", "house_code")):
        codes = [r[3][key] for r in _by_form(recs, form)]
        assert len(set(codes)) == len(codes)  # natural keys are unique
    one_house = next(
        rid for rid, (form, _) in by_id.items() if form == "house" and store.referrers(rid)
    )
    assert all(by_id[src][1]["house_ref"] == one_house for src in store.referrers(one_house))


def test_grids_tile_without_overlap_and_contain_their_buildings(town: Any) -> None:
    store, _, recs = town
    grids = store.grids()
    for _, members in itertools.groupby(grids, key=lambda g: g.community_code):
        polygons = [g.polygon for g in members]
        for i, poly in enumerate(polygons):
            centroid = LonLat(sum(x for x, _ in poly) / 4, sum(y for _, y in poly) / 4)
            assert point_in_polygon(centroid, poly) == "inside"
            for j, other in enumerate(polygons):
                if i != j:
                    assert point_in_polygon(centroid, other) == "outside"
                    assert all(point_in_polygon(LonLat(*v), other) != "inside" for v in poly)
    polygon_of = {g.code: g.polygon for g in grids}
    for *_, data in recs:
        if "location" in data:
            where = LonLat(data["location"]["lon"], data["location"]["lat"])
            assert point_in_polygon(where, polygon_of[data["grid"]]) == "inside"
    codes = [g.community_code for g in grids]
    assert all(len(c) == 12 and c.startswith("330106") for c in codes) and len(set(codes)) >= 2


# -- running ---------------------------------------------------------------------------------


def test_progress_reaches_the_total(store: Store) -> None:
    calls: list[tuple[int, int]] = []
    summary = demo.generate(
        store, size=400, seed=3, progress=lambda done, total: calls.append((done, total))
    )
    assert calls[-1] == (summary.total, summary.total)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert all(done <= total for done, total in calls)


def test_cancel_keeps_whole_consistent_batches(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo.street, "BATCH", 150)  # where the run reads it
    asked = itertools.count()
    summary = demo.generate(store, size=1000, seed=5, cancel=lambda: next(asked) >= 2)
    assert summary.cancelled
    assert 300 <= summary.total == store.count() < 900
    recs = _records(store)
    ids = {rid for rid, *_ in recs}
    assert all(r[3]["house_ref"] in ids for r in recs if r[1] in ("resident", "unit"))
    assert all(r[3]["address_ref"] in ids for r in recs if r[1] == "house")
    assert {g.code for g in store.grids()} == set(summary.grids) == {r[3]["grid"] for r in recs}


def test_refuses_a_store_that_has_records(store: Store) -> None:
    store.save("address", {"full_address": "某地"}, status="draft")
    with pytest.raises(ValueError, match="empty"):
        demo.generate(store, size=300)
    assert store.count() == 1
