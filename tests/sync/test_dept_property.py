"""Property tests of department access over random platforms, grants and filters, against the
real server over loopback HTTP: the API export, the download and the feed give exactly the
granted fields of the granted records (masks applied; the birth date and area codes beside a
masked ID number reduced), and statistics never reveal a cell under 5 — not directly, and not
by differencing two overlapping queries.

``GC_DEPT_EXAMPLES`` sets how many random platforms/grants each test tries (default 6).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from app.core.display import display_value
from app.core.forms import FormSet
from app.core.ids import uuid7
from sync.server import db
from sync.server.dept import stats as dept_stats
from tests.factories import resident
from tests.sync.conftest import COMMUNITY, GRID_A, GRID_B, GRID_C, OTHER_COMMUNITY, Platform
from tests.sync.consolekit import login
from tests.sync.deptkit import (
    DEPT_USER,
    DeptApi,
    expected,
    make_grant,
    make_key,
    reduced_by,
    seed_department,
)

EXAMPLES = int(os.environ.get("GC_DEPT_EXAMPLES", "6"))
GRIDS = (GRID_A, GRID_B, GRID_C)
FILTERS = (
    "",
    "年龄 >= 60",
    "人口类型 = 流动人口",
    "年龄 < 30 or 人口类型 = 户籍人口",
    "特殊人群 contains 01",
    "not 特殊人群 is empty and 性别 = 2",
)
FIELDS = (
    "name",
    "id_number",
    "phone",
    "population_type",
    "gender",
    "special_group",
    "grid",
    "birth_date",
    "hukou_region",
)
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],  # each example is a live server's work: no shrinking
)

people = st.lists(
    st.tuples(
        st.sampled_from(GRIDS),
        st.integers(1920, 2020),  # birth year
        st.sampled_from(["1", "2"]),  # 人口类型
        st.lists(st.sampled_from(["01", "02", "03"]), max_size=2, unique=True),
        st.booleans(),  # a phone
    ),
    min_size=0,
    max_size=14,
)
grant_specs = st.tuples(
    st.dictionaries(st.sampled_from(FIELDS), st.sampled_from(["full", "masked"]), min_size=1),
    st.sampled_from(
        [((), ()), ((COMMUNITY,), ()), ((), (GRID_C,)), ((OTHER_COMMUNITY,), (GRID_A,))]
    ),
    st.sampled_from(FILTERS),
)
changes = st.lists(
    st.tuples(st.sampled_from(["birth", "grid", "delete", "type", "new"]), st.integers(0, 50)),
    max_size=8,
)


def _add(
    platform: Platform, root: Any, batch: list[tuple[Any, ...]], state: dict[str, Any]
) -> None:
    for grid, year, kind, groups, phone in batch:
        seq = state.setdefault("seq", 1)
        state["seq"] = seq + 2
        data = {
            **resident(grid=grid, seq=seq % 999, birth=dt.date(year, 3, 1), population_type=kind),
            "_status": "draft",
        }
        data["id_number"] = data["id_number"][:-4] + f"{seq % 1000:03d}"[:3] + data["id_number"][-1]
        if groups:
            data["special_group"] = groups
        if not phone:
            data.pop("phone")
        rid = uuid7()
        (res,) = root.push([root.op(rid, "create", data)])
        assert res["status"] == "applied", res
        state.setdefault("versions", {})[rid] = 1


def _change(root: Any, state: dict[str, Any], plan: list[tuple[str, int]]) -> None:
    versions: dict[str, int] = state.get("versions", {})
    for what, pick in plan:
        live = sorted(versions)
        if not live or what == "new":
            continue
        rid = live[pick % len(live)]
        fields: dict[str, Any] = {
            "birth": {"birth_date": f"{1930 + pick}-01-01"},
            "grid": {"grid": GRIDS[pick % 3]},
            "type": {"population_type": "1" if pick % 2 else "2"},
        }.get(what, {})
        kind = "delete" if what == "delete" else "update"
        (res,) = root.push([root.op(rid, kind, fields, base_version=versions[rid])])
        assert res["status"] == "applied", res
        if kind == "delete":
            del versions[rid]
        else:
            versions[rid] = res["version"]


def _grant(platform: Platform, spec: tuple[Any, ...]) -> int:
    fields, (communities, grids), filter_text = spec
    return make_grant(
        platform,
        {"resident": fields},
        communities=communities,
        grids=grids,
        filter_text=filter_text,
    )


def test_export_download_and_feed_give_exactly_what_the_grant_gives(
    platform: Platform, formset: FormSet
) -> None:
    seed_department(platform)
    root = platform.client("root")
    api = DeptApi(platform.url, make_key(platform))
    browser = login(platform, DEPT_USER)
    state: dict[str, Any] = {}

    @SETTINGS
    @given(batch=people, spec=grant_specs, plan=changes, page=st.integers(1, 6))
    def check(batch: list[Any], spec: Any, plan: Any, page: int) -> None:
        _add(platform, root, batch, state)
        grant = _grant(platform, spec)
        got, cursor = api.export_all(grant, limit=page)
        want = expected(platform, formset, grant)
        assert got == want
        _download_matches(browser, formset, grant, spec[0], want)
        _change(root, state, plan)
        api.follow(grant, got, cursor, limit=page)
        assert got == expected(platform, formset, grant)

    check()


def _download_matches(
    browser: Any, formset: FormSet, grant: int, modes: dict[str, str], want: dict[str, Any]
) -> None:
    """The CSV holds one row per granted record: the granted fields as labels, masked; an area
    code reduced beside a masked ID number as its province's name and ``****``."""
    resp = browser.post(
        f"/console/dept/grants/{grant}/download", {"form": "resident", "format": "csv"}
    )
    assert resp.status_code == 200, resp.text
    rows = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
    form = formset.form("resident")
    order = [n for n in form.fields if n in modes]
    assert rows[0] == [form.fields[n].label.zh for n in order] + ["导出编号"]
    parts = reduced_by(form, formset, modes)

    def cell(name: str, value: Any) -> str:
        fld = form.fields[name]
        if (fld.sensitive and modes[name] == "masked") or not value:
            return value or ""
        if parts.get(name) == "area":  # "33****": the province by name
            return formset.table(fld.codes or "").label(value[:2] + "0000") + "****"
        return display_value(formset, fld, value, masked=False)

    expect = Counter(tuple(cell(n, rec["fields"].get(n)) for n in order) for rec in want.values())
    assert Counter(tuple(r[:-1]) for r in rows[1:]) == expect


