"""Statements prepared on PostgreSQL (``db.prepared``): planned once per connection, not at
every call, and their generic plans are the index probes their custom plans were.

Issue 19: PostgreSQL's CPU per nightly sync. Nothing was prepared, so every statement was
parsed and planned at every call; the caller look-up alone (three per sync) was planned
three times per sync. A prepared statement is planned with its values five times, then
PostgreSQL keeps a generic plan when it costs no more, which only a plan that no value
changes may be: these tests check each marked statement's generic plan on tables with a
city's spread, and that prepared and unprepared runs return the same rows.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import Connection

from app.core import ids
from sync.server import caller, db, numbering, oplog, pulls, tx
from tests.factories import resident
from tests.sync.conftest import GRID_A, Platform

ROWS = 20_000  # per table: enough that a scan costs more than an index probe
# the tables a marked statement reads or writes that grow with a city
BIG = (
    "records",
    "record_versions",
    "record_keys",
    "record_claims",
    "people",
    "ops",
    "aliases",
    "scope_exits",
    "tokens",
    "users",
    "user_grids",
    "devices",
)
# each marked statement that a login, a push of new residents and a pull run, by a fragment
MARKED = (
    "FROM tokens JOIN users",  # the caller look-up
    "INSERT INTO tokens",
    "INSERT INTO inflight_numbers",  # numbering (side connection)
    "DELETE FROM inflight_numbers",
    "(SELECT min(floor) FROM inflight_numbers)",  # a pull's high-water mark
    "EXISTS (SELECT * FROM aliases",  # a page's side tables
    "FROM scope_grants JOIN user_grids",  # grids that entered a worker's scope
    "FROM grids LEFT OUTER JOIN communities",  # grids changed in the page
    "ORDER BY records.seq LIMIT",  # the page
)


def _pg(platform: Platform) -> Engine:
    if platform.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no prepared statements to keep")
    engine: Engine = platform.engine
    return engine


def _spread(engine: Engine) -> None:
    """A city's spread in the tables the marked statements read: ``ROWS`` rows each."""
    now = "2026-01-01T00:00:00Z"
    statements = [
        "INSERT INTO records (id, form, form_version, grid, title, data, status, deleted, "
        "version, stamps, seq, created_at, created_by, updated_at, updated_by) SELECT 'r' || g, "
        "'resident', 1, 'g' || (g % 500), '', '{}', 'draft', false, 1, '{}', -g, :now, 'x', "
        ":now, 'x' FROM generate_series(1, :n) g",
        "INSERT INTO record_versions (record_id, version, form, data, status, deleted, kind, "
        "username, author, at) SELECT 'r' || g, 1, 'resident', '{}', 'draft', false, 'create', "
        "'x', 'x', :now FROM generate_series(1, :n) g",
        "INSERT INTO record_keys (form, key, record_id) SELECT 'resident', 'k' || g, 'r' || g "
        "FROM generate_series(1, :n) g",
        "INSERT INTO record_claims (form, key, record_id) SELECT 'resident', 'c' || g, 'r' || g "
        "FROM generate_series(1, :n) g",
        "INSERT INTO people (record_id, form, name, pinyin, birth) SELECT 'r' || g, 'resident', "
        "'n' || g, 'p' || g, to_char(date '1940-01-01' + g % 20000, 'YYYY-MM-DD') "
        "FROM generate_series(1, :n) g",
        "INSERT INTO ops (device_id, op_id, username, record_id, version, result, at) "
        "SELECT 'd' || (g % 2000), 'o' || g, 'x', 'r' || g, 1, '{}', :now "
        "FROM generate_series(1, :n) g",
        "INSERT INTO aliases (old_id, canonical_id, reason, at, seq) SELECT 'a' || g, 'r' || g, "
        "'merge', :now, -g FROM generate_series(1, :n) g",
        "INSERT INTO scope_exits (record_id, grid, seq) SELECT 'r' || g, 'g1', -g "
        "FROM generate_series(1, :n) g",
        "INSERT INTO users (username, password_hash, role, community, disabled, created_at) "
        "SELECT 'u' || g, 'x', 'worker', 'c1', false, :now FROM generate_series(1, :n) g",
        "INSERT INTO user_grids (username, grid) SELECT 'u' || g, 'g' || (g % 500) "
        "FROM generate_series(1, :n) g",
        "INSERT INTO devices (device_id, installation, username, root, created_at) "
        "SELECT 'd' || g, 'i', 'u' || g, 'd' || g, :now FROM generate_series(1, :n) g",
        "INSERT INTO tokens (token_hash, username, device_id, created_at, expires_at, kind) "
        "SELECT 't' || g, 'u' || g, 'd' || g, :now, :now, 'refresh' "
        "FROM generate_series(1, :n) g",
    ]
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for sql in statements:
            conn.execute(text(sql), {"now": now, "n": ROWS})
        conn.execute(text("ANALYZE"))


