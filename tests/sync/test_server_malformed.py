"""Malformed requests get a 4xx with a message and change nothing; gzip both ways; the info
endpoint and the OpenAPI schema."""

from __future__ import annotations

import gzip
import json
from typing import Any

import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core import textcheck
from app.core.ids import uuid7
from sync import protocol as p
from sync.server import checks
from sync.server.errors import ApiError
from tests.factories import resident
from tests.sync.conftest import GRID_A, Client, Platform


def good(c: Client, seq: int = 1) -> dict[str, Any]:
    return c.op(uuid7(), "create", {**resident(grid=GRID_A, seq=seq), "_status": "complete"})


def body(c: Client, *ops: dict[str, Any], **top: Any) -> bytes:
    payload = {"protocol": 1, "device_id": c.device_id, "ops": list(ops), **top}
    return json.dumps(payload).encode()  # ASCII escapes: a lone surrogate stays "\\ud800"


def nested(depth: int, inner: Any = "x") -> Any:
    """``inner`` inside ``depth`` lists."""
    for _ in range(depth):
        inner = [inner]
    return inner


def bad_cases(c: Client, existing: str) -> list[tuple[str, bytes, dict[str, str], int, str]]:
    """(name, raw body, extra headers, expected status, expected code); each batch starts with a
    valid op, so "nothing changed" proves the batch was refused as a whole."""
    ok = good(c, 201)

    def with_fields(**fields: Any) -> bytes:
        return body(c, ok, c.op(uuid7(), "create", {**resident(grid=GRID_A, seq=203), **fields}))

    big = "x" * (p.MAX_VALUE_CHARS + 1)
    return [
        ("not json", b"{not json", {}, 400, "bad_json"),
        ("ops not a list", body(c).replace(b'"ops": []', b'"ops": 7'), {}, 422, "malformed"),
        (
            "version as text",
            body(c, ok, {**c.op(existing, "update"), "base_version": "1"}),
            {},
            422,
            "malformed",
        ),
        (
            "negative version",
            body(c, ok, c.op(existing, "update", base_version=-1)),
            {},
            422,
            "malformed",
        ),
        ("unknown kind", body(c, ok, c.op(existing, "upsert")), {}, 422, "malformed"),
        ("protocol 2", body(c, ok, protocol=2), {}, 400, "protocol"),
        ("device mismatch", body(c, ok, device_id="someone-else"), {}, 400, "device_mismatch"),
        (
            "unknown form",
            body(c, ok, c.op(uuid7(), "create", form="spaceship")),
            {},
            422,
            "unknown_form",
        ),
        ("unknown field", with_fields(favourite_colour="red"), {}, 422, "unknown_field"),
        ("NUL in a value", with_fields(name="张\u0000三"), {}, 422, "nul_char"),
        ("NUL in a field name", with_fields(**{"na\u0000me": "x"}), {}, 422, "nul_char"),
        (
            "NUL in the op id",
            body(c, ok, {**good(c, 205), "op_id": "a\u0000b"}),
            {},
            422,
            "nul_char",
        ),
        ("lone surrogate", with_fields(name="\ud800"), {}, 422, "bad_text"),
        ("huge value", with_fields(name=big), {}, 422, "too_long"),
        ("nested value", with_fields(name={"a": ["b"]}), {}, 422, "bad_value"),
        ("NaN", with_fields(phone=float("nan")), {}, 422, "bad_value"),
        # deeper than the checks walk (json.loads reads it): was a 500 (RecursionError)
        ("deeply nested value", with_fields(name=nested(600)), {}, 422, "bad_value"),
        (
            "deeply nested value in a delete",
            body(c, ok, c.op(existing, "delete", {"name": nested(600)})),
            {},
            422,
            "bad_value",
        ),
        ("bad status", with_fields(_status="done"), {}, 422, "bad_status"),
        (
            "bad record id",
            body(c, ok, c.op("not-a-uuid", "create", {"grid": GRID_A})),
            {},
            422,
            "bad_record_id",
        ),
        (
            "wrong form for the id",
            body(c, ok, c.op(existing, "update", {"grid": GRID_A}, 1, form="house")),
            {},
            422,
            "wrong_form",
        ),
        (
            "too many ops",
            body(c, *[good(c, 1 + i % 900) for i in range(p.MAX_OPS + 1)]),
            {},
            413,
            "too_many_ops",
        ),
        (
            "too large",
            b'{"pad": "' + b"x" * (p.MAX_REQUEST_BYTES + 10) + b'"}',
            {},
            413,
            "too_large",
        ),
        (
            "gzip bomb",
            gzip.compress(b" " * (p.MAX_REQUEST_BYTES + 10) + body(c, ok)),
            {"Content-Encoding": "gzip"},
            413,
            "too_large",
        ),
        ("broken gzip", b"\x1f\x8b\x08\x00broken", {"Content-Encoding": "gzip"}, 400, "bad_json"),
        ("brotli", body(c, ok), {"Content-Encoding": "br"}, 400, "encoding"),
    ]


