"""Helpers for console tests: a browser-like HTTP session (cookies, CSRF tokens read from the
pages like a browser would) and a platform seeded with a conflict, a duplicate review and a
set-aside op in each community."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import requests

from app.core.ids import uuid7
from tests.factories import resident
from tests.sync.conftest import GRID_A, GRID_C, PASSWORD, Platform

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Browser:
    """A console user over plain HTTP: logs in through the login form, posts forms with the
    CSRF token the page carries."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.http.get(self.url + path, timeout=30, **kw)

    def login(self, username: str, password: str = PASSWORD) -> requests.Response:
        page = self.get("/console/login")
        token = CSRF.search(page.text)
        assert token, page.text
        return self.http.post(
            f"{self.url}/console/login",
            data={
                "username": username,
                "password": password,
                "csrf": token.group(1),
                "next": "/console/overview",
            },
            allow_redirects=False,
            timeout=30,
        )

    def csrf(self, path: str = "/console/overview") -> str:
        found = CSRF.search(self.get(path).text)
        assert found
        return found.group(1)

    def post(
        self,
        path: str,
        data: dict[str, Any] | None = None,
        *,
        token: bool = True,
        files: Any = None,
    ) -> requests.Response:
        payload = dict(data or {})
        if token:
            payload["csrf"] = self.csrf()
        return self.http.post(
            self.url + path, data=payload, files=files, allow_redirects=False, timeout=60
        )


def login(platform: Platform, username: str) -> Browser:
    browser = Browser(platform.url)
    resp = browser.login(username)
    assert resp.status_code == 303, resp.text
    return browser


@dataclass
class Seeded:
    conflict_a: str  # a resident of grid A with an open phone conflict
    conflict_c: str  # the same in grid C (the other community)
    review: int  # an open duplicate review in grid A


def seed_console(platform: Platform) -> Seeded:
    """A phone conflict in grid A and in grid C, a possible duplicate pair in grid A and an op
    the server set aside (an invalid complete record)."""
    out = []
    for user, grid, seq in (("wang", GRID_A, 11), ("zhao", GRID_C, 13)):
        one, two = platform.client(user), platform.client(user)
        rid = uuid7()
        data = {**resident(grid=grid, seq=seq, name="张三"), "_status": "complete"}
        (made,) = one.push([one.op(rid, "create", data)])
        assert made["status"] == "applied", made
        one.push([one.op(rid, "update", {"phone": "13911112222"}, base_version=1)])
        (b,) = two.push([two.op(rid, "update", {"phone": "13700137000"}, base_version=1)])
        assert b["status"] == "conflict", b
        out.append(rid)
    wang = platform.client("wang")
    twin = {
        **resident(grid=GRID_A, seq=15, name="章三", birth=dt.date(1985, 6, 15)),
        "_status": "complete",
    }
    wang.push([wang.op(uuid7(), "create", twin)])
    bad = {**resident(grid=GRID_A, seq=17, name=""), "_status": "complete"}
    (rejected,) = wang.push([wang.op(uuid7(), "create", bad)])
    assert rejected["status"] == "rejected", rejected
    reviews = requests.get(
        f"{platform.url}/v1/reviews", headers=platform.client("chen").headers, timeout=30
    ).json()["reviews"]
    assert reviews, "the seed should open a duplicate review"
    return Seeded(out[0], out[1], reviews[0]["id"])


def stored(platform: Platform) -> dict[str, Any]:
    """Every row of every table but the overview's cache (``grid_stats``, recounted at will)."""
    rows = platform.dump()
    rows.pop("grid_stats", None)
    return rows