def _generic_plans_from_now_on(engine: Engine) -> None:
    """New connections of ``engine`` run every prepared statement with its generic plan."""

    @event.listens_for(engine, "connect")
    def _generic(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute("SET plan_cache_mode = force_generic_plan")
        dbapi_conn.commit()


def _prepared_plans(engine: Engine) -> dict[str, str]:
    """Statement text -> its generic plan, of every statement prepared on ``engine``'s idle
    connections (each checked out once; ``EXPLAIN EXECUTE`` with NULLs: a generic plan does
    not depend on the values)."""
    plans: dict[str, str] = {}
    held = [engine.connect() for _ in range(engine.pool.checkedin())]  # type: ignore[attr-defined]
    try:
        for conn in held:
            conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
            rows = conn.exec_driver_sql(
                "SELECT name, statement, cardinality(parameter_types) "
                "FROM pg_prepared_statements WHERE NOT from_sql"
            ).all()
            for name, statement, count in rows:
                args = ", ".join(["NULL"] * int(count or 0))
                call = f"EXPLAIN EXECUTE {name}({args})" if args else f"EXPLAIN EXECUTE {name}"
                plan = "\n".join(r[0] for r in conn.exec_driver_sql(call))
                plans[" ".join(statement.split())] = plan  # one line: fragments match
            conn.rollback()
    finally:
        for conn in held:
            conn.close()
    return plans


def test_every_marked_statement_keeps_an_index_plan_when_generic(platform: Platform) -> None:
    """A login, a push of new residents and a pull with every prepared statement on its
    generic plan, on tables of a city's spread: each one the index probe it is planned as
    with its values (no sequential scan of a table that grows), and the results right."""
    engine = _pg(platform)
    _spread(engine)
    engine.dispose()  # also ends the numbering side pool: both open new connections below
    _generic_plans_from_now_on(engine)
    _generic_plans_from_now_on(numbering._side(engine))
    client = platform.client("wang")
    people = [resident(grid=GRID_A, seq=n) for n in range(1, 60, 2)]
    ops = [client.op(ids.uuid7(), "create", {**q, "_status": "draft"}) for q in people]
    assert {r["status"] for r in client.push(ops)} == {"applied"}
    assert {r["status"] for r in client.push(ops)} == {"duplicate_op"}  # looked up, replayed
    pulled, _cursor = client.pull_all(0)
    assert {r["id"] for r in pulled} >= {o["record_id"] for o in ops}
    plans = _prepared_plans(engine) | _prepared_plans(numbering._side(engine))
    missing = [m for m in MARKED if not any(m in s for s in plans)]
    assert not missing, "\n".join(sorted(plans))
    for statement, plan in plans.items():
        scans = [t for t in BIG if f"Seq Scan on {t} " in plan + " "]
        assert not scans, (statement, plan)


def test_the_caller_look_up_is_planned_five_times_per_connection(platform: Platform) -> None:
    """However often a connection runs it: five plans with the values, then PostgreSQL's
    generic plan, never planned again (unprepared, it was planned at every call)."""
    engine = _pg(platform)
    _spread(engine)
    with engine.connect() as conn:
        for n in range(12):
            assert caller.find(conn, f"t{n + 1}") is not None
        custom, generic = conn.exec_driver_sql(
            "SELECT custom_plans, generic_plans FROM pg_prepared_statements "
            "WHERE strpos(statement, 'FROM tokens JOIN users') > 0"
        ).one()
    assert custom <= 5 and generic >= 7, (custom, generic)


def _rows(conn: Connection, stmt: Any, params: dict[str, Any], prepare: bool) -> list[Any]:
    chosen = stmt.execution_options(**{db.PREPARE: prepare})
    return sorted(tuple(r) for r in conn.execute(chosen, params))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    picks=st.lists(st.integers(1, 60), max_size=12),
    device=st.integers(0, 4),
    form=st.sampled_from(["resident", "house"]),
)
def test_prepared_reads_return_what_unprepared_ones_do(
    platform: Platform, picks: list[int], device: int, form: str
) -> None:
    """The caller look-up and a pull's reads on their generic plans (prepared) and planned
    with their values (unprepared): the same rows, for tokens, grids and change-number
    ranges that hit and miss. (The hook prepares whatever statement asks: the push's array
    look-ups too, which stay unprepared for their plans on empty tables, not their rows.)"""
    engine = _pg(platform)
    with engine.connect() as conn:
        if conn.execute(text("SELECT count(*) FROM records")).scalar_one() == 0:
            _seed_small(conn)
        conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        since, upper = min(picks, default=0), max(picks, default=0)
        grids = sorted({f"g{n % 3}" for n in picks})
        reads: list[tuple[Any, dict[str, Any]]] = [
            (caller._FIND, {"digest": f"t{picks[0] if picks else 0}"}),
            (pulls._SIDES, {"since": since, "upper": upper}),
            (
                pulls._GRID_NUMBERS,
                {"grid": f"g{device % 3}", "since": since, "upper": upper, "limit": 1 + device},
            ),
            (
                pulls._PAGE_SCOPED,
                {"scope": grids or ["g0"], "since": since, "upper": upper, "limit": 1 + device},
            ),
            (oplog._LOOKUP.on(conn), {"ids": [f"o{n}" for n in picks], "device": f"d{device}"}),
            (tx._KEYS_AND_CLAIMS.on(conn), {"form": form, "keys": [f"k{n}" for n in picks]}),
        ]
        for stmt, params in reads:
            assert _rows(conn, stmt, params, True) == _rows(conn, stmt, params, False)
        conn.rollback()