def test_malformed_pushes_are_refused_and_change_nothing(platform: Platform) -> None:
    c = platform.client("wang")
    existing = uuid7()
    c.push([c.op(existing, "create", {**resident(grid=GRID_A), "_status": "complete"})])
    before = platform.dump()
    for name, raw, extra, status, code in bad_cases(c, existing):
        headers = {**c.headers, "Content-Type": "application/json", **extra}
        resp = c.http.post(f"{platform.url}/v1/push", data=raw, headers=headers, timeout=120)
        assert (resp.status_code, resp.json()["error"]["code"]) == (status, code), (name, resp.text)
        error = resp.json()["error"]
        assert error["message_zh"] and error["message_en"], name
        assert "张" not in resp.text and "x" * 50 not in resp.text, f"{name}: a value was echoed"
    assert platform.dump() == before


def test_gzip_request_and_response(platform: Platform) -> None:
    c = platform.client("wang")
    ops = [good(c, 400 + i) for i in range(20)]
    raw = gzip.compress(body(c, *ops))
    headers = {**c.headers, "Content-Type": "application/json", "Content-Encoding": "gzip"}
    resp = c.http.post(f"{platform.url}/v1/push", data=raw, headers=headers, timeout=60)
    assert resp.status_code == 200, resp.text
    assert [r["status"] for r in resp.json()["results"]] == ["applied"] * 20
    pulled = c.http.get(
        f"{platform.url}/v1/pull",
        headers={**c.headers, "Accept-Encoding": "gzip"},
        timeout=60,
        stream=True,
    )
    assert pulled.headers.get("Content-Encoding") == "gzip"
    wire = pulled.raw.read(decode_content=False)
    assert len(json.loads(gzip.decompress(wire))["records"]) == 20


def test_info_openapi_and_unknown_routes(platform: Platform) -> None:
    info = requests.get(f"{platform.url}/v1/info", timeout=30).json()
    assert info["protocol_versions"] == [1]
    assert info["forms"] == {"resident": 1, "house": 1, "unit": 1, "address": 1} or info["forms"]
    assert set(info["forms"]) == {"resident", "house", "unit", "address"}
    schema = requests.get(f"{platform.url}/openapi.json", timeout=30).json()
    assert {"/v1/push", "/v1/pull", "/v1/login", "/v1/reviews"} <= set(schema["paths"])
    missing = requests.get(f"{platform.url}/v1/nothing-here", timeout=30)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    c = platform.client("wang")
    bad_query = c.http.get(f"{platform.url}/v1/pull?since=-1", headers=c.headers, timeout=30)
    assert bad_query.status_code == 422 and bad_query.json()["error"]["code"] == "malformed"


