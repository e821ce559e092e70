"""``among`` (one array parameter on PostgreSQL) finds exactly what ``IN (...)`` finds, and so
does a statement built once with its values bound at execution (``Built``); the array goes
as the text of an array literal, which PostgreSQL reads as the driver's own list."""

from __future__ import annotations

from datetime import date
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, insert, select

from app.core.ids import uuid7
from sync.server import db
from sync.server.sqlin import Built, among, among_rows, array_literal
from tests.factories import resident
from tests.sync.conftest import Platform

_BUILT = Built(lambda among: select(db.meta.c.key).where(among(db.meta.c.key, "keys")))
_JOINED = Built(  # the list joined to the table (SQLite), as a push reads records and aliases
    lambda among: among_rows(among, select(db.meta.c.key), db.meta, db.meta.c.key, "keys")
)

STORED = ["a", "b", "张三", "O'Brien", "x" * 64, "", " b", "ä", "%", "_"]
# what a JSON list (SQLite's json_each) must carry as it is: quotes, backslashes, an escape's
# spelling, control characters, U+2028, a character past the BMP, text that reads as JSON
STORED += ['"', 'a"b\\', "\\u0041", "\n\t", "\x01", "\x7f", "\u2028", "😀", "123", "null", "[1]"]
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
        once = sorted(set(wanted))  # ``among_rows`` takes each value once
        joined = [*conn.execute(_JOINED.on(conn), {"keys": once}).scalars()]
    assert fast == plain == built == every & set(wanted)
    assert sorted(joined) == sorted(every & set(wanted))


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
        assert conn.execute(_JOINED.on(conn), {"keys": []}).all() == []


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.lists(st.one_of(texts, st.none(), st.sampled_from(['"', "\\", "{}", ",", "NULL"])))
)
def test_the_array_literal_reads_back_as_the_drivers_list(
    platform: Platform, values: list[str | None]
) -> None:
    """PostgreSQL reads ``array_literal``'s text as the array psycopg's list dumper sends,
    element for element (quotes, backslashes, braces, commas, the word NULL, NULL itself)."""
    engine = platform.engine
    if engine.dialect.name != "postgresql":
        return  # SQLite keeps IN (...): no arrays
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur:
            cur.execute("SELECT %s::text[], CAST(%s AS text[])", [values, array_literal(values)])
            plain, fast = cur.fetchone() or (None, None)
    assert fast == plain == values


def test_a_push_sends_its_id_lists_as_array_text(platform: Platform) -> None:
    """PostgreSQL: the id lists of a push's bulk reads reach the driver as one string each,
    not as Python lists the driver dumps element by element (70-120 µs per 50 ids). The
    duplicate guard's names and pinyins too: since revision 0019 they probe an index with the
    birth dates, pair by pair (``sqlin.zipped``), instead of filtering rows."""
    engine = platform.engine
    sent: list[Any] = []

    def note(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "ANY" in statement or "unnest(" in statement:  # bulk reads; the noted words
            sent.extend(params.values() if isinstance(params, dict) else params)

    wang = platform.client("wang")
    event.listen(engine, "before_cursor_execute", note)
    try:
        (done,) = wang.push([wang.op(uuid7(), "create", resident())])
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert done["status"] == "applied"
    if engine.dialect.name != "postgresql":
        return
    lists = [v for v in sent if isinstance(v, list | str) and str(v).startswith(("{", "["))]
    assert not [v for v in lists if isinstance(v, list)], sent
    texts = [v for v in lists if isinstance(v, str)]
    assert len(texts) >= 5 and all(v.startswith("{") for v in texts), sent
    assert '{"张三"}' in texts and '{"zhangsan"}' in texts, sent  # resident()'s name, pinyin


def test_a_push_on_sqlite_binds_each_list_as_one_parameter(tmp_path: Any, formset: Any) -> None:
    """A push of 120 new residents reads with lists of 120 ids, keys and names: on SQLite each
    list is one JSON parameter (``json_each``), not a placeholder per value (each rendered and
    processed in Python at every call); and the push applies every op."""
    from sync import protocol as p
    from sync.server.service import Service
    from tests.sync.conftest import resident_creates
    from tests.sync.test_server_batch import WORKER, _fresh

    engine = _fresh(f"sqlite:///{tmp_path / 'json.db'}")
    widest: list[int] = []

    def note(_conn: Any, _cursor: Any, statement: str, params: Any, _ctx: Any, many: bool) -> None:
        if not many and statement.lstrip().upper().startswith("SELECT"):
            widest.append(len(params))

    try:
        ops = resident_creates(120, "dev", date(1966, 6, 6))
        req = p.PushRequest(protocol=p.SUPPORTED_PROTOCOLS[-1], device_id="dev", ops=ops)
        event.listen(engine, "before_cursor_execute", note)
        results = Service(engine, formset).push(WORKER, req, "dev")
        event.remove(engine, "before_cursor_execute", note)
        assert [r["status"] for r in results] == ["applied"] * 120
        assert widest and max(widest) <= 8  # a few lists and scalars, whatever their length
    finally:
        engine.dispose()
