"""Console and console-API latency on the demo platform (prints figures; never asserts).

Usage: python tests/bench/bench_console.py [--size 20000] [--conflicts 100] [--runs 40]
       [--db postgresql://... [--reuse] | --pg]   (default: a SQLite file in a temporary directory)

Loads the demo community (``sync.server.demo.load_demo``) into an empty platform; from
``--size 100000`` up, through the push path would take too long (25 min for 1.63 M), so the
cached demo store (bench_upgrade's, /tmp/gridcollect-bench-<size>-<seed>) is bulk-loaded
(``bench_upgrade.load``: records, versions, ops, keys, people at the baseline revision), upgraded
to head (which builds the search index: revision 0007's backfill, timed) and given the store's
communities, grids and users. ``--pg`` runs on a throwaway PostgreSQL cluster. Then it opens
``--conflicts`` phone conflicts through the push path, serves the real app on loopback and
times, as a community supervisor and as an admin: the overview, the conflicts list and record
searches (pinyin initials, a phone tail, an address part), p50 and p95 over ``--runs``
requests each, against the baseline of the same run: ``GET /v1/records/{id}`` (one indexed
read behind the same login). The issue's aims: overview and conflicts p95 <= 300 ms, search
p95 <= 100 ms on the 1.63 M-record street office.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests
import uvicorn
from sqlalchemy import create_engine, func, select, text, update

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.forms import load_formset  # noqa: E402
from sync import protocol as p  # noqa: E402
from sync.server import admin, auth, db, migrate  # noqa: E402
from sync.server.app import create_app  # noqa: E402
from sync.server.demo import DemoPlatform, load_demo  # noqa: E402
from tests.bench import bench_upgrade  # noqa: E402
from tests.bench.common import median, percentile  # noqa: E402

PASSWORD = "bench password"
BULK_FROM = 100_000  # records: from here on the platform is bulk-loaded from the demo store


def bulk_load(
    url: str, size: int, seed: int, timed: bool = False, resume: bool = False
) -> DemoPlatform:
    """The demo street office of ``size`` records without the push path (see the module doc);
    ``resume``: ``url`` holds such a load whose upgrade stopped part way (e.g. a full disk)."""
    store = bench_upgrade.demo_store(size, seed)
    engine = db.make_engine(url)
    try:
        start = time.perf_counter()
        if resume:
            with db.read(engine) as conn:
                count = conn.execute(select(func.count()).select_from(db.records)).scalar_one()
        else:
            count = bench_upgrade.load(engine, store)
        loaded = time.perf_counter() - start
        copy = bench_upgrade.copy_baseline(engine, None) if timed and not resume else 0.0
        start = time.perf_counter()
        if timed:
            bench_upgrade.upgrade_timed(engine)
        else:
            migrate.upgrade(engine)
        took = time.perf_counter() - start
        start = time.perf_counter()
        db.analyze(engine, vacuum=True)  # as load-base ends
        settled = time.perf_counter() - start
        print(
            f"bulk load {loaded:.0f} s; upgrade to head (search index) {took:.0f} s;"
            f" vacuum and analyze {settled:.0f} s"
        )
        if copy:
            print(f"copy of the data {copy:.1f} s; upgrade/copy = {took / copy:.2f}")
        conn = bench_upgrade.open_demo(store)
        grids = conn.execute(
            "SELECT code, name, community_code, community_name, level, polygon FROM grids"
        ).fetchall()
        conn.close()
        for code, name in sorted({(g[2], g[3]) for g in grids}):
            admin.put_community(engine, code, name)
        for code, name, community, _cname, level, polygon in grids:
            admin.put_grid(engine, code, name, community, level)
            if polygon:
                with db.write(engine) as c:
                    c.execute(
                        update(db.grids).where(db.grids.c.code == code).values(polygon=polygon)
                    )
        communities = sorted({g[2] for g in grids})
        users = ["admin", *(f"sup-{c}" for c in communities)]
        admin.put_user(engine, "admin", PASSWORD, "admin")
        for community in communities:
            admin.put_user(engine, f"sup-{community}", PASSWORD, "supervisor", community=community)
        for g in grids:
            admin.put_user(engine, f"w-{g[0]}", PASSWORD, "worker", grids=[g[0]])
            users.append(f"w-{g[0]}")
    finally:
        engine.dispose()
    return DemoPlatform(count, communities, [g[0] for g in grids], users)


def serve(app: Any) -> tuple[uvicorn.Server, str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return server, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


def open_conflicts(app: Any, count: int) -> list[str]:
    """Two devices change the phone of ``count`` residents from the same base: hard conflicts."""
    with db.read(app.state.engine) as conn:
        c = db.records.c
        rows = conn.execute(
            select(c.id, c.version).where(c.form == "resident", c.status == "complete").limit(count)
        ).all()
    for n, device in enumerate(("bench-1", "bench-2")):
        user = auth.User("bench", "admin", None, None, device)
        ops = [
            p.Op(
                op_id=f"{device}:{rid}",
                record_id=rid,
                form="resident",
                kind="update",
                base_version=version,
                fields={"phone": f"13{n}{i:08d}"},
                edited_at=f"{auth.iso(auth.now())}#{n:04d}",
                author=device,
            )
            for i, (rid, version) in enumerate(rows)
        ]
        app.state.service.apply(user, device, ops)
    return [r.id for r in rows]


def change_one(app: Any, record_id: str) -> Any:
    """A callable pushing one more change to one record (its grid must be recounted)."""
    count = iter(range(10**6))
    user = auth.User("bench", "admin", None, None, "bench-touch")

    def touch() -> None:
        n = next(count)
        op = p.Op(
            op_id=f"touch:{n}",
            record_id=record_id,
            form="resident",
            kind="resolve",
            base_version=None,
            fields={"occupation": f"职业{n}"},
            edited_at=f"{auth.iso(auth.now())}#{n % 10000:04d}",
            author="bench",
        )
        with db.read(app.state.engine) as conn:
            version = conn.execute(
                select(db.records.c.version).where(db.records.c.id == record_id)
            ).scalar_one()
        app.state.service.apply(
            user, "bench-touch", [op.model_copy(update={"base_version": version})]
        )

    return touch


def login(url: str, username: str) -> dict[str, str]:
    resp = requests.post(
        f"{url}/v1/login",
        json={"username": username, "password": PASSWORD, "device_id": f"bench-{username}"},
        timeout=60,
    )
    resp.raise_for_status()
    return {"Authorization": f"Bearer {resp.json()['token']}", "X-Device-Id": f"bench-{username}"}


def measure(
    http: requests.Session,
    url: str,
    headers: dict[str, str],
    runs: int,
    before: Any = None,
) -> tuple[float, list[float]]:
    """(first request, the next ``runs``) in ms; ``before()`` runs untimed before each."""
    start = time.perf_counter()
    resp = http.get(url, headers=headers, timeout=600)
    first = (time.perf_counter() - start) * 1000
    resp.raise_for_status()
    if "/console/records" in url:
        query = url.split("q=", 1)[-1]  # printed before its row: say which search it was
        print(f"  (q={query}: {len(resp.json()['records'])} records found)")
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        start = time.perf_counter()
        resp = http.get(url, headers=headers, timeout=120)
        times.append((time.perf_counter() - start) * 1000)
        resp.raise_for_status()
    return first, times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20000)
    parser.add_argument("--conflicts", type=int, default=100)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--bulk", action="store_true", help="bulk-load below --size 100000 too")
    parser.add_argument("--reuse", action="store_true", help="--db holds an earlier run's platform")
    parser.add_argument("--db", help="a platform database URL (default: a temporary SQLite file)")
    parser.add_argument("--pg", action="store_true", help="a throwaway PostgreSQL cluster")
    parser.add_argument(
        "--resume", action="store_true", help="--db holds a bulk load whose upgrade stopped"
    )
    parser.add_argument(
        "--per-revision",
        action="store_true",
        help="bulk load: time each revision and a plain copy (bench_upgrade's figures)",
    )
    args = parser.parse_args()
    auth.set_kdf_cost(2**10)
    cluster = None
    with tempfile.TemporaryDirectory(prefix="gc-bench-console-") as tmp:
        url_db = args.db or f"sqlite:///{tmp}/platform.db"
        if args.pg:
            cluster = pg_database()
            url_db = f"{cluster.url}/bench_console"
        try:
            return run(args, url_db)
        finally:
            if cluster is not None:
                cluster.stop()


def pg_database(*, durable: bool = False, options: str = "") -> Any:
    """A throwaway cluster (as bench_upgrade) with an empty ``bench_console`` database;
    ``durable``: with fsync, as a real server runs; ``options``: more server settings."""
    from tests.sync.conftest import _start_cluster

    cluster = _start_cluster(durable=durable, options=options)
    maint = create_engine(f"{cluster.url}/postgres", isolation_level="AUTOCOMMIT")
    with maint.connect() as conn:
        conn.execute(text("CREATE DATABASE bench_console"))
    maint.dispose()
    return cluster


def loaded_platform(engine: Any) -> DemoPlatform:
    """What an earlier run loaded into ``--db`` (``--reuse``)."""
    with db.read(engine) as conn:
        count = conn.execute(select(func.count()).select_from(db.records)).scalar_one()
        communities = sorted(conn.execute(select(db.communities.c.code)).scalars())
        grids = sorted(conn.execute(select(db.grids.c.code)).scalars())
        users = sorted(conn.execute(select(db.users.c.username)).scalars())
    return DemoPlatform(count, communities, grids, users)


def run(args: argparse.Namespace, url_db: str) -> int:
    start = time.perf_counter()
    if args.reuse:
        app = create_app(url_db, forms=load_formset(), secret="bench")
        loaded = loaded_platform(app.state.engine)
    elif args.size >= BULK_FROM or args.bulk:
        loaded = bulk_load(url_db, args.size, args.seed, args.per_revision, args.resume)
        app = create_app(url_db, forms=load_formset(), secret="bench")
    else:
        app = create_app(url_db, forms=load_formset(), secret="bench")
        loaded = load_demo(app.state.service, PASSWORD, size=args.size)
    print(
        f"platform: {loaded.records} records in {time.perf_counter() - start:.1f} s "
        f"({app.state.engine.dialect.name})"
    )
    ids = open_conflicts(app, args.conflicts)
    server, url = serve(app)
    try:
        http = requests.Session()
        sup = login(url, f"sup-{loaded.communities[0]}")
        adm = login(url, "admin")
        worker = login(url, f"w-{loaded.grids[0]}")
        touch = change_one(app, ids[-1])
        cases = [
            ("baseline GET /v1/records/{id}", f"/v1/records/{ids[0]}", sup, None),
            ("overview (supervisor)", "/v1/console/overview", sup, None),
            ("overview (admin, all)", "/v1/console/overview", adm, None),
            ("overview (admin) after a change", "/v1/console/overview", adm, touch),
            ("conflicts (supervisor)", "/v1/console/conflicts", sup, None),
            ("search pinyin initials", "/v1/console/records?q=zh", sup, None),
            ("search phone tail", "/v1/console/records?q=0000", sup, None),
            ("search address part", "/v1/console/records?q=白鹭公寓", sup, None),
            ("search name (worker)", "/v1/console/records?q=王", worker, None),
            ("search address (admin, all)", "/v1/console/records?q=路", adm, None),
            ("search ID tail (admin, all)", "/v1/console/records?q=1234", adm, None),
        ]
        base = None
        head = f"{'case':36} {'first ms':>9} {'p50 ms':>8} {'p95 ms':>8} {'p95 / baseline':>15}"
        print(head)
        for name, path, headers, before in cases:
            first, times = measure(http, url + path, headers, args.runs, before)
            p95 = percentile(times, 0.95)
            base = base or p95
            print(f"{name:36} {first:9.1f} {median(times):8.1f} {p95:8.1f} {p95 / base:15.1f}")
    finally:
        server.should_exit = True
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
