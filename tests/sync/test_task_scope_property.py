"""Property (PROTOCOL.md §13): over random grids, workers, records, tasks and filters,

- a task's items are exactly the live records of its form in its grids (within the issuer's
  scope) that its filter matches — a filter never selects a record outside the task's scope;
- no pull, by anyone, ever carries an item whose grid is outside the caller's scope, and a task
  reaches a caller only through one of their grids or by naming them;
- a task naming a worker who holds none of its grids is refused, and nothing of it is stored;
- after random results, every item's state is the merge rule applied to its history.

Service level (the same functions the HTTP routes call), SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.core.forms import FormSet, load_formset
from app.core.ids import uuid7
from app.core.recordfilter import parse_filter
from sync import protocol as p
from sync.server import admin, db
from sync.server.auth import User
from sync.server.errors import ApiError
from sync.server.service import Service
from sync.server.tasks import results, store
from sync.server.tasks.spec import TaskSpec
from tests.factories import resident
from tests.sync.conftest import _empty_pg

GRIDS = {"G1": "C1", "G2": "C1", "G3": "C2", "G4": "C2"}
COMMUNITIES = ("C1", "C2")
FILTERS = [
    None,
    "人口类型 = 流动人口",
    "population_type in (1, 2) and phone is filled",
    "not (phone 为空) or 年龄 >= 40",
    "出生日期 < 1990-01-01",
    "name contains 三",
]
EXAMPLES = {"sqlite": int(os.environ.get("GC_TASK_EXAMPLES", "12")), "postgresql": 4}
TODAY = date.today()


@pytest.fixture(scope="module")
def formset() -> FormSet:
    return load_formset()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    if request.param == "sqlite":
        root = tmp_path_factory.mktemp("taskscope")
        counter = iter(range(10**6))
        return "sqlite", lambda: f"sqlite:///{root / f'p{next(counter)}.db'}"
    url = request.getfixturevalue("pg_database")

    def fresh() -> str:
        _empty_pg(url)
        return url

    return "postgresql", fresh


def _users(workers: list[list[str]]) -> dict[str, User]:
    out: dict[str, User] = {
        f"w{n}": User(f"w{n}", "worker", None, frozenset(grids)) for n, grids in enumerate(workers)
    }
    for community in COMMUNITIES:
        grids = frozenset(g for g, c in GRIDS.items() if c == community)
        out[f"s{community}"] = User(f"s{community}", "supervisor", community, grids)
    out["root"] = User("root", "admin", None, None)
    return out


records_st = st.lists(
    st.tuples(
        st.sampled_from(sorted(GRIDS)),
        st.sampled_from(["1", "2", "3"]),
        st.booleans(),  # has a phone
        st.integers(1950, 2010),  # birth year
        st.sampled_from(["张三", "李四", "王五"]),
        st.booleans(),  # deleted later
    ),
    min_size=1,
    max_size=14,
)
tasks_st = st.lists(
    st.tuples(
        st.sampled_from(["sC1", "sC2", "root"]),
        st.lists(st.sampled_from(sorted(GRIDS)), max_size=2, unique=True),
        st.sampled_from(FILTERS),
        st.lists(st.sampled_from(["w0", "w1", "w2"]), max_size=1),
    ),
    min_size=1,
    max_size=3,
)
workers_st = st.lists(
    st.lists(st.sampled_from(sorted(GRIDS)), min_size=1, max_size=2, unique=True),
    min_size=3,
    max_size=3,
)
results_st = st.lists(
    st.tuples(
        st.integers(0, 50),
        st.sampled_from(["done", "unable"]),
        st.sampled_from(["查无此人", "拒绝配合"]),
        st.integers(0, 3),
    ),
    max_size=8,
)


def _platform(url: str, formset: FormSet) -> Service:
    engine = db.make_engine(url)
    db.init_db(engine)
    for community in COMMUNITIES:
        admin.put_community(engine, community, community)
    for grid, community in GRIDS.items():
        admin.put_grid(engine, grid, grid, community)
    return Service(engine, formset)


def _write_records(svc: Service, rows: list[Any]) -> dict[str, dict[str, Any]]:
    """Residents written by each grid's worker; some deleted afterwards."""
    out: dict[str, dict[str, Any]] = {}
    for n, (grid, kind, phone, year, name, gone) in enumerate(rows):
        writer = User(f"writer-{grid}", "worker", None, frozenset([grid]))
        data = resident(
            seq=n + 11,
            grid=grid,
            population_type=kind,
            birth=date(year, 3, 4),
            name=name,
        )
        if not phone:
            data.pop("phone")
        rid = uuid7()
        ops = [
            p.Op(
                op_id=f"d{n}:1",
                record_id=rid,
                form="resident",
                kind="create",
                fields={**data, "_status": "draft"},
                edited_at="2024-01-01T00:00:00.000Z#0000",
            )
        ]
        if gone:
            ops.append(
                p.Op(
                    op_id=f"d{n}:2",
                    record_id=rid,
                    form="resident",
                    kind="delete",
                    base_version=1,
                    edited_at="2024-01-01T00:00:01.000Z#0000",
                )
            )
        assert {r["status"] for r in svc.apply(writer, f"d{n}", ops)} == {"applied"}
        out[rid] = {"data": data, "grid": grid, "deleted": gone}
    return out


