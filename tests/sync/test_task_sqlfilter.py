"""Property: a task filter pushed down to SQL selects exactly what ``RecordFilter.matches`` does.

Random records (blank and Unicode-blank texts, dates in every ISO form Python reads, numbers past
2**53, ID numbers of either generation and in other spellings, booleans, lists holding codes or
numbers, empty objects, missing fields) and random filter trees of every kind and operator the
filter language has, on SQLite and PostgreSQL: the records ``cond OR doubt`` selects (through
``tasks.select``'s own query), decided again by ``matches`` where ``doubt`` holds (as ``pick``
does), are the records ``matches`` selects.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import date
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, delete, event, insert, select, text

from app.core.forms import load_formset
from app.core.ids import uuid7
from app.core.recordfilter import And, Not, Or, RecordFilter, Term, parse_filter
from sync import protocol as p
from sync.server import admin, db
from sync.server.auth import User
from sync.server.service import Service
from sync.server.tasks import select as choose
from sync.server.tasks import sqlfilter, store
from sync.server.tasks.spec import TaskSpec
from tests.factories import id_number, id_number_15, resident
from tests.sync.conftest import PgCluster

FIELDS = ("f1", "f2")
SCALE = float(os.environ.get("GC_SQLFILTER_SCALE", "1"))  # more or fewer examples than usual
EXAMPLES = {
    ("sqlite", "text"): 200,
    ("sqlite", "dates"): 200,
    ("sqlite", "numbers"): 150,
    ("sqlite", "ids"): 150,
    ("sqlite", "term"): 400,
    ("sqlite", "tree"): 150,
    ("postgresql", "text"): 100,
    ("postgresql", "dates"): 100,
    ("postgresql", "numbers"): 100,
    ("postgresql", "ids"): 60,
    ("postgresql", "term"): 150,
    ("postgresql", "tree"): 60,
}

BLANKS = ["", " ", "\u3000", "\xa0", "\t\n"]
FOLDS = ["abc", "ABC", "Straße", "STRASSE", "\u212a", "k"]  # \u212a: the Kelvin sign folds to k
TEXTS = ["张三", "三", "幸福路3号", "12", "a b", *BLANKS, *FOLDS]
DATES = [
    "2026-03-01",
    "2026-02-28",
    "2024-02-29",
    "2025-02-29",
    "2026-13-01",
    "0000-01-01",
    "2000-12-31",
    "20260301",
    "2026-W09-7",
    "2026W09",
    "2026-3-1",
    " 2026-03-01",
]
CODES = ["1", "2", "10", "流动人口"]
NUMBERS = [0, 1, -1, 2.5, 3, 1e20, 2**53, 2**53 + 1, -(2**60), 0.1, 100]
_N18, _O18 = id_number(date(1949, 12, 31), 2, "110105"), id_number(date(1985, 6, 15), 3)
_WRONG = _N18[:17] + "1"  # a wrong check character: not the 15-digit number's key
_YOUNG = id_number(date(2001, 2, 3), 4)  # born in the 2000s: no 15-digit form
# ID numbers of either generation, in other spellings (lower-case x, spaces, full width) and
# near misses, so an ID-number term meets the other generation of its value often
IDS = [
    _N18,
    _N18[:6] + _N18[8:17],
    _N18.lower(),
    f" {_N18[:6]} {_N18[8:17]}",
    "".join(chr(ord(c) + 0xFEE0) for c in _N18[:6] + _N18[8:17]),  # full-width digits
    _WRONG,
    _WRONG[:6] + _WRONG[8:17],
    _O18,
    _O18[:6] + _O18[8:17],
    _YOUNG,
    _YOUNG[:6] + _YOUNG[8:17],
    "12345678901234X",
]

json_values = st.one_of(
    st.none(),
    st.sampled_from(TEXTS + CODES),
    st.sampled_from(BLANKS),
    st.sampled_from(FOLDS),
    st.sampled_from(DATES),
    st.text(max_size=6),
    st.sampled_from(NUMBERS),
    st.sampled_from(IDS),
    st.integers(-200, 200),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.booleans(),
    st.lists(st.sampled_from(CODES), max_size=3),
    st.lists(st.one_of(st.sampled_from(CODES), st.integers(0, 3), st.booleans()), max_size=3),
    st.just({}),
    st.just({"lat": 1}),
)
records = st.lists(
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=2), min_size=4, max_size=16
)


def _term() -> st.SearchStrategy[Term]:
    field = st.sampled_from(FIELDS)
    compare = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])
    empty = st.sampled_from(["is empty", "is filled"])
    text_value = st.one_of(st.sampled_from(TEXTS + CODES), st.text(min_size=1, max_size=3))
    date_value = st.sampled_from(["2026-03-01", "2000-12-31", "today", "today-30d", "today+1y"])
    number = st.sampled_from([0, 1, -1, 2.5, 3, 100, 2**53, 1e20, 0.1])
    id_value = st.one_of(st.sampled_from(IDS), text_value)
    return st.one_of(
        st.builds(Term, field, st.sampled_from(["text", "code", "any", "id"]), empty),
        st.builds(
            Term, field, st.sampled_from(["text", "code"]), st.sampled_from(["=", "!="]), text_value
        ),
        st.builds(Term, field, st.just("text"), st.just("contains"), text_value),
        st.builds(Term, field, st.just("text"), st.just("contains"), st.sampled_from(FOLDS)),
        st.builds(
            Term,
            field,
            st.sampled_from(["text", "code"]),
            st.just("in"),
            st.lists(text_value, min_size=1, max_size=3).map(tuple),
        ),
        st.builds(Term, field, st.just("id"), st.sampled_from(["=", "!=", "contains"]), id_value),
        st.builds(
            Term, field, st.just("id"), st.just("in"), st.lists(id_value, min_size=1).map(tuple)
        ),
        st.builds(Term, field, st.just("number"), compare, number),
        st.builds(Term, field, st.just("number"), st.just("in"), st.tuples(number, number)),
        st.builds(Term, field, st.sampled_from(["number", "date", "bool", "codes"]), empty),
        st.builds(Term, field, st.just("date"), compare, date_value),
        st.builds(Term, field, st.just("date"), st.just("in"), st.tuples(date_value, date_value)),
        st.builds(
            Term,
            st.just("age"),
            st.just("age"),
            st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "in", "is empty", "is filled"]),
            st.sampled_from([0, 1, 2, 26, 30, 17.5]).map(lambda v: v),
            field,
        ).map(
            lambda t: Term(
                t.field, t.kind, t.op, (t.value, 1) if t.op == "in" else t.value, t.source
            )
        ),
        st.builds(Term, field, st.just("bool"), st.sampled_from(["=", "!="]), st.booleans()),
        st.builds(Term, field, st.just("bool"), st.just("in"), st.tuples(st.booleans())),
        st.builds(
            Term,
            field,
            st.just("codes"),
            st.sampled_from(["=", "!=", "contains"]),
            st.sampled_from(CODES),
        ),
        st.builds(
            Term,
            field,
            st.just("codes"),
            st.just("in"),
            st.lists(st.sampled_from(CODES), min_size=1).map(tuple),
        ),
    )


terms = _term().map(lambda term: RecordFilter("f", term))
# texts alone: case folding and blanks need a text term to meet a text value often enough
text_records = st.lists(
    st.fixed_dictionaries(
        {"f1": st.one_of(st.sampled_from(FOLDS), st.sampled_from(TEXTS), st.text(max_size=4))}
    ),
    min_size=4,
    max_size=16,
)
text_terms = st.one_of(
    st.builds(Term, st.just("f1"), st.just("text"), st.just("contains"), st.sampled_from(FOLDS)),
    st.builds(Term, st.just("f1"), st.just("text"), st.just("contains"), st.sampled_from(TEXTS)),
    st.builds(
        Term, st.just("f1"), st.just("text"), st.just("contains"), st.text(min_size=1, max_size=2)
    ),
    st.builds(
        Term, st.just("f1"), st.just("text"), st.sampled_from(["=", "!="]), st.sampled_from(TEXTS)
    ),
    st.builds(Term, st.just("f1"), st.just("text"), st.sampled_from(["is empty", "is filled"])),
).map(lambda term: RecordFilter("f", term))
# dates alone: leap days, the 29th-31st, other ISO forms and ages need dates to meet often
date_records = st.lists(
    st.fixed_dictionaries(
        {
            "f1": st.one_of(
                st.sampled_from(DATES),
                st.dates().map(date.isoformat),
                st.dates().map(lambda d: d.strftime("%Y%m%d")),
                st.sampled_from(BLANKS),
            )
        }
    ),
    min_size=4,
    max_size=16,
)
date_terms = st.one_of(
    st.builds(
        Term,
        st.just("f1"),
        st.just("date"),
        st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "is empty", "is filled"]),
        st.one_of(st.sampled_from(["today", "today-10y"]), st.dates().map(date.isoformat)),
    ),
    st.builds(
        Term,
        st.just("age"),
        st.just("age"),
        st.sampled_from(["=", "!=", "<", ">=", "is empty"]),
        st.integers(0, 40),
        st.just("f1"),
    ),
).map(lambda term: RecordFilter("f", term))
# ID numbers alone: each generation, spelling and near miss meets ID-number terms often
id_records = st.lists(
    st.fixed_dictionaries(
        {"f1": st.one_of(st.sampled_from(IDS), st.sampled_from(BLANKS), st.integers(0, 9))}
    ),
    min_size=4,
    max_size=16,
)
id_terms = st.one_of(
    st.builds(
        Term,
        st.just("f1"),
        st.just("id"),
        st.sampled_from(["=", "!=", "contains"]),
        st.sampled_from(IDS),
    ),
    st.builds(
        Term,
        st.just("f1"),
        st.just("id"),
        st.just("in"),
        st.lists(st.sampled_from(IDS), min_size=1, max_size=3).map(tuple),
    ),
).map(lambda term: RecordFilter("f", term))
# numbers alone: past 2**53 a double and Python's int part ways
number_records = st.lists(
    st.fixed_dictionaries(
        {
            "f1": st.one_of(
                st.sampled_from(NUMBERS),
                st.integers(),
                st.floats(allow_nan=False, allow_infinity=False),
            )
        }
    ),
    min_size=4,
    max_size=16,
)
number_terms = st.builds(
    Term,
    st.just("f1"),
    st.just("number"),
    st.sampled_from(["=", "!=", "<", "<=", ">", ">="]),
    st.sampled_from(NUMBERS),
).map(lambda term: RecordFilter("f", term))
filters = st.recursive(
    _term(),
    lambda kids: st.one_of(
        st.builds(Not, kids),
        st.lists(kids, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
        st.lists(kids, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
    ),
    max_leaves=5,
).map(lambda root: RecordFilter("f", root))
todays = st.sampled_from([date(2026, 3, 1), date(2024, 2, 29), date(2026, 12, 31)])


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    if request.param == "sqlite":
        made = create_engine(f"sqlite:///{tmp_path_factory.mktemp('sqlfilter') / 'p.db'}")
        db.records.create(made)
        yield made
        made.dispose()
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    name = f"gc_sqlfilter_{os.getpid()}"
    maint = create_engine(f"{cluster.url}/postgres", isolation_level="AUTOCOMMIT")
    with maint.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    made = create_engine(f"{cluster.url}/{name}")
    db.records.create(made)
    try:
        yield made
    finally:
        made.dispose()
        with maint.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        maint.dispose()


def _row(n: int, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"r{n:03d}",
        "form": "f",
        "form_version": 1,
        "grid": "G1",
        "title": "",
        "data": db.dumps(data),
        "status": "draft",
        "deleted": False,
        "version": 1,
        "stamps": "{}",
        "seq": n + 1,
        "created_at": "",
        "created_by": "t",
        "updated_at": "",
        "updated_by": "t",
    }


def _pushed_selection(engine: Engine, flt: RecordFilter, today: date) -> set[str]:
    """What ``tasks.select.pick`` keeps: SQL's answer, ``matches`` where SQL has a doubt (or
    for every record, when the database cannot read one as JSON: ``\u0000`` on PostgreSQL)."""
    form = SimpleNamespace(id="f")
    with engine.begin() as conn:
        rows = choose._filtered(conn, form, None, None, False, flt, today)  # type: ignore[arg-type]
    return {
        rid
        for rid, _grid, data, doubt in rows
        if not doubt or flt.matches(json.loads(data or "{}"), today)
    }


def _check(engine: Engine, datas: list[dict[str, Any]], flt: RecordFilter, today: date) -> None:
    with engine.begin() as conn:
        conn.execute(delete(db.records))
        conn.execute(insert(db.records), [_row(n, d) for n, d in enumerate(datas)])
    # the stored JSON read back, as pick reads it (e.g. -0.0 and 1e20 as JSON wrote them)
    expected = {
        f"r{n:03d}" for n, d in enumerate(datas) if flt.matches(json.loads(db.dumps(d)), today)
    }
    assert _pushed_selection(engine, flt, today) == expected, flt.text


@pytest.mark.parametrize("shape", ["text", "dates", "numbers", "ids", "term", "tree"])
def test_pushed_filter_selects_what_matches_selects(engine: Engine, shape: str) -> None:
    """Texts, dates and numbers meet their terms often; single terms find a wrong translation fast; trees check
    and/or/not and their doubts."""
    strategy = {
        "text": text_terms,
        "dates": date_terms,
        "numbers": number_terms,
        "ids": id_terms,
        "term": terms,
        "tree": filters,
    }[shape]
    datas_st = {
        "text": text_records,
        "dates": date_records,
        "numbers": number_records,
        "ids": id_records,
    }.get(shape, records)

    @settings(
        max_examples=max(1, int(EXAMPLES[engine.dialect.name, shape] * SCALE)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(datas=datas_st, flt=strategy, today=todays)
    def run(datas: list[dict[str, Any]], flt: RecordFilter, today: date) -> None:
        _check(engine, datas, flt, today)

    run()


def test_common_filters_need_no_second_look(engine: Engine) -> None:
    """The filters tasks are made of are decided by SQL alone: nothing read back in Python."""
    datas = [
        {"f1": "2", "f2": "1990-05-01", "f3": ["1", "2"]},
        {"f1": "1", "f2": "2010-06-30"},
        {"f1": " ", "f3": []},
        {},
    ]
    with engine.begin() as conn:
        conn.execute(insert(db.records), [_row(n, d) for n, d in enumerate(datas)])
    today = date(2026, 3, 1)
    r = db.records.c
    for root in (
        Term("f1", "code", "=", "2"),
        And((Term("f1", "code", "in", ("1", "2")), Term("f2", "date", "<", "today-10y"))),
        Or((Term("f2", "date", "is filled"), Not(Term("f2", "date", "is empty")))),
        Term("age", "age", ">=", 18, "f2"),
        Term("f3", "codes", "contains", "2"),
        Term("f1", "text", "contains", "幸福"),
    ):
        flt = RecordFilter("f", root)
        pushed = sqlfilter.translate(flt, r.data, engine.dialect.name, today)
        with engine.connect() as conn:
            doubts = conn.execute(select(r.id).where(pushed.doubt)).all()
        assert doubts == [], flt.text
        _check(engine, datas, flt, today)


def _residents(db_url: str, kinds: list[str]) -> tuple[Engine, list[str]]:
    """A platform with grid G1 and one resident of each population type in ``kinds``."""
    engine = db.make_engine(db_url)
    db.init_db(engine)
    admin.put_community(engine, "C1", "C1")
    admin.put_grid(engine, "G1", "G1", "C1")
    svc = Service(engine, load_formset())
    writer = User("w", "worker", None, frozenset(["G1"]))
    ids = []
    for n, kind in enumerate(kinds):
        rid = uuid7()
        fields = {**resident(seq=n + 11, grid="G1", population_type=kind), "_status": "draft"}
        op = p.Op(
            op_id=f"d:{n}",
            record_id=rid,
            form="resident",
            kind="create",
            fields=fields,
            edited_at="2024-01-01T00:00:00.000Z#0000",
        )
        assert [r["status"] for r in svc.apply(writer, "d", [op])] == ["applied"]
        ids.append(rid)
    return engine, ids


def _issue(engine: Engine, text: str) -> tuple[int, set[str]]:
    """Issue a verify task with filter ``text`` as an admin; (count, record ids of its items)."""
    root = User("root", "admin", None, None)
    spec = TaskSpec(title="t", form="resident", fields=["phone"], filter=text)
    with db.write(engine) as conn:
        task, count = store.create(conn, load_formset(), root, spec, date(2026, 3, 1))
        items = set(
            conn.execute(
                select(db.task_items.c.record_id).where(db.task_items.c.task_id == task["id"])
            ).scalars()
        )
    return count, items


def test_a_common_filter_is_decided_without_reading_records_in_python(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 6-7 s of issuing a 100 000-item task were Python decoding and matching each record:
    a filter SQL reads exactly never gets there."""
    engine, ids = _residents(db_url, ["1", "2", "2", "1"])
    calls: list[int] = []
    plain = RecordFilter.matches
    monkeypatch.setattr(
        RecordFilter, "matches", lambda self, *a: calls.append(1) or plain(self, *a)
    )
    count, items = _issue(engine, "人口类型 = 流动人口 and 出生日期 < today and phone is filled")
    assert (count, items, calls) == (2, {ids[1], ids[2]}, [])
    engine.dispose()


