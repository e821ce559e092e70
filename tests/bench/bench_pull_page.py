"""Server CPU of one nightly pull page (issue 19: a device pulls one page of 200 changes).

Usage: python tests/bench/bench_pull_page.py [--size 5000] [--limit 200] [--pages 300] [--pg]

Seeds a platform (SQLite file, or with ``--pg`` a throwaway PostgreSQL cluster started here as
the tests do) with ``--size`` residents of one grid through the op pipeline, then serves
``--pages`` pull pages of ``--limit`` changes from random cursors to a worker of that grid,
in process: ``pulls.page_json`` (what ``GET /v1/pull`` answers, without HTTP). Prints the CPU
milliseconds per page (``time.process_time``; the database server's own CPU on PostgreSQL is
not included), the statements a page runs, and the ratio to a baseline measured in the same
run: the raw driver reading the same page's rows (one statement, ``fetchall``) and joining
them with the same splice. It prints figures; it never asserts.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import Engine, create_engine, event, text  # noqa: E402

from app.core.forms import load_formset  # noqa: E402
from sync import heap  # noqa: E402
from sync.server import admin, auth, pulls  # noqa: E402
from sync.server.app import create_app  # noqa: E402
from tests.bench.bench_sync import GRID, PASSWORD, residents, seed_residents  # noqa: E402

RAW = (
    "SELECT id, form, form_version, version, data, status, deleted, conflict, updated_at, "
    "updated_by, seq FROM records WHERE grid = {p} AND seq > {p} AND seq <= {p} "
    "ORDER BY seq LIMIT {p}"
)


def seed(url: str, size: int) -> tuple[Any, auth.User]:
    """The platform with ``size`` residents in ``GRID``; the app and a worker of that grid."""
    app = create_app(url, forms=load_formset(), secret="bench-secret")
    engine = app.state.engine
    admin.put_community(engine, GRID[:9], "幸福社区")
    admin.put_grid(engine, GRID, "一网格", GRID[:9])
    admin.put_user(engine, "bench", PASSWORD, "worker", grids=[GRID])
    admin.put_user(engine, "root", PASSWORD, "admin")
    _t, _e, root = auth.login(engine, app.state.key, "root", PASSWORD, "seed")
    seed_residents(app.state.service, root, residents(size, 0))
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    _t, _e, user = auth.login(engine, app.state.key, "bench", PASSWORD, "bench-device")
    heap.settle()  # as ``server-admin server`` does: without it the collector's share misleads
    return app, user


def cpu_ms(pages: list[int], serve: Callable[[int], Any]) -> float:
    start = time.process_time()
    for since in pages:
        serve(since)
    return 1000 * (time.process_time() - start) / len(pages)


def raw_page(engine: Engine, limit: int) -> Callable[[int], str]:
    """The floor: the page's rows through the raw driver, spliced as ``page_json`` does."""
    mark = "%s" if engine.dialect.name == "postgresql" else "?"
    sql = RAW.format(p=mark)

    def serve(since: int) -> str:
        conn = engine.raw_connection()
        try:
            cur = conn.cursor()
            cur.execute(sql, (GRID, since, since + 10 * limit, limit))
            body = pulls.records_json(cur.fetchall())
            conn.commit()
            return body
        finally:
            conn.close()

    return serve


def statements(engine: Engine, serve: Callable[[], Any]) -> int:
    seen: list[str] = []

    def note(*_args: Any) -> None:
        seen.append("")

    event.listen(engine, "before_cursor_execute", note)
    try:
        serve()
    finally:
        event.remove(engine, "before_cursor_execute", note)
    return len(seen)


def run(url: str, args: argparse.Namespace) -> None:
    app, user = seed(url, args.size)
    engine = app.state.engine
    rng = random.Random(7)
    pages = [rng.randrange(0, args.size - 2 * args.limit) for _ in range(args.pages)]
    page = lambda since: pulls.page_json(engine, user, since, args.limit)  # noqa: E731
    raw = raw_page(engine, args.limit)
    for since in pages[:20]:  # warm caches, statement caches and plans
        page(since), raw(since)
    count = statements(engine, lambda: page(pages[0]))
    rounds = [(cpu_ms(pages, page), cpu_ms(pages, raw)) for _ in range(3)]
    served, floor = sorted(rounds)[1]
    print(
        f"{engine.dialect.name}: {args.size} records, pages of {args.limit}: page_json "
        f"{served:.2f} ms CPU per page ({count} statements), raw driver read + splice "
        f"{floor:.2f} ms: x{served / floor:.2f}"
    )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=5000)
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--pg", action="store_true", help="also on a throwaway PostgreSQL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{Path(tmp) / 'platform.db'}", args)
    if args.pg:
        from tests.sync.conftest import _start_cluster

        cluster = _start_cluster()
        try:
            maint = create_engine(f"{cluster.url}/postgres", isolation_level="AUTOCOMMIT")
            with maint.connect() as conn:
                conn.execute(text("CREATE DATABASE bench_pull"))
            maint.dispose()
            run(f"{cluster.url}/bench_pull", args)
        finally:
            assert cluster.stop is not None
            cluster.stop()


if __name__ == "__main__":
    main()
