"""Department data taking on the demo street office (prints figures; never asserts).

Usage: python tests/bench/bench_dept.py [--size 1630000] [--seed 7] [--db sqlite:///...]
       [--reuse] [--runs 40]

Loads the records of the cached demo store (bench_upgrade's /tmp/gridcollect-bench-<size>-<seed>,
≈ 856 k residents of 1.63 M records) straight into a platform at the newest revision (records,
communities, grids: all the taking reads), makes a department, an account, a key and a grant over
every resident (8 fields, 3 masked), serves the real app on loopback and times, against the
baseline of the same run (a raw SELECT of the same rows, fetched and parsed as JSON):

- the full export as one streamed CSV download (rows/s; the server process's memory growth,
  sampled every 50 ms) and as JSON API pages of 5000;
- the feed after 10 000 changes (9 500 edits, 500 deletions), pages of 5000;
- statistics by 人口类型: the first (cold: counts every grid), then p50/p95 over ``--runs``
  queries, warm, and with one record changed before each (its grid recounted).

The issue's aims: export ≤ 60 s with memory growth ≤ 200 MB; feed 10 k ≤ 2 s; stats p95 ≤ 500 ms.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import func, select, text, update

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.forms import load_formset  # noqa: E402
from sync.server import admin, auth, db  # noqa: E402
from sync.server.app import create_app  # noqa: E402
from sync.server.dept import grants, keys  # noqa: E402
from tests.bench import bench_upgrade  # noqa: E402
from tests.bench.bench_console import serve  # noqa: E402
from tests.bench.common import median, percentile  # noqa: E402

PASSWORD = "bench password"
AT = "2026-01-01T00:00:00.000Z"
FIELDS = {
    "population_type": "full",
    "id_number": "masked",
    "name": "masked",
    "gender": "full",
    "birth_date": "full",
    "phone": "masked",
    "residence_address": "full",
    "grid": "full",
}


def load(url: str, store: Path) -> int:
    """Records, communities and grids of the demo store into an empty platform at head."""
    app = create_app(url, forms=load_formset(), secret="bench")  # creates the newest schema
    engine = app.state.engine
    src = bench_upgrade.open_demo(store)
    grids = src.execute(
        "SELECT code, name, community_code, community_name, level FROM grids"
    ).fetchall()
    for code, name in sorted({(g[2], g[3]) for g in grids}):
        admin.put_community(engine, code, name)
    for code, name, community, _cname, level in grids:
        admin.put_grid(engine, code, name, community, level)
    cur = src.execute(
        "SELECT id, form, form_version, grid, title, data, status, deleted FROM records"
    )
    raw = engine.raw_connection()
    count = 0
    with db.read(engine) as conn:
        seq = int(conn.execute(select(db.counters.c.value)).scalar() or 0)
    try:
        c = raw.cursor()
        if engine.dialect.name == "sqlite":
            c.execute("BEGIN")
        cols = (
            "id, form, form_version, grid, title, data, status, deleted, version, stamps, seq, "
            "created_at, created_by, updated_at, updated_by"
        )
        while batch := cur.fetchmany(20000):
            rows = []
            for rid, form, fv, grid, title, data, status, deleted in batch:
                seq += 1
                rows.append(
                    (
                        rid,
                        form,
                        fv,
                        grid,
                        title,
                        data,
                        status,
                        bool(deleted),
                        1,
                        "{}",
                        seq,
                        AT,
                        "w",
                        AT,
                        "w",
                    )
                )
            if engine.dialect.name == "postgresql":  # psycopg takes no "?" marks; COPY is fast
                with c.copy(f"COPY records ({cols}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                c.executemany(f"INSERT INTO records ({cols}) VALUES ({', '.join('?' * 15)})", rows)
            count += len(rows)
        c.execute(f"UPDATE counters SET value = {seq} WHERE name = 'seq'")
        raw.commit() if engine.dialect.name != "sqlite" else c.execute("COMMIT")
    finally:
        raw.close()
        src.close()
    if engine.dialect.name == "postgresql":
        db.analyze(engine)  # as autovacuum would soon: plans for a table of 1.6 M rows
    engine.dispose()
    return count


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Peak:
    """The process's peak resident memory while a block runs (sampled every 50 ms)."""

    def __enter__(self) -> Peak:
        self.start = self.peak = rss_mb()
        self.running = True
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _watch(self) -> None:
        while self.running:
            self.peak = max(self.peak, rss_mb())
            time.sleep(0.05)

    def __exit__(self, *_exc: Any) -> None:
        self.running = False
        self.thread.join()

    @property
    def growth(self) -> float:
        return self.peak - self.start