def test_a_record_the_database_cannot_read_as_json_leaves_the_filter_to_python(
    db_url: str,
) -> None:
    """``Infinity`` is JSON to Python but not to SQLite or PostgreSQL: the pushed query fails,
    and the task is chosen by ``matches`` instead, with the same items."""
    engine, ids = _residents(db_url, ["1", "2", "2"])
    r = db.records.c
    with db.write(engine) as conn:  # as an old client's push could have stored it
        data = conn.execute(select(r.data).where(r.id == ids[2])).scalar_one()
        conn.execute(
            db.records.update().where(r.id == ids[2]).values(data=data[:-1] + ',"x":Infinity}')
        )
    assert _issue(engine, "人口类型 = 2") == (2, {ids[1], ids[2]})
    engine.dispose()


@pytest.mark.parametrize("op", ["is empty", "is filled"])
def test_a_text_holding_nul_is_not_read_as_blank(engine: Engine, op: str) -> None:
    """SQLite's text functions stop at a NUL: "\\x00" trimmed there read as blank, while
    ``matches`` (``str.strip``) finds it filled. Found by Hypothesis; no write path stores a NUL
    (app.core.textcheck), but the pushed filter must not disagree about one."""
    datas = [{"f1": "\x00"}, {"f1": " \x00"}, {"f1": "a\x00"}, {"f1": " "}, {}]
    _check(engine, datas, RecordFilter("f", Term("f1", "text", op, None)), date(2026, 3, 1))


