"""A grant that gives the ID number masked gives what would rebuild it reduced (issue 15's rule,
``app.core.masking.revealing``): the birth date its year, an area code its province — in the
API's export and feed, in downloads, in statistics and wherever the grant is shown. Against the
real server over loopback HTTP (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json

from openpyxl import load_workbook
from sqlalchemy import select

from app.core.forms import FormSet
from app.core.ids import uuid7
from sync.server import db
from tests.factories import resident
from tests.sync.conftest import GRID_A, Platform
from tests.sync.consolekit import Browser, login
from tests.sync.deptkit import (
    DEPT_USER,
    DeptApi,
    expected,
    far,
    make_grant,
    make_key,
    seed_department,
)

REDUCED_ROW = "因证件号码脱敏而简化 Reduced (ID number masked)"
REVEALING = {"birth_date": "full", "hukou_region": "full", "native_place": "full"}


def _residents(platform: Platform, n: int = 6) -> list[str]:
    """``n`` residents of grid A born 1950-07-15, registered in 330106 (浙江省), native of 110101."""
    root = platform.client("root")
    made = []
    for seq in range(1, 2 * n, 2):
        rid = uuid7()
        data = {
            **resident(grid=GRID_A, seq=seq, birth=dt.date(1950, 7, 15)),
            "native_place": "110101",
            "_status": "draft",
        }
        (res,) = root.push([root.op(rid, "create", data)])
        assert res["status"] == "applied", res
        made.append(rid)
    return made


def _csv(dept: Browser, grant: int) -> list[list[str]]:
    resp = dept.post(
        f"/console/dept/grants/{grant}/download", {"form": "resident", "format": "csv"}
    )
    assert resp.status_code == 200, resp.text
    return list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))


def test_a_masked_id_number_gives_the_birth_date_as_its_year_and_areas_as_their_province(
    platform: Platform, formset: FormSet
) -> None:
    made = _residents(platform)
    seed_department(platform)
    grant = make_grant(platform, {"resident": {"id_number": "masked", **REVEALING}})
    api = DeptApi(platform.url, make_key(platform))
    got, cursor = api.export_all(grant, limit=4)
    assert len(got) == 6
    for rec in got.values():
        shown = rec["fields"]
        assert shown["birth_date"] == "1950-**-**"
        assert shown["hukou_region"] == "33****" and shown["native_place"] == "11****"
        assert shown["id_number"].startswith("330") and "*" in shown["id_number"]
    assert got == expected(platform, formset, grant)  # the oracle reduces them too

    # the feed: a corrected birth date comes as its year only
    root = platform.client("root")
    (res,) = root.push([root.op(made[0], "update", {"birth_date": "1951-02-03"}, base_version=1)])
    assert res["status"] == "applied", res
    api.follow(grant, got, cursor)
    assert got[made[0]]["fields"]["birth_date"] == "1951-**-**"
    assert got == expected(platform, formset, grant)

    # the CSV a person downloads: the year, the province by name, the ID number masked
    dept = login(platform, DEPT_USER)
    rows = _csv(dept, grant)
    assert rows[0][:4] == ["证件号码", "出生日期", "籍贯", "户籍地"]
    assert sorted(r[1] for r in rows[1:]) == ["1950-**-**"] * 5 + ["1951-**-**"]
    assert {r[2] for r in rows[1:]} == {"北京市****"} and {r[3] for r in rows[1:]} == {"浙江省****"}
    assert all("*" in r[0] and r[0].startswith("330") for r in rows[1:])
    assert not any("1950-07-15" in cell or "330106" in cell for r in rows for cell in r)
    xlsx = dept.post(
        f"/console/dept/grants/{grant}/download", {"form": "resident", "format": "xlsx"}
    )
    book = load_workbook(io.BytesIO(xlsx.content), read_only=True)
    sheet = [list(r) for r in book.worksheets[0].iter_rows(values_only=True)]
    assert sorted(r[1] for r in sheet[1:]) == ["1950-**-**"] * 5 + ["1951-**-**"]
    about = dict(r for r in book.worksheets[1].iter_rows(values_only=True))
    assert "resident.birth_date: 仅年份 year only" in about[REDUCED_ROW]


def test_an_id_number_in_full_or_not_given_leaves_the_birth_date_and_areas_as_stored(
    platform: Platform, formset: FormSet
) -> None:
    _residents(platform)
    seed_department(platform)
    full = make_grant(platform, {"resident": {"id_number": "full", **REVEALING}})
    without = make_grant(platform, {"resident": {"name": "full", **REVEALING}})
    api = DeptApi(platform.url, make_key(platform))
    dept = login(platform, DEPT_USER)
    for grant in (full, without):
        got, _ = api.export_all(grant)
        assert len(got) == 6 and got == expected(platform, formset, grant)
        for rec in got.values():
            assert rec["fields"]["birth_date"] == "1950-07-15"
            assert rec["fields"]["hukou_region"] == "330106"
        rows = _csv(dept, grant)
        assert {r[1] for r in rows[1:]} == {"1950-07-15"}
        assert all(r[3].startswith("浙江省") and "*" not in r[3] for r in rows[1:])


def test_statistics_refuse_age_bands_and_areas_a_masked_id_number_reduces(
    platform: Platform,
) -> None:
    """A count by age band needs the whole birth date, one by 户籍地 the whole code: given
    reduced, they are refused as a field given masked is (403 naming it, nothing traced)."""
    _residents(platform)
    seed_department(platform)
    masked = make_grant(platform, {"resident": {"id_number": "masked", **REVEALING}})
    full = make_grant(platform, {"resident": {"id_number": "full", **REVEALING}})
    api = DeptApi(platform.url, make_key(platform))
    for by, label in (("age_band", "出生日期"), ("hukou_region", "户籍地")):
        resp = api.get(f"/v1/dept/grants/{masked}/stats", by=by)
        assert resp.status_code == 403, (by, resp.text)
        error = resp.json()["error"]
        assert error["code"] == "stats_not_granted" and label in error["message_zh"], error
    with db.read(platform.engine) as conn:
        assert conn.execute(select(db.dept_exports.c.kind)).scalars().all() == []
    for by in ("age_band", "hukou_region"):
        resp = api.get(f"/v1/dept/grants/{full}/stats", by=by)
        assert resp.status_code == 200 and resp.json()["total"] == 5, resp.text
    page = login(platform, DEPT_USER).get(f"/console/dept/grants/{masked}/stats")
    assert page.status_code == 200
    assert 'value="age_band"' not in page.text and "hukou_region" not in page.text


def test_the_grant_says_which_fields_it_gives_reduced(platform: Platform) -> None:
    """The department (API and console) and the admin read that the birth date comes as its
    year and the areas as their province because the ID number is masked."""
    seed_department(platform)
    masked = make_grant(platform, {"resident": {"id_number": "masked", **REVEALING}})
    full = make_grant(platform, {"resident": {"id_number": "full", **REVEALING}})
    api = DeptApi(platform.url, make_key(platform))
    listed = {g["id"]: g for g in api.get("/v1/dept/grants").json()["grants"]}
    assert listed[masked]["reduced"] == {
        "resident": {"birth_date": "year", "native_place": "province", "hukou_region": "province"}
    }
    assert listed[full]["reduced"] == {}
    assert listed[masked]["fields"]["resident"]["birth_date"] == "full"  # as approved
    for page in (
        login(platform, DEPT_USER).get("/console/dept"),
        login(platform, "root").get("/console/departments"),
    ):
        assert page.status_code == 200
        text = page.text.split(f'id="grant-{masked}"')[1].split("</tr>")[0]
        assert "出生日期（仅年份，因证件号码脱敏）" in text
        assert "户籍地（仅省级，因证件号码脱敏）" in text
        other = page.text.split(f'id="grant-{full}"')[1].split("</tr>")[0]
        assert "出生日期" in other and "仅年份" not in other
    english = login(platform, DEPT_USER)
    page = english.get("/console/dept?lang=en")
    assert "Date of birth (year only: the ID number is masked)" in page.text


def test_a_request_says_what_a_masked_id_number_would_reduce(platform: Platform) -> None:
    """The admin approving a request with the ID number and the birth date reads, beside the
    birth date, that it goes as its year if the ID number is given masked."""
    seed_department(platform)
    dept = login(platform, DEPT_USER)
    resp = dept.post(
        "/console/dept/requests",
        {
            "f:resident.id_number": "1",
            "f:resident.birth_date": "1",
            "f:resident.gender": "1",
            "purpose": "高龄津贴发放核对",
            "until": far(),
        },
    )
    assert resp.status_code == 303 and "err=" not in resp.headers["location"], resp.headers
    page = login(platform, "root").get("/console/departments")
    assert "证件号码脱敏时仅给年份" in page.text
    assert "性别（" not in page.text


def _without(cursor: str, key: str) -> str:
    """A cursor as a platform before this rule gave it (no ``key``)."""
    payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    payload.pop(key, None)
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_feed_begun_before_the_reduction_asks_for_a_fresh_export(platform: Platform) -> None:
    """A department that took whole birth dates under a grant masking the ID number must not
    follow the feed on top of them (its copy would mix whole dates and years, unlike a fresh
    export): its old cursor answers 409 grant_changed. Grants the rule does not touch keep
    their cursors."""
    _residents(platform, 2)
    seed_department(platform)
    masked = make_grant(platform, {"resident": {"id_number": "masked", **REVEALING}})
    plain = make_grant(platform, {"resident": {"id_number": "masked", "name": "full"}})
    api = DeptApi(platform.url, make_key(platform))
    for grant, status in ((masked, 409), (plain, 200)):
        _got, cursor = api.export_all(grant)
        assert api.get(f"/v1/dept/grants/{grant}/feed", cursor=cursor).status_code == 200
        old = _without(cursor, "z")
        resp = api.get(f"/v1/dept/grants/{grant}/feed", cursor=old)
        assert resp.status_code == status, resp.text
        if status == 409:
            assert resp.json()["error"]["code"] == "grant_changed"
        first = api.get(f"/v1/dept/grants/{grant}/export", limit=1).json()
        assert first["cursor"]
        resp = api.get(f"/v1/dept/grants/{grant}/export", cursor=_without(first["cursor"], "z"))
        assert resp.status_code == status, resp.text
