"""Helpers for the department tests: a department with an account and a key, grants made as an
admin would, a client of the department API, and an oracle that says what a grant gives,
computed straight from the records table (not through ``sync.server.dept``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import requests
from sqlalchemy import select

from app.core.forms import Form, FormSet
from app.core.masking import mask_part, mask_value, revealing
from app.core.recordfilter import parse_filter
from app.core.records import is_empty
from sync.server import admin, db
from sync.server.dept import grants, keys
from tests.sync.conftest import PASSWORD, Platform

DEPT, DEPT_USER = "mz", "minzheng"
RESIDENT_FIELDS = {
    "name": "masked",
    "id_number": "masked",
    "population_type": "full",
    "gender": "full",
}


def seed_department(platform: Platform, code: str = DEPT, username: str = DEPT_USER) -> None:
    admin.put_department(platform.engine, code, "民政局")
    admin.put_user(platform.engine, username, PASSWORD, "department", department=code)


def far(days: int = 365) -> str:
    return (dt.date.today() + dt.timedelta(days=days)).isoformat()


def make_grant(
    platform: Platform,
    fields: Mapping[str, Mapping[str, str]] | None = None,
    *,
    department: str = DEPT,
    communities: tuple[str, ...] = (),
    grids: tuple[str, ...] = (),
    filter_text: str = "",
    valid_from: str | None = None,
    valid_to: str | None = None,
) -> int:
    spec = grants.GrantSpec(
        department=department,
        purpose="养老服务补贴核对",
        legal_basis="《老年人权益保障法》",
        fields=fields or {"resident": RESIDENT_FIELDS},
        valid_from=valid_from or (dt.date.today() - dt.timedelta(days=1)).isoformat(),
        valid_to=valid_to or far(),
        communities=communities,
        grids=grids,
        filter=filter_text,
    )
    with db.write(platform.engine) as conn:
        return grants.create(conn, platform.service.formset, spec, "root")


def make_key(platform: Platform, department: str = DEPT) -> str:
    with db.write(platform.engine) as conn:
        return keys.create(conn, platform.app.state.key, department, "测试系统", "root")


class DeptApi:
    """The department API over HTTP with a key (or a department account's token)."""

    def __init__(self, url: str, key: str, device_id: str = "") -> None:
        self.url, self.http = url, requests.Session()
        self.headers = {"Authorization": f"Bearer {key}"}
        if device_id:
            self.headers["X-Device-Id"] = device_id

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.http.get(self.url + path, params=params, headers=self.headers, timeout=120)

    def export_all(self, grant_id: int, limit: int = 7) -> tuple[dict[str, dict[str, Any]], str]:
        """Every record of a full export (id -> record) and the feed cursor to go on from."""
        out: dict[str, dict[str, Any]] = {}
        cursor = ""
        while True:
            params: dict[str, Any] = {"limit": limit}
            if cursor:
                params["cursor"] = cursor
            resp = self.get(f"/v1/dept/grants/{grant_id}/export", **params)
            assert resp.status_code == 200, resp.text
            page = resp.json()
            for rec in page["records"]:
                assert rec["id"] not in out, "a record came twice in one export"
                out[rec["id"]] = rec
            if page["done"]:
                return out, page["feed_cursor"]
            cursor = page["cursor"]

    def follow(
        self, grant_id: int, have: dict[str, dict[str, Any]], cursor: str, limit: int = 5
    ) -> str:
        """Apply the feed to ``have`` until it is done; the new cursor."""
        while True:
            resp = self.get(f"/v1/dept/grants/{grant_id}/feed", cursor=cursor, limit=limit)
            assert resp.status_code == 200, resp.text
            page = resp.json()
            for change in page["changes"]:
                if change["op"] == "remove":
                    have.pop(change["id"], None)
                else:
                    have[change["id"]] = {k: change[k] for k in ("id", "form", "version", "fields")}
            cursor = page["cursor"]
            if page["done"]:
                return cursor


def expected(platform: Platform, formset: FormSet, grant_id: int) -> dict[str, dict[str, Any]]:
    """What a grant gives, from the records table: the oracle for export, feed and download."""
    with db.read(platform.engine) as conn:
        g = conn.execute(select(db.dept_grants).where(db.dept_grants.c.id == grant_id)).one()
        grid_rows = conn.execute(select(db.grids.c.code, db.grids.c.community)).all()
        rows = conn.execute(select(db.records)).all()
    fields = db.loads(g.fields)
    communities, grids_ = set(db.loads(g.communities)), set(db.loads(g.grids))
    places = {
        code
        for code, community in grid_rows
        if (not communities and not grids_) or code in grids_ or community in communities
    }
    today = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=8)).date()
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r.deleted or r.form not in fields or r.grid not in places:
            continue
        data = db.loads(r.data)
        form = formset.form(r.form)
        if g.filter and not parse_filter(g.filter, form, formset).matches(data, today):
            continue
        parts = reduced_by(form, formset, fields[r.form])
        shown = {}
        for name, mode in fields[r.form].items():
            value = data.get(name)
            if is_empty(value):
                continue
            fld = form.fields[name]
            if fld.sensitive and mode == "masked":
                shown[name] = mask_value(fld, value)
            else:
                shown[name] = mask_part(parts[name], value) if name in parts else value
        out[r.id] = {"id": r.id, "form": r.form, "version": r.version, "fields": shown}
    return out


def reduced_by(form: Form, formset: FormSet, modes: Mapping[str, str]) -> dict[str, str]:
    """What a grant gives reduced (issue 15): the birth date and area codes beside an ID
    number it gives masked (``masking.revealing``), none beside one in full or left out."""
    masked_id = any(
        form.fields[n].type == "id_number" and form.fields[n].sensitive and mode == "masked"
        for n, mode in modes.items()
    )
    return revealing(form, formset) if masked_id else {}


class Follower:
    """A department system following the feed of one grant while devices sync (the stateful
    test): its copy must end equal to a fresh full export."""

    FILTER = "姓名 != 李四"  # edits of the name move records in and out of the grant

    def __init__(self, url: str, app: Any, formset: FormSet, grids: tuple[str, ...]) -> None:
        engine = app.state.engine
        admin.put_department(engine, DEPT, "民政局")
        spec = grants.GrantSpec(
            department=DEPT,
            purpose="跟随增量",
            legal_basis="测试",
            fields={"resident": {"name": "full", "phone": "masked", "id_number": "masked"}},
            valid_from="2020-01-01",
            valid_to=far(),
            grids=grids,
            filter=self.FILTER,
        )
        with db.write(engine) as conn:
            self.grant = grants.create(conn, formset, spec, "root")
            key = keys.create(conn, app.state.key, DEPT, "跟随", "root")
        self.api = DeptApi(url, key)
        self.have, self.cursor = self.api.export_all(self.grant)

    def step(self, limit: int) -> None:
        """One feed page, applied."""
        resp = self.api.get(f"/v1/dept/grants/{self.grant}/feed", cursor=self.cursor, limit=limit)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        for change in page["changes"]:
            if change["op"] == "remove":
                self.have.pop(change["id"], None)
            else:
                self.have[change["id"]] = {
                    k: change[k] for k in ("id", "form", "version", "fields")
                }
        self.cursor = page["cursor"]

    def check(self) -> None:
        """Follow to the end: the copy is exactly a fresh full export."""
        self.cursor = self.api.follow(self.grant, self.have, self.cursor, limit=3)
        fresh, _ = self.api.export_all(self.grant, limit=4)
        assert self.have == fresh