def _generations() -> tuple[str, str, str, str]:
    """An 18-digit number born in the 1900s and its 15-digit form, and another person's pair."""
    born = date(1949, 12, 31)
    return (
        id_number(born, 2, "110105"),
        id_number_15(born, 2, "110105"),
        id_number(date(1985, 6, 15), 3),
        id_number_15(date(1985, 6, 15), 3),
    )


def _doubts(engine: Engine, flt: RecordFilter, today: date) -> set[str]:
    r = db.records.c
    pushed = sqlfilter.translate(flt, r.data, engine.dialect.name, today)
    with engine.connect() as conn:
        return set(conn.execute(select(r.id).where(pushed.doubt)).scalars())


def test_an_id_number_filter_finds_either_generation_in_sql(engine: Engine) -> None:
    """``证件号码 = / != / in`` pushed down selects the records holding either generation of
    the number typed, as ``matches`` does, and SQL decides every stored number in its key's
    spelling alone (only a lower-case ``x`` is read again by ``matches``)."""
    form = load_formset().form("resident")
    n18, n15, o18, o15 = _generations()
    datas = [
        {"id_number": n18},
        {"id_number": n15},
        {"id_number": o18},
        {"id_number": o15},
        {"id_number": " "},
        {},
        {"id_number": n18.lower()},
    ]
    with engine.begin() as conn:
        conn.execute(insert(db.records), [_row(n, d) for n, d in enumerate(datas)])
    today = date(2026, 3, 1)
    for typed in (n15, n18):
        wanted = {
            f"证件号码 = {typed}": {"r000", "r001", "r006"},
            f"证件号码 != {typed}": {"r002", "r003", "r004", "r005"},
            f"证件号码 in ({o18}, {typed})": {"r000", "r001", "r002", "r003", "r006"},
            f"证件号码 in ({o15})": {"r002", "r003"},
            f"not 证件号码 in ({typed}, {o15})": {"r004", "r005"},
        }
        for text_, ids in wanted.items():
            flt = parse_filter(text_, form)
            assert _pushed_selection(engine, flt, today) == ids, text_
            assert _doubts(engine, flt, today) == {"r006"}, text_
            _check(engine, datas, flt, today)