def raw_select(engine: Any) -> tuple[int, float]:
    """The baseline: the same rows by a plain SELECT in id order, fetched and JSON-parsed."""
    start = time.perf_counter()
    n = 0
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=5000).execute(
            text(
                "SELECT id, form, grid, data, deleted, version FROM records WHERE form = 'resident' ORDER BY id"
            )
        )
        for row in result:
            json.loads(row[3])
            n += 1
    return n, time.perf_counter() - start


def setup(app: Any) -> tuple[int, str]:
    engine = app.state.engine
    admin.put_department(engine, "mz", "民政局")
    admin.put_user(engine, "minzheng", PASSWORD, "department", department="mz")
    spec = grants.GrantSpec(
        "mz", "基准测试", "基准测试", {"resident": FIELDS}, "2020-01-01", "2099-12-31"
    )
    with db.write(engine) as conn:
        grant = grants.create(conn, app.state.service.formset, spec, "bench")
        key = keys.create(conn, app.state.key, "mz", "bench", "bench")
    return grant, key


def console_login(url: str) -> requests.Session:
    http = requests.Session()
    page = http.get(f"{url}/console/login", timeout=60)
    token = page.text.split('name="csrf" value="')[1].split('"')[0]
    http.post(
        f"{url}/console/login",
        data={"username": "minzheng", "password": PASSWORD, "csrf": token, "next": "/console/dept"},
        timeout=60,
    )
    return http


def download(url: str, grant: int) -> tuple[int, float, float]:
    http = console_login(url)
    page = http.get(f"{url}/console/dept", timeout=60)
    token = page.text.split('name="csrf" value="')[1].split('"')[0]
    with Peak() as peak:
        start = time.perf_counter()
        resp = http.post(  # as the page's button: a POST with its CSRF token
            f"{url}/console/dept/grants/{grant}/download",
            data={"csrf": token, "form": "resident", "format": "csv"},
            stream=True,
            timeout=3600,
        )
        resp.raise_for_status()
        lines = 0
        for chunk in resp.iter_content(1 << 16):
            lines += chunk.count(b"\n")
        took = time.perf_counter() - start
    return lines - 1, took, peak.growth


def api_export(url: str, grant: int, key: str) -> tuple[int, float, float, str]:
    http = requests.Session()
    headers = {"Authorization": f"Bearer {key}"}
    cursor, n = "", 0
    with Peak() as peak:
        start = time.perf_counter()
        while True:
            params: dict[str, Any] = {"limit": 5000}
            if cursor:
                params["cursor"] = cursor
            page = http.get(
                f"{url}/v1/dept/grants/{grant}/export", params=params, headers=headers, timeout=600
            ).json()
            n += len(page["records"])
            if page["done"]:
                break
            cursor = page["cursor"]
        took = time.perf_counter() - start
    return n, took, peak.growth, page["feed_cursor"]


def change(engine: Any, count: int, deletes: int) -> None:
    """``count`` changes to residents: edits, then ``deletes`` deletions (new change numbers)."""
    with db.write(engine) as conn:
        c = db.counters.c
        top = int(conn.execute(select(c.value).where(c.name == db.SEQ)).scalar_one())
        ids = conn.execute(
            select(db.records.c.id, db.records.c.data)
            .where(db.records.c.form == "resident")
            .limit(count)
        ).all()
        for n, (rid, data) in enumerate(ids, start=1):
            values: dict[str, Any] = {"seq": top + n}
            if n > count - deletes:
                values["deleted"] = True
            else:
                d = json.loads(data)
                d["occupation"] = f"职业{n}"
                values["data"] = db.dumps(d)
            conn.execute(update(db.records).where(db.records.c.id == rid).values(**values))
        conn.execute(update(db.counters).where(c.name == db.SEQ).values(value=top + len(ids)))


