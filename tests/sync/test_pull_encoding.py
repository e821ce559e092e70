"""A pull page's server side: the records spliced as JSON text parse exactly as ``json.dumps``
of the same rows would, and a page whose range holds no alias, scope exit, grid, task or task
item reads only the high-water mark, one probe and its records (PROTOCOL.md §8)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from app.core.ids import uuid7
from sync.server import admin, auth, pulls
from tests.factories import resident
from tests.sync.conftest import COMMUNITY, GRID_A, PASSWORD, Platform, statements_run

TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)  # no lone surrogates
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
ROWS = st.lists(
    st.tuples(
        TEXT,  # id
        TEXT,  # form
        st.integers(0, 2**31),  # form_version
        st.integers(0, 2**62),  # version
        st.dictionaries(TEXT, JSON_VALUE, max_size=5),  # data
        TEXT,  # status
        st.booleans() | st.sampled_from([0, 1]),  # deleted (SQLite answers 0/1)
        st.none() | st.lists(st.dictionaries(TEXT, JSON_VALUE, max_size=3), max_size=2),
        TEXT,  # updated_at
        TEXT,  # updated_by
        st.integers(1, 2**62),  # seq
    ),
    max_size=6,
)


def _plain(row: tuple[Any, ...]) -> dict[str, Any]:
    rid, form, form_version, version, data, status, deleted, conflict, at, by, _seq = row
    return {
        "id": rid,
        "form": form,
        "form_version": form_version,
        "version": version,
        "data": data,
        "status": status,
        "deleted": bool(deleted),
        "conflict": conflict or None,
        "updated_at": at,
        "updated_by": by,
    }


@given(ROWS)
def test_spliced_records_parse_as_json_dumps_of_the_rows(rows: list[tuple[Any, ...]]) -> None:
    stored = [  # as the records table holds them: data and conflict are JSON texts
        (*r[:4], json.dumps(r[4], ensure_ascii=False), *r[5:7], r[7] and json.dumps(r[7]), *r[8:])
        for r in rows
    ]
    fast = json.loads(("[" + pulls.records_json(stored) + "]").encode())
    plain = json.loads(json.dumps([_plain(r) for r in rows], ensure_ascii=False))
    assert fast == plain


def _person(seq: int) -> dict[str, Any]:
    return {**resident(grid=GRID_A, seq=seq, name=f"居民{seq}"), "_status": "complete"}


def test_a_page_of_records_alone_runs_three_statements(platform: Platform) -> None:
    wang = platform.client("wang")
    wang.push([wang.op(uuid7(), "create", _person(i + 1)) for i in range(3)])
    _records, cursor = wang.pull_all()
    wang.push([wang.op(uuid7(), "create", _person(i + 10)) for i in range(3)])
    _token, _expires, user = auth.login(
        platform.engine, platform.app.state.key, "wang", PASSWORD, wang.device_id
    )
    with statements_run(platform.engine) as seen:
        page = json.loads(pulls.page_json(platform.engine, user, cursor, 2))
    assert len(page["records"]) == 2 and page["more"]
    # the high-water mark, the side tables' probe, the records: before, also the task items'
    # numbers, aliases, scope exits, grids and tasks, each its own statement
    reads = [s for s in seen if not s.startswith("BEGIN")]  # SQLite's BEGIN DEFERRED
    assert len(reads) == 3, reads


def test_a_side_change_in_range_is_still_read(platform: Platform) -> None:
    wang = platform.client("wang")
    wang.push([wang.op(uuid7(), "create", _person(1))])
    _records, cursor = wang.pull_all()
    admin.put_grid(platform.engine, GRID_A, "一网格（新名）", COMMUNITY)  # a numbered grid change
    wang.push([wang.op(uuid7(), "create", _person(2))])
    page = wang.pull(cursor)
    assert [g["name"] for g in page["grids"]] == ["一网格（新名）"]
    assert len(page["records"]) == 1 and not page["more"]
