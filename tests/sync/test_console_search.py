"""The console's record search index (``record_terms``) stays exact: after pushes, edits,
conflicting merges, deletes and grid moves through the real server, the index-based search
returns the same records as the old scan of the caller's scope, for every role, on SQLite and
PostgreSQL; and the terms of any record cover every query the match rule accepts."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.core.forms import Form, FormSet
from app.core.ids import uuid7
from app.core.records import is_empty
from app.core.search import name_terms
from sync.server import auth, db, terms
from sync.server.console import queries
from tests.factories import resident
from tests.sync.conftest import GRID_A, GRID_B, GRID_C, Platform

NAMES = ["张三", "章三", "单雨", "曾小明", "解放", "欧阳娜娜", "李四", "Anna Smith", "王", "吕布"]
STREETS = ["幸福路", "文三路", "和平街", "学院路", "Xixi Rd "]
USERS = {"wang": "worker", "li": "worker", "zhao": "worker", "chen": "supervisor", "root": "admin"}


def _old_matches(form: Form, data: Mapping[str, Any], title: str, q: str, digits: bool) -> bool:
    """The match rule of the console's old scan (``queries._matches`` before the index)."""
    roles = form.roles

    def values(names: Iterable[str]) -> list[str]:
        return [str(data[n]).lower() for n in names if not is_empty(data.get(n))]

    if digits:
        return any(v.endswith(q) for v in values((*roles.id, *roles.phone)))
    names = values(roles.name) or [title.lower()]
    for name in names:
        if q in name or any(term.startswith(q) for term in name_terms(name)):
            return True
    return any(q in v for v in values(roles.address))


def old_scan(platform: Platform, formset: FormSet, user: auth.User, query: str) -> set[str]:
    """The reference: every record in the caller's scope, checked by the old rule. (The old
    scan narrowed candidates with SQL first, which missed some matches, e.g. "san" for 张三:
    the reference applies the rule to every record in scope.)"""
    q = query.strip().lower()
    if not q:
        return set()
    digits = q.rstrip("x").isdigit() and len(q) >= 4
    r = db.records.c
    stmt = select(r.id, r.form, r.grid, r.title, r.data)
    if user.grids is not None:
        stmt = stmt.where(r.grid.in_(sorted(user.grids) or [""]))
    with platform.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return {
        row.id
        for row in rows
        if _old_matches(formset.form(row.form), db.loads(row.data) or {}, row.title, q, digits)
    }


def _users(platform: Platform) -> list[auth.User]:
    out = []
    with platform.engine.connect() as conn:
        community = {"chen": "330106001"}
        for name, role in USERS.items():
            grids = auth.scope_of(conn, name, role, community.get(name))
            out.append(auth.User(name, role, community.get(name), grids))
    return out


def _person(rnd: random.Random, grid: str, seq: int) -> dict[str, Any]:
    street = rnd.choice(STREETS)
    return {
        **resident(grid=grid, seq=seq, name=rnd.choice(NAMES)),
        "phone": "13" + "".join(rnd.choice("0123456789") for _ in range(9)),
        "residence_address": f"浙江省杭州市{street}{rnd.randrange(1, 40)}号{rnd.randrange(1, 9)}栋",
        "_status": "complete",
    }


def _queries(rnd: random.Random, values: list[str]) -> list[str]:
    """Pieces of stored values (substrings, tails, initials) and a few that match nothing."""
    out = ["zs", "san", "shan", "dan", "ouy", "anna", "x", "路", "12号", " 张三 ", "0000", "999x"]
    for value in rnd.sample(values, min(len(values), 40)):
        start = rnd.randrange(len(value))
        out.append(value[start : start + rnd.randrange(1, 20)])
        out.append(value[-rnd.randrange(4, 12) :])
        out.append(value.upper()[: rnd.randrange(1, 4)])
    return out