def feed(url: str, grant: int, key: str, cursor: str) -> tuple[int, int, float]:
    http = requests.Session()
    headers = {"Authorization": f"Bearer {key}"}
    ups = removes = 0
    start = time.perf_counter()
    while True:
        page = http.get(
            f"{url}/v1/dept/grants/{grant}/feed",
            params={"cursor": cursor, "limit": 5000},
            headers=headers,
            timeout=600,
        ).json()
        for ch in page["changes"]:
            if ch["op"] == "upsert":
                ups += 1
            else:
                removes += 1
        cursor = page["cursor"]
        if page["done"]:
            break
    return ups, removes, time.perf_counter() - start


def stats_runs(
    url: str, grant: int, key: str, runs: int, before: Any = None
) -> tuple[float, list[float]]:
    http = requests.Session()
    headers = {"Authorization": f"Bearer {key}"}
    target = f"{url}/v1/dept/grants/{grant}/stats"
    start = time.perf_counter()
    http.get(
        target, params={"by": "population_type"}, headers=headers, timeout=3600
    ).raise_for_status()
    first = (time.perf_counter() - start) * 1000
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        start = time.perf_counter()
        http.get(
            target, params={"by": "population_type"}, headers=headers, timeout=600
        ).raise_for_status()
        times.append((time.perf_counter() - start) * 1000)
    return first, times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_630_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", help="platform database URL (default: a temporary SQLite file)")
    parser.add_argument("--reuse", action="store_true", help="--db was loaded by an earlier run")
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    auth.set_kdf_cost(2**10)
    with tempfile.TemporaryDirectory(prefix="gc-bench-dept-") as tmp:
        url_db = args.db or f"sqlite:///{tmp}/platform.db"
        if not args.reuse:
            start = time.perf_counter()
            count = load(url_db, bench_upgrade.demo_store(args.size, args.seed))
            print(f"loaded {count} records in {time.perf_counter() - start:.0f} s")
        app = create_app(url_db, forms=load_formset(), secret="bench")
        grant, key = setup(app)
        server, url = serve(app)
        try:
            report(app, url, grant, key, args.runs)
        finally:
            server.should_exit = True
    return 0


def report(app: Any, url: str, grant: int, key: str, runs: int) -> None:
    engine = app.state.engine
    with db.read(engine) as conn:
        total = conn.execute(select(func.count()).select_from(db.records)).scalar_one()
    print(f"platform: {total} records ({engine.dialect.name})")
    n, raw_s = raw_select(engine)
    print(
        f"baseline raw SELECT of the residents: {n} rows in {raw_s:.1f} s = {n / raw_s:,.0f} rows/s"
    )
    rows, took, growth = download(url, grant)
    print(
        f"CSV download: {rows} rows in {took:.1f} s = {rows / took:,.0f} rows/s "
        f"(ratio to raw {raw_s / took:.2f}; {took / raw_s:.1f}x the raw time); memory growth {growth:.0f} MB"
    )
    rows, took, growth, cursor = api_export(url, grant, key)
    print(
        f"API export (pages of 5000): {rows} records in {took:.1f} s = {rows / took:,.0f} rows/s "
        f"(ratio to raw {raw_s / took:.2f}); memory growth {growth:.0f} MB"
    )
    change(engine, 10_000, 500)
    ups, removes, took = feed(url, grant, key, cursor)
    print(f"feed after 10 000 changes: {ups} upserts + {removes} removals in {took:.2f} s")
    first, warm = stats_runs(url, grant, key, runs)
    print(
        f"stats by population_type: first (cold) {first:.0f} ms; warm p50 {median(warm):.0f} ms "
        f"p95 {percentile(warm, 0.95):.0f} ms"
    )
    one = [0]

    def touch() -> None:
        one[0] += 1
        change(engine, 1, 0)

    _first, touched = stats_runs(url, grant, key, runs, before=touch)
    print(
        f"stats after one change each time: p50 {median(touched):.0f} ms p95 {percentile(touched, 0.95):.0f} ms"
    )


if __name__ == "__main__":
    raise SystemExit(main())
