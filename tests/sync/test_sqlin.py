"""``among`` (one array parameter on PostgreSQL) finds exactly what ``IN (...)`` finds, and so
does a statement built once with its values bound at execution (``Built``)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, insert, select

from sync.server import db
from sync.server.sqlin import Built, among
from tests.sync.conftest import Platform

_BUILT = Built(lambda among: select(db.meta.c.key).where(among(db.meta.c.key, "keys")))

STORED = ["a", "b", "张三", "O'Brien", "x" * 64, "", " b", "ä", "%", "_"]
# NUL (PostgreSQL) and lone surrogates (UTF-8) are refused either way, IN or ANY, and by the
# protocol before any query
texts = st.one_of(
    st.sampled_from(STORED),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12),
)


def _compare(engine: Engine, wanted: list[str]) -> None:
    c = db.meta.c
    with engine.connect() as conn:
        every = set(conn.execute(select(c.key)).scalars())
        fast = set(conn.execute(select(c.key).where(among(conn, c.key, wanted))).scalars())
        plain = set(conn.execute(select(c.key).where(c.key.in_(wanted))).scalars())
        built = set(conn.execute(_BUILT.on(conn), {"keys": wanted}).scalars())
        assert _BUILT.on(conn) is _BUILT.on(conn)  # built once per dialect
    assert fast == plain == built == every & set(wanted)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(wanted=st.lists(texts, max_size=40))
def test_among_finds_what_in_finds(platform: Platform, wanted: list[str]) -> None:
    engine = platform.engine
    c = db.meta.c
    with engine.begin() as conn:
        have = set(conn.execute(select(c.key)).scalars())
        rows = [{"key": k, "value": "t"} for k in STORED if k not in have]
        if rows:
            conn.execute(insert(db.meta), rows)
    _compare(engine, wanted)


def test_an_empty_list_matches_nothing(platform: Platform) -> None:
    c = db.meta.c
    with platform.engine.connect() as conn:
        assert conn.execute(select(c.key).where(among(conn, c.key, []))).all() == []
        assert conn.execute(_BUILT.on(conn), {"keys": []}).all() == []