def test_long_draft_values_are_kept_and_long_grids_refused(platform: Platform) -> None:
    """PostgreSQL enforces column sizes that SQLite ignores: keys and names longer than any
    index holds still save in a draft; a grid longer than a grid code is refused."""
    root = platform.client("root")
    rid, long_id = uuid7(), "9" * 400
    draft = {
        **resident(grid=GRID_A),
        "id_number": long_id,
        "name": "张" * 300,
        "birth_date": "x" * 50,
        "_status": "draft",
    }
    (r,) = root.push([root.op(rid, "create", draft)])
    assert r["status"] == "applied", r
    assert root.record(rid).json()["data"]["id_number"] == long_id
    (again,) = root.push([root.op(uuid7(), "create", {**draft, "name": "李四"})])
    assert (again["status"], again["merged_into"]) == ("merged_into", rid)  # the long key matched
    resp = root.push_raw([root.op(uuid7(), "create", {**draft, "grid": "g" * 65})])
    assert resp.status_code == 422 and resp.json()["error"]["field"] == "grid"
    # a number as the grid is its text (65 digits, or a sign and 64): as long, as refused
    # (was stored on SQLite and a 500 on PostgreSQL, whose grid columns hold 64)
    before = platform.dump()
    for grid in (10**64, -(10**63), 10**70):
        resp = root.push_raw([root.op(uuid7(), "create", {**draft, "grid": grid})])
        error = resp.json()["error"]
        assert (resp.status_code, error["code"], error["field"]) == (422, "bad_value", "grid")
    assert platform.dump() == before
    resp = root.push_raw([root.op(uuid7(), "create", {**draft, "grid": 10**63})])
    assert resp.status_code == 200, resp.text  # 64 digits: a grid code's length


_TEXTS = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfff", "张三", "a" * p.MAX_VALUE_CHARS]),
    st.sampled_from(["a" * (p.MAX_VALUE_CHARS + 1), "\x00" * (p.MAX_VALUE_CHARS + 1)]),
)
_PLAIN = st.recursive(
    st.one_of(_TEXTS, st.integers(), st.floats(), st.booleans(), st.none()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(_TEXTS, inner, max_size=3),
        # around the nesting limit (textcheck.MAX_DEPTH = 64)
        st.builds(nested, st.integers(min_value=60, max_value=66), inner),
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(_PLAIN)
def test_the_fast_value_check_agrees_with_the_one_that_explains(value: Any) -> None:
    """The push checks scan strings with one regex first and build the error only on a
    failure; both must refuse exactly the same values."""
    try:
        checks.check_plain(value, op=None, index=0, field="f")
        refused = False
    except ApiError:
        refused = True
    assert checks._plain_ok(value) is not refused
    assert (textcheck.plain_problem(value) is None) is not refused  # a file import's check


def test_the_answer_names_the_first_op_that_fails_any_check(platform: Platform) -> None:
    """A client sets the named op aside and sends the ops before it alone: they must have passed
    every check. An op of another grid first and a malformed value second: the first is named
    (before, every op's shape was checked before any op's scope, so the second was named, the
    first was sent again on its own and refused again)."""
    c = platform.client("wang")
    other_grid = c.op(uuid7(), "create", resident(grid="330106001001-02", seq=301))
    malformed = c.op(uuid7(), "create", {**resident(grid=GRID_A, seq=302), "name": {"a": 1}})
    before = platform.dump()
    resp = c.push_raw([good(c, 300), other_grid, malformed])
    assert resp.status_code == 403, resp.text
    error = resp.json()["error"]
    assert (error["code"], error["index"]) == ("out_of_scope", 1)
    resp = c.push_raw([good(c, 303), malformed, other_grid])
    assert resp.status_code == 422 and resp.json()["error"]["index"] == 1
    assert platform.dump() == before


def test_a_value_nested_past_the_limit_is_refused_without_walking_it() -> None:
    """Lists and objects nested deeper than ``MAX_DEPTH`` are a bad value for every check
    (push and file import), found at the limit: a value far deeper than Python's recursion
    limit is refused as ``bad_value``, not a RecursionError (a push's 500, retried for ever);
    one at the limit passes."""
    at_limit = nested(textcheck.MAX_DEPTH - 1, {"k": "v"})
    assert textcheck.plain_ok(at_limit) and textcheck.plain_problem(at_limit) is None
    checks.check_plain(at_limit, op=None, index=0, field="f")
    for value in (nested(textcheck.MAX_DEPTH, {"k": "v"}), nested(10_000, "a\x00b")):
        assert not textcheck.plain_ok(value)
        assert textcheck.plain_problem(value) == "bad_value"
        try:
            checks.check_plain(value, op=None, index=0, field="f")
        except ApiError as exc:
            assert (exc.code, exc.field) == ("bad_value", "f")
        else:
            raise AssertionError("not refused")