def test_index_search_equals_the_old_scan_after_every_kind_of_write(
    platform: Platform, formset: FormSet
) -> None:
    rnd = random.Random(12)
    wang, li, root = platform.client("wang"), platform.client("li"), platform.client("root")
    root2 = platform.client("root")
    live: dict[str, int] = {}  # record id -> version
    for _ in range(30):  # creates in every grid
        client = rnd.choice([wang, li, root])
        grids = {id(wang): [GRID_A], id(li): [GRID_B]}.get(id(client), [GRID_A, GRID_B, GRID_C])
        grid = rnd.choice(grids)
        rid = uuid7()
        (res,) = client.push([client.op(rid, "create", _person(rnd, grid, 100 + len(live)))])
        assert res["status"] == "applied", str(res)[:600]
        live[rid] = res["version"]
    for _ in range(40):  # edits, grid moves, conflicting edits, deletes
        rid = rnd.choice(sorted(live))
        kind = rnd.randrange(5)
        if kind in (0, 4):
            fields: dict[str, Any] = {"name": rnd.choice(NAMES)}
        elif kind == 1:
            fields = {"grid": rnd.choice([GRID_A, GRID_B, GRID_C])}
        elif kind == 2:
            fields = {"residence_address": _person(rnd, GRID_A, 1)["residence_address"]}
        else:
            fields = {"phone": _person(rnd, GRID_A, 1)["phone"]}
        if kind == 4:  # two devices edit the same version: a merge with a conflict
            root.push([root.op(rid, "update", {"name": "司马光"}, live[rid])])
            (res,) = root2.push([root2.op(rid, "update", fields, live[rid])])
        else:
            (res,) = root.push([root.op(rid, "update", fields, live[rid])])
        if res.get("version"):
            live[rid] = res["version"]
    for rid in rnd.sample(sorted(live), 5):
        (res,) = root.push([root.op(rid, "delete", {}, live[rid])])
        assert res["status"] in ("applied", "conflict"), res
    r = db.records.c
    with platform.engine.connect() as conn:
        found = conn.execute(select(r.data, r.grid, r.deleted, r.conflict)).all()
        moves = conn.execute(select(db.scope_exits.c.record_id)).all()
    assert moves and any(f.deleted for f in found) and any(f.conflict for f in found)
    assert {f.grid for f in found} == {GRID_A, GRID_B, GRID_C}
    stored = [db.loads(f.data) or {} for f in found]
    values = [
        str(d[f])
        for d in stored
        for f in ("name", "phone", "id_number", "residence_address")
        if f in d
    ]
    users = _users(platform)
    hits = 0
    for q in _queries(rnd, values):
        for user in users:
            got = queries.search(platform.engine, formset, user, q, limit=10_000)
            ref = old_scan(platform, formset, user, q)
            assert {g["id"] for g in got} == ref, (user.username, q)
            hits += bool(ref)
            few = queries.search(platform.engine, formset, user, q, limit=2)  # paged: 8, 16..
            assert {g["id"] for g in few} <= ref and len(few) == min(2, len(ref)), q
    assert hits > 100  # the queries do find records


NAME_CHARS = st.sampled_from(list("张三章单曾解欧阳娜李四王吕布小明雨放ANa n"))
TEXT = st.text(alphabet=st.sampled_from(list("幸福路文三和平12号栋X0-9 a")), max_size=30)


@settings(max_examples=200, deadline=None)
@given(
    name=st.text(alphabet=NAME_CHARS, max_size=6),
    address=TEXT,
    phone=st.text(alphabet=st.sampled_from(list("0123456789xX")), max_size=13),
    query=st.one_of(
        TEXT,
        st.text(alphabet=NAME_CHARS, max_size=5),
        st.from_regex(r"[0-9]{4,12}x?", fullmatch=True),
    ),
)
def test_terms_cover_every_match(
    formset: FormSet, name: str, address: str, phone: str, query: str
) -> None:
    """Whatever the rule accepts has a term in one of the query's ranges (so the index never
    misses a record); long queries are found by their first characters or last digits."""
    form = formset.form("resident")
    data = {"name": name, "residence_address": address, "phone": phone, "id_number": phone[::-1]}
    data = {k: v for k, v in data.items() if not is_empty(v)}
    q = query.strip().lower()
    if not q:
        return
    title = form.title_of(data)[:200]
    keys = terms.record_keys(form, data, title)
    found = {k for k in keys if not terms.is_word(k)}
    found.update(t for k in keys if terms.is_word(k) for t in terms.word_terms(k))
    hit = any(low <= t < high for t in found for low, high in terms.ranges(q))
    assert queries.matches(form, data, title, q) == _old_matches(
        form, data, title, q, terms.is_tail_query(q)
    )
    if queries.matches(form, data, title, q):
        assert hit, (q, sorted(found))


def test_a_whole_id_number_of_either_generation_finds_the_person(
    platform: Platform, formset: FormSet
) -> None:
    """The console's search: an old card's 15 digits find the record holding the 18-digit
    number, and the 18 digits the record still holding the 15 (one person, ``naturalkeys``)."""
    from tests.factories import id_number, id_number_15

    wang = platform.client("wang")
    old, new = uuid7(), uuid7()
    for rid, number, seq in ((old, id_number_15(seq=5), 5), (new, id_number(seq=7), 7)):
        (res,) = wang.push(
            [wang.op(rid, "create", resident(grid=GRID_A, seq=seq, id_number=number))]
        )
        assert res["status"] == "applied", res
    admin = next(u for u in _users(platform) if u.grids is None)

    def found(q: str) -> list[str]:
        return [r["id"] for r in queries.search(platform.engine, formset, admin, q)]

    assert found(id_number(seq=5)) == [old]
    assert found(id_number_15(seq=7)) == [new]
    assert found(id_number(seq=9)) == [] == found(id_number_15(seq=9))
