"""Tasks on the demo street office (prints figures; never asserts).

Usage: python tests/bench/bench_tasks.py [--size 1630000] [--items 100000] [--runs 40]
       [--db URL [--reuse]] [--pg]

Loads the platform as ``bench_console`` does (from 100 000 records: the cached demo store,
bulk-loaded and upgraded to head), then, as an admin, issues a verify task over the residents
of the smallest set of grids (largest first) holding at least ``--items`` of them, filtered by
a filter every resident passes (so the filter is evaluated on each), and reports:

- creation: choosing the items (filter evaluated) and writing them, in seconds (aim <= 5 s);
- the console's task page: ``GET /v1/console/tasks/{id}``, its items list and the HTML page,
  p50/p95 ms (aim p95 <= 300 ms), against the baseline ``GET /v1/records/{id}``;
- the pull: a worker of the task's largest grid pulls everything (since 0, limit 5000) before
  and after the task; after / before is what the task's items add (aim <= 1.2), the median of
  ``--pulls`` alternating runs each.

With ``--reuse`` the tasks of earlier runs stay: the first "before" pull then carries their
items, so only a fresh platform gives the pull ratio (the other figures hold either way).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.forms import load_formset  # noqa: E402
from sync.server import auth, db  # noqa: E402
from sync.server.app import create_app  # noqa: E402
from sync.server.console.audit import Actor  # noqa: E402
from sync.server.demo import load_demo  # noqa: E402
from sync.server.tasks import actions  # noqa: E402
from sync.server.tasks.spec import TaskSpec  # noqa: E402
from tests.bench.bench_console import (  # noqa: E402
    BULK_FROM,
    PASSWORD,
    bulk_load,
    loaded_platform,
    login,
    measure,
    pg_database,
    serve,
)
from tests.bench.common import median, percentile  # noqa: E402


def grids_for(engine: Any, form: str, wanted: int) -> tuple[list[str], int]:
    """The fewest grids (most records first) holding at least ``wanted`` live ``form`` records."""
    r = db.records.c
    with db.read(engine) as conn:
        counts = conn.execute(
            select(r.grid, func.count())
            .where(r.form == form, r.deleted.is_(False), r.grid.is_not(None))
            .group_by(r.grid)
            .order_by(func.count().desc())
        ).all()
    chosen, total = [], 0
    for grid, n in counts:
        chosen.append(grid)
        total += int(n)
        if total >= wanted:
            break
    return chosen, total


def pull_all(http: requests.Session, url: str, headers: dict[str, str]) -> tuple[float, int, int]:
    """(seconds, records, items) of a whole pull from 0."""
    since, records, items = 0, 0, 0
    start = time.perf_counter()
    while True:
        resp = http.get(
            f"{url}/v1/pull",
            params={"since": since, "limit": 5000},
            headers={**headers, "Accept-Encoding": "gzip"},
            timeout=600,
        )
        resp.raise_for_status()
        page = resp.json()
        records += len(page["records"])
        items += len(page.get("task_items", []))
        since = page["cursor"]
        if not page["more"]:
            return time.perf_counter() - start, records, items


def console_session(url: str, username: str) -> Any:
    from tests.sync.consolekit import Browser

    browser = Browser(url)
    resp = browser.login(username, PASSWORD)
    assert resp.status_code == 303, resp.text
    return browser


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_630_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--pulls", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reuse", action="store_true", help="--db holds an earlier run's platform")
    parser.add_argument("--db", help="a platform database URL (default: a temporary SQLite file)")
    parser.add_argument("--pg", action="store_true", help="a throwaway PostgreSQL cluster")
    parser.add_argument(
        "--no-search-index",
        action="store_true",
        help="skip filling the console's search index at the upgrade (tasks do not use it; "
        "on a loaded machine revision 0007's backfill of 1.63 M records takes most of an hour)",
    )
    args = parser.parse_args()
    if args.no_search_index:
        from sync.server import terms

        terms.record_keys = lambda *_a, **_k: frozenset()  # type: ignore[assignment]
    auth.set_kdf_cost(2**10)
    cluster = None
    with tempfile.TemporaryDirectory(prefix="gc-bench-tasks-") as tmp:
        url_db = args.db or f"sqlite:///{tmp}/platform.db"
        if args.pg:
            cluster = pg_database()
            url_db = f"{cluster.url}/bench_console"
        try:
            return run(args, url_db)
        finally:
            if cluster is not None:
                cluster.stop()


def run(args: argparse.Namespace, url_db: str) -> int:
    start = time.perf_counter()
    forms = load_formset()
    if args.reuse:
        app = create_app(url_db, forms=forms, secret="bench")
        loaded = loaded_platform(app.state.engine)
    elif args.size >= BULK_FROM:
        loaded = bulk_load(url_db, args.size, args.seed)
        app = create_app(url_db, forms=forms, secret="bench")
    else:
        app = create_app(url_db, forms=forms, secret="bench")
        loaded = load_demo(app.state.service, PASSWORD, size=args.size)
    engine = app.state.engine
    print(
        f"platform: {loaded.records} records in {time.perf_counter() - start:.1f} s "
        f"({engine.dialect.name})"
    )
    form = forms.form("resident")
    grids, residents = grids_for(engine, form.id, args.items)
    biggest = grids[0]
    server, url = serve(app)
    try:
        http = requests.Session()
        worker = login(url, f"w-{biggest}")
        before = [pull_all(http, url, worker)]

        birth = form.roles.birth_date or ""
        spec = TaskSpec(
            title="bench",
            form=form.id,
            fields=list(form.roles.phone),
            grids=grids,
            filter=f"{birth} is filled or {birth} is empty" if birth else None,
        )
        admin = Actor(auth.User("admin", "admin", None, None), "bench")
        start = time.perf_counter()
        made = actions.create(engine, forms, admin, spec)
        created = time.perf_counter() - start
        task_id = made["task"]["id"]
        print(
            f"task over {len(grids)} grids, {residents} residents: {made['items']} items "
            f"created in {created:.2f} s (aim <= 5 s)"
        )

        after = [pull_all(http, url, worker)]
        for _ in range(args.pulls - 1):
            before_only = _without_items(http, url, worker, engine, task_id)
            before.append(before_only)
            after.append(pull_all(http, url, worker))
        b = median([x[0] for x in before])
        a = median([x[0] for x in after])
        print(
            f"pull of grid {biggest} (worker): {before[0][1]} records {b:.2f} s; with the task's "
            f"{after[0][2]} items {a:.2f} s; after / before = {a / b:.2f} (aim <= 1.20)"
        )

        adm = login(url, "admin")
        with db.read(engine) as conn:
            community = conn.execute(
                select(db.grids.c.community).where(db.grids.c.code == biggest)
            ).scalar_one()
        sup = login(url, f"sup-{community}")
        page = console_session(url, "admin")
        rid = _one_record(engine, grids)
        cases = [
            ("baseline GET /v1/records/{id}", f"/v1/records/{rid}", adm),
            ("task follow (admin)", f"/v1/console/tasks/{task_id}", adm),
            ("task follow (supervisor)", f"/v1/console/tasks/{task_id}", sup),
            ("task items, first 200", f"/v1/console/tasks/{task_id}/items?limit=200", adm),
            ("task list", "/v1/console/tasks", adm),
        ]
        print(f"{'case':36} {'first ms':>9} {'p50 ms':>8} {'p95 ms':>8} {'p95 / baseline':>15}")
        base = None
        for name, path, headers in cases:
            first, times = measure(http, url + path, headers, args.runs)
            p95 = percentile(times, 0.95)
            base = base or p95
            print(f"{name:36} {first:9.1f} {median(times):8.1f} {p95:8.1f} {p95 / base:15.1f}")
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            resp = page.get(f"/console/tasks/{task_id}")
            times.append((time.perf_counter() - start) * 1000)
            resp.raise_for_status()
        p95 = percentile(times, 0.95)
        print(
            f"{'task page HTML /console/tasks/{id}':36} {'':9} {median(times):8.1f} {p95:8.1f} "
            f"{p95 / (base or 1):15.1f}"
        )
    finally:
        server.should_exit = True
    return 0


def _without_items(
    http: requests.Session, url: str, headers: dict[str, str], engine: Any, task_id: str
) -> tuple[float, int, int]:
    """A pull of the same records without the task's items: its items are moved out of the
    way (seq 0) for the run and put back afterwards."""
    items = db.task_items.c
    with db.write(engine) as conn:
        saved = conn.execute(select(items.id, items.seq).where(items.task_id == task_id)).all()
        conn.execute(db.task_items.update().where(items.task_id == task_id).values(seq=-items.seq))
    try:
        return pull_all(http, url, headers)
    finally:
        with db.write(engine) as conn:
            conn.execute(
                db.task_items.update().where(items.task_id == task_id).values(seq=-items.seq)
            )
        assert saved  # put back: the numbers are their own negation twice


def _one_record(engine: Any, grids: list[str]) -> str:
    r = db.records.c
    with db.read(engine) as conn:
        return str(conn.execute(select(r.id).where(r.grid == grids[0]).limit(1)).scalar_one())


if __name__ == "__main__":
    raise SystemExit(main())