def test_items_stay_in_scope_and_filters_stay_in_the_task(backend: Any, formset: FormSet) -> None:
    name, fresh = backend

    @settings(
        max_examples=EXAMPLES[name],
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(workers_st, records_st, tasks_st, results_st)
    def run(workers: Any, rows: Any, tasks: Any, outcomes: Any) -> None:
        _one_example(fresh(), formset, workers, rows, tasks, outcomes)

    run()


def _one_example(
    url: str, formset: FormSet, workers: Any, rows: Any, tasks: Any, outcomes: Any
) -> None:
    users = _users(workers)
    svc = _platform(url, formset)
    try:
        _put_workers(svc, users)
        made = _write_records(svc, rows)
        form = formset.form("resident")
        for issuer, grids, text, assignees in tasks:
            user = users[issuer]
            grids = [g for g in grids if user.in_scope(g)]
            spec = TaskSpec(
                title="t",
                form="resident",
                fields=["phone"],
                grids=grids,
                filter=text,
                assignees=assignees,
            )
            flt = parse_filter(text, form, formset) if text else None
            allowed = set(grids) or {g for g in GRIDS if user.in_scope(g)}
            expected = {
                rid
                for rid, rec in made.items()
                if not rec["deleted"]
                and rec["grid"] in allowed
                and (flt is None or flt.matches(rec["data"], TODAY))
            }
            covered = (set(grids) or (allowed if user.grids is not None else set())) | {
                made[rid]["grid"] for rid in expected
            }
            if any(not (users[a].grids or set()) & covered for a in assignees):
                _refused_leaves_nothing(svc, formset, user, spec)
                continue
            with db.write(svc.engine) as conn:
                row, _count = store.create(conn, formset, user, spec, TODAY)
            with db.read(svc.engine) as conn:
                got = {
                    r.record_id: r.grid
                    for r in conn.execute(
                        select(db.task_items).where(db.task_items.c.task_id == row["id"])
                    )
                }
            assert set(got) == expected
            assert all(grid == made[rid]["grid"] and grid in allowed for rid, grid in got.items())
        _random_results(svc, outcomes)
        for user in users.values():
            _check_pulls(svc, user)
    finally:
        svc.engine.dispose()


def _put_workers(svc: Service, users: dict[str, User]) -> None:
    """The random workers as accounts (a task may name only workers of its grids)."""
    with db.write(svc.engine) as conn:
        for user in users.values():
            if user.role != "worker":
                continue
            conn.execute(
                db.users.insert().values(
                    username=user.username,
                    password_hash="-",
                    role="worker",
                    disabled=False,
                    created_at="2024-01-01T00:00:00.000Z",
                )
            )
            for grid in sorted(user.grids or ()):
                conn.execute(db.user_grids.insert().values(username=user.username, grid=grid))


def _refused_leaves_nothing(svc: Service, formset: FormSet, user: User, spec: TaskSpec) -> None:
    with db.read(svc.engine) as conn:
        before = [conn.execute(select(func.count()).select_from(t)).scalar() for t in _TASKS]
    with pytest.raises(ApiError) as refused, db.write(svc.engine) as conn:
        store.create(conn, formset, user, spec, TODAY)
    assert refused.value.code == "bad_assignee"
    with db.read(svc.engine) as conn:
        after = [conn.execute(select(func.count()).select_from(t)).scalar() for t in _TASKS]
    assert after == before


_TASKS = (db.tasks, db.task_items, db.task_grids, db.task_assignees)


def _random_results(svc: Service, outcomes: list[Any]) -> None:
    with db.read(svc.engine) as conn:
        items = conn.execute(select(db.task_items).order_by(db.task_items.c.id)).all()
    if not items:
        return
    for n, (pick, state, reason, who) in enumerate(outcomes):
        item = items[pick % len(items)]
        user = User(f"r{who}", "worker", None, frozenset([item.grid]))
        res = p.TaskResult(
            op_id=f"x{who}:{n}",
            item_id=item.id,
            state=state,
            reason=reason,
            edited_at=f"2024-01-01T00:00:{n % 60:02d}.000Z#0000",
        )
        with db.read(svc.engine) as conn:
            results.check(conn, user, f"x{who}", [res])
        results.apply(svc.engine, user, f"x{who}", [res])
    with db.read(svc.engine) as conn:
        for item in conn.execute(select(db.task_items)):
            history = (
                conn.execute(
                    select(
                        db.task_results.c.state,
                        db.task_results.c.reason,
                        db.task_results.c.edited_at,
                    )
                    .where(db.task_results.c.item_id == item.id)
                    .order_by(db.task_results.c.id)
                )
                .mappings()
                .all()
            )
            states = [h["state"] for h in history]
            if "done" in states:
                assert item.state == "done"
            elif states:
                latest = max(range(len(history)), key=lambda i: (history[i]["edited_at"], i))
                assert (item.state, item.reason) == ("unable", history[latest]["reason"])
            else:
                assert item.state == "open"


def _reaches(user: User, assignees: set[str]) -> bool:
    """§13.1: a task naming workers reaches only them among workers (its grids decide first)."""
    return user.role != "worker" or not assignees or user.username in assignees


def _check_pulls(svc: Service, user: User) -> None:
    named: dict[str, set[str]] = {}
    with db.read(svc.engine) as conn:
        for task_id, username in conn.execute(select(db.task_assignees)):
            named.setdefault(task_id, set()).add(username)
    since = 0
    while True:
        page = svc.pull(user, since, 4)
        for item in page["task_items"]:
            assert user.in_scope(item["grid"]), (user.username, item["grid"])
            assert _reaches(user, named.get(item["task_id"], set())), user.username
        for task in page["tasks"]:
            assert all(user.in_scope(g) for g in task["grids"])
            assert task["grids"] or user.grids is None
            assert _reaches(user, set(task["assignees"])), user.username
        assert len(page["records"]) + len(page["task_items"]) <= 4
        since = page["cursor"]
        if not page["more"]:
            return
