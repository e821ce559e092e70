"""A pulled page of records new to the device is derived a form at a time
(``Store.derive_page``): the form's declarations are read once per page, not once per record.
Against the derivation one record at a time, as it was before (``_derive_one`` below, the code
of a9c79e6 over the name terms and sort keys of 37610e2: ``tests.core.test_terms_plain``), the
page gives the same keys, terms, person rows, titles and sort keys, and a pull leaves the same
rows and finds the same records."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core import ids
from app.core.forms import Form, FormSet
from app.core.search import address_text, char_pinyin
from app.core.store import Store
from app.core.store.derive import Derived, derive_page
from app.core.textnorm import normalize_key
from sync import replica
from tests.core.test_terms_plain import plain_name_terms, plain_record_terms, plain_sort_key
from tests.factories import resident
from tests.sync.test_pull_restamp import TABLES
from tests.sync.test_replica import SCOPE, page, pulled


def _key_one(data: Mapping[str, Any], fields: Sequence[str]) -> str | None:
    parts = []
    for field_id in fields:
        value = data.get(field_id)
        if value is None or str(value).strip() == "":
            return None
        parts.append(normalize_key(str(value)))
    return "|".join(parts)


def _derive_one(form: Form, data: Mapping[str, Any]) -> Derived:
    """``derive`` of one record as a9c79e6 wrote it (the plain path the page replaces)."""
    roles = form.roles
    keys = tuple(k for k in (_key_one(data, fields) for fields in form.natural_keys) if k)
    refs = tuple((f, str(data[f])) for f in form.reference_fields if data.get(f))
    names = [str(data[f]) for f in roles.name if data.get(f)]
    addresses = [str(data[f]) for f in roles.address if data.get(f)]
    terms = plain_record_terms(
        names,
        [str(data[f]) for f in roles.id if data.get(f)],
        [str(data[f]) for f in roles.phone if data.get(f)],
        addresses,
    )
    person = None
    if names and (roles.birth_date or roles.house):
        pinyin = next((t for t in plain_name_terms(names[0]) if t.isascii()), names[0])
        birth = data.get(roles.birth_date) if roles.birth_date else None
        house = data.get(roles.house) if roles.house else None
        person = (names[0], pinyin, birth, house)
    grid = data.get(roles.grid) if roles.grid else None
    title = form.title_of(data)
    address = address_text(addresses)
    sort = plain_sort_key(title, surname=bool(roles.birth_date))
    return Derived(grid, title, keys, refs, terms, person, address, sort)


# values as pulled JSON brings them: text (blank, padded, full-width digits, Latin), numbers,
# booleans and None, for the fields the forms' roles, keys and titles read
TEXT = st.sampled_from(
    ["", "  ", "张三", "单雄信", "Ann Lee", " 李 四 ", "330106198506150123", "３３０１０６",
     "13800138000", "幸福路12号3栋", "听涛雅苑1栋1单元201室", "x", "0"]
)  # fmt: skip
VALUE = st.one_of(TEXT, st.integers(-5, 10**12), st.booleans(), st.none())
FORMS = ("resident", "house", "unit", "address")


def _fields(form: Form) -> list[str]:
    roles = form.roles
    named = [*roles.name, *roles.id, *roles.phone, *roles.address, *form.reference_fields]
    named += [f for fields in form.natural_keys for f in fields]
    named += [f for f in (roles.birth_date, roles.house, roles.grid) if f]
    named += [name for _literal, name in form._title_parts if name]
    return sorted(set(named))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), form_id=st.sampled_from(FORMS), size=st.integers(0, 6))
def test_a_page_derives_as_each_record_alone(
    formset: FormSet, data: st.DataObject, form_id: str, size: int
) -> None:
    form = formset.form(form_id)
    fields = _fields(form)
    records = [
        data.draw(st.dictionaries(st.sampled_from(fields), VALUE, max_size=len(fields)))
        for _ in range(size)
    ]
    assert derive_page(form, records) == [_derive_one(form, r) for r in records]


def _house(seq: int) -> dict[str, Any]:
    return {
        "house_code": f"H{seq:05d}",
        "address_text": f"幸福路{seq}号{seq % 3 + 1}栋",
        "grid": "330106001001-01",
    }


MIXED = st.lists(
    st.tuples(st.sampled_from(["resident", "house"]), st.integers(1, 300), st.booleans()),
    min_size=1,
    max_size=8,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=MIXED)
def test_a_mixed_page_leaves_the_rows_of_one_record_at_a_time(
    formset: FormSet, records: list[tuple[str, int, bool]]
) -> None:
    stamp = ids.now_iso()
    fresh = [
        pulled(
            ids.uuid7(),
            1,
            resident(seq=seq) if form == "resident" else _house(seq),
            form=form,
            deleted=gone,
        ).model_copy(update={"updated_at": stamp})
        for form, seq, gone in records
    ]
    with tempfile.TemporaryDirectory() as tmp:
        plain_path, page_path = Path(tmp) / "plain.sqlite", Path(tmp) / "page.sqlite"
        Store(plain_path, formset).close()
        shutil.copy(plain_path, page_path)
        outcome = []
        for path, one_at_a_time in ((plain_path, True), (page_path, False)):
            store = Store(path, formset)
            try:
                if one_at_a_time:  # a swapped derive: the store derives record by record
                    store.derive = lambda form, data: _derive_one(form, data)  # type: ignore[method-assign]
                replica.apply_pull(store, page(*fresh, cursor=4), SCOPE)
                rows = {name: store.conn.execute(sql).fetchall() for name, sql in TABLES.items()}
                found = {
                    q: {r.id for r in store.search(q, limit=50)} for q in ("张三", "zs", "幸福")
                }
                outcome.append((rows, found))
            finally:
                store.close()
        assert outcome[0] == outcome[1]


def test_a_page_of_new_records_is_derived_once_per_form(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, int]] = []
    real = store.derive_page

    def counted(form: Form, records: Sequence[Mapping[str, Any]]) -> list[Derived]:
        calls.append((form.id, len(records)))
        return real(form, records)

    monkeypatch.setattr(store, "derive_page", counted)
    fresh = [pulled(ids.uuid7(), 1, resident(seq=1 + 2 * i)) for i in range(30)]
    fresh += [pulled(ids.uuid7(), 1, _house(i), form="house") for i in range(5)]
    tally = replica.apply_pull(store, page(*fresh[::2], *fresh[1::2], cursor=3), SCOPE)
    assert tally.inserted == 35
    # before: Store.derive once per record (35 calls), the form's roles read each time
    assert sorted(calls) == [("house", 5), ("resident", 30)]
    assert {s.id for s in store.search("张三", limit=100)} == {p.id for p in fresh[:30]}


def test_a_page_of_residents_costs_few_python_calls_per_record(formset: FormSet) -> None:
    """The device's CPU limits a 10 k pull (issue 17), and derivation was half of it: each
    record of a page now costs 15 Python-level calls, no more (37610e2: 20 — a generator per
    natural key and per person's pinyin, and a frozen dataclass's ``__init__`` per record).
    Counted with the caches warm, as in a pull of a household's people."""
    form = formset.form("resident")
    char_pinyin("中")
    records = [resident(seq=seq) for seq in range(1, 101)]
    derive_page(form, records)
    calls = 0

    def count(_frame: object, event: str, _arg: object) -> None:
        nonlocal calls
        calls += event == "call"

    sys.setprofile(count)
    try:
        derived = derive_page(form, records)
    finally:
        sys.setprofile(None)
    assert derived == [_derive_one(form, r) for r in records]
    assert calls <= 15 * len(records) + 10  # and a few per page (the form's plan)
