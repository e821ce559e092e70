"""Revision 0019: a platform that keyed first-generation 15-digit ID numbers as typed keys
them as their 18-digit form (``app.core.naturalkeys``, the rule pushes use now). A record
whose upgraded key another live record holds becomes a transfer claim on it, for a
supervisor to decide (PROTOCOL.md §9.1), never a second holder."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from sqlalchemy import select, text, update

from app.core.forms import FormSet
from app.core.idnumber import upgrade_15
from app.core.ids import uuid7
from app.core.store.derive import derive
from sync.server import db, migrate, rows
from tests.core.test_id15_keys import FIFTEEN
from tests.factories import id_number, id_number_15, resident
from tests.sync.conftest import GRID_A, Client, Platform


def _create(c: Client, **values: Any) -> str:
    rid = uuid7()
    (r,) = c.push([c.op(rid, "create", {**resident(grid=GRID_A, **values), "_status": "complete"})])
    assert r["status"] == "applied", r
    return rid


def _key_as_typed(platform: Platform, rid: str, number: str) -> None:
    """What the platform held before 0019: the 15 digits as typed in the key."""
    with platform.engine.begin() as conn:
        conn.execute(
            update(db.record_keys)
            .where(db.record_keys.c.record_id == rid)
            .values(key=f"111|{number}")
        )


def test_the_upgrade_keys_15_digit_numbers_by_their_18_digit_form(platform: Platform) -> None:
    wang = platform.client("wang")
    alone = _create(wang, id_number=id_number_15(seq=41), seq=41)
    twin = _create(wang, id_number=id_number_15(seq=43), seq=43)
    _key_as_typed(platform, alone, id_number_15(seq=41))
    _key_as_typed(platform, twin, id_number_15(seq=43))
    # the old platform saw no duplicate in the card's new number
    holder = _create(wang, id_number=id_number(seq=43), seq=43, name="李四")
    try:
        with platform.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0018_pending_terms'"))
        migrate.upgrade(platform.engine, "0019_id15_keys")  # only this one: the rest is there
    finally:  # the platform was built at head, and the next tests share its database
        with platform.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": migrate.head()})

    with platform.engine.connect() as conn:
        held = {tuple(r) for r in conn.execute(select(db.record_keys))}
        claims = {tuple(r) for r in conn.execute(select(db.record_claims))}
        review = conn.execute(
            select(db.reviews.c.record_id, db.reviews.c.other_id, db.reviews.c.state).where(
                db.reviews.c.kind == "transfer"
            )
        ).all()
    assert held == {
        ("resident", f"111|{id_number(seq=41)}", alone),
        ("resident", f"111|{id_number(seq=43)}", holder),
    }
    assert claims == {("resident", f"111|{id_number(seq=43)}", twin)}
    assert [tuple(r) for r in review] == [(twin, holder, "open")]
    (r,) = wang.push([wang.op(uuid7(), "create", resident(grid=GRID_A, seq=41))])
    assert (r["status"], r["merged_into"]) == ("merged_into", alone)


@given(FIFTEEN)
@settings(max_examples=50)
def test_the_platform_and_the_device_make_one_key(formset: FormSet, number: str) -> None:
    """One rule: the platform's keys (record by record and as columns) are the device's."""
    form = formset.form("resident")
    datas = [{"id_type": "111", "id_number": n} for n in (number, upgrade_15(number))]
    device = [list(derive(form, d).keys) for d in datas]
    assert device[0] == device[1] == [f"111|{upgrade_15(number)}"]
    assert [rows.natural_keys(form, d) for d in datas] == device
    assert rows.keys_of(form, datas) == device
