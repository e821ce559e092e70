"""The department API against the real server over loopback HTTP (SQLite and PostgreSQL):
grants enforced on the platform side, keys and department accounts, the trace of each page."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from app.core.forms import FormSet
from app.core.ids import uuid7
from sync.server import db
from tests.factories import resident
from tests.sync.conftest import GRID_A, GRID_B, GRID_C, OTHER_COMMUNITY, Platform
from tests.sync.deptkit import (
    DEPT_USER,
    DeptApi,
    expected,
    make_grant,
    make_key,
    seed_department,
)


def _people(platform: Platform) -> dict[str, str]:
    """Six residents over three grids, old and young, 户籍 and 流动."""
    made = {}
    plan = [
        ("wang", GRID_A, 1, dt.date(1950, 1, 1), "1"),
        ("wang", GRID_A, 3, dt.date(1990, 1, 1), "2"),
        ("li", GRID_B, 5, dt.date(1955, 3, 1), "2"),
        ("li", GRID_B, 7, dt.date(2000, 3, 1), "1"),
        ("zhao", GRID_C, 9, dt.date(1940, 5, 5), "1"),
        ("zhao", GRID_C, 11, dt.date(1995, 5, 5), "2"),
    ]
    for user, grid, seq, birth, kind in plan:
        client = platform.client(user)
        rid = uuid7()
        data = {
            **resident(grid=grid, seq=seq, birth=birth, population_type=kind),
            "_status": "draft",
        }
        (res,) = client.push([client.op(rid, "create", data)])
        assert res["status"] == "applied", res
        made[f"{grid}:{seq}"] = rid
    return made


def test_export_gives_exactly_the_granted_fields_of_the_granted_records(
    platform: Platform, formset: FormSet
) -> None:
    _people(platform)
    seed_department(platform)
    grant = make_grant(
        platform, communities=(OTHER_COMMUNITY,), grids=(GRID_A,), filter_text="年龄 >= 60"
    )
    api = DeptApi(platform.url, make_key(platform))
    got, _cursor = api.export_all(grant)
    want = expected(platform, formset, grant)
    assert got == want
    assert len(got) == 2  # the old ones of grid A and grid C
    for rec in got.values():
        assert set(rec["fields"]) <= {"name", "id_number", "population_type", "gender"}
        assert "*" in rec["fields"]["id_number"]
    with db.read(platform.engine) as conn:
        taken = conn.execute(select(db.dept_exports.c.kind, db.dept_exports.c.records)).all()
        audit = (
            conn.execute(select(db.audit_log.c.target).where(db.audit_log.c.action == "dept_take"))
            .scalars()
            .all()
        )
        received = conn.execute(select(db.dept_received.c.record_id)).scalars().all()
    assert sum(n for kind, n in taken if kind == "export") == 2
    assert audit and all(f"grant:{grant}" in t for t in audit)
    assert set(received) == set(want)


def test_feed_brings_changes_removals_and_exits_to_a_fresh_export(
    platform: Platform, formset: FormSet
) -> None:
    made = _people(platform)
    seed_department(platform)
    grant = make_grant(platform, grids=(GRID_A, GRID_B), filter_text="年龄 >= 60")
    api = DeptApi(platform.url, make_key(platform))
    have, cursor = api.export_all(grant)
    wang, root = platform.client("wang"), platform.client("root")
    old_a, young_a, old_b = made[f"{GRID_A}:1"], made[f"{GRID_A}:3"], made[f"{GRID_B}:5"]
    # younger by a correction: leaves the filter; older: enters it; one moves out of the grids
    wang.push([wang.op(old_a, "update", {"birth_date": "1999-01-01"}, base_version=1)])
    wang.push(
        [wang.op(young_a, "update", {"birth_date": "1930-01-01", "name": "李四"}, base_version=1)]
    )
    root.push([root.op(old_b, "update", {"grid": GRID_C}, base_version=1)])
    assert set(have) != set(expected(platform, formset, grant))
    cursor = api.follow(grant, have, cursor, limit=1)
    assert have == expected(platform, formset, grant)
    assert set(have) == {young_a}
    # nothing new: the feed is done at once and changes nothing
    assert api.follow(grant, have, cursor) and have == expected(platform, formset, grant)


def test_expired_revoked_narrowed_grants_and_revoked_keys_stop_at_once(
    platform: Platform, formset: FormSet
) -> None:
    from sync.server.dept import grants as grants_mod
    from sync.server.dept import keys as keys_mod

    _people(platform)
    seed_department(platform)
    live = make_grant(platform)
    old = make_grant(platform, valid_from="2020-01-01", valid_to="2020-12-31")
    key = make_key(platform)
    api = DeptApi(platform.url, key)
    _have, cursor = api.export_all(live)

    def error(path: str, **params: object) -> tuple[int, str]:
        resp = api.get(path, **params)
        return resp.status_code, resp.json()["error"]["code"]

    assert error(f"/v1/dept/grants/{old}/export") == (403, "grant_expired")
    with db.write(platform.engine) as conn:
        grants_mod.narrow(conn, formset, live, fields={"resident": {"gender": "full"}})
    assert error(f"/v1/dept/grants/{live}/feed", cursor=cursor) == (409, "grant_changed")
    got, _ = api.export_all(live)
    assert all(set(r["fields"]) <= {"gender"} for r in got.values())
    with db.write(platform.engine) as conn:
        grants_mod.revoke(conn, live)
    status, code = error(f"/v1/dept/grants/{live}/export")
    assert (status, code) == (403, "grant_revoked")
    assert api.get(f"/v1/dept/grants/{live}/export").json()["error"]["message_zh"]
    other = make_grant(platform)
    with db.write(platform.engine) as conn:
        keys_mod.revoke(conn, key[4:16])
    assert error(f"/v1/dept/grants/{other}/export") == (401, "key_revoked")


def test_a_department_gets_nothing_outside_its_grants(platform: Platform) -> None:
    """URL tampering: another department's grant, a grid outside the grant, sync endpoints."""
    made = _people(platform)
    seed_department(platform)
    seed_department(platform, "ws", "weisheng")
    theirs = make_grant(platform, department="ws")
    mine = make_grant(platform, grids=(GRID_A,))
    api = DeptApi(platform.url, make_key(platform))
    resp = api.get(f"/v1/dept/grants/{theirs}/export")
    assert (resp.status_code, resp.json()["error"]["code"]) == (403, "no_grant")
    assert api.get("/v1/dept/grants/999999/export").json()["error"]["code"] == "no_grant"
    # a cursor of another grant, or a forged one, is refused
    theirs_api = DeptApi(platform.url, make_key(platform, "ws"))
    _, their_cursor = theirs_api.export_all(theirs)
    resp = api.get(f"/v1/dept/grants/{mine}/feed", cursor=their_cursor)
    assert (resp.status_code, resp.json()["error"]["code"]) == (422, "bad_cursor")
    # statistics only over the grant's grids: asking for grid C counts nothing
    resp = api.get(f"/v1/dept/grants/{mine}/stats", by="grid", grid=[GRID_C])
    assert resp.status_code == 200 and resp.json()["rows"] == []
    # the department account cannot use the sync and record endpoints
    account = platform.client(DEPT_USER)
    assert account.push_raw([]).status_code == 403
    for path in ("/v1/pull?since=0", f"/v1/records/{made[f'{GRID_A}:1']}", "/v1/reviews"):
        resp = account.http.get(platform.url + path, headers=account.headers, timeout=30)
        assert (resp.status_code, resp.json()["error"]["code"]) == (403, "dept_only"), path
    resp = account.http.get(platform.url + "/v1/console/records?q=x", headers=account.headers)
    assert resp.status_code == 403
    # with its own token it takes data like a key does
    token_api = DeptApi(platform.url, account.token, account.device_id)
    got, _ = token_api.export_all(mine)
    assert {r["id"] for r in got.values()} == {made[f"{GRID_A}:1"], made[f"{GRID_A}:3"]}


