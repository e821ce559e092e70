"""A push answer written by orjson (``sync.server.wire``) is ``JSONResponse``'s: the same
status, headers and body bytes for any value, or the same refusal."""

from __future__ import annotations

import enum
import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.responses import JSONResponse, Response

from sync.server import wire
from tests.factories import resident
from tests.sync.conftest import GRID_A, Platform


class Colour(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    ONE = 1


LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.sampled_from(["\ud800", "te\udfffxt", "幸福路", "\x00", "null", Colour.RED, Level.ONE]),
)
KEYS = st.one_of(st.text(max_size=8), st.sampled_from([1, None, True, 2.5, "\ud800", Colour.RED]))


def _values() -> st.SearchStrategy[Any]:
    return st.recursive(
        LEAVES,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.lists(inner, max_size=3).map(tuple),
            st.dictionaries(KEYS, inner, max_size=4),
        ),
        max_leaves=20,
    )


RESULT = st.fixed_dictionaries(
    {
        "op_id": st.text(min_size=1, max_size=40),
        "status": st.sampled_from(["applied", "conflict", "merged_into", "rejected"]),
        "record_id": st.uuids().map(str),
        "version": st.integers(1, 2**31 - 1),
        "conflicts": st.lists(
            st.fixed_dictionaries(
                {"field": st.text(max_size=10), "kind": st.just("soft"), "base": _values()}
            ),
            max_size=2,
        ),
    }
)
ANSWERS = st.fixed_dictionaries({"results": st.lists(RESULT, max_size=5)})


def _outcome(make: Any, value: Any) -> tuple[str, Any]:
    try:
        response: Response = make(value)
    except Exception as exc:  # noqa: BLE001  # the refusal itself is compared
        return "raised", type(exc)
    return "answer", (response.status_code, response.raw_headers, response.body)


@settings(max_examples=600, deadline=None)
@given(value=st.one_of(_values(), ANSWERS))
def test_an_answer_is_written_as_json_response_writes_it(value: Any) -> None:
    assert _outcome(wire.json_response, value) == _outcome(JSONResponse, value)


@pytest.mark.parametrize(
    "value",
    [
        {"results": [{"op_id": "d:1", "status": "applied", "record_id": "r", "version": 1}]},
        {"a": float("nan")},  # JSONResponse refuses it: so does the answer
        {"a": 2**64},  # orjson cannot write it: the standard module does
        {1: "x"},  # a key that is not text: written as "1" by the standard module
        {"a": "\ud800"},  # a lone surrogate: refused when encoded, as before
        {"t": (1, 2)},
    ],
)
def test_the_unusual_answers_are_written_or_refused_as_before(value: Any) -> None:
    assert _outcome(wire.json_response, value) == _outcome(JSONResponse, value)


def test_a_push_is_answered_without_the_standard_json_module(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ordinary push's answer is written by orjson (``JSONResponse.render`` is not run for
    it), and reads as before: one result per op, in order."""
    rendered: list[int] = []
    real = JSONResponse.render

    def counting(self: JSONResponse, content: Any) -> bytes:
        rendered.append(1)
        return real(self, content)

    client = platform.client("wang")
    monkeypatch.setattr(JSONResponse, "render", counting)
    ops = [client.op(str(uuid.uuid4()), fields=resident(seq=n, grid=GRID_A)) for n in range(1, 4)]
    resp = client.push_raw(ops)
    assert resp.status_code == 200, resp.text
    assert rendered == []
    assert resp.headers["content-type"] == "application/json"
    results = json.loads(resp.content)["results"]
    assert [r["op_id"] for r in results] == [op["op_id"] for op in ops]
    assert {r["status"] for r in results} == {"applied"}