def _seed_small(conn: Connection) -> None:
    """Records, keys, claims, aliases, ops, users and tokens of ids 1-50 (of the 60 the
    test draws)."""
    now = "2026-01-01T00:00:00Z"
    for sql in (
        "INSERT INTO records (id, form, form_version, grid, title, data, status, deleted, "
        "version, stamps, seq, created_at, created_by, updated_at, updated_by) SELECT 'r' || g, "
        "'resident', 1, 'g' || (g % 3), '', '{}', 'draft', false, 1, '{}', g, :now, 'x', :now, "
        "'x' FROM generate_series(1, 50) g",
        "INSERT INTO users (username, password_hash, role, community, disabled, created_at) "
        "SELECT 'u' || g, 'x', 'worker', 'c1', false, :now FROM generate_series(1, 50) g",
        "INSERT INTO tokens (token_hash, username, device_id, created_at, expires_at, kind) "
        "SELECT 't' || g, 'u' || g, 'd' || g, :now, :now, 'access' "
        "FROM generate_series(1, 50) g",
        "INSERT INTO record_keys (form, key, record_id) SELECT 'resident', 'k' || g, 'r' || g "
        "FROM generate_series(1, 50) g",
        "INSERT INTO record_claims (form, key, record_id) SELECT 'resident', 'k' || g, "
        "'r' || (g + 1) FROM generate_series(1, 50, 3) g",
        "INSERT INTO aliases (old_id, canonical_id, reason, at, seq) SELECT 'a' || g, "
        "'r' || (g % 20), 'merge', :now, g + 1 FROM generate_series(1, 50, 7) g",
        "INSERT INTO ops (device_id, op_id, username, record_id, version, result, at) "
        "SELECT 'd' || (g % 5), 'o' || g, 'x', 'r' || g, 1, '{}', :now "
        "FROM generate_series(1, 50) g",
    ):
        conn.execute(text(sql), {"now": now})
    conn.commit()


def test_an_engine_made_not_to_prepare_prepares_nothing(platform: Platform) -> None:
    """``--no-prepared-statements`` (a PgBouncer that keeps no prepared statements): the
    marked statements run unprepared, on the side pool too, and return the same."""
    engine = _pg(platform)
    url = engine.url.render_as_string(hide_password=False)
    plain = db.make_engine(url, db.PoolSettings(size=1, overflow=0, prepare=False))
    try:
        with plain.connect() as conn:
            for _ in range(8):
                assert caller.find(conn, "nothing") is None
                assert numbering.high_water(conn) >= 0
            left = conn.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements").scalar()
        assert left == 0
        assert db.connect_args(plain) == {"prepare_threshold": None}
        assert db.connect_args(engine) == db.PG_CONNECT_ARGS
    finally:
        plain.dispose()