def test_statistics_never_reveal_a_cell_under_five(platform: Platform, formset: FormSet) -> None:
    seed_department(platform)
    root = platform.client("root")
    api = DeptApi(platform.url, make_key(platform))
    state: dict[str, Any] = {}

    @SETTINGS
    @given(
        batch=st.lists(people, min_size=1, max_size=3).map(lambda b: sum(b, [])),
        spec=grant_specs,
        by=st.sampled_from(
            ["grid", "status", "age_band", "resident.population_type", "resident.gender"]
        ),
        small=st.lists(st.sampled_from(GRIDS), min_size=1, max_size=2, unique=True),
    )
    def check(batch: list[Any], spec: Any, by: str, small: list[str]) -> None:
        _add(platform, root, batch, state)
        fields, places, filter_text = spec
        fields = {**fields, "population_type": "full", "gender": "full", "birth_date": "full"}
        grant = _grant(platform, (fields, places, filter_text))
        if by == "age_band" and fields.get("id_number") == "masked":  # birth date: its year only
            resp = api.get(f"/v1/dept/grants/{grant}/stats", by=by)
            assert resp.status_code == 403, resp.text
            assert resp.json()["error"]["code"] == "stats_not_granted"
            return
        whole = api.get(f"/v1/dept/grants/{grant}/stats", by=by).json()
        part = api.get(f"/v1/dept/grants/{grant}/stats", by=by, grid=small).json()
        truth = _true_counts(platform, formset, grant, by)
        for table in (whole, part):
            published = [r["count"] for r in table["rows"]] + [table["total"]]
            assert all(n is None or (n >= 5 and n % 5 == 0) for n in published), table
        for row in whole["rows"]:
            true = truth[row["value"]]
            assert (row["count"] is None) == (true < 5), (row, true)
        # differencing the two overlapping queries: never a difference of 1–4
        a = {r["value"]: r["count"] or 0 for r in whole["rows"]}
        b = {r["value"]: r["count"] or 0 for r in part["rows"]}
        for value in set(a) | set(b):
            assert (a.get(value, 0) - b.get(value, 0)) % 5 == 0
        assert ((whole["total"] or 0) - (part["total"] or 0)) % 5 == 0

    check()


def _true_counts(platform: Platform, formset: FormSet, grant: int, by: str) -> Counter[str]:
    """The true counts, from the records table (the oracle of what a grant covers)."""
    from sqlalchemy import select

    taken = expected(platform, formset, grant)
    with db.read(platform.engine) as conn:
        rows = conn.execute(
            select(db.records.c.id, db.records.c.data, db.records.c.status, db.records.c.grid)
        ).all()
    today = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=8)).date()
    out: Counter[str] = Counter()
    for r in rows:
        if r.id not in taken:
            continue
        data = db.loads(r.data)
        if by == "grid":
            out[r.grid] += 1
        elif by == "status":
            out[r.status] += 1
        elif by == "age_band":
            b = dept_stats.band(data.get("birth_date"), today)
            if b:
                out[b] += 1
        else:
            v = data.get(by.split(".")[1])
            if v:
                out[str(v)] += 1
    return out
