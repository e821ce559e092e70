"""``ids.is_uuid`` (one regex match, asked for every pushed op) answers as its definition:
``str(uuid.UUID(text)) == text.lower()``, whatever the text (braces, URNs, no hyphens,
full-width or other Unicode digits ``uuid.UUID`` parses, lone surrogates, any case)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core import ids


def _by_definition(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text.lower()
    except (ValueError, AttributeError, TypeError):
        return False


_PARTS = st.sampled_from(
    ["0", "9", "a", "F", "-", "{", "}", "urn:uuid:", "０", "٣", "_", " ", "\n"]
)
_TEXTS = st.one_of(
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.uuids().map(lambda u: u.hex),
    st.uuids().map(lambda u: "{" + str(u) + "}"),
    st.uuids().map(lambda u: u.urn),
    st.uuids().map(lambda u: str(u) + "\n"),
    st.tuples(st.uuids(), st.integers(0, 35), _PARTS).map(
        lambda t: str(t[0])[: t[1]] + t[2] + str(t[0])[t[1] + 1 :]
    ),
    st.lists(_PARTS, max_size=40).map("".join),
    st.text(max_size=40),
)


@settings(max_examples=1000, deadline=None)
@given(text=_TEXTS)
def test_is_uuid_answers_as_its_definition(text: str) -> None:
    assert ids.is_uuid(text) == _by_definition(text)


def test_is_uuid_takes_no_object_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check parses no ``uuid.UUID`` (five times the time of the match)."""
    text = str(uuid.uuid4()).upper()
    monkeypatch.setattr(uuid, "UUID", None)
    assert ids.is_uuid(text) and not ids.is_uuid("not-a-uuid")
