"""PostgreSQL's CPU for the statements every nightly sync plans anew, in two shapes each.

Usage: python tests/bench/bench_plan_costs.py [--size 20000] [--calls 300] [--rounds 5]
       [--pg-db URL]  (an existing platform instead: e.g. the city bench's 1.63 M records)

Nothing is prepared on the server (``db.make_engine``: PgBouncer-safe, planned with current
statistics), so a statement's planning is paid at every call. This loads the demo street office
of ``--size`` records through the push path into a throwaway PostgreSQL cluster and runs, on one
connection, each statement in the shape it had before and the shape it has now, alternately
(``--rounds`` rounds of ``--calls`` calls of each, the order swapped every round), measuring
the backend's CPU from /proc (user + system) and its planning time (EXPLAIN SUMMARY). Printed:
ms of backend CPU and of planning per call, and now ÷ before from the same run.

- the duplicate guard's people look-up (``tx._PEOPLE``): 50 pushed residents' birth dates
  scanned at once and each row tested against all their names and pinyins (before), or each
  pushed person's birth date probed and its rows tested against its own name and pinyin
  (now, ``sqlin.zipped``); both on ``ix_people_birth``; rows compared after ``Person.alike``;
- the caller look-up of every request (``caller._FIND``): six relations joined (before) or four
  and two key look-ups as scalar sub-queries (now).

It prints figures; it never asserts.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Text,
    and_,
    bindparam,
    create_engine,
    literal_column,
    or_,
    select,
    text,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.forms import load_formset  # noqa: E402
from sync.server import caller, db, sqlin, tx  # noqa: E402
from sync.server.app import create_app  # noqa: E402
from sync.server.demo import load_demo  # noqa: E402
from sync.server.rows import Person  # noqa: E402

_TICK = os.sysconf("SC_CLK_TCK")
_P, _T, _U, _DEV = db.people.c, db.tokens.c, db.users.c, db.devices.c


def _unweighed(column: Any) -> Any:
    return column.op("||", return_type=Text)(literal_column("''"))


PEOPLE_BEFORE = (  # the look-up up to 37610e2
    select(_P.record_id, _P.name, _P.pinyin, _P.birth)
    .where(_P.form == bindparam("form"), sqlin.among_bound("postgresql", _P.birth, "births"))
    .where(
        or_(
            sqlin.among_bound("postgresql", _unweighed(_P.name), "names", probe=False),
            sqlin.among_bound("postgresql", _unweighed(_P.pinyin), "pinyins", probe=False),
        )
    )
)

_MINE, _OWN, _AREA = caller._MINE, caller._OWN, caller._AREA
CALLER_BEFORE = (
    select(
        _T.username,
        _T.device_id,
        _T.expires_at,
        _T.revoked_at,
        _T.kind,
        _U.role,
        _U.community,
        _U.disabled,
        _U.department,
        _MINE.c.grid.label("mine"),
        _OWN.c.community.label("own_community"),
        _AREA.c.code.label("area"),
        _DEV.installation,
    )
    .select_from(
        db.tokens.join(db.users, _U.username == _T.username)
        .outerjoin(_MINE, and_(_MINE.c.username == _T.username, _U.role == "worker"))
        .outerjoin(_OWN, _OWN.c.code == _MINE.c.grid)
        .outerjoin(_AREA, and_(_AREA.c.community == _U.community, _U.role == "supervisor"))
        .outerjoin(db.devices, _DEV.device_id == _T.device_id)
    )
    .where(_T.token_hash == bindparam("digest"))
)


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def measure(cur: Any, pid: int, sql: str, params: Any, calls: int) -> tuple[float, float]:
    """Backend CPU seconds of ``calls`` runs, and planning ms of one (EXPLAIN SUMMARY)."""
    start = backend_cpu(pid)
    for _ in range(calls):
        cur.execute(sql, params)
        cur.fetchall()
    spent = backend_cpu(pid) - start
    cur.execute("EXPLAIN (SUMMARY) " + sql, params)
    found = re.search(r"Planning Time: ([0-9.]+)", cur.fetchall()[-1][0])
    return spent, float(found.group(1)) if found else 0.0


def compare(
    name: str,
    cur: Any,
    pid: int,
    shapes: dict[str, tuple[str, Any]],
    args: argparse.Namespace,
    keep: Callable[[Any], bool] = lambda row: True,
) -> None:
    cpu = {k: 0.0 for k in shapes}
    plan = {k: 0.0 for k in shapes}
    order = list(shapes)
    rows = {k: sorted(repr(r) for r in _rows(cur, *shapes[k]) if keep(r)) for k in shapes}
    same = "same rows" if rows["before"] == rows["now"] else "ROWS DIFFER"
    for r in range(args.rounds):
        for k in order if r % 2 == 0 else order[::-1]:
            spent, planned = measure(cur, pid, *shapes[k], args.calls)
            cpu[k] += spent
            plan[k] += planned
    n = args.rounds * args.calls
    per = {k: 1000 * cpu[k] / n for k in shapes}
    planned = {k: plan[k] / args.rounds for k in shapes}
    print(
        f"{name}: backend CPU per call before {per['before']:.3f} ms, now {per['now']:.3f} ms "
        f"(now ÷ before {per['now'] / per['before']:.2f}); planning before "
        f"{planned['before']:.3f} ms, now {planned['now']:.3f} ms; {same}"
    )


def _rows(cur: Any, sql: str, params: Any) -> list[Any]:
    cur.execute(sql, params)
    return list(cur.fetchall())


def compiled(conn: Any, stmt: Any, params: dict[str, Any]) -> tuple[str, Any]:
    """The statement's SQL and parameters as psycopg gets them from SQLAlchemy."""
    done = stmt.compile(dialect=conn.dialect)
    return str(done), done.construct_params(params)