def test_statistics_follow_changes_and_moves_after_they_are_cached(platform: Platform) -> None:
    """The per-grid counts are cached: an edit and a move out of the grant's grid are counted
    at the next query (the changed grids found from the change sequence)."""
    seed_department(platform)
    root = platform.client("root")
    made = []
    for seq in range(1, 21, 2):
        rid = uuid7()
        data = {**resident(grid=GRID_A, seq=seq, population_type="1"), "_status": "draft"}
        (res,) = root.push([root.op(rid, "create", data)])
        assert res["status"] == "applied", res
        made.append(rid)
    grant = make_grant(platform, {"resident": {"population_type": "full"}}, grids=(GRID_A,))
    api = DeptApi(platform.url, make_key(platform))

    def counts() -> dict[str, int | None]:
        resp = api.get(f"/v1/dept/grants/{grant}/stats", by="population_type")
        assert resp.status_code == 200, resp.text
        return {r["value"]: r["count"] for r in resp.json()["rows"]}

    assert counts() == {"1": 10}
    for rid in made[:5]:
        root.push([root.op(rid, "update", {"population_type": "2"}, base_version=1)])
    assert counts() == {"1": 5, "2": 5}
    for rid in made[:5]:
        root.push([root.op(rid, "update", {"grid": GRID_C}, base_version=2)])
    assert counts() == {"1": 5}


def test_a_grant_filtered_by_id_numbers_finds_either_generation(
    platform: Platform, formset: FormSet
) -> None:
    """A grant for ``证件号码 in (...)`` gives the records holding either generation of the
    numbers named: one stored under its first-generation number (as an old client's push
    could have stored it) is named by its 18-digit number, another named by its 15 digits."""
    made = _people(platform)
    r = db.records.c
    old_id, young_id = made[f"{GRID_A}:1"], made[f"{GRID_B}:5"]
    numbers = {}
    with db.write(platform.engine) as conn:
        for rid in (old_id, young_id):
            numbers[rid] = db.loads(conn.execute(select(r.data).where(r.id == rid)).scalar_one())
        stored = dict(numbers[old_id], id_number=_fifteen(numbers[old_id]["id_number"]))
        conn.execute(db.records.update().where(r.id == old_id).values(data=db.dumps(stored)))
    seed_department(platform)
    named = f"{numbers[old_id]['id_number']}, {_fifteen(numbers[young_id]['id_number'])}"
    grant = make_grant(platform, filter_text=f"证件号码 in ({named})")
    got, _cursor = DeptApi(platform.url, make_key(platform)).export_all(grant)
    assert set(got) == {old_id, young_id}
    assert got == expected(platform, formset, grant)


def _fifteen(number: str) -> str:
    """The first-generation form of an 18-digit number born in the 1900s."""
    return number[:6] + number[8:17]
