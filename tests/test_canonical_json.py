"""The one canonical JSON text (app.core.records.canonical_json): its orjson fast path gives
exactly what ``json.dumps`` gives, for every value both can write (op hashes and stored
records depend on the text), and the plain way for the rest."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.records import RecordStatus, canonical_json

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(1 << 70), max_value=1 << 70)
    | st.floats(allow_nan=False)
    | st.text()
    | st.sampled_from(["张三", "\x7f", "\u2028", "\x00", '"\\', "1e-05"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=20,
)


def plain(value: Any, sort_keys: bool) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)


@settings(max_examples=300, deadline=None)
@given(value=VALUES, sort_keys=st.booleans())
def test_the_fast_path_writes_what_json_dumps_writes(value: Any, sort_keys: bool) -> None:
    assert canonical_json(value, sort_keys=sort_keys) == plain(value, sort_keys)


def test_values_only_json_writes_go_the_plain_way() -> None:
    for value in ({"x": 1e-05}, [RecordStatus.DRAFT], {"big": 1 << 64}, (1, "二")):
        assert canonical_json(value) == plain(value, True)