def _alike_any(wanted: list[Person]) -> Callable[[Any], bool]:
    """A row the duplicate guard keeps: alike some pushed person (the before shape also
    returns people who share a birth date with one and a name with another)."""
    return lambda row: any(Person(row[1], row[2], row[3]).alike(p) for p in wanted)


def run(url: str, args: argparse.Namespace, load: bool = True) -> None:
    app = create_app(url, forms=load_formset(), secret="bench")
    engine = app.state.engine
    if load:
        loaded = load_demo(app.state.service, "bench password", size=args.size)
        db.analyze(engine)
        print(f"postgresql: {loaded.records} records loaded")
    with engine.connect() as conn:
        people = conn.execute(
            text("SELECT birth, name, pinyin FROM people ORDER BY random() LIMIT 50")
        ).all()
        worker = conn.execute(text("SELECT username FROM users WHERE role = 'worker'")).scalar()
        conn.execute(
            text(
                "INSERT INTO tokens (token_hash, username, device_id, created_at, expires_at, "
                "kind) VALUES ('bench', :u, 'bench-device', '', '', 'access') ON CONFLICT DO NOTHING"
            ),
            {"u": worker},
        )
        conn.commit()
        before = {
            "form": "resident",
            "births": sorted({p.birth for p in people}),
            "names": sorted({p.name for p in people}),
            "pinyins": sorted({p.pinyin for p in people}),
        }
        pairs = {
            "form": "resident",
            "births": [p.birth for p in people],
            "names": [p.name for p in people],
            "pinyins": [p.pinyin for p in people],
        }
        wanted = [Person(p.name, p.pinyin, p.birth) for p in people]
        cases: dict[str, Callable[[], dict[str, tuple[str, Any]]]] = {
            "people look-up (50 residents)": lambda: {
                "before": compiled(conn, PEOPLE_BEFORE, before),
                "now": compiled(conn, tx._PEOPLE.on(conn), pairs),
            },
            "caller look-up (a worker's token)": lambda: {
                "before": compiled(conn, CALLER_BEFORE, {"digest": "bench"}),
                "now": compiled(conn, caller._FIND, {"digest": "bench"}),
            },
        }
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pid = int(cur.fetchone()[0])
            for name, shapes in cases.items():
                keep = _alike_any(wanted) if name.startswith("people") else lambda row: True
                compare(name, cur, pid, shapes(), args, keep)
        conn.rollback()
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pg-db", help="an existing platform's URL (no load, no cluster)")
    args = parser.parse_args()
    if args.pg_db:
        run(args.pg_db, args, load=False)
        return
    from tests.sync.conftest import _start_cluster

    cluster = _start_cluster(durable=True)
    try:
        maint = create_engine(f"{cluster.url}/postgres", isolation_level="AUTOCOMMIT")
        with maint.connect() as conn:
            conn.execute(text("CREATE DATABASE bench_plans"))
        maint.dispose()
        run(f"{cluster.url}/bench_plans", args)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