def test_an_issued_task_finds_either_generation(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the task's issue: a record stored under its first-generation number (as an
    old client's push could have stored it) is an item of a task filtered by its 18-digit
    number, and a 15-digit number typed finds the record holding the 18-digit one; decided in
    SQL, no record read back in Python."""
    engine, ids = _residents(db_url, ["1", "1", "1"])
    r = db.records.c
    numbers = {}
    with db.write(engine) as conn:
        for rid in ids:
            data = json.loads(conn.execute(select(r.data).where(r.id == rid)).scalar_one())
            numbers[rid] = data["id_number"]
        data = json.loads(conn.execute(select(r.data).where(r.id == ids[0])).scalar_one())
        old = numbers[ids[0]][:6] + numbers[ids[0]][8:17]
        data["id_number"] = old
        conn.execute(db.records.update().where(r.id == ids[0]).values(data=db.dumps(data)))
    calls: list[int] = []
    plain = RecordFilter.matches
    monkeypatch.setattr(
        RecordFilter, "matches", lambda self, *a: calls.append(1) or plain(self, *a)
    )
    assert _issue(engine, f"证件号码 = {numbers[ids[0]]}") == (1, {ids[0]})
    assert _issue(engine, f"证件号码 = {old}") == (1, {ids[0]})
    young = numbers[ids[1]][:6] + numbers[ids[1]][8:17]
    assert _issue(engine, f"证件号码 in ({young}, {numbers[ids[2]]})") == (2, set(ids[1:]))
    assert calls == []
    engine.dispose()


def _plan(engine: Engine, flt: RecordFilter) -> str:
    """The plan of ``tasks.select``'s query for one grid with ``flt`` pushed down
    (PostgreSQL: sequential and bitmap scans priced out, test tables being small)."""
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, params))

    form = SimpleNamespace(id="f")
    with engine.connect() as conn:
        event.listen(conn, "before_cursor_execute", capture)
        choose._filtered(conn, form, ["G1"], None, False, flt, date(2026, 3, 1))  # type: ignore[arg-type]
        event.remove(conn, "before_cursor_execute", capture)
        ((statement, params),) = [s for s in seen if "records" in s[0]]
        raw = conn.connection.driver_connection
        assert raw is not None
        if conn.dialect.name == "postgresql":
            with raw.cursor() as cur:
                cur.execute("SET LOCAL enable_seqscan = off")
                cur.execute("SET LOCAL enable_bitmapscan = off")
                cur.execute("EXPLAIN " + statement, params)
                return "\n".join(r[0] for r in cur.fetchall())
        found = raw.execute("EXPLAIN QUERY PLAN " + statement, params).fetchall()
        return "\n".join(str(r[-1]) for r in found)


def test_an_id_number_filter_keeps_the_grid_range(engine: Engine) -> None:
    """Both generations compared as literals keep the query a range of ``ix_records_grid_seq``
    per grid, as a plain text filter is: no scan of every record."""
    form = load_formset().form("resident")
    n18, n15, o18, _o15 = _generations()
    plain = _plan(engine, parse_filter("name = 张三", form))
    assert "ix_records_grid_seq" in plain, plain
    for text_ in (f"证件号码 = {n15}", f"证件号码 in ({n18}, {o18})", f"证件号码 != {n18}"):
        plan = _plan(engine, parse_filter(text_, form))
        assert "ix_records_grid_seq" in plan, plan
        assert "SCAN records" not in plan and "Seq Scan" not in plan, plan
