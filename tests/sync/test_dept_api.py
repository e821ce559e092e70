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
        data = {**resident(grid=grid, seq=seq, birth=birth, population_type=kind), "_status": "draft"}
        (res,) = client.push([client.op(rid, "create", data)])
        assert res["status"] == "applied", res
        made[f"{grid}:{seq}"] = rid
    return made


def test_export_gives_exactly_the_granted_fields_of_the_granted_records(
    platform: Platform, formset: FormSet
) -> None:
    _people(platform)
    seed_department(platform)
    grant = make_grant(platform, communities=(OTHER_COMMUNITY,), grids=(GRID_A,), filter_text="年龄 >= 60")
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
        audit = conn.execute(
            select(db.audit_log.c.target).where(db.audit_log.c.action == "dept_take")
        ).scalars().all()
        received = conn.execute(select(db.dept_received.c.record_id)).scalars().all()
    assert sum(n for kind, n in taken if kind == "export") == 2
    assert audit and all(f"grant:{grant}" in t for t in audit)
    assert set(received) == set(want)
