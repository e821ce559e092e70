"""A first-generation 15-digit ID number and its 18-digit form are one person: the duplicate
guard finds either from the other, whichever one the store holds, and an older store's keys
are re-computed on its first open (``schema.ID15_KEYS``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from app.core import dedup
from app.core.forms import FormSet
from app.core.idnumber import known_area_codes, upgrade_15
from app.core.store import Store, schema
from app.core.store.derive import derive
from tests.core.test_record_keys import expected_keys, held_keys
from tests.factories import id_number, id_number_15, resident

AREAS = sorted(known_area_codes())
FIFTEEN = st.builds(
    lambda area, born, seq: f"{area}{born:%y%m%d}{seq:03d}",
    st.sampled_from(AREAS),
    st.dates(dt.date(1900, 1, 1), dt.date(1999, 12, 31)),
    st.integers(0, 999),
)


def test_a_stored_15_digit_number_is_registered_for_its_18_digit_form(store: Store) -> None:
    old = store.save("resident", resident(id_number=id_number_15(seq=5), seq=5))
    typed = {"id_type": "111", "id_number": id_number(seq=5)}
    assert [(c.record_id, c.exact) for c in dedup.check(store, "resident", typed)] == [
        (old.id, True)
    ]
    assert dedup.check(store, "resident", {**typed, "id_number": id_number(seq=7)}) == []


def test_a_typed_15_digit_number_finds_the_stored_18_digit_one(store: Store) -> None:
    new = store.save("resident", resident(seq=5))
    typed = {"id_type": "111", "id_number": id_number_15(seq=5)}
    assert store.find_by_key("resident", typed) == [new.id]
    assert store.find_by_key("resident", {**typed, "id_number": id_number_15(seq=7)}) == []


@given(FIFTEEN, FIFTEEN)
def test_both_generations_give_one_key_and_different_people_differ(
    formset: FormSet, one: str, two: str
) -> None:
    form = formset.form("resident")

    def keys(number: str) -> tuple[str, ...]:
        return derive(form, {"id_type": "111", "id_number": number}).keys

    assert keys(one) == keys(upgrade_15(one)) == keys(one[:6] + " " + one[6:])
    assert (keys(one) == keys(two)) == (one == two)
    assert (keys(one) == keys(upgrade_15(two))) == (one == two)


def test_an_older_store_re_keys_its_15_digit_numbers_on_first_open(
    tmp_path: Path, formset: FormSet
) -> None:
    path = tmp_path / "old.sqlite"
    old = Store(path, formset)
    fifteen = old.save("resident", resident(id_number=id_number_15(seq=5), seq=5))
    eighteen = old.save("resident", resident(seq=9))
    # as an older app keyed it: the 15 digits as typed
    old.conn.execute(
        "UPDATE record_keys SET key = ? WHERE rid = (SELECT rid FROM records WHERE id = ?)",
        (f"111|{id_number_15(seq=5)}", fifteen.id),
    )
    old.conn.execute(f"PRAGMA user_version = {schema.MIGRATIONS.index(schema.ID15_KEYS)}")
    old.close()
    again = Store(path, formset)
    try:
        assert again.conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        assert held_keys(again) == expected_keys(again)
        typed = {"id_type": "111", "id_number": id_number(seq=5)}
        assert again.find_by_key("resident", typed) == [fifteen.id]
        assert again.find_by_key("resident", resident(seq=9)) == [eighteen.id]
    finally:
        again.close()


def test_a_search_by_either_generation_of_the_number_finds_the_person(store: Store) -> None:
    """Search-as-you-type: the whole old number finds the record holding the new one, and the
    whole new number (born in the 1900s) the record holding the old one; another finds none."""
    old = store.save("resident", resident(id_number=id_number_15(seq=5), seq=5))
    new = store.save("resident", resident(seq=7))
    assert [s.id for s in store.search(id_number(seq=5))] == [old.id]
    assert [s.id for s in store.search(id_number_15(seq=7))] == [new.id]
    assert [s.id for s in store.search(id_number_15(seq=5))] == [old.id]
    assert store.search(id_number(seq=9)) == [] == store.search(id_number_15(seq=9))


@given(FIFTEEN)
def test_each_generation_of_a_number_is_the_other_s_other(number: str) -> None:
    from app.core.search import other_generation

    assert other_generation(number) == (upgrade_15(number),)
    assert other_generation(upgrade_15(number)) == (number,)
